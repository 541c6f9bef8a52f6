//! `ledger.json`: the ledgers of a scenario's runs, written by `run --out` and read by `price`
//! to re-price them under another cost model without re-running. Writer and reader live here.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ledger::{Ledger, Op};

use super::RunOutput;

#[derive(Serialize, Deserialize)]
struct LedgerFile {
    runs: Vec<SavedRun>,
}

#[derive(Serialize, Deserialize)]
struct SavedRun {
    label: String,
    model: String,
    variant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arithmetic: Option<String>,
    tokens: usize,
    ledger: Ledger,
}

/// The text of `ledger.json` for these runs.
pub fn to_json(outputs: &[RunOutput]) -> String {
    let file = LedgerFile {
        runs: outputs
            .iter()
            .map(|o| SavedRun {
                label: o.label.clone(),
                model: o.model.clone(),
                variant: o.variant.clone(),
                arithmetic: None,
                tokens: o.tokens,
                ledger: o.ledger.clone(),
            })
            .collect(),
    };
    // Through a JSON value: keys in sorted order, as the file has always been written.
    let value = serde_json::to_value(&file).expect("ledgers serialise");
    serde_json::to_string_pretty(&value).expect("ledgers serialise") + "\n"
}

/// The runs of a `ledger.json` (`text` read from `path`).
pub fn from_json(path: &Path, text: &str) -> Result<Vec<RunOutput>> {
    let file: LedgerFile = serde_json::from_str(text).map_err(|e| {
        Error::input(format!(
            "{}:{}:{}: not a ledger file: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    Ok(file
        .runs
        .into_iter()
        .map(|r| {
            // LIF layers are the layers that count neuron updates.
            let lif_layers = r
                .ledger
                .layers()
                .filter(|(_, c)| c.op_total(Op::NeuronUpdate) > 0)
                .map(|(n, _)| n.to_string())
                .collect();
            RunOutput {
                label: r.label,
                model: r.model,
                variant: r.variant,
                arithmetic: r.arithmetic.unwrap_or_else(|| "fp32".into()),
                tokens: r.tokens,
                ledger: r.ledger,
                accuracy: None,
                fidelity: None,
                lif_layers,
                static_metrics: None,
            }
        })
        .collect())
}
