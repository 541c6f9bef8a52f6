//! NIR graphs exported by snnTorch and Norse (tests/fixtures/nir), imported and run: spike counts
//! per layer and outputs per step match what each framework computed on the same input.

use std::path::Path;

use picojoule::engine::Arith;
use picojoule::models::nir::{Convention, Nir, read_nir};

use super::util::*;

struct Fixture {
    input: Vec<Vec<f32>>,
    spike_counts: Vec<(String, u64)>,
    outputs: Vec<Vec<f32>>,
}

fn fixture(name: &str) -> Fixture {
    fixture_fields(name, "")
}

/// The fixture's outputs as nirtorch computes them from the file (recurrent fixtures).
fn fixture_graph(name: &str) -> Fixture {
    fixture_fields(name, "graph_")
}

fn fixture_fields(name: &str, prefix: &str) -> Fixture {
    let text =
        std::fs::read_to_string(repo_path(&format!("tests/fixtures/nir/{name}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = |k: &str| -> Vec<Vec<f32>> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
                    .collect()
            })
            .collect()
    };
    Fixture {
        input: rows("input"),
        outputs: rows(&format!("{prefix}outputs")),
        spike_counts: v[format!("{prefix}spike_counts")]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect(),
    }
}

/// Run the fixture `name` under `convention` and `dt`; per-node spike counts and per-step outputs.
fn run(name: &str, convention: Convention, dt: f64) -> (Vec<(String, u64)>, Vec<Vec<f32>>) {
    let path = repo_path(&format!("tests/fixtures/nir/{name}.nir"));
    let (cfg, store) = read_nir(&path, name, convention, dt).unwrap();
    let m = Nir::new(cfg, &store).unwrap();
    let f = fixture(name);
    let arith = Arith::Exact;
    let mut ledger = m.new_ledger(&arith);
    let mut st = m.new_state();
    m.start_sample(&mut st);
    let mut outs = vec![];
    for x in &f.input {
        m.time_step(x, &mut st, &arith, &mut ledger);
        outs.push(st.output(&m).to_vec());
    }
    let counts = f
        .spike_counts
        .iter()
        .map(|(node, _)| {
            let k = m.plan.order.iter().position(|n| n == node).unwrap();
            (node.clone(), st.spike_counts[k])
        })
        .collect();
    // The ledger saw the same spikes.
    let spikes: u64 = ledger.totals().op_total(picojoule::ledger::Op::Spike);
    assert_eq!(spikes, st.spike_counts.iter().sum::<u64>(), "{name}");
    (counts, outs)
}

fn assert_matches(name: &str, convention: Convention, dt: f64) {
    let f = fixture(name);
    let (counts, outs) = run(name, convention, dt);
    assert_eq!(counts, f.spike_counts, "{name}: spikes per layer");
    assert_eq!(outs, f.outputs, "{name}: output spikes per step");
    assert!(
        f.spike_counts.iter().all(|(_, n)| *n > 0),
        "{name}: every layer of the fixture fires"
    );
}

#[test]
fn snntorch_mlp_matches_snntorch_spike_for_spike_at_its_dt() {
    assert_matches("snntorch_mlp", Convention::Snntorch, 1e-4);
}

#[test]
fn snntorch_conv_net_with_avg_pool_and_flatten_matches_snntorch() {
    assert_matches("snntorch_conv", Convention::Snntorch, 1e-4);
}

#[test]
fn norse_mlp_matches_norse_at_dt_squared() {
    // Norse 1.1.0 writes tau = dt / tau_mem_inv (not 1 / tau_mem_inv), so the network it ran
    // (dt = 1e-3) is the file's ODE stepped with dt^2 = 1e-6 (docs/nir.md).
    assert_matches("norse_mlp", Convention::Norse, 1e-6);
}

#[test]
fn norse_file_read_at_norse_dt_is_a_different_network() {
    // At dt = 1e-3 the file's tau (1e-5 s) gives a decay 1 - dt/tau = -99: what Norse's own
    // from_nir builds from the file, not the network Norse exported.
    let f = fixture("norse_mlp");
    let (counts, _) = run("norse_mlp", Convention::Norse, 1e-3);
    assert_ne!(counts, f.spike_counts);
}

