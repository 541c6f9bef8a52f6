//! 2-d sum and average pooling over channels-first maps (`[c, h, w]`), zero padding, as NIR's
//! `SumPool2d` / `AvgPool2d` (and PyTorch's `AvgPool2d` with `count_include_pad=True`).
//!
//! Counting: pooling is accumulation, no weights. Each non-zero input adds into every window
//! that covers it (one `add` each; zeros, and so silent spikes, are skipped); an average pool
//! then multiplies every output by 1 / (kernel area) (one `mul` each). The input is read once
//! and the output written once.

use super::arith::{Arith, Site};
use crate::ledger::{Counts, Op, TensorClass};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
}

impl PoolGeom {
    pub fn validate(&self) -> Result<(), String> {
        if self.kh == 0 || self.kw == 0 || self.sh == 0 || self.sw == 0 {
            return Err("pooling kernel and stride must be positive".into());
        }
        if self.h + 2 * self.ph < self.kh || self.w + 2 * self.pw < self.kw {
            return Err(format!(
                "pooling kernel {}x{} is larger than its padded {}x{} input",
                self.kh,
                self.kw,
                self.h + 2 * self.ph,
                self.w + 2 * self.pw
            ));
        }
        Ok(())
    }

    pub fn h_out(&self) -> usize {
        (self.h + 2 * self.ph - self.kh) / self.sh + 1
    }

    pub fn w_out(&self) -> usize {
        (self.w + 2 * self.pw - self.kw) / self.sw + 1
    }

    pub fn n_out(&self) -> usize {
        self.c * self.h_out() * self.w_out()
    }

    /// Output positions (oy) whose window covers input row y (padded coordinate y + ph).
    fn outs(y: usize, p: usize, k: usize, s: usize, n_out: usize) -> std::ops::Range<usize> {
        let yp = y + p;
        let lo = if yp + 1 > k {
            (yp + 1 - k).div_ceil(s)
        } else {
            0
        };
        let hi = (yp / s + 1).min(n_out);
        lo..hi.max(lo)
    }
}

/// y = sum (or average, `avg`) over each window of x.
pub fn pool2d(g: &PoolGeom, avg: bool, x: &[f32], y: &mut [f32], arith: &Arith, c: &mut Counts) {
    debug_assert_eq!(x.len(), g.c * g.h * g.w);
    let arith = &arith.at(Site::Other);
    let (ho, wo) = (g.h_out(), g.w_out());
    y.fill(0.0);
    let mut adds = 0u64;
    for ch in 0..g.c {
        for iy in 0..g.h {
            let oys = PoolGeom::outs(iy, g.ph, g.kh, g.sh, ho);
            for ix in 0..g.w {
                let v = x[(ch * g.h + iy) * g.w + ix];
                if v == 0.0 {
                    continue;
                }
                for oy in oys.clone() {
                    for ox in PoolGeom::outs(ix, g.pw, g.kw, g.sw, wo) {
                        let o = &mut y[(ch * ho + oy) * wo + ox];
                        *o = arith.add(*o, v);
                        adds += 1;
                    }
                }
            }
        }
    }
    arith.count_add(c, adds);
    if avg {
        let inv = 1.0 / (g.kh * g.kw) as f32;
        for o in y.iter_mut() {
            *o = arith.mul(*o, inv);
        }
        arith.count_mul(c, y.len() as u64);
    }
    let bytes = arith.operand_bytes();
    c.mem(
        Op::Read,
        arith.fmt(),
        TensorClass::Activation,
        x.len() as u64 * bytes,
    );
    c.mem(
        Op::Write,
        arith.fmt(),
        TensorClass::Activation,
        y.len() as u64 * bytes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(h: usize, w: usize, k: usize, s: usize, p: usize) -> PoolGeom {
        PoolGeom {
            c: 1,
            h,
            w,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            ph: p,
            pw: p,
        }
    }

    /// The pooled map by the definition: every window summed directly.
    fn by_windows(g: &PoolGeom, x: &[f32]) -> Vec<f32> {
        let mut y = vec![];
        for oy in 0..g.h_out() {
            for ox in 0..g.w_out() {
                let mut s = 0.0;
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        let (iy, ix) = (oy * g.sh + ky, ox * g.sw + kx);
                        if iy >= g.ph && ix >= g.pw && iy - g.ph < g.h && ix - g.pw < g.w {
                            s += x[(iy - g.ph) * g.w + ix - g.pw];
                        }
                    }
                }
                y.push(s);
            }
        }
        y
    }

    #[test]
    fn scattered_sum_pool_equals_window_sums_for_strides_and_padding() {
        for (k, s, p) in [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0)] {
            let g = geom(5, 4, k, s, p);
            let x: Vec<f32> = (0..20).map(|i| ((i * 7) % 5) as f32 - 1.0).collect();
            let mut y = vec![0.0; g.n_out()];
            let mut c = Counts::default();
            pool2d(&g, false, &x, &mut y, &Arith::Exact, &mut c);
            assert_eq!(y, by_windows(&g, &x), "k {k} s {s} p {p}");
        }
    }

    #[test]
    fn pooling_spikes_costs_one_add_per_covered_spike_and_avg_one_mul_per_output() {
        let g = geom(4, 4, 2, 2, 0);
        let mut x = vec![0.0; 16];
        x[0] = 1.0;
        x[5] = 1.0;
        x[15] = 1.0;
        let mut y = vec![0.0; 4];
        let mut c = Counts::default();
        pool2d(&g, true, &x, &mut y, &Arith::Exact, &mut c);
        assert_eq!(y, vec![0.5, 0.0, 0.0, 0.25]);
        assert_eq!(c.op_total(Op::Add), 3);
        assert_eq!(c.op_total(Op::Mul), 4);
    }
}
