//! Request fields read the way FastAPI's pydantic v2 reads JSON in lax mode, for both
//! dialects the server speaks: KnowledgeBeast's and KATO's. Both originals are FastAPI
//! services; what differs is how they word a refusal (KnowledgeBeast joins `loc: msg` pairs
//! into one `ValidationError` text, KATO answers FastAPI's list of `{type, loc, msg, input}`)
//! and a few coercions of this server's history, kept because clients can see them:
//!
//! | input | KnowledgeBeast's fields | KATO's fields |
//! |---|---|---|
//! | integer from `"5"` | yes, surrounding spaces ignored | yes, surrounding spaces ignored |
//! | integer from `5.0` / `5.5` | `5` / refused | `5` / `int_from_float` |
//! | integer from `true` | `1` | `int_type` |
//! | boolean from `"yes"`, `"t"`, `1`, … ([`yes_no`]) | yes, surrounding spaces ignored | yes, spaces refused |
//! | number from `"2.5"` | yes | yes; `true` is 1 |
//! | `null` | the default, except where a field is required | the default only for optional scalars (`ttl_seconds`, `config`, `unique_id`, the sequence flags); refused for lists and objects |
//!
//! A request type is a serde struct whose fields are [`Lax`]`<Rule>`, declared with
//! [`request!`](crate::lax::request): deserialising reads every field by its rule (never
//! failing), [`Request::collect`] then gathers the problems in declaration order (pydantic's
//! order), with required fields checked, and the struct's OpenAPI schema comes from the same
//! rules (`utoipa::ToSchema`).

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, SchemaFormat};

pub use mneme_app::config::yes_no;

/// Which original's words a refusal takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Kb,
    Kato,
}

/// One thing wrong with a request: pydantic's error type, where (`["body", "strings", 1]`),
/// its message, the input it refused, and the constraint that failed (`{"gt": 0}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    pub ctx: Option<Value>,
}

impl Problem {
    pub fn new(
        kind: &'static str,
        loc: &[Value],
        msg: impl Into<String>,
        input: &Value,
    ) -> Problem {
        Problem {
            kind,
            loc: loc.to_vec(),
            msg: msg.into(),
            input: input.clone(),
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Problem {
        self.ctx = Some(ctx);
        self
    }

    /// FastAPI's entry (KATO).
    pub fn to_json(&self) -> Value {
        let mut out =
            json!({"type": self.kind, "loc": self.loc, "msg": self.msg, "input": self.input});
        if let Some(ctx) = &self.ctx {
            out["ctx"] = ctx.clone();
        }
        out
    }

    /// KnowledgeBeast's `loc: msg` (`body.file_paths.0: Input should be a valid string`).
    pub fn to_text(&self) -> String {
        let loc: Vec<String> = self
            .loc
            .iter()
            .map(|part| match part {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        format!("{}: {}", loc.join("."), self.msg)
    }
}

/// Every problem of one request, in the order pydantic reports them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Problems(Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn items(&self) -> &[Problem] {
        &self.0
    }

    /// KnowledgeBeast's `detail`: the problems joined with `; `.
    pub fn kb_text(&self) -> String {
        let texts: Vec<String> = self.0.iter().map(Problem::to_text).collect();
        texts.join("; ")
    }

    /// FastAPI's `detail` list (KATO).
    pub fn kato_list(&self) -> Value {
        Value::Array(self.0.iter().map(Problem::to_json).collect())
    }

    /// `Ok(())` when there are none.
    pub fn finish(self) -> Result<(), Problems> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Problems {
        Problems(vec![problem])
    }
}

fn at(loc: &[Value], part: impl Into<Value>) -> Vec<Value> {
    let mut out = loc.to_vec();
    out.push(part.into());
    out
}

/// How one field is read.
pub trait Rule {
    type Out;
    /// A request without the field is refused (`Field required`).
    const REQUIRED: bool = false;
    /// `null` reads as an absent field (pydantic's `Optional[...] = default`); otherwise the
    /// rule reads it (and mostly refuses it).
    const NULL_IS_ABSENT: bool = true;

    /// Reads a present value; problems go to `out` with locations below `loc` (the field's
    /// own location is `loc` itself). `None` without a problem reads as absent.
    fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out>;

    /// What the field accepts, for the OpenAPI document.
    fn schema() -> RefOr<Schema>;
}

/// A field read by rule `R`: absent (also a `null` that means absent), read, or refused with
/// its problems (relative to the field).
pub struct Lax<R: Rule> {
    state: State<R::Out>,
    rule: PhantomData<R>,
}

enum State<T> {
    Absent,
    Read(Option<T>),
    Refused(Problems),
}

impl<R: Rule> Default for Lax<R> {
    fn default() -> Self {
        Lax {
            state: State::Absent,
            rule: PhantomData,
        }
    }
}

impl<R: Rule> std::fmt::Debug for Lax<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Absent => "absent",
            State::Read(Some(_)) => "read",
            State::Read(None) => "null",
            State::Refused(_) => "refused",
        };
        f.write_str(state)
    }
}

