//! L-Mul: approximate multiplication with one integer add on the bit patterns
//! (Luo & Sun, "Addition is All You Need for Energy-efficient Language Models",
//! arXiv:2410.00907).
//!
//! For magnitudes `A`, `B` (bit patterns without the sign):
//! `|R| = |A| + |B| - OFFSET(e, m)` and `sign(R) = sign(A) XOR sign(B)`, with
//! `OFFSET = (bias << m) - (1 << (m - l(m)))`. Because this is an integer add, a
//! carry out of the mantissa field moves into the exponent: with
//! `S = x_m + y_m + 2^-l(m)`, the result is `(1 + S)·2^(xe+ye)` when `S < 1` and
//! `2·S·2^(xe+ye)` when `1 <= S < 2` (Mitchell's log-linear approximation plus an
//! offset). For `m >= 4` the correction can push `S` to 2 or beyond (both
//! mantissas near 1); the add then carries twice and gives `4·(S-1)·2^(xe+ye)`.
//! [`lmul_formula`] evaluates the paper's formula `(1 + S)·2^(xe+ye)` literally
//! instead, which differs exactly in the carry cases.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::format::{FloatFormat, pow2, round_f32_bits};

/// What L-Mul does with special operands and out-of-range results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LmulPolicy {
    /// IEEE-like (default), checked in this order:
    /// * NaN operand: NaN.
    /// * ±inf operand: ±inf, or NaN if the other operand is ±0. A subnormal is
    ///   nonzero here, so inf × subnormal = ±inf.
    /// * zero or subnormal operand: signed zero (subnormals are flushed).
    /// * result exponent field <= 0 (underflow, including the subnormal range):
    ///   signed zero.
    /// * overflow: ±max finite for FN formats, ±inf for IEEE-style formats
    ///   (regardless of the format's quantisation [`Overflow`](super::Overflow) mode).
    ///
    /// NaN results are the format's canonical quiet NaN with the XOR sign.
    #[default]
    Ieee,
    /// The paper's fp32 PTX kernel generalised to any format: add and subtract
    /// modulo `2^(e+m)` on the magnitudes, then OR the XOR sign. No special
    /// cases at all (0 × 1.0 is not 0; overflow and underflow wrap).
    Raw,
}

impl FromStr for LmulPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ieee" => Ok(Self::Ieee),
            "raw" => Ok(Self::Raw),
            other => Err(format!("unknown L-Mul policy {other:?}; valid: ieee, raw")),
        }
    }
}

/// `l(m)`: the correction term is `2^-l(m)`. `m` for `m <= 3`, 3 for `m = 4`,
/// 4 for `m > 4` (chosen empirically by the paper).
#[inline]
pub fn l_of_m(m: u32) -> u32 {
    match m {
        0..=3 => m,
        4 => 3,
        _ => 4,
    }
}

/// The constant subtracted from `|A| + |B|`: `(bias << m) - (1 << (m - l(m)))`.
/// E.g. fp32 `0x3F780000`, bf16 `0x3F78`, fp16 `0x3BC0`, e4m3 `0x37`.
#[inline]
pub fn offset(fmt: FloatFormat) -> u32 {
    let m = fmt.man_bits();
    // bias >= 1 (enforced by FloatFormat), so this never goes below zero.
    (fmt.bias() << m) - (1 << (m - l_of_m(m)))
}

/// Width in bits of the integer adder one L-Mul needs: `e + m`.
pub fn int_add_width(fmt: FloatFormat) -> u32 {
    fmt.exp_bits() + fmt.man_bits()
}

/// L-Mul of two bit patterns of `fmt` (bits above `fmt.bits()` are ignored).
/// Never panics; see [`LmulPolicy`] for special cases.
#[inline]
pub fn lmul_bits(a: u32, b: u32, fmt: FloatFormat, policy: LmulPolicy) -> u32 {
    Kernel::new(fmt).apply(a, b, policy)
}

/// The per-format constants of an L-Mul, computed once so that inner loops
/// only add, compare and mask.
#[derive(Clone, Copy, Debug)]
struct Kernel {
    fmt: FloatFormat,
    mag: u32,
    sign: u32,
    offset: u32,
    /// Smallest normal magnitude.
    min_normal: u32,
    /// Magnitudes from here up are inf or NaN (IEEE) or NaN (FN).
    special_min: u32,
    /// `|A| + |B|` below this underflows (exponent field <= 0).
    sum_underflow: u32,
    /// `|A| + |B|` above this overflows.
    sum_overflow: u32,
    /// Result magnitude on overflow: inf (IEEE) or max finite (FN).
    overflow_mag: u32,
}

impl Kernel {
    #[inline]
    fn new(fmt: FloatFormat) -> Self {
        let offset = offset(fmt);
        let min_normal = 1 << fmt.man_bits();
        let max_finite = fmt.max_finite_mag();
        Self {
            fmt,
            mag: fmt.mag_mask(),
            sign: fmt.sign_mask(),
            offset,
            min_normal,
            special_min: fmt.inf_mag().unwrap_or(fmt.mag_mask()),
            // Both sums stay below 2^32: offset and max_finite are < 2^31.
            sum_underflow: offset + min_normal,
            sum_overflow: max_finite + offset,
            overflow_mag: fmt.inf_mag().unwrap_or(max_finite),
        }
    }

    #[inline(always)]
    fn apply(self, a: u32, b: u32, policy: LmulPolicy) -> u32 {
        let sign = (a ^ b) & self.sign;
        let (ma, mb) = (a & self.mag, b & self.mag);
        match policy {
            Policy::Raw => sign | (ma.wrapping_add(mb).wrapping_sub(self.offset) & self.mag),
            Policy::Ieee => sign | self.ieee_mag(ma, mb),
        }
    }

    #[inline(always)]
    fn ieee_mag(self, ma: u32, mb: u32) -> u32 {
        let normal = |x: u32| x >= self.min_normal && x < self.special_min;
        if !(normal(ma) && normal(mb)) {
            return lmul_mag_ieee(ma, mb, self.fmt);
        }
        let sum = ma + mb; // each < 2^31: no overflow
        if sum < self.sum_underflow {
            0
        } else if sum > self.sum_overflow {
            self.overflow_mag
        } else {
            sum - self.offset
        }
    }
}

use LmulPolicy as Policy;

