//! Snippets: which query words get marked, and where a passage starts and ends.
//!
//! Every analysed query term still counts for BM25; only the marking leaves out English
//! function words (`how`, `does`, `the`), which otherwise light up half of every passage. A
//! passage is cut at whitespace, never inside a word, and says with `…` where it was cut.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use tantivy::Score;
use tantivy::tokenizer::TextAnalyzer;

use crate::query::Snippet;

/// Marks a cut passage at either end.
pub const ELLIPSIS: &str = "…";

/// How far (in bytes) a passage is stretched to reach whitespace before it is cut mid-word.
const MAX_STRETCH: usize = 24;

/// English function words (NLTK's list, the contractions left out): never marked in a
/// snippet when the query has other words.
#[rustfmt::skip]
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are",
    "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but",
    "by", "can", "did", "do", "does", "doing", "don", "down", "during", "each", "few", "for",
    "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself",
    "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on",
    "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "s",
    "same", "she", "should", "so", "some", "such", "t", "than", "that", "the", "their",
    "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "you", "your", "yours",
    "yourself", "yourselves",
];

/// Whether `word` (lowercase) is an English function word.
pub fn is_stopword(word: &str) -> bool {
    STOPWORDS.binary_search(&word).is_ok()
}

/// The terms to mark: `weights` (analysed query terms) without those that come only from
/// function words of `query`, unless nothing would be left (a query of only `the who`).
/// `plain` splits and lowercases like the index without stemming; `analyzer` is the index's.
pub(crate) fn marked_terms(
    plain: &TextAnalyzer,
    analyzer: &TextAnalyzer,
    query: &str,
    weights: BTreeMap<String, Score>,
) -> BTreeMap<String, Score> {
    let mut plain = plain.clone();
    let mut stream = plain.token_stream(query);
    let mut content_words = String::new();
    while stream.advance() {
        let word = &stream.token().text;
        if !is_stopword(word) {
            content_words.push_str(word);
            content_words.push(' ');
        }
    }
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(&content_words);
    let mut content = BTreeSet::new();
    while stream.advance() {
        content.insert(stream.token().text.clone());
    }
    let marked: BTreeMap<String, Score> = weights
        .iter()
        .filter(|(term, _)| content.contains(*term))
        .map(|(term, weight)| (term.clone(), *weight))
        .collect();
    if marked.is_empty() { weights } else { marked }
}

/// The passage of `body` around `fragment` (a range that starts and ends on tokens), widened
/// to whitespace on both sides, with `…` where it does not reach the body's ends;
/// `highlights` are relative to `fragment`.
pub(crate) fn passage(body: &str, fragment: Range<usize>, highlights: &[Range<usize>]) -> Snippet {
    let start = widen_start(body, fragment.start);
    let end = widen_end(body, fragment.end);
    let cut_before = !body[..start].trim().is_empty();
    let cut_after = !body[end..].trim().is_empty();
    let mut text = String::with_capacity(end - start + 2 * ELLIPSIS.len());
    if cut_before {
        text.push_str(ELLIPSIS);
    }
    let shift = text.len() + (fragment.start - start);
    text.push_str(&body[start..end]);
    if cut_after {
        text.push_str(ELLIPSIS);
    }
    Snippet {
        text,
        highlights: highlights
            .iter()
            .map(|range| range.start + shift..range.end + shift)
            .collect(),
    }
}

/// The first `max_chars` characters of `body` (a chunk no query word is in, as in vector
/// ranking), cut at whitespace, with `…` when there is more.
pub(crate) fn lead(body: &str, max_chars: usize) -> Snippet {
    let body = body.trim();
    let Some((limit, _)) = body.char_indices().nth(max_chars) else {
        return Snippet {
            text: body.to_owned(),
            highlights: Vec::new(),
        };
    };
    let end = body[..limit]
        .rfind(char::is_whitespace)
        .filter(|&at| at > 0)
        .unwrap_or(limit);
    Snippet {
        text: format!("{}{ELLIPSIS}", body[..end].trim_end()),
        highlights: Vec::new(),
    }
}

/// `at` moved back over the non-whitespace just before it (`(cache`, `` `mneme ``), at most
/// [`MAX_STRETCH`] bytes.
fn widen_start(body: &str, at: usize) -> usize {
    let mut start = at;
    for (i, c) in body[..at].char_indices().rev() {
        if c.is_whitespace() || at - i > MAX_STRETCH {
            break;
        }
        start = i;
    }
    start
}

/// `at` moved on over the non-whitespace just after it (`answers.`, `` warm` ``), at most
/// [`MAX_STRETCH`] bytes.
fn widen_end(body: &str, at: usize) -> usize {
    let mut end = at;
    for (i, c) in body[at..].char_indices() {
        if c.is_whitespace() || i + c.len_utf8() > MAX_STRETCH {
            break;
        }
        end = at + i + c.len_utf8();
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fragment` (a piece of `body` that starts and ends on a word, as tantivy picks it) with
    /// `word`, its first occurrence in it, marked.
    fn check_passage(body: &str, fragment: &str, word: &str, expect: &str) {
        let at = body.find(fragment).unwrap();
        let in_fragment = fragment.find(word).unwrap();
        let marked = std::iter::once(in_fragment..in_fragment + word.len()).collect::<Vec<_>>();
        let snippet = passage(body, at..at + fragment.len(), &marked);
        assert_eq!(
            snippet.marked("[", "]"),
            expect,
            "{body:?} around {fragment:?}"
        );
    }

    #[test]
    fn the_stopword_list_is_sorted() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_stopword("how") && is_stopword("the") && !is_stopword("cache"));
    }

    #[test]
    fn passages_end_at_whitespace_and_say_where_they_were_cut() {
        let sentence = "The cache keeps answers.";
        check_passage(
            sentence,
            "The cache keeps answers",
            "cache",
            "The [cache] keeps answers.",
        );
        check_passage("one two cache three", "cache", "cache", "…[cache]…");
        check_passage("see (cache) now", "cache", "cache", "…([cache])…");
        check_passage("run `mneme warm` now", "mneme", "mneme", "…`[mneme]…");
        check_passage(
            "ends here cache.\n\n",
            "here cache",
            "cache",
            "…here [cache].",
        );
        check_passage("δέλτα cache ώρα", "cache", "cache", "…[cache]…");
        let long = format!("{} cache", "x".repeat(40));
        check_passage(&long, "cache", "cache", "…[cache]");
    }

    #[test]
    fn a_lead_is_cut_between_words() {
        assert_eq!(lead("  short text \n", 200).text, "short text");
        assert_eq!(lead("alpha beta gamma", 8).text, "alpha…");
        assert_eq!(lead("alphabet", 4).text, "alph…");
    }
}
