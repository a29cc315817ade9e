//! The route table: every path the server serves, with its handlers and, beside them, what the
//! OpenAPI document says of each operation (summary, tag, request body and query types, success
//! status). [`super::router_with`] builds the router from it and `docs.rs` builds
//! `/openapi.json` from it, so the two cannot drift; the schemas come from the request types
//! themselves (`utoipa::ToSchema`, written by `lax::request!`).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, any, delete, get, post};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::kb_request::{
    ApiKeyCreate, BatchIngestRequest, ExportQuery, IngestRequest, PaginatedQueryRequest,
    ProjectCreate, ProjectIngestRequest, ProjectQueryRequest, ProjectUpdate, QueryRequest,
    WarmRequest,
};
use super::{ServerSettings, ServerState, common, docs, kato_routes, kb_v1, kb_v2, operations, ui};
use crate::kato::request::{
    ConfigUpdate, CreateSession, ExtendQuery, NodeQuery, ObservationData, ObserveSequence,
};

pub const KB1: &str = "knowledge base (v1)";
pub const KB2: &str = "projects (v2)";
pub const KATO: &str = "pattern engine (KATO)";
pub const SERVICE: &str = "service";
/// The tags in the order the `/docs` page lists them.
pub const TAGS: [&str; 4] = [SERVICE, KB1, KB2, KATO];

/// A schema with the name it has in the document's components, and the components it uses.
pub struct Named {
    pub name: String,
    pub schema: RefOr<Schema>,
    pub nested: Vec<(String, RefOr<Schema>)>,
}

fn named<T: ToSchema>(name: &str) -> Named {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    Named {
        name: name.to_owned(),
        schema: T::schema(),
        nested,
    }
}

/// One documented operation of a route.
pub struct Op {
    /// Lower case, as OpenAPI writes it (`get`, `post`, ...).
    pub method: &'static str,
    pub summary: &'static str,
    /// The success status (`200`, `201`).
    pub status: &'static str,
    /// The JSON body's type.
    pub body: Option<fn() -> Named>,
    /// The query string's type (its fields are the query parameters).
    pub query: Option<fn() -> Named>,
    /// A multipart form instead of a JSON body (the import).
    pub multipart: bool,
    /// The success answer's type, where the answer is a typed one.
    pub answer: Option<fn() -> Named>,
    /// The success answer's media types (JSON unless said).
    pub media: &'static [&'static str],
}

const fn op(method: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        summary,
        status: "200",
        body: None,
        query: None,
        multipart: false,
        answer: None,
        media: &["application/json"],
    }
}

impl Op {
    fn body(mut self, schema: fn() -> Named) -> Op {
        self.body = Some(schema);
        self
    }

    fn query(mut self, schema: fn() -> Named) -> Op {
        self.query = Some(schema);
        self
    }

    fn answer(mut self, schema: fn() -> Named) -> Op {
        self.answer = Some(schema);
        self
    }

    fn media(mut self, media: &'static [&'static str]) -> Op {
        self.media = media;
        self
    }

    fn created(mut self) -> Op {
        self.status = "201";
        self
    }

    fn multipart(mut self) -> Op {
        self.multipart = true;
        self
    }
}

/// One path: its handlers and its documented operations. `ops` empty means the route is not
/// an endpoint of its own (only the catch-all of unknown session actions is), which the
/// document test checks.
pub struct Route {
    pub path: &'static str,
    pub tag: &'static str,
    pub ops: Vec<Op>,
    pub handler: MethodRouter<Arc<ServerState>>,
}

fn route(
    path: &'static str,
    tag: &'static str,
    handler: MethodRouter<Arc<ServerState>>,
    ops: Vec<Op>,
) -> Route {
    Route {
        path,
        tag,
        ops,
        handler,
    }
}

/// A KATO session action with a route of its own.
fn action(path: &'static str, name: &'static str, ops: Vec<Op>) -> Route {
    route(path, KATO, kato_routes::action(name), ops)
}

