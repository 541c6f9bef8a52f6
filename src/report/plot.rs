//! Plots, PNG and SVG, drawn with plotters and an embedded DejaVu Sans font so the output never
//! depends on the fonts a machine has installed.
//!
//! - energy against a swept parameter, one line per run (error bars: the Monte Carlo 5-95%
//!   interval; a vertical mark at the break-even);
//! - energy against accuracy, every point and run, with the Pareto front (less energy, higher
//!   top-1) drawn as a line;
//! - energy breakdown per layer and action (stacked horizontal bars).
//!
//! In the SVG, each data series is one `<polyline>` of stroke width 2 (legend swatches and error
//! bars are rectangles, marks are width-1 lines), so tests can count series.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::table::num;
use crate::error::{Error, Result, write_atomic};
use crate::hardware::PricedLedger;
use crate::sweep::SweepResult;

const SIZE: (u32, u32) = (960, 600);
/// Series longer than this are drawn as lines without point markers.
const MAX_MARKERS: usize = 200;
/// At most this many value combinations of the other axes get a line (evenly chosen).
const MAX_COMBOS: usize = 8;
/// At most this many points in the accuracy scatter (evenly chosen; the front is exact).
const MAX_SCATTER: usize = 5000;

fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn perr<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// One line of a line plot; `err` gives (lo, hi) per point.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub err: Option<Vec<(f64, f64)>>,
}

pub struct LinePlot {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<Series>,
    /// Vertical marks: (x, label).
    pub marks: Vec<(f64, String)>,
    /// Draw a line through the points of the first series only as a front (Pareto), the others
    /// as points (used by the accuracy plot).
    pub scatter: bool,
}

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn bounds(plot: &LinePlot) -> (f64, f64, f64, f64) {
    let mut xs: Vec<f64> = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    xs.extend(plot.marks.iter().map(|m| m.0));
    let mut ys: Vec<f64> = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    ys.extend(
        plot.series
            .iter()
            .flat_map(|s| s.err.iter().flatten().flat_map(|e| [e.0, e.1])),
    );
    let fin = |v: &Vec<f64>| {
        v.iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect::<Vec<_>>()
    };
    let (xs, ys) = (fin(&xs), fin(&ys));
    let lo = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut x0, mut x1, mut y0, mut y1) = (lo(&xs), hi(&xs), lo(&ys), hi(&ys));
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
        x0 -= 1.0;
    }
    if y1 - y0 <= 1e-9 * y1.abs().max(1e-300) {
        // All values equal: show them in the middle of a visible span.
        let d = (y1.abs() * 0.1).max(0.05);
        return (x0, x1, y0 - d, y1 + d);
    }
    let pad = (y1 - y0) * 0.08;
    (x0, x1, y0 - pad, y1 + pad)
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &LinePlot,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(perr)?;
    let (x0, x1, y0, y1) = bounds(plot);
    let mut chart = ChartBuilder::on(root)
        .caption(&plot.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(perr)?;
    chart
        .configure_mesh()
        .x_desc(plot.x_desc.as_str())
        .y_desc(plot.y_desc.as_str())
        .x_label_formatter(&|v| num(*v))
        .y_label_formatter(&|v| num(*v))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(perr)?;
    let dx = (x1 - x0) * 0.004;
    for (i, s) in plot.series.iter().enumerate() {
        let c = color(i);
        let line_pts = if plot.scatter && i > 0 {
            vec![]
        } else {
            s.points.clone()
        };
        let legend_color = c;
        if !line_pts.is_empty() {
            chart
                .draw_series(LineSeries::new(line_pts, c.stroke_width(2)))
                .map_err(perr)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 18, y + 4)], legend_color.filled())
                });
        } else {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(perr)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 18, y + 4)], legend_color.filled())
                });
        }
        // Markers only where they can be told apart (and stay cheap to draw).
        if s.points.len() <= MAX_MARKERS || (plot.scatter && i > 0) {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(perr)?;
        }
        if let Some(err) = &s.err {
            chart
                .draw_series(s.points.iter().zip(err).map(|(&(x, _), &(lo, hi))| {
                    Rectangle::new([(x - dx, lo), (x + dx, hi)], c.mix(0.5).filled())
                }))
                .map_err(perr)?;
        }
    }
    for (x, label) in &plot.marks {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(*x, y0), (*x, y1)],
                BLACK.stroke_width(1),
            )))
            .map_err(perr)?;
        chart
            .draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x, y1 - (y1 - y0) * 0.04),
                ("sans-serif", 14).into_font().color(&BLACK),
            )))
            .map_err(perr)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(perr)?;
    root.present().map_err(perr)
}

