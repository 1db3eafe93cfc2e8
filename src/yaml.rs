//! YAML read as a stream of events (yaml-rust2), so that a batch of 100,000 entries never
//! exists twice in memory: each item of a top-level list is handed over as soon as it is
//! complete, as a small `serde_json::Value`, and dropped once converted. (serde_yaml first loads
//! every event of the document, then the whole tree: about 15 times the file's size.)
//!
//! Plain scalars are typed by YAML 1.2's core schema (`null`, `true`, numbers); quoted and block
//! scalars are strings. Aliases are refused: a batch has no use for them, and they are the
//! classic way to make a small file expand into a huge one (so nothing is ever expanded).
//! Nesting deeper than `limits::MAX_DEPTH` and keys longer than `limits::MAX_KEY_BYTES` are
//! refused as they are read, so no input can make the reader use much more than its size.

use crate::limits;
use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a value sits: its line and column (1-based), for error messages.
pub type Position = (usize, usize);

/// What the reader hands over.
pub trait Sink {
    /// One complete item of the top-level list `key` (`refs`, `files`), with its index and where
    /// it starts.
    fn item(&mut self, key: &str, index: usize, value: Value, at: Position) -> Result<(), String>;
    /// Whether the items of the top-level list `key` should be streamed rather than collected.
    fn streams(&self, key: &str) -> bool;
}

/// Why a document could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Not YAML at all; reported before anything the sink said, which may be a symptom.
    Syntax(Position, String),
    /// YAML, but not a batch (a duplicate key, an alias), or the sink refused an item.
    Content(Position, String),
}

/// Reads one YAML document; streamed lists appear in the returned mapping as placeholder arrays.
pub fn read(text: &str, sink: &mut dyn Sink) -> Result<Value, ReadError> {
    let mut builder =
        Builder { sink, frames: Vec::new(), root: None, error: None, documents: 0, held: 0, stop: false };
    let mut parser = Parser::new_from_str(text);
    // Events one by one rather than `Parser::load`, so that a limit stops the reading at once.
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((event, mark)) => builder.on_event(event, mark),
            Err(e) => {
                let m = e.marker();
                return Err(ReadError::Syntax((m.line(), m.col() + 1), e.info().to_string()));
            }
        }
        if builder.stop {
            break;
        }
    }
    if let Some((at, message)) = builder.error {
        return Err(ReadError::Content(at, message));
    }
    Ok(builder.root.unwrap_or(Value::Null))
}

enum Frame {
    Seq { items: Vec<Value>, streamed: Option<String>, start: Position },
    Map { map: Map<String, Value>, key: Option<String>, start: Position },
}

/// The message for nesting past `limits::MAX_DEPTH`.
pub fn too_deep() -> String {
    format!("the batch nests deeper than the limit of {} levels", limits::MAX_DEPTH)
}

/// The message for a key longer than `limits::MAX_KEY_BYTES` (only its start is shown).
pub fn key_too_long(key: &str) -> String {
    let start: String = key.chars().take(20).collect();
    format!("a key of {} bytes ('{start}…') is longer than the limit of {}", key.len(), limits::MAX_KEY_BYTES)
}

struct Builder<'s> {
    sink: &'s mut dyn Sink,
    frames: Vec<Frame>,
    root: Option<Value>,
    error: Option<(Position, String)>,
    documents: usize,
    /// Values held outside streamed entries since the last entry was handed over.
    held: usize,
    /// A limit was reached: read no further (the rest could take long, and would not matter).
    stop: bool,
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let at = (mark.line(), mark.col() + 1);
        if let Err(message) = self.handle(event, at) {
            self.error = Some((at, message));
        }
    }
}