#[test]
fn gzip_chunked_and_contiguous_files_read_the_same_kind_of_graph() {
    // snntorch_mlp.nir keeps nir.write's gzip chunks; the others are contiguous.
    for name in ["snntorch_mlp", "norse_mlp", "snntorch_conv"] {
        let path = repo_path(&format!("tests/fixtures/nir/{name}.nir"));
        let (cfg, store) = read_nir(&path, name, Convention::Snntorch, 1e-4).unwrap();
        assert!(cfg.nodes.len() >= 6, "{name}");
        assert!(store.len() >= 4, "{name}");
    }
}

fn copy_fixture(dir: &Path, name: &str) -> std::path::PathBuf {
    let to = dir.join(format!("{name}.nir"));
    std::fs::copy(repo_path(&format!("tests/fixtures/nir/{name}.nir")), &to).unwrap();
    to
}

#[test]
fn import_nir_writes_a_model_that_runs_and_inspects() {
    let dir = temp_dir("nir-import");
    let src = copy_fixture(&dir, "snntorch_mlp");
    let out = dir.join("out");
    let o = picojoule(&[
        "import",
        "nir",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--name",
        "mlp",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("dt 0.0001 s (snntorch)"), "{text}");
    assert!(out.join("mlp.ron").exists() && out.join("mlp.safetensors").exists());
    let o = picojoule(&["inspect", out.join("mlp.ron").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1: LIF [10] -> [10] from 0"),
        "{}",
        stdout(&o)
    );
    // The imported description and the .nir file itself run the same network.
    let ron = std::fs::read_to_string(out.join("mlp.ron")).unwrap();
    assert!(ron.contains("dt: 0.0001"), "{ron}");
}

#[test]
fn a_scenario_runs_a_nir_file_directly() {
    let dir = temp_dir("nir-run");
    copy_fixture(&dir, "snntorch_mlp");
    let sc = write(
        &dir,
        "sc.ron",
        "Scenario(name: \"nir\", hardware: \"horowitz45\", input: Synthetic, tokens: 3, runs: [(model: \"snntorch_mlp.nir\")])",
    );
    let o = picojoule(&["run", sc.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("nir-snntorch-dt0.0001"), "{text}");
}

#[test]
fn import_nir_flags_choose_the_time_step() {
    let dir = temp_dir("nir-dt");
    let src = copy_fixture(&dir, "norse_mlp");
    let out = dir.join("out");
    let o = picojoule(&[
        "import",
        "nir",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--convention",
        "norse",
        "--dt",
        "1e-6",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("dt 0.000001 s (norse)"),
        "{}",
        stdout(&o)
    );
    let o = picojoule(&[
        "import",
        "nir",
        src.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--dt",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--dt"), "{}", stderr(&o));
}

#[test]
fn truncated_and_bit_flipped_files_are_errors_naming_the_file_never_panics() {
    let dir = temp_dir("nir-bad");
    let bytes = std::fs::read(repo_path("tests/fixtures/nir/snntorch_mlp.nir")).unwrap();
    let path = dir.join("bad.nir");
    let mut errors = 0;
    let mut cases: Vec<Vec<u8>> = vec![];
    for cut in [
        0,
        7,
        64,
        500,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        cases.push(bytes[..cut].to_vec());
    }
    for i in (0..bytes.len()).step_by(211) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        cases.push(b);
    }
    for b in &cases {
        std::fs::write(&path, b).unwrap();
        match read_nir(&path, "bad", Convention::Snntorch, 1e-4) {
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                assert_eq!(e.exit_code(), 2, "{e}");
                assert!(e.to_string().contains("bad.nir"), "{e}");
            }
        }
    }
    assert!(errors >= 7, "every truncated copy fails: {errors}");
}

#[test]
fn cli_names_the_file_of_a_malformed_nir() {
    let dir = temp_dir("nir-cli-bad");
    let bytes = std::fs::read(repo_path("tests/fixtures/nir/snntorch_mlp.nir")).unwrap();
    let path = dir.join("cut.nir");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let o = picojoule(&[
        "import",
        "nir",
        path.to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cut.nir"), "{}", stderr(&o));
    assert!(!dir.join("out").join("cut.ron").exists());
}

#[test]
fn recurrent_graph_matches_nirtorch_running_the_same_file() {
    // nirtorch runs the exported cycle 1.lif -> 1.w_rec -> 1.lif with the recurrent weight's
    // output one step late, as the graph here does (its back edge).
    for name in ["snntorch_rleaky", "snntorch_rleaky_bias"] {
        let f = fixture_graph(name);
        let (counts, outs) = run(name, Convention::Snntorch, 1e-4);
        assert_eq!(counts, f.spike_counts, "{name}: spikes per layer");
        assert_eq!(outs, f.outputs, "{name}: output spikes per step");
        assert!(f.spike_counts.iter().all(|(_, n)| *n > 0), "{name}");
    }
}

#[test]
fn snntorch_rleaky_itself_differs_from_its_exported_graph() {
    // snnTorch's RLeaky with reset "zero" zeroes the whole next membrane (input included) after a
    // spike, and adds the recurrent bias from the first step: neither is expressible in NIR, so
    // the graph (and nirtorch) compute a different spike train from the same file.
    let f = fixture("snntorch_rleaky");
    let (counts, _) = run("snntorch_rleaky", Convention::Snntorch, 1e-4);
    assert_ne!(counts, f.spike_counts);
}

/// The error of reading the defective fixture `bad_{name}.nir` and building its model.
fn bad(name: &str) -> picojoule::Error {
    let path = repo_path(&format!("tests/fixtures/nir/bad_{name}.nir"));
    let e = match read_nir(&path, name, Convention::Snntorch, 1e-4) {
        Ok((cfg, store)) => match Nir::new(cfg, &store) {
            Ok(_) => panic!("bad_{name}.nir was accepted"),
            Err(e) => e,
        },
        Err(e) => e,
    };
    assert_eq!(e.exit_code(), 2, "{e}");
    e
}

#[test]
fn a_nan_parameter_names_the_node_and_the_parameter() {
    let e = bad("nan_tau").to_string();
    assert!(e.contains("node `1` (LIF)") && e.contains("`tau`"), "{e}");
    assert!(e.contains("bad_nan_tau.nir"), "{e}");
}

#[test]
fn an_unsupported_node_type_is_an_error_naming_the_node_and_its_type() {
    let e = bad("subgraph_node").to_string();
    assert!(e.contains("node `1`") && e.contains("`NIRGraph`"), "{e}");
}

#[test]
fn a_dangling_edge_names_the_edge() {
    let e = bad("dangling_edge").to_string();
    assert!(e.contains("`1` -> `nowhere`"), "{e}");
}

#[test]
fn weights_that_do_not_chain_name_the_node() {
    let e = bad("shape_mismatch").to_string();
    assert!(e.contains("node `2`"), "{e}");
}

#[test]
fn snntorch_synaptic_cuba_lif_matches_snntorch() {
    // Current first, input scaled by dt / tau_syn (snnTorch's w_in = tau_syn / dt makes it 1).
    assert_matches("snntorch_synaptic", Convention::Snntorch, 1e-4);
}

#[test]
fn norse_lif_cell_cuba_lif_matches_norse_at_dt_squared() {
    // The input jumps into the current unscaled, then the membrane integrates the new current.
    assert_matches("norse_cuba", Convention::Norse, 1e-6);
}

/// The shipped trained network (`models/digits-snn-snntorch.*`, examples/nir/), its weights read
/// from the `.nir` file: run on the 360 test digits it classifies them as snnTorch did, with
/// snnTorch's spike counts per layer.
#[test]
fn shipped_snntorch_digits_network_reproduces_snntorchs_accuracy_and_spikes() {
    let dir = temp_dir("nir-digits");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("models/digits-snn-snntorch.expected.json")).unwrap(),
    )
    .unwrap();
    let sc = write(
        &dir,
        "sc.ron",
        &format!(
            "Scenario(name: \"d\", hardware: \"horowitz45\", input: Digits(\"{}\"), tokens: 360, runs: [(model: \"{}\")])",
            repo_path("data/digits/digits-test.csv").display(),
            repo_path("models/digits-snn-snntorch.ron").display()
        ),
    );
    let sc = picojoule::scenario::LoadedScenario::load(&sc).unwrap();
    let run = picojoule::exec::execute(&sc, &Default::default())
        .unwrap()
        .remove(0);
    let top1 = run.accuracy.as_ref().unwrap().top1;
    let want = expected["test_top1"].as_f64().unwrap();
    assert_eq!(
        (top1 * 360.0).round(),
        (want * 360.0).round(),
        "{top1} vs {want}"
    );
    let spikes = |layer: &str| {
        run.ledger
            .subtree(layer)
            .op_total(picojoule::ledger::Op::Spike)
    };
    assert_eq!(spikes("1"), expected["hidden_spikes"].as_u64().unwrap());
    assert_eq!(spikes("3"), expected["output_spikes"].as_u64().unwrap());
}
