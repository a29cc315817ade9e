//! KATO's REST API, black-box, written from ../shared/specs/kato.md §2: every endpoint, the
//! spec's live examples literally, error bodies, headers, the websocket, TTL expiry, and many
//! sessions observing and learning on one node at once.

use crate::support;

use std::net::SocketAddr;

use axum::body::Body;
use serde_json::{Value, json};
use support::{TestServer, http};

fn session(server: &TestServer, body: Value) -> String {
    let reply = server.post("/sessions", &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["session_id"].as_str().unwrap().to_owned()
}

/// Observes `events` one by one on session `id`.
fn observe_all(server: &TestServer, id: &str, events: &[&[&str]]) {
    for symbols in events {
        let reply = server.post(
            &format!("/sessions/{id}/observe"),
            &json!({ "strings": symbols }),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
}

#[test]
fn sessions_lifecycle_matches_the_spec() {
    let server = TestServer::new(&[]);
    let reply = server.post("/sessions", &json!({"node_id": "probe_node"}));
    assert_eq!(reply.status, 200);
    let created = reply.json();
    let id = created["session_id"].as_str().unwrap();
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts[0], "session");
    assert_eq!(parts[1].len(), 32);
    assert!(parts[2].parse::<u64>().unwrap() > 1_700_000_000_000);
    assert_eq!(created["node_id"], "probe_node");
    assert_eq!(created["ttl_seconds"], 3600);
    assert_eq!(created["metadata"], json!({}));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        created["session_config"],
        json!({"max_pattern_length":0,"persistence":5,"recall_threshold":0.1,"indexer_type":"VI",
               "max_predictions":100,"sort_symbols":true,"process_predictions":true,"use_token_matching":true,
               "stm_mode":"CLEAR","rank_sort_algo":"potential","filter_pipeline":[],"length_min_ratio":0.5,
               "length_max_ratio":2.0,"jaccard_threshold":0.3,"jaccard_min_overlap":2,"minhash_threshold":0.7,
               "minhash_bands":20,"minhash_rows":5,"minhash_num_hashes":100,"bloom_false_positive_rate":0.01,
               "max_candidates_per_stage":100000,"enable_filter_metrics":true})
    );
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "session_id",
            "node_id",
            "created_at",
            "expires_at",
            "ttl_seconds",
            "metadata",
            "session_config"
        ]
    );

    assert_eq!(
        server.get("/sessions/count").json(),
        json!({"active_session_count": 1})
    );
    assert_eq!(
        server.get(&format!("/sessions/{id}/exists")).json(),
        json!({"exists": true, "expired": false, "session_id": id})
    );
    assert_eq!(
        server.get("/sessions/nope/exists").json(),
        json!({"exists": false, "expired": false, "session_id": "nope"})
    );
    let fetched = server.get(&format!("/sessions/{id}")).json();
    assert!(fetched["ttl_seconds"].as_u64().unwrap() <= 3600);
    let extended = server.post(
        &format!("/sessions/{id}/extend?ttl_seconds=120"),
        &json!({}),
    );
    assert_eq!(
        extended.json(),
        json!({"status": "extended", "session_id": id, "ttl_seconds": 120})
    );
    let config = server.get(&format!("/sessions/{id}/config")).json();
    assert_eq!(config["session_id"], id);
    assert_eq!(config["config"]["recall_threshold"], 0.1);
    let updated = server.post(
        &format!("/sessions/{id}/config"),
        &json!({"config": {"recall_threshold": 0.5}}),
    );
    assert_eq!(
        updated.json(),
        json!({"status": "okay", "message": "Configuration updated", "session_id": id})
    );
    let invalid = server.post(
        &format!("/sessions/{id}/config"),
        &json!({"config": {"recall_threshold": 2}}),
    );
    assert_eq!(invalid.status, 400);
    assert_eq!(
        invalid.json(),
        json!({"detail": {"error": "Configuration validation failed",
                          "validation_errors": {"recall_threshold": "Must be a number between 0.0 and 1.0"}}})
    );
    let deleted = server.call("DELETE", &format!("/sessions/{id}"), &[], Body::empty());
    assert_eq!(
        deleted.json(),
        json!({"status": "deleted", "session_id": id})
    );
    let again = server.call("DELETE", &format!("/sessions/{id}"), &[], Body::empty());
    assert_eq!(again.status, 404);
    assert_eq!(
        again.json(),
        json!({"error": {"code": "SESSION_NOT_FOUND", "message": format!("Session {id} not found or expired"), "session_id": id}})
    );
    let gone = server.get(&format!("/sessions/{id}"));
    assert_eq!(
        gone.json(),
        json!({"detail": format!("Session {id} not found or expired")})
    );
}

