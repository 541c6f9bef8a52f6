//! Loop-nest analysis of one layer mapped onto a memory hierarchy, counted as Timeloop counts
//! (see `docs/timeloop.md` for the rules and the exercises reproduced).
//!
//! A problem is a perfect loop nest over named dimensions; each tensor (data space) is indexed
//! by affine sums of the loop indices. A mapping splits every dimension into factors, one per
//! level, temporal or spatial, and orders the loops at each level. `analyze` derives, per level
//! and tensor, the words read, filled and updated, and prices them per block access.
//!
//! Tiles are axis-aligned boxes (a strided axis is counted by its bounding box, as Timeloop's
//! hyper-rectangles do). Tensors whose every axis depends on a single dimension are counted in
//! closed form; the others (sliding windows) by an exact walk over the outer iteration space,
//! refused above `WALK_LIMIT` steps.

use serde::{Deserialize, Serialize};

/// The most steps the exact walk takes for one level and tensor before refusing.
pub const WALK_LIMIT: u64 = 10_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dim {
    pub name: String,
    pub bound: u64,
}

/// One tensor: each axis of its data space is an affine sum of loop dims: sum of coef * dim index
/// (a conv input width axis is [(P,stride),(R,dilation)]; a matmul weight is [[(C,1)],[(K,1)]]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSpace {
    pub name: String,
    pub axes: Vec<Vec<(usize, u64)>>,
    /// Read-write (partial sums).
    pub output: bool,
    pub word_bits: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub dims: Vec<Dim>,
    pub spaces: Vec<DataSpace>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub name: String,
    /// Per instance; None = unbounded (DRAM).
    pub capacity_words: Option<u64>,
    /// Words per access (Timeloop's block size = width / word bits).
    pub block_words: u64,
    /// Total instances of this level (fan-out below parents).
    pub instances: u64,
    /// Per block access; a fill is priced as a write.
    pub read_pj: f64,
    pub write_pj: f64,
    pub update_pj: f64,
    /// Per data space: may this level hold it (false = bypass).
    pub keeps: Vec<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loop {
    pub dim: usize,
    pub factor: u64,
    pub spatial: bool,
}

/// levels[i] = the loops mapped at level i (i = 0 innermost, next to the MACs; last =
/// outermost/DRAM), listed OUTERMOST FIRST, as Timeloop's map.txt prints them; spatial loops
/// sit at the level they fan out below.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub levels: Vec<Vec<Loop>>,
    /// Bypass: keeps[i][t] = level i holds data space t (and its `Level::keeps` allows it).
    /// Empty = every level holds what its `keeps` allows.
    #[serde(default)]
    pub keeps: Vec<Vec<bool>>,
}

impl Mapping {
    /// Loops only; every level holds what it may.
    pub fn new(levels: Vec<Vec<Loop>>) -> Self {
        Mapping {
            levels,
            keeps: Vec::new(),
        }
    }
}

/// Words, summed over the utilized instances of the level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub reads: u64,
    pub fills: u64,
    pub updates: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelStats {
    pub name: String,
    /// Totals over `instances`; divide by it for Timeloop's per-instance figures.
    pub per_space: Vec<Access>,
    /// Energy per data space, pJ (block-priced, ceil per tensor, action and instance).
    pub per_space_pj: Vec<f64>,
    /// Distinct words of each data space one instance ever holds (Timeloop's partition size).
    pub partition: Vec<u64>,
    /// Words of each data space held at once by one instance (0 when bypassed).
    pub tile: Vec<u64>,
    /// Utilized instances: the product of the spatial factors above the level.
    pub instances: u64,
    pub energy_pj: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub macs: u64,
    pub levels: Vec<LevelStats>,
    /// Memory energy only (the MACs are priced elsewhere), pJ.
    pub energy_pj: f64,
}

/// One loop of the flattened nest, outermost first.
#[derive(Clone, Copy, Debug)]
struct Flat {
    level: usize,
    dim: usize,
    factor: u64,
    spatial: bool,
    /// Index distance of one step, in units of the dimension (product of inner factors).
    stride: u64,
}

/// A checked problem, architecture and mapping, flattened for counting.
struct Nest<'a> {
    p: &'a Problem,
    arch: &'a [Level],
    flat: Vec<Flat>,
    /// extent[l][d]: the span of dim d in the tile of level l.
    extent: Vec<Vec<u64>>,
    /// Utilized instances per level.
    used: Vec<u64>,
    /// keeps[l][t]: level l holds data space t (the level allows it and the mapping keeps it).
    keeps: Vec<Vec<bool>>,
}

