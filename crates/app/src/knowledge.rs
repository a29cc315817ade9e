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

pub struct Knowledge {
    pub kb: KnowledgeBase,
    pub settings: KbSettings,
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
        })
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
        let report = self.kb.ingest(&roots, options, progress)?;
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
        self.kb.ingest(files, options, progress)
    }

    /// Removes every document from the index (an ingest of nothing that drops everything
    /// else); the files stay where they are.
    pub fn clear(&self) -> mneme_kb::Result<IngestReport> {
        let options = IngestOptions {
            rebuild: true,
            knowledge_dirs: self.knowledge_dirs(),
            links: self.link_policy(),
        };
        self.kb.ingest(&[], options, &mneme_kb::NoProgress)
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
        self.kb.record_access(unix_ms(SystemTime::now()));
        self.kb.search(request)
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
