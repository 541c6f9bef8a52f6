//! Primitives that execute and count. Each primitive adds the counts of the work it does, in the
//! same function that does it; nothing re-derives counts from shapes afterwards.

pub mod arith;
pub mod cells;
pub mod conv;
pub mod delay;
pub mod events;
pub mod isa;
pub mod leaky;
pub mod lif;
pub mod linear;
pub mod neurons;
pub mod norm;
pub mod pointwise;
pub mod pool;
pub mod wkv;

pub use arith::Arith;
pub use events::SpikeTrain;
pub mod attention;

/// Names of the ledger layers of whole-model steps that conventions treat apart (suffixes of a
/// layer's path, as the attention steps in `attention::step`). Conventions select by them.
pub mod model_step {
    /// Row statistics of a LayerNorm (`engine::norm::layer_norm_rows`), under the norm's path.
    pub const NORM_STATS: &str = "norm_stats";
    /// The bias of a Linear layer, under the layer's path.
    pub const BIAS: &str = "bias";
    /// The bias of a convolution, under the convolution's path.
    pub const CONV_BIAS: &str = "conv_bias";
    pub const GELU: &str = "gelu";
    /// Residual adds of a block.
    pub const RESIDUAL: &str = "residual";
    /// Mean over the tokens before a classification head.
    pub const MEAN_POOL: &str = "mean_pool";
}