impl<'de, R: Rule> Deserialize<'de> for Lax<R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Lax::read(value))
    }
}

impl<R: Rule> Lax<R> {
    /// Reads `value` by the rule.
    pub fn read(value: Value) -> Lax<R> {
        let state = if value.is_null() && R::NULL_IS_ABSENT {
            State::Absent
        } else {
            let mut problems = Problems::default();
            let out = R::read(value, &[], &mut problems);
            if problems.is_empty() {
                State::Read(out)
            } else {
                State::Refused(problems)
            }
        };
        Lax {
            state,
            rule: PhantomData,
        }
    }

    /// Moves this field's problems to `out`, located at `base` + `name`; a required field
    /// that is absent is `missing` (its input is the whole object, as FastAPI shows it).
    pub fn collect(
        &mut self,
        name: &str,
        base: &[Value],
        whole: Option<&Value>,
        out: &mut Problems,
    ) {
        let loc = at(base, name);
        match &mut self.state {
            State::Absent if R::REQUIRED => out.push(Problem::new(
                "missing",
                &loc,
                "Field required",
                whole.unwrap_or(&Value::Null),
            )),
            State::Refused(problems) => {
                for mut problem in std::mem::take(&mut problems.0) {
                    let mut full = loc.clone();
                    full.append(&mut problem.loc);
                    problem.loc = full;
                    out.push(problem);
                }
            }
            State::Absent | State::Read(_) => {}
        }
    }

    /// The value read; `None` when absent, `null` or refused.
    pub fn get(&self) -> Option<&R::Out> {
        match &self.state {
            State::Read(Some(value)) => Some(value),
            State::Absent | State::Read(None) | State::Refused(_) => None,
        }
    }

    pub fn into_inner(self) -> Option<R::Out> {
        match self.state {
            State::Read(value) => value,
            State::Absent | State::Refused(_) => None,
        }
    }

    /// Whether the request named the field with a value other than `null`.
    pub fn is_given(&self) -> bool {
        matches!(self.state, State::Read(Some(_)) | State::Refused(_))
    }
}

impl<R: Rule> Lax<R>
where
    R::Out: Clone,
{
    /// The value read, or `default`.
    pub fn or(&self, default: R::Out) -> R::Out {
        self.get().cloned().unwrap_or(default)
    }
}

/// A request type declared with [`request!`](crate::lax::request).
pub trait Request: Default + for<'de> Deserialize<'de> {
    /// Field names and whether each is required, in declaration order.
    const FIELDS: &'static [(&'static str, bool)];
    /// Moves every field's problems to `out`, in declaration order.
    fn collect(&mut self, base: &[Value], whole: Option<&Value>, out: &mut Problems);
}

/// Reads `object` as a `T`, its problems located below `base` (`["body"]`).
pub fn parse<T: Request>(object: Map<String, Value>, base: &[Value], out: &mut Problems) -> T {
    let missing = T::FIELDS
        .iter()
        .any(|(name, required)| *required && !object.contains_key(*name));
    let whole = missing.then(|| Value::Object(object.clone()));
    // Every field is a `Lax`, which reads any JSON value, and absent ones default.
    let mut request = serde_json::from_value::<T>(Value::Object(object)).unwrap_or_default();
    request.collect(base, whole.as_ref(), out);
    request
}

