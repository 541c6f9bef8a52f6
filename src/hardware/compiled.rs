//! Fast re-pricing for sweeps: a ledger compiled against the structure of a cost model into a
//! flat list of (count, index into a unit-price vector), and every unit price into a small
//! expression over the cost model's numbers (its "leaves": entries and memory read/write
//! energies). Pricing a sweep point is then: evaluate the expressions for the leaf values of
//! that point, then one dot product.
//!
//! The expressions repeat the floating-point operations of `price::op_price` and
//! `price::memory_price` in the same order, and the dot product sums in the order of
//! `price::price`, so a compiled price is bit-for-bit the energy `price` gives for the changed
//! cost model. `compile` checks this on the spot (at the cost model's values and at perturbed
//! values) and falls back to calling `price` per point if the pricing rules ever diverge.

use super::paths::{Leaf, get_leaf, set_leaf};
use super::price::{place, price, unit_price};
use super::{CostModel, Energy};
use crate::ledger::{ActionKey, Fmt, INT8, INT32, Ledger, Op, OpKind};

/// Kinds in the order of `PricedLedger::by_kind`.
pub const KINDS: [&str; 5] = ["compute", "nonlinear", "neuron", "metric", "memory"];

fn kind_index(k: OpKind) -> u8 {
    match k {
        OpKind::Compute => 0,
        OpKind::Nonlinear => 1,
        OpKind::Neuron => 2,
        OpKind::Metric => 3,
        OpKind::Memory => 4,
    }
}

/// The leaves of a cost model, in a fixed order: entries, then per memory level read and write.
pub fn leaves(cm: &CostModel) -> Vec<Leaf> {
    let mut v: Vec<Leaf> = (0..cm.entries.len()).map(Leaf::Entry).collect();
    for i in 0..cm.memories.len() {
        v.push(Leaf::MemoryRead(i));
        v.push(Leaf::MemoryWrite(i));
    }
    v
}

pub fn leaf_index(cm: &CostModel, leaf: Leaf) -> usize {
    let e = cm.entries.len();
    match leaf {
        Leaf::Entry(i) => i,
        Leaf::MemoryRead(i) => e + 2 * i,
        Leaf::MemoryWrite(i) => e + 2 * i + 1,
    }
}

/// The leaf energies of a cost model (distributions and ranges as they are).
pub fn leaf_energies(cm: &CostModel) -> Vec<Energy> {
    leaves(cm).into_iter().map(|l| get_leaf(cm, l)).collect()
}

/// The nominal leaf values of a cost model: the price vector of its own point.
pub fn theta(cm: &CostModel) -> Vec<f64> {
    leaf_energies(cm).into_iter().map(Energy::nominal).collect()
}

#[derive(Clone, Copy, Debug)]
enum Node {
    Leaf(u32),
    Scale(u32, f64),
    Plus(u32, u32),
    /// `(a + t (b - a)).max(0)`: the interpolated integer add.
    Lerp(u32, u32, f64),
}

/// The energy of one point: total and by kind (in `KINDS` order).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PointEnergy {
    pub total: f64,
    pub by_kind: [f64; 5],
}

#[derive(Clone, Debug)]
struct Fast {
    nodes: Vec<Node>,
    /// Per line: count, node of its unit price, kind.
    lines: Vec<(f64, u32, u8)>,
    /// End (exclusive) of each layer's lines.
    layer_ends: Vec<u32>,
}

/// A ledger ready to be priced at many points of one cost model's structure.
#[derive(Clone, Debug)]
pub struct Compiled {
    fast: Option<Fast>,
    /// For the fallback: the ledger and the cost model whose leaves are replaced per point.
    ledger: Ledger,
    cm: CostModel,
}

struct Builder<'a> {
    cm: &'a CostModel,
    ledger: &'a Ledger,
    nodes: Vec<Node>,
    /// One expression per distinct action, shared by the layers that count it.
    /// Keyed by the action and, for memory, the level it is placed in (ledgers may differ).
    cache: std::collections::HashMap<(ActionKey, Option<usize>), Option<u32>>,
}

