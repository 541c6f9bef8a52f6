use super::util::*;

#[test]
fn numerics_mul_prints_the_golden_lmul_values() {
    let o = picojoule(&[
        "numerics", "mul", "--mode", "lmul", "--format", "fp32", "1", "1", "1.5", "1.5", "-2", "3",
        "0.1", "10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "1.0625 0x3F880000\n2.125 0x40080000\n-6.25 0xC0C80000\n0.95625 0x3F74CCCD\n"
    );
}

#[test]
fn numerics_mul_rounds_inputs_into_the_format_first() {
    // 0.1 in e4m3 is 0.1015625; times 10 rounds to 1.0 (0x38).
    let o = picojoule(&[
        "numerics", "mul", "--mode", "round", "--format", "fp8-e4m3", "0.1", "10",
    ]);
    assert_eq!(stdout(&o), "1 0x38\n");
    let o = picojoule(&[
        "numerics", "mul", "--mode", "lmul", "--format", "fp32", "--policy", "raw", "0", "1",
    ]);
    assert_eq!(
        stdout(&o),
        "0.000000000000000000000000000000000000000734684 0x00080000\n".replace(
            "0.000000000000000000000000000000000000000734684",
            &format!("{}", f32::from_bits(0x00080000))
        )
    );
}

#[test]
fn numerics_mul_odd_operand_count_and_bad_format_exit_2() {
    assert_eq!(
        picojoule(&["numerics", "mul", "1", "2", "3"]).status.code(),
        Some(2)
    );
    let o = picojoule(&["numerics", "mul", "--format", "fp7", "1", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--format"));
}

#[test]
fn error_table_has_the_named_rows_and_is_deterministic() {
    let a = picojoule(&[
        "numerics",
        "error-table",
        "--samples",
        "2000",
        "--format",
        "json",
    ]);
    assert!(a.status.success(), "{}", stderr(&a));
    let rows: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "fp16", "bf16", "fp8-e4m3", "fp8-e5m2", "lmul-2", "lmul-3", "lmul-4", "lmul-5",
            "lmul-6", "lmul-7", "lmul-8", "lmul-23"
        ]
    );
    let b = picojoule(&[
        "numerics",
        "error-table",
        "--samples",
        "2000",
        "--format",
        "json",
    ]);
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(
        picojoule(&["numerics", "error-table", "--range", "1:0"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn lmul_scenario_counts_lmul_instead_of_macs_and_changes_outputs() {
    let o = picojoule(&["run", "scenarios/numerics.ron", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let fp32 = &runs[0];
    let lmul3 = runs.iter().find(|r| r["label"] == "lmul-3").unwrap();
    assert_eq!(fp32["totals"]["lmul"], 0);
    assert!(fp32["totals"]["mac"].as_u64().unwrap() > 0);
    assert_eq!(lmul3["totals"]["mac"], 0);
    assert!(lmul3["totals"]["lmul"].as_u64().unwrap() > 0);
    assert!(fp32["fidelity"].is_null());
    let agree = lmul3["fidelity"]["top1_agreement"].as_f64().unwrap();
    assert!(agree < 1.0, "L-Mul changes the outputs");
    assert!(lmul3["fidelity"]["mean_kl_bits"].as_f64().unwrap() > 0.0);
    assert_ne!(
        fp32["accuracy"]["bits_per_token"],
        lmul3["accuracy"]["bits_per_token"]
    );
    // Narrow formats move fewer bytes: bf16 weights are half of fp32.
    let bf16 = runs.iter().find(|r| r["label"] == "bf16").unwrap();
    let mem = |r: &serde_json::Value| r["energy_by_kind"]["memory"].as_f64().unwrap();
    assert!(
        (mem(bf16) / mem(fp32) - 0.5).abs() < 0.01,
        "{} {}",
        mem(bf16),
        mem(fp32)
    );
}

#[test]
fn classifiers_in_a_narrow_arithmetic_report_fidelity_to_fp32() {
    let dir = temp_dir("fidelity-classifiers");
    let repo = repo();
    let r = repo.to_str().unwrap();
    let sc = write(
        &dir,
        "s.ron",
        &format!(
            "Scenario(name: \"d\", seed: 1, hardware: \"horowitz45\", input: Digits(\"{r}/data/digits/digits-test.csv\"), tokens: 20, runs: [\
             (model: \"{r}/models/digits-ann.ron\", label: Some(\"ann\")), (model: \"{r}/models/digits-ann.ron\", label: Some(\"ann lmul\"), arith: (mode: \"lmul-3\")),\
             (model: \"{r}/models/digits-vit-softmax.ron\", label: Some(\"vit bf16\"), arith: (mode: \"bf16\"))])"
        ),
    );
    let o = picojoule(&["run", sc.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["runs"][0]["fidelity"].is_null());
    for i in [1, 2] {
        let f = v["runs"][i]["fidelity"]["top1_agreement"]
            .as_f64()
            .expect("fidelity");
        assert!((0.0..=1.0).contains(&f));
    }
    assert!(v["runs"][1]["totals"]["lmul"].as_u64().unwrap() > 0);
}
