//! Vector and hybrid search through the public API, with a deterministic fake embedder: a
//! hashed bag of lowercase words in 64 dimensions, L2-normalised (texts sharing words are
//! close), that counts and records what it is asked to embed.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mneme_kb::convert::{self, Format};
use mneme_kb::{
    Alpha, ChunkConfig, Embedder, ErrorKind, Fusion, IngestOptions, IngestReport, KbConfig,
    KnowledgeBase, NoProgress, Ranking, SearchRequest, SearchResults, chunk_text,
};

const DIM: usize = 64;

struct FakeEmbedder {
    fingerprint: String,
    /// Texts embedded so far (ingest chunks and queries alike).
    calls: AtomicUsize,
    /// Every text embedded, in order.
    seen: Mutex<Vec<String>>,
    /// When set, vectors come out one element short.
    broken: AtomicBool,
    /// A call that starts after this many texts fails (an interrupted ingest).
    fail_after: AtomicUsize,
}

impl FakeEmbedder {
    fn new(fingerprint: &str) -> Arc<FakeEmbedder> {
        Arc::new(FakeEmbedder {
            fingerprint: fingerprint.to_owned(),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            broken: AtomicBool::new(false),
            fail_after: AtomicUsize::new(usize::MAX),
        })
    }

    fn count(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn reset(&self) {
        self.calls.store(0, Ordering::SeqCst);
        self.seen.lock().unwrap().clear();
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn fnv1a(word: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in word.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The fake model: hashed bag of lowercase alphanumeric words, unit length.
fn bag_of_words(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; DIM];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        vector[(fnv1a(&word.to_lowercase()) % DIM as u64) as usize] += 1.0;
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

fn cosine(a: &str, b: &str) -> f32 {
    bag_of_words(a)
        .iter()
        .zip(bag_of_words(b))
        .map(|(x, y)| x * y)
        .sum()
}

impl Embedder for FakeEmbedder {
    fn dim(&self) -> usize {
        DIM
    }

    fn name(&self) -> String {
        self.fingerprint.clone()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn embed(
        &self,
        texts: &[&str],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Vec<f32>>, String> {
        if self.count() >= self.fail_after.load(Ordering::SeqCst) {
            return Err("interrupted".into());
        }
        self.calls.fetch_add(texts.len(), Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap()
            .extend(texts.iter().map(|t| (*t).to_owned()));
        let broken = self.broken.load(Ordering::SeqCst);
        let vectors = texts
            .iter()
            .map(|text| {
                let mut v = bag_of_words(text);
                if broken {
                    v.pop();
                }
                v
            })
            .collect();
        progress(texts.len());
        Ok(vectors)
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Small chunks: every section of the documents below is one chunk of its own.
fn config() -> KbConfig {
    KbConfig {
        chunk: ChunkConfig {
            chunk_size: 120,
            chunk_overlap: 10,
        },
        stemming: false,
        max_file_size: 1 << 20,
        max_workers: 2,
        cache_capacity: NonZeroUsize::new(100).unwrap(),
        writer_memory_per_thread: 16 << 20,
    }
}

/// Two documents end with the same license section, so distinct chunk texts are fewer than
/// chunks.
const DOCS: &[(&str, &str)] = &[
    (
        "astronomy.md",
        "# Astronomy\n\n## Planets\n\nJupiter and Saturn are giant planets orbiting the sun.\n\n\
         ## Stars\n\nStars fuse hydrogen into helium deep in their cores.\n\n\
         ## License\n\nReleased under the MIT license.\n",
    ),
    (
        "cooking.md",
        "# Cooking\n\n## Pasta\n\nBoil the pasta in salted water until tender.\n\n\
         ## Sauce\n\nSimmer tomatoes with garlic and basil for a rich sauce.\n\n\
         ## License\n\nReleased under the MIT license.\n",
    ),
    (
        "gardening.md",
        "# Gardening\n\n## Soil\n\nCompost enriches garden soil with nutrients for tomatoes.\n\n\
         ## Watering\n\nWater the garden early in the morning before the sun is high.\n",
    ),
    (
        "sailing.md",
        "# Sailing\n\n## Wind\n\nA sailboat tacks against the wind to reach the harbour.\n\n\
         ## Knots\n\nSailors tie a bowline knot to secure the mooring line.\n",
    ),
    (
        "music.md",
        "# Music\n\n## Rhythm\n\nThe drummer keeps a steady rhythm for the band.\n\n\
         ## Harmony\n\nChords stack notes into harmony under the melody.\n",
    ),
];

struct Fixture {
    _work: tempfile::TempDir,
    docs: PathBuf,
    index: PathBuf,
}

fn fixture() -> Fixture {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (name, text) in DOCS {
        std::fs::write(docs.join(name), text).unwrap();
    }
    let index = work.path().join("index");
    Fixture {
        _work: work,
        docs,
        index,
    }
}

fn open(dir: &Path, embedder: Option<&Arc<FakeEmbedder>>) -> KnowledgeBase {
    let kb = KnowledgeBase::open(dir, config()).unwrap();
    match embedder {
        Some(e) => kb.with_embedder(e.clone() as Arc<dyn Embedder>),
        None => kb,
    }
}

fn try_ingest(kb: &KnowledgeBase, root: &Path) -> mneme_kb::Result<IngestReport> {
    kb.ingest(&[root.to_path_buf()], IngestOptions::default(), &NoProgress)
}

fn ingest(kb: &KnowledgeBase, root: &Path) -> IngestReport {
    let report = try_ingest(kb, root).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    report
}

/// The chunk texts of a document as the engine cuts them.
fn chunks_of(text: &str) -> Vec<String> {
    let converted = convert::convert(Format::Markdown, "doc.md", text.as_bytes()).unwrap();
    chunk_text(&converted.text, &converted.headings, config().chunk)
        .iter()
        .map(|span| converted.text[span.start..span.end].to_owned())
        .collect()
}

fn all_chunks(docs: &[(&str, &str)]) -> Vec<String> {
    docs.iter().flat_map(|(_, text)| chunks_of(text)).collect()
}

fn distinct(texts: &[String]) -> usize {
    texts.iter().collect::<BTreeSet<_>>().len()
}

fn request(query: &str, ranking: Ranking, limit: usize) -> SearchRequest<'_> {
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

fn search(kb: &KnowledgeBase, query: &str, ranking: Ranking, limit: usize) -> SearchResults {
    (*kb.search(&request(query, ranking, limit)).unwrap().results).clone()
}

fn ids(results: &SearchResults) -> Vec<String> {
    results.hits.iter().map(|h| h.doc_id.clone()).collect()
}

fn weighted(alpha: f32) -> Ranking {
    Ranking::Hybrid(Fusion::Weighted(Alpha::new(alpha).unwrap()))
}

fn rrf(alpha: f32) -> Ranking {
    Ranking::Hybrid(Fusion::Rrf(Alpha::new(alpha).unwrap()))
}

fn vector_files(index: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("vectors-") && name.ends_with(".bin")
        })
        .collect();
    files.sort();
    files
}

// ---------------------------------------------------------------------------------------------
// 1. Vector ranking

#[test]
fn vector_ranking_finds_the_document_sharing_the_query_words() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    let report = ingest(&kb, &fx.docs);

    let chunks = all_chunks(DOCS);
    assert!(
        distinct(&chunks) < chunks.len(),
        "the fixture shares a chunk"
    );
    assert_eq!(report.embedded, distinct(&chunks));
    assert_eq!(embedder.count(), distinct(&chunks));
    assert_eq!(report.vectors_reused, 0);
    assert_eq!(report.vectors, chunks.len());
    let stats = kb.stats();
    assert_eq!(stats.chunks, chunks.len() as u64);
    assert_eq!(stats.vectors, chunks.len());
    assert_eq!(stats.embedding_model.as_deref(), Some("fake-v1"));

    for (query, expected_doc, expected_chunk_words) in [
        (
            "jupiter saturn planets",
            "docs/astronomy.md",
            "Jupiter and Saturn",
        ),
        ("hydrogen helium stars", "docs/astronomy.md", "hydrogen"),
        ("boil pasta water", "docs/cooking.md", "Boil the pasta"),
        ("bowline knot mooring", "docs/sailing.md", "bowline"),
        ("drummer rhythm band", "docs/music.md", "drummer"),
    ] {
        let results = search(&kb, query, Ranking::Vector, 10);
        let top = &results.hits[0];
        assert_eq!(
            top.doc_id,
            expected_doc,
            "query {query:?}: {:?}",
            ids(&results)
        );
        assert!(
            top.passage.contains(expected_chunk_words),
            "query {query:?}: passage {:?}",
            top.passage
        );
        // Every document has vectors, so every document is ranked, once.
        assert_eq!(results.hits.len(), DOCS.len());
        assert_eq!(results.total, Some(DOCS.len()));
        assert_eq!(
            results
                .hits
                .iter()
                .map(|h| &h.doc_id)
                .collect::<BTreeSet<_>>()
                .len(),
            DOCS.len()
        );
        for hit in &results.hits {
            // The score is the cosine of the query and the passage, and the passage is the
            // document's best chunk.
            assert!(
                (cosine(query, &hit.passage) - hit.score).abs() < 1e-5,
                "{hit:?}"
            );
            let text = DOCS
                .iter()
                .find(|(name, _)| hit.doc_id == format!("docs/{name}"))
                .unwrap()
                .1;
            let best = chunks_of(text)
                .iter()
                .map(|c| cosine(query, c))
                .fold(f32::MIN, f32::max);
            assert!((best - hit.score).abs() < 1e-5, "{hit:?}");
            assert!(hit.passage == chunks_of(text)[hit.chunk_index as usize]);
        }
        assert!(top.score > 0.0 && top.score <= 1.0 + 1e-6, "{}", top.score);
        // Best first.
        assert!(results.hits.windows(2).all(|w| w[0].score >= w[1].score));
    }

    // A chunk's exact text scores (about) 1.
    let exact = "Chords stack notes into harmony under the melody";
    let top = &search(&kb, exact, Ranking::Vector, 1).hits[0];
    assert_eq!(top.doc_id, "docs/music.md");
    assert!(top.score > 0.9 && top.score <= 1.0 + 1e-6, "{}", top.score);
}

// ---------------------------------------------------------------------------------------------
// 2. Incremental ingest

#[test]
fn incremental_ingest_embeds_only_new_chunk_texts() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    let first = ingest(&kb, &fx.docs);
    assert!(first.committed);
    let cooking = DOCS.iter().find(|(n, _)| *n == "cooking.md").unwrap().1;
    assert!(chunks_of(cooking).len() >= 3, "{:?}", chunks_of(cooking));

    // Nothing changed: nothing embedded, no commit.
    embedder.reset();
    let again = ingest(&kb, &fx.docs);
    assert_eq!(
        (again.embedded, again.vectors_reused, again.committed),
        (0, 0, false)
    );
    assert_eq!(again.generation, first.generation);
    assert_eq!(embedder.count(), 0);

    // One section of a multi-chunk document changes: only that chunk is embedded.
    let changed = cooking.replace(
        "Simmer tomatoes with garlic and basil for a rich sauce.",
        "Simmer tomatoes with oregano and olive oil for a rich marinara.",
    );
    assert_ne!(changed, cooking);
    std::fs::write(fx.docs.join("cooking.md"), &changed).unwrap();
    embedder.reset();
    let third = ingest(&kb, &fx.docs);
    assert!(third.committed);
    assert_eq!(third.updated, 1);
    let old: BTreeSet<String> = chunks_of(cooking).into_iter().collect();
    let new_texts: Vec<String> = chunks_of(&changed)
        .into_iter()
        .filter(|c| !old.contains(c))
        .collect();
    assert_eq!(new_texts.len(), 1, "{new_texts:?}");
    assert_eq!(embedder.seen(), new_texts);
    assert_eq!(third.embedded, 1);
    assert_eq!(third.vectors_reused, chunks_of(&changed).len() - 1);
    assert_eq!(third.vectors, kb.stats().chunks as usize);
    let top = &search(&kb, "oregano olive marinara", Ranking::Vector, 3).hits[0];
    assert_eq!(top.doc_id, "docs/cooking.md");
    assert!(top.passage.contains("marinara"), "{}", top.passage);
    assert!((top.score - cosine("oregano olive marinara", &new_texts[0])).abs() < 1e-5);

    // A deleted file's vectors go.
    let gardening = DOCS.iter().find(|(n, _)| *n == "gardening.md").unwrap().1;
    let before = kb.stats().vectors;
    std::fs::remove_file(fx.docs.join("gardening.md")).unwrap();
    embedder.reset();
    let fourth = ingest(&kb, &fx.docs);
    assert_eq!((fourth.removed, fourth.embedded), (1, 0));
    assert!(fourth.committed);
    let stats = kb.stats();
    assert_eq!(stats.vectors, before - chunks_of(gardening).len());
    assert_eq!(stats.vectors, stats.chunks as usize);
    assert_eq!(fourth.vectors, stats.vectors);
    let results = search(&kb, "compost garden soil watering", Ranking::Vector, 10);
    assert_eq!(results.hits.len(), DOCS.len() - 1);
    assert!(!ids(&results).contains(&"docs/gardening.md".to_owned()));
    for ranking in [weighted(0.5), rrf(0.5)] {
        let hybrid = search(&kb, "compost garden soil watering", ranking, 10);
        assert!(!ids(&hybrid).contains(&"docs/gardening.md".to_owned()));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Hybrid ranking

/// Queries whose keyword and vector orders differ (checked), so that the fusion weight shows.
const HYBRID_QUERIES: &[&str] = &[
    "tomatoes garden sun water",
    "the sun and the wind",
    "rich sauce for the band",
    "planets sun morning",
];

#[test]
fn weighted_fusion_at_the_extremes_is_one_side() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    ingest(&kb, &fx.docs);

    let mut orders_differ = false;
    for query in HYBRID_QUERIES {
        let vector = search(&kb, query, Ranking::Vector, 10);
        let keyword = search(&kb, query, Ranking::Bm25, 10);
        assert!(!keyword.hits.is_empty(), "{query}");
        orders_differ |= ids(&vector)[..keyword.hits.len()] != ids(&keyword)[..];

        let all_vector = search(&kb, query, weighted(1.0), 10);
        assert_eq!(ids(&all_vector), ids(&vector), "alpha 1, {query}");
        for (fused, hit) in all_vector.hits.iter().zip(&vector.hits) {
            assert!((fused.score - hit.score.max(0.0)).abs() < 1e-6, "{query}");
        }

        let all_keyword = search(&kb, query, weighted(0.0), 10);
        assert_eq!(
            ids(&all_keyword)[..keyword.hits.len()],
            ids(&keyword)[..],
            "alpha 0, {query}"
        );
        let best = keyword.hits[0].score;
        for (fused, hit) in all_keyword.hits.iter().zip(&keyword.hits) {
            assert!((fused.score - hit.score / best).abs() < 1e-5, "{query}");
        }
        // Documents without the query's words come last, scoring 0.
        assert!(
            all_keyword.hits[keyword.hits.len()..]
                .iter()
                .all(|h| h.score == 0.0)
        );

        // In between: each score is the weighted sum of both sides.
        let alpha = 0.7;
        let mixed = search(&kb, query, weighted(alpha), 10);
        assert_eq!(mixed.hits.len(), DOCS.len());
        for hit in &mixed.hits {
            let v = vector
                .hits
                .iter()
                .find(|h| h.doc_id == hit.doc_id)
                .map_or(0.0, |h| h.score.max(0.0));
            let k = keyword
                .hits
                .iter()
                .find(|h| h.doc_id == hit.doc_id)
                .map_or(0.0, |h| h.score / best);
            let expected = alpha * v + (1.0 - alpha) * k;
            assert!((hit.score - expected).abs() < 1e-5, "{query}: {hit:?}");
        }
        assert!(mixed.hits.windows(2).all(|w| w[0].score >= w[1].score));
    }
    assert!(orders_differ, "the queries do not tell the sides apart");
}

#[test]
fn rrf_fusion_is_deterministic_and_rank_based() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    ingest(&kb, &fx.docs);

    for query in HYBRID_QUERIES {
        let vector = ids(&search(&kb, query, Ranking::Vector, 10));
        let keyword = ids(&search(&kb, query, Ranking::Bm25, 10));
        let rank_in = |order: &[String], doc: &str| {
            order
                .iter()
                .position(|d| d == doc)
                .map_or(1000.0, |i| (i + 1) as f32)
        };
        for alpha in [0.0f32, 0.3, 0.7, 1.0] {
            let fused = search(&kb, query, rrf(alpha), 10);
            assert_eq!(fused, search(&kb, query, rrf(alpha), 10), "{query}");
            assert_eq!(fused.hits.len(), DOCS.len());
            for hit in &fused.hits {
                let expected = alpha / (60.0 + rank_in(&vector, &hit.doc_id))
                    + (1.0 - alpha) / (60.0 + rank_in(&keyword, &hit.doc_id));
                assert!(
                    (hit.score - expected).abs() < 1e-6,
                    "{query}, alpha {alpha}: {hit:?}, expected {expected}"
                );
            }
            assert!(fused.hits.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }

    // A document first on both sides scores 1/61 whatever alpha.
    let query = "jupiter saturn giant planets";
    assert_eq!(
        ids(&search(&kb, query, Ranking::Vector, 1)),
        ids(&search(&kb, query, Ranking::Bm25, 1))
    );
    for alpha in [0.0f32, 0.25, 0.5, 0.7, 1.0] {
        let top = &search(&kb, query, rrf(alpha), 3).hits[0];
        assert_eq!(top.doc_id, "docs/astronomy.md");
        assert!(
            (top.score - 1.0 / 61.0).abs() < 1e-6,
            "alpha {alpha}: {}",
            top.score
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Backfill, 5. model change, 6. persistence

#[test]
fn an_index_made_without_a_model_is_embedded_by_the_next_ingest() {
    let fx = fixture();
    let plain = open(&fx.index, None);
    let first = ingest(&plain, &fx.docs);
    assert_eq!((first.embedded, first.vectors), (0, 0));
    assert_eq!(plain.stats().vectors, 0);
    assert!(vector_files(&fx.index).is_empty());
    drop(plain);

    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    let chunks = all_chunks(DOCS);
    let report = ingest(&kb, &fx.docs);
    assert_eq!(report.unchanged, DOCS.len());
    assert!(report.committed);
    assert_eq!(report.generation, first.generation + 1);
    assert_eq!(report.embedded, distinct(&chunks));
    assert_eq!(embedder.count(), distinct(&chunks));
    assert_eq!(
        embedder.seen().into_iter().collect::<BTreeSet<_>>(),
        chunks.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(report.vectors, chunks.len());
    assert_eq!(kb.stats().vectors, chunks.len());
    let top = &search(&kb, "bowline knot mooring", Ranking::Vector, 3).hits[0];
    assert_eq!(top.doc_id, "docs/sailing.md");
    assert!(top.passage.contains("bowline"));

    // And the ingest after that has nothing left to do.
    embedder.reset();
    let again = ingest(&kb, &fx.docs);
    assert_eq!((again.embedded, again.committed), (0, false));
}

#[test]
fn another_model_fingerprint_embeds_everything_again() {
    let fx = fixture();
    let v1 = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&v1));
    let first = ingest(&kb, &fx.docs);
    drop(kb);

    let v2 = FakeEmbedder::new("fake-v2");
    let kb = open(&fx.index, Some(&v2));
    assert_eq!(kb.stats().embedding_model.as_deref(), Some("fake-v2"));
    let chunks = all_chunks(DOCS);
    let report = ingest(&kb, &fx.docs);
    assert!(report.committed);
    assert_eq!(report.generation, first.generation + 1);
    assert_eq!(
        (report.embedded, report.vectors_reused),
        (distinct(&chunks), 0)
    );
    assert_eq!(v2.count(), distinct(&chunks));
    assert_eq!(v1.count(), distinct(&chunks));
    assert_eq!(kb.stats().vectors, chunks.len());
    drop(kb);

    // The table now belongs to v2: reopening with v2 reuses it.
    v2.reset();
    let kb = open(&fx.index, Some(&v2));
    let again = ingest(&kb, &fx.docs);
    assert_eq!((again.embedded, again.committed), (0, false));
    assert_eq!(v2.count(), 0);
}

#[test]
fn reopened_index_serves_the_same_vector_results_without_embedding() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let queries = [
        "jupiter saturn planets",
        "rich sauce",
        "the wind and the sun",
    ];
    let rankings = [Ranking::Vector, weighted(0.7), rrf(0.5)];
    let before: Vec<SearchResults> = {
        let kb = open(&fx.index, Some(&embedder));
        ingest(&kb, &fx.docs);
        queries
            .iter()
            .flat_map(|q| rankings.iter().map(|r| search(&kb, q, *r, 10)))
            .collect()
    };

    let fresh = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&fresh));
    assert_eq!(kb.stats().vectors, all_chunks(DOCS).len());
    let after: Vec<SearchResults> = queries
        .iter()
        .flat_map(|q| rankings.iter().map(|r| search(&kb, q, *r, 10)))
        .collect();
    assert_eq!(after, before);
    // Only the query texts were embedded, once each.
    assert_eq!(fresh.count(), queries.len());
    assert_eq!(
        fresh.seen(),
        queries.iter().map(|q| (*q).to_owned()).collect::<Vec<_>>()
    );
    // An ingest with nothing changed embeds nothing either.
    let report = ingest(&kb, &fx.docs);
    assert_eq!((report.embedded, report.committed), (0, false));
    assert_eq!(fresh.count(), queries.len());
}

// ---------------------------------------------------------------------------------------------
// 7. Errors

#[test]
fn vector_ranking_without_a_model_names_the_setting() {
    let fx = fixture();
    let kb = open(&fx.index, None);
    ingest(&kb, &fx.docs);
    let err = kb
        .search(&request("planets", Ranking::Vector, 5))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoVectors);
    assert!(err.to_string().contains("KB_EMBEDDING_MODEL"), "{err}");
    // Keyword search is unaffected, and hybrid degrades to it (as KnowledgeBeast does).
    let keyword = search(&kb, "planets", Ranking::Bm25, 5);
    assert_eq!(ids(&keyword), ["docs/astronomy.md"]);
    for ranking in [weighted(0.5), rrf(0.5)] {
        assert_eq!(search(&kb, "planets", ranking, 5), keyword);
    }

    // A model but an index without vectors (not yet ingested with it) also says what to do.
    drop(kb);
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    let err = kb
        .search(&request("planets", Ranking::Vector, 5))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoVectors);
    assert!(err.to_string().contains("KB_EMBEDDING_MODEL"), "{err}");
    assert!(!kb.has_vectors());
    assert_eq!(search(&kb, "planets", weighted(0.7), 5), keyword);
}

#[test]
fn a_damaged_vector_table_is_reported_as_corrupt() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    {
        let kb = open(&fx.index, Some(&embedder));
        ingest(&kb, &fx.docs);
    }
    let files = vector_files(&fx.index);
    assert_eq!(files.len(), 1, "{files:?}");
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4] {
        *byte ^= 0xA5;
    }
    std::fs::write(&files[0], &bytes).unwrap();

    match KnowledgeBase::open(&fx.index, config()) {
        Ok(_) => panic!("a damaged vector table was accepted"),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
            assert!(err.to_string().contains("mneme ingest --rebuild"), "{err}");
        }
    }

    // Truncated, too.
    std::fs::write(&files[0], &bytes[..bytes.len() - 3]).unwrap();
    match KnowledgeBase::open(&fx.index, config()) {
        Ok(_) => panic!("a truncated vector table was accepted"),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
            assert!(err.to_string().contains("mneme ingest --rebuild"), "{err}");
        }
    }
}

