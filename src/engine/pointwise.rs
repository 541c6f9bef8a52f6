//! Element-wise operations: token-shift mixing, gates, activations, residual adds.

use super::arith::{Arith, Site};
use super::events::SpikeTrain;
use crate::ledger::{Counts, Op, TensorClass};

/// RWKV token shift: out = x * mu + prev * (1 - mu), with `one_minus_mu` precomputed.
pub fn token_shift(
    x: &[f32],
    prev: &[f32],
    mu: &[f32],
    one_minus_mu: &[f32],
    out: &mut [f32],
    arith: &Arith,
    c: &mut Counts,
) {
    let arith = &arith.at(Site::Attention);
    for i in 0..out.len() {
        out[i] = arith.add(arith.mul(x[i], mu[i]), arith.mul(prev[i], one_minus_mu[i]));
    }
    let d = out.len() as u64;
    arith.count_mul(c, 2 * d);
    arith.count_add(c, d);
    let bytes = arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Weight, 2 * d * bytes);
    c.weight_vector(mu, 2 * d * bytes, 1);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, d * bytes);
}

/// out = sigmoid(r) * z.
pub fn sigmoid_gate(r: &[f32], z: &[f32], out: &mut [f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Attention);
    for i in 0..out.len() {
        out[i] = arith.mul(logistic(r[i]), z[i]);
    }
    let d = out.len() as u64;
    c.add(Op::Sigmoid, arith.acc_fmt(), d);
    arith.count_mul(c, d);
    c.mem(
        Op::Write,
        arith.fmt(),
        TensorClass::Activation,
        d * arith.operand_bytes(),
    );
}

/// x = relu(x)^2 in place: one compare per element, one multiply per positive element.
pub fn relu_squared(x: &mut [f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    let mut positive = 0u64;
    for v in x.iter_mut() {
        if *v > 0.0 {
            *v = arith.mul(*v, *v);
            positive += 1;
        } else {
            *v = 0.0;
        }
    }
    let d = x.len() as u64;
    c.add(Op::Cmp, arith.acc_fmt(), d);
    arith.count_mul(c, positive);
    c.add(Op::ActOut, arith.acc_fmt(), d);
    c.add(Op::ActNonzero, arith.acc_fmt(), positive);
}

/// ReLU in place: one compare per element; counts the activation traffic like [`gelu`].
pub fn relu(x: &mut [f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    let mut positive = 0u64;
    for v in x.iter_mut() {
        if *v > 0.0 {
            positive += 1;
        } else {
            *v = 0.0;
        }
    }
    let n = x.len() as u64;
    c.add(Op::Cmp, arith.acc_fmt(), n);
    c.add(Op::ActOut, arith.acc_fmt(), n);
    c.add(Op::ActNonzero, arith.acc_fmt(), positive);
    let bytes = arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
}

/// Logistic sigmoid in place: one `sigmoid` per element; counts the activation traffic like
/// [`relu`].
pub fn sigmoid(x: &mut [f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    let mut nz = 0u64;
    for v in x.iter_mut() {
        *v = logistic(*v);
        nz += (*v != 0.0) as u64;
    }
    let n = x.len() as u64;
    c.add(Op::Sigmoid, arith.acc_fmt(), n);
    c.add(Op::ActOut, arith.acc_fmt(), n);
    c.add(Op::ActNonzero, arith.acc_fmt(), nz);
    let bytes = arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
}

/// GELU in place, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Counts 6 mul,
/// 2 add and one `tanh` per element (the nonlinear function by name), and the NeuroBench
/// activation metrics.
pub fn gelu(x: &mut [f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    const K: f32 = 0.797_884_6;
    let mut nz = 0u64;
    for v in x.iter_mut() {
        let x3 = arith.mul(arith.mul(*v, *v), *v);
        let inner = arith.mul(*v + arith.mul(0.044715, x3), K);
        *v = arith.mul(arith.mul(0.5, *v), 1.0 + inner.tanh());
        nz += (*v != 0.0) as u64;
    }
    let n = x.len() as u64;
    arith.count_mul(c, 6 * n);
    arith.count_add(c, 2 * n);
    c.add(Op::Tanh, arith.acc_fmt(), n);
    c.add(Op::ActOut, arith.acc_fmt(), n);
    c.add(Op::ActNonzero, arith.acc_fmt(), nz);
    let bytes = arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
}

/// The logistic function 1 / (1 + e^-v) (a value only; callers count it).
#[inline]
pub fn logistic(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// y += b, the bias of one linear layer or gate block: one add per output, the bias read once.
/// The output stays in the accumulator (no activation traffic). Counted in the mode passed, at
/// no site of its own: the bias belongs to the layer that calls it.
pub fn bias_add(y: &mut [f32], b: &[f32], arith: &Arith, c: &mut Counts) {
    for (v, bb) in y.iter_mut().zip(b) {
        *v += bb;
    }
    let n = b.len() as u64;
    arith.count_add(c, n);
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        n * arith.operand_bytes(),
    );
    c.weight_vector(b, n * arith.operand_bytes(), 1);
}

/// y[ch][p] += b[ch] for a channels-first output: one add per output value, the bias read once
/// (counted like [`bias_add`]).
pub fn bias_add_channels(y: &mut [f32], b: &[f32], arith: &Arith, c: &mut Counts) {
    let per = y.len() / b.len();
    for (ys, bb) in y.chunks_exact_mut(per).zip(b) {
        for v in ys {
            *v += bb;
        }
    }
    arith.count_add(c, y.len() as u64);
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        b.len() as u64 * arith.operand_bytes(),
    );
    c.weight_vector(b, b.len() as u64 * arith.operand_bytes(), 1);
}

/// x[i] += b[i % b.len()] for every row of `x` (a bias added to each of its rows).
pub fn bias_add_rows(x: &mut [f32], b: &[f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    for row in x.chunks_exact_mut(b.len()) {
        for (a, &bi) in row.iter_mut().zip(b) {
            *a = arith.add(*a, bi);
        }
    }
    let n = x.len() as u64;
    arith.count_add(c, n);
    let bytes = arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Weight, n * bytes);
    let rows = x.len() / b.len().max(1);
    c.weight_vector(b, b.len() as u64 * bytes, rows);
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
}

/// x += y.
pub fn residual_add(x: &mut [f32], y: &[f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    for (a, b) in x.iter_mut().zip(y) {
        *a = arith.add(*a, *b);
    }
    let d = x.len() as u64;
    arith.count_add(c, d);
    let bytes = arith.operand_bytes();
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Activation,
        2 * d * bytes,
    );
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, d * bytes);
}

/// x += s for a spike train: one add per spike (a zero spike changes nothing and costs nothing).
pub fn residual_add_spikes(x: &mut [f32], s: &SpikeTrain, arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    for &i in &s.indices {
        x[i as usize] = arith.add(x[i as usize], 1.0);
    }
    let n = s.count() as u64;
    arith.count_add(c, n);
    let bytes = arith.operand_bytes();
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Event,
        n * s.address_bytes(),
    );
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
}

/// Heaviside: spikes where x >= 0 (SpikeGPT's binary embedding).
pub fn heaviside(x: &[f32], out: &mut SpikeTrain, arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    out.clear();
    for (i, &v) in x.iter().enumerate() {
        if v >= 0.0 {
            out.fire(i);
        }
    }
    let d = x.len() as u64;
    c.add(Op::Cmp, arith.acc_fmt(), d);
    c.add(Op::ActOut, arith.acc_fmt(), d);
    c.add(Op::ActNonzero, arith.acc_fmt(), out.count() as u64);
    c.add(Op::Spike, arith.acc_fmt(), out.count() as u64);
}

/// The embedding row of `token` in a `[vocab, d]` table: one read of d weights.
pub fn embedding_row<'t>(
    table: &'t [f32],
    token: usize,
    d: usize,
    arith: &Arith,
    c: &mut Counts,
) -> &'t [f32] {
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        d as u64 * arith.operand_bytes(),
    );
    let rows = table.len() / d.max(1);
    c.weight_rows(
        rows,
        std::iter::once(token as u32),
        d as u64 * arith.operand_bytes(),
    );
    &table[token * d..(token + 1) * d]
}

