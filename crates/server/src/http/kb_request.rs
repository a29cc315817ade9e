//! The request bodies of KnowledgeBeast's API as types: each field read by its pydantic rule
//! (`crate::lax::kb`), every problem reported in its 422 body (`{"error": "ValidationError",
//! "detail": "body.query: ...; body.limit: ..."}`), and the OpenAPI schemas generated from the
//! same declarations. [`KbBody`] is the extractor the handlers take.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mneme_app::projects::Scope;
use mneme_kb::{Alpha, Fusion, Ranking};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::lax::kb::{
    Choice, Dict, FilePath, Flag, Fraction, Int, List, Named, Present, ProjectName, QueryText,
    Required, Text,
};
use crate::lax::{self, Dialect, Problem, Problems};

/// A query's ranking, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Keyword,
    Terms,
    Vector,
    Hybrid,
}

impl Choice for Mode {
    const NAMES: &'static [(&'static str, Mode)] = &[
        ("keyword", Mode::Keyword),
        ("terms", Mode::Terms),
        ("vector", Mode::Vector),
        ("hybrid", Mode::Hybrid),
        ("bm25", Mode::Keyword),
        ("semantic", Mode::Vector),
    ];
    const DOCUMENTED: usize = 4;
    fn refusal(name: &str) -> String {
        format!("unknown mode {name:?}: use keyword, vector, hybrid or terms")
    }
}

/// How hybrid ranking fuses its two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusionName {
    Weighted,
    Rrf,
}

impl Choice for FusionName {
    const NAMES: &'static [(&'static str, FusionName)] =
        &[("weighted", FusionName::Weighted), ("rrf", FusionName::Rrf)];
    const DOCUMENTED: usize = 2;
    fn refusal(name: &str) -> String {
        format!("unknown fusion {name:?}: use weighted or rrf")
    }
}

impl Choice for Scope {
    const NAMES: &'static [(&'static str, Scope)] = &[
        ("read", Scope::Read),
        ("write", Scope::Write),
        ("admin", Scope::Admin),
    ];
    const DOCUMENTED: usize = 3;
    const MIN_CHARS: usize = 0;
    const MAX_CHARS: usize = usize::MAX;
    fn refusal(name: &str) -> String {
        format!("Invalid scope: {name}. Must be one of: read, write, admin")
    }
}

/// The ranking a query names: `keyword` (BM25), `terms` (KnowledgeBeast's distinct-term
/// count), `vector`, or `hybrid` (`alpha` in [0, 1], default the configured 0.7; `fusion`
/// `weighted` or `rrf`). Without a model, hybrid (also the default) is the keyword path, as
/// in KnowledgeBeast with vectors off; `vector` is an error of the engine.
pub fn ranking(
    mode: Option<Mode>,
    alpha: Option<f64>,
    fusion: Option<FusionName>,
    has_model: bool,
    default_alpha: f64,
) -> Ranking {
    let alpha = Alpha::new(alpha.unwrap_or(default_alpha) as f32).unwrap_or_default();
    let fusion = match fusion {
        None | Some(FusionName::Weighted) => Fusion::Weighted(alpha),
        Some(FusionName::Rrf) => Fusion::Rrf(alpha),
    };
    match mode {
        Some(Mode::Keyword) => Ranking::Bm25,
        Some(Mode::Terms) => Ranking::Terms,
        None | Some(Mode::Hybrid) if has_model => Ranking::Hybrid(fusion),
        None | Some(Mode::Hybrid) => Ranking::Bm25,
        Some(Mode::Vector) => Ranking::Vector,
    }
}

