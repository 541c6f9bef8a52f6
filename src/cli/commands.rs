//! One handler per subcommand.

use std::io::Write;
use std::path::Path;

use super::{
    Cli, Command, Format, HardwareCommand, ImportCommand, NirConventionArg, NumericsCommand,
    sweep_cmd,
};
use crate::error::{Error, Result, write_atomic};
use crate::exec::{self, Limits};
use crate::hardware::{Hardware, PRESETS};
use crate::report::{self, table};
use crate::scenario::LoadedScenario;

use super::emit;
use super::inspect_cmd::cmd_inspect;
use super::numerics_cmd::{cmd_attention_cost, cmd_error_table, cmd_numerics_mul};

pub fn dispatch(cli: Cli, stdout: &mut dyn Write) -> Result<()> {
    match cli.command {
        Command::Run {
            scenario,
            format,
            out,
            threads,
            max_memory,
            plot,
            html,
            tokens,
            dump_outputs,
            top_k,
            convention,
            hardware,
            rows,
            explain,
        } => {
            let opts = RunOpts {
                rows,
                explain,
                convention,
                hardware: hardware.as_deref(),
                out: out.as_deref(),
                threads,
                plot,
                html,
                tokens,
                limits: Limits { max_memory },
                dump: dump_outputs.as_deref().map(|p| (p, top_k as usize)),
            };
            cmd_run(&scenario, format, &opts, stdout)
        }
        Command::Compare {
            scenario,
            hardware,
            format,
            threads,
            max_memory,
            out,
            html,
            convention,
        } => cmd_compare(
            &scenario,
            &hardware,
            format,
            threads,
            &Limits { max_memory },
            (out.as_deref(), html),
            convention,
            stdout,
        ),
        Command::Sweep {
            scenario,
            set,
            range,
            log_range,
            axis_order,
            out,
            html,
            format,
            samples,
            shard,
            resume,
            breakeven,
            breakeven_axis,
            threads,
            max_memory,
            convention,
        } => {
            let args = sweep_cmd::SweepArgs {
                convention,
                set,
                range,
                log_range,
                axis_order,
                out,
                html,
                samples,
                shard,
                resume,
                breakeven,
                breakeven_axis,
                max_memory,
            };
            let text = with_threads(threads, || sweep_cmd::sweep(&scenario, args, format))??;
            emit(stdout, &text)
        }
        Command::Merge {
            dirs,
            out,
            html,
            format,
        } => emit(
            stdout,
            &sweep_cmd::merge(&dirs, out.as_deref(), html, format)?,
        ),
        Command::Price {
            ledger,
            hardware,
            format,
            out,
            html,
        } => emit(
            stdout,
            &sweep_cmd::price(&ledger, &hardware, format, out.as_deref(), html)?,
        ),
        Command::Inspect { model } => cmd_inspect(&model, stdout),
        Command::Numerics {
            command:
                NumericsCommand::Mul {
                    mode,
                    format,
                    policy,
                    values,
                },
        } => cmd_numerics_mul(mode, &format, policy, &values, stdout),
        Command::Numerics {
            command:
                NumericsCommand::ErrorTable {
                    samples,
                    seed,
                    distribution,
                    range,
                    format,
                },
        } => cmd_error_table(
            samples,
            seed,
            distribution,
            range.as_deref(),
            format,
            stdout,
        ),
        Command::Import {
            command:
                ImportCommand::Spikegpt {
                    checkpoint,
                    out,
                    name,
                },
        } => {
            let imp = crate::import::import_spikegpt(&checkpoint, &out, name.as_deref())?;
            let c = &imp.config;
            emit(
                stdout,
                &format!(
                    "imported {}: {} layers x {}, vocabulary {}, FFN x{}, {} parameters\nwrote {}\nwrote {}\n",
                    checkpoint.display(),
                    c.n_layer,
                    c.n_embd,
                    c.vocab_size,
                    c.ffn_mult,
                    c.n_params(),
                    imp.model_file.display(),
                    imp.weights_file.display()
                ),
            )
        }
        Command::Import {
            command:
                ImportCommand::Nir {
                    model,
                    out,
                    name,
                    dt,
                    convention,
                },
        } => {
            let conv = match convention {
                NirConventionArg::Snntorch => crate::models::nir::Convention::Snntorch,
                NirConventionArg::Norse => crate::models::nir::Convention::Norse,
            };
            let imp = crate::import::import_nir(&model, &out, name.as_deref(), conv, dt)?;
            emit(
                stdout,
                &format!(
                    "imported {}\n{}wrote {}\nwrote {}\n",
                    model.display(),
                    imp.summary,
                    imp.model_file.display(),
                    imp.weights_file.display()
                ),
            )
        }
        Command::AttentionCost {
            kind,
            tokens,
            dim,
            heads,
            bits,
            anchors,
            normalisation,
            convention,
            format,
            seed,
            hardware,
        } => cmd_attention_cost(
            kind,
            tokens,
            dim,
            heads,
            bits,
            anchors,
            normalisation.as_deref(),
            &convention,
            format,
            seed,
            hardware,
            stdout,
        ),
        Command::Reproduce {
            out,
            only,
            tokens,
            root,
        } => cmd_reproduce(out.as_deref(), &only, tokens, &root, stdout),
        Command::Hardware {
            command: HardwareCommand::List,
        } => cmd_hardware_list(stdout),
        Command::Hardware {
            command: HardwareCommand::Show { name },
        } => cmd_hardware_show(&name, stdout),
    }
}

fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T> {
    match threads {
        None => Ok(f()),
        Some(0) => Err(Error::input("--threads must be at least 1")),
        Some(n) if n > super::MAX_THREADS => Err(Error::input(format!(
            "--threads {n}: at most {} worker threads",
            super::MAX_THREADS
        ))),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Internal(e.to_string()))
            .map(|pool| pool.install(f)),
    }
}

/// The runs' warnings on stderr, once each.
fn warn_runs(outputs: &[exec::RunOutput]) {
    let all: Vec<String> = outputs.iter().flat_map(|o| o.warnings.clone()).collect();
    super::warn(&all);
}

/// What `run` does besides printing its report.
struct RunOpts<'a> {
    out: Option<&'a Path>,
    threads: Option<usize>,
    plot: bool,
    /// Write report.html with the other outputs.
    html: bool,
    tokens: Option<usize>,
    limits: Limits,
    /// Where to write the per-step outputs, and how many outputs per step.
    dump: Option<(&'a Path, usize)>,
    /// `--convention`, in place of the scenario's.
    convention: Option<crate::convention::Convention>,
    /// `--hardware`, in place of the scenario's.
    hardware: Option<&'a str>,
    /// The rows of `--format csv`.
    rows: super::RowsArg,
    /// Append the memory mapping of every layer (`--explain`).
    explain: bool,
}

