//! Training of the transformer reference models: character language models on the SOTU text
//! (one context window from zero state per sample, as picojoule runs them with `context`) and
//! patch-transformer digit classifiers, each with softmax or EcoFormer attention.
//!
//! EcoFormer follows its paper's recipe: start from the trained softmax model (`--init`; the
//! shared `att.qk` takes the softmax model's `att.q`), learn the kernel hash once with KSH on one
//! training mini-batch (picojoule's own `ksh::learn`, through `Transformer::new`), freeze it, and
//! fine-tune every other weight with the straight-through sign.

use std::path::Path;
use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use picojoule::engine::attention::{AttentionKind, Normalisation};
use picojoule::input::text::{CHAR_VOCAB, encode_text};
use picojoule::models::spikegpt::WeightsSpec;
use picojoule::models::transformer::{
    Activation, Calibration, Config, DIGIT_CLASSES, DIGIT_PIXELS, Task, Transformer, seeded_weights,
};
use picojoule::weights::TensorStore;
use rand::{RngExt, SeedableRng};

use crate::net::{cross_entropy, onehot};
use crate::tnet::{Hashes, TNet, patch_order};
use crate::{Args, Kind};

/// The labelled images of a digits CSV.
pub(crate) fn read_digits(
    path: &std::path::Path,
) -> Result<Vec<([f32; DIGIT_PIXELS], usize)>, String> {
    Ok(picojoule::input::digits::read(path)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|d| (d.pixels, d.label))
        .collect())
}

/// Images held out of the training digits for the periodic validation when no
/// `--valid-stride` is given: the last rows of the file.
const DIGITS_VALID: usize = 200;

/// Training and validation images: every `stride`-th row held out (rows stride-1, 2 stride-1,
/// ...), or the last `DIGITS_VALID` rows when `stride` is 0.
pub(crate) fn split_digits<T>(rows: Vec<T>, stride: usize) -> (Vec<T>, Vec<T>) {
    if stride == 0 {
        let mut train = rows;
        let valid = train.split_off(train.len() - DIGITS_VALID);
        return (train, valid);
    }
    let (mut train, mut valid) = (vec![], vec![]);
    for (i, row) in rows.into_iter().enumerate() {
        if (i + 1).is_multiple_of(stride) {
            valid.push(row);
        } else {
            train.push(row);
        }
    }
    (train, valid)
}

/// Cross entropy against targets smoothed towards the uniform distribution:
/// (1 - eps) CE(target) + eps x mean over classes of -log p.
pub(crate) fn smoothed_cross_entropy(
    logits: Tensor<2>,
    targets: &[usize],
    eps: f64,
    dev: &Device,
) -> Tensor<1> {
    if eps == 0.0 {
        return cross_entropy(logits, targets, dev);
    }
    let [r, k] = logits.dims();
    let logp = burn::tensor::activation::log_softmax(logits, 1);
    let hard = (logp.clone() * onehot(targets, k, dev)).sum().neg();
    let uniform = logp.sum().neg().div_scalar(k as f32);
    (hard.mul_scalar((1.0 - eps) as f32) + uniform.mul_scalar(eps as f32)).div_scalar(r as f32)
}

/// The image rotated by `angle` radians and scaled by `scale` about its centre (bilinear,
/// zeros outside), then moved by (dy, dx) pixels (training augmentation).
fn affine_image(
    img: &[f32; DIGIT_PIXELS],
    angle: f64,
    scale: f64,
    dy: f64,
    dx: f64,
) -> [f32; DIGIT_PIXELS] {
    let at = |r: i64, c: i64| -> f64 {
        if (0..8).contains(&r) && (0..8).contains(&c) {
            img[(r * 8 + c) as usize] as f64
        } else {
            0.0
        }
    };
    let (sin, cos) = angle.sin_cos();
    let mut out = [0.0f32; DIGIT_PIXELS];
    for r in 0..8 {
        for c in 0..8 {
            // Inverse map: output pixel -> source position.
            let (y, x) = (r as f64 - 3.5 - dy, c as f64 - 3.5 - dx);
            let sy = (cos * y - sin * x) / scale + 3.5;
            let sx = (sin * y + cos * x) / scale + 3.5;
            let (y0, x0) = (sy.floor(), sx.floor());
            let (fy, fx) = (sy - y0, sx - x0);
            let (y0, x0) = (y0 as i64, x0 as i64);
            let v = at(y0, x0) * (1.0 - fy) * (1.0 - fx)
                + at(y0, x0 + 1) * (1.0 - fy) * fx
                + at(y0 + 1, x0) * fy * (1.0 - fx)
                + at(y0 + 1, x0 + 1) * fy * fx;
            out[r * 8 + c] = v as f32;
        }
    }
    out
}

