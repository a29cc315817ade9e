//! KnowledgeBeast's API v1 (`/api/v1/*`) over the knowledge base: query (with limit, offset
//! and a truthful `cached`), pagination, incremental ingest of named files, warm-up, cache,
//! stats, health, heartbeat (a real periodic re-scan) and the single `default` collection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::Response;
use mneme_kb::{Alpha, ErrorKind, Fusion, Hit, NoProgress, Ranking, SearchRequest};
use serde::Serialize;
use serde_json::{Value, json};

use super::ServerState;
use super::common::{VERSION, iso_now, json_response, kb_not_found};
use super::kb_request::{Fields, check_file_path, check_query, detail, object};

/// One hit as KnowledgeBeast's `QueryResult`; the optional scores are filled in.
#[derive(Serialize)]
pub struct QueryResult<'a> {
    pub doc_id: &'a str,
    pub content: &'a str,
    pub name: &'a str,
    pub path: &'a str,
    pub kb_dir: &'a str,
    pub vector_score: Option<f32>,
    pub rerank_score: Option<f32>,
    pub final_score: f32,
    pub rank: usize,
    pub title: &'a str,
    pub heading_path: &'a [String],
}

impl<'a> QueryResult<'a> {
    pub fn of(hit: &'a Hit, rank: usize) -> QueryResult<'a> {
        QueryResult {
            doc_id: &hit.doc_id,
            content: hit.content.as_deref().unwrap_or(&hit.passage),
            name: &hit.name,
            path: &hit.path,
            kb_dir: &hit.kb_dir,
            vector_score: None,
            rerank_score: None,
            final_score: hit.score,
            rank,
            title: &hit.title,
            heading_path: &hit.heading_path,
        }
    }
}

#[derive(Serialize)]
struct QueryResponse<'a> {
    results: Vec<QueryResult<'a>>,
    count: usize,
    cached: bool,
    query: &'a str,
    metadata: Value,
}

#[derive(Serialize)]
struct Pagination {
    total_results: usize,
    total_pages: usize,
    current_page: usize,
    page_size: usize,
    has_next: bool,
    has_previous: bool,
}

#[derive(Serialize)]
struct PaginatedResponse<'a> {
    results: Vec<QueryResult<'a>>,
    count: usize,
    cached: bool,
    query: &'a str,
    pagination: Pagination,
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = axum::response::IntoResponse::into_response((status, bytes));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `mode`, `alpha` and `fusion` of a query body: `keyword` (BM25), `terms`
/// (KnowledgeBeast's distinct-term count), `vector`, or `hybrid` (alpha in [0, 1], default
/// the configured 0.7; `fusion` `weighted` or `rrf`). Without a model, hybrid (also the
/// default) is the keyword path, as in KnowledgeBeast with vectors off; `vector` is an error.
pub(crate) fn ranking(fields: &mut Fields<'_>, has_model: bool, default_alpha: f64) -> Ranking {
    let mode = fields.string("mode", false, 1, 20);
    let alpha = fields.float("alpha", 0.0, 1.0).unwrap_or(default_alpha);
    let alpha = Alpha::new(alpha as f32).unwrap_or_default();
    let fusion = match fields.string("fusion", false, 1, 20).as_deref() {
        None | Some("weighted") => Fusion::Weighted(alpha),
        Some("rrf") => Fusion::Rrf(alpha),
        Some(other) => {
            fields.problems.push(
                "body.fusion",
                format!("Value error, unknown fusion {other:?}: use weighted or rrf"),
            );
            Fusion::Weighted(alpha)
        }
    };
    match mode.as_deref() {
        Some("keyword") | Some("bm25") => Ranking::Bm25,
        Some("terms") => Ranking::Terms,
        None | Some("hybrid") if has_model => Ranking::Hybrid(fusion),
        None | Some("hybrid") => Ranking::Bm25,
        Some("vector") | Some("semantic") => Ranking::Vector,
        Some(other) => {
            fields.problems.push(
                "body.mode",
                format!(
                    "Value error, unknown mode {other:?}: use keyword, vector, hybrid or terms"
                ),
            );
            Ranking::Bm25
        }
    }
}

