//! Command-line arguments (clap) and one handler per subcommand. No simulation logic here.

mod commands;
mod inspect_cmd;
mod numerics_cmd;
mod sweep_cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use commands::dispatch;

/// Write a command's output to stdout; a failed write is an internal error.
pub(crate) fn emit(stdout: &mut dyn std::io::Write, text: &str) -> crate::error::Result<()> {
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| crate::error::Error::Internal(format!("writing to stdout: {e}")))
}

/// Print what the library accepted but changed or found questionable, once each, on stderr.
pub(crate) fn warn(warnings: &[String]) {
    let mut seen = std::collections::BTreeSet::new();
    for w in warnings {
        if seen.insert(w) {
            eprintln!("picojoule: warning: {w}");
        }
    }
}

/// A `--hardware` value: refused when empty (a path relative to the scenario would otherwise
/// name its folder).
pub(crate) fn hardware_flag(h: &str) -> crate::error::Result<&str> {
    let h = h.trim();
    if h.is_empty() {
        return Err(crate::error::Error::input(
            "--hardware is empty: give a preset (picojoule hardware list) or a cost model file",
        ));
    }
    Ok(h)
}

/// A `--convention` value.
fn parse_convention(s: &str) -> Result<crate::convention::Convention, String> {
    s.parse()
}

/// The most worker threads `--threads` accepts (each thread has its own stack; far more threads
/// than cores only slow a run down).
pub const MAX_THREADS: usize = 1024;

/// The flags that give a sweep axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AxisFlag {
    Set,
    Range,
    LogRange,
}

impl AxisFlag {
    pub fn flag(self) -> &'static str {
        match self {
            AxisFlag::Set => "--set",
            AxisFlag::Range => "--range",
            AxisFlag::LogRange => "--log-range",
        }
    }
}

/// Parse a command line. Sweep axes keep the order they were given in, across their three
/// flags (the grid's first axis varies slowest).
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Command::Sweep { axis_order, .. }, Some(sub)) =
        (&mut cli.command, matches.subcommand_matches("sweep"))
    {
        let mut given = Vec::new();
        for (id, flag) in [
            ("set", AxisFlag::Set),
            ("range", AxisFlag::Range),
            ("log_range", AxisFlag::LogRange),
        ] {
            for (k, at) in sub.indices_of(id).into_iter().flatten().enumerate() {
                given.push((at, flag, k));
            }
        }
        given.sort();
        *axis_order = given.into_iter().map(|(_, f, k)| (f, k)).collect();
    }
    Ok(cli)
}

#[derive(Parser, Debug)]
#[command(
    name = "picojoule",
    version,
    about = "What an efficient neural network costs in energy on given hardware, and what it costs in accuracy",
    long_about = "picojoule runs spiking and multiplication-free models token by token, counts every action \
where it happens (MACs, ACs, synaptic events, neuron updates, nonlinear functions, memory traffic), and \
prices the counts with a hardware cost model whose every number names its source.",
    after_help = "Examples:\n  picojoule run scenarios/quickstart.ron\n  picojoule run scenarios/quickstart.ron --format json --out results/\n  picojoule inspect models/spikegpt-216m.ron\n  picojoule hardware show horowitz45"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

