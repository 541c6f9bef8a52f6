//! Neurons with per-neuron parameters, as NIR describes them (continuous-time ODEs), discretised
//! with a time step by the model that builds them (`models::nir`).
//!
//! One step of a first-order neuron with per-neuron coefficients `a`, `b`, `c`:
//! `v' = a v + b + c x`; when the neuron has thresholds it spikes where `v' > threshold` and its
//! membrane is set to `v_reset` there (the reset is applied in the step that spikes). A
//! current-based neuron (NIR CubaLI/CubaLIF) has a synaptic current `i` with its own decay
//! `i' = a_syn i + w_in x` (`w_in` here is the per-neuron input coefficient), and its membrane integrates `i` instead of `x`; whether the membrane
//! sees the current before or after this step's input is the `current_first` choice (snnTorch's
//! `Synaptic` updates the current first, Norse's `LIFCell` integrates the previous current).

use super::arith::{Arith, Site};
use super::events::SpikeTrain;
use crate::ledger::{Counts, Op, TensorClass};

/// Per-neuron coefficients; every vector has one value per neuron.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronVec {
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub c: Vec<f32>,
    /// Spiking neurons: threshold and reset value.
    pub fire: Option<(Vec<f32>, Vec<f32>)>,
    /// Current-based neurons: the current's decay and input weight, and the update order.
    pub current: Option<Current>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Current {
    pub a_syn: Vec<f32>,
    pub w_in: Vec<f32>,
    pub current_first: bool,
}

impl NeuronVec {
    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// One step: `v` membranes, `i` currents (empty unless current-based), `x` input. Spikes go
    /// to `out` (cleared first; left empty for non-spiking neurons). `first`: a sample's first
    /// step (every membrane counts as changed, as NeuroBench counts).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        v: &mut [f32],
        i: &mut [f32],
        x: &[f32],
        first: bool,
        out: &mut SpikeTrain,
        arith: &Arith,
        c: &mut Counts,
    ) {
        let arith = &arith.at(Site::Other);
        out.clear();
        let n = v.len();
        let mut changed = 0u64;
        for k in 0..n {
            let before = v[k];
            let drive = match &self.current {
                None => x[k],
                Some(cur) => {
                    let next_i = arith.mul(cur.a_syn[k], i[k]) + arith.mul(cur.w_in[k], x[k]);
                    if cur.current_first {
                        i[k] = next_i;
                        next_i
                    } else {
                        let old = i[k];
                        i[k] = next_i;
                        old
                    }
                }
            };
            let mut next = arith.mul(self.a[k], before) + self.b[k] + arith.mul(self.c[k], drive);
            if let Some((thr, reset)) = &self.fire
                && next > thr[k]
            {
                out.fire(k);
                next = reset[k];
            }
            v[k] = next;
            changed += (next != before) as u64;
        }
        let n = n as u64;
        let fmt = arith.acc_fmt();
        super::lif::count_neuron_update(c, fmt, n, if first { n } else { changed }, out);
        if self.current.is_some() {
            // The synaptic current: one more state update per neuron, read and written.
            c.add(Op::NeuronUpdate, fmt, n);
            c.mem(Op::Read, fmt, TensorClass::State, n * fmt.bytes());
            c.mem(Op::Write, fmt, TensorClass::State, n * fmt.bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lif(a: f32, c: f32, thr: f32, reset: f32) -> NeuronVec {
        NeuronVec {
            a: vec![a],
            b: vec![0.0],
            c: vec![c],
            fire: Some((vec![thr], vec![reset])),
            current: None,
        }
    }

    fn run(n: &NeuronVec, xs: &[f32]) -> (Vec<usize>, Vec<f32>) {
        let (mut v, mut i) = (vec![0.0], vec![0.0]);
        let mut s = SpikeTrain::new(1);
        let mut c = Counts::default();
        let mut fired = vec![];
        let mut vs = vec![];
        for (t, &x) in xs.iter().enumerate() {
            n.step(&mut v, &mut i, &[x], t == 0, &mut s, &Arith::Exact, &mut c);
            fired.push(s.count());
            vs.push(v[0]);
        }
        (fired, vs)
    }

    #[test]
    fn spiking_step_resets_to_v_reset_in_the_same_step() {
        let (fired, vs) = run(&lif(0.5, 1.0, 1.0, -0.25), &[1.2, 0.2]);
        assert_eq!(fired, vec![1, 0]);
        assert_eq!(vs[0], -0.25);
        assert!((vs[1] - (0.5 * -0.25 + 0.2)).abs() < 1e-7);
    }

    #[test]
    fn zero_reset_matches_snntorch_leaky_zero_reset_spike_for_spike() {
        // snnTorch's Leaky(reset="zero") resets one step later from the stored membrane; with
        // v_reset = 0 the spikes are the same.
        use crate::engine::leaky::{Leaky, LeakyReset};
        let l = Leaky {
            beta: 0.8,
            threshold: 1.0,
            reset: LeakyReset::Zero,
        };
        let xs = [0.7, 0.6, 0.3, 0.9, 0.1, 1.5, 0.0, 0.4];
        let (ours, _) = run(&lif(0.8, 1.0, 1.0, 0.0), &xs);
        let mut m = [0.0];
        let mut s = SpikeTrain::new(1);
        let mut c = Counts::default();
        let theirs: Vec<usize> = xs
            .iter()
            .enumerate()
            .map(|(t, &x)| {
                l.step(&mut m, &[x], t == 0, &mut s, &Arith::Exact, &mut c);
                s.count()
            })
            .collect();
        assert_eq!(ours, theirs);
        assert!(ours.iter().sum::<usize>() >= 2);
    }

    #[test]
    fn current_order_decides_when_the_input_reaches_the_membrane() {
        let mut n = NeuronVec {
            a: vec![1.0],
            b: vec![0.0],
            c: vec![1.0],
            fire: None,
            current: Some(Current {
                a_syn: vec![0.5],
                w_in: vec![1.0],
                current_first: true,
            }),
        };
        assert_eq!(run(&n, &[1.0, 0.0]).1, vec![1.0, 1.5]);
        n.current.as_mut().unwrap().current_first = false;
        assert_eq!(run(&n, &[1.0, 0.0]).1, vec![0.0, 1.0]);
    }
}
