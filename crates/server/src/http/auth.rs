//! `X-API-Key` checks for `/api/*`: the global keys of `KB_API_KEY`, and project keys (stored
//! hashed) on their own project's routes with the scope the route needs.
//!
//! With no global key configured the API is open (the server says so at start). With keys, a
//! request without the header gets 403 `{"detail":"Not authenticated"}` (what KnowledgeBeast's
//! tests and docs expect) and a wrong key 401 `{"detail":"Invalid API key"}`.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mneme_app::projects::Scope;

use super::ServerState;
use crate::error::ApiError;

/// Who a request is, once its key is checked.
#[derive(Clone, Debug)]
pub enum Access {
    /// No keys are configured.
    Open,
    /// A global key.
    Global(String),
    /// A project key, valid for one project.
    Project { project_id: String, key_id: String },
}

/// A short, non-reversible label of a key (rate-limit buckets, logs).
pub fn fingerprint(key: &str) -> String {
    mneme_app::projects::hash_key(key)[..16].to_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn reject(status: StatusCode, detail: &str, scheme: &'static str) -> Response {
    ApiError::detail(status, detail)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme))
        .into_response()
}

/// The scope a project route needs: key management is admin, writes are write, reads read.
fn needed_scope(method: &Method, rest: &[&str]) -> Scope {
    if rest.first() == Some(&"api-keys") {
        return Scope::Admin;
    }
    match *method {
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH => {
            // Queries are reads even though they are POSTs.
            if matches!(rest, ["query"] | ["query", "stream"]) {
                Scope::Read
            } else {
                Scope::Write
            }
        }
        _ => Scope::Read,
    }
}

pub fn authenticate(
    state: &ServerState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<Access, Response> {
    if state.config.api_keys.is_empty() {
        return Ok(Access::Open);
    }
    let Some(presented) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) else {
        return Err(reject(StatusCode::FORBIDDEN, "Not authenticated", "APIKey"));
    };
    if state
        .config
        .api_keys
        .iter()
        .any(|k| constant_time_eq(k.as_bytes(), presented.as_bytes()))
    {
        return Ok(Access::Global(presented.to_owned()));
    }
    let invalid = || reject(StatusCode::UNAUTHORIZED, "Invalid API key", "ApiKey");
    // Project keys are only good on their own project's routes.
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (project_id, rest) = match segments.as_slice() {
        ["api", "v2", "projects", project_id, rest @ ..] => (*project_id, rest),
        // The streaming alias of KnowledgeBeast's example client.
        ["api", "v2", project_id, rest @ ..] if rest == ["query", "stream"] => (*project_id, rest),
        _ => return Err(invalid()),
    };
    if rest.is_empty() && *method != Method::GET {
        // Updating or deleting the project itself.
        return check_project_key(
            state,
            presented,
            project_id,
            if *method == Method::DELETE || *method == Method::PUT {
                Scope::Admin
            } else {
                Scope::Read
            },
        );
    }
    check_project_key(state, presented, project_id, needed_scope(method, rest))
}

fn check_project_key(
    state: &ServerState,
    presented: &str,
    project_id: &str,
    needed: Scope,
) -> Result<Access, Response> {
    let record = match state.projects.verify_key(presented) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return Err(reject(
                StatusCode::UNAUTHORIZED,
                "Invalid API key",
                "ApiKey",
            ));
        }
        Err(err) => {
            return Err(ApiError::from_project("Failed to verify API key", &err).into_response());
        }
    };
    if record.project_id != project_id {
        return Err(reject(
            StatusCode::UNAUTHORIZED,
            "Invalid API key",
            "ApiKey",
        ));
    }
    if !record.allows(needed) {
        let detail = if needed == Scope::Admin {
            format!("Admin access required for project {project_id}")
        } else {
            format!(
                "API key does not have {} access to project {project_id}",
                needed.name()
            )
        };
        return Err(ApiError::detail(StatusCode::FORBIDDEN, detail).into_response());
    }
    Ok(Access::Project {
        project_id: project_id.to_owned(),
        key_id: record.key_id,
    })
}

/// Whether `path` is one of KATO's routes (sessions, node-level reads, monitoring, the
/// websocket); `/`, `/health`, `/metrics` and the docs belong to both APIs and stay open.
pub fn is_kato_route(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(
        first,
        "sessions"
            | "pattern"
            | "symbols"
            | "status"
            | "stats"
            | "percept-data"
            | "cognition-data"
            | "ws"
            | "mneme"
            | "concurrency"
            | "cache"
            | "distributed-stm"
            | "connection-pools"
    ) || path.starts_with("/metrics/")
}

/// KATO's routes with `MNEME_KATO_API_KEY` set: the same answers as KnowledgeBeast's routes
/// (403 without the header, 401 with a wrong key).
pub fn authenticate_kato(state: &ServerState, headers: &HeaderMap) -> Result<(), Response> {
    let keys = &state.config.kato_api_keys;
    if keys.is_empty() {
        return Ok(());
    }
    let Some(presented) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) else {
        return Err(reject(StatusCode::FORBIDDEN, "Not authenticated", "APIKey"));
    };
    if keys
        .iter()
        .any(|k| constant_time_eq(k.as_bytes(), presented.as_bytes()))
    {
        Ok(())
    } else {
        Err(reject(
            StatusCode::UNAUTHORIZED,
            "Invalid API key",
            "ApiKey",
        ))
    }
}
