//! All integration tests, in one binary (one link step).

mod all {
    pub mod util;

    // The picojoule binary end to end: exit codes, formats, output files.
    mod cli;
    // Counts checked against the execution and against hand calculations.
    mod counting;
    // Pricing: energy = sum of count x price, unpriced work, presets.
    mod pricing;
    // Number formats, L-Mul, arithmetic modes in whole models.
    mod numerics;
    // Checkpoint import (.pth without pickle execution) and weights files.
    mod import;
    // Trained reference models against their trainer's logits and spike counts.
    mod trained;
}
