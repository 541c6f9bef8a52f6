//! Execute a scenario: load each model, run it token by token on the scenario's input, and keep
//! its ledger. Runs are independent and execute in parallel; results keep the scenario's order.

use rayon::prelude::*;
use serde::Serialize;

use crate::data;
use crate::engine::Arith;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Op};
use crate::models::ModelDesc;
use crate::models::spikegpt::SpikeGpt;
use crate::scenario::{Input, LoadedScenario, RunSpec};

/// Prediction quality measured on the run's own input: next-token prediction for language
/// models, class prediction for classifiers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Accuracy {
    /// `next-token` or `classification`.
    pub task: String,
    /// Fraction of predictions whose most likely class (token) is the right one.
    pub top1: f64,
    /// Mean cross-entropy of the next token in bits (bits per character for char models).
    pub bits_per_token: Option<f64>,
    /// 95% interval of `top1` (classification).
    pub top1_ci95: Option<(f64, f64)>,
    /// Predictions evaluated.
    pub predictions: usize,
}

/// How closely a run in a narrow arithmetic follows the same model in exact fp32, token by token.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fidelity {
    /// Fraction of tokens whose most likely next token is the same as in fp32.
    pub top1_agreement: f64,
    /// Mean KL divergence KL(p_fp32 || p_run) of the next-token distributions, in bits.
    pub mean_kl_bits: f64,
}

/// Compares a run's outputs with an exact fp32 shadow run of the same model, token by token.
#[derive(Default)]
pub struct FidelityMeter {
    agree: usize,
    kl: f64,
    n: usize,
}

impl FidelityMeter {
    /// Evaluation only: not counted in any ledger.
    pub fn observe(&mut self, reference: &[f32], run: &[f32]) {
        let kl: f64 = log_softmax(reference)
            .iter()
            .zip(log_softmax(run))
            .map(|(p, q)| p.exp() * (p - q))
            .sum();
        self.kl += kl.max(0.0) / std::f64::consts::LN_2;
        self.agree += (argmax(reference) == argmax(run)) as usize;
        self.n += 1;
    }

    pub fn finish(&self) -> Fidelity {
        let n = self.n.max(1) as f64;
        Fidelity {
            top1_agreement: self.agree as f64 / n,
            mean_kl_bits: self.kl / n,
        }
    }
}

fn log_softmax(l: &[f32]) -> Vec<f64> {
    let max = l.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let lse = l.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    l.iter().map(|&v| v as f64 - lse).collect()
}

fn argmax(l: &[f32]) -> usize {
    l.iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > l[best] { i } else { best })
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct RunOutput {
    pub label: String,
    pub model: String,
    pub variant: String,
    pub arithmetic: String,
    pub tokens: usize,
    pub ledger: Ledger,
    pub accuracy: Option<Accuracy>,
    /// Against the same model in exact fp32, when the run uses another arithmetic.
    pub fidelity: Option<Fidelity>,
    pub lif_layers: Vec<String>,
    /// NeuroBench's static metrics, for models that define them.
    pub static_metrics: Option<crate::models::sequential::StaticMetrics>,
}

pub fn execute(sc: &LoadedScenario) -> Result<Vec<RunOutput>> {
    sc.scenario
        .runs
        .par_iter()
        .map(|spec| execute_one(sc, spec))
        .collect()
}

/// The token stream of a language-model run: `n` tokens plus, for text, the target after the
/// last one. Returns the tokens and whether targets are known (text) or not (synthetic).
pub fn token_stream(
    sc: &LoadedScenario,
    model: &str,
    vocab: usize,
    n: usize,
) -> Result<(Vec<usize>, bool)> {
    match &sc.scenario.input {
        Input::Synthetic => Ok((data::synthetic_tokens(n, vocab, sc.scenario.seed), false)),
        Input::Text(rel) => {
            let path = sc.resolve(rel);
            if vocab < data::CHAR_VOCAB {
                return Err(Error::input(format!(
                    "model `{model}` has vocab_size {vocab}, but text input needs at least {} (character vocabulary)",
                    data::CHAR_VOCAB
                )));
            }
            let text = crate::error::read_text(&path)?;
            let toks: Vec<usize> = data::encode_text(&text).into_iter().take(n + 1).collect();
            if toks.len() < n + 1 {
                return Err(Error::input(format!(
                    "{}: has {} characters, the scenario asks for {} tokens (+1 target)",
                    path.display(),
                    toks.len(),
                    n
                )));
            }
            Ok((toks, true))
        }
        other => Err(Error::input(format!(
            "model `{model}` is a language model and cannot read input {other:?}"
        ))),
    }
}

