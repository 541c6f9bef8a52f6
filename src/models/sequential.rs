//! Small feed-forward and recurrent networks described layer by layer, as a PyTorch
//! `nn.Sequential` (with snnTorch `Leaky` neurons): `Linear`, `Conv1d`, `Conv2d`, `ReLU`,
//! `Sigmoid`, `Leaky`, `RNNCell`, `LSTMCell`, `GRUCell`.
//!
//! A sample is a sequence of `timesteps` input vectors; state (membranes, hidden states) is reset
//! between samples. Every connection layer classifies its input at each step as NeuroBench does:
//! if every element is in {-1, 0, 1} the input is "spiking" and the layer runs event-driven (one
//! AC per synaptic event; a -1 is a subtracted event), otherwise dense (MACs, zero inputs gated).
//! The NeuroBench metric counts (`effective_mac`, `effective_ac`, `dense_synop`,
//! `membrane_change`, `act_out`/`act_nonzero`) follow NeuroBench's definitions exactly (zero
//! weights excluded, bias excluded, recurrent-cell gate products by NeuroBench's rules), while
//! the executed work (`mac`, `ac`, `add`, `mul`, `sigmoid`, `tanh`, memory bytes) is what the
//! engine did. `docs/neurobench.md` lists where the two differ.
//!
//! Parameter names follow PyTorch's `nn.Sequential` state dict: `{i}.weight`, `{i}.bias`, and
//! `{i}.weight_ih`, `{i}.weight_hh`, `{i}.bias_ih`, `{i}.bias_hh` for cells (gate order i, f, g, o
//! for LSTM and r, z, n for GRU, as PyTorch).

use std::collections::BTreeMap;
use std::path::Path;

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::engine::conv::{Conv, ConvGeom};
use crate::engine::leaky::{Leaky, LeakyReset};
use crate::engine::linear::Linear;
use crate::engine::{Arith, SpikeTrain};
use crate::error::{Error, Result};
use crate::ledger::{Counts, LayerId, Ledger, Op, TensorClass};
use crate::weights::TensorStore;

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn threshold_one() -> f32 {
    1.0
}

/// A 1-d or 2-d convolution (square kernel, same stride and padding on both axes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvSpec {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    #[serde(default = "one")]
    pub stride: usize,
    #[serde(default)]
    pub padding: usize,
    #[serde(default = "one")]
    pub groups: usize,
    #[serde(default = "yes")]
    pub bias: bool,
}

/// snnTorch `Leaky(beta, threshold=1.0, reset_mechanism="subtract")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakySpec {
    pub beta: f32,
    #[serde(default = "threshold_one")]
    pub threshold: f32,
    #[serde(default)]
    pub reset: LeakyReset,
}

/// A recurrent cell (`RNNCell` uses tanh).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSpec {
    pub input_size: usize,
    pub hidden_size: usize,
    #[serde(default = "yes")]
    pub bias: bool,
}

/// One layer, written in RON as `Linear(20, 25, false)`, `ReLU`, `Leaky(beta: 0.9)`, ...
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum LayerSpec {
    /// Linear(in_features, out_features, bias).
    Linear(usize, usize, bool),
    Conv1d(ConvSpec),
    Conv2d(ConvSpec),
    ReLU,
    Sigmoid,
    Leaky(LeakySpec),
    RNNCell(CellSpec),
    LSTMCell(CellSpec),
    GRUCell(CellSpec),
}

/// Where the parameters come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Weights {
    /// PyTorch's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (fan_in = hidden
    /// size for cells), times `gain` when given, from a seed.
    Seeded(u64),
    /// As `Seeded`, with every parameter multiplied by a gain (untrained spiking nets need one to fire).
    SeededGain(u64, f32),
    /// Every weight and bias equal to one value (NeuroBench's all-ones tests).
    Constant(f32),
    /// Named tensors written in the file (flat, row-major), e.g. `{"0.weight": [0.1, ...]}`.
    Inline(BTreeMap<String, Vec<f32>>),
    /// A safetensors file (relative to the model description) with PyTorch's state-dict keys.
    File(String),
}

pub use crate::input::Encoding;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    /// Shape of one step's input: [features], [channels, length] or [channels, height, width].
    pub input: Vec<usize>,
    #[serde(default = "one")]
    pub timesteps: usize,
    #[serde(default)]
    pub encoding: Encoding,
    pub layers: Vec<LayerSpec>,
    pub weights: Weights,
    /// Initial value of every recurrent hidden (and cell) state at a sample's start (PyTorch: 0).
    #[serde(default)]
    pub initial_state: f32,
}

/// Shape of an activation between layers.
#[derive(Clone, Debug, PartialEq)]
enum Shape {
    Flat(usize),
    /// (channels, length)
    C1(usize, usize),
    /// (channels, height, width)
    C2(usize, usize, usize),
}

