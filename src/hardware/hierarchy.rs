//! Weight traffic through a memory hierarchy, from the executed trace.
//!
//! The ledger files, per layer, the LRU stack distance of every weight row it read (see
//! `ledger::reuse`). Here those reads are served by a chain of levels, innermost first, ending
//! at the level the weights live in (the backing store: where the cost model pins them, else
//! the unbounded level, else the largest). Each on-chip level of the chain is a fully
//! associative LRU buffer of its capacity; the levels are inclusive. With Timeloop's accounting:
//! every byte read is read at the innermost level of the chain; a byte a level misses is filled
//! into it (a write there) and read from the next level out; the backing store is read for every
//! byte the last buffer misses.
//!
//! Three figures per layer:
//! - **upper**: the chain [placement level, backing store], i.e. every read served by the
//!   smallest level that holds all weights (no reuse in any smaller buffer), plus loading it;
//! - **mapped**: the cheapest chain over every subset of the smaller levels that may hold
//!   weights (a level the mapper leaves out is bypassed);
//! - **lower**: compulsory traffic, every distinct byte read once from the backing store.

use super::CostModel;
use super::unit::{Price, place};
use crate::ledger::{Ledger, Reuse, TensorClass};

/// How the traced weight reads of one layer are served.
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    /// Indices into `cm.memories`, innermost first; the last is the backing store.
    pub chain: Vec<usize>,
    pub energy: Price,
    /// Nominal energy per level (index into `cm.memories`), reads and fills.
    pub by_level: Vec<(usize, f64)>,
}

/// The three figures for one layer's traced weight reads.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightRange {
    pub lower: Price,
    pub mapped: Served,
    pub upper: Served,
}

/// The levels weight reads may pass through: the backing store last, smaller levels that may
/// hold weights before it, innermost (smallest) first. None when no level can hold the weights.
pub fn weight_chain(cm: &CostModel, ledger: &Ledger) -> Option<(Vec<usize>, usize)> {
    let backing = backing_store(cm, ledger)?;
    let cap_b = cm.memories[backing].total_capacity().unwrap_or(u64::MAX);
    // A buffer is filled by writes: a level without a write energy can only be the backing store.
    let mut inner: Vec<usize> = (0..cm.memories.len())
        .filter(|&i| i != backing)
        .filter(|&i| may_hold(cm, i, TensorClass::Weight))
        .filter(|&i| cm.memories[i].write.is_some())
        .filter(|&i| cm.memories[i].total_capacity().is_some_and(|c| c < cap_b))
        .collect();
    inner.sort_by_key(|&i| (cm.memories[i].total_capacity(), i));
    Some((inner, backing))
}

fn backing_store(cm: &CostModel, ledger: &Ledger) -> Option<usize> {
    if let Some(pin) = cm.pins.iter().find(|p| p.class == TensorClass::Weight) {
        return cm.memories.iter().position(|m| m.name == pin.level);
    }
    let need = ledger
        .footprint
        .get(&TensorClass::Weight)
        .copied()
        .unwrap_or(0);
    (0..cm.memories.len())
        .filter(|&i| may_hold(cm, i, TensorClass::Weight))
        .filter(|&i| cm.memories[i].total_capacity().is_none_or(|c| c >= need))
        .max_by_key(|&i| {
            (
                cm.memories[i].total_capacity().unwrap_or(u64::MAX),
                usize::MAX - i,
            )
        })
}

/// Whether level `i` may keep tensors of `class`.
pub fn may_hold(cm: &CostModel, i: usize, class: TensorClass) -> bool {
    cm.memories[i].may_hold(class)
}

/// Energy (nominal, min, max) of one byte read from (`write` false) or written to level `i`;
/// a per-size energy is taken at the size of one bank, or at the weight footprint for an
/// unbounded level.
fn per_byte(cm: &CostModel, ledger: &Ledger, i: usize, write: bool) -> (f64, f64, f64) {
    let m = &cm.memories[i];
    let e = match (write, m.write) {
        (true, Some(w)) => w,
        _ => m.read,
    };
    let size = m.bank_bytes().unwrap_or_else(|| {
        ledger
            .footprint
            .get(&TensorClass::Weight)
            .copied()
            .unwrap_or(0)
    });
    let e = e.at_bits(size as f64 * 8.0);
    let k = 1.0 / m.access_bytes as f64;
    (e.nominal() * k, e.min() * k, e.max() * k)
}

