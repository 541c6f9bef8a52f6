//! The report files of `run --out`: every format of the report, the ledger when asked, and
//! `report.html`, renamed into place together.

use std::path::Path;

use crate::error::{Error, Result};
use crate::exec;
use crate::hardware::Hardware;

/// A renderer of the run's report tables.
type Render = fn(&super::Report) -> String;

/// A run's reports in `dir`: report.json, report.csv (per layer), report-runs.csv (per run),
/// report.md, `ledger` as ledger.json when given, and report.html when `html`. Every file goes
/// to a temporary first, then all are renamed: the folder holds either the previous reports or
/// these, not a mix.
pub fn write_run_reports(
    dir: &Path,
    rep: &super::Report,
    outputs: &[exec::RunOutput],
    hw: &Hardware,
    html: bool,
    ledger: Option<String>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = crate::error::Staged::default();
    let tables: [(&str, Render); 4] = [
        ("report.json", super::table::render_json),
        ("report.csv", super::table::render_csv),
        ("report-runs.csv", super::table::render_csv_runs),
        ("report.md", super::table::render_markdown),
    ];
    for (name, render) in tables {
        files.stage(&dir.join(name), render(rep).as_bytes())?;
    }
    if let Some(text) = ledger {
        files.stage(&dir.join("ledger.json"), text.as_bytes())?;
    }
    if html {
        let priced: Vec<_> = outputs
            .iter()
            .map(|o| crate::hardware::price(&o.ledger, &hw.model))
            .collect();
        files.stage(
            &dir.join("report.html"),
            super::html::run_page(rep, &priced)?.as_bytes(),
        )?;
    }
    files.commit()
}
