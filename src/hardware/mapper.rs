//! Mapping search: the lowest-energy mapping of one problem onto a hierarchy, over tile factors
//! per level (any divisors), spatial fan-out, bypass and loop orders.
//!
//! Factors, spatial fan-out and bypass are enumerated level by level from the MACs out, pruned by
//! capacity; when that mapspace is larger than `Options::exhaustive_limit`, only tiles that fill
//! their level are kept (no factor can grow by a prime without overflowing it). Loop orders are
//! chosen per level by trying every order of that level's temporal loops with the other levels
//! fixed: a tensor's refetches at a level depend only on the order of the nearest level above it
//! with a loop it depends on, so the energy is a sum of per-level terms and one pass finds the
//! best orders. Ties keep the first mapping in enumeration order, so the search is deterministic.
//!
//! Branch and bound makes it fast without changing its result: a choice is evaluated only when its
//! order-free lower bounds do not exceed the best energy found (with a sliding-window tensor, also
//! the bound where the other tensors share one order per level), and the levels above a partial
//! choice are not enumerated when a bound of all its extensions already exceeds it.

use smallvec::SmallVec;

use super::nest::{self, Level, Loop, Mapping, Problem, Stats};

/// A per-dim vector on the stack (problems have at most a handful of dims).
type Small = SmallVec<[u64; 8]>;

/// One level's temporal loop order, dims outermost first.
type Order = SmallVec<[usize; 8]>;

#[derive(Clone, Debug)]
pub struct Options {
    /// Above this many factor and bypass choices, keep only tiles that fill their level.
    pub exhaustive_limit: u64,
    /// Force (Some(true)) or forbid (Some(false)) the fill-only pruning.
    pub fill_only: Option<bool>,
    /// Branch and bound (the default): skip what a lower bound shows cannot beat the best
    /// mapping found. The result is the same without it, only slower.
    pub prune: bool,
    /// Dims kept whole in the tile of the lowest level that may hold a given data space (a
    /// convolution's kernel window in the lowest level holding weights, as weight- and
    /// row-stationary dataflows keep it): a smaller mapspace, so a faster search.
    pub whole_at: Option<(Vec<usize>, usize)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            exhaustive_limit: 2_000,
            fill_only: None,
            prune: true,
            whole_at: None,
        }
    }
}

/// The lowest-energy valid mapping and its statistics. `pinned_outer` lists dims that stay whole
/// and outermost at the outermost level, in that order (e.g. the token loop of a recurrent model).
pub fn search(
    p: &Problem,
    arch: &[Level],
    pinned_outer: &[usize],
) -> Result<(Mapping, Stats), String> {
    search_with(p, arch, pinned_outer, &Options::default())
}

pub fn search_with(
    p: &Problem,
    arch: &[Level],
    pinned_outer: &[usize],
    opts: &Options,
) -> Result<(Mapping, Stats), String> {
    let mut ctx = Ctx::new(p, arch, pinned_outer)?;
    if let Some((dims, t)) = &opts.whole_at {
        let level = arch.iter().position(|l| l.keeps.get(*t) == Some(&true));
        ctx.kept_whole = level.map(|l| (dims.clone(), l));
    }
    let fill = match opts.fill_only {
        Some(f) => f,
        None => {
            let mut count = 0u64;
            let limit = opts.exhaustive_limit;
            ctx.enumerate(false, &mut |_| {
                count += 1;
                count <= limit
            });
            count > limit
        }
    };
    // Depth first, with branch and bound: a choice is evaluated only when its order-free lower
    // bound does not exceed the best energy found, and a level's tiles are not extended upward
    // when the bound of the levels fixed so far already does.
    let limit = std::cell::Cell::new(f64::INFINITY);
    let mut best: Option<(f64, Mapping)> = None;
    ctx.enumerate_bounded(fill, &limit, &mut |choice| {
        let pre = ctx.prepare(choice);
        // With a sliding data space, two bounds first: every space free to take its best
        // order, then the simple ones sharing one order per level. Without one, the exact
        // minimum costs little more than the first bound.
        if opts.prune && ctx.slides {
            let free = Order::new();
            let orders = vec![free; ctx.arch.len()];
            let sliding = ctx.closed_form(choice, &orders, &pre, Form::OrderFree, Spaces::Sliding);
            let simple = ctx.closed_form(choice, &orders, &pre, Form::OrderFree, Spaces::Simple);
            if above(limit.get(), sliding + simple)
                || above(
                    limit.get(),
                    sliding + ctx.min_orders(choice, &pre, Spaces::Simple).0,
                )
            {
                return true;
            }
        }
        let (e, orders) = ctx.min_orders(choice, &pre, Spaces::All);
        // Ties keep the first choice in enumeration order.
        if best.as_ref().is_none_or(|b| e < b.0) {
            if opts.prune {
                limit.set(e);
            }
            best = Some((e, ctx.mapping(choice, &orders)));
        }
        true
    });
    let (_, m) = best.ok_or_else(|| {
        format!(
            "no mapping fits: the innermost level {} cannot hold the smallest tiles",
            arch.first().map_or("", |l| l.name.as_str())
        )
    })?;
    let stats = nest::analyze(p, arch, &m)?;
    Ok((m, stats))
}

/// Every mapping of the mapspace (all factors, fan-outs, bypass choices and loop orders of every
/// level) evaluated with the exact walk: the reference the search is tested against on small
/// problems. Refuses mapspaces above `limit` mappings.
pub fn exhaustive(
    p: &Problem,
    arch: &[Level],
    pinned_outer: &[usize],
    limit: u64,
) -> Result<(Mapping, Stats), String> {
    let ctx = Ctx::new(p, arch, pinned_outer)?;
    let mut best: Option<(f64, Mapping)> = None;
    let mut seen = 0u64;
    let mut err = None;
    ctx.enumerate(false, &mut |choice| {
        let base = ctx.mapping(choice, &vec![Order::new(); arch.len()]);
        let perms: Vec<Vec<Vec<usize>>> = (0..arch.len())
            .map(|l| permutations(&ctx.movable(&base, l)))
            .collect();
        let mut pick = vec![0usize; arch.len()];
        loop {
            seen += 1;
            if seen > limit {
                err = Some(format!("the mapspace has more than {limit} mappings"));
                return false;
            }
            let orders: Vec<Order> = (0..arch.len())
                .map(|l| perms[l][pick[l]].iter().copied().collect())
                .collect();
            let m = ctx.mapping(choice, &orders);
            if let Ok(s) = nest::analyze_exact(p, arch, &m)
                && best.as_ref().is_none_or(|b| s.energy_pj < b.0)
            {
                best = Some((s.energy_pj, m));
            }
            let mut l = 0;
            while l < pick.len() {
                pick[l] += 1;
                if pick[l] < perms[l].len() {
                    break;
                }
                pick[l] = 0;
                l += 1;
            }
            if l == pick.len() {
                return true;
            }
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    let (_, m) = best.ok_or("no mapping fits")?;
    let stats = nest::analyze(p, arch, &m)?;
    Ok((m, stats))
}

/// All orders of `items`, in lexicographic order of positions.
fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let x = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, x);
            out.push(tail);
        }
    }
    out
}

