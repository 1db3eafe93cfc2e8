//! The editor's JSON read straight into the types LSP defines, without a `serde_json::Value` in
//! between. Every value is read through `deserialize_any`, as `Value` reads it: the same syntax
//! errors at the same place. Inside the objects read here ([`Obj`]), keys LSP does not define
//! are read (so checked as `Value` checks them) and dropped; but [`Shape`], derived by serde,
//! skips its own unknown keys (at the top level and inside `edit`) with serde's `IgnoredAny`,
//! which does not make all of those checks (see `Skip`). A value of the wrong type is kept as
//! such, for input.rs to refuse with its own message in the order it checks; a later duplicate
//! key wins, as in `Value`.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A `WorkspaceEdit`, or `ApplyWorkspaceEditParams` around one (`edit`), read in one pass;
/// other keys are ignored. (Its name shows in serde's messages: "expected struct Shape".)
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    /// The params' `label`, any value: input.rs reads it only beside `edit`, and refuses a non-string.
    pub label: Option<Value>,
    /// The `WorkspaceEdit` of `ApplyWorkspaceEditParams`; `None` when this is the edit itself.
    pub edit: Option<Box<Shape>>,
    /// `changes` (uri → TextEdit[]), in the order written: used when there is no `documentChanges`.
    pub changes: Option<Ordered>,
    /// `documentChanges`, which LSP says a client takes over `changes`.
    pub document_changes: Option<Arr<Obj<DocumentChange>>>,
    /// `changeAnnotations`, as a `Value`: only their labels are read, for the log message.
    pub change_annotations: Option<Value>,
}

/// One of `documentChanges`: a `TextDocumentEdit`, or a `CreateFile`, `RenameFile` or
/// `DeleteFile` by its `kind`; the keys of all of them, as the kind may come last.
#[derive(Default)]
pub struct DocumentChange {
    /// `create`, `rename` or `delete`; `Null` for a `TextDocumentEdit`.
    pub kind: Scalar,
    /// A resource operation's options (a `TextDocumentEdit` has none).
    pub options: Obj<Options>,
    /// The file that `create` or `delete` acts on.
    pub uri: Scalar,
    /// The file that `rename` moves.
    pub old_uri: Scalar,
    /// Where `rename` moves it.
    pub new_uri: Scalar,
    /// The file a `TextDocumentEdit` edits, with the version the edits were made against.
    pub text_document: Obj<Document>,
    /// A `TextDocumentEdit`'s edits.
    pub edits: Arr<Obj<TextEdit>>,
}

/// The options of all three resource operations.
#[derive(Default)]
pub struct Options {
    /// `create`, `rename`: replace a file already there.
    pub overwrite: Scalar,
    /// `create`, `rename`: do nothing when the file is there (`overwrite` wins).
    pub ignore_if_exists: Scalar,
    /// `delete`: a directory goes with what it holds.
    pub recursive: Scalar,
    /// `delete`: do nothing when the file is not there.
    pub ignore_if_not_exists: Scalar,
}

/// An `OptionalVersionedTextDocumentIdentifier`.
#[derive(Default)]
pub struct Document {
    /// The file edited.
    pub uri: Scalar,
    /// The version the editor made the edits against (`null`: not known); read, not checked.
    pub version: Scalar,
}

/// A `TextEdit`, `AnnotatedTextEdit` (its `annotationId` ignored) or `SnippetTextEdit`.
#[derive(Default)]
pub struct TextEdit {
    /// Whether the edit has a `snippet` key, whatever its value.
    pub snippet: bool,
    /// `None` when the edit has no `range` key.
    pub range: Option<Obj<Range>>,
    /// The text that replaces the range.
    pub new_text: Scalar,
}

/// A `Range`.
#[derive(Default)]
pub struct Range {
    /// Where the replaced text starts.
    pub start: Obj<Position>,
    /// Where it ends (exclusive).
    pub end: Obj<Position>,
}

/// A `Position`.
#[derive(Default)]
pub struct Position {
    /// The line, from 0.
    pub line: Scalar,
    /// The offset in the line, from 0, in the position encoding's units.
    pub character: Scalar,
}

impl Fields for DocumentChange {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "kind" => self.kind = map.next_value()?,
            "options" => self.options = map.next_value()?,
            "uri" => self.uri = map.next_value()?,
            "oldUri" => self.old_uri = map.next_value()?,
            "newUri" => self.new_uri = map.next_value()?,
            "textDocument" => self.text_document = map.next_value()?,
            "edits" => self.edits = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for Options {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "overwrite" => self.overwrite = map.next_value()?,
            "ignoreIfExists" => self.ignore_if_exists = map.next_value()?,
            "recursive" => self.recursive = map.next_value()?,
            "ignoreIfNotExists" => self.ignore_if_not_exists = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for Document {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "uri" => self.uri = map.next_value()?,
            "version" => self.version = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for TextEdit {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "range" => self.range = Some(map.next_value()?),
            "newText" => self.new_text = map.next_value()?,
            "snippet" => {
                self.snippet = true;
                skip(map)?;
            }
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for Range {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "start" => self.start = map.next_value()?,
            "end" => self.end = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

impl Fields for Position {
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "line" => self.line = map.next_value()?,
            "character" => self.character = map.next_value()?,
            _ => skip(map)?,
        }
        Ok(())
    }
}

/// `changes` with its members in the order written (serde_json's own map sorts them), a
/// doubled key refused: `failedChange` indexes `changes` in the order the editor gave them.
pub struct Ordered(
    /// Each uri with its edits, as written.
    pub Vec<(String, Arr<Obj<TextEdit>>)>,
);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object (uri to TextEdit[])")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut members = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some((key, value)) = map.next_entry::<String, _>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key '{key}' in 'changes'")));
            }
            members.push((key, value));
        }
        Ok(Ordered(members))
    }
}

