//! The session service over its stores: named sessions that survive a restart (what
//! `mneme seq` uses), and a store that fails.

use std::sync::Arc;
use std::time::SystemTime;

use mneme_app::patterns::{Durability, Patterns};
use mneme_app::sessions::{
    ErrorKind, Found, LiveSession, NamedSessions, Options, SessionSlot, SessionStore, Sessions,
    StoreError,
};
use mneme_seq::config::Defaults;
use mneme_seq::types::Observation;

fn open(path: &std::path::Path) -> Arc<Patterns> {
    Arc::new(Patterns::open(Some(path), Durability::Immediate, Defaults::kato()).unwrap())
}

fn named(patterns: &Arc<Patterns>, node: &str) -> Sessions {
    Sessions::new(
        patterns.clone(),
        Arc::new(NamedSessions::new(patterns.clone(), node)),
        Options::default(),
        Box::new(SystemTime::now),
    )
}

fn observation(symbols: &[&str]) -> Observation {
    Observation {
        strings: symbols.iter().map(|s| (*s).to_owned()).collect(),
        ..Observation::default()
    }
}

#[test]
fn named_sessions_are_kept_by_name_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patterns.redb");
    {
        let patterns = open(&path);
        let sessions = named(&patterns, "n");
        sessions.observe("s", &observation(&["a"])).unwrap();
        sessions.observe("s", &observation(&["b"])).unwrap();
    }
    let patterns = open(&path);
    let sessions = named(&patterns, "n");
    let stm = sessions
        .read("s", |view| view.record.state.stm.clone())
        .unwrap();
    assert_eq!(stm, vec![vec!["a".to_owned()], vec!["b".to_owned()]]);
    assert!(
        sessions
            .read("other", |view| view.record.state.stm.is_empty())
            .unwrap()
    );
    // Another node's session of the same name is another session.
    assert!(
        named(&patterns, "m")
            .read("s", |view| view.record.state.stm.is_empty())
            .unwrap()
    );
    let learned = sessions.learn("s").unwrap();
    assert!(learned.name.starts_with("PTRN|"), "{learned:?}");
    sessions.delete("s").unwrap();
    assert!(
        sessions
            .read("s", |view| view.record.state.stm.is_empty())
            .unwrap()
    );
}

#[test]
fn a_named_session_written_by_the_previous_format_still_reads() {
    #[derive(serde::Serialize)]
    struct StateOnly {
        state: mneme_seq::session::Session,
        config: mneme_seq::session_config::SessionConfig,
    }
    let dir = tempfile::tempdir().unwrap();
    let patterns = open(&dir.path().join("patterns.redb"));
    let mut old = StateOnly {
        state: Default::default(),
        config: Default::default(),
    };
    old.state.stm.push(vec!["x".into()]);
    old.state.time = 3;
    let mut bytes = vec![1u8];
    bytes.extend(postcard::to_allocvec(&old).unwrap());
    let mut batch = mneme_store::WriteBatch::default();
    batch.put(b"cli-session/n_kato/s".to_vec(), bytes);
    patterns.store().unwrap().write(batch).unwrap();
    let sessions = named(&patterns, "n");
    let (stm, time) = sessions
        .read("s", |view| {
            (view.record.state.stm.clone(), view.record.state.time)
        })
        .unwrap();
    assert_eq!((stm, time), (vec![vec!["x".to_owned()]], 3));
}

#[test]
fn the_sessions_persistence_shapes_its_learns() {
    // Two learns of one pattern with different emotives: the emotive window keeps
    // `persistence` entries, so a session with persistence 1 keeps only the last.
    let patterns = Arc::new(Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap());
    let sessions = named(&patterns, "p");
    use mneme_seq::pyfmt::MetaValue;
    sessions
        .update_config("s", &[("persistence".to_owned(), MetaValue::Int(1))])
        .unwrap();
    let mut name = String::new();
    for value in [1.0, 2.0] {
        let mut first = observation(&["a"]);
        first.emotives.push(("joy".to_owned(), value));
        sessions.observe("s", &first).unwrap();
        sessions.observe("s", &observation(&["b"])).unwrap();
        name = sessions.learn("s").unwrap().name;
    }
    let node = patterns.node("p").unwrap();
    let pattern = node.pattern(name.strip_prefix("PTRN|").unwrap()).unwrap();
    assert_eq!(pattern.frequency, 2);
    assert_eq!(pattern.emotives.len(), 1, "{:?}", pattern.emotives);
}

/// A store that cannot be reached.
struct Down;

impl SessionStore for Down {
    fn insert(&self, _: LiveSession, _: u64) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn find(&self, _: &str, _: u64) -> Result<Found, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn remove(&self, _: &dyn SessionSlot) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn active(&self, _: u64) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    fn held(&self) -> usize {
        0
    }
    fn sweep(&self, _: u64) -> Result<usize, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[test]
fn a_store_that_is_down_answers_unavailable_and_never_not_found() {
    let patterns = Arc::new(Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap());
    let sessions = Sessions::new(
        patterns,
        Arc::new(Down),
        Options::default(),
        Box::new(SystemTime::now),
    );
    let created = sessions.create(mneme_app::sessions::NewSession {
        node_id: "n".into(),
        metadata_json: "{}".into(),
        ..Default::default()
    });
    assert_eq!(created.unwrap_err().kind(), ErrorKind::Unavailable);
    let observed = sessions.observe("session-x", &observation(&["a"]));
    let err = observed.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("unavailable"), "{err}");
    assert!(sessions.exists("session-x").is_err());
}
