//! `Kb`: the knowledge base behind `knowledgebeast.KnowledgeBase` (every match, as
//! `[(doc_id, doc)]` with the whole document) and the `KnowledgeBeast` facade (top passages).
//!
//! Ranking runs with the GIL released. Python objects are built with it held, and kept: each
//! document's `(doc_id, {path, content, name, kb_dir})` is made once per index generation and
//! copied per hit (as KnowledgeBeast copies its document dicts), and answers are cached as
//! the lists they were returned as, in an LRU of `max_cache_size` keyed by the normalised
//! query (lowercase, distinct words sorted), the ranking, `top_k` and the generation, so an
//! ingest can never leave a stale answer behind.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use mneme_app::Knowledge;
use mneme_kb::{
    Alpha, DocEntry, Fusion, IngestOptions, IngestProgress, Ranked, Ranking, SearchRequest,
    SearchResults,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rayon::prelude::*;

use crate::errors;

/// The settings a `KnowledgeBeastConfig` maps to, as the engine reads them.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Options {
    data_dir: String,
    /// `None`: `<data_dir>/kb`, the CLI's index.
    index_dir: Option<String>,
    knowledge_dirs: Vec<String>,
    max_cache_size: usize,
    max_workers: usize,
    chunk_size: usize,
    chunk_overlap: usize,
    /// `auto`, `none`, a model name (a folder in `<data_dir>/models`) or a folder.
    embedding_model: String,
    warming_queries: Vec<String>,
}

/// Which ranking a query gets, and whether it is every match or the top `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Plan {
    All(Ranking),
    Top(Ranking, usize),
}

impl Plan {
    fn counter(self) -> &'static str {
        match self {
            Plan::All(_) => "keyword_queries",
            Plan::Top(Ranking::Vector, _) => "vector_queries",
            Plan::Top(..) => "hybrid_queries",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AnswerKey {
    generation: u64,
    terms: String,
    plan: Plan,
}

/// A document as the library returns it: its doc_id and its dict, made once per generation.
struct Doc {
    id: Py<PyString>,
    dict: Py<PyDict>,
}

#[derive(Default)]
struct Counters {
    queries: u64,
    cache_hits: u64,
    cache_misses: u64,
    keyword_queries: u64,
    vector_queries: u64,
    hybrid_queries: u64,
    last_access: Option<Instant>,
}

/// State touched only with the GIL held, and never across a `detach`.
struct State {
    counters: Counters,
    answers: lru::LruCache<AnswerKey, Py<PyList>>,
    docs_generation: u64,
    docs: HashMap<String, Doc>,
}

#[pyclass(frozen, module = "mneme._native")]
pub struct Kb {
    knowledge: Knowledge,
    state: Mutex<State>,
    /// Chunks embedded by this object's ingests.
    embedded: AtomicU64,
}

impl Kb {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kb(&self) -> &mneme_kb::KnowledgeBase {
        &self.knowledge.kb
    }

    /// The ranking `mode` asks for on this index (KnowledgeBeast: vectors off, or no vectors
    /// yet, mean the keyword path for hybrid; `terms` is mneme's exact KnowledgeBeast order).
    fn plan(&self, mode: &str, top_k: usize, alpha: Option<f64>, vectors: bool) -> PyResult<Plan> {
        let ready = self.kb().has_embedder() && self.kb().has_vectors();
        let alpha = match alpha {
            None => Alpha::new(self.knowledge.settings.hybrid_alpha as f32).unwrap_or_default(),
            Some(a) => Alpha::new(a as f32).ok_or_else(|| {
                PyValueError::new_err(format!("alpha must be between 0.0 and 1.0, got {a}"))
            })?,
        };
        Ok(match mode {
            "keyword" => Plan::All(Ranking::Bm25),
            "terms" => Plan::All(Ranking::Terms),
            "hybrid" if ready => Plan::Top(Ranking::Hybrid(Fusion::Weighted(alpha)), top_k),
            "hybrid" => Plan::All(Ranking::Bm25),
            "vector" if ready => Plan::Top(Ranking::Vector, top_k),
            "vector" if !vectors => Plan::All(Ranking::Bm25),
            "vector" => {
                return Err(PyRuntimeError::new_err(if self.kb().has_embedder() {
                    "vector search needs the documents' vectors: run ingest_all() with the model configured".to_owned()
                } else {
                    "vector search needs an embedding model: run mneme's scripts/fetch-model (all-MiniLM-L6-v2 into <data_dir>/models), or pass embedding_model= a sentence-transformers folder".to_owned()
                }));
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode must be 'keyword', 'vector', 'hybrid' or 'terms', got {other:?}"
                )));
            }
        })
    }

    /// The documents' Python objects for `entries` of `generation`, making the missing ones
    /// (their text is rebuilt with the GIL released, in parallel).
    fn ensure_docs<'e>(
        &self,
        py: Python<'_>,
        generation: u64,
        entries: &[&'e DocEntry],
        text: &(dyn Fn(&DocEntry) -> Option<String> + Sync),
    ) -> PyResult<()> {
        let missing: Vec<&DocEntry> = {
            let mut state = self.state();
            if state.docs_generation != generation {
                state.docs.clear();
                state.docs_generation = generation;
            }
            entries
                .iter()
                .filter(|e| !state.docs.contains_key(&e.doc_id))
                .copied()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let texts: Vec<Option<String>> =
            py.detach(|| missing.par_iter().map(|e| text(e)).collect());
        let mut state = self.state();
        if state.docs_generation != generation {
            return Ok(());
        }
        for (entry, content) in missing.into_iter().zip(texts) {
            let dict = PyDict::new(py);
            dict.set_item("path", &entry.path)?;
            dict.set_item("content", content.unwrap_or_default())?;
            dict.set_item("name", &entry.name)?;
            dict.set_item("kb_dir", &entry.kb_dir)?;
            state.docs.insert(
                entry.doc_id.clone(),
                Doc {
                    id: PyString::new(py, &entry.doc_id).unbind(),
                    dict: dict.unbind(),
                },
            );
        }
        Ok(())
    }

    /// `[(doc_id, dict)]` for the doc_ids, in order (documents that vanished are left out).
    fn answer_list<'py>(
        &self,
        py: Python<'py>,
        generation: u64,
        ids: &[&str],
    ) -> PyResult<Bound<'py, PyList>> {
        let state = self.state();
        let mut items = Vec::with_capacity(ids.len());
        if state.docs_generation == generation {
            for id in ids {
                if let Some(doc) = state.docs.get(*id) {
                    let pair = PyTuple::new(
                        py,
                        [
                            doc.id.bind(py).clone().into_any(),
                            doc.dict.bind(py).copy()?.into_any(),
                        ],
                    )?;
                    items.push(pair);
                }
            }
        }
        PyList::new(py, items)
    }
}

