//! The arithmetic mode: one value passed to every primitive, so a model never branches on it.
//!
//! A mode says how multiplies and accumulations are carried out (exact fp32, rounded into a
//! narrower float format, or L-Mul), and a scope says which layer classes it applies to (all,
//! only projections, only the token-mixing/attention arithmetic, or both of those: every tensor
//! product). Each primitive asks for the mode at its own site with [`Arith::at`], so models pass
//! one `&Arith` everywhere.

use serde::{Deserialize, Serialize};

pub use super::isa::Isa;
use crate::ledger::{Counts, FP32, Fmt, Op};
use crate::numerics::FloatFormat;
use crate::numerics::lmul::{LmulPolicy, lmul_f32};

mod prepared;

pub use prepared::{Prepared, set_scalar_rows};

/// How multiplies and accumulations are carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// IEEE fp32 throughout.
    Exact,
    /// Operands and products rounded to nearest even into `format`; every accumulation rounded
    /// into `acc`.
    Round {
        format: FloatFormat,
        acc: FloatFormat,
    },
    /// Each multiply is an L-Mul in `format` (one integer add of width e + m on the bit
    /// patterns); accumulation in `acc`. `fold_weight_offset`: the L-Mul offset constant is
    /// pre-subtracted from stationary weights, so a product with a weight costs one add; an
    /// element-wise product of two activations always pays the constant subtraction.
    Lmul {
        format: FloatFormat,
        acc: FloatFormat,
        policy: LmulPolicy,
        fold_weight_offset: bool,
    },
}

/// Which layer classes the mode applies to; the others run exact fp32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Scope {
    /// Every multiply, norms, activation functions, neurons and residuals included.
    #[default]
    All,
    /// Linear projections only (dot products with weights).
    Projections,
    /// Token-mixing and attention arithmetic only (WKV, attention products, gates, token shift).
    Attention,
    /// Projections and attention: every tensor product, the L-Mul paper's "all multiplications"
    /// reading; norms, activation functions, neurons, residuals and pooling stay fp32.
    TensorProducts,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::All,
        Scope::Projections,
        Scope::Attention,
        Scope::TensorProducts,
    ];

    /// The scenario spelling (`scope: TensorProducts`).
    pub fn name(self) -> &'static str {
        match self {
            Scope::All => "All",
            Scope::Projections => "Projections",
            Scope::Attention => "Attention",
            Scope::TensorProducts => "TensorProducts",
        }
    }
}

/// The class of a primitive, for scoping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Projection,
    Attention,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arith {
    pub mode: Mode,
    pub scope: Scope,
}

impl Default for Arith {
    fn default() -> Self {
        Arith::Exact
    }
}

#[allow(non_upper_case_globals)]
impl Arith {
    /// Exact fp32 everywhere.
    pub const Exact: Arith = Arith {
        mode: Mode::Exact,
        scope: Scope::All,
    };

    pub fn new(mode: Mode, scope: Scope) -> Arith {
        Arith { mode, scope }
    }

    /// The mode that applies at `site`: this one if the scope covers the site, exact otherwise.
    #[inline]
    pub fn at(&self, site: Site) -> Arith {
        let covered = matches!(
            (self.scope, site),
            (Scope::All, _)
                | (Scope::Projections, Site::Projection)
                | (Scope::Attention, Site::Attention)
                | (Scope::TensorProducts, Site::Projection | Site::Attention)
        );
        if covered {
            Arith {
                mode: self.mode,
                scope: Scope::All,
            }
        } else {
            Arith::Exact
        }
    }

    pub fn is_exact(&self) -> bool {
        self.mode == Mode::Exact
    }

