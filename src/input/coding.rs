//! How one sample's values become the inputs of a model's time steps.

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// How a sample's values become the per-step input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Encoding {
    /// The same vector at every step (a static image repeated T times).
    #[default]
    Direct,
    /// Bernoulli spikes with probability = value clipped to [0, 1], seeded (snnTorch `spikegen.rate`).
    Rate,
}

/// The `timesteps` frames of sample number `sample` under `encoding`; rate coding draws from a
/// stream seeded by the scenario seed and the sample number, so a sample's spikes do not depend
/// on which other samples run.
pub fn frames(
    encoding: Encoding,
    timesteps: usize,
    values: &[f32],
    seed: u64,
    sample: usize,
) -> Vec<Vec<f32>> {
    match encoding {
        Encoding::Direct => vec![values.to_vec(); timesteps],
        Encoding::Rate => {
            let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(
                seed ^ (sample as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            (0..timesteps)
                .map(|_| {
                    values
                        .iter()
                        .map(|&p| {
                            if rng.random::<f32>() < p.clamp(0.0, 1.0) {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .collect()
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_coding_repeats_the_values() {
        let f = frames(Encoding::Direct, 3, &[0.25, 1.0], 0, 0);
        assert_eq!(f, vec![vec![0.25, 1.0]; 3]);
    }

    #[test]
    fn rate_coding_fires_in_proportion_and_is_seeded() {
        let v = vec![0.3f32; 1000];
        let a = frames(Encoding::Rate, 20, &v, 7, 3);
        let ones: f32 = a.iter().flatten().sum();
        let rate = ones / 20_000.0;
        assert!((rate - 0.3).abs() < 0.02, "{rate}");
        assert_eq!(a, frames(Encoding::Rate, 20, &v, 7, 3));
        assert_ne!(a, frames(Encoding::Rate, 20, &v, 7, 4));
    }
}
