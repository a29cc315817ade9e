//! The contract every backend must pass, as plain functions that panic on a violation, so
//! that each backend's test suite (and a future PostgreSQL one) runs the same checks.

use crate::{Durability, KvSnapshot, KvStore, WriteBatch};

/// Runs every check on an empty store.
pub fn run_all<S: KvStore>(store: &S) {
    puts_gets_and_deletes(store);
    batches_are_atomic_and_ordered(store);
    snapshots_do_not_see_later_writes(store);
    prefix_scans_are_ordered_and_bounded(store);
    deferred_writes_are_visible_and_flushable(store);
}

fn batch(ops: &[(&[u8], Option<&[u8]>)]) -> WriteBatch {
    let mut batch = WriteBatch::default();
    for (key, value) in ops {
        match value {
            Some(value) => batch.put(key.to_vec(), value.to_vec()),
            None => batch.delete(key.to_vec()),
        }
    }
    batch
}

pub fn puts_gets_and_deletes<S: KvStore>(store: &S) {
    store
        .write(batch(&[(b"a/1", Some(b"one")), (b"a/2", Some(b"two"))]))
        .unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.get(b"a/1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(snap.get(b"a/3").unwrap(), None);
    store
        .write(batch(&[(b"a/1", None), (b"a/2", Some(b"deux"))]))
        .unwrap();
    let snap = store.snapshot().unwrap();
    assert_eq!(snap.get(b"a/1").unwrap(), None);
    assert_eq!(snap.get(b"a/2").unwrap().as_deref(), Some(&b"deux"[..]));
    store
        .write(batch(&[(b"a/2", None), (b"missing", None)]))
        .unwrap();
}

pub fn batches_are_atomic_and_ordered<S: KvStore>(store: &S) {
    store
        .write(batch(&[
            (b"b/k", Some(b"first")),
            (b"b/k", None),
            (b"b/k", Some(b"last")),
        ]))
        .unwrap();
    assert_eq!(
        store.snapshot().unwrap().get(b"b/k").unwrap().as_deref(),
        Some(&b"last"[..])
    );
    store.write(WriteBatch::default()).unwrap();
    store.write(batch(&[(b"b/k", None)])).unwrap();
}

pub fn snapshots_do_not_see_later_writes<S: KvStore>(store: &S) {
    store.write(batch(&[(b"c/x", Some(b"old"))])).unwrap();
    let before = store.snapshot().unwrap();
    store
        .write(batch(&[(b"c/x", Some(b"new")), (b"c/y", Some(b"added"))]))
        .unwrap();
    assert_eq!(before.get(b"c/x").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(before.get(b"c/y").unwrap(), None);
    assert_eq!(before.scan_prefix(b"c/").unwrap().len(), 1);
    let after = store.snapshot().unwrap();
    assert_eq!(after.get(b"c/x").unwrap().as_deref(), Some(&b"new"[..]));
    store
        .write(batch(&[(b"c/x", None), (b"c/y", None)]))
        .unwrap();
}

pub fn prefix_scans_are_ordered_and_bounded<S: KvStore>(store: &S) {
    store
        .write(batch(&[
            (b"d/b", Some(b"2")),
            (b"d/a", Some(b"1")),
            (b"d/\xff", Some(b"3")),
            (b"d", Some(b"not under d/")),
            (b"e/a", Some(b"other table")),
        ]))
        .unwrap();
    let pairs = store.snapshot().unwrap().scan_prefix(b"d/").unwrap();
    let keys: Vec<&[u8]> = pairs.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [&b"d/a"[..], b"d/b", b"d/\xff"]);
    assert!(
        store
            .snapshot()
            .unwrap()
            .scan_prefix(b"zz")
            .unwrap()
            .is_empty()
    );
    store
        .write(batch(&[
            (b"d/a", None),
            (b"d/b", None),
            (b"d/\xff", None),
            (b"d", None),
            (b"e/a", None),
        ]))
        .unwrap();
}

pub fn deferred_writes_are_visible_and_flushable<S: KvStore>(store: &S) {
    store
        .write_with(batch(&[(b"f/1", Some(b"soon"))]), Durability::Deferred)
        .unwrap();
    assert_eq!(
        store.snapshot().unwrap().get(b"f/1").unwrap().as_deref(),
        Some(&b"soon"[..])
    );
    store.flush().unwrap();
    store.write(batch(&[(b"f/1", None)])).unwrap();
}