lax::request! {
    /// `POST /api/v1/query`: KnowledgeBeast's `QueryRequest`, with `limit` / `offset` honoured
    /// and mneme's ranking fields.
    pub struct QueryRequest {
        /// The search text.
        pub query: Lax<Required<QueryText>>,
        /// Whether the result cache may answer.
        pub use_cache: Lax<Flag> = true,
        /// The name KnowledgeBeast's web page sends for `limit`.
        pub n_results: Lax<Int<1, 100>> = 10,
        /// Results per answer (default `n_results`).
        pub limit: Lax<Int<1, 100>>,
        /// Results to skip.
        pub offset: Lax<Int<0, 1_000_000>> = 0,
        /// Accepted and ignored (no reranker).
        pub rerank: Lax<Flag> = false,
        /// Accepted and ignored.
        pub rerank_top_k: Lax<Int<1, 100>> = 50,
        /// Accepted and ignored.
        pub diversity: Lax<Fraction>,
        /// `content` is the whole document instead of the best passage.
        pub full_content: Lax<Flag> = false,
        /// The ranking: hybrid when a model is configured, keyword otherwise (`bm25` and
        /// `semantic` are accepted aliases).
        pub mode: Lax<Named<Mode>>,
        /// The weight of the vector side in hybrid ranking (default the configured 0.7).
        pub alpha: Lax<Fraction>,
        /// How hybrid ranking fuses its sides (default `weighted`).
        pub fusion: Lax<Named<FusionName>>,
    }
}

lax::request! {
    /// `POST /api/v1/query/paginated`: KnowledgeBeast's `PaginatedQueryRequest`.
    pub struct PaginatedQueryRequest {
        /// The search text.
        pub query: Lax<Required<QueryText>>,
        /// Whether the result cache may answer.
        pub use_cache: Lax<Flag> = true,
        /// The page, from 1.
        pub page: Lax<Int<1, 1_000_000>> = 1,
        /// Results per page.
        pub page_size: Lax<Int<1, 100>> = 10,
        /// Accepted and ignored (no reranker).
        pub rerank: Lax<Flag> = false,
        /// Accepted and ignored.
        pub rerank_top_k: Lax<Int<1, 100>> = 50,
        /// Accepted and ignored.
        pub diversity: Lax<Fraction>,
        /// `content` is the whole document instead of the best passage.
        pub full_content: Lax<Flag> = false,
        /// The ranking (see `QueryRequest`).
        pub mode: Lax<Named<Mode>>,
        /// The weight of the vector side in hybrid ranking.
        pub alpha: Lax<Fraction>,
        /// How hybrid ranking fuses its sides.
        pub fusion: Lax<Named<FusionName>>,
    }
}

lax::request! {
    /// `POST /api/v1/ingest`: one file inside the knowledge directories.
    pub struct IngestRequest {
        pub file_path: Lax<Required<FilePath<1, 4096>>>,
        /// Accepted and ignored.
        pub metadata: Lax<Dict>,
    }
}

lax::request! {
    /// `POST /api/v1/batch-ingest`: up to 100 files in one commit.
    pub struct BatchIngestRequest {
        pub file_paths: Lax<Present<List<FilePath<0, { usize::MAX }>, 1, 100>>>,
        /// Accepted and ignored.
        pub metadata: Lax<Dict>,
    }
}

lax::request! {
    /// `POST /api/v1/warm` (the body may be empty).
    pub struct WarmRequest {
        /// Rebuild the index from scratch instead of an incremental ingest.
        pub force_rebuild: Lax<Flag> = false,
        /// Another name of `force_rebuild`.
        pub rebuild: Lax<Flag> = false,
    }
}

lax::request! {
    /// `POST /api/v2/projects`: KnowledgeBeast's `ProjectCreate`.
    pub struct ProjectCreate {
        /// Letters, digits, spaces, `_` and `-`; surrounding spaces are removed.
        pub name: Lax<Required<ProjectName>>,
        pub description: Lax<Text<0, 500>>,
        pub embedding_model: Lax<Text<1, 200>>,
        pub metadata: Lax<Dict>,
    }
}

