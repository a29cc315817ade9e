//! Request bodies checked the way KATO's pydantic models check them, with FastAPI's 422
//! error entries (`type`, `loc`, `msg`, `input`) for every problem found.

use mneme_seq::types::Observation;
use serde_json::{Map, Value, json};

use super::json::to_meta;

/// One validation problem, as FastAPI lists it under `detail`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    /// The constraint that failed (`{"gt": 0}`), for the errors that have one.
    pub ctx: Option<Value>,
}

impl FieldError {
    fn new(kind: &'static str, loc: &[Value], msg: &str, input: &Value) -> FieldError {
        FieldError {
            kind,
            loc: loc.to_vec(),
            msg: msg.to_owned(),
            input: input.clone(),
            ctx: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut out =
            json!({"type": self.kind, "loc": self.loc, "msg": self.msg, "input": self.input});
        if let Some(ctx) = &self.ctx {
            out["ctx"] = ctx.clone();
        }
        out
    }
}

/// A session lifetime in seconds checked against `1..=MAX_TTL_SECONDS` (`0..` when
/// `zero_allowed`), with pydantic's `gt`/`ge` and `le` errors.
fn ttl_in_range(
    ttl: i64,
    zero_allowed: bool,
    at: &[Value],
    input: &Value,
) -> Result<i64, Vec<FieldError>> {
    let max = super::MAX_TTL_SECONDS;
    if ttl < i64::from(!zero_allowed) {
        let (kind, msg, ctx) = if zero_allowed {
            (
                "greater_than_equal",
                "Input should be greater than or equal to 0",
                json!({"ge": 0}),
            )
        } else {
            (
                "greater_than",
                "Input should be greater than 0",
                json!({"gt": 0}),
            )
        };
        return Err(vec![FieldError {
            ctx: Some(ctx),
            ..FieldError::new(kind, at, msg, input)
        }]);
    }
    if ttl > max {
        return Err(vec![FieldError {
            ctx: Some(json!({"le": max})),
            ..FieldError::new(
                "less_than_equal",
                at,
                &format!("Input should be less than or equal to {max}"),
                input,
            )
        }]);
    }
    Ok(ttl)
}

/// `POST /sessions/{id}/extend?ttl_seconds=N`: an integer from 1 to [`super::MAX_TTL_SECONDS`],
/// 3600 when absent.
pub fn ttl_query(query: &str) -> Result<u64, Vec<FieldError>> {
    let Some(raw) = super::query_param(query, "ttl_seconds") else {
        return Ok(3600);
    };
    let at = [json!("query"), json!("ttl_seconds")];
    let input = Value::String(raw.clone());
    let ttl = raw.trim().parse::<i64>().map_err(|_| {
        vec![FieldError::new(
            "int_parsing",
            &at,
            "Input should be a valid integer, unable to parse string as an integer",
            &input,
        )]
    })?;
    ttl_in_range(ttl, false, &at, &input).map(|t| t as u64)
}

/// The `detail` list of a 422 answer.
pub fn detail(errors: &[FieldError]) -> Value {
    json!({"detail": errors.iter().map(FieldError::to_json).collect::<Vec<_>>()})
}

fn loc(base: &[Value], field: impl Into<Value>) -> Vec<Value> {
    let mut out = base.to_vec();
    out.push(field.into());
    out
}

/// The body as an object, or the error FastAPI gives for a missing or non-object body.
pub fn object(body: Option<&Value>) -> Result<&Map<String, Value>, Vec<FieldError>> {
    match body {
        None => Err(vec![FieldError::new(
            "missing",
            &[json!("body")],
            "Field required",
            &Value::Null,
        )]),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(vec![FieldError::new(
            "model_attributes_type",
            &[json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            other,
        )]),
    }
}

/// A pydantic `float` in lax mode: numbers, and strings that parse as numbers.
fn float(value: &Value, at: &[Value], errors: &mut Vec<FieldError>) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Some(x),
            _ => {
                errors.push(FieldError::new(
                    "float_parsing",
                    at,
                    "Input should be a valid number, unable to parse string as a number",
                    value,
                ));
                None
            }
        },
        _ => {
            errors.push(FieldError::new(
                "float_type",
                at,
                "Input should be a valid number",
                value,
            ));
            None
        }
    }
}