pub(crate) fn argmax_hits(logits: Tensor<2>, targets: &[usize]) -> usize {
    let [_, k] = logits.dims();
    let v = logits.into_data().as_slice::<f32>().expect("f32").to_vec();
    v.chunks(k)
        .zip(targets)
        .filter(|(row, t)| {
            let best = (0..k).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            best == **t
        })
        .count()
}

pub fn config(args: &Args) -> Config {
    let attention = if matches!(args.kind, Kind::Ecoformer | Kind::VitEcoformer) {
        AttentionKind::EcoFormer {
            bits: args.bits,
            anchors: args.anchors,
            normalisation: Normalisation::Normalised,
        }
    } else {
        AttentionKind::Softmax
    };
    let lm = matches!(args.kind, Kind::Softmax | Kind::Ecoformer);
    Config {
        name: args.name.clone(),
        task: if lm {
            Task::CausalLm
        } else {
            Task::DigitsClassifier { patch: args.patch }
        },
        n_layer: args.n_layer,
        n_embd: args.n_embd,
        n_head: args.n_head,
        vocab_size: CHAR_VOCAB,
        mlp_mult: args.ffn_mult,
        activation: Activation::Gelu,
        attention,
        calibration: args.calibration,
        layer_norm_eps: 1e-5,
        weights: WeightsSpec::File(format!("{}.safetensors", args.name)),
        head_fit: None,
        context: lm.then_some(args.ctx),
        positional: lm,
        relearn_hash: false,
    }
}

/// Starting weights: seeded, or a trained softmax model's (`--init`) mapped to this model's keys.
fn initial_store(cfg: &Config, args: &Args) -> Result<TensorStore, String> {
    let seeded = seeded_weights(cfg, args.seed);
    let Some(path) = &args.init else {
        return Ok(seeded);
    };
    let init = picojoule::weights::load_file(path).map_err(|e| e.to_string())?;
    let mut store = TensorStore::new(format!("{} (init)", path.display()));
    for (key, shape) in cfg.weight_keys() {
        let source = key.replace("att.qk.", "att.q.");
        let t = init
            .raw(&source)
            .ok_or_else(|| format!("{}: no tensor `{source}`", path.display()))?;
        if t.shape != shape {
            return Err(format!(
                "{}: `{source}` has shape {:?}, expected {shape:?}",
                path.display(),
                t.shape
            ));
        }
        store.insert(key, shape, t.data.clone());
    }
    Ok(store)
}

enum Data {
    Text {
        train: Vec<usize>,
        valid: Vec<usize>,
        test: Vec<usize>,
    },
    Digits {
        train: Vec<([f32; DIGIT_PIXELS], usize)>,
        valid: Vec<([f32; DIGIT_PIXELS], usize)>,
        test: Vec<([f32; DIGIT_PIXELS], usize)>,
    },
}

fn read_tokens(path: &Path) -> Result<Vec<usize>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(encode_text(&text))
}

/// The image moved by (dy, dx) pixels, zeros shifted in (training augmentation).
fn shift_image(img: &[f32; DIGIT_PIXELS], dy: i64, dx: i64) -> [f32; DIGIT_PIXELS] {
    let mut out = [0.0f32; DIGIT_PIXELS];
    for r in 0..8i64 {
        for c in 0..8i64 {
            let (sr, sc) = (r - dy, c - dx);
            if (0..8).contains(&sr) && (0..8).contains(&sc) {
                out[(r * 8 + c) as usize] = img[(sr * 8 + sc) as usize];
            }
        }
    }
    out
}

/// Training batches of digit images: seeded shuffles, one epoch after another, each image
/// augmented as the flags say (integer shift alone, or rotation and scale then shift).
#[derive(Default)]
pub(crate) struct DigitBatches {
    perm: Vec<usize>,
    cursor: usize,
}

