//! Command-line arguments (clap) and one handler per subcommand. No simulation logic here.

mod commands;
mod sweep_cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use commands::dispatch;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Md,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a scenario: execute its models, count, price, and report.
    #[command(after_help = "Examples:\n  picojoule run scenarios/quickstart.ron\n  picojoule run scenarios/quickstart.ron --format md\n  picojoule run scenarios/quickstart.ron --out out/   # writes report.json, report.csv, report.md, ledger.json")]
    Run {
        /// The scenario file (RON).
        scenario: PathBuf,
        /// What to print on stdout.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also write report.json, report.csv, report.md and ledger.json in this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads (default: all cores). Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
        /// Also draw the energy breakdown per layer and action of each run (PNG and SVG; needs --out).
        #[arg(long, requires = "out")]
        plot: bool,
    },
    /// Sweep cost-model values and model parameters over a grid; tables, plots, break-even.
    #[command(after_help = "Axes: PATH is a cost-model path as `picojoule hardware show` prints it (add.fp32, \
memory.dram.read, ...: re-prices one simulation) or a model parameter (model.lif.v_threshold, model.n_embd, ...: \
re-simulates). Axes on the command line replace the scenario's `sweep` axes.\n\nExamples:\n  \
picojoule sweep scenarios/sweep-ac-energy.ron\n  \
picojoule sweep scenarios/quickstart.ron --range add.fp32=0.1:1.0:10 --breakeven 2,3\n  \
picojoule sweep scenarios/quickstart.ron --set model.lif.v_threshold=0.5,1,2 --out sweep/\n  \
picojoule sweep S.ron --out part1 --shard 1/4   # then: picojoule merge part1 part2 part3 part4 --out all")]
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
        /// Write sweep.csv, sweep.md, sweep.json, sweep.txt, plots and the points file here.
        #[arg(long)]
        out: Option<PathBuf>,
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
        /// Worker threads (default: all cores). Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Join the output folders of sweep shards into the table of the whole sweep.
    #[command(after_help = "Example:\n  picojoule merge part1 part2 part3 part4 --out all --format csv")]
    Merge {
        /// Shard output folders (each written by `picojoule sweep --shard K/N --out DIR`).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Write the merged tables, plots and points here.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Price a saved ledger (`run --out` writes ledger.json) with a cost model.
    #[command(after_help = "Example:\n  picojoule run scenarios/quickstart.ron --out out/\n  picojoule price out/ledger.json --hardware jouppi7")]
    Price {
        /// A ledger file written by `picojoule run --out`.
        ledger: PathBuf,
        /// A preset name or a path to a cost model file.
        #[arg(long)]
        hardware: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Describe a model: parameters, dense MACs per token, weight bytes per number format.
    #[command(after_help = "Example:\n  picojoule inspect models/spikegpt-46m.ron")]
    Inspect {
        /// The model description (RON).
        model: PathBuf,
    },
    /// The hardware cost models.
    Hardware {
        #[command(subcommand)]
        command: HardwareCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum HardwareCommand {
    /// List the built-in cost presets.
    List,
    /// Every priced action of a cost model with its value, unit and source, one per line.
    #[command(after_help = "Examples:\n  picojoule hardware show horowitz45\n  picojoule hardware show my-chip.ron")]
    Show {
        /// A preset name or a path to a cost model file.
        name: String,
    },
}
