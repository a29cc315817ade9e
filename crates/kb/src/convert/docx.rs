//! DOCX to text: paragraphs of `word/document.xml`, with `Title` and `HeadingN` styles turned
//! into `#` headings so that the chunker sees the outline.

use std::io::{Cursor, Read};

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::{Converted, Problem, ProblemKind, markdown};

/// Upper bound on the uncompressed XML we accept: a zip bomb must not exhaust memory.
const MAX_XML_BYTES: u64 = 256 * 1024 * 1024;

pub(super) fn convert(bytes: &[u8], stem: &str) -> Result<Converted, Problem> {
    let corrupt = |what: String| Problem::new(ProblemKind::Corrupt, what);
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|err| corrupt(format!("not a DOCX (zip) file: {err}")))?;
    let document = read_entry(&mut archive, "word/document.xml")?
        .ok_or_else(|| corrupt("not a DOCX file: word/document.xml is missing".to_owned()))?;
    let core_title = read_entry(&mut archive, "docProps/core.xml")
        .ok()
        .flatten()
        .and_then(|core| element_text(&core, "title"));
    let text = document_text(&document)
        .map_err(|err| corrupt(format!("cannot parse word/document.xml: {err}")))?;
    let headings = markdown::scan_headings(&text);
    let title = core_title
        .or_else(|| headings.first().map(|h| h.text.clone()))
        .unwrap_or_else(|| stem.to_owned());
    Ok(Converted {
        title,
        text,
        headings,
    })
}

fn read_entry(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<Vec<u8>>, Problem> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(err) => {
            return Err(Problem::new(
                ProblemKind::Corrupt,
                format!("cannot open {name}: {err}"),
            ));
        }
    };
    let mut out = Vec::new();
    entry
        .take(MAX_XML_BYTES)
        .read_to_end(&mut out)
        .map_err(|err| {
            Problem::new(
                ProblemKind::Corrupt,
                format!("cannot inflate {name}: {err}"),
            )
        })?;
    Ok(Some(out))
}

/// Paragraph text with a blank line between paragraphs; heading paragraphs get `#` marks.
fn document_text(xml: &[u8]) -> Result<String, quick_xml::Error> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = String::new();
    let mut paragraph = String::new();
    let mut heading_level: Option<u8> = None;
    let mut in_text = false;
    loop {
        match reader.read_event_into(&mut buf)? {
            Event::Start(e) => match e.local_name().as_ref() {
                "p" => {
                    paragraph.clear();
                    heading_level = None;
                }
                "t" => in_text = true,
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" => paragraph.push('\t'),
                "br" | "cr" => paragraph.push('\n'),
                "pStyle" => {
                    for attr in e.attributes().flatten() {
                        if attr.key.local_name().as_ref() == "val" {
                            heading_level = style_level(&attr.value);
                        }
                    }
                }
                _ => {}
            },
            Event::Text(t) if in_text => paragraph.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    paragraph.push(c);
                } else {
                    paragraph.push_str(match r.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    let text = paragraph.trim();
                    if !text.is_empty() {
                        if let Some(level) = heading_level {
                            out.push_str(&"#".repeat(level as usize));
                            out.push(' ');
                        }
                        out.push_str(text);
                        out.push_str("\n\n");
                    }
                    paragraph.clear();
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out.trim_end().to_owned())
}

/// `Title` is level 1 and `HeadingN` (also `heading N`) level N + 1, capped at 6, so that the
/// headings of a titled document nest under its title.
fn style_level(style: &str) -> Option<u8> {
    let style = style.to_ascii_lowercase().replace(' ', "");
    if style == "title" {
        return Some(1);
    }
    let level: u8 = style.strip_prefix("heading")?.parse().ok()?;
    (1..=9).contains(&level).then_some((level + 1).min(6))
}

/// Text of the first element with local name `name` (used for `dc:title`).
fn element_text(xml: &[u8], name: &str) -> Option<String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut inside = false;
    let mut out = String::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) if e.local_name().as_ref() == name => inside = true,
            Event::Text(t) if inside => out.push_str(&t.xml10_content()),
            Event::End(e) if e.local_name().as_ref() == name => break,
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let out = out.trim().to_owned();
    (!out.is_empty()).then_some(out)
}