fn checked_mul(a: u64, b: u64, what: &str) -> Result<u64, String> {
    a.checked_mul(b)
        .ok_or_else(|| format!("{what}: product {a} x {b} overflows"))
}

/// Words in the tile of space `s` whose dims span `ext`.
pub(crate) fn tile_words(s: &DataSpace, ext: &[u64]) -> u64 {
    s.axes
        .iter()
        .map(|axis| axis_extent(axis, ext))
        .fold(1u64, |a, b| a.saturating_mul(b))
}

fn axis_extent(axis: &[(usize, u64)], ext: &[u64]) -> u64 {
    axis.iter()
        .map(|&(d, c)| c.saturating_mul(ext[d].saturating_sub(1)))
        .fold(1u64, |a, b| a.saturating_add(b))
}

fn relevant(s: &DataSpace, d: usize) -> bool {
    s.axes.iter().any(|a| a.iter().any(|&(x, _)| x == d))
}

/// Every axis depends on at most one dim and every dim on at most one axis: consecutive tiles
/// are then equal or disjoint, and the counts have a closed form.
pub fn is_simple(s: &DataSpace) -> bool {
    let mut seen = Vec::new();
    for a in &s.axes {
        let dims: Vec<usize> = a.iter().filter(|t| t.1 > 0).map(|t| t.0).collect();
        if dims.len() > 1 {
            return false;
        }
        for d in dims {
            if seen.contains(&d) {
                return false;
            }
            seen.push(d);
        }
    }
    true
}

/// A problem and a hierarchy that fit together: at least one level, every data space's dims in
/// the problem, one keep flag per data space at every level, blocks and instances of at least 1.
pub(crate) fn check_problem(p: &Problem, arch: &[Level]) -> Result<(), String> {
    let nd = p.dims.len();
    if arch.is_empty() {
        return Err("the architecture has no level".into());
    }
    for s in &p.spaces {
        for a in &s.axes {
            for &(d, _) in a {
                if d >= nd {
                    return Err(format!(
                        "data space {} names dim {d}, the problem has {nd}",
                        s.name
                    ));
                }
            }
        }
    }
    for l in arch {
        if l.keeps.len() != p.spaces.len() {
            return Err(format!(
                "level {} lists {} keep flags for {} data spaces",
                l.name,
                l.keeps.len(),
                p.spaces.len()
            ));
        }
        if l.block_words == 0 || l.instances == 0 {
            return Err(format!(
                "level {}: block size and instances must be at least 1",
                l.name
            ));
        }
    }
    Ok(())
}

