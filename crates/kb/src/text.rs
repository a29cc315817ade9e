//! Python-compatible tokenisation for the `terms` ranking mode: `text.lower().split()`.
//!
//! KnowledgeBeast's keyword engine builds its index from `set(content.lower().split())`, so a
//! client that depends on its hit sets needs exactly Python's lowercase and Python's notion of
//! whitespace, which differs from Rust's (see [`is_py_whitespace`]).

use std::borrow::Cow;

/// Python's `str.isspace()`: Unicode White_Space plus the four ASCII information separators
/// U+001C..U+001F, which `str.split()` treats as separators and Rust's `char::is_whitespace`
/// does not.
pub fn is_py_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.lower()` (full Unicode lowercase mapping, final sigma included).
pub fn py_lower(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// Python's `str.split()` without arguments: runs of whitespace separate, empty tokens never
/// appear.
pub fn py_split(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_py_whitespace)
        .filter(|token| !token.is_empty())
}

/// The distinct terms of `text` as KnowledgeBeast computes them: `set(text.lower().split())`,
/// returned sorted so that the result is deterministic.
pub fn py_terms(text: &str) -> Vec<String> {
    let lowered = py_lower(text);
    let mut terms: Vec<&str> = py_split(&lowered).collect();
    terms.sort_unstable();
    terms.dedup();
    terms.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: &[&str]) {
        assert_eq!(py_terms(text), expect, "terms of {text:?}");
    }

    #[test]
    fn splits_like_python() {
        check("  cache\tdata\n\nindex  ", &["cache", "data", "index"]);
        check("cache\u{a0}data", &["cache", "data"]);
        check("cache\u{1f}data", &["cache", "data"]);
        check("cache\u{1c}data\u{85}x", &["cache", "data", "x"]);
        check("", &[]);
        check(" \u{3000} ", &[]);
    }

    #[test]
    fn lowercases_like_python() {
        check("CACHE Cache cache, CACHE,", &["cache", "cache,"]);
        check("\u{212a}ERNEL", &["kernel"]);
        check("ΟΔΟΣ", &["οδος"]);
        check("(data) value.keyword()", &["(data)", "value.keyword()"]);
    }
}
