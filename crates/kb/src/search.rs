//! Queries: BM25 over chunks with one hit per document (its best chunk wins), and the
//! KnowledgeBeast-compatible `terms` ranking over whole documents.

use std::collections::{BTreeSet, HashSet};
use std::ops::Range;

use tantivy::collector::{Collector, DocSetCollector, SegmentCollector, TopDocs};
use tantivy::query::{BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term};

use crate::catalog::{DocEntry, DocOrd};
use crate::convert::Format;
use crate::engine::Snapshot;
use crate::error::{Error, Result};
use crate::text;

/// How hits are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Ranking {
    /// BM25 over chunks (tantivy's Lucene-style scoring), one hit per document. The default.
    Bm25,
    /// KnowledgeBeast's keyword ranking: the number of distinct query terms (lowercase,
    /// whitespace-split, punctuation kept) that occur in the document.
    Terms,
    /// Cosine similarity of the query's embedding to each chunk's; a document scores as its
    /// best chunk.
    Vector,
    /// Keyword (BM25) and vector results fused.
    Hybrid(Fusion),
}

/// How hybrid ranking combines the keyword and the vector side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Fusion {
    /// `alpha * cosine + (1 - alpha) * bm25 / best bm25` over the union of both sides' top
    /// candidates (KnowledgeBeast's weighted fusion, with scores instead of ranks).
    Weighted(Alpha),
    /// Reciprocal-rank fusion: `alpha / (60 + vector rank) + (1 - alpha) / (60 + keyword
    /// rank)`, a missing rank counting as 1000 (KnowledgeBeast's v3 backends).
    Rrf(Alpha),
}

impl Fusion {
    pub fn alpha(self) -> f32 {
        match self {
            Fusion::Weighted(a) | Fusion::Rrf(a) => a.get(),
        }
    }
}

/// The weight of the vector side in hybrid ranking, in `[0, 1]`.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Alpha(f32);

/// KnowledgeBeast's default alpha.
pub const DEFAULT_ALPHA: f32 = 0.7;

impl Alpha {
    /// `None` unless `alpha` is a number in `[0, 1]`.
    pub fn new(alpha: f32) -> Option<Alpha> {
        (0.0..=1.0).contains(&alpha).then_some(Alpha(alpha))
    }

    pub fn get(self) -> f32 {
        self.0
    }
}

impl Default for Alpha {
    fn default() -> Alpha {
        Alpha(DEFAULT_ALPHA)
    }
}

impl PartialEq for Alpha {
    fn eq(&self, other: &Alpha) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Alpha {}

impl std::hash::Hash for Alpha {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Ranking {
    pub fn name(self) -> &'static str {
        match self {
            Ranking::Bm25 => "keyword",
            Ranking::Terms => "terms",
            Ranking::Vector => "vector",
            Ranking::Hybrid(_) => "hybrid",
        }
    }

    /// Whether this ranking needs the query's embedding.
    pub fn uses_vectors(self) -> bool {
        matches!(self, Ranking::Vector | Ranking::Hybrid(_))
    }
}

/// One query and its options.
#[derive(Clone, Copy, Debug)]
pub struct SearchRequest<'a> {
    pub query: &'a str,
    pub ranking: Ranking,
    pub limit: usize,
    pub offset: usize,
    /// Return each hit's full document text.
    pub with_content: bool,
    /// Count every matching document (for pagination), not just the returned page.
    pub with_total: bool,
    /// Answer from the result cache when possible, and store the answer there.
    pub use_cache: bool,
    /// Compute each hit's highlighted snippet (callers that show the passage skip it).
    pub with_snippets: bool,
}

/// A short passage of the best chunk with the byte ranges of the matched words.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snippet {
    pub text: String,
    pub highlights: Vec<Range<usize>>,
}

impl Snippet {
    /// The passage with every highlight wrapped in `open` / `close`.
    pub fn marked(&self, open: &str, close: &str) -> String {
        self.render(open, close, |s, out| out.push_str(s))
    }

