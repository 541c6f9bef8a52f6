//! PVTv2 family (Wang et al., "PVT v2", CVMJ 2022), as EcoFormer (Liu et al., NeurIPS 2022)
//! measures it: image classification on 224 x 224 x 3 inputs.
//!
//! Four stages. Stage s starts with an overlapping patch embedding (a 7 x 7 stride-4 padding-3
//! convolution for the first stage, 3 x 3 stride 2 padding 1 after, each followed by LayerNorm),
//! then `depths[s]` pre-LN blocks (x += Attn(LN1(x)); x += MLP(LN2(x)), the MLP being fc1 ->
//! 3 x 3 depthwise conv -> GELU -> fc2) and a final LayerNorm. A linear head (1000 classes) reads
//! the mean of the last stage's tokens.
//!
//! Attention over all N tokens of a stage, per `attention`:
//! - `Msa`: full softmax attention (the `*_msa` configs of EcoFormer: PVTv2's spatial reduction
//!   replaced by full attention), projections `q` and `kv` (one Linear D -> 2D) and `proj`;
//! - `Sra`: PVTv2 as released, spatial-reduction attention: keys and values are projected from
//!   a reduced copy of the tokens (`attn.sr`, a R x R stride-R convolution, then `attn.norm`, a
//!   LayerNorm with PyTorch's default eps 1e-5), so N queries attend to N / R^2 keys; R = 1 (the
//!   last stage of every PVTv2) is full attention with no `sr` or `norm`;
//! - `EcoFormer`: hashed attention in stages 1-3 (one shared `to_qk` projection, `to_v`, the
//!   binary-code core of `engine::attention::hashed`, `proj`); stage 4 always softmax, as the
//!   EcoFormer code does (`Block(last_stage=True)`).
//!
//! Weights are named as PyTorch's PVTv2 state dict (`patch_embed{s}.proj.weight`,
//! `block{s}.{i}.attn.q.weight`, `block{s}.{i}.mlp.dwconv.dwconv.weight`, `norm{s}.weight`,
//! `head.weight`, ... with stages numbered from 1), seeded (untrained) or read from a file. The
//! EcoFormer hash (`block{s}.{i}.attn.fast_attention.ksh.{A,anchor,mvec}`) is read from the
//! weights when present, else drawn at random from the weights seed: learning it with KSH on
//! N = 3136 tokens needs N x N targets per head and is not cheap, and no count depends on the
//! hash values (the hashed core's counts depend on N, b, m and C only).
//!
//! Convolutions run channels-last as im2col + GEMM (`Conv::forward_im2col_hwc`): every tap of
//! every output position is executed, padding included. Biases are added in their own ledger
//! layers (`{layer}.bias` for Linear, `{conv}.conv_bias`), LayerNorm statistics in
//! `{norm}.norm_stats`, so the `ecoformer-paper` convention can view the ledger the way mmcv
//! counts a model (`crate::convention`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::Arith;
use crate::engine::attention::hashed::{self, KernelHash};
use crate::engine::attention::layer::Core;
use crate::engine::attention::{Heads, Normalisation, StepIds, normal, softmax};
use crate::engine::conv::{Conv, ConvGeom};
use crate::engine::linear::Linear;
use crate::engine::model_step;
use crate::engine::norm::{Norm, layer_norm_rows};
use crate::engine::pointwise::{bias_add_rows, gelu, residual_add};
use crate::error::{Error, Result};
use crate::ledger::{LayerId, Ledger, Op, TensorClass};
use crate::models::spikegpt::WeightsSpec;
use crate::weights::TensorStore;

/// The attention of a PVTv2 model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PvtAttention {
    /// Full softmax attention over all N tokens in every stage.
    Msa,
    /// Spatial-reduction softmax attention with reduction ratio `sr_ratios[s]` in stage s
    /// (PVTv2-B0..B2: [8, 4, 2, 1]).
    Sra { sr_ratios: Vec<usize> },
    /// EcoFormer hashed attention in every stage but the last (softmax there).
    EcoFormer {
        bits: usize,
        anchors: usize,
        #[serde(default)]
        normalisation: Normalisation,
    },
}

