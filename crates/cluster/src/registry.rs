//! The projects' registry in PostgreSQL (cluster mode): the embedded registry's keys and
//! values in one table, and each project's documents as an ordered log that every node's
//! replica of the project index follows.
//!
//! A registry batch and its log changes commit in one transaction. A project's generation
//! is bumped under its row lock, so generations commit in order and a reader that reads the
//! generation first, then the documents up to it, sees a whole prefix of the log.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use mneme_app::projects::{LogOp, ProjectError, Result, SharedRegistry};
use mneme_kb::NewDocument;
use mneme_kb::convert::Format;
use mneme_store::{Op, WriteBatch};

use crate::bridge::Bridge;
use crate::port::PgPort;

/// How long a registry operation may wait for PostgreSQL.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write (an ingest's or an import's documents) or a read of a page of the log
/// may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// The most generations of a project's log one catch-up read covers.
const PAGE: u64 = 16;

/// The advisory lock that serialises registry writers across nodes.
const REGISTRY_LOCK: i64 = 0x6d6e_656d_6502;

/// How long a registry writer waits for another node's (a large import's write).
const LOCK_WAIT: Duration = Duration::from_secs(60);

pub struct PgRegistry {
    port: PgPort,
}

/// A PostgreSQL failure as this port reports it ([`crate::port::pg_error`]).
fn pg_error(what: &str, err: tokio_postgres::Error) -> ProjectError {
    crate::port::pg_error(what, err)
}

impl std::fmt::Debug for PgRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRegistry").finish_non_exhaustive()
    }
}

impl PgRegistry {
    pub(crate) fn new(bridge: Arc<Bridge>, pool: Pool) -> PgRegistry {
        PgRegistry {
            port: PgPort { bridge, pool },
        }
    }

    fn run<T>(
        &self,
        what: &str,
        future: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.port.run(OP_TIMEOUT, what, future)
    }
}

fn format_name(format: Format) -> String {
    serde_json::to_string(&format).expect("formats serialise")
}

fn format_of(name: &str) -> Result<Format> {
    serde_json::from_str(name)
        .map_err(|e| ProjectError::Corrupt(format!("document format {name:?}: {e}")))
}

