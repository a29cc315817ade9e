//! `mneme bench`: measures the knowledge base and the pattern engine in process and returns a
//! report with KnowledgeBeast's benchmark keys (`system_info`, `query_latency`, …) plus
//! mneme's own sections. Rendering (JSON, text, HTML) and HTTP measurements live in the CLI.

pub mod corpus;
pub mod stats;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mneme_kb::{IngestOptions, KnowledgeBase, Ranking, SearchRequest};
use mneme_seq::config::Defaults;
use mneme_seq::node::Node;
use serde::{Deserialize, Serialize};

pub use stats::{Latency, percentile};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemInfo {
    pub platform: String,
    pub platform_version: String,
    /// KnowledgeBeast's key; mneme has no Python (always null).
    pub python_version: Option<String>,
    pub processor: String,
    pub cpu_count: usize,
    pub total_memory_gb: f64,
    pub mneme_version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Corpus {
    /// `configured` (the knowledge base of the configuration) or `synthetic`.
    pub source: String,
    pub documents: usize,
    pub chunks: u64,
    pub terms: usize,
    pub queries: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ingest {
    /// Chunks run through the embedding model and the seconds that took (0 without a model).
    #[serde(default)]
    pub embedded_chunks: usize,
    #[serde(default)]
    pub embedding_seconds: f64,
    #[serde(default)]
    pub embedded_chunks_per_second: f64,
    pub documents: usize,
    pub chunks: u64,
    pub bytes: u64,
    pub elapsed_seconds: f64,
    pub docs_per_second: f64,
    pub mb_per_second: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub queries_per_second: f64,
    pub total_queries: usize,
    pub elapsed_seconds: f64,
    pub workers: usize,
    pub use_cache: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CachePerformance {
    pub hit_ratio: f64,
    pub hits: u64,
    pub misses: u64,
    pub size: usize,
    pub capacity: usize,
    pub utilization: f64,
    pub avg_hit_latency_us: f64,
    pub avg_miss_latency_us: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub rss_mb: f64,
    pub vms_mb: f64,
    pub percent: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scalability {
    pub worker_counts: Vec<usize>,
    pub throughput: Vec<f64>,
}

/// Query latency at one corpus size (synthetic runs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SizePoint {
    pub documents: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The pattern engine at one stored-pattern count.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PatternPoint {
    pub patterns: usize,
    pub learn_per_second: f64,
    pub learn: Latency,
    pub observe: Latency,
    pub observe_per_second: f64,
    pub predict: Latency,
    pub predict_per_second: f64,
    pub predictions_avg: f64,
}

/// Everything `mneme bench` measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub timestamp: String,
    pub system_info: SystemInfo,
    pub corpus: Corpus,
    pub ingest: Option<Ingest>,
    pub query_latency: Latency,
    pub cached_query_latency: Latency,
    pub throughput_sequential: Throughput,
    pub throughput_concurrent: Vec<Throughput>,
    pub cache_performance: CachePerformance,
    pub memory_usage: Memory,
    pub scalability: Scalability,
    #[serde(default)]
    pub corpus_scalability: Vec<SizePoint>,
    #[serde(default)]
    pub pattern_engine: Vec<PatternPoint>,
    /// The ranking of every query section (`keyword`, `vector`, `hybrid`).
    #[serde(default)]
    pub mode: String,
    /// Vector / hybrid queries with a fresh and with a cached query embedding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<VectorLatency>,
    /// Measured against a running server (`--url`), by the CLI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpRun>,
}

/// Queries that need the query's embedding: computed for each query (a text never seen), or
/// taken from the query-embedding cache (the result cache is bypassed in both).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VectorLatency {
    pub mode: String,
    pub model: String,
    pub fresh_embedding: Latency,
    pub cached_embedding: Latency,
}

/// One HTTP workload at one concurrency.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRun {
    /// What was requested, e.g. `GET /api/v1/health`.
    pub name: String,
    pub connections: usize,
    pub requests: usize,
    pub requests_per_second: f64,
    pub errors: u64,
    pub latency: Latency,
}

/// What to run.
#[derive(Clone)]
pub struct Plan {
    /// How queries are ranked (vector and hybrid need `embedder`).
    pub ranking: Ranking,
    pub embedder: Option<Arc<dyn mneme_kb::Embedder>>,
    pub iterations: usize,
    pub queries_per_worker: usize,
    pub concurrent_workers: Vec<usize>,
    pub scalability_workers: Vec<usize>,
    pub pattern_counts: Vec<usize>,
    pub seed: u64,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("ranking", &self.ranking)
            .field("embedder", &self.embedder.as_ref().map(|e| e.fingerprint()))
            .field("iterations", &self.iterations)
            .field("queries_per_worker", &self.queries_per_worker)
            .finish()
    }
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            ranking: Ranking::Bm25,
            embedder: None,
            iterations: 200,
            queries_per_worker: 500,
            concurrent_workers: vec![5, 10],
            scalability_workers: vec![1, 2, 5, 10],
            pattern_counts: vec![1_000, 10_000],
            seed: 42,
        }
    }
}

