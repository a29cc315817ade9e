//! The crate's only unsafe code: AMX tile matrix products and AVX-512 element-wise kernels for
//! the bf16 encoder (`fast.rs`), behind run-time feature detection.
//!
//! Every kernel here has a portable twin in `kernels.rs` that computes the same thing in safe
//! Rust (the tests compare the two on random inputs), and nothing here is reachable without an
//! [`Isa`] token, which only [`Isa::detect`] makes after checking the processor (CPUID), the
//! operating system (XCR0) and Linux's permission for the AMX tile data (`arch_prctl`).
//!
//! Number formats: matrix products take bf16 operands and accumulate in f32 (`tdpbf16ps`:
//! each product of two bf16 is exact in f32, the sums are rounded to nearest even; denormal
//! inputs count as zero). f32 → bf16 rounds to nearest even (`vcvtneps2bf16`, which also
//! flushes denormals to zero); the portable twin does the same.
#![allow(unsafe_code)]

use std::sync::OnceLock;

/// Proof that this process may run the AMX-BF16 and AVX-512 (F, BW, VL, BF16) kernels.
/// Only [`Isa::detect`] creates one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Isa {
    _private: (),
}

impl Isa {
    /// `Some` when the processor has AMX-TILE, AMX-BF16 and AVX-512 F/BW/VL/BF16, the operating
    /// system saves tile state (XCR0 bits 17 and 18) and Linux granted this process the tile
    /// data (`ARCH_REQ_XCOMP_PERM`). Checked once per process.
    pub(crate) fn detect() -> Option<Isa> {
        static DETECTED: OnceLock<bool> = OnceLock::new();
        (*DETECTED.get_or_init(detect_amx)).then_some(Isa { _private: () })
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect_amx() -> bool {
    use std::arch::x86_64::{__cpuid_count, _xgetbv};
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512bf16")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("xsave");
    if !avx512 {
        return false;
    }
    let leaf7 = __cpuid_count(7, 0);
    let amx_bf16 = leaf7.edx & (1 << 22) != 0;
    let amx_tile = leaf7.edx & (1 << 24) != 0;
    if !(amx_bf16 && amx_tile) {
        return false;
    }
    // SAFETY: `xsave` was detected above, so XGETBV is available; reading XCR0 has no effect.
    let xcr0 = unsafe { _xgetbv(0) };
    if xcr0 & (0b11 << 17) != 0b11 << 17 {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) takes two integers and only
    // changes which extended states the kernel lets this process use; it touches no memory.
    let granted = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    granted == 0
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect_amx() -> bool {
    false
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) use x86::*;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(crate) use other::*;

/// Where there is no AMX, no [`Isa`] can exist, so these are never called.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod other {
    use super::Isa;
    pub(crate) fn gemm_bf16(
        _: Isa,
        _: &[u16],
        _: usize,
        _: usize,
        _: &crate::kernels::PackedB,
        _: &mut [f32],
        _: usize,
    ) {
        unreachable!("no Isa token without AMX")
    }
    pub(crate) fn attention_block(
        _: Isa,
        _: &crate::kernels::AttentionBlock<'_>,
        _: &mut [f32],
        _: &mut [u16],
        _: &mut [f32],
    ) {
        unreachable!("no Isa token without AMX")
    }
    pub(crate) fn to_bf16(_: Isa, _: &[f32], _: &mut [u16]) {
        unreachable!("no Isa token without AMX")
    }
    pub(crate) fn bias_gelu_bf16(_: Isa, _: &[f32], _: &[f32], _: &mut [u16]) {
        unreachable!("no Isa token without AMX")
    }
    pub(crate) fn bias_residual_norm(
        _: Isa,
        _: &[f32],
        _: &[f32],
        _: &mut [f32],
        _: &crate::kernels::Norm,
        _: &mut [u16],
    ) {
        unreachable!("no Isa token without AMX")
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::*;

    use super::Isa;
    use crate::kernels::{AttentionBlock, Norm, PackedB};

    /// The tile configuration every kernel uses: palette 1, tiles 0-7 of 16 rows × 64 bytes
    /// (16 f32 accumulators, or 32 bf16, or 16 pairs of bf16 per row).
    #[repr(C, align(64))]
    struct TileConfig([u8; 64]);

    const CONFIG: TileConfig = {
        let mut bytes = [0u8; 64];
        bytes[0] = 1;
        let mut t = 0;
        while t < 8 {
            bytes[16 + 2 * t] = 64;
            bytes[48 + t] = 16;
            t += 1;
        }
        TileConfig(bytes)
    };

    /// Loads [`CONFIG`]; pair with [`release_tiles`].
    ///
    /// # Safety
    /// AMX-TILE must be usable by this process (an [`Isa`] exists).
    #[inline]
    unsafe fn configure_tiles() {
        // SAFETY: CONFIG is a valid palette-1 configuration of 64 aligned bytes (the caller
        // guarantees AMX is enabled for this process).
        unsafe { asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly)) };
    }

    /// # Safety
    /// AMX-TILE must be usable by this process.
    #[inline]
    unsafe fn release_tiles() {
        // SAFETY: TILERELEASE only resets the tile state of this thread.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }

    /// `c[r][n] = Σ_k a[r][k] · B[k][n]` for `rows` rows (a multiple of 16) of `a` (bf16, row
    /// `r` at `a[r * a_stride..]`, `b.k` values each) and every column of `b`; row `r` of the
    /// answer goes to `c[r * c_stride..][..b.n]`.
    pub(crate) fn gemm_bf16(
        _isa: Isa,
        a: &[u16],
        a_stride: usize,
        rows: usize,
        b: &PackedB,
        c: &mut [f32],
        c_stride: usize,
    ) {
        let (k, n) = (b.k, b.n);
        assert!(
            rows.is_multiple_of(16) && k % 32 == 0 && n % 16 == 0,
            "tile shapes"
        );
        assert!(a_stride >= k && c_stride >= n, "strides");
        if rows == 0 {
            return;
        }
        // Every byte the tile loads and stores below touch is inside these bounds.
        assert!(a.len() >= (rows - 1) * a_stride + k, "a is too short");
        assert!(c.len() >= (rows - 1) * c_stride + n, "c is too short");
        assert!(b.data.len() >= (n / 16) * (k / 32) * 512, "b is too short");
        let kbs = k / 32;
        let a_bytes = a_stride * 2;
        let c_bytes = c_stride * 4;
        let panel = kbs * 512; // u16 per 16-column panel of B
        // SAFETY: an Isa token exists, so AMX is enabled; the asserts above bound every tile
        // access: a tile load of A reads 16 rows of 64 bytes from row r0 (r0 + 16 <= rows) at
        // column 32·kb (< k), a load of B reads 1,024 contiguous bytes of panel nb (< n/16),
        // a store writes 16 rows of 64 bytes at row r0, column 16·nb.
        unsafe {
            configure_tiles();
            let mut r0 = 0;
            while r0 < rows {
                let two_rows = r0 + 32 <= rows;
                let mut nb = 0;
                while nb < n / 16 {
                    let a0 = a.as_ptr().add(r0 * a_stride);
                    let b0 = b.data.as_ptr().add(nb * panel);
                    let c0 = c.as_mut_ptr().add(r0 * c_stride + nb * 16);
                    let two_cols = nb + 2 <= n / 16;
                    match (two_rows, two_cols) {
                        (true, true) => block_2x2(a0, a_bytes, b0, panel * 2, kbs, c0, c_bytes),
                        (true, false) => block_2x1(a0, a_bytes, b0, kbs, c0, c_bytes),
                        (false, true) => block_1x2(a0, a_bytes, b0, panel * 2, kbs, c0, c_bytes),
                        (false, false) => block_1x1(a0, a_bytes, b0, kbs, c0, c_bytes),
                    }
                    nb += if two_cols { 2 } else { 1 };
                }
                r0 += if two_rows { 32 } else { 16 };
            }
            release_tiles();
        }
    }

    /// 32 rows × 32 columns: tiles 0-3 accumulate, 4-5 hold A, 6-7 hold B.
    ///
    /// # Safety
    /// Tiles configured; `a` readable for 32 rows of `a_bytes` stride and `kbs` × 64 bytes,
    /// `b` for `b_next + kbs × 1024` bytes, `c` writable for 32 rows of 128 bytes.
    #[inline]
    unsafe fn block_2x2(
        a: *const u16,
        a_bytes: usize,
        b: *const u16,
        b_next: usize,
        kbs: usize,
        c: *mut f32,
        c_bytes: usize,
    ) {
        // SAFETY: the caller's bounds; the loop runs kbs >= 1 times.
        unsafe {
            let a1 = a.cast::<u8>().add(16 * a_bytes);
            let b1 = b.cast::<u8>().add(b_next);
            let c2 = c.cast::<u8>().add(16 * c_bytes);
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                "2:",
                "tileloadd tmm4, [{a0} + {as}*1]",
                "tileloadd tmm6, [{b0} + {bs}*1]",
                "tileloadd tmm5, [{a1} + {as}*1]",
                "tileloadd tmm7, [{b1} + {bs}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "add {a0}, 64",
                "add {a1}, 64",
                "add {b0}, 1024",
                "add {b1}, 1024",
                "dec {kn}",
                "jnz 2b",
                "tilestored [{c0} + {cs}*1], tmm0",
                "tilestored [{c0} + {cs}*1 + 64], tmm1",
                "tilestored [{c2} + {cs}*1], tmm2",
                "tilestored [{c2} + {cs}*1 + 64], tmm3",
                a0 = inout(reg) a => _,
                a1 = inout(reg) a1 => _,
                b0 = inout(reg) b => _,
                b1 = inout(reg) b1 => _,
                kn = inout(reg) kbs => _,
                as = in(reg) a_bytes,
                bs = in(reg) 64usize,
                c0 = in(reg) c,
                c2 = in(reg) c2,
                cs = in(reg) c_bytes,
                options(nostack),
            );
        }
    }

    /// # Safety
    /// As [`block_2x2`], for 32 rows × 16 columns.
    #[inline]
    unsafe fn block_2x1(
        a: *const u16,
        a_bytes: usize,
        b: *const u16,
        kbs: usize,
        c: *mut f32,
        c_bytes: usize,
    ) {
        // SAFETY: the caller's bounds.
        unsafe {
            let a1 = a.cast::<u8>().add(16 * a_bytes);
            let c2 = c.cast::<u8>().add(16 * c_bytes);
            asm!(
                "tilezero tmm0",
                "tilezero tmm2",
                "2:",
                "tileloadd tmm4, [{a0} + {as}*1]",
                "tileloadd tmm6, [{b0} + {bs}*1]",
                "tileloadd tmm5, [{a1} + {as}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "add {a0}, 64",
                "add {a1}, 64",
                "add {b0}, 1024",
                "dec {kn}",
                "jnz 2b",
                "tilestored [{c0} + {cs}*1], tmm0",
                "tilestored [{c2} + {cs}*1], tmm2",
                a0 = inout(reg) a => _,
                a1 = inout(reg) a1 => _,
                b0 = inout(reg) b => _,
                kn = inout(reg) kbs => _,
                as = in(reg) a_bytes,
                bs = in(reg) 64usize,
                c0 = in(reg) c,
                c2 = in(reg) c2,
                cs = in(reg) c_bytes,
                options(nostack),
            );
        }
    }

    /// # Safety
    /// As [`block_2x2`], for 16 rows × 32 columns.
    #[inline]
    unsafe fn block_1x2(
        a: *const u16,
        a_bytes: usize,
        b: *const u16,
        b_next: usize,
        kbs: usize,
        c: *mut f32,
        c_bytes: usize,
    ) {
        // SAFETY: the caller's bounds.
        unsafe {
            let b1 = b.cast::<u8>().add(b_next);
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "2:",
                "tileloadd tmm4, [{a0} + {as}*1]",
                "tileloadd tmm6, [{b0} + {bs}*1]",
                "tileloadd tmm7, [{b1} + {bs}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "add {a0}, 64",
                "add {b0}, 1024",
                "add {b1}, 1024",
                "dec {kn}",
                "jnz 2b",
                "tilestored [{c0} + {cs}*1], tmm0",
                "tilestored [{c0} + {cs}*1 + 64], tmm1",
                a0 = inout(reg) a => _,
                b0 = inout(reg) b => _,
                b1 = inout(reg) b1 => _,
                kn = inout(reg) kbs => _,
                as = in(reg) a_bytes,
                bs = in(reg) 64usize,
                c0 = in(reg) c,
                cs = in(reg) c_bytes,
                options(nostack),
            );
        }
    }

