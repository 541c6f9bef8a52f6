//! Seeded synthetic images and sample vectors, drawn with the scenario seed.

use rand::{RngExt, SeedableRng};

use crate::weights::standard_normal as normal;

/// A seeded image (`[size, size, channels]`, channels last), pixels N(0, 1) as after the usual
/// per-channel normalisation. Image `index` of a scenario with seed `seed`.
pub fn seeded_image(size: usize, channels: usize, seed: u64, index: usize) -> Vec<f32> {
    let mut rng =
        rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x1_a6e ^ ((index as u64) << 32));
    (0..size * size * channels)
        .map(|_| normal(&mut rng))
        .collect()
}

/// Sample vectors of `len` values uniform in [0, 1), one after another from one seeded stream:
/// nothing is drawn ahead, so memory does not grow with the number of samples.
pub struct UniformVectors {
    rng: rand::rngs::Xoshiro256PlusPlus,
    values: Vec<f32>,
}

impl UniformVectors {
    pub fn new(len: usize, seed: u64) -> UniformVectors {
        UniformVectors {
            rng: rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed),
            values: vec![0.0; len],
        }
    }

    pub fn next_vector(&mut self) -> &[f32] {
        let rng = &mut self.rng;
        self.values
            .iter_mut()
            .for_each(|v| *v = rng.random::<f32>());
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_images_depend_on_seed_and_index_only() {
        assert_eq!(seeded_image(4, 3, 1, 2), seeded_image(4, 3, 1, 2));
        assert_ne!(seeded_image(4, 3, 1, 2), seeded_image(4, 3, 1, 3));
        assert_eq!(seeded_image(4, 3, 1, 0).len(), 48);
    }
}
