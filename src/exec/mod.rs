//! The runner: builds each run's model, feeds it its input step by step, keeps its ledger, runs
//! an exact fp32 shadow for fidelity when the arithmetic is narrow, stops on non-finite outputs,
//! and measures accuracy. This is the only loop over inputs; models know one step.
//! Runs are independent and execute in parallel; results keep the scenario's order.

mod feed;
pub mod meters;
mod references;
pub mod saved;

use rayon::prelude::*;

use crate::engine::Arith;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Op};
use crate::models::{Frame, LayerCall, ModelDesc, Stepper};
use crate::scenario::{LoadedScenario, RunSpec, default_label};

pub use feed::Feed;
pub use meters::{Accuracy, AccuracyMeter, Fidelity, FidelityMeter, wilson95};
pub use references::{ReferenceOutput, score_references};

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
    /// NeuroBench's static metrics of the model (None only in ledgers saved without them).
    pub static_metrics: Option<crate::models::statics::StaticMetrics>,
    /// Per token or sample, when asked for (`run --dump-outputs`); else empty.
    pub steps: Vec<StepRecord>,
    /// What the run read as something else or ignored (text characters outside the
    /// vocabulary, unused tensors of a weights file), for the caller to show; not saved.
    pub warnings: Vec<String>,
}

/// One step's outputs, for cross-checks against other implementations.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StepRecord {
    /// Token position or sample number.
    pub index: usize,
    /// The input token (language models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<usize>,
    /// The next token or the class label, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<usize>,
    /// The most likely next token or class.
    pub prediction: usize,
    /// The `k` most likely outputs with their natural-log probabilities, most likely first
    /// (ties: lower index first).
    pub top: Vec<(usize, f64)>,
    /// Spikes of each LIF layer in this step (the run's `lif_layers` order).
    pub spikes: Vec<u64>,
}

/// Bytes a dump of `n` steps holds before it is written.
fn dump_bytes(n: usize, k: usize, lif_layers: usize) -> u64 {
    (n as u64).saturating_mul(96 + 16 * k as u64 + 8 * lif_layers as u64)
}

/// The records of one step.
struct Recorder<'a> {
    k: usize,
    lif: &'a [String],
    spikes_before: Vec<u64>,
    records: Vec<StepRecord>,
}

impl<'a> Recorder<'a> {
    fn new(k: usize, lif: &'a [String]) -> Recorder<'a> {
        Recorder {
            k,
            lif,
            spikes_before: vec![0; lif.len()],
            records: Vec::new(),
        }
    }

    fn record(
        &mut self,
        index: usize,
        token: Option<usize>,
        target: Option<usize>,
        outputs: &[f32],
        ledger: &Ledger,
    ) {
        let logp = meters::log_softmax(outputs);
        let mut order: Vec<usize> = (0..logp.len()).collect();
        order.sort_by(|&a, &b| logp[b].total_cmp(&logp[a]).then(a.cmp(&b)));
        let spikes = self
            .lif
            .iter()
            .zip(self.spikes_before.iter_mut())
            .map(|(name, before)| {
                let now = ledger.subtree(name).op_total(Op::Spike);
                let step = now - *before;
                *before = now;
                step
            })
            .collect();
        self.records.push(StepRecord {
            index,
            token,
            target,
            prediction: meters::argmax(outputs),
            top: order.iter().take(self.k).map(|&i| (i, logp[i])).collect(),
            spikes,
        });
    }
}

/// Limits a run is checked against before it allocates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    /// Largest estimated peak memory in bytes (None: the memory the system has available).
    pub max_memory: Option<u64>,
}

/// Execute every run of a scenario.
pub fn execute(sc: &LoadedScenario, limits: &Limits) -> Result<Vec<RunOutput>> {
    execute_recording(sc, limits, None)
}

/// Execute every run of a scenario and keep, per step, the `top_k` most likely outputs and the
/// spikes of each LIF layer (`RunOutput::steps`).
pub fn execute_recording(
    sc: &LoadedScenario,
    limits: &Limits,
    top_k: Option<usize>,
) -> Result<Vec<RunOutput>> {
    execute_with_progress(sc, limits, top_k, None)
}

/// Told how many tokens (or samples) a run has just processed, from worker threads; the caller
/// decides how to show it.
pub type Tick = dyn Fn(u64) + Send + Sync;

