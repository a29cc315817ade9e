//! KnowledgeBeast's API v1 and the shared middleware, black-box: requests in, status, headers
//! and JSON out, as the spec (../shared/specs/knowledgebeast.md §2) and docs/compatibility.md
//! say.

use crate::support;

use std::io::Write;

use axum::body::Body;
use serde_json::{Value, json};
use support::{TestServer, http, write};

fn docs() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "audio/librosa.md",
            "# Librosa\n\nAudio analysis with librosa: beat tracking and onset detection.\n",
        ),
        (
            "audio/juce.md",
            "# JUCE\n\nThe juce framework builds audio plugins in C++.\n",
        ),
        (
            "ml/intro.txt",
            "Machine learning basics: models learn from data.\n",
        ),
        (
            "ml/deep.md",
            "# Deep learning\n\nNeural networks for audio and images.\n\n## Training\n\nGradient descent.\n",
        ),
    ]
}

fn query(server: &TestServer, body: Value) -> Value {
    let reply = server.post("/api/v1/query", &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn query_ranks_pages_and_reports_the_cache_truthfully() {
    let server = TestServer::new(&docs());
    let first = query(&server, json!({"query": "audio"}));
    assert_eq!(first["cached"], false);
    assert_eq!(first["query"], "audio");
    assert_eq!(first["count"], 3);
    let ids: Vec<&str> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["doc_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"knowledge-base/audio/librosa.md"), "{ids:?}");
    for (i, hit) in first["results"].as_array().unwrap().iter().enumerate() {
        for field in ["doc_id", "content", "name", "path", "kb_dir"] {
            assert!(hit[field].is_string(), "{field} in {hit}");
        }
        assert_eq!(hit["rank"], i + 1);
        assert!(hit["vector_score"].is_null() && hit["rerank_score"].is_null());
        assert!(hit["final_score"].as_f64().unwrap() > 0.0);
    }
    let again = query(&server, json!({"query": "audio"}));
    assert_eq!(again["cached"], true);
    assert_eq!(again["results"], first["results"]);
    let uncached = query(&server, json!({"query": "audio", "use_cache": false}));
    assert_eq!(uncached["cached"], false);

    // limit and offset are honoured.
    let page = query(&server, json!({"query": "audio", "limit": 1, "offset": 1}));
    assert_eq!(page["count"], 1);
    assert_eq!(page["results"][0]["doc_id"], first["results"][1]["doc_id"]);
    assert_eq!(page["results"][0]["rank"], 2);
    // KnowledgeBeast's web UI sends n_results.
    assert_eq!(
        query(&server, json!({"query": "audio", "n_results": 2}))["count"],
        2
    );

    // The original's ranking: distinct matched terms.
    let terms = query(&server, json!({"query": "audio analysis", "mode": "terms"}));
    assert_eq!(
        terms["results"][0]["doc_id"],
        "knowledge-base/audio/librosa.md"
    );
    assert_eq!(terms["results"][0]["final_score"], 2.0);
    // content is the best passage; full_content gives the whole document.
    let full = query(&server, json!({"query": "gradient", "full_content": true}));
    assert!(
        full["results"][0]["content"]
            .as_str()
            .unwrap()
            .contains("Neural networks")
    );
}

#[test]
fn paginated_query_counts_pages() {
    let server = TestServer::new(&docs());
    let reply = server.post(
        "/api/v1/query/paginated",
        &json!({"query": "audio", "page": 2, "page_size": 2}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["count"], 1);
    assert_eq!(
        body["pagination"],
        json!({"total_results": 3, "total_pages": 2, "current_page": 2, "page_size": 2, "has_next": false, "has_previous": true})
    );
    let beyond = server.post(
        "/api/v1/query/paginated",
        &json!({"query": "audio", "page": 3, "page_size": 2}),
    );
    assert_eq!(beyond.status, 400);
    assert_eq!(
        beyond.json(),
        json!({"detail": "Page 3 exceeds total pages 2"})
    );
    let none = server.post("/api/v1/query/paginated", &json!({"query": "zzzunknown"}));
    assert_eq!(none.json()["pagination"]["total_pages"], 1);
}

#[test]
fn invalid_queries_get_knowledgebeast_validation_errors() {
    let server = TestServer::new(&docs());
    let reply = server.post("/api/v1/query", &json!({"query": "rm -rf; ls"}));
    assert_eq!(reply.status, 422);
    assert_eq!(
        reply.json(),
        json!({"error": "ValidationError", "message": "Request validation failed",
               "detail": "body.query: Value error, Query contains invalid character: ;", "status_code": 422})
    );
    let blank = server.post("/api/v1/query", &json!({"query": "   "}));
    assert_eq!(
        blank.json()["detail"],
        "body.query: Value error, Query cannot be empty or only whitespace"
    );
    let several = server.post(
        "/api/v1/query",
        &json!({"query": "", "limit": 500, "use_cache": "maybe"}),
    );
    assert_eq!(
        several.json()["detail"],
        "body.query: String should have at least 1 character; body.use_cache: Input should be a valid boolean; body.limit: Input should be less than or equal to 100"
    );
    let missing = server.post("/api/v1/query", &json!({}));
    assert_eq!(missing.json()["detail"], "body.query: Field required");
    let wrong_type = server.post("/api/v1/query", &json!({"query": 5}));
    assert_eq!(
        wrong_type.json()["detail"],
        "body.query: Input should be a valid string"
    );
    let long = server.post("/api/v1/query", &json!({"query": "a".repeat(1001)}));
    assert_eq!(
        long.json()["detail"],
        "body.query: String should have at most 1000 characters"
    );
    let malformed = server.call(
        "POST",
        "/api/v1/query",
        &[("content-type", "application/json")],
        "{\"query\": ",
    );
    assert_eq!(malformed.status, 422);
    assert!(
        malformed.json()["detail"]
            .as_str()
            .unwrap()
            .contains("JSON decode error")
    );
    let not_object = server.post("/api/v1/query", &json!(["audio"]));
    assert_eq!(not_object.status, 422);
    let mode = server.post(
        "/api/v1/query",
        &json!({"query": "audio", "mode": "telepathy"}),
    );
    assert_eq!(mode.status, 422);
}

#[test]
fn ingest_reads_only_the_named_file_and_checks_its_path() {
    let server = TestServer::new(&docs());
    let new_file = server.path("knowledge-base/audio/new.md");
    write(
        &new_file,
        "# Spectrograms\n\nA spectrogram shows frequencies over time.\n",
    );
    // A file changed on disk but not named in the request stays as indexed.
    write(
        server.path("knowledge-base/ml/intro.txt"),
        "Completely different words now: spectrogram.\n",
    );
    let reply = server.post(
        "/api/v1/ingest",
        &json!({"file_path": new_file.display().to_string()}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"success": true, "file_path": new_file.display().to_string(), "doc_id": "knowledge-base/audio/new.md",
               "message": "Successfully ingested new.md"})
    );
    let hits = query(&server, json!({"query": "spectrogram"}));
    let ids: Vec<&str> = hits["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["doc_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["knowledge-base/audio/new.md"],
        "only the named file was read"
    );

    let traversal = server.post(
        "/api/v1/ingest",
        &json!({"file_path": "knowledge-base/../secret.md"}),
    );
    assert_eq!(traversal.status, 422);
    assert!(
        traversal.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Path traversal")
    );
    let extension = server.post("/api/v1/ingest", &json!({"file_path": "/tmp/x.exe"}));
    assert_eq!(extension.status, 422);
    assert!(
        extension.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Unsupported file type")
    );
    let missing = server.post(
        "/api/v1/ingest",
        &json!({"file_path": server.path("knowledge-base/none.md").display().to_string()}),
    );
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "NotFound");
    std::fs::create_dir_all(server.path("knowledge-base/dir.md")).unwrap();
    let directory = server.post(
        "/api/v1/ingest",
        &json!({"file_path": server.path("knowledge-base/dir.md").display().to_string()}),
    );
    assert_eq!(directory.status, 400);
    assert!(
        directory.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("Path is not a file")
    );
    let outside = server.path("elsewhere.md");
    write(&outside, "# Outside\n");
    let reply = server.post(
        "/api/v1/ingest",
        &json!({"file_path": outside.display().to_string()}),
    );
    assert_eq!(reply.status, 403);
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("outside the knowledge directories")
    );
    // A corrupt PDF is a clear 400, and nothing else changes.
    let pdf = server.path("knowledge-base/broken.pdf");
    write(&pdf, "%PDF-1.4 this is not really a pdf");
    let before = server.get("/api/v1/stats").json()["total_documents"].clone();
    let reply = server.post(
        "/api/v1/ingest",
        &json!({"file_path": pdf.display().to_string()}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("broken.pdf")
    );
    assert_eq!(
        server.get("/api/v1/stats").json()["total_documents"],
        before
    );
}

#[test]
fn batch_ingest_counts_successes_and_failures() {
    let server = TestServer::new(&docs());
    let a = server.path("knowledge-base/batch/a.md");
    let b = server.path("knowledge-base/batch/b.txt");
    write(&a, "alpha batch\n");
    write(&b, "beta batch\n");
    let missing = server.path("knowledge-base/batch/missing.md");
    let body = json!({"file_paths": [a.display().to_string(), b.display().to_string(), missing.display().to_string()]});
    let reply = server.post("/api/v1/batch-ingest", &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"success": false, "total_files": 3, "successful": 2, "failed": 1,
               "failed_files": [missing.display().to_string()], "message": "Batch ingestion completed: 2/3 successful"})
    );
    assert_eq!(query(&server, json!({"query": "batch"}))["count"], 2);
    let empty = server.post("/api/v1/batch-ingest", &json!({"file_paths": []}));
    assert_eq!(empty.status, 422);
    assert_eq!(
        empty.json()["detail"],
        "body.file_paths: List should have at least 1 item after validation, not 0"
    );
    let too_many: Vec<String> = (0..101).map(|i| format!("/tmp/{i}.md")).collect();
    assert_eq!(
        server
            .post("/api/v1/batch-ingest", &json!({"file_paths": too_many}))
            .status,
        422
    );
}

