//! L-Mul: approximate multiplication with one integer add on the bit patterns
//! (Luo & Sun, "Addition is All You Need for Energy-efficient Language Models",
//! arXiv:2410.00907).
//!
//! For magnitudes `A`, `B` (bit patterns without the sign):
//! `|R| = |A| + |B| - OFFSET(e, m)` and `sign(R) = sign(A) XOR sign(B)`, with
//! `OFFSET = (bias << m) - (1 << (m - l(m)))`. Because this is an integer add, a
//! carry out of the mantissa field moves into the exponent: with
//! `S = x_m + y_m + 2^-l(m)`, the result is `(1 + S)·2^(xe+ye)` when `S < 1` and
//! `2·S·2^(xe+ye)` when `S >= 1` (Mitchell's log-linear approximation plus an
//! offset). [`lmul_formula`] evaluates the paper's formula `(1 + S)·2^(xe+ye)`
//! literally instead, which differs exactly in that carry case.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::format::{FloatFormat, pow2};

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
    let mag = fmt.mag_mask();
    let sign = (a ^ b) & fmt.sign_mask();
    let (ma, mb) = (a & mag, b & mag);
    match policy {
        Policy::Raw => sign | (ma.wrapping_add(mb).wrapping_sub(offset(fmt)) & mag),
        Policy::Ieee => sign | lmul_mag_ieee(ma, mb, fmt),
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
        return if ma == 0 || mb == 0 { nan } else { inf.unwrap_or(nan) };
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
    let r = lmul_bits(fmt.quantize_f32(a), fmt.quantize_f32(b), fmt, policy);
    fmt.decode_f32(r)
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
        if ma == 0 || mb == 0 { f64::NAN } else { f64::INFINITY }
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
    for (row, o) in w.chunks_exact(cols).zip(out.iter_mut()) {
        let mut acc = 0.0f32;
        for (&wv, &xb) in row.iter().zip(&xq) {
            acc += fmt.decode_f32(lmul_bits(fmt.quantize_f32(wv), xb, fmt, policy));
        }
        *o = acc;
    }
    Ok(())
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

fn check_matvec_dims(w: usize, x: usize, out: usize, rows: usize, cols: usize) -> Result<(), String> {
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