    /// A short label, e.g. `fp32`, `bf16 (acc fp32)`, `lmul e8m3 (acc fp32) on projections`.
    pub fn label(&self) -> String {
        let core = match self.mode {
            Mode::Exact => "fp32".to_string(),
            Mode::Round { format, acc } => format!("{} (acc {})", format.name(), acc.name()),
            Mode::Lmul {
                format,
                acc,
                policy,
                ..
            } => {
                let p = if policy == LmulPolicy::Raw {
                    ", raw"
                } else {
                    ""
                };
                format!("lmul {} (acc {}{p})", format.name(), acc.name())
            }
        };
        match self.scope {
            Scope::All => core,
            Scope::Projections => format!("{core} on projections"),
            Scope::Attention => format!("{core} on attention"),
            Scope::TensorProducts => format!("{core} on tensor products"),
        }
    }

    fn float(format: FloatFormat) -> Fmt {
        Fmt::Float {
            e: format.exp_bits() as u8,
            m: format.man_bits() as u8,
        }
    }

    /// Number format of multiplies and of stored operands (weights, activations).
    pub fn fmt(&self) -> Fmt {
        match self.mode {
            Mode::Exact => FP32,
            Mode::Round { format, .. } | Mode::Lmul { format, .. } => Self::float(format),
        }
    }

    /// Number format of accumulations.
    pub fn acc_fmt(&self) -> Fmt {
        match self.mode {
            Mode::Exact => FP32,
            Mode::Round { acc, .. } | Mode::Lmul { acc, .. } => Self::float(acc),
        }
    }

    /// The format stored operands are rounded into (None for exact fp32).
    pub fn operand_format(&self) -> Option<FloatFormat> {
        match self.mode {
            Mode::Exact => None,
            Mode::Round { format, .. } | Mode::Lmul { format, .. } => Some(format),
        }
    }

    /// Bytes of one stored operand.
    pub fn operand_bytes(&self) -> u64 {
        self.fmt().bytes()
    }

    /// A stored operand (a weight): rounded into the operand format.
    #[inline(always)]
    pub fn operand(&self, w: f32) -> f32 {
        match self.mode {
            Mode::Exact => w,
            Mode::Round { format, .. } | Mode::Lmul { format, .. } => format.round_f32(w),
        }
    }

    /// An element-wise product.
    #[inline(always)]
    pub fn mul(&self, a: f32, b: f32) -> f32 {
        match self.mode {
            Mode::Exact => a * b,
            // Products of two operands of at most 11 significant bits are exact in f32, so
            // rounding the f32 product once is the correctly rounded product for fp16 and below.
            Mode::Round { format, .. } => {
                format.round_f32(format.round_f32(a) * format.round_f32(b))
            }
            Mode::Lmul { format, policy, .. } => lmul_f32(a, b, format, policy),
        }
    }

    /// An accumulation: the sum rounded into the accumulation format.
    #[inline(always)]
    pub fn add(&self, a: f32, b: f32) -> f32 {
        match self.mode {
            Mode::Exact => a + b,
            Mode::Round { acc, .. } | Mode::Lmul { acc, .. } => {
                if acc == FloatFormat::FP32 {
                    a + b
                } else {
                    acc.round_f32(a + b)
                }
            }
        }
    }

    fn count_product(&self, c: &mut Counts, n: u64, stationary_weight: bool) {
        match self.mode {
            Mode::Exact | Mode::Round { .. } => c.add(Op::Mul, self.fmt(), n),
            Mode::Lmul {
                format,
                fold_weight_offset,
                ..
            } => {
                c.add(Op::Lmul, self.fmt(), n);
                if !(stationary_weight && fold_weight_offset) {
                    // The offset constant: one more integer add of the same width.
                    let bits = (format.exp_bits() + format.man_bits()) as u8;
                    c.add(Op::Add, Fmt::Int { bits }, n);
                }
            }
        }
    }

