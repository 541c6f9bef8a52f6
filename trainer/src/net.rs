//! The SpikeGPT-style network in burn, computing what picojoule's `src/models/spikegpt.rs`
//! executes (f32, same operation order where it matters), over a window of T tokens for B parallel
//! streams, with the recurrent state carried between windows (truncated BPTT).
//!
//! - `Twin` (picojoule `Variant::NonSpiking`): RWKV-4. Float embedding -> ln0 -> blocks
//!   (ln1, token shift, WKV, sigmoid gate, output; ln2, token shift, ReLU^2 FFN with gate;
//!   residual adds) -> ln_out -> head.
//! - `Reference` (picojoule `Variant::Reference` with binary embedding): the twin with LIF1/LIF2
//!   on each branch output, whose spikes are added to the residual stream.
//! - `Spiking` (picojoule `Variant::SpikeDriven`): no ln0/ln1/ln2; each block's projections read
//!   spike trains (this token's and the previous token's, mixed by time_mix), the residual stream
//!   is embedding spikes + every LIF's spikes, and the next block reads this block's LIF2 spikes.
//!
//! Heaviside (embedding) and LIF firing use the arctan surrogate gradient
//! dS/dH = 1 / (1 + (pi (H - V_th))^2) (SpikeGPT, alpha = 2); the forward values stay exactly 0/1.
//! The WKV recurrence is the numerically stable form picojoule uses (running max exponent), with
//! the max detached (the result does not depend on it, so the gradient is exact).

use std::f32::consts::PI;

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use picojoule::weights::TensorStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Non-spiking twin (RWKV-4), picojoule `NonSpiking`.
    Twin,
    /// SpikeGPT as its released code computes it, picojoule `Reference` + binary embedding.
    Reference,
    /// Spike-driven form, picojoule `SpikeDriven`.
    Spiking,
    /// Character transformer LM with softmax attention (`tnet.rs`).
    Softmax,
    /// Character transformer LM with EcoFormer attention, fine-tuned from a softmax model.
    Ecoformer,
    /// Digits patch transformer with softmax attention.
    VitSoftmax,
    /// Digits patch transformer with EcoFormer attention, fine-tuned from a softmax model.
    VitEcoformer,
    /// Digits convolutional network with ReLU (`cnet.rs`, `ctrain.rs`).
    Cnn,
    /// The same network with snnTorch `Leaky` neurons, direct-coded for `--timesteps` steps.
    SpikingCnn,
}

impl Kind {
    pub fn variant_name(self) -> &'static str {
        match self {
            Kind::Twin => "NonSpiking",
            Kind::Reference => "Reference",
            Kind::Spiking => "SpikeDriven",
            _ => "Transformer",
        }
    }
    pub fn binary_embedding(self) -> bool {
        matches!(self, Kind::Reference | Kind::Spiking)
    }
    pub fn has_lif(self) -> bool {
        matches!(self, Kind::Reference | Kind::Spiking)
    }
    pub fn is_transformer(self) -> bool {
        matches!(
            self,
            Kind::Softmax | Kind::Ecoformer | Kind::VitSoftmax | Kind::VitEcoformer
        )
    }
}

pub const EPS: f32 = 1e-5;
pub const V_TH: f32 = 1.0;
pub const TAU: f32 = 2.0;

#[derive(Module, Debug)]
pub struct Block {
    pub ln0_w: Param<Tensor<1>>,
    pub ln0_b: Param<Tensor<1>>,
    pub ln1_w: Param<Tensor<1>>,
    pub ln1_b: Param<Tensor<1>>,
    pub ln2_w: Param<Tensor<1>>,
    pub ln2_b: Param<Tensor<1>>,
    pub time_decay: Param<Tensor<1>>,
    pub time_first: Param<Tensor<1>>,
    pub att_mix_k: Param<Tensor<1>>,
    pub att_mix_v: Param<Tensor<1>>,
    pub att_mix_r: Param<Tensor<1>>,
    pub att_key: Param<Tensor<2>>,
    pub att_value: Param<Tensor<2>>,
    pub att_receptance: Param<Tensor<2>>,
    pub att_output: Param<Tensor<2>>,
    pub ffn_mix_k: Param<Tensor<1>>,
    pub ffn_mix_r: Param<Tensor<1>>,
    pub ffn_key: Param<Tensor<2>>,
    pub ffn_receptance: Param<Tensor<2>>,
    pub ffn_value: Param<Tensor<2>>,
}

