//! The figures a run or a sweep produces: which series, axes and titles each plot gets (energy
//! against every swept axis, energy against accuracy with its Pareto front, the breakdown per
//! layer and action); the drawing itself is in the parent module.

use std::path::{Path, PathBuf};

use super::{Axis, LinePlot, MAX_COMBOS, MAX_SCATTER, Series, StackedBars, line_plot};
use crate::error::Result;
use crate::hardware::PricedLedger;
use crate::report::{Report, RunReport};
use crate::sweep::SweepResult;

/// Energy per layer and `per` (token or image: the run's energy over its `tokens`), stacked by
/// action (`mac`, `ac`, ..., memory as `read.weight`, ...).
pub fn breakdown(priced: &PricedLedger, title: &str, tokens: usize, per: &str) -> StackedBars {
    let mut stacks: Vec<(String, Vec<f64>)> = Vec::new();
    let n = priced.layers.len();
    for (i, layer) in priced.layers.iter().enumerate() {
        for line in &layer.lines {
            let parts: Vec<&str> = line.action.split('.').collect();
            let key = if parts.len() >= 3 {
                format!("{}.{}", parts[0], parts[1])
            } else {
                parts[0].to_string()
            };
            let pos = match stacks.iter().position(|(k, _)| *k == key) {
                Some(p) => p,
                None => {
                    stacks.push((key, vec![0.0; n]));
                    stacks.len() - 1
                }
            };
            stacks[pos].1[i] += line.energy_pj / tokens.max(1) as f64;
        }
    }
    stacks.retain(|(_, v)| v.iter().any(|x| *x != 0.0));
    StackedBars {
        title: title.to_string(),
        x_desc: format!("energy per {per} ({{unit}})"),
        categories: priced.layers.iter().map(|l| l.name.clone()).collect(),
        stacks,
    }
}

fn file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What one token of a sweep's rows is: an image when the rows measure top-1 accuracy or the
/// input is images, else a token.
fn sweep_per(res: &SweepResult) -> &'static str {
    let inp = res.meta.input.to_ascii_lowercase();
    if res.rows.iter().any(|r| r.top1.is_some()) || inp.contains("image") || inp.contains("digits")
    {
        "image"
    } else {
        "token"
    }
}

/// The unit of a sweep axis, from its kind and path.
fn axis_unit(kind: &str, path: &str) -> &'static str {
    match kind {
        "cost" if path.ends_with("capacity_bytes") => "bytes",
        "cost" if path.starts_with("memory.") => "pJ per access",
        "cost" => "pJ per action",
        "model" => "model parameter",
        _ => "numerics setting",
    }
}

/// The plots of a sweep with their file stems: energy per token (or image) against the first
/// numeric axis (the break-even axis when one is set), one line per run and value combination
/// of the other axes; energy against accuracy when the runs measure it.
pub fn sweep_line_plots(res: &SweepResult) -> Vec<(String, LinePlot)> {
    let m = &res.meta;
    let per = sweep_per(res);
    let mut out = Vec::new();
    let be_axis = res
        .breakeven
        .as_ref()
        .and_then(|b| m.axes.iter().position(|a| a.path == b.axis));
    let ax = be_axis.or_else(|| {
        m.axes
            .iter()
            .position(|a| a.values.iter().all(|v| v.as_f64().is_some()))
    });
    if let Some(ax) = ax {
        let axis = &m.axes[ax];
        // The value combinations of the other axes, in grid order; at most MAX_COMBOS get lines.
        let dims: Vec<usize> = m.axes.iter().map(|a| a.values.len()).collect();
        let combos = if m.zip {
            1
        } else {
            dims.iter()
                .enumerate()
                .filter(|(i, _)| *i != ax)
                .map(|(_, d)| d)
                .product::<usize>()
        };
        let shown: std::collections::BTreeSet<usize> = if combos <= MAX_COMBOS {
            (0..combos).collect()
        } else {
            (0..MAX_COMBOS)
                .map(|k| k * (combos - 1) / (MAX_COMBOS - 1))
                .collect()
        };
        let mut series: Vec<Series> = Vec::new();
        let mut by_name: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for r in &res.rows {
            let idx = crate::sweep::grid_index(&dims, m.zip, r.point);
            let combo = if m.zip {
                0
            } else {
                idx.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != ax)
                    .fold(0, |acc, (i, &v)| acc * dims[i] + v)
            };
            if !shown.contains(&combo) {
                continue;
            }
            let others: Vec<String> = r
                .values
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != ax)
                .map(|(i, v)| format!("{}={v}", m.axes[i].path))
                .collect();
            let name = if others.is_empty() || m.zip {
                r.run.clone()
            } else {
                format!("{} [{}]", r.run, others.join(", "))
            };
            let x = r.values[ax].as_f64().unwrap_or(f64::NAN);
            let n = r.tokens.max(1) as f64;
            let pos = match by_name.get(&name) {
                Some(p) => *p,
                None => {
                    by_name.insert(name.clone(), series.len());
                    series.push(Series {
                        err: (m.samples > 0).then(Vec::new),
                        ..Series::new(name, vec![])
                    });
                    series.len() - 1
                }
            };
            series[pos].points.push((x, r.energy_pj / n));
            if let (Some(e), Some(mc)) = (series[pos].err.as_mut(), r.mc) {
                e.push((mc.p05 / n, mc.p95 / n));
            }
        }
        let marks: Vec<(f64, String)> = res
            .breakeven
            .iter()
            .flat_map(|b| {
                b.crossings.iter().filter_map(|c| {
                    c.value.map(|v| {
                        (
                            v,
                            format!("break-even {}", crate::sweep::breakeven::fmt_x(v)),
                        )
                    })
                })
            })
            .collect();
        let note = if shown.len() < combos {
            format!(
                " ({} of {} value combinations of the other axes)",
                shown.len(),
                combos
            )
        } else {
            String::new()
        };
        let plot = LinePlot {
            title: format!("{}: energy vs {}{note}", m.scenario, axis.path),
            x: Axis {
                desc: format!("{} ({})", axis.path, axis_unit(&axis.kind, &axis.path)),
                energy: false,
                log: axis.log,
            },
            y: Axis::energy(format!("energy per {per} ({{unit}}, {})", m.hardware)),
            series,
            marks,
            scatter: false,
        };
        out.push((format!("energy-vs-{}", file_stem(&axis.path)), plot));
    }
    if res.rows.iter().any(|r| r.top1.is_some()) {
        out.push(("energy-vs-accuracy".to_string(), accuracy_plot(res)));
    }
    out
}

