//! The endpoints both APIs define (`/`, `/health`, `/metrics`) and KATO's monitoring
//! endpoints (`/status`, `/stats`, `/metrics/{name}`, the deprecated node-level data).
//!
//! `/` and `/health` answer one JSON object holding both originals' fields; `/metrics` answers
//! Prometheus text to scrapers (an `Accept` naming `text/plain` or OpenMetrics) and KATO's JSON
//! otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ServerState;
use super::metrics::Gauge;
use super::system;
use crate::kato;
use mneme_app::time::iso_utc_offset;

/// KATO's version, reported where KATO clients look for it.
pub const KATO_VERSION: &str = "3.10.1";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An error in the shape of the API a path belongs to: KnowledgeBeast's
/// `{"error", "message", "detail", "status_code"}` under `/api`, FastAPI's `{"detail"}` (KATO's)
/// elsewhere. `error` is the KnowledgeBeast error name (`RequestEntityTooLarge`).
pub fn api_error(
    path: &str,
    status: StatusCode,
    error: &str,
    message: &str,
    detail: &str,
) -> Response {
    let body = if path.starts_with("/api/") || path == "/api" {
        json!({"error": error, "message": message, "detail": detail, "status_code": status.as_u16()})
    } else {
        json!({"detail": format!("{message}. {detail}")})
    };
    json_response(status, &body)
}

