//! Queries: BM25 over chunks with one hit per document (its best chunk wins), and the
//! KnowledgeBeast-compatible `terms` ranking over whole documents.

use std::collections::{BTreeSet, HashSet};

use tantivy::collector::{Collector, DocSetCollector, SegmentCollector, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term};

use crate::catalog::{DocEntry, DocOrd};
use crate::error::{Error, Result};
use crate::query::{Hit, SearchRequest, SearchResults, Snippet};
use crate::snapshot::Snapshot;
use crate::text;

/// Snippet passages are at most this many characters.
const SNIPPET_CHARS: usize = 200;

pub(crate) struct Ctx<'s> {
    pub(crate) snapshot: &'s Snapshot,
    pub(crate) query: Box<dyn Query>,
    snippets: Option<SnippetGenerator>,
}

/// The indexed terms of `query` (analyzed like the indexed text), distinct and sorted.
fn analyzed_terms(analyzer: &TextAnalyzer, query: &str) -> BTreeSet<String> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(query);
    let mut terms = BTreeSet::new();
    while stream.advance() {
        terms.insert(stream.token().text.clone());
    }
    terms
}

pub(crate) fn context<'s>(
    snapshot: &'s Snapshot,
    query_text: &str,
    with_snippets: bool,
) -> Result<Ctx<'s>> {
    let field = snapshot.searched_field();
    let terms = analyzed_terms(&snapshot.analyzer, query_text);
    let mut weights = std::collections::BTreeMap::new();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len());
    for word in terms {
        let term = Term::from_field_text(field, &word);
        let doc_freq = snapshot.searcher.doc_freq(&term)?;
        if doc_freq > 0 {
            weights.insert(word, 1.0 / (1.0 + doc_freq as Score));
        }
        clauses.push((
            Occur::Should,
            Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
        ));
    }
    let query: Box<dyn Query> = match clauses.len() {
        0 => Box::new(EmptyQuery),
        1 => clauses.pop().unwrap().1,
        _ => Box::new(BooleanQuery::new(clauses)),
    };
    let snippets = with_snippets.then(|| {
        let marked = crate::snippet::marked_terms(
            &crate::index::analyzer(false),
            &snapshot.analyzer,
            query_text,
            weights,
        );
        SnippetGenerator::new(marked, snapshot.analyzer.clone(), field, SNIPPET_CHARS)
    });
    Ok(Ctx {
        snapshot,
        query,
        snippets,
    })
}

pub(crate) fn bm25(snapshot: &Snapshot, request: &SearchRequest<'_>) -> Result<SearchResults> {
    let ctx = context(snapshot, request.query, request.with_snippets)?;
    let want = request.offset + request.limit;
    let catalog = &snapshot.catalog;
    let best = bm25_top_docs(&ctx, want)?;
    let total = if request.with_total {
        Some(bm25_total(&ctx)?)
    } else {
        None
    };
    let hits = best
        .into_iter()
        .skip(request.offset)
        .take(request.limit)
        .map(|(score, address, ord)| {
            let chunk = stored_chunk(snapshot, address)?;
            build_hit(&ctx, ord, score, chunk, request.with_content)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SearchResults {
        hits,
        total,
        generation: catalog.generation,
    })
}

/// The `want` best documents under BM25 (each with its best chunk), best first, ties by doc_id.
pub(crate) fn bm25_top_docs(
    ctx: &Ctx<'_>,
    want: usize,
) -> Result<Vec<(Score, DocAddress, DocOrd)>> {
    let snapshot = ctx.snapshot;
    let catalog = &snapshot.catalog;
    // Fetch more chunks than documents wanted (several chunks of one document may lead), and
    // fetch again with a bigger window when they collapse to too few documents.
    let mut window = (want * 3).max(20);
    let mut best: Vec<(Score, DocAddress, DocOrd)>;
    loop {
        let top = snapshot
            .searcher
            .search(&ctx.query, &TopDocs::with_limit(window).order_by_score())?;
        let exhausted = top.len() < window;
        let mut seen = HashSet::with_capacity(top.len());
        best = Vec::with_capacity(want.min(top.len()));
        let mut keys = KeyColumns::default();
        for (score, address) in top {
            let Some(key) = keys.key(snapshot, address)? else {
                continue;
            };
            let Some(ord) = catalog.ord_of_key(key) else {
                continue;
            };
            if seen.insert(ord) {
                best.push((score, address, ord));
            }
        }
        if best.len() >= want || exhausted {
            break;
        }
        window *= 4;
    }
    best.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then_with(|| doc_id(snapshot, a.2).cmp(doc_id(snapshot, b.2)))
    });
    best.truncate(want);
    Ok(best)
}

