//! Sweeps: run a scenario over a grid of cost-model values and model parameters.
//!
//! Two kinds of axes, two costs:
//! - **cost axes** (`add.fp32`, `memory.dram.read`, ...: a cost-model path) re-price the ledgers
//!   of one simulation. Each ledger is compiled once (`hardware::compiled`), after which a point
//!   is a small expression evaluation and one dot product.
//! - **model axes** (`model.lif.v_threshold`, `model.n_embd`, ...: a dotted path into the model
//!   description) change what runs, so each distinct model point is simulated, in parallel, and
//!   results are kept in grid order whatever the thread count.
//! - **numerics axes** (`arith.mode`, `arith.lmul_bits`, `arith.acc`, `arith.scope`) set the
//!   runs' arithmetic mode and re-simulate, like model axes.
//!
//! Grid order: the first axis varies slowest. Points are numbered in that order; `--shard K/N`
//! takes the K-th of N contiguous slices. Finished points are appended to `points.jsonl` (whole
//! lines, fsynced), so an interrupted sweep keeps them and `--resume` skips them; `merge` joins
//! the points files of shards into the table a single run gives.

mod axis;
pub mod breakeven;
mod grid;
mod lock;
pub mod overrides;
mod plan;
mod price;
mod records;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::engine::arith::ArithSpec;
use crate::error::{Error, Result, write_atomic};
use crate::exec::{self, RunOutput};
use crate::hardware::compiled::CompiledSet;

pub use crate::scenario::{AxisSpec, AxisValue, BreakevenSpec, SweepSpec};
pub use axis::{Axis, MAX_POINTS, Target, expand, numerics_axis, parse_cli_axis};
pub use breakeven::{Breakeven, Crossing, breakeven};
pub use grid::{grid_bytes, grid_index, grid_points, parse_shard, shard_range};
pub use lock::{LOCK_FILE, OutLock};
pub use plan::{Overrides, Plan};
pub use price::Pricer;
pub use records::{
    META_FILE, Mc, MetaAxis, MetaFile, POINTS_FILE, PointRecord, SweepMeta, SweepResult, SweepRow,
    ViewMeta, ViewRow, kind_energy, read_meta, read_points,
};

use axis::{batch_value, set_arith};
use price::Sim;
use records::{PointsWriter, points_line};

/// How far a sweep has got, reported as it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The work ahead: simulations (model points x runs) and points to price.
    Start {
        simulations: u64,
        points: u64,
    },
    Simulated(u64),
    Priced(u64),
    Finished,
}

/// Called with each step of progress (from worker threads); the caller decides how to show it.
pub type ProgressFn = std::sync::Arc<dyn Fn(Progress) + Send + Sync>;

/// How `run_sweep` works and where it writes.
#[derive(Clone, Default)]
pub struct Options {
    pub out: Option<PathBuf>,
    pub shard: Option<(usize, usize)>,
    pub resume: bool,
    /// Told of progress, when given.
    pub progress: Option<ProgressFn>,
    /// Limits every simulation is checked against.
    pub limits: exec::Limits,
}

/// Simulate every run at one model point (the model axes' value indices `midx`).
fn simulate(
    plan: &Plan,
    model_axes: &[usize],
    midx: &[usize],
    run: usize,
    limits: &exec::Limits,
) -> Result<RunOutput> {
    let (desc, base) = &plan.descs[run];
    let mut d = desc.clone();
    for (&ax, &vi) in model_axes.iter().zip(midx) {
        let a = &plan.axes[ax];
        if let Target::Model(p) = &a.target {
            d = overrides::apply(&d, p, &a.values[vi]).map_err(Error::input)?;
        }
    }
    let mut spec = plan.sc.scenario.runs[run].clone();
    for (&ax, &vi) in model_axes.iter().zip(midx) {
        let a = &plan.axes[ax];
        if a.target == Target::Batch {
            spec.batch = Some(batch_value(&a.values[vi]).map_err(Error::input)?);
        }
        if let Target::Numerics(p) = &a.target {
            let mut arith = spec.arith.clone().unwrap_or_else(|| ArithSpec::new("fp32"));
            set_arith(&mut arith, p, &a.values[vi]).map_err(Error::input)?;
            spec.arith = Some(arith);
        }
    }
    let out = exec::execute_desc(&plan.sc, &spec, d, base, limits)?;
    plan.sc
        .check_mappings(&plan.hw, [(out.label.as_str(), &out.ledger)])?;
    for (point, hw) in &plan.resized {
        plan.sc
            .check_mappings(hw, [(out.label.as_str(), &out.ledger)])
            .map_err(|e| Error::input(format!("{e} (at the sweep point {point})")))?;
    }
    Ok(out)
}