impl DigitBatches {
    pub(crate) fn next(
        &mut self,
        train: &[([f32; DIGIT_PIXELS], usize)],
        args: &Args,
        rng: &mut rand::rngs::Xoshiro256PlusPlus,
    ) -> Vec<([f32; DIGIT_PIXELS], usize)> {
        if self.cursor + args.batch > self.perm.len() {
            // A new epoch: a fresh seeded shuffle (Fisher-Yates).
            self.perm = (0..train.len()).collect();
            for i in (1..self.perm.len()).rev() {
                self.perm.swap(i, rng.random_range(0..=i));
            }
            self.cursor = 0;
        }
        let picked = &self.perm[self.cursor..self.cursor + args.batch];
        self.cursor += args.batch;
        picked
            .iter()
            .map(|&i| {
                let (img, label) = &train[i];
                let s = args.shift as i64;
                let (dy, dx) = (rng.random_range(-s..=s), rng.random_range(-s..=s));
                if args.rotate == 0.0 && args.scale == 0.0 {
                    return (shift_image(img, dy, dx), *label);
                }
                let a = args.rotate.to_radians();
                let angle = rng.random_range(-a..=a);
                let scale = 1.0 + rng.random_range(-args.scale..=args.scale);
                (
                    affine_image(img, angle, scale, dy as f64, dx as f64),
                    *label,
                )
            })
            .collect()
    }
}

/// Images [B, N, p*p] in picojoule's patch order.
fn patches(imgs: &[&[f32; DIGIT_PIXELS]], order: &[usize], pp: usize, dev: &Device) -> Tensor<3> {
    let mut v = Vec::with_capacity(imgs.len() * DIGIT_PIXELS);
    for img in imgs {
        v.extend(order.iter().map(|&i| img[i]));
    }
    Tensor::from_data(TensorData::new(v, [imgs.len(), DIGIT_PIXELS / pp, pp]), dev)
}

struct Trainer<'a> {
    cfg: &'a Config,
    hashes: Option<Hashes>,
    hashes_valid: Option<Hashes>,
    order: Vec<usize>,
    pp: usize,
}

