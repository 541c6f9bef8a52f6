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

use super::{Accuracy, Fidelity, RunOutput};

/// Version of the file's layout; a reader refuses any other.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    schema_version: u32,
    picojoule_version: String,
    scenario: SavedScenario,
    runs: Vec<SavedRun>,
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

/// The text of `ledger.json` for the runs of a scenario.
pub fn to_json(sc: &LoadedScenario, outputs: &[RunOutput]) -> String {
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
    };
    serde_json::to_string_pretty(&file).expect("ledgers serialise") + "\n"
}

/// The scenario and runs of a `ledger.json` (`text` read from `path`).
pub fn from_json(path: &Path, text: &str) -> Result<(LoadedScenario, Vec<RunOutput>)> {
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
        })
        .collect();
    Ok((sc, runs))
}
