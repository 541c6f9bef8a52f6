//! Lower bounds of the energy: of every extension of a partial choice (`partial_bound`), and the
//! order-free share of a sliding-window tile (`sliding_bound`); and the per-access energy they and
//! the closed form share.

use smallvec::SmallVec;

use super::*;

/// One instance's access energy at a level that takes in `traffic` words for its children and is
/// filled with `own` words, `part` of them its share of the data space. For an output, every word
/// taken in is an update, and reads and fills leave out the first pass over its share (no partial
/// sum exists yet).
pub(super) fn access_pj(lv: &Level, output: bool, traffic: u64, own: u64, part: u64) -> f64 {
    let (r, f, u) = if output {
        (
            traffic.saturating_sub(part),
            own.saturating_sub(part),
            traffic,
        )
    } else {
        (traffic, own, 0)
    };
    let b = lv.block_words.max(1);
    r.div_ceil(b) as f64 * lv.read_pj
        + f.div_ceil(b) as f64 * lv.write_pj
        + u.div_ceil(b) as f64 * lv.update_pj
}

/// A lower bound above the best energy (with a margin for rounding: the bound and the energy
/// are summed in different orders).
pub(super) fn above(best: f64, bound: f64) -> bool {
    bound > best * (1.0 + 1e-12)
}

/// (energy per word read, energy of the fill from above) of each level that may feed another.
pub(super) type Feeds = SmallVec<[(f64, f64); 4]>;

/// A bound's share of each data space.
pub(super) type Terms = SmallVec<[f64; 8]>;

pub(super) fn one_axis_per_dim(s: &nest::DataSpace, dims: usize) -> bool {
    (0..dims).all(|d| {
        s.axes
            .iter()
            .filter(|a| a.iter().any(|&(x, _)| x == d))
            .count()
            <= 1
    })
}

/// Words in the union of the tiles of `s` (boxes of extents `ext`) over every translation by
/// `count[d]` steps of each dim d, one tile span apart: the loops above a tile visit exactly
/// these, whatever their order and split across levels. Axes are independent when every dim
/// indexes one axis; per axis, translations are merged by increasing step, keeping the set's
/// size and span: copies closer than the span of a gap-free set stay gap-free, copies farther
/// apart are disjoint, and otherwise each copy adds at least its last word.
/// `one_axis`: every dim indexes at most one axis of `s` (`one_axis_per_dim`).
pub(super) fn union_words(s: &nest::DataSpace, one_axis: bool, ext: &[u64], count: &[u64]) -> u64 {
    if !one_axis {
        return tile_words(s, ext);
    }
    s.axes
        .iter()
        .map(|axis| {
            let span0 = axis
                .iter()
                .map(|&(d, c)| c.saturating_mul(ext[d].saturating_sub(1)))
                .fold(1u64, |a, b| a.saturating_add(b));
            let mut steps: SmallVec<[(u64, u64); 4]> = axis
                .iter()
                .filter(|&&(d, c)| c > 0 && count[d] > 1)
                .map(|&(d, c)| (c.saturating_mul(ext[d]), count[d]))
                .collect();
            steps.sort_unstable();
            let (mut size, mut span, mut solid) = (span0, span0, true);
            for (step, g) in steps {
                let reach = step.saturating_mul(g - 1);
                if solid && span >= step {
                    size = reach.saturating_add(span);
                } else if span <= step {
                    size = size.saturating_mul(g);
                    solid = false;
                } else {
                    size = size.saturating_add(g - 1);
                    solid = false;
                }
                span = reach.saturating_add(span);
            }
            size
        })
        .fold(1u64, |a, b| a.saturating_mul(b))
}

