//! The executable graph: each node an engine primitive, run in plan order one time step at a
//! time, with a per-run `State` that allocates nothing per step.

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::conv::Conv;
use crate::engine::delay::DelayLine;
use crate::engine::events::split_signed;
use crate::engine::linear::Linear;
use crate::engine::neurons::{Current, NeuronVec};
use crate::engine::pointwise::{bias_add, bias_add_channels, residual_add, scale, threshold};
use crate::engine::pool::{PoolGeom, pool2d};
use crate::engine::{Arith, SpikeTrain};
use crate::error::{Error, Result};
use crate::ledger::{LayerId, Ledger, TensorClass};
use crate::weights::TensorStore;

use super::read::read_nir;
use super::{Config, Convention, NirWeights, Node, Plan, conv_geom, numel, pool_geom};

enum Op {
    /// Input, Output, Flatten: the values pass unchanged (no work).
    Pass,
    Linear {
        lin: Linear,
        bias: Option<Vec<f32>>,
    },
    Conv {
        conv: Conv,
        bias: Option<Vec<f32>>,
    },
    Pool {
        g: PoolGeom,
        avg: bool,
    },
    Scale(Vec<f32>),
    Threshold(Vec<f32>),
    Neuron(NeuronVec),
    Delay(DelayLine),
}

pub struct Nir {
    pub cfg: Config,
    pub plan: Plan,
    ops: Vec<Op>,
    ids: Vec<LayerId>,
    template: Ledger,
    /// Tensors of the weights file this model did not read (a warning, or empty).
    pub unused_tensors: Option<String>,
    /// NeuroBench's static metrics: the connection nodes' weights and biases are the parameters
    /// (neuron constants are fixed, as an snnTorch network's untrained beta and threshold).
    pub statics: crate::models::statics::StaticMetrics,
}

/// Per-run state (nothing allocates per step).
pub struct State {
    ins: Vec<Vec<f32>>,
    outs: Vec<Vec<f32>>,
    /// Membranes of neuron nodes, delay lines of Delay nodes.
    v: Vec<Vec<f32>>,
    i: Vec<Vec<f32>>,
    pos: Vec<SpikeTrain>,
    neg: Vec<SpikeTrain>,
    spikes: Vec<SpikeTrain>,
    /// Spikes of each node (in plan order) since the sample started.
    pub spike_counts: Vec<u64>,
    /// The output node's values summed over the sample's steps (class scores).
    pub scores: Vec<f32>,
    steps: usize,
}

impl State {
    /// The output node's values at the last step.
    pub fn output<'s>(&'s self, m: &Nir) -> &'s [f32] {
        &self.outs[m.plan.output]
    }

    /// The values a node produced at the last step (by name).
    pub fn node_output<'s>(&'s self, m: &Nir, name: &str) -> Option<&'s [f32]> {
        let k = m.plan.order.iter().position(|n| n == name)?;
        Some(&self.outs[k])
    }
}

fn broadcast(v: &[f32], n: usize) -> Vec<f32> {
    if v.len() == n {
        v.to_vec()
    } else {
        vec![v[0]; n]
    }
}

impl Nir {
    pub fn from_config(cfg: Config, base: &Path) -> Result<Nir> {
        cfg.validate()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let (store, from_file) = match &cfg.weights {
            NirWeights::File(f) => (crate::weights::load_file(&base.join(f))?, true),
            NirWeights::Nir(f) => {
                let (_, store) = read_nir(&base.join(f), &cfg.name, cfg.convention, cfg.dt)?;
                (store, false)
            }
        };
        let mut m = Nir::new(cfg, &store)?;
        if from_file {
            m.unused_tensors = store.unread_warning(&m.cfg.name);
        }
        Ok(m)
    }

