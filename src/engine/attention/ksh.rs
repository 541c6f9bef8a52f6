//! Learning the kernel hash: KSH (Kernel-based Supervised Hashing, Liu et al. CVPR 2012) in the
//! greedy bit-by-bit form without eigen initialisation that EcoFormer uses
//! (`train_hashing_weight_woeig`), on calibration tokens, self-supervised by the model's own
//! attention ranking. This is training, done once at load time; it is not in the ledger.
//!
//! Per head, from the calibration tokens x_1..x_N (the shared Q/K projection):
//! 1. x <- x / ||x||_2; m anchors are m distinct calibration tokens drawn with the seed;
//!    sigma = mean of ||x_i - a_j||^2; K_ij = exp(-d_ij / (2 sigma)) - mu_j with mu_j the mean
//!    kernel value of anchor j over the calibration tokens (stored as `mvec`).
//! 2. Targets S0 (N x N): +1 for the `topk` largest entries of each row of the cosine similarity
//!    map x_i . x_j (the diagonal included), -1 for the `topk` smallest, 0 elsewhere.
//! 3. Residual R = b S0. For each bit r: start from a ~ N(0, 1) (the random A row); minimise the
//!    relaxed loss L(a) = -y^T R y / (N b) with y = 2 / (1 + e^{-K a}) - 1 = tanh(K a / 2) by SGD
//!    with Nesterov momentum (fixed iterations); keep the result only if the discrete loss with
//!    y = sign(K a) is lower than with the starting a; then R <- R - y y^T with the kept bit's
//!    discrete code (KSH's residual update). R is kept implicit (b S0 sparse minus the kept codes),
//!    so a step costs O(N (m + topk + r)), not O(N^2).
//!
//! Deterministic: same tokens, same seed, same hash (no threads, fixed iteration order).

use rand::SeedableRng;

use super::hashed::KernelHash;
use super::normal;

/// Optimiser settings; the defaults are EcoFormer's (top-k 10, 100 iterations, lr 5e-4,
/// Nesterov momentum 0.9).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KshConfig {
    pub topk: usize,
    pub iterations: usize,
    pub lr: f64,
    pub momentum: f64,
}

impl Default for KshConfig {
    fn default() -> Self {
        KshConfig {
            topk: 10,
            iterations: 100,
            lr: 5e-4,
            momentum: 0.9,
        }
    }
}

/// A learned hash with the KSH objective ||H H^T - b S0||_F^2 / N^2 on the calibration tokens,
/// per head, for the random starting A and for the learned A.
#[derive(Clone, Debug)]
pub struct KshOutcome {
    pub hash: KernelHash,
    pub loss_random: Vec<f64>,
    pub loss_learned: Vec<f64>,
}

/// One head's calibration problem.
struct Problem {
    n: usize,
    m: usize,
    /// Centred kernel matrix, N x m.
    k: Vec<f64>,
    /// Sparse targets per row: (column, +1 or -1).
    s0: Vec<Vec<(usize, f64)>>,
}

impl Problem {
    /// z = K a
    fn project(&self, a: &[f64], z: &mut [f64]) {
        for (i, zi) in z.iter_mut().enumerate() {
            *zi = self.k[i * self.m..(i + 1) * self.m]
                .iter()
                .zip(a)
                .map(|(x, y)| x * y)
                .sum();
        }
    }

