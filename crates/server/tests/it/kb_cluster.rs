//! Cluster mode, knowledge base (API v2 projects): real PostgreSQL, Redis and `mneme serve`
//! nodes started by `scripts/cluster`. A project, its API keys and its documents made through
//! one node are served by every other at once: each node's replica of a project index
//! catches up with the shared document log before it answers.

use serde_json::{Value, json};

use crate::support::cluster::{Cluster, assert_unavailable, eventually, header};
use crate::support::{Reply, try_http};

const GLOBAL: &str = "cluster-global-key";

/// A call to `node` with `key` as `X-API-Key`.
fn call(
    cluster: &Cluster,
    node: usize,
    method: &str,
    path: &str,
    key: &str,
    body: &[u8],
    content_type: &str,
) -> Reply {
    try_http(
        cluster.nodes[node % cluster.nodes.len()],
        method,
        path,
        &[("content-type", content_type), ("x-api-key", key)],
        body,
    )
    .unwrap_or_else(|err| panic!("{method} {path} on node {node}: {err}"))
}

fn json_call(
    cluster: &Cluster,
    node: usize,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> Reply {
    let payload = body.map_or_else(Vec::new, |b| b.to_string().into_bytes());
    call(
        cluster,
        node,
        method,
        path,
        key,
        &payload,
        "application/json",
    )
}

/// The JSON answer of a call that must succeed with `status`.
fn expect(reply: Reply, status: u16, what: &str) -> Value {
    assert_eq!(
        reply.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&reply.body)
    );
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}

fn query_ids(cluster: &Cluster, node: usize, project: &str, key: &str, text: &str) -> Vec<String> {
    let answer = expect(
        json_call(
            cluster,
            node,
            "POST",
            &format!("/api/v2/projects/{project}/query"),
            key,
            Some(&json!({"query": text})),
        ),
        200,
        &format!("query {text:?} on node {node}"),
    );
    doc_ids(&answer)
}

/// Creates a project through `node`; its id.
fn create_project(cluster: &Cluster, node: usize, name: &str) -> String {
    let created = expect(
        json_call(
            cluster,
            node,
            "POST",
            "/api/v2/projects",
            GLOBAL,
            Some(&json!({"name": name})),
        ),
        201,
        &format!("create {name} on node {node}"),
    );
    created["project_id"].as_str().unwrap().to_owned()
}

/// The doc_ids of a query's answer, in rank order.
fn doc_ids(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["doc_id"].as_str().unwrap().to_owned())
        .collect()
}

fn ingest(cluster: &Cluster, node: usize, project: &str, name: &str, text: &str) -> String {
    let answer = expect(
        json_call(
            cluster,
            node,
            "POST",
            &format!("/api/v2/projects/{project}/ingest"),
            GLOBAL,
            Some(&json!({"content": text, "metadata": {"name": name}})),
        ),
        200,
        &format!("ingest {name} on node {node}"),
    );
    answer["doc_id"].as_str().unwrap().to_owned()
}

