//! The catalogue of hostile and malformed batches (issue 16, SPEC §10): escapes by path spelling,
//! symlinks, sources outside the work tree, YAML traps, limits and bad ref names. Every case is
//! refused with its exit code, the message names the entry (and the YAML line and column where the
//! batch could not be read), and the repository is byte-identical afterwards, `.git` included.

mod common;

use common::{Repo, assert_snapshots_equal, run_with_stdin};

/// One hostile batch and what git-atomic must answer.
struct Case {
    name: &'static str,
    batch: Vec<u8>,
    code: i32,
    /// Text stderr must contain: the entry (`files[0]`), or what the batch did wrong.
    names: String,
    /// Whether the message must carry a YAML `line:column`.
    position: bool,
}

fn case(name: &'static str, batch: impl Into<Vec<u8>>, code: i32, names: &str) -> Case {
    Case { name, batch: batch.into(), code, names: names.to_string(), position: false }
}

/// A case whose message must also give the YAML line and column.
fn at_position(mut c: Case) -> Case {
    c.position = true;
    c
}

fn write(path: &str) -> String {
    format!("files:\n  - write: {}\n    content: x\n", yaml_string(path))
}

fn symlink(path: &str) -> String {
    format!("files:\n  - write: {}\n    content: README\n    mode: \"120000\"\n", yaml_string(path))
}

fn source(path: &str) -> String {
    format!("files:\n  - write: copied\n    source: {}\n", yaml_string(path))
}

fn update(name: &str, to: &str) -> String {
    format!("refs:\n  - update: {}\n    to: {to}\n", yaml_string(name))
}

/// A double-quoted YAML string, escaping what YAML needs escaped.
fn yaml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) > 0x7f => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn has_line_and_column(stderr: &str) -> bool {
    stderr.split(':').collect::<Vec<_>>().windows(2).any(|w| {
        !w[0].is_empty()
            && !w[1].is_empty()
            && w[0].chars().all(|c| c.is_ascii_digit())
            && w[1].chars().all(|c| c.is_ascii_digit())
    })
}

/// The repository every case runs against: symlinks out of and within the work tree, a secret
/// outside it, a symlinked `.gitmodules` already there, tags and branches.
fn fixture() -> (Repo, std::path::PathBuf) {
    let repo = Repo::new();
    let outside = repo.tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "token=s3cr3t\n").unwrap();
    repo.write("sub/f", "f\n");
    repo.write("gm/keep", "k\n");
    std::os::unix::fs::symlink(&outside, repo.path("link")).unwrap();
    std::os::unix::fs::symlink("sub", repo.path("ldir")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), repo.path("lsecret")).unwrap();
    std::os::unix::fs::symlink("README", repo.path("lnk-in")).unwrap();
    std::os::unix::fs::symlink("../README", repo.path("gm/.gitmodules")).unwrap();
    repo.git(&["tag", "t"]);
    repo.git(&["branch", "side"]);
    (repo, outside)
}