/// Counts the documents matching the keyword query.
pub(crate) fn bm25_total(ctx: &Ctx<'_>) -> Result<usize> {
    Ok(ctx.snapshot.searcher.search(&ctx.query, &DistinctDocKeys)?)
}

/// Chunk `index` of the document with `key`.
pub(crate) fn chunk_at(snapshot: &Snapshot, key: u64, index: u32) -> Result<StoredChunk> {
    let fields = &snapshot.fields;
    let query = BooleanQuery::new(vec![
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_u64(fields.doc_key, key),
                IndexRecordOption::Basic,
            )) as Box<dyn Query>,
        ),
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_u64(fields.chunk_idx, u64::from(index)),
                IndexRecordOption::Basic,
            )),
        ),
    ]);
    let top = snapshot
        .searcher
        .search(&query, &TopDocs::with_limit(1).order_by_score())?;
    match top.first() {
        Some((_, address)) => stored_chunk(snapshot, *address),
        None => Err(Error::Corrupt(format!(
            "chunk {index} of a document with vectors is missing from the index; run `mneme ingest --rebuild`"
        ))),
    }
}

pub(crate) fn terms(snapshot: &Snapshot, request: &SearchRequest<'_>) -> Result<SearchResults> {
    let catalog = &snapshot.catalog;
    let query_terms = text::py_terms(request.query);
    let mut scored = catalog.term_match_counts(&query_terms);
    let total = scored.len();
    let order = |a: &(DocOrd, u32), b: &(DocOrd, u32)| {
        b.1.cmp(&a.1)
            .then_with(|| doc_id(snapshot, a.0).cmp(doc_id(snapshot, b.0)))
    };
    let want = (request.offset + request.limit).min(scored.len());
    if want < scored.len() && want > 0 {
        scored.select_nth_unstable_by(want - 1, order);
        scored.truncate(want);
    }
    scored.sort_unstable_by(order);
    let ctx = context(snapshot, request.query, request.with_snippets)?;
    let hits = scored
        .into_iter()
        .skip(request.offset)
        .take(request.limit)
        .map(|(ord, count)| {
            let chunk = best_chunk(&ctx, key_of(snapshot, ord))?;
            build_hit(&ctx, ord, count as f32, chunk, request.with_content)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SearchResults {
        hits,
        total: request.with_total.then_some(total),
        generation: catalog.generation,
    })
}

/// The chunk of one document that scores best for the query under BM25, or its first chunk
/// when no chunk matches (a `terms` query may match only punctuation-attached words).
fn best_chunk(ctx: &Ctx<'_>, key: u64) -> Result<StoredChunk> {
    let fields = &ctx.snapshot.fields;
    let of_document: Box<dyn Query> = Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_u64(fields.doc_key, key),
            IndexRecordOption::Basic,
        )),
        0.0,
    ));
    let scored = BooleanQuery::new(vec![
        (Occur::Must, of_document.box_clone()),
        (Occur::Must, ctx.query.box_clone()),
    ]);
    let top = ctx
        .snapshot
        .searcher
        .search(&scored, &TopDocs::with_limit(1).order_by_score())?;
    if let Some((_, address)) = top.first() {
        return stored_chunk(ctx.snapshot, *address);
    }
    let first = BooleanQuery::new(vec![
        (Occur::Must, of_document),
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_u64(fields.chunk_idx, 0),
                IndexRecordOption::Basic,
            )),
        ),
    ]);
    let top = ctx
        .snapshot
        .searcher
        .search(&first, &TopDocs::with_limit(1).order_by_score())?;
    match top.first() {
        Some((_, address)) => stored_chunk(ctx.snapshot, *address),
        None => Ok(StoredChunk::default()),
    }
}

pub(crate) fn doc_id(snapshot: &Snapshot, ord: DocOrd) -> &str {
    snapshot
        .catalog
        .entry(ord)
        .map_or("", |entry| entry.doc_id.as_str())
}

fn key_of(snapshot: &Snapshot, ord: DocOrd) -> u64 {
    snapshot.catalog.entry(ord).map_or(0, |entry| entry.key)
}

/// A chunk as stored in the index.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoredChunk {
    pub index: u32,
    pub start: usize,
    pub end: usize,
    pub body: String,
    pub heading_path: Vec<String>,
}

pub(crate) fn stored_chunk(snapshot: &Snapshot, address: DocAddress) -> Result<StoredChunk> {
    let doc: TantivyDocument = snapshot.searcher.doc(address)?;
    let fields = &snapshot.fields;
    let u64_of = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
    Ok(StoredChunk {
        index: u64_of(fields.chunk_idx) as u32,
        start: u64_of(fields.start) as usize,
        end: u64_of(fields.end) as usize,
        body: doc
            .get_first(fields.body)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned(),
        heading_path: doc
            .get_all(fields.heading)
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    })
}

