//! One handler per subcommand.

use std::io::Write;
use std::path::Path;

use super::{
    AttnKindArg, Cli, Command, CostFormat, DistributionArg, Format, HardwareCommand, ImportCommand,
    MulMode, NirConventionArg, NumericsCommand, PolicyArg, TableFormat, sweep_cmd,
};
use crate::error::{Error, Result, write_atomic};
use crate::exec::{self, Limits};
use crate::hardware::{Hardware, PRESETS};
use crate::ledger::{BF16, FP16, FP32, INT8};
use crate::models::ModelDesc;
use crate::report::{self, table};
use crate::scenario::LoadedScenario;

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

fn emit(stdout: &mut dyn Write, text: &str) -> Result<()> {
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| Error::Internal(format!("writing to stdout: {e}")))
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
    let mut rep = report::build(&sc, &hw, &outputs);
    rep.references = references;
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

fn cmd_inspect(path: &Path, stdout: &mut dyn Write) -> Result<()> {
    let desc = ModelDesc::load(path)?;
    // inspect builds the model: refuse what would not fit, as a run does.
    crate::resources::check(
        &format!("model `{}`", desc.name()),
        desc.peak_bytes(1),
        None,
    )?;
    let base = path.parent().unwrap_or(Path::new("."));
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let params: u64 = match &desc {
        ModelDesc::Transformer(cfg) => {
            out += &format!(
                "model {} (transformer, {}, {} attention)\n",
                cfg.name,
                if cfg.is_lm() {
                    "language model"
                } else {
                    "image classifier"
                },
                cfg.attention.name()
            );
            out += &format!(
                "layers {}, width {}, heads {}, MLP hidden {}\n",
                cfg.n_layer,
                cfg.n_embd,
                cfg.n_head,
                cfg.mlp_mult * cfg.n_embd
            );
            out += &format!("parameters {} (without hash tensors)\n", cfg.n_params());
            cfg.n_params() as u64
        }
        ModelDesc::SpikeGpt(cfg) => {
            let n = cfg.n_params();
            out += &format!(
                "model {} (SpikeGPT-style, variant {})\n",
                cfg.name,
                cfg.variant.name()
            );
            out += &format!(
                "layers {}, width {}, FFN hidden {}, vocabulary {}\n",
                cfg.n_layer,
                cfg.n_embd,
                cfg.ffn_hidden(),
                cfg.vocab_size
            );
            out += &format!("parameters {n}\n");
            let need = n as u64 * 4;
            if need > (8u64 << 30) {
                return Err(Error::input(format!(
                    "{}: {n} parameters need {need} bytes in fp32; refusing to allocate more than 8 GiB for inspect",
                    path.display()
                )));
            }
            n as u64
        }
        ModelDesc::Pvt(cfg) => {
            out += &format!(
                "model {} (PVTv2, {} attention, {}x{} images)\n",
                cfg.name,
                cfg.attention.name(),
                cfg.image_size,
                cfg.image_size
            );
            out += &format!(
                "stages: widths {}; heads {}; MLP ratios {}; blocks {}\n",
                list(&cfg.embed_dims),
                list(&cfg.num_heads),
                list(&cfg.mlp_ratios),
                list(&cfg.depths)
            );
            out += &format!("parameters {} (without hash tensors)\n", cfg.n_params());
            cfg.n_params() as u64
        }
        ModelDesc::Sequential(cfg) => {
            let m = crate::models::sequential::Sequential::from_config(cfg.clone(), base)?;
            out += &format!(
                "model {} (sequential, {} layers, {} time steps, input {})\n",
                m.cfg.name,
                m.cfg.layers.len(),
                m.cfg.timesteps,
                m.cfg
                    .input
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            );
            for (i, l) in m.cfg.layers.iter().enumerate() {
                // As the model file writes it.
                let text = ron::ser::to_string(l).unwrap_or_else(|e| format!("({e})"));
                out += &format!("  {i}: {text}\n");
            }
            let s = &m.statics;
            out += &format!(
                "ParameterCount {}\nFootprint {} B (fp32 parameters)\nConnectionSparsity {} ({} of {} connection weights zero; NeuroBench prints {})\n",
                s.ParameterCount,
                s.Footprint,
                s.ConnectionSparsity,
                s.connection_zeros,
                s.connection_weights,
                s.ConnectionSparsity_neurobench
            );
            s.ParameterCount
        }
        ModelDesc::Nir(cfg) => {
            let m = crate::models::nir::Nir::from_config(cfg.clone(), base)?;
            out += &crate::import::describe_nir(&m);
            m.statics.ParameterCount
        }
    };
    match exec::dense_per_step(&desc, base)? {
        Some((dense, unit)) => {
            out += &format!(
                "dense MACs per {unit} {dense} (executed: one {unit} in exact fp32{}, the synaptic operations of every projection as if every input were non-zero)\n",
                if matches!(desc, ModelDesc::SpikeGpt(_)) {
                    " of the non-spiking form"
                } else {
                    ""
                }
            );
        }
        None => {
            out += "dense MACs: not executed by inspect for this family (a run reports them as metrics.Dense)\n";
        }
    }
    out += "weight bytes per number format:\n";
    for f in [FP32, FP16, BF16, "fp8-e4m3".parse().expect("valid"), INT8] {
        out += &format!("  {:<9} {}\n", f.to_string(), params * f.bits() as u64 / 8);
    }
    emit(stdout, &out)
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

fn cmd_numerics_mul(
    mode: MulMode,
    format: &str,
    policy: PolicyArg,
    values: &[f64],
    stdout: &mut dyn Write,
) -> Result<()> {
    use crate::numerics::FloatFormat;
    use crate::numerics::lmul::{LmulPolicy, lmul_bits};
    let fmt = FloatFormat::parse(format).map_err(|e| Error::input(format!("--format: {e}")))?;
    if !values.len().is_multiple_of(2) {
        return Err(Error::input(format!(
            "numerics mul takes operands in pairs; got {} values",
            values.len()
        )));
    }
    let policy = match policy {
        PolicyArg::Ieee => LmulPolicy::Ieee,
        PolicyArg::Raw => LmulPolicy::Raw,
    };
    let width = fmt.bits().div_ceil(4) as usize;
    let mut out = String::new();
    for pair in values.chunks_exact(2) {
        let (a, b) = (fmt.quantize_f64(pair[0]), fmt.quantize_f64(pair[1]));
        let (value, bits) = match mode {
            MulMode::Lmul => {
                let r = lmul_bits(a, b, fmt, policy);
                (fmt.decode(r), r)
            }
            MulMode::Round => {
                let r = fmt.quantize_f64(fmt.decode(a) * fmt.decode(b));
                (fmt.decode(r), r)
            }
            MulMode::Exact => {
                let p = fmt.decode(a) * fmt.decode(b);
                (p, fmt.quantize_f64(p))
            }
        };
        // The shortest decimal that reads back as the same value (as f32 when it is one).
        let shown = if (value as f32) as f64 == value || value.is_nan() {
            format!("{}", value as f32)
        } else {
            format!("{value}")
        };
        out += &format!("{shown} 0x{bits:0width$X}\n");
    }
    emit(stdout, &out)
}

fn cmd_error_table(
    samples: usize,
    seed: u64,
    dist: DistributionArg,
    range: Option<&str>,
    format: TableFormat,
    stdout: &mut dyn Write,
) -> Result<()> {
    use crate::numerics::{Distribution, ErrorTableConfig, error_table};
    if samples == 0 || samples > 100_000_000 {
        return Err(Error::input(format!(
            "--samples must be between 1 and 100000000, found {samples}"
        )));
    }
    let parse_range = |r: &str| -> Result<(f64, f64)> {
        let (lo, hi) = r
            .split_once(':')
            .ok_or_else(|| Error::input(format!("--range `{r}`: expected LO:HI")))?;
        let p = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| Error::input(format!("--range `{r}`: `{s}` is not a number")))
        };
        Ok((p(lo)?, p(hi)?))
    };
    let distribution = match (dist, range.map(parse_range).transpose()?) {
        (DistributionArg::LogUniform, None) => Distribution::default(),
        (DistributionArg::LogUniform, Some((lo, hi))) => {
            if !(lo > 0.0 && hi > lo && hi.is_finite()) {
                return Err(Error::input("--range for log-uniform needs 0 < LO < HI"));
            }
            Distribution::LogUniform {
                lo_exp: lo.log2(),
                hi_exp: hi.log2(),
            }
        }
        (DistributionArg::Uniform, r) => {
            let (lo, hi) = r.unwrap_or((-1.0, 1.0));
            if !(hi > lo && lo.is_finite() && hi.is_finite()) {
                return Err(Error::input("--range for uniform needs LO < HI"));
            }
            Distribution::Uniform { lo, hi }
        }
        (DistributionArg::Normal, r) => {
            let (mean, sd) = r.unwrap_or((0.0, 1.0));
            if !(sd > 0.0 && sd.is_finite() && mean.is_finite()) {
                return Err(Error::input("--range for normal is MEAN:SD with SD > 0"));
            }
            Distribution::Normal { mean, sd }
        }
    };
    let rows = error_table(&ErrorTableConfig {
        samples,
        seed,
        distribution,
    });
    let text = match format {
        TableFormat::Json => serde_json::to_string_pretty(&rows).expect("rows serialise") + "\n",
        TableFormat::Csv => {
            let mut s = String::from(
                "row,samples,mean_rel_err,max_rel_err,mean_bias,dot64_mean,dot64_max,dot64_norm_mean,dot64_norm_max,dot256_mean,dot256_max,dot256_norm_mean,dot256_norm_max\n",
            );
            for r in &rows {
                s += &format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    r.name,
                    r.samples,
                    r.mean_rel_err,
                    r.max_rel_err,
                    r.mean_bias,
                    r.dot64_mean,
                    r.dot64_max,
                    r.dot64_norm_mean,
                    r.dot64_norm_max,
                    r.dot256_mean,
                    r.dot256_max,
                    r.dot256_norm_mean,
                    r.dot256_norm_max
                );
            }
            s
        }
        TableFormat::Table | TableFormat::Md => {
            let mut t = table::Table::new(&[
                "row",
                "mean |rel| %",
                "max |rel| %",
                "bias %",
                "dot64 err/sum|ab| %",
                "dot256 err/sum|ab| %",
            ]);
            for r in &rows {
                t.push(vec![
                    r.name.clone(),
                    format!("{:.4}", 100.0 * r.mean_rel_err),
                    format!("{:.4}", 100.0 * r.max_rel_err),
                    format!("{:+.4}", 100.0 * r.mean_bias),
                    format!("{:.4}", 100.0 * r.dot64_norm_mean),
                    format!("{:.4}", 100.0 * r.dot256_norm_mean),
                ]);
            }
            let what = match distribution {
                Distribution::LogUniform { lo_exp, hi_exp } => format!(
                    "magnitudes log-uniform in [{}, {}], random signs",
                    lo_exp.exp2(),
                    hi_exp.exp2()
                ),
                Distribution::Uniform { lo, hi } => format!("values uniform in [{lo}, {hi}]"),
                Distribution::Normal { mean, sd } => {
                    format!("values normal with mean {mean} and sd {sd}")
                }
            };
            let title = format!(
                "{samples} operand pairs, seed {seed}, {what}; relative error of the product against the exact f64 product"
            );
            if format == TableFormat::Md {
                format!("{title}\n\n{}", t.markdown())
            } else {
                format!("{title}\n\n{}", t.text())
            }
        }
    };
    emit(stdout, &text)
}

