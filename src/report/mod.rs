//! Reports: pure functions of priced ledgers. Every energy number carries its cost model and
//! counting convention.

pub mod compare;
mod groups;
pub mod html;
pub mod plot;
pub mod run_files;
pub mod sweep_files;
pub mod sweep_table;
pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::exec::{Accuracy, Fidelity, ReferenceOutput, RunOutput, firing_rates};
use crate::hardware::{Hardware, PricedLedger, Unpriced, price};
use crate::ledger::{Ledger, Op};
use crate::scenario::LoadedScenario;

pub use crate::convention::CONVENTION_FULL;
pub use groups::{
    GroupDifference, GroupSummary, Metric, Spread, Welch, group_differences, group_summaries,
};

/// The layout version of every JSON report (`run`, `price`, `compare`, `sweep`): the first key
/// of each. Raised when a key is renamed, removed or changes meaning; adding a key keeps it.
/// The layout of the run report is published as a JSON Schema in `docs/schema/`.
pub const SCHEMA_VERSION: u32 = 1;

/// What "compute" energy means in every table and JSON report: every priced action that is not
/// memory traffic, neuron updates included.
pub const COMPUTE_DEFINITION: &str = "compute = every priced action that is not memory traffic: arithmetic (MAC, AC, mul, add, L-Mul), nonlinear functions, neuron updates, and metric counts a cost model prices; memory = reads and writes at every level";

/// Compute energy from energy by kind (`compute`, `nonlinear`, `neuron`, `metric`, `memory`):
/// every kind but memory (see [`COMPUTE_DEFINITION`]).
pub fn compute_energy<'a>(by_kind: impl IntoIterator<Item = (&'a str, f64)>) -> f64 {
    by_kind
        .into_iter()
        .filter(|(k, _)| *k != "memory")
        .map(|(_, v)| v)
        .sum()
}

/// A counting convention by identifier (as `--convention` spells it) and what it counts.
#[derive(Clone, Debug, Serialize)]
pub struct ConventionInfo {
    pub id: String,
    pub description: String,
}

impl ConventionInfo {
    /// The full accounting every report's energies are in.
    pub fn full() -> ConventionInfo {
        ConventionInfo {
            id: crate::convention::Convention::Full.name().into(),
            description: CONVENTION_FULL.into(),
        }
    }
}

/// The text formats every report renders to (the CLI's `--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    Csv,
    /// Markdown.
    Md,
    Json,
}

/// A CSV field, quoted when it holds a comma, a quote or a newline.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    pub picojoule_version: String,
    pub scenario: ScenarioInfo,
    pub hardware: HardwareInfo,
    /// The convention of every energy in `runs` (the full accounting).
    pub convention: ConventionInfo,
    /// [`COMPUTE_DEFINITION`]: what `compute_pj` and the compute columns hold.
    pub compute: String,
    /// The counting convention shown beside the full accounting, when one is chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewInfo>,
    pub runs: Vec<RunReport>,
    /// Reference predictors (n-gram, k-NN) scored on the runs' data: accuracy only, not priced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceOutput>,
    /// Runs of one `group` (one model trained with several seeds): mean and spread.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSummary>,
    /// Each pair of groups, and each group against each reference, on the accuracy they share.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_differences: Vec<GroupDifference>,
}

/// A counting convention shown beside the full accounting: its identifier, its description and
/// the cost model its (mul, add) view is priced with.
#[derive(Clone, Debug, Serialize)]
pub struct ViewInfo {
    pub convention: String,
    pub description: String,
    pub hardware: String,
}

/// One run seen through a counting convention (`convention::apply`): the multiplies and adds it
/// counts, by label, and their energy on the convention's cost model. The full accounting of the
/// run is unchanged beside it.
#[derive(Clone, Debug, Serialize)]
pub struct ConventionView {
    pub convention: String,
    /// Why the convention does not describe this run; no numbers are given then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<ViewCounts>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ViewCounts {
    pub mul: u64,
    pub add: u64,
    pub energy_pj: f64,
    pub energy_pj_per_token: f64,
    pub lines: Vec<crate::convention::Line>,
    /// Measured counts the convention leaves out, by action.
    pub free: BTreeMap<String, u64>,
}

