//! The kernels of the bf16 encoder (`fast.rs`), each in two forms chosen at run time: AMX and
//! AVX-512 (`simd.rs`, the crate's only unsafe code) where the processor and operating system
//! allow it, and portable safe Rust everywhere else. Both compute the same thing: bf16 operands,
//! products accumulated in f32 in order of k, f32 → bf16 rounded to nearest even with
//! denormals flushed; they differ only in the order of a few f32 sums (tests below hold the
//! fast form to the portable one).

use crate::simd::{self, Isa};

/// Which implementation the kernels run.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kernels {
    /// AMX tiles and AVX-512 (proof of support inside).
    Amx(Isa),
    /// Safe Rust, any processor.
    Portable,
}

impl Kernels {
    /// AMX when this process can use it, else portable.
    pub(crate) fn detect() -> Kernels {
        Isa::detect().map_or(Kernels::Portable, Kernels::Amx)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kernels::Amx(_) => "amx-bf16",
            Kernels::Portable => "portable-bf16",
        }
    }

    /// `c[r][..b.n] = a[r][..b.k] · B` for `rows` rows (a multiple of 16).
    pub(crate) fn gemm(
        self,
        a: &[u16],
        a_stride: usize,
        rows: usize,
        b: &PackedB,
        c: &mut [f32],
        c_stride: usize,
    ) {
        match self {
            Kernels::Amx(isa) => simd::gemm_bf16(isa, a, a_stride, rows, b, c, c_stride),
            Kernels::Portable => gemm_portable(a, a_stride, rows, b, c, c_stride),
        }
    }

    /// One head's attention for 16 query rows: the context (16 × 32 f32) into `out`.
    pub(crate) fn attention(
        self,
        block: &AttentionBlock<'_>,
        scores: &mut [f32],
        probs: &mut [u16],
        out: &mut [f32],
    ) {
        match self {
            Kernels::Amx(isa) => simd::attention_block(isa, block, scores, probs, out),
            Kernels::Portable => attention_portable(block, scores, probs, out),
        }
    }

    /// `dst = bf16(src)` (a multiple of 16 values).
    pub(crate) fn to_bf16(self, src: &[f32], dst: &mut [u16]) {
        match self {
            Kernels::Amx(isa) => simd::to_bf16(isa, src, dst),
            Kernels::Portable => {
                assert!(dst.len() >= src.len());
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = bf16(s);
                }
            }
        }
    }

    /// `dst = bf16(gelu(src + bias))`, GELU's erf form.
    pub(crate) fn bias_gelu_bf16(self, src: &[f32], bias: &[f32], dst: &mut [u16]) {
        match self {
            Kernels::Amx(isa) => simd::bias_gelu_bf16(isa, src, bias, dst),
            Kernels::Portable => {
                assert!(bias.len() == src.len() && dst.len() >= src.len());
                for ((d, &s), &b) in dst.iter_mut().zip(src).zip(bias) {
                    *d = bf16(gelu(s + b));
                }
            }
        }
    }

    /// `x = layer_norm(src + bias + x)` and `xb = bf16(x)`, for one row.
    pub(crate) fn bias_residual_norm(
        self,
        src: &[f32],
        bias: &[f32],
        x: &mut [f32],
        norm: &Norm,
        xb: &mut [u16],
    ) {
        match self {
            Kernels::Amx(isa) => simd::bias_residual_norm(isa, src, bias, x, norm, xb),
            Kernels::Portable => bias_residual_norm_portable(src, bias, x, norm, xb),
        }
    }
}

/// The right operand `B` (`k × n`) of `x · B` in the layout AMX reads: for each panel of 16
/// columns, for each block of 32 rows, 16 rows of pairs `(B[2i][j], B[2i+1][j])` for the 16
/// columns `j` (1,024 bytes a block). Built from a linear layer's weight, `B = Wᵀ`.
#[derive(Clone)]
pub(crate) struct PackedB {
    pub(crate) data: Vec<u16>,
    pub(crate) k: usize,
    pub(crate) n: usize,
}

