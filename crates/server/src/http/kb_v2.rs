//! KnowledgeBeast's API v2 (`/api/v2/projects`): projects with isolated indexes, ingest by
//! path or inline content, query, streaming query (Server-Sent Events), project API keys, and
//! export / import (the archives themselves are `app::projects::archive`'s). Everything lives
//! in the data directory and survives a restart.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mneme_app::projects::archive::{
    self, ArchiveError, ArchiveFormat, ArchiveLimits, ImportConfig, Limit,
};
use mneme_app::projects::{Project, ProjectError, ProjectUpdate, Scope};
use mneme_kb::convert::Format;
use mneme_kb::{NewDocument, Ranking, SearchRequest};
use serde_json::{Map, Value, json};

use super::ServerState;
use super::common::{iso_now, json_response, kb_not_found};
use super::kb_request::{Fields, check_file_path, check_query, detail, object, validation_error};
use super::kb_v1::QueryResult;

fn project_json(project: &Project) -> Value {
    let metadata: Value = serde_json::from_str(&project.metadata).unwrap_or_else(|_| json!({}));
    json!({
        "project_id": project.project_id,
        "name": project.name,
        "description": project.description,
        "collection_name": project.collection_name(),
        "embedding_model": project.embedding_model,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
        "metadata": metadata,
    })
}

fn failure(operation: &str, err: &ProjectError) -> Response {
    let status = super::errors::project(err);
    match status {
        StatusCode::NOT_FOUND => kb_not_found(&format!("404: {err}")),
        status if status.is_server_error() => detail(status, format!("{operation}: {err}")),
        status => detail(status, err.to_string()),
    }
}

/// Runs registry work off the async threads.
async fn blocking<T: Send + 'static>(
    state: &Arc<ServerState>,
    work: impl FnOnce(&ServerState) -> T + Send + 'static,
) -> Result<T, Response> {
    let worker = state.clone();
    tokio::task::spawn_blocking(move || work(&worker))
        .await
        .map_err(|_| {
            detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request handler stopped",
            )
        })
}

/// Name rules of `ProjectCreate` / `ProjectUpdate`: stripped, 1–100 characters of letters,
/// digits, spaces, `_` and `-`.
fn project_name(fields: &mut Fields<'_>, required: bool) -> Option<String> {
    let raw = fields.string("name", required, 1, 100)?;
    let name = raw.trim().to_owned();
    if name.is_empty() {
        fields.problems.push(
            "body.name",
            "Value error, Project name cannot be empty or only whitespace",
        );
        return None;
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ' ')
    {
        fields.problems.push(
            "body.name",
            "String should match pattern '^[a-zA-Z0-9_\\- ]+$'",
        );
        return None;
    }
    Some(name)
}

fn metadata_text(map: Option<Map<String, Value>>) -> Option<String> {
    map.map(|m| Value::Object(m).to_string())
}

/// `POST /api/v2/projects`
pub async fn create(State(state): State<Arc<ServerState>>, body: Bytes) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let name = project_name(&mut fields, true);
    let description = fields
        .string("description", false, 0, 500)
        .unwrap_or_default();
    let model = fields
        .string("embedding_model", false, 1, 200)
        .unwrap_or_else(|| "all-MiniLM-L6-v2".to_owned());
    let metadata = metadata_text(fields.object("metadata")).unwrap_or_else(|| "{}".to_owned());
    if let Err(response) = fields.finish() {
        return response;
    }
    let name = name.unwrap_or_default();
    let result = blocking(&state, move |s| {
        s.projects.create(&name, &description, &model, &metadata)
    })
    .await;
    match result {
        Ok(Ok(project)) => {
            state.metrics.add(
                "kb_project_creations_total",
                "Projects created",
                Vec::new(),
                1.0,
            );
            json_response(StatusCode::CREATED, &project_json(&project))
        }
        Ok(Err(err)) => failure("Failed to create project", &err),
        Err(response) => response,
    }
}

/// `GET /api/v2/projects`: newest first.
pub async fn list(State(state): State<Arc<ServerState>>) -> Response {
    match blocking(&state, |s| s.projects.list()).await {
        Ok(Ok(projects)) => {
            let items: Vec<Value> = projects.iter().map(project_json).collect();
            json_response(
                StatusCode::OK,
                &json!({"count": items.len(), "projects": items}),
            )
        }
        Ok(Err(err)) => failure("Failed to list projects", &err),
        Err(response) => response,
    }
}

