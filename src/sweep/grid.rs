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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_numbered_with_the_first_axis_slowest() {
        let dims = [2, 3];
        let all: Vec<Vec<usize>> = (0..6).map(|p| grid_index(&dims, false, p)).collect();
        assert_eq!(
            all,
            [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]].map(|a| a.to_vec())
        );
        // Zipped axes move together.
        assert_eq!(grid_index(&[4, 4], true, 3), vec![3, 3]);
    }

    #[test]
    fn shards_cover_every_point_once_in_order() {
        for n in [0, 1, 7, 100, 101] {
            for of in 1..=9 {
                let mut next = 0;
                for k in 1..=of {
                    let r = shard_range(n, k, of);
                    assert_eq!(r.start, next, "n {n}, shard {k}/{of}");
                    // Contiguous slices whose sizes differ by at most one.
                    assert!(r.len() >= n / of && r.len() <= n.div_ceil(of));
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn a_shard_needs_one_to_n_of_n() {
        assert_eq!(parse_shard("2/5").unwrap(), (2, 5));
        assert_eq!(parse_shard(" 1 / 1 ").unwrap(), (1, 1));
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3"] {
            let e = parse_shard(bad).unwrap_err().to_string();
            assert!(e.contains("--shard"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_memory_estimate_grows_with_rows_axes_and_output() {
        let base = grid_bytes(1000, 3, 1, false);
        assert_eq!(base, 3000 * (ROW_BYTES + ROW_AXIS_BYTES));
        assert!(grid_bytes(1000, 3, 2, false) > base);
        assert!(grid_bytes(1000, 3, 1, true) > base);
        // Saturates instead of overflowing.
        assert_eq!(grid_bytes(usize::MAX, usize::MAX, 3, true), u64::MAX);
    }
}