fn path_cases() -> Vec<Case> {
    let mut cases = vec![
        case("absolute", write("/etc/passwd"), 2, "files[0]"),
        case("dot-dot", write("../x"), 2, "files[0]"),
        case("dot-dot inside", write("a/../../x"), 2, "files[0]"),
        case("dot", write("./a"), 2, "files[0]"),
        case("empty component", write("a//b"), 2, "files[0]"),
        case("trailing slash", write("a/"), 2, "files[0]"),
        case("empty path", write(""), 2, "files[0]"),
        case("NUL", write("a\0b"), 2, "files[0]"),
        case(".git", write(".git/config"), 2, "files[0]"),
        case(".GIT", write(".GIT/config"), 2, "files[0]"),
        case(".Git hooks", write(".Git/hooks/pre-commit"), 2, "files[0]"),
        case("nested .git", write("a/.git/x"), 2, "files[0]"),
        case(".git as a file", write(".git"), 2, "files[0]"),
        case(".git trailing dot", write(".git./x"), 2, "files[0]"),
        case(".git trailing space", write(".git /x"), 2, "files[0]"),
        case(".git dots and spaces", write("a/.git. . /x"), 2, "files[0]"),
        case("$INDEX_ALLOCATION", write("a/.git::$INDEX_ALLOCATION/x"), 2, "files[0]"),
        case("$DATA stream", write(".git::$DATA"), 2, "files[0]"),
        case("named stream", write(".git:foo/x"), 2, "files[0]"),
        case("8.3 git~1", write("git~1/config"), 2, "files[0]"),
        case("8.3 GIT~1", write("GIT~1/hooks/x"), 2, "files[0]"),
        case("8.3 with dots", write("sub/Git~1. /x"), 2, "files[0]"),
        case("backslash", write("a\\b"), 2, "files[0]"),
        case("backslash into .git", write("sub\\.git\\config"), 2, "files[0]"),
        case("HFS U+200C", write(".g\u{200c}it/config"), 2, "files[0]"),
        case("HFS U+200D first", write("\u{200d}.git/config"), 2, "files[0]"),
        case("HFS U+FEFF last", write("x/.git\u{feff}/y"), 2, "files[0]"),
        case("HFS U+202E upper", write(".GI\u{202e}T/x"), 2, "files[0]"),
        case("HFS U+206F", write(".\u{206f}git/x"), 2, "files[0]"),
        case("symlinked .gitmodules", symlink(".gitmodules"), 2, "files[0]"),
        case("symlinked sub/.gitmodules", symlink("sub/.gitmodules"), 2, "files[0]"),
        case("symlinked .GITMODULES.", symlink(".GITMODULES."), 2, "files[0]"),
        case("symlinked gitmod~1", symlink("gitmod~1"), 2, "files[0]"),
        case("symlinked gi7eba~3", symlink("x/gi7eba~3"), 2, "files[0]"),
        case("symlinked .gitmodules stream", symlink(".gitmodules:$DATA"), 2, "files[0]"),
        case("HFS symlinked .gitmodules", symlink(".git\u{200c}modules"), 2, "files[0]"),
        case("keeps a symlinked .gitmodules", write("gm/.gitmodules"), 2, "files[0]"),
        case(
            "renames a symlink to .gitmodules",
            "files:\n  - rename: lnk-in\n    to: .gitmodules\n",
            2,
            "files[0]",
        ),
        case("rename into .git", "files:\n  - rename: README\n    to: .git/x\n", 2, "files[0]"),
        case("rename out of .git", "files:\n  - rename: .git/HEAD\n    to: x\n", 2, "files[0]"),
        case("delete in .git", "files:\n  - delete: .git/HEAD\n", 2, "files[0]"),
        case("delete by 8.3 name", "files:\n  - delete: GIT~1/HEAD\n", 2, "files[0]"),
        case("too long", write(&"a/".repeat(2100)), 2, "files[0]"),
        case("through a symlink out", write("link/x"), 1, "files[0]"),
        case("through a symlink in", write("ldir/x"), 1, "files[0]"),
        case("delete through a symlink", "files:\n  - delete: link/secret\n", 1, "files[0]"),
        case("rename through a symlink", "files:\n  - rename: README\n    to: link/x\n", 1, "files[0]"),
        case("parent is a file", write("README/x"), 1, "files[0]"),
        case("write over a directory", write("sub"), 1, "files[0]"),
        case(
            "parent of another entry",
            format!("{}  - write: a/b\n    content: y\n", write("a")),
            2,
            "files[0]",
        ),
        case("same path twice", format!("{}  - delete: a\n", write("a")), 2, "files[1]"),
    ];
    let second = "files:\n  - write: ok\n    content: x\n  - write: \"../x\"\n    content: y\n";
    cases.push(case("second entry named", second, 2, "files[1]"));
    cases
}

fn source_cases(outside: &std::path::Path, repo: &Repo) -> Vec<Case> {
    let secret = outside.join("secret");
    let config = repo.path(".git/config");
    vec![
        case("/proc environ", source("/proc/self/environ"), 2, "files[0]"),
        case("/dev/zero", source("/dev/zero"), 2, "files[0]"),
        case(".git/config", source(".git/config"), 2, "files[0]"),
        case(".git/config absolute", source(config.to_str().unwrap()), 2, "files[0]"),
        case(".GIT/config", source(".GIT/config"), 2, "files[0]"),
        case("sub/../.git/config", source("sub/../.git/config"), 2, "files[0]"),
        case("outside absolute", source(secret.to_str().unwrap()), 2, "files[0]"),
        case("outside relative", source("../outside/secret"), 2, "files[0]"),
        case("through a symlinked dir", source("link/secret"), 2, "files[0]"),
        case("a symlink out", source("lsecret"), 2, "files[0]"),
        case("a symlink in", source("lnk-in"), 2, "files[0]"),
        case("a directory", source("sub"), 2, "is a directory"),
        case("the work tree", source("."), 2, "files[0]"),
        case("missing", source("no-such-file"), 2, "files[0]"),
        case("home ssh key", source("/root/.ssh/id_ed25519"), 2, "files[0]"),
    ]
}

