//! Sweep axes: parsing the command line's `--set`/`--range`/`--log-range`, expanding a spec into
//! its values, and checking numerics and batch values before anything runs.

use crate::engine::arith::ArithSpec;
use crate::error::{Error, Result};

use super::{AxisSpec, AxisValue};

/// What an axis changes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A cost-model leaf (index into `compiled::leaves`).
    Cost(usize),
    /// A dotted path into the model description (without `model.`).
    Model(String),
    /// An arithmetic-mode parameter (without `arith.`).
    Numerics(String),
    /// Every run's batch (samples per batch), which NeuroBench's per-batch rule and the mapping
    /// of matrix-product passes see: each point is simulated.
    Batch,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub path: String,
    pub values: Vec<AxisValue>,
    pub log: bool,
    pub target: Target,
}

impl Axis {
    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Cost(_) => "cost",
            Target::Model(_) => "model",
            Target::Numerics(_) => "numerics",
            Target::Batch => "batch",
        }
    }
}

/// Largest grid accepted (points x runs rows must fit in memory for the final table).
pub const MAX_POINTS: usize = 50_000_000;

/// Round to 12 significant digits so `0.1 + 2 * 0.1` prints as `0.3`.
pub(super) fn round12(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// Parse a command-line axis: `--set PATH=V1,V2`, `--range PATH=LO:HI:STEPS`,
/// `--log-range PATH=LO:HI:STEPS`. Errors name the flag.
pub fn parse_cli_axis(flag: &str, arg: &str) -> Result<AxisSpec> {
    let bad = |why: &str| Error::input(format!("{flag} {arg}: {why}"));
    let (path, rhs) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected PATH=VALUES"))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(bad("empty PATH"));
    }
    let mut spec = AxisSpec {
        path: path.to_string(),
        values: None,
        range: None,
        log_range: None,
    };
    match flag {
        "--set" => {
            let parts: Vec<&str> = rhs.split(',').collect();
            if let Some(i) = parts.iter().position(|s| s.trim().is_empty()) {
                return Err(bad(&format!(
                    "value {} of {} is empty: expected PATH=V1,V2,...",
                    i + 1,
                    parts.len()
                )));
            }
            let vals: Vec<AxisValue> = parts.into_iter().map(AxisValue::parse).collect();
            spec.values = Some(vals);
        }
        _ => {
            let parts: Vec<&str> = rhs.split(':').collect();
            if parts.len() != 3 {
                return Err(bad("expected PATH=LO:HI:STEPS"));
            }
            let num = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            let lo = num(parts[0]).ok_or_else(|| bad("LO is not a number"))?;
            let hi = num(parts[1]).ok_or_else(|| bad("HI is not a number"))?;
            let steps: usize = parts[2]
                .trim()
                .parse()
                .map_err(|_| bad("STEPS is not a whole number"))?;
            if flag == "--log-range" {
                spec.log_range = Some((lo, hi, steps))
            } else {
                spec.range = Some((lo, hi, steps))
            }
        }
    }
    expand(&spec, &format!("{flag} {arg}"))?;
    Ok(spec)
}

/// The values of an axis spec, and whether it is log-spaced.
pub fn expand(spec: &AxisSpec, origin: &str) -> Result<(Vec<AxisValue>, bool)> {
    let bad = |why: String| Error::input(format!("{origin}: axis `{}`: {why}", spec.path));
    let given =
        spec.values.is_some() as u8 + spec.range.is_some() as u8 + spec.log_range.is_some() as u8;
    if given != 1 {
        return Err(bad(
            "give exactly one of `values`, `range`, `log_range`".into()
        ));
    }
    if let Some(v) = &spec.values {
        if v.is_empty() {
            return Err(bad("`values` is empty".into()));
        }
        return Ok((v.clone(), false));
    }
    let (lo, hi, steps, log) = match (spec.range, spec.log_range) {
        (Some((a, b, n)), _) => (a, b, n, false),
        (_, Some((a, b, n))) => (a, b, n, true),
        _ => unreachable!(),
    };
    if steps == 0 {
        return Err(bad("STEPS must be at least 1".into()));
    }
    if steps > MAX_POINTS {
        return Err(bad(format!("STEPS must be at most {MAX_POINTS}")));
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(bad("LO and HI must be finite".into()));
    }
    if log && (lo <= 0.0 || hi <= 0.0) {
        return Err(bad("a log range needs LO > 0 and HI > 0".into()));
    }
    if steps == 1 && lo != hi {
        return Err(bad("one step needs LO = HI".into()));
    }
    let vals = (0..steps)
        .map(|i| {
            let t = if steps == 1 {
                0.0
            } else {
                i as f64 / (steps - 1) as f64
            };
            let v = if log {
                (lo.ln() + t * (hi.ln() - lo.ln())).exp()
            } else {
                lo + t * (hi - lo)
            };
            let v = if i + 1 == steps {
                hi
            } else if i == 0 {
                lo
            } else {
                v
            };
            AxisValue::Num(round12(v))
        })
        .collect();
    Ok((vals, log))
}

/// The hook where numerics axes (`arith.format`, `arith.lmul_bits`, ...) plug in once the
/// arithmetic modes exist: check the values here, then apply them where a run picks its
/// `Arith` (see `simulate`).
pub fn numerics_axis(path: &str, values: &[AxisValue]) -> std::result::Result<(), String> {
    let mut spec = ArithSpec::new("fp32");
    for v in values {
        set_arith(&mut spec, path, v)?;
        spec.build()
            .map_err(|e| format!("`arith.{path}` = {v}: {e}"))?;
    }
    Ok(())
}

