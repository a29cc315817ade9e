//! `KnowledgeBase`: one index directory, many concurrent readers, one writer.
//!
//! Readers take an `Arc<Snapshot>` (a tantivy searcher and the catalog of the same generation)
//! and never wait for the writer; an ingest installs a new snapshot only after its commit, so a
//! reader sees the whole old index or the whole new one.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tantivy::{Index, IndexReader, Searcher};

use crate::cache::{CacheKey, CacheStats, QueryCache};
use crate::catalog::{Catalog, DocEntry, IndexSettings};
use crate::chunk::ChunkConfig;
use crate::error::{Error, Result};
use crate::hybrid;
use crate::index::{self, Fields};
use crate::ingest::{self, CONVERTER_VERSION, IngestOptions, IngestProgress, IngestReport};
use crate::query::{Ranking, SearchRequest, SearchResults};
use crate::search;
use crate::snapshot::Snapshot;
use crate::text;
use crate::vectors::{Embedder, VectorTable};

/// Query embeddings kept (KnowledgeBeast keeps 1,000).
const QUERY_VECTOR_CACHE: usize = 1000;

/// The persisted query cache, in the index directory.
const CACHE_FILE: &str = "query-cache.bin";

/// Engine knobs. Chunking and stemming shape the index: changing them makes the next ingest
/// re-read every file.
#[derive(Clone, Debug)]
pub struct KbConfig {
    pub chunk: ChunkConfig,
    /// English stemming of indexed words and queries (BM25 mode).
    pub stemming: bool,
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
    /// Threads converting files during an ingest (also tantivy's indexing threads, up to 8).
    pub max_workers: usize,
    /// Entries of the query-result cache.
    pub cache_capacity: NonZeroUsize,
    /// Indexing memory per writer thread, in bytes (tantivy needs at least 15 MB).
    pub writer_memory_per_thread: usize,
}

/// A query's answer and whether it came from the cache.
#[derive(Clone, Debug)]
pub struct SearchOutcome {
    pub results: Arc<SearchResults>,
    pub cached: bool,
}

/// Size of the index and cache counters.
#[derive(Clone, Debug, PartialEq)]
pub struct KbStats {
    pub documents: usize,
    pub chunks: u64,
    /// Distinct `lower().split()` terms (KnowledgeBeast's `total_terms`).
    pub terms: usize,
    pub generation: u64,
    pub settings: IndexSettings,
    pub cache: CacheStats,
    /// Embedded chunks (0 without a model).
    pub vectors: usize,
    /// The model's name, when one is configured.
    pub embedding_model: Option<String>,
    /// The length of its vectors.
    pub embedding_dim: Option<usize>,
    /// Query embeddings answered from their cache / computed.
    pub query_vector_hits: u64,
    pub query_vector_misses: u64,
}

pub struct KnowledgeBase {
    pub(crate) dir: PathBuf,
    pub(crate) index: Index,
    reader: IndexReader,
    pub(crate) fields: Fields,
    pub(crate) config: KbConfig,
    current: RwLock<Arc<Snapshot>>,
    cache: QueryCache,
    pub(crate) write_lock: Mutex<()>,
    pub(crate) embedder: Option<Arc<dyn Embedder>>,
    query_vectors: Mutex<QueryVectors>,
}

/// An LRU of query embeddings keyed by the whitespace-normalised query.
struct QueryVectors {
    entries: lru::LruCache<String, Arc<Vec<f32>>>,
    hits: u64,
    misses: u64,
}

