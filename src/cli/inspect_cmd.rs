//! Handler of `inspect`: a model file's structure, parameter count, dense work and weight bytes per
//! number format, without running it.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::exec;
use crate::ledger::{BF16, FP16, FP32, INT8};
use crate::models::ModelDesc;

use super::emit;

pub(super) fn cmd_inspect(path: &Path, stdout: &mut dyn Write) -> Result<()> {
    let desc = ModelDesc::load(path)?;
    // inspect builds the model: refuse what would not fit, as a run does.
    crate::resources::check(
        &format!("model `{}`", desc.name()),
        desc.peak_bytes(1),
        None,
    )?;
    let base = path.parent().unwrap_or(Path::new("."));
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let params: u64 = match &desc {
        ModelDesc::Transformer(cfg) => {
            out += &format!(
                "model {} (transformer, {}, {} attention)\n",
                cfg.name,
                if cfg.is_lm() {
                    "language model"
                } else {
                    "image classifier"
                },
                cfg.attention.name()
            );
            out += &format!(
                "layers {}, width {}, heads {}, MLP hidden {}\n",
                cfg.n_layer,
                cfg.n_embd,
                cfg.n_head,
                cfg.mlp_mult * cfg.n_embd
            );
            out += &format!("parameters {} (without hash tensors)\n", cfg.n_params());
            cfg.n_params() as u64
        }
        ModelDesc::SpikeGpt(cfg) => {
            let n = cfg.n_params();
            out += &format!(
                "model {} (SpikeGPT-style, variant {})\n",
                cfg.name,
                cfg.variant.name()
            );
            out += &format!(
                "layers {}, width {}, FFN hidden {}, vocabulary {}\n",
                cfg.n_layer,
                cfg.n_embd,
                cfg.ffn_hidden(),
                cfg.vocab_size
            );
            out += &format!("parameters {n}\n");
            let need = n as u64 * 4;
            if need > (8u64 << 30) {
                return Err(Error::input(format!(
                    "{}: {n} parameters need {need} bytes in fp32; refusing to allocate more than 8 GiB for inspect",
                    path.display()
                )));
            }
            n as u64
        }
        ModelDesc::Pvt(cfg) => {
            out += &format!(
                "model {} (PVTv2, {} attention, {}x{} images)\n",
                cfg.name,
                cfg.attention.name(),
                cfg.image_size,
                cfg.image_size
            );
            out += &format!(
                "stages: widths {}; heads {}; MLP ratios {}; blocks {}\n",
                list(&cfg.embed_dims),
                list(&cfg.num_heads),
                list(&cfg.mlp_ratios),
                list(&cfg.depths)
            );
            out += &format!("parameters {} (without hash tensors)\n", cfg.n_params());
            cfg.n_params() as u64
        }
        ModelDesc::Sequential(cfg) => {
            let m = crate::models::sequential::Sequential::from_config(cfg.clone(), base)?;
            out += &format!(
                "model {} (sequential, {} layers, {} time steps, input {})\n",
                m.cfg.name,
                m.cfg.layers.len(),
                m.cfg.timesteps,
                m.cfg
                    .input
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            );
            for (i, l) in m.cfg.layers.iter().enumerate() {
                // As the model file writes it.
                let text = ron::ser::to_string(l).unwrap_or_else(|e| format!("({e})"));
                out += &format!("  {i}: {text}\n");
            }
            let s = &m.statics;
            out += &format!(
                "ParameterCount {}\nFootprint {} B (fp32 parameters)\nConnectionSparsity {} ({} of {} connection weights zero; NeuroBench prints {})\n",
                s.ParameterCount,
                s.Footprint,
                s.ConnectionSparsity,
                s.connection_zeros,
                s.connection_weights,
                s.ConnectionSparsity_neurobench
            );
            s.ParameterCount
        }
        ModelDesc::Nir(cfg) => {
            let m = crate::models::nir::Nir::from_config(cfg.clone(), base)?;
            out += &crate::import::describe_nir(&m);
            m.statics.ParameterCount
        }
    };
    match exec::dense_per_step(&desc, base)? {
        Some((dense, unit)) => {
            out += &format!(
                "dense MACs per {unit} {dense} (executed: one {unit} in exact fp32{}, the synaptic operations of every projection as if every input were non-zero)\n",
                if matches!(desc, ModelDesc::SpikeGpt(_)) {
                    " of the non-spiking form"
                } else {
                    ""
                }
            );
        }
        None => {
            out += "dense MACs: not executed by inspect for this family (a run reports them as metrics.Dense)\n";
        }
    }
    out += "weight bytes per number format:\n";
    for f in [FP32, FP16, BF16, "fp8-e4m3".parse().expect("valid"), INT8] {
        out += &format!("  {:<9} {}\n", f.to_string(), params * f.bits() as u64 / 8);
    }
    emit(stdout, &out)
}
