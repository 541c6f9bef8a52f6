//! Numerics-sweep benchmark (`cargo bench --bench numerics`): the trained character models over
//! the arithmetics of a numerics sweep, on the characters of `data/text/sotu-test.txt`, with the
//! row kernels on vector lanes and as the scalar reference calls (same outputs bit for bit).
//! Prints time per character per arithmetic and each arithmetic's ratio to fp32, measured in one
//! run. `PICOJOULE_NUMERICS_TOKENS` sets the characters (default 2000),
//! `PICOJOULE_NUMERICS_MODELS` a comma-separated list of model files (default: the trained RWKV
//! twin and softmax transformer).

use std::path::PathBuf;
use std::time::Instant;

use picojoule::engine::arith::set_scalar_rows;
use picojoule::exec;
use picojoule::scenario::LoadedScenario;

const ARITHMETICS: [(&str, &str); 5] = [
    ("fp32", ""),
    ("bf16", r#", arith: (mode: "bf16")"#),
    (
        "fp8-e4m3 (acc fp16)",
        r#", arith: (mode: "fp8-e4m3", acc: Some("fp16"))"#,
    ),
    ("lmul-4", r#", arith: (mode: "lmul-4")"#),
    ("lmul-3", r#", arith: (mode: "lmul-3")"#),
];

/// Seconds of one run of `model` on `tokens` characters under one arithmetic, and its outputs'
/// bits per character (to check that both kernels computed the same thing).
fn run(root: &std::path::Path, model: &str, arith: &str, tokens: usize) -> (f64, f64) {
    let text = format!(
        r#"Scenario(name: "numerics-bench", seed: 1, hardware: "horowitz45", input: Text({:?}), tokens: {tokens}, runs: [(model: {:?}{arith})])"#,
        root.join("data/text/sotu-test.txt"),
        root.join(model),
    );
    let dir = std::env::temp_dir().join(format!("picojoule-numerics-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("s.ron");
    std::fs::write(&path, text).expect("scenario written");
    let sc = LoadedScenario::load(&path).expect("scenario loads");
    let t = Instant::now();
    let out = exec::execute(&sc, &Default::default()).expect("runs");
    let secs = t.elapsed().as_secs_f64();
    let bits = out[0]
        .accuracy
        .as_ref()
        .and_then(|a| a.bits_per_token)
        .unwrap_or(f64::NAN);
    (secs, bits)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let tokens: usize = std::env::var("PICOJOULE_NUMERICS_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let models: Vec<String> = std::env::var("PICOJOULE_NUMERICS_MODELS")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_else(|_| {
            vec![
                "models/spikegpt-sotu-twin.ron".into(),
                "models/transformer-sotu-softmax.ron".into(),
            ]
        });
    println!(
        "numerics sweep, {tokens} characters per run (one thread per run as the sweep schedules it)"
    );
    println!(
        "{:>36} {:>20} {:>12} {:>9} {:>12} {:>9} {:>13} {:>9}",
        "model",
        "arithmetic",
        "vector us/ch",
        "vs fp32",
        "scalar us/ch",
        "vs fp32",
        "scalar/vector",
        "bits/ch"
    );
    for model in &models {
        let mut fp32 = (0.0, 0.0);
        let mut total = (0.0, 0.0);
        for (label, arith) in ARITHMETICS {
            set_scalar_rows(false);
            let (vector, bits) = run(&root, model, arith, tokens);
            set_scalar_rows(true);
            let (scalar, bits_scalar) = run(&root, model, arith, tokens);
            set_scalar_rows(false);
            assert_eq!(
                bits.to_bits(),
                bits_scalar.to_bits(),
                "{model} {label}: the kernels disagree"
            );
            if label == "fp32" {
                fp32 = (vector, scalar);
            }
            total.0 += vector;
            total.1 += scalar;
            let us = |s: f64| s * 1e6 / tokens as f64;
            println!(
                "{:>36} {:>20} {:>12.1} {:>8.2}x {:>12.1} {:>8.2}x {:>12.2}x {:>9.3}",
                model,
                label,
                us(vector),
                vector / fp32.0,
                us(scalar),
                scalar / fp32.1,
                scalar / vector,
                bits
            );
        }
        println!(
            "{:>36} {:>20} {:>12} wall time of the sweep: {:.2} s vector, {:.2} s scalar ({:.2}x)",
            model,
            "all five",
            "",
            total.0,
            total.1,
            total.1 / total.0
        );
    }
}
