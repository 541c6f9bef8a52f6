//! What models read: character text, digit images, seeded images and tokens, tensor files of
//! per-step samples, and the coding of a sample into per-step frames. Everything here is independent of the model families; the runner
//! (`exec`) checks that a model and its input fit together.

pub mod coding;
pub mod digits;
pub mod images;
pub mod tensors;
pub mod text;

use serde::{Deserialize, Serialize};

pub use coding::Encoding;
pub use digits::Digit;

/// What the models of a scenario (or one run) read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// Tokens drawn uniformly from the model's vocabulary with the scenario's seed.
    Synthetic,
    /// A text file, read character by character (relative to the scenario file).
    Text(String),
    /// A CSV of 8 x 8 digit images: 64 pixel values 0..16 then the label, one image a row.
    Digits(String),
    /// Seeded images of `size` x `size` pixels (channels from the model), N(0, 1) pixels drawn
    /// with the scenario seed; one scenario token is one image.
    SeededImage { size: usize },
    /// Samples of shape [samples, timesteps, ...features] from a `.npy` file or a tensor of a
    /// `.safetensors` file, fed frame by frame as stored, with optional labels
    /// (`Tensors(file: "x.npy", labels: "y.npy")`).
    Tensors(tensors::TensorSpec),
}

/// What reports add to the input's description for a scenario `batch` above 1.
pub fn describe_batch(batch: usize) -> String {
    format!(", batches of {batch} (NeuroBench's per-batch spiking rule for its metrics)")
}

/// Seeded choice of `n` items out of `len`, in a fixed order (calibration samples).
pub fn calibration_indices(len: usize, n: usize, seed: u64) -> Vec<usize> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xca11_b4a7e);
    (0..n).map(|_| rng.random_range(0..len)).collect()
}
