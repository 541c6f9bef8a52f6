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
    fn address_width_follows_layer_size() {
        assert_eq!(SpikeTrain::new(256).address_bytes(), 1);
        assert_eq!(SpikeTrain::new(257).address_bytes(), 2);
        assert_eq!(SpikeTrain::new(3072).address_bytes(), 2);
    }
}
