//! Generic binary floating-point formats (`ExMy`) and round-to-nearest-even
//! quantisation into them.
//!
//! A [`FloatFormat`] has one sign bit, `e` exponent bits and `m` mantissa bits,
//! stored in the low `1 + e + m` bits of a `u32` (sign on top). Values are
//! `(-1)^s · 1.mant · 2^(exp - bias)` for normal numbers and
//! `(-1)^s · 0.mant · 2^(1 - bias)` for subnormals (exponent field 0).
//!
//! Conversions are bit-exact against `half::f16`, `half::bf16` (from `f32`),
//! `float8::F8E4M3` / `float8::F8E5M2` (from `f32`) and plain `f32` (from `f64`);
//! the unit tests check this exhaustively.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How the all-ones exponent field is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NanStyle {
    /// IEEE 754: an all-ones exponent encodes ±infinity (mantissa 0) or NaN.
    Ieee,
    /// "FN" (finite + NaN), e.g. OCP `e4m3fn`: no infinities; only the
    /// all-ones exponent *and* mantissa pattern is NaN, the rest are finite.
    FiniteNan,
}

/// What a quantisation does with a magnitude beyond the largest finite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Clamp to ±max finite. Like CUDA's `__NV_SATFINITE` and the `float8`
    /// crate, this also maps ±infinity inputs to ±max finite.
    Saturate,
    /// IEEE behaviour: overflow gives ±infinity. Formats without infinities
    /// ([`NanStyle::FiniteNan`]) give NaN instead.
    Infinity,
}

/// A binary floating-point format `ExMy`, see the module docs.
///
/// Serialised (serde) as its [`name`](FloatFormat::name), parsed back with
/// [`parse`](FloatFormat::parse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FloatFormat {
    exp_bits: u8,
    man_bits: u8,
    bias: u16,
    nan: NanStyle,
    overflow: Overflow,
}

/// Names accepted by [`FloatFormat::parse`], for error messages and help.
pub const VALID_NAMES: &str = "fp32, fp16, bf16, fp8-e4m3, fp8-e5m2, lmul-K (K = 0..=23: e8mK), \
     or eEmM[fn][-bBIAS][-sat|-inf] with E in 2..=8 and M in 0..=23 (e.g. e4m3, e5m2, e8m3, e4m3fn, e3m4-b3)";

impl FloatFormat {
    /// IEEE binary32.
    pub const FP32: Self = Self::preset(8, 23, NanStyle::Ieee, Overflow::Infinity);
    /// IEEE binary16 (`half::f16`).
    pub const FP16: Self = Self::preset(5, 10, NanStyle::Ieee, Overflow::Infinity);
    /// bfloat16 (`half::bf16`).
    pub const BF16: Self = Self::preset(8, 7, NanStyle::Ieee, Overflow::Infinity);
    /// OCP fp8 E4M3FN, max 448, as `float8::F8E4M3` converts: out-of-range values
    /// (and ±inf) *saturate* to ±448. (The OCP spec's default non-saturating mode
    /// would give NaN; `Overflow::Infinity` on this format does that.)
    pub const FP8_E4M3: Self = Self::preset(4, 3, NanStyle::FiniteNan, Overflow::Saturate);
    /// OCP fp8 E5M2 (IEEE-style, has ±inf, max 57344). Conversion saturates
    /// out-of-range values and ±inf to ±57344 exactly as `float8::F8E5M2` does;
    /// the generic name `e5m2` is the same layout with IEEE overflow to ±inf.
    pub const FP8_E5M2: Self = Self::preset(5, 2, NanStyle::Ieee, Overflow::Saturate);

    const fn preset(e: u8, m: u8, nan: NanStyle, overflow: Overflow) -> Self {
        Self {
            exp_bits: e,
            man_bits: m,
            bias: (1u16 << (e - 1)) - 1,
            nan,
            overflow,
        }
    }

    /// A generic IEEE-style format with `e` exponent bits (2..=8), `m` mantissa
    /// bits (0..=23), default bias `2^(e-1) - 1` and overflow to infinity.
    pub fn new(e: u8, m: u8) -> Result<Self, String> {
        if !(2..=8).contains(&e) {
            return Err(format!("exponent bits must be in 2..=8, got {e}"));
        }
        if m > 23 {
            return Err(format!("mantissa bits must be in 0..=23, got {m}"));
        }
        Ok(Self::preset(e, m, NanStyle::Ieee, Overflow::Infinity))
    }

    /// The operand format of an L-Mul with `k` mantissa bits: `e8mk`, bias 127,
    /// IEEE style (so `lmul_operand(23)` is fp32 and `lmul_operand(7)` is bf16).
    pub fn lmul_operand(k: u8) -> Result<Self, String> {
        Self::new(8, k)
    }

    /// Same format with another exponent bias (1..=255).
    pub fn with_bias(self, bias: u16) -> Result<Self, String> {
        if !(1..=255).contains(&bias) {
            return Err(format!("bias must be in 1..=255, got {bias}"));
        }
        Ok(Self { bias, ..self })
    }

    /// Same format with another NaN convention. Switching to
    /// [`NanStyle::FiniteNan`] does not change the overflow mode.
    pub fn with_nan_style(self, nan: NanStyle) -> Self {
        Self { nan, ..self }
    }

    /// Same format with another overflow mode.
    pub fn with_overflow(self, overflow: Overflow) -> Self {
        Self { overflow, ..self }
    }

    /// Exponent bits `e`.
    pub fn exp_bits(self) -> u32 {
        u32::from(self.exp_bits)
    }

    /// Mantissa (fraction) bits `m`.
    pub fn man_bits(self) -> u32 {
        u32::from(self.man_bits)
    }

    /// Exponent bias.
    pub fn bias(self) -> u32 {
        u32::from(self.bias)
    }

