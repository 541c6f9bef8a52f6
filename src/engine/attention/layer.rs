//! One multi-head attention layer: input projections, an attention core, output projection.
//!
//! Softmax and linear attention project queries, keys and values separately (`q`, `k`, `v`);
//! EcoFormer shares one query/key projection (`qk`, so Q = K and the codes of queries and keys
//! are the same) plus `v`. Projections count into their own ledger layers, the core into
//! `{prefix}.core.{step}`, so reports can show the core apart from the projections.

use rand::SeedableRng;

use super::hashed::{self, EcoState, KernelHash};
use super::linear::{self, LinearState};
use super::softmax::{self, KvCache};
use super::{AttentionKind, Heads, Normalisation, StepIds, normal};
use crate::engine::Arith;
use crate::engine::linear::Linear;
use crate::ledger::{LayerId, Ledger};

/// The attention core of a layer.
#[derive(Clone, Debug)]
pub enum Core {
    Softmax,
    Linear,
    EcoFormer {
        hash: KernelHash,
        normalisation: Normalisation,
    },
}

#[derive(Clone, Debug)]
pub struct AttentionLayer {
    pub shape: Heads,
    /// Query projection, or the shared query/key projection (EcoFormer).
    pub q: Linear,
    /// Key projection; `None` when shared with the query (EcoFormer).
    pub k: Option<Linear>,
    pub v: Linear,
    pub output: Linear,
    pub core: Core,
}

/// Ledger ids of one layer.
#[derive(Clone, Debug)]
pub struct LayerIds {
    pub q: LayerId,
    pub k: Option<LayerId>,
    pub v: LayerId,
    pub core: StepIds,
    pub output: LayerId,
}

/// Recurrent state of the causal form.
#[derive(Clone, Debug)]
pub enum AttnState {
    Softmax(KvCache),
    Linear(LinearState),
    EcoFormer(EcoState),
}

