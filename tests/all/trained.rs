//! The trained reference models (`models/spikegpt-sotu-*`) against their trainer: the trainer
//! (`trainer/`, burn) wrote its own logits and spike counts for the first characters of
//! `sotu-test.txt`, run as one sequence from zero state, into `models/<name>.logits.json`.
//! picojoule's fp32 execution of the shipped weights, token by token, must give the same logits
//! (relative error 1e-4, measured per token against the largest logit magnitude of that token)
//! and, for the spiking models, the same number of spikes in every LIF layer at every token.

use std::path::Path;

use picojoule::engine::Arith;
use picojoule::ledger::Op;
use picojoule::models::ModelDesc;
use picojoule::models::spikegpt::SpikeGpt;

use super::util::repo_path;

const TOLERANCE: f32 = 1e-4;

struct Check {
    tokens: Vec<usize>,
    logits: Vec<Vec<f32>>,
    spikes: Vec<(String, Vec<u64>)>,
}

/// max |got - want| over the largest |want| of the row.
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    got.iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// The `logits` rows of a trainer's check file.
fn logit_rows(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

fn load_check(name: &str) -> Check {
    let path = repo_path(&format!("models/{name}.logits.json"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let tokens = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as usize)
        .collect();
    let logits = logit_rows(&v);
    let spikes = v["spikes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, c)| {
            (
                k.clone(),
                c.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap())
                    .collect(),
            )
        })
        .collect();
    Check {
        tokens,
        logits,
        spikes,
    }
}

// One model family today; the `else` keeps this compiling when ModelDesc gains variants.
#[allow(irrefutable_let_patterns)]
fn load_model(name: &str) -> SpikeGpt {
    let path = repo_path(&format!("models/{name}.ron"));
    let ModelDesc::SpikeGpt(cfg) = ModelDesc::load(&path).unwrap() else {
        panic!("not a SpikeGPT model")
    };
    SpikeGpt::from_config(cfg, Path::new(path.parent().unwrap())).unwrap()
}

/// Runs picojoule on the check input; returns (tokens whose logits disagree, tokens whose spike
/// counts disagree, worst relative error).
fn cross_check(name: &str) -> (Vec<usize>, Vec<usize>, f32) {
    let check = load_check(name);
    let model = load_model(name);
    let arith = Arith::Exact;
    let mut st = model.new_state();
    let mut ledger = model.new_ledger(&arith);
    let mut before: Vec<u64> = vec![0; check.spikes.len()];
    let (mut bad_logits, mut bad_spikes, mut worst) = (vec![], vec![], 0.0f32);
    for (t, &tok) in check.tokens.iter().enumerate() {
        model.step(tok, &mut st, &arith, &mut ledger);
        let err = relative_error(&st.logits, &check.logits[t]);
        worst = worst.max(err);
        if err > TOLERANCE {
            bad_logits.push(t);
        }
        let mut spikes_ok = true;
        for (i, (layer, counts)) in check.spikes.iter().enumerate() {
            let total = ledger.subtree(layer).op_total(Op::Spike);
            if total - before[i] != counts[t] {
                spikes_ok = false;
            }
            before[i] = total;
        }
        if !spikes_ok {
            bad_spikes.push(t);
        }
    }
    eprintln!(
        "{name}: {} tokens, worst relative logit error {worst:e}",
        check.tokens.len()
    );
    (bad_logits, bad_spikes, worst)
}

/// The shipped RWKV twins: 2 x 64, and 2 x 96 with training seeds 1, 2 and 3.
const TWINS: [&str; 4] = [
    "spikegpt-sotu-twin",
    "spikegpt-sotu-twin-96",
    "spikegpt-sotu-twin-96-seed2",
    "spikegpt-sotu-twin-96-seed3",
];

/// The shipped character transformers.
const TRANSFORMER_LMS: [&str; 8] = [
    "transformer-sotu-softmax",
    "transformer-sotu-ecoformer",
    "transformer-sotu-softmax-96",
    "transformer-sotu-softmax-96-seed2",
    "transformer-sotu-softmax-96-seed3",
    "transformer-sotu-ecoformer-96",
    "transformer-sotu-ecoformer-96-seed2",
    "transformer-sotu-ecoformer-96-seed3",
];

/// The shipped spiking SpikeGPT models (checked with their spike counts).
const SPIKING_LMS: [&str; 5] = [
    "spikegpt-sotu-spiking",
    "spikegpt-sotu-reference",
    "spikegpt-sotu-spiking-96",
    "spikegpt-sotu-spiking-96-seed2",
    "spikegpt-sotu-spiking-96-seed3",
];

