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
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::ServerState;
use super::metrics::{
    BUCKETS, Derived, Gauge, KATO_OBSERVATION_BUCKETS, KATO_PREDICTION_BUCKETS,
    KATO_REQUEST_BUCKETS, Labels,
};
use super::system;
use crate::error::ApiError;
use crate::kato;
use crate::lax::{self, Dialect};
use mneme_app::time::iso_utc_offset;

/// KATO's version, reported where KATO clients look for it.
pub const KATO_VERSION: &str = "3.10.1";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    to_json_status(status, body)
}

/// A 200 answer with `value` as its JSON body.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Response {
    to_json_status(StatusCode::OK, value)
}

/// An answer with `value` as its JSON body.
pub fn to_json_status<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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
#[derive(Serialize, ToSchema)]
pub struct Root {
    #[schema(value_type = String)]
    pub name: &'static str,
    #[schema(value_type = String)]
    pub service: &'static str,
    #[schema(value_type = String)]
    pub version: &'static str,
    #[schema(value_type = String)]
    pub description: &'static str,
    #[schema(value_type = String)]
    pub web_ui: &'static str,
    #[schema(value_type = String)]
    pub docs: &'static str,
    #[schema(value_type = String)]
    pub redoc: &'static str,
    #[schema(value_type = String)]
    pub openapi: &'static str,
    #[schema(value_type = String)]
    pub api_v1: &'static str,
    #[schema(value_type = String)]
    pub api_v2: &'static str,
    #[schema(value_type = String)]
    pub health: &'static str,
    #[schema(value_type = String)]
    pub status: &'static str,
    pub uptime_seconds: f64,
    #[schema(value_type = String)]
    pub architecture: &'static str,
    pub session_support: bool,
    pub timestamp: String,
}

/// `GET /`
pub async fn root(State(state): State<Arc<ServerState>>) -> Response {
    to_json(&Root {
        name: "KnowledgeBeast API",
        service: "KATO API",
        version: VERSION,
        description: "mneme: knowledge base (KnowledgeBeast API) and pattern engine (KATO API) in one server",
        web_ui: "/ui",
        docs: "/docs",
        redoc: "/docs",
        openapi: "/openapi.json",
        api_v1: "/api/v1",
        api_v2: "/api/v2/projects",
        health: "/health",
        status: "running",
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        architecture: "modular",
        session_support: true,
        timestamp: iso_now(),
    })
}

/// A component of `/health` that is only up or not configured.
#[derive(Serialize, ToSchema)]
pub struct Component {
    #[schema(value_type = String)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initialized: Option<bool>,
}

/// The index as a database.
#[derive(Serialize, ToSchema)]
pub struct DatabaseComponent {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub documents: usize,
    pub accessible: bool,
}

/// Free disk space of the data directory: `up` above 1 GB, `warning` below, `critical` below
/// 0.5 GB.
#[derive(Serialize, ToSchema)]
pub struct DiskComponent {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub available_gb: Option<f64>,
    pub threshold_gb: f64,
}

/// The pattern store: `down` (with the reason) once a commit failed.
#[derive(Serialize, ToSchema)]
pub struct PatternComponent {
    #[schema(value_type = String)]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub loaded_nodes: usize,
}

#[derive(Serialize, ToSchema)]
pub struct HealthComponents {
    pub knowledgebase: Component,
    pub chromadb: Component,
    pub embedding_model: Component,
    pub database: DatabaseComponent,
    pub disk: DiskComponent,
    pub pattern_engine: PatternComponent,
}

#[derive(Serialize, ToSchema)]
pub struct HealthKbStats {
    pub total_documents: usize,
    pub total_terms: usize,
    pub chunks: u64,
    pub cached_queries: usize,
    pub generation: u64,
}

