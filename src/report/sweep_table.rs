//! Sweep tables: one row per point and run, as aligned text, Markdown, CSV and JSON. Pure
//! functions of a `SweepResult`, so merged shards render byte for byte as a single run.

use super::csv_field;
use super::table::{Table, count, num};

use crate::hardware::compiled::KINDS;
use crate::sweep::{SweepResult, SweepRow};

/// Which optional columns a table has (decided once, from all rows).
#[derive(Clone, Copy)]
struct Cols {
    metric: bool,
    accuracy: bool,
    samples: bool,
    view: bool,
}

fn cols(res: &SweepResult) -> Cols {
    Cols {
        view: res.meta.view.is_some(),
        metric: res.rows.iter().any(|r| r.by_kind[3] != 0.0),
        accuracy: res.rows.iter().any(|r| r.top1.is_some()),
        samples: res.meta.samples > 0,
    }
}

/// Column names (CSV spelling).
fn headers(res: &SweepResult, cols: Cols) -> Vec<String> {
    let mut h: Vec<String> = vec!["point".into()];
    h.extend(res.meta.axes.iter().map(|a| a.path.clone()));
    h.extend(
        [
            "run",
            "tokens",
            "mac",
            "ac",
            "synops",
            "spikes",
            "energy_pj",
            "energy_pj_per_token",
        ]
        .map(String::from),
    );
    for (i, k) in KINDS.iter().enumerate() {
        if i != 3 || cols.metric {
            h.push(format!("{k}_pj"));
        }
    }
    if cols.samples {
        h.extend(["energy_pj_p05", "energy_pj_p50", "energy_pj_p95"].map(String::from));
    }
    if cols.accuracy {
        h.extend(["top1", "bits_per_token"].map(String::from));
    }
    h.push("unpriced".into());
    if cols.view {
        h.extend(["view_mul", "view_add", "view_energy_pj"].map(String::from));
    }
    h
}

/// The cells of a row; `f` formats floats, `c` counts.
fn cells(
    cols: Cols,
    r: &SweepRow,
    f: &dyn Fn(f64) -> String,
    c: &dyn Fn(u64) -> String,
) -> Vec<String> {
    let mut v: Vec<String> = vec![r.point.to_string()];
    v.extend(r.values.iter().map(|x| x.to_string()));
    v.push(r.run.clone());
    v.push(r.tokens.to_string());
    v.extend([r.mac, r.ac, r.synops, r.spikes].map(c));
    v.push(f(r.energy_pj));
    v.push(f(r.energy_pj / r.tokens.max(1) as f64));
    for i in 0..KINDS.len() {
        if i != 3 || cols.metric {
            v.push(f(r.by_kind[i]));
        }
    }
    if cols.samples {
        match r.mc {
            Some(m) => v.extend([m.p05, m.p50, m.p95].map(f)),
            None => v.extend(["".to_string(), "".to_string(), "".to_string()]),
        }
    }
    if cols.accuracy {
        v.push(r.top1.map(f).unwrap_or_default());
        v.push(r.bits_per_token.map(f).unwrap_or_default());
    }
    v.push(r.unpriced.to_string());
    if cols.view {
        match r.view.flatten() {
            Some(w) => {
                v.extend([c(w.mul), c(w.add)]);
                v.push(f(w.energy_pj));
            }
            None => v.extend(["n/a", "n/a", "n/a"].map(String::from)),
        }
    }
    v
}

pub(crate) fn header_lines(res: &SweepResult) -> Vec<String> {
    let m = &res.meta;
    let mut out = vec![
        format!(
            "sweep of scenario {} ({}, {} tokens), picojoule {}",
            m.scenario, m.input, m.tokens, m.picojoule_version
        ),
        format!(
            "hardware {}, sha256 prefix {}",
            m.hardware,
            &m.hardware_sha256[..16.min(m.hardware_sha256.len())]
        ),
        format!("convention {}", m.convention),
    ];
    if let Some(v) = &m.view {
        let description = v
            .convention
            .parse::<crate::convention::Convention>()
            .map(|c| c.description().to_string())
            .unwrap_or_else(|_| v.convention.clone());
        out.push(format!(
            "view {description}: view_mul, view_add and view_energy_pj (priced with {}) beside the full accounting; n/a: the convention does not apply to the run",
            v.hardware
        ));
    }
    let axes: Vec<String> = m
        .axes
        .iter()
        .map(|a| format!("{} ({}, {} values)", a.path, a.kind, a.values.len()))
        .collect();
    out.push(format!(
        "grid {} points{}: {}",
        m.points,
        if m.zip { " (zipped)" } else { "" },
        axes.join(" x ")
    ));
    if m.samples > 0 {
        out.push(format!(
            "uncertainty: {} Monte Carlo samples per point (seed {}): median and 5-95% interval",
            m.samples, m.seed
        ));
    }
    if let Some((k, n)) = res.shard {
        out.push(format!(
            "shard {k}/{n}: this folder holds {} of {} points; `picojoule merge` joins the shards",
            res.rows
                .iter()
                .map(|r| r.point)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            m.points
        ));
    }
    out
}

