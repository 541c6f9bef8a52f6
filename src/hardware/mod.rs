//! The hardware cost model: energy per action, per number format, per memory level, each number
//! with its source. Loaded from RON files (`hardware/*.ron`, also built into the binary as presets).
//!
//! The cost model is one of three separate artefacts (as in Accelergy): the model's execution
//! produces a ledger, the cost model says what each action costs, and pricing combines them.

pub mod compiled;
pub mod hierarchy;
pub mod mapper;
pub mod mapping_text;
pub mod nest;
pub mod passes;
pub mod paths;
pub mod price;
pub mod uncertainty;
pub mod unit;

pub use price::{Price, PricedLedger, PricedLine, Unpriced, price};

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{self, Error, Result};
use crate::ledger::{Fmt, Op, OpKind, TensorClass};

/// Presets shipped in `hardware/`, built into the binary so it runs from anywhere.
pub const PRESETS: &[(&str, &str)] = &[
    ("horowitz45", include_str!("../../hardware/horowitz45.ron")),
    ("jouppi7", include_str!("../../hardware/jouppi7.ron")),
    ("paper45", include_str!("../../hardware/paper45.ron")),
    (
        "lemaire-iconip22",
        include_str!("../../hardware/lemaire-iconip22.ron"),
    ),
    (
        "loihi-sanafe",
        include_str!("../../hardware/loihi-sanafe.ron"),
    ),
    ("eyeriss65", include_str!("../../hardware/eyeriss65.ron")),
];

/// The largest energy of one action a cost model accepts, in pJ (1 J per action): a price
/// above it is refused, so that counts (at most 2^64) times prices, and their sums, stay finite.
pub const MAX_PJ: f64 = 1e12;

/// The largest factor of a part in a compound action.
pub const MAX_COMPOUND_FACTOR: f64 = 1e6;

/// An energy in picojoules: a value, or a range when the source gives one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Energy {
    Pj(f64),
    /// (min, max); the nominal value is the midpoint.
    Range(f64, f64),
    /// Memory levels only: energy per access growing linearly with the memory size,
    /// `slope_pj_per_bit * size_bits + intercept_pj` (Lemaire et al. 2022's regression over
    /// Horowitz's SRAM points is `PerSize(1.09e-5, 13.2)`). The size is the level's capacity when
    /// it has one, else the footprint of the tensor class placed in it (a memory sized to its
    /// tensor, as Lemaire prices weights at the kernel size and potentials at the output size).
    PerSize(f64, f64),
    /// Normal(mean, sd), cut at 0 when sampled; nominal = mean, min/max = 2.5%/97.5% quantiles.
    Normal(f64, f64),
    /// LogNormal(mu, sigma) of ln(pJ); nominal = mean, min/max = 2.5%/97.5% quantiles.
    LogNormal(f64, f64),
    /// Uniform(lo, hi); nominal = midpoint, min/max = lo/hi.
    Uniform(f64, f64),
}

impl Energy {
    /// The nominal value (a `PerSize` energy must be resolved with `at_bits` first; unresolved,
    /// it is its intercept).
    pub fn nominal(self) -> f64 {
        match self {
            Energy::Pj(v) => v,
            Energy::Range(lo, hi) => 0.5 * (lo + hi),
            Energy::PerSize(_, b) => b,
            e => uncertainty::nominal(e),
        }
    }
    pub fn min(self) -> f64 {
        match self {
            Energy::Pj(v) => v,
            Energy::Range(lo, _) => lo,
            Energy::PerSize(_, b) => b,
            e => uncertainty::min(e),
        }
    }
    pub fn max(self) -> f64 {
        match self {
            Energy::Pj(v) => v,
            Energy::Range(_, hi) => hi,
            Energy::PerSize(_, b) => b,
            e => uncertainty::max(e),
        }
    }
    /// The energy for a memory of `size_bits` bits: `PerSize` evaluated, the others unchanged.
    pub fn at_bits(self, size_bits: f64) -> Energy {
        match self {
            Energy::PerSize(a, b) => Energy::Pj(a * size_bits + b),
            e => e,
        }
    }
    fn validate(self) -> std::result::Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        match self {
            Energy::Pj(v) if ok(v) => {}
            Energy::Range(lo, hi) if ok(lo) && ok(hi) && lo <= hi => {}
            Energy::PerSize(a, b) if ok(a) && ok(b) => {}
            e @ (Energy::Normal(..) | Energy::LogNormal(..) | Energy::Uniform(..)) => {
                uncertainty::validate(e)?
            }
            e => {
                return Err(format!(
                    "energy {e:?} must be finite, non-negative, and min <= max"
                ));
            }
        }
        check_bound(self)
    }
}

