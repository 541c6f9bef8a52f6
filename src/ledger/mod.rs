//! The action vocabulary and the per-layer action counts.
//!
//! The ledger is the only place counts are stored. Engine primitives add to it where the work
//! happens; pricing and reports read it. It serialises to JSON and can be priced again later
//! with another cost model (`picojoule price`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod reuse;
pub mod work;
pub use reuse::Reuse;
pub use work::Work;

use std::sync::{Arc, Mutex};

/// What happened. Compute and memory actions carry a number format; memory actions count bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Multiply-accumulate: a product added into an accumulator (dot products).
    Mac,
    /// Accumulate only: a weight (or a +-1 coded value) added into an accumulator.
    Ac,
    /// Element-wise multiply.
    Mul,
    /// Element-wise add or subtract.
    Add,
    /// L-Mul: a float multiply replaced by one integer add of width e + m.
    Lmul,
    /// Compare (threshold, max).
    Cmp,
    Exp,
    Sigmoid,
    Div,
    Sqrt,
    Tanh,
    Log,
    /// One update of one neuron's membrane (its arithmetic is priced as a compound action).
    NeuronUpdate,
    /// Spikes emitted (metric).
    Spike,
    /// Synaptic events delivered = spikes x fan-out (metric; the work is counted as `ac`).
    Synop,
    /// Synaptic operations of the dense layer, zeros included (NeuroBench `Dense`; metric).
    DenseSynop,
    /// Neuron updates that changed the membrane potential (NeuroBench `MembraneUpdates`; metric).
    MembraneChange,
    /// Multiply-accumulates with a non-zero real input, whatever the arithmetic (NeuroBench
    /// `Effective_MACs`; metric).
    EffectiveMac,
    /// Synaptic operations of a layer whose input is all in {-1, 0, 1}, zero weights excluded
    /// (NeuroBench `Effective_ACs`; metric).
    EffectiveAc,
    /// Outputs of activation functions and neurons (metric, for activation sparsity).
    ActOut,
    /// Non-zero outputs of activation functions and neurons (metric).
    ActNonzero,
    /// Bytes read from memory.
    Read,
    /// Bytes written to memory.
    Write,
}

/// How an action is treated by pricing and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Arithmetic work: must be priced, or reported as unpriced.
    Compute,
    /// Nonlinear function evaluations, by name: must be priced, or reported as unpriced.
    Nonlinear,
    /// Neuron dynamics: must be priced, or reported as unpriced.
    Neuron,
    /// Counts that describe work already counted elsewhere; priced only if a cost model asks.
    Metric,
    /// Memory traffic in bytes.
    Memory,
}

impl Op {
    pub const ALL: [Op; 23] = [
        Op::Mac,
        Op::Ac,
        Op::Mul,
        Op::Add,
        Op::Lmul,
        Op::Cmp,
        Op::Exp,
        Op::Sigmoid,
        Op::Div,
        Op::Sqrt,
        Op::Tanh,
        Op::Log,
        Op::NeuronUpdate,
        Op::Spike,
        Op::Synop,
        Op::DenseSynop,
        Op::MembraneChange,
        Op::EffectiveMac,
        Op::EffectiveAc,
        Op::ActOut,
        Op::ActNonzero,
        Op::Read,
        Op::Write,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Mac => "mac",
            Op::Ac => "ac",
            Op::Mul => "mul",
            Op::Add => "add",
            Op::Lmul => "lmul",
            Op::Cmp => "cmp",
            Op::Exp => "exp",
            Op::Sigmoid => "sigmoid",
            Op::Div => "div",
            Op::Sqrt => "sqrt",
            Op::Tanh => "tanh",
            Op::Log => "log",
            Op::NeuronUpdate => "neuron_update",
            Op::Spike => "spike",
            Op::Synop => "synop",
            Op::DenseSynop => "dense_synop",
            Op::MembraneChange => "membrane_change",
            Op::EffectiveMac => "effective_mac",
            Op::EffectiveAc => "effective_ac",
            Op::ActOut => "act_out",
            Op::ActNonzero => "act_nonzero",
            Op::Read => "read",
            Op::Write => "write",
        }
    }

    pub fn kind(self) -> OpKind {
        match self {
            Op::Mac | Op::Ac | Op::Mul | Op::Add | Op::Lmul | Op::Cmp => OpKind::Compute,
            Op::Exp | Op::Sigmoid | Op::Div | Op::Sqrt | Op::Tanh | Op::Log => OpKind::Nonlinear,
            Op::NeuronUpdate => OpKind::Neuron,
            Op::Spike
            | Op::Synop
            | Op::DenseSynop
            | Op::MembraneChange
            | Op::EffectiveMac
            | Op::EffectiveAc
            | Op::ActOut
            | Op::ActNonzero => OpKind::Metric,
            Op::Read | Op::Write => OpKind::Memory,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .iter()
            .copied()
            .find(|op| op.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
                format!("unknown action `{s}` (valid: {})", names.join(", "))
            })
    }
}

