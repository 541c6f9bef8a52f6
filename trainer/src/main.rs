//! picojoule-train: trains picojoule's reference models with burn (pure-Rust CPU backend `flex`):
//! SpikeGPT-style character models (`net.rs`) and softmax / EcoFormer transformers, character
//! language models and digit classifiers (`tnet.rs`, `ttrain.rs`). Writes `<name>.ron`,
//! `<name>.safetensors` (picojoule's checkpoint keys and torch shapes), `<name>.logits.json`
//! (logits and spike counts for a fixed input, for the cross-check in `tests/all/trained.rs`)
//! and `<name>.log` (training log).

mod cnet;
mod ctrain;
mod net;
mod schedule;
mod tnet;
mod ttrain;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use clap::Parser;
use picojoule::input::text::{CHAR_VOCAB, encode_text};
use picojoule::models::spikegpt::{Config, Variant, WeightsSpec, seeded_weights};

use net::{Kind, Net, Spikes, State};

#[derive(Parser, Debug)]
#[command(
    name = "picojoule-train",
    about = "Train picojoule's reference models (SpikeGPT-style and transformer; burn, CPU)"
)]
pub struct Args {
    /// Which form of the network to train.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Model name; files are written as <out>/<name>.{ron,safetensors,logits.json,log}.
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    #[arg(long, default_value = "data/text")]
    pub data: PathBuf,
    #[arg(long, default_value_t = 2)]
    pub n_layer: usize,
    #[arg(long, default_value_t = 64)]
    pub n_embd: usize,
    #[arg(long, default_value_t = 4)]
    pub ffn_mult: usize,
    /// Parallel streams per step.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Tokens per window (truncated BPTT length; the state is carried across windows).
    #[arg(long, default_value_t = 64)]
    pub ctx: usize,
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Final learning rate as a fraction of --lr (cosine decay).
    #[arg(long, default_value_t = 0.1)]
    pub lr_final: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 200)]
    pub eval_every: usize,
    /// Windows of the validation text per stream used by the periodic evaluation.
    #[arg(long, default_value_t = 8)]
    pub eval_windows: usize,
    /// Stop after this many minutes of training (the model is saved anyway).
    #[arg(long, default_value_t = 25.0)]
    pub max_minutes: f64,
    /// Stop after this many steps, keeping the learning-rate schedule of --steps (to repeat a run
    /// that --max-minutes cut short).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Characters of sotu-test.txt run from zero state for the cross-check file.
    #[arg(long, default_value_t = 64)]
    pub check_len: usize,
    /// Transformers: attention heads.
    #[arg(long, default_value_t = 4)]
    pub n_head: usize,
    /// Digits transformers: patch side (2 gives 16 tokens of 4 pixels).
    #[arg(long, default_value_t = 2)]
    pub patch: usize,
    /// EcoFormer: hash bits per head.
    #[arg(long, default_value_t = 16)]
    pub bits: usize,
    /// EcoFormer: kernel anchors per head.
    #[arg(long, default_value_t = 25)]
    pub anchors: usize,
    /// EcoFormer: calibration tokens (LM) or images (digits) the hash is learned on.
    #[arg(long, default_value_t = 256)]
    pub calibration: usize,
    /// Transformers: start from these weights (a trained softmax model; EcoFormer's shared
    /// `att.qk` takes its `att.q`).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Digits: random shifts of up to this many pixels in each direction (augmentation).
    #[arg(long, default_value_t = 0)]
    pub shift: usize,
    /// Digits: random rotations of up to this many degrees either way (augmentation; bilinear
    /// resampling about the image centre, before the shift).
    #[arg(long, default_value_t = 0.0)]
    pub rotate: f64,
    /// Digits: random scaling by a factor in [1 - s, 1 + s] (augmentation, with --rotate).
    #[arg(long, default_value_t = 0.0)]
    pub scale: f64,
    /// Digits: hold out every K-th row of digits-train.csv for validation (rows K-1, 2K-1, ...)
    /// instead of the last 200 rows (0).
    #[arg(long, default_value_t = 0)]
    pub valid_stride: usize,
    /// Transformers: decoupled weight decay (AdamW) with this coefficient; 0 trains with Adam.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Digits: label smoothing of the training targets (0 = plain cross entropy).
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f64,
    /// Convolutional digit networks: output channels of each 3 x 3 convolution (the first at
    /// stride 1, the others at stride 2).
    #[arg(long, value_delimiter = ',', default_value = "16,32")]
    pub conv: Vec<usize>,
    /// Convolutional digit networks: width of the hidden linear layer.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Spiking convolutional network: steps per image (direct coding).
    #[arg(long, default_value_t = 4)]
    pub timesteps: usize,
    /// Spiking convolutional network: membrane decay of every Leaky layer.
    #[arg(long, default_value_t = 0.9)]
    pub beta: f32,
    /// Convolutional digit networks: dropout on the inputs of the linear layers (training only).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Convolutional digit networks: gain on the seeded PyTorch-default initialisation.
    #[arg(long, default_value_t = 1.0)]
    pub gain: f32,
}

