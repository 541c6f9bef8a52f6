//! The transformer family in burn, computing what picojoule's `src/models/transformer.rs`
//! executes in f32: pre-LN blocks (x += Att(LN1(x)); x += MLP(LN2(x))), no biases, tanh GELU,
//! for the character language model (causal, learned positions within one context window, from
//! zero state) and the digits classifier (patch tokens + positional embedding, full attention,
//! mean pooling).
//!
//! Attention, per head (C = head dim):
//! - softmax: softmax(q k^T / sqrt(C)) v, masked to j <= i when causal;
//! - EcoFormer: one shared projection qk; codes h = sign(A k(x)) with the kernel hash
//!   k_j(x) = exp(-||x/||x|| - a_j||^2 / (2 sigma)) - mu_j, sigma the mean squared distance over
//!   the tokens seen (running mean when causal, all N tokens when full); attention weights
//!   h_i . h_j + (b + 1), normalised by their sum (picojoule's `Normalised`). The hash (A, anchors,
//!   mu) is frozen, as in EcoFormer's fine-tuning; sign passes gradients straight through where
//!   |A k| < 1 and blocks them elsewhere (EcoFormer's `BinaryQuantizer`).

use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Device, Tensor, TensorData};
use picojoule::engine::attention::AttentionKind;
use picojoule::models::transformer::{Config, DIGIT_CLASSES, Task};
use picojoule::weights::TensorStore;

use crate::net::{data_of, layer_norm, lin};

#[derive(Module, Debug)]
pub struct TBlock {
    pub ln1_w: Param<Tensor<1>>,
    pub ln1_b: Param<Tensor<1>>,
    pub ln2_w: Param<Tensor<1>>,
    pub ln2_b: Param<Tensor<1>>,
    /// [q, k, v, output] (softmax) or [qk, v, output] (EcoFormer), torch layout [out, in].
    pub proj: Vec<Param<Tensor<2>>>,
    pub fc1: Param<Tensor<2>>,
    pub fc2: Param<Tensor<2>>,
}

#[derive(Module, Debug)]
pub struct TNet {
    /// `emb.weight` [V, d] (language model) or `patch_embed.weight` [d, p*p] (classifier).
    pub embed: Param<Tensor<2>>,
    /// `pos_embed` [N, d] (classifier, or language model with `positional`; else empty).
    pub pos: Vec<Param<Tensor<2>>>,
    pub blocks: Vec<TBlock>,
    pub ln_out_w: Param<Tensor<1>>,
    pub ln_out_b: Param<Tensor<1>>,
    pub head: Param<Tensor<2>>,
}

/// The frozen kernel hash of every layer (EcoFormer only): A [H, b, m], anchors [H, m, C],
/// mu [H, m].
#[derive(Clone)]
pub struct Hashes {
    pub layers: Vec<(Tensor<3>, Tensor<3>, Tensor<2>)>,
}

fn is_eco(cfg: &Config) -> bool {
    matches!(cfg.attention, AttentionKind::EcoFormer { .. })
}

fn proj_names(cfg: &Config) -> &'static [&'static str] {
    if is_eco(cfg) {
        &["qk", "v", "output"]
    } else {
        &["q", "k", "v", "output"]
    }
}

fn tensor<const D: usize>(store: &TensorStore, key: &str, dev: &Device) -> Tensor<D> {
    let t = store.raw(key).unwrap_or_else(|| panic!("missing {key}"));
    let shape: [usize; D] = t.shape.clone().try_into().expect("rank");
    Tensor::from_data(TensorData::new(t.data.clone(), shape), dev)
}

fn param<const D: usize>(store: &TensorStore, key: &str, dev: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(tensor(store, key, dev))
}

