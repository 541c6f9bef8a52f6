//! Kernel linear attention with elu + 1 features (Katharopoulos et al. 2020):
//! o_i = phi(q_i)^T S / phi(q_i) . z, with S = sum_j phi(k_j) v_j^T and z = sum_j phi(k_j).
//!
//! Steps (ledger layers under the core prefix):
//! - `feature`: phi(x) = elu(x) + 1 = x + 1 for x > 0, exp(x) otherwise: one compare per element,
//!   then one add or one `exp` (whichever branch runs);
//! - `state_update`: S += phi(k) v^T (C^2 MACs per head and token), z += phi(k) (C adds);
//! - `query`: phi(q)^T S (C^2 MACs), phi(q) . z (C MACs);
//! - `divide`: one reciprocal `div` per head and token, C multiplies;
//! - `state` (causal form): the running sums S and z are read and written once per token.
//!
//! The causal form keeps (S, z) as recurrent state, so its cost per token does not grow with
//! the context.

use super::{Heads, StepIds, step};
use crate::engine::Arith;
use crate::ledger::{Counts, Ledger, Op, TensorClass};

pub const STEPS: &[&str] = &[
    step::FEATURE,
    step::STATE_UPDATE,
    step::QUERY,
    step::DIVIDE,
    step::STATE,
];

pub fn register(l: &mut Ledger, prefix: &str) -> StepIds {
    StepIds::register(l, prefix, STEPS)
}

/// Running sums per head: S `[heads, C, C]` and z `[heads, C]`.
#[derive(Clone, Debug)]
pub struct LinearState {
    pub s: Vec<f32>,
    pub z: Vec<f32>,
    fq: Vec<f32>,
    fk: Vec<f32>,
}

impl LinearState {
    pub fn new(shape: Heads) -> LinearState {
        let (h, c) = (shape.heads, shape.head_dim);
        LinearState {
            s: vec![0.0; h * c * c],
            z: vec![0.0; h * c],
            fq: vec![0.0; c],
            fk: vec![0.0; c],
        }
    }
}

/// phi(x) = elu(x) + 1, counted: one compare each, an add where x > 0, an exp elsewhere.
fn feature(x: &[f32], out: &mut [f32], arith: &Arith, c: &mut Counts) {
    let mut positive = 0u64;
    for (o, &v) in out.iter_mut().zip(x) {
        if v > 0.0 {
            *o = v + 1.0;
            positive += 1;
        } else {
            *o = v.exp();
        }
    }
    let n = x.len() as u64;
    c.add(Op::Cmp, arith.acc_fmt(), n);
    arith.count_add(c, positive);
    c.add(Op::Exp, arith.acc_fmt(), n - positive);
}

/// S += phi(k) v^T and z += phi(k) for one head.
fn update(fk: &[f32], v: &[f32], s: &mut [f32], z: &mut [f32], arith: &Arith) {
    let c = fk.len();
    for (a, &f) in fk.iter().enumerate() {
        let row = &mut s[a * c..(a + 1) * c];
        for (x, &vv) in row.iter_mut().zip(v) {
            *x += arith.mul(f, vv);
        }
        z[a] += f;
    }
}

/// o = phi(q)^T S / phi(q) . z for one head.
fn query(fq: &[f32], s: &[f32], z: &[f32], out: &mut [f32], arith: &Arith) {
    let c = fq.len();
    out.fill(0.0);
    let mut den = 0.0f32;
    for (a, &f) in fq.iter().enumerate() {
        for (o, &x) in out.iter_mut().zip(&s[a * c..(a + 1) * c]) {
            *o += arith.mul(f, x);
        }
        den += arith.mul(f, z[a]);
    }
    let inv = 1.0 / den;
    for o in out.iter_mut() {
        *o = arith.mul(*o, inv);
    }
}

fn count_update(l: &mut Ledger, ids: &StepIds, arith: &Arith, n: u64, c: u64) {
    let cu = l.at(ids.id(step::STATE_UPDATE));
    arith.count_mac(cu, n * c * c);
    arith.count_add(cu, n * c);
}

fn count_query(l: &mut Ledger, ids: &StepIds, arith: &Arith, n: u64, c: u64) {
    arith.count_mac(l.at(ids.id(step::QUERY)), n * (c * c + c));
    let dv = l.at(ids.id(step::DIVIDE));
    dv.add(Op::Div, arith.acc_fmt(), n);
    arith.count_mul(dv, n * c);
}

