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

mod bounds;
mod orders;
mod space;
#[cfg(test)]
mod tests;

use bounds::*;
use orders::*;
use space::*;

use super::nest::{self, Level, Loop, Mapping, Problem, Stats, tile_words};

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
        let mut floor = 0.0;
        if opts.prune && ctx.slides {
            let free = Order::new();
            let orders = vec![free; ctx.arch.len()];
            let sliding = ctx.closed_form(choice, &orders, &pre, Form::OrderFree, Spaces::Sliding);
            let simple = ctx.closed_form(choice, &orders, &pre, Form::OrderFree, Spaces::Simple);
            if above(limit.get(), sliding + simple)
                || above(
                    limit.get(),
                    sliding
                        + ctx
                            .min_orders(choice, &pre, Spaces::Simple, 0.0, f64::INFINITY)
                            .0,
                )
            {
                return true;
            }
            floor = sliding;
        }
        let (e, orders) = ctx.min_orders(choice, &pre, Spaces::All, floor, limit.get());
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

impl<'a> Ctx<'a> {
    fn new(p: &'a Problem, arch: &'a [Level], pinned: &[usize]) -> Result<Self, String> {
        nest::check_problem(p, arch)?;
        for &d in pinned {
            if d >= p.dims.len() {
                return Err(format!(
                    "pinned dim {d} does not exist (the problem has {})",
                    p.dims.len()
                ));
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
}