#[test]
fn projects_keys_and_documents_are_served_by_every_node() {
    let cluster = Cluster::up(3, &[("KB_API_KEY", GLOBAL)]);

    // A project created on node 1 is listed by node 3.
    let project = create_project(&cluster, 0, "shared");
    let listed = expect(
        json_call(&cluster, 2, "GET", "/api/v2/projects", GLOBAL, None),
        200,
        "list on node 3",
    );
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["projects"][0]["project_id"], project.as_str());
    // Its name is taken on every node.
    let again = json_call(
        &cluster,
        1,
        "POST",
        "/api/v2/projects",
        GLOBAL,
        Some(&json!({"name": "shared"})),
    );
    assert_eq!(
        again.status,
        400,
        "{}",
        String::from_utf8_lossy(&again.body)
    );

    // Ingested through node 2, found on node 3 at once (no wait, no retry).
    let doc = ingest(
        &cluster,
        1,
        &project,
        "audio",
        "Audio processing with fast Fourier transforms.",
    );
    assert_eq!(
        query_ids(&cluster, 2, &project, GLOBAL, "fourier"),
        [doc.as_str()]
    );
    assert_eq!(
        query_ids(&cluster, 0, &project, GLOBAL, "fourier"),
        [doc.as_str()]
    );
    // A second ingest through node 3 reaches node 2's replica, which already held the first.
    let other = ingest(
        &cluster,
        2,
        &project,
        "video",
        "Video codecs and motion vectors.",
    );
    assert_eq!(
        query_ids(&cluster, 1, &project, GLOBAL, "motion"),
        [other.as_str()]
    );
    assert_eq!(
        query_ids(&cluster, 1, &project, GLOBAL, "fourier"),
        [doc.as_str()]
    );

    // A key made on node 1 works on node 3, and stops there once node 2 revokes it.
    let made = expect(
        json_call(
            &cluster,
            0,
            "POST",
            &format!("/api/v2/projects/{project}/api-keys"),
            GLOBAL,
            Some(&json!({"name": "reader", "scopes": ["read"]})),
        ),
        201,
        "key on node 1",
    );
    let raw = made["api_key"].as_str().unwrap().to_owned();
    let key_id = made["key_id"].as_str().unwrap().to_owned();
    assert_eq!(
        query_ids(&cluster, 2, &project, &raw, "fourier"),
        [doc.as_str()]
    );
    // Its scope holds on every node: a reader cannot ingest.
    let refused = json_call(
        &cluster,
        2,
        "POST",
        &format!("/api/v2/projects/{project}/ingest"),
        &raw,
        Some(&json!({"content": "x"})),
    );
    assert_eq!(
        refused.status,
        403,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    expect(
        json_call(
            &cluster,
            1,
            "DELETE",
            &format!("/api/v2/projects/{project}/api-keys/{key_id}"),
            GLOBAL,
            None,
        ),
        200,
        "revoke on node 2",
    );
    let revoked = json_call(
        &cluster,
        2,
        "POST",
        &format!("/api/v2/projects/{project}/query"),
        &raw,
        Some(&json!({"query": "fourier"})),
    );
    assert_eq!(
        revoked.status,
        401,
        "a revoked key on node 3: {}",
        String::from_utf8_lossy(&revoked.body)
    );

    // The documents live in PostgreSQL, as the log every replica follows.
    assert_eq!(
        cluster.sql(&format!("SELECT count(*), max(generation) FROM mneme_kb_documents WHERE project_id = '{project}'")).trim(),
        "2|2"
    );

    // An export downloaded from node 1 imports through node 3 and is searchable on node 2.
    let export = call(
        &cluster,
        0,
        "GET",
        &format!("/api/v2/projects/{project}/export"),
        GLOBAL,
        b"",
        "application/json",
    );
    assert_eq!(
        export.status,
        200,
        "{}",
        String::from_utf8_lossy(&export.body)
    );
    let boundary = "mnemeboundary";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"new_name\"\r\n\r\ncopy\r\n"
    )
    .into_bytes();
    form.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.zip\"\r\nContent-Type: application/zip\r\n\r\n").as_bytes());
    form.extend_from_slice(&export.body);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let imported = expect(
        call(
            &cluster,
            2,
            "POST",
            "/api/v2/projects/import",
            GLOBAL,
            &form,
            &format!("multipart/form-data; boundary={boundary}"),
        ),
        201,
        "import on node 3",
    );
    assert_eq!(imported["document_count"], 2, "{imported}");
    let copy = imported["project_id"].as_str().unwrap().to_owned();
    assert_eq!(query_ids(&cluster, 1, &copy, GLOBAL, "motion").len(), 1);

    // Deleted through node 3, gone on node 1 (its replica too: a query is a 404).
    expect(
        json_call(
            &cluster,
            2,
            "DELETE",
            &format!("/api/v2/projects/{project}"),
            GLOBAL,
            None,
        ),
        200,
        "delete on node 3",
    );
    let gone = json_call(
        &cluster,
        0,
        "POST",
        &format!("/api/v2/projects/{project}/query"),
        GLOBAL,
        Some(&json!({"query": "fourier"})),
    );
    assert_eq!(gone.status, 404, "{}", String::from_utf8_lossy(&gone.body));
    // An ingest into the deleted project is refused and leaves nothing behind.
    let late = json_call(
        &cluster,
        0,
        "POST",
        &format!("/api/v2/projects/{project}/ingest"),
        GLOBAL,
        Some(&json!({"content": "too late", "metadata": {"name": "late"}})),
    );
    assert_eq!(late.status, 404, "{}", String::from_utf8_lossy(&late.body));
    assert_eq!(
        cluster
            .sql(&format!(
                "SELECT count(*) FROM mneme_kb_documents WHERE project_id = '{project}'"
            ))
            .trim(),
        "0"
    );
    // The copy is untouched.
    assert_eq!(query_ids(&cluster, 0, &copy, GLOBAL, "fourier").len(), 1);
}