    pub fn new(cfg: Config, store: &TensorStore) -> Result<Nir> {
        let plan = cfg
            .plan()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let dt = cfg.dt;
        let mut template = Ledger::new();
        let mut ops = vec![];
        let mut ids = vec![];
        for (k, name) in plan.order.iter().enumerate() {
            let node = &cfg.nodes[name];
            ids.push(template.layer(name));
            let n = numel(&plan.shape_out[k]);
            let key = |p: &str| format!("{name}.{p}");
            let get = |p: &str, shape: &[usize]| store.get(&key(p), shape);
            // A neuron parameter as f64, one value per neuron.
            let param = |p: &str, len: usize| -> Result<Vec<f64>> {
                let v = get(p, &[len])?;
                Ok(broadcast(v, n).into_iter().map(|x| x as f64).collect())
            };
            let bad = |m: String| {
                Error::input(format!(
                    "model `{}`: node `{name}` ({}): {m}",
                    cfg.name,
                    node.kind()
                ))
            };
            let positive = |p: &str, v: &[f64]| -> Result<()> {
                match v.iter().find(|x| **x <= 0.0) {
                    Some(x) => Err(bad(format!("`{p}` must be positive, found {x}"))),
                    None => Ok(()),
                }
            };
            let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
            let op = match node {
                Node::Input { .. } | Node::Output { .. } | Node::Flatten { .. } => Op::Pass,
                Node::Affine { n_in, n_out } | Node::Linear { n_in, n_out } => {
                    let w = get("weight", &[*n_out, *n_in])?;
                    let bias = match node {
                        Node::Affine { .. } => Some(get("bias", &[*n_out])?.to_vec()),
                        _ => None,
                    };
                    Op::Linear {
                        lin: Linear::from_out_in(w, *n_out, *n_in),
                        bias,
                    }
                }
                Node::Conv1d(c) | Node::Conv2d(c) => {
                    let g = conv_geom(c, &plan.shape_in[k], matches!(node, Node::Conv1d(_)))
                        .map_err(&bad)?;
                    let mut shape = vec![c.out_channels, c.in_channels / c.groups];
                    shape.extend(&c.kernel);
                    let w = get("weight", &shape)?;
                    // The engine takes PyTorch's [out, in/g, kh, kw]; a 1-d kernel is kh = 1.
                    let bias = if c.bias {
                        Some(get("bias", &[c.out_channels])?.to_vec())
                    } else {
                        None
                    };
                    Op::Conv {
                        conv: Conv::from_pytorch(g, w),
                        bias,
                    }
                }
                Node::SumPool2d(p) | Node::AvgPool2d(p) => Op::Pool {
                    g: pool_geom(p, &plan.shape_in[k]).map_err(&bad)?,
                    avg: matches!(node, Node::AvgPool2d(_)),
                },
                Node::Scale { n: len } => Op::Scale(f32s(param("scale", *len)?)),
                Node::Threshold { n: len } => Op::Threshold(f32s(param("threshold", *len)?)),
                Node::Delay { n: len } => {
                    let d = param("delay", *len)?;
                    // Delays in seconds become whole steps of dt (rounded), at most 100000.
                    let steps = d
                        .iter()
                        .map(|s| {
                            let k = (s / dt).round();
                            if (0.0..=100_000.0).contains(&k) {
                                Ok(k as usize)
                            } else {
                                Err(bad(format!(
                                    "delay {s} s is {k} steps of dt {dt} s (0 to 100000 allowed)"
                                )))
                            }
                        })
                        .collect::<Result<Vec<usize>>>()?;
                    let line = DelayLine { steps };
                    // The ring buffer is allocated per run: at most 2^24 values (64 MiB).
                    if line.state_len() > 1 << 24 {
                        return Err(bad(format!(
                            "delay line of {} steps x {} values is too long",
                            line.depth(),
                            line.steps.len()
                        )));
                    }
                    Op::Delay(line)
                }
                Node::IF { n: len } | Node::I { n: len } => {
                    let r = param("r", *len)?;
                    let fire = match node {
                        Node::IF { .. } => Some((
                            f32s(param("v_threshold", *len)?),
                            f32s(param("v_reset", *len)?),
                        )),
                        _ => None,
                    };
                    Op::Neuron(NeuronVec {
                        a: vec![1.0; n],
                        b: vec![0.0; n],
                        c: f32s(r.iter().map(|r| dt * r).collect()),
                        fire,
                        current: None,
                    })
                }
                Node::LI { n: len }
                | Node::LIF { n: len }
                | Node::CubaLI { n: len }
                | Node::CubaLIF { n: len } => {
                    let cuba = matches!(node, Node::CubaLI { .. } | Node::CubaLIF { .. });
                    let tau = param(if cuba { "tau_mem" } else { "tau" }, *len)?;
                    positive("tau", &tau)?;
                    let r = param("r", *len)?;
                    let v_leak = param("v_leak", *len)?;
                    let fire = if matches!(node, Node::LIF { .. } | Node::CubaLIF { .. }) {
                        Some((
                            f32s(param("v_threshold", *len)?),
                            f32s(param("v_reset", *len)?),
                        ))
                    } else {
                        None
                    };
                    let current = if cuba {
                        let tau_syn = param("tau_syn", *len)?;
                        positive("tau_syn", &tau_syn)?;
                        let w_in = param("w_in", *len)?;
                        // Euler: the input enters scaled by dt / tau_syn (snnTorch, whose w_in
                        // = tau_syn / dt makes it 1); Norse adds w_in x as a jump.
                        let w_in = match cfg.convention {
                            Convention::Snntorch => {
                                tau_syn.iter().zip(&w_in).map(|(t, w)| dt * w / t).collect()
                            }
                            Convention::Norse => w_in,
                        };
                        Some(Current {
                            a_syn: f32s(tau_syn.iter().map(|t| 1.0 - dt / t).collect()),
                            w_in: f32s(w_in),
                            current_first: true,
                        })
                    } else {
                        None
                    };
                    let a: Vec<f64> = tau.iter().map(|t| 1.0 - dt / t).collect();
                    let b: Vec<f64> = tau.iter().zip(&v_leak).map(|(t, l)| dt / t * l).collect();
                    let c: Vec<f64> = tau.iter().zip(&r).map(|(t, r)| dt * r / t).collect();
                    Op::Neuron(NeuronVec {
                        a: f32s(a),
                        b: f32s(b),
                        c: f32s(c),
                        fire,
                        current,
                    })
                }
            };
            ops.push(op);
        }
        let mut tally = crate::models::statics::Tally::default();
        for key in store.keys() {
            if let Some(data) = store.peek(key) {
                if key.ends_with(".weight") {
                    tally.param(data, true);
                } else if key.ends_with(".bias") {
                    tally.param_len(data.len());
                }
            }
        }
        let mut m = Nir {
            cfg,
            plan,
            ops,
            ids,
            template,
            unused_tensors: None,
            statics: tally.finish(),
        };
        m.template.footprint = m.footprint(&Arith::Exact);
        Ok(m)
    }

