//! Primitives that execute and count. Each primitive adds the counts of the work it does, in the
//! same function that does it; nothing re-derives counts from shapes afterwards.

pub mod arith;
pub mod cells;
pub mod conv;
pub mod events;
pub mod leaky;
pub mod lif;
pub mod linear;
pub mod norm;
pub mod pointwise;
pub mod wkv;

pub use arith::Arith;
pub use events::SpikeTrain;
pub mod attention;