#[test]
fn observe_learn_predict_and_the_data_endpoints() {
    let server = TestServer::new(&[]);
    let id = session(
        &server,
        json!({"node_id": "probe2_8fe426", "config": {"max_pattern_length": 2}}),
    );
    let first = server.post(
        &format!("/sessions/{id}/observe"),
        &json!({"strings": ["a"], "emotives": {"joy": 1.0}, "metadata": {"k": "v"}}),
    );
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-session-id"), Some(id.as_str()));
    let first = first.json();
    assert_eq!(first["processor_id"], "probe2_8fe426");
    assert_eq!(first["auto_learned_pattern"], Value::Null);
    assert!(first["unique_id"].as_str().unwrap().starts_with("obs-"));
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "status",
            "session_id",
            "processor_id",
            "stm_length",
            "time",
            "unique_id",
            "auto_learned_pattern"
        ]
    );
    // The spec's live check: auto-learn at max_pattern_length 2.
    let second = server
        .post(
            &format!("/sessions/{id}/observe"),
            &json!({"strings": ["b"]}),
        )
        .json();
    assert_eq!(
        second["auto_learned_pattern"],
        "PTRN|76d7efca2e96cb5eeddf4e06ac96a0f424630135"
    );
    let pattern = server
        .get("/pattern/PTRN%7C76d7efca2e96cb5eeddf4e06ac96a0f424630135?node_id=probe2_8fe426")
        .json();
    assert_eq!(pattern["node_id"], "probe2_8fe426_kato");
    assert_eq!(pattern["pattern"]["status"], "okay");
    assert_eq!(pattern["pattern"]["pattern"]["emotives"], json!([]));
    assert_eq!(pattern["pattern"]["pattern"]["metadata"], json!({}));
    let missing = server
        .get("/pattern/PTRN%7Cdeadbeef?node_id=probe2_8fe426")
        .json();
    assert_eq!(
        missing["pattern"],
        json!({"status": "error", "message": "Pattern PTRN|deadbeef not found"})
    );

    let other = session(&server, json!({"node_id": "seq_node"}));
    let sequence = server.post(
        &format!("/sessions/{other}/observe-sequence"),
        &json!({"observations": [{"strings": ["x"]}, {"strings": ["y"], "unique_id": "mine"}, {"strings": ["z"]}], "learn_at_end": true}),
    );
    assert_eq!(sequence.status, 200, "{}", sequence.text());
    let sequence = sequence.json();
    assert_eq!(sequence["status"], "completed");
    assert_eq!(sequence["observations_processed"], 3);
    assert_eq!(sequence["results"][1]["unique_id"], "mine");
    assert!(
        sequence["results"][0]["unique_id"]
            .as_str()
            .unwrap()
            .starts_with("seq-obs-")
    );
    let learned = sequence["final_learned_pattern"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(learned.starts_with("PTRN|"));
    assert_eq!(
        sequence["final_stm_length"], 0,
        "learn_at_end empties the STM"
    );

    for symbols in [["x"], ["y"]] {
        server.post(
            &format!("/sessions/{other}/observe"),
            &json!({"strings": symbols}),
        );
    }
    let stm = server.get(&format!("/sessions/{other}/stm")).json();
    assert_eq!(
        stm,
        json!({"stm": [["x"], ["y"]], "session_id": other, "length": 2})
    );
    let predictions = server
        .get(&format!("/sessions/{other}/predictions?unique_id=ignored"))
        .json();
    assert_eq!(predictions["count"], 1);
    assert_eq!(
        predictions["predictions"][0]["name"],
        learned.trim_start_matches("PTRN|")
    );
    assert_eq!(predictions["predictions"][0]["future"], json!([["z"]]));
    assert_eq!(predictions["processor_id"], Value::Null);
    // A read asking for a computed answer (mneme's `Cache-Control: no-cache`) gets the same one.
    let computed = server.call(
        "GET",
        &format!("/sessions/{other}/predictions"),
        &[("cache-control", "no-cache")],
        Body::empty(),
    );
    assert_eq!(computed.status, 200);
    assert_eq!(computed.json(), predictions);
    let cognition = server
        .get(&format!("/sessions/{other}/cognition-data"))
        .json();
    assert_eq!(
        cognition["cognition_data"]["short_term_memory"],
        json!([["x"], ["y"]])
    );
    let percept = server
        .get(&format!("/sessions/{other}/percept-data"))
        .json();
    assert_eq!(percept["percept_data"]["strings"], json!(["y"]));
    let stats = server.get("/symbols/stats?node_id=seq_node").json();
    assert_eq!(stats["symbols"]["x"]["frequency"], 1);
    assert_eq!(stats["node_id"], "seq_node_kato");
    assert!(server.get("/symbols/affinity?node_id=seq_node").json()["affinities"].is_object());
    assert_eq!(
        server.get("/symbols/x/affinity?node_id=seq_node").json()["symbol"],
        "x"
    );

    let learn = server
        .post(&format!("/sessions/{other}/learn"), &json!({}))
        .json();
    assert_eq!(learn["status"], "learned");
    assert_eq!(
        learn["message"],
        format!(
            "Learned pattern {} from 0 events",
            learn["pattern_name"].as_str().unwrap()
        )
    );
    let empty = server.post(&format!("/sessions/{other}/learn"), &json!({}));
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.json(),
        json!({"detail": "Cannot learn from empty STM"})
    );
    let finalized = server
        .post(&format!("/sessions/{other}/finalize-training"), &json!({}))
        .json();
    assert_eq!(finalized["status"], "completed");
    assert_eq!(finalized["patterns_processed"], 2);
    assert_eq!(
        server
            .post(&format!("/sessions/{other}/clear-stm"), &json!({}))
            .json(),
        json!({"status": "cleared", "session_id": other})
    );
    let all = server
        .post(&format!("/sessions/{other}/clear-all"), &json!({}))
        .json();
    assert_eq!(
        all,
        json!({"status": "cleared", "session_id": other, "scope": "all"})
    );
    assert_eq!(
        server.get("/symbols/stats?node_id=seq_node").json()["symbols"],
        json!({})
    );
}

