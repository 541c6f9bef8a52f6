//! Mapping search time for every pass of PVTv2-B2 (softmax MSA, SRA and EcoFormer attention, one
//! 224 x 224 image): the three models run once to file their passes, then each distinct pass is
//! mapped onto every memory level of `horowitz45` and `eyeriss65` with no cache, on one thread.
//! The goal is the whole of B2 under a second.
//!
//! `cargo bench --bench mapper` (plain `std::time::Instant`, no harness).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use picojoule::exec;
use picojoule::hardware::Hardware;
use picojoule::hardware::passes;
use picojoule::ledger::Work;
use picojoule::scenario::LoadedScenario;

fn kind(w: &Work) -> &'static str {
    match w {
        Work::Matmul { .. } => "matmul",
        Work::Attention { .. } => "attention",
        Work::Conv { groups: 1, .. } => "conv",
        Work::Conv { .. } => "grouped conv",
    }
}

fn main() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/paper-ecoformer-pvtv2.ron");
    let mut sc = LoadedScenario::load(&path).expect("scenario loads");
    sc.scenario.runs.retain(|r| r.model.contains("b2"));
    let t = Instant::now();
    let outs = exec::execute(&sc, &Default::default()).expect("runs");
    println!(
        "executed {} PVTv2-B2 runs in {:.1} s",
        outs.len(),
        t.elapsed().as_secs_f64()
    );
    let works: BTreeSet<Work> = outs
        .iter()
        .flat_map(|o| o.ledger.layers().flat_map(|(_, c)| c.4.keys().copied()))
        .collect();
    for hw in ["horowitz45", "eyeriss65"] {
        let cm = Hardware::load(hw).expect("preset").model;
        let mut by_kind: Vec<(&str, usize, f64, f64)> = Vec::new();
        let total = Instant::now();
        for w in &works {
            let t = Instant::now();
            passes::map_pass(&cm, w, None).expect("maps");
            let dt = t.elapsed().as_secs_f64();
            match by_kind.iter_mut().find(|k| k.0 == kind(w)) {
                Some(k) => {
                    k.1 += 1;
                    k.2 += dt;
                    k.3 = k.3.max(dt);
                }
                None => by_kind.push((kind(w), 1, dt, dt)),
            }
        }
        println!(
            "{hw}: {} distinct passes mapped in {:.3} s (goal: under 1 s)",
            works.len(),
            total.elapsed().as_secs_f64()
        );
        for (k, n, dt, max) in by_kind {
            println!("  {k:<15} {n:>3} passes  {dt:>8.3} s  (slowest {max:.3} s)");
        }
    }
}
