//! The document converters (markdown, text, HTML, PDF, DOCX, code) on arbitrary bytes: each
//! answers a conversion or a problem, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mneme_kb::convert::{Format, convert};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let (format, name) = match selector % 6 {
        0 => (Format::Markdown, "doc.md"),
        1 => (Format::Text, "doc.txt"),
        2 => (Format::Html, "doc.html"),
        3 => (Format::Pdf, "doc.pdf"),
        4 => (Format::Docx, "doc.docx"),
        _ => (Format::Code, "doc.rs"),
    };
    let _ = convert(format, name, bytes);
});