impl Builder<'_> {
    fn push(&mut self, n: Node) -> u32 {
        self.nodes.push(n);
        (self.nodes.len() - 1) as u32
    }

    fn leaf(&mut self, l: Leaf) -> u32 {
        let i = leaf_index(self.cm, l) as u32;
        self.push(Node::Leaf(i))
    }

    fn direct(&mut self, op: Op, fmt: Fmt) -> Option<u32> {
        let i = self.cm.entry_index(op, fmt)?;
        Some(self.leaf(Leaf::Entry(i)))
    }

    fn op(&mut self, op: Op, fmt: Fmt, depth: u32) -> Option<u32> {
        if depth > 8 {
            return None;
        }
        if let Some(n) = self.direct(op, fmt) {
            return Some(n);
        }
        let cm = self.cm;
        if let Some(c) = cm.compound(op, fmt) {
            let mut total: Option<u32> = None;
            for (part, k) in &c.of {
                let p = self.op(*part, fmt, depth + 1)?;
                let p = self.push(Node::Scale(p, *k));
                total = Some(match total {
                    None => p,
                    Some(t) => self.push(Node::Plus(t, p)),
                });
            }
            return total;
        }
        match op {
            Op::Mac => {
                let mul = self.op(Op::Mul, fmt, depth + 1)?;
                let add = self.op(Op::Add, fmt, depth + 1)?;
                Some(self.push(Node::Plus(mul, add)))
            }
            Op::Ac => self.op(Op::Add, fmt, depth + 1),
            Op::Lmul => match fmt {
                Fmt::Float { e, m } => self.int_add(e as u32 + m as u32),
                _ => None,
            },
            _ => None,
        }
    }

    fn int_add(&mut self, bits: u32) -> Option<u32> {
        if bits == 0 || bits > 64 {
            return None;
        }
        if let Some(n) = self.direct(Op::Add, Fmt::Int { bits: bits as u8 }) {
            return Some(n);
        }
        let a8 = self.direct(Op::Add, INT8)?;
        let a32 = self.direct(Op::Add, INT32)?;
        let t = (bits as f64 - 8.0) / 24.0;
        Some(self.push(Node::Lerp(a8, a32, t)))
    }

    fn memory(&mut self, key: &ActionKey) -> Option<u32> {
        let class = key.class?;
        let level = place(self.cm, self.ledger, class)?;
        let i = self
            .cm
            .memories
            .iter()
            .position(|m| std::ptr::eq(m, level))?;
        let leaf = match key.op {
            Op::Write if level.write.is_some() => Leaf::MemoryWrite(i),
            _ => Leaf::MemoryRead(i),
        };
        let n = self.leaf(leaf);
        let per_byte = 1.0 / level.access_bytes as f64;
        Some(self.push(Node::Scale(n, per_byte)))
    }

    fn key(&mut self, key: &ActionKey) -> Option<u32> {
        let level = match (key.op.kind(), key.class) {
            (OpKind::Memory, Some(class)) => place(self.cm, self.ledger, class)
                .and_then(|l| self.cm.memories.iter().position(|m| std::ptr::eq(m, l))),
            _ => None,
        };
        if let Some(n) = self.cache.get(&(*key, level)) {
            return *n;
        }
        let n = match key.op.kind() {
            OpKind::Memory => self.memory(key),
            _ => self.op(key.op, key.fmt, 0),
        };
        self.cache.insert((*key, level), n);
        n
    }
}

fn eval_nodes(nodes: &[Node], theta: &[f64], vals: &mut Vec<f64>) {
    vals.clear();
    for n in nodes {
        let v = match *n {
            Node::Leaf(i) => theta[i as usize],
            Node::Scale(a, k) => vals[a as usize] * k,
            Node::Plus(a, b) => vals[a as usize] + vals[b as usize],
            Node::Lerp(a, b, t) => {
                let (a, b) = (vals[a as usize], vals[b as usize]);
                (a + t * (b - a)).max(0.0)
            }
        };
        vals.push(v);
    }
}

impl Fast {
    fn price(&self, theta: &[f64], vals: &mut Vec<f64>) -> PointEnergy {
        eval_nodes(&self.nodes, theta, vals);
        self.dot(vals)
    }

    /// The energy from evaluated node values, summed in the order of `price::price`.
    #[inline]
    fn dot(&self, vals: &[f64]) -> PointEnergy {
        let mut out = PointEnergy::default();
        let mut start = 0usize;
        for &end in &self.layer_ends {
            let mut layer = 0.0;
            for &(count, node, kind) in &self.lines[start..end as usize] {
                let e = count * vals[node as usize];
                layer += e;
                out.by_kind[kind as usize] += e;
            }
            out.total += layer;
            start = end as usize;
        }
        out
    }
}