/// A run under `convention`, priced with `hw` (the convention's own cost model).
pub fn convention_view(
    convention: crate::convention::Convention,
    out: &RunOutput,
    hw: &Hardware,
) -> ConventionView {
    use crate::convention as conv;
    let counts = match conv::applies(convention, &out.ledger) {
        Err(why) => {
            return ConventionView {
                convention: convention.name().into(),
                not_applicable: Some(why),
                counts: None,
            };
        }
        Ok(()) => {
            let v = conv::apply(convention, &out.ledger);
            let e = price(&v.to_ledger(crate::ledger::FP32), &hw.model).energy_pj;
            ViewCounts {
                mul: v.mul(),
                add: v.add(),
                energy_pj: e,
                energy_pj_per_token: e / out.tokens.max(1) as f64,
                lines: v.lines,
                free: v.free,
            }
        }
    };
    ConventionView {
        convention: convention.name().into(),
        not_applicable: None,
        counts: Some(counts),
    }
}

/// Show every run of `rep` also under `convention` (nothing for `full`, which the report is
/// already in), its view priced with `hw`.
pub fn add_view(
    rep: &mut Report,
    convention: crate::convention::Convention,
    outputs: &[RunOutput],
    hw: &Hardware,
) {
    if convention == crate::convention::Convention::Full {
        return;
    }
    rep.view = Some(ViewInfo {
        convention: convention.name().into(),
        description: convention.description().into(),
        hardware: hw.model.name.clone(),
    });
    for (r, o) in rep.runs.iter_mut().zip(outputs) {
        r.under_convention = Some(convention_view(convention, o, hw));
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub seed: u64,
    pub input: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HardwareInfo {
    pub name: String,
    pub origin: String,
    pub sha256: String,
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    /// Fused multiply-accumulates (priced as mul + add unless the cost model prices MAC).
    pub mac: u64,
    /// Accumulates (priced as add unless the cost model prices AC).
    pub ac: u64,
    /// Multiplies counted on their own (bf16 and fp8 arithmetic count a product and its
    /// accumulation separately, so such runs show MAC 0 and their work here and in `add`).
    pub mul: u64,
    /// Adds counted on their own (accumulations of separately counted products, biases,
    /// residuals, normalisations).
    pub add: u64,
    pub lmul: u64,
    pub synops: u64,
    pub spikes: u64,
    pub neuron_updates: u64,
    pub energy_pj: f64,
    pub energy_pj_min: f64,
    pub energy_pj_max: f64,
    /// Energy per token, or per sample for classifiers (`RunReport::unit`).
    pub energy_pj_per_token: f64,
    /// Compute energy ([`COMPUTE_DEFINITION`]: neuron updates included).
    pub compute_pj: f64,
    /// Memory energy (the mapped estimate; `memory_range` gives its bounds).
    pub memory_pj: f64,
    /// Number of distinct actions the cost model could not price (energy is then a lower bound).
    pub unpriced_actions: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub mac: u64,
    pub ac: u64,
    pub synops: u64,
    pub spikes: u64,
    pub energy_pj: f64,
    /// Every count of the layer by action (`op.format` or `op.class.format` for memory bytes).
    pub counts: BTreeMap<String, u64>,
    /// The memory levels its weight reads pass through, innermost first (traced layers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_chain: Option<Vec<String>>,
    /// The loop-nest mapping of each pass of the layer (vision projections, full attention).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<String>,
}

/// What the memory energy assumes, and its range (see `hardware::hierarchy`).
pub const MEMORY_MODEL: &str = "weights: the LRU trace of every weight row read, through the cheapest chain of the cost model's levels per layer (Timeloop-style fills and reads); other tensors: at the smallest level that holds their class";

/// Memory energy as lower bound (compulsory traffic), mapped estimate (the one in the totals)
/// and upper bound (no reuse below the level that holds all weights).
#[derive(Clone, Debug, Serialize)]
pub struct MemoryRangeReport {
    pub model: String,
    pub lower_pj: f64,
    pub mapped_pj: f64,
    pub upper_pj: f64,
    pub lower_pj_per_token: f64,
    pub mapped_pj_per_token: f64,
    pub upper_pj_per_token: f64,
    /// Per tensor class: lower, mapped, upper (pJ).
    pub by_class: BTreeMap<String, [f64; 3]>,
    /// Weight bytes read whose reuse was traced, of all weight bytes read.
    pub traced_weight_bytes: u64,
    pub weight_bytes: u64,
}

/// NeuroBench-named metrics, summed over the run's token sequence (one sample).
#[derive(Clone, Debug, Serialize)]
#[allow(non_snake_case)]
pub struct Metrics {
    pub Effective_MACs: u64,
    pub Effective_ACs: u64,
    pub Dense: u64,
    pub MembraneUpdates: u64,
    pub ActivationSparsity: f64,
    /// The metrics above divided by the run's tokens, or by its samples for classifiers
    /// (`RunReport::unit`; NeuroBench reports per sample).
    pub per_unit: BTreeMap<String, f64>,
    /// 1 - nonzero / outputs per activation layer (ReLU, Sigmoid, GELU, spiking neurons), by
    /// ledger layer.
    pub ActivationSparsityByLayer: BTreeMap<String, f64>,
    /// NeuroBench's neuron operations (membrane updates x the neuron type's op cost) of the
    /// snnTorch-type neuron layers; absent when the model has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub NeuronOperations: Option<NeuronOperations>,
    /// Static metrics (absent only for ledgers saved without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ParameterCount: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub Footprint: Option<u64>,
    /// Unrounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ConnectionSparsity: Option<f64>,
    /// As NeuroBench prints it: float32 ratio rounded to 4 decimals, ties to even.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ConnectionSparsity_neurobench: Option<f64>,
}

/// NeuroBench `NeuronOperations`, summed over the run (per token or sample in
/// `Metrics::per_unit`).
#[derive(Clone, Debug, Serialize)]
pub struct NeuronOperations {
    /// Membrane updates (a layer's every neuron at a sample's first step, then the neurons whose
    /// membrane changed) x cost.
    pub effective: u64,
    /// Neuron updates executed (neurons x steps) x cost.
    pub dense: u64,
}

/// NeuronOperations of the layers in `cost` (ledger layer -> ops per update); None without any.
pub fn neuron_operations(
    ledger: &Ledger,
    cost: &BTreeMap<String, u64>,
) -> Option<NeuronOperations> {
    if cost.is_empty() {
        return None;
    }
    let (mut effective, mut dense) = (0, 0);
    for (layer, c) in ledger.layers() {
        if let Some(k) = cost.get(layer) {
            effective += c.op_total(Op::MembraneChange) * k;
            dense += c.op_total(Op::NeuronUpdate) * k;
        }
    }
    Some(NeuronOperations { effective, dense })
}

#[derive(Clone, Debug, Serialize)]
pub struct FiringRate {
    pub layer: String,
    pub rate: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub label: String,
    pub model: String,
    pub variant: String,
    pub arithmetic: String,
    pub hardware: String,
    /// Identifier of the convention of the run's energies (described in the report's
    /// `convention`).
    pub convention: String,
    /// What the run processes one at a time: `token` (language models) or `sample`
    /// (classifiers); every per-token field is per this unit.
    pub unit: String,
    /// Tokens, or samples for classifiers.
    pub tokens: usize,
    /// The run's own input, when it sets one in place of the scenario's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    pub totals: Totals,
    pub energy_by_kind: BTreeMap<String, f64>,
    pub energy_by_action: BTreeMap<String, f64>,
    pub memory_by_level: BTreeMap<String, f64>,
    pub memory_by_class: BTreeMap<String, f64>,
    pub memory_range: MemoryRangeReport,
    pub layers: Vec<LayerReport>,
    pub firing_rates: Vec<FiringRate>,
    pub mean_firing_rate: Option<f64>,
    pub metrics: Metrics,
    pub accuracy: Option<Accuracy>,
    pub fidelity: Option<Fidelity>,
    /// Energy per token (or sample) divided by the baseline run's, when the scenario names one.
    pub energy_ratio_to_baseline: Option<f64>,
    pub unpriced: Vec<Unpriced>,
    /// The run under the report's `view` convention, beside the full accounting above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub under_convention: Option<ConventionView>,
}

/// What a run's energy is counted per: an image for classifiers, else a token.
pub fn per_unit(accuracy: Option<&Accuracy>) -> &'static str {
    match accuracy {
        Some(a) if a.task == "classification" => "image",
        _ => "token",
    }
}

pub fn metrics(ledger: &Ledger, tokens: usize) -> Metrics {
    let t = ledger.totals();
    let act_out = t.op_total(Op::ActOut);
    let sparsity = if act_out == 0 {
        0.0
    } else {
        1.0 - t.op_total(Op::ActNonzero) as f64 / act_out as f64
    };
    let m = Metrics {
        Effective_MACs: t.op_total(Op::EffectiveMac),
        Effective_ACs: t.op_total(Op::EffectiveAc),
        Dense: t.op_total(Op::DenseSynop),
        MembraneUpdates: t.op_total(Op::MembraneChange),
        ActivationSparsity: sparsity,
        per_unit: BTreeMap::new(),
        ActivationSparsityByLayer: ledger
            .layers()
            .filter_map(|(name, c)| {
                let out = c.op_total(Op::ActOut);
                (out > 0).then(|| {
                    (
                        name.to_string(),
                        1.0 - c.op_total(Op::ActNonzero) as f64 / out as f64,
                    )
                })
            })
            .collect(),
        NeuronOperations: None,
        ParameterCount: None,
        Footprint: None,
        ConnectionSparsity: None,
        ConnectionSparsity_neurobench: None,
    };
    let n = tokens.max(1) as f64;
    let per_unit = [
        ("Effective_MACs", m.Effective_MACs),
        ("Effective_ACs", m.Effective_ACs),
        ("Dense", m.Dense),
        ("MembraneUpdates", m.MembraneUpdates),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v as f64 / n))
    .collect();
    Metrics { per_unit, ..m }
}

