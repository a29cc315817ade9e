//! Cluster mode, knowledge base (API v2 projects): real PostgreSQL, Redis and `mneme serve`
//! nodes started by `scripts/cluster`. A project, its API keys and its documents made through
//! one node are served by every other at once: each node's replica of a project index
//! catches up with the shared document log before it answers.

use serde_json::{Value, json};

use crate::support::cluster::Cluster;
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
    let created = expect(
        json_call(
            &cluster,
            0,
            "POST",
            "/api/v2/projects",
            GLOBAL,
            Some(&json!({"name": "shared", "description": "made on node 1"})),
        ),
        201,
        "create on node 1",
    );
    let project = created["project_id"].as_str().unwrap().to_owned();
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
    let created = expect(
        json_call(
            &cluster,
            0,
            "POST",
            "/api/v2/projects",
            GLOBAL,
            Some(&json!({"name": "outage"})),
        ),
        201,
        "create",
    );
    let project = created["project_id"].as_str().unwrap().to_owned();
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
        assert_eq!(
            write.status,
            503,
            "node {node}: {}",
            String::from_utf8_lossy(&write.body)
        );
        assert!(
            write.headers.iter().any(|(k, _)| k == "retry-after"),
            "a 503 carries Retry-After: {:?}",
            write.headers
        );
        let create = json_call(
            &cluster,
            node,
            "POST",
            "/api/v2/projects",
            GLOBAL,
            Some(&json!({"name": "during"})),
        );
        assert_eq!(
            create.status,
            503,
            "node {node}: {}",
            String::from_utf8_lossy(&create.body)
        );
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

fn header<'r>(reply: &'r Reply, name: &str) -> Option<&'r str> {
    reply
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
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