fn yaml_cases() -> Vec<Case> {
    let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\nfiles:\n  - write: a\n    content: x\n";
    vec![
        at_position(case("billion laughs", laughs, 2, "aliases")),
        at_position(case(
            "merge key",
            "base: &b {content: x}\nfiles:\n  - write: a\n    <<: *b\n",
            2,
            "aliases",
        )),
        at_position(case(
            "alias as content",
            "files:\n  - write: a\n    content: &c x\n  - write: b\n    content: *c\n",
            2,
            "aliases",
        )),
        at_position(case("two documents", "files: []\n---\nfiles: []\n", 2, "one YAML document")),
        at_position(case(
            "duplicate key",
            "files:\n  - write: a\n    content: x\n    content: y\n",
            2,
            "duplicate key",
        )),
        at_position(case("tab indentation", "files:\n\t- write: a\n", 2, "<stdin>")),
        at_position(case("unclosed flow", "refs: [\n", 2, "<stdin>")),
        case("deep YAML", format!("refs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)), 2, "<stdin>"),
        case(
            "deep YAML mappings",
            format!(
                "refs:\n{}",
                (0..40).map(|i| format!("{}k:\n", " ".repeat(i * 2 + 2))).collect::<String>()
            ),
            2,
            "deeper than the limit",
        ),
        case(
            "deep JSON",
            format!("{{\"refs\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000)),
            2,
            "<stdin>",
        ),
        case(
            "JSON past the depth limit",
            format!("{{\"refs\": {}{}}}", "[".repeat(60), "]".repeat(60)),
            2,
            "deeper than the limit",
        ),
        case("wide YAML value", format!("x: [{}1]\n", "1,".repeat(100_000)), 2, "limit of 100000 values"),
        case(
            "wide entry",
            format!("files:\n  - write: a\n    content: [{}1]\n", "1,".repeat(100_000)),
            2,
            "limit of 100000 values",
        ),
        case("huge key", format!("{}: 1\n", "k".repeat(2_000_000)), 2, "<stdin>"),
        case("long flow key", format!("a: {{{}: 1}}\n", "k".repeat(300)), 2, "longer than the limit"),
        case("long JSON key", format!("{{\"{}\": 1}}", "k".repeat(300)), 2, "longer than the limit"),
        case("not UTF-8", b"files:\n  - write: \xff\xfe\n    content: x\n".to_vec(), 2, "not UTF-8"),
        case("refs not a list", "refs: 5\n", 2, "'refs' must be a list"),
        case("entry a scalar", "files: [x]\n", 2, "files[0]"),
        case("entry null", "files: [~]\n", 2, "files[0]"),
        case("top-level list", "- write: a\n", 2, "mapping"),
        case("empty batch", "", 2, "empty"),
        case("no entries", "files: []\nrefs: []\n", 2, "no entries"),
        case("version 2", "version: 2\nfiles:\n  - delete: a\n", 2, "version"),
        at_position(case(
            "misspelt content",
            "files:\n  - write: a\n    contnet: x\n",
            2,
            "did you mean 'content'",
        )),
        at_position(case(
            "misspelt to",
            "refs:\n  - update: refs/heads/x\n    too: HEAD\n",
            2,
            "did you mean 'to'",
        )),
        at_position(case(
            "misspelt write",
            "files:\n  - writ: a\n    content: x\n",
            2,
            "did you mean 'write'",
        )),
        case("misspelt files", "file:\n  - write: a\n    content: x\n", 2, "did you mean 'files'"),
        at_position(case(
            "octal mode",
            "files:\n  - write: a\n    content: x\n    mode: 0644\n",
            2,
            "files[0]",
        )),
        case(
            "empty symlink",
            "files:\n  - write: a\n    content: \"\"\n    mode: \"120000\"\n",
            2,
            "files[0]",
        ),
        at_position(case("number as id", "refs:\n  - update: refs/heads/x\n    to: 1234567\n", 2, "refs[0]")),
        at_position(case(
            "two contents",
            "files:\n  - write: a\n    content: x\n    base64: eA==\n",
            2,
            "files[0]",
        )),
        case("bad base64", "files:\n  - write: a\n    base64: \"!!!\"\n", 2, "files[0]"),
        at_position(case("complex key", "files:\n  - ? [a]\n    : 1\n", 2, "key must be a string")),
        at_position(case("boolean path", "files:\n  - write: true\n    content: x\n", 2, "files[0]")),
        at_position(case("list as path", "files:\n  - write: [a]\n    content: x\n", 2, "files[0]")),
    ]
}

fn ref_cases(repo: &Repo) -> Vec<Case> {
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    vec![
        case("hooks/pre-commit", update("hooks/pre-commit", &head), 2, "refs[0]"),
        case("logs ref", update("logs/refs/heads/main", &head), 2, "refs[0]"),
        case("config", update("config", &head), 2, "refs[0]"),
        case("dot-dot ref", update("refs/../config", &head), 2, "refs[0]"),
        case("escaping ref", update("../../etc/x", &head), 2, "refs[0]"),
        case("double dot", update("refs/heads/a..b", &head), 2, "refs[0]"),
        case(".lock", update("refs/heads/a.lock", &head), 2, "refs[0]"),
        case("space", update("refs/heads/a b", &head), 2, "refs[0]"),
        case("backslash ref", update("refs/heads/a\\b", &head), 2, "refs[0]"),
        case("@{", update("refs/heads/a@{1}", &head), 2, "refs[0]"),
        case("trailing slash ref", update("refs/heads/a/", &head), 2, "refs[0]"),
        case("colon", update("refs/heads/a:b", &head), 2, "refs[0]"),
        case("NUL ref", update("refs/heads/a\0", &head), 2, "refs[0]"),
        case("control char", update("refs/heads/a\u{1}", &head), 2, "refs[0]"),
        case("huge ref name", update(&format!("refs/heads/{}", "a/".repeat(2100)), &head), 2, "refs[0]"),
        case("tree on a branch", update("refs/heads/x", "HEAD^{tree}"), 2, "refs[0]"),
        case("symref escaping", "refs:\n  - symref: HEAD\n    to: ../../x\n".to_string(), 2, "refs[0]"),
        case(
            "same ref twice",
            format!("{}  - delete: refs/heads/x\n", update("refs/heads/x", &head)),
            2,
            "refs[1]",
        ),
        case(
            "file and directory",
            format!("{}  - create: refs/heads/x/y\n    to: {head}\n", update("refs/heads/x", &head)),
            2,
            "refs[",
        ),
        case(
            "stale from",
            format!("refs:\n  - update: refs/heads/main\n    to: {next}\n    from: {next}\n"),
            1,
            "git rev-parse",
        ),
        case(
            "create existing",
            format!("refs:\n  - create: refs/heads/side\n    to: {next}\n"),
            1,
            "refs[0]",
        ),
        case(
            "collides with main",
            format!("refs:\n  - create: refs/heads/main/x\n    to: {next}\n"),
            1,
            "refs[0]",
        ),
        case(
            "short from",
            format!("refs:\n  - update: refs/heads/main\n    to: {next}\n    from: {}\n", &head[..7]),
            2,
            "refs[0]",
        ),
        case(
            "stale expect",
            format!("files:\n  - write: README\n    content: x\n    expect: {next}\n"),
            1,
            "git hash-object",
        ),
    ]
}

/// Runs one case and checks exit code, message and an unchanged repository.
fn run_case(repo: &Repo, c: &Case) {
    let before = repo.snapshot();
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    let out = common::Outcome::from(run_with_stdin(&mut cmd, &c.batch));
    if let Some(log) = std::env::var_os("HOSTILE_LOG") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(log).unwrap();
        writeln!(f, "## {} (exit {})\n{}", c.name, out.code, out.stderr).unwrap();
    }
    let context = format!("case '{}': {out:#?}", c.name);
    assert_eq!(out.code, c.code, "{context}");
    assert!(out.stderr.starts_with("error: "), "{context}");
    assert!(out.stderr.contains(&c.names), "the message should name '{}': {context}", c.names);
    if c.position {
        assert!(has_line_and_column(&out.stderr), "the message should give line:column: {context}");
    }
    assert_snapshots_equal(&before, &repo.snapshot(), &context);
    assert_eq!(repo.pending_batches(), Vec::<String>::new(), "{context}");
}

#[test]
fn every_hostile_batch_is_refused_and_changes_nothing() {
    let (repo, outside) = fixture();
    let outside_before = common::snapshot_tree(&outside);
    let mut cases = path_cases();
    cases.extend(source_cases(&outside, &repo));
    cases.extend(yaml_cases());
    cases.extend(ref_cases(&repo));
    // Every case runs, and every failing one is listed, not only the first.
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&repo, c))).is_err())
        .map(|c| c.name)
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:?}");
    assert_snapshots_equal(&outside_before, &common::snapshot_tree(&outside), "outside the work tree");
    assert!(cases.len() >= 80, "the catalogue has {} cases", cases.len());
    eprintln!("hostile catalogue: {} cases", cases.len());
}

