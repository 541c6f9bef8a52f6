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

pub mod breakeven;
pub mod overrides;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, write_atomic};
use crate::exec::{self, RunOutput};
use crate::hardware::compiled::{
    CompiledSet, KINDS, PointEnergy, leaf_energies, leaf_index, theta,
};
use crate::hardware::paths::{self, Leaf};
use crate::hardware::uncertainty::{is_uncertain, quantile, sample};
use crate::hardware::{CostModel, Energy, Hardware};
use crate::ledger::Op;
use crate::models::ModelDesc;
use crate::scenario::LoadedScenario;

pub use crate::scenario::{AxisSpec, AxisValue, BreakevenSpec, SweepSpec};
pub use breakeven::{Breakeven, Crossing, breakeven};

/// What an axis changes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A cost-model leaf (index into `compiled::leaves`).
    Cost(usize),
    /// A dotted path into the model description (without `model.`).
    Model(String),
    /// An arithmetic-mode parameter (without `arith.`).
    Numerics(String),
    /// Every run's batch (samples per batch), which NeuroBench's per-batch rule and the mapping
    /// of matrix-product passes see: each point is simulated.
    Batch,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub path: String,
    pub values: Vec<AxisValue>,
    pub log: bool,
    pub target: Target,
}

impl Axis {
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Cost(_) => "cost",
            Target::Model(_) => "model",
            Target::Numerics(_) => "numerics",
            Target::Batch => "batch",
        }
    }
}

/// Largest grid accepted (points x runs rows must fit in memory for the final table).
pub const MAX_POINTS: usize = 50_000_000;

/// Estimated memory of a sweep's result, in bytes per row (one point and run) held for the
/// final table: the row itself and the largest of its renderings (table, CSV, Markdown, JSON),
/// which are made one at a time. Measured peak RSS of a 900,000-row sweep of a 3-run scenario:
/// 1.8 KB per row with one cost axis (table on stdout), 2.0 KB with `--out`, 2.5 KB with three
/// axes and `--out`; the estimate is 1.2-1.3 times that.
const ROW_BYTES: u64 = 2048;
/// Bytes per row and axis (the axis value in the row and in each rendering).
const ROW_AXIS_BYTES: u64 = 256;
/// Bytes per row added by `--out`: the plots' series and the points file's lines in flight.
const ROW_OUT_BYTES: u64 = 256;

/// Estimated peak memory of holding and rendering `points` x `runs` rows of a grid of
/// `axes` axes (the simulations' own memory is checked per model).
pub fn grid_bytes(points: usize, runs: usize, axes: usize, out: bool) -> u64 {
    let rows = (points as u64).saturating_mul(runs as u64);
    let per_row = ROW_BYTES
        .saturating_add(ROW_AXIS_BYTES.saturating_mul(axes as u64))
        .saturating_add(if out { ROW_OUT_BYTES } else { 0 });
    rows.saturating_mul(per_row)
}

/// Round to 12 significant digits so `0.1 + 2 * 0.1` prints as `0.3`.
fn round12(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// Parse a command-line axis: `--set PATH=V1,V2`, `--range PATH=LO:HI:STEPS`,
/// `--log-range PATH=LO:HI:STEPS`. Errors name the flag.
pub fn parse_cli_axis(flag: &str, arg: &str) -> Result<AxisSpec> {
    let bad = |why: &str| Error::input(format!("{flag} {arg}: {why}"));
    let (path, rhs) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected PATH=VALUES"))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(bad("empty PATH"));
    }
    let mut spec = AxisSpec {
        path: path.to_string(),
        values: None,
        range: None,
        log_range: None,
    };
    match flag {
        "--set" => {
            let parts: Vec<&str> = rhs.split(',').collect();
            if let Some(i) = parts.iter().position(|s| s.trim().is_empty()) {
                return Err(bad(&format!(
                    "value {} of {} is empty: expected PATH=V1,V2,...",
                    i + 1,
                    parts.len()
                )));
            }
            let vals: Vec<AxisValue> = parts.into_iter().map(AxisValue::parse).collect();
            spec.values = Some(vals);
        }
        _ => {
            let parts: Vec<&str> = rhs.split(':').collect();
            if parts.len() != 3 {
                return Err(bad("expected PATH=LO:HI:STEPS"));
            }
            let num = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let lo = num(parts[0]).ok_or_else(|| bad("LO is not a number"))?;
            let hi = num(parts[1]).ok_or_else(|| bad("HI is not a number"))?;
            let steps: usize = parts[2]
                .trim()
                .parse()
                .map_err(|_| bad("STEPS is not a whole number"))?;
            if flag == "--log-range" {
                spec.log_range = Some((lo, hi, steps))
            } else {
                spec.range = Some((lo, hi, steps))
            }
        }
    }
    expand(&spec, &format!("{flag} {arg}"))?;
    Ok(spec)
}

