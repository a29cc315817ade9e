//! The ensemble metrics of the full path (KATO's pattern processor): symbol probabilities,
//! itfdf similarity, confluence, the entropy family, tf-idf, predictive information with the
//! future potentials, the Bayesian fields, potential and ranking.
//!
//! Sums run in the order KATO runs them (noted at each), because several outputs are compared
//! bit for bit with KATO's; where KATO's own order is not deterministic (Python set order) the
//! order is the first occurrence.

use rustc_hash::FxHashMap as HashMap;

use super::answer::FullAnswer;
use super::blas::{Sparse, ddot, sparse_matvec, sparse_row_norm, sparse_self_dot};
use super::draft::{Draft, Names, State, event_range, flat_range, missing};
use super::prediction::FuturePotential;
use crate::config::{PredictConfig, RankKey};
use crate::node::NodeState;
use crate::types::Symbol;

pub(super) fn finish<'a>(
    st: &'a NodeState,
    state: State<'a>,
    mut drafts: Vec<Draft>,
    weighted: bool,
    config: &PredictConfig,
) -> FullAnswer<'a> {
    let tu = st.total_unique_patterns;
    let tpf = st.total_unique_patterns;
    let ts = st.distinct_symbols as f64;
    let known = |s: u32| (s as usize) < st.symbols.len() && st.symbol_freq[s as usize] > 0;
    let names = state.names(st);

    // P(s) = pmf / TU for every symbol matched or missing in the ensemble (0 if unknown),
    // with the terms of it that every prediction holding the symbol uses.
    let mut probability: HashMap<u32, Terms> = HashMap::default();
    for draft in &drafts {
        for s in (draft.matches.iter().copied()).chain(missing(st, draft).flatten()) {
            probability.entry(s).or_insert_with(|| {
                let p = if known(s) && tu > 0 {
                    st.symbol_pmf[s as usize] as f64 / tu as f64
                } else {
                    0.0
                };
                Terms::new(p, tu, ts)
            });
        }
    }
    let p_of = |s: u32| probability.get(&s).map_or(0.0, |t| t.p);
    let ensemble_frequency: u64 = drafts.iter().map(|d| d.frequency).sum();

    let presents: Vec<&[u32]> = drafts
        .iter()
        .map(|d| &st.body(d.id)[flat_range(st.event_lens_of(d.id), &d.present)])
        .collect();
    let ranks = NameRanks::new(presents.iter().copied().flatten().chain(&state.ids), names);
    let distances = itfdf_distances(&state, &ranks, &presents, &p_of);

    // KATO caches the conditional probability of a present under its *sorted* symbols, so a
    // later prediction whose present is a permutation of an earlier one reuses that value
    // (computed in the earlier order): reproduce that within the call.
    let mut conditional_cache: HashMap<Vec<u32>, f64> = HashMap::default();
    let mut counts = Vec::new();
    for (i, draft) in drafts.iter_mut().enumerate() {
        let present = presents[i];
        let itfdf_similarity = if ensemble_frequency > 0 {
            1.0 - (distances[i] * draft.frequency as f64 / ensemble_frequency as f64)
        } else {
            0.0
        };
        let p_e_h = if tpf > 0 {
            draft.frequency as f64 / tpf as f64
        } else {
            0.0
        };
        let confluence = if present.is_empty() {
            0.0
        } else {
            // The present's symbols sorted by name, as their ranks (a rank stands for one name).
            let mut sorted: Vec<u32> = present.iter().map(|s| ranks.rank[s]).collect();
            sorted.sort_unstable();
            let conditional = *conditional_cache
                .entry(sorted)
                .or_insert_with(|| conditional_probability(present, &probability));
            p_e_h * (1.0 - conditional)
        };
        first_occurrence_counts(present, &mut counts);
        let (entropy, normalized_entropy, global_normalized_entropy) =
            match st.finalized.get(&draft.id) {
                Some(stored) => (
                    stored.entropy,
                    stored.normalized_entropy,
                    stored.global_normalized_entropy,
                ),
                None => entropies(&counts, present.len(), ts, &probability),
            };
        let m = &mut draft.metrics;
        m.confluence = confluence;
        (m.entropy, m.normalized_entropy, m.global_normalized_entropy) =
            (entropy, normalized_entropy, global_normalized_entropy);
        m.itfdf_similarity = itfdf_similarity;
        m.tfidf_score = tfidf(st, draft.id, &counts, present.len(), tu, &probability);
    }

    let future_potentials = predictive_information(st, &mut drafts);
    bayesian(&mut drafts);
    for m in drafts.iter_mut().map(|d| &mut d.metrics) {
        let (e, c, s) = if weighted {
            (
                m.weighted_evidence.unwrap_or(m.evidence),
                m.weighted_confidence.unwrap_or(m.confidence),
                m.weighted_snr.unwrap_or(m.snr),
            )
        } else {
            (m.evidence, m.confidence, m.snr)
        };
        let fragmentation = if m.fragmentation == -1.0 {
            0.0
        } else {
            1.0 / (m.fragmentation + 1.0)
        };
        m.potential = (e + c) * s + m.itfdf_similarity + fragmentation;
    }
    // Names are distinct, so this order is total; raw names sort as their hex forms do.
    drafts.sort_unstable_by(|a, b| {
        rank_value(b, config.rank_by)
            .total_cmp(&rank_value(a, config.rank_by))
            .then_with(|| {
                let name = |draft: &Draft| &st.patterns[draft.id as usize].name;
                name(a).cmp(name(b))
            })
    });
    drafts.truncate(config.max_predictions);
    FullAnswer::new(st, state, drafts, future_potentials)
}

