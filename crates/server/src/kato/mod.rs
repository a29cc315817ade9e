//! KATO's REST API (3.10.1) as plain functions: `Api::handle(method, path, query, body)`
//! returns the status and JSON body KATO would, so that HTTP and in-process callers share it.
//! Session state lives here (in memory, with sliding expiry); long-term memory in
//! `app::patterns`.

pub mod commands;
pub mod json;
pub mod request;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use mneme_app::patterns::Patterns;
use mneme_app::sessions::SessionView;
use mneme_seq::config::{Defaults, kb_id};
use mneme_seq::error::Error as SeqError;
use mneme_seq::node::Node;
use mneme_seq::pyfmt::MetaValue;
use serde_json::{Map, Value, json};

/// An answer: status code and JSON body. Large answers (predictions) come already
/// serialised in `raw`, with `body` null, so that no JSON tree is built for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub raw: Option<Bytes>,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body,
            raw: None,
        }
    }

    /// A 200 whose body is already serialised.
    fn raw(bytes: Bytes) -> Reply {
        Reply {
            status: 200,
            body: Value::Null,
            raw: Some(bytes),
        }
    }

    fn detail(status: u16, detail: impl Into<Value>) -> Reply {
        Reply {
            status,
            body: json!({"detail": detail.into()}),
            raw: None,
        }
    }

    /// FastAPI's 422 for a request that fails validation.
    fn unprocessable(errors: &[request::FieldError]) -> Reply {
        Reply {
            status: 422,
            body: request::detail(errors),
            raw: None,
        }
    }

    /// FastAPI's answer to a known path asked with another method.
    fn method_not_allowed() -> Reply {
        Reply::detail(405, "Method Not Allowed")
    }

    fn session_not_found(id: &str) -> Reply {
        Reply {
            status: 404,
            body: json!({"error": {"code": "SESSION_NOT_FOUND", "message": format!("Session {id} not found or expired"), "session_id": id}}),
            raw: None,
        }
    }

    /// The body as a JSON value, whichever form it has.
    pub fn json(&self) -> Value {
        match &self.raw {
            Some(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
            None => self.body.clone(),
        }
    }

    /// The body as bytes, whichever form it has.
    pub fn into_bytes(self) -> Vec<u8> {
        match self.raw {
            Some(bytes) => bytes.to_vec(),
            None => serde_json::to_vec(&self.body).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }
}

pub use mneme_app::sessions::{
    Freshness, MAX_TTL_SECONDS, Options, SessionCounts, SessionError, Sessions,
};

/// One request, with what KATO's routes read from it besides the path (which the router has
/// matched and decoded).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// The parsed JSON body; `None` when the request had none.
    pub body: Option<&'a Value>,
    pub freshness: Freshness,
    /// The `x-test-id` header, which names the node of node-level requests (after `node_id`).
    pub test_id: Option<&'a str>,
    /// The `x-node-id` header (after `x-test-id`).
    pub node_header: Option<&'a str>,
}

impl<'a> Request<'a> {
    pub fn new(method: &'a str, query: &'a str, body: Option<&'a Value>) -> Self {
        Request {
            method,
            query,
            body,
            freshness: Freshness::Any,
            test_id: None,
            node_header: None,
        }
    }

    /// KATO's node of a node-level request: the `node_id` query parameter, else the
    /// `x-test-id` header (prefixed `test_` unless it already is), else `x-node-id`, else
    /// `default_node`.
    pub fn node_id(&self) -> String {
        if let Some(node) = query_param(self.query, "node_id") {
            return node;
        }
        if let Some(test) = self.test_id {
            return if test.starts_with("test_") {
                test.to_owned()
            } else {
                format!("test_{test}")
            };
        }
        self.node_header.unwrap_or("default_node").to_owned()
    }
}

/// KATO's routes over the session service.
pub struct Api {
    sessions: Arc<Sessions>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("sessions", &self.sessions)
            .finish()
    }
}

pub use mneme_app::time::iso;

fn meta_pairs(map: &Map<String, Value>) -> Vec<(String, MetaValue)> {
    map.iter()
        .map(|(k, v)| (k.clone(), json::to_meta(v)))
        .collect()
}