pub use crate::report::Format;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario: execute its models, count, price, and report.
    #[command(
        after_help = "Examples:\n  picojoule run scenarios/quickstart.ron\n  picojoule run scenarios/quickstart.ron --format md\n  picojoule run scenarios/quickstart.ron --out out/   # writes report.json, report.csv, report.md, ledger.json"
    )]
    Run {
        /// The scenario file (RON).
        scenario: PathBuf,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also write report.json, report.csv, report.md and ledger.json in this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads, 1 to 1024 (default: all cores). Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Refuse models whose estimated memory exceeds this (e.g. 4G; default: available memory).
        #[arg(long, value_parser = crate::resources::parse_size)]
        max_memory: Option<u64>,
        /// Also draw the energy breakdown per layer and action of each run, and energy against
        /// accuracy with its Pareto front (PNG and SVG; needs --out).
        #[arg(long, requires = "out")]
        plot: bool,
        /// Also write report.html: one self-contained page (tables, inline SVG plots, no
        /// external requests) with the other outputs (needs --out).
        #[arg(long, requires = "out")]
        html: bool,
        /// Run every model on N tokens (images), in place of the scenario's and the runs' own
        /// counts: a quick look at a long scenario.
        #[arg(long, value_name = "N")]
        tokens: Option<usize>,
        /// Write each run's outputs per token or sample to this JSON Lines file: the input and
        /// target, the prediction, the --top-k outputs with log-probabilities, the spikes per LIF
        /// layer (for cross-checks against other implementations).
        #[arg(long, value_name = "FILE.jsonl")]
        dump_outputs: Option<PathBuf>,
        /// Outputs kept per step in --dump-outputs.
        #[arg(long, default_value_t = 5, requires = "dump_outputs", value_parser = clap::value_parser!(u16).range(1..))]
        top_k: u16,
        /// Counting convention shown beside the full accounting: full | ecoformer-paper |
        /// spikegpt-paper | neurobench (default: the scenario's `convention`, else full). A paper
        /// convention on a model it does not describe is reported as not applicable.
        #[arg(long, value_parser = parse_convention)]
        convention: Option<crate::convention::Convention>,
        /// Price with this cost model in place of the scenario's `hardware`: a preset
        /// (picojoule hardware list) or a cost model file, relative to the current folder.
        #[arg(long, value_name = "NAME|FILE")]
        hardware: Option<String>,
        /// The rows of `--format csv` on stdout: `layers` (one row per run and layer plus a
        /// TOTAL row per run, the default) or `runs` (one summary row per run: energy, per
        /// token or sample, compute/memory split, accuracy, unpriced count). `--out` writes
        /// both, as report.csv and report-runs.csv.
        #[arg(long, value_enum, default_value = "layers")]
        rows: RowsArg,
        /// After the report, say where each layer's memory traffic goes: the loop-nest mapping
        /// chosen for each pass (vision projections, convolutions, full attention) and the
        /// levels traced weight reads pass through (`--format table` or `md`).
        #[arg(long)]
        explain: bool,
    },
    /// Run a scenario once and price it under several cost models: which run wins under each.
    #[command(
        after_help = "Examples:\n  picojoule compare scenarios/paper-vs-full.ron\n  picojoule compare scenarios/paper-vs-full.ron --hardware paper45,horowitz45,lemaire-iconip22 --format md"
    )]
    Compare {
        /// The scenario file (RON).
        scenario: PathBuf,
        /// Cost models, comma-separated (presets or paths); default: the scenario's `compare`
        /// list, else its `hardware`.
        #[arg(long, value_delimiter = ',')]
        hardware: Vec<String>,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Worker threads, 1 to 1024 (default: all cores). Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Refuse models whose estimated memory exceeds this (e.g. 4G; default: available memory).
        #[arg(long, value_parser = crate::resources::parse_size)]
        max_memory: Option<u64>,
        /// Also write compare.json, compare.csv and compare.md in this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write report.html (self-contained, no external requests) in --out.
        #[arg(long, requires = "out")]
        html: bool,
        /// Counting convention shown beside the full accounting: full | ecoformer-paper |
        /// spikegpt-paper | neurobench (default: the scenario's `convention`, else full). A paper
        /// convention on a model it does not describe is reported as not applicable.
        #[arg(long, value_parser = parse_convention)]
        convention: Option<crate::convention::Convention>,
    },
    /// Sweep cost-model values and model parameters over a grid; tables, plots, break-even.
    #[command(
        after_help = "Axes: PATH is a cost-model path as `picojoule hardware show` prints it (add.fp32, \
memory.dram.read, ...: re-prices one simulation) or a model parameter (model.lif.v_threshold, model.n_embd, ...: \
re-simulates). Axes on the command line replace the scenario's `sweep` axes.\n\nExamples:\n  \
picojoule sweep scenarios/sweep-ac-energy.ron\n  \
picojoule sweep scenarios/quickstart.ron --range add.fp32=0.1:1.0:10 --breakeven 2,3\n  \
picojoule sweep scenarios/quickstart.ron --set model.lif.v_threshold=0.5,1,2 --out sweep/\n  \
picojoule sweep S.ron --out part1 --shard 1/4   # then: picojoule merge part1 part2 part3 part4 --out all"
    )]
    Sweep {
        /// The scenario file (RON).
        scenario: PathBuf,
        /// An axis of listed values: PATH=V1,V2,... (repeatable).
        #[arg(long = "set", value_name = "PATH=V1,V2,...")]
        set: Vec<String>,
        /// An axis of STEPS evenly spaced values: PATH=LO:HI:STEPS (repeatable).
        #[arg(long = "range", value_name = "PATH=LO:HI:STEPS")]
        range: Vec<String>,
        /// An axis of STEPS log-spaced values: PATH=LO:HI:STEPS (repeatable).
        #[arg(long = "log-range", value_name = "PATH=LO:HI:STEPS")]
        log_range: Vec<String>,
        /// The axes in command-line order: (flag, index into its list); filled by [`parse`].
        #[arg(skip)]
        axis_order: Vec<(AxisFlag, usize)>,
        /// Write sweep.csv, sweep.md, sweep.json, sweep.txt, plots and the points file here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write report.html (self-contained, no external requests) in --out.
        #[arg(long, requires = "out")]
        html: bool,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Monte Carlo samples of the uncertain cost entries per point (median, 5-95%).
        #[arg(long)]
        samples: Option<usize>,
        /// Run only the K-th of N contiguous slices of the grid (1-based), e.g. 2/8.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Keep the finished points in --out and run only the others.
        #[arg(long, requires = "out")]
        resume: bool,
        /// Where the energies of two runs cross: RUN_A,RUN_B (labels or 1-based numbers).
        #[arg(long, value_name = "RUN_A,RUN_B")]
        breakeven: Option<String>,
        /// The axis of the break-even (default: the first axis).
        #[arg(long, value_name = "PATH")]
        breakeven_axis: Option<String>,
        /// Refuse simulations whose estimated memory exceeds this (e.g. 4G; default: available
        /// memory).
        #[arg(long, value_parser = crate::resources::parse_size)]
        max_memory: Option<u64>,
        /// Worker threads, 1 to 1024 (default: all cores). Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Counting convention shown beside the full accounting: full | ecoformer-paper |
        /// spikegpt-paper | neurobench (default: the scenario's `convention`, else full). A paper
        /// convention on a model it does not describe is reported as not applicable.
        #[arg(long, value_parser = parse_convention)]
        convention: Option<crate::convention::Convention>,
    },
    /// Join the output folders of sweep shards into the table of the whole sweep.
    #[command(
        after_help = "Example:\n  picojoule merge part1 part2 part3 part4 --out all --format csv"
    )]
    Merge {
        /// Shard output folders (each written by `picojoule sweep --shard K/N --out DIR`).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Write the merged tables, plots and points here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write report.html (self-contained, no external requests) in --out.
        #[arg(long, requires = "out")]
        html: bool,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Price a saved ledger (`run --out` writes ledger.json) with a cost model.
    #[command(
        after_help = "Example:\n  picojoule run scenarios/quickstart.ron --out out/\n  picojoule price out/ledger.json --hardware jouppi7"
    )]
    Price {
        /// A ledger file written by `picojoule run --out`.
        ledger: PathBuf,
        /// A preset name or a path to a cost model file.
        #[arg(long)]
        hardware: String,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also write report.json, report.csv, report-runs.csv and report.md in this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write report.html (self-contained, no external requests) in --out.
        #[arg(long, requires = "out")]
        html: bool,
    },
    /// Describe a model: parameters, dense MACs per token, weight bytes per number format.
    #[command(after_help = "Example:\n  picojoule inspect models/spikegpt-46m.ron")]
    Inspect {
        /// The model description (RON).
        model: PathBuf,
    },
    /// Convert a released checkpoint into a picojoule model description and weights.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Number formats and L-Mul: single products and error tables.
    Numerics {
        #[command(subcommand)]
        command: NumericsCommand,
    },
    /// Count one attention layer (softmax, linear or EcoFormer hashed) on seeded random input and
    /// print the counts of its core under a counting convention.
    #[command(
        after_help = "Examples:\n  picojoule attention-cost --kind ecoformer --tokens 3136 --dim 32 --heads 1 --convention ecoformer-paper\n  picojoule attention-cost --kind softmax --tokens 196 --dim 160 --heads 5 --format json\n\nEnergy is priced with --hardware, by default paper45 for --convention ecoformer-paper and horowitz45 for full."
    )]
    AttentionCost {
        /// Attention kind.
        #[arg(long, value_enum)]
        kind: AttnKindArg,
        /// Tokens N.
        #[arg(long)]
        tokens: usize,
        /// Embedding width D.
        #[arg(long)]
        dim: usize,
        /// Heads H (must divide D).
        #[arg(long)]
        heads: usize,
        /// Code bits b (ecoformer).
        #[arg(long, default_value_t = 16)]
        bits: usize,
        /// Kernel anchors m (ecoformer).
        #[arg(long, default_value_t = 25)]
        anchors: usize,
        /// Hashed-attention normalisation: normalised | ecoformer-code. Default: ecoformer-code
        /// under --convention ecoformer-paper (o_i = (sum_j s_ij v_j + c v_i) / sum_j (s_ij + c),
        /// what EcoFormer's released code computes and its get_energy.py counts), normalised
        /// (picojoule's EcoFormer-style variant, a true weighted average) otherwise.
        #[arg(long)]
        normalisation: Option<String>,
        /// Counting convention: full | ecoformer-paper.
        #[arg(long, default_value = "full")]
        convention: String,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: CostFormat,
        /// Seed of the input and the layer's weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Cost model: a preset or a file (default: paper45 for ecoformer-paper, horowitz45 otherwise).
        #[arg(long)]
        hardware: Option<String>,
    },
    /// Reproduce published tables (SpikeGPT's energy table, the L-Mul claims, ...) from
    /// executions, and write them as Markdown.
    #[command(
        after_help = "Examples:\n  picojoule reproduce --out docs/reproductions.md\n  picojoule reproduce --root /path/to/picojoule --only lmul"
    )]
    Reproduce {
        /// Write the Markdown here (atomically) as well as to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only these tables (comma-separated): lmul, spikegpt, ecoformer.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Tokens of the SpikeGPT setting (the paper's T).
        #[arg(long, default_value_t = 3072)]
        tokens: usize,
        /// The picojoule repository folder whose data and scenarios the tables read
        /// (data/text/sotu-test.txt, scenarios/paper-ecoformer-pvtv2.ron); default: the
        /// current folder.
        #[arg(long, value_name = "DIR", default_value = ".")]
        root: PathBuf,
    },
    /// The hardware cost models.
    Hardware {
        #[command(subcommand)]
        command: HardwareCommand,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MulMode {
    /// L-Mul on the bit patterns.
    Lmul,
    /// The exact product of the rounded operands (bits: its rounding into the format).
    Exact,
    /// The product rounded to nearest even into the format.
    Round,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Zeros, subnormals, infinities, NaNs, overflow and underflow handled as special cases.
    Ieee,
    /// The paper's kernel: the bit patterns added modulo 2^(e+m), no special cases.
    Raw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DistributionArg {
    /// Magnitudes log-uniform over --range, random signs.
    LogUniform,
    /// Values uniform over --range.
    Uniform,
    /// Values normal with --range MEAN:SD.
    Normal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Aligned columns for a terminal.
    Table,
    Csv,
    /// Markdown.
    Md,
    Json,
}

/// The rows of `run --format csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RowsArg {
    /// One row per run and layer, and a TOTAL row per run.
    Layers,
    /// One summary row per run.
    Runs,
}

#[derive(Subcommand, Debug)]
pub enum NumericsCommand {
    /// Multiply pairs of numbers in a format; prints `VALUE 0xBITS` per pair.
    #[command(
        after_help = "Examples:\n  picojoule numerics mul --mode lmul --format fp32 1.5 1.5 -2 3\n  picojoule numerics mul --mode round --format fp8-e4m3 0.1 10"
    )]
    Mul {
        /// How to multiply.
        #[arg(long, value_enum, default_value = "lmul")]
        mode: MulMode,
        /// fp32, fp16, bf16, fp8-e4m3, fp8-e5m2, eXmY, lmul-K (e8mK)
        #[arg(long, default_value = "fp32")]
        format: String,
        /// L-Mul special-case policy.
        #[arg(long, value_enum, default_value = "ieee")]
        policy: PolicyArg,
        /// Operands, in pairs: A B [A B ...] (negative values as -2, -1e-3, -inf).
        #[arg(required = true, allow_hyphen_values = true)]
        values: Vec<f64>,
    },
    /// Mean and max relative error of products and dot products, per format and L-Mul width.
    #[command(after_help = "Example:\n  picojoule numerics error-table --samples 100000 --seed 0")]
    ErrorTable {
        /// Operand pairs drawn per row (1 to 100000000).
        #[arg(long, default_value_t = 100_000)]
        samples: usize,
        /// Seed of the operand draws (the same seed gives the same table).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// How operands are drawn (signs are random in every distribution).
        #[arg(long, value_enum, default_value = "log-uniform")]
        distribution: DistributionArg,
        /// LO:HI: magnitudes for log-uniform (default 0.0625:16), values for uniform (default -1:1),
        /// mean:sd for normal (default 0:1).
        #[arg(long)]
        range: Option<String>,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: TableFormat,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// A SpikeGPT `.pth`/`.pt` state dict (read without executing pickle code).
    #[command(
        after_help = "Example:\n  picojoule import spikegpt SpikeGPT-216M.pth --out models/imported\n  picojoule run my-scenario.ron   # with (model: \"models/imported/SpikeGPT-216M.ron\")"
    )]
    Spikegpt {
        /// The checkpoint file (`.pth` or `.pt`, a PyTorch zip archive of the state dict).
        checkpoint: PathBuf,
        /// Folder for NAME.ron and NAME.safetensors.
        #[arg(long)]
        out: PathBuf,
        /// Model name (default: the checkpoint's file stem).
        #[arg(long)]
        name: Option<String>,
    },
    /// A NIR graph (`.nir`, HDF5) exported by snnTorch, Norse, or any NIR writer.
    #[command(
        after_help = "Example:\n  picojoule import nir net.nir --out models/imported --convention norse\n  picojoule run my-scenario.ron   # with (model: \"models/imported/net.ron\")\nA scenario may also name the .nir file itself (read under the snnTorch convention).\nSee docs/nir.md for the time step, reset and recurrent-delay conventions."
    )]
    Nir {
        /// The NIR file (`.nir`, HDF5).
        model: PathBuf,
        /// Folder for NAME.ron and NAME.safetensors.
        #[arg(long)]
        out: PathBuf,
        /// Model name (default: the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Time step in seconds that discretises the neurons (default: the convention's).
        #[arg(long)]
        dt: Option<f64>,
        /// Framework convention: its time step and how input enters a synaptic current.
        #[arg(long, value_enum, default_value = "snntorch")]
        convention: NirConventionArg,
    },
}

/// Which framework's reading of a NIR file (time step, input to a synaptic current).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NirConventionArg {
    /// dt = 1e-4 s, Euler input to a synaptic current (snnTorch).
    Snntorch,
    /// dt = 1e-3 s, input added to a synaptic current unscaled (Norse).
    Norse,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttnKindArg {
    /// Softmax attention.
    Softmax,
    /// Linear (kernel) attention.
    Linear,
    /// EcoFormer's hashed attention (binary codes, Hamming-kernel weights).
    Ecoformer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CostFormat {
    /// Aligned text.
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum HardwareCommand {
    /// List the built-in cost presets.
    List,
    /// Every priced action of a cost model with its value, unit and source, one per line.
    #[command(
        after_help = "Examples:\n  picojoule hardware show horowitz45\n  picojoule hardware show my-chip.ron"
    )]
    Show {
        /// A preset name or a path to a cost model file.
        name: String,
    },
}
