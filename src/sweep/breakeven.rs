//! Break-even: where the energies of two runs cross along one swept axis, by linear
//! interpolation between neighbouring grid points. With several axes, one answer per
//! combination of the other axes' values.

use serde::Serialize;

use super::{BreakevenSpec, SweepMeta, SweepRow, grid_index};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Crossing {
    /// The other axes' values, `path=value` joined by `, ` (empty with one axis).
    pub at: String,
    /// The axis value where E_a = E_b, or None: no crossing in range.
    pub value: Option<f64>,
    /// Which run is cheaper on each side, or which is cheaper throughout.
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakeven {
    pub a: String,
    pub b: String,
    pub axis: String,
    pub crossings: Vec<Crossing>,
    /// Set when the break-even could not be computed (unknown run, non-numeric axis).
    pub error: Option<String>,
}

/// The label of a run named by label or by 1-based number.
fn find_run(labels: &[String], name: &str) -> Option<String> {
    if let Some(l) = labels.iter().find(|l| *l == name) {
        return Some(l.clone());
    }
    name.parse::<usize>()
        .ok()
        .filter(|&i| i >= 1 && i <= labels.len())
        .map(|i| labels[i - 1].clone())
}

/// The first crossing of `d = E_a - E_b` along `xs` (linear interpolation), or None.
pub fn first_crossing(xs: &[f64], d: &[f64]) -> Option<f64> {
    for i in 0..xs.len() {
        if d[i] == 0.0 {
            return Some(xs[i]);
        }
        if i + 1 < xs.len() && (d[i] < 0.0) != (d[i + 1] < 0.0) && d[i + 1] != 0.0 {
            let t = d[i] / (d[i] - d[i + 1]);
            return Some(xs[i] + t * (xs[i + 1] - xs[i]));
        }
    }
    None
}

/// Compute the break-even of a complete, point-sorted sweep.
pub fn breakeven(meta: &SweepMeta, rows: &[SweepRow], spec: &BreakevenSpec) -> Breakeven {
    let ax = match &spec.axis {
        None => Some(0),
        Some(p) => meta.axes.iter().position(|a| &a.path == p),
    };
    let mut out = Breakeven {
        a: spec.a.clone(),
        b: spec.b.clone(),
        axis: String::new(),
        crossings: vec![],
        error: None,
    };
    let Some(ax) = ax.filter(|&i| i < meta.axes.len()) else {
        out.error = Some(format!(
            "axis `{}` is not swept",
            spec.axis.clone().unwrap_or_default()
        ));
        return out;
    };
    out.axis = meta.axes[ax].path.clone();
    let mut labels: Vec<String> = Vec::new();
    for r in rows.iter().take_while(|r| r.point == rows[0].point) {
        labels.push(r.run.clone());
    }
    let (Some(a), Some(b)) = (find_run(&labels, &spec.a), find_run(&labels, &spec.b)) else {
        out.error = Some(format!(
            "runs `{}` and `{}`: each must be a run label or number (runs: {})",
            spec.a,
            spec.b,
            labels.join(", ")
        ));
        return out;
    };
    out.a = a.clone();
    out.b = b.clone();
    let xs_all: Option<Vec<f64>> = meta.axes[ax].values.iter().map(|v| v.as_f64()).collect();
    let Some(xs_all) = xs_all else {
        out.error = Some(format!("axis `{}` is not numeric", out.axis));
        return out;
    };
    let dims: Vec<usize> = meta.axes.iter().map(|a| a.values.len()).collect();
    let energy = |p: usize, run: &str| -> f64 {
        let per = labels.len();
        rows[p * per..(p + 1) * per]
            .iter()
            .find(|r| r.run == run)
            .map(|r| r.energy_pj)
            .unwrap_or(f64::NAN)
    };
    // The series: points whose other indices agree, ordered along the axis.
    let mut series: Vec<(String, Vec<(f64, usize)>)> = Vec::new();
    for p in 0..meta.points {
        let idx = grid_index(&dims, meta.zip, p);
        let key: Vec<String> = if meta.zip {
            vec![]
        } else {
            meta.axes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != ax)
                .map(|(i, a)| format!("{}={}", a.path, a.values[idx[i]]))
                .collect()
        };
        let key = key.join(", ");
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, s)) => s.push((xs_all[idx[ax]], p)),
            None => series.push((key, vec![(xs_all[idx[ax]], p)])),
        }
    }
    for (at, mut s) in series {
        s.sort_by(|x, y| x.0.total_cmp(&y.0));
        let xs: Vec<f64> = s.iter().map(|(x, _)| *x).collect();
        let d: Vec<f64> = s
            .iter()
            .map(|&(_, p)| energy(p, &a) - energy(p, &b))
            .collect();
        let value = first_crossing(&xs, &d);
        let cheaper = |v: f64| if v < 0.0 { a.as_str() } else { b.as_str() };
        let note = match value {
            Some(x) => {
                let below = d.iter().find(|v| **v != 0.0).copied().unwrap_or(0.0);
                let above = d.iter().rev().find(|v| **v != 0.0).copied().unwrap_or(0.0);
                format!(
                    "{} cheaper below {}, {} cheaper above",
                    cheaper(below),
                    fmt_x(x),
                    cheaper(above)
                )
            }
            None if d.iter().all(|v| *v < 0.0) => {
                format!("no crossing in range: {a} cheaper throughout")
            }
            None if d.iter().all(|v| *v > 0.0) => {
                format!("no crossing in range: {b} cheaper throughout")
            }
            None => "no crossing in range".to_string(),
        };
        out.crossings.push(Crossing { at, value, note });
    }
    out
}

pub fn fmt_x(x: f64) -> String {
    format!("{}", super::axis::round12(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_is_linearly_interpolated() {
        // E_a = 10 x, E_b = 4 + 2 x: cross at x = 0.5.
        let xs = [0.0, 0.25, 0.75, 1.0];
        let d: Vec<f64> = xs.iter().map(|x| 10.0 * x - (4.0 + 2.0 * x)).collect();
        assert!((first_crossing(&xs, &d).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(first_crossing(&[0.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(
            first_crossing(&[0.0, 1.0, 2.0], &[-1.0, 0.0, 1.0]),
            Some(1.0)
        );
    }
}
