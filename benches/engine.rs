//! Engine benchmarks (run with `cargo bench --bench engine`): an event-driven spiking linear layer
//! against the dense layer of the same size, at several firing rates. Ratios are measured within
//! one run, since absolute times on shared machines are noisy.

use std::hint::black_box;
use std::time::Instant;

use picojoule::engine::linear::Linear;
use picojoule::engine::{Arith, SpikeTrain};
use picojoule::ledger::Counts;
use rand::{RngExt, SeedableRng};

/// Median seconds per call of `f` over `reps` timed batches.
fn time_it(mut f: impl FnMut(), reps: usize, inner: usize) -> f64 {
    for _ in 0..inner {
        f();
    }
    let mut samples: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..inner {
                f();
            }
            t.elapsed().as_secs_f64() / inner as f64
        })
        .collect();
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[reps / 2]
}

/// L-Mul emulation overhead: the same dense layer in exact fp32 and with every product an L-Mul.
fn lmul_overhead() {
    use picojoule::engine::arith::{ArithSpec, Scope};
    let layer = Linear::from_fn(768, 768, |o, j| {
        ((o * 31 + j * 17) % 97) as f32 / 97.0 - 0.5
    });
    let x: Vec<f32> = (0..768).map(|j| (j % 13) as f32 / 13.0 - 0.4).collect();
    let mut y = vec![0.0f32; 768];
    println!("\nL-Mul emulation overhead, 768x768 dense layer (median of 15 batches)");
    println!("{:>22} {:>12} {:>10}", "arithmetic", "us/call", "vs fp32");
    let mut c = Counts::default();
    let exact = time_it(
        || layer.forward_dense(black_box(&x), &mut y, &Arith::Exact, &mut c),
        15,
        10,
    );
    println!("{:>22} {:>12.1} {:>9.1}x", "fp32", exact * 1e6, 1.0);
    for mode in ["bf16", "lmul-23", "lmul-7", "lmul-3", "lmul:fp8-e4m3"] {
        let a = ArithSpec {
            mode: mode.into(),
            acc: None,
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        }
        .build()
        .unwrap();
        let t = time_it(
            || layer.forward_dense(black_box(&x), &mut y, &a, &mut c),
            15,
            3,
        );
        println!("{:>22} {:>12.1} {:>9.1}x", a.label(), t * 1e6, t / exact);
    }
}

fn main() {
    lmul_overhead();
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(1);
    let arith = Arith::Exact;
    println!("event-driven vs dense linear layer (median of 15 batches)");
    println!(
        "{:>11} {:>6} {:>12} {:>12} {:>10}",
        "size", "rate", "dense us", "events us", "speedup"
    );
    for (n_in, n_out) in [(768usize, 768usize), (768, 3072)] {
        let layer = Linear::from_fn(n_out, n_in, |o, j| {
            ((o * 31 + j * 17) % 97) as f32 / 97.0 - 0.5
        });
        let mut y = vec![0.0f32; n_out];
        for rate in [0.01, 0.05, 0.10, 0.25, 0.50] {
            let mut s = SpikeTrain::new(n_in);
            for j in 0..n_in {
                if rng.random::<f64>() < rate {
                    s.fire(j);
                }
            }
            // The dense layer gets the same input as real values (0.0 / 1.0), without zero-gating
            // advantages: a dense input where every entry is non-zero.
            let x: Vec<f32> = (0..n_in)
                .map(|j| if s.dense[j] > 0.0 { 1.0 } else { 0.5 })
                .collect();
            let mut c = Counts::default();
            let dense = time_it(
                || layer.forward_dense(black_box(&x), &mut y, &arith, &mut c),
                15,
                20,
            );
            let mut c = Counts::default();
            let events = time_it(
                || layer.forward_events(black_box(&s), &mut y, &arith, &mut c),
                15,
                20,
            );
            println!(
                "{:>11} {:>5.0}% {:>12.2} {:>12.2} {:>9.1}x",
                format!("{n_in}x{n_out}"),
                rate * 100.0,
                dense * 1e6,
                events * 1e6,
                dense / events
            );
        }
    }
}