impl Shape {
    fn numel(&self) -> usize {
        match *self {
            Shape::Flat(n) => n,
            Shape::C1(c, l) => c * l,
            Shape::C2(c, h, w) => c * h * w,
        }
    }
}

const MAX_ELEMS: usize = 1 << 28;

impl Config {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.timesteps == 0 || self.timesteps > 100_000 {
            return Err(format!(
                "timesteps must be between 1 and 100000, found {}",
                self.timesteps
            ));
        }
        if self.layers.is_empty() {
            return Err("`layers` is empty".into());
        }
        self.shapes().map(|_| ())
    }

    fn input_shape(&self) -> std::result::Result<Shape, String> {
        match self.input.as_slice() {
            [n] if *n > 0 => Ok(Shape::Flat(*n)),
            [c, l] if *c > 0 && *l > 0 => Ok(Shape::C1(*c, *l)),
            [c, h, w] if *c > 0 && *h > 0 && *w > 0 => Ok(Shape::C2(*c, *h, *w)),
            s => Err(format!(
                "input shape {s:?} must be [features], [channels, length] or [channels, height, width], all positive"
            )),
        }
    }

    /// The shape entering each layer, then the output shape; checks that layers fit together.
    fn shapes(&self) -> std::result::Result<Vec<Shape>, String> {
        let mut shapes = vec![self.input_shape()?];
        for (i, l) in self.layers.iter().enumerate() {
            let s = shapes.last().expect("input shape").clone();
            let at = |m: String| format!("layer {i} ({}): {m}", layer_kind(l));
            let next = match l {
                LayerSpec::Linear(n_in, n_out, _) => {
                    if s.numel() != *n_in {
                        return Err(at(format!(
                            "in_features {n_in} but its input has {} values",
                            s.numel()
                        )));
                    }
                    if *n_out == 0 {
                        return Err(at("out_features must be positive".into()));
                    }
                    Shape::Flat(*n_out)
                }
                LayerSpec::Conv1d(c) => {
                    let Shape::C1(ch, len) = s else {
                        return Err(at(format!("needs a [channels, length] input, found {s:?}")));
                    };
                    let g = conv_geom(c, ch, 1, len, true);
                    g.validate().map_err(&at)?;
                    if ch != c.in_channels {
                        return Err(at(format!(
                            "in_channels {} but its input has {ch} channels",
                            c.in_channels
                        )));
                    }
                    Shape::C1(g.c_out, g.w_out())
                }
                LayerSpec::Conv2d(c) => {
                    let Shape::C2(ch, h, w) = s else {
                        return Err(at(format!(
                            "needs a [channels, height, width] input, found {s:?}"
                        )));
                    };
                    let g = conv_geom(c, ch, h, w, false);
                    g.validate().map_err(&at)?;
                    if ch != c.in_channels {
                        return Err(at(format!(
                            "in_channels {} but its input has {ch} channels",
                            c.in_channels
                        )));
                    }
                    Shape::C2(g.c_out, g.h_out(), g.w_out())
                }
                LayerSpec::ReLU | LayerSpec::Sigmoid => s,
                LayerSpec::Leaky(k) => {
                    Leaky {
                        beta: k.beta,
                        threshold: k.threshold,
                        reset: k.reset,
                    }
                    .validate()
                    .map_err(&at)?;
                    s
                }
                LayerSpec::RNNCell(c) | LayerSpec::LSTMCell(c) | LayerSpec::GRUCell(c) => {
                    if s.numel() != c.input_size {
                        return Err(at(format!(
                            "input_size {} but its input has {} values",
                            c.input_size,
                            s.numel()
                        )));
                    }
                    if c.hidden_size == 0 {
                        return Err(at("hidden_size must be positive".into()));
                    }
                    Shape::Flat(c.hidden_size)
                }
            };
            if next.numel() > MAX_ELEMS {
                return Err(at(format!(
                    "output of {} values is too large",
                    next.numel()
                )));
            }
            shapes.push(next);
        }
        Ok(shapes)
    }

    /// Every parameter with its PyTorch shape, in state-dict order.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let shapes = self.shapes().unwrap_or_default();
        let mut out = vec![];
        for (i, l) in self.layers.iter().enumerate() {
            match l {
                LayerSpec::Linear(n_in, n_out, bias) => {
                    out.push((format!("{i}.weight"), vec![*n_out, *n_in]));
                    if *bias {
                        out.push((format!("{i}.bias"), vec![*n_out]));
                    }
                }
                LayerSpec::Conv1d(c) | LayerSpec::Conv2d(c) => {
                    let mut shape = vec![c.out_channels, c.in_channels / c.groups.max(1), c.kernel];
                    if matches!(l, LayerSpec::Conv2d(_)) {
                        shape.push(c.kernel);
                    }
                    out.push((format!("{i}.weight"), shape));
                    if c.bias {
                        out.push((format!("{i}.bias"), vec![c.out_channels]));
                    }
                }
                LayerSpec::RNNCell(c) | LayerSpec::LSTMCell(c) | LayerSpec::GRUCell(c) => {
                    let g = gates(l) * c.hidden_size;
                    out.push((format!("{i}.weight_ih"), vec![g, c.input_size]));
                    out.push((format!("{i}.weight_hh"), vec![g, c.hidden_size]));
                    if c.bias {
                        out.push((format!("{i}.bias_ih"), vec![g]));
                        out.push((format!("{i}.bias_hh"), vec![g]));
                    }
                }
                _ => {}
            }
        }
        let _ = shapes;
        out
    }

    /// NeuroBench `ParameterCount`: every weight and bias.
    pub fn n_params(&self) -> usize {
        self.parameter_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

fn conv_geom(c: &ConvSpec, ch: usize, h: usize, w: usize, one_d: bool) -> ConvGeom {
    ConvGeom {
        c_in: ch,
        c_out: c.out_channels,
        h,
        w,
        kh: if one_d { 1 } else { c.kernel },
        kw: c.kernel,
        sh: if one_d { 1 } else { c.stride },
        sw: c.stride,
        ph: if one_d { 0 } else { c.padding },
        pw: c.padding,
        groups: c.groups,
    }
}

fn gates(l: &LayerSpec) -> usize {
    match l {
        LayerSpec::LSTMCell(_) => 4,
        LayerSpec::GRUCell(_) => 3,
        _ => 1,
    }
}

fn layer_kind(l: &LayerSpec) -> &'static str {
    match l {
        LayerSpec::Linear(..) => "linear",
        LayerSpec::Conv1d(_) => "conv1d",
        LayerSpec::Conv2d(_) => "conv2d",
        LayerSpec::ReLU => "relu",
        LayerSpec::Sigmoid => "sigmoid",
        LayerSpec::Leaky(_) => "leaky",
        LayerSpec::RNNCell(_) => "rnn_cell",
        LayerSpec::LSTMCell(_) => "lstm_cell",
        LayerSpec::GRUCell(_) => "gru_cell",
    }
}

