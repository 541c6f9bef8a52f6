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

use crate::engine::cells::{Cell, CellKind, CellScratch};
use crate::engine::conv::{Conv, ConvGeom};
use crate::engine::events::split_signed;
use crate::engine::leaky::{Leaky, LeakyReset};
use crate::engine::linear::Linear;
use crate::engine::pointwise::{bias_add, bias_add_channels, relu, sigmoid};
use crate::engine::{Arith, SpikeTrain};
use crate::error::{Error, Result};
use crate::ledger::{LayerId, Ledger, Op, TensorClass};
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
                    let g = cell_kind(l).gates() * c.hidden_size;
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

fn cell_kind(l: &LayerSpec) -> CellKind {
    match l {
        LayerSpec::LSTMCell(_) => CellKind::Lstm,
        LayerSpec::GRUCell(_) => CellKind::Gru,
        _ => CellKind::Rnn,
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

enum Layer {
    Linear { lin: Linear, bias: Option<Vec<f32>> },
    Conv { conv: Conv, bias: Option<Vec<f32>> },
    Relu,
    Sigmoid,
    Leaky(Leaky),
    Cell(Cell),
}

pub use super::statics::StaticMetrics;

pub struct Sequential {
    pub cfg: Config,
    layers: Vec<Layer>,
    ids: Vec<LayerId>,
    sizes: Vec<usize>,
    template: Ledger,
    pub statics: StaticMetrics,
    /// Tensors of the weights file this model did not read (a warning, or empty).
    pub unused_tensors: Option<String>,
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
    /// The connection layers' calls of the last step, when kept (`Stepper::keep_layer_calls`).
    calls: Option<Vec<crate::models::LayerCall>>,
}

impl Sequential {
    pub fn from_config(cfg: Config, base: &Path) -> Result<Sequential> {
        cfg.validate()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let store = weight_store(&cfg, base)?;
        let from_file = matches!(cfg.weights, Weights::File(_));
        let mut model = Sequential::new(cfg, &store)?;
        if from_file {
            model.unused_tensors = store.unread_warning(&model.cfg.name);
        }
        Ok(model)
    }

    pub fn new(cfg: Config, store: &TensorStore) -> Result<Sequential> {
        let shapes = cfg
            .shapes()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let mut template = Ledger::new();
        let mut layers = vec![];
        let mut ids = vec![];
        let mut tally = super::statics::Tally::default();
        for (i, l) in cfg.layers.iter().enumerate() {
            let layer_name = format!("{i}.{}", layer_kind(l));
            ids.push(template.layer(&layer_name));
            let get = |name: &str, shape: &[usize]| store.get(&format!("{i}.{name}"), shape);
            let layer = match l {
                LayerSpec::Linear(n_in, n_out, bias) => {
                    let w = get("weight", &[*n_out, *n_in])?;
                    tally.param(w, true);
                    let bias = if *bias {
                        let b = get("bias", &[*n_out])?;
                        tally.param(b, false);
                        Some(b.to_vec())
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
                    tally.param(w, true);
                    let bias = if c.bias {
                        let b = get("bias", &[c.out_channels])?;
                        tally.param(b, false);
                        Some(b.to_vec())
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
                LayerSpec::Leaky(k) => {
                    // NeuroBench's NeuronOperations: 4 operations per update of an snnTorch
                    // Leaky neuron, with either reset.
                    tally.neuron_layer(&layer_name, 4);
                    Layer::Leaky(Leaky {
                        beta: k.beta,
                        threshold: k.threshold,
                        reset: k.reset,
                    })
                }
                LayerSpec::RNNCell(c) | LayerSpec::LSTMCell(c) | LayerSpec::GRUCell(c) => {
                    let gh = cell_kind(l).gates() * c.hidden_size;
                    let wih = get("weight_ih", &[gh, c.input_size])?;
                    let whh = get("weight_hh", &[gh, c.hidden_size])?;
                    tally.param(wih, true);
                    tally.param(whh, true);
                    let bias = if c.bias {
                        let (a, b) = (get("bias_ih", &[gh])?, get("bias_hh", &[gh])?);
                        tally.param(a, true);
                        tally.param(b, true);
                        Some((a, b))
                    } else {
                        None
                    };
                    Layer::Cell(Cell::from_pytorch(
                        cell_kind(l),
                        c.input_size,
                        c.hidden_size,
                        wih,
                        whh,
                        bias,
                    ))
                }
            };
            layers.push(layer);
        }
        let statics = tally.finish();
        debug_assert_eq!(statics.ParameterCount, cfg.n_params() as u64);
        let sizes = shapes.iter().map(|s| s.numel()).collect();
        let mut model = Sequential {
            cfg,
            unused_tensors: None,
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
                Layer::Cell(c) => state += c.state_len() as u64,
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
                    Layer::Cell(c) => Some(c.scratch()),
                    _ => None,
                })
                .collect(),
            scores: vec![0.0; self.n_classes()],
            steps: 0,
            calls: None,
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
        let State {
            acts,
            mem,
            cstate,
            pos,
            neg,
            spikes,
            cells,
            calls,
            ..
        } = st;
        if let Some(calls) = calls.as_mut() {
            calls.clear();
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let connection = matches!(
                layer,
                Layer::Linear { .. } | Layer::Conv { .. } | Layer::Cell(_)
            );
            // The effective ACs before this call, when the calls are kept.
            let kept = match calls.as_mut() {
                Some(calls) if connection => {
                    Some((calls, ledger.get(self.ids[i]).op_total(Op::EffectiveAc)))
                }
                _ => None,
            };
            let c = ledger.at(self.ids[i]);
            let (before, after) = acts.split_at_mut(i + 1);
            let input = &before[i];
            let out = &mut after[0];
            match layer {
                Layer::Linear { lin, bias } => {
                    if split_signed(input, &mut pos[i], &mut neg[i]) {
                        lin.forward_signed_events(&pos[i], &neg[i], out, arith, c);
                    } else {
                        lin.forward_dense(input, out, arith, c);
                    }
                    if let Some(b) = bias {
                        bias_add(out, b, arith, c);
                    }
                }
                Layer::Conv { conv, bias } => {
                    if split_signed(input, &mut pos[i], &mut neg[i]) {
                        let neg = (neg[i].count() > 0).then_some(&neg[i]);
                        conv.forward_events(&pos[i], neg, out, arith, c);
                    } else {
                        conv.forward_dense(input, out, arith, c);
                    }
                    if let Some(b) = bias {
                        bias_add_channels(out, b, arith, c);
                    }
                }
                Layer::Relu => {
                    out.copy_from_slice(input);
                    relu(out, arith, c);
                }
                Layer::Sigmoid => {
                    out.copy_from_slice(input);
                    sigmoid(out, arith, c);
                }
                Layer::Leaky(l) => {
                    l.step(&mut mem[i], input, first, &mut spikes[i], arith, c);
                    out.copy_from_slice(&spikes[i].dense);
                }
                Layer::Cell(cell) => {
                    let sc = cells[i].as_mut().expect("cell scratch");
                    cell.step(input, &mut mem[i], &mut cstate[i], sc, arith, c);
                    out.copy_from_slice(&mem[i]);
                }
            }
            if let Some((calls, before)) = kept {
                calls.push(crate::models::LayerCall {
                    layer: self.ids[i],
                    spiking: crate::engine::events::is_spiking(&acts[i]),
                    effective_ac: ledger.get(self.ids[i]).op_total(Op::EffectiveAc) - before,
                });
            }
        }
    }
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

    fn keep_layer_calls(&self, st: &mut State, on: bool) {
        st.calls = on.then(Vec::new);
    }

    fn layer_calls<'s>(&self, st: &'s State) -> &'s [crate::models::LayerCall] {
        st.calls.as_deref().unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::arith::{Mode, Scope};
    use crate::ledger::{ActionKey, BF16, Counts, FP32, Fmt, Op};
    use crate::numerics::FloatFormat;

    /// Counts of `act` after a Linear(4, 3), one real-valued step under bf16 on projections only.
    fn activation_counts_bf16_on_projections(act: &str) -> Counts {
        let cfg: Config = ron::from_str(&format!(
            "(name: \"m\", input: [4], layers: [Linear(4, 3, false), {act}], weights: Seeded(0))"
        ))
        .unwrap();
        let mut s = TensorStore::new("test");
        let w = [
            1.0, -2.0, 0.5, 0.0, -1.0, 0.25, 2.0, 1.0, 0.5, 0.5, -0.5, -3.0,
        ];
        s.insert("0.weight", vec![3, 4], w.to_vec());
        let m = Sequential::new(cfg, &s).unwrap();
        let bf16 = Mode::Round {
            format: FloatFormat::BF16,
            acc: FloatFormat::FP32,
        };
        let arith = Arith::new(bf16, Scope::Projections);
        let mut l = m.new_ledger(&arith);
        let mut st = m.new_state();
        m.run_sample(&[vec![0.5, 1.5, -2.0, 0.25]], &mut st, &arith, &mut l);
        l.layers().nth(1).expect("activation layer").1.clone()
    }

    fn activation_bytes(c: &Counts, op: Op, fmt: Fmt) -> u64 {
        let key = ActionKey::mem(op, fmt, TensorClass::Activation);
        c.0.get(&key).copied().unwrap_or(0)
    }

    #[test]
    fn relu_outside_the_projection_scope_moves_its_activations_in_fp32() {
        let c = activation_counts_bf16_on_projections("ReLU");
        for op in [Op::Read, Op::Write] {
            assert_eq!(activation_bytes(&c, op, FP32), 3 * 4, "{op:?}");
            assert_eq!(activation_bytes(&c, op, BF16), 0, "{op:?}");
        }
    }

    #[test]
    fn sigmoid_outside_the_projection_scope_moves_its_activations_in_fp32() {
        let c = activation_counts_bf16_on_projections("Sigmoid");
        for op in [Op::Read, Op::Write] {
            assert_eq!(activation_bytes(&c, op, FP32), 3 * 4, "{op:?}");
            assert_eq!(activation_bytes(&c, op, BF16), 0, "{op:?}");
        }
    }
}
