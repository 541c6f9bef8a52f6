//! Plots, PNG and SVG, drawn with plotters and an embedded DejaVu Sans font so the output never
//! depends on the fonts a machine has installed.
//!
//! - energy per token (or image) against a swept parameter, one line per run (error bars: the
//!   Monte Carlo 5-95% interval; a vertical mark at the break-even);
//! - energy against accuracy, every point and run, with the Pareto front (less energy, higher
//!   top-1) drawn as a line, each point labelled with its arithmetic;
//! - energy breakdown per layer and action (stacked horizontal bars).
//!
//! Made for papers: the legend has its own column beside the plot area, so it never covers
//! data; both axes are padded so extreme points and error bars sit inside the frame; an axis
//! whose values span more than two decades is logarithmic; tick labels are plain numbers or
//! engineering notation (`50e6`, never `5.000e7`); energy axes are scaled to pJ, nJ, µJ or mJ
//! and every axis names its unit; every action kind has one colour in every plot
//! ([`ACTION_COLORS`]).
//!
//! In the SVG, each data series is one `<polyline>` of stroke width 2 (legend swatches are
//! rectangles, error bars and marks are width-1 lines), so tests can count series.
//!
//! This module draws; `figures` decides which plots a run or a sweep gets.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::prelude::*;

use super::table::num;
use crate::error::{Error, Result, write_atomic};

mod figures;

pub use figures::{
    accuracy_plot, breakdown, pareto_front, run_accuracy_line_plots, run_accuracy_plots,
    sweep_line_plots, sweep_plots,
};

const SIZE: (u32, u32) = (960, 600);
/// Series longer than this are drawn as lines without point markers.
const MAX_MARKERS: usize = 200;
/// Points are labelled (with their arithmetic) when a plot has at most this many.
const MAX_POINT_LABELS: usize = 40;
/// At most this many value combinations of the other axes get a line (evenly chosen).
const MAX_COMBOS: usize = 8;
/// At most this many points in the accuracy scatter (evenly chosen; the front is exact).
const MAX_SCATTER: usize = 5000;
/// An axis whose positive values span more than this ratio is drawn logarithmic.
const LOG_SPAN: f64 = 100.0;
/// The tallest breakdown plot (pixels): a bar per layer, 16 pixels each, up to this.
const MAX_BAR_HEIGHT: u32 = 4000;

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

/// The colour of every action kind (an op, or `read`/`write` with a tensor class), the same in
/// every plot and in the HTML report: compute reds and oranges, nonlinear functions greens,
/// neurons and spikes purples and cyan, memory blues (weights), browns (state) and greys.
pub const ACTION_COLORS: &[(&str, (u8, u8, u8))] = &[
    ("mac", (214, 39, 40)),
    ("ac", (255, 127, 14)),
    ("mul", (140, 86, 75)),
    ("add", (188, 189, 34)),
    ("lmul", (227, 119, 194)),
    ("cmp", (196, 156, 148)),
    ("exp", (44, 160, 44)),
    ("sigmoid", (152, 223, 138)),
    ("div", (99, 121, 57)),
    ("sqrt", (140, 162, 82)),
    ("tanh", (181, 207, 107)),
    ("log", (206, 219, 156)),
    ("neuron_update", (148, 103, 189)),
    ("spike", (23, 190, 207)),
    ("synop", (197, 176, 213)),
    ("read.weight", (31, 119, 180)),
    ("write.weight", (174, 199, 232)),
    ("read.activation", (57, 59, 121)),
    ("write.activation", (107, 110, 207)),
    ("read.state", (132, 60, 57)),
    ("write.state", (173, 73, 74)),
    ("read.neuron", (123, 65, 115)),
    ("write.neuron", (165, 81, 148)),
    ("read.event", (231, 186, 82)),
    ("write.event", (231, 203, 148)),
    ("read", (49, 130, 189)),
    ("write", (158, 202, 225)),
    // Energy kinds, where a plot splits by kind rather than action.
    ("compute", (214, 39, 40)),
    ("memory", (31, 119, 180)),
];

/// The colour of an action kind (`mac`, `read.weight`, ...; `read.weight.sram` is coloured as
/// `read.weight`); a kind outside [`ACTION_COLORS`] gets a fixed colour derived from its name.
pub fn action_color(kind: &str) -> RGBColor {
    let mut key = kind;
    loop {
        if let Some((_, (r, g, b))) = ACTION_COLORS.iter().find(|(k, _)| *k == key) {
            return RGBColor(*r, *g, *b);
        }
        match key.rfind('.') {
            Some(i) => key = &key[..i],
            None => break,
        }
    }
    let h = kind.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    color(h as usize % 20)
}

