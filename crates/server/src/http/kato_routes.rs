//! KATO's routes: one axum route per KATO endpoint, each handing `kato::Api` the decoded path
//! parameters and what KATO reads from the request (method, query, JSON body, node headers),
//! inline for short work and on a blocking thread otherwise.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequest, Path, State};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any};
use serde_json::{Value, json};

use super::ServerState;
use super::common::json_response;
use super::work::{self, Lane};
use crate::error::ApiError;
use crate::kato::{Freshness, Reply, Request};

/// The handler of one session action with a route of its own (`observe`, `learn`, ...: the
/// route table in `routes.rs` names them, so that metrics label each). Every method reaches
/// the handlers here, because KATO's middleware answers an unknown session (404
/// `SESSION_NOT_FOUND`) before the method is checked; unknown actions of a session fall to the
/// catch-all template (`Not Found` after the session check), other unknown paths to the
/// router's `{"detail": "Not Found"}` fallback.
pub(super) fn action(name: &'static str) -> MethodRouter<Arc<ServerState>> {
    any(
        move |state: State<Arc<ServerState>>, path: Path<String>, parts: Parts| {
            session_action(state, path, parts, name)
        },
    )
}

/// What KATO reads from a request besides its path, owned so that it can move to a blocking
/// thread.
pub(super) struct Parts {
    method: Method,
    query: String,
    body: Option<Value>,
    freshness: Freshness,
    test_id: Option<String>,
    node_header: Option<String>,
}

impl Parts {
    fn request(&self) -> Request<'_> {
        Request {
            freshness: self.freshness,
            test_id: self.test_id.as_deref(),
            node_header: self.node_header.as_deref(),
            ..Request::new(self.method.as_str(), &self.query, self.body.as_ref())
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Parts {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Parts, Response> {
        let (head, body) = request.into_parts();
        let freshness = if no_cache(&head.headers) {
            Freshness::Computed
        } else {
            Freshness::Any
        };
        let header = |name: &str| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (test_id, node_header) = (header("x-test-id"), header("x-node-id"));
        let (method, query) = (
            head.method.clone(),
            head.uri.query().unwrap_or("").to_owned(),
        );
        let request = axum::extract::Request::from_parts(head, body);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(serde_json::from_slice::<Value>(&bytes).map_err(|err| json_invalid(&err))?)
        };
        Ok(Parts {
            method,
            query,
            body,
            freshness,
            test_id,
            node_header,
        })
    }
}

/// Runs `work` inline when it is `quick` (short CPU work that never waits for the disk), else
/// in the engines' lane of blocking threads (`work::Lane::Cpu`).
async fn run(
    state: Arc<ServerState>,
    quick: bool,
    work: impl FnOnce(&ServerState) -> Reply + Send + 'static,
) -> Reply {
    let lane = if quick { Lane::Inline } else { Lane::Cpu };
    work::run(&state, lane, work)
        .await
        .unwrap_or_else(Reply::from)
}

/// `POST /sessions` takes a blocking thread of its own (it may load its node from disk), not
/// one of the engines' lane: creating a session never queues behind long requests of other
/// sessions that hold every engine thread.
pub(super) async fn create(State(state): State<Arc<ServerState>>, parts: Parts) -> Response {
    let reply = work::run(&state, Lane::Io, move |s| s.kato.create(&parts.request()))
        .await
        .unwrap_or_else(Reply::from);
    respond(reply, None)
}

pub(super) async fn count(State(state): State<Arc<ServerState>>, parts: Parts) -> Response {
    respond(state.kato.count(&parts.request()), None)
}

pub(super) async fn session(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    parts: Parts,
) -> Response {
    respond(state.kato.session(&id, &parts.request()), None)
}

pub(super) async fn exists(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    parts: Parts,
) -> Response {
    let reply = state.kato.exists(&id, &parts.request());
    respond(reply, Some(&id))
}

pub(super) async fn unknown_action(
    State(state): State<Arc<ServerState>>,
    Path((id, action)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let reply = state.kato.action(&id, &action, &parts.request());
    respond(reply, Some(&id))
}

async fn session_action(
    State(state): State<Arc<ServerState>>,
    Path(id): Path<String>,
    parts: Parts,
    action: &'static str,
) -> Response {
    let quick = state.kato.runs_quickly(&id, action, parts.method.as_str());
    let header = id.clone();
    let reply = run(state, quick, move |s| {
        s.kato.action(&id, action, &parts.request())
    })
    .await;
    respond(reply, Some(&header))
}

pub(super) async fn pattern(
    State(state): State<Arc<ServerState>>,
    Path(pattern_id): Path<String>,
    parts: Parts,
) -> Response {
    let reply = run(state, false, move |s| {
        s.kato.pattern(&pattern_id, &parts.request())
    })
    .await;
    respond(reply, None)
}

pub(super) async fn symbol_stats(State(state): State<Arc<ServerState>>, parts: Parts) -> Response {
    let reply = run(state, false, move |s| s.kato.symbol_stats(&parts.request())).await;
    respond(reply, None)
}

pub(super) async fn affinities(State(state): State<Arc<ServerState>>, parts: Parts) -> Response {
    let reply = run(state, false, move |s| s.kato.affinities(&parts.request())).await;
    respond(reply, None)
}

pub(super) async fn affinity(
    State(state): State<Arc<ServerState>>,
    Path(symbol): Path<String>,
    parts: Parts,
) -> Response {
    let reply = run(state, false, move |s| {
        s.kato.affinity(&symbol, &parts.request())
    })
    .await;
    respond(reply, None)
}

/// `POST /mneme/seq`: a `mneme seq` command sent by the CLI when this server holds the pattern
/// store (`kato::commands`); answers what the CLI prints, or `{"error": …}` with 400.
pub(super) async fn seq_command(State(state): State<Arc<ServerState>>, parts: Parts) -> Response {
    let command = match parts
        .body
        .map(serde_json::from_value::<crate::kato::commands::Command>)
    {
        Some(Ok(command)) => command,
        Some(Err(err)) => {
            return ApiError::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("not a mneme seq command: {err}"),
            )
            .into_response();
        }
        None => {
            return ApiError::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "the body must be a mneme seq command",
            )
            .into_response();
        }
    };
    let reply = run(state, false, move |s| {
        match crate::kato::commands::run(s.kato.sessions().patterns_arc(), &command) {
            Ok(value) => Reply::from(Ok::<_, ApiError>(value)),
            Err(message) => ApiError::error(StatusCode::BAD_REQUEST, message).into(),
        }
    })
    .await;
    respond(reply, None)
}

/// The HTTP response of a reply; session routes below `/sessions/{id}/` carry the session's id
/// in `X-Session-ID`.
fn respond(reply: Reply, session: Option<&str>) -> Response {
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
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        headers.insert(name, value);
    }
    if let Some(value) = session.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert("x-session-id", value);
    }
    response
}

/// FastAPI's answer to a body that is not JSON.
fn json_invalid(err: &serde_json::Error) -> Response {
    let problem = crate::lax::Problem::new(
        "json_invalid",
        &[json!("body"), json!(err.column().saturating_sub(1))],
        "JSON decode error",
        &json!({}),
    )
    .with_ctx(json!({"error": err.to_string()}));
    ApiError::invalid(crate::lax::Dialect::Kato, &problem.into()).into_response()
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
