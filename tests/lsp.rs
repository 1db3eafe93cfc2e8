//! `git atomic apply --lsp` (SPEC §8): WorkspaceEdits recorded from real language servers applied
//! and compared with the reference applier's result (tests/lsp/reference.py wrote each case's
//! after/), then every refusal an editor can meet, each leaving the repository unchanged.

mod common;

use common::{Outcome, Repo};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

const LSP: &[&str] = &["apply", "--lsp", "--json", "-"];

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lsp")
}

/// Every regular file below `top`, relative path → bytes.
fn tree(top: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![top.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                if entry.file_name() != ".git" {
                    dirs.push(path);
                }
            } else {
                let rel = path.strip_prefix(top).unwrap().to_string_lossy().into_owned();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A repository whose work tree holds `files` (README removed), uncommitted.
fn repo_with(files: &BTreeMap<String, Vec<u8>>) -> Repo {
    let repo = Repo::new();
    std::fs::remove_file(repo.path("README")).unwrap();
    for (path, bytes) in files {
        let full = repo.path(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, bytes).unwrap();
    }
    repo
}

/// A recorded edit with its placeholder root (`file:///ROOT`, or pylsp's `file:\/\/\/ROOT`)
/// pointed at the repository.
fn rooted(text: &str, repo: &Repo) -> String {
    let root = repo.dir.to_str().unwrap();
    text.replace("file:\\/\\/\\/ROOT", &format!("file:\\/\\/{}", root.replace('/', "\\/")))
        .replace("file:///ROOT", &format!("file://{root}"))
}

fn uri(repo: &Repo, path: &str) -> String {
    format!("file://{}/{path}", repo.dir.display())
}

fn edit(line: u64, from: u64, to: u64, text: &str) -> serde_json::Value {
    json!({"range": {"start": {"line": line, "character": from}, "end": {"line": line, "character": to}}, "newText": text})
}

fn text_edit(repo: &Repo, path: &str, edits: serde_json::Value) -> serde_json::Value {
    json!({"textDocument": {"uri": uri(repo, path), "version": 1}, "edits": edits})
}

fn lsp(repo: &Repo, input: &serde_json::Value) -> Outcome {
    repo.apply_args(LSP, &input.to_string())
}

/// Applies `input`, expecting `code` and an untouched repository; returns the JSON result.
fn refused(repo: &Repo, input: &serde_json::Value, code: i32) -> serde_json::Value {
    let json = repo.apply_args_unchanged(LSP, &input.to_string(), code).json();
    assert_eq!(json["applied"], false, "{json}");
    assert!(json["failureReason"].as_str().is_some_and(|r| !r.is_empty()), "{json}");
    json
}

#[test]
fn recorded_server_edits_apply_as_the_reference_applier_says() {
    let mut cases = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let case = entry.unwrap().path();
        let input = ["edit.json", "server.json"].iter().map(|f| case.join(f)).find(|p| p.exists());
        let Some(input) = input else { continue };
        let repo = repo_with(&tree(&case.join("before")));
        let text = rooted(&std::fs::read_to_string(&input).unwrap(), &repo);
        // The encoding the server's columns really count (meta.json says why when it is not UTF-16).
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("meta.json")).unwrap()).unwrap();
        let encoding = meta["encoding"].as_str().unwrap();
        let out = repo.apply_args(&["apply", "--lsp", "--json", "--position-encoding", encoding, "-"], &text);
        assert_eq!(out.code, 0, "{}: {out:#?}", case.display());
        assert_eq!(out.json()["applied"], true);
        let mut got = tree(&repo.dir);
        got.remove("README");
        let want = tree(&case.join("after"));
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{}", case.display());
        for (path, bytes) in &want {
            assert_eq!(
                String::from_utf8_lossy(&got[path]),
                String::from_utf8_lossy(bytes),
                "{}: {path}",
                case.display()
            );
        }
        cases += 1;
    }
    assert!(cases >= 6, "the recorded cases are missing: {cases}");
}