/// The answer of a session operation that failed: KATO's middleware 404 for an unknown
/// session, the engine's errors as KATO words them, 503 when the session store is down.
fn session_failure(err: SessionError) -> Reply {
    match err {
        SessionError::NotFound { id, .. } => Reply::session_not_found(&id),
        SessionError::Seq { source, position } => {
            let mut reply = error_reply(source);
            if let (Some(position), Some(detail)) = (position, reply.body["detail"].as_object_mut())
            {
                if detail.contains_key("expected_dimension") {
                    detail.insert("observation_index".to_owned(), json!(position));
                }
            }
            reply
        }
        SessionError::Config(errors) => {
            let errors: Map<String, Value> = errors
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Reply::detail(
                400,
                json!({"error": "Configuration validation failed", "validation_errors": errors}),
            )
        }
        SessionError::Store(err) => Reply::detail(503, err.to_string()),
    }
}

fn ok_or_failure(result: Result<Value, SessionError>) -> Reply {
    result.map_or_else(session_failure, Reply::ok)
}

impl Api {
    pub fn new(patterns: Arc<Patterns>, options: Options) -> Api {
        Api::from_sessions(Arc::new(Sessions::in_memory(patterns, options)))
    }

    /// With a clock of the caller's (tests drive expiry with it).
    pub fn with_clock(
        patterns: Arc<Patterns>,
        options: Options,
        clock: Box<dyn Fn() -> SystemTime + Send + Sync>,
    ) -> Api {
        Api::from_sessions(Arc::new(Sessions::new(
            patterns,
            Arc::new(mneme_app::sessions::MemorySessions::default()),
            options,
            clock,
        )))
    }

    pub fn from_sessions(sessions: Arc<Sessions>) -> Api {
        Api { sessions }
    }

    /// The session service behind the routes.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Lifecycle counters and current session counts.
    pub fn session_counts(&self) -> SessionCounts {
        self.sessions.counts()
    }

    /// Drops every expired session; returns how many.
    pub fn sweep_expired(&self) -> usize {
        self.sessions.sweep_expired().unwrap_or(0)
    }

    pub fn patterns(&self) -> &Patterns {
        self.sessions.patterns()
    }

    fn defaults(&self) -> &Defaults {
        self.patterns().defaults()
    }

    /// Number of sessions that have not expired. Never waits for a session's lock.
    pub fn active_sessions(&self) -> usize {
        self.sessions.active().unwrap_or(0)
    }

    /// `POST /sessions`.
    pub fn create(&self, request: &Request<'_>) -> Reply {
        match request.method {
            "POST" => self.create_session(request.body),
            _ => Reply::method_not_allowed(),
        }
    }

