//! The owned forms of a prediction call's answer, as KATO names their fields: plain data,
//! importing nothing of the code that computes them.

use crate::types::{Emotives, Symbol};

/// A fuzzy token match that was not exact (`anomalies`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Anomaly {
    pub observed: String,
    pub expected: String,
    pub similarity: f64,
}

/// A full-path prediction, fields as KATO names them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FullPrediction {
    /// Bare 40-hex-digit hash.
    pub name: String,
    pub frequency: u64,
    /// The pattern's stored emotives, averaged.
    pub emotives: Emotives,
    pub matches: Vec<Symbol>,
    pub past: Vec<Vec<Symbol>>,
    pub present: Vec<Vec<Symbol>>,
    pub missing: Vec<Vec<Symbol>>,
    pub extras: Vec<Vec<Symbol>>,
    pub anomalies: Vec<Anomaly>,
    pub sequence: Vec<Vec<Symbol>>,
    pub future: Vec<Vec<Symbol>>,
    pub metrics: Metrics,
}

/// A single-symbol-path prediction (flat regions, no ensemble metrics).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SinglePrediction {
    pub name: String,
    pub pattern_data: Vec<Vec<Symbol>>,
    pub length: usize,
    pub frequency: u64,
    pub emotives: Emotives,
    pub matches: Vec<Symbol>,
    pub missing: Vec<Symbol>,
    pub present: Vec<Symbol>,
    pub past: Vec<Symbol>,
    pub future: Vec<Symbol>,
    pub extras: Vec<Symbol>,
    pub similarity: f64,
    pub evidence: f64,
    pub confidence: f64,
    pub snr: f64,
    /// Always 0 (an integer in KATO's output).
    pub fragmentation: i64,
    pub anomalies: Vec<Anomaly>,
    pub weighted_similarity: Option<f64>,
    pub weighted_evidence: Option<f64>,
    pub weighted_confidence: Option<f64>,
    pub weighted_snr: Option<f64>,
    pub potential: f64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Prediction {
    Full(Box<FullPrediction>),
    Single(Box<SinglePrediction>),
}

impl Prediction {
    pub fn name(&self) -> &str {
        match self {
            Prediction::Full(p) => &p.name,
            Prediction::Single(p) => &p.name,
        }
    }

    pub fn potential(&self) -> f64 {
        match self {
            Prediction::Full(p) => p.metrics.potential,
            Prediction::Single(p) => p.potential,
        }
    }
}

/// One distinct future of the ensemble and how much of it the predictions support.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FuturePotential {
    pub future: Vec<Vec<Symbol>>,
    pub aggregate_potential: f64,
    pub supporting_patterns: usize,
    pub total_weighted_frequency: f64,
}

/// A prediction call's answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictionSet {
    pub predictions: Vec<Prediction>,
    /// The node's future potentials after this call (KATO keeps them per node: a
    /// single-symbol or empty call reports those of the node's last full-path call).
    pub future_potentials: Vec<FuturePotential>,
}

/// The figures of a full-path prediction, as KATO names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    pub potential: f64,
    pub evidence: f64,
    pub similarity: f64,
    pub fragmentation: f64,
    pub snr: f64,
    pub confluence: f64,
    pub predictive_information: f64,
    pub confidence: f64,
    pub weighted_similarity: Option<f64>,
    pub weighted_evidence: Option<f64>,
    pub weighted_confidence: Option<f64>,
    pub weighted_snr: Option<f64>,
    /// Present only when the candidates were pruned.
    pub pre_potential: Option<f64>,
    pub entropy: f64,
    pub normalized_entropy: f64,
    pub global_normalized_entropy: f64,
    pub itfdf_similarity: f64,
    pub tfidf_score: f64,
    pub pattern_probability: f64,
    pub weighted_strength: f64,
    pub bayesian_posterior: f64,
    pub bayesian_prior: f64,
    pub bayesian_likelihood: f64,
}
