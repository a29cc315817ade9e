//! `ApiError`: every error answer of the server, in the wire shape of the API it belongs to,
//! built in this one place. The status of a library error comes from the table in
//! [`status`]; the shapes are the originals':
//!
//! - FastAPI's `HTTPException`, `{"detail": <text, object or list>}`: KATO's errors, its 422
//!   lists, and KnowledgeBeast's handlers' 4xx and 5xx;
//! - KnowledgeBeast's own, `{"error", "message", "detail", "status_code"}`: its 404s, 422s,
//!   413s and the 500 of a panic;
//! - KATO's session middleware, `{"error": {"code": "SESSION_NOT_FOUND", …}}`;
//! - `{"error": "<text>"}`: slowapi's 429, and `POST /mneme/seq`.
//!
//! A 503 whose cause may pass (the session store cannot be reached) carries `Retry-After`.

pub mod status;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mneme_app::projects::ProjectError;
use mneme_app::projects::archive::ArchiveError;
use mneme_app::sessions::SessionError;
use mneme_seq::error::Error as SeqError;
use serde_json::{Map, Value, json};

use crate::lax::{Dialect, Problems};

/// The body of an error answer.
#[derive(Clone, Debug, PartialEq)]
enum Body {
    /// `{"detail": …}`.
    Detail(Value),
    /// `{"error", "message", "detail", "status_code"}`.
    Kb {
        error: String,
        message: String,
        detail: Value,
    },
    /// `{"error": {"code": "SESSION_NOT_FOUND", "message", "session_id"}}`.
    SessionNotFound(String),
    /// `{"error": "<text>"}`.
    Error(String),
}

/// An error answer: status, body in one of the APIs' shapes, and the headers that go with it
/// (`WWW-Authenticate`, `Retry-After`, `Allow`).
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    /// Boxed: handlers return `Result<_, ApiError>` everywhere, and the error side stays small.
    body: Box<Body>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Whether `path` belongs to KnowledgeBeast's API (its error shapes) rather than KATO's.
pub fn is_kb_path(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api"
}

impl ApiError {
    fn new(status: StatusCode, body: Body) -> ApiError {
        ApiError {
            status,
            body: Box::new(body),
            headers: Vec::new(),
        }
    }

    /// FastAPI's `HTTPException`: `{"detail": detail}`.
    pub fn detail(status: StatusCode, detail: impl Into<Value>) -> ApiError {
        ApiError::new(status, Body::Detail(detail.into()))
    }

    /// KnowledgeBeast's shape: `{"error", "message", "detail", "status_code"}`.
    pub fn kb(
        status: StatusCode,
        error: impl Into<String>,
        message: impl Into<String>,
        detail: impl Into<Value>,
    ) -> ApiError {
        ApiError::new(
            status,
            Body::Kb {
                error: error.into(),
                message: message.into(),
                detail: detail.into(),
            },
        )
    }

    /// KnowledgeBeast's 404 (`detail` is `str(exc)`, null when it contains a `/`).
    pub fn kb_not_found(detail: &str) -> ApiError {
        let detail = if detail.contains('/') {
            Value::Null
        } else {
            json!(detail)
        };
        ApiError::kb(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested resource was not found",
            detail,
        )
    }

    /// The answer to a request that fails validation, in the dialect's 422 shape:
    /// KnowledgeBeast's `ValidationError` with the problems joined with `; `, or FastAPI's
    /// list of `{type, loc, msg, input}` (KATO).
    pub fn invalid(dialect: Dialect, problems: &Problems) -> ApiError {
        match dialect {
            Dialect::Kb => ApiError::kb(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ValidationError",
                "Request validation failed",
                problems.kb_text(),
            ),
            Dialect::Kato => {
                ApiError::detail(StatusCode::UNPROCESSABLE_ENTITY, problems.kato_list())
            }
        }
    }

