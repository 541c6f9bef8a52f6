//! The scenario's reference predictors (n-gram, k-NN), scored on the inputs the runs read.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Accuracy, Limits, wilson95};
use crate::error::Result;
use crate::scenario::{Input, LoadedScenario, ReferenceSpec};

/// What one reference predictor scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceOutput {
    pub label: String,
    /// The predictor and its settings.
    pub description: String,
    /// The training split it was fitted on, as the scenario names it.
    pub train: String,
    /// The predictions scored (characters or images).
    pub tokens: usize,
    pub accuracy: Accuracy,
}

/// Score every reference of a scenario, in the scenario's order.
pub fn score_references(sc: &LoadedScenario, limits: &Limits) -> Result<Vec<ReferenceOutput>> {
    sc.scenario
        .references
        .par_iter()
        .map(|r| score_one(sc, r, limits))
        .collect()
}

fn score_one(sc: &LoadedScenario, r: &ReferenceSpec, limits: &Limits) -> Result<ReferenceOutput> {
    let n = r.tokens.unwrap_or(sc.scenario.tokens);
    let test = match r.input.as_ref().unwrap_or(&sc.scenario.input) {
        Input::Text(p) | Input::Digits(p) => sc.resolve(p),
        other => {
            return Err(crate::error::Error::input(format!(
                "reference `{}` cannot read input {other:?}",
                r.kind.describe()
            )));
        }
    };
    let s = crate::baselines::score(&r.kind, &sc.resolve(&r.train), &test, n, |what, bytes| {
        crate::resources::check(what, bytes, limits.max_memory)
    })?;
    let top1 = s.correct as f64 / s.predictions.max(1) as f64;
    let accuracy = match s.bits {
        Some(bits) => Accuracy {
            task: "next-token".into(),
            top1,
            bits_per_token: Some(bits / s.predictions.max(1) as f64),
            top1_ci95: None,
            predictions: s.predictions,
        },
        None => Accuracy {
            task: "classification".into(),
            top1,
            bits_per_token: None,
            top1_ci95: Some(wilson95(s.correct, s.predictions)),
            predictions: s.predictions,
        },
    };
    Ok(ReferenceOutput {
        label: r.label.clone().unwrap_or_else(|| r.kind.describe()),
        description: r.kind.describe(),
        train: r.train.clone(),
        tokens: n,
        accuracy,
    })
}