/// Progress callbacks: a phase starts (`total` steps), a step is done.
pub trait Progress: Sync {
    fn phase(&self, _name: &str, _total: u64) {}
    fn step(&self) {}
}

pub struct Quiet;

impl Progress for Quiet {}

pub fn system_info() -> SystemInfo {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let processor = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(
            || std::env::consts::ARCH.to_owned(),
            |(_, v)| v.trim().to_owned(),
        );
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    SystemInfo {
        platform: std::env::consts::OS.to_owned(),
        platform_version: release.trim().to_owned(),
        python_version: None,
        processor,
        cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
        total_memory_gb: ((total_kib / 1024.0 / 1024.0) * 100.0).round() / 100.0,
        mneme_version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// This process's memory.
pub fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    let total_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let rss = kib("VmRSS:");
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Memory {
        rss_mb: round(rss / 1024.0),
        vms_mb: round(kib("VmSize:") / 1024.0),
        percent: if total_kib > 0.0 {
            round(100.0 * rss / total_kib)
        } else {
            0.0
        },
    }
}

fn request(ranking: Ranking, query: &str, use_cache: bool) -> SearchRequest<'_> {
    SearchRequest {
        query,
        ranking,
        limit: 10,
        offset: 0,
        with_content: false,
        with_total: false,
        use_cache,
        with_snippets: false,
    }
}

/// Times `iterations` queries cycling through `queries`.
fn latencies(
    ranking: Ranking,
    kb: &KnowledgeBase,
    queries: &[String],
    iterations: usize,
    use_cache: bool,
    progress: &dyn Progress,
) -> Vec<Duration> {
    (0..iterations)
        .map(|i| {
            let query = &queries[i % queries.len()];
            let started = Instant::now();
            let _ = kb.search(&request(ranking, query, use_cache));
            progress.step();
            started.elapsed()
        })
        .collect()
}

/// `workers` threads each running `per_worker` uncached queries.
fn throughput(
    ranking: Ranking,
    kb: &KnowledgeBase,
    queries: &[String],
    workers: usize,
    per_worker: usize,
    progress: &dyn Progress,
) -> Throughput {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..workers {
            scope.spawn(move || {
                for i in 0..per_worker {
                    let query = &queries[(w * 7919 + i) % queries.len()];
                    let _ = kb.search(&request(ranking, query, false));
                }
            });
        }
    });
    for _ in 0..workers {
        progress.step();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = workers * per_worker;
    Throughput {
        queries_per_second: (total as f64 / elapsed.max(1e-9) * 10.0).round() / 10.0,
        total_queries: total,
        elapsed_seconds: (elapsed * 1000.0).round() / 1000.0,
        workers,
        use_cache: false,
    }
}

