//! What a durable commit costs through `RedbStore` (which also records the summary of its
//! records) against the same commit on a bare redb table, back to back:
//! `cargo run --release -p mneme-store --example commit_cost -- [COMMITS] [RECORDS]`.

use std::time::Instant;

use mneme_store::{KvStore, RedbStore, WriteBatch};
use redb::{Database, TableDefinition};

fn main() {
    let mut args = std::env::args().skip(1);
    let commits: usize = args.next().map_or(2000, |a| a.parse().unwrap());
    let preload: usize = args.next().map_or(10_000, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let value = vec![b'v'; 300];
    for round in 0..3 {
        // Bare redb.
        let path = dir.path().join(format!("bare-{round}.redb"));
        let db = Database::create(&path).unwrap();
        let table: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
        {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(table).unwrap();
                for i in 0..preload {
                    t.insert(format!("p/{i:08}").as_bytes(), value.as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let started = Instant::now();
        for i in 0..commits {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(table).unwrap();
                for k in 0..3 {
                    t.insert(format!("n/{i:08}/{k}").as_bytes(), value.as_slice())
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let bare = started.elapsed().as_secs_f64() * 1e6 / commits as f64;
        drop(db);
        // RedbStore.
        let path = dir.path().join(format!("store-{round}.redb"));
        let store = RedbStore::open(&path).unwrap();
        let mut batch = WriteBatch::default();
        for i in 0..preload {
            batch.put(format!("p/{i:08}").into_bytes(), value.clone());
        }
        store.write(batch).unwrap();
        let started = Instant::now();
        for i in 0..commits {
            let mut batch = WriteBatch::default();
            for k in 0..3 {
                batch.put(format!("n/{i:08}/{k}").into_bytes(), value.clone());
            }
            store.write(batch).unwrap();
        }
        let ours = started.elapsed().as_secs_f64() * 1e6 / commits as f64;
        println!(
            "round {round}: bare redb {bare:.0} µs/commit, RedbStore {ours:.0} µs/commit ({:.2}x)",
            ours / bare
        );
    }
}
