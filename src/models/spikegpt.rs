//! SpikeGPT-style spiking language model (Zhu et al., arXiv:2302.13939): RWKV-4 token mixing
//! (SRWKV) and receptance FFN (SRFFN), each followed by LIF neurons, run as an RNN one token at a
//! time. Parameter names follow the released checkpoints (`emb.weight`, `blocks.{i}.att.key.weight`, ...).
//!
//! Three forms of one network (`Variant`):
//! - `Reference`: as SpikeGPT's code computes it. Every projection sees the layer-normed float
//!   residual (MACs); the LIF spikes are added into the residual stream.
//! - `SpikeDriven`: the spike trains are the inputs of the following projections, which then cost
//!   one AC per synaptic event. The token-shift mix is folded into two weight matrices,
//!   W diag(mu) for the current token's spikes and W diag(1 - mu) for the previous token's, so both
//!   inputs stay binary (the modelled hardware stores both; the simulator forms their entries as
//!   the events read the rows). This is the network the paper's energy accounting describes.
//! - `NonSpiking`: the same network with the LIF neurons removed (the ANN twin, i.e. RWKV-4).
//!
//! Two settings of the description decide how close `Reference` is to SpikeGPT's released RNN
//! inference code (`src/model_run.py`), which differs from its training graph (`src/model.py`):
//! - `binary_embedding`: the training graph always takes the Heaviside of the embedding row; the
//!   released RNN code does so only for a 77-token vocabulary (its BookCorpus character model)
//!   and uses the float row otherwise. `import spikegpt` writes `vocab_size == 77`, as the
//!   released code; `SpikeDriven` always binarises (its projections need spikes).
//! - `rescale_every: Some(k)`: the released code's `RWKV_RESCALE_LAYER` (k = 6). At load,
//!   `att.output.weight` and `ffn.value.weight` of block i are divided by 2^(i / k); per token,
//!   the residual stream is halved after block i when (i + 1) % k == 0, after that block's
//!   second residual add (after the LIF2 spikes are added, before the next block's layer norms
//!   or `ln_out`). The LIF thresholds stay at 1, so from block k on this changes which neurons
//!   fire: it is a different network from the training graph, and the one the released code
//!   runs. `import spikegpt` writes `Some(6)`; `None` (the default) is the training graph.
//!   It applies to every variant (the same weights and residual in all three forms); for
//!   `NonSpiking` it only rescales the residual stream, which the layer norms undo up to
//!   their epsilon, as in RWKV where the trick comes from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::lif::LifConfig;
use crate::engine::linear::{Kernel, Linear, ScaledRows};
use crate::engine::norm::{Norm, layer_norm};
use crate::engine::pointwise::{
    heaviside, relu_squared, residual_add, residual_add_spikes, sigmoid_gate, token_shift,
};
use crate::engine::wkv::{WkvState, wkv_step};
use crate::engine::{Arith, SpikeTrain, events, pointwise};
use crate::error::{Error, Result};
use crate::ledger::{Counts, LayerId, Ledger, TensorClass};
use crate::weights::{TensorStore, WeightSource};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Variant {
    #[default]
    Reference,
    SpikeDriven,
    NonSpiking,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Reference => "reference",
            Variant::SpikeDriven => "spike_driven",
            Variant::NonSpiking => "non_spiking",
        }
    }
}

/// Where the parameters come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WeightsSpec {
    /// RWKV-4-style initialisation from a seed (untrained).
    Seeded(u64),
    /// A safetensors file, relative to the model description.
    File(String),
}

/// Mirrors the checkpoint: width, depth, vocabulary, plus the neuron and variant choices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    pub n_layer: usize,
    pub n_embd: usize,
    pub vocab_size: usize,
    /// FFN hidden width as a multiple of `n_embd` (4 in SpikeGPT).
    #[serde(default = "default_ffn_mult")]
    pub ffn_mult: usize,
    #[serde(default)]
    pub variant: Variant,
    /// Heaviside of the embedding row. SpikeGPT's training graph always binarises; its released
    /// RNN code only for a 77-token vocabulary (`import spikegpt` follows the released code).
    /// Always on when spike driven.
    #[serde(default)]
    pub binary_embedding: bool,
    /// SpikeGPT's released-inference rescale (`RWKV_RESCALE_LAYER`): `Some(k)` divides
    /// `att.output.weight` and `ffn.value.weight` of block i by 2^(i / k) at load and halves the
    /// residual stream after every k-th block. `None`: no rescale (the training graph). Written
    /// as `Some(6)` by `import spikegpt`; see the module documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescale_every: Option<usize>,
    #[serde(default)]
    pub lif: LifConfig,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    pub weights: WeightsSpec,
}

fn default_ffn_mult() -> usize {
    4
}
fn default_eps() -> f32 {
    1e-5
}

