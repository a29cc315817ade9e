//! The full prediction path: candidates, per-pattern matching, KATO's `Prediction` fields,
//! affinity weighting and pruning; the ensemble metrics follow in `ensemble.rs`, the shared types are in `draft.rs`.

use rustc_hash::FxHashMap as HashMap;
use std::ops::Range;

use super::answer::FullAnswer;
use super::draft::{Draft, State, event_range, extras, flat_range};
use super::ensemble;
use super::prediction::{Anomaly, FuturePotential, Metrics, Prediction};
use crate::config::PredictConfig;
use crate::matching::{BlockScratch, StateIndex, fuzz_ratio};
use crate::node::{NodeState, parse_redis_float};

/// KATO keeps `3 * max_predictions` candidates for the ensemble metrics when there are more.
const PRUNING_FACTOR: usize = 3;
/// Added to every affinity weight.
const WEIGHT_EPSILON: f64 = 0.01;

/// The full path with owned results, on a node state the caller has locked.
pub(crate) fn predict_on(
    st: &NodeState,
    stm: &[Vec<String>],
    config: &PredictConfig,
) -> (Vec<Prediction>, Vec<FuturePotential>) {
    let answer = answer_on(st, stm, config);
    (answer.to_predictions(), answer.future_potentials().to_vec())
}

/// The full path on a node state the caller has locked.
pub(crate) fn answer_on<'a>(
    st: &'a NodeState,
    stm: &'a [Vec<String>],
    config: &PredictConfig,
) -> FullAnswer<'a> {
    let state = State::new(st, stm);
    let weights = affinity_weights(st, &state, config);
    let mut drafts = match_candidates(st, &state, config, weights.as_ref());
    if drafts.is_empty() {
        return FullAnswer::empty(st, state);
    }
    if let Some(weights) = &weights {
        for draft in &mut drafts {
            weigh(st, &state, draft, weights);
        }
    }
    ensemble::finish(st, state, drafts, weights.is_some(), config)
}

/// KATO's affinity weights of the state symbols: `|affinity| / frequency + 0.01`, or 0.01
/// when either is zero. `None` without an affinity emotive.
fn affinity_weights(
    st: &NodeState,
    state: &State<'_>,
    config: &PredictConfig,
) -> Option<HashMap<u32, f64>> {
    let emotive = config
        .affinity_emotive
        .as_deref()
        .filter(|e| !e.is_empty())?;
    let mut weights = HashMap::default();
    for &id in &state.ids {
        weights
            .entry(id)
            .or_insert_with(|| symbol_weight(st, id, emotive));
    }
    (!weights.is_empty()).then_some(weights)
}

pub(super) fn symbol_weight(st: &NodeState, id: u32, emotive: &str) -> f64 {
    let affinity = st
        .affinity
        .get(&id)
        .and_then(|values| values.iter().find(|(k, _)| k == emotive))
        .map_or(0.0, |(_, v)| parse_redis_float(v).abs());
    let frequency = st.symbol_freq.get(id as usize).copied().unwrap_or(0);
    if frequency > 0 && affinity > 0.0 {
        affinity / frequency as f64 + WEIGHT_EPSILON
    } else {
        WEIGHT_EPSILON
    }
}

fn weight_sum(weights: &HashMap<u32, f64>, symbols: impl IntoIterator<Item = u32>) -> f64 {
    symbols
        .into_iter()
        .fold(0.0, |acc, s| acc + weights.get(&s).copied().unwrap_or(0.0))
}

/// The figures of one candidate, computed for every pattern that passes the threshold; the
/// draft is built only for the ones that survive pruning.
#[derive(Clone, Debug)]
struct Score {
    id: u32,
    /// Similarity, evidence, confidence, SNR and fragmentation.
    metrics: Metrics,
    past: Range<usize>,
    present: Range<usize>,
    future: Range<usize>,
    /// Its matching blocks in the candidates' shared block list.
    blocks: Range<usize>,
}

