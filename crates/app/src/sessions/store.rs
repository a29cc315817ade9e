//! Where sessions live: the [`SessionStore`] port and the record it keeps.
//!
//! The contract is written for a store that is remote and can fail (Redis in cluster mode), so
//! that the in-memory store of `mneme serve` and the persistent one of `mneme seq` are two
//! implementations of one shape:
//!
//! - [`SessionStore::find`] looks a session up without waiting for requests working on it;
//! - [`SessionSlot::lock`] takes the session for one request (other requests on it wait), and
//!   [`SessionLease::save`] writes it back at the end of a write (a remote store checks that
//!   nobody else wrote it meanwhile: compare-and-set on a version);
//! - every call may answer [`StoreError::Unavailable`] (the service answers 503) or
//!   [`StoreError::Conflict`] (another writer won; nothing of this request was saved).
//!
//! What a store keeps is a [`SessionRecord`]: everything that must survive a move to another
//! process. The handle of the session's node, its usage record and the predictions memo are
//! local caches ([`LiveSession`]), rebuilt by the service when missing.

use std::sync::Arc;
use std::time::SystemTime;

use mneme_seq::FuturePotential;
use mneme_seq::session::Session;
use mneme_seq::session_config::SessionConfig;

use crate::patterns::LoadedNode;

/// Why a session store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused the operation; retrying later may work.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
    /// Another writer saved the session after this request read it: nothing was saved.
    #[error("session {0} was changed by another request meanwhile; retry the request")]
    Conflict(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A session as a store keeps it (serde, so that a remote store can hold it as bytes).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub id: String,
    /// The node id the client named (not its kb_id).
    pub node_id: String,
    pub created_at: SystemTime,
    /// The lifetime, in seconds, that a write starts again (sliding expiry).
    pub ttl: u64,
    /// The client's metadata, as JSON text (the service never looks inside).
    pub metadata_json: String,
    pub config: SessionConfig,
    pub state: Session,
}

/// A session being worked on: its record and what this process keeps beside it.
pub struct LiveSession {
    pub record: SessionRecord,
    /// The session's node, resolved on first use in this process.
    pub(crate) node: Option<LoadedNode>,
    /// The last full-path predictions answer (see `sessions::PredictionsMemo`).
    pub(crate) memo: Option<super::PredictionsMemo>,
}

impl std::fmt::Debug for LiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSession")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl LiveSession {
    pub fn new(record: SessionRecord) -> LiveSession {
        LiveSession {
            record,
            node: None,
            memo: None,
        }
    }
}

/// What a lookup found.
pub enum Found {
    Live(Arc<dyn SessionSlot>),
    /// The session existed but its lifetime had passed (it is gone now).
    Expired,
    Missing,
}

/// Sessions by id, with their expiry.
pub trait SessionStore: Send + Sync {
    /// Adds a new session that expires at `expires_ms` (milliseconds since the epoch).
    fn insert(&self, session: LiveSession, expires_ms: u64) -> StoreResult<()>;

    /// The session `id` as of `now_ms`: an expired one that no request holds is removed and
    /// answered [`Found::Expired`]. Never waits for a request working on the session.
    fn find(&self, id: &str, now_ms: u64) -> StoreResult<Found>;

    /// Removes the session of `slot` if it is still stored; whether it was.
    fn remove(&self, slot: &dyn SessionSlot) -> StoreResult<bool>;

    /// Sessions whose lifetime has not passed at `now_ms`.
    fn active(&self, now_ms: u64) -> StoreResult<usize>;

    /// Sessions held, expired ones not yet swept included.
    fn held(&self) -> usize;

    /// Removes every expired session that no request holds; how many.
    fn sweep(&self, now_ms: u64) -> StoreResult<usize>;

    /// Whether the sessions live in another process (Redis): every call is a round trip, so
    /// none of them is short work for an async thread.
    fn is_remote(&self) -> bool {
        false
    }

    /// A slot for a request that locks the session at once, where the store's lock tells a
    /// missing session by itself (a remote store saves its lookup's round trip); `None`: look
    /// it up with [`SessionStore::find`] first.
    fn slot_for_request(&self, id: &str) -> Option<Arc<dyn SessionSlot>> {
        let _ = id;
        None
    }

    /// Why the store cannot be reached now, or `None` while it answers (for `/health`).
    fn outage(&self) -> Option<String> {
        None
    }

    /// The last full-path call of node `kb_id` as the processes sharing this store last
    /// shared it (KATO keeps it per node; single-symbol predictions report it), unless its
    /// stamp is still `known`. A store of one process shares nothing.
    fn shared_last_call(&self, kb_id: &str, known: Option<u64>) -> StoreResult<SharedLastCall> {
        let _ = (kb_id, known);
        Ok(SharedLastCall::Unchanged)
    }

    /// Shares `future_potentials` as the last full-path call of node `kb_id`; its new stamp,
    /// or `None` where nothing is shared.
    fn share_last_call(
        &self,
        kb_id: &str,
        future_potentials: &[FuturePotential],
    ) -> StoreResult<Option<u64>> {
        let _ = (kb_id, future_potentials);
        Ok(None)
    }
}

/// What [`SessionStore::shared_last_call`] found.
#[derive(Debug)]
pub enum SharedLastCall {
    /// Still the stamp the caller knows (or nothing is shared).
    Unchanged,
    /// Nobody has shared one yet.
    Empty,
    /// The one shared last, with its stamp.
    Changed(u64, Vec<FuturePotential>),
}

/// One stored session, found but not yet locked.
pub trait SessionSlot: Send + Sync {
    fn id(&self) -> &str;

    /// When the session expires (milliseconds since the epoch). Never waits.
    fn expires_ms(&self) -> u64;

    /// Takes the session for one request: requests on the same session run one after the
    /// other, so their writes never interleave.
    fn lock(&self) -> StoreResult<Box<dyn SessionLease + '_>>;

    /// The session if no request holds it now, without waiting; `None` when it is held (or
    /// when the store cannot tell without a round trip).
    fn try_lock(&self) -> Option<Box<dyn SessionLease + '_>> {
        None
    }
}

/// A session held by one request.
pub trait SessionLease {
    /// Deleted or swept while this request waited for it.
    fn removed(&self) -> bool;

    fn session(&mut self) -> &mut LiveSession;

    /// When the session expires (milliseconds since the epoch).
    fn expires_ms(&self) -> u64;

    /// Writes the session back; with `expires_ms`, its lifetime starts again and ends then.
    /// A remote store checks that nobody else saved the session since it was locked.
    fn save(&mut self, expires_ms: Option<u64>) -> StoreResult<()>;

    /// The stored version of the session as this request found it, for a store that numbers
    /// its writes (Redis). A request that changes the pattern store is named after it, so
    /// that trying the same request again after a failure changes nothing twice.
    fn version(&self) -> Option<u64> {
        None
    }
}
