//! Tensor inputs end to end: the shipped spike-train example against the digits input it was
//! made from, NeuroBench's per-batch rule, and bad tensor files through the binary.

use std::path::Path;

use picojoule::exec;
use picojoule::input::coding::{Encoding, frames};
use picojoule::input::digits;
use picojoule::input::tensors::npy_bytes;
use picojoule::ledger::Op;
use picojoule::scenario::LoadedScenario;

use super::util::{picojoule, repo_path, stderr, temp_dir, write};

/// Samples and time steps of the shipped example, and the seed and coding of `digits-snn`.
const SAMPLES: usize = 64;
const STEPS: usize = 16;
const SEED: u64 = 42;

/// The shipped example's files: the first 64 test digits rate-coded exactly as the `digits-snn`
/// model codes them under seed 42 (bool, [64, 16, 64]), and their labels (int64, [64]).
fn example_files() -> (Vec<u8>, Vec<u8>) {
    let d = digits::read_first(&repo_path("data/digits/digits-test.csv"), SAMPLES).unwrap();
    let mut spikes = Vec::with_capacity(SAMPLES * STEPS * digits::PIXELS);
    for (i, img) in d.iter().enumerate() {
        for f in frames(Encoding::Rate, STEPS, &img.pixels, SEED, i) {
            spikes.extend(f.iter().map(|&v| v as u8));
        }
    }
    let labels: Vec<u8> = d
        .iter()
        .flat_map(|img| (img.label as i64).to_le_bytes())
        .collect();
    (
        npy_bytes("|b1", &[SAMPLES, STEPS, digits::PIXELS], &spikes),
        npy_bytes("<i8", &[SAMPLES], &labels),
    )
}

/// The shipped files are what `example_files` makes (`PICOJOULE_BLESS=1` writes them).
#[test]
fn shipped_spike_trains_are_the_rate_coded_test_digits() {
    let (x, y) = example_files();
    let (xp, yp) = (
        repo_path("data/tensors/digits-spikes.npy"),
        repo_path("data/tensors/digits-labels.npy"),
    );
    if std::env::var_os("PICOJOULE_BLESS").is_some() {
        std::fs::create_dir_all(xp.parent().unwrap()).unwrap();
        std::fs::write(&xp, &x).unwrap();
        std::fs::write(&yp, &y).unwrap();
    }
    assert!(x.len() < 100_000, "{} bytes", x.len());
    assert_eq!(std::fs::read(&xp).unwrap(), x, "{}", xp.display());
    assert_eq!(std::fs::read(&yp).unwrap(), y, "{}", yp.display());
}

fn load(path: &Path) -> LoadedScenario {
    LoadedScenario::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The same spikes through the digits input (coded by the model) and through the tensor input
/// (read as stored): the same ledger, layer by layer, and the same accuracy.
#[test]
fn tensor_input_matches_the_digits_input_on_the_same_spikes() {
    let dir = temp_dir("tensor-equiv");
    let digits_sc = write(
        &dir,
        "digits.ron",
        &format!(
            r#"Scenario(name: "d", seed: {SEED}, hardware: "horowitz45",
                input: Digits("{}"), tokens: {SAMPLES},
                runs: [(model: "{}")])"#,
            repo_path("data/digits/digits-test.csv").display(),
            repo_path("models/digits-snn.ron").display()
        ),
    );
    let a = exec::execute(&load(&digits_sc), &Default::default()).unwrap();
    let b = exec::execute(
        &load(&repo_path("scenarios/tensor-digits.ron")),
        &Default::default(),
    )
    .unwrap();
    let (a, b) = (&a[0], &b[0]);
    assert_eq!(a.ledger, b.ledger);
    assert_eq!(a.accuracy, b.accuracy);
    let acc = a.accuracy.as_ref().expect("labels give accuracy");
    assert!(acc.top1 > 0.5, "{}", acc.top1);
    // Spike trains run event-driven: the first layer does ACs, no MACs.
    let first = b.ledger.subtree("0.linear");
    assert!(first.op_total(Op::EffectiveAc) > 0);
    assert_eq!(first.op_total(Op::EffectiveMac), 0);
    assert_eq!(first.op_total(Op::Mac), 0);
}

