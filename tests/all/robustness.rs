//! Fuzzing on the stable toolchain: every reader the cargo-fuzz targets in `fuzz/` drive (model,
//! scenario and hardware RON, `ledger.json`, safetensors, `.pth`, command-line values), and the
//! tensor input's `.npy` and safetensors readers, gets mutated and structure-aware inputs, and must give `Ok` or an input error: never a panic, an
//! abort or a hang. CI runs a bounded, seeded pass (`*_never_panic*` below); `fuzz_long` is the
//! long run of docs/fuzzing.md:
//!
//! ```text
//! cargo test --release --test all fuzz_long -- --ignored --nocapture
//! ```
//!
//! Every execution's input follows from (reader, base seed, execution index) alone, so any one
//! can be replayed (`PICOJOULE_FUZZ_ONLY`, `PICOJOULE_FUZZ_START`, see [`fuzz_long`]).
//!
//! Half the inputs are byte mutations of a seed file (flip, insert, delete, duplicate,
//! truncate, dictionary splice). The other half are built from `arbitrary::Unstructured` over
//! random bytes by a generator that knows the format: RON token edits drawing identifiers and
//! awkward numbers from a dictionary, JSON value-tree edits (ledger files, safetensors headers
//! with a consistent length prefix), ZIP archives rebuilt from a checkpoint's entries with
//! edited pickle operands, storage sizes, archive names of every length and optional ZIP64
//! end records, and command-line values assembled from format-name fragments.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use picojoule::error::parse_ron;
use picojoule::hardware::Hardware;
use picojoule::models::ModelDesc;
use picojoule::scenario::Scenario;
use rand::{RngExt, SeedableRng};

use super::util::*;

type Rng = rand::rngs::Xoshiro256PlusPlus;

/// Base seed of every pass; each execution's generator is derived from it and its index.
const BASE_SEED: u64 = 0xf022;

// ------------------------------------------------------------------ byte mutations

/// Tokens spliced in by the byte mutator and the RON and value generators.
const SPLICE: &[&str] = &[
    "(", ")", "[", "]", "{", "}", ",", ":", "\"", "0", "-1", "e", "E", ".", "x", "\n", "Some(",
    "None", "true", "//", "/*", "r#\"", "'", "\\u{0}", "1e999", "NaN", "inf",
];

/// Byte-level mutations of `input`: flip, insert, delete, duplicate a span, truncate, splice.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..5) {
        if v.is_empty() {
            v.push(b'(');
            continue;
        }
        let i = rng.random_range(0..v.len());
        match rng.random_range(0..7) {
            0 => v[i] ^= 1 << rng.random_range(0..8),
            1 => v.insert(i, b"()[],:\"0-9eE.xX\n"[rng.random_range(0..16)]),
            2 => {
                v.remove(i);
            }
            3 => {
                let j = (i + rng.random_range(1..16)).min(v.len());
                let span = v[i..j].to_vec();
                v.splice(i..i, span);
            }
            4 => {
                let t = SPLICE[rng.random_range(0..SPLICE.len())].as_bytes();
                v.splice(i..i, t.iter().copied());
            }
            5 => v[i] = [0, 0xff, 0x7f, 0x80][rng.random_range(0..4)],
            _ => v.truncate(i),
        }
    }
    v
}

// ------------------------------------------------------------- structured: numbers

/// Numbers that sit on edges: zero, signs, integer widths, float extremes, specials.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "8",
    "64",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "99999999999999999999999999",
    "0.5",
    "-0.5",
    "1e-320",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e999",
    "-1e999",
    "NaN",
    "inf",
    "-inf",
    "0x7f",
    "1_000",
    "1.",
    ".5",
];

fn number(u: &mut Unstructured) -> arbitrary::Result<String> {
    Ok(if u.ratio(3u8, 4)? {
        u.choose(NUMBERS)?.to_string()
    } else {
        match u.int_in_range(0..=2u8)? {
            0 => u.arbitrary::<i64>()?.to_string(),
            1 => u.arbitrary::<u64>()?.to_string(),
            _ => format!("{:e}", u.arbitrary::<f64>()?),
        }
    })
}

fn string(u: &mut Unstructured) -> arbitrary::Result<String> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => String::new(),
        1 => "../../../../etc/passwd".into(),
        2 => "x".repeat(u.int_in_range(1..=4000usize)?),
        3 => "\u{0}\u{feff}é\u{10ffff}".into(),
        4 => u
            .choose(&[
                "fp8-e4m3",
                "int4",
                "lmul",
                "horowitz45",
                "spikegpt-tiny.ron",
            ])?
            .to_string(),
        _ => u.arbitrary::<String>()?,
    })
}

// ---------------------------------------------------------------- structured: RON

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    Ident,
    Number,
    Str,
    Punct,
    Space,
}

