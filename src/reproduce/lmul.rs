//! The L-Mul paper's precision claims (Luo & Sun, arXiv:2410.00907, abstract): "L-Mul with 4-bit
//! mantissa achieves comparable precision as float8_e4m3, and L-Mul with 3-bit mantissa
//! outperforms float8_e5m2", checked with picojoule's error table (the same operand pairs for
//! every row).

use super::{ReproRow, ReproTable};
use crate::numerics::{ErrorRow, ErrorTableConfig, error_table};

fn row<'a>(rows: &'a [ErrorRow], name: &str) -> &'a ErrorRow {
    rows.iter()
        .find(|r| r.name == name)
        .expect("error table has the named rows")
}

pub fn lmul_table(cfg: &ErrorTableConfig) -> ReproTable {
    let rows = error_table(cfg);
    let pct = |v: f64| 100.0 * v;
    let mut out = Vec::new();
    for (a, b, claim) in [
        ("lmul-4", "fp8-e4m3", "comparable to"),
        ("lmul-3", "fp8-e5m2", "better than"),
    ] {
        let (ra, rb) = (row(&rows, a), row(&rows, b));
        for (metric, va, vb) in [
            (
                "mean relative error of a product",
                ra.mean_rel_err,
                rb.mean_rel_err,
            ),
            (
                "dot-64 error / sum|ab|",
                ra.dot64_norm_mean,
                rb.dot64_norm_mean,
            ),
            (
                "dot-256 error / sum|ab|",
                ra.dot256_norm_mean,
                rb.dot256_norm_mean,
            ),
        ] {
            let verdict = match claim {
                // "Comparable": within 10% of the fp8 error, or better.
                "comparable to" if va <= 1.1 * vb => "reproduced",
                "better than" if va < vb => "reproduced",
                _ => "not reproduced under this protocol",
            };
            out.push(ReproRow {
                quantity: format!("{a} vs {b}: {metric}"),
                published: None,
                source: super::Source::None,
                measured: pct(va) / pct(vb),
                unit: format!("ratio of errors ({:.3}% / {:.3}%)", pct(va), pct(vb)),
                convention: "error table".into(),
                note: format!("claim: {a} is {claim} {b}; {verdict}"),
            });
        }
    }
    ReproTable {
        paper: "L-Mul (Luo & Sun, arXiv:2410.00907), precision claims of the abstract".into(),
        title: format!(
            "{} operand pairs, seed {}, {:?}; operands and products of fp8 rows rounded to nearest even; lmul-K rows: operands rounded to K mantissa bits (8-bit exponent), then L-Mul (ieee policy); dot products accumulate in fp32. A ratio below 1 means L-Mul is more precise.",
            cfg.samples, cfg.seed, cfg.distribution
        ),
        rows: out,
        leaves_out: "The paper's own error metric and operand distribution are not confirmed (lmul.md 2.2), so this is one protocol, stated above, not the paper's. \"Comparable\" is read as at most 10% more error. L-Mul's error is biased (+4.9% mean at 3-4 mantissa bits), which grows with accumulation length relative to round-to-nearest.".into(),
    }
}