/// The tensors of a description: seeded, constant, inline or from a file.
pub fn weight_store(cfg: &Config, base: &Path) -> Result<TensorStore> {
    let shapes = cfg.parameter_shapes();
    let seeded = |seed: u64, gain: f32| {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut store = TensorStore::new(format!("seeded weights (seed {seed})"));
        for (i, l) in cfg.layers.iter().enumerate() {
            let fan_in = match l {
                LayerSpec::Linear(n_in, ..) => *n_in,
                LayerSpec::Conv1d(c) => c.in_channels / c.groups * c.kernel,
                LayerSpec::Conv2d(c) => c.in_channels / c.groups * c.kernel * c.kernel,
                LayerSpec::RNNCell(c) | LayerSpec::LSTMCell(c) | LayerSpec::GRUCell(c) => {
                    c.hidden_size
                }
                _ => continue,
            };
            let bound = gain / (fan_in.max(1) as f32).sqrt();
            for (key, shape) in shapes
                .iter()
                .filter(|(k, _)| k.split('.').next() == Some(&i.to_string()))
            {
                let n: usize = shape.iter().product();
                let data = (0..n)
                    .map(|_| bound * (2.0 * rng.random::<f32>() - 1.0))
                    .collect();
                store.insert(key.clone(), shape.clone(), data);
            }
        }
        store
    };
    Ok(match &cfg.weights {
        Weights::Seeded(seed) => seeded(*seed, 1.0),
        Weights::SeededGain(seed, gain) => {
            if !gain.is_finite() {
                return Err(Error::input(format!(
                    "model `{}`: SeededGain gain must be finite",
                    cfg.name
                )));
            }
            seeded(*seed, *gain)
        }
        Weights::Constant(v) => {
            let mut store = TensorStore::new(format!("constant weights ({v})"));
            for (key, shape) in &shapes {
                store.insert(key.clone(), shape.clone(), vec![*v; shape.iter().product()]);
            }
            store
        }
        Weights::Inline(map) => {
            let mut store = TensorStore::new(format!("model `{}` inline weights", cfg.name));
            for (key, data) in map {
                let shape = shapes
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, s)| s.clone())
                    .ok_or_else(|| {
                        let names: Vec<&str> = shapes.iter().map(|(k, _)| k.as_str()).collect();
                        Error::input(format!(
                            "model `{}`: inline tensor `{key}` is not a parameter (parameters: {})",
                            cfg.name,
                            names.join(", ")
                        ))
                    })?;
                let n: usize = shape.iter().product();
                if data.len() != n {
                    return Err(Error::input(format!(
                        "model `{}`: inline tensor `{key}` has {} values, expected {n} (shape {shape:?})",
                        cfg.name,
                        data.len()
                    )));
                }
                store.insert(key.clone(), shape, data.clone());
            }
            store
        }
        Weights::File(path) => crate::weights::load_file(&base.join(path))?,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CellKind {
    Rnn,
    Lstm,
    Gru,
}

struct Cell {
    kind: CellKind,
    hidden: usize,
    ih: Linear,
    hh: Linear,
    b_ih: Option<Vec<f32>>,
    b_hh: Option<Vec<f32>>,
    /// 1 where the bias is non-zero (0 everywhere without bias), and 1 everywhere with bias.
    bih_nz: Vec<u32>,
    bhh_nz: Vec<u32>,
    b_ones: Vec<u32>,
}

/// Buffers of one recurrent cell.
struct CellScratch {
    pos: SpikeTrain,
    neg: SpikeTrain,
    gi: Vec<f32>,
    gh: Vec<f32>,
    cnt_ih: Vec<u32>,
    cnt_hh: Vec<u32>,
}

enum Layer {
    Linear { lin: Linear, bias: Option<Vec<f32>> },
    Conv { conv: Conv, bias: Option<Vec<f32>> },
    Relu,
    Sigmoid,
    Leaky(Leaky),
    Cell(Cell),
}

/// NeuroBench's static metrics of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct StaticMetrics {
    /// Every weight and bias.
    pub ParameterCount: u64,
    /// Bytes of the parameters in their storage format (NeuroBench adds module buffers; see
    /// docs/neurobench.md).
    pub Footprint: u64,
    /// Zero weights / all weights of Linear and Conv layers (their weights only) and recurrent
    /// cells (weights and biases), rounded to 4 decimals as NeuroBench does.
    pub ConnectionSparsity: f64,
}

