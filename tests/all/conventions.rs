//! Counting conventions on any run: `run`, `compare` and `sweep --convention` (and the scenario
//! field) show each run under a convention beside its full accounting, never in its place.

use picojoule::convention::Convention;
use picojoule::scenario::LoadedScenario;

use super::util::{picojoule, repo_path, stderr, stdout, temp_dir, write};

fn json(args: &[&str]) -> serde_json::Value {
    let o = picojoule(args);
    assert!(o.status.success(), "{:?}: {}", args, stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_convention_view_leaves_the_full_accounting_unchanged() {
    let base = [
        "run",
        "scenarios/quickstart.ron",
        "--tokens",
        "16",
        "--format",
        "json",
    ];
    let full = json(&base);
    let paper = json(&[&base[..], &["--convention", "spikegpt-paper"]].concat());
    assert!(full.get("view").is_none());
    assert_eq!(paper["view"]["convention"], "spikegpt-paper");
    assert_eq!(paper["view"]["hardware"], "paper45");
    for (f, p) in full["runs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(paper["runs"].as_array().unwrap())
    {
        assert_eq!(f["totals"], p["totals"]);
        assert_eq!(f["layers"], p["layers"]);
        assert!(f.get("under_convention").is_none());
        let c = &p["under_convention"]["counts"];
        let (mul, add) = (c["mul"].as_u64().unwrap(), c["add"].as_u64().unwrap());
        let lines = c["lines"].as_array().unwrap();
        let sum = |k: &str| lines.iter().map(|l| l[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!((sum("mul"), sum("add")), (mul, add));
        // paper45: 3.7 pJ per multiply, 0.9 pJ per add.
        let e = c["energy_pj"].as_f64().unwrap();
        let expected = 3.7 * mul as f64 + 0.9 * add as f64;
        assert!((e - expected).abs() <= 1e-9 * expected, "{e} vs {expected}");
        // The paper view leaves out memory and more: it is far below the full energy.
        assert!(e < p["totals"]["energy_pj"].as_f64().unwrap());
    }
}

#[test]
fn the_neurobench_view_is_the_effective_synaptic_operations() {
    let v = json(&[
        "run",
        "scenarios/digits.ron",
        "--tokens",
        "12",
        "--convention",
        "neurobench",
        "--format",
        "json",
    ]);
    for run in v["runs"].as_array().unwrap() {
        let m = &run["metrics"];
        let c = &run["under_convention"]["counts"];
        let (macs, acs) = (
            m["Effective_MACs"].as_u64().unwrap(),
            m["Effective_ACs"].as_u64().unwrap(),
        );
        assert!(macs + acs > 0);
        assert_eq!(c["mul"].as_u64().unwrap(), macs);
        assert_eq!(c["add"].as_u64().unwrap(), macs + acs);
    }
}

#[test]
fn a_paper_convention_on_a_model_it_does_not_describe_is_not_applicable() {
    let v = json(&[
        "run",
        "scenarios/digits.ron",
        "--tokens",
        "4",
        "--convention",
        "spikegpt-paper",
        "--format",
        "json",
    ]);
    for run in v["runs"].as_array().unwrap() {
        let u = &run["under_convention"];
        assert!(u.get("counts").is_none(), "{u}");
        assert!(
            u["not_applicable"].as_str().unwrap().contains("SpikeGPT"),
            "{u}"
        );
    }
    let t = stdout(&picojoule(&[
        "run",
        "scenarios/digits.ron",
        "--tokens",
        "4",
        "--convention",
        "ecoformer-paper",
    ]));
    assert!(t.contains("ANN (dense): not applicable: EcoFormer"), "{t}");
}

#[test]
fn the_flag_overrides_the_scenario_field_and_a_bad_name_is_refused() {
    let dir = temp_dir("conv-field");
    let model = repo_path("models/spikegpt-tiny.ron");
    let sc = |conv: &str| {
        format!(
            "Scenario(name: \"c\", hardware: \"horowitz45\", input: Synthetic, tokens: 8, convention: {conv:?},\n runs: [(model: {:?})])",
            model.to_str().unwrap()
        )
    };
    let p = write(&dir, "c.ron", &sc("neurobench"));
    let path = p.to_str().unwrap();
    let v = json(&["run", path, "--format", "json"]);
    assert_eq!(v["view"]["convention"], "neurobench");
    let v = json(&["run", path, "--format", "json", "--convention", "full"]);
    assert!(v.get("view").is_none());
    let v = json(&[
        "compare",
        path,
        "--format",
        "json",
        "--convention",
        "spikegpt-paper",
    ]);
    assert_eq!(v["view"]["convention"], "spikegpt-paper");
    assert!(
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["convention"] == "spikegpt-paper")
    );
    let bad = write(&dir, "bad.ron", &sc("paper"));
    let o = picojoule(&["run", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.ron") && e.contains("unknown convention `paper`"),
        "{e}"
    );
    let o = picojoule(&["run", path, "--convention", "paper"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--convention"), "{}", stderr(&o));
}

#[test]
fn the_pvtv2_scenario_asks_for_the_ecoformer_paper_convention() {
    let sc = LoadedScenario::load(&repo_path("scenarios/paper-ecoformer-pvtv2.ron")).unwrap();
    assert_eq!(sc.scenario.convention, Convention::EcoformerPaper);
}

#[test]
fn a_sweep_carries_the_view_on_every_row() {
    let v = json(&[
        "sweep",
        "scenarios/quickstart.ron",
        "--set",
        "add.fp32=0.5,1",
        "--convention",
        "spikegpt-paper",
        "--format",
        "json",
    ]);
    assert_eq!(v["meta"]["view"]["convention"], "spikegpt-paper");
    let rows = v["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert!(r["view"]["mul"].as_u64().is_some(), "{r}");
    }
    // Along a cost axis the view (priced with paper45) does not move; the full energy does.
    assert_eq!(rows[0]["view"], rows[3]["view"]);
    assert_ne!(rows[0]["energy_pj"], rows[3]["energy_pj"]);
}

#[test]
fn a_run_takes_the_released_code_normalisation_with_the_same_weights() {
    let dir = temp_dir("conv-norm");
    let m = |name: &str| {
        repo_path(&format!("models/{name}.ron"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let eco = m("transformer-lm-tiny-ecoformer");
    let sc = format!(
        "Scenario(name: \"n\", seed: 3, hardware: \"horowitz45\", input: Synthetic, tokens: 16,\n runs: [(model: {eco:?}), (model: {eco:?}, normalisation: Some(EcoformerCode))])"
    );
    let p = write(&dir, "n.ron", &sc);
    let v = json(&["run", p.to_str().unwrap(), "--format", "json"]);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(
        runs[0]["label"],
        "transformer-lm-tiny-ecoformer/ecoformer-style"
    );
    assert_eq!(
        runs[1]["label"],
        "transformer-lm-tiny-ecoformer/ecoformer-code"
    );
    assert_eq!(
        runs[0]["metrics"]["ParameterCount"],
        runs[1]["metrics"]["ParameterCount"]
    );
    // The normalised form sums the values once more (one add per value element and token).
    assert_ne!(runs[0]["totals"], runs[1]["totals"]);
    let soft = m("transformer-lm-tiny-softmax");
    let bad = write(
        &dir,
        "bad.ron",
        &format!(
            "Scenario(name: \"b\", hardware: \"horowitz45\", input: Synthetic, tokens: 4,\n runs: [(model: {soft:?}, normalisation: Some(EcoformerCode))])"
        ),
    );
    let o = picojoule(&["run", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`normalisation` applies to models with EcoFormer hashed attention"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn attention_cost_counts_the_released_code_form_under_the_paper_convention() {
    let args = [
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
    ];
    let default = stdout(&picojoule(&args));
    let code = stdout(&picojoule(
        &[&args[..], &["--normalisation", "ecoformer-code"]].concat(),
    ));
    let normalised = stdout(&picojoule(
        &[&args[..], &["--normalisation", "normalised"]].concat(),
    ));
    assert_eq!(default, code);
    assert_ne!(default, normalised);
    let help = stdout(&picojoule(&["attention-cost", "--help"]));
    assert!(help.contains("ecoformer-code under --convention"), "{help}");
}