/// The object of a body (KATO: FastAPI's `missing` for none, `model_attributes_type` for
/// something else).
pub fn object(body: Option<Value>, base: &[Value]) -> Result<Map<String, Value>, Problems> {
    match body {
        None => Err(Problem::new("missing", base, "Field required", &Value::Null).into()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(Problem::new(
            "model_attributes_type",
            base,
            "Input should be a valid dictionary or object to extract fields from",
            &other,
        )
        .into()),
    }
}

/// Reads a whole body as a `T` (KATO's routes, whose body the extractor parsed already).
pub fn body<T: Request>(body: Option<Value>) -> Result<T, Problems> {
    let base = [json!("body")];
    let map = object(body, &base)?;
    let mut problems = Problems::default();
    let request = parse::<T>(map, &base, &mut problems);
    problems.finish().map(|()| request)
}

/// Reads a query string's parameters (decoded, the first of each name) as a `T`, located
/// below `query`.
pub fn query<T: Request>(raw: &str) -> Result<T, Problems> {
    let mut map = Map::new();
    for (name, value) in raw.split('&').filter_map(|pair| pair.split_once('=')) {
        let name = crate::kato::percent_decode(&name.replace('+', " "));
        if !map.contains_key(&name) {
            let value = crate::kato::percent_decode(&value.replace('+', " "));
            map.insert(name, Value::String(value));
        }
    }
    let mut problems = Problems::default();
    let request = parse::<T>(map, &[json!("query")], &mut problems);
    problems.finish().map(|()| request)
}

/// Declares a request type: a serde struct of [`Lax`] fields (doc comments become the
/// schema's descriptions) with its [`Request`] and `utoipa::ToSchema` implementations.
macro_rules! request {
    (
        $(#[doc = $doc:literal])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $fvis:vis $field:ident : Lax<$rule:ty> $(= $default:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(default)]
        $vis struct $name {
            $( $(#[doc = $fdoc])* $fvis $field: $crate::lax::Lax<$rule>, )*
        }

        impl $crate::lax::Request for $name {
            const FIELDS: &'static [(&'static str, bool)] =
                &[$((stringify!($field), <$rule as $crate::lax::Rule>::REQUIRED)),*];

            fn collect(
                &mut self,
                base: &[serde_json::Value],
                whole: Option<&serde_json::Value>,
                out: &mut $crate::lax::Problems,
            ) {
                $( self.$field.collect(stringify!($field), base, whole, out); )*
            }
        }

        #[allow(dead_code)]
        impl $name {
            $($(
                /// The field's value, or its default.
                $fvis fn $field(&self) -> <$rule as $crate::lax::Rule>::Out {
                    self.$field.or($default)
                }
            )?)*
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let mut object = utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Object)
                    .description($crate::lax::doc(&[$($doc),*]));
                $(
                    #[allow(unused_mut)]
                    let mut schema = <$rule as $crate::lax::Rule>::schema();
                    $( schema = $crate::lax::with_default(schema, serde_json::json!($default)); )?
                    object = object.property(
                        stringify!($field),
                        $crate::lax::described(schema, $crate::lax::doc(&[$($fdoc),*])),
                    );
                    if <$rule as $crate::lax::Rule>::REQUIRED {
                        object = object.required(stringify!($field));
                    }
                )*
                object.into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    };
}
pub(crate) use request;

/// A doc comment's lines as one description.
pub fn doc(lines: &[&str]) -> Option<String> {
    let text: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
    let text = text.join(" ").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// `schema` with a default value.
pub fn with_default(schema: RefOr<Schema>, default: Value) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.default = Some(default);
            RefOr::T(Schema::Object(object))
        }
        RefOr::T(Schema::Array(mut array)) => {
            array.default = Some(default);
            RefOr::T(Schema::Array(array))
        }
        schema => schema,
    }
}

/// `schema` with a description (an inline object schema gets it; a reference stays as is).
pub fn described(schema: RefOr<Schema>, description: Option<String>) -> RefOr<Schema> {
    match (schema, description) {
        (RefOr::T(Schema::Object(mut object)), Some(text)) => {
            object.description = Some(match object.description.take() {
                Some(own) => format!("{text} {own}"),
                None => text,
            });
            RefOr::T(Schema::Object(object))
        }
        (RefOr::T(Schema::Array(mut array)), Some(text)) => {
            array.description = Some(text);
            RefOr::T(Schema::Array(array))
        }
        (schema, _) => schema,
    }
}

fn integer_schema(min: Option<i64>, max: Option<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(min)
        .maximum(max)
}

fn string_schema(min: Option<usize>, max: Option<usize>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(min)
        .max_length(max)
}

fn list_schema(items: RefOr<Schema>, min: Option<usize>, max: Option<usize>) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(items)
        .min_items(min)
        .max_items(max)
        .into()
}

fn free_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(ObjectBuilder::new()))
}

/// What a JSON value reads as an integer, before ranges.
enum Integer {
    Int(i64),
    /// A number with a fractional part.
    Fraction,
    /// A string that does not parse as one.
    Unparsable,
    Bool(bool),
    /// Anything else.
    Other,
}

fn integer(value: &Value, bound: Option<f64>) -> Integer {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Integer::Int(i),
            None => match n.as_f64() {
                Some(x) if x.fract() == 0.0 && bound.is_none_or(|b| x.abs() < b) => {
                    Integer::Int(x as i64)
                }
                Some(x) if x.fract() == 0.0 => Integer::Other,
                _ => Integer::Fraction,
            },
        },
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_or(Integer::Unparsable, Integer::Int),
        Value::Bool(b) => Integer::Bool(*b),
        _ => Integer::Other,
    }
}

/// KnowledgeBeast's fields.
pub mod kb {
    use super::*;

    fn bad(kind: &'static str, loc: &[Value], msg: impl Into<String>, value: &Value) -> Problem {
        Problem::new(kind, loc, msg, value)
    }

    /// A string of `MIN..=MAX` characters.
    #[derive(Debug)]
    pub struct Text<const MIN: usize, const MAX: usize>;

    pub(crate) fn text(
        value: Value,
        min: usize,
        max: usize,
        loc: &[Value],
        out: &mut Problems,
    ) -> Option<String> {
        match value {
            Value::String(s) => {
                let n = s.chars().count();
                if n < min {
                    let unit = if min == 1 { "character" } else { "characters" };
                    out.push(bad(
                        "string_too_short",
                        loc,
                        format!("String should have at least {min} {unit}"),
                        &Value::String(s),
                    ));
                    None
                } else if n > max {
                    out.push(bad(
                        "string_too_long",
                        loc,
                        format!("String should have at most {max} characters"),
                        &Value::String(s),
                    ));
                    None
                } else {
                    Some(s)
                }
            }
            other => {
                out.push(bad(
                    "string_type",
                    loc,
                    "Input should be a valid string",
                    &other,
                ));
                None
            }
        }
    }

