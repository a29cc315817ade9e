//! KnowledgeBeast's API v2 (`/api/v2/projects`): projects with isolated indexes, ingest by
//! path or inline content, query, streaming query (Server-Sent Events), project API keys, and
//! export / import (the archives themselves are `app::projects::archive`'s). Everything lives
//! in the data directory and survives a restart.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mneme_app::projects::archive::{self, ArchiveFormat, ArchiveLimits, ImportConfig, Limit};
use mneme_app::projects::{Project, ProjectUpdate as Update, Scope};
use mneme_kb::convert::Format;
use mneme_kb::{NewDocument, Ranking, SearchRequest};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::ServerState;
use super::common::{iso_now, to_json, to_json_status};
use super::kb_request::{
    ApiKeyCreate, ExportQuery, KbBody, ProjectCreate, ProjectIngestRequest, ProjectQueryRequest,
    ProjectUpdate, detail, ranking, read_query,
};
use super::kb_v1::{IngestResponse, QueryResponse, QueryResult, query_lane};
use super::work::{self, Lane};
use crate::error::ApiError;
use crate::lax::{Dialect, Problem, yes_no};

/// KnowledgeBeast's `ProjectResponse` (also `project.json` of an archive).
#[derive(Serialize, ToSchema)]
pub struct ProjectResponse {
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub collection_name: String,
    pub embedding_model: String,
    pub created_at: String,
    pub updated_at: String,
    /// The metadata the project was given.
    pub metadata: Value,
}

impl ProjectResponse {
    fn of(project: &Project) -> ProjectResponse {
        ProjectResponse {
            project_id: project.project_id.clone(),
            name: project.name.clone(),
            description: project.description.clone(),
            collection_name: project.collection_name(),
            embedding_model: project.embedding_model.clone(),
            created_at: project.created_at.clone(),
            updated_at: project.updated_at.clone(),
            metadata: serde_json::from_str(&project.metadata).unwrap_or_else(|_| json!({})),
        }
    }
}

/// `GET /api/v2/projects`: newest first.
#[derive(Serialize, ToSchema)]
pub struct ProjectList {
    pub count: usize,
    pub projects: Vec<ProjectResponse>,
}

/// `DELETE /api/v2/projects/{project_id}`.
#[derive(Serialize, ToSchema)]
pub struct ProjectDeleted {
    pub success: bool,
    pub project_id: String,
    pub message: String,
}

/// A project API key as listed (never the key itself).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub name: String,
    /// `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked: bool,
    pub last_used_at: Option<String>,
    pub created_by: Option<String>,
}

/// `POST /api/v2/projects/{project_id}/api-keys`: the key itself, shown only here.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub key_id: String,
    pub api_key: String,
    pub project_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
}

/// `GET /api/v2/projects/{project_id}/api-keys`: newest first.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub project_id: String,
    pub api_keys: Vec<ApiKeyInfo>,
    pub count: usize,
}

/// `DELETE /api/v2/projects/{project_id}/api-keys/{key_id}`.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyRevoked {
    pub success: bool,
    pub key_id: String,
    pub message: String,
}

/// `POST /api/v2/projects/{project_id}/export`.
#[derive(Serialize, ToSchema)]
pub struct ExportResponse {
    pub success: bool,
    pub project_id: String,
    /// Under `<projects_dir>/exports/`.
    pub export_path: String,
    pub document_count: usize,
    pub file_size_bytes: u64,
    pub message: String,
}

/// `POST /api/v2/projects/import`.
#[derive(Serialize, ToSchema)]
pub struct ImportResponse {
    pub success: bool,
    pub project_id: String,
    pub project_name: String,
    pub document_count: usize,
    pub message: String,
}

fn scope_names(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(|s| s.name().to_owned()).collect()
}

fn metadata_text(map: Option<Map<String, Value>>) -> Option<String> {
    map.map(|m| Value::Object(m).to_string())
}