pub struct Sequential {
    pub cfg: Config,
    layers: Vec<Layer>,
    ids: Vec<LayerId>,
    sizes: Vec<usize>,
    template: Ledger,
    pub statics: StaticMetrics,
}

/// Per-run state and scratch buffers (nothing allocates per step).
pub struct State {
    /// Output of each layer (index i + 1; index 0 is the step's input).
    acts: Vec<Vec<f32>>,
    /// Membranes of Leaky layers and hidden/cell states of cells, by layer.
    mem: Vec<Vec<f32>>,
    cstate: Vec<Vec<f32>>,
    pos: Vec<SpikeTrain>,
    neg: Vec<SpikeTrain>,
    spikes: Vec<SpikeTrain>,
    cells: Vec<Option<CellScratch>>,
    /// Class scores of the last sample: the last layer's output summed over time steps.
    pub scores: Vec<f32>,
    /// Time steps of the current sample so far.
    steps: usize,
}

/// Fill `pos`/`neg` with the +1/-1 entries if every element is in {-1, 0, 1} (NeuroBench's
/// "spiking" input) and return true; else return false.
fn classify(x: &[f32], pos: &mut SpikeTrain, neg: &mut SpikeTrain) -> bool {
    if !x.iter().all(|&v| v == 0.0 || v == 1.0 || v == -1.0) {
        return false;
    }
    pos.clear();
    neg.clear();
    for (i, &v) in x.iter().enumerate() {
        if v == 1.0 {
            pos.fire(i);
        } else if v == -1.0 {
            neg.fire(i);
        }
    }
    true
}

fn add_bias(y: &mut [f32], b: &[f32], arith: &Arith, c: &mut Counts) {
    for (v, bb) in y.iter_mut().zip(b) {
        *v += bb;
    }
    let n = b.len() as u64;
    arith.count_add(c, n);
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        n * arith.operand_bytes(),
    );
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// NeuroBench's operation count of a recurrent cell (`metrics/utils/layers/macs.py`), from the
/// per-output counts of non-zero (input, weight) pairs of the two products, the binarised
/// biases (0 or 1 per output, zeros without bias) and the hidden / cell values (all taken as
/// non-zero when `h_ones`).
#[allow(clippy::too_many_arguments)]
fn neurobench_cell_ops(
    kind: CellKind,
    hd: usize,
    cnt_ih: &[u32],
    cnt_hh: &[u32],
    b_ih: &[u32],
    b_hh: &[u32],
    h: &[f32],
    c: &[f32],
    h_ones: bool,
) -> u64 {
    let h_nz = |k: usize| (h_ones || h[k] != 0.0) as i64;
    let c_nz = |k: usize| (c[k] != 0.0) as i64;
    let out: Vec<i64> = (0..cnt_ih.len())
        .map(|o| cnt_ih[o] as i64 + cnt_hh[o] as i64)
        .collect();
    let mut ops: i64 = out.iter().sum();
    let nz = |v: i64| (v != 0) as i64;
    match kind {
        CellKind::Rnn => {}
        CellKind::Lstm => {
            let g: Vec<i64> = (0..out.len())
                .map(|o| nz(out[o] + b_ih[o] as i64 + b_hh[o] as i64))
                .collect();
            for k in 0..hd {
                let (i, f, gg, o) = (g[k], g[hd + k], g[2 * hd + k], g[3 * hd + k]);
                let c1 = f * c_nz(k) + i * gg;
                ops += c1 + o * nz(c1);
            }
        }
        CellKind::Gru => {
            for k in 0..hd {
                let rz = |o: usize| out[o] + b_ih[o] as i64 + b_hh[o] as i64;
                let r = nz(rz(k));
                let z_raw = rz(hd + k);
                let hh_n = nz(cnt_hh[2 * hd + k] as i64 + b_hh[2 * hd + k] as i64);
                let n_hh = nz(r * hh_n);
                // NeuroBench uses the hidden-side count here (macs.py: out_hh[2] + bias_ih[2]).
                let n = nz(cnt_hh[2 * hd + k] as i64 + b_ih[2 * hd + k] as i64 + n_hh);
                let t1 = nz(nz(1 - z_raw) * n);
                let t2 = nz(nz(z_raw) * h_nz(k));
                ops += n_hh + t1 + t2;
            }
        }
    }
    ops.max(0) as u64
}