    /// NaN convention.
    pub fn nan_style(self) -> NanStyle {
        self.nan
    }

    /// Overflow mode used by quantisation.
    pub fn overflow(self) -> Overflow {
        self.overflow
    }

    /// Storage width `1 + e + m`.
    pub fn bits(self) -> u32 {
        1 + self.exp_bits() + self.man_bits()
    }

    /// The sign bit.
    pub fn sign_mask(self) -> u32 {
        1 << (self.exp_bits() + self.man_bits())
    }

    /// Exponent and mantissa fields together (the magnitude).
    pub fn mag_mask(self) -> u32 {
        self.sign_mask() - 1
    }

    /// Mantissa field.
    pub fn man_mask(self) -> u32 {
        (1 << self.man_bits()) - 1
    }

    fn all_mask(self) -> u32 {
        self.sign_mask() | self.mag_mask()
    }

    fn exp_all_ones(self) -> u32 {
        (1 << self.exp_bits()) - 1
    }

    /// Magnitude pattern of the largest finite value.
    pub fn max_finite_mag(self) -> u32 {
        match self.nan {
            NanStyle::Ieee => (self.exp_all_ones() << self.man_bits()) - 1,
            NanStyle::FiniteNan => self.mag_mask() - 1,
        }
    }

    /// Magnitude pattern of infinity, if the format has one.
    pub fn inf_mag(self) -> Option<u32> {
        match self.nan {
            NanStyle::Ieee => Some(self.exp_all_ones() << self.man_bits()),
            NanStyle::FiniteNan => None,
        }
    }

    /// Canonical (quiet, positive) NaN pattern, if the format has one. An IEEE
    /// format with `m = 0` has no NaN encoding.
    pub fn nan_bits(self) -> Option<u32> {
        match (self.nan, self.man_bits) {
            (NanStyle::Ieee, 0) => None,
            (NanStyle::Ieee, m) => self.inf_mag().map(|inf| inf | 1 << (m - 1)),
            (NanStyle::FiniteNan, _) => Some(self.mag_mask()),
        }
    }

    /// Largest finite value.
    pub fn max_finite(self) -> f64 {
        self.decode(self.max_finite_mag())
    }

    /// Smallest positive normal value `2^(1 - bias)`.
    pub fn min_positive_normal(self) -> f64 {
        self.decode(1 << self.man_bits())
    }

    /// Smallest positive subnormal value (equals the smallest normal if `m = 0`).
    pub fn min_positive(self) -> f64 {
        self.decode(1)
    }

    /// True if `bits` (low `bits()` bits) encode a NaN.
    pub fn is_nan_bits(self, bits: u32) -> bool {
        self.is_nan_mag(bits & self.mag_mask())
    }

    fn is_nan_mag(self, mag: u32) -> bool {
        match self.nan {
            NanStyle::Ieee => self.inf_mag().is_some_and(|inf| mag > inf),
            NanStyle::FiniteNan => mag == self.mag_mask(),
        }
    }

    /// True if `bits` encode ±infinity.
    pub fn is_inf_bits(self, bits: u32) -> bool {
        self.inf_mag() == Some(bits & self.mag_mask())
    }

    /// True if `bits` encode ±0.
    pub fn is_zero_bits(self, bits: u32) -> bool {
        bits & self.mag_mask() == 0
    }

    /// True if `bits` encode a nonzero subnormal.
    pub fn is_subnormal_bits(self, bits: u32) -> bool {
        let mag = bits & self.mag_mask();
        mag != 0 && mag >> self.man_bits() == 0
    }

    /// Exact value of a bit pattern. Bits above `bits()` are ignored.
    pub fn decode(self, bits: u32) -> f64 {
        let bits = bits & self.all_mask();
        let mag = bits & self.mag_mask();
        let v = if self.is_nan_mag(mag) {
            f64::NAN
        } else if self.inf_mag() == Some(mag) {
            f64::INFINITY
        } else {
            let (sig, exp) = self.significand_exponent(mag);
            // sig < 2^24 and exp stays well inside f64's normal range: exact.
            f64::from(sig) * pow2(exp)
        };
        if bits & self.sign_mask() != 0 { -v } else { v }
    }

    /// Finite magnitude `mag` as `sig · 2^exp` with integer `sig`.
    pub(crate) fn significand_exponent(self, mag: u32) -> (u32, i32) {
        let m = self.man_bits() as i32;
        let exp_field = (mag >> self.man_bits()) as i32;
        let frac = mag & self.man_mask();
        let bias = i32::from(self.bias);
        if exp_field == 0 {
            (frac, 1 - bias - m)
        } else {
            (frac | 1 << m, exp_field - bias - m)
        }
    }

    /// Value of a bit pattern as `f32` (rounded RNE if it does not fit).
    #[inline]
    pub fn decode_f32(self, bits: u32) -> f32 {
        if self.is_f32_range_ieee() {
            // Same exponent layout as f32: shifting the pattern up is exact,
            // subnormals, infinities and NaNs included.
            f32::from_bits((bits & self.all_mask()) << (23 - self.man_bits()))
        } else {
            self.decode(bits) as f32
        }
    }

    /// `Some(23 - m)` when both [`quantize_f32`](Self::quantize_f32) and
    /// [`decode_f32`](Self::decode_f32) are plain shifts of the f32 pattern
    /// (`e8`, bias 127, IEEE NaNs, overflow to infinity).
    #[inline]
    pub fn f32_fast_shift(self) -> Option<u32> {
        let fast = self.is_f32_range_ieee() && matches!(self.overflow, Overflow::Infinity);
        fast.then(|| 23 - self.man_bits())
    }

    /// True for `e8`, bias 127, IEEE formats: f32 with a shorter mantissa.
    #[inline]
    fn is_f32_range_ieee(self) -> bool {
        self.exp_bits == 8 && self.bias == 127 && matches!(self.nan, NanStyle::Ieee)
    }

