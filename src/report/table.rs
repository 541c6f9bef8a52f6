//! Rendering reports as terminal tables, Markdown, CSV and JSON.

use super::Report;
use super::csv_field;

/// A simple table of strings, rendered as aligned text or Markdown.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows: vec![],
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        w
    }

    /// Aligned text: first column left-aligned, the others right-aligned.
    pub fn text(&self) -> String {
        let w = self.widths();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        format!("{c:<width$}", width = w[i])
                    } else {
                        format!("{c:>width$}", width = w[i])
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.headers) + "\n";
        out += &(w
            .iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("  ")
            + "\n");
        for r in &self.rows {
            out += &(line(r) + "\n");
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.headers.join(" | "));
        out += &format!(
            "|{}\n",
            self.headers
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                .collect::<String>()
        );
        for r in &self.rows {
            out += &format!("| {} |\n", r.join(" | "));
        }
        out
    }
}

/// Engineering notation with 4 significant digits: 1.234e6 -> "1.234e6", small integers plain.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        // trim trailing zeros of the fraction only (8590 stays 8590)
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            s.as_str()
        };
        return s.to_string();
    }
    let e = a.log10().floor() as i32;
    format!("{:.3}e{e}", v / 10f64.powi(e))
}

pub fn count(v: u64) -> String {
    if v < 100_000 {
        v.to_string()
    } else {
        num(v as f64)
    }
}

pub(crate) fn summary_table(r: &Report) -> Table {
    let mut t = Table::new(&[
        "run",
        "tokens",
        "MAC",
        "AC",
        "L-Mul",
        "synops",
        "spikes",
        "fire rate",
        "energy pJ",
        "pJ/token",
        "compute pJ/tok",
        "memory pJ/tok",
        "memory range",
        "bits/char",
        "top-1",
        "top-1 vs fp32",
        "x baseline",
        "unpriced",
    ]);
    for run in &r.runs {
        t.push(vec![
            run.label.clone(),
            run.tokens.to_string(),
            count(run.totals.mac),
            count(run.totals.ac),
            count(run.totals.lmul),
            count(run.totals.synops),
            count(run.totals.spikes),
            run.mean_firing_rate
                .map(|f| format!("{:.2}%", 100.0 * f))
                .unwrap_or_else(|| "-".into()),
            num(run.totals.energy_pj),
            num(run.totals.energy_pj_per_token),
            num(run.totals.compute_pj / run.tokens.max(1) as f64),
            num(run.totals.memory_pj / run.tokens.max(1) as f64),
            format!(
                "{}..{}",
                num(run.memory_range.lower_pj_per_token),
                num(run.memory_range.upper_pj_per_token)
            ),
            run.accuracy
                .as_ref()
                .and_then(|a| a.bits_per_token)
                .map(|b| format!("{b:.3}"))
                .unwrap_or_else(|| "-".into()),
            run.accuracy
                .as_ref()
                .map(top1_cell)
                .unwrap_or_else(|| "-".into()),
            run.fidelity
                .as_ref()
                .map(|f| format!("{:.1}%", 100.0 * f.top1_agreement))
                .unwrap_or_else(|| "-".into()),
            run.energy_ratio_to_baseline
                .map(|r| format!("{r:.3}"))
                .unwrap_or_else(|| "-".into()),
            run.totals.unpriced_actions.to_string(),
        ]);
    }
    for r in &r.references {
        let mut row = vec![format!("{} (reference)", r.label), r.tokens.to_string()];
        row.extend(std::iter::repeat_n("-".to_string(), 11));
        row.push(
            r.accuracy
                .bits_per_token
                .map(|b| format!("{b:.3}"))
                .unwrap_or_else(|| "-".into()),
        );
        row.push(top1_cell(&r.accuracy));
        row.extend(std::iter::repeat_n("-".to_string(), 3));
        t.push(row);
    }
    t
}

/// Top-1 with its 95% interval when it has one.
fn top1_cell(a: &crate::exec::Accuracy) -> String {
    match a.top1_ci95 {
        Some((lo, hi)) => format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * a.top1,
            100.0 * lo,
            100.0 * hi
        ),
        None => format!("{:.1}%", 100.0 * a.top1),
    }
}

