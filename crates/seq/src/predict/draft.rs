//! What the stages of the full path share (matching in `full.rs`, metrics in `ensemble.rs`,
//! reading in `answer.rs`): the state on symbol ids, a kept pattern's draft with its figures,
//! the names of symbol ids, and the event arithmetic of a pattern's body. It imports none of
//! those stages.

use std::ops::Range;

use rustc_hash::FxHashMap;

use super::prediction::{Anomaly, Metrics};
use crate::node::{Interner, NodeState};
use crate::types::Symbol;

/// The names of symbol ids: the node's symbols, then the state's symbols the node never
/// learned (ids counted down from `u32::MAX`).
#[derive(Clone, Copy)]
pub struct Names<'a> {
    symbols: &'a Interner,
    unknown: &'a [&'a str],
}

impl<'a> Names<'a> {
    fn new(symbols: &'a Interner, unknown: &'a [&'a str]) -> Names<'a> {
        Names { symbols, unknown }
    }

    /// The shared string of a symbol (a new one for a symbol the node does not know).
    pub(super) fn symbol(&self, id: u32) -> Symbol {
        if (id as usize) < self.symbols.len() {
            self.symbols.symbol(id)
        } else {
            Symbol::from(self.get(id))
        }
    }

    pub fn get(&self, id: u32) -> &'a str {
        if (id as usize) < self.symbols.len() {
            self.symbols.name(id)
        } else {
            self.unknown
                .get((u32::MAX - id) as usize)
                .copied()
                .unwrap_or("")
        }
    }
}

/// One kept pattern on its way to a prediction, on symbol ids.
#[derive(Clone, Debug)]
pub(super) struct Draft {
    pub id: u32,
    pub frequency: u64,
    /// The matched state symbols (`matches`), as state symbol ids.
    pub matches: Vec<u32>,
    pub anomalies: Vec<Anomaly>,
    /// Event ranges of the pattern. `missing` (for each present event, its symbols not among
    /// the matches) and `extras` (for each STM event, its symbols not in the present) follow
    /// from these and are read as they are needed.
    pub past: Range<usize>,
    pub present: Range<usize>,
    pub future: Range<usize>,
    /// Its figures: those of the match here, the ensemble's filled in by `ensemble::finish`.
    pub metrics: Metrics,
}

/// The state as the node sees it: symbol ids, with symbols the node never learned mapped to
/// ids no pattern contains (distinct strings get distinct ids, counted down from `u32::MAX`).
pub(super) struct State<'a> {
    pub strings: Vec<&'a str>,
    pub ids: Vec<u32>,
    /// Each STM event as state ids.
    pub events: Vec<Vec<u32>>,
    /// The strings of the symbols the node does not know: id `u32::MAX - i` is `unknown[i]`.
    unknown: Vec<&'a str>,
}

impl<'a> State<'a> {
    pub(super) fn new(node: &NodeState, stm: &'a [Vec<String>]) -> State<'a> {
        let mut unknown: Vec<&'a str> = Vec::new();
        // Looked up by hash: a state of 100,000 new symbols would otherwise cost a search of
        // every earlier one each.
        let mut unknown_index: FxHashMap<&'a str, usize> = FxHashMap::default();
        let mut id_of = |symbol: &'a str| {
            node.symbols.get(symbol).unwrap_or_else(|| {
                let i = *unknown_index.entry(symbol).or_insert_with(|| {
                    unknown.push(symbol);
                    unknown.len() - 1
                });
                u32::MAX - i as u32
            })
        };
        let events: Vec<Vec<u32>> = stm
            .iter()
            .map(|event| event.iter().map(|s| id_of(s.as_str())).collect())
            .collect();
        let strings: Vec<&str> = stm.iter().flatten().map(String::as_str).collect();
        let ids: Vec<u32> = events.iter().flatten().copied().collect();
        State {
            strings,
            ids,
            events,
            unknown,
        }
    }

    /// The names of state and pattern symbol ids.
    pub fn names<'s>(&'s self, node: &'s NodeState) -> Names<'s> {
        Names::new(&node.symbols, &self.unknown)
    }
}

/// Flat range of the events `events` of a pattern.
pub(super) fn flat_range(event_lens: &[u32], events: &Range<usize>) -> Range<usize> {
    if events.is_empty() {
        0..0
    } else {
        event_range(event_lens, events.start).start..event_range(event_lens, events.end - 1).end
    }
}

/// For each present event of a draft, its symbols not among the matches (`missing`).
pub(super) fn missing<'a>(
    st: &'a NodeState,
    draft: &'a Draft,
) -> impl Iterator<Item = impl Iterator<Item = u32> + 'a> + 'a {
    let body = st.body(draft.id);
    let lens = st.event_lens_of(draft.id);
    draft.present.clone().map(move |e| {
        body[event_range(lens, e)]
            .iter()
            .copied()
            .filter(|s| !draft.matches.contains(s))
    })
}

/// For each STM event, its symbols not in a draft's present (`extras`).
pub(super) fn extras<'a>(
    st: &'a NodeState,
    state: &'a State<'_>,
    draft: &'a Draft,
) -> impl Iterator<Item = impl Iterator<Item = u32> + 'a> + 'a {
    let present = &st.body(draft.id)[flat_range(st.event_lens_of(draft.id), &draft.present)];
    state
        .events
        .iter()
        .map(move |event| event.iter().copied().filter(|s| !present.contains(s)))
}

/// Flat range of event `e` of a pattern.
pub(super) fn event_range(event_lens: &[u32], e: usize) -> Range<usize> {
    let start: usize = event_lens[..e].iter().map(|&l| l as usize).sum();
    start..start + event_lens[e] as usize
}