impl Sequential {
    pub fn from_config(cfg: Config, base: &Path) -> Result<Sequential> {
        cfg.validate()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let store = weight_store(&cfg, base)?;
        Sequential::new(cfg, &store)
    }

    pub fn new(cfg: Config, store: &TensorStore) -> Result<Sequential> {
        let shapes = cfg
            .shapes()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let mut template = Ledger::new();
        let mut layers = vec![];
        let mut ids = vec![];
        let (mut zeros, mut counted) = (0u64, 0u64);
        let mut tally = |d: &[f32]| {
            zeros += d.iter().filter(|v| **v == 0.0).count() as u64;
            counted += d.len() as u64;
        };
        for (i, l) in cfg.layers.iter().enumerate() {
            ids.push(template.layer(&format!("{i}.{}", layer_kind(l))));
            let get = |name: &str, shape: &[usize]| store.get(&format!("{i}.{name}"), shape);
            let layer = match l {
                LayerSpec::Linear(n_in, n_out, bias) => {
                    let w = get("weight", &[*n_out, *n_in])?;
                    tally(w);
                    let bias = if *bias {
                        Some(get("bias", &[*n_out])?.to_vec())
                    } else {
                        None
                    };
                    Layer::Linear {
                        lin: Linear::from_out_in(w, *n_out, *n_in),
                        bias,
                    }
                }
                LayerSpec::Conv1d(c) | LayerSpec::Conv2d(c) => {
                    let g = match shapes[i] {
                        Shape::C1(ch, len) => conv_geom(c, ch, 1, len, true),
                        Shape::C2(ch, h, w) => conv_geom(c, ch, h, w, false),
                        Shape::Flat(_) => unreachable!("checked by shapes()"),
                    };
                    let mut shape = vec![c.out_channels, c.in_channels / c.groups, c.kernel];
                    if matches!(l, LayerSpec::Conv2d(_)) {
                        shape.push(c.kernel);
                    }
                    let w = get("weight", &shape)?;
                    tally(w);
                    let bias = if c.bias {
                        Some(get("bias", &[c.out_channels])?.to_vec())
                    } else {
                        None
                    };
                    Layer::Conv {
                        conv: Conv::from_pytorch(g, w),
                        bias,
                    }
                }
                LayerSpec::ReLU => Layer::Relu,
                LayerSpec::Sigmoid => Layer::Sigmoid,
                LayerSpec::Leaky(k) => Layer::Leaky(Leaky {
                    beta: k.beta,
                    threshold: k.threshold,
                    reset: k.reset,
                }),
                LayerSpec::RNNCell(c) | LayerSpec::LSTMCell(c) | LayerSpec::GRUCell(c) => {
                    let gh = gates(l) * c.hidden_size;
                    let wih = get("weight_ih", &[gh, c.input_size])?;
                    let whh = get("weight_hh", &[gh, c.hidden_size])?;
                    tally(wih);
                    tally(whh);
                    let (b_ih, b_hh) = if c.bias {
                        let (a, b) = (get("bias_ih", &[gh])?, get("bias_hh", &[gh])?);
                        tally(a);
                        tally(b);
                        (Some(a.to_vec()), Some(b.to_vec()))
                    } else {
                        (None, None)
                    };
                    let kind = match l {
                        LayerSpec::LSTMCell(_) => CellKind::Lstm,
                        LayerSpec::GRUCell(_) => CellKind::Gru,
                        _ => CellKind::Rnn,
                    };
                    let nz = |b: &Option<Vec<f32>>| {
                        b.as_ref()
                            .map(|b| b.iter().map(|v| (*v != 0.0) as u32).collect())
                            .unwrap_or_else(|| vec![0; gh])
                    };
                    Layer::Cell(Cell {
                        kind,
                        hidden: c.hidden_size,
                        ih: Linear::from_out_in(wih, gh, c.input_size),
                        hh: Linear::from_out_in(whh, gh, c.hidden_size),
                        bih_nz: nz(&b_ih),
                        bhh_nz: nz(&b_hh),
                        b_ones: vec![c.bias as u32; gh],
                        b_ih,
                        b_hh,
                    })
                }
            };
            layers.push(layer);
        }
        let n_params = cfg.n_params() as u64;
        let sparsity = if counted == 0 {
            0.0
        } else {
            (zeros as f64 / counted as f64 * 1e4).round() / 1e4
        };
        let statics = StaticMetrics {
            ParameterCount: n_params,
            Footprint: n_params * Arith::Exact.operand_bytes(),
            ConnectionSparsity: sparsity,
        };
        let sizes = shapes.iter().map(|s| s.numel()).collect();
        let mut model = Sequential {
            cfg,
            layers,
            ids,
            sizes,
            template,
            statics,
        };
        model.template.footprint = model.footprint(&Arith::Exact);
        Ok(model)
    }

