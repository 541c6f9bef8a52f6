//! Uncertain energies: a cost-model entry may be a range or a distribution. `nominal` is the
//! mean of the distribution, `min`/`max` its 2.5% and 97.5% quantiles (a range's ends), and
//! `sample` draws from it by inverse transform of one uniform number, so a seeded Monte Carlo
//! run is reproducible whatever the statistics library does internally.

use statrs::distribution::{ContinuousCDF, LogNormal, Normal};

use super::Energy;

const Z975: f64 = 1.959963984540054;

fn normal(mean: f64, sd: f64) -> Option<Normal> {
    Normal::new(mean, sd).ok()
}

pub fn nominal(e: Energy) -> f64 {
    match e {
        Energy::Pj(v) => v,
        Energy::Range(lo, hi) | Energy::Uniform(lo, hi) => 0.5 * (lo + hi),
        Energy::Normal(mean, _) => mean,
        Energy::LogNormal(mu, sigma) => (mu + 0.5 * sigma * sigma).exp(),
        // A per-size memory energy is evaluated at a size before use; unevaluated, its intercept.
        Energy::PerSize(_, b) => b,
    }
}

pub fn min(e: Energy) -> f64 {
    match e {
        Energy::Pj(v) => v,
        Energy::Range(lo, _) | Energy::Uniform(lo, _) => lo,
        Energy::Normal(mean, sd) => (mean - Z975 * sd).max(0.0),
        Energy::LogNormal(mu, sigma) => (mu - Z975 * sigma).exp(),
        Energy::PerSize(_, b) => b,
    }
}

pub fn max(e: Energy) -> f64 {
    match e {
        Energy::Pj(v) => v,
        Energy::Range(_, hi) | Energy::Uniform(_, hi) => hi,
        Energy::Normal(mean, sd) => mean + Z975 * sd,
        Energy::LogNormal(mu, sigma) => (mu + Z975 * sigma).exp(),
        Energy::PerSize(_, b) => b,
    }
}

pub fn validate(e: Energy) -> Result<(), String> {
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    match e {
        Energy::Pj(v) if ok(v) => Ok(()),
        Energy::Range(lo, hi) | Energy::Uniform(lo, hi) if ok(lo) && ok(hi) && lo <= hi => Ok(()),
        Energy::Normal(mean, sd) if ok(mean) && ok(sd) => Ok(()),
        Energy::LogNormal(mu, sigma) if mu.is_finite() && ok(sigma) && mu < 700.0 => Ok(()),
        Energy::PerSize(a, b) if ok(a) && ok(b) => Ok(()),
        e => Err(format!(
            "energy {e:?} must be finite and non-negative (Range/Uniform: lo <= hi; Normal: mean, sd >= 0; LogNormal: mu finite, sigma >= 0)"
        )),
    }
}

/// The largest value `sample` can draw (its uniform number is kept within 1e-12 of 1, about
/// 7.03 standard deviations above the mean).
pub fn largest_draw(e: Energy) -> f64 {
    const Z_TOP: f64 = 7.04;
    match e {
        Energy::Normal(mean, sd) => mean + Z_TOP * sd,
        Energy::LogNormal(mu, sigma) => (mu + Z_TOP * sigma).exp(),
        e => max(e),
    }
}

/// How `hardware show` prints it.
pub fn show(e: Energy) -> String {
    match e {
        Energy::Pj(v) => format!("{v}"),
        Energy::Range(lo, hi) => format!("{lo}..{hi}"),
        Energy::Uniform(lo, hi) => format!("uniform {lo}..{hi}"),
        Energy::Normal(m, s) => format!("normal {m} sd {s}"),
        Energy::LogNormal(mu, s) => format!("lognormal mu {mu} sigma {s} (mean {:.4})", nominal(e)),
        Energy::PerSize(a, b) => format!("{a} x size_bits + {b}"),
    }
}

/// True when the energy is not one fixed number.
pub fn is_uncertain(e: Energy) -> bool {
    !matches!(e, Energy::Pj(_) | Energy::PerSize(..))
}

/// Draw one value, given a uniform number `u` in [0, 1). A range is drawn uniformly; a normal is
/// cut at 0 (energies are never negative).
pub fn sample(e: Energy, u: f64) -> f64 {
    let u = u.clamp(1e-12, 1.0 - 1e-12);
    match e {
        Energy::Pj(v) => v,
        Energy::Range(lo, hi) | Energy::Uniform(lo, hi) => lo + u * (hi - lo),
        Energy::Normal(mean, sd) => {
            if sd == 0.0 {
                return mean;
            }
            normal(mean, sd)
                .map(|n| n.inverse_cdf(u))
                .unwrap_or(mean)
                .max(0.0)
        }
        Energy::LogNormal(mu, sigma) => {
            if sigma == 0.0 {
                return mu.exp();
            }
            LogNormal::new(mu, sigma)
                .map(|d| d.inverse_cdf(u))
                .unwrap_or(mu.exp())
        }
        Energy::PerSize(_, b) => b,
    }
}

/// The q-quantile (0..1) of sorted values, by linear interpolation between order statistics.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    let f = pos - i as f64;
    sorted[i] + f * (sorted[j] - sorted[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_min_max_are_mean_and_central_95_percent() {
        let n = Energy::Normal(10.0, 1.0);
        assert_eq!(n.nominal(), 10.0);
        assert!((n.min() - 8.04).abs() < 0.01 && (n.max() - 11.96).abs() < 0.01);
        let u = Energy::Uniform(1.0, 3.0);
        assert_eq!((u.nominal(), u.min(), u.max()), (2.0, 1.0, 3.0));
        let l = Energy::LogNormal(0.0, 0.5);
        assert!((l.nominal() - (0.125f64).exp()).abs() < 1e-12);
        assert!(l.min() < 1.0 && l.max() > 1.0);
    }

    #[test]
    fn samples_follow_the_distribution() {
        let n = 20000;
        let e = Energy::Normal(5.0, 0.5);
        let mut v: Vec<f64> = (0..n)
            .map(|i| sample(e, (i as f64 + 0.5) / n as f64))
            .collect();
        v.sort_by(f64::total_cmp);
        assert!((quantile(&v, 0.5) - 5.0).abs() < 1e-3);
        assert!((quantile(&v, 0.975) - e.max()).abs() < 1e-2);
        assert_eq!(sample(Energy::Range(1.0, 2.0), 0.25), 1.25);
    }

    #[test]
    fn bad_distributions_are_refused() {
        assert!(validate(Energy::Normal(1.0, -1.0)).is_err());
        assert!(validate(Energy::Uniform(2.0, 1.0)).is_err());
        assert!(validate(Energy::LogNormal(f64::NAN, 1.0)).is_err());
    }
}
