//! The golden harness: every shipped scenario's reports and ledger, `inspect` of the models,
//! `attention-cost`, `reproduce`, a sharded sweep with `merge`, and `price`, each output compared
//! by SHA-256 with `tests/golden/manifest.txt`.
//!
//! A restructuring keeps this green. A deliberate change of output updates the manifest in a
//! commit that says why:
//!
//! ```text
//! PICOJOULE_BLESS=1 cargo test --test all golden           # the fast cases (run by CI)
//! PICOJOULE_BLESS=1 cargo test --release --test all golden -- --ignored   # the long ones
//! ```
//!
//! Before hashing, text outputs have the repository root and the output folder replaced by
//! `{root}` and `{out}`, so hashes do not depend on where the repository is cloned.
//! On a mismatch the actual outputs are left under `target/tmp/golden-actual/` for diffing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::util::repo;

const MANIFEST: &str = "tests/golden/manifest.txt";

/// One command whose stdout and output files are checked. `{out}` in an argument is the case's
/// output folder.
struct Case {
    name: String,
    /// Commands run in order in one output folder.
    commands: Vec<Vec<String>>,
    /// Long cases run with `--ignored` (release build recommended).
    long: bool,
    /// The exit code every command of the case gives (its stderr is checked when not 0).
    code: i32,
}

fn case(name: &str, args: &[&str], long: bool) -> Case {
    Case {
        name: name.to_string(),
        commands: vec![args.iter().map(|s| s.to_string()).collect()],
        long,
        code: 0,
    }
}

/// File stems of the `.ron` files in a folder of the repository, sorted.
fn ron_stems(folder: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join(folder))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "ron").then(|| p.file_stem()?.to_str().map(str::to_string))?
        })
        .collect();
    names.sort();
    names
}

