//! Request bodies of KnowledgeBeast's API, checked the way its pydantic models check them, with
//! its 422 body (`{"error":"ValidationError", "detail":"body.query: ...; body.limit: ..."}`).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::common::json_response;

/// Problems found in one body: `(location, message)`.
#[derive(Debug, Default)]
pub struct Problems(Vec<(String, String)>);

impl Problems {
    pub fn push(&mut self, loc: impl Into<String>, msg: impl Into<String>) {
        self.0.push((loc.into(), msg.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn response(&self) -> Response {
        let detail: Vec<String> = self
            .0
            .iter()
            .map(|(loc, msg)| format!("{loc}: {msg}"))
            .collect();
        validation_error(&detail.join("; "))
    }
}

pub fn validation_error(detail: &str) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "error": "ValidationError",
            "message": "Request validation failed",
            "detail": detail,
            "status_code": 422,
        }),
    )
}

/// A `{"detail": ...}` answer (FastAPI's `HTTPException`).
pub fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(status, &json!({"detail": message.into()}))
}

/// Parses a JSON object body; a missing or malformed body is a 422.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(validation_error("body: Field required"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(validation_error(
            "body: Input should be a valid dictionary or object to extract fields from",
        )),
        Err(err) => Err(validation_error(&format!(
            "body.{}: JSON decode error ({err})",
            err.column().saturating_sub(1)
        ))),
    }
}

/// Reads fields out of a body, collecting every problem.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    pub problems: Problems,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Fields<'a> {
        Fields {
            map,
            problems: Problems::default(),
        }
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A string field with pydantic's length checks (`min`/`max` in characters).
    pub fn string(&mut self, name: &str, required: bool, min: usize, max: usize) -> Option<String> {
        let loc = format!("body.{name}");
        match self.map.get(name) {
            None if required => {
                self.problems.push(loc, "Field required");
                None
            }
            None => None,
            Some(Value::Null) if !required => None,
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min {
                    let unit = if min == 1 { "character" } else { "characters" };
                    self.problems
                        .push(loc, format!("String should have at least {min} {unit}"));
                    None
                } else if n > max {
                    self.problems
                        .push(loc, format!("String should have at most {max} characters"));
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(_) => {
                self.problems.push(loc, "Input should be a valid string");
                None
            }
        }
    }

    /// An integer in `[min, max]` (pydantic lax mode: integral floats and numeric strings pass).
    pub fn int(&mut self, name: &str, default: i64, min: i64, max: i64) -> i64 {
        let loc = format!("body.{name}");
        let Some(value) = self.present(name) else {
            return default;
        };
        let parsed = match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|x| x.fract() == 0.0 && x.abs() < 9e15)
                    .map(|x| x as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        };
        match parsed {
            None => {
                self.problems.push(loc, "Input should be a valid integer");
                default
            }
            Some(n) if n < min => {
                self.problems.push(
                    loc,
                    format!("Input should be greater than or equal to {min}"),
                );
                default
            }
            Some(n) if n > max => {
                self.problems
                    .push(loc, format!("Input should be less than or equal to {max}"));
                default
            }
            Some(n) => n,
        }
    }

    pub fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(value) = self.present(name) else {
            return default;
        };
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_i64() == Some(0) => Some(false),
            Value::Number(n) if n.as_i64() == Some(1) => Some(true),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
                "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.unwrap_or_else(|| {
            self.problems
                .push(format!("body.{name}"), "Input should be a valid boolean");
            default
        })
    }

    /// An optional number in `[min, max]`.
    pub fn float(&mut self, name: &str, min: f64, max: f64) -> Option<f64> {
        let value = self.present(name)?;
        let loc = format!("body.{name}");
        let parsed = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match parsed {
            Some(x) if !x.is_finite() => {
                self.problems.push(loc, "Input should be a finite number");
                None
            }
            Some(x) if x < min => {
                self.problems.push(
                    loc,
                    format!("Input should be greater than or equal to {min}"),
                );
                None
            }
            Some(x) if x > max => {
                self.problems
                    .push(loc, format!("Input should be less than or equal to {max}"));
                None
            }
            Some(x) => Some(x),
            None => {
                self.problems.push(loc, "Input should be a valid number");
                None
            }
        }
    }

    /// An optional JSON object.
    pub fn object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.present(name)? {
            Value::Object(map) => Some(map.clone()),
            _ => {
                self.problems
                    .push(format!("body.{name}"), "Input should be a valid dictionary");
                None
            }
        }
    }

    /// A list of strings with `min..=max` items.
    pub fn strings(
        &mut self,
        name: &str,
        required: bool,
        min: usize,
        max: usize,
    ) -> Option<Vec<String>> {
        let loc = format!("body.{name}");
        let Some(value) = self.present(name) else {
            if required {
                self.problems.push(loc, "Field required");
            }
            return None;
        };
        let Value::Array(items) = value else {
            self.problems.push(loc, "Input should be a valid list");
            return None;
        };
        if items.len() < min {
            self.problems.push(
                loc,
                format!(
                    "List should have at least {min} item after validation, not {}",
                    items.len()
                ),
            );
            return None;
        }
        if items.len() > max {
            self.problems.push(
                loc,
                format!(
                    "List should have at most {max} items after validation, not {}",
                    items.len()
                ),
            );
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                _ => self
                    .problems
                    .push(format!("{loc}.{i}"), "Input should be a valid string"),
            }
        }
        Some(out)
    }

    pub fn finish(self) -> Result<(), Response> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.response())
        }
    }
}

/// KnowledgeBeast's query validator: forbidden characters, then strip, then not empty.
pub fn check_query(fields: &mut Fields<'_>, name: &str) -> Option<String> {
    let raw = fields.string(name, true, 1, mneme_kb::MAX_QUERY_CHARS)?;
    match mneme_kb::validate_query(&raw) {
        Ok(stripped) => Some(stripped.to_owned()),
        Err(err) => {
            fields
                .problems
                .push(format!("body.{name}"), format!("Value error, {err}"));
            None
        }
    }
}

/// KnowledgeBeast's file-path validator: no `..`, a supported extension.
pub fn check_file_path(fields: &mut Fields<'_>, loc: &str, path: &str) -> bool {
    if path.split(['/', '\\']).any(|part| part == "..") {
        fields
            .problems
            .push(loc, "Value error, Path traversal (..) is not allowed");
        return false;
    }
    if mneme_kb::convert::Format::of_path(std::path::Path::new(path)).is_none() {
        fields.problems.push(
            loc,
            "Value error, Unsupported file type: mneme ingests .md, .markdown, .txt, .html, .htm, .pdf, .docx and source code",
        );
        return false;
    }
    true
}