#[test]
fn with_postgres_down_queries_answer_from_the_replica_and_writes_are_refused_with_retry_after() {
    let cluster = Cluster::up(2, &[("KB_API_KEY", GLOBAL)]);
    let project = create_project(&cluster, 0, "outage");
    let doc = ingest(
        &cluster,
        0,
        &project,
        "audio",
        "Audio processing with fast Fourier transforms.",
    );
    // Node 2 follows the project before the outage.
    assert_eq!(
        query_ids(&cluster, 1, &project, GLOBAL, "fourier"),
        [doc.as_str()]
    );

    cluster.script("pg-stop", &[]);
    for node in 0..2 {
        assert_eq!(
            query_ids(&cluster, node, &project, GLOBAL, "fourier"),
            [doc.as_str()],
            "node {node} answers from its replica"
        );
        let write = json_call(
            &cluster,
            node,
            "POST",
            &format!("/api/v2/projects/{project}/ingest"),
            GLOBAL,
            Some(
                &json!({"content": "Lost while the database is down?", "metadata": {"name": "late"}}),
            ),
        );
        assert_unavailable(&write, &format!("an ingest on node {node}"));
        let create = json_call(
            &cluster,
            node,
            "POST",
            "/api/v2/projects",
            GLOBAL,
            Some(&json!({"name": "during"})),
        );
        assert_unavailable(&create, &format!("a project created on node {node}"));
    }

    cluster.script("pg-start", &[]);
    // Writes work again, and what was refused is not there.
    let after = ingest(
        &cluster,
        1,
        &project,
        "video",
        "Video codecs and motion vectors.",
    );
    assert_eq!(
        query_ids(&cluster, 0, &project, GLOBAL, "motion"),
        [after.as_str()]
    );
    assert!(query_ids(&cluster, 0, &project, GLOBAL, "database").is_empty());
    let listed = expect(
        json_call(&cluster, 1, "GET", "/api/v2/projects", GLOBAL, None),
        200,
        "list",
    );
    assert_eq!(listed["count"], 1, "{listed}");
}