/// A JSON value that is not an array or object, as far as LSP's readers look at it; an array
/// or object (or a float) is `Other`. `Null` also stands for a key that is absent.
#[derive(Debug, Default)]
pub enum Scalar {
    /// `null`, or no such key: an optional key left out.
    #[default]
    Null,
    /// `true` or `false`: the resource operations' options.
    Bool(bool),
    /// A non-negative integer: a line, a character, a version.
    U64(u64),
    /// A negative integer: a version (LSP's are `integer`), refused as a position.
    I64(i64),
    /// A string: a uri, a kind, a new text.
    Text(String),
    /// Anything else, kept so that input.rs refuses it with its own message.
    Other,
}

impl Scalar {
    /// `Value::as_str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(text) => Some(text),
            _ => None,
        }
    }

    /// `Value::as_u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Scalar::U64(n) => Some(n),
            Scalar::I64(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    /// `Value::as_i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Scalar::U64(n) => i64::try_from(n).ok(),
            Scalar::I64(n) => Some(n),
            _ => None,
        }
    }
}

/// A JSON object read into `T`, or what else the value was.
#[derive(Default)]
pub enum Obj<T> {
    /// `null`, or no such key.
    #[default]
    Null,
    /// An object, its keys read into `T`.
    Is(T),
    /// Any other value, kept so that input.rs refuses it with its own message.
    Other,
}

/// A JSON array of `T`, or what else the value was.
#[derive(Default)]
pub enum Arr<T> {
    /// `null`, or no such key.
    #[default]
    Null,
    /// An array, each element read as a `T`.
    Is(Vec<T>),
    /// Any other value, kept so that input.rs refuses it with its own message.
    Other,
}

/// The keys of an object that [`Obj`] reads.
pub trait Fields: Default {
    /// Reads the value of `key` (the next value of `map`) into its field, or skips it.
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

/// A value read and dropped, checked as `Value` checks it (UTF-8, escapes, number range, depth),
/// which `serde::de::IgnoredAny` does not all do.
struct Skip;

fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<Skip>().map(|_| ())
}

/// What a value becomes, by its JSON kind: one hook each, defaulting to "something else".
trait Lenient<'de>: Sized {
    fn other() -> Self;

    fn null() -> Self {
        Self::other()
    }

    fn scalar(value: Scalar) -> Self {
        let _ = value;
        Self::other()
    }

    fn text(text: &str) -> Self {
        let _ = text;
        Self::other()
    }

    fn array<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Self::other())
    }

    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Self::other())
    }
}

impl Lenient<'_> for Skip {
    fn other() -> Self {
        Skip
    }
}

impl Lenient<'_> for Scalar {
    fn other() -> Self {
        Scalar::Other
    }

    fn null() -> Self {
        Scalar::Null
    }

    fn scalar(value: Scalar) -> Self {
        value
    }

    fn text(text: &str) -> Self {
        Scalar::Text(text.to_string())
    }
}

impl<'de, T: Fields> Lenient<'de> for Obj<T> {
    fn other() -> Self {
        Obj::Other
    }

    fn null() -> Self {
        Obj::Null
    }

    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut fields = T::default();
        while let Some(Key(key)) = map.next_key()? {
            fields.field(&key, &mut map)?;
        }
        Ok(Obj::Is(fields))
    }
}

impl<'de, T: Deserialize<'de>> Lenient<'de> for Arr<T> {
    fn other() -> Self {
        Arr::Other
    }

    fn null() -> Self {
        Arr::Null
    }

    fn array<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Arr::Is(items))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::null())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<T, E> {
        Ok(T::scalar(Scalar::Bool(v)))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::scalar(Scalar::I64(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::scalar(Scalar::U64(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::scalar(Scalar::Other))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::text(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::array(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::object(map)
    }
}

fn lenient<'de, T: Lenient<'de>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(LenientVisitor(PhantomData))
}

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient(d)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient(d)
    }
}

impl<'de, T: Fields> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient(d)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Arr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient(d)
    }
}

/// An object's key, borrowed from the input unless it holds an escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_value_reads_them() {
        for text in ["0", "-0", "-1", "1.0", "18446744073709551615", "9223372036854775808", "\"1\"", "null"] {
            let value: Value = serde_json::from_str(text).unwrap();
            let scalar: Scalar = serde_json::from_str(text).unwrap();
            assert_eq!(scalar.as_u64(), value.as_u64(), "{text}");
            assert_eq!(scalar.as_i64(), value.as_i64(), "{text}");
            assert_eq!(scalar.as_str(), value.as_str(), "{text}");
        }
    }
}
