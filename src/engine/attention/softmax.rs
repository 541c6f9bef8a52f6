//! Full softmax attention: o_i = sum_j softmax_j(q_i . k_j / sqrt(C)) v_j, per head, with the
//! maximum subtracted before the exponentials.
//!
//! Steps (ledger layers under the core prefix):
//! - `scores`: q . k, one MAC per element per key;
//! - `scale`: one multiply by 1/sqrt(C) per score;
//! - `softmax`: max (one compare per score), subtraction of the max (one add), `exp`, the sum
//!   (one add per score), one reciprocal `div` per query and head, and one multiply per output
//!   element (the weighted sum is normalised after the mix);
//! - `mix`: sum_j e_j v_j, one MAC per element per key; outside fp32 the key of the maximum score
//!   (e_j = exp(0) = 1) is selected rather than multiplied, one accumulate per element;
//! - `cache` (causal form): the K/V cache, written once per token and read in full by each
//!   query (state bytes), so the cost per token grows with the context.

use super::{Heads, StepIds, step};
use crate::engine::Arith;
use crate::ledger::{Ledger, Op, TensorClass};

pub const STEPS: &[&str] = &[
    step::SCORES,
    step::SCALE,
    step::SOFTMAX,
    step::MIX,
    step::CACHE,
];

pub fn register(l: &mut Ledger, prefix: &str) -> StepIds {
    StepIds::register(l, prefix, STEPS)
}

/// Keys and values of the tokens seen so far, `[len, heads * head_dim]` each.
#[derive(Clone, Debug)]
pub struct KvCache {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    pub len: usize,
    dim: usize,
    scores: Vec<f32>,
}

impl KvCache {
    pub fn new(shape: Heads, capacity: usize) -> KvCache {
        let d = shape.dim();
        KvCache {
            k: Vec::with_capacity(capacity * d),
            v: Vec::with_capacity(capacity * d),
            len: 0,
            dim: d,
            scores: Vec::with_capacity(capacity),
        }
    }
}

/// One query row of one head against `n_keys` keys (rows of `k`/`v` with stride `d`, offset
/// `off`): writes the normalised output into `out` (length C). Counting is the caller's.
#[allow(clippy::too_many_arguments)]
fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_keys: usize,
    d: usize,
    off: usize,
    scale: f32,
    scores: &mut Vec<f32>,
    out: &mut [f32],
    arith: &Arith,
) {
    let c = q.len();
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    let mut argmax = 0;
    for j in 0..n_keys {
        let kj = &k[j * d + off..j * d + off + c];
        let mut s = 0.0f32;
        for (a, b) in q.iter().zip(kj) {
            s += arith.mul(*a, *b);
        }
        let s = arith.mul(s, scale);
        if s > max {
            argmax = j;
        }
        max = max.max(s);
        scores.push(s);
    }
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    out.fill(0.0);
    for (j, &e) in scores.iter().enumerate() {
        let vj = &v[j * d + off..j * d + off + c];
        for (o, x) in out.iter_mut().zip(vj) {
            *o += arith.mul_rescale(j == argmax, e, *x);
        }
    }
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o = arith.mul(*o, inv);
    }
}

/// Counts of `queries` query rows of one head attending to `keys` keys each, in total.
fn count(l: &mut Ledger, ids: &StepIds, arith: &Arith, pairs: u64, queries: u64, c: u64) {
    arith.count_mac(l.at(ids.id(step::SCORES)), pairs * c);
    arith.count_mul(l.at(ids.id(step::SCALE)), pairs);
    let sm = l.at(ids.id(step::SOFTMAX));
    let fmt = arith.acc_fmt();
    sm.add(Op::Cmp, fmt, pairs);
    arith.count_add(sm, 2 * pairs); // subtract the max, sum the exponentials
    sm.add(Op::Exp, fmt, pairs);
    sm.add(Op::Div, fmt, queries);
    arith.count_mul(sm, queries * c);
    // The maximum's weight is exp(0) = 1: one select per query row outside fp32.
    arith.count_rescale_mac(l.at(ids.id(step::MIX)), pairs * c, queries * c);
}

/// Full (non-causal) attention over `n` tokens: every query sees every key.
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
    forward_cross(q, n, k, v, n, shape, out, arith, l, ids);
}

