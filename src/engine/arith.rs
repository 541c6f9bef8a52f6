//! The arithmetic mode: one value passed to every primitive, so a model never branches on it.
//!
//! A mode says how multiplies and accumulations are carried out (exact fp32, rounded into a
//! narrower float format, or L-Mul), and a scope says which layer classes it applies to (all,
//! only projections, only the token-mixing/attention arithmetic, or both of those: every tensor
//! product). Each primitive asks for the mode at its own site with [`Arith::at`], so models pass
//! one `&Arith` everywhere.

use serde::{Deserialize, Serialize};

pub use super::isa::Isa;
use crate::ledger::{Counts, FP32, Fmt, Op};
use crate::numerics::FloatFormat;
use crate::numerics::format::{NarrowLanes, RoundLanes};
use crate::numerics::lmul::{LmulPolicy, PreparedLmul, lmul_f32};

/// How multiplies and accumulations are carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// IEEE fp32 throughout.
    Exact,
    /// Operands and products rounded to nearest even into `format`; every accumulation rounded
    /// into `acc`.
    Round {
        format: FloatFormat,
        acc: FloatFormat,
    },
    /// Each multiply is an L-Mul in `format` (one integer add of width e + m on the bit
    /// patterns); accumulation in `acc`. `fold_weight_offset`: the L-Mul offset constant is
    /// pre-subtracted from stationary weights, so a product with a weight costs one add; an
    /// element-wise product of two activations always pays the constant subtraction.
    Lmul {
        format: FloatFormat,
        acc: FloatFormat,
        policy: LmulPolicy,
        fold_weight_offset: bool,
    },
}

/// Which layer classes the mode applies to; the others run exact fp32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Scope {
    /// Every multiply, norms, activation functions, neurons and residuals included.
    #[default]
    All,
    /// Linear projections only (dot products with weights).
    Projections,
    /// Token-mixing and attention arithmetic only (WKV, attention products, gates, token shift).
    Attention,
    /// Projections and attention: every tensor product, the L-Mul paper's "all multiplications"
    /// reading; norms, activation functions, neurons, residuals and pooling stay fp32.
    TensorProducts,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::All,
        Scope::Projections,
        Scope::Attention,
        Scope::TensorProducts,
    ];

    /// The scenario spelling (`scope: TensorProducts`).
    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "All",
            Scope::Projections => "Projections",
            Scope::Attention => "Attention",
            Scope::TensorProducts => "TensorProducts",
        }
    }
}

/// The class of a primitive, for scoping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Projection,
    Attention,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arith {
    pub mode: Mode,
    pub scope: Scope,
}

impl Default for Arith {
    fn default() -> Self {
        Arith::Exact
    }
}

#[allow(non_upper_case_globals)]
impl Arith {
    /// Exact fp32 everywhere.
    pub const Exact: Arith = Arith {
        mode: Mode::Exact,
        scope: Scope::All,
    };

    pub fn new(mode: Mode, scope: Scope) -> Arith {
        Arith { mode, scope }
    }

    /// The mode that applies at `site`: this one if the scope covers the site, exact otherwise.
    #[inline]
    pub fn at(&self, site: Site) -> Arith {
        let covered = matches!(
            (self.scope, site),
            (Scope::All, _)
                | (Scope::Projections, Site::Projection)
                | (Scope::Attention, Site::Attention)
                | (Scope::TensorProducts, Site::Projection | Site::Attention)
        );
        if covered {
            Arith {
                mode: self.mode,
                scope: Scope::All,
            }
        } else {
            Arith::Exact
        }
    }

    pub fn is_exact(&self) -> bool {
        self.mode == Mode::Exact
    }

    /// A short label, e.g. `fp32`, `bf16 (acc fp32)`, `lmul e8m3 (acc fp32) on projections`.
    pub fn label(&self) -> String {
        let core = match self.mode {
            Mode::Exact => "fp32".to_string(),
            Mode::Round { format, acc } => format!("{} (acc {})", format.name(), acc.name()),
            Mode::Lmul {
                format,
                acc,
                policy,
                ..
            } => {
                let p = if policy == LmulPolicy::Raw {
                    ", raw"
                } else {
                    ""
                };
                format!("lmul {} (acc {}{p})", format.name(), acc.name())
            }
        };
        match self.scope {
            Scope::All => core,
            Scope::Projections => format!("{core} on projections"),
            Scope::Attention => format!("{core} on attention"),
            Scope::TensorProducts => format!("{core} on tensor products"),
        }
    }

    fn float(format: FloatFormat) -> Fmt {
        Fmt::Float {
            e: format.exp_bits() as u8,
            m: format.man_bits() as u8,
        }
    }

    /// Number format of multiplies and of stored operands (weights, activations).
    pub fn fmt(&self) -> Fmt {
        match self.mode {
            Mode::Exact => FP32,
            Mode::Round { format, .. } | Mode::Lmul { format, .. } => Self::float(format),
        }
    }

    /// Number format of accumulations.
    pub fn acc_fmt(&self) -> Fmt {
        match self.mode {
            Mode::Exact => FP32,
            Mode::Round { acc, .. } | Mode::Lmul { acc, .. } => Self::float(acc),
        }
    }

    /// The format stored operands are rounded into (None for exact fp32).
    pub fn operand_format(&self) -> Option<FloatFormat> {
        match self.mode {
            Mode::Exact => None,
            Mode::Round { format, .. } | Mode::Lmul { format, .. } => Some(format),
        }
    }

    /// Bytes of one stored operand.
    pub fn operand_bytes(&self) -> u64 {
        self.fmt().bytes()
    }

    /// A stored operand (a weight): rounded into the operand format.
    #[inline(always)]
    pub fn operand(&self, w: f32) -> f32 {
        match self.mode {
            Mode::Exact => w,
            Mode::Round { format, .. } | Mode::Lmul { format, .. } => format.round_f32(w),
        }
    }

    /// An element-wise product.
    #[inline(always)]
    pub fn mul(&self, a: f32, b: f32) -> f32 {
        match self.mode {
            Mode::Exact => a * b,
            // Products of two operands of at most 11 significant bits are exact in f32, so
            // rounding the f32 product once is the correctly rounded product for fp16 and below.
            Mode::Round { format, .. } => {
                format.round_f32(format.round_f32(a) * format.round_f32(b))
            }
            Mode::Lmul { format, policy, .. } => lmul_f32(a, b, format, policy),
        }
    }

    /// An accumulation: the sum rounded into the accumulation format.
    #[inline(always)]
    pub fn add(&self, a: f32, b: f32) -> f32 {
        match self.mode {
            Mode::Exact => a + b,
            Mode::Round { acc, .. } | Mode::Lmul { acc, .. } => {
                if acc == FloatFormat::FP32 {
                    a + b
                } else {
                    acc.round_f32(a + b)
                }
            }
        }
    }

