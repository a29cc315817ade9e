//! KATO's answers as types (field order and number kinds as KATO writes them), so that the
//! OpenAPI document describes what the routes send. The predictions answer is written straight
//! into bytes (`json.rs`); [`PredictionsAnswer`] only describes it.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema::SchemaType};
use utoipa::{PartialSchema, ToSchema};

/// A session (`POST /sessions`, `GET /sessions/{session_id}`).
#[derive(Serialize, ToSchema)]
pub struct SessionAnswer {
    pub session_id: String,
    pub node_id: String,
    pub created_at: String,
    pub expires_at: String,
    /// The requested lifetime (3600 when none) on creation, the seconds left afterwards.
    pub ttl_seconds: u64,
    /// What the client gave at creation.
    pub metadata: Value,
    /// The effective configuration (session values over the server's).
    pub session_config: Value,
}

#[derive(Serialize, ToSchema)]
pub struct Count {
    pub active_session_count: usize,
}

/// A status with the session it concerns (`deleted`, `cleared`).
#[derive(Serialize, ToSchema)]
pub struct Done {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub session_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ClearedAll {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub session_id: String,
    #[schema(value_type = String)]
    pub scope: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Exists {
    pub exists: bool,
    pub expired: bool,
    pub session_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Stm {
    pub stm: Vec<Vec<String>>,
    pub session_id: String,
    pub length: usize,
}

#[derive(Serialize, ToSchema)]
pub struct LearnedAnswer {
    #[schema(value_type = String)]
    pub status: &'static str,
    /// `PTRN|<sha1>`, or empty when the STM held fewer than two symbols.
    pub pattern_name: String,
    pub session_id: String,
    /// Always null.
    pub processor_id: Option<String>,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConfigAnswer {
    pub session_id: String,
    /// The effective configuration.
    pub config: Value,
}

#[derive(Serialize, ToSchema)]
pub struct Updated {
    #[schema(value_type = String)]
    pub status: &'static str,
    #[schema(value_type = String)]
    pub message: &'static str,
    pub session_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Extended {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub session_id: String,
    pub ttl_seconds: u64,
}

#[derive(Serialize, ToSchema)]
pub struct FinalizedAnswer {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub patterns_processed: usize,
    pub time_ms: f64,
    pub session_id: String,
    pub node_id: String,
    pub message: String,
}

/// `POST /sessions/{session_id}/observe`.
#[derive(Serialize, ToSchema)]
pub struct ObservedAnswer {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub session_id: String,
    /// The node id (not its kb_id).
    pub processor_id: String,
    pub stm_length: usize,
    pub time: u64,
    pub unique_id: String,
    /// `PTRN|<sha1>` when auto-learn stored a pattern.
    pub auto_learned_pattern: Option<String>,
}

/// One item of an observe-sequence.
#[derive(Serialize, ToSchema)]
pub struct SequenceItemAnswer {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub sequence_position: usize,
    pub stm_length: usize,
    pub time: u64,
    pub unique_id: String,
    pub auto_learned_pattern: Option<String>,
}

/// `POST /sessions/{session_id}/observe-sequence`.
#[derive(Serialize, ToSchema)]
pub struct SequenceAnswer {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub processor_id: String,
    pub observations_processed: usize,
    pub initial_stm_length: usize,
    pub final_stm_length: usize,
    pub results: Vec<SequenceItemAnswer>,
    pub auto_learned_patterns: Vec<String>,
    pub final_learned_pattern: Option<String>,
    /// Whether the STM was cleared between observations.
    pub isolated: bool,
}

/// KATO's cognition data of a session.
#[derive(Serialize, ToSchema)]
pub struct Cognition {
    /// The observe-time predictions.
    pub predictions: Vec<Value>,
    pub emotives: Value,
    pub symbols: Vec<String>,
    #[schema(value_type = String)]
    pub command: &'static str,
    pub metadata: Value,
    pub path: Vec<String>,
    pub strings: Vec<String>,
    pub vectors: Vec<Value>,
    pub short_term_memory: Vec<Vec<String>>,
    pub time: u64,
}

#[derive(Serialize, ToSchema)]
pub struct CognitionAnswer {
    pub cognition_data: Cognition,
    pub session_id: String,
    pub node_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct PerceptAnswer {
    /// The last observation (`{}` before the first): strings, vectors, emotives, path, metadata.
    pub percept_data: Value,
    pub session_id: String,
    pub node_id: String,
}

/// `GET /pattern/{pattern_id}`: `pattern` is `{"status": "okay", "pattern": {...}}`, or
/// `{"status": "error", "message": ...}` for an unknown pattern.
#[derive(Serialize, ToSchema)]
pub struct PatternAnswer {
    pub pattern: Value,
    /// The node's kb_id.
    pub node_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct SymbolStatsAnswer {
    /// Per symbol: its frequency and pattern member frequency.
    pub symbols: Value,
    pub node_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct AffinitiesAnswer {
    /// Per symbol, per emotive: the running sum.
    pub affinities: Value,
    pub node_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct AffinityAnswer {
    pub symbol: String,
    pub affinity: Value,
    pub node_id: String,
}

/// A JSON number that may be null (a figure that is NaN or undefined).
fn number_or_null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
}

/// `GET /sessions/{session_id}/predictions` (written by `json::write_*_reply`).
pub struct PredictionsAnswer;

impl PartialSchema for PredictionsAnswer {
    fn schema() -> RefOr<Schema> {
        let strings = || ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String));
        let events = || ArrayBuilder::new().items(strings());
        let mut prediction = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "KATO's prediction: the pattern, how the STM matches it, and its metrics",
            ))
            .property("name", ObjectBuilder::new().schema_type(Type::String))
            .required("name")
            .property("pattern_data", events())
            .property("frequency", ObjectBuilder::new().schema_type(Type::Integer))
            .property("matches", strings())
            .property("missing", strings())
            .property("extras", strings())
            .property("past", ArrayBuilder::new().items(ObjectBuilder::new()))
            .property("present", ArrayBuilder::new().items(ObjectBuilder::new()))
            .property("future", ArrayBuilder::new().items(ObjectBuilder::new()))
            .property("emotives", ObjectBuilder::new());
        for figure in [
            "similarity",
            "evidence",
            "confidence",
            "snr",
            "potential",
            "entropy",
            "normalized_entropy",
        ] {
            prediction = prediction.property(figure, number_or_null());
        }
        let future = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("future", events())
            .property("aggregate_potential", number_or_null())
            .property(
                "supporting_patterns",
                ObjectBuilder::new().schema_type(Type::Integer),
            )
            .property("total_weighted_frequency", number_or_null());
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("predictions", ArrayBuilder::new().items(prediction))
            .property("future_potentials", ArrayBuilder::new().items(future))
            .property("session_id", ObjectBuilder::new().schema_type(Type::String))
            .property("processor_id", null())
            .property("count", ObjectBuilder::new().schema_type(Type::Integer))
            .property("time", null())
            .property("unique_id", null())
            .required("predictions")
            .required("future_potentials")
            .required("session_id")
            .required("count")
            .examples([json!({
                "predictions": [],
                "future_potentials": [],
                "session_id": "session-…",
                "processor_id": null,
                "count": 0,
                "time": null,
                "unique_id": null,
            })])
            .into()
    }
}

impl ToSchema for PredictionsAnswer {}
