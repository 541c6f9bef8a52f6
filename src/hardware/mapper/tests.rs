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

/// Every choice of small mapspaces (fan-out, bypass and sliding windows included): at each
/// level, the bound over all of that level's tiles and bypass choices stays below the choice's
/// least energy over loop orders.
#[test]
fn a_levels_relaxed_bound_stays_below_every_choice_it_covers() {
    for (p, arch) in [
        (matmul(4, 6, 2), three_levels(1, 8, 40, true)),
        (matmul(4, 2, 4), three_levels(4, 6, 64, false)),
        (conv1d(2, 3, 8), two_levels(12)),
        (conv1d(4, 3, 4), three_levels(2, 8, 40, true)),
        (conv2d(1, 2, 4, 2, 3, 2, 2), three_levels(2, 8, 40, false)),
    ] {
        let ctx = Ctx::new(&p, &arch, &[]).unwrap();
        let nd = p.dims.len();
        let mut checked = 0;
        ctx.enumerate(false, &mut |c| {
            let pre = ctx.prepare(c);
            let (e, _) = ctx.min_orders(c, &pre, Spaces::All, 0.0, f64::INFINITY);
            let mut rem: Vec<u64> = p.dims.iter().map(|d| d.bound).collect();
            for l in 0..arch.len() - 1 {
                let rem_s: Vec<u64> = (0..nd).map(|d| rem[d] / c.spatial[l][d]).collect();
                let mut relaxed = Choice {
                    temporal: c.temporal.clone(),
                    spatial: c.spatial.clone(),
                    keeps: c.keeps.clone(),
                };
                let (kept, bypassed) = ctx.relaxed_terms(&mut relaxed, l, &rem_s);
                let bound: f64 = (0..p.spaces.len())
                    .map(|t| if c.keeps[l][t] { kept[t] } else { bypassed[t] })
                    .sum();
                assert!(bound <= e * (1.0 + 1e-12), "level {l}: {bound} > {e}");
                rem = (0..nd).map(|d| rem_s[d] / c.temporal[l][d]).collect();
                checked += 1;
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
