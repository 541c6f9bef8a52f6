//! Convolutions (1-d and 2-d, stride, zero padding, groups), dense (fed by real values) and
//! event-driven (fed by spikes), as PyTorch's `Conv1d` / `Conv2d` compute them. A 1-d
//! convolution is a 2-d one with height 1.
//!
//! Both forms scatter each non-zero input into the outputs it reaches. Weights are stored per
//! input channel and kernel tap, output channels innermost (`w[((ci * kh + ky) * kw + kx) *
//! cout_g + oc]`): an event reads, for each kernel tap that lands inside the output, one
//! contiguous row of its group's output channels.
//!
//! Counting:
//! - dense: one `mac` per executed product (non-zero input x in-bounds tap x output channel of
//!   its group; zero inputs are gated). Weights are read once per tap and output position, all
//!   of them whatever the input (no weight reuse across positions: Lemaire et al.'s Eq. 6.1 for
//!   a dense convolution); the input is read once and the output written once.
//! - event-driven: one `ac` and one `synop` per synaptic event (event x in-bounds tap x output
//!   channel), only the weight rows the events touch are read, one address read per event, the
//!   output written once.
//! - NeuroBench: `effective_mac` / `effective_ac` exclude zero weights; `dense_synop` is the
//!   all-ones count (in-bounds taps x output positions x input channels per group; padding is
//!   zeros and not counted), computed once at construction by enumerating the geometry.

use serde::{Deserialize, Serialize};

use super::arith::Arith;
use super::events::SpikeTrain;
use crate::ledger::{Counts, Op, TensorClass};

/// Shape of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvGeom {
    pub c_in: usize,
    pub c_out: usize,
    /// Input height and width (height 1 for 1-d).
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub groups: usize,
}

impl ConvGeom {
    pub fn validate(&self) -> Result<(), String> {
        let g = self;
        if [g.c_in, g.c_out, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.groups].contains(&0) {
            return Err("channels, input size, kernel, stride and groups must be positive".into());
        }
        if !g.c_in.is_multiple_of(g.groups) || !g.c_out.is_multiple_of(g.groups) {
            return Err(format!(
                "groups {} must divide in_channels {} and out_channels {}",
                g.groups, g.c_in, g.c_out
            ));
        }
        if g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw {
            return Err(format!(
                "kernel {}x{} is larger than the padded input {}x{}",
                g.kh,
                g.kw,
                g.h + 2 * g.ph,
                g.w + 2 * g.pw
            ));
        }
        Ok(())
    }
    pub fn h_out(&self) -> usize {
        (self.h + 2 * self.ph - self.kh) / self.sh + 1
    }

    /// Non-overlapping, unpadded and tiling the input exactly (a patchify, as PVT's spatial
    /// reduction): the convolution is one matrix product of the patches with the kernel.
    pub fn is_patchify(&self) -> bool {
        self.groups == 1
            && (self.kh, self.kw) == (self.sh, self.sw)
            && (self.ph, self.pw) == (0, 0)
            && self.h == self.h_out() * self.sh
            && self.w == self.w_out() * self.sw
    }
    pub fn w_out(&self) -> usize {
        (self.w + 2 * self.pw - self.kw) / self.sw + 1
    }
    pub fn n_in(&self) -> usize {
        self.c_in * self.h * self.w
    }
    pub fn n_out(&self) -> usize {
        self.c_out * self.h_out() * self.w_out()
    }
    pub fn cin_g(&self) -> usize {
        self.c_in / self.groups
    }
    pub fn cout_g(&self) -> usize {
        self.c_out / self.groups
    }
    /// Parameters of the kernel (bias excluded): c_out x c_in/groups x kh x kw.
    pub fn n_weights(&self) -> usize {
        self.c_out * self.cin_g() * self.kh * self.kw
    }
    /// The output coordinate an input coordinate `i` reaches through kernel offset `k`, if any.
    #[inline]
    fn out_coord(i: usize, k: usize, pad: usize, stride: usize, n_out: usize) -> Option<usize> {
        let p = i + pad;
        if p < k {
            return None;
        }
        let d = p - k;
        if !d.is_multiple_of(stride) || d / stride >= n_out {
            return None;
        }
        Some(d / stride)
    }
}

