//! The scenario schema: which models to run, on what input, for how many tokens, on which
//! hardware cost model, with which seed.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{self, Error, Result};
use crate::models::spikegpt::Variant;

pub use crate::input::Input;

/// One model to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Path of the model description (relative to the scenario file).
    pub model: String,
    /// Overrides the variant in the model file (reference, spike_driven, non_spiking).
    #[serde(default)]
    pub variant: Option<Variant>,
    /// A name for the run in reports; defaults to `model/variant`.
    #[serde(default)]
    pub label: Option<String>,
    /// Arithmetic mode (default exact fp32), e.g. `arith: (mode: "lmul-3")`, `arith: (mode: "bf16")`,
    /// `(mode: "fp8-e4m3", acc: Some("fp16"), scope: Projections)`.
    #[serde(default)]
    pub arith: Option<crate::engine::arith::ArithSpec>,
    /// This run's input, in place of the scenario's (one table can hold a language model and a
    /// classifier).
    #[serde(default)]
    pub input: Option<Input>,
    /// This run's token (or image) count, in place of the scenario's.
    #[serde(default)]
    pub tokens: Option<usize>,
    /// This run's batch (samples per batch), in place of the scenario's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Fixed-context language models: score in overlapping windows. Each window after the
    /// first starts `stride` tokens after the one before; the model restarts from zero state,
    /// re-reads the window's first `context - stride` tokens unscored (their work is counted)
    /// and scores the next `stride`. Default: disjoint windows (`stride` = context), the first
    /// tokens of each scored with little context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// Label of the run this run's energy is compared with, in place of the scenario's
    /// `baseline` (a language model against a language model, a classifier against a
    /// classifier).
    #[serde(default)]
    pub baseline: Option<String>,
    /// Hashed-attention normalisation in place of the model's: `Some(EcoformerCode)` runs the
    /// same weights as EcoFormer's released code computes, `Some(Normalised)` as picojoule's
    /// EcoFormer-style weighted average. Models with EcoFormer attention only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalisation: Option<crate::engine::attention::Normalisation>,
    /// Runs with the same group (the same model trained with different seeds) are summarised
    /// together: mean and spread of accuracy and energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// A reference predictor scored beside the runs (a row of the accuracy tables, no energy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// `NGram(order: 6, discount: 0.75)` or `Knn(k: 1)`.
    pub kind: crate::baselines::Reference,
    /// The training split it is fitted on (relative to the scenario file).
    pub train: String,
    /// A name in reports; defaults to the predictor's description.
    #[serde(default)]
    pub label: Option<String>,
    /// Its test input in place of the scenario's: `Text(..)` for the n-gram, `Digits(..)` for
    /// k-NN.
    #[serde(default)]
    pub input: Option<Input>,
    /// Predictions scored in place of the scenario's `tokens`.
    #[serde(default)]
    pub tokens: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seed: u64,
    /// A preset name (`horowitz45`, ...) or a path to a cost model file.
    pub hardware: String,
    pub input: Input,
    /// Tokens to run through each model.
    pub tokens: usize,
    /// Samples per batch. Samples execute one at a time whatever the batch (executed work,
    /// outputs and accuracy do not change with it), but two things see the batch: NeuroBench's
    /// per-batch classification of a layer's input as spiking (docs/neurobench.md: with
    /// `batch > 1`, a layer call whose input is all in {-1, 0, 1} counts its `effective_*`
    /// operations as MACs when another sample of its batch fed that layer a non-spiking input
    /// at the same step), and the loop-nest mapping of matrix-product passes, which maps the
    /// rows of a batch's samples as one pass so that each weight can be read once per batch
    /// (docs/hardware.md).
    #[serde(default = "one_sample", skip_serializing_if = "is_one_sample")]
    pub batch: usize,
    pub runs: Vec<RunSpec>,
    /// Label of the run every energy is compared with (`energy_ratio_to_baseline` in reports).
    #[serde(default)]
    pub baseline: Option<String>,
    /// Cost models `picojoule compare` prices the runs under (presets or paths); empty: the
    /// scenario's `hardware` only.
    #[serde(default)]
    pub compare: Vec<String>,
    /// Parameters to sweep (`picojoule sweep`); ignored by `picojoule run`.
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// A counting convention shown beside the full accounting: `"full"` (the default: the full
    /// accounting alone), `"ecoformer-paper"`, `"spikegpt-paper"` or `"neurobench"`. The
    /// command-line `--convention` overrides it. A view never changes what runs.
    #[serde(default, skip_serializing_if = "is_full")]
    pub convention: crate::convention::Convention,
    /// Reference predictors (character n-gram, k-NN) scored on the runs' data and shown as
    /// accuracy rows beside them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceSpec>,
    /// Loop-nest mappings fixed for the passes of named layers instead of the mapper's choice,
    /// as reports print them: `(layer: "blocks.0.att.core.mix", mapping: "dram[] sram-1m[N16]
    /// sram-32k[] sram-8k[M16 C16]")`. A pin that matches no layer with mapped passes, names
    /// a level or dim the pass does not have, or does not fit is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<crate::hardware::PinnedMapping>,
}