/// Vector or hybrid query latency with a query text never seen (its embedding is computed)
/// and with the same texts again (embeddings from their cache); the result cache is off.
fn vector_latency(
    kb: &KnowledgeBase,
    queries: &[String],
    plan: &Plan,
    progress: &dyn Progress,
) -> VectorLatency {
    let count = plan.iterations.clamp(1, 200);
    // Distinct texts: the generated queries, then numbered variants of them.
    let texts: Vec<String> = (0..count)
        .map(|i| {
            let base = &queries[i % queries.len()];
            if i < queries.len() {
                format!("{base} ({i})")
            } else {
                format!("{base} {i}")
            }
        })
        .collect();
    let run = |progress: &dyn Progress| -> Vec<Duration> {
        texts
            .iter()
            .map(|q| {
                let started = Instant::now();
                let _ = kb.search(&request(plan.ranking, q, false));
                progress.step();
                started.elapsed()
            })
            .collect()
    };
    progress.phase("queries with a fresh embedding", count as u64);
    let fresh = run(progress);
    progress.phase("queries with a cached embedding", count as u64);
    let cached = run(progress);
    VectorLatency {
        mode: plan.ranking.name().to_owned(),
        model: kb.stats().embedding_model.unwrap_or_default(),
        fresh_embedding: Latency::of(&fresh),
        cached_embedding: Latency::of(&cached),
    }
}

/// Measures the knowledge base `kb` with `queries` into `report`.
pub fn measure_kb(
    kb: &KnowledgeBase,
    queries: &[String],
    plan: &Plan,
    report: &mut Report,
    progress: &dyn Progress,
) {
    let stats = kb.stats();
    report.corpus.documents = stats.documents;
    report.corpus.chunks = stats.chunks;
    report.corpus.terms = stats.terms;
    report.corpus.queries = queries.len();
    if queries.is_empty() {
        return;
    }
    // Page the index in, as a running server would have.
    let ranking = plan.ranking;
    report.mode = ranking.name().to_owned();
    for query in queries {
        let _ = kb.search(&request(ranking, query, false));
    }
    if ranking.uses_vectors() {
        report.vector = Some(vector_latency(kb, queries, plan, progress));
    }
    kb.clear_cache();
    let before = kb.stats().cache;
    progress.phase("uncached queries", plan.iterations as u64);
    let uncached = latencies(ranking, kb, queries, plan.iterations, false, progress);
    report.query_latency = Latency::of(&uncached);
    progress.phase("cached queries", plan.iterations as u64);
    // The first pass over the queries fills the cache (misses), then every lookup hits.
    let fill: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let started = Instant::now();
            let _ = kb.search(&request(ranking, q, true));
            started.elapsed()
        })
        .collect();
    let cached = latencies(ranking, kb, queries, plan.iterations, true, progress);
    report.cached_query_latency = Latency::of(&cached);
    let after = kb.stats().cache;
    let hits = after.hits - before.hits;
    let misses = after.misses - before.misses;
    let mean_us = |d: &[Duration]| {
        if d.is_empty() {
            0.0
        } else {
            (d.iter().map(Duration::as_secs_f64).sum::<f64>() / d.len() as f64 * 1e6 * 100.0)
                .round()
                / 100.0
        }
    };
    report.cache_performance = CachePerformance {
        hit_ratio: if hits + misses == 0 {
            0.0
        } else {
            (hits as f64 / (hits + misses) as f64 * 1000.0).round() / 1000.0
        },
        hits,
        misses,
        size: after.entries,
        capacity: after.capacity,
        utilization: (after.entries as f64 / after.capacity.max(1) as f64 * 1000.0).round()
            / 1000.0,
        avg_hit_latency_us: mean_us(&cached),
        avg_miss_latency_us: mean_us(&fill),
    };
    progress.phase(
        "throughput",
        (1 + plan.concurrent_workers.iter().sum::<usize>()
            + plan.scalability_workers.iter().sum::<usize>()) as u64,
    );
    report.throughput_sequential = throughput(
        ranking,
        kb,
        queries,
        1,
        plan.queries_per_worker * 2,
        progress,
    );
    report.throughput_concurrent = plan
        .concurrent_workers
        .iter()
        .map(|&w| throughput(ranking, kb, queries, w, plan.queries_per_worker, progress))
        .collect();
    report.scalability = Scalability {
        worker_counts: plan.scalability_workers.clone(),
        throughput: plan
            .scalability_workers
            .iter()
            .map(|&w| {
                throughput(ranking, kb, queries, w, plan.queries_per_worker, progress)
                    .queries_per_second
            })
            .collect(),
    };
}