/// The place of each symbol of a call in the order of their names (distinct ids have distinct
/// names, so ranks are distinct too).
struct NameRanks {
    rank: HashMap<u32, u32>,
    len: usize,
}

impl NameRanks {
    fn new<'s>(symbols: impl Iterator<Item = &'s u32>, names: Names<'_>) -> NameRanks {
        let mut symbols: Vec<u32> = symbols.copied().collect();
        symbols.sort_unstable();
        symbols.dedup();
        // Names compare by their first eight bytes (zero-padded, big-endian: the same order)
        // before whole.
        let mut named: Vec<(u64, &str, u32)> = symbols
            .iter()
            .map(|&s| {
                let name = names.get(s);
                let mut prefix = [0u8; 8];
                let n = name.len().min(8);
                prefix[..n].copy_from_slice(&name.as_bytes()[..n]);
                (u64::from_be_bytes(prefix), name, s)
            })
            .collect();
        named.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        NameRanks {
            rank: named
                .iter()
                .enumerate()
                .map(|(i, &(_, _, s))| (s, i as u32))
                .collect(),
            len: named.len(),
        }
    }
}

/// What the metrics take of one symbol's probability `p`, computed once per call.
struct Terms {
    p: f64,
    /// `log10 p`, or -10 (the log of the 1e-10 KATO uses for zero).
    log10: f64,
    /// The symbol's term of the global normalised entropy: `p * (ln p / ln TS)`, when `p > 0`
    /// and `TS > 1`.
    global: Option<f64>,
    /// `log2(TU / max(1, int(p * TU))) + 1`.
    idf: f64,
}

impl Terms {
    fn new(p: f64, tu: u64, ts: f64) -> Terms {
        Terms {
            p,
            // log10(1e-10) is exactly -10.
            log10: if p > 0.0 { p.log10() } else { -10.0 },
            global: (p > 0.0 && ts > 1.0).then(|| p * (p.ln() / ts.ln())),
            idf: idf(((p * tu as f64).trunc() as u64).max(1), tu),
        }
    }
}

fn idf(with_symbol: u64, tu: u64) -> f64 {
    (tu as f64 / with_symbol as f64).log2() + 1.0
}

/// `10 ** Σ log10 P(s)` over the present in order (a left fold from the first term), with
/// `1e-10` for symbols of probability zero.
fn conditional_probability(present: &[u32], probability: &HashMap<u32, Terms>) -> f64 {
    let mut logs = present.iter().map(|&s| {
        probability
            .get(&s)
            .map_or_else(|| 1e-10f64.log10(), |t| t.log10)
    });
    let first = logs.next().unwrap_or(0.0);
    let exponent = logs.fold(first, |acc, x| acc + x);
    // Python's `10 ** x` is libm `pow(10, x)`; the opaque base keeps the compiler from turning
    // it into `exp10`, which can differ in the last bit.
    std::hint::black_box(10f64).powf(exponent)
}

