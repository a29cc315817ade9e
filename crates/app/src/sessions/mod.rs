//! KATO's sessions as a service: create, look up, expire, and the work a request does on one
//! session (observe, observe-sequence, learn, predictions with their memo, configuration),
//! over a [`SessionStore`] and the nodes of [`Patterns`].
//!
//! Every front end calls this: the HTTP routes (`server::kato`), `mneme seq`, and the cluster,
//! MCP and Python front ends to come. Answers are typed; their JSON shapes live with each front
//! end (KATO's in `server::kato::json`), except the predictions answer, which is rendered by a
//! callback the caller passes (so the memo can keep its bytes).
//!
//! A request on a session holds it for its whole duration ([`SessionSlot::lock`]), so writes
//! to one session never interleave; a write that succeeds applies KATO's session limits and
//! starts the session's lifetime again, as KATO's `update_session` does.

pub mod memory;
pub mod named;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mneme_seq::config::{PredictConfig, RankKey};
use mneme_seq::error::Error as SeqError;
use mneme_seq::node::Node;
use mneme_seq::predict::{
    FullAnswer, FuturePotential, ObservePredictions, PredictionSet, takes_full_path,
};
use mneme_seq::pyfmt::MetaValue;
use mneme_seq::session::{ObserveOutcome, Session};
use mneme_seq::session_config::SessionConfig;
use mneme_seq::types::Observation;

pub use memory::MemorySessions;
pub use named::NamedSessions;
pub use store::{
    Found, LiveSession, SessionLease, SessionRecord, SessionSlot, SessionStore, SharedLastCall,
    StoreError,
};

use crate::patterns::Patterns;

/// The bytes of a rendered answer (shared, so that a remembered one is never copied).
pub type Bytes = bytes::Bytes;

/// Where mneme deliberately departs from KATO (docs/compatibility.md), and the session
/// lifetime settings.
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

/// The longest lifetime a session may ask for (100 years): beyond it KATO fails with a 500.
pub const MAX_TTL_SECONDS: i64 = 100 * 365 * 86_400;

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No such session, or its lifetime has passed (`expired` says which, where known).
    #[error("Session {id} not found or expired")]
    NotFound { id: String, expired: bool },
    /// The engine refused the work; `position` is the failing item of an observe-sequence.
    #[error("{source}")]
    Seq {
        source: SeqError,
        position: Option<usize>,
    },
    /// A configuration update with invalid values: (key, message) pairs; nothing changed.
    #[error("Configuration validation failed")]
    Config(Vec<(String, String)>),
    /// The session store failed (unreachable, or another writer won).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The kinds of [`SessionError`], for front ends choosing a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Engine,
    InvalidConfig,
    Unavailable,
    Conflict,
}

impl SessionError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SessionError::NotFound { .. } => ErrorKind::NotFound,
            SessionError::Seq { source, .. }
                if source.kind() == mneme_seq::error::ErrorKind::Unavailable =>
            {
                ErrorKind::Unavailable
            }
            SessionError::Seq { .. } => ErrorKind::Engine,
            SessionError::Config(_) => ErrorKind::InvalidConfig,
            SessionError::Store(StoreError::Unavailable(_)) => ErrorKind::Unavailable,
            SessionError::Store(StoreError::Conflict(_)) => ErrorKind::Conflict,
        }
    }

    fn engine(source: SeqError) -> SessionError {
        SessionError::Seq {
            source,
            position: None,
        }
    }
}

impl From<SeqError> for SessionError {
    fn from(source: SeqError) -> SessionError {
        SessionError::engine(source)
    }
}

pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// A new session's parameters, validated by the front end.
#[derive(Clone, Debug, Default)]
pub struct NewSession {
    pub node_id: String,
    /// `None` (or 0) means the server's default; at most [`MAX_TTL_SECONDS`].
    pub ttl_seconds: Option<u64>,
    /// The client's metadata as JSON text (`{}` when none).
    pub metadata_json: String,
    /// Configuration given at creation (KATO applies it silently, all or nothing).
    pub config: Vec<(String, MetaValue)>,
}

/// A session as `GET /sessions/{id}` shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub id: String,
    pub node_id: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    /// Whole seconds until it expires.
    pub remaining_seconds: u64,
    pub metadata_json: String,
    pub config: SessionConfig,
}