/// `POST /api/v2/projects`
pub async fn create(
    State(state): State<Arc<ServerState>>,
    KbBody(request): KbBody<ProjectCreate>,
) -> Result<Response, ApiError> {
    let name = request.name.into_inner().unwrap_or_default();
    let description = request.description.into_inner().unwrap_or_default();
    let model = request
        .embedding_model
        .into_inner()
        .unwrap_or_else(|| "all-MiniLM-L6-v2".to_owned());
    let metadata = metadata_text(request.metadata.into_inner()).unwrap_or_else(|| "{}".to_owned());
    let project = work::run(&state, Lane::Io, move |s| {
        s.projects.create(&name, &description, &model, &metadata)
    })
    .await?
    .map_err(|err| ApiError::from_project("Failed to create project", &err))?;
    state.metrics.add(
        "kb_project_creations_total",
        "Projects created",
        Vec::new(),
        1.0,
    );
    Ok(to_json_status(
        StatusCode::CREATED,
        &ProjectResponse::of(&project),
    ))
}

/// `GET /api/v2/projects`: newest first.
pub async fn list(State(state): State<Arc<ServerState>>) -> Result<Response, ApiError> {
    let projects = work::run(&state, Lane::Io, |s| s.projects.list())
        .await?
        .map_err(|err| ApiError::from_project("Failed to list projects", &err))?;
    let projects: Vec<ProjectResponse> = projects.iter().map(ProjectResponse::of).collect();
    Ok(to_json(&ProjectList {
        count: projects.len(),
        projects,
    }))
}

/// `GET /api/v2/projects/{id}`
pub async fn get(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let project = state
        .projects
        .get(&id)
        .map_err(|err| ApiError::from_project("Failed to get project", &err))?;
    Ok(to_json(&ProjectResponse::of(&project)))
}

/// `PUT /api/v2/projects/{id}`
pub async fn update(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    KbBody(request): KbBody<ProjectUpdate>,
) -> Result<Response, ApiError> {
    let update = Update {
        name: request.name.into_inner(),
        description: request.description.into_inner(),
        embedding_model: request.embedding_model.into_inner(),
        metadata: metadata_text(request.metadata.into_inner()),
    };
    let project = work::run(&state, Lane::Io, move |s| s.projects.update(&id, update))
        .await?
        .map_err(|err| ApiError::from_project("Failed to update project", &err))?;
    state.metrics.add(
        "kb_project_updates_total",
        "Projects updated",
        Vec::new(),
        1.0,
    );
    Ok(to_json(&ProjectResponse::of(&project)))
}

/// `DELETE /api/v2/projects/{id}`
pub async fn delete(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let target = id.clone();
    work::run(&state, Lane::Io, move |s| s.projects.delete(&target))
        .await?
        .map_err(|err| ApiError::from_project("Failed to delete project", &err))?;
    state.metrics.add(
        "kb_project_deletions_total",
        "Projects deleted",
        Vec::new(),
        1.0,
    );
    Ok(to_json(&ProjectDeleted {
        success: true,
        message: format!("Project {id} deleted successfully"),
        project_id: id,
    }))
}

struct ProjectQuery {
    query: String,
    limit: usize,
    use_cache: bool,
    ranking: Ranking,
}

/// Projects use the model of the main knowledge base (one configuration).
fn project_query(request: ProjectQueryRequest, state: &ServerState) -> ProjectQuery {
    let ranking = ranking(
        request.mode.get().copied(),
        request.alpha.get().copied(),
        request.fusion.get().copied(),
        state.knowledge.kb.has_embedder(),
        state.knowledge.settings.hybrid_alpha,
    );
    ProjectQuery {
        limit: request.limit() as usize,
        use_cache: request.use_cache(),
        query: request.query.into_inner().unwrap_or_default(),
        ranking,
    }
}

