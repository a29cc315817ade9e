//! Properties of the pattern engine on random inputs: determinism, names independent of
//! emotives and metadata, and agreement of the fast matching and region code with a slow,
//! literal transcription of KATO's Python (`extract_prediction_info` + `Prediction`).

use std::collections::HashMap;

use mneme_seq::config::{Defaults, PredictConfig};
use mneme_seq::node::Node;
use mneme_seq::predict::Prediction;
use mneme_seq::pyfmt::MetaValue;
use mneme_seq::session::{ObserveConfig, Session};
use mneme_seq::types::{Observation, Symbol};
use proptest::prelude::*;

fn event() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "b", "c", "d", "e", "f"]),
        1..4,
    )
    .prop_map(|e| e.into_iter().map(str::to_owned).collect())
}

fn events(max: usize) -> impl Strategy<Value = Vec<Vec<String>>> {
    prop::collection::vec(event(), 1..max)
}

fn texts(symbols: &[Symbol]) -> Vec<String> {
    symbols.iter().map(|s| s.to_string()).collect()
}

fn ev(events: &[Vec<Symbol>]) -> Vec<Vec<String>> {
    events.iter().map(|e| texts(e)).collect()
}

/// Everything a prediction set says, as comparable text (floats by their bits).
fn fingerprint(node: &Node, stm: &[Vec<String>], config: &PredictConfig) -> String {
    format!("{:?}", node.predict(stm, config))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn replaying_the_same_observations_gives_identical_predictions(
        learned in prop::collection::vec(events(5), 1..12),
        observed in prop::collection::vec(event(), 1..6),
    ) {
        let run = || {
            let node = Node::in_memory("replay_kato");
            let defaults = Defaults::kato();
            let config = ObserveConfig::from_defaults(&defaults);
            let predict_config = defaults.predict_config();
            let mut session = Session::default();
            for pattern in &learned {
                for e in pattern {
                    let observation = Observation { strings: e.clone(), ..Observation::default() };
                    session.observe(&node, &observation, &config, &|n, stm| n.defer_predict(stm, &predict_config)).unwrap();
                }
                session.learn(&node, 5).unwrap();
            }
            for e in &observed {
                let observation = Observation { strings: e.clone(), ..Observation::default() };
                session.observe(&node, &observation, &config, &|n, stm| n.defer_predict(stm, &predict_config)).unwrap();
            }
            let first = fingerprint(&node, &session.stm, &predict_config);
            let again = fingerprint(&node, &session.stm, &predict_config);
            assert_eq!(first, again, "the same node answers the same way twice");
            first
        };
        prop_assert_eq!(run(), run());
    }

    /// Observe-time predictions are deferred until read; a session that observes, learns
    /// (by hand or by auto-learn), reads `cognition-data` and asks for single-symbol
    /// predictions sees exactly what computing them at every observe gives.
    #[test]
    fn deferred_observe_predictions_equal_eager_ones(
        steps in prop::collection::vec((event(), 0u8..6), 1..30),
        max_pattern_length in 0usize..4,
    ) {
        let run = |deferred: bool| {
            let node = Node::in_memory("defer_kato");
            let defaults = Defaults::kato();
            let mut config = ObserveConfig::from_defaults(&defaults);
            config.max_pattern_length = max_pattern_length;
            let predict_config = defaults.predict_config();
            let mut session = Session::default();
            let mut seen = Vec::new();
            for (e, action) in &steps {
                let observation = Observation { strings: e.clone(), ..Observation::default() };
                let outcome = if deferred {
                    session.observe(&node, &observation, &config, &|n, stm| n.defer_predict(stm, &predict_config))
                } else {
                    session.observe(&node, &observation, &config, &|n, stm| {
                        mneme_seq::predict::ObservePredictions::Ready(n.predict(stm, &predict_config).predictions)
                    })
                };
                seen.push(format!("{:?}", outcome.unwrap()));
                match action {
                    0 => { let _ = session.learn(&node, 5); }
                    1 => seen.push(format!("{:?}", session.predictions.get(&node))),
                    // A one-symbol state reports the node's last full-path future potentials.
                    2 => seen.push(format!("{:?}", node.predict(&[vec!["a".to_owned()]], &predict_config))),
                    3 => seen.push(format!("{:?}", node.predict(&session.stm, &predict_config))),
                    4 => session.stm.clear(),
                    _ => {}
                }
            }
            seen.push(format!("{:?}", session.predictions.get(&node)));
            seen
        };
        prop_assert_eq!(run(true), run(false));
    }

    #[test]
    fn names_do_not_depend_on_emotives_or_metadata(pattern in events(5), joy in -1.0f64..1.0, tag in "[a-z]{0,5}") {
        let plain = Node::in_memory("plain_kato").learn(&pattern, &[], &[], 5).unwrap();
        let rich = Node::in_memory("rich_kato")
            .learn(&pattern, &[vec![("joy".into(), joy)]], &[vec![("tag".into(), MetaValue::Str(tag))]], 5)
            .unwrap();
        prop_assert_eq!(plain, rich);
    }

    #[test]
    fn fast_matching_and_regions_agree_with_a_literal_reference(
        learned in prop::collection::vec(events(5), 1..10),
        stm in prop::collection::vec(event(), 1..5),
    ) {
        let node = Node::in_memory("reference_kato");
        let mut patterns = HashMap::new();
        for pattern in &learned {
            if let Some(hash) = node.learn(pattern, &[], &[], 5).unwrap() {
                patterns.insert(hash, pattern.clone());
            }
        }
        let state: Vec<String> = stm.iter().flatten().cloned().collect();
        prop_assume!(state.len() >= 2);
        let config = PredictConfig { recall_threshold: 0.0, max_predictions: 1000, ..Defaults::kato().predict_config() };
        let set = node.predict(&stm, &config);
        prop_assert_eq!(set.predictions.len(), patterns.len());
        for prediction in &set.predictions {
            let Prediction::Full(p) = prediction else { panic!("multi-symbol state takes the full path") };
            let expected = reference(&patterns[&p.name], &stm);
            prop_assert_eq!(p.metrics.similarity, expected.similarity);
            prop_assert_eq!(texts(&p.matches), expected.matches);
            prop_assert_eq!(ev(&p.past), expected.past);
            prop_assert_eq!(ev(&p.present), expected.present);
            prop_assert_eq!(ev(&p.future), expected.future);
            prop_assert_eq!(ev(&p.missing), expected.missing);
            prop_assert_eq!(ev(&p.extras), expected.extras);
            prop_assert_eq!((p.metrics.evidence, p.metrics.confidence, p.metrics.snr, p.metrics.fragmentation), (expected.evidence, expected.confidence, expected.snr, expected.fragmentation));
        }
    }
}

