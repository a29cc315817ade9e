//! Queries never wait for an ingest and never see a partial one: readers hammer the API over
//! a socket while batches of files are ingested and committed.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};
use support::{TestServer, http, write};

const PER_BATCH: usize = 40;
const BATCHES: usize = 5;

fn post(addr: std::net::SocketAddr, path: &str, body: &Value) -> Value {
    let reply = http(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(reply.status, 200, "{path} {body}: {}", reply.text());
    reply.json()
}

#[test]
fn queries_during_ingest_see_whole_generations_only() {
    let first: Vec<(String, String)> = (0..PER_BATCH)
        .map(|i| {
            (
                format!("b0/doc{i}.md"),
                format!("# Doc {i}\n\nbatch0 common words {i}\n"),
            )
        })
        .collect();
    let docs: Vec<(&str, &str)> = first
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let server = TestServer::new(&docs);
    let spawned = server.spawn();
    let addr = spawned.addr;
    let done = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let done = done.clone();
            let queries = queries.clone();
            std::thread::spawn(move || {
                let mut i = r;
                while !done.load(Ordering::Relaxed) || i < r + 8 {
                    let batch = i % BATCHES;
                    let hits = post(addr, "/api/v1/query", &json!({"query": format!("batch{batch}"), "limit": 100, "use_cache": i % 2 == 0}));
                    let count = hits["count"].as_u64().unwrap() as usize;
                    assert!(count == 0 || count == PER_BATCH, "batch{batch}: {count} documents, a partial generation");
                    let all = post(addr, "/api/v1/query/paginated", &json!({"query": "common", "page_size": 10}));
                    let total = all["pagination"]["total_results"].as_u64().unwrap() as usize;
                    assert!(total.is_multiple_of(PER_BATCH) && total > 0, "{total} documents match 'common'");
                    queries.fetch_add(2, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for batch in 1..BATCHES {
        let paths: Vec<String> = (0..PER_BATCH)
            .map(|i| {
                let path = server.path(&format!("knowledge-base/b{batch}/doc{i}.md"));
                write(
                    &path,
                    &format!("# Doc {batch}/{i}\n\nbatch{batch} common words {i}\n"),
                );
                path.display().to_string()
            })
            .collect();
        let report = post(addr, "/api/v1/batch-ingest", &json!({"file_paths": paths}));
        assert_eq!(report["successful"], PER_BATCH);
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader
            .join()
            .expect("no query failed or saw a partial index");
    }
    assert!(queries.load(Ordering::Relaxed) >= 64);
    let total = post(addr, "/api/v1/query/paginated", &json!({"query": "common"}));
    assert_eq!(total["pagination"]["total_results"], PER_BATCH * BATCHES);
}
