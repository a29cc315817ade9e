//! Both backends pass the conformance suite, agree with a BTreeMap model on random batches,
//! and the embedded one keeps its data across a reopen.

use std::collections::BTreeMap;

use mneme_store::{KvSnapshot, KvStore, MemoryStore, RedbStore, WriteBatch, conformance};
use proptest::prelude::*;

#[test]
fn memory_store_passes_the_conformance_suite() {
    conformance::run_all(&MemoryStore::default());
}

#[test]
fn redb_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&RedbStore::open(&dir.path().join("store.redb")).unwrap());
}

#[test]
fn redb_store_keeps_data_across_a_reopen_and_refuses_a_second_opener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(b"k".to_vec(), b"v".to_vec());
        store.write(batch).unwrap();
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(
        store.snapshot().unwrap().get(b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

#[test]
fn a_file_that_is_not_a_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    std::fs::write(&path, b"definitely not a redb file, just some bytes").unwrap();
    assert!(RedbStore::open(&path).is_err());
}

#[test]
fn a_damaged_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        for chunk in 0..30u32 {
            let mut batch = WriteBatch::default();
            for i in 0..10u32 {
                let key = format!("p/{chunk:04}/{i:04}").into_bytes();
                batch.put(key, vec![b'x'; 200]);
            }
            store.write(batch).unwrap();
        }
    }
    // 64 bytes overwritten at the start of each page in turn (the damage the reliability
    // probe made, where it hurts: redb panics on an invalid page type byte).
    let original = std::fs::read(&path).unwrap();
    let mut refused = 0;
    for page in (4096..original.len()).step_by(4096) {
        let mut bytes = original.clone();
        for (i, byte) in bytes[page..page + 64].iter_mut().enumerate() {
            *byte = 0x7d ^ (i as u8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let opened = std::panic::catch_unwind(|| RedbStore::open(&path).map(|_| ()));
        match opened {
            Err(_) => panic!("opening a store damaged at byte {page} panicked"),
            Ok(Err(err)) => {
                assert!(err.to_string().contains("damaged"), "{err}");
                refused += 1;
            }
            // Opened: the damage hit a page the store no longer uses, and every record reads
            // back as written (never fewer records, never other bytes).
            Ok(Ok(())) => {
                let store = RedbStore::open(&path).unwrap();
                let records = store.snapshot().unwrap().scan_prefix(b"p/").unwrap();
                assert_eq!(
                    records.len(),
                    300,
                    "damage at byte {page} lost records silently"
                );
                assert!(
                    records.iter().all(|(_, v)| v == &vec![b'x'; 200]),
                    "damage at byte {page}"
                );
            }
        }
    }
    assert!(refused > 0, "no damaged page was noticed at open");
}

fn filled(path: &std::path::Path, records: u32) {
    let store = RedbStore::open(path).unwrap();
    let mut batch = WriteBatch::default();
    for i in 0..records {
        batch.put(
            format!("p/{i:05}").into_bytes(),
            format!("value {i}").into_bytes(),
        );
    }
    store.write(batch).unwrap();
}

#[test]
fn a_truncated_store_is_refused_not_opened_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    filled(&path, 2000);
    let bytes = std::fs::read(&path).unwrap();
    for keep in [0, bytes.len() / 2, bytes.len() - 4096] {
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let err = RedbStore::open(&path).map(|_| ()).unwrap_err();
        assert!(
            err.to_string().contains("is damaged"),
            "kept {keep} bytes: {err}"
        );
    }
    // A file that is simply gone is a new store.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(RedbStore::open(&path).unwrap().verify().unwrap().records, 0);
}

#[test]
fn the_summary_follows_puts_overwrites_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = RedbStore::open(&path).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(b"a".to_vec(), b"1".to_vec());
        batch.put(b"b".to_vec(), b"2".to_vec());
        batch.put(b"a".to_vec(), b"3".to_vec());
        store.write(batch).unwrap();
        let mut batch = WriteBatch::default();
        batch.delete(b"b".to_vec());
        batch.delete(b"missing".to_vec());
        batch.put(b"c".to_vec(), b"4".to_vec());
        store.write(batch).unwrap();
        store.flush().unwrap();
        assert_eq!(store.verify().unwrap().records, 2);
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.verify().unwrap().records, 2);
}

#[test]
fn a_store_written_before_summaries_opens_and_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");
            let mut table = txn.open_table(table).unwrap();
            table
                .insert(b"old".as_slice(), b"record".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(store.verify().unwrap().records, 1);
    assert_eq!(
        store.snapshot().unwrap().get(b"old").unwrap(),
        Some(b"record".to_vec())
    );
}

fn ops() -> impl Strategy<Value = Vec<Vec<(u8, Option<u8>)>>> {
    prop::collection::vec(
        prop::collection::vec((0u8..16, prop::option::of(any::<u8>())), 0..6),
        1..20,
    )
}

fn apply<S: KvStore>(
    store: &S,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    batches: &[Vec<(u8, Option<u8>)>],
) {
    for ops in batches {
        let mut batch = WriteBatch::default();
        for (key, value) in ops {
            let key = vec![b'p', *key];
            match value {
                Some(v) => {
                    batch.put(key.clone(), vec![*v]);
                    model.insert(key, vec![*v]);
                }
                None => {
                    batch.delete(key.clone());
                    model.remove(&key);
                }
            }
        }
        store.write(batch).unwrap();
        let scanned = store.snapshot().unwrap().scan_prefix(b"p").unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> =
            model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(scanned, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn backends_agree_with_a_btreemap_model(batches in ops()) {
        apply(&MemoryStore::default(), &mut BTreeMap::new(), &batches);
        let dir = tempfile::tempdir().unwrap();
        apply(&RedbStore::open(&dir.path().join("s.redb")).unwrap(), &mut BTreeMap::new(), &batches);
    }
}

#[test]
fn group_commit_applies_concurrent_batches_in_order_and_makes_them_durable() {
    use mneme_store::{CommitMode, GroupCommit};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.redb");
    {
        let group = std::sync::Arc::new(GroupCommit::new(
            RedbStore::open(&path).unwrap(),
            CommitMode::Durable,
        ));
        let writers: Vec<_> = (0..8u8)
            .map(|t| {
                let group = group.clone();
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        let mut batch = WriteBatch::default();
                        batch.put(vec![b'k', t, i], vec![i]);
                        batch.put(vec![b'l', t], vec![i]);
                        group.write(batch).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let snapshot = group.store().snapshot().unwrap();
        assert_eq!(snapshot.scan_prefix(b"k").unwrap().len(), 400);
        for t in 0..8u8 {
            assert_eq!(
                snapshot.get(&[b'l', t]).unwrap(),
                Some(vec![49]),
                "the last write of each writer wins"
            );
        }
    }
    let reopened = RedbStore::open(&path).unwrap();
    assert_eq!(
        reopened
            .snapshot()
            .unwrap()
            .scan_prefix(b"k")
            .unwrap()
            .len(),
        400
    );
}

#[test]
fn periodic_group_commit_defers_until_flush() {
    use mneme_store::{CommitMode, GroupCommit};
    let group = GroupCommit::new(MemoryStore::default(), CommitMode::Periodic);
    let mut batch = WriteBatch::default();
    batch.put(b"k".to_vec(), b"v".to_vec());
    group.write(batch).unwrap();
    assert_eq!(
        group.store().snapshot().unwrap().get(b"k").unwrap(),
        None,
        "not committed yet"
    );
    group.flush().unwrap();
    assert_eq!(
        group.store().snapshot().unwrap().get(b"k").unwrap(),
        Some(b"v".to_vec())
    );
}