/// Serve `reuse` through `chain` (innermost first, backing store last).
pub fn serve(cm: &CostModel, ledger: &Ledger, reuse: &Reuse, chain: &[usize]) -> Served {
    let mut e = (0.0, 0.0, 0.0);
    let mut by_level = Vec::with_capacity(chain.len());
    let mut add = |level: usize, bytes: u64, write: bool, by_level: &mut Vec<(usize, f64)>| {
        if bytes == 0 {
            return;
        }
        let (n, lo, hi) = per_byte(cm, ledger, level, write);
        let b = bytes as f64;
        e.0 += b * n;
        e.1 += b * lo;
        e.2 += b * hi;
        match by_level.iter_mut().find(|(l, _)| *l == level) {
            Some((_, v)) => *v += b * n,
            None => by_level.push((level, b * n)),
        }
    };
    // Bytes reaching each level of the chain: all of them at the innermost, then what the
    // level before missed.
    let mut reaching = reuse.total();
    for (pos, &level) in chain.iter().enumerate() {
        add(level, reaching, false, &mut by_level);
        if pos + 1 == chain.len() {
            break;
        }
        // Copies of a per-PE level together hold distinct rows: the LRU sees their sum.
        let cap = cm.memories[level].total_capacity().unwrap_or(u64::MAX);
        let missed = reuse.missed(cap);
        add(level, missed, true, &mut by_level);
        reaching = missed;
    }
    let names: Vec<&str> = chain
        .iter()
        .map(|&i| cm.memories[i].name.as_str())
        .collect();
    Served {
        chain: chain.to_vec(),
        energy: Price {
            nominal: e.0,
            min: e.1,
            max: e.2,
            how: format!("LRU trace through {}", names.join(" > ")),
        },
        by_level,
    }
}

