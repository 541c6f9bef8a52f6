//! The reports people share: the versioned JSON against its published schema, one summary row
//! per run, accuracy beside energy in `compare` and `price`, `--html` on `merge` and `price`,
//! and the smaller commands' outputs (`inspect`, `error-table --format md`, `reproduce --root`,
//! `--help`).

use std::path::Path;

use serde_json::Value;

use super::util::*;

/// A language model on text in fp32 and bf16 (which counts mul and add apart), the fp32 run the
/// baseline: accuracy, fidelity and the baseline ratio all present.
fn text_scenario(dir: &Path) -> String {
    let text = repo_path("data/text/sotu-test.txt");
    let model = repo_path("models/transformer-lm-tiny-softmax.ron");
    let s = format!(
        r#"Scenario(
    name: "reports",
    seed: 1,
    hardware: "horowitz45",
    input: Text("{}"),
    tokens: 24,
    baseline: Some("fp32"),
    runs: [
        (model: "{}", label: Some("fp32")),
        (model: "{}", label: Some("bf16"), arith: (mode: "bf16")),
    ],
)"#,
        text.display(),
        model.display(),
        model.display()
    );
    write(dir, "reports.ron", &s).display().to_string()
}

/// Two groups of two runs and an n-gram reference, so that a report has `groups`,
/// `group_differences` and `references`.
fn grouped_scenario(dir: &Path) -> String {
    let s = format!(
        r#"Scenario(
    name: "grouped",
    seed: 1,
    hardware: "horowitz45",
    input: Text("{}"),
    tokens: 16,
    runs: [
        (model: "{m}", label: Some("a"), group: Some("tiny")),
        (model: "{m}", label: Some("b"), group: Some("tiny"), arith: (mode: "bf16")),
        (model: "{m}", label: Some("c"), group: Some("tiny fp16"), arith: (mode: "fp16")),
        (model: "{m}", label: Some("d"), group: Some("tiny fp16"), arith: (mode: "e5m7")),
    ],
    references: [(kind: NGram(order: 3, discount: 0.75), train: "{}", label: Some("n-gram"))],
)"#,
        repo_path("data/text/sotu-test.txt").display(),
        repo_path("data/text/sotu-train.txt").display(),
        m = repo_path("models/transformer-lm-tiny-softmax.ron").display(),
    );
    write(dir, "grouped.ron", &s).display().to_string()
}

