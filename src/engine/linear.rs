//! Linear layers, dense (fed by real values) and event-driven (fed by spikes).
//!
//! Weights are stored input-major (`w_t[j * n_out + o]` = W[o][j]): the weights an input `j`
//! touches are one contiguous row, so an event is one contiguous read and the dense product is a
//! sequence of vectorisable axpy updates.

use std::sync::{Arc, Mutex};

use super::arith::{Arith, Prepared, Site};
use super::events::SpikeTrain;
use super::isa::Isa;
use crate::ledger::{Counts, Op, TensorClass};
use crate::numerics::FloatFormat;

/// Outputs per block of the dense product (16 KiB of f32 accumulators: fits L1).
const OUTPUT_BLOCK: usize = 4096;
/// Layers with at least this many weights spread their output blocks over threads (below it,
/// the cost of waking threads exceeds the gain).
const PARALLEL_MIN_WEIGHTS: usize = 1 << 18;

#[derive(Clone, Debug)]
pub struct Linear {
    pub n_in: usize,
    pub n_out: usize,
    w_t: Vec<f32>,
    /// Non-zero weights in each input row (NeuroBench's effective counts exclude zero weights).
    nnz_row: Vec<u32>,
    /// The loop of the exact dense product.
    pub kernel: Kernel,
    /// The weights rounded once into the operand format of the emulated products (the emulated
    /// kernels read them instead of rounding every weight for every input; exact products,
    /// such as a run's fp32 shadow, keep reading `w_t`).
    rounded: RoundedCache,
}

#[derive(Debug)]
struct RoundedWeights {
    format: FloatFormat,
    w_t: Vec<f32>,
}

/// The last rounded copy of a layer's weights (a run uses one operand format per layer, so one
/// copy is kept; another format replaces it).
#[derive(Debug, Default)]
struct RoundedCache(Mutex<Option<Arc<RoundedWeights>>>);

impl RoundedCache {
    /// The copy in `format`, rounded by `round` unless kept already.
    fn get(&self, format: FloatFormat, round: impl FnOnce() -> Vec<f32>) -> Arc<RoundedWeights> {
        // A poisoned lock only means another thread panicked mid-rounding: round again.
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(r) if r.format == format => r.clone(),
            _ => {
                let r = Arc::new(RoundedWeights {
                    format,
                    w_t: round(),
                });
                *slot = Some(r.clone());
                r
            }
        }
    }
}

impl Clone for RoundedCache {
    fn clone(&self) -> Self {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        RoundedCache(Mutex::new(slot.clone()))
    }
}

/// Which loop the exact dense product runs. Both give the same sums bit for bit; `Portable`
/// exists so benchmarks and tests can measure and check the gain of 256-bit vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernel {
    /// The widest vectors the CPU has (AVX-512 or AVX2), detected at run time (the default).
    #[default]
    Wide,
    /// The portable loop, whatever the CPU.
    Portable,
}

/// A per-input scale of a layer's weights (`W diag(scale)`), applied as events read the rows:
/// a token-shift mix folded into a projection without a second copy of its weights. Each
/// scaled weight is the f32 product `w * scale[j]`, the value a layer built from the scaled
/// weights would store.
#[derive(Clone, Debug)]
pub struct ScaledRows {
    scale: Vec<f32>,
    /// Non-zero scaled weights in each input row.
    nnz_row: Vec<u32>,
}

impl Linear {
    /// From the PyTorch layout `[out, in]`, row-major.
    pub fn from_out_in(w: &[f32], n_out: usize, n_in: usize) -> Linear {
        assert_eq!(w.len(), n_out * n_in, "weight length must be n_out * n_in");
        let mut w_t = vec![0.0; n_in * n_out];
        for o in 0..n_out {
            for j in 0..n_in {
                w_t[j * n_out + o] = w[o * n_in + j];
            }
        }
        Linear::with_rows(n_in, n_out, w_t)
    }