/// `#rrggbb` of an action kind's colour.
pub fn action_color_hex(kind: &str) -> String {
    let RGBColor(r, g, b) = action_color(kind);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A tick label: plain up to 5 digits, else engineering notation with the fewest digits
/// (`50e6`, `1.5e9`, `250e-6`).
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() || (1e-3..1e5).contains(&a) {
        return num(v);
    }
    let e = (a.log10().floor() as i32).div_euclid(3) * 3;
    let m = v / 10f64.powi(e);
    let s = format!("{m:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}e{e}")
}

/// The unit and divisor that show energies up to `max` pJ with at most 3 integer digits.
pub fn energy_unit(max: f64) -> (&'static str, f64) {
    [
        ("pJ", 1.0),
        ("nJ", 1e3),
        ("µJ", 1e6),
        ("mJ", 1e9),
        ("J", 1e12),
    ]
    .into_iter()
    .take_while(|(_, d)| max.abs() >= *d || *d == 1.0)
    .last()
    .unwrap_or(("pJ", 1.0))
}

/// One line (or point set) of a line plot; `err` gives (lo, hi) per point, `labels` a text per
/// point (empty: none).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub err: Option<Vec<(f64, f64)>>,
    pub labels: Vec<String>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            err: None,
            labels: vec![],
        }
    }
}

/// An axis: its description, where `{unit}` is replaced by the energy unit chosen for the
/// values when `energy` is set (the values are then scaled), and whether it must be logarithmic
/// (it also is when its values span more than two decades).
#[derive(Clone, Debug, Default)]
pub struct Axis {
    pub desc: String,
    pub energy: bool,
    pub log: bool,
}

impl Axis {
    pub fn energy(desc: impl Into<String>) -> Axis {
        Axis {
            desc: desc.into(),
            energy: true,
            log: false,
        }
    }
    pub fn plain(desc: impl Into<String>) -> Axis {
        Axis {
            desc: desc.into(),
            energy: false,
            log: false,
        }
    }
}

pub struct LinePlot {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
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

/// The Pareto front's colour (not a run's).
const FRONT: RGBColor = RGBColor(60, 60, 60);

/// How an axis is drawn, decided from its values: scale (energy unit), log or linear, and the
/// padded range.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scale {
    div: f64,
    log: bool,
    lo: f64,
    hi: f64,
}

/// Scale of an axis holding `vals` (unscaled), padded by `pad` of the span on each side (in
/// log space on a log axis).
fn scale_of(axis: &Axis, vals: &[f64], pad: f64) -> (Scale, String) {
    let v: Vec<f64> = vals.iter().copied().filter(|x| x.is_finite()).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (unit, div) = if axis.energy && hi.is_finite() {
        energy_unit(hi.abs().max(lo.abs()))
    } else {
        ("pJ", 1.0)
    };
    let desc = axis.desc.replace("{unit}", unit);
    if !lo.is_finite() {
        return (
            Scale {
                div,
                log: false,
                lo: 0.0,
                hi: 1.0,
            },
            desc,
        );
    }
    let (lo, hi) = (lo / div, hi / div);
    let log = lo > 0.0 && (axis.log || hi / lo > LOG_SPAN);
    let t = |x: f64| if log { x.log10() } else { x };
    let u = |x: f64| if log { 10f64.powf(x) } else { x };
    let (a, b) = (t(lo), t(hi));
    let (a, b) = if b - a <= 1e-9 * b.abs().max(1e-300) {
        // All values equal: show them in the middle of a visible span.
        let d = if log { 0.5 } else { (b.abs() * 0.1).max(0.05) };
        (a - d, b + d)
    } else {
        let p = (b - a) * pad;
        (a - p, b + p)
    };
    (
        Scale {
            div,
            log,
            lo: u(a),
            hi: u(b),
        },
        desc,
    )
}

/// Width of a legend column for these names (pixels).
fn legend_width(names: &[&str]) -> u32 {
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32;
    (36 + 7 * longest).clamp(140, 380)
}

