//! Self-contained HTML reports (`run --html`, `sweep --html`, `compare --html`): one file that
//! opens in any browser without a network. Styles are inline, text uses the system font stack,
//! plots are inline SVG, and a Content-Security-Policy forbids every request the page could make
//! (`default-src 'none'`). The tables are readable without JavaScript; a short inline script
//! sorts them by a click on a column header. Every string that comes from user input (labels,
//! names, paths, descriptions) is HTML-escaped. Pure functions of the priced runs: the same
//! inputs give the same bytes.

use super::compare::Comparison;
use super::plot;
use super::table::{Table, count, num};
use super::{Report, RunReport};
use crate::error::Result;
use crate::hardware::PricedLedger;
use crate::sweep::SweepResult;

/// Sweep tables longer than this show their first rows only (all are in `sweep.csv`).
pub const MAX_SWEEP_ROWS: usize = 2000;

/// The page's Content-Security-Policy: no request of any kind, inline styles and script only.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem 3rem; color: #1b1b1b; background: #fff;
  line-height: 1.45; }
h1 { font-size: 1.6rem; margin: 0.5rem 0 0.25rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
nav ul { padding-left: 1.2rem; columns: 2; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #e4e4e4; white-space: nowrap; }
th { background: #f4f4f4; text-align: right; position: sticky; top: 0; }
th:first-child, td:first-child { text-align: left; }
td { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: 600; border-top: 2px solid #bbb; }
table.sortable th { cursor: pointer; }
th[aria-sort="ascending"]::after { content: " \25B2"; }
th[aria-sort="descending"]::after { content: " \25BC"; }
.sw { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.4em; vertical-align: -0.05em;
  border-radius: 2px; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.note { color: #555; font-size: 0.9rem; }
.warn { color: #8a4b00; }
"#;

/// Sorts a table by the clicked column: numbers by value (a cell's leading number), text
/// alphabetically, cells without a number after those with one.
const SCRIPT: &str = r#"
(function () {
  function key(td) {
    var t = td.textContent.trim();
    var m = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(t);
    return m ? parseFloat(m[0]) : t;
  }
  function sortBy(th) {
    var table = th.closest('table');
    var body = table.tBodies[0];
    var i = th.cellIndex;
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[i]), y = key(b.cells[i]);
      var nx = typeof x === 'number', ny = typeof y === 'number';
      var c = nx && ny ? x - y : nx ? -1 : ny ? 1 : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable thead th').forEach(function (th) {
    th.tabIndex = 0;
    th.addEventListener('click', function () { sortBy(th); });
    th.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(th); }
    });
  });
})();
"#;

/// `s` with `& < > " '` replaced by character references: safe in text and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A SHA-256 shown as its first 16 hex digits, labelled as a prefix, the full hash on hover.
fn hash(full: &str) -> String {
    let prefix: String = full.chars().take(16).collect();
    format!(
        "sha256 prefix <code title=\"{}\">{}</code>",
        escape(full),
        escape(&prefix)
    )
}

/// A table whose cells are HTML already (escaped by the caller); `foot` rows go in `<tfoot>`
/// and stay in place when the body is sorted.
struct Html {
    id: String,
    caption: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    foot: Vec<Vec<String>>,
}

impl Html {
    fn new(id: &str, caption: &str, headers: &[&str]) -> Html {
        Html {
            id: id.into(),
            caption: caption.into(),
            headers: headers.iter().map(|h| escape(h)).collect(),
            rows: vec![],
            foot: vec![],
        }
    }

    /// A text table, every cell escaped.
    fn from_table(id: &str, caption: &str, t: &Table) -> Html {
        Html {
            id: id.into(),
            caption: caption.into(),
            headers: t.headers.iter().map(|h| escape(h)).collect(),
            rows: t
                .rows
                .iter()
                .map(|r| r.iter().map(|c| escape(c)).collect())
                .collect(),
            foot: vec![],
        }
    }

    fn render(&self) -> String {
        let row = |cells: &[String]| {
            let mut s = String::from("<tr>");
            for c in cells {
                s += "<td>";
                s += c;
                s += "</td>";
            }
            s + "</tr>\n"
        };
        // The caption above the scrolling box, so a wide table does not hide it.
        let mut out = String::new();
        if !self.caption.is_empty() {
            out += &format!("<p class=\"note\">{}</p>\n", escape(&self.caption));
        }
        out += &format!(
            "<div class=\"scroll\"><table id=\"{}\" class=\"sortable\">\n",
            escape(&self.id)
        );
        out += "<thead><tr>";
        for h in &self.headers {
            out += &format!("<th scope=\"col\">{h}</th>");
        }
        out += "</tr></thead>\n<tbody>\n";
        for r in &self.rows {
            out += &row(r);
        }
        out += "</tbody>\n";
        if !self.foot.is_empty() {
            out += "<tfoot>\n";
            for r in &self.foot {
                out += &row(r);
            }
            out += "</tfoot>\n";
        }
        out + "</table></div>\n"
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"picojoule {}\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(title)
    )
}

/// An SVG plot inline (without its XML namespace, which HTML implies, so the page names no
/// URL) with a caption.
fn figure(svg: &str, caption: &str) -> String {
    format!(
        "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
        svg.trim()
            .replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1),
        escape(caption)
    )
}

fn swatch(kind: &str) -> String {
    format!(
        "<span class=\"sw\" style=\"background:{}\"></span>{}",
        plot::action_color_hex(kind),
        escape(kind)
    )
}

fn share(v: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{:.1}%", 100.0 * v / total)
    } else {
        "-".into()
    }
}

