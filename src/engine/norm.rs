//! Layer normalisation.

use super::arith::{Arith, Site};
use crate::error::Result;
use crate::ledger::{Counts, Op, TensorClass};
use crate::weights::WeightSource;

/// The parameters of a LayerNorm of width `d`: weight and bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Norm {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl Norm {
    /// `{prefix}.weight` and `{prefix}.bias`, each of shape `[d]` (a missing tensor or a wrong
    /// shape is an error naming the tensor and the shape expected).
    pub fn load(store: &mut impl WeightSource, prefix: &str, d: usize) -> Result<Norm> {
        Ok(Norm {
            w: store
                .tensor(&format!("{prefix}.weight"), &[d])?
                .into_owned(),
            b: store.tensor(&format!("{prefix}.bias"), &[d])?.into_owned(),
        })
    }

    pub fn width(&self) -> usize {
        self.w.len()
    }
}

/// y = (x - mean) / sqrt(var + eps) * w + b, over the whole vector (PyTorch `LayerNorm`).
pub fn layer_norm(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    eps: f32,
    y: &mut [f32],
    arith: &Arith,
    c: &mut Counts,
) {
    let arith = &arith.at(Site::Other);
    let d = x.len();
    let n = d as f32;
    let mean = x.iter().sum::<f32>() / n;
    let mut var = 0.0f32;
    for (yi, &xi) in y.iter_mut().zip(x) {
        let centred = xi - mean;
        *yi = centred;
        var += arith.mul(centred, centred);
    }
    var /= n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((yi, &wi), &bi) in y.iter_mut().zip(w).zip(b) {
        *yi = arith.add(arith.mul(arith.mul(*yi, inv), wi), bi);
    }
    let d = d as u64;
    let fmt = arith.acc_fmt();
    // sum, centre, sum of squares, +eps, +bias
    arith.count_add(c, d + d + d + 1 + d);
    // squares, scale by 1/std, affine weight
    arith.count_mul(c, 3 * d);
    c.add(Op::Div, fmt, 3); // mean, variance, 1/std
    c.add(Op::Sqrt, fmt, 1);
    let bytes = arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, d * bytes);
    c.mem(Op::Read, arith.fmt(), TensorClass::Weight, 2 * d * bytes);
    c.weight_vector(w, 2 * d * bytes, 1);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, d * bytes);
}

/// LayerNorm over `n` rows of width `d` (`x`, `y`: `[n, d]`), computed as two multiply-accumulates
/// per element: y = (x * s + t) * w + b with s = 1 / sqrt(var + eps) and t = -mean * s per row.
///
/// Counted into two ledger layers: `id` gets the 2 d MACs per row of the normalise-and-affine
/// step (and the row's memory traffic); `stats` gets the row statistics: the sum (d adds), the
/// centred values (d adds) and their squares accumulated (d MACs), + eps (1 add), the mean and
/// variance divisions and the reciprocal (3 div), one sqrt and t = -mean * s (1 mul). Counting
/// conventions can so tell the per-element work from the statistics.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_rows(
    x: &[f32],
    d: usize,
    w: &[f32],
    b: &[f32],
    eps: f32,
    y: &mut [f32],
    arith: &Arith,
    l: &mut crate::ledger::Ledger,
    id: crate::ledger::LayerId,
    stats: crate::ledger::LayerId,
) {
    let arith = &arith.at(Site::Other);
    debug_assert_eq!(x.len(), y.len());
    let n = x.len() / d;
    let inv_d = 1.0 / d as f32;
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let mean = xr.iter().sum::<f32>() * inv_d;
        let mut var = 0.0f32;
        for &xi in xr {
            let c = xi - mean;
            var = arith.add(var, arith.mul(c, c));
        }
        var *= inv_d;
        let s = 1.0 / (var + eps).sqrt();
        let t = -arith.mul(mean, s);
        for ((yi, &xi), (&wi, &bi)) in yr.iter_mut().zip(xr).zip(w.iter().zip(b)) {
            let u = arith.add(arith.mul(xi, s), t);
            *yi = arith.add(arith.mul(u, wi), bi);
        }
    }
    let (n, d) = (n as u64, d as u64);
    let c = l.at(stats);
    arith.count_add(c, n * (2 * d + 1));
    arith.count_mac(c, n * d);
    arith.count_mul(c, n);
    c.add(Op::Div, arith.acc_fmt(), 3 * n);
    c.add(Op::Sqrt, arith.acc_fmt(), n);
    let c = l.at(id);
    arith.count_mac(c, 2 * n * d);
    let bytes = arith.operand_bytes();
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Activation,
        n * d * bytes,
    );
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        n * 2 * d * bytes,
    );
    c.weight_vector(w, 2 * d * bytes, n as usize);
    c.mem(
        Op::Write,
        arith.fmt(),
        TensorClass::Activation,
        n * d * bytes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_output_has_zero_mean_and_unit_variance() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let mut y = [0.0; 4];
        let mut c = Counts::default();
        layer_norm(
            &x,
            &[1.0; 4],
            &[0.0; 4],
            1e-5,
            &mut y,
            &Arith::Exact,
            &mut c,
        );
        let mean: f32 = y.iter().sum::<f32>() / 4.0;
        let var: f32 = y.iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        assert!((var - 1.0).abs() < 1e-4);
        assert_eq!(c.op_total(Op::Sqrt), 1);
    }

    #[test]
    fn row_norm_matches_layer_norm_and_counts_two_macs_per_element() {
        let x = [1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 2.0, 7.0];
        let (w, b) = ([0.5, 1.0, 2.0, -1.0], [0.1, 0.0, -0.2, 0.3]);
        let mut y = [0.0; 8];
        let mut l = crate::ledger::Ledger::new();
        let (id, st) = (l.layer("norm"), l.layer("norm.norm_stats"));
        layer_norm_rows(&x, 4, &w, &b, 1e-6, &mut y, &Arith::Exact, &mut l, id, st);
        for r in 0..2 {
            let mut y1 = [0.0; 4];
            layer_norm(
                &x[r * 4..r * 4 + 4],
                &w,
                &b,
                1e-6,
                &mut y1,
                &Arith::Exact,
                &mut Counts::default(),
            );
            for (a, e) in y[r * 4..r * 4 + 4].iter().zip(y1) {
                assert!((a - e).abs() < 1e-5, "{a} vs {e}");
            }
        }
        assert_eq!(l.get(id).op_total(Op::Mac), 16);
        assert_eq!(l.get(st).op_total(Op::Sqrt), 2);
    }
}