/// The cost model with its leaves replaced by the values of `theta`.
pub fn with_theta(cm: &CostModel, theta: &[f64]) -> CostModel {
    let mut c = cm.clone();
    for (i, l) in leaves(cm).into_iter().enumerate() {
        if let Leaf::MemoryWrite(m) = l
            && c.memories[m].write.is_none()
        {
            // An absent write follows the read energy; keep it absent.
            continue;
        }
        set_leaf(&mut c, l, Energy::Pj(theta[i]));
    }
    c
}

fn slow_price(ledger: &Ledger, cm: &CostModel, theta: &[f64]) -> PointEnergy {
    let p = price(ledger, &with_theta(cm, theta));
    let mut out = PointEnergy {
        total: p.energy_pj,
        ..Default::default()
    };
    for (k, v) in &p.by_kind {
        if let Some(i) = KINDS.iter().position(|n| n == k) {
            out.by_kind[i] = *v;
        }
    }
    out
}

impl Compiled {
    /// Compile `ledger` against the structure of `cm` (which entries exist, compounds, memory
    /// placement). Points may then change any leaf value, not the structure.
    pub fn new(ledger: &Ledger, cm: &CostModel) -> Compiled {
        let mut b = Builder {
            cm,
            ledger,
            nodes: Vec::new(),
            cache: Default::default(),
        };
        let mut lines = Vec::new();
        let mut layer_ends = Vec::new();
        for (_, counts) in ledger.layers() {
            for (key, &count) in counts.iter() {
                if let Some(n) = b.key(key) {
                    lines.push((count as f64, n, kind_index(key.op.kind())));
                }
            }
            layer_ends.push(lines.len() as u32);
        }
        let fast = Fast {
            nodes: b.nodes,
            lines,
            layer_ends,
        };
        let mut c = Compiled {
            fast: Some(fast),
            ledger: ledger.clone(),
            cm: cm.clone(),
        };
        if !c.agrees_with_price() {
            c.fast = None;
        }
        c
    }

    /// True when the fast path is in use (false: pricing rules this module does not mirror).
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// Price one point. `vals` is scratch space, reused between calls.
    pub fn price(&self, theta: &[f64], vals: &mut Vec<f64>) -> PointEnergy {
        match &self.fast {
            Some(f) => f.price(theta, vals),
            None => slow_price(&self.ledger, &self.cm, theta),
        }
    }

    /// Check the fast path against `price` at the cost model's own values and at perturbed ones.
    fn agrees_with_price(&self) -> bool {
        let Some(fast) = &self.fast else { return false };
        let base = theta(&self.cm);
        let perturbed: Vec<f64> = base
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.1 + 0.137 * i as f64) + 0.01)
            .collect();
        let mut vals = Vec::new();
        for th in [&base, &perturbed] {
            let cm = with_theta(&self.cm, th);
            // Unit prices, key by key, must be identical (and priced or not alike).
            for (_, counts) in self.ledger.layers() {
                for (key, _) in counts.iter() {
                    let slow = unit_price(&cm, &self.ledger, key).map(|p| p.nominal);
                    let mut b = Builder {
                        cm: &self.cm,
                        ledger: &self.ledger,
                        nodes: Vec::new(),
                        cache: Default::default(),
                    };
                    let quick = b.key(key).map(|n| {
                        eval_nodes(&b.nodes, th, &mut vals);
                        vals[n as usize]
                    });
                    if slow.map(f64::to_bits) != quick.map(f64::to_bits) {
                        return false;
                    }
                }
            }
            let p = price(&self.ledger, &cm);
            let q = fast.price(th, &mut vals);
            if p.energy_pj.to_bits() != q.total.to_bits() {
                return false;
            }
        }
        true
    }
}

/// Several ledgers (the runs of one model point) priced together: their unit-price expressions
/// share one arena, evaluated once per point, then one dot product per ledger.
#[derive(Clone, Debug)]
pub struct CompiledSet {
    nodes: Vec<Node>,
    runs: Vec<Fast>,
    /// Used when some ledger's pricing is not mirrored by the fast path.
    fallback: Option<Vec<Compiled>>,
}

