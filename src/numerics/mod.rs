//! Numerics core: generic low-precision float formats, L-Mul approximate
//! multiplication on bit patterns, and error statistics that compare them.
//!
//! * [`format`](mod@format): [`FloatFormat`], a generic `ExMy` format with round-to-nearest-even
//!   quantisation that is bit-exact against `half` and `float8`.
//! * [`lmul`]: L-Mul ("Addition is All You Need", Luo & Sun 2024) as one integer add
//!   on the bit patterns, with explicit special-case policies.
//! * [`error_table`](mod@error_table): relative error of products and dot products per format.

pub mod error_table;
pub mod f16c;
pub mod format;
pub mod lmul;

pub use error_table::{Distribution, ErrorRow, ErrorTableConfig, error_table, to_markdown};
pub use format::{FloatFormat, NanStyle, Overflow};
pub use lmul::{
    LmulPolicy, PreparedLmul, int_add_width, l_of_m, lmul_bits, lmul_f32, lmul_formula,
    matvec_exact, matvec_lmul, offset,
};