/// `GET /health`: KnowledgeBeast's components and KATO's processor fields.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` or `unhealthy`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// Cluster mode only: PostgreSQL's and Redis's health as this node sees them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cluster: Option<Value>,
    #[schema(value_type = String)]
    pub version: &'static str,
    pub components: HealthComponents,
    pub kb_stats: HealthKbStats,
    #[schema(value_type = String)]
    pub processor_status: &'static str,
    pub service_name: String,
    pub uptime_seconds: f64,
    pub issues: Vec<String>,
    pub metrics_collected: usize,
    pub last_collection: f64,
    pub active_sessions: usize,
    pub timestamp: String,
}

/// Disk status as KnowledgeBeast grades it: above 1 GB free is up, below 0.5 GB critical.
fn disk_component(state: &ServerState) -> (DiskComponent, &'static str) {
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
                DiskComponent {
                    status,
                    available_gb: Some(gb),
                    threshold_gb: 1.0,
                },
                overall,
            )
        }
        None => (
            DiskComponent {
                status: "unknown",
                available_gb: None,
                threshold_gb: 1.0,
            },
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

/// `GET /health`: the status is the worse of KnowledgeBeast's (the disk) and KATO's (the
/// sampled resources), and `unhealthy` when the pattern store takes no writes.
pub async fn health(State(state): State<Arc<ServerState>>) -> Response {
    let stats = state.knowledge.kb.stats();
    let (disk, disk_status) = disk_component(&state);
    let mut issues = Vec::new();
    if disk_status != "healthy" {
        let shown = disk.available_gb.map_or(Value::Null, |gb| json!(gb));
        issues.push(format!("low disk space ({shown})"));
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
    let loaded_nodes = state.kato.patterns().loaded().len();
    let pattern_engine = match &store_failure {
        None => PatternComponent {
            status: "up",
            error: None,
            loaded_nodes,
        },
        Some(reason) => {
            status = "unhealthy";
            issues.push(format!("pattern store takes no writes: {reason}"));
            PatternComponent {
                status: "down",
                error: Some(reason.clone()),
                loaded_nodes,
            }
        }
    };
    // Cluster mode: the shared stores' health (a replica that cannot reach PostgreSQL still
    // answers, from what it holds: degraded, with how far behind it may be).
    let mut cluster = None;
    if let Some(shared) = state.kato.patterns().shared_status() {
        let sessions_outage = state.kato.sessions().store_outage();
        if let Some(why) = &shared.degraded {
            status = worst(status, "degraded");
            issues.push(format!("pattern store (PostgreSQL): {why}"));
        }
        if let Some(why) = &sessions_outage {
            status = worst(status, "degraded");
            issues.push(format!("session store (Redis): {why}"));
        }
        cluster = Some(json!({
            "postgres": {
                "status": if shared.degraded.is_some() { "degraded" } else { "up" },
                "error": shared.degraded,
                "replication_lag_ms": shared.lag_ms,
                "replicas": shared.replicas,
            },
            "redis": {
                "status": if sessions_outage.is_some() { "down" } else { "up" },
                "error": sessions_outage,
            },
        }));
    }
    let up = |status| Component {
        status,
        initialized: None,
    };
    to_json(&Health {
        status,
        cluster,
        version: VERSION,
        components: HealthComponents {
            knowledgebase: Component {
                status: "up",
                initialized: Some(true),
            },
            chromadb: up("not_configured"),
            embedding_model: up("not_configured"),
            database: DatabaseComponent {
                status: "up",
                documents: stats.documents,
                accessible: true,
            },
            disk,
            pattern_engine,
        },
        kb_stats: HealthKbStats {
            total_documents: stats.documents,
            total_terms: stats.terms,
            chunks: stats.chunks,
            cached_queries: stats.cache.entries,
            generation: stats.generation,
        },
        processor_status: if store_failure.is_some() {
            "unhealthy"
        } else {
            "healthy"
        },
        service_name: state.kato.patterns().defaults().service_name.clone(),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        issues,
        metrics_collected: state.series.since(60.0).len(),
        last_collection: state.series.latest().map_or(state.started_unix, |s| s.unix),
        active_sessions: state.kato.active_sessions(),
        timestamp: iso_now(),
    })
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
        return prometheus_response(&state);
    }
    to_json(&kato_metrics(&state))
}

/// `GET /metrics-prom`: Prometheus text, whatever the `Accept` header says.
pub async fn metrics_prometheus(State(state): State<Arc<ServerState>>) -> Response {
    prometheus_response(&state)
}

fn prometheus_response(state: &ServerState) -> Response {
    let mut response = (StatusCode::OK, prometheus_text(state)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

fn prometheus_text(state: &ServerState) -> String {
    let stats = state.knowledge.kb.stats();
    let sessions = state.kato.session_counts();
    let gauge = |name, help, value: f64| Gauge {
        name,
        help,
        labels: Vec::new(),
        value,
        counter: false,
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
        // The names of KnowledgeBeast's tuning guide.
        gauge(
            "knowledgebeast_documents_total",
            "Documents in the knowledge base",
            stats.documents as f64,
        ),
        gauge(
            "knowledgebeast_index_size_bytes",
            "Bytes of the knowledge base's index directory",
            system::dir_size(state.knowledge.kb.dir()) as f64,
        ),
        Gauge {
            counter: true,
            ..gauge(
                "process_cpu_seconds_total",
                "CPU time used by the process",
                system::cpu_time().as_secs_f64(),
            )
        },
    ];
    // KATO's tuning guide names the node `processor_id` (KATO's word for a kb_id).
    for node in state.kato.patterns().loaded() {
        gauges.push(Gauge {
            name: "kato_patterns_total",
            help: "Learned patterns per node",
            labels: vec![("processor_id", node.node.kb_id().to_owned())],
            value: node.node.stats().patterns as f64,
            counter: false,
        });
    }
    let mut text = state.metrics.render(&gauges);
    text.push_str(&state.metrics.render_derived(&guide_families()));
    text
}

fn label<'l>(labels: &'l Labels, name: &str) -> Option<&'l str> {
    labels
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.as_str())
}

