//! The in-memory state of a node and the learn bookkeeping (KATO's Redis updates).

use std::collections::HashMap;

use super::PatternView;
use super::vectors::VectorIndex;
use crate::redis_float::hincrbyfloat;
use crate::types::{Emotives, PatternMetadata, Symbol, merge_metadata};

/// Symbols interned to dense ids, in first-learned order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<Symbol, u32>,
    names: Vec<Symbol>,
}

impl Interner {
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let symbol: Symbol = name.into();
        self.names.push(symbol.clone());
        self.ids.insert(symbol, id);
        id
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// The shared string of a symbol.
    pub fn symbol(&self, id: u32) -> Symbol {
        self.names[id as usize].clone()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }
}

/// One learned pattern. Its body is `tokens[tok_start..tok_start+tok_len]` of the node's
/// arena, cut into events by `event_lens[ev_start..ev_start+ev_len]`.
#[derive(Clone, Debug)]
pub(crate) struct PatternRec {
    pub name: [u8; 20],
    pub tok_start: u32,
    pub tok_len: u32,
    pub ev_start: u32,
    pub ev_len: u32,
    pub frequency: u64,
    pub emotives: Vec<Emotives>,
    pub metadata: PatternMetadata,
}

/// Entropy figures `finalize-training` stored for one pattern (over its whole body).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Finalized {
    pub entropy: f64,
    pub normalized_entropy: f64,
    pub global_normalized_entropy: f64,
    /// Term frequency of each distinct symbol (count / length), by symbol id.
    pub tf: Vec<(u32, f64)>,
}

#[derive(Debug, Default)]
pub(crate) struct NodeState {
    pub symbols: Interner,
    pub patterns: Vec<PatternRec>,
    pub tokens: Vec<u32>,
    pub event_lens: Vec<u32>,
    pub by_name: HashMap<[u8; 20], u32>,
    /// For every symbol, the patterns containing it (ascending ids, each once).
    pub postings: Vec<Vec<u32>>,
    /// For every symbol, the patterns whose first symbol it is (the single-symbol path).
    pub first_token: HashMap<u32, Vec<u32>>,
    /// `symbols:freq`: occurrences summed over every learn.
    pub symbol_freq: Vec<u64>,
    /// `symbols:pmf`: number of distinct patterns containing the symbol.
    pub symbol_pmf: Vec<u64>,
    /// Symbols with a `symbols:freq` entry (KATO's `TS`).
    pub distinct_symbols: usize,
    /// `global:total_symbols_in_patterns_frequencies`.
    pub total_symbols_in_patterns: u64,
    /// `global:total_unique_patterns` (also `total_pattern_frequencies`, which KATO only
    /// increments for new patterns).
    pub total_unique_patterns: u64,
    /// `affinity:{symbol}`: emotive -> running sum as Redis stores it.
    pub affinity: HashMap<u32, Vec<(String, String)>>,
    pub vectors: VectorIndex,
    pub finalized: HashMap<u32, Finalized>,
}

impl NodeState {
    pub fn body(&self, id: u32) -> &[u32] {
        let rec = &self.patterns[id as usize];
        &self.tokens[rec.tok_start as usize..(rec.tok_start + rec.tok_len) as usize]
    }

    pub fn event_lens_of(&self, id: u32) -> &[u32] {
        let rec = &self.patterns[id as usize];
        &self.event_lens[rec.ev_start as usize..(rec.ev_start + rec.ev_len) as usize]
    }

    /// The pattern's events as strings.
    pub fn events(&self, id: u32) -> Vec<Vec<String>> {
        let body = self.body(id);
        let mut out = Vec::with_capacity(self.event_lens_of(id).len());
        let mut pos = 0;
        for &len in self.event_lens_of(id) {
            let len = len as usize;
            out.push(
                body[pos..pos + len]
                    .iter()
                    .map(|&s| self.symbols.name(s).to_owned())
                    .collect(),
            );
            pos += len;
        }
        out
    }

    /// The pattern's events as shared symbols.
    pub fn event_symbols(&self, id: u32) -> Vec<Vec<Symbol>> {
        let body = self.body(id);
        let mut out = Vec::with_capacity(self.event_lens_of(id).len());
        let mut pos = 0;
        for &len in self.event_lens_of(id) {
            let len = len as usize;
            out.push(
                body[pos..pos + len]
                    .iter()
                    .map(|&s| self.symbols.symbol(s))
                    .collect(),
            );
            pos += len;
        }
        out
    }

    pub fn view(&self, id: u32) -> PatternView {
        let rec = &self.patterns[id as usize];
        PatternView {
            name: hex(&rec.name),
            events: self.events(id),
            length: rec.tok_len as usize,
            frequency: rec.frequency,
            emotives: rec.emotives.clone(),
            metadata: rec.metadata.clone(),
        }
    }

    /// Records a learn of `events` (named `name`); returns the pattern id. New patterns get
    /// frequency 1 and the last `persistence` emotives; a re-learn increments the frequency
    /// and, when it brings emotives or metadata, merges them. Symbol statistics and totals
    /// are updated as KATO's Redis writer does.
    pub fn learn(
        &mut self,
        name: [u8; 20],
        events: &[Vec<String>],
        emotives: &[Emotives],
        metadata: &PatternMetadata,
        has_metadata: bool,
        persistence: usize,
    ) -> u32 {
        let id = match self.by_name.get(&name) {
            Some(&id) => {
                let rec = &mut self.patterns[id as usize];
                rec.frequency += 1;
                if !emotives.is_empty() || has_metadata {
                    let mut merged = std::mem::take(&mut rec.emotives);
                    merged.extend(emotives.iter().cloned());
                    rec.emotives = keep_last(merged, persistence);
                    rec.metadata = merge_metadata(&rec.metadata, metadata);
                }
                id
            }
            None => self.add_pattern(
                name,
                events,
                1,
                keep_last(emotives.to_vec(), persistence),
                metadata.clone(),
            ),
        };
        self.count_learns(id, 1);
        id
    }

