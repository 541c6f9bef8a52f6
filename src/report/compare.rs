//! One execution, several cost models: the same ledgers priced under each, and which run wins
//! under each by what factor (e.g. the paper-style compute-only accounting against the full
//! memory-aware one). Re-pricing never re-runs the models.

use serde::Serialize;

use super::table::{Table, num};
use crate::exec::RunOutput;
use crate::hardware::{Hardware, price};
use crate::scenario::LoadedScenario;

#[derive(Clone, Debug, Serialize)]
pub struct CompareRow {
    pub run: String,
    pub hardware: String,
    pub energy_pj: f64,
    /// Per token, or per sample for classifiers.
    pub energy_pj_per_token: f64,
    /// Compute energy (`report::COMPUTE_DEFINITION`: every priced action but memory traffic,
    /// neuron updates included).
    pub compute_pj_per_token: f64,
    pub memory_pj_per_token: f64,
    /// Memory as compulsory traffic and as no reuse (the estimate above lies between).
    pub memory_pj_per_token_lower: f64,
    pub memory_pj_per_token_upper: f64,
    /// Distinct actions with no price (energy is then a lower bound).
    pub unpriced_actions: usize,
    /// Distinct actions the cost model excludes by its convention.
    pub excluded_actions: usize,
    /// Bits per character of a language model run on text with targets (the same under every
    /// cost model: accuracy does not depend on pricing).
    pub bits_per_char: Option<f64>,
    /// Top-1 accuracy (next token, or class for classifiers) when the input has targets.
    pub top1: Option<f64>,
    /// The counting convention of a row that prices a convention's (mul, add) view rather than
    /// the full ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub convention: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub hardware: String,
    pub winner: String,
    pub runner_up: Option<String>,
    /// Energy of the runner-up over the winner's.
    pub factor: Option<f64>,
    /// Some compared run has work without a price: its energy is a lower bound, and so may be
    /// the verdict.
    pub lower_bound: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// `report::SCHEMA_VERSION`.
    pub schema_version: u32,
    pub scenario: String,
    pub tokens: usize,
    pub hardware: Vec<(String, String)>,
    pub rows: Vec<CompareRow>,
    pub verdicts: Vec<Verdict>,
    /// The convention shown beside the full accounting, when one is chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<super::ViewInfo>,
    /// Runs the view's convention does not describe, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applicable: Vec<(String, String)>,
}

/// Add the runs under `convention` (priced with `hw`) as rows of their own, with their own
/// verdict, beside the full accounting's rows.
pub fn add_view(
    c: &mut Comparison,
    convention: crate::convention::Convention,
    outputs: &[RunOutput],
    hw: &Hardware,
) {
    if convention == crate::convention::Convention::Full {
        return;
    }
    let label = format!("{} under {}", hw.model.name, convention.name());
    let mut these = vec![];
    for o in outputs {
        let v = super::convention_view(convention, o, hw);
        match v.counts {
            None => c
                .not_applicable
                .push((o.label.clone(), v.not_applicable.unwrap_or_default())),
            Some(counts) => these.push(CompareRow {
                run: o.label.clone(),
                hardware: label.clone(),
                energy_pj: counts.energy_pj,
                energy_pj_per_token: counts.energy_pj_per_token,
                compute_pj_per_token: counts.energy_pj_per_token,
                memory_pj_per_token: 0.0,
                memory_pj_per_token_lower: 0.0,
                memory_pj_per_token_upper: 0.0,
                unpriced_actions: 0,
                excluded_actions: 0,
                bits_per_char: o.accuracy.as_ref().and_then(|a| a.bits_per_token),
                top1: o.accuracy.as_ref().map(|a| a.top1),
                convention: Some(convention.name().into()),
            }),
        }
    }
    if let Some(v) = verdict(&label, &these) {
        c.verdicts.push(v);
    }
    c.rows.extend(these);
    c.hardware.push((
        label,
        format!(
            "{}; priced with {}",
            convention.description(),
            hw.model.name
        ),
    ));
    c.view = Some(super::ViewInfo {
        convention: convention.name().into(),
        description: convention.description().into(),
        hardware: hw.model.name.clone(),
    });
}

/// Which of `rows` (one cost model's) uses the least energy per token, and by what factor.
fn verdict(hardware: &str, rows: &[CompareRow]) -> Option<Verdict> {
    let mut order: Vec<&CompareRow> = rows.iter().collect();
    order.sort_by(|a, b| a.energy_pj_per_token.total_cmp(&b.energy_pj_per_token));
    let best = order.first()?;
    Some(Verdict {
        hardware: hardware.to_string(),
        winner: best.run.clone(),
        runner_up: order.get(1).map(|r| r.run.clone()),
        factor: order
            .get(1)
            .filter(|_| best.energy_pj_per_token > 0.0)
            .map(|r| r.energy_pj_per_token / best.energy_pj_per_token),
        lower_bound: order.iter().any(|r| r.unpriced_actions > 0),
    })
}

