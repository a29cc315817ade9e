//! The full prediction path: candidates, per-pattern matching, KATO's `Prediction` fields,
//! affinity weighting and pruning; the ensemble metrics follow in `ensemble.rs`.

use std::collections::HashMap;
use std::ops::Range;

use super::{Anomaly, FuturePotential, Prediction};
use crate::config::PredictConfig;
use crate::matching::{LcsMasks, MatchingBlocks, fuzz_ratio};
use crate::node::{Node, NodeState, parse_redis_float};

/// KATO keeps `3 * max_predictions` candidates for the ensemble metrics when there are more.
const PRUNING_FACTOR: usize = 3;
/// Added to every affinity weight.
const WEIGHT_EPSILON: f64 = 0.01;

/// One kept pattern on its way to a prediction, on symbol ids.
#[derive(Clone, Debug)]
pub(super) struct Draft {
    pub id: u32,
    pub frequency: u64,
    pub similarity: f64,
    pub fragmentation: f64,
    pub evidence: f64,
    pub confidence: f64,
    pub snr: f64,
    /// The matched state symbols (`matches`), as state symbol ids.
    pub matches: Vec<u32>,
    pub anomalies: Vec<Anomaly>,
    pub past: Range<usize>,
    pub present: Range<usize>,
    pub future: Range<usize>,
    /// For each present event, its symbols not among the matches.
    pub missing: Vec<Vec<u32>>,
    /// For each STM event, its symbols not in the present.
    pub extras: Vec<Vec<u32>>,
    pub weighted_similarity: Option<f64>,
    pub weighted_evidence: Option<f64>,
    pub weighted_confidence: Option<f64>,
    pub weighted_snr: Option<f64>,
    pub pre_potential: Option<f64>,
}

/// The state as the node sees it: symbol ids, with symbols the node never learned mapped to
/// ids no pattern contains (distinct strings get distinct ids).
pub(super) struct State<'a> {
    pub strings: Vec<&'a str>,
    pub ids: Vec<u32>,
    /// Each STM event as state ids.
    pub events: Vec<Vec<u32>>,
    unknown: HashMap<&'a str, u32>,
}