/// Runs a project query where its ranking belongs (see `kb_v1::query_lane`).
async fn run_query(
    state: &Arc<ServerState>,
    kb: Arc<mneme_kb::KnowledgeBase>,
    request: &ProjectQuery,
) -> Result<mneme_kb::Result<mneme_kb::SearchOutcome>, ApiError> {
    let (query, ranking, limit, use_cache) = (
        request.query.clone(),
        request.ranking,
        request.limit,
        request.use_cache,
    );
    work::run(state, query_lane(ranking), move |_| {
        kb.search(&SearchRequest {
            query: &query,
            ranking,
            limit,
            offset: 0,
            with_content: false,
            with_total: false,
            use_cache,
            with_snippets: false,
        })
    })
    .await
}

/// `POST /api/v2/projects/{id}/query`
pub async fn query(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    KbBody(request): KbBody<ProjectQueryRequest>,
) -> Result<Response, ApiError> {
    let request = project_query(request, &state);
    let kb = state
        .projects
        .index(&id)
        .map_err(|err| ApiError::from_project("Failed to get collection for project", &err))?;
    let started = Instant::now();
    let outcome = run_query(&state, kb, &request).await?;
    let status = if outcome.is_ok() { "success" } else { "error" };
    state.metrics.add(
        "kb_project_queries_total",
        "Project queries",
        vec![("project_id", id.clone()), ("status", status.to_owned())],
        1.0,
    );
    state.metrics.observe(
        "kb_project_query_duration_seconds",
        "Project query latency",
        vec![("project_id", id.clone())],
        started.elapsed().as_secs_f64(),
    );
    let outcome = outcome.map_err(|err| ApiError::from_kb("Query failed", &err))?;
    let cache = if outcome.cached {
        "kb_project_cache_hits_total"
    } else {
        "kb_project_cache_misses_total"
    };
    state.metrics.add(
        cache,
        "Project query-cache lookups",
        vec![("project_id", id.clone())],
        1.0,
    );
    let results: Vec<QueryResult<'_>> = outcome
        .results
        .hits
        .iter()
        .enumerate()
        .map(|(i, hit)| QueryResult::of(hit, i + 1))
        .collect();
    Ok(to_json(&QueryResponse {
        count: results.len(),
        results,
        cached: outcome.cached,
        query: &request.query,
        metadata: None,
    }))
}