/// Runs `work` where it may block: a vector or hybrid query may embed its text (milliseconds
/// of CPU), which must not stall the other connections served by this async thread.
pub(crate) fn heavy<T>(ranking: Ranking, work: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if ranking.uses_vectors() && multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// A failed query, in KnowledgeBeast's shape, with the status of the error table.
pub(super) fn search_failed(err: &mneme_kb::Error) -> Response {
    let status = super::errors::kb(err.kind());
    if status.is_server_error() {
        detail(status, format!("Query failed: {err}"))
    } else {
        detail(status, err.to_string())
    }
}

fn record_query(state: &ServerState, started: Instant, cached: bool, ok: bool) {
    let status = if ok { "success" } else { "error" };
    state.metrics.observe(
        "kb_query_duration_seconds",
        "Knowledge-base query latency",
        vec![
            ("operation", "query".to_owned()),
            ("status", status.to_owned()),
        ],
        started.elapsed().as_secs_f64(),
    );
    let operation = if cached { "hit" } else { "miss" };
    state.metrics.add(
        "kb_cache_operations_total",
        "Query-cache lookups by outcome",
        vec![
            ("operation", operation.to_owned()),
            ("cache_type", "lru".to_owned()),
        ],
        1.0,
    );
}

/// `POST /api/v1/query`
pub async fn query(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let query = check_query(&mut fields, "query");
    let use_cache = fields.boolean("use_cache", true);
    // The web UI of KnowledgeBeast sends `n_results`.
    let default_limit = fields.int("n_results", 10, 1, 100);
    let limit = fields.int("limit", default_limit, 1, 100) as usize;
    let offset = fields.int("offset", 0, 0, 1_000_000) as usize;
    fields.boolean("rerank", false);
    fields.int("rerank_top_k", 50, 1, 100);
    fields.float("diversity", 0.0, 1.0);
    let full = fields.boolean("full_content", false);
    let ranking = ranking(
        &mut fields,
        state.knowledge.kb.has_embedder() && state.knowledge.kb.has_vectors(),
        state.knowledge.settings.hybrid_alpha,
    );
    if let Err(response) = fields.finish() {
        return response;
    }
    let query = query.unwrap_or_default();
    let started = Instant::now();
    let request = SearchRequest {
        query: &query,
        ranking,
        limit,
        offset,
        with_content: full,
        with_total: false,
        use_cache,
        with_snippets: false,
    };
    match heavy(ranking, || state.knowledge.search(&request)) {
        Ok(outcome) => {
            record_query(&state, started, outcome.cached, true);
            let results: Vec<QueryResult<'_>> = outcome
                .results
                .hits
                .iter()
                .enumerate()
                .map(|(i, hit)| QueryResult::of(hit, offset + i + 1))
                .collect();
            let response = QueryResponse {
                count: results.len(),
                results,
                cached: outcome.cached,
                query: &query,
                metadata: json!({"mode": ranking.name(), "limit": limit, "offset": offset, "generation": outcome.results.generation}),
            };
            to_json(StatusCode::OK, &response)
        }
        Err(err) => {
            record_query(&state, started, false, false);
            search_failed(&err)
        }
    }
}

/// `POST /api/v1/query/paginated`
pub async fn query_paginated(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let query = check_query(&mut fields, "query");
    let use_cache = fields.boolean("use_cache", true);
    let page = fields.int("page", 1, 1, 1_000_000) as usize;
    let page_size = fields.int("page_size", 10, 1, 100) as usize;
    fields.boolean("rerank", false);
    fields.int("rerank_top_k", 50, 1, 100);
    fields.float("diversity", 0.0, 1.0);
    let full = fields.boolean("full_content", false);
    let ranking = ranking(
        &mut fields,
        state.knowledge.kb.has_embedder() && state.knowledge.kb.has_vectors(),
        state.knowledge.settings.hybrid_alpha,
    );
    if let Err(response) = fields.finish() {
        return response;
    }
    let query = query.unwrap_or_default();
    let started = Instant::now();
    let request = SearchRequest {
        query: &query,
        ranking,
        limit: page_size,
        offset: (page - 1) * page_size,
        with_content: full,
        with_total: true,
        use_cache,
        with_snippets: false,
    };
    let outcome = match heavy(ranking, || state.knowledge.search(&request)) {
        Ok(outcome) => outcome,
        Err(err) => {
            record_query(&state, started, false, false);
            return search_failed(&err);
        }
    };
    record_query(&state, started, outcome.cached, true);
    let total = outcome.results.total.unwrap_or(outcome.results.hits.len());
    let total_pages = total.div_ceil(page_size).max(1);
    if total > 0 && page > total_pages {
        return detail(
            StatusCode::BAD_REQUEST,
            format!("Page {page} exceeds total pages {total_pages}"),
        );
    }
    let offset = (page - 1) * page_size;
    let results: Vec<QueryResult<'_>> = outcome
        .results
        .hits
        .iter()
        .enumerate()
        .map(|(i, hit)| QueryResult::of(hit, offset + i + 1))
        .collect();
    let response = PaginatedResponse {
        count: results.len(),
        results,
        cached: outcome.cached,
        query: &query,
        pagination: Pagination {
            total_results: total,
            total_pages,
            current_page: page,
            page_size,
            has_next: page < total_pages,
            has_previous: page > 1,
        },
    };
    to_json(StatusCode::OK, &response)
}

/// Why a file cannot be ingested through the API, as an answer.
pub(super) fn resolve_file(state: &ServerState, raw: &str) -> Result<PathBuf, Response> {
    let absolute = cwd_join(Path::new(raw));
    let dirs = state.knowledge.knowledge_dirs();
    let outside = || {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        detail(
            StatusCode::FORBIDDEN,
            format!(
                "File is outside the knowledge directories ({}): {raw}; add its directory to KB_KNOWLEDGE_DIRS to ingest it",
                shown.join(", ")
            ),
        )
    };
    // The path is checked before the file is looked at, so that the answer for a path outside
    // the knowledge dirs does not tell whether it exists. Where a path inside leads (links)
    // is checked again once it is resolved.
    let lexical = normalize(&absolute);
    let inside_lexically = dirs.iter().any(|dir| {
        lexical.starts_with(normalize(&cwd_join(dir)))
            || dir.canonicalize().is_ok_and(|dir| lexical.starts_with(dir))
    });
    if !inside_lexically {
        return Err(outside());
    }
    if !absolute.exists() {
        return Err(kb_not_found(&format!("404: File not found: {raw}")));
    }
    if !absolute.is_file() {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            format!("Path is not a file: {raw}"),
        ));
    }
    let canonical = absolute
        .canonicalize()
        .map_err(|err| detail(StatusCode::BAD_REQUEST, format!("Cannot read {raw}: {err}")))?;
    let inside = dirs
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .any(|d| canonical.starts_with(&d));
    if !inside {
        return Err(outside());
    }
    Ok(canonical)
}

