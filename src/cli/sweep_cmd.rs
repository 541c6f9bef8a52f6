//! Handlers of `sweep`, `merge` and `price` (argument plumbing only; the work is in `sweep`,
//! `report` and `hardware`).

use std::path::{Path, PathBuf};

use super::{AxisFlag, Format};
use crate::error::{Error, Result, write_atomic};
use crate::exec::RunOutput;
use crate::hardware::{Hardware, price as price_ledger};
use crate::report::{self, plot, sweep_table, table};
use crate::scenario::LoadedScenario;
use crate::sweep::{self, BreakevenSpec, MetaFile, Options, Overrides, Plan};

pub struct SweepArgs {
    pub set: Vec<String>,
    pub range: Vec<String>,
    pub log_range: Vec<String>,
    pub axis_order: Vec<(AxisFlag, usize)>,
    pub out: Option<PathBuf>,
    /// Write report.html in `out` with the tables.
    pub html: bool,
    pub samples: Option<usize>,
    pub shard: Option<String>,
    pub resume: bool,
    pub breakeven: Option<String>,
    pub breakeven_axis: Option<String>,
    pub max_memory: Option<u64>,
    /// `--convention`, in place of the scenario's.
    pub convention: Option<crate::convention::Convention>,
}

pub fn sweep(path: &Path, a: SweepArgs, format: Format) -> Result<String> {
    let mut ov = Overrides {
        samples: a.samples,
        ..Default::default()
    };
    let list = |f: AxisFlag| match f {
        AxisFlag::Set => &a.set,
        AxisFlag::Range => &a.range,
        AxisFlag::LogRange => &a.log_range,
    };
    // Command-line order when the parser recorded it, else flag by flag.
    let order: Vec<(AxisFlag, usize)> = if a.axis_order.is_empty() {
        [AxisFlag::Set, AxisFlag::Range, AxisFlag::LogRange]
            .into_iter()
            .flat_map(|f| (0..list(f).len()).map(move |k| (f, k)))
            .collect()
    } else {
        a.axis_order.clone()
    };
    for (f, k) in order {
        let (flag, arg) = (f.flag(), &list(f)[k]);
        ov.axes
            .push((format!("{flag} {arg}"), sweep::parse_cli_axis(flag, arg)?));
    }
    let shard = a.shard.as_deref().map(sweep::parse_shard).transpose()?;
    let mut sc = LoadedScenario::load(path)?;
    if let Some(c) = a.convention {
        sc.scenario.convention = c;
    }
    if let Some(b) = &a.breakeven {
        let (x, y) = b
            .split_once(',')
            .filter(|(x, y)| !x.trim().is_empty() && !y.trim().is_empty())
            .ok_or_else(|| {
                Error::input(format!(
                    "--breakeven {b}: expected RUN_A,RUN_B (run labels or 1-based numbers)"
                ))
            })?;
        ov.breakeven = Some(BreakevenSpec {
            a: x.trim().into(),
            b: y.trim().into(),
            axis: a.breakeven_axis.clone(),
        });
    } else if let Some(axis) = &a.breakeven_axis {
        let mut b = sc
            .scenario
            .sweep
            .as_ref()
            .and_then(|s| s.breakeven.clone())
            .ok_or_else(|| Error::input("--breakeven-axis needs --breakeven RUN_A,RUN_B (or a break-even in the scenario)"))?;
        b.axis = Some(axis.clone());
        ov.breakeven = Some(b);
    }
    let plan = Plan::new(sc, ov)?;
    super::warn(&plan.warnings);
    let opts = Options {
        out: a.out.clone(),
        shard,
        resume: a.resume,
        progress: Some(progress_bars()),
        limits: crate::exec::Limits {
            max_memory: a.max_memory,
        },
    };
    sweep::check_grid_memory(&plan, &opts)?;
    // One process writes into an output folder at a time, until its outputs are written.
    let _lock = a.out.as_deref().map(sweep::OutLock::acquire).transpose()?;
    if let Some(dir) = &a.out {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprintln!(
                "picojoule: finished points are saved in {} as they complete; if the sweep is interrupted (Ctrl-C), the same command with --resume runs only the others",
                dir.join(sweep::POINTS_FILE).display()
            );
        }
    }
    let res = match sweep::run_sweep(&plan, &opts) {
        Ok(r) => r,
        Err(e) => {
            if let Some(dir) = &a.out {
                resume_hint(dir);
            }
            return Err(e);
        }
    };
    if let Some(dir) = &a.out {
        crate::report::sweep_files::write_outputs(&res, dir, a.html)?;
    }
    Ok(sweep_table::render(&res, format))
}

/// After a sweep that failed part-way: how many points `--out` kept, and that `--resume` runs
/// only the others.
fn resume_hint(dir: &Path) {
    let kept = std::fs::read_to_string(dir.join(sweep::POINTS_FILE))
        .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0);
    if kept > 0 {
        eprintln!(
            "picojoule: {kept} finished points are kept in {}; once the cause is fixed, the same command with --resume runs only the others",
            dir.join(sweep::POINTS_FILE).display()
        );
    }
}

