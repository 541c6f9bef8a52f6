//! Which vector instruction set the kernels run on. The loops are plain Rust, written as
//! selects on independent lanes; each kernel is compiled once per instruction set (a
//! `#[target_feature]` wrapper around the same loop) and the widest one the CPU has is chosen
//! at run time. The forms give the same values bit for bit: tests run every form the CPU has.

/// The instruction set a kernel is compiled for. The loops are the same Rust code in every
/// case (selects on independent lanes); only the target features they are compiled with
/// differ, so every form gives the same values bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// 512-bit vectors (AVX-512 F/BW/VL/DQ with F16C): sixteen lanes and 32 vector registers.
    Avx512,
    /// 256-bit vectors (AVX2).
    Avx2,
    /// Whatever the compile target has (SSE2 on plain x86-64).
    Portable,
}

use std::sync::atomic::{AtomicU8, Ordering};

/// The widest form kernels may use (`set_limit`); 0 = no limit.
static LIMIT: AtomicU8 = AtomicU8::new(0);

impl Isa {
    fn rank(self) -> u8 {
        match self {
            Isa::Portable => 1,
            Isa::Avx2 => 2,
            Isa::Avx512 => 3,
        }
    }

    /// The widest form this CPU runs (detected at run time; the detection is cached), or the
    /// limit set by [`Isa::set_limit`] when that is narrower.
    #[inline]
    pub fn best() -> Isa {
        let detected = Isa::detected();
        match LIMIT.load(Ordering::Relaxed) {
            0 => detected,
            l if l < detected.rank() => [Isa::Portable, Isa::Avx2][l as usize - 1],
            _ => detected,
        }
    }

    /// Run kernels no wider than `isa` (`None`: the widest the CPU has). Values do not change;
    /// benchmarks use it to measure each form on one machine.
    pub fn set_limit(isa: Option<Isa>) {
        LIMIT.store(isa.map_or(0, Isa::rank), Ordering::Relaxed);
    }

    #[inline]
    fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f")
                && has!("avx512bw")
                && has!("avx512vl")
                && has!("avx512dq")
                && has!("f16c")
                && has!("fma")
            {
                return Isa::Avx512;
            }
            if has!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Every form this CPU runs, widest first (for tests that compare them).
    pub fn supported() -> Vec<Isa> {
        match Isa::detected() {
            Isa::Avx512 => vec![Isa::Avx512, Isa::Avx2, Isa::Portable],
            Isa::Avx2 => vec![Isa::Avx2, Isa::Portable],
            Isa::Portable => vec![Isa::Portable],
        }
    }
}