/// A session as a read sees it, with its node.
#[derive(Debug)]
pub struct SessionView<'a> {
    pub record: &'a SessionRecord,
    pub node: &'a Node,
}

/// What one observe did.
#[derive(Clone, Debug)]
pub struct Observed {
    pub node_id: String,
    pub outcome: ObserveOutcome,
}

/// The items of an observe-sequence and what to do around them.
#[derive(Clone, Debug, Default)]
pub struct ObserveSequence {
    pub observations: Vec<Observation>,
    pub learn_after_each: bool,
    pub learn_at_end: bool,
    pub clear_stm_between: bool,
}

/// One item of an observe-sequence.
#[derive(Clone, Debug)]
pub struct SequenceItem {
    pub stm_length: usize,
    pub time: u64,
    pub auto_learned: Option<String>,
}

/// What an observe-sequence did. Pattern names are `PTRN|<hash>`, or empty for a learn that
/// stored nothing.
#[derive(Clone, Debug)]
pub struct SequenceOutcome {
    pub node_id: String,
    pub initial_stm_length: usize,
    pub final_stm_length: usize,
    pub items: Vec<SequenceItem>,
    /// Names learned, in order: `learn_after_each` names, then auto-learn names, per item,
    /// then the final learn.
    pub learned: Vec<String>,
    /// The final learn's name (`None` when there was no final learn).
    pub final_learned: Option<String>,
}

/// What a learn did.
#[derive(Clone, Debug)]
pub struct Learned {
    /// `PTRN|<hash>`, or empty when the short-term memory held fewer than two symbols.
    pub name: String,
    /// The short-term memory's length afterwards.
    pub stm_length: usize,
}

/// What finalize-training did.
#[derive(Clone, Debug)]
pub struct Finalized {
    pub node_id: String,
    pub patterns: usize,
    /// Milliseconds, rounded to two decimals.
    pub time_ms: f64,
}

/// Whether a request accepts a remembered answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// A remembered answer will do (it is always identical to a computed one).
    Any,
    /// Compute it now (`Cache-Control: no-cache`): for benchmarks of the computation itself.
    Computed,
}

/// A predictions answer to render: the full path's answer, read on the locked node, or the
/// owned answer of the other paths.
#[derive(Clone, Copy)]
pub enum Answer<'a> {
    Full(&'a FullAnswer<'a>),
    Set(&'a PredictionSet),
}

/// Renders a predictions answer for the session `id`.
pub type Render<'r> = dyn Fn(Answer<'_>, &str) -> Bytes + 'r;

/// A serialised predictions answer with everything that determines it: the node and its
/// version, the short-term memory and the prediction config. Only full-path answers are kept:
/// the other paths report the node's last future potentials, which other sessions change.
pub(crate) struct PredictionsMemo {
    node: Arc<Node>,
    version: u64,
    stm: Vec<Vec<String>>,
    config: PredictConfig,
    /// The call's future potentials, which a full-path call leaves on the node.
    future_potentials: Arc<Vec<FuturePotential>>,
    bytes: Bytes,
}

impl PredictionsMemo {
    fn answers(&self, node: &Arc<Node>, stm: &[Vec<String>], config: &PredictConfig) -> bool {
        Arc::ptr_eq(&self.node, node)
            && self.version == node.version()
            && self.stm == stm
            && self.config == *config
    }
}

/// Session lifecycle counters since start (KATO's `/metrics` `sessions` block).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub created: u64,
    pub deleted: u64,
    pub expired: u64,
    /// Sessions held (expired ones not yet swept included).
    pub held: usize,
    pub active: usize,
}

/// What happened to a session, for listeners (the websocket's events).
#[derive(Clone, Debug)]
pub enum SessionEvent {
    Created {
        id: String,
        node_id: String,
        created_at: SystemTime,
    },
    Deleted {
        id: String,
    },
}

type Listener = Box<dyn Fn(&SessionEvent) + Send + Sync>;
type Clock = Box<dyn Fn() -> SystemTime + Send + Sync>;