impl KnowledgeBase {
    /// Opens the index in `dir`, creating an empty one if there is none. Reopening is cheap:
    /// the chunk index is memory-mapped and only the catalog is read.
    pub fn open(dir: &Path, config: KbConfig) -> Result<KnowledgeBase> {
        if config.chunk.chunk_size == 0 || config.chunk.chunk_overlap >= config.chunk.chunk_size {
            return Err(Error::InvalidQuery(format!(
                "chunk_overlap ({}) must be smaller than chunk_size ({})",
                config.chunk.chunk_overlap, config.chunk.chunk_size
            )));
        }
        let (index, reader, fields) = index::open(dir)?;
        let settings = IndexSettings {
            chunk: config.chunk,
            stemming: config.stemming,
            converter_version: CONVERTER_VERSION,
        };
        let (generation, searcher) = consistent_searcher(&index, &reader)?;
        let catalog = if generation == 0 {
            Catalog::empty(settings)
        } else {
            Catalog::load(dir, generation)?
        };
        let vectors = VectorTable::load(dir, generation)?.map(Arc::new);
        let snapshot = Snapshot::new(Arc::new(catalog), searcher, fields, vectors);
        let cache = QueryCache::new(config.cache_capacity);
        cache.load(&dir.join(CACHE_FILE), generation);
        Ok(KnowledgeBase {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            cache,
            config,
            current: RwLock::new(Arc::new(snapshot)),
            write_lock: Mutex::new(()),
            embedder: None,
            query_vectors: Mutex::new(QueryVectors {
                entries: lru::LruCache::new(NonZeroUsize::new(QUERY_VECTOR_CACHE).unwrap()),
                hits: 0,
                misses: 0,
            }),
        })
    }

    /// Uses `embedder` for chunk vectors (every ingest embeds new chunks, and the first one
    /// embeds whatever the index lacks) and for vector and hybrid queries.
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> KnowledgeBase {
        self.embedder = Some(embedder);
        self
    }

    /// Whether a model is configured (vector and hybrid ranking available).
    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    /// Whether the current generation has chunk vectors (a model is configured and an ingest
    /// has embedded the documents).
    pub fn has_vectors(&self) -> bool {
        self.snapshot().vectors.is_some()
    }