fn execute_one(sc: &LoadedScenario, spec: &RunSpec) -> Result<RunOutput> {
    let model_path = sc.resolve(&spec.model);
    let desc = ModelDesc::load(&model_path)?;
    let base = model_path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    execute_desc(sc, spec, desc, &base)
}

/// Execute one run with a model description given in memory (sweeps change it before running);
/// `base` is the folder the description's relative paths start from.
pub fn execute_desc(
    sc: &LoadedScenario,
    spec: &RunSpec,
    desc: ModelDesc,
    base: &std::path::Path,
) -> Result<RunOutput> {
    let sc = &*sc.for_run(spec);
    match desc {
        ModelDesc::Transformer(cfg) => crate::models::transformer::execute(sc, spec, cfg, base),
        ModelDesc::SpikeGpt(mut cfg) => {
            if let Some(v) = spec.variant {
                cfg.variant = v;
            }
            let n = sc.scenario.tokens;
            let (tokens, targets_known) = token_stream(sc, &cfg.name, cfg.vocab_size, n)?;
            let variant = cfg.variant.name().to_string();
            let name = cfg.name.clone();
            let arith = run_arith(spec)?;
            let model = SpikeGpt::from_config(cfg, base)?;
            let mut ledger = model.new_ledger(&arith);
            let mut state = model.new_state();
            let mut acc = AccuracyMeter::default();
            // A narrow arithmetic is compared with an exact shadow run, whose counts are dropped.
            let mut shadow = (!arith.is_exact()).then(|| {
                (
                    model.new_state(),
                    model.new_ledger(&Arith::Exact),
                    FidelityMeter::default(),
                )
            });
            for t in 0..n {
                model.step_checked(tokens[t], t, &mut state, &arith, &mut ledger)?;
                if let Some((st, l, meter)) = shadow.as_mut() {
                    model.step(tokens[t], st, &Arith::Exact, l);
                    meter.observe(&st.logits, &state.logits);
                }
                if targets_known {
                    acc.observe(&state.logits, tokens[t + 1]);
                }
            }
            Ok(RunOutput {
                label: run_label(spec, &name, &variant, &arith),
                model: name,
                variant,
                arithmetic: arith.label(),
                tokens: n,
                ledger,
                accuracy: targets_known.then(|| acc.finish()),
                fidelity: shadow.map(|(_, _, m)| m.finish()),
                lif_layers: model.lif_layers(),
                static_metrics: None,
            })
        }
        ModelDesc::Sequential(cfg) => crate::run_sequential::execute(sc, spec, cfg, base),
        ModelDesc::Pvt(cfg) => crate::models::pvt::execute(sc, spec, cfg, base),
    }
}

/// A run's label: the scenario's, or `model/variant` (plus the arithmetic when not fp32).
pub fn run_label(spec: &RunSpec, name: &str, variant: &str, arith: &Arith) -> String {
    spec.label.clone().unwrap_or_else(|| {
        if arith.is_exact() {
            format!("{name}/{variant}")
        } else {
            format!("{name}/{variant}/{}", arith.label())
        }
    })
}

/// The arithmetic mode of a run (exact fp32 unless the run names one).
pub fn run_arith(spec: &RunSpec) -> Result<Arith> {
    match &spec.arith {
        None => Ok(Arith::Exact),
        Some(a) => a
            .build()
            .map_err(|e| Error::input(format!("run `{}`: {e}", spec.model))),
    }
}

/// Accumulates next-token (or class) predictions from logits.
#[derive(Default)]
pub struct AccuracyMeter {
    bits: f64,
    correct: usize,
    n: usize,
}

impl AccuracyMeter {
    /// Evaluation only: these operations are not part of the model's work and are not counted.
    pub fn observe(&mut self, logits: &[f32], target: usize) {
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
        let log_p = logits[target] as f64 - max - sum.ln();
        self.bits += -log_p / std::f64::consts::LN_2;
        self.correct += (argmax(logits) == target) as usize;
        self.n += 1;
    }

    pub fn finish(&self) -> Accuracy {
        let n = self.n.max(1) as f64;
        Accuracy {
            task: "next-token".into(),
            top1: self.correct as f64 / n,
            bits_per_token: Some(self.bits / n),
            top1_ci95: None,
            predictions: self.n,
        }
    }
}

/// Firing rate of each LIF layer: spikes / (neurons x tokens), from the ledger.
pub fn firing_rates(out: &RunOutput) -> Vec<(String, f64)> {
    out.lif_layers
        .iter()
        .map(|name| {
            let c = out.ledger.subtree(name);
            let updates = c.op_total(Op::NeuronUpdate).max(1) as f64;
            (name.clone(), c.op_total(Op::Spike) as f64 / updates)
        })
        .collect()
}