/// Scenarios too slow for a debug build in CI: checked in full by the long cases, and with a
/// few tokens by the fast ones.
const SLOW_SCENARIOS: &[&str] = &["energy-accuracy", "paper-ecoformer-pvtv2", "paper-spikegpt"];
/// Models whose `inspect` builds hundreds of megabytes of seeded weights.
const LARGE_MODELS: &[&str] = &[
    "spikegpt-216m",
    "spikegpt-46m",
    "pvtv2-b1-msa",
    "pvtv2-b1-ecoformer",
    "pvtv2-b2-msa",
    "pvtv2-b2-ecoformer",
    "pvtv2-b1-sra",
    "pvtv2-b2-sra",
];

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for s in ron_stems("scenarios") {
        let path = format!("scenarios/{s}.ron");
        let slow = SLOW_SCENARIOS.contains(&s.as_str());
        let args = ["run", &path, "--format", "json", "--out", "{out}"];
        v.push(case(&format!("run-{s}"), &args, slow));
        if slow && s != "paper-ecoformer-pvtv2" {
            let quick = [&args[..], &["--tokens", "24"]].concat();
            v.push(case(&format!("run-{s}-24-tokens"), &quick, false));
        }
    }
    v.push(case(
        "run-quickstart-table",
        &["run", "scenarios/quickstart.ron"],
        false,
    ));
    v.push(case(
        "run-quickstart-md",
        &["run", "scenarios/quickstart.ron", "--format", "md"],
        false,
    ));
    v.push(case(
        "run-quickstart-csv",
        &["run", "scenarios/quickstart.ron", "--format", "csv"],
        false,
    ));
    // One run per counting convention shown beside the full accounting, and one where the
    // convention does not apply.
    for (name, args) in [
        (
            "run-quickstart-spikegpt-paper",
            &[
                "run",
                "scenarios/quickstart.ron",
                "--convention",
                "spikegpt-paper",
            ][..],
        ),
        (
            "run-attention-kinds-ecoformer-paper-md",
            &[
                "run",
                "scenarios/attention-kinds.ron",
                "--tokens",
                "24",
                "--convention",
                "ecoformer-paper",
                "--format",
                "md",
            ][..],
        ),
        (
            "run-digits-neurobench-json",
            &[
                "run",
                "scenarios/digits.ron",
                "--tokens",
                "24",
                "--convention",
                "neurobench",
                "--format",
                "json",
            ][..],
        ),
        (
            "run-digits-full-csv",
            &[
                "run",
                "scenarios/digits.ron",
                "--tokens",
                "24",
                "--convention",
                "full",
                "--format",
                "csv",
            ][..],
        ),
        (
            "run-digits-spikegpt-paper-not-applicable",
            &[
                "run",
                "scenarios/digits.ron",
                "--tokens",
                "24",
                "--convention",
                "spikegpt-paper",
            ][..],
        ),
        (
            "compare-quickstart-neurobench",
            &[
                "compare",
                "scenarios/quickstart.ron",
                "--convention",
                "neurobench",
            ][..],
        ),
        (
            "sweep-quickstart-spikegpt-paper",
            &[
                "sweep",
                "scenarios/quickstart.ron",
                "--range",
                "add.fp32=0.1:0.9:3",
                "--convention",
                "spikegpt-paper",
            ][..],
        ),
    ] {
        v.push(case(name, args, false));
    }
    v.push(case(
        "run-digits-attention-plot",
        &[
            "run",
            "scenarios/digits-attention.ron",
            "--out",
            "{out}",
            "--plot",
            "--html",
        ],
        false,
    ));
    v.push(case(
        "compare-paper-vs-full",
        &["compare", "scenarios/paper-vs-full.ron", "--format", "json"],
        false,
    ));
    v.push(case(
        "compare-paper-vs-full-md",
        &[
            "compare",
            "scenarios/paper-vs-full.ron",
            "--hardware",
            "paper45,horowitz45,lemaire-iconip22",
            "--format",
            "md",
        ],
        false,
    ));
    v.push(case(
        "compare-paper-ecoformer-pvtv2",
        &[
            "compare",
            "scenarios/paper-ecoformer-pvtv2.ron",
            "--format",
            "json",
        ],
        true,
    ));
    for m in ron_stems("models") {
        let path = format!("models/{m}.ron");
        let large = LARGE_MODELS.contains(&m.as_str());
        v.push(case(&format!("inspect-{m}"), &["inspect", &path], large));
    }
    for (name, args) in [
        (
            "attention-cost-ecoformer-paper",
            "--kind ecoformer --tokens 3136 --dim 32 --heads 1 --convention ecoformer-paper",
        ),
        (
            "attention-cost-softmax-json",
            "--kind softmax --tokens 196 --dim 160 --heads 5 --format json",
        ),
        (
            "attention-cost-linear",
            "--kind linear --tokens 64 --dim 32 --heads 2",
        ),
    ] {
        let mut a = vec!["attention-cost"];
        a.extend(args.split(' '));
        v.push(case(name, &a, false));
    }
    v.push(case(
        "sweep-sweep-ac-energy",
        &[
            "sweep",
            "scenarios/sweep-ac-energy.ron",
            "--out",
            "{out}",
            "--html",
            "--format",
            "json",
        ],
        false,
    ));
    v.push(case(
        "sweep-quickstart-cost-breakeven",
        &[
            "sweep",
            "scenarios/quickstart.ron",
            "--range",
            "add.fp32=0.1:1.0:4",
            "--breakeven",
            "2,3",
            "--format",
            "md",
        ],
        false,
    ));
    // A model-axis sweep in two shards, merged; a saved ledger priced on another cost model.
    let shard = |k: &str| -> Vec<String> {
        [
            "sweep",
            "scenarios/quickstart.ron",
            "--set",
            "model.lif.v_threshold=0.5,1,2",
            "--range",
            "add.fp32=0.1:0.9:3",
            "--shard",
            &format!("{k}/2"),
            "--out",
            &format!("{{out}}/shard{k}"),
            "--format",
            "csv",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let words = |s: &str| -> Vec<String> { s.split(' ').map(str::to_string).collect() };
    v.push(Case {
        name: "sweep-shards-merge-price".into(),
        commands: vec![
            shard("1"),
            shard("2"),
            words("merge {out}/shard1 {out}/shard2 --out {out}/merged --format md"),
            words("run scenarios/energy-accuracy.ron --tokens 8 --out {out}/run"),
            words("price {out}/run/ledger.json --hardware jouppi7 --format json"),
        ],
        long: false,
        code: 0,
    });
    v.push(case(
        "numerics-mul",
        &[
            "numerics", "mul", "--mode", "lmul", "--format", "fp32", "1.5", "1.5", "-2", "3",
        ],
        false,
    ));
    v.push(case(
        "numerics-error-table",
        &[
            "numerics",
            "error-table",
            "--samples",
            "2000",
            "--format",
            "csv",
        ],
        false,
    ));
    for h in [
        "horowitz45",
        "jouppi7",
        "paper45",
        "lemaire-iconip22",
        "loihi-sanafe",
    ] {
        v.push(case(
            &format!("hardware-show-{h}"),
            &["hardware", "show", h],
            false,
        ));
    }
    v.push(case("hardware-list", &["hardware", "list"], false));
    v.push(case(
        "reproduce-lmul-ecoformer",
        &[
            "reproduce",
            "--only",
            "lmul,ecoformer",
            "--out",
            "{out}/r.md",
        ],
        false,
    ));
    v
}

fn tmp_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn run_case(c: &Case, out: &Path) -> BTreeMap<String, String> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
    for (i, command) in c.commands.iter().enumerate() {
        let args: Vec<String> = command
            .iter()
            .map(|a| a.replace("{out}", &out.display().to_string()))
            .collect();
        let o = Command::new(env!("CARGO_BIN_EXE_picojoule"))
            .args(&args)
            .current_dir(repo())
            .output()
            .expect("binary runs");
        assert!(
            o.status.code() == Some(c.code),
            "golden case `{}` exited with {:?}, expected {}: {}",
            c.name,
            o.status.code(),
            c.code,
            String::from_utf8_lossy(&o.stderr)
        );
        if c.code != 0 {
            std::fs::write(out.join(format!("stderr.{}", i + 1)), &o.stderr).unwrap();
        }
        let name = if c.commands.len() == 1 {
            "stdout".to_string()
        } else {
            format!("stdout.{}", i + 1)
        };
        std::fs::write(out.join(name), &o.stdout).unwrap();
    }
    let mut hashes = BTreeMap::new();
    for path in files_below(out) {
        let rel = path.strip_prefix(out).unwrap().display().to_string();
        let bytes = normalise(&std::fs::read(&path).unwrap(), out);
        std::fs::write(&path, &bytes).unwrap();
        hashes.insert(rel, picojoule::hardware::sha256_hex(&bytes));
    }
    hashes
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(files_below(&p));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

/// Text outputs without the machine's paths; binary outputs (PNG) unchanged.
fn normalise(bytes: &[u8], out: &Path) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) => text
            .replace(&out.display().to_string(), "{out}")
            .replace(&repo().display().to_string(), "{root}")
            .into_bytes(),
        Err(_) => bytes.to_vec(),
    }
}

