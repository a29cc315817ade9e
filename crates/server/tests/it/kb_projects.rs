//! KnowledgeBeast's API v2 (`/api/v2/projects`): CRUD, isolation, ingest, query, streaming,
//! scoped project keys, export / import, and persistence across a restart.

use crate::support;

use axum::body::Body;
use serde_json::{Value, json};
use support::{Reply, TestServer, write};

fn create(server: &TestServer, name: &str) -> Value {
    let reply = server.post(
        "/api/v2/projects",
        &json!({"name": name, "description": format!("{name} docs"), "metadata": {"team": "x"}}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()
}

/// `POST /api/v2/projects/import` with `archive` as the `file` and the other form `fields`.
fn import_archive(server: &TestServer, archive: &[u8], fields: &[(&str, &str)]) -> Reply {
    let boundary = "mnemeboundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
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
    let import = |archive: &[u8], fields: &[(&str, &str)]| import_archive(&server, archive, fields);
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

const MIB: u64 = 1 << 20;

/// A ZIP of `(name, content)` entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(*name, options).unwrap();
        std::io::Write::write_all(&mut zip, content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

const MANIFEST: &[u8] = br#"{"version": "2.3.0"}"#;

/// An archive of a few hundred kilobytes whose `documents.json` is a valid document of
/// `size` bytes, nearly all one string of `0`s.
fn zip_bomb(size: u64) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("manifest.json", options).unwrap();
    zip.write_all(MANIFEST).unwrap();
    zip.start_file("project.json", options).unwrap();
    zip.write_all(br#"{"name": "bomb"}"#).unwrap();
    zip.start_file("documents.json", options).unwrap();
    zip.write_all(br#"{"ids": ["bomb"], "documents": [""#)
        .unwrap();
    let zeros = vec![b'0'; MIB as usize];
    for _ in 0..size / MIB {
        zip.write_all(&zeros).unwrap();
    }
    zip.write_all(br#""]}"#).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Rewrites the uncompressed size `documents.json` declares in its local and central headers.
fn declare_size(archive: &mut [u8], declared: u32) {
    let name = b"documents.json";
    for at in 0..archive.len().saturating_sub(46) {
        let (name_len_at, size_at, name_at) = match &archive[at..at + 4] {
            b"PK\x03\x04" => (at + 26, at + 22, at + 30),
            b"PK\x01\x02" => (at + 28, at + 24, at + 46),
            _ => continue,
        };
        let name_len = usize::from(u16::from_le_bytes([
            archive[name_len_at],
            archive[name_len_at + 1],
        ]));
        if archive.get(name_at..name_at + name_len) == Some(&name[..]) {
            archive[size_at..size_at + 4].copy_from_slice(&declared.to_le_bytes());
        }
    }
}

fn small_import_limits() -> TestServer {
    TestServer::with(&[], |setup| {
        setup.server.import.max_entry_bytes = MIB;
        setup.server.import.max_bytes = 2 * MIB;
        setup.server.import.max_entries = 8;
    })
}

fn assert_import_too_large(reply: &Reply, detail: &str) {
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({
            "error": "RequestEntityTooLarge",
            "message": "Import archive too large",
            "detail": detail,
            "status_code": 413,
        })
    );
}

#[test]
fn an_import_zip_bomb_is_refused_with_413() {
    let server = small_import_limits();
    let bomb = zip_bomb(64 * MIB);
    assert!(bomb.len() < 256 * 1024, "{} bytes", bomb.len());
    let entry_limit = "documents.json decompresses to more than 1048576 bytes, the limit \
         KB_IMPORT_MAX_ENTRY_BYTES sets; raise KB_IMPORT_MAX_ENTRY_BYTES \
         (server.import_max_entry_bytes in the config file) to import it";
    assert_import_too_large(&import_archive(&server, &bomb, &[]), entry_limit);
    // The headers may say anything: only the bytes decompressed count.
    let mut liar = bomb.clone();
    declare_size(&mut liar, 64);
    assert_import_too_large(&import_archive(&server, &liar, &[]), entry_limit);
    assert_eq!(server.get("/api/v2/projects").json()["count"], 0);
}

#[test]
fn an_import_with_too_many_entries_documents_or_bytes_is_refused_with_413() {
    let server = TestServer::with(&[], |setup| {
        setup.server.import.max_entries = 8;
        setup.server.import.max_archive_bytes = 64 * 1024;
        setup.server.import.max_documents = 100;
    });
    let names: Vec<String> = (0..9).map(|i| format!("extra-{i}.json")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"{}"[..])).collect();
    assert_import_too_large(
        &import_archive(&server, &zip_of(&entries), &[]),
        "the archive has more than 8 entries, the limit KB_IMPORT_MAX_ENTRIES sets; \
         raise KB_IMPORT_MAX_ENTRIES (server.import_max_entries in the config file) to \
         import it",
    );
    // Short items, many of them: bounded by count, not bytes.
    let ids = format!("{{\"ids\": [{}0]}}", "0,".repeat(1000));
    let many = zip_of(&[
        ("manifest.json", MANIFEST),
        ("project.json", br#"{"name": "many"}"#),
        ("documents.json", ids.as_bytes()),
    ]);
    assert_import_too_large(
        &import_archive(&server, &many, &[]),
        "documents.json has more than 100 documents, the limit KB_IMPORT_MAX_DOCUMENTS \
         sets; raise KB_IMPORT_MAX_DOCUMENTS (server.import_max_documents in the config \
         file) to import it",
    );
    let upload_limit = "the archive is more than 65536 bytes, the limit \
         KB_IMPORT_MAX_UPLOAD_BYTES sets; raise KB_IMPORT_MAX_UPLOAD_BYTES \
         (server.import_max_upload_bytes in the config file) to import it";
    let big = vec![b' '; 100 * 1024];
    // Streamed: the file field is cut at the limit.
    assert_import_too_large(&import_archive(&server, &big, &[]), upload_limit);
    // Declared: refused before the body is read.
    let declared = server.call(
        "POST",
        "/api/v2/projects/import",
        &[
            ("content-type", "multipart/form-data; boundary=b"),
            ("content-length", "10000000"),
        ],
        vec![0u8; 10],
    );
    assert_import_too_large(&declared, upload_limit);
    // The upload limit is the import's own: other requests keep KB_MAX_REQUEST_SIZE.
    let other = server.post("/api/v2/projects", &json!({"name": "x".repeat(10)}));
    assert_eq!(other.status, 201);
}

#[test]
fn archives_round_trip_as_json_too() {
    let server = TestServer::new(&[]);
    let id = create(&server, "rivers")["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ingest_text(&server, &id, "# Deltas\n\nRivers build deltas.\n");
    let download = server.get(&format!("/api/v2/projects/{id}/export?format=json"));
    assert_eq!(download.status, 200, "{}", download.text());
    assert_eq!(download.header("content-type"), Some("application/json"));
    assert_eq!(
        download.header("content-disposition"),
        Some(format!("attachment; filename=\"{id}_export.json\"").as_str())
    );
    let archive = download.json();
    assert_eq!(archive["manifest"]["version"], "2.3.0");
    assert_eq!(
        archive["project"],
        server.get(&format!("/api/v2/projects/{id}")).json()
    );
    assert_eq!(archive["documents"]["count"], 1);

    let imported = import_archive(&server, &download.body, &[("new_name", "copy")]);
    assert_eq!(imported.status, 201, "{}", imported.text());
    let copy = imported.json()["project_id"].as_str().unwrap().to_owned();
    let found = server
        .post(
            &format!("/api/v2/projects/{copy}/query"),
            &json!({"query": "deltas"}),
        )
        .json();
    assert_eq!(found["count"], 1);

    let written = server.post(
        &format!("/api/v2/projects/{id}/export?format=json"),
        &json!({}),
    );
    assert_eq!(written.status, 200, "{}", written.text());
    let path = written.json()["export_path"].as_str().unwrap().to_owned();
    assert!(path.ends_with(".json"), "{path}");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk["documents"], archive["documents"]);

    let bad = server.get(&format!("/api/v2/projects/{id}/export?format=tar"));
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.json()["detail"],
        "query.format: Input should be 'zip' or 'json'"
    );
}

#[test]
fn a_failed_overwrite_keeps_the_old_project() {
    let server = TestServer::new(&[]);
    let id = create(&server, "keep")["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ingest_text(&server, &id, "# Glaciers\n\nGlaciers carve valleys.\n");
    // A good manifest and project, then a documents.json that breaks off late.
    let mut documents = String::from(r#"{"ids": ["#);
    for i in 0..500 {
        documents.push_str(&format!(r#""doc_{i}", "#));
    }
    documents.push_str(r#""last"], "documents": ["one", "#);
    let corrupt = zip_of(&[
        ("manifest.json", MANIFEST),
        ("project.json", br#"{"name": "keep"}"#),
        ("documents.json", documents.as_bytes()),
    ]);
    let failed = import_archive(&server, &corrupt, &[("overwrite", "true")]);
    assert_eq!(failed.status, 400, "{}", failed.text());
    assert!(
        failed.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("Failed to import project: documents.json is not valid JSON"),
        "{}",
        failed.text()
    );
    let project = server.get(&format!("/api/v2/projects/{id}"));
    assert_eq!(project.status, 200, "the old project is still there");
    assert_eq!(project.json()["name"], "keep");
    let found = server
        .post(
            &format!("/api/v2/projects/{id}/query"),
            &json!({"query": "glaciers"}),
        )
        .json();
    assert_eq!(found["count"], 1, "and still answers queries");
    assert_eq!(server.get("/api/v2/projects").json()["count"], 1);
    let leftovers: Vec<String> = std::fs::read_dir(server.path("data/projects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_zip_export_keeps_knowledgebeast_entries_byte_for_byte() {
    let server = TestServer::new(&[]);
    let id = create(&server, "layout")["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ingest_text(&server, &id, "# Tides\n\nThe moon pulls the tides.\n");
    let download = server.get(&format!("/api/v2/projects/{id}/export"));
    assert_eq!(download.header("content-type"), Some("application/zip"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(download.body)).unwrap();
    let mut entry = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    // What the handlers wrote before the archive moved to app: pretty JSON in these key orders.
    let keys = |text: &str| -> Vec<String> {
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string_pretty(&value).unwrap(), text);
        value.as_object().unwrap().keys().cloned().collect()
    };
    let manifest = entry("manifest.json");
    assert_eq!(
        keys(&manifest),
        [
            "version",
            "export_date",
            "project_id",
            "project_name",
            "document_count",
            "has_embeddings",
            "embedding_model"
        ]
    );
    let project = entry("project.json");
    let shown = server.get(&format!("/api/v2/projects/{id}")).json();
    assert_eq!(project, serde_json::to_string_pretty(&shown).unwrap());
    let documents = entry("documents.json");
    assert_eq!(keys(&documents), ["ids", "documents", "metadatas", "count"]);
    let documents: Value = serde_json::from_str(&documents).unwrap();
    assert_eq!(documents["count"], 1);
    assert_eq!(documents["metadatas"][0]["name"], "note");
    assert_eq!(
        documents["documents"][0],
        "# Tides\n\nThe moon pulls the tides.\n"
    );
}

#[test]
fn an_overwrite_that_is_not_a_yes_no_word_is_a_422_and_changes_nothing() {
    let server = TestServer::new(&[]);
    create(&server, "kept");
    let archive = zip_of(&[
        ("manifest.json", MANIFEST),
        ("project.json", br#"{"name": "kept"}"#),
        ("documents.json", br#"{"ids": [], "documents": []}"#),
    ]);
    let refused = import_archive(&server, &archive, &[("overwrite", "sometimes")]);
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(refused.json()["error"], "ValidationError");
    assert_eq!(
        refused.json()["detail"],
        "body.overwrite: Input should be a valid boolean"
    );
    assert_eq!(server.get("/api/v2/projects").json()["count"], 1);
    // pydantic's other words are accepted: `t` overwrites.
    let replaced = import_archive(&server, &archive, &[("overwrite", " T ")]);
    assert_eq!(replaced.status, 201, "{}", replaced.text());
    assert_eq!(server.get("/api/v2/projects").json()["count"], 1);
}