/// Refuse a grid whose rows would not fit in memory (`--max-memory`, else the available
/// memory): the rows of this shard are all held for the final table. Checked before anything
/// is simulated or written.
pub fn check_grid_memory(plan: &Plan, opts: &Options) -> Result<()> {
    let n = plan.n_points();
    let points = match opts.shard {
        Some((k, of)) => shard_range(n, k, of).len(),
        None => n,
    };
    let runs = plan.sc.scenario.runs.len();
    crate::resources::check(
        &format!(
            "the sweep grid ({points} points x {runs} runs = {} rows)",
            points.saturating_mul(runs)
        ),
        grid_bytes(points, runs, plan.axes.len(), opts.out.is_some()),
        opts.limits.max_memory,
    )
}

/// Run the sweep (this shard of it), writing points as they finish when `opts.out` is set.
pub fn run_sweep(plan: &Plan, opts: &Options) -> Result<SweepResult> {
    let meta = plan.meta();
    let n = plan.n_points();
    let range = match opts.shard {
        Some((k, of)) => shard_range(n, k, of),
        None => 0..n,
    };
    check_grid_memory(plan, opts)?;
    let runs = plan.sc.scenario.runs.len();
    // Resume: keep the finished points of the same sweep.
    let mut done: BTreeMap<usize, PointRecord> = BTreeMap::new();
    let mut writer = None;
    if let Some(dir) = &opts.out {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        let mf = MetaFile {
            meta: meta.clone(),
            shard: opts.shard,
        };
        let points_path = dir.join(POINTS_FILE);
        if opts.resume && dir.join(META_FILE).exists() {
            let old = read_meta(dir)?;
            if old != mf {
                return Err(Error::input(format!(
                    "--resume: {} holds a different sweep (scenario, cost model, axes, samples or shard changed); use another --out or drop --resume",
                    dir.display()
                )));
            }
            for rec in read_points(&points_path)? {
                if range.contains(&rec.point) {
                    done.insert(rec.point, rec);
                }
            }
        }
        write_atomic(
            &dir.join(META_FILE),
            (serde_json::to_string_pretty(&mf).expect("meta serialises") + "\n").as_bytes(),
        )?;
        // Rewrite the file with only complete, kept lines, then append.
        let kept: String = done.values().map(points_line).collect();
        write_atomic(&points_path, kept.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&points_path)
            .map_err(|source| Error::Write {
                path: points_path.clone(),
                source,
            })?;
        writer = Some(PointsWriter {
            file,
            path: points_path,
        });
    }
    let todo: Vec<usize> = range.clone().filter(|p| !done.contains_key(p)).collect();

    // Group the pending points by model point.
    let model_axes: Vec<usize> = (0..plan.axes.len())
        .filter(|&i| !matches!(plan.axes[i].target, Target::Cost(_)))
        .collect();
    let dims: Vec<usize> = plan.axes.iter().map(|a| a.values.len()).collect();
    let mut groups: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    let mut order: Vec<Vec<usize>> = Vec::new();
    for &p in &todo {
        let idx = grid_index(&dims, plan.zip, p);
        let m: Vec<usize> = model_axes.iter().map(|&a| idx[a]).collect();
        groups.entry(m.clone()).or_insert_with(|| {
            order.push(m.clone());
            Vec::new()
        });
        groups.get_mut(&m).expect("inserted").push(p);
    }
    let pricer = Pricer::new(plan);
    let threads = rayon::current_num_threads().max(1);
    let sims_total = (order.len() * runs) as u64;
    let report = |p: Progress| {
        if let Some(f) = &opts.progress {
            f(p)
        }
    };
    report(Progress::Start {
        simulations: sims_total,
        points: todo.len() as u64,
    });
    let mut fresh: Vec<PointRecord> = Vec::new();
    for batch in order.chunks(2 * threads) {
        let jobs: Vec<(usize, usize)> = (0..batch.len())
            .flat_map(|g| (0..runs).map(move |r| (g, r)))
            .collect();
        let outs: Vec<RunOutput> = jobs
            .par_iter()
            .map(|&(g, r)| {
                let o = simulate(plan, &model_axes, &batch[g], r, &opts.limits);
                report(Progress::Simulated(1));
                o
            })
            .collect::<Result<Vec<_>>>()?;
        // Jobs are group-major, so each group's runs are `runs` consecutive outputs.
        let mut outs = outs.into_iter();
        let sims: Vec<Vec<Sim>> = batch
            .iter()
            .map(|_| {
                outs.by_ref()
                    .take(runs)
                    .map(|o| Sim::new(o, &plan.cm, plan.view.as_ref()))
                    .collect()
            })
            .collect();
        for (g, m) in batch.iter().enumerate() {
            let pts = &groups[m];
            let ledgers: Vec<&crate::ledger::Ledger> =
                sims[g].iter().map(|s| &s.out.ledger).collect();
            let set = CompiledSet::new(&ledgers, &plan.cm);
            for chunk in pts.chunks(4096) {
                let recs: Vec<PointRecord> = chunk
                    .par_iter()
                    .map_init(
                        || (Vec::new(), Vec::new()),
                        |scratch, &p| pricer.point(p, &sims[g], &set, scratch),
                    )
                    .collect();
                if let Some(w) = writer.as_mut() {
                    w.append(&recs)?;
                }
                report(Progress::Priced(recs.len() as u64));
                fresh.extend(recs);
            }
        }
    }
    report(Progress::Finished);
    let rows: Vec<SweepRow> = done
        .into_values()
        .chain(fresh)
        .flat_map(|r| r.rows)
        .collect();
    Ok(SweepResult::new(meta, opts.shard, rows))
}

