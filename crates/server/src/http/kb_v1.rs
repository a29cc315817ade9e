//! KnowledgeBeast's API v1 (`/api/v1/*`) over the knowledge base: query (with limit, offset
//! and a truthful `cached`), pagination, incremental ingest of named files, warm-up, cache,
//! stats, health, heartbeat (a real periodic re-scan) and the single `default` collection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::Response;
use mneme_kb::{Hit, NoProgress, SearchRequest};
use serde::Serialize;
use utoipa::ToSchema;

use super::ServerState;
use super::common::{VERSION, iso_now, to_json};
use super::kb_request::{
    BatchIngestRequest, IngestRequest, KbBody, KbOptionalBody, PaginatedQueryRequest, QueryRequest,
    WarmRequest, detail, ranking,
};
use super::work::{self, Lane};
use crate::error::ApiError;

/// One hit as KnowledgeBeast's `QueryResult`; the optional scores are filled in.
#[derive(Serialize, ToSchema)]
pub struct QueryResult<'a> {
    /// The document: its path relative to its knowledge directory's parent.
    #[schema(value_type = String)]
    pub doc_id: &'a str,
    /// The best-matching passage (the whole document with `full_content`).
    #[schema(value_type = String)]
    pub content: &'a str,
    #[schema(value_type = String)]
    pub name: &'a str,
    #[schema(value_type = String)]
    pub path: &'a str,
    #[schema(value_type = String)]
    pub kb_dir: &'a str,
    /// Always null (as in KnowledgeBeast).
    #[schema(value_type = Option<f32>)]
    pub vector_score: Option<f32>,
    /// Always null (no reranker).
    #[schema(value_type = Option<f32>)]
    pub rerank_score: Option<f32>,
    /// The hit's score under the query's ranking.
    pub final_score: f32,
    /// Position in the whole ranking, from 1.
    pub rank: usize,
    #[schema(value_type = String)]
    pub title: &'a str,
    /// Headings above the passage, outermost first.
    #[schema(value_type = Vec<String>)]
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

/// How a v1 query was answered.
#[derive(Serialize, ToSchema)]
pub struct QueryMetadata {
    /// The ranking used (`keyword` when hybrid had no vectors).
    #[schema(value_type = String)]
    pub mode: &'static str,
    pub limit: usize,
    pub offset: usize,
    /// The index generation that answered.
    pub generation: u64,
}

/// KnowledgeBeast's `QueryResponse`.
#[derive(Serialize, ToSchema)]
pub struct QueryResponse<'a> {
    pub results: Vec<QueryResult<'a>>,
    pub count: usize,
    /// Whether the result cache answered.
    pub cached: bool,
    #[schema(value_type = String)]
    pub query: &'a str,
    /// Null on project queries.
    pub metadata: Option<QueryMetadata>,
}

/// Where a page lies in the whole ranking.
#[derive(Serialize, ToSchema)]
pub struct Pagination {
    pub total_results: usize,
    pub total_pages: usize,
    pub current_page: usize,
    pub page_size: usize,
    pub has_next: bool,
    pub has_previous: bool,
}

/// KnowledgeBeast's `PaginatedQueryResponse`.
#[derive(Serialize, ToSchema)]
pub struct PaginatedResponse<'a> {
    pub results: Vec<QueryResult<'a>>,
    pub count: usize,
    pub cached: bool,
    #[schema(value_type = String)]
    pub query: &'a str,
    pub pagination: Pagination,
}

/// KnowledgeBeast's `IngestResponse`.
#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    pub success: bool,
    /// The path as given (`inline_content` for inline content).
    pub file_path: String,
    pub doc_id: String,
    pub message: String,
}

/// KnowledgeBeast's `BatchIngestResponse`.
#[derive(Serialize, ToSchema)]
pub struct BatchIngestResponse {
    pub success: bool,
    pub total_files: usize,
    pub successful: usize,
    pub failed: usize,
    pub failed_files: Vec<String>,
    pub message: String,
}

/// KnowledgeBeast's `WarmResponse`.
#[derive(Serialize, ToSchema)]
pub struct WarmResponse {
    pub success: bool,
    /// Seconds.
    pub warm_time: f64,
    /// Warming queries run since the server started.
    pub queries_executed: u64,
    pub documents_loaded: usize,
    pub message: String,
}

/// `POST /api/v1/cache/clear`.
#[derive(Serialize, ToSchema)]
pub struct CacheCleared {
    pub success: bool,
    pub cleared_count: usize,
    pub message: String,
}

