//! Recurrent cells (PyTorch `RNNCell` with tanh, `LSTMCell`, `GRUCell`): one step executes and
//! counts the two gate products, the biases, the gate nonlinearities and the state update, and
//! files NeuroBench's operation count of the step.
//!
//! The input product runs event-driven when the input is all in {-1, 0, 1} (one AC per synaptic
//! event, a -1 subtracted), dense otherwise; the hidden-state product always runs dense (zero
//! entries gated). Gate order is PyTorch's: i, f, g, o for LSTM and r, z, n for GRU.
//!
//! The gate arithmetic, the state traffic and NeuroBench's counts use the mode passed, at no
//! site of their own (every scope covers them); only the two products are projections.

use super::arith::Arith;
use super::events::{SpikeTrain, split_signed};
use super::linear::Linear;
use super::pointwise::{bias_add, logistic};
use crate::ledger::{Counts, Op, TensorClass};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    Rnn,
    Lstm,
    Gru,
}

impl CellKind {
    /// Gate blocks stacked in the weight matrices.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

pub struct Cell {
    pub kind: CellKind,
    pub hidden: usize,
    ih: Linear,
    hh: Linear,
    b_ih: Option<Vec<f32>>,
    b_hh: Option<Vec<f32>>,
    /// 1 where the bias is non-zero (0 everywhere without bias), and 1 everywhere with bias.
    bih_nz: Vec<u32>,
    bhh_nz: Vec<u32>,
    b_ones: Vec<u32>,
}

/// Buffers of one cell (nothing allocates per step).
pub struct CellScratch {
    pos: SpikeTrain,
    neg: SpikeTrain,
    gi: Vec<f32>,
    gh: Vec<f32>,
    cnt_ih: Vec<u32>,
    cnt_hh: Vec<u32>,
}

impl Cell {
    /// From PyTorch's `weight_ih` `[gates * hidden, input]`, `weight_hh` `[gates * hidden,
    /// hidden]` (row-major) and optionally `(bias_ih, bias_hh)`.
    pub fn from_pytorch(
        kind: CellKind,
        input_size: usize,
        hidden: usize,
        w_ih: &[f32],
        w_hh: &[f32],
        bias: Option<(&[f32], &[f32])>,
    ) -> Cell {
        let g = kind.gates() * hidden;
        let nz = |b: Option<&[f32]>| match b {
            Some(b) => b.iter().map(|v| (*v != 0.0) as u32).collect(),
            None => vec![0; g],
        };
        Cell {
            kind,
            hidden,
            ih: Linear::from_out_in(w_ih, g, input_size),
            hh: Linear::from_out_in(w_hh, g, hidden),
            bih_nz: nz(bias.map(|b| b.0)),
            bhh_nz: nz(bias.map(|b| b.1)),
            b_ones: vec![bias.is_some() as u32; g],
            b_ih: bias.map(|b| b.0.to_vec()),
            b_hh: bias.map(|b| b.1.to_vec()),
        }
    }

    /// Values of recurrent state: h, and c for an LSTM.
    pub fn state_len(&self) -> usize {
        self.hidden * if self.kind == CellKind::Lstm { 2 } else { 1 }
    }

    pub fn scratch(&self) -> CellScratch {
        let g = self.ih.n_out;
        CellScratch {
            pos: SpikeTrain::new(self.ih.n_in),
            neg: SpikeTrain::new(self.ih.n_in),
            gi: vec![0.0; g],
            gh: vec![0.0; g],
            cnt_ih: vec![0; g],
            cnt_hh: vec![0; g],
        }
    }