#[derive(Clone, Debug)]
pub struct Conv {
    pub geom: ConvGeom,
    w_s: Vec<f32>,
    nnz_row: Vec<u32>,
    /// In-bounds (input, tap, output) triples x output channels per group: NeuroBench `Dense`.
    dense_ops: u64,
}

impl Conv {
    /// From PyTorch's layout `[c_out, c_in / groups, kh, kw]`, row-major.
    pub fn from_pytorch(geom: ConvGeom, w: &[f32]) -> Conv {
        assert_eq!(w.len(), geom.n_weights(), "conv weight length");
        let (cin_g, cout_g, kh, kw) = (geom.cin_g(), geom.cout_g(), geom.kh, geom.kw);
        let mut w_s = vec![0.0; w.len()];
        for oc in 0..geom.c_out {
            let g = oc / cout_g;
            for cl in 0..cin_g {
                let ci = g * cin_g + cl;
                for ky in 0..kh {
                    for kx in 0..kw {
                        w_s[((ci * kh + ky) * kw + kx) * cout_g + oc % cout_g] =
                            w[((oc * cin_g + cl) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        let nnz_row = w_s
            .chunks(cout_g)
            .map(|r| r.iter().filter(|v| **v != 0.0).count() as u32)
            .collect();
        let mut conv = Conv {
            geom,
            w_s,
            nnz_row,
            dense_ops: 0,
        };
        let ones = vec![1.0f32; geom.n_in()];
        let mut y = vec![0.0; geom.n_out()];
        conv.dense_ops = conv.scatter(&ones, &mut y, &Arith::Exact, |x, w| x * w).0;
        conv
    }

    /// The weight W[oc][ci % cin_g][ky][kx].
    pub fn weight(&self, oc: usize, ci: usize, ky: usize, kx: usize) -> f32 {
        let cout_g = self.geom.cout_g();
        self.w_s[((ci * self.geom.kh + ky) * self.geom.kw + kx) * cout_g + oc % cout_g]
    }

    pub fn nonzero_weights(&self) -> u64 {
        self.nnz_row.iter().map(|&n| n as u64).sum()
    }

    /// Scatter every non-zero input, accumulating in `arith`'s accumulation format; returns
    /// (products executed, products with a non-zero weight).
    fn scatter(
        &self,
        x: &[f32],
        y: &mut [f32],
        arith: &Arith,
        f: impl Fn(f32, f32) -> f32,
    ) -> (u64, u64) {
        let g = &self.geom;
        let (h_out, w_out, cout_g) = (g.h_out(), g.w_out(), g.cout_g());
        let (mut ops, mut effective) = (0u64, 0u64);
        for ci in 0..g.c_in {
            let oc0 = (ci / g.cin_g()) * cout_g;
            for iy in 0..g.h {
                for ix in 0..g.w {
                    let xv = x[(ci * g.h + iy) * g.w + ix];
                    if xv == 0.0 {
                        continue;
                    }
                    for ky in 0..g.kh {
                        let Some(oy) = ConvGeom::out_coord(iy, ky, g.ph, g.sh, h_out) else {
                            continue;
                        };
                        for kx in 0..g.kw {
                            let Some(ox) = ConvGeom::out_coord(ix, kx, g.pw, g.sw, w_out) else {
                                continue;
                            };
                            let r = (ci * g.kh + ky) * g.kw + kx;
                            let row = &self.w_s[r * cout_g..(r + 1) * cout_g];
                            for (ol, &wv) in row.iter().enumerate() {
                                let o = ((oc0 + ol) * h_out + oy) * w_out + ox;
                                y[o] = arith.add(y[o], f(xv, wv));
                            }
                            ops += cout_g as u64;
                            effective += self.nnz_row[r] as u64;
                        }
                    }
                }
            }
        }
        (ops, effective)
    }

    /// y = conv(x) for a real-valued input; returns NeuroBench's effective MACs (also counted).
    pub fn forward_dense(&self, x: &[f32], y: &mut [f32], arith: &Arith, c: &mut Counts) -> u64 {
        let effective = self.dense_work(x, y, arith, c);
        c.add(Op::EffectiveMac, arith.fmt(), effective);
        c.add(Op::DenseSynop, arith.fmt(), self.dense_ops);
        effective
    }

    /// The work of `forward_dense` without NeuroBench metric counts; returns effective MACs.
    pub fn dense_work(&self, x: &[f32], y: &mut [f32], arith: &Arith, c: &mut Counts) -> u64 {
        debug_assert_eq!(x.len(), self.geom.n_in());
        let arith = &arith.at(super::arith::Site::Projection);
        y.fill(0.0);
        let (macs, effective) = self.scatter(x, y, arith, |a, b| arith.mul(a, b));
        let bytes = arith.operand_bytes();
        arith.count_mac(c, macs);
        c.mem(
            Op::Read,
            arith.fmt(),
            TensorClass::Weight,
            self.dense_ops * bytes,
        );
        c.mem(
            Op::Read,
            arith.fmt(),
            TensorClass::Activation,
            self.geom.n_in() as u64 * bytes,
        );
        c.mem(
            Op::Write,
            arith.fmt(),
            TensorClass::Activation,
            self.geom.n_out() as u64 * bytes,
        );
        effective
    }

    /// y = conv(s) for a spike input (`neg`: the -1 entries of a {-1, 0, 1} input, subtracted).
    /// Returns NeuroBench's effective ACs (also counted).
    pub fn forward_events(
        &self,
        s: &SpikeTrain,
        neg: Option<&SpikeTrain>,
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) -> u64 {
        debug_assert_eq!(s.len(), self.geom.n_in());
        let arith = &arith.at(super::arith::Site::Projection);
        y.fill(0.0);
        let (mut acs, mut effective) = self.scatter(&s.dense, y, arith, |_, w| w);
        let mut events = s.count() as u64;
        if let Some(n) = neg {
            let (a, e) = self.scatter(&n.dense, y, arith, |_, w| -w);
            acs += a;
            effective += e;
            events += n.count() as u64;
        }
        let bytes = arith.operand_bytes();
        arith.count_ac(c, acs);
        c.add(Op::Synop, arith.fmt(), acs);
        c.add(Op::EffectiveAc, arith.fmt(), effective);
        c.add(Op::DenseSynop, arith.fmt(), self.dense_ops);
        c.mem(Op::Read, arith.fmt(), TensorClass::Weight, acs * bytes);
        c.mem(
            Op::Read,
            arith.fmt(),
            TensorClass::Event,
            events * s.address_bytes(),
        );
        c.mem(
            Op::Write,
            arith.fmt(),
            TensorClass::Activation,
            self.geom.n_out() as u64 * bytes,
        );
        effective
    }

    /// y = conv(x) on channels-last tensors (`x`: `[h, w, c_in]`, `y`: `[h_out, w_out, c_out]`),
    /// executed as im2col + GEMM does on a dense accelerator: every kernel tap of every output
    /// position is a multiply-accumulate, taps over the zero padding included, and zero inputs are
    /// not gated. Counts `c_out x cin_g x kh x kw` MACs per output position (the count mmcv's
    /// `get_model_complexity_info` reports for a convolution without bias), each weight read once
    /// per product (no reuse across positions), the input read once and the output written once.
    /// Returns the MACs.
    pub fn forward_im2col_hwc(
        &self,
        x: &[f32],
        y: &mut [f32],
        arith: &Arith,
        c: &mut Counts,
    ) -> u64 {
        let g = &self.geom;
        debug_assert_eq!(x.len(), g.n_in());
        debug_assert_eq!(y.len(), g.n_out());
        let arith = &arith.at(super::arith::Site::Projection);
        let (h_out, w_out, cin_g, cout_g) = (g.h_out(), g.w_out(), g.cin_g(), g.cout_g());
        y.fill(0.0);
        for oy in 0..h_out {
            for ox in 0..w_out {
                let yo = &mut y[(oy * w_out + ox) * g.c_out..(oy * w_out + ox + 1) * g.c_out];
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    for kx in 0..g.kw {
                        let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                        let inside =
                            iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w;
                        let base = if inside {
                            (iy as usize * g.w + ix as usize) * g.c_in
                        } else {
                            0
                        };
                        for ci in 0..g.c_in {
                            // the padded zero is multiplied like any other input
                            let xv = if inside { x[base + ci] } else { 0.0 };
                            let r = (ci * g.kh + ky) * g.kw + kx;
                            let row = &self.w_s[r * cout_g..(r + 1) * cout_g];
                            let oc0 = (ci / cin_g) * cout_g;
                            let ys = &mut yo[oc0..oc0 + cout_g];
                            if arith.is_exact() {
                                for (acc, &wv) in ys.iter_mut().zip(row) {
                                    *acc += xv * wv;
                                }
                            } else {
                                for (acc, &wv) in ys.iter_mut().zip(row) {
                                    *acc = arith.add(*acc, arith.mul(xv, wv));
                                }
                            }
                        }
                    }
                }
            }
        }
        let macs = (h_out * w_out * g.kh * g.kw * g.c_in * cout_g) as u64;
        let bytes = arith.operand_bytes();
        arith.count_mac(c, macs);
        c.mem(Op::Read, arith.fmt(), TensorClass::Weight, macs * bytes);
        c.mem(
            Op::Read,
            arith.fmt(),
            TensorClass::Activation,
            g.n_in() as u64 * bytes,
        );
        c.mem(
            Op::Write,
            arith.fmt(),
            TensorClass::Activation,
            g.n_out() as u64 * bytes,
        );
        if g.is_patchify() {
            // Its reads and writes are exactly those of one matrix product over the patches,
            // which a loop-nest mapping prices with the weights reused across positions.
            c.pass(crate::ledger::Work::Matmul {
                n: (h_out * w_out) as u64,
                c: (g.kh * g.kw * g.c_in) as u64,
                k: g.c_out as u64,
                bytes: bytes as u32,
            });
        } else {
            // A sliding window: the mapping tiles the kernel over the output positions.
            c.pass(crate::ledger::Work::Conv {
                groups: g.groups as u64,
                c: cin_g as u64,
                k: cout_g as u64,
                h: g.h as u64,
                w: g.w as u64,
                r: g.kh as u64,
                s: g.kw as u64,
                sh: g.sh as u64,
                sw: g.sw as u64,
                ph: g.ph as u64,
                pw: g.pw as u64,
                bytes: bytes as u32,
                n: 1,
            });
        }
        macs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a pass says it covers are exactly the bytes the layer counted.
    fn assert_pass_covers_its_traffic(c: &Counts, work: &crate::ledger::Work) {
        for (op, class, bytes) in work.traffic() {
            let counted: u64 = c
                .iter()
                .filter(|(k, _)| k.op == op && k.class == Some(class))
                .map(|(_, v)| *v)
                .sum();
            assert_eq!(counted, bytes, "{op:?} {class:?}");
        }
    }

    #[test]
    fn a_patchify_convolution_files_a_matmul_pass_covering_exactly_its_traffic() {
        let geom = ConvGeom {
            c_in: 3,
            c_out: 5,
            h: 8,
            w: 8,
            kh: 4,
            kw: 4,
            sh: 4,
            sw: 4,
            ph: 0,
            pw: 0,
            groups: 1,
        };
        assert!(geom.is_patchify());
        let n: usize = geom.c_out * geom.cin_g() * 16;
        let conv = Conv::from_pytorch(geom, &(0..n).map(|i| i as f32 * 0.01).collect::<Vec<_>>());
        let x: Vec<f32> = (0..geom.n_in()).map(|i| (i % 7) as f32).collect();
        let mut y = vec![0.0; geom.n_out()];
        let mut c = Counts::default();
        conv.forward_im2col_hwc(&x, &mut y, &Arith::Exact, &mut c);
        let work: Vec<_> = c.4.keys().copied().collect();
        assert_eq!(
            work,
            [crate::ledger::Work::Matmul {
                n: 4,
                c: 48,
                k: 5,
                bytes: 4
            }]
        );
        assert_pass_covers_its_traffic(&c, &work[0]);
        // overlapping or padded convolutions are not one product of disjoint patches
        assert!(
            !ConvGeom {
                sh: 2,
                sw: 2,
                ..geom
            }
            .is_patchify()
        );
        assert!(
            !ConvGeom {
                ph: 1,
                pw: 1,
                ..geom
            }
            .is_patchify()
        );
        assert!(!ConvGeom { h: 9, ..geom }.is_patchify());
    }

    #[test]
    fn a_sliding_window_convolution_files_a_conv_pass_covering_exactly_its_traffic() {
        // Grouped, strided and padded, with an output size the stride does not divide evenly.
        let geom = ConvGeom {
            c_in: 4,
            c_out: 6,
            h: 9,
            w: 7,
            kh: 3,
            kw: 3,
            sh: 2,
            sw: 2,
            ph: 1,
            pw: 1,
            groups: 2,
        };
        let n: usize = geom.c_out * geom.cin_g() * 9;
        let conv = Conv::from_pytorch(geom, &(0..n).map(|i| i as f32 * 0.01).collect::<Vec<_>>());
        let x: Vec<f32> = (0..geom.n_in()).map(|i| (i % 5) as f32).collect();
        let mut y = vec![0.0; geom.n_out()];
        let mut c = Counts::default();
        let macs = conv.forward_im2col_hwc(&x, &mut y, &Arith::Exact, &mut c);
        let work: Vec<_> = c.4.keys().copied().collect();
        assert_eq!(work.len(), 1);
        let crate::ledger::Work::Conv {
            groups, c: cg, k, ..
        } = work[0]
        else {
            panic!("{work:?}");
        };
        assert_eq!((groups, cg, k), (2, 2, 3));
        assert_eq!(work[0].conv_out(), (5, 4));
        assert_eq!(work[0].macs(), macs);
        assert_pass_covers_its_traffic(&c, &work[0]);
        assert!(work[0].validate().is_ok());
    }

    fn geom2(h: usize, w: usize, k: usize, s: usize, p: usize) -> ConvGeom {
        ConvGeom {
            c_in: 1,
            c_out: 1,
            h,
            w,
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            ph: p,
            pw: p,
            groups: 1,
        }
    }

    /// Direct (gather) convolution, for reference.
    fn reference(g: &ConvGeom, wt: &[f32], x: &[f32]) -> Vec<f32> {
        let (ho, wo) = (g.h_out(), g.w_out());
        let mut y = vec![0.0; g.n_out()];
        for oc in 0..g.c_out {
            let grp = oc / g.cout_g();
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0.0;
                    for cl in 0..g.cin_g() {
                        let ci = grp * g.cin_g() + cl;
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                                let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                acc += x[(ci * g.h + iy as usize) * g.w + ix as usize]
                                    * wt[((oc * g.cin_g() + cl) * g.kh + ky) * g.kw + kx];
                            }
                        }
                    }
                    y[(oc * ho + oy) * wo + ox] = acc;
                }
            }
        }
        y
    }

    #[test]
    fn scatter_accumulates_in_the_accumulation_format() {
        use crate::engine::arith::{Mode, Scope};
        use crate::numerics::FloatFormat;
        let g = ConvGeom {
            c_in: 3,
            c_out: 2,
            h: 6,
            w: 6,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            ph: 1,
            pw: 1,
            groups: 1,
        };
        let wt: Vec<f32> = (0..g.n_weights())
            .map(|i| 1.0 + i as f32 / 1000.0)
            .collect();
        let x: Vec<f32> = (0..g.n_in()).map(|i| 1.0 + i as f32 / 512.0).collect();
        let conv = Conv::from_pytorch(g, &wt);
        let narrow = Arith::new(
            Mode::Round {
                format: FloatFormat::FP32,
                acc: FloatFormat::FP16,
            },
            Scope::All,
        );
        let (mut y, mut exact) = (vec![0.0; g.n_out()], vec![0.0; g.n_out()]);
        let mut c = Counts::default();
        conv.forward_dense(&x, &mut y, &narrow, &mut c);
        conv.forward_dense(&x, &mut exact, &Arith::Exact, &mut c);
        assert!(y.iter().all(|v| FloatFormat::FP16.round_f32(*v) == *v));
        assert_ne!(y, exact, "fp16 accumulation must round the sums");
    }

    #[test]
    fn scatter_matches_direct_convolution_with_stride_padding_and_groups() {
        let g = ConvGeom {
            c_in: 4,
            c_out: 6,
            h: 5,
            w: 7,
            kh: 3,
            kw: 2,
            sh: 2,
            sw: 1,
            ph: 1,
            pw: 1,
            groups: 2,
        };
        g.validate().unwrap();
        let wt: Vec<f32> = (0..g.n_weights())
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let x: Vec<f32> = (0..g.n_in())
            .map(|i| {
                if i % 3 == 0 {
                    0.0
                } else {
                    (i % 5) as f32 - 1.5
                }
            })
            .collect();
        let conv = Conv::from_pytorch(g, &wt);
        let mut y = vec![0.0; g.n_out()];
        let mut c = Counts::default();
        conv.forward_dense(&x, &mut y, &Arith::Exact, &mut c);
        let r = reference(&g, &wt, &x);
        for (a, b) in y.iter().zip(&r) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn im2col_channels_last_matches_direct_convolution_and_counts_padded_taps() {
        let g = ConvGeom {
            c_in: 4,
            c_out: 6,
            h: 5,
            w: 7,
            kh: 3,
            kw: 3,
            sh: 2,
            sw: 2,
            ph: 1,
            pw: 1,
            groups: 2,
        };
        let wt: Vec<f32> = (0..g.n_weights())
            .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0)
            .collect();
        let x: Vec<f32> = (0..g.n_in()).map(|i| (i % 7) as f32 - 2.5).collect();
        let conv = Conv::from_pytorch(g, &wt);
        let r = reference(&g, &wt, &x);
        // channels-last copy of the input, and of the result
        let (ho, wo) = (g.h_out(), g.w_out());
        let mut xh = vec![0.0; g.n_in()];
        for ci in 0..g.c_in {
            for p in 0..g.h * g.w {
                xh[p * g.c_in + ci] = x[ci * g.h * g.w + p];
            }
        }
        let mut y = vec![0.0; g.n_out()];
        let mut c = Counts::default();
        let macs = conv.forward_im2col_hwc(&xh, &mut y, &Arith::Exact, &mut c);
        for oc in 0..g.c_out {
            for p in 0..ho * wo {
                assert!((y[p * g.c_out + oc] - r[oc * ho * wo + p]).abs() < 1e-4);
            }
        }
        assert_eq!(macs, (ho * wo * 9 * 2 * 6) as u64);
        assert_eq!(c.op_total(Op::Mac), macs);
    }

    #[test]
    fn neurobench_conv2d_counts_nine_and_nine_hundred() {
        for (n, expected) in [(3, 9u64), (12, 900)] {
            let g = geom2(n, n, 3, 1, 0);
            let conv = Conv::from_pytorch(g, &[0.5; 9]);
            let mut x = vec![1.0; n * n];
            x[0] = 4.0;
            let mut y = vec![0.0; g.n_out()];
            let mut c = Counts::default();
            conv.forward_dense(&x, &mut y, &Arith::Exact, &mut c);
            assert_eq!(c.op_total(Op::EffectiveMac), expected);
            assert_eq!(c.op_total(Op::DenseSynop), expected);
            assert_eq!(c.op_total(Op::Mac), expected);
        }
    }

    #[test]
    fn events_read_only_the_rows_they_touch_and_match_dense() {
        let g = geom2(4, 4, 3, 1, 1);
        let wt: Vec<f32> = (0..9).map(|i| i as f32).collect();
        let conv = Conv::from_pytorch(g, &wt);
        let mut s = SpikeTrain::new(16);
        s.fire(0); // corner: taps reaching outputs (0,0),(0,1),(1,0),(1,1) -> 4
        let mut ye = vec![0.0; 16];
        let mut c = Counts::default();
        conv.forward_events(&s, None, &mut ye, &Arith::Exact, &mut c);
        assert_eq!(c.op_total(Op::Ac), 4);
        assert_eq!(c.op_total(Op::EffectiveAc), 3); // the tap with weight 0 is excluded
        let wbytes =
            c.0[&crate::ledger::ActionKey::mem(Op::Read, crate::ledger::FP32, TensorClass::Weight)];
        assert_eq!(wbytes, 4 * 4);
        let mut yd = vec![0.0; 16];
        conv.forward_dense(&s.dense, &mut yd, &Arith::Exact, &mut Counts::default());
        assert_eq!(ye, yd);
    }
}
