//! NeuroBench's own test networks (tests/test_metrics.py, tests/models/model_list.py at
//! NeuroBench e521c28), rebuilt as picojoule sequential models, and the expected values
//! reproduced; Lemaire et al.'s single-layer example priced; memory bytes by hand.

use std::path::Path;

use picojoule::engine::Arith;
use picojoule::hardware::{Hardware, price};
use picojoule::ledger::{ActionKey, FP32, Ledger, Op, TensorClass};
use picojoule::models::ModelDesc;
use picojoule::models::sequential::{Config, Sequential};
use picojoule::report::{Metrics, metrics};
use picojoule::weights::TensorStore;

use super::util::repo_path;

fn fixture(name: &str) -> Config {
    match ModelDesc::load(&repo_path(&format!("tests/fixtures/neurobench/{name}.ron"))).unwrap() {
        ModelDesc::Sequential(c) => c,
        other => panic!("{name}: not a sequential model: {other:?}"),
    }
}

fn model(name: &str) -> Sequential {
    Sequential::from_config(fixture(name), Path::new(".")).unwrap()
}

/// Run one sample (the same input at every step) and return the ledger.
fn run(m: &Sequential, x: &[f32]) -> Ledger {
    let arith = Arith::Exact;
    let mut ledger = m.new_ledger(&arith);
    let mut st = m.new_state();
    let steps = vec![x.to_vec(); m.cfg.timesteps];
    m.run_sample(&steps, &mut st, &arith, &mut ledger);
    ledger
}

fn nb(name: &str, x: &[f32]) -> Metrics {
    metrics(&run(&model(name), x), 1)
}

/// ones(n) with the first `k` entries set to `v` (NeuroBench's way to make an input non-binary).
fn ones_with(n: usize, k: usize, v: f32) -> Vec<f32> {
    let mut x = vec![1.0; n];
    x[..k].fill(v);
    x
}

#[test]
fn linear_relu_and_sigmoid_nets_count_effective_macs_as_neurobench() {
    let m = nb("net_relu_0_2", &ones_with(20, 10, 5.0));
    assert_eq!((m.Effective_MACs, m.Effective_ACs), (1125, 0));
    let m = nb("net_relu_50_2", &ones_with(20, 10, 5.0));
    assert_eq!((m.Effective_MACs, m.Effective_ACs), (2150, 0));
    assert_eq!(m.Dense, 2150);
}

#[test]
fn conv_nets_count_effective_macs_as_neurobench() {
    assert_eq!(nb("net_conv_2d_3", &ones_with(9, 1, 4.0)).Effective_MACs, 9);
    let m = nb("net_conv_2d_12", &ones_with(144, 1, 4.0));
    assert_eq!((m.Effective_MACs, m.Effective_ACs), (900, 0));
    let m = nb("net_conv_1d", &ones_with(50, 1, 4.0));
    assert_eq!((m.Effective_MACs, m.Effective_ACs), (150, 0));
}

#[test]
fn spiking_net_counts_acs_and_membrane_updates_as_neurobench() {
    let l = run(&model("net_snn"), &[1.0; 20]);
    let m = metrics(&l, 1);
    assert_eq!((m.Effective_MACs, m.Effective_ACs), (0, 1000));
    assert_eq!(m.MembraneUpdates, 50);
    assert_eq!(m.Dense, 1000);
    // Executed work: the binary input runs event-driven, one AC per synaptic event.
    let t = l.totals();
    assert_eq!(t.op_total(Op::Ac), 1000);
    assert_eq!(t.op_total(Op::Mac), 0);
    // No input at all: NeuroBench's MembraneUpdates counts every neuron at the first step only.
    let m = metrics(&run(&model("net_snn"), &[0.0; 20]), 1);
    assert_eq!((m.Effective_ACs, m.MembraneUpdates), (0, 5));
}

