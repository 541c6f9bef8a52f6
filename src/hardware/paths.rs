//! Cost-model paths: every priced number of a cost model is addressable by the path
//! `picojoule hardware show` prints for it: `add.fp32`, `mul.int8`, `memory.dram.read`,
//! `memory.sram-8k.write`, ... Sweeps and uncertainty studies read and change cost models
//! through these paths only, so the cost-model structs need not know about sweeps.

use super::{CostModel, Energy};

/// What a path points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leaf {
    /// `cm.entries[i]`
    Entry(usize),
    /// `cm.memories[i].read`
    MemoryRead(usize),
    /// `cm.memories[i].write` (the read energy when absent)
    MemoryWrite(usize),
    /// `cm.memories[i].capacity_bytes`, as a number (a size, not an energy): changing it may
    /// change placements, traced hits and mappings, so points that do are priced in full.
    MemoryCapacity(usize),
    /// `cm.memories[i].access_bytes` (the word width): changes accesses per byte and the
    /// mapper's block size; priced in full.
    MemoryAccessBytes(usize),
    /// `cm.memories[i].banks` (1 when absent): changes the size a per-size energy is taken at;
    /// priced in full.
    MemoryBanks(usize),
}

impl Leaf {
    /// A size or count rather than an energy: a point that changes it is priced in full.
    pub fn is_shape(self) -> bool {
        matches!(
            self,
            Leaf::MemoryCapacity(_) | Leaf::MemoryAccessBytes(_) | Leaf::MemoryBanks(_)
        )
    }
}

/// The largest word width or bank count a sweep may set.
pub const MAX_SHAPE_COUNT: f64 = u32::MAX as f64;

/// Every path that `set` accepts, in `hardware show` order. A memory level's `write` is listed
/// even when the file leaves it out (setting it creates it).
pub fn settable_paths(cm: &CostModel) -> Vec<String> {
    let mut out: Vec<String> = cm
        .entries
        .iter()
        .map(|e| format!("{}.{}", e.action, e.format))
        .collect();
    for m in &cm.memories {
        out.push(format!("memory.{}.read", m.name));
        out.push(format!("memory.{}.write", m.name));
        if m.capacity_bytes.is_some() {
            out.push(format!("memory.{}.capacity_bytes", m.name));
        }
        out.push(format!("memory.{}.access_bytes", m.name));
        out.push(format!("memory.{}.banks", m.name));
    }
    out
}

fn unknown(cm: &CostModel, path: &str, why: &str) -> String {
    format!(
        "{why} `{path}` in cost model `{}` (valid paths: {})",
        cm.name,
        settable_paths(cm).join(", ")
    )
}

/// Where `path` is `ac.FMT` and the cost model prices the accumulate through the built-in rule
/// AC = add (no `ac` entry or compound of its own), give it an `ac.FMT` entry at the add's
/// energy, so that a sweep can move the accumulate's price while MAC = mul + add keeps the
/// add's. Pricing is unchanged until the new entry is set. True when an entry was added; an
/// `ac` path the cost model cannot price (no add in that format) is an error naming it.
pub fn split_ac(cm: &mut CostModel, path: &str) -> Result<bool, String> {
    use crate::ledger::{Fmt, Op};
    let Some(fmt) = path.strip_prefix("ac.") else {
        return Ok(false);
    };
    let Ok(fmt) = fmt.parse::<Fmt>() else {
        return Ok(false);
    };
    let own = cm
        .entries
        .iter()
        .any(|e| e.action == Op::Ac && e.format == fmt);
    if own || cm.compound(Op::Ac, fmt).is_some() {
        return Ok(false);
    }
    let energy = match cm.entry_index(Op::Add, fmt) {
        Some(i) => cm.entries[i].energy,
        None => match super::price::op_price(cm, Op::Add, fmt, 0) {
            Some(p) => Energy::Pj(p.nominal),
            None => {
                return Err(unknown(
                    cm,
                    path,
                    "no add price to start the accumulate from for",
                ));
            }
        },
    };
    cm.entries.push(super::Entry {
        action: Op::Ac,
        format: fmt,
        energy,
        source: format!("= add.{fmt} (the accumulate priced on its own for a sweep)"),
    });
    Ok(true)
}

