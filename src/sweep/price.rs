//! Pricing grid points: a simulated run's ledger, compiled once, re-priced at each cost point
//! (with Monte Carlo draws of the uncertain prices when asked).

use rand::{RngExt, SeedableRng};

use crate::exec::RunOutput;
use crate::hardware::compiled::{CompiledSet, PointEnergy, leaf_energies, theta};
use crate::hardware::uncertainty::{is_uncertain, quantile, sample};
use crate::hardware::{CostModel, Energy, Hardware};
use crate::ledger::Op;

use super::{AxisValue, Mc, Plan, PointRecord, SweepRow, Target, ViewRow, grid_index};

/// A simulated run at one model point, ready to price.
pub(super) struct Sim {
    pub(super) out: RunOutput,
    view: Option<Option<ViewRow>>,
    mac: u64,
    ac: u64,
    synops: u64,
    spikes: u64,
    unpriced: usize,
}

impl Sim {
    pub(super) fn new(
        out: RunOutput,
        cm: &CostModel,
        view: Option<&(crate::convention::Convention, Hardware)>,
    ) -> Sim {
        let t = out.ledger.totals();
        let view = view.map(|(c, hw)| {
            crate::convention::applies(*c, &out.ledger).ok().map(|()| {
                let v = crate::convention::apply(*c, &out.ledger);
                ViewRow {
                    mul: v.mul(),
                    add: v.add(),
                    energy_pj: crate::hardware::price(&v.to_ledger(crate::ledger::FP32), &hw.model)
                        .energy_pj,
                }
            })
        });
        let unpriced = crate::hardware::price(&out.ledger, cm)
            .unpriced
            .iter()
            .filter(|u| !u.excluded)
            .count();
        Sim {
            view,
            mac: t.op_total(Op::Mac),
            ac: t.op_total(Op::Ac),
            synops: t.op_total(Op::Synop),
            spikes: t.op_total(Op::Spike),
            unpriced,
            out,
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Prices points against simulated runs. Shared by the sweep, the benchmark and the tests.
pub struct Pricer<'a> {
    pub plan: &'a Plan,
    base_theta: Vec<f64>,
    energies: Vec<Energy>,
    uncertain: Vec<usize>,
    dims: Vec<usize>,
}

impl<'a> Pricer<'a> {
    pub fn new(plan: &'a Plan) -> Pricer<'a> {
        let energies = leaf_energies(&plan.cm);
        let uncertain = (0..energies.len())
            .filter(|&i| is_uncertain(energies[i]))
            .collect();
        Pricer {
            plan,
            base_theta: theta(&plan.cm),
            energies,
            uncertain,
            dims: plan.axes.iter().map(|a| a.values.len()).collect(),
        }
    }

    fn theta_at(&self, idx: &[usize]) -> (Vec<f64>, Vec<bool>) {
        let mut th = self.base_theta.clone();
        let mut fixed = vec![false; th.len()];
        for (a, &i) in self.plan.axes.iter().zip(idx) {
            if let Target::Cost(leaf) = a.target {
                th[leaf] = a.values[i].as_f64().expect("checked numeric");
                fixed[leaf] = true;
            }
        }
        (th, fixed)
    }

    pub(super) fn point(
        &self,
        p: usize,
        sims: &[Sim],
        set: &CompiledSet,
        scratch: &mut (Vec<f64>, Vec<PointEnergy>),
    ) -> PointRecord {
        let (vals, energies) = scratch;
        let idx = grid_index(&self.dims, self.plan.zip, p);
        let (th, fixed) = self.theta_at(&idx);
        let values: Vec<AxisValue> = self
            .plan
            .axes
            .iter()
            .zip(&idx)
            .map(|(a, &i)| a.values[i].clone())
            .collect();
        let mut mc: Vec<Vec<f64>> = vec![Vec::new(); sims.len()];
        if self.plan.samples > 0 {
            let seed = splitmix(self.plan.sc.scenario.seed ^ splitmix(p as u64));
            let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
            let mut ths = th.clone();
            for _ in 0..self.plan.samples {
                for &i in &self.uncertain {
                    let u: f64 = rng.random::<f64>();
                    if !fixed[i] {
                        ths[i] = sample(self.energies[i], u);
                    }
                }
                set.price(&ths, vals, energies);
                for (r, e) in energies.iter().enumerate() {
                    mc[r].push(e.total);
                }
            }
        }
        set.price(&th, vals, energies);
        let rows = sims
            .iter()
            .zip(mc)
            .zip(energies.iter())
            .map(|((s, mut draws), e)| {
                let mc = (!draws.is_empty()).then(|| {
                    draws.sort_by(f64::total_cmp);
                    Mc {
                        p05: quantile(&draws, 0.05),
                        p50: quantile(&draws, 0.5),
                        p95: quantile(&draws, 0.95),
                    }
                });
                SweepRow {
                    point: p,
                    values: values.clone(),
                    run: s.out.label.clone(),
                    model: s.out.model.clone(),
                    variant: s.out.variant.clone(),
                    tokens: s.out.tokens,
                    mac: s.mac,
                    ac: s.ac,
                    synops: s.synops,
                    spikes: s.spikes,
                    energy_pj: e.total,
                    by_kind: e.by_kind,
                    unpriced: s.unpriced,
                    top1: s.out.accuracy.as_ref().map(|a| a.top1),
                    bits_per_token: s.out.accuracy.as_ref().and_then(|a| a.bits_per_token),
                    mc,
                    view: s.view,
                }
            })
            .collect();
        PointRecord { point: p, rows }
    }

    /// The energy of every run at every cost point of `points`, fast path only (benchmark).
    pub fn price_totals(&self, points: std::ops::Range<usize>, set: &CompiledSet) -> f64 {
        let mut vals = Vec::new();
        let mut out = Vec::new();
        let mut acc = 0.0;
        let mut th = self.base_theta.clone();
        for p in points {
            let idx = grid_index(&self.dims, self.plan.zip, p);
            for (a, &i) in self.plan.axes.iter().zip(&idx) {
                if let Target::Cost(leaf) = a.target {
                    th[leaf] = a.values[i].as_f64().unwrap_or(0.0);
                }
            }
            set.price(&th, &mut vals, &mut out);
            acc += out.iter().map(|e| e.total).sum::<f64>();
        }
        acc
    }
}
