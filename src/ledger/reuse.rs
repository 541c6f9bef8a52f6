//! Reuse distances of weight rows, measured on the executed trace.
//!
//! Every time a layer reads a row of its weights (a dense pass reads every row, an event-driven
//! pass only the rows of the inputs that spiked), the row's LRU stack distance is measured: the
//! bytes of the distinct rows, of any layer, read since this row was last read, plus the row
//! itself. A fully associative LRU buffer of C bytes serves the read exactly when that distance
//! is at most C (Mattson et al., IBM Systems Journal 1970), so one histogram of distances gives
//! the hits and misses of every buffer size, and a sweep over buffer sizes re-prices a saved
//! ledger without running the model again.
//!
//! Distances are kept in buckets (exact in steps of 64 bytes up to 4 KiB, then 64 buckets per
//! octave, each at most 1.6% wide) filed under their upper edge, so a read is never counted as a
//! hit it would not be; a read whose distance lies within 1.6% below a capacity may be counted
//! as a miss.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bytes of weight rows read, by LRU stack distance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reuse {
    /// Bytes read for the first time in the run (compulsory misses at every level).
    pub cold: u64,
    /// Bucket upper edge of the stack distance, in bytes -> bytes read at that distance.
    pub by_distance: BTreeMap<u64, u64>,
}

impl Reuse {
    /// Every traced byte read.
    pub fn total(&self) -> u64 {
        self.cold + self.by_distance.values().sum::<u64>()
    }

    /// Bytes an LRU buffer of `capacity` bytes does not serve: first reads, and reads whose
    /// distance exceeds the capacity.
    pub fn missed(&self, capacity: u64) -> u64 {
        self.cold
            + self
                .by_distance
                .range(capacity.saturating_add(1)..)
                .map(|(_, b)| *b)
                .sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.cold == 0 && self.by_distance.is_empty()
    }

    pub fn merge(&mut self, other: &Reuse) {
        self.cold += other.cold;
        for (d, b) in &other.by_distance {
            *self.by_distance.entry(*d).or_insert(0) += b;
        }
    }

    fn record(&mut self, distance: Option<u64>, bytes: u64) {
        match distance {
            None => self.cold += bytes,
            Some(d) => *self.by_distance.entry(bucket(d)).or_insert(0) += bytes,
        }
    }
}

/// The upper edge of the bucket holding distance `d` (bytes).
pub fn bucket(d: u64) -> u64 {
    if d <= 4096 {
        return d.div_ceil(64) * 64;
    }
    let e = 63 - d.leading_zeros() as u64;
    let step = 1u64 << (e - 6);
    d.div_ceil(step).saturating_mul(step)
}

const NEVER: u32 = u32::MAX;

/// One LRU stack over the weight rows of every layer of a run. Each read row occupies a time
/// slot holding its size; the distance of a read is the sum of the sizes in the slots after the
/// row's previous one (a Fenwick tree), and the row moves to the newest slot. When the slots run
/// out, the live rows are renumbered in order (the tree grows when more than half are live).
#[derive(Clone, Debug, Default)]
pub struct Lru {
    /// Per layer id: first block id and number of rows (blocks are allocated on first read).
    layers: Vec<Option<(u32, u32)>>,
    /// Blocks of whole weight vectors, by layer and the vector's identity (several vectors,
    /// such as the three token-shift mixes of a block, may be read under one layer).
    vectors: std::collections::HashMap<(usize, usize), u32>,
    /// Per block: slot of its last read (NEVER if unread) and its size in bytes.
    last: Vec<u32>,
    size: Vec<u64>,
    /// Per slot: the block whose last read is there (NEVER if none).
    owner: Vec<u32>,
    tree: Vec<u64>,
    next: u32,
}

impl Lru {
    /// Read `rows` of layer `layer` (a layer of `n_rows` rows, each `row_bytes` long) in order,
    /// filing each read's distance into `into`.
    pub fn read_rows(
        &mut self,
        layer: usize,
        n_rows: u32,
        rows: impl Iterator<Item = u32>,
        row_bytes: u64,
        into: &mut Reuse,
    ) {
        let base = self.blocks_of(layer, n_rows);
        for r in rows {
            debug_assert!(r < n_rows);
            let b = (base + r.min(n_rows.saturating_sub(1))) as usize;
            let d = self.read(b, row_bytes);
            into.record(d, row_bytes);
        }
    }

    /// Read a whole weight vector `times` times; `identity` tells vectors of one layer apart.
    pub fn read_vector(
        &mut self,
        layer: usize,
        identity: usize,
        bytes: u64,
        times: usize,
        into: &mut Reuse,
    ) {
        let next = self.last.len() as u32;
        let b = *self.vectors.entry((layer, identity)).or_insert(next) as usize;
        if b == next as usize {
            self.last.push(NEVER);
            self.size.push(0);
        }
        for _ in 0..times {
            let d = self.read(b, bytes);
            into.record(d, bytes);
        }
    }