#[test]
fn a_rate_limit_counts_a_keys_requests_to_every_node() {
    let cluster = Cluster::up(
        3,
        &[("KB_API_KEY", GLOBAL), ("MNEME_RATE_LIMIT_PER_KEY", "5")],
    );
    let mut seen = Vec::new();
    for i in 0..6 {
        let reply = json_call(&cluster, i % 3, "GET", "/api/v1/stats", GLOBAL, None);
        seen.push((
            reply.status,
            header(&reply, "x-ratelimit-remaining").map(str::to_owned),
        ));
    }
    let remaining = |n: &str| Some(n.to_owned());
    assert_eq!(
        seen,
        [
            (200, remaining("4")),
            (200, remaining("3")),
            (200, remaining("2")),
            (200, remaining("1")),
            (200, remaining("0")),
            (429, remaining("0")),
        ],
        "five requests a minute for the key, whichever node they reach"
    );
    // A wrong key is refused before it is counted.
    let other = json_call(&cluster, 0, "GET", "/api/v1/stats", "no-such-key", None);
    assert_eq!(
        other.status,
        401,
        "{}",
        String::from_utf8_lossy(&other.body)
    );

    // Without Redis each node counts on its own: requests are served, never failed.
    cluster.script("redis-stop", &[]);
    for node in 0..3 {
        let reply = json_call(&cluster, node, "GET", "/api/v1/stats", GLOBAL, None);
        assert_eq!(
            reply.status,
            200,
            "node {node}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    cluster.script("redis-start", &[]);
}

/// `n` markdown files under `dir`, each with a word of its own (`uniqueN`) and about `size`
/// bytes of text.
fn write_corpus(dir: &std::path::Path, n: usize, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let filler = "knowledge base replicas follow the shared log of scans. ".repeat(size / 56 + 1);
    for i in 0..n {
        std::fs::write(
            dir.join(format!("doc{i:05}.md")),
            format!("# Document {i}\n\nunique{i} {}\n", &filler[..size]),
        )
        .unwrap();
    }
}

fn v1_query(cluster: &Cluster, node: usize, text: &str) -> Vec<String> {
    let answer = expect(
        json_call(
            cluster,
            node,
            "POST",
            "/api/v1/query",
            GLOBAL,
            Some(&json!({"query": text, "use_cache": false})),
        ),
        200,
        &format!("v1 query {text:?} on node {node}"),
    );
    doc_ids(&answer)
}

fn v1_documents(cluster: &Cluster, node: usize) -> u64 {
    let stats = expect(
        json_call(cluster, node, "GET", "/api/v1/stats", GLOBAL, None),
        200,
        "v1 stats",
    );
    stats["total_documents"].as_u64().unwrap()
}

#[test]
fn the_shared_knowledge_dirs_are_scanned_once_and_an_api_ingest_on_one_node_is_found_on_every_node()
{
    let shared = tempfile::tempdir().unwrap();
    let kb = shared.path().join("kb");
    write_corpus(&kb, 40, 200);
    let dirs = kb.display().to_string();
    let cluster = Cluster::up(3, &[("KB_API_KEY", GLOBAL), ("KB_KNOWLEDGE_DIRS", &dirs)]);

    // Each node's start-up scan takes the lease in turn: the first scan is appended, the
    // others find nothing new.
    eventually(
        std::time::Duration::from_secs(60),
        "every node holds the 40 documents",
        || (0..3).all(|node| v1_documents(&cluster, node) == 40),
    );
    assert_eq!(v1_query(&cluster, 2, "unique7"), ["kb/doc00007.md"]);
    eventually(
        std::time::Duration::from_secs(60),
        "the start-up scans are done",
        || {
            cluster
                .sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
                .trim()
                == "0"
        },
    );
    assert_eq!(
        cluster.sql("SELECT count(*) FROM mneme_kb_scans").trim(),
        "1"
    );

    // A file added to the shared dir and ingested through node 2 is found on node 3 at once.
    std::fs::write(
        kb.join("added.md"),
        "# Added\n\nSpectrograms of birdsong.\n",
    )
    .unwrap();
    let path = kb.join("added.md").display().to_string();
    let ingested = expect(
        json_call(
            &cluster,
            1,
            "POST",
            "/api/v1/ingest",
            GLOBAL,
            Some(&json!({"file_path": path})),
        ),
        200,
        "ingest through node 2",
    );
    assert_eq!(ingested["doc_id"], "kb/added.md", "{ingested}");
    assert_eq!(v1_query(&cluster, 2, "birdsong"), ["kb/added.md"]);
    assert_eq!(v1_query(&cluster, 0, "birdsong"), ["kb/added.md"]);
    assert_eq!(v1_documents(&cluster, 2), 41);

    // A file changed and one removed: the heartbeat's re-scan (here a warm-up, which scans
    // the knowledge dirs) on node 1 reaches node 3.
    std::fs::remove_file(kb.join("doc00003.md")).unwrap();
    std::fs::write(
        kb.join("doc00004.md"),
        "# Document 4\n\nRewritten about tidal pools.\n",
    )
    .unwrap();
    expect(
        json_call(
            &cluster,
            0,
            "POST",
            "/api/v1/warm",
            GLOBAL,
            Some(&json!({})),
        ),
        200,
        "warm on node 1",
    );
    assert_eq!(v1_documents(&cluster, 2), 40);
    assert_eq!(v1_query(&cluster, 2, "tidal"), ["kb/doc00004.md"]);
    assert!(v1_query(&cluster, 1, "unique3").is_empty());
    assert_eq!(
        cluster.sql("SELECT count(*) FROM mneme_kb_scans").trim(),
        "3"
    );
}

#[test]
fn a_node_killed_mid_scan_leaves_nothing_half_done_and_another_node_scans() {
    let shared = tempfile::tempdir().unwrap();
    let kb = shared.path().join("kb");
    write_corpus(&kb, 4000, 8000);
    let dirs = kb.display().to_string();
    let cluster = Cluster::up(2, &[("KB_API_KEY", GLOBAL), ("KB_KNOWLEDGE_DIRS", &dirs)]);

    // The node holding the ingest lease, by the name its connections carry.
    let holder = || {
        cluster
            .sql(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
                 WHERE l.locktype = 'advisory' AND l.objid = 1701668099 AND l.granted",
            )
            .trim()
            .to_owned()
    };
    let mut scanning = String::new();
    eventually(
        std::time::Duration::from_secs(60),
        "a node takes the ingest lease",
        || {
            scanning = holder();
            !scanning.is_empty()
        },
    );
    let killed = cluster
        .nodes
        .iter()
        .position(|addr| scanning == format!("mneme {addr}"))
        .unwrap_or_else(|| {
            panic!(
                "the lease holder {scanning:?} is one of {:?}",
                cluster.nodes
            )
        });
    let appended_before = cluster
        .sql("SELECT count(*) FROM mneme_kb_scans")
        .trim()
        .to_owned();
    // scripts/cluster numbers its nodes from 1.
    cluster.script("node-kill", &[&(killed + 1).to_string()]);
    let survivor = 1 - killed;
    eprintln!(
        "killed node {killed} holding the lease; scans appended before the kill: {appended_before}"
    );

    // The survivor takes the lease, scans (or finds the scan done) and holds every document.
    eventually(
        std::time::Duration::from_secs(120),
        "the survivor holds every document",
        || v1_documents(&cluster, survivor) == 4000,
    );
    assert_eq!(
        v1_query(&cluster, survivor, "unique3999"),
        ["kb/doc03999.md"]
    );
    // One whole scan in the log, never a part of one.
    assert_eq!(
        cluster.sql("SELECT count(*) FROM mneme_kb_scans").trim(),
        "1"
    );
}

#[test]
fn a_staleness_bound_lets_a_project_replica_answer_without_reading_the_registry() {
    let cluster = Cluster::up(
        2,
        &[("KB_API_KEY", GLOBAL), ("MNEME_MAX_STALENESS_MS", "600000")],
    );
    let project = create_project(&cluster, 0, "stale");
    let first = ingest(
        &cluster,
        0,
        &project,
        "audio",
        "Audio processing with fast Fourier transforms.",
    );
    // Node 2's first use reads the registry and catches up.
    assert_eq!(
        query_ids(&cluster, 1, &project, GLOBAL, "fourier"),
        [first.as_str()]
    );
    // Within the bound it answers from its replica: a later ingest through node 1 is not
    // there yet, while node 1 has it.
    let second = ingest(
        &cluster,
        0,
        &project,
        "video",
        "Video codecs and motion vectors.",
    );
    assert_eq!(
        query_ids(&cluster, 0, &project, GLOBAL, "motion"),
        [second.as_str()]
    );
    assert!(query_ids(&cluster, 1, &project, GLOBAL, "motion").is_empty());
}
