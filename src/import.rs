//! Checkpoint import: a released SpikeGPT `.pth` becomes a picojoule model description (`.ron`)
//! plus its weights (`.safetensors`). Width, depth, vocabulary and FFN width are inferred from the
//! tensor shapes; every key is then checked by building the model from them.
//!
//! The description runs the checkpoint as SpikeGPT's released RNN inference code
//! (`src/model_run.py`) computes it: the `Reference` variant, the binary embedding only for a
//! 77-token vocabulary, and the `RWKV_RESCALE_LAYER = 6` rescale (`rescale_every: Some(6)`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, write_atomic};
use crate::models::spikegpt::{Config, SpikeGpt, Variant, WeightsSpec};
use crate::weights::{TensorStore, load_file, save_safetensors};

/// `RWKV_RESCALE_LAYER` of SpikeGPT's released inference code.
pub const RELEASED_RESCALE_EVERY: usize = 6;

/// What an import wrote.
pub struct Imported {
    pub config: Config,
    pub model_file: PathBuf,
    pub weights_file: PathBuf,
}

/// Infer a SpikeGPT configuration from checkpoint shapes.
pub fn infer_spikegpt(store: &TensorStore, name: &str) -> Result<Config> {
    let emb = store.raw("emb.weight").ok_or_else(|| {
        Error::input(format!(
            "{}: no `emb.weight`; is this a SpikeGPT checkpoint?",
            store.origin
        ))
    })?;
    if emb.shape.len() != 2 {
        return Err(Error::input(format!(
            "{}: tensor `emb.weight` has shape {:?}, expected [vocab, n_embd]",
            store.origin, emb.shape
        )));
    }
    let (vocab, d) = (emb.shape[0], emb.shape[1]);
    let n_layer = store
        .keys()
        .filter_map(|k| {
            k.strip_prefix("blocks.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map(|m| m + 1)
        .ok_or_else(|| Error::input(format!("{}: no `blocks.N.*` tensors", store.origin)))?;
    let ffn_key = store.raw("blocks.0.ffn.key.weight").ok_or_else(|| {
        Error::input(format!(
            "{}: missing tensor `blocks.0.ffn.key.weight` (expected shape [4*{d}, {d}])",
            store.origin
        ))
    })?;
    let hidden = ffn_key.shape.first().copied().unwrap_or(0);
    if d == 0 || hidden % d != 0 {
        return Err(Error::input(format!(
            "{}: tensor `blocks.0.ffn.key.weight` has shape {:?}, expected [k*{d}, {d}]",
            store.origin, ffn_key.shape
        )));
    }
    Ok(Config {
        name: name.to_string(),
        n_layer,
        n_embd: d,
        vocab_size: vocab,
        ffn_mult: hidden / d,
        variant: Variant::Reference,
        // SpikeGPT's model_run.py applies the binary embedding only to its 77-character model.
        binary_embedding: vocab == 77,
        rescale_every: Some(RELEASED_RESCALE_EVERY),
        lif: Default::default(),
        layer_norm_eps: 1e-5,
        weights: WeightsSpec::File(format!("{name}.safetensors")),
    })
}

fn model_ron(cfg: &Config, source: &Path) -> String {
    let file = match &cfg.weights {
        WeightsSpec::File(f) => f.clone(),
        WeightsSpec::Seeded(_) => unreachable!("imports always name a file"),
    };
    format!(
        "// Imported by `picojoule import spikegpt` from {}.\n// Shapes inferred from the checkpoint; LIF settings are SpikeGPT's (tau 2, threshold 1, hard reset).\n// Reference runs it as SpikeGPT's released inference code (src/model_run.py) computes it:\n// binary embedding only for a 77-token vocabulary, and RWKV_RESCALE_LAYER = 6 (att.output and\n// ffn.value of block i divided by 2^(i / 6), residual halved after every 6th block).\n// Without rescale_every the blocks from 6 on compute the training graph (src/model.py) instead.\nSpikeGpt(\n    name: {:?},\n    n_layer: {},\n    n_embd: {},\n    vocab_size: {},\n    ffn_mult: {},\n    variant: Reference,\n    binary_embedding: {},\n    rescale_every: {},\n    lif: (tau: 2.0, v_threshold: 1.0, v_reset: 0.0, reset: Hard, decay_input: true),\n    weights: File({:?}),\n)\n",
        source.display(),
        cfg.name,
        cfg.n_layer,
        cfg.n_embd,
        cfg.vocab_size,
        cfg.ffn_mult,
        cfg.binary_embedding,
        match cfg.rescale_every {
            Some(k) => format!("Some({k})"),
            None => "None".to_string(),
        },
        file
    )
}

/// Convert `checkpoint` into `out/NAME.ron` and `out/NAME.safetensors`.
pub fn import_spikegpt(checkpoint: &Path, out: &Path, name: Option<&str>) -> Result<Imported> {
    let store = load_file(checkpoint)?;
    let name = name.map(str::to_string).unwrap_or_else(|| {
        checkpoint
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("spikegpt")
            .to_string()
    });
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(Error::input(format!(
            "--name `{name}` must be a plain file name"
        )));
    }
    let config = infer_spikegpt(&store, &name)?;
    // Building the model checks every key and shape, naming the tensor on a mismatch.
    SpikeGpt::new(config.clone(), &store)?;
    let extra: Vec<&str> = store
        .keys()
        .filter(|k| !config.checkpoint_keys().iter().any(|(c, _)| c == k))
        .collect();
    if !extra.is_empty() {
        return Err(Error::input(format!(
            "{}: unexpected tensors {:?} for a SpikeGPT checkpoint",
            checkpoint.display(),
            extra
        )));
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let weights_file = out.join(format!("{name}.safetensors"));
    let model_file = out.join(format!("{name}.ron"));
    save_safetensors(&store, &weights_file)?;
    write_atomic(&model_file, model_ron(&config, checkpoint).as_bytes())?;
    Ok(Imported {
        config,
        model_file,
        weights_file,
    })
}

/// What a NIR import wrote.
pub struct ImportedNir {
    pub model_file: PathBuf,
    pub weights_file: PathBuf,
    /// Nodes, time step and convention, one line each.
    pub summary: String,
}

/// A built NIR model's nodes in execution order with shapes, and its discretisation.
pub fn describe_nir(m: &crate::models::nir::Nir) -> String {
    let p = &m.plan;
    let mut out = format!(
        "model {} (NIR graph, {} nodes, {} edges, {}, {} time steps, {} parameters)\n",
        m.cfg.name,
        p.order.len(),
        m.cfg.edges.len(),
        m.discretisation(),
        m.cfg.timesteps,
        m.cfg.n_params()
    );
    for (k, name) in p.order.iter().enumerate() {
        let srcs: Vec<String> = p.preds[k]
            .iter()
            .map(|&(s, back)| {
                if back {
                    format!("{} (previous step)", p.order[s])
                } else {
                    p.order[s].clone()
                }
            })
            .collect();
        let shape = |v: &[usize]| {
            let dims: Vec<String> = v.iter().map(|x| x.to_string()).collect();
            format!("[{}]", dims.join(", "))
        };
        out += &format!(
            "  {name}: {} {} -> {}{}\n",
            m.cfg.nodes[name].kind(),
            shape(&p.shape_in[k]),
            shape(&p.shape_out[k]),
            if srcs.is_empty() {
                String::new()
            } else {
                format!(" from {}", srcs.join(", "))
            }
        );
    }
    out
}

/// Convert the NIR graph `model` into `out/NAME.ron` and `out/NAME.safetensors`, discretised
/// with `dt` (default: the convention's).
pub fn import_nir(
    model: &Path,
    out: &Path,
    name: Option<&str>,
    convention: crate::models::nir::Convention,
    dt: Option<f64>,
) -> Result<ImportedNir> {
    use crate::models::nir::{Nir, NirWeights, read_nir};
    let name = name.map(str::to_string).unwrap_or_else(|| {
        model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("nir")
            .to_string()
    });
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(Error::input(format!(
            "--name `{name}` must be a plain file name"
        )));
    }
    let dt = dt.unwrap_or(convention.dt());
    if !(dt.is_finite() && dt > 0.0) {
        return Err(Error::input(format!(
            "--dt {dt}: the time step must be a positive number of seconds"
        )));
    }
    let (mut cfg, store) = read_nir(model, &name, convention, dt)?;
    cfg.weights = NirWeights::File(format!("{name}.safetensors"));
    // Building the model checks every parameter and shape, naming the node on a mismatch.
    let m = Nir::new(cfg.clone(), &store)?;
    let summary = describe_nir(&m);
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let weights_file = out.join(format!("{name}.safetensors"));
    let model_file = out.join(format!("{name}.ron"));
    let body = ron::ser::to_string_pretty(
        &crate::models::ModelDesc::Nir(cfg),
        ron::ser::PrettyConfig::default()
            .extensions(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES),
    )
    .map_err(|e| Error::Internal(format!("cannot write the model description: {e}")))?;
    let text = format!(
        "// Imported by `picojoule import nir` from {}.\n// Neurons discretised with dt = {dt} s under the {} convention (docs/nir.md).\n// Set `timesteps` and `encoding` for the input the network expects.\n{body}\n",
        model.display(),
        convention.name()
    );
    save_safetensors(&store, &weights_file)?;
    write_atomic(&model_file, text.as_bytes())?;
    Ok(ImportedNir {
        model_file,
        weights_file,
        summary,
    })
}
