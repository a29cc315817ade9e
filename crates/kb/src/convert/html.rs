//! HTML to text: html2text renders the body (headings as `#` lines, scripts and styles
//! dropped); the title comes from `<title>` or the first heading.

use super::{Converted, Problem, ProblemKind, markdown};

/// Wide enough that html2text never wraps a paragraph: chunking decides the line breaks.
const RENDER_WIDTH: usize = 100_000;

pub(super) fn convert(source: String, stem: &str) -> Result<Converted, Problem> {
    let text = html2text::from_read(source.as_bytes(), RENDER_WIDTH)
        .map_err(|err| Problem::new(ProblemKind::Corrupt, format!("cannot parse HTML: {err}")))?;
    let text = text
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    let headings = markdown::scan_headings(&text);
    let title = title_element(&source)
        .or_else(|| headings.first().map(|h| h.text.clone()))
        .unwrap_or_else(|| stem.to_owned());
    Ok(Converted {
        title,
        text,
        headings,
    })
}

/// The text of the first `<title>` element, whitespace collapsed.
fn title_element(source: &str) -> Option<String> {
    let lower = source.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = source
        .get(start..end)?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let title = title
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    (!title.is_empty()).then_some(title)
}