impl<'a> Nest<'a> {
    fn new(p: &'a Problem, arch: &'a [Level], m: &Mapping) -> Result<Self, String> {
        let n = arch.len();
        let nd = p.dims.len();
        check_problem(p, arch)?;
        if m.levels.len() != n {
            return Err(format!(
                "the mapping has {} levels, the architecture {n}",
                m.levels.len()
            ));
        }
        if !m.keeps.is_empty()
            && (m.keeps.len() != n || m.keeps.iter().any(|k| k.len() != p.spaces.len()))
        {
            return Err(format!(
                "the mapping's keep flags must be {n} levels of {} data spaces",
                p.spaces.len()
            ));
        }
        let keeps: Vec<Vec<bool>> = (0..n)
            .map(|l| {
                (0..p.spaces.len())
                    .map(|t| arch[l].keeps[t] && (m.keeps.is_empty() || m.keeps[l][t]))
                    .collect()
            })
            .collect();
        let top = &arch[n - 1];
        for (i, s) in p.spaces.iter().enumerate() {
            if !keeps[n - 1][i] {
                return Err(format!(
                    "the outermost level {} must keep data space {}",
                    top.name, s.name
                ));
            }
        }
        // Flatten outermost first.
        let mut flat = Vec::new();
        for l in (0..n).rev() {
            for lp in &m.levels[l] {
                if lp.dim >= nd {
                    return Err(format!(
                        "level {}: a loop names dim {}, the problem has {nd}",
                        arch[l].name, lp.dim
                    ));
                }
                if lp.factor == 0 {
                    return Err(format!(
                        "level {}: loop over {} has factor 0",
                        arch[l].name, p.dims[lp.dim].name
                    ));
                }
                flat.push(Flat {
                    level: l,
                    dim: lp.dim,
                    factor: lp.factor,
                    spatial: lp.spatial,
                    stride: 1,
                });
            }
        }
        let mut run = vec![1u64; nd];
        for f in flat.iter_mut().rev() {
            f.stride = run[f.dim];
            run[f.dim] = checked_mul(run[f.dim], f.factor, "loop factors")?;
        }
        for (d, dim) in p.dims.iter().enumerate() {
            if run[d] != dim.bound {
                return Err(format!(
                    "the factors of dim {} multiply to {}, its bound is {}",
                    dim.name, run[d], dim.bound
                ));
            }
        }
        let mut extent = vec![vec![1u64; nd]; n];
        for (l, ext) in extent.iter_mut().enumerate() {
            for f in flat.iter().filter(|f| f.level <= l) {
                ext[f.dim] *= f.factor;
            }
        }
        let mut used = vec![1u64; n];
        for (l, u) in used.iter_mut().enumerate() {
            for f in flat.iter().filter(|f| f.spatial && f.level > l) {
                *u = checked_mul(*u, f.factor, "spatial factors")?;
            }
            if *u > arch[l].instances {
                return Err(format!(
                    "level {}: the mapping fans out to {} instances, it has {}",
                    arch[l].name, u, arch[l].instances
                ));
            }
        }
        for (l, lv) in arch.iter().enumerate() {
            if let Some(cap) = lv.capacity_words {
                let need: u64 = p
                    .spaces
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| keeps[l][*i])
                    .map(|(_, s)| tile_words(s, &extent[l]))
                    .fold(0u64, |a, b| a.saturating_add(b));
                if need > cap {
                    return Err(format!(
                        "level {}: the tiles need {need} words, the capacity is {cap}",
                        lv.name
                    ));
                }
            }
        }
        Ok(Nest {
            p,
            arch,
            flat,
            extent,
            used,
            keeps,
        })
    }

    /// Temporal loops outside `inner` (None = the MACs), factor > 1, outermost first.
    fn outer(&self, inner: Option<usize>) -> Vec<Flat> {
        self.flat
            .iter()
            .filter(|f| !f.spatial && f.factor > 1 && inner.is_none_or(|c| f.level > c))
            .copied()
            .collect()
    }

    /// Spatial loops between `inner` (exclusive) and `outer` (inclusive): sibling children.
    fn siblings(&self, inner: Option<usize>, outer: usize) -> Vec<Flat> {
        self.flat
            .iter()
            .filter(|f| {
                f.spatial && f.factor > 1 && f.level <= outer && inner.is_none_or(|c| f.level > c)
            })
            .copied()
            .collect()
    }

    fn ext(&self, inner: Option<usize>) -> Vec<u64> {
        match inner {
            Some(l) => self.extent[l].clone(),
            None => vec![1; self.p.dims.len()],
        }
    }

    /// Distinct words level `l` holds over the whole run, per instance.
    fn partition(&self, s: &DataSpace, l: usize) -> u64 {
        let mut ext = vec![1u64; self.p.dims.len()];
        for f in self.flat.iter().filter(|f| !(f.spatial && f.level > l)) {
            ext[f.dim] *= f.factor;
        }
        tile_words(s, &ext)
    }

    /// The MACs re-read every operand unless the innermost loop is spatial.
    fn macs_reread(&self) -> bool {
        self.flat
            .iter()
            .rev()
            .find(|f| f.factor > 1)
            .is_none_or(|f| !f.spatial)
    }

    /// (share, traffic): words one instance of `inner` takes in over the run, and words one
    /// instance of `outer` exchanges with all its `inner` children (multicast and spatial
    /// reduction counted once).
    fn flow(
        &self,
        s: &DataSpace,
        inner: Option<usize>,
        outer: usize,
        exact: bool,
    ) -> Result<(u64, u64), String> {
        let ext = self.ext(inner);
        let loops = self.outer(inner);
        let sibs = self.siblings(inner, outer);
        let tile = tile_words(s, &ext);
        if inner.is_none() && self.macs_reread() {
            let steps = loops.iter().fold(1u64, |a, f| a.saturating_mul(f.factor));
            return Ok((steps, steps.saturating_mul(fan(s, &sibs))));
        }
        if !exact {
            let l: Vec<(usize, u64, u64)> =
                loops.iter().map(|f| (f.dim, f.factor, f.stride)).collect();
            let share = closed_share(s, &ext, &l);
            return Ok((share, share.saturating_mul(fan(s, &sibs))));
        }
        let _ = tile;
        let share = walk(s, &ext, &loops, self.p.dims.len())?;
        Ok((share, share.saturating_mul(fan(s, &sibs))))
    }

    fn stats(&self, exact: bool) -> Result<Stats, String> {
        let n = self.arch.len();
        let ns = self.p.spaces.len();
        let mut counts = vec![vec![Access::default(); ns]; n];
        let mut parts = vec![vec![0u64; ns]; n];
        let mut tiles = vec![vec![0u64; ns]; n];
        for (t, s) in self.p.spaces.iter().enumerate() {
            let mut child: Option<usize> = None;
            for l in 0..n {
                if !self.keeps[l][t] {
                    continue;
                }
                let (_, traffic) = self.flow(s, child, l, exact)?;
                let (share, _) = if l + 1 < n {
                    self.flow(s, Some(l), l, exact)?
                } else {
                    (0, 0)
                };
                let part = self.partition(s, l);
                parts[l][t] = part;
                tiles[l][t] = tile_words(s, &self.extent[l]);
                counts[l][t] = if s.output {
                    Access {
                        reads: traffic.saturating_sub(part),
                        fills: share.saturating_sub(part),
                        updates: traffic,
                    }
                } else {
                    Access {
                        reads: traffic,
                        fills: share,
                        updates: 0,
                    }
                };
                child = Some(l);
            }
        }
        let macs = self
            .p
            .dims
            .iter()
            .fold(1u64, |a, d| a.saturating_mul(d.bound));
        let mut levels = Vec::with_capacity(n);
        let mut total = 0.0;
        for (l, lv) in self.arch.iter().enumerate() {
            let inst = self.used[l];
            let b = lv.block_words;
            let mut per_pj = Vec::with_capacity(ns);
            let mut per = Vec::with_capacity(ns);
            for a in &counts[l] {
                let e = (a.reads.div_ceil(b) as f64 * lv.read_pj
                    + a.fills.div_ceil(b) as f64 * lv.write_pj
                    + a.updates.div_ceil(b) as f64 * lv.update_pj)
                    * inst as f64;
                per_pj.push(e);
                per.push(Access {
                    reads: a.reads.saturating_mul(inst),
                    fills: a.fills.saturating_mul(inst),
                    updates: a.updates.saturating_mul(inst),
                });
            }
            let e: f64 = per_pj.iter().sum();
            total += e;
            levels.push(LevelStats {
                name: lv.name.clone(),
                per_space: per,
                per_space_pj: per_pj,
                partition: parts[l].clone(),
                tile: tiles[l].clone(),
                instances: inst,
                energy_pj: e,
            });
        }
        Ok(Stats {
            macs,
            levels,
            energy_pj: total,
        })
    }
}