#[test]
fn recurrent_cells_count_gate_products_as_neurobench() {
    assert_eq!(
        nb("simple_lstm", &ones_with(25, 1, 4.0)).Effective_MACs,
        615
    );
    assert_eq!(nb("simple_rnn", &ones_with(25, 1, 4.0)).Effective_MACs, 150);
    assert_eq!(nb("simple_gru", &ones_with(25, 1, 4.0)).Effective_MACs, 465);
    // A binary x makes the whole cell "spiking" for NeuroBench (it tests the first input only).
    let m = nb("simple_rnn", &[1.0; 25]);
    assert_eq!((m.Effective_MACs, m.Effective_ACs), (0, 150));
}

#[test]
fn activation_sparsity_is_one_half_for_a_relu_of_half_negative_input() {
    let m = nb("net_relu_50", &ones_with(20, 10, -1.0));
    assert_eq!(m.ActivationSparsity, 0.5);
    assert_eq!(nb("net_relu_50", &[1.0; 20]).ActivationSparsity, 0.0);
}

#[test]
fn static_metrics_of_the_gsc_net() {
    let cfg = fixture("net");
    let m = Sequential::from_config(cfg.clone(), Path::new(".")).unwrap();
    assert_eq!(m.statics.ParameterCount, 145_955);
    // NeuroBench: 583 900 B with snnTorch 0.7.0 = 583 820 B of fp32 parameters + 80 B of Leaky buffers.
    assert_eq!(m.statics.Footprint, 583_820);
    let with = |f: &dyn Fn(&[usize], usize) -> f32| {
        let mut s = TensorStore::new("test");
        for (k, shape) in cfg.parameter_shapes() {
            let n: usize = shape.iter().product();
            s.insert(k, shape.clone(), (0..n).map(|i| f(&shape, i)).collect());
        }
        Sequential::new(cfg.clone(), &s)
            .unwrap()
            .statics
            .ConnectionSparsity
    };
    assert_eq!(with(&|_, _| 0.0), 1.0);
    assert_eq!(with(&|_, _| 1.0), 0.0);
    // First half of the rows of every weight zero, the rest one (NeuroBench: within 0.001 of
    // 0.5): 72 448 of 145 152 connection weights (17 of the last layer's 35 rows), unrounded;
    // NeuroBench prints 0.4991.
    let (cfg2, shapes) = (cfg.clone(), cfg.parameter_shapes());
    let half = {
        let mut st = TensorStore::new("test");
        for (k, shape) in &shapes {
            let n: usize = shape.iter().product();
            let cols: usize = shape[1..].iter().product::<usize>().max(1);
            st.insert(
                k.clone(),
                shape.clone(),
                (0..n)
                    .map(|i| if i / cols < shape[0] / 2 { 0.0 } else { 1.0 })
                    .collect(),
            );
        }
        Sequential::new(cfg2, &st).unwrap().statics
    };
    assert_eq!(half.connection_weights, 145_152);
    assert_eq!(
        half.ConnectionSparsity,
        half.connection_zeros as f64 / 145_152.0
    );
    assert_eq!(half.connection_zeros, 72_448);
    assert_eq!(half.ConnectionSparsity_neurobench, 0.4991);
}

/// The values NeuroBench 2.3.0's own code gives (make_neurobench_fixture.py).
fn neurobench_fixture() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo_path("tests/fixtures/neurobench/neurobench-2.3.0.json"))
            .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn footprint_is_neurobench_before_a_forward_pass_less_the_neuron_scalars() {
    let nb = neurobench_fixture();
    let g = &nb["gsc_net"];
    let m = model("net");
    assert_eq!(g["ParameterCount"], m.statics.ParameterCount);
    // NeuroBench: parameters + buffers. Before any forward pass the four Leaky layers hold five
    // scalar buffers each (beta, threshold, graded_spikes_factor, reset_mechanism_val and an
    // empty `mem`): 80 B.
    assert_eq!(
        g["Footprint_before_forward"],
        m.statics.Footprint + 4 * 4 * 5
    );
    // After a forward pass on a batch of 5, `mem` holds batch x neurons per layer:
    // 5 x (256 + 256 + 256 + 35) x 4 B more. picojoule's footprint does not depend on a run.
    assert_eq!(
        g["Footprint_after_forward_batch5"],
        m.statics.Footprint + 80 + 5 * (3 * 256 + 35) * 4
    );
}