fn read_manifest() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join(MANIFEST)).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, h) = l.rsplit_once(' ')?;
            Some((k.to_string(), h.to_string()))
        })
        .collect()
}

fn write_manifest(entries: &BTreeMap<String, String>) {
    let mut text = String::from(
        "# SHA-256 of every golden output (tests/all/golden.rs): CASE/FILE HASH\n\
         # Regenerate with PICOJOULE_BLESS=1 (see golden.rs) in a commit that says why outputs changed.\n",
    );
    for (k, h) in entries {
        text.push_str(&format!("{k} {h}\n"));
    }
    std::fs::write(repo().join(MANIFEST), text).unwrap();
}

/// The fast and the long tier run as two tests of one process: blessing both at once must not
/// let one overwrite the other's entries.
static MANIFEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(long: bool) {
    let bless = std::env::var_os("PICOJOULE_BLESS").is_some();
    let only = std::env::var("PICOJOULE_GOLDEN_ONLY").ok();
    let manifest = read_manifest();
    let mut blessed: BTreeMap<String, String> = BTreeMap::new();
    let mut ran: Vec<String> = Vec::new();
    let work = tmp_root().join(if long { "golden-long" } else { "golden" });
    let mut problems = Vec::new();
    for c in cases().into_iter().filter(|c| c.long == long) {
        if only.as_deref().is_some_and(|o| !c.name.contains(o)) {
            continue;
        }
        let out = work.join(&c.name);
        let got = run_case(&c, &out);
        let prefix = format!("{}/", c.name);
        ran.push(prefix.clone());
        let expected: BTreeMap<&String, &String> = manifest
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .collect();
        for (file, hash) in &got {
            let key = format!("{prefix}{file}");
            match expected.get(&key) {
                _ if bless => {}
                Some(h) if *h == hash => {}
                Some(_) => problems.push(format!("{key}: output differs")),
                None if !bless => problems.push(format!("{key}: not in the manifest")),
                None => {}
            }
        }
        for k in expected.keys() {
            if !bless && !got.contains_key(&k[prefix.len()..]) {
                problems.push(format!("{k}: no longer written"));
            }
        }
        if bless {
            for (file, hash) in got {
                blessed.insert(format!("{prefix}{file}"), hash);
            }
        }
    }
    if bless {
        // Re-read under the lock: the other tier may have written its entries meanwhile.
        let _guard = MANIFEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut fresh = read_manifest();
        fresh.retain(|k, _| !ran.iter().any(|p| k.starts_with(p)));
        fresh.extend(blessed);
        write_manifest(&fresh);
        return;
    }
    assert!(
        problems.is_empty(),
        "golden outputs changed (actual outputs in {}):\n  {}\nIf the change is deliberate, \
         regenerate with PICOJOULE_BLESS=1 and say why in the commit.",
        work.display(),
        problems.join("\n  ")
    );
}

#[test]
fn golden_outputs_are_unchanged() {
    check(false);
}

#[test]
#[ignore = "long: full energy-accuracy, PVTv2, large models; run with --release -- --ignored"]
fn golden_long_outputs_are_unchanged() {
    check(true);
}

/// `reproduce` regenerates docs/reproductions.md exactly.
#[test]
#[ignore = "long: all published tables at full size; run with --release -- --ignored"]
fn reproduce_regenerates_the_document() {
    let out = tmp_root().join("golden-reproduce");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let file = out.join("reproductions.md");
    let o = super::util::picojoule(&["reproduce", "--out", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", super::util::stderr(&o));
    let got = std::fs::read_to_string(&file).unwrap();
    let want = std::fs::read_to_string(repo().join("docs/reproductions.md")).unwrap();
    assert!(
        got == want,
        "reproduce differs from docs/reproductions.md: diff {} docs/reproductions.md",
        file.display()
    );
}
