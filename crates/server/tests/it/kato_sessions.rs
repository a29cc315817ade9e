//! KATO sessions in process, on a clock the test moves (spec §1.8, §2.1, §2.2): sliding
//! expiry, `exists` on an expired session, extend and its bounds, the STM and accumulator
//! limits applied when the session is saved, observe-sequence as one unit, and a learn that
//! meets another session's vector dimension. Also: bookkeeping that never waits for a
//! busy session (`slots`), and the predictions memo (`memo`).

mod memo;
mod slots;
use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mneme_app::patterns::{Durability, Patterns};
use mneme_seq::config::Defaults;
use mneme_server::kato::{Api, Options};
use serde_json::{Value, json};

/// An API whose clock reads `clock` (seconds since the epoch).
fn api_at(clock: Arc<AtomicU64>) -> Api {
    let patterns = Patterns::open(None, Durability::Immediate, Defaults::kato()).unwrap();
    Api::with_clock(
        Arc::new(patterns),
        Options::default(),
        Box::new(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst))),
    )
}

const START: u64 = 1_800_000_000;

fn call(api: &Api, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let reply = support::kato(api, method, path, query, body.as_ref());
    (reply.status, reply.json())
}

fn ok(api: &Api, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, body) = call(api, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {body}");
    body
}

