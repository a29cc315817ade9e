//! A node's long-term memory: the learned patterns with their frequencies, emotives and
//! metadata, the symbol statistics KATO keeps in Redis, symbol affinities, learned vectors,
//! and the candidate index predictions use.
//!
//! Hot structures hold dense ids: symbols are interned to `u32`, pattern bodies live in one
//! token arena, and every symbol has the ascending list of patterns that contain it, so that
//! a prediction scores only patterns sharing a symbol with the state.

mod records;
mod state;
mod vectors;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mneme_store::{KvSnapshot, WriteBatch};

pub use records::Journal;
pub(crate) use state::{Interner, NodeState, hex};

// Also at its first home, for the crates that name it there.
pub use crate::error::VectorError;
use crate::error::{Error, Result};
use crate::predict::{FuturePotential, LastCall};
use crate::types::{Emotives, MetaDict, PatternMetadata, accumulate_metadata, average_emotives};

/// A pattern as `GET /pattern/{id}` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternView {
    /// Bare 40-hex-digit hash.
    pub name: String,
    pub events: Vec<Vec<String>>,
    pub length: usize,
    pub frequency: u64,
    /// The stored rolling window of emotives (not averaged).
    pub emotives: Vec<Emotives>,
    pub metadata: PatternMetadata,
}

/// One symbol's statistics (`GET /symbols/stats`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolStat {
    pub name: String,
    /// Occurrences over every learn (`symbols:freq`).
    pub frequency: u64,
    /// Distinct patterns that contain it (`symbols:pmf`).
    pub pattern_member_frequency: u64,
}

/// Counts of a node, for status and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub patterns: usize,
    pub symbols: usize,
    pub vectors: usize,
}

pub struct Node {
    kb_id: String,
    prefix: Vec<u8>,
    pub(crate) state: RwLock<NodeState>,
    journal: Option<Arc<dyn Journal>>,
    /// KATO reads `future_potentials` from a per-node attribute set by the last full-path
    /// prediction (of any session of the node); single-symbol predictions report it as is.
    /// An observe-time call may still be pending here (see [`Node::defer_predict`]).
    last_call: Mutex<LastCall>,
    /// Bumped by every change of the patterns (learn, clear, finalize): a deferred prediction
    /// computed at the version it was asked at gives KATO's answer exactly.
    version: AtomicU64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("kb_id", &self.kb_id).finish()
    }
}

impl Node {
    /// An empty node that keeps nothing on disk.
    pub fn in_memory(kb_id: &str) -> Node {
        Node {
            kb_id: kb_id.to_owned(),
            prefix: records::node_prefix(kb_id),
            state: RwLock::new(NodeState::default()),
            journal: None,
            last_call: Mutex::new(LastCall::default()),
            version: AtomicU64::new(0),
        }
    }

    /// Loads the node `kb_id` from `snapshot` and writes its changes through `journal`.
    pub fn load(kb_id: &str, snapshot: &dyn KvSnapshot, journal: Arc<dyn Journal>) -> Result<Node> {
        let prefix = records::node_prefix(kb_id);
        let state = records::load_state(&prefix, snapshot)?;
        Ok(Node {
            kb_id: kb_id.to_owned(),
            prefix,
            state: RwLock::new(state),
            journal: Some(journal),
            last_call: Mutex::new(LastCall::default()),
            version: AtomicU64::new(0),
        })
    }

    pub fn kb_id(&self) -> &str {
        &self.kb_id
    }

    pub fn stats(&self) -> NodeStats {
        let state = self.read();
        NodeStats {
            patterns: state.patterns.len(),
            symbols: state.distinct_symbols,
            vectors: state.vectors.len(),
        }
    }