/// A `batch` axis value: a whole number of samples, 1..=MAX_TOKENS.
pub(super) fn batch_value(v: &AxisValue) -> std::result::Result<usize, String> {
    match v.as_f64() {
        Some(b) if b.fract() == 0.0 && b >= 1.0 && b <= crate::scenario::MAX_TOKENS as f64 => {
            Ok(b as usize)
        }
        _ => Err(format!(
            "`batch` = {v}: a whole number of samples, 1..={}",
            crate::scenario::MAX_TOKENS
        )),
    }
}

/// Set one arithmetic parameter: `arith.mode` (fp32, bf16, fp8-e4m3, lmul-3, lmul:bf16, ...),
/// `arith.lmul_bits` (K of lmul-K), `arith.acc` (accumulation format), `arith.scope`
/// (All, Projections, Attention, TensorProducts).
pub(super) fn set_arith(
    spec: &mut ArithSpec,
    path: &str,
    v: &AxisValue,
) -> std::result::Result<(), String> {
    use crate::engine::arith::Scope;
    let text = match v {
        AxisValue::Num(x) => format!("{x}"),
        AxisValue::Text(t) => t.clone(),
    };
    match path {
        "mode" => spec.mode = text,
        "lmul_bits" => match v.as_f64() {
            Some(k) if k.fract() == 0.0 && (0.0..=23.0).contains(&k) => {
                spec.mode = format!("lmul-{k}")
            }
            _ => {
                return Err(format!(
                    "`arith.lmul_bits` = {v}: a whole number of mantissa bits, 0..=23"
                ));
            }
        },
        "acc" => spec.acc = Some(text),
        "scope" => {
            spec.scope = Scope::ALL
                .into_iter()
                .find(|s| s.name().eq_ignore_ascii_case(&text))
                .ok_or_else(|| {
                    format!(
                        "`arith.scope` = {v}: one of {}",
                        Scope::ALL.map(Scope::name).join(", ")
                    )
                })?
        }
        _ => {
            return Err(format!(
                "unknown numerics axis `arith.{path}` (valid: arith.mode, arith.lmul_bits, arith.acc, arith.scope)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(v: &[AxisValue]) -> Vec<f64> {
        v.iter().map(|x| x.as_f64().unwrap()).collect()
    }

    #[test]
    fn ranges_end_exactly_at_their_bounds_and_print_short() {
        let s = parse_cli_axis("--range", "add.fp32=0.1:0.5:5").unwrap();
        let (v, log) = expand(&s, "t").unwrap();
        assert!(!log);
        // 0.1 + 2 * 0.1 is 0.30000000000000004 in f64; rounded to 12 digits it is 0.3.
        assert_eq!(nums(&v), [0.1, 0.2, 0.3, 0.4, 0.5]);
        let s = parse_cli_axis("--log-range", "memory.dram.read=1:1000:4").unwrap();
        let (v, log) = expand(&s, "t").unwrap();
        assert!(log);
        assert_eq!(nums(&v), [1.0, 10.0, 100.0, 1000.0]);
    }

    #[test]
    fn a_bad_axis_names_the_flag_and_what_is_wrong() {
        for (flag, arg, why) in [
            ("--set", "add.fp32", "PATH=VALUES"),
            ("--set", "add.fp32=1,,2", "value 2 of 3 is empty"),
            ("--range", "add.fp32=1:2", "LO:HI:STEPS"),
            ("--range", "add.fp32=1:x:3", "HI is not a number"),
            ("--range", "add.fp32=1:2:0", "at least 1"),
            ("--range", "add.fp32=1:2:1", "one step needs LO = HI"),
            ("--log-range", "add.fp32=0:2:3", "LO > 0"),
            ("--set", "=1", "empty PATH"),
        ] {
            let e = parse_cli_axis(flag, arg).unwrap_err().to_string();
            assert!(e.contains(flag) && e.contains(why), "{flag} {arg}: {e}");
        }
    }

    #[test]
    fn numerics_values_are_checked_by_building_the_mode() {
        let text = |s: &str| AxisValue::Text(s.into());
        assert!(numerics_axis("mode", &[text("bf16"), text("lmul-3")]).is_ok());
        assert!(numerics_axis("lmul_bits", &[AxisValue::Num(3.0)]).is_ok());
        let e = numerics_axis("lmul_bits", &[AxisValue::Num(2.5)]).unwrap_err();
        assert!(e.contains("whole number"), "{e}");
        let e = numerics_axis("scope", &[text("everywhere")]).unwrap_err();
        assert!(e.contains("Projections"), "{e}");
        let e = numerics_axis("rounding", &[text("x")]).unwrap_err();
        assert!(e.contains("unknown numerics axis"), "{e}");
        assert!(numerics_axis("mode", &[text("not-a-format")]).is_err());
    }

    #[test]
    fn a_batch_is_a_whole_positive_number() {
        assert_eq!(batch_value(&AxisValue::Num(8.0)), Ok(8));
        for bad in [0.0, -1.0, 1.5] {
            assert!(batch_value(&AxisValue::Num(bad)).is_err(), "{bad}");
        }
        assert!(batch_value(&AxisValue::Text("four".into())).is_err());
    }
}