    impl<const MIN: usize, const MAX: usize> Rule for Text<MIN, MAX> {
        type Out = String;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<String> {
            text(value, MIN, MAX, loc, out)
        }
        fn schema() -> RefOr<Schema> {
            let max = (MAX < usize::MAX).then_some(MAX);
            string_schema((MIN > 0).then_some(MIN), max).into()
        }
    }

    /// A required field: refused when absent or `null`.
    #[derive(Debug)]
    pub struct Required<R>(PhantomData<R>);

    impl<R: Rule> Rule for Required<R> {
        type Out = R::Out;
        const REQUIRED: bool = true;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<R::Out> {
            R::read(value, loc, out)
        }
        fn schema() -> RefOr<Schema> {
            R::schema()
        }
    }

    /// A required field whose `null` counts as missing (`Field required`).
    #[derive(Debug)]
    pub struct Present<R>(PhantomData<R>);

    impl<R: Rule> Rule for Present<R> {
        type Out = R::Out;
        const REQUIRED: bool = true;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<R::Out> {
            R::read(value, loc, out)
        }
        fn schema() -> RefOr<Schema> {
            R::schema()
        }
    }

    /// An integer in `MIN..=MAX` (integral numbers, numeric strings and booleans pass).
    #[derive(Debug)]
    pub struct Int<const MIN: i64, const MAX: i64>;

    impl<const MIN: i64, const MAX: i64> Rule for Int<MIN, MAX> {
        type Out = i64;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<i64> {
            let n = match integer(&value, Some(9e15)) {
                Integer::Int(n) => n,
                Integer::Bool(b) => i64::from(b),
                Integer::Fraction | Integer::Unparsable | Integer::Other => {
                    out.push(bad(
                        "int_parsing",
                        loc,
                        "Input should be a valid integer",
                        &value,
                    ));
                    return None;
                }
            };
            if n < MIN {
                out.push(
                    bad(
                        "greater_than_equal",
                        loc,
                        format!("Input should be greater than or equal to {MIN}"),
                        &value,
                    )
                    .with_ctx(json!({ "ge": MIN })),
                );
                None
            } else if n > MAX {
                out.push(
                    bad(
                        "less_than_equal",
                        loc,
                        format!("Input should be less than or equal to {MAX}"),
                        &value,
                    )
                    .with_ctx(json!({ "le": MAX })),
                );
                None
            } else {
                Some(n)
            }
        }
        fn schema() -> RefOr<Schema> {
            integer_schema(Some(MIN), Some(MAX)).into()
        }
    }

    /// A boolean: `true`/`false`, `0`/`1`, or a [`yes_no`] word (spaces around it ignored).
    #[derive(Debug)]
    pub struct Flag;

