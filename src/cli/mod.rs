//! Command-line arguments (clap) and one handler per subcommand. No simulation logic here.

mod commands;

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
    },
    /// Run a scenario once and price it under several cost models: which run wins under each.
    #[command(after_help = "Examples:\n  picojoule compare scenarios/paper-vs-full.ron\n  picojoule compare scenarios/paper-vs-full.ron --hardware paper45,horowitz45,lemaire-iconip22 --format md")]
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
        /// Worker threads (default: all cores). Results do not depend on it.
        #[arg(long)]
        threads: Option<usize>,
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
