//! Handlers of `numerics mul`, `numerics error-table` and `attention-cost`: the arithmetic
//! questions answered without a model run.

use std::io::Write;

use super::{AttnKindArg, CostFormat, DistributionArg, MulMode, PolicyArg, TableFormat};
use crate::error::{Error, Result};
use crate::report::table;

use super::emit;

pub(super) fn cmd_numerics_mul(
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

pub(super) fn cmd_error_table(
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
pub(super) fn cmd_attention_cost(
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
