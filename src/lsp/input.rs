//! The JSON an editor hands over: a `WorkspaceEdit`, or `ApplyWorkspaceEditParams` around one,
//! read into a list of changes in the order LSP applies them. Keys LSP does not define are
//! ignored (servers add their own); a key LSP defines with the wrong type is invalid. The JSON
//! is read into LSP's types by raw.rs; the checks here say what is wrong, in a fixed order.

use super::raw::{self, Arr, Obj, Ordered, Scalar, Shape};
use super::text::TextEdit;
use crate::error::{Error, Result};
use serde_json::Value;

/// One change, in the order given; `at` names it in errors (`documentChanges[2]`).
#[derive(Debug)]
pub struct Change {
    pub at: String,
    pub op: Op,
}

/// What one change does. Options are as LSP defines them.
#[derive(Debug)]
pub enum Op {
    Edit { uri: String, version: Option<i64>, edits: Vec<TextEdit> },
    Create { uri: String, overwrite: bool, ignore_if_exists: bool },
    Rename { old: String, new: String, overwrite: bool, ignore_if_exists: bool },
    Delete { uri: String, recursive: bool, ignore_if_not_exists: bool },
}

/// A workspace edit, read.
#[derive(Debug, Default)]
pub struct WorkspaceEdit {
    /// The params' `label`.
    pub label: Option<String>,
    pub changes: Vec<Change>,
    /// The labels of `changeAnnotations`, in the order given.
    pub annotations: Vec<String>,
}

/// Reads the editor's JSON.
pub fn read(bytes: &[u8]) -> Result<WorkspaceEdit> {
    let mut top: Shape = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("<lsp>:{}:{}: {e}", e.line(), e.column())))?;
    let mut label = None;
    if let Some(edit) = top.edit.take() {
        label = optional_string(top.label.as_ref(), "label")?;
        top = *edit;
    }
    let annotations = annotation_labels(top.change_annotations.as_ref())?;
    // LSP: a client that supports documentChanges takes them over changes.
    let changes = match top.document_changes {
        Some(Arr::Is(items)) => document_changes(items)?,
        Some(Arr::Null) | None => changes(top.changes)?,
        Some(Arr::Other) => return Err(Error::invalid("'documentChanges' must be an array")),
    };
    Ok(WorkspaceEdit { label, changes, annotations })
}

fn document_changes(items: Vec<Obj<raw::DocumentChange>>) -> Result<Vec<Change>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("documentChanges[{i}]");
        let op = document_change(item).map_err(|e| e.at(at.clone()))?;
        out.push(Change { at, op });
    }
    Ok(out)
}

fn document_change(item: Obj<raw::DocumentChange>) -> Result<Op> {
    let Obj::Is(change) = item else { return Err(Error::invalid("a change must be an object")) };
    let options = match change.options {
        Obj::Is(options) => options,
        Obj::Null => raw::Options::default(),
        Obj::Other => return Err(Error::invalid("'options' must be an object")),
    };
    let flag = |value: &Scalar, key: &str| -> Result<bool> {
        match value {
            Scalar::Bool(b) => Ok(*b),
            Scalar::Null => Ok(false),
            _ => Err(Error::invalid(format!("'options.{key}' must be a boolean"))),
        }
    };
    match change.kind.as_str() {
        Some("create") => Ok(Op::Create {
            uri: string(change.uri, "uri")?,
            overwrite: flag(&options.overwrite, "overwrite")?,
            ignore_if_exists: flag(&options.ignore_if_exists, "ignoreIfExists")?,
        }),
        Some("rename") => Ok(Op::Rename {
            old: string(change.old_uri, "oldUri")?,
            new: string(change.new_uri, "newUri")?,
            overwrite: flag(&options.overwrite, "overwrite")?,
            ignore_if_exists: flag(&options.ignore_if_exists, "ignoreIfExists")?,
        }),
        Some("delete") => Ok(Op::Delete {
            uri: string(change.uri, "uri")?,
            recursive: flag(&options.recursive, "recursive")?,
            ignore_if_not_exists: flag(&options.ignore_if_not_exists, "ignoreIfNotExists")?,
        }),
        Some(kind) => Err(Error::invalid(format!("unknown resource operation '{kind}'"))),
        None => text_document_edit(change.text_document, change.edits),
    }
}

fn text_document_edit(document: Obj<raw::Document>, edits: Arr<Obj<raw::TextEdit>>) -> Result<Op> {
    let Obj::Is(document) = document else {
        return Err(Error::invalid("a TextDocumentEdit needs 'textDocument'"));
    };
    let version = document.version.as_i64();
    let uri = string(document.uri, "textDocument.uri")?;
    let edits = text_edits(edits)?;
    Ok(Op::Edit { uri, version, edits })
}

/// `changes`: uri → TextEdit[], in the order the JSON gives them.
fn changes(ordered: Option<Ordered>) -> Result<Vec<Change>> {
    let members = ordered.map(|o| o.0).unwrap_or_default();
    let mut out = Vec::with_capacity(members.len());
    for (i, (uri, edits)) in members.into_iter().enumerate() {
        let at = format!("changes[{i}]");
        let edits = text_edits(edits).map_err(|e| e.at(at.clone()))?;
        out.push(Change { at, op: Op::Edit { uri, version: None, edits } });
    }
    Ok(out)
}

fn text_edits(value: Arr<Obj<raw::TextEdit>>) -> Result<Vec<TextEdit>> {
    let Arr::Is(items) = value else { return Err(Error::invalid("'edits' must be an array")) };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            text_edit(item).map_err(|e| Error { message: format!("edit {i}: {}", e.message), ..e })
        })
        .collect()
}

/// A `TextEdit`; an edit that is not an object has no `range`.
fn text_edit(item: Obj<raw::TextEdit>) -> Result<TextEdit> {
    let Obj::Is(edit) = item else { return Err(Error::invalid("missing 'range'")) };
    if edit.snippet {
        return Err(Error::invalid("a SnippetTextEdit cannot be applied outside the editor"));
    }
    let range = match edit.range.ok_or_else(|| Error::invalid("missing 'range'"))? {
        Obj::Is(range) => range,
        _ => raw::Range::default(),
    };
    Ok(TextEdit {
        start: position(&range.start)?,
        end: position(&range.end)?,
        new_text: string(edit.new_text, "newText")?,
    })
}

/// A position; one that is not an object has no `line`.
fn position(value: &Obj<raw::Position>) -> Result<(u64, u64)> {
    let number = |value: Option<&Scalar>, key: &str| {
        value
            .and_then(Scalar::as_u64)
            .ok_or_else(|| Error::invalid(format!("a position needs '{key}' as a non-negative integer")))
    };
    let (line, character) = match value {
        Obj::Is(p) => (Some(&p.line), Some(&p.character)),
        _ => (None, None),
    };
    Ok((number(line, "line")?, number(character, "character")?))
}

fn string(value: Scalar, key: &str) -> Result<String> {
    match value {
        Scalar::Text(s) => Ok(s),
        _ => Err(Error::invalid(format!("'{key}' must be a string"))),
    }
}

fn optional_string(value: Option<&Value>, key: &str) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid(format!("'{key}' must be a string"))),
    }
}

fn annotation_labels(value: Option<&Value>) -> Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Value::Object(map) = value else {
        return Err(Error::invalid("'changeAnnotations' must be an object"));
    };
    Ok(map.values().filter_map(|a| a.get("label")?.as_str().map(str::to_string)).collect())
}
