//! Stage 1: bytes → [`BatchFile`]. Reads YAML or JSON into plain entries, rejecting unknown keys,
//! missing or doubled keys and values of the wrong type, each error naming its entry. Nothing here
//! looks at the repository; that is `validate`'s job.

use crate::error::{Error, Result};
use crate::record::Mode;
use serde_json::{Map, Value};

/// A batch exactly as the user wrote it, structurally sound but not yet checked against the repository.
#[derive(Debug, Clone, Default)]
pub struct BatchFile {
    pub message: Option<String>,
    pub refs: Vec<RefEntry>,
    pub files: Vec<FileEntry>,
    /// Other repositories changed together with this one by two-phase commit (SPEC §9).
    pub repositories: Vec<RepositoryEntry>,
    /// Work-tree files as the batch's reader saw them (`--lsp`); never written in a batch file.
    pub seen: crate::check::Seen,
}

impl BatchFile {
    /// The `(from, to)` of each rename of the batch, for its log entry.
    pub fn renames(&self) -> Vec<(String, String)> {
        self.files
            .iter()
            .filter_map(|f| match f {
                FileEntry::Rename { path, to, .. } => Some((path.clone(), to.clone())),
                _ => None,
            })
            .collect()
    }
}

/// One `repositories:` entry: a repository's path (relative to the batch's repository) and its
/// part of the batch.
#[derive(Debug, Clone, Default)]
pub struct RepositoryEntry {
    pub path: String,
    pub refs: Vec<RefEntry>,
    pub files: Vec<FileEntry>,
}

/// A ref precondition (`from:` / `is:`): an object id or `absent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefExpect {
    Absent,
    Id(String),
}

/// One entry of `refs:`; `name` is the ref as written.
#[derive(Debug, Clone)]
pub enum RefEntry {
    Update { name: String, to: String, from: Option<RefExpect> },
    Create { name: String, to: String },
    Delete { name: String, from: Option<RefExpect> },
    Verify { name: String, is: RefExpect },
    Symref { name: String, to: String },
}

impl RefEntry {
    /// The ref the entry names, as written.
    pub fn name(&self) -> &str {
        match self {
            RefEntry::Update { name, .. }
            | RefEntry::Create { name, .. }
            | RefEntry::Delete { name, .. }
            | RefEntry::Verify { name, .. }
            | RefEntry::Symref { name, .. } => name,
        }
    }
}

/// A file precondition (`expect:`): a blob id of the current content, `absent` or `present`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileExpect {
    Absent,
    Present,
    Blob(String),
}

/// Where a written file's new content comes from.
#[derive(Debug, Clone)]
pub enum Content {
    Text(String),
    Base64(String),
    Blob(String),
    Source(String),
}

/// One entry of `files:`; paths are '/'-separated and relative to the work-tree root.
#[derive(Debug, Clone)]
pub enum FileEntry {
    Write { path: String, content: Content, mode: Option<Mode>, expect: Option<FileExpect> },
    Delete { path: String, expect: Option<FileExpect> },
    Rename { path: String, to: String, expect: Option<FileExpect> },
}

impl FileEntry {
    /// The path the entry acts on (the source, for a rename).
    pub fn path(&self) -> &str {
        match self {
            FileEntry::Write { path, .. }
            | FileEntry::Delete { path, .. }
            | FileEntry::Rename { path, .. } => path,
        }
    }
}

pub use crate::limits;

/// Parses a batch; `origin` names the input in parse errors (`batch.yaml:3:7`).
pub fn parse(bytes: &[u8], origin: &str) -> Result<BatchFile> {
    limits::check_batch_size(bytes.len() as u64)?;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::invalid(format!("{origin}: batch is not UTF-8: {e}")))?;
    let (value, streamed) = read_document(text, origin)?;
    let mut top = match value {
        Value::Object(map) => map,
        Value::Null => return Err(Error::invalid(format!("{origin}: the batch is empty"))),
        _ => {
            return Err(Error::invalid(format!(
                "{origin}: the batch must be a mapping with 'refs' and/or 'files'"
            )));
        }
    };
    // Streamed lists left an array of placeholders behind; their entries are in `streamed`.
    let streamed_refs = top.get("refs").is_some_and(Value::is_array) && streamed.used;
    let streamed_files = top.get("files").is_some_and(Value::is_array) && streamed.used;
    if streamed_refs {
        top.remove("refs");
    }
    if streamed_files {
        top.remove("files");
    }
    let mut batch = batch_from_map(top)?;
    if streamed_refs {
        batch.refs = streamed.refs;
    }
    if streamed_files {
        batch.files = streamed.files;
    }
    if batch.refs.is_empty()
        && batch.files.is_empty()
        && batch.repositories.iter().all(|r| r.refs.is_empty() && r.files.is_empty())
    {
        return Err(Error::invalid("the batch has no entries"));
    }
    Ok(batch)
}