impl Ctx<'_> {
    /// `feeds[t]`, per `top`.
    pub(super) fn feeds_of(&self, t: usize) -> Vec<Feeds> {
        let n = self.arch.len();
        let s = &self.p.spaces[t];
        let whole = self.whole[t] as f64;
        let per_word = |j: usize, write: bool| {
            let lv = &self.arch[j];
            let pj = if write {
                lv.write_pj
            } else if s.output {
                lv.update_pj
            } else {
                lv.read_pj
            };
            pj / lv.block_words.max(1) as f64
        };
        (0..n)
            .map(|top| {
                (top + 1..n)
                    .filter(|&j| self.arch[j].keeps[t])
                    .map(|j| {
                        let refill = (j + 1..n)
                            .filter(|&k| self.arch[k].keeps[t])
                            .map(|k| per_word(k, false))
                            .fold(f64::INFINITY, f64::min);
                        let fill = if refill.is_finite() {
                            whole * (per_word(j, true) + refill)
                        } else {
                            0.0
                        };
                        (per_word(j, false), fill)
                    })
                    .collect()
            })
            .collect()
    }

    /// A lower bound of the energy of every choice that extends `c`'s levels 0..=`top` (`rem` is
    /// what the levels above must still iterate, in time or across instances: a fan-out above
    /// multiplies the instances by what it takes from each instance's loops). Per data space:
    /// the fills and reads of the levels fixed so far with loops placed as the order bound places
    /// them, the loops above `top` counted wherever they may go, and the reads of the unknown
    /// level that feeds the highest kept one at the cheapest price any level above could charge.
    pub(super) fn partial_bound(&self, c: &Choice, top: usize, rem: &[u64]) -> f64 {
        self.partial_terms(c, top, rem).iter().sum()
    }

    /// Per data space, `partial_bound` at level `l` (fan-out as set in `c`, `rem` what remains
    /// above it) with no temporal loops at `l`, if `l` keeps the space and if it does not: a
    /// bound over every temporal tile and bypass choice of `l`. With no loops at `l`, every loop
    /// count the bound takes stays or shrinks (a tile and its loops above multiply to the same
    /// remainder; a loop counted in one place only is left out), and the words a sliding
    /// tile's instance takes in are still the union of its tiles, which is the same set of words
    /// whatever the tile. The terms of `l`'s own tiles are those of a tile holding one
    /// iteration's data.
    pub(super) fn relaxed_terms(&self, c: &mut Choice, l: usize, rem: &[u64]) -> (Terms, Terms) {
        c.temporal[l].fill(1);
        c.keeps[l].fill(true);
        let kept = self.partial_terms(c, l, rem);
        c.keeps[l].fill(false);
        let bypassed = self.partial_terms(c, l, rem);
        (kept, bypassed)
    }

    /// `partial_bound`'s terms, one per data space (each depends on the choice's bypass of that
    /// space alone).
    #[allow(clippy::needless_range_loop)]
    pub(super) fn partial_terms(&self, c: &Choice, top: usize, rem: &[u64]) -> Terms {
        let nd = self.p.dims.len();
        // Tile extents of levels 0..=top, flat (level-major).
        let mut ext: SmallVec<[u64; 64]> = SmallVec::with_capacity((top + 1) * nd);
        for l in 0..=top {
            for d in 0..nd {
                let below = if l == 0 { 1 } else { ext[(l - 1) * nd + d] };
                ext.push(below * c.temporal[l][d] * c.spatial[l][d]);
            }
        }
        let ext_of = |l: usize| &ext[l * nd..(l + 1) * nd];
        let ones: Small = SmallVec::from_elem(1, nd);
        // The MACs re-read their operands every iteration unless the lowest level with loops
        // fans out (as `closed_form` decides); unknown when no level fixed so far has loops.
        let reread = (0..=top)
            .find(|&l| (0..nd).any(|d| c.temporal[l][d] > 1 || c.spatial[l][d] > 1))
            .is_some_and(|l| (0..nd).any(|d| c.temporal[l][d] > 1));
        let iterations = (0..=top)
            .flat_map(|j| c.temporal[j].iter())
            .chain(rem)
            .fold(1u64, |a, &b| a.saturating_mul(b));
        let iterations_rel: Small = self
            .rel
            .iter()
            .map(|rel| {
                (0..=top)
                    .flat_map(|j| c.temporal[j].iter())
                    .chain((0..nd).filter(|&d| rel[d]).map(|d| &rem[d]))
                    .fold(1u64, |a, &b| a.saturating_mul(b))
            })
            .collect();
        let multicast = !self.flat_above[top];
        // Per data space and level 0..=top: the fan-out over the dims the space depends on.
        let ns = self.p.spaces.len();
        let mut rs: SmallVec<[u64; 32]> = SmallVec::from_elem(1, ns * (top + 1));
        for t in 0..ns {
            for j in 0..=top {
                rs[t * (top + 1) + j] = (0..nd)
                    .filter(|&d| self.rel[t][d])
                    .fold(1u64, |a, d| a.saturating_mul(c.spatial[j][d]));
            }
        }
        // Per level 0..=top: the extents one instance covers over the run (the problem divided
        // by the fan-out of the levels above up to `top`) and the instances in use.
        let mut pext: SmallVec<[u64; 64]> = SmallVec::from_elem(0, (top + 1) * nd);
        let mut used: SmallVec<[u64; 8]> = SmallVec::from_elem(1, top + 1);
        let mut above: Small = SmallVec::from_elem(1, nd);
        for l in (0..=top).rev() {
            if l < top {
                for d in 0..nd {
                    above[d] = above[d].saturating_mul(c.spatial[l + 1][d]);
                }
            }
            used[l] = above.iter().fold(1u64, |a, &b| a.saturating_mul(b));
            for d in 0..nd {
                pext[l * nd + d] = self.p.dims[d].bound / above[d];
            }
        }
        let mut terms = Terms::new();
        for (t, s) in self.p.spaces.iter().enumerate() {
            let mut total = 0.0;
            let rel = &self.rel[t];
            // Words one instance of `inner` (None = a MAC) takes in over the run, at least.
            // `multicast`: a level above `top` may fan out between `inner` and its parent, which
            // then reads a tile once for all instances that share it: loops the data space
            // ignores above `top` are not counted.
            let share = |inner: Option<usize>, multicast: bool| -> u64 {
                if inner.is_none() && reread {
                    return if multicast {
                        iterations_rel[t]
                    } else {
                        iterations
                    };
                }
                let lo = inner.map_or(0, |c| c + 1);
                let e_in: &[u64] = inner.map_or(&ones, |c| ext_of(c));
                if !self.simple[t] {
                    let count: Small = (0..nd)
                        .map(|d| {
                            (lo..=top)
                                .map(|j| c.temporal[j][d])
                                .fold(rem[d], |a, b| a.saturating_mul(b))
                        })
                        .collect();
                    return union_words(s, self.one_axis[t], e_in, &count);
                }
                let lowest = (lo..=top).find(|&j| (0..nd).any(|d| rel[d] && c.temporal[j][d] > 1));
                let mut times = 1u64;
                match lowest {
                    Some(ls) => {
                        for j in lo..=top {
                            for d in 0..nd {
                                if rel[d] || j > ls {
                                    times = times.saturating_mul(c.temporal[j][d]);
                                }
                            }
                        }
                        for d in 0..nd {
                            if rel[d] || !multicast {
                                times = times.saturating_mul(rem[d]);
                            }
                        }
                    }
                    None => {
                        for d in 0..nd {
                            if rel[d] {
                                times = times.saturating_mul(rem[d]);
                            }
                        }
                    }
                }
                tile_words(s, e_in).saturating_mul(times)
            };
            // Relevant fan-out of levels from..=to (within 0..=top).
            let fan = |from: usize, to: usize| {
                (from..=to).fold(1u64, |a, j| a.saturating_mul(rs[t * (top + 1) + j]))
            };
            let mut child: Option<usize> = None;
            for l in 0..=top {
                if !(self.arch[l].keeps[t] && c.keeps[l][t]) {
                    continue;
                }
                let traffic =
                    share(child, false).saturating_mul(fan(child.map_or(0, |c| c + 1), l));
                let own = share(Some(l), false);
                let part = tile_words(s, &pext[l * nd..(l + 1) * nd]);
                total += access_pj(&self.arch[l], s.output, traffic, own, part) * used[l] as f64;
                child = Some(l);
            }
            // The level that feeds the highest kept one: the outermost reads (updates) the whole
            // traffic; a level between reads (updates) it more cheaply but is filled with the
            // whole data space at least once from a level above it.
            let traffic =
                share(child, multicast).saturating_mul(fan(child.map_or(0, |c| c + 1), top)) as f64;
            let cheapest = self.feeds[t][top]
                .iter()
                .map(|&(per_word, fill)| traffic * per_word + fill)
                .fold(f64::INFINITY, f64::min);
            if cheapest.is_finite() {
                total += cheapest;
            }
            terms.push(total);
        }
        terms
    }

    /// A lower bound, over loop orders, of the words a sliding-window tile of extents `ext` at
    /// `inner` takes in from the temporal loops `flat` above it. Every word of the union of the
    /// tiles comes in once. And for any level j, the run splits into blocks, one per iteration
    /// of the loops above j, each sweeping a translate of the union U_j of the tiles over the
    /// loops up to j: a block starts with at most one tile of it held and brings in the rest,
    /// so the share is at least (blocks) x (|U_j| - |tile|).
    pub(super) fn sliding_bound(
        &self,
        t: usize,
        ext: &[u64],
        inner: Option<usize>,
        flat: &[(usize, usize, u64, u64)],
    ) -> u64 {
        let s = &self.p.spaces[t];
        let tile = tile_words(s, ext);
        let mut count = vec![1u64; ext.len()];
        let mut best = 0u64;
        let lo = inner.map_or(0, |c| c + 1);
        for j in lo..self.arch.len() {
            for f in flat.iter().filter(|f| f.0 == j) {
                count[f.1] = count[f.1].saturating_mul(f.2);
            }
            let blocks = flat
                .iter()
                .filter(|f| f.0 > j)
                .fold(1u64, |a, f| a.saturating_mul(f.2));
            let union = union_words(s, self.one_axis[t], ext, &count);
            best = best.max(blocks.saturating_mul(union.saturating_sub(tile)));
            if blocks == 1 {
                best = best.max(union);
            }
        }
        best.max(tile)
    }
}
