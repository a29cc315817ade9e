//! KATO's REST API (3.10.1) as plain functions: `Api::handle(method, path, query, body)`
//! returns the status and JSON body KATO would, so that HTTP and in-process callers share it.
//! Session state lives here (in memory, with sliding expiry); long-term memory in
//! `app::patterns`.

pub mod json;
#[cfg(test)]
mod memo_tests;
pub mod request;
#[cfg(test)]
mod session_tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use mneme_app::patterns::{LoadedNode, NodeUsage, Patterns};
use mneme_seq::config::{Defaults, PredictConfig, RankKey, kb_id};
use mneme_seq::error::Error as SeqError;
use mneme_seq::node::Node;
use mneme_seq::predict::{FuturePotential, takes_full_path};
use mneme_seq::pyfmt::MetaValue;
use mneme_seq::session::Session;
use mneme_seq::session_config::SessionConfig;
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

/// Where mneme deliberately departs from KATO (docs/compatibility.md).
#[derive(Clone, Debug)]
pub struct Options {
    /// Rank predictions by the session's `rank_sort_algo` (KATO always uses the server's).
    pub honour_rank_sort_algo: bool,
    /// Use the session's `persistence` for the emotive window of its learns.
    pub honour_persistence: bool,
    /// Default session lifetime in seconds (`SESSION_TTL`).
    pub session_ttl: u64,
    /// Writes extend a session's lifetime (`SESSION_AUTO_EXTEND`).
    pub auto_extend: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            honour_rank_sort_algo: true,
            honour_persistence: true,
            session_ttl: 3600,
            auto_extend: true,
        }
    }
}

/// One session: when it expires and whether it is gone, readable without waiting for its
/// lock (which a long observe-sequence or learn may hold), and its state behind the lock.
struct Slot {
    /// Milliseconds since the epoch at which the session expires.
    expires_ms: AtomicU64,
    /// Set when the session is deleted or swept: a request that was waiting for the lock
    /// then answers as for an unknown session.
    removed: AtomicBool,
    entry: Mutex<SessionEntry>,
}

impl Slot {
    fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms.load(Ordering::Acquire) <= now_ms
    }

    /// Expired, and no request is working on it: a request that outlives the session's
    /// lifetime (a long observe-sequence) keeps it, and its write then extends it, as KATO's
    /// heartbeat does. Never waits.
    fn to_drop(&self, now_ms: u64) -> bool {
        self.expired(now_ms) && self.entry.try_lock().is_ok()
    }

    fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.expires_ms.load(Ordering::Acquire))
    }

    /// Now plus `ttl` seconds.
    fn extend(&self, now_ms: u64, ttl: u64) {
        self.expires_ms.store(
            now_ms.saturating_add(ttl.saturating_mul(1000)),
            Ordering::Release,
        );
    }

    /// The session's state. A panic while it was held leaves no half-applied change that
    /// matters more than losing the session would, so a poisoned lock is taken as it is.
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionEntry> {
        self.entry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The longest lifetime a session may ask for (100 years): beyond it KATO fails with a 500.
pub const MAX_TTL_SECONDS: i64 = 100 * 365 * 86_400;

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct SessionEntry {
    id: String,
    node_id: String,
    node: Arc<Node>,
    /// The node's usage record (`/status`), touched by every request on the session.
    usage: Arc<NodeUsage>,
    created_at: SystemTime,
    ttl: u64,
    metadata: Map<String, Value>,
    config: SessionConfig,
    state: Session,
    /// The last full-path predictions answer, served again while nothing it depends on changed.
    predictions_memo: Option<PredictionsMemo>,
}

/// A serialised `GET /sessions/{id}/predictions` answer with everything that determines it: the
/// node and its version, the short-term memory and the prediction config. Only full-path answers
/// are kept: the other paths report the node's last future potentials, which other sessions change.
struct PredictionsMemo {
    node: Arc<Node>,
    version: u64,
    stm: Vec<Vec<String>>,
    config: PredictConfig,
    /// The call's future potentials, which a full-path call leaves on the node.
    future_potentials: Arc<Vec<FuturePotential>>,
    bytes: Bytes,
}

impl PredictionsMemo {
    fn answers(&self, session: &SessionEntry, config: &PredictConfig) -> bool {
        Arc::ptr_eq(&self.node, &session.node)
            && self.version == session.node.version()
            && self.stm == session.state.stm
            && self.config == *config
    }
}

/// One request, with what KATO's routes read from it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, still percent-encoded.
    pub path: &'a str,
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
    pub fn new(method: &'a str, path: &'a str, query: &'a str, body: Option<&'a Value>) -> Self {
        Request {
            method,
            path,
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

/// Whether a request accepts a remembered answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// A remembered answer will do (it is always identical to a computed one).
    Any,
    /// Compute it now (`Cache-Control: no-cache`): for benchmarks of the computation itself.
    Computed,
}

pub struct Api {
    patterns: Arc<Patterns>,
    options: Options,
    sessions: RwLock<HashMap<String, Arc<Slot>>>,
    clock: Box<dyn Fn() -> SystemTime + Send + Sync>,
    created: AtomicU64,
    deleted: AtomicU64,
    expired: AtomicU64,
}

/// Session lifecycle counters since start (KATO's `/metrics` `sessions` block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub created: u64,
    pub deleted: u64,
    pub expired: u64,
    /// Sessions held in memory (expired ones not yet swept included).
    pub held: usize,
    pub active: usize,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("options", &self.options)
            .finish()
    }
}

