//! A node whose store of record is shared with other processes (cluster mode): every change is
//! one entry of an ordered log, numbered per node, and every process applies the same entries in
//! the same order to its own in-memory copy (a replica), so that all copies are equal at equal
//! versions.
//!
//! A write ([`Node::learn`] and the other changes) goes through [`ChangeLog::begin`], which takes
//! the log's lock of the node (writers of every process wait for each other) and hands back the
//! entries this replica has not applied yet; the replica applies them, then applies its own
//! change and commits it with the rows it changed ([`Changeset`]), so that the shared store
//! holds the node's state as well as its history. A commit that fails leaves the replica ahead
//! of the store: it is then marked stale ([`Node::is_stale`]) and must be loaded again.
//!
//! A request may carry a key (the session and its version, see `Session::request_key`): a change
//! whose key the log already holds was committed by an earlier try of the same request, which
//! then answers as before instead of counting the change twice.

use serde::{Deserialize, Serialize};

use super::state::NodeState;
use crate::error::Result;
use crate::types::{Emotives, MetaDict, PatternMetadata};

/// One change of a node, as the log records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// KATO's learn of `events` with a session's accumulators.
    Learn {
        events: Vec<Vec<String>>,
        emotives: Vec<Emotives>,
        metadata: Vec<MetaDict>,
        persistence: usize,
    },
    /// Many learns without emotives or metadata (the batch call).
    LearnMany {
        patterns: Vec<Vec<Vec<String>>>,
        persistence: usize,
    },
    /// Observed vectors joining the node's index.
    IndexVectors { vectors: Vec<(String, Vec<f64>)> },
    /// KATO's finalize-training.
    Finalize,
    /// KATO's clear-all: the node forgets everything.
    Clear,
}

/// One committed change and its version (the first change of a node is version 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub version: u64,
    pub change: Change,
}

/// A pattern's stored row.
#[derive(Clone, Debug, PartialEq)]
pub struct PatternRow {
    /// Bare 40-hex-digit hash.
    pub name: String,
    /// The pattern's place in the node (a replica loads patterns in this order, so that every
    /// copy numbers them alike).
    pub position: u64,
    pub events: Vec<Vec<String>>,
    pub frequency: u64,
    pub emotives: Vec<Emotives>,
    pub metadata: PatternMetadata,
}

/// A symbol's statistics row (derived from the patterns; stored for readers of the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolRow {
    pub name: String,
    pub frequency: u64,
    pub pattern_member_frequency: u64,
}

/// A symbol's affinity sums, as Redis would store them (decimal strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffinityRow {
    pub symbol: String,
    pub values: Vec<(String, String)>,
}

/// A pattern's finalize-training figures.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalizedRow {
    /// Bare 40-hex-digit hash.
    pub name: String,
    pub entropy: f64,
    pub normalized_entropy: f64,
    pub global_normalized_entropy: f64,
    pub tf: Vec<(String, f64)>,
}

/// A node's totals after a change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub patterns: u64,
    /// KATO's `TS`: symbols with a frequency.
    pub distinct_symbols: u64,
    /// `global:total_symbols_in_patterns_frequencies`.
    pub total_symbols_in_patterns: u64,
    /// `global:total_unique_patterns` (and `total_pattern_frequencies`).
    pub total_unique_patterns: u64,
    pub vectors: u64,
}

/// The rows one change wrote: what the shared store must hold afterwards, beside the entry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changeset {
    /// Everything of the node was removed first (clear-all).
    pub cleared: bool,
    pub patterns: Vec<PatternRow>,
    pub symbols: Vec<SymbolRow>,
    pub affinity: Vec<AffinityRow>,
    pub vectors: Vec<(String, Vec<f64>)>,
    /// When `Some`, the whole finalize-training table (it replaces the stored one).
    pub finalized: Option<Vec<FinalizedRow>>,
    pub totals: Totals,
}

/// A node's stored state, as a replica loads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeRows {
    /// The log version these rows are the state of.
    pub version: u64,
    pub patterns: Vec<PatternRow>,
    pub affinity: Vec<AffinityRow>,
    pub vectors: Vec<(String, Vec<f64>)>,
    pub finalized: Vec<FinalizedRow>,
}

/// The ordered log of a node's changes, shared by every process serving the node.
pub trait ChangeLog: Send + Sync {
    /// Starts a change of node `kb_id` whose replica has applied every entry up to `applied`:
    /// takes the log's lock of the node (until the write commits or is dropped) and reads the
    /// entries committed after `applied`. With `key`, also says whether a change of that key
    /// was committed before.
    fn begin(&self, kb_id: &str, applied: u64, key: Option<&str>) -> Result<Box<dyn LogWrite>>;
}

