//! How a node is kept in the key-value store, and how it is loaded back.
//!
//! Keys: `kato/<kb_id>/` then `p` + 20-byte hash (pattern: events, frequency, emotives,
//! metadata), `a` + symbol (affinity sums as Redis strings), `v` + vector name (learned
//! vector), `f` + 20-byte hash (finalize-training figures). Values start with a format byte.
//! Symbol statistics and totals are not stored: they follow from the patterns and their
//! frequencies, and are rebuilt at load.

use mneme_store::{KvSnapshot, WriteBatch};
use serde::{Deserialize, Serialize};

use super::state::{Finalized, NodeState};
use crate::error::{Error, Result};
use crate::types::{Emotives, PatternMetadata};

/// Where a node's writes go: a group committer in practice.
pub trait Journal: Send + Sync {
    /// Queues a batch (in call order) and returns a ticket for `wait`.
    fn submit(&self, batch: WriteBatch) -> u64;
    /// Blocks until the batch is as durable as the journal promises.
    fn wait(&self, ticket: u64) -> Result<()>;
}

impl<S: mneme_store::KvStore> Journal for mneme_store::GroupCommit<S> {
    fn submit(&self, batch: WriteBatch) -> u64 {
        mneme_store::GroupCommit::submit(self, batch)
    }

    fn wait(&self, ticket: u64) -> Result<()> {
        mneme_store::GroupCommit::wait(self, ticket).map_err(|err| Error::Storage(err.to_string()))
    }
}

const FORMAT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct PatternRecord {
    events: Vec<Vec<String>>,
    frequency: u64,
    emotives: Vec<Emotives>,
    metadata: PatternMetadata,
}

#[derive(Serialize, Deserialize)]
struct FinalizedRecord {
    entropy: f64,
    normalized_entropy: f64,
    global_normalized_entropy: f64,
    tf: Vec<(String, f64)>,
}

/// Restores the finalize-training figures of pattern `name` as stored (entropy, normalized
/// and global normalized entropy; term frequencies by symbol), unless the pattern is gone.
pub(super) fn restore_finalized(
    state: &mut NodeState,
    name: &[u8; 20],
    [entropy, normalized_entropy, global_normalized_entropy]: [f64; 3],
    tf: &[(String, f64)],
) {
    if let Some(&id) = state.by_name.get(name) {
        let tf = tf
            .iter()
            .map(|(s, tf)| (state.symbols.intern(s), *tf))
            .collect();
        state.finalized.insert(
            id,
            Finalized {
                entropy,
                normalized_entropy,
                global_normalized_entropy,
                tf,
            },
        );
    }
}

pub(crate) fn node_prefix(kb_id: &str) -> Vec<u8> {
    format!("kato/{kb_id}/").into_bytes()
}

fn key(prefix: &[u8], kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 1 + rest.len());
    key.extend_from_slice(prefix);
    key.push(kind);
    key.extend_from_slice(rest);
    key
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![FORMAT];
    bytes.extend(postcard::to_allocvec(value).unwrap_or_default());
    bytes
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT, body)) => {
            postcard::from_bytes(body).map_err(|err| Error::Corrupt(format!("{what}: {err}")))
        }
        Some((format, _)) => Err(Error::Corrupt(format!(
            "{what}: unknown record format {format}"
        ))),
        None => Err(Error::Corrupt(format!("{what}: empty record"))),
    }
}

/// The 20 bytes of a 40-hex-digit hash (as the engine computed it).
pub(crate) fn hash_bytes(hash: &str) -> [u8; 20] {
    parse_hash(hash).unwrap_or([0; 20])
}

/// The 20 bytes of a 40-hex-digit hash, `None` if it is not one.
pub(crate) fn parse_hash(hash: &str) -> Option<[u8; 20]> {
    let bytes = hash.as_bytes();
    if bytes.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    // Only lowercase hex names exist.
    (super::state::hex(&out) == hash).then_some(out)
}

pub(crate) fn put_pattern(batch: &mut WriteBatch, prefix: &[u8], state: &NodeState, id: u32) {
    let rec = &state.patterns[id as usize];
    let record = PatternRecord {
        events: state.events(id),
        frequency: rec.frequency,
        emotives: rec.emotives.clone(),
        metadata: rec.metadata.clone(),
    };
    batch.put(key(prefix, b'p', &rec.name), encode(&record));
}

pub(crate) fn put_affinity(batch: &mut WriteBatch, prefix: &[u8], state: &NodeState, symbol: u32) {
    let values = state.affinity.get(&symbol).cloned().unwrap_or_default();
    batch.put(
        key(prefix, b'a', state.symbols.name(symbol).as_bytes()),
        encode(&values),
    );
}