/// Refuse an energy whose values (or largest Monte Carlo draw) exceed [`MAX_PJ`].
fn check_bound(e: Energy) -> std::result::Result<(), String> {
    let largest = match e {
        Energy::Pj(v) => v,
        Energy::Range(_, hi) | Energy::Uniform(_, hi) => hi,
        Energy::PerSize(a, b) => a.max(b),
        e => uncertainty::largest_draw(e),
    };
    if largest > MAX_PJ || largest.is_nan() {
        return Err(format!(
            "energy {e:?} is above {MAX_PJ:e} pJ (1 J) per action, the most a cost model accepts (larger prices times counts could overflow)"
        ));
    }
    Ok(())
}

/// The energy of one action in one number format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub action: Op,
    pub format: Fmt,
    pub energy: Energy,
    pub source: String,
}

/// An action priced as a sum of other actions in the same format (e.g. a LIF update = 1 mul +
/// 2 add + 1 cmp).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compound {
    pub action: Op,
    pub format: Fmt,
    pub of: Vec<(Op, f64)>,
    pub source: String,
}

/// One level of the memory hierarchy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLevel {
    pub name: String,
    /// Capacity in bytes; `None` for off-chip memory of unbounded size.
    pub capacity_bytes: Option<u64>,
    /// Bytes moved by one access.
    pub access_bytes: u32,
    /// Energy of one read access.
    pub read: Energy,
    /// Energy of one write access (the read energy when absent).
    #[serde(default)]
    pub write: Option<Energy>,
    /// The tensor classes this level may keep (every class when absent); a weight read bypasses
    /// a level that may not keep weights.
    #[serde(default)]
    pub holds: Option<Vec<TensorClass>>,
    /// Copies of this level (one per processing element, say); `capacity_bytes` is per copy.
    #[serde(default)]
    pub instances: Option<u64>,
    /// Banks the level is built of; a per-size energy is taken at the size of one bank.
    #[serde(default)]
    pub banks: Option<u32>,
    pub source: String,
}

impl MemoryLevel {
    /// Bytes all copies hold together (None: unbounded).
    pub fn total_capacity(&self) -> Option<u64> {
        self.capacity_bytes
            .map(|c| c.saturating_mul(self.instances.unwrap_or(1)))
    }

    /// The memory size a per-size energy is evaluated at: one bank of one copy.
    pub fn bank_bytes(&self) -> Option<u64> {
        self.capacity_bytes
            .map(|c| c / self.banks.unwrap_or(1).max(1) as u64)
    }

    /// Whether this level may keep tensors of `class`.
    pub fn may_hold(&self, class: TensorClass) -> bool {
        self.holds.as_ref().is_none_or(|h| h.contains(&class))
    }
}

/// A tensor class placed in a named memory level regardless of its size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub class: TensorClass,
    pub level: String,
}

/// A loop-nest mapping a scenario fixes for the passes of some layers, instead of the mapper's
/// choice (`mapping_text` gives the form; reports print mappings the same way).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedMapping {
    /// A layer name as reports print it (`blocks.0.att.core.mix`), or a prefix ending in `*`
    /// (`blocks.*` is not a pattern: `*` only ends one).
    pub layer: String,
    pub mapping: String,
    /// The cost model it is for (a preset or a path, as `hardware`); None: the scenario's
    /// `hardware`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
}

impl PinnedMapping {
    pub fn matches(&self, layer: &str) -> bool {
        match self.layer.strip_suffix('*') {
            Some(prefix) => layer.starts_with(prefix),
            None => layer == self.layer,
        }
    }
}

/// An action this cost model deliberately leaves out, with the reason (never silently 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotPriced {
    pub action: Op,
    pub reason: String,
}

/// A hardware cost model as written in its RON file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub technology: String,
    pub entries: Vec<Entry>,
    #[serde(default)]
    pub compounds: Vec<Compound>,
    #[serde(default)]
    pub memories: Vec<MemoryLevel>,
    #[serde(default)]
    pub pins: Vec<Pin>,
    #[serde(default)]
    pub not_priced: Vec<NotPriced>,
    /// Mappings a scenario pins for this cost model (never read from the hardware file).
    #[serde(skip)]
    pub pinned_mappings: Vec<PinnedMapping>,
}

