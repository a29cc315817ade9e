//! Settings of the pattern engine: server-wide defaults (KATO's environment) and the knobs a
//! prediction or an observation runs with. The HTTP layer decides which session overrides
//! apply; the engine only sees effective values.

/// How auto-learn empties short-term memory when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StmMode {
    /// Learn the STM and empty it.
    Clear,
    /// Learn the STM and keep its last `max_pattern_length - 1` events.
    Rolling,
}

/// The prediction field used to rank (KATO's `rank_sort_algo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RankKey {
    Potential,
    Similarity,
    Evidence,
    Confidence,
    Snr,
    Fragmentation,
    Frequency,
    NormalizedEntropy,
    GlobalNormalizedEntropy,
    ItfdfSimilarity,
    Confluence,
    PredictiveInformation,
    BayesianPosterior,
    BayesianPrior,
    BayesianLikelihood,
    TfidfScore,
    WeightedSimilarity,
    WeightedEvidence,
    WeightedConfidence,
    WeightedSnr,
}

impl RankKey {
    pub const ALL: [(RankKey, &'static str); 20] = [
        (RankKey::Potential, "potential"),
        (RankKey::Similarity, "similarity"),
        (RankKey::Evidence, "evidence"),
        (RankKey::Confidence, "confidence"),
        (RankKey::Snr, "snr"),
        (RankKey::Fragmentation, "fragmentation"),
        (RankKey::Frequency, "frequency"),
        (RankKey::NormalizedEntropy, "normalized_entropy"),
        (
            RankKey::GlobalNormalizedEntropy,
            "global_normalized_entropy",
        ),
        (RankKey::ItfdfSimilarity, "itfdf_similarity"),
        (RankKey::Confluence, "confluence"),
        (RankKey::PredictiveInformation, "predictive_information"),
        (RankKey::BayesianPosterior, "bayesian_posterior"),
        (RankKey::BayesianPrior, "bayesian_prior"),
        (RankKey::BayesianLikelihood, "bayesian_likelihood"),
        (RankKey::TfidfScore, "tfidf_score"),
        (RankKey::WeightedSimilarity, "weighted_similarity"),
        (RankKey::WeightedEvidence, "weighted_evidence"),
        (RankKey::WeightedConfidence, "weighted_confidence"),
        (RankKey::WeightedSnr, "weighted_snr"),
    ];

    pub fn parse(name: &str) -> Option<RankKey> {
        RankKey::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(key, _)| *key)
    }

    pub fn name(self) -> &'static str {
        RankKey::ALL
            .iter()
            .find(|(key, _)| *key == self)
            .map_or("potential", |(_, n)| n)
    }
}

/// KATO's server settings that the engine uses (environment variables there).
#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    /// `SERVICE_NAME`: the suffix of every kb_id.
    pub service_name: String,
    pub max_pattern_length: usize,
    /// `PERSISTENCE`: length of a pattern's emotive rolling window.
    pub persistence: usize,
    pub recall_threshold: f64,
    pub stm_mode: StmMode,
    pub max_predictions: usize,
    /// `SORT_SYMBOLS`: sort the strings (and vector names) inside an event.
    pub sort_symbols: bool,
    pub process_predictions: bool,
    pub use_token_matching: bool,
    pub rank_sort_algo: RankKey,
    /// Learned vectors of the node that join an observed vector's event (KATO: 3, by
    /// Euclidean distance; 0 reproduces a KATO without a vector database).
    pub vector_neighbours: usize,
}

impl Defaults {
    /// KATO 3.10.1's defaults.
    pub fn kato() -> Defaults {
        Defaults {
            service_name: "kato".to_owned(),
            max_pattern_length: 0,
            persistence: 5,
            recall_threshold: 0.1,
            stm_mode: StmMode::Clear,
            max_predictions: 100,
            sort_symbols: true,
            process_predictions: true,
            use_token_matching: true,
            rank_sort_algo: RankKey::Potential,
            vector_neighbours: 3,
        }
    }

    /// The prediction settings of an observe-time prediction (server values only).
    pub fn predict_config(&self) -> PredictConfig {
        PredictConfig {
            recall_threshold: self.recall_threshold,
            max_predictions: self.max_predictions,
            use_token_matching: self.use_token_matching,
            single_symbol_token_matching: self.use_token_matching,
            fuzzy_token_threshold: 0.0,
            affinity_emotive: None,
            rank_by: self.rank_sort_algo,
        }
    }
}

/// The knobs of one prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictConfig {
    /// Keep candidates whose similarity is at least this (inclusive; 0.0 keeps all).
    pub recall_threshold: f64,
    pub max_predictions: usize,
    /// Token-level similarity (LCS of symbols) or character-level (`fuzz.ratio`).
    pub use_token_matching: bool,
    /// The single-symbol path uses the server's setting, not the session's (KATO).
    pub single_symbol_token_matching: bool,
    /// Fuzzy token matching threshold in 0..1 (0 = off).
    pub fuzzy_token_threshold: f64,
    /// Weight metrics by the symbols' affinity for this emotive.
    pub affinity_emotive: Option<String>,
    pub rank_by: RankKey,
}

/// KATO's `processor_id(node_id)`: the kb_id under which a node's long-term memory lives.
pub fn kb_id(node_id: &str, service_name: &str) -> String {
    const REPLACED: &[char] = &[
        '/', '\\', '.', '"', '$', '*', '<', '>', ':', '|', '?', '-', ' ',
    ];
    let node: String = node_id
        .chars()
        .map(|c| if REPLACED.contains(&c) { '_' } else { c })
        .collect();
    let base = service_name.replace('-', "_");
    let full = format!("{node}_{base}");
    if full.chars().count() <= 60 {
        return full;
    }
    let digest = crate::name::md5_hex(&node);
    let keep = 60usize.saturating_sub(base.chars().count() + 1 + 8 + 1);
    let head: String = node.chars().take(keep).collect();
    format!("{head}_{}_{base}", &digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kb_ids_follow_kato() {
        assert_eq!(kb_id("probe2_8fe426", "kato"), "probe2_8fe426_kato");
        assert_eq!(kb_id("a.b-c d/e", "my-svc"), "a_b_c_d_e_my_svc");
        // Python: node[:60-len(base)-1-8-1] + "_" + md5(node).hexdigest()[:8] + "_kato"
        let long = "n".repeat(70);
        assert_eq!(
            kb_id(&long, "kato"),
            format!("{}_a3c65bb3_kato", "n".repeat(46))
        );
    }
}
