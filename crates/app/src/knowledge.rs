//! The knowledge base as a service: the engine plus the counters KnowledgeBeast reports
//! (queries, last access, warm-ups) and the clock readings the engine does not take itself.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mneme_kb::{
    ChunkConfig, IngestOptions, IngestProgress, IngestReport, KbConfig, KnowledgeBase, Ranking,
    SearchOutcome, SearchRequest,
};

use std::sync::Arc;

use crate::config::KbSettings;
use crate::embedding::LazyModel;

/// Warm-up and access figures (kept by the engine with its cache, so they span processes:
/// `mneme warm` then `mneme stats`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryStats {
    pub warm_queries: u64,
    pub last_warm_time: Option<Duration>,
    /// Time since the last query.
    pub last_access: Option<Duration>,
}

/// The engine configuration for these settings.
pub fn kb_config(settings: &KbSettings) -> KbConfig {
    KbConfig {
        chunk: ChunkConfig {
            chunk_size: settings.chunk_size,
            chunk_overlap: settings.chunk_overlap,
        },
        stemming: settings.stemming,
        max_file_size: settings.max_file_size,
        max_workers: settings.max_workers,
        cache_capacity: NonZeroUsize::new(settings.max_cache_size).unwrap_or(NonZeroUsize::MIN),
        writer_memory_per_thread: 64 << 20,
    }
}

/// The knowledge base's index where several nodes share it (cluster mode): an ordered log of
/// scans ([`mneme_kb::Scan`], one generation each) that every node's index replays, and the
/// lease that lets one node at a time scan and append.
pub trait SharedIndex: Send + Sync {
    /// Waits up to `wait` for the cluster's ingest lease, held until the guard is dropped
    /// (or the node dies).
    fn lease(&self, wait: Duration) -> mneme_kb::Result<Box<dyn Send>>;
    /// Appends a scan as generation `after + 1`, and returns it; fails (unavailable) when that
    /// generation exists already (another node appended: this node's lease was lost).
    fn append(&self, after: u64, scan: Vec<u8>) -> mneme_kb::Result<u64>;
    /// The last generation (0: none).
    fn generation(&self) -> mneme_kb::Result<u64>;
    /// Scans after generation `after`, in order, with their generations: the next page of
    /// them (at least one when there are any).
    fn since(&self, after: u64) -> mneme_kb::Result<Vec<(u64, Vec<u8>)>>;
}

/// How long an ingest waits for another node's scan to finish before it answers unavailable.
const LEASE_WAIT: Duration = Duration::from_secs(300);

struct SharedLog {
    log: Arc<dyn SharedIndex>,
    /// The last generation of the log this node's index holds.
    applied: std::sync::Mutex<u64>,
    /// Whether the log was out of reach at the last catch-up (warned once per outage).
    down: std::sync::atomic::AtomicBool,
    /// How long a query may answer without reading the log's generation (0: always reads).
    max_staleness: Duration,
    /// When the index was last known to hold the log's last generation.
    confirmed: std::sync::Mutex<Option<Instant>>,
}

pub struct Knowledge {
    /// This node's index (in cluster mode a replica of the shared log: read it through
    /// [`Knowledge::current`] to see every acknowledged ingest).
    pub kb: KnowledgeBase,
    pub settings: KbSettings,
    shared: Option<SharedLog>,
}

impl Knowledge {
    /// Opens the index named by the settings.
    pub fn open(settings: &KbSettings) -> mneme_kb::Result<Knowledge> {
        if settings.index_dir.is_file() {
            return Err(mneme_kb::Error::Corrupt(format!(
                "{} is a file; mneme keeps its index in a directory (set KB_CACHE_FILE or kb.index_dir to a directory)",
                settings.index_dir.display()
            )));
        }
        let kb = KnowledgeBase::open(&settings.index_dir, kb_config(settings))?;
        let kb = match embedder(settings)? {
            Some(model) => kb.with_embedder(model),
            None => kb,
        };
        Ok(Knowledge {
            kb,
            settings: settings.clone(),
            shared: None,
        })
    }