impl Trainer<'_> {
    /// Loss (nats) and hits of one batch: LM windows (inputs and targets, row-major B x T) or
    /// images with labels.
    fn lm_loss(
        &self,
        net: &TNet,
        hashes: Option<&Hashes>,
        x: &[usize],
        y: &[usize],
        b: usize,
        t: usize,
        dev: &Device,
    ) -> Tensor<1> {
        let logits = net.forward_lm(self.cfg, hashes, onehot(x, CHAR_VOCAB, dev), b, t);
        cross_entropy(logits.reshape([b * t, CHAR_VOCAB]), y, dev)
    }

    fn digits_logits(
        &self,
        net: &TNet,
        hashes: Option<&Hashes>,
        batch: &[&([f32; DIGIT_PIXELS], usize)],
        dev: &Device,
    ) -> Tensor<2> {
        let imgs: Vec<&[f32; DIGIT_PIXELS]> = batch.iter().map(|(i, _)| i).collect();
        net.forward_digits(self.cfg, hashes, patches(&imgs, &self.order, self.pp, dev))
    }

    /// Validation: bits per character over `windows` context windows of the validation text
    /// (LM), or (loss in nats, accuracy) on the held-out digits.
    fn evaluate(&self, net: &TNet, data: &Data, windows: usize, ctx: usize) -> (f64, f64) {
        let dev = Device::flex();
        let net = net.valid();
        let hashes = self.hashes_valid.as_ref();
        match data {
            Data::Text { valid, .. } => {
                let n = ((valid.len() - 1) / ctx).min(windows);
                let (mut total, mut count) = (0.0, 0usize);
                for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
                    let (mut x, mut y) = (vec![], vec![]);
                    for &w in chunk {
                        x.extend_from_slice(&valid[w * ctx..(w + 1) * ctx]);
                        y.extend_from_slice(&valid[w * ctx + 1..(w + 1) * ctx + 1]);
                    }
                    let loss = self.lm_loss(&net, hashes, &x, &y, chunk.len(), ctx, &dev);
                    total += loss.into_scalar::<f32>() as f64 * (chunk.len() * ctx) as f64;
                    count += chunk.len() * ctx;
                }
                (total / count as f64 / std::f64::consts::LN_2, f64::NAN)
            }
            Data::Digits { valid, .. } => {
                let batch: Vec<_> = valid.iter().collect();
                let labels: Vec<usize> = valid.iter().map(|(_, l)| *l).collect();
                let logits = self.digits_logits(&net, hashes, &batch, &dev);
                let loss = cross_entropy(logits.clone(), &labels, &dev).into_scalar::<f32>();
                (
                    loss as f64,
                    argmax_hits(logits, &labels) as f64 / labels.len() as f64,
                )
            }
        }
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let cfg = config(args);
    cfg.validate()?;
    let lm = cfg.is_lm();
    let data = if lm {
        Data::Text {
            train: read_tokens(&args.data.join("sotu-train.txt"))?,
            valid: read_tokens(&args.data.join("sotu-valid.txt"))?,
            test: read_tokens(&args.data.join("sotu-test.txt"))?,
        }
    } else {
        let dir = args.data.join("../digits");
        let rows = read_digits(&dir.join("digits-train.csv")).map_err(|e| e.to_string())?;
        let (train, valid) = split_digits(rows, args.valid_stride);
        Data::Digits {
            train,
            valid,
            test: read_digits(&dir.join("digits-test.csv")).map_err(|e| e.to_string())?,
        }
    };
    let mut log = crate::schedule::TrainLog::create(args)?;
    let mut say = |line: String| log.say(line);
    say(format!(
        "# {:?}: {} attention, n_layer {}, n_embd {}, n_head {}, mlp_mult {}, params {}, batch {}, ctx {}, steps {}, lr {} -> {}, seed {}, shift {}",
        args.kind,
        cfg.attention.name(),
        cfg.n_layer,
        cfg.n_embd,
        cfg.n_head,
        cfg.mlp_mult,
        cfg.n_params(),
        args.batch,
        args.ctx,
        args.steps,
        args.lr,
        args.lr * args.lr_final,
        args.seed,
        args.shift
    ));
    if let Data::Digits { train, valid, .. } = &data {
        say(format!(
            "# digits: {} training images, {} held out ({}); augmentation: shift {}, rotate {} deg, scale {}; weight decay {}{}; label smoothing {}",
            train.len(),
            valid.len(),
            if args.valid_stride == 0 {
                "the last rows of digits-train.csv".to_string()
            } else {
                format!("every {}-th row of digits-train.csv", args.valid_stride)
            },
            args.shift,
            args.rotate,
            args.scale,
            args.weight_decay,
            if args.weight_decay > 0.0 {
                " (AdamW)"
            } else {
                " (Adam)"
            },
            args.label_smoothing
        ));
    }
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(args.seed);

    // Starting weights, and for EcoFormer the hash learned once (KSH) on one training batch.
    let mut store = initial_store(&cfg, args)?;
    if let Some(p) = &args.init {
        say(format!("# initial weights from {}", p.display()));
    }
    let is_eco = matches!(cfg.attention, AttentionKind::EcoFormer { .. });
    if is_eco {
        let calib = match &data {
            Data::Text { train, .. } => {
                let s = rng.random_range(0..train.len() - args.calibration);
                Calibration::Tokens(train[s..s + args.calibration].to_vec())
            }
            Data::Digits { train, .. } => Calibration::Images(
                (0..args.calibration)
                    .map(|_| train[rng.random_range(0..train.len())].0)
                    .collect(),
            ),
        };
        let t0 = Instant::now();
        let model =
            Transformer::new(cfg.clone(), store, Some(&calib)).map_err(|e| e.to_string())?;
        store = model.weights().clone();
        say(format!(
            "# kernel hash learned by KSH on {} calibration {} in {:.1} s, then frozen",
            args.calibration,
            if lm { "tokens" } else { "images" },
            t0.elapsed().as_secs_f64()
        ));
    }
    let dev = Device::flex().autodiff();
    let vdev = Device::flex();
    let mut net = TNet::from_store(&store, &cfg, &dev);
    let trainer = Trainer {
        cfg: &cfg,
        hashes: is_eco.then(|| Hashes::from_store(&store, cfg.n_layer, &dev)),
        hashes_valid: is_eco.then(|| Hashes::from_store(&store, cfg.n_layer, &vdev)),
        order: patch_order(&cfg),
        pp: match cfg.task {
            Task::DigitsClassifier { patch } => patch * patch,
            Task::CausalLm => 0,
        },
    };
    let mut opt = if args.weight_decay > 0.0 {
        AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.99)
            .with_epsilon(1e-8)
            .with_weight_decay(args.weight_decay as f32)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
            .init()
    } else {
        AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.99)
            .with_epsilon(1e-8)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
            .init()
    };

    let n_valid = match &data {
        Data::Digits { valid, .. } => valid.len(),
        Data::Text { .. } => 0,
    };
    let start = Instant::now();
    let mut running = crate::schedule::RunningMean::default();
    let mut steps_done = 0usize;
    let mut batches = DigitBatches::default();
    for step in 0..args.steps {
        let lr = crate::schedule::learning_rate(args, step);
        let loss = match &data {
            Data::Text { train, .. } => {
                let (mut x, mut y) = (vec![], vec![]);
                for _ in 0..args.batch {
                    let s = rng.random_range(0..train.len() - args.ctx - 1);
                    x.extend_from_slice(&train[s..s + args.ctx]);
                    y.extend_from_slice(&train[s + 1..s + args.ctx + 1]);
                }
                trainer.lm_loss(
                    &net,
                    trainer.hashes.as_ref(),
                    &x,
                    &y,
                    args.batch,
                    args.ctx,
                    &dev,
                )
            }
            Data::Digits { train, .. } => {
                let shifted = batches.next(train, args, &mut rng);
                let batch: Vec<_> = shifted.iter().collect();
                let labels: Vec<usize> = batch.iter().map(|(_, l)| *l).collect();
                let logits = trainer.digits_logits(&net, trainer.hashes.as_ref(), &batch, &dev);
                smoothed_cross_entropy(logits, &labels, args.label_smoothing, &dev)
            }
        };
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        running.add(loss.detach().into_scalar::<f32>() as f64);
        net = opt.step(lr, net, grads);
        steps_done = step + 1;
        let cp = crate::schedule::after_step(args, step, start);
        let minutes = cp.minutes;
        if cp.evaluate {
            let last_valid = trainer.evaluate(&net, &data, args.eval_windows, args.ctx);
            let train_loss = running.take();
            say(if lm {
                format!(
                    "step {:>6}  lr {:.2e}  train {:.4} bits/char  valid {:.4} bits/char ({} windows)  {:.1} min",
                    step + 1,
                    lr,
                    train_loss / std::f64::consts::LN_2,
                    last_valid.0,
                    args.eval_windows,
                    minutes
                )
            } else {
                format!(
                    "step {:>6}  lr {:.2e}  train loss {:.4}  valid loss {:.4}  valid accuracy {:.2}% ({} held-out images)  {:.1} min",
                    step + 1,
                    lr,
                    train_loss,
                    last_valid.0,
                    100.0 * last_valid.1,
                    n_valid,
                    minutes
                )
            });
        }
        if let Some(why) = cp.stop {
            say(why);
            break;
        }
    }
    let train_minutes = start.elapsed().as_secs_f64() / 60.0;
    let full = trainer.evaluate(&net, &data, usize::MAX, args.ctx);
    say(if lm {
        format!(
            "# done: {steps_done} steps in {train_minutes:.1} min; final valid (every {}-char window of sotu-valid.txt from zero state) {:.4} bits/char",
            args.ctx, full.0
        )
    } else {
        format!(
            "# done: {steps_done} steps in {train_minutes:.1} min; final held-out accuracy {:.2}% (loss {:.4})",
            100.0 * full.1,
            full.0
        )
    });

    let hashes_store = trainer.hashes_valid.clone();
    let out_store = net.to_store(&cfg, hashes_store.as_ref());
    let st_path = args.out.join(format!("{}.safetensors", args.name));
    picojoule::weights::save_safetensors(&out_store, &st_path).map_err(|e| e.to_string())?;
    write_description(args, &cfg)?;

    // Cross-check file: logits of a fixed input computed here, for tests/all/trained.rs.
    let vnet = net.valid();
    let hashes = trainer.hashes_valid.as_ref();
    let json = match &data {
        Data::Text { test, .. } => {
            let n = args.check_len.min(args.ctx).min(test.len());
            let check = &test[..n];
            let logits = vnet.forward_lm(&cfg, hashes, onehot(check, CHAR_VOCAB, &vdev), 1, n);
            let v = logits.into_data().as_slice::<f32>().expect("f32").to_vec();
            let rows: Vec<&[f32]> = v.chunks(CHAR_VOCAB).collect();
            serde_json::json!({
                "model": format!("{}.ron", args.name),
                "input": "first characters of data/text/sotu-test.txt, one context window from zero state",
                "tokens": check,
                "logits": rows,
            })
        }
        Data::Digits { test, .. } => {
            let n = args.check_len.min(test.len());
            let batch: Vec<_> = test[..n].iter().collect();
            let logits = trainer.digits_logits(&vnet, hashes, &batch, &vdev);
            let v = logits.into_data().as_slice::<f32>().expect("f32").to_vec();
            let rows: Vec<&[f32]> = v.chunks(DIGIT_CLASSES).collect();
            serde_json::json!({
                "model": format!("{}.ron", args.name),
                "input": "first images of data/digits/digits-test.csv",
                "images": n,
                "logits": rows,
            })
        }
    };
    crate::schedule::write_check_file(args, &json)?;
    println!("wrote {}", st_path.display());
    Ok(())
}

