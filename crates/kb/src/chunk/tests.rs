use proptest::prelude::*;

use super::*;
use crate::convert::scan_headings;

fn chunks(text: &str, size: usize, overlap: usize) -> Vec<ChunkSpan> {
    let config = ChunkConfig {
        chunk_size: size,
        chunk_overlap: overlap,
    };
    chunk_text(text, &scan_headings(text), config)
}

/// Every chunk is within the size, starts no later than the previous one ended (so the chunks
/// tile the text), and moves forward.
fn check_tiling(text: &str, spans: &[ChunkSpan], size: usize) {
    assert!(!spans.is_empty() || text.is_empty());
    let mut covered = 0;
    let mut last_start = None;
    for span in spans {
        assert!(span.start <= covered, "gap before {span:?}");
        assert!(
            span.end > covered || text.is_empty(),
            "no progress at {span:?}"
        );
        assert!(
            last_start.is_none_or(|s| span.start > s),
            "start did not move at {span:?}"
        );
        assert!(
            text[span.start..span.end].chars().count() <= size,
            "oversized {span:?}"
        );
        covered = span.end;
        last_start = Some(span.start);
    }
    assert_eq!(covered, text.len());
}

#[test]
fn heading_paths_follow_the_outline() {
    let text =
        "# Guide\n\n## Install\n\nRun it.\n\n## Use\n\nQuery it.\n\n### Flags\n\nSome flags.\n";
    let spans = chunks(text, 1000, 200);
    let paths: Vec<_> = spans.iter().map(|s| s.heading_path.join(" > ")).collect();
    assert_eq!(
        paths,
        ["Guide > Install", "Guide > Use", "Guide > Use > Flags"]
    );
    assert!(text[spans[0].start..spans[0].end].starts_with("# Guide"));
    check_tiling(text, &spans, 1000);
}

#[test]
fn text_before_the_first_heading_has_an_empty_path() {
    let spans = chunks("Intro words.\n\n# Later\n\nBody.\n", 1000, 200);
    assert_eq!(spans[0].heading_path, Vec::<String>::new());
    assert_eq!(spans[1].heading_path, ["Later"]);
}

#[test]
fn long_sections_split_with_overlap_at_word_starts() {
    let sentence = "The cache keeps hot answers close. ";
    let text = sentence.repeat(100);
    let spans = chunks(&text, 200, 50);
    assert!(spans.len() > 10);
    for pair in spans.windows(2) {
        let overlap = pair[0].end.saturating_sub(pair[1].start);
        assert!(
            overlap > 0 && overlap <= 60,
            "overlap {overlap} in {pair:?}"
        );
        assert!(
            text[..pair[1].start].ends_with(' '),
            "chunk does not start at a word"
        );
    }
    check_tiling(&text, &spans, 200);
}

#[test]
fn headings_inside_code_fences_do_not_split() {
    let text = "# Real\n\n```python\n# not a heading\nx = 1\n```\n\nafter\n";
    let spans = chunks(text, 1000, 100);
    assert_eq!(spans.len(), 1);
}

#[test]
fn unbroken_text_is_cut_hard_and_multibyte_safe() {
    let text = "é".repeat(1000);
    let spans = chunks(&text, 300, 20);
    check_tiling(&text, &spans, 300);
}

proptest! {
    #[test]
    fn chunks_always_tile_the_text(
        text in "([a-zé# \n.]{0,40}\n?){0,60}",
        size in 2usize..400,
        overlap_pct in 0usize..100,
    ) {
        let overlap = size * overlap_pct / 100;
        let overlap = overlap.min(size - 1);
        let spans = chunks(&text, size, overlap);
        check_tiling(&text, &spans, size);
    }
}
