//! `mneme bench`: the report's structure in every format, the baseline comparison and its exit
//! status, and clear errors. Never timings.

use crate::{Served, json, mneme, run, stderr, stdout, write_files};

const SMALL: &[&str] = &[
    "bench",
    "--synthetic",
    "60",
    "--iterations",
    "20",
    "--patterns",
    "200",
];

#[test]
fn json_report_has_knowledgebeasts_keys_and_ours() {
    let work = tempfile::tempdir().unwrap();
    let output = run(mneme(work.path()).args(SMALL).args(["--format", "json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    for key in [
        "timestamp",
        "system_info",
        "query_latency",
        "cached_query_latency",
        "throughput_sequential",
        "throughput_concurrent",
        "cache_performance",
        "memory_usage",
        "scalability",
        "ingest",
        "corpus_scalability",
        "pattern_engine",
    ] {
        assert!(!report[key].is_null(), "missing {key}");
    }
    for key in [
        "p50_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "max_ms", "count",
    ] {
        assert!(
            report["query_latency"][key].is_number(),
            "query_latency.{key}"
        );
    }
    let latency = &report["query_latency"];
    assert_eq!(latency["count"], 20);
    let (p50, p99, max) = (
        latency["p50_ms"].as_f64().unwrap(),
        latency["p99_ms"].as_f64().unwrap(),
        latency["max_ms"].as_f64().unwrap(),
    );
    assert!(p50 <= p99 && p99 <= max, "percentiles are ordered");
    assert_eq!(report["corpus"]["documents"], 60);
    assert_eq!(report["ingest"]["documents"], 60);
    assert_eq!(report["throughput_concurrent"][0]["workers"], 5);
    assert_eq!(report["throughput_concurrent"][1]["workers"], 10);
    assert_eq!(
        report["scalability"]["worker_counts"],
        serde_json::json!([1, 2, 5, 10])
    );
    assert_eq!(report["pattern_engine"][0]["patterns"], 200);
    assert!(report["system_info"]["cpu_count"].as_u64().unwrap() >= 1);
    assert!(stderr(&output).contains("summary: uncached P99"));
}

#[test]
fn text_and_html_reports() {
    let work = tempfile::tempdir().unwrap();
    let output = run(mneme(work.path()).args(SMALL));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for section in [
        "MNEME PERFORMANCE BENCHMARK REPORT",
        "SYSTEM INFORMATION",
        "QUERY LATENCY (Uncached)",
        "QUERY LATENCY (Cached)",
        "THROUGHPUT - Sequential",
        "THROUGHPUT - Concurrent",
        "CACHE PERFORMANCE",
        "MEMORY USAGE",
        "SCALABILITY",
        "SCALABILITY GRAPH",
        "PATTERN ENGINE",
        "END OF REPORT",
    ] {
        assert!(text.contains(section), "missing {section} in\n{text}");
    }
    let html = work.path().join("report.html");
    let output = run(mneme(work.path())
        .args(SMALL)
        .args(["--format", "html", "--output"])
        .arg(&html));
    assert!(output.status.success(), "{}", stderr(&output));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.starts_with("<!doctype html>") && page.contains("<svg") && !page.contains("<script")
    );
    assert!(stdout(&output).is_empty(), "the report went to the file");

    // KnowledgeBeast's guide: `benchmark --output report.html`, no --format. The extension
    // picks the format; an explicit --format still wins.
    let mut args = SMALL.to_vec();
    args[0] = "benchmark";
    let guide = work.path().join("guide.html");
    let output = run(mneme(work.path()).args(&args).arg("--output").arg(&guide));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        std::fs::read_to_string(&guide)
            .unwrap()
            .starts_with("<!doctype html>")
    );
    let json_file = work.path().join("report.json");
    let output = run(mneme(work.path()).args(&args).arg("-o").arg(&json_file));
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_file).unwrap()).unwrap();
    assert!(report["query_latency"].is_object());
    let forced = work.path().join("forced.html");
    let output = run(mneme(work.path())
        .args(&args)
        .args(["--format", "text", "--output"])
        .arg(&forced));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        std::fs::read_to_string(&forced)
            .unwrap()
            .contains("END OF REPORT")
    );
}

#[test]
fn a_baseline_comparison_exits_4_on_a_regression() {
    let work = tempfile::tempdir().unwrap();
    let output = run(mneme(work.path()).args(SMALL).args(["--format", "json"]));
    assert!(output.status.success());
    let mut report = json(&output);
    // A baseline that was much faster than anything this run can do.
    report["throughput_sequential"]["queries_per_second"] = serde_json::json!(1e12);
    let baseline = work.path().join("baseline.json");
    std::fs::write(&baseline, report.to_string()).unwrap();
    let output = run(mneme(work.path())
        .args(SMALL)
        .args(["--format", "json", "--baseline"])
        .arg(&baseline));
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(stderr(&output).contains("REGRESSION"));
    // With a generous limit the same run passes... unless a figure is a million times worse.
    report["throughput_sequential"]["queries_per_second"] = serde_json::json!(1e-3);
    std::fs::write(&baseline, report.to_string()).unwrap();
    let output = run(mneme(work.path())
        .args(SMALL)
        .args([
            "--format",
            "json",
            "--max-regression",
            "100000000",
            "--baseline",
        ])
        .arg(&baseline));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("comparison with the baseline"));
    std::fs::write(&baseline, "{not json").unwrap();
    let output = run(mneme(work.path())
        .args(SMALL)
        .arg("--baseline")
        .arg(&baseline));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("is not a JSON report"));
}

#[test]
fn the_configured_knowledge_base_and_clear_errors() {
    let work = tempfile::tempdir().unwrap();
    let output = run(mneme(work.path()).args(["bench", "--patterns", "0"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is empty: run `mneme ingest` first"),
        "{}",
        stderr(&output)
    );
    write_files(
        work.path(),
        &[
            ("docs/a.md", "# Audio\n\naudio processing with filters\n"),
            ("docs/b.md", "machine learning models\n"),
        ],
    );
    assert!(run(mneme(work.path()).arg("ingest")).status.success());
    let output = run(mneme(work.path()).args([
        "bench",
        "--iterations",
        "10",
        "--patterns",
        "0",
        "--format",
        "json",
    ]));
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["corpus"]["source"], "configured");
    assert_eq!(report["corpus"]["documents"], 2);
    assert!(report["ingest"].is_null());
    assert_eq!(report["pattern_engine"], serde_json::json!([]));
    let output = run(mneme(work.path()).args(["bench", "--url", "http://10.0.0.1:8000"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("only ever sent to this machine"));
}

#[test]
fn url_measures_a_running_server() {
    let work = tempfile::tempdir().unwrap();
    write_files(
        work.path(),
        &[("docs/a.md", "# Cache\n\ncache latency and query index\n")],
    );
    let mut served = Served::start(mneme(work.path()));
    let url = format!("http://{}", served.addr);
    let output = run(mneme(work.path()).args(SMALL).args([
        "--patterns",
        "0",
        "--format",
        "json",
        "--http-requests",
        "80",
        "--url",
        &url,
    ]));
    let _ = served.child.kill();
    let _ = served.child.wait();
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    let runs = report["http"].as_array().expect("an http section");
    assert_eq!(runs.len(), 8);
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["requests"].as_u64().unwrap() >= 20, "{run}");
        assert!(run["requests_per_second"].as_f64().unwrap() > 0.0);
    }
    assert!(
        runs.iter()
            .any(|r| r["name"] == "KATO predictions" && r["connections"] == 8)
    );
}