/// The values of an axis spec, and whether it is log-spaced.
pub fn expand(spec: &AxisSpec, origin: &str) -> Result<(Vec<AxisValue>, bool)> {
    let bad = |why: String| Error::input(format!("{origin}: axis `{}`: {why}", spec.path));
    let given =
        spec.values.is_some() as u8 + spec.range.is_some() as u8 + spec.log_range.is_some() as u8;
    if given != 1 {
        return Err(bad(
            "give exactly one of `values`, `range`, `log_range`".into()
        ));
    }
    if let Some(v) = &spec.values {
        if v.is_empty() {
            return Err(bad("`values` is empty".into()));
        }
        return Ok((v.clone(), false));
    }
    let (lo, hi, steps, log) = match (spec.range, spec.log_range) {
        (Some((a, b, n)), _) => (a, b, n, false),
        (_, Some((a, b, n))) => (a, b, n, true),
        _ => unreachable!(),
    };
    if steps == 0 {
        return Err(bad("STEPS must be at least 1".into()));
    }
    if steps > MAX_POINTS {
        return Err(bad(format!("STEPS must be at most {MAX_POINTS}")));
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(bad("LO and HI must be finite".into()));
    }
    if log && (lo <= 0.0 || hi <= 0.0) {
        return Err(bad("a log range needs LO > 0 and HI > 0".into()));
    }
    if steps == 1 && lo != hi {
        return Err(bad("one step needs LO = HI".into()));
    }
    let vals = (0..steps)
        .map(|i| {
            let t = if steps == 1 {
                0.0
            } else {
                i as f64 / (steps - 1) as f64
            };
            let v = if log {
                (lo.ln() + t * (hi.ln() - lo.ln())).exp()
            } else {
                lo + t * (hi - lo)
            };
            let v = if i + 1 == steps {
                hi
            } else if i == 0 {
                lo
            } else {
                v
            };
            AxisValue::Num(round12(v))
        })
        .collect();
    Ok((vals, log))
}

/// The hook where numerics axes (`arith.format`, `arith.lmul_bits`, ...) plug in once the
/// arithmetic modes exist: check the values here, then apply them where a run picks its
/// `Arith` (see `simulate`).
pub fn numerics_axis(path: &str, values: &[AxisValue]) -> std::result::Result<(), String> {
    let mut spec = crate::engine::arith::ArithSpec {
        mode: "fp32".into(),
        acc: None,
        scope: Default::default(),
        policy: None,
        fold_weight_offset: None,
    };
    for v in values {
        set_arith(&mut spec, path, v)?;
        spec.build()
            .map_err(|e| format!("`arith.{path}` = {v}: {e}"))?;
    }
    Ok(())
}

/// A `batch` axis value: a whole number of samples, 1..=MAX_TOKENS.
fn batch_value(v: &AxisValue) -> std::result::Result<usize, String> {
    match v.as_f64() {
        Some(b) if b.fract() == 0.0 && b >= 1.0 && b <= crate::scenario::MAX_TOKENS as f64 => {
            Ok(b as usize)
        }
        _ => Err(format!(
            "`batch` = {v}: a whole number of samples, 1..={}",
            crate::scenario::MAX_TOKENS
        )),
    }
}

/// Set one arithmetic parameter: `arith.mode` (fp32, bf16, fp8-e4m3, lmul-3, lmul:bf16, ...),
/// `arith.lmul_bits` (K of lmul-K), `arith.acc` (accumulation format), `arith.scope`
/// (All, Projections, Attention, TensorProducts).
fn set_arith(
    spec: &mut crate::engine::arith::ArithSpec,
    path: &str,
    v: &AxisValue,
) -> std::result::Result<(), String> {
    use crate::engine::arith::Scope;
    let text = match v {
        AxisValue::Num(x) => format!("{x}"),
        AxisValue::Text(t) => t.clone(),
    };
    match path {
        "mode" => spec.mode = text,
        "lmul_bits" => match v.as_f64() {
            Some(k) if k.fract() == 0.0 && (0.0..=23.0).contains(&k) => {
                spec.mode = format!("lmul-{k}")
            }
            _ => {
                return Err(format!(
                    "`arith.lmul_bits` = {v}: a whole number of mantissa bits, 0..=23"
                ));
            }
        },
        "acc" => spec.acc = Some(text),
        "scope" => {
            spec.scope = Scope::ALL
                .into_iter()
                .find(|s| s.name().eq_ignore_ascii_case(&text))
                .ok_or_else(|| {
                    format!(
                        "`arith.scope` = {v}: one of {}",
                        Scope::ALL.map(Scope::name).join(", ")
                    )
                })?
        }
        _ => {
            return Err(format!(
                "unknown numerics axis `arith.{path}` (valid: arith.mode, arith.lmul_bits, arith.acc, arith.scope)"
            ));
        }
    }
    Ok(())
}

