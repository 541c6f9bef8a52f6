//! Attention counts from execution, checked against closed forms, and the `attention-cost` CLI.

use picojoule::attention_cost::{CostSpec, measure};
use picojoule::convention::Convention;
use picojoule::engine::attention::{AttentionKind, Normalisation};

use super::util::*;

fn spec(kind: AttentionKind, n: usize, d: usize, h: usize, convention: Convention) -> CostSpec {
    CostSpec {
        kind,
        tokens: n,
        dim: d,
        heads: h,
        convention,
        seed: 3,
        hardware: None,
    }
}

/// EcoFormer's get_energy.py closed forms (reference notes, section 2).
fn eco_paper(n: u64, d: u64, h: u64, b: u64, m: u64) -> (u64, u64) {
    let c = d / h;
    (
        h * n * (2 * m + m * b + b + 1 + c),
        h * n * (2 * m * c + m * b + 2 * b + 2 * b * c + c),
    )
}

#[test]
fn ecoformer_paper_view_of_the_execution_equals_the_authors_closed_forms() {
    for &(n, d, h, b, m) in &[
        (49usize, 32usize, 1usize, 16usize, 25usize),
        (64, 64, 2, 16, 25),
        (30, 40, 5, 8, 7),
        (17, 24, 3, 70, 4),
    ] {
        let kind = AttentionKind::EcoFormer {
            bits: b,
            anchors: m,
            normalisation: Normalisation::EcoformerCode,
        };
        let r = measure(&spec(kind, n, d, h, Convention::EcoformerPaper)).unwrap();
        assert_eq!(
            (r.mul, r.add),
            eco_paper(n as u64, d as u64, h as u64, b as u64, m as u64),
            "N={n} D={d} H={h} b={b} m={m}"
        );
        // priced with paper45: 3.7 pJ per mul, 0.9 pJ per add
        assert!(
            (r.energy_pj - (3.7 * r.mul as f64 + 0.9 * r.add as f64)).abs() < 1e-6 * r.energy_pj
        );
        // the correctly normalised variant adds sum_j v_j: H N C adds more
        let kind = AttentionKind::EcoFormer {
            bits: b,
            anchors: m,
            normalisation: Normalisation::Normalised,
        };
        let r2 = measure(&spec(kind, n, d, h, Convention::EcoformerPaper)).unwrap();
        assert_eq!(r2.mul, r.mul);
        assert_eq!(r2.add, r.add + (n * d) as u64);
    }
}

#[test]
fn softmax_paper_view_equals_msa_flops() {
    for &(n, d, h) in &[(49usize, 32usize, 1usize), (20, 30, 3), (16, 64, 8)] {
        let r = measure(&spec(
            AttentionKind::Softmax,
            n,
            d,
            h,
            Convention::EcoformerPaper,
        ))
        .unwrap();
        let (n, d, h) = (n as u64, d as u64, h as u64);
        assert_eq!((r.mul, r.add), (2 * n * n * d + h * n * n, 2 * n * n * d));
    }
}

#[test]
fn full_convention_counts_equal_our_closed_forms() {
    for &(n, d, h, b, m) in &[
        (20usize, 16usize, 2usize, 16usize, 5usize),
        (9, 12, 3, 65, 3),
    ] {
        let (nn, dd, hh, bb, mm) = (n as u64, d as u64, h as u64, b as u64, m as u64);
        let c = dd / hh;
        let kind = AttentionKind::EcoFormer {
            bits: b,
            anchors: m,
            normalisation: Normalisation::Normalised,
        };
        let r = measure(&spec(kind, n, d, h, Convention::Full)).unwrap();
        assert_eq!(r.mac, hh * nn * (c + m as u64 * c + mm * bb));
        assert_eq!(r.ac, hh * nn * (2 * bb + 2 * bb * c));
        assert_eq!(r.counts["exp.fp32"], hh * nn * mm);
        assert_eq!(r.counts["div.fp32"], hh * (2 * nn + 1));
        assert_eq!(
            r.counts["add.fp32"],
            hh * (nn * mm * c + 2 * nn * mm + nn + 2 * nn * c)
        );
        assert_eq!(r.counts["mul.fp32"], hh * (2 * nn * c + nn * mm + c));
        // full view: MAC = mul + add, AC = add
        assert_eq!(r.mul, r.mac + r.counts["mul.fp32"]);
        assert_eq!(r.add, r.mac + r.ac + r.counts["add.fp32"]);
        // projections: shared Q/K, V and output: 3 N D^2
        assert_eq!(r.projections.mac, 3 * nn * dd * dd);
        // softmax: 2 N^2 D MACs, H N^2 exp and scale multiplies, 2 H N^2 adds
        let s = measure(&spec(AttentionKind::Softmax, n, d, h, Convention::Full)).unwrap();
        assert_eq!(s.mac, 2 * nn * nn * dd);
        assert_eq!(s.counts["exp.fp32"], hh * nn * nn);
        assert_eq!(s.counts["add.fp32"], 2 * hh * nn * nn);
        assert_eq!(s.counts["mul.fp32"], hh * nn * nn + hh * nn * c);
        assert_eq!(s.projections.mac, 4 * nn * dd * dd);
        // linear: N (2 C^2 + C) MACs per head
        let l = measure(&spec(AttentionKind::Linear, n, d, h, Convention::Full)).unwrap();
        assert_eq!(l.mac, hh * nn * (2 * c * c + c));
    }
}