    /// The passage HTML-escaped, highlights in `<b>` elements.
    pub fn to_html(&self) -> String {
        self.render("<b>", "</b>", |s, out| {
            for c in s.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    c => out.push(c),
                }
            }
        })
    }

    fn render(&self, open: &str, close: &str, push: impl Fn(&str, &mut String)) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        let mut pos = 0;
        for range in &self.highlights {
            push(&self.text[pos..range.start], &mut out);
            out.push_str(open);
            push(&self.text[range.clone()], &mut out);
            out.push_str(close);
            pos = range.end;
        }
        push(&self.text[pos..], &mut out);
        out
    }
}

/// One document in a result list.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    pub score: f32,
    pub doc_id: String,
    pub name: String,
    pub title: String,
    pub path: String,
    pub kb_dir: String,
    pub format: Format,
    /// Headings above the best chunk, outermost first.
    pub heading_path: Vec<String>,
    pub chunk_index: u32,
    pub chunk_count: u32,
    /// Byte range of the best chunk in the document text.
    pub chunk_range: Range<usize>,
    pub snippet: Snippet,
    /// The text of the best chunk (what the API returns as `content` by default).
    pub passage: String,
    pub content: Option<String>,
}

/// A page of hits, best first.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchResults {
    pub hits: Vec<Hit>,
    /// Number of matching documents, when the request asked for it.
    pub total: Option<usize>,
    /// The index generation these results were computed on.
    pub generation: u64,
}

/// Longest query accepted, in characters (KnowledgeBeast's limit).
pub const MAX_QUERY_CHARS: usize = 1000;
/// Characters KnowledgeBeast rejects in a query.
pub const FORBIDDEN_QUERY_CHARS: &[char] = &['<', '>', ';', '&', '|', '$', '`', '\n', '\r'];

/// KnowledgeBeast's query validation: 1 to 1000 characters, none of `< > ; & | $ \` \n \r`,
/// and not only whitespace. Returns the query with outer whitespace removed.
pub fn validate_query(query: &str) -> Result<&str> {
    let chars = query.chars().count();
    if chars == 0 {
        return Err(Error::InvalidQuery(
            "String should have at least 1 character".into(),
        ));
    }
    if chars > MAX_QUERY_CHARS {
        return Err(Error::InvalidQuery(format!(
            "String should have at most {MAX_QUERY_CHARS} characters"
        )));
    }
    if let Some(c) = query.chars().find(|c| FORBIDDEN_QUERY_CHARS.contains(c)) {
        let shown = match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            c => c.to_string(),
        };
        return Err(Error::InvalidQuery(format!(
            "Query contains invalid character: {shown}"
        )));
    }
    let trimmed = query.trim_matches(text::is_py_whitespace);
    if trimmed.is_empty() {
        return Err(Error::InvalidQuery(
            "Query cannot be empty or only whitespace".into(),
        ));
    }
    Ok(trimmed)
}

/// Snippet passages are at most this many characters.
const SNIPPET_CHARS: usize = 200;

pub(crate) fn run(
    snapshot: &Snapshot,
    request: &SearchRequest<'_>,
    query_vector: Option<&[f32]>,
) -> Result<SearchResults> {
    if request
        .query
        .trim_matches(text::is_py_whitespace)
        .is_empty()
    {
        return Err(Error::InvalidQuery("Search terms cannot be empty".into()));
    }
    match request.ranking {
        Ranking::Bm25 => bm25(snapshot, request),
        Ranking::Terms => terms(snapshot, request),
        Ranking::Vector | Ranking::Hybrid(_) => {
            let query_vector = query_vector
                .ok_or_else(|| Error::NoVectors("this query needs the query's embedding".into()))?;
            crate::hybrid::run(snapshot, request, query_vector)
        }
    }
}

pub(crate) struct Ctx<'s> {
    pub(crate) snapshot: &'s Snapshot,
    query: Box<dyn Query>,
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

fn bm25(snapshot: &Snapshot, request: &SearchRequest<'_>) -> Result<SearchResults> {
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

fn terms(snapshot: &Snapshot, request: &SearchRequest<'_>) -> Result<SearchResults> {
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
