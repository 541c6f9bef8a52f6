//! Layer normalisation.

use super::arith::{Arith, Site};
use crate::ledger::{Counts, Op, TensorClass};

/// y = (x - mean) / sqrt(var + eps) * w + b, over the whole vector (PyTorch `LayerNorm`).
pub fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f32, y: &mut [f32], arith: &Arith, c: &mut Counts) {
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
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, d * bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_output_has_zero_mean_and_unit_variance() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let mut y = [0.0; 4];
        let mut c = Counts::default();
        layer_norm(&x, &[1.0; 4], &[0.0; 4], 1e-5, &mut y, &Arith::Exact, &mut c);
        let mean: f32 = y.iter().sum::<f32>() / 4.0;
        let var: f32 = y.iter().map(|v| v * v).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        assert!((var - 1.0).abs() < 1e-4);
        assert_eq!(c.op_total(Op::Sqrt), 1);
    }
}