fn cwd_join(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    }
}

/// `path` with `.` and `..` resolved by name, without reading the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

async fn ingest_blocking(
    state: &Arc<ServerState>,
    files: Vec<PathBuf>,
) -> Result<mneme_kb::IngestReport, Response> {
    let worker = state.clone();
    let started = Instant::now();
    let result =
        tokio::task::spawn_blocking(move || worker.knowledge.ingest_files(&files, &NoProgress))
            .await;
    let outcome = match &result {
        Ok(Ok(_)) => "success",
        _ => "error",
    };
    state.metrics.add(
        "kb_ingests_total",
        "Ingest requests by outcome",
        vec![("status", outcome.to_owned())],
        1.0,
    );
    state.metrics.observe(
        "kb_ingest_duration_seconds",
        "Ingest latency",
        Vec::new(),
        started.elapsed().as_secs_f64(),
    );
    match result {
        Ok(Ok(report)) => {
            state.metrics.add(
                "kb_documents_ingested_total",
                "Documents added or updated by ingests",
                Vec::new(),
                (report.added + report.updated) as f64,
            );
            Ok(report)
        }
        Ok(Err(err)) if err.kind() == ErrorKind::Busy => {
            Err(detail(StatusCode::CONFLICT, err.to_string()))
        }
        Ok(Err(err)) => Err(detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Ingestion failed: {err}"),
        )),
        Err(_) => Err(detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Ingestion failed: the ingest task stopped",
        )),
    }
}

