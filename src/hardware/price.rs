//! Pricing: ledger x cost model -> energy. A pure function, so sweeps over cost parameters
//! re-price a saved ledger and never re-simulate.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::unit::{Footprint, Price, place};
use super::{CostModel, Energy};
use crate::ledger::{ActionKey, Fmt, INT8, INT32, Ledger, Op, OpKind, TensorClass};

/// One priced count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PricedLine {
    pub action: String,
    pub count: u64,
    pub pj_each: f64,
    pub energy_pj: f64,
    pub energy_pj_min: f64,
    pub energy_pj_max: f64,
    pub how: String,
    /// True when the memory hierarchy priced it (a traced weight read or a mapped pass), not
    /// count x unit price.
    #[serde(skip)]
    pub mapped: bool,
}

/// A counted action the cost model has no price for: reported, never counted as 0.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unpriced {
    pub action: String,
    pub count: u64,
    /// Why: "no price in the cost model", or the cost model's stated reason for leaving it out.
    pub reason: String,
    /// True when the cost model deliberately excludes it (with a reason).
    pub excluded: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PricedLayer {
    pub name: String,
    pub lines: Vec<PricedLine>,
    pub energy_pj: f64,
    pub energy_pj_min: f64,
    pub energy_pj_max: f64,
    /// The levels its traced weight reads pass through, innermost first (None: not traced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_chain: Option<Vec<String>>,
    /// The loop-nest mapping of each of its passes, outermost level first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<String>,
}

/// What a layer's passes cover and what their mapping costs (see `passes`).
#[derive(Default)]
struct PassView {
    /// Bytes the passes account for, per (op, class).
    covered: BTreeMap<(Op, TensorClass), u64>,
    /// Per class: covered bytes, then mapped (nominal, min, max) and lower pJ.
    class: BTreeMap<TensorClass, (u64, f64, f64, f64, f64)>,
    /// Mapped pJ per level index, and in total.
    by_level: Vec<(usize, f64)>,
    total: f64,
}

fn pass_view(
    cm: &CostModel,
    cache: &mut super::passes::Cache,
    passes: &BTreeMap<crate::ledger::Work, u64>,
    layer: &str,
    mappings: &mut Vec<String>,
) -> Option<PassView> {
    let mut v = PassView::default();
    let pinned = cm.pinned_mapping(layer);
    for (w, &n) in passes {
        let e = match cache.get(cm, w, pinned) {
            Ok(e) => e,
            Err(err) => {
                mappings.push(format!("{w:?}: no mapping ({err}); priced at placement"));
                continue;
            }
        };
        let how = if e.pinned { " (pinned)" } else { "" };
        mappings.push(format!("{n} x {w:?}: {}{how}", e.mapping));
        let k = n as f64;
        for (op, class, bytes) in w.traffic() {
            *v.covered.entry((op, class)).or_insert(0) += bytes * n;
            v.class.entry(class).or_default().0 += bytes * n;
        }
        let (nom, lo, hi) = e.mapped;
        for (class, pj) in &e.by_class {
            let share = if nom > 0.0 { pj / nom } else { 0.0 };
            let c = v.class.entry(*class).or_default();
            c.1 += k * pj;
            c.2 += k * lo * share;
            c.3 += k * hi * share;
            c.4 += k * e.lower * share;
        }
        for (i, pj) in &e.by_level {
            add_level(&mut v.by_level, *i, k * pj);
        }
        v.total += k * nom;
    }
    (!v.covered.is_empty()).then_some(v)
}

fn add_level(v: &mut Vec<(usize, f64)>, i: usize, x: f64) {
    match v.iter_mut().find(|(l, _)| *l == i) {
        Some((_, acc)) => *acc += x,
        None => v.push((i, x)),
    }
}

/// Memory energy as a range: compulsory traffic, the mapped estimate, and no reuse below the
/// level that holds a whole tensor class. Only traced weight reads differ between the three;
/// every other memory action is priced at its placement in all three (see `hierarchy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryRange {
    pub lower_pj: f64,
    pub mapped_pj: f64,
    pub upper_pj: f64,
    /// Per tensor class: (class, lower, mapped, upper).
    pub by_class: Vec<(String, f64, f64, f64)>,
    /// Bytes of weight reads whose reuse was traced, of all weight bytes read.
    pub traced_weight_bytes: u64,
    pub weight_bytes: u64,
}