/// Magnitude of an L-Mul under [`LmulPolicy::Ieee`].
#[inline]
fn lmul_mag_ieee(ma: u32, mb: u32, fmt: FloatFormat) -> u32 {
    let inf = fmt.inf_mag();
    // An IEEE format with m = 0 cannot encode NaN; infinity stands in for it.
    let nan = fmt.nan_bits().or(inf).unwrap_or(0);
    if fmt.is_nan_bits(ma) || fmt.is_nan_bits(mb) {
        return nan;
    }
    if inf.is_some_and(|i| ma == i || mb == i) {
        return if ma == 0 || mb == 0 {
            nan
        } else {
            inf.unwrap_or(nan)
        };
    }
    let min_normal = 1u32 << fmt.man_bits();
    if ma < min_normal || mb < min_normal {
        return 0;
    }
    // Operands are < 2^31 each, so i64 holds every intermediate.
    let sum = i64::from(ma) + i64::from(mb) - i64::from(offset(fmt));
    if sum < i64::from(min_normal) {
        0
    } else if sum > i64::from(fmt.max_finite_mag()) {
        inf.unwrap_or(fmt.max_finite_mag())
    } else {
        sum as u32
    }
}

/// L-Mul of two `f32` values in `fmt`: both inputs are first rounded (RNE) into
/// `fmt`, the result is decoded back to `f32`. Allocation-free, with fast paths
/// for fp32 and other `e8`/bias-127 IEEE formats (bf16, `lmul-k`).
#[inline]
pub fn lmul_f32(a: f32, b: f32, fmt: FloatFormat, policy: LmulPolicy) -> f32 {
    let kernel = Kernel::new(fmt);
    match fmt.f32_fast_shift() {
        Some(shift) => {
            let (qa, qb) = (
                round_f32_bits(a.to_bits(), shift),
                round_f32_bits(b.to_bits(), shift),
            );
            f32::from_bits(kernel.apply(qa, qb, policy) << shift)
        }
        None => fmt.decode_f32(kernel.apply(fmt.quantize_f32(a), fmt.quantize_f32(b), policy)),
    }
}

/// [`lmul_f32`] with the per-format constants computed once, for inner loops.
#[derive(Clone, Copy, Debug)]
pub struct PreparedLmul {
    kernel: Kernel,
    shift: Option<u32>,
    policy: LmulPolicy,
    /// Lanes for formats narrower than f32 (fp16, fp8) under the IEEE policy.
    narrow: Option<NarrowLmul>,
}

/// An L-Mul in a narrow format `F` computed on f32 lanes: operands rounded into `F` (as f32
/// values), then the L-Mul of `e8mM` (the f32 layout with `F`'s mantissa width, whose offset
/// differs from `F`'s only in the bias, which the exponent sum cancels). Where the operands
/// and the result are normal values of `F`, the two give the same value; every other lane
/// is redone by the scalar path in `F`.
#[derive(Clone, Copy, Debug)]
struct NarrowLmul {
    lanes: crate::numerics::format::NarrowLanes,
    e8: Kernel,
    shift: u32,
    min_normal: f32,
    max_finite: f32,
    /// `F`'s overflow result magnitude (infinity or the largest finite value) as an f32.
    overflow: f32,
}

impl NarrowLmul {
    /// A magnitude the lanes take: a normal finite value of the format.
    #[inline(always)]
    fn in_range(self, a: f32) -> bool {
        a >= self.min_normal && a <= self.max_finite
    }

    /// `x` rounded into the format when the lanes take it as an operand.
    fn operand(self, x: f32) -> Option<f32> {
        use crate::numerics::format::NarrowLanes;
        let qx = if NarrowLanes::is_special(x) {
            f32::NAN
        } else {
            self.lanes.value(x)
        };
        self.in_range(qx.abs()).then_some(qx)
    }

    /// The product of an operand of sign `sx` and magnitude `mx` (its e8 pattern shifted right
    /// by `shift`) with a rounded operand `qw` the lanes take.
    #[inline(always)]
    fn product(self, sx: u32, mx: u32, qw: f32) -> f32 {
        let k = self.e8;
        let bw = qw.to_bits() >> self.shift;
        // Both operands are normal f32 values here, far from e8's limits: the sum minus the
        // offset is the product's pattern in e8; a value below `F`'s smallest normal
        // underflows to zero in `F`, one above its largest finite value overflows, as the
        // scalar kernel's sum thresholds say.
        let sign = sx ^ (bw & k.sign);
        let mag = (mx + (bw & k.mag)).wrapping_sub(k.offset) & k.mag;
        let a = f32::from_bits(mag << self.shift);
        let a = if a < self.min_normal { 0.0 } else { a };
        let a = if a > self.max_finite {
            self.overflow
        } else {
            a
        };
        f32::from_bits(a.to_bits() | (sign << self.shift))
    }
}

/// One input's L-Mul in an e8 format (bias 127) with weights already rounded, as a per-lane
/// function: the integer add on the f32 patterns.
#[derive(Clone, Copy, Debug)]
pub struct E8Lane {
    shift: u32,
    sx: u32,
    mx: u32,
    kernel: Kernel,
}

/// One input's L-Mul in a narrow format with weights already rounded, through the e8 kernel of
/// its mantissa width ([`NarrowLmul`]).
#[derive(Clone, Copy, Debug)]
pub struct NarrowLane {
    n: NarrowLmul,
    sx: u32,
    mx: u32,
}

/// The lane forms of four inputs' L-Muls, for kernels that fuse four inputs per pass over the
/// outputs. Each `product` gives `(mul_f32(x, q), false)` for a weight `q` already in the
/// format, or `(_, true)` when `q` is outside the lanes (under the IEEE policy, an infinite or
/// NaN weight): that product comes from the scalar path.
// Built once per four inputs and kept on the stack: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Lanes4 {
    E8Ieee([E8Lane; 4]),
    E8Raw([E8Lane; 4]),
    Narrow([NarrowLane; 4]),
}

impl E8Lane {
    #[inline(always)]
    pub fn product_ieee(self, q: f32) -> (f32, bool) {
        let k = self.kernel;
        let qw = q.to_bits() >> self.shift;
        let mw = qw & k.mag;
        let sign = self.sx ^ (qw & k.sign);
        let sum = self.mx + mw; // each < 2^31: no overflow
        let inner = if sum > k.sum_overflow {
            k.overflow_mag
        } else {
            sum.wrapping_sub(k.offset)
        };
        // A zero or subnormal weight gives a signed zero (as the scalar kernel's IEEE policy);
        // only infinities and NaNs leave the lanes.
        let mag = if sum < k.sum_underflow || mw < k.min_normal {
            0
        } else {
            inner
        };
        (
            f32::from_bits((sign | mag) << self.shift),
            mw >= k.special_min,
        )
    }

    #[inline(always)]
    pub fn product_raw(self, q: f32) -> (f32, bool) {
        let k = self.kernel;
        let qw = q.to_bits() >> self.shift;
        let sign = self.sx ^ (qw & k.sign);
        let mag = (self.mx + (qw & k.mag)).wrapping_sub(k.offset) & k.mag;
        (f32::from_bits((sign | mag) << self.shift), false)
    }
}

