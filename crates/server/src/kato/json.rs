//! Conversions between JSON and the engine's value types, and the JSON forms of engine
//! results exactly as KATO writes them (field names, order, int-versus-float).

use mneme_seq::config::Defaults;
use mneme_seq::node::{PatternView, SymbolStat};
use mneme_seq::predict::{
    Anomaly, FullAnswer, FullPrediction, FuturePotential, Metrics, Prediction, PredictionRef,
    SinglePrediction, Symbols,
};
use mneme_seq::pyfmt::MetaValue;
use mneme_seq::session_config::SessionConfig;
use mneme_seq::types::Emotives;
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::{Map, Value, json};

/// A JSON value as the engine's JSON-like value (object key order kept).
pub fn to_meta(value: &Value) -> MetaValue {
    match value {
        Value::Null => MetaValue::Null,
        Value::Bool(b) => MetaValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => MetaValue::Int(i128::from(i)),
            (None, Some(u)) => MetaValue::Int(i128::from(u)),
            _ => MetaValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => MetaValue::Str(s.clone()),
        Value::Array(items) => MetaValue::List(items.iter().map(to_meta).collect()),
        Value::Object(map) => {
            MetaValue::Dict(map.iter().map(|(k, v)| (k.clone(), to_meta(v))).collect())
        }
    }
}

/// The engine's JSON-like value back as JSON.
pub fn from_meta(value: &MetaValue) -> Value {
    match value {
        MetaValue::Null => Value::Null,
        MetaValue::Bool(b) => Value::Bool(*b),
        MetaValue::Int(n) => i64::try_from(*n).map_or_else(|_| float(*n as f64), Value::from),
        MetaValue::Float(x) => float(*x),
        MetaValue::Str(s) => Value::String(s.clone()),
        MetaValue::List(items) => Value::Array(items.iter().map(from_meta).collect()),
        MetaValue::Dict(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), from_meta(v)))
                .collect(),
        ),
    }
}

/// A float as a JSON number (`null` for NaN and infinities, which JSON cannot carry).
pub fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

pub fn emotives(values: &Emotives) -> Value {
    Value::Object(values.iter().map(|(k, v)| (k.clone(), float(*v))).collect())
}

pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| Value::String(s.as_ref().to_owned()))
            .collect(),
    )
}

pub fn events<S: AsRef<str>>(events: &[Vec<S>]) -> Value {
    Value::Array(events.iter().map(|event| strings(event)).collect())
}

// The JSON of predictions is written straight into bytes: an answer holds thousands of
// short strings and floats, and a tree or the generic serialiser costs more than the engine.
// The output is byte for byte what serde_json's compact serialiser writes.

