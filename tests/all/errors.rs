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

/// The tiny seeded SpikeGPT model, by absolute path (scenarios below live in temporary folders).
fn tiny() -> String {
    repo_path("models/spikegpt-tiny.ron").display().to_string()
}

/// Two runs reported under one label (explicitly, or by the default `model/variant[/arith]`)
/// are refused when the scenario is read, naming the label and both run numbers.
#[test]
fn duplicate_run_labels_are_refused_naming_both_runs() {
    let dir = temp_dir("err-dup-label");
    let m = tiny();
    run_expect_2(
        &dir,
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [\
             (model: \"{m}\", label: Some(\"A\")), (model: \"{m}\", label: Some(\"B\")), \
             (model: \"{m}\", label: Some(\"A\"), variant: Some(NonSpiking))])"
        ),
        &["s.ron", "runs 1 and 3", "`A`"],
    );
    // Unlabelled runs of one model, variant and arithmetic get one default label.
    run_expect_2(
        &dir,
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [\
             (model: \"{m}\"), (model: \"{m}\", arith: (mode: \"bf16\")), (model: \"{m}\")])"
        ),
        &["runs 1 and 3", "`spikegpt-tiny/reference`"],
    );
    // A label given by hand may collide with a default one.
    run_expect_2(
        &dir,
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [\
             (model: \"{m}\", variant: Some(NonSpiking)), (model: \"{m}\", label: Some(\"spikegpt-tiny/non_spiking\"))])"
        ),
        &["runs 1 and 2", "`spikegpt-tiny/non_spiking`"],
    );
    // Different arithmetic or variant: different default labels, accepted.
    let p = write(
        &dir,
        "ok.ron",
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [\
             (model: \"{m}\"), (model: \"{m}\", arith: (mode: \"bf16\")), (model: \"{m}\", variant: Some(NonSpiking))])"
        ),
    );
    let o = picojoule(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// A `model.variant` axis is replaced by a run's own `variant`: when every run sets one, every
/// point would give the same rows, and the sweep is refused naming the axis and the runs; when
/// some do, a warning names them.
#[test]
fn sweeping_a_field_every_run_overrides_is_refused() {
    let dir = temp_dir("err-sweep-pinned");
    let m = tiny();
    let s = write(
        &dir,
        "s.ron",
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [\
             (model: \"{m}\", variant: Some(SpikeDriven)), (model: \"{m}\", variant: Some(NonSpiking))])"
        ),
    );
    let o = picojoule(&[
        "sweep",
        s.to_str().unwrap(),
        "--set",
        "model.variant=Reference,NonSpiking",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--set model.variant=Reference,NonSpiking")
            && err.contains("`model.variant`")
            && err.contains("runs 1, 2"),
        "{err}"
    );
    let s = write(
        &dir,
        "some.ron",
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [\
             (model: \"{m}\"), (model: \"{m}\", variant: Some(NonSpiking), label: Some(\"twin\"))])"
        ),
    );
    let o = picojoule(&[
        "sweep",
        s.to_str().unwrap(),
        "--set",
        "model.variant=Reference,SpikeDriven",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning") && err.contains("`model.variant` does not change runs 2"),
        "{err}"
    );
}

/// A hand-edited `ledger.json` is checked on read: counts whose total overflows 64 bits, a
/// token count of 0, two runs under one label, a fraction outside 0..1.
#[test]
fn hand_edited_ledger_values_are_refused() {
    let dir = temp_dir("err-ledger-edit");
    let m = tiny();
    let s = write(
        &dir,
        "s.ron",
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [\
             (model: \"{m}\", label: Some(\"a\")), (model: \"{m}\", label: Some(\"b\"), arith: (mode: \"bf16\"))])"
        ),
    );
    let out = dir.join("out");
    let o = picojoule(&["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ledger.json")).unwrap()).unwrap();
    let check = |name: &str, edit: &dyn Fn(&mut serde_json::Value), needles: &[&str]| {
        let mut v = original.clone();
        edit(&mut v);
        let p = write(&dir, name, &serde_json::to_string_pretty(&v).unwrap());
        let o = picojoule(&["price", p.to_str().unwrap(), "--hardware", "horowitz45"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(err.contains(n), "{name}: expected `{n}` in: {err}");
        }
    };
    check(
        "overflow.json",
        &|v| {
            let layer = &mut v["runs"][1]["ledger"]["layers"][0];
            layer["counts"][0]["count"] = serde_json::json!(u64::MAX);
        },
        &["overflow.json", "run 2 (`b`)", "layer `", "overflow"],
    );
    check(
        "zero-tokens.json",
        &|v| v["runs"][0]["tokens"] = serde_json::json!(0),
        &["run 1 (`a`)", "tokens must be between 1"],
    );
    check(
        "dup.json",
        &|v| v["runs"][1]["label"] = serde_json::json!("a"),
        &["runs 1 and 2", "`a`"],
    );
    check(
        "fidelity.json",
        &|v| v["runs"][1]["fidelity"]["top1_agreement"] = serde_json::json!(1.5),
        &["run 2 (`b`)", "top1_agreement 1.5"],
    );
    // Unchanged, it is read back.
    let o = picojoule(&[
        "price",
        out.join("ledger.json").to_str().unwrap(),
        "--hardware",
        "horowitz45",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn empty_sweep_values_are_refused_naming_the_flag() {
    let o = picojoule(&[
        "sweep",
        "scenarios/quickstart.ron",
        "--set",
        "add.fp32=1,,2",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--set add.fp32=1,,2") && err.contains("value 2 of 3 is empty"),
        "{err}"
    );
    let o = picojoule(&["sweep", "scenarios/quickstart.ron", "--set", "add.fp32=1,"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_digit_label_outside_0_to_9_is_refused_naming_file_and_line() {
    let dir = temp_dir("err-digit-label");
    let row = |label: &str| {
        let mut v = vec!["3"; 64];
        v.push(label);
        v.join(",")
    };
    write(&dir, "d.csv", &format!("{}\n{}\n", row("7"), row("42")));
    let m = repo_path("models/digits-ann.ron").display().to_string();
    run_expect_2(
        &dir,
        &format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Digits(\"d.csv\"), tokens: 2, runs: [(model: \"{m}\")])"
        ),
        &["d.csv:2", "label `42` is not a digit 0..9"],
    );
}

/// Tensors of a weights file the model does not read are named in a warning on stderr; the
/// run goes on (a checkpoint may carry buffers the model has no use for).
#[test]
fn unused_tensors_of_a_weights_file_are_named_on_stderr() {
    let dir = temp_dir("err-extra-tensor");
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
    store.insert("blocks.0.att.mask", vec![2, 2], vec![1.0; 4]);
    picojoule::weights::save_safetensors(&store, &dir.join("w.safetensors")).unwrap();
    write(&dir, "m.ron", cfg_text);
    let s = write(
        &dir,
        "s.ron",
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [(model: \"m.ron\")])",
    );
    let o = picojoule(&["run", s.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning")
            && err.contains("w.safetensors")
            && err.contains("1 tensors not used by model `m`")
            && err.contains("blocks.0.att.mask"),
        "{err}"
    );
}

/// A compound priced in terms of itself (directly, or through another compound or the built-in
/// MAC = mul + add) and a memory level of capacity 0 are refused, naming the file and line.
#[test]
fn self_referencing_compounds_and_empty_memories_are_refused() {
    let dir = temp_dir("err-hw-cycle");
    let show = |name: &str, text: &str, needles: &[&str]| {
        let p = write(&dir, name, text);
        let o = picojoule(&["hardware", "show", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        for n in needles {
            assert!(err.contains(n), "{name}: expected `{n}` in: {err}");
        }
    };
    let head = "CostModel(name: \"h\", description: \"d\",\n entries: [(action: add, format: \"fp32\", energy: Pj(1.0), source: \"s\")],\n";
    show(
        "self.ron",
        &format!(
            "{head} compounds: [\n  (action: cmp, format: \"any\", of: [(cmp, 1.0)], source: \"s\"),\n ])"
        ),
        &["self.ron:4:", "compound cmp.any", "cmp -> cmp"],
    );
    show(
        "loop.ron",
        &format!(
            "{head} compounds: [\n  (action: mul, format: \"fp32\", of: [(add, 1.0), (mac, 1.0)], source: \"s\"),\n ])"
        ),
        &["loop.ron:4:", "mul -> mac -> mul"],
    );
    show(
        "zero.ron",
        &format!(
            "{head} memories: [\n  (name: \"sram\", capacity_bytes: Some(8), access_bytes: 8, read: Pj(1.0), source: \"s\"),\n  (name: \"none\", capacity_bytes: Some(0), access_bytes: 8, read: Pj(1.0), source: \"s\"),\n ])"
        ),
        &[
            "zero.ron:5:",
            "memory none",
            "capacity_bytes must be positive",
        ],
    );
}

/// Text is read character by character: a CRLF line end is one '\n', and characters outside
/// the vocabulary are counted in a warning on stderr (the shipped text has none).
#[test]
fn crlf_and_foreign_characters_in_text_are_reported() {
    let dir = temp_dir("err-text-crlf");
    let m = tiny();
    write(
        &dir,
        "t.txt",
        "caf\u{e9} au lait\r\nna\u{ef}ve\r\nplain text goes on and on\n",
    );
    let scenario = |file: &str| {
        format!(
            "Scenario(name: \"x\", hardware: \"horowitz45\", input: Text(\"{file}\"), tokens: 30, runs: [(model: \"{m}\")])"
        )
    };
    let s = write(&dir, "s.ron", &scenario("t.txt"));
    let o = picojoule(&["run", s.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("t.txt: 2 characters outside the vocabulary")
            && err.contains("U+00E9")
            && err.contains("line 1")
            && err.contains("2 CRLF line ends"),
        "{err}"
    );
    let shipped = repo_path("data/text/sotu-test.txt").display().to_string();
    let s = write(&dir, "shipped.ron", &scenario(&shipped));
    let o = picojoule(&["run", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// Reads of a tensor no memory level can hold say so, with the tensor's size and the largest
/// level's capacity, rather than "no price in the cost model".
#[test]
fn tensors_no_memory_level_holds_are_named_with_their_size() {
    let dir = temp_dir("err-unplaced");
    write(
        &dir,
        "hw.ron",
        "CostModel(name: \"small\", description: \"d\", entries: [\
         (action: mul, format: \"fp32\", energy: Pj(1.0), source: \"s\"), \
         (action: add, format: \"fp32\", energy: Pj(1.0), source: \"s\")], \
         memories: [(name: \"sram-64\", capacity_bytes: Some(64), access_bytes: 8, read: Pj(1.0), source: \"s\"), \
         (name: \"sram-4k\", capacity_bytes: Some(4096), access_bytes: 8, read: Pj(2.0), source: \"s\")])",
    );
    let m = tiny();
    let s = write(
        &dir,
        "s.ron",
        &format!(
            "Scenario(name: \"x\", hardware: \"hw.ron\", input: Synthetic, tokens: 2, runs: [(model: \"{m}\", label: Some(\"t\"))])"
        ),
    );
    let o = picojoule(&["run", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("t: unpriced (energy is a lower bound): read.weight.")
            && out.contains("no memory level holds the weight (")
            && out.contains("the largest, `sram-4k`, holds 4096 B"),
        "{out}"
    );
}

#[test]
fn a_byte_order_mark_before_a_ron_file_is_skipped() {
    let dir = temp_dir("err-bom");
    let m = tiny();
    let s = write(
        &dir,
        "s.ron",
        &format!(
            "\u{feff}Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 2, runs: [(model: \"{m}\")])"
        ),
    );
    let o = picojoule(&["run", s.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Errors still point at the right line and column.
    run_expect_2(
        &dir,
        "\u{feff}Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic,\n tokens: \"many\", runs: [])",
        &["s.ron:2:", "tokens: \"many\""],
    );
}

#[test]
fn an_empty_hardware_flag_is_named() {
    for args in [
        vec!["compare", "scenarios/quickstart.ron", "--hardware", ""],
        vec![
            "compare",
            "scenarios/quickstart.ron",
            "--hardware",
            "paper45,,jouppi7",
        ],
        vec![
            "attention-cost",
            "--kind",
            "softmax",
            "--tokens",
            "4",
            "--dim",
            "8",
            "--heads",
            "2",
            "--hardware",
            " ",
        ],
        vec!["price", "no-such-ledger.json", "--hardware", ""],
    ] {
        let o = picojoule(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("--hardware is empty"), "{args:?}: {err}");
    }
    let dir = temp_dir("err-empty-hw");
    run_expect_2(
        &dir,
        "Scenario(name: \"x\", hardware: \"\", input: Synthetic, tokens: 2, runs: [(model: \"m.ron\")])",
        &["s.ron", "`hardware` names an empty cost model"],
    );
}

/// An output folder that cannot be created or written is the user's mistake: exit code 2,
/// naming the path, and nothing written.
#[test]
fn an_unwritable_out_folder_exits_2_naming_it() {
    let dir = temp_dir("err-out");
    write(&dir, "file", "not a folder");
    let out = dir.join("file").join("sub");
    let o = picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--tokens",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(out.to_str().unwrap()), "{err}");
    assert!(!out.exists());
}

#[test]
fn negative_operands_in_exponent_notation_are_values() {
    let o = picojoule(&[
        "numerics", "mul", "--mode", "lmul", "--format", "fp32", "1.5", "2", "-1e-3", "4",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));
    let o = picojoule(&["numerics", "mul", "-2.5E+1", "-3"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A word that is not a number is still refused.
    let o = picojoule(&["numerics", "mul", "1", "-x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
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
    // An output path that cannot be written is the user's to fix: exit 2.
    assert_eq!(o.status.code(), Some(2), "{err}");
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
