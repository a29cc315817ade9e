//! `/openapi.json` (OpenAPI 3.1, generated from the route table and the request types' schemas) and `/docs`, a page that
//! lists every endpoint with its request body, rendered on the server so it works offline and
//! under the strict content-security policy.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

use super::common::VERSION;
use super::routes::{Named, Route, TAGS, table};
use super::{ServerSettings, ServerState};

/// The document of the route table: each documented operation with its path parameters,
/// query parameters and body from the request types' schemas, which go to the components.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let add = |named: Named, schemas: &mut Map<String, Value>| -> Value {
        for (name, schema) in named.nested {
            schemas.insert(name, to_value(&schema));
        }
        let schema = to_value(&named.schema);
        schemas.insert(named.name.clone(), schema.clone());
        schema
    };
    for route in routes.iter().filter(|r| !r.ops.is_empty()) {
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        for op in &route.ops {
            let answer = match op.answer {
                Some(answer) => {
                    let named = answer();
                    let name = named.name.clone();
                    add(named, &mut schemas);
                    json!({"schema": {"$ref": format!("#/components/schemas/{name}")}})
                }
                None => json!({}),
            };
            // The typed answer is the JSON one; other media types are named without a schema.
            let content: serde_json::Map<String, Value> = op
                .media
                .iter()
                .map(|&media| {
                    let schema = if media == "application/json" {
                        answer.clone()
                    } else {
                        json!({})
                    };
                    (media.to_owned(), schema)
                })
                .collect();
            let mut operation = json!({
                "tags": [route.tag],
                "summary": op.summary,
                "responses": {op.status: {"description": "Success", "content": content}},
            });
            let mut params: Vec<Value> = route
                .path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect();
            if let Some(query) = op.query {
                let schema = add(query(), &mut schemas);
                let required = schema["required"].as_array().cloned().unwrap_or_default();
                if let Some(fields) = schema["properties"].as_object() {
                    for (name, field) in fields {
                        params.push(json!({
                            "name": name,
                            "in": "query",
                            "required": required.contains(&json!(name)),
                            "schema": field,
                        }));
                    }
                }
            }
            if !params.is_empty() {
                operation["parameters"] = Value::Array(params);
            }
            if let Some(body) = op.body {
                let named = body();
                let name = named.name.clone();
                add(named, &mut schemas);
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}},
                });
            }
            if op.multipart {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"multipart/form-data": {"schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary", "description": "The archive: KnowledgeBeast's ZIP or mneme's JSON"},
                            "new_name": {"type": "string", "description": "The imported project's name (default the archive's)"},
                            "overwrite": {"type": "boolean", "default": false, "description": "Replace a project of the same name"},
                        },
                    }}},
                });
            }
            if route.path.starts_with("/api/") {
                operation["security"] = json!([{"APIKeyHeader": []}]);
            }
            entry[op.method] = operation;
        }
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
            "schemas": schemas,
            "securitySchemes": {"APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    })
}

fn to_value(schema: &RefOr<Schema>) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// The document and the page, made once (the route table does not change while the server runs).
fn cached(config: &ServerSettings) -> &'static (String, String) {
    static DOCS: OnceLock<(String, String)> = OnceLock::new();
    DOCS.get_or_init(|| {
        let routes = table(config);
        let doc = document(&routes);
        (doc.to_string(), render(&doc, &routes))
    })
}

/// `GET /openapi.json`
pub async fn openapi(State(state): State<Arc<ServerState>>) -> Response {
    let mut response = (StatusCode::OK, cached(&state.config).0.clone()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /docs`
pub async fn swagger(State(state): State<Arc<ServerState>>) -> Response {
    let mut response = (StatusCode::OK, cached(&state.config).1.clone()).into_response();
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

fn render(doc: &Value, routes: &[Route]) -> String {
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
    for tag in TAGS {
        html.push_str(&format!("<h2>{}</h2>", escape(tag)));
        for (route, op) in routes
            .iter()
            .filter(|r| r.tag == tag)
            .flat_map(|r| r.ops.iter().map(move |op| (r, op)))
        {
            html.push_str(&format!(
                "<div class=\"op\"><span class=\"m {m}\">{m}</span><code>{}</code> — {}",
                escape(route.path),
                escape(op.summary),
                m = op.method
            ));
            if let Some(body) = op.body {
                let schema = body().name;
                let schema = schema.as_str();
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