impl SharedRegistry for PgRegistry {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.run("registry read", async {
            let client = self.port.client::<ProjectError>().await?;
            let stmt = client
                .prepare_cached("SELECT value FROM mneme_registry WHERE key = $1")
                .await
                .map_err(|e| pg_error("registry read", e))?;
            let row = client
                .query_opt(&stmt, &[&key])
                .await
                .map_err(|e| pg_error("registry read", e))?;
            Ok(row.map(|row| row.get::<_, Vec<u8>>(0)))
        })
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.run("registry scan", async {
            let client = self.port.client::<ProjectError>().await?;
            // Keys from `prefix` up to (excluding) the next prefix; bytea orders bytewise.
            let stmt = client
                .prepare_cached(
                    "SELECT key, value FROM mneme_registry \
                     WHERE key >= $1 AND substring(key from 1 for $2) = $1 ORDER BY key",
                )
                .await
                .map_err(|e| pg_error("registry scan", e))?;
            let rows = client
                .query(&stmt, &[&prefix, &(prefix.len() as i32)])
                .await
                .map_err(|e| pg_error("registry scan", e))?;
            Ok(rows
                .into_iter()
                .map(|row| (row.get::<_, Vec<u8>>(0), row.get::<_, Vec<u8>>(1)))
                .collect())
        })
    }

    fn write(&self, batch: WriteBatch, log: Vec<LogOp>) -> Result<()> {
        self.port.run(WRITE_TIMEOUT, "registry write", async {
            let mut client = self.port.client::<ProjectError>().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| pg_error("registry write", e))?;
            let err = |e| pg_error("registry write", e);
            for op in &batch.ops {
                match op {
                    Op::Put(key, value) => {
                        tx.execute(
                            "INSERT INTO mneme_registry (key, value) VALUES ($1, $2) \
                             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                            &[key, value],
                        )
                        .await
                        .map_err(err)?;
                    }
                    Op::Delete(key) => {
                        tx.execute("DELETE FROM mneme_registry WHERE key = $1", &[key])
                            .await
                            .map_err(err)?;
                    }
                }
            }
            for op in &log {
                match op {
                    LogOp::Append {
                        project_id,
                        requires,
                        documents,
                    } => {
                        // The project's record, share-locked: a delete waits for this
                        // transaction, or has removed the record and the append fails.
                        let present = tx
                            .query_opt(
                                "SELECT 1 FROM mneme_registry WHERE key = $1 FOR SHARE",
                                &[requires],
                            )
                            .await
                            .map_err(err)?;
                        if present.is_none() {
                            return Err(ProjectError::NotFound(project_id.clone()));
                        }
                        let row = tx
                            .query_one(
                                "INSERT INTO mneme_kb_generation (project_id, generation) \
                                 VALUES ($1, 1) ON CONFLICT (project_id) DO UPDATE \
                                 SET generation = mneme_kb_generation.generation + 1 \
                                 RETURNING generation",
                                &[project_id],
                            )
                            .await
                            .map_err(err)?;
                        let generation: i64 = row.get(0);
                        let insert = tx
                            .prepare(
                                "INSERT INTO mneme_kb_documents (project_id, generation, \
                                 position, doc_id, path, kb_dir, name, format, content) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                            )
                            .await
                            .map_err(err)?;
                        for (position, doc) in documents.iter().enumerate() {
                            tx.execute(
                                &insert,
                                &[
                                    project_id,
                                    &generation,
                                    &(position as i32),
                                    &doc.doc_id,
                                    &doc.path,
                                    &doc.kb_dir,
                                    &doc.name,
                                    &format_name(doc.format),
                                    &doc.bytes,
                                ],
                            )
                            .await
                            .map_err(err)?;
                        }
                    }
                    LogOp::Drop { project_id } => {
                        tx.execute(
                            "DELETE FROM mneme_kb_documents WHERE project_id = $1",
                            &[project_id],
                        )
                        .await
                        .map_err(err)?;
                        tx.execute(
                            "DELETE FROM mneme_kb_generation WHERE project_id = $1",
                            &[project_id],
                        )
                        .await
                        .map_err(err)?;
                    }
                }
            }
            tx.commit().await.map_err(err)
        })
    }

    fn lock(&self) -> Result<Box<dyn Send>> {
        match crate::index_log::advisory_lock(&self.port, REGISTRY_LOCK, LOCK_WAIT) {
            Ok(Some(guard)) => Ok(Box::new(guard)),
            Ok(None) => Err(ProjectError::Unavailable(format!(
                "another node has held the project registry for over {} s; try again",
                LOCK_WAIT.as_secs()
            ))),
            Err(why) => Err(ProjectError::Unavailable(format!(
                "PostgreSQL registry lock: {why}"
            ))),
        }
    }

    fn generation(&self, project_id: &str) -> Result<u64> {
        self.run("generation read", async {
            let client = self.port.client::<ProjectError>().await?;
            let stmt = client
                .prepare_cached("SELECT generation FROM mneme_kb_generation WHERE project_id = $1")
                .await
                .map_err(|e| pg_error("generation read", e))?;
            let row = client
                .query_opt(&stmt, &[&project_id])
                .await
                .map_err(|e| pg_error("generation read", e))?;
            Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
        })
    }

    fn documents_since(
        &self,
        project_id: &str,
        after: u64,
        latest: u64,
    ) -> Result<(Vec<NewDocument>, u64)> {
        let last = latest.min(after + PAGE);
        self.port.run(WRITE_TIMEOUT, "document log read", async {
            let client = self.port.client::<ProjectError>().await?;
            let rows = client
                .query(
                    "SELECT doc_id, path, kb_dir, name, format, content FROM mneme_kb_documents \
                     WHERE project_id = $1 AND generation > $2 AND generation <= $3 \
                     ORDER BY generation, position",
                    &[&project_id, &(after as i64), &(last as i64)],
                )
                .await
                .map_err(|e| pg_error("document log read", e))?;
            let mut documents = Vec::with_capacity(rows.len());
            for row in rows {
                documents.push(NewDocument {
                    doc_id: row.get(0),
                    path: row.get(1),
                    kb_dir: row.get(2),
                    name: row.get(3),
                    format: format_of(row.get(4))?,
                    bytes: row.get(5),
                });
            }
            Ok((documents, last))
        })
    }
}