    fn count_product(&self, c: &mut Counts, n: u64, stationary_weight: bool) {
        match self.mode {
            Mode::Exact | Mode::Round { .. } => c.add(Op::Mul, self.fmt(), n),
            Mode::Lmul {
                format,
                fold_weight_offset,
                ..
            } => {
                c.add(Op::Lmul, self.fmt(), n);
                if !(stationary_weight && fold_weight_offset) {
                    // The offset constant: one more integer add of the same width.
                    let bits = (format.exp_bits() + format.man_bits()) as u8;
                    c.add(Op::Add, Fmt::Int { bits }, n);
                }
            }
        }
    }

    /// A product with a max-trick factor `e` = exp(x - max), where `is_max` says `e` is the
    /// maximum's own exp(0) = 1. In fp32 that multiply is the identity and is carried out, as the
    /// released kernels do. In an emulated format it is not the identity (L-Mul adds its 2^-l
    /// correction, a rounding format rounds `x` into the operand format), so a kernel selects `x`
    /// unchanged instead.
    #[inline(always)]
    pub fn mul_rescale(&self, is_max: bool, e: f32, x: f32) -> f32 {
        if is_max && !self.is_exact() {
            x
        } else {
            self.mul(e, x)
        }
    }

    /// Count `n` element-wise max-trick products ([`Arith::mul_rescale`]) of which `selects` have
    /// the maximum's factor. A select is no arithmetic: the compare that steers it is the max,
    /// counted where the max is taken.
    #[inline]
    pub fn count_rescale(&self, c: &mut Counts, n: u64, selects: u64) {
        let products = if self.is_exact() { n } else { n - selects };
        self.count_product(c, products, false);
    }

    /// Count `n` multiply-accumulates with max-trick factors of which `selects` have the
    /// maximum's factor: outside fp32 those are a select and an accumulation.
    #[inline]
    pub fn count_rescale_mac(&self, c: &mut Counts, n: u64, selects: u64) {
        if self.is_exact() {
            self.count_mac(c, n);
        } else {
            self.count_mac(c, n - selects);
            self.count_add(c, selects);
        }
    }

    /// Count `n` element-wise products (no stationary operand).
    #[inline]
    pub fn count_mul(&self, c: &mut Counts, n: u64) {
        self.count_product(c, n, false);
    }