/// The tokens (samples for classifiers) the runs of a scenario process in all: the length of a
/// progress bar fed by [`Tick`].
pub fn total_steps(sc: &LoadedScenario) -> u64 {
    sc.scenario
        .runs
        .iter()
        .map(|r| r.tokens.unwrap_or(sc.scenario.tokens) as u64)
        .sum()
}

/// [`execute_recording`], telling `tick` of every token or sample processed.
pub fn execute_with_progress(
    sc: &LoadedScenario,
    limits: &Limits,
    top_k: Option<usize>,
    tick: Option<&Tick>,
) -> Result<Vec<RunOutput>> {
    sc.scenario
        .runs
        .par_iter()
        .map(|spec| execute_one(sc, spec, limits, top_k, tick))
        .collect()
}

fn execute_one(
    sc: &LoadedScenario,
    spec: &RunSpec,
    limits: &Limits,
    top_k: Option<usize>,
    tick: Option<&Tick>,
) -> Result<RunOutput> {
    let model_path = sc.resolve(&spec.model);
    let desc = ModelDesc::load(&model_path)?;
    let base = model_path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    run_desc(sc, spec, desc, &base, limits, top_k, tick)
}

/// Execute one run with a model description given in memory (sweeps change it before running);
/// `base` is the folder the description's relative paths start from.
pub fn execute_desc(
    sc: &LoadedScenario,
    spec: &RunSpec,
    desc: ModelDesc,
    base: &std::path::Path,
    limits: &Limits,
) -> Result<RunOutput> {
    run_desc(sc, spec, desc, base, limits, None, None)
}

fn run_desc(
    sc: &LoadedScenario,
    spec: &RunSpec,
    desc: ModelDesc,
    base: &std::path::Path,
    limits: &Limits,
    top_k: Option<usize>,
    tick: Option<&Tick>,
) -> Result<RunOutput> {
    let sc = &*sc.for_run(spec);
    let arith = run_arith(spec)?;
    let n = sc.scenario.tokens;
    let built = feed::build(sc, spec, desc, base, limits)?;
    let name = built.name.clone();
    let lif_layers = match &built.model {
        feed::Model::SpikeGpt(m) => m.lif_layers(),
        feed::Model::Sequential(m) => m.lif_layers(),
        feed::Model::Nir(m) => m.lif_layers(),
        feed::Model::Transformer(_) | feed::Model::Pvt(_) => vec![],
    };
    let mut recorder = match top_k {
        Some(k) => {
            let what = format!("the per-step outputs of model `{name}`");
            let bytes = dump_bytes(n, k, lif_layers.len());
            crate::resources::check(&what, bytes, limits.max_memory)?;
            Some(Recorder::new(k, &lif_layers))
        }
        None => None,
    };
    let rec = recorder.as_mut();
    let batch = sc.scenario.batch;
    if batch > 1 && !built.feed.is_tokens() {
        let what = format!("the layer calls of a batch of {batch} samples of model `{name}`");
        let layers = match &built.model {
            feed::Model::Sequential(m) => m.cfg.layers.len(),
            _ => 1,
        };
        let per_sample = built.feed.timesteps().max(1).saturating_mul(layers);
        let bytes = (batch.min(n) as u64).saturating_mul(per_sample as u64 * 32 + 24);
        crate::resources::check(&what, bytes, limits.max_memory)?;
    }
    let windows = Windows {
        batch,
        stride: spec.stride,
    };
    let measured = match &built.model {
        feed::Model::SpikeGpt(m) => run(m, built.feed, n, windows, &arith, &name, rec, tick)?,
        feed::Model::Transformer(m) => run(m, built.feed, n, windows, &arith, &name, rec, tick)?,
        feed::Model::Sequential(m) => run(m, built.feed, n, windows, &arith, &name, rec, tick)?,
        feed::Model::Nir(m) => run(m, built.feed, n, windows, &arith, &name, rec, tick)?,
        feed::Model::Pvt(m) => run(m, built.feed, n, windows, &arith, &name, rec, tick)?,
    };
    let steps = recorder.map(|r| r.records).unwrap_or_default();
    let static_metrics = Some(match &built.model {
        feed::Model::Sequential(m) => m.statics.clone(),
        feed::Model::SpikeGpt(m) => m.statics.clone(),
        feed::Model::Transformer(m) => m.statics(),
        feed::Model::Pvt(m) => m.statics.clone(),
        feed::Model::Nir(m) => m.statics.clone(),
    });
    let label = match &built.model {
        // Sequential runs are named by their model alone, whatever the arithmetic.
        feed::Model::Sequential(_) => default_label(spec, &name, None, &arith),
        _ => run_label(spec, &name, &built.variant, &arith),
    };
    Ok(RunOutput {
        label,
        model: name,
        variant: built.variant,
        arithmetic: arith.label(),
        tokens: n,
        ledger: measured.ledger,
        accuracy: measured.accuracy,
        fidelity: measured.fidelity,
        lif_layers,
        static_metrics,
        steps,
        warnings: built.warnings,
    })
}

