//! From a run's description to a built model and the input it reads: which inputs each family
//! accepts, calibration data for hashes learned at load, and the memory check before building.

use std::path::Path;

use crate::engine::attention::AttentionKind;
use crate::error::{Error, Result};
use crate::input::images::{UniformVectors, seeded_image};
use crate::input::text::{self, SyntheticTokens};
use crate::input::{self, Digit, Encoding, Input, calibration_indices, digits};
use crate::models::ModelDesc;
use crate::models::nir::Nir;
use crate::models::pvt::Pvt;
use crate::models::sequential::Sequential;
use crate::models::spikegpt::SpikeGpt;
use crate::models::transformer::{Calibration, Task, Transformer};
use crate::scenario::{LoadedScenario, RunSpec};

use super::Limits;

// One model per run, built once: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Model {
    SpikeGpt(SpikeGpt),
    Transformer(Transformer),
    Sequential(Sequential),
    Pvt(Pvt),
    Nir(Nir),
}

pub(super) struct Built {
    pub model: Model,
    pub feed: Feed,
    pub name: String,
    pub variant: String,
    /// What was read as something else (text characters outside the vocabulary, ...).
    pub warnings: Vec<String>,
}

/// The inputs of one run, produced step by step.
pub enum Feed {
    /// A token stream; `targets`: the next token is known (text), so accuracy is measured.
    Tokens {
        tokens: Tokens,
        targets: bool,
    },
    Samples(Samples),
}

impl Feed {
    pub fn is_tokens(&self) -> bool {
        matches!(self, Feed::Tokens { .. })
    }

    /// Frames per sample (1 for token streams).
    pub fn timesteps(&self) -> usize {
        match self {
            Feed::Tokens { .. } => 1,
            Feed::Samples(s) => s.timesteps,
        }
    }
}

pub enum Tokens {
    /// Tokens read from a file (the run's tokens and the target after the last).
    Known(std::vec::IntoIter<usize>),
    Synthetic(SyntheticTokens),
}

impl Tokens {
    pub fn next_token(&mut self) -> usize {
        match self {
            // Sized by the reader to the run's tokens plus one target.
            Tokens::Known(it) => it.next().unwrap_or(0),
            Tokens::Synthetic(it) => it.next().unwrap_or(0),
        }
    }
}

/// One sample: its frames (time steps) and its label when known.
pub struct Sample {
    pub frames: Vec<Vec<f32>>,
    pub label: Option<usize>,
}

/// Where samples come from, and how a sample becomes frames.
pub struct Samples {
    source: Source,
    encoding: Encoding,
    timesteps: usize,
    seed: u64,
}

enum Source {
    Digits(Vec<Digit>),
    /// Frames as stored in a tensor file: no coding applies.
    Tensors(input::tensors::TensorSamples),
    Uniform(UniformVectors),
    SeededImages {
        size: usize,
        channels: usize,
    },
}

impl Samples {
    /// Sample `i`; samples are asked for in order.
    pub fn sample(&mut self, i: usize) -> Sample {
        if let Source::Tensors(t) = &self.source {
            let (frames, label) = t.sample(i);
            return Sample { frames, label };
        }
        let (values, label): (std::borrow::Cow<[f32]>, Option<usize>) = match &mut self.source {
            Source::Digits(d) => (d[i].pixels[..].into(), Some(d[i].label)),
            Source::Tensors(_) => unreachable!("returned above"),
            Source::Uniform(u) => (u.next_vector().into(), None),
            Source::SeededImages { size, channels } => {
                (seeded_image(*size, *channels, self.seed, i).into(), None)
            }
        };
        Sample {
            frames: input::coding::frames(self.encoding, self.timesteps, &values, self.seed, i),
            label,
        }
    }
}

fn one_frame(source: Source, seed: u64) -> Feed {
    Feed::Samples(Samples {
        source,
        encoding: Encoding::Direct,
        timesteps: 1,
        seed,
    })
}

fn no_variant(spec: &RunSpec) -> Result<()> {
    match spec.variant {
        Some(_) => Err(Error::input(format!(
            "run of `{}`: `variant` applies to SpikeGpt models only",
            spec.model
        ))),
        None => Ok(()),
    }
}

/// The token stream of a language model: `n` tokens plus, for text, the target after the last.
fn token_feed(
    sc: &LoadedScenario,
    model: &str,
    vocab: usize,
    n: usize,
    warnings: &mut Vec<String>,
) -> Result<Feed> {
    match &sc.scenario.input {
        Input::Synthetic => Ok(Feed::Tokens {
            tokens: Tokens::Synthetic(SyntheticTokens::new(vocab, sc.scenario.seed)),
            targets: false,
        }),
        Input::Text(rel) => {
            if vocab < text::CHAR_VOCAB {
                return Err(Error::input(format!(
                    "model `{model}` has vocab_size {vocab}, but text input needs at least {} (character vocabulary)",
                    text::CHAR_VOCAB
                )));
            }
            let (toks, warning) = text::read_tokens(&sc.resolve(rel), n)?;
            warnings.extend(warning);
            Ok(Feed::Tokens {
                tokens: Tokens::Known(toks.into_iter()),
                targets: true,
            })
        }
        other => Err(Error::input(format!(
            "model `{model}` is a language model and cannot read input {other:?}"
        ))),
    }
}