pub fn compare(sc: &LoadedScenario, outputs: &[RunOutput], hws: &[Hardware]) -> Comparison {
    let mut rows = vec![];
    let mut verdicts = vec![];
    for hw in hws {
        let mut these = vec![];
        for o in outputs {
            let p = price(&o.ledger, &hw.model);
            let memory: f64 = p
                .by_kind
                .iter()
                .filter(|(n, _)| n == "memory")
                .map(|(_, v)| *v)
                .sum();
            let compute = super::compute_energy(p.by_kind.iter().map(|(k, v)| (k.as_str(), *v)));
            let per = o.tokens.max(1) as f64;
            these.push(CompareRow {
                run: o.label.clone(),
                hardware: hw.model.name.clone(),
                energy_pj: p.energy_pj,
                energy_pj_per_token: p.energy_pj / per,
                compute_pj_per_token: compute / per,
                memory_pj_per_token: memory / per,
                memory_pj_per_token_lower: p.memory_range.lower_pj / per,
                memory_pj_per_token_upper: p.memory_range.upper_pj / per,
                unpriced_actions: p.unpriced.iter().filter(|u| !u.excluded).count(),
                excluded_actions: p.unpriced.iter().filter(|u| u.excluded).count(),
                bits_per_char: o.accuracy.as_ref().and_then(|a| a.bits_per_token),
                top1: o.accuracy.as_ref().map(|a| a.top1),
                convention: None,
            });
        }
        if let Some(v) = verdict(&hw.model.name, &these) {
            verdicts.push(v);
        }
        rows.extend(these);
    }
    Comparison {
        schema_version: super::SCHEMA_VERSION,
        scenario: sc.scenario.name.clone(),
        tokens: sc.scenario.tokens,
        hardware: hws
            .iter()
            .map(|h| (h.model.name.clone(), h.model.description.clone()))
            .collect(),
        rows,
        verdicts,
        view: None,
        not_applicable: Vec::new(),
    }
}

pub(crate) fn table(c: &Comparison) -> Table {
    let mut t = Table::new(&[
        "run",
        "hardware",
        "pJ/token",
        "compute pJ/tok",
        "memory pJ/tok",
        "memory range",
        "bits/char",
        "top-1",
        "unpriced",
        "excluded",
    ]);
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
    for r in &c.rows {
        t.push(vec![
            r.run.clone(),
            r.hardware.clone(),
            num(r.energy_pj_per_token),
            num(r.compute_pj_per_token),
            num(r.memory_pj_per_token),
            format!(
                "{}..{}",
                num(r.memory_pj_per_token_lower),
                num(r.memory_pj_per_token_upper)
            ),
            opt(r.bits_per_char, &|b| format!("{b:.3}")),
            opt(r.top1, &|t| format!("{:.1}%", 100.0 * t)),
            r.unpriced_actions.to_string(),
            r.excluded_actions.to_string(),
        ]);
    }
    t
}

pub(crate) fn verdict_lines(c: &Comparison) -> Vec<String> {
    c.verdicts
        .iter()
        .map(|v| {
            let caveat = if v.lower_bound {
                " (lower bounds: some work has no price in this cost model)"
            } else {
                ""
            };
            match (&v.runner_up, v.factor) {
                (Some(r), Some(f)) => format!(
                    "{}: {} wins, {:.2}x less energy per token than {}{caveat}",
                    v.hardware, v.winner, f, r
                ),
                (Some(r), None) => format!(
                    "{}: no factor: {} has no priced energy (versus {r}){caveat}",
                    v.hardware, v.winner
                ),
                _ => format!("{}: {} (only run){caveat}", v.hardware, v.winner),
            }
        })
        .collect()
}

pub fn render_text(c: &Comparison) -> String {
    let mut out = format!(
        "scenario {} ({} tokens, or samples for classifiers, per run), priced under {} cost models\n{}; accuracy does not depend on the cost model\n",
        c.scenario,
        c.tokens,
        c.hardware.len(),
        super::COMPUTE_DEFINITION
    );
    for (n, d) in &c.hardware {
        out += &format!("  {n}: {d}\n");
    }
    out += "\n";
    out += &table(c).text();
    out += "\n";
    for l in verdict_lines(c) {
        out += &l;
        out += "\n";
    }
    for (run, why) in &c.not_applicable {
        out += &format!("{run}: not applicable: {why}\n");
    }
    out
}

pub fn render_markdown(c: &Comparison) -> String {
    let mut out = format!(
        "# picojoule comparison: {}\n\n{}; accuracy does not depend on the cost model\n\n",
        c.scenario,
        super::COMPUTE_DEFINITION
    );
    for (n, d) in &c.hardware {
        out += &format!("- `{n}`: {d}\n");
    }
    out += "\n";
    out += &table(c).markdown();
    out += "\n";
    for l in verdict_lines(c) {
        out += &format!("- {l}\n");
    }
    for (run, why) in &c.not_applicable {
        out += &format!("- {run}: not applicable: {why}\n");
    }
    out
}

pub fn render_csv(c: &Comparison) -> String {
    let mut out = String::from(
        "run,hardware,energy_pj,energy_pj_per_token,compute_pj_per_token,memory_pj_per_token,memory_pj_per_token_lower,memory_pj_per_token_upper,bits_per_char,top1,unpriced_actions,excluded_actions\n",
    );
    for r in &c.rows {
        let q = |s: &str| {
            if s.contains([',', '"']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        out += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            q(&r.run),
            q(&r.hardware),
            r.energy_pj,
            r.energy_pj_per_token,
            r.compute_pj_per_token,
            r.memory_pj_per_token,
            r.memory_pj_per_token_lower,
            r.memory_pj_per_token_upper,
            opt(r.bits_per_char),
            opt(r.top1),
            r.unpriced_actions,
            r.excluded_actions
        );
    }
    out
}

pub fn render_json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).expect("comparison serialises") + "\n"
}

/// The report in one of the text formats.
pub fn render(x: &Comparison, format: super::Format) -> String {
    match format {
        super::Format::Table => render_text(x),
        super::Format::Csv => render_csv(x),
        super::Format::Md => render_markdown(x),
        super::Format::Json => render_json(x),
    }
}