/// Entries converted one by one while the YAML streams past (see `yaml`).
#[derive(Default)]
struct Streamed {
    used: bool,
    origin: String,
    refs: Vec<RefEntry>,
    files: Vec<FileEntry>,
    error: Option<Error>,
}

impl crate::yaml::Sink for Streamed {
    fn streams(&self, key: &str) -> bool {
        key == "refs" || key == "files"
    }

    fn item(
        &mut self,
        key: &str,
        index: usize,
        value: Value,
        (line, column): crate::yaml::Position,
    ) -> std::result::Result<(), String> {
        let converted = if self.refs.len() + self.files.len() >= limits::MAX_ENTRIES {
            Err(too_many_entries())
        } else {
            match key {
                "refs" => ref_entry(value).map(|e| self.refs.push(e)),
                _ => file_entry(value).map(|e| self.files.push(e)),
            }
        };
        converted.map_err(|mut e| {
            let message = e.to_string();
            e.message = format!("{}:{line}:{column}: {}", self.origin, e.message);
            self.error = Some(e.at(format!("{key}[{index}]")));
            message
        })
    }
}

fn too_many_entries() -> Error {
    Error::invalid(format!("the batch has more than the limit of {} entries", limits::MAX_ENTRIES))
        .hint("split it into several batches")
}

/// YAML (JSON is read by the JSON parser when it looks like JSON, for exact JSON semantics).
fn read_document(text: &str, origin: &str) -> Result<(Value, Streamed)> {
    if text.trim_start().starts_with('{') {
        JSON_VALUES.set(0);
        let value = serde_json::from_str::<Strict>(text)
            .map(|s| s.0)
            .map_err(|e| Error::invalid(format!("{origin}:{}:{}: {e}", e.line(), e.column())))?;
        check_depth(&value, 0).map_err(|m| Error::invalid(format!("{origin}: {m}")))?;
        return Ok((value, Streamed::default()));
    }
    let mut streamed = Streamed { used: true, origin: origin.to_string(), ..Streamed::default() };
    match crate::yaml::read(text, &mut streamed) {
        Ok(value) => Ok((value, streamed)),
        Err(crate::yaml::ReadError::Syntax((line, column), message)) => {
            Err(Error::invalid(format!("{origin}:{line}:{column}: {message}")))
        }
        Err(crate::yaml::ReadError::Content((line, column), message)) => Err(streamed
            .error
            .take()
            .unwrap_or_else(|| Error::invalid(format!("{origin}:{line}:{column}: {message}")))),
    }
}

/// Refuses JSON nested deeper than YAML may be (serde_json itself stops at 128 levels).
fn check_depth(value: &Value, depth: usize) -> std::result::Result<(), String> {
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(map) => Box::new(map.values()),
        _ => return Ok(()),
    };
    if depth >= limits::MAX_DEPTH {
        return Err(crate::yaml::too_deep());
    }
    children.into_iter().try_for_each(|child| check_depth(child, depth + 1))
}

/// A document read into a [`Value`] that refuses a key doubled within one mapping: serde's own
/// maps keep the last one silently, which would drop a whole `files:` section without a word.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