/// The report of `run --html`: `priced[i]` is `rep.runs[i]` priced (for its breakdown plot).
pub fn run_page(rep: &Report, priced: &[PricedLedger]) -> Result<String> {
    let mut b = format!(
        "<header>\n<h1>picojoule report: {}</h1>\n<p class=\"note\">{} run(s) on {}, priced with cost model \
         <code>{}</code>. Every energy below states this cost model, the counting convention and the memory model.</p>\n</header>\n",
        escape(&rep.scenario.name),
        rep.runs.len(),
        escape(&rep.scenario.input),
        escape(&rep.hardware.name)
    );
    b += "<nav><ul>\n<li><a href=\"#provenance\">Scenario, cost model, convention</a></li>\n\
          <li><a href=\"#energy-accuracy\">Energy and accuracy</a></li>\n\
          <li><a href=\"#pareto\">Energy against accuracy</a></li>\n\
          <li><a href=\"#unpriced-actions\">Unpriced actions</a></li>\n";
    for (k, run) in rep.runs.iter().enumerate() {
        b += &format!(
            "<li><a href=\"#run-{}\">Run {}</a></li>\n",
            k + 1,
            escape(&run.label)
        );
    }
    b += "</ul></nav>\n";

    // Provenance.
    let s = &rep.scenario;
    let h = &rep.hardware;
    b += "<section id=\"provenance\">\n<h2>Scenario, cost model, convention</h2>\n<dl class=\"meta\">\n";
    b += &format!(
        "<dt>scenario</dt><dd><code>{}</code> ({}), {}, seed {}</dd>\n",
        escape(&s.name),
        escape(&s.path),
        hash(&s.sha256),
        s.seed
    );
    b += &format!("<dt>input</dt><dd>{}</dd>\n", escape(&s.input));
    b += &format!(
        "<dt>cost model</dt><dd><code>{}</code> ({}), {}<br>{}</dd>\n",
        escape(&h.name),
        escape(&h.origin),
        hash(&h.sha256),
        escape(&h.description)
    );
    b += &format!(
        "<dt>convention</dt><dd>{}</dd>\n",
        escape(&rep.convention.description)
    );
    b += &format!(
        "<dt>memory model</dt><dd>{}</dd>\n",
        escape(super::MEMORY_MODEL)
    );
    b += &format!(
        "<dt>picojoule</dt><dd>{}</dd>\n</dl>\n</section>\n",
        escape(&rep.picojoule_version)
    );

    // Summary.
    b += "<section id=\"energy-accuracy\">\n<h2>Energy and accuracy</h2>\n";
    b += &Html::from_table(
        "summary",
        "One row per run. energy pJ is the run's total; pJ/token and the compute, memory and memory range columns are per token (per image for classifiers); compute includes neuron updates and nonlinear functions; memory range: lower (compulsory traffic) .. upper (no reuse).",
        &super::table::summary_table(rep),
    )
    .render();
    b += "</section>\n";

    // Seed groups and their differences.
    if let Some(t) = super::table::group_table(rep) {
        b += "<section id=\"seed-groups\">\n<h2>Seed groups</h2>\n";
        b += &Html::from_table(
            "groups",
            "Runs that share a group (one model trained with several seeds): mean, sample standard deviation and range.",
            &t,
        )
        .render();
        if let Some(d) = super::table::difference_table(rep) {
            b += &Html::from_table("differences", super::table::DIFFERENCE_NOTE, &d).render();
        }
        b += "</section>\n";
    }

    // Pareto plots.
    b += "<section id=\"pareto\">\n<h2>Energy against accuracy</h2>\n";
    let plots = plot::run_accuracy_line_plots(rep);
    if plots.is_empty() {
        b += "<p class=\"note\">No run measures accuracy (synthetic input): no energy-accuracy plot.</p>\n";
    }
    for (stem, p) in &plots {
        b += &figure(
            &plot::line_plot_svg(p)?,
            &format!(
                "{stem}: energy per token (image) against accuracy on {}; the line is the Pareto front, each point is labelled with its arithmetic.",
                h.name
            ),
        );
    }
    b += "</section>\n";

    // Unpriced.
    b += "<section id=\"unpriced-actions\">\n<h2>Unpriced actions</h2>\n";
    let mut t = Html::new(
        "unpriced",
        "Actions the cost model does not price (the energy is then a lower bound) or excludes by its convention.",
        &["run", "action", "count", "status", "reason"],
    );
    for run in &rep.runs {
        for u in &run.unpriced {
            t.rows.push(vec![
                escape(&run.label),
                escape(&u.action),
                count(u.count),
                if u.excluded {
                    "excluded".into()
                } else {
                    "<span class=\"warn\">unpriced</span>".into()
                },
                escape(&u.reason),
            ]);
        }
    }
    if t.rows.is_empty() {
        b += &format!(
            "<p>Every counted action has a price in <code>{}</code>.</p>\n",
            escape(&h.name)
        );
    }
    b += &t.render();
    b += "</section>\n";

    for (k, run) in rep.runs.iter().enumerate() {
        b += &run_section(k + 1, run, priced.get(k), &h.name)?;
    }
    Ok(page(&format!("picojoule report: {}", s.name), &b))
}