/// KnowledgeBeast's `StatsResponse`, with mneme's index figures.
#[derive(Serialize, ToSchema)]
pub struct StatsResponse {
    pub queries: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// A percentage with one decimal (`"50.0%"`).
    pub cache_hit_rate: String,
    pub warm_queries: u64,
    /// Seconds the last warm-up took.
    pub last_warm_time: Option<f64>,
    pub total_documents: usize,
    pub total_terms: usize,
    pub documents: usize,
    pub terms: usize,
    pub cached_queries: usize,
    pub cache_capacity: usize,
    pub cache_utilization: String,
    /// `"never"` or `"<seconds>s ago"`.
    pub last_access_age: String,
    pub knowledge_dirs: Vec<String>,
    pub total_queries: u64,
    pub chunks: u64,
    pub generation: u64,
    pub vectors: usize,
    pub embedding_model: Option<String>,
    pub query_embedding_cache_hits: u64,
    pub query_embedding_cache_misses: u64,
}

/// `GET /api/v1/health`.
#[derive(Serialize, ToSchema)]
pub struct KbHealth {
    /// `healthy`, or `degraded` without a knowledge directory or index.
    #[schema(value_type = String)]
    pub status: &'static str,
    #[schema(value_type = String)]
    pub version: &'static str,
    pub kb_initialized: bool,
    pub timestamp: String,
}

/// The answer of the heartbeat's start and stop.
#[derive(Serialize, ToSchema)]
pub struct HeartbeatChange {
    pub success: bool,
    #[schema(value_type = String)]
    pub message: &'static str,
    pub running: bool,
}

/// The state of the periodic re-scan.
#[derive(Serialize, ToSchema)]
pub struct HeartbeatStatus {
    pub running: bool,
    /// Seconds between re-scans.
    pub interval: u64,
    pub heartbeat_count: u64,
    pub last_heartbeat: Option<String>,
}

/// KnowledgeBeast's `CollectionInfo` (only `default` exists).
#[derive(Serialize, ToSchema)]
pub struct CollectionInfo {
    #[schema(value_type = String)]
    pub name: &'static str,
    pub document_count: usize,
    pub term_count: usize,
    pub cache_size: usize,
}

/// `GET /api/v1/collections`.
#[derive(Serialize, ToSchema)]
pub struct Collections {
    pub collections: Vec<CollectionInfo>,
    pub count: usize,
}

/// The lane of a query: a vector or hybrid query may embed its text (milliseconds of CPU),
/// which must not stall the other connections served by an async thread. A keyword query
/// stays inline in cluster mode too: its read of the shared log's generation (a primary-key
/// read of a fraction of a millisecond) lends the thread to the cluster's runtime
/// (`block_in_place`), which measured faster than a hand-off to a blocking thread.
pub(super) fn query_lane(ranking: mneme_kb::Ranking) -> Lane {
    if ranking.uses_vectors() {
        Lane::Cpu
    } else {
        Lane::Inline
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

/// What a v1 query asks, owned (it may move to a blocking thread).
struct Search {
    query: String,
    ranking: mneme_kb::Ranking,
    limit: usize,
    offset: usize,
    full: bool,
    with_total: bool,
    use_cache: bool,
}

async fn search(
    state: &Arc<ServerState>,
    search: Search,
) -> Result<(mneme_kb::SearchOutcome, String), ApiError> {
    let started = Instant::now();
    let lane = query_lane(search.ranking);
    let outcome = work::run(state, lane, move |s| {
        let request = SearchRequest {
            query: &search.query,
            ranking: search.ranking,
            limit: search.limit,
            offset: search.offset,
            with_content: search.full,
            with_total: search.with_total,
            use_cache: search.use_cache,
            with_snippets: false,
        };
        s.knowledge.search(&request).map(|o| (o, search.query))
    })
    .await?;
    match outcome {
        Ok((outcome, query)) => {
            record_query(state, started, outcome.cached, true);
            Ok((outcome, query))
        }
        Err(err) => {
            record_query(state, started, false, false);
            Err(ApiError::from_kb("Query failed", &err))
        }
    }
}

fn has_vectors(state: &ServerState) -> bool {
    state.knowledge.kb.has_embedder() && state.knowledge.kb.has_vectors()
}

/// `POST /api/v1/query`
pub async fn query(
    State(state): State<Arc<ServerState>>,
    KbBody(request): KbBody<QueryRequest>,
) -> Result<Response, ApiError> {
    let ranking = ranking(
        request.mode.get().copied(),
        request.alpha.get().copied(),
        request.fusion.get().copied(),
        has_vectors(&state),
        state.knowledge.settings.hybrid_alpha,
    );
    let limit = request.limit.or(request.n_results()) as usize;
    let offset = request.offset() as usize;
    let (outcome, query) = search(
        &state,
        Search {
            full: request.full_content(),
            use_cache: request.use_cache(),
            query: request.query.into_inner().unwrap_or_default(),
            ranking,
            limit,
            offset,
            with_total: false,
        },
    )
    .await?;
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
        metadata: Some(QueryMetadata {
            mode: ranking.name(),
            limit,
            offset,
            generation: outcome.results.generation,
        }),
    };
    Ok(to_json(&response))
}

/// `POST /api/v1/query/paginated`
pub async fn query_paginated(
    State(state): State<Arc<ServerState>>,
    KbBody(request): KbBody<PaginatedQueryRequest>,
) -> Result<Response, ApiError> {
    let ranking = ranking(
        request.mode.get().copied(),
        request.alpha.get().copied(),
        request.fusion.get().copied(),
        has_vectors(&state),
        state.knowledge.settings.hybrid_alpha,
    );
    let page = request.page() as usize;
    let page_size = request.page_size() as usize;
    let offset = (page - 1) * page_size;
    let (outcome, query) = search(
        &state,
        Search {
            full: request.full_content(),
            use_cache: request.use_cache(),
            query: request.query.into_inner().unwrap_or_default(),
            ranking,
            limit: page_size,
            offset,
            with_total: true,
        },
    )
    .await?;
    let total = outcome.results.total.unwrap_or(outcome.results.hits.len());
    let total_pages = total.div_ceil(page_size).max(1);
    if total > 0 && page > total_pages {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            format!("Page {page} exceeds total pages {total_pages}"),
        ));
    }
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
    Ok(to_json(&response))
}