#[test]
fn connection_sparsity_is_unrounded_beside_neurobench_rounding_ties_to_even() {
    let nb = neurobench_fixture();
    let sparsity = |n_in: usize, n_out: usize, zero: &dyn Fn(usize) -> bool| {
        let cfg: Config = ron::from_str(&format!(
            "(name: \"m\", input: [{n_in}], layers: [Linear({n_in}, {n_out}, false)], weights: Seeded(0))"
        ))
        .unwrap();
        let mut s = TensorStore::new("test");
        let w = (0..n_in * n_out)
            .map(|i| if zero(i) { 0.0 } else { 1.0 })
            .collect();
        s.insert("0.weight", vec![n_out, n_in], w);
        Sequential::new(cfg, &s).unwrap().statics
    };
    // One zero in 32: 0.03125 exactly, a tie at 4 decimals: NeuroBench prints 0.0312.
    let tie = sparsity(4, 8, &|i| i == 0);
    assert_eq!(tie.ConnectionSparsity, 0.03125);
    assert_eq!(
        nb["sparsity_tie"]["ConnectionSparsity"],
        tie.ConnectionSparsity_neurobench
    );
    assert_eq!(tie.ConnectionSparsity_neurobench, 0.0312);
    // A first row of zeros in a 3 x 4 matrix: 1/3.
    let third = sparsity(4, 3, &|i| i < 4);
    assert_eq!(third.ConnectionSparsity, 1.0 / 3.0);
    assert_eq!(
        nb["sparsity_third"]["ConnectionSparsity"],
        third.ConnectionSparsity_neurobench
    );
}

#[test]
fn gru_counts_each_units_n_gate_bias_where_neurobench_reads_unit_2s_r_gate_bias() {
    let m = nb("gru_bias_quirk", &ones_with(25, 1, 4.0));
    // NeuroBench's `bias_ih[2, :]` is the r-gate bias of unit 2 (zero here) for every unit: its
    // n gate is zero and (1 - z) * n costs nothing. Each unit's own n-gate bias is one, so each
    // unit's (1 - z) * n is one operation more.
    let theirs = nb_fixture_u64(&nb_json()["gru_bias_quirk"]["Effective_MACs"]);
    assert_eq!(theirs, 375);
    assert_eq!(m.Effective_MACs, theirs + 5);
    assert_eq!(
        m.Dense,
        nb_fixture_u64(&nb_json()["gru_bias_quirk"]["Dense"])
    );
}

fn nb_json() -> serde_json::Value {
    neurobench_fixture()
}

fn nb_fixture_u64(v: &serde_json::Value) -> u64 {
    v.as_f64().unwrap() as u64
}

#[test]
fn neuron_operations_and_activation_sparsity_by_layer_as_neurobench() {
    use picojoule::report::neuron_operations;
    let fixture = neurobench_fixture();
    let m = model("net_snn_fixed");
    for input in ["ones", "zeros"] {
        let x = if input == "ones" {
            [1.0; 20]
        } else {
            [0.0; 20]
        };
        let l = run(&m, &x);
        let theirs = &fixture[format!("net_snn_{input}")];
        let ops = neuron_operations(&l, &m.statics.neuron_op_cost).unwrap();
        let ours = |v: &serde_json::Value| v.as_f64().unwrap() as u64;
        // NeuroBench's numbers are per sample (its batch of 5 identical samples); one sample here.
        assert_eq!(
            ops.effective,
            ours(&theirs["NeuronOperations"]["Effective Neuron Ops"]),
            "{input}"
        );
        assert_eq!(
            ops.dense,
            ours(&theirs["NeuronOperations"]["Neuron Dense Ops"]),
            "{input}"
        );
        let met = metrics(&l, 1);
        assert_eq!(met.MembraneUpdates, ours(&theirs["MembraneUpdates"]));
        // NeuroBench names the layer by its module ("1"), picojoule by its ledger layer.
        assert_eq!(
            met.ActivationSparsityByLayer["1.leaky"],
            theirs["ActivationSparsityByLayer"]["1"].as_f64().unwrap(),
            "{input}"
        );
    }
}

