//! LSP positions (line, character) to byte offsets in a file's bytes. Lines end at `\n`, `\r\n`
//! or `\r`, as LSP says; characters count UTF-16 code units unless the client negotiated another
//! encoding. A position that splits a character or lies past its line is refused, never clamped.

use crate::error::{Error, Result};

/// The unit of `Position.character` (LSP 3.17 `PositionEncodingKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

impl Encoding {
    /// Reads `--position-encoding`'s value (`utf-8`, `utf-16`, `utf-32`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "utf-8" => Some(Encoding::Utf8),
            "utf-16" => Some(Encoding::Utf16),
            "utf-32" => Some(Encoding::Utf32),
            _ => None,
        }
    }

    fn width(self, c: char) -> usize {
        match self {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }
}

/// Where each line of a document starts and where its text ends (before its line ending).
pub struct Lines {
    /// `(start, end)` byte offsets of every line's text; the last line may be empty.
    spans: Vec<(usize, usize)>,
    /// Whether the document ends with a line ending (its last line is then the empty one after it).
    final_newline: bool,
}

impl Lines {
    /// Splits `bytes` the way LSP counts lines.
    pub fn of(bytes: &[u8]) -> Self {
        let mut spans = Vec::new();
        let mut start = 0;
        for i in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            // The `\n` of a `\r\n`, already ended its line.
            if i < start {
                continue;
            }
            spans.push((start, i));
            start = if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') { i + 2 } else { i + 1 };
        }
        spans.push((start, bytes.len()));
        let final_newline = matches!(bytes.last(), Some(b'\n' | b'\r'));
        Lines { spans, final_newline }
    }

    /// The byte offset of `(line, character)`. One tolerance, for servers that address the end
    /// of a file as "the line after the last one" (pylsp, rope): `(line count, 0)` of a file
    /// without a final line ending is its end.
    pub fn offset(&self, bytes: &[u8], line: u64, character: u64, encoding: Encoding) -> Result<usize> {
        let count = self.spans.len() as u64;
        if line == count && character == 0 && !self.final_newline {
            return Ok(bytes.len());
        }
        let Some(&(start, end)) = usize::try_from(line).ok().and_then(|l| self.spans.get(l)) else {
            return Err(Error::invalid(format!("line {line} is past the end of the file ({count} line(s))")));
        };
        column(&bytes[start..end], character, encoding)
            .map(|c| start + c)
            .map_err(|why| Error::invalid(format!("position {line}:{character} {why}")))
    }
}

/// The byte offset within one line's text of `character` units.
fn column(line: &[u8], character: u64, encoding: Encoding) -> std::result::Result<usize, String> {
    // An ASCII line (most code) counts one unit per byte in every encoding.
    if line.is_ascii()
        && let Some(at) = usize::try_from(character).ok().filter(|&at| at <= line.len())
    {
        return Ok(at);
    }
    let text = match std::str::from_utf8(line) {
        Ok(text) => text,
        // Byte columns need no decoding, only a boundary that is not inside a character.
        Err(_) if encoding == Encoding::Utf8 => return byte_column(line, character),
        Err(_) => return Err("is on a line that is not UTF-8 text".into()),
    };
    let mut units = 0u64;
    for (offset, c) in text.char_indices() {
        if units == character {
            return Ok(offset);
        }
        units += encoding.width(c) as u64;
        if units > character {
            return Err(format!("splits the character {c:?}"));
        }
    }
    if units == character {
        return Ok(text.len());
    }
    Err(format!("is past the end of its line ({units} {} long)", unit_name(encoding)))
}

/// A byte column on a line that is not UTF-8: anywhere but on a continuation byte.
fn byte_column(line: &[u8], character: u64) -> std::result::Result<usize, String> {
    let at = usize::try_from(character).unwrap_or(usize::MAX);
    match line.get(at) {
        _ if at == line.len() => Ok(at),
        Some(b) if b & 0xC0 == 0x80 => Err("splits a multi-byte character".into()),
        Some(_) => Ok(at),
        None => Err(format!("is past the end of its line ({} bytes long)", line.len())),
    }
}

