//! NeuroBench's own test networks (tests/test_metrics.py, tests/models/model_list.py at
//! NeuroBench e521c28), rebuilt as picojoule sequential models, and the expected values
//! reproduced; Lemaire et al.'s single-layer example priced; memory bytes by hand.

use std::path::Path;

use picojoule::engine::Arith;
use picojoule::hardware::{price, Hardware};
use picojoule::ledger::{ActionKey, Ledger, Op, TensorClass, FP32};
use picojoule::models::sequential::{Config, Sequential};
use picojoule::models::ModelDesc;
use picojoule::report::{metrics, Metrics};
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
    assert_eq!(nb("simple_lstm", &ones_with(25, 1, 4.0)).Effective_MACs, 615);
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
        Sequential::new(cfg.clone(), &s).unwrap().statics.ConnectionSparsity
    };
    assert_eq!(with(&|_, _| 0.0), 1.0);
    assert_eq!(with(&|_, _| 1.0), 0.0);
    // First half of the rows of every parameter zero, the rest one (NeuroBench: within 0.001 of 0.5).
    let half = with(&|shape, i| {
        let row = i / shape[1..].iter().product::<usize>();
        if row < shape[0] / 2 { 0.0 } else { 1.0 }
    });
    assert_eq!(half, 0.4991);
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
    let sj = Hardware::load(repo_path("tests/fixtures/neurobench/lemaire-sj-segment.ron").to_str().unwrap()).unwrap();
    let p = price(&ledger, &sj.model);
    // ops 4.8 + FIFO 1 x E(4000 B) 4.8828 + 32 x E(576 B) 22.5 + 64 x E(64 B) 5.0
    assert!((p.energy_pj - 37.1828125).abs() < 1e-6, "{}", p.energy_pj);
    // The paper's Eq. 2.4 taken verbatim would add (8 - 1) x 16 ACs: 48.38 pJ.
    assert!((p.energy_pj + 112.0 * 0.1 - 48.38).abs() < 0.01);
    // The preset prices memory by the regression 1.09e-5 pJ/bit x size + 13.2 pJ instead.
    let e = |bytes: f64| 1.09e-5 * bytes * 8.0 + 13.2;
    let expected = 4.8 + e(4000.0) + 32.0 * e(576.0) + 64.0 * e(64.0);
    let p = price(&ledger, &Hardware::load("lemaire-iconip22").unwrap().model);
    assert!((p.energy_pj - expected).abs() < 1e-6, "{} vs {expected}", p.energy_pj);
    assert!(p.unpriced.iter().all(|u| u.excluded), "{:?}", p.unpriced);
}

fn bytes(l: &Ledger, op: Op, class: TensorClass) -> u64 {
    l.totals().0.get(&ActionKey::mem(op, FP32, class)).copied().unwrap_or(0)
}

#[test]
fn memory_bytes_of_a_dense_and_an_event_driven_layer_by_hand() {
    let mut s = TensorStore::new("test");
    s.insert("0.weight", vec![3, 4], (1..=12).map(|v| v as f32).collect());
    let cfg: Config = ron::from_str("(name: \"m\", input: [4], layers: [Linear(4, 3, false)], weights: Seeded(0))").unwrap();
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
    assert_eq!((l.totals().op_total(Op::Ac), l.totals().op_total(Op::Mac)), (6, 0));
}

#[test]
fn signed_codes_run_as_added_and_subtracted_events() {
    let mut s = TensorStore::new("test");
    s.insert("0.weight", vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let cfg: Config = ron::from_str("(name: \"m\", input: [3], layers: [Linear(3, 2, false)], weights: Seeded(0))").unwrap();
    let m = Sequential::new(cfg, &s).unwrap();
    let arith = Arith::Exact;
    let mut l = m.new_ledger(&arith);
    let mut st = m.new_state();
    m.run_sample(&[vec![1.0, -1.0, 0.0]], &mut st, &arith, &mut l);
    assert_eq!(st.scores, vec![-1.0, -1.0]);
    let met = metrics(&l, 1);
    assert_eq!((met.Effective_ACs, met.Effective_MACs), (4, 0));
}