struct Expected {
    similarity: f64,
    matches: Vec<String>,
    past: Vec<Vec<String>>,
    present: Vec<Vec<String>>,
    future: Vec<Vec<String>>,
    missing: Vec<Vec<String>>,
    extras: Vec<Vec<String>>,
    evidence: f64,
    confidence: f64,
    snr: f64,
    fragmentation: f64,
}

/// Textbook LCS by dynamic programming.
#[allow(clippy::needless_range_loop)] // index loops mirror the textbook
fn lcs(a: &[String], b: &[String]) -> usize {
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in 0..a.len() {
        for j in 0..b.len() {
            table[i + 1][j + 1] = if a[i] == b[j] {
                table[i][j] + 1
            } else {
                table[i][j + 1].max(table[i + 1][j])
            };
        }
    }
    table[a.len()][b.len()]
}

/// difflib's matching blocks without junk, transcribed line by line (on strings).
#[allow(clippy::needless_range_loop)] // `for i in range(alo, ahi)`, as difflib has it
fn matching_blocks(a: &[String], b: &[String]) -> Vec<(usize, usize, usize)> {
    let mut b2j: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, x) in b.iter().enumerate() {
        b2j.entry(x).or_default().push(j);
    }
    let longest = |alo: usize, ahi: usize, blo: usize, bhi: usize| {
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for i in alo..ahi {
            let mut new: HashMap<usize, usize> = HashMap::new();
            for &j in b2j.get(a[i].as_str()).map(Vec::as_slice).unwrap_or(&[]) {
                if j < blo {
                    continue;
                }
                if j >= bhi {
                    break;
                }
                let k = if j > 0 {
                    j2len.get(&(j - 1)).copied().unwrap_or(0)
                } else {
                    0
                } + 1;
                new.insert(j, k);
                if k > bestsize {
                    (besti, bestj, bestsize) = (i + 1 - k, j + 1 - k, k);
                }
            }
            j2len = new;
        }
        (besti, bestj, bestsize)
    };
    let mut queue = vec![(0, a.len(), 0, b.len())];
    let mut blocks = Vec::new();
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        let (i, j, k) = longest(alo, ahi, blo, bhi);
        if k > 0 {
            blocks.push((i, j, k));
            if alo < i && blo < j {
                queue.push((alo, i, blo, j));
            }
            if i + k < ahi && j + k < bhi {
                queue.push((i + k, ahi, j + k, bhi));
            }
        }
    }
    blocks.sort();
    let mut merged: Vec<(usize, usize, usize)> = Vec::new();
    for (i, j, k) in blocks {
        match merged.last_mut() {
            Some(last) if last.0 + last.2 == i && last.1 + last.2 == j => last.2 += k,
            _ => merged.push((i, j, k)),
        }
    }
    merged
}