    /// Round an `f64` to this format, round-to-nearest-even, including
    /// subnormals. NaN keeps its sign and the top `m` payload bits and is made
    /// quiet (as `half` does); FN formats have a single NaN pattern. Overflow
    /// follows [`Overflow`].
    pub fn quantize_f64(self, x: f64) -> u32 {
        const FRAC: u64 = (1 << 52) - 1;
        let xb = x.to_bits();
        let sign = if xb >> 63 != 0 { self.sign_mask() } else { 0 };
        let abs = xb & !(1 << 63);
        let biased = abs >> 52;
        let frac = abs & FRAC;
        if biased == 0x7FF {
            return sign
                | if frac != 0 {
                    self.nan_mag_from_payload(frac, 52)
                } else {
                    self.overflow_mag()
                };
        }
        if abs == 0 {
            return sign;
        }
        // |x| = sig · 2^lsb_exp exactly.
        let (sig, lsb_exp) = if biased == 0 {
            (frac, -1074)
        } else {
            (frac | 1 << 52, biased as i64 - 1075)
        };
        sign | self.encode_magnitude(sig, lsb_exp)
    }

    /// Round an `f32` to this format (same rules as [`quantize_f64`](Self::quantize_f64);
    /// every `f32` is exactly an `f64`, so there is no double rounding).
    #[inline]
    pub fn quantize_f32(self, x: f32) -> u32 {
        let b = x.to_bits();
        if let Some(shift) = self.f32_fast_shift() {
            return round_f32_bits(b, shift);
        }
        if b & 0x7FFF_FFFF > 0x7F80_0000 {
            // Handle NaN here: `as f64` does not promise to keep the payload.
            let sign = if b >> 31 != 0 { self.sign_mask() } else { 0 };
            return sign | self.nan_mag_from_payload(u64::from(b & 0x007F_FFFF), 23);
        }
        self.quantize_f64(f64::from(x))
    }

    /// Round-trip an `f64` through the format (RNE).
    pub fn round(self, x: f64) -> f64 {
        self.decode(self.quantize_f64(x))
    }

    /// Round-trip an `f32` through the format (RNE), returned as `f32`. Finite values of a
    /// format narrower than f32's exponent range take [`NarrowLanes::value`] (an add and a
    /// subtract at the value's quantum), everything else the encoder; both give the bits of
    /// [`FloatFormat::round_f32_encoded`].
    #[inline]
    pub fn round_f32(self, x: f32) -> f32 {
        match NarrowLanes::new(self) {
            Some(lanes) if !NarrowLanes::is_special(x) => lanes.value(x),
            _ => self.round_f32_encoded(x),
        }
    }

    /// [`FloatFormat::round_f32`] through the bit-level encoder and decoder: the reference the
    /// faster forms are tested against.
    pub fn round_f32_encoded(self, x: f32) -> f32 {
        self.decode_f32(self.quantize_f32(x))
    }

    /// Encode the positive finite value `sig · 2^lsb_exp` (`0 < sig < 2^53`).
    fn encode_magnitude(self, sig: u64, lsb_exp: i64) -> u32 {
        let m = i64::from(self.man_bits);
        let bias = i64::from(self.bias);
        let top = 63 - i64::from(sig.leading_zeros()) + lsb_exp; // floor(log2 |x|)
        // Binade of the result; subnormals share the lowest normal binade's quantum.
        let q = top.max(1 - bias);
        let n = round_shift_rne(sig, q - m - lsb_exp);
        // A mantissa carry (n == 2^(m+1)) moves into the exponent by itself here;
        // for subnormals the first term is 0 and n is the whole pattern.
        let mag = ((q + bias - 1) << m).saturating_add(n as i64);
        if mag > i64::from(self.max_finite_mag()) {
            self.overflow_mag()
        } else {
            mag as u32
        }
    }

    /// Magnitude produced by an overflow (and by ±inf inputs).
    fn overflow_mag(self) -> u32 {
        match (self.overflow, self.inf_mag()) {
            (Overflow::Saturate, _) => self.max_finite_mag(),
            (Overflow::Infinity, Some(inf)) => inf,
            (Overflow::Infinity, None) => self.mag_mask(), // FN: NaN
        }
    }

    /// NaN magnitude keeping the top payload bits of a `src_bits`-wide fraction.
    fn nan_mag_from_payload(self, frac: u64, src_bits: u32) -> u32 {
        match (self.nan, self.inf_mag()) {
            (NanStyle::Ieee, Some(inf)) if self.man_bits > 0 => {
                let m = self.man_bits();
                let payload = (frac >> (src_bits - m)) as u32;
                inf | 1 << (m - 1) | payload
            }
            // IEEE with m = 0 cannot encode NaN: give infinity (documented).
            (NanStyle::Ieee, Some(inf)) => inf,
            _ => self.mag_mask(),
        }
    }

    /// Canonical name; [`parse`](Self::parse) maps it back to `self`.
    pub fn name(self) -> String {
        for (name, preset) in PRESETS {
            if *preset == self {
                return (*name).to_string();
            }
        }
        let mut s = format!("e{}m{}", self.exp_bits, self.man_bits);
        if self.nan == NanStyle::FiniteNan {
            s.push_str("fn");
        }
        if self.bias != Self::preset(self.exp_bits, 0, self.nan, self.overflow).bias {
            s.push_str(&format!("-b{}", self.bias));
        }
        if self.overflow != default_overflow(self.nan) {
            s.push_str(match self.overflow {
                Overflow::Saturate => "-sat",
                Overflow::Infinity => "-inf",
            });
        }
        s
    }

