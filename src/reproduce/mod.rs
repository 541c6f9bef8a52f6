//! Reproductions of published tables: the same quantities measured by picojoule from an
//! execution, under a named counting convention, next to the published values.
//! `picojoule reproduce` regenerates `docs/reproductions.md` from these.

pub mod ecoformer;
pub mod lmul;
pub mod spikegpt;

use serde::Serialize;

/// Where a reference value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Read in the paper or the authors' README.
    Published,
    /// Quoted from a secondary source (a summary or a third-party report), not confirmed in
    /// the paper's text.
    SecondHand,
    /// Computed by picojoule from the authors' own formulas (a baseline the paper does not
    /// tabulate, or a table row's formula evaluated at the reproduction's setting).
    Formula,
    /// No reference value.
    None,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Published => "published",
            Source::SecondHand => "second-hand",
            Source::Formula => "authors' formula",
            Source::None => "-",
        }
    }
}

/// One quantity of a paper's table: the reference value (and where it comes from) and
/// picojoule's measurement of it.
#[derive(Clone, Debug, Serialize)]
pub struct ReproRow {
    pub quantity: String,
    /// The reference value, if there is one.
    pub published: Option<f64>,
    /// Where `published` comes from.
    pub source: Source,
    pub measured: f64,
    pub unit: String,
    pub convention: String,
    /// What the row's convention leaves out, or how the value was obtained.
    pub note: String,
}

impl ReproRow {
    /// (measured - published) / published, in percent.
    pub fn difference_pct(&self) -> Option<f64> {
        self.published
            .filter(|p| *p != 0.0)
            .map(|p| 100.0 * (self.measured - p) / p)
    }
}

/// One paper's table.
#[derive(Clone, Debug, Serialize)]
pub struct ReproTable {
    pub paper: String,
    pub title: String,
    pub rows: Vec<ReproRow>,
    /// A sentence on what the paper's convention leaves out, and what the full accounting adds.
    pub leaves_out: String,
}

fn fmt_value(v: f64) -> String {
    crate::report::table::num(v)
}

impl ReproTable {
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n{}\n\n", self.paper, self.title);
        out += "| quantity | reference | reference from | picojoule | difference | unit | convention | note |\n|---|---:|---|---:|---:|---|---|---|\n";
        for r in &self.rows {
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.quantity,
                r.published.map(fmt_value).unwrap_or_else(|| "-".into()),
                r.source.label(),
                fmt_value(r.measured),
                r.difference_pct()
                    .map(|d| format!("{d:+.2}%"))
                    .unwrap_or_else(|| "-".into()),
                r.unit,
                r.convention,
                r.note
            );
        }
        out += &format!("\n{}\n", self.leaves_out);
        out
    }
}