#[allow(clippy::too_many_arguments)]
fn cmd_attention_cost(
    kind: AttnKindArg,
    tokens: usize,
    dim: usize,
    heads: usize,
    bits: usize,
    anchors: usize,
    normalisation: Option<&str>,
    convention: &str,
    format: CostFormat,
    seed: u64,
    hardware: Option<String>,
    stdout: &mut dyn Write,
) -> Result<()> {
    use crate::attention_cost::{self as ac, CostSpec};
    use crate::engine::attention::AttentionKind;
    let convention: crate::convention::Convention = convention
        .parse()
        .map_err(|e| Error::input(format!("--convention: {e}")))?;
    // The paper counts the released code's form; picojoule's own default elsewhere.
    let normalisation = normalisation.unwrap_or(
        if convention == crate::convention::Convention::EcoformerPaper {
            "ecoformer-code"
        } else {
            "normalised"
        },
    );
    let kind = match kind {
        AttnKindArg::Softmax => AttentionKind::Softmax,
        AttnKindArg::Linear => AttentionKind::Linear,
        AttnKindArg::Ecoformer => AttentionKind::EcoFormer {
            bits,
            anchors,
            normalisation: ac::parse_normalisation(normalisation)?,
        },
    };
    if let Some(h) = &hardware {
        super::hardware_flag(h)?;
    }
    let report = ac::measure(&CostSpec {
        kind,
        tokens,
        dim,
        heads,
        convention,
        seed,
        hardware,
    })?;
    let text = match format {
        CostFormat::Table => ac::render_text(&report),
        CostFormat::Json => ac::render_json(&report),
    };
    emit(stdout, &text)
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