/// Split RON text into tokens (identifiers, numbers, strings, punctuation, blanks).
fn tokens(text: &str) -> Vec<(Tok, String)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let start = i;
        let kind = if c[i].is_alphabetic() || c[i] == '_' {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            Tok::Ident
        } else if c[i].is_ascii_digit()
            || (c[i] == '-' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            i += 1;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '_') {
                i += 1;
            }
            Tok::Number
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(c.len());
            Tok::Str
        } else if c[i].is_whitespace() {
            while i < c.len() && c[i].is_whitespace() {
                i += 1;
            }
            Tok::Space
        } else if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            Tok::Space
        } else {
            i += 1;
            Tok::Punct
        };
        out.push((kind, c[start..i].iter().collect()));
    }
    out
}

/// Identifiers of every seed of a reader: field names, struct names, enum variants.
fn identifiers(seeds: &[Vec<u8>]) -> Vec<String> {
    let mut ids: Vec<String> = seeds
        .iter()
        .flat_map(|s| tokens(&String::from_utf8_lossy(s)))
        .filter(|(k, _)| *k == Tok::Ident)
        .map(|(_, t)| t)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// RON token edits: numbers and strings replaced by awkward ones, identifiers swapped for
/// others of the format, tokens and bracketed groups deleted or duplicated.
fn ron_structured(u: &mut Unstructured, seed: &[u8], ids: &[String]) -> arbitrary::Result<Vec<u8>> {
    let mut t = tokens(&String::from_utf8_lossy(seed));
    let edits = u.int_in_range(1..=6u8)?;
    for _ in 0..edits {
        if t.is_empty() {
            break;
        }
        let i = u.choose_index(t.len())?;
        match u.int_in_range(0..=7u8)? {
            0 | 1 => {
                // An awkward number where a number was (or anywhere, now and then).
                let j = (i..t.len())
                    .chain(0..i)
                    .find(|&j| t[j].0 == Tok::Number)
                    .unwrap_or(i);
                t[j] = (Tok::Number, number(u)?);
            }
            2 => {
                let j = (i..t.len())
                    .chain(0..i)
                    .find(|&j| t[j].0 == Tok::Ident)
                    .unwrap_or(i);
                if !ids.is_empty() {
                    t[j] = (Tok::Ident, u.choose(ids)?.clone());
                }
            }
            3 => {
                let j = (i..t.len())
                    .chain(0..i)
                    .find(|&j| t[j].0 == Tok::Str)
                    .unwrap_or(i);
                t[j] = (Tok::Str, format!("{:?}", string(u)?));
            }
            4 => {
                t.remove(i);
            }
            5 => {
                // Duplicate a run of tokens (a field, an element, a group).
                let n = u.int_in_range(1..=40usize)?.min(t.len() - i);
                let span: Vec<_> = t[i..i + n].to_vec();
                t.splice(i..i, span);
            }
            6 => {
                let s = u.choose(SPLICE)?;
                t.insert(i, (Tok::Punct, s.to_string()));
            }
            _ => {
                // Wrap a value in Some( ) or drop an element between commas.
                if u.arbitrary()? {
                    t.insert(i, (Tok::Punct, "Some(".into()));
                    let j = (i + 2).min(t.len());
                    t.insert(j, (Tok::Punct, ")".into()));
                } else if let Some(j) = (i..t.len()).find(|&j| t[j].1 == ",") {
                    t.drain(i..=j);
                }
            }
        }
    }
    Ok(t.into_iter()
        .map(|(_, s)| s)
        .collect::<String>()
        .into_bytes())
}

// ---------------------------------------------------------------- structured: JSON

fn json_value(u: &mut Unstructured, depth: u8) -> arbitrary::Result<serde_json::Value> {
    use serde_json::Value;
    Ok(match u.int_in_range(0..=7u8)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 | 3 => serde_json::from_str(&number(u)?).unwrap_or(Value::from(u.arbitrary::<i64>()?)),
        4 => Value::String(string(u)?),
        5 if depth < 3 => {
            let n = u.int_in_range(0..=4usize)?;
            Value::Array(
                (0..n)
                    .map(|_| json_value(u, depth + 1))
                    .collect::<arbitrary::Result<_>>()?,
            )
        }
        6 if depth < 3 => {
            let n = u.int_in_range(0..=3usize)?;
            let mut m = serde_json::Map::new();
            for _ in 0..n {
                m.insert(string(u)?, json_value(u, depth + 1)?);
            }
            Value::Object(m)
        }
        _ => Value::from(u.arbitrary::<f64>()?),
    })
}

/// A node of `v` picked by walking down from the root.
fn json_pick<'a>(
    u: &mut Unstructured,
    v: &'a mut serde_json::Value,
) -> arbitrary::Result<&'a mut serde_json::Value> {
    use serde_json::Value;
    let descend = match v {
        Value::Array(a) if !a.is_empty() => u.ratio(7u8, 8)?,
        Value::Object(m) if !m.is_empty() => u.ratio(7u8, 8)?,
        _ => false,
    };
    if !descend {
        return Ok(v);
    }
    match v {
        Value::Array(a) => {
            let i = u.choose_index(a.len())?;
            json_pick(u, &mut a[i])
        }
        Value::Object(m) => {
            let i = u.choose_index(m.len())?;
            let (_, child) = m.iter_mut().nth(i).expect("index in range");
            json_pick(u, child)
        }
        _ => Ok(v),
    }
}

