//! Networks read from NIR (the Neuromorphic Intermediate Representation, `.nir` HDF5 files):
//! a graph of nodes joined by edges, executed step by step through the engine primitives.
//!
//! A NIR neuron is a continuous-time ODE; it is discretised here with the time step `dt` of the
//! configuration (forward Euler, the form snnTorch and Norse both use):
//! - LIF: `tau dv/dt = (v_leak - v) + r I` gives `v' = (1 - dt/tau) v + (dt/tau) v_leak +
//!   (dt r / tau) x`; spike where `v' > v_threshold`, and `v' = v_reset` there, in the same step.
//! - LI: as LIF without spikes (its output is the membrane). IF: `v' = v + dt r x`, spiking.
//!   I (integrator): `v' = v + dt r x`, no spikes.
//! - CubaLIF / CubaLI: a synaptic current `i' = (1 - dt/tau_syn) i + (dt w_in / tau_syn) x`
//!   drives the membrane in place of `x`, updated before the membrane sees it (snnTorch's
//!   `Synaptic` and Norse's `LIFCell` both do so); the Norse convention adds `w_in x` to the
//!   current unscaled, as `LIFCell` adds its input.
//!
//! The graph is ordered by a depth-first walk from the input (edges come in no order; successors
//! are visited by name). An edge that closes a cycle is a back edge: its target reads the
//! source's output of the previous step (zero at a sample's start), which is where the one-step
//! delay of a recurrent loop sits. A cycle must pass through a neuron (a state node). A node with
//! several incoming edges adds them (counted adds). Connection nodes (Affine, Linear, Conv) run
//! event-driven when their input is all in {-1, 0, 1}, dense otherwise, as the sequential family
//! decides. Parameters live in a tensor store under `{node}.{parameter}` (NIR's names).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::conv::{Conv, ConvGeom};
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
use crate::weights::hdf5::{Item, read_tree};

fn one() -> usize {
    1
}

/// How a framework reads a NIR file: its time step and how an input enters a synaptic current.
/// The file itself stores neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Convention {
    /// snnTorch: dt = 1e-4 s (`beta = 1 - dt/tau`, `r = tau/dt`), Euler input to a current.
    #[default]
    Snntorch,
    /// Norse: dt = 1e-3 s, the input jumps into a synaptic current unscaled.
    Norse,
}

impl Convention {
    pub fn dt(self) -> f64 {
        match self {
            Convention::Snntorch => 1e-4,
            Convention::Norse => 1e-3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Convention::Snntorch => "snntorch",
            Convention::Norse => "norse",
        }
    }
}

/// A 1-d or 2-d convolution node (per-axis kernel, stride, padding, dilation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvNode {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
    pub dilation: Vec<usize>,
    pub groups: usize,
    pub bias: bool,
}

/// A 2-d pooling node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolNode {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

/// One NIR node. Neuron nodes give `n`, the number of values of each parameter (1: one value
/// for every neuron).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum Node {
    Input { shape: Vec<usize> },
    Output { shape: Vec<usize> },
    Affine { n_in: usize, n_out: usize },
    Linear { n_in: usize, n_out: usize },
    Conv1d(ConvNode),
    Conv2d(ConvNode),
    SumPool2d(PoolNode),
    AvgPool2d(PoolNode),
    Flatten { start_dim: i64, end_dim: i64 },
    Scale { n: usize },
    Threshold { n: usize },
    IF { n: usize },
    LI { n: usize },
    LIF { n: usize },
    CubaLI { n: usize },
    CubaLIF { n: usize },
    I { n: usize },
    Delay { n: usize },
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Input { .. } => "Input",
            Node::Output { .. } => "Output",
            Node::Affine { .. } => "Affine",
            Node::Linear { .. } => "Linear",
            Node::Conv1d(_) => "Conv1d",
            Node::Conv2d(_) => "Conv2d",
            Node::SumPool2d(_) => "SumPool2d",
            Node::AvgPool2d(_) => "AvgPool2d",
            Node::Flatten { .. } => "Flatten",
            Node::Scale { .. } => "Scale",
            Node::Threshold { .. } => "Threshold",
            Node::IF { .. } => "IF",
            Node::LI { .. } => "LI",
            Node::LIF { .. } => "LIF",
            Node::CubaLI { .. } => "CubaLI",
            Node::CubaLIF { .. } => "CubaLIF",
            Node::I { .. } => "I",
            Node::Delay { .. } => "Delay",
        }
    }

    /// Nodes that hold state across steps (a cycle must pass through one).
    pub fn is_state(&self) -> bool {
        matches!(
            self,
            Node::IF { .. }
                | Node::LI { .. }
                | Node::LIF { .. }
                | Node::CubaLI { .. }
                | Node::CubaLIF { .. }
                | Node::I { .. }
                | Node::Delay { .. }
        )
    }

    /// Neurons that spike.
    pub fn spikes(&self) -> bool {
        matches!(
            self,
            Node::IF { .. } | Node::LIF { .. } | Node::CubaLIF { .. } | Node::Threshold { .. }
        )
    }

    /// Parameter names and whether each is one value per neuron.
    fn neuron_params(&self) -> &'static [&'static str] {
        match self {
            Node::IF { .. } => &["r", "v_threshold", "v_reset"],
            Node::LI { .. } => &["tau", "r", "v_leak"],
            Node::LIF { .. } => &["tau", "r", "v_leak", "v_threshold", "v_reset"],
            Node::CubaLI { .. } => &["tau_mem", "tau_syn", "r", "v_leak", "w_in"],
            Node::CubaLIF { .. } => &[
                "tau_mem",
                "tau_syn",
                "r",
                "v_leak",
                "v_threshold",
                "v_reset",
                "w_in",
            ],
            Node::I { .. } => &["r"],
            Node::Scale { .. } => &["scale"],
            Node::Threshold { .. } => &["threshold"],
            Node::Delay { .. } => &["delay"],
            _ => &[],
        }
    }
}