/// Resolve a path to the number it names.
pub fn resolve(cm: &CostModel, path: &str) -> Result<Leaf, String> {
    if let Some(rest) = path.strip_prefix("memory.") {
        let (name, which) = rest
            .rsplit_once('.')
            .ok_or_else(|| unknown(cm, path, "incomplete memory path"))?;
        let i = cm
            .memories
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| unknown(cm, path, "no memory level in"))?;
        return match which {
            "read" => Ok(Leaf::MemoryRead(i)),
            "write" => Ok(Leaf::MemoryWrite(i)),
            "capacity_bytes" if cm.memories[i].capacity_bytes.is_some() => {
                Ok(Leaf::MemoryCapacity(i))
            }
            "capacity_bytes" => Err(unknown(
                cm,
                path,
                "an unbounded level has no capacity to set:",
            )),
            "access_bytes" => Ok(Leaf::MemoryAccessBytes(i)),
            "banks" => Ok(Leaf::MemoryBanks(i)),
            _ => Err(unknown(
                cm,
                path,
                "a memory level has `read`, `write`, `capacity_bytes`, `access_bytes` and `banks`, not",
            )),
        };
    }
    if let Some(i) = cm
        .entries
        .iter()
        .position(|e| format!("{}.{}", e.action, e.format) == path)
    {
        return Ok(Leaf::Entry(i));
    }
    if cm
        .compounds
        .iter()
        .any(|c| format!("{}.{}", c.action, c.format) == path)
    {
        return Err(unknown(
            cm,
            path,
            "a compound action is priced from its parts; set one of its parts instead of",
        ));
    }
    Err(unknown(cm, path, "no priced entry"))
}

/// The energy at a path. A memory level without a `write` energy returns its read energy (the
/// value a sweep starts a new write energy from; pricing leaves such writes unpriced).
pub fn get(cm: &CostModel, path: &str) -> Result<Energy, String> {
    Ok(get_leaf(cm, resolve(cm, path)?))
}

pub fn get_leaf(cm: &CostModel, leaf: Leaf) -> Energy {
    match leaf {
        Leaf::Entry(i) => cm.entries[i].energy,
        Leaf::MemoryRead(i) => cm.memories[i].read,
        Leaf::MemoryWrite(i) => cm.memories[i].write.unwrap_or(cm.memories[i].read),
        Leaf::MemoryCapacity(i) => Energy::Pj(cm.memories[i].capacity_bytes.unwrap_or(0) as f64),
        Leaf::MemoryAccessBytes(i) => Energy::Pj(cm.memories[i].access_bytes as f64),
        Leaf::MemoryBanks(i) => Energy::Pj(cm.memories[i].banks.unwrap_or(1) as f64),
    }
}

/// Set the energy at a path. Setting the missing `write` of a memory level creates it; setting a
/// compound or a missing entry is an error listing the valid paths.
pub fn set(cm: &mut CostModel, path: &str, value: Energy) -> Result<(), String> {
    value.validate().map_err(|e| format!("{path}: {e}"))?;
    let leaf = resolve(cm, path)?;
    shape_check(leaf, value.nominal()).map_err(|e| format!("{path}: {e}"))?;
    set_leaf(cm, leaf, value);
    Ok(())
}

/// A size leaf takes a number of at least 1 (`access_bytes` and `banks`: whole, at most
/// `MAX_SHAPE_COUNT`); energies are not checked here.
pub fn shape_check(leaf: Leaf, x: f64) -> Result<(), String> {
    let what = match leaf {
        Leaf::MemoryCapacity(_) => "a capacity is at least 1 byte",
        Leaf::MemoryAccessBytes(_) => "an access moves a whole number of 1 to 4294967295 bytes",
        Leaf::MemoryBanks(_) => "a level has a whole number of 1 to 4294967295 banks",
        _ => return Ok(()),
    };
    let max = if matches!(leaf, Leaf::MemoryCapacity(_)) {
        f64::MAX
    } else {
        MAX_SHAPE_COUNT
    };
    // A capacity is rounded to whole bytes; a width or a bank count must be whole already.
    let whole = matches!(leaf, Leaf::MemoryCapacity(_)) || x.fract() == 0.0;
    if !(1.0..=max).contains(&x) || !whole {
        return Err(format!("{what} (found {x})"));
    }
    Ok(())
}

/// `set` with a plain picojoule value.
pub fn set_pj(cm: &mut CostModel, path: &str, pj: f64) -> Result<(), String> {
    set(cm, path, Energy::Pj(pj))
}

