//! `picojoule attention-cost`: build one attention layer, run it on seeded random input (the full
//! form over N tokens, as one layer of an encoder), and report the counts of its core under a
//! counting convention, priced with a cost model. The Q/K/V and output projections are executed
//! and reported apart from the core. Every count comes from the execution.

use rand::SeedableRng;
use serde::Serialize;

use crate::convention::{self, Convention, Line};
use crate::engine::Arith;
use crate::engine::attention::layer::AttentionLayer;
use crate::engine::attention::{AttentionKind, Heads, Normalisation, normal};
use crate::error::{Error, Result};
use crate::hardware::{Hardware, Unpriced, price};
use crate::ledger::{FP32, Ledger, Op};
use crate::report::table::{Table, count};

/// What to measure.
#[derive(Clone, Debug)]
pub struct CostSpec {
    pub kind: AttentionKind,
    pub tokens: usize,
    pub dim: usize,
    pub heads: usize,
    pub convention: Convention,
    pub seed: u64,
    /// A preset or a cost model file; the convention's default when `None`.
    pub hardware: Option<String>,
}

/// Upper bound on N x N x D work of one measurement (softmax), to refuse absurd sizes early.
const MAX_WORK: u128 = 1 << 40;

impl CostSpec {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::input(m));
        if self.tokens == 0 || self.tokens > 1 << 20 {
            return bad(format!(
                "--tokens must be between 1 and {}, found {}",
                1 << 20,
                self.tokens
            ));
        }
        if self.dim == 0 || self.dim > 1 << 14 {
            return bad(format!(
                "--dim must be between 1 and {}, found {}",
                1 << 14,
                self.dim
            ));
        }
        if self.heads == 0 || !self.dim.is_multiple_of(self.heads) {
            return bad(format!(
                "--heads must be at least 1 and divide --dim {} evenly, found {}",
                self.dim, self.heads
            ));
        }
        if let AttentionKind::EcoFormer { bits, anchors, .. } = self.kind {
            if bits == 0 || bits > 1024 {
                return bad(format!("--bits must be between 1 and 1024, found {bits}"));
            }
            if anchors == 0 || anchors > 4096 {
                return bad(format!(
                    "--anchors must be between 1 and 4096, found {anchors}"
                ));
            }
        }
        let work = self.tokens as u128 * self.tokens as u128 * self.dim as u128;
        if matches!(self.kind, AttentionKind::Softmax) && work > MAX_WORK {
            return bad(format!(
                "--tokens {} with --dim {} is {work} MACs of softmax attention; the limit is {MAX_WORK}",
                self.tokens, self.dim
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Projections {
    pub mac: u64,
    pub mul: u64,
    pub add: u64,
    pub energy_pj: f64,
}

/// The measurement, as printed (`--format json` serialises this).
#[derive(Clone, Debug, Serialize)]
pub struct CostReport {
    pub kind: String,
    pub normalisation: Option<String>,
    pub tokens: usize,
    pub dim: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub bits: Option<usize>,
    pub anchors: Option<usize>,
    pub seed: u64,
    pub convention: String,
    pub convention_description: String,
    pub hardware: String,
    pub hardware_sha256: String,
    /// Multiplies of the core under the convention (a MAC is one mul + one add).
    pub mul: u64,
    /// Adds of the core under the convention (an AC is one add).
    pub add: u64,
    /// Executed MACs of the core.
    pub mac: u64,
    /// Executed accumulations (ACs) of the core.
    pub ac: u64,
    /// Energy of the core: the convention's view priced with the hardware (`ecoformer-paper`:
    /// its mul and add counts; `full`: the whole executed core ledger, memory included).
    pub energy_pj: f64,
    pub lines: Vec<Line>,
    /// Executed counts the convention does not count.
    pub free: std::collections::BTreeMap<String, u64>,
    /// Every executed count of the core by action.
    pub counts: std::collections::BTreeMap<String, u64>,
    pub unpriced: Vec<Unpriced>,
    /// The Q/K/V and output projections (full convention, priced with the same hardware).
    pub projections: Projections,
}

/// Layers whose path starts with `prefix` (or not), as a new ledger.
fn select(ledger: &Ledger, prefix: &str, keep: bool) -> Ledger {
    let mut out = Ledger::new();
    out.footprint = ledger.footprint.clone();
    for (name, c) in ledger.layers() {
        if name.starts_with(prefix) == keep {
            let id = out.layer(name);
            out.at(id).merge(c);
        }
    }
    out
}

/// Run one layer and return its ledger (`attn.q|k|qk|v`, `attn.core.*`, `attn.output`).
pub fn execute(spec: &CostSpec) -> Ledger {
    let shape = Heads {
        heads: spec.heads,
        head_dim: spec.dim / spec.heads,
    };
    let layer = AttentionLayer::seeded(&spec.kind, shape, spec.seed);
    let mut ledger = Ledger::new();
    let ids = layer.register(&mut ledger, "attn");
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(spec.seed.wrapping_add(1));
    let n = spec.tokens;
    let x: Vec<f32> = (0..n * spec.dim).map(|_| normal(&mut rng)).collect();
    let mut out = vec![0.0; n * spec.dim];
    let arith = Arith::Exact;
    layer.forward_full(&x, n, &mut out, &arith, &mut ledger, &ids);
    let d = spec.dim as u64;
    let bytes = arith.operand_bytes();
    // Working set: one layer's weights and the N x D activations it keeps.
    ledger
        .footprint
        .insert(crate::ledger::TensorClass::Weight, 4 * d * d * bytes);
    ledger.footprint.insert(
        crate::ledger::TensorClass::Activation,
        5 * n as u64 * d * bytes,
    );
    ledger
}

pub fn measure(spec: &CostSpec) -> Result<CostReport> {
    spec.validate()?;
    let hw_name = spec
        .hardware
        .clone()
        .unwrap_or_else(|| spec.convention.default_hardware().to_string());
    let hw = Hardware::load(&hw_name)?;
    let ledger = execute(spec);
    let core = select(&ledger, "attn.core.", true);
    let proj = select(&ledger, "attn.core.", false);
    let view = convention::apply(spec.convention, &core);
    let priced = match spec.convention {
        Convention::Full => price(&core, &hw.model),
        _ => price(&view.to_ledger(FP32), &hw.model),
    };
    let proj_view = convention::apply(Convention::Full, &proj);
    let totals = core.totals();
    let (bits, anchors, normalisation) = match &spec.kind {
        AttentionKind::EcoFormer {
            bits,
            anchors,
            normalisation,
        } => (
            Some(*bits),
            Some(*anchors),
            Some(normalisation.name().to_string()),
        ),
        _ => (None, None, None),
    };
    Ok(CostReport {
        kind: spec.kind.name().to_string(),
        normalisation,
        tokens: spec.tokens,
        dim: spec.dim,
        heads: spec.heads,
        head_dim: spec.dim / spec.heads,
        bits,
        anchors,
        seed: spec.seed,
        convention: spec.convention.name().to_string(),
        convention_description: spec.convention.description().to_string(),
        hardware: hw.model.name.clone(),
        hardware_sha256: hw.sha256.clone(),
        mul: view.mul(),
        add: view.add(),
        mac: totals.op_total(Op::Mac),
        ac: totals.op_total(Op::Ac),
        energy_pj: priced.energy_pj,
        lines: view.lines.clone(),
        free: view.free.clone(),
        counts: totals.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        unpriced: priced.unpriced,
        projections: Projections {
            mac: proj.totals().op_total(Op::Mac),
            mul: proj_view.mul(),
            add: proj_view.add(),
            energy_pj: price(&proj, &hw.model).energy_pj,
        },
    })
}

/// Parse the `--normalisation` flag.
pub fn parse_normalisation(s: &str) -> Result<Normalisation> {
    Normalisation::parse(s).ok_or_else(|| {
        Error::input(format!(
            "--normalisation must be `normalised` or `ecoformer-code`, found `{s}`"
        ))
    })
}

pub fn render_json(r: &CostReport) -> String {
    serde_json::to_string_pretty(r).expect("report serialises") + "\n"
}

pub fn render_text(r: &CostReport) -> String {
    let mut out = format!("attention-cost: {} attention", r.kind);
    if let (Some(b), Some(m), Some(nm)) = (r.bits, r.anchors, &r.normalisation) {
        out += &format!(" (b = {b} bits, m = {m} anchors, {nm})");
    }
    out += &format!(
        ", N = {} tokens, D = {}, H = {} (C = {}), seed {}\n",
        r.tokens, r.dim, r.heads, r.head_dim, r.seed
    );
    out += &format!(
        "convention {}\nhardware {}, sha256 prefix {}\n\n",
        r.convention_description,
        r.hardware,
        &r.hardware_sha256[..16]
    );
    let mut t = Table::new(&["core step", "mul", "add"]);
    for l in &r.lines {
        t.push(vec![
            l.label.trim_start_matches("attn.core.").to_string(),
            l.mul.to_string(),
            l.add.to_string(),
        ]);
    }
    t.push(vec!["TOTAL".into(), r.mul.to_string(), r.add.to_string()]);
    out += &t.text();
    out += &format!("\nexecuted in the core: {} MAC, {} AC\n", r.mac, r.ac);
    out += &format!(
        "core energy {} pJ ({}, convention {})\n",
        crate::report::table::num(r.energy_pj),
        r.hardware,
        r.convention
    );
    if !r.free.is_empty() {
        let f: Vec<String> = r
            .free
            .iter()
            .map(|(k, v)| format!("{k} x{}", count(*v)))
            .collect();
        out += &format!("not counted by this convention: {}\n", f.join(", "));
    }
    let missing: Vec<String> = r
        .unpriced
        .iter()
        .map(|u| format!("{} x{} ({})", u.action, count(u.count), u.reason))
        .collect();
    if !missing.is_empty() {
        out += &format!("unpriced: {}\n", missing.join(", "));
    }
    out += &format!(
        "projections (Q/K/V and output, apart from the core; full convention): {} MAC, energy {} pJ\n",
        r.projections.mac,
        crate::report::table::num(r.projections.energy_pj)
    );
    out
}
