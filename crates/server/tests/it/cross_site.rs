//! What a page on another site can do through a visitor's browser: the checks of `Origin`,
//! `Host` and content types, the optional KATO key, and the JSON shape of encoding errors
//! (the reliability probe's cross-site findings), and its findings on ingest paths.

use crate::support;

use std::io::Write;

use axum::body::Body;
use serde_json::{Value, json};
use support::{Reply, TestServer, http};
use tungstenite::client::IntoClientRequest;

const EVIL: &str = "https://evil.example";

fn new_session(server: &TestServer) -> String {
    let created = server.post("/sessions", &json!({"node_id": "xsite"}));
    assert_eq!(created.status, 200, "{}", created.text());
    created.json()["session_id"].as_str().unwrap().to_owned()
}

fn observe(server: &TestServer, id: &str, headers: &[(&str, &str)]) -> Reply {
    let body = json!({"strings": ["a"]}).to_string();
    let length = body.len().to_string();
    let mut all = vec![("content-length", length.as_str())];
    all.extend_from_slice(headers);
    server.call("POST", &format!("/sessions/{id}/observe"), &all, body)
}

fn stm_len(server: &TestServer, id: &str) -> usize {
    let stm = server.get(&format!("/sessions/{id}/stm"));
    assert_eq!(stm.status, 200, "{}", stm.text());
    stm.json()["stm"].as_array().unwrap().len()
}

#[test]
fn a_write_from_a_disallowed_origin_is_refused_and_changes_nothing() {
    let server = TestServer::new(&[("a.md", "# A\nalpha text")]);
    let id = new_session(&server);
    observe(&server, &id, &[("content-type", "application/json")]);
    assert_eq!(stm_len(&server, &id), 1);

    let refused = server.call(
        "POST",
        &format!("/sessions/{id}/clear-all"),
        &[("origin", EVIL)],
        Body::empty(),
    );
    assert_eq!(refused.status, 403);
    let detail = refused.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(EVIL), "{detail}");
    assert!(detail.contains("KB_ALLOWED_ORIGINS"), "{detail}");
    assert_eq!(
        stm_len(&server, &id),
        1,
        "the refused clear-all did nothing"
    );

    // Under /api, KnowledgeBeast's error shape.
    let refused = server.call(
        "POST",
        "/api/v1/cache/clear",
        &[("origin", EVIL)],
        Body::empty(),
    );
    assert_eq!(refused.status, 403);
    let body = refused.json();
    assert_eq!(body["error"], "Forbidden");
    assert_eq!(body["status_code"], 403);
    assert!(body["detail"].as_str().unwrap().contains(EVIL));

    // Reads from any origin still work (CORS decides what the page may see).
    assert_eq!(
        server
            .call("GET", "/api/v1/stats", &[("origin", EVIL)], Body::empty())
            .status,
        200
    );
    // No Origin (curl, SDKs), a configured origin, a local page, the server's own origin.
    for headers in [
        vec![],
        vec![("origin", "http://localhost:3000")],
        vec![("origin", "http://127.0.0.1:5173")],
        vec![
            ("origin", "http://mneme.lan:8000"),
            ("host", "mneme.lan:8000"),
        ],
    ] {
        let mut headers = headers.clone();
        headers.push(("content-type", "application/json"));
        let reply = observe(&server, &id, &headers);
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.text());
    }
}

#[test]
fn the_websocket_refuses_a_disallowed_origin() {
    let server = TestServer::new(&[]);
    let spawned = server.spawn();
    let connect = |origin: Option<&str>| {
        let stream = std::net::TcpStream::connect(spawned.addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut request = format!("ws://{}/ws/events", spawned.addr)
            .into_client_request()
            .unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        // The handshake's status, and the body of a refusal.
        match tungstenite::client(request, stream) {
            Ok((_, response)) => (response.status().as_u16(), Value::Null),
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => (
                response.status().as_u16(),
                serde_json::from_slice(response.body().as_deref().unwrap_or(b"null")).unwrap(),
            ),
            Err(err) => panic!("handshake: {err}"),
        }
    };
    let (status, body) = connect(Some(EVIL));
    assert_eq!(status, 403, "a cross-site websocket is refused");
    assert!(body["detail"].as_str().unwrap().contains(EVIL), "{body}");
    assert_eq!(connect(None).0, 101, "clients without an Origin");
    assert_eq!(connect(Some("http://localhost:8080")).0, 101);
}

#[test]
fn json_routes_refuse_bodies_that_say_they_are_not_json() {
    let server = TestServer::new(&[("a.md", "# A\nalpha text")]);
    let id = new_session(&server);
    // What a page can send without a CORS preflight.
    for kind in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let reply = observe(&server, &id, &[("content-type", kind)]);
        assert_eq!(reply.status, 415, "{kind}");
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains("application/json"), "{detail}");
        let body = r#"{"query": "alpha"}"#;
        let reply = server.call(
            "POST",
            "/api/v1/query",
            &[("content-type", kind), ("content-length", "18")],
            body,
        );
        assert_eq!(reply.status, 415, "{kind}");
        assert_eq!(reply.json()["error"], "UnsupportedMediaType");
    }
    assert_eq!(stm_len(&server, &id), 0);
    // No content type at all: parsed as JSON, as FastAPI does.
    assert_eq!(observe(&server, &id, &[]).status, 200);
    assert_eq!(
        observe(
            &server,
            &id,
            &[("content-type", "application/vnd.kato+json")]
        )
        .status,
        200
    );
    // A write without a body needs no content type.
    let learned = server.call(
        "POST",
        &format!("/sessions/{id}/learn"),
        &[("content-type", "text/plain"), ("content-length", "0")],
        Body::empty(),
    );
    assert_eq!(learned.status, 200, "{}", learned.text());
}