fn list<'a>(
    value: &'a Value,
    at: &[Value],
    errors: &mut Vec<FieldError>,
) -> Option<&'a Vec<Value>> {
    match value {
        Value::Array(items) => Some(items),
        _ => {
            errors.push(FieldError::new(
                "list_type",
                at,
                "Input should be a valid list",
                value,
            ));
            None
        }
    }
}

fn dict<'a>(
    value: &'a Value,
    at: &[Value],
    errors: &mut Vec<FieldError>,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => {
            errors.push(FieldError::new(
                "dict_type",
                at,
                "Input should be a valid dictionary",
                value,
            ));
            None
        }
    }
}

fn string(value: &Value, at: &[Value], errors: &mut Vec<FieldError>) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        _ => {
            errors.push(FieldError::new(
                "string_type",
                at,
                "Input should be a valid string",
                value,
            ));
            None
        }
    }
}

/// An observation (`strings`, `vectors`, `emotives`, `metadata`, and in sequences
/// `unique_id`), defaults for missing fields. `base` is the location prefix.
pub fn observation(
    map: &Map<String, Value>,
    base: &[Value],
) -> Result<(Observation, Option<String>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut observation = Observation::default();
    if let Some(value) = map.get("strings") {
        let at = loc(base, "strings");
        if let Some(items) = list(value, &at, &mut errors) {
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = string(item, &loc(&at, i), &mut errors) {
                    observation.strings.push(s);
                }
            }
        }
    }
    if let Some(value) = map.get("vectors") {
        let at = loc(base, "vectors");
        if let Some(items) = list(value, &at, &mut errors) {
            for (i, item) in items.iter().enumerate() {
                let at_item = loc(&at, i);
                if let Some(numbers) = list(item, &at_item, &mut errors) {
                    let vector: Vec<f64> = numbers
                        .iter()
                        .enumerate()
                        .filter_map(|(j, x)| float(x, &loc(&at_item, j), &mut errors))
                        .collect();
                    observation.vectors.push(vector);
                }
            }
        }
    }
    if let Some(value) = map.get("emotives") {
        let at = loc(base, "emotives");
        if let Some(entries) = dict(value, &at, &mut errors) {
            for (key, x) in entries {
                if let Some(x) = float(x, &loc(&at, key.as_str()), &mut errors) {
                    observation.emotives.push((key.clone(), x));
                }
            }
        }
    }
    if let Some(value) = map.get("metadata") {
        let at = loc(base, "metadata");
        if let Some(entries) = dict(value, &at, &mut errors) {
            observation.metadata = entries
                .iter()
                .map(|(k, v)| (k.clone(), to_meta(v)))
                .collect();
        }
    }
    let mut unique_id = None;
    if let Some(value) = map.get("unique_id") {
        if !value.is_null() {
            unique_id = string(value, &loc(base, "unique_id"), &mut errors);
        }
    }
    if errors.is_empty() {
        Ok((observation, unique_id))
    } else {
        Err(errors)
    }
}

/// `POST /sessions`: `node_id` (required string), `metadata` (object), `ttl_seconds`
/// (integer or null), `config` (object or null).
pub struct CreateSession {
    pub node_id: String,
    pub metadata: Map<String, Value>,
    pub ttl_seconds: Option<i64>,
    pub config: Option<Map<String, Value>>,
}

