//! All integration tests, in one binary (one link step).

mod all {
    pub mod util;

    // The picojoule binary end to end: exit codes, formats, output files.
    mod baselines;
    mod cli;
    // Counts checked against the execution and against hand calculations.
    mod counting;
    // Attention primitives: counts vs closed forms, conventions, attention-cost CLI.
    mod attention;
    // NeuroBench's test networks and expected values; Lemaire's worked example.
    mod neurobench;
    // Pricing: energy = sum of count x price, unpriced work, presets.
    mod pricing;
    // Number formats, L-Mul, arithmetic modes in whole models.
    mod numerics;
    // Checkpoint import (.pth without pickle execution) and weights files.
    mod import;
    // NIR graphs from snnTorch and Norse matched against the frameworks' own outputs.
    mod nir;
    // A bounded fuzz pass over every parser: never a panic.
    mod robustness;
    // Published tables reproduced from executions.
    mod reproduce;
    // The error catalogue: every kind of bad input, exit code 2, no panic.
    mod errors;
    // run/sweep/compare --html: the self-contained report page.
    mod html;
    // Sweeps: re-pricing, shards and merge, break-even, plots, uncertainty, resume, price.
    mod sweep;
    // Trained reference models against their trainer's logits and spike counts.
    mod trained;
    // EcoFormer's PVTv2 table reproduced from an execution (ecoformer-paper view of whole models).
    mod reproduce_pvt;
    // Every shipped scenario and command, hashed against tests/golden/manifest.txt.
    mod golden;
    // Timeloop reference runs reproduced by the loop-nest analysis.
    mod timeloop;
    // Counting conventions shown beside the full accounting on run, compare and sweep.
    mod conventions;
    // The library's layers: dependencies point one way, no circles.
    mod layers;
    // Tensor inputs (.npy, .safetensors), the shipped spike-train example, batches.
    mod tensors;
    // Versioned JSON against its schema, summary rows, accuracy in compare and price, inspect.
    mod reports;
}