impl PvtAttention {
    pub fn name(&self) -> &'static str {
        match self {
            PvtAttention::Msa => "msa",
            PvtAttention::Sra { .. } => "sra",
            PvtAttention::EcoFormer { normalisation, .. } => normalisation.label(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: String,
    pub embed_dims: Vec<usize>,
    pub num_heads: Vec<usize>,
    pub mlp_ratios: Vec<usize>,
    pub depths: Vec<usize>,
    pub attention: PvtAttention,
    #[serde(default = "default_image")]
    pub image_size: usize,
    #[serde(default = "default_chans")]
    pub in_chans: usize,
    #[serde(default = "default_classes")]
    pub num_classes: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    pub weights: WeightsSpec,
}

fn default_image() -> usize {
    224
}
fn default_chans() -> usize {
    3
}
fn default_classes() -> usize {
    1000
}
fn default_eps() -> f32 {
    1e-6
}

/// Patch embedding geometry of stage `s`: (kernel, stride, padding).
fn patch_geometry(s: usize) -> (usize, usize, usize) {
    if s == 0 { (7, 4, 3) } else { (3, 2, 1) }
}

impl Config {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let n = self.embed_dims.len();
        if n == 0 || n > 8 {
            return Err(format!("embed_dims must list 1 to 8 stages, found {n}"));
        }
        for (name, v) in [
            ("num_heads", &self.num_heads),
            ("mlp_ratios", &self.mlp_ratios),
            ("depths", &self.depths),
        ] {
            if v.len() != n {
                return Err(format!(
                    "{name} has {} entries, embed_dims has {n}",
                    v.len()
                ));
            }
            if let Some(bad) = v
                .iter()
                .find(|&&x| x > 1 << 12 || (x == 0 && name != "depths"))
            {
                return Err(format!("{name} entry {bad} out of range"));
            }
        }
        for (s, (&d, &h)) in self.embed_dims.iter().zip(&self.num_heads).enumerate() {
            if d == 0 || d > 1 << 14 || !d.is_multiple_of(h) {
                return Err(format!(
                    "stage {}: num_heads {h} must divide embed_dim {d} (1..16384)",
                    s + 1
                ));
            }
        }
        if self.image_size < 8 || self.image_size > 4096 {
            return Err(format!(
                "image_size must be between 8 and 4096, found {}",
                self.image_size
            ));
        }
        if self.in_chans == 0
            || self.in_chans > 64
            || self.num_classes == 0
            || self.num_classes > 1 << 16
        {
            return Err("in_chans (1..64) and num_classes (1..65536) out of range".into());
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err("layer_norm_eps must be positive".into());
        }
        let mut size = self.image_size;
        for s in 0..n {
            let (k, st, p) = patch_geometry(s);
            if size + 2 * p < k {
                return Err(format!(
                    "image_size {} is too small for {n} stages",
                    self.image_size
                ));
            }
            size = (size + 2 * p - k) / st + 1;
        }
        if let PvtAttention::EcoFormer { bits, anchors, .. } = self.attention
            && (bits == 0 || bits > 1024 || anchors == 0 || anchors > 4096)
        {
            return Err(format!(
                "attention bits (1..1024) and anchors (1..4096) out of range: {bits}, {anchors}"
            ));
        }
        if let PvtAttention::Sra { sr_ratios } = &self.attention {
            if sr_ratios.len() != n {
                return Err(format!(
                    "attention sr_ratios has {} entries, embed_dims has {n}",
                    sr_ratios.len()
                ));
            }
            for (s, (&r, g)) in sr_ratios.iter().zip(self.grid()).enumerate() {
                if r == 0 || r > g {
                    return Err(format!(
                        "stage {}: sr_ratio {r} must be between 1 and the token grid side {g}",
                        s + 1
                    ));
                }
            }
        }
        Ok(())
    }

    /// The spatial reduction ratio of stage `s` (1: keys from every token).
    pub fn sr_ratio(&self, s: usize) -> usize {
        match &self.attention {
            PvtAttention::Sra { sr_ratios } => sr_ratios[s],
            _ => 1,
        }
    }

    pub fn stages(&self) -> usize {
        self.embed_dims.len()
    }

    /// Side of the token grid of each stage (56, 28, 14, 7 for 224).
    pub fn grid(&self) -> Vec<usize> {
        let mut size = self.image_size;
        (0..self.stages())
            .map(|s| {
                let (k, st, p) = patch_geometry(s);
                size = (size + 2 * p - k) / st + 1;
                size
            })
            .collect()
    }

    /// Whether stage `s` (from 0) uses hashed attention.
    pub fn hashed_stage(&self, s: usize) -> bool {
        matches!(self.attention, PvtAttention::EcoFormer { .. }) && s + 1 < self.stages()
    }

    /// Every weight key with its shape (the hash tensors excepted), PyTorch layout.
    /// The spatial-reduction tensors come last, so that seeded SRA and MSA models of one seed
    /// share every other tensor.
    pub fn weight_keys(&self) -> Vec<(String, Vec<usize>)> {
        let mut keys = vec![];
        let mut sr_keys = vec![];
        let mut c_in = self.in_chans;
        for s in 0..self.stages() {
            let (d, st) = (self.embed_dims[s], s + 1);
            let (k, _, _) = patch_geometry(s);
            keys.push((format!("patch_embed{st}.proj.weight"), vec![d, c_in, k, k]));
            keys.push((format!("patch_embed{st}.proj.bias"), vec![d]));
            keys.push((format!("patch_embed{st}.norm.weight"), vec![d]));
            keys.push((format!("patch_embed{st}.norm.bias"), vec![d]));
            let hid = d * self.mlp_ratios[s];
            for i in 0..self.depths[s] {
                let p = format!("block{st}.{i}");
                let linear =
                    |keys: &mut Vec<(String, Vec<usize>)>, name: &str, o: usize, i: usize| {
                        keys.push((format!("{p}.{name}.weight"), vec![o, i]));
                        keys.push((format!("{p}.{name}.bias"), vec![o]));
                    };
                for n in ["norm1", "norm2"] {
                    keys.push((format!("{p}.{n}.weight"), vec![d]));
                    keys.push((format!("{p}.{n}.bias"), vec![d]));
                }
                if self.hashed_stage(s) {
                    linear(&mut keys, "attn.to_qk", d, d);
                    linear(&mut keys, "attn.to_v", d, d);
                } else {
                    linear(&mut keys, "attn.q", d, d);
                    linear(&mut keys, "attn.kv", 2 * d, d);
                    let r = self.sr_ratio(s);
                    if r > 1 {
                        sr_keys.push((format!("{p}.attn.sr.weight"), vec![d, d, r, r]));
                        sr_keys.push((format!("{p}.attn.sr.bias"), vec![d]));
                        sr_keys.push((format!("{p}.attn.norm.weight"), vec![d]));
                        sr_keys.push((format!("{p}.attn.norm.bias"), vec![d]));
                    }
                }
                linear(&mut keys, "attn.proj", d, d);
                linear(&mut keys, "mlp.fc1", hid, d);
                keys.push((format!("{p}.mlp.dwconv.dwconv.weight"), vec![hid, 1, 3, 3]));
                keys.push((format!("{p}.mlp.dwconv.dwconv.bias"), vec![hid]));
                linear(&mut keys, "mlp.fc2", d, hid);
            }
            keys.push((format!("norm{st}.weight"), vec![d]));
            keys.push((format!("norm{st}.bias"), vec![d]));
            c_in = d;
        }
        let last = *self
            .embed_dims
            .last()
            .expect("validated: at least one stage");
        keys.push(("head.weight".into(), vec![self.num_classes, last]));
        keys.push(("head.bias".into(), vec![self.num_classes]));
        keys.extend(sr_keys);
        keys
    }

    pub fn n_params(&self) -> usize {
        crate::weights::param_count(&self.weight_keys())
    }
}

/// Seeded weights: Gaussian with std 1 / sqrt(fan_in) for linear and conv weights, biases 0,
/// LayerNorm weight 1 and bias 0. Untrained.
pub fn seeded_weights(cfg: &Config, seed: u64) -> TensorStore {
    crate::weights::seeded_store(cfg.weight_keys(), seed, |key, shape, rng| {
        let n: usize = shape.iter().product();
        if key.ends_with(".bias") {
            vec![0.0; n]
        } else if key.contains("norm") {
            vec![1.0; n]
        } else {
            let fan_in: usize = shape[1..].iter().product();
            let std = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| std * normal(rng)).collect()
        }
    })
}

