//! An arithmetic mode prepared for a layer's inner loops: the format's constants computed once,
//! and the row kernels (multiply-accumulate and accumulate over a row of weights) on vector
//! lanes, bit-identical to the scalar calls.

use super::{Arith, Isa, Mode};
use crate::numerics::FloatFormat;
use crate::numerics::format::{NarrowLanes, RoundLanes};
use crate::numerics::lmul::PreparedLmul;

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
