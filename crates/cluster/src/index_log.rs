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
use crate::port::PgPort;

/// How long one statement may wait for PostgreSQL.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the append of a scan (the bytes of every changed file) or a read of a page of
/// scans may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// The most scans one catch-up read returns; the replica advances page by page.
const PAGE: i64 = 8;

/// The advisory lock of the ingest lease.
pub(crate) const INGEST_LEASE: i64 = 0x6d6e_656d_6503;

pub struct PgIndex {
    port: PgPort,
}

/// A PostgreSQL failure as this port reports it ([`crate::port::pg_error`]).
fn pg_error(what: &str, err: tokio_postgres::Error) -> Error {
    crate::port::pg_error(what, err)
}

impl std::fmt::Debug for PgIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgIndex").finish_non_exhaustive()
    }
}

impl PgIndex {
    pub(crate) fn new(bridge: Arc<Bridge>, pool: Pool) -> PgIndex {
        PgIndex {
            port: PgPort { bridge, pool },
        }
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

/// Takes the advisory lock `key` on a connection of its own, trying every 100 ms until `wait`
/// has passed; `None` when another session holds it all that time. A connection whose try
/// did not answer (the lock may have been granted after all) is closed, never pooled, so a lock
/// cannot stay behind on an idle pooled connection.
pub(crate) fn advisory_lock(
    port: &PgPort,
    key: i64,
    wait: Duration,
) -> std::result::Result<Option<AdvisoryGuard>, String> {
    let bridge = &port.bridge;
    let client = bridge
        .wait_for(OP_TIMEOUT, port.pool.get())
        .ok_or_else(|| format!("no connection within {} s", OP_TIMEOUT.as_secs()))?
        .map_err(|e| format!("connection: {e}"))?;
    let started = Instant::now();
    loop {
        let tried = bridge.wait_for(OP_TIMEOUT, async {
            client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map(|row| row.get::<_, bool>(0))
        });
        match tried {
            Some(Ok(true)) => {
                return Ok(Some(AdvisoryGuard {
                    bridge: bridge.clone(),
                    client: Some(client),
                    key,
                }));
            }
            Some(Ok(false)) => {}
            Some(Err(err)) => {
                drop(deadpool_postgres::Object::take(client));
                return Err(err.to_string());
            }
            None => {
                drop(deadpool_postgres::Object::take(client));
                return Err(format!("no answer within {} s", OP_TIMEOUT.as_secs()));
            }
        }
        if started.elapsed() >= wait {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl SharedIndex for PgIndex {
    fn lease(&self, wait: Duration) -> Result<Box<dyn Send>> {
        match advisory_lock(&self.port, INGEST_LEASE, wait) {
            Ok(Some(guard)) => Ok(Box::new(guard)),
            Ok(None) => Err(Error::Unavailable(format!(
                "another node has been ingesting into the shared knowledge base for over {} s; try again when it is done",
                wait.as_secs()
            ))),
            Err(why) => Err(Error::Unavailable(format!(
                "PostgreSQL ingest lease: {why}"
            ))),
        }
    }

    fn append(&self, after: u64, scan: Vec<u8>) -> Result<u64> {
        let generation = after + 1;
        self.port.run(WRITE_TIMEOUT, "scan append", async {
            let client = self.port.client::<Error>().await?;
            client
                .execute(
                    "INSERT INTO mneme_kb_scans (generation, scan) VALUES ($1, $2)",
                    &[&(generation as i64), &scan],
                )
                .await
                .map_err(|e| {
                    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                        Error::Unavailable(format!(
                            "another node appended generation {generation} of the shared knowledge base meanwhile (this node's ingest lease was lost); try again"
                        ))
                    } else {
                        pg_error("scan append", e)
                    }
                })?;
            Ok(generation)
        })
    }

    fn generation(&self) -> Result<u64> {
        self.port.run(OP_TIMEOUT, "generation read", async {
            let client = self.port.client::<Error>().await?;
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
        self.port.run(WRITE_TIMEOUT, "scan log read", async {
            let client = self.port.client::<Error>().await?;
            let rows = client
                .query(
                    "SELECT generation, scan FROM mneme_kb_scans WHERE generation > $1 \
                     ORDER BY generation LIMIT $2",
                    &[&(after as i64), &PAGE],
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