/// A LayerNorm with its ledger layers (the normalise-and-affine step and the row statistics).
struct NormLayer {
    norm: Norm,
    id: LayerId,
    stats: LayerId,
}

/// PyTorch's default LayerNorm eps, which PVTv2's spatial-reduction norm keeps.
const SR_NORM_EPS: f32 = 1e-5;

/// A Linear layer with its bias and ledger layers.
struct Dense {
    lin: Linear,
    bias: Vec<f32>,
    id: LayerId,
    bias_id: LayerId,
}

struct ConvLayer {
    conv: Conv,
    bias: Vec<f32>,
    id: LayerId,
    bias_id: LayerId,
}

struct Block {
    norm1: NormLayer,
    /// The query projection, or the query/key projection a hashed core shares.
    q: Dense,
    /// Keys and values in one projection (softmax core), or the values alone (hashed core).
    kv: Dense,
    core: Core,
    steps: StepIds,
    /// Spatial reduction of the keys' and values' tokens: the convolution, its LayerNorm and
    /// the number of reduced tokens.
    sr: Option<(ConvLayer, NormLayer, usize)>,
    proj: Dense,
    residual: LayerId,
    norm2: NormLayer,
    fc1: Dense,
    dwconv: ConvLayer,
    gelu: LayerId,
    fc2: Dense,
}

