//! Attention primitives that execute and count: full softmax attention, kernel linear attention
//! (elu + 1 features) and EcoFormer-style hashed attention (binary codes from a learned
//! kernel hash, attention from the codes with accumulations only).
//!
//! Every primitive comes in two forms: a full (non-causal) form over N tokens, for encoders, and
//! a causal token-by-token form with recurrent state (a K/V cache for softmax, running sums for
//! linear and hashed attention), for language models.
//!
//! Each step of the attention core counts into its own ledger layer under a prefix (for example
//! `blocks.0.att.core.scores`), so that a counting convention (`crate::convention`) can select
//! and re-label the measured counts step by step. The step names are the constants in [`step`].
//!
//! Layouts: queries, keys, values and outputs are row-major `[tokens, heads * head_dim]`; head
//! `h` owns columns `h * head_dim .. (h + 1) * head_dim`.

pub mod hashed;
pub mod ksh;
pub mod layer;
pub mod linear;
pub mod softmax;

use serde::{Deserialize, Serialize};

use crate::ledger::{LayerId, Ledger};

/// The names of the ledger layers of the attention steps (suffixes of the core's path).
pub mod step {
    // softmax attention
    pub const SCORES: &str = "scores";
    pub const SCALE: &str = "scale";
    pub const SOFTMAX: &str = "softmax";
    pub const MIX: &str = "mix";
    pub const CACHE: &str = "cache";
    // linear attention
    pub const FEATURE: &str = "feature";
    pub const STATE_UPDATE: &str = "state_update";
    pub const QUERY: &str = "query";
    // hashed attention: hashing
    pub const L2NORM: &str = "hash.l2norm";
    pub const DISTANCE: &str = "hash.distance";
    pub const BANDWIDTH: &str = "hash.bandwidth";
    pub const KERNEL: &str = "hash.kernel";
    pub const PROJECT: &str = "hash.project";
    pub const SIGN: &str = "hash.sign";
    // hashed attention: attention from codes
    pub const CODE_SUM: &str = "code_sum";
    pub const DENOMINATOR: &str = "denominator";
    pub const CONTEXT: &str = "context";
    pub const NUMERATOR: &str = "numerator";
    pub const DIVIDE: &str = "divide";
    /// Recurrent state traffic (running sums) of linear and hashed attention.
    pub const STATE: &str = "state";
}

/// How hashed attention turns code similarities into an average of values.
///
/// With codes h in {-1,+1}^b, the similarity is s_ij = h_i . h_j = b - 2 Hamming(h_i, h_j) in
/// [-b, b]; c = b + 1 makes every weight s_ij + c positive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Normalisation {
    /// `normalised` (default): o_i = sum_j (s_ij + c) v_j / sum_j (s_ij + c), a correctly
    /// normalised weighted average. Needs sum_j v_j (one add per value element) and its scale by c.
    #[default]
    Normalised,
    /// `ecoformer-code`: exactly what EcoFormer's code computes (`linear_attention_bias`):
    /// o_i = (sum_j s_ij v_j + c v_i) / sum_j (s_ij + c). The denominator has c once per key but
    /// the numerator adds c v_i (the token's own value) only, so the weights do not sum to one.
    EcoformerCode,
}

impl Normalisation {
    pub fn name(self) -> &'static str {
        match self {
            Normalisation::Normalised => "normalised",
            Normalisation::EcoformerCode => "ecoformer-code",
        }
    }

    /// The attention's name in run labels: `ecoformer-style` for picojoule's normalised variant,
    /// `ecoformer-code` for the released code's form.
    pub fn label(self) -> &'static str {
        match self {
            Normalisation::Normalised => "ecoformer-style",
            Normalisation::EcoformerCode => "ecoformer-code",
        }
    }

    pub fn parse(s: &str) -> Option<Normalisation> {
        match s {
            "normalised" => Some(Normalisation::Normalised),
            "ecoformer-code" => Some(Normalisation::EcoformerCode),
            _ => None,
        }
    }
}

/// Which attention a layer computes (the `attention` field of a transformer description).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttentionKind {
    Softmax,
    Linear,
    EcoFormer {
        bits: usize,
        anchors: usize,
        #[serde(default)]
        normalisation: Normalisation,
    },
}

