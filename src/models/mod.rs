//! Model families, one file each. A model description is a RON file naming the family.

pub mod nir;
pub mod pvt;
pub mod sequential;
pub mod spikegpt;
pub mod statics;
pub mod transformer;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::Arith;
use crate::error::{self, Error, Result};
use crate::ledger::Ledger;

/// A model description file (`models/*.ron`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ModelDesc {
    SpikeGpt(spikegpt::Config),
    Transformer(transformer::Config),
    Sequential(sequential::Config),
    Pvt(pvt::Config),
    Nir(nir::Config),
}

impl ModelDesc {
    pub fn load(path: &Path) -> Result<ModelDesc> {
        // A NIR graph is read directly, under the snnTorch convention (see docs/nir.md).
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("nir"))
        {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "nir".into());
            let conv = nir::Convention::default();
            let (cfg, _) = nir::read_nir(path, &name, conv, conv.dt())?;
            return Ok(ModelDesc::Nir(cfg));
        }
        let text = error::read_text(path)?;
        let desc: ModelDesc = error::parse_ron(path, &text)?;
        desc.validate()
            .map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        Ok(desc)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            ModelDesc::SpikeGpt(c) => c.validate(),
            ModelDesc::Transformer(c) => c.validate(),
            ModelDesc::Sequential(c) => c.validate(),
            ModelDesc::Pvt(c) => c.validate(),
            ModelDesc::Nir(c) => c.validate(),
        }
    }

    /// Parameters of the model (for memory estimates).
    pub fn n_params(&self) -> usize {
        match self {
            ModelDesc::SpikeGpt(c) => c.n_params(),
            ModelDesc::Transformer(c) => c.n_params(),
            ModelDesc::Sequential(c) => c.n_params(),
            ModelDesc::Pvt(c) => c.n_params(),
            ModelDesc::Nir(c) => c.n_params(),
        }
    }

    /// Estimated peak memory of building and running the model for `tokens` steps, in bytes:
    /// checked against the limit before anything is allocated.
    pub fn peak_bytes(&self, tokens: usize) -> u64 {
        let sat = |a: u64, b: u64| a.saturating_mul(b);
        match self {
            ModelDesc::SpikeGpt(c) => c.peak_bytes(),
            ModelDesc::Transformer(c) => {
                // The weights twice (the store and the model's own layout) and the attention
                // state of every layer, which for softmax grows with the context window.
                let window = c.context.unwrap_or(tokens).min(tokens).max(1) as u64;
                let d = c.n_embd as u64;
                let cache = match (&c.attention, c.is_lm()) {
                    (crate::engine::attention::AttentionKind::Softmax, true) => {
                        sat(sat(2, window), d)
                    }
                    _ => sat(4, d).saturating_add(sat(c.patch_tokens() as u64, sat(4, d))),
                };
                let per_layer =
                    cache.saturating_add(sat(window.min(1 << 20), c.shape().heads as u64));
                sat(
                    4,
                    sat(2, c.n_params() as u64).saturating_add(sat(c.n_layer as u64, per_layer)),
                )
            }
            ModelDesc::Sequential(c) => sat(8, c.n_params() as u64).saturating_add(1 << 20),
            // The parameters (store and model), and a few buffers per node.
            ModelDesc::Nir(c) => {
                let acts: u64 = c
                    .plan()
                    .map(|p| {
                        p.shape_out
                            .iter()
                            .map(|s| s.iter().product::<usize>() as u64)
                            .sum()
                    })
                    .unwrap_or(0);
                sat(8, c.n_params() as u64)
                    .saturating_add(sat(32, acts))
                    .saturating_add(1 << 20)
            }
            ModelDesc::Pvt(c) => {
                // The weights twice and a few activation maps of the largest stage.
                let grid = c.grid();
                let acts = (0..c.stages())
                    .map(|s| {
                        let n = (grid[s] * grid[s]) as u64;
                        sat(n, (c.embed_dims[s] * c.mlp_ratios[s].max(1)) as u64)
                    })
                    .max()
                    .unwrap_or(0);
                sat(4, sat(2, c.n_params() as u64).saturating_add(sat(8, acts)))
            }
        }
    }

    /// Compute hashed attention with `n` in place of the description's normalisation (the same
    /// weights with EcoFormer's released-code form, or picojoule's EcoFormer-style one).
    pub fn set_normalisation(
        &mut self,
        n: crate::engine::attention::Normalisation,
    ) -> std::result::Result<(), String> {
        use crate::engine::attention::AttentionKind;
        let slot = match self {
            ModelDesc::Transformer(c) => match &mut c.attention {
                AttentionKind::EcoFormer { normalisation, .. } => Some(normalisation),
                _ => None,
            },
            ModelDesc::Pvt(c) => match &mut c.attention {
                pvt::PvtAttention::EcoFormer { normalisation, .. } => Some(normalisation),
                pvt::PvtAttention::Msa | pvt::PvtAttention::Sra { .. } => None,
            },
            _ => None,
        };
        match slot {
            Some(s) => {
                *s = n;
                Ok(())
            }
            None => Err(format!(
                "`normalisation` applies to models with EcoFormer hashed attention; model `{}` has none",
                self.name()
            )),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ModelDesc::SpikeGpt(c) => &c.name,
            ModelDesc::Transformer(c) => &c.name,
            ModelDesc::Sequential(c) => &c.name,
            ModelDesc::Pvt(c) => &c.name,
            ModelDesc::Nir(c) => &c.name,
        }
    }
}

