//! The JSON an editor hands over: a `WorkspaceEdit`, or `ApplyWorkspaceEditParams` around one,
//! read into a list of changes in the order LSP applies them. Keys LSP does not define are
//! ignored (servers add their own); a key LSP defines with the wrong type is invalid.

use super::text::TextEdit;
use crate::error::{Error, Result};
use serde_json::{Map, Value};

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
        Some(Value::Array(items)) => document_changes(items)?,
        Some(Value::Null) | None => changes(top.changes)?,
        Some(_) => return Err(Error::invalid("'documentChanges' must be an array")),
    };
    Ok(WorkspaceEdit { label, changes, annotations })
}

/// A `WorkspaceEdit`, or `ApplyWorkspaceEditParams` around one (`edit`), read in one pass;
/// other keys are ignored.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    label: Option<Value>,
    edit: Option<Box<Shape>>,
    changes: Option<Ordered>,
    document_changes: Option<Value>,
    change_annotations: Option<Value>,
}

fn document_changes(items: Vec<Value>) -> Result<Vec<Change>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("documentChanges[{i}]");
        let op = document_change(item).map_err(|e| e.at(at.clone()))?;
        out.push(Change { at, op });
    }
    Ok(out)
}

fn document_change(item: Value) -> Result<Op> {
    let Value::Object(map) = item else { return Err(Error::invalid("a change must be an object")) };
    let options = match map.get("options") {
        Some(Value::Object(o)) => o.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(Error::invalid("'options' must be an object")),
    };
    let flag = |key: &str| -> Result<bool> {
        match options.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Null) | None => Ok(false),
            Some(_) => Err(Error::invalid(format!("'options.{key}' must be a boolean"))),
        }
    };
    match map.get("kind").and_then(Value::as_str) {
        Some("create") => Ok(Op::Create {
            uri: string(map.get("uri"), "uri")?,
            overwrite: flag("overwrite")?,
            ignore_if_exists: flag("ignoreIfExists")?,
        }),
        Some("rename") => Ok(Op::Rename {
            old: string(map.get("oldUri"), "oldUri")?,
            new: string(map.get("newUri"), "newUri")?,
            overwrite: flag("overwrite")?,
            ignore_if_exists: flag("ignoreIfExists")?,
        }),
        Some("delete") => Ok(Op::Delete {
            uri: string(map.get("uri"), "uri")?,
            recursive: flag("recursive")?,
            ignore_if_not_exists: flag("ignoreIfNotExists")?,
        }),
        Some(kind) => Err(Error::invalid(format!("unknown resource operation '{kind}'"))),
        None => text_document_edit(&map),
    }
}

fn text_document_edit(map: &Map<String, Value>) -> Result<Op> {
    let Some(Value::Object(document)) = map.get("textDocument") else {
        return Err(Error::invalid("a TextDocumentEdit needs 'textDocument'"));
    };
    let uri = string(document.get("uri"), "textDocument.uri")?;
    let version = document.get("version").and_then(Value::as_i64);
    let edits = text_edits(map.get("edits"))?;
    Ok(Op::Edit { uri, version, edits })
}

/// `changes`: uri → TextEdit[], in the order the JSON gives them.
fn changes(ordered: Option<Ordered>) -> Result<Vec<Change>> {
    let members = ordered.map(|o| o.0).unwrap_or_default();
    let mut out = Vec::with_capacity(members.len());
    for (i, (uri, edits)) in members.into_iter().enumerate() {
        let at = format!("changes[{i}]");
        let edits = text_edits(Some(&edits)).map_err(|e| e.at(at.clone()))?;
        out.push(Change { at, op: Op::Edit { uri, version: None, edits } });
    }
    Ok(out)
}

fn text_edits(value: Option<&Value>) -> Result<Vec<TextEdit>> {
    let Some(Value::Array(items)) = value else { return Err(Error::invalid("'edits' must be an array")) };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            text_edit(item).map_err(|e| Error { message: format!("edit {i}: {}", e.message), ..e })
        })
        .collect()
}

fn text_edit(item: &Value) -> Result<TextEdit> {
    if item.get("snippet").is_some() {
        return Err(Error::invalid("a SnippetTextEdit cannot be applied outside the editor"));
    }
    let range = item.get("range").ok_or_else(|| Error::invalid("missing 'range'"))?;
    Ok(TextEdit {
        start: position(range.get("start"))?,
        end: position(range.get("end"))?,
        new_text: string(item.get("newText"), "newText")?,
    })
}

fn position(value: Option<&Value>) -> Result<(u64, u64)> {
    let number = |key: &str| {
        value
            .and_then(|p| p.get(key))
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::invalid(format!("a position needs '{key}' as a non-negative integer")))
    };
    Ok((number("line")?, number("character")?))
}

fn string(value: Option<&Value>, key: &str) -> Result<String> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(Error::invalid(format!("'{key}' must be a string"))),
    }
}

fn optional_string(value: Option<&Value>, key: &str) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string(Some(v), key).map(Some),
    }
}

fn annotation_labels(value: Option<&Value>) -> Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let Value::Object(map) = value else {
        return Err(Error::invalid("'changeAnnotations' must be an object"));
    };
    Ok(map.values().filter_map(|a| a.get("label")?.as_str().map(str::to_string)).collect())
}

/// `changes` with its members in the order written (serde_json's own map sorts them), a
/// doubled key refused: `failedChange` indexes `changes` in the order the editor gave them.
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object (uri to TextEdit[])")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Ordered, A::Error> {
        let mut members = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key '{key}' in 'changes'")));
            }
            members.push((key, value));
        }
        Ok(Ordered(members))
    }
}