#[test]
fn positions_count_utf16_by_default_and_other_encodings_on_request() {
    // "aé😀b": b starts at byte 7, UTF-16 unit 4, code point 3.
    for (encoding, column) in [(None, 4), (Some("utf-16"), 4), (Some("utf-8"), 7), (Some("utf-32"), 3)] {
        let files = BTreeMap::from([("x.txt".to_string(), "aé😀b = 1\n".as_bytes().to_vec())]);
        let repo = repo_with(&files);
        let input = json!({"changes": {uri(&repo, "x.txt"): [edit(0, column, column + 1, "B")]}});
        let mut args = vec!["apply", "--lsp", "--json"];
        if let Some(e) = encoding {
            args.extend(["--position-encoding", e]);
        }
        args.push("-");
        repo.apply_args(&args, &input.to_string()).expect(0);
        assert_eq!(repo.read("x.txt"), "aé😀B = 1\n", "{encoding:?}");
    }
    let files = BTreeMap::from([("x.txt".to_string(), "aé😀b = 1\n".as_bytes().to_vec())]);
    let repo = repo_with(&files);
    // UTF-16 unit 3 is inside the surrogate pair of 😀.
    let json = refused(&repo, &json!({"changes": {uri(&repo, "x.txt"): [edit(0, 3, 3, "!")]}}), 2);
    assert_eq!(json["failedChange"], 0);
}

#[test]
fn crlf_and_a_missing_final_newline_are_kept() {
    let files = BTreeMap::from([
        ("w.txt".to_string(), b"one\r\ntwo\r\n".to_vec()),
        ("n.txt".to_string(), b"one\ntwo".to_vec()),
    ]);
    let repo = repo_with(&files);
    let whole = |text: &str| json!({"range": {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}, "newText": text});
    let input = json!({"changes": {
        uri(&repo, "w.txt"): [edit(1, 0, 3, "2\nthree")],
        uri(&repo, "n.txt"): [whole("uno\ndos\n")],
    }});
    lsp(&repo, &input).expect(0);
    assert_eq!(std::fs::read(repo.path("w.txt")).unwrap(), b"one\r\n2\r\nthree\r\n");
    assert_eq!(repo.read("n.txt"), "uno\ndos");
}

#[test]
fn resource_operations_follow_lsp_and_later_changes_see_earlier_ones() {
    let files = BTreeMap::from([
        ("a.txt".to_string(), b"alpha\n".to_vec()),
        ("b.txt".to_string(), b"beta\n".to_vec()),
        ("old/x.txt".to_string(), b"x\n".to_vec()),
        ("gone/y.txt".to_string(), b"y\n".to_vec()),
    ]);
    let repo = repo_with(&files);
    let input = json!({"label": "refactor", "edit": {"documentChanges": [
        {"kind": "create", "uri": uri(&repo, "new/c.txt")},
        text_edit(&repo, "new/c.txt", json!([edit(0, 0, 0, "gamma\n")])),
        {"kind": "rename", "oldUri": uri(&repo, "a.txt"), "newUri": uri(&repo, "moved/a.txt")},
        text_edit(&repo, "moved/a.txt", json!([edit(0, 0, 5, "ALPHA")])),
        // jedi-language-server sets both: overwrite wins.
        {"kind": "rename", "oldUri": uri(&repo, "b.txt"), "newUri": uri(&repo, "moved/a2.txt"),
         "options": {"overwrite": true, "ignoreIfExists": true}},
        {"kind": "rename", "oldUri": uri(&repo, "old"), "newUri": uri(&repo, "new/sub")},
        {"kind": "delete", "uri": uri(&repo, "gone"), "options": {"recursive": true}},
        {"kind": "delete", "uri": uri(&repo, "never.txt"), "options": {"ignoreIfNotExists": true}},
        {"kind": "create", "uri": uri(&repo, "new/c.txt"), "options": {"ignoreIfExists": true}},
    ]}});
    let json = lsp(&repo, &input).expect(0).json();
    assert_eq!(json["applied"], true);
    let mut got = tree(&repo.dir);
    got.remove("README");
    let want = BTreeMap::from([
        ("new/c.txt".to_string(), b"gamma\n".to_vec()),
        ("moved/a.txt".to_string(), b"ALPHA\n".to_vec()),
        ("moved/a2.txt".to_string(), b"beta\n".to_vec()),
        ("new/sub/x.txt".to_string(), b"x\n".to_vec()),
    ]);
    assert_eq!(got, want);
    assert!(!repo.exists("gone") && !repo.exists("old"), "emptied directories are removed");
    // A file only moved is a rename, not a copy.
    assert!(json["files"].as_array().unwrap().iter().any(|f| f["action"] == "rename"), "{json}");
}