    impl Rule for Flag {
        type Out = bool;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<bool> {
            let parsed = match &value {
                Value::Bool(b) => Some(*b),
                Value::Number(n) if n.as_i64() == Some(0) => Some(false),
                Value::Number(n) if n.as_i64() == Some(1) => Some(true),
                Value::String(s) => yes_no(s.trim()),
                _ => None,
            };
            if parsed.is_none() {
                out.push(bad(
                    "bool_parsing",
                    loc,
                    "Input should be a valid boolean",
                    &value,
                ));
            }
            parsed
        }
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new().schema_type(Type::Boolean).into()
        }
    }

    /// A finite number from 0 to 1.
    #[derive(Debug)]
    pub struct Fraction;

    impl Rule for Fraction {
        type Out = f64;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<f64> {
            let (min, max) = (0.0f64, 1.0f64);
            let parsed = match &value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            let problem = match parsed {
                Some(x) if !x.is_finite() => (
                    "finite_number",
                    "Input should be a finite number".to_owned(),
                    None,
                ),
                Some(x) if x < min => (
                    "greater_than_equal",
                    format!("Input should be greater than or equal to {min}"),
                    Some(json!({ "ge": min })),
                ),
                Some(x) if x > max => (
                    "less_than_equal",
                    format!("Input should be less than or equal to {max}"),
                    Some(json!({ "le": max })),
                ),
                Some(x) => return Some(x),
                None => (
                    "float_parsing",
                    "Input should be a valid number".to_owned(),
                    None,
                ),
            };
            let (kind, msg, ctx) = problem;
            let mut problem = bad(kind, loc, msg, &value);
            problem.ctx = ctx;
            out.push(problem);
            None
        }
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(1))
                .into()
        }
    }

    /// A JSON object, kept as it is.
    #[derive(Debug)]
    pub struct Dict;

    impl Rule for Dict {
        type Out = Map<String, Value>;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out> {
            match value {
                Value::Object(map) => Some(map),
                other => {
                    out.push(bad(
                        "dict_type",
                        loc,
                        "Input should be a valid dictionary",
                        &other,
                    ));
                    None
                }
            }
        }
        fn schema() -> RefOr<Schema> {
            free_object().into()
        }
    }

    /// A list of `MIN..=MAX` items, each read by `R`.
    #[derive(Debug)]
    pub struct List<R, const MIN: usize, const MAX: usize>(PhantomData<R>);

    impl<R: Rule, const MIN: usize, const MAX: usize> Rule for List<R, MIN, MAX> {
        type Out = Vec<R::Out>;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out> {
            let Value::Array(items) = value else {
                out.push(bad(
                    "list_type",
                    loc,
                    "Input should be a valid list",
                    &value,
                ));
                return None;
            };
            let n = items.len();
            if n < MIN {
                let unit = if MIN == 1 { "item" } else { "items" };
                out.push(bad(
                    "too_short",
                    loc,
                    format!("List should have at least {MIN} {unit} after validation, not {n}"),
                    &Value::Array(items),
                ));
                return None;
            }
            if n > MAX {
                out.push(bad(
                    "too_long",
                    loc,
                    format!("List should have at most {MAX} items after validation, not {n}"),
                    &Value::Array(items),
                ));
                return None;
            }
            let mut read = Vec::with_capacity(n);
            for (i, item) in items.into_iter().enumerate() {
                if let Some(item) = R::read(item, &at(loc, i), out) {
                    read.push(item);
                }
            }
            Some(read)
        }
        fn schema() -> RefOr<Schema> {
            list_schema(R::schema(), Some(MIN), Some(MAX))
        }
    }

    /// KnowledgeBeast's query text: 1 to 1,000 characters, none of `< > ; & | $` `` ` `` or
    /// line breaks, not blank; read stripped.
    #[derive(Debug)]
    pub struct QueryText;

    impl Rule for QueryText {
        type Out = String;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<String> {
            let raw = text(value, 1, mneme_kb::MAX_QUERY_CHARS, loc, out)?;
            match mneme_kb::validate_query(&raw) {
                Ok(stripped) => Some(stripped.to_owned()),
                Err(err) => {
                    out.push(bad(
                        "value_error",
                        loc,
                        format!("Value error, {err}"),
                        &Value::String(raw.clone()),
                    ));
                    None
                }
            }
        }
        fn schema() -> RefOr<Schema> {
            string_schema(Some(1), Some(mneme_kb::MAX_QUERY_CHARS))
                .pattern(Some(r"^[^<>;&|$`\n\r]*\S[^<>;&|$`\n\r]*$"))
                .description(Some("No < > ; & | $ ` or line breaks, not blank"))
                .into()
        }
    }

    /// A file to ingest: `MIN..=MAX` characters, no `..` segment, an extension mneme
    /// converts.
    #[derive(Debug)]
    pub struct FilePath<const MIN: usize, const MAX: usize>;

    impl<const MIN: usize, const MAX: usize> Rule for FilePath<MIN, MAX> {
        type Out = String;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<String> {
            let path = text(value, MIN, MAX, loc, out)?;
            if path.split(['/', '\\']).any(|part| part == "..") {
                out.push(bad(
                    "value_error",
                    loc,
                    "Value error, Path traversal (..) is not allowed",
                    &Value::String(path),
                ));
                return None;
            }
            if mneme_kb::convert::Format::of_path(std::path::Path::new(&path)).is_none() {
                out.push(bad(
                    "value_error",
                    loc,
                    "Value error, Unsupported file type: mneme ingests .md, .markdown, .txt, .html, .htm, .pdf, .docx and source code",
                    &Value::String(path),
                ));
                return None;
            }
            Some(path)
        }
        fn schema() -> RefOr<Schema> {
            let max = (MAX < usize::MAX).then_some(MAX);
            string_schema((MIN > 0).then_some(MIN), max)
                .description(Some(
                    "A path inside the knowledge directories, without `..`; .md, .markdown, .txt, .html, .htm, .pdf, .docx or source code",
                ))
                .into()
        }
    }

    /// A project name: stripped, 1 to 100 letters, digits, spaces, `_` and `-`.
    #[derive(Debug)]
    pub struct ProjectName;

    impl Rule for ProjectName {
        type Out = String;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<String> {
            let raw = text(value, 1, 100, loc, out)?;
            let name = raw.trim().to_owned();
            if name.is_empty() {
                out.push(bad(
                    "value_error",
                    loc,
                    "Value error, Project name cannot be empty or only whitespace",
                    &Value::String(raw),
                ));
                return None;
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ' ')
            {
                out.push(bad(
                    "string_pattern_mismatch",
                    loc,
                    "String should match pattern '^[a-zA-Z0-9_\\- ]+$'",
                    &Value::String(raw),
                ));
                return None;
            }
            Some(name)
        }
        fn schema() -> RefOr<Schema> {
            string_schema(Some(1), Some(100))
                .pattern(Some(r"^ *[a-zA-Z0-9_\-][a-zA-Z0-9_\- ]*$"))
                .into()
        }
    }

    /// A named choice of a closed set (`mode`, `fusion`, `scopes`): the names, then aliases.
    pub trait Choice: Sized + 'static {
        /// Accepted names (the documented ones first), each with its value.
        const NAMES: &'static [(&'static str, Self)];
        /// How many of `NAMES` the document lists (the rest are aliases).
        const DOCUMENTED: usize;
        /// The refusal of another name.
        fn refusal(name: &str) -> String;
        /// The length bounds checked first.
        const MIN_CHARS: usize = 1;
        const MAX_CHARS: usize = 20;
    }

    /// A field read as one of `C`'s names.
    #[derive(Debug)]
    pub struct Named<C>(PhantomData<C>);

    impl<C: Choice + Copy> Rule for Named<C> {
        type Out = C;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<C> {
            let name = text(value, C::MIN_CHARS, C::MAX_CHARS, loc, out)?;
            match C::NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, choice)) => Some(*choice),
                None => {
                    out.push(bad(
                        "value_error",
                        loc,
                        format!("Value error, {}", C::refusal(&name)),
                        &Value::String(name),
                    ));
                    None
                }
            }
        }
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(C::NAMES[..C::DOCUMENTED].iter().map(|(n, _)| *n)))
                .into()
        }
    }
}