fn is_full(c: &crate::convention::Convention) -> bool {
    *c == crate::convention::Convention::Full
}

fn one_sample() -> usize {
    1
}

fn is_one_sample(b: &usize) -> bool {
    *b == 1
}

/// A scenario with the folder its relative paths start from.
#[derive(Clone, Debug)]
pub struct LoadedScenario {
    pub scenario: Scenario,
    pub path: PathBuf,
    pub sha256: String,
}

/// Upper bound on tokens per run, to refuse absurd sizes before allocating anything.
pub const MAX_TOKENS: usize = 100_000_000;

impl LoadedScenario {
    /// Load the cost model `name` (a preset or a resolved path) with the mappings this scenario
    /// pins for it.
    pub fn load_hardware(&self, name: &str) -> Result<crate::hardware::Hardware> {
        let mut hw = crate::hardware::Hardware::load(name)?;
        self.attach_mappings(&mut hw);
        Ok(hw)
    }

    /// Give `hw` the mappings this scenario pins for it: those naming it, and those naming no
    /// cost model when it is the scenario's `hardware`.
    pub fn attach_mappings(&self, hw: &mut crate::hardware::Hardware) {
        let own = self.hardware_ref();
        hw.model.pinned_mappings = self
            .scenario
            .mappings
            .iter()
            .filter(|m| {
                let target = m
                    .hardware
                    .as_deref()
                    .map_or_else(|| own.clone(), |h| self.resolve_hardware(h));
                target == hw.origin
            })
            .cloned()
            .collect();
    }