    /// Bytes resident per tensor class: parameters, membranes, synaptic currents and recurrent
    /// outputs, the widest activation, the widest spike train as addresses.
    pub fn footprint(&self, arith: &Arith) -> BTreeMap<TensorClass, u64> {
        let b = arith.operand_bytes();
        let mut neurons = 0u64;
        let mut state = 0u64;
        for (k, op) in self.ops.iter().enumerate() {
            match op {
                Op::Neuron(nv) => {
                    neurons += nv.len() as u64;
                    if nv.current.is_some() {
                        state += nv.len() as u64;
                    }
                }
                Op::Delay(d) => state += d.state_len() as u64,
                _ => {}
            }
            // A back edge keeps its source's output for one step.
            for &(src, back) in &self.plan.preds[k] {
                if back {
                    state += numel(&self.plan.shape_out[src]) as u64;
                }
            }
        }
        let widest = self
            .plan
            .shape_out
            .iter()
            .map(|s| numel(s))
            .max()
            .unwrap_or(1);
        let mut m = BTreeMap::new();
        m.insert(TensorClass::Weight, self.cfg.n_params() as u64 * b);
        m.insert(TensorClass::Neuron, neurons * b);
        m.insert(TensorClass::State, state * b);
        m.insert(TensorClass::Activation, widest as u64 * b);
        m.insert(
            TensorClass::Event,
            widest as u64 * SpikeTrain::new(widest).address_bytes(),
        );
        m
    }

    pub fn new_ledger(&self, arith: &Arith) -> Ledger {
        let mut l = self.template.clone();
        l.footprint = self.footprint(arith);
        l
    }

    /// Ledger paths (node names) of the spiking nodes.
    pub fn lif_layers(&self) -> Vec<String> {
        self.plan
            .order
            .iter()
            .filter(|n| self.cfg.nodes[*n].spikes())
            .cloned()
            .collect()
    }

    pub fn n_inputs(&self) -> usize {
        numel(&self.plan.shape_out[self.plan.input])
    }

    pub fn n_classes(&self) -> usize {
        numel(&self.plan.shape_out[self.plan.output])
    }

    /// A description of the discretisation, for reports: `dt 0.0001 s (snntorch)`.
    pub fn discretisation(&self) -> String {
        format!("dt {} s ({})", self.cfg.dt, self.cfg.convention.name())
    }

    pub fn new_state(&self) -> State {
        let sizes: Vec<usize> = self.plan.shape_out.iter().map(|s| numel(s)).collect();
        let sizes_in: Vec<usize> = self.plan.shape_in.iter().map(|s| numel(s)).collect();
        let cur = |k: usize| match &self.ops[k] {
            Op::Neuron(nv) if nv.current.is_some() => sizes[k],
            _ => 0,
        };
        State {
            ins: sizes_in.iter().map(|&s| vec![0.0; s]).collect(),
            outs: sizes.iter().map(|&s| vec![0.0; s]).collect(),
            v: (0..sizes.len())
                .map(|k| match &self.ops[k] {
                    Op::Neuron(_) => vec![0.0; sizes[k]],
                    Op::Delay(d) => vec![0.0; d.state_len()],
                    _ => vec![],
                })
                .collect(),
            i: (0..sizes.len()).map(|k| vec![0.0; cur(k)]).collect(),
            pos: sizes_in.iter().map(|&s| SpikeTrain::new(s)).collect(),
            neg: sizes_in.iter().map(|&s| SpikeTrain::new(s)).collect(),
            spikes: sizes.iter().map(|&s| SpikeTrain::new(s)).collect(),
            spike_counts: vec![0; sizes.len()],
            scores: vec![0.0; self.n_classes()],
            steps: 0,
        }
    }