    /// A product with a max-trick factor `e` = exp(x - max), where `is_max` says `e` is the
    /// maximum's own exp(0) = 1. In fp32 that multiply is the identity and is carried out, as the
    /// released kernels do. In an emulated format it is not the identity (L-Mul adds its 2^-l
    /// correction, a rounding format rounds `x` into the operand format), so a kernel selects `x`
    /// unchanged instead.
    #[inline(always)]
    pub fn mul_rescale(&self, is_max: bool, e: f32, x: f32) -> f32 {
        if is_max && !self.is_exact() {
            x
        } else {
            self.mul(e, x)
        }
    }

    /// Count `n` element-wise max-trick products ([`Arith::mul_rescale`]) of which `selects` have
    /// the maximum's factor. A select is no arithmetic: the compare that steers it is the max,
    /// counted where the max is taken.
    #[inline]
    pub fn count_rescale(&self, c: &mut Counts, n: u64, selects: u64) {
        let products = if self.is_exact() { n } else { n - selects };
        self.count_product(c, products, false);
    }

    /// Count `n` multiply-accumulates with max-trick factors of which `selects` have the
    /// maximum's factor: outside fp32 those are a select and an accumulation.
    #[inline]
    pub fn count_rescale_mac(&self, c: &mut Counts, n: u64, selects: u64) {
        if self.is_exact() {
            self.count_mac(c, n);
        } else {
            self.count_mac(c, n - selects);
            self.count_add(c, selects);
        }
    }

    /// Count `n` element-wise products (no stationary operand).
    #[inline]
    pub fn count_mul(&self, c: &mut Counts, n: u64) {
        self.count_product(c, n, false);
    }

    /// Count `n` multiply-accumulates of a dot product with weights. Exact fp32 and
    /// same-format rounding count `mac`; L-Mul and mixed formats count the product and the
    /// accumulation separately.
    #[inline]
    pub fn count_mac(&self, c: &mut Counts, n: u64) {
        match self.mode {
            Mode::Round { format, acc } if format != acc => {
                self.count_product(c, n, true);
                c.add(Op::Add, self.acc_fmt(), n);
            }
            Mode::Exact | Mode::Round { .. } => c.add(Op::Mac, self.fmt(), n),
            Mode::Lmul { .. } => {
                self.count_product(c, n, true);
                c.add(Op::Add, self.acc_fmt(), n);
            }
        }
    }

    /// Count `n` accumulate-only operations (a weight added into an accumulator).
    #[inline]
    pub fn count_ac(&self, c: &mut Counts, n: u64) {
        c.add(Op::Ac, self.acc_fmt(), n);
    }

    /// Count `n` element-wise adds.
    #[inline]
    pub fn count_add(&self, c: &mut Counts, n: u64) {
        c.add(Op::Add, self.acc_fmt(), n);
    }
}

/// How a scenario writes an arithmetic mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArithSpec {
    /// `fp32` (exact), a float format name (`bf16`, `fp16`, `fp8-e4m3`, `e5m2`, ...) for rounding,
    /// or `lmul-K` / `lmul:FORMAT` for L-Mul (`lmul-3` = e8m3 operands).
    pub mode: String,
    /// Accumulation format (default fp32).
    #[serde(default)]
    pub acc: Option<String>,
    #[serde(default)]
    pub scope: Scope,
    /// L-Mul special-case policy (default ieee).
    #[serde(default)]
    pub policy: Option<LmulPolicy>,
    /// Fold the L-Mul offset into stationary weights (default true).
    #[serde(default)]
    pub fold_weight_offset: Option<bool>,
}

impl ArithSpec {
    /// `mode` on every site, accumulating in fp32, with the default L-Mul policy and weight
    /// folding: what a scenario's `(mode: "...")` alone says.
    pub fn new(mode: &str) -> ArithSpec {
        ArithSpec {
            mode: mode.into(),
            acc: None,
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        }
    }