#[test]
fn a_source_inside_the_work_tree_is_copied_and_outside_needs_the_flag() {
    let (repo, outside) = fixture();
    repo.apply(&source("sub/f")).expect(0);
    assert_eq!(repo.read("copied"), "f\n");
    let secret = outside.join("secret");
    let batch = format!("files:\n  - write: copied2\n    source: {}\n", secret.display());
    repo.apply_args_unchanged(&["apply", "-"], &batch, 2);
    repo.apply_args(&["apply", "--allow-source-outside", "-"], &batch).expect(0);
    assert_eq!(repo.read("copied2"), "token=s3cr3t\n");
}

#[test]
fn a_batch_or_content_past_its_limit_is_refused_without_reading_it_all() {
    let repo = Repo::new();
    let big = repo.tmp.path().join("big.yaml");
    std::fs::File::create(&big).unwrap().set_len(300 << 20).unwrap();
    let out = repo.atomic(&["apply", big.to_str().unwrap()]);
    out.expect(2);
    assert!(out.stderr.contains("larger than the limit of 256 MiB"), "{out:#?}");
    repo.write("sub/keep", "k");
    std::fs::File::create(repo.path("sub/huge")).unwrap().set_len(129 << 20).unwrap();
    let out = repo.apply(&source("sub/huge"));
    out.expect(2);
    assert!(out.stderr.contains("limit of 128 MiB"), "{out:#?}");
    assert!(!repo.exists("copied"));
    std::fs::remove_file(repo.path("sub/huge")).unwrap();
    // Sources of the work tree are held from validation on: 3 of 100 MiB pass 256 MiB together.
    let mut batch = String::from("files:\n");
    for i in 0..3 {
        std::fs::File::create(repo.path(&format!("sub/part{i}"))).unwrap().set_len(100 << 20).unwrap();
        batch.push_str(&format!("  - write: copy{i}\n    source: sub/part{i}\n"));
    }
    let out = repo.apply(&batch);
    out.expect(2);
    assert!(out.stderr.contains("files[2]") && out.stderr.contains("together they pass"), "{out:#?}");
    assert!(!repo.exists("copy0"));
}