fn run_section(
    k: usize,
    run: &RunReport,
    priced: Option<&PricedLedger>,
    hw: &str,
) -> Result<String> {
    let per = super::per_unit(run.accuracy.as_ref());
    let n = run.tokens.max(1) as f64;
    let total = run.totals.energy_pj;
    let mut b = format!(
        "<section class=\"run\" id=\"run-{k}\">\n<h2>Run {}</h2>\n<p>model <code>{}</code>, variant {}, arithmetic {}, {} {per}s{}; total {} pJ, {} pJ per {per} on <code>{}</code>.</p>\n",
        escape(&run.label),
        escape(&run.model),
        escape(&run.variant),
        escape(&run.arithmetic),
        run.tokens,
        run.input
            .as_ref()
            .map(|i| format!(" of {}", escape(i)))
            .unwrap_or_default(),
        num(total),
        num(run.totals.energy_pj_per_token),
        escape(hw)
    );

    let mut t = Html::new(
        &format!("split-{k}"),
        "Energy by kind, memory by level and by tensor class (each group sums to its total).",
        &["energy", "pJ", &format!("pJ/{per}"), "share"],
    );
    let mut push = |name: String, v: f64| {
        t.rows.push(vec![name, num(v), num(v / n), share(v, total)]);
    };
    for (kind, v) in &run.energy_by_kind {
        if *v != 0.0 || kind == "compute" || kind == "memory" {
            push(escape(kind), *v);
        }
    }
    for (level, v) in &run.memory_by_level {
        push(format!("memory level {}", escape(level)), *v);
    }
    for (class, v) in &run.memory_by_class {
        push(format!("memory class {}", escape(class)), *v);
    }
    t.foot.push(vec![
        "total".into(),
        num(total),
        num(total / n),
        share(total, total),
    ]);
    b += "<h3>Energy by kind, memory level and class</h3>\n";
    b += &t.render();

    let mr = &run.memory_range;
    let mut t = Html::new(
        &format!("memory-{k}"),
        &format!(
            "Memory energy as a range (pJ): lower = compulsory traffic, mapped = the estimate in the totals, upper = no reuse below the level that holds each class; {} of {} weight bytes read were traced.",
            count(mr.traced_weight_bytes),
            count(mr.weight_bytes)
        ),
        &[
            "class",
            "lower pJ",
            "mapped pJ",
            "upper pJ",
            &format!("mapped pJ/{per}"),
        ],
    );
    for (class, [lo, mid, hi]) in &mr.by_class {
        t.rows.push(vec![
            escape(class),
            num(*lo),
            num(*mid),
            num(*hi),
            num(mid / n),
        ]);
    }
    t.foot.push(vec![
        "total".into(),
        num(mr.lower_pj),
        num(mr.mapped_pj),
        num(mr.upper_pj),
        num(mr.mapped_pj_per_token),
    ]);
    b += "<h3>Memory by class: lower, mapped, upper</h3>\n";
    b += &t.render();

    let mut t = Html::new(
        &format!("actions-{k}"),
        "Energy per action (the colours are those of the breakdown plot).",
        &["action", "pJ", &format!("pJ/{per}"), "share"],
    );
    for (action, v) in &run.energy_by_action {
        t.rows
            .push(vec![swatch(action), num(*v), num(v / n), share(*v, total)]);
    }
    b += "<h3>Energy by action</h3>\n";
    b += &t.render();

    b += "<h3>Energy by layer</h3>\n";
    if let Some(p) = priced {
        let bars = plot::breakdown(
            p,
            &format!("{}: energy per layer and action ({hw})", run.label),
            run.tokens,
            per,
        );
        b += &figure(
            &plot::stacked_bars_svg(&bars)?,
            &format!(
                "Energy per {per} of each layer, stacked by action (memory by tensor class), on {hw}."
            ),
        );
    }
    let mut t = Html::new(
        &format!("layers-{k}"),
        "One row per layer, in execution order (click a header to sort).",
        &[
            "layer",
            "MAC",
            "AC",
            "synops",
            "spikes",
            "energy pJ",
            &format!("pJ/{per}"),
            "share",
        ],
    );
    for l in &run.layers {
        t.rows.push(vec![
            escape(&l.name),
            count(l.mac),
            count(l.ac),
            count(l.synops),
            count(l.spikes),
            num(l.energy_pj),
            num(l.energy_pj / n),
            share(l.energy_pj, total),
        ]);
    }
    b += &t.render();
    b += "</section>\n";
    Ok(b)
}

