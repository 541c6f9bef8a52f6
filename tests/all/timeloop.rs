//! Timeloop's published reference runs (tests/fixtures/timeloop/*.ron) reproduced by the loop-nest
//! analysis: per level and data space, reads, fills and updates per instance, and energy.

use picojoule::hardware::nest::{self, Level, Mapping, Problem};
use serde::Deserialize;

use super::util::repo_path;

/// (data space, utilized instances, reads, fills, updates per instance, energy pJ).
type Expected = (String, u64, u64, u64, u64, f64);

#[derive(Deserialize)]
struct Fixture {
    problem: Problem,
    arch: Vec<Level>,
    mapping: Mapping,
    macs: u64,
    mac_pj: f64,
    /// Per level, in the order of the stats file.
    expected: Vec<(String, Vec<Expected>)>,
}

pub const RUNS: &[&str] = &[
    "00-conv1d-1level",
    "01-conv1d-2level-ws",
    "01-conv1d-2level-os",
    "02-conv1d-oc-2level-untiled",
    "02-conv1d-oc-2level-tiled",
    "03-conv1d-oc-3level",
    "03-conv1d-oc-3level-bypass",
    "04-conv1d-oc-ic-16pe-cp",
    "04-conv1d-oc-ic-16pe-kp",
    "06-eyeriss-vgg02-layer5",
];

fn load(name: &str) -> Fixture {
    let path = repo_path(&format!("tests/fixtures/timeloop/{name}.ron"));
    let text = std::fs::read_to_string(&path).unwrap();
    ron::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn check(name: &str, exact: bool) {
    let f = load(name);
    let stats = if exact {
        nest::analyze_exact(&f.problem, &f.arch, &f.mapping)
    } else {
        nest::analyze(&f.problem, &f.arch, &f.mapping)
    }
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(stats.macs, f.macs, "{name}: MACs");
    let mut expected_pj = 0.0;
    for (level, spaces) in &f.expected {
        let ls = stats
            .levels
            .iter()
            .find(|l| &l.name == level)
            .unwrap_or_else(|| panic!("{name}: no level {level}"));
        for (space, inst, reads, fills, updates, pj) in spaces {
            let t = f
                .problem
                .spaces
                .iter()
                .position(|s| &s.name == space)
                .unwrap();
            let a = ls.per_space[t];
            let got = (
                ls.instances,
                a.reads / ls.instances,
                a.fills / ls.instances,
                a.updates / ls.instances,
            );
            assert_eq!(
                got,
                (*inst, *reads, *fills, *updates),
                "{name}: {level} {space} (instances, reads, fills, updates)"
            );
            // Timeloop prints energies to 0.01 pJ.
            assert!(
                (ls.per_space_pj[t] - pj).abs() <= 0.006,
                "{name}: {level} {space} energy {} vs {pj}",
                ls.per_space_pj[t]
            );
            expected_pj += pj;
        }
    }
    assert!(
        (stats.energy_pj - expected_pj).abs() <= 0.01 * f.expected.len() as f64 * 3.0,
        "{name}: total {} vs {expected_pj}",
        stats.energy_pj
    );
}

#[test]
fn timeloop_reference_runs_match_per_level_and_tensor() {
    for name in RUNS {
        check(name, false);
    }
}

#[test]
fn timeloop_reference_runs_match_with_the_exact_walk() {
    for name in RUNS {
        check(name, true);
    }
}

/// Prints the per-run tables of docs/timeloop.md from the fixtures and the analysis
/// (`cargo test --test all timeloop_tables -- --ignored --nocapture`).
#[test]
#[ignore]
fn timeloop_tables() {
    for name in RUNS {
        let f = load(name);
        let stats = nest::analyze(&f.problem, &f.arch, &f.mapping).unwrap();
        println!("### {name}\n");
        let dims: Vec<String> = f
            .problem
            .dims
            .iter()
            .map(|d| format!("{}={}", d.name, d.bound))
            .collect();
        println!("{}; {} MACs.\n", dims.join(", "), stats.macs);
        println!("Mapping, outermost level first, loops outermost first:\n");
        for (l, loops) in f.mapping.levels.iter().enumerate().rev() {
            let txt: Vec<String> = loops
                .iter()
                .map(|lp| {
                    let sp = if lp.spatial { " (spatial)" } else { "" };
                    format!("{}{}{sp}", f.problem.dims[lp.dim].name, lp.factor)
                })
                .collect();
            let txt = if txt.is_empty() {
                "-".to_string()
            } else {
                txt.join(", ")
            };
            println!("- {}: {txt}", f.arch[l].name);
        }
        println!();
        println!(
            "| level | tensor | inst. | Timeloop reads / fills / updates | picojoule reads / fills / updates | Timeloop pJ | picojoule pJ |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (level, spaces) in &f.expected {
            let ls = stats.levels.iter().find(|l| &l.name == level).unwrap();
            for (space, inst, reads, fills, updates, pj) in spaces {
                let t = f
                    .problem
                    .spaces
                    .iter()
                    .position(|s| &s.name == space)
                    .unwrap();
                let a = ls.per_space[t];
                let i = ls.instances;
                println!(
                    "| {level} | {space} | {inst} | {reads} / {fills} / {updates} | {} / {} / {} | {pj:.2} | {:.2} |",
                    a.reads / i,
                    a.fills / i,
                    a.updates / i,
                    ls.per_space_pj[t]
                );
            }
        }
        println!(
            "\nMemory energy: picojoule {:.2} pJ; MACs (Timeloop, not part of it) {:.2} pJ.\n",
            stats.energy_pj, f.mac_pj
        );
    }
}