/// Where the parameters are read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NirWeights {
    /// A safetensors file (relative to the description) with keys `{node}.{parameter}`.
    File(String),
    /// The `.nir` file itself (relative to the description).
    Nir(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    /// The time step, in seconds, that discretises the neurons.
    pub dt: f64,
    /// Which framework's reading of the file (update order; `dt` is given separately).
    #[serde(default)]
    pub convention: Convention,
    /// Time steps per sample.
    #[serde(default = "one")]
    pub timesteps: usize,
    #[serde(default)]
    pub encoding: crate::input::Encoding,
    pub nodes: BTreeMap<String, Node>,
    pub edges: Vec<(String, String)>,
    pub weights: NirWeights,
}

/// The graph in execution order, with every node's input and output shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub order: Vec<String>,
    /// Per node (in order): its sources, as (index in `order`, back edge).
    pub preds: Vec<Vec<(usize, bool)>>,
    pub shape_in: Vec<Vec<usize>>,
    pub shape_out: Vec<Vec<usize>>,
    pub input: usize,
    pub output: usize,
}

const MAX_ELEMS: usize = 1 << 28;

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

impl Config {
    /// How runs of this model are labelled: the convention and the time step it ran with.
    pub fn variant(&self) -> String {
        format!("nir-{}-dt{}", self.convention.name(), self.dt)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(format!(
                "dt must be a positive number of seconds, found {}",
                self.dt
            ));
        }
        if self.timesteps == 0 || self.timesteps > 100_000 {
            return Err(format!(
                "timesteps must be between 1 and 100000, found {}",
                self.timesteps
            ));
        }
        self.plan().map(|_| ())
    }

    /// Order the graph, find its back edges, check its cycles and shapes.
    pub fn plan(&self) -> std::result::Result<Plan, String> {
        let mut succ: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (a, b) in &self.edges {
            for end in [a, b] {
                if !self.nodes.contains_key(end) {
                    return Err(format!("edge `{a}` -> `{b}`: no node named `{end}`"));
                }
            }
            if a == b {
                return Err(format!("edge `{a}` -> `{b}` joins a node to itself"));
            }
            succ.entry(a).or_default().insert(b);
        }
        let of_kind = |k: &str| -> Vec<&str> {
            self.nodes
                .iter()
                .filter(|(_, n)| n.kind() == k)
                .map(|(s, _)| s.as_str())
                .collect()
        };
        let (inputs, outputs) = (of_kind("Input"), of_kind("Output"));
        let [input] = inputs[..] else {
            return Err(format!(
                "the graph needs exactly one Input node, found {}: {inputs:?}",
                inputs.len()
            ));
        };
        let [output] = outputs[..] else {
            return Err(format!(
                "the graph needs exactly one Output node, found {}: {outputs:?}",
                outputs.len()
            ));
        };
        // Depth-first from the input; an edge to a node on the stack closes a cycle.
        let mut post: Vec<&str> = vec![];
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut back: BTreeSet<(&str, &str)> = BTreeSet::new();
        let mut stack: Vec<(&str, Vec<&str>)> = vec![];
        let next_of = |n: &str| -> Vec<&str> {
            succ.get(n)
                .map(|s| s.iter().rev().copied().collect())
                .unwrap_or_default()
        };
        seen.insert(input);
        stack.push((input, next_of(input)));
        while let Some((node, rest)) = stack.last_mut() {
            let node = *node;
            match rest.pop() {
                Some(m) => {
                    if let Some(pos) = stack.iter().position(|(s, _)| *s == m) {
                        let cycle: Vec<&str> = stack[pos..].iter().map(|(s, _)| *s).collect();
                        if !cycle.iter().any(|s| self.nodes[*s].is_state()) {
                            return Err(format!(
                                "cycle without a state node: {} -> {m}",
                                cycle.join(" -> ")
                            ));
                        }
                        back.insert((node, m));
                    } else if seen.insert(m) {
                        let n = next_of(m);
                        stack.push((m, n));
                    }
                }
                None => {
                    post.push(node);
                    stack.pop();
                }
            }
        }
        if let Some(lost) = self.nodes.keys().find(|k| !seen.contains(k.as_str())) {
            return Err(format!(
                "node `{lost}` ({}) is not reachable from the input `{input}`",
                self.nodes[lost].kind()
            ));
        }
        post.reverse();
        let order: Vec<String> = post.iter().map(|s| s.to_string()).collect();
        let index: BTreeMap<&str, usize> = post.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let mut preds: Vec<Vec<(usize, bool)>> = vec![vec![]; order.len()];
        for (a, b) in &self.edges {
            let back_edge = back.contains(&(a.as_str(), b.as_str()));
            preds[index[b.as_str()]].push((index[a.as_str()], back_edge));
        }
        for p in &mut preds {
            p.sort();
            p.dedup();
        }
        // Shapes, in order: a node's forward sources are all placed before it.
        let mut shape_in: Vec<Vec<usize>> = vec![vec![]; order.len()];
        let mut shape_out: Vec<Vec<usize>> = vec![vec![]; order.len()];
        for (k, name) in order.iter().enumerate() {
            let node = &self.nodes[name];
            let at = |m: String| format!("node `{name}` ({}): {m}", node.kind());
            let sin = if k == 0 {
                match node {
                    Node::Input { shape } => shape.clone(),
                    _ => unreachable!("the walk starts at the input"),
                }
            } else {
                let (first, _) = preds[k]
                    .iter()
                    .find(|(_, b)| !b)
                    .copied()
                    .expect("reached by a forward edge");
                let s = shape_out[first].clone();
                for &(p, b) in &preds[k] {
                    if !b && numel(&shape_out[p]) != numel(&s) {
                        return Err(format!(
                            "edge `{}` -> `{name}`: shapes do not chain: {:?} from `{}` but {:?} from `{}`",
                            order[p], shape_out[p], order[p], s, order[first]
                        ));
                    }
                }
                s
            };
            if sin.is_empty() || sin.contains(&0) {
                return Err(at(format!(
                    "input shape {sin:?} must be non-empty and positive"
                )));
            }
            let sout = out_shape(node, &sin).map_err(&at)?;
            if numel(&sout) > MAX_ELEMS || numel(&sout) == 0 {
                return Err(at(format!("output shape {sout:?} is empty or too large")));
            }
            shape_in[k] = sin;
            shape_out[k] = sout;
        }
        for (k, p) in preds.iter().enumerate() {
            for &(src, b) in p {
                if b && numel(&shape_out[src]) != numel(&shape_in[k]) {
                    return Err(format!(
                        "edge `{}` -> `{}` (recurrent): shapes do not chain: {:?} into {:?}",
                        order[src], order[k], shape_out[src], shape_in[k]
                    ));
                }
            }
        }
        let output_idx = index[output];
        Ok(Plan {
            order,
            preds,
            shape_in,
            shape_out,
            input: 0,
            output: output_idx,
        })
    }

    /// Every parameter with its shape, keyed `{node}.{parameter}`.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = vec![];
        for (name, node) in &self.nodes {
            let key = |p: &str| format!("{name}.{p}");
            match node {
                Node::Affine { n_in, n_out } => {
                    out.push((key("weight"), vec![*n_out, *n_in]));
                    out.push((key("bias"), vec![*n_out]));
                }
                Node::Linear { n_in, n_out } => out.push((key("weight"), vec![*n_out, *n_in])),
                Node::Conv1d(c) | Node::Conv2d(c) => {
                    let mut s = vec![c.out_channels, c.in_channels / c.groups.max(1)];
                    s.extend(&c.kernel);
                    out.push((key("weight"), s));
                    if c.bias {
                        out.push((key("bias"), vec![c.out_channels]));
                    }
                }
                Node::Scale { n }
                | Node::Threshold { n }
                | Node::IF { n }
                | Node::LI { n }
                | Node::LIF { n }
                | Node::CubaLI { n }
                | Node::CubaLIF { n }
                | Node::I { n }
                | Node::Delay { n } => {
                    for p in node.neuron_params() {
                        out.push((key(p), vec![*n]));
                    }
                }
                _ => {}
            }
        }
        out
    }

    pub fn n_params(&self) -> usize {
        self.parameter_shapes().iter().map(|(_, s)| numel(s)).sum()
    }
}