    /// One step: updates the hidden state `h` (and the cell state `cs` of an LSTM; empty
    /// otherwise) from input `x`. Counts the work, and NeuroBench's count of the step's
    /// operations (effective ACs if `x` is all in {-1, 0, 1}, else effective MACs; `dense_synop`
    /// with all-ones weights and inputs).
    pub fn step(
        &self,
        x: &[f32],
        h: &mut [f32],
        cs: &mut [f32],
        sc: &mut CellScratch,
        arith: &Arith,
        c: &mut Counts,
    ) {
        let fmt = arith.fmt();
        let (effective, dense) = self.neurobench_counts(x, h, cs, sc);
        let (gi, gh) = (&mut sc.gi, &mut sc.gh);
        if split_signed(x, &mut sc.pos, &mut sc.neg) {
            self.ih.signed_event_work(&sc.pos, &sc.neg, gi, arith, c);
            c.add(Op::EffectiveAc, fmt, effective);
        } else {
            self.ih.dense_work(x, gi, arith, c);
            c.add(Op::EffectiveMac, fmt, effective);
        }
        c.add(Op::DenseSynop, fmt, dense);
        self.hh.dense_work(h, gh, arith, c);
        if let Some(b) = &self.b_ih {
            bias_add(gi, b, arith, c);
        }
        if let Some(b) = &self.b_hh {
            bias_add(gh, b, arith, c);
        }
        match self.kind {
            CellKind::Rnn => rnn_update(gi, gh, h, arith, c),
            CellKind::Lstm => lstm_update(gi, gh, h, cs, arith, c),
            CellKind::Gru => gru_update(gi, gh, h, arith, c),
        }
        c.mem(
            Op::Write,
            fmt,
            TensorClass::State,
            self.hidden as u64 * arith.operand_bytes(),
        );
    }

