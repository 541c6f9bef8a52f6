//! The RWKV-4 WKV recurrence in its numerically stable form (a running maximum exponent), as in
//! the RWKV CUDA kernel and SpikeGPT's `model_run.py`.
//!
//! wkv_t = (a_{t-1} + e^{u+k_t} v_t) / (b_{t-1} + e^{u+k_t})
//! a_t = e^w a_{t-1} + e^{k_t} v_t,  b_t = e^w b_{t-1} + e^{k_t},  w = -exp(time_decay) < 0
//!
//! Each rescale multiplies by two factors exp(x - max), one of which is the maximum's exp(0) = 1.
//! In fp32 the kernel multiplies by it (exact); in an emulated format that product is a select
//! of the other operand ([`Arith::mul_rescale`]), so L-Mul's correction never scales the state.

use super::arith::{Arith, Site};
use crate::ledger::{Counts, Op, TensorClass};

/// Per-channel recurrent state: numerator `aa`, denominator `bb`, and the exponent `pp` that
/// both are scaled by.
#[derive(Clone, Debug, PartialEq)]
pub struct WkvState {
    pub aa: Vec<f32>,
    pub bb: Vec<f32>,
    pub pp: Vec<f32>,
}

impl WkvState {
    pub fn new(d: usize) -> Self {
        WkvState {
            aa: vec![0.0; d],
            bb: vec![0.0; d],
            pp: vec![-1e30; d],
        }
    }
}

/// One token: `w` is the decay (already -exp(time_decay)), `u` the bonus (time_first).
#[allow(clippy::too_many_arguments)]
pub fn wkv_step(
    w: &[f32],
    u: &[f32],
    k: &[f32],
    v: &[f32],
    st: &mut WkvState,
    out: &mut [f32],
    arith: &Arith,
    c: &mut Counts,
) {
    let arith = &arith.at(Site::Attention);
    // One of each pair of factors is the maximum's exp(0) = 1: a select outside fp32.
    let mut selects = 0u64;
    for i in 0..out.len() {
        let (aa, bb, pp) = (st.aa[i], st.bb[i], st.pp[i]);
        let ww = u[i] + k[i];
        let p = pp.max(ww);
        let old_is_max = p == pp;
        let e1 = (pp - p).exp();
        let e2 = (ww - p).exp();
        let num = arith.add(
            arith.mul_rescale(old_is_max, e1, aa),
            arith.mul_rescale(!old_is_max, e2, v[i]),
        );
        let den = arith.add(arith.mul_rescale(old_is_max, e1, bb), e2);
        out[i] = num / den;
        let ww = pp + w[i];
        let p = ww.max(k[i]);
        let decayed_is_max = p == ww;
        let e1 = (ww - p).exp();
        let e2 = (k[i] - p).exp();
        st.aa[i] = arith.add(
            arith.mul_rescale(decayed_is_max, e1, aa),
            arith.mul_rescale(!decayed_is_max, e2, v[i]),
        );
        st.bb[i] = arith.add(arith.mul_rescale(decayed_is_max, e1, bb), e2);
        st.pp[i] = p;
        // e1 scales two products (aa, bb), e2 one (v).
        selects += u64::from(old_is_max) + u64::from(decayed_is_max) + 2;
    }
    let d = out.len() as u64;
    let fmt = arith.acc_fmt();
    arith.count_add(c, 10 * d);
    c.add(Op::Cmp, fmt, 2 * d);
    c.add(Op::Exp, fmt, 4 * d);
    arith.count_rescale(c, 6 * d, selects);
    c.add(Op::Div, fmt, d);
    let bytes = fmt.bytes();
    c.mem(Op::Read, fmt, TensorClass::State, 3 * d * bytes);
    c.mem(Op::Write, fmt, TensorClass::State, 3 * d * bytes);
    c.mem(Op::Read, fmt, TensorClass::Weight, 2 * d * bytes);
    c.weight_vector(w, 2 * d * bytes, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct, unstabilised evaluation of the same recurrence.
    fn direct(w: f64, u: f64, k: &[f64], v: &[f64]) -> Vec<f64> {
        (0..k.len())
            .map(|t| {
                let mut num = (u + k[t]).exp() * v[t];
                let mut den = (u + k[t]).exp();
                for i in 0..t {
                    let f = ((t - 1 - i) as f64 * w + k[i]).exp();
                    num += f * v[i];
                    den += f;
                }
                num / den
            })
            .collect()
    }

    #[test]
    fn stable_form_matches_direct_evaluation() {
        let (w, u) = (-0.7f64, 0.4f64);
        let k = [0.3, -1.2, 2.0, 0.1, -0.5, 1.5, 0.0, -2.2];
        let v = [1.0, -0.5, 0.25, 2.0, -1.0, 0.5, 3.0, -0.75];
        let expected = direct(w, u, &k, &v);
        let mut st = WkvState::new(1);
        let mut c = Counts::default();
        for t in 0..k.len() {
            let mut out = [0.0f32];
            wkv_step(
                &[w as f32],
                &[u as f32],
                &[k[t] as f32],
                &[v[t] as f32],
                &mut st,
                &mut out,
                &Arith::Exact,
                &mut c,
            );
            assert!(
                (out[0] as f64 - expected[t]).abs() < 1e-5,
                "t={t}: {} vs {}",
                out[0],
                expected[t]
            );
        }
        assert_eq!(c.op_total(Op::Exp), 4 * k.len() as u64);
        assert_eq!(c.op_total(Op::Mul), 6 * k.len() as u64);
    }

    fn lmul3() -> Arith {
        crate::engine::arith::ArithSpec::new("lmul-3")
            .build()
            .unwrap()
    }

    /// The decayed state stays the maximum for 2000 tokens whose keys are far below it; each
    /// rescale of the state is then by the maximum's exp(0) = 1, a select, so the state keeps its
    /// value exactly. A multiply by L-Mul(1, x) would grow it by its correction every token.
    #[test]
    fn lmul_rescale_by_exact_one_keeps_the_wkv_state() {
        let arith = lmul3();
        let (w, u, v) = ([-0.01f32], [0.0f32], [0.8125f32]);
        let mut st = WkvState::new(1);
        let mut c = Counts::default();
        let mut out = [0.0f32];
        wkv_step(&w, &u, &[0.0], &v, &mut st, &mut out, &arith, &mut c);
        assert_eq!((st.aa[0], st.bb[0]), (0.8125, 1.0));
        let steps = 2000u64;
        for _ in 1..steps {
            wkv_step(&w, &u, &[-200.0], &v, &mut st, &mut out, &arith, &mut c);
            assert_eq!((st.aa[0], st.bb[0], out[0]), (0.8125, 1.0, 0.8125));
        }
        // the first token selects one factor per rescale (the new key's), every later token two
        let selects = 2 + 4 * (steps - 1);
        assert_eq!(c.op_total(Op::Lmul), 6 * steps - selects);
        assert_eq!(c.op_total(Op::Mul), 0);
    }
}
