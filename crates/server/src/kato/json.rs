//! Conversions between JSON and the engine's value types, and the JSON forms of engine
//! results exactly as KATO writes them (field names, order, int-versus-float).

use mneme_seq::node::{PatternView, SymbolStat};
use mneme_seq::predict::{Anomaly, FullPrediction, FuturePotential, Prediction, SinglePrediction};
use mneme_seq::pyfmt::MetaValue;
use mneme_seq::types::Emotives;
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

fn opt_float(x: Option<f64>) -> Value {
    x.map_or(Value::Null, float)
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

fn anomalies(items: &[Anomaly]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|a| json!({"observed": a.observed, "expected": a.expected, "similarity": float(a.similarity)}))
            .collect(),
    )
}

pub fn prediction(p: &Prediction) -> Value {
    match p {
        Prediction::Full(p) => full_prediction(p),
        Prediction::Single(p) => single_prediction(p),
    }
}

fn full_prediction(p: &FullPrediction) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), "prototypical".into());
    m.insert("name".into(), p.name.clone().into());
    m.insert("frequency".into(), p.frequency.into());
    m.insert("emotives".into(), emotives(&p.emotives));
    m.insert("matches".into(), strings(&p.matches));
    m.insert("past".into(), events(&p.past));
    m.insert("present".into(), events(&p.present));
    m.insert("missing".into(), events(&p.missing));
    m.insert("extras".into(), events(&p.extras));
    m.insert("anomalies".into(), anomalies(&p.anomalies));
    m.insert("potential".into(), float(p.potential));
    m.insert("evidence".into(), float(p.evidence));
    m.insert("similarity".into(), float(p.similarity));
    m.insert("fragmentation".into(), float(p.fragmentation));
    m.insert("snr".into(), float(p.snr));
    m.insert("confluence".into(), float(p.confluence));
    m.insert(
        "predictive_information".into(),
        float(p.predictive_information),
    );
    m.insert("sequence".into(), events(&p.sequence));
    m.insert("future".into(), events(&p.future));
    m.insert("confidence".into(), float(p.confidence));
    m.insert(
        "weighted_similarity".into(),
        opt_float(p.weighted_similarity),
    );
    m.insert("weighted_evidence".into(), opt_float(p.weighted_evidence));
    m.insert(
        "weighted_confidence".into(),
        opt_float(p.weighted_confidence),
    );
    m.insert("weighted_snr".into(), opt_float(p.weighted_snr));
    if let Some(pre) = p.pre_potential {
        m.insert("_pre_potential".into(), float(pre));
    }
    m.insert("entropy".into(), float(p.entropy));
    m.insert("normalized_entropy".into(), float(p.normalized_entropy));
    m.insert(
        "global_normalized_entropy".into(),
        float(p.global_normalized_entropy),
    );
    m.insert("itfdf_similarity".into(), float(p.itfdf_similarity));
    m.insert("tfidf_score".into(), float(p.tfidf_score));
    m.insert("pattern_probability".into(), float(p.pattern_probability));
    m.insert("weighted_strength".into(), float(p.weighted_strength));
    m.insert("bayesian_posterior".into(), float(p.bayesian_posterior));
    m.insert("bayesian_prior".into(), float(p.bayesian_prior));
    m.insert("bayesian_likelihood".into(), float(p.bayesian_likelihood));
    Value::Object(m)
}

fn single_prediction(p: &SinglePrediction) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), p.name.clone().into());
    m.insert("pattern_data".into(), events(&p.pattern_data));
    m.insert("length".into(), p.length.into());
    m.insert("frequency".into(), p.frequency.into());
    m.insert("emotives".into(), emotives(&p.emotives));
    m.insert("matches".into(), strings(&p.matches));
    m.insert("missing".into(), strings(&p.missing));
    m.insert("present".into(), strings(&p.present));
    m.insert("past".into(), strings(&p.past));
    m.insert("future".into(), strings(&p.future));
    m.insert("extras".into(), strings(&p.extras));
    m.insert("similarity".into(), float(p.similarity));
    m.insert("evidence".into(), float(p.evidence));
    m.insert("confidence".into(), float(p.confidence));
    m.insert("snr".into(), float(p.snr));
    m.insert("fragmentation".into(), p.fragmentation.into());
    m.insert("anomalies".into(), anomalies(&p.anomalies));
    m.insert(
        "weighted_similarity".into(),
        opt_float(p.weighted_similarity),
    );
    m.insert("weighted_evidence".into(), opt_float(p.weighted_evidence));
    m.insert(
        "weighted_confidence".into(),
        opt_float(p.weighted_confidence),
    );
    m.insert("weighted_snr".into(), opt_float(p.weighted_snr));
    m.insert("potential".into(), float(p.potential));
    Value::Object(m)
}

pub fn future_potentials(items: &[FuturePotential]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|f| {
                json!({
                    "future": events(&f.future),
                    "aggregate_potential": float(f.aggregate_potential),
                    "supporting_patterns": f.supporting_patterns,
                    "total_weighted_frequency": float(f.total_weighted_frequency),
                })
            })
            .collect(),
    )
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