/// Distinct symbols with their counts, in order of first occurrence (Python's `Counter`),
/// into `counts`.
fn first_occurrence_counts(symbols: &[u32], counts: &mut Vec<(u32, usize)>) {
    counts.clear();
    for &s in symbols {
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
}

/// `1 - cos` between each present's and the state's symbol-probability vectors (1 for all
/// when the state vector is zero), with numpy's summation orders.
fn itfdf_distances(
    state: &State<'_>,
    ranks: &NameRanks,
    presents: &[&[u32]],
    p_of: &dyn Fn(u32) -> f64,
) -> Vec<f64> {
    let index = &ranks.rank;
    let d = ranks.len;
    let mut counts = Vec::new();
    let mut vector = |symbols: &[u32]| {
        first_occurrence_counts(symbols, &mut counts);
        let mut entries: Vec<(usize, f64)> = counts
            .iter()
            .copied()
            .map(|(s, count)| (index[&s] as usize, p_of(s) * count as f64))
            .collect();
        entries.retain(|e| e.1 != 0.0);
        entries.sort_unstable_by_key(|e| e.0);
        Sparse { len: d, entries }
    };
    let state_vec = vector(&state.ids);
    let state_norm = sparse_self_dot(&state_vec).sqrt();
    if state_norm <= 0.0 {
        return vec![1.0; presents.len()];
    }
    let rows: Vec<Sparse> = presents.iter().map(|&present| vector(present)).collect();
    let dots = sparse_matvec(&rows, &state_vec.dense());
    rows.iter()
        .zip(dots)
        .map(|(row, dot)| {
            let denominator = sparse_row_norm(row) * state_norm;
            let cosine = if denominator > 0.0 {
                dot / denominator
            } else {
                0.0
            };
            1.0 - cosine
        })
        .collect()
}

/// Shannon entropy (bits), entropy normalised by the log of the symbol count, and the
/// global normalised entropy of the symbols' probabilities.
fn entropies(
    counts: &[(u32, usize)],
    length: usize,
    ts: f64,
    probability: &HashMap<u32, Terms>,
) -> (f64, f64, f64) {
    if length == 0 {
        return (0.0, 0.0, 0.0);
    }
    let mut entropy = 0.0;
    for &(_, count) in counts {
        let p = count as f64 / length as f64;
        entropy -= p * p.log2();
    }
    let mut normalized = 0.0;
    let mut global = 0.0;
    if ts > 1.0 {
        let ln_ts = ts.ln();
        for &(_, count) in counts {
            let p = count as f64 / length as f64;
            normalized -= p * (p.ln() / ln_ts);
        }
        for &(s, _) in counts {
            if let Some(term) = probability.get(&s).and_then(|t| t.global) {
                global -= term;
            }
        }
    }
    (entropy, normalized, global)
}

/// Mean tf-idf of the present's distinct symbols (or of the whole pattern's, after
/// finalize-training). The pattern count of a symbol is `int(P(s) * TU)` exactly as KATO
/// computes it, float round trip included.
fn tfidf(
    st: &NodeState,
    id: u32,
    counts: &[(u32, usize)],
    length: usize,
    tu: u64,
    probability: &HashMap<u32, Terms>,
) -> f64 {
    if tu == 0 {
        return 0.0;
    }
    let idf = |s: u32| probability.get(&s).map_or_else(|| idf(1, tu), |t| t.idf);
    // The mean, summed left to right.
    let mean = |scores: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = scores.fold((0.0, 0usize), |(sum, n), x| (sum + x, n + 1));
        if n == 0 { 0.0 } else { sum / n as f64 }
    };
    match st.finalized.get(&id) {
        Some(stored) => mean(&mut stored.tf.iter().map(|&(s, tf)| tf * idf(s))),
        None if length > 0 => mean(
            &mut counts
                .iter()
                .map(|&(s, count)| (count as f64 / length as f64) * idf(s)),
        ),
        None => 0.0,
    }
}

/// A draft's future, event by event, as symbol ids.
fn future_events<'a>(st: &'a NodeState, draft: &Draft) -> impl Iterator<Item = &'a [u32]> {
    let body = st.body(draft.id);
    let lens = st.event_lens_of(draft.id);
    draft
        .future
        .clone()
        .map(move |e| &body[event_range(lens, e)])
}

/// A draft's future with each event sorted: two futures are equal as KATO compares them
/// (events as sorted strings) exactly when their keys are equal.
fn future_key(st: &NodeState, draft: &Draft) -> Vec<Vec<u32>> {
    future_events(st, draft)
        .map(|event| {
            let mut event = event.to_vec();
            event.sort_unstable();
            event
        })
        .collect()
}

/// A draft's future as shared strings.
fn future_symbols(st: &NodeState, draft: &Draft) -> Vec<Vec<Symbol>> {
    future_events(st, draft)
        .map(|event| event.iter().map(|&s| st.symbols.symbol(s)).collect())
        .collect()
}