    /// `GET /sessions/count`.
    pub fn count(&self, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => Reply::ok(json!({"active_session_count": self.active_sessions()})),
            _ => self.session("count", request),
        }
    }

    /// `/sessions/{session_id}`: GET and DELETE.
    pub fn session(&self, id: &str, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self.get_session(id),
            method => {
                // KATO's middleware answers for an unknown session whatever the method.
                if let Err(err) = self.sessions.check(id) {
                    return session_failure(err);
                }
                match method {
                    "DELETE" => self.delete_session(id),
                    _ => Reply::method_not_allowed(),
                }
            }
        }
    }

    /// `GET /sessions/{session_id}/exists` (no middleware check: an unknown session exists not).
    pub fn exists(&self, id: &str, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self.session_exists(id),
            _ => self.action(id, "exists", request),
        }
    }

    /// `/sessions/{session_id}/{action}`: KATO's middleware answers an unknown session first
    /// (404 `SESSION_NOT_FOUND`, whatever the method or action), then the action runs, an
    /// unknown one is `Not Found`, another method 405.
    pub fn action(&self, id: &str, action: &str, request: &Request<'_>) -> Reply {
        if let Err(err) = self.sessions.check(id) {
            return session_failure(err);
        }
        self.session_action(id, request, action)
    }

    /// Whether the work of `action` on the session never waits for the disk and is short CPU
    /// work (session reads, an observe whose session cannot auto-learn, predictions), so that
    /// the HTTP layer may run it on its async thread instead of handing it to a blocking one.
    /// Learns wait for their commit, so anything that may learn is not quick.
    pub fn runs_quickly(&self, id: &str, action: &str, method: &str) -> bool {
        match (method, action) {
            ("POST", "observe") => self.sessions.observe_cannot_learn(id),
            ("GET", "predictions" | "stm" | "config" | "exists" | "percept-data")
            | ("POST", "clear-stm" | "extend" | "config") => true,
            _ => false,
        }
    }

    /// `GET /pattern/{pattern_id}`.
    pub fn pattern(&self, pattern_id: &str, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self.pattern_reply(pattern_id, request),
            _ => Reply::method_not_allowed(),
        }
    }

    /// `GET /symbols/stats`.
    pub fn symbol_stats(&self, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self.node_reply(
                request,
                |node| json!({"symbols": json::symbol_stats(&node.symbol_stats())}),
            ),
            _ => Reply::method_not_allowed(),
        }
    }

    /// `GET /symbols/affinity`.
    pub fn affinities(&self, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self.node_reply(request, |node| {
                let all: Map<String, Value> = node
                    .affinities()
                    .into_iter()
                    .map(|(s, v)| (s, json::affinity(&v)))
                    .collect();
                json!({"affinities": Value::Object(all)})
            }),
            _ => Reply::method_not_allowed(),
        }
    }

    /// `GET /symbols/{symbol}/affinity`.
    pub fn affinity(&self, symbol: &str, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self.node_reply(request, |node| json!({"symbol": symbol, "affinity": json::affinity(&node.affinity(symbol))})),
            _ => Reply::method_not_allowed(),
        }
    }

    fn create_session(&self, body: Option<&Value>) -> Reply {
        let request = match request::create_session(body) {
            Ok(request) => request,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        // Validated: 0 or absent means the server's default, otherwise 1..=MAX_TTL_SECONDS.
        let requested = request.ttl_seconds.filter(|t| *t > 0);
        let created = self.sessions.create(mneme_app::sessions::NewSession {
            node_id: request.node_id,
            ttl_seconds: requested.map(|t| t as u64),
            metadata_json: Value::Object(request.metadata).to_string(),
            config: request.config.as_ref().map(meta_pairs).unwrap_or_default(),
        });
        match created {
            Ok(info) => {
                let mut reply = self.session_json(&info);
                // KATO reports the requested TTL, or the literal 3600.
                reply["ttl_seconds"] = json!(requested.unwrap_or(3600));
                Reply::ok(reply)
            }
            Err(SessionError::Seq { source, .. }) => Reply::detail(500, source.to_string()),
            Err(err) => session_failure(err),
        }
    }

    fn session_json(&self, info: &mneme_app::sessions::SessionInfo) -> Value {
        let metadata: Value =
            serde_json::from_str(&info.metadata_json).unwrap_or_else(|_| json!({}));
        json!({
            "session_id": info.id,
            "node_id": info.node_id,
            "created_at": iso(info.created_at),
            "expires_at": iso(info.expires_at),
            "ttl_seconds": info.remaining_seconds,
            "metadata": metadata,
            "session_config": json::effective_config(self.defaults(), &info.config),
        })
    }

    fn get_session(&self, id: &str) -> Reply {
        match self.sessions.get(id) {
            Ok(info) => Reply::ok(self.session_json(&info)),
            Err(SessionError::Store(err)) => Reply::detail(503, err.to_string()),
            Err(_) => Reply::detail(404, format!("Session {id} not found or expired")),
        }
    }

    fn delete_session(&self, id: &str) -> Reply {
        ok_or_failure(
            self.sessions
                .delete(id)
                .map(|()| json!({"status": "deleted", "session_id": id})),
        )
    }

    fn session_exists(&self, id: &str) -> Reply {
        ok_or_failure(self.sessions.exists(id).map(
            |(exists, expired)| json!({"exists": exists, "expired": expired, "session_id": id}),
        ))
    }

    fn session_action(&self, id: &str, request: &Request<'_>, action: &str) -> Reply {
        if action.contains('/') {
            return Reply::detail(404, "Not Found");
        }
        let (method, body) = (request.method, request.body);
        let allowed: &[&str] = match action {
            "stm" | "predictions" | "cognition-data" | "percept-data" | "exists" => &["GET"],
            "config" => &["GET", "POST"],
            "observe" | "observe-sequence" | "learn" | "clear-stm" | "clear-all" | "extend"
            | "finalize-training" => &["POST"],
            _ => return Reply::detail(404, "Not Found"),
        };
        if !allowed.contains(&method) {
            return Reply::method_not_allowed();
        }
        let sessions = &self.sessions;
        match (method, action) {
            ("POST", "observe") => self.observe(id, body),
            ("POST", "observe-sequence") => self.observe_sequence(id, body),
            ("GET", "stm") => ok_or_failure(sessions.read(id, |view| {
                let stm = &view.record.state.stm;
                json!({"stm": stm, "session_id": id, "length": stm.len()})
            })),
            ("POST", "learn") => ok_or_failure(sessions.learn(id).map(|learned| {
                json!({
                    "status": "learned",
                    "pattern_name": learned.name,
                    "session_id": id,
                    "processor_id": null,
                    "message": format!("Learned pattern {} from {} events", learned.name, learned.stm_length),
                })
            })),
            ("POST", "clear-stm") => ok_or_failure(
                sessions
                    .clear_stm(id)
                    .map(|()| json!({"status": "cleared", "session_id": id})),
            ),
            ("POST", "clear-all") => match sessions.clear_all(id) {
                Ok(()) => Reply::ok(json!({"status": "cleared", "session_id": id, "scope": "all"})),
                Err(SessionError::Seq { source, .. }) => Reply::detail(500, source.to_string()),
                Err(err) => session_failure(err),
            },
            ("GET", "predictions") => {
                let render = |answer: mneme_app::sessions::Answer<'_>, id: &str| {
                    use mneme_app::sessions::Answer;
                    let bytes = match answer {
                        Answer::Full(answer) => {
                            let mut bytes = Vec::with_capacity(256 + answer.len() * 1536);
                            json::write_full_answer_reply(&mut bytes, answer, id);
                            bytes
                        }
                        Answer::Set(set) => {
                            let mut bytes =
                                Vec::with_capacity(256 + set.predictions.len() * 1536);
                            json::write_predictions_reply(
                                &mut bytes,
                                &set.predictions,
                                &set.future_potentials,
                                id,
                            );
                            bytes
                        }
                    };
                    Bytes::from(bytes)
                };
                match sessions.predictions(id, request.freshness, &render) {
                    Ok(bytes) => Reply::raw(bytes),
                    Err(err) => session_failure(err),
                }
            }
            ("GET", "cognition-data") => ok_or_failure(sessions.read(id, cognition_data)),
            ("GET", "percept-data") => ok_or_failure(sessions.read(id, percept_data)),
            ("GET", "config") => ok_or_failure(sessions.read(id, |view| {
                json!({"session_id": id, "config": json::effective_config(self.defaults(), &view.record.config)})
            })),
            ("POST", "config") => self.update_config(id, body),
            ("POST", "extend") => match request::ttl_query(request.query) {
                Ok(ttl) => ok_or_failure(sessions.extend(id, ttl).map(|()| {
                    json!({"status": "extended", "session_id": id, "ttl_seconds": ttl})
                })),
                Err(errors) => Reply::unprocessable(&errors),
            },
            ("POST", "finalize-training") => {
                ok_or_failure(sessions.finalize_training(id).map(|done| {
                    let (count, ms) = (done.patterns, done.time_ms);
                    json!({
                        "status": "completed",
                        "patterns_processed": count,
                        "time_ms": ms,
                        "session_id": id,
                        "node_id": done.node_id,
                        "message": format!("Computed Shannon entropy and TF vectors for {count} patterns in {ms}ms"),
                    })
                }))
            }
            _ => Reply::method_not_allowed(),
        }
    }

    fn observe(&self, id: &str, body: Option<&Value>) -> Reply {
        let parsed =
            request::object(body).and_then(|map| request::observation(map, &[json!("body")]));
        let (observation, _) = match parsed {
            Ok(parsed) => parsed,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        ok_or_failure(self.sessions.observe(id, &observation).map(|observed| {
            let outcome = observed.outcome;
            json!({
                "status": "okay",
                "session_id": id,
                "processor_id": observed.node_id,
                // The session as saved.
                "stm_length": outcome.stm_length.min(mneme_seq::session::MAX_STM_EVENTS),
                "time": outcome.time,
                "unique_id": format!("obs-{}", uuid::Uuid::new_v4().simple()),
                "auto_learned_pattern": outcome.auto_learned.map(|h| format!("PTRN|{h}")),
            })
        }))
    }

    fn observe_sequence(&self, id: &str, body: Option<&Value>) -> Reply {
        let request = match request::observe_sequence(body) {
            Ok(request) => request,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        let (observations, unique_ids): (Vec<_>, Vec<_>) = request.observations.into_iter().unzip();
        let sequence = mneme_app::sessions::ObserveSequence {
            observations,
            learn_after_each: request.learn_after_each,
            learn_at_end: request.learn_at_end,
            clear_stm_between: request.clear_stm_between,
        };
        let clear_stm_between = sequence.clear_stm_between;
        ok_or_failure(self.sessions.observe_sequence(id, &sequence).map(|done| {
            let results: Vec<Value> = done
                .items
                .iter()
                .zip(unique_ids)
                .enumerate()
                .map(|(position, (item, unique_id))| {
                    json!({
                        "status": "okay",
                        "sequence_position": position,
                        "stm_length": item.stm_length,
                        "time": item.time,
                        "unique_id": unique_id.unwrap_or_else(|| format!("seq-obs-{}", uuid::Uuid::new_v4().simple())),
                        "auto_learned_pattern": item.auto_learned,
                    })
                })
                .collect();
            json!({
                "status": "completed",
                "processor_id": done.node_id,
                "observations_processed": done.items.len(),
                "initial_stm_length": done.initial_stm_length,
                "final_stm_length": done.final_stm_length,
                "results": results,
                "auto_learned_patterns": done.learned,
                "final_learned_pattern": done.final_learned,
                "isolated": clear_stm_between,
            })
        }))
    }

    fn update_config(&self, id: &str, body: Option<&Value>) -> Reply {
        let map = match request::object(body) {
            Ok(map) => map,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        // `{"config": {...}}`, or the bare object.
        let changes = match map.get("config") {
            Some(Value::Object(inner)) => inner,
            _ => map,
        };
        ok_or_failure(self.sessions.update_config(id, &meta_pairs(changes)).map(
            |()| json!({"status": "okay", "message": "Configuration updated", "session_id": id}),
        ))
    }

    /// A node-level answer: `body` of the request's node (see [`Request::node_id`]), with its kb_id.
    fn node_reply(&self, request: &Request<'_>, body: impl FnOnce(&Node) -> Value) -> Reply {
        let node_id = request.node_id();
        match self.patterns().node_to_read(&node_id) {
            Ok(node) => {
                let mut value = body(&node);
                value["node_id"] = json!(kb_id(&node_id, &self.defaults().service_name));
                Reply::ok(value)
            }
            Err(err) => Reply::detail(500, err.to_string()),
        }
    }

    fn pattern_reply(&self, pattern_id: &str, request: &Request<'_>) -> Reply {
        let hash = pattern_id
            .strip_prefix("PTRN|")
            .unwrap_or(pattern_id)
            .to_owned();
        self.node_reply(request, |node| match node.pattern(&hash) {
            Some(view) => json!({"pattern": {"status": "okay", "pattern": json::pattern(&view)}}),
            None => json!({"pattern": {"status": "error", "message": format!("Pattern {pattern_id} not found")}}),
        })
    }
}

fn cognition_data(view: &SessionView<'_>) -> Value {
    let state = &view.record.state;
    let symbols: Vec<&String> = state.stm.iter().flatten().collect();
    json!({
        "cognition_data": {
            "predictions": state.predictions.get(view.node).iter().map(json::prediction).collect::<Vec<_>>(),
            "emotives": state.emotives.last().map_or(json!({}), json::emotives),
            "symbols": symbols,
            "command": "",
            "metadata": {},
            "path": [],
            "strings": [],
            "vectors": [],
            "short_term_memory": state.stm,
            "time": state.time,
        },
        "session_id": view.record.id,
        "node_id": view.record.node_id,
    })
}

fn percept_data(view: &SessionView<'_>) -> Value {
    let percept = match &view.record.state.percept {
        None => json!({}),
        Some(p) => json!({
            "strings": p.strings,
            "vectors": p.vectors.iter().map(|v| v.iter().map(|x| json::float(*x)).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "emotives": json::emotives(&p.emotives),
            "path": [],
            "metadata": Value::Object(p.metadata.iter().map(|(k, v)| (k.clone(), json::from_meta(v))).collect()),
        }),
    };
    json!({"percept_data": percept, "session_id": view.record.id, "node_id": view.record.node_id})
}

fn error_reply(err: SeqError) -> Reply {
    match err {
        SeqError::EmptyStm => Reply::detail(400, "Cannot learn from empty STM"),
        SeqError::Vector(v) => Reply::detail(
            400,
            json!({
                "error": "VectorDimensionError",
                "message": format!("Vector dimension mismatch: expected {}, got {}", v.expected, v.actual),
                "expected_dimension": v.expected,
                "actual_dimension": v.actual,
                "vector_name": v.vector_name,
            }),
        ),
        other => Reply::detail(500, other.to_string()),
    }
}

/// A query-string parameter, decoded (`+` is a space).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(&v.replace('+', " ")))
}

/// `%XX` decoding of a path segment or query value (invalid escapes are kept as they are).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
