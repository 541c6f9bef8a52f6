//! Fast re-pricing for sweeps: a ledger compiled against the structure of a cost model into a
//! flat list of (count, index into a unit-price vector), and every unit price into a small
//! expression over the cost model's numbers (its "leaves": entries and memory read/write
//! energies). Pricing a sweep point is then: evaluate the expressions for the leaf values of
//! that point, then one dot product.
//!
//! Both paths price an action by the same `price::Rule`; the expressions repeat the
//! floating-point operations of `price::eval` in the same order, and the dot product sums in the order of
//! `price::price`, so a compiled price is bit-for-bit the energy `price` gives for the changed
//! cost model. `compile` checks this on the spot (at the cost model's values and at perturbed
//! values) and falls back to calling `price` per point if the pricing rules ever diverge.

use super::paths::{Leaf, get_leaf, set_leaf};
use super::price::{Rule, lerp, price, rule, unit_price};
use super::{CostModel, Energy};
use crate::ledger::{ActionKey, Ledger, OpKind};

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
    v.extend((0..cm.memories.len()).map(Leaf::MemoryCapacity));
    v.extend((0..cm.memories.len()).map(Leaf::MemoryAccessBytes));
    v.extend((0..cm.memories.len()).map(Leaf::MemoryBanks));
    v
}

pub fn leaf_index(cm: &CostModel, leaf: Leaf) -> usize {
    let e = cm.entries.len();
    match leaf {
        Leaf::Entry(i) => i,
        Leaf::MemoryRead(i) => e + 2 * i,
        Leaf::MemoryWrite(i) => e + 2 * i + 1,
        Leaf::MemoryCapacity(i) => e + 2 * cm.memories.len() + i,
        Leaf::MemoryAccessBytes(i) => e + 3 * cm.memories.len() + i,
        Leaf::MemoryBanks(i) => e + 4 * cm.memories.len() + i,
    }
}

/// The leaf indices of the memory sizes (capacities, word widths, banks) and their values: a
/// point that changes one changes the structure (placements, hits, mappings, accesses per byte)
/// and is priced in full.
fn capacity_leaves(cm: &CostModel) -> Vec<(usize, u64)> {
    let base = theta(cm);
    leaves(cm)
        .into_iter()
        .filter(|l| l.is_shape())
        .map(|l| {
            let k = leaf_index(cm, l);
            (k, base[k].to_bits())
        })
        .collect()
}

fn capacities_unchanged(caps: &[(usize, u64)], theta: &[f64]) -> bool {
    caps.iter().all(|&(i, v)| theta[i].to_bits() == v)
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
    /// A per-size memory energy: `sized` while the leaf holds its own nominal value `base`,
    /// else the leaf's value (a point that sets it replaces the whole energy).
    Sized(u32, f64, f64),
    /// A line's whole energy as the memory hierarchy priced it at the cost model's own memory
    /// energies (valid only while a point leaves every memory leaf at its value).
    Const(f64),
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
    /// When some lines are priced by the memory hierarchy: the leaf indices of the memory
    /// energies and their values; a point that changes one is priced by `price`.
    memory_leaves: Option<Vec<(usize, u64)>>,
    capacities: Vec<(usize, u64)>,
    /// Non-metric actions with no price, in ledger order (as `price` lists them).
    unpriced: Vec<String>,
    /// For the fallback: the ledger and the cost model whose leaves are replaced per point.
    ledger: Ledger,
    cm: CostModel,
}

/// An action and, for memory, the level it is placed in and the size its energy is taken at.
type CacheKey = (ActionKey, Option<(usize, u64)>);

