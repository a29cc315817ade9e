//! A node's long-term memory: the learned patterns with their frequencies, emotives and
//! metadata, the symbol statistics KATO keeps in Redis, symbol affinities, learned vectors,
//! and the candidate index predictions use.
//!
//! Hot structures hold dense ids: symbols are interned to `u32`, pattern bodies live in one
//! token arena, and every symbol has the ascending list of patterns that contain it, so that
//! a prediction scores only patterns sharing a symbol with the state.

mod records;
mod replica;
mod state;
mod vectors;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mneme_store::{KvSnapshot, WriteBatch};

pub use records::Journal;
pub use replica::{
    AffinityRow, Change, ChangeLog, Changeset, Entry, FinalizedRow, LogWrite, NodeRows, PatternRow,
    SymbolRow, Totals,
};
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

/// Where a node's changes go.
enum Writer {
    /// Nowhere: an in-memory node.
    Memory,
    /// A key-value store behind a group committer (the embedded mode).
    Journal(Arc<dyn Journal>),
    /// The ordered change log of a store shared with other processes (cluster mode).
    Log(Arc<dyn ChangeLog>),
}

pub struct Node {
    kb_id: String,
    prefix: Vec<u8>,
    pub(crate) state: RwLock<NodeState>,
    writer: Writer,
    /// A replica's last applied log version (0 for other nodes).
    applied: AtomicU64,
    /// Changes of a replica are applied one at a time, in log order.
    order: Mutex<()>,
    /// A replica whose commit failed is ahead of the store: it must be loaded again.
    stale: AtomicBool,
    /// KATO reads `future_potentials` from a per-node attribute set by the last full-path
    /// prediction (of any session of the node); single-symbol predictions report it as is.
    /// An observe-time call may still be pending here (see [`Node::defer_predict`]).
    last_call: Mutex<LastCall>,
    /// Which `last_call` this is: a number no other node of this process ever had, taken anew
    /// by every change of `last_call`, so that a process sharing it with others (cluster
    /// mode) can tell whether it changed since it was last shared.
    last_call_generation: AtomicU64,
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
        Node::with_state(kb_id, NodeState::default(), Writer::Memory, 0)
    }

    fn with_state(kb_id: &str, state: NodeState, writer: Writer, applied: u64) -> Node {
        Node {
            kb_id: kb_id.to_owned(),
            prefix: records::node_prefix(kb_id),
            state: RwLock::new(state),
            writer,
            applied: AtomicU64::new(applied),
            order: Mutex::new(()),
            stale: AtomicBool::new(false),
            last_call: Mutex::new(LastCall::default()),
            last_call_generation: AtomicU64::new(next_generation()),
            version: AtomicU64::new(0),
        }
    }

    /// Loads the node `kb_id` from `snapshot` and writes its changes through `journal`.
    pub fn load(kb_id: &str, snapshot: &dyn KvSnapshot, journal: Arc<dyn Journal>) -> Result<Node> {
        let state = records::load_state(&records::node_prefix(kb_id), snapshot)?;
        Ok(Node::with_state(kb_id, state, Writer::Journal(journal), 0))
    }

    /// A replica of node `kb_id` from its stored rows, writing its changes through `log`.
    pub fn replica(kb_id: &str, rows: &NodeRows, log: Arc<dyn ChangeLog>) -> Result<Node> {
        let state = NodeState::from_rows(rows)?;
        Ok(Node::with_state(
            kb_id,
            state,
            Writer::Log(log),
            rows.version,
        ))
    }

    /// The last log version a replica applied.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Whether this replica may differ from the store (a commit of it failed): load it again.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    /// Applies entries committed by other processes, in order; entries at or below the
    /// replica's version are skipped. A gap in the versions, or an entry the replica cannot
    /// apply, marks it stale.
    pub fn apply_entries(&self, entries: &[Entry]) -> Result<()> {
        let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        self.apply_in_order(entries)
    }

    fn apply_in_order(&self, entries: &[Entry]) -> Result<()> {
        for entry in entries {
            let applied = self.applied();
            if entry.version <= applied {
                continue;
            }
            if entry.version != applied + 1 {
                self.stale.store(true, Ordering::Release);
                return Err(Error::Storage(format!(
                    "node {}: change {} follows {applied} (a gap in the change log)",
                    self.kb_id, entry.version
                )));
            }
            if let Err(err) = self.apply_change(&entry.change, false) {
                self.stale.store(true, Ordering::Release);
                return Err(err);
            }
            self.applied.store(entry.version, Ordering::Release);
        }
        Ok(())
    }

    /// Writes `change` through the log: the entries missed so far first, then the change,
    /// committed with its rows. Returns finalize-training's count (0 for other changes), or
    /// `None` when an earlier try of the same request (`key`) committed it already.
    fn replicate(
        &self,
        log: &Arc<dyn ChangeLog>,
        change: &Change,
        key: Option<&str>,
    ) -> Result<Option<usize>> {
        if self.is_stale() {
            return Err(Error::Unavailable(format!(
                "node {} is being reloaded from the store after a failed write; retry",
                self.kb_id
            )));
        }
        let _order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let mut write = log.begin(&self.kb_id, self.applied(), key)?;
        let missed = write.missed();
        self.apply_in_order(&missed)?;
        if write.done_before().is_some() {
            return Ok(None);
        }
        let (rows, count) = match self.apply_change(change, true) {
            Ok((rows, count)) => (rows.unwrap_or_default(), count),
            Err(err) => return Err(err),
        };
        match write.commit(change, rows) {
            Ok(version) => {
                self.applied.store(version, Ordering::Release);
                Ok(Some(count))
            }
            Err(err) => {
                // Applied here, maybe not stored: this copy is no longer known to be the
                // store's.
                self.stale.store(true, Ordering::Release);
                Err(err)
            }
        }
    }

    /// Applies one change to the state; with `collect`, returns the rows it changed. The
    /// count is finalize-training's (0 for other changes).
    fn apply_change(&self, change: &Change, collect: bool) -> Result<(Option<Changeset>, usize)> {
        let mut rows = Changeset::default();
        let mut count = 0;
        let mut state = self.write();
        match change {
            Change::Learn {
                events,
                emotives,
                metadata,
                persistence,
            } => {
                if let Some((id, touched)) =
                    learn_into(&mut state, events, emotives, metadata, *persistence)
                {
                    if collect {
                        rows.patterns.push(state.pattern_row(id));
                        rows.symbols = state.symbol_rows(&[id]);
                        rows.affinity = touched.iter().map(|&s| state.affinity_row(s)).collect();
                    }
                }
            }
            Change::LearnMany {
                patterns,
                persistence,
            } => {
                let mut ids = learn_many_into(&mut state, patterns, *persistence);
                ids.sort_unstable();
                ids.dedup();
                if collect {
                    rows.patterns = ids.iter().map(|&id| state.pattern_row(id)).collect();
                    rows.symbols = state.symbol_rows(&ids);
                }
            }
            Change::IndexVectors { vectors } => {
                check_batch(&state.vectors, vectors)?;
                for (name, vector) in vectors {
                    if state.vectors.insert(name, vector) && collect {
                        rows.vectors.push((name.clone(), vector.clone()));
                    }
                }
            }
            Change::Finalize => {
                count = state.finalize();
                if collect {
                    rows.finalized = Some(state.finalized_rows());
                }
            }
            Change::Clear => {
                *state = NodeState::default();
                self.set_last_call(LastCall::default());
                rows.cleared = true;
            }
        }
        rows.totals = state.totals();
        Ok((collect.then_some(rows), count))
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
        self.learn_keyed(events, emotives, metadata, persistence, None)
    }

    /// [`Node::learn`] as part of the request `key` (a replica then counts it once however
    /// often the request is tried; other nodes ignore the key).
    pub fn learn_keyed(
        &self,
        events: &[Vec<String>],
        emotives: &[Emotives],
        metadata: &[MetaDict],
        persistence: usize,
        key: Option<&str>,
    ) -> Result<Option<String>> {
        let length: usize = events.iter().map(Vec::len).sum();
        if length <= 1 {
            return Ok(None);
        }
        let hash = crate::name::pattern_hash(events);
        let journal = match &self.writer {
            Writer::Log(log) => {
                let change = Change::Learn {
                    events: events.to_vec(),
                    emotives: emotives.to_vec(),
                    metadata: metadata.to_vec(),
                    persistence,
                };
                let key = key.map(|key| format!("{key}:{hash}"));
                self.replicate(log, &change, key.as_deref())?;
                return Ok(Some(hash));
            }
            Writer::Journal(journal) => Some(journal),
            Writer::Memory => None,
        };
        let ticket = {
            let mut state = self.write();
            let mut batch = WriteBatch::default();
            if let Some((id, touched)) =
                learn_into(&mut state, events, emotives, metadata, persistence)
            {
                for symbol in touched {
                    records::put_affinity(&mut batch, &self.prefix, &state, symbol);
                }
                records::put_pattern(&mut batch, &self.prefix, &state, id);
            }
            journal.map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (journal, ticket) {
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
        let journal = match &self.writer {
            Writer::Log(log) => {
                let change = Change::LearnMany {
                    patterns: patterns.to_vec(),
                    persistence,
                };
                self.replicate(log, &change, None)?;
                return Ok(hashed);
            }
            Writer::Journal(journal) => Some(journal),
            Writer::Memory => None,
        };
        let ticket = {
            let mut state = self.write();
            let mut batch = WriteBatch::default();
            let mut touched = learn_many_into(&mut state, patterns, persistence);
            touched.sort_unstable();
            touched.dedup();
            for id in touched {
                records::put_pattern(&mut batch, &self.prefix, &state, id);
            }
            journal.map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (journal, ticket) {
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
        let journal = match &self.writer {
            Writer::Log(log) => return self.replicate(log, &Change::Clear, None).map(drop),
            Writer::Journal(journal) => Some(journal),
            Writer::Memory => None,
        };
        let ticket = {
            let mut state = self.write();
            let mut batch = WriteBatch::default();
            records::delete_all(&mut batch, &self.prefix, &state);
            *state = NodeState::default();
            self.set_last_call(LastCall::default());
            journal.map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (journal, ticket) {
            journal.wait(ticket)?;
        }
        Ok(())
    }

    /// KATO's `finalize-training`: stores, for every pattern, the entropy figures and term
    /// frequencies of its whole body under the current symbol probabilities; predictions use
    /// them from then on. Returns the number of patterns processed.
    pub fn finalize_training(&self) -> Result<usize> {
        let journal = match &self.writer {
            Writer::Log(log) => {
                return match self.replicate(log, &Change::Finalize, None)? {
                    Some(count) => Ok(count),
                    None => Ok(self.read().finalized.len()),
                };
            }
            Writer::Journal(journal) => Some(journal),
            Writer::Memory => None,
        };
        let (count, ticket) = {
            let mut state = self.write();
            let count = state.finalize();
            let mut batch = WriteBatch::default();
            for id in 0..state.patterns.len() as u32 {
                records::put_finalized(&mut batch, &self.prefix, &state, id);
            }
            (count, journal.map(|journal| journal.submit(batch)))
        };
        if let (Some(journal), Some(ticket)) = (journal, ticket) {
            journal.wait(ticket)?;
        }
        Ok(count)
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
        let journal = match &self.writer {
            Writer::Log(log) => {
                // Vectors already in the index change nothing: only new ones are logged.
                let new: Vec<(String, Vec<f64>)> = {
                    let state = self.read();
                    vectors
                        .iter()
                        .filter(|(name, _)| !state.vectors.contains(name))
                        .cloned()
                        .collect()
                };
                if new.is_empty() {
                    return Ok(());
                }
                let change = Change::IndexVectors { vectors: new };
                return self.replicate(log, &change, None).map(drop);
            }
            Writer::Journal(journal) => Some(journal),
            Writer::Memory => None,
        };
        let ticket = {
            let mut state = self.write();
            check_batch(&state.vectors, vectors)?;
            let mut batch = WriteBatch::default();
            for (name, vector) in vectors {
                if state.vectors.insert(name, vector) {
                    records::put_vector(&mut batch, &self.prefix, name, vector);
                }
            }
            journal.map(|journal| journal.submit(batch))
        };
        if let (Some(journal), Some(ticket)) = (journal, ticket) {
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
        let mut last_call = self.last_call.lock().unwrap_or_else(|p| p.into_inner());
        *last_call = call;
        self.last_call_generation
            .store(next_generation(), Ordering::Release);
    }

    /// Changes with every change of the node's last full-path call (see
    /// [`Node::shared_last_call`]); never the same for two nodes of one process.
    pub fn last_call_generation(&self) -> u64 {
        self.last_call_generation.load(Ordering::Acquire)
    }

    /// The future potentials of the node's last full-path call (computed now if that call
    /// was deferred), for processes that share it (cluster mode: KATO keeps it per node, and
    /// every process serving the node must report the same).
    pub fn shared_last_call(&self) -> Arc<Vec<FuturePotential>> {
        let pending = match &*self.last_call.lock().unwrap_or_else(|p| p.into_inner()) {
            LastCall::Computed(potentials) => return potentials.clone(),
            LastCall::Pending(deferred) => deferred.clone(),
        };
        let st = self.read();
        Arc::new(pending.settle_on(&st).1.clone())
    }

    /// Makes `future_potentials` the node's last full-path call, as another process shared
    /// it; the generation this gives the node.
    pub fn adopt_last_call(&self, future_potentials: Arc<Vec<FuturePotential>>) -> u64 {
        let mut last_call = self.last_call.lock().unwrap_or_else(|p| p.into_inner());
        *last_call = LastCall::Computed(future_potentials);
        let generation = next_generation();
        self.last_call_generation
            .store(generation, Ordering::Release);
        generation
    }

    /// The future potentials of the node's last full-path prediction.
    pub(crate) fn last_future_potentials(&self) -> Vec<FuturePotential> {
        self.shared_last_call().to_vec()
    }
}

/// A process-wide counter for [`Node::last_call_generation`].
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Records a learn in the state (KATO's Redis bookkeeping): the pattern's id and the symbols
/// whose affinity changed, or `None` when the events hold fewer than two symbols.
fn learn_into(
    state: &mut NodeState,
    events: &[Vec<String>],
    emotives: &[Emotives],
    metadata: &[MetaDict],
    persistence: usize,
) -> Option<(u32, Vec<u32>)> {
    if events.iter().map(Vec::len).sum::<usize>() <= 1 {
        return None;
    }
    let name = records::hash_bytes(&crate::name::pattern_hash(events));
    let accumulated = accumulate_metadata(metadata);
    let id = state.learn(
        name,
        events,
        emotives,
        &accumulated,
        !metadata.is_empty(),
        persistence,
    );
    let touched = if emotives.is_empty() {
        Vec::new()
    } else {
        state.add_affinity(id, &average_emotives(emotives))
    };
    Some((id, touched))
}

/// Records many learns without emotives or metadata; the ids of the patterns learned.
fn learn_many_into(
    state: &mut NodeState,
    patterns: &[Vec<Vec<String>>],
    persistence: usize,
) -> Vec<u32> {
    let mut ids = Vec::new();
    for events in patterns {
        if events.iter().map(Vec::len).sum::<usize>() > 1 {
            let name = records::hash_bytes(&crate::name::pattern_hash(events));
            ids.push(state.learn(name, events, &[], &Vec::new(), false, persistence));
        }
    }
    ids
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