    /// Count `n` multiply-accumulates of a dot product with weights. Exact fp32 and
    /// same-format rounding count `mac`; L-Mul and mixed formats count the product and the
    /// accumulation separately.
    #[inline]
    pub fn count_mac(&self, c: &mut Counts, n: u64) {
        match self.mode {
            Mode::Round { format, acc } if format != acc => {
                self.count_product(c, n, true);
                c.add(Op::Add, self.acc_fmt(), n);
            }
            Mode::Exact | Mode::Round { .. } => c.add(Op::Mac, self.fmt(), n),
            Mode::Lmul { .. } => {
                self.count_product(c, n, true);
                c.add(Op::Add, self.acc_fmt(), n);
            }
        }
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

/// An arithmetic mode with its per-format constants computed once, for the inner loops of a
/// layer: the same values as [`Arith::mul`] and [`Arith::add`], without re-deriving the format's
/// constants for every product.
#[derive(Clone, Copy, Debug)]
pub enum Prepared {
    Exact,
    /// Rounding into an f32-layout format (e8, bias 127): plain bit shifts.
    RoundShift {
        shift: u32,
        acc: Option<FloatFormat>,
    },
    Round {
        format: FloatFormat,
        acc: Option<FloatFormat>,
        /// The format's rounding on vector lanes, when it is narrower than f32 (fp16, fp8).
        lanes: Option<NarrowLanes>,
    },
    Lmul {
        kernel: PreparedLmul,
        acc: Option<FloatFormat>,
    },
}

impl Prepared {
    #[inline(always)]
    fn round_shift(v: f32, shift: u32) -> f32 {
        f32::from_bits(crate::numerics::format::round_f32_bits(v.to_bits(), shift) << shift)
    }

    #[inline(always)]
    pub fn mul(&self, a: f32, b: f32) -> f32 {
        match *self {
            Prepared::Exact => a * b,
            Prepared::RoundShift { shift, .. } => Self::round_shift(
                Self::round_shift(a, shift) * Self::round_shift(b, shift),
                shift,
            ),
            Prepared::Round { format, .. } => {
                format.round_f32(format.round_f32(a) * format.round_f32(b))
            }
            Prepared::Lmul { kernel, .. } => kernel.mul_f32(a, b),
        }
    }

    #[inline(always)]
    pub fn add(&self, a: f32, b: f32) -> f32 {
        match *self {
            Prepared::Exact => a + b,
            Prepared::RoundShift { acc, .. }
            | Prepared::Round { acc, .. }
            | Prepared::Lmul { acc, .. } => match acc {
                None => a + b,
                Some(f) => f.round_f32(a + b),
            },
        }
    }
}

/// How an accumulation rounds, prepared for a row: not at all (fp32), by a shift (e8 formats),
/// or through the general encoder.
#[derive(Clone, Copy)]
enum AccRound {
    None,
    Shift(RoundLanes),
    Narrow(NarrowLanes, FloatFormat),
    /// IEEE fp16 by the CPU's conversion instructions (when it has them).
    Fp16Hw,
    General(FloatFormat),
}

impl AccRound {
    fn of(acc: Option<FloatFormat>) -> AccRound {
        match acc {
            None => AccRound::None,
            Some(f) if f == FloatFormat::FP16 && crate::numerics::f16c::available() => {
                AccRound::Fp16Hw
            }
            Some(f) => match (f.f32_fast_shift(), NarrowLanes::new(f)) {
                (Some(shift), _) => AccRound::Shift(RoundLanes::new(shift)),
                (None, Some(lanes)) => AccRound::Narrow(lanes, f),
                (None, None) => AccRound::General(f),
            },
        }
    }

    /// `ys[o] = round(ys[o] + t[o])` for every `o`, in the vectors of `isa`.
    #[inline(always)]
    fn add_into(self, isa: Isa, ys: &mut [f32], t: &[f32]) {
        match self {
            AccRound::None => {
                for (a, &v) in ys.iter_mut().zip(t) {
                    *a += v;
                }
            }
            AccRound::Shift(lanes) => {
                for (a, &v) in ys.iter_mut().zip(t) {
                    *a = lanes.value(*a + v);
                }
            }
            AccRound::Narrow(lanes, f) => {
                let mut special = false;
                for (a, &v) in ys.iter().zip(t) {
                    special |= NarrowLanes::is_special(*a + v);
                }
                if special {
                    for (a, &v) in ys.iter_mut().zip(t) {
                        *a = f.round_f32(*a + v);
                    }
                } else {
                    for (a, &v) in ys.iter_mut().zip(t) {
                        *a = lanes.value(*a + v);
                    }
                }
            }
            AccRound::Fp16Hw => {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Fp16Hw` is only chosen when the CPU has AVX2 and F16C, and `isa`
                // is one the CPU runs.
                if unsafe {
                    if isa == Isa::Avx512 {
                        crate::numerics::f16c::add_into16(ys, t)
                    } else {
                        crate::numerics::f16c::add_into(ys, t)
                    }
                } {
                    return;
                }
                for (a, &v) in ys.iter_mut().zip(t) {
                    *a = FloatFormat::FP16.round_f32(*a + v);
                }
            }
            AccRound::General(f) => {
                for (a, &v) in ys.iter_mut().zip(t) {
                    *a = f.round_f32(*a + v);
                }
            }
        }
    }
}

/// How a fused loop rounds its accumulation: `a = acc(a + p)` one lane at a time (true when
/// the lane is left to the scalar path), or eight lanes at a time (true when any is).
enum Acc<L, B> {
    Lane(L),
    Blocks(B),
}

type LaneAcc = fn(f32) -> (f32, bool);
type BlockAcc = fn(&mut [f32; 8], &[f32; 8]) -> bool;

/// When set, the row kernels run the scalar reference calls instead of the vector lanes (the
/// values are the same bit for bit; benchmarks measure the lanes against it).
static SCALAR_ROWS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Run [`Prepared::mac_row`] and [`Prepared::accumulate_row`] as per-element scalar calls
/// (`true`) or on vector lanes (`false`, the default). Results do not change.
pub fn set_scalar_rows(scalar: bool) {
    SCALAR_ROWS.store(scalar, std::sync::atomic::Ordering::Relaxed);
}

fn scalar_rows() -> bool {
    SCALAR_ROWS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Elements per stack buffer of products in the row kernels.
const ROW_CHUNK: usize = 256;

impl Prepared {
    fn acc(&self) -> Option<FloatFormat> {
        match *self {
            Prepared::Exact => None,
            Prepared::RoundShift { acc, .. }
            | Prepared::Round { acc, .. }
            | Prepared::Lmul { acc, .. } => acc,
        }
    }

    /// A stored operand rounded into the operand format: the same value as [`Arith::operand`].
    #[inline(always)]
    pub fn operand(&self, w: f32) -> f32 {
        match *self {
            Prepared::Exact => w,
            Prepared::RoundShift { shift, .. } => Self::round_shift(w, shift),
            Prepared::Round { format, .. } => format.round_f32(w),
            Prepared::Lmul { kernel, .. } => kernel.round_operand(w),
        }
    }

    /// `ys[o] = add(ys[o], mul(x, w[o]))` for every `o`: the values of the scalar calls, bit
    /// for bit, computed on 256-bit vector lanes when the CPU has AVX2 (detected at run time):
    /// e8 formats (bf16, `lmul-k`) and narrow ones (fp16, fp8, eEmM with E < 8); lanes with
    /// specials, and formats outside both, run the scalar calls.
    pub fn mac_row(&self, x: f32, w: &[f32], ys: &mut [f32]) {
        self.mac_row_on::<false>(Isa::best(), x, w, ys)
    }

    /// [`Prepared::mac_row`] for weights already rounded into the operand format
    /// (`operand(q[o]) == q[o]`, as [`Prepared::round_operands`] gives): the same values, since
    /// the rounding is idempotent, without rounding every weight again for every input.
    pub fn mac_row_rounded(&self, x: f32, q: &[f32], ys: &mut [f32]) {
        self.mac_row_on::<true>(Isa::best(), x, q, ys)
    }

    /// Whether the `_rounded` row kernels apply: not to exact fp32 (nothing to round), nor to
    /// the one mode where rounding beforehand changes products (a NaN weight under the raw
    /// L-Mul policy in a narrow format).
    pub fn takes_rounded_operands(&self) -> bool {
        match self {
            Prepared::Exact => false,
            Prepared::Lmul { kernel, .. } => kernel.takes_rounded_operands(),
            _ => true,
        }
    }

    /// `q[i] = operand(w[i])`: weights rounded once into the operand format, for the `_rounded`
    /// row kernels.
    pub fn round_operands(&self, w: &[f32]) -> Vec<f32> {
        w.iter().map(|&v| self.operand(v)).collect()
    }

    /// The row kernel compiled for `isa` (which the CPU must run: [`Isa::supported`]).
    pub(crate) fn mac_row_on<const ROUNDED: bool>(
        &self,
        isa: Isa,
        x: f32,
        w: &[f32],
        ys: &mut [f32],
    ) {
        if scalar_rows() {
            for (y, &wv) in ys.iter_mut().zip(w) {
                *y = self.add(*y, self.mul(x, wv));
            }
            return;
        }
        match isa {
            // SAFETY (both): `isa` comes from `Isa::best`/`Isa::supported`, so the CPU has it.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.mac_row_avx512::<ROUNDED>(x, w, ys) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.mac_row_avx2::<ROUNDED>(x, w, ys) },
            _ => self.mac_row_lanes::<ROUNDED>(Isa::Portable, x, w, ys),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    fn mac_row_avx512<const ROUNDED: bool>(&self, x: f32, w: &[f32], ys: &mut [f32]) {
        self.mac_row_lanes::<ROUNDED>(Isa::Avx512, x, w, ys);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn mac_row_avx2<const ROUNDED: bool>(&self, x: f32, w: &[f32], ys: &mut [f32]) {
        self.mac_row_lanes::<ROUNDED>(Isa::Avx2, x, w, ys);
    }

    /// The loop of [`Prepared::mac_row`], written as selects on independent lanes so the
    /// compiler vectorises it; products go through a stack buffer, then the accumulation.
    /// `ROUNDED`: the weights are already in the operand format (rounding them is skipped).
    #[inline(always)]
    fn mac_row_lanes<const ROUNDED: bool>(&self, isa: Isa, x: f32, w: &[f32], ys: &mut [f32]) {
        debug_assert_eq!(w.len(), ys.len());
        let acc = AccRound::of(self.acc());
        let mut tmp = [0f32; ROW_CHUNK];
        for (wc, yc) in w.chunks(ROW_CHUNK).zip(ys.chunks_mut(ROW_CHUNK)) {
            let t = &mut tmp[..wc.len()];
            match *self {
                Prepared::Exact => {
                    for (p, &wv) in t.iter_mut().zip(wc) {
                        *p = x * wv;
                    }
                }
                Prepared::RoundShift { shift, .. } => {
                    let lanes = RoundLanes::new(shift);
                    let qx = lanes.value(x);
                    for (p, &wv) in t.iter_mut().zip(wc) {
                        let qw = if ROUNDED { wv } else { lanes.value(wv) };
                        *p = lanes.value(qx * qw);
                    }
                }
                Prepared::Round {
                    lanes: Some(lanes), ..
                } => {
                    // Inputs and raw products all finite: the lanes; otherwise the chunk runs
                    // the scalar calls (NaN payloads and overflows follow the encoder there).
                    let qx = lanes.value(x);
                    let mut special = NarrowLanes::is_special(x);
                    for (p, &wv) in t.iter_mut().zip(wc) {
                        special |= NarrowLanes::is_special(wv);
                        let qw = if ROUNDED { wv } else { lanes.value(wv) };
                        *p = qx * qw;
                        special |= NarrowLanes::is_special(*p);
                    }
                    if special {
                        for (p, &wv) in t.iter_mut().zip(wc) {
                            *p = self.mul(x, wv);
                        }
                    } else {
                        for p in t.iter_mut() {
                            *p = lanes.value(*p);
                        }
                    }
                }
                Prepared::Round { lanes: None, .. } => {
                    for (p, &wv) in t.iter_mut().zip(wc) {
                        *p = self.mul(x, wv);
                    }
                }
                Prepared::Lmul { kernel, .. } => kernel.mul_slice::<ROUNDED>(x, wc, t),
            }
            acc.add_into(isa, yc, t);
        }
    }

    /// Four inputs in one pass over the outputs, weights already rounded (as
    /// [`Prepared::mac_row_rounded`] for `x[0]`, then `x[1]`, `x[2]`, `x[3]`): each output adds
    /// its four products in that order, so the values are those of the four calls, bit for bit,
    /// with a quarter of the accumulator traffic and no product buffer.
    pub fn mac4_rounded(&self, x: [f32; 4], q: [&[f32]; 4], ys: &mut [f32]) {
        self.mac4_rounded_on(Isa::best(), x, q, ys)
    }

    /// [`Prepared::mac4_rounded`] compiled for `isa` (which the CPU must run).
    pub(crate) fn mac4_rounded_on(&self, isa: Isa, x: [f32; 4], q: [&[f32]; 4], ys: &mut [f32]) {
        if !scalar_rows() {
            match isa {
                // SAFETY (both): `isa` comes from `Isa::best`/`Isa::supported`.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { self.mac4_avx512(x, q, ys) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { self.mac4_avx2(x, q, ys) },
                _ => {
                    if !self.mac4_lanes(isa, x, q, ys) {
                        self.mac4_in_turn(isa, x, q, ys, 0);
                    }
                }
            }
            return;
        }
        self.mac4_in_turn(isa, x, q, ys, 0);
    }

    /// The four inputs one after the other, over `ys` = outputs `lo..lo + ys.len()`.
    fn mac4_in_turn(&self, isa: Isa, x: [f32; 4], q: [&[f32]; 4], ys: &mut [f32], lo: usize) {
        for k in 0..4 {
            self.mac_row_on::<true>(isa, x[k], &q[k][lo..lo + ys.len()], ys);
        }
    }

    /// The fused loop in 512-bit vectors; fp16 accumulation rounds sixteen lanes at a time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    fn mac4_avx512(&self, x: [f32; 4], q: [&[f32]; 4], ys: &mut [f32]) {
        let done = match AccRound::of(self.acc()) {
            AccRound::Fp16Hw => {
                let acc16 =
                    |a: &mut [f32; 16], p: &[f32; 16]| crate::numerics::f16c::round_sum16(a, p);
                self.mac4_products(Isa::Avx512, x, q, ys, Acc::<LaneAcc, _>::Blocks(acc16))
            }
            _ => self.mac4_lanes(Isa::Avx512, x, q, ys),
        };
        if !done {
            self.mac4_in_turn(Isa::Avx512, x, q, ys, 0);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn mac4_avx2(&self, x: [f32; 4], q: [&[f32]; 4], ys: &mut [f32]) {
        if !self.mac4_lanes(Isa::Avx2, x, q, ys) {
            self.mac4_in_turn(Isa::Avx2, x, q, ys, 0);
        }
    }

    /// The fused loop for the modes whose products and accumulations have lane forms (e8
    /// and narrow rounding, e8 and narrow L-Mul; accumulation in fp32, an e8 or a narrow
    /// format); false when this mode has none (the caller runs the inputs in turn). A chunk
    /// with a value the lanes leave to the scalar path is restored and redone input by input.
    /// Every choice is made here, outside the loops, so that each loop is one vector loop.
    #[inline(always)]
    fn mac4_lanes(&self, isa: Isa, x: [f32; 4], q: [&[f32]; 4], ys: &mut [f32]) -> bool {
        match AccRound::of(self.acc()) {
            AccRound::None => {
                self.mac4_products(isa, x, q, ys, Acc::<_, BlockAcc>::Lane(|v| (v, false)))
            }
            AccRound::Shift(l) => self.mac4_products(
                isa,
                x,
                q,
                ys,
                Acc::<_, BlockAcc>::Lane(|v| (l.value(v), false)),
            ),
            AccRound::Narrow(l, _) => self.mac4_products(
                isa,
                x,
                q,
                ys,
                Acc::<_, BlockAcc>::Lane(|v| (l.value(v), NarrowLanes::is_special(v))),
            ),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Fp16Hw` is only chosen when the CPU has AVX2 and F16C.
            AccRound::Fp16Hw if isa != Isa::Portable => unsafe { self.mac4_fp16_hw(x, q, ys) },
            _ => false,
        }
    }

    /// [`Prepared::mac4_lanes`] accumulating in fp16 by the CPU's conversions, compiled with
    /// them enabled so that the rounding inlines into the loop.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,f16c")]
    fn mac4_fp16_hw(&self, x: [f32; 4], q: [&[f32]; 4], ys: &mut [f32]) -> bool {
        let acc8 = |a: &mut [f32; 8], p: &[f32; 8]| crate::numerics::f16c::round_sum8(a, p);
        self.mac4_products(Isa::Avx2, x, q, ys, Acc::<LaneAcc, _>::Blocks(acc8))
    }

    #[inline(always)]
    fn mac4_products<const W: usize>(
        &self,
        isa: Isa,
        x: [f32; 4],
        q: [&[f32]; 4],
        ys: &mut [f32],
        acc: Acc<impl Fn(f32) -> (f32, bool), impl Fn(&mut [f32; W], &[f32; W]) -> bool>,
    ) -> bool {
        use crate::numerics::lmul::Lanes4;
        match *self {
            Prepared::RoundShift { shift, .. } => {
                // Every input, specials included, has a lane form.
                let l = RoundLanes::new(shift);
                let qx = x.map(|v| l.value(v));
                self.fused4(isa, x, q, ys, acc, |k, w| (l.value(qx[k] * w), false));
            }
            Prepared::Round { lanes: Some(l), .. } => {
                if x.iter().any(|&v| NarrowLanes::is_special(v)) {
                    return false;
                }
                let qx = x.map(|v| l.value(v));
                self.fused4(isa, x, q, ys, acc, |k, w| {
                    let p = qx[k] * w;
                    (l.value(p), NarrowLanes::is_special(p))
                });
            }
            Prepared::Lmul { kernel, .. } => match kernel.lanes4(x) {
                Some(Lanes4::E8Ieee(ls)) => {
                    self.fused4(isa, x, q, ys, acc, |k, w| ls[k].product_ieee(w))
                }
                Some(Lanes4::E8Raw(ls)) => {
                    self.fused4(isa, x, q, ys, acc, |k, w| ls[k].product_raw(w))
                }
                Some(Lanes4::Narrow(ls)) => {
                    self.fused4(isa, x, q, ys, acc, |k, w| ls[k].product(w))
                }
                None => return false,
            },
            _ => return false,
        }
        true
    }

    /// `ys[o] = acc(acc(acc(acc(ys[o] + p0) + p1) + p2) + p3)` with `pk = prod(k, q[k][o])`,
    /// the product of input `x[k]`, in the loop that suits the accumulation's form.
    #[inline(always)]
    fn fused4<const W: usize>(
        &self,
        isa: Isa,
        x: [f32; 4],
        q: [&[f32]; 4],
        ys: &mut [f32],
        acc: Acc<impl Fn(f32) -> (f32, bool), impl Fn(&mut [f32; W], &[f32; W]) -> bool>,
        prod: impl Fn(usize, f32) -> (f32, bool),
    ) {
        match acc {
            Acc::Lane(f) => self.fused4_lanes(isa, x, q, ys, f, prod),
            Acc::Blocks(f) => self.fused4_blocks(isa, x, q, ys, f, prod),
        }
    }

    /// [`Prepared::fused4`] with a per-lane accumulation: one vector loop over the outputs; a
    /// chunk in which `prod` or `acc` flags a lane is restored and run input by input. The chunk
    /// loop is written out here and in `fused4_blocks` rather than shared through a closure: a
    /// closure's body is compiled without the AVX2 feature of the function that runs it, and
    /// the shared form measured 3-4x slower.
    #[inline(always)]
    fn fused4_lanes(
        &self,
        isa: Isa,
        x: [f32; 4],
        q: [&[f32]; 4],
        ys: &mut [f32],
        acc: impl Fn(f32) -> (f32, bool),
        prod: impl Fn(usize, f32) -> (f32, bool),
    ) {
        const CHUNK: usize = 64;
        let mut saved = [0f32; CHUNK];
        for (c, yc) in ys.chunks_mut(CHUNK).enumerate() {
            let lo = c * CHUNK;
            let len = yc.len();
            saved[..len].copy_from_slice(yc);
            let (q0, q1, q2, q3) = (
                &q[0][lo..lo + len],
                &q[1][lo..lo + len],
                &q[2][lo..lo + len],
                &q[3][lo..lo + len],
            );
            let mut odd = false;
            for o in 0..len {
                let (p0, s0) = prod(0, q0[o]);
                let (p1, s1) = prod(1, q1[o]);
                let (p2, s2) = prod(2, q2[o]);
                let (p3, s3) = prod(3, q3[o]);
                let (a, t0) = acc(yc[o] + p0);
                let (a, t1) = acc(a + p1);
                let (a, t2) = acc(a + p2);
                let (a, t3) = acc(a + p3);
                odd |= s0 | s1 | s2 | s3 | t0 | t1 | t2 | t3;
                yc[o] = a;
            }
            if odd {
                yc.copy_from_slice(&saved[..len]);
                self.mac4_in_turn(isa, x, q, yc, lo);
            }
        }
    }

    /// [`Prepared::fused4`] for an accumulation that rounds `W` lanes at a time (`accw`:
    /// `a = acc(a + p)`, true when a lane is left to the scalar path): the products of a chunk
    /// first, each input in its own vector loop, then the accumulations in `W`-lane blocks.
    #[inline(always)]
    fn fused4_blocks<const W: usize>(
        &self,
        isa: Isa,
        x: [f32; 4],
        q: [&[f32]; 4],
        ys: &mut [f32],
        accw: impl Fn(&mut [f32; W], &[f32; W]) -> bool,
        prod: impl Fn(usize, f32) -> (f32, bool),
    ) {
        const CHUNK: usize = 64;
        let mut saved = [0f32; CHUNK];
        let mut products = [[0f32; CHUNK]; 4];
        for (c, yc) in ys.chunks_mut(CHUNK).enumerate() {
            let lo = c * CHUNK;
            let len = yc.len();
            if len % W != 0 {
                self.mac4_in_turn(isa, x, q, yc, lo);
                continue;
            }
            saved[..len].copy_from_slice(yc);
            let mut odd = false;
            for (k, (pk, qk)) in products.iter_mut().zip(q).enumerate() {
                for (p, &w) in pk[..len].iter_mut().zip(&qk[lo..lo + len]) {
                    let (v, s) = prod(k, w);
                    *p = v;
                    odd |= s;
                }
            }
            for (b, yw) in yc.chunks_exact_mut(W).enumerate() {
                let mut a = [0f32; W];
                a.copy_from_slice(yw);
                for pk in &products {
                    let mut p = [0f32; W];
                    p.copy_from_slice(&pk[W * b..W * b + W]);
                    odd |= accw(&mut a, &p);
                }
                yw.copy_from_slice(&a);
            }
            if odd {
                yc.copy_from_slice(&saved[..len]);
                self.mac4_in_turn(isa, x, q, yc, lo);
            }
        }
    }

    /// `ys[o] = add(ys[o], operand(w[o]))` (or minus the operand): an event's weight row
    /// accumulated, bit for bit as the scalar calls, on vector lanes as [`Prepared::mac_row`].
    pub fn accumulate_row(&self, w: &[f32], ys: &mut [f32], negative: bool) {
        self.accumulate_on::<false>(Isa::best(), w, ys, negative)
    }

    /// [`Prepared::accumulate_row`] for weights already rounded into the operand format.
    pub fn accumulate_rounded_row(&self, q: &[f32], ys: &mut [f32], negative: bool) {
        self.accumulate_on::<true>(Isa::best(), q, ys, negative)
    }

    /// The event row kernel compiled for `isa` (which the CPU must run).
    pub(crate) fn accumulate_on<const ROUNDED: bool>(
        &self,
        isa: Isa,
        w: &[f32],
        ys: &mut [f32],
        negative: bool,
    ) {
        if scalar_rows() {
            for (y, &wv) in ys.iter_mut().zip(w) {
                let op = self.operand(wv);
                *y = self.add(*y, if negative { -op } else { op });
            }
            return;
        }
        match isa {
            // SAFETY (both): `isa` comes from `Isa::best`/`Isa::supported`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.accumulate_row_avx512::<ROUNDED>(w, ys, negative) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.accumulate_row_avx2::<ROUNDED>(w, ys, negative) },
            _ => self.accumulate_row_lanes::<ROUNDED>(Isa::Portable, w, ys, negative),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    fn accumulate_row_avx512<const ROUNDED: bool>(
        &self,
        w: &[f32],
        ys: &mut [f32],
        negative: bool,
    ) {
        self.accumulate_row_lanes::<ROUNDED>(Isa::Avx512, w, ys, negative);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn accumulate_row_avx2<const ROUNDED: bool>(&self, w: &[f32], ys: &mut [f32], negative: bool) {
        self.accumulate_row_lanes::<ROUNDED>(Isa::Avx2, w, ys, negative);
    }

    #[inline(always)]
    fn accumulate_row_lanes<const ROUNDED: bool>(
        &self,
        isa: Isa,
        w: &[f32],
        ys: &mut [f32],
        negative: bool,
    ) {
        let acc = AccRound::of(self.acc());
        if ROUNDED && !negative {
            // The operands are the weights themselves: only the accumulation rounds.
            acc.add_into(isa, ys, w);
            return;
        }
        if ROUNDED {
            let mut tmp = [0f32; ROW_CHUNK];
            for (wc, yc) in w.chunks(ROW_CHUNK).zip(ys.chunks_mut(ROW_CHUNK)) {
                let t = &mut tmp[..wc.len()];
                let sign = if negative { 0x8000_0000u32 } else { 0 };
                for (p, &wv) in t.iter_mut().zip(wc) {
                    *p = f32::from_bits(wv.to_bits() ^ sign);
                }
                acc.add_into(isa, yc, t);
            }
            return;
        }
        // The operand rounding, chosen once per row: a shift for e8 formats, the narrow lanes
        // for fp16/fp8, the scalar encoder otherwise.
        let shift = match *self {
            Prepared::RoundShift { shift, .. } => Some(RoundLanes::new(shift)),
            Prepared::Lmul { kernel, .. } => kernel.operand_shift().map(RoundLanes::new),
            _ => None,
        };
        let narrow = match *self {
            Prepared::Round { lanes, .. } => lanes,
            Prepared::Lmul { kernel, .. } if shift.is_none() => kernel.operand_lanes(),
            _ => None,
        };
        let mut tmp = [0f32; ROW_CHUNK];
        for (wc, yc) in w.chunks(ROW_CHUNK).zip(ys.chunks_mut(ROW_CHUNK)) {
            let t = &mut tmp[..wc.len()];
            match (shift, narrow) {
                (Some(lanes), _) => {
                    for (p, &wv) in t.iter_mut().zip(wc) {
                        *p = lanes.value(wv);
                    }
                }
                (None, Some(l))
                    if !wc
                        .iter()
                        .fold(false, |s, &v| s | NarrowLanes::is_special(v)) =>
                {
                    for (p, &wv) in t.iter_mut().zip(wc) {
                        *p = l.value(wv);
                    }
                }
                _ => {
                    for (p, &wv) in t.iter_mut().zip(wc) {
                        *p = self.operand(wv);
                    }
                }
            }
            if negative {
                for p in t.iter_mut() {
                    *p = -*p;
                }
            }
            acc.add_into(isa, yc, t);
        }
    }
}

impl Arith {
    /// This mode, prepared for an inner loop.
    pub fn prepare(&self) -> Prepared {
        let acc_of = |acc: FloatFormat| (acc != FloatFormat::FP32).then_some(acc);
        match self.mode {
            Mode::Exact => Prepared::Exact,
            Mode::Round { format, acc } => match format.f32_fast_shift() {
                Some(shift) => Prepared::RoundShift {
                    shift,
                    acc: acc_of(acc),
                },
                None => Prepared::Round {
                    format,
                    acc: acc_of(acc),
                    lanes: NarrowLanes::new(format),
                },
            },
            Mode::Lmul {
                format,
                acc,
                policy,
                ..
            } => Prepared::Lmul {
                kernel: PreparedLmul::new(format, policy),
                acc: acc_of(acc),
            },
        }
    }
}

/// How a scenario writes an arithmetic mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArithSpec {
    /// `fp32` (exact), a float format name (`bf16`, `fp16`, `fp8-e4m3`, `e5m2`, ...) for rounding,
    /// or `lmul-K` / `lmul:FORMAT` for L-Mul (`lmul-3` = e8m3 operands).
    pub mode: String,
    /// Accumulation format (default fp32).
    #[serde(default)]
    pub acc: Option<String>,
    #[serde(default)]
    pub scope: Scope,
    /// L-Mul special-case policy (default ieee).
    #[serde(default)]
    pub policy: Option<LmulPolicy>,
    /// Fold the L-Mul offset into stationary weights (default true).
    #[serde(default)]
    pub fold_weight_offset: Option<bool>,
}

impl ArithSpec {
    pub fn build(&self) -> Result<Arith, String> {
        let acc = match &self.acc {
            None => FloatFormat::FP32,
            Some(a) => FloatFormat::parse(a)?,
        };
        let m = self.mode.trim();
        let mode = if m == "fp32" && acc == FloatFormat::FP32 {
            Mode::Exact
        } else if let Some(k) = m.strip_prefix("lmul-") {
            let k: u8 = k.parse().map_err(|_| {
                format!("arithmetic mode `{m}`: lmul-K needs a mantissa width K (0..=23)")
            })?;
            Mode::Lmul {
                format: FloatFormat::lmul_operand(k)?,
                acc,
                policy: self.policy.unwrap_or_default(),
                fold_weight_offset: self.fold_weight_offset.unwrap_or(true),
            }
        } else if let Some(f) = m.strip_prefix("lmul:") {
            Mode::Lmul {
                format: FloatFormat::parse(f)?,
                acc,
                policy: self.policy.unwrap_or_default(),
                fold_weight_offset: self.fold_weight_offset.unwrap_or(true),
            }
        } else {
            Mode::Round {
                format: FloatFormat::parse(m).map_err(|e| format!("arithmetic mode: {e}"))?,
                acc,
            }
        };
        Ok(Arith {
            mode,
            scope: self.scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lmul_mode_changes_products_and_counts_integer_adds() {
        let spec = ArithSpec {
            mode: "lmul-23".into(),
            acc: None,
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        };
        let a = spec.build().unwrap();
        assert_eq!(a.mul(1.5, 1.5), 2.125); // the golden L-Mul value
        let mut c = Counts::default();
        a.count_mac(&mut c, 10);
        a.count_mul(&mut c, 3);
        assert_eq!(c.op_total(Op::Lmul), 13);
        assert_eq!(c.op_total(Op::Mac), 0);
        // accumulation adds (10) + unfolded offset adds of the element-wise products (3)
        assert_eq!(c.op_total(Op::Add), 13);
    }

    #[test]
    fn prepared_modes_give_the_same_values_as_the_plain_ones() {
        for (mode, acc) in [
            ("bf16", None),
            ("fp8-e4m3", Some("fp16")),
            ("lmul-3", None),
            ("lmul:fp8-e5m2", Some("bf16")),
            ("e5m7", None),
        ] {
            let a = ArithSpec {
                mode: mode.into(),
                acc: acc.map(str::to_string),
                scope: Scope::All,
                policy: None,
                fold_weight_offset: None,
            }
            .build()
            .unwrap();
            let p = a.prepare();
            for (x, y) in [
                (1.5f32, 2.25f32),
                (-0.1, 3.7),
                (1e-3, 7e4),
                (0.0, 5.0),
                (123.456, -0.0078),
            ] {
                assert_eq!(
                    p.mul(x, y).to_bits(),
                    a.mul(x, y).to_bits(),
                    "{mode} mul {x} {y}"
                );
                assert_eq!(
                    p.add(x, y).to_bits(),
                    a.add(x, y).to_bits(),
                    "{mode} add {x} {y}"
                );
            }
        }
    }

    #[test]
    fn row_kernels_give_the_scalar_values_bit_for_bit() {
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let mut w: Vec<f32> = (0..1000)
            .map(|i| {
                let v = next();
                if i % 3 == 0 {
                    f32::from_bits(v as u32)
                } else {
                    ((v >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
                }
            })
            .collect();
        w.extend([0.0, -0.0, f32::INFINITY, f32::NAN, 1e-40, 65504.0, 1e30]);
        let xs = [0.7f32, -2.5, 1e-39, 3e38, f32::NAN];
        for (mode, acc) in [
            ("bf16", None),
            ("bf16", Some("bf16")),
            ("fp16", None),
            ("fp8-e4m3", Some("fp16")),
            ("fp8-e5m2", None),
            ("e3m4-b3", Some("fp8-e5m2")),
            ("lmul-3", None),
            ("lmul-4", Some("bf16")),
            ("lmul-23", None),
            ("lmul:fp8-e4m3", Some("fp16")),
            ("fp32", Some("bf16")),
        ] {
            let a = spec(mode, acc, None);
            let p = a.prepare();
            // NaN payloads are not specified (an add of two NaNs may return either), so a NaN
            // result only has to be a NaN.
            let same = |got: f32, want: f32| {
                if want.is_nan() {
                    got.is_nan()
                } else {
                    got.to_bits() == want.to_bits()
                }
            };
            // The whole row, specials included, and its finite values only (whole chunks on
            // the lanes).
            let finite: Vec<f32> = w.iter().copied().filter(|v| v.is_finite()).collect();
            let cases = xs.iter().flat_map(|x| [(*x, &w), (*x, &finite)]);
            for ((x, w), isa) in
                cases.flat_map(|c| Isa::supported().into_iter().map(move |i| (c, i)))
            {
                let start: Vec<f32> = w.iter().map(|v| v * 0.25).collect();
                let mut fast = start.clone();
                p.mac_row_on::<false>(isa, x, w, &mut fast);
                let mut fast_events = start.clone();
                p.accumulate_on::<false>(isa, w, &mut fast_events, x < 0.0);
                // The same rows from weights rounded once beforehand.
                let q = p.round_operands(w);
                let mut pre = start.clone();
                p.mac_row_on::<true>(isa, x, &q, &mut pre);
                let mut pre_events = start.clone();
                p.accumulate_on::<true>(isa, &q, &mut pre_events, x < 0.0);
                for (i, &wv) in w.iter().enumerate() {
                    let want = a.add(start[i], a.mul(x, wv));
                    assert!(same(fast[i], want), "{mode} {acc:?} {isa:?} x {x} w {wv}");
                    assert!(
                        same(pre[i], want),
                        "{mode} {acc:?} {isa:?} pre-rounded x {x} w {wv}"
                    );
                    let op = a.operand(wv);
                    let want = a.add(start[i], if x < 0.0 { -op } else { op });
                    assert!(same(fast_events[i], want), "{mode} events w {wv}");
                    assert!(
                        same(pre_events[i], want),
                        "{mode} pre-rounded events w {wv}"
                    );
                }
            }
        }
    }

    #[test]
    fn four_inputs_per_pass_give_the_values_of_four_row_calls() {
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let n = 300;
        // Ordinary weights, then rows salted with zeros, subnormals, huge values and specials
        // (the fused loop must fall back for them and still agree).
        let mut rows: Vec<Vec<f32>> = (0..4)
            .map(|_| {
                (0..n)
                    .map(|_| ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0)
                    .collect()
            })
            .collect();
        let mut salted = rows.clone();
        for (k, row) in salted.iter_mut().enumerate() {
            row[7 * k + 1] = 0.0;
            row[50 + k] = 1e-41;
            row[100 + k] = 3e38;
            row[200 + 3 * k] = [f32::INFINITY, f32::NAN, -0.0, 65504.0][k];
        }
        rows.extend(salted);
        let inputs = [
            [0.7f32, -2.5, 1.25, 0.01],
            [1e-39, 3e38, -0.4, 9.0],
            [f32::NAN, 0.5, 0.5, 0.5],
        ];
        for (mode, acc) in [
            ("bf16", None),
            ("bf16", Some("bf16")),
            ("e8m10", Some("e8m12")),
            ("fp16", None),
            ("fp8-e4m3", None),
            ("fp8-e4m3", Some("fp16")),
            ("lmul-3", None),
            ("lmul-4", Some("bf16")),
            ("lmul-23", None),
            ("lmul:fp8-e4m3", None),
        ] {
            for policy in [None, Some(crate::numerics::LmulPolicy::Raw)] {
                if policy.is_some() && !mode.starts_with("lmul") {
                    continue;
                }
                let a = ArithSpec {
                    mode: mode.into(),
                    acc: acc.map(String::from),
                    scope: Scope::All,
                    policy,
                    fold_weight_offset: None,
                }
                .build()
                .unwrap();
                let p = a.prepare();
                for set in rows.chunks(4) {
                    if !p.takes_rounded_operands() {
                        continue;
                    }
                    let q: Vec<Vec<f32>> = set.iter().map(|w| p.round_operands(w)).collect();
                    for (x, isa) in inputs
                        .into_iter()
                        .flat_map(|x| Isa::supported().into_iter().map(move |i| (x, i)))
                    {
                        let start: Vec<f32> = (0..n).map(|o| o as f32 * 0.01 - 1.0).collect();
                        let mut want = start.clone();
                        for k in 0..4 {
                            for (o, y) in want.iter_mut().enumerate() {
                                *y = a.add(*y, a.mul(x[k], set[k][o]));
                            }
                        }
                        let mut got = start.clone();
                        p.mac4_rounded_on(isa, x, [&q[0], &q[1], &q[2], &q[3]], &mut got);
                        for o in 0..n {
                            assert!(
                                got[o].to_bits() == want[o].to_bits()
                                    || (got[o].is_nan() && want[o].is_nan()),
                                "{mode} {acc:?} {policy:?} {isa:?} x {x:?} output {o}: {} vs {}",
                                got[o],
                                want[o]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn four_inputs_per_pass_agree_on_every_pair_of_fp8_values() {
        // Every 8-bit pattern as an input and as a weight, four inputs at a time, against the
        // scalar calls: exhaustive for the operand formats where a table would also be possible.
        for (fmt, mode, acc) in [
            ("fp8-e4m3", "fp8-e4m3", None),
            ("fp8-e4m3", "fp8-e4m3", Some("fp16")),
            ("fp8-e5m2", "fp8-e5m2", Some("fp16")),
            ("fp8-e4m3", "lmul:fp8-e4m3", None),
            ("fp8-e5m2", "lmul:fp8-e5m2", Some("fp16")),
        ] {
            let f = FloatFormat::parse(fmt).unwrap();
            let values: Vec<f32> = (0..256u32).map(|b| f.decode_f32(b)).collect();
            let a = spec(mode, acc, None);
            let p = a.prepare();
            let q = p.round_operands(&values);
            let rows = [&q[..], &q[..], &q[..], &q[..]];
            for (x, isa) in values
                .chunks(4)
                .flat_map(|x| Isa::supported().into_iter().map(move |i| (x, i)))
            {
                let x = [x[0], x[1], x[2], x[3]];
                let start: Vec<f32> = (0..256).map(|o| (o as f32 - 128.0) * 0.03125).collect();
                let mut want = start.clone();
                for xk in x {
                    for (y, &w) in want.iter_mut().zip(&values) {
                        *y = a.add(*y, a.mul(xk, w));
                    }
                }
                let mut got = start.clone();
                p.mac4_rounded_on(isa, x, rows, &mut got);
                for o in 0..256 {
                    assert!(
                        got[o].to_bits() == want[o].to_bits()
                            || (got[o].is_nan() && want[o].is_nan()),
                        "{mode} {acc:?} {isa:?} x {x:?} w {}: {} vs {}",
                        values[o],
                        got[o],
                        want[o]
                    );
                }
            }
        }
    }

    #[test]
    fn scope_limits_the_mode_to_its_sites() {
        let spec = ArithSpec {
            mode: "bf16".into(),
            acc: None,
            scope: Scope::Projections,
            policy: None,
            fold_weight_offset: None,
        };
        let a = spec.build().unwrap();
        assert!(a.at(Site::Attention).is_exact());
        assert!(!a.at(Site::Projection).is_exact());
        assert_eq!(a.at(Site::Projection).mul(1.0 + 1.0 / 256.0, 1.0), 1.0);
    }

    /// A mode with an accumulation format and an L-Mul policy, on every site.
    fn spec(mode: &str, acc: Option<&str>, policy: Option<crate::numerics::LmulPolicy>) -> Arith {
        ArithSpec {
            mode: mode.into(),
            acc: acc.map(String::from),
            scope: Scope::All,
            policy,
            fold_weight_offset: None,
        }
        .build()
        .unwrap()
    }

    fn build(mode: &str, scope: Scope) -> Arith {
        ArithSpec {
            mode: mode.into(),
            acc: None,
            scope,
            policy: None,
            fold_weight_offset: None,
        }
        .build()
        .unwrap()
    }

    #[test]
    fn lmul_rescale_by_exact_one_is_a_select() {
        let a = build("lmul-3", Scope::All);
        let x = 0.8125f32; // e8m3-representable
        assert_ne!(a.mul(1.0, x), x, "L-Mul(1, x) adds its correction");
        assert_eq!(a.mul_rescale(true, 1.0, x).to_bits(), x.to_bits());
        assert_eq!(a.mul_rescale(false, 0.5, x), a.mul(0.5, x));
        let mut c = Counts::default();
        a.count_rescale(&mut c, 6, 4);
        assert_eq!(c.op_total(Op::Lmul), 2);
        let mut c = Counts::default();
        a.count_rescale_mac(&mut c, 10, 3);
        assert_eq!(c.op_total(Op::Lmul), 7);
        // seven accumulations of products, three of selected operands
        assert_eq!(c.op_total(Op::Add), 10);
    }

    #[test]
    fn rounding_rescale_by_exact_one_keeps_the_unrounded_operand() {
        let a = build("bf16", Scope::All);
        let x = 1.0 + 1.0 / 1024.0; // not a bf16 value
        assert_eq!(a.mul(1.0, x), 1.0);
        assert_eq!(a.mul_rescale(true, 1.0, x), x);
    }

    #[test]
    fn fp32_rescale_by_exact_one_is_a_counted_multiply() {
        let a = Arith::Exact;
        for x in [0.1f32, -3.5e30, 1e-40] {
            assert_eq!(a.mul_rescale(true, 1.0, x).to_bits(), (1.0 * x).to_bits());
        }
        let mut c = Counts::default();
        a.count_rescale(&mut c, 6, 4);
        a.count_rescale_mac(&mut c, 10, 3);
        assert_eq!(c.op_total(Op::Mul), 6);
        assert_eq!(c.op_total(Op::Mac), 10);
    }

    #[test]
    fn tensor_products_scope_covers_projections_and_attention_only() {
        let a = build("lmul-3", Scope::TensorProducts);
        assert!(!a.at(Site::Projection).is_exact());
        assert!(!a.at(Site::Attention).is_exact());
        assert!(a.at(Site::Other).is_exact());
        assert_eq!(a.label(), "lmul e8m3 (acc fp32) on tensor products");
        let parsed: Scope = ron::from_str("TensorProducts").unwrap();
        assert_eq!(parsed, Scope::TensorProducts);
        for s in Scope::ALL {
            assert_eq!(ron::from_str::<Scope>(s.name()).unwrap(), s);
        }
    }

    #[test]
    fn mixed_format_macs_count_product_and_accumulation_apart() {
        let spec = ArithSpec {
            mode: "fp8-e4m3".into(),
            acc: Some("fp16".into()),
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        };
        let a = spec.build().unwrap();
        let mut c = Counts::default();
        a.count_mac(&mut c, 4);
        assert_eq!(c.op_total(Op::Mul), 4);
        assert_eq!(c.op_total(Op::Add), 4);
        assert_eq!(a.fmt().to_string(), "fp8-e4m3");
        assert_eq!(a.acc_fmt().to_string(), "fp16");
    }

    #[test]
    fn unknown_mode_is_an_error_naming_it() {
        let spec = ArithSpec {
            mode: "fp7".into(),
            acc: None,
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        };
        assert!(spec.build().unwrap_err().contains("fp7"));
    }
}