pub struct Sessions {
    patterns: Arc<Patterns>,
    store: Arc<dyn SessionStore>,
    options: Options,
    clock: Clock,
    listeners: std::sync::RwLock<Vec<Listener>>,
    created: AtomicU64,
    deleted: AtomicU64,
    expired: AtomicU64,
    /// With a store shared by several processes: per kb_id, the stamp of the shared last
    /// full-path call this process holds, and the node's generation when it took it.
    last_calls: std::sync::Mutex<HashMap<String, (u64, u64)>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn pattern_name(hash: Option<String>) -> String {
    hash.map_or(String::new(), |h| format!("PTRN|{h}"))
}

/// A session held by a request, with its node borrowed from the session (no reference count
/// of the shared node is touched per request: those counters bounce between cores).
struct Held<'s> {
    record: &'s mut SessionRecord,
    memo: &'s mut Option<PredictionsMemo>,
    node: &'s Arc<Node>,
}

impl Sessions {
    /// Sessions in memory (what `mneme serve` uses), on the system clock.
    pub fn in_memory(patterns: Arc<Patterns>, options: Options) -> Sessions {
        Sessions::new(
            patterns,
            Arc::new(MemorySessions::default()),
            options,
            Box::new(SystemTime::now),
        )
    }

    /// Sessions in `store`, on `clock` (tests drive expiry with it).
    pub fn new(
        patterns: Arc<Patterns>,
        store: Arc<dyn SessionStore>,
        options: Options,
        clock: Clock,
    ) -> Sessions {
        Sessions {
            patterns,
            store,
            options,
            clock,
            listeners: std::sync::RwLock::new(Vec::new()),
            created: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            last_calls: std::sync::Mutex::default(),
        }
    }

    pub fn patterns(&self) -> &Patterns {
        &self.patterns
    }

    /// The nodes' store, shared.
    pub fn patterns_arc(&self) -> &Arc<Patterns> {
        &self.patterns
    }

    /// Whether the sessions or the patterns live in other processes (cluster mode): then
    /// every call may wait for the network, and none is short work for an async thread.
    pub fn is_remote(&self) -> bool {
        self.store.is_remote() || self.patterns.is_shared()
    }

    /// Why the session store cannot be reached now (cluster mode), or `None`.
    pub fn store_outage(&self) -> Option<String> {
        self.store.outage()
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Calls `listener` with every later session event (creations, deletions).
    pub fn subscribe(&self, listener: impl Fn(&SessionEvent) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(listener));
    }

