//! The loader of a pattern node's records in the store (`patterns.redb`): fuzzed keys of
//! each record kind (pattern, affinity, vector, finalize figures) with values behind the
//! current format byte, loaded as a node: it answers (a node or a `Corrupt` error), never
//! panics.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mneme_store::{CommitMode, GroupCommit, KvStore, MemoryStore, WriteBatch};

/// The record format byte `mneme_seq`'s records start with (`node/records.rs`).
const FORMAT: u8 = 1;
const KINDS: [u8; 4] = [b'p', b'a', b'v', b'f'];

fuzz_target!(|data: &[u8]| {
    // Records: [kind selector][key length][key][value length][value]...
    let mut batch = WriteBatch::default();
    let mut rest = data;
    while let [selector, key_len, tail @ ..] = rest {
        let key_len = (*key_len as usize).min(tail.len());
        let (key, tail) = tail.split_at(key_len);
        let Some((&value_len, tail)) = tail.split_first() else {
            break;
        };
        let value_len = (value_len as usize * 4).min(tail.len());
        let (value, tail) = tail.split_at(value_len);
        let mut full_key = b"kato/fuzz/".to_vec();
        full_key.push(KINDS[*selector as usize % KINDS.len()]);
        full_key.extend_from_slice(key);
        let mut full_value = vec![FORMAT];
        full_value.extend_from_slice(value);
        batch.put(full_key, full_value);
        rest = tail;
    }
    let store = MemoryStore::default();
    store.write(batch).expect("a memory store takes any batch");
    let snapshot = store.snapshot().expect("a snapshot");
    let journal = Arc::new(GroupCommit::new(MemoryStore::default(), CommitMode::Durable));
    let _ = mneme_seq::Node::load("fuzz", &snapshot, journal);
});
