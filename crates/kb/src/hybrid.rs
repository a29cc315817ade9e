//! Vector and hybrid ranking.
//!
//! Vector: the chunks nearest to the query's embedding, collapsed to documents (a document
//! scores as its best chunk, whose text becomes the hit's passage).
//!
//! Hybrid: the top `max(2 * wanted, 50)` documents of each side, fused:
//! - weighted (the default): `alpha * cosine + (1 - alpha) * bm25 / best bm25`. A keyword
//!   candidate gets its exact cosine (its best chunk's); a vector-only candidate has keyword
//!   score 0 (it is not among the keyword side's top candidates). Cosines below 0 count as 0.
//! - reciprocal rank: `alpha / (60 + vector rank) + (1 - alpha) / (60 + keyword rank)`, ranks
//!   from 1, a missing rank counting as 1000.
//!
//! The passage of a fused hit is the best chunk of the side that gave it the larger share of
//! its score. Ties are broken by doc_id, so answers are deterministic.

use std::collections::{HashMap, HashSet};

use tantivy::{DocAddress, Score};

use crate::catalog::DocOrd;
use crate::error::{Error, Result};
use crate::query::{Fusion, Ranking, SearchRequest, SearchResults};
use crate::search::{
    self, StoredChunk, bm25_top_docs, build_hit, chunk_at, context, doc_id, stored_chunk,
};
use crate::snapshot::Snapshot;
use crate::vectors::{ChunkScore, VectorTable};

/// RRF's rank constant and the rank of a document missing from one side.
const RRF_K: f32 = 60.0;
const RRF_MISSING_RANK: f32 = 1000.0;

