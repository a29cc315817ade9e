//! A session's configuration overrides, with KATO's two validation paths: session creation
//! applies them all or none silently, `POST /sessions/{id}/config` reports each invalid key.
//!
//! Values are kept as sent (a JSON-like [`MetaValue`]), because KATO echoes them back as
//! given; effective typed values are derived with Python's coercions (`True` is 1).

use crate::config::{Defaults, PredictConfig, RankKey, StmMode};
use crate::pyfmt::MetaValue;
use crate::session::ObserveConfig;

/// The attributes of KATO's `SessionConfiguration`, in its order.
pub const ATTRIBUTES: &[&str] = &[
    "max_pattern_length",
    "persistence",
    "recall_threshold",
    "stm_mode",
    "indexer_type",
    "max_predictions",
    "sort_symbols",
    "process_predictions",
    "use_token_matching",
    "fuzzy_token_threshold",
    "rank_sort_algo",
    "affinity_emotive",
    "filter_pipeline",
    "length_min_ratio",
    "length_max_ratio",
    "jaccard_threshold",
    "jaccard_min_overlap",
    "minhash_threshold",
    "minhash_bands",
    "minhash_rows",
    "minhash_num_hashes",
    "bloom_false_positive_rate",
    "max_candidates_per_stage",
    "enable_filter_metrics",
];

const INDEXERS: &[&str] = &["VI", "LSH", "ANNOY", "FAISS"];
const FILTERS: &[&str] = &["minhash", "length", "jaccard", "bloom", "rapidfuzz"];

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionConfig {
    /// The overrides set so far, in the order they were first set.
    overrides: Vec<(String, MetaValue)>,
}

/// A number as Python sees it (`bool` is an `int`), `None` for anything else.
fn number(value: &MetaValue) -> Option<f64> {
    match value {
        MetaValue::Bool(b) => Some(f64::from(u8::from(*b))),
        MetaValue::Int(n) => Some(*n as f64),
        MetaValue::Float(x) => Some(*x),
        _ => None,
    }
}

/// An integer as Python's `isinstance(v, int)` sees it (`bool` included).
fn integer(value: &MetaValue) -> Option<i128> {
    match value {
        MetaValue::Bool(b) => Some(i128::from(*b)),
        MetaValue::Int(n) => Some(*n),
        _ => None,
    }
}

/// Python truthiness.
fn truthy(value: &MetaValue) -> bool {
    match value {
        MetaValue::Null => false,
        MetaValue::Bool(b) => *b,
        MetaValue::Int(n) => *n != 0,
        MetaValue::Float(x) => *x != 0.0,
        MetaValue::Str(s) => !s.is_empty(),
        MetaValue::List(items) => !items.is_empty(),
        MetaValue::Dict(items) => !items.is_empty(),
    }
}

impl SessionConfig {
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.overrides
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Every override, in the order first set.
    pub fn overrides(&self) -> &[(String, MetaValue)] {
        &self.overrides
    }

    fn set(&mut self, key: &str, value: MetaValue) {
        match self.overrides.iter_mut().find(|(k, _)| k == key) {
            Some((_, current)) => *current = value,
            None => self.overrides.push((key.to_owned(), value)),
        }
    }

    /// Session creation (`SessionConfiguration.update`): known keys are set, `stm_mode` other
    /// than CLEAR/ROLLING becomes CLEAR, and if any value is out of range the whole update is
    /// rolled back without an error.
    pub fn update_silently(&mut self, changes: &[(String, MetaValue)]) {
        let before = self.clone();
        for (key, value) in changes {
            if !ATTRIBUTES.contains(&key.as_str()) {
                continue;
            }
            let value = if key == "stm_mode" {
                normalise_stm_mode(value)
            } else {
                value.clone()
            };
            self.set(key, value);
        }
        if !self.is_valid() {
            *self = before;
        }
    }