/// Where a plot goes.
pub enum Target<'a> {
    Png(&'a Path),
    Svg(&'a mut String),
}

fn render(
    dir: &Path,
    stem: &str,
    f: impl Fn(Target<'_>) -> std::result::Result<(), String>,
) -> Result<Vec<PathBuf>> {
    ensure_font();
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let tmp = dir.join(format!(".{stem}.{}.tmp.png", std::process::id()));
    f(Target::Png(&tmp)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Internal(format!("drawing {}: {e}", png.display()))
    })?;
    std::fs::rename(&tmp, &png).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Write {
            path: png.clone(),
            source,
        }
    })?;
    let mut text = String::new();
    f(Target::Svg(&mut text))
        .map_err(|e| Error::Internal(format!("drawing {}: {e}", svg.display())))?;
    write_atomic(&svg, text.as_bytes())?;
    Ok(vec![png, svg])
}

pub fn line_plot(dir: &Path, stem: &str, plot: &LinePlot) -> Result<Vec<PathBuf>> {
    render(dir, stem, |t| match t {
        Target::Png(p) => draw_lines(&BitMapBackend::new(p, SIZE).into_drawing_area(), plot),
        Target::Svg(s) => draw_lines(&SVGBackend::with_string(s, SIZE).into_drawing_area(), plot),
    })
}

/// Stacked horizontal bars: one bar per category, one stack per series.
pub struct StackedBars {
    pub title: String,
    pub x_desc: String,
    pub categories: Vec<String>,
    pub stacks: Vec<(String, Vec<f64>)>,
}

