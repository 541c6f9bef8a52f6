//! Token streams: text read character by character, and seeded synthetic tokens.

use rand::{RngExt, SeedableRng};

/// Character vocabulary of the shipped text: '\n' then printable ASCII ' '..='~' (96 symbols).
pub const CHAR_VOCAB: usize = 96;

/// The token of a character; characters outside the vocabulary map to ' '.
pub fn char_token(ch: char) -> usize {
    match ch {
        '\n' => 0,
        ' '..='~' => ch as usize - ' ' as usize + 1,
        _ => 1,
    }
}

pub fn token_char(t: usize) -> char {
    match t {
        0 => '\n',
        1..=95 => char::from(b' ' + (t as u8 - 1)),
        _ => '?',
    }
}

/// Tokens of a text, character by character.
pub fn encode_text(text: &str) -> Vec<usize> {
    text.chars().map(char_token).collect()
}

/// `n` tokens drawn uniformly from `0..vocab` with a seed.
pub fn synthetic_tokens(n: usize, vocab: usize, seed: u64) -> Vec<usize> {
    SyntheticTokens::new(vocab, seed).take(n).collect()
}

/// The endless seeded token stream of [`synthetic_tokens`], drawn one token at a time so that
/// nothing grows with the run's length.
pub struct SyntheticTokens {
    rng: rand::rngs::Xoshiro256PlusPlus,
    vocab: usize,
}

impl SyntheticTokens {
    pub fn new(vocab: usize, seed: u64) -> SyntheticTokens {
        SyntheticTokens {
            rng: rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed),
            vocab,
        }
    }
}

impl Iterator for SyntheticTokens {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        Some(self.rng.random_range(0..self.vocab))
    }
}

/// The first `n` characters of a text file as tokens, plus the one after them (the last
/// target); refuses a shorter file.
pub fn read_tokens(path: &std::path::Path, n: usize) -> crate::Result<Vec<usize>> {
    let text = crate::error::read_text(path)?;
    // Only the tokens the run reads are made (8 bytes each), not a token per character of the file.
    let toks: Vec<usize> = text.chars().map(char_token).take(n + 1).collect();
    if toks.len() < n + 1 {
        return Err(crate::Error::input(format!(
            "{}: has {} characters, the scenario asks for {} tokens (+1 target)",
            path.display(),
            toks.len(),
            n
        )));
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_round_trip_through_tokens() {
        for ch in "Hello, world!\n~ ".chars() {
            assert_eq!(token_char(char_token(ch)), ch);
        }
        assert!(encode_text("abc").iter().all(|&t| t < CHAR_VOCAB));
    }

    #[test]
    fn synthetic_stream_is_reproducible() {
        assert_eq!(synthetic_tokens(50, 7, 9), synthetic_tokens(50, 7, 9));
        assert_ne!(synthetic_tokens(50, 7, 9), synthetic_tokens(50, 7, 10));
    }
}
