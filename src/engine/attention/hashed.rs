//! EcoFormer-style hashed attention (Liu et al., NeurIPS 2022): queries and keys (one shared
//! projection, Q = K) become b-bit codes in {-1,+1} through a learned kernel hash, and attention
//! is computed from the codes with accumulations only.
//!
//! **Hash** (per head, `KernelHash`): x <- x / ||x||_2; d_j = ||x - a_j||^2 against m anchors;
//! the bandwidth sigma is the mean of d over tokens and anchors; k_j = exp(-d_j / (2 sigma)) - mu_j;
//! h = sign(A k) with A in R^{b x m} (sign(0) = +1). The full form recomputes sigma per input over
//! its N tokens, as EcoFormer's code does. The causal form keeps a **running mean** of d over the
//! tokens seen so far (one running sum per head, recurrent state): at token t, sigma is the mean
//! over tokens 0..=t, so the hash of token t never looks ahead, and its cost per token is constant.
//!
//! **Attention from codes** (per head, c = b + 1, s_ij = h_i . h_j):
//! - `code_sum`: k_sum = sum_j h_j (one AC per bit and key);
//! - `denominator`: h_i . k_sum (one AC per bit) + n c (one add): sum_j (s_ij + c);
//! - `context`: H^T V, each code bit times a value is one add or subtract (b C ACs per key);
//! - `numerator`: h_i . context (b C ACs) plus the bias term of the [`Normalisation`];
//! - `divide`: one reciprocal `div` per query and head, then C multiplies.
//!
//! The causal form keeps (k_sum, H^T V, n c, and sum_j v_j when normalised) as running sums, so
//! the language model runs token by token at a constant cost per token.
//!
//! Codes are bit-packed in u64 words ([`Codes`]); the code arithmetic reads the bits.

use rand::SeedableRng;

use super::{Codes, Normalisation, StepIds, normal, signed_outer_into, signed_rows_into, step};
use crate::engine::Arith;
use crate::error::Result;
use crate::ledger::{Ledger, Op, TensorClass};
use crate::weights::TensorStore;

pub const STEPS: &[&str] = &[
    step::L2NORM,
    step::DISTANCE,
    step::BANDWIDTH,
    step::KERNEL,
    step::PROJECT,
    step::SIGN,
    step::CODE_SUM,
    step::DENOMINATOR,
    step::CONTEXT,
    step::NUMERATOR,
    step::DIVIDE,
    step::STATE,
];

pub fn register(l: &mut Ledger, prefix: &str) -> StepIds {
    StepIds::register(l, prefix, STEPS)
}

/// The learned kernel hash of one attention layer, all heads. Stored with the model's weights as
/// `{prefix}.A` [H, b, m], `{prefix}.anchor` [H, m, C] and `{prefix}.mvec` [H, m] (EcoFormer's
/// buffer names).
#[derive(Clone, Debug, PartialEq)]
pub struct KernelHash {
    pub heads: usize,
    pub bits: usize,
    pub anchors: usize,
    pub dim: usize,
    pub a: Vec<f32>,
    pub anchor: Vec<f32>,
    pub mu: Vec<f32>,
}

/// x / ||x||_2 (zero stays zero). Uncounted; the counted callers count C MACs, a sqrt, a div and
/// C multiplies.
pub(crate) fn l2_normalise(x: &[f32], out: &mut [f32], arith: &Arith) {
    let mut ss = 0.0f32;
    for &v in x {
        ss += arith.mul(v, v);
    }
    let inv = if ss > 0.0 { 1.0 / ss.sqrt() } else { 0.0 };
    for (o, &v) in out.iter_mut().zip(x) {
        *o = arith.mul(v, inv);
    }
}