fn sse_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `POST /api/v2/projects/{id}/query/stream`: the answer as Server-Sent Events, `start`, one
/// `result` per hit, then `done` (or `error`).
pub async fn query_stream(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    KbBody(request): KbBody<ProjectQueryRequest>,
) -> Result<Response, ApiError> {
    let request = project_query(request, &state);
    let kb = state
        .projects
        .index(&id)
        .map_err(|err| ApiError::from_project("Failed to get collection for project", &err))?;
    let metadata = state.projects.document_metadata(&id).unwrap_or_default();
    let mut events = vec![sse_event(
        &json!({"event": "start", "timestamp": iso_now(), "project_id": id, "query": request.query}),
    )];
    match run_query(&state, kb, &request).await? {
        Ok(outcome) => {
            for (index, hit) in outcome.results.hits.iter().enumerate() {
                let meta: Value = metadata
                    .get(&hit.doc_id)
                    .and_then(|m| serde_json::from_str(m).ok())
                    .unwrap_or_else(|| json!({"name": hit.name, "path": hit.path, "kb_dir": hit.kb_dir}));
                events.push(sse_event(&json!({
                    "event": "result",
                    "data": {"id": hit.doc_id, "document": hit.passage, "metadata": meta, "score": hit.score, "index": index},
                })));
            }
            events.push(sse_event(&json!({"event": "done", "total_results": outcome.results.hits.len(), "timestamp": iso_now()})));
        }
        Err(err) => events.push(sse_event(&json!({"event": "error", "error": err.to_string(), "type": format!("{:?}", err.kind())}))),
    }
    let stream = futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// `POST /api/v2/projects/{id}/ingest`: a file (inside the knowledge dirs) or inline content.
/// A file's document: its path names it (a second ingest replaces it).
pub(crate) fn file_document(path: &std::path::Path, bytes: Vec<u8>) -> NewDocument {
    let shown = path.display().to_string();
    NewDocument {
        doc_id: shown.clone(),
        path: shown,
        kb_dir: path
            .parent()
            .map_or_else(String::new, |p| p.display().to_string()),
        name: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        format: Format::of_path(path).unwrap_or(Format::Text),
        bytes,
    }
}

/// A document of sent text (markdown), named `doc_<unix ms>` as KnowledgeBeast names it (with
/// a suffix when that id is taken), titled by the metadata's `name`.
pub(crate) fn content_document(
    kb: &mneme_kb::KnowledgeBase,
    metadata: &Map<String, Value>,
    content: String,
) -> NewDocument {
    let mut doc_id = format!("doc_{}", unix_ms());
    let mut n = 1;
    while kb.document(&doc_id).is_some() {
        n += 1;
        doc_id = format!("doc_{}_{n}", unix_ms());
    }
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
        .to_owned();
    NewDocument {
        doc_id,
        path: String::new(),
        kb_dir: String::new(),
        name,
        format: Format::Markdown,
        bytes: content.into_bytes(),
    }
}

/// What an ingest records with every document besides the sender's metadata.
pub(crate) fn stamp_metadata(metadata: &mut Map<String, Value>, doc: &NewDocument) {
    metadata.insert("name".into(), json!(doc.name));
    metadata.insert("path".into(), json!(doc.path));
    metadata.insert("kb_dir".into(), json!(doc.kb_dir));
    metadata.insert("ingested_at".into(), json!(iso_now()));
}

pub async fn ingest(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    KbBody(request): KbBody<ProjectIngestRequest>,
) -> Result<Response, ApiError> {
    let failed = |err: &mneme_app::projects::ProjectError| {
        ApiError::from_project("Failed to ingest document", err)
    };
    let user_metadata = request.metadata.into_inner().unwrap_or_default();
    let project = state.projects.get(&id).map_err(|e| failed(&e))?;
    let (doc, shown_path) = match (request.file_path.into_inner(), request.content.into_inner()) {
        (Some(raw), _) => {
            let path = super::kb_v1::resolve_file(&state, &raw)?;
            let bytes = std::fs::read(&path).map_err(|err| {
                detail(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to read file: {err}"),
                )
            })?;
            let doc = file_document(&path, bytes);
            let shown = doc.path.clone();
            (doc, shown)
        }
        (None, Some(content)) => {
            let kb = state.projects.index(&id).map_err(|e| failed(&e))?;
            let doc = content_document(&kb, &user_metadata, content);
            (doc, "inline_content".to_owned())
        }
        (None, None) => {
            return Err(detail(
                StatusCode::BAD_REQUEST,
                "Either file_path or content must be provided",
            ));
        }
    };
    let mut metadata = user_metadata;
    stamp_metadata(&mut metadata, &doc);
    let doc_id = doc.doc_id.clone();
    let target = id.clone();
    let result = work::run(&state, Lane::Io, move |s| {
        s.projects
            .ingest(&target, vec![(doc, Value::Object(metadata).to_string())])
    })
    .await;
    let status = match &result {
        Ok(Ok(report)) if report.problems.is_empty() => "success",
        _ => "error",
    };
    state.metrics.add(
        "kb_project_ingests_total",
        "Project ingests",
        vec![("project_id", id.clone()), ("status", status.to_owned())],
        1.0,
    );
    let report = result?.map_err(|e| failed(&e))?;
    if let Some((_, problem)) = report.problems.first() {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            format!("Failed to ingest {shown_path}: {problem}"),
        ));
    }
    Ok(to_json(&IngestResponse {
        success: true,
        file_path: shown_path,
        doc_id,
        message: format!(
            "Document successfully ingested into project {}",
            project.name
        ),
    }))
}

