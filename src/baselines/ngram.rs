//! A character n-gram with interpolated absolute discounting: the simplest language model a
//! character model has to beat.
//!
//! For a context h of length k (k = order - 1 down to 0) and a character c,
//!
//!   P_k(c | h) = max(C(h c) - D, 0) / C(h) + D * N1+(h .) / C(h) * P_{k-1}(c | h')
//!
//! where h' drops the oldest character of h, C counts occurrences in the training text, N1+(h .)
//! is the number of distinct characters seen after h, and D is the discount. A context never
//! seen in training (C(h) = 0) passes P_{k-1} through. The recursion ends in the uniform
//! distribution over the vocabulary, so every character has a probability above zero. This is
//! absolute discounting in the interpolated form of Ney, Essen and Kneser (1994), without
//! Kneser-Ney's continuation counts.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Longest supported order: a context of up to 9 characters packs into one u64 key.
pub const MAX_ORDER: usize = 10;

/// Counts of every context and (context, next character) pair up to `order - 1` characters.
pub struct CharNgram {
    order: usize,
    vocab: usize,
    discount: f64,
    /// Per context key: (occurrences followed by a character, distinct characters after it).
    contexts: HashMap<u64, (u32, u32)>,
    /// Per (context, next character) key: occurrences.
    pairs: HashMap<u64, u32>,
}

/// The key of a context (oldest first); tokens are stored as digits 1..=vocab in base vocab + 1,
/// so contexts of different lengths never share a key.
fn key(context: &[usize], vocab: usize) -> u64 {
    context
        .iter()
        .fold(0u64, |k, &t| k * (vocab as u64 + 1) + t as u64 + 1)
}

impl CharNgram {
    /// Count a training stream of tokens below `vocab`.
    pub fn fit(tokens: &[usize], vocab: usize, order: usize, discount: f64) -> Result<CharNgram> {
        if order == 0 || order > MAX_ORDER {
            return Err(Error::input(format!(
                "n-gram order {order} is outside 1..={MAX_ORDER}"
            )));
        }
        if !(discount > 0.0 && discount < 1.0) {
            return Err(Error::input(format!(
                "n-gram discount {discount} is outside (0, 1)"
            )));
        }
        if vocab == 0 || (vocab as f64 + 1.0).powi(order as i32) >= u64::MAX as f64 {
            return Err(Error::input(format!(
                "n-gram vocabulary {vocab} with order {order} does not fit a 64-bit key"
            )));
        }
        let mut contexts: HashMap<u64, (u32, u32)> = HashMap::new();
        let mut pairs: HashMap<u64, u32> = HashMap::new();
        for i in 0..tokens.len() {
            let c = tokens[i];
            if c >= vocab {
                return Err(Error::input(format!(
                    "n-gram training token {c} at position {i} is outside the vocabulary of {vocab}"
                )));
            }
            for k in 0..order.min(i + 1) {
                let ctx = key(&tokens[i - k..i], vocab);
                let pair = ctx * (vocab as u64 + 1) + c as u64 + 1;
                let seen = pairs.entry(pair).or_insert(0);
                let entry = contexts.entry(ctx).or_insert((0, 0));
                entry.0 += 1;
                if *seen == 0 {
                    entry.1 += 1;
                }
                *seen += 1;
            }
        }
        Ok(CharNgram {
            order,
            vocab,
            discount,
            contexts,
            pairs,
        })
    }

    pub fn order(&self) -> usize {
        self.order
    }

    /// The distribution of the next character after `history` (oldest first; only its last
    /// `order - 1` characters are used), written into `out` (length `vocab`).
    pub fn distribution(&self, history: &[usize], out: &mut [f64]) {
        let v = self.vocab as u64 + 1;
        out.fill(1.0 / self.vocab as f64);
        let longest = (self.order - 1).min(history.len());
        for k in 0..=longest {
            let ctx_tokens = &history[history.len() - k..];
            let ctx = key(ctx_tokens, self.vocab);
            let Some(&(total, distinct)) = self.contexts.get(&ctx) else {
                // Longer contexts than this were not seen either.
                break;
            };
            let total = total as f64;
            let backoff = self.discount * distinct as f64 / total;
            for (c, p) in out.iter_mut().enumerate() {
                let seen = self
                    .pairs
                    .get(&(ctx * v + c as u64 + 1))
                    .copied()
                    .unwrap_or(0);
                *p = (seen as f64 - self.discount).max(0.0) / total + backoff * *p;
            }
        }
    }
}