impl KernelHash {
    /// A hash with random parameters: unit-norm Gaussian anchors, A ~ N(0, 1), mu = 0 (for tests
    /// and for cost measurements, where counts do not depend on the parameter values).
    pub fn random(heads: usize, bits: usize, anchors: usize, dim: usize, seed: u64) -> KernelHash {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        let a = (0..heads * bits * anchors)
            .map(|_| normal(&mut rng))
            .collect();
        let mut anchor: Vec<f32> = (0..heads * anchors * dim)
            .map(|_| normal(&mut rng))
            .collect();
        for row in anchor.chunks_mut(dim) {
            let x = row.to_vec();
            l2_normalise(&x, row, &Arith::Exact);
        }
        KernelHash {
            heads,
            bits,
            anchors,
            dim,
            a,
            anchor,
            mu: vec![0.0; heads * anchors],
        }
    }

    pub fn a_head(&self, h: usize) -> &[f32] {
        &self.a[h * self.bits * self.anchors..(h + 1) * self.bits * self.anchors]
    }

    pub fn anchors_head(&self, h: usize) -> &[f32] {
        &self.anchor[h * self.anchors * self.dim..(h + 1) * self.anchors * self.dim]
    }

    pub fn mu_head(&self, h: usize) -> &[f32] {
        &self.mu[h * self.anchors..(h + 1) * self.anchors]
    }

    /// Squared distances of a normalised token to the anchors of head `h`; returns their sum.
    pub fn distances(&self, h: usize, xn: &[f32], d2: &mut [f32], arith: &Arith) -> f32 {
        let c = self.dim;
        let mut total = 0.0f32;
        for (j, a) in self.anchors_head(h).chunks_exact(c).enumerate() {
            let mut s = 0.0f32;
            for (x, y) in xn.iter().zip(a) {
                let diff = x - y;
                s += arith.mul(diff, diff);
            }
            d2[j] = s;
            total += s;
        }
        total
    }

    /// The packed code of one token of head `h` from its distances and the bandwidth factor
    /// `scale` = -1 / (2 sigma). `k` is scratch of length m.
    pub fn code_from(
        &self,
        h: usize,
        d2: &[f32],
        scale: f32,
        k: &mut [f32],
        code: &mut [u64],
        arith: &Arith,
    ) {
        for ((kj, &d), &mu) in k.iter_mut().zip(d2).zip(self.mu_head(h)) {
            *kj = arith.mul(d, scale).exp() - mu;
        }
        code.fill(0);
        for (r, row) in self.a_head(h).chunks_exact(self.anchors).enumerate() {
            let mut p = 0.0f32;
            for (w, x) in row.iter().zip(k.iter()) {
                p += arith.mul(*w, *x);
            }
            if p >= 0.0 {
                code[r / 64] |= 1 << (r % 64);
            }
        }
    }

    /// Add the tensors to a store under `prefix` (e.g. `blocks.0.att.ksh`).
    pub fn save(&self, prefix: &str, store: &mut TensorStore) {
        let (h, b, m, c) = (self.heads, self.bits, self.anchors, self.dim);
        store.insert(format!("{prefix}.A"), vec![h, b, m], self.a.clone());
        store.insert(
            format!("{prefix}.anchor"),
            vec![h, m, c],
            self.anchor.clone(),
        );
        store.insert(format!("{prefix}.mvec"), vec![h, m], self.mu.clone());
    }

    /// Read a learned hash from a store; `None` when `{prefix}.A` is absent (not learned yet).
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        heads: usize,
        bits: usize,
        anchors: usize,
        dim: usize,
    ) -> Result<Option<KernelHash>> {
        if store.raw(&format!("{prefix}.A")).is_none() {
            return Ok(None);
        }
        let a = store
            .get(&format!("{prefix}.A"), &[heads, bits, anchors])?
            .to_vec();
        let anchor = store
            .get(&format!("{prefix}.anchor"), &[heads, anchors, dim])?
            .to_vec();
        let mu = store
            .get(&format!("{prefix}.mvec"), &[heads, anchors])?
            .to_vec();
        Ok(Some(KernelHash {
            heads,
            bits,
            anchors,
            dim,
            a,
            anchor,
            mu,
        }))
    }
}

