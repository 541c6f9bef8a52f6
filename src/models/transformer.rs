//! Transformer family: pre-LN blocks (x += Att(LN1(x)); x += MLP(LN2(x))) with a choice of
//! attention (softmax, kernel linear, EcoFormer hashed), GELU or ReLU MLP, for two tasks:
//!
//! - `CausalLm`: a decoder-only character language model run token by token (no positional
//!   embedding: causal attention orders the tokens by itself). Softmax keeps a K/V cache (cost
//!   per token grows with the context); linear and hashed attention keep running sums (constant
//!   cost per token).
//! - `DigitsClassifier`: an encoder over the patch tokens of the 8 x 8 digits (patch p gives
//!   (8/p)^2 tokens of p^2 pixels, pixels scaled to 0..1), learned positional embeddings, full
//!   (non-causal) attention, mean pooling and a linear head over 10 classes.
//!
//! Weights are named tensors (`emb.weight` or `patch_embed.weight` + `pos_embed`,
//! `blocks.{i}.ln1.*`, `blocks.{i}.att.{q,k,qk,v,output}.weight`, `blocks.{i}.mlp.fc{1,2}.weight`,
//! `ln_out.*`, `head.weight`; PyTorch `[out, in]` layout). EcoFormer layers also need their hash,
//! `blocks.{i}.att.ksh.{A,anchor,mvec}`; when the weights do not hold it, it is **learned at
//! load time** (KSH, `engine::attention::ksh`) from calibration inputs chosen with the scenario
//! seed, layer by layer (layer i is learned on the inputs that layers < i, already hashed,
//! produce), and can be saved with the weights (`Transformer::weights`, `save_safetensors`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::Arith;
use crate::engine::attention::hashed::KernelHash;
use crate::engine::attention::ksh::{self, KshConfig};
use crate::engine::attention::layer::{AttentionLayer, AttnState, Core, LayerIds};
use crate::engine::attention::{AttentionKind, Heads, normal};
use crate::engine::linear::Linear;
use crate::engine::norm::{Norm, layer_norm};
use crate::engine::pointwise::{self, residual_add};
use crate::error::{Error, Result};
use crate::ledger::{Counts, LayerId, Ledger, TensorClass};
use crate::models::spikegpt::WeightsSpec;
use crate::weights::TensorStore;

