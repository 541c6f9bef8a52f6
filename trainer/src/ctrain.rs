//! Training of the convolutional digit classifiers (`--kind cnn` and `--kind spiking-cnn`):
//! 3 x 3 convolutions (the first at stride 1, the others at stride 2, padding 1), one hidden
//! linear layer and a linear readout, with ReLU (ANN) or snnTorch `Leaky` neurons (SNN, direct
//! coding for `--timesteps` steps, BPTT with the arctan surrogate). Written as a picojoule
//! `Sequential` description with `nn.Sequential` keys.

use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use picojoule::engine::leaky::LeakyReset;
use picojoule::models::ModelDesc;
use picojoule::models::sequential::{
    Config, ConvSpec, LayerSpec, LeakySpec, Weights, weight_store,
};
use picojoule::models::transformer::{DIGIT_CLASSES, DIGIT_PIXELS};
use rand::SeedableRng;

use crate::cnet::{CNet, Dropout, Seen};
use crate::ttrain::{DigitBatches, argmax_hits, read_digits, smoothed_cross_entropy, split_digits};
use crate::{Args, Kind};

/// The layer list of `--kind cnn` / `spiking-cnn` with `--conv`, `--hidden`, `--timesteps`
/// and `--beta`.
pub fn config(args: &Args) -> Config {
    let spiking = args.kind == Kind::SpikingCnn;
    let act = || {
        if spiking {
            LayerSpec::Leaky(LeakySpec {
                beta: args.beta,
                threshold: 1.0,
                reset: LeakyReset::Subtract,
            })
        } else {
            LayerSpec::ReLU
        }
    };
    let (mut channels, mut side) = (1usize, 8usize);
    let mut layers = vec![];
    for (i, &out) in args.conv.iter().enumerate() {
        let stride = if i == 0 { 1 } else { 2 };
        layers.push(LayerSpec::Conv2d(ConvSpec {
            in_channels: channels,
            out_channels: out,
            kernel: 3,
            stride,
            padding: 1,
            groups: 1,
            bias: true,
        }));
        layers.push(act());
        channels = out;
        side = (side + 2 - 3) / stride + 1;
    }
    layers.push(LayerSpec::Linear(channels * side * side, args.hidden, true));
    layers.push(act());
    layers.push(LayerSpec::Linear(args.hidden, DIGIT_CLASSES, true));
    Config {
        name: args.name.clone(),
        input: vec![1, 8, 8],
        timesteps: if spiking { args.timesteps } else { 1 },
        encoding: Default::default(),
        layers,
        weights: Weights::SeededGain(args.seed, args.gain),
        initial_state: 0.0,
    }
}

fn images(batch: &[&([f32; DIGIT_PIXELS], usize)], dev: &Device) -> Tensor<4> {
    let mut v = Vec::with_capacity(batch.len() * DIGIT_PIXELS);
    for (img, _) in batch {
        v.extend_from_slice(img);
    }
    Tensor::from_data(TensorData::new(v, [batch.len(), 1, 8, 8]), dev)
}

/// (loss in nats, accuracy) of the images, scores averaged over the steps.
fn evaluate(net: &CNet, cfg: &Config, rows: &[([f32; DIGIT_PIXELS], usize)]) -> (f64, f64) {
    let dev = Device::flex();
    let net = net.valid();
    let batch: Vec<_> = rows.iter().collect();
    let labels: Vec<usize> = rows.iter().map(|(_, l)| *l).collect();
    let scores = net
        .forward(cfg, images(&batch, &dev), None, None)
        .div_scalar(cfg.timesteps as f32);
    let loss = crate::net::cross_entropy(scores.clone(), &labels, &dev).into_scalar::<f32>();
    (
        loss as f64,
        argmax_hits(scores, &labels) as f64 / labels.len() as f64,
    )
}