    /// KATO's middleware answer for a session that does not exist or has expired.
    pub fn session_not_found(id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, Body::SessionNotFound(id.to_owned()))
    }

    /// `{"error": message}` (slowapi's 429, `POST /mneme/seq`).
    pub fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, Body::Error(message.into()))
    }

    /// FastAPI's answer to a known path asked with another method.
    pub fn method_not_allowed() -> ApiError {
        ApiError::detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
    }

    /// The router's answer to a path it does not know, in the shape of the API of `path`.
    pub fn not_found(path: &str) -> ApiError {
        if is_kb_path(path) {
            ApiError::kb_not_found("404: Not Found")
        } else {
            ApiError::detail(StatusCode::NOT_FOUND, "Not Found")
        }
    }

    /// An answer of the middleware, in the shape of the API of `path`: KnowledgeBeast's under
    /// `/api` (`error` is its error name, `RequestEntityTooLarge`), FastAPI's `detail`
    /// (`"<message>. <detail>"`) elsewhere.
    pub fn for_path(
        path: &str,
        status: StatusCode,
        error: &str,
        message: &str,
        detail: &str,
    ) -> ApiError {
        if is_kb_path(path) {
            ApiError::kb(status, error, message, detail)
        } else {
            ApiError::detail(status, format!("{message}. {detail}"))
        }
    }

    /// The 500 of a handler that panicked (KnowledgeBeast's unhandled-exception shape).
    pub fn panicked() -> ApiError {
        ApiError::kb(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "An unexpected error occurred",
            "Please contact support if this persists",
        )
    }

    /// A 500 with FastAPI's `detail` body.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, message.into())
    }

    /// KnowledgeBeast's handlers: a 404 in its not-found shape, a server error as
    /// `"<operation>: <error>"`, anything else as the error's own words.
    fn kb_handler(status: StatusCode, operation: &str, err: &dyn std::fmt::Display) -> ApiError {
        if status == StatusCode::NOT_FOUND {
            ApiError::kb_not_found(&format!("404: {err}"))
        } else if status.is_server_error() {
            ApiError::detail(status, format!("{operation}: {err}"))
        } else {
            ApiError::detail(status, err.to_string())
        }
    }

    /// A knowledge-base failure during `operation` (`Query failed`), with the table's status.
    pub fn from_kb(operation: &str, err: &mneme_kb::Error) -> ApiError {
        let answer = ApiError::kb_handler(status::kb(err.kind()), operation, err);
        if err.kind() == mneme_kb::ErrorKind::Unavailable {
            answer.with_header(
                header::RETRY_AFTER,
                HeaderValue::from(status::RETRY_AFTER_SECONDS),
            )
        } else {
            answer
        }
    }

    /// A project failure during `operation` (`Failed to create project`).
    pub fn from_project(operation: &str, err: &ProjectError) -> ApiError {
        let status = status::project(err);
        let answer = ApiError::kb_handler(status, operation, err);
        let passes = match err {
            ProjectError::Unavailable(_) => true,
            ProjectError::Kb(err) => err.kind() == mneme_kb::ErrorKind::Unavailable,
            _ => false,
        };
        if passes {
            answer.with_header(
                header::RETRY_AFTER,
                HeaderValue::from(status::RETRY_AFTER_SECONDS),
            )
        } else {
            answer
        }
    }

    /// A failed import: over a limit (413, KnowledgeBeast's too-large shape with the limit
    /// and how to raise it), not an archive (400), or a project failure.
    pub fn from_archive(err: &ArchiveError) -> ApiError {
        let status = status::archive(err);
        match err {
            ArchiveError::TooLarge { .. } => ApiError::kb(
                status,
                "RequestEntityTooLarge",
                "Import archive too large",
                err.to_string(),
            ),
            ArchiveError::Invalid(message) => {
                ApiError::detail(status, format!("Failed to import project: {message}"))
            }
            ArchiveError::Project(err) => ApiError::from_project("Failed to import project", err),
        }
    }

    /// A pattern-engine failure, as KATO words it.
    pub fn from_seq(err: &SeqError) -> ApiError {
        let status = status::seq(err.kind());
        let answer = match err {
            SeqError::Vector(v) => ApiError::detail(
                status,
                json!({
                    "error": "VectorDimensionError",
                    "message": format!("Vector dimension mismatch: expected {}, got {}", v.expected, v.actual),
                    "expected_dimension": v.expected,
                    "actual_dimension": v.actual,
                    "vector_name": v.vector_name,
                }),
            ),
            SeqError::EmptyStm
            | SeqError::Corrupt(_)
            | SeqError::Storage(_)
            | SeqError::Unavailable(_) => ApiError::detail(status, err.to_string()),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            answer.with_header(
                header::RETRY_AFTER,
                HeaderValue::from(status::RETRY_AFTER_SECONDS),
            )
        } else {
            answer
        }
    }

    /// A session failure, as KATO answers it: the middleware's 404 for an unknown session,
    /// the engine's errors in its words (`observation_index` added to a dimension error of an
    /// observe-sequence), configuration problems by key, and the store's 503 (with
    /// `Retry-After`) or 409.
    pub fn from_session(err: SessionError) -> ApiError {
        let (status, retry_after) = status::session(&err);
        let answer = match err {
            SessionError::NotFound { id, .. } => ApiError::session_not_found(&id),
            SessionError::Seq { source, position } => {
                let mut answer = ApiError::from_seq(&source);
                if let (Some(position), Body::Detail(Value::Object(detail))) =
                    (position, answer.body.as_mut())
                {
                    if detail.contains_key("expected_dimension") {
                        detail.insert("observation_index".to_owned(), json!(position));
                    }
                }
                answer
            }
            SessionError::Config(errors) => {
                let errors: Map<String, Value> = errors
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                ApiError::detail(
                    status,
                    json!({"error": "Configuration validation failed", "validation_errors": errors}),
                )
            }
            SessionError::Store(err) => ApiError::detail(status, err.to_string()),
        };
        match retry_after {
            Some(seconds) => answer.with_header(header::RETRY_AFTER, HeaderValue::from(seconds)),
            None => answer,
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers that go with the answer.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        match self.body.as_ref() {
            Body::Detail(detail) => json!({ "detail": detail }),
            Body::Kb {
                error,
                message,
                detail,
            } => json!({
                "error": error,
                "message": message,
                "detail": detail,
                "status_code": self.status.as_u16(),
            }),
            Body::SessionNotFound(id) => json!({"error": {
                "code": "SESSION_NOT_FOUND",
                "message": format!("Session {id} not found or expired"),
                "session_id": id,
            }}),
            Body::Error(message) => json!({ "error": message }),
        }
    }
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned())
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = crate::http::json_response(self.status, &self.body());
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> ApiError {
        ApiError::from_session(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mneme_app::sessions::StoreError;

    #[test]
    fn an_unavailable_session_store_answers_503_with_retry_after() {
        let answer = ApiError::from_session(SessionError::Store(StoreError::Unavailable(
            "redis: connection refused".into(),
        )));
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        let response = answer.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn a_lost_race_answers_409_without_retry_after() {
        let answer = ApiError::from_session(SessionError::Store(StoreError::Conflict("s".into())));
        assert_eq!(answer.status(), StatusCode::CONFLICT);
        assert!(answer.headers().is_empty());
        assert_eq!(
            answer.body(),
            json!({"detail": "session s was changed by another request meanwhile; retry the request"})
        );
    }

    #[test]
    fn knowledgebeast_404s_hide_paths() {
        assert_eq!(
            ApiError::kb_not_found("404: Collection not found: x").body()["detail"],
            "404: Collection not found: x"
        );
        assert_eq!(
            ApiError::kb_not_found("404: File not found: a/b.md").body()["detail"],
            Value::Null
        );
    }

    #[test]
    fn a_dimension_error_in_a_sequence_names_its_observation() {
        let err = SessionError::Seq {
            source: SeqError::Vector(mneme_seq::error::VectorError {
                expected: 2,
                actual: 3,
                vector_name: Some("VCTR|x".into()),
            }),
            position: Some(4),
        };
        let answer = ApiError::from_session(err);
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert_eq!(answer.body()["detail"]["observation_index"], 4);
        assert_eq!(answer.body()["detail"]["error"], "VectorDimensionError");
    }
}
