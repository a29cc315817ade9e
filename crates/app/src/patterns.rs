//! The pattern engine as a service: the nodes of one store, loaded on first use, with the
//! durability mode chosen in the configuration.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mneme_seq::config::{Defaults, kb_id};
use mneme_seq::node::{Journal, Node};
use mneme_store::{AnyStore, CommitMode, GroupCommit, KvStore, MemoryStore, RedbStore};

/// When a learn is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A learn that has returned survives a crash; concurrent learns share one fsync.
    Immediate,
    /// Learns are committed every `interval` (like Redis `appendfsync everysec`): a crash
    /// loses at most the learns of the last interval, never part of one.
    Periodic { interval: Duration },
}

type Store = GroupCommit<AnyStore>;

/// A store of record that other processes share (cluster mode: PostgreSQL), as the pattern
/// engine needs it: nodes are loaded from it as replicas ([`Node::replica`]) that write through
/// its change log, and kept current with it.
pub trait SharedNodes: Send + Sync {
    /// A replica of node `kb_id` with every change committed so far; the store keeps it
    /// current from then on (its notifications, its version poll).
    fn load(&self, kb_id: &str) -> Result<Arc<Node>, mneme_seq::error::Error>;

    /// Brings `node` up to date before a request reads it: every change acknowledged before
    /// this call is applied when it returns (one version read in the store, and the changes
    /// missed, if any). When the store cannot be reached the replica answers as it is, and
    /// [`SharedNodes::status`] says so.
    fn refresh(&self, node: &Node) -> Result<(), mneme_seq::error::Error>;

    /// How the shared store is doing, for `/health`.
    fn status(&self) -> SharedStatus;

    /// Stops following node `kb_id` (it was replaced by a fresh replica, or dropped).
    fn forget(&self, kb_id: &str, node: &Arc<Node>);
}

/// The health of a shared store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SharedStatus {
    /// Why the replicas may be behind (the store is unreachable, the change feed is down);
    /// `None` while healthy.
    pub degraded: Option<String>,
    /// How long ago the replicas were last known to be current, in milliseconds.
    pub lag_ms: u64,
    /// Replicas held by this process.
    pub replicas: usize,
}

enum Backend {
    /// The embedded store: one redb file (or memory) behind a group committer.
    Local {
        store: Arc<Store>,
        flusher: Option<Flusher>,
    },
    /// A store shared by the nodes of a cluster.
    Shared(Arc<dyn SharedNodes>),
}

/// What KATO's processor manager reports about a loaded node: the node id the client named
/// when it was loaded, when this process loaded it, and how often and how lately it was used.
/// Recording a use is two relaxed atomic writes.
#[derive(Debug)]
pub struct NodeUsage {
    node_id: String,
    loaded_at: SystemTime,
    last_used_micros: AtomicU64,
    uses: AtomicU64,
}

fn micros_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl NodeUsage {
    /// The usage of a node loaded now: the load is its first use.
    fn new(node_id: &str) -> NodeUsage {
        let now = micros_since_epoch(SystemTime::now());
        NodeUsage {
            node_id: node_id.to_owned(),
            loaded_at: UNIX_EPOCH + Duration::from_micros(now),
            last_used_micros: AtomicU64::new(now),
            uses: AtomicU64::new(1),
        }
    }

    /// Records one use of the node, now.
    pub fn touch(&self) {
        self.uses.fetch_add(1, Ordering::Relaxed);
        self.last_used_micros
            .store(micros_since_epoch(SystemTime::now()), Ordering::Relaxed);
    }

    /// The node id of the request that loaded the node (not its kb_id).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// When this process loaded the node.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// When the node was last used.
    pub fn last_used(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.last_used_micros.load(Ordering::Relaxed))
    }

    /// How often the node was used, the load included.
    pub fn uses(&self) -> u64 {
        self.uses.load(Ordering::Relaxed)
    }
}

/// A node in memory and its usage.
#[derive(Clone)]
pub struct LoadedNode {
    pub node: Arc<Node>,
    pub usage: Arc<NodeUsage>,
}

