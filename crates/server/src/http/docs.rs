//! `/openapi.json` (OpenAPI 3.1, written by hand from the route table) and `/docs`, a page that
//! lists every endpoint with its request body, rendered on the server so it works offline and
//! under the strict content-security policy.

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::common::VERSION;

/// One operation: method, path, tag, summary, request schema, success status.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    status: &'static str,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
) -> Op {
    Op {
        method,
        path,
        tag,
        summary,
        body,
        status: "200",
    }
}

const KB1: &str = "knowledge base (v1)";
const KB2: &str = "projects (v2)";
const KATO: &str = "pattern engine (KATO)";
const SERVICE: &str = "service";

const OPS: &[Op] = &[
    op(
        "get",
        "/",
        SERVICE,
        "Service description (KnowledgeBeast and KATO fields)",
        None,
    ),
    op(
        "get",
        "/health",
        SERVICE,
        "Health of the knowledge base, pattern engine and disk",
        None,
    ),
    op(
        "get",
        "/metrics",
        SERVICE,
        "Prometheus text (Accept: text/plain) or KATO's JSON metrics",
        None,
    ),
    op(
        "get",
        "/status",
        SERVICE,
        "Sessions and loaded pattern nodes",
        None,
    ),
    op(
        "get",
        "/stats",
        SERVICE,
        "Sampled time series of the last `minutes` (default 10)",
        None,
    ),
    op(
        "get",
        "/metrics/{name}",
        SERVICE,
        "One sampled series with count, min, max and average",
        None,
    ),
    op(
        "get",
        "/ui",
        SERVICE,
        "Web page: search, results and stats",
        None,
    ),
    op(
        "post",
        "/api/v1/query",
        KB1,
        "Ranked search (limit, offset, mode keyword|terms; `cached` says whether the cache answered)",
        Some("QueryRequest"),
    ),
    op(
        "post",
        "/api/v1/query/paginated",
        KB1,
        "Ranked search, one page, with totals",
        Some("PaginatedQueryRequest"),
    ),
    op(
        "post",
        "/api/v1/ingest",
        KB1,
        "Ingest one file inside the knowledge directories (incremental)",
        Some("IngestRequest"),
    ),
    op(
        "post",
        "/api/v1/batch-ingest",
        KB1,
        "Ingest up to 100 files in one commit",
        Some("BatchIngestRequest"),
    ),
    op(
        "post",
        "/api/v1/warm",
        KB1,
        "Re-scan the knowledge directories and run the warming queries",
        Some("WarmRequest"),
    ),
    op(
        "post",
        "/api/v1/cache/clear",
        KB1,
        "Empty the query-result cache",
        None,
    ),
    op(
        "get",
        "/api/v1/stats",
        KB1,
        "Documents, terms, cache and query counters",
        None,
    ),
    op("get", "/api/v1/health", KB1, "Knowledge-base health", None),
    op(
        "get",
        "/api/v1/heartbeat/status",
        KB1,
        "State of the periodic re-scan",
        None,
    ),
    op(
        "post",
        "/api/v1/heartbeat/start",
        KB1,
        "Start re-scanning the knowledge directories every KB_HEARTBEAT_INTERVAL seconds",
        None,
    ),
    op(
        "post",
        "/api/v1/heartbeat/stop",
        KB1,
        "Stop the periodic re-scan",
        None,
    ),
    op(
        "get",
        "/api/v1/collections",
        KB1,
        "The single `default` collection",
        None,
    ),
    op(
        "get",
        "/api/v1/collections/{name}",
        KB1,
        "One collection (only `default` exists)",
        None,
    ),
    Op {
        method: "post",
        path: "/api/v2/projects",
        tag: KB2,
        summary: "Create a project",
        body: Some("ProjectCreate"),
        status: "201",
    },
    op(
        "get",
        "/api/v2/projects",
        KB2,
        "List projects, newest first",
        None,
    ),
    op(
        "get",
        "/api/v2/projects/{project_id}",
        KB2,
        "Get a project",
        None,
    ),
    op(
        "put",
        "/api/v2/projects/{project_id}",
        KB2,
        "Update a project",
        Some("ProjectUpdate"),
    ),
    op(
        "delete",
        "/api/v2/projects/{project_id}",
        KB2,
        "Delete a project and its index",
        None,
    ),
    op(
        "post",
        "/api/v2/projects/{project_id}/ingest",
        KB2,
        "Ingest a file or inline content",
        Some("ProjectIngestRequest"),
    ),
    op(
        "post",
        "/api/v2/projects/{project_id}/query",
        KB2,
        "Search a project",
        Some("ProjectQueryRequest"),
    ),
    op(
        "post",
        "/api/v2/projects/{project_id}/query/stream",
        KB2,
        "Search a project, answered as Server-Sent Events",
        Some("ProjectQueryRequest"),
    ),
    op(
        "post",
        "/api/v2/projects/{project_id}/export",
        KB2,
        "Write an export under the data directory (ZIP; `?format=json` for JSON)",
        None,
    ),
    op(
        "get",
        "/api/v2/projects/{project_id}/export",
        KB2,
        "Download an export (ZIP; `?format=json` for JSON)",
        None,
    ),
    Op {
        method: "post",
        path: "/api/v2/projects/import",
        tag: KB2,
        summary: "Import a ZIP or JSON export (multipart: file, new_name, overwrite)",
        body: None,
        status: "201",
    },
    Op {
        method: "post",
        path: "/api/v2/projects/{project_id}/api-keys",
        tag: KB2,
        summary: "Create a project API key (shown once)",
        body: Some("APIKeyCreate"),
        status: "201",
    },
    op(
        "get",
        "/api/v2/projects/{project_id}/api-keys",
        KB2,
        "List a project's API keys",
        None,
    ),
    op(
        "delete",
        "/api/v2/projects/{project_id}/api-keys/{key_id}",
        KB2,
        "Revoke an API key",
        None,
    ),
    op(
        "post",
        "/sessions",
        KATO,
        "Create a session on a node",
        Some("CreateSessionRequest"),
    ),
    op(
        "get",
        "/sessions/count",
        KATO,
        "Number of active sessions",
        None,
    ),
    op(
        "get",
        "/sessions/{session_id}",
        KATO,
        "Session details",
        None,
    ),
    op(
        "delete",
        "/sessions/{session_id}",
        KATO,
        "Delete a session",
        None,
    ),
    op(
        "get",
        "/sessions/{session_id}/exists",
        KATO,
        "Whether a session exists",
        None,
    ),
    op(
        "post",
        "/sessions/{session_id}/extend",
        KATO,
        "Extend a session's TTL (?ttl_seconds=)",
        None,
    ),
    op(
        "get",
        "/sessions/{session_id}/config",
        KATO,
        "Effective session configuration",
        None,
    ),
    op(
        "post",
        "/sessions/{session_id}/config",
        KATO,
        "Update session configuration",
        Some("SessionConfigUpdate"),
    ),
    op(
        "post",
        "/sessions/{session_id}/observe",
        KATO,
        "Observe one event",
        Some("ObservationData"),
    ),
    op(
        "post",
        "/sessions/{session_id}/observe-sequence",
        KATO,
        "Observe several events",
        Some("ObserveSequenceRequest"),
    ),
    op(
        "get",
        "/sessions/{session_id}/stm",
        KATO,
        "Short-term memory",
        None,
    ),
    op(
        "post",
        "/sessions/{session_id}/learn",
        KATO,
        "Learn the short-term memory as a pattern",
        None,
    ),
    op(
        "post",
        "/sessions/{session_id}/clear-stm",
        KATO,
        "Clear short-term memory",
        None,
    ),
    op(
        "post",
        "/sessions/{session_id}/clear-all",
        KATO,
        "Clear the node's patterns and the session",
        None,
    ),
    op(
        "get",
        "/sessions/{session_id}/predictions",
        KATO,
        "Predictions for the short-term memory",
        None,
    ),
    op(
        "get",
        "/sessions/{session_id}/cognition-data",
        KATO,
        "Cognition data",
        None,
    ),
    op(
        "get",
        "/sessions/{session_id}/percept-data",
        KATO,
        "Percept data",
        None,
    ),
    op(
        "post",
        "/sessions/{session_id}/finalize-training",
        KATO,
        "Precompute entropy metrics",
        None,
    ),
    op(
        "get",
        "/pattern/{pattern_id}",
        KATO,
        "A learned pattern (?node_id=)",
        None,
    ),
    op(
        "get",
        "/symbols/stats",
        KATO,
        "Symbol frequencies (?node_id=)",
        None,
    ),
    op(
        "get",
        "/symbols/affinity",
        KATO,
        "Emotive affinities of every symbol (?node_id=)",
        None,
    ),
    op(
        "get",
        "/symbols/{symbol}/affinity",
        KATO,
        "Emotive affinity of one symbol (?node_id=)",
        None,
    ),
    op(
        "get",
        "/ws/events",
        KATO,
        "WebSocket: state snapshot, session events, ping/pong",
        None,
    ),
];

