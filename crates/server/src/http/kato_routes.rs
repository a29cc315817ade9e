//! KATO's routes: the request is handed to `kato::Api` as method, path, query and parsed JSON
//! body, on a blocking thread (predictions are CPU work).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ServerState;
use super::common::json_response;
use crate::kato::{Freshness, Request};

/// KATO's routes, as axum templates. Unknown actions of a session fall to the catch-all
/// template, which answers as KATO does (its middleware's 404 for an unknown session, else
/// `Not Found`); other unknown paths reach the router's `{"detail": "Not Found"}` fallback.
pub const TEMPLATES: &[&str] = &[
    "/sessions",
    "/sessions/count",
    "/sessions/{session_id}",
    "/sessions/{session_id}/exists",
    "/sessions/{session_id}/observe",
    "/sessions/{session_id}/observe-sequence",
    "/sessions/{session_id}/learn",
    "/sessions/{session_id}/predictions",
    "/sessions/{session_id}/stm",
    "/sessions/{session_id}/clear-stm",
    "/sessions/{session_id}/clear-all",
    "/sessions/{session_id}/config",
    "/sessions/{session_id}/extend",
    "/sessions/{session_id}/finalize-training",
    "/sessions/{session_id}/cognition-data",
    "/sessions/{session_id}/percept-data",
    "/sessions/{session_id}/{*rest}",
    "/pattern/{pattern_id}",
    "/symbols/stats",
    "/symbols/affinity",
    "/symbols/{symbol}/affinity",
];

pub async fn handle(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let freshness = if no_cache(&headers) {
        Freshness::Computed
    } else {
        Freshness::Any
    };
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) => Some(value),
            Err(err) => return json_invalid(&err),
        }
    };
    let method_name = method.as_str().to_owned();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (test_id, node_header) = (header("x-test-id"), header("x-node-id"));
    let serve = move |state: &ServerState| {
        state.kato.serve(&Request {
            freshness,
            test_id: test_id.as_deref(),
            node_header: node_header.as_deref(),
            ..Request::new(&method_name, &path, &query, parsed.as_ref())
        })
    };
    let reply = if state.kato.runs_quickly(method.as_str(), uri.path()) {
        Ok(serve(&state))
    } else {
        // CPU-bound work (scoring) runs on at most twice as many threads as there are cores, so
        // a burst queues in order instead of time-slicing dozens of threads.
        let _permit = state.blocking_slots.acquire().await;
        let worker = state.clone();
        tokio::task::spawn_blocking(move || serve(&worker)).await
    };
    let reply = match reply {
        Ok(reply) => reply,
        Err(_) => return super::middleware::internal_error("the request handler failed"),
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.raw {
        Some(bytes) => {
            let mut response = (status, bytes).into_response();
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        None => json_response(status, &reply.body),
    };
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    if let ["sessions", id, _, ..] = segments.as_slice() {
        if let Ok(value) = HeaderValue::from_str(id) {
            response.headers_mut().insert("x-session-id", value);
        }
    }
    response
}

/// FastAPI's answer to a body that is not JSON.
fn json_invalid(err: &serde_json::Error) -> Response {
    let body = json!({"detail": [{
        "type": "json_invalid",
        "loc": ["body", err.column().saturating_sub(1)],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": err.to_string()},
    }]});
    json_response(StatusCode::UNPROCESSABLE_ENTITY, &body)
}

/// `WS /ws/events`: a snapshot on connect, then session events; `ping` is answered `pong`.
pub async fn websocket(
    State(state): State<Arc<ServerState>>,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    upgrade.on_upgrade(move |socket| events(socket, state))
}

async fn events(mut socket: WebSocket, state: Arc<ServerState>) {
    // KATO stamps the snapshot with `datetime.now().isoformat()` (naive local time), the events
    // with UTC.
    let snapshot = json!({
        "event_type": "state.snapshot",
        "timestamp": mneme_app::time::iso_local(std::time::SystemTime::now()),
        "data": {"active_sessions": state.kato.active_sessions(), "system_status": "healthy"},
    });
    if socket
        .send(Message::Text(snapshot.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut events = state.events.subscribe();
    let mut closing = state.closing.subscribe();
    loop {
        tokio::select! {
            _ = closing.changed() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) if text.as_str() == "ping" => {
                    if socket.send(Message::Text("pong".into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            event = events.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            },
        }
    }
}

/// Whether the request says `Cache-Control: no-cache` (or `no-store`, or `Pragma: no-cache`):
/// the client wants an answer computed now, not one the server remembered.
fn no_cache(headers: &HeaderMap) -> bool {
    let says = |name, word: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|d| d.trim().eq_ignore_ascii_case(word)))
        })
    };
    says(axum::http::header::CACHE_CONTROL, "no-cache")
        || says(axum::http::header::CACHE_CONTROL, "no-store")
        || says(axum::http::header::PRAGMA, "no-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cache_reads_the_request_directives() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.append(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            map
        };
        assert!(!no_cache(&headers(&[])));
        assert!(no_cache(&headers(&[("cache-control", "no-cache")])));
        assert!(no_cache(&headers(&[(
            "Cache-Control",
            "max-age=0, No-Cache"
        )])));
        assert!(no_cache(&headers(&[("cache-control", "no-store")])));
        assert!(no_cache(&headers(&[("pragma", "no-cache")])));
        assert!(!no_cache(&headers(&[("cache-control", "max-age=60")])));
        assert!(!no_cache(&headers(&[("cache-control", "no-cache-please")])));
    }
}