    /// Bytes resident per tensor class: parameters (weights and biases), Leaky membranes,
    /// recurrent states, the largest activation, the largest layer's spikes as addresses.
    pub fn footprint(&self, arith: &Arith) -> BTreeMap<TensorClass, u64> {
        let b = arith.operand_bytes();
        let mut neurons = 0u64;
        let mut state = 0u64;
        for (i, l) in self.layers.iter().enumerate() {
            match l {
                Layer::Leaky(_) => neurons += self.sizes[i + 1] as u64,
                Layer::Cell(c) => {
                    state += c.hidden as u64 * if c.kind == CellKind::Lstm { 2 } else { 1 }
                }
                _ => {}
            }
        }
        let widest = self.sizes.iter().copied().max().unwrap_or(1);
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

    /// An empty ledger with every layer registered (`{index}.{kind}`), in execution order.
    pub fn new_ledger(&self, arith: &Arith) -> Ledger {
        let mut l = self.template.clone();
        l.footprint = self.footprint(arith);
        l
    }

    /// Ledger paths of the spiking (Leaky) layers.
    pub fn lif_layers(&self) -> Vec<String> {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l, Layer::Leaky(_)))
            .map(|(i, _)| format!("{i}.{}", layer_kind(&self.cfg.layers[i])))
            .collect()
    }

    pub fn n_classes(&self) -> usize {
        *self.sizes.last().expect("at least one layer")
    }

    pub fn n_inputs(&self) -> usize {
        self.sizes[0]
    }

    pub fn new_state(&self) -> State {
        let n = self.layers.len();
        State {
            acts: self.sizes.iter().map(|&s| vec![0.0; s]).collect(),
            mem: (0..n).map(|i| vec![0.0; self.sizes[i + 1]]).collect(),
            cstate: (0..n)
                .map(|i| {
                    if matches!(&self.layers[i], Layer::Cell(c) if c.kind == CellKind::Lstm) {
                        vec![0.0; self.sizes[i + 1]]
                    } else {
                        vec![]
                    }
                })
                .collect(),
            pos: self.sizes[..n]
                .iter()
                .map(|&s| SpikeTrain::new(s))
                .collect(),
            neg: self.sizes[..n]
                .iter()
                .map(|&s| SpikeTrain::new(s))
                .collect(),
            spikes: (0..n).map(|i| SpikeTrain::new(self.sizes[i + 1])).collect(),
            cells: self
                .layers
                .iter()
                .map(|l| match l {
                    Layer::Cell(c) => Some(CellScratch {
                        pos: SpikeTrain::new(c.ih.n_in),
                        neg: SpikeTrain::new(c.ih.n_in),
                        gi: vec![0.0; c.ih.n_out],
                        gh: vec![0.0; c.ih.n_out],
                        cnt_ih: vec![0; c.ih.n_out],
                        cnt_hh: vec![0; c.ih.n_out],
                    }),
                    _ => None,
                })
                .collect(),
            scores: vec![0.0; self.n_classes()],
            steps: 0,
        }
    }

    /// Run one sample: `steps[t]` is the input at step t. Resets state first; leaves the class
    /// scores (the last layer's output summed over steps) in `state.scores`.
    pub fn run_sample(
        &self,
        steps: &[Vec<f32>],
        state: &mut State,
        arith: &Arith,
        ledger: &mut Ledger,
    ) {
        self.start_sample(state);
        for x in steps {
            self.time_step(x, state, arith, ledger);
        }
    }

    /// Reset membranes, hidden states and scores for a new sample.
    fn start_sample(&self, state: &mut State) {
        for (i, l) in self.layers.iter().enumerate() {
            let init = if matches!(l, Layer::Cell(_)) {
                self.cfg.initial_state
            } else {
                0.0
            };
            state.mem[i].fill(init);
            state.cstate[i].fill(init);
        }
        state.scores.fill(0.0);
        state.steps = 0;
    }

    /// One time step of the current sample; its output is added to the class scores.
    fn time_step(&self, x: &[f32], state: &mut State, arith: &Arith, ledger: &mut Ledger) {
        self.step(x, state.steps == 0, state, arith, ledger);
        state.steps += 1;
        let last = state.acts.last().expect("output");
        for (s, v) in state.scores.iter_mut().zip(last) {
            *s += v;
        }
    }

    fn step(&self, x: &[f32], first: bool, st: &mut State, arith: &Arith, ledger: &mut Ledger) {
        st.acts[0].copy_from_slice(x);
        let bytes = arith.operand_bytes();
        let State {
            acts,
            mem,
            cstate,
            pos,
            neg,
            spikes,
            cells,
            ..
        } = st;
        for (i, layer) in self.layers.iter().enumerate() {
            let c = ledger.at(self.ids[i]);
            let (before, after) = acts.split_at_mut(i + 1);
            let input = &before[i];
            let out = &mut after[0];
            match layer {
                Layer::Linear { lin, bias } => {
                    if classify(input, &mut pos[i], &mut neg[i]) {
                        out.fill(0.0);
                        let mut eff = lin.event_work(&pos[i], out, false, arith, c);
                        if neg[i].count() > 0 {
                            eff += lin.event_work(&neg[i], out, true, arith, c);
                        }
                        c.add(Op::EffectiveAc, arith.fmt(), eff);
                        c.add(
                            Op::DenseSynop,
                            arith.fmt(),
                            lin.n_in as u64 * lin.n_out as u64,
                        );
                        c.mem(
                            Op::Write,
                            arith.fmt(),
                            TensorClass::Activation,
                            lin.n_out as u64 * bytes,
                        );
                    } else {
                        lin.forward_dense(input, out, arith, c);
                    }
                    if let Some(b) = bias {
                        add_bias(out, b, arith, c);
                    }
                }
                Layer::Conv { conv, bias } => {
                    if classify(input, &mut pos[i], &mut neg[i]) {
                        let neg = (neg[i].count() > 0).then_some(&neg[i]);
                        conv.forward_events(&pos[i], neg, out, arith, c);
                    } else {
                        conv.forward_dense(input, out, arith, c);
                    }
                    if let Some(b) = bias {
                        let per = out.len() / b.len();
                        for (ch, bb) in b.iter().enumerate() {
                            for v in &mut out[ch * per..(ch + 1) * per] {
                                *v += bb;
                            }
                        }
                        arith.count_add(c, out.len() as u64);
                        c.mem(
                            Op::Read,
                            arith.fmt(),
                            TensorClass::Weight,
                            b.len() as u64 * bytes,
                        );
                    }
                }
                Layer::Relu => {
                    let mut nz = 0u64;
                    for (o, &v) in out.iter_mut().zip(input.iter()) {
                        *o = if v > 0.0 { v } else { 0.0 };
                        nz += (*o != 0.0) as u64;
                    }
                    let n = out.len() as u64;
                    c.add(Op::Cmp, arith.acc_fmt(), n);
                    c.add(Op::ActOut, arith.acc_fmt(), n);
                    c.add(Op::ActNonzero, arith.acc_fmt(), nz);
                    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
                    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
                }
                Layer::Sigmoid => {
                    let mut nz = 0u64;
                    for (o, &v) in out.iter_mut().zip(input.iter()) {
                        *o = sigmoid(v);
                        nz += (*o != 0.0) as u64;
                    }
                    let n = out.len() as u64;
                    c.add(Op::Sigmoid, arith.acc_fmt(), n);
                    c.add(Op::ActOut, arith.acc_fmt(), n);
                    c.add(Op::ActNonzero, arith.acc_fmt(), nz);
                    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
                    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
                }
                Layer::Leaky(l) => {
                    l.step(&mut mem[i], input, first, &mut spikes[i], arith, c);
                    out.copy_from_slice(&spikes[i].dense);
                }
                Layer::Cell(cell) => {
                    let sc = cells[i].as_mut().expect("cell scratch");
                    cell_step(cell, input, &mut mem[i], &mut cstate[i], out, sc, arith, c);
                }
            }
        }
    }
}