/// Why a file cannot be ingested through the API, as an answer.
pub(super) fn resolve_file(state: &ServerState, raw: &str) -> Result<PathBuf, ApiError> {
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
        return Err(ApiError::kb_not_found(&format!(
            "404: File not found: {raw}"
        )));
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

async fn ingest_files(
    state: &Arc<ServerState>,
    files: Vec<PathBuf>,
) -> Result<mneme_kb::IngestReport, ApiError> {
    let started = Instant::now();
    let result = work::run(state, Lane::Io, move |s| {
        s.knowledge.ingest_files(&files, &NoProgress)
    })
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
    let report = result?.map_err(|err| ApiError::from_kb("Ingestion failed", &err))?;
    state.metrics.add(
        "kb_documents_ingested_total",
        "Documents added or updated by ingests",
        Vec::new(),
        (report.added + report.updated) as f64,
    );
    Ok(report)
}

/// `POST /api/v1/ingest`: only the named file is read and indexed.
pub async fn ingest(
    State(state): State<Arc<ServerState>>,
    KbBody(request): KbBody<IngestRequest>,
) -> Result<Response, ApiError> {
    let file_path = request.file_path.into_inner().unwrap_or_default();
    let resolved = resolve_file(&state, &file_path)?;
    let report = ingest_files(&state, vec![resolved.clone()]).await?;
    if let Some((_, problem)) = report.problems.first() {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            format!("Ingestion failed: {file_path}: {problem}"),
        ));
    }
    let doc_id = doc_id_of(&state, &resolved).unwrap_or_else(|| file_path.clone());
    let name = resolved
        .file_name()
        .map_or_else(|| file_path.clone(), |n| n.to_string_lossy().into_owned());
    Ok(to_json(&IngestResponse {
        success: true,
        file_path,
        doc_id,
        message: format!("Successfully ingested {name}"),
    }))
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
pub async fn batch_ingest(
    State(state): State<Arc<ServerState>>,
    KbBody(request): KbBody<BatchIngestRequest>,
) -> Result<Response, ApiError> {
    let paths = request.file_paths.into_inner().unwrap_or_default();
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
        let report = ingest_files(&state, files).await?;
        for (raw, path) in &resolved {
            if report.problems.iter().any(|(p, _)| p == path) {
                failed_files.push(raw.clone());
            }
        }
    }
    let total = paths.len();
    let failed = failed_files.len();
    let successful = total - failed;
    Ok(to_json(&BatchIngestResponse {
        success: failed == 0,
        total_files: total,
        successful,
        failed,
        failed_files,
        message: format!("Batch ingestion completed: {successful}/{total} successful"),
    }))
}

/// `POST /api/v1/warm`: an incremental ingest of the knowledge dirs (a full rebuild with
/// `force_rebuild`), then the warming queries.
pub async fn warm(
    State(state): State<Arc<ServerState>>,
    KbOptionalBody(request): KbOptionalBody<WarmRequest>,
) -> Result<Response, ApiError> {
    let rebuild = request.force_rebuild() || request.rebuild();
    let started = Instant::now();
    let report = work::run(&state, Lane::Io, move |s| {
        let options = mneme_kb::IngestOptions {
            rebuild,
            ..Default::default()
        };
        let report = s.knowledge.ingest(&[], options, &NoProgress)?;
        let warmed = if report.committed && s.knowledge.settings.auto_warm {
            // `ingest` already ran the warming queries.
            Ok(())
        } else {
            s.knowledge.warm().map(|_| ())
        };
        warmed.map(|()| report)
    })
    .await?
    .map_err(|err| ApiError::from_kb("Warming failed", &err))?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(to_json(&WarmResponse {
        success: true,
        warm_time: elapsed,
        queries_executed: state.knowledge.query_stats().warm_queries,
        documents_loaded: report.documents,
        message: format!("Knowledge base warmed in {elapsed:.2}s"),
    }))
}

