//! Counting conventions: views over an executed ledger.
//!
//! A convention never re-derives counts from shapes. It walks the measured counts of a ledger,
//! layer by layer and action by action, and for each one decides, by an ordered list of rules,
//! how many multiplies and adds it stands for under that convention and under which label (or
//! that the convention treats it as free). The result is a list of labelled (mul, add) lines and
//! the measured counts the convention left out.
//!
//! - `full`: every executed compute action: a MAC is one mul + one add, an AC or add is one add,
//!   a mul is one mul; one line per layer. Nonlinear functions (exp, div, sqrt, ...) and compares
//!   are listed as `free` here only because they are neither a mul nor an add; the ledger keeps
//!   them and pricing prices them.
//! - `ecoformer-paper`: the rules of EcoFormer's `get_energy.py` (Liu et al., NeurIPS 2022; see
//!   `shared/reference/ecoformer.md` section 2): a MAC is one mul + one add; softmax, GELU
//!   and exp are free; the RBF kernel distances are adds only (the subtraction and the
//!   square-accumulate each count as one add; the squaring multiply is dropped); the
//!   kernel's two multiplies per token and anchor are our measured bandwidth scaling multiply
//!   and exponential (the authors' counter gives 2 m muls per token and head with no breakdown;
//!   this pairing is our reading); the denominator's code dot product is counted as MACs (b mul + b
//!   add per token, the authors' conservative count) and its reciprocal as one mul; the output
//!   division as C muls. Not counted by the authors, so free here: the l2 pre-normalisation, the
//!   bandwidth mean, the centring by mu, the sign, the `+ n c` of the denominator, and the scale
//!   of v by c. With the `ecoformer-code` normalisation this view reproduces the closed forms
//!   #Mul = H N (2m + mb + b + 1 + C), #Add = H N (2mC + mb + 2b + 2bC + C); softmax attention
//!   gives #Mul = 2 N^2 D + H N^2, #Add = 2 N^2 D.
//!
//! - `spikegpt-paper`: the energy table of SpikeGPT (Zhu et al., TMLR 2024, Table 1; see
//!   `shared/reference/spikegpt.md` section 3.2): projections fed by spikes (R/K/V and the
//!   FFN matrices) are ACs, the WKV element-wise work is MACs (one MAC per executed multiply:
//!   6 per channel and token), and everything the paper leaves out is free (LayerNorm, sigmoid,
//!   exp, division, ReLU^2, the output projection W_o, the head, the embedding, neuron updates,
//!   residual adds). The paper charges the FFN value projection as AC too, although its input is
//!   ReLU^2 (not spikes): the view follows the paper and re-labels its measured MACs as ACs. For a
//!   vanilla GPT (softmax transformer) run the same convention counts Q/K/V, QK^T, AV, the scale,
//!   the softmax exponentials and the MLP as MACs. A MAC is one mul + one add, an AC one add, so
//!   pricing the view with `paper45` gives E_MAC = 4.6 pJ and E_AC = 0.9 pJ.
//! - `neurobench`: NeuroBench's synaptic operations (v2.3.0, `synaptic_operations.py`; see
//!   `shared/reference/peers.md` section 1.2): the `effective_mac` metric counts (pairs of a
//!   non-zero input and a non-zero weight of a connection layer fed by a non-binary input) as one
//!   mul + one add, the `effective_ac` counts (the same pairs under a {-1, 0, 1} input) as one add;
//!   everything NeuroBench does not hook (bias, attention products, WKV, norms, neurons, nonlinear
//!   functions) is free. Priced with `paper45` (4.6 pJ per MAC, 0.9 pJ per AC, as SNN papers price
//!   NeuroBench's counts); NeuroBench itself reports counts only.
//!
//! A paper convention describes one kind of model. [`applies`] tells from the ledger whether a run
//! holds the layers a convention is defined on; reports say "not applicable" with the reason for
//! a run it does not describe (a scenario may mix model families), and never a number.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::engine::attention::step;
use crate::engine::model_step;
use crate::ledger::{FP32, Fmt, Ledger, Op, OpKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Convention {
    #[default]
    Full,
    EcoformerPaper,
    SpikegptPaper,
    Neurobench,
}

impl Convention {
    pub const ALL: [Convention; 4] = [
        Convention::Full,
        Convention::EcoformerPaper,
        Convention::SpikegptPaper,
        Convention::Neurobench,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Convention::Full => "full",
            Convention::EcoformerPaper => "ecoformer-paper",
            Convention::SpikegptPaper => "spikegpt-paper",
            Convention::Neurobench => "neurobench",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Convention::Full => {
                "full: every executed action; MAC = mul + add, AC = add; nonlinear functions and compares kept apart"
            }
            Convention::EcoformerPaper => {
                "ecoformer-paper: EcoFormer get_energy.py rules (MAC = mul + add; kernel distances adds only; softmax, GELU, exp free; hash-side scalar work as the authors count it), as a view over the executed ledger"
            }
            Convention::SpikegptPaper => {
                "spikegpt-paper: SpikeGPT Table 1 rules (spike-fed projections and FFN as AC, WKV multiplies as MAC; LayerNorm, nonlinear functions, W_o, head, embedding and neurons left out), as a view over the executed ledger"
            }
            Convention::Neurobench => {
                "neurobench: NeuroBench synaptic operations (Effective_MACs = mul + add, Effective_ACs = add; bias, attention products, WKV, norms, neurons and nonlinear functions not hooked), as a view over the executed ledger"
            }
        }
    }

    /// The cost preset a convention is priced with unless told otherwise.
    pub fn default_hardware(self) -> &'static str {
        match self {
            Convention::Full => "horowitz45",
            Convention::EcoformerPaper | Convention::SpikegptPaper | Convention::Neurobench => {
                "paper45"
            }
        }
    }

    /// The cost model this convention's view is priced with; None for `full` (no view).
    pub fn view_hardware(self) -> crate::error::Result<Option<crate::hardware::Hardware>> {
        if self == Convention::Full {
            return Ok(None);
        }
        crate::hardware::Hardware::load(self.default_hardware()).map(Some)
    }
}