/// One row per group of runs (one model trained with several seeds): mean, sample standard
/// deviation and range of accuracy and energy.
pub(crate) fn group_table(r: &Report) -> Option<Table> {
    if r.groups.is_empty() {
        return None;
    }
    let spread = |s: &super::Spread, scale: f64, digits: usize| {
        format!(
            "{:.d$} ± {:.d$} [{:.d$}, {:.d$}]",
            scale * s.mean,
            scale * s.sd,
            scale * s.min,
            scale * s.max,
            d = digits
        )
    };
    let mut t = Table::new(&[
        "group",
        "runs",
        "bits/char mean ± sd [min, max]",
        "top-1 % mean ± sd [min, max]",
        "pJ/token mean ± sd [min, max]",
    ]);
    for g in &r.groups {
        let e = &g.energy_pj_per_token;
        t.push(vec![
            g.group.clone(),
            g.runs.len().to_string(),
            g.bits_per_token
                .as_ref()
                .map(|s| spread(s, 1.0, 3))
                .unwrap_or_else(|| "-".into()),
            g.top1
                .as_ref()
                .map(|s| spread(s, 100.0, 1))
                .unwrap_or_else(|| "-".into()),
            format!(
                "{} ± {} [{}, {}]",
                num(e.mean),
                num(e.sd),
                num(e.min),
                num(e.max)
            ),
        ]);
    }
    Some(t)
}

/// One row per compared pair: groups judged by the same accuracy on the same input, and each
/// group against each reference of its kind.
pub(crate) fn difference_table(r: &Report) -> Option<Table> {
    if r.group_differences.is_empty() {
        return None;
    }
    let mut t = Table::new(&[
        "a",
        "b",
        "a - b",
        "spreads",
        "Welch t (df)",
        "p",
        "energy a / b",
    ]);
    for d in &r.group_differences {
        let diff = match d.metric {
            super::Metric::Top1 => format!("{:+.1} top-1 points", 100.0 * d.difference),
            super::Metric::BitsPerToken => format!("{:+.3} bits/token", d.difference),
        };
        let b = if d.b_is_reference {
            format!("{} (reference)", d.b)
        } else {
            d.b.clone()
        };
        t.push(vec![
            d.a.clone(),
            b,
            diff,
            d.spreads.map_or("-".into(), |s| format!("{s:.1}")),
            d.welch
                .map_or("-".into(), |w| format!("{:.2} ({:.1})", w.t, w.df)),
            d.welch.map_or("-".into(), |w| {
                if w.p_two_sided < 0.001 {
                    "< 0.001".into()
                } else {
                    format!("{:.3}", w.p_two_sided)
                }
            }),
            d.energy_ratio.map_or("-".into(), |e| format!("{e:.3}")),
        ]);
    }
    Some(t)
}

/// What the difference table's columns mean.
pub(crate) const DIFFERENCE_NOTE: &str = "a - b: difference of the group means; spreads: |a - b| over the larger sample standard deviation of the two (a reference has none); Welch's t-test treats the groups as independent samples of training seeds, p two-sided; energy: ratio of the mean energies per token";

fn header(r: &Report) -> String {
    format!(
        "scenario {} ({}), picojoule {}\nhardware {} [{}], sha256 prefix {}\nconvention {}\nmemory {}\n{}\n",
        r.scenario.name,
        r.scenario.input,
        r.picojoule_version,
        r.hardware.name,
        r.hardware.origin,
        &r.hardware.sha256[..16.min(r.hardware.sha256.len())],
        r.convention.description,
        super::MEMORY_MODEL,
        r.compute
    )
}

/// Why a run shows MAC 0: its arithmetic counts each product and its accumulation as a mul and
/// an add. None when every run with multiplies counts them as MACs.
pub(crate) fn mac_note(r: &Report) -> Option<String> {
    let split: Vec<String> = r
        .runs
        .iter()
        .filter(|run| run.totals.mac == 0 && run.totals.mul > 0)
        .map(|run| {
            format!(
                "{} (mul {}, add {})",
                run.label,
                count(run.totals.mul),
                count(run.totals.add)
            )
        })
        .collect();
    (!split.is_empty()).then(|| {
        format!(
            "MAC counts fused multiply-accumulates; these runs count each product and its accumulation as a separate mul and add, so their MAC is 0 (mul and add in the JSON report and in --rows runs): {}",
            split.join(", ")
        )
    })
}

