//! Evaluation of a run's outputs: next-token and class accuracy, fidelity to an exact fp32
//! shadow run. Evaluation only: none of this is the model's work, so nothing here is counted.

use serde::Serialize;

/// Prediction quality measured on the run's own input: next-token prediction for language
/// models, class prediction for classifiers.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
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

/// Natural-log probabilities of logits.
pub fn log_softmax(l: &[f32]) -> Vec<f64> {
    let max = l.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let lse = l.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    l.iter().map(|&v| v as f64 - lse).collect()
}

/// Index of the largest value (the first on ties).
pub fn argmax(l: &[f32]) -> usize {
    l.iter()
        .enumerate()
        .fold(0, |best, (i, &v)| if v > l[best] { i } else { best })
}

/// Accumulates next-token (or class) predictions from logits.
#[derive(Default)]
pub struct AccuracyMeter {
    bits: f64,
    correct: usize,
    n: usize,
}

impl AccuracyMeter {
    pub fn observe(&mut self, logits: &[f32], target: usize) {
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
        let log_p = logits[target] as f64 - max - sum.ln();
        self.bits += -log_p / std::f64::consts::LN_2;
        self.correct += (argmax(logits) == target) as usize;
        self.n += 1;
    }

    /// Next-token accuracy with bits per token.
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

    /// Classification accuracy with its 95% Wilson interval.
    pub fn finish_classification(&self) -> Accuracy {
        Accuracy {
            task: "classification".into(),
            top1: self.correct as f64 / self.n.max(1) as f64,
            bits_per_token: None,
            top1_ci95: Some(wilson95(self.correct, self.n)),
            predictions: self.n,
        }
    }

    pub fn predictions(&self) -> usize {
        self.n
    }
}

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

    #[test]
    fn a_certain_right_prediction_costs_no_bits() {
        let mut m = AccuracyMeter::default();
        m.observe(&[0.0, 100.0], 1);
        let a = m.finish();
        assert_eq!(a.top1, 1.0);
        assert!(a.bits_per_token.unwrap() < 1e-9);
    }

    #[test]
    fn identical_outputs_have_full_fidelity() {
        let mut f = FidelityMeter::default();
        f.observe(&[1.0, 2.0, 0.5], &[1.0, 2.0, 0.5]);
        let r = f.finish();
        assert_eq!(r.top1_agreement, 1.0);
        assert!(r.mean_kl_bits.abs() < 1e-12);
    }
}