/// A scenario with its sweep resolved: axes checked against the cost model and the models.
pub struct Plan {
    pub sc: LoadedScenario,
    pub hw: Hardware,
    /// The cost model whose structure the ledgers are compiled against (a swept missing memory
    /// `write` is created here).
    pub cm: CostModel,
    pub axes: Vec<Axis>,
    pub zip: bool,
    pub samples: usize,
    pub breakeven: Option<BreakevenSpec>,
    /// Each run's model description and the folder its paths start from.
    descs: Vec<(ModelDesc, PathBuf)>,
    /// What the plan found questionable but accepted, for the caller to show.
    pub warnings: Vec<String>,
    /// The scenario's counting convention (when not `full`) and the cost model its view is
    /// priced with: each row also carries the run under that convention.
    pub view: Option<(crate::convention::Convention, Hardware)>,
    /// The cost model at every combination of the axes that resize memories (`shape_points`).
    resized: Vec<(String, Hardware)>,
}

/// Command-line choices that replace the scenario's `sweep` settings.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// (origin for messages, e.g. `--set add.fp32=1,2`; axis): when any is given, they replace
    /// the scenario's axes.
    pub axes: Vec<(String, AxisSpec)>,
    pub breakeven: Option<BreakevenSpec>,
    pub samples: Option<usize>,
}