/// JSON value-tree edits: a node replaced (awkward numbers, strings, containers), an object
/// key removed or renamed, an array element dropped or duplicated.
fn json_edit(u: &mut Unstructured, v: &mut serde_json::Value) -> arbitrary::Result<()> {
    use serde_json::Value;
    for _ in 0..u.int_in_range(1..=4u8)? {
        let node = json_pick(u, v)?;
        match (u.int_in_range(0..=3u8)?, node) {
            (0, Value::Object(m)) if !m.is_empty() => {
                let k = m.keys().nth(u.choose_index(m.len())?).expect("key").clone();
                let val = m.remove(&k).expect("present");
                if u.arbitrary()? {
                    m.insert(string(u)?, val);
                }
            }
            (1, Value::Array(a)) if !a.is_empty() => {
                let i = u.choose_index(a.len())?;
                if u.arbitrary()? {
                    a.remove(i);
                } else {
                    let x = a[i].clone();
                    a.insert(i, x);
                }
            }
            // Mostly keep the kind of a leaf, so that the file still parses and the
            // awkward value reaches what the reader does with it.
            (_, node @ Value::Number(_)) if u.ratio(3u8, 4)? => {
                *node =
                    serde_json::from_str(&number(u)?).unwrap_or(Value::from(u.arbitrary::<u64>()?))
            }
            (_, node @ Value::String(_)) if u.ratio(3u8, 4)? => *node = Value::String(string(u)?),
            (_, node) => *node = json_value(u, 0)?,
        }
    }
    Ok(())
}

fn json_structured(u: &mut Unstructured, seed: &[u8]) -> arbitrary::Result<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(seed).unwrap_or_default();
    json_edit(u, &mut v)?;
    Ok(serde_json::to_vec(&v).expect("values serialise"))
}

// --------------------------------------------------------- structured: safetensors

/// A safetensors file with an edited header and a length prefix that matches it (or not),
/// and a data section cut or padded.
fn safetensors_structured(u: &mut Unstructured, seed: &[u8]) -> arbitrary::Result<Vec<u8>> {
    let n = u64::from_le_bytes(seed[..8].try_into().expect("8 bytes")) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&seed[8..8 + n]).expect("header");
    if u.ratio(2u8, 3)? {
        json_edit(u, &mut header)?;
    }
    if u.ratio(1u8, 3)?
        && let Some(m) = header.as_object_mut()
        && let Some(t) = m
            .iter_mut()
            .find(|(k, _)| *k != "__metadata__")
            .and_then(|(_, t)| t.as_object_mut())
    {
        // A dtype or offsets the data does not back.
        let dtype = *u.choose(&[
            "F32", "BF16", "F16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "F4", "x",
        ])?;
        t.insert("dtype".into(), dtype.into());
    }
    let h = serde_json::to_vec(&header).expect("serialises");
    let mut out = Vec::new();
    let prefix = if u.ratio(7u8, 8)? {
        h.len() as u64
    } else {
        u.arbitrary()?
    };
    out.extend_from_slice(&prefix.to_le_bytes());
    out.extend_from_slice(&h);
    let data = &seed[8 + n..];
    let keep = u.int_in_range(0..=data.len())?;
    out.extend_from_slice(if u.ratio(3u8, 4)? {
        data
    } else {
        &data[..keep]
    });
    if u.ratio(1u8, 4)? {
        out.extend(std::iter::repeat_n(0u8, u.int_in_range(1..=64usize)?));
    }
    Ok(out)
}

// ------------------------------------------------------------------ structured: .pth

/// The entries (name, bytes) of a stored (uncompressed) ZIP, read from its local headers.
fn zip_entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while zip.get(i..i + 4) == Some(b"PK\x03\x04") {
        let le16 = |k: usize| u16::from_le_bytes([zip[i + k], zip[i + k + 1]]) as usize;
        let size = u32::from_le_bytes(zip[i + 18..i + 22].try_into().unwrap()) as usize;
        let (name_len, extra_len) = (le16(26), le16(28));
        let name = String::from_utf8_lossy(&zip[i + 30..i + 30 + name_len]).into_owned();
        let data_at = i + 30 + name_len + extra_len;
        out.push((name, zip[data_at..data_at + size].to_vec()));
        i = data_at + size;
    }
    out
}

