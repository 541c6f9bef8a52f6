//! Passes priced by a loop-nest mapping: a layer applied to many tokens at once (a vision
//! transformer's projections) and full attention. The engine files each pass's shape
//! (`ledger::Work`); here the shape becomes a `nest::Problem`, the cost model's memory levels
//! become a hierarchy, and `mapper::search` picks the cheapest mapping (tiling, loop order,
//! bypass), counted as Timeloop counts. Every tensor of a pass starts and ends in the outermost
//! level, as in Timeloop's per-layer evaluation.
//!
//! Full attention is mapped as one fused nest over queries, keys and channels whose scores stay
//! next to the arithmetic (FlashAttention's dataflow): q and the output are reused across keys,
//! k and v across queries.

use std::collections::HashMap;

use super::CostModel;
use super::mapper;
use super::nest::{self, DataSpace, Dim, Level, Problem};
use crate::ledger::{TensorClass, Work};

/// The mapped energy of one pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PassEnergy {
    /// (nominal, min, max) pJ.
    pub mapped: (f64, f64, f64),
    /// Nominal pJ per tensor class and per memory level (index into `cm.memories`).
    pub by_class: Vec<(TensorClass, f64)>,
    pub by_level: Vec<(usize, f64)>,
    /// Compulsory traffic: every tensor through the outermost level once.
    pub lower: f64,
    /// The mapping, outermost level first, as `LEVEL[loops]` (`mapping_text`).
    pub mapping: String,
    /// True when the scenario pinned it (not searched).
    pub pinned: bool,
}

/// The problem of a pass and the class of each of its data spaces.
pub fn problem(w: &Work) -> (Problem, Vec<TensorClass>) {
    let dim = |name: &str, bound: u64| Dim {
        name: name.into(),
        bound,
    };
    let space = |name: &str, axes: Vec<Vec<(usize, u64)>>, output: bool, bytes: u32| DataSpace {
        name: name.into(),
        axes,
        output,
        word_bits: 8 * bytes,
    };
    match *w {
        Work::Matmul { n, c, k, bytes } => (
            Problem {
                dims: vec![dim("N", n), dim("C", c), dim("K", k)],
                spaces: vec![
                    space("weights", vec![vec![(1, 1)], vec![(2, 1)]], false, bytes),
                    space("inputs", vec![vec![(0, 1)], vec![(1, 1)]], false, bytes),
                    space("outputs", vec![vec![(0, 1)], vec![(2, 1)]], true, bytes),
                ],
            },
            vec![
                TensorClass::Weight,
                TensorClass::Activation,
                TensorClass::Activation,
            ],
        ),
        Work::Attention { n, m, c, bytes, .. } => (
            Problem {
                dims: vec![dim("N", n), dim("M", m), dim("C", c)],
                spaces: vec![
                    space("q", vec![vec![(0, 1)], vec![(2, 1)]], false, bytes),
                    space("k", vec![vec![(1, 1)], vec![(2, 1)]], false, bytes),
                    space("v", vec![vec![(1, 1)], vec![(2, 1)]], false, bytes),
                    space("out", vec![vec![(0, 1)], vec![(2, 1)]], true, bytes),
                ],
            },
            vec![TensorClass::Activation; 4],
        ),
        Work::Conv {
            c,
            k,
            r,
            s,
            sh,
            sw,
            bytes,
            n,
            ..
        } => {
            // One group; the input box spans the padded input the kernel visits (the nest has
            // no padding, as Timeloop's has none).
            let (p, q) = w.conv_out();
            (
                Problem {
                    dims: vec![
                        dim("K", k),
                        dim("C", c),
                        dim("P", p),
                        dim("Q", q),
                        dim("R", r),
                        dim("S", s),
                        // Images last, so a pass of one image maps as it did without the dim.
                        dim("N", n),
                    ],
                    spaces: vec![
                        space(
                            "weights",
                            vec![vec![(0, 1)], vec![(1, 1)], vec![(4, 1)], vec![(5, 1)]],
                            false,
                            bytes,
                        ),
                        space(
                            "inputs",
                            vec![
                                vec![(6, 1)],
                                vec![(1, 1)],
                                vec![(2, sh), (4, 1)],
                                vec![(3, sw), (5, 1)],
                            ],
                            false,
                            bytes,
                        ),
                        space(
                            "outputs",
                            vec![vec![(6, 1)], vec![(0, 1)], vec![(2, 1)], vec![(3, 1)]],
                            true,
                            bytes,
                        ),
                    ],
                },
                vec![
                    TensorClass::Weight,
                    TensorClass::Activation,
                    TensorClass::Activation,
                ],
            )
        }
    }
}

/// How many times a pass's problem is repeated (attention heads are independent problems).
fn repeats(w: &Work) -> u64 {
    match *w {
        Work::Matmul { .. } => 1,
        Work::Attention { heads, .. } => heads,
        Work::Conv { groups, .. } => groups,
    }
}

