//! Session bookkeeping that must never wait for a session's lock, which a long request (a
//! big observe-sequence, a learn waiting for its commit) holds.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use mneme_app::patterns::{Durability, Patterns};
use mneme_seq::config::Defaults;
use serde_json::json;

use mneme_server::kato::{Api, Options};

#[test]
fn counts_sweeps_and_other_sessions_never_wait_for_a_busy_session() {
    let patterns = Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap();
    let api = Arc::new(Api::new(Arc::new(patterns), Options::default()));
    let create = || {
        let reply = crate::support::kato(
            &api,
            "POST",
            "/sessions",
            "",
            Some(&json!({"node_id": "busy"})),
        );
        reply.json()["session_id"].as_str().unwrap().to_owned()
    };
    let (busy, other) = (create(), create());
    let slot = api.sessions().slot(&busy).ok().unwrap();
    let held = slot.lock().unwrap();
    let (done, finished) = mpsc::channel();
    let worker = {
        let api = api.clone();
        std::thread::spawn(move || {
            let count = crate::support::kato(&api, "GET", "/sessions/count", "", None).json();
            let exists =
                crate::support::kato(&api, "GET", &format!("/sessions/{busy}/exists"), "", None)
                    .json();
            let swept = api.sweep_expired();
            let observed = crate::support::kato(
                &api,
                "POST",
                &format!("/sessions/{other}/observe"),
                "",
                Some(&json!({"strings": ["x"]})),
            )
            .status;
            done.send((count, exists["exists"].clone(), swept, observed))
                .unwrap();
        })
    };
    // Generous: a hang, not a slow machine, is what this catches.
    let answer = finished.recv_timeout(Duration::from_secs(60));
    drop(held);
    worker.join().unwrap();
    assert_eq!(
        answer.expect("session bookkeeping waited for the busy session"),
        (json!({"active_session_count": 2}), json!(true), 0, 200)
    );
}

#[test]
fn a_request_that_waited_for_a_deleted_session_answers_not_found() {
    let patterns = Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap();
    let api = Arc::new(Api::new(Arc::new(patterns), Options::default()));
    let reply = crate::support::kato(
        &api,
        "POST",
        "/sessions",
        "",
        Some(&json!({"node_id": "gone"})),
    );
    let id = reply.json()["session_id"].as_str().unwrap().to_owned();
    let slot = api.sessions().slot(&id).ok().unwrap();
    let held = slot.lock().unwrap();
    let waiting = {
        let (api, id) = (api.clone(), id.clone());
        std::thread::spawn(move || {
            crate::support::kato(
                &api,
                "POST",
                &format!("/sessions/{id}/observe"),
                "",
                Some(&json!({"strings": ["late"]})),
            )
        })
    };
    let reading = {
        let (api, id) = (api.clone(), id.clone());
        std::thread::spawn(move || {
            crate::support::kato(&api, "GET", &format!("/sessions/{id}"), "", None)
        })
    };
    // The delete does not need the session's lock either.
    let deleted = crate::support::kato(&api, "DELETE", &format!("/sessions/{id}"), "", None);
    assert_eq!(deleted.status, 200);
    drop(held);
    let late = waiting.join().unwrap();
    assert_eq!(late.status, 404);
    assert_eq!(late.json()["error"]["code"], "SESSION_NOT_FOUND");
    let read = reading.join().unwrap();
    assert_eq!(read.status, 404);
    assert_eq!(
        read.json()["detail"],
        format!("Session {id} not found or expired")
    );
}

#[test]
fn a_session_in_use_outlives_its_lifetime_until_its_request_ends() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::UNIX_EPOCH;
    let clock = Arc::new(AtomicU64::new(1_800_000_000));
    let api = {
        let clock = clock.clone();
        let patterns = Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap();
        Arc::new(Api::with_clock(
            Arc::new(patterns),
            Options::default(),
            Box::new(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst))),
        ))
    };
    let reply = crate::support::kato(
        &api,
        "POST",
        "/sessions",
        "",
        Some(&json!({"node_id": "long", "ttl_seconds": 10})),
    );
    let id = reply.json()["session_id"].as_str().unwrap().to_owned();
    let slot = api.sessions().slot(&id).ok().unwrap();
    // A request holds the session past its expiry: neither the sweep nor a lookup drops it.
    let mut held = slot.lock().unwrap();
    clock.fetch_add(20, Ordering::SeqCst);
    let (swept, exists) = {
        let (api, id) = (api.clone(), id.clone());
        std::thread::spawn(move || {
            let swept = api.sweep_expired();
            let exists =
                crate::support::kato(&api, "GET", &format!("/sessions/{id}/exists"), "", None);
            (swept, exists.json()["exists"].clone())
        })
        .join()
        .unwrap()
    };
    assert_eq!((swept, exists), (0, json!(true)));
    // The request was a write: it extends the session as it ends.
    held.save(Some((clock.load(Ordering::SeqCst) + 10) * 1000))
        .unwrap();
    drop(held);
    let stm = crate::support::kato(&api, "GET", &format!("/sessions/{id}/stm"), "", None);
    assert_eq!(stm.status, 200, "{}", stm.json());
    // Had it been a read, the session would be gone once the request ended.
    clock.fetch_add(20, Ordering::SeqCst);
    let gone = crate::support::kato(&api, "GET", &format!("/sessions/{id}/stm"), "", None);
    assert_eq!(gone.status, 404);
    assert_eq!(api.sweep_expired(), 0, "already dropped by the lookup");
}