pub fn run(args: &Args) -> Result<(), String> {
    let mut cfg = config(args);
    cfg.validate()?;
    let dir = args.data.join("../digits");
    let (train, valid) = split_digits(
        read_digits(&dir.join("digits-train.csv"))?,
        args.valid_stride,
    );
    let test = read_digits(&dir.join("digits-test.csv"))?;
    let mut log = crate::schedule::TrainLog::create(args)?;
    let mut say = |line: String| log.say(line);
    say(format!(
        "# {:?}: conv {:?}, hidden {}, timesteps {}, beta {}, params {}, batch {}, steps {}, lr {} -> {}, seed {}, init gain {}",
        args.kind,
        args.conv,
        args.hidden,
        cfg.timesteps,
        args.beta,
        cfg.n_params(),
        args.batch,
        args.steps,
        args.lr,
        args.lr * args.lr_final,
        args.seed,
        args.gain
    ));
    say(format!(
        "# digits: {} training images, {} held out (every {}-th row of digits-train.csv); augmentation: shift {}, rotate {} deg, scale {}; dropout {}; weight decay {} (AdamW); label smoothing {}",
        train.len(),
        valid.len(),
        args.valid_stride,
        args.shift,
        args.rotate,
        args.scale,
        args.dropout,
        args.weight_decay,
        args.label_smoothing
    ));
    let init = weight_store(&cfg, &args.out).map_err(|e| e.to_string())?;
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(args.seed);
    let dev = Device::flex().autodiff();
    let mut net = CNet::from_store(&init, &cfg, &dev);
    let mut opt = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.99)
        .with_epsilon(1e-8)
        .with_weight_decay(args.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let start = Instant::now();
    let mut running = crate::schedule::RunningMean::default();
    let mut steps_done = 0usize;
    let mut batches = DigitBatches::default();
    for step in 0..args.steps {
        let lr = crate::schedule::learning_rate(args, step);
        let rows = batches.next(&train, args, &mut rng);
        let batch: Vec<_> = rows.iter().collect();
        let labels: Vec<usize> = rows.iter().map(|(_, l)| *l).collect();
        let drop = Dropout::draw(&cfg, rows.len(), args.dropout, &mut rng, &dev);
        let scores = net
            .forward(&cfg, images(&batch, &dev), Some(&drop), None)
            .div_scalar(cfg.timesteps as f32);
        let loss = smoothed_cross_entropy(scores, &labels, args.label_smoothing, &dev);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        running.add(loss.detach().into_scalar::<f32>() as f64);
        net = opt.step(lr, net, grads);
        steps_done = step + 1;
        let cp = crate::schedule::after_step(args, step, start);
        if cp.evaluate {
            let (loss, acc) = evaluate(&net, &cfg, &valid);
            say(format!(
                "step {:>6}  lr {:.2e}  train loss {:.4}  valid loss {loss:.4}  valid accuracy {:.2}% ({} held-out images)  {:.1} min",
                step + 1,
                lr,
                running.take(),
                100.0 * acc,
                valid.len(),
                cp.minutes
            ));
        }
        if let Some(why) = cp.stop {
            say(why);
            break;
        }
    }
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    let (loss, acc) = evaluate(&net, &cfg, &valid);
    say(format!(
        "# done: {steps_done} steps in {minutes:.1} min; final held-out accuracy {:.2}% (loss {loss:.4})",
        100.0 * acc
    ));

    cfg.weights = Weights::File(format!("{}.safetensors", args.name));
    let store = net.to_store(&cfg);
    let st_path = args.out.join(format!("{}.safetensors", args.name));
    picojoule::weights::save_safetensors(&store, &st_path).map_err(|e| e.to_string())?;
    let body = ron::ser::to_string_pretty(
        &ModelDesc::Sequential(cfg.clone()),
        ron::ser::PrettyConfig::default()
            .extensions(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES),
    )
    .map_err(|e| e.to_string())?;
    let ron_text = format!(
        "// Trained by picojoule-train ({:?}); see models/TRAINING.md for the command and the log.\n{body}\n",
        args.kind
    );
    let ron_path = args.out.join(format!("{}.ron", args.name));
    std::fs::write(&ron_path, ron_text).map_err(|e| format!("{}: {e}", ron_path.display()))?;

    // Cross-check file: scores and spike counts of the first test images.
    let vdev = Device::flex();
    let n = args.check_len.min(test.len());
    let batch: Vec<_> = test[..n].iter().collect();
    let mut seen = Seen { spikes: vec![] };
    let scores = net
        .valid()
        .forward(&cfg, images(&batch, &vdev), None, Some(&mut seen));
    let v = crate::net::data_of(scores);
    let rows: Vec<&[f32]> = v.chunks(DIGIT_CLASSES).collect();
    let spikes: serde_json::Map<String, serde_json::Value> = seen
        .spikes
        .into_iter()
        .map(|(name, c)| {
            let c: Vec<u32> = c.iter().map(|x| *x as u32).collect();
            (name, serde_json::json!(c))
        })
        .collect();
    let json = serde_json::json!({
        "model": format!("{}.ron", args.name),
        "input": "first images of data/digits/digits-test.csv; logits are the class scores summed over the time steps",
        "images": n,
        "logits": rows,
        "spikes": spikes,
    });
    crate::schedule::write_check_file(args, &json)?;
    println!("wrote {}", st_path.display());
    Ok(())
}