    /// Parse a format name (case-insensitive): a preset (`fp32`, `fp16`, `bf16`,
    /// `fp8-e4m3`, `fp8-e5m2`), `lmul-K` (the e8mK L-Mul operand format), or
    /// `eEmM[fn][-bBIAS][-sat|-inf]`. `fn` selects [`NanStyle::FiniteNan`] whose
    /// default overflow is saturation; IEEE-style defaults to infinity.
    pub fn parse(name: &str) -> Result<Self, String> {
        let lower = name.trim().to_ascii_lowercase();
        let err =
            |why: String| format!("invalid float format {name:?}: {why}; valid: {VALID_NAMES}");
        if let Some((_, f)) = PRESETS.iter().chain(ALIASES).find(|(n, _)| *n == lower) {
            return Ok(*f);
        }
        if let Some(k) = lower.strip_prefix("lmul-") {
            let k = k.parse::<u8>().map_err(|e| err(e.to_string()))?;
            return Self::lmul_operand(k).map_err(err);
        }
        parse_generic(&lower).map_err(err)
    }
}

/// `e<E>m<M>[fn][-b<BIAS>][-sat|-inf]`, already lower-case.
fn parse_generic(s: &str) -> Result<FloatFormat, String> {
    let mut parts = s.split('-');
    let head = parts.next().unwrap_or_default();
    let body = head.strip_prefix('e').ok_or("expected a leading 'e'")?;
    let (e_str, rest) = body
        .split_once('m')
        .ok_or("expected 'm' after the exponent bits")?;
    let (m_str, finite_nan) = match rest.strip_suffix("fn") {
        Some(m) => (m, true),
        None => (rest, false),
    };
    let e = e_str
        .parse::<u8>()
        .map_err(|_| format!("bad exponent bits {e_str:?}"))?;
    let m = m_str
        .parse::<u8>()
        .map_err(|_| format!("bad mantissa bits {m_str:?}"))?;
    let mut f = FloatFormat::new(e, m)?;
    if finite_nan {
        f = f
            .with_nan_style(NanStyle::FiniteNan)
            .with_overflow(default_overflow(NanStyle::FiniteNan));
    }
    for part in parts {
        f = match part {
            "sat" => f.with_overflow(Overflow::Saturate),
            "inf" => f.with_overflow(Overflow::Infinity),
            p => match p.strip_prefix('b').map(str::parse::<u16>) {
                Some(Ok(b)) => f.with_bias(b)?,
                _ => return Err(format!("unknown suffix {p:?}")),
            },
        };
    }
    Ok(f)
}

fn default_overflow(nan: NanStyle) -> Overflow {
    match nan {
        NanStyle::Ieee => Overflow::Infinity,
        NanStyle::FiniteNan => Overflow::Saturate,
    }
}

/// Canonical preset names, checked first by `name()`.
const PRESETS: &[(&str, FloatFormat)] = &[
    ("fp32", FloatFormat::FP32),
    ("fp16", FloatFormat::FP16),
    ("bf16", FloatFormat::BF16),
    ("fp8-e4m3", FloatFormat::FP8_E4M3),
    ("fp8-e5m2", FloatFormat::FP8_E5M2),
];

const ALIASES: &[(&str, FloatFormat)] = &[
    ("f32", FloatFormat::FP32),
    ("float32", FloatFormat::FP32),
    ("f16", FloatFormat::FP16),
    ("half", FloatFormat::FP16),
    ("float16", FloatFormat::FP16),
    ("bfloat16", FloatFormat::BF16),
    ("fp8e4m3", FloatFormat::FP8_E4M3),
    ("fp8-e4m3fn", FloatFormat::FP8_E4M3),
    ("fp8e5m2", FloatFormat::FP8_E5M2),
];

/// `2^k` for the exponents the formats produce (always in f64's normal range).
#[inline]
pub(crate) fn pow2(k: i32) -> f64 {
    if (-1022..=1023).contains(&k) {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        // Not reached by valid formats; two in-range factors keep it exact-ish.
        let bits = |j: i32| f64::from_bits(((j.clamp(-1022, 1023) + 1023) as u64) << 52);
        bits(k / 2) * bits(k - k / 2)
    }
}

/// `sig / 2^shift` rounded to nearest, ties to even.
#[inline]
fn round_shift_rne(sig: u64, shift: i64) -> u64 {
    if shift <= 0 {
        // Not reached for f64 inputs (at least 29 bits are dropped); keep it total.
        return sig
            .checked_shl(shift.unsigned_abs().min(64) as u32)
            .unwrap_or(u64::MAX);
    }
    if shift >= 64 {
        return 0; // sig < 2^63 is below half a quantum
    }
    let n = sig >> shift;
    let rem = sig & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    if rem > half || (rem == half && n & 1 == 1) {
        n + 1
    } else {
        n
    }
}

/// RNE-truncate `shift` low mantissa bits of an f32 pattern (IEEE, same exponent
/// range). Integer rounding on the pattern is exact across the subnormal/normal
/// boundary and rounds overflow into the infinity pattern.
#[inline(always)]
pub fn round_f32_bits(b: u32, shift: u32) -> u32 {
    if shift == 0 {
        return b;
    }
    if b & 0x7FFF_FFFF > 0x7F80_0000 {
        return match shift {
            // m = 0 has no NaN encoding: the pattern becomes infinity.
            23.. => b >> shift,
            _ => (b >> shift) | 1 << (22 - shift), // quiet NaN, top payload kept
        };
    }
    let lsb = (b >> shift) & 1;
    // No overflow: the largest non-NaN pattern 0xFF80_0000 plus < 2^23 fits.
    (b + (1 << (shift - 1)) - 1 + lsb) >> shift
}