#[derive(Module, Debug)]
pub struct Net {
    pub emb: Param<Tensor<2>>,
    pub blocks: Vec<Block>,
    pub ln_out_w: Param<Tensor<1>>,
    pub ln_out_b: Param<Tensor<1>>,
    pub head: Param<Tensor<2>>,
}

/// Checkpoint suffixes of a block's vector and matrix parameters (block 0 also has ln0).
const VEC_KEYS: [&str; 13] = [
    "ln0.weight",
    "ln0.bias",
    "ln1.weight",
    "ln1.bias",
    "ln2.weight",
    "ln2.bias",
    "att.time_decay",
    "att.time_first",
    "att.time_mix_k",
    "att.time_mix_v",
    "att.time_mix_r",
    "ffn.time_mix_k",
    "ffn.time_mix_r",
];
const MAT_KEYS: [&str; 7] = [
    "att.key.weight",
    "att.value.weight",
    "att.receptance.weight",
    "att.output.weight",
    "ffn.key.weight",
    "ffn.receptance.weight",
    "ffn.value.weight",
];

impl Block {
    fn vecs(&self) -> [&Param<Tensor<1>>; 13] {
        [
            &self.ln0_w,
            &self.ln0_b,
            &self.ln1_w,
            &self.ln1_b,
            &self.ln2_w,
            &self.ln2_b,
            &self.time_decay,
            &self.time_first,
            &self.att_mix_k,
            &self.att_mix_v,
            &self.att_mix_r,
            &self.ffn_mix_k,
            &self.ffn_mix_r,
        ]
    }
    fn mats(&self) -> [&Param<Tensor<2>>; 7] {
        [
            &self.att_key,
            &self.att_value,
            &self.att_receptance,
            &self.att_output,
            &self.ffn_key,
            &self.ffn_receptance,
            &self.ffn_value,
        ]
    }
}

pub(crate) fn data_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .as_slice::<f32>()
        .expect("f32 tensor")
        .to_vec()
}

fn p1(store: &TensorStore, key: &str, dev: &Device) -> Param<Tensor<1>> {
    let t = store.raw(key).unwrap_or_else(|| panic!("missing {key}"));
    Param::from_data(TensorData::new(t.data.clone(), [t.data.len()]), dev)
}
fn p2(store: &TensorStore, key: &str, dev: &Device) -> Param<Tensor<2>> {
    let t = store.raw(key).unwrap_or_else(|| panic!("missing {key}"));
    Param::from_data(
        TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]),
        dev,
    )
}

impl Net {
    /// Build from named tensors with picojoule's checkpoint keys (ln0 of blocks > 0 is unused
    /// and initialised to the identity, it is not saved).
    pub fn from_store(store: &TensorStore, n_layer: usize, d: usize, dev: &Device) -> Net {
        let blocks = (0..n_layer)
            .map(|i| {
                let k = |s: &str| format!("blocks.{i}.{s}");
                let ln0 = |s: &str, fill: f32| {
                    if i == 0 {
                        p1(store, &k(s), dev)
                    } else {
                        Param::from_data(TensorData::new(vec![fill; d], [d]), dev)
                    }
                };
                Block {
                    ln0_w: ln0("ln0.weight", 1.0),
                    ln0_b: ln0("ln0.bias", 0.0),
                    ln1_w: p1(store, &k("ln1.weight"), dev),
                    ln1_b: p1(store, &k("ln1.bias"), dev),
                    ln2_w: p1(store, &k("ln2.weight"), dev),
                    ln2_b: p1(store, &k("ln2.bias"), dev),
                    time_decay: p1(store, &k("att.time_decay"), dev),
                    time_first: p1(store, &k("att.time_first"), dev),
                    att_mix_k: p1(store, &k("att.time_mix_k"), dev),
                    att_mix_v: p1(store, &k("att.time_mix_v"), dev),
                    att_mix_r: p1(store, &k("att.time_mix_r"), dev),
                    att_key: p2(store, &k("att.key.weight"), dev),
                    att_value: p2(store, &k("att.value.weight"), dev),
                    att_receptance: p2(store, &k("att.receptance.weight"), dev),
                    att_output: p2(store, &k("att.output.weight"), dev),
                    ffn_mix_k: p1(store, &k("ffn.time_mix_k"), dev),
                    ffn_mix_r: p1(store, &k("ffn.time_mix_r"), dev),
                    ffn_key: p2(store, &k("ffn.key.weight"), dev),
                    ffn_receptance: p2(store, &k("ffn.receptance.weight"), dev),
                    ffn_value: p2(store, &k("ffn.value.weight"), dev),
                }
            })
            .collect();
        Net {
            emb: p2(store, "emb.weight", dev),
            blocks,
            ln_out_w: p1(store, "ln_out.weight", dev),
            ln_out_b: p1(store, "ln_out.bias", dev),
            head: p2(store, "head.weight", dev),
        }
    }

