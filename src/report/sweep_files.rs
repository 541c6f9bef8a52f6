//! The files of a sweep: its tables in every text format, `report.html` when asked, and its plots.

use std::path::{Path, PathBuf};

use super::{html, plot, sweep_table};
use crate::error::{Error, Result};
use crate::sweep::SweepResult;

/// A renderer of the sweep's tables.
type Render = fn(&SweepResult) -> String;

/// Write the sweep's tables and plots into `dir` (atomically, file by file), and `report.html`
/// with the tables when `html` is set.
pub fn write_outputs(res: &SweepResult, dir: &Path, html: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    // One rendering at a time: a large grid's texts are not all held at once.
    let renders: [(&str, Render); 4] = [
        ("sweep.csv", sweep_table::render_csv),
        ("sweep.md", sweep_table::render_markdown),
        ("sweep.json", sweep_table::render_json),
        ("sweep.txt", sweep_table::render_text),
    ];
    // All four tables are renamed into place together, once each is complete.
    let mut files = crate::error::Staged::default();
    for (name, render) in renders {
        let p = dir.join(name);
        files.stage(&p, render(res).as_bytes())?;
        written.push(p);
    }
    if html {
        let p = dir.join("report.html");
        files.stage(&p, html::sweep_page(res)?.as_bytes())?;
        written.push(p);
    }
    files.commit()?;
    written.extend(plot::sweep_plots(res, dir)?);
    Ok(written)
}
