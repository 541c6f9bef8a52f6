//! One handler per subcommand.

use std::io::Write;
use std::path::Path;

use super::{sweep_cmd, Cli, Command, Format, HardwareCommand};
use crate::engine::Arith;
use crate::error::{write_atomic, Error, Result};
use crate::hardware::{Hardware, PRESETS};
use crate::ledger::{Op, BF16, FP16, FP32, INT8};
use crate::models::spikegpt::{SpikeGpt, Variant};
use crate::models::ModelDesc;
use crate::report::{self, table};
use crate::run;
use crate::scenario::LoadedScenario;

pub fn dispatch(cli: Cli, stdout: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Run { scenario, format, out, threads, plot } => cmd_run(&scenario, format, out.as_deref(), threads, plot, stdout),
        Command::Sweep { scenario, set, range, log_range, out, format, samples, shard, resume, breakeven, breakeven_axis, threads } => {
            let args = sweep_cmd::SweepArgs { set, range, log_range, out, samples, shard, resume, breakeven, breakeven_axis };
            let text = with_threads(threads, || sweep_cmd::sweep(&scenario, args, format))??;
            emit(stdout, &text)
        }
        Command::Merge { dirs, out, format } => emit(stdout, &sweep_cmd::merge(&dirs, out.as_deref(), format)?),
        Command::Price { ledger, hardware, format } => emit(stdout, &sweep_cmd::price(&ledger, &hardware, format)?),
        Command::Inspect { model } => cmd_inspect(&model, stdout),
        Command::Hardware { command: HardwareCommand::List } => cmd_hardware_list(stdout),
        Command::Hardware { command: HardwareCommand::Show { name } } => cmd_hardware_show(&name, stdout),
    }
}

fn emit(stdout: &mut dyn Write, text: &str) -> Result<()> {
    stdout.write_all(text.as_bytes()).map_err(|e| Error::Internal(format!("writing to stdout: {e}")))
}

fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T> {
    match threads {
        None => Ok(f()),
        Some(0) => Err(Error::input("--threads must be at least 1")),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Internal(e.to_string()))
            .map(|pool| pool.install(f)),
    }
}

fn cmd_run(path: &Path, format: Format, out: Option<&Path>, threads: Option<usize>, plot: bool, stdout: &mut dyn Write) -> Result<()> {
    let sc = LoadedScenario::load(path)?;
    let hw = Hardware::load(&sc.hardware_ref())?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write { path: dir.to_path_buf(), source })?;
    }
    let outputs = with_threads(threads, || run::execute(&sc))??;
    let rep = report::build(&sc, &hw, &outputs);
    if let Some(dir) = out {
        let ledgers: Vec<serde_json::Value> = outputs
            .iter()
            .map(|o| serde_json::json!({ "label": o.label, "model": o.model, "variant": o.variant, "tokens": o.tokens, "ledger": o.ledger }))
            .collect();
        let ledger_json = serde_json::to_string_pretty(&serde_json::json!({ "runs": ledgers })).expect("ledgers serialise") + "\n";
        write_atomic(&dir.join("report.json"), table::render_json(&rep).as_bytes())?;
        write_atomic(&dir.join("report.csv"), table::render_csv(&rep).as_bytes())?;
        write_atomic(&dir.join("report.md"), table::render_markdown(&rep).as_bytes())?;
        write_atomic(&dir.join("ledger.json"), ledger_json.as_bytes())?;
        if plot {
            sweep_cmd::breakdown_plots(&outputs, &hw, dir)?;
        }
    }
    let text = match format {
        Format::Table => table::render_text(&rep),
        Format::Csv => table::render_csv(&rep),
        Format::Md => table::render_markdown(&rep),
        Format::Json => table::render_json(&rep),
    };
    emit(stdout, &text)
}

fn cmd_inspect(path: &Path, stdout: &mut dyn Write) -> Result<()> {
    let desc = ModelDesc::load(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = String::new();
    match desc {
        ModelDesc::SpikeGpt(cfg) => {
            let n = cfg.n_params();
            out += &format!("model {} (SpikeGPT-style, variant {})\n", cfg.name, cfg.variant.name());
            out += &format!("layers {}, width {}, FFN hidden {}, vocabulary {}\n", cfg.n_layer, cfg.n_embd, cfg.ffn_hidden(), cfg.vocab_size);
            out += &format!("parameters {n}\n");
            // Dense MACs per token come from executing one token of the non-spiking form.
            let dense = {
                let twin = crate::models::spikegpt::Config { variant: Variant::NonSpiking, ..cfg.clone() };
                let need = n as u64 * 4;
                if need > (8u64 << 30) {
                    return Err(Error::input(format!("{}: {n} parameters need {need} bytes in fp32; refusing to allocate more than 8 GiB for inspect", path.display())));
                }
                let m = SpikeGpt::from_config(twin, base)?;
                let arith = Arith::Exact;
                let mut st = m.new_state();
                let mut l = m.new_ledger(&arith);
                m.step(0, &mut st, &arith, &mut l);
                l.totals().op_total(Op::DenseSynop)
            };
            out += &format!("dense MACs per token {dense} (executed: one token of the non-spiking form, synaptic operations of every projection)\n");
            out += "weight bytes per number format:\n";
            for f in [FP32, FP16, BF16, "fp8-e4m3".parse().expect("valid"), INT8] {
                out += &format!("  {:<9} {}\n", f.to_string(), n as u64 * f.bits() as u64 / 8);
            }
        }
    }
    emit(stdout, &out)
}

fn cmd_hardware_list(stdout: &mut dyn Write) -> Result<()> {
    let mut out = String::new();
    for (name, _) in PRESETS {
        let hw = Hardware::load(name)?;
        out += &format!("{name:<12} {}\n", hw.model.description);
    }
    emit(stdout, &out)
}

fn cmd_hardware_show(name: &str, stdout: &mut dyn Write) -> Result<()> {
    let hw = Hardware::load(name)?;
    let mut out = format!("# {} ({}), sha256 {}\n# {}\n", hw.model.name, hw.origin, hw.sha256, hw.model.description);
    for (path, value, unit, source) in hw.model.lines() {
        out += &format!("{path}\t{value}\t{unit}\t{source}\n");
    }
    emit(stdout, &out)
}