/// Swatches and names, top-down, in their own column.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor, bool)],
) -> std::result::Result<(), String> {
    let max_chars = (area.dim_in_pixel().0 as usize).saturating_sub(30) / 7;
    for (k, (name, c, line)) in items.iter().enumerate() {
        let y = 50 + 18 * k as i32;
        if *line {
            area.draw(&Rectangle::new([(4, y - 2), (22, y + 2)], c.filled()))
                .map_err(perr)?;
        } else {
            area.draw(&Circle::new((13, y), 4, c.filled()))
                .map_err(perr)?;
        }
        let shown: String = if name.chars().count() > max_chars {
            name.chars()
                .take(max_chars.saturating_sub(1))
                .chain(std::iter::once('~'))
                .collect()
        } else {
            name.clone()
        };
        area.draw(&Text::new(
            shown,
            (28, y - 7),
            ("sans-serif", 13).into_font().color(&BLACK),
        ))
        .map_err(perr)?;
    }
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(
    whole: &DrawingArea<DB, Shift>,
    plot: &LinePlot,
) -> std::result::Result<(), String> {
    whole.fill(&WHITE).map_err(perr)?;
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
    let (sx, x_desc) = scale_of(&plot.x, &xs, 0.05);
    let (sy, y_desc) = scale_of(&plot.y, &ys, 0.08);
    let names: Vec<&str> = plot.series.iter().map(|s| s.name.as_str()).collect();
    let (w, _) = whole.dim_in_pixel();
    let (area, legend) = whole.split_horizontally(w - legend_width(&names));
    let items: Vec<(String, RGBColor, bool)> = plot
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let line = !(plot.scatter && i > 0);
            let c = if plot.scatter && i == 0 {
                FRONT
            } else {
                color(i)
            };
            (s.name.clone(), c, line)
        })
        .collect();
    draw_legend(&legend, &items)?;
    let ctx = Ctx {
        plot,
        sx,
        sy,
        x_desc,
        y_desc,
        colors: items.iter().map(|i| i.1).collect(),
    };
    match (sx.log, sy.log) {
        (false, false) => chart(&area, &ctx, sx.lo..sx.hi, sy.lo..sy.hi),
        (true, false) => chart(&area, &ctx, (sx.lo..sx.hi).log_scale(), sy.lo..sy.hi),
        (false, true) => chart(&area, &ctx, sx.lo..sx.hi, (sy.lo..sy.hi).log_scale()),
        (true, true) => chart(
            &area,
            &ctx,
            (sx.lo..sx.hi).log_scale(),
            (sy.lo..sy.hi).log_scale(),
        ),
    }?;
    whole.present().map_err(perr)
}

/// What [`chart`] draws with.
struct Ctx<'a> {
    plot: &'a LinePlot,
    sx: Scale,
    sy: Scale,
    x_desc: String,
    y_desc: String,
    colors: Vec<RGBColor>,
}

fn chart<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    ctx: &Ctx,
    x: X,
    y: Y,
) -> std::result::Result<(), String>
where
    DB: DrawingBackend,
    X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (plot, sx, sy) = (ctx.plot, ctx.sx, ctx.sy);
    let mut chart = ChartBuilder::on(area)
        .caption(&plot.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(perr)?;
    chart
        .configure_mesh()
        .x_desc(ctx.x_desc.as_str())
        .y_desc(ctx.y_desc.as_str())
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(perr)?;
    let scaled = |s: &Series| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .map(|&(x, y)| (x / sx.div, y / sy.div))
            .collect()
    };
    let n_points: usize = plot.series.iter().map(|s| s.points.len()).sum();
    for (i, s) in plot.series.iter().enumerate() {
        let c = ctx.colors[i];
        let pts = scaled(s);
        let is_points = plot.scatter && i > 0;
        if !is_points && !pts.is_empty() {
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(perr)?;
        }
        // Markers only where they can be told apart (and stay cheap to draw).
        if pts.len() <= MAX_MARKERS || is_points {
            let r = if is_points { 5 } else { 3 };
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, r, c.filled())))
                .map_err(perr)?;
        }
        if is_points && !s.labels.is_empty() && n_points <= MAX_POINT_LABELS {
            chart
                .draw_series(pts.iter().zip(&s.labels).map(|(&p, l)| {
                    EmptyElement::at(p)
                        + Text::new(
                            l.clone(),
                            (7, -16),
                            ("sans-serif", 12).into_font().color(&BLACK),
                        )
                }))
                .map_err(perr)?;
        }
        if let Some(err) = &s.err {
            let style = c.stroke_width(1);
            chart
                .draw_series(pts.iter().zip(err).map(|(&(x, _), &(lo, hi))| {
                    PathElement::new(vec![(x, lo / sy.div), (x, hi / sy.div)], style)
                }))
                .map_err(perr)?;
            for end in [0, 1] {
                chart
                    .draw_series(pts.iter().zip(err).map(|(&(x, _), e)| {
                        let v = if end == 0 { e.0 } else { e.1 } / sy.div;
                        EmptyElement::at((x, v)) + PathElement::new(vec![(-4, 0), (4, 0)], style)
                    }))
                    .map_err(perr)?;
            }
        }
    }
    for (x, label) in &plot.marks {
        let x = x / sx.div;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, sy.lo), (x, sy.hi)],
                BLACK.stroke_width(1),
            )))
            .map_err(perr)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x, sy.hi))
                    + Text::new(
                        label.clone(),
                        (5, 6),
                        ("sans-serif", 14).into_font().color(&BLACK),
                    ),
            ))
            .map_err(perr)?;
    }
    Ok(())
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