/// `GET /api/v2/projects/{id}`
pub async fn get(State(state): State<Arc<ServerState>>, UrlPath(id): UrlPath<String>) -> Response {
    match state.projects.get(&id) {
        Ok(project) => json_response(StatusCode::OK, &project_json(&project)),
        Err(err) => failure("Failed to get project", &err),
    }
}

/// `PUT /api/v2/projects/{id}`
pub async fn update(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let update = ProjectUpdate {
        name: project_name(&mut fields, false),
        description: fields.string("description", false, 0, 500),
        embedding_model: fields.string("embedding_model", false, 1, 200),
        metadata: metadata_text(fields.object("metadata")),
    };
    if let Err(response) = fields.finish() {
        return response;
    }
    match blocking(&state, move |s| s.projects.update(&id, update)).await {
        Ok(Ok(project)) => {
            state.metrics.add(
                "kb_project_updates_total",
                "Projects updated",
                Vec::new(),
                1.0,
            );
            json_response(StatusCode::OK, &project_json(&project))
        }
        Ok(Err(err)) => failure("Failed to update project", &err),
        Err(response) => response,
    }
}

/// `DELETE /api/v2/projects/{id}`
pub async fn delete(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let target = id.clone();
    match blocking(&state, move |s| s.projects.delete(&target)).await {
        Ok(Ok(())) => {
            state.metrics.add(
                "kb_project_deletions_total",
                "Projects deleted",
                Vec::new(),
                1.0,
            );
            json_response(
                StatusCode::OK,
                &json!({"success": true, "project_id": id, "message": format!("Project {id} deleted successfully")}),
            )
        }
        Ok(Err(err)) => failure("Failed to delete project", &err),
        Err(response) => response,
    }
}

struct ProjectQuery {
    query: String,
    limit: usize,
    use_cache: bool,
    ranking: Ranking,
}

/// Projects use the model of the main knowledge base (one configuration).
fn project_query(body: &[u8], state: &ServerState) -> Result<ProjectQuery, Response> {
    let map = object(body)?;
    let mut fields = Fields::new(&map);
    let ranking = super::kb_v1::ranking(
        &mut fields,
        state.knowledge.kb.has_embedder(),
        state.knowledge.settings.hybrid_alpha,
    );
    let query = check_query(&mut fields, "query");
    let use_cache = fields.boolean("use_cache", true);
    let limit = fields.int("limit", 10, 1, 100) as usize;
    fields.boolean("rerank", false);
    fields.int("rerank_top_k", 50, 1, 100);
    fields.float("diversity", 0.0, 1.0);
    fields.finish()?;
    Ok(ProjectQuery {
        query: query.unwrap_or_default(),
        limit,
        use_cache,
        ranking,
    })
}

/// `POST /api/v2/projects/{id}/query`
pub async fn query(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let request = match project_query(&body, &state) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let kb = match state.projects.index(&id) {
        Ok(kb) => kb,
        Err(err) => return failure("Failed to get collection for project", &err),
    };
    let started = Instant::now();
    let search = SearchRequest {
        query: &request.query,
        ranking: request.ranking,
        limit: request.limit,
        offset: 0,
        with_content: false,
        with_total: false,
        use_cache: request.use_cache,
        with_snippets: false,
    };
    let outcome = super::kb_v1::heavy(search.ranking, || kb.search(&search));
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
    match outcome {
        Ok(outcome) => {
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
            let body = json!({
                "count": results.len(),
                "results": results,
                "cached": outcome.cached,
                "query": request.query,
                "metadata": null,
            });
            json_response(StatusCode::OK, &body)
        }
        Err(err) => super::kb_v1::search_failed(&err),
    }
}