/// Ingest progress for KnowledgeBeast's `progress_callback(message, current, total)`.
struct Progress {
    callback: Option<Py<PyAny>>,
    total: AtomicUsize,
    done: AtomicUsize,
}

impl IngestProgress for Progress {
    fn planned(&self, files: usize, _bytes: u64) {
        self.total.store(files, Ordering::Relaxed);
    }

    fn advanced(&self, path: &Path, _bytes: u64) {
        let Some(callback) = &self.callback else {
            return;
        };
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed).max(done);
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Python::attach(|py| {
            // KnowledgeBeast reports a failing callback and goes on.
            if let Err(err) = callback.call1(py, (format!("Ingesting {name}"), done, total)) {
                err.display(py);
            }
        });
    }
}

#[pymethods]
impl Kb {
    #[new]
    fn new(py: Python<'_>, options: Options) -> PyResult<Kb> {
        let mut given: HashMap<&str, Option<String>> = HashMap::new();
        given.insert("MNEME_DATA_DIR", Some(options.data_dir.clone()));
        given.insert("KB_CACHE_FILE", options.index_dir.clone());
        given.insert("KB_EMBEDDING_MODEL", Some(options.embedding_model.clone()));
        given.insert(
            "KB_MAX_CACHE_SIZE",
            Some(options.max_cache_size.to_string()),
        );
        given.insert("KB_MAX_WORKERS", Some(options.max_workers.to_string()));
        given.insert("KB_CHUNK_SIZE", Some(options.chunk_size.to_string()));
        given.insert("KB_CHUNK_OVERLAP", Some(options.chunk_overlap.to_string()));
        // The Python side runs the warming queries (through this object's answer cache).
        given.insert("KB_AUTO_WARM", Some("false".into()));
        // Settings KnowledgeBeastConfig does not name (MNEME_KB_STEMMING, MNEME_HYBRID_ALPHA,
        // ...) come from the environment, as for the CLI and the server.
        let lookup = |var: &str| match given.get(var) {
            Some(value) => value.clone(),
            None => std::env::var(var).ok(),
        };
        let mut config = mneme_app::config::load(None, &lookup, &[]).map_err(errors::config)?;
        config.kb.knowledge_dirs = options.knowledge_dirs.iter().map(PathBuf::from).collect();
        config.kb.warming_queries = options.warming_queries;
        let settings = config.kb;
        let knowledge = py
            .detach(|| Knowledge::open(&settings))
            .map_err(errors::kb)?;
        let capacity = NonZeroUsize::new(settings.max_cache_size).unwrap_or(NonZeroUsize::MIN);
        Ok(Kb {
            knowledge,
            state: Mutex::new(State {
                counters: Counters::default(),
                answers: lru::LruCache::new(capacity),
                docs_generation: u64::MAX,
                docs: HashMap::new(),
            }),
            embedded: AtomicU64::new(0),
        })
    }

