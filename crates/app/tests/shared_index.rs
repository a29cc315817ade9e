//! API v1's knowledge base over a shared log (cluster mode's design, on an in-memory log): an
//! ingest through one node is answered by another at once, the lease serialises ingests, and
//! a bounded staleness skips the generation read.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mneme_app::config::EmbeddingModel;
use mneme_app::{KbSettings, Knowledge, SharedIndex};
use mneme_kb::{IngestOptions, NoProgress, Ranking, SearchRequest};

#[derive(Default)]
struct MemoryLog {
    scans: Mutex<Vec<Vec<u8>>>,
    leased: Arc<AtomicBool>,
    generation_reads: AtomicUsize,
}

/// The lease, given back when dropped.
struct Held(Arc<AtomicBool>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl SharedIndex for MemoryLog {
    fn lease(&self, _wait: Duration) -> mneme_kb::Result<Box<dyn Send>> {
        while self
            .leased
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        Ok(Box::new(Held(self.leased.clone())))
    }

    fn append(&self, after: u64, scan: Vec<u8>) -> mneme_kb::Result<u64> {
        let mut scans = self.scans.lock().unwrap();
        if scans.len() as u64 != after {
            return Err(mneme_kb::Error::Unavailable(format!(
                "generation {} exists",
                after + 1
            )));
        }
        scans.push(scan);
        Ok(scans.len() as u64)
    }

    fn generation(&self) -> mneme_kb::Result<u64> {
        self.generation_reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.scans.lock().unwrap().len() as u64)
    }

    fn since(&self, after: u64) -> mneme_kb::Result<Vec<(u64, Vec<u8>)>> {
        // Pages of two, so that a catch-up takes several reads.
        let scans = self.scans.lock().unwrap();
        Ok(scans
            .iter()
            .enumerate()
            .skip(after as usize)
            .take(2)
            .map(|(i, s)| (i as u64 + 1, s.clone()))
            .collect())
    }
}

fn settings(knowledge: &Path, index: &Path) -> KbSettings {
    let mut kb = mneme_app::config::load(None, &|_| None, &[]).unwrap().kb;
    kb.embedding_model = EmbeddingModel::Off;
    kb.knowledge_dirs = vec![knowledge.to_path_buf()];
    kb.index_dir = index.to_path_buf();
    kb.auto_warm = false;
    kb
}

fn hits(node: &Knowledge, query: &str) -> Vec<String> {
    let request = SearchRequest {
        query,
        ranking: Ranking::Bm25,
        limit: 10,
        offset: 0,
        with_content: false,
        with_total: false,
        use_cache: false,
        with_snippets: false,
    };
    node.search(&request)
        .unwrap()
        .results
        .hits
        .iter()
        .map(|h| h.doc_id.clone())
        .collect()
}

#[test]
fn an_ingest_through_one_node_is_answered_by_the_others_and_scans_are_appended_once() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("kb");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("audio.md"), "# Audio\n\nFourier transforms.\n").unwrap();
    let log = Arc::new(MemoryLog::default());
    let open = |name: &str, staleness: Duration| {
        Knowledge::open_shared(
            &settings(&docs, &tmp.path().join(name)),
            log.clone(),
            staleness,
        )
        .unwrap()
    };
    let a = open("a", Duration::ZERO);
    let b = open("b", Duration::ZERO);

    let report = a
        .ingest(&[], IngestOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!((report.added, report.documents), (1, 1));
    assert_eq!(hits(&b, "fourier"), ["kb/audio.md"]);
    // B's own scan finds nothing new: nothing is appended.
    let again = b
        .ingest(&[], IngestOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!((again.unchanged, again.committed), (1, false));
    assert_eq!(log.scans.lock().unwrap().len(), 1);

    // A named file through B (the API's /ingest), answered by A.
    std::fs::write(docs.join("video.md"), "# Video\n\nMotion vectors.\n").unwrap();
    b.ingest_files(&[docs.join("video.md")], &NoProgress)
        .unwrap();
    assert_eq!(hits(&a, "motion"), ["kb/video.md"]);
    // A clear through A empties B.
    a.clear().unwrap();
    assert!(hits(&b, "fourier").is_empty());
    assert_eq!(log.scans.lock().unwrap().len(), 3);

    // A node started later replays the whole log.
    let c = open("c", Duration::ZERO);
    assert!(hits(&c, "fourier").is_empty());
    a.ingest(&[], IngestOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(hits(&c, "motion"), ["kb/video.md"]);
}

#[test]
fn a_bounded_staleness_skips_the_generation_read_and_zero_reads_before_every_query() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = tmp.path().join("kb");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("audio.md"), "# Audio\n\nFourier transforms.\n").unwrap();
    let log = Arc::new(MemoryLog::default());
    let strict = Knowledge::open_shared(
        &settings(&docs, &tmp.path().join("strict")),
        log.clone(),
        Duration::ZERO,
    )
    .unwrap();
    let relaxed = Knowledge::open_shared(
        &settings(&docs, &tmp.path().join("relaxed")),
        log.clone(),
        Duration::from_secs(3600),
    )
    .unwrap();
    strict
        .ingest(&[], IngestOptions::default(), &NoProgress)
        .unwrap();

    let before = log.generation_reads.load(Ordering::Relaxed);
    for _ in 0..5 {
        assert_eq!(hits(&strict, "fourier"), ["kb/audio.md"]);
    }
    assert_eq!(log.generation_reads.load(Ordering::Relaxed) - before, 5);

    let before = log.generation_reads.load(Ordering::Relaxed);
    for _ in 0..5 {
        assert_eq!(hits(&relaxed, "fourier"), ["kb/audio.md"]);
    }
    assert_eq!(
        log.generation_reads.load(Ordering::Relaxed) - before,
        1,
        "one read, then answers within the staleness bound"
    );
    // Within the bound, a later ingest through another node is not seen yet.
    std::fs::write(docs.join("video.md"), "# Video\n\nMotion vectors.\n").unwrap();
    strict
        .ingest(&[], IngestOptions::default(), &NoProgress)
        .unwrap();
    assert!(hits(&relaxed, "motion").is_empty());
    assert_eq!(hits(&strict, "motion"), ["kb/video.md"]);
}