impl Config {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let limit = 1 << 20;
        for (name, v) in [
            ("n_layer", self.n_layer),
            ("n_embd", self.n_embd),
            ("vocab_size", self.vocab_size),
            ("ffn_mult", self.ffn_mult),
        ] {
            if v == 0 || v > limit {
                return Err(format!("{name} must be between 1 and {limit}, found {v}"));
            }
        }
        if self.n_embd < 2 {
            return Err("n_embd must be at least 2".into());
        }
        if self.rescale_every == Some(0) {
            return Err("rescale_every must be at least 1 (or absent)".into());
        }
        self.lif.validate()?;
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err("layer_norm_eps must be positive".into());
        }
        Ok(())
    }

    /// Peak bytes while building and running: the model, one tensor in flight (for the
    /// spike-driven form, one block's raw projections kept for folding), and state and
    /// scratch.
    pub fn peak_bytes(&self) -> u64 {
        let (d, h) = (self.n_embd as u64, self.ffn_hidden() as u64);
        let params = self.n_params() as u64;
        let folded = if self.variant == Variant::SpikeDriven {
            4 * d * d + h * d
        } else {
            0
        };
        let state = self.n_layer as u64 * 12 * d + 12 * d + h + self.vocab_size as u64;
        // The store's tensors are dropped as the model converts them: at most the model, the
        // rest of the store and one tensor in flight.
        let largest = (h * d).max(self.vocab_size as u64 * d);
        4 * (params + largest + folded + state)
    }

    pub fn ffn_hidden(&self) -> usize {
        self.ffn_mult * self.n_embd
    }

    /// The factor block `i`'s `att.output` and `ffn.value` weights are multiplied by at load:
    /// 1 / 2^(i / k) with `rescale_every: Some(k)`, else 1.
    pub fn load_scale(&self, i: usize) -> f32 {
        match self.rescale_every {
            Some(k) if k > 0 => 0.5f32.powi((i / k).min(i32::MAX as usize) as i32),
            _ => 1.0,
        }
    }

    /// Whether the residual stream is halved after block `i` ((i + 1) % k == 0).
    pub fn halves_after(&self, i: usize) -> bool {
        matches!(self.rescale_every, Some(k) if k > 0 && (i + 1).is_multiple_of(k))
    }

    /// Parameter count: L (13 d^2 + 11 d) + 4 d + 2 V d for ffn_mult = 4.
    pub fn n_params(&self) -> usize {
        let (d, h, v, l) = (
            self.n_embd,
            self.ffn_hidden(),
            self.vocab_size,
            self.n_layer,
        );
        let block = 4 * d * d + 2 * d * h + d * d + 5 * d + 2 * d + 4 * d;
        l * block + 2 * d + 2 * d + 2 * v * d
    }

    /// NeuroBench's static metrics of the model `store` holds: the connection weights are the
    /// R/K/V/output, FFN and head matrices (nn.Linear), not the embedding table.
    pub fn statics(&self, store: &TensorStore) -> super::statics::StaticMetrics {
        super::statics::from_store(
            &self.checkpoint_keys(),
            store,
            super::statics::linear_or_conv_weight,
            0,
        )
    }

    /// Every checkpoint key with its shape, in checkpoint order.
    pub fn checkpoint_keys(&self) -> Vec<(String, Vec<usize>)> {
        let (d, h, v) = (self.n_embd, self.ffn_hidden(), self.vocab_size);
        let mut keys = vec![("emb.weight".to_string(), vec![v, d])];
        for i in 0..self.n_layer {
            for (name, shape) in block_tensors(i == 0, d, h) {
                keys.push((format!("blocks.{i}.{name}"), shape));
            }
        }
        keys.push(("ln_out.weight".into(), vec![d]));
        keys.push(("ln_out.bias".into(), vec![d]));
        keys.push(("head.weight".into(), vec![v, d]));
        keys
    }
}

/// The names of a block's parts, relative to `blocks.{i}`: the checkpoint keys (a norm's
/// `{name}.weight` and `{name}.bias`, a projection's `{name}.weight`) and the ledger layers.
mod part {
    pub const LN0: &str = "ln0";
    pub const LN1: &str = "ln1";
    pub const LN2: &str = "ln2";
    pub const ATT_DECAY: &str = "att.time_decay";
    pub const ATT_FIRST: &str = "att.time_first";
    pub const ATT_MIX_K: &str = "att.time_mix_k";
    pub const ATT_MIX_V: &str = "att.time_mix_v";
    pub const ATT_MIX_R: &str = "att.time_mix_r";
    pub const ATT_KEY: &str = "att.key";
    pub const ATT_VALUE: &str = "att.value";
    pub const ATT_RECEPTANCE: &str = "att.receptance";
    pub const ATT_OUTPUT: &str = "att.output";
    pub const FFN_MIX_K: &str = "ffn.time_mix_k";
    pub const FFN_MIX_R: &str = "ffn.time_mix_r";
    pub const FFN_KEY: &str = "ffn.key";
    pub const FFN_RECEPTANCE: &str = "ffn.receptance";
    pub const FFN_VALUE: &str = "ffn.value";
    // Ledger layers without tensors.
    pub const ATT_SHIFT: &str = "att.shift";
    pub const ATT_WKV: &str = "att.wkv";
    pub const ATT_GATE: &str = "att.gate";
    pub const LIF1: &str = "lif1";
    pub const RES1: &str = "res1";
    pub const FFN_SHIFT: &str = "ffn.shift";
    pub const FFN_ACT: &str = "ffn.act";
    pub const FFN_GATE: &str = "ffn.gate";
    pub const LIF2: &str = "lif2";
    pub const RES2: &str = "res2";
    pub const RESCALE: &str = "rescale";
}

/// One block's checkpoint tensors (keys relative to `blocks.{i}`) with their shapes, in
/// checkpoint order; the first block also has `ln0`.
fn block_tensors(first: bool, d: usize, h: usize) -> Vec<(String, Vec<usize>)> {
    use part::*;
    let norms: &[&str] = if first { &[LN0, LN1, LN2] } else { &[LN1, LN2] };
    let mut keys = Vec::new();
    for ln in norms {
        keys.push((format!("{ln}.weight"), vec![d]));
        keys.push((format!("{ln}.bias"), vec![d]));
    }
    keys.push((ATT_DECAY.to_string(), vec![d]));
    keys.push((ATT_FIRST.to_string(), vec![d]));
    for m in [ATT_MIX_K, ATT_MIX_V, ATT_MIX_R] {
        keys.push((m.to_string(), vec![1, 1, d]));
    }
    for w in [ATT_KEY, ATT_VALUE, ATT_RECEPTANCE, ATT_OUTPUT] {
        keys.push((format!("{w}.weight"), vec![d, d]));
    }
    for m in [FFN_MIX_K, FFN_MIX_R] {
        keys.push((m.to_string(), vec![1, 1, d]));
    }
    keys.push((format!("{FFN_KEY}.weight"), vec![h, d]));
    keys.push((format!("{FFN_RECEPTANCE}.weight"), vec![d, d]));
    keys.push((format!("{FFN_VALUE}.weight"), vec![d, h]));
    keys
}