/// One instance's access energy at a level that takes in `traffic` words for its children and is
/// filled with `own` words, `part` of them its share of the data space. For an output, every word
/// taken in is an update, and reads and fills leave out the first pass over its share (no partial
/// sum exists yet).
fn access_pj(lv: &Level, output: bool, traffic: u64, own: u64, part: u64) -> f64 {
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
fn above(best: f64, bound: f64) -> bool {
    bound > best * (1.0 + 1e-12)
}

/// Per-choice quantities that do not depend on loop order.
struct Pre {
    n: usize,
    nd: usize,
    ns: usize,
    /// Tile extents per level and dim.
    ext: SmallVec<[u64; 64]>,
    /// Words of each data space one instance of a level holds over the run, per level and space.
    part: SmallVec<[u64; 32]>,
    /// Instances of each level in use.
    used: SmallVec<[u64; 8]>,
    /// Relevant fan-out per space, child level + 1 and level (see `prepare`).
    fan: SmallVec<[u64; 128]>,
    /// Per level and space: kept there.
    keeps: SmallVec<[bool; 32]>,
}

impl Pre {
    fn ext(&self, l: usize) -> &[u64] {
        &self.ext[l * self.nd..(l + 1) * self.nd]
    }

    fn part(&self, l: usize, t: usize) -> u64 {
        self.part[l * self.ns + t]
    }

    fn fan(&self, t: usize, ci: usize, l: usize) -> u64 {
        self.fan[(t * (self.n + 1) + ci) * self.n + l]
    }

    fn keeps(&self, l: usize, t: usize) -> bool {
        self.keeps[l * self.ns + t]
    }
}

/// Factors, fan-out and bypass for every level; loop orders are chosen separately.
#[derive(Clone, Debug)]
struct Choice {
    temporal: Vec<Vec<u64>>,
    spatial: Vec<Vec<u64>>,
    keeps: Vec<Vec<bool>>,
}

struct Ctx<'a> {
    p: &'a Problem,
    arch: &'a [Level],
    pinned: Vec<usize>,
    /// Dims kept whole in the tile of a level (`Options::whole_at`).
    kept_whole: Option<(Vec<usize>, usize)>,
    /// Fan-out below each level (children instances per instance), 1 for level 0.
    fanout: Vec<u64>,
    /// rel[t][d]: data space t depends on dim d.
    rel: Vec<Vec<bool>>,
    /// Data space t has each axis on one dim (no sliding window).
    simple: Vec<bool>,
    /// Some data space slides (not `simple`).
    slides: bool,
    /// Per data space: every dim indexes at most one of its axes.
    one_axis: Vec<bool>,
    /// Prime factors of each dim's bound.
    primes: Vec<Vec<u64>>,
    /// Divisors of each dim's bound, ascending (a remainder's divisors are among them).
    divs: Vec<Vec<u64>>,
    /// Bypass choices per level, keeping everything allowed first.
    masks: Vec<Vec<Vec<bool>>>,
    /// No level above this one fans out (the partial bound's condition).
    flat_above: Vec<bool>,
    /// Words of each data space over the whole problem.
    whole: Vec<u64>,
    /// feeds[t][top]: for each level above `top` that may keep data space t, its energy per
    /// word read (an update for an output) and the least energy of filling it with the whole
    /// space from a level above it (0 for the outermost): `partial_bound`'s candidates for the
    /// level feeding the highest kept one.
    feeds: Vec<Vec<Feeds>>,
    /// The temporal tiles of a level, by (level, fill-only, bypass choice, tile extent below,
    /// forced factors): many lower-level choices reach the same extent, and the tiles depend on
    /// nothing else.
    tiles: std::cell::RefCell<rustc_hash::FxHashMap<TileKey, std::rc::Rc<Vec<Vec<u64>>>>>,
    /// `index_permutations` by length.
    perms: std::cell::RefCell<std::collections::HashMap<usize, std::rc::Rc<Vec<Order>>>>,
    /// `FitSet` by (level, bypass choice).
    fit_sets: std::cell::RefCell<std::collections::HashMap<(usize, usize), std::rc::Rc<FitSet>>>,
}

type TileKey = (usize, bool, usize, Small, Forced);

/// (energy per word read, energy of the fill from above) of each level that may feed another.
type Feeds = SmallVec<[(f64, f64); 4]>;

/// Per dim, a factor a level must take (or none).
type Forced = SmallVec<[Option<u64>; 8]>;

/// The tile extents that fit one level under one bypass choice, in lexicographic order, and
/// which of them are maximal (no dim can grow by a prime factor and still fit).
struct FitSet {
    all: Vec<Vec<u64>>,
    maximal: Vec<bool>,
}

impl FitSet {
    /// The temporal factors over a tile extent `below` (the extents that are multiples of it,
    /// divided by it), with `forced` factors where given and only maximal tiles if asked, in
    /// lexicographic order of the factors.
    fn tiles_over(
        &self,
        below: &[u64],
        forced: &[Option<u64>],
        maximal: bool,
        out: &mut Vec<Vec<u64>>,
    ) {
        for (e, &max) in self.all.iter().zip(&self.maximal) {
            if maximal && !max {
                continue;
            }
            let fits = (0..e.len()).all(|d| {
                e[d].is_multiple_of(below[d]) && forced[d].is_none_or(|f| e[d] == below[d] * f)
            });
            if fits {
                out.push((0..e.len()).map(|d| e[d] / below[d]).collect());
            }
        }
    }
}

fn divisors(n: u64) -> Vec<u64> {
    let mut small = Vec::new();
    let mut large = Vec::new();
    let mut i = 1u64;
    while i.saturating_mul(i) <= n {
        if n.is_multiple_of(i) {
            small.push(i);
            if i != n / i {
                large.push(n / i);
            }
        }
        i += 1;
    }
    small.extend(large.into_iter().rev());
    small
}

fn primes(mut n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut f = 2u64;
    while f.saturating_mul(f) <= n {
        if n.is_multiple_of(f) {
            out.push(f);
            while n.is_multiple_of(f) {
                n /= f;
            }
        }
        f += 1;
    }
    if n > 1 {
        out.push(n);
    }
    out
}

/// Every vector v with v[d] dividing `rem[d]` (and 1 where `fixed[d]`), in lexicographic order.
fn factor_vectors(rem: &[u64], fixed: &[bool], max_product: Option<u64>) -> Vec<Vec<u64>> {
    let mut out = vec![Vec::new()];
    for (d, &r) in rem.iter().enumerate() {
        let opts = if fixed[d] { vec![1] } else { divisors(r) };
        let mut next = Vec::new();
        for v in &out {
            let prod: u64 = v.iter().product();
            for &o in &opts {
                if max_product.is_some_and(|m| prod.saturating_mul(o) > m) {
                    continue;
                }
                let mut w = v.clone();
                w.push(o);
                next.push(w);
            }
        }
        out = next;
    }
    out
}