/// The runs under the report's view convention, beside their full energy; None without a view.
fn view_table(r: &Report) -> Option<(String, Table, Vec<String>)> {
    let v = r.view.as_ref()?;
    let mut notes = Vec::new();
    let mut t = Table::new(&[
        "run",
        "#Mul",
        "#Add",
        "energy pJ",
        "pJ/token",
        "full pJ/token",
        "full / view",
    ]);
    for run in &r.runs {
        let Some(view) = &run.under_convention else {
            continue;
        };
        let full = run.totals.energy_pj_per_token;
        match (&view.counts, &view.not_applicable) {
            (Some(c), _) => t.push(vec![
                run.label.clone(),
                count(c.mul),
                count(c.add),
                num(c.energy_pj),
                num(c.energy_pj_per_token),
                num(full),
                if c.energy_pj_per_token > 0.0 {
                    format!("{:.2}", full / c.energy_pj_per_token)
                } else {
                    "-".into()
                },
            ]),
            (None, why) => {
                notes.push(format!(
                    "{}: not applicable: {}",
                    run.label,
                    why.as_deref().unwrap_or("no counts")
                ));
                t.push(vec![
                    run.label.clone(),
                    "not applicable".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    num(full),
                    "-".into(),
                ]);
            }
        }
    }
    let title = format!(
        "under {}; priced with {}. The full accounting above is unchanged (full pJ/token on {}).",
        v.description, v.hardware, r.hardware.name
    );
    Some((title, t, notes))
}

/// What the reference rows are: fitted on which split, and that they are not priced.
fn reference_note(r: &Report) -> String {
    let mut out = String::from(
        "Reference rows are accuracy baselines scored by picojoule on the same data; they are not priced (no energy):\n",
    );
    for x in &r.references {
        let what = if x.label == x.description {
            x.label.clone()
        } else {
            format!("{}: {}", x.label, x.description)
        };
        out += &format!(
            "- {what}, fitted on {}, {} predictions\n",
            x.train, x.accuracy.predictions
        );
    }
    out
}

pub(crate) fn unpriced_notes(r: &Report) -> String {
    let mut out = String::new();
    for run in &r.runs {
        let unplaced = |u: &&crate::hardware::Unpriced| u.reason.starts_with("no memory level");
        let missing: Vec<String> = run
            .unpriced
            .iter()
            .filter(|u| !u.excluded && !unplaced(u))
            .map(|u| format!("{} x{}", u.action, count(u.count)))
            .collect();
        for u in run.unpriced.iter().filter(unplaced) {
            out += &format!(
                "{}: unpriced (energy is a lower bound): {} x{}: {}\n",
                run.label,
                u.action,
                count(u.count),
                u.reason
            );
        }
        let excluded: Vec<String> = run
            .unpriced
            .iter()
            .filter(|u| u.excluded)
            .map(|u| format!("{} x{}", u.action, count(u.count)))
            .collect();
        if !missing.is_empty() {
            out += &format!(
                "{}: unpriced (no price in {}; energy is a lower bound): {}\n",
                run.label,
                r.hardware.name,
                missing.join(", ")
            );
        }
        if !excluded.is_empty() {
            out += &format!(
                "{}: excluded by {}'s convention: {}\n",
                run.label,
                r.hardware.name,
                excluded.join(", ")
            );
        }
    }
    out
}

