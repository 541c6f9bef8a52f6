//! The mapspace: tile factors per level (any divisors, only those that fit), spatial fan-out and
//! bypass choices, enumerated level by level from the MACs out with the partial bound pruning
//! what cannot win.

use smallvec::SmallVec;

use super::*;

/// The key of `Ctx::tiles`.
pub(super) type TileKey = (usize, bool, usize, Small, Forced);

/// Per dim, a factor a level must take (or none).
pub(super) type Forced = SmallVec<[Option<u64>; 8]>;

/// The tile extents that fit one level under one bypass choice, in lexicographic order, and
/// which of them are maximal (no dim can grow by a prime factor and still fit).
pub(super) struct FitSet {
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

pub(super) fn divisors(n: u64) -> Vec<u64> {
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

pub(super) fn primes(mut n: u64) -> Vec<u64> {
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
pub(super) fn factor_vectors(
    rem: &[u64],
    fixed: &[bool],
    max_product: Option<u64>,
) -> Vec<Vec<u64>> {
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

impl Ctx<'_> {
    /// Calls `visit` for each choice of factors, fan-out and bypass that fits; stops when it
    /// returns false.
    pub(super) fn enumerate(&self, fill: bool, visit: &mut dyn FnMut(&Choice) -> bool) {
        self.enumerate_bounded(fill, &std::cell::Cell::new(f64::INFINITY), visit)
    }

    /// `enumerate`, skipping the choices whose levels fixed so far bound their energy above
    /// `limit` (which `visit` may lower as it goes).
    pub(super) fn enumerate_bounded(
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

    pub(super) fn masks_of(&self, l: usize) -> Vec<Vec<bool>> {
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

    pub(super) fn need(&self, mask: &[bool], ext: &[u64]) -> u64 {
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
    pub(super) fn fitting_extents(
        &self,
        l: usize,
        mi: usize,
        mask: &[bool],
        cap: u64,
    ) -> std::rc::Rc<FitSet> {
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
    pub(super) fn fitting(
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
    pub(super) fn level(
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
            // Whole groups of this level's tiles are skipped by a bound over all of them: per
            // fan-out, over every bypass choice, then per bypass choice.
            let mut relaxed: Option<(Terms, Terms)> = None;
            if !top && limit.get().is_finite() {
                choice.spatial[l].copy_from_slice(sp);
                let (kept, bypassed) = self.relaxed_terms(choice, l, &rem_s);
                let any: f64 = kept.iter().zip(&bypassed).map(|(k, b)| k.min(*b)).sum();
                if above(limit.get(), any) {
                    continue;
                }
                relaxed = Some((kept, bypassed));
            }
            for (mi, mask) in self.masks[l].iter().enumerate() {
                if let Some((kept, bypassed)) = &relaxed {
                    let bound: f64 = (0..mask.len())
                        .map(|t| if mask[t] { kept[t] } else { bypassed[t] })
                        .sum();
                    if above(limit.get(), bound) {
                        continue;
                    }
                }
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
}
