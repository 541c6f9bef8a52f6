//! Digit classifiers described as picojoule `Sequential` models (convolutions, linear layers,
//! ReLU, snnTorch `Leaky` neurons), run in burn by interpreting the same layer list picojoule
//! executes, so the trained weights load under the same `nn.Sequential` keys.
//!
//! A sample is `timesteps` steps of the same image (direct coding); the class scores are the
//! last layer's outputs summed over the steps, as `Sequential::run_sample` sums them. A `Leaky`
//! layer follows snnTorch and `engine::leaky`: the reset is decided from the membrane before the
//! update (`mem > threshold`, detached, as snnTorch detaches it), `mem = beta mem + x - reset
//! threshold`, and the neuron spikes when the new `mem > threshold` (Heaviside forward, arctan
//! surrogate backward).

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use picojoule::engine::leaky::LeakyReset;
use picojoule::models::sequential::{Config, LayerSpec};
use picojoule::weights::TensorStore;

use crate::net::data_of;

/// Every parameter of the layer list, by layer index (`None` for layers without weights).
#[derive(Module, Debug)]
pub struct CNet {
    pub conv_w: Vec<Param<Tensor<4>>>,
    pub lin_w: Vec<Param<Tensor<2>>>,
    pub bias: Vec<Param<Tensor<1>>>,
}

/// What the forward pass saw besides the scores: spikes per `Leaky` layer and image, summed
/// over the steps.
pub struct Seen {
    pub spikes: Vec<(String, Vec<f32>)>,
}

fn tensor<const D: usize>(store: &TensorStore, key: &str, dev: &Device) -> Tensor<D> {
    let t = store.raw(key).unwrap_or_else(|| panic!("missing {key}"));
    let shape: [usize; D] = t.shape.clone().try_into().expect("rank");
    Tensor::from_data(TensorData::new(t.data.clone(), shape), dev)
}

/// Heaviside(z > 0) forward, arctan surrogate backward: d/dz = 1 / (1 + (pi z)^2).
fn fire(z: Tensor<2>) -> Tensor<2> {
    let hard = z.clone().detach().greater_elem(0.0).float();
    let soft = z
        .mul_scalar(std::f32::consts::PI)
        .atan()
        .div_scalar(std::f32::consts::PI);
    hard + (soft.clone() - soft.detach())
}

/// Dropout masks for the inputs of the linear layers, the same at every step of a sample
/// (inverted dropout: kept values scaled by 1 / (1 - p)).
pub struct Dropout {
    pub masks: Vec<Option<Tensor<2>>>,
}

impl Dropout {
    pub fn draw(
        cfg: &Config,
        batch: usize,
        p: f64,
        rng: &mut impl rand::Rng,
        dev: &Device,
    ) -> Dropout {
        use rand::RngExt;
        let sizes = input_sizes(cfg);
        let masks = cfg
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if p <= 0.0 || !matches!(l, LayerSpec::Linear(..)) {
                    return None;
                }
                let n = sizes[i];
                let keep = (1.0 / (1.0 - p)) as f32;
                let v: Vec<f32> = (0..batch * n)
                    .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
                    .collect();
                Some(Tensor::from_data(TensorData::new(v, [batch, n]), dev))
            })
            .collect();
        Dropout { masks }
    }
}

/// Flat input size of every layer.
fn input_sizes(cfg: &Config) -> Vec<usize> {
    let mut shape = cfg.input.clone();
    let mut out = vec![];
    for l in &cfg.layers {
        out.push(shape.iter().product());
        match l {
            LayerSpec::Conv2d(c) => {
                let side = |s: usize| (s + 2 * c.padding - c.kernel) / c.stride + 1;
                shape = vec![c.out_channels, side(shape[1]), side(shape[2])];
            }
            LayerSpec::Linear(_, n_out, _) => shape = vec![*n_out],
            _ => {}
        }
    }
    out
}

fn leaky_name(i: usize) -> String {
    format!("{i}.leaky")
}