fn one_axis_per_dim(s: &nest::DataSpace, dims: usize) -> bool {
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
fn union_words(s: &nest::DataSpace, one_axis: bool, ext: &[u64], count: &[u64]) -> u64 {
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

fn tile_words(s: &nest::DataSpace, ext: &[u64]) -> u64 {
    s.axes
        .iter()
        .map(|axis| {
            axis.iter()
                .map(|&(d, c)| c.saturating_mul(ext[d].saturating_sub(1)))
                .fold(1u64, |a, b| a.saturating_add(b))
        })
        .fold(1u64, |a, b| a.saturating_mul(b))
}

impl<'a> Ctx<'a> {
    fn new(p: &'a Problem, arch: &'a [Level], pinned: &[usize]) -> Result<Self, String> {
        if arch.is_empty() {
            return Err("the architecture has no level".into());
        }
        for &d in pinned {
            if d >= p.dims.len() {
                return Err(format!(
                    "pinned dim {d} does not exist (the problem has {})",
                    p.dims.len()
                ));
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
            if l.instances == 0 {
                return Err(format!("level {} has 0 instances", l.name));
            }
        }
        for d in &p.dims {
            if d.bound == 0 {
                return Err(format!("dim {} has bound 0", d.name));
            }
        }
        let fanout = (0..arch.len())
            .map(|l| {
                if l == 0 {
                    1
                } else {
                    (arch[l - 1].instances / arch[l].instances).max(1)
                }
            })
            .collect();
        let rel = p
            .spaces
            .iter()
            .map(|s| {
                (0..p.dims.len())
                    .map(|d| s.axes.iter().any(|a| a.iter().any(|&(x, _)| x == d)))
                    .collect()
            })
            .collect();
        Ok(Ctx {
            p,
            arch,
            pinned: pinned.to_vec(),
            kept_whole: None,
            fanout,
            rel,
            simple: p.spaces.iter().map(nest::is_simple).collect(),
            slides: !p.spaces.iter().all(nest::is_simple),
            one_axis: p
                .spaces
                .iter()
                .map(|s| one_axis_per_dim(s, p.dims.len()))
                .collect(),
            primes: p.dims.iter().map(|d| primes(d.bound)).collect(),
            divs: p.dims.iter().map(|d| divisors(d.bound)).collect(),
            masks: Vec::new(),
            flat_above: Vec::new(),
            whole: p
                .spaces
                .iter()
                .map(|s| tile_words(s, &p.dims.iter().map(|d| d.bound).collect::<Vec<_>>()))
                .collect(),
            tiles: Default::default(),
            fit_sets: Default::default(),
            perms: Default::default(),
            feeds: Vec::new(),
        })
        .map(|mut c| {
            c.masks = (0..arch.len()).map(|l| c.masks_of(l)).collect();
            c.flat_above = (0..arch.len())
                .map(|l| c.fanout[l + 1..].iter().all(|&f| f == 1))
                .collect();
            c.feeds = (0..p.spaces.len()).map(|t| c.feeds_of(t)).collect();
            c
        })
    }

    /// `feeds[t]`, per `top`.
    fn feeds_of(&self, t: usize) -> Vec<Feeds> {
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

    /// Calls `visit` for each choice of factors, fan-out and bypass that fits; stops when it
    /// returns false.
    fn enumerate(&self, fill: bool, visit: &mut dyn FnMut(&Choice) -> bool) {
        self.enumerate_bounded(fill, &std::cell::Cell::new(f64::INFINITY), visit)
    }

    /// `enumerate`, skipping the choices whose levels fixed so far bound their energy above
    /// `limit` (which `visit` may lower as it goes).
    fn enumerate_bounded(
        &self,
        fill: bool,
        limit: &std::cell::Cell<f64>,
        visit: &mut dyn FnMut(&Choice) -> bool,
    ) {
        let n = self.arch.len();
        let nd = self.p.dims.len();
        let mut choice = Choice {
            temporal: vec![vec![1; nd]; n],
            spatial: vec![vec![1; nd]; n],
            keeps: vec![vec![false; self.p.spaces.len()]; n],
        };
        let rem: Vec<u64> = self.p.dims.iter().map(|d| d.bound).collect();
        let ext = vec![1u64; nd];
        self.level(0, &rem, &ext, fill, limit, &mut choice, visit);
    }

    fn masks_of(&self, l: usize) -> Vec<Vec<bool>> {
        let allowed = &self.arch[l].keeps;
        let ns = allowed.len();
        if l + 1 == self.arch.len() {
            return vec![vec![true; ns]];
        }
        let free: Vec<usize> = (0..ns).filter(|&t| allowed[t]).collect();
        // Keeping everything allowed first: it is the usual optimum and wins ties.
        (0..1u64 << free.len())
            .rev()
            .map(|bits| {
                let mut m = vec![false; ns];
                for (i, &t) in free.iter().enumerate() {
                    m[t] = bits >> i & 1 == 1;
                }
                m
            })
            .collect()
    }

    fn need(&self, mask: &[bool], ext: &[u64]) -> u64 {
        self.p
            .spaces
            .iter()
            .zip(mask)
            .filter(|(_, k)| **k)
            .map(|(s, _)| tile_words(s, ext))
            .fold(0u64, |a, b| a.saturating_add(b))
    }

    /// Every tile extent (a divisor of each dim's bound) whose kept data spaces fit `cap` at
    /// level `l` under bypass choice `mi`, computed once: the tiles of any choice below are the
    /// extents that are multiples of its extent.
    fn fitting_extents(&self, l: usize, mi: usize, mask: &[bool], cap: u64) -> std::rc::Rc<FitSet> {
        if let Some(f) = self.fit_sets.borrow().get(&(l, mi)) {
            return f.clone();
        }
        let nd = self.p.dims.len();
        let bound: Vec<u64> = self.p.dims.iter().map(|d| d.bound).collect();
        let mut all = Vec::new();
        let mut cur = Vec::with_capacity(nd);
        let mut e = vec![1u64; nd];
        let none: Vec<Option<u64>> = vec![None; nd];
        self.fitting(&bound, &none, mask, Some(cap), &mut cur, &mut e, &mut all);
        // A tile is maximal when no dim can grow by a prime and still fit.
        let maximal = all
            .iter()
            .map(|x| {
                let mut g: Small = x.iter().copied().collect();
                (0..nd).all(|d| {
                    self.primes[d].iter().all(|&q| {
                        if !(bound[d] / x[d]).is_multiple_of(q) {
                            return true;
                        }
                        g[d] = x[d] * q;
                        let fits = self.need(mask, &g) <= cap;
                        g[d] = x[d];
                        !fits
                    })
                })
            })
            .collect();
        let set = std::rc::Rc::new(FitSet { all, maximal });
        self.fit_sets.borrow_mut().insert((l, mi), set.clone());
        set
    }

    /// Temporal factor vectors for one level whose kept tiles fit `cap`, by depth-first search
    /// over dims (a tile only grows with a factor, so a factor that overflows ends its dim).
    #[allow(clippy::too_many_arguments)]
    fn fitting(
        &self,
        rem: &[u64],
        forced: &[Option<u64>],
        mask: &[bool],
        cap: Option<u64>,
        cur: &mut Vec<u64>,
        ext: &mut Vec<u64>,
        out: &mut Vec<Vec<u64>>,
    ) {
        let d = cur.len();
        if d == rem.len() {
            out.push(cur.clone());
            return;
        }
        let only = forced[d].map(|f| [f]);
        let opts: &[u64] = match &only {
            Some(f) => f,
            None => &self.divs[d],
        };
        let base = ext[d];
        for &f in opts {
            if !rem[d].is_multiple_of(f) {
                continue;
            }
            ext[d] = base * f;
            if let Some(c) = cap
                && self.need(mask, ext) > c
            {
                break;
            }
            cur.push(f);
            self.fitting(rem, forced, mask, cap, cur, ext, out);
            cur.pop();
        }
        ext[d] = base;
    }

    #[allow(clippy::too_many_arguments)]
    fn level(
        &self,
        l: usize,
        rem: &[u64],
        ext: &[u64],
        fill: bool,
        limit: &std::cell::Cell<f64>,
        choice: &mut Choice,
        visit: &mut dyn FnMut(&Choice) -> bool,
    ) -> bool {
        let n = self.arch.len();
        let nd = rem.len();
        let top = l + 1 == n;
        let fixed: Vec<bool> = (0..nd).map(|d| self.pinned.contains(&d)).collect();
        // Pinned dims take no factor below the outermost level; `kept_whole` dims take what remains
        // of theirs at their level.
        let forced: Forced = (0..nd)
            .map(|d| {
                if fixed[d] {
                    Some(1)
                } else if self
                    .kept_whole
                    .as_ref()
                    .is_some_and(|(dims, at)| *at == l && dims.contains(&d))
                {
                    Some(rem[d])
                } else {
                    None
                }
            })
            .collect();
        let cap = self.arch[l].capacity_words;
        let spatials = if self.fanout[l] > 1 {
            factor_vectors(rem, &fixed, Some(self.fanout[l]))
        } else {
            vec![vec![1; nd]]
        };
        for sp in &spatials {
            let rem_s: Vec<u64> = (0..nd).map(|d| rem[d] / sp[d]).collect();
            let ext_s: Small = (0..nd).map(|d| ext[d] * sp[d]).collect();
            if fill && self.fanout[l] > 1 {
                // The fan-out is used as far as it divides.
                let used: u64 = sp.iter().product();
                let grows = (0..nd).any(|d| {
                    !fixed[d]
                        && self.primes[d].iter().any(|&q| {
                            rem_s[d].is_multiple_of(q) && used.saturating_mul(q) <= self.fanout[l]
                        })
                });
                if grows {
                    continue;
                }
            }
            for (mi, mask) in self.masks[l].iter().enumerate() {
                let keeps_any = mask.iter().any(|&k| k);
                let temporals = if top {
                    std::rc::Rc::new(vec![rem_s.clone()])
                } else if fill && !keeps_any {
                    // A level holding nothing needs no loops of its own.
                    std::rc::Rc::new(vec![vec![1; nd]])
                } else {
                    // The remaining dims follow from the extent below.
                    let key = (l, fill, mi, ext_s.clone(), forced.clone());
                    let cached = self.tiles.borrow().get(&key).cloned();
                    match cached {
                        Some(t) => t,
                        None => {
                            let mut out = Vec::new();
                            match cap {
                                // Fill-only keeps the tiles no prime factor can grow.
                                Some(c) => self.fitting_extents(l, mi, mask, c).tiles_over(
                                    &ext_s,
                                    &forced,
                                    fill && keeps_any,
                                    &mut out,
                                ),
                                // Without a capacity every tile fits, and all are kept.
                                None => {
                                    let mut cur = Vec::with_capacity(nd);
                                    let mut e = ext_s.to_vec();
                                    self.fitting(
                                        &rem_s, &forced, mask, None, &mut cur, &mut e, &mut out,
                                    );
                                }
                            }
                            // Large tiles first: a good mapping early prunes more by the order
                            // bound.
                            out.reverse();
                            let t = std::rc::Rc::new(out);
                            self.tiles.borrow_mut().insert(key, t.clone());
                            t
                        }
                    }
                };
                for tv in temporals.iter() {
                    let ext_t: Small = (0..nd).map(|d| ext_s[d] * tv[d]).collect();
                    // Below the outermost level every tile was chosen to fit.
                    if top
                        && let Some(c) = cap
                        && self.need(mask, &ext_t) > c
                    {
                        continue;
                    }
                    choice.temporal[l].copy_from_slice(tv);
                    choice.spatial[l].copy_from_slice(sp);
                    choice.keeps[l].copy_from_slice(mask);
                    if top {
                        if !visit(choice) {
                            return false;
                        }
                    } else {
                        let rem_t: Small = (0..nd).map(|d| rem_s[d] / tv[d]).collect();
                        if limit.get().is_finite()
                            && above(limit.get(), self.partial_bound(choice, l, &rem_t))
                        {
                            continue;
                        }
                        if !self.level(l + 1, &rem_t, &ext_t, fill, limit, choice, visit) {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// The mapping of a choice with the given temporal order per level (dims, outermost first;
    /// dims left out follow in index order). Pinned dims lead the outermost level; spatial loops
    /// lead their level.
    fn mapping(&self, c: &Choice, orders: &[Order]) -> Mapping {
        let n = self.arch.len();
        let nd = self.p.dims.len();
        let mut levels = Vec::with_capacity(n);
        for l in 0..n {
            let mut loops = Vec::new();
            if l + 1 == n {
                for &d in &self.pinned {
                    loops.push(Loop {
                        dim: d,
                        factor: c.temporal[l][d],
                        spatial: false,
                    });
                }
            }
            for d in 0..nd {
                if c.spatial[l][d] > 1 {
                    loops.push(Loop {
                        dim: d,
                        factor: c.spatial[l][d],
                        spatial: true,
                    });
                }
            }
            let mut order: Order = orders.get(l).cloned().unwrap_or_default();
            for d in 0..nd {
                if !order.contains(&d) {
                    order.push(d);
                }
            }
            for d in order {
                if c.temporal[l][d] > 1 && !(l + 1 == n && self.pinned.contains(&d)) {
                    loops.push(Loop {
                        dim: d,
                        factor: c.temporal[l][d],
                        spatial: false,
                    });
                }
            }
            levels.push(loops);
        }
        Mapping {
            levels,
            keeps: c.keeps.clone(),
        }
    }

    /// Dims whose temporal loops at level l may be reordered.
    fn movable(&self, m: &Mapping, l: usize) -> Vec<usize> {
        let top = l + 1 == self.arch.len();
        m.levels[l]
            .iter()
            .filter(|lp| !(lp.spatial || top && self.pinned.contains(&lp.dim)))
            .map(|lp| lp.dim)
            .collect()
    }

    /// What a choice fixes regardless of loop order: tiles, partitions, instances, fan-out.
    fn prepare(&self, c: &Choice) -> Pre {
        let n = self.arch.len();
        let nd = self.p.dims.len();
        let ns = self.p.spaces.len();
        let mut ext: SmallVec<[u64; 64]> = SmallVec::with_capacity(n * nd);
        for l in 0..n {
            for d in 0..nd {
                let below = if l == 0 { 1 } else { ext[(l - 1) * nd + d] };
                ext.push(below * c.temporal[l][d] * c.spatial[l][d]);
            }
        }
        // Spatial product above level l, per dim, from the outermost level in.
        let mut above: Small = SmallVec::from_elem(1, nd);
        let mut part: SmallVec<[u64; 32]> = SmallVec::from_elem(0, n * ns);
        let mut used: SmallVec<[u64; 8]> = SmallVec::from_elem(1, n);
        let mut pext: Small = SmallVec::from_elem(1, nd);
        for l in (0..n).rev() {
            if l + 1 < n {
                for d in 0..nd {
                    above[d] *= c.spatial[l + 1][d];
                }
            }
            used[l] = above.iter().product();
            for d in 0..nd {
                pext[d] = self.p.dims[d].bound / above[d];
            }
            for (t, s) in self.p.spaces.iter().enumerate() {
                part[l * ns + t] = tile_words(s, &pext);
            }
        }
        // fan[(t, c + 1, l)]: relevant spatial product in levels (c, l]; c = -1 for the MACs.
        let mut fan: SmallVec<[u64; 128]> = SmallVec::from_elem(1, ns * (n + 1) * n);
        for t in 0..ns {
            let rs: Small = (0..n)
                .map(|j| {
                    (0..nd)
                        .filter(|&d| self.rel[t][d])
                        .fold(1u64, |a, d| a.saturating_mul(c.spatial[j][d]))
                })
                .collect();
            for ci in 0..n {
                let mut prod = 1u64;
                for l in ci..n {
                    prod = prod.saturating_mul(rs[l]);
                    fan[(t * (n + 1) + ci) * n + l] = prod;
                }
            }
        }
        let keeps = (0..n)
            .flat_map(|l| (0..ns).map(move |t| (l, t)))
            .map(|(l, t)| self.arch[l].keeps[t] && c.keeps[l][t])
            .collect();
        Pre {
            n,
            nd,
            ns,
            ext,
            part,
            used,
            fan,
            keeps,
        }
    }

    /// A lower bound of the energy of every choice that extends `c`'s levels 0..=`top` (`rem` is
    /// what the levels above must still iterate, in time or across instances: a fan-out above
    /// multiplies the instances by what it takes from each instance's loops). Per data space:
    /// the fills and reads of the levels fixed so far with loops placed as the order bound places
    /// them, the loops above `top` counted wherever they may go, and the reads of the unknown
    /// level that feeds the highest kept one at the cheapest price any level above could charge.
    #[allow(clippy::needless_range_loop)]
    fn partial_bound(&self, c: &Choice, top: usize, rem: &[u64]) -> f64 {
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
        let mut total = 0.0;
        for (t, s) in self.p.spaces.iter().enumerate() {
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
        }
        total
    }

    /// The energy of a choice with the given orders, in closed form;
    /// equal to `nest::energy` of `mapping(c, orders)`.
    #[cfg(test)]
    fn fast_energy(&self, c: &Choice, orders: &[Order], pre: &Pre) -> f64 {
        self.closed_form(c, orders, pre, Form::Exact, Spaces::All)
    }

    /// A lower bound of `fast_energy` over all loop orders: a tile with one dim per axis is
    /// refetched as if each level put the loops it ignores innermost; a sliding-window tile
    /// (whose refetches also depend on which loop slides it) counts its whole extent once.
    #[cfg(test)]
    fn order_bound(&self, c: &Choice, pre: &Pre) -> f64 {
        let orders = vec![Order::new(); self.arch.len()];
        self.closed_form(c, &orders, pre, Form::OrderFree, Spaces::All)
    }

    /// A lower bound of `fast_energy` over all loop orders, tighter than `order_bound` when some
    /// data space slides: the tiles with one dim per axis counted exactly under the orders best
    /// for all of them together (their energy separates per level, so one pass over the levels
    /// finds those orders), the sliding ones by their order-free bound.
    #[cfg(test)]
    fn sliding_order_bound(&self, c: &Choice, pre: &Pre) -> f64 {
        let orders = vec![Order::new(); self.arch.len()];
        let sliding = self.closed_form(c, &orders, pre, Form::OrderFree, Spaces::Sliding);
        sliding + self.min_orders(c, pre, Spaces::Simple).0
    }

    fn closed_form(
        &self,
        c: &Choice,
        orders: &[Order],
        pre: &Pre,
        form: Form,
        spaces: Spaces,
    ) -> f64 {
        let n = self.arch.len();
        let nd = self.p.dims.len();
        // Temporal loops outermost first: (level, dim, factor, stride); spatial loops lead their
        // level, so a temporal loop's stride is the span of its dim below its level.
        let mut flat: SmallVec<[(usize, usize, u64, u64); 16]> = SmallVec::new();
        let mut innermost_spatial = false;
        for l in (0..n).rev() {
            let stride = |d: usize| if l == 0 { 1 } else { pre.ext(l - 1)[d] };
            if l + 1 == n {
                for &d in &self.pinned {
                    if c.temporal[l][d] > 1 {
                        flat.push((l, d, c.temporal[l][d], stride(d)));
                    }
                }
            }
            let mut level_temporal = false;
            let pinned_here = l + 1 == n && self.pinned.iter().any(|&d| c.temporal[l][d] > 1);
            let order = &orders[l];
            let listed = |d: usize| order.contains(&d);
            for d in order.iter().copied().chain((0..nd).filter(|&d| !listed(d))) {
                if c.temporal[l][d] > 1 && !(l + 1 == n && self.pinned.contains(&d)) {
                    flat.push((l, d, c.temporal[l][d], stride(d)));
                    level_temporal = true;
                }
            }
            // Within a level: pinned loops, then spatial, then the other temporal loops.
            if level_temporal {
                innermost_spatial = false;
            } else if c.spatial[l].iter().any(|&f| f > 1) {
                innermost_spatial = true;
            } else if pinned_here {
                innermost_spatial = false;
            }
        }
        let reread = !innermost_spatial;
        let ones: Small = SmallVec::from_elem(1, nd);
        // Words one instance of `inner` (None = a MAC) takes in over the run.
        let share = |t: usize, inner: Option<usize>| -> u64 {
            let outer = flat.iter().filter(|f| inner.is_none_or(|c| f.0 > c));
            if inner.is_none() && reread {
                return outer.map(|f| f.2).fold(1u64, |a, b| a.saturating_mul(b));
            }
            let ext: &[u64] = inner.map_or(&ones, |c| pre.ext(c));
            if form == Form::OrderFree && self.simple[t] {
                // Loops a tile ignores sit innermost in every level: it is refetched for every
                // loop it depends on, and for every loop of a level above the lowest level
                // holding one (no order of a level moves a loop across levels).
                let lowest = flat
                    .iter()
                    .filter(|f| inner.is_none_or(|c| f.0 > c) && self.rel[t][f.1])
                    .map(|f| f.0)
                    .min();
                let Some(lowest) = lowest else {
                    return tile_words(&self.p.spaces[t], ext);
                };
                let times = outer
                    .filter(|f| self.rel[t][f.1] || f.0 > lowest)
                    .map(|f| f.2)
                    .fold(1u64, |a, b| a.saturating_mul(b));
                return tile_words(&self.p.spaces[t], ext).saturating_mul(times);
            }
            if form == Form::OrderFree {
                return self.sliding_bound(t, ext, inner, &flat);
            }
            if self.simple[t] {
                // Tiles are equal or disjoint: refetched whenever a loop it depends on moves,
                // and whenever any loop outside the innermost such loop moves.
                let mut run = 1u64;
                let mut last = 1u64;
                for f in outer {
                    run = run.saturating_mul(f.2);
                    if self.rel[t][f.1] {
                        last = run;
                    }
                }
                return tile_words(&self.p.spaces[t], ext).saturating_mul(last);
            }
            let loops: SmallVec<[(usize, u64, u64); 16]> = outer.map(|f| (f.1, f.2, f.3)).collect();
            nest::closed_share(&self.p.spaces[t], ext, &loops)
        };
        let mut total = 0.0;
        for (t, s) in self.p.spaces.iter().enumerate() {
            let counted = match spaces {
                Spaces::All => true,
                Spaces::Simple => self.simple[t],
                Spaces::Sliding => !self.simple[t],
            };
            if !counted {
                continue;
            }
            let mut child: Option<usize> = None;
            for l in 0..n {
                if !pre.keeps(l, t) {
                    continue;
                }
                let fan = pre.fan(t, child.map_or(0, |cl| cl + 1), l);
                let traffic = share(t, child).saturating_mul(fan);
                let own = if l + 1 < n { share(t, Some(l)) } else { 0 };
                let part = pre.part(l, t);
                total +=
                    access_pj(&self.arch[l], s.output, traffic, own, part) * pre.used[l] as f64;
                child = Some(l);
            }
        }
        total
    }

    /// A lower bound, over loop orders, of the words a sliding-window tile of extents `ext` at
    /// `inner` takes in from the temporal loops `flat` above it. Every word of the union of the
    /// tiles comes in once. And for any level j, the run splits into blocks, one per iteration
    /// of the loops above j, each sweeping a translate of the union U_j of the tiles over the
    /// loops up to j: a block starts with at most one tile of it held and brings in the rest,
    /// so the share is at least (blocks) x (|U_j| - |tile|).
    fn sliding_bound(
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

    /// Per data space with one dim per axis, the dims of a level's order (outermost first) that
    /// follow the last dim the space depends on, as a bit set.
    fn inner_irrelevant(&self, order: &[usize]) -> SmallVec<[u64; 4]> {
        self.rel
            .iter()
            .zip(&self.simple)
            .filter(|(_, simple)| **simple)
            .map(|(rel, _)| {
                order
                    .iter()
                    .rev()
                    .take_while(|&&d| !rel[d])
                    .fold(0u64, |m, &d| m | 1 << (d % 64))
            })
            .collect()
    }

    /// The orders, level by level from the outermost, that minimise the exact `closed_form` of
    /// `spaces`, and that minimum (the energy of simple data spaces separates per level, so for
    /// them this is the minimum over all orders).
    fn min_orders(&self, c: &Choice, pre: &Pre, spaces: Spaces) -> (f64, Vec<Order>) {
        let n = self.arch.len();
        let nd = self.p.dims.len();
        let mut orders: Vec<Order> = vec![Order::new(); n];
        let mut best_e = self.closed_form(c, &orders, pre, Form::Exact, spaces);
        // With one dim per axis in every data space counted, a level's order only decides, per
        // space, which of its loops sit inside the innermost one the space depends on: orders
        // that agree on those sets cost the same, and only the first is evaluated (the one a
        // tie would keep).
        let dedup = match spaces {
            Spaces::All => !self.slides,
            Spaces::Simple => true,
            Spaces::Sliding => false,
        };
        // The innermost level's order changes no closed-form count.
        for l in (1..n).rev() {
            let top = l + 1 == n;
            let items: Order = (0..nd)
                .filter(|&d| c.temporal[l][d] > 1 && !(top && self.pinned.contains(&d)))
                .collect();
            if items.len() < 2 {
                continue;
            }
            let mut best_order = Order::new();
            let mut seen: SmallVec<[SmallVec<[u64; 4]>; 24]> = SmallVec::new();
            for perm in self.index_permutations(items.len()).iter() {
                orders[l].clear();
                orders[l].extend(perm.iter().map(|&i| items[i]));
                if dedup {
                    let key = self.inner_irrelevant(&orders[l]);
                    if seen.contains(&key) {
                        continue;
                    }
                    seen.push(key);
                }
                let e = self.closed_form(c, &orders, pre, Form::Exact, spaces);
                if e < best_e {
                    best_e = e;
                    best_order = orders[l].clone();
                }
            }
            orders[l] = best_order;
        }
        (best_e, orders)
    }

    /// Every order of 0..k, in lexicographic order, computed once per k.
    fn index_permutations(&self, k: usize) -> std::rc::Rc<Vec<Order>> {
        if let Some(p) = self.perms.borrow().get(&k) {
            return p.clone();
        }
        let all: Vec<usize> = (0..k).collect();
        let p = std::rc::Rc::new(
            permutations(&all)
                .into_iter()
                .map(|v| v.into_iter().collect())
                .collect(),
        );
        self.perms.borrow_mut().insert(k, std::rc::Rc::clone(&p));
        p
    }
}

/// How `closed_form` counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Exactly, under the given orders.
    Exact,
    /// A bound over all orders.
    OrderFree,
}

/// The data spaces `closed_form` counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spaces {
    All,
    /// Those with one dim per axis.
    Simple,
    /// Those with a sliding window.
    Sliding,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::nest::{DataSpace, Dim};

    fn sp(name: &str, axes: Vec<Vec<(usize, u64)>>, output: bool) -> DataSpace {
        DataSpace {
            name: name.into(),
            axes,
            output,
            word_bits: 8,
        }
    }

    fn problem(dims: &[(&str, u64)], spaces: Vec<DataSpace>) -> Problem {
        Problem {
            dims: dims
                .iter()
                .map(|(name, bound)| Dim {
                    name: name.to_string(),
                    bound: *bound,
                })
                .collect(),
            spaces,
        }
    }

    fn matmul(n: u64, c: u64, k: u64) -> Problem {
        problem(
            &[("N", n), ("C", c), ("K", k)],
            vec![
                sp("Weights", vec![vec![(1, 1)], vec![(2, 1)]], false),
                sp("Inputs", vec![vec![(0, 1)], vec![(1, 1)]], false),
                sp("Outputs", vec![vec![(0, 1)], vec![(2, 1)]], true),
            ],
        )
    }

    fn conv1d(k: u64, r: u64, p: u64) -> Problem {
        problem(
            &[("K", k), ("R", r), ("P", p)],
            vec![
                sp("Weights", vec![vec![(0, 1)], vec![(1, 1)]], false),
                sp("Inputs", vec![vec![(1, 1), (2, 1)]], false),
                sp("Outputs", vec![vec![(0, 1)], vec![(2, 1)]], true),
            ],
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn level(
        name: &str,
        cap: Option<u64>,
        block: u64,
        inst: u64,
        r: f64,
        w: f64,
        u: f64,
        keeps: [bool; 3],
    ) -> Level {
        Level {
            name: name.into(),
            capacity_words: cap,
            block_words: block,
            instances: inst,
            read_pj: r,
            write_pj: w,
            update_pj: u,
            keeps: keeps.to_vec(),
        }
    }

    fn three_levels(pes: u64, rf: u64, glb: u64, bypass: bool) -> Vec<Level> {
        vec![
            level("RF", Some(rf), 1, pes, 0.4, 0.4, 0.45, [true; 3]),
            level(
                "GLB",
                Some(glb),
                4,
                1,
                12.0,
                10.0,
                11.0,
                [true, true, !bypass],
            ),
            level("DRAM", None, 8, 1, 200.0, 200.0, 210.0, [true; 3]),
        ]
    }

    fn two_levels(buf: u64) -> Vec<Level> {
        vec![
            level("Buffer", Some(buf), 1, 1, 0.5, 0.6, 0.55, [true; 3]),
            level("DRAM", None, 4, 1, 60.0, 50.0, 55.0, [true; 3]),
        ]
    }

    fn same(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Small problems: the search (closed form, orders per level) finds the minimum of the
    /// exhaustive enumeration (exact walk, every combination of orders).
    /// K C P Q R S, the input strided by `stride` along P (as `passes` builds a convolution).
    fn conv2d(k: u64, c: u64, p: u64, q: u64, r: u64, s: u64, stride: u64) -> Problem {
        problem(
            &[("K", k), ("C", c), ("P", p), ("Q", q), ("R", r), ("S", s)],
            vec![
                sp(
                    "Weights",
                    vec![vec![(0, 1)], vec![(1, 1)], vec![(4, 1)], vec![(5, 1)]],
                    false,
                ),
                sp(
                    "Inputs",
                    vec![
                        vec![(1, 1)],
                        vec![(2, stride), (4, 1)],
                        vec![(3, 1), (5, 1)],
                    ],
                    false,
                ),
                sp(
                    "Outputs",
                    vec![vec![(0, 1)], vec![(2, 1)], vec![(3, 1)]],
                    true,
                ),
            ],
        )
    }

    #[test]
    fn search_finds_the_exhaustive_minimum_on_small_problems() {
        let cases: Vec<(&str, Problem, Vec<Level>, Vec<usize>)> = vec![
            (
                "matmul 3 levels",
                matmul(4, 6, 2),
                three_levels(1, 8, 40, false),
                vec![],
            ),
            (
                "matmul 3 levels bypass",
                matmul(4, 4, 4),
                three_levels(1, 6, 24, true),
                vec![],
            ),
            (
                "matmul 4 PEs",
                matmul(4, 2, 4),
                three_levels(4, 6, 64, false),
                vec![],
            ),
            (
                "matmul pinned N",
                matmul(3, 4, 4),
                three_levels(1, 8, 32, false),
                vec![0],
            ),
            ("conv1d 2 levels", conv1d(2, 3, 8), two_levels(12), vec![]),
            (
                "conv1d 2 levels wide",
                conv1d(4, 3, 16),
                two_levels(24),
                vec![],
            ),
            (
                "conv1d 3 levels",
                conv1d(2, 3, 6),
                three_levels(1, 6, 30, false),
                vec![],
            ),
        ];
        for (name, p, arch, pinned) in cases {
            let (xm, xs) = exhaustive(&p, &arch, &pinned, 5_000_000).unwrap();
            let opts = Options {
                fill_only: Some(false),
                ..Options::default()
            };
            let (m, s) = search_with(&p, &arch, &pinned, &opts).unwrap();
            assert!(
                same(s.energy_pj, xs.energy_pj),
                "{name}: search {} pJ ({m:?}) vs exhaustive {} pJ ({xm:?})",
                s.energy_pj,
                xs.energy_pj
            );
            let exact = nest::analyze_exact(&p, &arch, &m).unwrap();
            assert_eq!(exact, s, "{name}: closed form vs walk");
            let opts = Options {
                fill_only: Some(true),
                ..Options::default()
            };
            let (_, f) = search_with(&p, &arch, &pinned, &opts).unwrap();
            eprintln!(
                "{name}: exhaustive {:.3} pJ, fill-only {:.3} pJ",
                xs.energy_pj, f.energy_pj
            );
            assert!(f.energy_pj >= xs.energy_pj - 1e-9, "{name}");
            if !pinned.is_empty() {
                let top = m.levels.last().unwrap();
                assert_eq!(top[0].dim, pinned[0], "{name}: pinned dim outermost");
                assert_eq!(top[0].factor, p.dims[pinned[0]].bound, "{name}");
            }
        }
    }

    /// Every mapping of small mapspaces, sliding windows included: the closed form equals the
    /// exact walk, and the order-free bound stays below it.
    #[test]
    fn closed_form_agrees_with_the_exact_walk() {
        for (p, arch) in [
            (matmul(4, 6, 2), three_levels(1, 8, 40, true)),
            (matmul(4, 2, 4), three_levels(4, 6, 64, false)),
            (matmul(6, 4, 4), two_levels(16)),
            (conv1d(2, 3, 8), two_levels(12)),
            (conv1d(2, 3, 6), three_levels(1, 6, 30, true)),
            (conv1d(4, 3, 4), three_levels(2, 8, 40, false)),
            (conv2d(1, 2, 4, 1, 3, 2, 2), three_levels(1, 8, 40, false)),
        ] {
            let ctx = Ctx::new(&p, &arch, &[]).unwrap();
            let mut checked = 0;
            ctx.enumerate(false, &mut |c| {
                let base = ctx.mapping(c, &vec![Order::new(); arch.len()]);
                for l in 0..arch.len() {
                    for perm in permutations(&ctx.movable(&base, l)) {
                        let mut orders = vec![Order::new(); arch.len()];
                        orders[l] = perm.into_iter().collect();
                        let m = ctx.mapping(c, &orders);
                        let a = nest::analyze(&p, &arch, &m).unwrap();
                        let b = nest::analyze_exact(&p, &arch, &m).unwrap();
                        assert_eq!(a, b, "{m:?}");
                        let pre = ctx.prepare(c);
                        let e = ctx.fast_energy(c, &orders, &pre);
                        assert!(same(e, a.energy_pj), "{m:?}: fast {e} vs {}", a.energy_pj);
                        assert!(ctx.order_bound(c, &pre) <= e * (1.0 + 1e-12), "{m:?}");
                        let bound = ctx.sliding_order_bound(c, &pre);
                        assert!(bound <= e * (1.0 + 1e-12), "{m:?}: {bound} > {e}");
                        checked += 1;
                    }
                }
                true
            });
            assert!(checked > 100, "{checked}");
        }
    }

    /// Problems too large for the exhaustive reference, with fan-out, bypass, sliding windows and
    /// single-tensor levels: branch and bound returns the mapping the unpruned search returns.
    #[test]
    fn pruning_never_changes_the_chosen_mapping() {
        let mut spads = three_levels(8, 12, 256, true);
        // Per-PE levels that each hold one data space, as Eyeriss's scratchpads.
        let mut w = level("WSpad", Some(6), 1, 8, 0.2, 0.2, 0.2, [true, false, false]);
        w.keeps = vec![true, false, false];
        spads.insert(0, w);
        spads[1].keeps = vec![false, true, true];
        let cases: Vec<(&str, Problem, Vec<Level>)> = vec![
            (
                "matmul 4 PEs",
                matmul(8, 6, 6),
                three_levels(4, 10, 96, false),
            ),
            (
                "matmul bypass",
                matmul(8, 12, 16),
                three_levels(1, 16, 128, true),
            ),
            (
                "conv1d 3 levels",
                conv1d(4, 3, 24),
                three_levels(2, 12, 64, false),
            ),
            ("matmul spads", matmul(4, 6, 8), spads.clone()),
            ("conv1d spads", conv1d(4, 3, 16), spads),
            (
                "conv2d stride 2",
                conv2d(2, 1, 4, 2, 3, 2, 2),
                three_levels(2, 12, 96, false),
            ),
        ];
        for (name, p, arch) in cases {
            for fill in [false, true] {
                let pruned = Options {
                    fill_only: Some(fill),
                    ..Options::default()
                };
                let full = Options {
                    prune: false,
                    ..pruned.clone()
                };
                let (a, sa) = search_with(&p, &arch, &[], &pruned).unwrap();
                let (b, sb) = search_with(&p, &arch, &[], &full).unwrap();
                assert_eq!(
                    a, b,
                    "{name} fill {fill}: {} vs {} pJ",
                    sa.energy_pj, sb.energy_pj
                );
            }
        }
    }

    #[test]
    fn a_kernel_kept_whole_stays_at_or_below_its_level_and_costs_no_less() {
        let p = conv2d(4, 2, 6, 4, 3, 3, 2);
        let arch = three_levels(2, 40, 400, false);
        let (_, free) = search(&p, &arch, &[]).unwrap();
        let opts = Options {
            whole_at: Some((vec![4, 5], 0)),
            ..Options::default()
        };
        let (m, kept) = search_with(&p, &arch, &[], &opts).unwrap();
        assert!(kept.energy_pj >= free.energy_pj * (1.0 - 1e-12));
        // The lowest level holding weights is level 0: R and S take all their factors there.
        for (l, loops) in m.levels.iter().enumerate() {
            for lp in loops.iter().filter(|lp| lp.dim >= 4 && lp.factor > 1) {
                assert_eq!((l, lp.factor), (0, 3), "{m:?}");
            }
        }
        // Weights bypassing level 0 move the kernel's level up to the next one.
        let mut arch = arch;
        arch[0].keeps[0] = false;
        let (m, _) = search_with(&p, &arch, &[], &opts).unwrap();
        assert!(
            m.levels[2..]
                .iter()
                .flatten()
                .all(|lp| lp.dim < 4 || lp.factor == 1),
            "{m:?}"
        );
    }

    #[test]
    fn the_search_is_deterministic_and_refuses_impossible_hierarchies() {
        let p = matmul(8, 8, 8);
        let arch = three_levels(4, 8, 64, false);
        let a = search(&p, &arch, &[]).unwrap();
        let b = search(&p, &arch, &[]).unwrap();
        assert_eq!(a.0, b.0);
        // A buffer holding fewer words than three tensors of one word each, with no bypass.
        let mut tight = two_levels(2);
        tight[0].keeps = vec![true; 3];
        let p = matmul(2, 2, 2);
        let r = search(&p, &tight, &[]);
        assert!(r.is_ok() || r.unwrap_err().contains("Buffer"));
        assert!(
            search(&p, &tight, &[7])
                .unwrap_err()
                .contains("pinned dim 7")
        );
    }

    /// A PVTv2-B2-like set of matmuls on a 16-PE hierarchy; prints the time per layer (run with
    /// `cargo test --release --lib pvt_matmuls -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn pvt_matmuls_search_time() {
        let arch = vec![
            level("RF", Some(64), 1, 16, 0.4, 0.4, 0.45, [true; 3]),
            level("GLB", Some(131_072), 8, 1, 18.0, 14.0, 14.0, [true; 3]),
            level("DRAM", None, 8, 1, 512.0, 512.0, 512.0, [true; 3]),
        ];
        let shapes: &[(u64, u64, u64)] = &[
            (3136, 64, 64),
            (3136, 64, 512),
            (3136, 512, 64),
            (49, 64, 128),
            (784, 128, 128),
            (784, 128, 1024),
            (196, 320, 320),
            (196, 320, 1280),
            (49, 512, 512),
            (49, 512, 2048),
            (49, 2048, 512),
            (3136, 64, 49), // attention QK: N=3136, D=64, M=49
            (3136, 49, 64), // attention AV
        ];
        let t = std::time::Instant::now();
        for &(n, c, k) in shapes {
            let s = std::time::Instant::now();
            let (m, st) = search(&matmul(n, c, k), &arch, &[]).unwrap();
            let lb = nest::compulsory(&matmul(n, c, k), &arch).energy_pj;
            eprintln!(
                "N={n} C={c} K={k}: {:.3e} pJ (compulsory {:.3e}) in {:?}: {:?}",
                st.energy_pj,
                lb,
                s.elapsed(),
                m.levels
            );
        }
        eprintln!("total {:?}", t.elapsed());
    }
}
