//! k-nearest-neighbour classification on raw pixels: the simplest classifier a digit model has
//! to beat.
//!
//! Distance is the squared Euclidean distance of the pixel vectors as stored (0..16 scaled to
//! 0..1). The k nearest training images vote; a tie in distance goes to the earlier training
//! row, a tie in votes to the class whose nearest member is nearest.

use crate::error::{Error, Result};
use crate::input::Digit;

/// The class k-NN gives `query` among `train`.
pub fn classify(train: &[Digit], query: &Digit, k: usize) -> usize {
    let mut near: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
    for (i, d) in train.iter().enumerate() {
        let dist: f32 = d
            .pixels
            .iter()
            .zip(&query.pixels)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        // Keep the k nearest, sorted by (distance, row): a later row never displaces an equal one.
        if near.len() < k || dist < near[near.len() - 1].0 {
            let at = near.partition_point(|&(nd, _)| nd <= dist);
            near.insert(at, (dist, i));
            near.truncate(k);
        }
    }
    let mut votes = [0usize; crate::input::digits::CLASSES];
    for &(_, i) in &near {
        votes[train[i].label] += 1;
    }
    let most = votes.iter().copied().max().unwrap_or(0);
    // Ties in votes: the nearest neighbour among the tied classes decides.
    near.iter()
        .map(|&(_, i)| train[i].label)
        .find(|&c| votes[c] == most)
        .unwrap_or(0)
}

/// Correct predictions of k-NN on `test`.
pub fn score(train: &[Digit], test: &[Digit], k: usize) -> Result<usize> {
    if k == 0 || k > train.len() {
        return Err(Error::input(format!(
            "k-NN with k = {k} needs 1..={} (the training images)",
            train.len()
        )));
    }
    Ok(test
        .iter()
        .filter(|q| classify(train, q, k) == q.label)
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit(v: f32, label: usize) -> Digit {
        Digit {
            pixels: [v; crate::input::digits::PIXELS],
            label,
        }
    }

    #[test]
    fn the_nearest_image_decides_with_k_1() {
        let train = [digit(0.0, 0), digit(0.5, 5), digit(1.0, 9)];
        assert_eq!(classify(&train, &digit(0.6, 0), 1), 5);
        assert_eq!(classify(&train, &digit(0.9, 0), 1), 9);
    }

    #[test]
    fn the_majority_of_k_decides_and_ties_go_to_the_nearest() {
        let train = [
            digit(0.0, 1),
            digit(0.125, 1),
            digit(0.5, 2),
            digit(0.625, 2),
        ];
        // Nearest three to 0.5625: 0.5 (2), 0.625 (2), 0.125 (1): class 2 by majority.
        assert_eq!(classify(&train, &digit(0.5625, 0), 3), 2);
        // k = 2 at 0.3125: 0.125 (1) and 0.5 (2) are equally near (0.1875 away, exact in
        // binary) and tie in votes; the earlier row, class 1, sorts first and decides.
        assert_eq!(classify(&train, &digit(0.3125, 0), 2), 1);
    }

    #[test]
    fn k_beyond_the_training_set_is_refused() {
        let train = [digit(0.0, 0)];
        assert!(score(&train, &[digit(0.0, 0)], 2).is_err());
        assert_eq!(score(&train, &[digit(0.0, 0)], 1).unwrap(), 1);
    }
}
