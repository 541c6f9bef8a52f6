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
    assert!(t.markdown().contains("| SpikeGPT: total | 1.020e9 |"));
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
