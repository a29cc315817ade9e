//! The pattern engine's store of record in PostgreSQL: rows per node (kb_id) and the ordered
//! change log, and the replicas of this process kept current from it.
//!
//! A write ([`PgLog`]) is one transaction: it locks the node's `mneme_kb` row (writers of every
//! process queue there), reads the changes this replica missed, applies them, applies its own
//! change, and commits the rows it changed, the log entry, the new version and a notification
//! together. A replica is kept current by the notifications (LISTEN, see [`listen`]), by a
//! version poll that catches a lost notification, and before each request by
//! [`SharedNodes::refresh`]: one primary-key read of the node's version.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::try_join_all;
use mneme_app::patterns::{SharedNodes, SharedStatus};
use mneme_seq::error::{Error as SeqError, Result as SeqResult};
use mneme_seq::node::{
    AffinityRow, Change, ChangeLog, Changeset, Entry, FinalizedRow, LogWrite, Node, NodeRows,
    PatternRow,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::bridge::Bridge;

/// The channel the change notifications travel on.
pub(crate) const CHANNEL: &str = "mneme_changes";

/// How long an operation may wait for PostgreSQL before it answers "unavailable".
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the replicas' versions are polled (the fallback for a lost notification).
const POLL_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct PgShared {
    bridge: Arc<Bridge>,
    pool: Pool,
    url: String,
    /// Replicas followed by this process, by kb_id.
    followed: Mutex<HashMap<String, Weak<Node>>>,
    /// A refresh may skip the version read when the replica was current this recently.
    max_staleness: Duration,
    health: Mutex<Health>,
    /// Milliseconds since `epoch` at which the replicas were last known current.
    current_at_ms: AtomicU64,
    epoch: Instant,
    /// Per kb_id: when its replica was last confirmed current (bounded-staleness reads).
    confirmed: Mutex<HashMap<String, Instant>>,
}

#[derive(Default)]
struct Health {
    /// Why the store is unreachable, as last seen.
    store_down: Option<String>,
    /// Why the change feed (LISTEN) is down, as last seen.
    feed_down: Option<String>,
}

pub(crate) fn unavailable(what: &str, err: impl std::fmt::Display) -> SeqError {
    SeqError::Unavailable(format!("PostgreSQL {what}: {err}"))
}

/// A PostgreSQL failure as the engine reports it: whatever may pass by itself (the
/// connection lost, the server shutting down or starting, out of connections, a
/// serialization failure or deadlock) is `Unavailable` (503 with `Retry-After`); an error the
/// server reports about the statement itself is a storage error (500).
fn pg_error(what: &str, err: tokio_postgres::Error) -> SeqError {
    match err.as_db_error() {
        Some(db) if retryable(db.code().code()) => unavailable(what, err),
        Some(_) => SeqError::Storage(format!("PostgreSQL {what}: {err}")),
        None => unavailable(what, err),
    }
}

/// SQLSTATE classes and codes that say "try again later": 08 connection exception, 53
/// insufficient resources, 57 operator intervention (admin or crash shutdown, cannot connect
/// now), 40001 serialization failure, 40P01 deadlock.
pub(crate) fn retryable(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "53" | "57")) || matches!(code, "40001" | "40P01")
}

fn timed_out(what: &str) -> SeqError {
    SeqError::Unavailable(format!(
        "PostgreSQL {what}: no answer within {} s",
        OP_TIMEOUT.as_secs()
    ))
}