/// A stored ZIP of `entries`, as Python's zipfile writes it, or with `torch.save`'s ZIP64 end
/// records between the central directory and the end record.
fn zip_bytes(entries: &[(String, Vec<u8>)], zip64: bool, comment: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let crc = crc32(data);
        let at = out.len() as u32;
        let mut fixed = Vec::new();
        fixed.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        fixed.extend_from_slice(&crc.to_le_bytes());
        fixed.extend_from_slice(&(data.len() as u32).to_le_bytes());
        fixed.extend_from_slice(&(data.len() as u32).to_le_bytes());
        fixed.extend_from_slice(&(name.len() as u16).to_le_bytes());
        fixed.extend_from_slice(&[0, 0]);
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&fixed);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02\x14\x03");
        central.extend_from_slice(&fixed);
        // Comment length, disk, internal and external attributes.
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&at.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_at, n) = (out.len() as u64, entries.len() as u64);
    out.extend_from_slice(&central);
    if zip64 {
        let eocd64_at = out.len() as u64;
        out.extend_from_slice(b"PK\x06\x06");
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&[0x1e, 3, 0x2d, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [n, n, central.len() as u64, cd_at] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(b"PK\x06\x07\0\0\0\0");
        out.extend_from_slice(&eocd64_at.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&(cd_at as u32).to_le_bytes());
    out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    out.extend_from_slice(comment);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Offsets of the operands of pickle integer opcodes (BININT1 `K`, BININT2 `M`, BININT `J`)
/// and of string lengths (BINUNICODE `X`, SHORT_BINSTRING `U`), found by a loose scan.
fn pickle_operands(p: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, &op) in p.iter().enumerate() {
        let width = match op {
            b'K' | b'U' => 1,
            b'M' => 2,
            b'J' | b'X' => 4,
            _ => continue,
        };
        if i + 1 + width <= p.len() {
            out.push((i + 1, width));
        }
    }
    out
}

/// A checkpoint rebuilt from a seed's entries: pickle operands edited (shapes, strides,
/// offsets, storage sizes, string lengths), storages cut, grown, dropped or duplicated,
/// entries reordered, the archive renamed to a root of any length, ZIP64 end records added.
fn pth_structured(u: &mut Unstructured, seed: &[u8]) -> arbitrary::Result<Vec<u8>> {
    let mut entries = zip_entries(seed);
    if entries.is_empty() {
        return Ok(seed.to_vec());
    }
    for _ in 0..u.int_in_range(0..=4u8)? {
        let i = u.choose_index(entries.len())?;
        let is_pickle = entries[i].0.ends_with("data.pkl");
        let data = &mut entries[i].1;
        match u.int_in_range(0..=5u8)? {
            0 | 1 if is_pickle => {
                let ops = pickle_operands(data);
                if !ops.is_empty() {
                    let (at, width) = ops[u.choose_index(ops.len())?];
                    let v: u32 = if u.arbitrary()? {
                        *u.choose(&[
                            0,
                            1,
                            2,
                            7,
                            8,
                            9,
                            0x7f,
                            0xff,
                            0xffff,
                            0x7fff_ffff,
                            0xffff_ffff,
                        ])?
                    } else {
                        u.arbitrary()?
                    };
                    data[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
                }
            }
            2 => {
                let keep = u.int_in_range(0..=data.len())?;
                data.truncate(keep);
            }
            3 => data.extend(std::iter::repeat_n(0x41, u.int_in_range(1..=64usize)?)),
            4 => {
                if u.arbitrary()? {
                    entries.remove(i);
                } else {
                    let e = entries[i].clone();
                    entries.push(e);
                }
            }
            _ => {
                let j = u.choose_index(entries.len())?;
                entries.swap(i, j);
            }
        }
    }
    if u.ratio(1u8, 2)? {
        // A new archive name: every entry's root, of a length from 0 to 40.
        let len = u.int_in_range(0..=40usize)?;
        let root: String = std::iter::repeat_n('r', len).collect();
        for (name, _) in &mut entries {
            let rest = name
                .split_once('/')
                .map_or(name.as_str(), |(_, r)| r)
                .to_string();
            *name = if root.is_empty() {
                rest
            } else {
                format!("{root}/{rest}")
            };
        }
    }
    let comment = if u.ratio(1u8, 8)? {
        b"PK\x05\x06 comment".to_vec()
    } else {
        Vec::new()
    };
    Ok(zip_bytes(&entries, u.arbitrary()?, &comment))
}

// ----------------------------------------------------------------- structured: values

const VALUE_PARTS: &[&str] = &[
    "fp",
    "int",
    "uint",
    "bf",
    "e",
    "m",
    "lmul",
    "bf16",
    "fp16",
    "fp32",
    "fp8",
    "fp8-e4m3",
    "e5m2",
    "e4m3",
    "-",
    ":",
    ".",
    "+",
    "K",
    "M",
    "G",
    "T",
    "P",
    "E",
    "i",
    "B",
    "k",
    "b",
    "0",
    "1",
    "2",
    "3",
    "4",
    "8",
    "9",
    "12",
    "16",
    "64",
    "1e3",
    "1e400",
    "18446744073709551616",
    "nan",
    "inf",
    " ",
    "_",
    "x",
    "ß",
    "\u{0}",
];

fn values_structured(u: &mut Unstructured, _seed: &[u8]) -> arbitrary::Result<Vec<u8>> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(1..=7u8)? {
        if u.ratio(1u8, 10)? {
            s.push_str(&number(u)?);
        } else {
            s.push_str(u.choose(VALUE_PARTS)?);
        }
    }
    Ok(s.into_bytes())
}

// ---------------------------------------------------------------------- the readers

/// One reader under fuzz: seed inputs, a structured generator, and the call, which says
/// whether the input was accepted.
struct Reader {
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    structured: Box<Generator>,
    run: Box<Call>,
}

/// Reads an input; true if it was accepted.
type Call = dyn Fn(&[u8]) -> bool + Send + Sync;

/// Builds a structured input from `arbitrary` bytes and a seed.
type Generator = dyn Fn(&mut Unstructured, &[u8]) -> arbitrary::Result<Vec<u8>> + Send + Sync;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn files(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo_path(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn ron_reader(
    name: &'static str,
    seeds: Vec<Vec<u8>>,
    run: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> Reader {
    let ids = identifiers(&seeds);
    Reader {
        name,
        seeds,
        structured: Box::new(move |u, s| ron_structured(u, s, &ids)),
        run: Box::new(move |b| run(&text(b))),
    }
}

fn model_reader() -> Reader {
    ron_reader("model RON", files("models", "ron"), |t| {
        parse_ron::<ModelDesc>(Path::new("m.ron"), t).is_ok_and(|d| d.validate().is_ok())
    })
}

fn scenario_reader() -> Reader {
    ron_reader("scenario RON", files("scenarios", "ron"), |t| {
        parse_ron::<Scenario>(Path::new("s.ron"), t).is_ok()
    })
}

fn hardware_reader() -> Reader {
    ron_reader("hardware RON", files("hardware", "ron"), |t| {
        Hardware::from_text(Path::new("h.ron"), t, "fuzz".into()).is_ok()
    })
}

/// `ledger.json` as `run --out` writes it (compacted), from a two-token run of a trained
/// transformer in fp32 (with accuracy) and L-Mul (with fidelity), read and priced as
/// `picojoule price` does.
fn ledger_reader() -> Reader {
    let dir = temp_dir("fuzz-ledger-seed");
    let r = |p: &str| repo_path(p).display().to_string();
    let scenario = write(
        &dir,
        "s.ron",
        &format!(
            "Scenario(name: \"fuzz-seed\", seed: 1, hardware: \"horowitz45\", input: Text({:?}), tokens: 2, baseline: Some(\"a\"), runs: [(model: {m:?}, label: Some(\"a\")), (model: {m:?}, label: Some(\"b\"), arith: (mode: \"lmul-4\", scope: Projections))])",
            r("data/text/sotu-test.txt"),
            m = r("models/transformer-sotu-softmax.ron"),
        ),
    );
    let sc = picojoule::scenario::LoadedScenario::load(&scenario).unwrap();
    let outputs = picojoule::exec::execute(&sc, &Default::default()).unwrap();
    let pretty = picojoule::exec::saved::to_json(&sc, &outputs, &[]);
    let value: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    let json = serde_json::to_vec(&value).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let hw = Hardware::load("horowitz45").unwrap();
    Reader {
        name: "ledger JSON",
        seeds: vec![json],
        structured: Box::new(json_structured),
        run: Box::new(move |b| {
            let Ok(saved) = picojoule::exec::saved::from_json(Path::new("ledger.json"), &text(b))
            else {
                return false;
            };
            for o in &saved.runs {
                let _ = picojoule::hardware::price(&o.ledger, &hw.model);
            }
            let rep = picojoule::report::build(&saved.scenario, &hw, &saved.runs, saved.references);
            let _ = picojoule::report::table::render(&rep, picojoule::report::Format::Json);
            true
        }),
    }
}

fn safetensors_reader() -> Reader {
    let dir = temp_dir("fuzz-safetensors-seed");
    let mut seeds = Vec::new();
    let mut store = picojoule::weights::TensorStore::new("x");
    store.insert("a.weight", vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    store.insert("b", vec![3], vec![0.5, -0.5, 0.25]);
    store.insert("c", vec![1, 1, 2], vec![f32::MIN_POSITIVE, -0.0]);
    let p = dir.join("w.safetensors");
    picojoule::weights::save_safetensors(&store, &p).unwrap();
    seeds.push(std::fs::read(&p).unwrap());
    // A BF16 file with metadata.
    let header = br#"{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}"#;
    let mut bf = (header.len() as u64).to_le_bytes().to_vec();
    bf.extend_from_slice(header);
    bf.extend_from_slice(&[0x80, 0x3f, 0, 0xc0, 0x49, 0x40, 0x80, 0x7f]);
    seeds.push(bf);
    let _ = std::fs::remove_dir_all(&dir);
    Reader {
        name: "safetensors",
        seeds,
        structured: Box::new(safetensors_structured),
        run: Box::new(|b| picojoule::weights::safetensors_from_bytes("fuzz", b).is_ok()),
    }
}

fn pth_reader() -> Reader {
    let seeds = [
        "spikegpt-tiny.pt",
        "spikegpt-bad-shape.pt",
        "torch-len13-x.pth",
        "torch-len21-xxxxxxxxx.pth",
    ]
    .iter()
    .map(|f| std::fs::read(repo_path(&format!("tests/fixtures/{f}"))).unwrap())
    .collect();
    let dir = temp_dir("fuzz-pth");
    Reader {
        name: ".pth",
        seeds,
        structured: Box::new(pth_structured),
        run: Box::new(move |b| {
            // One file per thread: the reader opens checkpoints by path.
            thread_local!(static N: u64 = NEXT_FILE.fetch_add(1, Ordering::Relaxed));
            let path = dir.join(format!("f{}.pth", N.with(|n| *n)));
            std::fs::write(&path, b).unwrap();
            picojoule::weights::load_pth(&path).is_ok()
        }),
    }
}

static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// A NIR file with a few of its bytes replaced and maybe cut short: HDF5 object headers,
/// B-trees, heaps and gzip chunks all sit at fixed offsets, so most edits reach the decoder.
fn nir_structured(u: &mut Unstructured, seed: &[u8]) -> arbitrary::Result<Vec<u8>> {
    let mut b = seed.to_vec();
    for _ in 0..u.int_in_range(1..=8)? {
        let i = u.choose_index(b.len())?;
        b[i] = u.arbitrary()?;
    }
    if u.ratio(1, 4)? {
        let keep = u.int_in_range(0..=b.len())?;
        b.truncate(keep);
    }
    Ok(b)
}

fn nir_reader() -> Reader {
    let seeds = [
        "snntorch_mlp",
        "norse_mlp",
        "snntorch_conv",
        "snntorch_rleaky",
    ]
    .iter()
    .map(|f| std::fs::read(repo_path(&format!("tests/fixtures/nir/{f}.nir"))).unwrap())
    .collect();
    let dir = temp_dir("fuzz-nir");
    Reader {
        name: ".nir",
        seeds,
        structured: Box::new(nir_structured),
        run: Box::new(move |b| {
            use picojoule::models::nir::{Convention, Nir, read_nir};
            thread_local!(static N: u64 = NEXT_FILE.fetch_add(1, Ordering::Relaxed));
            let path = dir.join(format!("f{}.nir", N.with(|n| *n)));
            std::fs::write(&path, b).unwrap();
            match read_nir(&path, "fuzz", Convention::Snntorch, 1e-4) {
                Ok((cfg, store)) => Nir::new(cfg, &store).is_ok(),
                Err(_) => false,
            }
        }),
    }
}

/// `.npy` files rebuilt with a type, shape and data length drawn from awkward values.
fn npy_structured(u: &mut Unstructured, _seed: &[u8]) -> arbitrary::Result<Vec<u8>> {
    const DESCR: &[&str] = &[
        "<f4", "|b1", "|u1", "|i1", "<i8", "<f2", ">f8", "<u2", "<c8", "f4", "<V2", "'",
    ];
    let descr = DESCR[u.choose_index(DESCR.len())?];
    let rank = u.int_in_range(0..=4)?;
    let shape: Vec<usize> = (0..rank)
        .map(|_| {
            Ok(match u.int_in_range(0..=5)? {
                0 => 0,
                1 => usize::MAX / u.int_in_range(1..=8)?,
                _ => u.int_in_range(1..=4)?,
            })
        })
        .collect::<arbitrary::Result<_>>()?;
    let len = u.int_in_range(0..=200)?;
    let data: Vec<u8> = (0..len)
        .map(|_| u.arbitrary())
        .collect::<arbitrary::Result<_>>()?;
    let mut out = picojoule::input::tensors::npy_bytes(descr, &shape, &data);
    if u.ratio(1u8, 4)? {
        let cut = u.int_in_range(0..=out.len())?;
        out.truncate(cut);
    }
    Ok(out)
}

/// The tensor input's readers: `.npy` and safetensors headers, then the samples and labels.
fn tensor_input_reader() -> Reader {
    use picojoule::input::tensors::{Opened, TensorSpec, npy_bytes};
    let x: Vec<u8> = [
        0.5f32, -1.0, 0.0, 1.0, 2.0, 3.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0,
    ]
    .iter()
    .flat_map(|v| v.to_le_bytes())
    .collect();
    let header = br#"{"inputs":{"dtype":"F32","shape":[2,2,3],"data_offsets":[0,48]},"labels":{"dtype":"I64","shape":[2],"data_offsets":[48,64]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header);
    st.extend_from_slice(&x);
    st.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let seeds = vec![npy_bytes("<f4", &[2, 2, 3], &x), st];
    let dir = temp_dir("fuzz-tensors");
    Reader {
        name: "tensor input",
        seeds,
        structured: Box::new(|u, seed| {
            if seed.first() == Some(&0x93) {
                npy_structured(u, seed)
            } else {
                safetensors_structured(u, seed)
            }
        }),
        run: Box::new(move |b| {
            thread_local!(static N: u64 = NEXT_FILE.fetch_add(1, Ordering::Relaxed));
            let ext = if b.first() == Some(&0x93) {
                "npy"
            } else {
                "safetensors"
            };
            let path = dir.join(format!("t{}.{ext}", N.with(|n| *n)));
            std::fs::write(&path, b).unwrap();
            let spec = TensorSpec {
                file: path.display().to_string(),
                tensor: None,
                labels: None,
                offset: 0,
                samples: None,
            };
            Opened::open(&spec, |p: &str| PathBuf::from(p))
                .and_then(|o| o.read(o.available.min(4), 4))
                .is_ok()
        }),
    }
}

fn values_reader() -> Reader {
    let seeds = [
        "512M",
        "fp8-e4m3",
        "lmul-3",
        "e4m3",
        "int12",
        "1.5GiB",
        "lmul:bf16",
        "bf16",
        "fp32",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    Reader {
        name: "CLI values",
        seeds,
        structured: Box::new(values_structured),
        run: Box::new(|b| {
            let t = text(b);
            let a = picojoule::resources::parse_size(&t).is_ok();
            let f = t.parse::<picojoule::ledger::Fmt>().is_ok();
            let g = picojoule::numerics::FloatFormat::parse(&t).is_ok();
            let spec = picojoule::engine::arith::ArithSpec {
                mode: t.clone(),
                acc: Some(t.clone()),
                scope: Default::default(),
                policy: None,
                fold_weight_offset: None,
            };
            spec.build().is_ok() || a || f || g
        }),
    }
}

// ------------------------------------------------------------------------ the loop

/// The input of execution `index` of `reader` under `base`: a byte mutation of a seed, or a
/// structured input from `arbitrary` over random bytes.
fn input(reader: &Reader, base: u64, index: u64) -> Vec<u8> {
    let mut rng = Rng::seed_from_u64(base ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let seed = &reader.seeds[rng.random_range(0..reader.seeds.len())];
    if rng.random_bool(0.5) {
        return mutate(seed, &mut rng);
    }
    let mut bytes = vec![0u8; rng.random_range(8..1024)];
    rng.fill(&mut bytes[..]);
    let mut u = Unstructured::new(&bytes);
    (reader.structured)(&mut u, seed).unwrap_or_else(|_| seed.clone())
}

/// What a pass over one reader found.
#[derive(Default)]
struct Stats {
    executions: u64,
    accepted: u64,
    panics: Vec<(u64, String)>,
    slowest: Duration,
    slowest_index: u64,
    elapsed: Duration,
}

/// The reader and execution running now, and since when (for the hang watchdog).
static CURRENT: Mutex<Vec<(String, u64, Option<Instant>)>> = Mutex::new(Vec::new());

/// Run executions `start..end` of `reader`; a panic is recorded with its input.
fn fuzz(reader: &Reader, base: u64, start: u64, end: u64, slot: usize) -> Stats {
    let mut stats = Stats::default();
    let t0 = Instant::now();
    for index in start..end {
        let data = input(reader, base, index);
        let t = Instant::now();
        if let Some(s) = CURRENT.lock().unwrap().get_mut(slot) {
            *s = (reader.name.to_string(), index, Some(t));
        }
        let r = catch_unwind(AssertUnwindSafe(|| (reader.run)(&data)));
        let dt = t.elapsed();
        if dt > stats.slowest {
            (stats.slowest, stats.slowest_index) = (dt, index);
        }
        stats.executions += 1;
        match r {
            Ok(ok) => stats.accepted += ok as u64,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                stats.panics.push((
                    index,
                    format!("{msg}; input {:?}", text(&data[..data.len().min(400)])),
                ));
            }
        }
    }
    stats.elapsed = t0.elapsed();
    stats
}

fn check(reader: Reader, executions: u64) {
    let s = fuzz(&reader, BASE_SEED, 0, executions, usize::MAX);
    assert!(
        s.panics.is_empty(),
        "{}: panic on execution {}: {}",
        reader.name,
        s.panics[0].0,
        s.panics[0].1
    );
    // Structured inputs must get past the parsers now and then, or they test nothing.
    assert!(
        s.accepted > 0,
        "{}: no input of {executions} accepted",
        reader.name
    );
}

// CI: a bounded pass per reader (seconds in the debug test profile).

#[test]
fn model_ron_never_panics() {
    check(model_reader(), 5000);
}

#[test]
fn scenario_ron_never_panics() {
    check(scenario_reader(), 5000);
}

#[test]
fn hardware_ron_never_panics() {
    check(hardware_reader(), 3000);
}

#[test]
fn ledger_json_never_panics_and_prices() {
    check(ledger_reader(), 1000);
}

#[test]
fn safetensors_never_panics() {
    check(safetensors_reader(), 20000);
}

#[test]
fn tensor_input_never_panics() {
    check(tensor_input_reader(), 5000);
}

#[test]
fn pth_never_panics() {
    check(pth_reader(), 1500);
}

#[test]
fn nir_never_panics() {
    check(nir_reader(), 600);
}

#[test]
fn cli_values_never_panic() {
    check(values_reader(), 20000);
}

/// The long run of docs/fuzzing.md: `PICOJOULE_FUZZ_EXECS` executions per reader (default
/// 1,000,000) on `PICOJOULE_FUZZ_THREADS` threads (default 2), from execution
/// `PICOJOULE_FUZZ_START` (default 0), of the readers whose name contains
/// `PICOJOULE_FUZZ_ONLY` (default all), seed `PICOJOULE_FUZZ_SEED` (default the CI one).
/// An execution that takes over `PICOJOULE_FUZZ_HANG_SECS` (default 60) s aborts the run
/// naming it. Prints one line per reader; fails if anything panicked.
#[test]
#[ignore = "long: cargo test --release --test all fuzz_long -- --ignored --nocapture"]
fn fuzz_long() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let execs = env("PICOJOULE_FUZZ_EXECS", 1_000_000);
    let threads = env("PICOJOULE_FUZZ_THREADS", 2).max(1) as usize;
    let start = env("PICOJOULE_FUZZ_START", 0);
    let base = env("PICOJOULE_FUZZ_SEED", BASE_SEED);
    let hang = Duration::from_secs(env("PICOJOULE_FUZZ_HANG_SECS", 60));
    let only = std::env::var("PICOJOULE_FUZZ_ONLY").unwrap_or_default();
    // Panics are counted, not printed: caught ones included (load_pth catches the reader's).
    static CAUGHT: AtomicUsize = AtomicUsize::new(0);
    static FIRST: Mutex<Option<String>> = Mutex::new(None);
    std::panic::set_hook(Box::new(|info| {
        CAUGHT.fetch_add(1, Ordering::Relaxed);
        FIRST
            .lock()
            .unwrap()
            .get_or_insert_with(|| info.to_string());
    }));
    let readers: Vec<fn() -> Reader> = vec![
        model_reader,
        scenario_reader,
        hardware_reader,
        ledger_reader,
        safetensors_reader,
        tensor_input_reader,
        pth_reader,
        nir_reader,
        values_reader,
    ];
    let mut readers: Vec<Reader> = readers
        .into_iter()
        .map(|f| f())
        .filter(|r| r.name.contains(&only))
        .collect();
    *CURRENT.lock().unwrap() = vec![(String::new(), 0, None); threads];
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            for (name, index, since) in CURRENT.lock().unwrap().iter() {
                if since.is_some_and(|t| t.elapsed() > hang) {
                    eprintln!(
                        "HANG: {name} execution {index} has run for over {hang:?} (seed {base:#x})"
                    );
                    std::process::abort();
                }
            }
        }
    });
    println!(
        "fuzz_long: {execs} executions per reader from {start}, seed {base:#x}, {threads} threads"
    );
    let t0 = Instant::now();
    let mut failed = Vec::new();
    for reader in readers.drain(..) {
        let caught_before = CAUGHT.load(Ordering::Relaxed);
        let per = execs.div_ceil(threads as u64);
        let parts: Vec<Stats> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads as u64)
                .map(|k| {
                    let (a, b) = (start + k * per, (start + (k + 1) * per).min(start + execs));
                    let reader = &reader;
                    s.spawn(move || fuzz(reader, base, a, b.max(a), k as usize))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total = Stats {
            executions: parts.iter().map(|p| p.executions).sum(),
            accepted: parts.iter().map(|p| p.accepted).sum(),
            panics: parts.iter().flat_map(|p| p.panics.clone()).collect(),
            slowest: parts.iter().map(|p| p.slowest).max().unwrap_or_default(),
            slowest_index: parts
                .iter()
                .max_by_key(|p| p.slowest)
                .map_or(0, |p| p.slowest_index),
            elapsed: parts.iter().map(|p| p.elapsed).max().unwrap_or_default(),
        };
        let caught = CAUGHT.load(Ordering::Relaxed) - caught_before - total.panics.len();
        println!(
            "{:<13} {:>9} executions in {:>7.1} s ({:>6.0}/s), {:>5.1}% accepted, slowest {:.1} ms (#{}), {} panics escaped, {} caught inside",
            reader.name,
            total.executions,
            total.elapsed.as_secs_f64(),
            total.executions as f64 / total.elapsed.as_secs_f64().max(1e-9),
            100.0 * total.accepted as f64 / total.executions.max(1) as f64,
            total.slowest.as_secs_f64() * 1e3,
            total.slowest_index,
            total.panics.len(),
            caught,
        );
        for (i, p) in total.panics.iter().take(5) {
            println!("  panic on execution {i}: {p}");
        }
        if caught > 0 {
            println!("  first panic: {:?}", FIRST.lock().unwrap());
        }
        if !total.panics.is_empty() || caught > 0 {
            failed.push(reader.name);
        }
    }
    let _ = std::panic::take_hook();
    println!("fuzz_long: done in {:.0} s", t0.elapsed().as_secs_f64());
    assert!(failed.is_empty(), "panics in {failed:?}");
}

/// The `.pth` generator's archives are ones the reader takes: the seed rebuilt under a
/// 21-character root with ZIP64 end records (the layout `pth_zip` corrects) reads back whole.
#[test]
fn rebuilt_pth_with_a_21_character_root_and_zip64_records_reads_back() {
    let seed = std::fs::read(repo_path("tests/fixtures/spikegpt-tiny.pt")).unwrap();
    let mut entries = zip_entries(&seed);
    for (name, _) in &mut entries {
        *name = format!("{}/{}", "r".repeat(21), name.split_once('/').unwrap().1);
    }
    let dir = temp_dir("fuzz-pth-21");
    let p = dir.join("x.pth");
    std::fs::write(&p, zip_bytes(&entries, true, b"")).unwrap();
    let got = picojoule::weights::load_pth(&p).unwrap();
    let want = picojoule::weights::load_pth(&repo_path("tests/fixtures/spikegpt-tiny.pt")).unwrap();
    assert_eq!(got.len(), want.len());
    for k in want.keys() {
        assert_eq!(got.raw(k), want.raw(k), "{k}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