impl CompiledSet {
    pub fn new(ledgers: &[&Ledger], cm: &CostModel) -> CompiledSet {
        let singles: Vec<Compiled> = ledgers.iter().map(|l| Compiled::new(l, cm)).collect();
        if !singles.iter().all(Compiled::is_fast) {
            return CompiledSet {
                nodes: vec![],
                runs: vec![],
                fallback: Some(singles),
            };
        }
        let Some(first) = ledgers.first() else {
            return CompiledSet {
                nodes: vec![],
                runs: vec![],
                fallback: None,
            };
        };
        let mut b = Builder {
            cm,
            ledger: first,
            nodes: Vec::new(),
            cache: Default::default(),
        };
        let mut runs = Vec::new();
        for ledger in ledgers {
            b.ledger = ledger;
            let mut lines = Vec::new();
            let mut layer_ends = Vec::new();
            for (_, counts) in ledger.layers() {
                for (key, &count) in counts.iter() {
                    if let Some(n) = b.key(key) {
                        lines.push((count as f64, n, kind_index(key.op.kind())));
                    }
                }
                layer_ends.push(lines.len() as u32);
            }
            runs.push(Fast {
                nodes: vec![],
                lines,
                layer_ends,
            });
        }
        CompiledSet {
            nodes: b.nodes,
            runs,
            fallback: None,
        }
    }

    pub fn is_fast(&self) -> bool {
        self.fallback.is_none()
    }

    pub fn len(&self) -> usize {
        self.fallback
            .as_ref()
            .map(|f| f.len())
            .unwrap_or(self.runs.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Price every ledger at one point into `out` (cleared first).
    pub fn price(&self, theta: &[f64], vals: &mut Vec<f64>, out: &mut Vec<PointEnergy>) {
        out.clear();
        if let Some(f) = &self.fallback {
            out.extend(f.iter().map(|c| c.price(theta, vals)));
            return;
        }
        eval_nodes(&self.nodes, theta, vals);
        for r in &self.runs {
            out.push(r.dot(vals));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Hardware;
    use crate::hardware::paths::{resolve, set_pj};
    use crate::ledger::{BF16, FP32, TensorClass};

    fn ledger() -> Ledger {
        let mut l = Ledger::new();
        let a = l.layer("a");
        l.at(a).add(Op::Mac, FP32, 1000);
        l.at(a).add(Op::Ac, FP32, 333);
        l.at(a).add(Op::NeuronUpdate, FP32, 77);
        l.at(a).add(Op::Lmul, BF16, 5);
        l.at(a).add(Op::Exp, FP32, 3);
        l.at(a).mem(Op::Read, FP32, TensorClass::Weight, 4096);
        l.at(a).mem(Op::Write, FP32, TensorClass::State, 256);
        let b = l.layer("b");
        l.at(b).add(Op::Cmp, FP32, 12);
        l.at(b).add(Op::Spike, FP32, 12);
        l.footprint.insert(TensorClass::Weight, 20_000);
        l.footprint.insert(TensorClass::State, 100);
        l
    }

    #[test]
    fn compiled_price_is_bit_identical_to_price_at_changed_values() {
        for hw in ["horowitz45", "jouppi7", "paper45"] {
            let cm = Hardware::load(hw).unwrap().model;
            let l = ledger();
            let c = Compiled::new(&l, &cm);
            assert!(c.is_fast(), "{hw}");
            let mut th = theta(&cm);
            let mut vals = Vec::new();
            assert_eq!(c.price(&th, &mut vals).total, price(&l, &cm).energy_pj);
            if let Ok(leaf) = resolve(&cm, "add.fp32") {
                th[leaf_index(&cm, leaf)] = 0.3;
                let mut cm2 = cm.clone();
                set_pj(&mut cm2, "add.fp32", 0.3).unwrap();
                let p = price(&l, &cm2);
                let q = c.price(&th, &mut vals);
                assert_eq!(q.total, p.energy_pj, "{hw}");
                assert_eq!(q.by_kind[0], p.by_kind[0].1);
                // Priced together with another ledger (different placement), the same numbers.
                let mut l2 = l.clone();
                l2.footprint.insert(TensorClass::Weight, 1 << 30);
                let set = CompiledSet::new(&[&l, &l2], &cm);
                assert!(set.is_fast());
                let mut out = Vec::new();
                set.price(&th, &mut vals, &mut out);
                assert_eq!(out[0], q);
                assert_eq!(out[1].total, price(&l2, &cm2).energy_pj);
            }
        }
    }
}