    /// The embedding of a query, from the query-vector cache when possible.
    pub fn query_vector(&self, query: &str) -> Result<Arc<Vec<f32>>> {
        let embedder = self.embedder.as_ref().ok_or_else(|| {
            Error::NoVectors(
                "vector and hybrid search need an embedding model: set KB_EMBEDDING_MODEL to a \
                 sentence-transformers folder, or run scripts/fetch-model"
                    .into(),
            )
        })?;
        let key = query.split_whitespace().collect::<Vec<_>>().join(" ");
        {
            let mut cache = self.query_vectors.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(vector) = cache.entries.get(&key).cloned() {
                cache.hits += 1;
                return Ok(vector);
            }
            cache.misses += 1;
        }
        let mut vectors = embedder
            .embed(&[key.as_str()], &|_| {})
            .map_err(Error::Embedding)?;
        let vector = Arc::new(vectors.pop().unwrap_or_default());
        self.query_vectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .put(key, vector.clone());
        Ok(vector)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ingests files and directories (see [`crate::ingest`]); only one ingest runs at a time
    /// per index, across processes too ([`Error::Busy`] otherwise).
    pub fn ingest(
        &self,
        roots: &[PathBuf],
        options: IngestOptions,
        progress: &dyn IngestProgress,
    ) -> Result<IngestReport> {
        ingest::run(self, roots, options, progress)
    }

    /// Walks `roots` as [`KnowledgeBase::ingest`] would and reads the files this index does not
    /// hold as they are, without changing the index: what a replica replays
    /// ([`KnowledgeBase::apply_scan`]) to reach the state that ingest would give (cluster mode).
    pub fn scan(&self, roots: &[PathBuf], options: IngestOptions) -> Result<ingest::Scan> {
        ingest::scan(self, roots, options)
    }

    /// Replays a [`ingest::Scan`] made against this index's generation (one commit when it
    /// changes anything).
    pub fn apply_scan(
        &self,
        scan: ingest::Scan,
        progress: &dyn IngestProgress,
    ) -> Result<IngestReport> {
        ingest::apply_scan(self, scan, progress)
    }

    /// Adds or replaces documents given as bytes (one commit); the rest of the index is kept.
    pub fn put(
        &self,
        documents: Vec<ingest::NewDocument>,
        progress: &dyn IngestProgress,
    ) -> Result<IngestReport> {
        ingest::put(self, documents, progress)
    }

    /// Runs a query on the current snapshot, through the cache when the request allows it.
    pub fn search(&self, request: &SearchRequest<'_>) -> Result<SearchOutcome> {
        let snapshot = self.snapshot();
        self.cache.count_query();
        let key = request.use_cache.then(|| CacheKey {
            terms: CacheKey::normalise(request.query),
            ranking: request.ranking,
            limit: request.limit,
            offset: request.offset,
            with_content: request.with_content,
            with_total: request.with_total,
            with_snippets: request.with_snippets,
            generation: snapshot.catalog.generation(),
        });
        if let Some(results) = key.as_ref().and_then(|key| self.cache.get(key)) {
            return Ok(SearchOutcome {
                results,
                cached: true,
            });
        }
        // Hybrid on an index without vectors yet (before the first ingest with the model
        // finishes) is its keyword side, as KnowledgeBeast degrades to keyword search.
        let degraded;
        let request = if matches!(request.ranking, Ranking::Hybrid(_)) && snapshot.vectors.is_none()
        {
            degraded = SearchRequest {
                ranking: Ranking::Bm25,
                ..*request
            };
            &degraded
        } else {
            request
        };
        let query_vector = if request.ranking.uses_vectors() {
            let vector = self.query_vector(request.query)?;
            if let (Some(table), Some(embedder)) = (&snapshot.vectors, &self.embedder) {
                if table.fingerprint != embedder.fingerprint() {
                    return Err(Error::NoVectors(format!(
                        "the index's vectors were made by another model ({}); run `mneme ingest` to embed again with {}",
                        table.fingerprint,
                        embedder.fingerprint()
                    )));
                }
            }
            Some(vector)
        } else {
            None
        };
        let results = Arc::new(run(
            &snapshot,
            request,
            query_vector.as_deref().map(Vec::as_slice),
        )?);
        if let Some(key) = key {
            self.cache.put(key, results.clone());
        }
        Ok(SearchOutcome {
            results,
            cached: false,
        })
    }

    /// Runs each query through the cache (top `limit` by `ranking`, no snippets: the shape of
    /// an API query), so that the first API request for it is a hit; also pages the index into
    /// memory. Returns how many ran.
    pub fn warm(&self, queries: &[String], ranking: Ranking, limit: usize) -> Result<usize> {
        let mut executed = 0;
        for query in queries {
            let request = SearchRequest {
                query,
                ranking,
                limit,
                offset: 0,
                with_content: false,
                with_total: false,
                use_cache: true,
                with_snippets: false,
            };
            match self.search(&request) {
                Ok(_) => executed += 1,
                Err(Error::InvalidQuery(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(executed)
    }

    /// Saves the result cache and its counters in the index directory, so that the next
    /// process that opens the index starts warm (entries of older generations are dropped on
    /// load). Best effort: the cache is not data.
    pub fn persist_cache(&self) -> Result<()> {
        let path = self.dir.join(CACHE_FILE);
        self.cache
            .save(&path)
            .map_err(|err| Error::io(format!("writing {}", path.display()), err))
    }

    /// Records that a query was answered at `unix_ms` (by the caller's clock), for the
    /// `last access` statistic; it is persisted with the cache.
    pub fn record_access(&self, unix_ms: u64) {
        self.cache.record_access(unix_ms);
    }

    /// Records a warm-up of `queries` queries that took `elapsed` (by the caller's clock); the
    /// figures are persisted with the cache.
    pub fn record_warm(&self, queries: usize, elapsed: std::time::Duration) {
        self.cache.record_warm(queries, elapsed);
    }

    /// Empties the result cache; returns how many entries it held.
    pub fn clear_cache(&self) -> usize {
        self.cache.clear()
    }

    pub fn stats(&self) -> KbStats {
        let snapshot = self.snapshot();
        let catalog = &snapshot.catalog;
        let (query_vector_hits, query_vector_misses) = {
            let cache = self.query_vectors.lock().unwrap_or_else(|p| p.into_inner());
            (cache.hits, cache.misses)
        };
        KbStats {
            vectors: snapshot.vectors.as_ref().map_or(0, |v| v.len()),
            embedding_model: self.embedder.as_ref().map(|e| e.name()),
            embedding_dim: self.embedder.as_ref().map(|e| e.dim()),
            query_vector_hits,
            query_vector_misses,
            documents: catalog.document_count(),
            chunks: catalog.chunk_count(),
            terms: catalog.term_count(),
            generation: catalog.generation(),
            settings: catalog.settings(),
            cache: self.cache.stats(),
        }
    }

    /// The generation readers currently see (0 before the first ingest).
    pub fn generation(&self) -> u64 {
        self.snapshot().catalog.generation()
    }

    /// The catalog entry of one document.
    pub fn document(&self, doc_id: &str) -> Option<DocEntry> {
        self.snapshot().catalog.get(doc_id).cloned()
    }

    /// Every doc_id in the index, sorted.
    pub fn doc_ids(&self) -> Vec<String> {
        let snapshot = self.snapshot();
        let mut ids: Vec<String> = snapshot
            .catalog
            .documents()
            .map(|e| e.doc_id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The full text of one document, rebuilt from its chunks.
    pub fn document_text(&self, doc_id: &str) -> Result<Option<String>> {
        let snapshot = self.snapshot();
        let Some(entry) = snapshot.catalog.get(doc_id) else {
            return Ok(None);
        };
        Ok(Some(search::stitch(&search::document_chunks(
            &snapshot, entry.key,
        )?)))
    }

    /// Picks up a generation committed by another process; returns whether it changed.
    pub fn refresh(&self) -> Result<bool> {
        let _writing = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (generation, searcher) = consistent_searcher(&self.index, &self.reader)?;
        if generation == self.generation() {
            return Ok(false);
        }
        let catalog = Arc::new(Catalog::load(&self.dir, generation)?);
        let vectors = VectorTable::load(&self.dir, generation)?.map(Arc::new);
        self.swap(Snapshot::new(catalog, searcher, self.fields, vectors));
        Ok(true)
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes a just-committed generation visible to readers.
    pub(crate) fn install(
        &self,
        catalog: Arc<Catalog>,
        vectors: Option<Arc<VectorTable>>,
    ) -> Result<()> {
        let (generation, searcher) = consistent_searcher(&self.index, &self.reader)?;
        if generation != catalog.generation() {
            return Err(Error::Corrupt(format!(
                "committed generation {} but the index names {generation}",
                catalog.generation()
            )));
        }
        self.swap(Snapshot::new(catalog, searcher, self.fields, vectors));
        Ok(())
    }

    fn swap(&self, snapshot: Snapshot) {
        let generation = snapshot.catalog.generation();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        self.cache.retain_generation(generation);
    }
}

/// Runs `request` on `snapshot` with the ranking it asks for; vector and hybrid ranking need
/// the query's embedding.
fn run(
    snapshot: &Snapshot,
    request: &SearchRequest<'_>,
    query_vector: Option<&[f32]>,
) -> Result<SearchResults> {
    if request
        .query
        .trim_matches(text::is_py_whitespace)
        .is_empty()
    {
        return Err(Error::InvalidQuery("Search terms cannot be empty".into()));
    }
    match request.ranking {
        Ranking::Bm25 => search::bm25(snapshot, request),
        Ranking::Terms => search::terms(snapshot, request),
        Ranking::Vector | Ranking::Hybrid(_) => {
            let query_vector = query_vector
                .ok_or_else(|| Error::NoVectors("this query needs the query's embedding".into()))?;
            hybrid::run(snapshot, request, query_vector)
        }
    }
}

/// A searcher over exactly the segments of the last commit, with that commit's generation.
/// Another process may commit between reading `meta.json` and reloading; then try again.
fn consistent_searcher(index: &Index, reader: &IndexReader) -> Result<(u64, Searcher)> {
    for _ in 0..20 {
        let metas = index.load_metas()?;
        let generation = index::committed_generation(index)?;
        reader.reload()?;
        let searcher = reader.searcher();
        let committed: BTreeSet<_> = metas
            .segments
            .iter()
            .map(|s| (s.id(), s.num_deleted_docs()))
            .collect();
        let loaded: BTreeSet<_> = searcher
            .segment_readers()
            .iter()
            .map(|s| (s.segment_id(), s.num_deleted_docs()))
            .collect();
        if committed == loaded {
            return Ok((generation, searcher));
        }
    }
    Err(Error::Corrupt(
        "the index keeps changing under this reader; try again".into(),
    ))
}