impl NarrowLane {
    /// The lane form of an L-Mul by `x`, or None when `x` is not a normal value of the format.
    fn of(n: NarrowLmul, x: f32) -> Option<NarrowLane> {
        let bx = n.operand(x)?.to_bits() >> n.shift;
        Some(NarrowLane {
            n,
            sx: bx & n.e8.sign,
            mx: bx & n.e8.mag,
        })
    }

    #[inline(always)]
    pub fn product(self, q: f32) -> (f32, bool) {
        use crate::numerics::format::NarrowLanes;
        // A zero or subnormal weight gives a signed zero (as the scalar kernel's IEEE policy);
        // only infinities and NaNs leave the lanes (a rounded finite weight is in range).
        let p = self.n.product(self.sx, self.mx, q);
        let zero = f32::from_bits(p.to_bits() & 0x8000_0000);
        let p = if q.abs() < self.n.min_normal { zero } else { p };
        (p, NarrowLanes::is_special(q))
    }
}

impl PreparedLmul {
    /// Whether products from operands rounded beforehand equal the products of the raw
    /// operands: always but for the raw policy in a narrow format, where a NaN operand's
    /// pattern (which the raw policy adds as it is) changes on the way through f32.
    pub fn takes_rounded_operands(&self) -> bool {
        self.shift.is_some() || self.policy == Policy::Ieee
    }

    /// The lane forms of `mul_f32(x[k], _)`, or None when the format has no lanes or, under
    /// the IEEE policy, an input is not a normal value of it.
    pub fn lanes4(&self, x: [f32; 4]) -> Option<Lanes4> {
        let Some(shift) = self.shift else {
            let n = self.narrow?;
            let mut ls = [NarrowLane { n, sx: 0, mx: 0 }; 4];
            for (l, &v) in ls.iter_mut().zip(&x) {
                *l = NarrowLane::of(n, v)?;
            }
            return Some(Lanes4::Narrow(ls));
        };
        let mut ls = [E8Lane {
            shift,
            sx: 0,
            mx: 0,
            kernel: self.kernel,
        }; 4];
        for (l, &v) in ls.iter_mut().zip(&x) {
            *l = self.e8_lane(shift, v)?;
        }
        Some(if self.policy == Policy::Raw {
            Lanes4::E8Raw(ls)
        } else {
            Lanes4::E8Ieee(ls)
        })
    }

    /// The e8 lane form of `mul_f32(x, _)`, or None when, under the IEEE policy, `x` is not a
    /// normal value of the format.
    fn e8_lane(&self, shift: u32, x: f32) -> Option<E8Lane> {
        let k = self.kernel;
        let qx = round_f32_bits(x.to_bits(), shift);
        let mx = qx & k.mag;
        let normal = mx >= k.min_normal && mx < k.special_min;
        (self.policy == Policy::Raw || normal).then_some(E8Lane {
            shift,
            sx: qx & k.sign,
            mx,
            kernel: k,
        })
    }
}

impl PreparedLmul {
    pub fn new(fmt: FloatFormat, policy: LmulPolicy) -> Self {
        let shift = fmt.f32_fast_shift();
        let narrow = match (shift, policy) {
            (None, Policy::Ieee) => {
                crate::numerics::format::NarrowLanes::new(fmt).and_then(|lanes| {
                    let e8 = FloatFormat::parse(&format!("e8m{}", fmt.man_bits())).ok()?;
                    Some(NarrowLmul {
                        lanes,
                        e8: Kernel::new(e8),
                        shift: e8.f32_fast_shift()?,
                        min_normal: 2f32.powi(1 - fmt.bias() as i32),
                        max_finite: fmt.decode_f32(fmt.max_finite_mag()),
                        overflow: fmt.decode_f32(Kernel::new(fmt).overflow_mag),
                    })
                })
            }
            _ => None,
        };
        PreparedLmul {
            kernel: Kernel::new(fmt),
            shift,
            policy,
            narrow,
        }
    }

    /// The right shift that rounds an f32 pattern into the operand format, for formats with the
    /// f32 layout (e8, bias 127); None for the others.
    pub fn operand_shift(&self) -> Option<u32> {
        self.shift
    }

    /// The operand rounding on vector lanes for formats narrower than f32 (None for the e8
    /// formats, which round by [`PreparedLmul::operand_shift`]).
    pub fn operand_lanes(&self) -> Option<crate::numerics::format::NarrowLanes> {
        match self.shift {
            Some(_) => None,
            None => crate::numerics::format::NarrowLanes::new(self.kernel.fmt),
        }
    }

    /// An operand rounded into the L-Mul format (RNE), as an `f32`.
    #[inline(always)]
    pub fn round_operand(&self, a: f32) -> f32 {
        match self.shift {
            Some(shift) => f32::from_bits(round_f32_bits(a.to_bits(), shift) << shift),
            None => self.kernel.fmt.round_f32(a),
        }
    }

    /// The same value as `lmul_f32(a, b, fmt, policy)`.
    #[inline(always)]
    pub fn mul_f32(&self, a: f32, b: f32) -> f32 {
        match self.shift {
            Some(shift) => {
                let (qa, qb) = (
                    round_f32_bits(a.to_bits(), shift),
                    round_f32_bits(b.to_bits(), shift),
                );
                f32::from_bits(self.kernel.apply(qa, qb, self.policy) << shift)
            }
            None => {
                let fmt = self.kernel.fmt;
                fmt.decode_f32(self.kernel.apply(
                    fmt.quantize_f32(a),
                    fmt.quantize_f32(b),
                    self.policy,
                ))
            }
        }
    }
}