fn schemas() -> Value {
    let string = json!({"type": "string"});
    let boolean = |default: bool| json!({"type": "boolean", "default": default});
    let int = |default: i64, min: i64, max: i64| json!({"type": "integer", "default": default, "minimum": min, "maximum": max});
    let query = json!({"type": "string", "minLength": 1, "maxLength": 1000, "description": "No < > ; & | $ ` or line breaks"});
    json!({
        "QueryRequest": {"type": "object", "required": ["query"], "properties": {
            "query": query, "use_cache": boolean(true), "limit": int(10, 1, 100), "offset": int(0, 0, 1_000_000),
            "mode": {"type": "string", "enum": ["keyword", "terms"], "default": "keyword"},
            "full_content": {"type": "boolean", "default": false, "description": "content = the whole document instead of the best passage"},
            "rerank": boolean(false), "rerank_top_k": int(50, 1, 100), "diversity": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        }},
        "PaginatedQueryRequest": {"type": "object", "required": ["query"], "properties": {
            "query": query, "use_cache": boolean(true), "page": int(1, 1, 1_000_000), "page_size": int(10, 1, 100),
            "mode": {"type": "string", "enum": ["keyword", "terms"]}, "full_content": boolean(false),
        }},
        "IngestRequest": {"type": "object", "required": ["file_path"], "properties": {"file_path": string, "metadata": {"type": "object"}}},
        "BatchIngestRequest": {"type": "object", "required": ["file_paths"], "properties": {
            "file_paths": {"type": "array", "items": string, "minItems": 1, "maxItems": 100}, "metadata": {"type": "object"}}},
        "WarmRequest": {"type": "object", "properties": {"force_rebuild": boolean(false)}},
        "ProjectCreate": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[a-zA-Z0-9_\\- ]+$"},
            "description": {"type": "string", "maxLength": 500, "default": ""},
            "embedding_model": {"type": "string", "default": "all-MiniLM-L6-v2"}, "metadata": {"type": "object"}}},
        "ProjectUpdate": {"type": "object", "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100}, "description": {"type": "string", "maxLength": 500},
            "embedding_model": string, "metadata": {"type": "object"}}},
        "ProjectQueryRequest": {"type": "object", "required": ["query"], "properties": {"query": query, "use_cache": boolean(true), "limit": int(10, 1, 100)}},
        "ProjectIngestRequest": {"type": "object", "properties": {"file_path": string, "content": string, "metadata": {"type": "object"}}},
        "APIKeyCreate": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "scopes": {"type": "array", "items": {"type": "string", "enum": ["read", "write", "admin"]}, "default": ["read", "write"]},
            "expires_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 365}}},
        "CreateSessionRequest": {"type": "object", "required": ["node_id"], "properties": {
            "node_id": string, "metadata": {"type": "object"}, "ttl_seconds": {"type": ["integer", "null"]}, "config": {"type": "object"}}},
        "SessionConfigUpdate": {"type": "object", "properties": {"config": {"type": "object"}}},
        "ObservationData": {"type": "object", "properties": {
            "strings": {"type": "array", "items": string}, "vectors": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            "emotives": {"type": "object", "additionalProperties": {"type": "number"}}, "metadata": {"type": "object"}, "unique_id": string}},
        "ObserveSequenceRequest": {"type": "object", "required": ["observations"], "properties": {
            "observations": {"type": "array", "items": {"$ref": "#/components/schemas/ObservationData"}},
            "learn_after_each": boolean(false), "learn_at_end": boolean(false), "clear_stm_between": boolean(false)}},
    })
}

fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let entry = paths.entry(op.path).or_insert_with(|| json!({}));
        let mut operation = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "responses": {op.status: {"description": "Success", "content": {"application/json": {}}}},
        });
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        if let Some(schema) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
            });
        }
        if op.path.starts_with("/api/") {
            operation["security"] = json!([{"APIKeyHeader": []}]);
        }
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mneme",
            "version": VERSION,
            "description": "Knowledge base (KnowledgeBeast's REST API) and pattern engine (KATO's REST API) in one server.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    })
}

fn cached() -> &'static (String, String) {
    static DOCS: OnceLock<(String, String)> = OnceLock::new();
    DOCS.get_or_init(|| {
        let doc = document();
        (doc.to_string(), render(&doc))
    })
}

/// `GET /openapi.json`
pub async fn openapi() -> Response {
    let mut response = (StatusCode::OK, cached().0.clone()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /docs`
pub async fn swagger() -> Response {
    let mut response = (StatusCode::OK, cached().1.clone()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render(doc: &Value) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mneme API</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}\
         h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2rem}\
         .op{margin:.4rem 0;padding:.4rem .6rem;border-radius:4px;background:#f6f8fa}\
         .m{display:inline-block;width:4.5rem;font-weight:bold;text-transform:uppercase}\
         .get{color:#0969da}.post{color:#1a7f37}.put{color:#9a6700}.delete{color:#cf222e}\
         code{font-size:.95em}pre{background:#f6f8fa;padding:.6rem;overflow:auto}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>mneme API <small>{}</small></h1><p>{} The machine-readable description is at \
         <a href=\"/openapi.json\">/openapi.json</a>. Routes under <code>/api</code> need an \
         <code>X-API-Key</code> header when the server has keys (KB_API_KEY).</p>",
        escape(VERSION),
        escape(doc["info"]["description"].as_str().unwrap_or_default())
    ));
    for tag in [SERVICE, KB1, KB2, KATO] {
        html.push_str(&format!("<h2>{}</h2>", escape(tag)));
        for op in OPS.iter().filter(|o| o.tag == tag) {
            html.push_str(&format!(
                "<div class=\"op\"><span class=\"m {m}\">{m}</span><code>{}</code> — {}",
                escape(op.path),
                escape(op.summary),
                m = op.method
            ));
            if let Some(schema) = op.body {
                let body = serde_json::to_string_pretty(&doc["components"]["schemas"][schema])
                    .unwrap_or_default();
                html.push_str(&format!(
                    "<details><summary>{schema}</summary><pre>{}</pre></details>",
                    escape(&body)
                ));
            }
            html.push_str("</div>");
        }
    }
    html.push_str("</body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_document_with_its_schema() {
        let doc = document();
        for op in OPS {
            let operation = &doc["paths"][op.path][op.method];
            assert!(operation.is_object(), "{} {} missing", op.method, op.path);
            if let Some(schema) = op.body {
                assert!(
                    doc["components"]["schemas"][schema].is_object(),
                    "schema {schema} missing"
                );
            }
        }
    }
}