pub use mneme_app::time::iso;

fn meta_pairs(map: &Map<String, Value>) -> Vec<(String, MetaValue)> {
    map.iter()
        .map(|(k, v)| (k.clone(), json::to_meta(v)))
        .collect()
}

impl Api {
    pub fn new(patterns: Arc<Patterns>, options: Options) -> Api {
        Api::with_clock(patterns, options, Box::new(SystemTime::now))
    }

    /// With a clock of the caller's (tests drive expiry with it).
    pub fn with_clock(
        patterns: Arc<Patterns>,
        options: Options,
        clock: Box<dyn Fn() -> SystemTime + Send + Sync>,
    ) -> Api {
        Api {
            patterns,
            options,
            sessions: RwLock::new(HashMap::new()),
            clock,
            created: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        }
    }

    /// Lifecycle counters and current session counts.
    pub fn session_counts(&self) -> SessionCounts {
        SessionCounts {
            created: self.created.load(Ordering::Relaxed),
            deleted: self.deleted.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            held: self
                .sessions
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
            active: self.active_sessions(),
        }
    }

    /// Drops every expired session; returns how many. The server calls it periodically so
    /// that sessions nobody touches again do not stay in memory.
    pub fn sweep_expired(&self) -> usize {
        let now = self.now_ms();
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        let before = sessions.len();
        sessions.retain(|_, slot| {
            let keep = !slot.to_drop(now);
            if !keep {
                slot.removed.store(true, Ordering::Release);
            }
            keep
        });
        let swept = before - sessions.len();
        self.expired.fetch_add(swept as u64, Ordering::Relaxed);
        swept
    }

    pub fn patterns(&self) -> &Patterns {
        &self.patterns
    }

    fn defaults(&self) -> &Defaults {
        self.patterns.defaults()
    }

    /// Number of sessions that have not expired. Never waits for a session's lock.
    pub fn active_sessions(&self) -> usize {
        let now = self.now_ms();
        let sessions = self.sessions.read().unwrap_or_else(|p| p.into_inner());
        sessions.values().filter(|slot| !slot.expired(now)).count()
    }

    fn now_ms(&self) -> u64 {
        unix_ms((self.clock)())
    }

