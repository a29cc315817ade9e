//! Deterministic synthetic data for tests and benchmarks: a tiny PRNG and clustered unit
//! vectors shaped like sentence embeddings.

/// splitmix64: a small, fast, well-distributed 64-bit generator (Steele, Lea & Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`; slight modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f32 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

/// Scales `v` to unit length (leaves a zero vector alone).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// A Gaussian mixture on the unit sphere.
///
/// `clusters` centres are drawn uniformly on the sphere; a point is its centre plus Gaussian
/// noise, normalised. The noise along the cluster's `i`-th (randomly permuted) axis has a
/// standard deviation proportional to `(1 + i/decay)^-1/2`, scaled so that `spread` is the
/// expected noise norm relative to the unit centre: a decaying spectrum like that of real sentence
/// embeddings, whose variance is concentrated in a few dozen directions. `decay = ∞` gives
/// isotropic noise, the hardest case for graph indexes. The same seed gives the same data.
#[derive(Debug, Clone, Copy)]
pub struct Mixture {
    pub dim: usize,
    pub clusters: usize,
    pub spread: f32,
    pub decay: f32,
    pub seed: u64,
}

impl Mixture {
    /// Sentence-embedding-like defaults: 384-d, 200 clusters, noise as large as the centre
    /// (typical cosine to the centre about 0.7), spectrum decaying after ~32 directions.
    pub fn embedding_like(seed: u64) -> Self {
        Mixture {
            dim: 384,
            clusters: 200,
            spread: 1.0,
            decay: 32.0,
            seed,
        }
    }

    /// `n` points, row-major, plus `q` query points drawn from the same distribution (but
    /// a different stream, so they are not in the data).
    pub fn generate(&self, n: usize, q: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = SplitMix64::new(self.seed);
        let dim = self.dim;
        let mut centres = vec![0f32; self.clusters * dim];
        for c in centres.chunks_exact_mut(dim) {
            c.iter_mut().for_each(|x| *x = rng.gauss());
            normalize(c);
        }
        // Per-cluster random axis permutation so the clusters do not share noise directions.
        let scales: Vec<f32> = (0..dim)
            .map(|i| 1.0 / (1.0 + i as f32 / self.decay).sqrt())
            .collect();
        let norm = scales.iter().map(|s| s * s).sum::<f32>().sqrt();
        let perms: Vec<Vec<usize>> = (0..self.clusters)
            .map(|_| {
                let mut p: Vec<usize> = (0..dim).collect();
                for i in (1..dim).rev() {
                    p.swap(i, rng.below(i as u64 + 1) as usize);
                }
                p
            })
            .collect();
        let point = |rng: &mut SplitMix64, out: &mut Vec<f32>| {
            let c = rng.below(self.clusters as u64) as usize;
            let centre = &centres[c * dim..(c + 1) * dim];
            let start = out.len();
            out.extend_from_slice(centre);
            let v = &mut out[start..];
            for (i, &axis) in perms[c].iter().enumerate() {
                v[axis] += self.spread * scales[i] / norm * rng.gauss();
            }
            normalize(v);
        };
        let mut data = Vec::with_capacity(n * dim);
        for _ in 0..n {
            point(&mut rng, &mut data);
        }
        let mut rng_q = SplitMix64::new(self.seed ^ 0x5151_5151_5151_5151);
        let mut queries = Vec::with_capacity(q * dim);
        for _ in 0..q {
            point(&mut rng_q, &mut queries);
        }
        (data, queries)
    }
}