    /// R y = b S0 y - sum_p y_p (y_p . y)
    fn residual_times(&self, b: f64, kept: &[Vec<f64>], y: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = b * self.s0[i].iter().map(|&(j, s)| s * y[j]).sum::<f64>();
        }
        for yp in kept {
            let dot: f64 = yp.iter().zip(y).map(|(a, b)| a * b).sum();
            for (o, p) in out.iter_mut().zip(yp) {
                *o -= p * dot;
            }
        }
    }

    fn signs(&self, a: &[f64]) -> Vec<f64> {
        let mut z = vec![0.0; self.n];
        self.project(a, &mut z);
        z.iter()
            .map(|&v| if v >= 0.0 { 1.0 } else { -1.0 })
            .collect()
    }

    /// Discrete loss -y^T R y / (N b) with y = sign(K a).
    fn discrete_loss(&self, b: f64, kept: &[Vec<f64>], a: &[f64]) -> f64 {
        let y = self.signs(a);
        let mut ry = vec![0.0; self.n];
        self.residual_times(b, kept, &y, &mut ry);
        -y.iter().zip(&ry).map(|(a, b)| a * b).sum::<f64>() / (self.n as f64 * b)
    }

    /// ||H H^T - b S0||_F^2 / N^2 for codes H (one sign vector per bit).
    fn objective(&self, b: f64, codes: &[Vec<f64>]) -> f64 {
        let n = self.n;
        let mut total = 0.0;
        let mut row_target = vec![0.0; n];
        for i in 0..n {
            row_target.fill(0.0);
            for &(j, s) in &self.s0[i] {
                row_target[j] = b * s;
            }
            for (j, t) in row_target.iter().enumerate() {
                let hh: f64 = codes.iter().map(|y| y[i] * y[j]).sum();
                total += (hh - t) * (hh - t);
            }
        }
        total / (n * n) as f64
    }
}

/// Normalise the rows of one head's tokens.
fn normalised_rows(qk: &[f32], n: usize, d: usize, off: usize, c: usize) -> Vec<f64> {
    let mut x = vec![0.0f64; n * c];
    for i in 0..n {
        let row = &qk[i * d + off..i * d + off + c];
        let norm = row
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        for (o, &v) in x[i * c..(i + 1) * c].iter_mut().zip(row) {
            *o = v as f64 * inv;
        }
    }
    x
}

/// m distinct token indices (with repetition only when there are fewer tokens than anchors).
fn pick(n: usize, m: usize, rng: &mut rand::rngs::Xoshiro256PlusPlus) -> Vec<usize> {
    use rand::RngExt;
    let mut idx: Vec<usize> = (0..n).collect();
    (0..m)
        .map(|r| {
            let r = r % n;
            let j = rng.random_range(r..n);
            idx.swap(r, j);
            idx[r]
        })
        .collect()
}