    /// NeuroBench's (effective, dense) operation counts of a step, from the state before it.
    fn neurobench_counts(
        &self,
        x: &[f32],
        h: &[f32],
        cs: &[f32],
        sc: &mut CellScratch,
    ) -> (u64, u64) {
        let (cnt_ih, cnt_hh) = (&mut sc.cnt_ih, &mut sc.cnt_hh);
        cnt_ih.fill(0);
        cnt_hh.fill(0);
        self.ih.structural_counts(x, cnt_ih);
        self.hh.structural_counts(h, cnt_hh);
        let effective = neurobench_cell_ops(
            self.kind,
            self.hidden,
            cnt_ih,
            cnt_hh,
            &self.bih_nz,
            &self.bhh_nz,
            h,
            cs,
            false,
        );
        // All-ones: x and weights all ones; NeuroBench forces a top-level hidden state to ones
        // but only binarises LSTM's nested (h, c) tuple.
        let lstm = self.kind == CellKind::Lstm;
        cnt_ih.fill(self.ih.n_in as u32);
        let h_count = if lstm {
            h.iter().filter(|v| **v != 0.0).count() as u32
        } else {
            self.hidden as u32
        };
        cnt_hh.fill(h_count);
        let dense = neurobench_cell_ops(
            self.kind,
            self.hidden,
            cnt_ih,
            cnt_hh,
            &self.b_ones,
            &self.b_ones,
            h,
            cs,
            !lstm,
        );
        (effective, dense)
    }
}

/// h = tanh(gi + gh).
fn rnn_update(gi: &[f32], gh: &[f32], h: &mut [f32], arith: &Arith, c: &mut Counts) {
    for k in 0..h.len() {
        h[k] = (gi[k] + gh[k]).tanh();
    }
    let n = h.len() as u64;
    arith.count_add(c, n);
    c.add(Op::Tanh, arith.acc_fmt(), n);
}

/// c = f * c + i * g, h = o * tanh(c), each gate the sum of its two products.
fn lstm_update(
    gi: &[f32],
    gh: &[f32],
    h: &mut [f32],
    cs: &mut [f32],
    arith: &Arith,
    c: &mut Counts,
) {
    let hd = h.len();
    for k in 0..hd {
        let i = logistic(gi[k] + gh[k]);
        let f = logistic(gi[hd + k] + gh[hd + k]);
        let g = (gi[2 * hd + k] + gh[2 * hd + k]).tanh();
        let o = logistic(gi[3 * hd + k] + gh[3 * hd + k]);
        cs[k] = arith.mul(f, cs[k]) + arith.mul(i, g);
        h[k] = arith.mul(o, cs[k].tanh());
    }
    let n = hd as u64;
    arith.count_add(c, 5 * n);
    arith.count_mul(c, 3 * n);
    c.add(Op::Sigmoid, arith.acc_fmt(), 3 * n);
    c.add(Op::Tanh, arith.acc_fmt(), 2 * n);
    let bytes = n * arith.operand_bytes();
    c.mem(Op::Read, arith.fmt(), TensorClass::State, bytes);
    c.mem(Op::Write, arith.fmt(), TensorClass::State, bytes);
}

/// n = tanh(gi_n + r * gh_n), h = n + z * (h - n).
fn gru_update(gi: &[f32], gh: &[f32], h: &mut [f32], arith: &Arith, c: &mut Counts) {
    let hd = h.len();
    for k in 0..hd {
        let r = logistic(gi[k] + gh[k]);
        let z = logistic(gi[hd + k] + gh[hd + k]);
        let n = (gi[2 * hd + k] + arith.mul(r, gh[2 * hd + k])).tanh();
        h[k] = n + arith.mul(z, h[k] - n);
    }
    let n = hd as u64;
    arith.count_add(c, 5 * n);
    arith.count_mul(c, 2 * n);
    c.add(Op::Sigmoid, arith.acc_fmt(), 2 * n);
    c.add(Op::Tanh, arith.acc_fmt(), n);
}

/// NeuroBench's operation count of a recurrent cell (`metrics/utils/layers/macs.py`), from the
/// per-output counts of non-zero (input, weight) pairs of the two products, the binarised
/// biases (0 or 1 per output, zeros without bias) and the hidden / cell values (all taken as
/// non-zero when `h_ones`). A metric, not work: nothing is counted here.
#[allow(clippy::too_many_arguments)]
fn neurobench_cell_ops(
    kind: CellKind,
    hd: usize,
    cnt_ih: &[u32],
    cnt_hh: &[u32],
    b_ih: &[u32],
    b_hh: &[u32],
    h: &[f32],
    c: &[f32],
    h_ones: bool,
) -> u64 {
    let h_nz = |k: usize| (h_ones || h[k] != 0.0) as i64;
    let c_nz = |k: usize| (c[k] != 0.0) as i64;
    let out: Vec<i64> = (0..cnt_ih.len())
        .map(|o| cnt_ih[o] as i64 + cnt_hh[o] as i64)
        .collect();
    let mut ops: i64 = out.iter().sum();
    let nz = |v: i64| (v != 0) as i64;
    match kind {
        CellKind::Rnn => {}
        CellKind::Lstm => {
            let g: Vec<i64> = (0..out.len())
                .map(|o| nz(out[o] + b_ih[o] as i64 + b_hh[o] as i64))
                .collect();
            for k in 0..hd {
                let (i, f, gg, o) = (g[k], g[hd + k], g[2 * hd + k], g[3 * hd + k]);
                let c1 = f * c_nz(k) + i * gg;
                ops += c1 + o * nz(c1);
            }
        }
        CellKind::Gru => {
            for k in 0..hd {
                let rz = |o: usize| out[o] + b_ih[o] as i64 + b_hh[o] as i64;
                let r = nz(rz(k));
                let z_raw = rz(hd + k);
                let hh_n = nz(cnt_hh[2 * hd + k] as i64 + b_hh[2 * hd + k] as i64);
                let n_hh = nz(r * hh_n);
                // NeuroBench uses the hidden-side count here (macs.py: out_hh[2] + bias_ih[2]);
                // its `bias_ih[2, :]` is unit 2's r-gate bias for every unit (bias_ih is not
                // reshaped per gate), where each unit's own n-gate bias is meant: kept correct
                // here (docs/neurobench.md).
                let n = nz(cnt_hh[2 * hd + k] as i64 + b_ih[2 * hd + k] as i64 + n_hh);
                let t1 = nz(nz(1 - z_raw) * n);
                let t2 = nz(nz(z_raw) * h_nz(k));
                ops += n_hh + t1 + t2;
            }
        }
    }
    ops.max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ActionKey, FP32};

    const N_IN: usize = 3;
    const HD: usize = 2;