    /// Cluster mode: the index is a replica of `log`, rebuilt from it (whatever a previous run
    /// left in the index directory is removed) and brought up to date before each query.
    ///
    /// `max_staleness` above zero lets a query answer without reading the log's generation
    /// when the index was known current that recently (`MNEME_MAX_STALENESS_MS`).
    pub fn open_shared(
        settings: &KbSettings,
        log: Arc<dyn SharedIndex>,
        max_staleness: Duration,
    ) -> mneme_kb::Result<Knowledge> {
        let dir = &settings.index_dir;
        if dir.is_dir() {
            std::fs::remove_dir_all(dir).map_err(|err| mneme_kb::Error::Io {
                context: format!("clearing the replica in {}", dir.display()),
                source: err,
            })?;
        }
        let mut knowledge = Knowledge::open(settings)?;
        knowledge.shared = Some(SharedLog {
            log,
            applied: std::sync::Mutex::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
            max_staleness,
            confirmed: std::sync::Mutex::new(None),
        });
        Ok(knowledge)
    }

    /// The index, brought up to the shared log's last generation first (cluster mode), so that
    /// it holds every ingest acknowledged before this call, on any node; while the log is out
    /// of reach, the index as it is.
    ///
    /// While this node is already replaying (a large ingest), the index answers as it is, the
    /// way an embedded index answers from its previous generation during an ingest.
    pub fn current(&self) -> &KnowledgeBase {
        use std::sync::atomic::Ordering;
        if let Some(shared) = &self.shared {
            match self.catch_up_unless_busy() {
                Ok(_) => {
                    if shared.down.swap(false, Ordering::Relaxed) {
                        tracing::info!("cluster: the knowledge base follows the shared log again");
                    }
                }
                Err(err) => {
                    if !shared.down.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "cluster: {err}; the knowledge base answers from its replica"
                        );
                    }
                }
            }
        }
        &self.kb
    }

    /// Brings the index up to the log, unless another thread of this node is replaying
    /// already (then the index answers as it is).
    fn catch_up_unless_busy(&self) -> mneme_kb::Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let asked = Instant::now();
        if !shared.max_staleness.is_zero() {
            let confirmed = *shared.confirmed.lock().unwrap_or_else(|p| p.into_inner());
            if confirmed.is_some_and(|at| asked.duration_since(at) < shared.max_staleness) {
                return Ok(());
            }
        }
        let latest = shared.log.generation()?;
        let mut applied = match shared.applied.try_lock() {
            Ok(applied) => applied,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
        };
        self.replay(shared, &mut applied, latest, &mneme_kb::NoProgress)?;
        *shared.confirmed.lock().unwrap_or_else(|p| p.into_inner()) = Some(asked);
        Ok(())
    }

    /// Replays the scans after `*applied` up to `latest`, page by page (each scan advances
    /// `applied` as it commits); the report of the last.
    fn replay(
        &self,
        shared: &SharedLog,
        applied: &mut u64,
        latest: u64,
        progress: &dyn IngestProgress,
    ) -> mneme_kb::Result<Option<IngestReport>> {
        let mut report = None;
        while *applied < latest {
            let page = shared.log.since(*applied)?;
            if page.is_empty() {
                break;
            }
            for (generation, bytes) in page {
                let scan = mneme_kb::Scan::from_bytes(&bytes)?;
                report = Some(self.kb.apply_scan(scan, progress)?);
                *applied = generation;
            }
        }
        Ok(report)
    }

    /// Cluster mode's ingest: under the cluster's lease, the index caught up, a scan of
    /// `roots` against it appended to the log when it changes anything, and replayed here.
    /// This node's replay lock is held throughout, so that the scan this ingest appends is the
    /// one it replays and reports (a query meanwhile answers from the index as it is).
    fn ingest_shared(
        &self,
        shared: &SharedLog,
        roots: &[PathBuf],
        options: IngestOptions,
        progress: &dyn IngestProgress,
    ) -> mneme_kb::Result<IngestReport> {
        let _lease = shared.log.lease(LEASE_WAIT)?;
        let mut applied = shared.applied.lock().unwrap_or_else(|p| p.into_inner());
        let latest = shared.log.generation()?;
        self.replay(shared, &mut applied, latest, progress)?;
        let scan = self.kb.scan(roots, options)?;
        if !scan.changes() {
            let (problems, ignored) = scan.skipped();
            let stats = self.kb.stats();
            return Ok(IngestReport {
                files: scan.files(),
                unchanged: scan.files(),
                ignored,
                problems: problems.to_vec(),
                documents: stats.documents,
                chunks: stats.chunks,
                generation: stats.generation,
                vectors: stats.vectors,
                ..IngestReport::default()
            });
        }
        let generation = shared.log.append(*applied, scan.to_bytes()?)?;
        let report = self.kb.apply_scan(scan, progress)?;
        *applied = generation;
        Ok(report)
    }

    /// The configured knowledge directories.
    pub fn knowledge_dirs(&self) -> Vec<PathBuf> {
        self.settings.knowledge_dirs.clone()
    }

    /// Ingests `roots` (the knowledge dirs when empty), then runs the warming queries when a
    /// new generation was committed and `auto_warm` is on.
    pub fn ingest(
        &self,
        roots: &[PathBuf],
        options: IngestOptions,
        progress: &dyn IngestProgress,
    ) -> mneme_kb::Result<IngestReport> {
        let roots = if roots.is_empty() {
            self.knowledge_dirs()
        } else {
            roots.to_vec()
        };
        // The link policy is the configuration's, whatever the caller passed.
        let options = IngestOptions {
            links: self.link_policy(),
            ..options
        };
        let report = match &self.shared {
            Some(shared) => self.ingest_shared(shared, &roots, options, progress)?,
            None => self.kb.ingest(&roots, options, progress)?,
        };
        if report.committed && self.settings.auto_warm {
            self.warm()?;
        }
        Ok(report)
    }

    /// Ingests the named files only (the API's `/ingest` and `/batch-ingest`): files inside a
    /// knowledge directory get the doc_id a full ingest would give them; nothing else in the
    /// index is touched.
    pub fn ingest_files(
        &self,
        files: &[PathBuf],
        progress: &dyn IngestProgress,
    ) -> mneme_kb::Result<IngestReport> {
        let options = IngestOptions {
            rebuild: false,
            knowledge_dirs: self.knowledge_dirs(),
            links: self.link_policy(),
        };
        match &self.shared {
            Some(shared) => self.ingest_shared(shared, files, options, progress),
            None => self.kb.ingest(files, options, progress),
        }
    }

    /// Removes every document from the index (an ingest of nothing that drops everything
    /// else); the files stay where they are.
    pub fn clear(&self) -> mneme_kb::Result<IngestReport> {
        let options = IngestOptions {
            rebuild: true,
            knowledge_dirs: self.knowledge_dirs(),
            links: self.link_policy(),
        };
        match &self.shared {
            Some(shared) => self.ingest_shared(shared, &[], options, &mneme_kb::NoProgress),
            None => self.kb.ingest(&[], options, &mneme_kb::NoProgress),
        }
    }

    /// Which symbolic links ingests follow (`kb.follow_external_links`).
    fn link_policy(&self) -> mneme_kb::LinkPolicy {
        if self.settings.follow_external_links {
            mneme_kb::LinkPolicy::Any
        } else {
            mneme_kb::LinkPolicy::Inside
        }
    }

    /// Answers a query and notes the access time.
    pub fn search(&self, request: &SearchRequest<'_>) -> mneme_kb::Result<SearchOutcome> {
        let kb = self.current();
        kb.record_access(unix_ms(SystemTime::now()));
        kb.search(request)
    }

    /// Runs the configured warming queries; returns how many ran and how long it took.
    pub fn warm(&self) -> mneme_kb::Result<(usize, Duration)> {
        let started = Instant::now();
        let executed = self.kb.warm(
            &self.settings.warming_queries,
            default_ranking(&self.kb, &self.settings),
            10,
        )?;
        let elapsed = started.elapsed();
        self.kb.record_warm(executed, elapsed);
        Ok((executed, elapsed))
    }

    pub fn query_stats(&self) -> QueryStats {
        let cache = self.kb.stats().cache;
        QueryStats {
            warm_queries: cache.warm_queries,
            last_warm_time: cache.last_warm,
            last_access: cache
                .last_access_ms
                .map(|ms| Duration::from_millis(unix_ms(SystemTime::now()).saturating_sub(ms))),
        }
    }
}

/// The configured embedding model, if any (checked, not yet loaded).
pub fn embedder(settings: &KbSettings) -> mneme_kb::Result<Option<Arc<dyn mneme_kb::Embedder>>> {
    match settings.embedding_model.folder() {
        None => Ok(None),
        Some(dir) => LazyModel::open(dir)
            .map(|model| Some(Arc::new(model) as Arc<dyn mneme_kb::Embedder>))
            .map_err(|err| mneme_kb::Error::NoVectors(err.to_string())),
    }
}

/// The ranking a query gets when it names none: hybrid with the configured alpha when a model
/// is configured and the index has been embedded (KnowledgeBeast's default), keyword otherwise.
pub fn default_ranking(kb: &KnowledgeBase, settings: &KbSettings) -> Ranking {
    if kb.has_embedder() && kb.has_vectors() {
        Ranking::Hybrid(mneme_kb::Fusion::Weighted(
            mneme_kb::Alpha::new(settings.hybrid_alpha as f32).unwrap_or_default(),
        ))
    } else {
        Ranking::Bm25
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
