//! All integration tests, in one binary (one link step).

mod all {
    pub mod util;

    // The picojoule binary end to end: exit codes, formats, output files.
    mod cli;
    // Counts checked against the execution and against hand calculations.
    mod counting;
    // Pricing: energy = sum of count x price, unpriced work, presets.
    mod pricing;
    // Sweeps: re-pricing, shards and merge, break-even, plots, uncertainty, resume, price.
    mod sweep;
}