/// Count the hashing of `tokens` tokens of one head (`sigmas` bandwidth divisions).
fn count_hash(
    l: &mut Ledger,
    ids: &StepIds,
    arith: &Arith,
    hash: &KernelHash,
    tokens: u64,
    sigmas: u64,
) {
    let (m, c, b) = (hash.anchors as u64, hash.dim as u64, hash.bits as u64);
    let fmt = arith.acc_fmt();
    let bytes = arith.operand_bytes();
    let n = l.at(ids.id(step::L2NORM));
    arith.count_mac(n, tokens * c);
    n.add(Op::Sqrt, fmt, tokens);
    n.add(Op::Div, fmt, tokens);
    arith.count_mul(n, tokens * c);
    let d = l.at(ids.id(step::DISTANCE));
    arith.count_add(d, tokens * m * c); // x - a
    arith.count_mac(d, tokens * m * c); // (x - a)^2 accumulated
    d.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        tokens * m * c * bytes,
    );
    // Per token, every anchor; then the bandwidths and the projection rows.
    let per_token = |n: u64| (0..tokens).flat_map(move |_| 0..n as u32);
    d.weight_rows(m as usize, per_token(m), c * bytes);
    let bw = l.at(ids.id(step::BANDWIDTH));
    arith.count_add(bw, tokens * m);
    bw.add(Op::Div, fmt, sigmas);
    let k = l.at(ids.id(step::KERNEL));
    arith.count_mul(k, tokens * m);
    k.add(Op::Exp, fmt, tokens * m);
    arith.count_add(k, tokens * m);
    k.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        tokens * m * bytes,
    );
    k.weight_rows(1, per_token(1), m * bytes);
    let p = l.at(ids.id(step::PROJECT));
    arith.count_mac(p, tokens * m * b);
    p.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Weight,
        tokens * m * b * bytes,
    );
    p.weight_rows(m as usize, per_token(m), b * bytes);
    l.at(ids.id(step::SIGN)).add(Op::Cmp, fmt, tokens * b);
}

/// Scratch for one head.
#[derive(Clone, Debug)]
struct Scratch {
    xn: Vec<f32>,
    d2: Vec<f32>,
    k: Vec<f32>,
    num: Vec<f32>,
    code: Vec<u64>,
}

impl Scratch {
    fn new(hash: &KernelHash, tokens: usize) -> Scratch {
        Scratch {
            xn: vec![0.0; hash.dim],
            d2: vec![0.0; hash.anchors * tokens.max(1)],
            k: vec![0.0; hash.anchors],
            num: vec![0.0; hash.dim],
            code: vec![0; hash.bits.div_ceil(64)],
        }
    }
}

/// The codes of `n` tokens of head `h`, with the bandwidth of this input (full form). Counted.
#[allow(clippy::too_many_arguments)]
pub fn hash_full(
    qk: &[f32],
    n: usize,
    h: usize,
    hash: &KernelHash,
    codes: &mut Codes,
    arith: &Arith,
    l: &mut Ledger,
    ids: &StepIds,
) {
    let (d, c, m) = (hash.heads * hash.dim, hash.dim, hash.anchors);
    let mut sc = Scratch::new(hash, n);
    let mut total = 0.0f32;
    for i in 0..n {
        l2_normalise(&qk[i * d + h * c..i * d + (h + 1) * c], &mut sc.xn, arith);
        total += hash.distances(h, &sc.xn, &mut sc.d2[i * m..(i + 1) * m], arith);
    }
    // sigma = total / (n m); scale = -1 / (2 sigma) = -(n m) / (2 total): one division.
    let scale = -((n * m) as f32) / (2.0 * total);
    for i in 0..n {
        hash.code_from(
            h,
            &sc.d2[i * m..(i + 1) * m],
            scale,
            &mut sc.k,
            codes.token_mut(i),
            arith,
        );
    }
    count_hash(l, ids, arith, hash, n as u64, 1);
}