/// A number format label: floating point ExMy or integer of some width.
///
/// This is the label the ledger and the cost model agree on; bit-level behaviour lives in
/// `numerics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fmt {
    Float {
        e: u8,
        m: u8,
    },
    Int {
        bits: u8,
    },
    /// Matches every format (cost model entries only).
    Any,
}

pub const FP32: Fmt = Fmt::Float { e: 8, m: 23 };
pub const FP16: Fmt = Fmt::Float { e: 5, m: 10 };
pub const BF16: Fmt = Fmt::Float { e: 8, m: 7 };
pub const INT8: Fmt = Fmt::Int { bits: 8 };
pub const INT32: Fmt = Fmt::Int { bits: 32 };

impl Fmt {
    /// Storage width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Fmt::Float { e, m } => 1 + e as u32 + m as u32,
            Fmt::Int { bits } => bits as u32,
            Fmt::Any => 0,
        }
    }

    /// Storage width in bytes, rounded up (a 12-bit value occupies 2 bytes in byte-addressed memory).
    pub fn bytes(self) -> u64 {
        (self.bits() as u64).div_ceil(8)
    }
}

impl fmt::Display for Fmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fmt::Float { e: 8, m: 23 } => f.write_str("fp32"),
            Fmt::Float { e: 5, m: 10 } => f.write_str("fp16"),
            Fmt::Float { e: 8, m: 7 } => f.write_str("bf16"),
            Fmt::Float { e: 4, m: 3 } => f.write_str("fp8-e4m3"),
            Fmt::Float { e: 5, m: 2 } => f.write_str("fp8-e5m2"),
            Fmt::Float { e, m } => write!(f, "e{e}m{m}"),
            Fmt::Int { bits } => write!(f, "int{bits}"),
            Fmt::Any => f.write_str("any"),
        }
    }
}

impl FromStr for Fmt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "unknown number format `{s}` (valid: fp32, fp16, bf16, fp8-e4m3, fp8-e5m2, eXmY, intN, any)"
            )
        };
        Ok(match s {
            "fp32" => FP32,
            "fp16" => FP16,
            "bf16" => BF16,
            "fp8-e4m3" => Fmt::Float { e: 4, m: 3 },
            "fp8-e5m2" => Fmt::Float { e: 5, m: 2 },
            "any" => Fmt::Any,
            _ => {
                if let Some(rest) = s.strip_prefix("int") {
                    let bits: u8 = rest.parse().map_err(|_| bad())?;
                    if bits == 0 || bits > 64 {
                        return Err(bad());
                    }
                    Fmt::Int { bits }
                } else if let Some(rest) = s.strip_prefix('e') {
                    let (e, m) = rest.split_once('m').ok_or_else(bad)?;
                    let e: u8 = e.parse().map_err(|_| bad())?;
                    let m: u8 = m.parse().map_err(|_| bad())?;
                    if !(1..=11).contains(&e) || m > 52 {
                        return Err(bad());
                    }
                    Fmt::Float { e, m }
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

impl Serialize for Fmt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fmt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Which tensor a memory action moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TensorClass {
    /// Trained parameters.
    Weight,
    /// Neuron state: membrane potentials.
    Neuron,
    /// Recurrent state: WKV numerator/denominator, token-shift buffers, attention running sums.
    State,
    /// Activations passed between layers.
    Activation,
    /// Spike events as addresses (address-event representation).
    Event,
}

impl TensorClass {
    pub const ALL: [TensorClass; 5] = [
        TensorClass::Weight,
        TensorClass::Neuron,
        TensorClass::State,
        TensorClass::Activation,
        TensorClass::Event,
    ];
    pub fn name(self) -> &'static str {
        match self {
            TensorClass::Weight => "weight",
            TensorClass::Neuron => "neuron",
            TensorClass::State => "state",
            TensorClass::Activation => "activation",
            TensorClass::Event => "event",
        }
    }
}

/// One kind of action: operation, number format, and (for memory) tensor class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionKey {
    pub op: Op,
    pub fmt: Fmt,
    pub class: Option<TensorClass>,
}

impl ActionKey {
    pub fn new(op: Op, fmt: Fmt) -> Self {
        ActionKey {
            op,
            fmt,
            class: None,
        }
    }
    pub fn mem(op: Op, fmt: Fmt, class: TensorClass) -> Self {
        ActionKey {
            op,
            fmt,
            class: Some(class),
        }
    }
}

impl fmt::Display for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            Some(c) => write!(f, "{}.{}.{}", self.op, c.name(), self.fmt),
            None => write!(f, "{}.{}", self.op, self.fmt),
        }
    }
}