#[test]
fn trained_twins_match_their_trainer() {
    for name in TWINS {
        let (bad, bad_spikes, worst) = cross_check(name);
        assert!(
            bad.is_empty() && bad_spikes.is_empty(),
            "{name}: tokens with logits off: {bad:?}; worst relative error {worst:e}"
        );
    }
}

#[test]
fn trained_spiking_models_match_their_trainer_logits_and_spike_counts() {
    for name in SPIKING_LMS {
        let check = load_check(name);
        assert!(
            check.spikes.iter().any(|(l, _)| l.ends_with("lif2")),
            "{name}: the check file carries LIF spike counts"
        );
        let (bad, bad_spikes, worst) = cross_check(name);
        assert!(
            bad_spikes.is_empty(),
            "{name}: tokens whose spike counts differ: {bad_spikes:?}"
        );
        assert!(
            bad.is_empty(),
            "{name}: tokens with logits off: {bad:?}; worst relative error {worst:e}"
        );
    }
}

/// A trained transformer against its trainer's logits: the language model runs its check
/// characters token by token from zero state (one context window), the classifier its check
/// images. Returns the worst relative error over tokens or images.
fn transformer_cross_check(name: &str) -> f32 {
    use picojoule::input::digits;
    use picojoule::models::transformer::Transformer;
    let path = repo_path(&format!("models/{name}.ron"));
    let ModelDesc::Transformer(cfg) = ModelDesc::load(&path).unwrap() else {
        panic!("{name} is not a transformer")
    };
    let model = Transformer::from_config(cfg, path.parent().unwrap(), None).unwrap();
    assert!(
        !model.hash_learned_at_load,
        "{name}: the hash must come from the weights"
    );
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path(&format!("models/{name}.logits.json"))).unwrap(),
    )
    .unwrap();
    let want = logit_rows(&v);
    let arith = Arith::Exact;
    let got: Vec<Vec<f32>> = if model.cfg.is_lm() {
        let tokens: Vec<usize> = v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as usize)
            .collect();
        let mut st = model.new_state(tokens.len());
        let mut ledger = model.new_ledger(&arith, tokens.len());
        tokens
            .iter()
            .map(|&t| {
                model.step(t, &mut st, &arith, &mut ledger);
                st.logits.clone()
            })
            .collect()
    } else {
        let images = digits::read(&repo_path("data/digits/digits-test.csv")).unwrap();
        let mut ledger = model.new_ledger(&arith, model.cfg.patch_tokens());
        images[..want.len()]
            .iter()
            .map(|d| model.classify(&d.pixels, &arith, &mut ledger))
            .collect()
    };
    assert_eq!(got.len(), want.len());
    let mut worst = 0.0f32;
    for (g, w) in got.iter().zip(&want) {
        worst = worst.max(relative_error(g, w));
    }
    eprintln!(
        "{name}: {} rows, worst relative logit error {worst:e}",
        want.len()
    );
    worst
}

/// The EcoFormer model runs with the hash frozen in its weights.
#[test]
fn trained_transformer_lms_match_their_trainer() {
    for name in TRANSFORMER_LMS {
        let worst = transformer_cross_check(name);
        assert!(worst <= TOLERANCE, "{name}: worst relative error {worst:e}");
    }
}

/// Every shipped digit transformer: softmax and EcoFormer, training seeds 1 (no suffix), 2 and 3.
const DIGIT_TRANSFORMERS: [&str; 6] = [
    "digits-vit-trained-softmax",
    "digits-vit-trained-softmax-seed2",
    "digits-vit-trained-softmax-seed3",
    "digits-vit-trained-ecoformer",
    "digits-vit-trained-ecoformer-seed2",
    "digits-vit-trained-ecoformer-seed3",
];

#[test]
fn trained_digit_transformers_match_their_trainer() {
    for name in DIGIT_TRANSFORMERS {
        let worst = transformer_cross_check(name);
        assert!(worst <= TOLERANCE, "{name}: worst relative error {worst:e}");
    }
}

/// Every shipped convolutional digit network: ReLU and spiking (Leaky, 4 steps), training
/// seeds 1 (no suffix), 2 and 3.
const DIGIT_CNNS: [&str; 6] = [
    "digits-cnn",
    "digits-cnn-seed2",
    "digits-cnn-seed3",
    "digits-cnn-spiking",
    "digits-cnn-spiking-seed2",
    "digits-cnn-spiking-seed3",
];