/// Run a model built by the caller over given tokens in exact fp32 and return its ledger: the
/// same loop as a scenario's runs, for reproductions that build their models themselves.
pub fn run_tokens<M: Stepper>(m: &M, tokens: &[usize], name: &str) -> Result<Ledger> {
    // The feed owns its tokens, as it does for a file's.
    #[allow(clippy::unnecessary_to_owned)]
    let feed = Feed::Tokens {
        tokens: feed::Tokens::Known(tokens.to_vec().into_iter()),
        targets: false,
    };
    let windows = Windows {
        batch: 1,
        stride: None,
    };
    let measured = run(
        m,
        feed,
        tokens.len(),
        windows,
        &Arith::Exact,
        name,
        None,
        None,
    )?;
    Ok(measured.ledger)
}

/// What the loop measured.
struct Measured {
    ledger: Ledger,
    accuracy: Option<Accuracy>,
    fidelity: Option<Fidelity>,
}

/// An exact fp32 copy of the run whose counts are dropped: the reference for fidelity.
struct Shadow<S> {
    state: S,
    ledger: Ledger,
    meter: FidelityMeter,
}

/// One token through the model and, when the run has one, through its exact-fp32 shadow.
fn step_token<M: Stepper>(
    m: &M,
    token: usize,
    arith: &Arith,
    state: &mut M::State,
    ledger: &mut Ledger,
    shadow: Option<&mut Shadow<M::State>>,
) {
    m.step(Frame::Token(token), state, arith, ledger);
    if let Some(s) = shadow {
        m.step(
            Frame::Token(token),
            &mut s.state,
            &Arith::Exact,
            &mut s.ledger,
        );
    }
}

/// NeuroBench's per-batch classification over the layer calls of one batch (`calls[sample]
/// [step]`): where any sample's input to a layer at a step was not spiking, the samples whose
/// input was count that call's effective operations as MACs (`engine::events`).
fn apply_batch_rule(calls: &[Vec<Vec<LayerCall>>], ledger: &mut Ledger) {
    let steps = calls.iter().map(Vec::len).max().unwrap_or(0);
    for t in 0..steps {
        let at_t: Vec<&[LayerCall]> = calls
            .iter()
            .filter_map(|s| s.get(t).map(Vec::as_slice))
            .collect();
        let width = at_t.iter().map(|c| c.len()).max().unwrap_or(0);
        for k in 0..width {
            let all_spiking = at_t.iter().all(|c| c.get(k).is_none_or(|c| c.spiking));
            if all_spiking {
                continue;
            }
            for call in at_t.iter().filter_map(|c| c.get(k)) {
                if call.spiking && call.effective_ac > 0 {
                    crate::engine::events::count_batch_not_spiking(
                        ledger.at(call.layer),
                        call.effective_ac,
                    );
                }
            }
        }
    }
}

/// How a run groups its input: samples per batch (classifiers), and the stride of a
/// fixed-context language model's windows (`RunSpec::stride`).
#[derive(Clone, Copy)]
struct Windows {
    batch: usize,
    stride: Option<usize>,
}