/// The cost model's levels as a hierarchy for `classes`, innermost first, with the index of
/// each in `cm.memories`: levels ordered by total capacity, the unbounded (or largest) last.
/// A level keeps a data space when it may hold its class and can be written (filled); the
/// outermost keeps everything.
pub fn hierarchy(
    cm: &CostModel,
    word_bytes: u32,
    classes: &[TensorClass],
) -> (Vec<Level>, Vec<usize>) {
    let mut order: Vec<usize> = (0..cm.memories.len()).collect();
    order.sort_by_key(|&i| (cm.memories[i].total_capacity().unwrap_or(u64::MAX), i));
    let last = order.len().saturating_sub(1);
    let wb = word_bytes.max(1) as u64;
    let levels = order
        .iter()
        .enumerate()
        .map(|(pos, &i)| {
            let m = &cm.memories[i];
            let at = |e: super::Energy| {
                let size = m.bank_bytes().unwrap_or(0);
                e.at_bits(size as f64 * 8.0).nominal()
            };
            let block = (m.access_bytes as u64 / wb).max(1);
            // An access narrower than a word moves a word in several accesses.
            let per_word = (wb as f64 / m.access_bytes as f64).max(1.0);
            let read = at(m.read) * per_word;
            let write = m.write.map(|w| at(w) * per_word);
            Level {
                name: m.name.clone(),
                capacity_words: m.capacity_bytes.map(|c| c / wb),
                block_words: block,
                instances: m.instances.unwrap_or(1),
                read_pj: read,
                write_pj: write.unwrap_or(read),
                update_pj: write.unwrap_or(read),
                keeps: classes
                    .iter()
                    .map(|&c| pos == last || (m.may_hold(c) && write.is_some()))
                    .collect(),
            }
        })
        .collect();
    (levels, order)
}

/// Whether some mapping of the pass exists: the outermost level holds every tensor of the pass
/// whole (inner levels may bypass, so nothing else can rule every mapping out). The error names
/// the level and the sizes.
pub fn check_fits(cm: &CostModel, w: &Work) -> Result<(), String> {
    let (p, classes) = problem(w);
    let (levels, _) = hierarchy(cm, p.spaces[0].word_bits / 8, &classes);
    outermost_fits(&p, &levels)
}

fn outermost_fits(p: &Problem, levels: &[Level]) -> Result<(), String> {
    let top = levels
        .last()
        .ok_or_else(|| "the cost model has no memory levels".to_string())?;
    let Some(cap) = top.capacity_words else {
        return Ok(());
    };
    let need: u64 = p
        .spaces
        .iter()
        .map(|s| nest::space_words(p, s))
        .fold(0u64, u64::saturating_add);
    if need > cap {
        let word_bytes = p.spaces[0].word_bits / 8;
        let sizes: Vec<String> = p
            .spaces
            .iter()
            .map(|s| format!("{} {}", s.name, nest::space_words(p, s)))
            .collect();
        return Err(format!(
            "no mapping fits: the outermost level {} holds {cap} words of {word_bytes} B, the pass's tensors need {need} ({})",
            top.name,
            sizes.join(", ")
        ));
    }
    Ok(())
}

/// Map one pass onto the cost model's memory levels: the mapper's choice, or `pinned` (a
/// mapping in text form, checked against the pass and the levels).
pub fn map_pass(cm: &CostModel, w: &Work, pinned: Option<&str>) -> Result<PassEnergy, String> {
    let (p, classes) = problem(w);
    let word = p.spaces[0].word_bits / 8;
    let (levels, order) = hierarchy(cm, word, &classes);
    outermost_fits(&p, &levels)?;
    let mut opts = mapper::Options::default();
    if let Work::Conv { .. } = w {
        // The kernel window (R, S) whole at or below the lowest level that holds weights.
        let dim = |name: &str| p.dims.iter().position(|d| d.name == name);
        let weights = classes.iter().position(|&c| c == TensorClass::Weight);
        if let (Some(r), Some(s), Some(t)) = (dim("R"), dim("S"), weights) {
            opts.whole_at = Some((vec![r, s], t));
        }
    }
    let (mapping, stats) = match pinned {
        Some(text) => {
            let m = super::mapping_text::parse(text, &p, &levels)?;
            let stats = nest::analyze(&p, &levels, &m)?;
            (m, stats)
        }
        None => mapper::search_with(&p, &levels, &[], &opts)?,
    };
    let reps = repeats(w) as f64;
    let mut by_class: Vec<(TensorClass, f64)> = Vec::new();
    let mut by_level = Vec::new();
    let (mut lo, mut hi) = (0.0, 0.0);
    for (pos, ls) in stats.levels.iter().enumerate() {
        let i = order[pos];
        let m = &cm.memories[i];
        // Scale by the cost model's own spread of this level's energies (e.g. a DRAM range).
        let r = m.read.nominal();
        let (kmin, kmax) = if r > 0.0 {
            (m.read.min() / r, m.read.max() / r)
        } else {
            (1.0, 1.0)
        };
        lo += ls.energy_pj * kmin * reps;
        hi += ls.energy_pj * kmax * reps;
        by_level.push((i, ls.energy_pj * reps));
        for (t, pj) in ls.per_space_pj.iter().enumerate() {
            match by_class.iter_mut().find(|(c, _)| *c == classes[t]) {
                Some((_, v)) => *v += pj * reps,
                None => by_class.push((classes[t], pj * reps)),
            }
        }
    }
    let lower = nest::compulsory(&p, &levels).energy_pj * reps;
    let mapping = super::mapping_text::format(&p, &levels, &mapping);
    Ok(PassEnergy {
        mapped: (stats.energy_pj * reps, lo, hi),
        by_class,
        by_level,
        lower,
        mapping,
        pinned: pinned.is_some(),
    })
}

