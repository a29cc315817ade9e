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
    store: Arc<Store>,
    defaults: Defaults,
    nodes: Mutex<HashMap<String, LoadedNode>>,
    flusher: Option<Flusher>,
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
            store,
            defaults,
            nodes: Mutex::new(HashMap::new()),
            flusher,
        })
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
            loaded.usage.touch();
            return Ok(loaded.clone());
        }
        let loaded = LoadedNode {
            node: Arc::new(self.load(&kb)?),
            usage: Arc::new(NodeUsage::new(node_id)),
        };
        let stats = loaded.node.stats();
        if keep_empty || stats.patterns > 0 || stats.symbols > 0 || stats.vectors > 0 {
            nodes.insert(kb, loaded.clone());
        }
        Ok(loaded)
    }

    fn load(&self, kb: &str) -> Result<Node, mneme_seq::error::Error> {
        let snapshot = self
            .store
            .store()
            .snapshot()
            .map_err(|err| mneme_seq::error::Error::Storage(err.to_string()))?;
        let journal: Arc<dyn Journal> = self.store.clone();
        Node::load(kb, &snapshot, journal)
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

    /// Makes every learn so far durable.
    pub fn flush(&self) -> mneme_store::Result<()> {
        self.store.flush()
    }

    /// Why the pattern store refuses writes (a commit failed or panicked), or `None` while it
    /// is healthy.
    pub fn failure(&self) -> Option<String> {
        self.store.failure()
    }

    /// The store, for records that are not patterns (the CLI's named sessions).
    pub fn store(&self) -> &GroupCommit<AnyStore> {
        &self.store
    }
}

impl Drop for Patterns {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            flusher.stop();
        }
        let _ = self.store.flush();
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