/// KATO's fields.
pub mod kato {
    use super::*;

    /// A string (`string_type`); `null` refused.
    #[derive(Debug)]
    pub struct Str;

    impl Rule for Str {
        type Out = String;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<String> {
            match value {
                Value::String(s) => Some(s),
                other => {
                    out.push(Problem::new(
                        "string_type",
                        loc,
                        "Input should be a valid string",
                        &other,
                    ));
                    None
                }
            }
        }
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new().schema_type(Type::String).into()
        }
    }

    /// A string or `null` (absent).
    #[derive(Debug)]
    pub struct OptStr;

    impl Rule for OptStr {
        type Out = String;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<String> {
            Str::read(value, loc, out)
        }
        fn schema() -> RefOr<Schema> {
            Str::schema()
        }
    }

    /// A required field (`missing` when absent); `null` is read by `R`.
    #[derive(Debug)]
    pub struct Required<R>(PhantomData<R>);

    impl<R: Rule> Rule for Required<R> {
        type Out = R::Out;
        const REQUIRED: bool = true;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<R::Out> {
            R::read(value, loc, out)
        }
        fn schema() -> RefOr<Schema> {
            R::schema()
        }
    }

    /// A list (`list_type`), each item read by `R`; `null` refused.
    #[derive(Debug)]
    pub struct List<R>(PhantomData<R>);

    impl<R: Rule> Rule for List<R> {
        type Out = Vec<R::Out>;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out> {
            let Value::Array(items) = value else {
                out.push(Problem::new(
                    "list_type",
                    loc,
                    "Input should be a valid list",
                    &value,
                ));
                return None;
            };
            let mut read = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                if let Some(item) = R::read(item, &at(loc, i), out) {
                    read.push(item);
                }
            }
            Some(read)
        }
        fn schema() -> RefOr<Schema> {
            list_schema(R::schema(), None, None)
        }
    }

    /// A number (`float_parsing` for a string that is not one, `float_type` otherwise);
    /// `true` is 1.
    #[derive(Debug)]
    pub struct Float;

    impl Rule for Float {
        type Out = f64;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<f64> {
            match &value {
                Value::Number(n) => n.as_f64(),
                Value::Bool(b) => Some(f64::from(u8::from(*b))),
                Value::String(s) => match s.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() => Some(x),
                    _ => {
                        out.push(Problem::new(
                            "float_parsing",
                            loc,
                            "Input should be a valid number, unable to parse string as a number",
                            &value,
                        ));
                        None
                    }
                },
                _ => {
                    out.push(Problem::new(
                        "float_type",
                        loc,
                        "Input should be a valid number",
                        &value,
                    ));
                    None
                }
            }
        }
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new().schema_type(Type::Number).into()
        }
    }

    fn dict(value: Value, loc: &[Value], out: &mut Problems) -> Option<Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                out.push(Problem::new(
                    "dict_type",
                    loc,
                    "Input should be a valid dictionary",
                    &other,
                ));
                None
            }
        }
    }

    /// A JSON object of any values (`dict_type`); `null` refused.
    #[derive(Debug)]
    pub struct Dict;

    impl Rule for Dict {
        type Out = Map<String, Value>;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out> {
            dict(value, loc, out)
        }
        fn schema() -> RefOr<Schema> {
            free_object().into()
        }
    }

    /// A JSON object or `null` (absent).
    #[derive(Debug)]
    pub struct OptDict;

    impl Rule for OptDict {
        type Out = Map<String, Value>;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out> {
            dict(value, loc, out)
        }
        fn schema() -> RefOr<Schema> {
            free_object().into()
        }
    }

    /// An object of numbers (emotives), in the order given.
    #[derive(Debug)]
    pub struct Numbers;

    impl Rule for Numbers {
        type Out = Vec<(String, f64)>;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out> {
            let map = dict(value, loc, out)?;
            let mut read = Vec::with_capacity(map.len());
            for (key, x) in map {
                if let Some(x) = Float::read(x, &at(loc, key.as_str()), out) {
                    read.push((key, x));
                }
            }
            Some(read)
        }
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Number)))
                .into()
        }
    }

    /// A boolean: `true`/`false`, `0`/`1`, or a [`yes_no`] word; `null` is absent.
    #[derive(Debug)]
    pub struct Flag;

    impl Rule for Flag {
        type Out = bool;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<bool> {
            let parsed = match &value {
                Value::Bool(b) => Some(*b),
                Value::Number(n) if n.as_i64() == Some(0) => Some(false),
                Value::Number(n) if n.as_i64() == Some(1) => Some(true),
                Value::String(s) => yes_no(s),
                _ => None,
            };
            if parsed.is_none() {
                out.push(Problem::new(
                    "bool_parsing",
                    loc,
                    "Input should be a valid boolean, unable to interpret input",
                    &value,
                ));
            }
            parsed
        }
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .default(Some(json!(false)))
                .into()
        }
    }

    /// An integer: integral numbers and numeric strings (`int_from_float`, `int_parsing`,
    /// `int_type`), then `GE..=MAX` with pydantic's `greater_than(_equal)` and
    /// `less_than_equal`; `null` is absent.
    #[derive(Debug)]
    pub struct Int<const GE: i64, const MAX: i64>;

    impl<const GE: i64, const MAX: i64> Rule for Int<GE, MAX> {
        type Out = i64;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<i64> {
            let n = match integer(&value, None) {
                Integer::Int(n) => n,
                Integer::Fraction => {
                    out.push(Problem::new(
                        "int_from_float",
                        loc,
                        "Input should be a valid integer, got a number with a fractional part",
                        &value,
                    ));
                    return None;
                }
                Integer::Unparsable => {
                    out.push(Problem::new(
                        "int_parsing",
                        loc,
                        "Input should be a valid integer, unable to parse string as an integer",
                        &value,
                    ));
                    return None;
                }
                Integer::Bool(_) | Integer::Other => {
                    out.push(Problem::new(
                        "int_type",
                        loc,
                        "Input should be a valid integer",
                        &value,
                    ));
                    return None;
                }
            };
            if n < GE {
                // pydantic words `ge=1` on an integer as `gt=0`.
                let problem = if GE == 1 {
                    Problem::new(
                        "greater_than",
                        loc,
                        "Input should be greater than 0",
                        &value,
                    )
                    .with_ctx(json!({"gt": 0}))
                } else {
                    Problem::new(
                        "greater_than_equal",
                        loc,
                        format!("Input should be greater than or equal to {GE}"),
                        &value,
                    )
                    .with_ctx(json!({ "ge": GE }))
                };
                out.push(problem);
                return None;
            }
            if n > MAX {
                out.push(
                    Problem::new(
                        "less_than_equal",
                        loc,
                        format!("Input should be less than or equal to {MAX}"),
                        &value,
                    )
                    .with_ctx(json!({ "le": MAX })),
                );
                return None;
            }
            Some(n)
        }
        fn schema() -> RefOr<Schema> {
            let max = (MAX < i64::MAX).then_some(MAX);
            let min = (GE > i64::MIN).then_some(GE);
            integer_schema(min, max).into()
        }
    }

    /// A list of objects, each read as a `T` (`model_attributes_type` for other items).
    #[derive(Debug)]
    pub struct Objects<T>(PhantomData<T>);

    impl<T: Request + utoipa::ToSchema> Rule for Objects<T> {
        type Out = Vec<T>;
        const NULL_IS_ABSENT: bool = false;
        fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Vec<T>> {
            let Value::Array(items) = value else {
                out.push(Problem::new(
                    "list_type",
                    loc,
                    "Input should be a valid list",
                    &value,
                ));
                return None;
            };
            let mut read = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let item_loc = at(loc, i);
                match item {
                    Value::Object(map) => read.push(parse::<T>(map, &item_loc, out)),
                    other => out.push(Problem::new(
                        "model_attributes_type",
                        &item_loc,
                        "Input should be a valid dictionary or object to extract fields from",
                        &other,
                    )),
                }
            }
            Some(read)
        }
        fn schema() -> RefOr<Schema> {
            list_schema(
                RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name())),
                None,
                None,
            )
        }
    }
}