use crate::weights::standard_normal as normal;

/// Gains of the seeded Gaussian matrices (std = gain / sqrt(fan_in)), chosen so that an untrained
/// network's LIF layers fire at a few to a few tens of percent; not RWKV's zero-init, which would
/// leave the untrained network silent.
const SEED_GAINS: &[(&str, f32)] = &[
    (part::ATT_KEY, 2.0),
    (part::ATT_VALUE, 2.0),
    (part::ATT_RECEPTANCE, 1.0),
    (part::ATT_OUTPUT, 4.0),
    (part::FFN_KEY, 3.0),
    (part::FFN_VALUE, 2.0),
    (part::FFN_RECEPTANCE, 1.0),
    ("head", 1.0),
];

/// RWKV-4 initialisation of the time parameters (spikegpt.md section 1.9), Gaussian matrices.
pub fn seeded_weights(cfg: &Config, seed: u64) -> TensorStore {
    let d = cfg.n_embd;
    let l = cfg.n_layer;
    crate::weights::seeded_store(cfg.checkpoint_keys(), seed, |key, shape, rng| {
        let n: usize = shape.iter().product();
        let layer: usize = key
            .strip_prefix("blocks.")
            .and_then(|r| r.split('.').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let r01 = if l > 1 {
            layer as f32 / (l - 1) as f32
        } else {
            0.0
        };
        let r10 = 1.0 - layer as f32 / l as f32;
        let x = |i: usize| i as f32 / d as f32;
        let norm_weight = |n: &str| key.strip_suffix(".weight").is_some_and(|k| k.ends_with(n));
        if [part::LN0, part::LN1, part::LN2]
            .into_iter()
            .any(norm_weight)
            || key == "ln_out.weight"
        {
            vec![1.0; n]
        } else if key.ends_with(".bias") {
            vec![0.0; n]
        } else if key.ends_with(part::ATT_DECAY) {
            (0..d)
                .map(|h| -5.0 + 8.0 * (h as f32 / (d - 1) as f32).powf(0.7 + 1.3 * r01))
                .collect()
        } else if key.ends_with(part::ATT_FIRST) {
            (0..d)
                .map(|h| 0.3f32.ln() + (((h + 1) % 3) as f32 - 1.0) * 0.5)
                .collect()
        } else if key.ends_with(part::ATT_MIX_K)
            || key.ends_with(part::FFN_MIX_K)
            || key.ends_with(part::FFN_MIX_R)
        {
            (0..d).map(|i| x(i).powf(r10)).collect()
        } else if key.ends_with(part::ATT_MIX_V) {
            (0..d).map(|i| x(i).powf(r10) + 0.3 * r01).collect()
        } else if key.ends_with(part::ATT_MIX_R) {
            (0..d).map(|i| x(i).powf(0.5 * r10)).collect()
        } else if key == "emb.weight" {
            (0..n).map(|_| normal(rng)).collect()
        } else {
            let gain = SEED_GAINS
                .iter()
                .find(|(k, _)| key.contains(k))
                .map(|(_, g)| *g)
                .unwrap_or(1.0);
            let std = gain / (shape[1] as f32).sqrt();
            (0..n).map(|_| std * normal(rng)).collect()
        }
    })
}

/// A projection fed by two spike trains (this token's and the previous token's), with the
/// token-shift mix folded into its weights: `W diag(mu)` for this token's spikes and
/// `W diag(1 - mu)` for the previous token's. The folded weights are formed as the events read
/// the rows (the same f32 products a folded copy would store), so the model keeps one copy.
struct FoldedShift {
    w: Linear,
    cur: ScaledRows,
    prev: ScaledRows,
}

impl FoldedShift {
    fn new(w: &[f32], n_out: usize, n_in: usize, mu: &[f32]) -> FoldedShift {
        let w = Linear::from_out_in(w, n_out, n_in);
        FoldedShift {
            cur: w.scaled_rows(mu.to_vec()),
            prev: w.scaled_rows(mu.iter().map(|m| 1.0 - m).collect()),
            w,
        }
    }

    fn forward(
        &self,
        cur: &SpikeTrain,
        prev: &SpikeTrain,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) {
        self.w.forward_scaled_events(cur, &self.cur, y, arith, c);
        self.w
            .accumulate_scaled_events(prev, &self.prev, y, arith, c);
    }
}

/// One token-shift mix: mu and 1 - mu.
struct Mix {
    mu: Vec<f32>,
    one_minus: Vec<f32>,
}

impl Mix {
    fn load(store: &mut impl WeightSource, key: &str, d: usize) -> Result<Mix> {
        let mu = store.tensor(key, &[1, 1, d])?.into_owned();
        let one_minus = mu.iter().map(|m| 1.0 - m).collect();
        Ok(Mix { mu, one_minus })
    }
}

/// A projection `{key}.weight` [o, n] as a layer, its weights multiplied by `scale` (a power of
/// two, so exactly the released code's division). Spike-driven models also get the raw weights
/// back for folding, and keep only the folded copies of the projections that read spikes.
fn projection(
    store: &mut impl WeightSource,
    key: &str,
    o: usize,
    n: usize,
    spiking: bool,
    scale: f32,
) -> Result<(Vec<f32>, Linear)> {
    let mut w = store.tensor(&format!("{key}.weight"), &[o, n])?;
    if scale != 1.0 {
        w.to_mut().iter_mut().for_each(|v| *v *= scale);
    }
    let folded_away = spiking
        && ![part::ATT_OUTPUT, part::FFN_VALUE]
            .into_iter()
            .any(|n| key.ends_with(n));
    let plain = if folded_away {
        Linear::from_out_in(&[], 0, 0)
    } else {
        Linear::from_out_in(&w, o, n)
    };
    Ok((if spiking { w.into_owned() } else { Vec::new() }, plain))
}

struct Att {
    decay: Vec<f32>,
    first: Vec<f32>,
    mix_k: Mix,
    mix_v: Mix,
    mix_r: Mix,
    key: Linear,
    value: Linear,
    receptance: Linear,
    output: Linear,
    folded: Option<[FoldedShift; 3]>,
}

struct Ffn {
    mix_k: Mix,
    mix_r: Mix,
    key: Linear,
    receptance: Linear,
    value: Linear,
    folded: Option<[FoldedShift; 2]>,
}

/// Ledger ids of one block's layers; `None` for a layer the variant does not have.
struct BlockIds {
    ln0: Option<LayerId>,
    ln1: Option<LayerId>,
    att_shift: Option<LayerId>,
    att_key: LayerId,
    att_value: LayerId,
    att_receptance: LayerId,
    att_wkv: LayerId,
    att_gate: LayerId,
    att_output: LayerId,
    lif1: Option<LayerId>,
    res1: LayerId,
    ln2: Option<LayerId>,
    ffn_shift: Option<LayerId>,
    ffn_key: LayerId,
    ffn_act: LayerId,
    ffn_value: LayerId,
    ffn_receptance: LayerId,
    ffn_gate: LayerId,
    lif2: Option<LayerId>,
    res2: LayerId,
    /// The halving of the residual stream after this block (`rescale_every`).
    rescale: Option<LayerId>,
}

struct Block {
    ln0: Option<Norm>,
    ln1: Norm,
    ln2: Norm,
    att: Att,
    ffn: Ffn,
    ids: BlockIds,
}

/// Recurrent state of one block: token-shift buffers, WKV state, membrane potentials, and the
/// spike trains of this and the previous token.
pub struct BlockState {
    att_prev: Vec<f32>,
    ffn_prev: Vec<f32>,
    wkv: WkvState,
    v1: Vec<f32>,
    v2: Vec<f32>,
    s1: SpikeTrain,
    s2: SpikeTrain,
    prev_in: SpikeTrain,
    prev_s1: SpikeTrain,
}

/// Scratch buffers, allocated once per run (no allocation per token).
struct Scratch {
    xa: Vec<f32>,
    xk: Vec<f32>,
    xv: Vec<f32>,
    xr: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    r: Vec<f32>,
    wkv: Vec<f32>,
    z: Vec<f32>,
    y: Vec<f32>,
    hidden: Vec<f32>,
}

/// The whole recurrent state of a run.
pub struct State {
    x: Vec<f32>,
    blocks: Vec<BlockState>,
    emb_spikes: SpikeTrain,
    prev_emb_spikes: SpikeTrain,
    scratch: Scratch,
    pub logits: Vec<f32>,
    /// The first block whose output held a non-finite value at the last token, if any.
    nonfinite_block: Option<usize>,
}

pub struct SpikeGpt {
    pub cfg: Config,
    emb: Vec<f32>,
    blocks: Vec<Block>,
    ln_out: Norm,
    head: Linear,
    ledger_template: Ledger,
    id_emb: LayerId,
    id_ln_out: LayerId,
    id_head: LayerId,
    /// Tensors of the weights file this model did not read (a warning, or empty).
    pub unused_tensors: Option<String>,
    /// NeuroBench's static metrics, from the checkpoint tensors.
    pub statics: super::statics::StaticMetrics,
}

impl SpikeGpt {
    /// Build from a description; `base` is the folder that relative weight paths start from.
    pub fn from_config(cfg: Config, base: &Path) -> Result<SpikeGpt> {
        cfg.validate()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let store = match &cfg.weights {
            WeightsSpec::Seeded(seed) => seeded_weights(&cfg, *seed),
            WeightsSpec::File(path) => crate::weights::load_file(&base.join(path))?,
        };
        // The store is moved in: each tensor is dropped once converted (peak ~ one model).
        let mut store = store;
        let from_file = matches!(cfg.weights, WeightsSpec::File(_));
        let name = cfg.name.clone();
        let statics = cfg.statics(&store);
        let mut model = SpikeGpt::build(cfg, &mut store)?;
        model.statics = statics;
        if from_file {
            model.unused_tensors = store.unread_warning(&name);
        }
        Ok(model)
    }

    /// Build from named tensors; every key is read by its checkpoint name. The store is left
    /// whole (the model holds copies).
    pub fn new(cfg: Config, store: &TensorStore) -> Result<SpikeGpt> {
        let statics = cfg.statics(store);
        let mut model = SpikeGpt::build(cfg, &mut &*store)?;
        model.statics = statics;
        Ok(model)
    }

    /// Run every dense product with `kernel` (benchmarks compare the kernels on one model).
    pub fn set_kernel(&mut self, kernel: Kernel) {
        self.head.kernel = kernel;
        for b in &mut self.blocks {
            let (att, ffn) = (&mut b.att, &mut b.ffn);
            let plain = [
                &mut att.key,
                &mut att.value,
                &mut att.receptance,
                &mut att.output,
            ];
            let plain =
                plain
                    .into_iter()
                    .chain([&mut ffn.key, &mut ffn.receptance, &mut ffn.value]);
            let folded = att.folded.iter_mut().flatten();
            let folded = folded.chain(ffn.folded.iter_mut().flatten());
            for l in plain.chain(folded.map(|f| &mut f.w)) {
                l.kernel = kernel;
            }
        }
    }

    fn build(cfg: Config, store: &mut impl WeightSource) -> Result<SpikeGpt> {
        let (d, h, v) = (cfg.n_embd, cfg.ffn_hidden(), cfg.vocab_size);
        let spiking = cfg.variant == Variant::SpikeDriven;
        let mut ledger = Ledger::new();
        let id_emb = ledger.layer("emb");
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("blocks.{i}");
            // Spike-driven projections keep only their folded copies (folding needs the raw
            // weights); the others keep the plain layer.
            // The released code's rescale divides the two projections that feed the LIFs.
            let lin = |store: &mut _, name: &str, o: usize, n: usize| {
                let scale = if name == part::ATT_OUTPUT || name == part::FFN_VALUE {
                    cfg.load_scale(i)
                } else {
                    1.0
                };
                projection(store, &format!("{p}.{name}"), o, n, spiking, scale)
            };
            let (wk, key) = lin(store, part::ATT_KEY, d, d)?;
            let (wv, value) = lin(store, part::ATT_VALUE, d, d)?;
            let (wr, receptance) = lin(store, part::ATT_RECEPTANCE, d, d)?;
            let (_, output) = lin(store, part::ATT_OUTPUT, d, d)?;
            let (mix_k, mix_v, mix_r) = (
                Mix::load(store, &format!("{p}.{}", part::ATT_MIX_K), d)?,
                Mix::load(store, &format!("{p}.{}", part::ATT_MIX_V), d)?,
                Mix::load(store, &format!("{p}.{}", part::ATT_MIX_R), d)?,
            );
            let att_folded = spiking.then(|| {
                [
                    FoldedShift::new(&wk, d, d, &mix_k.mu),
                    FoldedShift::new(&wv, d, d, &mix_v.mu),
                    FoldedShift::new(&wr, d, d, &mix_r.mu),
                ]
            });
            let decay = store
                .tensor(&format!("{p}.{}", part::ATT_DECAY), &[d])?
                .iter()
                .map(|t| -t.exp())
                .collect();
            let first = store
                .tensor(&format!("{p}.{}", part::ATT_FIRST), &[d])?
                .into_owned();
            let att = Att {
                decay,
                first,
                mix_k,
                mix_v,
                mix_r,
                key,
                value,
                receptance,
                output,
                folded: att_folded,
            };

            let (fwk, fkey) = lin(store, part::FFN_KEY, h, d)?;
            let (fwr, freceptance) = lin(store, part::FFN_RECEPTANCE, d, d)?;
            let (_, fvalue) = lin(store, part::FFN_VALUE, d, h)?;
            let fmix_k = Mix::load(store, &format!("{p}.{}", part::FFN_MIX_K), d)?;
            let fmix_r = Mix::load(store, &format!("{p}.{}", part::FFN_MIX_R), d)?;
            let ffn_folded = spiking.then(|| {
                [
                    FoldedShift::new(&fwk, h, d, &fmix_k.mu),
                    FoldedShift::new(&fwr, d, d, &fmix_r.mu),
                ]
            });
            let ffn = Ffn {
                mix_k: fmix_k,
                mix_r: fmix_r,
                key: fkey,
                receptance: freceptance,
                value: fvalue,
                folded: ffn_folded,
            };

            let ln0 = if i == 0 {
                Some(Norm::load(store, &format!("{p}.{}", part::LN0), d)?)
            } else {
                None
            };
            let ids = register_block(&mut ledger, &p, cfg.variant, i == 0, cfg.halves_after(i));
            blocks.push(Block {
                ln0,
                ln1: Norm::load(store, &format!("{p}.{}", part::LN1), d)?,
                ln2: Norm::load(store, &format!("{p}.{}", part::LN2), d)?,
                att,
                ffn,
                ids,
            });
        }
        let id_ln_out = ledger.layer("ln_out");
        let id_head = ledger.layer("head");
        let emb = store.tensor("emb.weight", &[v, d])?.into_owned();
        let ln_out = Norm::load(store, "ln_out", d)?;
        let head = Linear::from_out_in(&store.tensor("head.weight", &[v, d])?, v, d);
        let mut model = SpikeGpt {
            cfg,
            unused_tensors: None,
            statics: Default::default(),
            emb,
            blocks,
            ln_out,
            head,
            ledger_template: ledger,
            id_emb,
            id_ln_out,
            id_head,
        };
        model.ledger_template.footprint = model.footprint(&Arith::Exact);
        Ok(model)
    }

    /// An empty ledger with every layer of this model registered, in execution order.
    pub fn new_ledger(&self, arith: &Arith) -> Ledger {
        let mut l = self.ledger_template.clone();
        l.footprint = self.footprint(arith);
        l
    }

    /// Bytes resident per tensor class.
    pub fn footprint(&self, arith: &Arith) -> std::collections::BTreeMap<TensorClass, u64> {
        let (d, h) = (self.cfg.n_embd as u64, self.cfg.ffn_hidden() as u64);
        let b = arith.operand_bytes();
        let l = self.cfg.n_layer as u64;
        let spiking = self.cfg.variant == Variant::SpikeDriven;
        // Folded token-shift copies double the weights the spikes read.
        let folded = if spiking {
            3 * d * d + h * d + d * d
        } else {
            0
        };
        let weights = (self.cfg.n_params() as u64 + l * folded) * b;
        let neurons = if self.cfg.variant == Variant::NonSpiking {
            0
        } else {
            2 * d * l * b
        };
        let state = (5 * d * l) * b;
        let activations = (d * 10 + h + self.cfg.vocab_size as u64) * b;
        let mut m = std::collections::BTreeMap::new();
        m.insert(TensorClass::Weight, weights);
        m.insert(TensorClass::Neuron, neurons);
        m.insert(TensorClass::State, state);
        m.insert(TensorClass::Activation, activations);
        m.insert(TensorClass::Event, 4 * d * l * 2);
        m
    }

    pub fn new_state(&self) -> State {
        let (d, h) = (self.cfg.n_embd, self.cfg.ffn_hidden());
        let blocks = (0..self.cfg.n_layer)
            .map(|_| BlockState {
                att_prev: vec![0.0; d],
                ffn_prev: vec![0.0; d],
                wkv: WkvState::new(d),
                v1: vec![self.cfg.lif.v_reset; d],
                v2: vec![self.cfg.lif.v_reset; d],
                s1: SpikeTrain::new(d),
                s2: SpikeTrain::new(d),
                prev_in: SpikeTrain::new(d),
                prev_s1: SpikeTrain::new(d),
            })
            .collect();
        let z = || vec![0.0; d];
        State {
            x: z(),
            blocks,
            emb_spikes: SpikeTrain::new(d),
            prev_emb_spikes: SpikeTrain::new(d),
            scratch: Scratch {
                xa: z(),
                xk: z(),
                xv: z(),
                xr: z(),
                k: z(),
                v: z(),
                r: z(),
                wkv: z(),
                z: z(),
                y: z(),
                hidden: vec![0.0; h],
            },
            logits: vec![0.0; self.cfg.vocab_size],
            nonfinite_block: None,
        }
    }

    /// Run one token; the logits of the next token are left in `st.logits`.
    pub fn step(&self, token: usize, st: &mut State, arith: &Arith, ledger: &mut Ledger) {
        let d = self.cfg.n_embd;
        let variant = self.cfg.variant;
        let c = ledger.at(self.id_emb);
        let row = pointwise::embedding_row(&self.emb, token, d, arith, c);
        if variant == Variant::SpikeDriven || self.cfg.binary_embedding {
            std::mem::swap(&mut st.emb_spikes, &mut st.prev_emb_spikes);
            heaviside(row, &mut st.emb_spikes, arith, c);
            st.x.copy_from_slice(&st.emb_spikes.dense);
        } else {
            st.x.copy_from_slice(row);
        }
        st.nonfinite_block = None;
        for i in 0..self.blocks.len() {
            let block = &self.blocks[i];
            if variant == Variant::SpikeDriven {
                let (before, rest) = st.blocks.split_at_mut(i);
                let input = if i == 0 {
                    &st.emb_spikes
                } else {
                    &before[i - 1].s2
                };
                block.forward_spiking(
                    &self.cfg,
                    input,
                    &mut rest[0],
                    &mut st.x,
                    &mut st.scratch,
                    arith,
                    ledger,
                );
            } else {
                block.forward_float(
                    &self.cfg,
                    &mut st.blocks[i],
                    &mut st.x,
                    &mut st.scratch,
                    arith,
                    ledger,
                );
            }
            if let Some(id) = block.ids.rescale {
                pointwise::halve(&mut st.x, arith, ledger.at(id));
            }
            if st.nonfinite_block.is_none() && !st.x.iter().all(|v| v.is_finite()) {
                st.nonfinite_block = Some(i);
            }
        }
        let sc = &mut st.scratch;
        layer_norm(
            &st.x,
            &self.ln_out.w,
            &self.ln_out.b,
            self.cfg.layer_norm_eps,
            &mut sc.xa,
            arith,
            ledger.at(self.id_ln_out),
        );
        self.head
            .forward_dense(&sc.xa, &mut st.logits, arith, ledger.at(self.id_head));
    }
}

