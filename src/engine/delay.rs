//! Per-element delay lines (NIR's `Delay`): element k's output at step t is its input at step
//! t - d_k (zero before the sample's step d_k).
//!
//! Counting: each step writes every input into the line and reads every output from it (state
//! traffic); nothing is computed.

use super::arith::Arith;
use crate::ledger::{Counts, Op, TensorClass};

#[derive(Clone, Debug, PartialEq)]
pub struct DelayLine {
    /// Delay of each element, in steps.
    pub steps: Vec<usize>,
}

impl DelayLine {
    /// Slots of the ring buffer: the longest delay plus one.
    pub fn depth(&self) -> usize {
        self.steps.iter().copied().max().unwrap_or(0) + 1
    }

    /// The state this line keeps: `depth` values per element.
    pub fn state_len(&self) -> usize {
        self.depth() * self.steps.len()
    }

    /// Step `t` of a sample (`t` = 0 at its start, `buf` zeroed then).
    pub fn step(
        &self,
        buf: &mut [f32],
        t: usize,
        x: &[f32],
        out: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) {
        let n = self.steps.len();
        let depth = self.depth();
        let slot = t % depth;
        buf[slot * n..(slot + 1) * n].copy_from_slice(x);
        for (k, (o, &d)) in out.iter_mut().zip(&self.steps).enumerate() {
            *o = if t >= d {
                buf[((t - d) % depth) * n + k]
            } else {
                0.0
            };
        }
        let bytes = n as u64 * arith.operand_bytes();
        c.mem(Op::Write, arith.fmt(), TensorClass::State, bytes);
        c.mem(Op::Read, arith.fmt(), TensorClass::State, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_element_comes_out_its_own_number_of_steps_later() {
        let d = DelayLine {
            steps: vec![0, 1, 3],
        };
        let mut buf = vec![0.0; d.state_len()];
        let mut c = Counts::default();
        let mut outs = vec![];
        for t in 0..5 {
            let x = [t as f32 + 1.0; 3];
            let mut o = [0.0; 3];
            d.step(&mut buf, t, &x, &mut o, &Arith::Exact, &mut c);
            outs.push(o);
        }
        assert_eq!(
            outs,
            vec![
                [1.0, 0.0, 0.0],
                [2.0, 1.0, 0.0],
                [3.0, 2.0, 0.0],
                [4.0, 3.0, 1.0],
                [5.0, 4.0, 2.0]
            ]
        );
    }
}