pub fn run_report(out: &RunOutput, hw: &Hardware) -> RunReport {
    let priced: PricedLedger = price(&out.ledger, &hw.model);
    let t = out.ledger.totals();
    let memory_pj: f64 = priced
        .by_kind
        .iter()
        .filter(|(k, _)| k == "memory")
        .map(|(_, v)| *v)
        .sum();
    let totals = Totals {
        mac: t.op_total(Op::Mac),
        ac: t.op_total(Op::Ac),
        mul: t.op_total(Op::Mul),
        add: t.op_total(Op::Add),
        lmul: t.op_total(Op::Lmul),
        synops: t.op_total(Op::Synop),
        spikes: t.op_total(Op::Spike),
        neuron_updates: t.op_total(Op::NeuronUpdate),
        energy_pj: priced.energy_pj,
        energy_pj_min: priced.energy_pj_min,
        energy_pj_max: priced.energy_pj_max,
        energy_pj_per_token: priced.energy_pj / out.tokens.max(1) as f64,
        compute_pj: compute_energy(priced.by_kind.iter().map(|(k, v)| (k.as_str(), *v))),
        memory_pj,
        unpriced_actions: priced.unpriced.iter().filter(|u| !u.excluded).count(),
    };
    let layers = out
        .ledger
        .layers()
        .zip(&priced.layers)
        .map(|((name, c), p)| LayerReport {
            name: name.to_string(),
            mac: c.op_total(Op::Mac),
            ac: c.op_total(Op::Ac),
            synops: c.op_total(Op::Synop),
            spikes: c.op_total(Op::Spike),
            energy_pj: p.energy_pj,
            counts: c.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            weight_chain: p.weight_chain.clone(),
            mappings: p.mappings.clone(),
        })
        .collect();
    let rates: Vec<FiringRate> = firing_rates(out)
        .into_iter()
        .map(|(layer, rate)| FiringRate { layer, rate })
        .collect();
    let mean_rate =
        (!rates.is_empty()).then(|| rates.iter().map(|r| r.rate).sum::<f64>() / rates.len() as f64);
    RunReport {
        label: out.label.clone(),
        model: out.model.clone(),
        variant: out.variant.clone(),
        arithmetic: out.arithmetic.clone(),
        hardware: hw.model.name.clone(),
        convention: crate::convention::Convention::Full.name().into(),
        unit: match per_unit(out.accuracy.as_ref()) {
            "image" => "sample".into(),
            u => u.into(),
        },
        tokens: out.tokens,
        input: None,
        totals,
        energy_by_kind: priced.by_kind.iter().cloned().collect(),
        energy_by_action: priced.by_action.iter().cloned().collect(),
        memory_by_level: priced.memory_by_level.iter().cloned().collect(),
        memory_by_class: priced.memory_by_class.iter().cloned().collect(),
        memory_range: {
            let r = &priced.memory_range;
            let n = out.tokens.max(1) as f64;
            MemoryRangeReport {
                model: MEMORY_MODEL.into(),
                lower_pj: r.lower_pj,
                mapped_pj: r.mapped_pj,
                upper_pj: r.upper_pj,
                lower_pj_per_token: r.lower_pj / n,
                mapped_pj_per_token: r.mapped_pj / n,
                upper_pj_per_token: r.upper_pj / n,
                by_class: r
                    .by_class
                    .iter()
                    .map(|(c, l, m, u)| (c.clone(), [*l, *m, *u]))
                    .collect(),
                traced_weight_bytes: r.traced_weight_bytes,
                weight_bytes: r.weight_bytes,
            }
        },
        layers,
        firing_rates: rates,
        mean_firing_rate: mean_rate,
        metrics: {
            let mut m = metrics(&out.ledger, out.tokens);
            if let Some(s) = &out.static_metrics {
                m.ParameterCount = Some(s.ParameterCount);
                m.Footprint = Some(s.Footprint);
                m.ConnectionSparsity = Some(s.ConnectionSparsity);
                m.ConnectionSparsity_neurobench = Some(s.ConnectionSparsity_neurobench);
                m.NeuronOperations = neuron_operations(&out.ledger, &s.neuron_op_cost);
                if let Some(n) = &m.NeuronOperations {
                    let per = out.tokens.max(1) as f64;
                    m.per_unit.insert(
                        "NeuronOperations.effective".into(),
                        n.effective as f64 / per,
                    );
                    m.per_unit
                        .insert("NeuronOperations.dense".into(), n.dense as f64 / per);
                }
            }
            m
        },
        accuracy: out.accuracy.clone(),
        fidelity: out.fidelity.clone(),
        energy_ratio_to_baseline: None,
        unpriced: priced.unpriced,
        under_convention: None,
    }
}