fn register_block(
    l: &mut Ledger,
    p: &str,
    variant: Variant,
    first: bool,
    halves: bool,
) -> BlockIds {
    use part::*;
    let spiking = variant == Variant::SpikeDriven;
    let has_lif = variant != Variant::NonSpiking;
    let mut reg = |name: &str| l.layer(&format!("{p}.{name}"));
    // Registration order is ledger order: optional layers are registered in place.
    BlockIds {
        ln0: (first && !spiking).then(|| reg(LN0)),
        ln1: (!spiking).then(|| reg(LN1)),
        att_shift: (!spiking).then(|| reg(ATT_SHIFT)),
        att_key: reg(ATT_KEY),
        att_value: reg(ATT_VALUE),
        att_receptance: reg(ATT_RECEPTANCE),
        att_wkv: reg(ATT_WKV),
        att_gate: reg(ATT_GATE),
        att_output: reg(ATT_OUTPUT),
        lif1: has_lif.then(|| reg(LIF1)),
        res1: reg(RES1),
        ln2: (!spiking).then(|| reg(LN2)),
        ffn_shift: (!spiking).then(|| reg(FFN_SHIFT)),
        ffn_key: reg(FFN_KEY),
        ffn_act: reg(FFN_ACT),
        ffn_value: reg(FFN_VALUE),
        ffn_receptance: reg(FFN_RECEPTANCE),
        ffn_gate: reg(FFN_GATE),
        lif2: has_lif.then(|| reg(LIF2)),
        res2: reg(RES2),
        rescale: halves.then(|| reg(RESCALE)),
    }
}

