//! Sweeps end to end: re-pricing against re-simulating, shards against a single run, break-even,
//! plots, Monte Carlo, resume, `price`, and argument errors.

use std::path::{Path, PathBuf};

use picojoule::exec;
use picojoule::hardware::paths::set_pj;
use picojoule::hardware::{Hardware, PRESETS, price};
use picojoule::scenario::LoadedScenario;
use picojoule::sweep::{self, Options, Overrides, Plan};

use super::util::{picojoule, repo_path, stderr, stdout, temp_dir, write};

/// A small scenario (spike-driven and non-spiking tiny model) in `dir`, with `extra` fields.
fn scenario(dir: &Path, hardware: &str, tokens: usize, extra: &str) -> PathBuf {
    let model = repo_path("models/spikegpt-tiny.ron");
    let text = format!(
        r#"Scenario(
    name: "sweep-test",
    seed: 5,
    hardware: "{hardware}",
    input: Synthetic,
    tokens: {tokens},
    runs: [
        (model: "{m}", variant: Some(SpikeDriven), label: Some("spiking")),
        (model: "{m}", variant: Some(NonSpiking), label: Some("ann")),
    ],
    {extra}
)"#,
        m = model.display()
    );
    write(dir, "scenario.ron", &text)
}

/// horowitz45 with extra entries added (and the name changed).
fn cost_model(dir: &Path, extra_entries: &str, replace: &[(&str, &str)]) -> PathBuf {
    let base = PRESETS.iter().find(|(n, _)| *n == "horowitz45").unwrap().1;
    let mut text = base
        .replace("name: \"horowitz45\"", "name: \"test-hw\"")
        .replace(
            "    entries: [\n",
            &format!("    entries: [\n{extra_entries}\n"),
        );
    for (a, b) in replace {
        assert!(text.contains(a), "{a}");
        text = text.replace(a, b);
    }
    write(dir, "hw.ron", &text)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn repricing_a_cost_axis_equals_re_simulating_with_the_changed_cost_model() {
    let dir = temp_dir("sweep-reprice");
    let sc_path = scenario(&dir, "horowitz45", 24, "");
    let sc = LoadedScenario::load(&sc_path).unwrap();
    let ov = Overrides {
        axes: vec![
            (
                "--range".into(),
                sweep::parse_cli_axis("--range", "add.fp32=0.1:1.3:4").unwrap(),
            ),
            (
                "--set".into(),
                sweep::parse_cli_axis("--set", "memory.sram-1m.read=50,100").unwrap(),
            ),
            (
                "--set".into(),
                sweep::parse_cli_axis("--set", "memory.sram-8k.write=3,30").unwrap(),
            ),
        ],
        ..Default::default()
    };
    let plan = Plan::new(sc.clone(), ov).unwrap();
    assert_eq!(plan.n_points(), 16);
    let res = sweep::run_sweep(&plan, &Options::default()).unwrap();
    assert_eq!(res.rows.len(), 32);
    let hw = Hardware::load("horowitz45").unwrap();
    for p in [0usize, 5, 10, 15] {
        let rows: Vec<_> = res.rows.iter().filter(|r| r.point == p).collect();
        let mut cm = hw.model.clone();
        for (axis, v) in plan.axes.iter().zip(&rows[0].values) {
            set_pj(&mut cm, &axis.path, v.as_f64().unwrap()).unwrap();
        }
        // A fresh simulation, priced by the ordinary pricing function.
        let outs = exec::execute(&sc, &Default::default()).unwrap();
        for (row, out) in rows.iter().zip(&outs) {
            let priced = price(&out.ledger, &cm);
            assert_eq!(row.energy_pj, priced.energy_pj, "point {p} run {}", row.run);
            for (i, (k, v)) in priced.by_kind.iter().enumerate() {
                assert_eq!(row.by_kind[i], *v, "point {p} {k}");
            }
        }
    }
}

/// Every row of a `horowitz45` sweep equals the ordinary pricing of a fresh run's ledger with the
/// point's values set; returns the first run's energy per point.
fn energies_priced_as_run_prices(
    sc: &LoadedScenario,
    plan: &Plan,
    res: &sweep::SweepResult,
) -> Vec<f64> {
    let hw = Hardware::load("horowitz45").unwrap();
    let outs = exec::execute(sc, &Default::default()).unwrap();
    let mut energies = Vec::new();
    for p in 0..plan.n_points() {
        let rows: Vec<_> = res.rows.iter().filter(|r| r.point == p).collect();
        let mut cm = hw.model.clone();
        for (axis, v) in plan.axes.iter().zip(&rows[0].values) {
            set_pj(&mut cm, &axis.path, v.as_f64().unwrap()).unwrap();
        }
        for (row, out) in rows.iter().zip(&outs) {
            assert_eq!(
                row.energy_pj,
                price(&out.ledger, &cm).energy_pj,
                "point {p}"
            );
        }
        energies.push(rows[0].energy_pj);
    }
    energies
}

/// A memory size changes placements and traced hits: those points re-price in full, without
/// re-running the model, and equal the ordinary pricing with the changed cost model.
#[test]
fn a_capacity_axis_re_prices_traced_hits_without_re_simulating() {
    let dir = temp_dir("sweep-capacity");
    let sc_path = scenario(&dir, "horowitz45", 24, "");
    let sc = LoadedScenario::load(&sc_path).unwrap();
    let ov = Overrides {
        axes: vec![
            (
                "--set".into(),
                sweep::parse_cli_axis("--set", "memory.sram-32k.capacity_bytes=32768,4194304")
                    .unwrap(),
            ),
            (
                "--set".into(),
                sweep::parse_cli_axis("--set", "add.fp32=0.9,0.5").unwrap(),
            ),
        ],
        ..Default::default()
    };
    let plan = Plan::new(sc.clone(), ov).unwrap();
    let res = sweep::run_sweep(&plan, &Options::default()).unwrap();
    let energies = energies_priced_as_run_prices(&sc, &plan, &res);
    // A 4 MB "32k" SRAM holds every weight: cheaper than the 1 MB SRAM it replaces.
    assert!(energies[2] < energies[0], "{energies:?}");
    let bad = sweep::parse_cli_axis("--set", "memory.dram.capacity_bytes=1").unwrap();
    let err = Plan::new(
        sc,
        Overrides {
            axes: vec![("--set".into(), bad)],
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("unbounded"), "{err}");
}

/// A word width and a bank count are sizes too: their points re-price in full and equal the
/// ordinary pricing with the changed cost model. A wider access moves more bytes for the same
/// energy; banks only change per-size energies, which `horowitz45` does not use.
#[test]
fn width_and_bank_axes_re_price_in_full_like_the_ordinary_pricing() {
    let dir = temp_dir("sweep-width");
    let sc_path = scenario(&dir, "horowitz45", 16, "");
    let sc = LoadedScenario::load(&sc_path).unwrap();
    let axis = |s: &str| {
        (
            "--set".to_string(),
            sweep::parse_cli_axis("--set", s).unwrap(),
        )
    };
    let ov = Overrides {
        axes: vec![
            axis("memory.sram-1m.access_bytes=8,32"),
            axis("memory.sram-1m.banks=1,16"),
        ],
        ..Default::default()
    };
    let plan = Plan::new(sc.clone(), ov).unwrap();
    let res = sweep::run_sweep(&plan, &Options::default()).unwrap();
    let energies = energies_priced_as_run_prices(&sc, &plan, &res);
    // Grid order: (8, 1), (8, 16), (32, 1), (32, 16).
    assert_eq!(energies[0], energies[1], "{energies:?}");
    assert!(energies[2] < energies[0], "{energies:?}");
    for bad in ["memory.sram-1m.access_bytes=0", "memory.sram-1m.banks=2.5"] {
        let err = Plan::new(
            sc.clone(),
            Overrides {
                axes: vec![axis(bad)],
                ..Default::default()
            },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("whole number"), "{bad}: {err}");
    }
}

#[test]
fn model_axes_re_simulate_with_the_changed_description() {
    let dir = temp_dir("sweep-model");
    let sc_path = scenario(&dir, "horowitz45", 16, "");
    let o = picojoule(&[
        "sweep",
        sc_path.to_str().unwrap(),
        "--set",
        "model.lif.v_threshold=0.25,1",
        "--set",
        "model.n_embd=32,64",
        "--format",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let csv = stdout(&o);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 4 * 2);
    // Lower threshold: more spikes in the spiking run; a narrower model: fewer MACs in the ANN.
    let col = |line: &str, i: usize| line.split(',').nth(i).unwrap().parse::<f64>().unwrap();
    let header: Vec<&str> = lines[0].split(',').collect();
    let spikes = header.iter().position(|h| *h == "spikes").unwrap();
    let mac = header.iter().position(|h| *h == "mac").unwrap();
    assert!(col(lines[3], spikes) > col(lines[7], spikes), "{csv}");
    assert!(col(lines[2], mac) < col(lines[4], mac), "{csv}");
}

#[test]
fn a_batch_axis_re_simulates_and_lowers_the_mapped_memory_of_batched_passes() {
    let dir = temp_dir("sweep-batch");
    write(
        &dir,
        "pvt.ron",
        "Pvt(name: \"pvt-tiny\", embed_dims: [16, 32, 48, 64], num_heads: [1, 2, 3, 4], \
         mlp_ratios: [4, 4, 4, 4], depths: [1, 1, 1, 1], attention: Sra(sr_ratios: [4, 2, 1, 1]), \
         image_size: 32, weights: Seeded(7))",
    );
    let sc = write(
        &dir,
        "s.ron",
        "Scenario(name: \"b\", seed: 1, hardware: \"horowitz45\", input: SeededImage(size: 32), \
         tokens: 4, runs: [(model: \"pvt.ron\", label: Some(\"pvt\"))])",
    );
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--set",
        "batch=1,4",
        "--format",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let csv = stdout(&o);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |line: &str, name: &str| {
        let i = header.iter().position(|h| *h == name).unwrap();
        line.split(',').nth(i).unwrap().parse::<f64>().unwrap()
    };
    assert!(
        col(lines[2], "memory_pj") < col(lines[1], "memory_pj"),
        "{csv}"
    );
    assert_eq!(col(lines[2], "mac"), col(lines[1], "mac"), "{csv}");
}

#[test]
fn shards_merged_equal_the_unsharded_run_byte_for_byte_whatever_the_threads() {
    let dir = temp_dir("sweep-shards");
    let hw = cost_model(
        &dir,
        "",
        &[(
            "energy: Pj(0.9),  source: \"Horowitz ISSCC 2014 Fig. 1.1.9: 32-bit fp add\"",
            "energy: Normal(0.9, 0.2),  source: \"test: uncertain fp add\"",
        )],
    );
    let sc = scenario(
        &dir,
        hw.to_str().unwrap(),
        12,
        "sweep: (axes: [(path: \"model.lif.v_threshold\", values: [0.5, 1.0]), (path: \"memory.sram-1m.read\", range: (50.0, 150.0, 5))], breakeven: (a: \"spiking\", b: \"ann\", axis: \"memory.sram-1m.read\"), samples: 25),",
    );
    let sc = sc.to_str().unwrap();
    let full = dir.join("full");
    let o = picojoule(&[
        "sweep",
        sc,
        "--out",
        full.to_str().unwrap(),
        "--threads",
        "1",
        "--format",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let full_csv = stdout(&o);
    assert!(full_csv.lines().next().unwrap().contains("energy_pj_p50"));
    let mut parts = Vec::new();
    for k in 1..=3 {
        let d = dir.join(format!("s{k}"));
        let o = picojoule(&[
            "sweep",
            sc,
            "--out",
            d.to_str().unwrap(),
            "--shard",
            &format!("{k}/3"),
            "--threads",
            "2",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        parts.push(d.to_str().unwrap().to_string());
    }
    let merged = dir.join("merged");
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(parts.iter().map(|s| s.as_str()));
    args.extend(["--out", merged.to_str().unwrap(), "--format", "csv"]);
    let o = picojoule(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), full_csv);
    for f in [
        "sweep.csv",
        "sweep.md",
        "sweep.json",
        "sweep.txt",
        "points.jsonl",
        "sweep-meta.json",
    ] {
        assert!(read(&full.join(f)) == read(&merged.join(f)), "{f} differs");
    }
    // A missing shard is named, not papered over.
    let o = picojoule(&["merge", &parts[0], &parts[2]]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
    // The Monte Carlo interval brackets the median, and the nominal value sits inside it.
    let text = String::from_utf8(read(&full.join("sweep.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for row in v["rows"].as_array().unwrap() {
        let mc = &row["mc"];
        let (lo, mid, hi) = (
            mc["p05"].as_f64().unwrap(),
            mc["p50"].as_f64().unwrap(),
            mc["p95"].as_f64().unwrap(),
        );
        assert!(lo < mid && mid < hi, "{row}");
        let e = row["energy_pj"].as_f64().unwrap();
        assert!(lo < e && e < hi, "{row}");
    }
}

#[test]
fn break_even_is_found_where_a_constructed_crossing_lies() {
    // Pricing synaptic events directly makes the spiking run's energy grow with the synop price
    // while the ANN (no synops) stays flat: E_spiking(x) = E_spiking(0) + synops x, a line, so
    // the crossing is known exactly.
    let dir = temp_dir("sweep-breakeven");
    let hw = cost_model(
        &dir,
        "        (action: synop, format: \"any\", energy: Pj(0.0), source: \"test\"),",
        &[],
    );
    let sc = scenario(&dir, hw.to_str().unwrap(), 16, "");
    let out = dir.join("out");
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--range",
        "synop.any=0:400:9",
        "--breakeven",
        "spiking,ann",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let (spk0, ann0) = (
        rows[0]["energy_pj"].as_f64().unwrap(),
        rows[1]["energy_pj"].as_f64().unwrap(),
    );
    let synops = rows[0]["synops"].as_f64().unwrap();
    let expected = (ann0 - spk0) / synops;
    assert!(
        expected > 0.0 && expected < 400.0,
        "constructed crossing {expected} must lie in the range"
    );
    let found = v["breakeven"]["crossings"][0]["value"].as_f64().unwrap();
    assert!(
        (found - expected).abs() <= 1e-9 * expected,
        "found {found}, expected {expected}"
    );
    assert!(
        v["breakeven"]["crossings"][0]["note"]
            .as_str()
            .unwrap()
            .contains("spiking cheaper below")
    );
    // The line plot marks it.
    let svg = String::from_utf8(read(&out.join("energy-vs-synop.any.svg"))).unwrap();
    assert!(svg.contains("break-even"), "no mark in the plot");
    // No crossing in range is said so.
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--range",
        "synop.any=0:1:3",
        "--breakeven",
        "1,2",
    ]);
    assert!(
        stdout(&o).contains("no crossing in range: spiking cheaper throughout"),
        "{}",
        stdout(&o)
    );
}

/// `<polyline` elements of stroke width 2: one per data series.
fn svg_series(svg: &str) -> usize {
    svg.split("<polyline")
        .skip(1)
        .filter(|t| t.split('>').next().unwrap().contains("stroke-width=\"2\""))
        .count()
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG magic");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn plots_are_valid_png_and_svg_with_one_series_per_run_and_combination() {
    let dir = temp_dir("sweep-plots");
    let sc = scenario(&dir, "horowitz45", 8, "");
    let out = dir.join("out");
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--range",
        "add.fp32=0.1:1:4",
        "--set",
        "mul.fp32=1,4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let png = read(&out.join("energy-vs-add.fp32.png"));
    assert_eq!(png_size(&png), (960, 600));
    assert!(png.len() > 5000);
    let svg = String::from_utf8(read(&out.join("energy-vs-add.fp32.svg"))).unwrap();
    assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    // 2 runs x 2 values of the other axis.
    assert_eq!(svg_series(&svg), 4);
    // `run --plot`: one stacked-bar breakdown per run.
    let run_out = dir.join("run");
    let o = picojoule(&[
        "run",
        sc.to_str().unwrap(),
        "--out",
        run_out.to_str().unwrap(),
        "--plot",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&read(&run_out.join("report.json"))).unwrap();
    for (k, label) in ["spiking", "ann"].into_iter().enumerate() {
        let png = read(&run_out.join(format!("breakdown-{label}.png")));
        // 16 pixels per layer, at least 600.
        let layers = report["runs"][k]["layers"].as_array().unwrap().len() as u32;
        assert_eq!(png_size(&png), (960, (120 + 16 * layers).max(600)));
        let svg = String::from_utf8(read(&run_out.join(format!("breakdown-{label}.svg")))).unwrap();
        assert!(svg.contains("blocks.0.att.key"), "layer names on the axis");
    }
}

#[test]
fn run_plot_draws_energy_against_accuracy_per_task() {
    let dir = temp_dir("run-accuracy-plot");
    let digits = repo_path("data/digits/digits-test.csv");
    let sc = write(
        &dir,
        "s.ron",
        &format!(
            r#"Scenario(name: "acc", seed: 1, hardware: "horowitz45", input: Text({text:?}), tokens: 16,
               runs: [
                 (model: {m:?}, label: Some("a"), variant: Some(SpikeDriven)),
                 (model: {m:?}, label: Some("b"), variant: Some(NonSpiking)),
                 (model: {m:?}, label: Some("c"), variant: Some(NonSpiking), arith: (mode: "bf16")),
                 (model: {ann:?}, label: Some("d"), input: Some(Digits({digits:?})), tokens: Some(10)),
               ])"#,
            text = repo_path("data/text/sotu-test.txt").to_str().unwrap(),
            m = repo_path("models/spikegpt-tiny.ron").to_str().unwrap(),
            ann = repo_path("models/digits-ann.ron").to_str().unwrap(),
            digits = digits.to_str().unwrap(),
        ),
    );
    let out = dir.join("out");
    let o = picojoule(&[
        "run",
        sc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--plot",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let svg = String::from_utf8(read(&out.join("energy-vs-bits-per-char.svg"))).unwrap();
    assert!(svg.contains("bits per character"), "axis names the measure");
    assert!(svg.contains("spikegpt-tiny"), "one series per model");
    let png = read(&out.join("energy-vs-top1.png"));
    assert_eq!(png_size(&png), (960, 600));
}

#[test]
fn energy_accuracy_plot_marks_the_pareto_front() {
    let dir = temp_dir("sweep-pareto");
    let model = repo_path("models/spikegpt-tiny.ron");
    let text = repo_path("data/text/sotu-test.txt");
    let sc = write(
        &dir,
        "s.ron",
        &format!(
            r#"Scenario(name: "p", seed: 1, hardware: "horowitz45", input: Text("{}"), tokens: 12,
               runs: [(model: "{m}", variant: Some(SpikeDriven)), (model: "{m}", variant: Some(NonSpiking))])"#,
            text.display(),
            m = model.display()
        ),
    );
    let out = dir.join("out");
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--set",
        "model.lif.v_threshold=0.5,1,2",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o)
            .lines()
            .next()
            .unwrap()
            .ends_with("top1,bits_per_token,unpriced")
    );
    let svg = String::from_utf8(read(&out.join("energy-vs-accuracy.svg"))).unwrap();
    // The front is the only line; the runs are points.
    assert_eq!(svg_series(&svg), 1);
    assert_eq!(
        png_size(&read(&out.join("energy-vs-accuracy.png"))),
        (960, 600)
    );
}

#[test]
fn an_interrupted_sweep_resumes_from_its_finished_points() {
    let dir = temp_dir("sweep-resume");
    let sc = scenario(&dir, "horowitz45", 8, "");
    let sc = sc.to_str().unwrap();
    let full = dir.join("full");
    let args = |d: &Path| {
        vec![
            "sweep".to_string(),
            sc.to_string(),
            "--range".into(),
            "add.fp32=0.1:1:7".into(),
            "--set".into(),
            "model.lif.v_threshold=0.5,1".into(),
            "--out".into(),
            d.to_str().unwrap().into(),
        ]
    };
    let o = picojoule(&args(&full).iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Simulate an interruption: keep 5 whole lines and half of the sixth.
    let part = dir.join("part");
    std::fs::create_dir_all(&part).unwrap();
    std::fs::copy(full.join("sweep-meta.json"), part.join("sweep-meta.json")).unwrap();
    let points = String::from_utf8(read(&full.join("points.jsonl"))).unwrap();
    let lines: Vec<&str> = points.lines().collect();
    let mut cut: String = lines[..5].iter().map(|l| format!("{l}\n")).collect();
    cut += &lines[5][..lines[5].len() / 2];
    std::fs::write(part.join("points.jsonl"), cut).unwrap();
    let mut a = args(&part);
    a.push("--resume".into());
    let o = picojoule(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(read(&full.join("sweep.csv")) == read(&part.join("sweep.csv")));
    let resumed = String::from_utf8(read(&part.join("points.jsonl"))).unwrap();
    assert_eq!(resumed.lines().count(), 14);
    assert!(resumed.ends_with('\n'));
    // Resuming a different sweep in the same folder is refused.
    let o = picojoule(&[
        "sweep",
        sc,
        "--range",
        "add.fp32=0.1:1:3",
        "--out",
        part.to_str().unwrap(),
        "--resume",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("different sweep"), "{}", stderr(&o));
}

#[test]
fn price_of_a_saved_ledger_equals_the_runs_report() {
    let dir = temp_dir("sweep-price");
    let out = dir.join("out");
    let o = picojoule(&[
        "run",
        "scenarios/quickstart.ron",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let run: serde_json::Value = serde_json::from_slice(&read(&out.join("report.json"))).unwrap();
    let o = picojoule(&[
        "price",
        out.join("ledger.json").to_str().unwrap(),
        "--hardware",
        "horowitz45",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let priced: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let (a, b) = (
        run["runs"].as_array().unwrap(),
        priced["runs"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for key in [
            "totals",
            "energy_by_kind",
            "energy_by_action",
            "memory_by_level",
            "memory_by_class",
            "layers",
            "unpriced",
            "metrics",
            "firing_rates",
        ] {
            assert_eq!(x[key], y[key], "{key} of {}", x["label"]);
        }
    }
    // Another cost model gives what a run on it gives.
    let o = picojoule(&[
        "price",
        out.join("ledger.json").to_str().unwrap(),
        "--hardware",
        "jouppi7",
        "--format",
        "csv",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("jouppi7"));
}

#[test]
fn bad_axes_exit_2_naming_the_flag() {
    let sc = "scenarios/quickstart.ron";
    for (args, needle) in [
        (vec!["--range", "x=1:2:0"], "--range x=1:2:0"),
        (vec!["--range", "add.fp32=1:2"], "--range"),
        (vec!["--log-range", "add.fp32=0:2:3"], "--log-range"),
        (vec!["--set", "add.fp99=1,2"], "--set add.fp99=1,2"),
        (vec!["--set", "neuron_update.any=1"], "compound"),
        (vec!["--set", "model.lif.colour=1"], "model.lif.v_threshold"),
        (vec!["--set", "arith.lmul_bits=3,99"], "0..=23"),
        (vec!["--set", "arith.colour=1"], "arith.mode"),
        (vec!["--set", "batch=4,0"], "whole number of samples"),
        (vec!["--set", "batch=2.5"], "whole number of samples"),
        (vec!["--set", "add.fp32=-1"], "non-negative"),
        (
            vec!["--range", "add.fp32=0:1:2", "--shard", "3/2"],
            "--shard",
        ),
        (
            vec!["--range", "add.fp32=0:1:2", "--breakeven", "1"],
            "--breakeven",
        ),
    ] {
        let mut a = vec!["sweep", sc];
        a.extend(args.iter());
        let o = picojoule(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
    let o = picojoule(&["sweep", sc, "--set", "add.fp99=1"]);
    assert!(
        stderr(&o).contains("memory.dram.read"),
        "lists the valid paths: {}",
        stderr(&o)
    );
}

#[test]
fn numerics_axes_resimulate_with_each_arithmetic() {
    let dir = temp_dir("sweep-arith");
    let sc = write(
        &dir,
        "s.ron",
        "Scenario(name: \"a\", seed: 2, hardware: \"horowitz45\", input: Synthetic, tokens: 6, runs: [(model: \"REPO/models/spikegpt-tiny.ron\", label: Some(\"tiny\"))])"
            .replace("REPO", super::util::repo().to_str().unwrap())
            .as_str(),
    );
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--set",
        "arith.mode=fp32,bf16,lmul-3",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    let energies: Vec<f64> = rows
        .iter()
        .map(|r| r["energy_pj"].as_f64().unwrap())
        .collect();
    assert!(
        energies[1] < energies[0],
        "bf16 moves half the bytes: {energies:?}"
    );
    assert_ne!(energies[2], energies[1]);
}

/// `price` on the cost model a run used gives that run's report byte for byte: arithmetic,
/// accuracy, fidelity and baselines travel in `ledger.json`.
#[test]
fn price_reproduces_the_run_report_of_narrow_arithmetic_runs() {
    let dir = temp_dir("price-roundtrip");
    let out = dir.join("out");
    let o = picojoule(&[
        "run",
        "scenarios/energy-accuracy.ron",
        "--tokens",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = picojoule(&[
        "price",
        out.join("ledger.json").to_str().unwrap(),
        "--hardware",
        "horowitz45",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let run = String::from_utf8(read(&out.join("report.json"))).unwrap();
    assert!(run.contains("\"arithmetic\": \"bf16 (acc fp32)\""));
    assert!(stdout(&o) == run, "price differs from the run's report");
}

/// A ledger file without the schema version is refused, naming the file.
#[test]
fn ledger_files_without_a_schema_version_are_refused() {
    let dir = temp_dir("price-old");
    let f = dir.join("ledger.json");
    std::fs::write(&f, r#"{"runs": []}"#).unwrap();
    let o = picojoule(&["price", f.to_str().unwrap(), "--hardware", "horowitz45"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("ledger.json") && stderr(&o).contains("schema_version"),
        "{}",
        stderr(&o)
    );
}

/// Axes keep their command-line order across `--set`, `--range` and `--log-range` (the first
/// varies slowest), in both `--flag value` and `--flag=value` spellings.
#[test]
fn axes_keep_the_command_line_order_across_flags() {
    let header = |args: &[&str]| {
        let mut a = vec!["sweep", "scenarios/quickstart.ron", "--format", "csv"];
        a.extend(args);
        let o = picojoule(&a);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o).lines().next().unwrap().to_string()
    };
    let h = header(&[
        "--range",
        "add.fp32=0.1:0.2:2",
        "--set",
        "model.lif.v_threshold=0.5,1",
    ]);
    assert!(
        h.starts_with("point,add.fp32,model.lif.v_threshold,"),
        "{h}"
    );
    let h = header(&[
        "--set=model.lif.v_threshold=0.5,1",
        "--range=add.fp32=0.1:0.2:2",
    ]);
    assert!(
        h.starts_with("point,model.lif.v_threshold,add.fp32,"),
        "{h}"
    );
}

/// A break-even naming a run the scenario does not have, or one run twice, is refused before
/// anything is simulated or written, naming the flag or the scenario file.
#[test]
fn breakeven_runs_are_checked_before_any_work() {
    let dir = temp_dir("sweep-breakeven-runs");
    let sc = scenario(&dir, "horowitz45", 8, "");
    let out = dir.join("out");
    for (pair, needle) in [
        ("1,9", "no run `9`"),
        ("spiking,nobody", "no run `nobody`"),
        ("1,1", "same run"),
        ("spiking,1", "same run"),
    ] {
        let o = picojoule(&[
            "sweep",
            sc.to_str().unwrap(),
            "--range",
            "add.fp32=0.1:1:3",
            "--breakeven",
            pair,
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{pair}: {err}");
        assert!(
            err.contains("--breakeven") && err.contains(needle),
            "{pair}: {err}"
        );
        assert!(stdout(&o).is_empty(), "{pair}: {}", stdout(&o));
        assert!(!out.join(sweep::POINTS_FILE).exists(), "{pair}: work done");
    }
    // The scenario's own break-even is checked the same way, naming the file.
    let sc = scenario(
        &dir,
        "horowitz45",
        8,
        "sweep: (axes: [(path: \"add.fp32\", values: [0.1, 0.2])], breakeven: (a: \"spiking\", b: \"nobody\")),",
    );
    let o = picojoule(&["sweep", sc.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("scenario.ron: sweep.breakeven") && err.contains("no run `nobody`"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

/// A swept cost above the bound of a cost model (1e12 pJ per action) is refused: its products
/// with counts could overflow to inf and print as NaN.
#[test]
fn swept_costs_above_the_bound_are_refused() {
    let o = picojoule(&[
        "sweep",
        "scenarios/quickstart.ron",
        "--range",
        "add.fp32=0.1:1e308:3",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--range add.fp32=0.1:1e308:3") && err.contains("1e12"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

/// A grid whose rows would not fit (2,000,000 points x 2 runs under a 3 GB limit) is refused
/// before anything is simulated or written, naming the grid, the estimate and `--max-memory`.
#[test]
fn grids_too_large_for_memory_are_refused_before_running() {
    let dir = temp_dir("sweep-grid-memory");
    let sc = scenario(&dir, "horowitz45", 8, "");
    let out = dir.join("out");
    let o = picojoule(&[
        "sweep",
        sc.to_str().unwrap(),
        "--range",
        "add.fp32=0.1:1:2000000",
        "--max-memory",
        "3G",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sweep grid (2000000 points x 2 runs")
            && err.contains("GiB")
            && err.contains("--max-memory"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written");
    // The same grid fits a shard of a hundredth of it.
    let est = sweep::grid_bytes(20_000, 2, 1, true);
    assert!(est < 1 << 30, "{est}");
}

/// An output folder is locked while a sweep or a merge writes there: a lock held by a running
/// process is refused, a lock left by a process that has ended is taken over, the lock is
/// removed on exit, and `--resume` of the same sweep still works.
#[test]
fn output_folders_are_locked_against_a_second_sweep() {
    let dir = temp_dir("sweep-lock");
    let sc = scenario(&dir, "horowitz45", 8, "");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let lock = out.join(sweep::LOCK_FILE);
    let args = [
        "sweep",
        sc.to_str().unwrap(),
        "--set",
        "add.fp32=0.5,1",
        "--out",
        out.to_str().unwrap(),
    ];
    // Held by a running process (this test's).
    std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
    let o = picojoule(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("in use by another picojoule process")
            && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!out.join(sweep::POINTS_FILE).exists(), "work done");
    let o = picojoule(&[
        "merge",
        out.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    // Left by a process that has ended: taken over, and released on exit.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&lock, format!("{dead}\n")).unwrap();
    let o = picojoule(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.join("sweep.csv").exists());
    assert!(!lock.exists(), "the lock is released on exit");
    let mut resume = args.to_vec();
    resume.push("--resume");
    let o = picojoule(&resume);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!lock.exists());
}