impl MemoryRange {
    fn add(&mut self, class: &str, lower: f64, mapped: f64, upper: f64) {
        self.lower_pj += lower;
        self.mapped_pj += mapped;
        self.upper_pj += upper;
        match self.by_class.iter_mut().find(|(c, ..)| c == class) {
            Some((_, l, m, u)) => {
                *l += lower;
                *m += mapped;
                *u += upper;
            }
            None => self
                .by_class
                .push((class.to_string(), lower, mapped, upper)),
        }
    }
}

/// A ledger priced by a cost model.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PricedLedger {
    pub layers: Vec<PricedLayer>,
    pub energy_pj: f64,
    pub energy_pj_min: f64,
    pub energy_pj_max: f64,
    /// Energy by action kind: compute, nonlinear, neuron, metric, memory.
    pub by_kind: Vec<(String, f64)>,
    /// Energy by action (summed over layers and formats), in ledger order.
    pub by_action: Vec<(String, f64)>,
    /// Memory energy by level and by tensor class.
    pub memory_by_level: Vec<(String, f64)>,
    pub memory_by_class: Vec<(String, f64)>,
    /// Work that has no price, summed over layers.
    pub unpriced: Vec<Unpriced>,
    /// Memory energy as lower bound, mapped estimate (in `energy_pj`) and upper bound.
    pub memory_range: MemoryRange,
}

fn kind_name(k: OpKind) -> &'static str {
    match k {
        OpKind::Compute => "compute",
        OpKind::Nonlinear => "nonlinear",
        OpKind::Neuron => "neuron",
        OpKind::Metric => "metric",
        OpKind::Memory => "memory",
    }
}

fn add_to(v: &mut Vec<(String, f64)>, key: &str, x: f64) {
    match v.iter_mut().find(|(k, _)| k == key) {
        Some((_, acc)) => *acc += x,
        None => v.push((key.to_string(), x)),
    }
}

