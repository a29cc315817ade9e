//! One table from the libraries' errors to HTTP statuses, so that the same failure answers
//! the same status on every route (v1, v2, KATO). The matches are exhaustive and end in no
//! wildcard: a new kind in a library does not compile until it has a status here.

use axum::http::StatusCode;
use mneme_app::projects::ProjectError;
use mneme_app::projects::archive::ArchiveError;
use mneme_app::sessions::{SessionError, StoreError};
use mneme_kb::ErrorKind as KbKind;
use mneme_seq::error::ErrorKind as SeqKind;
use mneme_store::ErrorKind as StoreKind;

/// How long a client should wait before retrying an answer whose cause may pass (a session
/// store that cannot be reached), in seconds: the `Retry-After` of its 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The status of a knowledge-base failure.
pub fn kb(kind: KbKind) -> StatusCode {
    match kind {
        // The client's to fix: a query the rules refuse, or a vector query without a model.
        KbKind::InvalidQuery | KbKind::NoVectors => StatusCode::BAD_REQUEST,
        KbKind::MissingPath => StatusCode::NOT_FOUND,
        // Another writer holds the index (an ingest in progress): try again.
        KbKind::Busy => StatusCode::CONFLICT,
        KbKind::Corrupt | KbKind::Io | KbKind::Index | KbKind::Embedding => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        // Cluster mode: the shared index log (PostgreSQL) is out of reach; retry later.
        KbKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The status of a storage failure.
pub fn store(kind: StoreKind) -> StatusCode {
    match kind {
        StoreKind::Busy => StatusCode::CONFLICT,
        // A store that takes no more writes until a restart: unavailable, not a bug.
        StoreKind::Failed => StatusCode::SERVICE_UNAVAILABLE,
        StoreKind::Corrupt | StoreKind::Io => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of a pattern-engine failure.
pub fn seq(kind: SeqKind) -> StatusCode {
    match kind {
        // KATO's 400s: a vector of another dimension, a learn with nothing to learn.
        SeqKind::Vector | SeqKind::EmptyStm => StatusCode::BAD_REQUEST,
        SeqKind::Corrupt | SeqKind::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        // Cluster mode: the shared pattern store (PostgreSQL) is out of reach; retry later.
        SeqKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The status of a project failure.
pub fn project(err: &ProjectError) -> StatusCode {
    match err {
        ProjectError::NotFound(_) | ProjectError::KeyNotFound(_) => StatusCode::NOT_FOUND,
        ProjectError::NameTaken(_) => StatusCode::BAD_REQUEST,
        ProjectError::Kb(err) => kb(err.kind()),
        ProjectError::Store(err) => store(err.kind()),
        ProjectError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // Cluster mode: the shared registry (PostgreSQL) is out of reach; retry later.
        ProjectError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The status of a failed import or export.
pub fn archive(err: &ArchiveError) -> StatusCode {
    match err {
        ArchiveError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ArchiveError::Invalid(_) => StatusCode::BAD_REQUEST,
        ArchiveError::Project(err) => project(err),
    }
}

/// The status of a session failure, and the `Retry-After` seconds of one that may pass.
pub fn session(err: &SessionError) -> (StatusCode, Option<u32>) {
    match err {
        SessionError::NotFound { .. } => (StatusCode::NOT_FOUND, None),
        // (from_seq adds the Retry-After of an unavailable shared pattern store)
        SessionError::Seq { source, .. } => (seq(source.kind()), None),
        SessionError::Config(_) => (StatusCode::BAD_REQUEST, None),
        // Cluster mode: Redis or PostgreSQL down. The client may retry.
        SessionError::Store(StoreError::Unavailable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, Some(RETRY_AFTER_SECONDS))
        }
        // Another writer saved the session first; nothing of this request was saved.
        SessionError::Store(StoreError::Conflict(_)) => (StatusCode::CONFLICT, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_vectors_is_the_clients_to_fix_everywhere() {
        let err = ProjectError::Kb(mneme_kb::Error::NoVectors("no model".into()));
        assert_eq!(project(&err), StatusCode::BAD_REQUEST);
        assert_eq!(kb(KbKind::NoVectors), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_failed_store_is_unavailable() {
        let err = ProjectError::Store(mneme_store::Error::Failed("disk full".into()));
        assert_eq!(project(&err), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn an_unreachable_session_store_asks_for_a_retry_and_a_lost_race_is_a_conflict() {
        let down = SessionError::Store(StoreError::Unavailable("redis: connection refused".into()));
        assert_eq!(
            session(&down),
            (StatusCode::SERVICE_UNAVAILABLE, Some(RETRY_AFTER_SECONDS))
        );
        let raced = SessionError::Store(StoreError::Conflict("s1".into()));
        assert_eq!(session(&raced), (StatusCode::CONFLICT, None));
        let gone = SessionError::NotFound {
            id: "s1".into(),
            expired: true,
        };
        assert_eq!(session(&gone), (StatusCode::NOT_FOUND, None));
    }
}
