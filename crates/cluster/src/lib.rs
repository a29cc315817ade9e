//! Cluster mode: any number of stateless `mneme serve` nodes on one PostgreSQL and one Redis.
//!
//! - PostgreSQL is the pattern engine's store of record ([`pg`]): patterns, symbol statistics,
//!   affinity, vectors, finalize figures and totals per node (kb_id), and the ordered change
//!   log. Each process keeps an in-memory replica of every node it serves, kept current from
//!   the log, and checks the node's version before answering (or within a bounded staleness).
//! - PostgreSQL also holds the knowledge base's projects ([`PgRegistry`]): projects, API keys,
//!   document metadata and each project's documents as an ordered log that every node's
//!   replica of the project index follows.
//! - PostgreSQL also holds API v1's knowledge base as a log of scans ([`PgIndex`]) that every
//!   node's index replays, with the lease that lets one node at a time scan.
//! - Redis holds KATO's sessions ([`sessions`]), locked per request across processes and saved
//!   with compare-and-set.
//!
//! [`Cluster::connect`] connects both, migrates the schema, and hands out the ports the
//! service layer takes: [`Cluster::patterns`], [`Cluster::sessions`], [`Cluster::projects`] and [`Cluster::index`].

mod bridge;
mod index_log;
mod pg;
mod port;
mod registry;
mod schema;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use mneme_app::patterns::{Patterns, SharedNodes};
use mneme_seq::Defaults;

pub use index_log::PgIndex;
pub use pg::PgNodes;
pub use registry::PgRegistry;
pub use sessions::RedisSessions;

/// What a node needs to join a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// `postgres://user:password@host:port/database`.
    pub postgres_url: String,
    /// `redis://host:port/db`.
    pub redis_url: String,
    /// Connections to PostgreSQL per node (KATO's `CLICKHOUSE_POOL_SIZE` idea).
    pub postgres_pool_size: usize,
    /// How long a replica may answer without checking the store's version: 0 (the default)
    /// checks before every request, so that a request sees every write acknowledged before it
    /// was sent, on any node.
    pub max_staleness: Duration,
    /// How this node's PostgreSQL connections name it (`application_name`, shown in
    /// `pg_stat_activity`) unless the URL names one.
    pub node_name: String,
}

/// A node's connections to the cluster's stores.
pub struct Cluster {
    patterns: Arc<PgNodes>,
    sessions: Arc<RedisSessions>,
    registry: Arc<PgRegistry>,
    index: Arc<PgIndex>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to PostgreSQL (creating or migrating mneme's schema) and to Redis. Errors say
    /// which store could not be reached and how it was named.
    pub fn connect(config: &ClusterConfig) -> Result<Cluster, String> {
        let bridge = Arc::new(
            bridge::Bridge::new(2).map_err(|e| format!("starting the cluster runtime: {e}"))?,
        );
        let shared = pg::PgShared::connect(
            bridge.clone(),
            &config.postgres_url,
            config.postgres_pool_size,
            config.max_staleness,
            &config.node_name,
        )?;
        let registry = Arc::new(PgRegistry::new(bridge.clone(), shared.pool()));
        let index = Arc::new(PgIndex::new(bridge.clone(), shared.pool()));
        let sessions = RedisSessions::connect(bridge, &config.redis_url)?;
        Ok(Cluster {
            patterns: Arc::new(PgNodes { shared }),
            sessions: Arc::new(sessions),
            registry,
            index,
        })
    }

    /// The pattern engine on the shared store.
    pub fn patterns(&self, defaults: Defaults) -> Patterns {
        let shared: Arc<dyn SharedNodes> = self.patterns.clone();
        Patterns::shared(shared, defaults)
    }

    /// The knowledge base's project registry and document log.
    pub fn projects(&self) -> Arc<PgRegistry> {
        self.registry.clone()
    }

    /// API v1's knowledge base: the log of scans and the ingest lease.
    pub fn index(&self) -> Arc<PgIndex> {
        self.index.clone()
    }

    /// The session store.
    pub fn sessions(&self) -> Arc<RedisSessions> {
        self.sessions.clone()
    }
}