fn out_shape(node: &Node, s: &[usize]) -> std::result::Result<Vec<usize>, String> {
    let n = numel(s);
    Ok(match node {
        Node::Input { .. } => s.to_vec(),
        Node::Output { shape } => {
            if numel(shape) != n && !shape.is_empty() {
                return Err(format!("declares shape {shape:?} but receives {s:?}"));
            }
            s.to_vec()
        }
        Node::Affine { n_in, n_out } | Node::Linear { n_in, n_out } => {
            if *n_in != n {
                return Err(format!(
                    "weight takes {n_in} inputs but its input has shape {s:?}"
                ));
            }
            vec![*n_out]
        }
        Node::Conv1d(c) | Node::Conv2d(c) => {
            let g = conv_geom(c, s, matches!(node, Node::Conv1d(_)))?;
            if matches!(node, Node::Conv1d(_)) {
                vec![g.c_out, g.w_out()]
            } else {
                vec![g.c_out, g.h_out(), g.w_out()]
            }
        }
        Node::SumPool2d(p) | Node::AvgPool2d(p) => {
            let g = pool_geom(p, s)?;
            vec![g.c, g.h_out(), g.w_out()]
        }
        Node::Flatten { start_dim, end_dim } => {
            let nd = s.len() as i64;
            let fix = |d: i64| if d < 0 { d + nd } else { d };
            let (a, b) = (fix(*start_dim), fix(*end_dim));
            if a < 0 || b >= nd || a > b {
                return Err(format!(
                    "start_dim {start_dim} and end_dim {end_dim} do not fit its input {s:?} (dimensions exclude the batch)"
                ));
            }
            let (a, b) = (a as usize, b as usize);
            let mut out = s[..a].to_vec();
            out.push(numel(&s[a..=b]));
            out.extend(&s[b + 1..]);
            out
        }
        Node::Scale { n: k }
        | Node::Threshold { n: k }
        | Node::IF { n: k }
        | Node::LI { n: k }
        | Node::LIF { n: k }
        | Node::CubaLI { n: k }
        | Node::CubaLIF { n: k }
        | Node::I { n: k }
        | Node::Delay { n: k } => {
            if *k != 1 && *k != n {
                return Err(format!(
                    "parameters hold {k} values but its input has shape {s:?} ({n} values)"
                ));
            }
            s.to_vec()
        }
    })
}

