//! The grid: point numbering (first axis slowest), shards, and the memory a grid's rows need.

use crate::error::{Error, Result};

use super::Axis;

/// Estimated memory of a sweep's result, in bytes per row (one point and run) held for the
/// final table: the row itself and the largest of its renderings (table, CSV, Markdown, JSON),
/// which are made one at a time. Measured peak RSS of a 900,000-row sweep of a 3-run scenario:
/// 1.8 KB per row with one cost axis (table on stdout), 2.0 KB with `--out`, 2.5 KB with three
/// axes and `--out`; the estimate is 1.2-1.3 times that.
const ROW_BYTES: u64 = 2048;

/// Bytes per row and axis (the axis value in the row and in each rendering).
const ROW_AXIS_BYTES: u64 = 256;

/// Bytes per row added by `--out`: the plots' series and the points file's lines in flight.
const ROW_OUT_BYTES: u64 = 256;

/// Estimated peak memory of holding and rendering `points` x `runs` rows of a grid of
/// `axes` axes (the simulations' own memory is checked per model).
pub fn grid_bytes(points: usize, runs: usize, axes: usize, out: bool) -> u64 {
    let rows = (points as u64).saturating_mul(runs as u64);
    let per_row = ROW_BYTES
        .saturating_add(ROW_AXIS_BYTES.saturating_mul(axes as u64))
        .saturating_add(if out { ROW_OUT_BYTES } else { 0 });
    rows.saturating_mul(per_row)
}

/// The number of points of a grid: the product of the axes' lengths, or their common length
/// when zipped.
pub fn grid_points(axes: &[Axis], zip: bool) -> usize {
    if axes.is_empty() {
        return 1;
    }
    if zip {
        axes[0].values.len()
    } else {
        axes.iter().map(|a| a.values.len()).product()
    }
}

/// The value index of each axis at point `p` (first axis slowest).
pub fn grid_index(dims: &[usize], zip: bool, mut p: usize) -> Vec<usize> {
    if zip {
        return vec![p; dims.len()];
    }
    let mut idx = vec![0; dims.len()];
    for (i, &d) in dims.iter().enumerate().rev() {
        idx[i] = p % d;
        p /= d;
    }
    idx
}

/// The K-th (1-based) of N contiguous slices of `0..n`.
pub fn shard_range(n: usize, k: usize, of: usize) -> std::ops::Range<usize> {
    (k - 1) * n / of..k * n / of
}

/// Parse `K/N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::input(format!("--shard {s}: expected K/N with 1 <= K <= N"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}