/// Price a ledger. Every count is either priced, excluded by the cost model with a reason, or
/// listed as unpriced. Metric counts (spikes, synaptic events) are priced only when the cost
/// model prices them directly, since their work is already counted as other actions.
pub fn price(ledger: &Ledger, cm: &CostModel) -> PricedLedger {
    let mut out = PricedLedger::default();
    for kind in [
        OpKind::Compute,
        OpKind::Nonlinear,
        OpKind::Neuron,
        OpKind::Metric,
        OpKind::Memory,
    ] {
        out.by_kind.push((kind_name(kind).to_string(), 0.0));
    }
    let mut unpriced: Vec<Unpriced> = Vec::new();
    let mut cache = super::passes::Cache::default();
    for (id, (name, counts)) in ledger.layers().enumerate() {
        let fp = ledger.footprint_at(id);
        let mut layer = PricedLayer {
            name: name.to_string(),
            ..Default::default()
        };
        let mut passes = if counts.4.is_empty() || cm.memories.is_empty() {
            None
        } else {
            pass_view(cm, &mut cache, &counts.4, name, &mut layer.mappings)
        };
        let weight_read: u64 = counts
            .iter()
            .filter(|(k, _)| is_weight_read(k))
            .map(|(_, v)| *v)
            .sum();
        let traced = counts.2.total().min(weight_read);
        // A layer whose weights a pass covers is priced by its mapping, not its trace.
        let range = (traced > 0 && passes.is_none())
            .then(|| super::hierarchy::weight_range(cm, ledger, &counts.2))
            .flatten();
        out.memory_range.weight_bytes += weight_read;
        if range.is_some() {
            out.memory_range.traced_weight_bytes += traced;
            layer.weight_chain = range.as_ref().map(|r| {
                r.mapped
                    .chain
                    .iter()
                    .map(|&i| cm.memories[i].name.clone())
                    .collect()
            });
        }
        for (key, &count) in counts.iter() {
            let price = unit_price(cm, &fp, key);
            match price {
                Some(p) => {
                    let mut line = PricedLine {
                        action: key.to_string(),
                        count,
                        pj_each: p.nominal,
                        energy_pj: count as f64 * p.nominal,
                        energy_pj_min: count as f64 * p.min,
                        energy_pj_max: count as f64 * p.max,
                        how: p.how,
                        mapped: false,
                    };
                    let mut bounds = (line.energy_pj, line.energy_pj);
                    let mut levels: Vec<(String, f64)> = Vec::new();
                    let placed = key.class.and_then(|c| place(cm, &fp, c));
                    // Bytes of this line a pass covers (taken from what its passes account for).
                    let covered = match (&mut passes, key.class) {
                        (Some(v), Some(class)) => v
                            .covered
                            .get_mut(&(key.op, class))
                            .map(|left| {
                                let take = (*left).min(count);
                                *left -= take;
                                take
                            })
                            .filter(|&take| take > 0)
                            .map(|take| (take, class)),
                        _ => None,
                    };
                    match (&range, is_weight_read(key), covered, &passes) {
                        (_, _, Some((covered, class)), Some(v)) => {
                            // The pass's bytes of this line are priced by its mapping, in
                            // proportion to the bytes of its class; the rest at placement.
                            let (bytes, nom, lo, hi, low) = v.class[&class];
                            let share = covered as f64 / bytes.max(1) as f64;
                            let rest = 1.0 - covered as f64 / count as f64;
                            let placement = line.energy_pj;
                            line.energy_pj = placement * rest + share * nom;
                            line.energy_pj_min = line.energy_pj_min * rest + share * lo;
                            line.energy_pj_max = line.energy_pj_max * rest + share * hi;
                            line.pj_each = line.energy_pj / count as f64;
                            line.how = format!("loop-nest mapping of its passes; {}", line.how);
                            line.mapped = true;
                            bounds = (
                                placement * rest + share * low,
                                placement.max(line.energy_pj),
                            );
                            if let Some(level) = placed {
                                levels.push((level.name.clone(), placement * rest));
                            }
                            if v.total > 0.0 {
                                for (i, e) in &v.by_level {
                                    levels.push((
                                        cm.memories[*i].name.clone(),
                                        share * nom * e / v.total,
                                    ));
                                }
                            }
                        }
                        (Some(r), true, ..) => {
                            // This line's share of the traced bytes is served through the
                            // hierarchy; the rest stays at the placement level.
                            let share = count as f64 / weight_read as f64;
                            let rest = 1.0 - traced as f64 / weight_read as f64;
                            let m = &r.mapped.energy;
                            line.energy_pj = line.energy_pj * rest + share * m.nominal;
                            line.energy_pj_min = line.energy_pj_min * rest + share * m.min;
                            line.energy_pj_max = line.energy_pj_max * rest + share * m.max;
                            line.pj_each = line.energy_pj / count as f64;
                            let untraced = count as f64 * p.nominal * rest;
                            bounds = (
                                untraced + share * r.lower.nominal,
                                untraced + share * r.upper.energy.nominal,
                            );
                            line.mapped = true;
                            line.how = if rest > 0.0 {
                                format!("{}; untraced reads at {}", m.how, line.how)
                            } else {
                                m.how.clone()
                            };
                            if let Some(level) = placed {
                                levels.push((level.name.clone(), untraced));
                            }
                            for (i, e) in &r.mapped.by_level {
                                levels.push((cm.memories[*i].name.clone(), share * e));
                            }
                        }
                        _ => {
                            if let Some(level) = placed {
                                levels.push((level.name.clone(), line.energy_pj));
                            }
                        }
                    }
                    layer.energy_pj += line.energy_pj;
                    layer.energy_pj_min += line.energy_pj_min;
                    layer.energy_pj_max += line.energy_pj_max;
                    add_to(&mut out.by_kind, kind_name(key.op.kind()), line.energy_pj);
                    add_to(&mut out.by_action, key.op.name(), line.energy_pj);
                    if let (Op::Read | Op::Write, Some(class)) = (key.op, key.class) {
                        add_to(&mut out.memory_by_class, class.name(), line.energy_pj);
                        for (level, e) in levels {
                            add_to(&mut out.memory_by_level, &level, e);
                        }
                        out.memory_range
                            .add(class.name(), bounds.0, line.energy_pj, bounds.1);
                    }
                    layer.lines.push(line);
                }
                None if key.op.kind() == OpKind::Metric => {}
                None => {
                    let (reason, excluded) = match cm.not_priced.iter().find(|n| n.action == key.op)
                    {
                        Some(n) => (n.reason.clone(), true),
                        None if key.op.kind() == OpKind::Memory && cm.memories.is_empty() => {
                            ("the cost model has no memory levels".to_string(), false)
                        }
                        None if key.op.kind() == OpKind::Memory => {
                            (unplaced_reason(cm, &fp, key), false)
                        }
                        None => ("no price in the cost model".to_string(), false),
                    };
                    let action = key.to_string();
                    match unpriced.iter_mut().find(|u| u.action == action) {
                        Some(u) => u.count += count,
                        None => unpriced.push(Unpriced {
                            action,
                            count,
                            reason,
                            excluded,
                        }),
                    }
                }
            }
        }
        out.energy_pj += layer.energy_pj;
        out.energy_pj_min += layer.energy_pj_min;
        out.energy_pj_max += layer.energy_pj_max;
        out.layers.push(layer);
    }
    out.unpriced = unpriced;
    out
}

