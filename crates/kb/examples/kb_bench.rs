//! The knowledge-base benchmark harness behind docs/benchmarks.md.
//!
//! usage: kb_bench CORPUS [INDEX_DIR] [--phase ingest|query|all] [--rounds N]
//!
//! CORPUS is a directory written by test-data/gen_corpus.py (CORPUS/knowledge/*.md and
//! CORPUS/queries.json). `ingest` builds the index from scratch, then runs a no-change
//! incremental ingest; `query` opens the existing index (timing the reopen) and measures
//! uncached and cached top-10 latency for the keyword and natural query sets, then prints the
//! process's resident memory. Run `query` in a fresh process to measure reopen and RSS honestly.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mneme_kb::{
    ChunkConfig, IngestOptions, KbConfig, KnowledgeBase, NoProgress, Ranking, SearchRequest,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let corpus = PathBuf::from(
        positional
            .first()
            .expect("usage: kb_bench CORPUS [INDEX_DIR]")
            .as_str(),
    );
    let index = positional
        .get(1)
        .map_or_else(|| corpus.join("index"), |p| PathBuf::from(p.as_str()));
    let phase = flag("--phase").unwrap_or_else(|| "all".into());
    let rounds: usize = flag("--rounds").map_or(5, |r| r.parse().expect("--rounds N"));
    if phase == "ingest" || phase == "all" {
        bench_ingest(&corpus, &index);
    }
    if phase == "query" || phase == "all" {
        bench_query(&corpus, &index, rounds);
    }
}

fn config() -> KbConfig {
    KbConfig {
        chunk: ChunkConfig {
            chunk_size: 1000,
            chunk_overlap: 200,
        },
        stemming: false,
        max_file_size: 50 << 20,
        max_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cache_capacity: NonZeroUsize::new(1000).unwrap(),
        writer_memory_per_thread: 64 << 20,
    }
}

fn bench_ingest(corpus: &Path, index: &Path) {
    let _ = std::fs::remove_dir_all(index);
    let knowledge = corpus.join("knowledge");
    let started = Instant::now();
    let kb = KnowledgeBase::open(index, config()).unwrap();
    let report = kb
        .ingest(
            std::slice::from_ref(&knowledge),
            IngestOptions::default(),
            &NoProgress,
        )
        .unwrap();
    let elapsed = started.elapsed();
    println!(
        "ingest: {} docs, {} chunks, {:.1} MiB in {:.3} s ({:.0} docs/s)",
        report.documents,
        report.chunks,
        report.bytes_read as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64(),
        report.documents as f64 / elapsed.as_secs_f64()
    );
    let started = Instant::now();
    let again = kb
        .ingest(&[knowledge], IngestOptions::default(), &NoProgress)
        .unwrap();
    println!(
        "incremental ingest, nothing changed: {} unchanged in {:.3} s",
        again.unchanged,
        started.elapsed().as_secs_f64()
    );
    println!(
        "index on disk: {:.1} MiB",
        dir_size(index) as f64 / (1 << 20) as f64
    );
}

fn bench_query(corpus: &Path, index: &Path, rounds: usize) {
    let rss_before = rss_kib();
    let started = Instant::now();
    let kb = KnowledgeBase::open(index, config()).unwrap();
    println!(
        "reopen: {:.1} ms ({} documents)",
        started.elapsed().as_secs_f64() * 1e3,
        kb.stats().documents
    );
    let queries: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus.join("queries.json")).unwrap()).unwrap();
    let set = |name: &str| -> Vec<String> {
        queries[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q.as_str().unwrap().to_owned())
            .collect()
    };
    for (name, list) in [("keyword", set("keyword")), ("natural", set("natural"))] {
        for ranking in [Ranking::Bm25, Ranking::Terms] {
            // One untimed pass pages the index in, as a running server would have.
            run(&kb, &list, ranking, false);
            let mut samples: Vec<(Duration, bool)> = Vec::new();
            for _ in 0..rounds {
                samples.extend(run(&kb, &list, ranking, false));
            }
            report(
                &format!("uncached {name:7} {:7}", ranking.name()),
                &mut samples,
            );
        }
        run(&kb, &list, Ranking::Bm25, true);
        let mut samples = Vec::new();
        for _ in 0..rounds {
            let timed = run(&kb, &list, Ranking::Bm25, true);
            assert!(
                timed.iter().all(|(_, cached)| *cached),
                "every query was cached by the first pass"
            );
            samples.extend(timed);
        }
        report(&format!("cached   {name:7} keyword"), &mut samples);
    }
    println!(
        "RSS: {:.1} MiB (before open {:.1} MiB)",
        rss_kib() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}

fn run(
    kb: &KnowledgeBase,
    queries: &[String],
    ranking: Ranking,
    use_cache: bool,
) -> Vec<(Duration, bool)> {
    queries
        .iter()
        .map(|query| {
            let request = SearchRequest {
                query,
                ranking,
                limit: 10,
                offset: 0,
                with_content: false,
                with_total: false,
                use_cache,
                with_snippets: true,
            };
            let started = Instant::now();
            let outcome = kb.search(&request).unwrap();
            let elapsed = started.elapsed();
            let cached = outcome.cached;
            std::hint::black_box(outcome);
            (elapsed, cached)
        })
        .collect()
}

/// Percentiles by the nearest-rank method on the sorted samples.
fn report(label: &str, samples: &mut [(Duration, bool)]) {
    let mut samples: Vec<Duration> = samples.iter().map(|(d, _)| *d).collect();
    samples.sort();
    let pct = |p: f64| {
        samples[((p / 100.0 * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1]
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{label}: n={} p50 {:.1} us  p95 {:.1} us  p99 {:.1} us  max {:.1} us",
        samples.len(),
        us(pct(50.0)),
        us(pct(95.0)),
        us(pct(99.0)),
        us(samples[samples.len() - 1])
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        dir_size(&e.path())
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