lax::request! {
    /// `PUT /api/v2/projects/{project_id}`: KnowledgeBeast's `ProjectUpdate` (absent fields
    /// keep their values).
    pub struct ProjectUpdate {
        pub name: Lax<ProjectName>,
        pub description: Lax<Text<0, 500>>,
        pub embedding_model: Lax<Text<1, 200>>,
        pub metadata: Lax<Dict>,
    }
}

lax::request! {
    /// `POST /api/v2/projects/{project_id}/query` and `/query/stream`: KnowledgeBeast's
    /// `ProjectQueryRequest` with the ranking fields of `QueryRequest`.
    pub struct ProjectQueryRequest {
        /// The ranking (see `QueryRequest`; hybrid when a model is configured).
        pub mode: Lax<Named<Mode>>,
        /// The weight of the vector side in hybrid ranking.
        pub alpha: Lax<Fraction>,
        /// How hybrid ranking fuses its sides.
        pub fusion: Lax<Named<FusionName>>,
        /// The search text.
        pub query: Lax<Required<QueryText>>,
        /// Whether the project's result cache may answer.
        pub use_cache: Lax<Flag> = true,
        /// Results per answer.
        pub limit: Lax<Int<1, 100>> = 10,
        /// Accepted and ignored (no reranker).
        pub rerank: Lax<Flag> = false,
        /// Accepted and ignored.
        pub rerank_top_k: Lax<Int<1, 100>> = 50,
        /// Accepted and ignored.
        pub diversity: Lax<Fraction>,
    }
}

lax::request! {
    /// `POST /api/v2/projects/{project_id}/ingest`: a file inside the knowledge directories, or
    /// inline markdown (`file_path` wins when both are given).
    pub struct ProjectIngestRequest {
        pub file_path: Lax<FilePath<1, 4096>>,
        pub content: Lax<Text<0, { usize::MAX }>>,
        /// Stored with the document; `name` names inline content.
        pub metadata: Lax<Dict>,
    }
}

lax::request! {
    /// `POST /api/v2/projects/{project_id}/api-keys`: KnowledgeBeast's `APIKeyCreate`.
    pub struct ApiKeyCreate {
        pub name: Lax<Required<Text<1, 100>>>,
        /// Default `["read", "write"]`.
        pub scopes: Lax<List<Named<Scope>, 1, 3>>,
        /// Days until the key expires (never when absent).
        pub expires_days: Lax<Int<1, 365>>,
    }
}

/// The archive format of the export routes.
#[derive(Debug)]
pub struct FormatName;

impl lax::Rule for FormatName {
    type Out = mneme_app::projects::archive::ArchiveFormat;
    fn read(value: Value, loc: &[Value], out: &mut Problems) -> Option<Self::Out> {
        let parsed = value
            .as_str()
            .and_then(mneme_app::projects::archive::ArchiveFormat::parse);
        if parsed.is_none() {
            out.push(Problem::new(
                "literal_error",
                loc,
                "Input should be 'zip' or 'json'",
                &value,
            ));
        }
        parsed
    }
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(["zip", "json"]))
            .default(Some(json!("zip")))
            .into()
    }
}

lax::request! {
    /// The query of the export routes.
    pub struct ExportQuery {
        /// `zip` (KnowledgeBeast's archive) or `json` (the same entries as one document).
        pub format: Lax<FormatName>,
    }
}

/// The answer to a body that cannot be read as a request.
fn refused(problem: Problem) -> Response {
    ApiError::invalid(Dialect::Kb, &problem.into()).into_response()
}