/// A JSON object being written: `key` adds the separator and the key.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Writes `"key":` (keys are plain ASCII here) and returns the buffer for the value.
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// Like `key`, for keys that may need escaping.
    fn key_escaped(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON string (serde_json's escaping).
fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let plain = |b: u8| b >= 0x20 && b != b'"' && b != b'\\';
    if bytes.len() <= 32 {
        // Symbols are short: a byte loop beats a call to memcpy, and checks as it copies.
        let start = out.len();
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        for &b in bytes {
            if !plain(b) {
                out.truncate(start);
                return write_escaped(out, s);
            }
            out.push(b);
        }
        out.push(b'"');
    } else if bytes.iter().all(|&b| plain(b)) {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        write_escaped(out, s);
    }
}

fn write_escaped(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A float as serde_json writes it (`null` for NaN and infinities).
fn write_f64(out: &mut Vec<u8>, x: f64) {
    // Many figures are exactly 0 or 1 (the bit patterns exclude -0.0).
    if x.to_bits() == 0 {
        out.extend_from_slice(b"0.0");
    } else if x.to_bits() == 1f64.to_bits() {
        out.extend_from_slice(b"1.0");
    } else if x.is_finite() {
        FLOATS.with_borrow_mut(|floats| floats.write(out, x));
    } else {
        out.extend_from_slice(b"null");
    }
}

thread_local! {
    static FLOATS: std::cell::RefCell<FloatCache> = std::cell::RefCell::new(FloatCache::new());
}

/// The text of recently written floats, by bit pattern (direct-mapped). An answer repeats
/// most of its figures (two thirds of them in a predictions answer), and formatting the
/// shortest round-trip digits costs more than finding them here.
struct FloatCache {
    slots: Box<[FloatText]>,
}

#[derive(Clone, Copy)]
struct FloatText {
    /// Infinity's bits: never stored, since only finite values are.
    bits: u64,
    len: u8,
    text: [u8; 24],
}

impl FloatCache {
    const SLOTS: usize = 512;

    fn new() -> FloatCache {
        let empty = FloatText {
            bits: f64::INFINITY.to_bits(),
            len: 0,
            text: [0; 24],
        };
        FloatCache {
            slots: vec![empty; Self::SLOTS].into_boxed_slice(),
        }
    }

    /// Writes serde_json's text of a finite `x`.
    fn write(&mut self, out: &mut Vec<u8>, x: f64) {
        let bits = x.to_bits();
        let slot = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 55) as usize % Self::SLOTS;
        let entry = &mut self.slots[slot];
        if entry.bits == bits {
            out.extend_from_slice(&entry.text[..usize::from(entry.len)]);
            return;
        }
        let start = out.len();
        let _ = CompactFormatter.write_f64(out, x);
        let text = &out[start..];
        if let Some(slot) = entry.text.get_mut(..text.len()) {
            slot.copy_from_slice(text);
            entry.len = text.len() as u8;
            entry.bits = bits;
        }
    }
}

fn write_opt_f64(out: &mut Vec<u8>, x: Option<f64>) {
    match x {
        Some(x) => write_f64(out, x),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    let _ = CompactFormatter.write_u64(out, n);
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    let _ = CompactFormatter.write_i64(out, n);
}

/// `[a,b,...]` with `item` writing each element.
fn write_list<I: IntoIterator>(
    out: &mut Vec<u8>,
    items: I,
    mut item: impl FnMut(&mut Vec<u8>, I::Item),
) {
    out.push(b'[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

fn write_strings<S: AsRef<str>>(out: &mut Vec<u8>, items: &[S]) {
    write_list(out, items, |out, s| write_str(out, s.as_ref()));
}

fn write_events<S: AsRef<str>>(out: &mut Vec<u8>, events: &[Vec<S>]) {
    write_list(out, events, |out, event| write_strings(out, event));
}

fn write_emotives(out: &mut Vec<u8>, values: &Emotives) {
    let mut m = Object::new(out);
    for (k, v) in values {
        write_f64(m.key_escaped(k), *v);
    }
    m.end();
}

fn write_anomalies(out: &mut Vec<u8>, anomalies: &[Anomaly]) {
    write_list(out, anomalies, |out, a| {
        let mut m = Object::new(out);
        write_str(m.key("observed"), &a.observed);
        write_str(m.key("expected"), &a.expected);
        write_f64(m.key("similarity"), a.similarity);
        m.end();
    });
}

/// One prediction exactly as KATO writes it (field order, int-versus-float; NaN and infinities
/// as `null`).
pub fn write_prediction(out: &mut Vec<u8>, p: &Prediction) {
    match p {
        Prediction::Full(p) => write_full(out, &**p, &mut PatternJson::default()),
        Prediction::Single(p) => write_single(out, p),
    }
}

/// The symbol lists of a full prediction that are not its pattern's events.
#[derive(Clone, Copy)]
enum List {
    Matches,
    Missing,
    Extras,
}

/// A pattern's events written once as JSON (`[..],[..],..`), with where each ends, so that
/// `past`, `present`, `future` and `sequence` are copies of runs of it.
#[derive(Default)]
struct PatternJson {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// Events in `past`, then in `present`; `future` is the rest.
    past: usize,
    present: usize,
}

impl PatternJson {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn push_event(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if !self.ends.is_empty() {
            self.bytes.push(b',');
        }
        write(&mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// Writes events `events` as a JSON list.
    fn write(&self, out: &mut Vec<u8>, events: std::ops::Range<usize>) {
        out.push(b'[');
        if !events.is_empty() {
            let start = if events.start == 0 {
                0
            } else {
                self.ends[events.start - 1] + 1
            };
            out.extend_from_slice(&self.bytes[start..self.ends[events.end - 1]]);
        }
        out.push(b']');
    }
}

/// A full prediction as its JSON writer reads it: the engine's answer on the locked node
/// ([`PredictionRef`]) or the owned form ([`FullPrediction`]).
trait FullFields {
    fn write_name(&self, out: &mut Vec<u8>);
    fn frequency(&self) -> u64;
    fn write_emotives(&self, out: &mut Vec<u8>);
    fn anomalies(&self) -> &[Anomaly];
    fn metrics(&self) -> Metrics;
    fn write_symbol_list(&self, list: List, out: &mut Vec<u8>);
    /// The pattern's events (`past`, `present` and `future` in turn) into `json`.
    fn write_pattern(&self, json: &mut PatternJson);
}

impl FullFields for FullPrediction {
    fn write_name(&self, out: &mut Vec<u8>) {
        write_str(out, &self.name);
    }

    fn frequency(&self) -> u64 {
        self.frequency
    }

    fn write_emotives(&self, out: &mut Vec<u8>) {
        write_emotives(out, &self.emotives);
    }

    fn anomalies(&self) -> &[Anomaly] {
        &self.anomalies
    }

    fn metrics(&self) -> Metrics {
        self.metrics
    }

    fn write_symbol_list(&self, list: List, out: &mut Vec<u8>) {
        match list {
            List::Matches => write_strings(out, &self.matches),
            List::Missing => write_events(out, &self.missing),
            List::Extras => write_events(out, &self.extras),
        }
    }

    fn write_pattern(&self, json: &mut PatternJson) {
        json.clear();
        (json.past, json.present) = (self.past.len(), self.present.len());
        for event in self.past.iter().chain(&self.present).chain(&self.future) {
            json.push_event(|out| write_strings(out, event));
        }
    }
}

impl FullFields for PredictionRef<'_> {
    fn write_name(&self, out: &mut Vec<u8>) {
        write_str(out, self.name().as_str());
    }

    fn frequency(&self) -> u64 {
        PredictionRef::frequency(self)
    }

    fn write_emotives(&self, out: &mut Vec<u8>) {
        write_emotives(out, &self.emotives());
    }

    fn anomalies(&self) -> &[Anomaly] {
        PredictionRef::anomalies(self)
    }

    fn metrics(&self) -> Metrics {
        *PredictionRef::metrics(self)
    }

    fn write_pattern(&self, json: &mut PatternJson) {
        json.clear();
        (json.past, json.present) = (self.past().len(), self.present().len());
        for event in self.sequence() {
            json.push_event(|out| write_symbols(out, event));
        }
    }

    fn write_symbol_list(&self, list: List, out: &mut Vec<u8>) {
        let events = match list {
            List::Matches => return write_symbols(out, self.matches()),
            List::Missing => self.missing(),
            List::Extras => self.extras(),
        };
        write_list(out, events, write_symbols);
    }
}

fn write_symbols(out: &mut Vec<u8>, symbols: Symbols<'_>) {
    write_list(out, symbols, write_str);
}

fn write_full(out: &mut Vec<u8>, p: &impl FullFields, pattern: &mut PatternJson) {
    p.write_pattern(pattern);
    let present_end = pattern.past + pattern.present;
    let events = pattern.ends.len();
    let mut m = Object::new(out);
    write_str(m.key("type"), "prototypical");
    p.write_name(m.key("name"));
    write_u64(m.key("frequency"), p.frequency());
    p.write_emotives(m.key("emotives"));
    p.write_symbol_list(List::Matches, m.key("matches"));
    pattern.write(m.key("past"), 0..pattern.past);
    pattern.write(m.key("present"), pattern.past..present_end);
    p.write_symbol_list(List::Missing, m.key("missing"));
    p.write_symbol_list(List::Extras, m.key("extras"));
    write_anomalies(m.key("anomalies"), p.anomalies());
    let x = p.metrics();
    write_f64(m.key("potential"), x.potential);
    write_f64(m.key("evidence"), x.evidence);
    write_f64(m.key("similarity"), x.similarity);
    write_f64(m.key("fragmentation"), x.fragmentation);
    write_f64(m.key("snr"), x.snr);
    write_f64(m.key("confluence"), x.confluence);
    write_f64(m.key("predictive_information"), x.predictive_information);
    pattern.write(m.key("sequence"), 0..events);
    pattern.write(m.key("future"), present_end..events);
    write_f64(m.key("confidence"), x.confidence);
    write_opt_f64(m.key("weighted_similarity"), x.weighted_similarity);
    write_opt_f64(m.key("weighted_evidence"), x.weighted_evidence);
    write_opt_f64(m.key("weighted_confidence"), x.weighted_confidence);
    write_opt_f64(m.key("weighted_snr"), x.weighted_snr);
    if let Some(pre) = x.pre_potential {
        write_f64(m.key("_pre_potential"), pre);
    }
    write_f64(m.key("entropy"), x.entropy);
    write_f64(m.key("normalized_entropy"), x.normalized_entropy);
    write_f64(
        m.key("global_normalized_entropy"),
        x.global_normalized_entropy,
    );
    write_f64(m.key("itfdf_similarity"), x.itfdf_similarity);
    write_f64(m.key("tfidf_score"), x.tfidf_score);
    write_f64(m.key("pattern_probability"), x.pattern_probability);
    write_f64(m.key("weighted_strength"), x.weighted_strength);
    write_f64(m.key("bayesian_posterior"), x.bayesian_posterior);
    write_f64(m.key("bayesian_prior"), x.bayesian_prior);
    write_f64(m.key("bayesian_likelihood"), x.bayesian_likelihood);
    m.end();
}

fn write_single(out: &mut Vec<u8>, p: &SinglePrediction) {
    let mut m = Object::new(out);
    write_str(m.key("name"), &p.name);
    write_events(m.key("pattern_data"), &p.pattern_data);
    write_u64(m.key("length"), p.length as u64);
    write_u64(m.key("frequency"), p.frequency);
    write_emotives(m.key("emotives"), &p.emotives);
    write_strings(m.key("matches"), &p.matches);
    write_strings(m.key("missing"), &p.missing);
    write_strings(m.key("present"), &p.present);
    write_strings(m.key("past"), &p.past);
    write_strings(m.key("future"), &p.future);
    write_strings(m.key("extras"), &p.extras);
    write_f64(m.key("similarity"), p.similarity);
    write_f64(m.key("evidence"), p.evidence);
    write_f64(m.key("confidence"), p.confidence);
    write_f64(m.key("snr"), p.snr);
    write_i64(m.key("fragmentation"), p.fragmentation);
    write_anomalies(m.key("anomalies"), &p.anomalies);
    write_opt_f64(m.key("weighted_similarity"), p.weighted_similarity);
    write_opt_f64(m.key("weighted_evidence"), p.weighted_evidence);
    write_opt_f64(m.key("weighted_confidence"), p.weighted_confidence);
    write_opt_f64(m.key("weighted_snr"), p.weighted_snr);
    write_f64(m.key("potential"), p.potential);
    m.end();
}

/// A list of predictions.
pub fn write_predictions(out: &mut Vec<u8>, predictions: &[Prediction]) {
    write_list(out, predictions, write_prediction);
}

/// Future potentials.
pub fn write_future_potentials(out: &mut Vec<u8>, items: &[FuturePotential]) {
    write_list(out, items, |out, f| {
        let mut m = Object::new(out);
        write_events(m.key("future"), &f.future);
        write_f64(m.key("aggregate_potential"), f.aggregate_potential);
        write_u64(m.key("supporting_patterns"), f.supporting_patterns as u64);
        write_f64(
            m.key("total_weighted_frequency"),
            f.total_weighted_frequency,
        );
        m.end();
    });
}

/// `GET /sessions/{id}/predictions`: the whole answer.
pub fn write_predictions_reply(
    out: &mut Vec<u8>,
    predictions: &[Prediction],
    future_potentials: &[FuturePotential],
    session_id: &str,
) {
    write_reply(
        out,
        |out| write_predictions(out, predictions),
        predictions.len(),
        future_potentials,
        session_id,
    );
}

/// `GET /sessions/{id}/predictions` for a full-path answer, read on the locked node.
pub fn write_full_answer_reply(out: &mut Vec<u8>, answer: &FullAnswer<'_>, session_id: &str) {
    write_reply(
        out,
        |out| {
            let mut pattern = PatternJson::default();
            write_list(out, answer.predictions(), |out, p| {
                write_full(out, &p, &mut pattern)
            });
        },
        answer.len(),
        answer.future_potentials(),
        session_id,
    );
}

fn write_reply(
    out: &mut Vec<u8>,
    predictions: impl FnOnce(&mut Vec<u8>),
    count: usize,
    future_potentials: &[FuturePotential],
    session_id: &str,
) {
    let mut m = Object::new(out);
    predictions(m.key("predictions"));
    write_future_potentials(m.key("future_potentials"), future_potentials);
    write_str(m.key("session_id"), session_id);
    m.key("processor_id").extend_from_slice(b"null");
    write_u64(m.key("count"), count as u64);
    m.key("time").extend_from_slice(b"null");
    m.key("unique_id").extend_from_slice(b"null");
    m.end();
}

/// Written bytes as a JSON value (exact: the crate parses floats round-trip and keeps key
/// order).
fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

pub fn prediction(p: &Prediction) -> Value {
    let mut out = Vec::with_capacity(1536);
    write_prediction(&mut out, p);
    parse(&out)
}

pub fn future_potentials(items: &[FuturePotential]) -> Value {
    let mut out = Vec::new();
    write_future_potentials(&mut out, items);
    parse(&out)
}

pub fn pattern(view: &PatternView) -> Value {
    json!({
        "name": format!("PTRN|{}", view.name),
        "pattern_data": view.events,
        "length": view.length,
        "frequency": view.frequency,
        "emotives": Value::Array(view.emotives.iter().map(emotives).collect()),
        "metadata": Value::Object(view.metadata.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
    })
}

pub fn symbol_stats(stats: &[SymbolStat]) -> Value {
    Value::Object(
        stats
            .iter()
            .map(|s| {
                (s.name.clone(), json!({"name": s.name, "frequency": s.frequency, "pattern_member_frequency": s.pattern_member_frequency}))
            })
            .collect(),
    )
}

pub fn affinity(values: &[(String, f64)]) -> Value {
    Value::Object(values.iter().map(|(k, v)| (k.clone(), float(*v))).collect())
}

/// KATO's `session_config` echo: every default, overridden by the session's values.
pub fn effective_config(d: &Defaults, config: &SessionConfig) -> Value {
    let mut out = Map::new();
    let defaults: Vec<(&str, Value)> = vec![
        ("max_pattern_length", json!(d.max_pattern_length)),
        ("persistence", json!(d.persistence)),
        ("recall_threshold", float(d.recall_threshold)),
        ("indexer_type", json!("VI")),
        ("max_predictions", json!(d.max_predictions)),
        ("sort_symbols", json!(d.sort_symbols)),
        ("process_predictions", json!(d.process_predictions)),
        ("use_token_matching", json!(d.use_token_matching)),
        (
            "stm_mode",
            json!(match d.stm_mode {
                mneme_seq::config::StmMode::Clear => "CLEAR",
                mneme_seq::config::StmMode::Rolling => "ROLLING",
            }),
        ),
        ("rank_sort_algo", json!(d.rank_sort_algo.name())),
        ("filter_pipeline", json!([])),
        ("length_min_ratio", json!(0.5)),
        ("length_max_ratio", json!(2.0)),
        ("jaccard_threshold", json!(0.3)),
        ("jaccard_min_overlap", json!(2)),
        ("minhash_threshold", json!(0.7)),
        ("minhash_bands", json!(20)),
        ("minhash_rows", json!(5)),
        ("minhash_num_hashes", json!(100)),
        ("bloom_false_positive_rate", json!(0.01)),
        ("max_candidates_per_stage", json!(100000)),
        ("enable_filter_metrics", json!(true)),
    ];
    for (key, default) in defaults {
        out.insert(key.to_owned(), config.get(key).map_or(default, from_meta));
    }
    for key in ["fuzzy_token_threshold", "affinity_emotive"] {
        if let Some(value) = config.get(key) {
            if *value != MetaValue::Null {
                out.insert(key.to_owned(), from_meta(value));
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floats, strings and whole predictions come out as serde_json writes them, whether a
    /// float's text is formatted or found in the cache, and whatever a string holds.
    #[test]
    fn written_bytes_are_serde_json_bytes() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut floats = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e-7,
            1e21,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if x.is_finite() {
                floats.push(x);
                floats.push(x / 3.0);
            }
        }
        // Twice over: the second round reads the cache (and slots collide along the way).
        for x in floats.iter().chain(floats.iter()) {
            let mut out = Vec::new();
            write_f64(&mut out, *x);
            assert_eq!(out, serde_json::to_vec(x).unwrap(), "{x:e}");
        }
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut out = Vec::new();
            write_f64(&mut out, x);
            assert_eq!(out, b"null");
        }
        let long = "x".repeat(40) + "\"";
        for s in [
            "",
            "plain",
            "quote\"",
            "back\\slash",
            "tab\t",
            "\u{1}",
            "é ünï",
            "日本",
            long.as_str(),
            &long[..40],
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }
}
