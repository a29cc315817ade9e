//! The per-session predictions memo: a remembered answer is byte for byte a fresh one, it
//! re-applies the node-level effect of a full-path call, and every change it depends on
//! invalidates it.

use std::sync::Arc;

use mneme_app::patterns::{Durability, Patterns};
use mneme_seq::config::Defaults;
use serde_json::{Value, json};

use mneme_server::kato::{Api, Freshness, Options, Request};

const NODE: &str = "memo_node";

fn api() -> Api {
    let patterns = Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap();
    Api::new(Arc::new(patterns), Options::default())
}

fn call(api: &Api, method: &str, path: &str, body: Option<Value>) -> Value {
    let reply = crate::support::kato(api, method, path, "", body.as_ref());
    assert_eq!(reply.status, 200, "{method} {path}: {}", reply.json());
    reply.json()
}

fn session(api: &Api) -> String {
    let created = call(api, "POST", "/sessions", Some(json!({"node_id": NODE})));
    created["session_id"].as_str().unwrap().to_owned()
}

fn observe(api: &Api, id: &str, strings: &[&str]) {
    call(
        api,
        "POST",
        &format!("/sessions/{id}/observe"),
        Some(json!({ "strings": strings })),
    );
}

/// A node with a few overlapping patterns.
fn trained() -> Api {
    let api = api();
    let id = session(&api);
    for pattern in [
        vec![vec!["a"], vec!["b"], vec!["c", "d"]],
        vec![vec!["a"], vec!["b"], vec!["e"]],
        vec![vec!["x"], vec!["a"], vec!["b"], vec!["f"]],
        vec![vec!["b"], vec!["c"], vec!["g"]],
    ] {
        for event in pattern {
            observe(&api, &id, &event);
        }
        call(&api, "POST", &format!("/sessions/{id}/learn"), None);
    }
    api
}

/// The raw predictions answer of a session, and whether it came from the memo.
fn predictions(api: &Api, id: &str) -> (Vec<u8>, bool) {
    let remembered = memo_bytes(api, id);
    let reply = crate::support::kato(api, "GET", &format!("/sessions/{id}/predictions"), "", None);
    assert_eq!(reply.status, 200);
    let raw = reply.raw.expect("predictions are serialised directly");
    let hit = remembered.is_some_and(|m| m.as_ptr() == raw.as_ptr());
    (raw.to_vec(), hit)
}

fn memo_bytes(api: &Api, id: &str) -> Option<axum::body::Bytes> {
    api.sessions().remembered_predictions(id)
}

/// The answer a new session with the same short-term memory (and `config`) computes, with
/// its session id replaced by `id`.
fn fresh(api: &Api, id: &str, events: &[&[&str]], config: Option<Value>) -> Vec<u8> {
    let other = session(api);
    if let Some(config) = config {
        call(
            api,
            "POST",
            &format!("/sessions/{other}/config"),
            Some(config),
        );
    }
    for event in events {
        observe(api, &other, event);
    }
    let (bytes, hit) = predictions(api, &other);
    assert!(!hit);
    call(api, "DELETE", &format!("/sessions/{other}"), None);
    String::from_utf8(bytes)
        .unwrap()
        .replace(&other, id)
        .into_bytes()
}

#[test]
fn a_remembered_answer_is_the_fresh_answer() {
    let api = trained();
    let id = session(&api);
    let stm: &[&[&str]] = &[&["a"], &["b"]];
    for event in stm {
        observe(&api, &id, event);
    }
    let (first, hit) = predictions(&api, &id);
    assert!(!hit);
    let (second, hit) = predictions(&api, &id);
    assert!(hit, "the second read is served from the memo");
    assert_eq!(second, first);
    assert_eq!(second, fresh(&api, &id, stm, None));
    let answer: Value = serde_json::from_slice(&second).unwrap();
    assert!(answer["count"].as_u64().unwrap() >= 3);
}

#[test]
fn a_remembered_answer_sets_the_nodes_last_future_potentials() {
    let api = trained();
    let id = session(&api);
    observe(&api, &id, &["a"]);
    observe(&api, &id, &["b"]);
    let (ours, _) = predictions(&api, &id);
    // Another session's full-path call replaces the node's last future potentials...
    let other = session(&api);
    observe(&api, &other, &["b"]);
    observe(&api, &other, &["c"]);
    let (theirs, _) = predictions(&api, &other);
    let potentials =
        |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap()["future_potentials"].clone();
    assert_ne!(potentials(&ours), potentials(&theirs));
    // ...and a remembered answer puts ours back, as computing it again would.
    let (_, hit) = predictions(&api, &id);
    assert!(hit);
    let single = session(&api);
    observe(&api, &single, &["x"]);
    let (reported, _) = predictions(&api, &single);
    assert_eq!(potentials(&reported), potentials(&ours));
}

