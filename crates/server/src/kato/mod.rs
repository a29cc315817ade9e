//! KATO's REST API (3.10.1) over the session service: one method of [`Api`] per endpoint,
//! taking the decoded path parameters and a [`Request`] (method, query, JSON body, node
//! headers) and answering a [`Reply`] (status, JSON body, headers) as KATO would, so that the
//! HTTP routes and in-process callers (tests, `mneme seq` via `commands`) share it. Failures
//! are [`ApiError`]s, whose statuses come from the one table (`crate::error::status`).

pub mod answers;
pub mod commands;
pub mod json;
pub mod request;

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use mneme_app::patterns::Patterns;
use mneme_app::sessions::{SessionError, SessionView};
use mneme_seq::config::{Defaults, kb_id};
use mneme_seq::node::Node;
use mneme_seq::pyfmt::MetaValue;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::lax::{self, Dialect};
use answers::*;

/// An answer: status, JSON body and the headers that go with it. Answers are serialised
/// into `raw` (no JSON tree is built for them), with `body` null; error answers carry their
/// body as a tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub raw: Option<Bytes>,
    /// `Retry-After` of a 503, `WWW-Authenticate`, ...
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Reply {
    /// A 200 whose body is already serialised.
    fn raw(bytes: Bytes) -> Reply {
        Reply {
            status: 200,
            body: Value::Null,
            raw: Some(bytes),
            headers: Vec::new(),
        }
    }

    /// A 200 with `answer` as its body.
    fn of<T: Serialize>(answer: &T) -> Reply {
        Reply::raw(Bytes::from(
            serde_json::to_vec(answer).unwrap_or_else(|_| b"{}".to_vec()),
        ))
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

impl From<ApiError> for Reply {
    fn from(err: ApiError) -> Reply {
        Reply {
            status: err.status().as_u16(),
            body: err.body(),
            raw: None,
            headers: err.headers().to_vec(),
        }
    }
}

impl<T: Serialize> From<Result<T, ApiError>> for Reply {
    fn from(result: Result<T, ApiError>) -> Reply {
        match result {
            Ok(answer) => Reply::of(&answer),
            Err(err) => Reply::from(err),
        }
    }
}

pub use mneme_app::sessions::{Freshness, MAX_TTL_SECONDS, Options, SessionCounts, Sessions};

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

    /// The body read as a `T`, or FastAPI's 422.
    fn read<T: lax::Request>(&self) -> Result<T, ApiError> {
        lax::body::<T>(self.body.cloned())
            .map_err(|problems| ApiError::invalid(Dialect::Kato, &problems))
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

type Answer<T> = Result<T, ApiError>;

/// The methods an action of a session answers (`None`: not an action; the catch-all route's
/// `Not Found` after the session check).
fn allowed_methods(action: &str) -> Option<&'static [&'static str]> {
    match action {
        "stm" | "predictions" | "cognition-data" | "percept-data" | "exists" => Some(&["GET"]),
        "config" => Some(&["GET", "POST"]),
        "observe" | "observe-sequence" | "learn" | "clear-stm" | "clear-all" | "extend"
        | "finalize-training" => Some(&["POST"]),
        _ => None,
    }
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
            "POST" => self.create_session(request).into(),
            _ => ApiError::method_not_allowed().into(),
        }
    }

    /// `GET /sessions/count`.
    pub fn count(&self, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => Reply::of(&Count {
                active_session_count: self.active_sessions(),
            }),
            _ => self.session("count", request),
        }
    }

    /// `/sessions/{session_id}`: GET and DELETE.
    pub fn session(&self, id: &str, request: &Request<'_>) -> Reply {
        let answer = match request.method {
            "GET" => self.get_session(id),
            method => {
                // KATO's middleware answers for an unknown session whatever the method.
                if let Err(err) = self.sessions.check(id) {
                    return ApiError::from_session(err).into();
                }
                match method {
                    "DELETE" => {
                        return self
                            .sessions
                            .delete(id)
                            .map(|()| Done {
                                status: "deleted",
                                session_id: id.to_owned(),
                            })
                            .map_err(ApiError::from)
                            .into();
                    }
                    _ => Err(ApiError::method_not_allowed()),
                }
            }
        };
        answer.into()
    }

    /// `GET /sessions/{session_id}/exists` (no middleware check: an unknown session exists not).
    pub fn exists(&self, id: &str, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self
                .sessions
                .exists(id)
                .map(|(exists, expired)| Exists {
                    exists,
                    expired,
                    session_id: id.to_owned(),
                })
                .map_err(ApiError::from)
                .into(),
            _ => self.action(id, "exists", request),
        }
    }

    /// `/sessions/{session_id}/{action}`: KATO's middleware answers an unknown session first
    /// (404 `SESSION_NOT_FOUND`, whatever the method or action), then the action runs, an
    /// unknown one is `Not Found`, another method 405.
    pub fn action(&self, id: &str, action: &str, request: &Request<'_>) -> Reply {
        if let Err(err) = self.sessions.check(id) {
            return ApiError::from_session(err).into();
        }
        self.session_action(id, request, action)
    }

    /// Whether the work of `action` on the session never waits for the disk and is short CPU
    /// work (session reads, an observe whose session cannot auto-learn, predictions), so that
    /// the HTTP layer may run it on its async thread instead of handing it to a blocking one.
    /// Learns wait for their commit, so anything that may learn is not quick.
    pub fn runs_quickly(&self, id: &str, action: &str, method: &str) -> bool {
        if self.sessions.is_remote() {
            return false;
        }
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
            "GET" => self.pattern_reply(pattern_id, request).into(),
            _ => ApiError::method_not_allowed().into(),
        }
    }

    /// `GET /symbols/stats`.
    pub fn symbol_stats(&self, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self
                .node_reply(request, |node, node_id| SymbolStatsAnswer {
                    symbols: json::symbol_stats(&node.symbol_stats()),
                    node_id,
                })
                .into(),
            _ => ApiError::method_not_allowed().into(),
        }
    }

    /// `GET /symbols/affinity`.
    pub fn affinities(&self, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self
                .node_reply(request, |node, node_id| {
                    let all: Map<String, Value> = node
                        .affinities()
                        .into_iter()
                        .map(|(s, v)| (s, json::affinity(&v)))
                        .collect();
                    AffinitiesAnswer {
                        affinities: Value::Object(all),
                        node_id,
                    }
                })
                .into(),
            _ => ApiError::method_not_allowed().into(),
        }
    }

    /// `GET /symbols/{symbol}/affinity`.
    pub fn affinity(&self, symbol: &str, request: &Request<'_>) -> Reply {
        match request.method {
            "GET" => self
                .node_reply(request, |node, node_id| AffinityAnswer {
                    symbol: symbol.to_owned(),
                    affinity: json::affinity(&node.affinity(symbol)),
                    node_id,
                })
                .into(),
            _ => ApiError::method_not_allowed().into(),
        }
    }

    fn create_session(&self, request: &Request<'_>) -> Answer<SessionAnswer> {
        let request = request.read::<request::CreateSession>()?;
        // Validated: 0 or absent means the server's default, otherwise 1..=MAX_TTL_SECONDS.
        let requested = request.ttl_seconds.get().copied().filter(|t| *t > 0);
        let info = self.sessions.create(mneme_app::sessions::NewSession {
            node_id: request.node_id.into_inner().unwrap_or_default(),
            ttl_seconds: requested.map(|t| t as u64),
            metadata_json: Value::Object(request.metadata.into_inner().unwrap_or_default())
                .to_string(),
            config: request.config.get().map(meta_pairs).unwrap_or_default(),
        })?;
        let mut answer = self.session_answer(&info);
        // KATO reports the requested TTL, or the literal 3600.
        answer.ttl_seconds = requested.map_or(3600, |t| t as u64);
        Ok(answer)
    }

    fn session_answer(&self, info: &mneme_app::sessions::SessionInfo) -> SessionAnswer {
        SessionAnswer {
            session_id: info.id.clone(),
            node_id: info.node_id.clone(),
            created_at: iso(info.created_at),
            expires_at: iso(info.expires_at),
            ttl_seconds: info.remaining_seconds,
            metadata: serde_json::from_str(&info.metadata_json).unwrap_or_else(|_| json!({})),
            session_config: json::effective_config(self.defaults(), &info.config),
        }
    }

    fn get_session(&self, id: &str) -> Answer<SessionAnswer> {
        match self.sessions.get(id) {
            Ok(info) => Ok(self.session_answer(&info)),
            // The route's own 404 (FastAPI's `detail`), not the middleware's.
            Err(SessionError::NotFound { .. }) => Err(ApiError::detail(
                StatusCode::NOT_FOUND,
                format!("Session {id} not found or expired"),
            )),
            Err(err) => Err(ApiError::from_session(err)),
        }
    }

    fn session_action(&self, id: &str, request: &Request<'_>, action: &str) -> Reply {
        let not_found = || ApiError::detail(StatusCode::NOT_FOUND, "Not Found").into();
        if action.contains('/') {
            return not_found();
        }
        let method = request.method;
        let Some(allowed) = allowed_methods(action) else {
            return not_found();
        };
        if !allowed.contains(&method) {
            return ApiError::method_not_allowed().into();
        }
        let sessions = &self.sessions;
        let session_id = || id.to_owned();
        match (method, action) {
            ("POST", "observe") => self.observe(id, request).into(),
            ("POST", "observe-sequence") => self.observe_sequence(id, request).into(),
            ("GET", "stm") => sessions
                .read(id, |view| {
                    let stm = view.record.state.stm.clone();
                    Stm {
                        length: stm.len(),
                        stm,
                        session_id: session_id(),
                    }
                })
                .map_err(ApiError::from)
                .into(),
            ("POST", "learn") => sessions
                .learn(id)
                .map(|learned| LearnedAnswer {
                    status: "learned",
                    message: format!(
                        "Learned pattern {} from {} events",
                        learned.name, learned.stm_length
                    ),
                    pattern_name: learned.name,
                    session_id: session_id(),
                    processor_id: None,
                })
                .map_err(ApiError::from)
                .into(),
            ("POST", "clear-stm") => sessions
                .clear_stm(id)
                .map(|()| Done {
                    status: "cleared",
                    session_id: session_id(),
                })
                .map_err(ApiError::from)
                .into(),
            ("POST", "clear-all") => sessions
                .clear_all(id)
                .map(|()| ClearedAll {
                    status: "cleared",
                    session_id: session_id(),
                    scope: "all",
                })
                .map_err(ApiError::from)
                .into(),
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
                            let mut bytes = Vec::with_capacity(256 + set.predictions.len() * 1536);
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
                    Err(err) => ApiError::from_session(err).into(),
                }
            }
            ("GET", "cognition-data") => sessions
                .read(id, cognition_data)
                .map_err(ApiError::from)
                .into(),
            ("GET", "percept-data") => sessions
                .read(id, percept_data)
                .map_err(ApiError::from)
                .into(),
            ("GET", "config") => sessions
                .read(id, |view| ConfigAnswer {
                    session_id: session_id(),
                    config: json::effective_config(self.defaults(), &view.record.config),
                })
                .map_err(ApiError::from)
                .into(),
            ("POST", "config") => self.update_config(id, request).into(),
            ("POST", "extend") => self.extend(id, request).into(),
            ("POST", "finalize-training") => sessions
                .finalize_training(id)
                .map(|done| {
                    let (count, ms) = (done.patterns, done.time_ms);
                    FinalizedAnswer {
                        status: "completed",
                        patterns_processed: count,
                        time_ms: ms,
                        session_id: session_id(),
                        node_id: done.node_id,
                        message: format!(
                            "Computed Shannon entropy and TF vectors for {count} patterns in {ms}ms"
                        ),
                    }
                })
                .map_err(ApiError::from)
                .into(),
            _ => ApiError::method_not_allowed().into(),
        }
    }

    fn observe(&self, id: &str, request: &Request<'_>) -> Answer<ObservedAnswer> {
        let (observation, _) = request
            .read::<request::ObservationData>()?
            .into_observation();
        let observed = self.sessions.observe(id, &observation)?;
        let outcome = observed.outcome;
        Ok(ObservedAnswer {
            status: "okay",
            session_id: id.to_owned(),
            processor_id: observed.node_id,
            // The session as saved.
            stm_length: outcome.stm_length.min(mneme_seq::session::MAX_STM_EVENTS),
            time: outcome.time,
            unique_id: format!("obs-{}", uuid::Uuid::new_v4().simple()),
            auto_learned_pattern: outcome.auto_learned.map(|h| format!("PTRN|{h}")),
        })
    }

    fn observe_sequence(&self, id: &str, request: &Request<'_>) -> Answer<SequenceAnswer> {
        let request = request.read::<request::ObserveSequence>()?;
        let (learn_after_each, learn_at_end, clear_stm_between) = (
            request.learn_after_each(),
            request.learn_at_end(),
            request.clear_stm_between(),
        );
        let (observations, unique_ids): (Vec<_>, Vec<_>) = request
            .observations
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .map(request::ObservationData::into_observation)
            .unzip();
        let sequence = mneme_app::sessions::ObserveSequence {
            observations,
            learn_after_each,
            learn_at_end,
            clear_stm_between,
        };
        let done = self.sessions.observe_sequence(id, &sequence)?;
        let results = done
            .items
            .iter()
            .zip(unique_ids)
            .enumerate()
            .map(|(position, (item, unique_id))| SequenceItemAnswer {
                status: "okay",
                sequence_position: position,
                stm_length: item.stm_length,
                time: item.time,
                unique_id: unique_id
                    .unwrap_or_else(|| format!("seq-obs-{}", uuid::Uuid::new_v4().simple())),
                auto_learned_pattern: item.auto_learned.clone(),
            })
            .collect();
        Ok(SequenceAnswer {
            status: "completed",
            processor_id: done.node_id,
            observations_processed: done.items.len(),
            initial_stm_length: done.initial_stm_length,
            final_stm_length: done.final_stm_length,
            results,
            auto_learned_patterns: done.learned,
            final_learned_pattern: done.final_learned,
            isolated: clear_stm_between,
        })
    }

    fn update_config(&self, id: &str, request: &Request<'_>) -> Answer<Updated> {
        let map = lax::object(request.body.cloned(), &[json!("body")])
            .map_err(|problems| ApiError::invalid(Dialect::Kato, &problems))?;
        // `{"config": {...}}`, or the bare object.
        let changes = match map.get("config") {
            Some(Value::Object(inner)) => inner,
            _ => &map,
        };
        self.sessions.update_config(id, &meta_pairs(changes))?;
        Ok(Updated {
            status: "okay",
            message: "Configuration updated",
            session_id: id.to_owned(),
        })
    }

    fn extend(&self, id: &str, request: &Request<'_>) -> Answer<Extended> {
        let ttl = lax::query::<request::ExtendQuery>(request.query)
            .map_err(|problems| ApiError::invalid(Dialect::Kato, &problems))?
            .ttl_seconds() as u64;
        self.sessions.extend(id, ttl)?;
        Ok(Extended {
            status: "extended",
            session_id: id.to_owned(),
            ttl_seconds: ttl,
        })
    }

    /// A node-level answer of the request's node (see [`Request::node_id`]), given its kb_id.
    fn node_reply<T>(
        &self,
        request: &Request<'_>,
        answer: impl FnOnce(&Node, String) -> T,
    ) -> Answer<T> {
        let node_id = request.node_id();
        let node = self
            .patterns()
            .node_to_read(&node_id)
            .map_err(|err| ApiError::from_seq(&err))?;
        Ok(answer(
            &node,
            kb_id(&node_id, &self.defaults().service_name),
        ))
    }

    fn pattern_reply(&self, pattern_id: &str, request: &Request<'_>) -> Answer<PatternAnswer> {
        let hash = pattern_id
            .strip_prefix("PTRN|")
            .unwrap_or(pattern_id)
            .to_owned();
        self.node_reply(request, |node, node_id| PatternAnswer {
            pattern: match node.pattern(&hash) {
                Some(view) => json!({"status": "okay", "pattern": json::pattern(&view)}),
                None => {
                    json!({"status": "error", "message": format!("Pattern {pattern_id} not found")})
                }
            },
            node_id,
        })
    }
}

fn cognition_data(view: &SessionView<'_>) -> CognitionAnswer {
    let state = &view.record.state;
    let symbols: Vec<String> = state.stm.iter().flatten().cloned().collect();
    CognitionAnswer {
        cognition_data: Cognition {
            predictions: state
                .predictions
                .get(view.node)
                .iter()
                .map(json::prediction)
                .collect(),
            emotives: state.emotives.last().map_or(json!({}), json::emotives),
            symbols,
            command: "",
            metadata: json!({}),
            path: Vec::new(),
            strings: Vec::new(),
            vectors: Vec::new(),
            short_term_memory: state.stm.clone(),
            time: state.time,
        },
        session_id: view.record.id.clone(),
        node_id: view.record.node_id.clone(),
    }
}

fn percept_data(view: &SessionView<'_>) -> PerceptAnswer {
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
    PerceptAnswer {
        percept_data: percept,
        session_id: view.record.id.clone(),
        node_id: view.record.node_id.clone(),
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