impl AttentionLayer {
    /// A layer with seeded Gaussian projections (std 1 / sqrt(D)) and, for EcoFormer, a random
    /// hash (counts do not depend on the parameter values).
    pub fn seeded(kind: &AttentionKind, shape: Heads, seed: u64) -> AttentionLayer {
        let d = shape.dim();
        let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed);
        let std = 1.0 / (d as f32).sqrt();
        let lin = |rng: &mut rand::rngs::Xoshiro256PlusPlus| {
            let w: Vec<f32> = (0..d * d).map(|_| std * normal(rng)).collect();
            Linear::from_out_in(&w, d, d)
        };
        let q = lin(&mut rng);
        let (k, core) = match kind {
            AttentionKind::Softmax => (Some(lin(&mut rng)), Core::Softmax),
            AttentionKind::Linear => (Some(lin(&mut rng)), Core::Linear),
            AttentionKind::EcoFormer {
                bits,
                anchors,
                normalisation,
            } => (
                None,
                Core::EcoFormer {
                    hash: KernelHash::random(
                        shape.heads,
                        *bits,
                        *anchors,
                        shape.head_dim,
                        seed ^ 0x5eed,
                    ),
                    normalisation: *normalisation,
                },
            ),
        };
        let v = lin(&mut rng);
        let output = lin(&mut rng);
        AttentionLayer {
            shape,
            q,
            k,
            v,
            output,
            core,
        }
    }

    pub fn register(&self, l: &mut Ledger, prefix: &str) -> LayerIds {
        let shared = self.k.is_none();
        let q = l.layer(&format!("{prefix}.{}", if shared { "qk" } else { "q" }));
        let k = (!shared).then(|| l.layer(&format!("{prefix}.k")));
        let v = l.layer(&format!("{prefix}.v"));
        let core_prefix = format!("{prefix}.core");
        let core = match self.core {
            Core::Softmax => softmax::register(l, &core_prefix),
            Core::Linear => linear::register(l, &core_prefix),
            Core::EcoFormer { .. } => hashed::register(l, &core_prefix),
        };
        let output = l.layer(&format!("{prefix}.output"));
        LayerIds {
            q,
            k,
            v,
            core,
            output,
        }
    }

    pub fn new_state(&self, capacity: usize) -> AttnState {
        match &self.core {
            Core::Softmax => AttnState::Softmax(KvCache::new(self.shape, capacity)),
            Core::Linear => AttnState::Linear(LinearState::new(self.shape)),
            Core::EcoFormer { hash, .. } => AttnState::EcoFormer(EcoState::new(hash)),
        }
    }

    /// Project every row of `x` ([n, D]) with `w`.
    fn project_rows(
        w: &Linear,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        arith: &Arith,
        l: &mut Ledger,
        id: LayerId,
    ) {
        let d = w.n_in;
        let o = w.n_out;
        for i in 0..n {
            w.forward_dense(
                &x[i * d..(i + 1) * d],
                &mut out[i * o..(i + 1) * o],
                arith,
                l.at(id),
            );
        }
    }

    /// Full (non-causal) attention over `n` tokens `x` ([n, D]) into `out` ([n, D]).
    pub fn forward_full(
        &self,
        x: &[f32],
        n: usize,
        out: &mut [f32],
        arith: &Arith,
        l: &mut Ledger,
        ids: &LayerIds,
    ) {
        let d = self.shape.dim();
        let mut q = vec![0.0; n * d];
        let mut v = vec![0.0; n * d];
        let mut a = vec![0.0; n * d];
        Self::project_rows(&self.q, x, n, &mut q, arith, l, ids.q);
        Self::project_rows(&self.v, x, n, &mut v, arith, l, ids.v);
        match &self.core {
            Core::Softmax | Core::Linear => {
                let mut k = vec![0.0; n * d];
                Self::project_rows(
                    self.k.as_ref().expect("separate key projection"),
                    x,
                    n,
                    &mut k,
                    arith,
                    l,
                    ids.k.expect("key id"),
                );
                if matches!(self.core, Core::Softmax) {
                    softmax::forward_full(&q, &k, &v, n, self.shape, &mut a, arith, l, &ids.core);
                } else {
                    linear::forward_full(&q, &k, &v, n, self.shape, &mut a, arith, l, &ids.core);
                }
            }
            Core::EcoFormer {
                hash,
                normalisation,
            } => hashed::forward_full(&q, &v, n, hash, *normalisation, &mut a, arith, l, &ids.core),
        }
        Self::project_rows(&self.output, &a, n, out, arith, l, ids.output);
    }

    /// One token of causal attention. `scratch` holds 4 D floats.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_step(
        &self,
        x: &[f32],
        st: &mut AttnState,
        scratch: &mut [f32],
        out: &mut [f32],
        arith: &Arith,
        l: &mut Ledger,
        ids: &LayerIds,
    ) {
        let d = self.shape.dim();
        let (q, rest) = scratch.split_at_mut(d);
        let (k, rest) = rest.split_at_mut(d);
        let (v, rest) = rest.split_at_mut(d);
        let a = &mut rest[..d];
        self.q.forward_dense(x, q, arith, l.at(ids.q));
        self.v.forward_dense(x, v, arith, l.at(ids.v));
        if let (Some(kw), Some(kid)) = (&self.k, ids.k) {
            kw.forward_dense(x, k, arith, l.at(kid));
        }
        match (&self.core, st) {
            (Core::Softmax, AttnState::Softmax(cache)) => {
                softmax::forward_step(q, k, v, cache, self.shape, a, arith, l, &ids.core)
            }
            (Core::Linear, AttnState::Linear(s)) => {
                linear::forward_step(q, k, v, s, self.shape, a, arith, l, &ids.core)
            }
            (
                Core::EcoFormer {
                    hash,
                    normalisation,
                },
                AttnState::EcoFormer(s),
            ) => hashed::forward_step(q, v, s, hash, *normalisation, a, arith, l, &ids.core),
            _ => panic!("attention state does not match the layer's core"),
        }
        self.output.forward_dense(a, out, arith, l.at(ids.output));
    }
}