/// Join the points of shard folders into the result of the whole sweep. Every folder must hold
/// the same sweep; together they must cover every point exactly once (a point found twice must
/// be identical).
pub fn merge(dirs: &[PathBuf]) -> Result<SweepResult> {
    let mut meta: Option<SweepMeta> = None;
    let mut points: BTreeMap<usize, PointRecord> = BTreeMap::new();
    for dir in dirs {
        let mf = read_meta(dir)?;
        match &meta {
            None => meta = Some(mf.meta.clone()),
            Some(m) if *m != mf.meta => {
                return Err(Error::input(format!(
                    "{}: a different sweep from {} (scenario, cost model, axes or samples differ)",
                    dir.display(),
                    dirs[0].display()
                )));
            }
            _ => {}
        }
        for rec in read_points(&dir.join(POINTS_FILE))? {
            if rec.point >= mf.meta.points {
                return Err(Error::input(format!(
                    "{}: point {} is outside the grid of {} points",
                    dir.display(),
                    rec.point,
                    mf.meta.points
                )));
            }
            if let Some(old) = points.get(&rec.point) {
                if old.rows != rec.rows {
                    return Err(Error::input(format!(
                        "{}: point {} differs from the same point in another folder",
                        dir.display(),
                        rec.point
                    )));
                }
                continue;
            }
            points.insert(rec.point, rec);
        }
    }
    let meta = meta.ok_or_else(|| Error::input("merge: name at least one folder"))?;
    let missing: Vec<usize> = (0..meta.points)
        .filter(|p| !points.contains_key(p))
        .collect();
    if !missing.is_empty() {
        let show: Vec<String> = missing.iter().take(10).map(|p| p.to_string()).collect();
        return Err(Error::input(format!(
            "merge: {} of {} points are missing (first: {}); run the missing shards (or --resume the interrupted ones)",
            missing.len(),
            meta.points,
            show.join(", ")
        )));
    }
    let rows = points.into_values().flat_map(|r| r.rows).collect();
    Ok(SweepResult::new(meta, None, rows))
}