#[test]
fn warm_stats_cache_health_and_collections() {
    let server = TestServer::new(&docs());
    query(&server, json!({"query": "audio"}));
    query(&server, json!({"query": "audio"}));
    let stats = server.get("/api/v1/stats").json();
    assert_eq!(stats["total_documents"], 4);
    assert_eq!(stats["documents"], 4);
    assert_eq!(stats["cache_hits"], 1);
    assert_eq!(stats["cache_misses"], 1);
    assert_eq!(stats["cache_hit_rate"], "50.0%");
    assert!(
        stats["last_access_age"]
            .as_str()
            .unwrap()
            .ends_with("s ago")
    );
    assert_eq!(stats["knowledge_dirs"].as_array().unwrap().len(), 1);

    write(
        server.path("knowledge-base/late.md"),
        "# Late\n\nwarming finds new files\n",
    );
    let warm = server.post("/api/v1/warm", &json!({}));
    assert_eq!(warm.status, 200, "{}", warm.text());
    let warm = warm.json();
    assert_eq!(warm["success"], true);
    assert_eq!(warm["documents_loaded"], 5);
    assert_eq!(warm["queries_executed"], 7);
    assert!(
        warm["message"]
            .as_str()
            .unwrap()
            .starts_with("Knowledge base warmed in ")
    );
    let rebuilt = server
        .post("/api/v1/warm", &json!({"force_rebuild": true}))
        .json();
    assert_eq!(rebuilt["documents_loaded"], 5);
    assert_eq!(
        rebuilt["queries_executed"], 14,
        "cumulative, as KnowledgeBeast reports it"
    );

    let cleared = server.post("/api/v1/cache/clear", &json!({})).json();
    assert_eq!(cleared["success"], true);
    assert!(cleared["cleared_count"].as_u64().unwrap() >= 1);
    assert_eq!(
        cleared["message"],
        format!(
            "Cache cleared: {} entries removed",
            cleared["cleared_count"]
        )
    );
    assert_eq!(server.get("/api/v1/stats").json()["cached_queries"], 0);

    let health = server.get("/api/v1/health").json();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["kb_initialized"], true);
    let collections = server.get("/api/v1/collections").json();
    assert_eq!(collections["count"], 1);
    assert_eq!(collections["collections"][0]["name"], "default");
    assert_eq!(collections["collections"][0]["document_count"], 5);
    assert_eq!(
        server.get("/api/v1/collections/default").json()["name"],
        "default"
    );
    let missing = server.get("/api/v1/collections/other");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["detail"], "404: Collection not found: other");
}