/// `POST /api/v1/cache/clear`
pub async fn cache_clear(State(state): State<Arc<ServerState>>) -> Response {
    let cleared = state.knowledge.kb.clear_cache();
    to_json(&CacheCleared {
        success: true,
        cleared_count: cleared,
        message: format!("Cache cleared: {cleared} entries removed"),
    })
}

fn age(age: Option<Duration>) -> String {
    match age {
        None => "never".to_owned(),
        Some(age) => format!("{:.1}s ago", age.as_secs_f64()),
    }
}

/// `GET /api/v1/stats`
pub async fn stats(State(state): State<Arc<ServerState>>) -> Response {
    let stats = state.knowledge.current().stats();
    let process = state.knowledge.query_stats();
    let cache = stats.cache;
    let dirs: Vec<String> = state
        .knowledge
        .knowledge_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    to_json(&StatsResponse {
        queries: cache.queries,
        cache_hits: cache.hits,
        cache_misses: cache.misses,
        cache_hit_rate: format!("{:.1}%", cache.hit_rate() * 100.0),
        warm_queries: process.warm_queries,
        last_warm_time: process.last_warm_time.map(|d| d.as_secs_f64()),
        total_documents: stats.documents,
        total_terms: stats.terms,
        documents: stats.documents,
        terms: stats.terms,
        cached_queries: cache.entries,
        cache_capacity: cache.capacity,
        cache_utilization: format!(
            "{:.1}%",
            cache.entries as f64 * 100.0 / cache.capacity.max(1) as f64
        ),
        last_access_age: age(process.last_access),
        knowledge_dirs: dirs,
        total_queries: cache.hits + cache.misses,
        chunks: stats.chunks,
        generation: stats.generation,
        vectors: stats.vectors,
        embedding_model: stats.embedding_model,
        query_embedding_cache_hits: stats.query_vector_hits,
        query_embedding_cache_misses: stats.query_vector_misses,
    })
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
    to_json(&KbHealth {
        status,
        version: VERSION,
        kb_initialized: true,
        timestamp: iso_now(),
    })
}

/// `GET /api/v1/heartbeat/status`
pub async fn heartbeat_status(State(state): State<Arc<ServerState>>) -> Response {
    to_json(&state.heartbeat.status())
}

/// `POST /api/v1/heartbeat/start`
pub async fn heartbeat_start(State(state): State<Arc<ServerState>>) -> Response {
    let started = Heartbeat::start(&state);
    let message = if started {
        "Heartbeat started successfully"
    } else {
        "Heartbeat already running"
    };
    to_json(&HeartbeatChange {
        success: true,
        message,
        running: true,
    })
}

/// `POST /api/v1/heartbeat/stop`
pub async fn heartbeat_stop(State(state): State<Arc<ServerState>>) -> Response {
    let stopped = state.heartbeat.stop();
    let message = if stopped {
        "Heartbeat stopped successfully"
    } else {
        "Heartbeat not running"
    };
    to_json(&HeartbeatChange {
        success: true,
        message,
        running: false,
    })
}

fn collection(state: &ServerState) -> CollectionInfo {
    let stats = state.knowledge.current().stats();
    CollectionInfo {
        name: "default",
        document_count: stats.documents,
        term_count: stats.terms,
        cache_size: stats.cache.entries,
    }
}

/// `GET /api/v1/collections`
pub async fn collections(State(state): State<Arc<ServerState>>) -> Response {
    to_json(&Collections {
        collections: vec![collection(&state)],
        count: 1,
    })
}

/// `GET /api/v1/collections/{name}`
pub async fn collection_info(
    State(state): State<Arc<ServerState>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    if name != "default" {
        return Err(ApiError::kb_not_found(&format!(
            "404: Collection not found: {name}"
        )));
    }
    Ok(to_json(&collection(&state)))
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

    pub fn status(&self) -> HeartbeatStatus {
        HeartbeatStatus {
            running: self.running.load(Ordering::Relaxed),
            interval: self.interval.load(Ordering::Relaxed),
            heartbeat_count: self.count.load(Ordering::Relaxed),
            last_heartbeat: self.last.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
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
                let result = work::run(&state, Lane::Io, |s| {
                    s.knowledge
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
                    Err(_) => tracing::warn!("heartbeat re-scan task failed"),
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