pub fn render_text(r: &Report) -> String {
    let mut out = header(r);
    out += "\n";
    out += &summary_table(r).text();
    if !r.references.is_empty() {
        out += &reference_note(r);
    }
    if let Some(n) = mac_note(r) {
        out += &format!("{n}\n");
    }
    if let Some(t) = group_table(r) {
        out += &format!("\nRuns grouped by `group` (seeds):\n\n{}", t.text());
    }
    if let Some(t) = difference_table(r) {
        out += &format!(
            "\nDifferences between groups:\n\n{}{DIFFERENCE_NOTE}\n",
            t.text()
        );
    }
    if let Some((title, t, notes)) = view_table(r) {
        out += &format!("\n{title}\n\n{}", t.text());
        for n in notes {
            out += &format!("{n}\n");
        }
    }
    for run in &r.runs {
        if run.firing_rates.len() > 8 {
            let r: Vec<f64> = run.firing_rates.iter().map(|f| f.rate).collect();
            let min = r.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = r.iter().cloned().fold(0.0, f64::max);
            out += &format!(
                "\n{} firing rates: {} LIF layers, min {:.1}%, mean {:.1}%, max {:.1}% (per layer in the JSON report)",
                run.label,
                r.len(),
                100.0 * min,
                100.0 * run.mean_firing_rate.unwrap_or(0.0),
                100.0 * max
            );
        } else if !run.firing_rates.is_empty() {
            let rates: Vec<String> = run
                .firing_rates
                .iter()
                .map(|f| format!("{} {:.1}%", f.layer, 100.0 * f.rate))
                .collect();
            out += &format!("\n{} firing rates: {}", run.label, rates.join(", "));
        }
    }
    out += "\n\n";
    out += &unpriced_notes(r);
    out
}

pub fn render_markdown(r: &Report) -> String {
    let mut out = format!("# picojoule report: {}\n\n", r.scenario.name);
    out += &format!(
        "- input: {}\n- hardware: `{}` ({}), sha256 `{}`\n- convention: {}\n- memory: {}\n- {}\n- picojoule {}\n\n",
        r.scenario.input,
        r.hardware.name,
        r.hardware.description,
        r.hardware.sha256,
        r.convention.description,
        super::MEMORY_MODEL,
        r.compute,
        r.picojoule_version
    );
    out += &summary_table(r).markdown();
    out += "\n";
    if !r.references.is_empty() {
        out += &reference_note(r);
        out += "\n";
    }
    if let Some(n) = mac_note(r) {
        out += &format!("{n}\n\n");
    }
    if let Some(t) = group_table(r) {
        out += &format!("## Runs grouped by seed\n\n{}\n", t.markdown());
    }
    if let Some(t) = difference_table(r) {
        out += &format!(
            "## Differences between groups\n\n{DIFFERENCE_NOTE}.\n\n{}\n",
            t.markdown()
        );
    }
    if let Some((title, t, notes)) = view_table(r) {
        out += &format!(
            "## Under {}\n\n{title}\n\n{}\n",
            r.view.as_ref().map(|v| v.convention.as_str()).unwrap_or(""),
            t.markdown()
        );
        for n in notes {
            out += &format!("- {n}\n");
        }
        for run in &r.runs {
            if let Some(c) = run
                .under_convention
                .as_ref()
                .and_then(|v| v.counts.as_ref())
            {
                let mut lt = Table::new(&["line", "#Mul", "#Add"]);
                for l in &c.lines {
                    lt.push(vec![l.label.clone(), count(l.mul), count(l.add)]);
                }
                out += &format!("{} by line:\n\n{}\n", run.label, lt.markdown());
            }
        }
    }
    for run in &r.runs {
        out += &format!("\n## {}\n\n", run.label);
        out += &energy_split(run, &r.hardware.name);
        let mut t = Table::new(&["layer", "MAC", "AC", "synops", "spikes", "energy pJ"]);
        for l in &run.layers {
            t.push(vec![
                l.name.clone(),
                count(l.mac),
                count(l.ac),
                count(l.synops),
                count(l.spikes),
                num(l.energy_pj),
            ]);
        }
        out += &t.markdown();
    }
    let notes = unpriced_notes(r);
    if !notes.is_empty() {
        out += &format!(
            "\n## Unpriced and excluded actions\n\n{}",
            notes
                .lines()
                .map(|l| format!("- {l}\n"))
                .collect::<String>()
        );
    }
    out
}