/// The plots of a sweep (see [`sweep_line_plots`]), as PNG and SVG files in `dir`.
pub fn sweep_plots(res: &SweepResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (stem, plot) in sweep_line_plots(res) {
        out.extend(line_plot(dir, &stem, &plot)?);
    }
    Ok(out)
}

/// Energy per image against top-1 accuracy: the Pareto front (first series, a line) and one
/// point series per run.
pub fn accuracy_plot(res: &SweepResult) -> LinePlot {
    let pts: Vec<(f64, f64, &str)> = res
        .rows
        .iter()
        .filter_map(|r| {
            r.top1
                .map(|t| (r.energy_pj / r.tokens.max(1) as f64, t, r.run.as_str()))
        })
        .collect();
    let front = pareto_front(&pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
    let mut series = vec![Series::new("Pareto front", front)];
    let step = pts.len().div_ceil(MAX_SCATTER).max(1);
    for (x, y, run) in pts.iter().step_by(step) {
        match series.iter_mut().skip(1).find(|s| s.name == *run) {
            Some(s) => s.points.push((*x, *y)),
            None => series.push(Series::new(*run, vec![(*x, *y)])),
        }
    }
    LinePlot {
        title: format!("{}: energy vs accuracy", res.meta.scenario),
        x: Axis::energy(format!(
            "energy per {} ({{unit}}, {})",
            sweep_per(res),
            res.meta.hardware
        )),
        y: Axis::plain("top-1 accuracy (fraction of images)"),
        series,
        marks: vec![],
        scatter: true,
    }
}

/// `run --plot`: energy per token (or image) against accuracy, one plot per task present, with
/// its file stem: bits per character for language models (lower is better), top-1 for
/// classifiers. One point series per model, each point labelled with its arithmetic (and
/// variant when models have several), and the Pareto front.
pub fn run_accuracy_line_plots(rep: &Report) -> Vec<(String, LinePlot)> {
    let mut plots = vec![];
    for (task, stem, y_desc, per, lower_is_better) in [
        (
            "next-token",
            "energy-vs-bits-per-char",
            "bits per character (lower is better)",
            "token",
            true,
        ),
        (
            "classification",
            "energy-vs-top1",
            "top-1 accuracy (fraction of images)",
            "image",
            false,
        ),
    ] {
        let pts: Vec<(f64, f64, &RunReport)> = rep
            .runs
            .iter()
            .filter_map(|r| {
                let a = r.accuracy.as_ref().filter(|a| a.task == task)?;
                let y = if lower_is_better {
                    a.bits_per_token?
                } else {
                    a.top1
                };
                Some((r.totals.energy_pj_per_token, y, r))
            })
            .collect();
        if pts.is_empty() {
            continue;
        }
        let sign = if lower_is_better { -1.0 } else { 1.0 };
        let front = pareto_front(&pts.iter().map(|p| (p.0, sign * p.1)).collect::<Vec<_>>())
            .into_iter()
            .map(|(x, y)| (x, sign * y))
            .collect();
        let mut series = vec![Series::new("Pareto front", front)];
        for (x, y, run) in &pts {
            let variants = pts
                .iter()
                .filter(|p| p.2.model == run.model)
                .map(|p| p.2.variant.as_str())
                .collect::<std::collections::BTreeSet<_>>();
            let label = if variants.len() > 1 {
                format!("{} {}", run.variant, run.arithmetic)
            } else {
                run.arithmetic.clone()
            };
            match series.iter_mut().skip(1).find(|s| s.name == run.model) {
                Some(s) => {
                    s.points.push((*x, *y));
                    s.labels.push(label);
                }
                None => series.push(Series {
                    labels: vec![label],
                    ..Series::new(run.model.clone(), vec![(*x, *y)])
                }),
            }
        }
        plots.push((
            stem.to_string(),
            LinePlot {
                title: format!("{}: energy vs accuracy", rep.scenario.name),
                x: Axis::energy(format!(
                    "energy per {per} ({{unit}}, {})",
                    rep.hardware.name
                )),
                y: Axis::plain(y_desc),
                series,
                marks: vec![],
                scatter: true,
            },
        ));
    }
    plots
}

/// `run --plot`: the plots of [`run_accuracy_line_plots`] as PNG and SVG files in `dir`.
pub fn run_accuracy_plots(rep: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![];
    for (stem, plot) in run_accuracy_line_plots(rep) {
        written.extend(line_plot(dir, &stem, &plot)?);
    }
    Ok(written)
}

/// Points not dominated by another with less (or equal) energy and higher (or equal) accuracy,
/// in increasing energy.
pub fn pareto_front(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for p in v {
        if out.last().is_none_or(|l| p.1 > l.1) {
            out.push(p);
        }
    }
    out
}