pub fn iso_now() -> String {
    kato::iso(SystemTime::now())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `GET /`: KnowledgeBeast's and KATO's service descriptions in one object.
pub async fn root(State(state): State<Arc<ServerState>>) -> Response {
    let body = json!({
        "name": "KnowledgeBeast API",
        "service": "KATO API",
        "version": VERSION,
        "description": "mneme: knowledge base (KnowledgeBeast API) and pattern engine (KATO API) in one server",
        "web_ui": "/ui",
        "docs": "/docs",
        "redoc": "/docs",
        "openapi": "/openapi.json",
        "api_v1": "/api/v1",
        "api_v2": "/api/v2/projects",
        "health": "/health",
        "status": "running",
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "architecture": "modular",
        "session_support": true,
        "timestamp": iso_now(),
    });
    json_response(StatusCode::OK, &body)
}

/// Disk status as KnowledgeBeast grades it: above 1 GB free is up, below 0.5 GB critical.
fn disk_component(state: &ServerState) -> (Value, &'static str) {
    match system::disk_space(&state.data_dir) {
        Some((free, _)) => {
            let gb = free as f64 / 1e9;
            let (status, overall) = if gb < 0.5 {
                ("critical", "unhealthy")
            } else if gb < 1.0 {
                ("warning", "degraded")
            } else {
                ("up", "healthy")
            };
            let gb = (gb * 100.0).round() / 100.0;
            (
                json!({"status": status, "available_gb": gb, "threshold_gb": 1.0}),
                overall,
            )
        }
        None => (
            json!({"status": "unknown", "available_gb": null, "threshold_gb": 1.0}),
            "degraded",
        ),
    }
}

fn worst(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s: &str| match s {
        "healthy" => 0,
        "degraded" => 1,
        _ => 2,
    };
    if rank(a) >= rank(b) { a } else { b }
}

/// KATO's health rules over the sampled figures: CPU above 80 % is degraded, memory above
/// 90 % unhealthy, more than 10 errors a second over the last minute degraded.
fn resource_health(
    cpu_percent: Option<f64>,
    memory_percent: Option<f64>,
    errors_per_second: Option<f64>,
) -> (&'static str, Vec<String>) {
    let mut status = "healthy";
    let mut issues = Vec::new();
    if cpu_percent.is_some_and(|cpu| cpu > 80.0) {
        issues.push("High CPU usage".to_owned());
        status = worst(status, "degraded");
    }
    if memory_percent.is_some_and(|memory| memory > 90.0) {
        issues.push("High memory usage".to_owned());
        status = worst(status, "unhealthy");
    }
    if errors_per_second.is_some_and(|rate| rate > 10.0) {
        issues.push("High error rate".to_owned());
        status = worst(status, "degraded");
    }
    (status, issues)
}

/// Errors per second over the samples of the last minute (none with fewer than two).
fn error_rate(state: &ServerState) -> Option<f64> {
    let samples = state.series.since(1.0);
    let (first, last) = (samples.first()?, samples.last()?);
    let seconds = last.unix - first.unix;
    let errors = |s: &system::Sample| s.values.get("errors_total").copied();
    (seconds > 0.0).then_some((errors(last)? - errors(first)?) / seconds)
}

/// `GET /health`: KnowledgeBeast's components and KATO's processor fields. The status is the
/// worse of KnowledgeBeast's (the disk) and KATO's (the sampled resources).
pub async fn health(State(state): State<Arc<ServerState>>) -> Response {
    let stats = state.knowledge.kb.stats();
    let (disk, disk_status) = disk_component(&state);
    let mut issues = Vec::new();
    if disk_status != "healthy" {
        issues.push(format!("low disk space ({})", disk["available_gb"]));
    }
    let latest = state.series.latest();
    let sampled = |name| latest.as_ref().and_then(|s| s.values.get(name).copied());
    let (resources_status, resource_issues) = resource_health(
        sampled("cpu_percent"),
        sampled("memory_percent"),
        error_rate(&state),
    );
    issues.extend(resource_issues);
    let mut status = worst(disk_status, resources_status);
    let store_failure = state.kato.patterns().failure();
    let pattern_engine = match &store_failure {
        None => json!({"status": "up", "loaded_nodes": state.kato.patterns().loaded().len()}),
        Some(reason) => {
            status = "unhealthy";
            issues.push(format!("pattern store takes no writes: {reason}"));
            json!({"status": "down", "error": reason, "loaded_nodes": state.kato.patterns().loaded().len()})
        }
    };
    let body = json!({
        "status": status,
        "version": VERSION,
        "components": {
            "knowledgebase": {"status": "up", "initialized": true},
            "chromadb": {"status": "not_configured"},
            "embedding_model": {"status": "not_configured"},
            "database": {"status": "up", "documents": stats.documents, "accessible": true},
            "disk": disk,
            "pattern_engine": pattern_engine,
        },
        "kb_stats": {
            "total_documents": stats.documents,
            "total_terms": stats.terms,
            "chunks": stats.chunks,
            "cached_queries": stats.cache.entries,
            "generation": stats.generation,
        },
        "processor_status": if store_failure.is_some() { "unhealthy" } else { "healthy" },
        "service_name": state.kato.patterns().defaults().service_name,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "issues": issues,
        "metrics_collected": state.series.since(60.0).len(),
        "last_collection": state.series.latest().map_or(state.started_unix, |s| s.unix),
        "active_sessions": state.kato.active_sessions(),
        "timestamp": iso_now(),
    });
    json_response(StatusCode::OK, &body)
}

fn wants_prometheus(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|accept| accept.contains("text/plain") || accept.contains("openmetrics"))
}

/// `GET /metrics`: Prometheus text for scrapers, KATO's JSON for everyone else.
pub async fn metrics(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    if wants_prometheus(&headers) {
        let text = prometheus_text(&state);
        let mut response = (StatusCode::OK, text).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return response;
    }
    json_response(StatusCode::OK, &kato_metrics(&state))
}