/// A synthetic knowledge base of `documents` documents in `dir`: generates, ingests (timed)
/// and returns the engine and its queries.
pub fn synthetic_kb(
    dir: &Path,
    documents: usize,
    config: mneme_kb::KbConfig,
    embedder: Option<Arc<dyn mneme_kb::Embedder>>,
    seed: u64,
    progress: &dyn Progress,
) -> mneme_kb::Result<(KnowledgeBase, Vec<String>, Ingest)> {
    progress.phase("generating documents", documents as u64);
    let (knowledge, bytes) = corpus::write_corpus(dir, documents, seed, |_| progress.step())
        .map_err(|err| mneme_kb::Error::Corrupt(format!("writing the synthetic corpus: {err}")))?;
    progress.phase("ingesting", documents as u64);
    let kb = KnowledgeBase::open(&dir.join("index"), config)?;
    let kb = match embedder {
        Some(model) => kb.with_embedder(model),
        None => kb,
    };
    let started = Instant::now();
    struct Steps<'a> {
        progress: &'a dyn Progress,
        embedding: std::sync::Mutex<(Option<Instant>, Option<Duration>)>,
    }
    impl mneme_kb::IngestProgress for Steps<'_> {
        fn advanced(&self, _path: &Path, _bytes: u64) {
            self.progress.step();
        }
        fn embedding(&self, chunks: usize) {
            self.progress.phase("embedding chunks", chunks as u64);
            self.embedding.lock().unwrap().0 = Some(Instant::now());
        }
        fn embedded(&self, n: usize) {
            for _ in 0..n {
                self.progress.step();
            }
        }
        fn before_commit(&self) {
            let mut timing = self.embedding.lock().unwrap();
            timing.1 = timing.0.map(|t| t.elapsed());
        }
    }
    let steps = Steps {
        progress,
        embedding: std::sync::Mutex::new((None, None)),
    };
    let report = kb.ingest(&[knowledge], IngestOptions::default(), &steps)?;
    let elapsed = started.elapsed().as_secs_f64();
    let embedding_seconds = steps
        .embedding
        .lock()
        .unwrap()
        .1
        .map_or(0.0, |d| d.as_secs_f64());
    let ingest = Ingest {
        embedded_chunks: report.embedded,
        embedding_seconds: (embedding_seconds * 1000.0).round() / 1000.0,
        embedded_chunks_per_second: if embedding_seconds > 0.0 {
            (report.embedded as f64 / embedding_seconds * 10.0).round() / 10.0
        } else {
            0.0
        },
        documents: report.documents,
        chunks: report.chunks,
        bytes,
        elapsed_seconds: (elapsed * 1000.0).round() / 1000.0,
        docs_per_second: (report.documents as f64 / elapsed.max(1e-9)).round(),
        mb_per_second: (bytes as f64 / 1e6 / elapsed.max(1e-9) * 10.0).round() / 10.0,
    };
    let queries = corpus::Generator::for_queries(seed).queries(50);
    Ok((kb, queries, ingest))
}

/// Uncached query P50 / P99 at several corpus sizes (a fresh synthetic index each).
pub fn corpus_scalability(
    dir: &Path,
    sizes: &[usize],
    config: &mneme_kb::KbConfig,
    plan: &Plan,
    progress: &dyn Progress,
) -> mneme_kb::Result<Vec<SizePoint>> {
    let mut out = Vec::new();
    for &size in sizes {
        let sub = dir.join(format!("size-{size}"));
        let (kb, queries, _) = synthetic_kb(
            &sub,
            size,
            config.clone(),
            plan.embedder.clone(),
            plan.seed,
            progress,
        )?;
        for query in &queries {
            let _ = kb.search(&request(plan.ranking, query, false));
        }
        progress.phase(
            &format!("queries at {size} documents"),
            plan.iterations as u64,
        );
        let latency = Latency::of(&latencies(
            plan.ranking,
            &kb,
            &queries,
            plan.iterations,
            false,
            progress,
        ));
        out.push(SizePoint {
            documents: size,
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
        });
        drop(kb);
        let _ = std::fs::remove_dir_all(&sub);
    }
    Ok(out)
}