pub fn create_session(body: Option<&Value>) -> Result<CreateSession, Vec<FieldError>> {
    let map = object(body)?;
    let mut errors = Vec::new();
    let body_loc = [json!("body")];
    let node_id = match map.get("node_id") {
        None => {
            errors.push(FieldError::new(
                "missing",
                &loc(&body_loc, "node_id"),
                "Field required",
                &Value::Object(map.clone()),
            ));
            None
        }
        Some(value) => string(value, &loc(&body_loc, "node_id"), &mut errors),
    };
    let metadata = match map.get("metadata") {
        None => Map::new(),
        Some(value) => dict(value, &loc(&body_loc, "metadata"), &mut errors)
            .cloned()
            .unwrap_or_default(),
    };
    let ttl_seconds = match map.get("ttl_seconds") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x.fract() == 0.0) => {
            n.as_f64().map(|x| x as i64)
        }
        Some(value @ Value::Number(_)) => {
            errors.push(FieldError::new(
                "int_from_float",
                &loc(&body_loc, "ttl_seconds"),
                "Input should be a valid integer, got a number with a fractional part",
                value,
            ));
            None
        }
        Some(value @ Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(FieldError::new(
                    "int_parsing",
                    &loc(&body_loc, "ttl_seconds"),
                    "Input should be a valid integer, unable to parse string as an integer",
                    value,
                ));
                None
            }
        },
        Some(value) => {
            errors.push(FieldError::new(
                "int_type",
                &loc(&body_loc, "ttl_seconds"),
                "Input should be a valid integer",
                value,
            ));
            None
        }
    };
    let ttl_seconds = match (ttl_seconds, map.get("ttl_seconds")) {
        (Some(ttl), Some(input)) => {
            match ttl_in_range(ttl, true, &loc(&body_loc, "ttl_seconds"), input) {
                Ok(ttl) => Some(ttl),
                Err(found) => {
                    errors.extend(found);
                    None
                }
            }
        }
        _ => None,
    };
    let config = match map.get("config") {
        None | Some(Value::Null) => None,
        Some(value) => dict(value, &loc(&body_loc, "config"), &mut errors).cloned(),
    };
    match node_id {
        Some(node_id) if errors.is_empty() => Ok(CreateSession {
            node_id,
            metadata,
            ttl_seconds,
            config,
        }),
        _ => Err(errors),
    }
}

/// `POST /sessions/{id}/observe-sequence`.
pub struct ObserveSequence {
    pub observations: Vec<(Observation, Option<String>)>,
    pub learn_after_each: bool,
    pub learn_at_end: bool,
    pub clear_stm_between: bool,
}

pub fn observe_sequence(body: Option<&Value>) -> Result<ObserveSequence, Vec<FieldError>> {
    let map = object(body)?;
    let mut errors = Vec::new();
    let body_loc = [json!("body")];
    let mut observations = Vec::new();
    match map.get("observations") {
        None => errors.push(FieldError::new(
            "missing",
            &loc(&body_loc, "observations"),
            "Field required",
            &Value::Object(map.clone()),
        )),
        Some(value) => {
            let at = loc(&body_loc, "observations");
            if let Some(items) = list(value, &at, &mut errors) {
                for (i, item) in items.iter().enumerate() {
                    let at_item = loc(&at, i);
                    match item {
                        Value::Object(obs) => match observation(obs, &at_item) {
                            Ok(parsed) => observations.push(parsed),
                            Err(found) => errors.extend(found),
                        },
                        other => errors.push(FieldError::new(
                            "model_attributes_type",
                            &at_item,
                            "Input should be a valid dictionary or object to extract fields from",
                            other,
                        )),
                    }
                }
            }
        }
    }
    let mut flag = |name: &str| match map.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            n.as_i64() == Some(1)
        }
        Some(Value::String(s))
            if ["true", "1", "yes", "on", "false", "0", "no", "off"]
                .contains(&s.to_lowercase().as_str()) =>
        {
            ["true", "1", "yes", "on"].contains(&s.to_lowercase().as_str())
        }
        Some(other) => {
            errors.push(FieldError::new(
                "bool_parsing",
                &loc(&body_loc, name),
                "Input should be a valid boolean, unable to interpret input",
                other,
            ));
            false
        }
    };
    let learn_after_each = flag("learn_after_each");
    let learn_at_end = flag("learn_at_end");
    let clear_stm_between = flag("clear_stm_between");
    if errors.is_empty() {
        Ok(ObserveSequence {
            observations,
            learn_after_each,
            learn_at_end,
            clear_stm_between,
        })
    } else {
        Err(errors)
    }
}