fn prometheus_text(state: &ServerState) -> String {
    let stats = state.knowledge.kb.stats();
    let sessions = state.kato.session_counts();
    let gauge = |name, help, value: f64| Gauge {
        name,
        help,
        labels: Vec::new(),
        value,
    };
    let mut gauges = vec![
        gauge(
            "kb_documents_total",
            "Documents in the knowledge base",
            stats.documents as f64,
        ),
        gauge(
            "kb_chunks_total",
            "Chunks in the knowledge base",
            stats.chunks as f64,
        ),
        gauge(
            "kb_terms_total",
            "Distinct terms in the knowledge base",
            stats.terms as f64,
        ),
        gauge(
            "kb_index_generation",
            "Committed index generation",
            stats.generation as f64,
        ),
        gauge(
            "kb_cache_entries",
            "Entries in the query-result cache",
            stats.cache.entries as f64,
        ),
        gauge(
            "kb_cache_hits_total",
            "Query-cache hits (persisted with the cache)",
            stats.cache.hits as f64,
        ),
        gauge(
            "kb_cache_misses_total",
            "Query-cache misses (persisted with the cache)",
            stats.cache.misses as f64,
        ),
        gauge(
            "kb_active_projects_total",
            "API v2 projects",
            state.projects.count() as f64,
        ),
        gauge(
            "kato_active_sessions",
            "Sessions that have not expired",
            sessions.active as f64,
        ),
        gauge(
            "kato_sessions_created_total",
            "Sessions created since start",
            sessions.created as f64,
        ),
        gauge(
            "kato_sessions_deleted_total",
            "Sessions deleted since start",
            sessions.deleted as f64,
        ),
        gauge(
            "kato_sessions_expired_total",
            "Sessions expired since start",
            sessions.expired as f64,
        ),
        gauge(
            "kato_loaded_nodes",
            "Pattern nodes in memory",
            state.kato.patterns().loaded().len() as f64,
        ),
        gauge(
            "process_resident_memory_bytes",
            "Resident memory",
            system::rss_bytes() as f64,
        ),
        gauge(
            "process_uptime_seconds",
            "Seconds since start",
            state.started.elapsed().as_secs_f64(),
        ),
    ];
    for node in state.kato.patterns().loaded() {
        gauges.push(Gauge {
            name: "kato_patterns_total",
            help: "Learned patterns per node",
            labels: vec![("node", node.node.kb_id().to_owned())],
            value: node.node.stats().patterns as f64,
        });
    }
    state.metrics.render(&gauges)
}

/// KATO's processor-manager statistics: one entry per loaded node, least recently used first
/// (the order of KATO's LRU), plus the node's pattern and symbol counts.
fn processor_manager(state: &ServerState) -> Value {
    let mut nodes = state.kato.patterns().loaded();
    nodes.sort_by_cached_key(|n| (n.usage.last_used(), n.node.kb_id().to_owned()));
    let now = SystemTime::now();
    json!({
        "total_processors": nodes.len(),
        "max_processors": null,
        "eviction_ttl_seconds": null,
        "processors": nodes.iter().map(|loaded| {
            let (node, usage) = (&loaded.node, &loaded.usage);
            let last_used = usage.last_used();
            json!({
                "processor_id": node.kb_id(),
                "node_id": usage.node_id(),
                "created_at": iso_utc_offset(usage.loaded_at()),
                "last_accessed": iso_utc_offset(last_used),
                "access_count": usage.uses(),
                "idle_seconds": now.duration_since(last_used).map_or(0.0, |d| d.as_secs_f64()),
                "patterns": node.stats().patterns,
                "symbols": node.stats().symbols,
            })
        }).collect::<Vec<_>>(),
    })
}

fn kato_metrics(state: &ServerState) -> Value {
    let sessions = state.kato.session_counts();
    let (requests, seconds) = state
        .metrics
        .histogram_totals("mneme_http_request_duration_seconds");
    let errors = state.metrics.total("mneme_http_errors_total") as u64;
    let operations = state.metrics.total("kato_session_operations_total") as u64;
    let latest = state.series.latest();
    let rate = |name| {
        latest
            .as_ref()
            .and_then(|s| s.values.get(name).copied())
            .unwrap_or(0.0)
    };
    let data_dir = &state.data_dir;
    json!({
        "timestamp": unix_now(),
        "sessions": {
            "total_created": sessions.created,
            "total_deleted": sessions.deleted,
            "active": sessions.active,
            "operations_total": operations,
        },
        "performance": {
            "total_requests": requests,
            "total_errors": errors,
            "error_rate": if requests == 0 { 0.0 } else { errors as f64 / requests as f64 },
            "average_response_time": if requests == 0 { 0.0 } else { seconds / requests as f64 },
        },
        "resources": {
            "cpu_percent": rate("cpu_percent"),
            "memory_percent": memory_percent(),
            "disk_percent": system::disk_percent(data_dir),
        },
        "databases": {
            "embedded": {"operations": operations, "errors": 0, "avg_response_time": 0.0},
        },
        "rates": {
            "requests_per_second": rate("requests_per_second"),
        },
        "processor_manager": processor_manager(state),
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "active_sessions": sessions.active,
    })
}