thread_local! {
    /// Values read so far by [`StrictVisitor`] in this document.
    static JSON_VALUES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one more JSON value; past `limits::MAX_JSON_VALUES` the document is refused.
fn count_json_value<E: serde::de::Error>() -> std::result::Result<(), E> {
    let n = JSON_VALUES.get() + 1;
    JSON_VALUES.set(n);
    if n > limits::MAX_JSON_VALUES {
        return Err(E::custom(format!(
            "the batch has more than the limit of {} values",
            limits::MAX_JSON_VALUES
        )));
    }
    Ok(())
}

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        serde::Deserialize::deserialize(d).map(|s: Strict| s.0)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            count_json_value()?;
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.len() > limits::MAX_KEY_BYTES {
                return Err(serde::de::Error::custom(crate::yaml::key_too_long(&key)));
            }
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key '{key}'")));
            }
            let Strict(value) = map.next_value()?;
            count_json_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn batch_from_map(mut top: Map<String, Value>) -> Result<BatchFile> {
    let mut batch = BatchFile::default();
    if let Some(version) = top.remove("version")
        && version.as_u64() != Some(1)
    {
        return Err(Error::invalid(format!("unsupported batch version {version}"))
            .hint("this git-atomic reads version: 1"));
    }
    if let Some(message) = top.remove("message") {
        batch.message = Some(string_value(message, "message")?);
    }
    let count = |key: &str| top.get(key).and_then(Value::as_array).map_or(0, Vec::len);
    if count("refs") + count("files") > limits::MAX_ENTRIES {
        return Err(too_many_entries());
    }
    if let Some(refs) = top.remove("refs") {
        for (i, entry) in list(refs, "refs")?.into_iter().enumerate() {
            batch.refs.push(ref_entry(entry).map_err(|e| e.at(format!("refs[{i}]")))?);
        }
    }
    if let Some(files) = top.remove("files") {
        for (i, entry) in list(files, "files")?.into_iter().enumerate() {
            batch.files.push(file_entry(entry).map_err(|e| e.at(format!("files[{i}]")))?);
        }
    }
    if let Some(repositories) = top.remove("repositories") {
        for (i, entry) in list(repositories, "repositories")?.into_iter().enumerate() {
            batch.repositories.push(repository_entry(entry).map_err(|e| e.at(format!("repositories[{i}]")))?);
        }
    }
    if let Some(key) = top.keys().next() {
        let error = Error::invalid(format!("unknown key '{key}' at the top of the batch"));
        return Err(match did_you_mean(key, &["version", "message", "refs", "files", "repositories"]) {
            Some(close) => error.hint(format!("did you mean '{close}'?")),
            None => error.hint("the batch takes 'version', 'message', 'refs', 'files' and 'repositories'"),
        });
    }
    Ok(batch)
}

/// A `repositories:` entry: `path`, and `refs` and `files` as at the top of a batch.
fn repository_entry(value: Value) -> Result<RepositoryEntry> {
    let Value::Object(mut map) = value else {
        return Err(Error::invalid("a repository entry must be a mapping with 'path', 'refs' and 'files'"));
    };
    let path = match map.remove("path") {
        Some(path) => string_value(path, "path")?,
        None => return Err(Error::invalid("a repository entry needs 'path'")),
    };
    let mut entry = RepositoryEntry { path, ..RepositoryEntry::default() };
    if let Some(refs) = map.remove("refs") {
        for (i, e) in list(refs, "refs")?.into_iter().enumerate() {
            entry.refs.push(ref_entry(e).map_err(|e| e.at(format!("refs[{i}]")))?);
        }
    }
    if let Some(files) = map.remove("files") {
        for (i, e) in list(files, "files")?.into_iter().enumerate() {
            entry.files.push(file_entry(e).map_err(|e| e.at(format!("files[{i}]")))?);
        }
    }
    if let Some(key) = map.keys().next() {
        return Err(Error::invalid(format!("unknown key '{key}' in a repository entry")));
    }
    Ok(entry)
}

fn list(value: Value, what: &str) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err(Error::invalid(format!("'{what}' must be a list"))),
    }
}

/// The keys of one entry, taken out one by one so that leftovers are reported as unknown.
struct Entry(Map<String, Value>);