/// The counts of one layer, keyed by action. The second field is true when this layer does not
/// count (a ledger made by `Ledger::uncounted`, to measure what counting costs); the third holds
/// the reuse distances of the weight rows it read, the fourth the run's LRU trace it files them
/// from, and the fifth the passes (shapes and how many) whose traffic a loop-nest mapping prices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts(
    pub BTreeMap<ActionKey, u64>,
    bool,
    pub Reuse,
    Tracer,
    pub BTreeMap<Work, u64>,
);

/// A layer's handle on the LRU trace of its ledger (none for a layer outside a ledger).
#[derive(Clone, Default)]
struct Tracer(Option<(Arc<Mutex<reuse::Lru>>, LayerId)>);

impl PartialEq for Tracer {
    /// The trace is how distances were measured, not part of what a layer counted.
    fn eq(&self, _: &Tracer) -> bool {
        true
    }
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tracer")
    }
}

impl Counts {
    #[inline]
    pub fn add(&mut self, op: Op, fmt: Fmt, n: u64) {
        if n != 0 && !self.1 {
            *self.0.entry(ActionKey::new(op, fmt)).or_insert(0) += n;
        }
    }

    /// Record `bytes` of memory traffic.
    #[inline]
    pub fn mem(&mut self, op: Op, fmt: Fmt, class: TensorClass, bytes: u64) {
        if bytes != 0 && !self.1 {
            *self.0.entry(ActionKey::mem(op, fmt, class)).or_insert(0) += bytes;
        }
    }

    /// File one pass of `work`, after its traffic was counted with `mem` (see `Work::traffic`).
    #[inline]
    pub fn pass(&mut self, work: Work) {
        if !self.1 {
            *self.4.entry(work).or_insert(0) += 1;
        }
    }

    /// Map every `batch` passes of one matrix-product or convolution shape as one pass over all
    /// their rows or images: a batch of samples through this layer, whose weights a mapping may
    /// then read once per batch (the counted traffic, linear in the rows and images, is
    /// unchanged). Passes that do not fill a batch form one smaller pass; attention passes, whose
    /// operands are per sample, keep their count.
    pub fn batch_passes(&mut self, batch: u64) {
        if batch <= 1 {
            return;
        }
        for (w, times) in std::mem::take(&mut self.4) {
            let mut file = |w: Work, n: u64| *self.4.entry(w).or_insert(0) += n;
            let (full, rest) = (times / batch, times % batch);
            match (w.batched(batch), w.batched(rest)) {
                (Some(whole), Some(part)) => {
                    if full > 0 {
                        file(whole, full);
                    }
                    if rest > 0 {
                        file(part, 1);
                    }
                }
                _ => file(w, times),
            }
        }
    }