impl Plan {
    pub fn new(sc: LoadedScenario, ov: Overrides) -> Result<Plan> {
        let hw = sc.load_hardware(&sc.hardware_ref())?;
        let spec = sc.scenario.sweep.clone().unwrap_or_default();
        let here = sc.path.display().to_string();
        let axis_specs: Vec<(String, AxisSpec)> = if ov.axes.is_empty() {
            spec.axes
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("{here}: sweep axis {}", i + 1), a.clone()))
                .collect()
        } else {
            ov.axes.clone()
        };
        if axis_specs.is_empty() {
            return Err(Error::input(format!(
                "{here}: nothing to sweep: give --set, --range or --log-range, or a `sweep: Some((axes: [...]))` in the scenario"
            )));
        }
        let mut descs = Vec::new();
        for r in &sc.scenario.runs {
            let p = sc.resolve(&r.model);
            let mut d = ModelDesc::load(&p)?;
            if let (Some(v), ModelDesc::SpikeGpt(c)) = (r.variant, &mut d) {
                c.variant = v;
            }
            if let Some(n) = r.normalisation {
                d.set_normalisation(n)
                    .map_err(|e| Error::input(format!("{here}: run of `{}`: {e}", r.model)))?;
            }
            descs.push((d, p.parent().unwrap_or(Path::new(".")).to_path_buf()));
        }
        let mut cm = hw.model.clone();
        let mut axes: Vec<Axis> = Vec::new();
        let mut warnings = Vec::new();
        for (origin, a) in &axis_specs {
            let (values, log) = expand(a, origin)?;
            let bad = |why: String| Error::input(format!("{origin}: {why}"));
            if axes.iter().any(|x| x.path == a.path) {
                return Err(bad(format!("axis `{}` is given twice", a.path)));
            }
            let target = if let Some(rest) = a.path.strip_prefix("model.") {
                // A run's own `variant` replaces the model's when it runs: that run's rows
                // would not change along the axis.
                if rest == "variant" {
                    let pinned: Vec<String> = sc
                        .scenario
                        .runs
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.variant.is_some())
                        .map(|(i, _)| (i + 1).to_string())
                        .collect();
                    let runs = sc.scenario.runs.len();
                    if pinned.len() == runs {
                        return Err(bad(format!(
                            "axis `{}`: every run sets its own `variant` (runs {}), which replaces the swept value: every point would give the same rows; remove `variant` from the runs or sweep another axis",
                            a.path,
                            pinned.join(", ")
                        )));
                    }
                    if !pinned.is_empty() {
                        warnings.push(format!(
                            "{origin}: axis `{}` does not change runs {}: they set their own `variant`",
                            a.path,
                            pinned.join(", ")
                        ));
                    }
                }
                for (d, _) in &descs {
                    for v in &values {
                        overrides::apply(d, rest, v).map_err(bad)?;
                    }
                }
                Target::Model(rest.to_string())
            } else if let Some(rest) = a.path.strip_prefix("arith.") {
                numerics_axis(rest, &values).map_err(bad)?;
                Target::Numerics(rest.to_string())
            } else if a.path == "batch" {
                for v in &values {
                    batch_value(v).map_err(&bad)?;
                }
                Target::Batch
            } else {
                paths::split_ac(&mut cm, &a.path).map_err(&bad)?;
                let leaf = paths::resolve(&cm, &a.path)
                    .map_err(|e| bad(format!("{e}; or a model parameter `model.<field>`")))?;
                for v in &values {
                    match v.as_f64() {
                        Some(x) if (0.0..=crate::hardware::MAX_PJ).contains(&x) => {}
                        _ => {
                            return Err(bad(format!(
                                "`{}` = {v}: a cost needs a non-negative number of pJ, at most {:e} (1 J per action; larger prices times counts could overflow)",
                                a.path,
                                crate::hardware::MAX_PJ
                            )));
                        }
                    }
                }
                for v in &values {
                    crate::hardware::paths::shape_check(leaf, v.as_f64().unwrap_or(0.0))
                        .map_err(|e| bad(format!("`{}`: {e}", a.path)))?;
                }
                if let Leaf::MemoryWrite(i) = leaf
                    && cm.memories[i].write.is_none()
                {
                    cm.memories[i].write = Some(cm.memories[i].read);
                }
                Target::Cost(leaf_index(&cm, leaf))
            };
            axes.push(Axis {
                path: a.path.clone(),
                values,
                log,
                target,
            });
        }
        let breakeven_origin = if ov.breakeven.is_some() {
            "--breakeven".to_string()
        } else {
            format!("{here}: sweep.breakeven")
        };
        let zip = spec.zip;
        if zip && axes.iter().any(|a| a.values.len() != axes[0].values.len()) {
            return Err(Error::input(format!(
                "{here}: `zip: true` needs axes of equal length"
            )));
        }
        let convention = sc.scenario.convention;
        let view = if convention == crate::convention::Convention::Full {
            None
        } else {
            Some((convention, Hardware::load(convention.default_hardware())?))
        };
        let mut plan = Plan {
            view,
            samples: ov.samples.unwrap_or(spec.samples),
            breakeven: ov.breakeven.or(spec.breakeven),
            sc,
            hw,
            cm,
            axes,
            zip,
            descs,
            warnings,
            resized: Vec::new(),
        };
        if plan.n_points() > MAX_POINTS {
            return Err(Error::input(format!(
                "the grid has {} points; at most {MAX_POINTS}",
                plan.n_points()
            )));
        }
        if let Some(b) = &plan.breakeven {
            plan.check_breakeven_runs(b, &breakeven_origin)?;
            let ax = plan.breakeven_axis(b)?;
            if plan.axes[ax].values.iter().any(|v| v.as_f64().is_none()) {
                return Err(Error::input(format!(
                    "break-even: axis `{}` is not numeric",
                    plan.axes[ax].path
                )));
            }
        }
        plan.resized = plan.shape_points();
        Ok(plan)
    }

    /// The labels the runs get at the first point of the grid (where break-even reads them).
    fn first_point_labels(&self) -> Result<Vec<String>> {
        let mut labels = Vec::new();
        for (run, (desc, _)) in self.descs.iter().enumerate() {
            let spec = &self.sc.scenario.runs[run];
            if let Some(l) = &spec.label {
                labels.push(l.clone());
                continue;
            }
            let mut arith = spec.arith.clone();
            for a in &self.axes {
                if let Target::Numerics(p) = &a.target {
                    let mut s = arith.unwrap_or(crate::engine::arith::ArithSpec {
                        mode: "fp32".into(),
                        acc: None,
                        scope: Default::default(),
                        policy: None,
                        fold_weight_offset: None,
                    });
                    set_arith(&mut s, p, &a.values[0]).map_err(Error::input)?;
                    arith = Some(s);
                }
            }
            let arith = exec::run_arith(&crate::scenario::RunSpec {
                arith,
                ..spec.clone()
            })?;
            let name = desc.name().to_string();
            labels.push(match desc {
                ModelDesc::Sequential(_) => name,
                ModelDesc::Nir(c) => exec::run_label(spec, &name, &c.variant(), &arith),
                ModelDesc::SpikeGpt(c) => exec::run_label(spec, &name, c.variant.name(), &arith),
                ModelDesc::Transformer(c) => {
                    exec::run_label(spec, &name, c.attention.name(), &arith)
                }
                ModelDesc::Pvt(c) => exec::run_label(spec, &name, c.attention.name(), &arith),
            });
        }
        Ok(labels)
    }

    /// Refuse a break-even that names a run the scenario does not have, or one run twice,
    /// before any work is done.
    fn check_breakeven_runs(&self, b: &BreakevenSpec, origin: &str) -> Result<()> {
        let labels = self.first_point_labels()?;
        let find = |name: &str| -> Result<usize> {
            if let Some(i) = labels.iter().position(|l| l == name) {
                return Ok(i);
            }
            match name.parse::<usize>() {
                Ok(i) if i >= 1 && i <= labels.len() => Ok(i - 1),
                _ => Err(Error::input(format!(
                    "{origin}: no run `{name}`: name a run by its label or its number 1..={} (runs: {})",
                    labels.len(),
                    labels.join(", ")
                ))),
            }
        };
        let (a, c) = (find(&b.a)?, find(&b.b)?);
        if a == c {
            return Err(Error::input(format!(
                "{origin}: `{}` and `{}` are the same run ({}); a break-even needs two different runs",
                b.a, b.b, labels[a]
            )));
        }
        Ok(())
    }

    pub fn breakeven_axis(&self, b: &BreakevenSpec) -> Result<usize> {
        match &b.axis {
            None => Ok(0),
            Some(p) => self.axes.iter().position(|a| &a.path == p).ok_or_else(|| {
                Error::input(format!(
                    "break-even axis `{p}` is not a swept axis ({})",
                    self.axes
                        .iter()
                        .map(|a| a.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }),
        }
    }

    /// Every combination of the values of the axes that resize memories (capacity, access width,
    /// banks), as the cost model at that combination: the points where passes re-map, whose pinned
    /// mappings must fit as they do at the scenario's own sizes.
    fn shape_points(&self) -> Vec<(String, Hardware)> {
        use crate::hardware::compiled::{leaves, theta, with_theta};
        let kinds = leaves(&self.cm);
        let shape: Vec<&Axis> = self
            .axes
            .iter()
            .filter(|a| matches!(a.target, Target::Cost(i) if kinds[i].is_shape()))
            .collect();
        if shape.is_empty() {
            return Vec::new();
        }
        let base = theta(&self.cm);
        let dims: Vec<usize> = shape.iter().map(|a| a.values.len()).collect();
        // Zipped axes move together; otherwise every combination of sizes is a point.
        let count = if self.zip {
            dims[0]
        } else {
            dims.iter().product()
        };
        (0..count)
            .map(|p| {
                let idx = grid_index(&dims, self.zip, p);
                let mut th = base.clone();
                let mut named = Vec::new();
                for (a, &i) in shape.iter().zip(&idx) {
                    if let Target::Cost(leaf) = a.target {
                        th[leaf] = a.values[i].as_f64().expect("checked numeric");
                    }
                    named.push(format!("{} = {}", a.path, a.values[i]));
                }
                let mut hw = self.hw.clone();
                hw.model = with_theta(&self.cm, &th);
                (named.join(", "), hw)
            })
            .collect()
    }

    pub fn n_points(&self) -> usize {
        grid_points(&self.axes, self.zip)
    }

    pub fn meta(&self) -> SweepMeta {
        let s = &self.sc.scenario;
        let input = match &s.input {
            crate::scenario::Input::Synthetic => format!("synthetic tokens (seed {})", s.seed),
            crate::scenario::Input::Text(p) => format!("text {p}"),
            crate::scenario::Input::Digits(p) => format!("digits {p}"),
            crate::scenario::Input::Tensors(t) => crate::input::tensors::describe(t),
            crate::scenario::Input::SeededImage { size } => {
                format!("seeded {size}x{size} image (seed {})", s.seed)
            }
        } + &if s.batch > 1 {
            crate::input::describe_batch(s.batch)
        } else {
            String::new()
        };
        SweepMeta {
            picojoule_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: s.name.clone(),
            scenario_sha256: self.sc.sha256.clone(),
            input,
            seed: s.seed,
            tokens: s.tokens,
            hardware: self.hw.model.name.clone(),
            hardware_sha256: self.hw.sha256.clone(),
            convention: crate::convention::CONVENTION_FULL.to_string(),
            view: self.view.as_ref().map(|(c, hw)| ViewMeta {
                convention: c.name().into(),
                hardware: hw.model.name.clone(),
            }),
            axes: self
                .axes
                .iter()
                .map(|a| MetaAxis {
                    path: a.path.clone(),
                    kind: a.kind().into(),
                    log: a.log,
                    values: a.values.clone(),
                })
                .collect(),
            zip: self.zip,
            points: self.n_points(),
            samples: self.samples,
            breakeven: self.breakeven.clone(),
        }
    }
}

pub fn grid_points(axes: &[Axis], zip: bool) -> usize {
    if axes.is_empty() {
        return 1;
    }
    if zip {
        axes[0].values.len()
    } else {
        axes.iter().map(|a| a.values.len()).product()
    }
}

/// The value index of each axis at point `p` (first axis slowest).
pub fn grid_index(dims: &[usize], zip: bool, mut p: usize) -> Vec<usize> {
    if zip {
        return vec![p; dims.len()];
    }
    let mut idx = vec![0; dims.len()];
    for (i, &d) in dims.iter().enumerate().rev() {
        idx[i] = p % d;
        p /= d;
    }
    idx
}

/// The K-th (1-based) of N contiguous slices of `0..n`.
pub fn shard_range(n: usize, k: usize, of: usize) -> std::ops::Range<usize> {
    (k - 1) * n / of..k * n / of
}

/// Parse `K/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::input(format!("--shard {s}: expected K/N with 1 <= K <= N"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// Everything a table needs besides the rows; identical for every shard of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepMeta {
    pub picojoule_version: String,
    pub scenario: String,
    pub scenario_sha256: String,
    pub input: String,
    pub seed: u64,
    pub tokens: usize,
    pub hardware: String,
    pub hardware_sha256: String,
    pub convention: String,
    /// The convention each row is also seen under, beside the full accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewMeta>,
    pub axes: Vec<MetaAxis>,
    pub zip: bool,
    pub points: usize,
    pub samples: usize,
    pub breakeven: Option<BreakevenSpec>,
}

/// A counting convention shown beside the full accounting, and the cost model of its view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewMeta {
    pub convention: String,
    pub hardware: String,
}