/// The report of `sweep --html`: the sweep's settings, break-even, plots and table.
pub fn sweep_page(res: &SweepResult) -> Result<String> {
    let m = &res.meta;
    let mut b = format!(
        "<header>\n<h1>picojoule sweep: {}</h1>\n</header>\n<section id=\"provenance\">\n<h2>Scenario, cost model, convention</h2>\n<dl class=\"meta\">\n",
        escape(&m.scenario)
    );
    b += &format!(
        "<dt>scenario</dt><dd><code>{}</code>, {}, seed {}</dd>\n",
        escape(&m.scenario),
        hash(&m.scenario_sha256),
        m.seed
    );
    b += &format!(
        "<dt>input</dt><dd>{}, {} tokens</dd>\n",
        escape(&m.input),
        m.tokens
    );
    b += &format!(
        "<dt>cost model</dt><dd><code>{}</code>, {}</dd>\n",
        escape(&m.hardware),
        hash(&m.hardware_sha256)
    );
    b += &format!("<dt>convention</dt><dd>{}</dd>\n", escape(&m.convention));
    b += &format!(
        "<dt>picojoule</dt><dd>{}</dd>\n</dl>\n",
        escape(&m.picojoule_version)
    );
    // The grid, uncertainty and shard lines (the first three are above).
    let lines = super::sweep_table::header_lines(res);
    b += "<ul>\n";
    for l in lines.iter().skip(3) {
        b += &format!("<li>{}</li>\n", escape(l));
    }
    b += "</ul>\n</section>\n";
    let be = super::sweep_table::breakeven_lines(res);
    if !be.is_empty() {
        b += "<section id=\"breakeven\">\n<h2>Break-even</h2>\n<ul>\n";
        for l in &be {
            b += &format!("<li>{}</li>\n", escape(l));
        }
        b += "</ul>\n</section>\n";
    }
    b += "<section id=\"plots\">\n<h2>Plots</h2>\n";
    for (stem, p) in plot::sweep_line_plots(res) {
        b += &figure(&plot::line_plot_svg(&p)?, &stem);
    }
    b += "</section>\n<section id=\"points\">\n<h2>Points</h2>\n";
    let mut t = super::sweep_table::table(res);
    let all = t.rows.len();
    if all > MAX_SWEEP_ROWS {
        t.rows.truncate(MAX_SWEEP_ROWS);
        b += &format!(
            "<p class=\"note\">The first {MAX_SWEEP_ROWS} of {all} rows; every row is in sweep.csv.</p>\n"
        );
    }
    b += &Html::from_table(
        "sweep",
        "One row per point and run; energies in pJ over the run's tokens.",
        &t,
    )
    .render();
    b += "</section>\n";
    Ok(page(&format!("picojoule sweep: {}", m.scenario), &b))
}