impl PreparedLmul {
    /// `out[i] = self.mul_f32(x, w[i])` for every `i`, bit for bit. For formats with the f32
    /// layout (e8, bias 127: bf16, `lmul-k`) and narrow formats under the IEEE policy, the
    /// lanes of [`Lanes4`] run 8 at a time (a zero or subnormal weight gives a signed zero); a
    /// lane with an infinite or NaN weight is redone by the scalar path, as is every lane when
    /// `x` is not normal.
    ///
    /// `ROUNDED`: the weights are already rounded into the operand format (the lanes skip
    /// rounding them; the values are the same, the rounding being idempotent).
    #[inline(always)]
    pub fn mul_slice<const ROUNDED: bool>(&self, x: f32, w: &[f32], out: &mut [f32]) {
        debug_assert_eq!(w.len(), out.len());
        let Some(shift) = self.shift else {
            match self.narrow {
                Some(n) => self.mul_slice_narrow::<ROUNDED>(n, x, w, out),
                None => {
                    for (o, &wv) in out.iter_mut().zip(w) {
                        *o = self.mul_f32(x, wv);
                    }
                }
            }
            return;
        };
        let lanes = crate::numerics::format::RoundLanes::new(shift);
        let Some(l) = self.e8_lane(shift, x) else {
            for (o, &wv) in out.iter_mut().zip(w) {
                *o = self.mul_f32(x, wv);
            }
            return;
        };
        let rounded = |wv: f32| if ROUNDED { wv } else { lanes.value(wv) };
        let raw = self.policy == Policy::Raw;
        let mut wc = w.chunks_exact(8);
        let mut oc = out.chunks_exact_mut(8);
        for (w8, o8) in (&mut wc).zip(&mut oc) {
            let mut odd = false;
            if raw {
                for (o, &wv) in o8.iter_mut().zip(w8) {
                    *o = l.product_raw(rounded(wv)).0;
                }
            } else {
                for (o, &wv) in o8.iter_mut().zip(w8) {
                    let (p, special) = l.product_ieee(rounded(wv));
                    *o = p;
                    odd |= special;
                }
            }
            if odd {
                for (o, &wv) in o8.iter_mut().zip(w8) {
                    if l.product_ieee(rounded(wv)).1 {
                        *o = self.mul_f32(x, wv);
                    }
                }
            }
        }
        for (o, &wv) in oc.into_remainder().iter_mut().zip(wc.remainder()) {
            *o = self.mul_f32(x, wv);
        }
    }
}

impl PreparedLmul {
    /// [`PreparedLmul::mul_slice`] for a narrow format, through [`NarrowLmul`].
    #[inline(always)]
    fn mul_slice_narrow<const ROUNDED: bool>(
        &self,
        n: NarrowLmul,
        x: f32,
        w: &[f32],
        out: &mut [f32],
    ) {
        use crate::numerics::format::NarrowLanes;
        let Some(l) = NarrowLane::of(n, x) else {
            for (o, &wv) in out.iter_mut().zip(w) {
                *o = self.mul_f32(x, wv);
            }
            return;
        };
        // A weight that is not finite leaves the lanes (rounding it is not lane work).
        let lane = |wv: f32| {
            let (p, special) = l.product(if ROUNDED { wv } else { n.lanes.value(wv) });
            (p, special | NarrowLanes::is_special(wv))
        };
        let mut wc = w.chunks_exact(8);
        let mut oc = out.chunks_exact_mut(8);
        for (w8, o8) in (&mut wc).zip(&mut oc) {
            let mut odd = false;
            for (o, &wv) in o8.iter_mut().zip(w8) {
                let (p, special) = lane(wv);
                *o = p;
                odd |= special;
            }
            if odd {
                for (o, &wv) in o8.iter_mut().zip(w8) {
                    if lane(wv).1 {
                        *o = self.mul_f32(x, wv);
                    }
                }
            }
        }
        for (o, &wv) in oc.into_remainder().iter_mut().zip(wc.remainder()) {
            *o = self.mul_f32(x, wv);
        }
    }
}

/// The paper's formula evaluated literally: `±(1 + x_m + y_m + 2^-l(m))·2^(xe+ye)`
/// for two bit patterns of `fmt`, as an exact `f64` (no rounding into `fmt`, no
/// underflow or overflow clamping). Unlike [`lmul_bits`] it does not let a
/// mantissa carry double the result: for `S = x_m + y_m + 2^-l(m) >= 1` it gives
/// `(1 + S)·2^(xe+ye)` where the bit version gives `2·S·2^(xe+ye)`
/// (e.g. fp32 1.5 × 1.5: 2.0625 here, 2.125 there). Special operands follow
/// [`LmulPolicy::Ieee`] (zero/subnormal → ±0, NaN → NaN, ∞ → ±∞ or NaN).
pub fn lmul_formula(a: u32, b: u32, fmt: FloatFormat) -> f64 {
    let mag = fmt.mag_mask();
    let negative = (a ^ b) & fmt.sign_mask() != 0;
    let (ma, mb) = (a & mag, b & mag);
    let min_normal = 1u32 << fmt.man_bits();
    let v = if fmt.is_nan_bits(ma) || fmt.is_nan_bits(mb) {
        f64::NAN
    } else if fmt.is_inf_bits(ma) || fmt.is_inf_bits(mb) {
        if ma == 0 || mb == 0 {
            f64::NAN
        } else {
            f64::INFINITY
        }
    } else if ma < min_normal || mb < min_normal {
        0.0
    } else {
        let m = fmt.man_bits();
        let (sa, ea) = fmt.significand_exponent(ma);
        let (sb, eb) = fmt.significand_exponent(mb);
        // In units of 2^-m: 1 + x_m + y_m + 2^-l(m) = sa + sb - 2^m + 2^(m-l).
        let units = u64::from(sa) + u64::from(sb) - (1u64 << m) + (1u64 << (m - l_of_m(m)));
        // sa·2^ea = (1 + x_m)·2^(xe) with ea = xe - m, so xe + ye - m = ea + eb + m.
        units as f64 * pow2(ea + eb + m as i32)
    };
    if negative { -v } else { v }
}

/// `out = W·x` with every product an L-Mul in `fmt` (accumulated in `f32`).
/// `w` is row-major `rows × cols`. Errors if the slice lengths do not match.
pub fn matvec_lmul(
    w: &[f32],
    x: &[f32],
    out: &mut [f32],
    rows: usize,
    cols: usize,
    fmt: FloatFormat,
    policy: LmulPolicy,
) -> Result<(), String> {
    check_matvec_dims(w.len(), x.len(), out.len(), rows, cols)?;
    if cols == 0 {
        out.fill(0.0);
        return Ok(());
    }
    // Quantise the shared vector once; weights are quantised on the fly as an
    // emulator streaming full-precision weights would.
    let xq: Vec<u32> = x.iter().map(|&v| fmt.quantize_f32(v)).collect();
    let kernel = Kernel::new(fmt);
    match fmt.f32_fast_shift() {
        // f32-like formats: quantise and decode by shifting the f32 pattern.
        Some(shift) => matvec_rows(w, &xq, out, cols, |wv, xb| {
            let r = kernel.apply(round_f32_bits(wv.to_bits(), shift), xb, policy);
            f32::from_bits(r << shift)
        }),
        None => matvec_rows(w, &xq, out, cols, |wv, xb| {
            fmt.decode_f32(kernel.apply(fmt.quantize_f32(wv), xb, policy))
        }),
    }
    Ok(())
}