    /// `POST /sessions/{id}/config`: every invalid key is reported (key, message) and nothing
    /// changes; otherwise known keys are set (`use_token_matching` also sets `sort_symbols`
    /// unless that is given too).
    pub fn update_checked(
        &mut self,
        changes: &[(String, MetaValue)],
    ) -> Result<(), Vec<(String, String)>> {
        let errors = validate_update(changes);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut changes: Vec<(String, MetaValue)> = changes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k == "stm_mode" {
                        normalise_stm_mode(v)
                    } else {
                        v.clone()
                    },
                )
            })
            .collect();
        if let Some(value) = changes
            .iter()
            .find(|(k, _)| k == "use_token_matching")
            .map(|(_, v)| v.clone())
        {
            if !changes.iter().any(|(k, _)| k == "sort_symbols") {
                changes.push(("sort_symbols".to_owned(), value));
            }
        }
        for (key, value) in changes {
            if ATTRIBUTES.contains(&key.as_str()) {
                self.set(&key, value);
            }
        }
        Ok(())
    }

    /// KATO's `SessionConfiguration.validate()` ranges.
    fn is_valid(&self) -> bool {
        let in_range = |key: &str, low: f64, high: f64| {
            self.get(key)
                .is_none_or(|v| number(v).is_some_and(|x| (low..=high).contains(&x)))
        };
        let int_at_least = |key: &str, low: i128| {
            self.get(key)
                .is_none_or(|v| integer(v).is_some_and(|n| n >= low))
        };
        let int_in = |key: &str, low: i128, high: i128| {
            self.get(key)
                .is_none_or(|v| integer(v).is_some_and(|n| (low..=high).contains(&n)))
        };
        let one_of = |key: &str, allowed: &[&str]| {
            self.get(key)
                .is_none_or(|v| matches!(v, MetaValue::Str(s) if allowed.contains(&s.as_str())))
        };
        let filters_ok = self.get("filter_pipeline").is_none_or(|v| match v {
            MetaValue::List(items) => items
                .iter()
                .all(|i| matches!(i, MetaValue::Str(s) if FILTERS.contains(&s.as_str()))),
            _ => false,
        });
        let rank_names: Vec<&str> = RankKey::ALL.iter().map(|(_, n)| *n).collect();
        int_at_least("max_pattern_length", 0)
            && int_in("persistence", 1, 100)
            && in_range("recall_threshold", 0.0, 1.0)
            && one_of("indexer_type", INDEXERS)
            && int_in("max_predictions", 1, 10000)
            && in_range("fuzzy_token_threshold", 0.0, 1.0)
            && one_of("rank_sort_algo", &rank_names)
            && filters_ok
            && in_range("length_min_ratio", 0.0, 1.0)
            && self
                .get("length_max_ratio")
                .is_none_or(|v| number(v).is_some_and(|x| x >= 1.0))
            && in_range("jaccard_threshold", 0.0, 1.0)
            && int_at_least("jaccard_min_overlap", 1)
            && in_range("minhash_threshold", 0.0, 1.0)
            && int_in("minhash_bands", 1, 100)
            && int_in("minhash_rows", 1, 20)
            && int_in("minhash_num_hashes", 10, 256)
            && in_range("bloom_false_positive_rate", 0.0001, 0.1)
            && int_at_least("max_candidates_per_stage", 100)
    }

    fn int_or(&self, key: &str, default: usize) -> usize {
        self.get(key)
            .and_then(integer)
            .map_or(default, |n| n.max(0) as usize)
    }

    fn number_or(&self, key: &str, default: f64) -> f64 {
        self.get(key).and_then(number).unwrap_or(default)
    }

    fn bool_or(&self, key: &str, default: bool) -> bool {
        self.get(key).map_or(default, truthy)
    }

    pub fn stm_mode(&self, defaults: &Defaults) -> StmMode {
        match self.get("stm_mode") {
            Some(MetaValue::Str(s)) if s == "ROLLING" => StmMode::Rolling,
            Some(_) => StmMode::Clear,
            None => defaults.stm_mode,
        }
    }

    pub fn rank_sort_algo(&self) -> Option<RankKey> {
        match self.get("rank_sort_algo") {
            Some(MetaValue::Str(s)) => RankKey::parse(s),
            _ => None,
        }
    }

    /// The settings of an observation in this session. `honour_sort_symbols` chooses
    /// between KATO's behaviour (the server value) and the session's `sort_symbols`.
    pub fn observe_config(&self, defaults: &Defaults, honour_sort_symbols: bool) -> ObserveConfig {
        ObserveConfig {
            sort_symbols: if honour_sort_symbols {
                self.bool_or("sort_symbols", defaults.sort_symbols)
            } else {
                defaults.sort_symbols
            },
            max_pattern_length: self.int_or("max_pattern_length", defaults.max_pattern_length),
            stm_mode: self.stm_mode(defaults),
            process_predictions: self.bool_or("process_predictions", defaults.process_predictions),
            persistence: defaults.persistence,
            vector_neighbours: defaults.vector_neighbours,
        }
    }

    /// The settings of `GET predictions` in this session. `rank_by` is the ranking key the
    /// caller decided on (KATO always uses the server's).
    pub fn predict_config(&self, defaults: &Defaults, rank_by: RankKey) -> PredictConfig {
        let affinity_emotive = match self.get("affinity_emotive") {
            Some(MetaValue::Str(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        PredictConfig {
            recall_threshold: self.number_or("recall_threshold", defaults.recall_threshold),
            max_predictions: self.int_or("max_predictions", defaults.max_predictions),
            use_token_matching: self.bool_or("use_token_matching", defaults.use_token_matching),
            single_symbol_token_matching: defaults.use_token_matching,
            fuzzy_token_threshold: self.number_or("fuzzy_token_threshold", 0.0),
            affinity_emotive,
            rank_by,
        }
    }
}

fn normalise_stm_mode(value: &MetaValue) -> MetaValue {
    match value {
        MetaValue::Str(s) if s == "CLEAR" || s == "ROLLING" => value.clone(),
        MetaValue::Str(_) => MetaValue::Str("CLEAR".to_owned()),
        other => other.clone(),
    }
}

/// KATO's `ConfigurationService.validate_configuration_update`, messages included, in its
/// order of checks.
pub fn validate_update(changes: &[(String, MetaValue)]) -> Vec<(String, String)> {
    let get = |key: &str| changes.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
    let mut errors = Vec::new();
    if let Some(value) = get("recall_threshold") {
        if !number(value).is_some_and(|x| (0.0..=1.0).contains(&x)) {
            errors.push((
                "recall_threshold".into(),
                "Must be a number between 0.0 and 1.0".into(),
            ));
        }
    }
    if let Some(value) = get("persistence") {
        if !integer(value).is_some_and(|n| (1..=100).contains(&n)) {
            errors.push((
                "persistence".into(),
                "Must be an integer between 1 and 100".into(),
            ));
        }
    }
    if let Some(value) = get("max_pattern_length") {
        if integer(value).is_none_or(|n| n < 0) {
            errors.push((
                "max_pattern_length".into(),
                "Must be a non-negative integer".into(),
            ));
        }
    }
    if let Some(value) = get("max_predictions") {
        if !integer(value).is_some_and(|n| (1..=10000).contains(&n)) {
            errors.push((
                "max_predictions".into(),
                "Must be an integer between 1 and 10000".into(),
            ));
        }
    }
    if let Some(value) = get("indexer_type") {
        if !matches!(value, MetaValue::Str(s) if INDEXERS.contains(&s.as_str())) {
            errors.push((
                "indexer_type".into(),
                format!("Must be one of: {}", INDEXERS.join(", ")),
            ));
        }
    }
    if let Some(value) = get("stm_mode") {
        if !matches!(value, MetaValue::Str(_)) {
            errors.push(("stm_mode".into(), "Must be a string".into()));
        }
    }
    for field in ["sort", "process_predictions", "use_token_matching"] {
        if let Some(value) = get(field) {
            if !matches!(value, MetaValue::Bool(_)) {
                errors.push((field.into(), "Must be a boolean (true/false)".into()));
            }
        }
    }
    if let Some(value) = get("rank_sort_algo") {
        if !matches!(value, MetaValue::Str(s) if RankKey::parse(s).is_some()) {
            let names: Vec<&str> = RankKey::ALL.iter().map(|(_, n)| *n).collect();
            errors.push((
                "rank_sort_algo".into(),
                format!("Must be one of: {}", names.join(", ")),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(items: &[(&str, MetaValue)]) -> Vec<(String, MetaValue)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn checked_updates_report_each_invalid_key() {
        let mut config = SessionConfig::default();
        let err = config
            .update_checked(&changes(&[
                ("recall_threshold", MetaValue::Float(1.5)),
                ("use_token_matching", MetaValue::Int(1)),
            ]))
            .unwrap_err();
        assert_eq!(
            err,
            [
                (
                    "recall_threshold".to_owned(),
                    "Must be a number between 0.0 and 1.0".to_owned()
                ),
                (
                    "use_token_matching".to_owned(),
                    "Must be a boolean (true/false)".to_owned()
                ),
            ]
        );
        assert!(config.overrides().is_empty());
        config
            .update_checked(&changes(&[
                ("use_token_matching", MetaValue::Bool(false)),
                ("stm_mode", MetaValue::Str("odd".into())),
            ]))
            .unwrap();
        assert_eq!(config.get("sort_symbols"), Some(&MetaValue::Bool(false)));
        assert_eq!(
            config.get("stm_mode"),
            Some(&MetaValue::Str("CLEAR".into()))
        );
        // Python: True is an int, so it passes numeric checks.
        config
            .update_checked(&changes(&[("max_predictions", MetaValue::Bool(true))]))
            .unwrap();
    }

    #[test]
    fn creation_updates_roll_back_silently() {
        let mut config = SessionConfig::default();
        config.update_silently(&changes(&[
            ("max_predictions", MetaValue::Int(5)),
            ("unknown", MetaValue::Int(1)),
        ]));
        assert_eq!(
            config.overrides(),
            &changes(&[("max_predictions", MetaValue::Int(5))])[..]
        );
        config.update_silently(&changes(&[
            ("recall_threshold", MetaValue::Float(0.5)),
            ("persistence", MetaValue::Int(0)),
        ]));
        assert_eq!(
            config.get("recall_threshold"),
            None,
            "the whole update was rolled back"
        );
    }
}