#[test]
fn emit_batch_prints_the_batch_with_what_was_read_as_expect() {
    let files = BTreeMap::from([("a.txt".to_string(), b"alpha\n".to_vec())]);
    let repo = repo_with(&files);
    let blob = repo.blob_of("a.txt");
    let input = json!({"changes": {uri(&repo, "a.txt"): [edit(0, 0, 1, "A")]}});
    let out = repo.apply_args(&["apply", "--lsp", "--emit-batch", "-"], &input.to_string());
    out.expect(0);
    let batch = out.json();
    assert_eq!(batch["message"], "LSP workspace edit");
    assert_eq!(batch["files"], json!([{"write": "a.txt", "content": "Alpha\n", "expect": blob}]));
    assert_eq!(repo.read("a.txt"), "alpha\n", "--emit-batch changes nothing");
    // The file changes after it was read: the batch is refused, nothing is overwritten.
    repo.write("a.txt", "changed\n");
    let json = repo.apply_unchanged(&out.stdout, 1).json();
    assert_eq!(json["error"]["kind"], "precondition");
}

#[test]
fn the_message_is_the_label_with_the_change_annotations() {
    let files = BTreeMap::from([("a.txt".to_string(), b"alpha\n".to_vec())]);
    let repo = repo_with(&files);
    let input = json!({"label": "Rename symbol", "edit": {
        "changes": {uri(&repo, "a.txt"): [edit(0, 0, 1, "A")]},
        "changeAnnotations": {"r": {"label": "rename alpha", "needsConfirmation": false}},
    }});
    let out = repo.apply_args(&["apply", "--lsp", "--emit-batch", "-"], &input.to_string());
    assert_eq!(out.expect(0).json()["message"], "Rename symbol (rename alpha)");
    let out = repo.apply_args(&["apply", "--lsp", "--emit-batch", "-m", "mine", "-"], &input.to_string());
    assert_eq!(out.expect(0).json()["message"], "mine", "-m wins");
}

#[test]
fn overlapping_edits_are_invalid_and_name_the_change() {
    let files =
        BTreeMap::from([("a.txt".to_string(), b"abcdef\n".to_vec()), ("b.txt".to_string(), b"b\n".to_vec())]);
    let repo = repo_with(&files);
    let input = json!({"documentChanges": [
        text_edit(&repo, "b.txt", json!([edit(0, 0, 1, "B")])),
        text_edit(&repo, "a.txt", json!([edit(0, 0, 3, "x"), edit(0, 2, 4, "y")])),
    ]});
    let json = refused(&repo, &input, 2);
    assert_eq!(json["failedChange"], 1);
    assert!(json["failureReason"].as_str().unwrap().contains("overlap"), "{json}");
}

#[test]
fn failed_change_indexes_changes_in_the_order_given() {
    let files = BTreeMap::from([("z.txt".to_string(), b"z\n".to_vec())]);
    let repo = repo_with(&files);
    // Sorted, "a-missing" would come first; in the order given it is the second.
    let text = format!(
        r#"{{"changes": {{"{}": [{}], "{}": [{}]}}}}"#,
        uri(&repo, "z.txt"),
        edit(0, 0, 1, "Z"),
        uri(&repo, "a-missing.txt"),
        edit(0, 0, 0, "a")
    );
    let json = repo.apply_args_unchanged(LSP, &text, 2).json();
    assert_eq!(json["failedChange"], 1, "{json}");
}