#[test]
fn bad_input_gets_the_spec_errors_and_changes_nothing() {
    let server = TestServer::new(&[]);
    let id = session(&server, json!({"node_id": "bad_input"}));
    let observe = |body: &str| {
        server.call(
            "POST",
            &format!("/sessions/{id}/observe"),
            &[("content-type", "application/json")],
            body.to_owned(),
        )
    };

    let malformed = observe("{\"strings\": [");
    assert_eq!(malformed.status, 422);
    assert_eq!(malformed.json()["detail"][0]["type"], "json_invalid");
    for body in [
        r#"{"strings": [null]}"#,
        r#"{"vectors": "nope"}"#,
        r#"{"emotives": [1, 2]}"#,
        r#"{"emotives": {"joy": NaN}}"#,
        r#"{"emotives": {"joy": Infinity}}"#,
        r#"{"emotives": {"joy": 1e999}}"#,
    ] {
        let reply = observe(body);
        assert_eq!(reply.status, 422, "{body}: {}", reply.text());
        assert!(reply.json()["detail"].is_array(), "{body}");
    }
    let missing_node = server.post("/sessions", &json!({"metadata": {}}));
    assert_eq!(missing_node.status, 422);
    assert_eq!(
        missing_node.json()["detail"][0]["loc"],
        json!(["body", "node_id"])
    );
    let bad_ttl = server.post("/sessions", &json!({"node_id": "n", "ttl_seconds": "soon"}));
    assert_eq!(bad_ttl.status, 422);

    // A vector of another dimension: a clear 400, nothing stored.
    assert_eq!(observe(r#"{"vectors": [[1.0, 2.0, 3.0]]}"#).status, 200);
    let wrong = observe(r#"{"vectors": [[1.0, 2.0]]}"#);
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    let mixed = observe(r#"{"vectors": [[1.0, 2.0, 3.0], [1.0]]}"#);
    assert_eq!(mixed.status, 400);
    assert_eq!(
        server.get(&format!("/sessions/{id}/stm")).json()["length"],
        1
    );

    // Huge input is accepted up to the body limit and does not hurt the node.
    let long_symbol = "s".repeat(1 << 20);
    assert_eq!(
        observe(&json!({"strings": [long_symbol]}).to_string()).status,
        200
    );
    let wide: Vec<f64> = (0..50_000).map(f64::from).collect();
    let other = session(&server, json!({"node_id": "wide"}));
    let reply = server.post(
        &format!("/sessions/{other}/observe"),
        &json!({"vectors": [wide]}),
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        server.get(&format!("/sessions/{id}/stm")).json()["length"],
        2
    );

    // Unknown sessions and routes.
    let unknown = server.post("/sessions/missing/observe", &json!({"strings": ["a"]}));
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "SESSION_NOT_FOUND");
    assert_eq!(
        server.get("/sessions/test/whatever").json()["error"]["session_id"],
        "test"
    );
    let route = server.get("/no/such/route");
    assert_eq!(route.status, 404);
    assert_eq!(route.json(), json!({"detail": "Not Found"}));
}

#[test]
fn monitoring_endpoints_and_trace_ids() {
    let server = TestServer::new(&[]);
    session(&server, json!({"node_id": "monitor"}));
    let reply = server.call(
        "GET",
        "/status",
        &[("x-trace-id", "trace-42")],
        Body::empty(),
    );
    assert_eq!(reply.header("x-trace-id"), Some("trace-42"));
    let status = reply.json();
    assert_eq!(status["status"], "healthy");
    assert_eq!(status["sessions"]["active_sessions"], 1);
    assert_eq!(status["processors"]["total_processors"], 1);
    assert!(server.get("/health").header("x-trace-id").is_some());

    // One sample, then the series endpoints answer.
    let mut previous = (0, std::time::Instant::now());
    mneme_server::http::sample_now(&server.state, &mut previous);
    let stats = server.get("/stats?minutes=5").json();
    // An integer, as the client sent it (FastAPI's `minutes: int`).
    assert_eq!(stats["time_range_minutes"], json!(5));
    assert_eq!(stats["time_series"]["active_sessions"][0]["value"], 1.0);
    for key in ["sessions", "performance", "resources", "databases"] {
        assert!(stats["summary"][key].is_object(), "{key}");
    }
    // KATO's own `test_stats_endpoint_default`, assertion by assertion.
    let data = server.get("/stats").json();
    for key in ["time_range_minutes", "timestamp", "processor_manager"] {
        assert!(data.get(key).is_some(), "{key}");
    }
    assert_eq!(data["time_range_minutes"], json!(10));
    for metric in [
        "cpu_percent",
        "memory_percent",
        "requests_total",
        "response_time",
    ] {
        assert!(
            data["time_series"][metric].is_array(),
            "Missing time series metric: {metric}"
        );
    }
    for section in ["sessions", "performance", "resources", "databases"] {
        assert!(
            data["summary"].get(section).is_some(),
            "Missing summary section: {section}"
        );
    }
    // KATO's newer names read the same samples; points carry KATO's (empty) labels.
    assert_eq!(
        data["time_series"]["kato_cpu_usage_percent"][0]["value"],
        data["time_series"]["cpu_percent"][0]["value"]
    );
    assert_eq!(data["time_series"]["kato_sessions_active"][0]["value"], 1.0);
    assert_eq!(
        data["time_series"]["active_sessions"][0]["labels"],
        json!({})
    );
    assert!(data["time_series"]["load_average_1m"][0]["value"].is_f64());
    assert_eq!(data["error"], Value::Null);
    let current = &data["current_status"];
    assert_eq!(current["status"], "healthy");
    assert_eq!(current["issues"], json!([]));
    assert!(current["metrics"]["cpu_percent"].is_f64());
    assert!(current["metrics"]["memory_percent"].is_f64());
    assert!(is_utc_iso(&current["timestamp"]), "{current}");
    let response_time = server.get("/metrics/response_time").json();
    assert_eq!(response_time["metric_name"], "response_time");
    assert_eq!(response_time["statistics"]["count"], 1);
    assert_eq!(
        server.get("/metrics/kato_memory_usage_percent").json()["statistics"]["count"],
        1
    );
    let metric = server.get("/metrics/active_sessions").json();
    assert_eq!(metric["metric_name"], "active_sessions");
    assert_eq!(metric["time_range_minutes"], json!(10));
    assert_eq!(
        server.get("/metrics/active_sessions?minutes=3").json()["time_range_minutes"],
        json!(3)
    );
    assert_eq!(metric["statistics"]["count"], 1);
    let none = server.get("/metrics/no_such_metric?minutes=10");
    assert_eq!(none.status, 404);
    assert_eq!(
        none.json(),
        json!({"detail": "No data available for metric 'no_such_metric' in the last 10 minutes"})
    );
    assert_eq!(server.get("/stats?minutes=abc").status, 422);
    let percept = server.get("/percept-data?node_id=monitor").json();
    assert_eq!(percept["node_id"], "monitor_kato");
    assert!(percept["warning"].is_string());
}

#[test]
fn katos_operational_endpoints_answer_in_its_shapes() {
    let server = TestServer::new(&[]);
    // KATO's middleware counts the /concurrency request itself.
    let concurrency = server.get("/concurrency").json();
    assert_eq!(concurrency["status"], "healthy");
    assert!(concurrency["current"]["concurrent_requests"].as_u64() >= Some(1));
    assert!(concurrency["peak"]["concurrent_requests"].as_u64() >= Some(1));
    assert_eq!(
        concurrency["limits"],
        json!({"per_worker": 100, "warning_threshold": 80, "critical_threshold": 95, "total_capacity": 100})
    );
    assert_eq!(concurrency["configuration"]["max_requests"], "unlimited");
    assert_eq!(concurrency["recommendations"][0]["level"], "info");
    assert!(is_utc_iso(&concurrency["timestamp"]));

    let cache = server.get("/cache/stats").json();
    assert_eq!(cache["cache_performance"]["status"], "disabled");
    assert!(
        cache["cache_performance"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Cache manager not available")
    );
    assert_eq!(cache["cache_health"], json!({"status": "disabled"}));

    // `session_id` is a query parameter; the answer's keys are KATO's, nulls included.
    let invalidated = server.post("/cache/invalidate?session_id=abc", &json!({}));
    assert_eq!(invalidated.status, 200);
    let invalidated = invalidated.json();
    let mut keys: Vec<&str> = invalidated
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "patterns_invalidated",
            "reason",
            "session_id",
            "status",
            "symbols_invalidated",
            "timestamp"
        ]
    );
    assert_eq!(invalidated["status"], "disabled");
    assert_eq!(invalidated["patterns_invalidated"], Value::Null);
    assert_eq!(server.get("/cache/invalidate").status, 405);

    session(&server, json!({"node_id": "ops"}));
    let stm = server.get("/distributed-stm/stats").json();
    assert_eq!(stm["status"], "disabled");
    assert_eq!(stm["distributed_stm_enabled"], false);
    assert_eq!(stm["processor_info"]["total_active_processors"], 1);
    assert_eq!(stm["error"], Value::Null);

    let pools = server.get("/connection-pools").json();
    assert_eq!(pools["status"], "healthy");
    assert_eq!(pools["health"]["embedded"]["healthy"], true);
    assert_eq!(pools["health"]["embedded"]["error_count"], 0);
    assert_eq!(pools["pool_statistics"]["embedded"]["status"], "connected");
    assert_eq!(pools["error"], Value::Null);
}

/// KATO's `datetime.isoformat()` of a UTC time: `2025-10-25T12:34:56.123456+00:00`.
fn is_utc_iso(value: &Value) -> bool {
    let text = value.as_str().unwrap_or("");
    let digits = |range: std::ops::Range<usize>| {
        text.get(range)
            .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
    };
    text.len() == 32
        && text.ends_with("+00:00")
        && &text[10..11] == "T"
        && &text[19..20] == "."
        && digits(20..26)
}

#[test]
fn status_lists_each_node_as_katos_processor_manager_does() {
    // Another SERVICE_NAME, and a node id whose characters the kb_id replaces: neither can be
    // recovered from the kb_id.
    let server = TestServer::with(&[], |setup| setup.defaults.service_name = "kato-eu".into());
    let id = session(&server, json!({"node_id": "probe.2-x"}));
    let status = server.get("/status").json();
    assert_eq!(
        status["sessions"].get("redis_url"),
        Some(&Value::Null),
        "{status}"
    );
    let processors = &status["processors"]["processors"];
    assert_eq!(processors.as_array().unwrap().len(), 1, "{status}");
    let first = &processors[0];
    assert_eq!(first["processor_id"], "probe_2_x_kato_eu");
    assert_eq!(first["node_id"], "probe.2-x");
    assert_eq!(first["access_count"], 1);
    assert!(is_utc_iso(&first["created_at"]), "{first}");
    assert_eq!(first["created_at"], first["last_accessed"]);
    let idle = first["idle_seconds"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&idle), "{first}");

    // A request on a session of the node and a node-level read are uses of it.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let observed = server.post(
        &format!("/sessions/{id}/observe"),
        &json!({"strings": ["a"]}),
    );
    assert_eq!(observed.status, 200);
    assert_eq!(server.get("/symbols/stats?node_id=probe.2-x").status, 200);
    let status = server.get("/status").json();
    let used = &status["processors"]["processors"][0];
    assert_eq!(used["access_count"], 3, "{used}");
    assert_eq!(used["created_at"], first["created_at"]);
    assert!(is_utc_iso(&used["last_accessed"]), "{used}");
    assert!(
        used["last_accessed"].as_str() > first["last_accessed"].as_str(),
        "{used}"
    );
    assert!(used["idle_seconds"].as_f64().unwrap() < idle + 60.0);

    // The same list in /metrics and /stats.
    for path in ["/metrics", "/stats"] {
        let listed = &server.get(path).json()["processor_manager"]["processors"][0];
        for key in ["processor_id", "node_id", "created_at", "access_count"] {
            assert_eq!(listed[key], used[key], "{path} {key}");
        }
        assert!(listed["idle_seconds"].is_f64(), "{path}");
    }
}