#[test]
fn heartbeat_rescans_the_knowledge_dirs() {
    let server = TestServer::with(&docs(), |setup| setup.kb.heartbeat_interval = 1);
    assert_eq!(
        server.get("/api/v1/heartbeat/status").json(),
        json!({"running": false, "interval": 1, "heartbeat_count": 0, "last_heartbeat": null})
    );
    let started = server.post("/api/v1/heartbeat/start", &json!({})).json();
    assert_eq!(
        started,
        json!({"success": true, "message": "Heartbeat started successfully", "running": true})
    );
    assert_eq!(
        server.post("/api/v1/heartbeat/start", &json!({})).json()["message"],
        "Heartbeat already running"
    );
    write(
        server.path("knowledge-base/heartbeat.md"),
        "# Pulse\n\nfound by the heartbeat\n",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = server.get("/api/v1/heartbeat/status").json();
        if status["heartbeat_count"].as_u64().unwrap() >= 1
            && query(&server, json!({"query": "pulse"}))["count"] == 1
        {
            assert!(status["last_heartbeat"].is_string());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the heartbeat never re-scanned: {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        server.post("/api/v1/heartbeat/stop", &json!({})).json()["message"],
        "Heartbeat stopped successfully"
    );
    assert_eq!(
        server.post("/api/v1/heartbeat/stop", &json!({})).json()["message"],
        "Heartbeat not running"
    );
    assert_eq!(
        server.get("/api/v1/heartbeat/status").json()["running"],
        false
    );
}

#[test]
fn api_keys_guard_the_api_routes_only() {
    let server = TestServer::with(&docs(), |setup| {
        setup.server.api_keys = vec!["k1".into(), "k2".into()]
    });
    let missing = server.get("/api/v1/stats");
    assert_eq!(missing.status, 403);
    assert_eq!(missing.json(), json!({"detail": "Not authenticated"}));
    let wrong = server.call(
        "GET",
        "/api/v1/stats",
        &[("x-api-key", "nope")],
        Body::empty(),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json(), json!({"detail": "Invalid API key"}));
    assert_eq!(wrong.header("www-authenticate"), Some("ApiKey"));
    assert_eq!(
        server
            .call(
                "GET",
                "/api/v1/stats",
                &[("x-api-key", "k2")],
                Body::empty()
            )
            .status,
        200
    );
    // Root endpoints and KATO's API need no key.
    for path in [
        "/",
        "/health",
        "/metrics",
        "/status",
        "/openapi.json",
        "/docs",
        "/ui",
    ] {
        assert_eq!(server.get(path).status, 200, "{path}");
    }
}

#[test]
fn rate_limits_answer_429_with_headers() {
    let server = TestServer::with(&docs(), |setup| {
        setup.server.rate_limit_per_key = 5;
        setup.server.rate_limits = vec![("/api/v1/query".into(), 2)];
    });
    assert!(
        server
            .post("/api/v1/query", &json!({"query": "audio"}))
            .status
            == 200
    );
    let second = server.post("/api/v1/query", &json!({"query": "audio"}));
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-ratelimit-remaining"), Some("0"));
    let third = server.post("/api/v1/query", &json!({"query": "audio"}));
    assert_eq!(third.status, 429);
    assert_eq!(
        third.json(),
        json!({"error": "Rate limit exceeded: 2 per 1 minute"})
    );
    assert_eq!(third.header("x-ratelimit-limit"), Some("2"));
    assert!(
        third
            .header("x-ratelimit-reset")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 1_700_000_000
    );
    for _ in 0..3 {
        assert_eq!(server.get("/api/v1/stats").status, 200);
    }
    let over = server.get("/api/v1/stats");
    assert_eq!(over.status, 429);
    assert_eq!(
        over.json(),
        json!({"detail": "Rate limit exceeded. Limit: 5 requests per 60s"})
    );
    // Off by default.
    let open = TestServer::new(&docs());
    for _ in 0..50 {
        assert_eq!(open.get("/api/v1/stats").status, 200);
    }
}

#[test]
fn size_limits_answer_413_in_knowledgebeast_shape() {
    let server = TestServer::with(&docs(), |setup| {
        setup.server.max_request_size = 1000;
        setup.server.max_query_length = 50;
    });
    let big = json!({"query": "a".repeat(2000)}).to_string();
    let reply = server.call(
        "POST",
        "/api/v1/query",
        &[
            ("content-type", "application/json"),
            ("content-length", &big.len().to_string()),
        ],
        big.clone(),
    );
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json(),
        json!({"error": "RequestEntityTooLarge", "message": "Request body too large",
               "detail": "Maximum request size is 1000 bytes (0MB)", "status_code": 413})
    );
    // A body without a declared length is cut at the limit too.
    let stream = futures_body(big.into_bytes());
    let reply = server.call(
        "POST",
        "/api/v1/query",
        &[("content-type", "application/json")],
        stream,
    );
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(reply.json()["message"], "Request body too large");
    let long = format!("/api/v1/stats?{}", "x".repeat(60));
    let reply = server.get(&long);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["message"], "Query string too long");
}