struct Stage {
    patch: ConvLayer,
    patch_norm: NormLayer,
    blocks: Vec<Block>,
    norm: NormLayer,
    shape: Heads,
    grid: usize,
    hidden: usize,
}

pub struct Pvt {
    pub cfg: Config,
    stages: Vec<Stage>,
    head: Dense,
    id_pool: LayerId,
    template: Ledger,
    /// Tensors of the weights file this model did not read (a warning, or empty).
    pub unused_tensors: Option<String>,
    /// NeuroBench's static metrics: the Linear and convolution weights are the connection
    /// weights; the hash tensors are buffers (in the footprint, not the parameters).
    pub statics: super::statics::StaticMetrics,
}

/// Declare the activation elements live while layer `id` runs (scaled to bytes by the run's
/// operand width in `new_ledger`): the tensors an element-wise layer reads and writes, which
/// placement may fit in a level the network's whole footprint does not.
fn live(l: &mut Ledger, id: LayerId, elems: usize) {
    l.set_layer_footprint(id, TensorClass::Activation, elems as u64);
}

impl NormLayer {
    /// Input and output rows of `n` tokens of width `d`.
    fn declare(&self, l: &mut Ledger, n: usize, d: usize) {
        live(l, self.id, 2 * n * d);
        live(l, self.stats, 2 * n * d);
    }
}

fn norm(store: &TensorStore, l: &mut Ledger, key: &str, d: usize) -> Result<NormLayer> {
    let id = l.layer(key);
    let stats = l.layer(&format!("{key}.{}", model_step::NORM_STATS));
    Ok(NormLayer {
        norm: Norm::load(&mut &*store, key, d)?,
        id,
        stats,
    })
}

fn dense(
    store: &TensorStore,
    l: &mut Ledger,
    key: &str,
    path: &str,
    o: usize,
    i: usize,
) -> Result<Dense> {
    let lin = Linear::from_out_in(store.get(&format!("{key}.weight"), &[o, i])?, o, i);
    let bias = store.get(&format!("{key}.bias"), &[o])?.to_vec();
    let id = l.layer(path);
    let bias_id = l.layer(&format!("{path}.{}", model_step::BIAS));
    Ok(Dense {
        lin,
        bias,
        id,
        bias_id,
    })
}

fn conv(
    store: &TensorStore,
    l: &mut Ledger,
    key: &str,
    path: &str,
    geom: ConvGeom,
) -> Result<ConvLayer> {
    let w = store.get(
        &format!("{key}.weight"),
        &[geom.c_out, geom.cin_g(), geom.kh, geom.kw],
    )?;
    let conv = Conv::from_pytorch(geom, w);
    let bias = store.get(&format!("{key}.bias"), &[geom.c_out])?.to_vec();
    let id = l.layer(path);
    let bias_id = l.layer(&format!("{path}.{}", model_step::CONV_BIAS));
    Ok(ConvLayer {
        conv,
        bias,
        id,
        bias_id,
    })
}

impl Dense {
    /// Every row of `x` ([n, in]) into `y` ([n, out]), plus the bias.
    fn rows(&self, x: &[f32], y: &mut [f32], arith: &Arith, l: &mut Ledger) {
        self.lin.forward_rows(x, y, arith, l.at(self.id));
        bias_add_rows(y, &self.bias, arith, l.at(self.bias_id));
    }
}

impl ConvLayer {
    fn run(&self, x: &[f32], y: &mut [f32], arith: &Arith, l: &mut Ledger) {
        self.conv.forward_im2col_hwc(x, y, arith, l.at(self.id));
        bias_add_rows(y, &self.bias, arith, l.at(self.bias_id));
    }
}

impl NormLayer {
    fn rows(&self, x: &[f32], y: &mut [f32], eps: f32, arith: &Arith, l: &mut Ledger) {
        layer_norm_rows(
            x,
            self.norm.width(),
            &self.norm.w,
            &self.norm.b,
            eps,
            y,
            arith,
            l,
            self.id,
            self.stats,
        );
    }
}

impl Pvt {
    /// Build from a description; `base` is the folder relative weight paths start from.
    pub fn from_config(cfg: Config, base: &Path) -> Result<Pvt> {
        cfg.validate()
            .map_err(|e| Error::input(format!("model `{}`: {e}", cfg.name)))?;
        let (store, hash_seed) = match &cfg.weights {
            WeightsSpec::Seeded(seed) => (seeded_weights(&cfg, *seed), *seed),
            WeightsSpec::File(path) => (crate::weights::load_file(&base.join(path))?, 0),
        };
        let from_file = matches!(cfg.weights, WeightsSpec::File(_));
        let mut model = Pvt::new(cfg, &store, hash_seed)?;
        if from_file {
            model.unused_tensors = store.unread_warning(&model.cfg.name);
        }
        Ok(model)
    }

