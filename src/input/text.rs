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

/// Tokens of a text, character by character; a CRLF line end is one '\n'.
pub fn encode_text(text: &str) -> Vec<usize> {
    encode_counted(text, usize::MAX).0
}

/// What encoding a text changed: characters outside the vocabulary (read as ' ') and CRLF line
/// ends (read as '\n').
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Adjusted {
    pub outside: usize,
    /// The first character outside the vocabulary and its 1-based line.
    pub first_outside: Option<(char, usize)>,
    pub crlf: usize,
}

impl Adjusted {
    /// A sentence for the user naming what was changed, or None when nothing was.
    pub fn warning(&self, file: &str) -> Option<String> {
        let mut parts = Vec::new();
        if let Some((ch, line)) = self.first_outside {
            parts.push(format!(
                "{} characters outside the vocabulary ('\\n' and printable ASCII) read as ' ' (the first, {:?} U+{:04X}, on line {line})",
                self.outside, ch, ch as u32
            ));
        }
        if self.crlf > 0 {
            parts.push(format!("{} CRLF line ends read as '\\n'", self.crlf));
        }
        (!parts.is_empty()).then(|| format!("{file}: {}", parts.join("; ")))
    }
}

/// The first `limit` tokens of a text and what encoding changed in them.
pub fn encode_counted(text: &str, limit: usize) -> (Vec<usize>, Adjusted) {
    let mut out = Vec::new();
    let mut adj = Adjusted::default();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while out.len() < limit {
        let Some(ch) = chars.next() else { break };
        if ch == '\r' && chars.peek() == Some(&'\n') {
            adj.crlf += 1;
            continue;
        }
        let t = char_token(ch);
        if t == 1 && ch != ' ' {
            adj.outside += 1;
            adj.first_outside.get_or_insert((ch, line));
        }
        if ch == '\n' {
            line += 1;
        }
        out.push(t);
    }
    (out, adj)
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
/// target), and a warning when characters were read as something else; refuses a shorter
/// file.
pub fn read_tokens(
    path: &std::path::Path,
    n: usize,
) -> crate::Result<(Vec<usize>, Option<String>)> {
    let text = crate::error::read_text(path)?;
    let (toks, adjusted) = encode_counted(&text, n.saturating_add(1));
    if toks.len() < n + 1 {
        return Err(crate::Error::input(format!(
            "{}: has {} characters, the scenario asks for {} tokens (+1 target)",
            path.display(),
            toks.len(),
            n
        )));
    }
    Ok((toks, adjusted.warning(&path.display().to_string())))
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
    fn crlf_is_one_line_end_and_foreign_characters_are_counted() {
        let (t, adj) = encode_counted("a\r\nb\né\rc", usize::MAX);
        assert_eq!(t, encode_text("a\nb\n \rc".replace('\r', "\u{1}").as_str()));
        assert_eq!(adj.crlf, 1);
        assert_eq!(adj.outside, 2);
        assert_eq!(adj.first_outside, Some(('é', 3)));
        let w = adj.warning("t.txt").unwrap();
        assert!(
            w.starts_with("t.txt: 2 characters outside") && w.contains("1 CRLF"),
            "{w}"
        );
        assert_eq!(encode_counted("plain\ntext", 3).1.warning("t.txt"), None);
    }

    #[test]
    fn synthetic_stream_is_reproducible() {
        assert_eq!(synthetic_tokens(50, 7, 9), synthetic_tokens(50, 7, 9));
        assert_ne!(synthetic_tokens(50, 7, 9), synthetic_tokens(50, 7, 10));
    }
}
