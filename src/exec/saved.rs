//! `ledger.json`: a scenario's runs as `run --out` saved them (ledgers, arithmetic, accuracy,
//! fidelity, the scenario itself), so that `price` gives the report `run` would give on another
//! cost model without re-running. The writer and the reader live here; the file carries a
//! schema version, and every field round-trips.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::models::sequential::StaticMetrics;
use crate::scenario::{LoadedScenario, Scenario};

use super::{Accuracy, Fidelity, ReferenceOutput, RunOutput};

/// Version of the file's layout; a reader refuses any other.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    schema_version: u32,
    picojoule_version: String,
    scenario: SavedScenario,
    runs: Vec<SavedRun>,
    /// The reference predictors' scores (absent in files of scenarios without references).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    references: Vec<ReferenceOutput>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedScenario {
    path: String,
    sha256: String,
    scenario: Scenario,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedRun {
    label: String,
    model: String,
    variant: String,
    arithmetic: String,
    tokens: usize,
    accuracy: Option<Accuracy>,
    fidelity: Option<Fidelity>,
    lif_layers: Vec<String>,
    static_metrics: Option<StaticMetrics>,
    ledger: Ledger,
}

/// The text of `ledger.json` for the runs of a scenario and its reference predictors' scores.
pub fn to_json(
    sc: &LoadedScenario,
    outputs: &[RunOutput],
    references: &[ReferenceOutput],
) -> String {
    let file = LedgerFile {
        schema_version: SCHEMA_VERSION,
        picojoule_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: SavedScenario {
            path: sc.path.display().to_string(),
            sha256: sc.sha256.clone(),
            scenario: sc.scenario.clone(),
        },
        runs: outputs
            .iter()
            .map(|o| SavedRun {
                label: o.label.clone(),
                model: o.model.clone(),
                variant: o.variant.clone(),
                arithmetic: o.arithmetic.clone(),
                tokens: o.tokens,
                accuracy: o.accuracy.clone(),
                fidelity: o.fidelity.clone(),
                lif_layers: o.lif_layers.clone(),
                static_metrics: o.static_metrics.clone(),
                ledger: o.ledger.clone(),
            })
            .collect(),
        references: references.to_vec(),
    };
    serde_json::to_string_pretty(&file).expect("ledgers serialise") + "\n"
}

/// What a `ledger.json` holds: the scenario, its runs and its reference predictors' scores.
pub struct Saved {
    pub scenario: LoadedScenario,
    pub runs: Vec<RunOutput>,
    pub references: Vec<ReferenceOutput>,
}

/// The scenario, runs and references of a `ledger.json` (`text` read from `path`).
pub fn from_json(path: &Path, text: &str) -> Result<Saved> {
    let here = path.display();
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Error::input(format!(
            "{here}:{}:{}: not a ledger file: {e}",
            e.line(),
            e.column()
        ))
    })?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == SCHEMA_VERSION as u64 => {}
        Some(v) => {
            return Err(Error::input(format!(
                "{here}: ledger file schema_version {v}; this picojoule reads version {SCHEMA_VERSION}: re-run `picojoule run --out`"
            )));
        }
        None => {
            return Err(Error::input(format!(
                "{here}: not a ledger file of this picojoule (no schema_version; version {SCHEMA_VERSION} expected): re-run `picojoule run --out`"
            )));
        }
    }
    let file: LedgerFile = serde_json::from_str(text).map_err(|e| {
        Error::input(format!(
            "{here}:{}:{}: not a ledger file: {e}",
            e.line(),
            e.column()
        ))
    })?;
    if file.runs.len() != file.scenario.scenario.runs.len() {
        return Err(Error::input(format!(
            "{here}: {} saved runs for a scenario of {} runs",
            file.runs.len(),
            file.scenario.scenario.runs.len()
        )));
    }
    for (i, r) in file.runs.iter().enumerate() {
        check_run(r, i).map_err(|m| Error::input(format!("{here}: {m}")))?;
        if let Some(j) = file.runs[..i].iter().position(|o| o.label == r.label) {
            return Err(Error::input(format!(
                "{here}: runs {} and {} are both labelled `{}`",
                j + 1,
                i + 1,
                r.label
            )));
        }
    }
    for (i, r) in file.references.iter().enumerate() {
        check_accuracy(&r.accuracy).map_err(|m| {
            Error::input(format!("{here}: reference {} (`{}`): {m}", i + 1, r.label))
        })?;
    }
    let sc = LoadedScenario {
        scenario: file.scenario.scenario,
        path: PathBuf::from(file.scenario.path),
        sha256: file.scenario.sha256,
    };
    let runs = file
        .runs
        .into_iter()
        .map(|r| RunOutput {
            label: r.label,
            model: r.model,
            variant: r.variant,
            arithmetic: r.arithmetic,
            tokens: r.tokens,
            ledger: r.ledger,
            accuracy: r.accuracy,
            fidelity: r.fidelity,
            lif_layers: r.lif_layers,
            static_metrics: r.static_metrics,
            steps: Vec::new(),
            warnings: vec![],
        })
        .collect();
    Ok(Saved {
        scenario: sc,
        runs,
        references: file.references,
    })
}

/// The values of one saved run (`i` 0-based) that a report would print wrongly: a token count
/// of 0 or above the scenario limit, counts whose sums overflow, fractions outside 0..1,
/// non-finite measures.
fn check_run(r: &SavedRun, i: usize) -> std::result::Result<(), String> {
    let run = format!("run {} (`{}`)", i + 1, r.label);
    if r.label.trim().is_empty() {
        return Err(format!("run {}: empty label", i + 1));
    }
    if r.tokens == 0 || r.tokens > crate::scenario::MAX_TOKENS {
        return Err(format!(
            "{run}: tokens must be between 1 and {}, found {}",
            crate::scenario::MAX_TOKENS,
            r.tokens
        ));
    }
    // Every total a report prints (per action, per kind, over layers) is a partial sum of all
    // the counts of the run, so a run whose counts sum within u64 cannot overflow anywhere.
    let mut sum: u64 = 0;
    for (layer, counts) in r.ledger.layers() {
        for (key, &n) in counts.iter() {
            sum = sum.checked_add(n).ok_or_else(|| {
                format!(
                    "{run}, layer `{layer}`: count {n} of `{key}` makes the run's counts overflow a 64-bit total"
                )
            })?;
        }
    }
    if let Some(a) = &r.accuracy {
        check_accuracy(a).map_err(|m| format!("{run}: {m}"))?;
    }
    if let Some(f) = &r.fidelity {
        fraction("fidelity top1_agreement", f.top1_agreement).map_err(|m| format!("{run}: {m}"))?;
        if !f.mean_kl_bits.is_finite() {
            return Err(format!(
                "{run}: fidelity mean_kl_bits {} is not finite",
                f.mean_kl_bits
            ));
        }
    }
    Ok(())
}

/// An accuracy a report would print wrongly: fractions outside 0..1, a negative or non-finite
/// bits per token.
fn check_accuracy(a: &Accuracy) -> std::result::Result<(), String> {
    fraction("accuracy top1", a.top1)?;
    if let Some((lo, hi)) = a.top1_ci95 {
        fraction("accuracy top1_ci95", lo)?;
        fraction("accuracy top1_ci95", hi)?;
    }
    if let Some(b) = a.bits_per_token
        && !(b.is_finite() && b >= 0.0)
    {
        return Err(format!("bits_per_token {b} is not a non-negative number"));
    }
    Ok(())
}

fn fraction(what: &str, v: f64) -> std::result::Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{what} {v} is not a fraction 0..1"))
    }
}