#[test]
fn the_host_allowlist_refuses_other_hosts() {
    let server = TestServer::with(&[], |setup| {
        setup.server.allowed_hosts = vec!["mneme.lan".into(), "127.0.0.1".into()]
    });
    let refused = server.call(
        "GET",
        "/health",
        &[("host", "evil.example:8000")],
        Body::empty(),
    );
    assert_eq!(refused.status, 400);
    let detail = refused.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("evil.example:8000") && detail.contains("MNEME_ALLOWED_HOSTS"),
        "{detail}"
    );
    let refused = server.call(
        "GET",
        "/api/v1/stats",
        &[("host", "evil.example")],
        Body::empty(),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["status_code"], 400);
    let ok = server.call(
        "GET",
        "/health",
        &[("host", "mneme.lan:8000")],
        Body::empty(),
    );
    assert_eq!(ok.status, 200);
    // Over a socket the Host is the address.
    let spawned = server.spawn();
    assert_eq!(http(spawned.addr, "GET", "/health", &[], b"").status, 200);

    // Without the setting any host is answered.
    let open = TestServer::new(&[]);
    assert_eq!(
        open.call("GET", "/health", &[("host", "evil.example")], Body::empty())
            .status,
        200
    );
}

#[test]
fn kato_routes_take_an_optional_api_key() {
    let server = TestServer::with(&[], |setup| {
        setup.server.kato_api_keys = vec!["kato-key".into()]
    });
    let create = |headers: &[(&str, &str)]| {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        server.call("POST", "/sessions", &all, r#"{"node_id":"n"}"#)
    };
    let missing = create(&[]);
    assert_eq!(missing.status, 403);
    assert_eq!(missing.json(), json!({"detail": "Not authenticated"}));
    assert_eq!(create(&[("x-api-key", "wrong")]).status, 401);
    assert_eq!(create(&[("x-api-key", "kato-key")]).status, 200);
    for path in [
        "/status",
        "/ws/events",
        "/sessions/count",
        "/symbols/stats",
        "/metrics/cpu_percent",
    ] {
        assert_eq!(server.get(path).status, 403, "{path}");
    }
    // Shared endpoints and KnowledgeBeast's routes are not KATO's.
    for path in ["/", "/health", "/metrics", "/api/v1/stats"] {
        assert_eq!(server.get(path).status, 200, "{path}");
    }
    // By default KATO's routes are keyless, as in KATO.
    let open = TestServer::new(&[]);
    assert_eq!(open.post("/sessions", &json!({"node_id": "n"})).status, 200);
}

#[test]
fn project_keys_work_on_the_streaming_alias() {
    let server = TestServer::with(&[], |setup| setup.server.api_keys = vec!["global".into()]);
    let global = [
        ("x-api-key", "global"),
        ("content-type", "application/json"),
    ];
    let created = server.call("POST", "/api/v2/projects", &global, r#"{"name":"p"}"#);
    let id = created.json()["project_id"].as_str().unwrap().to_owned();
    let key = server.call(
        "POST",
        &format!("/api/v2/projects/{id}/api-keys"),
        &global,
        r#"{"name":"reader","scopes":["read"]}"#,
    );
    assert_eq!(key.status, 201, "{}", key.text());
    let reader = key.json()["api_key"].as_str().unwrap().to_owned();
    for path in [
        format!("/api/v2/projects/{id}/query/stream"),
        format!("/api/v2/{id}/query/stream"),
    ] {
        let reply = server.call(
            "POST",
            &path,
            &[("x-api-key", &reader), ("content-type", "application/json")],
            r#"{"query":"alpha"}"#,
        );
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    // Not on another project's alias.
    let other = server.call("POST", "/api/v2/projects", &global, r#"{"name":"q"}"#);
    let other = other.json()["project_id"].as_str().unwrap().to_owned();
    let reply = server.call(
        "POST",
        &format!("/api/v2/{other}/query/stream"),
        &[("x-api-key", &reader), ("content-type", "application/json")],
        r#"{"query":"alpha"}"#,
    );
    assert_eq!(reply.status, 401);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn bad_content_encodings_answer_in_the_api_shape() {
    let server = TestServer::new(&[("a.md", "# A\nalpha text")]);
    let spawned = server.spawn();
    let body = br#"{"query":"alpha"}"#;
    let twice = gzip(&gzip(body));
    let cases: [(&str, &[u8], u16); 3] = [
        ("br", body, 415),
        ("gzip, gzip", &twice, 415),
        ("gzip", body, 400),
    ];
    for (encoding, bytes, status) in cases {
        for path in ["/api/v1/query", "/sessions"] {
            let reply = http(
                spawned.addr,
                "POST",
                path,
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", encoding),
                ],
                bytes,
            );
            assert_eq!(reply.status, status, "{encoding} {path}: {}", reply.text());
            let json = reply.json();
            let detail = json["detail"].as_str().unwrap();
            assert!(!detail.is_empty());
            if path.starts_with("/api") {
                assert_eq!(json["status_code"], status, "{json}");
                let error = if status == 415 {
                    "UnsupportedMediaType"
                } else {
                    "BadRequest"
                };
                assert_eq!(json["error"], error, "{json}");
            }
            if status == 415 {
                assert!(detail.contains(encoding), "{detail}");
            }
        }
    }
    // gzip once still works.
    let reply = http(
        spawned.addr,
        "POST",
        "/api/v1/query",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &gzip(body),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn ingest_outside_the_knowledge_dirs_is_403_whether_or_not_the_file_exists() {
    let server = TestServer::new(&[("a.md", "# A\nalpha text")]);
    let existing = server.path("elsewhere.md");
    support::write(&existing, "# Outside\n");
    let missing = server.path("elsewhere-missing.md");
    for path in [
        existing.display().to_string(),
        missing.display().to_string(),
    ] {
        let reply = server.post("/api/v1/ingest", &json!({"file_path": path}));
        assert_eq!(reply.status, 403, "{path}: {}", reply.text());
        assert!(
            reply.json()["detail"]
                .as_str()
                .unwrap()
                .contains("outside the knowledge directories")
        );
    }
    // Inside, a missing file is still a 404, and a link out of the dir is refused.
    let inside_missing = server.path("knowledge-base/none.md");
    let reply = server.post(
        "/api/v1/ingest",
        &json!({"file_path": inside_missing.display().to_string()}),
    );
    assert_eq!(reply.status, 404);
    let link = server.path("knowledge-base/link.md");
    std::os::unix::fs::symlink(&existing, &link).unwrap();
    let reply = server.post(
        "/api/v1/ingest",
        &json!({"file_path": link.display().to_string()}),
    );
    assert_eq!(reply.status, 403, "{}", reply.text());
}

/// The probe's `kb/link.md → /etc/passwd`: the start-up scan served a file the API refused.
#[test]
fn the_scan_does_not_follow_links_out_of_the_knowledge_dirs() {
    let server = TestServer::with(&[("a.md", "# A\nalpha text")], |setup| {
        let outside = setup.kb.index_dir.parent().unwrap().join("secret.md");
        support::write(&outside, "root secretword\n");
        let link = setup.kb.knowledge_dirs[0].join("link.md");
        std::os::unix::fs::symlink(&outside, link).unwrap();
    });
    let reply = server.post("/api/v1/query", &json!({"query": "secretword"}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["count"], 0, "{}", reply.text());
    let reply = server.post("/api/v1/query", &json!({"query": "alpha"}));
    assert_eq!(reply.json()["count"], 1);
}

/// A plain-text error of a layer below the compression layer (the websocket upgrade's 400, a
/// multipart rejection), asked for with `Accept-Encoding: gzip`, is rewritten into the API's
/// JSON shape from its decoded text, and goes out as plain JSON (it was gzip bytes inside a
/// JSON string labelled gzip, which no client could decode: schemathesis found it).
#[test]
fn plain_text_errors_under_compression_come_out_as_readable_json() {
    let server = TestServer::new(&[]);
    let spawned = server.spawn();
    let reply = http(
        spawned.addr,
        "GET",
        "/ws/events",
        &[("accept-encoding", "gzip")],
        b"",
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.header("content-encoding").is_none(),
        "{:?}",
        reply.headers
    );
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("upgrade") || detail.contains("Connection"),
        "{detail}"
    );
    assert!(
        !detail.contains('\u{1f}'),
        "gzip bytes in the message: {detail:?}"
    );
}