impl TNet {
    /// Build from named tensors with picojoule's transformer keys (`Config::weight_keys`).
    pub fn from_store(store: &TensorStore, cfg: &Config, dev: &Device) -> TNet {
        let lm = cfg.is_lm();
        let blocks = (0..cfg.n_layer)
            .map(|i| {
                let k = |s: &str| format!("blocks.{i}.{s}");
                TBlock {
                    ln1_w: param(store, &k("ln1.weight"), dev),
                    ln1_b: param(store, &k("ln1.bias"), dev),
                    ln2_w: param(store, &k("ln2.weight"), dev),
                    ln2_b: param(store, &k("ln2.bias"), dev),
                    proj: proj_names(cfg)
                        .iter()
                        .map(|p| param(store, &k(&format!("att.{p}.weight")), dev))
                        .collect(),
                    fc1: param(store, &k("mlp.fc1.weight"), dev),
                    fc2: param(store, &k("mlp.fc2.weight"), dev),
                }
            })
            .collect();
        TNet {
            embed: param(
                store,
                if lm {
                    "emb.weight"
                } else {
                    "patch_embed.weight"
                },
                dev,
            ),
            pos: if lm && !cfg.positional {
                vec![]
            } else {
                vec![param(store, "pos_embed", dev)]
            },
            blocks,
            ln_out_w: param(store, "ln_out.weight", dev),
            ln_out_b: param(store, "ln_out.bias", dev),
            head: param(store, "head.weight", dev),
        }
    }

    /// Every parameter under its picojoule key, plus the hash tensors when given.
    pub fn to_store(&self, cfg: &Config, hashes: Option<&Hashes>) -> TensorStore {
        let mut store = TensorStore::new("trainer");
        for (key, shape) in cfg.weight_keys() {
            let data = match key.as_str() {
                "emb.weight" | "patch_embed.weight" => data_of(self.embed.val()),
                "pos_embed" => data_of(self.pos[0].val()),
                "ln_out.weight" => data_of(self.ln_out_w.val()),
                "ln_out.bias" => data_of(self.ln_out_b.val()),
                "head.weight" => data_of(self.head.val()),
                _ => {
                    let rest = key.strip_prefix("blocks.").expect("block key");
                    let (i, suffix) = rest.split_once('.').expect("block key");
                    let b = &self.blocks[i.parse::<usize>().expect("block index")];
                    match suffix {
                        "ln1.weight" => data_of(b.ln1_w.val()),
                        "ln1.bias" => data_of(b.ln1_b.val()),
                        "ln2.weight" => data_of(b.ln2_w.val()),
                        "ln2.bias" => data_of(b.ln2_b.val()),
                        "mlp.fc1.weight" => data_of(b.fc1.val()),
                        "mlp.fc2.weight" => data_of(b.fc2.val()),
                        _ => {
                            let name = suffix
                                .strip_prefix("att.")
                                .and_then(|s| s.strip_suffix(".weight"))
                                .unwrap_or_else(|| panic!("unknown key {key}"));
                            let j = proj_names(cfg)
                                .iter()
                                .position(|p| *p == name)
                                .unwrap_or_else(|| panic!("unknown key {key}"));
                            data_of(b.proj[j].val())
                        }
                    }
                }
            };
            assert_eq!(data.len(), shape.iter().product::<usize>(), "{key}");
            store.insert(key, shape, data);
        }
        if let Some(h) = hashes {
            for (i, (a, anchor, mu)) in h.layers.iter().enumerate() {
                let p = format!("blocks.{i}.att.ksh");
                store.insert(format!("{p}.A"), a.dims().to_vec(), data_of(a.clone()));
                store.insert(
                    format!("{p}.anchor"),
                    anchor.dims().to_vec(),
                    data_of(anchor.clone()),
                );
                store.insert(format!("{p}.mvec"), mu.dims().to_vec(), data_of(mu.clone()));
            }
        }
        store
    }
}