impl Entry {
    fn new(value: Value) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Entry(map)),
            _ => Err(Error::invalid("an entry must be a mapping such as 'update: refs/heads/main'")),
        }
    }

    /// The entry's verb: exactly one of `verbs` must be present.
    fn verb(&mut self, verbs: &[&'static str]) -> Result<(&'static str, String)> {
        let present: Vec<&'static str> = verbs.iter().copied().filter(|v| self.0.contains_key(*v)).collect();
        match present.as_slice() {
            [verb] => Ok((verb, self.required(verb)?)),
            [] => {
                let close = self.0.keys().find_map(|k| did_you_mean(k, verbs).map(|v| (k.clone(), v)));
                Err(match close {
                    Some((key, verb)) => {
                        Error::invalid(format!("unknown key '{key}'")).hint(format!("did you mean '{verb}'?"))
                    }
                    None => {
                        Error::invalid(format!("the entry names no action (one of: {})", verbs.join(", ")))
                    }
                })
            }
            _ => Err(Error::invalid(format!("the entry names several actions: {}", present.join(", ")))),
        }
    }

    fn required(&mut self, key: &str) -> Result<String> {
        match self.0.remove(key) {
            Some(v) => string_value(v, key),
            None => Err(Error::invalid(format!("missing '{key}'"))),
        }
    }

    fn optional(&mut self, key: &str) -> Result<Option<String>> {
        self.0.remove(key).map(|v| string_value(v, key)).transpose()
    }

    /// Refuses a key that `verb` does not take, before a misspelt key shows up as a missing one
    /// (`too:` as "missing 'to'"), suggesting the key meant when one is close.
    fn unknown_keys(&self, verb: &str, takes: &[&str]) -> Result<()> {
        let Some(key) = self.0.keys().find(|k| k.as_str() != verb && !takes.contains(&k.as_str())) else {
            return Ok(());
        };
        let error = Error::invalid(format!("unknown key '{key}' for '{verb}'"));
        Err(match did_you_mean(key, takes) {
            Some(close) => error.hint(format!("did you mean '{close}'?")),
            None => error.hint(format!("'{verb}' takes {}", quoted_list(takes))),
        })
    }

    /// Refuses whatever keys the verb did not take.
    fn finish(self, verb: &str) -> Result<()> {
        match self.0.keys().next() {
            Some(key) => Err(Error::invalid(format!("unknown key '{key}' for '{verb}'"))),
            None => Ok(()),
        }
    }
}

fn string_value(value: Value, key: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Number(n) => Err(Error::invalid(format!("'{key}' must be a string, not the number {n}"))
            .hint(format!("quote the value: {key}: \"{n}\""))),
        other => Err(Error::invalid(format!("'{key}' must be a string, not {}", type_name(&other)))),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn ref_expect(text: String) -> RefExpect {
    if text == "absent" { RefExpect::Absent } else { RefExpect::Id(text) }
}

fn ref_entry(value: Value) -> Result<RefEntry> {
    let mut e = Entry::new(value)?;
    let (verb, name) = e.verb(&["update", "create", "delete", "verify", "symref"])?;
    let takes: &[&str] = match verb {
        "update" => &["to", "from"],
        "delete" => &["from"],
        "verify" => &["is"],
        _ => &["to"],
    };
    e.unknown_keys(verb, takes)?;
    let entry = match verb {
        "update" => {
            RefEntry::Update { name, to: e.required("to")?, from: e.optional("from")?.map(ref_expect) }
        }
        "create" => RefEntry::Create { name, to: e.required("to")? },
        "delete" => RefEntry::Delete { name, from: e.optional("from")?.map(ref_expect) },
        "verify" => RefEntry::Verify { name, is: ref_expect(e.required("is")?) },
        _ => RefEntry::Symref { name, to: e.required("to")? },
    };
    e.finish(verb)?;
    Ok(entry)
}

fn file_expect(text: String) -> FileExpect {
    match text.as_str() {
        "absent" => FileExpect::Absent,
        "present" => FileExpect::Present,
        _ => FileExpect::Blob(text),
    }
}

fn file_entry(value: Value) -> Result<FileEntry> {
    let mut e = Entry::new(value)?;
    if let Some(Value::Number(n)) = e.0.get("mode") {
        // `mode: 100644` unquoted is a YAML number; its digits are what the user meant.
        let digits = n.to_string();
        e.0.insert("mode".into(), Value::String(digits));
    }
    let (verb, path) = e.verb(&["write", "delete", "rename"])?;
    let takes: &[&str] = match verb {
        "write" => &["content", "base64", "blob", "source", "mode", "expect"],
        "delete" => &["expect"],
        _ => &["to", "expect"],
    };
    e.unknown_keys(verb, takes)?;
    let expect = e.optional("expect")?.map(file_expect);
    let entry = match verb {
        "write" => {
            let content = write_content(&mut e)?;
            let mode = match e.optional("mode")? {
                None => None,
                Some(m) => Some(Mode::from_git(&m).ok_or_else(|| {
                    Error::invalid(format!("unsupported mode '{m}'")).hint("use 100644, 100755 or 120000")
                })?),
            };
            FileEntry::Write { path, content, mode, expect }
        }
        "delete" => FileEntry::Delete { path, expect },
        _ => FileEntry::Rename { path, to: e.required("to")?, expect },
    };
    e.finish(verb)?;
    Ok(entry)
}

fn write_content(e: &mut Entry) -> Result<Content> {
    let mut found = Vec::new();
    for key in ["content", "base64", "blob", "source"] {
        if let Some(value) = e.optional(key)? {
            found.push((key, value));
        }
    }
    match found.len() {
        1 => {
            let (key, value) = found.pop().expect("one element");
            if key == "content" || key == "base64" {
                limits::check_content_size(value.len() as u64 * if key == "base64" { 3 } else { 4 } / 4)?;
            }
            Ok(match key {
                "content" => Content::Text(value),
                "base64" => Content::Base64(value),
                "blob" => Content::Blob(value),
                _ => Content::Source(value),
            })
        }
        0 => Err(Error::invalid("'write' needs one of 'content', 'base64', 'blob' or 'source'")),
        _ => Err(Error::invalid(format!(
            "'write' takes exactly one content source, not {}",
            found.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" and ")
        ))),
    }
}

