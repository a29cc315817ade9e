//! KATO's single-symbol path: the patterns whose first symbol is the state's only symbol,
//! each with flat fields (`future` is the rest of the pattern), no threshold, no ensemble
//! metrics, ranked by `(evidence + confidence) * snr + 1`.

use std::collections::HashMap;

use super::full::symbol_weight;
use super::prediction::{Prediction, SinglePrediction};
use crate::config::PredictConfig;
use crate::matching::fuzz_ratio;
use crate::node::{Node, hex};
use crate::types::average_emotives;

pub(super) fn predict(node: &Node, symbol: &str, config: &PredictConfig) -> Vec<Prediction> {
    let st = node.read();
    let Some(id) = st.symbols.get(symbol) else {
        return Vec::new();
    };
    let mut candidates: Vec<u32> = st.first_token.get(&id).cloned().unwrap_or_default();
    candidates.sort_unstable_by(|a, b| {
        st.patterns[*a as usize]
            .name
            .cmp(&st.patterns[*b as usize].name)
    });
    // Weights cover the symbol and every candidate's symbols (unlike the full path).
    let weights: Option<HashMap<u32, f64>> = config
        .affinity_emotive
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(|emotive| {
            let mut weights = HashMap::new();
            weights.insert(id, symbol_weight(&st, id, emotive));
            for &candidate in &candidates {
                for &s in st.body(candidate) {
                    weights
                        .entry(s)
                        .or_insert_with(|| symbol_weight(&st, s, emotive));
                }
            }
            weights
        });
    let sum = |symbols: &[u32]| -> f64 {
        let weights = weights.as_ref().expect("weights exist");
        symbols
            .iter()
            .fold(0.0, |acc, s| acc + weights.get(s).copied().unwrap_or(0.0))
    };
    let mut out: Vec<SinglePrediction> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let body = st.body(candidate);
        let rec = &st.patterns[candidate as usize];
        let length = body.len();
        let similarity = if config.single_symbol_token_matching {
            2.0 * 1.0 / (length + 1) as f64
        } else {
            let text: Vec<&str> = body.iter().map(|&s| st.symbols.name(s)).collect();
            fuzz_ratio(&text.join(" "), symbol) / 100.0
        };
        let (weighted_similarity, weighted_evidence, weighted_confidence, weighted_snr) =
            if weights.is_some() {
                let matched = sum(&[id]);
                let total = sum(&[id]) + sum(body);
                let pattern = sum(body);
                let present = sum(&[id]);
                (
                    (total > 0.0).then(|| 2.0 * matched / total),
                    Some(if pattern > 0.0 {
                        matched / pattern
                    } else {
                        0.0
                    }),
                    Some(if present > 0.0 {
                        matched / present
                    } else {
                        0.0
                    }),
                    // w_matched / (w_matched + w_extras), and there are no extras.
                    Some(if matched > 0.0 { 1.0 } else { 0.0 }),
                )
            } else {
                (None, None, None, None)
            };
        let evidence = 1.0 / length as f64;
        let confidence = 1.0;
        let snr = 1.0;
        let e = weighted_evidence.unwrap_or(evidence);
        let c = weighted_confidence.unwrap_or(confidence);
        let s = weighted_snr.unwrap_or(snr);
        out.push(SinglePrediction {
            name: hex(&rec.name),
            pattern_data: st.event_symbols(candidate),
            length,
            frequency: rec.frequency.max(1),
            emotives: average_emotives(&rec.emotives),
            matches: vec![st.symbols.symbol(id)],
            missing: Vec::new(),
            present: vec![st.symbols.symbol(id)],
            past: Vec::new(),
            future: body[1..].iter().map(|&s| st.symbols.symbol(s)).collect(),
            extras: Vec::new(),
            similarity,
            evidence,
            confidence,
            snr,
            fragmentation: 0,
            anomalies: Vec::new(),
            weighted_similarity,
            weighted_evidence,
            weighted_confidence,
            weighted_snr,
            potential: (e + c) * s + 1.0,
        });
    }
    // Stable by potential, descending (candidates are in name order).
    out.sort_by(|a, b| b.potential.total_cmp(&a.potential));
    out.truncate(config.max_predictions);
    out.into_iter()
        .map(|p| Prediction::Single(Box::new(p)))
        .collect()
}
