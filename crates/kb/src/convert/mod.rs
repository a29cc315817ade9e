//! Turns the bytes of one file into plain text with a title and heading outline.
//!
//! Markdown, plain text and source code stay as they are (the `terms` mode needs the raw
//! markdown, and code reads best verbatim); HTML, PDF and DOCX are converted. Every failure is a
//! [`Problem`] naming what was wrong, never a panic: the caller skips the file and goes on.

mod docx;
mod html;
mod markdown;
mod pdf;

use std::fmt;
use std::path::Path;

pub use markdown::scan_headings;

/// The document formats mneme can ingest, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    Markdown,
    Text,
    Html,
    Pdf,
    Docx,
    Code,
}

/// Source-code extensions (KnowledgeBeast's `CodeConverter` list plus a few common ones).
const CODE_EXTENSIONS: &[&str] = &[
    "py", "js", "jsx", "mjs", "ts", "tsx", "java", "cpp", "cc", "cxx", "c", "h", "hpp", "cs", "rb",
    "go", "rs", "php", "swift", "kt", "scala", "m", "sh", "bash", "sql", "r", "lua", "zig",
];

impl Format {
    /// The format of `path` by its extension (case-insensitive), or `None` when mneme does not
    /// ingest files of that kind.
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "md" | "markdown" => Format::Markdown,
            "txt" => Format::Text,
            "html" | "htm" => Format::Html,
            "pdf" => Format::Pdf,
            "docx" => Format::Docx,
            other if CODE_EXTENSIONS.contains(&other) => Format::Code,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Text => "text",
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Code => "code",
        }
    }
}

/// One heading of a converted document: where its line starts in the text, its level (1-6)
/// and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heading {
    pub offset: usize,
    pub level: u8,
    pub text: String,
}

/// A document as text, ready to chunk.
#[derive(Clone, Debug)]
pub struct Converted {
    pub title: String,
    pub text: String,
    pub headings: Vec<Heading>,
}

/// Why a file was not ingested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    Unreadable,
    Unsupported,
    Empty,
    Binary,
    InvalidUtf8,
    TooLarge,
    Corrupt,
    DuplicateId,
    /// A symbolic link that leads outside the knowledge directories (not followed).
    LinkOutside,
}

impl ProblemKind {
    /// A failure is a file mneme tried to read or convert and could not (unreadable, corrupt);
    /// the other kinds are files it declined (empty, binary, too large, not UTF-8, duplicate).
    pub fn is_failure(self) -> bool {
        matches!(self, ProblemKind::Unreadable | ProblemKind::Corrupt)
    }

    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::Unsupported => "unsupported",
            ProblemKind::Empty => "empty",
            ProblemKind::Binary => "binary",
            ProblemKind::InvalidUtf8 => "invalid-utf8",
            ProblemKind::TooLarge => "too-large",
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::DuplicateId => "duplicate-id",
            ProblemKind::LinkOutside => "link-outside",
        }
    }
}

/// A file that could not be ingested, with a reason a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

/// Converts the bytes of a file of `format`; `stem` (the file name without extension) is the
/// title when the document names none.
pub fn convert(format: Format, file_name: &str, bytes: &[u8]) -> Result<Converted, Problem> {
    if bytes.is_empty() {
        return Err(Problem::new(ProblemKind::Empty, "the file is empty"));
    }
    let stem = file_name
        .rsplit_once('.')
        .map_or(file_name, |(stem, _)| stem);
    let converted = match format {
        Format::Markdown => {
            let text = utf8_text(bytes)?;
            markdown::convert(text, stem)
        }
        Format::Text => plain(utf8_text(bytes)?, stem),
        Format::Code => plain(utf8_text(bytes)?, file_name),
        Format::Html => html::convert(utf8_text(bytes)?, stem)?,
        Format::Pdf => pdf::convert(bytes, stem)?,
        Format::Docx => docx::convert(bytes, stem)?,
    };
    if converted.text.trim().is_empty() {
        return Err(Problem::new(ProblemKind::Empty, "no text in the document"));
    }
    Ok(converted)
}

fn plain(text: String, title: &str) -> Converted {
    Converted {
        title: title.to_owned(),
        text,
        headings: Vec::new(),
    }
}

/// Decodes a text file: binary content (a NUL byte in the first 8 KiB) and invalid UTF-8 are
/// problems, a UTF-8 byte-order mark is dropped.
fn utf8_text(bytes: &[u8]) -> Result<String, Problem> {
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err(Problem::new(
            ProblemKind::Binary,
            "binary content (NUL bytes) in a text file",
        ));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(err) => Err(Problem::new(
            ProblemKind::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", err.valid_up_to()),
        )),
    }
}

#[cfg(test)]
mod tests;