    pub fn new(cfg: Config, store: &TensorStore, hash_seed: u64) -> Result<Pvt> {
        let mut l = Ledger::new();
        let mut stages = Vec::with_capacity(cfg.stages());
        let (mut c_in, mut size) = (cfg.in_chans, cfg.image_size);
        for (s, grid) in cfg.grid().into_iter().enumerate() {
            let (d, st) = (cfg.embed_dims[s], s + 1);
            let (k, stride, pad) = patch_geometry(s);
            let geom = ConvGeom {
                c_in,
                c_out: d,
                h: size,
                w: size,
                kh: k,
                kw: k,
                sh: stride,
                sw: stride,
                ph: pad,
                pw: pad,
                groups: 1,
            };
            let pe = format!("patch_embed{st}");
            let patch = conv(
                store,
                &mut l,
                &format!("{pe}.proj"),
                &format!("{pe}.proj"),
                geom,
            )?;
            let patch_norm = norm(store, &mut l, &format!("{pe}.norm"), d)?;
            let n = grid * grid;
            live(&mut l, patch.bias_id, n * d);
            patch_norm.declare(&mut l, n, d);
            let shape = Heads {
                heads: cfg.num_heads[s],
                head_dim: d / cfg.num_heads[s],
            };
            let hidden = d * cfg.mlp_ratios[s];
            let mut blocks = Vec::with_capacity(cfg.depths[s]);
            for i in 0..cfg.depths[s] {
                let p = format!("block{st}.{i}");
                let norm1 = norm(store, &mut l, &format!("{p}.norm1"), d)?;
                norm1.declare(&mut l, n, d);
                let a = format!("{p}.attn");
                let mut sr = None;
                let (q, kv, core, steps) = if cfg.hashed_stage(s) {
                    let PvtAttention::EcoFormer {
                        bits,
                        anchors,
                        normalisation,
                    } = cfg.attention
                    else {
                        unreachable!("hashed stage")
                    };
                    let qk = dense(
                        store,
                        &mut l,
                        &format!("{a}.to_qk"),
                        &format!("{a}.to_qk"),
                        d,
                        d,
                    )?;
                    let v = dense(
                        store,
                        &mut l,
                        &format!("{a}.to_v"),
                        &format!("{a}.to_v"),
                        d,
                        d,
                    )?;
                    let hp = format!("{a}.fast_attention.ksh");
                    let hash = match KernelHash::load(
                        store,
                        &hp,
                        shape.heads,
                        bits,
                        anchors,
                        shape.head_dim,
                    )? {
                        Some(h) => h,
                        None => KernelHash::random(
                            shape.heads,
                            bits,
                            anchors,
                            shape.head_dim,
                            hash_seed ^ 0x5eed ^ ((st as u64) << 16) ^ i as u64,
                        ),
                    };
                    let steps = hashed::register(&mut l, &format!("{a}.core"));
                    let core = Core::EcoFormer {
                        hash,
                        normalisation,
                    };
                    (qk, v, core, steps)
                } else {
                    let q = dense(store, &mut l, &format!("{a}.q"), &format!("{a}.q"), d, d)?;
                    let kv = dense(
                        store,
                        &mut l,
                        &format!("{a}.kv"),
                        &format!("{a}.kv"),
                        2 * d,
                        d,
                    )?;
                    let r = cfg.sr_ratio(s);
                    if r > 1 {
                        let geom = ConvGeom {
                            c_in: d,
                            c_out: d,
                            h: grid,
                            w: grid,
                            kh: r,
                            kw: r,
                            sh: r,
                            sw: r,
                            ph: 0,
                            pw: 0,
                            groups: 1,
                        };
                        let reduced = (grid - r) / r + 1;
                        let conv =
                            conv(store, &mut l, &format!("{a}.sr"), &format!("{a}.sr"), geom)?;
                        let norm = norm(store, &mut l, &format!("{a}.norm"), d)?;
                        live(&mut l, conv.bias_id, reduced * reduced * d);
                        norm.declare(&mut l, reduced * reduced, d);
                        sr = Some((conv, norm, reduced * reduced));
                    }
                    let steps = softmax::register(&mut l, &format!("{a}.core"));
                    (q, kv, Core::Softmax, steps)
                };
                let proj = dense(
                    store,
                    &mut l,
                    &format!("{a}.proj"),
                    &format!("{a}.proj"),
                    d,
                    d,
                )?;
                // Keys and values cover the reduced tokens when the stage reduces them.
                let n_kv = sr.as_ref().map_or(n, |(_, _, m)| *m);
                live(&mut l, q.bias_id, n * q.bias.len());
                live(&mut l, kv.bias_id, n_kv * kv.bias.len());
                live(&mut l, proj.bias_id, n * d);
                let residual = l.layer(&format!("{p}.{}", model_step::RESIDUAL));
                live(&mut l, residual, 2 * n * d);
                let norm2 = norm(store, &mut l, &format!("{p}.norm2"), d)?;
                let fc1 = dense(
                    store,
                    &mut l,
                    &format!("{p}.mlp.fc1"),
                    &format!("{p}.mlp.fc1"),
                    hidden,
                    d,
                )?;
                let dg = ConvGeom {
                    c_in: hidden,
                    c_out: hidden,
                    h: grid,
                    w: grid,
                    kh: 3,
                    kw: 3,
                    sh: 1,
                    sw: 1,
                    ph: 1,
                    pw: 1,
                    groups: hidden,
                };
                let dwconv = conv(
                    store,
                    &mut l,
                    &format!("{p}.mlp.dwconv.dwconv"),
                    &format!("{p}.mlp.dwconv"),
                    dg,
                )?;
                let gelu = l.layer(&format!("{p}.mlp.{}", model_step::GELU));
                norm2.declare(&mut l, n, d);
                live(&mut l, fc1.bias_id, n * hidden);
                live(&mut l, dwconv.bias_id, n * hidden);
                live(&mut l, gelu, n * hidden);
                let fc2 = dense(
                    store,
                    &mut l,
                    &format!("{p}.mlp.fc2"),
                    &format!("{p}.mlp.fc2"),
                    d,
                    hidden,
                )?;
                live(&mut l, fc2.bias_id, n * d);
                blocks.push(Block {
                    norm1,
                    q,
                    kv,
                    core,
                    steps,
                    sr,
                    proj,
                    residual,
                    norm2,
                    fc1,
                    dwconv,
                    gelu,
                    fc2,
                });
            }
            let norm = norm(store, &mut l, &format!("norm{st}"), d)?;
            norm.declare(&mut l, n, d);
            stages.push(Stage {
                patch,
                patch_norm,
                blocks,
                norm,
                shape,
                grid,
                hidden,
            });
            c_in = d;
            size = grid;
        }
        let id_pool = l.layer(model_step::MEAN_POOL);
        let last = *cfg.embed_dims.last().expect("validated");
        let head = dense(store, &mut l, "head", "head", cfg.num_classes, last)?;
        let last_grid = cfg.grid().last().copied().unwrap_or(1);
        live(&mut l, id_pool, last_grid * last_grid * last);
        live(&mut l, head.bias_id, cfg.num_classes);
        // Footprints: every parameter (and hash tensor) once; activations: the largest stage's
        // live tensors (x, the normalised copy, q/k/v, the attention output, the MLP hidden
        // tensor and its convolution), fp32 at the run's operand width.
        let mut params = cfg.n_params() as u64;
        let mut hash_len = 0usize;
        for st in &stages {
            for b in &st.blocks {
                if let Core::EcoFormer { hash, .. } = &b.core {
                    hash_len += hash.a.len() + hash.anchor.len() + hash.mu.len();
                }
            }
        }
        params += hash_len as u64;
        let statics = super::statics::from_store(
            &cfg.weight_keys(),
            store,
            super::statics::linear_or_conv_weight,
            hash_len,
        );
        let act = stages
            .iter()
            .map(|s| (s.grid * s.grid * (6 * s.shape.dim() + 2 * s.hidden)) as u64)
            .max()
            .unwrap_or(0);
        l.footprint.insert(TensorClass::Weight, params);
        l.footprint.insert(TensorClass::Activation, act);
        Ok(Pvt {
            cfg,
            unused_tensors: None,
            statics,
            stages,
            head,
            id_pool,
            template: l,
        })
    }