impl Hashes {
    /// The hash tensors `blocks.{i}.att.ksh.{A,anchor,mvec}` of a store (constants, no gradient).
    pub fn from_store(store: &TensorStore, n_layer: usize, dev: &Device) -> Hashes {
        Hashes {
            layers: (0..n_layer)
                .map(|i| {
                    let p = format!("blocks.{i}.att.ksh");
                    (
                        tensor(store, &format!("{p}.A"), dev),
                        tensor(store, &format!("{p}.anchor"), dev),
                        tensor(store, &format!("{p}.mvec"), dev),
                    )
                })
                .collect(),
        }
    }
}

/// GELU, tanh form (picojoule's `pointwise::gelu`).
fn gelu(x: Tensor<3>) -> Tensor<3> {
    const K: f32 = 0.797_884_6;
    let x3 = x.clone() * x.clone() * x.clone();
    let inner = (x.clone() + x3.mul_scalar(0.044715)).mul_scalar(K);
    x.mul_scalar(0.5) * inner.tanh().add_scalar(1.0)
}

/// [B, T, H*C] -> [B, H, T, C].
fn split_heads(x: Tensor<3>, h: usize) -> Tensor<4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, h, d / h]).swap_dims(1, 2)
}

/// [B, H, T, C] -> [B, T, H*C].
fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, c] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * c])
}

/// sign(p) forward (sign(0) = +1), gradient passed straight through where |p| < 1.
fn binary(p: Tensor<4>) -> Tensor<4> {
    let hard = p
        .clone()
        .detach()
        .greater_equal_elem(0.0)
        .float()
        .mul_scalar(2.0)
        .sub_scalar(1.0);
    let soft = p.clamp(-1.0, 1.0);
    hard + (soft.clone() - soft.detach())
}

/// The codes of a shared query/key [B, H, T, C] under a frozen hash.
fn hash_codes(qk: Tensor<4>, hash: &(Tensor<3>, Tensor<3>, Tensor<2>), causal: bool) -> Tensor<4> {
    let [b, h, t, _] = qk.dims();
    let (a, anchor, mu) = hash;
    let m = anchor.dims()[1];
    let dev = qk.device();
    let inv = (qk.clone() * qk.clone()).sum_dim(3).sqrt().recip();
    let xn = qk * inv;
    // Squared distances to the anchors, [B, H, T, m].
    let diff = xn.unsqueeze_dim::<5>(3) - anchor.clone().unsqueeze_dim::<4>(1).unsqueeze::<5>();
    let d2 = (diff.clone() * diff).sum_dim(4).reshape([b, h, t, m]);
    let dsum = d2.clone().sum_dim(3); // [B, H, T, 1]
    let scale = if causal {
        // Running mean over tokens 0..=i: cumulative sums by a lower-triangular matmul.
        let lower = Tensor::<2>::ones([t, t], &dev).tril(0).unsqueeze::<4>();
        let cum = lower.matmul(dsum);
        let count: Vec<f32> = (1..=t).map(|i| (i * m) as f32).collect();
        let count = Tensor::<1>::from_data(TensorData::new(count, [t]), &dev).reshape([1, 1, t, 1]);
        count.neg() / cum.mul_scalar(2.0)
    } else {
        let total = dsum.sum_dim(2); // [B, H, 1, 1]
        total.mul_scalar(2.0).recip().mul_scalar(-((t * m) as f32))
    };
    let kern = (d2 * scale).exp() - mu.clone().reshape([1, h, 1, m]);
    let p = kern.matmul(a.clone().swap_dims(1, 2).unsqueeze::<4>()); // [B, H, T, b]
    binary(p)
}