    pub fn build(&self) -> Result<Arith, String> {
        let acc = match &self.acc {
            None => FloatFormat::FP32,
            Some(a) => FloatFormat::parse(a)?,
        };
        let m = self.mode.trim();
        let mode = if m == "fp32" && acc == FloatFormat::FP32 {
            Mode::Exact
        } else if let Some(k) = m.strip_prefix("lmul-") {
            let k: u8 = k.parse().map_err(|_| {
                format!("arithmetic mode `{m}`: lmul-K needs a mantissa width K (0..=23)")
            })?;
            Mode::Lmul {
                format: FloatFormat::lmul_operand(k)?,
                acc,
                policy: self.policy.unwrap_or_default(),
                fold_weight_offset: self.fold_weight_offset.unwrap_or(true),
            }
        } else if let Some(f) = m.strip_prefix("lmul:") {
            Mode::Lmul {
                format: FloatFormat::parse(f)?,
                acc,
                policy: self.policy.unwrap_or_default(),
                fold_weight_offset: self.fold_weight_offset.unwrap_or(true),
            }
        } else {
            Mode::Round {
                format: FloatFormat::parse(m).map_err(|e| format!("arithmetic mode: {e}"))?,
                acc,
            }
        };
        Ok(Arith {
            mode,
            scope: self.scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lmul_mode_changes_products_and_counts_integer_adds() {
        let spec = ArithSpec {
            mode: "lmul-23".into(),
            acc: None,
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        };
        let a = spec.build().unwrap();
        assert_eq!(a.mul(1.5, 1.5), 2.125); // the golden L-Mul value
        let mut c = Counts::default();
        a.count_mac(&mut c, 10);
        a.count_mul(&mut c, 3);
        assert_eq!(c.op_total(Op::Lmul), 13);
        assert_eq!(c.op_total(Op::Mac), 0);
        // accumulation adds (10) + unfolded offset adds of the element-wise products (3)
        assert_eq!(c.op_total(Op::Add), 13);
    }

    #[test]
    fn prepared_modes_give_the_same_values_as_the_plain_ones() {
        for (mode, acc) in [
            ("bf16", None),
            ("fp8-e4m3", Some("fp16")),
            ("lmul-3", None),
            ("lmul:fp8-e5m2", Some("bf16")),
            ("e5m7", None),
        ] {
            let a = ArithSpec {
                mode: mode.into(),
                acc: acc.map(str::to_string),
                scope: Scope::All,
                policy: None,
                fold_weight_offset: None,
            }
            .build()
            .unwrap();
            let p = a.prepare();
            for (x, y) in [
                (1.5f32, 2.25f32),
                (-0.1, 3.7),
                (1e-3, 7e4),
                (0.0, 5.0),
                (123.456, -0.0078),
            ] {
                assert_eq!(
                    p.mul(x, y).to_bits(),
                    a.mul(x, y).to_bits(),
                    "{mode} mul {x} {y}"
                );
                assert_eq!(
                    p.add(x, y).to_bits(),
                    a.add(x, y).to_bits(),
                    "{mode} add {x} {y}"
                );
            }
        }
    }

    #[test]
    fn row_kernels_give_the_scalar_values_bit_for_bit() {
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let mut w: Vec<f32> = (0..1000)
            .map(|i| {
                let v = next();
                if i % 3 == 0 {
                    f32::from_bits(v as u32)
                } else {
                    ((v >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
                }
            })
            .collect();
        w.extend([0.0, -0.0, f32::INFINITY, f32::NAN, 1e-40, 65504.0, 1e30]);
        let xs = [0.7f32, -2.5, 1e-39, 3e38, f32::NAN];
        for (mode, acc) in [
            ("bf16", None),
            ("bf16", Some("bf16")),
            ("fp16", None),
            ("fp8-e4m3", Some("fp16")),
            ("fp8-e5m2", None),
            ("e3m4-b3", Some("fp8-e5m2")),
            ("lmul-3", None),
            ("lmul-4", Some("bf16")),
            ("lmul-23", None),
            ("lmul:fp8-e4m3", Some("fp16")),
            ("fp32", Some("bf16")),
        ] {
            let a = spec(mode, acc, None);
            let p = a.prepare();
            // NaN payloads are not specified (an add of two NaNs may return either), so a NaN
            // result only has to be a NaN.
            let same = |got: f32, want: f32| {
                if want.is_nan() {
                    got.is_nan()
                } else {
                    got.to_bits() == want.to_bits()
                }
            };
            // The whole row, specials included, and its finite values only (whole chunks on
            // the lanes).
            let finite: Vec<f32> = w.iter().copied().filter(|v| v.is_finite()).collect();
            let cases = xs.iter().flat_map(|x| [(*x, &w), (*x, &finite)]);
            for ((x, w), isa) in
                cases.flat_map(|c| Isa::supported().into_iter().map(move |i| (c, i)))
            {
                let start: Vec<f32> = w.iter().map(|v| v * 0.25).collect();
                let mut fast = start.clone();
                p.mac_row_on::<false>(isa, x, w, &mut fast);
                let mut fast_events = start.clone();
                p.accumulate_on::<false>(isa, w, &mut fast_events, x < 0.0);
                // The same rows from weights rounded once beforehand.
                let q = p.round_operands(w);
                let mut pre = start.clone();
                p.mac_row_on::<true>(isa, x, &q, &mut pre);
                let mut pre_events = start.clone();
                p.accumulate_on::<true>(isa, &q, &mut pre_events, x < 0.0);
                for (i, &wv) in w.iter().enumerate() {
                    let want = a.add(start[i], a.mul(x, wv));
                    assert!(same(fast[i], want), "{mode} {acc:?} {isa:?} x {x} w {wv}");
                    assert!(
                        same(pre[i], want),
                        "{mode} {acc:?} {isa:?} pre-rounded x {x} w {wv}"
                    );
                    let op = a.operand(wv);
                    let want = a.add(start[i], if x < 0.0 { -op } else { op });
                    assert!(same(fast_events[i], want), "{mode} events w {wv}");
                    assert!(
                        same(pre_events[i], want),
                        "{mode} pre-rounded events w {wv}"
                    );
                }
            }
        }
    }

    #[test]
    fn four_inputs_per_pass_give_the_values_of_four_row_calls() {
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let n = 300;
        // Ordinary weights, then rows salted with zeros, subnormals, huge values and specials
        // (the fused loop must fall back for them and still agree).
        let mut rows: Vec<Vec<f32>> = (0..4)
            .map(|_| {
                (0..n)
                    .map(|_| ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0)
                    .collect()
            })
            .collect();
        let mut salted = rows.clone();
        for (k, row) in salted.iter_mut().enumerate() {
            row[7 * k + 1] = 0.0;
            row[50 + k] = 1e-41;
            row[100 + k] = 3e38;
            row[200 + 3 * k] = [f32::INFINITY, f32::NAN, -0.0, 65504.0][k];
        }
        rows.extend(salted);
        let inputs = [
            [0.7f32, -2.5, 1.25, 0.01],
            [1e-39, 3e38, -0.4, 9.0],
            [f32::NAN, 0.5, 0.5, 0.5],
        ];
        for (mode, acc) in [
            ("bf16", None),
            ("bf16", Some("bf16")),
            ("e8m10", Some("e8m12")),
            ("fp16", None),
            ("fp8-e4m3", None),
            ("fp8-e4m3", Some("fp16")),
            ("lmul-3", None),
            ("lmul-4", Some("bf16")),
            ("lmul-23", None),
            ("lmul:fp8-e4m3", None),
        ] {
            for policy in [None, Some(crate::numerics::LmulPolicy::Raw)] {
                if policy.is_some() && !mode.starts_with("lmul") {
                    continue;
                }
                let a = ArithSpec {
                    mode: mode.into(),
                    acc: acc.map(String::from),
                    scope: Scope::All,
                    policy,
                    fold_weight_offset: None,
                }
                .build()
                .unwrap();
                let p = a.prepare();
                for set in rows.chunks(4) {
                    if !p.takes_rounded_operands() {
                        continue;
                    }
                    let q: Vec<Vec<f32>> = set.iter().map(|w| p.round_operands(w)).collect();
                    for (x, isa) in inputs
                        .into_iter()
                        .flat_map(|x| Isa::supported().into_iter().map(move |i| (x, i)))
                    {
                        let start: Vec<f32> = (0..n).map(|o| o as f32 * 0.01 - 1.0).collect();
                        let mut want = start.clone();
                        for k in 0..4 {
                            for (o, y) in want.iter_mut().enumerate() {
                                *y = a.add(*y, a.mul(x[k], set[k][o]));
                            }
                        }
                        let mut got = start.clone();
                        p.mac4_rounded_on(isa, x, [&q[0], &q[1], &q[2], &q[3]], &mut got);
                        for o in 0..n {
                            assert!(
                                got[o].to_bits() == want[o].to_bits()
                                    || (got[o].is_nan() && want[o].is_nan()),
                                "{mode} {acc:?} {policy:?} {isa:?} x {x:?} output {o}: {} vs {}",
                                got[o],
                                want[o]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn four_inputs_per_pass_agree_on_every_pair_of_fp8_values() {
        // Every 8-bit pattern as an input and as a weight, four inputs at a time, against the
        // scalar calls: exhaustive for the operand formats where a table would also be possible.
        for (fmt, mode, acc) in [
            ("fp8-e4m3", "fp8-e4m3", None),
            ("fp8-e4m3", "fp8-e4m3", Some("fp16")),
            ("fp8-e5m2", "fp8-e5m2", Some("fp16")),
            ("fp8-e4m3", "lmul:fp8-e4m3", None),
            ("fp8-e5m2", "lmul:fp8-e5m2", Some("fp16")),
        ] {
            let f = FloatFormat::parse(fmt).unwrap();
            let values: Vec<f32> = (0..256u32).map(|b| f.decode_f32(b)).collect();
            let a = spec(mode, acc, None);
            let p = a.prepare();
            let q = p.round_operands(&values);
            let rows = [&q[..], &q[..], &q[..], &q[..]];
            for (x, isa) in values
                .chunks(4)
                .flat_map(|x| Isa::supported().into_iter().map(move |i| (x, i)))
            {
                let x = [x[0], x[1], x[2], x[3]];
                let start: Vec<f32> = (0..256).map(|o| (o as f32 - 128.0) * 0.03125).collect();
                let mut want = start.clone();
                for xk in x {
                    for (y, &w) in want.iter_mut().zip(&values) {
                        *y = a.add(*y, a.mul(xk, w));
                    }
                }
                let mut got = start.clone();
                p.mac4_rounded_on(isa, x, rows, &mut got);
                for o in 0..256 {
                    assert!(
                        got[o].to_bits() == want[o].to_bits()
                            || (got[o].is_nan() && want[o].is_nan()),
                        "{mode} {acc:?} {isa:?} x {x:?} w {}: {} vs {}",
                        values[o],
                        got[o],
                        want[o]
                    );
                }
            }
        }
    }

    #[test]
    fn scope_limits_the_mode_to_its_sites() {
        let spec = ArithSpec {
            mode: "bf16".into(),
            acc: None,
            scope: Scope::Projections,
            policy: None,
            fold_weight_offset: None,
        };
        let a = spec.build().unwrap();
        assert!(a.at(Site::Attention).is_exact());
        assert!(!a.at(Site::Projection).is_exact());
        assert_eq!(a.at(Site::Projection).mul(1.0 + 1.0 / 256.0, 1.0), 1.0);
    }

    /// A mode with an accumulation format and an L-Mul policy, on every site.
    fn spec(mode: &str, acc: Option<&str>, policy: Option<crate::numerics::LmulPolicy>) -> Arith {
        ArithSpec {
            mode: mode.into(),
            acc: acc.map(String::from),
            scope: Scope::All,
            policy,
            fold_weight_offset: None,
        }
        .build()
        .unwrap()
    }

    fn build(mode: &str, scope: Scope) -> Arith {
        ArithSpec {
            scope,
            ..ArithSpec::new(mode)
        }
        .build()
        .unwrap()
    }

    #[test]
    fn lmul_rescale_by_exact_one_is_a_select() {
        let a = build("lmul-3", Scope::All);
        let x = 0.8125f32; // e8m3-representable
        assert_ne!(a.mul(1.0, x), x, "L-Mul(1, x) adds its correction");
        assert_eq!(a.mul_rescale(true, 1.0, x).to_bits(), x.to_bits());
        assert_eq!(a.mul_rescale(false, 0.5, x), a.mul(0.5, x));
        let mut c = Counts::default();
        a.count_rescale(&mut c, 6, 4);
        assert_eq!(c.op_total(Op::Lmul), 2);
        let mut c = Counts::default();
        a.count_rescale_mac(&mut c, 10, 3);
        assert_eq!(c.op_total(Op::Lmul), 7);
        // seven accumulations of products, three of selected operands
        assert_eq!(c.op_total(Op::Add), 10);
    }

    #[test]
    fn rounding_rescale_by_exact_one_keeps_the_unrounded_operand() {
        let a = build("bf16", Scope::All);
        let x = 1.0 + 1.0 / 1024.0; // not a bf16 value
        assert_eq!(a.mul(1.0, x), 1.0);
        assert_eq!(a.mul_rescale(true, 1.0, x), x);
    }

    #[test]
    fn fp32_rescale_by_exact_one_is_a_counted_multiply() {
        let a = Arith::Exact;
        for x in [0.1f32, -3.5e30, 1e-40] {
            assert_eq!(a.mul_rescale(true, 1.0, x).to_bits(), (1.0 * x).to_bits());
        }
        let mut c = Counts::default();
        a.count_rescale(&mut c, 6, 4);
        a.count_rescale_mac(&mut c, 10, 3);
        assert_eq!(c.op_total(Op::Mul), 6);
        assert_eq!(c.op_total(Op::Mac), 10);
    }

    #[test]
    fn tensor_products_scope_covers_projections_and_attention_only() {
        let a = build("lmul-3", Scope::TensorProducts);
        assert!(!a.at(Site::Projection).is_exact());
        assert!(!a.at(Site::Attention).is_exact());
        assert!(a.at(Site::Other).is_exact());
        assert_eq!(a.label(), "lmul e8m3 (acc fp32) on tensor products");
        let parsed: Scope = ron::from_str("TensorProducts").unwrap();
        assert_eq!(parsed, Scope::TensorProducts);
        for s in Scope::ALL {
            assert_eq!(ron::from_str::<Scope>(s.name()).unwrap(), s);
        }
    }

    #[test]
    fn mixed_format_macs_count_product_and_accumulation_apart() {
        let spec = ArithSpec {
            mode: "fp8-e4m3".into(),
            acc: Some("fp16".into()),
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        };
        let a = spec.build().unwrap();
        let mut c = Counts::default();
        a.count_mac(&mut c, 4);
        assert_eq!(c.op_total(Op::Mul), 4);
        assert_eq!(c.op_total(Op::Add), 4);
        assert_eq!(a.fmt().to_string(), "fp8-e4m3");
        assert_eq!(a.acc_fmt().to_string(), "fp16");
    }

    #[test]
    fn unknown_mode_is_an_error_naming_it() {
        let spec = ArithSpec {
            mode: "fp7".into(),
            acc: None,
            scope: Scope::All,
            policy: None,
            fold_weight_offset: None,
        };
        assert!(spec.build().unwrap_err().contains("fp7"));
    }
}
