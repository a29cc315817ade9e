//! Every matching document of a query, best first, as KnowledgeBeast's library returns them
//! (`KnowledgeBase.query` in keyword mode has no limit): the ranking only, on one snapshot,
//! with no passages, snippets or cache, so that a caller that shows whole documents (the
//! Python package) pays for what it uses.

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use crate::catalog::{DocEntry, DocOrd};
use crate::engine::KnowledgeBase;
use crate::error::{Error, Result};
use crate::query::Ranking;
use crate::search;
use crate::snapshot::Snapshot;
use crate::text;

/// The matching documents of one query, best first, with the snapshot they were ranked on.
pub struct Ranked {
    snapshot: Arc<Snapshot>,
    hits: Vec<(f32, DocOrd)>,
}

impl std::fmt::Debug for Ranked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranked")
            .field("generation", &self.generation())
            .field("hits", &self.hits.len())
            .finish()
    }
}

impl Ranked {
    /// The index generation the documents were ranked on.
    pub fn generation(&self) -> u64 {
        self.snapshot.catalog.generation()
    }

    pub fn len(&self) -> usize {
        self.hits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Each document with its score (BM25 of its best chunk, or the distinct-term count),
    /// best first; ties by doc_id.
    pub fn iter(&self) -> impl Iterator<Item = (f32, &DocEntry)> + '_ {
        self.hits.iter().filter_map(|(score, ord)| {
            self.snapshot
                .catalog
                .entry(*ord)
                .map(|entry| (*score, entry))
        })
    }

    /// The full text of a ranked document, rebuilt from its chunks of the same generation.
    pub fn text(&self, entry: &DocEntry) -> Result<String> {
        Ok(search::stitch(&search::document_chunks(
            &self.snapshot,
            entry.key,
        )?))
    }
}

impl KnowledgeBase {
    /// Every document matching `query` under `ranking` (`Bm25` or `Terms`), best first.
    /// Vector and hybrid ranking have no "every match": use [`KnowledgeBase::search`].
    pub fn rank_all(&self, query: &str, ranking: Ranking) -> Result<Ranked> {
        if query.trim_matches(text::is_py_whitespace).is_empty() {
            return Err(Error::InvalidQuery("Search terms cannot be empty".into()));
        }
        let snapshot = self.snapshot();
        let catalog = &snapshot.catalog;
        let mut hits: Vec<(f32, DocOrd)> = match ranking {
            Ranking::Bm25 => {
                let ctx = search::context(&snapshot, query, false)?;
                let best = snapshot
                    .searcher
                    .search(&ctx.query, &BestChunkPerDocument)?;
                best.into_iter()
                    .filter_map(|(key, score)| catalog.ord_of_key(key).map(|ord| (score, ord)))
                    .collect()
            }
            Ranking::Terms => catalog
                .term_match_counts(&text::py_terms(query))
                .into_iter()
                .map(|(ord, count)| (count as f32, ord))
                .collect(),
            Ranking::Vector | Ranking::Hybrid(_) => {
                return Err(Error::InvalidQuery(format!(
                    "{} ranking returns the top documents only; ask for a limit",
                    ranking.name()
                )));
            }
        };
        let doc_id = |ord: DocOrd| catalog.entry(ord).map_or("", |e| e.doc_id.as_str());
        hits.sort_unstable_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| doc_id(a.1).cmp(doc_id(b.1)))
        });
        Ok(Ranked {
            snapshot: snapshot.clone(),
            hits,
        })
    }
}

/// The best chunk score of every matching document, keyed by the document's key.
struct BestChunkPerDocument;

struct BestChunkSegment {
    column: tantivy::columnar::Column<u64>,
    best: Vec<(u64, Score)>,
}

impl Collector for BestChunkPerDocument {
    type Fruit = HashMap<u64, Score>;
    type Child = BestChunkSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<BestChunkSegment> {
        Ok(BestChunkSegment {
            column: segment.fast_fields().u64("doc_key")?,
            best: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, segments: Vec<Vec<(u64, Score)>>) -> tantivy::Result<Self::Fruit> {
        let mut best: HashMap<u64, Score> = HashMap::new();
        for (key, score) in segments.into_iter().flatten() {
            best.entry(key)
                .and_modify(|s| *s = s.max(score))
                .or_insert(score);
        }
        Ok(best)
    }
}

impl SegmentCollector for BestChunkSegment {
    type Fruit = Vec<(u64, Score)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(key) = self.column.first(doc) {
            self.best.push((key, score));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.best
    }
}