    /// An empty ledger with every layer registered; footprints in bytes for `arith`.
    pub fn new_ledger(&self, arith: &Arith) -> Ledger {
        let mut l = self.template.clone();
        l.scale_footprints(arith.operand_bytes());
        l
    }

    #[allow(clippy::too_many_arguments)]
    /// Attention sublayer of a block over `n` tokens: `h` ([n, D]) -> `out` ([n, D]).
    fn attention(
        &self,
        b: &Block,
        shape: Heads,
        h: &[f32],
        n: usize,
        out: &mut [f32],
        arith: &Arith,
        l: &mut Ledger,
    ) {
        let d = shape.dim();
        let mut a = vec![0.0; n * d];
        match &b.core {
            Core::Softmax => {
                let mut qs = vec![0.0; n * d];
                b.q.rows(h, &mut qs, arith, l);
                // Keys and values from every token, or from the spatially reduced tokens.
                let reduced;
                let (src, m) = match &b.sr {
                    Some((conv, norm, m)) => {
                        let mut r = vec![0.0; m * d];
                        conv.run(h, &mut r, arith, l);
                        let mut rn = vec![0.0; m * d];
                        norm.rows(&r, &mut rn, SR_NORM_EPS, arith, l);
                        reduced = rn;
                        (&reduced[..], *m)
                    }
                    None => (h, n),
                };
                let mut kvs = vec![0.0; m * 2 * d];
                b.kv.rows(src, &mut kvs, arith, l);
                let mut k = vec![0.0; m * d];
                let mut v = vec![0.0; m * d];
                for t in 0..m {
                    k[t * d..(t + 1) * d].copy_from_slice(&kvs[t * 2 * d..t * 2 * d + d]);
                    v[t * d..(t + 1) * d].copy_from_slice(&kvs[t * 2 * d + d..(t + 1) * 2 * d]);
                }
                softmax::forward_cross(&qs, n, &k, &v, m, shape, &mut a, arith, l, &b.steps);
            }
            Core::EcoFormer {
                hash,
                normalisation,
            } => {
                let mut qks = vec![0.0; n * d];
                let mut vs = vec![0.0; n * d];
                b.q.rows(h, &mut qks, arith, l);
                b.kv.rows(h, &mut vs, arith, l);
                hashed::forward_full(
                    &qks,
                    &vs,
                    n,
                    hash,
                    *normalisation,
                    &mut a,
                    arith,
                    l,
                    &b.steps,
                );
            }
            // `Pvt::new` builds softmax and hashed cores only (`PvtAttention`).
            Core::Linear => unreachable!("PVT has no linear attention core"),
        }
        b.proj.rows(&a, out, arith, l);
    }

