//! Fuzzing of parse + validate (issue 16) with proptest: near-valid batches built from pools of
//! real and hostile keys, verbs, names, paths and values, and byte-level mutations of the seed
//! corpus in `tests/corpus/`. Whatever the input, parsing and validation must not panic (nor
//! overflow the stack), every error is an invalid batch (2) or a refusal (1) with a message, and
//! nothing in the repository changes. The case counts are bounded so that this runs in the normal
//! suite; `FUZZ_CASES=N` runs more.

mod common;

use common::{Repo, assert_snapshots_equal};
use git_atomic::error::Kind;
use git_atomic::parse;
use git_atomic::validate::{self, BatchLabel, Options};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::atomic::{AtomicUsize, Ordering};

const VERBS: &[&str] = &["update", "create", "delete", "verify", "symref", "updat", "veryfy", "write"];
const FILE_VERBS: &[&str] = &["write", "delete", "rename", "writ", "remove", "update"];
const REF_KEYS: &[&str] = &["to", "from", "is", "too", "form", "content"];
const FILE_KEYS: &[&str] =
    &["content", "base64", "blob", "source", "mode", "expect", "to", "contnet", "mdoe"];
const REF_NAMES: &[&str] = &[
    "refs/heads/main",
    "refs/heads/x",
    "HEAD",
    "refs/tags/t",
    "refs/tags/t/u",
    "hooks/pre-commit",
    "refs/heads/a..b",
    "refs/heads/\u{200c}",
    "refs/heads/x.lock",
    "",
    "refs/heads/main/x",
];
const PATHS: &[&str] = &[
    "a",
    "src/a.rs",
    "README",
    ".git/config",
    "a/.git::$INDEX_ALLOCATION/x",
    "git~1/x",
    ".gitmodules",
    "x/.g\u{200c}it/y",
    "../x",
    "/etc/passwd",
    "a\\b",
    "a//b",
    "",
    "sub/dir/file",
    "link/x",
];
const VALUES: &[&str] = &[
    "HEAD",
    "main",
    "absent",
    "present",
    "HEAD^{tree}",
    "HEAD~1",
    "0000000000000000000000000000000000000000",
    "ce013625030ba8dba906f756967f9e9ca394464a",
    "100644",
    "120000",
    "100755",
    "eA==",
    "!!!",
    "x",
    "",
    "../../etc/passwd",
    "/proc/self/environ",
    "README",
    "refs/heads/main",
];
const SCALARS: &[&str] =
    &["1", "~", "true", "[x]", "{a: b}", "*a", "&a x", "\"q\"", "'s'", "|\n      block", "1.5"];

/// A YAML mapping entry `- verb: name` with a few more keys.
fn entry(
    verbs: &'static [&'static str],
    keys: &'static [&'static str],
    names: &'static [&'static str],
) -> impl Strategy<Value = String> {
    let key_value = (prop::sample::select(keys), value());
    (prop::sample::select(verbs), prop::sample::select(names), prop::collection::vec(key_value, 0..4))
        .prop_map(|(verb, name, pairs)| {
            let mut text = format!("  - {verb}: {}\n", quoted(name));
            for (key, value) in pairs {
                text.push_str(&format!("    {key}: {value}\n"));
            }
            text
        })
}

/// An entry with the keys its verb takes (values still from the pools): most get past parsing.
fn well_formed(refs: bool) -> impl Strategy<Value = String> {
    let shapes: &'static [&'static [&'static str]] = if refs {
        &[
            &["update", "to"],
            &["update", "to", "from"],
            &["create", "to"],
            &["delete"],
            &["delete", "from"],
            &["verify", "is"],
            &["symref", "to"],
        ]
    } else {
        &[
            &["write", "content"],
            &["write", "base64", "mode"],
            &["write", "blob", "expect"],
            &["write", "source"],
            &["write", "content", "mode"],
            &["delete", "expect"],
            &["rename", "to"],
        ]
    };
    let names = if refs { REF_NAMES } else { PATHS };
    (prop::sample::select(shapes), prop::sample::select(names), prop::collection::vec(value(), 3)).prop_map(
        |(shape, name, values)| {
            let mut text = format!("  - {}: {}\n", shape[0], quoted(name));
            for (key, value) in shape[1..].iter().zip(values) {
                text.push_str(&format!("    {key}: {value}\n"));
            }
            text
        },
    )
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(VALUES).prop_map(quoted),
        1 => prop::sample::select(SCALARS).prop_map(str::to_string),
        1 => "[ -~]{0,12}".prop_map(|s| quoted(&s)),
    ]
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A whole near-valid batch.
fn batch() -> impl Strategy<Value = String> {
    let header = prop::sample::select(
        &[
            "",
            "",
            "",
            "version: 1\n",
            "message: m\n",
            "version: 1\nmessage: m\n",
            "version: 2\n",
            "vresion: 1\n",
        ][..],
    );
    (
        header,
        prop::collection::vec(
            prop_oneof![8 => well_formed(true), 1 => entry(VERBS, REF_KEYS, REF_NAMES)],
            0..4,
        ),
        prop::collection::vec(
            prop_oneof![8 => well_formed(false), 1 => entry(FILE_VERBS, FILE_KEYS, PATHS)],
            0..4,
        ),
    )
        .prop_map(|(header, refs, files)| {
            let mut text = header.to_string();
            if !refs.is_empty() {
                text.push_str("refs:\n");
                text.extend(refs);
            }
            if !files.is_empty() {
                text.push_str("files:\n");
                text.extend(files);
            }
            text
        })
}