    /// Adds a new pattern: its body to the token arena (cut by its event lengths), its record,
    /// its name and its entries in the candidate index; returns its id. The one way a pattern
    /// enters a node, from a learn or from the store. Its symbol statistics follow from
    /// [`NodeState::count_learns`].
    pub(super) fn add_pattern(
        &mut self,
        name: [u8; 20],
        events: &[Vec<String>],
        frequency: u64,
        emotives: Vec<Emotives>,
        metadata: PatternMetadata,
    ) -> u32 {
        let id = self.patterns.len() as u32;
        let tok_start = self.tokens.len() as u32;
        let ev_start = self.event_lens.len() as u32;
        for event in events {
            for symbol in event {
                let symbol = self.symbols.intern(symbol);
                self.tokens.push(symbol);
            }
            self.event_lens.push(event.len() as u32);
        }
        let tok_len = self.tokens.len() as u32 - tok_start;
        self.patterns.push(PatternRec {
            name,
            tok_start,
            tok_len,
            ev_start,
            ev_len: events.len() as u32,
            frequency,
            emotives,
            metadata,
        });
        self.by_name.insert(name, id);
        self.index_pattern(id);
        self.total_unique_patterns += 1;
        id
    }

    /// Counts `learns` learns of pattern `id` in the symbol statistics (`symbols:freq`, KATO's
    /// `TS` and the total of symbols in patterns), as KATO's Redis writer does at each learn.
    pub(super) fn count_learns(&mut self, id: u32, learns: u64) {
        let rec = &self.patterns[id as usize];
        let (start, len) = (rec.tok_start as usize, rec.tok_len as usize);
        for i in start..start + len {
            let symbol = self.tokens[i] as usize;
            if self.symbol_freq[symbol] == 0 {
                self.distinct_symbols += 1;
            }
            self.symbol_freq[symbol] += learns;
        }
        self.total_symbols_in_patterns += learns * len as u64;
    }

    /// Adds a pattern to the candidate index and the per-pattern symbol counts.
    fn index_pattern(&mut self, id: u32) {
        let symbols_len = self.symbols.len();
        if self.postings.len() < symbols_len {
            self.postings.resize(symbols_len, Vec::new());
            self.symbol_freq.resize(symbols_len, 0);
            self.symbol_pmf.resize(symbols_len, 0);
        }
        let mut distinct: Vec<u32> = self.body(id).to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for &symbol in &distinct {
            self.postings[symbol as usize].push(id);
            self.symbol_pmf[symbol as usize] += 1;
        }
        if let Some(&first) = self.body(id).first() {
            self.first_token.entry(first).or_default().push(id);
        }
    }

    /// Adds the averaged emotives to the affinity of every distinct symbol of the pattern
    /// (`HINCRBYFLOAT`); returns the symbols touched.
    pub fn add_affinity(&mut self, id: u32, average: &Emotives) -> Vec<u32> {
        let mut distinct: Vec<u32> = self.body(id).to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        for &symbol in &distinct {
            let entry = self.affinity.entry(symbol).or_default();
            for (emotive, value) in average {
                match entry.iter_mut().find(|(k, _)| k == emotive) {
                    Some((_, stored)) => *stored = hincrbyfloat(Some(stored), *value),
                    None => entry.push((emotive.clone(), hincrbyfloat(None, *value))),
                }
            }
        }
        distinct
    }
}

impl NodeState {
    /// Computes the finalize-training figures of every pattern; returns how many.
    pub fn finalize(&mut self) -> usize {
        let ts = self.distinct_symbols as f64;
        let tu = self.total_unique_patterns;
        let probability = |state: &NodeState, s: u32| {
            if tu > 0 {
                state.symbol_pmf[s as usize] as f64 / tu as f64
            } else {
                0.0
            }
        };
        let mut finalized = HashMap::with_capacity(self.patterns.len());
        for id in 0..self.patterns.len() as u32 {
            let body = self.body(id);
            let length = body.len();
            if length == 0 {
                continue;
            }
            let mut counts: Vec<(u32, usize)> = Vec::new();
            for &s in body {
                match counts.iter_mut().find(|(k, _)| *k == s) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((s, 1)),
                }
            }
            let mut entropy = 0.0;
            for &(_, count) in &counts {
                let p = count as f64 / length as f64;
                entropy -= p * p.log2();
            }
            let mut normalized_entropy = 0.0;
            let mut global_normalized_entropy = 0.0;
            if ts > 1.0 {
                for &(_, count) in &counts {
                    let p = count as f64 / length as f64;
                    normalized_entropy -= p * (p.ln() / ts.ln());
                }
                for &(s, _) in &counts {
                    let prob = probability(self, s);
                    if prob > 0.0 {
                        global_normalized_entropy -= prob * (prob.ln() / ts.ln());
                    }
                }
            }
            let tf = counts
                .iter()
                .map(|&(s, count)| (s, count as f64 / length as f64))
                .collect();
            finalized.insert(
                id,
                Finalized {
                    entropy,
                    normalized_entropy,
                    global_normalized_entropy,
                    tf,
                },
            );
        }
        let count = finalized.len();
        self.finalized = finalized;
        count
    }
}

fn keep_last<T>(mut items: Vec<T>, n: usize) -> Vec<T> {
    if items.len() > n {
        items.drain(..items.len() - n);
    }
    items
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 15)] as char);
    }
    out
}