/// The walk's share in closed form. `loops` = (dim, factor, stride) of the temporal loops above
/// the tile, factor > 1, outermost first. Every step increments one loop k and wraps the loops
/// inside it, translating the tile by T(k); steps of the innermost loop m always subtract (a run
/// of m starts with no remembered stride or with T(m)); a step of an outer loop k subtracts when
/// T(k) = T(m) and otherwise resets and counts the whole tile. Equal to the exact walk.
pub(crate) fn closed_share(s: &DataSpace, ext: &[u64], loops: &[(usize, u64, u64)]) -> u64 {
    use smallvec::SmallVec;
    let len: SmallVec<[u64; 4]> = s.axes.iter().map(|a| axis_extent(a, ext)).collect();
    let tile = len.iter().fold(1u64, |a, &b| a.saturating_mul(b));
    let m = loops.len();
    if m == 0 {
        return tile;
    }
    let delta = |t: &[i128]| -> u64 {
        let mut moved = (0..t.len()).filter(|&a| t[a] != 0);
        let Some(a) = moved.next() else {
            return 0;
        };
        if moved.next().is_some() || t[a].unsigned_abs() >= len[a] as u128 {
            return tile;
        }
        (0..len.len())
            .map(|b| {
                if b == a {
                    t[a].unsigned_abs() as u64
                } else {
                    len[b]
                }
            })
            .fold(1u64, |x, y| x.saturating_mul(y))
    };
    // T(k) per axis, from the innermost loop out: loop k moves its dim by its stride and
    // rewinds every loop inside it (`rewound[d]`: the span those loops cover along d).
    let mut rewound: SmallVec<[i128; 8]> = SmallVec::from_elem(0, ext.len());
    let mut per: SmallVec<[u64; 16]> = SmallVec::from_elem(0, m);
    let mut tm: SmallVec<[i128; 4]> = SmallVec::new();
    for k in (0..m).rev() {
        let (dim, factor, stride) = loops[k];
        let tk: SmallVec<[i128; 4]> = s
            .axes
            .iter()
            .map(|axis| {
                axis.iter()
                    .map(|&(d, c)| {
                        let own = if dim == d { stride as i128 } else { 0 };
                        c as i128 * (own - rewound[d])
                    })
                    .sum()
            })
            .collect();
        per[k] = if k + 1 == m {
            tm = tk;
            delta(&tm)
        } else if tk == tm {
            delta(&tk)
        } else {
            tile
        };
        rewound[dim] += (factor as i128 - 1) * stride as i128;
    }
    let mut share = tile;
    let mut outer = 1u64;
    for (k, l) in loops.iter().enumerate() {
        let steps = outer.saturating_mul(l.1 - 1);
        share = share.saturating_add(steps.saturating_mul(per[k]));
        outer = outer.saturating_mul(l.1);
    }
    share
}