impl fmt::Display for FloatFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for FloatFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl Serialize for FloatFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for FloatFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// [`FloatFormat::round_f32`] on vector lanes for formats narrower than f32 in both fields
/// (fp16, fp8, eEmM with E < 8): finite inputs at or above the format's smallest normal
/// round as [`RoundLanes`] does; smaller ones round to the fixed subnormal quantum by adding
/// and subtracting a power of two whose f32 spacing is that quantum (f32 addition rounds to
/// nearest even, as the format does); results above the largest finite value overflow as the
/// format says. Non-finite inputs are not handled: callers check [`NarrowLanes::is_special`]
/// and round those with the scalar encoder.
#[derive(Clone, Copy, Debug)]
pub struct NarrowLanes {
    /// The exponent field of the format's smallest normal magnitude, as f32 bits: the
    /// rounding quantum stops shrinking there (subnormals).
    min_exp: u32,
    /// The exponent field of twice the format's largest binade: beyond it every value
    /// overflows, so the quantum stops growing (and the magic constant stays finite).
    max_exp: u32,
    /// Added to an exponent field: the bits of `1.5 * 2^(23 - m)` times that power of two.
    magic: u32,
    /// Bits of the largest finite magnitude.
    max_finite: u32,
    /// Bits of what a positive overflow gives (saturation or infinity); a negative one
    /// gives the same with the sign bit set.
    overflow: u32,
}

impl NarrowLanes {
    /// The lane rounding of `f`, or `None` when `f` has the f32 exponent range (use
    /// [`RoundLanes`]), a range the f32 tricks do not cover, or overflows to NaN. Derived from
    /// the format's fields by integer arithmetic, cheap enough to build per value.
    #[inline]
    pub fn new(f: FloatFormat) -> Option<NarrowLanes> {
        let m = u32::from(f.man_bits);
        let emin = 1 - i32::from(f.bias);
        if f.exp_bits >= 8 || m > 22 || emin < -126 {
            return None;
        }
        let max_mag = f.max_finite_mag();
        let emax = (max_mag >> m) as i32 - i32::from(f.bias);
        if emax + 128 > 230 {
            return None;
        }
        let max_finite = (((emax + 127) as u32) << 23) | ((max_mag & ((1 << m) - 1)) << (23 - m));
        let overflow = match (f.overflow, f.nan) {
            (Overflow::Saturate, _) => max_finite,
            (Overflow::Infinity, NanStyle::Ieee) => 0x7F80_0000,
            (Overflow::Infinity, NanStyle::FiniteNan) => return None,
        };
        Some(NarrowLanes {
            min_exp: ((emin + 127) as u32) << 23,
            max_exp: ((emax + 128) as u32) << 23,
            magic: ((23 - m) << 23) | 0x0040_0000,
            max_finite,
            overflow,
        })
    }

    /// True for the inputs the lanes leave to the scalar encoder (infinities and NaNs).
    #[inline(always)]
    pub fn is_special(x: f32) -> bool {
        x.to_bits() & 0x7F80_0000 == 0x7F80_0000
    }

    /// `f.round_f32(x)` for a finite `x`. Adding and subtracting `1.5 * 2^(k + 23)` rounds to
    /// a multiple of `2^k` (to nearest even, by the hardware add); `k` is the format's
    /// quantum at `x`'s binade, clamped at the subnormal range below and the overflow range
    /// above. A zero result keeps `x`'s sign; a magnitude above the largest finite one
    /// overflows.
    #[inline(always)]
    pub fn value(self, x: f32) -> f32 {
        let b = x.to_bits();
        let sign = b & 0x8000_0000;
        let e = (b & 0x7F80_0000).clamp(self.min_exp, self.max_exp);
        let magic = f32::from_bits(e + self.magic);
        let mag = ((x + magic) - magic).to_bits() & 0x7FFF_FFFF;
        let mag = if mag > self.max_finite {
            self.overflow
        } else {
            mag
        };
        f32::from_bits(mag | sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use float8::{F8E4M3, F8E5M2};
    use half::{bf16, f16};
    use rand::rngs::Xoshiro256PlusPlus;
    use rand::{RngExt, SeedableRng};

    fn rng(seed: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(seed)
    }

    /// Bits equal, or both NaN (payloads of NaN decoded via f64 are not kept).
    fn same_or_both_nan(fmt: FloatFormat, got: u32, want: u32) -> bool {
        got == want || (fmt.is_nan_bits(got) && fmt.is_nan_bits(want))
    }

    /// Random f32 inputs that stress a format: raw bit patterns (every class),
    /// exact ties between neighbours of `fmt` and values one f32 ulp around them,
    /// values around the overflow threshold and around the subnormal range.
    fn stress_inputs(fmt: FloatFormat, n: usize, seed: u64) -> Vec<f32> {
        let mut r = rng(seed);
        let mut out = Vec::with_capacity(n * 4);
        let width_mask = fmt.mag_mask();
        for _ in 0..n {
            out.push(f32::from_bits(r.random::<u32>()));
            // Tie between a random finite pattern and its successor.
            let lo = r.random::<u32>() & width_mask;
            let (a, b) = (fmt.decode(lo), fmt.decode(lo + 1));
            if a.is_finite() && b.is_finite() {
                let mid = ((a + b) / 2.0) as f32; // exact: needs <= m + 2 bits
                let sign = if r.random::<bool>() { -1.0 } else { 1.0 };
                for v in [mid, mid.next_up(), mid.next_down()] {
                    out.push(sign * v);
                }
            }
            // Just past the largest finite value and near the smallest ones.
            let big = fmt.max_finite() * (1.0 + r.random::<f64>() * 0.2);
            out.push(big as f32);
            let tiny = fmt.min_positive() * r.random::<f64>() * 4.0;
            out.push(-(tiny as f32));
        }
        out.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN_POSITIVE,
        ]);
        out
    }