    /// Reset membranes, currents, recurrent outputs and scores for a new sample.
    pub fn start_sample(&self, st: &mut State) {
        for b in st.outs.iter_mut().chain(&mut st.v).chain(&mut st.i) {
            b.fill(0.0);
        }
        st.spike_counts.fill(0);
        st.scores.fill(0.0);
        st.steps = 0;
    }

    /// Run one sample (`steps[t]`: the input at step t), from a fresh state.
    pub fn run_sample(&self, steps: &[Vec<f32>], st: &mut State, arith: &Arith, l: &mut Ledger) {
        self.start_sample(st);
        for x in steps {
            self.time_step(x, st, arith, l);
        }
    }

    /// One time step of the current sample; the output is added to the scores.
    pub fn time_step(&self, x: &[f32], st: &mut State, arith: &Arith, ledger: &mut Ledger) {
        let first = st.steps == 0;
        for k in 0..self.ops.len() {
            let c = ledger.at(self.ids[k]);
            // The node's input: the frame, or the sum of its sources (a back edge's source
            // still holds the previous step's output).
            let mut input = std::mem::take(&mut st.ins[k]);
            if k == self.plan.input {
                input.copy_from_slice(x);
            } else {
                let preds = &self.plan.preds[k];
                input.copy_from_slice(&st.outs[preds[0].0]);
                for &(p, _) in &preds[1..] {
                    residual_add(&mut input, &st.outs[p], arith, c);
                }
            }
            let mut out = std::mem::take(&mut st.outs[k]);
            match &self.ops[k] {
                Op::Pass => out.copy_from_slice(&input),
                Op::Linear { lin, bias } => {
                    if split_signed(&input, &mut st.pos[k], &mut st.neg[k]) {
                        lin.forward_signed_events(&st.pos[k], &st.neg[k], &mut out, arith, c);
                    } else {
                        lin.forward_dense(&input, &mut out, arith, c);
                    }
                    if let Some(b) = bias {
                        bias_add(&mut out, b, arith, c);
                    }
                }
                Op::Conv { conv, bias } => {
                    if split_signed(&input, &mut st.pos[k], &mut st.neg[k]) {
                        let neg = (st.neg[k].count() > 0).then_some(&st.neg[k]);
                        conv.forward_events(&st.pos[k], neg, &mut out, arith, c);
                    } else {
                        conv.forward_dense(&input, &mut out, arith, c);
                    }
                    if let Some(b) = bias {
                        bias_add_channels(&mut out, b, arith, c);
                    }
                }
                Op::Pool { g, avg } => pool2d(g, *avg, &input, &mut out, arith, c),
                Op::Scale(s) => {
                    out.copy_from_slice(&input);
                    scale(&mut out, s, arith, c);
                }
                Op::Threshold(t) => {
                    threshold(&input, t, &mut st.spikes[k], arith, c);
                    out.copy_from_slice(&st.spikes[k].dense);
                    st.spike_counts[k] += st.spikes[k].count() as u64;
                }
                Op::Delay(d) => d.step(&mut st.v[k], st.steps, &input, &mut out, arith, c),
                Op::Neuron(nv) => {
                    nv.step(
                        &mut st.v[k],
                        &mut st.i[k],
                        &input,
                        first,
                        &mut st.spikes[k],
                        arith,
                        c,
                    );
                    if nv.fire.is_some() {
                        out.copy_from_slice(&st.spikes[k].dense);
                        st.spike_counts[k] += st.spikes[k].count() as u64;
                    } else {
                        out.copy_from_slice(&st.v[k]);
                    }
                }
            }
            st.ins[k] = input;
            st.outs[k] = out;
        }
        st.steps += 1;
        for (s, v) in st.scores.iter_mut().zip(&st.outs[self.plan.output]) {
            *s += v;
        }
    }
}

impl crate::models::Stepper for Nir {
    type State = State;

    fn new_state(&self, _window: usize) -> State {
        Nir::new_state(self)
    }

    fn new_ledger(&self, arith: &Arith, _window: usize) -> Ledger {
        Nir::new_ledger(self, arith)
    }

    fn reset(&self, st: &mut State) {
        self.start_sample(st);
    }

    fn step(&self, frame: crate::models::Frame, st: &mut State, arith: &Arith, l: &mut Ledger) {
        match frame {
            crate::models::Frame::Values(x) => self.time_step(x, st, arith, l),
            crate::models::Frame::Token(_) => {
                unreachable!("the runner feeds vectors to a NIR model")
            }
        }
    }

    fn outputs<'s>(&self, st: &'s State) -> &'s [f32] {
        &st.scores
    }

    fn lif_layers(&self) -> Vec<String> {
        Nir::lif_layers(self)
    }
}