impl<'a> State<'a> {
    fn new(node: &NodeState, stm: &'a [Vec<String>]) -> State<'a> {
        let mut unknown: HashMap<&'a str, u32> = HashMap::new();
        let mut id_of = |symbol: &'a str| {
            node.symbols.get(symbol).unwrap_or_else(|| {
                let next = u32::MAX - unknown.len() as u32;
                *unknown.entry(symbol).or_insert(next)
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

    /// The string of a state or pattern symbol id.
    pub fn name<'s>(&'s self, node: &'s NodeState, id: u32) -> &'s str {
        if (id as usize) < node.symbols.len() {
            node.symbols.name(id)
        } else {
            self.unknown
                .iter()
                .find(|(_, v)| **v == id)
                .map_or("", |(k, _)| k)
        }
    }
}

pub(super) fn predict(
    node: &Node,
    stm: &[Vec<String>],
    _state: &[&str],
    config: &PredictConfig,
) -> (Vec<Prediction>, Vec<FuturePotential>) {
    let guard = node.read();
    let st: &NodeState = &guard;
    let state = State::new(st, stm);
    let weights = affinity_weights(st, &state, config);
    let mut drafts = match_candidates(st, &state, config, weights.as_ref());
    if drafts.is_empty() {
        return (Vec::new(), Vec::new());
    }
    // KATO's ensemble is in RapidFuzz's result order: similarity descending (its ties follow
    // Python set order; here, name order). Summation orders and the conditional-probability
    // cache below depend on it.
    drafts.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    if let Some(weights) = &weights {
        for draft in &mut drafts {
            weigh(st, &state, draft, weights);
        }
    }
    let limit = config.max_predictions * PRUNING_FACTOR;
    if drafts.len() > limit {
        for draft in &mut drafts {
            let fragmentation = if draft.fragmentation == -1.0 {
                0.0
            } else {
                1.0 / (draft.fragmentation + 1.0)
            };
            draft.pre_potential =
                Some((draft.evidence + draft.confidence) * draft.snr + fragmentation);
        }
        // heapq.nlargest: a stable descending order, truncated.
        drafts.sort_by(|a, b| {
            b.pre_potential
                .unwrap_or(0.0)
                .total_cmp(&a.pre_potential.unwrap_or(0.0))
        });
        drafts.truncate(limit);
    }
    super::ensemble::finish(st, &state, drafts, weights.is_some(), config)
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
    let mut weights = HashMap::new();
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

/// Candidates (patterns sharing a symbol with the state; every pattern at threshold 0), in
/// name order, matched and turned into drafts.
fn match_candidates(
    st: &NodeState,
    state: &State<'_>,
    config: &PredictConfig,
    weights: Option<&HashMap<u32, f64>>,
) -> Vec<Draft> {
    let threshold = config.recall_threshold;
    let mut candidates: Vec<u32> = if threshold > 0.0 {
        let mut seen = vec![false; st.patterns.len()];
        let mut out = Vec::new();
        let mut symbols = state.ids.clone();
        symbols.sort_unstable();
        symbols.dedup();
        for symbol in symbols {
            if let Some(postings) = st.postings.get(symbol as usize) {
                for &id in postings {
                    if !seen[id as usize] {
                        seen[id as usize] = true;
                        out.push(id);
                    }
                }
            }
        }
        out
    } else {
        (0..st.patterns.len() as u32).collect()
    };
    candidates.sort_unstable_by(|a, b| {
        st.patterns[*a as usize]
            .name
            .cmp(&st.patterns[*b as usize].name)
    });

    let masks = LcsMasks::new(&state.ids);
    let blocks = MatchingBlocks::new(&state.ids);
    let state_text = (!config.use_token_matching).then(|| state.strings.join(" "));
    let mut drafts = Vec::new();
    for id in candidates {
        let body = st.body(id);
        let similarity = match &state_text {
            None => {
                let lcs = masks.lcs(body);
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
        if let Some(draft) = extract(st, state, &blocks, id, similarity, config, weights) {
            drafts.push(draft);
        }
    }
    drafts
}

/// KATO's `extract_prediction_info` and `Prediction.__init__` for one pattern.
fn extract(
    st: &NodeState,
    state: &State<'_>,
    blocks: &MatchingBlocks,
    id: u32,
    similarity: f64,
    config: &PredictConfig,
    weights: Option<&HashMap<u32, f64>>,
) -> Option<Draft> {
    let body = st.body(id);
    let found = blocks.blocks(body);
    let n_blocks = found.len();
    let mut anomalies = Vec::new();
    let fuzzy = config.fuzzy_token_threshold > 0.0;
    let (matches, fuzzy_matched) = if fuzzy {
        fuzzy_matches(
            st,
            state,
            body,
            config.fuzzy_token_threshold,
            &mut anomalies,
        )
    } else {
        let matches: Vec<u32> = found
            .iter()
            .flat_map(|b| state.ids[b.b..b.b + b.size].iter().copied())
            .collect();
        (matches, Vec::new())
    };
    let (past_len, present_range) = match found.len() {
        0 => {
            if config.recall_threshold > 0.0 {
                return None;
            }
            (0, 0..body.len())
        }
        1 => (found[0].a, found[0].a..found[0].a + found[0].size),
        _ => {
            let first = found[0];
            let last = found[found.len() - 1];
            let end = last.a + last.size;
            (
                first.a,
                if end > first.a {
                    first.a..end
                } else {
                    first.a..body.len()
                },
            )
        }
    };
    // Flat extras count X for the SNR.
    let extras_flat = if fuzzy {
        state
            .strings
            .iter()
            .filter(|s| !fuzzy_matched.contains(s))
            .count()
    } else {
        let present = &body[present_range.clone()];
        let matched: usize = blocks.blocks(present).iter().map(|b| b.size).sum();
        state.ids.len() - matched
    };
    let weighted_similarity = weights.and_then(|w| {
        let matched = weight_sum(w, matches.iter().copied());
        let total = weight_sum(w, state.ids.iter().copied()) + weight_sum(w, body.iter().copied());
        (total > 0.0).then(|| 2.0 * matched / total)
    });

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

    // Re-map the flat regions onto whole events.
    let mut covered = 0usize;
    let mut event = 0usize;
    while covered < past_len {
        covered += event_lens[event] as usize;
        event += 1;
    }
    let present_start = event;
    let target = past_len + present_range.len();
    while covered < target {
        covered += event_lens[event] as usize;
        event += 1;
    }
    let mut past = 0..present_start;
    let mut present = present_start..event;
    let future = event..event_lens.len();
    if !past.is_empty() {
        if let Some(&first_match) = matches.first() {
            let last_past = event_range(event_lens, past.end - 1);
            if body[last_past].contains(&first_match) {
                present = past.end - 1..present.end;
                past = past.start..past.end - 1;
            }
        }
    }
    let present_flat = if present.is_empty() {
        0..0
    } else {
        event_range(event_lens, present.start).start..event_range(event_lens, present.end - 1).end
    };
    let present_symbols = &body[present_flat.clone()];
    let missing: Vec<Vec<u32>> = (present.clone())
        .map(|e| {
            body[event_range(event_lens, e)]
                .iter()
                .copied()
                .filter(|s| !matches.contains(s))
                .collect()
        })
        .collect();
    let extras: Vec<Vec<u32>> = state
        .events
        .iter()
        .map(|ev| {
            ev.iter()
                .copied()
                .filter(|s| !present_symbols.contains(s))
                .collect()
        })
        .collect();
    let confidence = if present_symbols.is_empty() {
        0.0
    } else {
        m / present_symbols.len() as f64
    };
    let evidence = if length > 0 { m / length as f64 } else { 0.0 };
    Some(Draft {
        id,
        frequency: rec.frequency.max(1),
        similarity,
        fragmentation: n_blocks as f64 - 1.0,
        evidence,
        confidence,
        snr,
        matches,
        anomalies,
        past,
        present,
        future,
        missing,
        extras,
        weighted_similarity,
        weighted_evidence: None,
        weighted_confidence: None,
        weighted_snr: None,
        pre_potential: None,
    })
}

/// Flat range of event `e` of a pattern.
pub(super) fn event_range(event_lens: &[u32], e: usize) -> Range<usize> {
    let start: usize = event_lens[..e].iter().map(|&l| l as usize).sum();
    start..start + event_lens[e] as usize
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
    let event_lens = st.event_lens_of(draft.id);
    let present_symbols: Vec<u32> = draft
        .present
        .clone()
        .flat_map(|e| body[event_range(event_lens, e)].iter().copied())
        .collect();
    let matched = weight_sum(weights, draft.matches.iter().copied());
    let pattern = weight_sum(weights, body.iter().copied());
    let present = weight_sum(weights, present_symbols.iter().copied());
    let extras = weight_sum(weights, draft.extras.iter().flatten().copied());
    let _ = state;
    draft.weighted_evidence = Some(if pattern > 0.0 {
        matched / pattern
    } else {
        0.0
    });
    draft.weighted_confidence = Some(if present > 0.0 {
        matched / present
    } else {
        0.0
    });
    draft.weighted_snr = Some(if matched + extras > 0.0 {
        matched / (matched + extras)
    } else {
        0.0
    });
}