/// Check `v` against the JSON Schema `schema` (the draft 2020-12 keywords the published
/// schemas use: type, const, enum, required, properties, additionalProperties, items,
/// minItems, maxItems, minimum, anyOf, $ref into $defs). Errors name the JSON path.
fn validate(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $defs refs");
        let target = &root["$defs"][name];
        assert!(!target.is_null(), "unknown $ref {r}");
        return validate(root, target, v, at, errors);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let ok = any.iter().any(|s| {
            let mut e = Vec::new();
            validate(root, s, v, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{at}: matches none of anyOf"));
        }
        return;
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        errors.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} not in {e:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => panic!("bad type at {at}"),
        };
        let fits = |ty: &str| match ty {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_u64() || v.is_i64(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            errors.push(format!("{at}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let (Some(min), Some(x)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64())
        && x < min
    {
        errors.push(format!("{at}: {x} below {min}"));
    }
    if let Some(obj) = v.as_object() {
        for k in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let k = k.as_str().unwrap();
            if !obj.contains_key(k) {
                errors.push(format!("{at}: missing required key `{k}`"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in obj {
            let here = format!("{at}.{k}");
            match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => validate(root, s, x, &here, errors),
                (None, Some(s)) if s.is_object() => validate(root, s, x, &here, errors),
                _ => {}
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(n) = schema.get("minItems").and_then(Value::as_u64)
            && (a.len() as u64) < n
        {
            errors.push(format!("{at}: fewer than {n} items"));
        }
        if let Some(n) = schema.get("maxItems").and_then(Value::as_u64)
            && (a.len() as u64) > n
        {
            errors.push(format!("{at}: more than {n} items"));
        }
        if let Some(s) = schema.get("items") {
            for (i, x) in a.iter().enumerate() {
                validate(root, s, x, &format!("{at}[{i}]"), errors);
            }
        }
    }
}

fn schema_errors(report: &Value) -> Vec<String> {
    errors_against("docs/schema/run-report.schema.json", report)
}

fn errors_against(schema_file: &str, report: &Value) -> Vec<String> {
    let text = std::fs::read_to_string(repo_path(schema_file)).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let mut errors = Vec::new();
    validate(&schema, &schema, report, "$", &mut errors);
    errors
}

fn json(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn run_reports_of_every_family_validate_against_the_published_schema() {
    let dir = temp_dir("schema");
    let text = text_scenario(&dir);
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", &text, "--format", "json"],
        vec![
            "run",
            "scenarios/quickstart.ron",
            "--format",
            "json",
            "--convention",
            "spikegpt-paper",
        ],
        vec![
            "run",
            "scenarios/digits.ron",
            "--tokens",
            "8",
            "--convention",
            "neurobench",
            "--format",
            "json",
        ],
    ];
    let grouped = grouped_scenario(&dir);
    let mut cases = cases;
    cases.push(vec!["run", &grouped, "--format", "json"]);
    for args in cases {
        let v = json(&picojoule(&args));
        assert_eq!(v["schema_version"], 1, "{args:?}");
        let errors = schema_errors(&v);
        assert!(errors.is_empty(), "{args:?}: {errors:#?}");
        if args[1] == grouped {
            assert_eq!(v["references"].as_array().map(Vec::len), Some(1));
            assert_eq!(v["groups"][0]["runs"].as_array().map(Vec::len), Some(2));
            let d = v["group_differences"]
                .as_array()
                .expect("group differences");
            let pairs: Vec<(&str, &str)> = d
                .iter()
                .map(|x| (x["a"].as_str().unwrap(), x["b"].as_str().unwrap()))
                .collect();
            assert_eq!(
                pairs,
                [
                    ("tiny", "tiny fp16"),
                    ("tiny", "n-gram"),
                    ("tiny fp16", "n-gram")
                ]
            );
            assert!(d[0]["energy_ratio"].as_f64().is_some());
            assert!(d[1]["energy_ratio"].is_null() && d[1]["b_is_reference"] == true);
        }
    }
}

#[test]
fn the_validator_rejects_a_report_that_breaks_the_schema() {
    let mut v = json(&picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--format",
        "json",
    ]));
    v["runs"][0]["totals"]
        .as_object_mut()
        .unwrap()
        .remove("compute_pj");
    v["runs"][1]["unit"] = "image".into();
    v["schema_version"] = 2.into();
    let errors = schema_errors(&v).join("\n");
    assert!(errors.contains("compute_pj"), "{errors}");
    assert!(errors.contains("$.runs[1].unit"), "{errors}");
    assert!(errors.contains("$.schema_version"), "{errors}");
}

#[test]
fn json_names_the_convention_the_unit_and_splits_mac_into_mul_and_add() {
    let dir = temp_dir("json-fields");
    let v = json(&picojoule(&[
        "run",
        &text_scenario(&dir),
        "--format",
        "json",
    ]));
    assert_eq!(v["convention"]["id"], "full");
    assert!(
        v["convention"]["description"]
            .as_str()
            .unwrap()
            .starts_with("full:")
    );
    assert!(v["compute"].as_str().unwrap().contains("neuron updates"));
    let (fp32, bf16) = (&v["runs"][0], &v["runs"][1]);
    assert_eq!(fp32["unit"], "token");
    assert!(fp32["metrics"]["per_unit"]["Dense"].as_f64().unwrap() > 0.0);
    assert!(fp32["metrics"].get("per_token").is_none());
    // bf16 counts each product and its accumulation apart: MAC 0, the work in mul and add.
    assert_eq!(bf16["totals"]["mac"], 0);
    assert!(bf16["totals"]["mul"].as_u64().unwrap() > 0);
    assert!(fp32["totals"]["mac"].as_u64().unwrap() > 0);
    // compute + memory = total.
    for r in [fp32, bf16] {
        let t = &r["totals"];
        let sum = t["compute_pj"].as_f64().unwrap() + t["memory_pj"].as_f64().unwrap();
        let total = t["energy_pj"].as_f64().unwrap();
        assert!((sum - total).abs() <= 1e-9 * total, "{sum} vs {total}");
    }
    let o = picojoule(&["run", &text_scenario(&dir)]);
    let out = stdout(&o);
    assert!(out.contains("sha256 prefix "), "{out}");
    assert!(
        out.contains("bf16 (mul "),
        "the MAC 0 of bf16 is explained: {out}"
    );
}

#[test]
fn csv_rows_runs_gives_one_summary_row_per_run_and_layers_stays_the_default() {
    let dir = temp_dir("rows");
    let sc = text_scenario(&dir);
    let o = picojoule(&["run", &sc, "--format", "csv", "--rows", "runs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let header: Vec<&str> = lines[0].split(',').collect();
    for col in [
        "run",
        "hardware",
        "convention",
        "energy_pj",
        "energy_pj_per_unit",
        "compute_pj",
        "memory_pj",
        "bits_per_char",
        "top1",
        "unpriced_actions",
    ] {
        assert!(header.contains(&col), "{col} missing: {}", lines[0]);
    }
    let bf16: Vec<&str> = lines[2].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(bf16[col("run")], "bf16");
    assert!(bf16[col("bits_per_char")].parse::<f64>().unwrap() > 0.0);
    assert!(
        bf16[col("energy_ratio_to_baseline")]
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    // The default: per layer, as before.
    let layers = stdout(&picojoule(&["run", &sc, "--format", "csv"]));
    assert!(layers.starts_with("run,model,variant,arithmetic,hardware,convention,tokens,layer,"));
    assert!(layers.lines().count() > 3);
    let bad = picojoule(&["run", &sc, "--rows", "points"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn price_keeps_accuracy_fidelity_and_baseline_and_writes_html() {
    let dir = temp_dir("price");
    let sc = text_scenario(&dir);
    let out = dir.join("run");
    let o = picojoule(&["run", &sc, "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("report-runs.csv").exists());
    let priced_dir = dir.join("priced");
    let v = json(&picojoule(&[
        "price",
        out.join("ledger.json").to_str().unwrap(),
        "--hardware",
        "jouppi7",
        "--format",
        "json",
        "--out",
        priced_dir.to_str().unwrap(),
        "--html",
    ]));
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["hardware"]["name"], "jouppi7");
    let bf16 = &v["runs"][1];
    assert!(bf16["accuracy"]["bits_per_token"].as_f64().unwrap() > 0.0);
    assert!(bf16["fidelity"]["top1_agreement"].as_f64().is_some());
    assert!(bf16["energy_ratio_to_baseline"].as_f64().unwrap() > 0.0);
    for f in [
        "report.json",
        "report.csv",
        "report-runs.csv",
        "report.md",
        "report.html",
    ] {
        assert!(priced_dir.join(f).exists(), "{f}");
    }
    assert!(!priced_dir.join("ledger.json").exists());
    let html = std::fs::read_to_string(priced_dir.join("report.html")).unwrap();
    assert!(html.contains("jouppi7"));
    let no_out = picojoule(&[
        "price",
        out.join("ledger.json").to_str().unwrap(),
        "--hardware",
        "jouppi7",
        "--html",
    ]);
    assert_eq!(no_out.status.code(), Some(2), "--html needs --out");
}

#[test]
fn compare_shows_accuracy_beside_energy() {
    let dir = temp_dir("compare");
    let sc = text_scenario(&dir);
    let v = json(&picojoule(&[
        "compare",
        &sc,
        "--hardware",
        "horowitz45,jouppi7",
        "--format",
        "json",
    ]));
    assert_eq!(v["schema_version"], 1);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert!(r["bits_per_char"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["top1"].as_f64().is_some());
    }
    // The same accuracy under both cost models.
    assert_eq!(rows[0]["bits_per_char"], rows[2]["bits_per_char"]);
    let text = stdout(&picojoule(&["compare", &sc]));
    assert!(
        text.contains("bits/char") && text.contains("top-1"),
        "{text}"
    );
}

#[test]
fn sweep_json_is_versioned_with_named_energy_kinds_and_merge_writes_html() {
    let dir = temp_dir("sweep-json");
    let part = dir.join("part");
    let all = dir.join("all");
    let o = picojoule(&[
        "sweep",
        "scenarios/quickstart.ron",
        "--set",
        "add.fp32=0.5,0.9",
        "--out",
        part.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v = json(&o);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["meta"]["convention"]["id"], "full");
    let kinds = &v["rows"][0]["by_kind"];
    for k in ["compute", "nonlinear", "neuron", "metric", "memory"] {
        assert!(kinds[k].is_number(), "by_kind.{k}: {kinds}");
    }
    let o = picojoule(&[
        "merge",
        part.to_str().unwrap(),
        "--out",
        all.to_str().unwrap(),
        "--html",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(all.join("report.html").exists());
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(all.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(merged["rows"], v["rows"]);
}

/// Sweep JSON of a cost axis with a view, Monte Carlo samples, a break-even and a shard, and of
/// a numerics axis with accuracy, validates against the published sweep schema; a row with a
/// missing field does not.
#[test]
fn sweep_json_validates_against_the_published_schema() {
    let dir = temp_dir("sweep-schema");
    let trained = dir.join("trained.ron");
    std::fs::write(
        &trained,
        format!(
            "Scenario(name: \"t\", seed: 1, hardware: \"horowitz45\", input: Text({:?}), tokens: 8, runs: [(model: {:?})])",
            repo_path("data/text/sotu-test.txt"),
            repo_path("models/spikegpt-sotu-twin.ron"),
        ),
    )
    .unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "sweep",
            "scenarios/quickstart.ron",
            "--range",
            "add.fp32=0.1:1.0:3",
            "--samples",
            "4",
            "--breakeven",
            "1,2",
            "--convention",
            "spikegpt-paper",
            "--shard",
            "1/2",
            "--format",
            "json",
        ],
        vec![
            "sweep",
            trained.to_str().unwrap(),
            "--set",
            "arith.mode=fp32,bf16",
            "--format",
            "json",
        ],
    ];
    for args in cases {
        let mut v = json(&picojoule(&args));
        let errors = errors_against("docs/schema/sweep.schema.json", &v);
        assert!(errors.is_empty(), "{args:?}: {errors:#?}");
        assert!(!v["rows"].as_array().unwrap().is_empty());
        v["rows"][0].as_object_mut().unwrap().remove("by_kind");
        assert!(!errors_against("docs/schema/sweep.schema.json", &v).is_empty());
    }
}

#[test]
fn an_ac_axis_moves_the_accumulate_price_and_leaves_mac_alone() {
    let o = picojoule(&[
        "sweep",
        "scenarios/quickstart.ron",
        "--set",
        "ac.fp32=0.03,0.9",
        "--format",
        "json",
    ]);
    let v = json(&o);
    let rows = v["rows"].as_array().unwrap();
    let energy = |point: u64, run: &str| {
        rows.iter()
            .find(|r| r["point"] == point && r["run"].as_str().unwrap().ends_with(run))
            .unwrap()["energy_pj"]
            .as_f64()
            .unwrap()
    };
    // The spike-driven run accumulates: cheaper ACs make it cheaper.
    assert!(energy(0, "spike_driven") < energy(1, "spike_driven"));
    // The non-spiking run only does MACs (mul + add): unchanged.
    assert_eq!(energy(0, "non_spiking"), energy(1, "non_spiking"));
    // At the add's own price (0.9 pJ in horowitz45) nothing changes against the plain run.
    let run = json(&picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--format",
        "json",
    ]));
    let plain = run["runs"][1]["totals"]["energy_pj"].as_f64().unwrap();
    assert!((energy(1, "spike_driven") - plain).abs() <= 1e-9 * plain);
}

#[test]
fn inspect_gives_dense_macs_and_bytes_for_every_family_without_debug_output() {
    for model in [
        "models/digits-ann.ron",
        "models/digits-conv-rnn.ron",
        "models/transformer-lm-tiny-ecoformer.ron",
        "models/digits-vit-softmax.ron",
        "models/spikegpt-tiny.ron",
        "models/digits-snn-snntorch.ron",
    ] {
        let o = picojoule(&["inspect", model]);
        assert!(o.status.success(), "{model}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("dense MACs per "), "{model}: {out}");
        assert!(
            out.contains("weight bytes per number format"),
            "{model}: {out}"
        );
        for debug in ["Spec", "{ ", "Some("] {
            assert!(
                !out.contains(debug),
                "{model}: debug output `{debug}`: {out}"
            );
        }
    }
    let out = stdout(&picojoule(&["inspect", "models/digits-conv-rnn.ron"]));
    assert!(out.contains("  2: Linear(256,32,true)"), "{out}");
    // The snnTorch MLP (64-128-10) over its 8 steps: (64 x 128 + 128 x 10) x 8.
    let out = stdout(&picojoule(&["inspect", "models/digits-snn-snntorch.ron"]));
    assert!(out.contains("dense MACs per sample 75776 "), "{out}");
}

#[test]
fn error_table_prints_markdown() {
    let o = picojoule(&[
        "numerics",
        "error-table",
        "--samples",
        "200",
        "--format",
        "md",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("| row | mean |rel| %"), "{out}");
    assert!(out.contains("|---|---:|"), "{out}");
    assert!(out.contains("log-uniform in [0.0625, 16]"), "{out}");
}

#[test]
fn reproduce_reads_its_files_from_root() {
    let elsewhere = temp_dir("reproduce-root");
    let bin = env!("CARGO_BIN_EXE_picojoule");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .current_dir(&elsewhere)
            .output()
            .unwrap()
    };
    let o = run(&["reproduce", "--only", "spikegpt", "--tokens", "300"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--root"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let root = repo();
    let o = run(&[
        "reproduce",
        "--only",
        "lmul",
        "--root",
        root.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("L-Mul"));
}

#[test]
fn every_argument_has_help_text() {
    use clap::CommandFactory;
    fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in c.get_arguments() {
            let id = a.get_id().as_str();
            if id == "help" || id == "version" || a.is_hide_set() {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for s in c.get_subcommands() {
            walk(s, &format!("{path} {}", s.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&picojoule::cli::Cli::command(), "picojoule", &mut missing);
    assert!(missing.is_empty(), "arguments without help: {missing:?}");
}