    #[test]
    fn presets_have_expected_layout() {
        assert_eq!(FloatFormat::FP32.bits(), 32);
        assert_eq!(FloatFormat::FP16.bits(), 16);
        assert_eq!(FloatFormat::BF16.bits(), 16);
        assert_eq!(FloatFormat::FP8_E4M3.bits(), 8);
        assert_eq!(FloatFormat::FP8_E4M3.max_finite(), 448.0);
        assert_eq!(FloatFormat::FP8_E5M2.max_finite(), 57344.0);
        assert_eq!(FloatFormat::FP16.max_finite(), 65504.0);
        assert_eq!(FloatFormat::FP32.max_finite(), f64::from(f32::MAX));
        assert_eq!(FloatFormat::parse("e4m3").unwrap().max_finite(), 240.0);
        assert_eq!(FloatFormat::FP8_E4M3.nan_bits(), Some(0x7F));
        assert_eq!(FloatFormat::FP8_E5M2.inf_mag(), Some(0x7C));
    }

    #[test]
    fn names_round_trip_through_parse() {
        let names = [
            "fp32",
            "fp16",
            "bf16",
            "fp8-e4m3",
            "fp8-e5m2",
            "e4m3",
            "e5m2",
            "e8m3",
            "e3m4",
            "e4m3fn-inf",
            "e5m2fn",
            "e3m4-b2",
            "e2m0",
            "e8m0-sat",
            "e4m3-b11-sat",
        ];
        for name in names {
            let f = FloatFormat::parse(name).unwrap();
            assert_eq!(f.name(), name);
            assert_eq!(FloatFormat::parse(&f.name()).unwrap(), f);
        }
        assert_eq!(FloatFormat::parse("E4M3FN").unwrap(), FloatFormat::FP8_E4M3);
        assert_eq!(
            FloatFormat::parse("e5m2-sat").unwrap(),
            FloatFormat::FP8_E5M2
        );
        assert_eq!(FloatFormat::parse("lmul-7").unwrap(), FloatFormat::BF16);
        assert_eq!(FloatFormat::parse("e8m23").unwrap(), FloatFormat::FP32);
        assert_eq!(FloatFormat::parse("lmul-3").unwrap().name(), "e8m3");
    }

    #[test]
    fn parse_rejects_bad_names_and_lists_valid_ones() {
        for bad in [
            "", "fp64", "e9m2", "e1m2", "e4m24", "e4", "m3", "e4m3-b0", "e4m3-x", "lmul-24",
            "e4m3fnfn",
        ] {
            let err = FloatFormat::parse(bad).unwrap_err();
            assert!(err.contains("fp8-e4m3"), "{err}");
        }
    }

