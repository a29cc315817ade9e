//! Integration tests of the knowledge-base engine, through its public API only.

mod concurrency;
mod fuzz_smoke;
mod golden;
mod ingest;
mod scan;
mod search;

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use mneme_kb::{
    ChunkConfig, IngestOptions, IngestReport, KbConfig, KnowledgeBase, NoProgress, Ranking,
    SearchRequest, SearchResults,
};

pub fn config() -> KbConfig {
    KbConfig {
        chunk: ChunkConfig {
            chunk_size: 1000,
            chunk_overlap: 200,
        },
        stemming: false,
        max_file_size: 1 << 20,
        max_workers: 2,
        cache_capacity: NonZeroUsize::new(100).unwrap(),
        writer_memory_per_thread: 16 << 20,
    }
}

pub fn open(dir: &Path) -> KnowledgeBase {
    KnowledgeBase::open(dir, config()).unwrap()
}

pub fn ingest(kb: &KnowledgeBase, roots: &[&Path]) -> IngestReport {
    let roots: Vec<PathBuf> = roots.iter().map(|p| p.to_path_buf()).collect();
    kb.ingest(&roots, IngestOptions::default(), &NoProgress)
        .unwrap()
}

pub fn request(query: &str, ranking: Ranking, limit: usize) -> SearchRequest<'_> {
    SearchRequest {
        query,
        ranking,
        limit,
        offset: 0,
        with_content: false,
        with_total: true,
        use_cache: false,
        with_snippets: true,
    }
}

pub fn search(kb: &KnowledgeBase, query: &str, ranking: Ranking, limit: usize) -> SearchResults {
    (*kb.search(&request(query, ranking, limit)).unwrap().results).clone()
}

pub fn doc_ids(results: &SearchResults) -> Vec<&str> {
    results.hits.iter().map(|hit| hit.doc_id.as_str()).collect()
}

/// Writes `files` (relative path, content) under `root`.
pub fn write_files(root: &Path, files: &[(&str, &[u8])]) {
    for (name, content) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// The repository's `test-data` directory.
pub fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data")
}

/// Generates the reference synthetic corpus (../shared/bench/gen_corpus.py, copied into
/// test-data) with `docs` documents under `out`, once per process and size.
pub fn synthetic_corpus(out: &Path, docs: usize) -> PathBuf {
    let status = std::process::Command::new("python3")
        .arg(test_data().join("gen_corpus.py"))
        .arg(out)
        .args(["--docs", &docs.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs gen_corpus.py");
    assert!(status.success(), "gen_corpus.py failed");
    out.join("knowledge")
}