impl CNet {
    /// Build from `nn.Sequential` keys (`{i}.weight`, `{i}.bias`); the layer list must hold
    /// only Conv2d, Linear, ReLU and Leaky layers, every connection with a bias.
    pub fn from_store(store: &TensorStore, cfg: &Config, dev: &Device) -> CNet {
        let (mut conv_w, mut lin_w, mut bias) = (vec![], vec![], vec![]);
        for (i, l) in cfg.layers.iter().enumerate() {
            match l {
                LayerSpec::Conv2d(_) => conv_w.push(Param::from_tensor(tensor(
                    store,
                    &format!("{i}.weight"),
                    dev,
                ))),
                LayerSpec::Linear(..) => lin_w.push(Param::from_tensor(tensor(
                    store,
                    &format!("{i}.weight"),
                    dev,
                ))),
                LayerSpec::ReLU | LayerSpec::Leaky(_) => continue,
                other => panic!("the digit trainer does not train {other:?} layers"),
            }
            bias.push(Param::from_tensor(tensor(store, &format!("{i}.bias"), dev)));
        }
        CNet {
            conv_w,
            lin_w,
            bias,
        }
    }

    pub fn to_store(&self, cfg: &Config) -> TensorStore {
        let mut store = TensorStore::new("trainer");
        let (mut c, mut l, mut b) = (0, 0, 0);
        for (i, layer) in cfg.layers.iter().enumerate() {
            let w = match layer {
                LayerSpec::Conv2d(_) => {
                    c += 1;
                    let t = self.conv_w[c - 1].val();
                    (t.dims().to_vec(), data_of(t))
                }
                LayerSpec::Linear(..) => {
                    l += 1;
                    let t = self.lin_w[l - 1].val();
                    (t.dims().to_vec(), data_of(t))
                }
                _ => continue,
            };
            store.insert(format!("{i}.weight"), w.0, w.1);
            let t = self.bias[b].val();
            b += 1;
            store.insert(format!("{i}.bias"), t.dims().to_vec(), data_of(t));
        }
        store
    }

