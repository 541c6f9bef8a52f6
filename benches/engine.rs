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

/// Emulated arithmetic against exact fp32 on the same layer, dense and event-driven (10% of
/// the inputs spiking), and the vector row kernels against the scalar reference calls
/// (`Arith::mul` / `Arith::add` per product, the path the kernels are tested against).
fn emulation_overhead() {
    use picojoule::engine::isa::Isa;
    for isa in Isa::supported().into_iter().filter(|&i| i != Isa::Portable) {
        Isa::set_limit(Some(isa));
        emulation_overhead_on(isa);
    }
    Isa::set_limit(None);
}

fn emulation_overhead_on(isa: picojoule::engine::isa::Isa) {
    use picojoule::engine::arith::{ArithSpec, Scope};
    let modes: [(&str, Option<&str>); 9] = [
        ("bf16", None),
        ("fp16", None),
        ("fp8-e4m3", Some("fp16")),
        ("fp8-e4m3", None),
        ("fp16", Some("fp16")),
        ("lmul-23", None),
        ("lmul-4", None),
        ("lmul-3", None),
        ("lmul:fp8-e4m3", None),
    ];
    println!(
        "\nEmulated arithmetic vs exact fp32, {isa:?} kernels (median of 9 batches; events: 10% of inputs spiking)"
    );
    println!(
        "{:>9} {:>26} {:>10} {:>9} {:>10} {:>9} {:>13}",
        "size", "arithmetic", "dense us", "vs fp32", "events us", "vs fp32", "scalar/vector"
    );
    for (n_in, n_out) in [(768usize, 768usize), (768, 3072)] {
        let weight = |o: usize, j: usize| ((o * 31 + j * 17) % 97) as f32 / 97.0 - 0.5;
        let layer = Linear::from_fn(n_out, n_in, weight);
        let w: Vec<f32> = (0..n_in * n_out)
            .map(|k| weight(k % n_out, k / n_out))
            .collect();
        let x: Vec<f32> = (0..n_in).map(|j| (j % 13) as f32 / 13.0 - 0.4).collect();
        let mut s = SpikeTrain::new(n_in);
        for j in (0..n_in).step_by(10) {
            s.fire(j);
        }
        let mut y = vec![0.0f32; n_out];
        let mut c = Counts::default();
        let size = format!("{n_in}x{n_out}");
        let dense_exact = time_it(
            || layer.forward_dense(black_box(&x), &mut y, &Arith::Exact, &mut c),
            9,
            10,
        );
        let events_exact = time_it(
            || layer.forward_events(black_box(&s), &mut y, &Arith::Exact, &mut c),
            9,
            20,
        );
        println!(
            "{size:>9} {:>26} {:>10.1} {:>8.1}x {:>10.2} {:>8.1}x {:>13}",
            "fp32",
            dense_exact * 1e6,
            1.0,
            events_exact * 1e6,
            1.0,
            "-"
        );
        for (mode, acc) in modes {
            let a = ArithSpec {
                mode: mode.into(),
                acc: acc.map(String::from),
                scope: Scope::All,
                policy: None,
                fold_weight_offset: None,
            }
            .build()
            .unwrap();
            let dense = time_it(
                || layer.forward_dense(black_box(&x), &mut y, &a, &mut c),
                9,
                3,
            );
            let events = time_it(
                || layer.forward_events(black_box(&s), &mut y, &a, &mut c),
                9,
                10,
            );
            // The scalar reference: one `add(mul(..))` call per weight, input-major as the
            // dense kernel walks the matrix.
            let scalar = time_it(
                || {
                    y.iter_mut().for_each(|v| *v = 0.0);
                    for (j, &xj) in black_box(&x).iter().enumerate() {
                        for (o, yo) in y.iter_mut().enumerate() {
                            *yo = a.add(*yo, a.mul(xj, w[j * n_out + o]));
                        }
                    }
                },
                9,
                1,
            );
            println!(
                "{size:>9} {:>26} {:>10.1} {:>8.1}x {:>10.2} {:>8.1}x {:>12.1}x",
                a.label(),
                dense * 1e6,
                dense / dense_exact,
                events * 1e6,
                events / events_exact,
                scalar / dense
            );
        }
    }
}

fn main() {
    emulation_overhead();
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