impl fmt::Display for Convention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Convention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Convention::ALL
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Convention::ALL.iter().map(|c| c.name()).collect();
                format!("unknown convention `{s}` (valid: {})", names.join(", "))
            })
    }
}

/// Written by name (`"ecoformer-paper"`), as on the command line.
impl serde::Serialize for Convention {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Convention {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The counting convention of the numbers in a report.
pub const CONVENTION_FULL: &str = "full: every executed action counted where it happens; MAC = mul + add and AC = add unless the cost model prices them directly";

/// Where a rule's line goes.
#[derive(Clone, Copy, Debug)]
enum Label {
    /// A fixed label.
    Named(&'static str),
    /// The layer's own path.
    Layer,
    /// Not counted by the convention.
    Free,
}

/// One rule: counts of `op` (any op when `None`) in layers whose path ends with `.{step}` (any
/// layer when `step` is empty) stand for `mul` multiplies and `add` adds each.
#[derive(Clone, Copy, Debug)]
struct Rule {
    step: &'static str,
    op: Option<Op>,
    mul: u64,
    add: u64,
    label: Label,
}

const fn r(step: &'static str, op: Option<Op>, mul: u64, add: u64, label: Label) -> Rule {
    Rule {
        step,
        op,
        mul,
        add,
        label,
    }
}

use Label::{Free, Layer, Named};

const FULL: &[Rule] = &[
    r("", Some(Op::Mac), 1, 1, Layer),
    r("", Some(Op::Mul), 1, 0, Layer),
    r("", Some(Op::Add), 0, 1, Layer),
    r("", Some(Op::Ac), 0, 1, Layer),
    r("", None, 0, 0, Free),
];

const KERNEL: Label = Named("RBF kernel vs m anchors");
const DEN: Label = Named("denominator");

const ECOFORMER_PAPER: &[Rule] = &[
    // softmax attention (msa_flops)
    r(step::SCORES, Some(Op::Mac), 1, 1, Named("q @ k^T")),
    r(step::SCALE, Some(Op::Mul), 1, 0, Named("scale")),
    r(step::SOFTMAX, None, 0, 0, Free),
    r(step::MIX, Some(Op::Mac), 1, 1, Named("attn @ v")),
    // hashing (fast_attn_ecoformer_flops)
    r(step::L2NORM, None, 0, 0, Free),
    r(step::DISTANCE, Some(Op::Add), 0, 1, KERNEL),
    r(step::DISTANCE, Some(Op::Mac), 0, 1, KERNEL),
    r(step::BANDWIDTH, None, 0, 0, Free),
    r(step::KERNEL, Some(Op::Mul), 1, 0, KERNEL),
    r(step::KERNEL, Some(Op::Exp), 1, 0, KERNEL),
    r(step::KERNEL, None, 0, 0, Free),
    r(
        step::PROJECT,
        Some(Op::Mac),
        1,
        1,
        Named("hash projection A"),
    ),
    r(step::SIGN, None, 0, 0, Free),
    // attention from codes
    r(
        step::CODE_SUM,
        Some(Op::Ac),
        0,
        1,
        Named("k_sum = sum of codes"),
    ),
    r(step::DENOMINATOR, Some(Op::Ac), 1, 1, DEN),
    r(step::DENOMINATOR, None, 0, 0, Free),
    r(step::CONTEXT, Some(Op::Ac), 0, 1, Named("context = H^T V")),
    r(
        step::NUMERATOR,
        Some(Op::Ac),
        0,
        1,
        Named("H context + bias"),
    ),
    r(
        step::NUMERATOR,
        Some(Op::Add),
        0,
        1,
        Named("H context + bias"),
    ),
    r(step::NUMERATOR, None, 0, 0, Free),
    r(step::DIVIDE, Some(Op::Div), 1, 0, DEN),
    r(
        step::DIVIDE,
        Some(Op::Mul),
        1,
        0,
        Named("divide by denominator"),
    ),
    // whole models (layers named with `model_step`): what mmcv 1.3.8's
    // `get_model_complexity_info` hooks. A LayerNorm is numel x 2 with an affine transform: the 2
    // per-element MACs of `layer_norm_rows`, not its row statistics; a Linear is in x out with no
    // bias; a Conv2d is its kernel taps plus one flop per output for the bias, which
    // `get_energy.py` counts as one mul and one add like every other flop; GELU, residual adds
    // and the mean pool (`x.mean`) are not hooked.
    r(model_step::NORM_STATS, None, 0, 0, Free),
    r(model_step::BIAS, None, 0, 0, Free),
    r(
        model_step::CONV_BIAS,
        Some(Op::Add),
        1,
        1,
        Named("conv bias (mmcv flops)"),
    ),
    r(model_step::CONV_BIAS, None, 0, 0, Free),
    r(model_step::GELU, None, 0, 0, Free),
    r(model_step::RESIDUAL, None, 0, 0, Free),
    r(model_step::MEAN_POOL, None, 0, 0, Free),
    // everything else (projections, norms, MLPs, linear attention): MAC = mul + add
    r("", Some(Op::Mac), 1, 1, Named("other MACs")),
    r("", Some(Op::Mul), 1, 0, Named("other multiplies")),
    r("", Some(Op::Add), 0, 1, Named("other adds")),
    r("", Some(Op::Ac), 0, 1, Named("other adds")),
    r("", None, 0, 0, Free),
];

const QKV: Label = Named("Q/R, K, V projections");
const WKV: Label = Named("f(Q/R, K, V): WKV / attention");
const FFN: Label = Named("FFN layers");

const SPIKEGPT_PAPER: &[Rule] = &[
    // SpikeGPT (spike-driven or reference forms)
    r("att.key", Some(Op::Ac), 0, 1, QKV),
    r("att.value", Some(Op::Ac), 0, 1, QKV),
    r("att.receptance", Some(Op::Ac), 0, 1, QKV),
    r("att.key", Some(Op::Mac), 1, 1, QKV),
    r("att.value", Some(Op::Mac), 1, 1, QKV),
    r("att.receptance", Some(Op::Mac), 1, 1, QKV),
    r("att.wkv", Some(Op::Mul), 1, 1, WKV),
    r("ffn.key", Some(Op::Ac), 0, 1, FFN),
    r("ffn.receptance", Some(Op::Ac), 0, 1, FFN),
    r("ffn.key", Some(Op::Mac), 1, 1, FFN),
    r("ffn.receptance", Some(Op::Mac), 1, 1, FFN),
    // The paper charges all FFN matrices as AC x firing rate.
    r("ffn.value", Some(Op::Mac), 0, 1, FFN),
    // Vanilla GPT (softmax transformer)
    r("att.q", Some(Op::Mac), 1, 1, QKV),
    r("att.k", Some(Op::Mac), 1, 1, QKV),
    r("att.v", Some(Op::Mac), 1, 1, QKV),
    r(step::SCORES, Some(Op::Mac), 1, 1, WKV),
    r(step::MIX, Some(Op::Mac), 1, 1, WKV),
    r(step::SCALE, Some(Op::Mul), 1, 1, Named("scale")),
    r(step::SOFTMAX, Some(Op::Exp), 1, 1, Named("softmax")),
    r("mlp.fc1", Some(Op::Mac), 1, 1, FFN),
    r("mlp.fc2", Some(Op::Mac), 1, 1, FFN),
    r("", None, 0, 0, Free),
];

const NEUROBENCH: &[Rule] = &[
    r("", Some(Op::EffectiveMac), 1, 1, Named("Effective_MACs")),
    r("", Some(Op::EffectiveAc), 0, 1, Named("Effective_ACs")),
    r("", None, 0, 0, Free),
];

fn rules(c: Convention) -> &'static [Rule] {
    match c {
        Convention::Full => FULL,
        Convention::EcoformerPaper => ECOFORMER_PAPER,
        Convention::SpikegptPaper => SPIKEGPT_PAPER,
        Convention::Neurobench => NEUROBENCH,
    }
}

/// The layers a paper convention is defined on (path suffixes, as the rules match them), and
/// what kind of model that is. `full` applies to every run.
fn anchors(c: Convention) -> (&'static [&'static str], &'static str) {
    match c {
        Convention::Full => (&[], ""),
        Convention::EcoformerPaper => (
            &[step::SCORES, step::CODE_SUM, step::STATE_UPDATE],
            "EcoFormer's get_energy.py counts attention models (softmax, linear or hashed attention cores); this run has no attention core",
        ),
        Convention::SpikegptPaper => (
            &["att.wkv", "att.q"],
            "SpikeGPT's Table 1 counts SpikeGPT (R/K/V and WKV) and vanilla GPT (Q/K/V and softmax attention) blocks; this run has neither",
        ),
        Convention::Neurobench => (
            &[],
            "NeuroBench counts connection layers (Linear, Conv, recurrent cells); this run has none",
        ),
    }
}

/// Whether `convention` describes the run that produced `ledger`: Err with the reason when it
/// does not (a paper convention on a model the paper does not count).
pub fn applies(convention: Convention, ledger: &Ledger) -> std::result::Result<(), String> {
    let (anchor, why) = anchors(convention);
    let ok = match convention {
        Convention::Full => true,
        Convention::Neurobench => {
            let t = ledger.totals();
            ledger.layers().next().is_none()
                || t.op_total(Op::EffectiveMac)
                    + t.op_total(Op::EffectiveAc)
                    + t.op_total(Op::DenseSynop)
                    > 0
        }
        _ => ledger.layers().any(|(layer, _)| {
            anchor.iter().any(|a| {
                let rule = r(a, None, 0, 0, Free);
                matches(&rule, layer, Op::Add)
            })
        }),
    };
    if ok { Ok(()) } else { Err(why.to_string()) }
}

/// One labelled line of a view.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Line {
    pub label: String,
    pub mul: u64,
    pub add: u64,
}

