//! Sweep benchmark (std Instant, prints a table):
//! - priced points per second of a cost-only sweep (compiled ledgers, no re-simulation);
//! - the same through `run_sweep` (rows built, Monte Carlo off, no files);
//! - wall time of a model sweep on 1 and 2 threads, and their ratio.
//!
//! `cargo bench --bench sweep`

use std::path::PathBuf;
use std::time::Instant;

use picojoule::exec;
use picojoule::hardware::compiled::CompiledSet;
use picojoule::scenario::LoadedScenario;
use picojoule::sweep::{self, Options, Overrides, Plan};

fn plan(axes: &[(&str, &str)]) -> Plan {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.ron");
    let sc = LoadedScenario::load(&path).expect("quickstart loads");
    let ov = Overrides {
        axes: axes
            .iter()
            .map(|(f, a)| {
                (
                    format!("{f} {a}"),
                    sweep::parse_cli_axis(f, a).expect("axis"),
                )
            })
            .collect(),
        ..Default::default()
    };
    Plan::new(sc, ov).expect("plan")
}

fn main() {
    let mut table: Vec<(String, String)> = Vec::new();

    // 1. Cost-only: 1000 x 1000 grid, 3 runs of quickstart, ledgers simulated once.
    let p = plan(&[
        ("--range", "add.fp32=0.1:1.0:1000"),
        ("--range", "mul.fp32=1:5:1000"),
    ]);
    let outs = exec::execute(&p.sc, &Default::default()).expect("runs");
    let ledgers: Vec<&picojoule::ledger::Ledger> = outs.iter().map(|o| &o.ledger).collect();
    // Traced ledgers are priced one by one; a point that moves a memory energy (the second axis
    // here) re-prices through `price` for the hierarchy.
    let compiled = CompiledSet::new(&ledgers, &p.cm);
    let lines: usize = outs
        .iter()
        .map(|o| {
            o.ledger
                .layers()
                .map(|(_, c)| c.iter().count())
                .sum::<usize>()
        })
        .sum();
    let pricer = sweep::Pricer::new(&p);
    let n = p.n_points();
    let mut dt = f64::INFINITY;
    let mut check = 0.0;
    for _ in 0..3 {
        let t = Instant::now();
        check = pricer.price_totals(0..n, &compiled);
        dt = dt.min(t.elapsed().as_secs_f64());
    }
    assert!(check.is_finite());
    let priced = (n * compiled.len()) as f64;
    table.push((
        "cost-only grid".into(),
        format!(
            "{n} points x {} runs ({lines} ledger lines in all)",
            compiled.len()
        ),
    ));
    table.push((
        "priced (point, run) per second, 1 thread, best of 3".into(),
        format!("{:.3e}", priced / dt),
    ));
    table.push((
        "grid points per second, 1 thread".into(),
        format!("{:.3e}", n as f64 / dt),
    ));

    // 2. The same through run_sweep (rows, parallel pricing), 200k points.
    let p2 = plan(&[
        ("--range", "add.fp32=0.1:1.0:400"),
        ("--range", "mul.fp32=1:5:500"),
    ]);
    let t = Instant::now();
    let res = sweep::run_sweep(&p2, &Options::default()).expect("sweep");
    let dt2 = t.elapsed().as_secs_f64();
    table.push((
        "run_sweep end to end (simulate once + rows)".into(),
        format!(
            "{} points in {:.3} s = {:.3e} points/s ({} threads)",
            p2.n_points(),
            dt2,
            p2.n_points() as f64 / dt2,
            rayon::current_num_threads()
        ),
    ));
    drop(res);

    // 3. Model sweep: 8 thresholds x 3 runs = 24 simulations, on 1 and 2 threads.
    let p3 = plan(&[(
        "--set",
        "model.lif.v_threshold=0.25,0.5,0.75,1,1.25,1.5,1.75,2",
    )]);
    let mut times = Vec::new();
    let mut results = Vec::new();
    // Best of 3, alternating, so a burst of load elsewhere on the machine hurts both alike.
    let pools: Vec<rayon::ThreadPool> = [1, 2]
        .iter()
        .map(|&n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("pool")
        })
        .collect();
    times.resize(2, f64::INFINITY);
    for _ in 0..3 {
        for (i, pool) in pools.iter().enumerate() {
            let t = Instant::now();
            let r = pool
                .install(|| sweep::run_sweep(&p3, &Options::default()))
                .expect("sweep");
            times[i] = times[i].min(t.elapsed().as_secs_f64());
            if results.len() < 2 {
                results.push(picojoule::report::sweep_table::render_csv(&r));
            }
        }
    }
    assert_eq!(results[0], results[1], "thread count changed the result");
    table.push((
        "model sweep (24 simulations of 256 tokens), 1 thread, best of 3".into(),
        format!("{:.3} s", times[0]),
    ));
    table.push((
        "model sweep, 2 threads, best of 3".into(),
        format!("{:.3} s", times[1]),
    ));
    table.push((
        "speed-up 1 -> 2 threads".into(),
        format!("{:.2}x (identical output)", times[0] / times[1]),
    ));

    let w = table.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("{:<w$}  value", "measure");
    println!("{}  {}", "-".repeat(w), "-".repeat(40));
    for (k, v) in table {
        println!("{k:<w$}  {v}");
    }
}