fn create(api: &Api, body: Value) -> String {
    ok(api, "POST", "/sessions", Some(body))["session_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn observe(api: &Api, id: &str, body: Value) -> Value {
    ok(api, "POST", &format!("/sessions/{id}/observe"), Some(body))
}

fn stm(api: &Api, id: &str) -> Value {
    ok(api, "GET", &format!("/sessions/{id}/stm"), None)["stm"].clone()
}

#[test]
fn writes_extend_a_session_and_reads_do_not() {
    let clock = Arc::new(AtomicU64::new(START));
    let api = api_at(clock.clone());
    let id = create(&api, json!({"node_id": "ttl", "ttl_seconds": 100}));
    let expires = |api: &Api| {
        ok(api, "GET", &format!("/sessions/{id}"), None)["expires_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(expires(&api), mneme_server::kato::iso(at(START + 100)));

    clock.store(START + 60, Ordering::SeqCst);
    observe(&api, &id, json!({"strings": ["a"]}));
    assert_eq!(expires(&api), mneme_server::kato::iso(at(START + 160)));

    // Reads (stm, predictions, config, exists, the session itself) leave the expiry alone.
    clock.store(START + 150, Ordering::SeqCst);
    for path in ["stm", "predictions", "config", "exists", "percept-data"] {
        ok(&api, "GET", &format!("/sessions/{id}/{path}"), None);
    }
    assert_eq!(expires(&api), mneme_server::kato::iso(at(START + 160)));
    let remaining = ok(&api, "GET", &format!("/sessions/{id}"), None)["ttl_seconds"].clone();
    assert_eq!(remaining, 10);

    clock.store(START + 161, Ordering::SeqCst);
    assert_eq!(
        ok(&api, "GET", &format!("/sessions/{id}/exists"), None),
        json!({"exists": false, "expired": true, "session_id": id})
    );
    // Expired and now dropped: every later request answers as for an unknown session.
    assert_eq!(
        ok(&api, "GET", &format!("/sessions/{id}/exists"), None),
        json!({"exists": false, "expired": false, "session_id": id})
    );
    let (status, body) = call(&api, "GET", &format!("/sessions/{id}/stm"), None);
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "SESSION_NOT_FOUND");
    assert_eq!(
        ok(&api, "GET", "/sessions/count", None),
        json!({"active_session_count": 0})
    );
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn extend_sets_a_new_lifetime_and_refuses_what_it_cannot_keep() {
    let clock = Arc::new(AtomicU64::new(START));
    let api = api_at(clock.clone());
    let id = create(&api, json!({"node_id": "extend"}));
    assert_eq!(
        ok(
            &api,
            "POST",
            &format!("/sessions/{id}/extend?ttl_seconds=10"),
            None
        ),
        json!({"status": "extended", "session_id": id, "ttl_seconds": 10})
    );
    // The new lifetime also applies to the writes that follow.
    clock.store(START + 5, Ordering::SeqCst);
    observe(&api, &id, json!({"strings": ["a"]}));
    clock.store(START + 14, Ordering::SeqCst);
    assert_eq!(
        ok(&api, "GET", &format!("/sessions/{id}"), None)["ttl_seconds"],
        1
    );
    // Without the parameter: 3600.
    assert_eq!(
        ok(&api, "POST", &format!("/sessions/{id}/extend"), None)["ttl_seconds"],
        3600
    );

    let refused = |query: &str| {
        let (status, body) = call(
            &api,
            "POST",
            &format!("/sessions/{id}/extend?{query}"),
            None,
        );
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(
            body["detail"][0]["loc"],
            json!(["query", "ttl_seconds"]),
            "{query}"
        );
        body["detail"][0].clone()
    };
    assert_eq!(
        refused("ttl_seconds=abc"),
        json!({"type": "int_parsing", "loc": ["query", "ttl_seconds"],
               "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "abc"})
    );
    assert_eq!(
        refused("ttl_seconds=-5"),
        json!({"type": "greater_than", "loc": ["query", "ttl_seconds"],
               "msg": "Input should be greater than 0", "input": "-5", "ctx": {"gt": 0}})
    );
    assert_eq!(refused("ttl_seconds=0")["type"], "greater_than");
    assert_eq!(
        refused("ttl_seconds=9223372036854775807")["type"],
        "less_than_equal"
    );
    assert_eq!(
        refused("ttl_seconds=18446744073709551615")["type"],
        "int_parsing"
    );
    // None of that touched the session.
    assert_eq!(stm(&api, &id), json!([["a"]]));
    assert_eq!(
        ok(&api, "GET", &format!("/sessions/{id}"), None)["ttl_seconds"],
        3600
    );

    // Creation: 0 means the default, a negative or endless lifetime is refused.
    let created = ok(
        &api,
        "POST",
        "/sessions",
        Some(json!({"node_id": "n", "ttl_seconds": 0})),
    );
    assert_eq!(created["ttl_seconds"], 3600);
    for (ttl, kind) in [
        (json!(-1), "greater_than_equal"),
        (json!(i64::MAX), "less_than_equal"),
        (json!(1e300), "less_than_equal"),
    ] {
        let (status, body) = call(
            &api,
            "POST",
            "/sessions",
            Some(json!({"node_id": "n", "ttl_seconds": ttl})),
        );
        assert_eq!(status, 422, "{ttl}: {body}");
        assert_eq!(body["detail"][0]["type"], kind, "{ttl}");
        assert_eq!(body["detail"][0]["loc"], json!(["body", "ttl_seconds"]));
    }
    assert_eq!(
        ok(&api, "GET", "/sessions/count", None)["active_session_count"],
        2
    );
}

#[test]
fn limits_apply_when_the_session_is_saved() {
    let api = api_at(Arc::new(AtomicU64::new(START)));
    let id = create(&api, json!({"node_id": "limits"}));
    // 1,000 emotives of 0, then two of 1,000. The percept's mean is taken at the observe,
    // before the save keeps the last 1,000 entries: 1000/1001, then 2000/1001 (not 2000/1002).
    for i in 0..1000 {
        let reply = observe(
            &api,
            &id,
            json!({"strings": [format!("s{i}")], "emotives": {"joy": 0.0}}),
        );
        assert_eq!(reply["stm_length"], i + 1);
    }
    let last = observe(
        &api,
        &id,
        json!({"strings": ["last"], "emotives": {"joy": 1000.0}}),
    );
    assert_eq!(last["stm_length"], 1000);
    assert_eq!(last["time"], 1001);
    let events = stm(&api, &id);
    assert_eq!(events.as_array().unwrap().len(), 1000);
    assert_eq!(events[0], json!(["s1"]));
    assert_eq!(events[999], json!(["last"]));
    let joy = |api: &Api| {
        ok(api, "GET", &format!("/sessions/{id}/percept-data"), None)["percept_data"]["emotives"]["joy"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(joy(&api), 1000.0 / 1001.0);
    observe(
        &api,
        &id,
        json!({"strings": ["again"], "emotives": {"joy": 1000.0}}),
    );
    assert_eq!(joy(&api), 2000.0 / 1001.0);

    // observe-sequence saves once: the answer reports the STM before the limit, and
    // learn_at_end learns every event of the batch.
    let other = create(&api, json!({"node_id": "limits"}));
    let batch: Vec<Value> = (0..1005)
        .map(|i| json!({"strings": [format!("b{i}")]}))
        .collect();
    let reply = ok(
        &api,
        "POST",
        &format!("/sessions/{other}/observe-sequence"),
        Some(json!({"observations": batch})),
    );
    assert_eq!(reply["final_stm_length"], 1005);
    assert_eq!(reply["results"][1004]["stm_length"], 1005);
    assert_eq!(stm(&api, &other).as_array().unwrap().len(), 1000);
    ok(&api, "POST", &format!("/sessions/{other}/clear-stm"), None);
    let reply = ok(
        &api,
        "POST",
        &format!("/sessions/{other}/observe-sequence"),
        Some(json!({"observations": batch, "learn_at_end": true})),
    );
    let name = reply["final_learned_pattern"].as_str().unwrap();
    let pattern = ok(
        &api,
        "GET",
        &format!("/pattern/{}?node_id=limits", name.replace('|', "%7C")),
        None,
    );
    assert_eq!(pattern["pattern"]["pattern"]["length"], 1005);
}

#[test]
fn a_failing_observe_sequence_leaves_the_session_as_it_was() {
    let api = api_at(Arc::new(AtomicU64::new(START)));
    let id = create(&api, json!({"node_id": "seq_fail"}));
    observe(
        &api,
        &id,
        json!({"strings": ["before"], "vectors": [[1.0, 2.0, 3.0]], "emotives": {"e": 1.0}}),
    );
    let before = (
        stm(&api, &id),
        ok(&api, "GET", &format!("/sessions/{id}/percept-data"), None),
    );
    let (status, body) = call(
        &api,
        "POST",
        &format!("/sessions/{id}/observe-sequence"),
        Some(json!({"observations": [
            {"strings": ["x"], "emotives": {"e": 5.0}},
            {"strings": ["y"]},
            {"strings": ["z"], "vectors": [[1.0, 2.0]]},
        ], "learn_after_each": false})),
    );
    assert_eq!(status, 400, "{body}");
    let detail = &body["detail"];
    assert_eq!(detail["error"], "VectorDimensionError");
    assert_eq!(detail["observation_index"], 2);
    assert_eq!(
        (
            detail["expected_dimension"].clone(),
            detail["actual_dimension"].clone()
        ),
        (json!(3), json!(2))
    );
    assert_eq!(
        detail["vector_name"],
        "VCTR|6786a5fc0b30a70ed8fdbaaa451e7c26b5d6c359"
    );
    let after = (
        stm(&api, &id),
        ok(&api, "GET", &format!("/sessions/{id}/percept-data"), None),
    );
    assert_eq!(after, before, "nothing of the failed batch stays");

    // A single observe names the vector too, and changes nothing.
    let (status, body) = call(
        &api,
        "POST",
        &format!("/sessions/{id}/observe"),
        Some(json!({"strings": ["q"], "vectors": [[1.0, 2.0]]})),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"]["vector_name"],
        "VCTR|6786a5fc0b30a70ed8fdbaaa451e7c26b5d6c359"
    );
    assert!(body["detail"].get("observation_index").is_none());
    assert_eq!(stm(&api, &id), before.0);
}

#[test]
fn a_learn_that_meets_another_dimension_keeps_the_stm() {
    let api = api_at(Arc::new(AtomicU64::new(START)));
    // Two sessions on a fresh node observe vectors of different sizes (both allowed: the
    // node has no vector yet); the first to learn fixes the dimension.
    let first = create(&api, json!({"node_id": "dims"}));
    let second = create(&api, json!({"node_id": "dims"}));
    observe(
        &api,
        &first,
        json!({"strings": ["a"], "vectors": [[1.0, 0.0, 0.0]]}),
    );
    observe(
        &api,
        &second,
        json!({"strings": ["a"], "vectors": [[1.0, 0.0]]}),
    );
    observe(&api, &first, json!({"strings": ["c"]}));
    observe(&api, &second, json!({"strings": ["c"]}));
    ok(&api, "POST", &format!("/sessions/{first}/learn"), None);
    let kept = stm(&api, &second);
    let (status, body) = call(&api, "POST", &format!("/sessions/{second}/learn"), None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["detail"]["error"], "VectorDimensionError");
    assert_eq!(body["detail"]["expected_dimension"], 3);
    assert_eq!(
        body["detail"]["vector_name"],
        "VCTR|b2ee9b10732bd3dcfa2ecc8ee3c56ceed36ddcfc"
    );
    assert_eq!(stm(&api, &second), kept, "the STM is not lost");
    // The same through auto-learn: the observe that would learn is refused whole, and the
    // session's observe-time predictions stay those of its last accepted observe.
    observe(&api, &second, json!({"strings": ["a"]}));
    let kept = stm(&api, &second);
    ok(
        &api,
        "POST",
        &format!("/sessions/{second}/config"),
        Some(json!({"max_pattern_length": 4})),
    );
    let cognition = |api: &Api| {
        ok(
            api,
            "GET",
            &format!("/sessions/{second}/cognition-data"),
            None,
        )
    };
    let before = cognition(&api);
    assert_eq!(
        before["cognition_data"]["predictions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the STM shares `a` and `c` with the learned pattern"
    );
    let (status, body) = call(
        &api,
        "POST",
        &format!("/sessions/{second}/observe"),
        Some(json!({"strings": ["g"]})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["detail"]["error"], "VectorDimensionError");
    assert_eq!(cognition(&api), before);
    assert_eq!(stm(&api, &second), kept);
    // Clearing the STM drops the vector of the other dimension; learning works again.
    ok(&api, "POST", &format!("/sessions/{second}/clear-stm"), None);
    observe(&api, &second, json!({"strings": ["e", "f"]}));
    ok(&api, "POST", &format!("/sessions/{second}/learn"), None);
}