    #[test]
    fn serde_uses_the_name_string() {
        let f = FloatFormat::FP8_E4M3;
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, "\"fp8-e4m3\"");
        assert_eq!(serde_json::from_str::<FloatFormat>(&json).unwrap(), f);
        assert!(serde_json::from_str::<FloatFormat>("\"nope\"").is_err());
    }

    #[test]
    fn fp16_decodes_every_pattern_like_half_and_requantizes_to_itself() {
        let fmt = FloatFormat::FP16;
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            let v = fmt.decode(u32::from(bits));
            assert!(
                v.to_bits() == h.to_f64().to_bits() || (v.is_nan() && h.is_nan()),
                "{bits:#x}"
            );
            assert_eq!(fmt.decode_f32(u32::from(bits)).is_nan(), h.is_nan());
            let q = fmt.quantize_f32(v as f32);
            assert!(
                same_or_both_nan(fmt, q, u32::from(bits)),
                "{bits:#x} -> {q:#x}"
            );
            assert!(same_or_both_nan(fmt, fmt.quantize_f64(v), u32::from(bits)));
        }
    }

    #[test]
    fn bf16_decodes_every_pattern_like_half_and_requantizes_to_itself() {
        let fmt = FloatFormat::BF16;
        for bits in 0..=u16::MAX {
            let h = bf16::from_bits(bits);
            let v = fmt.decode(u32::from(bits));
            assert!(
                v.to_bits() == h.to_f64().to_bits() || (v.is_nan() && h.is_nan()),
                "{bits:#x}"
            );
            let (d, w) = (fmt.decode_f32(u32::from(bits)), h.to_f32());
            // half quietens NaNs when widening; we keep the pattern as is.
            assert!(
                d.to_bits() == w.to_bits() || (d.is_nan() && w.is_nan()),
                "{bits:#x}"
            );
            let q = fmt.quantize_f32(v as f32);
            assert!(
                same_or_both_nan(fmt, q, u32::from(bits)),
                "{bits:#x} -> {q:#x}"
            );
            assert!(same_or_both_nan(fmt, fmt.quantize_f64(v), u32::from(bits)));
        }
    }

    #[test]
    fn fp8_decodes_every_pattern_like_float8() {
        for bits in 0..=u8::MAX {
            let (a, b) = (
                F8E4M3::from_bits(bits).to_f64(),
                F8E5M2::from_bits(bits).to_f64(),
            );
            let (x, y) = (
                FloatFormat::FP8_E4M3.decode(u32::from(bits)),
                FloatFormat::FP8_E5M2.decode(u32::from(bits)),
            );
            assert!(
                x == a || (x.is_nan() && a.is_nan()),
                "e4m3 {bits:#x}: {x} vs {a}"
            );
            assert!(
                y == b || (y.is_nan() && b.is_nan()),
                "e5m2 {bits:#x}: {y} vs {b}"
            );
            if !x.is_nan() {
                assert_eq!(x.to_bits() >> 63, a.to_bits() >> 63, "sign of {bits:#x}");
            }
        }
    }

    #[test]
    fn fp8_requantizes_every_pattern_like_float8() {
        for bits in 0..=u8::MAX {
            let e4m3: fn(f32) -> u32 = |v| u32::from(F8E4M3::from_f32(v).to_bits());
            let e5m2: fn(f32) -> u32 = |v| u32::from(F8E5M2::from_f32(v).to_bits());
            for (fmt, want) in [(FloatFormat::FP8_E4M3, e4m3), (FloatFormat::FP8_E5M2, e5m2)] {
                let v = fmt.decode(u32::from(bits)) as f32;
                let (got, exp) = (fmt.quantize_f32(v), want(v));
                assert!(
                    same_or_both_nan(fmt, got, exp),
                    "{} {bits:#x}: {got:#x} vs {exp:#x}",
                    fmt.name()
                );
            }
        }
    }

    #[test]
    fn fp16_quantizes_random_ties_and_out_of_range_like_half() {
        let fmt = FloatFormat::FP16;
        for x in stress_inputs(fmt, 200_000, 1) {
            let (got, want) = (fmt.quantize_f32(x), u32::from(f16::from_f32(x).to_bits()));
            assert_eq!(got, want, "{x:e} ({:#x})", x.to_bits());
        }
    }

    #[test]
    fn bf16_quantizes_random_ties_and_out_of_range_like_half() {
        let fmt = FloatFormat::BF16;
        for x in stress_inputs(fmt, 200_000, 2) {
            let (got, want) = (fmt.quantize_f32(x), u32::from(bf16::from_f32(x).to_bits()));
            assert_eq!(got, want, "{x:e} ({:#x})", x.to_bits());
            // The generic f64 path must agree with the f32 fast path.
            assert!(
                same_or_both_nan(fmt, fmt.quantize_f64(f64::from(x)), want),
                "{x:e}"
            );
        }
    }

    #[test]
    fn fp8_quantizes_random_ties_and_out_of_range_like_float8() {
        for x in stress_inputs(FloatFormat::FP8_E4M3, 100_000, 3) {
            let (got, want) = (
                FloatFormat::FP8_E4M3.quantize_f32(x),
                u32::from(F8E4M3::from_f32(x).to_bits()),
            );
            assert_eq!(got, want, "e4m3 {x:e} ({:#x})", x.to_bits());
        }
        for x in stress_inputs(FloatFormat::FP8_E5M2, 100_000, 4) {
            let (got, want) = (
                FloatFormat::FP8_E5M2.quantize_f32(x),
                u32::from(F8E5M2::from_f32(x).to_bits()),
            );
            assert_eq!(got, want, "e5m2 {x:e} ({:#x})", x.to_bits());
        }
    }

    #[test]
    fn fp32_quantizes_random_f64_like_as_cast() {
        let fmt = FloatFormat::FP32;
        let mut r = rng(5);
        for i in 0..500_000 {
            let x = match i % 4 {
                0 => f64::from_bits(r.random::<u64>()),
                // Exact tie between two f32 neighbours, possibly subnormal.
                1 => {
                    let b = r.random::<u32>() & 0x7F7F_FFFF;
                    (f64::from(f32::from_bits(b)) + f64::from(f32::from_bits(b + 1))) / 2.0
                }
                // Around the overflow threshold and below the subnormals.
                2 => f64::from(f32::MAX) * (1.0 + r.random::<f64>() * 1e-7),
                _ => f64::from(f32::from_bits(1)) * r.random::<f64>() * 2.0,
            };
            let (got, want) = (fmt.quantize_f64(x), (x as f32).to_bits());
            assert!(
                same_or_both_nan(fmt, got, want),
                "{x:e}: {got:#x} vs {want:#x}"
            );
            assert_eq!(fmt.quantize_f32(x as f32), want);
        }
    }

    /// For formats without a library reference: every finite pattern survives a
    /// round trip, and rounding picks the nearer neighbour (the even one on ties).
    #[test]
    fn generic_formats_round_to_nearest_even() {
        let mut r = rng(6);
        for name in [
            "e2m0", "e2m3", "e3m4", "e4m3", "e5m2", "e4m3fn", "e6m5-b20", "e8m0", "e8m3",
            "e5m7-sat",
        ] {
            let fmt = FloatFormat::parse(name).unwrap();
            let limit = fmt.max_finite_mag();
            for mag in 0..=limit.min(1 << 13) {
                assert_eq!(fmt.quantize_f64(fmt.decode(mag)), mag, "{name} {mag:#x}");
            }
            for _ in 0..20_000 {
                let mag = r.random_range(0..limit);
                let (lo, hi) = (fmt.decode(mag), fmt.decode(mag + 1));
                let x = lo + (hi - lo) * r.random::<f64>();
                let got = fmt.quantize_f64(x);
                let want = if x - lo < hi - x || (x - lo == hi - x && mag % 2 == 0) {
                    mag
                } else {
                    mag + 1
                };
                assert_eq!(got, want, "{name}: {x:e} between {lo:e} and {hi:e}");
                assert_eq!(fmt.quantize_f64(-x), want | fmt.sign_mask());
            }
        }
    }

    #[test]
    fn overflow_modes_saturate_or_go_infinite() {
        let big = 1e6;
        assert_eq!(FloatFormat::FP8_E4M3.quantize_f64(big), 0x7E);
        assert_eq!(FloatFormat::FP8_E4M3.quantize_f64(-f64::INFINITY), 0xFE);
        assert_eq!(
            FloatFormat::FP8_E4M3
                .with_overflow(Overflow::Infinity)
                .quantize_f64(big),
            0x7F
        );
        assert_eq!(FloatFormat::FP8_E5M2.quantize_f64(big), 0x7B);
        assert_eq!(FloatFormat::FP8_E5M2.quantize_f64(f64::INFINITY), 0x7B);
        let e5m2 = FloatFormat::parse("e5m2").unwrap();
        assert_eq!(e5m2.quantize_f64(big), 0x7C);
        assert_eq!(e5m2.quantize_f64(f64::NAN) & 0x7F, 0x7E);
        assert_eq!(FloatFormat::FP16.quantize_f64(65520.0), 0x7C00); // tie rounds up to inf
        assert_eq!(FloatFormat::FP16.quantize_f64(65519.99), 0x7BFF);
        let e8m0 = FloatFormat::parse("e8m0").unwrap();
        assert!(
            e8m0.is_inf_bits(e8m0.quantize_f32(f32::NAN)),
            "m = 0 has no NaN"
        );
    }

    #[test]
    fn subnormals_and_signed_zero_are_kept() {
        let f = FloatFormat::FP8_E4M3;
        assert_eq!(f.quantize_f64(2f64.powi(-9)), 0x01);
        assert_eq!(f.quantize_f64(2f64.powi(-10)), 0x00); // tie to even (zero)
        assert_eq!(f.quantize_f64(-2f64.powi(-10) * 1.01), 0x81);
        assert_eq!(f.quantize_f64(-0.0), 0x80);
        assert_eq!(f.quantize_f64(-1e-300), 0x80);
        assert!(f.is_subnormal_bits(0x81) && !f.is_subnormal_bits(0x80) && f.is_zero_bits(0x80));
        assert_eq!(f.min_positive_normal(), 2f64.powi(-6));
        // Rounding up out of the subnormal range yields the smallest normal.
        assert_eq!(f.quantize_f64(2f64.powi(-6) * (1.0 - 1.0 / 32.0)), 0x08);
    }
}