/// Row loop shared by the matvec variants; `cols > 0`.
#[inline]
fn matvec_rows<F: Fn(f32, u32) -> f32>(
    w: &[f32],
    xq: &[u32],
    out: &mut [f32],
    cols: usize,
    product: F,
) {
    for (row, o) in w.chunks_exact(cols).zip(out.iter_mut()) {
        *o = row
            .iter()
            .zip(xq)
            .fold(0.0f32, |acc, (&wv, &xb)| acc + product(wv, xb));
    }
}

/// `out = W·x` with ordinary `f32` multiply-accumulate, the baseline for
/// [`matvec_lmul`].
pub fn matvec_exact(
    w: &[f32],
    x: &[f32],
    out: &mut [f32],
    rows: usize,
    cols: usize,
) -> Result<(), String> {
    check_matvec_dims(w.len(), x.len(), out.len(), rows, cols)?;
    if cols == 0 {
        out.fill(0.0);
        return Ok(());
    }
    for (row, o) in w.chunks_exact(cols).zip(out.iter_mut()) {
        *o = row.iter().zip(x).fold(0.0f32, |acc, (&a, &b)| acc + a * b);
    }
    Ok(())
}

fn check_matvec_dims(
    w: usize,
    x: usize,
    out: usize,
    rows: usize,
    cols: usize,
) -> Result<(), String> {
    let expected = rows
        .checked_mul(cols)
        .ok_or_else(|| format!("rows × cols overflows: {rows} × {cols}"))?;
    if w != expected || x != cols || out != rows {
        return Err(format!(
            "matvec shape mismatch: w has {w} (expected {rows}×{cols}), x has {x} (expected {cols}), out has {out} (expected {rows})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::format::NanStyle;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    const IEEE: LmulPolicy = LmulPolicy::Ieee;
    const RAW: LmulPolicy = LmulPolicy::Raw;

    fn fp32(a: f32, b: f32, policy: LmulPolicy) -> u32 {
        lmul_bits(a.to_bits(), b.to_bits(), FloatFormat::FP32, policy)
    }

    // ---- independent reference -------------------------------------------------
    //
    // Works on (sign, integer significand, unbiased exponent) rather than on the
    // packed patterns: x = X · 2^(ex - m) with X in [2^m, 2^(m+1)). L-Mul by its
    // definition: S = x_m + y_m + 2^-l in units of 2^-m; the product is
    // (1 + S)·2^(ex+ey) if S < 1, 2S·2^(ex+ey) if 1 <= S < 2 (the carry case)
    // and 4(S-1)·2^(ex+ey) if S >= 2 (double carry).

    enum Operand {
        Nan,
        Inf,
        Zero,
        Subnormal,
        Normal { sig: u64, exp: i64 },
    }

    #[derive(Debug, PartialEq)]
    enum Expect {
        Nan,
        Bits(u32),
    }

    fn split(bits: u32, fmt: FloatFormat) -> (bool, Operand) {
        let (e, m) = (fmt.exp_bits(), fmt.man_bits());
        let negative = (bits >> (e + m)) & 1 == 1;
        let exp_field = u64::from((bits >> m) & ((1 << e) - 1));
        let frac = u64::from(bits & ((1 << m) - 1));
        let top_exp = (1u64 << e) - 1;
        let op = match fmt.nan_style() {
            NanStyle::Ieee if exp_field == top_exp && frac == 0 => Operand::Inf,
            NanStyle::Ieee if exp_field == top_exp => Operand::Nan,
            NanStyle::FiniteNan if exp_field == top_exp && frac == (1 << m) - 1 => Operand::Nan,
            _ if exp_field == 0 && frac == 0 => Operand::Zero,
            _ if exp_field == 0 => Operand::Subnormal,
            _ => Operand::Normal {
                sig: (1 << m) | frac,
                exp: exp_field as i64 - i64::from(fmt.bias()),
            },
        };
        (negative, op)
    }

    /// Reference L-Mul with the ieee policy.
    fn reference_ieee(a: u32, b: u32, fmt: FloatFormat) -> Expect {
        let (e, m) = (fmt.exp_bits(), fmt.man_bits());
        let sign = |neg: bool| if neg { 1u32 << (e + m) } else { 0 };
        let ((na, oa), (nb, ob)) = (split(a, fmt), split(b, fmt));
        let s = sign(na != nb);
        let inf_bits = ((1u32 << e) - 1) << m;
        match (oa, ob) {
            (Operand::Nan, _) | (_, Operand::Nan) => Expect::Nan,
            (Operand::Inf, Operand::Zero) | (Operand::Zero, Operand::Inf) => Expect::Nan,
            (Operand::Inf, _) | (_, Operand::Inf) => Expect::Bits(s | inf_bits),
            (Operand::Zero | Operand::Subnormal, _) | (_, Operand::Zero | Operand::Subnormal) => {
                Expect::Bits(s)
            }
            (Operand::Normal { sig: xa, exp: ea }, Operand::Normal { sig: xb, exp: eb }) => {
                let l = if m <= 3 {
                    m
                } else if m == 4 {
                    3
                } else {
                    4
                };
                let one = 1u64 << m;
                let s_units = (xa - one) + (xb - one) + (1 << (m - l));
                // Value (1 + frac(S))·2^(E + floor(S)): the integer part of S carries
                // into the exponent. floor(S) is 0, 1, or (m >= 4, both mantissas
                // near 1) 2, where the result is 4(S-1)·2^E rather than 2S·2^E.
                let carry = s_units >> m;
                let (sig, exp) = (one + (s_units & (one - 1)), ea + eb + carry as i64);
                // sig · 2^(exp - m) is the exact L-Mul value; encode it.
                let field = exp + i64::from(fmt.bias());
                let frac = sig - one;
                let top = (1i64 << e) - 1;
                let too_big = match fmt.nan_style() {
                    NanStyle::Ieee => field >= top,
                    NanStyle::FiniteNan => field > top || (field == top && frac == one - 1),
                };
                if field <= 0 {
                    Expect::Bits(s)
                } else if too_big {
                    Expect::Bits(s | fmt.inf_mag().unwrap_or(fmt.max_finite_mag()))
                } else {
                    Expect::Bits(s | (field as u32) << m | frac as u32)
                }
            }
        }
    }

    /// Reference for the raw policy: the paper's PTX sequence (and, xor, add,
    /// sub, and, add) with the masks of the format.
    fn reference_raw(a: u32, b: u32, fmt: FloatFormat) -> u32 {
        let sign_bit = 1u32 << (fmt.exp_bits() + fmt.man_bits());
        let s1 = (a & sign_bit) ^ (b & sign_bit);
        let r0 = (a & (sign_bit - 1))
            .wrapping_add(b & (sign_bit - 1))
            .wrapping_sub(offset(fmt));
        (r0 & (sign_bit - 1)).wrapping_add(s1)
    }

    fn check_against_reference(a: u32, b: u32, fmt: FloatFormat) {
        let got = lmul_bits(a, b, fmt, IEEE);
        let ok = match reference_ieee(a, b, fmt) {
            Expect::Nan => fmt.is_nan_bits(got),
            Expect::Bits(want) => got == want,
        };
        assert!(
            ok,
            "{} ieee {a:#x} × {b:#x} = {got:#x}, reference {:?}",
            fmt.name(),
            reference_ieee(a, b, fmt)
        );
        assert_eq!(
            lmul_bits(a, b, fmt, RAW),
            reference_raw(a, b, fmt),
            "{} raw {a:#x} × {b:#x}",
            fmt.name()
        );
    }

    // ---- tests ---------------------------------------------------------------

    #[test]
    fn offsets_match_published_constants() {
        let cases = [
            ("fp32", 0x3F78_0000),
            ("bf16", 0x3F78),
            ("fp16", 0x3BC0),
            ("fp8-e4m3", 0x37),
            ("fp8-e5m2", 0x3B),
            ("e3m4", 0x2E),
        ];
        for (name, want) in cases {
            assert_eq!(offset(FloatFormat::parse(name).unwrap()), want, "{name}");
        }
        assert_eq!(offset(FloatFormat::FP32), 1_064_828_928);
        assert_eq!(
            (0..=8).map(l_of_m).collect::<Vec<_>>(),
            [0, 1, 2, 3, 3, 4, 4, 4, 4]
        );
        assert_eq!(int_add_width(FloatFormat::BF16), 15);
        assert_eq!(int_add_width(FloatFormat::FP8_E4M3), 7);
    }

    #[test]
    fn fp32_golden_values() {
        assert_eq!(fp32(1.0, 1.0, IEEE), 0x3F88_0000);
        assert_eq!(f32::from_bits(fp32(1.0, 1.0, IEEE)), 1.0625);
        assert_eq!(fp32(1.5, 1.5, IEEE), 0x4008_0000);
        assert_eq!(f32::from_bits(fp32(1.5, 1.5, IEEE)), 2.125);
        assert_eq!(fp32(-2.0, 3.0, IEEE), 0xC0C8_0000);
        assert_eq!(f32::from_bits(fp32(-2.0, 3.0, IEEE)), -6.25);
        assert_eq!(fp32(0.1, 10.0, IEEE), 0x3F74_CCCD);
        assert_eq!(f32::from_bits(fp32(3.0, 4.0, IEEE)), 12.5);
        assert_eq!(f32::from_bits(fp32(5.0, 5.0, IEEE)), 25.0);
        assert_eq!(f32::from_bits(fp32(1.75, 1.75, IEEE)), 3.125);
        assert_eq!(lmul_f32(0.1, 10.0, FloatFormat::FP32, IEEE), 0.95625);
        assert_eq!(lmul_f32(-2.0, 3.0, FloatFormat::FP32, RAW), -6.25);
    }

    #[test]
    fn raw_policy_reproduces_the_ptx_edge_cases() {
        assert_eq!(fp32(0.0, 1.0, RAW), 0x0008_0000);
        let v = |a: f32, b: f32| f32::from_bits(fp32(a, b, RAW));
        assert!((v(0.0, 2f32.powi(100)) - 7.9e-9).abs() < 1e-10);
        assert!(
            (v(1e-20, 1e-20) / 1.08e37 - 1.0).abs() < 0.01,
            "{}",
            v(1e-20, 1e-20)
        );
        assert!(
            (v(3e38, 10.0) / 2.5e-38 - 1.0).abs() < 0.02,
            "{}",
            v(3e38, 10.0)
        );
        // Raw equals ieee wherever ieee has no special case.
        assert_eq!(fp32(0.1, 10.0, RAW), fp32(0.1, 10.0, IEEE));
    }

    #[test]
    fn ieee_policy_handles_zero_subnormal_underflow_and_overflow() {
        assert_eq!(fp32(0.0, 1.0, IEEE), 0);
        assert_eq!(fp32(-0.0, 1.0, IEEE), 0x8000_0000);
        assert_eq!(fp32(0.0, -5.0, IEEE), 0x8000_0000);
        assert_eq!(
            fp32(f32::from_bits(1), 1e30, IEEE),
            0,
            "subnormal input flushes"
        );
        assert_eq!(
            fp32(1e-20, -1e-20, IEEE),
            0x8000_0000,
            "underflow gives signed zero"
        );
        // A result that would land in the subnormal range is flushed too.
        assert_eq!(fp32(f32::MIN_POSITIVE, 0.5, IEEE), 0);
        assert_eq!(fp32(3e38, 10.0, IEEE), f32::INFINITY.to_bits());
        assert_eq!(fp32(-3e38, 10.0, IEEE), f32::NEG_INFINITY.to_bits());
        // FN formats saturate instead: 448 × 448 in e4m3.
        let e4m3 = FloatFormat::FP8_E4M3;
        assert_eq!(lmul_bits(0x7E, 0xFE, e4m3, IEEE), 0xFE);
        assert_eq!(lmul_f32(448.0, 448.0, e4m3, IEEE), 448.0);
        assert_eq!(
            lmul_bits(0x7C, 0x7C, FloatFormat::FP8_E5M2, IEEE),
            0x7C,
            "inf × inf"
        );
        assert_eq!(
            lmul_bits(0x78, 0x78, FloatFormat::FP8_E5M2, IEEE),
            0x7C,
            "overflow to inf"
        );
    }

    #[test]
    fn ieee_policy_propagates_nan_and_infinity() {
        let nan = |bits: u32| FloatFormat::FP32.is_nan_bits(bits);
        assert!(nan(fp32(f32::NAN, 1.0, IEEE)));
        assert!(nan(fp32(0.0, f32::NAN, IEEE)));
        assert!(nan(fp32(f32::INFINITY, 0.0, IEEE)));
        assert!(nan(fp32(-0.0, f32::NEG_INFINITY, IEEE)));
        assert_eq!(fp32(f32::INFINITY, -2.0, IEEE), f32::NEG_INFINITY.to_bits());
        assert_eq!(fp32(f32::NEG_INFINITY, -2.0, IEEE), f32::INFINITY.to_bits());
        assert_eq!(
            fp32(f32::INFINITY, f32::from_bits(1), IEEE),
            f32::INFINITY.to_bits(),
            "subnormal is nonzero"
        );
        assert!(lmul_f32(f32::NAN, 2.0, FloatFormat::BF16, IEEE).is_nan());
        assert!(FloatFormat::FP8_E4M3.is_nan_bits(lmul_bits(
            0x7F,
            0x38,
            FloatFormat::FP8_E4M3,
            IEEE
        )));
        // Raw has no special cases: NaN × 1 is just bits.
        assert_eq!(
            fp32(f32::NAN, 1.0, RAW),
            (f32::NAN.to_bits() + 0x3F80_0000 - 0x3F78_0000) & 0x7FFF_FFFF
        );
    }

    #[test]
    fn every_e4m3_and_e5m2_pair_matches_the_exact_reference() {
        let formats = ["fp8-e4m3", "fp8-e5m2", "e4m3", "e5m2fn", "e3m4", "e2m5"];
        for name in formats {
            let fmt = FloatFormat::parse(name).unwrap();
            for a in 0..256u32 {
                for b in 0..256u32 {
                    check_against_reference(a, b, fmt);
                }
            }
        }
    }

    #[test]
    fn random_fp32_bf16_fp16_pairs_match_the_exact_reference() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for fmt in [
            FloatFormat::FP32,
            FloatFormat::BF16,
            FloatFormat::FP16,
            FloatFormat::parse("e8m3").unwrap(),
        ] {
            let mask = (1u64 << fmt.bits()) - 1;
            for _ in 0..300_000 {
                let (a, b) = (rng.random::<u64>() & mask, rng.random::<u64>() & mask);
                check_against_reference(a as u32, b as u32, fmt);
            }
            // Operands near 1 exercise the carry boundary densely.
            for _ in 0..100_000 {
                let one = fmt.bias() << fmt.man_bits();
                let a = one + (rng.random::<u32>() & fmt.man_mask());
                let b = (one + (rng.random::<u32>() & fmt.man_mask()))
                    | (rng.random::<u32>() & fmt.sign_mask());
                check_against_reference(a, b, fmt);
            }
        }
    }

    #[test]
    fn lmul_f32_is_quantize_then_lmul_then_decode() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        for fmt in [
            FloatFormat::FP32,
            FloatFormat::BF16,
            FloatFormat::FP16,
            FloatFormat::FP8_E4M3,
            FloatFormat::parse("e8m3").unwrap(),
        ] {
            for _ in 0..50_000 {
                let (a, b) = (
                    rng.random_range(-20.0f32..20.0),
                    rng.random_range(-20.0f32..20.0),
                );
                let want = fmt.decode(lmul_bits(
                    fmt.quantize_f64(f64::from(a)),
                    fmt.quantize_f64(f64::from(b)),
                    fmt,
                    IEEE,
                ));
                let got = lmul_f32(a, b, fmt, IEEE);
                assert_eq!(
                    got.to_bits(),
                    (want as f32).to_bits(),
                    "{} {a} × {b}",
                    fmt.name()
                );
            }
        }
    }

    #[test]
    fn formula_differs_from_bit_version_only_in_the_carry_case() {
        let f = FloatFormat::FP32;
        let formula = |a: f32, b: f32| lmul_formula(a.to_bits(), b.to_bits(), f);
        assert_eq!(formula(1.0, 1.0), 1.0625);
        assert_eq!(formula(1.5, 1.5), 2.0625);
        assert_eq!(formula(-2.0, 3.0), -6.25);
        assert!(formula(f32::NAN, 1.0).is_nan() && formula(f32::INFINITY, 0.0).is_nan());
        assert_eq!(formula(0.0, 3.0), 0.0);
        // Exhaustive over e4m3 normals: equal without carry, (1+S)/(2S) times otherwise.
        let e4m3 = FloatFormat::FP8_E4M3;
        for a in 0x08..0x7Fu32 {
            for b in 0x08..0x7Fu32 {
                let (sa, sb) = ((a & 7) as f64 / 8.0, (b & 7) as f64 / 8.0);
                let s = sa + sb + 0.125;
                let exponent = (a >> 3) as i32 + (b >> 3) as i32 - 14;
                let want = (1.0 + s) * 2f64.powi(exponent);
                assert_eq!(lmul_formula(a, b, e4m3), want);
                let field = (a >> 3) as i32 + (b >> 3) as i32 - 7 + i32::from(s >= 1.0);
                if (1..15).contains(&field) {
                    let bit = e4m3.decode(lmul_bits(a, b, e4m3, IEEE));
                    let ratio = if s < 1.0 { 1.0 } else { (1.0 + s) / (2.0 * s) };
                    assert_eq!(want, bit * ratio, "{a:#x} × {b:#x}");
                }
            }
        }
    }

    /// lmul.md §2.3(a): all pairs of m-bit mantissas in one binade ([1, 2)).
    #[test]
    fn exhaustive_mantissa_statistics_match_the_reference_table() {
        // m, L-Mul mean|rel|, bias, max|rel|, literal-formula mean|rel|, RNE mean|rel| (percent).
        let table = [
            (1, "37.50", "37.50", "50.0", "31.94", "2.78"),
            (2, "14.67", "14.67", "25.0", "11.11", "3.57"),
            (3, "5.241", "4.930", "12.5", "6.886", "1.901"),
            (4, "5.141", "4.873", "12.5", "6.936", "1.068"),
            (5, "2.666", "0.413", "7.288", "7.306", "0.544"),
            // lmul.md lists 2.654 / 2.653 (bias 0.407 / 0.406) for m = 7 / 10: it models the carry case
            // as 2S even when S >= 2; the integer add carries twice there.
            (7, "2.6555", "0.4085", "7.288", "7.506", "0.140"),
            (10, "2.6548", "0.4082", "7.288", "7.567", "0.018"),
        ];
        for (m, mean, bias, max, literal, rne) in table {
            let fmt = FloatFormat::lmul_operand(m).unwrap();
            let one = 127u32 << m;
            let (mut sum, mut sum_signed, mut worst, mut sum_lit, mut sum_rne) =
                (0.0, 0.0, 0.0f64, 0.0, 0.0);
            for fa in 0..1u32 << m {
                for fb in 0..1u32 << m {
                    let (a, b) = (one | fa, one | fb);
                    let exact = fmt.decode(a) * fmt.decode(b);
                    let rel = fmt.decode(lmul_bits(a, b, fmt, IEEE)) / exact - 1.0;
                    sum += rel.abs();
                    sum_signed += rel;
                    worst = worst.max(rel.abs());
                    sum_lit += (lmul_formula(a, b, fmt) / exact - 1.0).abs();
                    sum_rne += (fmt.round(exact) / exact - 1.0).abs();
                }
            }
            let n = f64::from(1u32 << (2 * m));
            for (label, got, want) in [
                ("mean", sum / n, mean),
                ("bias", sum_signed / n, bias),
                ("max", worst, max),
                ("literal", sum_lit / n, literal),
                ("rne", sum_rne / n, rne),
            ] {
                let decimals = want.split('.').nth(1).map_or(0, str::len) as i32;
                let tol = 0.5 * 10f64.powi(-decimals) + 1e-9;
                let want: f64 = want.parse().unwrap();
                assert!(
                    (got * 100.0 - want).abs() <= tol,
                    "m={m} {label}: {:.4}% vs {want}%",
                    got * 100.0
                );
            }
            if m >= 5 {
                // The regression band of lmul.md §5.
                assert!((0.02653..=0.02666).contains(&(sum / n)) && (worst - 0.07288).abs() < 5e-6);
            }
        }
    }

    #[test]
    fn matvec_lmul_matches_elementwise_lmul_and_checks_shapes() {
        let (rows, cols) = (3, 5);
        let w: Vec<f32> = (0..rows * cols).map(|i| (i as f32 - 7.0) * 0.37).collect();
        let x: Vec<f32> = (0..cols).map(|i| 1.0 + i as f32 * 0.25).collect();
        let mut out = vec![0.0; rows];
        for fmt in [FloatFormat::FP32, FloatFormat::BF16, FloatFormat::FP8_E4M3] {
            matvec_lmul(&w, &x, &mut out, rows, cols, fmt, IEEE).unwrap();
            for r in 0..rows {
                let want = (0..cols).fold(0.0f32, |acc, c| {
                    acc + lmul_f32(w[r * cols + c], x[c], fmt, IEEE)
                });
                assert_eq!(out[r], want);
            }
        }
        matvec_exact(&w, &x, &mut out, rows, cols).unwrap();
        assert_eq!(out[0], (0..cols).fold(0.0f32, |acc, c| acc + w[c] * x[c]));
        assert!(matvec_lmul(&w, &x, &mut out, rows, cols + 1, FloatFormat::FP32, IEEE).is_err());
        assert!(matvec_exact(&w, &x[1..], &mut out, rows, cols).is_err());
        assert!(matvec_exact(&w, &x, &mut out, usize::MAX, 2).is_err());
        let mut one = [9.0f32];
        matvec_lmul(&[], &[], &mut one, 1, 0, FloatFormat::FP32, RAW).unwrap();
        assert_eq!(one, [0.0]);
    }

    #[test]
    fn policy_parses_and_serializes_lowercase() {
        assert_eq!("RAW".parse::<LmulPolicy>().unwrap(), RAW);
        assert_eq!("ieee".parse::<LmulPolicy>().unwrap(), IEEE);
        assert!("x".parse::<LmulPolicy>().is_err());
        assert_eq!(serde_json::to_string(&RAW).unwrap(), "\"raw\"");
        assert_eq!(LmulPolicy::default(), IEEE);
    }

    /// Rough throughput: `cargo test --lib matvec_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn matvec_throughput() {
        let n = 512;
        let w: Vec<f32> = (0..n * n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let x: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 + 0.1).collect();
        let mut out = vec![0.0; n];
        let reps = 20;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            matvec_exact(&w, &x, &mut out, n, n).unwrap();
        }
        eprintln!(
            "exact: {:.2} ns/MAC",
            t.elapsed().as_nanos() as f64 / (reps * n * n) as f64
        );
        for fmt in [
            FloatFormat::BF16,
            FloatFormat::FP32,
            FloatFormat::FP8_E4M3,
            FloatFormat::BF16,
            FloatFormat::FP32,
        ] {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                matvec_lmul(&w, &x, &mut out, n, n, fmt, IEEE).unwrap();
            }
            eprintln!(
                "{}: {:.2} ns/L-Mul",
                fmt.name(),
                t.elapsed().as_nanos() as f64 / (reps * n * n) as f64
            );
        }
    }
}