    /// Learns `events` (KATO's `learn`): returns the bare hash, or `None` when the events hold
    /// fewer than two symbols (nothing is stored). `emotives` and `metadata` are the session's
    /// accumulators; `persistence` is the emotive window length.
    pub fn learn(
        &self,
        events: &[Vec<String>],
        emotives: &[Emotives],
        metadata: &[MetaDict],
        persistence: usize,
    ) -> Result<Option<String>> {
        let length: usize = events.iter().map(Vec::len).sum();
        if length <= 1 {
            return Ok(None);
        }
        let hash = crate::name::pattern_hash(events);
        let name = records::hash_bytes(&hash);
        let average = (!emotives.is_empty()).then(|| average_emotives(emotives));
        let accumulated = accumulate_metadata(metadata);
        let ticket = {
            let mut state = self.write();
            let id = state.learn(
                name,
                events,
                emotives,
                &accumulated,
                !metadata.is_empty(),
                persistence,
            );
            let mut batch = WriteBatch::default();
            if let Some(average) = &average {
                let touched = state.add_affinity(id, average);
                for symbol in touched {
                    records::put_affinity(&mut batch, &self.prefix, &state, symbol);
                }
            }
            records::put_pattern(&mut batch, &self.prefix, &state, id);
            self.journal.as_ref().map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (&self.journal, ticket) {
            journal.wait(ticket)?;
        }
        Ok(Some(hash))
    }

    /// Learns many event lists (without emotives or metadata) under one lock and one write
    /// batch, so that a bulk load pays for one commit: the batch call of the API. Returns each
    /// list's hash, or `None` for lists with fewer than two symbols.
    pub fn learn_many(
        &self,
        patterns: &[Vec<Vec<String>>],
        persistence: usize,
    ) -> Result<Vec<Option<String>>> {
        let hashed: Vec<Option<String>> = patterns
            .iter()
            .map(|events| {
                (events.iter().map(Vec::len).sum::<usize>() > 1)
                    .then(|| crate::name::pattern_hash(events))
            })
            .collect();
        let ticket = {
            let mut state = self.write();
            let mut batch = WriteBatch::default();
            let mut touched = Vec::new();
            for (events, hash) in patterns.iter().zip(&hashed) {
                if let Some(hash) = hash {
                    touched.push(state.learn(
                        records::hash_bytes(hash),
                        events,
                        &[],
                        &Vec::new(),
                        false,
                        persistence,
                    ));
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for id in touched {
                records::put_pattern(&mut batch, &self.prefix, &state, id);
            }
            self.journal.as_ref().map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (&self.journal, ticket) {
            journal.wait(ticket)?;
        }
        Ok(hashed)
    }

    /// The pattern with bare hash `hash` (40 hex digits).
    pub fn pattern(&self, hash: &str) -> Option<PatternView> {
        let name = records::parse_hash(hash)?;
        let state = self.read();
        let id = *state.by_name.get(&name)?;
        Some(state.view(id))
    }

    /// Every symbol's statistics, by symbol name.
    pub fn symbol_stats(&self) -> Vec<SymbolStat> {
        let state = self.read();
        let mut stats: Vec<SymbolStat> = (0..state.symbols.len() as u32)
            .filter(|&id| state.symbol_freq[id as usize] > 0)
            .map(|id| SymbolStat {
                name: state.symbols.name(id).to_owned(),
                frequency: state.symbol_freq[id as usize],
                pattern_member_frequency: state.symbol_pmf[id as usize],
            })
            .collect();
        stats.sort_by(|a, b| a.name.cmp(&b.name));
        stats
    }

    /// Every symbol's affinities (emotive -> running sum), by symbol name.
    pub fn affinities(&self) -> Vec<(String, Vec<(String, f64)>)> {
        let state = self.read();
        let mut out: Vec<(u32, Vec<(String, f64)>)> = state
            .affinity
            .iter()
            .map(|(&symbol, values)| {
                (
                    symbol,
                    values
                        .iter()
                        .map(|(k, v)| (k.clone(), parse_redis_float(v)))
                        .collect(),
                )
            })
            .collect();
        out.sort_by(|a, b| state.symbols.name(a.0).cmp(state.symbols.name(b.0)));
        out.into_iter()
            .map(|(symbol, values)| (state.symbols.name(symbol).to_owned(), values))
            .collect()
    }

    /// One symbol's affinities (empty when it has none).
    pub fn affinity(&self, symbol: &str) -> Vec<(String, f64)> {
        let state = self.read();
        state
            .symbols
            .get(symbol)
            .and_then(|id| state.affinity.get(&id))
            .map(|values| {
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), parse_redis_float(v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets everything the node learned (KATO's `clear-all`).
    pub fn clear(&self) -> Result<()> {
        let ticket = {
            let mut state = self.write();
            let mut batch = WriteBatch::default();
            records::delete_all(&mut batch, &self.prefix, &state);
            *state = NodeState::default();
            self.set_last_call(LastCall::default());
            self.journal.as_ref().map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (&self.journal, ticket) {
            journal.wait(ticket)?;
        }
        Ok(())
    }

    /// KATO's `finalize-training`: stores, for every pattern, the entropy figures and term
    /// frequencies of its whole body under the current symbol probabilities; predictions use
    /// them from then on. Returns the number of patterns processed.
    pub fn finalize_training(&self) -> Result<usize> {
        let ticket = {
            let mut state = self.write();
            let count = state.finalize();
            let mut batch = WriteBatch::default();
            for id in 0..state.patterns.len() as u32 {
                records::put_finalized(&mut batch, &self.prefix, &state, id);
            }
            let ticket = self.journal.as_ref().map(|journal| journal.submit(batch));
            drop(state);
            (count, ticket)
        };
        if let (Some(journal), Some(ticket)) = (&self.journal, ticket.1) {
            journal.wait(ticket)?;
        }
        Ok(ticket.0)
    }

    /// The learned vectors nearest to `vector` (Euclidean), at most `k`, nearest first.
    pub fn nearest_vectors(&self, vector: &[f64], k: usize) -> Vec<String> {
        self.read().vectors.nearest(vector, k)
    }

    /// Checks that `vector` has the node's dimension (fixed by its first vector).
    pub fn check_vector(&self, vector: &[f64]) -> std::result::Result<(), VectorError> {
        self.read().vectors.check(vector)
    }

    /// Adds observed vectors (named) to the node's index; KATO does this at learn time.
    pub fn index_vectors(&self, vectors: &[(String, Vec<f64>)]) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        // All or nothing: a vector of another dimension leaves the index as it was. Checked
        // first under the read lock, so that a refused batch does not move the node's version,
        // and again under the write lock (another session may have fixed the dimension since).
        check_batch(&self.read().vectors, vectors)?;
        let ticket = {
            let mut state = self.write();
            check_batch(&state.vectors, vectors)?;
            let mut batch = WriteBatch::default();
            for (name, vector) in vectors {
                if state.vectors.insert(name, vector) {
                    records::put_vector(&mut batch, &self.prefix, name, vector);
                }
            }
            self.journal.as_ref().map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (&self.journal, ticket) {
            journal.wait(ticket)?;
        }
        Ok(())
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, NodeState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The state for a change: a pending observe-time prediction of the current version is
    /// computed first (on the state it was asked about), then the version moves on.
    fn write(&self) -> RwLockWriteGuard<'_, NodeState> {
        let state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let pending = match &*self.last_call.lock().unwrap_or_else(|p| p.into_inner()) {
            LastCall::Pending(deferred) => Some(deferred.clone()),
            LastCall::Computed(_) => None,
        };
        if let Some(deferred) = pending {
            if deferred.version() == self.version() && !deferred.is_settled() {
                deferred.settle_on(&state);
            }
        }
        self.version.fetch_add(1, Ordering::AcqRel);
        state
    }

    /// Moves on with every change of the node's patterns (learn, clear, finalize, vectors):
    /// while it stays the same, a full-path prediction of a given state gives the same answer.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub(crate) fn set_last_call(&self, call: LastCall) {
        *self.last_call.lock().unwrap_or_else(|p| p.into_inner()) = call;
    }

    /// The future potentials of the node's last full-path prediction.
    pub(crate) fn last_future_potentials(&self) -> Vec<FuturePotential> {
        let pending = match &*self.last_call.lock().unwrap_or_else(|p| p.into_inner()) {
            LastCall::Computed(potentials) => return potentials.to_vec(),
            LastCall::Pending(deferred) => deferred.clone(),
        };
        let st = self.read();
        pending.settle_on(&st).1.clone()
    }
}

/// A value Redis stored as a decimal string, read back as Python's `float()` would.
pub(crate) fn parse_redis_float(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

/// Whether every vector of a batch has the index's dimension, and the batch one dimension.
fn check_batch(index: &vectors::VectorIndex, batch: &[(String, Vec<f64>)]) -> Result<()> {
    let Some((_, first)) = batch.first() else {
        return Ok(());
    };
    for (name, vector) in batch {
        index
            .check(vector)
            .map_err(|e| Error::Vector(e.named(name)))?;
        if vector.len() != first.len() {
            return Err(Error::Vector(VectorError {
                expected: first.len(),
                actual: vector.len(),
                vector_name: Some(name.clone()),
            }));
        }
    }
    Ok(())
}