/// The loop: `n` tokens (language models) or `n` samples (classifiers) through the model;
/// samples run one at a time, grouped in batches for NeuroBench's per-batch rule; tokens in
/// context windows, disjoint or overlapping.
#[allow(clippy::too_many_arguments)]
fn run<M: Stepper>(
    m: &M,
    feed: Feed,
    n: usize,
    windows: Windows,
    arith: &Arith,
    name: &str,
    mut recorder: Option<&mut Recorder>,
    tick: Option<&Tick>,
) -> Result<Measured> {
    let tick = |k: u64| {
        if let Some(f) = tick {
            f(k)
        }
    };
    let batch = windows.batch;
    let window = m.context().unwrap_or(n).min(n).max(1);
    let window = if feed.is_tokens() { window } else { 1 };
    let stride = match (windows.stride, m.context()) {
        (None, _) => window,
        (Some(_), None) => {
            return Err(Error::input(format!(
                "model `{name}`: `stride` needs a model with a context window (a transformer); this one carries its state across every token"
            )));
        }
        (Some(s), Some(context)) if s == 0 || s > context => {
            return Err(Error::input(format!(
                "model `{name}`: `stride` must be between 1 and the model's context {context}, found {s}"
            )));
        }
        (Some(s), Some(_)) => s.min(window),
    };
    // The inputs a new window re-reads: the last `window - stride` of the one before.
    let overlap = window - stride;
    let mut recent: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut ledger = m.new_ledger(arith, window);
    let mut state = m.new_state(window);
    let mut shadow = (!arith.is_exact()).then(|| Shadow {
        state: m.new_state(window),
        ledger: m.new_ledger(&Arith::Exact, window),
        meter: FidelityMeter::default(),
    });
    let mut acc = AccuracyMeter::default();
    let nonfinite = |state: &M::State, at: String| -> Result<()> {
        let out = m.outputs(state);
        match out.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(bad) => {
                let site = m
                    .nonfinite_site(state)
                    .unwrap_or_else(|| format!("output {bad} ({})", out[bad]));
                Err(Error::input(format!(
                    "model `{name}`: a non-finite value appeared in {site} at {at}"
                )))
            }
        }
    };
    match feed {
        Feed::Tokens {
            mut tokens,
            targets,
        } => {
            let mut token = tokens.next_token();
            for t in 0..n {
                if t >= window && (t - window).is_multiple_of(stride) {
                    // A new context window: attention starts afresh, as in training, and
                    // re-reads the overlap with the window before, unscored.
                    m.reset(&mut state);
                    if let Some(s) = shadow.as_mut() {
                        m.reset(&mut s.state);
                    }
                    for (i, &old) in recent.iter().enumerate() {
                        step_token(m, old, arith, &mut state, &mut ledger, shadow.as_mut());
                        nonfinite(&state, format!("token position {}", t - overlap + i))?;
                    }
                }
                if overlap > 0 {
                    if recent.len() == overlap {
                        recent.pop_front();
                    }
                    recent.push_back(token);
                }
                step_token(m, token, arith, &mut state, &mut ledger, shadow.as_mut());
                if let Some(s) = shadow.as_mut() {
                    s.meter.observe(m.outputs(&s.state), m.outputs(&state));
                }
                nonfinite(&state, format!("token position {t}"))?;
                let input = token;
                if t + 1 < n || targets {
                    token = tokens.next_token();
                }
                if targets {
                    acc.observe(m.outputs(&state), token);
                }
                if let Some(r) = recorder.as_mut() {
                    let target = targets.then_some(token);
                    r.record(t, Some(input), target, m.outputs(&state), &ledger);
                }
                tick(1);
            }
            Ok(Measured {
                ledger,
                accuracy: targets.then(|| acc.finish()),
                fidelity: shadow.map(|s| s.meter.finish()),
            })
        }
        Feed::Samples(mut samples) => {
            let batched = batch > 1;
            m.keep_layer_calls(&mut state, batched);
            let mut group: Vec<Vec<Vec<LayerCall>>> = Vec::new();
            for i in 0..n {
                let sample = samples.sample(i);
                m.reset(&mut state);
                let mut calls = Vec::new();
                for f in &sample.frames {
                    m.step(Frame::Values(f), &mut state, arith, &mut ledger);
                    if batched {
                        calls.push(m.layer_calls(&state).to_vec());
                    }
                }
                if batched {
                    group.push(calls);
                    if group.len() == batch || i + 1 == n {
                        apply_batch_rule(&group, &mut ledger);
                        group.clear();
                    }
                }
                if let Some(s) = shadow.as_mut() {
                    m.reset(&mut s.state);
                    for f in &sample.frames {
                        m.step(Frame::Values(f), &mut s.state, &Arith::Exact, &mut s.ledger);
                    }
                    s.meter.observe(m.outputs(&s.state), m.outputs(&state));
                }
                nonfinite(&state, format!("sample {i}"))?;
                if let Some(label) = sample.label {
                    acc.observe(m.outputs(&state), label);
                }
                if let Some(r) = recorder.as_mut() {
                    r.record(i, None, sample.label, m.outputs(&state), &ledger);
                }
                tick(1);
            }
            // The memory mapping sees the batch: a layer's passes of a batch's samples as one.
            ledger.batch_passes(batch as u64);
            Ok(Measured {
                ledger,
                accuracy: (acc.predictions() > 0).then(|| acc.finish_classification()),
                fidelity: shadow.map(|s| s.meter.finish()),
            })
        }
    }
}