pub(crate) fn breakeven_lines(res: &SweepResult) -> Vec<String> {
    let Some(b) = &res.breakeven else {
        return if res.meta.breakeven.is_some() {
            vec!["break-even: needs the whole grid (merge the shards)".into()]
        } else {
            vec![]
        };
    };
    if let Some(e) = &b.error {
        return vec![format!("break-even: {e}")];
    }
    b.crossings
        .iter()
        .map(|c| {
            let at = if c.at.is_empty() {
                String::new()
            } else {
                format!(" at {}", c.at)
            };
            match c.value {
                Some(x) => format!(
                    "break-even {} vs {}{}: {} = {} ({})",
                    b.a,
                    b.b,
                    at,
                    b.axis,
                    crate::sweep::breakeven::fmt_x(x),
                    c.note
                ),
                None => format!(
                    "break-even {} vs {}{} along {}: {}",
                    b.a, b.b, at, b.axis, c.note
                ),
            }
        })
        .collect()
}

pub(crate) fn table(res: &SweepResult) -> Table {
    let k = cols(res);
    let h = headers(res, k);
    let mut t = Table::new(&h.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    for r in &res.rows {
        t.push(cells(k, r, &num, &count));
    }
    t
}

pub fn render_text(res: &SweepResult) -> String {
    let mut out = header_lines(res).join("\n") + "\n\n";
    out += &table(res).text();
    let be = breakeven_lines(res);
    if !be.is_empty() {
        out += "\n";
        out += &be.join("\n");
        out += "\n";
    }
    out
}

pub fn render_markdown(res: &SweepResult) -> String {
    let mut out = format!("# picojoule sweep: {}\n\n", res.meta.scenario);
    out += &header_lines(res)
        .iter()
        .map(|l| format!("- {l}\n"))
        .collect::<String>();
    out += "\n";
    out += &table(res).markdown();
    let be = breakeven_lines(res);
    if !be.is_empty() {
        out += "\n## Break-even\n\n";
        out += &be.iter().map(|l| format!("- {l}\n")).collect::<String>();
    }
    out
}

/// Full precision (shortest round-trip) numbers, one row per point and run.
pub fn render_csv(res: &SweepResult) -> String {
    let k = cols(res);
    let mut out = headers(res, k)
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in &res.rows {
        let c = cells(k, r, &|v| format!("{v}"), &|v| v.to_string());
        out += &(c.iter().map(|s| csv_field(s)).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

/// The sweep as JSON: `schema_version` first, then the result's fields, with the conventions
/// as identifier and description.
pub fn render_json(res: &SweepResult) -> String {
    use crate::sweep::{MetaAxis, SweepMeta};
    /// `SweepMeta` as written in sweep.json.
    #[derive(serde::Serialize)]
    struct Meta<'a> {
        picojoule_version: &'a str,
        scenario: &'a str,
        scenario_sha256: &'a str,
        input: &'a str,
        seed: u64,
        tokens: usize,
        hardware: &'a str,
        hardware_sha256: &'a str,
        convention: super::ConventionInfo,
        #[serde(skip_serializing_if = "Option::is_none")]
        view: Option<super::ViewInfo>,
        axes: &'a [MetaAxis],
        zip: bool,
        points: usize,
        samples: usize,
        breakeven: &'a Option<crate::sweep::BreakevenSpec>,
    }
    #[derive(serde::Serialize)]
    struct Versioned<'a> {
        schema_version: u32,
        meta: Meta<'a>,
        shard: Option<(usize, usize)>,
        rows: &'a [SweepRow],
        breakeven: &'a Option<crate::sweep::breakeven::Breakeven>,
    }
    let m: &SweepMeta = &res.meta;
    let v = Versioned {
        schema_version: super::SCHEMA_VERSION,
        meta: Meta {
            picojoule_version: &m.picojoule_version,
            scenario: &m.scenario,
            scenario_sha256: &m.scenario_sha256,
            input: &m.input,
            seed: m.seed,
            tokens: m.tokens,
            hardware: &m.hardware,
            hardware_sha256: &m.hardware_sha256,
            convention: super::ConventionInfo {
                id: crate::convention::Convention::Full.name().into(),
                description: m.convention.clone(),
            },
            view: m.view.as_ref().map(|v| super::ViewInfo {
                convention: v.convention.clone(),
                description: v
                    .convention
                    .parse::<crate::convention::Convention>()
                    .map(|c| c.description().to_string())
                    .unwrap_or_default(),
                hardware: v.hardware.clone(),
            }),
            axes: &m.axes,
            zip: m.zip,
            points: m.points,
            samples: m.samples,
            breakeven: &m.breakeven,
        },
        shard: res.shard,
        rows: &res.rows,
        breakeven: &res.breakeven,
    };
    serde_json::to_string_pretty(&v).expect("sweep results serialise") + "\n"
}

/// The report in one of the text formats.
pub fn render(x: &SweepResult, format: super::Format) -> String {
    match format {
        super::Format::Table => render_text(x),
        super::Format::Csv => render_csv(x),
        super::Format::Md => render_markdown(x),
        super::Format::Json => render_json(x),
    }
}
