//! One table from the libraries' error kinds to HTTP statuses, so that the same failure
//! answers the same status on every route (v1, v2, KATO). The matches are exhaustive: a new
//! kind in a library does not compile until it has a status here.

use axum::http::StatusCode;
use mneme_app::projects::ProjectError;
use mneme_app::sessions::ErrorKind as SessionKind;
use mneme_kb::ErrorKind as KbKind;
use mneme_store::ErrorKind as StoreKind;

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

/// The status of a project failure.
pub fn project(err: &ProjectError) -> StatusCode {
    match err {
        ProjectError::NotFound(_) | ProjectError::KeyNotFound(_) => StatusCode::NOT_FOUND,
        ProjectError::NameTaken(_) => StatusCode::BAD_REQUEST,
        ProjectError::Kb(err) => kb(err.kind()),
        ProjectError::Store(err) => store(err.kind()),
        ProjectError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status of a session failure (KATO's routes shape the body). Not yet used: the KATO
/// routes still choose their statuses in `server::kato` (issue 12 moves them here).
#[allow(dead_code)]
pub fn session(kind: SessionKind) -> StatusCode {
    match kind {
        SessionKind::NotFound => StatusCode::NOT_FOUND,
        SessionKind::Engine | SessionKind::InvalidConfig => StatusCode::BAD_REQUEST,
        SessionKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        SessionKind::Conflict => StatusCode::CONFLICT,
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
}