    fn with_rows(n_in: usize, n_out: usize, w_t: Vec<f32>) -> Linear {
        let nnz_row = (0..n_in)
            .map(|j| {
                w_t[j * n_out..(j + 1) * n_out]
                    .iter()
                    .filter(|w| **w != 0.0)
                    .count() as u32
            })
            .collect();
        Linear {
            n_in,
            n_out,
            w_t,
            nnz_row,
            kernel: Kernel::default(),
            rounded: RoundedCache::default(),
        }
    }

    /// From a function giving W[o][j].
    pub fn from_fn(n_out: usize, n_in: usize, f: impl Fn(usize, usize) -> f32) -> Linear {
        let mut w_t = vec![0.0; n_in * n_out];
        for j in 0..n_in {
            for o in 0..n_out {
                w_t[j * n_out + o] = f(o, j);
            }
        }
        Linear::with_rows(n_in, n_out, w_t)
    }

    /// W[o][j].
    pub fn weight(&self, o: usize, j: usize) -> f32 {
        self.w_t[j * self.n_out + o]
    }

    pub fn n_params(&self) -> usize {
        self.w_t.len()
    }

    /// Weights that are not zero.
    pub fn nonzero_weights(&self) -> u64 {
        self.nnz_row.iter().map(|&n| n as u64).sum()
    }

    /// This layer's weights with input `j`'s row scaled by `scale[j]`, for
    /// [`Linear::forward_scaled_events`] and [`Linear::accumulate_scaled_events`].
    pub fn scaled_rows(&self, scale: Vec<f32>) -> ScaledRows {
        assert_eq!(scale.len(), self.n_in, "one scale per input");
        let nnz_row = (0..self.n_in)
            .map(|j| self.row(j).iter().filter(|&&w| w * scale[j] != 0.0).count() as u32)
            .collect();
        ScaledRows { scale, nnz_row }
    }

    /// NeuroBench's per-output count of the binarised product: for each output `o`, the inputs
    /// `j` with x[j] != 0 and W[o][j] != 0, added into `out` (metric only; not work).
    pub fn structural_counts(&self, x: &[f32], out: &mut [u32]) {
        for (j, &xj) in x.iter().enumerate() {
            if xj != 0.0 {
                for (acc, &w) in out.iter_mut().zip(self.row(j)) {
                    *acc += (w != 0.0) as u32;
                }
            }
        }
    }

    /// The weights rounded into `arith`'s operand format (rounded on first use), or None when
    /// `arith` is exact.
    fn rounded_rows(&self, arith: &Arith, prepared: &Prepared) -> Option<Arc<RoundedWeights>> {
        let format = arith.operand_format()?;
        prepared.takes_rounded_operands().then(|| {
            self.rounded
                .get(format, || prepared.round_operands(&self.w_t))
        })
    }

    /// The weights input `j` reaches.
    #[inline]
    fn row(&self, j: usize) -> &[f32] {
        &self.w_t[j * self.n_out..(j + 1) * self.n_out]
    }

    /// y = W x for a real-valued input. Multiplies with a zero input are gated (not executed, not
    /// counted as MACs), but the whole weight matrix is streamed from memory, as a dense
    /// accelerator does.
    pub fn forward_dense(&self, x: &[f32], y: &mut [f32], arith: &Arith, c: &mut Counts) {
        self.forward_dense_traced(x, y, arith, c, true);
    }

    /// Every row of `x` ([n, n_in]) into `y` ([n, n_out]), as one pass over the layer: counted
    /// like `forward_dense` per row, but the weight reads are filed as one `Work::Matmul` pass
    /// (which a loop-nest mapping prices, weights reused across the rows) instead of a trace.
    pub fn forward_rows(&self, x: &[f32], y: &mut [f32], arith: &Arith, c: &mut Counts) {
        let n = x.len() / self.n_in.max(1);
        for (xr, yr) in x
            .chunks_exact(self.n_in)
            .zip(y.chunks_exact_mut(self.n_out))
        {
            self.forward_dense_traced(xr, yr, arith, c, false);
        }
        c.pass(crate::ledger::Work::Matmul {
            n: n as u64,
            c: self.n_in as u64,
            k: self.n_out as u64,
            bytes: arith.at(Site::Projection).operand_bytes() as u32,
        });
    }