impl Block {
    /// Reference and non-spiking forms: projections see the layer-normed float residual.
    fn forward_float(
        &self,
        cfg: &Config,
        st: &mut BlockState,
        x: &mut [f32],
        sc: &mut Scratch,
        arith: &Arith,
        l: &mut Ledger,
    ) {
        let ids = &self.ids;
        let eps = cfg.layer_norm_eps;
        if let Some(ln0) = &self.ln0 {
            sc.y.copy_from_slice(x);
            layer_norm(
                &sc.y,
                &ln0.w,
                &ln0.b,
                eps,
                x,
                arith,
                l.at(ids.ln0.expect("the float forms have this layer")),
            );
        }
        // Token mixing (SRWKV).
        layer_norm(
            x,
            &self.ln1.w,
            &self.ln1.b,
            eps,
            &mut sc.xa,
            arith,
            l.at(ids.ln1.expect("the float forms have this layer")),
        );
        let a = &self.att;
        {
            let c = l.at(ids.att_shift.expect("the float forms have this layer"));
            token_shift(
                &sc.xa,
                &st.att_prev,
                &a.mix_k.mu,
                &a.mix_k.one_minus,
                &mut sc.xk,
                arith,
                c,
            );
            token_shift(
                &sc.xa,
                &st.att_prev,
                &a.mix_v.mu,
                &a.mix_v.one_minus,
                &mut sc.xv,
                arith,
                c,
            );
            token_shift(
                &sc.xa,
                &st.att_prev,
                &a.mix_r.mu,
                &a.mix_r.one_minus,
                &mut sc.xr,
                arith,
                c,
            );
            pointwise::copy_state(&mut st.att_prev, &sc.xa, arith, c);
        }
        a.key
            .forward_dense(&sc.xk, &mut sc.k, arith, l.at(ids.att_key));
        a.value
            .forward_dense(&sc.xv, &mut sc.v, arith, l.at(ids.att_value));
        a.receptance
            .forward_dense(&sc.xr, &mut sc.r, arith, l.at(ids.att_receptance));
        self.mix_tail(cfg, st, x, sc, arith, l, true);
        // Channel mixing (SRFFN).
        layer_norm(
            x,
            &self.ln2.w,
            &self.ln2.b,
            eps,
            &mut sc.xa,
            arith,
            l.at(ids.ln2.expect("the float forms have this layer")),
        );
        let f = &self.ffn;
        {
            let c = l.at(ids.ffn_shift.expect("the float forms have this layer"));
            token_shift(
                &sc.xa,
                &st.ffn_prev,
                &f.mix_k.mu,
                &f.mix_k.one_minus,
                &mut sc.xk,
                arith,
                c,
            );
            token_shift(
                &sc.xa,
                &st.ffn_prev,
                &f.mix_r.mu,
                &f.mix_r.one_minus,
                &mut sc.xr,
                arith,
                c,
            );
            pointwise::copy_state(&mut st.ffn_prev, &sc.xa, arith, c);
        }
        f.key
            .forward_dense(&sc.xk, &mut sc.hidden, arith, l.at(ids.ffn_key));
        f.receptance
            .forward_dense(&sc.xr, &mut sc.r, arith, l.at(ids.ffn_receptance));
        self.ffn_tail(cfg, st, x, sc, arith, l);
    }