/// The names of KATO's and KnowledgeBeast's tuning guides, derived at scrape time from what
/// the middleware and the query handlers record (so they cost the requests nothing): the
/// KATO families from the request series of KATO's routes (their bounds are a subset of the
/// recorded ones), the knowledgebeast families from the v1 and v2 query series.
fn guide_families() -> Vec<Derived<'static>> {
    fn kato_request(_: &str, labels: &Labels) -> Option<Labels> {
        let route = label(labels, "route")?;
        super::auth::is_kato_route(route).then(|| {
            vec![
                ("method", label(labels, "method").unwrap_or("").to_owned()),
                ("endpoint", route.to_owned()),
                ("status", label(labels, "status").unwrap_or("").to_owned()),
            ]
        })
    }
    fn kato_latency(_: &str, labels: &Labels) -> Option<Labels> {
        let route = label(labels, "route")?;
        super::auth::is_kato_route(route).then(|| {
            vec![
                ("endpoint", route.to_owned()),
                ("method", label(labels, "method").unwrap_or("").to_owned()),
            ]
        })
    }
    fn successful(labels: &Labels, routes: &[&str]) -> Option<Labels> {
        let ok = label(labels, "status").is_some_and(|s| s.starts_with('2'));
        (ok && routes.contains(&label(labels, "route")?)).then(Vec::new)
    }
    fn observation(_: &str, labels: &Labels) -> Option<Labels> {
        successful(
            labels,
            &[
                "/sessions/{session_id}/observe",
                "/sessions/{session_id}/observe-sequence",
            ],
        )
    }
    fn prediction(_: &str, labels: &Labels) -> Option<Labels> {
        successful(labels, &["/sessions/{session_id}/predictions"])
    }
    fn every(_: &str, _: &Labels) -> Option<Labels> {
        Some(Vec::new())
    }
    fn cache(outcome: &str, source: &str, labels: &Labels) -> Option<Labels> {
        match source {
            // v1 counts both outcomes in one family; v2 has one family each.
            "kb_cache_operations_total" => {
                (label(labels, "operation") == Some(outcome)).then(Vec::new)
            }
            _ => Some(Vec::new()),
        }
    }
    fn hit(source: &str, labels: &Labels) -> Option<Labels> {
        cache("hit", source, labels)
    }
    fn miss(source: &str, labels: &Labels) -> Option<Labels> {
        cache("miss", source, labels)
    }
    const REQUESTS: &[&str] = &["mneme_http_requests_total"];
    const LATENCY: &[&str] = &["mneme_http_request_duration_seconds"];
    const QUERIES: &[&str] = &[
        "kb_query_duration_seconds",
        "kb_project_query_duration_seconds",
    ];
    vec![
        Derived::Counter {
            name: "kato_requests_total",
            help: "Requests on KATO's routes by method, endpoint and status",
            from: REQUESTS,
            select: &kato_request,
        },
        Derived::Histogram {
            name: "kato_request_duration_seconds",
            help: "Request duration on KATO's routes",
            bounds: &KATO_REQUEST_BUCKETS,
            from: LATENCY,
            select: &kato_latency,
        },
        Derived::Histogram {
            name: "kato_observation_duration_seconds",
            help: "Observation processing time",
            bounds: &KATO_OBSERVATION_BUCKETS,
            from: LATENCY,
            select: &observation,
        },
        Derived::Histogram {
            name: "kato_prediction_duration_seconds",
            help: "Prediction generation time",
            bounds: &KATO_PREDICTION_BUCKETS,
            from: LATENCY,
            select: &prediction,
        },
        Derived::Counter {
            name: "knowledgebeast_queries_total",
            help: "Knowledge-base queries (v1 and v2)",
            from: QUERIES,
            select: &every,
        },
        Derived::Histogram {
            name: "knowledgebeast_query_duration_seconds",
            help: "Knowledge-base query latency (v1 and v2)",
            bounds: &BUCKETS,
            from: QUERIES,
            select: &every,
        },
        Derived::Counter {
            name: "knowledgebeast_cache_hits_total",
            help: "Queries the result cache answered (v1 and v2)",
            from: &["kb_cache_operations_total", "kb_project_cache_hits_total"],
            select: &hit,
        },
        Derived::Counter {
            name: "knowledgebeast_cache_misses_total",
            help: "Queries the result cache did not answer (v1 and v2)",
            from: &["kb_cache_operations_total", "kb_project_cache_misses_total"],
            select: &miss,
        },
    ]
}