/// `POST /api/v2/projects/{id}/api-keys`: 201 with the raw key (shown only here).
pub async fn create_key(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    access: Option<axum::Extension<super::auth::Access>>,
    KbBody(request): KbBody<ApiKeyCreate>,
) -> Result<Response, ApiError> {
    let scopes = request
        .scopes
        .into_inner()
        .unwrap_or_else(|| vec![Scope::Read, Scope::Write]);
    let expires = request.expires_days.into_inner().map(|days| days as u64);
    let created_by = access.map(|a| match a.0 {
        super::auth::Access::Open => "open".to_owned(),
        super::auth::Access::Global(key) => format!("global:{}", super::auth::fingerprint(&key)),
        super::auth::Access::Project { project_id, key_id } => {
            format!("project-key:{project_id}/{key_id}")
        }
    });
    let name = request.name.into_inner().unwrap_or_default();
    let target = id.clone();
    let (record, raw) = work::run(&state, Lane::Io, move |s| {
        s.projects
            .create_key(&target, &name, &scopes, expires, created_by)
    })
    .await?
    .map_err(|err| ApiError::from_project("Failed to create API key", &err))?;
    Ok(to_json_status(
        StatusCode::CREATED,
        &ApiKeyCreated {
            key_id: record.key_id,
            api_key: raw,
            project_id: record.project_id,
            name: record.name,
            scopes: scope_names(&record.scopes),
            created_at: record.created_at,
            expires_at: record.expires_at,
        },
    ))
}

/// `GET /api/v2/projects/{id}/api-keys`
pub async fn list_keys(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let target = id.clone();
    let keys = work::run(&state, Lane::Io, move |s| s.projects.keys(&target))
        .await?
        .map_err(|err| ApiError::from_project("Failed to list API keys", &err))?;
    let api_keys: Vec<ApiKeyInfo> = keys
        .into_iter()
        .map(|key| ApiKeyInfo {
            key_id: key.key_id,
            name: key.name,
            scopes: scope_names(&key.scopes),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked: key.revoked,
            last_used_at: key.last_used_at,
            created_by: key.created_by,
        })
        .collect();
    Ok(to_json(&ApiKeyList {
        project_id: id,
        count: api_keys.len(),
        api_keys,
    }))
}

/// `DELETE /api/v2/projects/{id}/api-keys/{key_id}`
pub async fn revoke_key(
    State(state): State<Arc<ServerState>>,
    UrlPath((_, key_id)): UrlPath<(String, String)>,
) -> Result<Response, ApiError> {
    let target = key_id.clone();
    work::run(&state, Lane::Io, move |s| s.projects.revoke_key(&target))
        .await?
        .map_err(|err| ApiError::from_project("Failed to revoke API key", &err))?;
    Ok(to_json(&ApiKeyRevoked {
        success: true,
        message: format!("API key {key_id} revoked successfully"),
        key_id,
    }))
}

/// `?format=zip|json` of the export endpoints (ZIP when absent).
fn archive_format(query: Option<&str>) -> Result<ArchiveFormat, ApiError> {
    let query = read_query::<ExportQuery>(query)?;
    Ok(query.format.into_inner().unwrap_or(ArchiveFormat::Zip))
}

/// `POST /api/v2/projects/{id}/export`: writes the archive under `<projects_dir>/exports/`.
pub async fn export(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let format = archive_format(query.as_deref())?;
    let target = id.clone();
    let file = work::run(&state, Lane::Io, move |s| {
        archive::export_file(&s.projects, &target, format)
    })
    .await?
    .map_err(|err| ApiError::from_project("Failed to export project", &err))?;
    Ok(to_json(&ExportResponse {
        success: true,
        project_id: id,
        export_path: file.path.display().to_string(),
        document_count: file.document_count,
        file_size_bytes: file.size_bytes,
        message: format!("Project exported to {}", file.path.display()),
    }))
}