fn is_weight_read(k: &ActionKey) -> bool {
    k.op == Op::Read && k.class == Some(TensorClass::Weight)
}

/// Why a memory action has no price although the cost model has memory levels: its level has
/// no write energy (for a write), or no level holds its tensor class.
pub fn unplaced_reason(cm: &CostModel, fp: &Footprint, key: &ActionKey) -> String {
    let Some(class) = key.class else {
        return "no price in the cost model".to_string();
    };
    match place(cm, fp, class) {
        Some(level) if key.op == Op::Write => format!(
            "memory level `{}` has no write energy in the cost model",
            level.name
        ),
        _ => no_level_reason(cm, fp, class),
    }
}

/// Why a memory action has no price although the cost model has memory levels: no level holds
/// its tensor class (every level has a capacity, all smaller than the footprint).
fn no_level_reason(cm: &CostModel, fp: &Footprint, class: TensorClass) -> String {
    let need = fp.get(&class).copied().unwrap_or(0);
    match cm
        .memories
        .iter()
        .filter_map(|m| m.total_capacity().map(|c| (c, &m.name)))
        .max()
    {
        Some((cap, name)) if cm.memories.iter().all(|m| m.capacity_bytes.is_some()) => format!(
            "no memory level holds the {} ({need} B): the largest, `{name}`, holds {cap} B",
            class.name()
        ),
        _ => "no price in the cost model".to_string(),
    }
}

/// How one action is priced: the decision both pricing paths (`price` here, and the compiled
/// expressions of `compiled`) evaluate, so they cannot disagree on which entry, compound or
/// interpolation prices an action.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// `cm.entries[i]`.
    Entry(usize),
    /// A compound from the file: its parts, each scaled, summed in order.
    Compound(Vec<(Rule, f64)>),
    /// MAC = mul + add.
    Sum(Box<Rule>, Box<Rule>),
    /// An integer add of `bits` bits between the int8 (`a8`) and int32 (`a32`) add entries.
    IntAdd { bits: u32, a8: usize, a32: usize },
    /// One byte of an access to `cm.memories[level]`: its write energy when `write`, else its
    /// read energy; a per-size energy is evaluated at `size_bytes`.
    Memory {
        level: usize,
        write: bool,
        size_bytes: u64,
    },
}

impl Rule {
    /// The interpolation weight of an integer add of `bits` bits between int8 and int32.
    pub fn lerp_t(bits: u32) -> f64 {
        (bits as f64 - 8.0) / 24.0
    }
}

/// `(a + t (b - a)).max(0)`: shared so both paths round alike.
pub fn lerp(a: f64, b: f64, t: f64) -> f64 {
    (a + t * (b - a)).max(0.0)
}

/// The rule pricing one count of `key` (one byte for memory actions), or None.
pub fn rule(cm: &CostModel, fp: &Footprint, key: &ActionKey) -> Option<Rule> {
    match key.op.kind() {
        OpKind::Memory => memory_rule(cm, fp, key),
        _ => op_rule(cm, key.op, key.fmt, 0),
    }
}

