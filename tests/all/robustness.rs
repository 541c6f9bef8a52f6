//! A bounded, seeded fuzz pass over every parser and loader, run in CI: mutated valid inputs must
//! give an `Ok` or an input error, never a panic. (Longer runs: the cargo-fuzz targets in `fuzz/`.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use picojoule::error::parse_ron;
use picojoule::hardware::Hardware;
use picojoule::ledger::Ledger;
use picojoule::models::ModelDesc;
use picojoule::scenario::Scenario;
use rand::{RngExt, SeedableRng};

use super::util::*;

const ITERATIONS: usize = 300;

/// Byte-level mutations: flip, insert, delete, duplicate a span, truncate.
fn mutate(input: &[u8], rng: &mut rand::rngs::Xoshiro256PlusPlus) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..4) {
        if v.is_empty() {
            v.push(b'(');
            continue;
        }
        let i = rng.random_range(0..v.len());
        match rng.random_range(0..5) {
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
            _ => v.truncate(i),
        }
    }
    v
}

fn fuzz(name: &str, seed_input: &[u8], mut check: impl FnMut(&[u8])) {
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(0xf022);
    for i in 0..ITERATIONS {
        let input = mutate(seed_input, &mut rng);
        let r = catch_unwind(AssertUnwindSafe(|| check(&input)));
        assert!(
            r.is_ok(),
            "{name}: panic on mutation {i}: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn ron_parsers_never_panic() {
    let scenario = std::fs::read(repo_path("scenarios/numerics.ron")).unwrap();
    fuzz("scenario", &scenario, |b| {
        let _ = parse_ron::<Scenario>(Path::new("s.ron"), &text(b));
    });
    let model = std::fs::read(repo_path("models/spikegpt-tiny.ron")).unwrap();
    fuzz("model", &model, |b| {
        if let Ok(desc) = parse_ron::<ModelDesc>(Path::new("m.ron"), &text(b)) {
            let _ = desc.validate();
        }
    });
    let hw = std::fs::read(repo_path("hardware/horowitz45.ron")).unwrap();
    fuzz("hardware", &hw, |b| {
        let _ = Hardware::from_text(Path::new("h.ron"), &text(b), "fuzz".into());
    });
}

#[test]
fn ledger_json_never_panics_and_prices() {
    let mut l = Ledger::new();
    let id = l.layer("a.b");
    l.at(id)
        .add(picojoule::ledger::Op::Mac, picojoule::ledger::FP32, 10);
    l.at(id).mem(
        picojoule::ledger::Op::Read,
        picojoule::ledger::FP32,
        picojoule::ledger::TensorClass::Weight,
        64,
    );
    let json = serde_json::to_vec(&l).unwrap();
    let hw = Hardware::load("horowitz45").unwrap();
    fuzz("ledger", &json, |b| {
        if let Ok(l) = serde_json::from_slice::<Ledger>(b) {
            let _ = picojoule::hardware::price(&l, &hw.model);
        }
    });
}

#[test]
fn weight_loaders_never_panic() {
    let dir = temp_dir("fuzz-weights");
    // safetensors: write a small valid file, then mutate its bytes.
    let mut store = picojoule::weights::TensorStore::new("x");
    store.insert("a.weight", vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    store.insert("b", vec![3], vec![0.5, -0.5, 0.25]);
    let st = dir.join("w.safetensors");
    picojoule::weights::save_safetensors(&store, &st).unwrap();
    let bytes = std::fs::read(&st).unwrap();
    fuzz("safetensors", &bytes, |b| {
        let _ = picojoule::weights::safetensors_from_bytes("fuzz", b);
    });
    // .pth: fewer iterations (each goes through a file).
    let pth = std::fs::read(repo_path("tests/fixtures/spikegpt-tiny.pt")).unwrap();
    let target = dir.join("f.pt");
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(7);
    for i in 0..60 {
        let m = mutate(&pth, &mut rng);
        std::fs::write(&target, &m).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| picojoule::weights::load_pth(&target)));
        assert!(r.is_ok(), "pth: panic on mutation {i}");
    }
}

#[test]
fn cli_value_parsers_never_panic() {
    let seeds = [
        "512M",
        "fp8-e4m3",
        "lmul-3",
        "e4m3",
        "int12",
        "1.5GiB",
        "lmul:bf16",
    ];
    for s in seeds {
        fuzz("values", s.as_bytes(), |b| {
            let t = text(b);
            let _ = picojoule::resources::parse_size(&t);
            let _ = t.parse::<picojoule::ledger::Fmt>();
            let _ = picojoule::numerics::FloatFormat::parse(&t);
            let spec = picojoule::engine::arith::ArithSpec {
                mode: t.clone(),
                acc: Some(t.clone()),
                scope: Default::default(),
                policy: None,
                fold_weight_offset: None,
            };
            let _ = spec.build();
        });
    }
}