impl Builder<'_> {
    fn handle(&mut self, event: Event, at: Position) -> Result<(), String> {
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err("a batch is one YAML document, not several".into());
                }
            }
            Event::Alias(_) => return Err("aliases (*name) are not allowed in a batch".into()),
            Event::Scalar(text, style, _, tag) => self.push(scalar(text, style, tag.as_ref()), at)?,
            Event::SequenceStart(..) | Event::MappingStart(..) if self.frames.len() >= limits::MAX_DEPTH => {
                self.stop = true;
                return Err(too_deep());
            }
            Event::SequenceStart(..) => {
                let streamed = self.top_level_key().filter(|k| self.sink.streams(k));
                self.frames.push(Frame::Seq { items: Vec::new(), streamed, start: at });
            }
            Event::MappingStart(..) => self.frames.push(Frame::Map { map: Map::new(), key: None, start: at }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, start) = match self.frames.pop() {
                    Some(Frame::Seq { items, start, .. }) => (Value::Array(items), start),
                    Some(Frame::Map { map, start, .. }) => (Value::Object(map), start),
                    None => return Ok(()),
                };
                self.push(value, start)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The key of the top-level mapping that the next value belongs to, if we are right there.
    fn top_level_key(&self) -> Option<String> {
        match self.frames.as_slice() {
            [Frame::Map { key: Some(key), .. }] => Some(key.clone()),
            _ => None,
        }
    }

    /// Adds a finished value to the frame it belongs to (or hands a streamed item to the sink).
    fn push(&mut self, value: Value, at: Position) -> Result<(), String> {
        let Some(frame) = self.frames.last_mut() else {
            self.root = Some(value);
            return Ok(());
        };
        if !matches!(frame, Frame::Seq { streamed: Some(_), .. }) {
            self.held += 1;
            if self.held > limits::MAX_HELD_VALUES {
                self.stop = true;
                return Err(format!(
                    "more than the limit of {} values outside the entries, or in one entry",
                    limits::MAX_HELD_VALUES
                ));
            }
        }
        match frame {
            Frame::Seq { items, streamed: Some(key), .. } => {
                let (key, index) = (key.clone(), items.len());
                // A placeholder keeps the count for the next index without keeping the value.
                items.push(Value::Null);
                self.held = 0;
                self.sink.item(&key, index, value, at)
            }
            Frame::Seq { items, streamed: None, .. } => {
                items.push(value);
                Ok(())
            }
            Frame::Map { map, key, start } => match key.take() {
                None => {
                    if map.is_empty() {
                        // A block mapping's own mark is past its first key; the key is where it starts.
                        *start = at;
                    }
                    let Value::String(name) = value else {
                        let shown: String = value.to_string().chars().take(40).collect();
                        return Err(format!("a key must be a string, not {shown}"));
                    };
                    if name.len() > limits::MAX_KEY_BYTES {
                        return Err(key_too_long(&name));
                    }
                    if map.contains_key(&name) {
                        return Err(format!("duplicate key '{name}'"));
                    }
                    *key = Some(name);
                    Ok(())
                }
                Some(name) => {
                    map.insert(name, value);
                    Ok(())
                }
            },
        }
    }
}

/// Types a scalar as YAML 1.2's core schema does; anything quoted or tagged `!!str` is a string.
fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let is_str_tag = tag.is_some_and(|t| t.suffix == "str" || t.suffix.ends_with(":str"));
    if style != TScalarStyle::Plain || is_str_tag {
        return Value::String(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = integer(&text) {
        return n;
    }
    if looks_like_float(&text)
        && let Some(n) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text)
}

fn integer(text: &str) -> Option<Value> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(Value::from(if negative { -value } else { value }))
}

/// YAML 1.2 core floats: digits with a point and/or an exponent (no `.inf` or `.nan` here).
fn looks_like_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body.bytes().any(|b| b.is_ascii_digit())
        && (body.contains('.') || body.contains(['e', 'E']))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(String, usize, Value)>);

    impl Sink for Collect {
        fn item(&mut self, key: &str, index: usize, value: Value, _: Position) -> Result<(), String> {
            self.0.push((key.to_string(), index, value));
            Ok(())
        }
        fn streams(&self, key: &str) -> bool {
            key == "refs"
        }
    }

    #[test]
    fn streams_top_level_list_items_and_types_scalars() {
        let mut sink = Collect(Vec::new());
        let top = read("version: 1\nrefs:\n  - a: x\n  - b: '1'\nother: [1, 2.5, null, true]\n", &mut sink)
            .unwrap();
        assert_eq!(top["version"], 1);
        assert_eq!(top["other"], serde_json::json!([1, 2.5, null, true]));
        assert_eq!(sink.0.len(), 2);
        assert_eq!(sink.0[1], ("refs".to_string(), 1, serde_json::json!({"b": "1"})));
    }

    #[test]
    fn refuses_aliases_duplicate_keys_and_several_documents() {
        for (text, needle) in [
            ("a: &x 1\nb: *x\n", "aliases"),
            ("a: 1\na: 2\n", "duplicate key 'a'"),
            ("a: 1\n---\nb: 2\n", "one YAML document"),
            (format!("a: {}1{}\n", "[".repeat(40), "]".repeat(40)).as_str(), "deeper than the limit"),
            (format!("{}: 1\n", "k".repeat(300)).as_str(), "longer than the limit"),
        ] {
            let Err(ReadError::Content(_, message)) = read(text, &mut Collect(Vec::new())) else {
                panic!("{text:?} should be refused")
            };
            assert!(message.contains(needle), "{text:?}: {message}");
        }
    }

    #[test]
    fn syntax_errors_have_a_line_and_column() {
        let Err(ReadError::Syntax((line, _), _)) = read("refs:\n  - update: [\n", &mut Collect(Vec::new()))
        else {
            panic!("a syntax error")
        };
        assert!(line >= 2);
    }
}
