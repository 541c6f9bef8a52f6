//! Spike trains as event lists: the indices that fired at one step.

/// The spikes of one layer at one step, kept both as an index list (for event-driven consumers)
/// and as a 0/1 vector (for the residual stream).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpikeTrain {
    pub indices: Vec<u32>,
    pub dense: Vec<f32>,
}

impl SpikeTrain {
    pub fn new(n: usize) -> Self {
        SpikeTrain {
            indices: Vec::with_capacity(n),
            dense: vec![0.0; n],
        }
    }

    pub fn len(&self) -> usize {
        self.dense.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dense.is_empty()
    }

    pub fn count(&self) -> usize {
        self.indices.len()
    }

    /// Forget the previous step's spikes, keeping the buffers.
    pub fn clear(&mut self) {
        for &i in &self.indices {
            self.dense[i as usize] = 0.0;
        }
        self.indices.clear();
    }

    pub fn fire(&mut self, i: usize) {
        self.indices.push(i as u32);
        self.dense[i] = 1.0;
    }

    /// Bytes of one address-event: enough bits to name any of the layer's neurons.
    pub fn address_bytes(&self) -> u64 {
        let n = self.dense.len().max(2) as u64;
        let bits = 64 - (n - 1).leading_zeros() as u64;
        bits.div_ceil(8)
    }
}

/// NeuroBench's "spiking" input: if every element of `x` is in {-1, 0, 1}, fill `pos` with the
/// +1 entries and `neg` with the -1 entries and return true; otherwise return false and leave
/// both untouched.
pub fn split_signed(x: &[f32], pos: &mut SpikeTrain, neg: &mut SpikeTrain) -> bool {
    if !is_spiking(x) {
        return false;
    }
    pos.clear();
    neg.clear();
    for (i, &v) in x.iter().enumerate() {
        if v == 1.0 {
            pos.fire(i);
        } else if v == -1.0 {
            neg.fire(i);
        }
    }
    true
}

/// NeuroBench's test of a layer input: every element in {-1, 0, 1}.
pub fn is_spiking(x: &[f32]) -> bool {
    x.iter().all(|&v| v == 0.0 || v == 1.0 || v == -1.0)
}

/// NeuroBench's per-batch classification (its `spiking` flag is computed on the whole batch
/// tensor): a layer call whose own input was spiking, in a batch where some sample's input to
/// that layer at the same step was not, counts its `effective` synaptic operations as effective
/// MACs instead of ACs. The pairs counted are the same (non-zero input, non-zero weight), so
/// the `effective` ACs this call counted move to MACs in their number format; the executed work
/// (`ac`, `synop`, memory) is what the engine did and does not move.
pub fn count_batch_not_spiking(c: &mut crate::ledger::Counts, effective: u64) {
    use crate::ledger::{ActionKey, Op};
    let mut left = effective;
    let keys: Vec<ActionKey> = c
        .iter()
        .filter(|(k, _)| k.op == Op::EffectiveAc)
        .map(|(k, _)| *k)
        .collect();
    for k in keys {
        let have = c.0.get(&k).copied().unwrap_or(0);
        let moved = have.min(left);
        if moved == 0 {
            continue;
        }
        if have == moved {
            c.0.remove(&k);
        } else {
            c.0.insert(k, have - moved);
        }
        c.add(Op::EffectiveMac, k.fmt, moved);
        left -= moved;
    }
    debug_assert_eq!(left, 0, "more effective ACs moved than counted");
}

/// Keep a step's spikes for the next step's shifted input: their addresses are state.
pub fn save_spikes(
    dst: &mut SpikeTrain,
    src: &SpikeTrain,
    arith: &super::Arith,
    c: &mut crate::ledger::Counts,
) {
    dst.clone_from(src);
    c.mem(
        crate::ledger::Op::Write,
        arith.fmt(),
        crate::ledger::TensorClass::Event,
        src.count() as u64 * src.address_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_resets_only_what_fired() {
        let mut s = SpikeTrain::new(5);
        s.fire(1);
        s.fire(4);
        assert_eq!(s.dense, vec![0.0, 1.0, 0.0, 0.0, 1.0]);
        s.clear();
        assert_eq!(s.dense, vec![0.0; 5]);
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn signed_input_splits_into_added_and_subtracted_spikes() {
        let (mut pos, mut neg) = (SpikeTrain::new(4), SpikeTrain::new(4));
        assert!(split_signed(&[1.0, -1.0, 0.0, 1.0], &mut pos, &mut neg));
        assert_eq!(
            (pos.indices.clone(), neg.indices.clone()),
            (vec![0, 3], vec![1])
        );
        assert!(!split_signed(&[1.0, 0.5, 0.0, 0.0], &mut pos, &mut neg));
        assert_eq!(
            pos.indices,
            vec![0, 3],
            "a real input leaves the trains alone"
        );
    }

    #[test]
    fn address_width_follows_layer_size() {
        assert_eq!(SpikeTrain::new(256).address_bytes(), 1);
        assert_eq!(SpikeTrain::new(257).address_bytes(), 2);
        assert_eq!(SpikeTrain::new(3072).address_bytes(), 2);
    }

    #[test]
    fn batch_rule_moves_effective_acs_to_macs_in_their_format_only() {
        use crate::ledger::{Counts, FP32, Op};
        let mut c = Counts::default();
        c.add(Op::EffectiveAc, FP32, 10);
        c.add(Op::EffectiveMac, FP32, 4);
        c.add(Op::Ac, FP32, 12);
        count_batch_not_spiking(&mut c, 6);
        assert_eq!(c.op_total(Op::EffectiveAc), 4);
        assert_eq!(c.op_total(Op::EffectiveMac), 10);
        assert_eq!(c.op_total(Op::Ac), 12, "executed work stays");
    }
}
