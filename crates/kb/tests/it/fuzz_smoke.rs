//! The short form of the fuzz targets in `fuzz/`, in the test command: the same entry points
//! on a few hundred generated inputs each (the coverage-guided runs are `scripts/fuzz`).
//! Every input must get an answer; none may panic.

use mneme_kb::convert::{Format, convert};
use proptest::prelude::*;

const FORMATS: [(Format, &str); 6] = [
    (Format::Markdown, "doc.md"),
    (Format::Text, "doc.txt"),
    (Format::Html, "doc.html"),
    (Format::Pdf, "doc.pdf"),
    (Format::Docx, "doc.docx"),
    (Format::Code, "doc.rs"),
];

/// Bytes that start like the formats' own files, so the converters get past their first
/// checks: a PDF header, a ZIP (DOCX) signature, HTML and markdown openings.
fn prefixed() -> impl Strategy<Value = Vec<u8>> {
    let prefixes: Vec<&'static [u8]> = vec![
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        b"<!doctype html><html><head><title>",
        b"# Title\n\n## Section\n\n",
        b"",
    ];
    (
        prop::sample::select(prefixes),
        prop::collection::vec(any::<u8>(), 0..2048),
    )
        .prop_map(|(prefix, rest)| {
            let mut bytes = prefix.to_vec();
            bytes.extend(rest);
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn converters_answer_any_bytes(selector in 0usize..6, bytes in prefixed()) {
        let (format, name) = FORMATS[selector];
        let _ = convert(format, name, &bytes);
    }

    #[test]
    fn the_loaders_answer_any_contents_behind_a_valid_checksum(
        loader in 0usize..4,
        contents in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let dir = tempfile::tempdir().unwrap();
        match loader {
            0 => {
                mneme_kb::fuzzing::load_catalog(dir.path(), &contents);
            }
            1 => {
                mneme_kb::fuzzing::load_vectors(dir.path(), &contents);
            }
            2 => {
                mneme_kb::fuzzing::load_pending(dir.path(), &contents);
            }
            _ => {
                // A scan's format byte, then anything.
                let mut scan = vec![1];
                scan.extend_from_slice(&contents);
                mneme_kb::fuzzing::decode_scan(&scan);
            }
        }
    }

    #[test]
    fn query_validation_answers_any_text(text in "\\PC{0,1200}") {
        let _ = mneme_kb::validate_query(&text);
    }
}