/// The name of a schema type, for references.
pub fn schema_name<T: utoipa::ToSchema>() -> Cow<'static, str> {
    T::name()
}

#[cfg(test)]
mod tests {
    use super::*;

    request! {
        /// A test body.
        struct Body {
            /// The query.
            query: Lax<kb::Required<kb::QueryText>>,
            limit: Lax<kb::Int<1, 100>>,
            flag: Lax<kb::Flag>,
            names: Lax<kb::List<kb::Text<1, 5>, 1, 3>>,
        }
    }

    fn read(body: Value) -> (Body, Problems) {
        let Value::Object(map) = body else { panic!() };
        let mut problems = Problems::default();
        let body = parse::<Body>(map, &[json!("body")], &mut problems);
        (body, problems)
    }

    #[test]
    fn knowledgebeast_fields_coerce_and_report_in_declaration_order() {
        let (body, problems) =
            read(json!({"flag": " Yes ", "limit": "7", "query": "  rivers  ", "names": ["a"]}));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(body.query.get().map(String::as_str), Some("rivers"));
        assert_eq!(body.limit.or(10), 7);
        assert_eq!(body.flag.get(), Some(&true));

        let (_, problems) =
            read(json!({"names": ["ok", 5, "toolong"], "flag": "maybe", "limit": 0}));
        assert_eq!(
            problems.kb_text(),
            "body.query: Field required; body.limit: Input should be greater than or equal to 1; \
             body.flag: Input should be a valid boolean; body.names.1: Input should be a valid string; \
             body.names.2: String should have at most 5 characters"
        );
    }