/// `GET /api/v2/projects/{id}/export`: the archive itself, as a download.
pub async fn export_download(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let format = archive_format(query.as_deref())?;
    let target = id.clone();
    let (bytes, project) = work::run(&state, Lane::Io, move |s| {
        let mut out = std::io::Cursor::new(Vec::new());
        archive::write_archive(&s.projects, &target, format, &mut out)
            .map(|exported| (out.into_inner(), exported.project))
    })
    .await?
    .map_err(|err| ApiError::from_project("Failed to export project", &err))?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let file = format!(
        "attachment; filename=\"{}_export.{}\"",
        project.project_id,
        format.extension()
    );
    if let Ok(value) = HeaderValue::from_str(&file) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The uploaded `file`, read chunk by chunk up to the upload limit.
async fn upload(
    field: &mut axum::extract::multipart::Field<'_>,
    limits: &ArchiveLimits,
) -> Result<Bytes, ApiError> {
    let mut data = Vec::new();
    loop {
        match field.chunk().await {
            Ok(Some(chunk)) => {
                if (data.len() + chunk.len()) as u64 > limits.max_archive_bytes {
                    return Err(upload_too_large(limits));
                }
                data.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(data)),
            Err(err) => return Err(invalid_upload(&err, limits)),
        }
    }
}

/// The 413 of an upload over the archive limit.
pub(super) fn upload_too_large(limits: &ArchiveLimits) -> ApiError {
    ApiError::from_archive(&archive::ArchiveError::TooLarge {
        limit: Limit::ArchiveBytes,
        max: limits.max_archive_bytes,
        what: "the archive is".to_owned(),
    })
}

/// A multipart stream that broke off: cut at the body limit (413), or malformed (400).
fn invalid_upload(
    err: &axum::extract::multipart::MultipartError,
    limits: &ArchiveLimits,
) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        upload_too_large(limits)
    } else {
        detail(StatusCode::BAD_REQUEST, format!("Invalid upload: {err}"))
    }
}

/// `POST /api/v2/projects/import`: multipart with an archive `file` (ZIP or JSON), optional
/// `new_name` and `overwrite` (a [`yes_no`] word).
pub async fn import(
    State(state): State<Arc<ServerState>>,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let limits = state.config.import;
    let mut file: Option<Bytes> = None;
    let mut new_name: Option<String> = None;
    let mut overwrite = false;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(invalid_upload(&err, &limits)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let data = upload(&mut field, &limits).await?;
        match name.as_str() {
            "file" => file = Some(data),
            "new_name" => {
                new_name =
                    Some(String::from_utf8_lossy(&data).trim().to_owned()).filter(|n| !n.is_empty())
            }
            "overwrite" => {
                let text = String::from_utf8_lossy(&data);
                overwrite = yes_no(text.trim()).ok_or_else(|| {
                    ApiError::invalid(
                        Dialect::Kb,
                        &Problem::new(
                            "bool_parsing",
                            &[json!("body"), json!("overwrite")],
                            "Input should be a valid boolean",
                            &json!(text),
                        )
                        .into(),
                    )
                })?;
            }
            _ => {}
        }
    }
    let Some(file) = file else {
        return Err(ApiError::invalid(
            Dialect::Kb,
            &Problem::new(
                "missing",
                &[json!("body"), json!("file")],
                "Field required",
                &Value::Null,
            )
            .into(),
        ));
    };
    let config = ImportConfig {
        new_name,
        overwrite,
    };
    let imported = work::run(&state, Lane::Io, move |s| {
        let archive = std::io::Cursor::new(file);
        archive::import(
            &s.projects,
            archive,
            &config,
            &limits,
            &mneme_kb::NoProgress,
        )
    })
    .await?
    .map_err(|err| ApiError::from_archive(&err))?;
    let (project, count) = (imported.project, imported.document_count);
    Ok(to_json_status(
        StatusCode::CREATED,
        &ImportResponse {
            success: true,
            project_id: project.project_id,
            message: format!(
                "Project imported as {} with {count} documents",
                project.name
            ),
            project_name: project.name,
            document_count: count,
        },
    ))
}