/// Every chunk of the document with `key`, in order.
pub(crate) fn document_chunks(snapshot: &Snapshot, key: u64) -> Result<Vec<StoredChunk>> {
    let term = Term::from_field_u64(snapshot.fields.doc_key, key);
    let query = TermQuery::new(term, IndexRecordOption::Basic);
    let addresses = snapshot.searcher.search(&query, &DocSetCollector)?;
    let mut chunks = addresses
        .into_iter()
        .map(|address| stored_chunk(snapshot, address))
        .collect::<Result<Vec<_>>>()?;
    chunks.sort_by_key(|chunk| chunk.index);
    Ok(chunks)
}

/// The document text rebuilt from its chunks, which tile it with overlaps.
pub(crate) fn stitch(chunks: &[StoredChunk]) -> String {
    let mut text = String::new();
    let mut covered = 0usize;
    for chunk in chunks {
        let skip = covered.saturating_sub(chunk.start);
        text.push_str(chunk.body.get(skip..).unwrap_or(""));
        covered = covered.max(chunk.end);
    }
    text
}

pub(crate) fn build_hit(
    ctx: &Ctx<'_>,
    ord: DocOrd,
    score: f32,
    chunk: StoredChunk,
    with_content: bool,
) -> Result<Hit> {
    let entry: &DocEntry =
        ctx.snapshot.catalog.entry(ord).ok_or_else(|| {
            Error::Corrupt("a hit names a document missing from the catalog".into())
        })?;
    let snippet = match &ctx.snippets {
        Some(generator) => generator.snippet(&chunk.body),
        None => tantivy::snippet::Snippet::empty(),
    };
    let snippet = if ctx.snippets.is_none() {
        Snippet::default()
    } else if snippet.highlighted().is_empty() {
        crate::snippet::lead(&chunk.body, SNIPPET_CHARS)
    } else {
        crate::snippet::passage(&chunk.body, snippet.fragment_range(), snippet.highlighted())
    };
    let content = if with_content {
        Some(stitch(&document_chunks(ctx.snapshot, entry.key)?))
    } else {
        None
    };
    Ok(Hit {
        score,
        doc_id: entry.doc_id.clone(),
        name: entry.name.clone(),
        title: entry.title.clone(),
        path: entry.path.clone(),
        kb_dir: entry.kb_dir.clone(),
        format: entry.format,
        heading_path: chunk.heading_path,
        chunk_index: chunk.index,
        chunk_count: entry.n_chunks,
        chunk_range: chunk.start..chunk.end,
        snippet,
        passage: chunk.body,
        content,
    })
}

/// The `doc_key` fast-field column of each segment, opened on first use.
#[derive(Default)]
pub(crate) struct KeyColumns {
    columns: Vec<Option<tantivy::columnar::Column<u64>>>,
}

impl KeyColumns {
    pub(crate) fn key(&mut self, snapshot: &Snapshot, address: DocAddress) -> Result<Option<u64>> {
        let ord = address.segment_ord as usize;
        if self.columns.len() <= ord {
            self.columns.resize(ord + 1, None);
        }
        if self.columns[ord].is_none() {
            let reader = snapshot.searcher.segment_reader(address.segment_ord);
            self.columns[ord] = Some(reader.fast_fields().u64("doc_key")?);
        }
        Ok(self.columns[ord]
            .as_ref()
            .and_then(|column| column.first(address.doc_id)))
    }
}

/// Counts distinct documents among the matching chunks.
struct DistinctDocKeys;

struct DistinctDocKeysSegment {
    column: tantivy::columnar::Column<u64>,
    keys: Vec<u64>,
}

impl Collector for DistinctDocKeys {
    type Fruit = usize;
    type Child = DistinctDocKeysSegment;

    fn for_segment(
        &self,
        _segment_ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<DistinctDocKeysSegment> {
        Ok(DistinctDocKeysSegment {
            column: segment.fast_fields().u64("doc_key")?,
            keys: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segment_keys: Vec<Vec<u64>>) -> tantivy::Result<usize> {
        let mut keys: Vec<u64> = segment_keys.into_iter().flatten().collect();
        keys.sort_unstable();
        keys.dedup();
        Ok(keys.len())
    }
}

impl SegmentCollector for DistinctDocKeysSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(key) = self.column.first(doc) {
            self.keys.push(key);
        }
    }

    fn harvest(self) -> Vec<u64> {
        self.keys
    }
}