fn sse_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `POST /api/v2/projects/{id}/query/stream`: the answer as Server-Sent Events, `start`, one
/// `result` per hit, then `done` (or `error`).
pub async fn query_stream(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let request = match project_query(&body, &state) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let kb = match state.projects.index(&id) {
        Ok(kb) => kb,
        Err(err) => return failure("Failed to get collection for project", &err),
    };
    let metadata = state.projects.document_metadata(&id).unwrap_or_default();
    let mut events = vec![sse_event(
        &json!({"event": "start", "timestamp": iso_now(), "project_id": id, "query": request.query}),
    )];
    let search = SearchRequest {
        query: &request.query,
        ranking: request.ranking,
        limit: request.limit,
        offset: 0,
        with_content: false,
        with_total: false,
        use_cache: request.use_cache,
        with_snippets: false,
    };
    match super::kb_v1::heavy(search.ranking, || kb.search(&search)) {
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
    response
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// `POST /api/v2/projects/{id}/ingest`: a file (inside the knowledge dirs) or inline content.
pub async fn ingest(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let file_path = fields.string("file_path", false, 1, 4096);
    let content = fields.string("content", false, 0, usize::MAX);
    let user_metadata = fields.object("metadata").unwrap_or_default();
    if let Some(path) = &file_path {
        check_file_path(&mut fields, "body.file_path", path);
    }
    if let Err(response) = fields.finish() {
        return response;
    }
    let project = match state.projects.get(&id) {
        Ok(project) => project,
        Err(err) => return failure("Failed to ingest document", &err),
    };
    let (doc, shown_path) = match (&file_path, content) {
        (Some(raw), _) => {
            let path = match super::kb_v1::resolve_file(&state, raw) {
                Ok(path) => path,
                Err(response) => return response,
            };
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(err) => {
                    return detail(
                        StatusCode::BAD_REQUEST,
                        format!("Failed to read file: {err}"),
                    );
                }
            };
            let format = Format::of_path(&path).unwrap_or(Format::Text);
            let shown = path.display().to_string();
            let doc = NewDocument {
                doc_id: shown.clone(),
                path: shown.clone(),
                kb_dir: path
                    .parent()
                    .map_or_else(String::new, |p| p.display().to_string()),
                name: path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                format,
                bytes,
            };
            (doc, shown)
        }
        (None, Some(content)) => {
            let kb = match state.projects.index(&id) {
                Ok(kb) => kb,
                Err(err) => return failure("Failed to ingest document", &err),
            };
            let mut doc_id = format!("doc_{}", unix_ms());
            let mut n = 1;
            while kb.document(&doc_id).is_some() {
                n += 1;
                doc_id = format!("doc_{}_{n}", unix_ms());
            }
            let name = user_metadata
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("Unknown")
                .to_owned();
            let doc = NewDocument {
                doc_id,
                path: String::new(),
                kb_dir: String::new(),
                name,
                format: Format::Markdown,
                bytes: content.into_bytes(),
            };
            (doc, "inline_content".to_owned())
        }
        (None, None) => {
            return detail(
                StatusCode::BAD_REQUEST,
                "Either file_path or content must be provided",
            );
        }
    };
    let mut metadata = user_metadata;
    metadata.insert("name".into(), json!(doc.name));
    metadata.insert("path".into(), json!(doc.path));
    metadata.insert("kb_dir".into(), json!(doc.kb_dir));
    metadata.insert("ingested_at".into(), json!(iso_now()));
    let doc_id = doc.doc_id.clone();
    let target = id.clone();
    let result = blocking(&state, move |s| {
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
    match result {
        Ok(Ok(report)) => {
            if let Some((_, problem)) = report.problems.first() {
                return detail(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to ingest {shown_path}: {problem}"),
                );
            }
            json_response(
                StatusCode::OK,
                &json!({
                    "success": true,
                    "file_path": shown_path,
                    "doc_id": doc_id,
                    "message": format!("Document successfully ingested into project {}", project.name),
                }),
            )
        }
        Ok(Err(err)) => failure("Failed to ingest document", &err),
        Err(response) => response,
    }
}

fn key_json(key: &mneme_app::projects::ApiKey) -> Value {
    json!({
        "key_id": key.key_id,
        "name": key.name,
        "scopes": key.scopes.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked": key.revoked,
        "last_used_at": key.last_used_at,
        "created_by": key.created_by,
    })
}

/// `POST /api/v2/projects/{id}/api-keys`: 201 with the raw key (shown only here).
pub async fn create_key(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    access: Option<axum::Extension<super::auth::Access>>,
    body: Bytes,
) -> Response {
    let map = match object(&body) {
        Ok(map) => map,
        Err(response) => return response,
    };
    let mut fields = Fields::new(&map);
    let name = fields.string("name", true, 1, 100);
    let scope_names = fields
        .strings("scopes", false, 1, 3)
        .unwrap_or_else(|| vec!["read".into(), "write".into()]);
    let mut scopes = Vec::new();
    for (i, scope) in scope_names.iter().enumerate() {
        match Scope::parse(scope) {
            Some(scope) => scopes.push(scope),
            None => fields.problems.push(
                format!("body.scopes.{i}"),
                format!("Value error, Invalid scope: {scope}. Must be one of: read, write, admin"),
            ),
        }
    }
    let expires = map
        .get("expires_days")
        .filter(|v| !v.is_null())
        .map(|_| fields.int("expires_days", 1, 1, 365) as u64);
    if let Err(response) = fields.finish() {
        return response;
    }
    let created_by = access.map(|a| match a.0 {
        super::auth::Access::Open => "open".to_owned(),
        super::auth::Access::Global(key) => format!("global:{}", super::auth::fingerprint(&key)),
        super::auth::Access::Project { project_id, key_id } => {
            format!("project-key:{project_id}/{key_id}")
        }
    });
    let name = name.unwrap_or_default();
    let target = id.clone();
    match blocking(&state, move |s| {
        s.projects
            .create_key(&target, &name, &scopes, expires, created_by)
    })
    .await
    {
        Ok(Ok((record, raw))) => json_response(
            StatusCode::CREATED,
            &json!({
                "key_id": record.key_id,
                "api_key": raw,
                "project_id": record.project_id,
                "name": record.name,
                "scopes": record.scopes.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "created_at": record.created_at,
                "expires_at": record.expires_at,
            }),
        ),
        Ok(Err(err)) => failure("Failed to create API key", &err),
        Err(response) => response,
    }
}

/// `GET /api/v2/projects/{id}/api-keys`
pub async fn list_keys(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let target = id.clone();
    match blocking(&state, move |s| s.projects.keys(&target)).await {
        Ok(Ok(keys)) => {
            let items: Vec<Value> = keys.iter().map(key_json).collect();
            json_response(
                StatusCode::OK,
                &json!({"project_id": id, "api_keys": items, "count": keys.len()}),
            )
        }
        Ok(Err(err)) => failure("Failed to list API keys", &err),
        Err(response) => response,
    }
}

/// `DELETE /api/v2/projects/{id}/api-keys/{key_id}`
pub async fn revoke_key(
    State(state): State<Arc<ServerState>>,
    UrlPath((_, key_id)): UrlPath<(String, String)>,
) -> Response {
    let target = key_id.clone();
    match blocking(&state, move |s| s.projects.revoke_key(&target)).await {
        Ok(Ok(())) => json_response(
            StatusCode::OK,
            &json!({"success": true, "key_id": key_id, "message": format!("API key {key_id} revoked successfully")}),
        ),
        Ok(Err(err)) => failure("Failed to revoke API key", &err),
        Err(response) => response,
    }
}

/// `?format=zip|json` of the export endpoints (ZIP when absent).
fn archive_format(query: &HashMap<String, String>) -> Result<ArchiveFormat, Response> {
    match query.get("format") {
        None => Ok(ArchiveFormat::Zip),
        Some(name) => ArchiveFormat::parse(name)
            .ok_or_else(|| validation_error("query.format: Input should be 'zip' or 'json'")),
    }
}

/// `POST /api/v2/projects/{id}/export`: writes the archive under `<projects_dir>/exports/`.
pub async fn export(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let format = match archive_format(&query) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let target = id.clone();
    match blocking(&state, move |s| {
        archive::export_file(&s.projects, &target, format)
    })
    .await
    {
        Ok(Ok(file)) => json_response(
            StatusCode::OK,
            &json!({
                "success": true,
                "project_id": id,
                "export_path": file.path.display().to_string(),
                "document_count": file.document_count,
                "file_size_bytes": file.size_bytes,
                "message": format!("Project exported to {}", file.path.display()),
            }),
        ),
        Ok(Err(err)) => failure("Failed to export project", &err),
        Err(response) => response,
    }
}

/// `GET /api/v2/projects/{id}/export`: the archive itself, as a download.
pub async fn export_download(
    State(state): State<Arc<ServerState>>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let format = match archive_format(&query) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let target = id.clone();
    let written = blocking(&state, move |s| {
        let mut out = std::io::Cursor::new(Vec::new());
        archive::write_archive(&s.projects, &target, format, &mut out)
            .map(|exported| (out.into_inner(), exported.project))
    })
    .await;
    match written {
        Ok(Ok((bytes, project))) => {
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
            response
        }
        Ok(Err(err)) => failure("Failed to export project", &err),
        Err(response) => response,
    }
}

/// The 413 of an import over one of its limits: KnowledgeBeast's too-large shape, with the
/// limit and how to raise it.
fn import_too_large(message: String) -> Response {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &json!({
            "error": "RequestEntityTooLarge",
            "message": "Import archive too large",
            "detail": message,
            "status_code": 413,
        }),
    )
}

/// The uploaded `file`, read chunk by chunk up to the upload limit.
async fn upload(
    field: &mut axum::extract::multipart::Field<'_>,
    limits: &ArchiveLimits,
) -> Result<Bytes, Response> {
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

pub(super) fn upload_too_large(limits: &ArchiveLimits) -> Response {
    import_too_large(
        archive::ArchiveError::TooLarge {
            limit: Limit::ArchiveBytes,
            max: limits.max_archive_bytes,
            what: "the archive is".to_owned(),
        }
        .to_string(),
    )
}

/// A multipart stream that broke off: cut at the body limit (413), or malformed (400).
fn invalid_upload(
    err: &axum::extract::multipart::MultipartError,
    limits: &ArchiveLimits,
) -> Response {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        upload_too_large(limits)
    } else {
        detail(StatusCode::BAD_REQUEST, format!("Invalid upload: {err}"))
    }
}

/// `POST /api/v2/projects/import`: multipart with an archive `file` (ZIP or JSON), optional
/// `new_name` and `overwrite`.
pub async fn import(State(state): State<Arc<ServerState>>, mut multipart: Multipart) -> Response {
    let limits = state.config.import;
    let mut file: Option<Bytes> = None;
    let mut new_name: Option<String> = None;
    let mut overwrite = false;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return invalid_upload(&err, &limits),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let data = match upload(&mut field, &limits).await {
            Ok(data) => data,
            Err(response) => return response,
        };
        match name.as_str() {
            "file" => file = Some(data),
            "new_name" => {
                new_name =
                    Some(String::from_utf8_lossy(&data).trim().to_owned()).filter(|n| !n.is_empty())
            }
            "overwrite" => {
                overwrite = matches!(
                    String::from_utf8_lossy(&data)
                        .trim()
                        .to_ascii_lowercase()
                        .as_str(),
                    "true" | "1" | "yes" | "on"
                )
            }
            _ => {}
        }
    }
    let Some(file) = file else {
        return validation_error("body.file: Field required");
    };
    let config = ImportConfig {
        new_name,
        overwrite,
    };
    let result = blocking(&state, move |s| {
        let archive = std::io::Cursor::new(file);
        archive::import(
            &s.projects,
            archive,
            &config,
            &limits,
            &mneme_kb::NoProgress,
        )
    })
    .await;
    match result {
        Ok(Ok(imported)) => {
            let (project, count) = (imported.project, imported.document_count);
            json_response(
                StatusCode::CREATED,
                &json!({
                    "success": true,
                    "project_id": project.project_id,
                    "project_name": project.name,
                    "document_count": count,
                    "message": format!("Project imported as {} with {count} documents", project.name),
                }),
            )
        }
        Ok(Err(err)) => match err {
            ArchiveError::TooLarge { .. } => import_too_large(err.to_string()),
            ArchiveError::Invalid(message) => detail(
                StatusCode::BAD_REQUEST,
                format!("Failed to import project: {message}"),
            ),
            ArchiveError::Project(err) => failure("Failed to import project", &err),
        },
        Err(response) => response,
    }
}