#[cfg(test)]
mod lane_tests {
    use super::*;

    /// Patterns with every special case of f32 and a spread of random values.
    fn patterns() -> Vec<f32> {
        let mut v: Vec<f32> = [
            0u32,
            0x8000_0000,
            0x7F80_0000,
            0xFF80_0000,
            0x7FC0_0000,
            0xFF80_0001,
            0x0000_0001,
            0x807F_FFFF,
            0x7F7F_FFFF,
            0x0080_0000,
            0x3F80_0000,
            0x3F7F_FFFF,
            0x0100_0000,
        ]
        .into_iter()
        .map(f32::from_bits)
        .collect();
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        for i in 0..4000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            // Half raw bit patterns, half values of ordinary magnitude.
            v.push(if i % 2 == 0 {
                f32::from_bits(r as u32)
            } else {
                ((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
            });
        }
        v
    }

    #[test]
    fn slice_products_equal_the_scalar_products_bit_for_bit() {
        let w = patterns();
        let xs = [
            1.5f32,
            -0.3,
            3.0e-39,
            f32::INFINITY,
            f32::NAN,
            0.0,
            7.0e37,
            -1.0e-20,
        ];
        let mut out = vec![0.0f32; w.len()];
        for fmt in [
            "fp32", "bf16", "e8m3", "e8m0", "e8m4", "fp16", "fp8-e4m3", "e5m2",
        ] {
            let f = FloatFormat::parse(fmt).unwrap();
            for policy in [LmulPolicy::Ieee, LmulPolicy::Raw] {
                let k = PreparedLmul::new(f, policy);
                let q: Vec<f32> = w.iter().map(|&v| k.round_operand(v)).collect();
                for &x in xs.iter().chain(&w[..64]) {
                    // Odd lengths exercise the remainder.
                    for len in [w.len(), 13] {
                        k.mul_slice::<false>(x, &w[..len], &mut out[..len]);
                        let mut from_rounded = vec![0.0f32; len];
                        k.mul_slice::<true>(x, &q[..len], &mut from_rounded);
                        for (i, (&o, &wv)) in out[..len].iter().zip(&w).enumerate() {
                            let want = k.mul_f32(x, wv);
                            assert_eq!(
                                o.to_bits(),
                                want.to_bits(),
                                "{fmt} {policy:?} x {x:e} w[{i}] {wv:e}"
                            );
                            // Pre-rounded weights: the same value (NaN payloads aside).
                            let r = from_rounded[i];
                            assert!(
                                !k.takes_rounded_operands()
                                    || r.to_bits() == want.to_bits()
                                    || (r.is_nan() && want.is_nan()),
                                "pre-rounded: {fmt} {policy:?} x {x:e} w[{i}] {wv:e}: {r:e} vs {want:e}"
                            );
                        }
                    }
                }
            }
        }
    }
}