/// A ledger seen through a convention.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct View {
    pub convention: String,
    pub lines: Vec<Line>,
    /// Measured compute and nonlinear counts the convention does not count, by action
    /// (`op.format`).
    pub free: BTreeMap<String, u64>,
}

impl View {
    pub fn mul(&self) -> u64 {
        self.lines.iter().map(|l| l.mul).sum()
    }

    pub fn add(&self) -> u64 {
        self.lines.iter().map(|l| l.add).sum()
    }

    /// The view as a ledger (one layer per line, fp32 mul and add counts) to price it.
    pub fn to_ledger(&self, fmt: Fmt) -> Ledger {
        let mut l = Ledger::new();
        for line in &self.lines {
            let id = l.layer(&line.label);
            l.at(id).add(Op::Mul, fmt, line.mul);
            l.at(id).add(Op::Add, fmt, line.add);
        }
        l
    }
}

fn matches(rule: &Rule, layer: &str, op: Op) -> bool {
    let step_ok = rule.step.is_empty()
        || layer == rule.step
        || (layer.ends_with(rule.step) && layer[..layer.len() - rule.step.len()].ends_with('.'));
    step_ok && rule.op.is_none_or(|o| o == op)
}

/// Apply a convention to a ledger. Memory traffic and metrics are not part of any (mul, add) view.
pub fn apply(convention: Convention, ledger: &Ledger) -> View {
    let mut lines: Vec<Line> = Vec::new();
    let mut free = BTreeMap::new();
    for (layer, counts) in ledger.layers() {
        for (key, &n) in counts.iter() {
            let metric = key.op.kind() == OpKind::Metric;
            if !metric
                && !matches!(
                    key.op.kind(),
                    OpKind::Compute | OpKind::Nonlinear | OpKind::Neuron
                )
            {
                continue;
            }
            let Some(rule) = rules(convention).iter().find(|r| matches(r, layer, key.op)) else {
                if !metric {
                    *free.entry(key.to_string()).or_insert(0) += n;
                }
                continue;
            };
            // Metric counts describe work counted elsewhere: a view takes one only when a rule
            // names it.
            if metric && (rule.op != Some(key.op) || matches!(rule.label, Free)) {
                continue;
            }
            let label = match rule.label {
                Named(s) => s.to_string(),
                Layer => layer.to_string(),
                Free => {
                    *free.entry(key.to_string()).or_insert(0) += n;
                    continue;
                }
            };
            match lines.iter_mut().find(|l| l.label == label) {
                Some(l) => {
                    l.mul += n * rule.mul;
                    l.add += n * rule.add;
                }
                None => lines.push(Line {
                    label,
                    mul: n * rule.mul,
                    add: n * rule.add,
                }),
            }
        }
    }
    View {
        convention: convention.name().to_string(),
        lines,
        free,
    }
}

