//! The lock of an output folder: one process writes a sweep's folder at a time.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file of an output folder in use: it holds the pid of the process writing there.
pub const LOCK_FILE: &str = ".picojoule.lock";

/// An output folder locked for one process: created atomically (`create_new`) with the pid,
/// removed when dropped. A lock left by a process that no longer runs is taken over.
#[derive(Debug)]
pub struct OutLock {
    path: PathBuf,
}

impl OutLock {
    /// Lock `dir` (created if missing), or refuse when another live process holds it.
    pub fn acquire(dir: &Path) -> Result<OutLock> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let me = std::process::id();
        // Two attempts: the second after removing a stale lock.
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(format!("{me}\n").as_bytes())
                        .map_err(|source| Error::Write {
                            path: path.clone(),
                            source,
                        })?;
                    return Ok(OutLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = text.trim().parse::<u32>().ok();
                    match pid {
                        Some(pid) if pid != me && process_alive(pid) => {
                            return Err(Error::input(format!(
                                "{} is in use by another picojoule process (pid {pid}, lock file {}); wait for it, or use another --out",
                                dir.display(),
                                path.display()
                            )));
                        }
                        // A lock of a process that has ended (or an unreadable one): take it over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(source) => return Err(Error::Write { path, source }),
            }
        }
        Err(Error::input(format!(
            "{}: cannot take the lock file {} (another process keeps taking it)",
            dir.display(),
            path.display()
        )))
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a process with this pid runs (Linux: /proc/PID exists; elsewhere assumed running).
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}