fn conv_geom(c: &ConvNode, s: &[usize], one_d: bool) -> std::result::Result<ConvGeom, String> {
    let dims = if one_d { 1 } else { 2 };
    let (ch, h, w) = match (one_d, s) {
        (true, [ch, l]) => (*ch, 1, *l),
        (false, [ch, h, w]) => (*ch, *h, *w),
        _ => {
            return Err(format!(
                "needs a {} input, found {s:?}",
                if one_d {
                    "[channels, length]"
                } else {
                    "[channels, height, width]"
                }
            ));
        }
    };
    for (what, v) in [
        ("kernel", &c.kernel),
        ("stride", &c.stride),
        ("padding", &c.padding),
        ("dilation", &c.dilation),
    ] {
        if v.len() != dims {
            return Err(format!("{what} {v:?} must have {dims} values"));
        }
    }
    if c.dilation.iter().any(|&d| d != 1) {
        return Err(format!(
            "dilation {:?} is not supported (only 1)",
            c.dilation
        ));
    }
    if ch != c.in_channels {
        return Err(format!(
            "weight takes {} input channels but its input has shape {s:?}",
            c.in_channels
        ));
    }
    let pick = |v: &Vec<usize>| if one_d { (1, v[0]) } else { (v[0], v[1]) };
    let (kh, kw) = pick(&c.kernel);
    let (sh, sw) = pick(&c.stride);
    let (ph, pw) = if one_d {
        (0, c.padding[0])
    } else {
        (c.padding[0], c.padding[1])
    };
    let g = ConvGeom {
        c_in: ch,
        c_out: c.out_channels,
        h,
        w,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        groups: c.groups,
    };
    g.validate()?;
    Ok(g)
}