/// Resolution order: a direct entry; a compound from the file; the built-in rules (MAC = mul +
/// add, AC = add, an integer add of an unlisted width interpolated, L-Mul = one integer add of
/// width e + m). Depth-limited against cycles.
pub fn op_rule(cm: &CostModel, op: Op, fmt: Fmt, depth: u32) -> Option<Rule> {
    if depth > 8 {
        return None;
    }
    if let Some(i) = cm.entry_index(op, fmt) {
        return Some(Rule::Entry(i));
    }
    if let Some(c) = cm.compound(op, fmt) {
        let parts =
            c.of.iter()
                .map(|(part, k)| Some((op_rule(cm, *part, fmt, depth + 1)?, *k)))
                .collect::<Option<Vec<_>>>()?;
        return (!parts.is_empty()).then_some(Rule::Compound(parts));
    }
    match op {
        Op::Mac => {
            let mul = op_rule(cm, Op::Mul, fmt, depth + 1)?;
            let add = op_rule(cm, Op::Add, fmt, depth + 1)?;
            Some(Rule::Sum(Box::new(mul), Box::new(add)))
        }
        Op::Ac => op_rule(cm, Op::Add, fmt, depth + 1),
        Op::Add => match fmt {
            Fmt::Int { bits } => int_add_rule(cm, bits as u32),
            _ => None,
        },
        Op::Lmul => match fmt {
            Fmt::Float { e, m } => int_add_rule(cm, e as u32 + m as u32),
            _ => None,
        },
        _ => None,
    }
}

/// An integer add of `bits` bits: an explicit entry, or linear interpolation (and extrapolation)
/// in the width between the int8 and int32 add entries. Adder energy grows about linearly with
/// width for ripple and carry-select adders; the interpolation is ours, not a measurement.
pub fn int_add_rule(cm: &CostModel, bits: u32) -> Option<Rule> {
    if bits == 0 || bits > 64 {
        return None;
    }
    if let Some(i) = cm.entry_index(Op::Add, Fmt::Int { bits: bits as u8 }) {
        return Some(Rule::Entry(i));
    }
    let a8 = cm.entry_index(Op::Add, INT8)?;
    let a32 = cm.entry_index(Op::Add, INT32)?;
    Some(Rule::IntAdd { bits, a8, a32 })
}

fn memory_rule(cm: &CostModel, fp: &Footprint, key: &ActionKey) -> Option<Rule> {
    let class = key.class?;
    let level = place(cm, fp, class)?;
    let i = cm.memories.iter().position(|m| std::ptr::eq(m, level))?;
    // A per-size energy is evaluated at the level's capacity, or at the class's footprint when
    // the level is unbounded (a memory sized to the tensor it holds).
    let size_bytes = level
        .bank_bytes()
        .unwrap_or_else(|| fp.get(&class).copied().unwrap_or(0));
    // A level without a write energy leaves its writes unpriced (listed), never priced as reads.
    if key.op == Op::Write && level.write.is_none() {
        return None;
    }
    Some(Rule::Memory {
        level: i,
        write: key.op == Op::Write,
        size_bytes,
    })
}

/// The price a rule gives under `cm`.
pub fn eval(cm: &CostModel, r: &Rule) -> Price {
    let entry = |i: usize| {
        let e = &cm.entries[i];
        Price::of(e.energy, format!("{}.{}", e.action, e.format))
    };
    match r {
        Rule::Entry(i) => entry(*i),
        Rule::Compound(parts) => {
            let mut total: Option<Price> = None;
            for (part, k) in parts {
                let p = eval(cm, part).scaled(*k);
                let p = Price {
                    how: format!("{k} {}", p.how),
                    ..p
                };
                total = Some(match total {
                    None => p,
                    Some(t) => t.plus(&p),
                });
            }
            total.expect("a compound rule has parts")
        }
        Rule::Sum(a, b) => eval(cm, a).plus(&eval(cm, b)),
        Rule::IntAdd { bits, a8, a32 } => {
            let (a8, a32) = (entry(*a8), entry(*a32));
            let t = Rule::lerp_t(*bits);
            Price {
                nominal: lerp(a8.nominal, a32.nominal, t),
                min: lerp(a8.min, a32.min, t),
                max: lerp(a8.max, a32.max, t),
                how: format!("add.int{bits} interpolated between add.int8 and add.int32"),
            }
        }
        Rule::Memory {
            level,
            write,
            size_bytes,
        } => {
            let level = &cm.memories[*level];
            let e = match (write, level.write) {
                (true, Some(w)) => w,
                _ => level.read,
            };
            let sized = matches!(e, Energy::PerSize(..));
            let e = e.at_bits(*size_bytes as f64 * 8.0);
            let how = if sized {
                format!(
                    "memory {} ({} B/access, {:.4} pJ at {size_bytes} B)",
                    level.name,
                    level.access_bytes,
                    e.nominal()
                )
            } else {
                format!("memory {} ({} B/access)", level.name, level.access_bytes)
            };
            Price::of(e, how).scaled(1.0 / level.access_bytes as f64)
        }
    }
}