#[test]
fn positions_past_a_line_or_the_file_are_invalid() {
    let files = BTreeMap::from([("a.txt".to_string(), b"abc\ndef\n".to_vec())]);
    let repo = repo_with(&files);
    for bad in [edit(0, 4, 4, "x"), edit(3, 0, 0, "x"), edit(9, 0, 0, "x")] {
        refused(&repo, &json!({"changes": {uri(&repo, "a.txt"): [bad]}}), 2);
    }
}

#[test]
fn uris_outside_the_work_tree_or_into_git_are_invalid() {
    let files = BTreeMap::from([("a.txt".to_string(), b"a\n".to_vec())]);
    let repo = repo_with(&files);
    let outside = repo.tmp.path().join("outside.txt");
    std::fs::write(&outside, "secret\n").unwrap();
    let root = repo.dir.display().to_string();
    for bad in [
        format!("file://{}", outside.display()),
        format!("file://{root}/../outside.txt"),
        format!("file://{root}/a%2F..%2F..%2Foutside.txt"),
        format!("file://{root}/.git/config"),
        format!("file://{root}/.GIT/config"),
        "untitled:Untitled-1".to_string(),
    ] {
        let json = refused(&repo, &json!({"changes": {bad.clone(): [edit(0, 0, 0, "x")]}}), 2);
        assert_eq!(json["failedChange"], 0, "{bad}");
    }
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret\n");
}

#[test]
fn percent_encoded_uris_name_their_files() {
    let files = BTreeMap::from([("dir with space/ü.txt".to_string(), b"u\n".to_vec())]);
    let repo = repo_with(&files);
    let encoded = format!("file://{}/dir%20with%20space/%C3%BC.txt", repo.dir.display());
    lsp(&repo, &json!({"changes": {encoded: [edit(0, 0, 1, "U")]}})).expect(0);
    assert_eq!(repo.read("dir with space/ü.txt"), "U\n");
}

#[test]
fn symlinks_are_never_edited_or_followed() {
    let files = BTreeMap::from([("a.txt".to_string(), b"a\n".to_vec())]);
    let repo = repo_with(&files);
    let outside = repo.tmp.path().join("target");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("t.txt"), "t\n").unwrap();
    std::os::unix::fs::symlink(&outside, repo.path("link")).unwrap();
    std::os::unix::fs::symlink("a.txt", repo.path("alias.txt")).unwrap();
    refused(&repo, &json!({"changes": {uri(&repo, "link/t.txt"): [edit(0, 0, 1, "x")]}}), 1);
    refused(&repo, &json!({"changes": {uri(&repo, "alias.txt"): [edit(0, 0, 1, "x")]}}), 2);
    assert_eq!(std::fs::read_to_string(outside.join("t.txt")).unwrap(), "t\n");
}

#[test]
fn missing_files_and_existing_targets_are_refused() {
    let files =
        BTreeMap::from([("a.txt".to_string(), b"a\n".to_vec()), ("d/x.txt".to_string(), b"x\n".to_vec())]);
    let repo = repo_with(&files);
    // An edit to a file that does not exist and is not created earlier: invalid.
    refused(&repo, &json!({"changes": {uri(&repo, "nope.txt"): [edit(0, 0, 0, "x")]}}), 2);
    // Create, rename onto, delete: LSP's options decide; without them, refused.
    let cases = [
        json!({"kind": "create", "uri": uri(&repo, "a.txt")}),
        json!({"kind": "rename", "oldUri": uri(&repo, "d/x.txt"), "newUri": uri(&repo, "a.txt")}),
        json!({"kind": "rename", "oldUri": uri(&repo, "nope.txt"), "newUri": uri(&repo, "b.txt")}),
        json!({"kind": "delete", "uri": uri(&repo, "nope.txt")}),
        json!({"kind": "delete", "uri": uri(&repo, "d")}),
    ];
    for op in cases {
        let input = json!({"documentChanges": [text_edit(&repo, "a.txt", json!([edit(0, 0, 1, "A")])), op]});
        let json = refused(&repo, &input, 1);
        assert_eq!(json["failedChange"], 1, "{json}");
    }
}