impl PackedB {
    /// Packs `Wᵀ` for a weight `w` of `n` rows (outputs) of `k` values (inputs), PyTorch's
    /// layout. `k` must be a multiple of 32 and `n` of 16.
    pub(crate) fn from_linear(w: &[f32], n: usize, k: usize) -> PackedB {
        assert!(k.is_multiple_of(32) && n.is_multiple_of(16) && w.len() == n * k);
        let mut data = Vec::with_capacity(n * k);
        for panel in 0..n / 16 {
            for block in 0..k / 32 {
                for pair in 0..16 {
                    for col in 0..16 {
                        let row = &w[(panel * 16 + col) * k..][..k];
                        let kk = block * 32 + 2 * pair;
                        data.push(bf16(row[kk]));
                        data.push(bf16(row[kk + 1]));
                    }
                }
            }
        }
        PackedB { data, k, n }
    }

    /// `B[kk][j]` as bf16 bits.
    fn at(&self, kk: usize, j: usize) -> u16 {
        let (panel, col) = (j / 16, j % 16);
        let (block, within) = (kk / 32, kk % 32);
        self.data[(panel * (self.k / 32) + block) * 512 + (within / 2) * 32 + col * 2 + within % 2]
    }
}

/// A layer norm's scale, shift and epsilon.
#[derive(Clone, Debug)]
pub(crate) struct Norm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
    pub(crate) eps: f32,
}

/// One head's attention inputs for a block of 16 query rows of one text.
pub(crate) struct AttentionBlock<'a> {
    /// Query row `r` (32 bf16, already in this head's columns) at `q[r * q_stride..]`.
    pub(crate) q: &'a [u16],
    pub(crate) q_stride: usize,
    /// Keys, transposed in pairs: 16 rows (dimension pairs) of `lp` pairs of bf16.
    pub(crate) kt: &'a [u16],
    /// Values in pairs of keys: `lp / 2` rows of 32 pairs (dimension `d`: keys 2i, 2i+1).
    pub(crate) vt: &'a [u16],
    /// Keys held (a multiple of 32); only the first `len` count.
    pub(crate) lp: usize,
    pub(crate) len: usize,
    /// Multiplies the scores before the softmax (1/√32).
    pub(crate) scale: f32,
}

impl AttentionBlock<'_> {
    /// The bounds every implementation relies on.
    pub(crate) fn check(&self) {
        assert!(self.lp.is_multiple_of(32) && self.len >= 1 && self.len <= self.lp);
        assert!(self.q_stride >= 32 && self.q.len() >= 15 * self.q_stride + 32);
        assert!(self.kt.len() >= 32 * self.lp && self.vt.len() >= 32 * self.lp);
    }
}

/// f32 → bf16 bits, nearest even; denormals become zero (as `vcvtneps2bf16` does).
pub(crate) fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7f80_0000 == 0 {
        return ((bits >> 16) & 0x8000) as u16;
    }
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// bf16 bits → f32 (denormals as zero, as the AMX products read them).
pub(crate) fn f32_of(b: u16) -> f32 {
    if b & 0x7f80 == 0 {
        return f32::from_bits(u32::from(b & 0x8000) << 16);
    }
    f32::from_bits(u32::from(b) << 16)
}

/// Numerator coefficients (x, x³, …, x¹³) of the rational approximation of erf on [-4, 4]
/// (Eigen's `generic_fast_erf_float`).
pub(crate) const ERF_ALPHA: [f32; 7] = [
    -1.609_603_3e-2,
    -2.954_6e-3,
    -7.349_906_3e-4,
    -5.692_506_4e-5,
    -2.101_024e-6,
    2.770_681_4e-8,
    -2.726_142_3e-10,
];
/// Denominator coefficients (1, x², …, x⁸).
pub(crate) const ERF_BETA: [f32; 5] = [
    -1.426_474e-2,
    -7.373_329_3e-3,
    -1.682_827e-3,
    -2.133_740_6e-4,
    -1.456_607_2e-5,
];