/// Mapped passes of one pricing, each shape (and pinned mapping) mapped once.
#[derive(Default)]
pub struct Cache(HashMap<(Work, Option<String>), Result<PassEnergy, String>>);

impl Cache {
    pub fn get(
        &mut self,
        cm: &CostModel,
        w: &Work,
        pinned: Option<&str>,
    ) -> &Result<PassEnergy, String> {
        self.0
            .entry((*w, pinned.map(String::from)))
            .or_insert_with(|| map_pass(cm, w, pinned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::Hardware;

    #[test]
    fn weights_of_a_many_token_pass_are_read_from_dram_about_once() {
        let cm = Hardware::load("horowitz45").unwrap().model;
        // 3136 tokens x 64 -> 512: 128 KB of fp32 weights, far larger than the 8 KB SRAM.
        let w = Work::Matmul {
            n: 3136,
            c: 64,
            k: 512,
            bytes: 4,
        };
        let e = map_pass(&cm, &w, None).unwrap();
        // Streamed per token from DRAM, as a model whose weights fit no SRAM is placed.
        let streamed = 3136.0 * 64.0 * 512.0 * 4.0 / 8.0 * 1950.0;
        assert!(e.mapped.0 < 0.05 * streamed, "{e:?}");
        assert!(e.lower <= e.mapped.0);
        let dram = cm.memories.iter().position(|m| m.name == "dram").unwrap();
        let dram_pj = e.by_level.iter().find(|(i, _)| *i == dram).unwrap().1;
        // Weights, inputs and outputs once each through DRAM, at 1950 pJ per 8 bytes.
        let once = (64.0 * 512.0 + 3136.0 * 64.0 + 3136.0 * 512.0) * 4.0 / 8.0 * 1950.0;
        assert!(dram_pj <= 1.01 * once, "{dram_pj} vs {once}");
    }

    #[test]
    fn a_pinned_mapping_whose_tiles_overflow_a_level_names_the_level_and_the_sizes() {
        let cm = Hardware::load("horowitz45").unwrap().model;
        let w = Work::Matmul {
            n: 3136,
            c: 64,
            k: 512,
            bytes: 4,
        };
        let e = map_pass(&cm, &w, Some("dram[] sram-8k[N3136 C64 K512]")).unwrap_err();
        assert!(
            e.contains("level sram-8k") && e.contains("capacity is 2048"),
            "{e}"
        );
    }

    #[test]
    fn a_batch_of_images_reads_a_convolutions_weights_once_per_batch() {
        let cm = Hardware::load("horowitz45").unwrap().model;
        // PVTv2's first patch embedding: 7 x 7, stride 4, 3 -> 64 channels on 224 x 224.
        let conv = |n| Work::Conv {
            groups: 1,
            c: 3,
            k: 64,
            h: 224,
            w: 224,
            r: 7,
            s: 7,
            sh: 4,
            sw: 4,
            ph: 3,
            pw: 3,
            bytes: 4,
            n,
        };
        let one = map_pass(&cm, &conv(1), None).unwrap();
        let eight = map_pass(&cm, &conv(8), None).unwrap();
        let dram = cm.memories.iter().position(|m| m.name == "dram").unwrap();
        let at = |e: &PassEnergy| e.by_level.iter().find(|(i, _)| *i == dram).unwrap().1;
        let weights = |e: &PassEnergy| {
            e.by_class
                .iter()
                .find(|(c, _)| *c == TensorClass::Weight)
                .unwrap()
                .1
        };
        assert!(eight.mapped.0 <= 8.0 * one.mapped.0, "{eight:?} vs {one:?}");
        assert!(at(&eight) <= 8.0 * at(&one) * 1.0001);
        // Weight energy grows by less than the eight images do (reused across them).
        assert!(
            weights(&eight) < 8.0 * weights(&one),
            "{eight:?} vs {one:?}"
        );
    }

    #[test]
    fn full_attention_reads_keys_and_values_far_less_than_once_per_pair() {
        let cm = Hardware::load("horowitz45").unwrap().model;
        let w = Work::Attention {
            heads: 1,
            n: 3136,
            m: 3136,
            c: 32,
            bytes: 4,
        };
        let e = map_pass(&cm, &w, None).unwrap();
        // No reuse: k and v read once per query-key pair from the 1 MB SRAM.
        let pairs = 2.0 * 3136.0 * 3136.0 * 32.0 * 4.0 / 8.0 * 100.0;
        assert!(e.mapped.0 < 0.3 * pairs, "{e:?}");
    }
}