pub fn set_leaf(cm: &mut CostModel, leaf: Leaf, value: Energy) {
    match leaf {
        Leaf::Entry(i) => cm.entries[i].energy = value,
        Leaf::MemoryRead(i) => cm.memories[i].read = value,
        Leaf::MemoryWrite(i) => cm.memories[i].write = Some(value),
        Leaf::MemoryCapacity(i) => {
            if cm.memories[i].capacity_bytes.is_some() {
                cm.memories[i].capacity_bytes = Some(value.nominal().round().max(1.0) as u64);
            }
        }
        Leaf::MemoryAccessBytes(i) => {
            cm.memories[i].access_bytes = value.nominal().round().clamp(1.0, MAX_SHAPE_COUNT) as u32
        }
        Leaf::MemoryBanks(i) => {
            cm.memories[i].banks = Some(value.nominal().round().clamp(1.0, MAX_SHAPE_COUNT) as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Hardware;

    fn horowitz() -> CostModel {
        Hardware::load("horowitz45").unwrap().model
    }

    #[test]
    fn every_path_hardware_show_prints_for_a_number_can_be_read() {
        let cm = horowitz();
        for (path, value, _, _) in cm.lines() {
            if path.starts_with("pin.") || value.starts_with('=') || value == "not priced" {
                continue;
            }
            assert!(get(&cm, &path).is_ok(), "{path}");
        }
        assert_eq!(get(&cm, "add.fp32").unwrap(), Energy::Pj(0.9));
        assert_eq!(
            get(&cm, "memory.dram.read").unwrap(),
            Energy::Range(1300.0, 2600.0)
        );
    }

    #[test]
    fn the_accumulate_gets_its_own_price_apart_from_the_add_inside_mac() {
        use crate::hardware::price::op_price;
        use crate::ledger::{FP32, Op};
        let mut cm = horowitz();
        assert!(
            resolve(&cm, "ac.fp32").is_err(),
            "horowitz45 prices AC as add"
        );
        assert!(split_ac(&mut cm, "ac.fp32").unwrap());
        // Unchanged until set.
        let ac = op_price(&cm, Op::Ac, FP32, 0).unwrap().nominal;
        assert_eq!(ac, op_price(&cm, Op::Add, FP32, 0).unwrap().nominal);
        let mac = op_price(&cm, Op::Mac, FP32, 0).unwrap().nominal;
        set_pj(&mut cm, "ac.fp32", 0.01).unwrap();
        assert_eq!(op_price(&cm, Op::Ac, FP32, 0).unwrap().nominal, 0.01);
        assert_eq!(op_price(&cm, Op::Mac, FP32, 0).unwrap().nominal, mac);
        // A second call adds nothing.
        assert!(!split_ac(&mut cm, "ac.fp32").unwrap());
        assert!(!split_ac(&mut cm, "add.fp32").unwrap());
    }

    #[test]
    fn setting_a_value_changes_only_that_entry() {
        let mut cm = horowitz();
        let before = cm.clone();
        set_pj(&mut cm, "mul.int8", 0.25).unwrap();
        assert_eq!(get(&cm, "mul.int8").unwrap(), Energy::Pj(0.25));
        assert_eq!(
            get(&cm, "add.int8").unwrap(),
            get(&before, "add.int8").unwrap()
        );
    }

    #[test]
    fn setting_a_missing_memory_write_creates_it() {
        let mut cm = horowitz();
        cm.memories[0].write = None;
        assert_eq!(get(&cm, "memory.sram-8k.write").unwrap(), Energy::Pj(10.0));
        set_pj(&mut cm, "memory.sram-8k.write", 12.0).unwrap();
        assert_eq!(cm.memories[0].write, Some(Energy::Pj(12.0)));
    }

    #[test]
    fn word_width_and_banks_are_settable_sizes_checked_as_whole_numbers() {
        let mut cm = horowitz();
        set_pj(&mut cm, "memory.sram-1m.access_bytes", 32.0).unwrap();
        set_pj(&mut cm, "memory.sram-1m.banks", 16.0).unwrap();
        let m = &cm.memories[2];
        assert_eq!(
            (m.name.as_str(), m.access_bytes, m.banks),
            ("sram-1m", 32, Some(16))
        );
        assert_eq!(get(&cm, "memory.sram-1m.banks").unwrap(), Energy::Pj(16.0));
        assert_eq!(get(&cm, "memory.dram.banks").unwrap(), Energy::Pj(1.0));
        for (path, x) in [
            ("memory.sram-1m.access_bytes", 0.0),
            ("memory.sram-1m.access_bytes", 2.5),
            ("memory.sram-1m.banks", 1e10),
        ] {
            let e = set_pj(&mut cm, path, x).unwrap_err();
            assert!(e.contains(path) && e.contains("whole number"), "{e}");
        }
        assert!(resolve(&cm, "memory.dram.access_bytes").unwrap().is_shape());
        assert!(!resolve(&cm, "memory.dram.read").unwrap().is_shape());
    }

    #[test]
    fn compound_and_missing_paths_are_refused_with_the_valid_ones_listed() {
        let mut cm = horowitz();
        let e = set_pj(&mut cm, "neuron_update.any", 1.0).unwrap_err();
        assert!(e.contains("compound") && e.contains("add.fp32"), "{e}");
        let e = set_pj(&mut cm, "add.fp64", 1.0).unwrap_err();
        assert!(
            e.contains("no priced entry") && e.contains("memory.dram.read"),
            "{e}"
        );
        let e = set_pj(&mut cm, "memory.l9.read", 1.0).unwrap_err();
        assert!(e.contains("no memory level"), "{e}");
        assert!(set_pj(&mut cm, "add.fp32", -1.0).is_err());
    }
}
