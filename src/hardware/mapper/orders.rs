//! The closed-form energy of a choice under given loop orders, its order-free bounds, and the
//! search of each level's order.

use smallvec::SmallVec;

use super::*;

/// Per-choice quantities that do not depend on loop order.
pub(super) struct Pre {
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

/// How `closed_form` counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// Exactly, under the given orders.
    Exact,
    /// A bound over all orders.
    OrderFree,
}

/// The data spaces `closed_form` counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Spaces {
    All,
    /// Those with one dim per axis.
    Simple,
    /// Those with a sliding window.
    Sliding,
}

impl Ctx<'_> {
    /// What a choice fixes regardless of loop order: tiles, partitions, instances, fan-out.
    pub(super) fn prepare(&self, c: &Choice) -> Pre {
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

    /// The energy of a choice with the given orders, in closed form;
    /// equal to `nest::energy` of `mapping(c, orders)`.
    #[cfg(test)]
    pub(super) fn fast_energy(&self, c: &Choice, orders: &[Order], pre: &Pre) -> f64 {
        self.closed_form(c, orders, pre, Form::Exact, Spaces::All)
    }

    /// A lower bound of `fast_energy` over all loop orders: a tile with one dim per axis is
    /// refetched as if each level put the loops it ignores innermost; a sliding-window tile
    /// (whose refetches also depend on which loop slides it) counts its whole extent once.
    #[cfg(test)]
    pub(super) fn order_bound(&self, c: &Choice, pre: &Pre) -> f64 {
        let orders = vec![Order::new(); self.arch.len()];
        self.closed_form(c, &orders, pre, Form::OrderFree, Spaces::All)
    }

    /// A lower bound of `fast_energy` over all loop orders, tighter than `order_bound` when some
    /// data space slides: the tiles with one dim per axis counted exactly under the orders best
    /// for all of them together (their energy separates per level, so one pass over the levels
    /// finds those orders), the sliding ones by their order-free bound.
    #[cfg(test)]
    pub(super) fn sliding_order_bound(&self, c: &Choice, pre: &Pre) -> f64 {
        let orders = vec![Order::new(); self.arch.len()];
        let sliding = self.closed_form(c, &orders, pre, Form::OrderFree, Spaces::Sliding);
        sliding
            + self
                .min_orders(c, pre, Spaces::Simple, 0.0, f64::INFINITY)
                .0
    }

    pub(super) fn closed_form(
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

    /// Per data space with one dim per axis, the dims of a level's order (outermost first) that
    /// follow the last dim the space depends on, as a bit set.
    pub(super) fn inner_irrelevant(&self, order: &[usize]) -> SmallVec<[u64; 4]> {
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
    /// `floor`: a lower bound of the sliding spaces' energy over all orders, which lets an
    /// order whose simple spaces alone cost too much skip the sliding count; `cap`: orders that
    /// cannot cost less are not counted exactly.
    pub(super) fn min_orders(
        &self,
        c: &Choice,
        pre: &Pre,
        spaces: Spaces,
        floor: f64,
        cap: f64,
    ) -> (f64, Vec<Order>) {
        let n = self.arch.len();
        let nd = self.p.dims.len();
        let mut orders: Vec<Order> = vec![Order::new(); n];
        // With one dim per axis in every data space counted, a level's order only decides, per
        // space, which of its loops sit inside the innermost one the space depends on: orders
        // that agree on those sets cost the same, and only the first is evaluated (the one a
        // tie would keep); when every space counted is simple, their `closed_form` is the
        // simple spaces' one. With sliding spaces among them, the simple spaces' energy is
        // still the same for orders that agree, and is counted once per such set.
        let split = spaces == Spaces::All && self.slides;
        let dedup = match spaces {
            Spaces::All => !self.slides,
            Spaces::Simple => true,
            Spaces::Sliding => false,
        };
        let energy = |orders: &[Order]| self.closed_form(c, orders, pre, Form::Exact, spaces);
        let simple =
            |orders: &[Order]| self.closed_form(c, orders, pre, Form::Exact, Spaces::Simple);
        let sliding =
            |orders: &[Order]| self.closed_form(c, orders, pre, Form::Exact, Spaces::Sliding);
        // Orders that cannot cost less than `cap` need not be counted exactly: the minimum
        // returned is then only known to be at least `cap` (infinite if no order was counted).
        let mut best_e = if split {
            let s = simple(&orders);
            if above(cap, s + floor) {
                f64::INFINITY
            } else {
                s + sliding(&orders)
            }
        } else {
            energy(&orders)
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
            // Per set of inner loops seen: the simple spaces' energy.
            let mut seen: SmallVec<[(SmallVec<[u64; 4]>, f64); 24]> = SmallVec::new();
            for perm in self.index_permutations(items.len()).iter() {
                orders[l].clear();
                orders[l].extend(perm.iter().map(|&i| items[i]));
                let e = if dedup || split {
                    let key = self.inner_irrelevant(&orders[l]);
                    let s = match seen.iter().find(|(k, _)| *k == key) {
                        Some(_) if dedup => continue,
                        Some((_, s)) => *s,
                        None => {
                            let s = simple(&orders);
                            seen.push((key, s));
                            s
                        }
                    };
                    if dedup {
                        s
                    } else if above(best_e.min(cap), s + floor) {
                        continue;
                    } else {
                        s + sliding(&orders)
                    }
                } else {
                    energy(&orders)
                };
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
    pub(super) fn index_permutations(&self, k: usize) -> std::rc::Rc<Vec<Order>> {
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