fn cmd_run(path: &Path, format: Format, o: &RunOpts, stdout: &mut dyn Write) -> Result<()> {
    let RunOpts {
        out,
        threads,
        plot,
        html,
        tokens,
        ref limits,
        dump,
        convention,
        hardware,
        rows,
        explain,
    } = *o;
    if explain && matches!(format, Format::Csv | Format::Json) {
        return Err(Error::input(
            "--explain: prints a text or Markdown section; use --format table or md (the JSON report has each layer's `mappings` and `weight_chain`)",
        ));
    }
    let mut sc = LoadedScenario::load(path)?;
    if let Some(c) = convention {
        sc.scenario.convention = c;
    }
    if let Some(h) = hardware {
        // A flag's path is relative to the current folder, not to the scenario.
        let h = super::hardware_flag(h)?;
        sc.scenario.hardware = if crate::hardware::PRESETS.iter().any(|(n, _)| *n == h) {
            h.to_string()
        } else if !Path::new(h).is_file() {
            let presets: Vec<&str> = crate::hardware::PRESETS.iter().map(|(n, _)| *n).collect();
            return Err(Error::input(format!(
                "--hardware {h}: not a preset ({}) and no such file",
                presets.join(", ")
            )));
        } else {
            std::path::absolute(h)
                .map_err(|e| Error::input(format!("--hardware {h}: {e}")))?
                .display()
                .to_string()
        };
    }
    let view_hw = sc.scenario.convention.view_hardware()?;
    if let Some(n) = tokens {
        sc.override_tokens(n)
            .map_err(|e| Error::input(format!("--tokens: {e}")))?;
    }
    let hw = sc.load_hardware(&sc.hardware_ref())?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let top_k = dump.map(|(_, k)| k);
    let bar = sweep_cmd::progress_bar("running", exec::total_steps(&sc));
    let tick = {
        let bar = bar.clone();
        move |k: u64| bar.inc(k)
    };
    let outputs = with_threads(threads, || {
        exec::execute_with_progress(&sc, limits, top_k, Some(&tick as &exec::Tick))
    });
    bar.finish_and_clear();
    let outputs = outputs??;
    sc.check_mappings(&hw, outputs.iter().map(|o| (o.label.as_str(), &o.ledger)))?;
    warn_runs(&outputs);
    if let Some((path, _)) = dump {
        write_atomic(path, dump_lines(&outputs).as_bytes())?;
    }
    let references = with_threads(threads, || exec::score_references(&sc, limits))??;
    let mut rep = report::build(&sc, &hw, &outputs, references);
    if let Some(vhw) = &view_hw {
        report::add_view(&mut rep, sc.scenario.convention, &outputs, vhw);
    }
    if let Some(dir) = out {
        report::run_files::write_run_reports(
            dir,
            &rep,
            &outputs,
            &hw,
            html,
            Some(exec::saved::to_json(&sc, &outputs, &rep.references)),
        )?;
        if plot {
            sweep_cmd::breakdown_plots(&outputs, &hw, dir)?;
            report::plot::run_accuracy_plots(&rep, dir)?;
        }
    }
    let mut text = match (format, rows) {
        (Format::Csv, super::RowsArg::Runs) => table::render_csv_runs(&rep),
        _ => table::render(&rep, format),
    };
    if explain {
        text += &table::render_explain(&rep, format == Format::Md);
    }
    emit(stdout, &text)
}

/// One JSON line per run and step: the run's label, the step's fields, and its spikes by LIF
/// layer name.
fn dump_lines(outputs: &[exec::RunOutput]) -> String {
    let mut text = String::new();
    for o in outputs {
        for step in &o.steps {
            let mut line = serde_json::to_value(step).expect("records serialise");
            let spikes: serde_json::Map<String, serde_json::Value> = o
                .lif_layers
                .iter()
                .zip(&step.spikes)
                .map(|(name, &n)| (name.clone(), n.into()))
                .collect();
            if let Some(obj) = line.as_object_mut() {
                obj.insert("run".into(), o.label.clone().into());
                obj.insert("spikes".into(), spikes.into());
            }
            text += &serde_json::to_string(&line).expect("records serialise");
            text.push('\n');
        }
    }
    text
}

#[allow(clippy::too_many_arguments)]
fn cmd_compare(
    path: &Path,
    hardware: &[String],
    format: Format,
    threads: Option<usize>,
    limits: &Limits,
    (out, html): (Option<&Path>, bool),
    convention: Option<crate::convention::Convention>,
    stdout: &mut dyn Write,
) -> Result<()> {
    let mut sc = LoadedScenario::load(path)?;
    if let Some(c) = convention {
        sc.scenario.convention = c;
    }
    let view_hw = sc.scenario.convention.view_hardware()?;
    let names: Vec<String> = if !hardware.is_empty() {
        hardware
            .iter()
            .map(|h| super::hardware_flag(h).map(|h| sc.resolve_hardware(h)))
            .collect::<Result<_>>()?
    } else if !sc.scenario.compare.is_empty() {
        sc.scenario
            .compare
            .iter()
            .map(|h| sc.resolve_hardware(h))
            .collect()
    } else {
        vec![sc.hardware_ref()]
    };
    let hws = names
        .iter()
        .map(|n| sc.load_hardware(n))
        .collect::<Result<Vec<_>>>()?;
    let outputs = with_threads(threads, || exec::execute(&sc, limits))??;
    for hw in &hws {
        sc.check_mappings(hw, outputs.iter().map(|o| (o.label.as_str(), &o.ledger)))?;
    }
    warn_runs(&outputs);
    let mut c = report::compare::compare(&sc, &outputs, &hws);
    if let Some(vhw) = &view_hw {
        report::compare::add_view(&mut c, sc.scenario.convention, &outputs, vhw);
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        // All renamed into place together, once each is complete.
        let mut files = crate::error::Staged::default();
        for (name, f) in [
            ("compare.json", Format::Json),
            ("compare.csv", Format::Csv),
            ("compare.md", Format::Md),
        ] {
            files.stage(&dir.join(name), report::compare::render(&c, f).as_bytes())?;
        }
        if html {
            files.stage(
                &dir.join("report.html"),
                report::html::compare_page(&c).as_bytes(),
            )?;
        }
        files.commit()?;
    }
    emit(stdout, &report::compare::render(&c, format))
}

