//! The knowledge-base engine of mneme: documents in, ranked passages out.
//!
//! Files (markdown, text, HTML, PDF, DOCX, source code) are converted to text, cut into
//! heading-aware chunks and indexed with tantivy for BM25; a catalog beside the index keeps
//! the document table and KnowledgeBeast's `lower().split()` word index for its `terms`
//! ranking. Queries run on immutable snapshots through an LRU result cache keyed by index
//! generation.
//!
//! This crate does no I/O outside the index directory and the paths it is given, reads no
//! environment and no clock, and knows nothing of HTTP or JSON.
//!
//! ```
//! use std::num::NonZeroUsize;
//! use mneme_kb::{ChunkConfig, IngestOptions, KbConfig, KnowledgeBase, NoProgress, Ranking, SearchRequest};
//!
//! let docs = tempfile::tempdir()?;
//! std::fs::write(docs.path().join("cache.md"), "# Caching\n\nThe LRU cache keeps hot answers.")?;
//! let data = tempfile::tempdir()?;
//! let config = KbConfig {
//!     chunk: ChunkConfig { chunk_size: 1000, chunk_overlap: 200 },
//!     stemming: false,
//!     max_file_size: 1 << 20,
//!     max_workers: 1,
//!     cache_capacity: NonZeroUsize::new(100).unwrap(),
//!     writer_memory_per_thread: 16 << 20,
//! };
//! let kb = KnowledgeBase::open(data.path(), config)?;
//! kb.ingest(&[docs.path().to_path_buf()], IngestOptions::default(), &NoProgress)?;
//! let request = SearchRequest {
//!     query: "hot cache",
//!     ranking: Ranking::Bm25,
//!     limit: 10,
//!     offset: 0,
//!     with_content: false,
//!     with_total: false,
//!     use_cache: true,
//!     with_snippets: true,
//! };
//! let hits = &kb.search(&request)?.results.hits;
//! assert_eq!(hits[0].title, "Caching");
//! assert_eq!(hits[0].snippet.marked("[", "]"), "# Caching\n\nThe LRU [cache] keeps [hot] answers.");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod catalog;
mod chunk;
pub mod convert;
mod engine;
mod error;
mod files;
mod hybrid;
mod index;
mod ingest;
mod pending;
mod query;
mod ranked;
mod search;
mod snapshot;
mod snippet;
pub mod text;
mod vectors;
mod walk;

pub use cache::CacheStats;
pub use catalog::{DocEntry, IndexSettings};
pub use chunk::{ChunkConfig, ChunkSpan, chunk_text};
pub use engine::{KbConfig, KbStats, KnowledgeBase, SearchOutcome};
pub use error::{Error, ErrorKind, Result};
pub use ingest::{IngestOptions, IngestProgress, IngestReport, NewDocument, NoProgress, Scan};
pub use query::{
    Alpha, DEFAULT_ALPHA, FORBIDDEN_QUERY_CHARS, Fusion, Hit, MAX_QUERY_CHARS, Ranking,
    SearchRequest, SearchResults, Snippet, validate_query,
};
pub use ranked::Ranked;
pub use vectors::Embedder;
pub use walk::LinkPolicy;

/// Entry points of the fuzz targets in `fuzz/` (not part of the API): the loaders of the
/// files mneme writes, fed a file whose header and checksum are valid around fuzzed contents,
/// so that the decoding behind the checksum is what gets exercised.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    /// Writes `body` as the catalog of generation 1 in `dir` (valid header and checksum) and
    /// loads it; a load must answer, never panic.
    pub fn load_catalog(dir: &Path, body: &[u8]) -> bool {
        let mut bytes = b"MNEMECAT".to_vec();
        bytes.extend_from_slice(&crate::catalog::CATALOG_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(body).to_le_bytes());
        std::fs::write(crate::catalog::catalog_path(dir, 1), bytes).expect("writing the catalog");
        crate::catalog::Catalog::load(dir, 1).is_ok()
    }

    /// Writes `contents` (everything after the magic and format) as the vector table of
    /// generation 1 in `dir`, with a valid checksum, and loads it.
    pub fn load_vectors(dir: &Path, contents: &[u8]) -> bool {
        let mut bytes = b"MNEMEVEC".to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(contents);
        let sum = xxhash_rust::xxh3::xxh3_64(bytes.get(20..).unwrap_or(&[]));
        bytes.extend_from_slice(&sum.to_le_bytes());
        std::fs::write(crate::vectors::vectors_path(dir, 1), bytes).expect("writing the vectors");
        crate::vectors::VectorTable::load(dir, 1).is_ok()
    }

    /// Writes `records` behind a valid header as `pending-vectors.bin` in `dir` (4-dimensional
    /// vectors of the model `fuzz`) and loads it; how many vectors it holds.
    pub fn load_pending(dir: &Path, records: &[u8]) -> usize {
        let mut bytes = crate::pending::header("fuzz", 4);
        bytes.extend_from_slice(records);
        std::fs::write(dir.join("pending-vectors.bin"), bytes).expect("writing the file");
        crate::pending::load(dir, "fuzz", 4).map_or(0, |v| v.len())
    }

    /// Decodes `bytes` as a scan (cluster mode's log entry); whether it decoded.
    pub fn decode_scan(bytes: &[u8]) -> bool {
        crate::Scan::from_bytes(bytes).is_ok()
    }
}
