//! Relative error of products and dot products per number format, measured on
//! one shared set of random operand pairs.
//!
//! Operands are drawn as `f32` values, so the `f64` product of two operands is
//! exact and serves as ground truth. Rows:
//! * `fp16`, `bf16`, `fp8-e4m3`, `fp8-e5m2`: both operands and the product are
//!   rounded RNE into the format.
//! * `lmul-k` (k = 2..=8 and 23): operands rounded RNE into `e8mk` (bias 127,
//!   IEEE style), then [`lmul_bits`] with [`LmulPolicy::Ieee`].
//!
//! Dot products of length 64 and 256 use consecutive chunks of the same pairs:
//! the per-row elementwise products, accumulated in `f32`, against the `f64` dot
//! product of the original operands.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::format::FloatFormat;
use super::lmul::{LmulPolicy, lmul_bits};

/// Distribution of the operands.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Magnitude `2^u` with `u` uniform on `[lo_exp, hi_exp)`, random sign.
    LogUniform { lo_exp: f64, hi_exp: f64 },
    /// Uniform on `[lo, hi)`.
    Uniform { lo: f64, hi: f64 },
    /// Normal with the given mean and standard deviation.
    Normal { mean: f64, sd: f64 },
}

impl Default for Distribution {
    /// Log-uniform magnitudes on `[2^-4, 2^4)` with random signs.
    fn default() -> Self {
        Self::LogUniform { lo_exp: -4.0, hi_exp: 4.0 }
    }
}

/// Settings of [`error_table`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorTableConfig {
    /// Number of operand pairs (default 100 000).
    pub samples: usize,
    /// RNG seed (default 0); results are deterministic for a seed.
    pub seed: u64,
    /// Operand distribution.
    pub distribution: Distribution,
}

impl Default for ErrorTableConfig {
    fn default() -> Self {
        Self { samples: 100_000, seed: 0, distribution: Distribution::default() }
    }
}

/// Error statistics of one format. Relative errors are fractions (0.01 = 1 %).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRow {
    /// Row name, e.g. `fp8-e4m3` or `lmul-3`.
    pub name: String,
    /// Operand pairs used (pairs whose exact product is 0 are skipped).
    pub samples: usize,
    /// Mean of |product - exact| / |exact|.
    pub mean_rel_err: f64,
    /// Max of |product - exact| / |exact|.
    pub max_rel_err: f64,
    /// Mean of the signed relative error (product - exact) / |exact|.
    pub mean_bias: f64,
    /// Dot products of length 64 evaluated.
    pub dot64_count: usize,
    /// Mean |dot - exact| / |exact| over length-64 dot products. Large when the
    /// exact sum is near 0 (random signs); see `dot64_norm_*`.
    pub dot64_mean: f64,
    /// Max |dot - exact| / |exact| over length-64 dot products.
    pub dot64_max: f64,
    /// Mean |dot - exact| / Σ|a_i b_i| over length-64 dot products.
    pub dot64_norm_mean: f64,
    /// Max |dot - exact| / Σ|a_i b_i| over length-64 dot products.
    pub dot64_norm_max: f64,
    /// Dot products of length 256 evaluated.
    pub dot256_count: usize,
    /// As `dot64_mean`, length 256.
    pub dot256_mean: f64,
    /// As `dot64_max`, length 256.
    pub dot256_max: f64,
    /// As `dot64_norm_mean`, length 256.
    pub dot256_norm_mean: f64,
    /// As `dot64_norm_max`, length 256.
    pub dot256_norm_max: f64,
}

/// How a row multiplies two `f32` operands.
#[derive(Clone, Copy, Debug)]
enum Multiplier {
    /// Round operands and product RNE into the format.
    Rounded(FloatFormat),
    /// Round operands RNE into the format, then L-Mul (policy ieee).
    Lmul(FloatFormat),
}

impl Multiplier {
    fn mul(self, a: f32, b: f32) -> f64 {
        match self {
            Self::Rounded(f) => {
                // Operands have <= 24 significant bits: the f64 product is exact.
                f.round(f.round(f64::from(a)) * f.round(f64::from(b)))
            }
            Self::Lmul(f) => {
                let r = lmul_bits(f.quantize_f32(a), f.quantize_f32(b), f, LmulPolicy::Ieee);
                f.decode(r)
            }
        }
    }
}