fn cmd_hardware_list(stdout: &mut dyn Write) -> Result<()> {
    let mut out = String::new();
    for (name, _) in PRESETS {
        let hw = Hardware::load(name)?;
        out += &format!("{name:<17} {}\n", hw.model.description);
    }
    emit(stdout, &out)
}

fn cmd_hardware_show(name: &str, stdout: &mut dyn Write) -> Result<()> {
    let hw = Hardware::load(name)?;
    let mut out = format!(
        "# {} ({}), sha256 {}\n# {}\n",
        hw.model.name, hw.origin, hw.sha256, hw.model.description
    );
    for (path, value, unit, source) in hw.model.lines() {
        out += &format!("{path}\t{value}\t{unit}\t{source}\n");
    }
    emit(stdout, &out)
}

/// The tables `picojoule reproduce` knows, in document order.
const REPRODUCTIONS: &[&str] = &["lmul", "spikegpt", "ecoformer"];

fn cmd_reproduce(
    out: Option<&Path>,
    only: &[String],
    tokens: usize,
    root: &Path,
    stdout: &mut dyn Write,
) -> Result<()> {
    for o in only {
        if !REPRODUCTIONS.contains(&o.as_str()) {
            return Err(Error::input(format!(
                "--only `{o}`: valid tables are {}",
                REPRODUCTIONS.join(", ")
            )));
        }
    }
    if !(300..=1_000_000).contains(&tokens) {
        return Err(Error::input(format!(
            "--tokens must be between 300 and 1000000, found {tokens}"
        )));
    }
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let text = root.join("data/text/sotu-test.txt");
    let trained = root.join("scenarios/paper-spikegpt.ron");
    let scenario = root.join("scenarios/paper-ecoformer-pvtv2.ron");
    // The files the chosen tables read, checked before any table runs.
    for (table, file) in [
        ("spikegpt", &text),
        ("spikegpt", &trained),
        ("ecoformer", &scenario),
    ] {
        if wanted(table) && !file.is_file() {
            return Err(Error::input(format!(
                "reproduce {table}: {} not found; run from the picojoule repository or give --root DIR",
                file.display()
            )));
        }
    }
    let chosen: Vec<&str> = REPRODUCTIONS
        .iter()
        .copied()
        .filter(|t| wanted(t))
        .collect();
    let bar = sweep_cmd::progress_bar("reproducing", chosen.len() as u64);
    let mut doc = String::from(
        "# Reproductions of published tables\n\nGenerated by `picojoule reproduce` (regenerate with `picojoule reproduce --out docs/reproductions.md`). \\
Each table: the published value, picojoule's value measured from an execution, the counting convention that relates them, the difference, and what the convention leaves out.\n\n",
    );
    for table in chosen {
        bar.set_message(format!("reproducing {table}"));
        doc += &match table {
            "lmul" => crate::reproduce::lmul::lmul_table(&Default::default()).markdown(),
            "spikegpt" => {
                let setting = crate::reproduce::spikegpt::Setting {
                    tokens,
                    trained: Some(trained.clone()),
                    ..Default::default()
                };
                crate::reproduce::spikegpt::spikegpt_table(&text, &setting)?.markdown()
            }
            _ => crate::reproduce::ecoformer::ecoformer_pvtv2_table(&scenario)?.markdown(),
        };
        doc += "\n";
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = out {
        write_atomic(path, doc.as_bytes())?;
    }
    emit(stdout, &doc)
}