/// The report of `compare --html`: the cost models, the table, and who wins under each.
pub fn compare_page(c: &Comparison) -> String {
    let mut b = format!(
        "<header>\n<h1>picojoule comparison: {}</h1>\n<p class=\"note\">One execution ({} tokens, or samples for classifiers, per run) priced under {} cost models.</p>\n</header>\n",
        escape(&c.scenario),
        c.tokens,
        c.hardware.len()
    );
    b += "<section id=\"provenance\">\n<h2>Cost models</h2>\n<dl class=\"meta\">\n";
    for (n, d) in &c.hardware {
        b += &format!(
            "<dt><code>{}</code></dt><dd>{}</dd>\n",
            escape(n),
            escape(d)
        );
    }
    b += "</dl>\n</section>\n<section id=\"comparison\">\n<h2>Energy per token</h2>\n";
    b += &Html::from_table(
        "compare",
        "One row per run and cost model; pJ per token (or sample).",
        &super::compare::table(c),
    )
    .render();
    let bars = plot::StackedBars {
        title: format!("{}: energy per token under each cost model", c.scenario),
        x_desc: "energy per token or sample ({unit})".into(),
        categories: c
            .rows
            .iter()
            .map(|r| format!("{} @ {}", r.run, r.hardware))
            .collect(),
        stacks: vec![
            (
                "compute".into(),
                c.rows.iter().map(|r| r.compute_pj_per_token).collect(),
            ),
            (
                "memory".into(),
                c.rows.iter().map(|r| r.memory_pj_per_token).collect(),
            ),
        ],
    };
    match plot::stacked_bars_svg(&bars) {
        Ok(svg) => {
            b += &figure(
                &svg,
                "Compute (with neuron updates and nonlinear functions) and memory energy per token, one bar per run and cost model.",
            )
        }
        Err(e) => b += &format!("<p class=\"warn\">{}</p>\n", escape(&e.to_string())),
    }
    b += "<h3>Verdicts</h3>\n<ul id=\"verdicts\">\n";
    for l in super::compare::verdict_lines(c) {
        b += &format!("<li>{}</li>\n", escape(&l));
    }
    b += "</ul>\n</section>\n";
    page(&format!("picojoule comparison: {}", c.scenario), &b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_markup_characters() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn hash_is_labelled_as_a_prefix() {
        let h = hash(&"ab".repeat(32));
        assert!(h.starts_with("sha256 prefix <code"), "{h}");
        assert!(h.contains(">abababababababab</code>"), "{h}");
    }

    #[test]
    fn tables_escape_cells_and_keep_totals_out_of_the_sorted_body() {
        let mut t = Table::new(&["run", "x"]);
        t.push(vec!["<b>".into(), "1".into()]);
        let mut h = Html::from_table("t", "c", &t);
        h.foot.push(vec!["total".into(), "1".into()]);
        let s = h.render();
        assert!(s.contains("<td>&lt;b&gt;</td>"), "{s}");
        let body = &s[s.find("<tbody>").unwrap()..s.find("</tbody>").unwrap()];
        assert!(!body.contains("total"));
        assert!(s.contains("<tfoot>\n<tr><td>total</td>"));
    }

    #[test]
    fn page_forbids_requests_and_has_no_remote_urls() {
        let p = page("a<b", "<p>x</p>\n");
        assert!(p.contains("default-src 'none'"));
        assert!(p.contains("<title>a&lt;b</title>"));
        assert!(!p.contains("http://") && !p.contains("https://"));
        assert!(p.starts_with("<!DOCTYPE html>") && p.ends_with("</html>\n"));
    }
}