pub(crate) fn run(
    snapshot: &Snapshot,
    request: &SearchRequest<'_>,
    query_vector: &[f32],
) -> Result<SearchResults> {
    let table = snapshot.vectors.as_deref().ok_or_else(|| {
        Error::NoVectors(
            "this index has no chunk vectors: configure an embedding model (KB_EMBEDDING_MODEL, \
             or run scripts/fetch-model) and run `mneme ingest`"
                .into(),
        )
    })?;
    if table.dim() != query_vector.len() {
        return Err(Error::NoVectors(format!(
            "the index holds {}-dimensional vectors but the model makes {}; run `mneme ingest` to embed again",
            table.dim(),
            query_vector.len()
        )));
    }
    let ctx = context(snapshot, request.query, request.with_snippets)?;
    let want = request.offset + request.limit;
    match request.ranking {
        Ranking::Hybrid(fusion) => hybrid(snapshot, &ctx, table, request, query_vector, fusion),
        _ => {
            let docs = vector_docs(snapshot, table, query_vector, want)?;
            let hits = docs
                .into_iter()
                .skip(request.offset)
                .take(request.limit)
                .map(|(ord, best)| {
                    let chunk = chunk_at(snapshot, best.key, best.chunk)?;
                    build_hit(&ctx, ord, best.score, chunk, request.with_content)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(SearchResults {
                hits,
                total: request.with_total.then(|| count_documents(snapshot, table)),
                generation: snapshot.catalog.generation,
            })
        }
    }
}

/// Documents with vectors (every one of them is ranked by vector search).
fn count_documents(snapshot: &Snapshot, table: &VectorTable) -> usize {
    snapshot
        .catalog
        .documents()
        .filter(|e| table.has_document(e.key))
        .count()
}

/// The `want` documents nearest to `query`, best first, each with its best chunk.
fn vector_docs(
    snapshot: &Snapshot,
    table: &VectorTable,
    query: &[f32],
    want: usize,
) -> Result<Vec<(DocOrd, ChunkScore)>> {
    let catalog = &snapshot.catalog;
    let mut window = (want * 3).max(20);
    loop {
        let nearest = table.nearest(query, window)?;
        let exhausted = nearest.len() < window;
        let mut seen = HashSet::with_capacity(nearest.len());
        let mut docs = Vec::with_capacity(want);
        for hit in nearest {
            let Some(ord) = catalog.ord_of_key(hit.key) else {
                continue;
            };
            if seen.insert(ord) {
                docs.push((ord, hit));
            }
        }
        if docs.len() >= want || exhausted {
            docs.sort_by(|a, b| {
                b.1.score
                    .total_cmp(&a.1.score)
                    .then_with(|| doc_id(snapshot, a.0).cmp(doc_id(snapshot, b.0)))
            });
            docs.truncate(want);
            return Ok(docs);
        }
        window *= 4;
    }
}

struct Candidate {
    vector: Option<(usize, ChunkScore)>,
    keyword: Option<(usize, Score, DocAddress)>,
}

fn hybrid(
    snapshot: &Snapshot,
    ctx: &search::Ctx<'_>,
    table: &VectorTable,
    request: &SearchRequest<'_>,
    query: &[f32],
    fusion: Fusion,
) -> Result<SearchResults> {
    let want = request.offset + request.limit;
    let pool = (2 * want).max(50);
    let mut candidates: HashMap<DocOrd, Candidate> = HashMap::new();
    for (rank, (ord, best)) in vector_docs(snapshot, table, query, pool)?
        .into_iter()
        .enumerate()
    {
        candidates.insert(
            ord,
            Candidate {
                vector: Some((rank + 1, best)),
                keyword: None,
            },
        );
    }
    let keyword = bm25_top_docs(ctx, pool)?;
    let best_bm25 = keyword.first().map_or(0.0, |k| k.0);
    for (rank, (score, address, ord)) in keyword.into_iter().enumerate() {
        candidates
            .entry(ord)
            .or_insert(Candidate {
                vector: None,
                keyword: None,
            })
            .keyword = Some((rank + 1, score, address));
    }
    let alpha = fusion.alpha();
    let total = candidates.len();
    // (fused score, share of the vector side, doc, candidate)
    let mut fused: Vec<(f32, bool, DocOrd, Candidate)> = candidates
        .into_iter()
        .map(|(ord, mut cand)| {
            if cand.vector.is_none() {
                let key = snapshot.catalog.entry(ord).map_or(0, |e| e.key);
                cand.vector = table.best_of_document(key, query).map(|b| (0, b));
            }
            let (v, k) = match fusion {
                Fusion::Weighted(_) => {
                    let v = cand.vector.map_or(0.0, |(_, b)| b.score.max(0.0));
                    let k = match cand.keyword {
                        Some((_, s, _)) if best_bm25 > 0.0 => s / best_bm25,
                        _ => 0.0,
                    };
                    (alpha * v, (1.0 - alpha) * k)
                }
                Fusion::Rrf(_) => {
                    let rank = |r: Option<usize>| match r {
                        Some(r) if r > 0 => r as f32,
                        _ => RRF_MISSING_RANK,
                    };
                    let v_rank = rank(cand.vector.map(|(r, _)| r));
                    let k_rank = rank(cand.keyword.map(|(r, _, _)| r));
                    (alpha / (RRF_K + v_rank), (1.0 - alpha) / (RRF_K + k_rank))
                }
            };
            (v + k, v >= k, ord, cand)
        })
        .collect();
    fused.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| doc_id(snapshot, a.2).cmp(doc_id(snapshot, b.2)))
    });
    let hits = fused
        .into_iter()
        .skip(request.offset)
        .take(request.limit)
        .map(|(score, vector_led, ord, cand)| {
            let chunk: StoredChunk = match (vector_led, cand.vector, cand.keyword) {
                (true, Some((_, best)), _) | (false, Some((_, best)), None) => {
                    chunk_at(snapshot, best.key, best.chunk)?
                }
                (_, _, Some((_, _, address))) => stored_chunk(snapshot, address)?,
                (_, None, None) => StoredChunk::default(),
            };
            build_hit(ctx, ord, score, chunk, request.with_content)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SearchResults {
        hits,
        total: request.with_total.then_some(total),
        generation: snapshot.catalog.generation,
    })
}