/// Read `n` samples of a tensor input for model `name` (per-step input shape `shape`,
/// `classes` outputs): headers first, then the shape and the memory checks, then the data.
fn tensor_samples(
    sc: &LoadedScenario,
    spec: &input::tensors::TensorSpec,
    name: &str,
    shape: &[usize],
    n: usize,
    classes: usize,
    limits: &Limits,
) -> Result<input::tensors::TensorSamples> {
    let opened = input::tensors::Opened::open(spec, |p| sc.resolve(p))?;
    if !input::tensors::features_fit(opened.features(), shape) {
        return Err(Error::input(format!(
            "{}: shape {:?} gives {:?} per time step; model `{name}` takes {shape:?}",
            opened.inputs.what(),
            opened.inputs.shape,
            opened.features()
        )));
    }
    let what = format!("the samples of {}", opened.inputs.what());
    crate::resources::check(&what, opened.bytes_for(n), limits.max_memory)?;
    opened.read(n, classes)
}

fn warnings_of(mut warnings: Vec<String>, more: Option<String>) -> Vec<String> {
    warnings.extend(more);
    warnings
}

/// Build the model of one run and its input, after checking its memory estimate.
pub(super) fn build(
    sc: &LoadedScenario,
    spec: &RunSpec,
    mut desc: ModelDesc,
    base: &Path,
    limits: &Limits,
) -> Result<Built> {
    if let Some(norm) = spec.normalisation {
        desc.set_normalisation(norm)
            .map_err(|e| Error::input(format!("run of `{}`: {e}", spec.model)))?;
    }
    let n = sc.scenario.tokens;
    let seed = sc.scenario.seed;
    let what = format!("model `{}`", desc.name());
    // Emulated arithmetic keeps a copy of the weights rounded into its operand format.
    let rounded = if super::run_arith(spec)?.is_exact() {
        0
    } else {
        4 * desc.n_params() as u64
    };
    crate::resources::check(
        &what,
        desc.peak_bytes(n).saturating_add(rounded),
        limits.max_memory,
    )?;
    let mut warnings = Vec::new();
    match desc {
        ModelDesc::SpikeGpt(mut cfg) => {
            if let Some(v) = spec.variant {
                cfg.variant = v;
            }
            let feed = token_feed(sc, &cfg.name, cfg.vocab_size, n, &mut warnings)?;
            let (name, variant) = (cfg.name.clone(), cfg.variant.name().to_string());
            let model = SpikeGpt::from_config(cfg, base)?;
            Ok(Built {
                feed,
                name,
                variant,
                warnings: warnings_of(warnings, model.unused_tensors.clone()),
                model: Model::SpikeGpt(model),
            })
        }
        ModelDesc::Transformer(cfg) => {
            no_variant(spec)?;
            let (name, variant) = (cfg.name.clone(), cfg.attention.name().to_string());
            let needs_calibration = matches!(cfg.attention, AttentionKind::EcoFormer { .. });
            let cal_n = cfg.calibration;
            let (feed, calib) = match cfg.task {
                Task::CausalLm => {
                    let feed = token_feed(sc, &name, cfg.vocab_size, n, &mut warnings)?;
                    let calib = match (&sc.scenario.input, needs_calibration) {
                        (_, false) => None,
                        (Input::Text(rel), true) => {
                            let all =
                                text::encode_text(&crate::error::read_text(&sc.resolve(rel))?);
                            let start = calibration_indices(
                                all.len().saturating_sub(cal_n).max(1),
                                1,
                                seed,
                            )[0];
                            Some(Calibration::Tokens(
                                all[start..(start + cal_n).min(all.len())].to_vec(),
                            ))
                        }
                        (_, true) => Some(Calibration::Tokens(text::synthetic_tokens(
                            cal_n,
                            cfg.vocab_size,
                            seed ^ 0xca11,
                        ))),
                    };
                    (feed, calib)
                }
                Task::DigitsClassifier { .. } => {
                    let Input::Digits(rel) = &sc.scenario.input else {
                        return Err(Error::input(format!(
                            "model `{name}` is a digits classifier and needs `input: Digits(\"...csv\")`"
                        )));
                    };
                    let path = sc.resolve(rel);
                    let mut images = digits::read(&path)?;
                    if images.len() < n {
                        return Err(Error::input(format!(
                            "{}: has {} images, the scenario asks for {n}",
                            path.display(),
                            images.len()
                        )));
                    }
                    // Calibration draws from the whole file; the run reads the first n images.
                    let calib = needs_calibration.then(|| {
                        Calibration::Images(
                            calibration_indices(images.len(), cal_n, seed)
                                .into_iter()
                                .map(|i| images[i].pixels)
                                .collect(),
                        )
                    });
                    images.truncate(n);
                    (one_frame(Source::Digits(images), seed), calib)
                }
            };
            let model = Transformer::from_config(cfg, base, calib.as_ref())?;
            Ok(Built {
                feed,
                name,
                variant,
                warnings: warnings_of(warnings, model.unused_tensors.clone()),
                model: Model::Transformer(model),
            })
        }
        ModelDesc::Sequential(cfg) => {
            let name = cfg.name.clone();
            let model = Sequential::from_config(cfg, base)?;
            let feed = classifier_feed(
                sc,
                &name,
                &model.cfg.input,
                model.n_classes(),
                (n, seed),
                (model.cfg.timesteps, model.cfg.encoding),
                limits,
                &mut warnings,
            )?;
            Ok(Built {
                feed,
                name,
                variant: "sequential".into(),
                warnings: warnings_of(warnings, model.unused_tensors.clone()),
                model: Model::Sequential(model),
            })
        }
        ModelDesc::Nir(cfg) => {
            no_variant(spec)?;
            let name = cfg.name.clone();
            let variant = cfg.variant();
            let model = Nir::from_config(cfg, base)?;
            let feed = classifier_feed(
                sc,
                &name,
                &[model.n_inputs()],
                model.n_classes(),
                (n, seed),
                (model.cfg.timesteps, model.cfg.encoding),
                limits,
                &mut warnings,
            )?;
            Ok(Built {
                feed,
                name,
                variant,
                warnings: warnings_of(warnings, model.unused_tensors.clone()),
                model: Model::Nir(model),
            })
        }
        ModelDesc::Pvt(cfg) => {
            no_variant(spec)?;
            let Input::SeededImage { size } = sc.scenario.input else {
                return Err(Error::input(format!(
                    "model `{}` is an image classifier and needs `input: SeededImage(size: {})`",
                    cfg.name, cfg.image_size
                )));
            };
            if size != cfg.image_size {
                return Err(Error::input(format!(
                    "model `{}` takes {}x{} images, the scenario gives {size}x{size}",
                    cfg.name, cfg.image_size, cfg.image_size
                )));
            }
            let (name, variant) = (cfg.name.clone(), cfg.attention.name().to_string());
            let channels = cfg.in_chans;
            let model = Pvt::from_config(cfg, base)?;
            Ok(Built {
                feed: one_frame(Source::SeededImages { size, channels }, seed),
                name,
                variant,
                warnings: warnings_of(warnings, model.unused_tensors.clone()),
                model: Model::Pvt(model),
            })
        }
    }
}