fn futures_body(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(100).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

#[test]
fn middleware_headers_cors_and_gzip() {
    let server = TestServer::new(&docs());
    let reply = server.call(
        "GET",
        "/api/v1/health",
        &[("x-request-id", "abc-123")],
        Body::empty(),
    );
    assert_eq!(reply.header("x-request-id"), Some("abc-123"));
    assert_eq!(reply.header("x-trace-id"), Some("abc-123"));
    let process = reply.header("x-process-time").unwrap();
    assert!(
        process.parse::<f64>().is_ok() && process.split('.').nth(1).unwrap().len() == 4,
        "{process}"
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert!(
        reply
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(reply.header("strict-transport-security").is_none());
    let generated = server.get("/health");
    assert_eq!(generated.header("x-request-id").unwrap().len(), 36);
    let https = server.call(
        "GET",
        "/health",
        &[("x-forwarded-proto", "https")],
        Body::empty(),
    );
    assert!(https.header("strict-transport-security").is_some());

    // CORS: a configured origin is allowed, another is not.
    let preflight = server.call(
        "OPTIONS",
        "/api/v1/query",
        &[
            ("origin", "http://localhost:3000"),
            ("access-control-request-method", "POST"),
        ],
        Body::empty(),
    );
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    let foreign = server.call(
        "GET",
        "/api/v1/health",
        &[("origin", "http://evil.example")],
        Body::empty(),
    );
    assert!(foreign.header("access-control-allow-origin").is_none());

    // gzip in both directions.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(json!({"query": "audio"}).to_string().as_bytes())
        .unwrap();
    let compressed = encoder.finish().unwrap();
    let reply = server.call(
        "POST",
        "/api/v1/query",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("accept-encoding", "gzip"),
        ],
        compressed,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&reply.body[..]),
        &mut text,
    )
    .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["count"], 3);
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let server = TestServer::new(&docs());
    let extra = axum::Router::new().route(
        "/api/v1/test-panic",
        axum::routing::get(|| async {
            if true {
                panic!("boom");
            }
            "unreachable"
        }),
    );
    let router = mneme_server::http::router_with(server.state.clone(), extra);
    let call = |uri: &str| {
        let request = axum::http::Request::builder()
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let router = router.clone();
        server.runtime.block_on(async move {
            use tower::ServiceExt;
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        })
    };
    // The 500 is logged with its request id (captured from this thread's log).
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = {
        let log = log.clone();
        move || LogWriter(log.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    let (status, body) =
        tracing::subscriber::with_default(subscriber, || call("/api/v1/test-panic"));
    assert_eq!(status, 500);
    assert_eq!(body["message"], "An unexpected error occurred");
    assert_eq!(body["status_code"], 500);
    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("request_id=") && log.contains("GET /api/v1/test-panic answered 500"),
        "{log}"
    );
    assert!(log.contains("An unexpected error occurred"), "{log}");
    assert_eq!(call("/api/v1/health").0, 200);
}

#[test]
fn root_health_and_metrics_answer_both_kinds_of_client() {
    let server = TestServer::new(&docs());
    let root = server.get("/").json();
    for key in [
        "name",
        "version",
        "web_ui",
        "docs",
        "openapi",
        "api_v1",
        "api_v2",
        "timestamp",
    ] {
        assert!(!root[key].is_null(), "KnowledgeBeast's {key}");
    }
    for key in [
        "service",
        "description",
        "status",
        "uptime_seconds",
        "architecture",
        "session_support",
    ] {
        assert!(!root[key].is_null(), "KATO's {key}");
    }
    let health = server.get("/health").json();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["components"]["knowledgebase"]["status"], "up");
    assert_eq!(health["kb_stats"]["total_documents"], 4);
    assert_eq!(health["processor_status"], "healthy");
    assert!(health["active_sessions"].is_u64() && health["issues"].is_array());

    query(&server, json!({"query": "audio"}));
    let text = server.call(
        "GET",
        "/metrics",
        &[("accept", "text/plain")],
        Body::empty(),
    );
    assert!(
        text.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let body = text.text();
    for needle in [
        "mneme_http_requests_total{method=\"POST\",route=\"/api/v1/query\",status=\"200\"} 1",
        "mneme_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/query\",status=\"200\",le=\"+Inf\"} 1",
        "kb_query_duration_seconds_count{operation=\"query\",status=\"success\"} 1",
        "kb_cache_misses_total 1",
        "kb_documents_total 4",
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
    // A sample taken while every core was busy: KATO's resources are percentages (0..100) of
    // the machine, CPU included.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let busy: Vec<_> = (0..cores)
        .map(|_| {
            std::thread::spawn(move || {
                let mut x = 0u64;
                while std::time::Instant::now() < until {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
                }
            })
        })
        .collect();
    for thread in busy {
        thread.join().unwrap();
    }
    let mut previous = (0, std::time::Instant::now());
    mneme_server::http::sample_now(&server.state, &mut previous);
    let kato = server.get("/metrics").json();
    for key in [
        "timestamp",
        "sessions",
        "performance",
        "resources",
        "databases",
        "uptime_seconds",
        "active_sessions",
    ] {
        assert!(!kato[key].is_null(), "KATO's {key}");
    }
    for resource in ["cpu_percent", "memory_percent", "disk_percent"] {
        let value = kato["resources"][resource].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&value), "{resource} = {value}");
    }
    let openapi = server.get("/openapi.json").json();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(openapi["paths"]["/api/v1/query"]["post"].is_object());
    assert!(server.get("/docs").text().contains("/api/v2/projects"));
    assert!(server.get("/ui").text().contains("/ui/app.js"));
    assert!(server.get("/ui/app.js").text().contains("/api/v1/query"));
}