fn memory_percent() -> f64 {
    let total = system::total_memory();
    if total == 0 {
        0.0
    } else {
        100.0 * system::rss_bytes() as f64 / total as f64
    }
}

/// Takes one sample of every series (called every few seconds by the server).
pub fn sample(state: &ServerState, previous_requests: &mut (u64, std::time::Instant)) {
    let sessions = state.kato.session_counts();
    let (requests, seconds) = state
        .metrics
        .histogram_totals("mneme_http_request_duration_seconds");
    let elapsed = previous_requests.1.elapsed().as_secs_f64().max(1e-9);
    let per_second = requests.saturating_sub(previous_requests.0) as f64 / elapsed;
    *previous_requests = (requests, std::time::Instant::now());
    let stats = state.knowledge.kb.stats();
    let mut values = BTreeMap::new();
    values.insert("cpu_percent", state.series.cpu_percent());
    values.insert("memory_percent", memory_percent());
    values.insert("memory_rss_bytes", system::rss_bytes() as f64);
    values.insert("disk_percent", system::disk_percent(&state.data_dir));
    values.insert("active_sessions", sessions.active as f64);
    values.insert("requests_total", requests as f64);
    values.insert(
        "errors_total",
        state.metrics.total("mneme_http_errors_total"),
    );
    values.insert("requests_per_second", per_second);
    values.insert(
        "average_response_time",
        if requests == 0 {
            0.0
        } else {
            seconds / requests as f64
        },
    );
    values.insert("sessions_created", sessions.created as f64);
    values.insert("sessions_deleted", sessions.deleted as f64);
    values.insert("kb_documents", stats.documents as f64);
    values.insert("kb_queries", (stats.cache.hits + stats.cache.misses) as f64);
    values.insert("loaded_nodes", state.kato.patterns().loaded().len() as f64);
    state.series.record(values);
}

/// `GET /status`
pub async fn status(State(state): State<Arc<ServerState>>) -> Response {
    let sessions = state.kato.session_counts();
    let body = json!({
        "status": "healthy",
        "base_processor_id": state.kato.patterns().defaults().service_name,
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "sessions": {
            "total_sessions": sessions.held,
            "active_sessions": sessions.active,
            "expired_sessions": sessions.expired,
            "backend": "memory",
            "redis_url": null,
        },
        "processors": processor_manager(&state),
        "version": VERSION,
        "kato_version": KATO_VERSION,
    });
    json_response(StatusCode::OK, &body)
}

/// The `minutes` query parameter (default 10), or FastAPI's 422.
fn minutes(query: Option<&str>) -> Result<i64, Response> {
    let Some(raw) = query.and_then(|q| kato::query_param(q, "minutes")) else {
        return Ok(10);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) => Ok(n),
        Err(_) => Err(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"detail": [{
                "type": "int_parsing",
                "loc": ["query", "minutes"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": raw,
            }]}),
        )),
    }
}

