//! The error catalogue: each kind of bad input gives a clear message and exit code 2, no panic.

use super::util::*;

fn run_expect_2(dir: &std::path::Path, scenario: &str, needles: &[&str]) {
    let p = write(dir, "s.ron", scenario);
    let o = picojoule(&["run", p.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

#[test]
fn wrong_type_names_file_line_and_expected_type() {
    let dir = temp_dir("err-type");
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic,\n tokens: \"many\", runs: [])",
        &["s.ron:2:", "tokens: \"many\""],
    );
}

#[test]
fn absurd_and_zero_sizes_are_refused() {
    let dir = temp_dir("err-size");
    write(
        &dir,
        "m.ron",
        "SpikeGpt(name: \"m\", n_layer: 2, n_embd: 0, vocab_size: 96, weights: Seeded(1))",
    );
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 4, runs: [(model: \"m.ron\")])",
        &["n_embd must be between 1"],
    );
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 0, runs: [(model: \"m.ron\")])",
        &["tokens must be between 1"],
    );
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: -3, runs: [])",
        &["s.ron:1:"],
    );
}

#[test]
fn unknown_hardware_action_lists_the_valid_ones() {
    let dir = temp_dir("err-action");
    write(
        &dir,
        "hw.ron",
        "CostModel(name: \"h\", description: \"d\", entries: [(action: multiply, format: \"fp32\", energy: Pj(1.0), source: \"s\")])",
    );
    let o = picojoule(&["hardware", "show", dir.join("hw.ron").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("hw.ron:1:") && err.contains("multiply") && err.contains("mac"),
        "{err}"
    );
}

#[test]
fn truncated_weights_file_is_named() {
    let dir = temp_dir("err-trunc");
    let mut store = picojoule::weights::TensorStore::new("x");
    store.insert("emb.weight", vec![4, 4], vec![0.5; 16]);
    picojoule::weights::save_safetensors(&store, &dir.join("w.safetensors")).unwrap();
    let bytes = std::fs::read(dir.join("w.safetensors")).unwrap();
    std::fs::write(dir.join("w.safetensors"), &bytes[..bytes.len() - 9]).unwrap();
    write(
        &dir,
        "m.ron",
        "SpikeGpt(name: \"m\", n_layer: 1, n_embd: 4, vocab_size: 4, weights: File(\"w.safetensors\"))",
    );
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [(model: \"m.ron\")])",
        &["w.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn missing_tensor_and_nan_weights_are_named() {
    let dir = temp_dir("err-tensor");
    let cfg_text = "SpikeGpt(name: \"m\", n_layer: 1, n_embd: 4, vocab_size: 4, weights: File(\"w.safetensors\"))";
    let cfg = match picojoule::error::parse_ron::<picojoule::models::ModelDesc>(
        std::path::Path::new("m.ron"),
        cfg_text,
    )
    .unwrap()
    {
        picojoule::models::ModelDesc::SpikeGpt(c) => c,
        _ => unreachable!(),
    };
    let mut store = picojoule::models::spikegpt::seeded_weights(&cfg, 1);
    let mut t = store.raw("blocks.0.att.output.weight").unwrap().clone();
    t.data[5] = f32::NAN;
    store.insert(
        "blocks.0.att.output.weight",
        t.shape.clone(),
        t.data.clone(),
    );
    picojoule::weights::save_safetensors(&store, &dir.join("w.safetensors")).unwrap();
    write(&dir, "m.ron", cfg_text);
    let scenario = "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [(model: \"m.ron\")])";
    run_expect_2(
        &dir,
        scenario,
        &["blocks.0.att.output.weight", "non-finite"],
    );
}

#[test]
fn text_input_for_a_small_vocabulary_is_refused() {
    let dir = temp_dir("err-vocab");
    write(
        &dir,
        "m.ron",
        "SpikeGpt(name: \"m\", n_layer: 1, n_embd: 8, vocab_size: 11, weights: Seeded(1))",
    );
    write(&dir, "t.txt", "hello world, this is text");
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Text(\"t.txt\"), tokens: 5, runs: [(model: \"m.ron\")])",
        &["vocab_size 11", "96"],
    );
}

#[test]
fn non_finite_values_during_a_run_name_the_block_and_token() {
    let dir = temp_dir("err-inf");
    let cfg_text = "SpikeGpt(name: \"m\", n_layer: 2, n_embd: 8, vocab_size: 4, variant: NonSpiking, weights: File(\"w.safetensors\"))";
    let cfg = match picojoule::error::parse_ron::<picojoule::models::ModelDesc>(
        std::path::Path::new("m.ron"),
        cfg_text,
    )
    .unwrap()
    {
        picojoule::models::ModelDesc::SpikeGpt(c) => c,
        _ => unreachable!(),
    };
    let mut store = picojoule::models::spikegpt::seeded_weights(&cfg, 1);
    let t = store.raw("blocks.1.ffn.value.weight").unwrap().clone();
    store.insert(
        "blocks.1.ffn.value.weight",
        t.shape.clone(),
        vec![3.0e38; t.data.len()],
    );
    picojoule::weights::save_safetensors(&store, &dir.join("w.safetensors")).unwrap();
    write(&dir, "m.ron", cfg_text);
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 3, runs: [(model: \"m.ron\")])",
        &["blocks.1", "token position 0"],
    );
}

#[test]
fn lmul_everywhere_overflows_the_trained_wkv_state_and_is_refused() {
    // A finding kept as a test: L-Mul(1, x) != x, and the stable WKV multiplies its running sums
    // by exp(0) = 1, so with L-Mul in every multiply the state grows until it overflows.
    let o = picojoule(&["run", "scenarios/lmul-wkv-overflow.ron"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("non-finite") && err.contains("token position 1124"),
        "{err}"
    );
}

/// A context-sized attention cache is estimated before it is allocated, for every command that
/// runs models: a softmax transformer with a 20-million-token context under `--max-memory 1G`
/// is refused naming the model and the estimate, and no output folder is left half-written.
#[test]
fn context_sized_caches_are_refused_before_allocating() {
    let dir = temp_dir("err-context");
    write(
        &dir,
        "m.ron",
        "Transformer(name: \"long\", task: CausalLm, n_layer: 2, n_embd: 64, n_head: 4, vocab_size: 96, \
         mlp_mult: 4, activation: Gelu, attention: Softmax, calibration: 256, weights: Seeded(7), \
         context: Some(20000000))",
    );
    let s = write(
        &dir,
        "s.ron",
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 20000000, runs: [(model: \"m.ron\")])",
    );
    let out = dir.join("out");
    let s = s.to_str().unwrap();
    for args in [
        vec![
            "run",
            s,
            "--max-memory",
            "1G",
            "--out",
            out.to_str().unwrap(),
        ],
        vec!["compare", s, "--max-memory", "1G"],
        vec!["sweep", s, "--max-memory", "1G", "--set", "model.n_embd=64"],
    ] {
        let o = picojoule(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("model `long`") && err.contains("GiB") && err.contains("--max-memory"),
            "{args:?}: {err}"
        );
    }
    assert!(!out.join("report.json").exists());
}

/// A cost-model price above 1e12 pJ per action (or a distribution that can draw one) is refused
/// naming the action: its products with counts could overflow, and no NaN may reach a table.
#[test]
fn overflowing_costs_are_refused_naming_the_action() {
    let dir = temp_dir("err-overflow-cost");
    for (energy, needle) in [
        ("Pj(1e308)", "mul.fp32"),
        ("Range(1.0, 1e300)", "mul.fp32"),
        ("Normal(1.0, 1e300)", "mul.fp32"),
        ("LogNormal(690.0, 0.1)", "mul.fp32"),
    ] {
        let hw = write(
            &dir,
            "hw.ron",
            &format!(
                "CostModel(name: \"h\", description: \"d\", entries: [(action: mul, format: \"fp32\", energy: {energy}, source: \"s\")])"
            ),
        );
        let o = picojoule(&["hardware", "show", hw.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{energy}: {err}");
        assert!(
            err.contains(needle) && err.contains("1e12"),
            "{energy}: {err}"
        );
        run_expect_2(
            &dir,
            &format!(
                "Scenario(name: \"x\", hardware: \"hw.ron\", input: Synthetic, tokens: 4, runs: [(model: \"{}\")])",
                repo_path("models/spikegpt-tiny.ron").display()
            ),
            &[needle, "1e12"],
        );
    }
}

/// `--threads` is bounded (1024), stated in `--help`.
#[test]
fn too_many_threads_are_refused() {
    for cmd in ["run", "compare", "sweep"] {
        let mut args = vec![cmd, "scenarios/quickstart.ron", "--threads", "100000"];
        if cmd == "sweep" {
            args.extend(["--set", "add.fp32=1"]);
        }
        let o = picojoule(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("--threads 100000") && err.contains("1024"),
            "{cmd}: {err}"
        );
        let help = stdout(&picojoule(&[cmd, "--help"]));
        assert!(help.contains("1 to 1024"), "{cmd}: {help}");
    }
}

/// A failed write leaves neither temporaries nor a folder half old, half new: with a directory
/// in the way of `report.md`, `run --out` fails naming it, and the previous reports stay as
/// they were.
#[test]
fn failed_writes_leave_the_previous_outputs_and_no_temporaries() {
    let dir = temp_dir("err-write");
    let out = dir.join("out");
    let files = ["report.json", "report.csv", "ledger.json"];
    let run = |tokens: &str| {
        picojoule(&[
            "run",
            "scenarios/quickstart.ron",
            "--tokens",
            tokens,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = run("4");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let read = || -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|f| std::fs::read(out.join(f)).unwrap())
            .collect()
    };
    let before = read();
    std::fs::remove_file(out.join("report.md")).unwrap();
    std::fs::create_dir(out.join("report.md")).unwrap();
    let o = run("6");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("report.md") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(before, read(), "a report was replaced");
    let left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
    // The same run succeeds once the way is clear.
    std::fs::remove_dir(out.join("report.md")).unwrap();
    assert_eq!(run("6").status.code(), Some(0));
    assert_ne!(before, read());
}