    /// Class scores [B, classes] of images [B, C, H, W]: the last layer's output summed over
    /// `cfg.timesteps` steps of the same input.
    pub fn forward(
        &self,
        cfg: &Config,
        x: Tensor<4>,
        dropout: Option<&Dropout>,
        seen: Option<&mut Seen>,
    ) -> Tensor<2> {
        let [b, ..] = x.dims();
        let dev = x.device();
        let sizes = input_sizes(cfg);
        let mut mem: Vec<Option<Tensor<2>>> = vec![None; cfg.layers.len()];
        let mut spikes: Vec<Option<Tensor<2>>> = vec![None; cfg.layers.len()];
        let mut scores: Option<Tensor<2>> = None;
        for _ in 0..cfg.timesteps.max(1) {
            let mut shape = cfg.input.clone();
            let mut h: Tensor<2> = x.clone().reshape([b, sizes[0]]);
            let (mut c, mut l, mut bi) = (0, 0, 0);
            for (i, layer) in cfg.layers.iter().enumerate() {
                match layer {
                    LayerSpec::Conv2d(spec) => {
                        let x4 = h.reshape([b, shape[0], shape[1], shape[2]]);
                        let opts = ConvOptions::new(
                            [spec.stride; 2],
                            [spec.padding; 2],
                            [1, 1],
                            spec.groups,
                        );
                        let y = conv2d(x4, self.conv_w[c].val(), Some(self.bias[bi].val()), opts);
                        c += 1;
                        bi += 1;
                        let [_, oc, oh, ow] = y.dims();
                        shape = vec![oc, oh, ow];
                        h = y.reshape([b, oc * oh * ow]);
                    }
                    LayerSpec::Linear(_, n_out, _) => {
                        if let Some(Some(m)) = dropout.map(|d| &d.masks[i]) {
                            h = h * m.clone();
                        }
                        h = h.matmul(self.lin_w[l].val().transpose())
                            + self.bias[bi].val().unsqueeze_dim(0);
                        l += 1;
                        bi += 1;
                        shape = vec![*n_out];
                    }
                    LayerSpec::ReLU => h = burn::tensor::activation::relu(h),
                    LayerSpec::Leaky(spec) => {
                        let before = mem[i]
                            .take()
                            .unwrap_or_else(|| Tensor::zeros(h.dims(), &dev));
                        let reset = before.clone().detach().greater_elem(spec.threshold).float();
                        let next = match spec.reset {
                            LeakyReset::Subtract => {
                                before.mul_scalar(spec.beta) + h - reset.mul_scalar(spec.threshold)
                            }
                            LeakyReset::Zero => {
                                before.mul_scalar(spec.beta) * reset.neg().add_scalar(1.0) + h
                            }
                        };
                        let s = fire(next.clone().sub_scalar(spec.threshold));
                        mem[i] = Some(next);
                        if seen.is_some() {
                            let counted = s.clone().detach();
                            spikes[i] = Some(match spikes[i].take() {
                                Some(t) => t + counted,
                                None => counted,
                            });
                        }
                        h = s;
                    }
                    other => panic!("the digit trainer does not run {other:?} layers"),
                }
            }
            scores = Some(match scores {
                Some(s) => s + h,
                None => h,
            });
        }
        if let Some(seen) = seen {
            for (i, s) in spikes.into_iter().enumerate() {
                if let Some(s) = s {
                    seen.spikes
                        .push((leaky_name(i), data_of(s.sum_dim(1).reshape([b]))));
                }
            }
        }
        scores.expect("at least one step")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picojoule::models::sequential::{ConvSpec, LeakySpec, Weights};

    fn small(spiking: bool) -> Config {
        let act = || {
            if spiking {
                LayerSpec::Leaky(LeakySpec {
                    beta: 0.9,
                    threshold: 1.0,
                    reset: LeakyReset::Subtract,
                })
            } else {
                LayerSpec::ReLU
            }
        };
        Config {
            name: "t".into(),
            input: vec![1, 8, 8],
            timesteps: if spiking { 3 } else { 1 },
            encoding: Default::default(),
            layers: vec![
                LayerSpec::Conv2d(ConvSpec {
                    in_channels: 1,
                    out_channels: 2,
                    kernel: 3,
                    stride: 2,
                    padding: 1,
                    groups: 1,
                    bias: true,
                }),
                act(),
                LayerSpec::Linear(32, 10, true),
            ],
            weights: Weights::SeededGain(3, 4.0),
            initial_state: 0.0,
        }
    }

    /// The burn forward pass computes what picojoule's `Sequential` executes.
    #[test]
    fn scores_are_the_sequential_models_scores() {
        use picojoule::engine::Arith;
        use picojoule::models::sequential::{Sequential, weight_store};
        for spiking in [false, true] {
            let cfg = small(spiking);
            let store = weight_store(&cfg, std::path::Path::new(".")).unwrap();
            let dev = Device::flex();
            let net = CNet::from_store(&store, &cfg, &dev);
            let img: Vec<f32> = (0..64).map(|i| ((i * 7) % 17) as f32 / 16.0).collect();
            let x = Tensor::from_data(TensorData::new(img.clone(), [1, 1, 8, 8]), &dev);
            let mut seen = Seen { spikes: vec![] };
            let got = data_of(net.forward(&cfg, x, None, Some(&mut seen)));
            let model = Sequential::new(cfg.clone(), &store).unwrap();
            let arith = Arith::Exact;
            let mut st = model.new_state();
            let mut ledger = model.new_ledger(&arith);
            let steps = vec![img.clone(); cfg.timesteps];
            model.run_sample(&steps, &mut st, &arith, &mut ledger);
            let want = picojoule::models::Stepper::outputs(&model, &st);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{got:?} vs {want:?}"
                );
            }
            if spiking {
                let total = ledger
                    .subtree("1.leaky")
                    .op_total(picojoule::ledger::Op::Spike);
                assert!(total > 0, "the test net must spike");
                assert_eq!(seen.spikes[0].1[0] as u64, total);
            }
        }
    }

    #[test]
    fn a_layer_list_round_trips_through_the_store() {
        let cfg = small(true);
        let store =
            picojoule::models::sequential::weight_store(&cfg, std::path::Path::new(".")).unwrap();
        let net = CNet::from_store(&store, &cfg, &Device::flex());
        let back = net.to_store(&cfg);
        for (key, _) in cfg.parameter_shapes() {
            assert_eq!(back.raw(&key).unwrap(), store.raw(&key).unwrap(), "{key}");
        }
    }
}