impl PgShared {
    pub(crate) fn connect(
        bridge: Arc<Bridge>,
        url: &str,
        pool_size: usize,
        max_staleness: Duration,
        node_name: &str,
    ) -> Result<Arc<PgShared>, String> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("MNEME_POSTGRES_URL {url:?} is not a PostgreSQL URL: {e}"))?;
        if config.get_application_name().is_none() {
            // pg_stat_activity names the node of each connection.
            config.application_name(node_name);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _runtime = bridge.handle().enter();
            Pool::builder(manager)
                .max_size(pool_size.max(2))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(Duration::from_secs(5)))
                .wait_timeout(Some(OP_TIMEOUT))
                .build()
                .map_err(|e| format!("building the PostgreSQL pool: {e}"))?
        };
        let migrated = bridge.wait(async {
            let mut client = pool
                .get()
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL at {}: {e}", redact(url)))?;
            crate::schema::migrate(&mut client).await
        })?;
        tracing::info!(
            "cluster mode: PostgreSQL at {} (schema version {migrated})",
            redact(url)
        );
        let shared = Arc::new(PgShared {
            bridge,
            pool,
            url: url.to_owned(),
            followed: Mutex::new(HashMap::new()),
            max_staleness,
            health: Mutex::new(Health::default()),
            current_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            confirmed: Mutex::new(HashMap::new()),
        });
        shared.mark_current();
        let weak = Arc::downgrade(&shared);
        shared.bridge.handle().spawn(listen(weak));
        Ok(shared)
    }

    pub(crate) fn pool(&self) -> Pool {
        self.pool.clone()
    }

    fn mark_current(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.current_at_ms.store(ms, Ordering::Release);
    }

    fn store_up(&self) {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .store_down = None;
    }

    fn store_down(&self, err: &SeqError) {
        if matches!(err, SeqError::Unavailable(_)) {
            let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
            if health.store_down.is_none() {
                tracing::warn!("cluster: {err}; serving the replicas as they are");
            }
            health.store_down = Some(err.to_string());
        }
    }

    fn set_feed(&self, down: Option<String>) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match (&health.feed_down, &down) {
            (None, Some(why)) => tracing::warn!("cluster: change feed down: {why}"),
            (Some(_), None) => tracing::info!("cluster: change feed listening again"),
            _ => {}
        }
        health.feed_down = down;
    }

    fn replicas(&self) -> Vec<(String, Arc<Node>)> {
        let mut followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        followed.retain(|_, node| node.strong_count() > 0);
        followed
            .iter()
            .filter_map(|(kb, node)| Some((kb.clone(), node.upgrade()?)))
            .collect()
    }

    fn replica(&self, kb_id: &str) -> Option<Arc<Node>> {
        let followed = self.followed.lock().unwrap_or_else(|p| p.into_inner());
        followed.get(kb_id).and_then(Weak::upgrade)
    }

    async fn client(&self) -> SeqResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| unavailable("connection", e))
    }

    /// The node's committed version (0 when nothing was ever committed).
    async fn version(&self, kb_id: &str) -> SeqResult<u64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT version FROM mneme_kb WHERE kb_id = $1")
            .await
            .map_err(|e| pg_error("version read", e))?;
        let row = client
            .query_opt(&stmt, &[&kb_id])
            .await
            .map_err(|e| pg_error("version read", e))?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    async fn load_rows(&self, kb_id: &str) -> SeqResult<NodeRows> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| pg_error("load", e))?;
        let load = |e| pg_error("load", e);
        let version = tx
            .query_opt("SELECT version FROM mneme_kb WHERE kb_id = $1", &[&kb_id])
            .await
            .map_err(load)?
            .map_or(0, |row| row.get::<_, i64>(0) as u64);
        let mut rows = NodeRows {
            version,
            ..NodeRows::default()
        };
        for row in tx
            .query(
                "SELECT name, position, events::text, frequency, emotives::text, metadata::text \
                 FROM mneme_patterns WHERE kb_id = $1 ORDER BY position",
                &[&kb_id],
            )
            .await
            .map_err(load)?
        {
            rows.patterns.push(pattern_from(&row)?);
        }
        for row in tx
            .query(
                "SELECT symbol, sums::text FROM mneme_affinity WHERE kb_id = $1 ORDER BY symbol",
                &[&kb_id],
            )
            .await
            .map_err(load)?
        {
            rows.affinity.push(AffinityRow {
                symbol: row.get(0),
                values: json_column(&row, 1, "affinity")?,
            });
        }
        for row in tx
            .query(
                "SELECT name, vector FROM mneme_vectors WHERE kb_id = $1 ORDER BY position",
                &[&kb_id],
            )
            .await
            .map_err(load)?
        {
            rows.vectors.push((row.get(0), row.get(1)));
        }
        for row in tx
            .query(
                "SELECT name, entropy, normalized_entropy, global_normalized_entropy, tf::text \
                 FROM mneme_finalized WHERE kb_id = $1 ORDER BY name",
                &[&kb_id],
            )
            .await
            .map_err(load)?
        {
            rows.finalized.push(FinalizedRow {
                name: row.get(0),
                entropy: row.get(1),
                normalized_entropy: row.get(2),
                global_normalized_entropy: row.get(3),
                tf: json_column(&row, 4, "finalize figures")?,
            });
        }
        tx.commit().await.map_err(load)?;
        Ok(rows)
    }

    /// Versions of the followed replicas, read in one query; applies what each missed.
    async fn poll(&self) -> SeqResult<()> {
        let replicas = self.replicas();
        if replicas.is_empty() {
            let client = self.client().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| pg_error("poll", e))?;
            return Ok(());
        }
        let kbs: Vec<String> = replicas.iter().map(|(kb, _)| kb.clone()).collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT kb_id, version FROM mneme_kb WHERE kb_id = ANY($1)",
                &[&kbs],
            )
            .await
            .map_err(|e| pg_error("poll", e))?;
        drop(client);
        let versions: HashMap<String, u64> = rows
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1) as u64))
            .collect();
        for (kb, node) in replicas {
            let to = versions.get(&kb).copied().unwrap_or(0);
            self.catch_up_arc(&node, to).await?;
        }
        Ok(())
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn json_column<T: serde::de::DeserializeOwned>(row: &Row, i: usize, what: &str) -> SeqResult<T> {
    let text: String = row.get(i);
    serde_json::from_str(&text)
        .map_err(|e| SeqError::Corrupt(format!("stored {what} {text:?} in PostgreSQL: {e}")))
}

