//! KnowledgeBeast's API v2 (`/api/v2/projects`): CRUD, isolation, ingest, query, streaming,
//! scoped project keys, export / import, and persistence across a restart.

mod support;

use axum::body::Body;
use serde_json::{Value, json};
use support::{TestServer, write};

fn create(server: &TestServer, name: &str) -> Value {
    let reply = server.post(
        "/api/v2/projects",
        &json!({"name": name, "description": format!("{name} docs"), "metadata": {"team": "x"}}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()
}

fn ingest_text(server: &TestServer, id: &str, text: &str) -> Value {
    let reply = server.post(
        &format!("/api/v2/projects/{id}/ingest"),
        &json!({"content": text, "metadata": {"name": "note"}}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[test]
fn projects_are_created_listed_updated_and_deleted() {
    let server = TestServer::new(&[]);
    let alpha = create(&server, "alpha");
    let id = alpha["project_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(alpha["collection_name"], format!("kb_project_{id}"));
    assert_eq!(alpha["embedding_model"], "all-MiniLM-L6-v2");
    assert_eq!(alpha["metadata"], json!({"team": "x"}));
    assert!(alpha["created_at"].as_str().unwrap().contains('T'));
    let beta = create(&server, "beta");
    let list = server.get("/api/v2/projects").json();
    assert_eq!(list["count"], 2);
    assert_eq!(list["projects"][0]["name"], "beta", "newest first");

    let duplicate = server.post("/api/v2/projects", &json!({"name": "alpha"}));
    assert_eq!(duplicate.status, 400);
    assert_eq!(
        duplicate.json(),
        json!({"detail": "Project with name 'alpha' already exists"})
    );
    let bad_name = server.post("/api/v2/projects", &json!({"name": "no/slashes"}));
    assert_eq!(bad_name.status, 422);
    assert_eq!(bad_name.json()["error"], "ValidationError");
    let long_description = server.post(
        "/api/v2/projects",
        &json!({"name": "x", "description": "d".repeat(501)}),
    );
    assert_eq!(long_description.status, 422);

    let updated = server.call(
        "PUT",
        &format!("/api/v2/projects/{id}"),
        &[("content-type", "application/json")],
        json!({"description": "new words", "name": "  alpha two  "}).to_string(),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    let updated = updated.json();
    assert_eq!(updated["name"], "alpha two");
    assert_eq!(updated["description"], "new words");
    assert_eq!(updated["created_at"], alpha["created_at"]);
    let clash = server.call(
        "PUT",
        &format!("/api/v2/projects/{id}"),
        &[("content-type", "application/json")],
        json!({"name": "beta"}).to_string(),
    );
    assert_eq!(clash.status, 400);

    let gone = server.call(
        "DELETE",
        &format!("/api/v2/projects/{}", beta["project_id"].as_str().unwrap()),
        &[],
        Body::empty(),
    );
    assert_eq!(gone.status, 200);
    assert_eq!(gone.json()["success"], true);
    let missing = server.get(&format!(
        "/api/v2/projects/{}",
        beta["project_id"].as_str().unwrap()
    ));
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["detail"],
        format!(
            "404: Project not found: {}",
            beta["project_id"].as_str().unwrap()
        )
    );
}

#[test]
fn each_project_has_its_own_index() {
    let server = TestServer::new(&[("shared.md", "# Shared\n\nzebra in the legacy index\n")]);
    let a = create(&server, "a")["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = create(&server, "b")["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ingested = ingest_text(&server, &a, "# Giraffes\n\nGiraffes have long necks.\n");
    assert_eq!(ingested["file_path"], "inline_content");
    assert!(ingested["doc_id"].as_str().unwrap().starts_with("doc_"));
    assert_eq!(
        ingested["message"],
        "Document successfully ingested into project a"
    );
    // Two inline documents in the same millisecond still get distinct ids.
    let second = ingest_text(&server, &a, "Giraffes again.");
    assert_ne!(second["doc_id"], ingested["doc_id"]);

    let query = |id: &str, q: &str| {
        let reply = server.post(
            &format!("/api/v2/projects/{id}/query"),
            &json!({"query": q, "limit": 5}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    let found = query(&a, "giraffes");
    assert_eq!(found["count"], 2);
    assert_eq!(found["cached"], false);
    assert_eq!(found["results"][0]["name"], "note");
    assert_eq!(query(&a, "giraffes")["cached"], true);
    assert_eq!(
        query(&b, "giraffes")["count"],
        0,
        "project b does not see project a"
    );
    assert_eq!(
        query(&a, "zebra")["count"],
        0,
        "projects do not see the v1 index"
    );
    let v1 = server
        .post("/api/v1/query", &json!({"query": "giraffes"}))
        .json();
    assert_eq!(v1["count"], 0, "the v1 index does not see projects");
    // A new document is visible at once (the cache never serves an older generation).
    ingest_text(&server, &a, "A third note on giraffes.");
    assert_eq!(query(&a, "giraffes")["count"], 3);

    let file = server.path("knowledge-base/zoo/lions.md");
    write(&file, "# Lions\n\nLions live in prides.\n");
    let reply = server.post(
        &format!("/api/v2/projects/{b}/ingest"),
        &json!({"file_path": file.display().to_string()}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["doc_id"],
        file.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(query(&b, "prides")["results"][0]["name"], "lions.md");

    let neither = server.post(
        &format!("/api/v2/projects/{b}/ingest"),
        &json!({"metadata": {}}),
    );
    assert_eq!(neither.status, 400);
    assert_eq!(
        neither.json(),
        json!({"detail": "Either file_path or content must be provided"})
    );
    let unknown = server.post("/api/v2/projects/nope/ingest", &json!({"content": "x"}));
    assert_eq!(unknown.status, 404);
    let unknown = server.post("/api/v2/projects/nope/query", &json!({"query": "x"}));
    assert_eq!(unknown.status, 404);
}

#[test]
fn streaming_query_sends_server_sent_events() {
    let server = TestServer::new(&[]);
    let id = create(&server, "stream")["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ingest_text(&server, &id, "# Rivers\n\nRivers flow to the sea.\n");
    ingest_text(&server, &id, "The sea is salty; rivers are not.");
    let spawned = server.spawn();
    for path in [
        format!("/api/v2/projects/{id}/query/stream"),
        format!("/api/v2/{id}/query/stream"),
    ] {
        let reply = support::http(
            spawned.addr,
            "POST",
            &path,
            &[("content-type", "application/json")],
            br#"{"query":"rivers sea"}"#,
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("text/event-stream"));
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        let events: Vec<Value> = reply
            .text()
            .split("\n\n")
            .filter_map(|block| block.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect();
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[0]["event"], "start");
        assert_eq!(events[0]["query"], "rivers sea");
        assert_eq!(events[1]["event"], "result");
        assert_eq!(events[1]["data"]["index"], 0);
        assert_eq!(events[1]["data"]["metadata"]["name"], "note");
        assert!(
            events[1]["data"]["document"]
                .as_str()
                .unwrap()
                .contains("ivers")
        );
        assert_eq!(
            events[3],
            json!({"event": "done", "total_results": 2, "timestamp": events[3]["timestamp"]})
        );
    }
}

#[test]
fn project_keys_are_scoped_and_revocable() {
    let server = TestServer::with(&[], |setup| setup.server.api_keys = vec!["global".into()]);
    let global = [
        ("x-api-key", "global"),
        ("content-type", "application/json"),
    ];
    let call = |method: &str, path: &str, key: &str, body: Value| {
        server.call(
            method,
            path,
            &[("x-api-key", key), ("content-type", "application/json")],
            body.to_string(),
        )
    };
    let created = server.call(
        "POST",
        "/api/v2/projects",
        &global,
        json!({"name": "p"}).to_string(),
    );
    assert_eq!(created.status, 201);
    let id = created.json()["project_id"].as_str().unwrap().to_owned();
    let other = server
        .call(
            "POST",
            "/api/v2/projects",
            &global,
            json!({"name": "q"}).to_string(),
        )
        .json();
    let other = other["project_id"].as_str().unwrap().to_owned();

    let key = call(
        "POST",
        &format!("/api/v2/projects/{id}/api-keys"),
        "global",
        json!({"name": "reader", "scopes": ["read"], "expires_days": 30}),
    );
    assert_eq!(key.status, 201, "{}", key.text());
    let key = key.json();
    let reader = key["api_key"].as_str().unwrap().to_owned();
    assert!(reader.starts_with("kb_") && reader.len() == 46);
    assert_eq!(key["scopes"], json!(["read"]));
    assert!(key["expires_at"].is_string());
    let writer = call(
        "POST",
        &format!("/api/v2/projects/{id}/api-keys"),
        "global",
        json!({"name": "writer"}),
    )
    .json();
    let writer_key = writer["api_key"].as_str().unwrap().to_owned();
    assert_eq!(writer["scopes"], json!(["read", "write"]));
    let bad_scope = call(
        "POST",
        &format!("/api/v2/projects/{id}/api-keys"),
        "global",
        json!({"name": "x", "scopes": ["root"]}),
    );
    assert_eq!(bad_scope.status, 422);

    // Read key: queries and reads, no writes, nothing on other projects or v1.
    assert_eq!(
        call(
            "POST",
            &format!("/api/v2/projects/{id}/query"),
            &reader,
            json!({"query": "x"})
        )
        .status,
        200
    );
    assert_eq!(
        call("GET", &format!("/api/v2/projects/{id}"), &reader, json!({})).status,
        200
    );
    let denied = call(
        "POST",
        &format!("/api/v2/projects/{id}/ingest"),
        &reader,
        json!({"content": "x"}),
    );
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.json(),
        json!({"detail": format!("API key does not have write access to project {id}")})
    );
    assert_eq!(
        call(
            "POST",
            &format!("/api/v2/projects/{other}/query"),
            &reader,
            json!({"query": "x"})
        )
        .status,
        401
    );
    assert_eq!(call("GET", "/api/v1/stats", &reader, json!({})).status, 401);
    // Write key writes; key management needs admin.
    assert_eq!(
        call(
            "POST",
            &format!("/api/v2/projects/{id}/ingest"),
            &writer_key,
            json!({"content": "hello"})
        )
        .status,
        200
    );
    let admin_only = call(
        "GET",
        &format!("/api/v2/projects/{id}/api-keys"),
        &writer_key,
        json!({}),
    );
    assert_eq!(admin_only.status, 403);
    assert_eq!(
        admin_only.json()["detail"],
        format!("Admin access required for project {id}")
    );

    let listed = call(
        "GET",
        &format!("/api/v2/projects/{id}/api-keys"),
        "global",
        json!({}),
    )
    .json();
    assert_eq!(listed["count"], 2);
    assert_eq!(listed["api_keys"][0]["name"], "writer", "newest first");
    assert!(
        listed["api_keys"][0].get("api_key").is_none(),
        "raw keys are never listed"
    );
    assert!(
        listed["api_keys"][1]["last_used_at"].is_string(),
        "use is recorded"
    );

    let key_id = key["key_id"].as_str().unwrap();
    let revoked = call(
        "DELETE",
        &format!("/api/v2/projects/{id}/api-keys/{key_id}"),
        "global",
        json!({}),
    );
    assert_eq!(revoked.status, 200);
    assert_eq!(
        revoked.json()["message"],
        format!("API key {key_id} revoked successfully")
    );
    assert_eq!(
        call(
            "POST",
            &format!("/api/v2/projects/{id}/query"),
            &reader,
            json!({"query": "x"})
        )
        .status,
        401
    );
    let unknown = call(
        "DELETE",
        &format!("/api/v2/projects/{id}/api-keys/none"),
        "global",
        json!({}),
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["detail"], "404: API key not found: none");
}

#[test]
fn projects_survive_a_restart_and_round_trip_through_export() {
    let server = TestServer::new(&[]);
    let id = create(&server, "keep")["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ingest_text(&server, &id, "# Glaciers\n\nGlaciers carve valleys.\n");
    let key = server
        .post(
            &format!("/api/v2/projects/{id}/api-keys"),
            &json!({"name": "k"}),
        )
        .json();

    let exported = server.post(&format!("/api/v2/projects/{id}/export"), &json!({}));
    assert_eq!(exported.status, 200, "{}", exported.text());
    let exported = exported.json();
    assert_eq!(exported["document_count"], 1);
    let archive = std::fs::read(exported["export_path"].as_str().unwrap()).unwrap();
    assert_eq!(exported["file_size_bytes"], archive.len());
    let download = server.get(&format!("/api/v2/projects/{id}/export"));
    assert_eq!(download.header("content-type"), Some("application/zip"));

    // Restart on the same directory.
    let dir = server.into_dir();
    let setup = support::setup(dir.path());
    let server = TestServer::open(dir, setup, false);
    let project = server.get(&format!("/api/v2/projects/{id}"));
    assert_eq!(project.status, 200);
    assert_eq!(project.json()["name"], "keep");
    let found = server
        .post(
            &format!("/api/v2/projects/{id}/query"),
            &json!({"query": "glaciers"}),
        )
        .json();
    assert_eq!(found["count"], 1);
    assert_eq!(
        server
            .get(&format!("/api/v2/projects/{id}/api-keys"))
            .json()["api_keys"][0]["key_id"],
        key["key_id"]
    );

    // Import the archive as a new project; the name is taken unless renamed or overwritten.
    let import = |archive: &[u8], fields: &[(&str, &str)]| {
        let boundary = "mnemeboundary";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.zip\"\r\nContent-Type: application/zip\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(archive);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        server.call(
            "POST",
            "/api/v2/projects/import",
            &[(
                "content-type",
                &format!("multipart/form-data; boundary={boundary}"),
            )],
            body,
        )
    };
    let clash = import(&archive, &[]);
    assert_eq!(clash.status, 400, "{}", clash.text());
    let renamed = import(&archive, &[("new_name", "copy")]);
    assert_eq!(renamed.status, 201, "{}", renamed.text());
    let renamed = renamed.json();
    assert_eq!(renamed["project_name"], "copy");
    assert_eq!(renamed["document_count"], 1);
    let copy = renamed["project_id"].as_str().unwrap();
    let found = server
        .post(
            &format!("/api/v2/projects/{copy}/query"),
            &json!({"query": "valleys"}),
        )
        .json();
    assert_eq!(found["count"], 1);
    let overwritten = import(&archive, &[("overwrite", "true")]);
    assert_eq!(overwritten.status, 201, "{}", overwritten.text());
    assert_eq!(
        server.get(&format!("/api/v2/projects/{id}")).status,
        404,
        "the old project was replaced"
    );
    let garbage = import(b"not a zip", &[("new_name", "g")]);
    assert_eq!(garbage.status, 400);
    assert!(
        garbage.json()["detail"]
            .as_str()
            .unwrap()
            .contains("not a ZIP archive")
    );
}
