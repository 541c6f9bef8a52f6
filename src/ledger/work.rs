//! Passes whose memory traffic a loop-nest mapping prices: the shape of the work, so that a
//! mapper can tile it over the memory levels (`hardware::passes`). The engine counts a pass's
//! traffic as if nothing were reused (`Work::traffic`, the upper figure) and files the pass.

use serde::{Deserialize, Serialize};

use super::{Op, TensorClass};

/// The largest extent of one dimension of a pass (a guard against corrupt ledger files).
pub const MAX_DIM: u64 = 1 << 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// y[n, k] = x[n, c] W[c, k] over `n` tokens of one layer, `bytes` per value: weights,
    /// input activations and output activations.
    Matmul { n: u64, c: u64, k: u64, bytes: u32 },
    /// Full attention of `heads` heads over `n` queries and `m` keys of `c` channels:
    /// o[n, c] = softmax(q[n, c] k[m, c]^T) v[m, c], the scores kept next to the arithmetic (as
    /// FlashAttention does); q, k, v and o are activations.
    Attention {
        heads: u64,
        n: u64,
        m: u64,
        c: u64,
        bytes: u32,
    },
    /// A convolution of `groups` independent groups, each of `c` input and `k` output channels,
    /// over `n` images (a batch's samples mapped together; 1 as the engine files it) of
    /// `h x w` with an `r x s` kernel, strides `sh x sw` and zero padding `ph x pw`, executed tap
    /// by tap (im2col): weights, input and output activations.
    Conv {
        groups: u64,
        c: u64,
        k: u64,
        h: u64,
        w: u64,
        r: u64,
        s: u64,
        sh: u64,
        sw: u64,
        ph: u64,
        pw: u64,
        bytes: u32,
        #[serde(default = "one_image", skip_serializing_if = "is_one_image")]
        n: u64,
    },
}

fn one_image() -> u64 {
    1
}

fn is_one_image(n: &u64) -> bool {
    *n == 1
}

impl Work {
    /// The bytes the engine counts for one pass, per (op, class), when nothing is reused: the
    /// weights once per token (a convolution: once per tap and output position); q once per query
    /// and k and v once per query-key pair.
    pub fn traffic(&self) -> Vec<(Op, TensorClass, u64)> {
        match *self {
            Work::Matmul { n, c, k, bytes } => {
                let b = bytes as u64;
                vec![
                    (Op::Read, TensorClass::Weight, n * c * k * b),
                    (Op::Read, TensorClass::Activation, n * c * b),
                    (Op::Write, TensorClass::Activation, n * k * b),
                ]
            }
            Work::Conv {
                groups,
                c,
                k,
                h,
                w,
                bytes,
                n,
                ..
            } => {
                let b = bytes as u64;
                let (p, q) = self.conv_out();
                vec![
                    (Op::Read, TensorClass::Weight, self.macs() * b),
                    (
                        Op::Read,
                        TensorClass::Activation,
                        n * groups * c * h * w * b,
                    ),
                    (
                        Op::Write,
                        TensorClass::Activation,
                        n * groups * k * p * q * b,
                    ),
                ]
            }
            Work::Attention {
                heads,
                n,
                m,
                c,
                bytes,
            } => {
                let b = bytes as u64;
                vec![
                    (
                        Op::Read,
                        TensorClass::Activation,
                        heads * n * (c + 2 * m * c) * b,
                    ),
                    (Op::Write, TensorClass::Activation, heads * n * c * b),
                ]
            }
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let dims: Vec<u64> = match *self {
            Work::Matmul { n, c, k, bytes } => vec![n, c, k, bytes as u64],
            Work::Attention {
                heads,
                n,
                m,
                c,
                bytes,
            } => vec![heads, n, m, c, bytes as u64],
            Work::Conv {
                groups,
                c,
                k,
                h,
                w,
                r,
                s,
                sh,
                sw,
                bytes,
                n,
                ..
            } => vec![groups, c, k, h, w, r, s, sh, sw, bytes as u64, n],
        };
        if dims.iter().any(|&d| d == 0 || d > MAX_DIM) {
            return Err(format!(
                "pass {self:?}: every extent must be between 1 and {MAX_DIM}"
            ));
        }
        if let Work::Conv {
            h, w, r, s, ph, pw, ..
        } = *self
            && (ph > MAX_DIM || pw > MAX_DIM || h + 2 * ph < r || w + 2 * pw < s)
        {
            return Err(format!(
                "pass {self:?}: the kernel is larger than the padded input"
            ));
        }
        Ok(())
    }

    /// The pass over `m` times its samples (a matrix product's rows, a convolution's images),
    /// as a batch maps them together; None for attention, whose operands belong to one sample.
    pub fn batched(self, m: u64) -> Option<Work> {
        let mut w = self;
        match &mut w {
            Work::Matmul { n, .. } | Work::Conv { n, .. } => *n = n.saturating_mul(m),
            Work::Attention { .. } => return None,
        }
        Some(w)
    }

    /// Output height and width of a convolution (1 x 1 for other passes).
    pub fn conv_out(&self) -> (u64, u64) {
        match *self {
            Work::Conv {
                h,
                w,
                r,
                s,
                sh,
                sw,
                ph,
                pw,
                ..
            } => (
                (h + 2 * ph).saturating_sub(r) / sh.max(1) + 1,
                (w + 2 * pw).saturating_sub(s) / sw.max(1) + 1,
            ),
            _ => (1, 1),
        }
    }

    /// Multiply-accumulates of one pass.
    pub fn macs(&self) -> u64 {
        match *self {
            Work::Matmul { n, c, k, .. } => n * c * k,
            Work::Attention { heads, n, m, c, .. } => heads * 2 * n * m * c,
            Work::Conv {
                groups,
                c,
                k,
                r,
                s,
                n,
                ..
            } => {
                let (p, q) = self.conv_out();
                n * groups * p * q * r * s * c * k
            }
        }
    }
}