/// Full (non-causal) hashed attention over `n` tokens: `qk` is the shared query/key projection.
#[allow(clippy::too_many_arguments)]
pub fn forward_full(
    qk: &[f32],
    v: &[f32],
    n: usize,
    hash: &KernelHash,
    norm: Normalisation,
    out: &mut [f32],
    arith: &Arith,
    l: &mut Ledger,
    ids: &StepIds,
) {
    let arith = &arith.at(crate::engine::arith::Site::Attention);
    let (b, c) = (hash.bits, hash.dim);
    let d = hash.heads * c;
    let bias = (b + 1) as f32;
    let mut codes = Codes::new(b, n);
    let mut ksum = vec![0.0f32; b];
    let mut ctx = vec![0.0f32; b * c];
    let mut vsum = vec![0.0f32; c];
    let mut num = vec![0.0f32; c];
    let mut den = [0.0f32];
    for h in 0..hash.heads {
        let off = h * c;
        hash_full(qk, n, h, hash, &mut codes, arith, l, ids);
        ksum.fill(0.0);
        ctx.fill(0.0);
        vsum.fill(0.0);
        for j in 0..n {
            let code = codes.token(j);
            signed_outer_into(code, b, &[1.0], &mut ksum);
            let vj = &v[j * d + off..j * d + off + c];
            signed_outer_into(code, b, vj, &mut ctx);
            if norm == Normalisation::Normalised {
                for (s, x) in vsum.iter_mut().zip(vj) {
                    *s += x;
                }
            }
        }
        if norm == Normalisation::Normalised {
            for s in vsum.iter_mut() {
                *s = arith.mul(*s, bias);
            }
        }
        let nc = n as f32 * bias;
        for i in 0..n {
            let code = codes.token(i);
            den[0] = 0.0;
            signed_rows_into(code, b, &ksum, 1, &mut den);
            let den = den[0] + nc;
            num.fill(0.0);
            signed_rows_into(code, b, &ctx, c, &mut num);
            let vi = &v[i * d + off..i * d + off + c];
            match norm {
                Normalisation::EcoformerCode => {
                    for (o, x) in num.iter_mut().zip(vi) {
                        *o += arith.mul(*x, bias);
                    }
                }
                Normalisation::Normalised => {
                    for (o, x) in num.iter_mut().zip(&vsum) {
                        *o += x;
                    }
                }
            }
            let inv = 1.0 / den;
            for (o, x) in out[i * d + off..i * d + off + c].iter_mut().zip(&num) {
                *o = arith.mul(*x, inv);
            }
        }
    }
    let (n, hh, b, c) = (n as u64, hash.heads as u64, b as u64, c as u64);
    arith.count_ac(l.at(ids.id(step::CODE_SUM)), hh * n * b);
    let dn = l.at(ids.id(step::DENOMINATOR));
    arith.count_ac(dn, hh * n * b);
    arith.count_add(dn, hh * n);
    arith.count_ac(l.at(ids.id(step::CONTEXT)), hh * n * b * c);
    let nu = l.at(ids.id(step::NUMERATOR));
    arith.count_ac(nu, hh * n * b * c);
    match norm {
        Normalisation::EcoformerCode => {
            arith.count_mul(nu, hh * n * c);
            arith.count_add(nu, hh * n * c);
        }
        Normalisation::Normalised => {
            arith.count_add(nu, hh * n * c); // sum_j v_j
            arith.count_mul(nu, hh * c); // c sum_j v_j
            arith.count_add(nu, hh * n * c);
        }
    }
    let dv = l.at(ids.id(step::DIVIDE));
    dv.add(Op::Div, arith.acc_fmt(), hh * n);
    arith.count_mul(dv, hh * n * c);
    let bytes = arith.operand_bytes();
    dv.mem(
        Op::Write,
        arith.fmt(),
        TensorClass::Activation,
        hh * n * c * bytes,
    );
    let cx = l.at(ids.id(step::CONTEXT));
    cx.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Activation,
        hh * n * c * bytes,
    );
}

/// Recurrent state of causal hashed attention, per head: running code sum, H^T V, sum of values,
/// and the running sum of squared anchor distances (for the running-mean bandwidth).
#[derive(Clone, Debug)]
pub struct EcoState {
    pub ksum: Vec<f32>,
    pub ctx: Vec<f32>,
    pub vsum: Vec<f32>,
    pub d2_sum: Vec<f32>,
    /// Tokens seen.
    pub tokens: usize,
    scratch: Scratch,
}

