//! Markdown stays verbatim; this file finds its title and ATX headings outside code fences.

use super::{Converted, Heading};

pub(super) fn convert(text: String, stem: &str) -> Converted {
    let headings = scan_headings(&text);
    let title = front_matter_title(&text)
        .or_else(|| {
            headings
                .iter()
                .find(|h| h.level == 1)
                .map(|h| h.text.clone())
        })
        .unwrap_or_else(|| stem.to_owned());
    Converted {
        title,
        text,
        headings,
    }
}

/// ATX headings (`# Title` .. `###### Title`, up to three spaces of indentation) that are not
/// inside a fenced code block. Setext headings are not recognised: `---` under a line is far
/// more often a rule or front matter in real knowledge bases.
pub fn scan_headings(text: &str) -> Vec<Heading> {
    let mut headings = Vec::new();
    let mut fence: Option<(u8, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim_start_matches(' ');
        if line.len() - trimmed.len() > 3 {
            continue;
        }
        if let Some((fence_char, fence_len)) = fence_marker(trimmed) {
            match fence {
                None => fence = Some((fence_char, fence_len)),
                Some((open_char, open_len))
                    if open_char == fence_char
                        && fence_len >= open_len
                        && trimmed[fence_len..].trim().is_empty() =>
                {
                    fence = None;
                }
                Some(_) => {}
            }
            continue;
        }
        if fence.is_some() {
            continue;
        }
        let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let rest = &trimmed[hashes..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r'])) {
            continue;
        }
        let heading_text = rest.trim().trim_end_matches('#').trim_end();
        headings.push(Heading {
            offset: line_start,
            level: hashes as u8,
            text: heading_text.to_owned(),
        });
    }
    headings
}

/// A code fence opener or closer: three or more backticks or tildes.
fn fence_marker(line: &str) -> Option<(u8, usize)> {
    let first = *line.as_bytes().first()?;
    if first != b'`' && first != b'~' {
        return None;
    }
    let len = line.bytes().take_while(|&b| b == first).count();
    (len >= 3).then_some((first, len))
}

/// `title:` from YAML front matter (`---` on the first line).
fn front_matter_title(text: &str) -> Option<String> {
    let rest = text.strip_prefix("---")?.strip_prefix(['\n', '\r'])?;
    for line in rest.lines() {
        let line = line.trim_end();
        if line == "---" || line == "..." {
            break;
        }
        if let Some(value) = line.strip_prefix("title:") {
            let value = value.trim().trim_matches(['"', '\'']).trim();
            if !value.is_empty() {
                return Some(value.to_owned());
            }
        }
    }
    None
}