/// `apply` with fp32 pricing format (the format the paper conventions assume).
pub fn priced_ledger(convention: Convention, ledger: &Ledger) -> Ledger {
    apply(convention, ledger).to_ledger(FP32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_rules_match_whole_path_segments_only() {
        let r = r(step::SCALE, None, 1, 0, Free);
        assert!(matches(&r, "blocks.0.att.core.scale", Op::Mul));
        assert!(matches(&r, "scale", Op::Mul));
        assert!(!matches(&r, "blocks.0.att.core.rescale", Op::Mul));
    }

    #[test]
    fn neurobench_view_takes_the_effective_metric_counts_only() {
        let mut l = Ledger::new();
        let id = l.layer("0.linear");
        l.at(id).add(Op::Mac, FP32, 9);
        l.at(id).add(Op::EffectiveMac, FP32, 7);
        l.at(id).add(Op::EffectiveAc, FP32, 2);
        l.at(id).add(Op::DenseSynop, FP32, 12);
        let v = apply(Convention::Neurobench, &l);
        assert_eq!((v.mul(), v.add()), (7, 9));
        // The executed MACs are left out (listed), the other metric counts are not work.
        assert_eq!(v.free["mac.fp32"], 9);
        assert!(!v.free.contains_key("dense_synop.fp32"));
        // Other views never take metric counts.
        let f = apply(Convention::Full, &l);
        assert_eq!((f.mul(), f.add()), (9, 9));
    }

    #[test]
    fn a_paper_convention_applies_only_where_its_layers_ran() {
        let mut l = Ledger::new();
        let id = l.layer("0.linear");
        l.at(id).add(Op::Mac, FP32, 4);
        assert!(applies(Convention::Full, &l).is_ok());
        assert!(applies(Convention::SpikegptPaper, &l).is_err());
        assert!(applies(Convention::EcoformerPaper, &l).is_err());
        assert!(applies(Convention::Neurobench, &l).is_err());
        l.at(id).add(Op::EffectiveMac, FP32, 4);
        assert!(applies(Convention::Neurobench, &l).is_ok());
        l.layer("blocks.0.att.wkv");
        assert!(applies(Convention::SpikegptPaper, &l).is_ok());
        l.layer("blocks.0.att.core.scores");
        assert!(applies(Convention::EcoformerPaper, &l).is_ok());
    }

    #[test]
    fn conventions_read_and_write_by_name() {
        for c in Convention::ALL {
            assert_eq!(c.name().parse::<Convention>(), Ok(c));
            let s = ron::to_string(&c).unwrap();
            assert_eq!(ron::from_str::<Convention>(&s).unwrap(), c);
        }
        assert!("paper".parse::<Convention>().is_err());
    }

    #[test]
    fn full_view_counts_a_mac_as_one_mul_and_one_add() {
        let mut l = Ledger::new();
        let id = l.layer("x");
        l.at(id).add(Op::Mac, FP32, 5);
        l.at(id).add(Op::Ac, FP32, 2);
        l.at(id).add(Op::Exp, FP32, 3);
        let v = apply(Convention::Full, &l);
        assert_eq!((v.mul(), v.add()), (5, 7));
        assert_eq!(v.free["exp.fp32"], 3);
    }
}