fn draw_bars<DB: DrawingBackend>(
    whole: &DrawingArea<DB, Shift>,
    b: &StackedBars,
) -> std::result::Result<(), String> {
    whole.fill(&WHITE).map_err(perr)?;
    // The legend gets its own column so it never hides a bar.
    let (root, legend) = whole.split_horizontally(SIZE.0 * 4 / 5);
    for (k, (name, _)) in b.stacks.iter().enumerate() {
        let y = 60 + 18 * k as i32;
        legend
            .draw(&Rectangle::new(
                [(4, y - 5), (20, y + 5)],
                color(k).filled(),
            ))
            .map_err(perr)?;
        legend
            .draw(&Text::new(
                name.clone(),
                (26, y - 7),
                ("sans-serif", 12).into_font().color(&BLACK),
            ))
            .map_err(perr)?;
    }
    let root = &root;
    let n = b.categories.len().max(1);
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            b.stacks
                .iter()
                .map(|(_, v)| v.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let xmax = totals.iter().copied().fold(0.0, f64::max).max(1e-12) * 1.05;
    let mut chart = ChartBuilder::on(root)
        .caption(&b.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(170)
        .build_cartesian_2d(0f64..xmax, (0..n as i32).into_segmented())
        .map_err(perr)?;
    let cats = b.categories.clone();
    chart
        .configure_mesh()
        .x_desc(b.x_desc.as_str())
        .x_label_formatter(&|v| num(*v))
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if (*i as usize) < n => {
                cats.get(n - 1 - *i as usize).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(perr)?;
    let mut start = vec![0.0; n];
    for (k, (name, vals)) in b.stacks.iter().enumerate() {
        let c = color(k);
        let rects: Vec<Rectangle<(f64, SegmentValue<i32>)>> = (0..n)
            .map(|i| {
                let v = vals.get(i).copied().unwrap_or(0.0);
                // The first category at the top.
                let row = (n - 1 - i) as i32;
                let r = Rectangle::new(
                    [
                        (start[i], SegmentValue::Exact(row)),
                        (start[i] + v, SegmentValue::Exact(row + 1)),
                    ],
                    c.filled(),
                );
                start[i] += v;
                r
            })
            .collect();
        let _ = name;
        chart.draw_series(rects).map_err(perr)?;
    }
    whole.present().map_err(perr)
}

pub fn stacked_bars(dir: &Path, stem: &str, b: &StackedBars) -> Result<Vec<PathBuf>> {
    render(dir, stem, |t| match t {
        Target::Png(p) => draw_bars(&BitMapBackend::new(p, SIZE).into_drawing_area(), b),
        Target::Svg(s) => draw_bars(&SVGBackend::with_string(s, SIZE).into_drawing_area(), b),
    })
}

/// Energy per layer, stacked by action (`mac`, `ac`, ..., memory as `read.weight`, ...).
pub fn breakdown(priced: &PricedLedger, title: &str) -> StackedBars {
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
            stacks[pos].1[i] += line.energy_pj;
        }
    }
    stacks.retain(|(_, v)| v.iter().any(|x| *x != 0.0));
    StackedBars {
        title: title.to_string(),
        x_desc: "energy (pJ)".into(),
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

/// The plots of a sweep: energy against the first numeric axis (the break-even axis when one is
/// set), one line per run and value combination of the other axes; energy against accuracy when
/// the runs measure it.
pub fn sweep_plots(res: &SweepResult, dir: &Path) -> Result<Vec<PathBuf>> {
    let m = &res.meta;
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
        let tx = |x: f64| if axis.log { x.log10() } else { x };
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
            let x = tx(r.values[ax].as_f64().unwrap_or(f64::NAN));
            let pos = match by_name.get(&name) {
                Some(p) => *p,
                None => {
                    by_name.insert(name.clone(), series.len());
                    series.push(Series {
                        name,
                        points: vec![],
                        err: (m.samples > 0).then(Vec::new),
                    });
                    series.len() - 1
                }
            };
            series[pos].points.push((x, r.energy_pj));
            if let (Some(e), Some(mc)) = (series[pos].err.as_mut(), r.mc) {
                e.push((mc.p05, mc.p95));
            }
        }
        let marks: Vec<(f64, String)> = res
            .breakeven
            .iter()
            .flat_map(|b| {
                b.crossings.iter().filter_map(|c| {
                    c.value.map(|v| {
                        (
                            tx(v),
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
            x_desc: if axis.log {
                format!("log10 {}", axis.path)
            } else {
                axis.path.clone()
            },
            y_desc: format!("energy (pJ, {})", m.hardware),
            series,
            marks,
            scatter: false,
        };
        out.extend(line_plot(
            dir,
            &format!("energy-vs-{}", file_stem(&axis.path)),
            &plot,
        )?);
    }
    if res.rows.iter().any(|r| r.top1.is_some()) {
        out.extend(line_plot(dir, "energy-vs-accuracy", &accuracy_plot(res))?);
    }
    Ok(out)
}

/// Energy against top-1 accuracy: the Pareto front (first series, a line) and one point series
/// per run.
pub fn accuracy_plot(res: &SweepResult) -> LinePlot {
    let pts: Vec<(f64, f64, &str)> = res
        .rows
        .iter()
        .filter_map(|r| r.top1.map(|t| (r.energy_pj, t, r.run.as_str())))
        .collect();
    let front = pareto_front(&pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>());
    let mut series = vec![Series {
        name: "Pareto front".into(),
        points: front,
        err: None,
    }];
    let step = pts.len().div_ceil(MAX_SCATTER).max(1);
    for (x, y, run) in pts.iter().step_by(step) {
        match series.iter_mut().skip(1).find(|s| s.name == *run) {
            Some(s) => s.points.push((*x, *y)),
            None => series.push(Series {
                name: run.to_string(),
                points: vec![(*x, *y)],
                err: None,
            }),
        }
    }
    LinePlot {
        title: format!("{}: energy vs accuracy", res.meta.scenario),
        x_desc: format!("energy (pJ, {})", res.meta.hardware),
        y_desc: "top-1 accuracy".into(),
        series,
        marks: vec![],
        scatter: true,
    }
}

/// `run --plot`: energy per token (or image) against accuracy, one plot per task present:
/// bits per character for language models (lower is better), top-1 for classifiers. One point
/// series per model (its arithmetics and variants), and the Pareto front.
pub fn run_accuracy_plots(rep: &super::Report, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![];
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
            "top-1 accuracy",
            "image",
            false,
        ),
    ] {
        let pts: Vec<(f64, f64, &str)> = rep
            .runs
            .iter()
            .filter_map(|r| {
                let a = r.accuracy.as_ref().filter(|a| a.task == task)?;
                let y = if lower_is_better {
                    a.bits_per_token?
                } else {
                    a.top1
                };
                Some((r.totals.energy_pj_per_token, y, r.model.as_str()))
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
        let mut series = vec![Series {
            name: "Pareto front".into(),
            points: front,
            err: None,
        }];
        for (x, y, model) in &pts {
            match series.iter_mut().skip(1).find(|s| s.name == *model) {
                Some(s) => s.points.push((*x, *y)),
                None => series.push(Series {
                    name: model.to_string(),
                    points: vec![(*x, *y)],
                    err: None,
                }),
            }
        }
        written.extend(line_plot(
            dir,
            stem,
            &LinePlot {
                title: format!("{}: energy vs accuracy", rep.scenario.name),
                x_desc: format!("energy per {per} (pJ, {})", rep.hardware.name),
                y_desc: y_desc.into(),
                series,
                marks: vec![],
                scatter: true,
            },
        )?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let f = pareto_front(&[(1.0, 0.5), (2.0, 0.4), (3.0, 0.7), (2.5, 0.7), (4.0, 0.9)]);
        assert_eq!(f, vec![(1.0, 0.5), (2.5, 0.7), (4.0, 0.9)]);
    }
}