/// One connection layer's call in a model's last step, for NeuroBench's per-batch
/// classification of layer inputs (the runner applies it across the samples of a batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerCall {
    pub layer: crate::ledger::LayerId,
    /// The input was all in {-1, 0, 1}.
    pub spiking: bool,
    /// NeuroBench effective ACs this call counted (0 when not spiking).
    pub effective_ac: u64,
}

/// One input to one step of a model: a token (language models) or a vector of values (a
/// frame of a sample: an image, or one time step of a coded image).
#[derive(Clone, Copy, Debug)]
pub enum Frame<'a> {
    Token(usize),
    Values(&'a [f32]),
}

/// What a model family gives the runner: its state, its ledger, one step, its outputs. The
/// runner (`exec`) owns the loop over inputs, the fp32 shadow, accuracy and the checks.
pub trait Stepper: Sync {
    type State;

    /// A fresh state; `window` is how many steps the state holds before a reset (a language
    /// model's context; 1 for classifiers, whose state lives for one sample).
    fn new_state(&self, window: usize) -> Self::State;

    /// An empty ledger with every layer registered and the memory footprint for `window`.
    fn new_ledger(&self, arith: &Arith, window: usize) -> Ledger;

    /// Start afresh: a new context window, or a new sample. Buffers are kept.
    fn reset(&self, state: &mut Self::State);

    /// Run one step; its outputs are left in the state.
    fn step(&self, frame: Frame, state: &mut Self::State, arith: &Arith, ledger: &mut Ledger);

    /// Next-token logits, or the class scores of the sample so far.
    fn outputs<'s>(&self, state: &'s Self::State) -> &'s [f32];

    /// Where a non-finite output came from, when the model tracks it (else the runner names
    /// the output).
    fn nonfinite_site(&self, _state: &Self::State) -> Option<String> {
        None
    }

    /// The context after which a language model's state is reset (None: never).
    fn context(&self) -> Option<usize> {
        None
    }

    /// Ledger layers of LIF neurons (firing rates in reports).
    fn lif_layers(&self) -> Vec<String> {
        Vec::new()
    }

    /// Keep (or stop keeping) the connection layers' calls of each step in the state, for
    /// [`layer_calls`](Self::layer_calls). Models without NeuroBench metric counts ignore it.
    fn keep_layer_calls(&self, _state: &mut Self::State, _on: bool) {}

    /// The connection layers' calls of the last step, when kept (else empty).
    fn layer_calls<'s>(&self, _state: &'s Self::State) -> &'s [LayerCall] {
        &[]
    }
}