    /// # Safety
    /// As [`block_2x2`], for 16 rows × 16 columns.
    #[inline]
    unsafe fn block_1x1(
        a: *const u16,
        a_bytes: usize,
        b: *const u16,
        kbs: usize,
        c: *mut f32,
        c_bytes: usize,
    ) {
        // SAFETY: the caller's bounds.
        unsafe {
            asm!(
                "tilezero tmm0",
                "2:",
                "tileloadd tmm4, [{a0} + {as}*1]",
                "tileloadd tmm6, [{b0} + {bs}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "add {a0}, 64",
                "add {b0}, 1024",
                "dec {kn}",
                "jnz 2b",
                "tilestored [{c0} + {cs}*1], tmm0",
                a0 = inout(reg) a => _,
                b0 = inout(reg) b => _,
                kn = inout(reg) kbs => _,
                as = in(reg) a_bytes,
                bs = in(reg) 64usize,
                c0 = in(reg) c,
                cs = in(reg) c_bytes,
                options(nostack),
            );
        }
    }

    /// One head's attention for 16 query rows (see [`AttentionBlock`]): scores into `scores`
    /// (16 × `lp` f32), probabilities into `probs` (16 × `lp` bf16), the context (16 × 32 f32)
    /// into `out`.
    pub(crate) fn attention_block(
        isa: Isa,
        block: &AttentionBlock<'_>,
        scores: &mut [f32],
        probs: &mut [u16],
        out: &mut [f32],
    ) {
        let lp = block.lp;
        block.check();
        assert!(scores.len() >= 16 * lp && probs.len() >= 16 * lp && out.len() >= 16 * 32);
        // SAFETY: an Isa token exists; `check` bounds the query tile (16 rows of 64 bytes at
        // stride q_stride), the key tiles (16 rows of lp u32, 64 bytes at column j0 < lp) and
        // the value tiles (lp/2 rows of 128 bytes); scores, probs and out were checked above.
        unsafe {
            configure_tiles();
            let q = block.q.as_ptr();
            let q_bytes = block.q_stride * 2;
            let kt_bytes = lp * 4;
            let s_bytes = lp * 4;
            let mut j0 = 0;
            while j0 < lp {
                asm!(
                    "tilezero tmm0",
                    "tileloadd tmm4, [{q} + {qs}*1]",
                    "tileloadd tmm6, [{k} + {ks}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tilestored [{s} + {ss}*1], tmm0",
                    q = in(reg) q,
                    qs = in(reg) q_bytes,
                    k = in(reg) block.kt.as_ptr().add(j0 * 2),
                    ks = in(reg) kt_bytes,
                    s = in(reg) scores.as_mut_ptr().add(j0),
                    ss = in(reg) s_bytes,
                    options(nostack),
                );
                j0 += 16;
            }
            for r in 0..16 {
                softmax_row(
                    &scores[r * lp..(r + 1) * lp],
                    block.len,
                    block.scale,
                    &mut probs[r * lp..(r + 1) * lp],
                );
            }
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "2:",
                "tileloadd tmm4, [{p} + {ps}*1]",
                "tileloadd tmm6, [{v} + {vs}*1]",
                "tileloadd tmm7, [{v} + {vs}*1 + 64]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "add {p}, 64",
                "add {v}, 2048",
                "dec {kn}",
                "jnz 2b",
                "tilestored [{o} + {os}*1], tmm0",
                "tilestored [{o} + {os}*1 + 64], tmm1",
                p = inout(reg) probs.as_ptr() => _,
                ps = in(reg) lp * 2,
                v = inout(reg) block.vt.as_ptr() => _,
                vs = in(reg) 128usize,
                kn = inout(reg) lp / 32 => _,
                o = in(reg) out.as_mut_ptr(),
                os = in(reg) 128usize,
                options(nostack),
            );
            release_tiles();
        }
        let _ = isa;
    }

    /// `exp(x)` for x ≤ 88.7 (Cephes' polynomial; about 1 ulp).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn exp512(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-87.336_55));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_199_9e-3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.166_666_65));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
        let r2 = _mm512_mul_ps(r, r);
        p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
        _mm512_scalef_ps(p, n)
    }

    /// `erf(x)`: the rational approximation of `kernels::erf` (Eigen's), 16 lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn erf512(x: __m512) -> __m512 {
        use crate::kernels::{ERF_ALPHA, ERF_BETA};
        let x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-4.0)), _mm512_set1_ps(4.0));
        let x2 = _mm512_mul_ps(x, x);
        let mut p = _mm512_set1_ps(ERF_ALPHA[6]);
        for &a in ERF_ALPHA[..6].iter().rev() {
            p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(a));
        }
        p = _mm512_mul_ps(x, p);
        let mut q = _mm512_set1_ps(ERF_BETA[4]);
        for &b in ERF_BETA[..4].iter().rev() {
            q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(b));
        }
        _mm512_div_ps(p, q)
    }

    /// 16 f32 → 16 bf16 (nearest even).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    fn bf16x16(v: __m512) -> __m256i {
        // __m256bh and __m256i are both 256 bits.
        unsafe { std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v)) }
    }

    /// Softmax of `scores[..len] × scale` into `probs[..len]` (bf16); `probs[len..]` = 0.
    #[target_feature(enable = "avx512f,avx512bf16,avx512vl,avx512bw")]
    fn softmax_row(scores: &[f32], len: usize, scale: f32, probs: &mut [u16]) {
        let n = scores.len().min(probs.len());
        assert!(len <= n && n.is_multiple_of(16) && len > 0);
        let full = len / 16;
        let tail = (1u16 << (len % 16)).wrapping_sub(1);
        let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
        // SAFETY (all loads and stores below): lanes at i·16 + 0..16 with i < n/16, or masked.
        unsafe {
            for i in 0..full {
                m = _mm512_max_ps(m, _mm512_loadu_ps(scores.as_ptr().add(i * 16)));
            }
            if tail != 0 {
                let v = _mm512_maskz_loadu_ps(tail, scores.as_ptr().add(full * 16));
                m = _mm512_mask_max_ps(m, tail, m, v);
            }
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(m) * scale);
        let s = _mm512_set1_ps(scale);
        let mut sum = _mm512_setzero_ps();
        let blocks = len.div_ceil(16);
        // The exponentials are computed twice (for the sum, then for the output) rather than
        // kept: recomputing 16 lanes costs less than a round trip through memory.
        unsafe {
            for i in 0..blocks {
                let mask = if i < full { 0xffff } else { tail };
                let v = _mm512_maskz_loadu_ps(mask, scores.as_ptr().add(i * 16));
                let x = exp512(_mm512_fmsub_ps(v, s, max));
                sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(mask, x));
            }
            let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
            for i in 0..n / 16 {
                let out = probs.as_mut_ptr().add(i * 16).cast::<__m256i>();
                if i >= blocks {
                    _mm256_storeu_si256(out, _mm256_setzero_si256());
                    continue;
                }
                let mask = if i < full { 0xffff } else { tail };
                let v = _mm512_maskz_loadu_ps(mask, scores.as_ptr().add(i * 16));
                let x = _mm512_maskz_mov_ps(mask, exp512(_mm512_fmsub_ps(v, s, max)));
                _mm256_storeu_si256(out, bf16x16(_mm512_mul_ps(x, inv)));
            }
        }
    }

    /// `dst = bf16(src)`, `src.len()` a multiple of 16.
    pub(crate) fn to_bf16(_isa: Isa, src: &[f32], dst: &mut [u16]) {
        assert!(src.len().is_multiple_of(16) && dst.len() >= src.len());
        // SAFETY: the features come with the Isa token.
        unsafe { to_bf16_avx512(src, dst) }
    }

    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    fn to_bf16_avx512(src: &[f32], dst: &mut [u16]) {
        for i in 0..src.len() / 16 {
            // SAFETY: i·16 + 16 <= src.len() <= dst.len().
            unsafe {
                let v = _mm512_loadu_ps(src.as_ptr().add(i * 16));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i * 16).cast(), bf16x16(v));
            }
        }
    }

    /// `dst = bf16(gelu(src + bias))` (the erf form), lengths a multiple of 16.
    pub(crate) fn bias_gelu_bf16(_isa: Isa, src: &[f32], bias: &[f32], dst: &mut [u16]) {
        assert!(src.len().is_multiple_of(16) && bias.len() == src.len() && dst.len() >= src.len());
        // SAFETY: the features come with the Isa token.
        unsafe { bias_gelu_avx512(src, bias, dst) }
    }

    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    fn bias_gelu_avx512(src: &[f32], bias: &[f32], dst: &mut [u16]) {
        let half = _mm512_set1_ps(0.5);
        let one = _mm512_set1_ps(1.0);
        let rsqrt2 = _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
        for i in 0..src.len() / 16 {
            // SAFETY: i·16 + 16 <= src.len() = bias.len() <= dst.len().
            unsafe {
                let x = _mm512_add_ps(
                    _mm512_loadu_ps(src.as_ptr().add(i * 16)),
                    _mm512_loadu_ps(bias.as_ptr().add(i * 16)),
                );
                let e = erf512(_mm512_mul_ps(x, rsqrt2));
                let g = _mm512_mul_ps(_mm512_mul_ps(x, half), _mm512_add_ps(one, e));
                _mm256_storeu_si256(dst.as_mut_ptr().add(i * 16).cast(), bf16x16(g));
            }
        }
    }

    /// `x = layer_norm(src + bias + x)`, `xb = bf16(x)`; one row, a multiple of 16 long.
    pub(crate) fn bias_residual_norm(
        _isa: Isa,
        src: &[f32],
        bias: &[f32],
        x: &mut [f32],
        norm: &Norm,
        xb: &mut [u16],
    ) {
        let n = x.len();
        assert!(n.is_multiple_of(16) && src.len() == n && bias.len() == n && xb.len() >= n);
        assert!(norm.gamma.len() == n && norm.beta.len() == n);
        // SAFETY: the features come with the Isa token.
        unsafe { bias_residual_norm_avx512(src, bias, x, norm, xb) }
    }

    #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
    fn bias_residual_norm_avx512(
        src: &[f32],
        bias: &[f32],
        x: &mut [f32],
        norm: &Norm,
        xb: &mut [u16],
    ) {
        let n = x.len();
        let blocks = n / 16;
        let mut sum = _mm512_setzero_ps();
        // SAFETY (every access): offsets i·16 + 0..16 with i < n/16, and all slices are at
        // least n long (checked by the caller).
        unsafe {
            for i in 0..blocks {
                let o = i * 16;
                let v = _mm512_add_ps(
                    _mm512_add_ps(
                        _mm512_loadu_ps(src.as_ptr().add(o)),
                        _mm512_loadu_ps(bias.as_ptr().add(o)),
                    ),
                    _mm512_loadu_ps(x.as_ptr().add(o)),
                );
                _mm512_storeu_ps(x.as_mut_ptr().add(o), v);
                sum = _mm512_add_ps(sum, v);
            }
            let mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / n as f32);
            let mut var = _mm512_setzero_ps();
            for i in 0..blocks {
                let d = _mm512_sub_ps(_mm512_loadu_ps(x.as_ptr().add(i * 16)), mean);
                var = _mm512_fmadd_ps(d, d, var);
            }
            let var = _mm512_reduce_add_ps(var) / n as f32;
            let inv = _mm512_set1_ps(1.0 / (var + norm.eps).sqrt());
            for i in 0..blocks {
                let o = i * 16;
                let d = _mm512_sub_ps(_mm512_loadu_ps(x.as_ptr().add(o)), mean);
                let y = _mm512_fmadd_ps(
                    _mm512_mul_ps(d, inv),
                    _mm512_loadu_ps(norm.gamma.as_ptr().add(o)),
                    _mm512_loadu_ps(norm.beta.as_ptr().add(o)),
                );
                _mm512_storeu_ps(x.as_mut_ptr().add(o), y);
                _mm256_storeu_si256(xb.as_mut_ptr().add(o).cast(), bf16x16(y));
            }
        }
    }
}
