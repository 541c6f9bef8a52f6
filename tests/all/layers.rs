//! The layering of the library: every `crate::` path in `src/` points down this list (or stays
//! in its own layer), and the modules form no circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::util::repo;

/// Layers from the leaves up; a module may use modules of its own layer or below.
const LAYERS: &[&[&str]] = &[
    &["error", "numerics", "ledger", "weights", "resources"],
    &["engine", "hardware", "convention"],
    &["input"],
    &["models", "import", "baselines"],
    &["scenario"],
    &["exec"],
    &["sweep"],
    &["report", "reproduce", "attention_cost"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`src/exec/feed.rs` -> `exec`).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Module -> (module it uses -> first place it does).
fn module_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let Some(from) = module_of(rel) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        let edges = graph.entry(from.clone()).or_default();
        for (ln, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let to: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from && to != "Result" && to != "Error" {
                    edges
                        .entry(to)
                        .or_insert_with(|| format!("src/{}:{}", rel.display(), ln + 1));
                }
            }
        }
    }
    graph
}

#[test]
fn every_module_belongs_to_a_layer() {
    for m in module_graph().keys() {
        assert!(
            layer_of(m).is_some(),
            "module `{m}` is in no layer of tests/all/layers.rs"
        );
    }
}

#[test]
fn dependencies_point_down_the_layers() {
    let mut up = Vec::new();
    for (from, edges) in module_graph() {
        let lf = layer_of(&from).unwrap_or(usize::MAX);
        for (to, at) in edges {
            match layer_of(&to) {
                Some(lt) if lt <= lf => {}
                _ => up.push(format!("{at}: `{from}` uses `{to}`")),
            }
        }
    }
    assert!(
        up.is_empty(),
        "imports that point up:\n  {}",
        up.join("\n  ")
    );
}

#[test]
fn models_know_nothing_of_runs_reports_or_conventions() {
    let graph = module_graph();
    for banned in ["scenario", "exec", "report", "sweep", "convention"] {
        if let Some(at) = graph["models"].get(banned) {
            panic!("{at}: a model uses `{banned}`");
        }
    }
}

#[test]
fn modules_form_no_circle() {
    let graph = module_graph();
    // Depth-first search; a back edge is a circle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == m) {
            panic!("circle: {} -> {m}", path[i..].join(" -> "));
        }
        if done.contains(m) {
            return;
        }
        path.push(m.to_string());
        let next: Vec<String> = graph
            .get(m)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        for to in next {
            visit(&to, graph, path, done);
        }
        path.pop();
        done.insert(m.to_string());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

/// Counts are emitted only by engine primitives: no model file adds to a ledger itself.
#[test]
fn models_emit_no_counts() {
    let mut files = Vec::new();
    rust_files(&repo().join("src/models"), &mut files);
    assert!(files.len() > 5, "model files found: {files:?}");
    let mut found = Vec::new();
    for p in files {
        let text = std::fs::read_to_string(&p).unwrap();
        for (ln, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            for call in [
                ".add(Op::",
                ".mem(Op::",
                "c.add(",
                "c.mem(",
                "count_add(",
                "count_mul(",
            ] {
                if code.contains(call) {
                    found.push(format!("{}:{}: {}", p.display(), ln + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "counts emitted outside the engine:\n  {}",
        found.join("\n  ")
    );
}