/// `GET /stats?minutes=10`
pub async fn stats(State(state): State<Arc<ServerState>>, RawQuery(query): RawQuery) -> Response {
    let minutes = match minutes(query.as_deref()) {
        Ok(m) => m,
        Err(response) => return response,
    };
    let samples = state.series.since(minutes as f64);
    let time_series: serde_json::Map<String, Value> = system::SERIES
        .iter()
        .map(|name| {
            let points: Vec<Value> = samples
                .iter()
                .filter_map(|s| {
                    s.values
                        .get(name)
                        .map(|v| json!({"timestamp": s.unix, "value": v}))
                })
                .collect();
            ((*name).to_owned(), Value::Array(points))
        })
        .collect();
    let current = kato_metrics(&state);
    let body = json!({
        "time_range_minutes": minutes,
        "timestamp": unix_now(),
        "processor_manager": processor_manager(&state),
        "current_status": {"status": "healthy", "uptime_seconds": state.started.elapsed().as_secs_f64()},
        "time_series": time_series,
        "summary": {
            "sessions": current["sessions"],
            "performance": current["performance"],
            "resources": current["resources"],
            "databases": current["databases"],
        },
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /metrics/{name}?minutes=10`
pub async fn metric(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let minutes = match minutes(query.as_deref()) {
        Ok(m) => m,
        Err(response) => return response,
    };
    let points: Vec<(f64, f64)> = state
        .series
        .since(minutes as f64)
        .iter()
        .filter_map(|s| s.values.get(name.as_str()).map(|v| (s.unix, *v)))
        .collect();
    if points.is_empty() {
        let body = json!({"detail": format!("No data available for metric '{name}' in the last {minutes} minutes")});
        return json_response(StatusCode::NOT_FOUND, &body);
    }
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let body = json!({
        "metric_name": name,
        "time_range_minutes": minutes,
        "timestamp": unix_now(),
        "statistics": {
            "count": values.len(),
            "min": values.iter().copied().fold(f64::INFINITY, f64::min),
            "max": values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "avg": values.iter().sum::<f64>() / values.len() as f64,
        },
        "data_points": points.iter().map(|(t, v)| json!({"timestamp": t, "value": v})).collect::<Vec<_>>(),
    });
    json_response(StatusCode::OK, &body)
}

/// The kb_id of the node a request names, as KATO's node-level routes resolve it.
fn node_of(state: &ServerState, query: Option<&str>, headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = kato::Request {
        test_id: header("x-test-id"),
        node_header: header("x-node-id"),
        ..kato::Request::new("GET", query.unwrap_or(""), None)
    };
    mneme_seq::config::kb_id(
        &request.node_id(),
        &state.kato.patterns().defaults().service_name,
    )
}

const DEPRECATED: &str = "This endpoint is deprecated: use /sessions/{session_id}/percept-data or /sessions/{session_id}/cognition-data";

/// `GET /percept-data` (deprecated): an empty structure and a warning.
pub async fn deprecated_percept(
    State(state): State<Arc<ServerState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let body = json!({"percept_data": {}, "node_id": node_of(&state, query.as_deref(), &headers), "warning": DEPRECATED});
    json_response(StatusCode::OK, &body)
}

/// `GET /cognition-data` (deprecated): an empty structure and a warning.
pub async fn deprecated_cognition(
    State(state): State<Arc<ServerState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let body = json!({
        "cognition_data": {
            "predictions": [], "emotives": {}, "symbols": [], "command": "", "metadata": {},
            "path": [], "strings": [], "vectors": [], "short_term_memory": [],
        },
        "node_id": node_of(&state, query.as_deref(), &headers),
        "warning": DEPRECATED,
    });
    json_response(StatusCode::OK, &body)
}

/// Unknown routes: KnowledgeBeast's 404 body under `/api`, KATO's elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        return kb_not_found("404: Not Found");
    }
    json_response(StatusCode::NOT_FOUND, &json!({"detail": "Not Found"}))
}

/// KnowledgeBeast's 404 body; `detail` is null when it contains a `/`.
pub fn kb_not_found(detail: &str) -> Response {
    let detail = if detail.contains('/') {
        Value::Null
    } else {
        json!(detail)
    };
    json_response(
        StatusCode::NOT_FOUND,
        &json!({
            "error": "NotFound",
            "message": "The requested resource was not found",
            "detail": detail,
            "status_code": 404,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::resource_health;

    #[test]
    fn resource_health_follows_kato() {
        assert_eq!(resource_health(None, None, None), ("healthy", vec![]));
        assert_eq!(
            resource_health(Some(80.0), Some(90.0), Some(10.0)),
            ("healthy", vec![])
        );
        assert_eq!(
            resource_health(Some(80.5), Some(10.0), None),
            ("degraded", vec!["High CPU usage".to_owned()])
        );
        assert_eq!(
            resource_health(Some(95.0), Some(91.0), Some(11.0)),
            (
                "unhealthy",
                vec![
                    "High CPU usage".to_owned(),
                    "High memory usage".to_owned(),
                    "High error rate".to_owned()
                ]
            )
        );
    }
}
