//! A document's `TextEdit`s applied to its bytes: all positions refer to the document before
//! any of them, none may overlap, and everything outside their ranges stays byte-identical.

use super::position::{Encoding, Lines, uses_crlf};
use crate::error::{Error, Result};

/// One LSP `TextEdit`: replace `start..end` (line, character) by `new_text`.
#[derive(Debug, Clone)]
pub struct TextEdit {
    pub start: (u64, u64),
    pub end: (u64, u64),
    pub new_text: String,
}

/// An edit resolved to byte offsets, with its place in the list for messages and ties.
struct Span {
    start: usize,
    end: usize,
    index: usize,
}

/// The document's new bytes. In a CRLF document, a bare `\n` of the new text becomes `\r\n`
/// (servers such as rope send LF lines into CRLF files); a whole-file replacement of a
/// document without a final line ending gets none.
pub fn apply(bytes: &[u8], edits: &[TextEdit], encoding: Encoding) -> Result<Vec<u8>> {
    let lines = Lines::of(bytes);
    let mut spans = Vec::with_capacity(edits.len());
    for (index, edit) in edits.iter().enumerate() {
        let start =
            lines.offset(bytes, edit.start.0, edit.start.1, encoding).map_err(|e| in_edit(e, index))?;
        let end = lines.offset(bytes, edit.end.0, edit.end.1, encoding).map_err(|e| in_edit(e, index))?;
        if end < start {
            return Err(in_edit(Error::invalid("its range ends before it starts"), index));
        }
        spans.push(Span { start, end, index });
    }
    // Stable: inserts at one position keep the order given, as LSP requires.
    spans.sort_by_key(|s| (s.start, s.end));
    for pair in spans.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(Error::invalid(format!(
                "edits {} and {} overlap",
                pair[0].index.min(pair[1].index),
                pair[0].index.max(pair[1].index)
            ))
            .hint("the edits of one document must not overlap (LSP)"));
        }
    }
    let crlf = uses_crlf(bytes);
    let mut out = Vec::with_capacity(bytes.len() + edits.iter().map(|e| e.new_text.len()).sum::<usize>());
    let mut copied = 0;
    for span in &spans {
        out.extend_from_slice(&bytes[copied..span.start]);
        let whole = span.start == 0 && span.end == bytes.len() && !bytes.is_empty();
        push_text(&mut out, &edits[span.index].new_text, crlf, whole && !ends_in_newline(bytes));
        copied = span.end;
    }
    out.extend_from_slice(&bytes[copied..]);
    Ok(out)
}

fn in_edit(e: Error, index: usize) -> Error {
    Error { message: format!("edit {index}: {}", e.message), ..e }
}

fn ends_in_newline(bytes: &[u8]) -> bool {
    matches!(bytes.last(), Some(b'\n' | b'\r'))
}

/// Appends `text`, with `\n` turned into `\r\n` for a CRLF document, and without its final line
/// ending when `drop_final_newline`.
fn push_text(out: &mut Vec<u8>, text: &str, crlf: bool, drop_final_newline: bool) {
    let mut text = text;
    if drop_final_newline {
        text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(text);
    }
    if !crlf {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let mut previous = 0u8;
    for &b in text.as_bytes() {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(start: (u64, u64), end: (u64, u64), text: &str) -> TextEdit {
        TextEdit { start, end, new_text: text.into() }
    }

    fn run(text: &str, edits: &[TextEdit]) -> Result<String> {
        apply(text.as_bytes(), edits, Encoding::Utf16).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn edits_apply_against_the_original_positions() {
        let out =
            run("let a = a + 1;\n", &[edit((0, 12), (0, 13), "2"), edit((0, 4), (0, 5), "bb")]).unwrap();
        assert_eq!(out, "let bb = a + 2;\n");
    }

    #[test]
    fn inserts_at_one_place_keep_their_order() {
        let out =
            run("x\n", &[edit((0, 0), (0, 0), "a"), edit((0, 0), (0, 0), "b"), edit((0, 0), (0, 1), "y")]);
        assert_eq!(out.unwrap(), "aby\n");
    }

    #[test]
    fn overlapping_edits_are_invalid() {
        let err = run("abcdef\n", &[edit((0, 0), (0, 3), "x"), edit((0, 2), (0, 4), "y")]).unwrap_err();
        assert!(err.message.contains("overlap"), "{err}");
        assert!(run("abc\n", &[edit((0, 0), (0, 2), "x"), edit((0, 1), (0, 1), "y")]).is_err());
        assert!(run("abc\n", &[edit((0, 1), (0, 0), "x")]).is_err(), "a backwards range");
    }

    #[test]
    fn crlf_stays_crlf_and_no_final_newline_stays_so() {
        let out = run("a\r\nb\r\n", &[edit((0, 0), (2, 0), "x\ny\n")]).unwrap();
        assert_eq!(out, "x\r\ny\r\n");
        let out = run("a\nb", &[edit((0, 0), (2, 0), "c\nd\n")]).unwrap();
        assert_eq!(out, "c\nd");
        let out = run("a\nb", &[edit((1, 1), (1, 1), "\n")]).unwrap();
        assert_eq!(out, "a\nb\n", "only a whole-file replacement loses its final newline");
    }
}