    /// Check that the passes the runs filed can be mapped onto `hw`, with its pinned mappings.
    pub fn check_mappings<'a>(
        &self,
        hw: &crate::hardware::Hardware,
        runs: impl IntoIterator<Item = (&'a str, &'a crate::ledger::Ledger)>,
    ) -> Result<()> {
        for (label, ledger) in runs {
            hw.model
                .check_mappings(ledger)
                .map_err(|e| Error::input(format!("{}: run {label}: {e}", self.path.display())))?;
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<LoadedScenario> {
        let text = error::read_text(path)?;
        let scenario: Scenario = error::parse_ron(path, &text)?;
        let loaded = LoadedScenario {
            scenario,
            path: path.to_path_buf(),
            sha256: crate::hardware::sha256_hex(text.as_bytes()),
        };
        loaded.validate()?;
        Ok(loaded)
    }

    fn validate(&self) -> Result<()> {
        let s = &self.scenario;
        let here = self.path.display();
        if s.tokens == 0 || s.tokens > MAX_TOKENS {
            return Err(Error::input(format!(
                "{here}: tokens must be between 1 and {MAX_TOKENS}, found {}",
                s.tokens
            )));
        }
        if s.batch == 0 || s.batch > MAX_TOKENS {
            return Err(Error::input(format!(
                "{here}: batch must be between 1 and {MAX_TOKENS}, found {}",
                s.batch
            )));
        }
        let named = std::iter::once(("hardware", &s.hardware))
            .chain(s.compare.iter().map(|h| ("compare", h)));
        for (field, h) in named {
            if h.trim().is_empty() {
                return Err(Error::input(format!(
                    "{here}: `{field}` names an empty cost model: give a preset (picojoule hardware list) or a cost model file"
                )));
            }
        }
        if s.runs.is_empty() {
            return Err(Error::input(format!(
                "{here}: `runs` is empty: name at least one model"
            )));
        }
        let labels: Vec<&str> = s.runs.iter().filter_map(|r| r.label.as_deref()).collect();
        let run_baselines = s.runs.iter().filter_map(|r| r.baseline.as_ref());
        for b in s.baseline.iter().chain(run_baselines) {
            if !labels.contains(&b.as_str()) {
                return Err(Error::input(format!(
                    "{here}: baseline `{b}` is not the label of a run (labels: {})",
                    labels.join(", ")
                )));
            }
        }
        self.check_unique_labels()?;
        for r in &s.runs {
            let name = r.label.as_deref().unwrap_or(&r.model);
            for (field, v) in [
                ("tokens", r.tokens),
                ("batch", r.batch),
                ("stride", r.stride),
            ] {
                if let Some(t) = v
                    && (t == 0 || t > MAX_TOKENS)
                {
                    return Err(Error::input(format!(
                        "{here}: run `{name}`: {field} must be between 1 and {MAX_TOKENS}, found {t}"
                    )));
                }
            }
        }
        for r in &s.references {
            let name = r.label.clone().unwrap_or_else(|| r.kind.describe());
            if let Some(t) = r.tokens
                && (t == 0 || t > MAX_TOKENS)
            {
                return Err(Error::input(format!(
                    "{here}: reference `{name}`: tokens must be between 1 and {MAX_TOKENS}, found {t}"
                )));
            }
            let input = r.input.as_ref().unwrap_or(&s.input);
            let fits = matches!(
                (&r.kind, input),
                (crate::baselines::Reference::NGram { .. }, Input::Text(_))
                    | (crate::baselines::Reference::Knn { .. }, Input::Digits(_))
            );
            if !fits {
                return Err(Error::input(format!(
                    "{here}: reference `{name}` cannot read input {input:?}: the n-gram reads `Text(..)`, k-NN reads `Digits(..)`"
                )));
            }
        }
        Ok(())
    }

    /// Refuse two runs reported under one label (their plots would overwrite each other and a
    /// `baseline` naming it would be ambiguous). A run without a label gets the default the
    /// runner gives it ([`default_label`]), so the model descriptions are read here; a run whose
    /// description or arithmetic cannot be read is left to the runner, which names the problem.
    fn check_unique_labels(&self) -> Result<()> {
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (i, r) in self.scenario.runs.iter().enumerate() {
            let Some(label) = self.effective_label(r) else {
                continue;
            };
            if let Some((_, first)) = seen.iter().find(|(l, _)| *l == label) {
                return Err(Error::input(format!(
                    "{}: runs {} and {} are both labelled `{label}`: give each run its own `label`",
                    self.path.display(),
                    first + 1,
                    i + 1
                )));
            }
            seen.push((label, i));
        }
        Ok(())
    }

    /// The label a run is reported under: its own, else the default for its model, variant and
    /// arithmetic; None when the model description or the arithmetic does not load.
    pub fn effective_label(&self, spec: &RunSpec) -> Option<String> {
        if let Some(l) = &spec.label {
            return Some(l.clone());
        }
        let arith = match &spec.arith {
            None => crate::engine::Arith::Exact,
            Some(a) => a.build().ok()?,
        };
        let mut desc = crate::models::ModelDesc::load(&self.resolve(&spec.model)).ok()?;
        if let Some(n) = spec.normalisation {
            desc.set_normalisation(n).ok()?;
        }
        let variant = match &desc {
            crate::models::ModelDesc::SpikeGpt(c) => {
                Some(spec.variant.unwrap_or(c.variant).name().to_string())
            }
            crate::models::ModelDesc::Transformer(c) => Some(c.attention.name().to_string()),
            crate::models::ModelDesc::Pvt(c) => Some(c.attention.name().to_string()),
            crate::models::ModelDesc::Sequential(_) => None,
            crate::models::ModelDesc::Nir(c) => Some(c.variant()),
        };
        Some(default_label(spec, desc.name(), variant.as_deref(), &arith))
    }

    /// Every run on `n` tokens (images), in place of the scenario's and the runs' own counts.
    pub fn override_tokens(&mut self, n: usize) -> std::result::Result<(), String> {
        if n == 0 || n > MAX_TOKENS {
            return Err(format!("must be between 1 and {MAX_TOKENS}, found {n}"));
        }
        self.scenario.tokens = n;
        for r in &mut self.scenario.runs {
            if r.tokens.is_some() {
                r.tokens = Some(n);
            }
        }
        for r in &mut self.scenario.references {
            if r.tokens.is_some() {
                r.tokens = Some(n);
            }
        }
        Ok(())
    }

    /// The scenario as one run sees it: with the run's own `input`, `tokens` and `batch` when it sets
    /// them.
    pub fn for_run(&self, spec: &RunSpec) -> std::borrow::Cow<'_, LoadedScenario> {
        if spec.input.is_none() && spec.tokens.is_none() && spec.batch.is_none() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut sc = self.clone();
        if let Some(input) = &spec.input {
            sc.scenario.input = input.clone();
        }
        if let Some(t) = spec.tokens {
            sc.scenario.tokens = t;
        }
        if let Some(b) = spec.batch {
            sc.scenario.batch = b;
        }
        std::borrow::Cow::Owned(sc)
    }

    /// Resolve a path named in the scenario: relative to the scenario's folder, else to the
    /// working directory.
    pub fn resolve(&self, rel: &str) -> PathBuf {
        let p = Path::new(rel);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        let beside = self.path.parent().unwrap_or(Path::new(".")).join(p);
        if beside.exists() {
            beside
        } else {
            p.to_path_buf()
        }
    }

    /// Resolve the hardware: a preset name, or a path (relative as above).
    pub fn hardware_ref(&self) -> String {
        self.resolve_hardware(&self.scenario.hardware)
    }

    /// Resolve any hardware name: a preset, or a path relative to the scenario.
    pub fn resolve_hardware(&self, h: &str) -> String {
        let h = &h.to_string();
        if crate::hardware::PRESETS.iter().any(|(n, _)| n == h) {
            h.clone()
        } else {
            self.resolve(h).display().to_string()
        }
    }
}

