//! IEEE fp16 rounding by the CPU's conversion instructions (x86 F16C): `vcvtps2ph` rounds to
//! nearest even with fp16's subnormals and overflow to infinity, exactly as
//! `FloatFormat::FP16.round_f32` does for finite values, in two instructions per eight lanes.
//! Infinite and NaN sums are reported, not rounded: their patterns are the scalar encoder's to
//! give.

/// Whether this CPU has the instructions (AVX2 and F16C), detected at run time.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    const EXP: i32 = 0x7F80_0000;

    /// Whether a lane of `s` is infinite or NaN.
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    fn any_special(s: __m256) -> bool {
        let e = _mm256_and_si256(_mm256_castps_si256(s), _mm256_set1_epi32(EXP));
        _mm256_movemask_epi8(_mm256_cmpeq_epi32(e, _mm256_set1_epi32(EXP))) != 0
    }

    /// `a[i] = fp16(a[i] + p[i])`; true when a sum is infinite or NaN (then `a` holds
    /// unspecified values for the caller to recompute).
    ///
    /// # Safety
    /// The CPU must have AVX2 and F16C ([`super::available`]).
    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    pub fn round_sum8(a: &mut [f32; 8], p: &[f32; 8]) -> bool {
        // SAFETY: both arrays hold 8 f32 values; unaligned loads and stores.
        let s = unsafe { _mm256_add_ps(_mm256_loadu_ps(a.as_ptr()), _mm256_loadu_ps(p.as_ptr())) };
        let r = _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(s));
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), r) };
        any_special(s)
    }

    /// [`round_sum8`] on sixteen lanes (AVX-512's forms of the conversions).
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub fn round_sum16(a: &mut [f32; 16], p: &[f32; 16]) -> bool {
        // SAFETY: both arrays hold 16 f32 values; unaligned loads and stores.
        let s = unsafe { _mm512_add_ps(_mm512_loadu_ps(a.as_ptr()), _mm512_loadu_ps(p.as_ptr())) };
        let r = _mm512_cvtph_ps(_mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(s));
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(a.as_mut_ptr(), r) };
        let e = _mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32(EXP));
        _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(EXP)) != 0
    }

    /// [`add_into`] on sixteen lanes.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub fn add_into16(ys: &mut [f32], t: &[f32]) -> bool {
        let n = ys.len().min(t.len());
        let split = n - n % 16;
        let mut special = false;
        for (y16, t16) in ys[..split].chunks_exact(16).zip(t.chunks_exact(16)) {
            // SAFETY: exact chunks of 16 values.
            let s = unsafe {
                _mm512_add_ps(_mm512_loadu_ps(y16.as_ptr()), _mm512_loadu_ps(t16.as_ptr()))
            };
            let e = _mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32(EXP));
            special |= _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(EXP)) != 0;
        }
        for (y, v) in ys[split..n].iter().zip(&t[split..n]) {
            let s = y + v;
            special |= s.to_bits() & EXP as u32 == EXP as u32;
        }
        if special {
            return false;
        }
        let (body, rest) = ys[..n].split_at_mut(split);
        for (y16, t16) in body.chunks_exact_mut(16).zip(t.chunks_exact(16)) {
            let mut a = [0f32; 16];
            a.copy_from_slice(y16);
            let mut p = [0f32; 16];
            p.copy_from_slice(t16);
            round_sum16(&mut a, &p);
            y16.copy_from_slice(&a);
        }
        if !rest.is_empty() {
            let mut a = [0f32; 16];
            let mut p = [0f32; 16];
            a[..rest.len()].copy_from_slice(rest);
            p[..rest.len()].copy_from_slice(&t[split..n]);
            round_sum16(&mut a, &p);
            rest.copy_from_slice(&a[..rest.len()]);
        }
        true
    }

    /// `ys[i] = fp16(ys[i] + t[i])` for every `i`, or false (and `ys` unchanged) when a sum is
    /// infinite or NaN.
    ///
    /// # Safety
    /// The CPU must have AVX2 and F16C ([`super::available`]).
    #[target_feature(enable = "avx2,f16c")]
    pub fn add_into(ys: &mut [f32], t: &[f32]) -> bool {
        let n = ys.len().min(t.len());
        let mut special = false;
        for (y8, t8) in ys[..n].chunks_exact(8).zip(t.chunks_exact(8)) {
            // SAFETY: exact chunks of 8 values.
            let s = unsafe {
                _mm256_add_ps(_mm256_loadu_ps(y8.as_ptr()), _mm256_loadu_ps(t8.as_ptr()))
            };
            special |= any_special(s);
        }
        for (y, v) in ys[n - n % 8..n].iter().zip(&t[n - n % 8..n]) {
            let s = y + v;
            special |= s.to_bits() & EXP as u32 == EXP as u32;
        }
        if special {
            return false;
        }
        let mut tail = [0f32; 8];
        let split = n - n % 8;
        let (body, rest) = ys[..n].split_at_mut(split);
        for (y8, t8) in body.chunks_exact_mut(8).zip(t.chunks_exact(8)) {
            let mut a = [0f32; 8];
            a.copy_from_slice(y8);
            let mut p = [0f32; 8];
            p.copy_from_slice(t8);
            round_sum8(&mut a, &p);
            y8.copy_from_slice(&a);
        }
        if !rest.is_empty() {
            let mut a = [0f32; 8];
            a[..rest.len()].copy_from_slice(rest);
            tail[..rest.len()].copy_from_slice(&t[split..n]);
            round_sum8(&mut a, &tail);
            rest.copy_from_slice(&a[..rest.len()]);
        }
        true
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{add_into, add_into16, round_sum8, round_sum16};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::FloatFormat;

    #[test]
    fn hardware_fp16_rounding_gives_the_encoder_bits_for_finite_sums() {
        if !available() {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let f = FloatFormat::FP16;
            let mut r = 0x9E37_79B9_7F4A_7C15u64;
            let mut next = move || {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                r
            };
            // Random patterns across the whole f32 range (many overflow or underflow fp16),
            // plus the edges: halfway cases, the largest finite value and its rounding edge,
            // subnormals and signed zeros.
            let mut vals: Vec<f32> = (0..200_000)
                .map(|i| {
                    let b = next() as u32;
                    let v = f32::from_bits(b);
                    if i % 2 == 0 && v.is_finite() {
                        // Concentrate half of them in fp16's range.
                        f32::from_bits((b & 0x807F_FFFF) | ((b >> 23) % 40 + 100) << 23)
                    } else {
                        v
                    }
                })
                .filter(|v| v.is_finite())
                .collect();
            vals.extend([
                65504.0,
                65519.99,
                65520.0,
                -65520.0,
                6.0e-8,
                5.96e-8,
                2.98e-8,
                2.99e-8,
                0.0,
                -0.0,
                1.0 + 1.0 / 2048.0,
                1.0 + 3.0 / 2048.0,
                6.1035e-5,
            ]);
            for chunk in vals.chunks(8) {
                let mut a = [0f32; 8];
                a[..chunk.len()].copy_from_slice(chunk);
                let p = [0f32; 8];
                let want: Vec<u32> = a.iter().map(|&v| f.round_f32(v + 0.0).to_bits()).collect();
                // SAFETY: `available()` checked above.
                let special = unsafe { round_sum8(&mut a, &p) };
                assert!(!special);
                for (i, (&got, &w)) in a.iter().zip(&want).enumerate() {
                    assert_eq!(
                        got.to_bits(),
                        w,
                        "lane {i}: {:e}",
                        chunk.get(i).unwrap_or(&0.0)
                    );
                }
            }
            // A sum that overflows f32 is reported, and a slice with one leaves `ys` as it was.
            let mut a = [3e38f32; 8];
            assert!(unsafe { round_sum8(&mut a, &[3e38; 8]) });
            let mut ys = vec![1.0f32; 13];
            let mut t = vec![0.5f32; 13];
            t[11] = f32::INFINITY;
            assert!(!unsafe { add_into(&mut ys, &t) });
            assert!(ys.iter().all(|&v| v == 1.0));
            t[11] = 0.25;
            assert!(unsafe { add_into(&mut ys, &t) });
            assert_eq!(ys[11], 1.25);
            assert_eq!(ys[12], 1.5);
        }
    }
}