    /// Ingests `roots` (files and directories; with `rebuild`, everything else is dropped:
    /// no roots and `rebuild` empties the index). Returns what the ingest did.
    #[pyo3(signature = (roots, rebuild=false, progress=None))]
    fn ingest<'py>(
        &self,
        py: Python<'py>,
        roots: Vec<PathBuf>,
        rebuild: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let options = IngestOptions {
            rebuild,
            knowledge_dirs: self.knowledge.knowledge_dirs(),
            links: if self.knowledge.settings.follow_external_links {
                mneme_kb::LinkPolicy::Any
            } else {
                mneme_kb::LinkPolicy::Inside
            },
        };
        let progress = Progress {
            callback: progress,
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        };
        let report = py
            .detach(|| self.kb().ingest(&roots, options, &progress))
            .map_err(errors::kb)?;
        self.embedded
            .fetch_add(report.embedded as u64, Ordering::Relaxed);
        let out = PyDict::new(py);
        out.set_item("files", report.files)?;
        out.set_item("added", report.added)?;
        out.set_item("updated", report.updated)?;
        out.set_item("unchanged", report.unchanged)?;
        out.set_item("removed", report.removed)?;
        out.set_item("ignored", report.ignored)?;
        let problems: Vec<(String, String, String)> = report
            .problems
            .iter()
            .map(|(path, problem)| {
                (
                    path.display().to_string(),
                    problem.kind.name().to_owned(),
                    problem.detail.clone(),
                )
            })
            .collect();
        out.set_item("problems", problems)?;
        out.set_item("documents", report.documents)?;
        out.set_item("chunks", report.chunks)?;
        out.set_item("generation", report.generation)?;
        out.set_item("committed", report.committed)?;
        out.set_item("embedded", report.embedded)?;
        Ok(out)
    }

    /// KnowledgeBeast's `query`: `[(doc_id, {path, content, name, kb_dir})]`, every match in
    /// keyword mode, the top `top_k` in vector and hybrid mode.
    #[pyo3(signature = (search_terms, use_cache=true, mode="hybrid", top_k=10, alpha=None, vectors=true))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
    fn query<'py>(
        &self,
        py: Python<'py>,
        search_terms: &str,
        use_cache: bool,
        mode: &str,
        top_k: usize,
        alpha: Option<f64>,
        vectors: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        if search_terms
            .trim_matches(mneme_kb::text::is_py_whitespace)
            .is_empty()
        {
            return Err(PyValueError::new_err("Search terms cannot be empty"));
        }
        if top_k == 0 {
            return Err(PyValueError::new_err("top_k must be at least 1"));
        }
        let plan = self.plan(mode, top_k, alpha, vectors)?;
        let key = AnswerKey {
            generation: self.kb().generation(),
            terms: mneme_kb::text::py_terms(search_terms).join(" "),
            plan,
        };
        {
            let mut state = self.state();
            let counters = &mut state.counters;
            counters.queries += 1;
            counters.last_access = Some(Instant::now());
            if use_cache {
                if let Some(list) = state.answers.get(&key) {
                    let list = list.bind(py).clone();
                    state.counters.cache_hits += 1;
                    return Ok(list.get_slice(0, list.len()));
                }
            }
            let counters = &mut state.counters;
            counters.cache_misses += 1;
            match plan.counter() {
                "keyword_queries" => counters.keyword_queries += 1,
                "vector_queries" => counters.vector_queries += 1,
                _ => counters.hybrid_queries += 1,
            }
        }
        let (generation, list) = match plan {
            Plan::All(ranking) => {
                // Held, not released: ranking every match of a keyword query takes tens of
                // microseconds on a small index, less than a thread waits to take the GIL back
                // while another runs Python (CPython's 5 ms switch interval), so releasing it
                // made threads of queries 3-4 times slower than one (docs/benchmarks.md).
                let ranked: Ranked = self
                    .kb()
                    .rank_all(search_terms, ranking)
                    .map_err(errors::kb)?;
                let entries: Vec<&DocEntry> = ranked.iter().map(|(_, e)| e).collect();
                let text = |e: &DocEntry| ranked.text(e).ok();
                self.ensure_docs(py, ranked.generation(), &entries, &text)?;
                let ids: Vec<&str> = entries.iter().map(|e| e.doc_id.as_str()).collect();
                (
                    ranked.generation(),
                    self.answer_list(py, ranked.generation(), &ids)?,
                )
            }
            Plan::Top(ranking, limit) => {
                let request = SearchRequest {
                    query: search_terms,
                    ranking,
                    limit,
                    offset: 0,
                    with_content: false,
                    with_total: false,
                    use_cache: false,
                    with_snippets: false,
                };
                let results: Arc<SearchResults> = py
                    .detach(|| self.kb().search(&request))
                    .map_err(errors::kb)?
                    .results;
                let entries: Vec<DocEntry> = results
                    .hits
                    .iter()
                    .map(|hit| DocEntry {
                        doc_id: hit.doc_id.clone(),
                        key: 0,
                        path: hit.path.clone(),
                        kb_dir: hit.kb_dir.clone(),
                        name: hit.name.clone(),
                        title: hit.title.clone(),
                        format: hit.format,
                        size: 0,
                        mtime_ns: 0,
                        hash: [0; 16],
                        n_chunks: hit.chunk_count,
                        n_chars: 0,
                    })
                    .collect();
                let refs: Vec<&DocEntry> = entries.iter().collect();
                let kb = self.kb();
                let text = |e: &DocEntry| kb.document_text(&e.doc_id).ok().flatten();
                self.ensure_docs(py, results.generation, &refs, &text)?;
                let ids: Vec<&str> = entries.iter().map(|e| e.doc_id.as_str()).collect();
                (
                    results.generation,
                    self.answer_list(py, results.generation, &ids)?,
                )
            }
        };
        if use_cache && generation == key.generation {
            self.state().answers.put(key, list.clone().unbind());
        }
        Ok(list)
    }

    /// The facade's query: the top `limit` passages as `{text, metadata, distance, score}`,
    /// through the engine's own result cache.
    #[pyo3(signature = (query, limit=5, use_cache=true, mode=None))]
    fn passages<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        limit: usize,
        use_cache: bool,
        mode: Option<&str>,
    ) -> PyResult<Bound<'py, PyList>> {
        if query
            .trim_matches(mneme_kb::text::is_py_whitespace)
            .is_empty()
        {
            return Err(PyValueError::new_err("Search terms cannot be empty"));
        }
        if limit == 0 {
            return Err(PyValueError::new_err("n_results must be at least 1"));
        }
        let ranking = match mode {
            None => mneme_app::default_ranking(self.kb(), &self.knowledge.settings),
            Some(mode) => match self.plan(mode, limit, None, true)? {
                Plan::All(ranking) | Plan::Top(ranking, _) => ranking,
            },
        };
        let request = SearchRequest {
            query,
            ranking,
            limit,
            offset: 0,
            with_content: false,
            with_total: false,
            use_cache,
            with_snippets: false,
        };
        let outcome = py
            .detach(|| self.knowledge.search(&request))
            .map_err(errors::kb)?;
        let items = PyList::empty(py);
        for hit in &outcome.results.hits {
            let metadata = PyDict::new(py);
            metadata.set_item("source", &hit.path)?;
            metadata.set_item("doc_id", &hit.doc_id)?;
            metadata.set_item("name", &hit.name)?;
            metadata.set_item("title", &hit.title)?;
            metadata.set_item("kb_dir", &hit.kb_dir)?;
            metadata.set_item("heading_path", hit.heading_path.join(" > "))?;
            metadata.set_item("chunk_index", hit.chunk_index)?;
            metadata.set_item("total_chunks", hit.chunk_count)?;
            // Vector and hybrid scores are similarities in [0, 1]; BM25 is unbounded.
            let distance = match ranking {
                Ranking::Vector | Ranking::Hybrid(_) => 1.0 - f64::from(hit.score),
                Ranking::Bm25 | Ranking::Terms => 1.0 / (1.0 + f64::from(hit.score)),
            };
            let item = PyDict::new(py);
            item.set_item("text", &hit.passage)?;
            item.set_item("metadata", metadata)?;
            item.set_item("distance", distance)?;
            item.set_item("score", hit.score)?;
            items.append(item)?;
        }
        Ok(items)
    }

    /// The doc_id and chunk count of the indexed document read from `path`, if any.
    fn document_of_path(&self, py: Python<'_>, path: PathBuf) -> Option<(String, u32)> {
        let kb = self.kb();
        py.detach(|| {
            let wanted = std::fs::canonicalize(&path).unwrap_or(path);
            kb.doc_ids().into_iter().find_map(|id| {
                let entry = kb.document(&id)?;
                (Path::new(&entry.path) == wanted).then_some((entry.doc_id, entry.n_chunks))
            })
        })
    }

    /// Counters and sizes for `get_stats()`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let kb = py.detach(|| self.kb().stats());
        let out = PyDict::new(py);
        {
            let state = self.state();
            let c = &state.counters;
            out.set_item("queries", c.queries)?;
            out.set_item("cache_hits", c.cache_hits)?;
            out.set_item("cache_misses", c.cache_misses)?;
            out.set_item("keyword_queries", c.keyword_queries)?;
            out.set_item("vector_queries", c.vector_queries)?;
            out.set_item("hybrid_queries", c.hybrid_queries)?;
            out.set_item(
                "last_access_seconds",
                c.last_access.map(|t| t.elapsed().as_secs_f64()),
            )?;
            out.set_item("cached_queries", state.answers.len())?;
            out.set_item("cache_capacity", state.answers.cap().get())?;
        }
        out.set_item("documents", kb.documents)?;
        out.set_item("chunks", kb.chunks)?;
        out.set_item("terms", kb.terms)?;
        out.set_item("generation", kb.generation)?;
        out.set_item("vectors", kb.vectors)?;
        out.set_item("embedding_model", kb.embedding_model)?;
        out.set_item(
            "embeddings_generated",
            self.embedded.load(Ordering::Relaxed) + kb.query_vector_misses,
        )?;
        // The engine's own result cache (the facade's queries go through it).
        let cache = PyDict::new(py);
        cache.set_item("size", kb.cache.entries)?;
        cache.set_item("max_size", kb.cache.capacity)?;
        cache.set_item("hits", kb.cache.hits)?;
        cache.set_item("misses", kb.cache.misses)?;
        cache.set_item("hit_rate", kb.cache.hit_rate())?;
        out.set_item("search_cache", cache)?;
        Ok(out)
    }

    /// Empties this object's answer cache and the engine's result cache; returns how many
    /// answers this object held.
    fn clear_cache(&self) -> usize {
        let mut state = self.state();
        let n = state.answers.len();
        state.answers.clear();
        drop(state);
        self.kb().clear_cache();
        n
    }

    /// Whether vector and hybrid ranking are available (a model and embedded documents).
    fn has_vectors(&self) -> bool {
        self.kb().has_embedder() && self.kb().has_vectors()
    }

    fn has_model(&self) -> bool {
        self.kb().has_embedder()
    }

    #[getter]
    fn index_dir(&self) -> String {
        self.kb().dir().display().to_string()
    }

    #[getter]
    fn knowledge_dirs(&self) -> Vec<String> {
        self.knowledge
            .knowledge_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect()
    }

    /// Saves the engine's result cache and counters in the index directory (best effort).
    fn persist(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.kb().persist_cache()).map_err(errors::kb)
    }
}