    /// Every parameter under its checkpoint key with the checkpoint (torch) shape.
    pub fn to_store(&self, keys: &[(String, Vec<usize>)]) -> TensorStore {
        let mut store = TensorStore::new("trainer");
        for (key, shape) in keys {
            let data = match key.as_str() {
                "emb.weight" => data_of(self.emb.val()),
                "head.weight" => data_of(self.head.val()),
                "ln_out.weight" => data_of(self.ln_out_w.val()),
                "ln_out.bias" => data_of(self.ln_out_b.val()),
                _ => {
                    let rest = key.strip_prefix("blocks.").expect("block key");
                    let (i, suffix) = rest.split_once('.').expect("block key");
                    let b = &self.blocks[i.parse::<usize>().expect("block index")];
                    if let Some(j) = VEC_KEYS.iter().position(|s| *s == suffix) {
                        data_of(b.vecs()[j].val())
                    } else {
                        let j = MAT_KEYS
                            .iter()
                            .position(|s| *s == suffix)
                            .unwrap_or_else(|| panic!("unknown key {key}"));
                        data_of(b.mats()[j].val())
                    }
                }
            };
            assert_eq!(data.len(), shape.iter().product::<usize>(), "{key}");
            store.insert(key.clone(), shape.clone(), data);
        }
        store
    }
}

/// Recurrent state of one block for B streams, all [B, d].
#[derive(Clone)]
pub struct BlockState {
    /// Previous token's att input (ln1 output, or input spikes when spike driven).
    att_prev: Tensor<2>,
    /// Previous token's ffn input (ln2 output, or LIF1 spikes when spike driven).
    ffn_prev: Tensor<2>,
    aa: Tensor<2>,
    bb: Tensor<2>,
    pp: Tensor<2>,
    v1: Tensor<2>,
    v2: Tensor<2>,
}

#[derive(Clone)]
pub struct State {
    blocks: Vec<BlockState>,
}

impl State {
    pub fn zeros(n_layer: usize, b: usize, d: usize, dev: &Device) -> State {
        let z = || Tensor::<2>::zeros([b, d], dev);
        State {
            blocks: (0..n_layer)
                .map(|_| BlockState {
                    att_prev: z(),
                    ffn_prev: z(),
                    aa: z(),
                    bb: z(),
                    pp: Tensor::<2>::full([b, d], -1e30f32, dev),
                    v1: z(),
                    v2: z(),
                })
                .collect(),
        }
    }

    pub fn detach(self) -> State {
        State {
            blocks: self
                .blocks
                .into_iter()
                .map(|s| BlockState {
                    att_prev: s.att_prev.detach(),
                    ffn_prev: s.ffn_prev.detach(),
                    aa: s.aa.detach(),
                    bb: s.bb.detach(),
                    pp: s.pp.detach(),
                    v1: s.v1.detach(),
                    v2: s.v2.detach(),
                })
                .collect(),
        }
    }
}

/// Spike counts of one forward window: per LIF layer (and the embedding), per stream and token.
pub struct Spikes {
    /// (layer name, [B, T] counts)
    pub layers: Vec<(String, Tensor<2>)>,
}

/// Rows of `n` classes, a one at each index.
pub(crate) fn onehot(idx: &[usize], n: usize, dev: &Device) -> Tensor<2> {
    let mut v = vec![0.0f32; idx.len() * n];
    for (i, &t) in idx.iter().enumerate() {
        v[i * n + t] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [idx.len(), n]), dev)
}

/// Mean cross entropy (nats) of logits [R, K] against class indices.
pub(crate) fn cross_entropy(logits: Tensor<2>, targets: &[usize], dev: &Device) -> Tensor<1> {
    let [r, k] = logits.dims();
    (burn::tensor::activation::log_softmax(logits, 1) * onehot(targets, k, dev))
        .sum()
        .neg()
        .div_scalar(r as f32)
}

/// x [B, T, i] times W^T with W [o, i] (torch layout).
pub(crate) fn lin(x: Tensor<3>, w: Tensor<2>) -> Tensor<3> {
    let [b, t, i] = x.dims();
    let o = w.dims()[0];
    x.reshape([b * t, i])
        .matmul(w.transpose())
        .reshape([b, t, o])
}