pub struct Patterns {
    backend: Backend,
    defaults: Defaults,
    nodes: Mutex<HashMap<String, LoadedNode>>,
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patterns")
            .field("defaults", &self.defaults)
            .finish()
    }
}

impl Patterns {
    /// Opens the pattern store at `path` (one redb file), or an in-memory one.
    pub fn open(
        path: Option<&Path>,
        durability: Durability,
        defaults: Defaults,
    ) -> mneme_store::Result<Patterns> {
        let backend = match path {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|err| {
                        mneme_store::Error::Io(format!("creating {}: {err}", parent.display()))
                    })?;
                }
                AnyStore::Redb(RedbStore::open(path)?)
            }
            None => AnyStore::Memory(MemoryStore::default()),
        };
        let mode = match durability {
            Durability::Immediate => CommitMode::Durable,
            Durability::Periodic { .. } => CommitMode::Periodic,
        };
        let store = Arc::new(GroupCommit::new(backend, mode));
        let flusher = match durability {
            Durability::Periodic { interval } => Some(Flusher::start(store.clone(), interval)),
            Durability::Immediate => None,
        };
        Ok(Patterns {
            backend: Backend::Local { store, flusher },
            defaults,
            nodes: Mutex::new(HashMap::new()),
        })
    }

    /// The nodes of a store shared with other processes (cluster mode).
    pub fn shared(shared: Arc<dyn SharedNodes>, defaults: Defaults) -> Patterns {
        Patterns {
            backend: Backend::Shared(shared),
            defaults,
            nodes: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the nodes live in a store shared with other processes.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Shared(_))
    }

    /// Brings a node a request is about to use up to date with the shared store (cluster
    /// mode; nothing to do for the embedded store). A replica whose write failed is replaced
    /// by a fresh one, which is returned.
    pub fn refresh(
        &self,
        loaded: &LoadedNode,
    ) -> Result<Option<LoadedNode>, mneme_seq::error::Error> {
        let Backend::Shared(shared) = &self.backend else {
            return Ok(None);
        };
        if loaded.node.is_stale() {
            let fresh = self.get_or_load(loaded.usage.node_id(), true)?;
            return Ok(Some(fresh));
        }
        shared.refresh(&loaded.node)?;
        Ok(None)
    }

    /// The shared store's health (cluster mode), `None` for the embedded store.
    pub fn shared_status(&self) -> Option<SharedStatus> {
        match &self.backend {
            Backend::Shared(shared) => Some(shared.status()),
            Backend::Local { .. } => None,
        }
    }

    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The node of `node_id` (KATO's kb_id rule), loaded from the store on first use. Counts
    /// as a use of the node.
    pub fn node(&self, node_id: &str) -> Result<Arc<Node>, mneme_seq::error::Error> {
        self.node_with_usage(node_id).map(|loaded| loaded.node)
    }

    /// [`Patterns::node`], with the node's usage record (for callers that keep the node and
    /// record later uses themselves).
    pub fn node_with_usage(&self, node_id: &str) -> Result<LoadedNode, mneme_seq::error::Error> {
        self.get_or_load(node_id, true)
    }

    /// The node of `node_id` for a read that must not keep a node nobody has used: a node
    /// that is loaded, or has something stored, is loaded and kept as [`Patterns::node`] does;
    /// an empty one is answered from a throwaway node, so looking up arbitrary node ids costs
    /// no memory.
    pub fn node_to_read(&self, node_id: &str) -> Result<Arc<Node>, mneme_seq::error::Error> {
        self.get_or_load(node_id, false).map(|loaded| loaded.node)
    }

    /// The loaded node of `node_id` (a use of it), or the node loaded from the store now, kept
    /// unless it is empty and `keep_empty` is false.
    fn get_or_load(
        &self,
        node_id: &str,
        keep_empty: bool,
    ) -> Result<LoadedNode, mneme_seq::error::Error> {
        let kb = kb_id(node_id, &self.defaults.service_name);
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(loaded) = nodes.get(&kb) {
            if !loaded.node.is_stale() {
                loaded.usage.touch();
                if let Backend::Shared(shared) = &self.backend {
                    shared.refresh(&loaded.node)?;
                }
                return Ok(loaded.clone());
            }
            // A replica whose write failed: replaced by a fresh one from the store.
            if let Backend::Shared(shared) = &self.backend {
                shared.forget(&kb, &loaded.node);
            }
            nodes.remove(&kb);
        }
        let loaded = LoadedNode {
            node: self.load(&kb)?,
            usage: Arc::new(NodeUsage::new(node_id)),
        };
        let stats = loaded.node.stats();
        if keep_empty || stats.patterns > 0 || stats.symbols > 0 || stats.vectors > 0 {
            nodes.insert(kb, loaded.clone());
        }
        Ok(loaded)
    }

    fn load(&self, kb: &str) -> Result<Arc<Node>, mneme_seq::error::Error> {
        match &self.backend {
            Backend::Local { store, .. } => {
                let snapshot = store
                    .store()
                    .snapshot()
                    .map_err(|err| mneme_seq::error::Error::Storage(err.to_string()))?;
                let journal: Arc<dyn Journal> = store.clone();
                Node::load(kb, &snapshot, journal).map(Arc::new)
            }
            Backend::Shared(shared) => shared.load(kb),
        }
    }

    /// Nodes loaded so far.
    pub fn loaded(&self) -> Vec<LoadedNode> {
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Makes every learn so far durable (a shared store commits each learn itself).
    pub fn flush(&self) -> mneme_store::Result<()> {
        match &self.backend {
            Backend::Local { store, .. } => store.flush(),
            Backend::Shared(_) => Ok(()),
        }
    }

    /// Why the pattern store refuses writes (a commit failed or panicked), or `None` while it
    /// is healthy.
    pub fn failure(&self) -> Option<String> {
        match &self.backend {
            Backend::Local { store, .. } => store.failure(),
            Backend::Shared(_) => None,
        }
    }

    /// The embedded store, for records that are not patterns (the CLI's named sessions);
    /// `None` in cluster mode.
    pub fn store(&self) -> Option<&GroupCommit<AnyStore>> {
        match &self.backend {
            Backend::Local { store, .. } => Some(store),
            Backend::Shared(_) => None,
        }
    }
}

impl Drop for Patterns {
    fn drop(&mut self) {
        if let Backend::Local { store, flusher } = &mut self.backend {
            if let Some(flusher) = flusher.take() {
                flusher.stop();
            }
            let _ = store.flush();
        }
    }
}

/// A thread that flushes the store every interval until stopped.
struct Flusher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(store: Arc<Store>, interval: Duration) -> Flusher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mneme-flush".into())
            .spawn(move || {
                let step = interval
                    .min(Duration::from_millis(20))
                    .max(Duration::from_millis(1));
                let mut waited = Duration::ZERO;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(step);
                    waited += step;
                    if waited >= interval {
                        waited = Duration::ZERO;
                        if let Err(err) = store.flush() {
                            tracing::error!("periodic flush of the pattern store failed: {err}");
                        }
                    }
                }
            })
            .ok();
        Flusher { stop, thread }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The engine defaults for these settings.
pub fn seq_defaults(settings: &crate::config::SeqSettings) -> Defaults {
    use mneme_seq::config::{RankKey, StmMode};
    Defaults {
        service_name: settings.service_name.clone(),
        max_pattern_length: settings.max_pattern_length,
        persistence: settings.persistence,
        recall_threshold: settings.recall_threshold,
        stm_mode: if settings.rolling {
            StmMode::Rolling
        } else {
            StmMode::Clear
        },
        max_predictions: settings.max_predictions,
        sort_symbols: settings.sort_symbols,
        process_predictions: settings.process_predictions,
        use_token_matching: settings.use_token_matching,
        rank_sort_algo: RankKey::parse(&settings.rank_sort_algo).unwrap_or(RankKey::Potential),
        vector_neighbours: settings.vector_neighbours,
    }
}

/// Opens the pattern store the settings name.
pub fn open_patterns(settings: &crate::config::SeqSettings) -> mneme_store::Result<Patterns> {
    let durability = if settings.periodic {
        Durability::Periodic {
            interval: Duration::from_millis(settings.flush_interval_ms),
        }
    } else {
        Durability::Immediate
    };
    Patterns::open(Some(&settings.store), durability, seq_defaults(settings))
}
