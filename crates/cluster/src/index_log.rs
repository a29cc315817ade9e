//! API v1's knowledge base in PostgreSQL (cluster mode): the ordered log of scans every
//! node's index replays (`mneme_kb_scans`, one generation each), and the ingest lease (an
//! advisory lock) that lets one node at a time scan the knowledge dirs and append.
//!
//! A scan is appended in one statement, so a node killed mid-scan leaves the previous
//! generation intact; its lease goes with its connection, and the next node to take it scans
//! again against the log as it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use mneme_app::SharedIndex;
use mneme_kb::{Error, Result};

use crate::bridge::Bridge;

/// How long one statement may wait for PostgreSQL.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// The advisory lock of the ingest lease.
pub(crate) const INGEST_LEASE: i64 = 0x6d6e_656d_6503;

pub struct PgIndex {
    bridge: Arc<Bridge>,
    pool: Pool,
}

impl std::fmt::Debug for PgIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgIndex").finish_non_exhaustive()
    }
}

fn pg_error(what: &str, err: tokio_postgres::Error) -> Error {
    match err.as_db_error() {
        Some(db) if !crate::pg::retryable(db.code().code()) => Error::Io {
            context: format!("PostgreSQL {what}"),
            source: std::io::Error::other(err.to_string()),
        },
        _ => Error::Unavailable(format!("PostgreSQL {what}: {err}")),
    }
}

impl PgIndex {
    pub(crate) fn new(bridge: Arc<Bridge>, pool: Pool) -> PgIndex {
        PgIndex { bridge, pool }
    }

    fn run<T>(
        &self,
        what: &str,
        future: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.bridge.wait_for(OP_TIMEOUT, future).unwrap_or_else(|| {
            Err(Error::Unavailable(format!(
                "PostgreSQL {what}: no answer within {} s",
                OP_TIMEOUT.as_secs()
            )))
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Unavailable(format!("PostgreSQL connection: {e}")))
    }
}

/// An advisory lock held on a connection of its own until dropped.
pub(crate) struct AdvisoryGuard {
    pub(crate) bridge: Arc<Bridge>,
    pub(crate) client: Option<deadpool_postgres::Object>,
    pub(crate) key: i64,
}

impl Drop for AdvisoryGuard {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let key = self.key;
        let unlocked = self.bridge.wait_for(OP_TIMEOUT, async {
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await
                .is_ok()
        });
        if unlocked != Some(true) {
            // Closing the connection releases the lock; it must not go back to the pool.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl SharedIndex for PgIndex {
    fn lease(&self, wait: Duration) -> Result<Box<dyn Send>> {
        let client = self.run("ingest lease", self.client())?;
        let started = Instant::now();
        loop {
            let taken = self.run("ingest lease", async {
                let row = client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&INGEST_LEASE])
                    .await
                    .map_err(|e| pg_error("ingest lease", e))?;
                Ok(row.get::<_, bool>(0))
            })?;
            if taken {
                return Ok(Box::new(AdvisoryGuard {
                    bridge: self.bridge.clone(),
                    client: Some(client),
                    key: INGEST_LEASE,
                }));
            }
            if started.elapsed() >= wait {
                return Err(Error::Unavailable(format!(
                    "another node has been ingesting into the shared knowledge base for over {} s; try again when it is done",
                    wait.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn append(&self, scan: Vec<u8>) -> Result<u64> {
        self.run("scan append", async {
            let client = self.client().await?;
            let row = client
                .query_one(
                    "INSERT INTO mneme_kb_scans (generation, scan) \
                     SELECT coalesce(max(generation), 0) + 1, $1 FROM mneme_kb_scans \
                     RETURNING generation",
                    &[&scan],
                )
                .await
                .map_err(|e| pg_error("scan append", e))?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn generation(&self) -> Result<u64> {
        self.run("generation read", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("SELECT coalesce(max(generation), 0) FROM mneme_kb_scans")
                .await
                .map_err(|e| pg_error("generation read", e))?;
            let row = client
                .query_one(&stmt, &[])
                .await
                .map_err(|e| pg_error("generation read", e))?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn since(&self, after: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        self.run("scan log read", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT generation, scan FROM mneme_kb_scans WHERE generation > $1 \
                     ORDER BY generation",
                    &[&(after as i64)],
                )
                .await
                .map_err(|e| pg_error("scan log read", e))?;
            Ok(rows
                .into_iter()
                .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, Vec<u8>>(1)))
                .collect())
        })
    }
}
