//! Names: a pattern is named by the SHA-1 of Python's `repr` of its event list, a vector by the
//! SHA-1 of numpy's default `str` of the array. Both are reproduced byte for byte, because
//! clients store and compare these names.

mod nonprintable;
mod numpy;

use std::fmt::Write;

use sha1::{Digest, Sha1};

pub use numpy::numpy_str;

/// Python's `repr` of a list of lists of strings: `[['a', 'b'], ['c']]`.
pub fn python_repr<S: AsRef<str>>(events: &[Vec<S>]) -> String {
    let mut out = String::with_capacity(events.len() * 8 + 2);
    out.push('[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('[');
        for (j, symbol) in event.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            push_str_repr(&mut out, symbol.as_ref());
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// The 40-hex-digit SHA-1 of `text`'s UTF-8 bytes.
pub fn sha1_hex(text: &str) -> String {
    let digest = Sha1::digest(text.as_bytes());
    let mut hex = String::with_capacity(40);
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The 32-hex-digit MD5 of `text` (KATO shortens long kb_ids with it).
pub fn md5_hex(text: &str) -> String {
    let digest = md5::Md5::digest(text.as_bytes());
    let mut hex = String::with_capacity(32);
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// KATO's pattern name (bare hash, as predictions and storage use it).
pub fn pattern_hash<S: AsRef<str>>(events: &[Vec<S>]) -> String {
    sha1_hex(&python_repr(events))
}

/// KATO's vector symbol: `VCTR|` + SHA-1 of numpy's `str(array)`.
pub fn vector_name(vector: &[f64]) -> String {
    format!("VCTR|{}", sha1_hex(&numpy_str(vector)))
}

/// CPython's `repr(str)`: single quotes unless the string holds `'` and no `"`; backslash,
/// the quote, `\t \n \r` escaped; other non-printable characters as `\xhh`, `\uhhhh` or
/// `\Uhhhhhhhh`; printable characters (ASCII or not) as they are.
pub(crate) fn push_str_repr(out: &mut String, text: &str) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let code = c as u32;
                let _ = if code < 0x100 {
                    write!(out, "\\x{code:02x}")
                } else if code < 0x10000 {
                    write!(out, "\\u{code:04x}")
                } else {
                    write!(out, "\\U{code:08x}")
                };
            }
        }
    }
    out.push(quote);
}

/// CPython's `str.isprintable` for one character (the space is printable).
fn is_printable(c: char) -> bool {
    let code = c as u32;
    if (0x20..0x7f).contains(&code) {
        return true;
    }
    let table = &nonprintable::NONPRINTABLE;
    let i = table.partition_point(|&(_, end)| end < code);
    !(i < table.len() && table[i].0 <= code)
}

#[cfg(test)]
mod tests;