/// Energy split into compute and memory, memory by level and by tensor class.
fn energy_split(run: &super::RunReport, hw: &str) -> String {
    let total = run.totals.energy_pj;
    let share = |v: f64| {
        if total > 0.0 {
            format!("{:.1}%", 100.0 * v / total)
        } else {
            "-".into()
        }
    };
    let per = run.tokens.max(1) as f64;
    let mut t = Table::new(&["energy", "pJ", "pJ/token", "share"]);
    for (k, v) in &run.energy_by_kind {
        if *v != 0.0 || k == "compute" || k == "memory" {
            t.push(vec![k.clone(), num(*v), num(v / per), share(*v)]);
        }
    }
    for (k, v) in &run.memory_by_level {
        t.push(vec![
            format!("memory level {k}"),
            num(*v),
            num(v / per),
            share(*v),
        ]);
    }
    for (k, v) in &run.memory_by_class {
        t.push(vec![
            format!("memory class {k}"),
            num(*v),
            num(v / per),
            share(*v),
        ]);
    }
    t.push(vec![
        "total".into(),
        num(total),
        num(total / per),
        share(total),
    ]);
    let mr = &run.memory_range;
    let mut range = Table::new(&["memory", "lower pJ", "mapped pJ", "upper pJ"]);
    for (class, [lo, mid, hi]) in &mr.by_class {
        range.push(vec![
            format!("class {class}"),
            num(*lo),
            num(*mid),
            num(*hi),
        ]);
    }
    range.push(vec![
        "total".into(),
        num(mr.lower_pj),
        num(mr.mapped_pj),
        num(mr.upper_pj),
    ]);
    format!(
        "Energy on `{hw}` (memory rows by level and by class each sum to the memory total):\n\n{}\n\
         Memory as a range: lower = compulsory traffic, mapped = the estimate above, upper = no reuse \
         below the level that holds each class ({} of {} weight bytes read were traced):\n\n{}\n",
        t.markdown(),
        count(mr.traced_weight_bytes),
        count(mr.weight_bytes),
        range.markdown()
    )
}

/// One row per run and layer, plus a `TOTAL` row per run.
pub fn render_csv(r: &Report) -> String {
    let mut out = String::from(
        "run,model,variant,arithmetic,hardware,convention,tokens,layer,mac,ac,synops,spikes,energy_pj,memory_pj_lower,memory_pj_upper\n",
    );
    for run in &r.runs {
        let prefix = [
            &run.label,
            &run.model,
            &run.variant,
            &run.arithmetic,
            &run.hardware,
            &run.convention,
        ]
        .iter()
        .map(|s| csv_field(s))
        .collect::<Vec<_>>()
        .join(",");
        for l in &run.layers {
            out += &format!(
                "{prefix},{},{},{},{},{},{},{},,\n",
                run.tokens,
                csv_field(&l.name),
                l.mac,
                l.ac,
                l.synops,
                l.spikes,
                l.energy_pj
            );
        }
        let t = &run.totals;
        out += &format!(
            "{prefix},{},TOTAL,{},{},{},{},{},{},{}\n",
            run.tokens,
            t.mac,
            t.ac,
            t.synops,
            t.spikes,
            t.energy_pj,
            run.memory_range.lower_pj,
            run.memory_range.upper_pj
        );
        // The run under the view convention: its energy on the view's cost model (the mul and
        // add counts are in the JSON report); an empty energy when it does not apply.
        if let (Some(v), Some(view)) = (&r.view, &run.under_convention) {
            let prefix = [
                &run.label,
                &run.model,
                &run.variant,
                &run.arithmetic,
                &v.hardware,
                &v.convention,
            ]
            .iter()
            .map(|s| csv_field(s))
            .collect::<Vec<_>>()
            .join(",");
            let energy = view
                .counts
                .as_ref()
                .map(|c| c.energy_pj.to_string())
                .unwrap_or_default();
            out += &format!(
                "{prefix},{},TOTAL under {},,,,,{energy},,\n",
                run.tokens, v.convention
            );
        }
    }
    out
}