    #[test]
    fn null_is_absent_except_where_required() {
        let (body, problems) = read(json!({"query": "x", "limit": null}));
        assert!(problems.is_empty());
        assert_eq!(body.limit.or(10), 10);
        let (_, problems) = read(json!({"query": null}));
        assert_eq!(
            problems.kb_text(),
            "body.query: Input should be a valid string"
        );
    }

    request! {
        struct Item {
            strings: Lax<kato::List<kato::Str>>,
            ttl: Lax<kato::Int<1, 10>>,
        }
    }

    request! {
        struct Outer {
            node_id: Lax<kato::Required<kato::Str>>,
            items: Lax<kato::Objects<Item>>,
            learn: Lax<kato::Flag>,
        }
    }

    #[test]
    fn kato_fields_answer_fastapis_entries_with_nested_locations() {
        let problems = body::<Outer>(Some(json!({
            "items": [{"strings": ["a", 5], "ttl": "0"}, 3, {"ttl": 2.5}],
            "learn": "sometimes",
        })))
        .unwrap_err();
        assert_eq!(
            problems.kato_list(),
            json!([
                {"type": "missing", "loc": ["body", "node_id"], "msg": "Field required",
                 "input": {"items": [{"strings": ["a", 5], "ttl": "0"}, 3, {"ttl": 2.5}], "learn": "sometimes"}},
                {"type": "string_type", "loc": ["body", "items", 0, "strings", 1], "msg": "Input should be a valid string", "input": 5},
                {"type": "greater_than", "loc": ["body", "items", 0, "ttl"], "msg": "Input should be greater than 0", "input": "0", "ctx": {"gt": 0}},
                {"type": "model_attributes_type", "loc": ["body", "items", 1], "msg": "Input should be a valid dictionary or object to extract fields from", "input": 3},
                {"type": "int_from_float", "loc": ["body", "items", 2, "ttl"], "msg": "Input should be a valid integer, got a number with a fractional part", "input": 2.5},
                {"type": "bool_parsing", "loc": ["body", "learn"], "msg": "Input should be a valid boolean, unable to interpret input", "input": "sometimes"},
            ])
        );
        let ok = body::<Outer>(Some(json!({"node_id": "n", "learn": "T", "items": []}))).unwrap();
        assert_eq!(ok.learn.get(), Some(&true));
        assert!(body::<Outer>(None).is_err());
        assert_eq!(
            body::<Outer>(Some(json!([1]))).unwrap_err().kato_list()[0]["type"],
            "model_attributes_type"
        );
    }

    #[test]
    fn query_parameters_are_decoded_and_read_as_strings() {
        let item = query::<Item>("ttl=%207&ttl=9").unwrap();
        assert_eq!(item.ttl.get(), Some(&7));
        let problems = query::<Item>("ttl=abc").unwrap_err();
        assert_eq!(problems.kato_list()[0]["loc"], json!(["query", "ttl"]));
        assert_eq!(problems.kato_list()[0]["type"], "int_parsing");
    }

    #[test]
    fn the_schema_comes_from_the_rules() {
        let schema = serde_json::to_value(<Body as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["required"], json!(["query"]));
        assert_eq!(schema["properties"]["limit"]["minimum"], 1);
        assert_eq!(schema["properties"]["limit"]["maximum"], 100);
        assert_eq!(schema["properties"]["names"]["maxItems"], 3);
        assert_eq!(
            schema["properties"]["query"]["description"],
            "The query. No < > ; & | $ ` or line breaks, not blank"
        );
        assert_eq!(schema["description"], "A test body.");
    }
}