pub(crate) fn put_vector(batch: &mut WriteBatch, prefix: &[u8], name: &str, vector: &[f64]) {
    batch.put(key(prefix, b'v', name.as_bytes()), encode(&vector.to_vec()));
}

pub(crate) fn put_finalized(batch: &mut WriteBatch, prefix: &[u8], state: &NodeState, id: u32) {
    let Some(stats) = state.finalized.get(&id) else {
        return;
    };
    let record = FinalizedRecord {
        entropy: stats.entropy,
        normalized_entropy: stats.normalized_entropy,
        global_normalized_entropy: stats.global_normalized_entropy,
        tf: stats
            .tf
            .iter()
            .map(|&(s, tf)| (state.symbols.name(s).to_owned(), tf))
            .collect(),
    };
    batch.put(
        key(prefix, b'f', &state.patterns[id as usize].name),
        encode(&record),
    );
}

/// Deletes every record of the node.
pub(crate) fn delete_all(batch: &mut WriteBatch, prefix: &[u8], state: &NodeState) {
    for rec in &state.patterns {
        batch.delete(key(prefix, b'p', &rec.name));
        batch.delete(key(prefix, b'f', &rec.name));
    }
    for symbol in state.affinity.keys() {
        batch.delete(key(prefix, b'a', state.symbols.name(*symbol).as_bytes()));
    }
    for (name, _) in state.vectors.iter() {
        batch.delete(key(prefix, b'v', name.as_bytes()));
    }
}

/// Rebuilds a node's state from its records.
pub(crate) fn load_state(prefix: &[u8], snapshot: &dyn KvSnapshot) -> Result<NodeState> {
    let mut state = NodeState::default();
    let storage = |err: mneme_store::Error| Error::Storage(err.to_string());
    let mut failure: Option<Error> = None;
    snapshot
        .for_each_prefix(&key(prefix, b'p', b""), &mut |k, v| {
            let name: [u8; 20] = match k[prefix.len() + 1..].try_into() {
                Ok(name) => name,
                Err(_) => return Ok(()),
            };
            match decode::<PatternRecord>(v, "pattern record") {
                Ok(record) => state.restore_pattern(
                    name,
                    &record.events,
                    record.frequency,
                    record.emotives,
                    record.metadata,
                ),
                Err(err) => failure = Some(err),
            }
            Ok(())
        })
        .map_err(storage)?;
    if let Some(err) = failure.take() {
        return Err(err);
    }
    snapshot
        .for_each_prefix(&key(prefix, b'a', b""), &mut |k, v| {
            let symbol = String::from_utf8_lossy(&k[prefix.len() + 1..]).into_owned();
            match decode::<Vec<(String, String)>>(v, "affinity record") {
                Ok(values) => {
                    let id = state.symbols.intern(&symbol);
                    state.affinity.insert(id, values);
                }
                Err(err) => failure = Some(err),
            }
            Ok(())
        })
        .map_err(storage)?;
    snapshot
        .for_each_prefix(&key(prefix, b'v', b""), &mut |k, v| {
            let name = String::from_utf8_lossy(&k[prefix.len() + 1..]).into_owned();
            match decode::<Vec<f64>>(v, "vector record") {
                Ok(vector) => {
                    state.vectors.insert(&name, &vector);
                }
                Err(err) => failure = Some(err),
            }
            Ok(())
        })
        .map_err(storage)?;
    snapshot
        .for_each_prefix(&key(prefix, b'f', b""), &mut |k, v| {
            let Ok(name) = <[u8; 20]>::try_from(&k[prefix.len() + 1..]) else {
                return Ok(());
            };
            match decode::<FinalizedRecord>(v, "finalize record") {
                Ok(record) => restore_finalized(
                    &mut state,
                    &name,
                    [
                        record.entropy,
                        record.normalized_entropy,
                        record.global_normalized_entropy,
                    ],
                    &record.tf,
                ),
                Err(err) => failure = Some(err),
            }
            Ok(())
        })
        .map_err(storage)?;
    if let Some(err) = failure {
        return Err(err);
    }
    state.postings.resize(state.symbols.len(), Vec::new());
    state.symbol_freq.resize(state.symbols.len(), 0);
    state.symbol_pmf.resize(state.symbols.len(), 0);
    Ok(state)
}

impl NodeState {
    /// Re-creates a stored pattern: its body, index entries and the statistics its
    /// `frequency` learns produced.
    fn restore_pattern(
        &mut self,
        name: [u8; 20],
        events: &[Vec<String>],
        frequency: u64,
        emotives: Vec<Emotives>,
        metadata: PatternMetadata,
    ) {
        let id = self.add_pattern(name, events, frequency, emotives, metadata);
        self.count_learns(id, frequency);
    }
}