/// A run under the sweep's view convention: its multiplies, adds and their energy on the view's
/// cost model (fixed along cost axes; it changes where a model axis re-simulates). None of them
/// when the convention does not describe the run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewRow {
    pub mul: u64,
    pub add: u64,
    pub energy_pj: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaAxis {
    pub path: String,
    pub kind: String,
    pub log: bool,
    pub values: Vec<AxisValue>,
}

/// Median and 5-95% interval of the Monte Carlo energy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mc {
    pub p05: f64,
    pub p50: f64,
    pub p95: f64,
}

/// One point and run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub point: usize,
    pub values: Vec<AxisValue>,
    pub run: String,
    pub model: String,
    pub variant: String,
    pub tokens: usize,
    pub mac: u64,
    pub ac: u64,
    pub synops: u64,
    pub spikes: u64,
    pub energy_pj: f64,
    /// Energy by kind, in `compiled::KINDS` order: compute, nonlinear, neuron, metric, memory
    /// (written as an object with those five named fields).
    #[serde(with = "by_kind_fields")]
    pub by_kind: [f64; 5],
    pub unpriced: usize,
    pub top1: Option<f64>,
    pub bits_per_token: Option<f64>,
    pub mc: Option<Mc>,
    /// The run under the view convention (`meta.view`); absent without a view, null when the
    /// convention does not apply to the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<Option<ViewRow>>,
}