fn unit_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Utf8 => "bytes",
        Encoding::Utf16 => "UTF-16 code units",
        Encoding::Utf32 => "characters",
    }
}

/// Whether the document's lines end in `\r\n` (judged by its first line ending).
pub fn uses_crlf(bytes: &[u8]) -> bool {
    match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(i) => bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, line: u64, character: u64, encoding: Encoding) -> Result<usize> {
        Lines::of(text.as_bytes()).offset(text.as_bytes(), line, character, encoding)
    }

    #[test]
    fn columns_differ_by_encoding() {
        // "é" is 2 bytes, 1 UTF-16 unit; "😀" is 4 bytes, 2 UTF-16 units, 1 code point.
        let text = "aé😀b\n";
        assert_eq!(at(text, 0, 4, Encoding::Utf16).unwrap(), 7);
        assert_eq!(at(text, 0, 3, Encoding::Utf32).unwrap(), 7);
        assert_eq!(at(text, 0, 7, Encoding::Utf8).unwrap(), 7);
        assert!(at(text, 0, 3, Encoding::Utf16).is_err(), "inside the surrogate pair");
        assert!(at(text, 0, 2, Encoding::Utf8).is_err(), "inside é");
    }

    #[test]
    fn line_ends_and_file_end() {
        let text = "ab\r\ncd\rx\n";
        assert_eq!(at(text, 1, 0, Encoding::Utf16).unwrap(), 4);
        assert_eq!(at(text, 2, 1, Encoding::Utf16).unwrap(), 8);
        assert_eq!(at(text, 3, 0, Encoding::Utf16).unwrap(), 9);
        assert!(at(text, 0, 3, Encoding::Utf16).is_err(), "past the line, onto its \\r");
        assert!(at(text, 4, 0, Encoding::Utf16).is_err());
        // Without a final newline, the line after the last one is the end of the file.
        assert_eq!(at("ab\ncd", 2, 0, Encoding::Utf16).unwrap(), 5);
        assert!(at("ab\ncd", 2, 1, Encoding::Utf16).is_err());
    }

    #[test]
    fn every_kind_of_line_ending_ends_one_line() {
        let lines = Lines::of(b"a\r\r\nb\n\rc\r");
        assert_eq!(lines.spans, [(0, 1), (2, 2), (4, 5), (6, 6), (7, 8), (9, 9)]);
        assert!(lines.final_newline);
        assert_eq!(Lines::of(b"").spans, [(0, 0)]);
        assert_eq!(Lines::of(b"\r\n").spans, [(0, 0), (2, 2)]);
    }

    #[test]
    fn ascii_and_other_lines_count_alike() {
        for text in ["abc = 1\n", "ab\u{e9} = 1\n"] {
            assert_eq!(at(text, 0, 2, Encoding::Utf16).unwrap(), 2, "{text:?}");
        }
        let err = at("abc\n", 0, 4, Encoding::Utf16).unwrap_err();
        assert!(err.message.contains("past the end of its line (3 UTF-16 code units long)"), "{err}");
        // On a line that is not UTF-8 only byte columns can count, even before the bad byte.
        let bytes = b"ab\xff\n";
        assert_eq!(Lines::of(bytes).offset(bytes, 0, 1, Encoding::Utf8).unwrap(), 1);
        assert!(Lines::of(bytes).offset(bytes, 0, 1, Encoding::Utf16).is_err());
    }

    #[test]
    fn crlf_is_judged_by_the_first_line_ending() {
        assert!(uses_crlf(b"a\r\nb\n"));
        assert!(!uses_crlf(b"a\nb\r\n"));
        assert!(!uses_crlf(b"abc"));
    }
}