#[test]
fn the_api_works_over_a_real_socket_and_shuts_down_gracefully() {
    let server = TestServer::new(&docs());
    // A route that tells the test it has started, then takes a while.
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let entered_tx = std::sync::Arc::new(std::sync::Mutex::new(entered_tx));
    let extra = axum::Router::new().route(
        "/api/v1/test-slow",
        axum::routing::get(move || {
            let _ = entered_tx.lock().unwrap().send(());
            async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                "finished"
            }
        }),
    );
    let mut spawned =
        server.spawn_app(mneme_server::http::router_with(server.state.clone(), extra));
    let reply = http(
        spawned.addr,
        "POST",
        "/api/v1/query",
        &[("content-type", "application/json")],
        br#"{"query":"juce"}"#,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["results"][0]["doc_id"],
        "knowledge-base/audio/juce.md"
    );
    assert!(reply.header("x-request-id").is_some());
    let addr = spawned.addr;
    let slow = std::thread::spawn(move || http(addr, "GET", "/api/v1/test-slow", &[], b""));
    entered_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    spawned.shutdown();
    let finished = slow.join().unwrap();
    assert_eq!(finished.status, 200);
    assert_eq!(
        finished.text(),
        "finished",
        "the request in flight completed after the signal"
    );
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed"
    );
}

