//! Issue 20: `schema/batch.schema.json` is a draft 2020-12 schema of the batch format that
//! editors use to validate and complete batch files. Every example batch passes it, and on a set
//! of batches it agrees with git-atomic itself: the schema accepts a batch exactly when git-atomic
//! does not refuse it as invalid (exit 2).
//!
//! Only structural rules are in the cases: keys, types, one action per entry, exactly one content
//! source, the spelling of object ids, modes and paths. What needs the repository (a revision that
//! does not resolve, an object that is missing, two entries on one ref or path, a `.git` path in
//! one of git's many spellings, a path through a symlink, an id of the wrong hash length,
//! `git check-ref-format`) is git-atomic's alone, so no case here depends on it: the schema
//! checks a necessary condition there, and `git atomic apply --dry-run` the rest.

mod common;
#[path = "common/schema.rs"]
mod schema;

use common::Repo;
use std::path::Path;

const ID: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = schema::schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    jsonschema::meta::validate(&schema).expect("the schema passes its meta-schema");
    schema::validator();
}

#[test]
fn every_example_batch_passes_the_schema_once_its_placeholders_are_filled() {
    let validator = schema::validator();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/batches");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../schema/batch.schema.json\n"),
            "{} names the schema for editors",
            path.display()
        );
        let names = schema::placeholders(&text);
        let values: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), ID)).collect();
        let batch = schema::yaml_to_json(&schema::fill(&text, &values));
        let errors = schema::errors(&validator, &batch);
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} example batches in {}", dir.display());
}

/// Batches git-atomic accepts (it applies them or refuses a precondition: exit 0 or 1), in a
/// repository with `README`, `a.txt` and branch `main`.
const VALID: &[&str] = &[
    "refs:\n  - update: refs/heads/main\n    to: HEAD\n",
    "version: 1\nmessage: every ref verb\nrefs:\n  - update: refs/heads/new\n    to: HEAD\n    from: absent\n  - create: refs/heads/topic\n    to: main\n  - delete: refs/heads/gone\n  - verify: refs/tags/none\n    is: absent\n  - update: HEAD\n    to: main~0\n",
    "refs:\n  - update: refs/heads/main\n    to: HEAD\n    from: 0123456789abcdef0123456789abcdef01234567\n  - delete: refs/heads/x\n    from: 0123456789ABCDEF0123456789ABCDEF01234567\n",
    "files:\n  - write: new/file.txt\n    content: |\n      two\n      lines\n    mode: \"100755\"\n    expect: absent\n",
    "files:\n  - write: bin.dat\n    base64: AAEC\n    mode: 100644\n  - write: copy.txt\n    blob: HEAD:README\n  - write: link\n    content: README\n    mode: 120000\n",
    "files:\n  - write: from-source.txt\n    source: README\n  - write: empty\n    content: \"\"\n",
    "files:\n  - delete: a.txt\n    expect: present\n  - delete: never-was.txt\n  - rename: README\n    to: docs/README.md\n    expect: 0123456789abcdef0123456789abcdef01234567\n",
    "refs:\nfiles:\n  - write: .hidden/x..y\n    content: dots inside a name are fine\nrepositories:\n",
    "{\"message\": \"JSON\", \"files\": [{\"write\": \"j.txt\", \"content\": \"x\"}], \"refs\": []}",
];

/// Batches git-atomic refuses as invalid (exit 2) for a reason the schema sees too.
const INVALID: &[&str] = &[
    "",
    "# only a comment\n",
    "- update: refs/heads/main\n  to: HEAD\n",
    "refs: []\n",
    "refs:\nfiles: []\n",
    "version: 2\nrefs:\n  - update: refs/heads/main\n    to: HEAD\n",
    "version: \"1\"\nrefs:\n  - update: refs/heads/main\n    to: HEAD\n",
    "message: 5\nrefs:\n  - update: refs/heads/main\n    to: HEAD\n",
    "file:\n  - write: a\n    content: x\n",
    "refs:\n  update: refs/heads/main\n  to: HEAD\n",
    "refs:\n  - refs/heads/main\n",
    "refs:\n  - to: HEAD\n",
    "refs:\n  - update: refs/heads/main\n    delete: refs/heads/main\n    to: HEAD\n",
    "refs:\n  - update: refs/heads/main\n",
    "refs:\n  - update: refs/heads/main\n    too: HEAD\n",
    "refs:\n  - delete: refs/heads/main\n    to: HEAD\n",
    "refs:\n  - update: refs/heads/main\n    to: 1234567\n",
    "refs:\n  - update: main\n    to: HEAD\n",
    "refs:\n  - delete: refs/heads/main\n    from: absent\n",
    "refs:\n  - update: refs/heads/main\n    to: HEAD\n    from: main\n",
    "refs:\n  - update: refs/heads/main\n    to: HEAD\n    from: 0123456\n",
    "refs:\n  - verify: refs/heads/main\n",
    "refs:\n  - verify: refs/heads/main\n    is: present\n",
    "refs:\n  - symref: HEAD\n",
    "refs:\n  - symref: HEAD\n    to: main\n",
    "files:\n  - write: a\n",
    "files:\n  - write: a\n    content: x\n    base64: eA==\n",
    "files:\n  - write: a\n    content: 5\n",
    "files:\n  - write: a\n    content: x\n    mode: \"644\"\n",
    "files:\n  - write: a\n    content: x\n    mode: 100600\n",
    "files:\n  - write: a\n    content: x\n    expect: maybe\n",
    "files:\n  - write: a\n    content: x\n    expect: 3b18e51\n",
    "files:\n  - rename: a\n",
    "files:\n  - rename: a\n    to: b\n    mode: \"100644\"\n",
    "files:\n  - delete: a\n    expect: present\n    content: x\n",
    "files:\n  - write: /etc/passwd\n    content: x\n",
    "files:\n  - write: ../outside\n    content: x\n",
    "files:\n  - write: a/./b\n    content: x\n",
    "files:\n  - write: a//b\n    content: x\n",
    "files:\n  - write: dir/\n    content: x\n",
    "files:\n  - write: a\\b\n    content: x\n",
    "files:\n  - rename: a.txt\n    to: ../b\n",
    "files:\n  - write: \"\"\n    content: x\n",
    "{\"files\": [{\"write\": \"a\", \"content\": \"x\", \"extra\": true}]}",
];

