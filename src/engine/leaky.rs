//! snnTorch's `Leaky` neuron (first-order leaky integrate-and-fire), with NeuroBench's
//! `MembraneUpdates` semantics.
//!
//! One step, as snnTorch computes it: the reset is decided from the membrane *before* the
//! update (`reset = mem > threshold`), then
//! - reset by subtraction (snnTorch's default): `mem = beta * mem + x - reset * threshold`;
//! - reset to zero: `mem = beta * (1 - reset) * mem + x`;
//!
//! and the neuron spikes when the new `mem > threshold`. `beta = 1` is an integrate-and-fire
//! neuron. NeuroBench's `MembraneUpdates` counts every neuron at a sample's first step, then
//! the neurons whose membrane changed (pre-step value != post-step value).

use serde::{Deserialize, Serialize};

use super::arith::Arith;
use super::events::SpikeTrain;
use crate::ledger::Counts;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LeakyReset {
    /// mem -= threshold after a spike (snnTorch `reset_mechanism="subtract"`, the default).
    #[default]
    Subtract,
    /// mem = 0 after a spike (snnTorch `reset_mechanism="zero"`).
    Zero,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leaky {
    pub beta: f32,
    pub threshold: f32,
    pub reset: LeakyReset,
}

impl Leaky {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.beta.is_finite() && (0.0..=1.0).contains(&self.beta)) {
            return Err(format!("Leaky beta must be in [0, 1], found {}", self.beta));
        }
        if !self.threshold.is_finite() {
            return Err("Leaky threshold must be finite".into());
        }
        Ok(())
    }

    /// One step of a layer of neurons. `first`: the first step of a sample (NeuroBench counts
    /// every neuron's membrane as updated then).
    pub fn step(
        &self,
        mem: &mut [f32],
        x: &[f32],
        first: bool,
        out: &mut SpikeTrain,
        arith: &Arith,
        c: &mut Counts,
    ) {
        debug_assert_eq!(mem.len(), x.len());
        out.clear();
        let mut changed = 0u64;
        for (i, (m, &xi)) in mem.iter_mut().zip(x).enumerate() {
            let before = *m;
            let reset = before > self.threshold;
            let next = match self.reset {
                LeakyReset::Subtract => {
                    arith.mul(self.beta, before) + xi - if reset { self.threshold } else { 0.0 }
                }
                LeakyReset::Zero => {
                    if reset {
                        xi
                    } else {
                        arith.mul(self.beta, before) + xi
                    }
                }
            };
            *m = next;
            if next > self.threshold {
                out.fire(i);
            }
            changed += (next != before) as u64;
        }
        let n = mem.len() as u64;
        super::lif::count_neuron_update(
            c,
            arith.acc_fmt(),
            n,
            if first { n } else { changed },
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Op;

    fn run(l: Leaky, xs: &[f32]) -> (Vec<usize>, Vec<f32>) {
        let mut m = [0.0];
        let mut s = SpikeTrain::new(1);
        let mut c = Counts::default();
        let mut fired = vec![];
        let mut mems = vec![];
        for (t, &x) in xs.iter().enumerate() {
            l.step(&mut m, &[x], t == 0, &mut s, &Arith::Exact, &mut c);
            fired.push(s.count());
            mems.push(m[0]);
        }
        (fired, mems)
    }

    #[test]
    fn subtract_reset_is_applied_one_step_after_the_spike_as_in_snntorch() {
        let l = Leaky {
            beta: 0.5,
            threshold: 1.0,
            reset: LeakyReset::Subtract,
        };
        // mem: 1.2 (spike), 0.5*1.2 + 0.2 - 1 = -0.2, 0.5*-0.2 + 0.2 = 0.1
        let (fired, mems) = run(l, &[1.2, 0.2, 0.2]);
        assert_eq!(fired, vec![1, 0, 0]);
        assert!(
            (mems[1] + 0.2).abs() < 1e-6 && (mems[2] - 0.1).abs() < 1e-6,
            "{mems:?}"
        );
    }

    #[test]
    fn zero_reset_drops_the_membrane() {
        let l = Leaky {
            beta: 0.5,
            threshold: 1.0,
            reset: LeakyReset::Zero,
        };
        let (fired, mems) = run(l, &[1.2, 0.2]);
        assert_eq!(fired, vec![1, 0]);
        assert!((mems[1] - 0.2).abs() < 1e-6);
    }

    #[test]
    fn membrane_updates_count_all_at_first_step_then_only_changes() {
        let l = Leaky {
            beta: 1.0,
            threshold: 1.0,
            reset: LeakyReset::Subtract,
        };
        let mut m = [0.0, 0.0];
        let mut s = SpikeTrain::new(2);
        let mut c = Counts::default();
        l.step(&mut m, &[0.0, 0.0], true, &mut s, &Arith::Exact, &mut c);
        l.step(&mut m, &[0.0, 0.3], false, &mut s, &Arith::Exact, &mut c);
        assert_eq!(c.op_total(Op::MembraneChange), 3);
        assert_eq!(c.op_total(Op::NeuronUpdate), 4);
    }
}
