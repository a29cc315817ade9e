//! The middleware every request passes, outermost first: `observe` (request and trace ids,
//! timing, security headers, access log, metrics), then `limits` (request size, query-string
//! length; the plain-text or empty 4xx answers of the layers below in the API's JSON shape),
//! then CORS and the cross-site checks (`crosssite.rs`), then `guard` (API keys and rate limits
//! on `/api`, the optional key of KATO's routes). Panics in handlers become a 500 and the
//! server keeps serving.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;
use super::auth::{self, Access};
use crate::error::{ApiError, is_kb_path};

const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("x-xss-protection", "1; mode=block"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "geolocation=(), microphone=(), camera=()",
    ),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
    ),
];

fn header_id(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
}

/// Route label for metrics: the matched route template, never the raw path (which would let
/// clients create unbounded label sets).
fn route_label(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned())
}

pub async fn observe(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = state.in_flight.enter();
    let request_id = header_id(request.headers(), "x-request-id")
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let trace_id = header_id(request.headers(), "x-trace-id").unwrap_or_else(|| request_id.clone());
    let method = request.method().clone();
    let route = route_label(&request);
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let client = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |c| c.0.ip().to_string());
    let https = request
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));

    let mut response = next.run(request).await;
    // The router's own 405 has no body: answer FastAPI's (both originals give it).
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = response.headers().get(header::ALLOW).cloned();
        let mut answer = ApiError::method_not_allowed();
        if let Some(allow) = allow {
            answer = answer.with_header(header::ALLOW, allow);
        }
        response = answer.into_response();
    }

    // Every server error is logged with its request id, so that what a client reports can be
    // found (its body is small JSON: read whole, logged, and sent on unchanged).
    if response.status().is_server_error() {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20)
            .await
            .unwrap_or_default();
        tracing::error!(
            request_id = %request_id,
            "{method} {path_and_query} answered {}: {}",
            parts.status.as_u16(),
            String::from_utf8_lossy(&bytes)
        );
        response = Response::from_parts(parts, axum::body::Body::from(bytes));
    }

    let elapsed = started.elapsed();
    let status = response.status();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        headers.insert("x-trace-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{:.4}", elapsed.as_secs_f64())) {
        headers.insert("x-process-time", value);
    }
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(*name)
            .or_insert(HeaderValue::from_static(value));
    }
    if https {
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains; preload"),
        );
    }
    let labels = vec![
        ("method", method.to_string()),
        ("route", route.clone()),
        ("status", status.as_u16().to_string()),
    ];
    state.metrics.add(
        "mneme_http_requests_total",
        "HTTP requests by method, route and status",
        labels.clone(),
        1.0,
    );
    state.metrics.observe(
        "mneme_http_request_duration_seconds",
        "HTTP request latency by method, route and status",
        labels,
        elapsed.as_secs_f64(),
    );
    if status.is_server_error() {
        state.metrics.add(
            "mneme_http_errors_total",
            "HTTP 5xx answers by route",
            vec![("route", route.clone())],
            1.0,
        );
    }
    if route.starts_with("/sessions/") {
        state.metrics.add(
            "kato_session_operations_total",
            "KATO session operations",
            Vec::new(),
            1.0,
        );
    }
    tracing::info!(
        target: "mneme::access",
        "{client} \"{method} {path_and_query}\" {} {:.2}ms request_id={request_id}",
        status.as_u16(),
        elapsed.as_secs_f64() * 1000.0,
    );
    response
}

/// The 413 answer: KnowledgeBeast's body under `/api`, FastAPI's `detail` elsewhere (KATO has
/// no limit of its own, so its clients get the shape of its other errors).
fn too_large(path: &str, message: &str, detail: String, setting: &str) -> Response {
    let detail = if is_kb_path(path) {
        detail
    } else {
        format!("{detail}; the server's {setting} sets it")
    };
    ApiError::for_path(
        path,
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        message,
        &detail,
    )
    .into_response()
}

