//! `git atomic apply --lsp` (SPEC §8): the shapes of the editor's JSON. Every malformed shape is
//! refused with its own message, naming the change, before anything is read or written; what
//! LSP allows (keys it does not define, `AnnotatedTextEdit`, any `version`, options left out or
//! null) applies.

mod common;

use common::{Outcome, Repo, run_with_stdin};
use serde_json::json;

const LSP: &[&str] = &["apply", "--lsp", "--json", "-"];

/// `{"range": …}` for 0:from..0:to.
const RANGE: &str = r#"{"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}"#;

/// Runs `--lsp` on raw bytes (some cases are not UTF-8).
fn lsp_bytes(repo: &Repo, input: &[u8]) -> Outcome {
    Outcome::from(run_with_stdin(&mut repo.atomic_cmd(LSP), input))
}

/// A document change of `x.txt` with `edits` (JSON text).
fn document(edits: &str) -> String {
    format!(r#"{{"documentChanges": [{{"textDocument": {{"uri": "file:///x.txt"}}, "edits": {edits}}}]}}"#)
}

/// One edit whose fields are `fields` (JSON text without braces), in a document change.
fn one_edit(fields: &str) -> String {
    document(&format!("[{{{fields}}}]"))
}

/// Every shape error with the failure it reports: before the URIs are looked at, so none need to
/// name a real file.
fn refusals() -> Vec<(String, &'static str)> {
    let range = RANGE;
    vec![
        // Resource operations.
        (r#"{"documentChanges": [{"kind": "zap", "uri": "file:///x"}]}"#.into(),
         "documentChanges[0]: unknown resource operation 'zap'"),
        (r#"{"documentChanges": [{"kind": 5, "uri": "file:///x"}]}"#.into(),
         "documentChanges[0]: a TextDocumentEdit needs 'textDocument'"),
        (r#"{"documentChanges": [{"kind": "create"}]}"#.into(), "documentChanges[0]: 'uri' must be a string"),
        (r#"{"documentChanges": [{"kind": "delete", "uri": 7}]}"#.into(),
         "documentChanges[0]: 'uri' must be a string"),
        (r#"{"documentChanges": [{"kind": "rename", "oldUri": "file:///a"}]}"#.into(),
         "documentChanges[0]: 'newUri' must be a string"),
        (r#"{"documentChanges": [{"kind": "rename", "newUri": "file:///a"}]}"#.into(),
         "documentChanges[0]: 'oldUri' must be a string"),
        (r#"{"documentChanges": [{"kind": "create", "uri": "file:///a", "options": {"overwrite": "yes"}}]}"#.into(),
         "documentChanges[0]: 'options.overwrite' must be a boolean"),
        (r#"{"documentChanges": [{"kind": "create", "uri": "file:///a", "options": {"ignoreIfExists": 1}}]}"#.into(),
         "documentChanges[0]: 'options.ignoreIfExists' must be a boolean"),
        (r#"{"documentChanges": [{"kind": "rename", "oldUri": "file:///a", "newUri": "file:///b", "options": {"overwrite": true, "ignoreIfExists": []}}]}"#.into(),
         "documentChanges[0]: 'options.ignoreIfExists' must be a boolean"),
        (r#"{"documentChanges": [{"kind": "delete", "uri": "file:///a", "options": {"recursive": {}}}]}"#.into(),
         "documentChanges[0]: 'options.recursive' must be a boolean"),
        (r#"{"documentChanges": [{"kind": "delete", "uri": "file:///a", "options": {"ignoreIfNotExists": "no"}}]}"#.into(),
         "documentChanges[0]: 'options.ignoreIfNotExists' must be a boolean"),
        (r#"{"documentChanges": [{"kind": "delete", "uri": "file:///a", "options": 5}]}"#.into(),
         "documentChanges[0]: 'options' must be an object"),
        // `options` is checked on every change, before its kind.
        (r#"{"documentChanges": [{"kind": "zap", "options": []}]}"#.into(),
         "documentChanges[0]: 'options' must be an object"),
        (r#"{"documentChanges": [{"textDocument": {"uri": "file:///x"}, "edits": [], "options": "x"}]}"#.into(),
         "documentChanges[0]: 'options' must be an object"),
        // The uri comes before the options.
        (r#"{"documentChanges": [{"kind": "create", "options": {"overwrite": 1}}]}"#.into(),
         "documentChanges[0]: 'uri' must be a string"),
        // A later duplicate key wins, as in any JSON object read so far.
        (r#"{"documentChanges": [{"kind": "create", "uri": "file:///a", "kind": "zap"}]}"#.into(),
         "documentChanges[0]: unknown resource operation 'zap'"),
        // Text document edits.
        (r#"{"documentChanges": [5]}"#.into(), "documentChanges[0]: a change must be an object"),
        (r#"{"documentChanges": [{"textDocument": "file:///x", "edits": []}]}"#.into(),
         "documentChanges[0]: a TextDocumentEdit needs 'textDocument'"),
        (r#"{"documentChanges": [{"textDocument": {"uri": null}, "edits": []}]}"#.into(),
         "documentChanges[0]: 'textDocument.uri' must be a string"),
        (r#"{"documentChanges": [{"textDocument": {"uri": "file:///x"}}]}"#.into(),
         "documentChanges[0]: 'edits' must be an array"),
        (document(r#"{"range": 1}"#), "documentChanges[0]: 'edits' must be an array"),
        (r#"{"changes": {"file:///x": 5}}"#.into(), "changes[0]: 'edits' must be an array"),
        (r#"{"changes": {"file:///x": [], "file:///y": [{"newText": "a"}]}}"#.into(),
         "changes[1]: edit 0: missing 'range'"),
        // Text edits.
        (one_edit(r#""newText": "a""#), "documentChanges[0]: edit 0: missing 'range'"),
        (document("[5]"), "documentChanges[0]: edit 0: missing 'range'"),
        (document(&format!(r#"[{{"range": {range}, "newText": "a"}}, "x"]"#)),
         "documentChanges[0]: edit 1: missing 'range'"),
        (one_edit(&format!(r#""range": {range}, "newText": 5"#)),
         "documentChanges[0]: edit 0: 'newText' must be a string"),
        (one_edit(&format!(r#""range": {range}"#)), "documentChanges[0]: edit 0: 'newText' must be a string"),
        (one_edit(&format!(r#""range": {range}, "newText": null"#)),
         "documentChanges[0]: edit 0: 'newText' must be a string"),
        (one_edit(&format!(r#""range": {range}, "newText": "a", "snippet": null"#)),
         "documentChanges[0]: edit 0: a SnippetTextEdit cannot be applied outside the editor"),
        (one_edit(r#""snippet": {"kind": "snippet", "value": "$1"}"#),
         "documentChanges[0]: edit 0: a SnippetTextEdit cannot be applied outside the editor"),
        (one_edit(r#""range": null, "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'line' as a non-negative integer"),
        (one_edit(r#""range": [1, 2], "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'line' as a non-negative integer"),
        (one_edit(r#""range": {"start": {"line": 0, "character": -1}, "end": {"line": 0, "character": 0}}, "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'character' as a non-negative integer"),
        (one_edit(r#""range": {"start": {"line": 1.0, "character": 0}, "end": {"line": 0, "character": 0}}, "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'line' as a non-negative integer"),
        (one_edit(r#""range": {"start": {"line": -0, "character": 0}, "end": {"line": 0, "character": 0}}, "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'line' as a non-negative integer"),
        (one_edit(r#""range": {"start": {"line": 0, "character": 0}, "end": {"line": "0", "character": 0}}, "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'line' as a non-negative integer"),
        (one_edit(r#""range": {"start": {"line": 0, "character": 0}, "end": 3}, "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'line' as a non-negative integer"),
        (one_edit(r#""range": {"start": {"line": 0, "character": 0}, "end": {"line": 18446744073709551616, "character": 0}}, "newText": "a""#),
         "documentChanges[0]: edit 0: a position needs 'line' as a non-negative integer"),
        // Every change is read before any is applied: a bad URI before a bad shape is not reached.
        (r#"{"documentChanges": [{"textDocument": {"uri": "http://x"}, "edits": []}, {"kind": "zap"}]}"#.into(),
         "documentChanges[1]: unknown resource operation 'zap'"),
        // The edit as a whole.
        (r#"{"documentChanges": {}}"#.into(), "'documentChanges' must be an array"),
        (r#"{"edit": {"changes": {}}, "label": 5}"#.into(), "'label' must be a string"),
        (r#"{"changes": {}, "changeAnnotations": []}"#.into(), "'changeAnnotations' must be an object"),
        // Not JSON, or not the JSON LSP defines.
        (r#"{"changes": "#.into(), "<lsp>:1:12: EOF while parsing a value at line 1 column 12"),
        (r#"[1, 2"#.into(), "<lsp>:1:5: invalid type: integer `2`, expected struct Shape at line 1 column 5"),
        (r#"{"changes": 5}"#.into(),
         "<lsp>:1:13: invalid type: integer `5`, expected an object (uri to TextEdit[]) at line 1 column 13"),
        (r#"{"changes": {"a": [], "a": []}}"#.into(),
         "<lsp>:1:30: duplicate key 'a' in 'changes' at line 1 column 30"),
        (r#"{"changes": {}, "changes": {}}"#.into(), "<lsp>:1:25: duplicate field `changes` at line 1 column 25"),
        (one_edit(&format!(r#""range": {range}, "newText": "a", "x": 1e400"#)),
         "<lsp>:1:186: number out of range at line 1 column 186"),
        (one_edit(&format!(r#""range": {range}, "newText": "a", "x": "\ud800""#)),
         "<lsp>:1:189: unexpected end of hex escape at line 1 column 189"),
        (one_edit(&format!(r#""range": {range}, "newText": "a", "x": {}1{}"#, "[".repeat(200), "]".repeat(200))),
         "<lsp>:1:304: recursion limit exceeded at line 1 column 304"),
        (r#"{"changes": {}} x"#.into(), "<lsp>:1:17: trailing characters at line 1 column 17"),
    ]
}

#[test]
fn malformed_shapes_are_refused_with_their_own_message() {
    let repo = Repo::new();
    let mut wrong = Vec::new();
    for (input, reason) in refusals() {
        let json = repo.apply_args_unchanged(LSP, &input, 2).json();
        if json["failureReason"] != reason {
            wrong.push(format!("{input}\n  want {reason}\n  got  {}", json["failureReason"]));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn text_that_is_not_utf8_is_refused_even_where_lsp_defines_no_key() {
    let repo = Repo::new();
    let input = one_edit(&format!(r#""range": {RANGE}, "newText": "a", "x": "\u0001""#));
    let mut bytes = input.into_bytes();
    let at = bytes.windows(6).position(|w| w == b"\\u0001").unwrap();
    bytes.splice(at..at + 6, [0xff]);
    let out = lsp_bytes(&repo, &bytes);
    out.expect(2);
    assert_eq!(out.json()["failureReason"], "<lsp>:1:183: invalid unicode code point at line 1 column 183");
}

/// A repository with `x.txt` and `d/y.txt` committed.
fn repo() -> Repo {
    let repo = Repo::new();
    repo.write("x.txt", "hello world\n");
    repo.write("d/y.txt", "one\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "files"]);
    repo
}

fn uri(repo: &Repo, path: &str) -> String {
    format!("file://{}/{path}", repo.dir.display())
}

fn apply(repo: &Repo, input: &str) {
    let out = repo.apply_args(LSP, input);
    out.expect(0);
    assert_eq!(out.json()["applied"], true, "{out:?}");
}

#[test]
fn keys_lsp_does_not_define_are_ignored_and_a_later_duplicate_wins() {
    let repo = repo();
    let x = uri(&repo, "x.txt");
    // An AnnotatedTextEdit, keys of a newer LSP or of the server, a doubled key, an escaped key,
    // and a `version` of any JSON type.
    let input = format!(
        r#"{{"documentChanges": [{{"textDocument": {{"uri": "{x}", "version": "v1", "extra": [1, {{"a": null}}]}},
            "edits": [{{"range": {RANGE}, "newText": "HI", "annotationId": "a", "future": {{"x": 1.5e3}}}},
                      {{"range": {{"start": {{"line": 0, "character": 6}}, "end": {{"line": 0, "character": 11}}}},
                        "newText": "world", "new\u0054ext": "WORLD"}}],
            "server": true}}],
          "changeAnnotations": {{"a": {{"label": "renamed", "needsConfirmation": false}}}},
          "changes": {{"file:///ignored": 5}}}}"#
    );
    apply(&repo, &input);
    assert_eq!(repo.read("x.txt"), "HI WORLD\n");
}

#[test]
fn resource_operations_take_options_null_absent_or_with_keys_of_other_kinds() {
    let repo = repo();
    let (a, b, y) = (uri(&repo, "a.txt"), uri(&repo, "b.txt"), uri(&repo, "d/y.txt"));
    let input = json!({"documentChanges": [
        {"kind": "create", "uri": a, "options": null},
        {"kind": "create", "uri": a, "options": {"ignoreIfExists": true, "recursive": "n/a"}},
        {"kind": "rename", "oldUri": a, "newUri": b, "options": {"overwrite": null, "ignoreIfNotExists": 3},
         "annotationId": "r"},
        {"kind": "delete", "uri": y, "options": {"recursive": false, "ignoreIfNotExists": false}},
        {"textDocument": {"uri": b, "version": null},
         "edits": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                    "newText": "made\n"}]},
    ]});
    apply(&repo, &input.to_string());
    assert_eq!(repo.read("b.txt"), "made\n");
    assert!(!repo.exists("a.txt") && !repo.exists("d/y.txt"));
}

#[test]
fn null_document_changes_fall_back_to_changes() {
    let repo = repo();
    let input = json!({"documentChanges": null, "changes": {uri(&repo, "x.txt"): [
        {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}, "newText": "bye"}]}});
    apply(&repo, &input.to_string());
    assert_eq!(repo.read("x.txt"), "bye world\n");
}
