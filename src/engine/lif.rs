//! Leaky integrate-and-fire neurons, as SpikingJelly's `LIFNode` (SpikeGPT uses tau = 2,
//! threshold 1, hard reset to 0, decay_input = true).

use serde::{Deserialize, Serialize};

use super::arith::{Arith, Site};
use super::events::SpikeTrain;
use crate::ledger::{Counts, Op, TensorClass};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Reset {
    /// V = V_reset after a spike.
    #[default]
    Hard,
    /// V = H - V_threshold after a spike.
    Soft,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifConfig {
    pub tau: f32,
    pub v_threshold: f32,
    pub v_reset: f32,
    pub reset: Reset,
    /// H = V + (X - (V - V_reset)) / tau when true; H = V - (V - V_reset) / tau + X when false.
    pub decay_input: bool,
}

impl Default for LifConfig {
    fn default() -> Self {
        LifConfig {
            tau: 2.0,
            v_threshold: 1.0,
            v_reset: 0.0,
            reset: Reset::Hard,
            decay_input: true,
        }
    }
}

impl LifConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.tau.is_finite() && self.tau >= 1.0) {
            return Err(format!(
                "lif.tau must be a finite number >= 1, found {}",
                self.tau
            ));
        }
        if !self.v_threshold.is_finite() || !self.v_reset.is_finite() {
            return Err("lif.v_threshold and lif.v_reset must be finite".into());
        }
        Ok(())
    }

    /// One step of a layer of neurons: charge with `x`, fire, reset. `v` is the membrane state,
    /// carried across tokens.
    pub fn step(
        &self,
        v: &mut [f32],
        x: &[f32],
        out: &mut SpikeTrain,
        arith: &Arith,
        c: &mut Counts,
    ) {
        debug_assert_eq!(v.len(), x.len());
        let arith = &arith.at(Site::Other);
        out.clear();
        let mut changed = 0u64;
        for (i, (vi, &xi)) in v.iter_mut().zip(x).enumerate() {
            let before = *vi;
            let h = if self.decay_input {
                before + (xi - (before - self.v_reset)) / self.tau
            } else {
                before - (before - self.v_reset) / self.tau + xi
            };
            if h >= self.v_threshold {
                out.fire(i);
                *vi = match self.reset {
                    Reset::Hard => self.v_reset,
                    Reset::Soft => h - self.v_threshold,
                };
            } else {
                *vi = h;
            }
            changed += (*vi != before) as u64;
        }
        count_neuron_update(c, arith.acc_fmt(), v.len() as u64, changed, out);
    }
}

/// The counts of one update of `n` spiking neurons (LIF, Leaky): the updates, the spikes in
/// `out`, the membranes that changed, the activation metrics, and the input read, the membrane
/// read and write, and the spike addresses written.
pub(crate) fn count_neuron_update(
    c: &mut Counts,
    fmt: crate::ledger::Fmt,
    n: u64,
    changed: u64,
    out: &SpikeTrain,
) {
    let spikes = out.count() as u64;
    let bytes = fmt.bytes();
    c.add(Op::NeuronUpdate, fmt, n);
    c.add(Op::Spike, fmt, spikes);
    c.add(Op::MembraneChange, fmt, changed);
    c.add(Op::ActOut, fmt, n);
    c.add(Op::ActNonzero, fmt, spikes);
    c.mem(Op::Read, fmt, TensorClass::Activation, n * bytes);
    c.mem(Op::Read, fmt, TensorClass::Neuron, n * bytes);
    c.mem(Op::Write, fmt, TensorClass::Neuron, n * bytes);
    c.mem(
        Op::Write,
        fmt,
        TensorClass::Event,
        spikes * out.address_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_reset_neuron_follows_spikingjelly_dynamics() {
        // tau = 2: H = 0.5 V + 0.5 X. Input 1.5 each step: H = 0.75, then 1.125 -> spike, reset.
        let lif = LifConfig::default();
        let mut v = [0.0];
        let mut s = SpikeTrain::new(1);
        let mut c = Counts::default();
        let mut fired = vec![];
        for _ in 0..4 {
            lif.step(&mut v, &[1.5], &mut s, &Arith::Exact, &mut c);
            fired.push(s.count());
        }
        assert_eq!(fired, vec![0, 1, 0, 1]);
        assert_eq!(c.op_total(Op::NeuronUpdate), 4);
        assert_eq!(c.op_total(Op::Spike), 2);
    }

    #[test]
    fn soft_reset_keeps_the_excess() {
        let lif = LifConfig {
            reset: Reset::Soft,
            ..Default::default()
        };
        let mut v = [0.0];
        let mut s = SpikeTrain::new(1);
        let mut c = Counts::default();
        lif.step(&mut v, &[3.0], &mut s, &Arith::Exact, &mut c);
        assert_eq!(s.count(), 1);
        assert_eq!(v[0], 0.5); // H = 1.5, minus threshold 1
    }
}
