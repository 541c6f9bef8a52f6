//! The arithmetic mode: one value passed to every primitive, so a model never branches on it.

use serde::{Deserialize, Serialize};

use crate::ledger::{Counts, Fmt, Op, FP32};

/// How multiplies and accumulations are carried out.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
pub enum Arith {
    /// IEEE fp32 throughout.
    #[default]
    Exact,
}

impl Arith {
    /// Number format of multiplies and of stored operands (weights, activations).
    pub fn fmt(&self) -> Fmt {
        match self {
            Arith::Exact => FP32,
        }
    }

    /// Number format of accumulations.
    pub fn acc_fmt(&self) -> Fmt {
        match self {
            Arith::Exact => FP32,
        }
    }

    /// Bytes of one stored operand.
    pub fn operand_bytes(&self) -> u64 {
        self.fmt().bytes()
    }

    /// An element-wise product.
    #[inline(always)]
    pub fn mul(&self, a: f32, b: f32) -> f32 {
        match self {
            Arith::Exact => a * b,
        }
    }

    /// Count `n` element-wise products.
    #[inline]
    pub fn count_mul(&self, c: &mut Counts, n: u64) {
        c.add(Op::Mul, self.fmt(), n);
    }

    /// Count `n` multiply-accumulates of a dot product.
    #[inline]
    pub fn count_mac(&self, c: &mut Counts, n: u64) {
        c.add(Op::Mac, self.fmt(), n);
    }

    /// Count `n` accumulate-only operations (a weight added into an accumulator).
    #[inline]
    pub fn count_ac(&self, c: &mut Counts, n: u64) {
        c.add(Op::Ac, self.acc_fmt(), n);
    }

    /// Count `n` element-wise adds.
    #[inline]
    pub fn count_add(&self, c: &mut Counts, n: u64) {
        c.add(Op::Add, self.acc_fmt(), n);
    }
}