/// `SweepRow::by_kind` as named fields (`{"compute": .., "nonlinear": .., "neuron": ..,
/// "metric": .., "memory": ..}`); read back from that or from a list in `KINDS` order.
mod by_kind_fields {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// The fields, in `compiled::KINDS` order.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Named {
        compute: f64,
        nonlinear: f64,
        neuron: f64,
        metric: f64,
        memory: f64,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Named(Named),
        List([f64; 5]),
    }

    pub fn serialize<S: Serializer>(v: &[f64; 5], s: S) -> Result<S::Ok, S::Error> {
        Named {
            compute: v[0],
            nonlinear: v[1],
            neuron: v[2],
            metric: v[3],
            memory: v[4],
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[f64; 5], D::Error> {
        Ok(match Either::deserialize(d)? {
            Either::Named(n) => [n.compute, n.nonlinear, n.neuron, n.metric, n.memory],
            Either::List(v) => v,
        })
    }
}

/// One line of `points.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PointRecord {
    pub point: usize,
    pub rows: Vec<SweepRow>,
}

/// `sweep-meta.json` in an output folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetaFile {
    pub meta: SweepMeta,
    /// (K, N) when this folder holds one shard.
    pub shard: Option<(usize, usize)>,
}

/// The finished sweep: what the tables and plots show.
#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
    pub meta: SweepMeta,
    pub shard: Option<(usize, usize)>,
    pub rows: Vec<SweepRow>,
    pub breakeven: Option<Breakeven>,
}