/// Children served per delta: siblings along a dim the data space ignores share it (multicast,
/// or spatial reduction for outputs); along a dim it depends on, each child counts, even where
/// sliding windows overlap (Timeloop extrapolates spatial deltas from the first element).
fn fan(s: &DataSpace, sibs: &[Flat]) -> u64 {
    sibs.iter()
        .filter(|f| relevant(s, f.dim))
        .fold(1u64, |a, f| a.saturating_mul(f.factor))
}

/// The exact walk: the words one instance takes in over consecutive tiles, with Timeloop's delta
/// (a box minus the previous box when they differ along one axis, else the whole box) and its
/// reset on stride change (a translation unlike the remembered one refetches the whole tile and
/// forgets the stride).
fn walk(s: &DataSpace, ext: &[u64], loops: &[Flat], nd: usize) -> Result<u64, String> {
    let steps = loops.iter().fold(1u64, |a, f| a.saturating_mul(f.factor));
    if steps > WALK_LIMIT {
        return Err(format!(
            "data space {}: the exact walk needs {steps} steps, the limit is {WALK_LIMIT}",
            s.name
        ));
    }
    let na = s.axes.len();
    let len: Vec<u64> = s.axes.iter().map(|a| axis_extent(a, ext)).collect();
    let mut idx = vec![0u64; loops.len()];
    let mut origin = vec![0u64; nd];
    let mut prev: Option<Vec<i64>> = None;
    let mut stored: Option<Vec<i64>> = None;
    let mut lo = vec![0i64; na];
    let mut share = 0u64;
    for step in 0..steps {
        if step > 0 {
            // Odometer: innermost loop last.
            let mut k = loops.len();
            while k > 0 {
                k -= 1;
                let f = &loops[k];
                idx[k] += 1;
                origin[f.dim] += f.stride;
                if idx[k] < f.factor {
                    break;
                }
                origin[f.dim] -= f.stride * f.factor;
                idx[k] = 0;
            }
        }
        for (a, axis) in s.axes.iter().enumerate() {
            lo[a] = axis
                .iter()
                .map(|&(d, c)| (c * origin[d]) as i64)
                .sum::<i64>();
        }
        let translation: Option<Vec<i64>> = prev
            .as_ref()
            .map(|p| lo.iter().zip(p).map(|(a, b)| a - b).collect());
        let subtract = match &stored {
            None => {
                stored = translation.clone();
                true
            }
            Some(t) => {
                if translation.as_ref() == Some(t) {
                    true
                } else {
                    stored = None;
                    false
                }
            }
        };
        // The delta is a box: the tile, cut along the one axis it moved on.
        let mut dlen = len.clone();
        let mut empty = false;
        if subtract && let Some(tr) = &translation {
            let moved: Vec<usize> = (0..na).filter(|&a| tr[a] != 0).collect();
            let disjoint = (0..na).any(|a| tr[a].unsigned_abs() >= len[a]);
            if moved.is_empty() {
                empty = true;
            } else if moved.len() == 1 && !disjoint {
                let a = moved[0];
                dlen[a] = tr[a].unsigned_abs();
            }
        }
        prev = Some(lo.clone());
        if empty {
            continue;
        }
        let vol = dlen.iter().fold(1u64, |x, &y| x.saturating_mul(y));
        share = share.saturating_add(vol);
    }
    Ok(share)
}

