//! PDF to text with pdf-extract. It panics on some malformed files, so the call is isolated
//! with `catch_unwind` and any panic becomes a `corrupt` problem.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Converted, Problem, ProblemKind};

pub(super) fn convert(bytes: &[u8], stem: &str) -> Result<Converted, Problem> {
    if !bytes.starts_with(b"%PDF-")
        && !bytes[..bytes.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
    {
        return Err(Problem::new(
            ProblemKind::Corrupt,
            "not a PDF file (no %PDF- header)",
        ));
    }
    let extracted = catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem(bytes)
    }));
    let text = match extracted {
        Ok(Ok(text)) => text,
        Ok(Err(err)) => {
            return Err(Problem::new(
                ProblemKind::Corrupt,
                format!("cannot read PDF: {err}"),
            ));
        }
        Err(_) => {
            return Err(Problem::new(
                ProblemKind::Corrupt,
                "cannot read PDF: the parser failed",
            ));
        }
    };
    // pdf-extract separates pages with form feeds and pads lines; keep paragraphs, drop noise.
    let text = text.replace('\u{c}', "\n\n");
    let text = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    let text = text.trim().to_owned();
    Ok(Converted {
        title: stem.to_owned(),
        text,
        headings: Vec::new(),
    })
}