fn onehot(tokens: &[usize], dev: &Device) -> Tensor<2> {
    net::onehot(tokens, CHAR_VOCAB, dev)
}

/// Mean cross entropy (nats) of logits [B, T, V] against targets (row-major B x T).
fn loss_of(logits: Tensor<3>, targets: &[usize], dev: &Device) -> Tensor<1> {
    let [b, t, v] = logits.dims();
    net::cross_entropy(logits.reshape([b * t, v]), targets, dev)
}

/// B contiguous streams over `tokens`; window `w` of stream `j` (inputs and next-token targets).
struct Streams {
    tokens: Vec<usize>,
    b: usize,
    t: usize,
    len: usize,
}

impl Streams {
    fn new(tokens: Vec<usize>, b: usize, t: usize) -> Streams {
        let len = tokens.len() / b;
        Streams { tokens, b, t, len }
    }
    fn windows(&self) -> usize {
        (self.len - 1) / self.t
    }
    fn window(&self, w: usize) -> (Vec<usize>, Vec<usize>) {
        let (mut x, mut y) = (
            Vec::with_capacity(self.b * self.t),
            Vec::with_capacity(self.b * self.t),
        );
        for j in 0..self.b {
            let s = j * self.len + w * self.t;
            x.extend_from_slice(&self.tokens[s..s + self.t]);
            y.extend_from_slice(&self.tokens[s + 1..s + 1 + self.t]);
        }
        (x, y)
    }
}

/// Mean validation loss (nats/char) over the first `windows` windows of every stream.
fn evaluate(net: &Net, kind: Kind, cfg: &Config, valid: &Streams, windows: usize) -> f64 {
    let dev = Device::flex();
    let net = net.valid();
    let mut st = State::zeros(cfg.n_layer, valid.b, cfg.n_embd, &dev);
    let mut total = 0.0;
    let n = windows.min(valid.windows());
    for w in 0..n {
        let (x, y) = valid.window(w);
        let logits = net.forward(kind, onehot(&x, &dev), valid.b, valid.t, &mut st, None);
        total += loss_of(logits, &y, &dev).into_scalar::<f32>() as f64;
    }
    total / n as f64
}

fn bits(nats: f64) -> f64 {
    nats / std::f64::consts::LN_2
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn read_tokens(path: &Path) -> Result<Vec<usize>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(encode_text(&text))
}

