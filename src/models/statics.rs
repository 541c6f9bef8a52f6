//! NeuroBench's static metrics of a model (`ParameterCount`, `Footprint`, `ConnectionSparsity`)
//! for every model family, from the tensors the model was built from.
//!
//! - `ParameterCount`: every trainable tensor's elements (weights, biases, norms, embeddings,
//!   time parameters); EcoFormer's hash tensors are buffers, not parameters.
//! - `Footprint`: bytes of the parameters and of the persistent buffers (hash tensors) in fp32,
//!   as NeuroBench sums `numel * element_size` over `parameters()` and `buffers()`; picojoule has
//!   no module buffer whose size depends on a forward pass (see docs/neurobench.md).
//! - `ConnectionSparsity`: zero weights over all weights of the connection layers (Linear and
//!   convolution weights without their biases; recurrent cells with their biases), unrounded.
//!   `ConnectionSparsity_neurobench` is what NeuroBench prints: the ratio in float32 (its
//!   `count_zeros / count_weights` of two integer tensors) rounded to 4 decimals, ties to even
//!   (Python's `round`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// NeuroBench's static metrics of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct StaticMetrics {
    /// Every trainable parameter.
    pub ParameterCount: u64,
    /// Bytes of the parameters and persistent buffers (hash tensors), fp32.
    pub Footprint: u64,
    /// Zero weights / weights of the connection layers, unrounded.
    pub ConnectionSparsity: f64,
    /// `ConnectionSparsity` as NeuroBench prints it (float32 ratio, 4 decimals, ties to even).
    #[serde(default)]
    pub ConnectionSparsity_neurobench: f64,
    /// Zero weights and weights of the connection layers.
    #[serde(default)]
    pub connection_zeros: u64,
    #[serde(default)]
    pub connection_weights: u64,
    /// NeuroBench `NeuronOperations` cost per membrane update of each snnTorch-type neuron layer,
    /// by ledger layer (`Leaky`: 4 with either reset); layers of other neuron types are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub neuron_op_cost: BTreeMap<String, u64>,
}

/// Python's `round(x, 4)`: the decimal nearest the exact binary value, ties to even (Rust's
/// `{:.4}` formats the same way).
pub fn round4(x: f64) -> f64 {
    format!("{x:.4}").parse().unwrap_or(x)
}

/// Counts the tensors of a model into its static metrics.
#[derive(Default)]
pub struct Tally {
    params: u64,
    buffers: u64,
    zeros: u64,
    weights: u64,
    neuron_op_cost: BTreeMap<String, u64>,
}

impl Tally {
    /// A trainable tensor; `connection`: its zeros count towards `ConnectionSparsity`.
    pub fn param(&mut self, data: &[f32], connection: bool) {
        self.params += data.len() as u64;
        if connection {
            self.zeros += data.iter().filter(|v| **v == 0.0).count() as u64;
            self.weights += data.len() as u64;
        }
    }

    /// A trainable tensor of `n` elements whose zeros do not count.
    pub fn param_len(&mut self, n: usize) {
        self.params += n as u64;
    }

    /// A persistent buffer of `n` elements (a hash tensor).
    pub fn buffer(&mut self, n: usize) {
        self.buffers += n as u64;
    }

    /// A neuron layer NeuroBench's `NeuronOperations` prices at `cost` per membrane update.
    pub fn neuron_layer(&mut self, layer: &str, cost: u64) {
        self.neuron_op_cost.insert(layer.to_string(), cost);
    }

    pub fn finish(self) -> StaticMetrics {
        let (z, w) = (self.zeros, self.weights);
        let exact = if w == 0 { 0.0 } else { z as f64 / w as f64 };
        let nb = if w == 0 {
            0.0
        } else {
            round4((z as f32 / w as f32) as f64)
        };
        StaticMetrics {
            ParameterCount: self.params,
            Footprint: (self.params + self.buffers) * 4,
            ConnectionSparsity: exact,
            ConnectionSparsity_neurobench: nb,
            connection_zeros: z,
            connection_weights: w,
            neuron_op_cost: self.neuron_op_cost,
        }
    }
}

/// The static metrics of a model built from `keys` (key, shape) of `store`: a tensor is a
/// connection weight when `connection(key, shape)`; `buffers`: elements of persistent buffers.
/// A key missing from the store counts its shape's elements as parameters (nothing to test for
/// zeros).
pub fn from_store(
    keys: &[(String, Vec<usize>)],
    store: &crate::weights::TensorStore,
    connection: impl Fn(&str, &[usize]) -> bool,
    buffers: usize,
) -> StaticMetrics {
    let mut t = Tally::default();
    for (k, shape) in keys {
        let n: usize = shape.iter().product();
        match store.peek(k) {
            Some(data) if data.len() == n => t.param(data, connection(k, shape)),
            _ => t.param_len(n),
        }
    }
    t.buffer(buffers);
    t.finish()
}

/// The connection weights of the attention and transformer families: the weight matrix of every
/// Linear or convolution (`*.weight` with two or more dimensions), not the embedding tables.
pub fn linear_or_conv_weight(key: &str, shape: &[usize]) -> bool {
    key.ends_with(".weight") && shape.len() >= 2 && key != "emb.weight"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neurobench_rounding_is_python_round_to_four_decimals() {
        assert_eq!(round4(0.03125), 0.0312);
        assert_eq!(round4(0.09375), 0.0938);
        assert_eq!(round4(1.0 / 3.0), 0.3333);
    }

    #[test]
    fn sparsity_is_unrounded_beside_what_neurobench_prints() {
        let mut t = Tally::default();
        let mut w = vec![1.0; 32];
        w[0] = 0.0;
        t.param(&w, true);
        t.param(&[0.0; 8], false);
        t.buffer(10);
        let s = t.finish();
        assert_eq!(s.ConnectionSparsity, 0.03125);
        assert_eq!(s.ConnectionSparsity_neurobench, 0.0312);
        assert_eq!(s.ParameterCount, 40);
        assert_eq!(s.Footprint, 200);
    }
}