/// Copy a recurrent buffer (a token-shift input): a read and a write of state.
pub fn copy_state(dst: &mut [f32], src: &[f32], arith: &Arith, c: &mut Counts) {
    dst.copy_from_slice(src);
    let bytes = src.len() as u64 * arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::State, bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::State, bytes);
}

/// x = x / 2 (SpikeGPT's released-code rescale of the residual stream). A power-of-two scale is
/// an exponent decrement, so it is computed exactly (then rounded into the accumulation format,
/// which only matters below its smallest normal number) whatever the arithmetic mode, and
/// counted as one element-wise multiply per element in that format, with the read and write.
pub fn halve(x: &mut [f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    for v in x.iter_mut() {
        *v = arith.add(*v * 0.5, 0.0);
    }
    let d = x.len() as u64;
    c.add(Op::Mul, arith.acc_fmt(), d);
    let bytes = d * arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, bytes);
}

/// The mean over the rows of `x` (`n` rows of `d`): n d adds and d multiplies by 1/n.
pub fn mean_rows(x: &[f32], d: usize, arith: &Arith, c: &mut Counts) -> Vec<f32> {
    let arith = &arith.at(Site::Other);
    let n = x.len() / d;
    let mut pooled = vec![0.0f32; d];
    for row in x.chunks_exact(d) {
        for (p, v) in pooled.iter_mut().zip(row) {
            *p += v;
        }
    }
    let inv = 1.0 / n as f32;
    for p in pooled.iter_mut() {
        *p = arith.mul(*p, inv);
    }
    arith.count_add(c, (n * d) as u64);
    arith.count_mul(c, d as u64);
    pooled
}

/// x[i] *= s[i] (a per-element scale, NIR's `Scale`): one multiply per element, the scale read
/// as a weight.
pub fn scale(x: &mut [f32], s: &[f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    for (a, &k) in x.iter_mut().zip(s) {
        *a = arith.mul(*a, k);
    }
    let n = x.len() as u64;
    arith.count_mul(c, n);
    let bytes = arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::Weight, n * bytes);
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n * bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, n * bytes);
}

