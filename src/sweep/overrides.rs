//! Model-description overrides by dotted path (`lif.v_threshold`, `n_embd`, ...), applied on
//! the description's serde representation, so every model family and every field works without
//! code here: the description is turned into a JSON value, the field is replaced (keeping its
//! type: integer, float, string, bool), and the result is read back and validated.

use serde_json::Value;

use super::AxisValue;
use crate::models::ModelDesc;

/// The family's fields: `{"SpikeGpt": {...}}` is entered transparently.
fn body(v: &mut Value) -> &mut Value {
    let is_wrapper =
        matches!(v, Value::Object(m) if m.len() == 1 && m.values().all(Value::is_object));
    if is_wrapper {
        let Value::Object(m) = v else { unreachable!() };
        return m.values_mut().next().expect("one key");
    }
    v
}

fn collect(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect(&p, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect(&format!("{prefix}.{i}"), x, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// Every settable field of a description, as `model.`-less dotted paths.
pub fn leaf_paths(desc: &ModelDesc) -> Vec<String> {
    let mut v = serde_json::to_value(desc).expect("model descriptions serialise");
    let mut out = Vec::new();
    collect("", body(&mut v), &mut out);
    out
}

fn new_value(old: &Value, value: &AxisValue, path: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("model.{path}: `{value}` is not {what}");
    Ok(match (old, value) {
        (Value::Number(n), AxisValue::Num(x)) if n.is_u64() || n.is_i64() => {
            if x.fract() != 0.0 || !x.is_finite() {
                return Err(bad("an integer"));
            }
            if *x >= 0.0 {
                Value::from(*x as u64)
            } else {
                Value::from(*x as i64)
            }
        }
        (Value::Number(_), AxisValue::Num(x)) => serde_json::Number::from_f64(*x)
            .map(Value::Number)
            .ok_or_else(|| bad("a finite number"))?,
        (Value::Bool(_), AxisValue::Num(x)) if *x == 0.0 || *x == 1.0 => Value::Bool(*x == 1.0),
        (Value::Bool(_), AxisValue::Text(t)) => {
            Value::Bool(t.parse().map_err(|_| bad("true or false"))?)
        }
        (Value::String(_), v) => Value::String(v.to_string()),
        (Value::Null, AxisValue::Num(x)) => serde_json::Number::from_f64(*x)
            .map(Value::Number)
            .ok_or_else(|| bad("a finite number"))?,
        (Value::Null, AxisValue::Text(t)) => Value::String(t.clone()),
        (Value::Number(_), AxisValue::Text(_)) => return Err(bad("a number")),
        _ => {
            return Err(format!(
                "model.{path}: not a single value (set one of its fields)"
            ));
        }
    })
}

/// Apply `path = value` to a description (path without the `model.` prefix).
pub fn apply(desc: &ModelDesc, path: &str, value: &AxisValue) -> Result<ModelDesc, String> {
    let mut root = serde_json::to_value(desc).expect("model descriptions serialise");
    let unknown = || {
        format!(
            "unknown model parameter `model.{path}` for model `{}` (valid: {})",
            desc.name(),
            leaf_paths(desc)
                .iter()
                .map(|p| format!("model.{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    {
        let mut cur = body(&mut root);
        for seg in path.split('.') {
            cur = match cur {
                Value::Object(m) => m.get_mut(seg).ok_or_else(unknown)?,
                Value::Array(a) => seg
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get_mut(i))
                    .ok_or_else(unknown)?,
                _ => return Err(unknown()),
            };
        }
        let replaced = new_value(cur, value, path)?;
        *cur = replaced;
    }
    let out: ModelDesc =
        serde_json::from_value(root).map_err(|e| format!("model.{path} = {value}: {e}"))?;
    out.validate()
        .map_err(|e| format!("model.{path} = {value}: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::spikegpt::{Config, WeightsSpec};

    fn tiny() -> ModelDesc {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/spikegpt-tiny.ron"
        ))
        .unwrap();
        crate::error::parse_ron(std::path::Path::new("tiny.ron"), &text).unwrap()
    }

    fn cfg(d: &ModelDesc) -> &Config {
        match d {
            ModelDesc::SpikeGpt(c) => c,
            _ => unreachable!("the fixture is a SpikeGpt model"),
        }
    }

    #[test]
    fn nested_integer_and_float_fields_are_overridden() {
        let d = tiny();
        let d2 = apply(&d, "lif.v_threshold", &AxisValue::Num(0.5)).unwrap();
        assert_eq!(cfg(&d2).lif.v_threshold, 0.5);
        let d3 = apply(&d2, "n_embd", &AxisValue::Num(32.0)).unwrap();
        assert_eq!(cfg(&d3).n_embd, 32);
        assert_eq!(cfg(&d3).lif.v_threshold, 0.5);
        assert_eq!(cfg(&d3).weights, WeightsSpec::Seeded(7));
        let d4 = apply(&d, "variant", &AxisValue::Text("NonSpiking".into())).unwrap();
        assert_eq!(cfg(&d4).variant.name(), "non_spiking");
    }

    #[test]
    fn unknown_paths_and_bad_values_are_explained() {
        let d = tiny();
        let e = apply(&d, "lif.colour", &AxisValue::Num(1.0)).unwrap_err();
        assert!(
            e.contains("model.lif.v_threshold") && e.contains("model.n_layer"),
            "{e}"
        );
        let e = apply(&d, "n_layer", &AxisValue::Num(1.5)).unwrap_err();
        assert!(e.contains("integer"), "{e}");
        let e = apply(&d, "n_layer", &AxisValue::Num(0.0)).unwrap_err();
        assert!(e.contains("n_layer must be"), "{e}");
        assert!(
            apply(&d, "lif", &AxisValue::Num(1.0))
                .unwrap_err()
                .contains("not a single value")
        );
    }
}