fn pattern_from(row: &Row) -> SeqResult<PatternRow> {
    Ok(PatternRow {
        name: row.get(0),
        position: row.get::<_, i64>(1) as u64,
        events: json_column(row, 2, "pattern events")?,
        frequency: row.get::<_, i64>(3) as u64,
        emotives: json_column(row, 4, "pattern emotives")?,
        metadata: json_column(row, 5, "pattern metadata")?,
    })
}

async fn read_entries(
    client: &deadpool_postgres::Client,
    kb_id: &str,
    after: u64,
) -> SeqResult<Vec<Entry>> {
    let stmt = client
        .prepare_cached(
            "SELECT version, change FROM mneme_changes WHERE kb_id = $1 AND version > $2 \
             ORDER BY version",
        )
        .await
        .map_err(|e| pg_error("change log read", e))?;
    let rows = client
        .query(&stmt, &[&kb_id, &(after as i64)])
        .await
        .map_err(|e| pg_error("change log read", e))?;
    rows.iter()
        .map(|row| {
            let version = row.get::<_, i64>(0) as u64;
            let bytes: Vec<u8> = row.get(1);
            let change = postcard::from_bytes(&bytes)
                .map_err(|e| SeqError::Corrupt(format!("change {version} of node {kb_id}: {e}")))?;
            Ok(Entry { version, change })
        })
        .collect()
}