/// [`round_f32_bits`] for a whole slice with the branches turned into selects, so the compiler
/// can run it on vector lanes; the same bits for every input.
#[derive(Clone, Copy, Debug)]
pub struct RoundLanes {
    shift: u32,
    /// `2^(shift-1) - 1`, or 0 when `shift` is 0 (no rounding).
    half: u32,
    /// 1, or 0 when `shift` is 0 (the kept bit's parity does not matter).
    lsb: u32,
    /// The quiet bit of a NaN after the shift (0 when there is no mantissa left).
    quiet: u32,
    /// NaNs are rewritten (false only when `shift` is 0: the value passes unchanged).
    fix_nan: bool,
}

impl RoundLanes {
    pub fn new(shift: u32) -> RoundLanes {
        RoundLanes {
            shift,
            half: if shift == 0 {
                0
            } else {
                (1 << (shift - 1)) - 1
            },
            lsb: (shift > 0) as u32,
            quiet: if (1..23).contains(&shift) {
                1 << (22 - shift)
            } else {
                0
            },
            fix_nan: shift > 0,
        }
    }

    /// The rounded pattern, shifted right by `shift` (as [`round_f32_bits`]).
    #[inline(always)]
    pub fn bits(self, b: u32) -> u32 {
        let nan = self.fix_nan & (b & 0x7FFF_FFFF > 0x7F80_0000);
        let rounded = b.wrapping_add(self.half + ((b >> self.shift) & self.lsb)) >> self.shift;
        let quieted = (b >> self.shift) | self.quiet;
        if nan { quieted } else { rounded }
    }

    /// The rounded value as an `f32`.
    #[inline(always)]
    pub fn value(self, v: f32) -> f32 {
        f32::from_bits(self.bits(v.to_bits()) << self.shift)
    }

    /// [`RoundLanes::value`] for a value that is not a NaN (no quieting: fewer operations).
    #[inline(always)]
    pub fn value_not_nan(self, v: f32) -> f32 {
        let b = v.to_bits();
        f32::from_bits(
            b.wrapping_add(self.half + ((b >> self.shift) & self.lsb)) >> self.shift << self.shift,
        )
    }
}

#[cfg(test)]
mod lane_tests {
    use super::*;

    #[test]
    fn lane_rounding_gives_the_scalar_bits_for_every_shift() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut specials = vec![
            0u32,
            0x8000_0000,
            0x7F80_0000,
            0xFF80_0000,
            0x7FC0_0000,
            0x7F80_0001,
            0xFFFF_FFFF,
            0x7F7F_FFFF,
            0x0000_0001,
            0x007F_FFFF,
            0x3F80_8000,
            0x3F81_8000,
            0x3F80_7FFF,
        ];
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            specials.push(rng as u32);
        }
        for shift in 0..=23 {
            let lanes = RoundLanes::new(shift);
            for &b in &specials {
                assert_eq!(
                    lanes.bits(b),
                    round_f32_bits(b, shift),
                    "{b:#x} shift {shift}"
                );
            }
        }
    }

    #[test]
    fn narrow_lane_rounding_gives_the_scalar_value_for_every_finite_input() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut inputs: Vec<u32> = vec![0, 0x8000_0000, 0x0000_0001, 0x007F_FFFF, 0x7F7F_FFFF];
        for _ in 0..40_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            inputs.push(rng as u32);
            // Magnitudes in and around the narrow formats' ranges, where the cases meet.
            let e = 100 + (rng >> 40) % 50;
            inputs.push(((rng >> 32) as u32 & 0x807F_FFFF) | ((e as u32) << 23));
        }
        let formats = [
            "fp16",
            "fp8-e4m3",
            "fp8-e5m2",
            "e4m3",
            "e3m4-b3",
            "e2m1",
            "e5m0",
            "e6m9",
            "e4m3fn-sat",
            "e5m2-sat",
        ];
        for name in formats {
            let f = FloatFormat::parse(name).unwrap();
            let lanes = NarrowLanes::new(f).unwrap_or_else(|| panic!("{name} has lanes"));
            for &b in &inputs {
                let x = f32::from_bits(b);
                if NarrowLanes::is_special(x) {
                    continue;
                }
                let (got, want) = (lanes.value(x), f.round_f32_encoded(x));
                let fast = f.round_f32(x);
                assert!(
                    fast.to_bits() == want.to_bits() || (fast.is_nan() && want.is_nan()),
                    "{name}: round_f32 of {x:e} ({b:#x}) gave {fast:e}, encoder {want:e}"
                );
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{name}: {x:e} ({b:#x}) gave {got:e}, scalar {want:e}"
                );
            }
        }
        assert!(NarrowLanes::new(FloatFormat::BF16).is_none());
    }
}
