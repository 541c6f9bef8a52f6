//! Input streams: shipped text (character level) and seeded synthetic tokens.

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
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(0..vocab)).collect()
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
