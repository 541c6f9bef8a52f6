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
}

impl Work {
    /// The bytes the engine counts for one pass, per (op, class), when nothing is reused: the
    /// weights once per token; q once per query and k and v once per query-key pair.
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
        };
        if dims.iter().any(|&d| d == 0 || d > MAX_DIM) {
            return Err(format!(
                "pass {self:?}: every extent must be between 1 and {MAX_DIM}"
            ));
        }
        Ok(())
    }
}