/// A random pattern of the benchmarks: 2-5 events of 1-5 symbols over 5,000 symbols.
pub fn random_pattern(rng: &mut corpus::Rng) -> Vec<Vec<String>> {
    (0..rng.range(2, 5))
        .map(|_| {
            (0..rng.range(1, 5))
                .map(|_| format!("s{}", rng.below(5000)))
                .collect()
        })
        .collect()
}

/// The pattern engine at each count of stored patterns: learn, observe and predict, in memory
/// (KATO's defaults; random patterns of 2-5 events × 1-5 symbols over 5,000 symbols).
pub fn measure_seq(plan: &Plan, progress: &dyn Progress) -> Vec<PatternPoint> {
    let defaults = Defaults::kato();
    let predict_config = defaults.predict_config();
    let observe_config = mneme_seq::session::ObserveConfig::from_defaults(&defaults);
    let mut out = Vec::new();
    for &count in &plan.pattern_counts {
        progress.phase(
            &format!("pattern engine, {count} patterns"),
            (count + 2 * plan.iterations) as u64,
        );
        let mut rng = corpus::Rng::new(plan.seed);
        let node = Arc::new(Node::in_memory("bench_kato"));
        let patterns: Vec<Vec<Vec<String>>> =
            (0..count).map(|_| random_pattern(&mut rng)).collect();
        let mut learn = Vec::with_capacity(count);
        let started = Instant::now();
        for pattern in &patterns {
            let t = Instant::now();
            let _ = node.learn(pattern, &[], &[], defaults.persistence);
            learn.push(t.elapsed());
            progress.step();
        }
        let learn_elapsed = started.elapsed().as_secs_f64();
        // Observe: events of learned patterns into a session, cleared every 3 events.
        let mut session = mneme_seq::session::Session::default();
        let mut observe = Vec::with_capacity(plan.iterations);
        for i in 0..plan.iterations {
            let pattern = &patterns[rng.below(patterns.len())];
            let observation = mneme_seq::types::Observation {
                strings: pattern[i % pattern.len()].clone(),
                ..Default::default()
            };
            let t = Instant::now();
            let _ = session.observe(&node, &observation, &observe_config, &|n, stm| {
                n.defer_predict(stm, &predict_config)
            });
            observe.push(t.elapsed());
            if i % 3 == 2 {
                session.stm.clear();
            }
            progress.step();
        }
        // Predict: a 3-event state from a learned pattern.
        let mut predict = Vec::with_capacity(plan.iterations);
        let mut returned = 0usize;
        for _ in 0..plan.iterations {
            let pattern = &patterns[rng.below(patterns.len())];
            let stm: Vec<Vec<String>> = pattern.iter().cycle().take(3).cloned().collect();
            let t = Instant::now();
            let set = node.predict(&stm, &predict_config);
            predict.push(t.elapsed());
            returned += set.predictions.len();
            progress.step();
        }
        let per_second = |samples: &[Duration]| {
            let total: f64 = samples.iter().map(Duration::as_secs_f64).sum();
            (samples.len() as f64 / total.max(1e-9)).round()
        };
        out.push(PatternPoint {
            patterns: count,
            learn_per_second: (count as f64 / learn_elapsed.max(1e-9)).round(),
            learn: Latency::of(&learn),
            observe_per_second: per_second(&observe),
            observe: Latency::of(&observe),
            predict_per_second: per_second(&predict),
            predict: Latency::of(&predict),
            predictions_avg: (returned as f64 / plan.iterations.max(1) as f64 * 10.0).round()
                / 10.0,
        });
    }
    out
}

/// A new report stamped with the time and this machine.
pub fn new_report() -> Report {
    Report {
        timestamp: crate::time::iso(SystemTime::now()),
        system_info: system_info(),
        ..Report::default()
    }
}
