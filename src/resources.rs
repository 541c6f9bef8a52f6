//! Resource limits: every model estimates its peak memory before allocating, and a run is refused
//! when the estimate exceeds the limit (`--max-memory`, else the memory the system has available).

use crate::error::{Error, Result};

/// Memory available to this process: `MemAvailable` of /proc/meminfo, when readable.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The limit in force: `max_memory` when given, else the memory the system has available.
pub fn limit(max_memory: Option<u64>) -> Option<(u64, &'static str)> {
    match max_memory {
        None => available_bytes().map(|b| (b, "available memory")),
        Some(b) => Some((b, "--max-memory")),
    }
}

/// Refuse `what` when it would need more than the limit.
pub fn check(what: &str, bytes: u64, max_memory: Option<u64>) -> Result<()> {
    if let Some((max, source)) = limit(max_memory)
        && bytes > max
    {
        return Err(Error::input(format!(
            "{what} needs about {} of memory, more than the {} of {source}; refusing before allocating",
            human(bytes),
            human(max)
        )));
    }
    Ok(())
}

/// Parse a size like `512M`, `8G`, `1.5GiB`, `1000000`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 512M, 8G)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        other => return Err(format!("`{s}`: unknown unit `{other}` (use K, M, G, T)")),
    };
    let bytes = v * mult;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("`{s}` must be a positive size"));
    }
    Ok(bytes as u64)
}

pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("12Q").is_err());
    }
}