/// Learn the hash of one attention layer from `n` calibration rows of the shared Q/K projection
/// (`qk`, `[n, heads * dim]`).
#[allow(clippy::too_many_arguments)]
pub fn learn(
    qk: &[f32],
    n: usize,
    heads: usize,
    dim: usize,
    bits: usize,
    anchors: usize,
    cfg: KshConfig,
    seed: u64,
) -> KshOutcome {
    assert!(n >= 2, "KSH needs at least two calibration tokens");
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
    let (c, m, d) = (dim, anchors, heads * dim);
    let mut hash = KernelHash {
        heads,
        bits,
        anchors,
        dim,
        a: vec![0.0; heads * bits * m],
        anchor: vec![0.0; heads * m * c],
        mu: vec![0.0; heads * m],
    };
    let (mut loss_random, mut loss_learned) = (vec![], vec![]);
    let topk = cfg.topk.min(n / 2).max(1);
    let b = bits as f64;
    for h in 0..heads {
        let x = normalised_rows(qk, n, d, h * c, c);
        let chosen = pick(n, m, &mut rng);
        for (j, &t) in chosen.iter().enumerate() {
            for e in 0..c {
                hash.anchor[(h * m + j) * c + e] = x[t * c + e] as f32;
            }
        }
        // Kernel matrix with the calibration bandwidth, centred by its column means.
        let mut d2 = vec![0.0f64; n * m];
        for i in 0..n {
            for (j, &t) in chosen.iter().enumerate() {
                d2[i * m + j] = (0..c).map(|e| (x[i * c + e] - x[t * c + e]).powi(2)).sum();
            }
        }
        let sigma = d2.iter().sum::<f64>() / (n * m) as f64;
        let mut k: Vec<f64> = d2
            .iter()
            .map(|v| (-v / (2.0 * sigma.max(1e-12))).exp())
            .collect();
        for j in 0..m {
            let mu = (0..n).map(|i| k[i * m + j]).sum::<f64>() / n as f64;
            hash.mu[h * m + j] = mu as f32;
            for i in 0..n {
                k[i * m + j] -= mu;
            }
        }
        // Self-supervised targets from the cosine similarity ranking.
        let mut s0 = Vec::with_capacity(n);
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut sims = vec![0.0f64; n];
        for i in 0..n {
            for (j, s) in sims.iter_mut().enumerate() {
                *s = (0..c).map(|e| x[i * c + e] * x[j * c + e]).sum();
            }
            order.clear();
            order.extend(0..n);
            order.sort_by(|&p, &q| sims[q].total_cmp(&sims[p]).then(p.cmp(&q)));
            let mut row: Vec<(usize, f64)> = order[..topk].iter().map(|&j| (j, 1.0)).collect();
            row.extend(order[n - topk..].iter().map(|&j| (j, -1.0)));
            s0.push(row);
        }
        let p = Problem { n, m, k, s0 };
        // Greedy bit-by-bit optimisation.
        let mut kept: Vec<Vec<f64>> = Vec::with_capacity(bits);
        let mut random_codes: Vec<Vec<f64>> = Vec::with_capacity(bits);
        let (mut z, mut ry, mut gz) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for r in 0..bits {
            let a0: Vec<f64> = (0..m).map(|_| normal(&mut rng) as f64).collect();
            random_codes.push(p.signs(&a0));
            let mut a = a0.clone();
            let mut vel = vec![0.0f64; m];
            for _ in 0..cfg.iterations {
                p.project(&a, &mut z);
                let y: Vec<f64> = z.iter().map(|v| (v / 2.0).tanh()).collect();
                p.residual_times(b, &kept, &y, &mut ry);
                // dL/dz = -2 (R y) / (N b) * dy/dz, with dy/dz = (1 - y^2) / 2
                for i in 0..n {
                    gz[i] = -2.0 * ry[i] / (n as f64 * b) * (1.0 - y[i] * y[i]) / 2.0;
                }
                for e in 0..m {
                    let g: f64 = (0..n).map(|i| p.k[i * m + e] * gz[i]).sum();
                    vel[e] = cfg.momentum * vel[e] + g;
                    a[e] -= cfg.lr * (g + cfg.momentum * vel[e]);
                }
            }
            let best = if p.discrete_loss(b, &kept, &a) < p.discrete_loss(b, &kept, &a0) {
                a
            } else {
                a0
            };
            for (e, v) in best.iter().enumerate() {
                hash.a[(h * bits + r) * m + e] = *v as f32;
            }
            kept.push(p.signs(&best));
        }
        loss_random.push(p.objective(b, &random_codes));
        loss_learned.push(p.objective(b, &kept));
    }
    KshOutcome {
        hash,
        loss_random,
        loss_learned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clustered calibration tokens: a few directions plus noise, like attention inputs.
    fn tokens(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        let centres: Vec<f32> = (0..6 * d).map(|_| normal(&mut rng)).collect();
        (0..n)
            .flat_map(|i| (0..d).map(move |e| (i, e)).collect::<Vec<_>>())
            .map(|(i, e)| centres[(i % 6) * d + e] + 0.5 * normal(&mut rng))
            .collect()
    }

    #[test]
    fn learning_improves_the_discrete_loss_over_random_a() {
        let (n, heads, c) = (120, 2, 8);
        let x = tokens(n, heads * c, 5);
        let out = learn(&x, n, heads, c, 16, 25, KshConfig::default(), 11);
        for h in 0..heads {
            assert!(
                out.loss_learned[h] < out.loss_random[h],
                "head {h}: learned {} vs random {}",
                out.loss_learned[h],
                out.loss_random[h]
            );
        }
        // deterministic
        let again = learn(&x, n, heads, c, 16, 25, KshConfig::default(), 11);
        assert_eq!(again.hash, out.hash);
    }
}