/// Reads a body as a `T`: a missing, malformed or non-object body, or a field its rule
/// refuses, is KnowledgeBeast's 422. With `empty_is_object`, an empty body reads as `{}`.
pub fn read_body<T: lax::Request>(bytes: &[u8], empty_is_object: bool) -> Result<T, Response> {
    let body = [json!("body")];
    let map = if bytes.iter().all(u8::is_ascii_whitespace) {
        if !empty_is_object {
            return Err(refused(Problem::new(
                "missing",
                &body,
                "Field required",
                &Value::Null,
            )));
        }
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(refused(Problem::new(
                    "model_attributes_type",
                    &body,
                    "Input should be a valid dictionary or object to extract fields from",
                    &other,
                )));
            }
            Err(err) => {
                return Err(refused(Problem::new(
                    "json_invalid",
                    &[json!("body"), json!(err.column().saturating_sub(1))],
                    format!("JSON decode error ({err})"),
                    &Value::Null,
                )));
            }
        }
    };
    let mut problems = Problems::default();
    let request = lax::parse::<T>(map, &body, &mut problems);
    if problems.is_empty() {
        Ok(request)
    } else {
        Err(ApiError::invalid(Dialect::Kb, &problems).into_response())
    }
}

/// Reads a query string as a `T` (KnowledgeBeast's 422 when a parameter is refused).
pub fn read_query<T: lax::Request>(query: Option<&str>) -> Result<T, ApiError> {
    lax::query::<T>(query.unwrap_or(""))
        .map_err(|problems| ApiError::invalid(Dialect::Kb, &problems))
}

/// The extractor of a KnowledgeBeast body: `KbBody<QueryRequest>`.
#[derive(Debug)]
pub struct KbBody<T>(pub T);

impl<S: Send + Sync, T: lax::Request> FromRequest<S> for KbBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        read_body::<T>(&bytes, false).map(KbBody)
    }
}

/// [`KbBody`] for the routes whose body may be empty (`/warm`).
#[derive(Debug)]
pub struct KbOptionalBody<T>(pub T);

impl<S: Send + Sync, T: lax::Request> FromRequest<S> for KbOptionalBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        read_body::<T>(&bytes, true).map(KbOptionalBody)
    }
}

/// A KnowledgeBeast `{"detail": ...}` answer (FastAPI's `HTTPException`).
pub fn detail(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::detail(status, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems<T: lax::Request + std::fmt::Debug>(body: Value) -> String {
        let response = read_body::<T>(body.to_string().as_bytes(), false).unwrap_err();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt
            .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .unwrap();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        value["detail"].as_str().unwrap().to_owned()
    }

    #[test]
    fn scopes_are_checked_one_by_one_at_their_index() {
        assert_eq!(
            problems::<ApiKeyCreate>(json!({"name": "k", "scopes": ["read", 7, "root"]})),
            "body.scopes.1: Input should be a valid string; body.scopes.2: Value error, Invalid scope: root. Must be one of: read, write, admin"
        );
    }

    #[test]
    fn unknown_modes_and_fusions_are_named() {
        assert_eq!(
            problems::<QueryRequest>(json!({"query": "x", "mode": "fuzzy", "fusion": "max"})),
            "body.mode: Value error, unknown mode \"fuzzy\": use keyword, vector, hybrid or terms; body.fusion: Value error, unknown fusion \"max\": use weighted or rrf"
        );
    }

    #[test]
    fn batch_paths_are_required_and_checked_each() {
        assert_eq!(
            problems::<BatchIngestRequest>(json!({"file_paths": null})),
            "body.file_paths: Field required"
        );
        assert_eq!(
            problems::<BatchIngestRequest>(json!({"file_paths": ["a.md", "../b.md", "c.exe"]})),
            "body.file_paths.1: Value error, Path traversal (..) is not allowed; body.file_paths.2: Value error, Unsupported file type: mneme ingests .md, .markdown, .txt, .html, .htm, .pdf, .docx and source code"
        );
    }

    #[test]
    fn malformed_bodies_get_the_body_location() {
        let response = read_body::<QueryRequest>(b"{\"query\": ", false).unwrap_err();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(read_body::<WarmRequest>(b"  ", true).is_ok());
        assert!(read_body::<WarmRequest>(b"", false).is_err());
    }
}
