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
    c.mem(Op::Write, arith.fmt(), TensorClass::Activation, d * bytes);
}

/// out = sigmoid(r) * z.
pub fn sigmoid_gate(r: &[f32], z: &[f32], out: &mut [f32], arith: &Arith, c: &mut Counts) {
    let arith = &arith.at(Site::Attention);
    for i in 0..out.len() {
        let g = 1.0 / (1.0 + (-r[i]).exp());
        out[i] = arith.mul(g, z[i]);
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