#[test]
fn static_metrics_for_every_model_family() {
    use picojoule::models::spikegpt::SpikeGpt;
    use picojoule::models::transformer::Transformer;
    let ModelDesc::SpikeGpt(cfg) = ModelDesc::load(&repo_path("models/spikegpt-tiny.ron")).unwrap()
    else {
        panic!("spikegpt-tiny is a SpikeGpt model")
    };
    let mut store = picojoule::models::spikegpt::seeded_weights(&cfg, 3);
    // Zero the first block's key matrix: d x d of the connection weights.
    let d = cfg.n_embd;
    store.insert("blocks.0.att.key.weight", vec![d, d], vec![0.0; d * d]);
    let s = SpikeGpt::new(cfg.clone(), &store).unwrap().statics;
    assert_eq!(s.ParameterCount, cfg.n_params() as u64);
    assert_eq!(s.Footprint, 4 * cfg.n_params() as u64);
    // Connection weights: every Linear (7 per block and the head), not the embedding.
    let (h, v, n) = (cfg.ffn_hidden(), cfg.vocab_size, cfg.n_layer);
    let conn = n * (5 * d * d + 2 * d * h) + v * d;
    assert_eq!(s.connection_weights, conn as u64);
    assert_eq!(s.ConnectionSparsity, (d * d) as f64 / conn as f64);
    // A transformer with EcoFormer attention: the hash tensors are in the footprint only.
    let ModelDesc::Transformer(tc) =
        ModelDesc::load(&repo_path("models/transformer-lm-tiny-ecoformer.ron")).unwrap()
    else {
        panic!("a transformer")
    };
    let calib = picojoule::models::transformer::Calibration::Tokens(
        (0..64).map(|i| i % tc.vocab_size).collect(),
    );
    let t = Transformer::from_config(tc.clone(), &repo_path("models"), Some(&calib)).unwrap();
    let ts = t.statics();
    assert_eq!(ts.ParameterCount, tc.n_params() as u64);
    assert!(ts.Footprint > 4 * ts.ParameterCount);
    assert_eq!(ts.ConnectionSparsity, 0.0);
}