/// Each run's energy over its baseline's: the run's own `baseline` when it names one, else the
/// scenario's (`baselines[i]` belongs to `runs[i]`).
fn with_baseline(mut runs: Vec<RunReport>, baselines: &[Option<&str>]) -> Vec<RunReport> {
    let energy_of = |label: &str, runs: &[RunReport]| {
        runs.iter()
            .find(|r| r.label == label)
            .map(|r| r.totals.energy_pj_per_token)
            .filter(|e| *e > 0.0)
    };
    let bases: Vec<Option<f64>> = baselines
        .iter()
        .map(|b| b.and_then(|b| energy_of(b, &runs)))
        .collect();
    for (r, base) in runs.iter_mut().zip(bases) {
        r.energy_ratio_to_baseline = base.map(|b| r.totals.energy_pj_per_token / b);
    }
    runs
}

fn describe_input(input: &crate::scenario::Input, seed: u64) -> String {
    match input {
        crate::scenario::Input::Synthetic => format!("synthetic tokens (seed {seed})"),
        crate::scenario::Input::Text(p) => format!("text {p}"),
        crate::scenario::Input::Digits(p) => format!("digits {p}"),
        crate::scenario::Input::Tensors(t) => crate::input::tensors::describe(t),
        crate::scenario::Input::SeededImage { size } => {
            format!("seeded {size}x{size} images (seed {seed})")
        }
    }
}