impl SweepResult {
    pub fn new(
        meta: SweepMeta,
        shard: Option<(usize, usize)>,
        mut rows: Vec<SweepRow>,
    ) -> SweepResult {
        rows.sort_by_key(|r| r.point);
        let complete = {
            let mut seen = vec![false; meta.points];
            rows.iter().for_each(|r| {
                if let Some(s) = seen.get_mut(r.point) {
                    *s = true;
                }
            });
            seen.iter().all(|s| *s)
        };
        let be = match (&meta.breakeven, complete) {
            (Some(spec), true) => Some(breakeven(&meta, &rows, spec)),
            _ => None,
        };
        SweepResult {
            meta,
            shard,
            rows,
            breakeven: be,
        }
    }
}

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

pub const POINTS_FILE: &str = "points.jsonl";
/// The lock file of an output folder in use: it holds the pid of the process writing there.
pub const LOCK_FILE: &str = ".picojoule.lock";

/// An output folder locked for one process: created atomically (`create_new`) with the pid,
/// removed when dropped. A lock left by a process that no longer runs is taken over.
#[derive(Debug)]
pub struct OutLock {
    path: PathBuf,
}

impl OutLock {
    /// Lock `dir` (created if missing), or refuse when another live process holds it.
    pub fn acquire(dir: &Path) -> Result<OutLock> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let me = std::process::id();
        // Two attempts: the second after removing a stale lock.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(format!("{me}\n").as_bytes())
                        .map_err(|source| Error::Write {
                            path: path.clone(),
                            source,
                        })?;
                    return Ok(OutLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = text.trim().parse::<u32>().ok();
                    match pid {
                        Some(pid) if pid != me && process_alive(pid) => {
                            return Err(Error::input(format!(
                                "{} is in use by another picojoule process (pid {pid}, lock file {}); wait for it, or use another --out",
                                dir.display(),
                                path.display()
                            )));
                        }
                        // A lock of a process that has ended (or an unreadable one): take it over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(source) => return Err(Error::Write { path, source }),
            }
        }
        Err(Error::input(format!(
            "{}: cannot take the lock file {} (another process keeps taking it)",
            dir.display(),
            path.display()
        )))
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a process with this pid runs (Linux: /proc/PID exists; elsewhere assumed running).
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}
pub const META_FILE: &str = "sweep-meta.json";

/// A simulated run at one model point, ready to price.
struct Sim {
    out: RunOutput,
    view: Option<Option<ViewRow>>,
    mac: u64,
    ac: u64,
    synops: u64,
    spikes: u64,
    unpriced: usize,
}