impl TNet {
    fn attention(
        &self,
        blk: &TBlock,
        layer: usize,
        cfg: &Config,
        hashes: Option<&Hashes>,
        x: Tensor<3>,
        causal: bool,
    ) -> Tensor<3> {
        let heads = cfg.n_head;
        let [_, t, d] = x.dims();
        let c = d / heads;
        let dev = x.device();
        let a = if let Some(hs) = hashes {
            let qk = split_heads(lin(x.clone(), blk.proj[0].val()), heads);
            let v = split_heads(lin(x, blk.proj[1].val()), heads);
            let code = hash_codes(qk, &hs.layers[layer], causal);
            let bits = code.dims()[3];
            let mut s = code
                .clone()
                .matmul(code.swap_dims(2, 3))
                .add_scalar((bits + 1) as f32);
            if causal {
                s = s.tril(0);
            }
            let den = s.clone().sum_dim(3);
            s.matmul(v) / den
        } else {
            let q = split_heads(lin(x.clone(), blk.proj[0].val()), heads);
            let k = split_heads(lin(x.clone(), blk.proj[1].val()), heads);
            let v = split_heads(lin(x, blk.proj[2].val()), heads);
            let mut scores = q
                .matmul(k.swap_dims(2, 3))
                .mul_scalar(1.0 / (c as f32).sqrt());
            if causal {
                let mask = Tensor::<2, Bool>::tril_mask([t, t], 0, &dev).unsqueeze::<4>();
                scores = scores.mask_fill(mask, -1e30);
            }
            softmax(scores, 3).matmul(v)
        };
        lin(merge_heads(a), blk.proj.last().expect("output").val())
    }

    /// The blocks over [B, T, d].
    fn blocks(
        &self,
        cfg: &Config,
        hashes: Option<&Hashes>,
        mut x: Tensor<3>,
        causal: bool,
    ) -> Tensor<3> {
        for (i, blk) in self.blocks.iter().enumerate() {
            let h = layer_norm(x.clone(), blk.ln1_w.val(), blk.ln1_b.val());
            x = x + self.attention(blk, i, cfg, hashes, h, causal);
            let h = layer_norm(x.clone(), blk.ln2_w.val(), blk.ln2_b.val());
            x = x + lin(gelu(lin(h, blk.fc1.val())), blk.fc2.val());
        }
        x
    }

    /// Next-token logits [B, T, V] of one context window from zero state.
    pub fn forward_lm(
        &self,
        cfg: &Config,
        hashes: Option<&Hashes>,
        onehot: Tensor<2>,
        b: usize,
        t: usize,
    ) -> Tensor<3> {
        let d = cfg.n_embd;
        let mut x = onehot.matmul(self.embed.val()).reshape([b, t, d]);
        if let Some(pos) = self.pos.first() {
            x = x + pos.val().slice([0..t, 0..d]).unsqueeze::<3>();
        }
        let x = self.blocks(cfg, hashes, x, true);
        let x = layer_norm(x, self.ln_out_w.val(), self.ln_out_b.val());
        lin(x, self.head.val())
    }

    /// Class logits [B, 10] of patch-ordered images [B, N, p*p].
    pub fn forward_digits(
        &self,
        cfg: &Config,
        hashes: Option<&Hashes>,
        patches: Tensor<3>,
    ) -> Tensor<2> {
        let b = patches.dims()[0];
        let x = lin(patches, self.embed.val()) + self.pos[0].val().unsqueeze::<3>();
        let x = self.blocks(cfg, hashes, x, false);
        let pooled = x.mean_dim(1); // [B, 1, d]
        let h = layer_norm(pooled, self.ln_out_w.val(), self.ln_out_b.val());
        lin(h, self.head.val()).reshape([b, DIGIT_CLASSES])
    }
}

/// Patch order of the 64 pixels (picojoule's `embed_image`): token t covers the p x p block at
/// grid row t / g, column t % g (g = 8 / p), pixels row-major inside the block.
pub fn patch_order(cfg: &Config) -> Vec<usize> {
    let Task::DigitsClassifier { patch } = cfg.task else {
        return vec![];
    };
    let g = 8 / patch;
    let mut idx = Vec::with_capacity(64);
    for t in 0..g * g {
        let (r0, c0) = ((t / g) * patch, (t % g) * patch);
        for k in 0..patch * patch {
            idx.push((r0 + k / patch) * 8 + c0 + k % patch);
        }
    }
    idx
}
