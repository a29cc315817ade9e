//! Readers never see part of an ingest: every answer matches one whole generation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mneme_kb::Ranking;

use crate::{ingest, open, search, write_files};

#[test]
fn concurrent_queries_see_whole_generations_while_ingests_commit() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    let n_docs = 60;
    let write_generation = |word: &str| {
        let files: Vec<(String, String)> = (0..n_docs)
            .map(|i| {
                (
                    format!("d{i:03}.md"),
                    format!("# Doc {i}\n\n{word} shared text {i}"),
                )
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_bytes()))
            .collect();
        write_files(&docs, &refs);
    };
    write_generation("alpha");
    let kb = Arc::new(open(&work.path().join("index")));
    ingest(&kb, &[&docs]);

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let kb = kb.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut checked = 0;
                while !stop.load(Ordering::Relaxed) {
                    for word in ["alpha", "bravo"] {
                        let results = search(&kb, word, Ranking::Terms, 1000);
                        // Odd generations hold alpha everywhere, even ones bravo everywhere.
                        let expected_word = if results.generation % 2 == 1 {
                            "alpha"
                        } else {
                            "bravo"
                        };
                        let expected = if word == expected_word { n_docs } else { 0 };
                        assert_eq!(
                            results.total,
                            Some(expected),
                            "{word} in generation {}",
                            results.generation
                        );
                        let bm25 = search(&kb, word, Ranking::Bm25, 1000);
                        let expected_word = if bm25.generation % 2 == 1 {
                            "alpha"
                        } else {
                            "bravo"
                        };
                        let expected = if word == expected_word { n_docs } else { 0 };
                        assert_eq!(
                            bm25.hits.len(),
                            expected,
                            "{word} in generation {}",
                            bm25.generation
                        );
                        checked += 1;
                    }
                }
                checked
            })
        })
        .collect();
    for round in 0..6 {
        write_generation(if round % 2 == 0 { "bravo" } else { "alpha" });
        let report = ingest(&kb, &[&docs]);
        assert_eq!(report.updated, n_docs);
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("no reader failed") > 0);
    }
    assert_eq!(kb.generation(), 7);
}

#[test]
fn a_second_index_handle_refreshes_to_the_new_generation() {
    let work = tempfile::tempdir().unwrap();
    let docs = work.path().join("docs");
    write_files(&docs, &[("a.md", b"alpha")]);
    let index = work.path().join("index");
    let writer = open(&index);
    ingest(&writer, &[&docs]);
    let reader = open(&index);
    write_files(&docs, &[("b.md", b"bravo")]);
    ingest(&writer, &[&docs]);
    assert_eq!(reader.generation(), 1);
    assert!(reader.refresh().unwrap());
    assert_eq!((reader.generation(), reader.stats().documents), (2, 2));
    assert!(!reader.refresh().unwrap());
}