/// The price of one count of `key` (one byte for memory actions), or None.
pub fn unit_price(cm: &CostModel, fp: &Footprint, key: &ActionKey) -> Option<Price> {
    rule(cm, fp, key).map(|r| eval(cm, &r))
}

/// The price of `op` in `fmt` (see `op_rule`).
pub fn op_price(cm: &CostModel, op: Op, fmt: Fmt, depth: u32) -> Option<Price> {
    op_rule(cm, op, fmt, depth).map(|r| eval(cm, &r))
}

/// The price of an integer add of `bits` bits (see `int_add_rule`).
pub fn int_add_price(cm: &CostModel, bits: u32) -> Option<Price> {
    int_add_rule(cm, bits).map(|r| eval(cm, &r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Hardware;
    use crate::ledger::{FP32, TensorClass};

    fn horowitz() -> CostModel {
        Hardware::load("horowitz45").unwrap().model
    }

    #[test]
    fn mac_is_mul_plus_add_unless_priced_directly() {
        let cm = horowitz();
        let p = op_price(&cm, Op::Mac, FP32, 0).unwrap();
        assert!((p.nominal - 4.6).abs() < 1e-12, "{p:?}");
        let ac = op_price(&cm, Op::Ac, FP32, 0).unwrap();
        assert_eq!(ac.nominal, 0.9);
    }

    #[test]
    fn lmul_is_priced_as_an_integer_add_of_its_width() {
        let cm = horowitz();
        // bf16: 8 + 7 = 15 bits, between int8 (0.03) and int32 (0.1).
        let p = op_price(&cm, Op::Lmul, crate::ledger::BF16, 0).unwrap();
        let expected = 0.03 + (15.0 - 8.0) / 24.0 * (0.1 - 0.03);
        assert!((p.nominal - expected).abs() < 1e-12);
    }

    #[test]
    fn unpriced_work_is_listed_not_zeroed() {
        let cm = horowitz();
        let mut l = Ledger::new();
        let id = l.layer("x");
        l.at(id).add(Op::Exp, FP32, 7);
        l.at(id).add(Op::Add, FP32, 10);
        l.at(id).add(Op::Spike, FP32, 3);
        let p = price(&l, &cm);
        assert_eq!(p.unpriced.len(), 1);
        assert_eq!(p.unpriced[0].action, "exp.fp32");
        assert_eq!(p.unpriced[0].count, 7);
        assert!((p.energy_pj - 9.0).abs() < 1e-12);
    }

    #[test]
    fn memory_goes_to_the_smallest_level_that_holds_the_tensor() {
        let cm = horowitz();
        let mut l = Ledger::new();
        l.footprint.insert(TensorClass::Weight, 20 * 1024);
        l.footprint.insert(TensorClass::State, 100);
        assert_eq!(
            place(&cm, &l.footprint, TensorClass::Weight).unwrap().name,
            "sram-32k"
        );
        assert_eq!(
            place(&cm, &l.footprint, TensorClass::State).unwrap().name,
            "sram-8k"
        );
        l.footprint.insert(TensorClass::Weight, 1 << 30);
        assert_eq!(
            place(&cm, &l.footprint, TensorClass::Weight).unwrap().name,
            "dram"
        );
    }

    #[test]
    fn per_size_energy_is_evaluated_at_capacity_or_at_the_tensor_footprint() {
        let cm = Hardware::load("lemaire-iconip22").unwrap().model;
        let mut l = Ledger::new();
        l.footprint.insert(TensorClass::Weight, 576);
        // Unbounded level: at the weight footprint, 576 B = 4608 bits; 4-byte accesses.
        let w = unit_price(
            &cm,
            &l.footprint,
            &ActionKey::mem(Op::Read, FP32, TensorClass::Weight),
        )
        .unwrap();
        assert!(
            (w.nominal - (1.09e-5 * 4608.0 + 13.2) / 4.0).abs() < 1e-12,
            "{w:?}"
        );
        // The FIFO has a capacity (4000 B), whatever the event footprint; 1-byte accesses.
        l.footprint.insert(TensorClass::Event, 10);
        let e = unit_price(
            &cm,
            &l.footprint,
            &ActionKey::mem(Op::Read, FP32, TensorClass::Event),
        )
        .unwrap();
        assert!(
            (e.nominal - (1.09e-5 * 32000.0 + 13.2)).abs() < 1e-12,
            "{e:?}"
        );
    }

    #[test]
    fn loihi_prices_events_and_excludes_the_accumulate_they_include() {
        let cm = Hardware::load("loihi-sanafe").unwrap().model;
        let mut l = Ledger::new();
        let id = l.layer("x");
        l.at(id).add(Op::Ac, FP32, 10);
        l.at(id).add(Op::Synop, FP32, 10);
        l.at(id).add(Op::NeuronUpdate, FP32, 2);
        l.at(id).add(Op::Spike, FP32, 1);
        let p = price(&l, &cm);
        assert!(
            (p.energy_pj - (10.0 * 35.5 + 2.0 * 72.8 + 146.1)).abs() < 1e-9,
            "{}",
            p.energy_pj
        );
        let ac = p.unpriced.iter().find(|u| u.action == "ac.fp32").unwrap();
        assert!(ac.excluded && ac.reason == "included in the synapse event energy");
    }

    #[test]
    fn a_write_to_a_level_without_a_write_energy_is_listed_unpriced_naming_the_level() {
        let mut cm = horowitz();
        for m in &mut cm.memories {
            m.write = None;
        }
        let mut l = Ledger::new();
        let id = l.layer("x");
        l.at(id).mem(Op::Write, FP32, TensorClass::Activation, 64);
        l.at(id).mem(Op::Read, FP32, TensorClass::Activation, 64);
        let p = price(&l, &cm);
        assert_eq!(p.unpriced.len(), 1, "{:?}", p.unpriced);
        assert!(p.unpriced[0].action.starts_with("write"));
        assert!(p.unpriced[0].reason.contains("sram-8k"), "{:?}", p.unpriced);
        assert!((p.energy_pj - 64.0 * 10.0 / 8.0).abs() < 1e-9);
    }

    /// Activations too large for any SRAM as a network live in DRAM, but a layer that declares
    /// a small working set (two rows of a LayerNorm) reads and writes its own in SRAM.
    #[test]
    fn a_layer_with_a_small_footprint_is_placed_by_it() {
        let cm = horowitz();
        let mut l = Ledger::new();
        l.footprint.insert(TensorClass::Activation, 64 << 20);
        let small = l.layer("norm");
        let large = l.layer("gelu");
        l.set_layer_footprint(small, TensorClass::Activation, 4096);
        for id in [small, large] {
            l.at(id).mem(Op::Read, FP32, TensorClass::Activation, 4096);
        }
        let p = price(&l, &cm);
        let per_byte = |i: usize| p.layers[i].energy_pj / 4096.0;
        let at = |i: usize| place(&cm, &l.footprint_at(i), TensorClass::Activation).unwrap();
        assert_eq!(at(small).name, "sram-8k");
        assert_eq!(at(large).name, "dram");
        assert!(per_byte(large) > 10.0 * per_byte(small), "{p:?}");
    }

    #[test]
    fn a_class_is_never_placed_in_a_level_that_may_not_hold_it() {
        let cm = Hardware::load("eyeriss65").unwrap().model;
        let mut l = Ledger::new();
        l.footprint.insert(TensorClass::Weight, 100_000);
        l.footprint.insert(TensorClass::Activation, 100_000);
        assert_eq!(
            place(&cm, &l.footprint, TensorClass::Weight).unwrap().name,
            "dram"
        );
        assert_eq!(
            place(&cm, &l.footprint, TensorClass::Activation)
                .unwrap()
                .name,
            "shared_glb"
        );
    }
}