/// `POST /api/v1/ingest`: only the named file is read and indexed.
pub async fn ingest(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let file_path = fields.string("file_path", true, 1, 4096);
    if let Some(path) = &file_path {
        check_file_path(&mut fields, "body.file_path", path);
    }
    fields.object("metadata");
    if let Err(response) = fields.finish() {
        return response;
    }
    let file_path = file_path.unwrap_or_default();
    let resolved = match resolve_file(&state, &file_path) {
        Ok(path) => path,
        Err(response) => return response,
    };
    let report = match ingest_blocking(&state, vec![resolved.clone()]).await {
        Ok(report) => report,
        Err(response) => return response,
    };
    if let Some((_, problem)) = report.problems.first() {
        return detail(
            StatusCode::BAD_REQUEST,
            format!("Ingestion failed: {file_path}: {problem}"),
        );
    }
    let doc_id = doc_id_of(&state, &resolved).unwrap_or_else(|| file_path.clone());
    let name = resolved
        .file_name()
        .map_or_else(|| file_path.clone(), |n| n.to_string_lossy().into_owned());
    json_response(
        StatusCode::OK,
        &json!({"success": true, "file_path": file_path, "doc_id": doc_id, "message": format!("Successfully ingested {name}")}),
    )
}

/// The doc_id the index gave `path` (relative to its knowledge directory's parent).
fn doc_id_of(state: &ServerState, path: &Path) -> Option<String> {
    let dirs = state.knowledge.knowledge_dirs();
    let dir = dirs
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .find(|d| path.starts_with(d))?;
    let base = dir.parent().unwrap_or(&dir);
    let relative = path.strip_prefix(base).ok()?;
    let id = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    state.knowledge.kb.document(&id).map(|e| e.doc_id)
}

/// `POST /api/v1/batch-ingest`: one incremental ingest of the files that exist.
pub async fn batch_ingest(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let paths = fields.strings("file_paths", true, 1, 100);
    for (i, path) in paths.iter().flatten().enumerate() {
        check_file_path(&mut fields, &format!("body.file_paths.{i}"), path);
    }
    fields.object("metadata");
    if let Err(response) = fields.finish() {
        return response;
    }
    let paths = paths.unwrap_or_default();
    let mut failed_files = Vec::new();
    let mut resolved = Vec::new();
    for raw in &paths {
        match resolve_file(&state, raw) {
            Ok(path) => resolved.push((raw.clone(), path)),
            Err(_) => failed_files.push(raw.clone()),
        }
    }
    if !resolved.is_empty() {
        let files = resolved.iter().map(|(_, p)| p.clone()).collect();
        let report = match ingest_blocking(&state, files).await {
            Ok(report) => report,
            Err(response) => return response,
        };
        for (raw, path) in &resolved {
            if report.problems.iter().any(|(p, _)| p == path) {
                failed_files.push(raw.clone());
            }
        }
    }
    let total = paths.len();
    let failed = failed_files.len();
    let successful = total - failed;
    json_response(
        StatusCode::OK,
        &json!({
            "success": failed == 0,
            "total_files": total,
            "successful": successful,
            "failed": failed,
            "failed_files": failed_files,
            "message": format!("Batch ingestion completed: {successful}/{total} successful"),
        }),
    )
}