/// Per level and data space: reads, fills and updates, and their energy.
pub fn analyze(p: &Problem, arch: &[Level], m: &Mapping) -> Result<Stats, String> {
    Nest::new(p, arch, m)?.stats(false)
}

/// `analyze` with every data space counted by the exact walk (slower; the closed form agrees
/// with it where both apply).
pub fn analyze_exact(p: &Problem, arch: &[Level], m: &Mapping) -> Result<Stats, String> {
    Nest::new(p, arch, m)?.stats(true)
}

/// The energy of `analyze`, for search loops.
pub fn energy(p: &Problem, arch: &[Level], m: &Mapping) -> Result<f64, String> {
    Ok(Nest::new(p, arch, m)?.stats(false)?.energy_pj)
}

/// Words of the whole data space.
pub fn space_words(p: &Problem, s: &DataSpace) -> u64 {
    let ext: Vec<u64> = p.dims.iter().map(|d| d.bound).collect();
    tile_words(s, &ext)
}

fn price(lv: &Level, a: &Access) -> f64 {
    let b = lv.block_words;
    a.reads.div_ceil(b) as f64 * lv.read_pj
        + a.fills.div_ceil(b) as f64 * lv.write_pj
        + a.updates.div_ceil(b) as f64 * lv.update_pj
}

fn bound_stats(p: &Problem, arch: &[Level], per: Vec<Vec<Access>>) -> Stats {
    let mut levels = Vec::new();
    let mut total = 0.0;
    for (l, lv) in arch.iter().enumerate() {
        let pj: Vec<f64> = per[l].iter().map(|a| price(lv, a)).collect();
        let e: f64 = pj.iter().sum();
        total += e;
        levels.push(LevelStats {
            name: lv.name.clone(),
            per_space: per[l].clone(),
            per_space_pj: pj,
            partition: p.spaces.iter().map(|s| space_words(p, s)).collect(),
            tile: vec![0; p.spaces.len()],
            instances: 1,
            energy_pj: e,
        });
    }
    Stats {
        macs: p.dims.iter().fold(1u64, |a, d| a.saturating_mul(d.bound)),
        levels,
        energy_pj: total,
    }
}

/// The compulsory lower bound: every data space crosses the outermost level once (inputs read,
/// outputs updated, one access per word); inner levels may be bypassed, so they add nothing.
pub fn compulsory(p: &Problem, arch: &[Level]) -> Stats {
    let mut per = vec![vec![Access::default(); p.spaces.len()]; arch.len()];
    for (t, s) in p.spaces.iter().enumerate() {
        let w = space_words(p, s);
        if let Some(top) = per.last_mut() {
            top[t] = if s.output {
                Access {
                    updates: w,
                    ..Access::default()
                }
            } else {
                Access {
                    reads: w,
                    ..Access::default()
                }
            };
        }
    }
    bound_stats(p, arch, per)
}