#[test]
fn lemaire_single_layer_example_costs_37_18_pj_with_the_erratum_corrected() {
    let m = model("lemaire_fc");
    let mut x = vec![0.0; 8];
    x[3] = 1.0; // theta_in = 1
    let ledger = run(&m, &x);
    let t = ledger.totals();
    assert_eq!(t.op_total(Op::Spike), 0); // theta_out = 0
    assert_eq!(t.op_total(Op::Ac), 16); // theta_in x N_out, not theta_in x N_in x N_out (Eq. 2.4 erratum)
    let sj = Hardware::load(
        repo_path("tests/fixtures/neurobench/lemaire-sj-segment.ron")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let p = price(&ledger, &sj.model);
    // ops 4.8 + FIFO 1 x E(4000 B) 4.8828 + 32 x E(576 B) 22.5 + 64 x E(64 B) 5.0
    assert!((p.energy_pj - 37.1828125).abs() < 1e-6, "{}", p.energy_pj);
    // The paper's Eq. 2.4 taken verbatim would add (8 - 1) x 16 ACs: 48.38 pJ.
    assert!((p.energy_pj + 112.0 * 0.1 - 48.38).abs() < 0.01);
    // The preset prices memory by the regression 1.09e-5 pJ/bit x size + 13.2 pJ instead.
    let e = |bytes: f64| 1.09e-5 * bytes * 8.0 + 13.2;
    let expected = 4.8 + e(4000.0) + 32.0 * e(576.0) + 64.0 * e(64.0);
    let p = price(&ledger, &Hardware::load("lemaire-iconip22").unwrap().model);
    assert!(
        (p.energy_pj - expected).abs() < 1e-6,
        "{} vs {expected}",
        p.energy_pj
    );
    assert!(p.unpriced.iter().all(|u| u.excluded), "{:?}", p.unpriced);
}

fn bytes(l: &Ledger, op: Op, class: TensorClass) -> u64 {
    l.totals()
        .0
        .get(&ActionKey::mem(op, FP32, class))
        .copied()
        .unwrap_or(0)
}

#[test]
fn memory_bytes_of_a_dense_and_an_event_driven_layer_by_hand() {
    let mut s = TensorStore::new("test");
    s.insert("0.weight", vec![3, 4], (1..=12).map(|v| v as f32).collect());
    let cfg: Config = ron::from_str(
        "(name: \"m\", input: [4], layers: [Linear(4, 3, false)], weights: Seeded(0))",
    )
    .unwrap();
    let m = Sequential::new(cfg, &s).unwrap();
    // Dense (real input, one zero): the whole 3 x 4 fp32 matrix streamed, the input read, the output written.
    let l = run(&m, &[0.5, 0.0, 2.0, 0.0]);
    assert_eq!(bytes(&l, Op::Read, TensorClass::Weight), 3 * 4 * 4);
    assert_eq!(bytes(&l, Op::Read, TensorClass::Activation), 4 * 4);
    assert_eq!(bytes(&l, Op::Write, TensorClass::Activation), 3 * 4);
    assert_eq!(l.totals().op_total(Op::Mac), 6);
    // Event-driven (two spikes): only their two weight rows, two 1-byte addresses, the output written.
    let l = run(&m, &[1.0, 0.0, 1.0, 0.0]);
    assert_eq!(bytes(&l, Op::Read, TensorClass::Weight), 2 * 3 * 4);
    assert_eq!(bytes(&l, Op::Read, TensorClass::Event), 2);
    assert_eq!(bytes(&l, Op::Read, TensorClass::Activation), 0);
    assert_eq!(bytes(&l, Op::Write, TensorClass::Activation), 3 * 4);
    assert_eq!(
        (l.totals().op_total(Op::Ac), l.totals().op_total(Op::Mac)),
        (6, 0)
    );
}

#[test]
fn signed_codes_run_as_added_and_subtracted_events() {
    let mut s = TensorStore::new("test");
    s.insert("0.weight", vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cfg: Config = ron::from_str(
        "(name: \"m\", input: [3], layers: [Linear(3, 2, false)], weights: Seeded(0))",
    )
    .unwrap();
    let m = Sequential::new(cfg, &s).unwrap();
    let arith = Arith::Exact;
    let mut l = m.new_ledger(&arith);
    let mut st = m.new_state();
    m.run_sample(&[vec![1.0, -1.0, 0.0]], &mut st, &arith, &mut l);
    assert_eq!(st.scores, vec![-1.0, -1.0]);
    let met = metrics(&l, 1);
    assert_eq!((met.Effective_ACs, met.Effective_MACs), (4, 0));
}

use super::util::{picojoule, stderr, stdout, temp_dir, write};

#[test]
fn compare_prices_one_execution_under_paper_and_full_accounting() {
    let dir = temp_dir("compare");
    let model = repo_path("models/spikegpt-tiny.ron");
    let sc = format!(
        "Scenario(name: \"pvf\", seed: 1, hardware: \"horowitz45\", compare: [\"paper45\", \"horowitz45\"], input: Synthetic, tokens: 32,\n runs: [(model: {m:?}, variant: Some(SpikeDriven)), (model: {m:?}, variant: Some(NonSpiking))])",
        m = model.to_str().unwrap()
    );
    let path = write(&dir, "pvf.ron", &sc);
    let o = picojoule(&["compare", path.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 4);
    let verdicts = v["verdicts"].as_array().unwrap();
    assert_eq!(verdicts[0]["hardware"], "paper45");
    assert_eq!(verdicts[1]["hardware"], "horowitz45");
    // Paper accounting: no memory energy at all; full accounting: memory dominates.
    for r in v["rows"].as_array().unwrap() {
        let mem = r["memory_pj_per_token"].as_f64().unwrap();
        if r["hardware"] == "paper45" {
            assert_eq!(mem, 0.0);
        } else {
            assert!(mem > r["compute_pj_per_token"].as_f64().unwrap());
        }
    }
    // The same ledgers: a --hardware list overrides the scenario's and gives the same numbers.
    let o2 = picojoule(&[
        "compare",
        path.to_str().unwrap(),
        "--hardware",
        "paper45,horowitz45",
        "--format",
        "json",
    ]);
    assert_eq!(o2.stdout, o.stdout);
    let t = picojoule(&["compare", path.to_str().unwrap()]);
    assert!(stdout(&t).contains("wins"), "{}", stdout(&t));
}

#[test]
fn digits_scenario_reports_accuracy_with_wilson_interval_and_neurobench_metrics() {
    let o = picojoule(&["run", "scenarios/digits.ron", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for run in v["runs"].as_array().unwrap() {
        let acc = &run["accuracy"];
        assert_eq!(acc["task"], "classification");
        assert_eq!(acc["predictions"], 360);
        let top1 = acc["top1"].as_f64().unwrap();
        let (lo, hi) = (
            acc["top1_ci95"][0].as_f64().unwrap(),
            acc["top1_ci95"][1].as_f64().unwrap(),
        );
        assert!(lo < top1 && top1 < hi && top1 > 0.7, "{acc}");
        assert_eq!(run["metrics"]["ParameterCount"], 650);
    }
    // The dense ANN does MACs, the rate-coded SNN only ACs.
    assert!(v["runs"][0]["metrics"]["Effective_MACs"].as_u64().unwrap() > 0);
    assert_eq!(v["runs"][1]["metrics"]["Effective_MACs"], 0);
    assert!(v["runs"][1]["metrics"]["Effective_ACs"].as_u64().unwrap() > 0);
    // Markdown shows the compute / memory split by level and class.
    let md = stdout(&picojoule(&[
        "run",
        "scenarios/digits.ron",
        "--format",
        "md",
    ]));
    assert!(
        md.contains("memory level sram-8k") && md.contains("memory class weight"),
        "{md}"
    );
}

#[test]
fn a_layer_that_does_not_fit_its_input_is_refused_with_file_and_layer() {
    let dir = temp_dir("badseq");
    let p = write(
        &dir,
        "bad.ron",
        "Sequential(name: \"b\", input: [10], layers: [Linear(20, 5, false)], weights: Seeded(0))",
    );
    let o = picojoule(&["inspect", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.ron") && e.contains("layer 0 (linear)") && e.contains("in_features 20"),
        "{e}"
    );
    let p = write(
        &dir,
        "bad2.ron",
        "Sequential(name: \"b\", input: [4], layers: [Linear(4, 2, false)], weights: Inline({\"0.weight\": [1.0, 2.0]}))",
    );
    let o = picojoule(&["inspect", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`0.weight` has 2 values, expected 8"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn every_shipped_sequential_model_loads_and_the_layer_zoo_runs_on_digits() {
    for entry in std::fs::read_dir(repo_path("models")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "ron")
            && p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("digits")
        {
            let o = picojoule(&["inspect", p.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        }
    }
    let dir = temp_dir("zoo");
    let sc = format!(
        "Scenario(name: \"zoo\", hardware: \"horowitz45\", input: Digits({:?}), tokens: 20, runs: [(model: {:?})])",
        repo_path("data/digits/digits-test.csv").to_str().unwrap(),
        repo_path("models/digits-conv-rnn.ron").to_str().unwrap()
    );
    let p = write(&dir, "zoo.ron", &sc);
    let o = picojoule(&["run", p.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let layers = v["runs"][0]["layers"].as_array().unwrap();
    let get = |name: &str, k: &str| {
        layers.iter().find(|l| l["name"] == name).unwrap()[k]
            .as_u64()
            .unwrap()
    };
    // Rate-coded spikes drive the convolution event by event; the GRU sees real ReLU outputs.
    assert!(get("0.conv2d", "ac") > 0);
    assert_eq!(get("0.conv2d", "mac"), 0);
    assert!(get("4.gru_cell", "mac") > 0);
    assert_eq!(
        v["runs"][0]["totals"]["unpriced_actions"], 2,
        "sigmoid and tanh have no Horowitz price"
    );
}