/// Pixels per digit image and classes.
pub const DIGIT_PIXELS: usize = 64;
pub const DIGIT_CLASSES: usize = 10;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Task {
    CausalLm,
    DigitsClassifier { patch: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Activation {
    #[default]
    Gelu,
    Relu,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    pub task: Task,
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    /// Vocabulary of the language model (ignored by the classifier, which has 10 classes).
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    #[serde(default = "default_mlp_mult")]
    pub mlp_mult: usize,
    #[serde(default)]
    pub activation: Activation,
    pub attention: AttentionKind,
    /// Calibration inputs for learning a missing hash: tokens (language model) or images
    /// (classifier).
    #[serde(default = "default_calibration")]
    pub calibration: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    pub weights: WeightsSpec,
    /// Classifier only: a labelled digits CSV (relative to the model file) on which the linear
    /// head is fitted at load time by ridge regression (one-hot targets) on the pooled features
    /// of the encoder as loaded; the other weights stay as they are. This is training, not in the
    /// ledger. Without it the head keeps its (seeded) weights.
    #[serde(default)]
    pub head_fit: Option<String>,
    /// Language model only: the attention state is reset every `context` tokens, so the model
    /// never attends further back than the windows it was trained on (its K/V cache holds at
    /// most `context` tokens). `None`: never reset; the context grows with the run.
    #[serde(default)]
    pub context: Option<usize>,
    /// Language model only: learned absolute positional embeddings `pos_embed` [context, D],
    /// added to the token embedding at the token's position in its context window (needs
    /// `context`). Without them the model orders tokens by causal attention alone.
    #[serde(default)]
    pub positional: bool,
    /// EcoFormer only: ignore the hash stored with the weights and learn a new one at load time
    /// (KSH on `calibration` inputs), e.g. to try another number of bits on a trained model
    /// without retraining it. The other weights stay as trained.
    #[serde(default)]
    pub relearn_hash: bool,
}

fn default_vocab() -> usize {
    96
}
fn default_mlp_mult() -> usize {
    4
}
fn default_calibration() -> usize {
    256
}
fn default_eps() -> f32 {
    1e-5
}

impl Config {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let limit = 1 << 16;
        for (name, v) in [
            ("n_layer", self.n_layer),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            ("vocab_size", self.vocab_size),
            ("mlp_mult", self.mlp_mult),
        ] {
            if v == 0 || v > limit {
                return Err(format!("{name} must be between 1 and {limit}, found {v}"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "n_head {} must divide n_embd {}",
                self.n_head, self.n_embd
            ));
        }
        if let Task::DigitsClassifier { patch } = self.task
            && !matches!(patch, 1 | 2 | 4 | 8)
        {
            return Err(format!("patch must divide 8 (1, 2, 4 or 8), found {patch}"));
        }
        match (self.context, &self.task) {
            (Some(0), _) => return Err("context must be at least 1 token".into()),
            (Some(_), Task::DigitsClassifier { .. }) => {
                return Err("context applies to the language model only".into());
            }
            _ => {}
        }
        if self.relearn_hash && !matches!(self.attention, AttentionKind::EcoFormer { .. }) {
            return Err("relearn_hash applies to EcoFormer attention only".into());
        }
        if self.positional && (self.context.is_none() || !self.is_lm()) {
            return Err(
                "positional applies to a language model with a `context` (the positions it learns)"
                    .into(),
            );
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err("layer_norm_eps must be positive".into());
        }
        if self.calibration < 2 || self.calibration > 1 << 16 {
            return Err(format!(
                "calibration must be between 2 and {}, found {}",
                1 << 16,
                self.calibration
            ));
        }
        self.attention.validate()
    }

    pub fn shape(&self) -> Heads {
        Heads {
            heads: self.n_head,
            head_dim: self.n_embd / self.n_head,
        }
    }

    pub fn is_lm(&self) -> bool {
        self.task == Task::CausalLm
    }

    /// Tokens per image (classifier).
    pub fn patch_tokens(&self) -> usize {
        match self.task {
            Task::DigitsClassifier { patch } => (8 / patch) * (8 / patch),
            Task::CausalLm => 0,
        }
    }

    fn outputs(&self) -> usize {
        if self.is_lm() {
            self.vocab_size
        } else {
            DIGIT_CLASSES
        }
    }

    /// Every weight key with its shape (the hash tensors excepted).
    pub fn weight_keys(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.n_embd;
        let hid = self.mlp_mult * d;
        let mut keys = vec![];
        match self.task {
            Task::CausalLm => {
                keys.push(("emb.weight".to_string(), vec![self.vocab_size, d]));
                if let (true, Some(c)) = (self.positional, self.context) {
                    keys.push(("pos_embed".to_string(), vec![c, d]));
                }
            }
            Task::DigitsClassifier { patch } => {
                keys.push(("patch_embed.weight".to_string(), vec![d, patch * patch]));
                keys.push(("pos_embed".to_string(), vec![self.patch_tokens(), d]));
            }
        }
        let shared = matches!(self.attention, AttentionKind::EcoFormer { .. });
        for i in 0..self.n_layer {
            for (name, shape) in block_tensors(shared, d, hid) {
                keys.push((format!("blocks.{i}.{name}"), shape));
            }
        }
        keys.push(("ln_out.weight".into(), vec![d]));
        keys.push(("ln_out.bias".into(), vec![d]));
        keys.push(("head.weight".into(), vec![self.outputs(), d]));
        keys
    }

    pub fn n_params(&self) -> usize {
        crate::weights::param_count(&self.weight_keys())
    }
}

/// The names of a block's parts, relative to `blocks.{i}`: the checkpoint keys (a norm's
/// `{name}.weight` and `{name}.bias`, a projection's `{name}.weight`) and the ledger layers.
mod part {
    pub const LN1: &str = "ln1";
    pub const ATT: &str = "att";
    pub const ATT_Q: &str = "att.q";
    pub const ATT_K: &str = "att.k";
    pub const ATT_QK: &str = "att.qk";
    pub const ATT_V: &str = "att.v";
    pub const ATT_OUTPUT: &str = "att.output";
    pub const ATT_KSH: &str = "att.ksh";
    pub const RES1: &str = "res1";
    pub const LN2: &str = "ln2";
    pub const FC1: &str = "mlp.fc1";
    pub const ACT: &str = "mlp.act";
    pub const FC2: &str = "mlp.fc2";
    pub const RES2: &str = "res2";
}

/// One block's weight tensors (keys relative to `blocks.{i}`, the hash excepted) with their
/// shapes, in checkpoint order; `shared` (EcoFormer) blocks have one query/key projection.
fn block_tensors(shared: bool, d: usize, hid: usize) -> Vec<(String, Vec<usize>)> {
    use part::*;
    let mut keys = Vec::new();
    for ln in [LN1, LN2] {
        keys.push((format!("{ln}.weight"), vec![d]));
        keys.push((format!("{ln}.bias"), vec![d]));
    }
    let projections: &[&str] = if shared {
        &[ATT_QK, ATT_V, ATT_OUTPUT]
    } else {
        &[ATT_Q, ATT_K, ATT_V, ATT_OUTPUT]
    };
    for w in projections {
        keys.push((format!("{w}.weight"), vec![d, d]));
    }
    keys.push((format!("{FC1}.weight"), vec![hid, d]));
    keys.push((format!("{FC2}.weight"), vec![d, hid]));
    keys
}

/// Seeded Gaussian weights (std 1 / sqrt(fan_in); embeddings N(0, 1), positional N(0, 0.02^2)
/// as in ViT; LayerNorm weight 1, bias 0). Untrained.
pub fn seeded_weights(cfg: &Config, seed: u64) -> TensorStore {
    crate::weights::seeded_store(cfg.weight_keys(), seed, |key, shape, rng| {
        let n: usize = shape.iter().product();
        let norm_weight = |n: &str| key.strip_suffix(".weight").is_some_and(|k| k.ends_with(n));
        if [part::LN1, part::LN2].into_iter().any(norm_weight) || key == "ln_out.weight" {
            vec![1.0; n]
        } else if key.ends_with(".bias") {
            vec![0.0; n]
        } else if key == "emb.weight" {
            (0..n).map(|_| normal(rng)).collect()
        } else if key == "pos_embed" {
            (0..n).map(|_| 0.02 * normal(rng)).collect()
        } else {
            let std = 1.0 / (shape[1] as f32).sqrt();
            (0..n).map(|_| std * normal(rng)).collect()
        }
    })
}

/// Inputs to learn a missing hash from.
#[derive(Clone, Debug)]
pub enum Calibration {
    Tokens(Vec<usize>),
    Images(Vec<[f32; DIGIT_PIXELS]>),
}

struct BlockIds {
    ln1: LayerId,
    att: LayerIds,
    res1: LayerId,
    ln2: LayerId,
    fc1: LayerId,
    act: LayerId,
    fc2: LayerId,
    res2: LayerId,
}

struct Block {
    ln1: Norm,
    att: AttentionLayer,
    ln2: Norm,
    fc1: Linear,
    fc2: Linear,
    ids: BlockIds,
}

/// Scratch buffers for one token (no allocation per token).
struct Scratch {
    h: Vec<f32>,
    a: Vec<f32>,
    att: Vec<f32>,
    hidden: Vec<f32>,
}

/// Recurrent state of the language model.
pub struct State {
    x: Vec<f32>,
    att: Vec<AttnState>,
    scratch: Scratch,
    pub logits: Vec<f32>,
    pub tokens: usize,
}

pub struct Transformer {
    pub cfg: Config,
    store: TensorStore,
    emb: Vec<f32>,
    patch_embed: Option<Linear>,
    pos: Vec<f32>,
    blocks: Vec<Block>,
    ln_out: Norm,
    head: Linear,
    template: Ledger,
    id_emb: LayerId,
    /// The classifier's mean pool (a language model has none).
    id_pool: Option<LayerId>,
    id_ln_out: LayerId,
    id_head: LayerId,
    /// Whether the hash was learned at load time (not read from the weights).
    pub hash_learned_at_load: bool,
    /// Tensors of the weights file this model did not read (a warning, or empty).
    pub unused_tensors: Option<String>,
}

impl Transformer {
    /// Build from a description; `base` is the folder relative weight paths start from.
    /// `calibration` is used only when an EcoFormer hash is missing from the weights.
    pub fn from_config(
        cfg: Config,
        base: &Path,
        calibration: Option<&Calibration>,
    ) -> Result<Transformer> {
        cfg.validate()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let store = match &cfg.weights {
            WeightsSpec::Seeded(seed) => seeded_weights(&cfg, *seed),
            WeightsSpec::File(path) => crate::weights::load_file(&base.join(path))?,
        };
        let fit = cfg.head_fit.clone();
        let from_file = matches!(cfg.weights, WeightsSpec::File(_));
        let mut model = Transformer::new(cfg, store, calibration)?;
        if from_file {
            model.unused_tensors = model.store.unread_warning(&model.cfg.name);
        }
        if let Some(rel) = fit {
            if model.cfg.is_lm() {
                return Err(Error::input(format!(
                    "model `{}`: head_fit applies to the digits classifier only",
                    model.cfg.name
                )));
            }
            let images: Vec<([f32; DIGIT_PIXELS], usize)> =
                crate::input::digits::read(&base.join(rel))?
                    .into_iter()
                    .map(|d| (d.pixels, d.label))
                    .collect();
            model.fit_head(&images)?;
        }
        Ok(model)
    }

    /// Fit the linear head by ridge regression on labelled images: W = (X^T X + lambda I)^-1 X^T Y
    /// with X the pooled, normalised features and Y one-hot labels (lambda = 1e-3 per image).
    pub fn fit_head(&mut self, data: &[([f32; DIGIT_PIXELS], usize)]) -> Result<()> {
        let d = self.cfg.n_embd;
        if data.is_empty() {
            return Err(Error::input(format!(
                "model `{}`: head_fit file has no images",
                self.cfg.name
            )));
        }
        let arith = Arith::Exact;
        let mut scratch = self.template.clone();
        let mut a = vec![0.0f64; d * d];
        let mut b = vec![0.0f64; d * DIGIT_CLASSES];
        for (img, label) in data {
            let f = self.features(img, &arith, &mut scratch);
            for i in 0..d {
                for j in 0..d {
                    a[i * d + j] += f[i] as f64 * f[j] as f64;
                }
                b[i * DIGIT_CLASSES + label] += f[i] as f64;
            }
        }
        let lambda = 1e-3 * data.len() as f64;
        for i in 0..d {
            a[i * d + i] += lambda;
        }
        // Gaussian elimination with partial pivoting (A is symmetric positive definite).
        for col in 0..d {
            let piv = (col..d)
                .max_by(|&p, &q| a[p * d + col].abs().total_cmp(&a[q * d + col].abs()))
                .unwrap_or(col);
            if piv != col {
                for k in 0..d {
                    a.swap(col * d + k, piv * d + k);
                }
                for k in 0..DIGIT_CLASSES {
                    b.swap(col * DIGIT_CLASSES + k, piv * DIGIT_CLASSES + k);
                }
            }
            let p = a[col * d + col];
            for r in 0..d {
                if r == col {
                    continue;
                }
                let f = a[r * d + col] / p;
                if f == 0.0 {
                    continue;
                }
                for k in 0..d {
                    a[r * d + k] -= f * a[col * d + k];
                }
                for k in 0..DIGIT_CLASSES {
                    b[r * DIGIT_CLASSES + k] -= f * b[col * DIGIT_CLASSES + k];
                }
            }
        }
        let w: Vec<f32> = (0..DIGIT_CLASSES)
            .flat_map(|k| (0..d).map(move |i| (k, i)))
            .map(|(k, i)| (b[i * DIGIT_CLASSES + k] / a[i * d + i]) as f32)
            .collect();
        if w.iter().any(|v| !v.is_finite()) {
            return Err(Error::input(format!(
                "model `{}`: the head fit did not converge",
                self.cfg.name
            )));
        }
        self.head = Linear::from_out_in(&w, DIGIT_CLASSES, d);
        self.store.insert("head.weight", vec![DIGIT_CLASSES, d], w);
        Ok(())
    }

    pub fn new(
        cfg: Config,
        store: TensorStore,
        calibration: Option<&Calibration>,
    ) -> Result<Transformer> {
        cfg.validate()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let (d, shape) = (cfg.n_embd, cfg.shape());
        let hid = cfg.mlp_mult * d;
        let mut ledger = Ledger::new();
        let id_emb = ledger.layer(if cfg.is_lm() { "emb" } else { "patch_embed" });
        let (emb, patch_embed, pos) = match cfg.task {
            Task::CausalLm => (
                store.get("emb.weight", &[cfg.vocab_size, d])?.to_vec(),
                None,
                match (cfg.positional, cfg.context) {
                    (true, Some(c)) => store.get("pos_embed", &[c, d])?.to_vec(),
                    _ => vec![],
                },
            ),
            Task::DigitsClassifier { patch } => {
                let w = store.get("patch_embed.weight", &[d, patch * patch])?;
                (
                    vec![],
                    Some(Linear::from_out_in(w, d, patch * patch)),
                    store.get("pos_embed", &[cfg.patch_tokens(), d])?.to_vec(),
                )
            }
        };
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        let mut missing_hash = false;
        for i in 0..cfg.n_layer {
            let p = format!("blocks.{i}");
            let lin = |name: &str, o: usize, n: usize| -> Result<Linear> {
                Ok(Linear::from_out_in(
                    store.get(&format!("{p}.{name}.weight"), &[o, n])?,
                    o,
                    n,
                ))
            };
            let (q, k, core) = match &cfg.attention {
                AttentionKind::Softmax => (
                    lin(part::ATT_Q, d, d)?,
                    Some(lin(part::ATT_K, d, d)?),
                    Core::Softmax,
                ),
                AttentionKind::Linear => (
                    lin(part::ATT_Q, d, d)?,
                    Some(lin(part::ATT_K, d, d)?),
                    Core::Linear,
                ),
                AttentionKind::EcoFormer {
                    bits,
                    anchors,
                    normalisation,
                } => {
                    let stored = if cfg.relearn_hash {
                        None
                    } else {
                        KernelHash::load(
                            &store,
                            &format!("{p}.{}", part::ATT_KSH),
                            shape.heads,
                            *bits,
                            *anchors,
                            shape.head_dim,
                        )
                        .map_err(|e| {
                            Error::input(format!(
                                "{e} (to use another hash size with these weights, set `relearn_hash: true`)"
                            ))
                        })?
                    };
                    let hash = match stored {
                        Some(h) => h,
                        None => {
                            missing_hash = true;
                            KernelHash::random(
                                shape.heads,
                                *bits,
                                *anchors,
                                shape.head_dim,
                                i as u64,
                            )
                        }
                    };
                    (
                        lin(part::ATT_QK, d, d)?,
                        None,
                        Core::EcoFormer {
                            hash,
                            normalisation: *normalisation,
                        },
                    )
                }
            };
            let att = AttentionLayer {
                shape,
                q,
                k,
                v: lin(part::ATT_V, d, d)?,
                output: lin(part::ATT_OUTPUT, d, d)?,
                core,
            };
            let path = |name: &str| format!("{p}.{name}");
            let ids = BlockIds {
                ln1: ledger.layer(&path(part::LN1)),
                att: att.register(&mut ledger, &path(part::ATT)),
                res1: ledger.layer(&path(part::RES1)),
                ln2: ledger.layer(&path(part::LN2)),
                fc1: ledger.layer(&path(part::FC1)),
                act: ledger.layer(&path(part::ACT)),
                fc2: ledger.layer(&path(part::FC2)),
                res2: ledger.layer(&path(part::RES2)),
            };
            blocks.push(Block {
                ln1: Norm::load(&mut &store, &path(part::LN1), d)?,
                att,
                ln2: Norm::load(&mut &store, &path(part::LN2), d)?,
                fc1: lin(part::FC1, hid, d)?,
                fc2: lin(part::FC2, d, hid)?,
                ids,
            });
        }
        let id_pool = (!cfg.is_lm()).then(|| ledger.layer("pool"));
        let id_ln_out = ledger.layer("ln_out");
        let id_head = ledger.layer("head");
        let ln_out = Norm::load(&mut &store, "ln_out", d)?;
        let head = Linear::from_out_in(
            store.get("head.weight", &[cfg.outputs(), d])?,
            cfg.outputs(),
            d,
        );
        let mut model = Transformer {
            cfg,
            unused_tensors: None,
            store,
            emb,
            patch_embed,
            pos,
            blocks,
            ln_out,
            head,
            template: ledger,
            id_emb,
            id_pool,
            id_ln_out,
            id_head,
            hash_learned_at_load: false,
        };
        if missing_hash {
            let calib = calibration.ok_or_else(|| {
                Error::input(format!(
                    "model `{}`: EcoFormer attention needs its hash (`blocks.{{i}}.att.ksh.A`, `.anchor`, `.mvec`) in the weights ({}), or calibration inputs to learn it",
                    model.cfg.name, model.store.origin
                ))
            })?;
            model.learn_hashes(calib)?;
        }
        Ok(model)
    }

    /// NeuroBench's static metrics: parameters of every weight key (the Linear and patch
    /// projections are the connection weights, not the embedding or positional tables), and the
    /// hash tensors (`*.att.ksh.*`, buffers in EcoFormer's code) in the footprint.
    pub fn statics(&self) -> super::statics::StaticMetrics {
        let hash: usize = self
            .store
            .keys()
            .filter(|k| k.contains(".att.ksh."))
            .filter_map(|k| self.store.peek(k).map(|d| d.len()))
            .sum();
        super::statics::from_store(
            &self.cfg.weight_keys(),
            &self.store,
            super::statics::linear_or_conv_weight,
            hash,
        )
    }

    /// All weights, including the (learned) hash tensors: save with `weights::save_safetensors`.
    pub fn weights(&self) -> &TensorStore {
        &self.store
    }

    /// Learn every layer's hash, first to last, each on the inputs the layers before it produce.
    fn learn_hashes(&mut self, calib: &Calibration) -> Result<()> {
        let (d, shape) = (self.cfg.n_embd, self.cfg.shape());
        let AttentionKind::EcoFormer { bits, anchors, .. } = self.cfg.attention else {
            return Ok(());
        };
        // The embedded calibration sequences (one for the LM, one per image for the classifier).
        let seqs: Vec<Vec<f32>> = match (calib, &self.cfg.task) {
            (Calibration::Tokens(toks), Task::CausalLm) => {
                if toks.iter().any(|&t| t >= self.cfg.vocab_size) {
                    return Err(Error::input(format!(
                        "model `{}`: calibration token outside the vocabulary",
                        self.cfg.name
                    )));
                }
                let mut x: Vec<f32> = toks
                    .iter()
                    .flat_map(|&t| self.emb[t * d..(t + 1) * d].iter().copied())
                    .collect();
                for (i, row) in x.chunks_exact_mut(d).enumerate() {
                    if let Some(p) = self.position(i) {
                        for (v, q) in row.iter_mut().zip(&self.pos[p * d..(p + 1) * d]) {
                            *v += q;
                        }
                    }
                }
                vec![x]
            }
            (Calibration::Images(imgs), Task::DigitsClassifier { .. }) => {
                let mut scratch = Ledger::new();
                let id = scratch.layer("x");
                imgs.iter()
                    .map(|img| self.embed_image(img, &Arith::Exact, scratch.at(id)))
                    .collect()
            }
            _ => {
                return Err(Error::Internal(
                    "calibration inputs do not match the model's task".into(),
                ));
            }
        };
        let arith = Arith::Exact;
        let mut ledger = self.template.clone();
        let mut xs = seqs;
        for i in 0..self.blocks.len() {
            // Q/K rows of block i over all calibration sequences.
            let mut rows = Vec::new();
            let mut h = vec![0.0; d];
            let mut qk = vec![0.0; d];
            for x in &xs {
                for row in x.chunks_exact(d) {
                    let b = &self.blocks[i];
                    layer_norm(
                        row,
                        &b.ln1.w,
                        &b.ln1.b,
                        self.cfg.layer_norm_eps,
                        &mut h,
                        &arith,
                        ledger.at(b.ids.ln1),
                    );
                    b.att
                        .q
                        .forward_dense(&h, &mut qk, &arith, ledger.at(b.ids.ln1));
                    rows.extend_from_slice(&qk);
                }
            }
            let n = rows.len() / d;
            let out = ksh::learn(
                &rows,
                n,
                shape.heads,
                shape.head_dim,
                bits,
                anchors,
                KshConfig::default(),
                0x6b73_6800 + i as u64,
            );
            out.hash
                .save(&format!("blocks.{i}.{}", part::ATT_KSH), &mut self.store);
            if let Core::EcoFormer { hash, .. } = &mut self.blocks[i].att.core {
                *hash = out.hash;
            }
            // Advance the calibration sequences through block i with its learned hash.
            if i + 1 < self.blocks.len() {
                for x in xs.iter_mut() {
                    let n = x.len() / d;
                    self.block_sequence(i, x, n, &arith, &mut ledger);
                }
            }
        }
        self.hash_learned_at_load = true;
        Ok(())
    }

    /// An empty ledger with every layer registered, and the footprint for `context` tokens.
    pub fn new_ledger(&self, arith: &Arith, context: usize) -> Ledger {
        let mut l = self.template.clone();
        let (d, b) = (self.cfg.n_embd as u64, arith.operand_bytes());
        let shape = self.cfg.shape();
        let (h, c, layers) = (
            shape.heads as u64,
            shape.head_dim as u64,
            self.cfg.n_layer as u64,
        );
        let state = match &self.cfg.attention {
            AttentionKind::Softmax => 2 * context as u64 * d,
            AttentionKind::Linear => h * (c * c + c),
            AttentionKind::EcoFormer { bits, .. } => h * (*bits as u64 * (c + 1) + c + 1),
        } * layers
            * b;
        let hash = match &self.cfg.attention {
            AttentionKind::EcoFormer { bits, anchors, .. } => {
                layers * h * (*bits as u64 * *anchors as u64 + *anchors as u64 * (c + 1))
            }
            _ => 0,
        };
        l.footprint
            .insert(TensorClass::Weight, (self.cfg.n_params() as u64 + hash) * b);
        l.footprint.insert(TensorClass::State, state);
        l.footprint.insert(
            TensorClass::Activation,
            (8 * d + self.cfg.mlp_mult as u64 * d + self.cfg.outputs() as u64) * b,
        );
        l
    }

    fn scratch(&self) -> Scratch {
        let d = self.cfg.n_embd;
        Scratch {
            h: vec![0.0; d],
            a: vec![0.0; d],
            att: vec![0.0; 4 * d],
            hidden: vec![0.0; self.cfg.mlp_mult * d],
        }
    }

    /// A fresh language-model state; `capacity` sizes the K/V cache.
    pub fn new_state(&self, capacity: usize) -> State {
        State {
            x: vec![0.0; self.cfg.n_embd],
            att: self
                .blocks
                .iter()
                .map(|b| b.att.new_state(capacity))
                .collect(),
            scratch: self.scratch(),
            logits: vec![0.0; self.cfg.outputs()],
            tokens: 0,
        }
    }

    /// Row of `pos_embed` for the token at `t` (tokens since the state was reset; positions
    /// wrap at the context length), when the language model has positional embeddings.
    fn position(&self, t: usize) -> Option<usize> {
        match (self.cfg.positional, self.cfg.context) {
            (true, Some(c)) => Some(t % c),
            _ => None,
        }
    }

    /// Forget every token seen (a new context window); buffers are kept.
    pub fn reset_state(&self, st: &mut State) {
        for (b, a) in self.blocks.iter().zip(st.att.iter_mut()) {
            match a {
                AttnState::Softmax(cache) => {
                    cache.k.clear();
                    cache.v.clear();
                    cache.len = 0;
                }
                _ => *a = b.att.new_state(0),
            }
        }
        st.x.fill(0.0);
        st.logits.fill(0.0);
        st.tokens = 0;
    }

    /// x += MLP(LN2(x)) for one row.
    fn mlp(&self, b: &Block, x: &mut [f32], sc: &mut Scratch, arith: &Arith, l: &mut Ledger) {
        layer_norm(
            x,
            &b.ln2.w,
            &b.ln2.b,
            self.cfg.layer_norm_eps,
            &mut sc.h,
            arith,
            l.at(b.ids.ln2),
        );
        b.fc1
            .forward_dense(&sc.h, &mut sc.hidden, arith, l.at(b.ids.fc1));
        match self.cfg.activation {
            Activation::Gelu => pointwise::gelu(&mut sc.hidden, arith, l.at(b.ids.act)),
            Activation::Relu => pointwise::relu(&mut sc.hidden, arith, l.at(b.ids.act)),
        }
        b.fc2
            .forward_dense(&sc.hidden, &mut sc.a, arith, l.at(b.ids.fc2));
        residual_add(x, &sc.a, arith, l.at(b.ids.res2));
    }

    /// Block `i` over a whole sequence of `n` rows in place: causal (token by token, fresh
    /// state) for the language model, full attention for the classifier.
    fn block_sequence(&self, i: usize, x: &mut [f32], n: usize, arith: &Arith, l: &mut Ledger) {
        let d = self.cfg.n_embd;
        let b = &self.blocks[i];
        let mut sc = self.scratch();
        let mut h = vec![0.0; n * d];
        for t in 0..n {
            layer_norm(
                &x[t * d..(t + 1) * d],
                &b.ln1.w,
                &b.ln1.b,
                self.cfg.layer_norm_eps,
                &mut h[t * d..(t + 1) * d],
                arith,
                l.at(b.ids.ln1),
            );
        }
        let mut a = vec![0.0; n * d];
        if self.cfg.is_lm() {
            let mut st = b.att.new_state(n);
            for t in 0..n {
                b.att.forward_step(
                    &h[t * d..(t + 1) * d],
                    &mut st,
                    &mut sc.att,
                    &mut a[t * d..(t + 1) * d],
                    arith,
                    l,
                    &b.ids.att,
                );
            }
        } else {
            b.att.forward_full(&h, n, &mut a, arith, l, &b.ids.att);
        }
        for t in 0..n {
            let row = &mut x[t * d..(t + 1) * d];
            residual_add(row, &a[t * d..(t + 1) * d], arith, l.at(b.ids.res1));
            self.mlp(b, row, &mut sc, arith, l);
        }
    }

    /// One token of the language model; the next-token logits are left in `st.logits`.
    pub fn step(&self, token: usize, st: &mut State, arith: &Arith, l: &mut Ledger) {
        let d = self.cfg.n_embd;
        let row = pointwise::embedding_row(&self.emb, token, d, arith, l.at(self.id_emb));
        st.x.copy_from_slice(row);
        if let Some(p) = self.position(st.tokens) {
            residual_add(
                &mut st.x,
                &self.pos[p * d..(p + 1) * d],
                arith,
                l.at(self.id_emb),
            );
        }
        let sc = &mut st.scratch;
        for (b, ast) in self.blocks.iter().zip(st.att.iter_mut()) {
            layer_norm(
                &st.x,
                &b.ln1.w,
                &b.ln1.b,
                self.cfg.layer_norm_eps,
                &mut sc.h,
                arith,
                l.at(b.ids.ln1),
            );
            b.att
                .forward_step(&sc.h, ast, &mut sc.att, &mut sc.a, arith, l, &b.ids.att);
            residual_add(&mut st.x, &sc.a, arith, l.at(b.ids.res1));
            self.mlp(b, &mut st.x, sc, arith, l);
        }
        layer_norm(
            &st.x,
            &self.ln_out.w,
            &self.ln_out.b,
            self.cfg.layer_norm_eps,
            &mut sc.h,
            arith,
            l.at(self.id_ln_out),
        );
        self.head
            .forward_dense(&sc.h, &mut st.logits, arith, l.at(self.id_head));
        st.tokens += 1;
    }

    /// Patch tokens of one image plus positional embeddings ([tokens, D]).
    fn embed_image(&self, img: &[f32; DIGIT_PIXELS], arith: &Arith, c: &mut Counts) -> Vec<f32> {
        let Task::DigitsClassifier { patch } = self.cfg.task else {
            unreachable!("classifier only")
        };
        let (d, g) = (self.cfg.n_embd, 8 / patch);
        let pe = self
            .patch_embed
            .as_ref()
            .expect("classifier has a patch embedding");
        let mut x = vec![0.0; g * g * d];
        let mut px = vec![0.0; patch * patch];
        for t in 0..g * g {
            let (r0, c0) = ((t / g) * patch, (t % g) * patch);
            for (k, p) in px.iter_mut().enumerate() {
                *p = img[(r0 + k / patch) * 8 + c0 + k % patch];
            }
            let row = &mut x[t * d..(t + 1) * d];
            pe.forward_dense(&px, row, arith, c);
            residual_add(row, &self.pos[t * d..(t + 1) * d], arith, c);
        }
        x
    }

    /// Classify one image (pixels scaled to 0..1); returns the class logits.
    pub fn classify(&self, img: &[f32; DIGIT_PIXELS], arith: &Arith, l: &mut Ledger) -> Vec<f32> {
        let h = self.features(img, arith, l);
        let mut logits = vec![0.0; DIGIT_CLASSES];
        self.head
            .forward_dense(&h, &mut logits, arith, l.at(self.id_head));
        logits
    }

    /// The pooled, normalised features the head reads.
    fn features(&self, img: &[f32; DIGIT_PIXELS], arith: &Arith, l: &mut Ledger) -> Vec<f32> {
        let d = self.cfg.n_embd;
        let mut x = self.embed_image(img, arith, l.at(self.id_emb));
        let n = x.len() / d;
        for i in 0..self.blocks.len() {
            self.block_sequence(i, &mut x, n, arith, l);
        }
        let pool = l.at(self.id_pool.expect("a classifier has a pool layer"));
        let pooled = pointwise::mean_rows(&x, d, arith, pool);
        let mut h = vec![0.0; d];
        layer_norm(
            &pooled,
            &self.ln_out.w,
            &self.ln_out.b,
            self.cfg.layer_norm_eps,
            &mut h,
            arith,
            l.at(self.id_ln_out),
        );
        h
    }
}

impl crate::models::Stepper for Transformer {
    type State = State;

    fn new_state(&self, window: usize) -> State {
        Transformer::new_state(self, window)
    }

    fn new_ledger(&self, arith: &Arith, window: usize) -> Ledger {
        let context = if self.cfg.is_lm() {
            window
        } else {
            self.cfg.patch_tokens()
        };
        Transformer::new_ledger(self, arith, context)
    }

    fn reset(&self, st: &mut State) {
        if self.cfg.is_lm() {
            self.reset_state(st);
        }
    }

    fn step(&self, frame: crate::models::Frame, st: &mut State, arith: &Arith, l: &mut Ledger) {
        match frame {
            crate::models::Frame::Token(t) => Transformer::step(self, t, st, arith, l),
            crate::models::Frame::Values(v) => {
                let img: &[f32; DIGIT_PIXELS] =
                    v.try_into().expect("the runner feeds 64-pixel images");
                st.logits = self.classify(img, arith, l);
            }
        }
    }

    fn outputs<'s>(&self, st: &'s State) -> &'s [f32] {
        &st.logits
    }

    fn context(&self) -> Option<usize> {
        if self.cfg.is_lm() {
            self.cfg.context
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::attention::Normalisation;
    use crate::ledger::Op;

    fn lm(attention: AttentionKind) -> Config {
        Config {
            name: "t".into(),
            task: Task::CausalLm,
            n_layer: 2,
            n_embd: 16,
            n_head: 2,
            vocab_size: 20,
            mlp_mult: 2,
            activation: Activation::Gelu,
            attention,
            calibration: 64,
            layer_norm_eps: 1e-5,
            weights: WeightsSpec::Seeded(3),
            head_fit: None,
            context: None,
            positional: false,
            relearn_hash: false,
        }
    }

    fn eco() -> AttentionKind {
        AttentionKind::EcoFormer {
            bits: 8,
            anchors: 5,
            normalisation: Normalisation::Normalised,
        }
    }

    fn logits(m: &Transformer, toks: &[usize]) -> Vec<f32> {
        let arith = Arith::Exact;
        let mut l = m.new_ledger(&arith, toks.len());
        let mut st = m.new_state(toks.len());
        let mut out = vec![];
        for &t in toks {
            m.step(t, &mut st, &arith, &mut l);
            out.extend_from_slice(&st.logits);
        }
        out
    }

    #[test]
    fn learned_hash_is_saved_and_loaded_with_the_weights() {
        let cfg = lm(eco());
        let calib = Calibration::Tokens(crate::input::text::synthetic_tokens(64, 20, 1));
        let m = Transformer::new(cfg.clone(), seeded_weights(&cfg, 3), Some(&calib)).unwrap();
        assert!(m.hash_learned_at_load);
        assert_eq!(
            m.weights().raw("blocks.1.att.ksh.A").unwrap().shape,
            vec![2, 8, 5]
        );
        let dir = std::env::temp_dir().join(format!("picojoule-ksh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.safetensors");
        crate::weights::save_safetensors(m.weights(), &path).unwrap();
        let loaded =
            Transformer::new(cfg, crate::weights::load_safetensors(&path).unwrap(), None).unwrap();
        assert!(!loaded.hash_learned_at_load);
        let toks = [1, 4, 9, 2, 2, 7];
        assert_eq!(logits(&m, &toks), logits(&loaded, &toks));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reset_state_makes_the_next_window_independent_of_the_last() {
        for kind in [AttentionKind::Softmax, eco()] {
            let cfg = lm(kind);
            let calib = Calibration::Tokens(crate::input::text::synthetic_tokens(64, 20, 1));
            let m = Transformer::new(cfg.clone(), seeded_weights(&cfg, 3), Some(&calib)).unwrap();
            let arith = Arith::Exact;
            let mut l = m.new_ledger(&arith, 8);
            let mut st = m.new_state(8);
            for t in [3, 1, 4, 1, 5] {
                m.step(t, &mut st, &arith, &mut l);
            }
            m.reset_state(&mut st);
            let mut after = vec![];
            for t in [9, 2, 6] {
                m.step(t, &mut st, &arith, &mut l);
                after.extend_from_slice(&st.logits);
            }
            assert_eq!(after, logits(&m, &[9, 2, 6]));
        }
    }

    #[test]
    fn missing_hash_without_calibration_is_an_input_error() {
        let cfg = lm(eco());
        let err = Transformer::new(cfg.clone(), seeded_weights(&cfg, 3), None)
            .err()
            .expect("must fail");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("att.ksh.A"), "{err}");
    }

    #[test]
    fn softmax_cost_per_token_grows_with_context_and_hashed_stays_flat() {
        for (kind, grows) in [
            (AttentionKind::Softmax, true),
            (AttentionKind::Linear, false),
            (eco(), false),
        ] {
            let cfg = lm(kind);
            let calib = Calibration::Tokens(crate::input::text::synthetic_tokens(64, 20, 1));
            let m = Transformer::new(cfg.clone(), seeded_weights(&cfg, 3), Some(&calib)).unwrap();
            let arith = Arith::Exact;
            let mut st = m.new_state(40);
            let mut per_token = vec![];
            for t in 0..40 {
                let mut l = m.new_ledger(&arith, 40);
                m.step(t % 20, &mut st, &arith, &mut l);
                let c = l.totals();
                per_token.push(c.op_total(Op::Mac) + c.op_total(Op::Ac) + c.op_total(Op::Mul));
            }
            assert_eq!(per_token[39] > per_token[1], grows, "{per_token:?}");
            if !grows {
                assert_eq!(per_token[39], per_token[1]);
            }
        }
    }
}
