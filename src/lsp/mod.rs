//! `git atomic apply --lsp` (SPEC §8): an editor's LSP `WorkspaceEdit` turned into an ordinary
//! batch of `write`/`rename`/`delete` entries, each expecting the blob that was read, so that the
//! normal pipeline (journal, recovery, hook) applies it all-or-nothing. Nothing here writes.

pub mod input;
pub mod position;
mod raw;
pub mod text;
pub mod uri;
pub mod workspace;

use crate::error::{Error, Result};
use crate::parse::{BatchFile, Content, FileEntry, FileExpect};
pub use position::Encoding;
use serde_json::{Map, Value, json};
use std::path::Path;

/// The batch an edit comes to, and for each of its file entries the change it comes from.
pub struct Converted {
    pub file: BatchFile,
    pub changes: Vec<usize>,
}

/// The reflog and log message of an edit without `label` or `-m`.
pub const DEFAULT_MESSAGE: &str = "LSP workspace edit";

/// Reads the editor's JSON and the files it edits; errors name the change (`documentChanges[1]`).
pub fn convert(
    bytes: &[u8],
    work_tree: &Path,
    hash: gix::hash::Kind,
    encoding: Encoding,
) -> Result<Converted> {
    let edit = input::read(bytes)?;
    let mut workspace = workspace::Workspace::new(work_tree, hash, encoding);
    workspace.apply_all(&edit.changes)?;
    let (entries, seen) = workspace.into_entries()?;
    let (files, changes) = entries.into_iter().unzip();
    let mut message = edit.label.unwrap_or_else(|| DEFAULT_MESSAGE.to_string());
    if !edit.annotations.is_empty() {
        message = format!("{message} ({})", edit.annotations.join("; "));
    }
    Ok(Converted {
        file: BatchFile { message: Some(message), refs: Vec::new(), files, repositories: Vec::new(), seen },
        changes,
    })
}

/// LSP's `failedChange`: the change an error is about, read from the entry it names
/// (`documentChanges[3] …`, `changes[0] …`, or a batch entry `files[2] …` made from a change).
pub fn failed_change(e: &Error, changes: Option<&[usize]>) -> Option<usize> {
    let entry = e.entry.as_deref()?;
    let index = |prefix: &str| -> Option<usize> {
        let rest = entry.strip_prefix(prefix)?;
        rest[..rest.find(']')?].parse().ok()
    };
    index("documentChanges[")
        .or_else(|| index("changes["))
        .or_else(|| changes?.get(index("files[")?).copied())
}

/// The batch as `--emit-batch` prints it: what a user could write by hand in a batch file.
pub fn batch_json(file: &BatchFile) -> Value {
    let files: Vec<Value> = file.files.iter().map(entry_json).collect();
    json!({"version": 1, "message": file.message, "files": files})
}

fn entry_json(entry: &FileEntry) -> Value {
    let mut map = Map::new();
    let expect = match entry {
        FileEntry::Write { path, content, mode, expect } => {
            map.insert("write".into(), json!(path));
            let (key, value) = match content {
                Content::Text(text) => ("content", text),
                Content::Base64(data) => ("base64", data),
                Content::Blob(id) => ("blob", id),
                Content::Source(source) => ("source", source),
            };
            map.insert(key.into(), json!(value));
            if let Some(mode) = mode {
                map.insert("mode".into(), json!(mode));
            }
            expect
        }
        FileEntry::Delete { path, expect } => {
            map.insert("delete".into(), json!(path));
            expect
        }
        FileEntry::Rename { path, to, expect } => {
            map.insert("rename".into(), json!(path));
            map.insert("to".into(), json!(to));
            expect
        }
    };
    if let Some(expect) = expect {
        let text = match expect {
            FileExpect::Absent => "absent",
            FileExpect::Present => "present",
            FileExpect::Blob(id) => id,
        };
        map.insert("expect".into(), json!(text));
    }
    Value::Object(map)
}
