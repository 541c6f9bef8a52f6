//! `run --html`, `sweep --html`, `compare --html`: one self-contained report.html, written with
//! the other outputs, escaped, with no URL to fetch, the same bytes for any thread count. (The
//! page in a real browser: tests/browser/run.sh.)

use super::util::{picojoule, repo_path, stderr, temp_dir, write};

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A two-run language-model scenario whose name and labels hold markup.
fn markup_scenario(dir: &std::path::Path) -> std::path::PathBuf {
    write(
        dir,
        "s.ron",
        &format!(
            r#"Scenario(name: "a <i>b</i>", seed: 1, hardware: "horowitz45", input: Text({text:?}), tokens: 12,
               runs: [
                 (model: {m:?}, label: Some("<b>spiking</b> & \"q\""), variant: Some(SpikeDriven)),
                 (model: {m:?}, label: Some("<script>ann</script>"), variant: Some(NonSpiking)),
               ])"#,
            text = repo_path("data/text/sotu-test.txt").to_str().unwrap(),
            m = repo_path("models/spikegpt-tiny.ron").to_str().unwrap(),
        ),
    )
}

/// Rows of the body of the table with this id.
fn body_rows(html: &str, id: &str) -> usize {
    let start = html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"));
    let t = &html[start..];
    let body = &t[t.find("<tbody>").unwrap()..t.find("</tbody>").unwrap()];
    body.matches("<tr>").count()
}

#[test]
fn run_html_is_one_escaped_self_contained_page_with_every_section() {
    let dir = temp_dir("html-run");
    let sc = markup_scenario(&dir);
    let out = dir.join("out");
    let o = picojoule(&[
        "run",
        sc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--html",
        "--threads",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = read(&out.join("report.html"));
    assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"));
    // Nothing to fetch: no URL, a policy that forbids requests, styles and plots inline.
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("default-src 'none'"));
    assert!(!html.contains(" src=") && !html.contains("<link"));
    // Markup in labels and names is text.
    assert!(html.contains("&lt;b&gt;spiking&lt;/b&gt; &amp; &quot;q&quot;"));
    assert!(html.contains("&lt;script&gt;ann&lt;/script&gt;"));
    assert!(!html.contains("<b>spiking") && !html.contains("<script>ann"));
    assert!(html.contains("a &lt;i&gt;b&lt;/i&gt;"));
    // Provenance: scenario and cost model hashes labelled as prefixes, convention, memory model.
    assert_eq!(html.matches("sha256 prefix <code").count(), 2);
    assert!(html.contains("<dt>convention</dt><dd>full:"));
    assert!(html.contains("<dt>memory model</dt>"));
    // The tables: a summary row per run, per-run layers, actions, memory by class.
    let report: serde_json::Value = serde_json::from_str(&read(&out.join("report.json"))).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(body_rows(&html, "summary"), 2);
    for (k, run) in runs.iter().enumerate() {
        let k = k + 1;
        assert_eq!(
            body_rows(&html, &format!("layers-{k}")),
            run["layers"].as_array().unwrap().len()
        );
        assert_eq!(
            body_rows(&html, &format!("actions-{k}")),
            run["energy_by_action"].as_object().unwrap().len()
        );
        assert_eq!(
            body_rows(&html, &format!("memory-{k}")),
            run["memory_range"]["by_class"].as_object().unwrap().len()
        );
    }
    assert!(
        html.contains("lower pJ</th><th scope=\"col\">mapped pJ</th><th scope=\"col\">upper pJ")
    );
    // The energy-accuracy plot (bits per character) and a breakdown per run, inline SVG.
    assert!(html.contains("energy-vs-bits-per-char"));
    assert_eq!(html.matches("<svg ").count(), 3);
    assert!(html.contains("id=\"unpriced-actions\""));
    // The other outputs are there too, and a second run with other threads gives the same bytes.
    assert!(out.join("report.json").is_file() && out.join("ledger.json").is_file());
    let o = picojoule(&[
        "run",
        sc.to_str().unwrap(),
        "--out",
        dir.join("out2").to_str().unwrap(),
        "--html",
        "--threads",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(read(&dir.join("out2/report.html")) == html, "bytes differ");
}

/// Seed groups get their own section, with the table of differences; a page without groups has
/// neither.
#[test]
fn run_html_shows_seed_groups_and_their_differences() {
    let dir = temp_dir("html-groups");
    let sc = write(
        &dir,
        "g.ron",
        &format!(
            r#"Scenario(name: "g", seed: 1, hardware: "horowitz45", input: Text({text:?}), tokens: 12,
               runs: [
                 (model: {m:?}, label: Some("a1"), group: Some("a")),
                 (model: {m:?}, label: Some("a2"), group: Some("a"), arith: (mode: "bf16")),
                 (model: {m:?}, label: Some("b1"), group: Some("b"), arith: (mode: "fp16")),
                 (model: {m:?}, label: Some("b2"), group: Some("b"), arith: (mode: "e5m7")),
               ])"#,
            text = repo_path("data/text/sotu-test.txt").to_str().unwrap(),
            m = repo_path("models/transformer-lm-tiny-softmax.ron")
                .to_str()
                .unwrap(),
        ),
    );
    let html = run_html(&sc, &dir.join("out"));
    assert_eq!(body_rows(&html, "groups"), 2);
    assert_eq!(body_rows(&html, "differences"), 1, "one pair, no reference");

    let html = run_html(&markup_scenario(&dir), &dir.join("plain"));
    assert!(!html.contains("id=\"groups\"") && !html.contains("id=\"differences\""));
}

/// `run SCENARIO --out OUT --html`, which must succeed; the page it wrote.
fn run_html(scenario: &std::path::Path, out: &std::path::Path) -> String {
    let (sc, dir) = (scenario.to_str().unwrap(), out.to_str().unwrap());
    let o = picojoule(&["run", sc, "--out", dir, "--html"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    read(&out.join("report.html"))
}

#[test]
fn html_needs_out() {
    for args in [
        vec!["run", "scenarios/quickstart.ron", "--html"],
        vec!["sweep", "scenarios/quickstart.ron", "--html"],
        vec!["compare", "scenarios/quickstart.ron", "--html"],
    ] {
        let o = picojoule(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
    }
}

#[test]
fn sweep_and_compare_write_html_with_their_tables() {
    let dir = temp_dir("html-sweep-compare");
    let sc = markup_scenario(&dir);
    let out = dir.join("sweep");
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--range",
        "add.fp32=0.1:1:3",
        "--out",
        out.to_str().unwrap(),
        "--html",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = read(&out.join("report.html"));
    assert_eq!(body_rows(&html, "sweep"), 6, "3 points x 2 runs");
    assert!(html.contains("energy-vs-add.fp32"));
    assert!(html.contains("<svg "));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("&lt;script&gt;ann&lt;/script&gt;") && !html.contains("<script>ann"));
    // Without --html, no report.html.
    let plain = dir.join("plain");
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--range",
        "add.fp32=0.1:1:3",
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!plain.join("report.html").exists());

    let out = dir.join("compare");
    let o = picojoule(&[
        "compare",
        sc.to_str().unwrap(),
        "--hardware",
        "paper45,horowitz45",
        "--out",
        out.to_str().unwrap(),
        "--html",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = read(&out.join("report.html"));
    assert_eq!(body_rows(&html, "compare"), 4, "2 runs x 2 cost models");
    assert_eq!(html.matches("<li>").count(), 2, "a verdict per cost model");
    for f in ["compare.json", "compare.csv", "compare.md"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let json: serde_json::Value = serde_json::from_str(&read(&out.join("compare.json"))).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 4);
}
