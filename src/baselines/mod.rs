//! Reference predictors every trained model is measured against: a character n-gram for language
//! models and k-nearest-neighbour on raw pixels for digit classifiers. They are fitted on the
//! training split when a scenario asks for them and scored on the same positions or images as
//! the runs; they are accuracy references only (no ledger: nothing is priced).

pub mod knn;
pub mod ngram;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::input::{digits, text};

/// Which reference predictor, with its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reference {
    /// Character n-gram of `order` (context `order - 1` characters) with interpolated absolute
    /// discounting by `discount` (docs/results.md#baselines).
    NGram { order: usize, discount: f64 },
    /// k-nearest-neighbour vote on raw pixels (squared Euclidean distance).
    Knn { k: usize },
}

impl Reference {
    /// A name for reports.
    pub fn describe(&self) -> String {
        match self {
            Reference::NGram { order, discount } => {
                format!("order-{order} character n-gram, absolute discounting {discount}")
            }
            Reference::Knn { k } => format!("{k}-NN on raw pixels"),
        }
    }
}

/// What a reference predictor scored.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub predictions: usize,
    pub correct: usize,
    /// Summed cross-entropy in bits (n-gram only).
    pub bits: Option<f64>,
}

/// Largest bytes the n-gram's count tables may take per counted (position, order) pair: a
/// hash-map entry of a u64 key and a u32 or (u32, u32) value, with the table's spare room.
const NGRAM_BYTES_PER_PAIR: u64 = 64;

/// An upper bound on the memory an n-gram fitted on `chars` characters takes.
pub fn ngram_bytes(chars: usize, order: usize) -> u64 {
    (chars as u64)
        .saturating_mul(order as u64)
        .saturating_mul(NGRAM_BYTES_PER_PAIR)
}

/// Fit `reference` on the training file `train` and score the first `n` predictions of the
/// test input `test` (a text file for the n-gram, a digits CSV for k-NN). `check` is called with
/// a description and a byte estimate before the largest allocation.
pub fn score(
    reference: &Reference,
    train: &Path,
    test: &Path,
    n: usize,
    check: impl Fn(&str, u64) -> Result<()>,
) -> Result<Scored> {
    match reference {
        Reference::NGram { order, discount } => {
            let train_text = crate::error::read_text(train)?;
            check(
                &format!("the order-{order} n-gram counts of {}", train.display()),
                ngram_bytes(train_text.len(), *order),
            )?;
            let train_tokens = text::encode_text(&train_text);
            let model = ngram::CharNgram::fit(&train_tokens, text::CHAR_VOCAB, *order, *discount)
                .map_err(|e| Error::input(format!("{}: {e}", train.display())))?;
            let (stream, _) = text::read_tokens(test, n)?;
            let (bits, correct) = ngram::score(&model, &stream, n);
            Ok(Scored {
                predictions: n,
                correct,
                bits: Some(bits),
            })
        }
        Reference::Knn { k } => {
            let train_images = digits::read(train)?;
            let test_images = digits::read_first(test, n)?;
            let correct = knn::score(&train_images, &test_images, *k)
                .map_err(|e| Error::input(format!("{}: {e}", train.display())))?;
            Ok(Scored {
                predictions: n,
                correct,
                bits: None,
            })
        }
    }
}