/// One loaded pattern node, as KATO lists its processors.
#[derive(Serialize, ToSchema)]
pub struct Processor {
    /// The node's kb_id.
    pub processor_id: String,
    pub node_id: String,
    pub created_at: String,
    pub last_accessed: String,
    pub access_count: u64,
    pub idle_seconds: f64,
    pub patterns: usize,
    pub symbols: usize,
}

/// KATO's processor-manager statistics (nodes are never evicted: the limits are null).
#[derive(Serialize, ToSchema)]
pub struct ProcessorManager {
    pub total_processors: usize,
    pub max_processors: Option<u64>,
    pub eviction_ttl_seconds: Option<u64>,
    /// Least recently used first.
    pub processors: Vec<Processor>,
}

/// KATO's processor-manager statistics: one entry per loaded node, least recently used first
/// (the order of KATO's LRU), plus the node's pattern and symbol counts.
fn processor_manager(state: &ServerState) -> ProcessorManager {
    let mut nodes = state.kato.patterns().loaded();
    nodes.sort_by_cached_key(|n| (n.usage.last_used(), n.node.kb_id().to_owned()));
    let now = SystemTime::now();
    ProcessorManager {
        total_processors: nodes.len(),
        max_processors: None,
        eviction_ttl_seconds: None,
        processors: nodes
            .iter()
            .map(|loaded| {
                let (node, usage) = (&loaded.node, &loaded.usage);
                let last_used = usage.last_used();
                Processor {
                    processor_id: node.kb_id().to_owned(),
                    node_id: usage.node_id().to_owned(),
                    created_at: iso_utc_offset(usage.loaded_at()),
                    last_accessed: iso_utc_offset(last_used),
                    access_count: usage.uses(),
                    idle_seconds: now
                        .duration_since(last_used)
                        .map_or(0.0, |d| d.as_secs_f64()),
                    patterns: node.stats().patterns,
                    symbols: node.stats().symbols,
                }
            })
            .collect(),
    }
}

