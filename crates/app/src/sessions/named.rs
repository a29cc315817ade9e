//! Named sessions of one node kept in the pattern store, for tools without a server
//! (`mneme seq`): a session's short-term memory and configuration survive between runs.
//! Every name exists (a name never used is an empty session), and named sessions never
//! expire.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use mneme_store::{KvSnapshot, KvStore, WriteBatch};

use super::store::{
    Found, LiveSession, SessionLease, SessionRecord, SessionSlot, SessionStore, StoreError,
    StoreResult,
};
use crate::patterns::Patterns;

/// The first format: state and configuration only (before sessions had a record).
const FORMAT_STATE: u8 = 1;
/// A whole [`SessionRecord`].
const FORMAT_RECORD: u8 = 2;

#[derive(Clone, serde::Deserialize)]
struct StateOnly {
    state: mneme_seq::session::Session,
    config: mneme_seq::session_config::SessionConfig,
}

/// The named sessions of `node_id` in the store of `patterns`.
#[derive(Debug)]
pub struct NamedSessions {
    patterns: Arc<Patterns>,
    node_id: String,
}

impl NamedSessions {
    pub fn new(patterns: Arc<Patterns>, node_id: &str) -> NamedSessions {
        NamedSessions {
            patterns,
            node_id: node_id.to_owned(),
        }
    }

    fn key(&self, name: &str) -> Vec<u8> {
        let kb = mneme_seq::config::kb_id(&self.node_id, &self.patterns.defaults().service_name);
        format!("cli-session/{kb}/{name}").into_bytes()
    }

    /// The embedded store the sessions live in.
    fn kv(&self) -> StoreResult<&mneme_store::GroupCommit<mneme_store::AnyStore>> {
        self.patterns.store().ok_or_else(|| {
            StoreError::Unavailable(
                "named sessions live in the embedded pattern store, and this one is shared \
                 (cluster mode): use the KATO API of a node instead"
                    .to_owned(),
            )
        })
    }

    fn load(&self, name: &str) -> StoreResult<SessionRecord> {
        let unavailable = |err: mneme_store::Error| StoreError::Unavailable(err.to_string());
        let snapshot = self.kv()?.store().snapshot().map_err(unavailable)?;
        let corrupt = |what: String| {
            StoreError::Unavailable(format!("session {name} of node {}: {what}", self.node_id))
        };
        let mut record = SessionRecord {
            id: name.to_owned(),
            node_id: self.node_id.clone(),
            created_at: UNIX_EPOCH,
            ttl: 0,
            metadata_json: "{}".to_owned(),
            config: Default::default(),
            state: Default::default(),
        };
        match snapshot.get(&self.key(name)).map_err(unavailable)? {
            None => {}
            Some(bytes) => match bytes.split_first() {
                Some((&FORMAT_RECORD, body)) => {
                    record = postcard::from_bytes(body).map_err(|err| corrupt(err.to_string()))?;
                }
                Some((&FORMAT_STATE, body)) => {
                    let old: StateOnly =
                        postcard::from_bytes(body).map_err(|err| corrupt(err.to_string()))?;
                    record.state = old.state;
                    record.config = old.config;
                }
                _ => return Err(corrupt("unknown format".to_owned())),
            },
        }
        Ok(record)
    }

    fn write(&self, batch: WriteBatch) -> StoreResult<()> {
        self.kv()?
            .write(batch)
            .map_err(|err| StoreError::Unavailable(err.to_string()))
    }
}

impl SessionStore for NamedSessions {
    fn insert(&self, session: LiveSession, _expires_ms: u64) -> StoreResult<()> {
        NamedSlot {
            sessions: self,
            name: session.record.id.clone(),
        }
        .store(&session.record)
    }

    fn find(&self, id: &str, _now_ms: u64) -> StoreResult<Found> {
        // Every name exists; the store is read when the session is locked.
        Ok(Found::Live(Arc::new(OwnedSlot {
            sessions: NamedSessions::new(self.patterns.clone(), &self.node_id),
            name: id.to_owned(),
        })))
    }

    fn remove(&self, slot: &dyn SessionSlot) -> StoreResult<bool> {
        let mut batch = WriteBatch::default();
        batch.delete(self.key(slot.id()));
        self.write(batch)?;
        Ok(true)
    }

    fn active(&self, _now_ms: u64) -> StoreResult<usize> {
        Ok(0)
    }

    fn held(&self) -> usize {
        0
    }

    fn sweep(&self, _now_ms: u64) -> StoreResult<usize> {
        Ok(0)
    }
}

struct NamedSlot<'a> {
    sessions: &'a NamedSessions,
    name: String,
}

impl NamedSlot<'_> {
    fn store(&self, record: &SessionRecord) -> StoreResult<()> {
        let mut bytes = vec![FORMAT_RECORD];
        bytes.extend(
            postcard::to_allocvec(record)
                .map_err(|err| StoreError::Unavailable(err.to_string()))?,
        );
        let mut batch = WriteBatch::default();
        batch.put(self.sessions.key(&self.name), bytes);
        self.sessions.write(batch)
    }
}

struct OwnedSlot {
    sessions: NamedSessions,
    name: String,
}

impl SessionSlot for OwnedSlot {
    fn id(&self) -> &str {
        &self.name
    }

    fn expires_ms(&self) -> u64 {
        u64::MAX
    }

    fn lock(&self) -> StoreResult<Box<dyn SessionLease + '_>> {
        let record = self.sessions.load(&self.name)?;
        Ok(Box::new(NamedLease {
            slot: NamedSlot {
                sessions: &self.sessions,
                name: self.name.clone(),
            },
            session: LiveSession::new(record),
        }))
    }
}

struct NamedLease<'a> {
    slot: NamedSlot<'a>,
    session: LiveSession,
}

impl SessionLease for NamedLease<'_> {
    fn removed(&self) -> bool {
        false
    }

    fn session(&mut self) -> &mut LiveSession {
        &mut self.session
    }

    fn expires_ms(&self) -> u64 {
        u64::MAX
    }

    fn save(&mut self, _expires_ms: Option<u64>) -> StoreResult<()> {
        self.slot.store(&self.session.record)
    }
}