    fn emit(&self, event: SessionEvent) {
        for listener in self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            listener(&event);
        }
    }

    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn now_ms(&self) -> u64 {
        unix_ms(self.now())
    }

    /// Lifecycle counters and current session counts.
    pub fn counts(&self) -> SessionCounts {
        SessionCounts {
            created: self.created.load(Ordering::Relaxed),
            deleted: self.deleted.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            held: self.store.held(),
            active: self.active().unwrap_or(0),
        }
    }

    /// Sessions that have not expired. Never waits for a session a request is working on.
    pub fn active(&self) -> Result<usize> {
        Ok(self.store.active(self.now_ms())?)
    }

    /// Drops every expired session; how many. The server calls it periodically so that
    /// sessions nobody touches again do not stay in memory.
    pub fn sweep_expired(&self) -> Result<usize> {
        let swept = self.store.sweep(self.now_ms())?;
        self.expired.fetch_add(swept as u64, Ordering::Relaxed);
        Ok(swept)
    }

    /// Creates a session on `request.node_id` (loading the node).
    pub fn create(&self, request: NewSession) -> Result<SessionInfo> {
        let node = self.patterns.node_with_usage(&request.node_id)?;
        let now = self.now();
        let ttl = request
            .ttl_seconds
            .filter(|t| *t > 0)
            .unwrap_or(self.options.session_ttl);
        let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let id = format!("session-{}-{millis}", random_hex());
        let mut config = SessionConfig::default();
        config.update_silently(&request.config);
        let record = SessionRecord {
            id: id.clone(),
            node_id: request.node_id,
            created_at: now,
            ttl,
            metadata_json: request.metadata_json,
            config,
            state: Session::default(),
        };
        let expires_ms = unix_ms(now).saturating_add(ttl.saturating_mul(1000));
        let info = self.info(&record, expires_ms);
        let mut live = LiveSession::new(record);
        live.node = Some(node);
        self.store.insert(live, expires_ms)?;
        self.created.fetch_add(1, Ordering::Relaxed);
        self.emit(SessionEvent::Created {
            id,
            node_id: info.node_id.clone(),
            created_at: info.created_at,
        });
        Ok(info)
    }

    fn info(&self, record: &SessionRecord, expires_ms: u64) -> SessionInfo {
        let expires_at = UNIX_EPOCH + Duration::from_millis(expires_ms);
        SessionInfo {
            id: record.id.clone(),
            node_id: record.node_id.clone(),
            created_at: record.created_at,
            expires_at,
            remaining_seconds: expires_at
                .duration_since(self.now())
                .map_or(0, |d| d.as_secs()),
            metadata_json: record.metadata_json.clone(),
            config: record.config.clone(),
        }
    }

    /// The session `id`, if it exists and has not expired (waits for a request working on it).
    pub fn get(&self, id: &str) -> Result<SessionInfo> {
        let slot = self.find(id)?;
        let mut lease = slot.lock()?;
        // Not deleted while this request waited for it.
        if lease.removed() {
            return Err(not_found(id, false));
        }
        let expires_ms = lease.expires_ms();
        Ok(self.info(&lease.session().record, expires_ms))
    }

    /// Whether the session exists: `Ok(())`, or why not (never waits for the session).
    pub fn check(&self, id: &str) -> Result<()> {
        self.find(id).map(drop)
    }

    /// `(exists, expired)`: KATO's `/exists` answer.
    pub fn exists(&self, id: &str) -> Result<(bool, bool)> {
        match self.find(id) {
            Ok(_) => Ok((true, false)),
            Err(SessionError::NotFound { expired, .. }) => Ok((false, expired)),
            Err(err) => Err(err),
        }
    }

    /// Deletes the session (without waiting for a request working on it: that request then
    /// answers as for an unknown session).
    pub fn delete(&self, id: &str) -> Result<()> {
        let slot = self.find(id)?;
        if !self.store.remove(&*slot)? {
            return Err(not_found(id, false));
        }
        self.deleted.fetch_add(1, Ordering::Relaxed);
        self.emit(SessionEvent::Deleted { id: id.to_owned() });
        Ok(())
    }

    /// The stored session `id`, not locked (a caller that locks it holds it as a request
    /// does; tests use this to hold a session while others work).
    pub fn slot(&self, id: &str) -> Result<Arc<dyn SessionSlot>> {
        self.find(id)
    }

    /// The predictions answer the session remembers, if any (without waiting for it).
    pub fn remembered_predictions(&self, id: &str) -> Option<Bytes> {
        let slot = self.find(id).ok()?;
        let mut lease = slot.try_lock()?;
        lease.session().memo.as_ref().map(|memo| memo.bytes.clone())
    }

    fn find(&self, id: &str) -> Result<Arc<dyn SessionSlot>> {
        match self.store.find(id, self.now_ms())? {
            Found::Live(slot) => Ok(slot),
            Found::Expired => {
                self.expired.fetch_add(1, Ordering::Relaxed);
                Err(not_found(id, true))
            }
            Found::Missing => Err(not_found(id, false)),
        }
    }

    /// Runs `work` on the session `id`, held for the whole call. A `write` that succeeds is
    /// saved: KATO's session limits apply and (with auto-extend) its lifetime starts again.
    fn with<T>(
        &self,
        id: &str,
        write: bool,
        work: impl FnOnce(&mut Held<'_>) -> Result<T>,
    ) -> Result<T> {
        let slot = match self.store.slot_for_request(id) {
            Some(slot) => slot,
            None => self.find(id)?,
        };
        let mut lease = slot.lock()?;
        // Deleted, swept, or expired while this request waited for the session (the request
        // it waited for outlived the lifetime).
        if lease.removed() {
            return Err(not_found(id, false));
        }
        if lease.expires_ms() <= self.now_ms() {
            if self.store.remove(&*slot)? {
                self.expired.fetch_add(1, Ordering::Relaxed);
            }
            return Err(not_found(id, false));
        }
        // A store shared with other processes (cluster mode) names the request after the
        // session's stored version: a learn of a request tried again is counted once.
        let request_key = match (write, lease.version()) {
            (true, Some(version)) => Some(format!("{id}:{version}")),
            _ => None,
        };
        let live = lease.session();
        match &live.node {
            Some(node) => {
                node.usage.touch();
                // A replica (cluster mode) catches up with every acknowledged write first.
                if let Some(fresh) = self.patterns.refresh(node)? {
                    live.node = Some(fresh);
                }
            }
            None => live.node = Some(self.patterns.node_with_usage(&live.record.node_id)?),
        }
        live.record.state.begin_request(request_key);
        let LiveSession { record, node, memo } = live;
        let Some(node) = node.as_ref() else {
            unreachable!("the node was resolved above")
        };
        // A store shared with other processes: the node's last call as this request found it.
        let generation = self
            .store
            .is_remote()
            .then(|| node.node.last_call_generation());
        let mut held = Held {
            record,
            memo,
            node: &node.node,
        };
        let result = work(&mut held)?;
        if let Some(generation) = generation {
            // Another process may serve the session next, and the node may change before
            // anything reads the observe-time predictions: they travel computed.
            let state = &mut held.record.state;
            if let ObservePredictions::Deferred(_) = state.predictions {
                state.predictions = state
                    .predictions
                    .resolved(held.node)
                    .map_or(ObservePredictions::None, ObservePredictions::Ready);
            }
            if held.node.last_call_generation() != generation {
                self.share_last_call(held.node)?;
            }
        }
        if write {
            held.record.state.enforce_limits();
            let ttl = held.record.ttl;
            let extend = self
                .options
                .auto_extend
                .then(|| self.now_ms().saturating_add(ttl.saturating_mul(1000)));
            lease.save(extend)?;
        }
        Ok(result)
    }

    /// Reads the session `id` with its node.
    pub fn read<T>(&self, id: &str, read: impl FnOnce(&SessionView<'_>) -> T) -> Result<T> {
        self.with(id, false, |held| {
            Ok(read(&SessionView {
                record: held.record,
                node: held.node,
            }))
        })
    }

    /// The session's persistence: its own setting where honoured, else the server's.
    fn persistence(&self, config: &SessionConfig) -> usize {
        if self.options.honour_persistence {
            if let Some(MetaValue::Int(n)) = config.get("persistence") {
                return (*n).clamp(1, 100) as usize;
            }
        }
        self.patterns.defaults().persistence
    }

    fn rank_by(&self, config: &SessionConfig) -> RankKey {
        let server = self.patterns.defaults().rank_sort_algo;
        if self.options.honour_rank_sort_algo {
            config.rank_sort_algo().unwrap_or(server)
        } else {
            server
        }
    }

    /// One observation. `replaced` says that the observe-time predictions will be replaced by
    /// the next observation's before anything can read them (an item of an observe-sequence
    /// that is not the last and cannot learn): they are then not recorded at all, which keeps
    /// a long sequence linear (recording them copies the short-term memory each time).
    fn observe_one(
        &self,
        held: &mut Held<'_>,
        observation: &Observation,
        replaced: bool,
    ) -> Result<ObserveOutcome, SeqError> {
        let defaults = self.patterns.defaults();
        let record = &mut held.record;
        let mut config = record.config.observe_config(defaults, false);
        config.persistence = self.persistence(&record.config);
        let predict_config = defaults.predict_config();
        let skip = replaced && config.max_pattern_length == 0;
        record
            .state
            .observe(held.node, observation, &config, &|node, stm| {
                if skip {
                    ObservePredictions::None
                } else {
                    node.defer_predict(stm, &predict_config)
                }
            })
    }

    /// Whether an observe on the session cannot learn (so never waits for the disk): its
    /// `max_pattern_length` is 0. Never waits for the session.
    pub fn observe_cannot_learn(&self, id: &str) -> bool {
        let Ok(slot) = self.find(id) else {
            return false;
        };
        // Only a session nobody holds is looked at; a held one is assumed to learn.
        let Some(mut lease) = slot.try_lock() else {
            return false;
        };
        let defaults = self.patterns.defaults();
        lease
            .session()
            .record
            .config
            .observe_config(defaults, false)
            .max_pattern_length
            == 0
    }

    /// Adds one observation to the session's short-term memory (auto-learning as its
    /// configuration says).
    pub fn observe(&self, id: &str, observation: &Observation) -> Result<Observed> {
        self.with(id, true, |held| {
            let outcome = self.observe_one(held, observation, false)?;
            Ok(Observed {
                node_id: held.record.node_id.clone(),
                outcome,
            })
        })
    }

    /// Observes every item in order; a failing item leaves the session as it was (patterns
    /// learned before the failure stay learned), as KATO saves the session once, at the end.
    pub fn observe_sequence(&self, id: &str, request: &ObserveSequence) -> Result<SequenceOutcome> {
        self.with(id, true, |held| {
            let saved = held.record.state.clone();
            let result = self.observe_items(held, request);
            if result.is_err() {
                held.record.state = saved;
            }
            result
        })
    }

    fn observe_items(
        &self,
        held: &mut Held<'_>,
        request: &ObserveSequence,
    ) -> Result<SequenceOutcome> {
        let persistence = self.persistence(&held.record.config);
        let node = held.node;
        let initial = held.record.state.stm.len();
        let mut items = Vec::with_capacity(request.observations.len());
        let mut learned = Vec::new();
        let failed = |position| {
            move |source| SessionError::Seq {
                source,
                position: Some(position),
            }
        };
        for (position, observation) in request.observations.iter().enumerate() {
            if request.clear_stm_between && position > 0 {
                held.record.state.stm.clear();
            }
            // Replaced unread: the next item observes symbols or vectors on a short-term
            // memory that only grows (no clearing, no learn in between), so its call replaces
            // this one, on the session and as the node's last call.
            let replaced = !request.learn_after_each
                && !request.clear_stm_between
                && request
                    .observations
                    .get(position + 1)
                    .is_some_and(|next| !next.strings.is_empty() || !next.vectors.is_empty());
            let outcome = self
                .observe_one(held, observation, replaced)
                .map_err(failed(position))?;
            let state = &mut held.record.state;
            if request.learn_after_each && !state.stm.is_empty() {
                let hash = state.learn(node, persistence).map_err(failed(position))?;
                learned.push(pattern_name(hash));
            }
            let auto = outcome.auto_learned.map(|h| format!("PTRN|{h}"));
            if let Some(auto) = &auto {
                learned.push(auto.clone());
            }
            items.push(SequenceItem {
                stm_length: state.stm.len(),
                time: outcome.time,
                auto_learned: auto,
            });
        }
        let state = &mut held.record.state;
        let mut final_learned = None;
        if request.learn_at_end && !state.stm.is_empty() {
            let last = request.observations.len().saturating_sub(1);
            let name = pattern_name(state.learn(node, persistence).map_err(failed(last))?);
            learned.push(name.clone());
            final_learned = Some(name);
        }
        Ok(SequenceOutcome {
            node_id: held.record.node_id.clone(),
            initial_stm_length: initial,
            final_stm_length: state.stm.len(),
            items,
            learned,
            final_learned,
        })
    }

    /// Learns the short-term memory as a pattern.
    pub fn learn(&self, id: &str) -> Result<Learned> {
        self.with(id, true, |held| {
            let persistence = self.persistence(&held.record.config);
            let state = &mut held.record.state;
            let hash = state.learn(held.node, persistence)?;
            Ok(Learned {
                name: pattern_name(hash),
                stm_length: state.stm.len(),
            })
        })
    }

    /// Empties the short-term memory.
    pub fn clear_stm(&self, id: &str) -> Result<()> {
        self.with(id, true, |held| {
            held.record.state.clear();
            Ok(())
        })
    }

    /// Forgets everything the session's node learned, and the short-term memory.
    pub fn clear_all(&self, id: &str) -> Result<()> {
        self.with(id, true, |held| {
            held.node.clear()?;
            held.record.state.clear();
            Ok(())
        })
    }

    /// Changes the session's configuration (KATO's checked update: all or nothing).
    pub fn update_config(&self, id: &str, changes: &[(String, MetaValue)]) -> Result<()> {
        self.with(id, true, |held| {
            held.record
                .config
                .update_checked(changes)
                .map_err(SessionError::Config)
        })
    }

    /// Starts the session's lifetime again with `ttl` seconds (and keeps `ttl` for later
    /// writes).
    pub fn extend(&self, id: &str, ttl: u64) -> Result<()> {
        let slot = self.find(id)?;
        let mut lease = slot.lock()?;
        if lease.removed() || lease.expires_ms() <= self.now_ms() {
            return Err(not_found(id, false));
        }
        lease.session().record.ttl = ttl;
        lease.save(Some(self.now_ms().saturating_add(ttl.saturating_mul(1000))))?;
        Ok(())
    }

    /// Computes KATO's finalize-training figures for the session's node.
    pub fn finalize_training(&self, id: &str) -> Result<Finalized> {
        self.with(id, false, |held| {
            let started = std::time::Instant::now();
            let patterns = held.node.finalize_training()?;
            Ok(Finalized {
                node_id: held.record.node_id.clone(),
                patterns,
                time_ms: (started.elapsed().as_secs_f64() * 1e5).round() / 100.0,
            })
        })
    }

    /// The session's predictions, rendered by `render`. A full-path answer is remembered
    /// with everything that determines it and served again while nothing changed (unless
    /// `freshness` asks for a computed one); a remembered answer re-applies the node-level
    /// side effect of the call (its last future potentials).
    pub fn predictions(
        &self,
        id: &str,
        freshness: Freshness,
        render: &Render<'_>,
    ) -> Result<Bytes> {
        self.with(id, false, |held| {
            let (record, node) = (&*held.record, held.node);
            let config = record
                .config
                .predict_config(self.patterns.defaults(), self.rank_by(&record.config));
            let stm = &record.state.stm;
            if freshness == Freshness::Any {
                if let Some(memo) = &*held.memo {
                    if memo.answers(node, stm, &config) {
                        node.replay_full_predict(memo.future_potentials.clone());
                        return Ok(memo.bytes.clone());
                    }
                }
            }
            let version = node.version();
            if !takes_full_path(stm) {
                if self.store.is_remote() {
                    self.adopt_last_call(node)?;
                }
                let set = node.predict(stm, &config);
                *held.memo = None;
                return Ok(render(Answer::Set(&set), &record.id));
            }
            let (bytes, future_potentials) = node.predict_full(stm, &config, |answer| {
                (
                    render(Answer::Full(answer), &record.id),
                    answer.future_potentials().clone(),
                )
            });
            // Kept only when the node did not change while the answer was computed.
            *held.memo = (node.version() == version).then(|| PredictionsMemo {
                node: node.clone(),
                version,
                stm: stm.clone(),
                config,
                future_potentials,
                bytes: bytes.clone(),
            });
            Ok(bytes)
        })
    }
}

impl Sessions {
    /// Shares the node's last full-path call with the other processes of the store.
    fn share_last_call(&self, node: &Node) -> Result<()> {
        let potentials = node.shared_last_call();
        let generation = node.last_call_generation();
        if let Some(stamp) = self.store.share_last_call(node.kb_id(), &potentials)? {
            self.last_calls_held()
                .insert(node.kb_id().to_owned(), (stamp, generation));
        }
        Ok(())
    }

    /// Takes the node's last full-path call as the processes of the store last shared it,
    /// unless this process holds that one already.
    fn adopt_last_call(&self, node: &Node) -> Result<()> {
        let held = self.last_calls_held().get(node.kb_id()).copied();
        // The node's own call changed since it was taken (a clear applied from the log, a
        // reloaded replica): the shared one is taken again whatever its stamp.
        let known = held
            .filter(|&(_, generation)| generation == node.last_call_generation())
            .map(|(stamp, _)| stamp);
        let (stamp, potentials) = match self.store.shared_last_call(node.kb_id(), known)? {
            // Nothing shared (yet, or the store lost it): the node's own call stands.
            SharedLastCall::Unchanged | SharedLastCall::Empty => return Ok(()),
            SharedLastCall::Changed(stamp, potentials) => (stamp, potentials),
        };
        let generation = node.adopt_last_call(Arc::new(potentials));
        self.last_calls_held()
            .insert(node.kb_id().to_owned(), (stamp, generation));
        Ok(())
    }

    fn last_calls_held(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, u64)>> {
        self.last_calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(id: &str, expired: bool) -> SessionError {
    SessionError::NotFound {
        id: id.to_owned(),
        expired,
    }
}

/// 128 random bits as 32 hex digits (a session id's unique part, as uuid4().hex).
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: the clock's nanoseconds and a counter keep ids unique here.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..8].copy_from_slice(&(nanos as u64).to_le_bytes());
        bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    }
    // Version 4, variant 1, as uuid4.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