pub(crate) fn layer_norm(x: Tensor<3>, w: Tensor<1>, b: Tensor<1>) -> Tensor<3> {
    let mean = x.clone().mean_dim(2);
    let c = x - mean;
    let var = (c.clone() * c.clone()).mean_dim(2);
    let inv = var.add_scalar(EPS).sqrt().recip();
    c * inv * w.unsqueeze::<3>() + b.unsqueeze::<3>()
}

/// The previous token's vectors ([B, T, d]; position 0 takes `prev`) and the last token's.
fn shift(x: &Tensor<3>, prev: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
    let [b, t, d] = x.dims();
    let last = x.clone().slice([0..b, t - 1..t, 0..d]).reshape([b, d]);
    let shifted = if t == 1 {
        prev.unsqueeze_dim(1)
    } else {
        Tensor::cat(
            vec![
                prev.unsqueeze_dim(1),
                x.clone().slice([0..b, 0..t - 1, 0..d]),
            ],
            1,
        )
    };
    (shifted, last)
}

/// x mu + xx (1 - mu), as picojoule's token_shift.
fn mix(x: &Tensor<3>, xx: &Tensor<3>, mu: Tensor<1>) -> Tensor<3> {
    let mu = mu.unsqueeze::<3>();
    x.clone() * mu.clone() + xx.clone() * mu.neg().add_scalar(1.0)
}

/// Heaviside(z) forward (z >= 0), arctan surrogate backward: d/dz = 1 / (1 + (pi z)^2).
fn spike(z: Tensor<2>) -> Tensor<2> {
    let hard = z.clone().detach().greater_equal_elem(0.0).float();
    let soft = z.mul_scalar(PI).atan().div_scalar(PI);
    hard + (soft.clone() - soft.detach())
}

fn spike3(z: Tensor<3>) -> Tensor<3> {
    let [b, t, d] = z.dims();
    spike(z.reshape([b * t, d])).reshape([b, t, d])
}

/// LIF (tau 2, threshold 1, hard reset to 0, decay_input) over the T tokens of `y` [B, T, d].
fn lif(y: Tensor<3>, v: Tensor<2>) -> (Tensor<3>, Tensor<2>) {
    let [b, t, d] = y.dims();
    let mut v = v;
    let mut out = Vec::with_capacity(t);
    for i in 0..t {
        let x = y.clone().slice([0..b, i..i + 1, 0..d]).reshape([b, d]);
        let h = v.clone() + (x - v).div_scalar(TAU);
        let s = spike(h.clone().sub_scalar(V_TH));
        v = h * s.clone().neg().add_scalar(1.0);
        out.push(s);
    }
    (Tensor::stack(out, 1), v)
}

/// WKV over T tokens, picojoule's stable recurrent form; w = -exp(time_decay), u = time_first.
fn wkv(
    k: Tensor<3>,
    v: Tensor<3>,
    time_decay: Tensor<1>,
    u: Tensor<1>,
    st: &mut BlockState,
) -> Tensor<3> {
    let [b, t, d] = k.dims();
    let w = time_decay.exp().neg().unsqueeze::<2>();
    let u = u.unsqueeze::<2>();
    let (mut aa, mut bb, mut pp) = (st.aa.clone(), st.bb.clone(), st.pp.clone());
    let mut out = Vec::with_capacity(t);
    for i in 0..t {
        let kt = k.clone().slice([0..b, i..i + 1, 0..d]).reshape([b, d]);
        let vt = v.clone().slice([0..b, i..i + 1, 0..d]).reshape([b, d]);
        let ww = u.clone() + kt.clone();
        let p = pp.clone().max_pair(ww.clone()).detach();
        let e1 = (pp.clone() - p.clone()).exp();
        let e2 = (ww - p).exp();
        let num = e1.clone() * aa.clone() + e2.clone() * vt.clone();
        let den = e1 * bb.clone() + e2;
        out.push(num / den);
        let ww = pp + w.clone();
        let p = ww.clone().max_pair(kt.clone()).detach();
        let e1 = (ww - p.clone()).exp();
        let e2 = (kt - p.clone()).exp();
        aa = e1.clone() * aa + e2.clone() * vt;
        bb = e1 * bb + e2;
        pp = p;
    }
    st.aa = aa;
    st.bb = bb;
    st.pp = pp;
    Tensor::stack(out, 1)
}

fn count(s: &Tensor<3>) -> Tensor<2> {
    let [b, t, _] = s.dims();
    s.clone().detach().sum_dim(2).reshape([b, t])
}