/// A log destination shared with the test.
struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The metric families of a Prometheus text exposition: name → type.
fn metric_types(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| {
            let (name, kind) = rest.split_once(' ')?;
            Some((name.to_owned(), kind.to_owned()))
        })
        .collect()
}

/// The metric names a PromQL expression reads (those of mneme's and the originals' families).
fn promql_metrics(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| {
            ["kato_", "knowledgebeast_", "mneme_", "process_", "kb_"]
                .iter()
                .any(|prefix| token.starts_with(prefix))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_grafana_dashboard_reads_only_metrics_mneme_exports() {
    let server = TestServer::new(&docs());
    // One of each kind of work the dashboard watches: a cache miss and a hit, a session that
    // observes, learns and predicts.
    query(&server, json!({"query": "audio"}));
    query(&server, json!({"query": "audio"}));
    let id = server.post("/sessions", &json!({"node_id": "dash"})).json()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for symbols in [["a"], ["b"]] {
        let reply = server.post(
            &format!("/sessions/{id}/observe"),
            &json!({"strings": symbols}),
        );
        assert_eq!(reply.status, 200);
    }
    assert_eq!(
        server
            .post(&format!("/sessions/{id}/learn"), &json!({}))
            .status,
        200
    );
    assert_eq!(
        server.get(&format!("/sessions/{id}/predictions")).status,
        200
    );

    let scraped = server.get("/metrics-prom");
    assert!(
        scraped
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = scraped.text();
    let types = metric_types(&text);
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/grafana/mneme.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in promql_metrics(expr) {
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        let base = name.strip_suffix(suffix)?;
                        (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
                    })
                    .unwrap_or(&name);
                let kind = types.get(family).unwrap_or_else(|| {
                    panic!(
                        "panel {:?} reads {name}, which /metrics does not export",
                        panel["title"]
                    )
                });
                if expr.contains(&format!("rate({name}")) && kind != "histogram" {
                    // rate() of a gauge is the guide's pattern-growth query; every other rate is
                    // of a counter.
                    assert!(
                        kind == "counter" || family == "kato_patterns_total",
                        "{name} is a {kind}"
                    );
                }
                let sampled = text.lines().any(|line| {
                    !line.starts_with('#')
                        && line.starts_with(name.as_str())
                        && line[name.len()..].starts_with([' ', '{'])
                });
                assert!(sampled, "{name} has no sample after the work above\n{text}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "only {checked} metric references found");
    for needle in [
        "knowledgebeast_queries_total 2",
        "knowledgebeast_cache_hits_total 1",
        "knowledgebeast_cache_misses_total 1",
        "knowledgebeast_documents_total 4",
        "knowledgebeast_query_duration_seconds_count 2",
        "kato_observation_duration_seconds_count 2",
        "kato_observation_duration_seconds_bucket{le=\"0.001\"}",
        "kato_prediction_duration_seconds_count 1",
        "kato_prediction_duration_seconds_bucket{le=\"2\"} 1",
        "kato_patterns_total{processor_id=\"dash_kato\"} 1",
        "kato_requests_total{method=\"POST\",endpoint=\"/sessions/{session_id}/observe\",status=\"200\"} 2",
        "kato_request_duration_seconds_bucket{endpoint=\"/sessions/{session_id}/learn\",method=\"POST\",le=\"0.005\"}",
        "kato_request_duration_seconds_bucket{endpoint=\"/sessions/{session_id}/learn\",method=\"POST\",le=\"5\"} 1",
        "# TYPE process_cpu_seconds_total counter",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // The KnowledgeBeast query is not a KATO route.
    assert!(!text.contains("endpoint=\"/api/v1/query\""));
}