    /// Spike-driven form: the projections are fed by spike trains (this token's and the previous
    /// token's) and cost one AC per synaptic event.
    #[allow(clippy::too_many_arguments)]
    fn forward_spiking(
        &self,
        cfg: &Config,
        input: &SpikeTrain,
        st: &mut BlockState,
        x: &mut [f32],
        sc: &mut Scratch,
        arith: &Arith,
        l: &mut Ledger,
    ) {
        let ids = &self.ids;
        let [fk, fv, fr] = self
            .att
            .folded
            .as_ref()
            .expect("spike-driven model has folded weights");
        fk.forward(input, &st.prev_in, &mut sc.k, arith, l.at(ids.att_key));
        fv.forward(input, &st.prev_in, &mut sc.v, arith, l.at(ids.att_value));
        fr.forward(
            input,
            &st.prev_in,
            &mut sc.r,
            arith,
            l.at(ids.att_receptance),
        );
        events::save_spikes(&mut st.prev_in, input, arith, l.at(ids.att_key));
        self.mix_tail(cfg, st, x, sc, arith, l, true);
        let [fk, fr] = self
            .ffn
            .folded
            .as_ref()
            .expect("spike-driven model has folded weights");
        fk.forward(
            &st.s1,
            &st.prev_s1,
            &mut sc.hidden,
            arith,
            l.at(ids.ffn_key),
        );
        fr.forward(
            &st.s1,
            &st.prev_s1,
            &mut sc.r,
            arith,
            l.at(ids.ffn_receptance),
        );
        events::save_spikes(&mut st.prev_s1, &st.s1, arith, l.at(ids.ffn_key));
        self.ffn_tail(cfg, st, x, sc, arith, l);
    }