    /// Classify one image (`[size, size, in_chans]`, channels last); returns the logits.
    pub fn classify(&self, image: &[f32], arith: &Arith, l: &mut Ledger) -> Vec<f32> {
        let eps = self.cfg.layer_norm_eps;
        let mut x = image.to_vec();
        for st in &self.stages {
            let (n, d) = (st.grid * st.grid, st.shape.dim());
            let mut e = vec![0.0; n * d];
            st.patch.run(&x, &mut e, arith, l);
            x = vec![0.0; n * d];
            st.patch_norm.rows(&e, &mut x, eps, arith, l);
            let mut h = vec![0.0; n * d];
            let mut a = vec![0.0; n * d];
            let mut hid = vec![0.0; n * st.hidden];
            let mut dw = vec![0.0; n * st.hidden];
            for b in &st.blocks {
                b.norm1.rows(&x, &mut h, eps, arith, l);
                self.attention(b, st.shape, &h, n, &mut a, arith, l);
                residual_add(&mut x, &a, arith, l.at(b.residual));
                b.norm2.rows(&x, &mut h, eps, arith, l);
                b.fc1.rows(&h, &mut hid, arith, l);
                b.dwconv.run(&hid, &mut dw, arith, l);
                gelu(&mut dw, arith, l.at(b.gelu));
                b.fc2.rows(&dw, &mut a, arith, l);
                residual_add(&mut x, &a, arith, l.at(b.residual));
            }
            let mut y = vec![0.0; n * d];
            st.norm.rows(&x, &mut y, eps, arith, l);
            x = y;
        }
        let d = self.head.lin.n_in;
        let pooled = crate::engine::pointwise::mean_rows(&x, d, arith, l.at(self.id_pool));
        let mut logits = vec![0.0; self.cfg.num_classes];
        self.head.rows(&pooled, &mut logits, arith, l);
        logits
    }
}

/// A PVT's state between steps: the logits of the last image.
pub struct State {
    pub logits: Vec<f32>,
}

impl crate::models::Stepper for Pvt {
    type State = State;

    fn new_state(&self, _window: usize) -> State {
        State {
            logits: vec![0.0; self.cfg.num_classes],
        }
    }

    fn new_ledger(&self, arith: &Arith, _window: usize) -> Ledger {
        Pvt::new_ledger(self, arith)
    }

    fn reset(&self, _st: &mut State) {}

    fn step(&self, frame: crate::models::Frame, st: &mut State, arith: &Arith, l: &mut Ledger) {
        match frame {
            crate::models::Frame::Values(image) => st.logits = self.classify(image, arith, l),
            crate::models::Frame::Token(_) => unreachable!("the runner feeds images to PVT"),
        }
    }

    fn outputs<'s>(&self, st: &'s State) -> &'s [f32] {
        &st.logits
    }
}