/// `POST /api/v1/warm`: an incremental ingest of the knowledge dirs (a full rebuild with
/// `force_rebuild`), then the warming queries.
pub async fn warm(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let map = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match object(&body) {
            Ok(map) => map,
            Err(response) => return response,
        }
    };
    let mut fields = Fields::new(&map);
    let rebuild = fields.boolean("force_rebuild", false) || fields.boolean("rebuild", false);
    if let Err(response) = fields.finish() {
        return response;
    }
    let worker = state.clone();
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let options = mneme_kb::IngestOptions {
            rebuild,
            ..Default::default()
        };
        let report = worker.knowledge.ingest(&[], options, &NoProgress)?;
        let warmed = if report.committed && worker.knowledge.settings.auto_warm {
            // `ingest` already ran the warming queries.
            Ok(())
        } else {
            worker.knowledge.warm().map(|_| ())
        };
        warmed.map(|()| report)
    })
    .await;
    match result {
        Ok(Ok(report)) => {
            let elapsed = started.elapsed().as_secs_f64();
            json_response(
                StatusCode::OK,
                &json!({
                    "success": true,
                    "warm_time": elapsed,
                    "queries_executed": state.knowledge.query_stats().warm_queries,
                    "documents_loaded": report.documents,
                    "message": format!("Knowledge base warmed in {elapsed:.2}s"),
                }),
            )
        }
        Ok(Err(err)) if err.kind() == ErrorKind::Busy => {
            detail(StatusCode::CONFLICT, err.to_string())
        }
        Ok(Err(err)) => detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Warming failed: {err}"),
        ),
        Err(_) => detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Warming failed: the task stopped",
        ),
    }
}

/// `POST /api/v1/cache/clear`
pub async fn cache_clear(State(state): State<Arc<ServerState>>) -> Response {
    let cleared = state.knowledge.kb.clear_cache();
    json_response(
        StatusCode::OK,
        &json!({"success": true, "cleared_count": cleared, "message": format!("Cache cleared: {cleared} entries removed")}),
    )
}

fn age(age: Option<Duration>) -> String {
    match age {
        None => "never".to_owned(),
        Some(age) => format!("{:.1}s ago", age.as_secs_f64()),
    }
}

/// `GET /api/v1/stats`
pub async fn stats(State(state): State<Arc<ServerState>>) -> Response {
    let stats = state.knowledge.kb.stats();
    let process = state.knowledge.query_stats();
    let cache = stats.cache;
    let dirs: Vec<String> = state
        .knowledge
        .knowledge_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "queries": cache.queries,
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "cache_hit_rate": format!("{:.1}%", cache.hit_rate() * 100.0),
            "warm_queries": process.warm_queries,
            "last_warm_time": process.last_warm_time.map(|d| d.as_secs_f64()),
            "total_documents": stats.documents,
            "total_terms": stats.terms,
            "documents": stats.documents,
            "terms": stats.terms,
            "cached_queries": cache.entries,
            "cache_capacity": cache.capacity,
            "cache_utilization": format!("{:.1}%", cache.entries as f64 * 100.0 / cache.capacity.max(1) as f64),
            "last_access_age": age(process.last_access),
            "knowledge_dirs": dirs,
            "total_queries": cache.hits + cache.misses,
            "chunks": stats.chunks,
            "generation": stats.generation,
            "vectors": stats.vectors,
            "embedding_model": stats.embedding_model,
            "query_embedding_cache_hits": stats.query_vector_hits,
            "query_embedding_cache_misses": stats.query_vector_misses,
        }),
    )
}

/// `GET /api/v1/health`
pub async fn health(State(state): State<Arc<ServerState>>) -> Response {
    let dirs_exist = state.knowledge.knowledge_dirs().iter().any(|d| d.is_dir());
    let index_readable = state.knowledge.kb.dir().is_dir();
    let status = if dirs_exist && index_readable {
        "healthy"
    } else {
        "degraded"
    };
    json_response(
        StatusCode::OK,
        &json!({"status": status, "version": VERSION, "kb_initialized": true, "timestamp": iso_now()}),
    )
}

/// `GET /api/v1/heartbeat/status`
pub async fn heartbeat_status(State(state): State<Arc<ServerState>>) -> Response {
    json_response(StatusCode::OK, &state.heartbeat.status())
}