/// A run's label: its own, or `model/variant` (plus the arithmetic when not exact fp32). A
/// sequential model (`variant` None) is named by its model alone, whatever the arithmetic.
pub fn default_label(
    spec: &RunSpec,
    name: &str,
    variant: Option<&str>,
    arith: &crate::engine::Arith,
) -> String {
    spec.label.clone().unwrap_or_else(|| match variant {
        None => name.to_string(),
        Some(v) if arith.is_exact() => format!("{name}/{v}"),
        Some(v) => format!("{name}/{v}/{}", arith.label()),
    })
}

// The sweep part of a scenario: data only; `sweep` gives it meaning.

/// One value of an axis: a number, or a name (formats, variants).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AxisValue {
    Num(f64),
    Text(String),
}

impl AxisValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AxisValue::Num(v) => Some(*v),
            AxisValue::Text(t) => t.parse().ok(),
        }
    }
    pub fn parse(s: &str) -> AxisValue {
        match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => AxisValue::Num(v),
            _ => AxisValue::Text(s.trim().to_string()),
        }
    }
}

impl fmt::Display for AxisValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxisValue::Num(v) => write!(f, "{v}"),
            AxisValue::Text(t) => f.write_str(t),
        }
    }
}

/// One axis as written in a scenario: a path and exactly one of `values`, `range`, `log_range`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisSpec {
    pub path: String,
    #[serde(default)]
    pub values: Option<Vec<AxisValue>>,
    /// (lo, hi, steps): `steps` evenly spaced values from lo to hi inclusive.
    #[serde(default)]
    pub range: Option<(f64, f64, usize)>,
    /// (lo, hi, steps): `steps` values evenly spaced in log scale.
    #[serde(default)]
    pub log_range: Option<(f64, f64, usize)>,
}

/// Where two runs' energies cross along one axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakevenSpec {
    /// Run label (or 1-based run number).
    pub a: String,
    pub b: String,
    /// The axis path; the first axis when absent.
    #[serde(default)]
    pub axis: Option<String>,
}

/// The optional `sweep` field of a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    #[serde(default)]
    pub axes: Vec<AxisSpec>,
    /// Walk the axes together (all the same length) instead of their Cartesian product.
    #[serde(default)]
    pub zip: bool,
    #[serde(default)]
    pub breakeven: Option<BreakevenSpec>,
    /// Monte Carlo samples of the uncertain cost-model entries per point (0: none).
    #[serde(default)]
    pub samples: usize,
}