#[test]
fn attention_cost_json_has_the_documented_keys() {
    let o = picojoule(&[
        "attention-cost",
        "--kind",
        "ecoformer",
        "--tokens",
        "64",
        "--dim",
        "32",
        "--heads",
        "2",
        "--convention",
        "ecoformer-paper",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in [
        "mul",
        "add",
        "mac",
        "ac",
        "energy_pj",
        "convention",
        "hardware",
        "lines",
        "projections",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["hardware"], "paper45");
    let o = picojoule(&[
        "attention-cost",
        "--kind",
        "softmax",
        "--tokens",
        "16",
        "--dim",
        "8",
        "--heads",
        "2",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["hardware"], "horowitz45");
    assert_eq!(v["mac"], 2 * 16 * 16 * 8);
    // same seed, same bytes
    let again = picojoule(&[
        "attention-cost",
        "--kind",
        "softmax",
        "--tokens",
        "16",
        "--dim",
        "8",
        "--heads",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(again.stdout, o.stdout);
}

#[test]
fn attention_cost_refuses_bad_flags_with_exit_2() {
    let o = picojoule(&[
        "attention-cost",
        "--kind",
        "ecoformer",
        "--tokens",
        "8",
        "--dim",
        "8",
        "--heads",
        "1",
        "--bits",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--bits"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = picojoule(&[
        "attention-cost",
        "--kind",
        "softmax",
        "--tokens",
        "8",
        "--dim",
        "10",
        "--heads",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--heads"));
    let o = picojoule(&[
        "attention-cost",
        "--kind",
        "softmax",
        "--tokens",
        "8",
        "--dim",
        "8",
        "--heads",
        "1",
        "--convention",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn attention_kinds_scenario_runs_all_three_and_is_deterministic() {
    let o = picojoule(&["run", "scenarios/attention-kinds.ron", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let kinds: Vec<&str> = runs
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["softmax", "linear", "ecoformer-style", "ecoformer-code"]
    );
    assert_eq!(runs[0]["totals"]["ac"], 0);
    assert!(
        runs[2]["totals"]["ac"].as_u64().unwrap() > 0,
        "hashed attention accumulates"
    );
    for r in runs {
        assert_eq!(r["accuracy"]["task"], "next-token");
    }
    let again = picojoule(&[
        "run",
        "scenarios/attention-kinds.ron",
        "--format",
        "json",
        "--threads",
        "1",
    ]);
    assert_eq!(again.stdout, o.stdout);
}

#[test]
fn digits_encoder_reports_classification_accuracy() {
    let dir = temp_dir("digits-vit");
    let sc = write(
        &dir,
        "s.ron",
        &format!(
            "Scenario(name: \"d\", seed: 1, hardware: \"horowitz45\", input: Digits(\"{}\"), tokens: 40, runs: [(model: \"{}\"), (model: \"{}\")])",
            repo_path("data/digits/digits-test.csv").display(),
            repo_path("models/digits-vit-softmax.ron").display(),
            repo_path("models/digits-vit-ecoformer.ron").display()
        ),
    );
    let o = picojoule(&["run", sc.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for r in v["runs"].as_array().unwrap() {
        assert_eq!(r["accuracy"]["task"], "classification");
        assert_eq!(r["accuracy"]["predictions"], 40);
        // the head is fitted on the training digits: well above chance (10%)
        assert!(
            r["accuracy"]["top1"].as_f64().unwrap() > 0.3,
            "{}",
            r["accuracy"]
        );
    }
    // a language-model input for the classifier is refused
    let bad = write(
        &dir,
        "bad.ron",
        &format!(
            "Scenario(name: \"d\", hardware: \"horowitz45\", input: Synthetic, tokens: 4, runs: [(model: \"{}\")])",
            repo_path("models/digits-vit-softmax.ron").display()
        ),
    );
    let o = picojoule(&["run", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Digits"), "{}", stderr(&o));
}

#[test]
fn pvtv2_b0_per_layer_counts_match_the_reference_table() {
    // shared/reference/ecoformer.md section 2, "Per-layer examples, PVTv2-B0, b = 16, m = 25".
    let eco = [
        (3136, 32, 1, 1_564_864u64, 9_683_968u64),
        (784, 64, 2, 782_432, 4_841_984),
        (196, 160, 5, 489_020, 3_026_240),
        (49, 256, 8, 195_608, 1_210_496),
    ];
    for (n, d, h, mul, add) in eco {
        let kind = AttentionKind::EcoFormer {
            bits: 16,
            anchors: 25,
            normalisation: Normalisation::EcoformerCode,
        };
        let r = measure(&spec(kind, n, d, h, Convention::EcoformerPaper)).unwrap();
        assert_eq!((r.mul, r.add), (mul, add), "N={n}");
    }
    // MSA rows (stage 1, N = 3136, is checked in the README's CLI example; 0.6 G MACs is slow here)
    let msa = [
        (784, 64, 2, 79_905_280u64, 78_675_968u64),
        (196, 160, 5, 12_485_200, 12_293_120),
        (49, 256, 8, 1_248_520, 1_229_312),
    ];
    for (n, d, h, mul, add) in msa {
        let r = measure(&spec(
            AttentionKind::Softmax,
            n,
            d,
            h,
            Convention::EcoformerPaper,
        ))
        .unwrap();
        assert_eq!((r.mul, r.add), (mul, add), "N={n}");
    }
}