/// The samples a classifier taking `input_shape` values per step reads: digit images, stored
/// tensors (fed as stored, their time steps in place of the model's) or seeded vectors.
#[allow(clippy::too_many_arguments)]
fn classifier_feed(
    sc: &LoadedScenario,
    name: &str,
    input_shape: &[usize],
    n_classes: usize,
    (n, seed): (usize, u64),
    (timesteps, encoding): (usize, crate::input::Encoding),
    limits: &Limits,
    warnings: &mut Vec<String>,
) -> Result<Feed> {
    let n_in: usize = input_shape.iter().product();
    let (source, timesteps) = match &sc.scenario.input {
        Input::Digits(rel) => {
            if n_in != digits::PIXELS {
                return Err(Error::input(format!(
                    "model `{name}` takes {n_in} inputs per step; digit images have 64 pixels"
                )));
            }
            if n_classes < digits::CLASSES {
                return Err(Error::input(format!(
                    "model `{name}` has {n_classes} outputs; digits need 10 classes"
                )));
            }
            (
                Source::Digits(digits::read_first(&sc.resolve(rel), n)?),
                timesteps,
            )
        }
        // Stored frames are fed as they are: the file sets the time steps per sample.
        Input::Tensors(spec) => {
            let t = tensor_samples(sc, spec, name, input_shape, n, n_classes, limits)?;
            if t.timesteps() != timesteps {
                warnings.push(format!(
                    "model `{name}` declares {timesteps} timesteps ({encoding:?} coding); {} feeds {} stored frames per sample as they are",
                    sc.resolve(&spec.file).display(),
                    t.timesteps()
                ));
            }
            let steps = t.timesteps();
            (Source::Tensors(t), steps)
        }
        // Drawn one sample at a time from one seeded stream: nothing scales with
        // `tokens` but the work.
        Input::Synthetic => (Source::Uniform(UniformVectors::new(n_in, seed)), timesteps),
        other => {
            return Err(Error::input(format!(
                "model `{name}` is a classifier and cannot read input {other:?}"
            )));
        }
    };
    Ok(Feed::Samples(Samples {
        source,
        encoding,
        timesteps,
        seed,
    }))
}