impl Net {
    /// Logits [B, T, V] for one-hot inputs [B*T, V], advancing `state`.
    pub fn forward(
        &self,
        kind: Kind,
        onehot: Tensor<2>,
        b: usize,
        t: usize,
        state: &mut State,
        spikes: Option<&mut Spikes>,
    ) -> Tensor<3> {
        let d = self.emb.dims()[1];
        let e = onehot.matmul(self.emb.val()).reshape([b, t, d]);
        let mut counts: Vec<(String, Tensor<2>)> = vec![];
        let mut x = if kind.binary_embedding() {
            let s = spike3(e);
            counts.push(("emb".into(), count(&s)));
            s
        } else {
            e
        };
        let mut input = x.clone();
        for (i, (blk, st)) in self.blocks.iter().zip(state.blocks.iter_mut()).enumerate() {
            if kind == Kind::Spiking {
                // Attention projections read this and the previous token's input spikes.
                let (xx, last) = shift(&input, st.att_prev.clone());
                st.att_prev = last;
                let k = lin(mix(&input, &xx, blk.att_mix_k.val()), blk.att_key.val());
                let v = lin(mix(&input, &xx, blk.att_mix_v.val()), blk.att_value.val());
                let r = lin(
                    mix(&input, &xx, blk.att_mix_r.val()),
                    blk.att_receptance.val(),
                );
                let a = wkv(k, v, blk.time_decay.val(), blk.time_first.val(), st);
                let y = lin(sigmoid(r) * a, blk.att_output.val());
                let (s1, v1) = lif(y, st.v1.clone());
                st.v1 = v1;
                counts.push((format!("blocks.{i}.lif1"), count(&s1)));
                x = x + s1.clone();
                let (xx, last) = shift(&s1, st.ffn_prev.clone());
                st.ffn_prev = last;
                let h = relu(lin(mix(&s1, &xx, blk.ffn_mix_k.val()), blk.ffn_key.val()));
                let kv = lin(h.clone() * h, blk.ffn_value.val());
                let r = lin(mix(&s1, &xx, blk.ffn_mix_r.val()), blk.ffn_receptance.val());
                let y = sigmoid(r) * kv;
                let (s2, v2) = lif(y, st.v2.clone());
                st.v2 = v2;
                counts.push((format!("blocks.{i}.lif2"), count(&s2)));
                x = x + s2.clone();
                input = s2;
            } else {
                if i == 0 {
                    x = layer_norm(x, blk.ln0_w.val(), blk.ln0_b.val());
                }
                let xa = layer_norm(x.clone(), blk.ln1_w.val(), blk.ln1_b.val());
                let (xx, last) = shift(&xa, st.att_prev.clone());
                st.att_prev = last;
                let k = lin(mix(&xa, &xx, blk.att_mix_k.val()), blk.att_key.val());
                let v = lin(mix(&xa, &xx, blk.att_mix_v.val()), blk.att_value.val());
                let r = lin(mix(&xa, &xx, blk.att_mix_r.val()), blk.att_receptance.val());
                let a = wkv(k, v, blk.time_decay.val(), blk.time_first.val(), st);
                let y = lin(sigmoid(r) * a, blk.att_output.val());
                x = if kind.has_lif() {
                    let (s1, v1) = lif(y, st.v1.clone());
                    st.v1 = v1;
                    counts.push((format!("blocks.{i}.lif1"), count(&s1)));
                    x + s1
                } else {
                    x + y
                };
                let xa = layer_norm(x.clone(), blk.ln2_w.val(), blk.ln2_b.val());
                let (xx, last) = shift(&xa, st.ffn_prev.clone());
                st.ffn_prev = last;
                let h = relu(lin(mix(&xa, &xx, blk.ffn_mix_k.val()), blk.ffn_key.val()));
                let kv = lin(h.clone() * h, blk.ffn_value.val());
                let r = lin(mix(&xa, &xx, blk.ffn_mix_r.val()), blk.ffn_receptance.val());
                let y = sigmoid(r) * kv;
                x = if kind.has_lif() {
                    let (s2, v2) = lif(y, st.v2.clone());
                    st.v2 = v2;
                    counts.push((format!("blocks.{i}.lif2"), count(&s2)));
                    x + s2
                } else {
                    x + y
                };
            }
        }
        if let Some(sp) = spikes {
            sp.layers = counts;
        }
        let x = layer_norm(x, self.ln_out_w.val(), self.ln_out_b.val());
        lin(x, self.head.val())
    }
}