/// Bits per character and next-character top-1 of an n-gram on a stream: token t + 1 is
/// predicted from tokens 0..=t, for t in 0..predictions (the positions a language model run of
/// `predictions` tokens scores).
pub fn score(model: &CharNgram, stream: &[usize], predictions: usize) -> (f64, usize) {
    let mut dist = vec![0.0; model.vocab];
    let (mut bits, mut correct) = (0.0, 0);
    for t in 0..predictions.min(stream.len().saturating_sub(1)) {
        let from = (t + 1).saturating_sub(model.order - 1);
        model.distribution(&stream[from..=t], &mut dist);
        let target = stream[t + 1];
        bits -= dist[target].log2();
        let best =
            dist.iter().enumerate().fold(
                (0, f64::NEG_INFINITY),
                |b, (i, &p)| if p > b.1 { (i, p) } else { b },
            );
        correct += (best.0 == target) as usize;
    }
    (bits, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_distribution_sums_to_one() {
        let train: Vec<usize> = "abracadabra abracadabra"
            .bytes()
            .map(|b| (b % 7) as usize)
            .collect();
        let m = CharNgram::fit(&train, 7, 3, 0.75).unwrap();
        let mut d = vec![0.0; 7];
        for h in [&[][..], &[0], &[0, 1], &[6, 6], &train[..5]] {
            m.distribution(h, &mut d);
            let s: f64 = d.iter().sum();
            assert!((s - 1.0).abs() < 1e-12, "{h:?}: {s}");
            assert!(d.iter().all(|&p| p > 0.0));
        }
    }

    #[test]
    fn a_bigram_follows_the_hand_computed_formula() {
        // Train "aab" over vocab {a=0, b=1, c=2}: unigram counts a 2, b 1 (3 in all, 2 distinct);
        // after "a": a 1, b 1 (2 in all, 2 distinct).
        let m = CharNgram::fit(&[0, 0, 1], 3, 2, 0.5).unwrap();
        let uni = |c: f64| (c - 0.5f64).max(0.0) / 3.0 + 0.5 * 2.0 / 3.0 / 3.0;
        let (pa, pb, pc) = (uni(2.0), uni(1.0), uni(0.0));
        let mut d = vec![0.0; 3];
        m.distribution(&[0], &mut d);
        let bi = |c: f64, lower: f64| (c - 0.5f64).max(0.0) / 2.0 + 0.5 * 2.0 / 2.0 * lower;
        let want = [bi(1.0, pa), bi(1.0, pb), bi(0.0, pc)];
        for (g, w) in d.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{d:?} {want:?}");
        }
        // An unseen context falls back to the unigram.
        m.distribution(&[2], &mut d);
        assert!((d[0] - pa).abs() < 1e-15 && (d[2] - pc).abs() < 1e-15);
    }

    #[test]
    fn a_repeated_pattern_is_learned() {
        let train: Vec<usize> = (0..300).map(|i| i % 4).collect();
        let m = CharNgram::fit(&train, 4, 3, 0.75).unwrap();
        let (bits, correct) = score(&m, &train[..41], 40);
        assert_eq!(correct, 40);
        assert!(bits / 40.0 < 0.1, "{}", bits / 40.0);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(CharNgram::fit(&[0], 2, 0, 0.5).is_err());
        assert!(CharNgram::fit(&[0], 2, 11, 0.5).is_err());
        assert!(CharNgram::fit(&[0], 2, 3, 1.0).is_err());
        let e = CharNgram::fit(&[0, 5], 2, 3, 0.5)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("position 1"), "{e}");
    }
}