/// `POST /api/v1/heartbeat/start`
pub async fn heartbeat_start(State(state): State<Arc<ServerState>>) -> Response {
    let started = Heartbeat::start(&state);
    let message = if started {
        "Heartbeat started successfully"
    } else {
        "Heartbeat already running"
    };
    json_response(
        StatusCode::OK,
        &json!({"success": true, "message": message, "running": true}),
    )
}

/// `POST /api/v1/heartbeat/stop`
pub async fn heartbeat_stop(State(state): State<Arc<ServerState>>) -> Response {
    let stopped = state.heartbeat.stop();
    let message = if stopped {
        "Heartbeat stopped successfully"
    } else {
        "Heartbeat not running"
    };
    json_response(
        StatusCode::OK,
        &json!({"success": true, "message": message, "running": false}),
    )
}

fn collection(state: &ServerState) -> Value {
    let stats = state.knowledge.kb.stats();
    json!({"name": "default", "document_count": stats.documents, "term_count": stats.terms, "cache_size": stats.cache.entries})
}

/// `GET /api/v1/collections`
pub async fn collections(State(state): State<Arc<ServerState>>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"collections": [collection(&state)], "count": 1}),
    )
}

/// `GET /api/v1/collections/{name}`
pub async fn collection_info(
    State(state): State<Arc<ServerState>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if name != "default" {
        return kb_not_found(&format!("404: Collection not found: {name}"));
    }
    json_response(StatusCode::OK, &collection(&state))
}

/// The periodic re-scan of the knowledge dirs started by `/heartbeat/start`.
#[derive(Debug, Default)]
pub struct Heartbeat {
    running: std::sync::atomic::AtomicBool,
    count: std::sync::atomic::AtomicU64,
    last: std::sync::Mutex<Option<String>>,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    interval: std::sync::atomic::AtomicU64,
}

impl Heartbeat {
    pub fn new(interval_seconds: u64) -> Heartbeat {
        let heartbeat = Heartbeat::default();
        heartbeat
            .interval
            .store(interval_seconds, Ordering::Relaxed);
        heartbeat
    }

    pub fn status(&self) -> Value {
        let running = self.running.load(Ordering::Relaxed);
        json!({
            "running": running,
            "interval": self.interval.load(Ordering::Relaxed),
            "heartbeat_count": self.count.load(Ordering::Relaxed),
            "last_heartbeat": *self.last.lock().unwrap_or_else(|p| p.into_inner()),
        })
    }

    /// Starts the re-scan task; false when it was already running.
    pub fn start(state: &Arc<ServerState>) -> bool {
        let heartbeat = &state.heartbeat;
        if heartbeat.running.swap(true, Ordering::SeqCst) {
            return false;
        }
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        *heartbeat.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop);
        let state = state.clone();
        let interval = Duration::from_secs(heartbeat.interval.load(Ordering::Relaxed).max(1));
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                let worker = state.clone();
                let result = tokio::task::spawn_blocking(move || {
                    worker
                        .knowledge
                        .ingest(&[], mneme_kb::IngestOptions::default(), &NoProgress)
                })
                .await;
                match result {
                    Ok(Ok(report)) => tracing::info!(
                        "heartbeat re-scan: {} added, {} updated, {} removed, {} documents",
                        report.added,
                        report.updated,
                        report.removed,
                        report.documents
                    ),
                    Ok(Err(err)) => tracing::warn!("heartbeat re-scan failed: {err}"),
                    Err(_) => tracing::warn!("heartbeat re-scan task stopped"),
                }
                state.heartbeat.count.fetch_add(1, Ordering::Relaxed);
                *state
                    .heartbeat
                    .last
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(iso_now());
            }
        });
        true
    }

    /// Stops the re-scan task; false when it was not running.
    pub fn stop(&self) -> bool {
        if !self.running.swap(false, Ordering::SeqCst) {
            return false;
        }
        if let Some(stop) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = stop.send(());
        }
        true
    }
}