fn write_description(args: &Args, cfg: &Config) -> Result<(), String> {
    let attention = match cfg.attention {
        AttentionKind::EcoFormer { bits, anchors, .. } => {
            format!("EcoFormer(bits: {bits}, anchors: {anchors}, normalisation: Normalised)")
        }
        _ => "Softmax".to_string(),
    };
    let (task, extra) = match (&cfg.task, cfg.context) {
        (Task::CausalLm, Some(c)) => (
            "CausalLm".to_string(),
            format!(
                "    vocab_size: {},\n    context: Some({c}),\n    positional: true,\n",
                cfg.vocab_size
            ),
        ),
        (Task::DigitsClassifier { patch }, _) => {
            (format!("DigitsClassifier(patch: {patch})"), String::new())
        }
        _ => unreachable!("language models are trained with a context"),
    };
    let hash_note = if matches!(cfg.attention, AttentionKind::EcoFormer { .. }) {
        "// The kernel hash (blocks.{i}.att.ksh.*) is in the weights: learned by KSH once, then frozen.\n"
    } else {
        ""
    };
    let ron = format!(
        "// Trained by picojoule-train ({kind:?}); see models/TRAINING.md for the command and the log.\n\
         {hash_note}Transformer(\n    name: \"{name}\",\n    task: {task},\n    n_layer: {nl},\n    n_embd: {d},\n    n_head: {h},\n{extra}    mlp_mult: {mm},\n    activation: Gelu,\n    attention: {attention},\n    calibration: {cal},\n    weights: File(\"{name}.safetensors\"),\n)\n",
        kind = args.kind,
        name = cfg.name,
        nl = cfg.n_layer,
        d = cfg.n_embd,
        h = cfg.n_head,
        mm = cfg.mlp_mult,
        cal = cfg.calibration,
    );
    std::fs::write(args.out.join(format!("{}.ron", args.name)), ron).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> [f32; DIGIT_PIXELS] {
        std::array::from_fn(|i| i as f32 + 1.0)
    }

    #[test]
    fn affine_without_rotation_or_scale_is_the_integer_shift() {
        let img = ramp();
        for (dy, dx) in [(0, 0), (1, -2), (-2, 1), (2, 2)] {
            assert_eq!(
                affine_image(&img, 0.0, 1.0, dy as f64, dx as f64),
                shift_image(&img, dy, dx)
            );
        }
    }

    #[test]
    fn a_quarter_turn_moves_the_top_row_to_a_side_column() {
        let mut img = [0.0f32; DIGIT_PIXELS];
        img[..8].fill(1.0);
        let out = affine_image(&img, std::f64::consts::FRAC_PI_2, 1.0, 0.0, 0.0);
        let column: Vec<f32> = (0..8).map(|r| out[r * 8]).collect();
        let other: Vec<f32> = (0..8).map(|r| out[r * 8 + 7]).collect();
        assert!(
            column.iter().all(|v| (v - 1.0).abs() < 1e-5)
                || other.iter().all(|v| (v - 1.0).abs() < 1e-5),
            "{out:?}"
        );
        assert!((out.iter().sum::<f32>() - 8.0).abs() < 1e-4);
    }

    #[test]
    fn a_strided_split_holds_out_every_kth_row_and_keeps_the_rest() {
        let (train, valid) = split_digits((0..20).collect::<Vec<_>>(), 7);
        assert_eq!(valid, vec![6, 13]);
        assert_eq!(train.len(), 18);
        assert!(!train.contains(&6) && !train.contains(&13));
        let (train, valid) = split_digits((0..300).collect::<Vec<_>>(), 0);
        assert_eq!(valid.len(), DIGITS_VALID);
        assert_eq!(valid[0], 100);
        assert_eq!(train.len(), 100);
    }
}
