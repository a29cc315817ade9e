//! Conversions between JSON and the engine's value types, and the JSON forms of engine
//! results exactly as KATO writes them (field names, order, int-versus-float).

use mneme_seq::node::{PatternView, SymbolStat};
use mneme_seq::predict::{Anomaly, FullPrediction, FuturePotential, Prediction, SinglePrediction};
use mneme_seq::pyfmt::MetaValue;
use mneme_seq::types::Emotives;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Value, json};

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

/// Strings as a JSON array, written directly.
struct Strings<'a, S>(&'a [S]);

impl<S: AsRef<str>> Serialize for Strings<'_, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq(self.0.iter().map(AsRef::as_ref))
    }
}

/// Events (lists of strings) as a JSON array of arrays.
struct Events<'a, S>(&'a [Vec<S>]);

impl<S: AsRef<str>> Serialize for Events<'_, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq(self.0.iter().map(|event| Strings(event)))
    }
}

struct EmotivesJson<'a>(&'a Emotives);

impl Serialize for EmotivesJson<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

struct Anomalies<'a>(&'a [Anomaly]);

impl Serialize for Anomalies<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            seq.serialize_element(&AnomalyJson(a))?;
        }
        seq.end()
    }
}

struct AnomalyJson<'a>(&'a Anomaly);

impl Serialize for AnomalyJson<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("observed", &self.0.observed)?;
        map.serialize_entry("expected", &self.0.expected)?;
        map.serialize_entry("similarity", &self.0.similarity)?;
        map.end()
    }
}

/// One prediction exactly as KATO writes it (field order, int-versus-float; NaN and infinities
/// as `null`), serialised without an intermediate JSON tree.
pub struct PredictionJson<'a>(pub &'a Prediction);

impl Serialize for PredictionJson<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        match self.0 {
            Prediction::Full(p) => full_prediction(p, serializer),
            Prediction::Single(p) => single_prediction(p, serializer),
        }
    }
}

pub fn prediction(p: &Prediction) -> Value {
    serde_json::to_value(PredictionJson(p)).unwrap_or(Value::Null)
}

fn full_prediction<Z: Serializer>(p: &FullPrediction, serializer: Z) -> Result<Z::Ok, Z::Error> {
    let mut m = serializer.serialize_map(None)?;
    m.serialize_entry("type", "prototypical")?;
    m.serialize_entry("name", &p.name)?;
    m.serialize_entry("frequency", &p.frequency)?;
    m.serialize_entry("emotives", &EmotivesJson(&p.emotives))?;
    m.serialize_entry("matches", &Strings(&p.matches))?;
    m.serialize_entry("past", &Events(&p.past))?;
    m.serialize_entry("present", &Events(&p.present))?;
    m.serialize_entry("missing", &Events(&p.missing))?;
    m.serialize_entry("extras", &Events(&p.extras))?;
    m.serialize_entry("anomalies", &Anomalies(&p.anomalies))?;
    m.serialize_entry("potential", &p.potential)?;
    m.serialize_entry("evidence", &p.evidence)?;
    m.serialize_entry("similarity", &p.similarity)?;
    m.serialize_entry("fragmentation", &p.fragmentation)?;
    m.serialize_entry("snr", &p.snr)?;
    m.serialize_entry("confluence", &p.confluence)?;
    m.serialize_entry("predictive_information", &p.predictive_information)?;
    m.serialize_entry("sequence", &Events(&p.sequence))?;
    m.serialize_entry("future", &Events(&p.future))?;
    m.serialize_entry("confidence", &p.confidence)?;
    m.serialize_entry("weighted_similarity", &p.weighted_similarity)?;
    m.serialize_entry("weighted_evidence", &p.weighted_evidence)?;
    m.serialize_entry("weighted_confidence", &p.weighted_confidence)?;
    m.serialize_entry("weighted_snr", &p.weighted_snr)?;
    if let Some(pre) = p.pre_potential {
        m.serialize_entry("_pre_potential", &pre)?;
    }
    m.serialize_entry("entropy", &p.entropy)?;
    m.serialize_entry("normalized_entropy", &p.normalized_entropy)?;
    m.serialize_entry("global_normalized_entropy", &p.global_normalized_entropy)?;
    m.serialize_entry("itfdf_similarity", &p.itfdf_similarity)?;
    m.serialize_entry("tfidf_score", &p.tfidf_score)?;
    m.serialize_entry("pattern_probability", &p.pattern_probability)?;
    m.serialize_entry("weighted_strength", &p.weighted_strength)?;
    m.serialize_entry("bayesian_posterior", &p.bayesian_posterior)?;
    m.serialize_entry("bayesian_prior", &p.bayesian_prior)?;
    m.serialize_entry("bayesian_likelihood", &p.bayesian_likelihood)?;
    m.end()
}

fn single_prediction<Z: Serializer>(
    p: &SinglePrediction,
    serializer: Z,
) -> Result<Z::Ok, Z::Error> {
    let mut m = serializer.serialize_map(None)?;
    m.serialize_entry("name", &p.name)?;
    m.serialize_entry("pattern_data", &Events(&p.pattern_data))?;
    m.serialize_entry("length", &p.length)?;
    m.serialize_entry("frequency", &p.frequency)?;
    m.serialize_entry("emotives", &EmotivesJson(&p.emotives))?;
    m.serialize_entry("matches", &Strings(&p.matches))?;
    m.serialize_entry("missing", &Strings(&p.missing))?;
    m.serialize_entry("present", &Strings(&p.present))?;
    m.serialize_entry("past", &Strings(&p.past))?;
    m.serialize_entry("future", &Strings(&p.future))?;
    m.serialize_entry("extras", &Strings(&p.extras))?;
    m.serialize_entry("similarity", &p.similarity)?;
    m.serialize_entry("evidence", &p.evidence)?;
    m.serialize_entry("confidence", &p.confidence)?;
    m.serialize_entry("snr", &p.snr)?;
    m.serialize_entry("fragmentation", &p.fragmentation)?;
    m.serialize_entry("anomalies", &Anomalies(&p.anomalies))?;
    m.serialize_entry("weighted_similarity", &p.weighted_similarity)?;
    m.serialize_entry("weighted_evidence", &p.weighted_evidence)?;
    m.serialize_entry("weighted_confidence", &p.weighted_confidence)?;
    m.serialize_entry("weighted_snr", &p.weighted_snr)?;
    m.serialize_entry("potential", &p.potential)?;
    m.end()
}

/// A list of predictions, written directly.
pub struct PredictionsJson<'a>(pub &'a [Prediction]);

impl Serialize for PredictionsJson<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serializer.collect_seq(self.0.iter().map(PredictionJson))
    }
}

/// Future potentials, written directly.
pub struct FuturePotentialsJson<'a>(pub &'a [FuturePotential]);

impl Serialize for FuturePotentialsJson<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for f in self.0 {
            seq.serialize_element(&FutureJson(f))?;
        }
        seq.end()
    }
}

struct FutureJson<'a>(&'a FuturePotential);

impl Serialize for FutureJson<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let f = self.0;
        let mut m = serializer.serialize_map(Some(4))?;
        m.serialize_entry("future", &Events(&f.future))?;
        m.serialize_entry("aggregate_potential", &f.aggregate_potential)?;
        m.serialize_entry("supporting_patterns", &f.supporting_patterns)?;
        m.serialize_entry("total_weighted_frequency", &f.total_weighted_frequency)?;
        m.end()
    }
}

pub fn future_potentials(items: &[FuturePotential]) -> Value {
    serde_json::to_value(FuturePotentialsJson(items)).unwrap_or(Value::Null)
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