#[test]
fn vectors_of_the_wrong_length_fail_the_ingest_and_commit_nothing() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    let first = ingest(&kb, &fx.docs);
    let query = "simmer tomatoes garlic";
    let before = search(&kb, query, Ranking::Vector, 10);
    let keyword_before = search(&kb, query, Ranking::Bm25, 10);
    let stats_before = kb.stats();

    let cooking = DOCS.iter().find(|(n, _)| *n == "cooking.md").unwrap().1;
    std::fs::write(
        fx.docs.join("cooking.md"),
        cooking.replace("garlic and basil", "lemon zest and pepper"),
    )
    .unwrap();
    embedder.broken.store(true, Ordering::SeqCst);
    let err = try_ingest(&kb, &fx.docs).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Embedding, "{err}");
    assert_eq!(kb.generation(), first.generation);
    assert_eq!(kb.stats().vectors, stats_before.vectors);
    assert_eq!(kb.stats().chunks, stats_before.chunks);
    // The old generation is still served (the query's vector is cached from before).
    assert_eq!(search(&kb, query, Ranking::Vector, 10), before);
    assert_eq!(search(&kb, query, Ranking::Bm25, 10), keyword_before);
    // And on disk nothing moved.
    {
        let reopened = open(&fx.index, None);
        assert_eq!(reopened.generation(), first.generation);
        assert_eq!(search(&reopened, query, Ranking::Bm25, 10), keyword_before);
    }
    assert_eq!(vector_files(&fx.index).len(), 1);

    // Once the model behaves, the change goes in.
    embedder.broken.store(false, Ordering::SeqCst);
    let report = ingest(&kb, &fx.docs);
    assert!(report.committed);
    assert_eq!((report.updated, report.embedded), (1, 1));
    assert_eq!(report.generation, first.generation + 1);
    let top = &search(&kb, "lemon zest pepper", Ranking::Vector, 3).hits[0];
    assert_eq!(top.doc_id, "docs/cooking.md");
    assert!(top.passage.contains("lemon zest"));
}

