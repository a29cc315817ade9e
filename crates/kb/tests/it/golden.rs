//! The `terms` ranking reproduces KnowledgeBeast's keyword search: 260 queries recorded from
//! KnowledgeBeast 0.1.0 on the 1,000-document reference corpus (test-data, README in
//! ../shared/conformance).

use std::collections::BTreeSet;

use mneme_kb::Ranking;
use serde_json::Value;

use crate::{open, search, synthetic_corpus, test_data};

#[test]
fn terms_ranking_matches_knowledgebeast_on_every_recorded_query() {
    let golden: Value = serde_json::from_slice(
        &std::fs::read(test_data().join("knowledgebeast-terms-golden.json")).unwrap(),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let knowledge = synthetic_corpus(&work.path().join("corpus"), 1000);
    let kb = open(&work.path().join("index"));
    crate::ingest(&kb, &[&knowledge]);
    assert_eq!(kb.stats().documents, 1000);

    let queries = golden["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 260);
    let mut mismatches = Vec::new();
    for case in queries {
        let query = case["query"].as_str().unwrap();
        let expected: Vec<(u64, BTreeSet<String>)> = case["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|group| {
                let ids = group[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| id.as_str().unwrap().to_owned());
                (group[0].as_u64().unwrap(), ids.collect())
            })
            .collect();
        let results = search(&kb, query, Ranking::Terms, 10_000);
        assert_eq!(results.total, Some(results.hits.len()));
        let mut actual: Vec<(u64, BTreeSet<String>)> = Vec::new();
        for hit in &results.hits {
            let score = hit.score as u64;
            match actual.last_mut() {
                Some((last, ids)) if *last == score => {
                    ids.insert(hit.doc_id.clone());
                }
                _ => actual.push((score, BTreeSet::from([hit.doc_id.clone()]))),
            }
        }
        if actual != expected {
            mismatches.push(format!(
                "{query:?}: {} groups expected, {} found",
                expected.len(),
                actual.len()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatching queries:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn terms_ranking_pages_in_a_stable_order() {
    let work = tempfile::tempdir().unwrap();
    let knowledge = synthetic_corpus(&work.path().join("corpus"), 1000);
    let kb = open(&work.path().join("index"));
    crate::ingest(&kb, &[&knowledge]);
    let all = search(&kb, "cache data system", Ranking::Terms, 1000);
    let mut paged = Vec::new();
    for offset in (0..60).step_by(20) {
        let mut request = crate::request("cache data system", Ranking::Terms, 20);
        request.offset = offset;
        let page = kb.search(&request).unwrap();
        paged.extend(page.results.hits.iter().map(|h| h.doc_id.clone()));
    }
    let first: Vec<String> = all.hits.iter().take(60).map(|h| h.doc_id.clone()).collect();
    assert_eq!(paged, first);
    // Ties are ordered by doc_id, so the order is the same in every run.
    for pair in all.hits.windows(2) {
        assert!(pair[0].score > pair[1].score || pair[0].doc_id < pair[1].doc_id);
    }
}
