//! Errors. Bad input (exit code 2) is kept apart from internal failures (exit code 1).

use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A RON file that does not parse or does not match its schema.
    #[error("{path}:{line}:{col}: {msg}\n{snippet}")]
    Ron {
        path: PathBuf,
        line: usize,
        col: usize,
        msg: String,
        snippet: String,
    },

    /// A file that cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file that cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },

    /// Any other mistake in what the user gave us (a value, a shape, a flag).
    #[error("{0}")]
    Input(String),

    /// A failure that is ours, not the user's.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Process exit code: 2 for bad input (an unwritable output path included), 1 for internal
    /// errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            // A path that cannot be written is one the user chose (--out, ...): bad input.
            Error::Internal(_) => 1,
            _ => 2,
        }
    }

    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    /// Wrap a RON error with the file name, the position and the offending line.
    pub fn ron(path: &Path, text: &str, err: &ron::error::SpannedError) -> Self {
        let line = err.span.start.line;
        let col = err.span.start.col;
        let src_line = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let caret = format!("{}^", " ".repeat(col.saturating_sub(1)));
        let snippet = format!("{line:>5} | {src_line}\n      | {caret}");
        Error::Ron {
            path: path.to_path_buf(),
            line,
            col,
            msg: err.code.to_string(),
            snippet,
        }
    }
}

/// Read a whole text file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parse RON text into `T`, with file:line:col errors.
pub fn parse_ron<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    // A UTF-8 byte order mark (some editors write one) is not part of the RON text.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    ron::Options::default()
        .with_default_extension(
            ron::extensions::Extensions::IMPLICIT_SOME
                | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
        )
        .from_str(text)
        .map_err(|e| Error::ron(path, text, &e))
}

/// Write a file atomically: to a temporary name beside it, then rename, so a reader sees either
/// the previous file or the complete new one. On any error the temporary is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut files = Staged::default();
    files.stage(path, bytes)?;
    files.commit()
}

/// Several files written together: each to a temporary beside it (`stage`), then all renamed
/// into place (`commit`) once every one is complete, so a folder is not left half old, half
/// new when a write fails (a full disk, a directory in the way). Temporaries not renamed are
/// removed on every error path, and when the set is dropped.
#[derive(Default)]
pub struct Staged {
    /// (temporary, target), in the order staged.
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    /// Write `bytes` to a temporary beside `path`.
    pub fn stage(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let file_name = path.file_name().and_then(|s| s.to_str()).unwrap_or("out");
        let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
        if let Err(source) = write_synced(&tmp, bytes) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Write {
                path: path.to_path_buf(),
                source,
            });
        }
        self.files.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Rename every temporary onto its target. A target that is a directory is refused before
    /// any file is renamed.
    pub fn commit(mut self) -> Result<()> {
        for (_, path) in &self.files {
            if path.is_dir() {
                return Err(Error::Write {
                    path: path.clone(),
                    source: std::io::Error::other("a directory is in the way of the file"),
                });
            }
        }
        let files = std::mem::take(&mut self.files);
        for (k, (tmp, path)) in files.iter().enumerate() {
            if let Err(source) = std::fs::rename(tmp, path) {
                let _ = std::fs::remove_file(tmp);
                // The rest are removed when `self` is dropped.
                self.files = files[k + 1..].to_vec();
                return Err(Error::Write {
                    path: path.clone(),
                    source,
                });
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Write a file completely: create, write, flush to disk (a full disk shows up here, not later).
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