impl AttentionKind {
    pub fn name(&self) -> &'static str {
        match self {
            AttentionKind::Softmax => "softmax",
            AttentionKind::Linear => "linear",
            AttentionKind::EcoFormer { normalisation, .. } => normalisation.label(),
        }
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if let AttentionKind::EcoFormer { bits, anchors, .. } = self {
            if *bits == 0 || *bits > 1024 {
                return Err(format!(
                    "attention bits must be between 1 and 1024, found {bits}"
                ));
            }
            if *anchors == 0 || *anchors > 4096 {
                return Err(format!(
                    "attention anchors must be between 1 and 4096, found {anchors}"
                ));
            }
        }
        Ok(())
    }
}

/// Heads and per-head width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    pub heads: usize,
    pub head_dim: usize,
}

impl Heads {
    pub fn dim(self) -> usize {
        self.heads * self.head_dim
    }
}

/// Ledger ids of the steps of one attention core, registered once under a prefix.
#[derive(Clone, Debug)]
pub struct StepIds {
    names: Vec<&'static str>,
    ids: Vec<LayerId>,
}

impl StepIds {
    pub fn register(l: &mut Ledger, prefix: &str, steps: &[&'static str]) -> StepIds {
        let ids = steps
            .iter()
            .map(|s| l.layer(&format!("{prefix}.{s}")))
            .collect();
        StepIds {
            names: steps.to_vec(),
            ids,
        }
    }

    /// The id of a step; panics on a step the core did not register (a programming error).
    #[inline]
    pub fn id(&self, step: &str) -> LayerId {
        let i = self
            .names
            .iter()
            .position(|n| *n == step)
            .unwrap_or_else(|| panic!("attention step `{step}` not registered"));
        self.ids[i]
    }
}

/// Bit-packed {-1,+1} codes: bit r of a token set means code value +1, clear means -1. Token `i`
/// owns the words `i * words .. (i + 1) * words`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Codes {
    pub bits: usize,
    pub words: usize,
    pub data: Vec<u64>,
}

impl Codes {
    pub fn new(bits: usize, tokens: usize) -> Codes {
        let words = bits.div_ceil(64);
        Codes {
            bits,
            words,
            data: vec![0; words * tokens],
        }
    }

    pub fn tokens(&self) -> usize {
        self.data.len().checked_div(self.words).unwrap_or(0)
    }

    pub fn token(&self, i: usize) -> &[u64] {
        &self.data[i * self.words..(i + 1) * self.words]
    }

    pub fn token_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.data[i * self.words..(i + 1) * self.words]
    }

    /// The code value (+1 or -1) of bit `r` of a packed code.
    #[inline]
    pub fn sign(code: &[u64], r: usize) -> f32 {
        if (code[r / 64] >> (r % 64)) & 1 == 1 {
            1.0
        } else {
            -1.0
        }
    }

    /// h_i . h_j = b - 2 Hamming(h_i, h_j), from the packed words (popcount of the XOR).
    pub fn similarity(bits: usize, a: &[u64], b: &[u64]) -> i64 {
        let hamming: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
        bits as i64 - 2 * hamming as i64
    }
}

/// Accumulate `sum_r code_r * rows[r]` into `acc` (rows of width `w`): each code bit adds or
/// subtracts one row, no multiplies. Returns nothing; the caller counts b * w accumulations.
#[inline]
pub(crate) fn signed_rows_into(code: &[u64], bits: usize, rows: &[f32], w: usize, acc: &mut [f32]) {
    for r in 0..bits {
        let row = &rows[r * w..(r + 1) * w];
        if (code[r / 64] >> (r % 64)) & 1 == 1 {
            for (a, x) in acc.iter_mut().zip(row) {
                *a += x;
            }
        } else {
            for (a, x) in acc.iter_mut().zip(row) {
                *a -= x;
            }
        }
    }
}

/// rows[r] += code_r * x for every bit r (the outer product of a code and a vector, as adds and
/// subtracts). The caller counts b * w accumulations.
#[inline]
pub(crate) fn signed_outer_into(code: &[u64], bits: usize, x: &[f32], rows: &mut [f32]) {
    let w = x.len();
    for r in 0..bits {
        let row = &mut rows[r * w..(r + 1) * w];
        if (code[r / 64] >> (r % 64)) & 1 == 1 {
            for (a, v) in row.iter_mut().zip(x) {
                *a += v;
            }
        } else {
            for (a, v) in row.iter_mut().zip(x) {
                *a -= v;
            }
        }
    }
}

pub(crate) use crate::weights::standard_normal as normal;
