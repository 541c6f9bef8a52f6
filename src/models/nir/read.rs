//! Reading a `.nir` file: its HDF5 tree into a graph `Config` and a store of parameters.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::weights::TensorStore;
use crate::weights::hdf5::{Item, read_tree};

use super::{Config, ConvNode, Convention, NirWeights, Node, PoolNode, params_of};

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
                n: neuron(&r, params_of("Scale"), &mut put)?,
            },
            "Threshold" => Node::Threshold {
                n: neuron(&r, params_of("Threshold"), &mut put)?,
            },
            "IF" => Node::IF {
                n: neuron(&r, params_of("IF"), &mut put)?,
            },
            "LI" => Node::LI {
                n: neuron(&r, params_of("LI"), &mut put)?,
            },
            "LIF" => Node::LIF {
                n: neuron(&r, params_of("LIF"), &mut put)?,
            },
            "CubaLI" => Node::CubaLI {
                n: neuron(&r, params_of("CubaLI"), &mut put)?,
            },
            "CubaLIF" => Node::CubaLIF {
                n: neuron(&r, params_of("CubaLIF"), &mut put)?,
            },
            "I" | "Integrator" => Node::I {
                n: neuron(&r, params_of("I"), &mut put)?,
            },
            "Delay" => Node::Delay {
                n: neuron(&r, params_of("Delay"), &mut put)?,
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