/// The three figures for one layer's traced weight reads; None when no level holds weights.
pub fn weight_range(cm: &CostModel, ledger: &Ledger, reuse: &Reuse) -> Option<WeightRange> {
    let (inner, backing) = weight_chain(cm, ledger)?;
    let placed = place(cm, &ledger.footprint, TensorClass::Weight)
        .and_then(|p| cm.memories.iter().position(|m| std::ptr::eq(m, p)))
        .unwrap_or(backing);
    let upper_chain: Vec<usize> = if placed == backing {
        vec![backing]
    } else {
        vec![placed, backing]
    };
    let upper = serve(cm, ledger, reuse, &upper_chain);
    let mut mapped = upper.clone();
    // Every subset of the smaller levels, in a fixed order, so ties resolve the same way.
    let n = inner.len().min(12);
    for mask in 0u32..(1 << n) {
        let mut chain: Vec<usize> = (0..n)
            .filter(|b| mask >> b & 1 == 1)
            .map(|b| inner[b])
            .collect();
        chain.push(backing);
        let s = serve(cm, ledger, reuse, &chain);
        if s.energy.nominal < mapped.energy.nominal {
            mapped = s;
        }
    }
    let (n, lo, hi) = per_byte(cm, ledger, backing, false);
    let cold = reuse.cold as f64;
    let lower = Price {
        nominal: cold * n,
        min: cold * lo,
        max: cold * hi,
        how: format!(
            "compulsory: each weight byte read once from {}",
            cm.memories[backing].name
        ),
    };
    Some(WeightRange {
        lower,
        mapped,
        upper,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Hardware;
    use crate::ledger::reuse::Lru;

    fn cyclic(rows: u32, row_bytes: u64, passes: usize) -> Reuse {
        let mut lru = Lru::default();
        let mut r = Reuse::default();
        for _ in 0..passes {
            lru.read_rows(0, rows, 0..rows, row_bytes, &mut r);
        }
        r
    }

    fn ledger_with_weights(bytes: u64) -> Ledger {
        let mut l = Ledger::new();
        l.footprint.insert(TensorClass::Weight, bytes);
        l
    }

    #[test]
    fn weights_that_fit_a_small_buffer_are_served_from_it() {
        let cm = Hardware::load("horowitz45").unwrap().model;
        // 6 KB of weights read 100 times: the 8 KB SRAM holds them after the first pass.
        let r = cyclic(24, 256, 100);
        let l = ledger_with_weights(6144);
        let w = weight_range(&cm, &l, &r).unwrap();
        let names: Vec<&str> = w
            .mapped
            .chain
            .iter()
            .map(|&i| cm.memories[i].name.as_str())
            .collect();
        assert_eq!(names, ["sram-8k", "dram"]);
        // 100 passes of 6144 B at 10 pJ / 8 B, one fill of 6144 B (write priced as read), one
        // DRAM pass at 1950 pJ / 8 B.
        let expect = 100.0 * 6144.0 * 10.0 / 8.0 + 6144.0 * 10.0 / 8.0 + 6144.0 * 1950.0 / 8.0;
        assert!((w.mapped.energy.nominal - expect).abs() < 1e-6, "{w:?}");
        assert!(w.lower.nominal <= w.mapped.energy.nominal);
        assert!(w.mapped.energy.nominal <= w.upper.energy.nominal);
    }

    #[test]
    fn a_buffer_too_small_for_the_cycle_is_bypassed() {
        let cm = Hardware::load("horowitz45").unwrap().model;
        // 64 KB cycling: thrashes 8 KB and 32 KB (LRU keeps nothing of a longer cycle), fits 1 MB.
        let r = cyclic(256, 256, 20);
        let l = ledger_with_weights(65536);
        let w = weight_range(&cm, &l, &r).unwrap();
        let names: Vec<&str> = w
            .mapped
            .chain
            .iter()
            .map(|&i| cm.memories[i].name.as_str())
            .collect();
        assert_eq!(names, ["sram-1m", "dram"]);
        assert_eq!(w.mapped, w.upper);
    }

    #[test]
    fn weights_bypass_a_level_that_may_not_hold_them_and_per_pe_copies_add_up() {
        let cm = Hardware::load("eyeriss65").unwrap().model;
        // 48 KB of weights: fits the 168 weight scratchpads together (64.5 KB), never the
        // global buffer, which keeps only inputs and outputs.
        let r = cyclic(192, 256, 50);
        let l = ledger_with_weights(49152);
        let (inner, backing) = weight_chain(&cm, &l).unwrap();
        let names: Vec<&str> = inner
            .iter()
            .chain([&backing])
            .map(|&i| cm.memories[i].name.as_str())
            .collect();
        assert_eq!(names, ["weights_spad", "dram"]);
        let w = weight_range(&cm, &l, &r).unwrap();
        assert_eq!(w.mapped.chain, [inner[0], backing]);
        let dram_only = serve(&cm, &l, &r, &[backing]);
        assert!(
            w.mapped.energy.nominal < 0.1 * dram_only.energy.nominal,
            "{w:?}"
        );
    }

    #[test]
    fn a_level_without_a_write_energy_is_never_filled() {
        let mut cm = Hardware::load("horowitz45").unwrap().model;
        for m in &mut cm.memories {
            if m.name == "sram-8k" {
                m.write = None;
            }
        }
        let l = ledger_with_weights(6144);
        let (inner, _) = weight_chain(&cm, &l).unwrap();
        assert!(inner.iter().all(|&i| cm.memories[i].name != "sram-8k"));
    }

    #[test]
    fn lower_mapped_upper_are_ordered_for_random_traces_on_every_preset_with_memory() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for (name, _) in crate::hardware::PRESETS {
            let cm = Hardware::load(name).unwrap().model;
            if cm.memories.is_empty() {
                continue;
            }
            for _ in 0..20 {
                let rows = rng.random_range(1..400u32);
                let row_bytes = 4 * rng.random_range(1..300u64);
                let mut lru = Lru::default();
                let mut r = Reuse::default();
                for _ in 0..rng.random_range(1..30) {
                    let n = rng.random_range(0..rows);
                    let picks: Vec<u32> = (0..n).map(|_| rng.random_range(0..rows)).collect();
                    lru.read_rows(0, rows, picks.into_iter(), row_bytes, &mut r);
                }
                if r.is_empty() {
                    continue;
                }
                let l = ledger_with_weights(rows as u64 * row_bytes);
                let Some(w) = weight_range(&cm, &l, &r) else {
                    continue;
                };
                let (lo, mid, hi) = (
                    w.lower.nominal,
                    w.mapped.energy.nominal,
                    w.upper.energy.nominal,
                );
                assert!(
                    lo <= mid * (1.0 + 1e-12) && mid <= hi * (1.0 + 1e-12),
                    "{name}: {lo} {mid} {hi}"
                );
            }
        }
    }
}