/// A run's label: the scenario's, or `model/variant` (plus the arithmetic when not fp32).
/// Scenario validation computes the same labels up front (`scenario::default_label`), to refuse
/// two runs under one label before any work.
pub fn run_label(spec: &RunSpec, name: &str, variant: &str, arith: &Arith) -> String {
    default_label(spec, name, Some(variant), arith)
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

/// The dense multiply-accumulates of one token (language models) or one sample (classifiers)
/// of a model: its synaptic operations counted as if every input were non-zero
/// (`Op::DenseSynop`, NeuroBench's `Dense`), from executing one step of it in exact fp32 on
/// token 0 or on an input of zeros (SpikeGPT as its non-spiking form). Also the unit (`token` or
/// `sample`). None for a family `inspect` does not execute (NIR graphs: a run's
/// `metrics.Dense`).
pub fn dense_per_step(
    desc: &ModelDesc,
    base: &std::path::Path,
) -> Result<Option<(u64, &'static str)>> {
    fn one<M: Stepper>(m: &M, frames: &[Frame]) -> u64 {
        let arith = Arith::Exact;
        let mut st = m.new_state(1);
        let mut l = m.new_ledger(&arith, 1);
        for f in frames {
            let f = match f {
                Frame::Token(t) => Frame::Token(*t),
                Frame::Values(v) => Frame::Values(v),
            };
            m.step(f, &mut st, &arith, &mut l);
        }
        l.totals().op_total(Op::DenseSynop)
    }
    Ok(Some(match desc {
        ModelDesc::SpikeGpt(cfg) => {
            let twin = crate::models::spikegpt::Config {
                variant: crate::models::spikegpt::Variant::NonSpiking,
                ..cfg.clone()
            };
            let m = crate::models::spikegpt::SpikeGpt::from_config(twin, base)?;
            (one(&m, &[Frame::Token(0)]), "token")
        }
        ModelDesc::Transformer(cfg) => {
            use crate::models::transformer::{Calibration, DIGIT_PIXELS, Transformer};
            let lm = cfg.is_lm();
            // An EcoFormer hash missing from the weights is learned from inputs; the dense
            // counts do not depend on it, so any fixed inputs do.
            let calib = if lm {
                Calibration::Tokens(crate::input::text::synthetic_tokens(
                    cfg.calibration,
                    cfg.vocab_size,
                    0xca11,
                ))
            } else {
                Calibration::Images(
                    (0..cfg.calibration)
                        .map(|i| {
                            std::array::from_fn::<f32, DIGIT_PIXELS, _>(|j| {
                                ((i * 7 + j * 3) % 17) as f32 / 16.0
                            })
                        })
                        .collect(),
                )
            };
            let m = Transformer::from_config(cfg.clone(), base, Some(&calib))?;
            if lm {
                (one(&m, &[Frame::Token(0)]), "token")
            } else {
                let zeros = vec![0.0f32; DIGIT_PIXELS];
                (one(&m, &[Frame::Values(&zeros)]), "sample")
            }
        }
        ModelDesc::Pvt(cfg) => {
            let n = cfg.in_chans * cfg.image_size * cfg.image_size;
            let m = crate::models::pvt::Pvt::from_config(cfg.clone(), base)?;
            let zeros = vec![0.0f32; n];
            (one(&m, &[Frame::Values(&zeros)]), "sample")
        }
        ModelDesc::Sequential(cfg) => {
            let n: usize = cfg.input.iter().product();
            let m = crate::models::sequential::Sequential::from_config(cfg.clone(), base)?;
            let zeros = vec![0.0f32; n];
            let frames: Vec<Frame> = (0..cfg.timesteps.max(1))
                .map(|_| Frame::Values(&zeros))
                .collect();
            (one(&m, &frames), "sample")
        }
        ModelDesc::Nir(cfg) => {
            let m = crate::models::nir::Nir::from_config(cfg.clone(), base)?;
            let zeros = vec![0.0f32; m.n_inputs()];
            let frames: Vec<Frame> = (0..cfg.timesteps.max(1))
                .map(|_| Frame::Values(&zeros))
                .collect();
            (one(&m, &frames), "sample")
        }
    }))
}