/// Full (non-causal) linear attention over `n` tokens.
#[allow(clippy::too_many_arguments)]
pub fn forward_full(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n: usize,
    shape: Heads,
    out: &mut [f32],
    arith: &Arith,
    l: &mut Ledger,
    ids: &StepIds,
) {
    let arith = &arith.at(crate::engine::arith::Site::Attention);
    let (d, c) = (shape.dim(), shape.head_dim);
    let mut st = LinearState::new(Heads {
        heads: 1,
        head_dim: c,
    });
    let mut o = vec![0.0f32; c];
    for h in 0..shape.heads {
        let off = h * c;
        st.s.fill(0.0);
        st.z.fill(0.0);
        for j in 0..n {
            feature(
                &k[j * d + off..j * d + off + c],
                &mut st.fk,
                arith,
                l.at(ids.id(step::FEATURE)),
            );
            update(
                &st.fk,
                &v[j * d + off..j * d + off + c],
                &mut st.s,
                &mut st.z,
                arith,
            );
        }
        for i in 0..n {
            feature(
                &q[i * d + off..i * d + off + c],
                &mut st.fq,
                arith,
                l.at(ids.id(step::FEATURE)),
            );
            query(&st.fq, &st.s, &st.z, &mut o, arith);
            out[i * d + off..i * d + off + c].copy_from_slice(&o);
        }
    }
    let (nh, c64) = ((n * shape.heads) as u64, c as u64);
    count_update(l, ids, arith, nh, c64);
    count_query(l, ids, arith, nh, c64);
}

/// One token of causal linear attention: the running sums take the token's key and value, then
/// its query reads them.
#[allow(clippy::too_many_arguments)]
pub fn forward_step(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    st: &mut LinearState,
    shape: Heads,
    out: &mut [f32],
    arith: &Arith,
    l: &mut Ledger,
    ids: &StepIds,
) {
    let arith = &arith.at(crate::engine::arith::Site::Attention);
    let c = shape.head_dim;
    for h in 0..shape.heads {
        let off = h * c;
        let (s, z) = (
            &mut st.s[h * c * c..(h + 1) * c * c],
            &mut st.z[h * c..(h + 1) * c],
        );
        feature(
            &k[off..off + c],
            &mut st.fk,
            arith,
            l.at(ids.id(step::FEATURE)),
        );
        update(&st.fk, &v[off..off + c], s, z, arith);
        feature(
            &q[off..off + c],
            &mut st.fq,
            arith,
            l.at(ids.id(step::FEATURE)),
        );
        query(&st.fq, s, z, &mut out[off..off + c], arith);
    }
    let (h64, c64) = (shape.heads as u64, c as u64);
    count_update(l, ids, arith, h64, c64);
    count_query(l, ids, arith, h64, c64);
    let bytes = h64 * (c64 * c64 + c64) * arith.acc_fmt().bytes();
    let sc = l.at(ids.id(step::STATE));
    sc.mem(Op::Read, arith.acc_fmt(), TensorClass::State, bytes);
    sc.mem(Op::Write, arith.acc_fmt(), TensorClass::State, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_running_sums_equal_full_attention_over_the_prefix() {
        let shape = Heads {
            heads: 2,
            head_dim: 3,
        };
        let d = shape.dim();
        let n = 6;
        let x: Vec<f32> = (0..3 * n * d)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let (q, k, v) = (&x[..n * d], &x[n * d..2 * n * d], &x[2 * n * d..]);
        let arith = Arith::Exact;
        let mut l = Ledger::new();
        let ids = register(&mut l, "att");
        let mut st = LinearState::new(shape);
        for t in 0..n {
            let mut o = vec![0.0; d];
            forward_step(
                &q[t * d..(t + 1) * d],
                &k[t * d..(t + 1) * d],
                &v[t * d..(t + 1) * d],
                &mut st,
                shape,
                &mut o,
                &arith,
                &mut l,
                &ids,
            );
            // full attention over the prefix 0..=t, last row
            let mut l2 = Ledger::new();
            let ids2 = register(&mut l2, "att");
            let mut full = vec![0.0; (t + 1) * d];
            forward_full(
                &q[..(t + 1) * d],
                &k[..(t + 1) * d],
                &v[..(t + 1) * d],
                t + 1,
                shape,
                &mut full,
                &arith,
                &mut l2,
                &ids2,
            );
            for i in 0..d {
                assert!((o[i] - full[t * d + i]).abs() < 1e-5);
            }
        }
        assert_eq!(l.totals().op_total(Op::Mac), (n * 2 * (9 + 9 + 3)) as u64);
    }
}