#[test]
fn dry_run_changes_nothing_and_an_empty_edit_applies() {
    let files = BTreeMap::from([("a.txt".to_string(), b"a\n".to_vec())]);
    let repo = repo_with(&files);
    let input = json!({"changes": {uri(&repo, "a.txt"): [edit(0, 0, 1, "A")]}});
    let json = repo
        .apply_args_unchanged(&["apply", "--lsp", "--dry-run", "--json", "-"], &input.to_string(), 0)
        .json();
    assert_eq!(json["status"], "would-apply");
    assert_eq!(json["applied"], true);
    let json = lsp(&repo, &json!({"changes": {}})).expect(0).json();
    assert_eq!(json["applied"], true);
    assert_eq!(repo.read("a.txt"), "a\n");
}

#[test]
fn a_moved_file_keeps_its_mode_whether_edited_or_not() {
    use std::os::unix::fs::PermissionsExt;
    let files = BTreeMap::from([
        ("run.sh".to_string(), b"#!/bin/sh\necho a\n".to_vec()),
        ("tool.sh".to_string(), b"#!/bin/sh\necho t\n".to_vec()),
    ]);
    let repo = repo_with(&files);
    for f in ["run.sh", "tool.sh"] {
        std::fs::set_permissions(repo.path(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let input = json!({"documentChanges": [
        {"kind": "rename", "oldUri": uri(&repo, "run.sh"), "newUri": uri(&repo, "bin/run.sh")},
        {"kind": "rename", "oldUri": uri(&repo, "tool.sh"), "newUri": uri(&repo, "bin/tool.sh")},
        text_edit(&repo, "bin/tool.sh", json!([edit(1, 5, 6, "T")])),
    ]});
    lsp(&repo, &input).expect(0);
    assert!(repo.is_executable("bin/run.sh") && repo.is_executable("bin/tool.sh"));
    assert_eq!(repo.read("bin/tool.sh"), "#!/bin/sh\necho T\n");
    assert!(!repo.exists("run.sh") && !repo.exists("tool.sh"));
}

/// A file whose `lstat` vouches for what the conversion read (changed long enough before) is
/// applied without the check reading it again; one changed after the conversion read it is read
/// again by the check, and refuses the edit (1) instead of being overwritten.
#[test]
fn a_file_changed_after_the_conversion_read_it_refuses_the_edit() {
    let repo = Repo::new();
    repo.write("a.txt", "alpha\n");
    repo.write("b.txt", "beta\n");
    std::thread::sleep(std::time::Duration::from_millis(200)); // changed long enough ago
    lsp(&repo, &json!({"changes": {uri(&repo, "b.txt"): [edit(0, 0, 1, "B")]}})).expect(0);
    assert_eq!(repo.read("b.txt"), "Beta\n");

    let go = repo.tmp.path().join("go");
    let input = repo.tmp.path().join("edit.json");
    std::fs::write(&input, json!({"changes": {uri(&repo, "a.txt"): [edit(0, 0, 1, "A")]}}).to_string())
        .unwrap();
    let child = repo
        .atomic_cmd(LSP)
        .env("GIT_TEST_ATOMIC_PAUSE", format!("converted:{}", go.display()))
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let paused = repo.tmp.path().join("go.paused");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !paused.exists() {
        assert!(std::time::Instant::now() < deadline, "apply never paused after the conversion");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    repo.write("a.txt", "ALPHA\n"); // the same size: only the lstat's times tell
    std::fs::write(&go, b"").unwrap();
    let out = Outcome::from(child.wait_with_output().unwrap());
    assert!(out.json()["failureReason"].is_string(), "{}", out.stdout);
    out.expect(1);
    assert_eq!(repo.read("a.txt"), "ALPHA\n");
}