/// A convolutional digit network against its trainer: the class scores (last layer summed over
/// the steps) of the check images, and for the spiking ones every Leaky layer's spike count per
/// image.
#[test]
fn trained_digit_cnns_match_their_trainer_scores_and_spike_counts() {
    use picojoule::input::digits;
    use picojoule::models::Stepper;
    use picojoule::models::sequential::Sequential;
    let images = digits::read(&repo_path("data/digits/digits-test.csv")).unwrap();
    for name in DIGIT_CNNS {
        let path = repo_path(&format!("models/{name}.ron"));
        let ModelDesc::Sequential(cfg) = ModelDesc::load(&path).unwrap() else {
            panic!("{name} is not a Sequential model")
        };
        let model = Sequential::from_config(cfg, path.parent().unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(path.with_extension("logits.json")).unwrap(),
        )
        .unwrap();
        let want = logit_rows(&v);
        let spikes = v["spikes"].as_object().unwrap();
        assert_eq!(
            spikes.len(),
            model.lif_layers().len(),
            "{name}: a count per Leaky layer"
        );
        let arith = Arith::Exact;
        let mut st = Stepper::new_state(&model, 1);
        let mut ledger = Stepper::new_ledger(&model, &arith, 1);
        let mut before = vec![0u64; spikes.len()];
        let mut worst = 0.0f32;
        for (i, d) in images[..want.len()].iter().enumerate() {
            let steps = vec![d.pixels.to_vec(); model.cfg.timesteps];
            model.run_sample(&steps, &mut st, &arith, &mut ledger);
            worst = worst.max(relative_error(Stepper::outputs(&model, &st), &want[i]));
            for (j, layer) in model.lif_layers().iter().enumerate() {
                let total = ledger.subtree(layer).op_total(Op::Spike);
                let trainer = spikes[layer.as_str()][i].as_u64().unwrap();
                assert_eq!(
                    total - before[j],
                    trainer,
                    "{name}: image {i}, layer {layer}"
                );
                before[j] = total;
            }
        }
        eprintln!(
            "{name}: {} images, worst relative score error {worst:e}",
            want.len()
        );
        assert!(worst <= TOLERANCE, "{name}: worst relative error {worst:e}");
    }
}

#[test]
fn every_shipped_trained_model_is_cross_checked() {
    let dir = repo_path("models");
    let mut shipped: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            Some(name.strip_suffix(".logits.json")?.to_string())
        })
        .collect();
    shipped.sort();
    let all: Vec<&str> = [
        &TWINS[..],
        &TRANSFORMER_LMS[..],
        &SPIKING_LMS[..],
        &DIGIT_TRANSFORMERS[..],
        &DIGIT_CNNS[..],
    ]
    .concat();
    let mut listed: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        shipped, listed,
        "check files in models/ vs the cross-checked lists"
    );
    for name in all {
        for ext in ["ron", "safetensors", "log"] {
            assert!(
                dir.join(format!("{name}.{ext}")).is_file(),
                "models/{name}.{ext}"
            );
        }
    }
}

#[test]
fn a_trained_ecoformer_can_relearn_its_hash_at_another_size_but_not_silently() {
    use picojoule::engine::attention::AttentionKind;
    use picojoule::input::digits;
    use picojoule::models::transformer::{Calibration, Transformer};
    let path = repo_path("models/digits-vit-trained-ecoformer.ron");
    let ModelDesc::Transformer(mut cfg) = ModelDesc::load(&path).unwrap() else {
        panic!("not a transformer")
    };
    let AttentionKind::EcoFormer { bits, .. } = &mut cfg.attention else {
        panic!("not EcoFormer")
    };
    *bits = 8;
    let images = digits::read(&repo_path("data/digits/digits-train.csv")).unwrap();
    let calib = Calibration::Images(images[..32].iter().map(|d| d.pixels).collect());
    let base = path.parent().unwrap();
    let err = Transformer::from_config(cfg.clone(), base, Some(&calib))
        .err()
        .expect("a 16-bit stored hash does not fit 8 bits");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("relearn_hash"), "{err}");
    cfg.relearn_hash = true;
    let m = Transformer::from_config(cfg, base, Some(&calib)).unwrap();
    assert!(m.hash_learned_at_load);
    assert_eq!(
        m.weights().raw("blocks.0.att.ksh.A").unwrap().shape,
        vec![2, 8, 25]
    );
}