/// The candidate a misspelt key was most likely meant as: at most one edit away for short keys,
/// two for longer ones (a swap of two neighbours counts as one edit).
fn did_you_mean<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let allowed = if key.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (edit_distance(&key.to_lowercase(), c), *c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return 3;
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn quoted_list(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_entry_kind() {
        let yaml = "version: 1\nmessage: m\nrefs:\n  - update: refs/heads/main\n    to: HEAD\n    from: absent\n  - create: refs/heads/t\n    to: main\n  - delete: refs/heads/o\n  - verify: refs/tags/v\n    is: absent\n  - symref: HEAD\n    to: refs/heads/main\nfiles:\n  - write: a\n    content: hi\n    mode: 100755\n  - delete: b\n    expect: present\n  - rename: c\n    to: d\n";
        let b = parse(yaml.as_bytes(), "b.yaml").unwrap();
        assert_eq!(b.refs.len(), 5);
        assert_eq!(b.files.len(), 3);
        assert!(matches!(&b.files[0], FileEntry::Write { mode: Some(Mode::Executable), .. }));
    }

    #[test]
    fn names_the_entry_and_the_unknown_key() {
        let err = parse(b"files:\n  - write: a\n    content: x\n    mdoe: 1\n", "b").unwrap_err();
        assert_eq!(err.to_string(), "files[0]: b:2:5: unknown key 'mdoe' for 'write'");
        assert_eq!(err.hints, ["did you mean 'mode'?"]);
    }

    #[test]
    fn a_misspelt_key_is_named_with_the_key_meant() {
        for (text, key, meant) in [
            ("files:\n  - write: a\n    contnet: x\n", "contnet", "content"),
            ("refs:\n  - update: refs/heads/a\n    too: HEAD\n", "too", "to"),
            ("files:\n  - writ: a\n    content: x\n", "writ", "write"),
            ("refs:\n  - update: refs/heads/a\n    to: HEAD\n    form: absent\n", "form", "from"),
            ("file:\n  - write: a\n", "file", "files"),
        ] {
            let err = parse(text.as_bytes(), "b").unwrap_err();
            assert!(err.message.contains(&format!("unknown key '{key}'")), "{text:?}: {err}");
            assert_eq!(err.hints, [format!("did you mean '{meant}'?")], "{text:?}");
        }
    }

    #[test]
    fn edit_distance_counts_a_swap_as_one() {
        assert_eq!(edit_distance("contnet", "content"), 1);
        assert_eq!(edit_distance("to", "too"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }

    #[test]
    fn yaml_errors_carry_line_and_column() {
        let err = parse(b"refs:\n  - update: [\n", "b.yaml").unwrap_err();
        assert!(err.to_string().starts_with("b.yaml:"), "{err}");
    }

    #[test]
    fn a_doubled_key_is_refused_not_silently_dropped() {
        for text in [
            "files:\n  - write: a\n    content: x\n    content: y\n",
            "files:\n  - write: a\n    content: x\nfiles:\n  - write: b\n    content: y\n",
            r#"{"files": [{"write": "a", "content": "x"}], "files": []}"#,
        ] {
            let err = parse(text.as_bytes(), "b").unwrap_err();
            assert!(err.to_string().contains("duplicate key"), "{err}");
        }
    }

    #[test]
    fn numbers_are_not_silently_turned_into_ids() {
        let err = parse(b"refs:\n  - update: refs/heads/a\n    to: 1234567\n", "b").unwrap_err();
        assert!(err.hints[0].contains("quote"), "{err:?}");
    }
}
