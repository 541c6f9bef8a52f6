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
    pub energy_pj_per_token: f64,
    pub compute_pj_per_token: f64,
    pub memory_pj_per_token: f64,
    /// Memory as compulsory traffic and as no reuse (the estimate above lies between).
    pub memory_pj_per_token_lower: f64,
    pub memory_pj_per_token_upper: f64,
    /// Distinct actions with no price (energy is then a lower bound).
    pub unpriced_actions: usize,
    /// Distinct actions the cost model excludes by its convention.
    pub excluded_actions: usize,
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
    pub scenario: String,
    pub tokens: usize,
    pub hardware: Vec<(String, String)>,
    pub rows: Vec<CompareRow>,
    pub verdicts: Vec<Verdict>,
}

pub fn compare(sc: &LoadedScenario, outputs: &[RunOutput], hws: &[Hardware]) -> Comparison {
    let mut rows = vec![];
    let mut verdicts = vec![];
    for hw in hws {
        let mut these = vec![];
        for o in outputs {
            let p = price(&o.ledger, &hw.model);
            let kind = |k: &str| {
                p.by_kind
                    .iter()
                    .filter(|(n, _)| n == k)
                    .map(|(_, v)| *v)
                    .sum::<f64>()
            };
            let per = o.tokens.max(1) as f64;
            these.push(CompareRow {
                run: o.label.clone(),
                hardware: hw.model.name.clone(),
                energy_pj: p.energy_pj,
                energy_pj_per_token: p.energy_pj / per,
                compute_pj_per_token: (kind("compute")
                    + kind("nonlinear")
                    + kind("neuron")
                    + kind("metric"))
                    / per,
                memory_pj_per_token: kind("memory") / per,
                memory_pj_per_token_lower: p.memory_range.lower_pj / per,
                memory_pj_per_token_upper: p.memory_range.upper_pj / per,
                unpriced_actions: p.unpriced.iter().filter(|u| !u.excluded).count(),
                excluded_actions: p.unpriced.iter().filter(|u| u.excluded).count(),
            });
        }
        let mut order: Vec<&CompareRow> = these.iter().collect();
        order.sort_by(|a, b| a.energy_pj_per_token.total_cmp(&b.energy_pj_per_token));
        if let Some(best) = order.first() {
            verdicts.push(Verdict {
                hardware: hw.model.name.clone(),
                winner: best.run.clone(),
                runner_up: order.get(1).map(|r| r.run.clone()),
                factor: order
                    .get(1)
                    .filter(|_| best.energy_pj_per_token > 0.0)
                    .map(|r| r.energy_pj_per_token / best.energy_pj_per_token),
                lower_bound: order.iter().any(|r| r.unpriced_actions > 0),
            });
        }
        rows.extend(these);
    }
    Comparison {
        scenario: sc.scenario.name.clone(),
        tokens: sc.scenario.tokens,
        hardware: hws
            .iter()
            .map(|h| (h.model.name.clone(), h.model.description.clone()))
            .collect(),
        rows,
        verdicts,
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
        "unpriced",
        "excluded",
    ]);
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
        "scenario {} ({} tokens, or samples for classifiers, per run), priced under {} cost models\n",
        c.scenario,
        c.tokens,
        c.hardware.len()
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
    out
}

pub fn render_markdown(c: &Comparison) -> String {
    let mut out = format!("# picojoule comparison: {}\n\n", c.scenario);
    for (n, d) in &c.hardware {
        out += &format!("- `{n}`: {d}\n");
    }
    out += "\n";
    out += &table(c).markdown();
    out += "\n";
    for l in verdict_lines(c) {
        out += &format!("- {l}\n");
    }
    out
}

pub fn render_csv(c: &Comparison) -> String {
    let mut out = String::from(
        "run,hardware,energy_pj,energy_pj_per_token,compute_pj_per_token,memory_pj_per_token,memory_pj_per_token_lower,memory_pj_per_token_upper,unpriced_actions,excluded_actions\n",
    );
    for r in &c.rows {
        let q = |s: &str| {
            if s.contains([',', '"']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        out += &format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            q(&r.run),
            q(&r.hardware),
            r.energy_pj,
            r.energy_pj_per_token,
            r.compute_pj_per_token,
            r.memory_pj_per_token,
            r.memory_pj_per_token_lower,
            r.memory_pj_per_token_upper,
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