/// Non-causal attention of `n` queries over `m` keys and values (`m < n` when the keys come
/// from a spatially reduced copy of the tokens, as in PVT's spatial-reduction attention).
#[allow(clippy::too_many_arguments)]
pub fn forward_cross(
    q: &[f32],
    n: usize,
    k: &[f32],
    v: &[f32],
    m: usize,
    shape: Heads,
    out: &mut [f32],
    arith: &Arith,
    l: &mut Ledger,
    ids: &StepIds,
) {
    let arith = &arith.at(crate::engine::arith::Site::Attention);
    let (d, c) = (shape.dim(), shape.head_dim);
    let scale = 1.0 / (c as f32).sqrt();
    let mut scores = Vec::with_capacity(m);
    let mut o = vec![0.0f32; c];
    for h in 0..shape.heads {
        let off = h * c;
        for i in 0..n {
            attend(
                &q[i * d + off..i * d + off + c],
                k,
                v,
                m,
                d,
                off,
                scale,
                &mut scores,
                &mut o,
                arith,
            );
            out[i * d + off..i * d + off + c].copy_from_slice(&o);
        }
    }
    let (n64, m64, h64, c64) = (n as u64, m as u64, shape.heads as u64, c as u64);
    count(l, ids, arith, h64 * n64 * m64, h64 * n64, c64);
    // Q is read once per query, K and V for every query-key pair as the loop streams them (no
    // reuse assumed).
    let bytes = arith.operand_bytes();
    let mix = l.at(ids.id(step::MIX));
    mix.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Activation,
        h64 * n64 * (c64 + 2 * m64 * c64) * bytes,
    );
    mix.mem(
        Op::Write,
        arith.fmt(),
        TensorClass::Activation,
        h64 * n64 * c64 * bytes,
    );
    mix.pass(crate::ledger::Work::Attention {
        heads: h64,
        n: n64,
        m: m64,
        c: c64,
        bytes: bytes as u32,
    });
}