fn pool_geom(p: &PoolNode, s: &[usize]) -> std::result::Result<PoolGeom, String> {
    let [c, h, w] = s[..] else {
        return Err(format!(
            "needs a [channels, height, width] input, found {s:?}"
        ));
    };
    let g = PoolGeom {
        c,
        h,
        w,
        kh: p.kernel[0],
        kw: p.kernel[1],
        sh: p.stride[0],
        sw: p.stride[1],
        ph: p.padding[0],
        pw: p.padding[1],
    };
    g.validate()?;
    Ok(g)
}

// ----- Reading a .nir file -----

/// Stores one parameter of the node being read: name, shape, values.
type Put<'a> = dyn FnMut(&str, Vec<usize>, &[f64]) + 'a;

/// The largest integer a shape or geometry field may hold.
const MAX_DIM: f64 = (1u64 << 31) as f64;

struct NodeReader<'a> {
    name: &'a str,
    kind: &'a str,
    g: &'a BTreeMap<String, Item>,
    origin: &'a str,
}

impl NodeReader<'_> {
    fn err(&self, m: impl std::fmt::Display) -> Error {
        Error::input(format!(
            "{}: node `{}` ({}): {m}",
            self.origin, self.name, self.kind
        ))
    }

    fn array(&self, key: &str) -> Result<(Vec<usize>, &[f64])> {
        match self.g.get(key) {
            Some(Item::Array { shape, data }) => {
                if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                    return Err(self.err(format!(
                        "parameter `{key}` holds a non-finite value ({}) at flat index {i}",
                        data[i]
                    )));
                }
                Ok((shape.clone(), data))
            }
            Some(_) => Err(self.err(format!("`{key}` is not a numeric array"))),
            None => Err(self.err(format!("missing parameter `{key}`"))),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.g.contains_key(key)
    }

    /// Non-negative integers (shapes, strides, ...).
    fn ints(&self, key: &str) -> Result<Vec<usize>> {
        let (_, d) = self.array(key)?;
        d.iter()
            .map(|&v| {
                if (0.0..MAX_DIM).contains(&v) && v.fract() == 0.0 {
                    Ok(v as usize)
                } else {
                    Err(self.err(format!(
                        "`{key}` holds {v}, expected a non-negative integer"
                    )))
                }
            })
            .collect()
    }

    fn int(&self, key: &str) -> Result<i64> {
        let (_, d) = self.array(key)?;
        match d {
            [v] if v.fract() == 0.0 && v.abs() < MAX_DIM => Ok(*v as i64),
            _ => Err(self.err(format!("`{key}` must be one integer, found {d:?}"))),
        }
    }

    /// A per-axis field: one value for every axis, or one per axis.
    fn axes(&self, key: &str, dims: usize) -> Result<Vec<usize>> {
        let v = self.ints(key)?;
        match v.len() {
            1 => Ok(vec![v[0]; dims]),
            n if n == dims => Ok(v),
            _ => Err(self.err(format!("`{key}` {v:?} must have 1 or {dims} values"))),
        }
    }
}