impl Sim {
    fn new(
        out: RunOutput,
        cm: &CostModel,
        view: Option<&(crate::convention::Convention, Hardware)>,
    ) -> Sim {
        let t = out.ledger.totals();
        let view = view.map(|(c, hw)| {
            crate::convention::applies(*c, &out.ledger).ok().map(|()| {
                let v = crate::convention::apply(*c, &out.ledger);
                ViewRow {
                    mul: v.mul(),
                    add: v.add(),
                    energy_pj: crate::hardware::price(&v.to_ledger(crate::ledger::FP32), &hw.model)
                        .energy_pj,
                }
            })
        });
        let unpriced = crate::hardware::price(&out.ledger, cm)
            .unpriced
            .iter()
            .filter(|u| !u.excluded)
            .count();
        Sim {
            view,
            mac: t.op_total(Op::Mac),
            ac: t.op_total(Op::Ac),
            synops: t.op_total(Op::Synop),
            spikes: t.op_total(Op::Spike),
            unpriced,
            out,
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Prices points against simulated runs. Shared by the sweep, the benchmark and the tests.
pub struct Pricer<'a> {
    pub plan: &'a Plan,
    base_theta: Vec<f64>,
    energies: Vec<Energy>,
    uncertain: Vec<usize>,
    dims: Vec<usize>,
}

impl<'a> Pricer<'a> {
    pub fn new(plan: &'a Plan) -> Pricer<'a> {
        let energies = leaf_energies(&plan.cm);
        let uncertain = (0..energies.len())
            .filter(|&i| is_uncertain(energies[i]))
            .collect();
        Pricer {
            plan,
            base_theta: theta(&plan.cm),
            energies,
            uncertain,
            dims: plan.axes.iter().map(|a| a.values.len()).collect(),
        }
    }

    fn theta_at(&self, idx: &[usize]) -> (Vec<f64>, Vec<bool>) {
        let mut th = self.base_theta.clone();
        let mut fixed = vec![false; th.len()];
        for (a, &i) in self.plan.axes.iter().zip(idx) {
            if let Target::Cost(leaf) = a.target {
                th[leaf] = a.values[i].as_f64().expect("checked numeric");
                fixed[leaf] = true;
            }
        }
        (th, fixed)
    }

    fn point(
        &self,
        p: usize,
        sims: &[Sim],
        set: &CompiledSet,
        scratch: &mut (Vec<f64>, Vec<PointEnergy>),
    ) -> PointRecord {
        let (vals, energies) = scratch;
        let idx = grid_index(&self.dims, self.plan.zip, p);
        let (th, fixed) = self.theta_at(&idx);
        let values: Vec<AxisValue> = self
            .plan
            .axes
            .iter()
            .zip(&idx)
            .map(|(a, &i)| a.values[i].clone())
            .collect();
        let mut mc: Vec<Vec<f64>> = vec![Vec::new(); sims.len()];
        if self.plan.samples > 0 {
            let seed = splitmix(self.plan.sc.scenario.seed ^ splitmix(p as u64));
            let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut ths = th.clone();
            for _ in 0..self.plan.samples {
                for &i in &self.uncertain {
                    let u: f64 = rng.random::<f64>();
                    if !fixed[i] {
                        ths[i] = sample(self.energies[i], u);
                    }
                }
                set.price(&ths, vals, energies);
                for (r, e) in energies.iter().enumerate() {
                    mc[r].push(e.total);
                }
            }
        }
        set.price(&th, vals, energies);
        let rows = sims
            .iter()
            .zip(mc)
            .zip(energies.iter())
            .map(|((s, mut draws), e)| {
                let mc = (!draws.is_empty()).then(|| {
                    draws.sort_by(f64::total_cmp);
                    Mc {
                        p05: quantile(&draws, 0.05),
                        p50: quantile(&draws, 0.5),
                        p95: quantile(&draws, 0.95),
                    }
                });
                SweepRow {
                    point: p,
                    values: values.clone(),
                    run: s.out.label.clone(),
                    model: s.out.model.clone(),
                    variant: s.out.variant.clone(),
                    tokens: s.out.tokens,
                    mac: s.mac,
                    ac: s.ac,
                    synops: s.synops,
                    spikes: s.spikes,
                    energy_pj: e.total,
                    by_kind: e.by_kind,
                    unpriced: s.unpriced,
                    top1: s.out.accuracy.as_ref().map(|a| a.top1),
                    bits_per_token: s.out.accuracy.as_ref().and_then(|a| a.bits_per_token),
                    mc,
                    view: s.view,
                }
            })
            .collect();
        PointRecord { point: p, rows }
    }

    /// The energy of every run at every cost point of `points`, fast path only (benchmark).
    pub fn price_totals(&self, points: std::ops::Range<usize>, set: &CompiledSet) -> f64 {
        let mut vals = Vec::new();
        let mut out = Vec::new();
        let mut acc = 0.0;
        let mut th = self.base_theta.clone();
        for p in points {
            let idx = grid_index(&self.dims, self.plan.zip, p);
            for (a, &i) in self.plan.axes.iter().zip(&idx) {
                if let Target::Cost(leaf) = a.target {
                    th[leaf] = a.values[i].as_f64().unwrap_or(0.0);
                }
            }
            set.price(&th, &mut vals, &mut out);
            acc += out.iter().map(|e| e.total).sum::<f64>();
        }
        acc
    }
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
            let mut arith = spec
                .arith
                .clone()
                .unwrap_or(crate::engine::arith::ArithSpec {
                    mode: "fp32".into(),
                    acc: None,
                    scope: Default::default(),
                    policy: None,
                    fold_weight_offset: None,
                });
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

/// Read the complete lines of a points file (a half-written last line is ignored).
pub fn read_points(path: &Path) -> Result<Vec<PointRecord>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    let mut out = Vec::new();
    for (n, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: PointRecord = serde_json::from_str(line).map_err(|e| {
            Error::input(format!(
                "{}:{}: not a sweep point: {e}",
                path.display(),
                n + 1
            ))
        })?;
        out.push(rec);
    }
    Ok(out)
}

pub fn read_meta(dir: &Path) -> Result<MetaFile> {
    let p = dir.join(META_FILE);
    let text = crate::error::read_text(&p)?;
    serde_json::from_str(&text).map_err(|e| Error::input(format!("{}: {e}", p.display())))
}

fn points_line(rec: &PointRecord) -> String {
    serde_json::to_string(rec).expect("rows serialise") + "\n"
}

/// Appends whole lines and makes them durable, so an interrupted sweep keeps what it finished.
struct PointsWriter {
    file: std::fs::File,
    path: PathBuf,
}

impl PointsWriter {
    fn append(&mut self, recs: &[PointRecord]) -> Result<()> {
        let err = |source| Error::Write {
            path: self.path.clone(),
            source,
        };
        let text: String = recs.iter().map(points_line).collect();
        self.file.write_all(text.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
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

/// Energy by kind of a row, by name.
pub fn kind_energy(row: &SweepRow, kind: &str) -> f64 {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .map(|i| row.by_kind[i])
        .unwrap_or(0.0)
}