pub async fn limits(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    // An import has a bound of its own (its archive), answered with the import's 413.
    let is_import = path == super::IMPORT_PATH;
    let max_body = if is_import {
        super::import_body_limit(&state.config.import)
    } else {
        state.config.max_request_size
    };
    let body_too_large = || {
        if is_import {
            return super::kb_v2::upload_too_large(&state.config.import).into_response();
        }
        too_large(
            &path,
            "Request body too large",
            format!(
                "Maximum request size is {max_body} bytes ({}MB)",
                max_body / (1024 * 1024)
            ),
            "KB_MAX_REQUEST_SIZE",
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_body) {
        return body_too_large();
    }
    let max_query = state.config.max_query_length;
    if request
        .uri()
        .query()
        .is_some_and(|q| q.len() as u64 > max_query)
    {
        return too_large(
            &path,
            "Query string too long",
            format!("Maximum query length is {max_query} characters"),
            "KB_MAX_QUERY_LENGTH",
        );
    }
    let encoding = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    // The router's 405 gets FastAPI's own body in `observe`.
    if !response.status().is_client_error()
        || response.status() == StatusCode::METHOD_NOT_ALLOWED
        || !plain
    {
        return response;
    }
    // A streamed body over the limit is cut by the body extractor with a plain-text 413;
    // answer it in the same shape as a declared one.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return body_too_large();
    }
    in_api_shape(&path, encoding.as_deref(), response).await
}

/// The plain-text or empty answers of the layers below (request decompression, axum's
/// extractors), in the API's JSON error shape, their message kept.
async fn in_api_shape(path: &str, encoding: Option<&str>, response: Response) -> Response {
    let status = response.status();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    // The compression layer below may have gzipped the text already: read it decoded (the
    // answer built here goes out uncompressed).
    let gzipped = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let bytes = if gzipped {
        let mut decoded = Vec::new();
        use std::io::Read as _;
        match flate2::read::GzDecoder::new(&bytes[..])
            .take(64 * 1024)
            .read_to_end(&mut decoded)
        {
            Ok(_) => decoded,
            Err(_) => Vec::new(),
        }
    } else {
        bytes.to_vec()
    };
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let detail = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE && text.is_empty() {
        format!(
            "Content-Encoding {:?} is not supported; send the body uncompressed or gzip-compressed once",
            encoding.unwrap_or("")
        )
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("Bad request")
            .to_owned()
    } else {
        text
    };
    // KnowledgeBeast's error names are the reason phrase without spaces (`NotFound`).
    let error: String = status
        .canonical_reason()
        .unwrap_or("Bad Request")
        .split_whitespace()
        .collect();
    let message = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported request body",
        StatusCode::BAD_REQUEST if encoding.is_some() => "The request body could not be decoded",
        _ => "Invalid request",
    };
    let mut answer = ApiError::for_path(path, status, &error, message, &detail).into_response();
    // Keep what the layer said besides the body (`Accept-Encoding` of a 415, `Allow`).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && name != header::CONTENT_ENCODING
        {
            answer.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    answer
}

/// API keys and rate limits for `/api/*`; the optional key of KATO's routes.
pub async fn guard(
    State(state): State<Arc<ServerState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let mcp = path == super::MCP_PATH || path.starts_with("/mcp/");
    if !path.starts_with("/api/") && !mcp {
        if auth::is_kato_route(path) {
            if let Err(response) = auth::authenticate_kato(&state, request.headers()) {
                return response;
            }
        }
        return next.run(request).await;
    }
    let access = match auth::authenticate(&state, request.method(), path, request.headers()) {
        Ok(access) => access,
        Err(response) => return response,
    };
    let client = match &access {
        Access::Open => request
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string()),
        Access::Global(key) => format!("key:{}", auth::fingerprint(key)),
        Access::Project { project_id, key_id } => format!("project-key:{project_id}/{key_id}"),
    };
    let route = route_label(&request);
    let limited = state.limiter.check(&client, &route);
    request.extensions_mut().insert(access);
    let mut response = match &limited {
        Err(rejection) => rejection.response(),
        Ok(_) => next.run(request).await,
    };
    let headers = response.headers_mut();
    if let Ok(Some(window))
    | Err(super::ratelimit::Rejection {
        window: Some(window),
        ..
    }) = &limited
    {
        headers.insert("x-ratelimit-limit", HeaderValue::from(window.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(window.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(window.reset_unix));
    }
    response
}

/// The answer to a panic inside a handler (the server keeps serving).
pub fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = crate::error::panic_message(payload.as_ref());
    tracing::error!("a request handler panicked: {message}");
    ApiError::panicked().into_response()
}
