//! The pattern-engine benchmark harness behind docs/benchmarks.md.
//!
//! usage: seq_bench [learn|predict|all] [--patterns 10000,100000,1000000] [--dir DIR]
//!
//! Workload (issue 4): random patterns of 2-5 events x 1-5 symbols over 5,000 symbols, and a
//! 10-symbol short-term memory; a fixed seed, so every run sees the same data.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mneme_app::patterns::{Durability, Patterns};
use mneme_seq::config::Defaults;
use mneme_seq::node::Node;

/// xorshift64*: a small deterministic generator (no dependency, same data on every machine).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SYMBOLS: u64 = 5000;

fn pattern(rng: &mut Rng) -> Vec<Vec<String>> {
    let events = 2 + rng.below(4);
    (0..events)
        .map(|_| {
            let symbols = 1 + rng.below(5);
            (0..symbols)
                .map(|_| format!("s{}", rng.below(SYMBOLS)))
                .collect()
        })
        .collect()
}

/// A short-term memory of 10 symbols in events of 1-5.
fn stm(rng: &mut Rng) -> Vec<Vec<String>> {
    let mut left = 10u64;
    let mut out = Vec::new();
    while left > 0 {
        let n = (1 + rng.below(5)).min(left);
        out.push((0..n).map(|_| format!("s{}", rng.below(SYMBOLS))).collect());
        left -= n;
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .iter()
        .find(|a| !a.starts_with("--") && !a.contains(',') && !a.contains('/'))
        .cloned()
        .unwrap_or_else(|| "all".into());
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = flag("--patterns")
        .unwrap_or_else(|| "10000,100000,1000000".into())
        .split(',')
        .map(|n| n.parse().expect("--patterns N,N"))
        .collect();
    let dir = flag("--dir").map_or_else(
        || std::env::temp_dir().join("mneme-seq-bench"),
        PathBuf::from,
    );
    if mode == "learn" || mode == "all" {
        bench_learn(&dir);
    }
    if mode == "predict" || mode == "all" {
        for &n in &sizes {
            bench_predict(n);
        }
    }
}

fn report(label: &str, count: usize, elapsed: Duration) {
    println!(
        "{label}: {count} learns in {:.3} s = {:.0} learns/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
}

fn bench_learn(dir: &std::path::Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = Rng(42);
    let patterns: Vec<Vec<Vec<String>>> = (0..200_000).map(|_| pattern(&mut rng)).collect();

    let node = Node::in_memory("bench_kato");
    let started = Instant::now();
    for p in &patterns {
        node.learn(p, &[], &[], 5).unwrap();
    }
    report("in memory (engine only)", patterns.len(), started.elapsed());

    let store = Patterns::open(
        Some(&dir.join("periodic.redb")),
        Durability::Periodic {
            interval: Duration::from_millis(100),
        },
        Defaults::kato(),
    )
    .unwrap();
    let node = store.node("bench").unwrap();
    let started = Instant::now();
    for p in &patterns {
        node.learn(p, &[], &[], 5).unwrap();
    }
    store.flush().unwrap();
    report(
        "redb, periodic (100 ms) incl. final flush",
        patterns.len(),
        started.elapsed(),
    );
    drop(node);
    drop(store);

    let store = Patterns::open(
        Some(&dir.join("durable.redb")),
        Durability::Immediate,
        Defaults::kato(),
    )
    .unwrap();
    let node = store.node("bench").unwrap();
    let sequential = 2000;
    let started = Instant::now();
    for p in &patterns[..sequential] {
        node.learn(p, &[], &[], 5).unwrap();
    }
    report("redb, durable, 1 learner", sequential, started.elapsed());

    let store = Arc::new(store);
    let per_thread = 500;
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            let batch: Vec<Vec<Vec<String>>> =
                patterns[10_000 + t * per_thread..10_000 + (t + 1) * per_thread].to_vec();
            std::thread::spawn(move || {
                let node = store.node("bench").unwrap();
                for p in &batch {
                    node.learn(p, &[], &[], 5).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    report(
        "redb, durable, 16 concurrent learners (group commit)",
        16 * per_thread,
        started.elapsed(),
    );
}

fn bench_predict(n: usize) {
    let mut rng = Rng(7);
    let node = Node::in_memory("bench_kato");
    let started = Instant::now();
    for _ in 0..n {
        node.learn(&pattern(&mut rng), &[], &[], 5).unwrap();
    }
    let learned = started.elapsed();
    let config = Defaults::kato().predict_config();
    let queries: Vec<Vec<Vec<String>>> = (0..200).map(|_| stm(&mut rng)).collect();
    for q in queries.iter().take(20) {
        std::hint::black_box(node.predict(q, &config));
    }
    let mut samples = Vec::new();
    let mut returned = 0;
    // SEQ_BENCH_REPEAT=N runs the queries N times (for profiling the prediction path alone).
    let repeat: usize = std::env::var("SEQ_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let repeated: Vec<&Vec<Vec<String>>> = (0..repeat).flat_map(|_| queries.iter()).collect();
    for q in repeated {
        let started = Instant::now();
        let set = node.predict(q, &config);
        samples.push(started.elapsed());
        returned += set.predictions.len();
    }
    samples.sort();
    let pct = |p: f64| {
        samples[((p / 100.0 * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
    };
    println!(
        "{n} patterns (learned in {:.2} s): predict p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} predictions avg)",
        learned.as_secs_f64(),
        pct(50.0).as_secs_f64() * 1e3,
        pct(99.0).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        returned / samples.len()
    );
}