impl SharedNodes for PgNodes {
    fn load(&self, kb_id: &str) -> SeqResult<Arc<Node>> {
        let shared = &self.shared;
        let rows = shared
            .bridge
            .wait_for(OP_TIMEOUT, shared.load_rows(kb_id))
            .unwrap_or_else(|| Err(timed_out("load")));
        let rows = match rows {
            Ok(rows) => rows,
            Err(err) => {
                shared.store_down(&err);
                return Err(err);
            }
        };
        shared.store_up();
        let log: Arc<dyn ChangeLog> = Arc::new(PgLog {
            shared: shared.clone(),
        });
        let node = Arc::new(Node::replica(kb_id, &rows, log)?);
        shared
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kb_id.to_owned(), Arc::downgrade(&node));
        shared.confirm(kb_id);
        Ok(node)
    }

    fn refresh(&self, node: &Node) -> SeqResult<()> {
        let shared = &self.shared;
        if shared.recently_confirmed(node.kb_id()) {
            return Ok(());
        }
        let Some(arc) = shared.replica(node.kb_id()) else {
            return Ok(());
        };
        let result = shared
            .bridge
            .wait_for(OP_TIMEOUT, async {
                let to = shared.version(arc.kb_id()).await?;
                shared.catch_up_arc(&arc, to).await
            })
            .unwrap_or_else(|| Err(timed_out("version read")));
        match result {
            Ok(()) => {
                shared.store_up();
                shared.confirm(node.kb_id());
                Ok(())
            }
            // The store is out of reach: the replica answers as it is (and /health says so).
            Err(err @ SeqError::Unavailable(_)) => {
                shared.store_down(&err);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    fn status(&self) -> SharedStatus {
        let shared = &self.shared;
        let health = shared.health.lock().unwrap_or_else(|p| p.into_inner());
        let degraded = match (&health.store_down, &health.feed_down) {
            (Some(why), _) => Some(why.clone()),
            (None, Some(why)) => Some(format!("change feed: {why}")),
            (None, None) => None,
        };
        drop(health);
        let now = shared.epoch.elapsed().as_millis() as u64;
        let lag_ms = now.saturating_sub(shared.current_at_ms.load(Ordering::Acquire));
        SharedStatus {
            degraded,
            lag_ms,
            replicas: shared.replicas().len(),
        }
    }

    fn forget(&self, kb_id: &str, node: &Arc<Node>) {
        let mut followed = self
            .shared
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if followed
            .get(kb_id)
            .is_some_and(|held| std::ptr::eq(held.as_ptr(), Arc::as_ptr(node)))
        {
            followed.remove(kb_id);
        }
    }
}

impl PgShared {
    fn confirm(&self, kb_id: &str) {
        if self.max_staleness.is_zero() {
            return;
        }
        self.confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kb_id.to_owned(), Instant::now());
    }

    fn recently_confirmed(&self, kb_id: &str) -> bool {
        if self.max_staleness.is_zero() {
            return false;
        }
        self.confirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kb_id)
            .is_some_and(|at| at.elapsed() < self.max_staleness)
    }

    /// Brings `node` to the store's version `to` (or further), reading what it missed. The
    /// entries are applied on a blocking thread: applying takes the node's locks, which a
    /// writer may hold while it waits for this runtime.
    async fn catch_up_arc(&self, node: &Arc<Node>, to: u64) -> SeqResult<()> {
        let applied = node.applied();
        if applied >= to {
            return Ok(());
        }
        let client = self.client().await?;
        let entries = read_entries(&client, node.kb_id(), applied).await?;
        drop(client);
        if entries.is_empty() {
            return Ok(());
        }
        let node = node.clone();
        tokio::task::spawn_blocking(move || node.apply_entries(&entries))
            .await
            .map_err(|e| SeqError::Storage(format!("applying changes: {e}")))?
    }
}

/// The nodes of a PostgreSQL store (the pattern engine's [`SharedNodes`]).
pub struct PgNodes {
    pub(crate) shared: Arc<PgShared>,
}

/// The change log of the PostgreSQL store.
struct PgLog {
    shared: Arc<PgShared>,
}

impl ChangeLog for PgLog {
    fn begin(&self, kb_id: &str, applied: u64, key: Option<&str>) -> SeqResult<Box<dyn LogWrite>> {
        let shared = &self.shared;
        let result = shared
            .bridge
            .wait_for(OP_TIMEOUT, begin(shared, kb_id, applied, key))
            .unwrap_or_else(|| Err(timed_out("write")));
        match result {
            Ok(write) => {
                shared.store_up();
                Ok(Box::new(write))
            }
            Err(err) => {
                shared.store_down(&err);
                Err(err)
            }
        }
    }
}

async fn begin(
    shared: &Arc<PgShared>,
    kb_id: &str,
    applied: u64,
    key: Option<&str>,
) -> SeqResult<PgWrite> {
    let client = shared.client().await?;
    let err = |e| pg_error("write", e);
    let lock = client
        .prepare_cached("SELECT version FROM mneme_kb WHERE kb_id = $1 FOR UPDATE")
        .await
        .map_err(err)?;
    let params: [&(dyn ToSql + Sync); 1] = [&kb_id];
    let (_, row) = futures_util::try_join!(
        client.batch_execute("BEGIN"),
        client.query_opt(&lock, &params)
    )
    .map_err(err)?;
    let version = match row {
        Some(row) => row.get::<_, i64>(0) as u64,
        None => {
            client
                .execute(
                    "INSERT INTO mneme_kb (kb_id) VALUES ($1) ON CONFLICT (kb_id) DO NOTHING",
                    &[&kb_id],
                )
                .await
                .map_err(err)?;
            let row = client.query_one(&lock, &[&kb_id]).await.map_err(err)?;
            row.get::<_, i64>(0) as u64
        }
    };
    let mut write = PgWrite {
        client: Some(client),
        shared: shared.clone(),
        kb_id: kb_id.to_owned(),
        version,
        missed: Vec::new(),
        done_before: None,
        key: key.map(str::to_owned),
    };
    let client = write.client.as_ref().expect("just set");
    if version > applied {
        write.missed = read_entries(client, kb_id, applied).await?;
    }
    if let Some(key) = key {
        let row = client
            .query_opt(
                "SELECT version FROM mneme_changes WHERE kb_id = $1 AND request_key = $2",
                &[&kb_id, &key],
            )
            .await
            .map_err(err)?;
        write.done_before = row.map(|row| row.get::<_, i64>(0) as u64);
    }
    Ok(write)
}