/// Total MACs a ledger holds (for quick checks).
pub fn total_macs(l: &Ledger) -> u64 {
    l.totals().op_total(Op::Mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(attention: PvtAttention) -> Config {
        Config {
            name: "pvt-tiny".into(),
            embed_dims: vec![8, 16],
            num_heads: vec![1, 2],
            mlp_ratios: vec![2, 2],
            depths: vec![1, 1],
            attention,
            image_size: 32,
            in_chans: 3,
            num_classes: 10,
            layer_norm_eps: 1e-6,
            weights: WeightsSpec::Seeded(1),
        }
    }

    #[test]
    fn grid_follows_the_patch_embeddings() {
        let c = Config {
            embed_dims: vec![32, 64, 160, 256],
            num_heads: vec![1, 2, 5, 8],
            mlp_ratios: vec![8, 8, 4, 4],
            depths: vec![2; 4],
            image_size: 224,
            ..tiny(PvtAttention::Msa)
        };
        assert_eq!(c.grid(), vec![56, 28, 14, 7]);
        c.validate().unwrap();
    }

    #[test]
    fn hashed_stages_leave_the_last_stage_softmax_and_share_q_and_k() {
        let eco = PvtAttention::EcoFormer {
            bits: 16,
            anchors: 5,
            normalisation: Normalisation::EcoformerCode,
        };
        let m = Pvt::from_config(tiny(eco), Path::new(".")).unwrap();
        let mut l = m.new_ledger(&Arith::Exact);
        let logits = m.classify(
            &crate::input::images::seeded_image(32, 3, 1, 0),
            &Arith::Exact,
            &mut l,
        );
        assert!(logits.iter().all(|v| v.is_finite()));
        let names: Vec<&str> = l.layers().map(|(n, _)| n).collect();
        assert!(
            names.contains(&"block1.0.attn.to_qk")
                && names.contains(&"block1.0.attn.core.hash.distance")
        );
        assert!(
            names.contains(&"block2.0.attn.kv") && names.contains(&"block2.0.attn.core.scores")
        );
        // stage 1: 8 x 8 tokens, the 7x7 stride-4 patch conv counts every tap, padding included
        assert_eq!(
            l.subtree("patch_embed1.proj").op_total(Op::Mac),
            64 * 49 * 3 * 8
        );
    }

    #[test]
    fn spatial_reduction_attends_to_fewer_keys_and_ratio_one_is_full_attention() {
        let img = crate::input::images::seeded_image(32, 3, 3, 0);
        let run = |att: PvtAttention| {
            let m = Pvt::from_config(tiny(att), Path::new(".")).unwrap();
            let mut l = m.new_ledger(&Arith::Exact);
            (m.classify(&img, &Arith::Exact, &mut l), l)
        };
        let (msa, _) = run(PvtAttention::Msa);
        let (same, _) = run(PvtAttention::Sra {
            sr_ratios: vec![1, 1],
        });
        assert_eq!(msa, same, "sr_ratio 1 everywhere is full attention");
        let (logits, l) = run(PvtAttention::Sra {
            sr_ratios: vec![2, 1],
        });
        assert!(logits.iter().all(|v| v.is_finite()) && logits != msa);
        // stage 1: 8 x 8 = 64 queries, a 2 x 2 stride-2 reduction leaves 16 keys, d = 8
        let (n, m, d) = (64u64, 16u64, 8u64);
        assert_eq!(
            l.subtree("block1.0.attn.core.scores").op_total(Op::Mac),
            n * m * d
        );
        assert_eq!(
            l.subtree("block1.0.attn.sr").op_total(Op::Mac),
            m * d * d * 4
        );
        assert_eq!(
            l.subtree("block1.0.attn.kv").op_total(Op::Mac),
            m * d * 2 * d
        );
        assert_eq!(l.subtree("block1.0.attn.q").op_total(Op::Mac), n * d * d);
        // the last stage keeps full attention and has no reduction layers
        assert_eq!(
            l.subtree("block2.0.attn.core.scores").op_total(Op::Mac),
            16 * 16 * 16
        );
        assert!(
            l.layers()
                .all(|(name, _)| !name.starts_with("block2.0.attn.sr"))
        );
        let bad = Config {
            attention: PvtAttention::Sra {
                sr_ratios: vec![16, 1],
            },
            ..tiny(PvtAttention::Msa)
        };
        assert!(bad.validate().unwrap_err().contains("sr_ratio 16"));
    }

    #[test]
    fn same_seed_same_logits() {
        let m = Pvt::from_config(tiny(PvtAttention::Msa), Path::new(".")).unwrap();
        let img = crate::input::images::seeded_image(32, 3, 7, 0);
        let a = m.classify(&img, &Arith::Exact, &mut m.new_ledger(&Arith::Exact));
        let b = m.classify(&img, &Arith::Exact, &mut m.new_ledger(&Arith::Exact));
        assert_eq!(a, b);
    }
}