#[test]
fn more_entries_than_the_limit_are_refused() {
    let repo = Repo::new();
    let mut batch = String::from("files:\n");
    for i in 0..=1_000_000 {
        batch.push_str(&format!("- delete: f{i}\n"));
    }
    let out = repo.apply_args_unchanged(&["apply", "-"], &batch, 2);
    assert!(out.stderr.contains("more than the limit of 1000000 entries"), "{out:#?}");
    assert!(out.stderr.contains("files[1000000]"), "{out:#?}");
}

#[test]
fn verify_absent_beside_a_colliding_entry_holds_without_a_lock() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let batch = format!(
        "refs:\n  - verify: refs/tags/t/u\n    is: absent\n  - update: refs/tags/t\n    to: {head}\n    from: absent\n"
    );
    repo.apply(&batch).expect(0);
    assert_eq!(repo.ref_value("refs/tags/t"), Some(head.clone()));
    // The other way round: the verified name is the parent of the new ref.
    let batch = format!(
        "refs:\n  - verify: refs/tags/p\n    is: absent\n  - create: refs/tags/p/q\n    to: {head}\n"
    );
    repo.apply(&batch).expect(0);
    assert_eq!(repo.ref_value("refs/tags/p/q"), Some(head));
}

#[test]
fn dry_run_reports_every_failed_precondition() {
    let repo = Repo::new();
    repo.write("a", "a\n");
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    let batch = format!(
        "refs:\n  - update: refs/heads/main\n    to: {next}\n    from: {next}\n  - create: refs/heads/main2\n    to: {head}\n  - verify: refs/heads/nope\n    is: {head}\nfiles:\n  - write: a\n    content: x\n    expect: absent\n  - delete: README\n    expect: {next}\n"
    );
    let out = repo.apply_args_unchanged(&["apply", "--dry-run", "--json", "-"], &batch, 1);
    let json = out.json();
    let errors = json["errors"].as_array().unwrap_or_else(|| panic!("an errors array: {out:#?}"));
    let entries: Vec<&str> = errors.iter().map(|e| e["entry"].as_str().unwrap()).collect();
    assert_eq!(
        entries,
        ["refs[0] refs/heads/main", "refs[2] refs/heads/nope", "files[0] a", "files[1] README"]
    );
    assert_eq!(json["error"]["entry"], "refs[0] refs/heads/main");
    assert_eq!(out.stderr.matches("error: ").count(), 4, "{out:#?}");
    assert!(out.stderr.contains("hint: see its value with 'git rev-parse"), "{out:#?}");
    assert!(out.stderr.contains("git hash-object --no-filters README"), "{out:#?}");
    // One failed precondition is a list of one.
    let one = format!("files:\n  - delete: README\n    expect: {next}\n");
    let out = repo.apply_args_unchanged(&["apply", "--dry-run", "--json", "-"], &one, 1);
    assert_eq!(out.json()["errors"].as_array().map(Vec::len), Some(1), "{out:#?}");
    // Without --dry-run the first one refuses the batch, as before.
    let out = repo.apply_args_unchanged(&["apply", "--json", "-"], &batch, 1);
    assert!(out.json().get("errors").is_none(), "{out:#?}");
}