/// Spikes where x[i] > threshold[i] (NIR's `Threshold`): one comparison per element.
pub fn threshold(x: &[f32], thr: &[f32], out: &mut SpikeTrain, arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Other);
    out.clear();
    for (i, (&v, &t)) in x.iter().zip(thr).enumerate() {
        if v > t {
            out.fire(i);
        }
    }
    let d = x.len() as u64;
    let bytes = arith.operand_bytes();
    c.add(Op::Cmp, arith.acc_fmt(), d);
    c.add(Op::ActOut, arith.acc_fmt(), d);
    c.add(Op::ActNonzero, arith.acc_fmt(), out.count() as u64);
    c.add(Op::Spike, arith.acc_fmt(), out.count() as u64);
    c.mem(Op::Read, arith.fmt(), TensorClass::Weight, d * bytes);
    c.mem(Op::Read, arith.fmt(), TensorClass::Activation, d * bytes);
    c.mem(
        Op::Write,
        arith.fmt(),
        TensorClass::Event,
        out.count() as u64 * out.address_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ActionKey, FP32};

    fn bytes(c: &Counts, op: Op, class: TensorClass) -> u64 {
        c.0.get(&ActionKey::mem(op, FP32, class))
            .copied()
            .unwrap_or(0)
    }

    #[test]
    fn sigmoid_counts_one_function_per_element_and_its_activation_traffic() {
        let x0 = [0.0f32, 2.0, -1.5, -200.0];
        let mut x = x0;
        let mut c = Counts::default();
        sigmoid(&mut x, &Arith::Exact, &mut c);
        for (v, v0) in x.iter().zip(x0) {
            assert_eq!(*v, 1.0 / (1.0 + (-v0).exp()));
        }
        assert_eq!(x[3], 0.0, "underflows to zero");
        assert_eq!(c.op_total(Op::Sigmoid), 4);
        assert_eq!(c.op_total(Op::ActOut), 4);
        assert_eq!(c.op_total(Op::ActNonzero), 3);
        assert_eq!(bytes(&c, Op::Read, TensorClass::Activation), 4 * 4);
        assert_eq!(bytes(&c, Op::Write, TensorClass::Activation), 4 * 4);
    }

    #[test]
    fn activations_run_exact_fp32_outside_a_projection_scope() {
        use super::super::arith::{Mode, Scope};
        use crate::numerics::FloatFormat;
        let bf16 = Mode::Round {
            format: FloatFormat::BF16,
            acc: FloatFormat::BF16,
        };
        let arith = Arith::new(bf16, Scope::Projections);
        for f in [relu, sigmoid] {
            let mut c = Counts::default();
            f(&mut [1.0, -1.0], &arith, &mut c);
            assert!(c.0.keys().all(|k| k.fmt == FP32), "{c:?}");
            assert_eq!(bytes(&c, Op::Write, TensorClass::Activation), 2 * 4);
        }
    }

    #[test]
    fn bias_add_counts_one_add_per_output_and_reads_the_bias_once() {
        let mut y = [1.0, 2.0, 3.0];
        let mut c = Counts::default();
        bias_add(&mut y, &[0.5, -2.0, 0.0], &Arith::Exact, &mut c);
        assert_eq!(y, [1.5, 0.0, 3.0]);
        assert_eq!(c.op_total(Op::Add), 3);
        assert_eq!(bytes(&c, Op::Read, TensorClass::Weight), 3 * 4);
        assert_eq!(bytes(&c, Op::Read, TensorClass::Activation), 0);
    }

    #[test]
    fn channel_bias_is_added_to_every_position_of_its_channel() {
        let mut y = [0.0; 6]; // 2 channels x 3 positions
        let mut c = Counts::default();
        bias_add_channels(&mut y, &[1.0, -1.0], &Arith::Exact, &mut c);
        assert_eq!(y, [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]);
        assert_eq!(c.op_total(Op::Add), 6);
        assert_eq!(bytes(&c, Op::Read, TensorClass::Weight), 2 * 4);
    }

    #[test]
    fn scale_is_one_multiply_per_element_with_the_scale_read_as_weights() {
        let mut x = [1.0f32, -2.0, 0.5];
        let mut c = Counts::default();
        scale(&mut x, &[2.0, 0.5, -4.0], &Arith::Exact, &mut c);
        assert_eq!(x, [2.0, -1.0, -2.0]);
        assert_eq!(c.op_total(Op::Mul), 3);
        assert_eq!(bytes(&c, Op::Read, TensorClass::Weight), 12);
    }

    #[test]
    fn threshold_spikes_strictly_above_each_elements_threshold() {
        let mut s = SpikeTrain::new(3);
        let mut c = Counts::default();
        threshold(
            &[1.0, 0.5, 0.2],
            &[0.5, 0.5, 0.1],
            &mut s,
            &Arith::Exact,
            &mut c,
        );
        assert_eq!(s.indices, vec![0, 2]);
        assert_eq!(c.op_total(Op::Cmp), 3);
        assert_eq!(c.op_total(Op::Spike), 2);
    }
}