/// Candidates (patterns sharing a symbol with the state; every pattern at threshold 0),
/// scored, ordered as KATO's ensemble (similarity descending, then name), pruned to
/// `3 * max_predictions` by `_pre_potential`, and turned into drafts.
fn match_candidates(
    st: &NodeState,
    state: &State<'_>,
    config: &PredictConfig,
    weights: Option<&HashMap<u32, f64>>,
) -> Vec<Draft> {
    let threshold = config.recall_threshold;
    let index = StateIndex::new(&state.ids);
    let candidates = candidates(st, state, threshold);
    let state_text = (!config.use_token_matching).then(|| state.strings.join(" "));
    let fuzzy = config.fuzzy_token_threshold > 0.0;
    let mut scratch = BlockScratch::default();
    let mut blocks = Vec::new();
    let mut present_blocks = Vec::new();
    let mut scores: Vec<Score> = Vec::new();
    let mut all_blocks = Vec::new();
    let mut drafts: Vec<Draft> = Vec::new();
    for id in candidates {
        let body = st.body(id);
        let similarity = match &state_text {
            None => {
                let lcs = index.lcs(body);
                let total = body.len() + state.ids.len();
                if total == 0 {
                    0.0
                } else {
                    (2.0 * lcs as f64 / total as f64) * 100.0 / 100.0
                }
            }
            Some(state_text) => {
                let pattern_text: Vec<&str> = body.iter().map(|&s| st.symbols.name(s)).collect();
                fuzz_ratio(state_text, &pattern_text.join(" ")) / 100.0
            }
        };
        if similarity < threshold {
            continue;
        }
        if fuzzy {
            // Fuzzy matching is a rarely used compatibility mode: build every draft.
            if let Some(draft) = extract_fuzzy(st, state, &index, id, similarity, config, weights) {
                drafts.push(draft);
            }
            continue;
        }
        index.blocks(body, &mut blocks, &mut scratch);
        if let Some(score) = score(
            st,
            state,
            &index,
            id,
            similarity,
            threshold,
            &blocks,
            &mut scratch,
            &mut present_blocks,
        ) {
            let start = all_blocks.len();
            all_blocks.extend_from_slice(&blocks);
            scores.push(Score {
                blocks: start..all_blocks.len(),
                ..score
            });
        }
    }
    if fuzzy {
        return order_and_prune(drafts, config);
    }
    scores.sort_by(|a, b| {
        b.metrics
            .similarity
            .total_cmp(&a.metrics.similarity)
            .then_with(|| {
                st.patterns[a.id as usize]
                    .name
                    .cmp(&st.patterns[b.id as usize].name)
            })
    });
    let limit = config.max_predictions * PRUNING_FACTOR;
    let pruned = scores.len() > limit;
    if pruned {
        // heapq.nlargest: a stable descending order, truncated.
        scores.sort_by(|a, b| pre_potential(&b.metrics).total_cmp(&pre_potential(&a.metrics)));
        scores.truncate(limit);
    }
    scores
        .into_iter()
        .map(|score| {
            let body = st.body(score.id);
            let matches: Vec<u32> = all_blocks[score.blocks.clone()]
                .iter()
                .flat_map(|b| state.ids[b.b..b.b + b.size].iter().copied())
                .collect();
            let metrics = Metrics {
                weighted_similarity: weights
                    .and_then(|w| weighted_similarity(w, &matches, state, body)),
                pre_potential: pruned.then(|| pre_potential(&score.metrics)),
                ..score.metrics
            };
            Draft {
                id: score.id,
                frequency: st.patterns[score.id as usize].frequency.max(1),
                matches,
                anomalies: Vec::new(),
                past: score.past,
                present: score.present,
                future: score.future,
                metrics,
            }
        })
        .collect()
}

/// `2 * w(matches) / (w(state) + w(pattern))`, `None` when the total weight is zero.
fn weighted_similarity(
    weights: &HashMap<u32, f64>,
    matches: &[u32],
    state: &State<'_>,
    body: &[u32],
) -> Option<f64> {
    let matched = weight_sum(weights, matches.iter().copied());
    let total =
        weight_sum(weights, state.ids.iter().copied()) + weight_sum(weights, body.iter().copied());
    (total > 0.0).then(|| 2.0 * matched / total)
}

/// KATO's `_pre_potential`: `(evidence + confidence) * snr + 1 / (fragmentation + 1)`.
fn pre_potential(m: &Metrics) -> f64 {
    let fragmentation = if m.fragmentation == -1.0 {
        0.0
    } else {
        1.0 / (m.fragmentation + 1.0)
    };
    (m.evidence + m.confidence) * m.snr + fragmentation
}

/// The fuzzy path's ordering and pruning, on complete drafts.
fn order_and_prune(mut drafts: Vec<Draft>, config: &PredictConfig) -> Vec<Draft> {
    drafts.sort_by(|a, b| b.metrics.similarity.total_cmp(&a.metrics.similarity));
    let limit = config.max_predictions * PRUNING_FACTOR;
    if drafts.len() > limit {
        for draft in &mut drafts {
            draft.metrics.pre_potential = Some(pre_potential(&draft.metrics));
        }
        drafts.sort_by(|a, b| {
            b.metrics
                .pre_potential
                .unwrap_or(0.0)
                .total_cmp(&a.metrics.pre_potential.unwrap_or(0.0))
        });
        drafts.truncate(limit);
    }
    drafts
}