#[derive(Clone, Serialize, ToSchema)]
pub struct SessionFigures {
    pub total_created: u64,
    pub total_deleted: u64,
    pub active: usize,
    pub operations_total: u64,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Performance {
    pub total_requests: u64,
    pub total_errors: u64,
    pub error_rate: f64,
    /// Seconds.
    pub average_response_time: f64,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Resources {
    /// Of all cores, 0 to 100.
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct DatabaseFigures {
    pub operations: u64,
    pub errors: u64,
    pub avg_response_time: f64,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Databases {
    pub embedded: DatabaseFigures,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Rates {
    pub requests_per_second: f64,
}

/// `GET /metrics` without a Prometheus `Accept`: KATO's JSON metrics.
#[derive(Serialize, ToSchema)]
pub struct KatoMetrics {
    /// Seconds since the epoch.
    pub timestamp: f64,
    pub sessions: SessionFigures,
    pub performance: Performance,
    pub resources: Resources,
    pub databases: Databases,
    pub rates: Rates,
    pub processor_manager: ProcessorManager,
    pub uptime_seconds: f64,
    pub active_sessions: usize,
}

fn kato_metrics(state: &ServerState) -> KatoMetrics {
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
    KatoMetrics {
        timestamp: unix_now(),
        sessions: SessionFigures {
            total_created: sessions.created,
            total_deleted: sessions.deleted,
            active: sessions.active,
            operations_total: operations,
        },
        performance: Performance {
            total_requests: requests,
            total_errors: errors,
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            average_response_time: if requests == 0 {
                0.0
            } else {
                seconds / requests as f64
            },
        },
        resources: Resources {
            cpu_percent: rate("cpu_percent"),
            memory_percent: memory_percent(),
            disk_percent: system::disk_percent(&state.data_dir),
        },
        databases: Databases {
            embedded: DatabaseFigures {
                operations,
                errors: 0,
                avg_response_time: 0.0,
            },
        },
        rates: Rates {
            requests_per_second: rate("requests_per_second"),
        },
        processor_manager: processor_manager(state),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        active_sessions: sessions.active,
    }
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
    let rss = system::rss_bytes() as f64;
    values.insert("memory_rss_bytes", rss);
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
    values.insert("load_average_1m", system::load_average_1m());
    values.insert("memory_used_mb", rss / (1024.0 * 1024.0));
    values.insert(
        "session_operations",
        state.metrics.total("kato_session_operations_total"),
    );
    state.series.record(values);
}

/// The session store, as KATO's `/status` describes it.
#[derive(Serialize, ToSchema)]
pub struct SessionStoreStatus {
    pub total_sessions: usize,
    pub active_sessions: usize,
    pub expired_sessions: u64,
    #[schema(value_type = String)]
    pub backend: &'static str,
    pub redis_url: Option<String>,
}

/// `GET /status`
#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub base_processor_id: String,
    pub uptime_seconds: f64,
    pub sessions: SessionStoreStatus,
    pub processors: ProcessorManager,
    #[schema(value_type = String)]
    pub version: &'static str,
    #[schema(value_type = String)]
    pub kato_version: &'static str,
}

/// `GET /status`
pub async fn status(State(state): State<Arc<ServerState>>) -> Response {
    let sessions = state.kato.session_counts();
    to_json(&Status {
        status: "healthy",
        base_processor_id: state.kato.patterns().defaults().service_name.clone(),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        sessions: SessionStoreStatus {
            total_sessions: sessions.held,
            active_sessions: sessions.active,
            expired_sessions: sessions.expired,
            backend: "memory",
            redis_url: None,
        },
        processors: processor_manager(&state),
        version: VERSION,
        kato_version: KATO_VERSION,
    })
}

lax::request! {
    /// The time range of KATO's monitoring reads.
    pub struct MinutesQuery {
        /// Minutes back from now.
        pub minutes: Lax<lax::kato::Int<{ i64::MIN }, { i64::MAX }>> = 10,
    }
}

/// The `minutes` query parameter (default 10), or FastAPI's 422.
fn minutes(query: Option<&str>) -> Result<i64, ApiError> {
    lax::query::<MinutesQuery>(query.unwrap_or(""))
        .map(|q| q.minutes())
        .map_err(|problems| ApiError::invalid(Dialect::Kato, &problems))
}

/// One sampled value.
#[derive(Serialize, ToSchema)]
pub struct Point {
    /// Seconds since the epoch.
    pub timestamp: f64,
    pub value: f64,
    /// Always empty (KATO's points carry the labels of the request they measured).
    pub labels: BTreeMap<String, String>,
}

impl Point {
    fn of(sample: &system::Sample, source: &str) -> Option<Point> {
        sample.values.get(source).map(|value| Point {
            timestamp: sample.unix,
            value: *value,
            labels: BTreeMap::new(),
        })
    }
}

/// The figures KATO's health rules read.
#[derive(Serialize, ToSchema)]
pub struct StatusFigures {
    pub cpu_percent: Option<f64>,
    pub memory_percent: Option<f64>,
    pub error_rate_per_min: Option<f64>,
}

/// KATO's `current_status`: its health rules over the latest sample.
#[derive(Serialize, ToSchema)]
pub struct CurrentStatus {
    /// `healthy`, `degraded` or `unhealthy`.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub issues: Vec<String>,
    pub metrics: StatusFigures,
    /// ISO 8601 with the UTC offset.
    pub timestamp: String,
    pub uptime_seconds: f64,
}

fn current_status(state: &ServerState) -> CurrentStatus {
    let latest = state.series.latest();
    let sampled = |name| latest.as_ref().and_then(|s| s.values.get(name).copied());
    let errors_per_second = error_rate(state);
    let (cpu, memory) = (sampled("cpu_percent"), sampled("memory_percent"));
    let (status, issues) = resource_health(cpu, memory, errors_per_second);
    CurrentStatus {
        status,
        issues,
        metrics: StatusFigures {
            cpu_percent: cpu,
            memory_percent: memory,
            error_rate_per_min: errors_per_second.map(|rate| rate * 60.0),
        },
        timestamp: iso_utc_offset(SystemTime::now()),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct StatsSummary {
    pub sessions: SessionFigures,
    pub performance: Performance,
    pub resources: Resources,
    pub databases: Databases,
}

/// `GET /stats`: every sampled series of the time range.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    pub time_range_minutes: i64,
    pub timestamp: f64,
    pub processor_manager: ProcessorManager,
    pub current_status: CurrentStatus,
    /// One list of points per series: mneme's names (`cpu_percent`, `active_sessions`, ...)
    /// and KATO's (`response_time`, `kato_cpu_usage_percent`, ...).
    pub time_series: BTreeMap<String, Vec<Point>>,
    pub summary: StatsSummary,
    /// Always null (KATO's error text when its collector failed).
    pub error: Option<String>,
}

/// `GET /stats?minutes=10`
pub async fn stats(
    State(state): State<Arc<ServerState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let minutes = minutes(query.as_deref())?;
    let samples = state.series.since(minutes as f64);
    let time_series = system::series_names()
        .map(|(name, source)| {
            let points = samples
                .iter()
                .filter_map(|s| Point::of(s, source))
                .collect();
            (name.to_owned(), points)
        })
        .collect();
    let current = kato_metrics(&state);
    Ok(to_json(&Stats {
        time_range_minutes: minutes,
        timestamp: unix_now(),
        processor_manager: processor_manager(&state),
        current_status: current_status(&state),
        time_series,
        summary: StatsSummary {
            sessions: current.sessions,
            performance: current.performance,
            resources: current.resources,
            databases: current.databases,
        },
        error: None,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct MetricStatistics {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
}

/// `GET /metrics/{name}`: one sampled series.
#[derive(Serialize, ToSchema)]
pub struct Metric {
    pub metric_name: String,
    pub time_range_minutes: i64,
    pub timestamp: f64,
    pub statistics: MetricStatistics,
    pub data_points: Vec<Point>,
}

/// `GET /metrics/{name}?minutes=10`
pub async fn metric(
    State(state): State<Arc<ServerState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let minutes = minutes(query.as_deref())?;
    let points: Vec<Point> = match system::series_source(&name) {
        Some(source) => state
            .series
            .since(minutes as f64)
            .iter()
            .filter_map(|s| Point::of(s, source))
            .collect(),
        None => Vec::new(),
    };
    if points.is_empty() {
        return Err(ApiError::detail(
            StatusCode::NOT_FOUND,
            format!("No data available for metric '{name}' in the last {minutes} minutes"),
        ));
    }
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    Ok(to_json(&Metric {
        metric_name: name,
        time_range_minutes: minutes,
        timestamp: unix_now(),
        statistics: MetricStatistics {
            count: values.len(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            avg: values.iter().sum::<f64>() / values.len() as f64,
        },
        data_points: points,
    }))
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

/// `GET /percept-data` (deprecated).
#[derive(Serialize, ToSchema)]
pub struct DeprecatedPercept {
    /// Always empty.
    pub percept_data: BTreeMap<String, Value>,
    pub node_id: String,
    #[schema(value_type = String)]
    pub warning: &'static str,
}

/// The empty cognition data of the deprecated node-level route.
#[derive(Serialize, ToSchema)]
pub struct EmptyCognition {
    pub predictions: Vec<Value>,
    pub emotives: BTreeMap<String, Value>,
    pub symbols: Vec<String>,
    #[schema(value_type = String)]
    pub command: &'static str,
    pub metadata: BTreeMap<String, Value>,
    pub path: Vec<String>,
    pub strings: Vec<String>,
    pub vectors: Vec<Value>,
    pub short_term_memory: Vec<Value>,
}

/// `GET /cognition-data` (deprecated).
#[derive(Serialize, ToSchema)]
pub struct DeprecatedCognition {
    pub cognition_data: EmptyCognition,
    pub node_id: String,
    #[schema(value_type = String)]
    pub warning: &'static str,
}

/// `GET /percept-data` (deprecated): an empty structure and a warning.
pub async fn deprecated_percept(
    State(state): State<Arc<ServerState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    to_json(&DeprecatedPercept {
        percept_data: BTreeMap::new(),
        node_id: node_of(&state, query.as_deref(), &headers),
        warning: DEPRECATED,
    })
}

/// `GET /cognition-data` (deprecated): an empty structure and a warning.
pub async fn deprecated_cognition(
    State(state): State<Arc<ServerState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    to_json(&DeprecatedCognition {
        cognition_data: EmptyCognition {
            predictions: Vec::new(),
            emotives: BTreeMap::new(),
            symbols: Vec::new(),
            command: "",
            metadata: BTreeMap::new(),
            path: Vec::new(),
            strings: Vec::new(),
            vectors: Vec::new(),
            short_term_memory: Vec::new(),
        },
        node_id: node_of(&state, query.as_deref(), &headers),
        warning: DEPRECATED,
    })
}

/// Unknown routes: KnowledgeBeast's 404 body under `/api`, KATO's elsewhere.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
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
