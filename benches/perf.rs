//! Performance summary (run with `cargo bench --bench perf`): SpikeGPT-216M (seeded weights, fp32)
//! tokens per second in its three forms, weight bytes touched per token, the fraction of a memory
//! roofline measured on the spot, and the cost of counting. All ratios are measured in one run.
//! `PICOJOULE_PERF_TOKENS` (default 6) and `PICOJOULE_PERF_MODEL` (default models/spikegpt-216m.ron)
//! change the workload.

use std::hint::black_box;
use std::time::Instant;

use picojoule::engine::Arith;
use picojoule::engine::linear::Kernel;
use picojoule::ledger::{Op, TensorClass};
use picojoule::models::ModelDesc;
use picojoule::models::spikegpt::{SpikeGpt, Variant};

/// Streaming read bandwidth: sum a buffer much larger than the caches (2 threads, as the model).
fn roofline_gb_s() -> f64 {
    let n = 256 << 20; // 1 GiB of f32
    let buf: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let t = Instant::now();
        use rayon::prelude::*;
        // Eight independent accumulators, so the sum vectorises and only memory limits it.
        let s: f32 = buf
            .par_chunks(1 << 16)
            .map(|c| {
                let mut acc = [0.0f32; 8];
                for v in c.chunks_exact(8) {
                    for k in 0..8 {
                        acc[k] += v[k];
                    }
                }
                acc.iter().sum::<f32>()
            })
            .sum();
        black_box(s);
        best = best.max((n * 4) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// Reset the peak resident memory the kernel reports (Linux: writing 5 to `clear_refs`), so
/// that each form's peak is its own and not the roofline buffer's.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let path =
        std::env::var("PICOJOULE_PERF_MODEL").unwrap_or_else(|_| "models/spikegpt-216m.ron".into());
    let tokens: usize = std::env::var("PICOJOULE_PERF_TOKENS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let roof = roofline_gb_s();
    println!(
        "machine: {} cores; streaming-read roofline {roof:.1} GB/s",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!("model {path}, {tokens} tokens per measurement, fp32, seeded weights\n");
    println!(
        "{:<13} {:>9} {:>12} {:>14} {:>10} {:>14} {:>11} {:>13} {:>16}",
        "form",
        "tokens/s",
        "weight MB/tok",
        "GB/s achieved",
        "roofline",
        "counting cost",
        "trace cost",
        "vector speed-up",
        "peak MB / weights"
    );
    let reset = reset_peak_rss();
    let ModelDesc::SpikeGpt(cfg) =
        ModelDesc::load(std::path::Path::new(&path)).expect("model loads")
    else {
        panic!("{path}: the perf benchmark runs SpikeGpt models");
    };
    for variant in [
        Variant::Reference,
        Variant::SpikeDriven,
        Variant::NonSpiking,
    ] {
        let cfg = picojoule::models::spikegpt::Config {
            variant,
            ..cfg.clone()
        };
        reset_peak_rss();
        let weight_mb = cfg.n_params() as f64 * 4.0 / 1e6;
        let mut model =
            SpikeGpt::from_config(cfg, std::path::Path::new("models")).expect("model builds");
        let arith = Arith::Exact;
        let run_traced = |model: &SpikeGpt, count: bool, trace: bool| {
            let mut st = model.new_state();
            let mut l = model.new_ledger(&arith);
            l.set_counting(count);
            l.set_tracing(trace);
            model.step(1, &mut st, &arith, &mut l); // warm-up
            let t = Instant::now();
            for i in 0..tokens {
                model.step((i * 7919) % model.cfg.vocab_size, &mut st, &arith, &mut l);
            }
            (t.elapsed().as_secs_f64(), l)
        };
        let run = |model: &SpikeGpt, count: bool| run_traced(model, count, true);
        let (on, ledger) = run(&model, true);
        let (off, _) = run(&model, false);
        let (untraced, _) = run_traced(&model, true, false);
        let (on2, _) = run(&model, true);
        let on = on.min(on2);
        // The dense kernel without wide vectors (AVX-512 or AVX2; same sums), measured in the
        // same run.
        model.set_kernel(Kernel::Portable);
        let (narrow, _) = run(&model, true);
        let weight_bytes: u64 = ledger
            .totals()
            .iter()
            .filter(|(k, _)| k.op == Op::Read && k.class == Some(TensorClass::Weight))
            .map(|(_, v)| *v)
            .sum();
        let per_tok = weight_bytes as f64 / (tokens + 1) as f64;
        let gbs = per_tok * tokens as f64 / on / 1e9;
        let peak = rss_mb();
        println!(
            "{:<13} {:>9.2} {:>12.1} {:>14.2} {:>9.0}% {:>13.1}% {:>10.1}% {:>12.2}x {:>7.0} / {:.0}",
            variant.name(),
            tokens as f64 / on,
            per_tok / 1e6,
            gbs,
            100.0 * gbs / roof,
            100.0 * (on - off) / off,
            100.0 * (on - untraced) / untraced,
            narrow / on,
            peak,
            weight_mb
        );
        drop(model);
    }
    if reset {
        println!(
            "\npeak resident memory per form: from building the model to its last run (the \
             roofline's 1 GiB buffer is freed first)"
        );
    } else {
        println!("\npeak resident memory: cannot be reset here; it includes the roofline buffer");
    }
}
