use picojoule::reproduce::lmul::lmul_table;
use picojoule::reproduce::spikegpt::{Setting, spikegpt_table};

use super::util::*;

fn measured(t: &picojoule::reproduce::ReproTable, q: &str) -> f64 {
    t.rows
        .iter()
        .find(|r| r.quantity == q)
        .unwrap_or_else(|| panic!("row {q}"))
        .measured
}

#[test]
fn spikegpt_table_counts_match_the_paper_formulas_where_they_should() {
    let s = Setting {
        tokens: 300,
        d: 64,
        rate: 0.15,
        seed: 1,
        sweep_rates: vec![0.3],
        trained: Some(repo_path("scenarios/paper-spikegpt.ron")),
    };
    let t = spikegpt_table(&repo_path("data/text/sotu-test.txt"), &s).unwrap();
    // WKV: 6 multiplies per channel and token, counted as MACs at 4.6 pJ.
    let wkv = measured(&t, "SpikeGPT: f(Q/R, K, V): WKV / attention");
    assert!((wkv - 4.6 * 6.0 * 300.0 * 64.0).abs() < 1e-6 * wkv, "{wkv}");
    // Vanilla GPT projections: 3 T d^2 MACs.
    let qkv = measured(&t, "vanilla GPT: Q/R, K, V projections");
    assert!(
        (qkv - 4.6 * 3.0 * 300.0 * 64.0 * 64.0).abs() < 1e-6 * qkv,
        "{qkv}"
    );
    // The calibrated threshold gives the paper's firing rate.
    let rate = measured(&t, "SpikeGPT firing rate");
    assert!((rate - 0.15).abs() < 0.03, "{rate}");
    assert!(
        t.markdown()
            .contains("| SpikeGPT: total | 1.020e9 | second-hand |")
    );
    // More spikes, more ACs: the ratio falls as the firing rate rises.
    let at_03 = measured(&t, "energy ratio vanilla / SpikeGPT at firing rate 0.3");
    assert!(
        at_03 < measured(&t, "energy ratio vanilla / SpikeGPT"),
        "{at_03}"
    );
    // The trained pair runs the same 300 characters; the trained embedding is not a coin flip.
    let q = "trained spikegpt-sotu-spiking vs transformer-sotu-softmax (2 layers x 64, T = 300)";
    let emb = measured(&t, &format!("{q}: binary-embedding spike rate"));
    assert!(emb > 0.0 && emb < 1.0, "{emb}");
    assert!(measured(&t, &format!("{q}: energy ratio")) > 1.0);
    let rate = measured(&t, &format!("{q}: firing rate"));
    assert!(rate > 0.0 && rate < 0.5, "{rate}");
}

#[test]
fn lmul_claims_table_states_a_verdict_per_metric() {
    let t = lmul_table(&picojoule::numerics::ErrorTableConfig {
        samples: 20_000,
        ..Default::default()
    });
    assert_eq!(t.rows.len(), 6);
    assert!(t.rows.iter().all(|r| r.note.contains("reproduced")));
    assert!(t.rows.iter().any(|r| {
        r.note
            .contains("lmul-3 is better than fp8-e5m2; reproduced")
    }));
}

#[test]
fn reproduce_rejects_unknown_tables() {
    let o = picojoule(&["reproduce", "--only", "nonesuch"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("lmul, spikegpt, ecoformer"));
}