/// `git atomic apply --dry-run` of each case: whether git-atomic refused it as invalid (exit 2).
fn invalid_to_git_atomic(repo: &Repo, batch: &str) -> bool {
    let out = repo.apply_args(&["apply", "--dry-run", "-"], batch);
    assert!(matches!(out.code, 0..=2), "{batch:?}: {out:#?}");
    out.code == 2
}

fn case_repo() -> Repo {
    let repo = Repo::new();
    repo.write("a.txt", "a\n");
    repo
}

#[test]
fn the_schema_and_git_atomic_agree_on_valid_and_invalid_batches() {
    let validator = schema::validator();
    let repo = case_repo();
    let mut disagreements = Vec::new();
    for (cases, valid) in [(VALID, true), (INVALID, false)] {
        for batch in cases {
            let schema_errors = schema::errors(&validator, &schema::yaml_to_json(batch));
            let schema_says = schema_errors.is_empty();
            let git_atomic_says = !invalid_to_git_atomic(&repo, batch);
            if schema_says != valid || git_atomic_says != valid {
                disagreements.push(format!(
                    "{batch:?} should be {}: schema {schema_says} {schema_errors:?}, git-atomic {git_atomic_says}",
                    if valid { "valid" } else { "invalid" }
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn a_symref_entry_agrees_too() {
    // A `symref` entry needs git 2.46; with an older git it is invalid (2) whatever its shape.
    if !common::needs_git("a_symref_entry_agrees_too", (2, 46)) {
        return;
    }
    let repo = case_repo();
    let batch = "refs:\n  - symref: refs/heads/alias\n    to: refs/heads/main\n";
    assert!(schema::errors(&schema::validator(), &schema::yaml_to_json(batch)).is_empty());
    assert!(!invalid_to_git_atomic(&repo, batch));
}

/// `repositories:` cases, applied for real (a dry run of such a batch is always invalid), in a
/// repository with a sibling repository `../other`.
#[test]
fn the_schema_and_git_atomic_agree_on_repositories() {
    let validator = schema::validator();
    let cases: &[(&str, bool)] = &[
        (
            "repositories:\n  - path: ../other\n    refs:\n      - update: refs/heads/x\n        to: HEAD\n",
            true,
        ),
        (
            "files:\n  - write: top.txt\n    content: x\nrepositories:\n  - path: ../other\n    files:\n      - write: o.txt\n        content: o\n",
            true,
        ),
        ("repositories:\n  - path: ../other\n", false),
        ("repositories:\n  - path: ../other\n    refs: []\n    files:\n", false),
        ("repositories:\n  - refs:\n      - update: refs/heads/x\n        to: HEAD\n", false),
        (
            "repositories:\n  - path: ../other\n    message: no\n    refs:\n      - update: refs/heads/x\n        to: HEAD\n",
            false,
        ),
        ("repositories:\n  path: ../other\n", false),
        (
            "repositories:\n  - path: ../other\n    refs:\n      - update: refs/heads/x\n        to: HEAD\n        from: HEAD\n",
            false,
        ),
    ];
    let repo = Repo::new();
    repo.git_in(repo.tmp.path(), &["init", "-q", "-b", "main", "other"]);
    repo.git_in(&repo.tmp.path().join("other"), &["commit", "-q", "--allow-empty", "-m", "other"]);
    for (batch, valid) in cases {
        let schema_errors = schema::errors(&validator, &schema::yaml_to_json(batch));
        assert_eq!(schema_errors.is_empty(), *valid, "{batch:?}: {schema_errors:?}");
        let out = repo.apply(batch);
        assert_eq!(out.code, if *valid { 0 } else { 2 }, "{batch:?}: {out:#?}");
    }
}

#[test]
fn a_batch_git_atomic_emits_for_an_editor_passes_the_schema() {
    let repo = case_repo();
    let edit = serde_json::json!({"documentChanges": [
        {"textDocument": {"uri": format!("file://{}/a.txt", repo.dir.display()), "version": 1},
         "edits": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}, "newText": "b"}]},
        {"kind": "rename", "oldUri": format!("file://{}/README", repo.dir.display()),
         "newUri": format!("file://{}/docs/README", repo.dir.display())},
        {"kind": "create", "uri": format!("file://{}/new.txt", repo.dir.display())},
    ]});
    let out = repo.apply_args(&["apply", "--lsp", "--emit-batch", "-"], &edit.to_string());
    out.expect(0);
    let batch: serde_json::Value = serde_json::from_str(&out.stdout).expect("a JSON batch");
    let errors = schema::errors(&schema::validator(), &batch);
    assert!(errors.is_empty(), "{batch:#}: {errors:#?}");
}
