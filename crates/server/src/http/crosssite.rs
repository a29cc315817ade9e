//! What keeps a web page on another site from using the server through a visitor's browser:
//! the `Host` allowlist (DNS rebinding), the `Origin` of writes and of the websocket, and a
//! JSON content type on JSON bodies (a page can send `text/plain` and form bodies without a
//! CORS preflight).
//!
//! Requests without an `Origin` header (curl, SDKs, other servers) pass unchanged: only a
//! browser sends one, and only a present, disallowed origin is refused.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ServerState;
use crate::error::ApiError;

pub async fn cross_site(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let headers = request.headers();
    let host = request_host(&request);
    if let Err(refused) = check_host(&state.config.allowed_hosts, host.as_deref(), path) {
        return refused.into_response();
    }
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if writes || is_websocket(headers) {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            // Behind a proxy the page's host arrives as X-Forwarded-Host (a header a
            // cross-site page cannot set without a preflight).
            let forwarded = headers
                .get("x-forwarded-host")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim);
            let own: Vec<&str> = host.as_deref().into_iter().chain(forwarded).collect();
            if !origin_allowed(&state.config.allowed_origins, origin, &own) {
                return ApiError::for_path(
                    path,
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "Cross-site request refused",
                    &format!(
                        "origin {origin:?} is not allowed; add it to KB_ALLOWED_ORIGINS (server.allowed_origins) to accept its requests"
                    ),
                )
                .into_response();
            }
        }
    }
    // An import is multipart; every other body is JSON.
    if writes && path != super::IMPORT_PATH && has_body(&request) {
        if let Some(kind) = headers.get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or("");
            if !is_json(kind) {
                return ApiError::for_path(
                    path,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UnsupportedMediaType",
                    "Unsupported Content-Type",
                    &format!(
                        "the body is sent as {kind:?}; this route takes JSON: send Content-Type: application/json"
                    ),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

/// The host a request names: its `Host` header, or the URI's authority (HTTP/2).
fn request_host(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))
}

fn check_host(allowed: &[String], host: Option<&str>, path: &str) -> Result<(), ApiError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let host = host.unwrap_or("");
    let name = host_name(host);
    let accepted = allowed.iter().any(|entry| {
        entry.eq_ignore_ascii_case(host) || (!entry.contains(':') && entry.eq_ignore_ascii_case(name))
            // An IPv6 entry without a port (`[::1]` or `::1`).
            || entry.trim_start_matches('[').trim_end_matches(']').eq_ignore_ascii_case(name.trim_start_matches('[').trim_end_matches(']'))
    });
    if accepted {
        return Ok(());
    }
    Err(ApiError::for_path(
        path,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "Host not allowed",
        &format!(
            "the Host header {host:?} is not one this server answers; add it to MNEME_ALLOWED_HOSTS (server.allowed_hosts)"
        ),
    ))
}

/// `example.com:8000` → `example.com`; `[::1]:8000` → `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// An allowed origin: one of the configured ones (`*` allows any), the server's own origin
/// (its authority is one of `own_hosts`), or a page served from this machine (`localhost`,
/// `127.0.0.1`, `[::1]`, any port).
fn origin_allowed(allowed: &[String], origin: &str, own_hosts: &[&str]) -> bool {
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // `null` (sandboxed frames, files) and anything that is not scheme://host[:port].
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    if authority.is_empty() || authority.contains(['/', '@']) {
        return false;
    }
    if own_hosts
        .iter()
        .any(|host| host.eq_ignore_ascii_case(authority))
    {
        return true;
    }
    let name = host_name(authority);
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]"
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Whether a body may follow: anything but a body known to be empty (no body, or
/// `Content-Length: 0`).
fn has_body(request: &Request) -> bool {
    use axum::body::HttpBody;
    request.body().size_hint().upper() != Some(0)
}

/// FastAPI's rule: `application/json` or `application/*+json`, parameters aside.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let allowed = vec![
            "http://localhost:3000".to_owned(),
            "https://app.example.com".to_owned(),
        ];
        let check = |origin, host: Option<&str>| {
            origin_allowed(&allowed, origin, &host.into_iter().collect::<Vec<_>>())
        };
        assert!(check("https://app.example.com", None));
        assert!(check("https://APP.example.com/", None));
        assert!(check("http://localhost:5173", None), "local pages");
        assert!(check("http://127.0.0.1:9", None));
        assert!(check("http://[::1]:8000", None));
        assert!(
            check("http://mneme.lan:8000", Some("mneme.lan:8000")),
            "same origin"
        );
        assert!(!check("http://mneme.lan:8000", Some("mneme.lan:9000")));
        assert!(!check("https://evil.example", Some("127.0.0.1:8000")));
        assert!(!check("http://localhost.evil.example", None));
        assert!(!check("http://localhost@evil.example", None));
        assert!(!check("null", None));
        assert!(origin_allowed(
            &["*".to_owned()],
            "https://evil.example",
            &[]
        ));
        assert!(
            origin_allowed(
                &allowed,
                "https://kb.example.com",
                &["127.0.0.1:8000", "kb.example.com"]
            ),
            "behind a proxy"
        );
    }

    #[test]
    fn hosts() {
        let allowed = vec![
            "mneme.lan".to_owned(),
            "127.0.0.1:8000".to_owned(),
            "::1".to_owned(),
        ];
        let ok = |host| check_host(&allowed, host, "/").is_ok();
        assert!(ok(Some("mneme.lan")));
        assert!(ok(Some("MNEME.lan:1234")));
        assert!(ok(Some("127.0.0.1:8000")));
        assert!(ok(Some("[::1]:8000")));
        assert!(!ok(Some("127.0.0.1:9000")));
        assert!(!ok(Some("evil.example")));
        assert!(!ok(None));
        assert!(check_host(&[], None, "/").is_ok(), "no list, no check");
    }

    #[test]
    fn json_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("multipart/form-data; boundary=x"));
        assert!(!is_json(""));
    }
}