pub fn merge(dirs: &[PathBuf], out: Option<&Path>, html: bool, format: Format) -> Result<String> {
    let _lock = out.map(sweep::OutLock::acquire).transpose()?;
    let res = sweep::merge(dirs)?;
    if let Some(dir) = out {
        let mf = MetaFile {
            meta: res.meta.clone(),
            shard: None,
        };
        write_atomic(
            &dir.join(sweep::META_FILE),
            (serde_json::to_string_pretty(&mf).expect("meta serialises") + "\n").as_bytes(),
        )?;
        let mut points: Vec<sweep::PointRecord> = Vec::new();
        for r in &res.rows {
            match points.last_mut() {
                Some(p) if p.point == r.point => p.rows.push(r.clone()),
                _ => points.push(sweep::PointRecord {
                    point: r.point,
                    rows: vec![r.clone()],
                }),
            }
        }
        let text: String = points
            .iter()
            .map(|p| serde_json::to_string(p).expect("rows serialise") + "\n")
            .collect();
        write_atomic(&dir.join(sweep::POINTS_FILE), text.as_bytes())?;
        crate::report::sweep_files::write_outputs(&res, dir, html)?;
    }
    Ok(sweep_table::render(&res, format))
}

/// Price the runs a `ledger.json` saved with another cost model: the report `run` gives on that
/// cost model, accuracy and fidelity included, without re-running.
pub fn price(
    path: &Path,
    hardware: &str,
    format: Format,
    out: Option<&Path>,
    html: bool,
) -> Result<String> {
    let hardware = super::hardware_flag(hardware)?;
    let text = crate::error::read_text(path)?;
    let saved = crate::exec::saved::from_json(path, &text)?;
    let (sc, outputs) = (saved.scenario, saved.runs);
    let mut hw = Hardware::load(hardware)?;
    sc.attach_mappings(&mut hw);
    sc.check_mappings(&hw, outputs.iter().map(|o| (o.label.as_str(), &o.ledger)))?;
    let mut rep = report::build(&sc, &hw, &outputs, saved.references);
    if let Some(vhw) = sc.scenario.convention.view_hardware()? {
        report::add_view(&mut rep, sc.scenario.convention, &outputs, &vhw);
    }
    if let Some(dir) = out {
        crate::report::run_files::write_run_reports(dir, &rep, &outputs, &hw, html, None)?;
    }
    Ok(table::render(&rep, format))
}

/// `run --plot`: one stacked-bar breakdown per run.
pub fn breakdown_plots(outputs: &[RunOutput], hw: &Hardware, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for o in outputs {
        let priced = price_ledger(&o.ledger, &hw.model);
        let bars = plot::breakdown(
            &priced,
            &format!(
                "{}: energy per layer and action ({})",
                o.label, hw.model.name
            ),
            o.tokens,
            report::per_unit(o.accuracy.as_ref()),
        );
        let stem: String = o
            .label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        written.extend(plot::stacked_bars(
            dir,
            &format!("breakdown-{stem}"),
            &bars,
        )?);
    }
    Ok(written)
}

/// The style of every progress bar.
fn bar_style(pb: &indicatif::ProgressBar) {
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
}

/// One progress bar of `len` steps on stderr, drawn only when stderr is a terminal (as the
/// sweep's): `run` counts tokens or samples, `reproduce` tables.
pub(super) fn progress_bar(msg: &str, len: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(len),
        if std::io::stderr().is_terminal() {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        },
    );
    bar_style(&pb);
    pb.set_message(msg.to_string());
    pb
}

/// Progress bars on stderr (when it is a terminal) for a sweep's simulations and pricing.
fn progress_bars() -> sweep::ProgressFn {
    use std::io::IsTerminal;
    let show = std::io::stderr().is_terminal();
    let multi = indicatif::MultiProgress::with_draw_target(if show {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    });
    let bar = |msg: &str| {
        let pb = multi.add(indicatif::ProgressBar::new(0));
        bar_style(&pb);
        pb.set_message(msg.to_string());
        pb
    };
    let (sims, points) = (bar("simulating"), bar("pricing"));
    std::sync::Arc::new(move |p| match p {
        sweep::Progress::Start {
            simulations,
            points: n,
        } => {
            // A single simulation needs no bar of its own.
            if simulations > 1 {
                sims.set_length(simulations);
            } else {
                sims.finish_and_clear();
            }
            points.set_length(n);
        }
        sweep::Progress::Simulated(k) => sims.inc(k),
        sweep::Progress::Priced(k) => points.inc(k),
        sweep::Progress::Finished => {
            sims.finish_and_clear();
            points.finish_and_clear();
        }
    })
}
