//! A scenario's sweep resolved against its cost model and models: every axis checked, the
//! break-even runs found and the memory sizes the grid visits listed, before any simulation.

use std::path::{Path, PathBuf};

use crate::engine::arith::ArithSpec;
use crate::error::{Error, Result};
use crate::exec;
use crate::hardware::compiled::leaf_index;
use crate::hardware::paths::{self, Leaf};
use crate::hardware::{CostModel, Hardware};
use crate::models::ModelDesc;
use crate::scenario::LoadedScenario;

use super::axis::{batch_value, expand, numerics_axis, set_arith};
use super::{
    Axis, AxisSpec, BreakevenSpec, MAX_POINTS, MetaAxis, SweepMeta, Target, ViewMeta, grid_index,
    grid_points, overrides,
};

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
    pub(super) descs: Vec<(ModelDesc, PathBuf)>,
    /// What the plan found questionable but accepted, for the caller to show.
    pub warnings: Vec<String>,
    /// The scenario's counting convention (when not `full`) and the cost model its view is
    /// priced with: each row also carries the run under that convention.
    pub view: Option<(crate::convention::Convention, Hardware)>,
    /// The cost model at every combination of the axes that resize memories (`shape_points`).
    pub(super) resized: Vec<(String, Hardware)>,
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
                    let mut s = arith.unwrap_or_else(|| ArithSpec::new("fp32"));
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