struct Builder<'a> {
    cm: &'a CostModel,
    ledger: &'a Ledger,
    nodes: Vec<Node>,
    /// One expression per distinct action, shared by the layers that count it. Keyed by the
    /// action and, for memory, the level it is placed in and its size (ledgers may differ).
    cache: std::collections::HashMap<CacheKey, Option<u32>>,
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

    /// The expression of a rule, mirroring `price::eval` operation by operation.
    fn rule(&mut self, r: &Rule) -> u32 {
        match r {
            Rule::Entry(i) => self.leaf(Leaf::Entry(*i)),
            Rule::Compound(parts) => {
                let mut total: Option<u32> = None;
                for (part, k) in parts {
                    let p = self.rule(part);
                    let p = self.push(Node::Scale(p, *k));
                    total = Some(match total {
                        None => p,
                        Some(t) => self.push(Node::Plus(t, p)),
                    });
                }
                total.expect("a compound rule has parts")
            }
            Rule::Sum(a, b) => {
                let (a, b) = (self.rule(a), self.rule(b));
                self.push(Node::Plus(a, b))
            }
            Rule::IntAdd { bits, a8, a32 } => {
                let a8 = self.leaf(Leaf::Entry(*a8));
                let a32 = self.leaf(Leaf::Entry(*a32));
                self.push(Node::Lerp(a8, a32, Rule::lerp_t(*bits)))
            }
            &Rule::Memory {
                level,
                write,
                size_bytes,
            } => {
                let leaf = if write {
                    Leaf::MemoryWrite(level)
                } else {
                    Leaf::MemoryRead(level)
                };
                let m = &self.cm.memories[level];
                let e = if write { m.write } else { Some(m.read) };
                let n = match e {
                    // A per-size energy is a function of the size, not one number: priced at
                    // this size while the point leaves it unchanged (see `with_theta`).
                    Some(e @ Energy::PerSize(..)) => {
                        let i = leaf_index(self.cm, leaf) as u32;
                        let sized = e.at_bits(size_bytes as f64 * 8.0).nominal();
                        self.push(Node::Sized(i, e.nominal(), sized))
                    }
                    _ => self.leaf(leaf),
                };
                self.push(Node::Scale(n, 1.0 / m.access_bytes as f64))
            }
        }
    }

    /// The expression of `key` in a layer placed by `fp` (`Ledger::footprint_at`).
    fn key(&mut self, fp: &super::price::Footprint, key: &ActionKey) -> Option<u32> {
        let r = rule(self.cm, fp, key);
        // A memory rule depends on the ledger (placement, footprint); the others on the key only.
        let at = match &r {
            Some(Rule::Memory {
                level, size_bytes, ..
            }) => Some((*level, *size_bytes)),
            _ => None,
        };
        if let Some(n) = self.cache.get(&(*key, at)) {
            return *n;
        }
        let n = r.map(|r| self.rule(&r));
        self.cache.insert((*key, at), n);
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
            Node::Lerp(a, b, t) => lerp(vals[a as usize], vals[b as usize], t),
            Node::Sized(i, base, sized) => {
                let v = theta[i as usize];
                if v.to_bits() == base.to_bits() {
                    sized
                } else {
                    v
                }
            }
            Node::Const(v) => v,
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
            // An absent write stays absent: its writes stay unpriced at every point.
            continue;
        }
        if l.is_shape() {
            if get_leaf(cm, l).nominal().to_bits() != theta[i].to_bits() {
                set_leaf(&mut c, l, Energy::Pj(theta[i]));
            }
            continue;
        }
        // A per-size energy the point leaves at its nominal value keeps its size dependence.
        if matches!(get_leaf(cm, l), Energy::PerSize(..))
            && get_leaf(cm, l).nominal().to_bits() == theta[i].to_bits()
        {
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
        let mut unpriced: Vec<String> = Vec::new();
        // Lines the memory hierarchy prices (traced weight reads, mapped passes) become
        // constants, valid while the memory energies keep their values.
        let priced = price(ledger, cm);
        let mut any_mapped = false;
        for (id, ((_, counts), player)) in ledger.layers().zip(&priced.layers).enumerate() {
            let fp = ledger.footprint_at(id);
            let mut priced_lines = player.lines.iter();
            for (key, &count) in counts.iter() {
                let line = b
                    .key(&fp, key)
                    .and_then(|n| priced_lines.next().map(|l| (n, l)));
                match line {
                    Some((_, l)) if l.mapped => {
                        any_mapped = true;
                        let c = b.push(Node::Const(l.energy_pj));
                        lines.push((1.0, c, kind_index(key.op.kind())));
                    }
                    Some((n, _)) => lines.push((count as f64, n, kind_index(key.op.kind()))),
                    None if key.op.kind() == OpKind::Metric => {}
                    None => {
                        let action = key.to_string();
                        if !unpriced.contains(&action) {
                            unpriced.push(action);
                        }
                    }
                }
            }
            layer_ends.push(lines.len() as u32);
        }
        let fast = Fast {
            nodes: b.nodes,
            lines,
            layer_ends,
        };
        let memory_leaves = any_mapped.then(|| {
            let base = theta(cm);
            leaves(cm)
                .into_iter()
                .enumerate()
                .filter(|(_, l)| matches!(l, Leaf::MemoryRead(_) | Leaf::MemoryWrite(_)))
                .map(|(i, _)| (i, base[i].to_bits()))
                .collect()
        });
        let mut c = Compiled {
            fast: Some(fast),
            memory_leaves,
            capacities: capacity_leaves(cm),
            unpriced,
            ledger: ledger.clone(),
            cm: cm.clone(),
        };
        if !c.agrees_with_price() {
            c.fast = None;
        }
        c
    }

    /// True when `theta` keeps every memory energy the hierarchy's constants were priced at.
    fn memory_unchanged(&self, theta: &[f64]) -> bool {
        self.memory_leaves
            .as_ref()
            .is_none_or(|m| m.iter().all(|&(i, v)| theta[i].to_bits() == v))
    }

    /// True when some lines are priced by the memory hierarchy (a point that changes a memory
    /// energy is then priced by `price`).
    pub fn has_mapped_lines(&self) -> bool {
        self.memory_leaves.is_some()
    }

    /// True when the fast path is in use (false: pricing rules this module does not mirror).
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The actions this compilation found no price for.
    pub fn unpriced(&self) -> &[String] {
        &self.unpriced
    }

    /// Price one point. `vals` is scratch space, reused between calls.
    pub fn price(&self, theta: &[f64], vals: &mut Vec<f64>) -> PointEnergy {
        match &self.fast {
            Some(f)
                if self.memory_unchanged(theta)
                    && capacities_unchanged(&self.capacities, theta) =>
            {
                f.price(theta, vals)
            }
            _ => slow_price(&self.ledger, &self.cm, theta),
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
        // Capacities never move on the fast path; with hierarchy-priced lines, memory energies
        // do not either.
        let mut perturbed = perturbed;
        for &(i, _) in self.memory_leaves.iter().flatten().chain(&self.capacities) {
            perturbed[i] = base[i];
        }
        let mut vals = Vec::new();
        for th in [&base, &perturbed] {
            let cm = with_theta(&self.cm, th);
            // Unit prices, key by key, must be identical (and priced or not alike).
            for (id, (_, counts)) in self.ledger.layers().enumerate() {
                let fp = self.ledger.footprint_at(id);
                for (key, _) in counts.iter() {
                    let slow = unit_price(&cm, &fp, key).map(|p| p.nominal);
                    let mut b = Builder {
                        cm: &self.cm,
                        ledger: &self.ledger,
                        nodes: Vec::new(),
                        cache: Default::default(),
                    };
                    let quick = b.key(&fp, key).map(|n| {
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
    /// One compilation per ledger, for points that change a memory capacity (priced in full).
    singles: Vec<Compiled>,
    capacities: Vec<(usize, u64)>,
}

impl CompiledSet {
    pub fn new(ledgers: &[&Ledger], cm: &CostModel) -> CompiledSet {
        let singles: Vec<Compiled> = ledgers.iter().map(|l| Compiled::new(l, cm)).collect();
        // Ledgers with hierarchy-priced lines are priced one by one (each still fast while the
        // memory energies keep their values).
        if !singles.iter().all(Compiled::is_fast) || singles.iter().any(Compiled::has_mapped_lines)
        {
            return CompiledSet {
                nodes: vec![],
                runs: vec![],
                fallback: Some(singles),
                singles: vec![],
                capacities: vec![],
            };
        }
        let Some(first) = ledgers.first() else {
            return CompiledSet {
                nodes: vec![],
                runs: vec![],
                fallback: None,
                singles: vec![],
                capacities: vec![],
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
            for (id, (_, counts)) in ledger.layers().enumerate() {
                let fp = ledger.footprint_at(id);
                for (key, &count) in counts.iter() {
                    if let Some(n) = b.key(&fp, key) {
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
            singles,
            capacities: capacity_leaves(cm),
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
        if !capacities_unchanged(&self.capacities, theta) {
            out.extend(self.singles.iter().map(|c| c.price(theta, vals)));
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
    use crate::hardware::PRESETS;
    use crate::hardware::paths::{resolve, set_pj};
    use crate::ledger::{BF16, FP16, FP32, Fmt, INT8, INT32, Op, TensorClass};

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

    /// Every action in several formats, integer adds of widths no preset lists (L-Mul's
    /// int11/int15/int23 adds, and others), memory in every class.
    fn every_op_ledger(weight_bytes: u64) -> Ledger {
        let mut l = Ledger::new();
        let fmts = [FP32, FP16, BF16, INT8, INT32, Fmt::Int { bits: 4 }];
        for (i, fmt) in fmts.into_iter().enumerate() {
            let id = l.layer(&format!("l{i}"));
            for (j, op) in Op::ALL.into_iter().enumerate() {
                match op.kind() {
                    OpKind::Memory => {
                        for class in TensorClass::ALL {
                            l.at(id).mem(op, fmt, class, 64 + j as u64);
                        }
                    }
                    _ => l.at(id).add(op, fmt, 10 + j as u64),
                }
            }
        }
        let id = l.layer("int adds");
        for bits in [1u8, 2, 7, 11, 12, 15, 16, 23, 24, 31, 33, 48, 64, 65] {
            l.at(id).add(Op::Add, Fmt::Int { bits }, bits as u64);
            l.at(id).add(Op::Ac, Fmt::Int { bits }, 3);
            l.at(id).add(Op::Mac, Fmt::Int { bits }, 5);
        }
        for (e, m) in [
            (4u8, 3u8),
            (5, 2),
            (8, 3),
            (5, 10),
            (8, 7),
            (8, 23),
            (11, 52),
        ] {
            l.at(id).add(Op::Lmul, Fmt::Float { e, m }, 7);
        }
        for (k, class) in TensorClass::ALL.into_iter().enumerate() {
            l.footprint.insert(class, weight_bytes >> (2 * k));
        }
        l
    }

    #[test]
    fn both_paths_price_every_action_alike_with_every_preset() {
        for (hw, _) in PRESETS {
            let cm = Hardware::load(hw).unwrap().model;
            for weight_bytes in [100, 20_000, 1 << 30] {
                let l = every_op_ledger(weight_bytes);
                let p = price(&l, &cm);
                let c = Compiled::new(&l, &cm);
                assert!(c.is_fast(), "{hw}: compiled path fell back to price");
                let mut vals = Vec::new();
                let q = c.price(&theta(&cm), &mut vals);
                assert_eq!(q.total.to_bits(), p.energy_pj.to_bits(), "{hw}");
                for (k, (name, v)) in p.by_kind.iter().enumerate() {
                    assert_eq!(q.by_kind[k].to_bits(), v.to_bits(), "{hw} {name}");
                }
                let slow: Vec<&str> = p.unpriced.iter().map(|u| u.action.as_str()).collect();
                assert_eq!(c.unpriced(), slow.as_slice(), "{hw}");
                // The interpolated adds are priced on presets with int8 and int32 adds.
                if cm.entry_index(Op::Add, INT8).is_some()
                    && cm.entry_index(Op::Add, INT32).is_some()
                {
                    assert!(!slow.contains(&"add.int12"), "{hw}");
                }
                let set = CompiledSet::new(&[&l, &every_op_ledger(weight_bytes / 3)], &cm);
                assert!(set.is_fast(), "{hw}");
                let mut out = Vec::new();
                set.price(&theta(&cm), &mut vals, &mut out);
                assert_eq!(out[0], q, "{hw}");
            }
        }
    }
}