    /// Every weight non-zero, so effective counts have closed forms.
    fn weights(rows: usize, cols: usize, salt: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|k| ((k * 7 + salt) % 11) as f32 / 10.0 - 0.45)
            .collect()
    }

    struct Plain {
        w_ih: Vec<f32>,
        w_hh: Vec<f32>,
        b_ih: Vec<f32>,
        b_hh: Vec<f32>,
    }

    impl Plain {
        fn new(kind: CellKind) -> Plain {
            let g = kind.gates() * HD;
            Plain {
                w_ih: weights(g, N_IN, 1),
                w_hh: weights(g, HD, 4),
                b_ih: weights(g, 1, 2),
                b_hh: weights(g, 1, 6),
            }
        }

        fn cell(&self, kind: CellKind) -> Cell {
            let bias = Some((self.b_ih.as_slice(), self.b_hh.as_slice()));
            Cell::from_pytorch(kind, N_IN, HD, &self.w_ih, &self.w_hh, bias)
        }

        /// W v + b, summed in input order as a plain loop.
        fn product(w: &[f32], b: &[f32], v: &[f32]) -> Vec<f32> {
            (0..b.len())
                .map(|o| {
                    let mut acc = 0.0f32;
                    for (j, &vj) in v.iter().enumerate() {
                        if vj != 0.0 {
                            acc += vj * w[o * v.len() + j];
                        }
                    }
                    acc + b[o]
                })
                .collect()
        }

        /// One step of PyTorch's cell equations.
        fn step(&self, kind: CellKind, x: &[f32], h: &mut [f32], cs: &mut [f32]) {
            let gi = Self::product(&self.w_ih, &self.b_ih, x);
            let gh = Self::product(&self.w_hh, &self.b_hh, h);
            let s = |v: f32| 1.0 / (1.0 + (-v).exp());
            for k in 0..HD {
                let gate = |b: usize| gi[b * HD + k] + gh[b * HD + k];
                match kind {
                    CellKind::Rnn => h[k] = gate(0).tanh(),
                    CellKind::Lstm => {
                        cs[k] = s(gate(1)) * cs[k] + s(gate(0)) * gate(2).tanh();
                        h[k] = s(gate(3)) * cs[k].tanh();
                    }
                    CellKind::Gru => {
                        let (r, z) = (s(gate(0)), s(gate(1)));
                        let n = (gi[2 * HD + k] + r * gh[2 * HD + k]).tanh();
                        h[k] = n + z * (h[k] - n);
                    }
                }
            }
        }
    }

    fn bytes(c: &Counts, op: Op, class: TensorClass) -> u64 {
        c.0.get(&ActionKey::mem(op, FP32, class))
            .copied()
            .unwrap_or(0)
    }

    /// Runs two steps (the second with a non-zero hidden state) against the plain equations;
    /// returns the counts of each step.
    fn two_steps(kind: CellKind, x: &[f32]) -> [Counts; 2] {
        let plain = Plain::new(kind);
        let cell = plain.cell(kind);
        let cs_len = if kind == CellKind::Lstm { HD } else { 0 };
        let (mut h, mut cs) = (vec![0.0; HD], vec![0.0; cs_len]);
        let (mut h_ref, mut cs_ref) = (h.clone(), cs.clone());
        let mut sc = cell.scratch();
        let mut counts = [Counts::default(), Counts::default()];
        for c in &mut counts {
            cell.step(x, &mut h, &mut cs, &mut sc, &Arith::Exact, c);
            plain.step(kind, x, &mut h_ref, &mut cs_ref);
            assert_eq!(h, h_ref, "{kind:?} hidden state");
            assert_eq!(cs, cs_ref, "{kind:?} cell state");
        }
        assert!(h.iter().all(|v| *v != 0.0));
        counts
    }

    /// Counts shared by every cell kind for a dense step with `x_nz` non-zero inputs and
    /// `h_nz` non-zero hidden values before the step.
    fn assert_products(c: &Counts, kind: CellKind, x_nz: u64, h_nz: u64) {
        let (n_in, hd, g) = (N_IN as u64, HD as u64, (kind.gates() * HD) as u64);
        assert_eq!(c.op_total(Op::Mac), (x_nz + h_nz) * g);
        // both weight matrices streamed and both biases read
        assert_eq!(
            bytes(c, Op::Read, TensorClass::Weight),
            (n_in * g + hd * g + 2 * g) * 4
        );
        assert_eq!(bytes(c, Op::Read, TensorClass::Activation), (n_in + hd) * 4);
        assert_eq!(bytes(c, Op::Write, TensorClass::Activation), 2 * g * 4);
    }

    #[test]
    fn rnn_cell_counts_one_gate_block_per_step() {
        let x = [0.5, 0.0, -2.0];
        let [first, second] = two_steps(CellKind::Rnn, &x);
        let g = HD as u64;
        for (c, h_nz) in [(&first, 0), (&second, HD as u64)] {
            assert_products(c, CellKind::Rnn, 2, h_nz);
            // two bias adds and the gate sum per output
            assert_eq!(c.op_total(Op::Add), 2 * g + HD as u64);
            assert_eq!(c.op_total(Op::Tanh), HD as u64);
            assert_eq!(c.op_total(Op::Sigmoid), 0);
            assert_eq!(bytes(c, Op::Write, TensorClass::State), HD as u64 * 4);
            assert_eq!(bytes(c, Op::Read, TensorClass::State), 0);
            // NeuroBench: non-zero (input, weight) pairs of both products; dense takes h as ones
            assert_eq!(c.op_total(Op::EffectiveMac), (2 + h_nz) * g);
            assert_eq!(c.op_total(Op::DenseSynop), (N_IN + HD) as u64 * g);
        }
    }

    #[test]
    fn lstm_cell_counts_four_gates_per_step() {
        let x = [0.5, 0.0, -2.0];
        let [first, second] = two_steps(CellKind::Lstm, &x);
        let (hd, g) = (HD as u64, 4 * HD as u64);
        for (c, h_nz) in [(&first, 0), (&second, hd)] {
            assert_products(c, CellKind::Lstm, 2, h_nz);
            assert_eq!(c.op_total(Op::Add), 2 * g + 5 * hd);
            assert_eq!(c.op_total(Op::Mul), 3 * hd);
            assert_eq!(c.op_total(Op::Sigmoid), 3 * hd);
            assert_eq!(c.op_total(Op::Tanh), 2 * hd);
            // c read and written, then h written
            assert_eq!(bytes(c, Op::Read, TensorClass::State), hd * 4);
            assert_eq!(bytes(c, Op::Write, TensorClass::State), 2 * hd * 4);
        }
        // Effective: the products' pairs, then per unit f*c + i*g (c is zero at the first step)
        // and o*tanh(c), every gate non-zero.
        assert_eq!(first.op_total(Op::EffectiveMac), 2 * g + hd * (1 + 1));
        assert_eq!(
            second.op_total(Op::EffectiveMac),
            (2 + hd) * g + hd * (2 + 1)
        );
    }

    #[test]
    fn gru_cell_counts_three_gates_per_step() {
        let x = [0.5, 0.0, -2.0];
        let [first, second] = two_steps(CellKind::Gru, &x);
        let (hd, g) = (HD as u64, 3 * HD as u64);
        for (c, h_nz) in [(&first, 0), (&second, hd)] {
            assert_products(c, CellKind::Gru, 2, h_nz);
            assert_eq!(c.op_total(Op::Add), 2 * g + 5 * hd);
            assert_eq!(c.op_total(Op::Mul), 2 * hd);
            assert_eq!(c.op_total(Op::Sigmoid), 2 * hd);
            assert_eq!(c.op_total(Op::Tanh), hd);
            assert_eq!(bytes(c, Op::Write, TensorClass::State), hd * 4);
        }
    }

    #[test]
    fn spiking_input_runs_the_input_product_as_added_and_subtracted_events() {
        let x = [1.0, 0.0, -1.0];
        let [first, _] = two_steps(CellKind::Rnn, &x);
        let g = HD as u64;
        // two events x fan-out g, accumulate-only; the zero hidden state gates every MAC
        assert_eq!(first.op_total(Op::Ac), 2 * g);
        assert_eq!(first.op_total(Op::Synop), 2 * g);
        assert_eq!(first.op_total(Op::Mac), 0);
        assert_eq!(bytes(&first, Op::Read, TensorClass::Event), 2);
        assert_eq!(first.op_total(Op::EffectiveAc), 2 * g);
        assert_eq!(first.op_total(Op::EffectiveMac), 0);
    }
}