/// Patterns sharing at least one symbol with the state, in id order (all patterns at
/// threshold 0: a pattern sharing nothing has similarity 0, below any positive threshold,
/// and in character mode KATO drops patterns without a common symbol too).
fn candidates(st: &NodeState, state: &State<'_>, threshold: f64) -> Vec<u32> {
    if threshold <= 0.0 {
        return (0..st.patterns.len() as u32).collect();
    }
    let mut symbols = state.ids.clone();
    symbols.sort_unstable();
    symbols.dedup();
    let mut out: Vec<u32> = Vec::new();
    for symbol in symbols {
        if let Some(postings) = st.postings.get(symbol as usize) {
            out.extend_from_slice(postings);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The regions of a match on the flat pattern: the length of `past` and the `present` range.
fn flat_regions(blocks: &[crate::matching::Block], body_len: usize) -> (usize, Range<usize>) {
    match blocks.len() {
        0 => (0, 0..body_len),
        1 => (blocks[0].a, blocks[0].a..blocks[0].a + blocks[0].size),
        _ => {
            let first = blocks[0];
            let last = blocks[blocks.len() - 1];
            let end = last.a + last.size;
            (
                first.a,
                if end > first.a {
                    first.a..end
                } else {
                    first.a..body_len
                },
            )
        }
    }
}

/// `Prediction.__init__`'s re-mapping of the flat regions onto whole events, with its move of
/// the last past event into the present when it holds the first match. Returns the event
/// ranges of past, present and future.
fn event_regions(
    body: &[u32],
    event_lens: &[u32],
    past_len: usize,
    present_len: usize,
    first_match: Option<u32>,
) -> (Range<usize>, Range<usize>, Range<usize>) {
    let mut covered = 0usize;
    let mut event = 0usize;
    while covered < past_len {
        covered += event_lens[event] as usize;
        event += 1;
    }
    let present_start = event;
    while covered < past_len + present_len {
        covered += event_lens[event] as usize;
        event += 1;
    }
    let mut past = 0..present_start;
    let mut present = present_start..event;
    let future = event..event_lens.len();
    if !past.is_empty() {
        if let Some(first_match) = first_match {
            if body[event_range(event_lens, past.end - 1)].contains(&first_match) {
                present = past.end - 1..present.end;
                past = past.start..past.end - 1;
            }
        }
    }
    (past, present, future)
}

/// Phase one for one candidate, allocation-free: evidence, confidence, SNR and
/// fragmentation from its matching blocks (`None` when nothing matches above threshold 0).
#[allow(clippy::too_many_arguments)]
fn score(
    st: &NodeState,
    state: &State<'_>,
    index: &StateIndex,
    id: u32,
    similarity: f64,
    threshold: f64,
    blocks: &[crate::matching::Block],
    scratch: &mut BlockScratch,
    present_blocks: &mut Vec<crate::matching::Block>,
) -> Option<Score> {
    if blocks.is_empty() && threshold > 0.0 {
        return None;
    }
    let body = st.body(id);
    let event_lens = st.event_lens_of(id);
    let matched: usize = blocks.iter().map(|b| b.size).sum();
    let (past_len, present_range) = flat_regions(blocks, body.len());
    index.blocks(&body[present_range.clone()], present_blocks, scratch);
    let extras = state.ids.len() - present_blocks.iter().map(|b| b.size).sum::<usize>();
    let first_match = blocks.first().map(|b| state.ids[b.b]);
    let (past, present, future) =
        event_regions(body, event_lens, past_len, present_range.len(), first_match);
    let present_symbols = flat_range(event_lens, &present).len();
    let (m, x) = (matched as f64, extras as f64);
    let denominator = 2.0 * m + x;
    let metrics = Metrics {
        similarity,
        evidence: if body.is_empty() {
            0.0
        } else {
            m / body.len() as f64
        },
        confidence: if present_symbols == 0 {
            0.0
        } else {
            m / present_symbols as f64
        },
        snr: if denominator > 0.0 {
            (2.0 * m - x) / denominator
        } else {
            0.0
        },
        fragmentation: blocks.len() as f64 - 1.0,
        ..Metrics::default()
    };
    Some(Score {
        id,
        metrics,
        past,
        present,
        future,
        blocks: 0..0,
    })
}

/// KATO's `extract_prediction_info` and `Prediction.__init__` for one pattern, with fuzzy
/// token matching (the exact path builds its drafts from the candidates' scores).
fn extract_fuzzy(
    st: &NodeState,
    state: &State<'_>,
    index: &StateIndex,
    id: u32,
    similarity: f64,
    config: &PredictConfig,
    weights: Option<&HashMap<u32, f64>>,
) -> Option<Draft> {
    let body = st.body(id);
    let mut found = Vec::new();
    let mut scratch = BlockScratch::default();
    index.blocks(body, &mut found, &mut scratch);
    let n_blocks = found.len();
    if n_blocks == 0 && config.recall_threshold > 0.0 {
        return None;
    }
    let mut anomalies = Vec::new();
    let (matches, fuzzy_matched) = fuzzy_matches(
        st,
        state,
        body,
        config.fuzzy_token_threshold,
        &mut anomalies,
    );
    let (past_len, present_range) = flat_regions(&found, body.len());
    // Flat extras count X for the SNR.
    let extras_flat = state
        .strings
        .iter()
        .filter(|s| !fuzzy_matched.contains(s))
        .count();
    let weighted_similarity = weights.and_then(|w| weighted_similarity(w, &matches, state, body));
    let rec = &st.patterns[id as usize];
    let length = rec.tok_len as usize;
    let event_lens = st.event_lens_of(id);
    let m = matches.len() as f64;
    let x = extras_flat as f64;
    let denominator = 2.0 * m + x;
    let snr = if denominator > 0.0 {
        (2.0 * m - x) / denominator
    } else {
        0.0
    };
    let (past, present, future) = event_regions(
        body,
        event_lens,
        past_len,
        present_range.len(),
        matches.first().copied(),
    );
    let present_symbols = flat_range(event_lens, &present).len();
    let confidence = if present_symbols == 0 {
        0.0
    } else {
        m / present_symbols as f64
    };
    let evidence = if length > 0 { m / length as f64 } else { 0.0 };
    Some(Draft {
        id,
        frequency: rec.frequency.max(1),
        matches,
        anomalies,
        past,
        present,
        future,
        metrics: Metrics {
            similarity,
            fragmentation: n_blocks as f64 - 1.0,
            evidence,
            confidence,
            snr,
            weighted_similarity,
            ..Metrics::default()
        },
    })
}

/// Fuzzy token matching: for each state token, the first pattern token with the best
/// `fuzz.ratio` at or above the threshold. Returns the matched state tokens (every
/// occurrence) and the distinct matched state strings.
fn fuzzy_matches<'s>(
    st: &NodeState,
    state: &'s State<'_>,
    body: &[u32],
    threshold: f64,
    anomalies: &mut Vec<Anomaly>,
) -> (Vec<u32>, Vec<&'s str>) {
    let cutoff = threshold * 100.0;
    let mut matches = Vec::new();
    let mut matched_strings: Vec<&str> = Vec::new();
    for (i, &token) in state.strings.iter().enumerate() {
        let mut best: Option<(u32, f64)> = None;
        for &candidate in body {
            let score = if candidate == state.ids[i] {
                100.0
            } else {
                fuzz_ratio(token, st.symbols.name(candidate))
            };
            if score >= cutoff && best.is_none_or(|(_, b)| score > b) {
                best = Some((candidate, score));
            }
        }
        if let Some((expected, score)) = best {
            matches.push(state.ids[i]);
            if !matched_strings.contains(&token) {
                matched_strings.push(token);
            }
            if expected != state.ids[i] {
                anomalies.push(Anomaly {
                    observed: token.to_owned(),
                    expected: st.symbols.name(expected).to_owned(),
                    similarity: score / 100.0,
                });
            }
        }
    }
    (matches, matched_strings)
}

/// The weighted evidence, confidence and SNR of a draft (KATO's processor step).
fn weigh(st: &NodeState, state: &State<'_>, draft: &mut Draft, weights: &HashMap<u32, f64>) {
    let body = st.body(draft.id);
    let present_symbols = &body[flat_range(st.event_lens_of(draft.id), &draft.present)];
    let matched = weight_sum(weights, draft.matches.iter().copied());
    let pattern = weight_sum(weights, body.iter().copied());
    let present = weight_sum(weights, present_symbols.iter().copied());
    let extras = weight_sum(weights, extras(st, state, draft).flatten());
    draft.metrics.weighted_evidence = Some(if pattern > 0.0 {
        matched / pattern
    } else {
        0.0
    });
    draft.metrics.weighted_confidence = Some(if present > 0.0 {
        matched / present
    } else {
        0.0
    });
    draft.metrics.weighted_snr = Some(if matched + extras > 0.0 {
        matched / (matched + extras)
    } else {
        0.0
    });
}