/// KATO's `extract_prediction_info` (token mode, threshold 0) and `Prediction.__init__`.
fn reference(pattern_events: &[Vec<String>], stm: &[Vec<String>]) -> Expected {
    let pattern: Vec<String> = pattern_events.iter().flatten().cloned().collect();
    let state: Vec<String> = stm.iter().flatten().cloned().collect();
    let total = pattern.len() + state.len();
    let similarity = (2.0 * lcs(&pattern, &state) as f64 / total as f64) * 100.0 / 100.0;
    let blocks = matching_blocks(&pattern, &state);
    let mut matches: Vec<String> = Vec::new();
    for &(_, j, n) in &blocks {
        matches.extend(state[j..j + n].iter().cloned());
    }
    let (past, present): (Vec<String>, Vec<String>) = match blocks.len() {
        0 => (Vec::new(), pattern.clone()),
        1 => (
            pattern[..blocks[0].0].to_vec(),
            pattern[blocks[0].0..blocks[0].0 + blocks[0].2].to_vec(),
        ),
        _ => {
            let (i0, _, _) = blocks[0];
            let (i1, _, n1) = blocks[blocks.len() - 1];
            (
                pattern[..i0].to_vec(),
                if i1 + n1 > i0 {
                    pattern[i0..i1 + n1].to_vec()
                } else {
                    pattern[i0..].to_vec()
                },
            )
        }
    };
    let matched_present: usize = matching_blocks(&present, &state).iter().map(|b| b.2).sum();
    let extras_flat = state.len() - matched_present;
    let m = matches.len() as f64;
    let x = extras_flat as f64;
    let snr = if 2.0 * m + x > 0.0 {
        (2.0 * m - x) / (2.0 * m + x)
    } else {
        0.0
    };
    // Prediction.__init__'s while loops.
    let (mut c1, mut c2, mut event_num) = (past.len(), 0, 0);
    while c2 < c1 {
        c2 += pattern_events[event_num].len();
        event_num += 1;
    }
    let e1 = event_num;
    let mut past_events = pattern_events[..event_num].to_vec();
    c1 += present.len();
    while c2 < c1 {
        c2 += pattern_events[event_num].len();
        event_num += 1;
    }
    let mut present_events = pattern_events[e1..event_num].to_vec();
    let future_events = pattern_events[event_num..].to_vec();
    if let (Some(last), Some(first_match)) = (past_events.last().cloned(), matches.first()) {
        if last.contains(first_match) {
            present_events.insert(0, last);
            past_events.pop();
        }
    }
    let missing = present_events
        .iter()
        .map(|e| e.iter().filter(|s| !matches.contains(s)).cloned().collect())
        .collect();
    let flat_present: Vec<String> = present_events.iter().flatten().cloned().collect();
    let extras = stm
        .iter()
        .map(|e| {
            e.iter()
                .filter(|s| !flat_present.contains(s))
                .cloned()
                .collect()
        })
        .collect();
    Expected {
        similarity,
        evidence: m / pattern.len() as f64,
        confidence: if flat_present.is_empty() {
            0.0
        } else {
            m / flat_present.len() as f64
        },
        snr,
        fragmentation: blocks.len() as f64 - 1.0,
        matches,
        past: past_events,
        present: present_events,
        future: future_events,
        missing,
        extras,
    }
}