/// erf(x) in f32, to a few ulp (the same rational function as the AVX-512 kernel).
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = ERF_ALPHA[6];
    for &a in ERF_ALPHA[..6].iter().rev() {
        p = x2.mul_add(p, a);
    }
    p *= x;
    let mut q = ERF_BETA[4];
    for &b in ERF_BETA[..4].iter().rev() {
        q = x2.mul_add(q, b);
    }
    p / q
}

fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

fn gemm_portable(
    a: &[u16],
    a_stride: usize,
    rows: usize,
    b: &PackedB,
    c: &mut [f32],
    c_stride: usize,
) {
    let (k, n) = (b.k, b.n);
    assert!(rows.is_multiple_of(16) && a_stride >= k && c_stride >= n);
    if rows == 0 {
        return;
    }
    assert!(a.len() >= (rows - 1) * a_stride + k && c.len() >= (rows - 1) * c_stride + n);
    // B as f32, row-major k × n: the inner loop runs over columns (vectorisable), and each
    // output still sums its products in order of k, as the tiles do.
    let mut bf = vec![0f32; k * n];
    for kk in 0..k {
        for j in 0..n {
            bf[kk * n + j] = f32_of(b.at(kk, j));
        }
    }
    for r in 0..rows {
        let out = &mut c[r * c_stride..][..n];
        out.fill(0.0);
        for (kk, &av) in a[r * a_stride..][..k].iter().enumerate() {
            let av = f32_of(av);
            for (o, &bv) in out.iter_mut().zip(&bf[kk * n..][..n]) {
                *o += av * bv;
            }
        }
    }
}

fn attention_portable(
    block: &AttentionBlock<'_>,
    scores: &mut [f32],
    probs: &mut [u16],
    out: &mut [f32],
) {
    block.check();
    let lp = block.lp;
    assert!(scores.len() >= 16 * lp && probs.len() >= 16 * lp && out.len() >= 16 * 32);
    for r in 0..16 {
        let q = &block.q[r * block.q_stride..][..32];
        let s = &mut scores[r * lp..][..lp];
        for (j, sj) in s.iter_mut().enumerate() {
            let mut acc = 0f32;
            for pair in 0..16 {
                let kt = &block.kt[(pair * lp + j) * 2..][..2];
                acc += f32_of(q[2 * pair]) * f32_of(kt[0]);
                acc += f32_of(q[2 * pair + 1]) * f32_of(kt[1]);
            }
            *sj = acc;
        }
        let len = block.len;
        let max = s[..len].iter().copied().fold(f32::NEG_INFINITY, f32::max) * block.scale;
        let sum: f32 = s[..len]
            .iter()
            .map(|&v| v.mul_add(block.scale, -max).exp())
            .sum();
        let inv = 1.0 / sum;
        let p = &mut probs[r * lp..][..lp];
        for (j, pj) in p.iter_mut().enumerate() {
            *pj = if j < len {
                bf16(s[j].mul_add(block.scale, -max).exp() * inv)
            } else {
                0
            };
        }
        let o = &mut out[r * 32..][..32];
        o.fill(0.0);
        for (j, &pj) in p.iter().enumerate() {
            let pv = f32_of(pj);
            let v = &block.vt[(j / 2) * 64..][..64];
            for (d, od) in o.iter_mut().enumerate() {
                *od += pv * f32_of(v[d * 2 + j % 2]);
            }
        }
    }
}