    /// File the LRU distances of `times` reads of the whole weight vector `w` (its address tells
    /// it apart from other vectors read under this layer), `bytes` each.
    #[inline]
    pub fn weight_vector(&mut self, w: &[f32], bytes: u64, times: usize) {
        if self.1 || bytes == 0 || times == 0 {
            return;
        }
        if let Some((lru, layer)) = &self.3.0 {
            let mut lru = lru.lock().unwrap_or_else(|e| e.into_inner());
            lru.read_vector(*layer, w.as_ptr() as usize, bytes, times, &mut self.2);
        }
    }

    /// File the LRU distances of weight rows read, in the order read (`n_rows`: the layer's
    /// rows; `row_bytes`: bytes per row). The bytes themselves are counted by `mem`.
    #[inline]
    pub fn weight_rows(&mut self, n_rows: usize, rows: impl Iterator<Item = u32>, row_bytes: u64) {
        if self.1 || row_bytes == 0 {
            return;
        }
        if let Some((lru, layer)) = &self.3.0 {
            let mut lru = lru.lock().unwrap_or_else(|e| e.into_inner());
            lru.read_rows(*layer, n_rows as u32, rows, row_bytes, &mut self.2);
        }
    }

    /// Sum of the counts of `op`, over all formats and classes.
    pub fn op_total(&self, op: Op) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.op == op)
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn merge(&mut self, other: &Counts) {
        for (k, v) in &other.0 {
            *self.0.entry(*k).or_insert(0) += v;
        }
        self.2.merge(&other.2);
        for (w, n) in &other.4 {
            *self.4.entry(*w).or_insert(0) += n;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ActionKey, &u64)> {
        self.0.iter()
    }
}

/// Index of a layer in a ledger.
pub type LayerId = usize;

/// Action counts per layer path (e.g. `blocks.3.att.key`), in the order layers were registered.
#[derive(Debug, Default, PartialEq)]
pub struct Ledger {
    names: Vec<String>,
    counts: Vec<Counts>,
    /// Bytes resident per tensor class (what memory placement needs to choose a level).
    pub footprint: BTreeMap<TensorClass, u64>,
    /// Per layer, classes whose live bytes while that layer runs are known to be fewer than the
    /// network's (e.g. the two activation tensors of a LayerNorm): the layer's actions of that
    /// class are placed by these.
    layer_footprint: BTreeMap<LayerId, BTreeMap<TensorClass, u64>>,
    /// True for a ledger that records nothing (see `uncounted`).
    uncounted: bool,
    /// One LRU stack over the weight rows of all layers (shared by their `Counts`).
    lru: LruHandle,
}

#[derive(Default)]
struct LruHandle(Arc<Mutex<reuse::Lru>>);

impl PartialEq for LruHandle {
    fn eq(&self, _: &LruHandle) -> bool {
        true
    }
}

impl fmt::Debug for LruHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lru")
    }
}

impl Clone for Ledger {
    /// A clone continues with its own copy of the trace, so runs cloned from one template never
    /// share an LRU stack.
    fn clone(&self) -> Ledger {
        let lru = self.lru.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let lru = Arc::new(Mutex::new(lru));
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(id, c)| {
                Counts(
                    c.0.clone(),
                    c.1,
                    c.2.clone(),
                    Tracer(Some((lru.clone(), id))),
                    c.4.clone(),
                )
            })
            .collect();
        Ledger {
            names: self.names.clone(),
            counts,
            footprint: self.footprint.clone(),
            layer_footprint: self.layer_footprint.clone(),
            uncounted: self.uncounted,
            lru: LruHandle(lru),
        }
    }
}

impl Ledger {
    pub fn new() -> Self {
        Ledger::default()
    }

    /// A ledger whose layers record nothing. Only for measuring what counting costs
    /// (`cargo bench --bench perf`): the same run into it leaves every count empty.
    pub fn uncounted() -> Self {
        Ledger {
            uncounted: true,
            ..Ledger::default()
        }
    }

    /// Switch counting off (or back on) for this ledger and every layer registered in it.
    pub fn set_counting(&mut self, on: bool) {
        self.uncounted = !on;
        for c in &mut self.counts {
            c.1 = !on;
        }
    }

