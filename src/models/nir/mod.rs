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

use serde::{Deserialize, Serialize};

use crate::engine::conv::ConvGeom;
use crate::engine::pool::PoolGeom;

mod model;
mod read;

pub use model::{Nir, State};
pub use read::read_nir;

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

    /// The parameters of this node, read as `{node}.{parameter}`.
    fn neuron_params(&self) -> &'static [&'static str] {
        params_of(self.kind())
    }
}

/// The parameters of a neuron or element-wise node, by NIR type name (one value per neuron, or
/// one for all); other node types have their own fields.
fn params_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "IF" => &["r", "v_threshold", "v_reset"],
        "LI" => &["tau", "r", "v_leak"],
        "LIF" => &["tau", "r", "v_leak", "v_threshold", "v_reset"],
        "CubaLI" => &["tau_mem", "tau_syn", "r", "v_leak", "w_in"],
        "CubaLIF" => &[
            "tau_mem",
            "tau_syn",
            "r",
            "v_leak",
            "v_threshold",
            "v_reset",
            "w_in",
        ],
        "I" => &["r"],
        "Scale" => &["scale"],
        "Threshold" => &["threshold"],
        "Delay" => &["delay"],
        _ => &[],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Arith;
    use crate::weights::TensorStore;

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