struct PgWrite {
    /// The connection holding the transaction (and the node's lock); `None` once committed.
    client: Option<deadpool_postgres::Object>,
    shared: Arc<PgShared>,
    kb_id: String,
    /// The store's version when the lock was taken.
    version: u64,
    missed: Vec<Entry>,
    done_before: Option<u64>,
    key: Option<String>,
}

impl LogWrite for PgWrite {
    fn missed(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.missed)
    }

    fn done_before(&self) -> Option<u64> {
        self.done_before
    }

    fn commit(mut self: Box<Self>, change: &Change, rows: Changeset) -> SeqResult<u64> {
        let client = self.client.take().expect("a write commits once");
        let version = self.version + 1;
        let shared = self.shared.clone();
        let result = shared
            .bridge
            .wait_for(
                OP_TIMEOUT,
                commit(
                    &client,
                    &self.kb_id,
                    version,
                    change,
                    &rows,
                    self.key.as_deref(),
                ),
            )
            .unwrap_or_else(|| Err(timed_out("commit")));
        match result {
            Ok(()) => {
                shared.store_up();
                shared.mark_current();
                Ok(version)
            }
            Err(err) => {
                // The connection is in an unknown state (maybe mid-transaction): not reused.
                let _ = deadpool_postgres::Object::take(client);
                shared.store_down(&err);
                Err(err)
            }
        }
    }
}

