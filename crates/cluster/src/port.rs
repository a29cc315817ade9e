//! What the knowledge base's PostgreSQL ports ([`crate::PgRegistry`], [`crate::PgIndex`])
//! share: the pool and the cluster's runtime, one way to wait with a time limit, and
//! PostgreSQL failures as each port's error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;

use crate::bridge::Bridge;

/// How a port's error type says what PostgreSQL answered.
pub(crate) trait PortError: Sized {
    /// A failure that may pass by itself (503 with `Retry-After`).
    fn unavailable(message: String) -> Self;
    /// PostgreSQL refused the statement itself.
    fn statement(what: &str, err: &tokio_postgres::Error) -> Self;
}

impl PortError for mneme_app::projects::ProjectError {
    fn unavailable(message: String) -> Self {
        Self::Unavailable(message)
    }

    fn statement(what: &str, err: &tokio_postgres::Error) -> Self {
        Self::Store(mneme_store::Error::Io(format!("PostgreSQL {what}: {err}")))
    }
}

impl PortError for mneme_kb::Error {
    fn unavailable(message: String) -> Self {
        Self::Unavailable(message)
    }

    fn statement(what: &str, err: &tokio_postgres::Error) -> Self {
        Self::Io {
            context: format!("PostgreSQL {what}"),
            source: std::io::Error::other(err.to_string()),
        }
    }
}

/// A PostgreSQL failure as a port reports it: what may pass by itself (the connection lost,
/// the server restarting, a serialization failure) is unavailable, an error the server
/// reports about the statement is the statement's.
pub(crate) fn pg_error<E: PortError>(what: &str, err: tokio_postgres::Error) -> E {
    match err.as_db_error() {
        Some(db) if !crate::pg::retryable(db.code().code()) => E::statement(what, &err),
        _ => E::unavailable(format!("PostgreSQL {what}: {err}")),
    }
}

/// A port's connections: the pool, and the runtime that drives them.
pub(crate) struct PgPort {
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) pool: Pool,
}

impl PgPort {
    /// Runs `future` on the cluster's runtime; unavailable when it takes longer than `limit`.
    pub(crate) fn run<T, E: PortError>(
        &self,
        limit: Duration,
        what: &str,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.bridge.wait_for(limit, future).unwrap_or_else(|| {
            Err(E::unavailable(format!(
                "PostgreSQL {what}: no answer within {} s",
                limit.as_secs()
            )))
        })
    }

    pub(crate) async fn client<E: PortError>(&self) -> Result<deadpool_postgres::Object, E> {
        self.pool
            .get()
            .await
            .map_err(|e| E::unavailable(format!("PostgreSQL connection: {e}")))
    }
}
