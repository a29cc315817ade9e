//! The text report, in KnowledgeBeast's layout (70-column banners, `  key: value` items), with
//! mneme's extra sections after its own.

use std::fmt::Write;

use mneme_app::bench::{Latency, Report};

const WIDTH: usize = 70;

/// A duration in milliseconds for people: microseconds below 0.1 ms.
pub fn show_ms(ms: f64) -> String {
    if ms < 0.1 {
        format!("{:.1} µs", ms * 1000.0)
    } else {
        format!("{ms:.3} ms")
    }
}

fn section(out: &mut String, title: &str) {
    let _ = writeln!(out, "\n{title}\n{}", "-".repeat(WIDTH));
}

fn item(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {key:20}: {value}");
}

fn latency(out: &mut String, l: &Latency) {
    item(out, "P50", show_ms(l.p50_ms));
    item(out, "P95", show_ms(l.p95_ms));
    item(out, "P99", show_ms(l.p99_ms));
    item(out, "Mean", show_ms(l.mean_ms));
    item(out, "Min", show_ms(l.min_ms));
    item(out, "Max", show_ms(l.max_ms));
    item(out, "Count", l.count);
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", "=".repeat(WIDTH));
    let _ = writeln!(out, "{:^WIDTH$}", "MNEME PERFORMANCE BENCHMARK REPORT");
    let _ = writeln!(out, "{}", "=".repeat(WIDTH));
    let _ = writeln!(out, "Timestamp: {}", r.timestamp);

    section(&mut out, "SYSTEM INFORMATION");
    let s = &r.system_info;
    item(
        &mut out,
        "Platform",
        format!("{} {}", s.platform, s.platform_version),
    );
    item(&mut out, "Processor", &s.processor);
    item(&mut out, "CPU Count", s.cpu_count);
    item(
        &mut out,
        "Total Memory",
        format!("{:.2} GB", s.total_memory_gb),
    );
    item(&mut out, "mneme", &s.mneme_version);

    section(&mut out, "CORPUS");
    item(&mut out, "Source", &r.corpus.source);
    item(&mut out, "Documents", r.corpus.documents);
    item(&mut out, "Chunks", r.corpus.chunks);
    item(&mut out, "Terms", r.corpus.terms);
    item(&mut out, "Queries", r.corpus.queries);
    if let Some(ingest) = &r.ingest {
        section(&mut out, "INGEST");
        item(&mut out, "Documents", ingest.documents);
        item(
            &mut out,
            "Elapsed",
            format!("{:.3}s", ingest.elapsed_seconds),
        );
        item(
            &mut out,
            "Docs/sec",
            format!("{:.0}", ingest.docs_per_second),
        );
        item(&mut out, "MB/sec", format!("{:.1}", ingest.mb_per_second));
        if ingest.embedded_chunks > 0 {
            item(&mut out, "Embedded Chunks", ingest.embedded_chunks);
            item(
                &mut out,
                "Embedding",
                format!("{:.3}s", ingest.embedding_seconds),
            );
            item(
                &mut out,
                "Chunks/sec",
                format!("{:.1}", ingest.embedded_chunks_per_second),
            );
        }
    }
    if !r.mode.is_empty() {
        item(&mut out, "Query mode", &r.mode);
    }
    if let Some(v) = &r.vector {
        section(
            &mut out,
            &format!("{} QUERY (fresh query embedding)", v.mode.to_uppercase()),
        );
        latency(&mut out, &v.fresh_embedding);
        section(
            &mut out,
            &format!("{} QUERY (cached query embedding)", v.mode.to_uppercase()),
        );
        latency(&mut out, &v.cached_embedding);
        item(&mut out, "Model", &v.model);
    }

    section(&mut out, "QUERY LATENCY (Uncached)");
    latency(&mut out, &r.query_latency);
    section(&mut out, "QUERY LATENCY (Cached)");
    latency(&mut out, &r.cached_query_latency);

    section(&mut out, "THROUGHPUT - Sequential");
    let t = &r.throughput_sequential;
    item(&mut out, "QPS", format!("{:.1}", t.queries_per_second));
    item(&mut out, "Total Queries", t.total_queries);
    item(&mut out, "Elapsed", format!("{:.3}s", t.elapsed_seconds));
    section(&mut out, "THROUGHPUT - Concurrent");
    for t in &r.throughput_concurrent {
        item(&mut out, "Workers", t.workers);
        item(&mut out, "QPS", format!("{:.1}", t.queries_per_second));
        item(&mut out, "Total Queries", t.total_queries);
        item(&mut out, "Elapsed", format!("{:.3}s", t.elapsed_seconds));
        out.push('\n');
    }

    section(&mut out, "CACHE PERFORMANCE");
    let c = &r.cache_performance;
    item(
        &mut out,
        "Hit Ratio",
        format!("{:.1}%", c.hit_ratio * 100.0),
    );
    item(&mut out, "Hits", c.hits);
    item(&mut out, "Misses", c.misses);
    item(&mut out, "Size", format!("{}/{}", c.size, c.capacity));
    item(
        &mut out,
        "Utilization",
        format!("{:.1}%", c.utilization * 100.0),
    );
    item(
        &mut out,
        "Avg Hit Latency",
        format!("{:.2} µs", c.avg_hit_latency_us),
    );
    item(
        &mut out,
        "Avg Miss Latency",
        format!("{:.2} µs", c.avg_miss_latency_us),
    );

    section(&mut out, "MEMORY USAGE");
    item(&mut out, "RSS", format!("{:.2} MB", r.memory_usage.rss_mb));
    item(&mut out, "VMS", format!("{:.2} MB", r.memory_usage.vms_mb));
    item(
        &mut out,
        "Percent",
        format!("{:.2}%", r.memory_usage.percent),
    );

    section(&mut out, "SCALABILITY");
    let sc = &r.scalability;
    for (w, q) in sc.worker_counts.iter().zip(&sc.throughput) {
        let _ = writeln!(out, "  {w:2} workers: {q:.1} queries/sec");
    }
    section(&mut out, "SCALABILITY GRAPH");
    let max = sc.throughput.iter().copied().fold(0.0, f64::max);
    for (w, q) in sc.worker_counts.iter().zip(&sc.throughput) {
        let bar = if max > 0.0 {
            ((q / max) * 50.0).round() as usize
        } else {
            0
        };
        let _ = writeln!(out, "  {w:2} workers | {} {q:.0} qps", "#".repeat(bar));
    }

    if !r.corpus_scalability.is_empty() {
        section(&mut out, "LATENCY vs CORPUS SIZE (Uncached)");
        for p in &r.corpus_scalability {
            let _ = writeln!(
                out,
                "  {:>8} documents: P50 {}  P99 {}",
                p.documents,
                show_ms(p.p50_ms),
                show_ms(p.p99_ms)
            );
        }
    }
    if !r.pattern_engine.is_empty() {
        section(&mut out, "PATTERN ENGINE");
        for p in &r.pattern_engine {
            let _ = writeln!(out, "  {} stored patterns", p.patterns);
            item(
                &mut out,
                "Learn",
                format!(
                    "{:.0}/s (P99 {})",
                    p.learn_per_second,
                    show_ms(p.learn.p99_ms)
                ),
            );
            item(
                &mut out,
                "Observe",
                format!(
                    "{:.0}/s (P50 {}, P99 {})",
                    p.observe_per_second,
                    show_ms(p.observe.p50_ms),
                    show_ms(p.observe.p99_ms)
                ),
            );
            item(
                &mut out,
                "Predict",
                format!(
                    "{:.0}/s (P50 {}, P99 {})",
                    p.predict_per_second,
                    show_ms(p.predict.p50_ms),
                    show_ms(p.predict.p99_ms)
                ),
            );
            item(
                &mut out,
                "Predictions/call",
                format!("{:.1}", p.predictions_avg),
            );
        }
    }
    if !r.http.is_empty() {
        section(&mut out, "HTTP");
        for h in &r.http {
            let _ = writeln!(
                out,
                "  {:<36} c={:<3} {:>9.0} req/s  P50 {}  P99 {}  errors {}",
                h.name,
                h.connections,
                h.requests_per_second,
                show_ms(h.latency.p50_ms),
                show_ms(h.latency.p99_ms),
                h.errors
            );
        }
    }
    let _ = writeln!(out, "\n{}", "=".repeat(WIDTH));
    let _ = writeln!(out, "{:^WIDTH$}", "END OF REPORT");
    let _ = writeln!(out, "{}", "=".repeat(WIDTH));
    out
}

/// The few lines printed on stderr after every run.
pub fn summary(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "summary: uncached P99 {}, cached P99 {}, sequential {:.0} q/s, {} workers {:.0} q/s, cache hit ratio {:.1}%, RSS {:.1} MB",
        show_ms(r.query_latency.p99_ms),
        show_ms(r.cached_query_latency.p99_ms),
        r.throughput_sequential.queries_per_second,
        r.throughput_concurrent.last().map_or(0, |t| t.workers),
        r.throughput_concurrent
            .last()
            .map_or(0.0, |t| t.queries_per_second),
        r.cache_performance.hit_ratio * 100.0,
        r.memory_usage.rss_mb,
    );
    out
}