/// A change being written; dropping it without [`LogWrite::commit`] writes nothing.
pub trait LogWrite: Send {
    /// The entries committed after the replica's version, in order.
    fn missed(&mut self) -> Vec<Entry>;

    /// The version at which the change's key was committed by an earlier try, if it was.
    fn done_before(&self) -> Option<u64>;

    /// Commits `change` as the next version with the rows it changed; returns the version.
    fn commit(self: Box<Self>, change: &Change, rows: Changeset) -> Result<u64>;
}

impl NodeState {
    /// The stored row of pattern `id`.
    pub(crate) fn pattern_row(&self, id: u32) -> PatternRow {
        let rec = &self.patterns[id as usize];
        PatternRow {
            name: super::hex(&rec.name),
            position: u64::from(id),
            events: self.events(id),
            frequency: rec.frequency,
            emotives: rec.emotives.clone(),
            metadata: rec.metadata.clone(),
        }
    }

    /// The statistics rows of the distinct symbols of pattern `id`.
    pub(crate) fn symbol_rows(&self, ids: &[u32]) -> Vec<SymbolRow> {
        let mut symbols: Vec<u32> = ids.iter().flat_map(|&id| self.body(id).to_vec()).collect();
        symbols.sort_unstable();
        symbols.dedup();
        symbols
            .into_iter()
            .map(|s| SymbolRow {
                name: self.symbols.name(s).to_owned(),
                frequency: self.symbol_freq[s as usize],
                pattern_member_frequency: self.symbol_pmf[s as usize],
            })
            .collect()
    }

    pub(crate) fn affinity_row(&self, symbol: u32) -> AffinityRow {
        AffinityRow {
            symbol: self.symbols.name(symbol).to_owned(),
            values: self.affinity.get(&symbol).cloned().unwrap_or_default(),
        }
    }

    pub(crate) fn finalized_rows(&self) -> Vec<FinalizedRow> {
        let mut ids: Vec<u32> = self.finalized.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| {
                let f = &self.finalized[&id];
                FinalizedRow {
                    name: super::hex(&self.patterns[id as usize].name),
                    entropy: f.entropy,
                    normalized_entropy: f.normalized_entropy,
                    global_normalized_entropy: f.global_normalized_entropy,
                    tf: f
                        .tf
                        .iter()
                        .map(|&(s, tf)| (self.symbols.name(s).to_owned(), tf))
                        .collect(),
                }
            })
            .collect()
    }

    pub(crate) fn totals(&self) -> Totals {
        Totals {
            patterns: self.patterns.len() as u64,
            distinct_symbols: self.distinct_symbols as u64,
            total_symbols_in_patterns: self.total_symbols_in_patterns,
            total_unique_patterns: self.total_unique_patterns,
            vectors: self.vectors.len() as u64,
        }
    }

    /// A node's state from its stored rows (the same bookkeeping as a load from the key-value
    /// store: statistics follow from the patterns and their frequencies).
    pub(crate) fn from_rows(rows: &NodeRows) -> Result<NodeState> {
        let mut state = NodeState::default();
        for row in &rows.patterns {
            let name = super::records::parse_hash(&row.name).ok_or_else(|| {
                crate::Error::Corrupt(format!("pattern name {:?} is not a hash", row.name))
            })?;
            let id = state.add_pattern(
                name,
                &row.events,
                row.frequency,
                row.emotives.clone(),
                row.metadata.clone(),
            );
            state.count_learns(id, row.frequency);
        }
        for row in &rows.affinity {
            let id = state.symbols.intern(&row.symbol);
            state.affinity.insert(id, row.values.clone());
        }
        for (name, vector) in &rows.vectors {
            state.vectors.insert(name, vector);
        }
        for row in &rows.finalized {
            let Some(name) = super::records::parse_hash(&row.name) else {
                continue;
            };
            super::records::restore_finalized(
                &mut state,
                &name,
                [
                    row.entropy,
                    row.normalized_entropy,
                    row.global_normalized_entropy,
                ],
                &row.tf,
            );
        }
        state.postings.resize(state.symbols.len(), Vec::new());
        state.symbol_freq.resize(state.symbols.len(), 0);
        state.symbol_pmf.resize(state.symbols.len(), 0);
        Ok(state)
    }
}