/// Every route of the server.
pub fn table(config: &ServerSettings) -> Vec<Route> {
    let import_limit =
        usize::try_from(super::import_body_limit(&config.import)).unwrap_or(usize::MAX);
    let node = || named::<NodeQuery>("NodeQuery");
    vec![
        // The service: both originals' shared routes.
        route("/", SERVICE, get(common::root), vec![op("get", "Service description (KnowledgeBeast and KATO fields)").answer(|| named::<common::Root>("Root"))]),
        route("/health", SERVICE, get(common::health), vec![op("get", "Health of the knowledge base, pattern engine and disk").answer(|| named::<common::Health>("Health"))]),
        route("/metrics", SERVICE, get(common::metrics), vec![op("get", "Prometheus text (Accept: text/plain) or KATO's JSON metrics").media(&["application/json", "text/plain"])]),
        route("/status", SERVICE, get(common::status), vec![op("get", "Sessions and loaded pattern nodes").answer(|| named::<common::Status>("Status"))]),
        route("/stats", SERVICE, get(common::stats), vec![op("get", "Sampled time series of the last `minutes` (default 10)").answer(|| named::<common::Stats>("Stats"))]),
        route("/metrics/{name}", SERVICE, get(common::metric), vec![op("get", "One sampled series with count, min, max and average").answer(|| named::<common::Metric>("Metric"))]),
        route("/metrics-prom", SERVICE, get(common::metrics_prometheus), vec![op("get", "Prometheus text whatever the Accept header (KATO's scrape path)").media(&["text/plain"])]),
        route("/concurrency", SERVICE, get(operations::concurrency), vec![op("get", "Requests in flight and their peak against KATO_LIMIT_CONCURRENCY").answer(|| named::<operations::Concurrency>("Concurrency"))]),
        route("/cache/stats", SERVICE, get(operations::cache_stats), vec![op("get", "KATO's pattern-cache figures (disabled: patterns live in memory)").answer(|| named::<operations::CacheStats>("CacheStats"))]),
        route("/cache/invalidate", SERVICE, post(operations::cache_invalidate), vec![op("post", "KATO's pattern-cache invalidation (disabled: nothing to drop)").query(|| named::<operations::InvalidateQuery>("InvalidateQuery")).answer(|| named::<operations::CacheInvalidated>("CacheInvalidated"))]),
        route("/distributed-stm/stats", SERVICE, get(operations::distributed_stm_stats), vec![op("get", "KATO's distributed-STM figures (disabled)").answer(|| named::<operations::DistributedStmStats>("DistributedStmStats"))]),
        route("/connection-pools", SERVICE, get(operations::connection_pools), vec![op("get", "Health of the stores this node uses (embedded, or PostgreSQL and Redis)").answer(|| named::<operations::ConnectionPools>("ConnectionPools"))]),
        route("/openapi.json", SERVICE, get(docs::openapi), vec![op("get", "This document")]),
        route("/docs", SERVICE, get(docs::swagger), vec![op("get", "The endpoints as a web page (rendered on the server)").media(&["text/html"])]),
        route("/redoc", SERVICE, get(docs::swagger), vec![op("get", "The same page as /docs").media(&["text/html"])]),
        route("/ui", SERVICE, get(ui::page), vec![op("get", "Web page: search, results and stats").media(&["text/html"])]),
        route("/ui/", SERVICE, get(ui::page), vec![op("get", "The same web page").media(&["text/html"])]),
        route("/ui/app.js", SERVICE, get(ui::script), vec![op("get", "The web page's script").media(&["text/javascript"])]),
        // KnowledgeBeast's API v1.
        route("/api/v1/query", KB1, post(kb_v1::query), vec![op("post", "Ranked search (limit, offset, mode keyword|terms|vector|hybrid; `cached` says whether the cache answered)").body(|| named::<QueryRequest>("QueryRequest")).answer(|| named::<kb_v1::QueryResponse<'static>>("QueryResponse"))]),
        route("/api/v1/query/paginated", KB1, post(kb_v1::query_paginated), vec![op("post", "Ranked search, one page").body(|| named::<PaginatedQueryRequest>("PaginatedQueryRequest")).answer(|| named::<kb_v1::PaginatedResponse<'static>>("PaginatedQueryResponse"))]),
        route("/api/v1/ingest", KB1, post(kb_v1::ingest), vec![op("post", "Ingest one file").body(|| named::<IngestRequest>("IngestRequest")).answer(|| named::<kb_v1::IngestResponse>("IngestResponse"))]),
        route("/api/v1/batch-ingest", KB1, post(kb_v1::batch_ingest), vec![op("post", "Ingest up to 100 files").body(|| named::<BatchIngestRequest>("BatchIngestRequest")).answer(|| named::<kb_v1::BatchIngestResponse>("BatchIngestResponse"))]),
        route("/api/v1/warm", KB1, post(kb_v1::warm), vec![op("post", "Warm the query cache (optionally rebuild the index)").body(|| named::<WarmRequest>("WarmRequest")).answer(|| named::<kb_v1::WarmResponse>("WarmResponse"))]),
        route("/api/v1/cache/clear", KB1, post(kb_v1::cache_clear), vec![op("post", "Clear the query cache").answer(|| named::<kb_v1::CacheCleared>("CacheCleared"))]),
        route("/api/v1/stats", KB1, get(kb_v1::stats), vec![op("get", "Knowledge-base statistics").answer(|| named::<kb_v1::StatsResponse>("StatsResponse"))]),
        route("/api/v1/health", KB1, get(kb_v1::health), vec![op("get", "Knowledge-base health").answer(|| named::<kb_v1::KbHealth>("KbHealth"))]),
        route("/api/v1/heartbeat/status", KB1, get(kb_v1::heartbeat_status), vec![op("get", "Heartbeat state").answer(|| named::<kb_v1::HeartbeatStatus>("HeartbeatStatus"))]),
        route("/api/v1/heartbeat/start", KB1, post(kb_v1::heartbeat_start), vec![op("post", "Start the heartbeat").answer(|| named::<kb_v1::HeartbeatChange>("HeartbeatChange"))]),
        route("/api/v1/heartbeat/stop", KB1, post(kb_v1::heartbeat_stop), vec![op("post", "Stop the heartbeat").answer(|| named::<kb_v1::HeartbeatChange>("HeartbeatChange"))]),
        route("/api/v1/collections", KB1, get(kb_v1::collections), vec![op("get", "Collections (only `default`)").answer(|| named::<kb_v1::Collections>("Collections"))]),
        route("/api/v1/collections/{name}", KB1, get(kb_v1::collection_info), vec![op("get", "One collection (only `default` exists)").answer(|| named::<kb_v1::CollectionInfo>("CollectionInfo"))]),
        // KnowledgeBeast's API v2 (projects).
        route("/api/v2/projects", KB2, post(kb_v2::create).get(kb_v2::list), vec![
            op("post", "Create a project").body(|| named::<ProjectCreate>("ProjectCreate")).answer(|| named::<kb_v2::ProjectResponse>("ProjectResponse")).created(),
            op("get", "List projects, newest first").answer(|| named::<kb_v2::ProjectList>("ProjectList")),
        ]),
        route(super::IMPORT_PATH, KB2, post(kb_v2::import).layer(DefaultBodyLimit::max(import_limit)), vec![
            op("post", "Import a ZIP or JSON export (multipart: file, new_name, overwrite)").multipart().answer(|| named::<kb_v2::ImportResponse>("ImportResponse")).created(),
        ]),
        route("/api/v2/projects/{project_id}", KB2, get(kb_v2::get).put(kb_v2::update).delete(kb_v2::delete), vec![
            op("get", "Get a project").answer(|| named::<kb_v2::ProjectResponse>("ProjectResponse")),
            op("put", "Update a project").body(|| named::<ProjectUpdate>("ProjectUpdate")).answer(|| named::<kb_v2::ProjectResponse>("ProjectResponse")),
            op("delete", "Delete a project and its index").answer(|| named::<kb_v2::ProjectDeleted>("ProjectDeleted")),
        ]),
        route("/api/v2/projects/{project_id}/query", KB2, post(kb_v2::query), vec![op("post", "Search a project").body(|| named::<ProjectQueryRequest>("ProjectQueryRequest")).answer(|| named::<kb_v1::QueryResponse<'static>>("QueryResponse"))]),
        route("/api/v2/projects/{project_id}/query/stream", KB2, post(kb_v2::query_stream), vec![op("post", "Search a project, answered as Server-Sent Events").body(|| named::<ProjectQueryRequest>("ProjectQueryRequest")).media(&["text/event-stream"])]),
        // KnowledgeBeast's streaming example posts here.
        route("/api/v2/{project_id}/query/stream", KB2, post(kb_v2::query_stream), vec![op("post", "The same stream (the path of KnowledgeBeast's example)").body(|| named::<ProjectQueryRequest>("ProjectQueryRequest")).media(&["text/event-stream"])]),
        route("/api/v2/projects/{project_id}/ingest", KB2, post(kb_v2::ingest), vec![op("post", "Ingest a file or inline content").body(|| named::<ProjectIngestRequest>("ProjectIngestRequest")).answer(|| named::<kb_v1::IngestResponse>("IngestResponse"))]),
        route("/api/v2/projects/{project_id}/export", KB2, post(kb_v2::export).get(kb_v2::export_download), vec![
            op("post", "Write an export under the data directory (ZIP; `?format=json` for JSON)").query(|| named::<ExportQuery>("ExportQuery")).answer(|| named::<kb_v2::ExportResponse>("ExportResponse")),
            op("get", "Download an export (ZIP; `?format=json` for JSON)").query(|| named::<ExportQuery>("ExportQuery")).media(&["application/zip", "application/json"]),
        ]),
        route("/api/v2/projects/{project_id}/api-keys", KB2, post(kb_v2::create_key).get(kb_v2::list_keys), vec![
            op("post", "Create a project API key (shown once)").body(|| named::<ApiKeyCreate>("APIKeyCreate")).answer(|| named::<kb_v2::ApiKeyCreated>("APIKeyCreated")).created(),
            op("get", "List a project's API keys").answer(|| named::<kb_v2::ApiKeyList>("APIKeyList")),
        ]),
        route("/api/v2/projects/{project_id}/api-keys/{key_id}", KB2, delete(kb_v2::revoke_key), vec![op("delete", "Revoke an API key").answer(|| named::<kb_v2::ApiKeyRevoked>("APIKeyRevoked"))]),
        // KATO's API: every method reaches its handler (KATO checks the session first).
        route("/sessions", KATO, any(kato_routes::create), vec![op("post", "Create a session on a node").body(|| named::<CreateSession>("CreateSessionRequest")).answer(|| named::<crate::kato::answers::SessionAnswer>("SessionAnswer"))]),
        route("/sessions/count", KATO, any(kato_routes::count), vec![op("get", "Number of active sessions").answer(|| named::<crate::kato::answers::Count>("SessionCount"))]),
        route("/sessions/{session_id}", KATO, any(kato_routes::session), vec![op("get", "Session details").answer(|| named::<crate::kato::answers::SessionAnswer>("SessionAnswer")), op("delete", "Delete a session").answer(|| named::<crate::kato::answers::Done>("SessionDone"))]),
        route("/sessions/{session_id}/exists", KATO, any(kato_routes::exists), vec![op("get", "Whether a session exists").answer(|| named::<crate::kato::answers::Exists>("SessionExists"))]),
        action("/sessions/{session_id}/observe", "observe", vec![op("post", "Observe one event").body(|| named::<ObservationData>("ObservationData")).answer(|| named::<crate::kato::answers::ObservedAnswer>("ObservedAnswer"))]),
        action("/sessions/{session_id}/observe-sequence", "observe-sequence", vec![op("post", "Observe several events").body(|| named::<ObserveSequence>("ObserveSequenceRequest")).answer(|| named::<crate::kato::answers::SequenceAnswer>("SequenceAnswer"))]),
        action("/sessions/{session_id}/learn", "learn", vec![op("post", "Learn the short-term memory as a pattern").answer(|| named::<crate::kato::answers::LearnedAnswer>("LearnedAnswer"))]),
        action("/sessions/{session_id}/predictions", "predictions", vec![op("get", "Predictions for the short-term memory (`Cache-Control: no-cache` computes them anew)").answer(|| named::<crate::kato::answers::PredictionsAnswer>("PredictionsAnswer"))]),
        action("/sessions/{session_id}/stm", "stm", vec![op("get", "Short-term memory").answer(|| named::<crate::kato::answers::Stm>("StmAnswer"))]),
        action("/sessions/{session_id}/clear-stm", "clear-stm", vec![op("post", "Clear short-term memory").answer(|| named::<crate::kato::answers::Done>("SessionDone"))]),
        action("/sessions/{session_id}/clear-all", "clear-all", vec![op("post", "Clear the node's patterns and the session").answer(|| named::<crate::kato::answers::ClearedAll>("ClearedAll"))]),
        action("/sessions/{session_id}/config", "config", vec![
            op("get", "Effective session configuration").answer(|| named::<crate::kato::answers::ConfigAnswer>("SessionConfig")),
            op("post", "Update session configuration").body(|| named::<ConfigUpdate>("SessionConfigUpdate")).answer(|| named::<crate::kato::answers::Updated>("SessionConfigUpdated")),
        ]),
        action("/sessions/{session_id}/extend", "extend", vec![op("post", "Extend a session's TTL").query(|| named::<ExtendQuery>("ExtendQuery")).answer(|| named::<crate::kato::answers::Extended>("SessionExtended"))]),
        action("/sessions/{session_id}/finalize-training", "finalize-training", vec![op("post", "Precompute entropy metrics").answer(|| named::<crate::kato::answers::FinalizedAnswer>("FinalizedAnswer"))]),
        action("/sessions/{session_id}/cognition-data", "cognition-data", vec![op("get", "Cognition data").answer(|| named::<crate::kato::answers::CognitionAnswer>("CognitionAnswer"))]),
        action("/sessions/{session_id}/percept-data", "percept-data", vec![op("get", "Percept data").answer(|| named::<crate::kato::answers::PerceptAnswer>("PerceptAnswer"))]),
        // Not an endpoint: an unknown action of a session answers KATO's 404 after the session
        // check (and is labelled as this template in /metrics).
        route("/sessions/{session_id}/{*action}", KATO, any(kato_routes::unknown_action), vec![]),
        route("/pattern/{pattern_id}", KATO, any(kato_routes::pattern), vec![op("get", "A learned pattern").query(node).answer(|| named::<crate::kato::answers::PatternAnswer>("PatternAnswer"))]),
        route("/symbols/stats", KATO, any(kato_routes::symbol_stats), vec![op("get", "Symbol frequencies").query(node).answer(|| named::<crate::kato::answers::SymbolStatsAnswer>("SymbolStatsAnswer"))]),
        route("/symbols/affinity", KATO, any(kato_routes::affinities), vec![op("get", "Emotive affinities of every symbol").query(node).answer(|| named::<crate::kato::answers::AffinitiesAnswer>("AffinitiesAnswer"))]),
        route("/symbols/{symbol}/affinity", KATO, any(kato_routes::affinity), vec![op("get", "Emotive affinity of one symbol").query(node).answer(|| named::<crate::kato::answers::AffinityAnswer>("AffinityAnswer"))]),
        route("/percept-data", KATO, get(common::deprecated_percept), vec![op("get", "Deprecated: KATO's answer that names the session route").answer(|| named::<common::DeprecatedPercept>("DeprecatedPercept"))]),
        route("/cognition-data", KATO, get(common::deprecated_cognition), vec![op("get", "Deprecated: KATO's answer that names the session route").answer(|| named::<common::DeprecatedCognition>("DeprecatedCognition"))]),
        route("/ws/events", KATO, get(kato_routes::websocket), vec![op("get", "WebSocket: state snapshot, session events, ping/pong")]),
        route("/mneme/seq", KATO, post(kato_routes::seq_command), vec![op("post", "A `mneme seq` command, sent by the CLI when this server holds the pattern store")]),
    ]
}
