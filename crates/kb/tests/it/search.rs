//! Queries: BM25 collapse and paging, snippets, content, cache keys, validation, stemming.

use mneme_kb::{ErrorKind, KnowledgeBase, Ranking, validate_query};

use crate::{config, doc_ids, ingest, open, request, search, write_files};

fn corpus(kb: &KnowledgeBase, work: &std::path::Path) {
    let docs = work.join("docs");
    let filler = "Unrelated filler text about other matters. ".repeat(40);
    let long = format!(
        "# Long guide\n\n{filler}\n\n## Cache section\n\nThe cache keeps answers. cache cache.\n\n{filler}"
    );
    write_files(
        &docs,
        &[
            ("long.md", long.as_bytes()),
            ("short.md", b"# Short\n\nOne mention of the cache."),
            ("other.md", b"# Other\n\nNothing relevant here."),
            ("many.md", b"cache index query cache index query"),
        ],
    );
    ingest(kb, &[&docs]);
}

#[test]
fn bm25_returns_one_hit_per_document_with_its_best_chunk() {
    let work = tempfile::tempdir().unwrap();
    let kb = open(&work.path().join("index"));
    corpus(&kb, work.path());
    let results = search(&kb, "cache", Ranking::Bm25, 10);
    let ids = doc_ids(&results);
    assert_eq!(ids.len(), 3);
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 3, "one hit per document: {ids:?}");
    assert_eq!(results.total, Some(3));
    let long = results
        .hits
        .iter()
        .find(|h| h.doc_id == "docs/long.md")
        .unwrap();
    assert_eq!(long.heading_path, ["Long guide", "Cache section"]);
    assert!(long.chunk_count > 1);
    assert!(
        long.snippet
            .marked("[", "]")
            .contains("The [cache] keeps answers"),
        "{:?}",
        long.snippet
    );
    assert!(long.snippet.to_html().contains("<b>cache</b>"));
    for pair in results.hits.windows(2) {
        assert!(pair[0].score >= pair[1].score);
    }
}

#[test]
fn offset_and_limit_page_through_the_same_order() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    let files: Vec<(String, String)> = (0..25)
        .map(|i| {
            (
                format!("d{i:02}.md"),
                format!("topic {} ", "word ".repeat(i + 1)),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_bytes()))
        .collect();
    write_files(&docs, &refs);
    let kb = open(&work.path().join("index"));
    ingest(&kb, &[&docs]);
    for ranking in [Ranking::Bm25, Ranking::Terms] {
        let all = doc_ids(&search(&kb, "topic word", ranking, 100))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(all.len(), 25);
        let mut paged = Vec::new();
        for offset in [0, 7, 14, 21] {
            let mut req = request("topic word", ranking, 7);
            req.offset = offset;
            let page = kb.search(&req).unwrap();
            assert_eq!(page.results.total, Some(25));
            paged.extend(page.results.hits.iter().map(|h| h.doc_id.clone()));
        }
        assert_eq!(paged, all, "{ranking:?}");
    }
}

#[test]
fn content_on_request_is_the_document_text_rebuilt_from_its_chunks() {
    let work = tempfile::tempdir().unwrap();
    let kb = open(&work.path().join("index"));
    corpus(&kb, work.path());
    let original = std::fs::read_to_string(work.path().join("docs/long.md")).unwrap();
    for ranking in [Ranking::Bm25, Ranking::Terms] {
        let mut req = request("keeps", ranking, 1);
        req.with_content = true;
        let hit = kb.search(&req).unwrap().results.hits[0].clone();
        assert_eq!(hit.content.as_deref(), Some(original.as_str()));
    }
    assert_eq!(
        kb.document_text("docs/long.md").unwrap().as_deref(),
        Some(original.as_str())
    );
    assert!(
        search(&kb, "keeps", Ranking::Bm25, 1).hits[0]
            .content
            .is_none()
    );
}

#[test]
fn the_cache_answers_equivalent_queries_and_never_outlives_an_ingest() {
    let work = tempfile::tempdir().unwrap();
    let kb = open(&work.path().join("index"));
    corpus(&kb, work.path());
    let cached = |query: &str| {
        let mut req = request(query, Ranking::Bm25, 10);
        req.use_cache = true;
        kb.search(&req).unwrap()
    };
    assert!(!cached("Cache Index").cached);
    let again = cached("index   CACHE cache");
    assert!(
        again.cached,
        "lowercase, sorted, distinct terms share an entry"
    );
    assert_eq!(doc_ids(&again.results)[0], "docs/many.md");
    let mut uncached = request("cache index", Ranking::Bm25, 10);
    uncached.use_cache = false;
    assert!(!kb.search(&uncached).unwrap().cached);
    let mut other_page = request("cache index", Ranking::Bm25, 10);
    other_page.use_cache = true;
    other_page.offset = 1;
    assert!(
        !kb.search(&other_page).unwrap().cached,
        "the page is part of the key"
    );

    write_files(
        &work.path().join("docs"),
        &[("many.md", b"nothing here any more")],
    );
    ingest(&kb, &[&work.path().join("docs")]);
    let fresh = cached("cache index");
    assert!(!fresh.cached, "a new generation never hits an old entry");
    assert!(!doc_ids(&fresh.results).contains(&"docs/many.md"));
    let stats = kb.stats().cache;
    assert_eq!((stats.hits, stats.misses), (1, 3));
    assert_eq!(
        kb.clear_cache(),
        1,
        "older generations were dropped at the ingest"
    );
}

#[test]
fn queries_are_validated_like_knowledgebeast() {
    assert_eq!(validate_query("  cache  ").unwrap(), "cache");
    let cases = [
        ("", "String should have at least 1 character"),
        ("   ", "Query cannot be empty or only whitespace"),
        ("a;b", "Query contains invalid character: ;"),
        ("<script>", "Query contains invalid character: <"),
        ("a\nb", "Query contains invalid character: \\n"),
        ("rm $HOME", "Query contains invalid character: $"),
        ("a`b", "Query contains invalid character: `"),
    ];
    for (query, message) in cases {
        let err = validate_query(query).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidQuery);
        assert_eq!(err.to_string(), message, "{query:?}");
    }
    assert!(validate_query(&"x".repeat(1000)).is_ok());
    assert_eq!(
        validate_query(&"é".repeat(1001)).unwrap_err().to_string(),
        "String should have at most 1000 characters"
    );
}

#[test]
fn empty_and_punctuation_only_queries() {
    let work = tempfile::tempdir().unwrap();
    let kb = open(&work.path().join("index"));
    corpus(&kb, work.path());
    let err = kb
        .search(&request(" \u{a0}\u{1f}", Ranking::Terms, 10))
        .unwrap_err();
    assert_eq!(err.to_string(), "Search terms cannot be empty");
    assert!(search(&kb, "!!! ???", Ranking::Bm25, 10).hits.is_empty());
    assert!(search(&kb, "zzzz", Ranking::Bm25, 10).hits.is_empty());
}

#[test]
fn stemming_is_an_option() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(&docs, &[("run.md", b"The runner was running runs.")]);
    let plain = open(&work.path().join("plain"));
    ingest(&plain, &[&docs]);
    assert!(search(&plain, "run", Ranking::Bm25, 10).hits.is_empty());
    let mut stemmed_config = config();
    stemmed_config.stemming = true;
    let stemmed = KnowledgeBase::open(&work.path().join("stemmed"), stemmed_config).unwrap();
    ingest(&stemmed, &[&docs]);
    assert_eq!(
        doc_ids(&search(&stemmed, "run", Ranking::Bm25, 10)),
        ["docs/run.md"]
    );
}