impl Drop for PgWrite {
    fn drop(&mut self) {
        // Dropped without a commit (the change failed, or an earlier try had made it): the
        // transaction is rolled back before the connection goes back to the pool.
        if let Some(client) = self.client.take() {
            self.shared.bridge.handle().spawn(async move {
                if client.batch_execute("ROLLBACK").await.is_err() {
                    let _ = deadpool_postgres::Object::take(client);
                }
            });
        }
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

async fn commit(
    client: &deadpool_postgres::Client,
    kb_id: &str,
    version: u64,
    change: &Change,
    rows: &Changeset,
    key: Option<&str>,
) -> SeqResult<()> {
    type Params<'a> = Vec<Box<dyn ToSql + Sync + Send + 'a>>;
    let mut statements: Vec<(&'static str, Params<'_>)> = Vec::new();
    let kb = kb_id.to_owned();
    if rows.cleared {
        for sql in [
            "DELETE FROM mneme_patterns WHERE kb_id = $1",
            "DELETE FROM mneme_symbols WHERE kb_id = $1",
            "DELETE FROM mneme_affinity WHERE kb_id = $1",
            "DELETE FROM mneme_vectors WHERE kb_id = $1",
            "DELETE FROM mneme_finalized WHERE kb_id = $1",
        ] {
            statements.push((sql, vec![Box::new(kb.clone())]));
        }
    }
    if !rows.patterns.is_empty() {
        let p = &rows.patterns;
        statements.push((
            "INSERT INTO mneme_patterns \
             (kb_id, name, position, events, length, frequency, emotives, metadata) \
             SELECT $1, n, p, e::json, l, f, em::json, md::json \
             FROM unnest($2::text[], $3::int8[], $4::text[], $5::int4[], $6::int8[], \
                         $7::text[], $8::text[]) AS t(n, p, e, l, f, em, md) \
             ON CONFLICT (kb_id, name) DO UPDATE SET frequency = EXCLUDED.frequency, \
             emotives = EXCLUDED.emotives, metadata = EXCLUDED.metadata",
            vec![
                Box::new(kb.clone()),
                Box::new(p.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
                Box::new(p.iter().map(|r| r.position as i64).collect::<Vec<_>>()),
                Box::new(p.iter().map(|r| json(&r.events)).collect::<Vec<_>>()),
                Box::new(
                    p.iter()
                        .map(|r| r.events.iter().map(Vec::len).sum::<usize>() as i32)
                        .collect::<Vec<_>>(),
                ),
                Box::new(p.iter().map(|r| r.frequency as i64).collect::<Vec<_>>()),
                Box::new(p.iter().map(|r| json(&r.emotives)).collect::<Vec<_>>()),
                Box::new(p.iter().map(|r| json(&r.metadata)).collect::<Vec<_>>()),
            ],
        ));
    }
    if !rows.symbols.is_empty() {
        let s = &rows.symbols;
        statements.push((
            "INSERT INTO mneme_symbols (kb_id, name, frequency, pattern_member_frequency) \
             SELECT $1, n, f, m FROM unnest($2::text[], $3::int8[], $4::int8[]) AS t(n, f, m) \
             ON CONFLICT (kb_id, name) DO UPDATE SET frequency = EXCLUDED.frequency, \
             pattern_member_frequency = EXCLUDED.pattern_member_frequency",
            vec![
                Box::new(kb.clone()),
                Box::new(s.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
                Box::new(s.iter().map(|r| r.frequency as i64).collect::<Vec<_>>()),
                Box::new(
                    s.iter()
                        .map(|r| r.pattern_member_frequency as i64)
                        .collect::<Vec<_>>(),
                ),
            ],
        ));
    }
    if !rows.affinity.is_empty() {
        let a = &rows.affinity;
        statements.push((
            "INSERT INTO mneme_affinity (kb_id, symbol, sums) \
             SELECT $1, s, v::json FROM unnest($2::text[], $3::text[]) AS t(s, v) \
             ON CONFLICT (kb_id, symbol) DO UPDATE SET sums = EXCLUDED.sums",
            vec![
                Box::new(kb.clone()),
                Box::new(a.iter().map(|r| r.symbol.clone()).collect::<Vec<_>>()),
                Box::new(a.iter().map(|r| json(&r.values)).collect::<Vec<_>>()),
            ],
        ));
    }
    for (name, vector) in &rows.vectors {
        statements.push((
            "INSERT INTO mneme_vectors (kb_id, name, vector) VALUES ($1, $2, $3) \
             ON CONFLICT (kb_id, name) DO NOTHING",
            vec![
                Box::new(kb.clone()),
                Box::new(name.clone()),
                Box::new(vector.clone()),
            ],
        ));
    }
    if let Some(finalized) = &rows.finalized {
        statements.push((
            "DELETE FROM mneme_finalized WHERE kb_id = $1",
            vec![Box::new(kb.clone())],
        ));
        if !finalized.is_empty() {
            statements.push((
                "INSERT INTO mneme_finalized \
                 (kb_id, name, entropy, normalized_entropy, global_normalized_entropy, tf) \
                 SELECT $1, n, e, ne, g, tf::json \
                 FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::text[]) \
                 AS t(n, e, ne, g, tf)",
                vec![
                    Box::new(kb.clone()),
                    Box::new(finalized.iter().map(|r| r.name.clone()).collect::<Vec<_>>()),
                    Box::new(finalized.iter().map(|r| r.entropy).collect::<Vec<_>>()),
                    Box::new(
                        finalized
                            .iter()
                            .map(|r| r.normalized_entropy)
                            .collect::<Vec<_>>(),
                    ),
                    Box::new(
                        finalized
                            .iter()
                            .map(|r| r.global_normalized_entropy)
                            .collect::<Vec<_>>(),
                    ),
                    Box::new(finalized.iter().map(|r| json(&r.tf)).collect::<Vec<_>>()),
                ],
            ));
        }
    }
    let encoded = postcard::to_allocvec(change)
        .map_err(|e| SeqError::Storage(format!("encoding change {version}: {e}")))?;
    statements.push((
        "INSERT INTO mneme_changes (kb_id, version, change, request_key) VALUES ($1, $2, $3, $4)",
        vec![
            Box::new(kb.clone()),
            Box::new(version as i64),
            Box::new(encoded),
            Box::new(key.map(str::to_owned)),
        ],
    ));
    let t = rows.totals;
    statements.push((
        "UPDATE mneme_kb SET version = $2, patterns = $3, distinct_symbols = $4, \
         total_symbols_in_patterns = $5, total_unique_patterns = $6, vectors = $7, \
         updated_at = now() WHERE kb_id = $1",
        vec![
            Box::new(kb.clone()),
            Box::new(version as i64),
            Box::new(t.patterns as i64),
            Box::new(t.distinct_symbols as i64),
            Box::new(t.total_symbols_in_patterns as i64),
            Box::new(t.total_unique_patterns as i64),
            Box::new(t.vectors as i64),
        ],
    ));
    statements.push((
        "SELECT pg_notify('mneme_changes', $1)",
        vec![Box::new(format!("{version}:{kb_id}"))],
    ));
    let err = |e| pg_error("commit", e);
    // Prepared once per connection, then sent together: the server runs them in order.
    let mut prepared = Vec::with_capacity(statements.len());
    for (sql, _) in &statements {
        prepared.push(client.prepare_cached(sql).await.map_err(err)?);
    }
    let futures = statements.iter().zip(&prepared).map(|((_, params), stmt)| {
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
        async move { client.execute(stmt, &params).await }
    });
    let (written, committed) =
        futures_util::join!(try_join_all(futures), client.batch_execute("COMMIT"));
    written.map_err(err)?;
    committed.map_err(err)?;
    Ok(())
}

/// Follows the change feed: LISTEN on a connection of its own, the version poll beside it;
/// reconnects by itself. Ends when the store is dropped.
async fn listen(shared: Weak<PgShared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(store) = shared.upgrade() else {
            return;
        };
        let mut config: tokio_postgres::Config = match store.url.parse() {
            Ok(config) => config,
            Err(_) => return,
        };
        // Named, so that an operator (or a drill) finds the feed in pg_stat_activity.
        config.application_name("mneme-feed");
        drop(store);
        match config.connect(NoTls).await {
            Ok((client, connection)) => {
                backoff = Duration::from_millis(100);
                follow(&shared, client, connection).await;
            }
            Err(err) => {
                if let Some(store) = shared.upgrade() {
                    store.set_feed(Some(format!("cannot connect: {err}")));
                    poll_once(&store).await;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn poll_once(store: &PgShared) {
    match store.poll().await {
        Ok(()) => {
            store.store_up();
            store.mark_current();
        }
        Err(err) => store.store_down(&err),
    }
}

async fn follow(
    shared: &Weak<PgShared>,
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<
        tokio_postgres::Socket,
        tokio_postgres::tls::NoTlsStream,
    >,
) {
    use futures_util::StreamExt;
    let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let driver = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(message) = stream.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                    let _ = tx.send(Some(note.payload().to_owned()));
                }
                Ok(_) => {}
                Err(err) => {
                    let _ = tx.send(None);
                    tracing::debug!("change feed connection: {err}");
                    return;
                }
            }
        }
        let _ = tx.send(None);
    });
    if let Err(err) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
        if let Some(store) = shared.upgrade() {
            store.set_feed(Some(format!("LISTEN failed: {err}")));
        }
        driver.abort();
        return;
    }
    if let Some(store) = shared.upgrade() {
        store.set_feed(None);
        // Whatever was committed while the feed was down.
        poll_once(&store).await;
    }
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            note = notes.recv() => {
                let Some(store) = shared.upgrade() else { break };
                match note.flatten() {
                    Some(payload) => on_notification(&store, &payload).await,
                    None => {
                        store.set_feed(Some("the LISTEN connection was lost; reconnecting".to_owned()));
                        break;
                    }
                }
            }
            _ = poll.tick() => {
                let Some(store) = shared.upgrade() else { break };
                poll_once(&store).await;
            }
        }
    }
    driver.abort();
    drop(client);
}