/// One summary row per run (`run --format csv --rows runs`): energy, energy per token or
/// sample, the compute/memory split, accuracy and the unpriced count.
pub fn render_csv_runs(r: &Report) -> String {
    let mut out = String::from(
        "run,model,variant,arithmetic,hardware,convention,unit,tokens,mac,ac,mul,add,energy_pj,energy_pj_per_unit,compute_pj,memory_pj,memory_pj_lower,memory_pj_upper,bits_per_char,top1,top1_vs_fp32,energy_ratio_to_baseline,unpriced_actions\n",
    );
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for run in &r.runs {
        let t = &run.totals;
        let cells = [
            csv_field(&run.label),
            csv_field(&run.model),
            csv_field(&run.variant),
            csv_field(&run.arithmetic),
            csv_field(&run.hardware),
            csv_field(&run.convention),
            run.unit.clone(),
            run.tokens.to_string(),
            t.mac.to_string(),
            t.ac.to_string(),
            t.mul.to_string(),
            t.add.to_string(),
            t.energy_pj.to_string(),
            t.energy_pj_per_token.to_string(),
            t.compute_pj.to_string(),
            t.memory_pj.to_string(),
            run.memory_range.lower_pj.to_string(),
            run.memory_range.upper_pj.to_string(),
            opt(run.accuracy.as_ref().and_then(|a| a.bits_per_token)),
            opt(run.accuracy.as_ref().map(|a| a.top1)),
            opt(run.fidelity.as_ref().map(|f| f.top1_agreement)),
            opt(run.energy_ratio_to_baseline),
            t.unpriced_actions.to_string(),
        ];
        out += &(cells.join(",") + "\n");
    }
    out
}

pub fn render_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("reports serialise") + "\n"
}

/// The report in one of the text formats.
pub fn render(x: &Report, format: super::Format) -> String {
    match format {
        super::Format::Table => render_text(x),
        super::Format::Csv => render_csv(x),
        super::Format::Md => render_markdown(x),
        super::Format::Json => render_json(x),
    }
}

/// Where each layer's memory traffic goes (`run --explain`): per run, the loop-nest mapping of
/// every mapped pass (count x shape: levels outermost first, `s` marking a spatial loop) and the
/// levels a traced layer's weight reads pass through. Layers with neither are priced at the
/// placement of their tensor classes and are not listed.
pub fn render_explain(r: &Report, markdown: bool) -> String {
    let mut out = String::new();
    for run in &r.runs {
        let mut t = Table::new(&["layer", "energy pJ", "memory"]);
        for l in &run.layers {
            let mut first = true;
            let mut row = |what: String| {
                let (name, pj) = if first {
                    (l.name.clone(), num(l.energy_pj))
                } else {
                    (String::new(), String::new())
                };
                first = false;
                t.push(vec![name, pj, what]);
            };
            for m in &l.mappings {
                row(format!("mapped: {m}"));
            }
            if let Some(chain) = &l.weight_chain {
                row(format!("weights traced through {}", chain.join(" -> ")));
            }
        }
        let title = format!("Memory of {} on `{}`", run.label, run.hardware);
        if t.rows.is_empty() {
            let none =
                "no layer is mapped or traced: every tensor class is priced at its placement";
            out += &if markdown {
                format!("\n## {title}\n\n{none}.\n")
            } else {
                format!("\n{title}: {none}.\n")
            };
            continue;
        }
        let note = "mapped passes are listed as count x shape: levels outermost first with their loops (`s`: spatial); layers not listed are priced at the placement of their tensor classes";
        out += &if markdown {
            format!("\n## {title}\n\n{note}.\n\n{}", t.markdown())
        } else {
            format!("\n{title} ({note}):\n{}", t.text())
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_keeps_integer_zeros_and_trims_fraction_zeros() {
        assert_eq!(num(8590.0), "8590");
        assert_eq!(num(100.0), "100");
        assert_eq!(num(2.50), "2.5");
        assert_eq!(num(123456.0), "1.235e5");
    }

    #[test]
    fn numbers_are_short_and_readable() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(4.6), "4.6");
        assert_eq!(num(79946.95), "79947");
        assert_eq!(num(96.01895), "96.02");
        assert_eq!(num(1234567.0), "1.235e6");
        assert_eq!(count(42), "42");
    }

    #[test]
    fn csv_quotes_fields_with_commas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("ab"), "ab");
    }
}