fn bias_residual_norm_portable(
    src: &[f32],
    bias: &[f32],
    x: &mut [f32],
    norm: &Norm,
    xb: &mut [u16],
) {
    let n = x.len();
    assert!(src.len() == n && bias.len() == n && xb.len() >= n);
    assert!(norm.gamma.len() == n && norm.beta.len() == n);
    for ((xi, &s), &b) in x.iter_mut().zip(src).zip(bias) {
        *xi += s + b;
    }
    let mean = x.iter().sum::<f32>() / n as f32;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
    let inv = 1.0 / (var + norm.eps).sqrt();
    for (i, xi) in x.iter_mut().enumerate() {
        *xi = ((*xi - mean) * inv).mul_add(norm.gamma[i], norm.beta[i]);
        xb[i] = bf16(*xi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
        fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
            (0..n).map(|_| self.next() * scale).collect()
        }
    }

    fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * (1.0 + y.abs()),
                "{what}[{i}]: {x} against {y}"
            );
        }
    }

    /// The kernels to compare with the portable ones; on a processor without AMX there is
    /// nothing to compare, and the test says so rather than passing on the portable path alone.
    fn fast() -> Option<Kernels> {
        match Kernels::detect() {
            k @ Kernels::Amx(_) => Some(k),
            Kernels::Portable => {
                eprintln!("no AMX on this machine: only the portable kernels are checked");
                None
            }
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even_and_flushes_denormals() {
        assert_eq!(bf16(1.0), 0x3f80);
        assert_eq!(f32_of(bf16(1.0)), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even one (1.0).
        assert_eq!(bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16(-2.5), 0xc020);
        assert_eq!(bf16(1e-40), 0);
        assert_eq!(bf16(-1e-40), 0x8000);
        assert!(f32_of(bf16(f32::NAN)).is_nan());
        assert_eq!(f32_of(bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(
            bf16(f32::MAX),
            0x7f80,
            "rounds up to infinity like the hardware"
        );
    }

    #[test]
    fn erf_is_accurate() {
        // Reference: erf by its Taylor series in f64 (converges fast for |x| <= 4 with enough
        // terms), compared over [-5, 5].
        fn erf64(x: f64) -> f64 {
            let mut term = x;
            let mut sum = x;
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        }
        let mut worst = 0f64;
        for i in -5000..=5000 {
            let x = i as f64 / 1000.0;
            let want = if x.abs() > 4.0 { x.signum() } else { erf64(x) };
            worst = worst.max((f64::from(erf(x as f32)) - want).abs());
        }
        assert!(worst < 5e-7, "erf is off by {worst}");
    }

    #[test]
    fn gemm_matches_portable_and_f32() {
        let mut rng = Rng(0x1234_5678);
        for &(rows, k, n) in &[(16, 32, 16), (32, 64, 48), (48, 384, 1152), (64, 1536, 384)] {
            let a: Vec<u16> = rng.vec(rows * k, 1.0).into_iter().map(bf16).collect();
            let w = rng.vec(n * k, 0.1);
            let b = PackedB::from_linear(&w, n, k);
            let mut want = vec![0f32; rows * n];
            gemm_portable(&a, k, rows, &b, &mut want, n);
            // The portable kernel is the plain sum of bf16 products.
            for r in (0..rows).step_by(7) {
                for j in (0..n).step_by(5) {
                    let exact: f64 = (0..k)
                        .map(|kk| {
                            f64::from(f32_of(a[r * k + kk]))
                                * f64::from(f32_of(bf16(w[j * k + kk])))
                        })
                        .sum();
                    assert!((f64::from(want[r * n + j]) - exact).abs() < 1e-4);
                }
            }
            if let Some(fast) = fast() {
                // Wider strides than needed, to check they are honoured.
                let mut a2 = vec![0u16; rows * (k + 32)];
                for r in 0..rows {
                    a2[r * (k + 32)..][..k].copy_from_slice(&a[r * k..][..k]);
                }
                let mut got = vec![f32::NAN; rows * (n + 16)];
                fast.gemm(&a2, k + 32, rows, &b, &mut got, n + 16);
                let got: Vec<f32> = (0..rows)
                    .flat_map(|r| got[r * (n + 16)..][..n].to_vec())
                    .collect();
                close(&got, &want, 1e-5, "gemm");
            }
        }
    }

    fn attention_inputs(rng: &mut Rng, lp: usize) -> (Vec<u16>, Vec<u16>, Vec<u16>) {
        let q: Vec<u16> = rng.vec(16 * 40, 2.0).into_iter().map(bf16).collect();
        let kt: Vec<u16> = rng.vec(32 * lp, 2.0).into_iter().map(bf16).collect();
        let vt: Vec<u16> = rng.vec(32 * lp, 1.0).into_iter().map(bf16).collect();
        (q, kt, vt)
    }

    #[test]
    fn attention_matches_portable_and_a_direct_softmax() {
        let mut rng = Rng(42);
        for &(lp, len) in &[(32, 1), (32, 17), (64, 64), (256, 201)] {
            let (q, kt, vt) = attention_inputs(&mut rng, lp);
            let block = AttentionBlock {
                q: &q,
                q_stride: 40,
                kt: &kt,
                vt: &vt,
                lp,
                len,
                scale: 1.0 / 32f32.sqrt(),
            };
            let mut scores = vec![0f32; 16 * lp];
            let mut probs = vec![0u16; 16 * lp];
            let mut want = vec![0f32; 16 * 32];
            attention_portable(&block, &mut scores, &mut probs, &mut want);
            // Against softmax(q·kᵀ/√d)·v in f64 over the first `len` keys.
            for r in [0, 5, 15] {
                let s: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..32)
                            .map(|d| {
                                f64::from(f32_of(q[r * 40 + d]))
                                    * f64::from(f32_of(kt[((d / 2) * lp + j) * 2 + d % 2]))
                            })
                            .sum::<f64>()
                            / 32f64.sqrt()
                    })
                    .collect();
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for d in 0..32 {
                    let o: f64 = (0..len)
                        .map(|j| e[j] / total * f64::from(f32_of(vt[(j / 2) * 64 + d * 2 + j % 2])))
                        .sum();
                    // bf16 probabilities: about 3 significant digits.
                    assert!((f64::from(want[r * 32 + d]) - o).abs() < 1e-2, "{lp} {len}");
                }
            }
            if let Some(fast) = fast() {
                let mut got = vec![0f32; 16 * 32];
                fast.attention(&block, &mut scores, &mut probs, &mut got);
                close(&got, &want, 2e-3, "attention");
            }
        }
    }

    #[test]
    fn elementwise_kernels_match_portable() {
        let mut rng = Rng(7);
        let n = 384;
        let src = rng.vec(n, 4.0);
        let bias = rng.vec(n, 1.0);
        let residual = rng.vec(n, 2.0);
        let norm = Norm {
            gamma: rng.vec(n, 1.0),
            beta: rng.vec(n, 0.5),
            eps: 1e-12,
        };
        let mut want_x = residual.clone();
        let mut want_b = vec![0u16; n];
        Kernels::Portable.bias_residual_norm(&src, &bias, &mut want_x, &norm, &mut want_b);
        // Layer norm's definition, in f64.
        let v: Vec<f64> = (0..n)
            .map(|i| f64::from(src[i]) + f64::from(bias[i]) + f64::from(residual[i]))
            .collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        for i in 0..n {
            let y = (v[i] - mean) / var.sqrt() * f64::from(norm.gamma[i]) + f64::from(norm.beta[i]);
            assert!((f64::from(want_x[i]) - y).abs() < 1e-5);
        }
        let mut want_g = vec![0u16; n];
        Kernels::Portable.bias_gelu_bf16(&src, &bias, &mut want_g);
        let mut want_c = vec![0u16; n];
        Kernels::Portable.to_bf16(&src, &mut want_c);
        if let Some(fast) = fast() {
            let mut x = residual.clone();
            let mut b = vec![0u16; n];
            fast.bias_residual_norm(&src, &bias, &mut x, &norm, &mut b);
            close(&x, &want_x, 1e-5, "layer norm");
            let mut g = vec![0u16; n];
            fast.bias_gelu_bf16(&src, &bias, &mut g);
            // Equal bf16, or one unit apart where the f32 values straddle a rounding point.
            for (i, (&x, &y)) in g.iter().zip(&want_g).enumerate() {
                assert!(x.abs_diff(y) <= 1, "gelu[{i}]: {x:#x} against {y:#x}");
            }
            let mut c = vec![0u16; n];
            fast.to_bf16(&src, &mut c);
            assert_eq!(c, want_c, "conversion");
        }
    }
}
