//! Recall and latency of HNSW against exact search on synthetic embeddings.
//!
//! ```text
//! cargo run --release -p mneme-vector --example recall -- [N] [QUERIES] [key=value ...]
//! keys: clusters spread decay m efc ef (comma-separated list) seed
//! ```

use std::time::Instant;

use mneme_vector::exact::{self, dot, dot_naive};
use mneme_vector::synth::Mixture;
use mneme_vector::{Hnsw, HnswParams, Vectors};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let nq: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(500);
    let mut mix = Mixture::embedding_like(42);
    let mut params = HnswParams::default();
    let mut efs = vec![32, 64, 96, 128, 200];
    for kv in args.iter().skip(2) {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        match k {
            "clusters" => mix.clusters = v.parse().unwrap(),
            "spread" => mix.spread = v.parse().unwrap(),
            "decay" => mix.decay = v.parse().unwrap(),
            "seed" => mix.seed = v.parse().unwrap(),
            "m" => params.m = v.parse().unwrap(),
            "efc" => params.ef_construction = v.parse().unwrap(),
            "ef" => efs = v.split(',').map(|x| x.parse().unwrap()).collect(),
            _ => panic!("unknown key {k}"),
        }
    }
    println!("data: n={n} queries={nq} {mix:?}");
    println!("params: {params:?}");
    let t = Instant::now();
    let (data, queries) = mix.generate(n, nq);
    let vectors = Vectors::from_flat(mix.dim, data).unwrap();
    println!("generated in {:.2?}", t.elapsed());

    // Kernel: tuned vs naive over the whole store.
    let q0 = &queries[..mix.dim];
    // On 512 vectors (768 KB, cache-resident): the kernel, not memory bandwidth.
    let flat = &vectors.as_flat()[..mix.dim * n.min(512)];
    let rows = flat.len() / mix.dim;
    let reps = 20_000_000 / rows.max(1);
    let t = Instant::now();
    let mut s = 0.0f32;
    for _ in 0..reps {
        for row in flat.chunks_exact(mix.dim) {
            s += dot(std::hint::black_box(q0), row);
        }
    }
    let fast = t.elapsed().as_secs_f64() / (reps * rows) as f64;
    let t = Instant::now();
    for _ in 0..reps {
        for row in flat.chunks_exact(mix.dim) {
            s += dot_naive(std::hint::black_box(q0), row);
        }
    }
    let slow = t.elapsed().as_secs_f64() / (reps * rows) as f64;
    println!(
        "dot kernel ({}-d): {:.1} ns, naive {:.1} ns, speed-up {:.1}x  [{s:.0}]",
        mix.dim,
        fast * 1e9,
        slow * 1e9,
        slow / fast
    );

    let mut lat = Vec::with_capacity(nq);
    let mut truth = Vec::with_capacity(nq);
    for q in queries.chunks_exact(mix.dim) {
        let t = Instant::now();
        let hits = exact::search(&vectors, q, 10, None).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        truth.push(hits);
    }
    println!(
        "exact k=10: p50 {:.3} ms, p99 {:.3} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );

    let t = Instant::now();
    let g = Hnsw::build(&vectors, params).unwrap();
    let build = t.elapsed();
    println!(
        "hnsw build: {:.2?} ({:.0} vectors/s), graph {} bytes serialised",
        build,
        n as f64 / build.as_secs_f64(),
        g.to_bytes().len()
    );
    for &ef in &efs {
        let mut lat = Vec::with_capacity(nq);
        let mut found = 0usize;
        let mut total = 0usize;
        for (q, t_hits) in queries.chunks_exact(mix.dim).zip(&truth) {
            let t = Instant::now();
            let hits = g.search(&vectors, q, 10, ef).unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            total += t_hits.len();
            found += hits
                .iter()
                .filter(|h| t_hits.iter().any(|x| x.id == h.id))
                .count();
        }
        println!(
            "hnsw ef={ef:4}: recall@10 {:.4}, p50 {:.3} ms, p99 {:.3} ms",
            found as f64 / total.max(1) as f64,
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
    }
}