/// The no-reuse upper bound: every MAC takes each operand from the outermost level and writes
/// its partial sum back there (a first write needs no read).
pub fn no_reuse(p: &Problem, arch: &[Level]) -> Stats {
    let n = arch.len();
    let macs = p.dims.iter().fold(1u64, |a, d| a.saturating_mul(d.bound));
    let mut per = vec![vec![Access::default(); p.spaces.len()]; n];
    for (t, s) in p.spaces.iter().enumerate() {
        let w = space_words(p, s);
        if let Some(top) = per.last_mut() {
            top[t] = if s.output {
                Access {
                    reads: macs.saturating_sub(w),
                    fills: 0,
                    updates: macs,
                }
            } else {
                Access {
                    reads: macs,
                    ..Access::default()
                }
            };
        }
    }
    bound_stats(p, arch, per)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matmul(n: u64, c: u64, k: u64) -> Problem {
        let dim = |name: &str, bound| Dim {
            name: name.into(),
            bound,
        };
        let sp = |name: &str, axes: Vec<Vec<(usize, u64)>>, output| DataSpace {
            name: name.into(),
            axes,
            output,
            word_bits: 8,
        };
        Problem {
            dims: vec![dim("N", n), dim("C", c), dim("K", k)],
            spaces: vec![
                sp("Weights", vec![vec![(1, 1)], vec![(2, 1)]], false),
                sp("Inputs", vec![vec![(0, 1)], vec![(1, 1)]], false),
                sp("Outputs", vec![vec![(0, 1)], vec![(2, 1)]], true),
            ],
        }
    }

    fn level(name: &str, cap: Option<u64>, inst: u64) -> Level {
        Level {
            name: name.into(),
            capacity_words: cap,
            block_words: 1,
            instances: inst,
            read_pj: 1.0,
            write_pj: 1.0,
            update_pj: 1.0,
            keeps: vec![true; 3],
        }
    }

    fn lp(dim: usize, factor: u64, spatial: bool) -> Loop {
        Loop {
            dim,
            factor,
            spatial,
        }
    }

    #[test]
    fn bad_mappings_are_refused_with_the_level_and_sizes() {
        let p = matmul(4, 4, 4);
        let arch = vec![level("RF", Some(8), 2), level("DRAM", None, 1)];
        let ok = Mapping::new(vec![
            vec![lp(1, 2, false)],
            vec![
                lp(2, 2, true),
                lp(0, 4, false),
                lp(1, 2, false),
                lp(2, 2, false),
            ],
        ]);
        assert!(analyze(&p, &arch, &ok).is_ok());
        let short = Mapping::new(vec![vec![lp(1, 2, false)], vec![lp(0, 4, false)]]);
        let e = analyze(&p, &arch, &short).unwrap_err();
        assert!(
            e.contains("C") && e.contains("multiply to 2") && e.contains("bound is 4"),
            "{e}"
        );
        let big = Mapping::new(vec![
            vec![lp(0, 4, false), lp(1, 4, false)],
            vec![lp(2, 4, false)],
        ]);
        let e = analyze(&p, &arch, &big).unwrap_err();
        assert!(e.contains("RF") && e.contains("capacity is 8"), "{e}");
        let wide = Mapping::new(vec![
            vec![],
            vec![lp(2, 4, true), lp(0, 4, false), lp(1, 4, false)],
        ]);
        let e = analyze(&p, &arch, &wide).unwrap_err();
        assert!(
            e.contains("RF") && e.contains("4 instances") && e.contains("has 2"),
            "{e}"
        );
        let mut no_top = arch.clone();
        no_top[1].keeps[0] = false;
        assert!(analyze(&p, &no_top, &ok).unwrap_err().contains("must keep"));
        assert!(analyze(&p, &arch, &Mapping::new(vec![vec![]])).is_err());
    }

    #[test]
    fn the_exact_walk_refuses_a_huge_iteration_space() {
        let p = matmul(4096, 4096, 4096);
        let arch = vec![level("RF", Some(3), 1), level("DRAM", None, 1)];
        let m = Mapping::new(vec![
            vec![],
            vec![lp(0, 4096, false), lp(1, 4096, false), lp(2, 4096, false)],
        ]);
        let e = analyze_exact(&p, &arch, &m).unwrap_err();
        assert!(e.contains("limit"), "{e}");
        // The closed form needs no walk.
        let s = analyze(&p, &arch, &m).unwrap();
        assert_eq!(s.macs, 1 << 36);
    }

    #[test]
    fn bounds_enclose_a_mapped_estimate() {
        let p = matmul(8, 8, 8);
        let arch = vec![level("RF", Some(24), 1), level("DRAM", None, 1)];
        let m = Mapping::new(vec![
            vec![lp(1, 4, false), lp(2, 4, false)],
            vec![lp(0, 8, false), lp(1, 2, false), lp(2, 2, false)],
        ]);
        let s = analyze(&p, &arch, &m).unwrap();
        let lo = compulsory(&p, &arch).energy_pj;
        let hi = no_reuse(&p, &arch).energy_pj;
        let dram = s.levels[1].energy_pj;
        assert!(lo <= dram && dram <= hi, "{lo} {dram} {hi}");
        assert_eq!(compulsory(&p, &arch).levels[1].per_space[0].reads, 64);
    }
}
