//! The query-result cache: an exact LRU (KnowledgeBeast's `OrderedDict` semantics) whose key
//! holds the index generation, so that an answer computed before an ingest can never be served
//! after it.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lru::LruCache;

use crate::query::{Ranking, SearchResults};
use crate::text;

/// What identifies an answer: normalised query, every option that changes the answer, and the
/// generation of the index it was computed on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct CacheKey {
    pub terms: String,
    pub ranking: Ranking,
    pub limit: usize,
    pub offset: usize,
    pub with_content: bool,
    pub with_total: bool,
    pub with_snippets: bool,
    pub generation: u64,
}

impl CacheKey {
    /// The normalised query: lowercase, whitespace-split, distinct terms sorted, so that
    /// `Audio Processing` and `processing audio` share an entry.
    pub fn normalise(query: &str) -> String {
        text::py_terms(query).join(" ")
    }
}

/// Hit and miss counters with the current size, for stats and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Queries answered, cached or not.
    pub queries: u64,
    /// When the last query was answered (Unix milliseconds by the caller's clock).
    pub last_access_ms: Option<u64>,
    /// Warming queries run so far (KnowledgeBeast's `warm_queries`).
    pub warm_queries: u64,
    /// How long the last warm-up took, as the caller measured it (`last_warm_time`).
    pub last_warm: Option<Duration>,
    pub entries: usize,
    pub capacity: usize,
}

impl CacheStats {
    /// Hits over lookups, 0.0 before the first lookup.
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

pub(crate) struct QueryCache {
    entries: Mutex<LruCache<CacheKey, Arc<SearchResults>>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    queries: AtomicU64,
    /// When the last query was answered, as the caller's clock said (Unix milliseconds, 0 for
    /// never): the engine reads no clock of its own.
    last_access_ms: AtomicU64,
    warm_queries: AtomicU64,
    /// Duration of the last warm-up in microseconds, plus one (0 for never).
    last_warm_us: AtomicU64,
}

/// 3: the warm-up counters joined the others, so that `mneme stats` after `mneme warm` (two
/// processes) reports them.
const CACHE_FORMAT: u32 = 3;

#[derive(serde::Serialize, serde::Deserialize)]
struct Persisted {
    format: u32,
    hits: u64,
    misses: u64,
    queries: u64,
    last_access_ms: u64,
    warm_queries: u64,
    last_warm_us: u64,
    entries: Vec<(CacheKey, SearchResults)>,
}

impl QueryCache {
    pub fn new(capacity: NonZeroUsize) -> QueryCache {
        QueryCache {
            entries: Mutex::new(LruCache::new(capacity)),
            capacity: capacity.get(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            last_access_ms: AtomicU64::new(0),
            warm_queries: AtomicU64::new(0),
            last_warm_us: AtomicU64::new(0),
        }
    }

    pub fn get(&self, key: &CacheKey) -> Option<Arc<SearchResults>> {
        let found = self.lock().get(key).cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn put(&self, key: CacheKey, results: Arc<SearchResults>) {
        self.lock().put(key, results);
    }

    /// Empties the cache and returns how many entries it held.
    pub fn clear(&self) -> usize {
        let mut entries = self.lock();
        let n = entries.len();
        entries.clear();
        n
    }

    /// Drops entries of generations other than `generation` (they can never hit again).
    pub fn retain_generation(&self, generation: u64) {
        let mut entries = self.lock();
        let stale: Vec<CacheKey> = entries
            .iter()
            .filter(|(key, _)| key.generation != generation)
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            entries.pop(&key);
        }
    }

    /// Writes the entries (least recently used first) and counters to `path`, replacing it
    /// atomically. The file is only a cache: a torn or stale one is ignored by `load`.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let state = {
            let entries = self.lock();
            Persisted {
                format: CACHE_FORMAT,
                hits: self.hits.load(Ordering::Relaxed),
                misses: self.misses.load(Ordering::Relaxed),
                queries: self.queries.load(Ordering::Relaxed),
                last_access_ms: self.last_access_ms.load(Ordering::Relaxed),
                warm_queries: self.warm_queries.load(Ordering::Relaxed),
                last_warm_us: self.last_warm_us.load(Ordering::Relaxed),
                entries: entries
                    .iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), (**v).clone()))
                    .collect(),
            }
        };
        let body = postcard::to_allocvec(&state).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("bin.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes())?;
        file.write_all(&body)?;
        drop(file);
        std::fs::rename(tmp, path)
    }

    /// Restores what `save` wrote, keeping only entries of `generation`. Returns false (and
    /// keeps the cache empty) when the file is missing or unreadable.
    pub fn load(&self, path: &Path, generation: u64) -> bool {
        let Ok(bytes) = std::fs::read(path) else {
            return false;
        };
        let Some((sum, body)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != *sum {
            return false;
        }
        let Ok(state) = postcard::from_bytes::<Persisted>(body) else {
            return false;
        };
        if state.format != CACHE_FORMAT {
            return false;
        }
        self.hits.store(state.hits, Ordering::Relaxed);
        self.misses.store(state.misses, Ordering::Relaxed);
        self.queries.store(state.queries, Ordering::Relaxed);
        self.last_access_ms
            .store(state.last_access_ms, Ordering::Relaxed);
        self.warm_queries
            .store(state.warm_queries, Ordering::Relaxed);
        self.last_warm_us
            .store(state.last_warm_us, Ordering::Relaxed);
        let mut entries = self.lock();
        for (key, results) in state.entries {
            if key.generation == generation {
                entries.put(key, Arc::new(results));
            }
        }
        true
    }

    /// Counts one query answered (from the cache or not).
    pub fn count_query(&self) {
        self.queries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_access(&self, unix_ms: u64) {
        self.last_access_ms.fetch_max(unix_ms, Ordering::Relaxed);
    }

    pub fn record_warm(&self, queries: usize, elapsed: Duration) {
        self.warm_queries
            .fetch_add(queries as u64, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX - 1);
        self.last_warm_us.store(micros + 1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            queries: self.queries.load(Ordering::Relaxed),
            last_access_ms: Some(self.last_access_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0),
            warm_queries: self.warm_queries.load(Ordering::Relaxed),
            last_warm: match self.last_warm_us.load(Ordering::Relaxed) {
                0 => None,
                us => Some(Duration::from_micros(us - 1)),
            },
            entries: self.lock().len(),
            capacity: self.capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<CacheKey, Arc<SearchResults>>> {
        // A panic while holding the lock cannot leave the LRU half-updated in a way that
        // matters for correctness (entries are immutable Arcs), so recover from poisoning.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