async fn on_notification(store: &PgShared, payload: &str) {
    let Some((version, kb_id)) = payload.split_once(':') else {
        return;
    };
    let Ok(version) = version.parse::<u64>() else {
        return;
    };
    let Some(node) = store.replica(kb_id) else {
        return;
    };
    match store.catch_up_arc(&node, version).await {
        Ok(()) => store.mark_current(),
        Err(err) => store.store_down(&err),
    }
}

#[cfg(test)]
mod tests {
    use super::{redact, retryable};

    #[test]
    fn shutdowns_and_lost_connections_are_retryable_statement_errors_are_not() {
        for code in [
            "57P01", "57P02", "57P03", "08006", "53300", "40001", "40P01",
        ] {
            assert!(retryable(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "XX000"] {
            assert!(!retryable(code), "{code}");
        }
    }

    #[test]
    fn urls_in_messages_lose_their_password() {
        assert_eq!(
            redact("postgres://mneme:s3cret@db:5432/mneme"),
            "postgres://mneme:***@db:5432/mneme"
        );
        assert_eq!(
            redact("redis://:s3cret@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(redact("redis://cache:6379/0"), "redis://cache:6379/0");
        assert_eq!(
            redact("postgres://mneme@db/mneme"),
            "postgres://mneme@db/mneme"
        );
    }
}
