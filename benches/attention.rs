//! Time per token of the causal character LM (transformer-lm-tiny: 2 layers, width 64, 4 heads)
//! with softmax, linear and EcoFormer hashed attention, at context lengths 256, 1024 and 4096.
//! Softmax attends over its K/V cache, so its time per token grows with the context; linear and
//! hashed attention read constant-size running sums and stay flat.
//!
//! `cargo bench --bench attention` (plain `std::time::Instant`, no harness). Each kind runs 4096
//! tokens once; the time per token at context L is the median over the 64 tokens ending at L
//! (robust to other processes sharing the machine).

use std::time::Instant;

use picojoule::engine::Arith;
use picojoule::engine::attention::{AttentionKind, Normalisation};
use picojoule::ledger::Op;
use picojoule::models::spikegpt::WeightsSpec;
use picojoule::models::transformer::{
    Activation, Calibration, Config, Task, Transformer, seeded_weights,
};

const CONTEXTS: [usize; 3] = [256, 1024, 4096];
const WINDOW: usize = 64;

fn config(attention: AttentionKind) -> Config {
    Config {
        name: format!("transformer-lm-tiny-{}", attention.name()),
        task: Task::CausalLm,
        n_layer: 2,
        n_embd: 64,
        n_head: 4,
        vocab_size: 96,
        mlp_mult: 4,
        activation: Activation::Gelu,
        attention,
        calibration: 256,
        layer_norm_eps: 1e-5,
        weights: WeightsSpec::Seeded(7),
        head_fit: None,
        context: None,
        positional: false,
        relearn_hash: false,
    }
}

fn main() {
    let kinds = [
        AttentionKind::Softmax,
        AttentionKind::Linear,
        AttentionKind::EcoFormer {
            bits: 16,
            anchors: 25,
            normalisation: Normalisation::Normalised,
        },
    ];
    let max = *CONTEXTS.iter().max().unwrap();
    let tokens = picojoule::input::text::synthetic_tokens(max, 96, 42);
    let calib = Calibration::Tokens(picojoule::input::text::synthetic_tokens(256, 96, 7));
    println!(
        "time per token of the causal LM (2 x 64, 4 heads), median over the {WINDOW} tokens ending at each context length"
    );
    println!(
        "{:<10} {:>8} {:>14} {:>16}",
        "attention", "context", "us/token", "MAC+AC/token"
    );
    for kind in kinds {
        let cfg = config(kind.clone());
        let model = Transformer::new(cfg.clone(), seeded_weights(&cfg, 7), Some(&calib))
            .expect("model builds");
        let arith = Arith::Exact;
        let mut ledger = model.new_ledger(&arith, max);
        let mut st = model.new_state(max);
        let mut t = 0;
        for &ctx in &CONTEXTS {
            while t < ctx - WINDOW {
                model.step(tokens[t], &mut st, &arith, &mut ledger);
                t += 1;
            }
            let before = ledger.totals();
            let mut times = Vec::with_capacity(WINDOW);
            while t < ctx {
                let start = Instant::now();
                model.step(tokens[t], &mut st, &arith, &mut ledger);
                times.push(start.elapsed().as_secs_f64() * 1e6);
                t += 1;
            }
            // the median is robust to other processes taking the core for a while
            times.sort_by(f64::total_cmp);
            let us = times[WINDOW / 2];
            let after = ledger.totals();
            let work = |c: &picojoule::ledger::Counts| c.op_total(Op::Mac) + c.op_total(Op::Ac);
            println!(
                "{:<10} {:>8} {:>14.1} {:>16}",
                kind.name(),
                ctx,
                us,
                (work(&after) - work(&before)) / WINDOW as u64
            );
        }
    }
}