    /// WKV, receptance gate, output projection, LIF (or none), residual add.
    #[allow(clippy::too_many_arguments)]
    fn mix_tail(
        &self,
        cfg: &Config,
        st: &mut BlockState,
        x: &mut [f32],
        sc: &mut Scratch,
        arith: &Arith,
        l: &mut Ledger,
        _att: bool,
    ) {
        let ids = &self.ids;
        let a = &self.att;
        wkv_step(
            &a.decay,
            &a.first,
            &sc.k,
            &sc.v,
            &mut st.wkv,
            &mut sc.wkv,
            arith,
            l.at(ids.att_wkv),
        );
        sigmoid_gate(&sc.r, &sc.wkv, &mut sc.z, arith, l.at(ids.att_gate));
        a.output
            .forward_dense(&sc.z, &mut sc.y, arith, l.at(ids.att_output));
        if cfg.variant == Variant::NonSpiking {
            residual_add(x, &sc.y, arith, l.at(ids.res1));
        } else {
            cfg.lif.step(
                &mut st.v1,
                &sc.y,
                &mut st.s1,
                arith,
                l.at(ids.lif1.expect("the LIF forms have this layer")),
            );
            residual_add_spikes(x, &st.s1, arith, l.at(ids.res1));
        }
    }

    /// ReLU^2, value projection, receptance gate, LIF (or none), residual add.
    fn ffn_tail(
        &self,
        cfg: &Config,
        st: &mut BlockState,
        x: &mut [f32],
        sc: &mut Scratch,
        arith: &Arith,
        l: &mut Ledger,
    ) {
        let ids = &self.ids;
        relu_squared(&mut sc.hidden, arith, l.at(ids.ffn_act));
        self.ffn
            .value
            .forward_dense(&sc.hidden, &mut sc.k, arith, l.at(ids.ffn_value));
        sigmoid_gate(&sc.r, &sc.k, &mut sc.y, arith, l.at(ids.ffn_gate));
        if cfg.variant == Variant::NonSpiking {
            residual_add(x, &sc.y, arith, l.at(ids.res2));
        } else {
            cfg.lif.step(
                &mut st.v2,
                &sc.y,
                &mut st.s2,
                arith,
                l.at(ids.lif2.expect("the LIF forms have this layer")),
            );
            residual_add_spikes(x, &st.s2, arith, l.at(ids.res2));
        }
    }
}

