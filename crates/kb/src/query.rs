//! What a query asks and what it gets back: the ranking, the request, hits, snippets and
//! KnowledgeBeast's query validation. Plain data, shared by the search code, the cache and
//! the engine, and importing none of them.

use std::ops::Range;

use crate::convert::Format;
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
