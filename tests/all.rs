//! All integration tests, in one binary (one link step).

mod all {
    pub mod util;

    // The picojoule binary end to end: exit codes, formats, output files.
    mod cli;
    // Counts checked against the execution and against hand calculations.
    mod counting;
    // NeuroBench's test networks and expected values; Lemaire's worked example.
    mod neurobench;
    // Pricing: energy = sum of count x price, unpriced work, presets.
    mod pricing;
}