#[test]
fn a_directory_as_batch_file_says_so_in_words() {
    let repo = Repo::new();
    let out = repo.atomic(&["apply", "sub-dir-that-is-a-dir"]);
    out.expect(2);
    std::fs::create_dir(repo.path("d")).unwrap();
    let out = repo.atomic(&["apply", "d"]);
    out.expect(2);
    assert!(out.stderr.contains("cannot read 'd': is a directory"), "{out:#?}");
    assert!(!out.stderr.contains("os error"), "{out:#?}");
}

#[test]
fn ref_names_git_takes_but_windows_cannot_store_apply_and_collide_as_files() {
    // Found by tests/fuzz_parse.rs: gix refuses to list refs under `refs/heads/con/`, which made
    // a valid batch exit 128.
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    for name in ["refs/heads/con", "refs/heads/nul/x", "refs/heads/a|b", "refs/heads/a\"b", "refs/|t/u"] {
        repo.apply(&format!("refs:\n  - create: {}\n    to: {head}\n", yaml_string(name))).expect(0);
        assert_eq!(repo.ref_value(name), Some(head.clone()), "{name}");
    }
    let out = repo.apply_unchanged(&format!("refs:\n  - create: refs/heads/con/x\n    to: {head}\n"), 1);
    assert!(out.stderr.contains("'refs/heads/con' exists"), "{out:#?}");
    let out = repo.apply_unchanged(&format!("refs:\n  - create: refs/heads/nul\n    to: {head}\n"), 1);
    assert!(out.stderr.contains("'refs/heads/nul/x' exists"), "{out:#?}");
}

#[test]
fn apply_reading_a_terminal_says_so_on_stderr() {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let repo = Repo::new();
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two fds we then own; the other arguments may be null.
    let rc = unsafe {
        libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(rc, 0, "openpty");
    let (mut master, slave) =
        unsafe { (std::fs::File::from_raw_fd(master), std::fs::File::from_raw_fd(slave)) };
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    cmd.stdin(slave).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    drop(cmd);
    // A line, then Ctrl-D at the start of a line: end of input on a terminal.
    master.write_all(b"files:\n  - write: t.txt\n    content: x\n\x04").unwrap();
    let out = common::Outcome::from(child.wait_with_output().unwrap());
    out.expect(0);
    assert!(out.stderr.contains("reading the batch from standard input"), "{out:#?}");
    assert_eq!(repo.read("t.txt"), "x");
    // From a pipe it says nothing.
    let out = repo.apply_args(&["apply", "-"], "files:\n  - write: u.txt\n    content: y\n");
    assert!(!out.stderr.contains("reading"), "{out:#?}");
}