/// A `.nir` file as a configuration and its parameters (`{node}.{parameter}`, f32).
pub fn read_nir(
    path: &Path,
    name: &str,
    convention: Convention,
    dt: f64,
) -> Result<(Config, TensorStore)> {
    let origin = path.display().to_string();
    let tree = read_tree(path, None)?;
    let bad = |m: &str| Error::input(format!("{origin}: not a NIR graph: {m}"));
    let root = tree.group().ok_or_else(|| bad("the root is not a group"))?;
    let graph = root
        .get("node")
        .and_then(Item::group)
        .ok_or_else(|| bad("no group `node`"))?;
    match graph.get("type") {
        Some(Item::Strings(t)) if t.len() == 1 && t[0] == "NIRGraph" => {}
        _ => return Err(bad("`node/type` is not \"NIRGraph\"")),
    }
    let nodes_g = graph
        .get("nodes")
        .and_then(Item::group)
        .ok_or_else(|| bad("no group `node/nodes`"))?;
    let edges = match graph.get("edges") {
        Some(Item::Strings(s)) if s.len() % 2 == 0 => s
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect::<Vec<_>>(),
        Some(Item::Strings(s)) => {
            return Err(bad(&format!(
                "`node/edges` holds {} names, not pairs",
                s.len()
            )));
        }
        // A graph of one node has no edges; h5py may write an empty float array.
        Some(Item::Array { data, .. }) if data.is_empty() => vec![],
        _ => return Err(bad("`node/edges` is not a list of name pairs")),
    };
    let mut store = TensorStore::new(origin.clone());
    let mut nodes = BTreeMap::new();
    for (nname, item) in nodes_g {
        let g = item
            .group()
            .ok_or_else(|| bad(&format!("`node/nodes/{nname}` is not a group")))?;
        let kind = match g.get("type") {
            Some(Item::Strings(t)) if t.len() == 1 => t[0].clone(),
            _ => return Err(bad(&format!("node `{nname}` has no `type`"))),
        };
        let r = NodeReader {
            name: nname,
            kind: &kind,
            g,
            origin: &origin,
        };
        let mut put = |p: &str, shape: Vec<usize>, data: &[f64]| {
            store.insert(
                format!("{nname}.{p}"),
                shape,
                data.iter().map(|&v| v as f32).collect(),
            );
        };
        let neuron = |r: &NodeReader, params: &[&str], put: &mut Put| -> Result<usize> {
            let mut n = 1usize;
            let mut vals: Vec<(&str, Vec<f64>)> = vec![];
            for p in params {
                // v_reset is optional in NIR (0 when absent); so is r on IF in old files.
                let data: Vec<f64> = if !r.has(p) && *p == "v_reset" {
                    vec![0.0]
                } else {
                    r.array(p)?.1.to_vec()
                };
                if data.is_empty() {
                    return Err(r.err(format!("parameter `{p}` is empty")));
                }
                if data.len() != 1 {
                    if n != 1 && n != data.len() {
                        return Err(r.err(format!(
                            "parameter `{p}` has {} values, others {n}",
                            data.len()
                        )));
                    }
                    n = data.len();
                }
                vals.push((p, data));
            }
            for (p, data) in vals {
                let full = if data.len() == n {
                    data
                } else {
                    vec![data[0]; n]
                };
                put(p, vec![n], &full);
            }
            Ok(n)
        };
        let node = match kind.as_str() {
            "Input" | "Output" => {
                let shape = r.ints("shape")?;
                if kind == "Input" {
                    Node::Input { shape }
                } else {
                    Node::Output { shape }
                }
            }
            "Affine" | "Linear" => {
                let (ws, w) = r.array("weight")?;
                let [n_out, n_in] = ws[..] else {
                    return Err(r.err(format!("weight has shape {ws:?}, expected [out, in]")));
                };
                put("weight", ws.clone(), w);
                if kind == "Affine" {
                    let (bs, b) = r.array("bias")?;
                    if b.len() != n_out {
                        return Err(r.err(format!("bias has shape {bs:?}, expected [{n_out}]")));
                    }
                    put("bias", vec![n_out], b);
                    Node::Affine { n_in, n_out }
                } else {
                    Node::Linear { n_in, n_out }
                }
            }
            "Conv1d" | "Conv2d" => {
                let dims = if kind == "Conv1d" { 1 } else { 2 };
                let (ws, w) = r.array("weight")?;
                if ws.len() != dims + 2 {
                    return Err(r.err(format!(
                        "weight has shape {ws:?}, expected [out, in / groups, kernel{}]",
                        if dims == 2 { "_h, kernel_w" } else { "" }
                    )));
                }
                let groups = r.int("groups")?;
                if groups < 1 {
                    return Err(r.err(format!("groups {groups} must be positive")));
                }
                let groups = groups as usize;
                if let Some(Item::Strings(p)) = g.get("padding") {
                    return Err(r.err(format!("padding {p:?} given by name is not supported")));
                }
                put("weight", ws.clone(), w);
                let (_, b) = r.array("bias")?;
                let bias = if b.len() == ws[0] {
                    put("bias", vec![ws[0]], b);
                    true
                } else if b.len() <= 1 && b.iter().all(|&v| v == 0.0) {
                    false
                } else {
                    return Err(r.err(format!(
                        "bias has {} values, expected {} (or none)",
                        b.len(),
                        ws[0]
                    )));
                };
                let c = ConvNode {
                    in_channels: ws[1] * groups,
                    out_channels: ws[0],
                    kernel: ws[2..].to_vec(),
                    stride: r.axes("stride", dims)?,
                    padding: r.axes("padding", dims)?,
                    dilation: r.axes("dilation", dims)?,
                    groups,
                    bias,
                };
                if dims == 1 {
                    Node::Conv1d(c)
                } else {
                    Node::Conv2d(c)
                }
            }
            "SumPool2d" | "AvgPool2d" => {
                let two = |k: &str| -> Result<[usize; 2]> {
                    let v = r.axes(k, 2)?;
                    Ok([v[0], v[1]])
                };
                let p = PoolNode {
                    kernel: two("kernel_size")?,
                    stride: two("stride")?,
                    padding: two("padding")?,
                };
                if kind == "SumPool2d" {
                    Node::SumPool2d(p)
                } else {
                    Node::AvgPool2d(p)
                }
            }
            "Flatten" => Node::Flatten {
                start_dim: r.int("start_dim")?,
                end_dim: r.int("end_dim")?,
            },
            "Scale" => Node::Scale {
                n: neuron(&r, &["scale"], &mut put)?,
            },
            "Threshold" => Node::Threshold {
                n: neuron(&r, &["threshold"], &mut put)?,
            },
            "IF" => Node::IF {
                n: neuron(&r, &["r", "v_threshold", "v_reset"], &mut put)?,
            },
            "LI" => Node::LI {
                n: neuron(&r, &["tau", "r", "v_leak"], &mut put)?,
            },
            "LIF" => Node::LIF {
                n: neuron(
                    &r,
                    &["tau", "r", "v_leak", "v_threshold", "v_reset"],
                    &mut put,
                )?,
            },
            "CubaLI" => Node::CubaLI {
                n: neuron(&r, &["tau_mem", "tau_syn", "r", "v_leak", "w_in"], &mut put)?,
            },
            "CubaLIF" => Node::CubaLIF {
                n: neuron(
                    &r,
                    &[
                        "tau_mem",
                        "tau_syn",
                        "r",
                        "v_leak",
                        "v_threshold",
                        "v_reset",
                        "w_in",
                    ],
                    &mut put,
                )?,
            },
            "I" | "Integrator" => Node::I {
                n: neuron(&r, &["r"], &mut put)?,
            },
            "Delay" => Node::Delay {
                n: neuron(&r, &["delay"], &mut put)?,
            },
            other => {
                return Err(r.err(format!(
                    "node type `{other}` is not supported (supported: Input, Output, Affine, Linear, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, Threshold, IF, LI, LIF, CubaLI, CubaLIF, I, Delay)"
                )));
            }
        };
        nodes.insert(nname.clone(), node);
    }
    let cfg = Config {
        name: name.to_string(),
        dt,
        convention,
        timesteps: 1,
        encoding: Default::default(),
        nodes,
        edges,
        weights: NirWeights::Nir(
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    cfg.validate()
        .map_err(|e| Error::input(format!("{origin}: {e}")))?;
    Ok((cfg, store))
}

// ----- The model -----

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
    pub statics: super::statics::StaticMetrics,
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
        let mut tally = super::statics::Tally::default();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(nodes: &[(&str, Node)], edges: &[(&str, &str)]) -> Config {
        Config {
            name: "t".into(),
            dt: 1e-4,
            convention: Convention::Snntorch,
            timesteps: 1,
            encoding: Default::default(),
            nodes: nodes
                .iter()
                .map(|(n, k)| (n.to_string(), k.clone()))
                .collect(),
            edges: edges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            weights: NirWeights::File("w.safetensors".into()),
        }
    }

    fn recurrent(with_neuron: bool) -> Config {
        let mid = if with_neuron {
            Node::LIF { n: 2 }
        } else {
            Node::Scale { n: 2 }
        };
        cfg(
            &[
                ("input", Node::Input { shape: vec![3] }),
                ("fc", Node::Affine { n_in: 3, n_out: 2 }),
                ("lif", mid),
                ("rec", Node::Linear { n_in: 2, n_out: 2 }),
                ("output", Node::Output { shape: vec![2] }),
            ],
            &[
                ("rec", "lif"),
                ("lif", "output"),
                ("input", "fc"),
                ("fc", "lif"),
                ("lif", "rec"),
            ],
        )
    }

    #[test]
    fn unordered_edges_are_sorted_and_the_recurrent_weight_edge_is_the_back_edge() {
        let p = recurrent(true).plan().unwrap();
        let at = |n: &str| p.order.iter().position(|o| o == n).unwrap();
        assert!(at("input") < at("fc") && at("fc") < at("lif") && at("lif") < at("rec"));
        assert!(p.preds[at("lif")].contains(&(at("rec"), true)));
        assert!(p.preds[at("lif")].contains(&(at("fc"), false)));
    }

    #[test]
    fn a_cycle_without_a_state_node_is_refused_naming_it() {
        let e = recurrent(false).plan().unwrap_err();
        assert!(
            e.contains("cycle without a state node") && e.contains("rec"),
            "{e}"
        );
    }

    #[test]
    fn a_dangling_edge_names_the_missing_node() {
        let mut c = recurrent(true);
        c.edges.push(("lif".into(), "nowhere".into()));
        let e = c.plan().unwrap_err();
        assert!(e.contains("`nowhere`"), "{e}");
    }

    #[test]
    fn shapes_that_do_not_chain_name_the_node() {
        let mut c = recurrent(true);
        c.nodes
            .insert("fc".into(), Node::Affine { n_in: 4, n_out: 2 });
        let e = c.plan().unwrap_err();
        assert!(e.contains("node `fc`"), "{e}");
    }

    #[test]
    fn flatten_merges_the_dimensions_it_names() {
        let f = Node::Flatten {
            start_dim: 0,
            end_dim: -1,
        };
        assert_eq!(out_shape(&f, &[2, 3, 4]).unwrap(), vec![24]);
        let f = Node::Flatten {
            start_dim: 1,
            end_dim: 2,
        };
        assert_eq!(out_shape(&f, &[2, 3, 4]).unwrap(), vec![2, 12]);
    }

    #[test]
    fn recurrent_input_arrives_one_step_late() {
        // fc: x -> x (identity 1x1), lif with beta 0 (tau = dt) threshold 0.5, rec weight 1.
        let c = cfg(
            &[
                ("input", Node::Input { shape: vec![1] }),
                ("fc", Node::Linear { n_in: 1, n_out: 1 }),
                ("lif", Node::LIF { n: 1 }),
                ("rec", Node::Linear { n_in: 1, n_out: 1 }),
                ("output", Node::Output { shape: vec![1] }),
            ],
            &[
                ("input", "fc"),
                ("fc", "lif"),
                ("lif", "rec"),
                ("rec", "lif"),
                ("lif", "output"),
            ],
        );
        let mut s = TensorStore::new("test");
        s.insert("fc.weight", vec![1, 1], vec![1.0]);
        s.insert("rec.weight", vec![1, 1], vec![1.0]);
        for (p, v) in [
            ("tau", 1e-4),
            ("r", 1.0),
            ("v_leak", 0.0),
            ("v_threshold", 0.5),
            ("v_reset", 0.0),
        ] {
            s.insert(format!("lif.{p}"), vec![1], vec![v]);
        }
        let m = Nir::new(c, &s).unwrap();
        let arith = Arith::Exact;
        let mut l = m.new_ledger(&arith);
        let mut st = m.new_state();
        // One input pulse; the spike then feeds itself back every step.
        let mut outs = vec![];
        m.start_sample(&mut st);
        for x in [1.0, 0.0, 0.0] {
            m.time_step(&[x], &mut st, &arith, &mut l);
            outs.push(st.output(&m)[0]);
        }
        assert_eq!(outs, vec![1.0, 1.0, 1.0]);
        // Without the pulse nothing flows back at the first step.
        m.start_sample(&mut st);
        m.time_step(&[0.0], &mut st, &arith, &mut l);
        assert_eq!(st.output(&m)[0], 0.0);
    }

    #[test]
    fn delay_node_delays_each_element_by_its_delay_over_dt() {
        let c = cfg(
            &[
                ("input", Node::Input { shape: vec![2] }),
                ("d", Node::Delay { n: 2 }),
                ("output", Node::Output { shape: vec![2] }),
            ],
            &[("input", "d"), ("d", "output")],
        );
        let mut s = TensorStore::new("test");
        s.insert("d.delay", vec![2], vec![0.0, 2e-4]);
        let m = Nir::new(c, &s).unwrap();
        let arith = Arith::Exact;
        let mut l = m.new_ledger(&arith);
        let mut st = m.new_state();
        m.start_sample(&mut st);
        let mut outs = vec![];
        for t in 1..=4 {
            m.time_step(&[t as f32, 10.0 * t as f32], &mut st, &arith, &mut l);
            outs.push(st.output(&m).to_vec());
        }
        assert_eq!(
            outs,
            vec![
                vec![1.0, 0.0],
                vec![2.0, 0.0],
                vec![3.0, 10.0],
                vec![4.0, 20.0]
            ]
        );
    }
}