/// One token of causal attention: its key and value are appended to the cache, then its query
/// attends to every cached token (itself included).
#[allow(clippy::too_many_arguments)]
pub fn forward_step(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    cache: &mut KvCache,
    shape: Heads,
    out: &mut [f32],
    arith: &Arith,
    l: &mut Ledger,
    ids: &StepIds,
) {
    let arith = &arith.at(crate::engine::arith::Site::Attention);
    let (d, c) = (shape.dim(), shape.head_dim);
    debug_assert_eq!(cache.dim, d);
    cache.k.extend_from_slice(k);
    cache.v.extend_from_slice(v);
    cache.len += 1;
    let t = cache.len;
    let scale = 1.0 / (c as f32).sqrt();
    for h in 0..shape.heads {
        let off = h * c;
        let o = &mut out[off..off + c];
        attend(
            &q[off..off + c],
            &cache.k,
            &cache.v,
            t,
            d,
            off,
            scale,
            &mut cache.scores,
            o,
            arith,
        );
    }
    let (t64, h64, c64) = (t as u64, shape.heads as u64, c as u64);
    count(l, ids, arith, h64 * t64, h64, c64);
    let bytes = arith.operand_bytes();
    let cc = l.at(ids.id(step::CACHE));
    cc.mem(
        Op::Write,
        arith.fmt(),
        TensorClass::State,
        2 * h64 * c64 * bytes,
    );
    cc.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::State,
        2 * h64 * t64 * c64 * bytes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn naive(
        q: &[f64],
        k: &[f64],
        v: &[f64],
        n: usize,
        h: usize,
        c: usize,
        causal: bool,
    ) -> Vec<f64> {
        let d = h * c;
        let mut out = vec![0.0; n * d];
        for hh in 0..h {
            for i in 0..n {
                let keys = if causal { i + 1 } else { n };
                let s: Vec<f64> = (0..keys)
                    .map(|j| {
                        (0..c)
                            .map(|x| q[i * d + hh * c + x] * k[j * d + hh * c + x])
                            .sum::<f64>()
                            / (c as f64).sqrt()
                    })
                    .collect();
                let z: f64 = s.iter().map(|x| x.exp()).sum();
                for x in 0..c {
                    out[i * d + hh * c + x] = (0..keys)
                        .map(|j| s[j].exp() / z * v[j * d + hh * c + x])
                        .sum();
                }
            }
        }
        out
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| super::super::normal(&mut rng)).collect()
    }

    #[test]
    fn cross_attention_over_fewer_keys_equals_a_naive_reference_and_counts_n_times_m_pairs() {
        let (n, m, shape) = (
            6,
            2,
            Heads {
                heads: 2,
                head_dim: 3,
            },
        );
        let (d, c) = (shape.dim(), shape.head_dim);
        let (q, k, v) = (random(n * d, 4), random(m * d, 5), random(m * d, 6));
        let mut l = Ledger::new();
        let ids = register(&mut l, "att");
        let mut out = vec![0.0; n * d];
        forward_cross(
            &q,
            n,
            &k,
            &v,
            m,
            shape,
            &mut out,
            &Arith::Exact,
            &mut l,
            &ids,
        );
        for hh in 0..shape.heads {
            for i in 0..n {
                let s: Vec<f64> = (0..m)
                    .map(|j| {
                        (0..c)
                            .map(|x| q[i * d + hh * c + x] as f64 * k[j * d + hh * c + x] as f64)
                            .sum::<f64>()
                            / (c as f64).sqrt()
                    })
                    .collect();
                let z: f64 = s.iter().map(|x| x.exp()).sum();
                for x in 0..c {
                    let want: f64 = (0..m)
                        .map(|j| s[j].exp() / z * v[j * d + hh * c + x] as f64)
                        .sum();
                    let got = out[i * d + hh * c + x] as f64;
                    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
        let t = l.totals();
        assert_eq!(t.op_total(Op::Exp), (shape.heads * n * m) as u64);
        assert_eq!(
            l.subtree("att.scores").op_total(Op::Mac),
            (n * m * d) as u64
        );
        let passes: Vec<_> = l.subtree("att.mix").4.into_keys().collect();
        assert!(matches!(
            passes[..],
            [crate::ledger::Work::Attention { n: 6, m: 2, .. }]
        ));
    }

    #[test]
    fn full_and_causal_softmax_equal_a_naive_reference() {
        let (n, shape) = (
            7,
            Heads {
                heads: 2,
                head_dim: 3,
            },
        );
        let d = shape.dim();
        let (q, k, v) = (random(n * d, 1), random(n * d, 2), random(n * d, 3));
        let f = |x: &[f32]| x.iter().map(|&a| a as f64).collect::<Vec<_>>();
        let arith = Arith::Exact;
        let mut l = Ledger::new();
        let ids = register(&mut l, "att");
        let mut out = vec![0.0; n * d];
        forward_full(&q, &k, &v, n, shape, &mut out, &arith, &mut l, &ids);
        let want = naive(&f(&q), &f(&k), &f(&v), n, 2, 3, false);
        for (a, b) in out.iter().zip(&want) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
        let full = l.totals();
        assert_eq!(full.op_total(Op::Mac), 2 * (n * n * d) as u64);
        assert_eq!(full.op_total(Op::Exp), (2 * n * n) as u64);

        let mut l = Ledger::new();
        let ids = register(&mut l, "att");
        let mut cache = KvCache::new(shape, n);
        let want = naive(&f(&q), &f(&k), &f(&v), n, 2, 3, true);
        for i in 0..n {
            let mut o = vec![0.0; d];
            forward_step(
                &q[i * d..(i + 1) * d],
                &k[i * d..(i + 1) * d],
                &v[i * d..(i + 1) * d],
                &mut cache,
                shape,
                &mut o,
                &arith,
                &mut l,
                &ids,
            );
            for x in 0..d {
                assert!((o[x] as f64 - want[i * d + x]).abs() < 1e-5);
            }
        }
        // sum over t of t keys: n(n+1)/2 pairs per head
        assert_eq!(l.totals().op_total(Op::Exp), (2 * n * (n + 1) / 2) as u64);
    }

    /// The key with the maximum score has weight exp(0) = 1: under L-Mul its value enters the
    /// weighted sum unscaled (a select), the other keys through L-Mul products.
    #[test]
    fn lmul_softmax_selects_the_value_of_the_maximum_key() {
        let arith = crate::engine::arith::ArithSpec::new("lmul-3")
            .build()
            .unwrap();
        let shape = Heads {
            heads: 1,
            head_dim: 2,
        };
        // key 0 scores above key 1, whose q . k is 0
        let q = [0.5f32, 0.5];
        let k = [0.5f32, 0.5, 0.0, 0.0];
        let v = [0.8125f32, -1.25, 1.5, 0.375];
        let mut l = Ledger::new();
        let ids = register(&mut l, "att");
        let mut out = [0.0f32; 2];
        forward_full(&q, &k, &v, 1, shape, &mut out, &arith, &mut l, &ids);
        let mut scores = Vec::new();
        let mut o = [0.0f32; 2];
        attend(
            &q,
            &k,
            &v,
            2,
            2,
            0,
            0.5f32.sqrt(),
            &mut scores,
            &mut o,
            &arith,
        );
        let e1 = scores[1];
        assert!(e1 < 1.0 && e1 > 0.0);
        let inv = 1.0 / (1.0 + e1);
        for x in 0..2 {
            let want = arith.mul(v[x] + arith.mul(e1, v[2 + x]), inv);
            assert_eq!(o[x].to_bits(), want.to_bits(), "element {x}");
            let scaled = arith.mul(arith.mul(1.0, v[x]) + arith.mul(e1, v[2 + x]), inv);
            assert_ne!(o[x], scaled);
        }
        // one query of one key in forward_full: its only product is a select
        let t = l.totals();
        assert_eq!(t.op_total(Op::Lmul), 2 + 1 + 2); // scores, scale, normalisation
    }
}
