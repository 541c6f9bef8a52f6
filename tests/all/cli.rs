use super::util::*;

#[test]
fn quickstart_runs_and_prints_a_table_with_all_three_forms() {
    let o = picojoule(&["run", "scenarios/quickstart.ron"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for form in [
        "spikegpt-tiny/reference",
        "spikegpt-tiny/spike_driven",
        "spikegpt-tiny/non_spiking",
    ] {
        assert!(out.contains(form), "{out}");
    }
    assert!(out.contains("horowitz45"));
    assert!(
        out.contains("unpriced"),
        "unpriced work must be named: {out}"
    );
}

#[test]
fn json_report_has_the_documented_keys() {
    let o = picojoule(&["run", "scenarios/quickstart.ron", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        for k in [
            "model", "variant", "hardware", "tokens", "totals", "layers", "metrics",
        ] {
            assert!(run.get(k).is_some(), "missing {k}");
        }
        for k in [
            "mac",
            "ac",
            "synops",
            "spikes",
            "neuron_updates",
            "energy_pj",
        ] {
            assert!(run["totals"].get(k).is_some(), "missing totals.{k}");
        }
        let layer = &run["layers"][0];
        for k in ["name", "mac", "ac", "energy_pj"] {
            assert!(layer.get(k).is_some(), "missing layers[].{k}");
        }
        for k in [
            "Effective_MACs",
            "Effective_ACs",
            "Dense",
            "MembraneUpdates",
        ] {
            assert!(run["metrics"].get(k).is_some(), "missing metrics.{k}");
        }
    }
    // The spike-driven form does ACs, the reference form none.
    assert_eq!(runs[0]["totals"]["ac"], 0);
    assert!(runs[1]["totals"]["ac"].as_u64().unwrap() > 0);
    assert!(v["hardware"]["sha256"].as_str().unwrap().len() == 64);
}

#[test]
fn out_dir_gets_reports_and_ledger_that_agree_with_stdout() {
    let dir = temp_dir("out");
    let d = dir.to_str().unwrap();
    let o = picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--format",
        "json",
        "--out",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["report.json", "report.csv", "report.md", "ledger.json"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    assert_eq!(std::fs::read(dir.join("report.json")).unwrap(), o.stdout);
    let csv = std::fs::read_to_string(dir.join("report.csv")).unwrap();
    assert!(csv.starts_with("run,model,variant"));
    assert_eq!(csv.lines().filter(|l| l.contains(",TOTAL,")).count(), 3);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

#[test]
fn same_scenario_gives_byte_identical_json_on_one_and_two_threads() {
    let a = picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--format",
        "json",
        "--threads",
        "1",
    ]);
    let b = picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--format",
        "json",
        "--threads",
        "2",
    ]);
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn malformed_scenario_names_file_line_and_column_with_exit_code_2() {
    let dir = temp_dir("bad-ron");
    let p = write(
        &dir,
        "bad.ron",
        "Scenario(\n  name: \"x\",\n  seed: \"forty\",\n)\n",
    );
    let o = picojoule(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.ron:3:"), "{err}");
    assert!(
        err.contains("seed: \"forty\""),
        "the offending line is shown: {err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn unknown_scenario_field_lists_the_valid_ones() {
    let dir = temp_dir("unknown-field");
    let p = write(
        &dir,
        "s.ron",
        "Scenario(name: \"x\", hardware: \"horowitz45\", input: Synthetic, tokens: 4, runs: [], colour: 1)",
    );
    let o = picojoule(&["run", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("colour") && err.contains("tokens"), "{err}");
}

#[test]
fn missing_file_and_unknown_hardware_are_input_errors() {
    let o = picojoule(&["run", "no/such/scenario.ron"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such/scenario.ron"));
    let o = picojoule(&["hardware", "show", "nonesuch"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("horowitz45"),
        "lists the presets: {}",
        stderr(&o)
    );
}

#[test]
fn bad_flag_value_exits_2() {
    let o = picojoule(&["run", "scenarios/quickstart.ron", "--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--format"));
}

#[test]
fn hardware_show_prints_every_entry_with_value_unit_and_source() {
    let o = picojoule(&["hardware", "show", "horowitz45"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let mul = out
        .lines()
        .find(|l| l.starts_with("mul.fp32\t"))
        .expect("mul.fp32 line");
    assert!(
        mul.contains("3.7") && mul.contains("pJ") && mul.contains("Horowitz"),
        "{mul}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("memory.dram.read\t1300..2600")),
        "{out}"
    );
    let list = stdout(&picojoule(&["hardware", "list"]));
    assert!(list.contains("horowitz45") && list.contains("jouppi7"));
}

#[test]
fn inspect_reports_parameters_and_executed_dense_macs() {
    let o = picojoule(&["inspect", "models/spikegpt-tiny.ron"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // L (13 d^2 + 11 d) + 4 d + 2 V d with L = 2, d = 64, V = 96.
    let params = 2 * (13 * 64 * 64 + 11 * 64) + 4 * 64 + 2 * 96 * 64;
    assert!(out.contains(&format!("parameters {params}")), "{out}");
    // Dense MACs per token: 2 blocks x (4 d^2 + 2 * 4 d^2 + d^2) + V d.
    let dense = 2 * (13 * 64 * 64) + 96 * 64;
    assert!(
        out.contains(&format!("dense MACs per token {dense}")),
        "{out}"
    );
}

#[test]
fn every_shipped_scenario_loads_and_names_existing_models() {
    use picojoule::scenario::LoadedScenario;
    for entry in std::fs::read_dir(repo_path("scenarios")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let sc = LoadedScenario::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for run in &sc.scenario.runs {
            assert!(
                sc.resolve(&run.model).exists(),
                "{}: model {} does not exist",
                p.display(),
                run.model
            );
        }
    }
}

#[test]
fn a_run_can_bring_its_own_input_token_count_and_baseline() {
    let dir = temp_dir("per-run");
    let digits = repo_path("data/digits/digits-test.csv");
    let sc = format!(
        r#"Scenario(name: "mixed", hardware: "horowitz45", input: Synthetic, tokens: 8,
            baseline: Some("lm"),
            runs: [
                (model: {lm:?}, label: Some("lm")),
                (model: {lm:?}, label: Some("lm twin"), variant: Some(NonSpiking)),
                (model: {ann:?}, label: Some("ann"), input: Some(Digits({digits:?})), tokens: Some(5), baseline: Some("ann")),
                (model: {snn:?}, label: Some("snn"), input: Some(Digits({digits:?})), tokens: Some(7), baseline: Some("ann")),
            ])"#,
        lm = repo_path("models/spikegpt-tiny.ron").to_str().unwrap(),
        ann = repo_path("models/digits-ann.ron").to_str().unwrap(),
        snn = repo_path("models/digits-snn.ron").to_str().unwrap(),
        digits = digits.to_str().unwrap(),
    );
    let p = write(&dir, "mixed.ron", &sc);
    let o = picojoule(&["run", p.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let field = |i: usize, k: &str| runs[i][k].clone();
    assert_eq!(field(0, "tokens"), 8);
    assert_eq!(field(2, "tokens"), 5);
    assert_eq!(field(3, "tokens"), 7);
    assert!(
        runs[0].get("input").is_none(),
        "the scenario's input is not repeated"
    );
    assert!(
        field(2, "input").as_str().unwrap().starts_with("digits "),
        "{}",
        field(2, "input")
    );
    assert_eq!(field(0, "energy_ratio_to_baseline"), 1.0);
    assert_eq!(field(2, "energy_ratio_to_baseline"), 1.0);
    let per = |i: usize| runs[i]["totals"]["energy_pj_per_token"].as_f64().unwrap();
    let ratio = |i: usize| field(i, "energy_ratio_to_baseline").as_f64().unwrap();
    assert!((ratio(1) - per(1) / per(0)).abs() < 1e-12);
    assert!((ratio(3) - per(3) / per(2)).abs() < 1e-12);
    // A baseline that is not a run's label is refused.
    let bad = write(
        &dir,
        "bad.ron",
        &sc.replace(
            "baseline: Some(\"ann\")),\n                (model",
            "baseline: Some(\"nope\")),\n                (model",
        ),
    );
    let o = picojoule(&["run", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("baseline `nope`"), "{}", stderr(&o));
}

/// `run --dump-outputs` writes one JSON line per run and token, naming the run.
#[test]
fn dump_outputs_writes_a_line_per_run_and_token() {
    let dir = temp_dir("dump");
    let f = dir.join("steps.jsonl");
    let o = picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--tokens",
        "7",
        "--dump-outputs",
        f.to_str().unwrap(),
        "--top-k",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&f).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sc = std::fs::read_to_string(repo_path("scenarios/quickstart.ron")).unwrap();
    let runs = sc.matches("(model:").count();
    assert_eq!(lines.len(), 7 * runs);
    assert_eq!(lines[0]["index"], 0);
    assert_eq!(lines[0]["top"].as_array().unwrap().len(), 2);
    assert!(lines[0]["run"].is_string() && lines[0]["spikes"].is_object());
    // --top-k without --dump-outputs is a usage error.
    let o = picojoule(&["run", "scenarios/quickstart.ron", "--top-k", "3"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn run_hardware_flag_prices_the_scenario_with_another_cost_model() {
    let o = picojoule(&[
        "run",
        repo_path("scenarios/quickstart.ron").to_str().unwrap(),
        "--tokens",
        "4",
        "--hardware",
        "paper45",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("hardware paper45 [paper45]"),
        "{}",
        stdout(&o)
    );
    let o = picojoule(&[
        "run",
        repo_path("scenarios/quickstart.ron").to_str().unwrap(),
        "--hardware",
        "nonesuch.ron",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--hardware nonesuch.ron: not a preset"),
        "{}",
        stderr(&o)
    );
}

/// A digits encoder with softmax attention (two mapped attention passes), with `mappings`.
fn pinned_scenario(dir: &std::path::Path, mappings: &str) -> std::path::PathBuf {
    let model = repo_path("models/digits-vit-softmax.ron");
    let data = repo_path("data/digits/digits-test.csv");
    write(
        dir,
        "pinned.ron",
        &format!(
            r#"Scenario(
    name: "pinned",
    hardware: "horowitz45",
    input: Digits("{}"),
    tokens: 2,
    runs: [(model: "{}")],
    mappings: [{mappings}],
)"#,
            data.display(),
            model.display()
        ),
    )
}

fn layer_energy(report: &serde_json::Value, layer: &str) -> (f64, String) {
    let l = report["runs"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == layer)
        .unwrap();
    (
        l["energy_pj"].as_f64().unwrap(),
        l["mappings"][0].as_str().unwrap_or_default().to_string(),
    )
}

/// A mapping pinned in the scenario replaces the mapper's choice for the layers it names: the
/// searched mapping pinned back gives the same energy; a mapping that streams every operand from
/// DRAM costs more; the other layer keeps the searched one.
#[test]
fn a_pinned_mapping_prices_the_layers_it_names() {
    let dir = temp_dir("pinned-mapping");
    let run = |mappings: &str| {
        let sc = pinned_scenario(&dir, mappings);
        let o = picojoule(&["run", sc.to_str().unwrap(), "--format", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let searched = run("");
    let (e0, m0) = layer_energy(&searched, "blocks.0.att.core.mix");
    let mapping = m0.split("}: ").nth(1).unwrap().to_string();
    assert!(!m0.contains("(pinned)"), "{m0}");
    let same = run(&format!(
        r#"(layer: "blocks.0.att.core.mix", mapping: "{mapping}")"#
    ));
    let (e1, m1) = layer_energy(&same, "blocks.0.att.core.mix");
    assert_eq!(e1, e0);
    assert!(m1.ends_with("(pinned)"), "{m1}");
    let streamed = run(
        r#"(layer: "blocks.0.*", mapping: "dram[N16 M16 C16] sram-1m[-q -k -v -out] sram-32k[-q -k -v -out] sram-8k[-q -k -v -out]")"#,
    );
    let (e2, m2) = layer_energy(&streamed, "blocks.0.att.core.mix");
    assert!(e2 > 2.0 * e0, "{e2} vs {e0}: {m2}");
    let (e3, m3) = layer_energy(&streamed, "blocks.1.att.core.mix");
    assert_eq!(e3, e0, "{m3}");
}

/// A sweep that resizes a level re-maps every pass at each size; a pinned mapping must fit at
/// every one of them, or the sweep is refused before any output, naming the point.
#[test]
fn a_sweep_that_shrinks_a_level_below_a_pinned_mapping_is_refused_naming_the_point() {
    let dir = temp_dir("pinned-sweep");
    let searched = {
        let sc = pinned_scenario(&dir, "");
        let o = picojoule(&["run", sc.to_str().unwrap(), "--format", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let (_, m) = layer_energy(&searched, "blocks.0.att.core.mix");
    let mapping = m.split("}: ").nth(1).unwrap().to_string();
    assert!(mapping.contains("sram-8k["), "{mapping}");
    let sc = pinned_scenario(
        &dir,
        &format!(r#"(layer: "blocks.0.att.core.mix", mapping: "{mapping}")"#),
    );
    let sweep = |sizes: &str| {
        picojoule(&[
            "sweep",
            sc.to_str().unwrap(),
            "--set",
            &format!("memory.sram-8k.capacity_bytes={sizes}"),
        ])
    };
    let fits = sweep("8192,16384");
    assert!(fits.status.success(), "{}", stderr(&fits));
    let o = sweep("8192,64");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    for want in [
        "blocks.0.att.core.mix",
        "sram-8k",
        "memory.sram-8k.capacity_bytes = 64",
    ] {
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    }
}

/// A pinned mapping that names no layer with mapped passes, a level the cost model does not
/// have, or factors that do not cover the pass is bad input: exit 2, the layer and what is wrong.
#[test]
fn a_pinned_mapping_that_does_not_fit_is_refused_with_the_layer_and_the_reason() {
    let dir = temp_dir("pinned-mapping-bad");
    for (mapping, want) in [
        (
            r#"(layer: "blocks.0.att.q", mapping: "dram[N16 M16 C16]")"#,
            &["`blocks.0.att.q`", "blocks.0.att.core.mix"][..],
        ),
        (
            r#"(layer: "blocks.0.att.core.mix", mapping: "dram[N16 M16 C16] glb[]")"#,
            &["blocks.0.att.core.mix", "no memory level `glb`", "sram-8k"][..],
        ),
        (
            r#"(layer: "blocks.0.att.core.mix", mapping: "dram[N16 M4 C16]")"#,
            &[
                "blocks.0.att.core.mix",
                "dim M multiply to 4, its bound is 16",
            ][..],
        ),
    ] {
        let sc = pinned_scenario(&dir, mapping);
        let o = picojoule(&["run", sc.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{mapping}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
        for w in want {
            assert!(stderr(&o).contains(w), "{mapping}: {}", stderr(&o));
        }
        assert!(stderr(&o).contains("pinned.ron"), "{}", stderr(&o));
    }
}

/// A cost model whose outermost level cannot hold a pass's tensors admits no mapping of it: bad
/// input, naming the layer, the level and the sizes, before any output is written.
#[test]
fn a_pass_no_level_can_hold_is_refused_with_the_layer_the_level_and_the_sizes() {
    let dir = temp_dir("no-mapping");
    let text = std::fs::read_to_string(repo_path("hardware/horowitz45.ron")).unwrap();
    let small: String = text
        .lines()
        .filter(|l| !l.contains("name: \"dram\""))
        .map(|l| {
            l.replace("Some(1048576)", "Some(2048)")
                .replace("Some(32768)", "Some(1024)")
                .replace("Some(8192)", "Some(512)")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let hw = write(&dir, "small.ron", &small);
    let sc = pinned_scenario(&dir, "");
    let out = dir.join("out");
    let o = picojoule(&[
        "run",
        sc.to_str().unwrap(),
        "--hardware",
        hw.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for want in [
        "layer blocks.0.att.core.mix",
        "outermost level sram-1m holds 512 words of 4 B",
        "need 1024 (q 256, k 256, v 256, out 256)",
    ] {
        assert!(err.contains(want), "{err}");
    }
    assert!(!out.join("report.json").exists());
}

/// `--explain` lists each layer's mapping (a vision transformer's attention over its patches) or
/// traced weight chain (a language model), and refuses the machine-readable formats.
#[test]
fn run_explain_names_the_mapping_or_weight_chain_of_every_layer() {
    let digits = repo_path("scenarios/digits-attention.ron");
    let o = picojoule(&[
        "run",
        digits.to_str().unwrap(),
        "--tokens",
        "2",
        "--explain",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Memory of "), "{text}");
    let mapped = text
        .lines()
        .find(|l| l.contains("mapped: "))
        .unwrap_or_default();
    assert!(
        mapped.contains("Attention { heads: 2, n: 16, m: 16") && mapped.contains("dram["),
        "{text}"
    );
    let quick = repo_path("scenarios/quickstart.ron");
    let o = picojoule(&[
        "run",
        quick.to_str().unwrap(),
        "--tokens",
        "2",
        "--explain",
        "--format",
        "md",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("| weights traced through "),
        "{}",
        stdout(&o)
    );
    let o = picojoule(&[
        "run",
        quick.to_str().unwrap(),
        "--explain",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--explain"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}