/// A line plot as SVG text (for the HTML report).
pub fn line_plot_svg(plot: &LinePlot) -> Result<String> {
    ensure_font();
    let mut s = String::new();
    draw_lines(
        &SVGBackend::with_string(&mut s, SIZE).into_drawing_area(),
        plot,
    )
    .map_err(|e| Error::Internal(format!("drawing {}: {e}", plot.title)))?;
    Ok(s)
}

/// Stacked horizontal bars: one bar per category, one stack per series (coloured by
/// [`action_color`] of its name).
pub struct StackedBars {
    pub title: String,
    /// The value axis; `{unit}` is replaced by the energy unit chosen.
    pub x_desc: String,
    pub categories: Vec<String>,
    pub stacks: Vec<(String, Vec<f64>)>,
}

fn bars_size(b: &StackedBars) -> (u32, u32) {
    let h = (120 + 16 * b.categories.len() as u32).clamp(SIZE.1, MAX_BAR_HEIGHT);
    (SIZE.0, h)
}

fn draw_bars<DB: DrawingBackend>(
    whole: &DrawingArea<DB, Shift>,
    b: &StackedBars,
) -> std::result::Result<(), String> {
    whole.fill(&WHITE).map_err(perr)?;
    // The legend gets its own column so it never hides a bar.
    let names: Vec<&str> = b.stacks.iter().map(|s| s.0.as_str()).collect();
    let (w, _) = whole.dim_in_pixel();
    let (root, legend) = whole.split_horizontally(w - legend_width(&names));
    let items: Vec<(String, RGBColor, bool)> = b
        .stacks
        .iter()
        .map(|(name, _)| (name.clone(), action_color(name), true))
        .collect();
    draw_legend(&legend, &items)?;
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
    let max = totals.iter().copied().fold(0.0, f64::max);
    let (unit, div) = energy_unit(max);
    let xmax = (max / div).max(1e-12) * 1.05;
    let longest = b
        .categories
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0) as u32;
    let mut chart = ChartBuilder::on(root)
        .caption(&b.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size((12 + 7 * longest).clamp(60, 260))
        // An integer range holds both ends: n categories are 0..=n-1.
        .build_cartesian_2d(0f64..xmax, (0..n as i32 - 1).into_segmented())
        .map_err(perr)?;
    let cats = b.categories.clone();
    let x_desc = b.x_desc.replace("{unit}", unit);
    chart
        .configure_mesh()
        .x_desc(x_desc.as_str())
        .x_label_formatter(&|v| tick(*v))
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if (*i as usize) < n => {
                cats.get(n - 1 - *i as usize).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(perr)?;
    let mut start = vec![0.0; n];
    for (name, vals) in &b.stacks {
        let c = action_color(name);
        let rects: Vec<Rectangle<(f64, SegmentValue<i32>)>> = (0..n)
            .map(|i| {
                let v = vals.get(i).copied().unwrap_or(0.0) / div;
                // The first category at the top.
                let row = (n - 1 - i) as i32;
                let mut r = Rectangle::new(
                    [
                        (start[i], SegmentValue::Exact(row)),
                        (start[i] + v, SegmentValue::Exact(row + 1)),
                    ],
                    c.filled(),
                );
                // A gap between bars.
                r.set_margin(2, 2, 0, 0);
                start[i] += v;
                r
            })
            .collect();
        chart.draw_series(rects).map_err(perr)?;
    }
    whole.present().map_err(perr)
}

pub fn stacked_bars(dir: &Path, stem: &str, b: &StackedBars) -> Result<Vec<PathBuf>> {
    let size = bars_size(b);
    render(dir, stem, |t| match t {
        Target::Png(p) => draw_bars(&BitMapBackend::new(p, size).into_drawing_area(), b),
        Target::Svg(s) => draw_bars(&SVGBackend::with_string(s, size).into_drawing_area(), b),
    })
}

/// Stacked bars as SVG text (for the HTML report).
pub fn stacked_bars_svg(b: &StackedBars) -> Result<String> {
    ensure_font();
    let mut s = String::new();
    draw_bars(
        &SVGBackend::with_string(&mut s, bars_size(b)).into_drawing_area(),
        b,
    )
    .map_err(|e| Error::Internal(format!("drawing {}: {e}", b.title)))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_plain_or_engineering_never_scientific() {
        assert_eq!(tick(5e7), "50e6");
        assert_eq!(tick(1.5e9), "1.5e9");
        assert_eq!(tick(2.5e-4), "250e-6");
        assert_eq!(tick(17.5), "17.5");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(12000.0), "12000");
        assert_eq!(tick(-3e5), "-300e3");
    }

    #[test]
    fn energies_get_a_unit_with_at_most_three_integer_digits() {
        assert_eq!(energy_unit(120.0), ("pJ", 1.0));
        assert_eq!(energy_unit(2.1e7), ("µJ", 1e6));
        assert_eq!(energy_unit(999.0e3), ("nJ", 1e3));
        assert_eq!(energy_unit(0.5), ("pJ", 1.0));
    }

    #[test]
    fn an_action_has_one_colour_whatever_its_format_or_level() {
        assert_eq!(
            action_color("read.weight"),
            action_color("read.weight.sram")
        );
        assert_eq!(action_color("mac"), action_color("mac.fp32"));
        assert_ne!(action_color("mac"), action_color("read.weight"));
        // Unknown kinds get a stable colour of their own.
        assert_eq!(action_color("foo.bar"), action_color("foo.bar"));
        let keys: std::collections::BTreeSet<_> = ACTION_COLORS.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys.len(), ACTION_COLORS.len(), "one entry per kind");
    }

    #[test]
    fn axes_spanning_decades_are_logarithmic_and_padding_keeps_extremes_inside() {
        let (s, desc) = scale_of(&Axis::energy("energy ({unit})"), &[2e3, 5e6], 0.05);
        assert!(s.log);
        assert_eq!(desc, "energy (µJ)");
        assert!(s.lo < 2e-3 && s.hi > 5.0, "{s:?}");
        let (s, _) = scale_of(&Axis::plain("x"), &[0.2, 0.9], 0.08);
        assert!(!s.log);
        assert!(s.lo < 0.2 && s.hi > 0.9, "{s:?}");
        // A single value sits inside a visible span.
        let (s, _) = scale_of(&Axis::plain("x"), &[3.0], 0.08);
        assert!(s.lo < 3.0 && s.hi > 3.0);
        // Zero or negative values keep a linear axis.
        let (s, _) = scale_of(&Axis::plain("x"), &[0.0, 1e6], 0.08);
        assert!(!s.log);
    }

    #[test]
    fn the_legend_column_lies_outside_the_plot_area() {
        // Every series name is drawn right of the plot area's frame (the first 960 - legend
        // width pixels), so no name can cover a point.
        let plot = LinePlot {
            title: "t".into(),
            x: Axis::plain("x (unit)"),
            y: Axis::energy("energy ({unit})"),
            series: vec![
                Series::new("first series", vec![(0.0, 1.0), (1.0, 2.0)]),
                Series::new("second", vec![(0.0, 3.0), (1.0, 4.0)]),
            ],
            marks: vec![],
            scatter: false,
        };
        let svg = line_plot_svg(&plot).unwrap();
        let split = SIZE.0 - legend_width(&["first series", "second"]);
        for name in ["first series", "second"] {
            let at = svg
                .find(&format!(">\n{name}\n</text>"))
                .expect("legend entry");
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let x: f64 = tag
                .split("x=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                x >= split as f64,
                "{name} at x = {x}, plot area ends at {split}"
            );
        }
        // The data polylines stay left of it.
        let lines: Vec<&str> = svg
            .split("<polyline")
            .skip(1)
            .filter(|p| p.contains("stroke-width=\"2\""))
            .collect();
        assert_eq!(lines.len(), 2);
        for poly in lines {
            let pts = poly
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            for p in pts.split_whitespace() {
                let x: f64 = p.split(',').next().unwrap().parse().unwrap();
                assert!(x < split as f64, "a line point at x = {x}");
            }
        }
    }

    #[test]
    fn pareto_front_keeps_only_undominated_points() {
        let f = pareto_front(&[(1.0, 0.5), (2.0, 0.4), (3.0, 0.7), (2.5, 0.7), (4.0, 0.9)]);
        assert_eq!(f, vec![(1.0, 0.5), (2.5, 0.7), (4.0, 0.9)]);
    }
}