impl SpikeGpt {
    /// Names of the LIF layers, for firing-rate reports.
    pub fn lif_layers(&self) -> Vec<String> {
        if self.cfg.variant == Variant::NonSpiking {
            return vec![];
        }
        (0..self.cfg.n_layer)
            .flat_map(|i| [format!("blocks.{i}.lif1"), format!("blocks.{i}.lif2")])
            .collect()
    }
}

impl crate::models::Stepper for SpikeGpt {
    type State = State;

    fn new_state(&self, _window: usize) -> State {
        SpikeGpt::new_state(self)
    }

    fn new_ledger(&self, arith: &Arith, _window: usize) -> Ledger {
        SpikeGpt::new_ledger(self, arith)
    }

    fn reset(&self, st: &mut State) {
        *st = SpikeGpt::new_state(self);
    }

    fn step(&self, frame: crate::models::Frame, st: &mut State, arith: &Arith, l: &mut Ledger) {
        match frame {
            crate::models::Frame::Token(t) => SpikeGpt::step(self, t, st, arith, l),
            crate::models::Frame::Values(_) => {
                unreachable!("the runner feeds tokens to a language model")
            }
        }
    }

    fn outputs<'s>(&self, st: &'s State) -> &'s [f32] {
        &st.logits
    }

    fn nonfinite_site(&self, st: &State) -> Option<String> {
        Some(match st.nonfinite_block {
            Some(i) => format!("blocks.{i} (its output to the residual stream)"),
            None => "ln_out/head".to_string(),
        })
    }

    fn lif_layers(&self) -> Vec<String> {
        SpikeGpt::lif_layers(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Op;

    fn tiny(variant: Variant) -> Config {
        Config {
            name: "t".into(),
            n_layer: 2,
            n_embd: 16,
            vocab_size: 20,
            ffn_mult: 4,
            variant,
            binary_embedding: false,
            rescale_every: None,
            lif: LifConfig::default(),
            layer_norm_eps: 1e-5,
            weights: WeightsSpec::Seeded(3),
        }
    }

    #[test]
    fn parameter_count_matches_the_checkpoint_keys() {
        let cfg = tiny(Variant::Reference);
        let from_keys: usize = cfg
            .checkpoint_keys()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(cfg.n_params(), from_keys);
        // SpikeGPT-216M, spikegpt.md section 2.1: 215,399,424 parameters.
        let big = Config {
            n_layer: 18,
            n_embd: 768,
            vocab_size: 50277,
            ..cfg
        };
        assert_eq!(big.n_params(), 215_399_424);
    }

    #[test]
    fn rescale_halves_after_every_kth_block_and_divides_two_projections() {
        let cfg = Config {
            n_layer: 13,
            rescale_every: Some(6),
            ..tiny(Variant::Reference)
        };
        assert_eq!(
            (0..13).map(|i| cfg.load_scale(i)).collect::<Vec<_>>(),
            [[1.0; 6].as_slice(), &[0.5; 6], &[0.25]].concat()
        );
        let halving: Vec<usize> = (0..13).filter(|&i| cfg.halves_after(i)).collect();
        assert_eq!(halving, [5, 11]);
        let m = SpikeGpt::new(cfg.clone(), &seeded_weights(&cfg, 3)).unwrap();
        let store = seeded_weights(&cfg, 3);
        let raw = store.raw("blocks.12.ffn.value.weight").unwrap();
        assert_eq!(m.blocks[12].ffn.value.weight(0, 1), raw.data[1] / 4.0);
        assert_eq!(
            m.blocks[7].att.output.weight(2, 3),
            store.raw("blocks.7.att.output.weight").unwrap().data[2 * 16 + 3] / 2.0
        );
        assert_eq!(m.blocks[7].att.key.weight(2, 3), {
            store.raw("blocks.7.att.key.weight").unwrap().data[2 * 16 + 3]
        });
        let arith = Arith::Exact;
        let mut l = m.new_ledger(&arith);
        let mut st = m.new_state();
        m.step(4, &mut st, &arith, &mut l);
        for i in 0..13 {
            let halves = l.subtree(&format!("blocks.{i}.rescale"));
            let expect = if [5, 11].contains(&i) { 16 } else { 0 };
            assert_eq!(halves.op_total(Op::Mul), expect, "block {i}");
        }
        // Without the field, no rescale layer and the description serialises as before.
        let plain = tiny(Variant::Reference);
        let text = ron::to_string(&plain).unwrap();
        assert!(!text.contains("rescale_every"), "{text}");
        let m = SpikeGpt::new(plain.clone(), &seeded_weights(&plain, 3)).unwrap();
        let l = m.new_ledger(&arith);
        assert!(l.layers().all(|(name, _)| !name.ends_with("rescale")));
    }

    #[test]
    fn spike_driven_projections_cost_one_ac_per_synaptic_event() {
        let cfg = tiny(Variant::SpikeDriven);
        let m = SpikeGpt::new(cfg.clone(), &seeded_weights(&cfg, 3)).unwrap();
        let mut st = m.new_state();
        let arith = Arith::Exact;
        let mut l = m.new_ledger(&arith);
        for t in [1, 5, 7, 2] {
            m.step(t, &mut st, &arith, &mut l);
        }
        let key = l.subtree("blocks.0.att.key");
        assert_eq!(key.op_total(Op::Mac), 0);
        assert_eq!(key.op_total(Op::Ac), key.op_total(Op::Synop));
        assert!(key.op_total(Op::Ac) > 0);
    }
}
