//! Heading-aware chunking: a document is cut into sections at its headings, and each section
//! into pieces of at most `chunk_size` characters that overlap by about `chunk_overlap`.
//!
//! Chunks are byte ranges of the document text that tile it (every byte is in some chunk), so
//! the full text can be rebuilt from the stored chunks and no second copy of it is kept.

use crate::convert::Heading;

/// Chunking knobs, in characters (KnowledgeBeast's `chunk_size` / `chunk_overlap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkConfig {
    pub chunk_size: usize,
    pub chunk_overlap: usize,
}

/// One piece of a document: its byte range in the text and the headings above it, outermost
/// first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    pub start: usize,
    pub end: usize,
    pub heading_path: Vec<String>,
}

/// Cuts `text` into chunks. `headings` must be sorted by offset (as the converters produce
/// them). `config.chunk_overlap` must be smaller than `config.chunk_size`.
pub fn chunk_text(text: &str, headings: &[Heading], config: ChunkConfig) -> Vec<ChunkSpan> {
    debug_assert!(config.chunk_overlap < config.chunk_size);
    let mut chunks = Vec::new();
    for section in sections(text, headings) {
        for (start, end) in split_section(text, section.start, section.end, config) {
            chunks.push(ChunkSpan {
                start,
                end,
                heading_path: section.heading_path.clone(),
            });
        }
    }
    chunks
}

struct Section {
    start: usize,
    end: usize,
    heading_path: Vec<String>,
}

/// Sections start at each heading line. A section holding nothing but its heading line is
/// folded into the next one, so that `# Title` directly followed by `## Intro` does not make a
/// chunk of its own; the merged section keeps the deeper heading path.
fn sections(text: &str, headings: &[Heading]) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut path: Vec<(u8, String)> = Vec::new();
    let mut boundaries: Vec<(usize, Vec<String>)> = vec![(0, Vec::new())];
    for heading in headings {
        while path
            .last()
            .is_some_and(|(level, _)| *level >= heading.level)
        {
            path.pop();
        }
        path.push((heading.level, heading.text.clone()));
        let names = path.iter().map(|(_, name)| name.clone()).collect();
        if heading.offset == 0 {
            boundaries[0].1 = names;
        } else {
            boundaries.push((heading.offset, names));
        }
    }
    let mut pending_start: Option<usize> = None;
    for (i, (start, heading_path)) in boundaries.iter().enumerate() {
        let end = boundaries.get(i + 1).map_or(text.len(), |(next, _)| *next);
        let start = pending_start.take().unwrap_or(*start);
        let body = &text[start..end];
        let only_heading = body.lines().skip(1).all(|line| line.trim().is_empty())
            && body.trim_start().starts_with('#');
        if end == text.len() || !(only_heading || body.trim().is_empty()) {
            sections.push(Section {
                start,
                end,
                heading_path: heading_path.clone(),
            });
        } else {
            pending_start = Some(start);
        }
    }
    sections
}

/// Byte ranges of at most `chunk_size` characters covering `text[start..end]`, cut at the best
/// boundary in the second half of each window (paragraph, line, sentence, then word) and
/// overlapping the previous piece by about `chunk_overlap` characters, moved to a word start.
fn split_section(text: &str, start: usize, end: usize, config: ChunkConfig) -> Vec<(usize, usize)> {
    let mut pieces = Vec::new();
    let mut pos = start;
    let mut prev_cut = start;
    loop {
        let limit = advance_chars(text, pos, config.chunk_size, end);
        if limit >= end {
            pieces.push((pos, end));
            return pieces;
        }
        // Cut in the second half of the window, and past the previous cut so that every
        // piece adds text (with a large overlap the window may start well before it).
        let floor = advance_chars(text, pos, config.chunk_size / 2, end).max(prev_cut);
        let cut = best_cut(&text[floor..limit]).map_or(limit, |offset| floor + offset);
        pieces.push((pos, cut));
        prev_cut = cut;
        let back = retreat_chars(text, cut, config.chunk_overlap, pos);
        let next = word_start(text, back, cut);
        pos = if next > pos { next } else { cut };
    }
}

/// Where to cut inside `window` (an offset just after the boundary), best boundary first.
fn best_cut(window: &str) -> Option<usize> {
    if let Some(i) = window.rfind("\n\n") {
        return Some(i + 2);
    }
    if let Some(i) = window.rfind('\n') {
        return Some(i + 1);
    }
    let sentence = [". ", "! ", "? ", "; "]
        .iter()
        .filter_map(|mark| window.rfind(mark))
        .max();
    if let Some(i) = sentence {
        return Some(i + 2);
    }
    window
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map(|(i, c)| i + c.len_utf8())
}

/// The byte offset `n` characters after `from`, capped at `end`.
fn advance_chars(text: &str, from: usize, n: usize, end: usize) -> usize {
    let slice = &text[from..end];
    if slice.len() <= n {
        return end;
    }
    if slice.is_char_boundary(n) && slice.as_bytes()[..n].is_ascii() {
        return from + n;
    }
    slice.char_indices().nth(n).map_or(end, |(i, _)| from + i)
}

/// The byte offset `n` characters before `from`, not before `floor`.
fn retreat_chars(text: &str, from: usize, n: usize, floor: usize) -> usize {
    let slice = &text[floor..from];
    if slice.len() <= n {
        return floor;
    }
    let guess = slice.len() - n;
    if slice.is_char_boundary(guess) && slice.as_bytes()[guess..].is_ascii() {
        return floor + guess;
    }
    slice
        .char_indices()
        .rev()
        .nth(n - 1)
        .map_or(floor, |(i, _)| floor + i)
}

/// The first word start at or after `from` and before `limit`; `from` if there is none.
fn word_start(text: &str, from: usize, limit: usize) -> usize {
    if from == 0 || text[..from].ends_with(char::is_whitespace) {
        return from;
    }
    text[from..limit]
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map(|(i, c)| from + i + c.len_utf8())
        .unwrap_or(from)
}

#[cfg(test)]
mod tests;