/// The report of a scenario's runs priced with `hw`, beside its reference predictors' scores.
pub fn build(
    sc: &LoadedScenario,
    hw: &Hardware,
    outputs: &[RunOutput],
    references: Vec<ReferenceOutput>,
) -> Report {
    let seed = sc.scenario.seed;
    let mut input = describe_input(&sc.scenario.input, seed);
    if sc.scenario.batch > 1 {
        input += &crate::input::describe_batch(sc.scenario.batch);
    }
    let mut runs: Vec<RunReport> = outputs.iter().map(|o| run_report(o, hw)).collect();
    for (r, spec) in runs.iter_mut().zip(&sc.scenario.runs) {
        r.input = spec.input.as_ref().map(|i| describe_input(i, seed));
    }
    let group_of: Vec<Option<String>> = (0..outputs.len())
        .map(|i| sc.scenario.runs.get(i).and_then(|r| r.group.clone()))
        .collect();
    let groups = group_summaries(&runs, &group_of);
    let group_differences = group_differences(&groups, &runs, &references);
    Report {
        references,
        groups,
        group_differences,
        schema_version: SCHEMA_VERSION,
        picojoule_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: ScenarioInfo {
            name: sc.scenario.name.clone(),
            path: sc.path.display().to_string(),
            sha256: sc.sha256.clone(),
            seed: sc.scenario.seed,
            input,
        },
        hardware: HardwareInfo {
            name: hw.model.name.clone(),
            origin: hw.origin.clone(),
            sha256: hw.sha256.clone(),
            description: hw.model.description.clone(),
        },
        convention: ConventionInfo::full(),
        compute: COMPUTE_DEFINITION.into(),
        view: None,
        runs: with_baseline(
            runs,
            &(0..outputs.len())
                .map(|i| {
                    sc.scenario
                        .runs
                        .get(i)
                        .and_then(|r| r.baseline.as_deref())
                        .or(sc.scenario.baseline.as_deref())
                })
                .collect::<Vec<_>>(),
        ),
    }
}