    /// Switch the LRU trace of weight reads off (or back on) for every layer registered so far;
    /// only for measuring what tracing costs (`cargo bench --bench perf`).
    pub fn set_tracing(&mut self, on: bool) {
        for (id, c) in self.counts.iter_mut().enumerate() {
            c.3 = Tracer(on.then(|| (self.lru.0.clone(), id)));
        }
    }

    /// [`Counts::batch_passes`] for every layer: a run's samples mapped `batch` at a time.
    pub fn batch_passes(&mut self, batch: u64) {
        for c in &mut self.counts {
            c.batch_passes(batch);
        }
    }

    /// Register a layer path and return its id; registering a name twice returns the same id.
    pub fn layer(&mut self, name: &str) -> LayerId {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i;
        }
        self.names.push(name.to_string());
        let id = self.names.len() - 1;
        let tracer = Tracer(Some((self.lru.0.clone(), id)));
        self.counts.push(Counts(
            BTreeMap::new(),
            self.uncounted,
            Reuse::default(),
            tracer,
            BTreeMap::new(),
        ));
        self.names.len() - 1
    }

    /// Declare the bytes of `class` live while layer `id` runs (fewer than the network's).
    pub fn set_layer_footprint(&mut self, id: LayerId, class: TensorClass, bytes: u64) {
        self.layer_footprint
            .entry(id)
            .or_default()
            .insert(class, bytes);
    }

    /// Scale every footprint, the network's and the layers' (operand bytes per element).
    pub fn scale_footprints(&mut self, k: u64) {
        let layers = self
            .layer_footprint
            .values_mut()
            .flat_map(|m| m.values_mut());
        for v in self.footprint.values_mut().chain(layers) {
            *v = v.saturating_mul(k);
        }
    }

    /// The footprint placement uses for layer `id`: the network's, with the classes the layer
    /// declares replaced by its own.
    pub fn footprint_at(&self, id: LayerId) -> std::borrow::Cow<'_, BTreeMap<TensorClass, u64>> {
        match self.layer_footprint.get(&id) {
            None => std::borrow::Cow::Borrowed(&self.footprint),
            Some(own) => {
                let mut f = self.footprint.clone();
                f.extend(own.iter().map(|(c, v)| (*c, *v)));
                std::borrow::Cow::Owned(f)
            }
        }
    }

    #[inline]
    pub fn at(&mut self, id: LayerId) -> &mut Counts {
        &mut self.counts[id]
    }

    pub fn get(&self, id: LayerId) -> &Counts {
        &self.counts[id]
    }

    pub fn layers(&self) -> impl Iterator<Item = (&str, &Counts)> {
        self.names
            .iter()
            .map(|s| s.as_str())
            .zip(self.counts.iter())
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Counts summed over every layer.
    pub fn totals(&self) -> Counts {
        let mut t = Counts::default();
        for c in &self.counts {
            t.merge(c);
        }
        t
    }

    /// Counts summed over layers whose path starts with `prefix` followed by `.` or the end.
    pub fn subtree(&self, prefix: &str) -> Counts {
        let mut t = Counts::default();
        for (name, c) in self.layers() {
            if name == prefix || name.starts_with(&format!("{prefix}.")) {
                t.merge(c);
            }
        }
        t
    }
}

/// The serialised form: a list of layers, each with a list of `{op, format, class, count}`.
#[derive(Serialize, Deserialize)]
struct LedgerFile {
    #[serde(default)]
    footprint: BTreeMap<TensorClass, u64>,
    layers: Vec<LayerFile>,
}

#[derive(Serialize, Deserialize)]
struct LayerFile {
    name: String,
    counts: Vec<CountEntry>,
    /// LRU stack distances of the weight rows read (bytes by distance).
    #[serde(default, skip_serializing_if = "Reuse::is_empty")]
    reuse: Reuse,
    /// Passes priced by a loop-nest mapping, with how many of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    passes: Vec<(Work, u64)>,
    /// Live bytes per class while this layer runs, where fewer than the network's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    footprint: BTreeMap<TensorClass, u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountEntry {
    op: Op,
    format: Fmt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    class: Option<TensorClass>,
    count: u64,
}