#[test]
fn every_change_it_depends_on_invalidates_the_memo() {
    let api = trained();
    let id = session(&api);
    let mut stm: Vec<&[&str]> = vec![&["a"], &["b"]];
    for event in &stm {
        observe(&api, &id, event);
    }
    let remembered = |api: &Api| {
        let (first, _) = predictions(api, &id);
        let (again, hit) = predictions(api, &id);
        assert!(hit);
        assert_eq!(again, first);
        first
    };

    // A learn on the node (by another session).
    let before = remembered(&api);
    let learner = session(&api);
    for event in [["a"], ["b"], ["z"]] {
        observe(&api, &learner, &event);
    }
    call(&api, "POST", &format!("/sessions/{learner}/learn"), None);
    let (after, hit) = predictions(&api, &id);
    assert!(!hit);
    assert_ne!(after, before);
    assert_eq!(after, fresh(&api, &id, &stm, None));

    // An observe.
    let before = remembered(&api);
    observe(&api, &id, &["c"]);
    stm.push(&["c"]);
    let (after, hit) = predictions(&api, &id);
    assert!(!hit);
    assert_ne!(after, before);
    assert_eq!(after, fresh(&api, &id, &stm, None));

    // A config change.
    let before = remembered(&api);
    let config = json!({"config": {"max_predictions": 1}});
    call(
        &api,
        "POST",
        &format!("/sessions/{id}/config"),
        Some(config.clone()),
    );
    let (after, hit) = predictions(&api, &id);
    assert!(!hit);
    assert_ne!(after, before);
    assert_eq!(after, fresh(&api, &id, &stm, Some(config.clone())));

    // Clearing the short-term memory (an empty one is not remembered), then the same events.
    remembered(&api);
    call(&api, "POST", &format!("/sessions/{id}/clear-stm"), None);
    let (_, hit) = predictions(&api, &id);
    assert!(!hit);
    assert!(memo_bytes(&api, &id).is_none());
    for event in &stm {
        observe(&api, &id, event);
    }
    let (after, hit) = predictions(&api, &id);
    assert!(!hit);
    assert_eq!(after, fresh(&api, &id, &stm, Some(config.clone())));

    // Clearing the node (from another session: this one keeps its short-term memory).
    let before = remembered(&api);
    call(
        &api,
        "POST",
        &format!("/sessions/{learner}/clear-all"),
        None,
    );
    let (after, hit) = predictions(&api, &id);
    assert!(!hit);
    assert_ne!(after, before);
    let answer: Value = serde_json::from_slice(&after).unwrap();
    assert_eq!(answer["count"], 0);
}

#[test]
fn no_cache_computes_the_same_answer_again() {
    let api = trained();
    let id = session(&api);
    for event in [["a"], ["b"]] {
        observe(&api, &id, &event);
    }
    let (first, _) = predictions(&api, &id);
    let remembered = memo_bytes(&api, &id).expect("remembered");
    let path = format!("/sessions/{id}/predictions");
    let reply = crate::support::kato_request(
        &api,
        &path,
        &Request {
            freshness: Freshness::Computed,
            ..Request::new("GET", "", None)
        },
    );
    let computed = reply.raw.expect("serialised");
    assert_ne!(
        computed.as_ptr(),
        remembered.as_ptr(),
        "computed, not remembered"
    );
    assert_eq!(computed.to_vec(), first);
}

/// The answer written from the engine's ids on the locked node is byte for byte the answer
/// written from the owned predictions (the two implementations of one field order).
#[test]
fn the_answer_on_ids_is_the_owned_answer() {
    let api = trained();
    let node = api.patterns().node(NODE).unwrap();
    let config = Defaults::kato().predict_config();
    for stm in [
        vec![vec!["a"], vec!["b"]],
        vec![vec!["x", "a"], vec!["b"], vec!["q"]],
        vec![vec!["b"], vec!["c", "d"], vec!["e"]],
        vec![vec!["unknown"], vec!["a", "other"]],
    ] {
        let stm: Vec<Vec<String>> = stm
            .iter()
            .map(|e| e.iter().map(|s| s.to_string()).collect())
            .collect();
        let mut on_ids = Vec::new();
        let owned = node.predict_full(&stm, &config, |answer| {
            mneme_server::kato::json::write_full_answer_reply(&mut on_ids, answer, "s");
            (answer.to_predictions(), answer.future_potentials().to_vec())
        });
        assert!(!owned.0.is_empty(), "{stm:?} predicts something");
        let mut from_owned = Vec::new();
        mneme_server::kato::json::write_predictions_reply(&mut from_owned, &owned.0, &owned.1, "s");
        assert_eq!(
            String::from_utf8(on_ids).unwrap(),
            String::from_utf8(from_owned).unwrap()
        );
    }
}