// ---------------------------------------------------------------------------------------------
// 8. Query-vector cache, 9. pagination

#[test]
fn a_repeated_query_is_embedded_once() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    ingest(&kb, &fx.docs);
    embedder.reset();

    let first = search(&kb, "jupiter saturn", Ranking::Vector, 5);
    let second = search(&kb, "jupiter saturn", Ranking::Vector, 5);
    assert_eq!(first, second);
    assert_eq!(embedder.count(), 1);
    let stats = kb.stats();
    assert_eq!((stats.query_vector_hits, stats.query_vector_misses), (1, 1));
    // The result cache was not involved.
    assert_eq!(stats.cache.hits, 0);

    // Same words with other spacing, and another ranking: still the cached vector.
    search(&kb, "  jupiter   saturn ", rrf(0.5), 5);
    assert_eq!(embedder.count(), 1);
    assert_eq!(kb.stats().query_vector_hits, 2);
    // Another query is embedded.
    search(&kb, "saturn jupiter", Ranking::Vector, 5);
    assert_eq!(embedder.count(), 2);
    assert_eq!(kb.stats().query_vector_misses, 2);
}

#[test]
fn vector_pages_agree_with_a_longer_list() {
    let fx = fixture();
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    ingest(&kb, &fx.docs);

    for ranking in [Ranking::Vector, weighted(0.7), rrf(0.5)] {
        for query in ["the sun and the wind", "tomatoes sauce", "stars"] {
            let long = search(&kb, query, ranking, 4);
            assert_eq!(long.hits.len(), 4);
            let mut page = request(query, ranking, 2);
            page.offset = 2;
            let page = kb.search(&page).unwrap().results;
            assert_eq!(page.hits, long.hits[2..4], "{query}, {ranking:?}");
            assert_eq!(page.total, long.total);
            let mut first = request(query, ranking, 2);
            first.offset = 0;
            assert_eq!(kb.search(&first).unwrap().results.hits, long.hits[..2]);
            // Past the end: empty.
            let mut past = request(query, ranking, 2);
            past.offset = DOCS.len();
            assert!(kb.search(&past).unwrap().results.hits.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 10. An interrupted ingest resumes its embedding

#[test]
fn an_ingest_interrupted_while_embedding_resumes_where_it_stopped() {
    let fx = fixture();
    // Enough distinct chunks for three groups of 1,024 texts (one section, one chunk).
    let bulk: Vec<String> = (0..30)
        .map(|f| {
            (0..80)
                .map(|s| {
                    format!("## Part {s}\n\nFile {f} section {s} speaks of w{f}x{s} and v{s}.\n\n")
                })
                .collect()
        })
        .collect();
    for (f, text) in bulk.iter().enumerate() {
        std::fs::write(fx.docs.join(format!("bulk-{f:02}.md")), text).unwrap();
    }
    let embedder = FakeEmbedder::new("fake-v1");
    let kb = open(&fx.index, Some(&embedder));
    // The second group fails, as if the process were stopped while embedding it.
    embedder.fail_after.store(1024, Ordering::SeqCst);
    let err = try_ingest(&kb, &fx.docs).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Embedding, "{err}");
    assert_eq!(kb.generation(), 0, "nothing committed");
    let first_group: BTreeSet<String> = embedder.seen().into_iter().collect();
    assert_eq!(first_group.len(), 1024);
    assert!(fx.index.join("pending-vectors.bin").is_file());

    // A new process (reopened index) resumes: the first group is not embedded again.
    drop(kb);
    embedder.reset();
    embedder.fail_after.store(usize::MAX, Ordering::SeqCst);
    let kb = open(&fx.index, Some(&embedder));
    let report = ingest(&kb, &fx.docs);
    assert!(report.committed);
    assert_eq!(report.vectors_resumed, 1024);
    let total = report.vectors;
    assert!(total > 2048, "{total} chunks");
    // Distinct texts: the rest went through the model, once each (a text shared by two
    // chunks counts once, so the sum may fall short of the chunks).
    assert_eq!(report.embedded, embedder.seen().len());
    assert!(report.embedded + report.vectors_resumed <= total);
    assert!(report.embedded + report.vectors_resumed > 2048);
    assert!(
        embedder.seen().iter().all(|t| !first_group.contains(t)),
        "a text of the first group was embedded again"
    );
    assert!(
        !fx.index.join("pending-vectors.bin").exists(),
        "the commit removes it"
    );
    // The resumed vectors are the model's own: a chunk's own text finds it (cosine 1), for a
    // chunk of the first group and one embedded after the resumption.
    for (f, s) in [(0, 3), (29, 70)] {
        let chunk = chunks_of(&bulk[f])
            .into_iter()
            .find(|c| c.contains(&format!("w{f}x{s} ")))
            .unwrap();
        assert_eq!(first_group.contains(&chunk), f == 0);
        let top = &search(&kb, &chunk, Ranking::Vector, 1).hits[0];
        assert_eq!(top.doc_id, format!("docs/bulk-{f:02}.md"));
        assert!((top.score - 1.0).abs() < 1e-4, "{}", top.score);
    }
}