    fn blocks_of(&mut self, layer: usize, n_rows: u32) -> u32 {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, None);
        }
        match self.layers[layer] {
            Some((base, n)) if n >= n_rows => base,
            _ => {
                // A layer's rows are allocated once; a wider read of the same layer gets a new range.
                let base = self.last.len() as u32;
                self.last.resize(self.last.len() + n_rows as usize, NEVER);
                self.size.resize(self.last.len(), 0);
                self.layers[layer] = Some((base, n_rows));
                base
            }
        }
    }

    /// Read block `b` of `bytes` bytes; its distance, or None on its first read.
    fn read(&mut self, b: usize, bytes: u64) -> Option<u64> {
        if self.next as usize >= self.owner.len() {
            self.compact();
        }
        let prev = self.last[b];
        let d = if prev == NEVER {
            None
        } else {
            let after = self.prefix(self.next as usize) - self.prefix(prev as usize + 1);
            self.add(prev as usize, -(self.size[b] as i64));
            self.owner[prev as usize] = NEVER;
            Some(after + bytes)
        };
        let slot = self.next as usize;
        self.next += 1;
        self.last[b] = slot as u32;
        self.size[b] = bytes;
        self.owner[slot] = b as u32;
        self.add(slot, bytes as i64);
        d
    }

    /// Renumber the live blocks into the first slots, in order of their last read.
    fn compact(&mut self) {
        let live: Vec<u32> = self.owner[..self.next as usize]
            .iter()
            .copied()
            .filter(|&b| b != NEVER)
            .collect();
        let mut len = self.owner.len().max(1024);
        while live.len() * 2 > len {
            len *= 2;
        }
        self.owner = vec![NEVER; len];
        self.tree = vec![0; len + 1];
        for (slot, &b) in live.iter().enumerate() {
            self.owner[slot] = b;
            self.last[b as usize] = slot as u32;
            self.tree[slot + 1] = self.size[b as usize];
        }
        // Build the Fenwick tree in place from the slot values.
        for i in 1..=len {
            let j = i + (i & i.wrapping_neg());
            if j <= len {
                self.tree[j] += self.tree[i];
            }
        }
        self.next = live.len() as u32;
    }

    /// Sum of the sizes in slots [0, i).
    fn prefix(&self, mut i: usize) -> u64 {
        let mut s = 0;
        while i > 0 {
            s += self.tree[i];
            i &= i - 1;
        }
        s
    }

    fn add(&mut self, slot: usize, delta: i64) {
        let mut i = slot + 1;
        while i < self.tree.len() {
            self.tree[i] = self.tree[i].wrapping_add(delta as u64);
            i += i & i.wrapping_neg();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// A plain LRU list: distance = bytes of the distinct blocks read since, plus the block.
    fn brute(trace: &[(usize, u32, u64)]) -> Vec<Option<u64>> {
        let mut stack: Vec<((usize, u32), u64)> = Vec::new();
        let mut out = Vec::new();
        for &(layer, row, bytes) in trace {
            let key = (layer, row);
            match stack.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    let d: u64 = stack[i + 1..].iter().map(|(_, b)| b).sum::<u64>() + bytes;
                    stack.remove(i);
                    out.push(Some(d));
                }
                None => out.push(None),
            }
            stack.push((key, bytes));
        }
        out
    }

    #[test]
    fn distances_match_a_plain_lru_list_across_compactions() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let sizes = [256u64, 1024, 3072];
        let rows = [40u32, 300, 17];
        let trace: Vec<(usize, u32, u64)> = (0..6000)
            .map(|_| {
                let l = rng.random_range(0..3usize);
                (l, rng.random_range(0..rows[l]), sizes[l])
            })
            .collect();
        let expect = brute(&trace);
        let mut lru = Lru::default();
        for (i, &(l, r, b)) in trace.iter().enumerate() {
            let mut one = Reuse::default();
            lru.read_rows(l, rows[l], std::iter::once(r), b, &mut one);
            match expect[i] {
                None => assert_eq!(one.cold, b, "read {i}"),
                Some(d) => assert_eq!(one.by_distance.keys().next(), Some(&bucket(d)), "read {i}"),
            }
        }
    }

    #[test]
    fn a_cyclic_sweep_hits_only_when_the_whole_cycle_fits() {
        // 100 rows of 64 bytes read in order, ten times: every reread has distance 6400.
        let mut lru = Lru::default();
        let mut r = Reuse::default();
        for _ in 0..10 {
            lru.read_rows(0, 100, 0..100, 64, &mut r);
        }
        assert_eq!(r.total(), 10 * 6400);
        assert_eq!(r.cold, 6400);
        assert_eq!(r.missed(6400), 6400);
        assert_eq!(r.missed(6399), 64_000);
        assert_eq!(r.missed(u64::MAX), 6400);
    }

    #[test]
    fn buckets_never_understate_a_distance_and_stay_within_two_percent() {
        for d in [
            1u64,
            63,
            64,
            65,
            4096,
            4097,
            10_000,
            1 << 20,
            (1 << 40) + 12345,
        ] {
            let b = bucket(d);
            assert!(b >= d, "{d}");
            assert!((b - d) as f64 <= 0.016 * d as f64 + 64.0, "{d} -> {b}");
        }
    }
}