fn run(args: &Args) -> Result<(), String> {
    if matches!(args.kind, Kind::Cnn | Kind::SpikingCnn) {
        return ctrain::run(args);
    }
    if args.kind.is_transformer() {
        return ttrain::run(args);
    }
    let kind = args.kind;
    let variant = match kind {
        Kind::Twin => Variant::NonSpiking,
        Kind::Reference => Variant::Reference,
        Kind::Spiking => Variant::SpikeDriven,
        _ => unreachable!("transformers and convolutional networks have their own trainers"),
    };
    let cfg = Config {
        name: args.name.clone(),
        n_layer: args.n_layer,
        n_embd: args.n_embd,
        vocab_size: CHAR_VOCAB,
        ffn_mult: args.ffn_mult,
        variant,
        binary_embedding: kind.binary_embedding(),
        rescale_every: None,
        lif: Default::default(),
        layer_norm_eps: net::EPS,
        weights: WeightsSpec::File(format!("{}.safetensors", args.name)),
    };
    cfg.validate()?;
    let train = Streams::new(
        read_tokens(&args.data.join("sotu-train.txt"))?,
        args.batch,
        args.ctx,
    );
    let valid = Streams::new(
        read_tokens(&args.data.join("sotu-valid.txt"))?,
        args.batch,
        args.ctx,
    );
    let test = read_tokens(&args.data.join("sotu-test.txt"))?;
    let mut log = crate::schedule::TrainLog::create(args)?;
    let mut say = |line: String| log.say(line);
    say(format!(
        "# kind {:?}, n_layer {}, n_embd {}, ffn_mult {}, params {}, batch {}, ctx {}, steps {}, lr {} -> {}, seed {}",
        kind,
        cfg.n_layer,
        cfg.n_embd,
        cfg.ffn_mult,
        cfg.n_params(),
        args.batch,
        args.ctx,
        args.steps,
        args.lr,
        args.lr * args.lr_final,
        args.seed
    ));
    say(format!(
        "# train {} chars ({} windows per stream), valid {} chars",
        train.tokens.len(),
        train.windows(),
        valid.tokens.len()
    ));

    // Initialisation: picojoule's seeded RWKV-4 initialisation (time parameters per RWKV-4,
    // Gaussian matrices); the twin starts with small output projections (near-identity blocks).
    let mut init = seeded_weights(&cfg, args.seed);
    if kind == Kind::Twin {
        for key in init.keys().map(String::from).collect::<Vec<_>>() {
            if key.ends_with("att.output.weight") || key.ends_with("ffn.value.weight") {
                let t = init.raw(&key).expect("key").clone();
                init.insert(key, t.shape, t.data.iter().map(|v| v * 0.05).collect());
            }
        }
    }
    let dev = Device::flex().autodiff();
    let mut net = Net::from_store(&init, cfg.n_layer, cfg.n_embd, &dev);
    let mut opt = AdamConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.99)
        .with_epsilon(1e-8)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();

    let start = Instant::now();
    let mut state = State::zeros(cfg.n_layer, args.batch, cfg.n_embd, &dev);
    let mut window = 0usize;
    let mut running = schedule::RunningMean::default();
    let mut steps_done = 0;
    let mut last_valid = f64::NAN;
    for step in 0..args.steps {
        if window >= train.windows() {
            window = 0;
            state = State::zeros(cfg.n_layer, args.batch, cfg.n_embd, &dev);
        }
        let (x, y) = train.window(window);
        window += 1;
        let lr = schedule::learning_rate(args, step);
        let logits = net.forward(
            kind,
            onehot(&x, &dev),
            args.batch,
            args.ctx,
            &mut state,
            None,
        );
        let loss = loss_of(logits, &y, &dev);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        running.add(loss.clone().detach().into_scalar::<f32>() as f64);
        net = opt.step(lr, net, grads);
        state = state.detach();
        steps_done = step + 1;
        let cp = schedule::after_step(args, step, start);
        if cp.evaluate {
            last_valid = evaluate(&net, kind, &cfg, &valid, args.eval_windows);
            say(format!(
                "step {:>6}  lr {:.2e}  train {:.4} bits/char  valid {:.4} bits/char ({} windows)  {:.1} min",
                step + 1,
                lr,
                bits(running.take()),
                bits(last_valid),
                args.eval_windows,
                cp.minutes
            ));
        }
        if let Some(why) = cp.stop {
            say(why);
            break;
        }
    }
    let train_minutes = start.elapsed().as_secs_f64() / 60.0;
    let full_valid = evaluate(&net, kind, &cfg, &valid, usize::MAX);
    say(format!(
        "# done: {steps_done} steps in {train_minutes:.1} min; final valid (all {} chars as {} streams, state carried) {:.4} bits/char; last periodic {:.4}",
        valid.b * (valid.windows() * valid.t),
        valid.b,
        bits(full_valid),
        bits(last_valid)
    ));

    // Weights with picojoule's checkpoint keys.
    let store = net.to_store(&cfg.checkpoint_keys());
    let st_path = args.out.join(format!("{}.safetensors", args.name));
    picojoule::weights::save_safetensors(&store, &st_path).map_err(|e| e.to_string())?;

    // Model description.
    let ron = format!(
        "// Trained by picojoule-train ({kind:?}); see models/TRAINING.md for the command and the log.\n\
         SpikeGpt(\n    name: \"{}\",\n    n_layer: {},\n    n_embd: {},\n    vocab_size: {},\n    ffn_mult: {},\n    variant: {},\n    binary_embedding: {},\n    \
         lif: (tau: 2.0, v_threshold: 1.0, v_reset: 0.0, reset: Hard, decay_input: true),\n    weights: File(\"{}.safetensors\"),\n)\n",
        cfg.name,
        cfg.n_layer,
        cfg.n_embd,
        cfg.vocab_size,
        cfg.ffn_mult,
        kind.variant_name(),
        cfg.binary_embedding,
        args.name
    );
    std::fs::write(args.out.join(format!("{}.ron", args.name)), ron).map_err(|e| e.to_string())?;

    // Cross-check file: the first check_len characters of the test text, one stream, zero state.
    let check: Vec<usize> = test[..args.check_len.min(test.len())].to_vec();
    let cdev = Device::flex();
    let vnet = net.valid();
    let mut st = State::zeros(cfg.n_layer, 1, cfg.n_embd, &cdev);
    let mut spikes = Spikes { layers: vec![] };
    let logits = vnet.forward(
        kind,
        onehot(&check, &cdev),
        1,
        check.len(),
        &mut st,
        Some(&mut spikes),
    );
    let v = logits.into_data().as_slice::<f32>().expect("f32").to_vec();
    let rows: Vec<&[f32]> = v.chunks(CHAR_VOCAB).collect();
    let mut spike_json = serde_json::Map::new();
    for (name, counts) in spikes.layers {
        let c: Vec<u32> = counts
            .into_data()
            .as_slice::<f32>()
            .expect("f32")
            .iter()
            .map(|x| *x as u32)
            .collect();
        spike_json.insert(name, serde_json::json!(c));
    }
    let json = serde_json::json!({
        "model": format!("{}.ron", args.name),
        "input": "first characters of data/text/sotu-test.txt, one sequence from zero state",
        "tokens": check,
        "logits": rows,
        "spikes": spike_json,
    });
    schedule::write_check_file(args, &json)?;
    println!("wrote {}", st_path.display());
    Ok(())
}