/// Pattern probability, weighted strength and predictive information of every prediction,
/// and the future potentials (KATO's `calculate_ensemble_predictive_information`).
fn predictive_information(st: &NodeState, drafts: &mut [Draft]) -> Vec<FuturePotential> {
    let total_frequency: u64 = drafts.iter().map(|d| d.frequency).sum();
    if total_frequency == 0 {
        return Vec::new();
    }
    for d in drafts.iter_mut() {
        let m = &mut d.metrics;
        m.pattern_probability = d.frequency as f64 / total_frequency as f64;
        m.weighted_strength = m.similarity * m.pattern_probability;
    }
    // Groups of equal futures (events compared sorted), in first-appearance order.
    let mut keys: Vec<Vec<Vec<u32>>> = Vec::new();
    let mut groups: Vec<FuturePotential> = Vec::new();
    let mut group_of: Vec<Option<usize>> = Vec::with_capacity(drafts.len());
    for d in drafts.iter() {
        if d.future.is_empty() {
            group_of.push(None);
            continue;
        }
        let key = future_key(st, d);
        let g = match keys.iter().position(|k| *k == key) {
            Some(g) => g,
            None => {
                keys.push(key);
                groups.push(FuturePotential {
                    future: future_symbols(st, d),
                    aggregate_potential: 0.0,
                    supporting_patterns: 0,
                    total_weighted_frequency: 0.0,
                });
                groups.len() - 1
            }
        };
        groups[g].total_weighted_frequency += d.frequency as f64 * d.metrics.similarity;
        groups[g].supporting_patterns += 1;
        group_of.push(Some(g));
    }
    let total_weighted = groups
        .iter()
        .fold(0.0, |acc, g| acc + g.total_weighted_frequency);
    for g in &mut groups {
        g.aggregate_potential = if total_weighted > 0.0 {
            g.total_weighted_frequency / total_weighted
        } else {
            0.0
        };
    }
    for (d, g) in drafts.iter_mut().zip(&group_of) {
        let m = &mut d.metrics;
        m.predictive_information = match g {
            Some(g) if groups[*g].aggregate_potential > 0.0 => {
                m.weighted_strength / groups[*g].aggregate_potential
            }
            _ => 0.0,
        };
    }
    groups.sort_by(|a, b| b.aggregate_potential.total_cmp(&a.aggregate_potential));
    groups
}

/// Prior (frequency share), likelihood (similarity) and posterior of every prediction; the
/// evidence is numpy's `np.dot(similarities, priors)`.
fn bayesian(drafts: &mut [Draft]) {
    let sum: f64 = drafts.iter().map(|d| d.frequency as f64).sum();
    if sum <= 0.0 {
        for p in drafts.iter_mut().map(|d| &mut d.metrics) {
            p.bayesian_likelihood = p.similarity;
        }
        return;
    }
    let priors: Vec<f64> = drafts.iter().map(|d| d.frequency as f64 / sum).collect();
    let similarities: Vec<f64> = drafts.iter().map(|d| d.metrics.similarity).collect();
    let evidence = ddot(&similarities, &priors);
    for (i, p) in drafts.iter_mut().map(|d| &mut d.metrics).enumerate() {
        p.bayesian_prior = priors[i];
        p.bayesian_likelihood = similarities[i];
        p.bayesian_posterior = if evidence > 0.0 {
            similarities[i] * priors[i] / evidence
        } else {
            0.0
        };
    }
}

fn rank_value(draft: &Draft, key: RankKey) -> f64 {
    let p = &draft.metrics;
    let value = match key {
        RankKey::Potential => Some(p.potential),
        RankKey::Similarity => Some(p.similarity),
        RankKey::Evidence => Some(p.evidence),
        RankKey::Confidence => Some(p.confidence),
        RankKey::Snr => Some(p.snr),
        RankKey::Fragmentation => Some(p.fragmentation),
        RankKey::Frequency => Some(draft.frequency as f64),
        RankKey::NormalizedEntropy => Some(p.normalized_entropy),
        RankKey::GlobalNormalizedEntropy => Some(p.global_normalized_entropy),
        RankKey::ItfdfSimilarity => Some(p.itfdf_similarity),
        RankKey::Confluence => Some(p.confluence),
        RankKey::PredictiveInformation => Some(p.predictive_information),
        RankKey::BayesianPosterior => Some(p.bayesian_posterior),
        RankKey::BayesianPrior => Some(p.bayesian_prior),
        RankKey::BayesianLikelihood => Some(p.bayesian_likelihood),
        RankKey::TfidfScore => Some(p.tfidf_score),
        RankKey::WeightedSimilarity => p.weighted_similarity,
        RankKey::WeightedEvidence => p.weighted_evidence,
        RankKey::WeightedConfidence => p.weighted_confidence,
        RankKey::WeightedSnr => p.weighted_snr,
    };
    value.unwrap_or(f64::NEG_INFINITY)
}