    fn forward_dense_traced(
        &self,
        x: &[f32],
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
        trace: bool,
    ) {
        let arith = &arith.at(Site::Projection);
        let effective = self.dense_work_traced(x, y, arith, c, trace);
        c.add(Op::EffectiveMac, arith.fmt(), effective);
        c.add(
            Op::DenseSynop,
            arith.fmt(),
            self.n_in as u64 * self.n_out as u64,
        );
    }

    /// The instruction set of this layer's exact kernels.
    fn isa(&self) -> Isa {
        match self.kernel {
            Kernel::Wide => Isa::best(),
            Kernel::Portable => Isa::Portable,
        }
    }

    /// ys += W[start..start + ys.len()] x in exact fp32, in the widest vectors the CPU has
    /// (the same loop, so the same sums, bit for bit).
    fn exact_block(&self, x: &[f32], start: usize, ys: &mut [f32]) {
        match self.isa() {
            // SAFETY (both): `Isa::best` only names instruction sets the CPU has.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.exact_block_avx512(x, start, ys) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.exact_block_avx2(x, start, ys) },
            _ => self.exact_block_portable(x, start, ys),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    fn exact_block_avx512(&self, x: &[f32], start: usize, ys: &mut [f32]) {
        self.exact_block_portable(x, start, ys);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn exact_block_avx2(&self, x: &[f32], start: usize, ys: &mut [f32]) {
        self.exact_block_portable(x, start, ys);
    }

    /// Four non-zero inputs are applied per pass over the outputs (a quarter of the accumulator
    /// traffic); each output still adds its inputs one by one in index order, so the sums are
    /// bit-identical to a plain loop. No fused multiply-add: each product is rounded, as in the
    /// plain loop.
    #[inline(always)]
    fn exact_block_portable(&self, x: &[f32], start: usize, ys: &mut [f32]) {
        let n_out = self.n_out;
        let len = ys.len();
        let row = |j: usize| &self.w_t[j * n_out + start..j * n_out + start + len];
        let mut pend = [(0usize, 0f32); 4];
        let mut k = 0;
        for (j, &xj) in x.iter().enumerate() {
            if xj == 0.0 {
                continue;
            }
            pend[k] = (j, xj);
            k += 1;
            if k == 4 {
                let [(j0, x0), (j1, x1), (j2, x2), (j3, x3)] = pend;
                let (w0, w1, w2, w3) = (row(j0), row(j1), row(j2), row(j3));
                for o in 0..len {
                    let mut a = ys[o];
                    a += x0 * w0[o];
                    a += x1 * w1[o];
                    a += x2 * w2[o];
                    a += x3 * w3[o];
                    ys[o] = a;
                }
                k = 0;
            }
        }
        for &(j, xj) in &pend[..k] {
            for (acc, &wv) in ys.iter_mut().zip(row(j)) {
                *acc += xj * wv;
            }
        }
    }

    /// The work of `forward_dense` (MACs, weight and activation traffic) without the NeuroBench
    /// metric counts; returns the effective synaptic operations (non-zero input x non-zero
    /// weight) for the caller to file as NeuroBench defines them.
    pub fn dense_work(&self, x: &[f32], y: &mut [f32], arith: &Arith, c: &mut Counts) -> u64 {
        self.dense_work_traced(x, y, arith, c, true)
    }

    fn dense_work_traced(
        &self,
        x: &[f32],
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
        trace: bool,
    ) -> u64 {
        debug_assert_eq!(x.len(), self.n_in);
        debug_assert_eq!(y.len(), self.n_out);
        let arith = &arith.at(Site::Projection);
        let mut nonzero = 0u64;
        let mut effective = 0u64;
        for (j, &xj) in x.iter().enumerate() {
            if xj != 0.0 {
                nonzero += 1;
                effective += self.nnz_row[j] as u64;
            }
        }
        // Outputs are processed in blocks that stay in L1 while every input streams its slice of
        // weights through; large layers spread blocks over threads. Each output still sums its
        // inputs in index order, so results do not depend on the blocking or the thread count.
        let n_out = self.n_out;
        let prepared = arith.prepare();
        let rounded = self.rounded_rows(arith, &prepared);
        let rounded = rounded.as_ref().map(|r| &r.w_t[..]);
        let block = |start: usize, ys: &mut [f32]| {
            ys.fill(0.0);
            let end = start + ys.len();
            if arith.is_exact() {
                self.exact_block(x, start, ys);
                return;
            }
            let Some(q) = rounded else {
                for (j, &xj) in x.iter().enumerate() {
                    if xj != 0.0 {
                        prepared.mac_row(xj, &self.w_t[j * n_out + start..j * n_out + end], ys);
                    }
                }
                return;
            };
            // Four non-zero inputs per pass over the block, as the exact kernel does (the loop
            // is repeated rather than shared through closures, whose bodies would lose the
            // AVX2 feature of the kernels that run them).
            let row = |j: usize| &q[j * n_out + start..j * n_out + end];
            let mut pend = [(0usize, 0f32); 4];
            let mut k = 0;
            for (j, &xj) in x.iter().enumerate() {
                if xj == 0.0 {
                    continue;
                }
                pend[k] = (j, xj);
                k += 1;
                if k == 4 {
                    let xs = pend.map(|(_, v)| v);
                    let rows = pend.map(|(j, _)| row(j));
                    prepared.mac4_rounded(xs, rows, ys);
                    k = 0;
                }
            }
            for &(j, xj) in &pend[..k] {
                prepared.mac_row_rounded(xj, row(j), ys);
            }
        };
        if self.n_in * self.n_out >= PARALLEL_MIN_WEIGHTS {
            use rayon::prelude::*;
            // Two blocks per thread, of whole 64-output chunks (the fused loop's unit), so that a
            // 768-wide layer spreads evenly over the cores.
            let per = n_out
                .div_ceil(2 * rayon::current_num_threads())
                .next_multiple_of(64)
                .clamp(64, OUTPUT_BLOCK);
            y.par_chunks_mut(per)
                .enumerate()
                .for_each(|(b, ys)| block(b * per, ys));
        } else {
            for (b, ys) in y.chunks_mut(OUTPUT_BLOCK).enumerate() {
                block(b * OUTPUT_BLOCK, ys);
            }
        }
        let (n_in, n_out) = (self.n_in as u64, self.n_out as u64);
        let bytes = arith.operand_bytes();
        arith.count_mac(c, nonzero * n_out);
        c.mem(
            Op::Read,
            arith.fmt(),
            TensorClass::Weight,
            n_in * n_out * bytes,
        );
        if trace {
            // Every row in order: each row's distance is the same as the whole matrix's read as
            // one block (the rows after it last time, what came between, the rows before it
            // now), so one read of the matrix files the same histogram at a fraction of the cost.
            c.weight_vector(&self.w_t, n_in * n_out * bytes, 1);
        }
        c.mem(Op::Read, arith.fmt(), TensorClass::Activation, n_in * bytes);
        c.mem(
            Op::Write,
            arith.fmt(),
            TensorClass::Activation,
            n_out * bytes,
        );
        effective
    }

    /// y = W s for a spike input: the weight row of each event is accumulated (one AC per
    /// synaptic event); work and weight traffic are proportional to the number of events.
    pub fn forward_events(&self, s: &SpikeTrain, y: &mut [f32], arith: &Arith, c: &mut Counts) {
        self.forward_events_with(s, None, y, arith, c);
    }

    /// y += W s, without counting the output write (for a layer fed by several spike trains).
    pub fn accumulate_events(&self, s: &SpikeTrain, y: &mut [f32], arith: &Arith, c: &mut Counts) {
        self.accumulate_events_with(s, None, y, arith, c);
    }

    /// y = (W diag(scale)) s for a spike input: [`Linear::forward_events`] of the layer whose
    /// weights are the scaled ones, the same values and counts.
    pub fn forward_scaled_events(
        &self,
        s: &SpikeTrain,
        scaled: &ScaledRows,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) {
        self.forward_events_with(s, Some(scaled), y, arith, c);
    }

    /// y += (W diag(scale)) s, without counting the output write: [`Linear::accumulate_events`]
    /// of the layer whose weights are the scaled ones.
    pub fn accumulate_scaled_events(
        &self,
        s: &SpikeTrain,
        scaled: &ScaledRows,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) {
        self.accumulate_events_with(s, Some(scaled), y, arith, c);
    }

    fn forward_events_with(
        &self,
        s: &SpikeTrain,
        scaled: Option<&ScaledRows>,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) {
        let arith = &arith.at(Site::Projection);
        y.fill(0.0);
        self.accumulate_events_with(s, scaled, y, arith, c);
        c.mem(
            Op::Write,
            arith.fmt(),
            TensorClass::Activation,
            self.n_out as u64 * arith.operand_bytes(),
        );
    }

    fn accumulate_events_with(
        &self,
        s: &SpikeTrain,
        scaled: Option<&ScaledRows>,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) {
        let arith = &arith.at(Site::Projection);
        let effective = self.events_work(s, y, false, scaled, arith, c);
        c.add(Op::EffectiveAc, arith.fmt(), effective);
        c.add(
            Op::DenseSynop,
            arith.fmt(),
            self.n_in as u64 * self.n_out as u64,
        );
    }

    /// y -= W s for the -1 entries of a {-1, 0, 1} coded input (one AC, a subtraction, per
    /// synaptic event). Counts the work and NeuroBench's effective ACs, not `dense_synop` (the
    /// caller counts the layer's dense operations once).
    pub fn subtract_events(&self, s: &SpikeTrain, y: &mut [f32], arith: &Arith, c: &mut Counts) {
        let arith = &arith.at(Site::Projection);
        let effective = self.event_work(s, y, true, arith, c);
        c.add(Op::EffectiveAc, arith.fmt(), effective);
    }

    /// y = W pos - W neg for a {-1, 0, 1} coded input split into its +1 and -1 entries (one AC
    /// per synaptic event, a subtraction for a -1). Counts the work, NeuroBench's effective ACs
    /// and the layer's dense operations once (in the mode passed, like the output write);
    /// returns the effective ACs.
    pub fn forward_signed_events(
        &self,
        pos: &SpikeTrain,
        neg: &SpikeTrain,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) -> u64 {
        let effective = self.signed_event_work(pos, neg, y, arith, c);
        c.add(Op::EffectiveAc, arith.fmt(), effective);
        c.add(
            Op::DenseSynop,
            arith.fmt(),
            self.n_in as u64 * self.n_out as u64,
        );
        effective
    }

    /// The work of `forward_signed_events` (both event passes and the output write) without
    /// the NeuroBench metric counts; returns the effective synaptic operations.
    ///
    /// The output write is filed in the mode passed, not the projection site's (the two differ
    /// only under `Scope::Attention`).
    pub fn signed_event_work(
        &self,
        pos: &SpikeTrain,
        neg: &SpikeTrain,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) -> u64 {
        y.fill(0.0);
        let mut effective = self.event_work(pos, y, false, arith, c);
        if neg.count() > 0 {
            effective += self.event_work(neg, y, true, arith, c);
        }
        c.mem(
            Op::Write,
            arith.fmt(),
            TensorClass::Activation,
            self.n_out as u64 * arith.operand_bytes(),
        );
        effective
    }

    /// The work of `accumulate_events` (ACs, synaptic events, weight rows and event addresses
    /// read) without the NeuroBench metric counts; returns the effective synaptic operations
    /// (events x non-zero weights of their rows).
    pub fn event_work(
        &self,
        s: &SpikeTrain,
        y: &mut [f32],
        negative: bool,
        arith: &Arith,
        c: &mut Counts,
    ) -> u64 {
        self.events_work(s, y, negative, None, arith, c)
    }

    /// [`Linear::event_work`], with the rows scaled as `scaled` says when given.
    fn events_work(
        &self,
        s: &SpikeTrain,
        y: &mut [f32],
        negative: bool,
        scaled: Option<&ScaledRows>,
        arith: &Arith,
        c: &mut Counts,
    ) -> u64 {
        debug_assert_eq!(s.len(), self.n_in);
        debug_assert_eq!(y.len(), self.n_out);
        let arith = &arith.at(Site::Projection);
        let prepared = arith.prepare();
        if let Some(sc) = scaled {
            self.scaled_rows_into(s, sc, y, negative, arith, &prepared);
        } else {
            self.rows_into(s, y, negative, arith, &prepared);
        }
        let nnz_row = scaled.map_or(&self.nnz_row, |sc| &sc.nnz_row);
        let effective = s.indices.iter().map(|&j| nnz_row[j as usize] as u64).sum();
        self.count_events(s, arith, c);
        effective
    }

    /// y (+/-)= the rows of the events of `s`.
    fn rows_into(
        &self,
        s: &SpikeTrain,
        y: &mut [f32],
        negative: bool,
        arith: &Arith,
        prepared: &Prepared,
    ) {
        let rounded = self.rounded_rows(arith, prepared);
        let rounded = rounded.as_ref().map(|r| &r.w_t[..]);
        let (n_out, rows) = (self.n_out, rounded.unwrap_or(&self.w_t));
        if arith.is_exact() {
            self.exact_rows_into(s, y, negative);
            return;
        }
        for &j in &s.indices {
            let row = &rows[j as usize * n_out..(j as usize + 1) * n_out];
            match rounded {
                Some(_) => prepared.accumulate_rounded_row(row, y, negative),
                None => prepared.accumulate_row(row, y, negative),
            }
        }
    }

    /// y (+/-)= the rows of the events of `s` in exact fp32, in the widest vectors the CPU has.
    fn exact_rows_into(&self, s: &SpikeTrain, y: &mut [f32], negative: bool) {
        match self.isa() {
            // SAFETY (both): `Isa::best` only names instruction sets the CPU has.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.exact_rows_avx512(s, y, negative) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.exact_rows_avx2(s, y, negative) },
            _ => self.exact_rows_portable(s, y, negative),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    fn exact_rows_avx512(&self, s: &SpikeTrain, y: &mut [f32], negative: bool) {
        self.exact_rows_portable(s, y, negative);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn exact_rows_avx2(&self, s: &SpikeTrain, y: &mut [f32], negative: bool) {
        self.exact_rows_portable(s, y, negative);
    }

    #[inline(always)]
    fn exact_rows_portable(&self, s: &SpikeTrain, y: &mut [f32], negative: bool) {
        for &j in &s.indices {
            let row = self.row(j as usize);
            if negative {
                for (acc, &w) in y.iter_mut().zip(row) {
                    *acc -= w;
                }
            } else {
                for (acc, &w) in y.iter_mut().zip(row) {
                    *acc += w;
                }
            }
        }
    }

    /// y (+/-)= the scaled rows of the events of `s`, each weight scaled as it is read (the
    /// f32 product, then the operand rounding of emulated arithmetic, as for stored weights).
    fn scaled_rows_into(
        &self,
        s: &SpikeTrain,
        sc: &ScaledRows,
        y: &mut [f32],
        negative: bool,
        arith: &Arith,
        prepared: &Prepared,
    ) {
        const CHUNK: usize = 256;
        let mut tmp = [0f32; CHUNK];
        for &j in &s.indices {
            let (row, f) = (self.row(j as usize), sc.scale[j as usize]);
            if arith.is_exact() {
                // No fused multiply-add: the product is rounded to f32 first, as stored.
                let sign = if negative { -1.0 } else { 1.0 };
                for (acc, &w) in y.iter_mut().zip(row) {
                    *acc += sign * (w * f);
                }
                continue;
            }
            for (wc, yc) in row.chunks(CHUNK).zip(y.chunks_mut(CHUNK)) {
                let t = &mut tmp[..wc.len()];
                for (v, &w) in t.iter_mut().zip(wc) {
                    *v = w * f;
                }
                prepared.accumulate_row(t, yc, negative);
            }
        }
    }

    /// The counts of reading the rows of the events of `s`.
    fn count_events(&self, s: &SpikeTrain, arith: &Arith, c: &mut Counts) {
        let events = s.count() as u64;
        let n_out = self.n_out as u64;
        arith.count_ac(c, events * n_out);
        c.add(Op::Synop, arith.fmt(), events * n_out);
        c.mem(
            Op::Read,
            arith.fmt(),
            TensorClass::Weight,
            events * n_out * arith.operand_bytes(),
        );
        c.weight_rows(
            self.n_in,
            s.indices.iter().copied(),
            n_out * arith.operand_bytes(),
        );
        c.mem(
            Op::Read,
            arith.fmt(),
            TensorClass::Event,
            events * s.address_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::FP32;

    fn layer() -> Linear {
        // W = [[1, 2, 3], [4, 5, 6]]  (2 outputs, 3 inputs)
        Linear::from_out_in(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3)
    }

    #[test]
    fn dense_product_matches_the_matrix_and_gates_zero_inputs() {
        let mut c = Counts::default();
        let mut y = [0.0; 2];
        layer().forward_dense(&[1.0, 0.0, 2.0], &mut y, &Arith::Exact, &mut c);
        assert_eq!(y, [7.0, 16.0]);
        assert_eq!(c.op_total(Op::Mac), 4); // two non-zero inputs x fan-out 2
        assert_eq!(c.op_total(Op::DenseSynop), 6);
        assert_eq!(c.op_total(Op::Ac), 0);
    }

    #[test]
    fn scaled_rows_read_as_a_layer_of_the_scaled_weights_reads() {
        let (n_in, n_out) = (40, 300);
        let w: Vec<f32> = (0..n_in * n_out)
            .map(|k| ((k * 37) % 101) as f32 / 101.0 - 0.5 + if k % 17 == 0 { -0.5 } else { 0.0 })
            .collect();
        // One scale of zero (a mix that ignores an input) and ordinary ones.
        let mu: Vec<f32> = (0..n_in)
            .map(|j| {
                if j == 3 {
                    0.0
                } else {
                    (j as f32 * 0.137).fract()
                }
            })
            .collect();
        let plain = Linear::from_out_in(&w, n_out, n_in);
        let folded = Linear::from_fn(n_out, n_in, |o, j| w[o * n_in + j] * mu[j]);
        let scaled = plain.scaled_rows(mu.clone());
        let mut s = SpikeTrain::new(n_in);
        for j in [0, 3, 7, 8, 21, 39] {
            s.fire(j);
        }
        for mode in ["fp32", "bf16", "fp8-e4m3", "lmul-3"] {
            let arith = crate::engine::arith::ArithSpec::new(mode).build().unwrap();
            let (mut want, mut got) = (vec![0.5f32; n_out], vec![0.5f32; n_out]);
            let (mut cw, mut cg) = (Counts::default(), Counts::default());
            folded.forward_events(&s, &mut want, &arith, &mut cw);
            plain.forward_scaled_events(&s, &scaled, &mut got, &arith, &mut cg);
            folded.accumulate_events(&s, &mut want, &arith, &mut cw);
            plain.accumulate_scaled_events(&s, &scaled, &mut got, &arith, &mut cg);
            for o in 0..n_out {
                assert_eq!(got[o].to_bits(), want[o].to_bits(), "{mode} output {o}");
            }
            for op in [
                Op::Ac,
                Op::Synop,
                Op::EffectiveAc,
                Op::DenseSynop,
                Op::Read,
                Op::Write,
            ] {
                assert_eq!(cg.op_total(op), cw.op_total(op), "{mode} {op:?}");
            }
        }
    }

    #[test]
    fn blocked_and_parallel_products_equal_the_plain_sum() {
        let (n_in, n_out) = (1100, 4500); // several output blocks, above the parallel threshold
        let layer = Linear::from_fn(n_out, n_in, |o, j| {
            ((o * 7 + j * 13) % 29) as f32 / 29.0 - 0.5
        });
        let x: Vec<f32> = (0..n_in)
            .map(|j| {
                if j % 5 == 0 {
                    0.0
                } else {
                    (j % 11) as f32 / 7.0 - 0.6
                }
            })
            .collect();
        let mut y = vec![0.0; n_out];
        let mut c = Counts::default();
        layer.forward_dense(&x, &mut y, &Arith::Exact, &mut c);
        for o in [0, 4095, 4096, n_out - 1] {
            let mut expect = 0.0f32;
            for (j, &xj) in x.iter().enumerate() {
                if xj != 0.0 {
                    expect += xj * layer.weight(o, j);
                }
            }
            assert_eq!(y[o], expect, "output {o}");
        }
        assert_eq!(c.op_total(Op::Mac), 880 * n_out as u64);
    }

    #[test]
    fn wide_vector_kernel_gives_the_portable_kernels_sums_bit_for_bit() {
        let (n_in, n_out) = (301, 777);
        let layer = Linear::from_fn(n_out, n_in, |o, j| {
            ((o * 31 + j * 17) % 97) as f32 / 13.0 - 3.7
        });
        let x: Vec<f32> = (0..n_in)
            .map(|j| ((j * 7) % 23) as f32 / 3.0 - 2.9)
            .collect();
        let (mut portable, mut dispatched) = (vec![0.0; n_out], vec![0.0; n_out]);
        layer.exact_block(&x, 0, &mut dispatched);
        let layer = Linear {
            kernel: Kernel::Portable,
            ..layer
        };
        layer.exact_block(&x, 0, &mut portable);
        assert_eq!(portable, dispatched);
    }

    #[test]
    fn events_accumulate_weight_rows_one_ac_per_synaptic_event() {
        let mut c = Counts::default();
        let mut s = SpikeTrain::new(3);
        s.fire(2);
        s.fire(0);
        let mut y = [0.0; 2];
        layer().forward_events(&s, &mut y, &Arith::Exact, &mut c);
        assert_eq!(y, [4.0, 10.0]);
        assert_eq!(c.op_total(Op::Ac), 4);
        assert_eq!(c.op_total(Op::Synop), 4);
        assert_eq!(c.op_total(Op::Mac), 0);
        let weight_bytes = c.0[&crate::ledger::ActionKey::mem(Op::Read, FP32, TensorClass::Weight)];
        assert_eq!(weight_bytes, 4 * 4);
    }

    #[test]
    fn signed_events_add_plus_rows_subtract_minus_rows_one_ac_per_synaptic_event() {
        let w = [1.0, 2.0, 0.0, 4.0, 5.0, 6.0]; // one zero weight
        let lin = Linear::from_out_in(&w, 2, 3);
        let (mut pos, mut neg) = (SpikeTrain::new(3), SpikeTrain::new(3));
        pos.fire(0);
        neg.fire(2);
        let mut y = [9.0; 2];
        let mut c = Counts::default();
        let eff = lin.forward_signed_events(&pos, &neg, &mut y, &Arith::Exact, &mut c);
        // plain reference: y[o] = W[o][0] - W[o][2]
        let reference: Vec<f32> = (0..2).map(|o| w[o * 3] - w[o * 3 + 2]).collect();
        assert_eq!(y.to_vec(), reference);
        // 2 events x fan-out 2; effective excludes the zero weight W[0][2]
        assert_eq!(c.op_total(Op::Ac), 4);
        assert_eq!(c.op_total(Op::Synop), 4);
        assert_eq!((eff, c.op_total(Op::EffectiveAc)), (3, 3));
        assert_eq!(c.op_total(Op::DenseSynop), 6);
        let at = |op, class| c.0[&crate::ledger::ActionKey::mem(op, FP32, class)];
        assert_eq!(at(Op::Read, TensorClass::Weight), 4 * 4);
        assert_eq!(at(Op::Read, TensorClass::Event), 2);
        assert_eq!(at(Op::Write, TensorClass::Activation), 2 * 4);
    }
}