/// A batch of a spike-train sample and a real-valued one: NeuroBench classifies the first
/// layer's batch input as not spiking, so the spike sample's effective ACs become MACs; the
/// executed work and the second layer (fed spikes by both) do not change.
#[test]
fn a_batch_with_one_real_valued_sample_counts_the_spike_sample_as_macs() {
    let dir = temp_dir("tensor-batch");
    let (steps, n_in) = (4, 6);
    let mut x = Vec::new();
    for t in 0..steps {
        for j in 0..n_in {
            x.push(((t + j) % 2) as f32); // sample 0: spikes
        }
    }
    for j in 0..steps * n_in {
        x.push(0.25 + (j % 3) as f32 * 0.5); // sample 1: real values
    }
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(
        dir.join("x.npy"),
        npy_bytes("<f4", &[2, steps, n_in], &bytes),
    )
    .unwrap();
    write(
        &dir,
        "m.ron",
        r#"Sequential(name: "m", input: [6], timesteps: 4,
            layers: [Linear(6, 5, true), Leaky(beta: 0.9, threshold: 0.2), Linear(5, 3, false), Leaky(beta: 0.9)],
            weights: SeededGain(3, 2.0))"#,
    );
    let scenario = |batch: usize| {
        write(
            &dir,
            &format!("b{batch}.ron"),
            &format!(
                r#"Scenario(name: "b", hardware: "horowitz45", input: Tensors(file: "x.npy"),
                    tokens: 2, batch: {batch}, runs: [(model: "m.ron")])"#
            ),
        )
    };
    let one = exec::execute(&load(&scenario(1)), &Default::default()).unwrap();
    let two = exec::execute(&load(&scenario(2)), &Default::default()).unwrap();
    let (l1, l2) = (&one[0].ledger, &two[0].ledger);
    let (a1, a2) = (l1.subtree("0.linear"), l2.subtree("0.linear"));
    assert!(
        a1.op_total(Op::EffectiveAc) > 0,
        "sample 0 spikes into layer 0"
    );
    assert_eq!(a2.op_total(Op::EffectiveAc), 0);
    assert_eq!(
        a2.op_total(Op::EffectiveMac),
        a1.op_total(Op::EffectiveMac) + a1.op_total(Op::EffectiveAc)
    );
    for op in [Op::Mac, Op::Ac, Op::Synop, Op::DenseSynop, Op::Spike] {
        assert_eq!(l1.totals().op_total(op), l2.totals().op_total(op), "{op:?}");
    }
    // Layer 2 reads spikes from both samples: all spiking, nothing moves.
    assert_eq!(l1.subtree("2.linear"), l2.subtree("2.linear"));
    assert!(l2.subtree("2.linear").op_total(Op::EffectiveAc) > 0);
    assert_eq!(one[0].steps, two[0].steps);
}

/// Bad tensor inputs through the binary: exit 2, the file, the tensor and both shapes named.
#[test]
fn bad_tensor_inputs_exit_2_naming_file_tensor_and_shapes() {
    let dir = temp_dir("tensor-bad");
    let st = {
        let x = vec![0u8; 3 * 2 * 10 * 4];
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, 2, 10], &x)
                .unwrap();
        safetensors::serialize(vec![("frames", view)], None).unwrap()
    };
    std::fs::write(dir.join("ten.safetensors"), st).unwrap();
    let good = std::fs::read(repo_path("data/tensors/digits-spikes.npy")).unwrap();
    std::fs::write(dir.join("cut.npy"), &good[..good.len() / 2]).unwrap();
    let model = repo_path("models/digits-snn.ron");
    let cases = [
        (
            r#"Tensors(file: "ten.safetensors", tensor: "frames")"#,
            vec!["ten.safetensors", "`frames`", "[3, 2, 10]", "[64]"],
        ),
        (r#"Tensors(file: "cut.npy")"#, vec!["cut.npy", "bytes"]),
        (
            r#"Tensors(file: "ten.safetensors", labels: "nope")"#,
            vec!["ten.safetensors", "no tensor `nope`"],
        ),
    ];
    for (i, (input, want)) in cases.iter().enumerate() {
        let sc = write(
            &dir,
            &format!("s{i}.ron"),
            &format!(
                r#"Scenario(name: "x", hardware: "horowitz45", input: {input}, tokens: 2,
                    runs: [(model: "{}")])"#,
                model.display()
            ),
        );
        let out = picojoule(&["run", sc.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{input}: {err}");
        for w in want {
            assert!(err.contains(w), "{input}: wants {w}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Image frames ([channels, height, width] per step) of any sign, stored as big-endian f64, drive
/// a convolutional net with a recurrent cell; a transposed frame shape is refused naming both.
#[test]
fn signed_image_frames_drive_a_conv_net_and_a_wrong_frame_shape_is_refused() {
    let dir = temp_dir("tensor-conv");
    let (n, steps) = (3, 2);
    let vals: Vec<f64> = (0..n * steps * 64)
        .map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0)
        .collect();
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
    std::fs::write(
        dir.join("img.npy"),
        npy_bytes(">f8", &[n, steps, 1, 8, 8], &bytes),
    )
    .unwrap();
    std::fs::write(
        dir.join("t.npy"),
        npy_bytes(">f8", &[n, steps, 8, 8, 1], &bytes),
    )
    .unwrap();
    let model = repo_path("models/digits-conv-rnn.ron");
    let sc = |file: &str| {
        write(
            &dir,
            &format!("{file}.ron"),
            &format!(
                r#"Scenario(name: "c", hardware: "horowitz45", input: Tensors(file: "{file}"),
                    tokens: {n}, runs: [(model: "{}")])"#,
                model.display()
            ),
        )
    };
    let out = exec::execute(&load(&sc("img.npy")), &Default::default()).unwrap();
    let run = &out[0];
    assert!(run.accuracy.is_none(), "no labels, no accuracy");
    let conv = run.ledger.subtree("0.conv2d");
    assert!(
        conv.op_total(Op::EffectiveMac) > 0,
        "real-valued frames run dense"
    );
    assert_eq!(conv.op_total(Op::EffectiveAc), 0);
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("8 timesteps") && w.contains("2 stored frames")),
        "{:?}",
        run.warnings
    );
    let e = exec::execute(&load(&sc("t.npy")), &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.npy") && e.contains("[8, 8, 1]") && e.contains("[1, 8, 8]"),
        "{e}"
    );
}
