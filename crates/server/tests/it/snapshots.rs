//! Whole answers as the contract: insta snapshots (`tests/it/snapshots/`) of answers whose
//! every field a client reads, with ids and times redacted. A change to one of these shapes is
//! a change clients see; review it with `cargo insta review` (or `INSTA_UPDATE=always`).

use crate::support;

use serde_json::{Value, json};
use support::TestServer;

fn docs() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "audio/librosa.md",
            "# Librosa\n\nAudio analysis with librosa: beat tracking and onset detection.\n",
        ),
        (
            "ml/intro.txt",
            "Machine learning basics: models learn from data.\n",
        ),
    ]
}

fn session(server: &TestServer) -> String {
    let created = server.post("/sessions", &json!({"node_id": "snapshots"}));
    assert_eq!(created.status, 200, "{}", created.text());
    created.json()["session_id"].as_str().unwrap().to_owned()
}

#[test]
fn kato_session_answers() {
    let server = TestServer::new(&[]);
    let created = server.post(
        "/sessions",
        &json!({"node_id": "snapshots", "metadata": {"who": "test"}}),
    );
    insta::assert_json_snapshot!("kato_create_session", created.json(), {
        ".session_id" => "[session_id]",
        ".created_at" => "[time]",
        ".expires_at" => "[time]",
    });
    let id = created.json()["session_id"].as_str().unwrap().to_owned();
    let info = server.get(&format!("/sessions/{id}")).json();
    insta::assert_json_snapshot!("kato_get_session", info, {
        ".session_id" => "[session_id]",
        ".created_at" => "[time]",
        ".expires_at" => "[time]",
        ".last_accessed" => "[time]",
        ".ttl_remaining" => "[seconds]",
    });
}

#[test]
fn kato_observe_learn_and_predict_answers() {
    let server = TestServer::new(&[]);
    let id = session(&server);
    for strings in [["a", "b"], ["c", "d"], ["e", "f"]] {
        let observed = server.post(
            &format!("/sessions/{id}/observe"),
            &json!({"strings": strings, "vectors": [], "emotives": {"joy": 0.5}}),
        );
        assert_eq!(observed.status, 200, "{}", observed.text());
        if strings == ["a", "b"] {
            insta::assert_json_snapshot!("kato_observe", observed.json(), {
                ".session_id" => "[session_id]",
                ".unique_id" => "[unique_id]",
                ".time" => "[time]",
            });
        }
    }
    let learned = server.post(&format!("/sessions/{id}/learn"), &Value::Null);
    insta::assert_json_snapshot!("kato_learn", learned.json(), {
        ".session_id" => "[session_id]",
    });
    for strings in [["a", "b"], ["c", "d"]] {
        server.post(
            &format!("/sessions/{id}/observe"),
            &json!({"strings": strings}),
        );
    }
    let predictions = server.get(&format!("/sessions/{id}/predictions")).json();
    insta::assert_json_snapshot!("kato_predictions", predictions, {
        ".session_id" => "[session_id]",
        ".unique_id" => "[unique_id]",
        ".time" => "[time]",
        ".predictions[].unique_id" => "[unique_id]",
    });
}

#[test]
fn knowledgebeast_query_answer() {
    let server = TestServer::new(&docs());
    let answer = server
        .post(
            "/api/v1/query",
            &json!({"query": "audio analysis", "use_cache": false, "mode": "keyword"}),
        )
        .json();
    insta::assert_json_snapshot!("kb_query", answer, {
        ".metadata.query_time_ms" => "[ms]",
        ".query_time_ms" => "[ms]",
        ".timestamp" => "[time]",
        ".results[].path" => insta::dynamic_redaction(temp_dir_redacted),
        ".results[].kb_dir" => insta::dynamic_redaction(temp_dir_redacted),
    });
}

/// A path under the test's temporary directory, with that directory written `[tmp]`.
fn temp_dir_redacted(value: insta::internals::Content, _: insta::internals::ContentPath) -> String {
    let path = value.as_str().unwrap_or_default();
    match path.find("/knowledge-base") {
        Some(at) => format!("[tmp]{}", &path[at..]),
        None => path.to_owned(),
    }
}