/// One step of a recurrent cell: executes and counts its work, and adds NeuroBench's count of
/// its operations (ACs if its input x is all in {-1, 0, 1}, else MACs; `dense_synop` with
/// all-ones weights and inputs). The hidden-state product runs dense (zero entries gated).
#[allow(clippy::too_many_arguments)]
fn cell_step(
    cell: &Cell,
    x: &[f32],
    h: &mut [f32],
    cs: &mut [f32],
    out: &mut [f32],
    sc: &mut CellScratch,
    arith: &Arith,
    c: &mut Counts,
) {
    let hd = cell.hidden;
    let g = cell.ih.n_out;
    let bytes = arith.operand_bytes();
    let fmt = arith.fmt();
    // NeuroBench's count, from the inputs before the update.
    let (cnt_ih, cnt_hh) = (&mut sc.cnt_ih[..g], &mut sc.cnt_hh[..g]);
    cnt_ih.fill(0);
    cnt_hh.fill(0);
    cell.ih.structural_counts(x, cnt_ih);
    cell.hh.structural_counts(h, cnt_hh);
    let effective = neurobench_cell_ops(
        cell.kind,
        hd,
        cnt_ih,
        cnt_hh,
        &cell.bih_nz,
        &cell.bhh_nz,
        h,
        cs,
        false,
    );
    // All-ones: x and weights all ones; NeuroBench forces a top-level hidden state to ones but
    // only binarises LSTM's nested (h, c) tuple.
    let lstm = cell.kind == CellKind::Lstm;
    cnt_ih.fill(cell.ih.n_in as u32);
    let h_count = if lstm {
        h.iter().filter(|v| **v != 0.0).count() as u32
    } else {
        hd as u32
    };
    cnt_hh.fill(h_count);
    let dense = neurobench_cell_ops(
        cell.kind,
        hd,
        cnt_ih,
        cnt_hh,
        &cell.b_ones,
        &cell.b_ones,
        h,
        cs,
        !lstm,
    );

    // The work.
    let (gi, gh) = (&mut sc.gi[..g], &mut sc.gh[..g]);
    let spiking = classify(x, &mut sc.pos, &mut sc.neg);
    if spiking {
        gi.fill(0.0);
        cell.ih.event_work(&sc.pos, gi, false, arith, c);
        if sc.neg.count() > 0 {
            cell.ih.event_work(&sc.neg, gi, true, arith, c);
        }
        c.mem(Op::Write, fmt, TensorClass::Activation, g as u64 * bytes);
        c.add(Op::EffectiveAc, fmt, effective);
    } else {
        cell.ih.dense_work(x, gi, arith, c);
        c.add(Op::EffectiveMac, fmt, effective);
    }
    c.add(Op::DenseSynop, fmt, dense);
    cell.hh.dense_work(h, gh, arith, c);
    if let Some(b) = &cell.b_ih {
        add_bias(gi, b, arith, c);
    }
    if let Some(b) = &cell.b_hh {
        add_bias(gh, b, arith, c);
    }
    let n = hd as u64;
    match cell.kind {
        CellKind::Rnn => {
            for k in 0..hd {
                h[k] = (gi[k] + gh[k]).tanh();
            }
            arith.count_add(c, n);
            c.add(Op::Tanh, arith.acc_fmt(), n);
        }
        CellKind::Lstm => {
            for k in 0..hd {
                let i = sigmoid(gi[k] + gh[k]);
                let f = sigmoid(gi[hd + k] + gh[hd + k]);
                let gg = (gi[2 * hd + k] + gh[2 * hd + k]).tanh();
                let o = sigmoid(gi[3 * hd + k] + gh[3 * hd + k]);
                cs[k] = arith.mul(f, cs[k]) + arith.mul(i, gg);
                h[k] = arith.mul(o, cs[k].tanh());
            }
            arith.count_add(c, 5 * n);
            arith.count_mul(c, 3 * n);
            c.add(Op::Sigmoid, arith.acc_fmt(), 3 * n);
            c.add(Op::Tanh, arith.acc_fmt(), 2 * n);
            c.mem(Op::Read, fmt, TensorClass::State, n * bytes);
            c.mem(Op::Write, fmt, TensorClass::State, n * bytes);
        }
        CellKind::Gru => {
            for k in 0..hd {
                let r = sigmoid(gi[k] + gh[k]);
                let z = sigmoid(gi[hd + k] + gh[hd + k]);
                let nn = (gi[2 * hd + k] + arith.mul(r, gh[2 * hd + k])).tanh();
                h[k] = nn + arith.mul(z, h[k] - nn);
            }
            arith.count_add(c, 5 * n);
            arith.count_mul(c, 2 * n);
            c.add(Op::Sigmoid, arith.acc_fmt(), 2 * n);
            c.add(Op::Tanh, arith.acc_fmt(), n);
        }
    }
    c.mem(Op::Write, fmt, TensorClass::State, n * bytes);
    out.copy_from_slice(h);
}

impl crate::models::Stepper for Sequential {
    type State = State;

    fn new_state(&self, _window: usize) -> State {
        Sequential::new_state(self)
    }

    fn new_ledger(&self, arith: &Arith, _window: usize) -> Ledger {
        Sequential::new_ledger(self, arith)
    }

    fn reset(&self, st: &mut State) {
        self.start_sample(st);
    }

    fn step(&self, frame: crate::models::Frame, st: &mut State, arith: &Arith, l: &mut Ledger) {
        match frame {
            crate::models::Frame::Values(x) => self.time_step(x, st, arith, l),
            crate::models::Frame::Token(_) => {
                unreachable!("the runner feeds vectors to a Sequential model")
            }
        }
    }

    fn outputs<'s>(&self, st: &'s State) -> &'s [f32] {
        &st.scores
    }

    fn lif_layers(&self) -> Vec<String> {
        Sequential::lif_layers(self)
    }
}