#[test]
fn a_kato_only_deployment_without_a_knowledge_dir_is_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = support::setup(dir.path());
    setup.kb.knowledge_dirs = vec![dir.path().join("no-knowledge-here")];
    let server = TestServer::open(dir, setup, false);
    let health = server.get("/health").json();
    // KATO's own test requires "healthy"; the knowledge dir is KnowledgeBeast's API's concern.
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["issues"], json!([]), "{health}");
    assert_eq!(server.get("/api/v1/health").json()["status"], "degraded");
}

#[test]
fn an_expired_session_answers_as_unknown() {
    let server = TestServer::new(&[]);
    let id = session(&server, json!({"node_id": "ttl", "ttl_seconds": 1}));
    assert_eq!(
        server
            .post(
                &format!("/sessions/{id}/observe"),
                &json!({"strings": ["a"]})
            )
            .status,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let reply = server.post(
        &format!("/sessions/{id}/observe"),
        &json!({"strings": ["a"]}),
    );
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "SESSION_NOT_FOUND");
    assert_eq!(
        server.get("/sessions/count").json()["active_session_count"],
        0
    );
}

fn ws_read(socket: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Value {
    loop {
        match socket.read().unwrap() {
            tungstenite::Message::Text(text) => {
                return serde_json::from_str(text.as_str())
                    .unwrap_or(Value::String(text.as_str().to_owned()));
            }
            _ => continue,
        }
    }
}

#[test]
fn the_websocket_sends_a_snapshot_session_events_and_pong() {
    let server = TestServer::new(&[]);
    let spawned = server.spawn();
    let stream = std::net::TcpStream::connect(spawned.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let (mut socket, _) =
        tungstenite::client(format!("ws://{}/ws/events", spawned.addr), stream).unwrap();
    let snapshot = ws_read(&mut socket);
    assert_eq!(snapshot["event_type"], "state.snapshot");
    // Python's `datetime.now().isoformat()`: local time, microseconds, no zone.
    let stamp = snapshot["timestamp"].as_str().unwrap();
    assert_eq!(stamp.len(), 26, "{stamp}");
    assert_eq!((&stamp[10..11], &stamp[19..20]), ("T", "."), "{stamp}");
    assert!(stamp[20..].bytes().all(|b| b.is_ascii_digit()), "{stamp}");
    assert_eq!(
        snapshot["data"],
        json!({"active_sessions": 0, "system_status": "healthy"})
    );
    socket
        .send(tungstenite::Message::Text("ping".into()))
        .unwrap();
    assert_eq!(ws_read(&mut socket), Value::String("pong".into()));

    let created = http(
        spawned.addr,
        "POST",
        "/sessions",
        &[("content-type", "application/json")],
        br#"{"node_id":"ws_node"}"#,
    )
    .json();
    let id = created["session_id"].as_str().unwrap();
    let event = ws_read(&mut socket);
    assert_eq!(event["event_type"], "session.created");
    // The events keep their UTC stamps.
    assert!(
        event["timestamp"].as_str().unwrap().ends_with('Z'),
        "{event}"
    );
    assert_eq!(event["data"]["session_id"], id);
    assert_eq!(event["data"]["node_id"], "ws_node");
    http(spawned.addr, "DELETE", &format!("/sessions/{id}"), &[], b"");
    let event = ws_read(&mut socket);
    assert_eq!(event["event_type"], "session.destroyed");
    assert_eq!(event["data"]["reason"], "explicit_delete");
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> Value {
    let reply = http(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    reply.json()
}

#[test]
fn many_sessions_observe_and_learn_on_one_node_at_once() {
    let server = TestServer::new(&[]);
    let spawned = server.spawn();
    let addr = spawned.addr;
    const SESSIONS: usize = 12;
    const ROUNDS: usize = 15;
    let workers: Vec<_> = (0..SESSIONS)
        .map(|s| {
            std::thread::spawn(move || {
                let id = post(addr, "/sessions", &json!({"node_id": "crowd"}))["session_id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let mut names = Vec::new();
                for r in 0..ROUNDS {
                    // Everyone learns the shared pattern [start] [mid] [end], and one of its own.
                    for symbol in ["start", "mid", "end"] {
                        post(
                            addr,
                            &format!("/sessions/{id}/observe"),
                            &json!({"strings": [symbol]}),
                        );
                    }
                    names.push(
                        post(addr, &format!("/sessions/{id}/learn"), &json!({}))["pattern_name"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    );
                    for symbol in [format!("own{s}"), format!("round{r}")] {
                        post(
                            addr,
                            &format!("/sessions/{id}/observe"),
                            &json!({"strings": [symbol]}),
                        );
                    }
                    post(addr, &format!("/sessions/{id}/learn"), &json!({}));
                }
                names
            })
        })
        .collect();
    let mut shared = std::collections::BTreeSet::new();
    for worker in workers {
        shared.extend(worker.join().unwrap());
    }
    assert_eq!(
        shared.len(),
        1,
        "every session learned the same pattern name"
    );
    let name = shared.into_iter().next().unwrap();
    let pattern = server
        .get(&format!(
            "/pattern/{}?node_id=crowd",
            name.replace('|', "%7C")
        ))
        .json();
    assert_eq!(
        pattern["pattern"]["pattern"]["frequency"],
        SESSIONS * ROUNDS,
        "no learn was lost"
    );
    let stats = server.get("/symbols/stats?node_id=crowd").json();
    assert_eq!(stats["symbols"]["start"]["frequency"], SESSIONS * ROUNDS);
    assert_eq!(stats["symbols"]["own0"]["frequency"], ROUNDS);
    assert_eq!(stats["symbols"]["round0"]["frequency"], SESSIONS);
}

#[test]
fn concurrent_observes_on_one_session_never_interleave_badly() {
    let server = TestServer::new(&[]);
    let spawned = server.spawn();
    let addr = spawned.addr;
    let id = post(addr, "/sessions", &json!({"node_id": "one"}))["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let id = id.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let event = json!({"strings": [format!("t{t}a{i:02}"), format!("t{t}b{i:02}")], "emotives": {"e": t as f64}});
                    post(addr, &format!("/sessions/{id}/observe"), &event);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let stm = server.get(&format!("/sessions/{id}/stm")).json();
    assert_eq!(stm["length"], THREADS * EACH);
    let mut per_thread = vec![Vec::new(); THREADS];
    for event in stm["stm"].as_array().unwrap() {
        let event: Vec<&str> = event
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(event.len(), 2, "an event stays whole: {event:?}");
        let (a, b) = (event[0], event[1]);
        let marker = a.find('a').unwrap();
        let t: usize = a[1..marker].parse().unwrap();
        assert_eq!(
            b,
            format!("t{t}b{}", &a[marker + 1..]),
            "the two symbols of one observe stay together"
        );
        per_thread[t].push(a.to_owned());
    }
    for (t, events) in per_thread.iter().enumerate() {
        let mut sorted = events.clone();
        sorted.sort();
        assert_eq!(events, &sorted, "thread {t}'s events keep their order");
        assert_eq!(events.len(), EACH);
    }
}

#[test]
fn methods_paths_and_headers_answer_as_kato_routes_them() {
    let server = TestServer::new(&[]);
    let id = session(&server, json!({"node_id": "routes"}));
    let not_allowed = json!({"detail": "Method Not Allowed"});
    // A known path asked with another method: 405, for a known session (KATO's middleware
    // answers SESSION_NOT_FOUND before routing for an unknown one).
    for (method, path) in [
        ("GET", format!("/sessions/{id}/observe")),
        ("POST", format!("/sessions/{id}/stm")),
        ("DELETE", format!("/sessions/{id}/predictions")),
        ("PUT", format!("/sessions/{id}")),
        ("POST", format!("/sessions/{id}/exists")),
        ("GET", "/sessions".to_owned()),
        ("POST", "/pattern/PTRN%7Cabc".to_owned()),
        ("POST", "/symbols/stats".to_owned()),
        ("POST", "/status".to_owned()),
        ("DELETE", "/health".to_owned()),
    ] {
        let reply = server.call(method, &path, &[], Body::empty());
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text());
        assert_eq!(reply.json(), not_allowed, "{method} {path}");
    }
    for (method, path) in [
        ("PUT", "/sessions/nobody"),
        ("GET", "/sessions/nobody/observe"),
        ("POST", "/sessions/nobody/no/such/action"),
        ("DELETE", "/sessions/nobody"),
    ] {
        let reply = server.call(method, path, &[], Body::empty());
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(
            reply.json(),
            json!({"error": {"code": "SESSION_NOT_FOUND", "message": "Session nobody not found or expired", "session_id": "nobody"}}),
            "{method} {path}"
        );
    }
    for path in [
        format!("/sessions/{id}/no-such-action"),
        format!("/sessions/{id}/stm/more"),
    ] {
        let reply = server.get(&path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.json(), json!({"detail": "Not Found"}), "{path}");
    }

    // X-Session-ID on the answers of the session's routes, errors included.
    let learn_empty = server.post(&format!("/sessions/{id}/learn"), &json!({}));
    assert_eq!(learn_empty.status, 400);
    for reply in [
        server.get(&format!("/sessions/{id}/stm")),
        server.get(&format!("/sessions/{id}/predictions")),
        learn_empty,
    ] {
        assert_eq!(reply.header("x-session-id"), Some(id.as_str()));
    }

    // The node of node-level routes: node_id, else x-test-id (prefixed test_), else x-node-id.
    observe_all(&server, &id, &[&["p"], &["q"]]);
    let learned = server
        .post(&format!("/sessions/{id}/learn"), &json!({}))
        .json();
    let name = learned["pattern_name"]
        .as_str()
        .unwrap()
        .replace('|', "%7C");
    let node_of = |path: &str, headers: &[(&str, &str)]| {
        let reply = server.call("GET", path, headers, Body::empty());
        assert_eq!(reply.status, 200, "{path}");
        reply.json()
    };
    let by_header = node_of(&format!("/pattern/{name}"), &[("x-node-id", "routes")]);
    assert_eq!(by_header["node_id"], "routes_kato");
    assert_eq!(by_header["pattern"]["status"], "okay");
    let stats = node_of("/symbols/stats", &[("x-node-id", "routes")]);
    assert_eq!(stats["symbols"]["p"]["frequency"], 1);
    assert_eq!(
        node_of(
            "/symbols/stats",
            &[("x-test-id", "abc"), ("x-node-id", "routes")]
        )["node_id"],
        "test_abc_kato"
    );
    assert_eq!(
        node_of("/symbols/affinity", &[("x-test-id", "test_abc")])["node_id"],
        "test_abc_kato"
    );
    assert_eq!(
        node_of("/symbols/stats?node_id=other", &[("x-test-id", "abc")])["node_id"],
        "other_kato"
    );
    assert_eq!(
        node_of("/symbols/stats", &[])["node_id"],
        "default_node_kato"
    );
    assert_eq!(
        node_of("/percept-data", &[("x-test-id", "abc")])["node_id"],
        "test_abc_kato"
    );
}

#[test]
fn a_body_over_the_limit_gets_a_kato_shaped_413() {
    let server = TestServer::with(&[], |setup| {
        setup.server.max_request_size = 1000;
        setup.server.max_query_length = 50;
    });
    let id = session(&server, json!({"node_id": "big"}));
    let big = json!({"strings": ["s".repeat(2000)]}).to_string();
    let reply = server.call(
        "POST",
        &format!("/sessions/{id}/observe"),
        &[
            ("content-type", "application/json"),
            ("content-length", &big.len().to_string()),
        ],
        big,
    );
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.json(),
        json!({"detail": "Request body too large. Maximum request size is 1000 bytes (0MB); the server's KB_MAX_REQUEST_SIZE sets it"})
    );
    let long = server.get(&format!("/symbols/stats?node_id={}", "x".repeat(60)));
    assert_eq!(long.status, 413);
    assert!(
        long.json()["detail"]
            .as_str()
            .unwrap()
            .contains("KB_MAX_QUERY_LENGTH")
    );
    assert_eq!(
        server.get(&format!("/sessions/{id}/stm")).json()["length"],
        0,
        "nothing was observed"
    );
}

/// A node where `[a] [b] [c]` was learned three times and `[a] [b] [d]` once, with
/// emotives: each learn of the first carries `joy` 1..=3.
fn ranked_node(server: &TestServer, node: &str, config: Value) -> String {
    let id = session(server, json!({"node_id": node, "config": config}));
    let observe = |symbols: &[&str], emotives: Value| {
        let reply = server.post(
            &format!("/sessions/{id}/observe"),
            &json!({"strings": symbols, "emotives": emotives}),
        );
        assert_eq!(reply.status, 200);
    };
    for joy in 1..=3 {
        observe(&["a"], json!({"joy": joy as f64}));
        observe(&["b"], json!({}));
        observe(&["c"], json!({}));
        server.post(&format!("/sessions/{id}/learn"), &json!({}));
        server.post(&format!("/sessions/{id}/clear-stm"), &json!({}));
    }
    for symbols in [["a"], ["b"], ["d"]] {
        observe(&symbols, json!({}));
    }
    server.post(&format!("/sessions/{id}/learn"), &json!({}));
    id
}

#[test]
fn the_session_settings_kato_ignores_are_honoured() {
    let server = TestServer::new(&[]);
    // rank_sort_algo: KATO always ranks by the server's key (potential); mneme by the session's.
    let id = ranked_node(&server, "rank", json!({}));
    for symbols in [vec!["a"], vec!["b", "d"]] {
        server.post(
            &format!("/sessions/{id}/observe"),
            &json!({"strings": symbols}),
        );
    }
    let names = |server: &TestServer| {
        let predictions = server.get(&format!("/sessions/{id}/predictions")).json();
        predictions["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["frequency"].as_u64().unwrap(),
                    p["potential"].as_f64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let by_potential = names(&server);
    assert_eq!(by_potential.len(), 2);
    assert!(by_potential[0].1 >= by_potential[1].1);
    assert_eq!(by_potential[0].0, 1, "[a] [b] [d] matches better");
    server.post(
        &format!("/sessions/{id}/config"),
        &json!({"config": {"rank_sort_algo": "frequency"}}),
    );
    let by_frequency = names(&server);
    assert_eq!(
        by_frequency.iter().map(|p| p.0).collect::<Vec<_>>(),
        [3, 1],
        "ranked by the session's rank_sort_algo"
    );

    // persistence: the emotive window of a pattern's learns (KATO uses the server's 5).
    let pattern_emotives = |node: &str, persistence: Value| {
        ranked_node(&server, node, json!({"persistence": persistence}));
        let abc = [vec!["a"], vec!["b"], vec!["c"]];
        let name = mneme_seq::name::pattern_hash(&abc);
        let found = server
            .get(&format!("/pattern/PTRN%7C{name}?node_id={node}"))
            .json();
        found["pattern"]["pattern"]["emotives"].clone()
    };
    let five = pattern_emotives("persist5", json!(5));
    assert_eq!(five, json!([{"joy": 1.0}, {"joy": 2.0}, {"joy": 3.0}]));
    let two = pattern_emotives("persist2", json!(2));
    assert_eq!(
        two,
        json!([{"joy": 2.0}, {"joy": 3.0}]),
        "the session's window of 2"
    );
}

#[test]
fn predictions_learns_and_clear_all_on_one_node_at_once() {
    let server = TestServer::new(&[]);
    let spawned = server.spawn();
    let addr = spawned.addr;
    const THREADS: usize = 6;
    const ROUNDS: usize = 30;
    let call = move |method: &str, path: &str, body: &Value| {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let reply = http(
            addr,
            method,
            path,
            &[("content-type", "application/json")],
            &payload,
        );
        (reply.status, reply.json())
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let (_, created) = call("POST", "/sessions", &json!({"node_id": "mixed"}));
                let id = created["session_id"].as_str().unwrap().to_owned();
                let mut statuses = Vec::new();
                for r in 0..ROUNDS {
                    for symbols in [vec!["x".to_owned(), format!("t{t}")], vec![format!("r{}", r % 7)]] {
                        statuses.push(call("POST", &format!("/sessions/{id}/observe"), &json!({"strings": symbols})));
                    }
                    statuses.push(call("GET", &format!("/sessions/{id}/predictions"), &Value::Null));
                    match (t + r) % 4 {
                        0 => statuses.push(call("POST", &format!("/sessions/{id}/learn"), &Value::Null)),
                        1 if t == 0 && r % 5 == 1 => {
                            statuses.push(call("POST", &format!("/sessions/{id}/clear-all"), &Value::Null))
                        }
                        2 => statuses.push(call(
                            "POST",
                            &format!("/sessions/{id}/observe-sequence"),
                            &json!({"observations": [{"strings": ["x"]}, {"strings": ["y", "z"]}], "learn_at_end": true}),
                        )),
                        _ => statuses.push(call("GET", &format!("/sessions/{id}/cognition-data"), &Value::Null)),
                    }
                }
                statuses
            })
        })
        .collect();
    for worker in workers {
        for (status, body) in worker.join().unwrap() {
            assert_eq!(status, 200, "{body}");
        }
    }
    // Whatever interleaved, the node is whole: after a last clear-all it answers as a new one.
    let id = session(&server, json!({"node_id": "mixed"}));
    server.post(&format!("/sessions/{id}/clear-all"), &json!({}));
    observe_all(&server, &id, &[&["m"], &["n"], &["o"]]);
    let learned = server
        .post(&format!("/sessions/{id}/learn"), &json!({}))
        .json();
    observe_all(&server, &id, &[&["m"], &["n"]]);
    let predictions = server.get(&format!("/sessions/{id}/predictions")).json();
    assert_eq!(predictions["count"], 1);
    assert_eq!(
        format!(
            "PTRN|{}",
            predictions["predictions"][0]["name"].as_str().unwrap()
        ),
        learned["pattern_name"].as_str().unwrap()
    );
    assert_eq!(predictions["predictions"][0]["frequency"], 1);
    let stats = server.get("/symbols/stats?node_id=mixed").json();
    assert_eq!(
        stats["symbols"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["m", "n", "o"]
    );
}

#[test]
fn metrics_name_each_kato_route_by_its_template() {
    let server = TestServer::new(&[]);
    let id = session(&server, json!({"node_id": "routes"}));
    observe_all(&server, &id, &[&["a"], &["b"]]);
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
    assert_eq!(server.get("/sessions/session-unknown/stm").status, 404);
    let text = server
        .call(
            "GET",
            "/metrics",
            &[("accept", "text/plain")],
            Body::empty(),
        )
        .text();
    for needle in [
        "mneme_http_requests_total{method=\"POST\",route=\"/sessions\",status=\"200\"} 1",
        "mneme_http_requests_total{method=\"POST\",route=\"/sessions/{session_id}/observe\",status=\"200\"} 2",
        "mneme_http_requests_total{method=\"POST\",route=\"/sessions/{session_id}/learn\",status=\"200\"} 1",
        "mneme_http_requests_total{method=\"GET\",route=\"/sessions/{session_id}/predictions\",status=\"200\"} 1",
        "mneme_http_requests_total{method=\"GET\",route=\"/sessions/{session_id}/stm\",status=\"404\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[test]
fn sessions_are_created_while_long_requests_hold_every_engine_thread() {
    let server = TestServer::new(&[]);
    let id = session(&server, json!({"node_id": "busy"}));
    // Every engine thread taken (as by long observe-sequence requests): creating a session,
    // and the quick reads of another session, still answer.
    let slots = server.state.blocking_slots.available_permits() as u32;
    let held = server.state.blocking_slots.try_acquire_many(slots).unwrap();
    let (done, answered) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let created = server.post("/sessions", &json!({"node_id": "busy"}));
            let stm = server.get(&format!("/sessions/{id}/stm"));
            done.send((created.status, stm.status)).unwrap();
        });
        let statuses = answered.recv_timeout(std::time::Duration::from_secs(60));
        drop(held);
        assert_eq!(
            statuses,
            Ok((200, 200)),
            "session creation queued behind the engine threads"
        );
    });
}