impl Serialize for Ledger {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let file = LedgerFile {
            footprint: self.footprint.clone(),
            layers: self
                .layers()
                .enumerate()
                .map(|(id, (name, c))| LayerFile {
                    footprint: self.layer_footprint.get(&id).cloned().unwrap_or_default(),
                    name: name.to_string(),
                    counts: c
                        .iter()
                        .map(|(k, v)| CountEntry {
                            op: k.op,
                            format: k.fmt,
                            class: k.class,
                            count: *v,
                        })
                        .collect(),
                    reuse: c.2.clone(),
                    passes: c.4.iter().map(|(w, n)| (*w, *n)).collect(),
                })
                .collect(),
        };
        file.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ledger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = LedgerFile::deserialize(d)?;
        let mut ledger = Ledger::new();
        ledger.footprint = file.footprint;
        for layer in file.layers {
            let id = ledger.layer(&layer.name);
            for (class, bytes) in &layer.footprint {
                ledger.set_layer_footprint(id, *class, *bytes);
            }
            for e in layer.counts {
                let key = ActionKey {
                    op: e.op,
                    fmt: e.format,
                    class: e.class,
                };
                let is_mem = e.op.kind() == OpKind::Memory;
                if is_mem != e.class.is_some() {
                    return Err(serde::de::Error::custom(format!(
                        "layer `{}`: action `{}` {} a tensor class",
                        layer.name,
                        e.op,
                        if is_mem { "needs" } else { "takes no" }
                    )));
                }
                let n = ledger.at(id).0.entry(key).or_insert(0);
                *n = n.checked_add(e.count).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "layer `{}`: the counts of `{key}` overflow a 64-bit total",
                        layer.name
                    ))
                })?;
            }
            let read: u64 = ledger
                .get(id)
                .iter()
                .filter(|(k, _)| k.op == Op::Read && k.class == Some(TensorClass::Weight))
                .map(|(_, v)| *v)
                .sum();
            let traced = layer
                .reuse
                .by_distance
                .values()
                .try_fold(layer.reuse.cold, |a, b| a.checked_add(*b));
            if traced.is_none_or(|t| t > read) {
                return Err(serde::de::Error::custom(format!(
                    "layer `{}`: its reuse distances cover more bytes than the {read} weight bytes it read",
                    layer.name
                )));
            }
            ledger.at(id).2.merge(&layer.reuse);
            for (w, n) in layer.passes {
                w.validate().map_err(|e| {
                    serde::de::Error::custom(format!("layer `{}`: {e}", layer.name))
                })?;
                let c = ledger.at(id).4.entry(w).or_insert(0);
                *c = c.checked_add(n).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "layer `{}`: the passes of {w:?} overflow a 64-bit total",
                        layer.name
                    ))
                })?;
            }
        }
        Ok(ledger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_merges_matrix_products_and_leaves_a_smaller_remainder() {
        let mut c = Counts::default();
        let mm = |n| Work::Matmul {
            n,
            c: 8,
            k: 4,
            bytes: 4,
        };
        let att = Work::Attention {
            heads: 1,
            n: 16,
            m: 16,
            c: 8,
            bytes: 4,
        };
        for _ in 0..7 {
            c.pass(mm(16));
            c.pass(att);
        }
        c.batch_passes(3);
        // Seven passes of 16 rows: two batches of three (48 rows) and one of one; attention stays.
        let got: Vec<(Work, u64)> = c.4.iter().map(|(w, n)| (*w, *n)).collect();
        assert_eq!(got, vec![(mm(16), 1), (mm(48), 2), (att, 7)]);
        let traffic = |c: &Counts| -> u64 {
            c.4.iter()
                .filter(|(w, _)| matches!(w, Work::Matmul { .. }))
                .map(|(w, n)| n * w.traffic().iter().map(|t| t.2).sum::<u64>())
                .sum()
        };
        let mut one = Counts::default();
        for _ in 0..7 {
            one.pass(mm(16));
        }
        assert_eq!(traffic(&c), traffic(&one));
    }

    #[test]
    fn a_batch_merges_convolutions_into_passes_over_several_images() {
        let conv = |n| Work::Conv {
            groups: 1,
            c: 3,
            k: 8,
            h: 16,
            w: 16,
            r: 3,
            s: 3,
            sh: 1,
            sw: 1,
            ph: 1,
            pw: 1,
            bytes: 4,
            n,
        };
        let mut c = Counts::default();
        for _ in 0..5 {
            c.pass(conv(1));
        }
        c.batch_passes(2);
        let got: Vec<(Work, u64)> = c.4.iter().map(|(w, n)| (*w, *n)).collect();
        assert_eq!(got, vec![(conv(1), 1), (conv(2), 2)]);
        // The counted traffic is linear in the images: two passes of two and one of one carry
        // what five passes of one did.
        let bytes = |w: Work| w.traffic().iter().map(|t| t.2).sum::<u64>();
        assert_eq!(2 * bytes(conv(2)) + bytes(conv(1)), 5 * bytes(conv(1)));
        assert_eq!(conv(2).macs(), 2 * conv(1).macs());
        // A ledger written before the field existed reads as one image.
        let old = r#"{"conv":{"groups":1,"c":3,"k":8,"h":16,"w":16,"r":3,"s":3,"sh":1,"sw":1,"ph":1,"pw":1,"bytes":4}}"#;
        assert_eq!(serde_json::from_str::<Work>(old).unwrap(), conv(1));
        assert_eq!(serde_json::to_string(&conv(1)).unwrap(), old);
    }

    #[test]
    fn formats_round_trip_through_their_names() {
        for s in [
            "fp32", "fp16", "bf16", "fp8-e4m3", "fp8-e5m2", "e3m4", "int8", "int32", "int12",
        ] {
            let f: Fmt = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert!("fp33".parse::<Fmt>().is_err());
        assert_eq!("e8m7".parse::<Fmt>().unwrap(), BF16);
    }

    #[test]
    fn ledger_serialises_and_reads_back_identically() {
        let mut l = Ledger::new();
        let a = l.layer("blocks.0.att.key");
        l.at(a).add(Op::Mac, FP32, 12);
        l.at(a).mem(Op::Read, FP32, TensorClass::Weight, 48);
        let b = l.layer("head");
        l.at(b).add(Op::Ac, FP16, 3);
        l.footprint.insert(TensorClass::Weight, 1024);
        l.set_layer_footprint(b, TensorClass::Activation, 40);
        let json = serde_json::to_string(&l).unwrap();
        let back: Ledger = serde_json::from_str(&json).unwrap();
        assert_eq!(back, l);
        assert_eq!(
            back.footprint_at(b).get(&TensorClass::Activation),
            Some(&40)
        );
        assert_eq!(back.footprint_at(a).get(&TensorClass::Activation), None);
    }

    #[test]
    fn a_layers_own_footprint_replaces_the_networks_for_its_classes_only() {
        let mut l = Ledger::new();
        let a = l.layer("norm");
        let b = l.layer("mlp");
        l.footprint.insert(TensorClass::Weight, 1000);
        l.footprint.insert(TensorClass::Activation, 5000);
        l.set_layer_footprint(a, TensorClass::Activation, 200);
        l.scale_footprints(4);
        let fa = l.footprint_at(a);
        assert_eq!(fa[&TensorClass::Activation], 800);
        assert_eq!(fa[&TensorClass::Weight], 4000);
        assert_eq!(l.footprint_at(b)[&TensorClass::Activation], 20_000);
    }

    #[test]
    fn subtree_sums_only_matching_paths() {
        let mut l = Ledger::new();
        let a = l.layer("blocks.1.att");
        let b = l.layer("blocks.10.att");
        l.at(a).add(Op::Mac, FP32, 1);
        l.at(b).add(Op::Mac, FP32, 5);
        assert_eq!(l.subtree("blocks.1").op_total(Op::Mac), 1);
        assert_eq!(l.totals().op_total(Op::Mac), 6);
    }

    #[test]
    fn memory_entries_need_a_class() {
        let json =
            r#"{"layers":[{"name":"x","counts":[{"op":"read","format":"fp32","count":4}]}]}"#;
        let err = serde_json::from_str::<Ledger>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a tensor class"), "{err}");
    }
}
