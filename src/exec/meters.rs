//! Running a `Sequential` model over a scenario's samples: digit images (repeated over the
//! model's time steps, or rate-coded) or seeded synthetic vectors; class scores -> accuracy with
//! a 95% Wilson interval.

use std::path::Path;

use rand::{RngExt, SeedableRng};

use crate::error::{Error, Result};
use crate::models::sequential::{Config, Encoding, Sequential};
use crate::run::{Accuracy, RunOutput};
use crate::scenario::{Input, LoadedScenario, RunSpec};

/// Wilson score interval of a proportion `k / n` at 95% (normal quantile from statrs).
pub fn wilson95(k: usize, n: usize) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, Normal};
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = Normal::new(0.0, 1.0)
        .expect("standard normal")
        .inverse_cdf(0.975);
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Digit images of a CSV (64 pixels 0..16 then the label): pixels scaled to [0, 1].
pub fn read_digits(path: &Path, n: usize) -> Result<Vec<(Vec<f32>, usize)>> {
    let text = crate::error::read_text(path)?;
    let mut out = Vec::with_capacity(n);
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(n)
    {
        let vals: Vec<&str> = line.split(',').collect();
        let bad = |m: &str| Error::input(format!("{}:{}: {m}", path.display(), line_no + 1));
        if vals.len() != 65 {
            return Err(bad(&format!(
                "expected 64 pixels and a label, found {} fields",
                vals.len()
            )));
        }
        let mut px = Vec::with_capacity(64);
        for v in &vals[..64] {
            let p: f32 = v
                .trim()
                .parse()
                .map_err(|_| bad(&format!("pixel `{v}` is not a number")))?;
            if !(0.0..=16.0).contains(&p) {
                return Err(bad(&format!("pixel {p} outside 0..16")));
            }
            px.push(p / 16.0);
        }
        let label: usize = vals[64]
            .trim()
            .parse()
            .map_err(|_| bad(&format!("label `{}` is not a class index", vals[64])))?;
        out.push((px, label));
    }
    if out.len() < n {
        return Err(Error::input(format!(
            "{}: has {} images, the scenario asks for {n} samples",
            path.display(),
            out.len()
        )));
    }
    Ok(out)
}

/// The per-step inputs of one sample under the model's encoding.
fn encode(cfg: &Config, values: &[f32], seed: u64, sample: usize) -> Vec<Vec<f32>> {
    match cfg.encoding {
        Encoding::Direct => vec![values.to_vec(); cfg.timesteps],
        Encoding::Rate => {
            let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(
                seed ^ (sample as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            (0..cfg.timesteps)
                .map(|_| {
                    values
                        .iter()
                        .map(|&p| {
                            if rng.random::<f32>() < p.clamp(0.0, 1.0) {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .collect()
                })
                .collect()
        }
    }
}

pub fn execute(sc: &LoadedScenario, spec: &RunSpec, cfg: Config, base: &Path) -> Result<RunOutput> {
    let name = cfg.name.clone();
    let n = sc.scenario.tokens;
    let model = Sequential::from_config(cfg, base)?;
    let n_in = model.n_inputs();
    let seed = sc.scenario.seed;
    // Digit images are read up front (bounded by the file); synthetic samples are drawn one at a
    // time from one seeded stream, so nothing scales with `tokens` but the work.
    let digits: Option<Vec<(Vec<f32>, usize)>> = match &sc.scenario.input {
        Input::Digits(rel) => {
            if n_in != 64 {
                return Err(Error::input(format!(
                    "model `{name}` takes {n_in} inputs per step; digit images have 64 pixels"
                )));
            }
            if model.n_classes() < 10 {
                return Err(Error::input(format!(
                    "model `{name}` has {} outputs; digits need 10 classes",
                    model.n_classes()
                )));
            }
            Some(read_digits(&sc.resolve(rel), n)?)
        }
        Input::Synthetic => None,
        other => {
            return Err(Error::input(format!(
                "model `{name}` is a classifier and cannot read input {other:?}"
            )));
        }
    };
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut synthetic = vec![0.0f32; n_in];
    let arith = crate::run::run_arith(spec)?;
    let mut ledger = model.new_ledger(&arith);
    let mut state = model.new_state();
    let mut correct = 0usize;
    let mut labelled = 0usize;
    // A narrow arithmetic is compared with an exact shadow run of the same model (not counted).
    let mut shadow = (!arith.is_exact()).then(|| {
        (
            model.new_state(),
            model.new_ledger(&crate::engine::Arith::Exact),
            crate::run::FidelityMeter::default(),
        )
    });
    for s in 0..n {
        let (x, label): (&[f32], Option<usize>) = match &digits {
            Some(d) => (&d[s].0, Some(d[s].1)),
            None => {
                synthetic.iter_mut().for_each(|v| *v = rng.random::<f32>());
                (&synthetic, None)
            }
        };
        let steps = encode(&model.cfg, x, seed, s);
        model.run_sample(&steps, &mut state, &arith, &mut ledger);
        if let Some((st, l, meter)) = shadow.as_mut() {
            model.run_sample(&steps, st, &crate::engine::Arith::Exact, l);
            meter.observe(&st.scores, &state.scores);
        }
        if let Some(bad) = state.scores.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(format!(
                "model `{name}`: output {bad} became {} at sample {s}",
                state.scores[bad]
            )));
        }
        if let Some(y) = label {
            let argmax = state
                .scores
                .iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > state.scores[b] { i } else { b });
            correct += (argmax == y) as usize;
            labelled += 1;
        }
    }
    let accuracy = (labelled > 0).then(|| Accuracy {
        task: "classification".into(),
        top1: correct as f64 / labelled as f64,
        bits_per_token: None,
        top1_ci95: Some(wilson95(correct, labelled)),
        predictions: labelled,
    });
    Ok(RunOutput {
        label: spec.label.clone().unwrap_or_else(|| name.clone()),
        model: name,
        variant: "sequential".into(),
        arithmetic: arith.label(),
        tokens: n,
        ledger,
        accuracy,
        fidelity: shadow.map(|(_, _, m)| m.finish()),
        lif_layers: model.lif_layers(),
        static_metrics: Some(model.statics.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_closed_form() {
        // 8 of 10: Wilson 95% = (0.4902, 0.9433).
        let (lo, hi) = wilson95(8, 10);
        assert!(
            (lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson95(0, 5);
        assert!(lo.abs() < 1e-12);
        assert!(hi > 0.4 && hi < 0.5);
    }
}