/// The rows in table order.
fn rows() -> Vec<(String, Multiplier)> {
    let mut rows: Vec<(String, Multiplier)> = [
        FloatFormat::FP16,
        FloatFormat::BF16,
        FloatFormat::FP8_E4M3,
        FloatFormat::FP8_E5M2,
    ]
    .into_iter()
    .map(|f| (f.name(), Multiplier::Rounded(f)))
    .collect();
    for k in (2..=8).chain([23]) {
        // e8mk with 2 <= k <= 23 is always a valid format.
        if let Ok(f) = FloatFormat::lmul_operand(k) {
            rows.push((format!("lmul-{k}"), Multiplier::Lmul(f)));
        }
    }
    rows
}

/// Draw `cfg.samples` operand pairs (as `f32`) from the configured distribution.
pub fn operand_pairs(cfg: &ErrorTableConfig) -> Vec<(f32, f32)> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let draw = |rng: &mut Xoshiro256PlusPlus| draw_one(rng, cfg.distribution) as f32;
    (0..cfg.samples).map(|_| (draw(&mut rng), draw(&mut rng))).collect()
}

fn draw_one(rng: &mut Xoshiro256PlusPlus, dist: Distribution) -> f64 {
    match dist {
        Distribution::LogUniform { lo_exp, hi_exp } => {
            let u: f64 = rng.random();
            let mag = (lo_exp + u * (hi_exp - lo_exp)).exp2();
            if rng.random::<bool>() { -mag } else { mag }
        }
        Distribution::Uniform { lo, hi } => lo + rng.random::<f64>() * (hi - lo),
        Distribution::Normal { mean, sd } => {
            // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
            let u1: f64 = rng.random();
            let u2: f64 = rng.random();
            let r = (-2.0 * (1.0 - u1).ln()).sqrt();
            mean + sd * r * (std::f64::consts::TAU * u2).cos()
        }
    }
}

/// Mean and max of the per-element and dot-product relative errors for every
/// row (see the module docs), on the same operands. Deterministic for a seed.
pub fn error_table(cfg: &ErrorTableConfig) -> Vec<ErrorRow> {
    let pairs = operand_pairs(cfg);
    let exact: Vec<f64> = pairs.iter().map(|&(a, b)| f64::from(a) * f64::from(b)).collect();
    rows()
        .into_iter()
        .map(|(name, mul)| {
            let products: Vec<f64> = pairs.iter().map(|&(a, b)| mul.mul(a, b)).collect();
            measure_row(name, &products, &exact)
        })
        .collect()
}

/// Running mean and max.
#[derive(Default)]
struct Stat {
    n: usize,
    sum: f64,
    max: f64,
}

impl Stat {
    fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        // NaN errors (e.g. inf - inf) count as maximal rather than vanish.
        if x.is_nan() || x > self.max {
            self.max = if x.is_nan() { f64::INFINITY } else { x };
        }
    }

    fn mean(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sum / self.n as f64 }
    }
}

fn measure_row(name: String, products: &[f64], exact: &[f64]) -> ErrorRow {
    let (mut abs, mut signed) = (Stat::default(), Stat::default());
    for (&p, &x) in products.iter().zip(exact) {
        if x != 0.0 {
            let rel = (p - x) / x.abs();
            abs.push(rel.abs());
            signed.push(rel);
        }
    }
    let d64 = dot_stats(products, exact, 64);
    let d256 = dot_stats(products, exact, 256);
    ErrorRow {
        name,
        samples: abs.n,
        mean_rel_err: abs.mean(),
        max_rel_err: abs.max,
        mean_bias: signed.mean(),
        dot64_count: d64.0.n,
        dot64_mean: d64.0.mean(),
        dot64_max: d64.0.max,
        dot64_norm_mean: d64.1.mean(),
        dot64_norm_max: d64.1.max,
        dot256_count: d256.0.n,
        dot256_mean: d256.0.mean(),
        dot256_max: d256.0.max,
        dot256_norm_mean: d256.1.mean(),
        dot256_norm_max: d256.1.max,
    }
}

/// (relative error, error normalised by Σ|a_i b_i|) over dot products of `len`.
fn dot_stats(products: &[f64], exact: &[f64], len: usize) -> (Stat, Stat) {
    let (mut rel, mut norm) = (Stat::default(), Stat::default());
    for (p, x) in products.chunks_exact(len).zip(exact.chunks_exact(len)) {
        // Accumulate in f32 as the hardware would; the products are already
        // representable in f32 except fp32-overflowing ones (none for sane ranges).
        let approx = p.iter().fold(0.0f32, |acc, &v| acc + v as f32);
        let truth: f64 = x.iter().sum();
        let scale: f64 = x.iter().map(|v| v.abs()).sum();
        let err = (f64::from(approx) - truth).abs();
        if truth != 0.0 {
            rel.push(err / truth.abs());
        }
        if scale != 0.0 {
            norm.push(err / scale);
        }
    }
    (rel, norm)
}