/// The seed corpus, each file mutated at a few places with bytes that matter to YAML.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(seeds.len() >= 5, "the seed corpus is in tests/corpus");
    let edit = (
        any::<prop::sample::Index>(),
        prop::sample::select(&b":-[]{}&*!|>'\"\n\t #,?\\\x00\xff"[..]),
        0..3u8,
    );
    (prop::sample::select(seeds), prop::collection::vec(edit, 0..6)).prop_map(|(mut bytes, edits)| {
        for (at, byte, how) in edits {
            let i = at.index(bytes.len() + 1);
            match how {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => {}
            }
        }
        bytes
    })
}

/// How many inputs got how far: parsed, and validated into a batch.
static PARSED: AtomicUsize = AtomicUsize::new(0);
static VALID: AtomicUsize = AtomicUsize::new(0);

/// Parses and validates one input; returns a description of any broken property.
fn check_one(repo: &git_atomic::repo::Repo, bytes: &[u8]) -> Result<(), TestCaseError> {
    let parsed = match parse::parse(bytes, "fuzz") {
        Ok(parsed) => parsed,
        Err(e) => {
            prop_assert_eq!(e.kind, Kind::Invalid, "parse error of the wrong kind: {}", e);
            prop_assert!(!e.message.is_empty());
            return Ok(());
        }
    };
    PARSED.fetch_add(1, Ordering::Relaxed);
    let identity = BatchLabel::new(&parsed, None);
    match validate::validate_with(parsed, repo, identity, Options::default()) {
        Ok((_, refusals)) => {
            VALID.fetch_add(1, Ordering::Relaxed);
            for e in refusals {
                prop_assert_eq!(e.kind, Kind::Refused, "{}", e);
                prop_assert!(e.entry.is_some(), "a refusal names its entry: {}", e);
            }
        }
        Err(e) => {
            prop_assert!(
                matches!(e.kind, Kind::Invalid | Kind::Refused),
                "validation error of kind {:?}: {}",
                e.kind,
                e
            );
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

#[test]
fn parse_and_validate_survive_near_valid_and_mutated_batches() {
    let fixture = Repo::new();
    fixture.write("sub/dir/file", "f\n");
    std::os::unix::fs::symlink("/tmp", fixture.path("link")).unwrap();
    fixture.git(&["tag", "t"]);
    let before = fixture.snapshot();
    let git = which::which(common::git_binary()).unwrap();
    let dot_git = fixture.path(".git");
    let repo =
        git_atomic::repo::Repo::open(git, dot_git.clone(), dot_git, Some(fixture.dir.clone())).unwrap();
    let tried = AtomicUsize::new(0);
    let config = |n| Config { cases: cases(n), failure_persistence: None, ..Config::default() };

    let mut runner = TestRunner::new(config(1000));
    runner
        .run(&batch(), |text| {
            tried.fetch_add(1, Ordering::Relaxed);
            check_one(&repo, text.as_bytes())
        })
        .unwrap();
    let mut runner = TestRunner::new(config(1000));
    runner
        .run(&mutated_seed(), |bytes| {
            tried.fetch_add(1, Ordering::Relaxed);
            check_one(&repo, &bytes)
        })
        .unwrap();
    assert_snapshots_equal(&before, &fixture.snapshot(), "validation wrote into the repository");
    eprintln!(
        "fuzz: {} inputs tried, {} parsed, {} valid batches",
        tried.load(Ordering::Relaxed),
        PARSED.load(Ordering::Relaxed),
        VALID.load(Ordering::Relaxed)
    );
}