impl CostModel {
    /// The mapping pinned for `layer`'s passes: the first pin that matches it.
    pub fn pinned_mapping(&self, layer: &str) -> Option<&str> {
        self.pinned_mappings
            .iter()
            .find(|m| m.matches(layer))
            .map(|m| m.mapping.as_str())
    }

    /// Check that every pass `ledger` filed can be mapped (its tensors fit the outermost
    /// level), and every pinned mapping against the passes: each must match at least one layer
    /// with mapped passes, and fit each of its passes.
    pub fn check_mappings(&self, ledger: &crate::ledger::Ledger) -> Result<()> {
        if !self.memories.is_empty() {
            for (name, counts) in ledger.layers() {
                for w in counts.4.keys() {
                    passes::check_fits(self, w).map_err(|e| {
                        Error::input(format!("layer {name} on {}: {e} (pass {w:?})", self.name))
                    })?;
                }
            }
        }
        for pin in &self.pinned_mappings {
            let mut matched = false;
            for (name, counts) in ledger.layers() {
                if counts.4.is_empty() || !pin.matches(name) {
                    continue;
                }
                matched = true;
                if self.pinned_mapping(name) != Some(pin.mapping.as_str()) {
                    continue; // an earlier pin covers this layer
                }
                for w in counts.4.keys() {
                    passes::map_pass(self, w, Some(&pin.mapping)).map_err(|e| {
                        Error::input(format!(
                            "pinned mapping for layer {name} on {}: {e} (pass {w:?})",
                            self.name
                        ))
                    })?;
                }
            }
            if !matched {
                let mapped: Vec<&str> = ledger
                    .layers()
                    .filter(|(_, c)| !c.4.is_empty())
                    .map(|(n, _)| n)
                    .collect();
                return Err(Error::input(format!(
                    "pinned mapping for layer `{}`: no layer of that name has mapped passes (layers with mapped passes: {})",
                    pin.layer,
                    if mapped.is_empty() {
                        "none".to_string()
                    } else {
                        mapped.join(", ")
                    }
                )));
            }
        }
        Ok(())
    }
}

/// A cost model together with where it came from and a hash of its text.
#[derive(Clone, Debug)]
pub struct Hardware {
    pub model: CostModel,
    /// Preset name or file path.
    pub origin: String,
    /// SHA-256 of the RON text, so a report can be traced to the exact cost model.
    pub sha256: String,
}

impl Hardware {
    /// Load a preset by name, or a RON file by path.
    pub fn load(name_or_path: &str) -> Result<Hardware> {
        if let Some((_, text)) = PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            let path = Path::new("hardware").join(format!("{name_or_path}.ron"));
            return Hardware::from_text(&path, text, name_or_path.to_string());
        }
        if name_or_path.trim().is_empty() {
            return Err(Error::input(
                "empty cost model name: give a preset (picojoule hardware list) or a .ron file",
            ));
        }
        let path = Path::new(name_or_path);
        if path.is_dir() {
            return Err(Error::input(format!(
                "hardware `{name_or_path}` is a folder, not a cost model file"
            )));
        }
        if !path.exists() {
            let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            return Err(Error::input(format!(
                "unknown hardware `{name_or_path}`: not a preset ({}) and no such file",
                names.join(", ")
            )));
        }
        let text = error::read_text(path)?;
        Hardware::from_text(path, &text, path.display().to_string())
    }

    pub fn from_text(path: &Path, text: &str, origin: String) -> Result<Hardware> {
        let model: CostModel = error::parse_ron(path, text)?;
        model.validate().map_err(|(e, at)| {
            let line = at
                .and_then(|needle| {
                    line_of(text, &needle.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                })
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            Error::input(format!("{}{line}: {e}", path.display()))
        })?;
        Ok(Hardware {
            model,
            origin,
            sha256: sha256_hex(text.as_bytes()),
        })
    }
}