    /// Whether a request never waits for the disk and is short CPU work (session reads, an
    /// observe whose session cannot auto-learn, predictions), so that the HTTP layer may run
    /// it on its async thread instead of handing it to a blocking one. Learns wait for their
    /// commit, so anything that may learn is not quick.
    pub fn runs_quickly(&self, method: &str, path: &str) -> bool {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", ["sessions", id, "observe"]) => self.entry(id).is_some_and(|slot| {
                slot.entry.try_lock().is_ok_and(|session| {
                    session
                        .config
                        .observe_config(self.defaults(), false)
                        .max_pattern_length
                        == 0
                })
            }),
            ("GET", ["sessions", _, "predictions"]) => true,
            ("GET", ["sessions", "count"])
            | ("GET", ["sessions", _])
            | ("GET", ["sessions", _, "stm" | "config" | "exists" | "percept-data"])
            | ("POST", ["sessions", _, "clear-stm" | "extend" | "config"])
            | ("DELETE", ["sessions", _]) => true,
            _ => false,
        }
    }

    /// Routes one request. `query` is the raw query string; `body` the parsed JSON body
    /// (`None` when the request had none).
    pub fn handle(&self, method: &str, path: &str, query: &str, body: Option<&Value>) -> Reply {
        self.serve(&Request::new(method, path, query, body))
    }

    /// Routes one request, with everything KATO reads from it.
    pub fn serve(&self, request: &Request<'_>) -> Reply {
        let method = request.method;
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["sessions"] => match method {
                "POST" => self.create_session(request.body),
                _ => Reply::method_not_allowed(),
            },
            ["sessions", "count"] if method == "GET" => {
                Reply::ok(json!({"active_session_count": self.active_sessions()}))
            }
            ["sessions", id] if method == "GET" => self.get_session(id),
            ["sessions", id, "exists"] if method == "GET" => self.session_exists(id),
            // KATO's middleware answers for every other path under a session before routing:
            // an unknown session is SESSION_NOT_FOUND whatever the method or action.
            ["sessions", id, rest @ ..] => {
                let Some(slot) = self.entry(id) else {
                    return Reply::session_not_found(id);
                };
                match rest {
                    [] if method == "DELETE" => self.delete_session(id, &slot),
                    [] => Reply::method_not_allowed(),
                    [action] => self.session_action(&slot, request, action),
                    _ => Reply::detail(404, "Not Found"),
                }
            }
            ["pattern", pattern_id] => match method {
                "GET" => self.pattern(pattern_id, request),
                _ => Reply::method_not_allowed(),
            },
            ["symbols", "stats"] if method == "GET" => self.node_reply(
                request,
                |node| json!({"symbols": json::symbol_stats(&node.symbol_stats())}),
            ),
            ["symbols", "affinity"] if method == "GET" => self.node_reply(request, |node| {
                let all: Map<String, Value> = node
                    .affinities()
                    .into_iter()
                    .map(|(s, v)| (s, json::affinity(&v)))
                    .collect();
                json!({"affinities": Value::Object(all)})
            }),
            ["symbols", symbol, "affinity"] if method == "GET" => {
                let symbol = percent_decode(symbol);
                self.node_reply(request, |node| json!({"symbol": symbol, "affinity": json::affinity(&node.affinity(&symbol))}))
            }
            ["symbols", "stats" | "affinity"] | ["symbols", _, "affinity"] => {
                Reply::method_not_allowed()
            }
            _ => Reply::detail(404, "Not Found"),
        }
    }

    /// The session `id` if it exists and has not expired; an expired one is dropped (KATO
    /// deletes expired sessions lazily, on access).
    fn entry(&self, id: &str) -> Option<Arc<Slot>> {
        self.lookup(id).ok()
    }

    /// The session `id`: `Err(true)` when it had expired (and is now dropped), `Err(false)`
    /// when there is no such session.
    fn lookup(&self, id: &str) -> Result<Arc<Slot>, bool> {
        let found = self
            .sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or(false)?;
        if found.to_drop(self.now_ms()) {
            self.drop_expired(id, &found);
            return Err(true);
        }
        Ok(found)
    }

    /// Takes the expired session `slot` out of the map and counts it.
    fn drop_expired(&self, id: &str, slot: &Arc<Slot>) {
        if self.remove(id, slot) {
            self.expired.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes `slot` out of the map if it is still the session `id`; whether it did.
    fn remove(&self, id: &str, slot: &Arc<Slot>) -> bool {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        if sessions.get(id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            sessions.remove(id);
            slot.removed.store(true, Ordering::Release);
            true
        } else {
            false
        }
    }

    fn create_session(&self, body: Option<&Value>) -> Reply {
        let request = match request::create_session(body) {
            Ok(request) => request,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        let LoadedNode { node, usage } = match self.patterns.node_with_usage(&request.node_id) {
            Ok(loaded) => loaded,
            Err(err) => return Reply::detail(500, err.to_string()),
        };
        let now = (self.clock)();
        // Validated: 0 or absent means the server's default, otherwise 1..=MAX_TTL_SECONDS.
        let requested = request.ttl_seconds.filter(|t| *t > 0);
        let ttl = requested.map_or(self.options.session_ttl, |t| t as u64);
        let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let id = format!("session-{}-{millis}", uuid::Uuid::new_v4().simple());
        let mut config = SessionConfig::default();
        if let Some(changes) = &request.config {
            config.update_silently(&meta_pairs(changes));
        }
        let slot = Arc::new(Slot {
            expires_ms: AtomicU64::new(0),
            removed: AtomicBool::new(false),
            entry: Mutex::new(SessionEntry {
                id: id.clone(),
                node_id: request.node_id,
                node,
                usage,
                created_at: now,
                ttl,
                metadata: request.metadata,
                config,
                state: Session::default(),
                predictions_memo: None,
            }),
        });
        slot.extend(unix_ms(now), ttl);
        let mut reply = self.session_json(&slot, &slot.lock());
        // KATO reports the requested TTL, or the literal 3600.
        reply["ttl_seconds"] = json!(requested.unwrap_or(3600));
        self.sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, slot);
        self.created.fetch_add(1, Ordering::Relaxed);
        Reply::ok(reply)
    }

    fn session_json(&self, slot: &Slot, entry: &SessionEntry) -> Value {
        let expires_at = slot.expires_at();
        let remaining = expires_at
            .duration_since((self.clock)())
            .map_or(0, |d| d.as_secs());
        json!({
            "session_id": entry.id,
            "node_id": entry.node_id,
            "created_at": iso(entry.created_at),
            "expires_at": iso(expires_at),
            "ttl_seconds": remaining,
            "metadata": entry.metadata,
            "session_config": self.effective_config(&entry.config),
        })
    }

    /// KATO's `session_config` echo: every default, overridden by the session's values.
    fn effective_config(&self, config: &SessionConfig) -> Value {
        let d = self.defaults();
        let mut out = Map::new();
        let defaults: Vec<(&str, Value)> = vec![
            ("max_pattern_length", json!(d.max_pattern_length)),
            ("persistence", json!(d.persistence)),
            ("recall_threshold", json::float(d.recall_threshold)),
            ("indexer_type", json!("VI")),
            ("max_predictions", json!(d.max_predictions)),
            ("sort_symbols", json!(d.sort_symbols)),
            ("process_predictions", json!(d.process_predictions)),
            ("use_token_matching", json!(d.use_token_matching)),
            (
                "stm_mode",
                json!(match d.stm_mode {
                    mneme_seq::config::StmMode::Clear => "CLEAR",
                    mneme_seq::config::StmMode::Rolling => "ROLLING",
                }),
            ),
            ("rank_sort_algo", json!(d.rank_sort_algo.name())),
            ("filter_pipeline", json!([])),
            ("length_min_ratio", json!(0.5)),
            ("length_max_ratio", json!(2.0)),
            ("jaccard_threshold", json!(0.3)),
            ("jaccard_min_overlap", json!(2)),
            ("minhash_threshold", json!(0.7)),
            ("minhash_bands", json!(20)),
            ("minhash_rows", json!(5)),
            ("minhash_num_hashes", json!(100)),
            ("bloom_false_positive_rate", json!(0.01)),
            ("max_candidates_per_stage", json!(100000)),
            ("enable_filter_metrics", json!(true)),
        ];
        for (key, default) in defaults {
            out.insert(
                key.to_owned(),
                config.get(key).map_or(default, json::from_meta),
            );
        }
        for key in ["fuzzy_token_threshold", "affinity_emotive"] {
            if let Some(value) = config.get(key) {
                if *value != MetaValue::Null {
                    out.insert(key.to_owned(), json::from_meta(value));
                }
            }
        }
        Value::Object(out)
    }

    fn get_session(&self, id: &str) -> Reply {
        if let Some(slot) = self.entry(id) {
            let entry = slot.lock();
            // Not deleted while this request waited for it.
            if !slot.removed.load(Ordering::Acquire) {
                return Reply::ok(self.session_json(&slot, &entry));
            }
        }
        Reply::detail(404, format!("Session {id} not found or expired"))
    }

    fn delete_session(&self, id: &str, slot: &Arc<Slot>) -> Reply {
        if !self.remove(id, slot) {
            return Reply::session_not_found(id);
        }
        self.deleted.fetch_add(1, Ordering::Relaxed);
        Reply::ok(json!({"status": "deleted", "session_id": id}))
    }

    fn session_exists(&self, id: &str) -> Reply {
        let (exists, expired) = match self.lookup(id) {
            Ok(_) => (true, false),
            Err(expired) => (false, expired),
        };
        Reply::ok(json!({"exists": exists, "expired": expired, "session_id": id}))
    }

    fn session_action(&self, slot: &Arc<Slot>, request: &Request<'_>, action: &str) -> Reply {
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
        let mut guard = slot.lock();
        // Deleted, swept, or expired while this request waited for the session (the request
        // it waited for was a read that outlived the lifetime).
        if slot.removed.load(Ordering::Acquire) {
            return Reply::session_not_found(&guard.id);
        }
        if slot.expired(self.now_ms()) {
            self.drop_expired(&guard.id, slot);
            return Reply::session_not_found(&guard.id);
        }
        let session = &mut *guard;
        session.usage.touch();
        let reply = match (method, action) {
            ("POST", "observe") => self.observe(session, body),
            ("POST", "observe-sequence") => self.observe_sequence(session, body),
            ("GET", "stm") => Reply::ok(
                json!({"stm": session.state.stm, "session_id": session.id, "length": session.state.stm.len()}),
            ),
            ("POST", "learn") => self.learn(session),
            ("POST", "clear-stm") => {
                session.state.clear();
                Reply::ok(json!({"status": "cleared", "session_id": session.id}))
            }
            ("POST", "clear-all") => match session.node.clear() {
                Ok(()) => {
                    session.state.clear();
                    Reply::ok(
                        json!({"status": "cleared", "session_id": session.id, "scope": "all"}),
                    )
                }
                Err(err) => Reply::detail(500, err.to_string()),
            },
            ("GET", "predictions") => self.predictions(session, request.freshness),
            ("GET", "cognition-data") => self.cognition_data(session),
            ("GET", "percept-data") => self.percept_data(session),
            ("GET", "config") => Reply::ok(
                json!({"session_id": session.id, "config": self.effective_config(&session.config)}),
            ),
            ("POST", "config") => self.update_config(session, body),
            ("POST", "extend") => match request::ttl_query(request.query) {
                Ok(ttl) => {
                    session.ttl = ttl;
                    slot.extend(self.now_ms(), ttl);
                    Reply::ok(
                        json!({"status": "extended", "session_id": session.id, "ttl_seconds": ttl}),
                    )
                }
                Err(errors) => Reply::unprocessable(&errors),
            },
            ("POST", "finalize-training") => self.finalize_training(session),
            _ => Reply::method_not_allowed(),
        };
        let writes = matches!(
            action,
            "observe" | "observe-sequence" | "learn" | "clear-stm" | "clear-all" | "config"
        ) && method == "POST";
        if writes && reply.status == 200 {
            self.save(slot, session);
        }
        reply
    }

    /// What KATO's `update_session` does at the end of a write: the session's limits apply,
    /// and (with auto-extend) its lifetime starts again.
    fn save(&self, slot: &Slot, session: &mut SessionEntry) {
        session.state.enforce_limits();
        if self.options.auto_extend {
            slot.extend(self.now_ms(), session.ttl);
        }
    }

    fn persistence(&self, session: &SessionEntry) -> usize {
        if self.options.honour_persistence {
            if let Some(MetaValue::Int(n)) = session.config.get("persistence") {
                return (*n).clamp(1, 100) as usize;
            }
        }
        self.defaults().persistence
    }

    fn observe_one(
        &self,
        session: &mut SessionEntry,
        observation: &mneme_seq::types::Observation,
    ) -> Result<mneme_seq::session::ObserveOutcome, SeqError> {
        let defaults = self.defaults().clone();
        let mut config = session.config.observe_config(&defaults, false);
        config.persistence = self.persistence(session);
        let predict_config = defaults.predict_config();
        let node = session.node.clone();
        session
            .state
            .observe(&node, observation, &config, &|node, stm| {
                node.defer_predict(stm, &predict_config)
            })
    }

    fn observe(&self, session: &mut SessionEntry, body: Option<&Value>) -> Reply {
        let parsed =
            request::object(body).and_then(|map| request::observation(map, &[json!("body")]));
        let (observation, _) = match parsed {
            Ok(parsed) => parsed,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        match self.observe_one(session, &observation) {
            Ok(outcome) => Reply::ok(json!({
                "status": "okay",
                "session_id": session.id,
                "processor_id": session.node_id,
                // The session as saved.
                "stm_length": outcome.stm_length.min(mneme_seq::session::MAX_STM_EVENTS),
                "time": outcome.time,
                "unique_id": format!("obs-{}", uuid::Uuid::new_v4().simple()),
                "auto_learned_pattern": outcome.auto_learned.map(|h| format!("PTRN|{h}")),
            })),
            Err(err) => error_reply(err),
        }
    }

    fn observe_sequence(&self, session: &mut SessionEntry, body: Option<&Value>) -> Reply {
        let request = match request::observe_sequence(body) {
            Ok(request) => request,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        // KATO saves the session once, at the end: a failing item leaves it as it was (the
        // patterns learned before the failure stay learned).
        let saved = session.state.clone();
        match self.observe_items(session, &request) {
            Ok(reply) => reply,
            Err((position, err)) => {
                session.state = saved;
                let mut reply = error_reply(err);
                if let Some(detail) = reply.body["detail"].as_object_mut() {
                    if detail.contains_key("expected_dimension") {
                        detail.insert("observation_index".to_owned(), json!(position));
                    }
                }
                reply
            }
        }
    }

    /// The items of an observe-sequence; on an error, the position of the item that failed.
    fn observe_items(
        &self,
        session: &mut SessionEntry,
        request: &request::ObserveSequence,
    ) -> Result<Reply, (usize, SeqError)> {
        let initial = session.state.stm.len();
        let mut results = Vec::new();
        let mut learned: Vec<Value> = Vec::new();
        let mut final_learned = Value::Null;
        let persistence = self.persistence(session);
        let name = |hash: Option<String>| hash.map_or(String::new(), |h| format!("PTRN|{h}"));
        for (position, (observation, unique_id)) in request.observations.iter().enumerate() {
            if request.clear_stm_between && position > 0 {
                session.state.stm.clear();
            }
            let failed = |err| (position, err);
            let outcome = self.observe_one(session, observation).map_err(failed)?;
            if request.learn_after_each && !session.state.stm.is_empty() {
                let node = session.node.clone();
                let hash = session.state.learn(&node, persistence).map_err(failed)?;
                learned.push(json!(name(hash)));
            }
            let auto = outcome.auto_learned.map(|h| format!("PTRN|{h}"));
            if let Some(auto) = &auto {
                learned.push(json!(auto));
            }
            results.push(json!({
                "status": "okay",
                "sequence_position": position,
                "stm_length": session.state.stm.len(),
                "time": outcome.time,
                "unique_id": unique_id.clone().unwrap_or_else(|| format!("seq-obs-{}", uuid::Uuid::new_v4().simple())),
                "auto_learned_pattern": auto,
            }));
        }
        if request.learn_at_end && !session.state.stm.is_empty() {
            let node = session.node.clone();
            let last = request.observations.len().saturating_sub(1);
            let hash = session
                .state
                .learn(&node, persistence)
                .map_err(|err| (last, err))?;
            final_learned = json!(name(hash));
            learned.push(final_learned.clone());
        }
        Ok(Reply::ok(json!({
            "status": "completed",
            "processor_id": session.node_id,
            "observations_processed": request.observations.len(),
            "initial_stm_length": initial,
            "final_stm_length": session.state.stm.len(),
            "results": results,
            "auto_learned_patterns": learned,
            "final_learned_pattern": final_learned,
            "isolated": request.clear_stm_between,
        })))
    }

    fn learn(&self, session: &mut SessionEntry) -> Reply {
        let node = session.node.clone();
        let persistence = self.persistence(session);
        match session.state.learn(&node, persistence) {
            Ok(name) => {
                let name = name.map_or(String::new(), |h| format!("PTRN|{h}"));
                Reply::ok(json!({
                    "status": "learned",
                    "pattern_name": name,
                    "session_id": session.id,
                    "processor_id": null,
                    "message": format!("Learned pattern {name} from {} events", session.state.stm.len()),
                }))
            }
            Err(err) => error_reply(err),
        }
    }

    fn rank_by(&self, session: &SessionEntry) -> RankKey {
        let server = self.defaults().rank_sort_algo;
        if self.options.honour_rank_sort_algo {
            session.config.rank_sort_algo().unwrap_or(server)
        } else {
            server
        }
    }

    fn predictions(&self, session: &mut SessionEntry, freshness: Freshness) -> Reply {
        let config = session
            .config
            .predict_config(self.defaults(), self.rank_by(session));
        if let Some(memo) = session
            .predictions_memo
            .as_ref()
            .filter(|_| freshness == Freshness::Any)
        {
            if memo.answers(session, &config) {
                session
                    .node
                    .replay_full_predict(memo.future_potentials.clone());
                return Reply::raw(memo.bytes.clone());
            }
        }
        let version = session.node.version();
        if !takes_full_path(&session.state.stm) {
            let set = session.node.predict(&session.state.stm, &config);
            let mut bytes = Vec::with_capacity(256 + set.predictions.len() * 1536);
            json::write_predictions_reply(
                &mut bytes,
                &set.predictions,
                &set.future_potentials,
                &session.id,
            );
            session.predictions_memo = None;
            return Reply::raw(Bytes::from(bytes));
        }
        let (bytes, future_potentials) =
            session
                .node
                .predict_full(&session.state.stm, &config, |answer| {
                    let mut bytes = Vec::with_capacity(256 + answer.len() * 1536);
                    json::write_full_answer_reply(&mut bytes, answer, &session.id);
                    (Bytes::from(bytes), answer.future_potentials().clone())
                });
        // Kept only when the node did not change while the answer was computed.
        session.predictions_memo = (session.node.version() == version).then(|| PredictionsMemo {
            node: session.node.clone(),
            version,
            stm: session.state.stm.clone(),
            config,
            future_potentials,
            bytes: bytes.clone(),
        });
        Reply::raw(bytes)
    }

    fn cognition_data(&self, session: &SessionEntry) -> Reply {
        let state = &session.state;
        let symbols: Vec<&String> = state.stm.iter().flatten().collect();
        Reply::ok(json!({
            "cognition_data": {
                "predictions": state.predictions.get(&session.node).iter().map(json::prediction).collect::<Vec<_>>(),
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
            "session_id": session.id,
            "node_id": session.node_id,
        }))
    }

    fn percept_data(&self, session: &SessionEntry) -> Reply {
        let percept = match &session.state.percept {
            None => json!({}),
            Some(p) => json!({
                "strings": p.strings,
                "vectors": p.vectors.iter().map(|v| v.iter().map(|x| json::float(*x)).collect::<Vec<_>>()).collect::<Vec<_>>(),
                "emotives": json::emotives(&p.emotives),
                "path": [],
                "metadata": Value::Object(p.metadata.iter().map(|(k, v)| (k.clone(), json::from_meta(v))).collect()),
            }),
        };
        Reply::ok(
            json!({"percept_data": percept, "session_id": session.id, "node_id": session.node_id}),
        )
    }

    fn update_config(&self, session: &mut SessionEntry, body: Option<&Value>) -> Reply {
        let map = match request::object(body) {
            Ok(map) => map,
            Err(errors) => return Reply::unprocessable(&errors),
        };
        // `{"config": {...}}`, or the bare object.
        let changes = match map.get("config") {
            Some(Value::Object(inner)) => inner,
            _ => map,
        };
        match session.config.update_checked(&meta_pairs(changes)) {
            Ok(()) => Reply::ok(
                json!({"status": "okay", "message": "Configuration updated", "session_id": session.id}),
            ),
            Err(errors) => {
                let errors: Map<String, Value> = errors
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                Reply::detail(
                    400,
                    json!({"error": "Configuration validation failed", "validation_errors": errors}),
                )
            }
        }
    }

    fn finalize_training(&self, session: &SessionEntry) -> Reply {
        let started = std::time::Instant::now();
        match session.node.finalize_training() {
            Ok(count) => {
                let ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
                Reply::ok(json!({
                    "status": "completed",
                    "patterns_processed": count,
                    "time_ms": ms,
                    "session_id": session.id,
                    "node_id": session.node_id,
                    "message": format!("Computed Shannon entropy and TF vectors for {count} patterns in {ms}ms"),
                }))
            }
            Err(err) => error_reply(err),
        }
    }

    /// A node-level answer: `body` of the request's node (see [`Request::node_id`]), with its kb_id.
    fn node_reply(&self, request: &Request<'_>, body: impl FnOnce(&Node) -> Value) -> Reply {
        let node_id = request.node_id();
        match self.patterns.node_to_read(&node_id) {
            Ok(node) => {
                let mut value = body(&node);
                value["node_id"] = json!(kb_id(&node_id, &self.defaults().service_name));
                Reply::ok(value)
            }
            Err(err) => Reply::detail(500, err.to_string()),
        }
    }

    fn pattern(&self, pattern_id: &str, request: &Request<'_>) -> Reply {
        let pattern_id = percent_decode(pattern_id);
        let hash = pattern_id
            .strip_prefix("PTRN|")
            .unwrap_or(&pattern_id)
            .to_owned();
        self.node_reply(request, |node| match node.pattern(&hash) {
            Some(view) => json!({"pattern": {"status": "okay", "pattern": json::pattern(&view)}}),
            None => json!({"pattern": {"status": "error", "message": format!("Pattern {pattern_id} not found")}}),
        })
    }
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