impl EcoState {
    pub fn new(hash: &KernelHash) -> EcoState {
        let (h, b, c) = (hash.heads, hash.bits, hash.dim);
        EcoState {
            ksum: vec![0.0; h * b],
            ctx: vec![0.0; h * b * c],
            vsum: vec![0.0; h * c],
            d2_sum: vec![0.0; h],
            tokens: 0,
            scratch: Scratch::new(hash, 1),
        }
    }

    /// The packed code of the last token of head `h` hashed by `forward_step` (for tests).
    pub fn last_code(&self) -> &[u64] {
        &self.scratch.code
    }
}

/// One token of causal hashed attention: hash the token (running-mean bandwidth), add its code
/// and value to the running sums, then read them with its own code.
#[allow(clippy::too_many_arguments)]
pub fn forward_step(
    qk: &[f32],
    v: &[f32],
    st: &mut EcoState,
    hash: &KernelHash,
    norm: Normalisation,
    out: &mut [f32],
    arith: &Arith,
    l: &mut Ledger,
    ids: &StepIds,
) {
    let arith = &arith.at(crate::engine::arith::Site::Attention);
    let (b, c, m) = (hash.bits, hash.dim, hash.anchors);
    let bias = (b + 1) as f32;
    st.tokens += 1;
    let t = st.tokens;
    let nc = t as f32 * bias;
    for h in 0..hash.heads {
        let off = h * c;
        let sc = &mut st.scratch;
        l2_normalise(&qk[off..off + c], &mut sc.xn, arith);
        st.d2_sum[h] += hash.distances(h, &sc.xn, &mut sc.d2[..m], arith);
        let scale = -((t * m) as f32) / (2.0 * st.d2_sum[h]);
        hash.code_from(h, &sc.d2[..m], scale, &mut sc.k, &mut sc.code, arith);
        let code = &sc.code;
        let ksum = &mut st.ksum[h * b..(h + 1) * b];
        let ctx = &mut st.ctx[h * b * c..(h + 1) * b * c];
        let vsum = &mut st.vsum[h * c..(h + 1) * c];
        let vt = &v[off..off + c];
        signed_outer_into(code, b, &[1.0], ksum);
        signed_outer_into(code, b, vt, ctx);
        let mut den = [0.0f32];
        signed_rows_into(code, b, ksum, 1, &mut den);
        let den = den[0] + nc;
        sc.num.fill(0.0);
        signed_rows_into(code, b, ctx, c, &mut sc.num);
        match norm {
            Normalisation::EcoformerCode => {
                for (o, x) in sc.num.iter_mut().zip(vt) {
                    *o += arith.mul(*x, bias);
                }
            }
            Normalisation::Normalised => {
                for ((o, s), x) in sc.num.iter_mut().zip(vsum.iter_mut()).zip(vt) {
                    *s += x;
                    *o += arith.mul(*s, bias);
                }
            }
        }
        let inv = 1.0 / den;
        for (o, x) in out[off..off + c].iter_mut().zip(&sc.num) {
            *o = arith.mul(*x, inv);
        }
    }
    let (hh, b, c) = (hash.heads as u64, b as u64, c as u64);
    count_hash(l, ids, arith, hash, hh, hh);
    arith.count_ac(l.at(ids.id(step::CODE_SUM)), hh * b);
    let dn = l.at(ids.id(step::DENOMINATOR));
    arith.count_ac(dn, hh * b);
    arith.count_add(dn, hh + 1); // + n c per head, and the running n c once per token
    arith.count_ac(l.at(ids.id(step::CONTEXT)), hh * b * c); // H^T V += h v^T
    let nu = l.at(ids.id(step::NUMERATOR));
    arith.count_ac(nu, hh * b * c); // h . (H^T V)
    match norm {
        Normalisation::EcoformerCode => {
            arith.count_mul(nu, hh * c);
            arith.count_add(nu, hh * c);
        }
        Normalisation::Normalised => {
            arith.count_add(nu, 2 * hh * c);
            arith.count_mul(nu, hh * c);
        }
    }
    let dv = l.at(ids.id(step::DIVIDE));
    dv.add(Op::Div, arith.acc_fmt(), hh);
    arith.count_mul(dv, hh * c);
    let vs = if norm == Normalisation::Normalised {
        c
    } else {
        0
    };
    let bytes = hh * (b + b * c + vs + 1) * arith.acc_fmt().bytes();
    let s = l.at(ids.id(step::STATE));
    s.mem(Op::Read, arith.acc_fmt(), TensorClass::State, bytes);
    s.mem(Op::Write, arith.acc_fmt(), TensorClass::State, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| normal(&mut rng)).collect()
    }

    /// The same hash with one f32 per code value (+1 / -1), no packing.
    fn unpacked_code(hash: &KernelHash, h: usize, x: &[f32], scale: f32) -> Vec<f32> {
        let c = hash.dim;
        let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
        let xn: Vec<f32> = x.iter().map(|v| v * (1.0 / norm)).collect();
        let k: Vec<f32> = (0..hash.anchors)
            .map(|j| {
                let a = &hash.anchors_head(h)[j * c..(j + 1) * c];
                let d: f32 = xn.iter().zip(a).map(|(p, q)| (p - q) * (p - q)).sum();
                (d * scale).exp() - hash.mu_head(h)[j]
            })
            .collect();
        (0..hash.bits)
            .map(|r| {
                let p: f32 = hash.a_head(h)[r * hash.anchors..(r + 1) * hash.anchors]
                    .iter()
                    .zip(&k)
                    .map(|(w, v)| w * v)
                    .sum();
                if p >= 0.0 { 1.0 } else { -1.0 }
            })
            .collect()
    }

    #[test]
    fn hash_is_invariant_to_packing() {
        let (heads, bits, m, c, n) = (2, 100, 7, 5, 9); // 100 bits: two words
        let hash = KernelHash::random(heads, bits, m, c, 3);
        let x = random(n * heads * c, 4);
        let mut l = Ledger::new();
        let ids = register(&mut l, "att");
        let arith = Arith::Exact;
        for h in 0..heads {
            let mut codes = Codes::new(bits, n);
            hash_full(&x, n, h, &hash, &mut codes, &arith, &mut l, &ids);
            // the bandwidth factor of this input, as hash_full computes it
            let mut total = 0.0f32;
            let mut sc = Scratch::new(&hash, 1);
            for i in 0..n {
                l2_normalise(
                    &x[i * heads * c + h * c..i * heads * c + (h + 1) * c],
                    &mut sc.xn,
                    &arith,
                );
                total += hash.distances(h, &sc.xn, &mut sc.d2, &arith);
            }
            let scale = -((n * m) as f32) / (2.0 * total);
            let unpacked: Vec<Vec<f32>> = (0..n)
                .map(|i| {
                    unpacked_code(
                        &hash,
                        h,
                        &x[i * heads * c + h * c..i * heads * c + (h + 1) * c],
                        scale,
                    )
                })
                .collect();
            for i in 0..n {
                let bits_of: Vec<f32> = (0..bits).map(|r| Codes::sign(codes.token(i), r)).collect();
                assert_eq!(bits_of, unpacked[i], "token {i} head {h}");
                for j in 0..n {
                    let dot: f32 = unpacked[i]
                        .iter()
                        .zip(&unpacked[j])
                        .map(|(a, b)| a * b)
                        .sum();
                    assert_eq!(
                        Codes::similarity(bits, codes.token(i), codes.token(j)),
                        dot as i64
                    );
                }
            }
        }
    }

    /// Direct O(N^2) code-similarity attention over the prefix of each token.
    fn direct(
        codes: &[Vec<u64>],
        v: &[f64],
        bits: usize,
        c: usize,
        norm: Normalisation,
        causal: bool,
    ) -> Vec<f64> {
        let n = codes.len();
        let bias = (bits + 1) as f64;
        let mut out = vec![0.0; n * c];
        for i in 0..n {
            let keys = if causal { i + 1 } else { n };
            let mut den = 0.0;
            for j in 0..keys {
                let s = Codes::similarity(bits, &codes[i], &codes[j]) as f64;
                den += s + bias;
                for e in 0..c {
                    let w = match norm {
                        Normalisation::Normalised => s + bias,
                        Normalisation::EcoformerCode => s + if i == j { bias } else { 0.0 },
                    };
                    out[i * c + e] += w * v[j * c + e];
                }
            }
            for e in 0..c {
                out[i * c + e] /= den;
            }
        }
        out
    }

    #[test]
    fn causal_running_sums_equal_direct_quadratic_evaluation() {
        let (bits, m, c, n) = (16, 6, 4, 12);
        let hash = KernelHash::random(1, bits, m, c, 8);
        let (qk, v) = (random(n * c, 9), random(n * c, 10));
        let arith = Arith::Exact;
        for norm in [Normalisation::Normalised, Normalisation::EcoformerCode] {
            let mut l = Ledger::new();
            let ids = register(&mut l, "att");
            let mut st = EcoState::new(&hash);
            let mut outs = vec![];
            let mut codes = vec![];
            for t in 0..n {
                let mut o = vec![0.0; c];
                forward_step(
                    &qk[t * c..(t + 1) * c],
                    &v[t * c..(t + 1) * c],
                    &mut st,
                    &hash,
                    norm,
                    &mut o,
                    &arith,
                    &mut l,
                    &ids,
                );
                outs.extend(o);
                codes.push(st.last_code().to_vec());
            }
            let want = direct(
                &codes,
                &v.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                bits,
                c,
                norm,
                true,
            );
            for (a, b) in outs.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-5, "{norm:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn full_form_equals_direct_evaluation_and_its_closed_form_counts() {
        let (heads, bits, m, c, n) = (3, 16, 5, 4, 10);
        let hash = KernelHash::random(heads, bits, m, c, 1);
        let d = heads * c;
        let (qk, v) = (random(n * d, 2), random(n * d, 3));
        let arith = Arith::Exact;
        for norm in [Normalisation::Normalised, Normalisation::EcoformerCode] {
            let mut l = Ledger::new();
            let ids = register(&mut l, "att");
            let mut out = vec![0.0; n * d];
            forward_full(&qk, &v, n, &hash, norm, &mut out, &arith, &mut l, &ids);
            for h in 0..heads {
                let mut codes = Codes::new(bits, n);
                let mut l2 = Ledger::new();
                let ids2 = register(&mut l2, "x");
                hash_full(&qk, n, h, &hash, &mut codes, &arith, &mut l2, &ids2);
                let cv: Vec<Vec<u64>> = (0..n).map(|i| codes.token(i).to_vec()).collect();
                let vh: Vec<f64> = (0..n)
                    .flat_map(|i| (0..c).map(move |e| (i, e)))
                    .map(|(i, e)| v[i * d + h * c + e] as f64)
                    .collect();
                let want = direct(&cv, &vh, bits, c, norm, false);
                for i in 0..n {
                    for e in 0..c {
                        assert!((out[i * d + h * c + e] as f64 - want[i * c + e]).abs() < 1e-5);
                    }
                }
            }
            // Full-convention closed form (per head, times H).
            let t = l.totals();
            let (nn, hh, b, m, c) = (n as u64, heads as u64, bits as u64, m as u64, c as u64);
            let (extra_add, extra_mul) = match norm {
                Normalisation::EcoformerCode => (nn * c, nn * c),
                Normalisation::Normalised => (2 * nn * c, c),
            };
            assert_eq!(t.op_total(Op::Mac), hh * (nn * c + nn * m * c + nn * m * b));
            assert_eq!(t.op_total(Op::Ac), hh * (2 * nn * b + 2 * nn * b * c));
            assert_eq!(
                t.op_total(Op::Add),
                hh * (nn * m * c + 2 * nn * m + nn + extra_add)
            );
            assert_eq!(
                t.op_total(Op::Mul),
                hh * (nn * c + nn * m + extra_mul + nn * c)
            );
            assert_eq!(t.op_total(Op::Div), hh * (2 * nn + 1));
            assert_eq!(t.op_total(Op::Exp), hh * nn * m);
            assert_eq!(t.op_total(Op::Sqrt), hh * nn);
            assert_eq!(t.op_total(Op::Cmp), hh * nn * b);
        }
    }
}
