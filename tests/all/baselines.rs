//! Reference predictors scored on the shipped splits, as reference rows of a run's report.

use super::util::{picojoule, repo_path, stderr, stdout, temp_dir, write};

fn scenario(dir: &std::path::Path, references: &str) -> std::path::PathBuf {
    let text = repo_path("data/text/sotu-test.txt");
    write(
        dir,
        "refs.ron",
        &format!(
            r#"(
    name: "refs",
    hardware: "horowitz45",
    input: Text("{}"),
    tokens: 2000,
    runs: [(model: "{}", tokens: Some(4))],
    references: [{references}],
)"#,
            text.display(),
            repo_path("models/spikegpt-tiny.ron").display()
        ),
    )
}

fn references(json: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON report");
    v["references"].as_array().expect("references").clone()
}

#[test]
fn nearest_neighbours_score_the_test_digits_as_measured_outside() {
    let dir = temp_dir("baselines-knn");
    let train = repo_path("data/digits/digits-train.csv");
    let test = repo_path("data/digits/digits-test.csv");
    let refs = format!(
        r#"(kind: Knn(k: 1), train: "{0}", input: Some(Digits("{1}")), tokens: Some(360)),
           (kind: Knn(k: 3), train: "{0}", input: Some(Digits("{1}")), tokens: Some(360), label: Some("three"))"#,
        train.display(),
        test.display()
    );
    let path = scenario(&dir, &refs);
    let o = picojoule(&["run", path.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = references(&stdout(&o));
    // 344 and 346 of 360: the 95.6% and 96.1% measured independently on the same splits.
    assert_eq!(r[0]["accuracy"]["predictions"], 360);
    assert_eq!(
        (r[0]["accuracy"]["top1"].as_f64().unwrap() * 360.0).round(),
        344.0
    );
    assert_eq!(
        (r[1]["accuracy"]["top1"].as_f64().unwrap() * 360.0).round(),
        346.0
    );
    assert_eq!(r[1]["label"], "three");
    assert_eq!(r[0]["label"], "1-NN on raw pixels");
}

#[test]
fn the_order_6_ngram_beats_the_order_4_ngram_on_the_test_text() {
    let dir = temp_dir("baselines-ngram");
    let train = repo_path("data/text/sotu-train.txt");
    let refs = format!(
        r#"(kind: NGram(order: 6, discount: 0.75), train: "{0}"),
           (kind: NGram(order: 4, discount: 0.75), train: "{0}")"#,
        train.display()
    );
    let path = scenario(&dir, &refs);
    let o = picojoule(&["run", path.to_str().unwrap(), "--format", "md"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = stdout(&o);
    assert!(
        md.contains("(reference)") && md.contains("not priced"),
        "{md}"
    );
    let o = picojoule(&["run", path.to_str().unwrap(), "--format", "json"]);
    let r = references(&stdout(&o));
    let bits = |i: usize| r[i]["accuracy"]["bits_per_token"].as_f64().unwrap();
    // 1.913 and 2.299 bits/char here; a measurement outside picojoule with the same settings
    // gave 1.918 and 2.304 (its exact backing-off scheme is not recorded).
    assert!((bits(0) - 1.913).abs() < 0.001, "{}", bits(0));
    assert!((bits(1) - 2.299).abs() < 0.001, "{}", bits(1));
    assert_eq!(r[0]["accuracy"]["predictions"], 2000);
}

#[test]
fn a_reference_that_cannot_read_the_input_is_refused_naming_it() {
    let dir = temp_dir("baselines-bad");
    let train = repo_path("data/digits/digits-train.csv");
    let path = scenario(
        &dir,
        &format!(r#"(kind: Knn(k: 1), train: "{}")"#, train.display()),
    );
    let o = picojoule(&["run", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("1-NN on raw pixels") && e.contains("Digits"),
        "{e}"
    );
    let path = scenario(
        &dir,
        &format!(
            r#"(kind: NGram(order: 12, discount: 0.75), train: "{}")"#,
            repo_path("data/text/sotu-train.txt").display()
        ),
    );
    let o = picojoule(&["run", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("order 12"), "{}", stderr(&o));
}

#[test]
fn runs_of_one_group_are_summarised_by_mean_and_spread() {
    let dir = temp_dir("groups");
    let model = repo_path("models/spikegpt-tiny.ron");
    let path = write(
        &dir,
        "groups.ron",
        &format!(
            r#"(
    name: "groups",
    hardware: "horowitz45",
    input: Text("{}"),
    tokens: 6,
    runs: [
        (model: "{m}", label: Some("a"), group: Some("g")),
        (model: "{m}", label: Some("b"), arith: (mode: "bf16"), group: Some("g")),
        (model: "{m}", label: Some("alone")),
    ],
)"#,
            repo_path("data/text/sotu-test.txt").display(),
            m = model.display()
        ),
    );
    let o = picojoule(&["run", path.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g["runs"], serde_json::json!(["a", "b"]));
    let e: Vec<f64> = v["runs"].as_array().unwrap()[..2]
        .iter()
        .map(|r| r["totals"]["energy_pj_per_token"].as_f64().unwrap())
        .collect();
    let s = &g["energy_pj_per_token"];
    let mean = (e[0] + e[1]) / 2.0;
    assert!((s["mean"].as_f64().unwrap() - mean).abs() <= 1e-9 * mean);
    // Sample standard deviation of two values: |a - b| / sqrt(2).
    let sd = (e[0] - e[1]).abs() / 2f64.sqrt();
    assert!((s["sd"].as_f64().unwrap() - sd).abs() <= 1e-9 * mean, "{s}");
    assert_eq!(s["min"].as_f64().unwrap(), e[0].min(e[1]));
    let bits = &g["bits_per_token"];
    assert!(bits["min"].as_f64().unwrap() <= bits["max"].as_f64().unwrap());
    let text = stdout(&picojoule(&["run", path.to_str().unwrap()]));
    assert!(text.contains("Runs grouped by `group`"), "{text}");
}