/// The 1-based line of the first occurrence of `needle` (ignoring spaces) in `text`, to point
/// a validation error at the entry it is about.
fn line_of(text: &str, needle: &[&str]) -> Option<usize> {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let (first, rest) = needle.split_first()?;
    let start = text
        .lines()
        .position(|l| squash(l).contains(&squash(first)))?;
    if rest.is_empty() {
        return Some(start + 1);
    }
    let after = line_of(
        &text.lines().skip(start).collect::<Vec<_>>().join("\n"),
        rest,
    )?;
    Some(start + after)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl CostModel {
    /// The entry that prices `op` in `fmt`: one for that format, else one for `any`.
    pub fn entry_index(&self, op: Op, fmt: Fmt) -> Option<usize> {
        let find = |f: Fmt| {
            self.entries
                .iter()
                .position(|e| e.action == op && e.format == f)
        };
        find(fmt).or_else(|| find(Fmt::Any))
    }

    /// The compound that defines `op` in `fmt`: one for that format, else one for `any`.
    pub fn compound(&self, op: Op, fmt: Fmt) -> Option<&Compound> {
        let find = |f: Fmt| {
            self.compounds
                .iter()
                .find(|c| c.action == op && c.format == f)
        };
        find(fmt).or_else(|| find(Fmt::Any))
    }

    /// Check the cost model; an error carries what to search the text for to find its line
    /// (a sequence of fragments, each searched after the previous one's line).
    fn validate(&self) -> std::result::Result<(), (String, Option<Vec<String>>)> {
        self.validate_values().map_err(|e| (e, None))?;
        for c in &self.compounds {
            if let Some(cycle) = self.compound_cycle(c) {
                return Err((
                    format!(
                        "compound {}.{} is defined in terms of itself ({}): it would never get a price",
                        c.action, c.format, cycle
                    ),
                    Some(vec!["compounds".into(), format!("action:{}", c.action)]),
                ));
            }
        }
        for m in &self.memories {
            if m.capacity_bytes == Some(0) {
                return Err((
                    format!(
                        "memory {}: capacity_bytes must be positive (None for a memory of unbounded size)",
                        m.name
                    ),
                    Some(vec!["memories".into(), format!("\"{}\"", m.name)]),
                ));
            }
        }
        Ok(())
    }

    /// The chain `a -> b -> ... -> a` when pricing compound `c` would come back to its own
    /// action (through other compounds or the built-in rules MAC = mul + add, AC = add).
    fn compound_cycle(&self, c: &Compound) -> Option<String> {
        fn walk(cm: &CostModel, op: Op, fmt: Fmt, path: &mut Vec<Op>) -> Option<String> {
            if let Some(i) = path.iter().position(|&p| p == op) {
                let chain: Vec<String> = path[i..]
                    .iter()
                    .chain(std::iter::once(&op))
                    .map(|o| o.to_string())
                    .collect();
                return Some(chain.join(" -> "));
            }
            // The first step is the compound itself; later ones stop at a direct price.
            if !path.is_empty() && cm.entry_index(op, fmt).is_some() {
                return None;
            }
            let parts: Vec<Op> = match cm.compound(op, fmt) {
                Some(c) => c.of.iter().map(|(p, _)| *p).collect(),
                None => match op {
                    Op::Mac => vec![Op::Mul, Op::Add],
                    Op::Ac => vec![Op::Add],
                    _ => vec![],
                },
            };
            path.push(op);
            for p in parts {
                if let Some(c) = walk(cm, p, fmt, path) {
                    return Some(c);
                }
            }
            path.pop();
            None
        }
        // A compound only prices its action when no direct entry does.
        if self.entry_index(c.action, c.format).is_some() {
            return None;
        }
        walk(self, c.action, c.format, &mut Vec::new())
    }

    fn validate_values(&self) -> std::result::Result<(), String> {
        let mut seen = BTreeMap::new();
        for e in &self.entries {
            e.energy
                .validate()
                .map_err(|m| format!("entry {}.{}: {m}", e.action, e.format))?;
            if matches!(e.energy, Energy::PerSize(..)) {
                return Err(format!(
                    "entry {}.{}: PerSize energies are for memory levels only",
                    e.action, e.format
                ));
            }
            if e.action.kind() == OpKind::Memory {
                return Err(format!(
                    "entry {}.{}: memory actions are priced through `memories`, not `entries`",
                    e.action, e.format
                ));
            }
            if seen.insert((e.action, e.format), ()).is_some() {
                return Err(format!("entry {}.{} is given twice", e.action, e.format));
            }
            if e.source.trim().is_empty() {
                return Err(format!("entry {}.{} has no source", e.action, e.format));
            }
        }
        for c in &self.compounds {
            if c.of.is_empty()
                || c.of
                    .iter()
                    .any(|(_, k)| !k.is_finite() || *k < 0.0 || *k > MAX_COMPOUND_FACTOR)
            {
                return Err(format!(
                    "compound {}.{}: needs parts with non-negative factors of at most {MAX_COMPOUND_FACTOR:e}",
                    c.action, c.format
                ));
            }
        }
        for m in &self.memories {
            m.read
                .validate()
                .map_err(|e| format!("memory {}: {e}", m.name))?;
            if let Some(w) = m.write {
                w.validate()
                    .map_err(|e| format!("memory {}: {e}", m.name))?;
            }
            if m.access_bytes == 0 {
                return Err(format!("memory {}: access_bytes must be positive", m.name));
            }
            if m.instances == Some(0) || m.banks == Some(0) {
                return Err(format!(
                    "memory {}: instances and banks must be positive",
                    m.name
                ));
            }
        }
        for p in &self.pins {
            match self.memories.iter().find(|m| m.name == p.level) {
                None => {
                    return Err(format!(
                        "pin of {:?} names unknown memory level `{}`",
                        p.class, p.level
                    ));
                }
                Some(m) if !m.may_hold(p.class) => {
                    return Err(format!(
                        "pin of {:?} names memory level `{}`, whose `holds` leaves that class out",
                        p.class, p.level
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Every directly priced entry and every memory level, one line each, as `hardware show`
    /// prints them: `path value unit source`.
    pub fn lines(&self) -> Vec<(String, String, String, String)> {
        let mut out = Vec::new();
        let show = |e: Energy| match e {
            Energy::Pj(v) => format!("{v}"),
            Energy::Range(lo, hi) => format!("{lo}..{hi}"),
            Energy::PerSize(a, b) => format!("{a} x size_bits + {b}"),
            e => uncertainty::show(e),
        };
        for e in &self.entries {
            out.push((
                format!("{}.{}", e.action, e.format),
                show(e.energy),
                "pJ".into(),
                e.source.clone(),
            ));
        }
        for c in &self.compounds {
            let parts: Vec<String> = c.of.iter().map(|(op, k)| format!("{k} {op}")).collect();
            out.push((
                format!("{}.{}", c.action, c.format),
                format!("= {}", parts.join(" + ")),
                "pJ".into(),
                c.source.clone(),
            ));
        }
        for m in &self.memories {
            let mut cap = match (m.capacity_bytes, m.instances) {
                (Some(c), Some(n)) => format!("{c} B x {n}"),
                (Some(c), None) => format!("{c} B"),
                (None, _) => "unbounded".into(),
            };
            if let Some(b) = m.banks {
                cap += &format!(", {b} banks");
            }
            if let Some(h) = &m.holds {
                let names: Vec<&str> = h.iter().map(|c| c.name()).collect();
                cap += &format!(", holds {}", names.join(" "));
            }
            out.push((
                format!("memory.{}.read", m.name),
                show(m.read),
                format!("pJ per {}-byte access ({cap})", m.access_bytes),
                m.source.clone(),
            ));
            if let Some(w) = m.write {
                out.push((
                    format!("memory.{}.write", m.name),
                    show(w),
                    format!("pJ per {}-byte access", m.access_bytes),
                    m.source.clone(),
                ));
            }
        }
        for p in &self.pins {
            out.push((
                format!("pin.{}", p.class.name()),
                p.level.clone(),
                "level".into(),
                String::new(),
            ));
        }
        for n in &self.not_priced {
            out.push((
                format!("{}", n.action),
                "not priced".into(),
                String::new(),
                n.reason.clone(),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_loads_and_has_sources() {
        for (name, _) in PRESETS {
            let hw = Hardware::load(name).unwrap();
            assert!(!hw.model.entries.is_empty(), "{name}");
            assert_eq!(hw.sha256.len(), 64);
        }
    }

    #[test]
    fn unknown_field_in_cost_model_is_reported_with_position() {
        let text = "CostModel(name: \"x\", description: \"d\", entries: [], colour: 3)";
        let err = Hardware::from_text(Path::new("bad.ron"), text, "bad".into()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("bad.ron:1:"), "{msg}");
        assert!(msg.contains("colour"), "{msg}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn negative_energy_is_refused() {
        let text = "CostModel(name: \"x\", description: \"d\", entries: [(action: add, format: \"fp32\", energy: Pj(-1.0), source: \"s\")])";
        let err = Hardware::from_text(Path::new("neg.ron"), text, "neg".into()).unwrap_err();
        assert!(err.to_string().contains("non-negative"), "{err}");
    }
}
