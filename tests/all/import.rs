use picojoule::weights::{load_file, load_pth};

use super::util::*;

#[test]
fn pth_fixture_reads_back_every_tensor_exactly() {
    let store = load_pth(&repo_path("tests/fixtures/spikegpt-tiny.pt")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("tests/fixtures/spikegpt-tiny.expected.json")).unwrap(),
    )
    .unwrap();
    let map = expected.as_object().unwrap();
    assert_eq!(store.len(), map.len());
    for (key, t) in map {
        let got = store.raw(key).unwrap_or_else(|| panic!("missing {key}"));
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(got.shape, shape, "{key}");
        let values: Vec<f32> = t["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got.data, values, "{key}");
    }
}

#[test]
fn imported_checkpoint_runs_and_matches_safetensors_round_trip() {
    let dir = temp_dir("import");
    let d = dir.to_str().unwrap();
    let o = picojoule(&[
        "import",
        "spikegpt",
        "tests/fixtures/spikegpt-tiny.pt",
        "--out",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 layers x 8, vocabulary 11"));
    let a = load_pth(&repo_path("tests/fixtures/spikegpt-tiny.pt")).unwrap();
    let b = load_file(&dir.join("spikegpt-tiny.safetensors")).unwrap();
    for k in a.keys() {
        assert_eq!(a.raw(k), b.raw(k), "{k}");
    }
    let scenario = write(
        &dir,
        "s.ron",
        "Scenario(name: \"imported\", seed: 3, hardware: \"horowitz45\", input: Synthetic, tokens: 16, runs: [(model: \"spikegpt-tiny.ron\"), (model: \"spikegpt-tiny.ron\", variant: Some(SpikeDriven))])",
    );
    let o = picojoule(&["run", scenario.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runs"][0]["tokens"], 16);
    assert!(v["runs"][0]["totals"]["mac"].as_u64().unwrap() > 0);
}

#[test]
fn wrong_shape_in_checkpoint_names_tensor_expected_and_found() {
    let dir = temp_dir("import-bad");
    let o = picojoule(&[
        "import",
        "spikegpt",
        "tests/fixtures/spikegpt-bad-shape.pt",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("blocks.1.att.key.weight") && err.contains("[8, 7]") && err.contains("[8, 8]"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written on error"
    );
}

#[test]
fn corrupt_or_missing_checkpoint_is_an_input_error() {
    let dir = temp_dir("import-corrupt");
    let bytes = std::fs::read(repo_path("tests/fixtures/spikegpt-tiny.pt")).unwrap();
    let cut = write(&dir, "cut.pt", "");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = picojoule(&[
        "import",
        "spikegpt",
        cut.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    let o = picojoule(&[
        "import",
        "spikegpt",
        "nope.pth",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}
