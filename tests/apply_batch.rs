//! `git atomic apply` as a command: the batch format's invalid cases, `--dry-run`, `--json`,
//! `-m`, batch files, and running outside a repository (issue 3).

mod common;

use common::{Outcome, Repo, run_with_stdin};

fn has_line_and_column(stderr: &str) -> bool {
    // `<stdin>:3:7: …`
    stderr.split(':').collect::<Vec<_>>().windows(2).any(|w| {
        !w[0].is_empty()
            && !w[1].is_empty()
            && w[0].chars().all(|c| c.is_ascii_digit())
            && w[1].chars().all(|c| c.is_ascii_digit())
    })
}

#[test]
fn a_yaml_syntax_error_names_line_and_column() {
    let repo = Repo::new();
    for text in [
        "refs:\n  - update: [\n",
        "refs:\n  - update: refs/heads/main\n   to: HEAD\n",
        "files:\n\t- write: a\n",
        "{\"refs\": [}",
    ] {
        let out = repo.apply_unchanged(text, 2);
        assert!(out.stderr.starts_with("error: <stdin>:"), "{out:?}");
        assert!(has_line_and_column(&out.stderr), "{out:?}");
        assert_eq!(out.json()["status"], "invalid");
    }
}

#[test]
fn unknown_keys_name_their_entry() {
    let repo = Repo::new();
    let out = repo.apply_unchanged("files:\n  - write: a\n    content: x\n    mdoe: 100644\n", 2);
    assert!(out.stderr.contains("files[0]"), "{out:?}");
    assert!(out.stderr.contains("mdoe"), "{out:?}");
    assert_eq!(out.json()["error"]["entry"], "files[0]");

    let out = repo.apply_unchanged(
        "refs:\n  - verify: refs/heads/main\n    is: absent\n  - update: refs/heads/x\n    to: HEAD\n    form: absent\n",
        2,
    );
    assert!(out.stderr.contains("refs[1]"), "{out:?}");
    assert!(out.stderr.contains("form"), "{out:?}");

    let out = repo.apply_unchanged("ref:\n  - delete: refs/heads/x\n", 2);
    assert!(out.stderr.contains("'ref'"), "{out:?}");
}

#[test]
fn a_doubled_key_is_invalid_rather_than_silently_dropped() {
    let repo = Repo::new();
    for text in [
        "files:\n  - write: a\n    content: x\nfiles:\n  - write: b\n    content: y\n",
        "files:\n  - write: a\n    content: x\n    content: y\n",
        "refs:\n  - update: refs/heads/x\n    to: HEAD\n    to: HEAD\n",
        r#"{"files": [{"write": "a", "content": "x"}], "files": [{"write": "b", "content": "y"}]}"#,
    ] {
        let out = repo.apply_unchanged(text, 2);
        assert!(out.stderr.contains("duplicate key"), "{out:?}");
        assert!(has_line_and_column(&out.stderr), "{out:?}");
    }
}

#[test]
fn structurally_wrong_entries_are_invalid() {
    let repo = Repo::new();
    for text in [
        "refs:\n  - frobnicate: refs/heads/x\n",
        "refs:\n  - update: refs/heads/x\n",
        "refs:\n  - update: refs/heads/x\n    create: refs/heads/y\n    to: HEAD\n",
        "refs: refs/heads/x\n",
        "refs:\n  - refs/heads/x\n",
        "refs:\n  - update: refs/heads/x\n    to: 1234567\n",
        "files:\n  - write: a\n",
        "files:\n  - write: a\n    content: x\n    base64: eA==\n",
        "files:\n  - write: a\n    base64: \"not base64!\"\n",
        "files:\n  - rename: a\n",
        "message: [1]\nfiles:\n  - delete: a\n",
        "- just\n- a list\n",
    ] {
        repo.apply_unchanged(text, 2);
    }
}

#[test]
fn only_version_1_is_accepted() {
    let repo = Repo::new();
    for version in ["2", "0", "\"1\"", "1.5"] {
        let out =
            repo.apply_unchanged(&format!("version: {version}\nfiles:\n  - write: a\n    content: x\n"), 2);
        assert!(out.stderr.contains("version"), "{out:?}");
    }
    repo.apply("version: 1\nfiles:\n  - write: a\n    content: x\n").expect(0);
    assert_eq!(repo.read("a"), "x");
}

#[test]
fn an_empty_batch_is_invalid() {
    let repo = Repo::new();
    for text in ["", "\n", "# nothing\n", "{}", "refs: []\nfiles: []\n", "version: 1\nmessage: m\n"] {
        repo.apply_unchanged(text, 2);
    }
}

#[test]
fn json_batches_are_read_too() {
    let repo = Repo::new();
    let out = repo.apply(
        r#"{"version": 1, "message": "json", "refs": [{"create": "refs/heads/j", "to": "HEAD"}],
            "files": [{"write": "j.txt", "content": "j\n", "mode": "100755"}]}"#,
    );
    out.expect(0);
    assert!(repo.ref_value("refs/heads/j").is_some());
    assert_eq!(repo.read("j.txt"), "j\n");
    assert!(repo.is_executable("j.txt"));
    assert_eq!(repo.reflog("refs/heads/j")[0], "json");
}

#[test]
fn a_batch_file_argument_is_read_relative_to_the_cwd() {
    let repo = Repo::new();
    std::fs::create_dir(repo.path("sub")).unwrap();
    std::fs::write(repo.path("sub/batch.yaml"), "files:\n  - write: from-file.txt\n    content: f\n")
        .unwrap();
    repo.apply_in(&repo.path("sub"), &["apply", "batch.yaml"], "").expect(0);
    assert_eq!(repo.read("from-file.txt"), "f");
    let out = repo.apply_args_unchanged(&["apply", "no-such-batch.yaml"], "", 2);
    assert!(out.stderr.starts_with("error: "), "{out:?}");
}

#[test]
fn outside_a_repository_exit_128_with_an_error_line() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // With a ceiling (git decides where to look) and without one (the upward search alone).
    for ceiling in [true, false] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_git-atomic"));
        common::seal(&mut cmd, &home);
        cmd.current_dir(tmp.path()).args(["apply", "-"]);
        if ceiling {
            cmd.env("GIT_CEILING_DIRECTORIES", tmp.path().parent().unwrap());
        }
        let out = Outcome::from(run_with_stdin(&mut cmd, b"files:\n  - write: a\n    content: x\n"));
        out.expect(128);
        assert!(out.stderr.starts_with("error: "), "{out:?}");
        assert!(out.stderr.contains("not a git repository"), "{out:?}");
        assert!(!tmp.path().join("a").exists());
    }
}

#[test]
fn dry_run_reports_would_apply_and_changes_nothing() {
    let repo = Repo::new();
    repo.write("old.txt", "o");
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    let out = repo.apply_args_unchanged(
        &["apply", "--dry-run", "--json", "-"],
        &format!(
            "refs:\n  - update: refs/heads/main\n    to: {next}\n    from: {head}\n  - create: refs/heads/new/dir/x\n    to: HEAD\nfiles:\n  - write: d/new.txt\n    content: n\n  - delete: old.txt\n    expect: present\n"
        ),
        0,
    );
    let json = out.json();
    assert_eq!(json["status"], "would-apply");
    assert_eq!(json["refs"][0]["new"], next.as_str());
    assert_eq!(json["files"][0]["path"], "d/new.txt");
    assert_eq!(json["files"][1]["action"], "delete");
    assert_eq!(json["error"], serde_json::Value::Null);
    // Without --json: a human line, same exit status.
    let out =
        repo.apply_args_unchanged(&["apply", "--dry-run", "-"], "files:\n  - write: a\n    content: x\n", 0);
    assert!(out.stdout.contains("would apply"), "{out:?}");
}

#[test]
fn dry_run_refuses_a_failing_precondition() {
    let repo = Repo::new();
    let next = repo.commit_id("next");
    for batch in [
        format!("refs:\n  - update: refs/heads/main\n    to: HEAD\n    from: {next}\n"),
        "refs:\n  - create: refs/heads/main\n    to: HEAD\n".to_string(),
        "files:\n  - write: README\n    content: x\n    expect: absent\n".to_string(),
    ] {
        let out = repo.apply_args_unchanged(&["apply", "--dry-run", "--json", "-"], &batch, 1);
        assert_eq!(out.json()["status"], "refused");
    }
    // The ref preconditions are checked under git's own locks.
    std::fs::write(repo.path(".git/refs/heads/main.lock"), "").unwrap();
    repo.apply_args_unchanged(
        &["apply", "--dry-run", "--json", "-"],
        "refs:\n  - update: refs/heads/main\n    to: HEAD\n",
        1,
    );
}

#[test]
fn json_on_refusal_names_kind_and_entry() {
    let repo = Repo::new();
    let out = repo.apply_unchanged(
        "refs:\n  - create: refs/heads/x\n    to: HEAD\nfiles:\n  - write: ok\n    content: x\n  - write: README\n    content: x\n    expect: absent\n",
        1,
    );
    let json = out.json();
    assert_eq!(json["status"], "refused");
    assert_eq!(json["error"]["kind"], "precondition");
    assert_eq!(json["error"]["entry"], "files[1] README");
    assert!(!json["error"]["message"].as_str().unwrap().is_empty());
    assert!(out.stderr.starts_with("error: files[1] README: "), "{out:?}");

    let out = repo.apply_unchanged("refs:\n  - update: refs/heads/main\n    to: nowhere\n", 2);
    let json = out.json();
    assert_eq!(json["status"], "invalid");
    assert_eq!(json["error"]["kind"], "invalid");
    assert!(json["error"]["entry"].as_str().unwrap().starts_with("refs[0]"), "{json}");
}

#[test]
fn dash_m_overrides_the_message_and_quiet_prints_nothing() {
    let repo = Repo::new();
    let out = repo.apply_args(
        &["apply", "-q", "-m", "via -m", "-"],
        "message: not this\nrefs:\n  - create: refs/heads/m\n    to: HEAD\n",
    );
    out.expect(0);
    assert_eq!(out.stdout, "");
    assert_eq!(repo.reflog("refs/heads/m"), vec!["via -m".to_string()]);
    let next = repo.commit_id("next");
    let out = repo.apply_args(
        &["apply", "--message=long form", "-"],
        &format!("refs:\n  - update: refs/heads/m\n    to: {next}\n"),
    );
    out.expect(0);
    assert!(out.stdout.contains("applied"), "{out:?}");
    assert_eq!(repo.reflog("refs/heads/m")[0], "long form");
}

#[test]
fn usage_errors_exit_2() {
    let repo = Repo::new();
    repo.apply_args_unchanged(&["apply", "--no-such-option"], "", 2);
    repo.apply_args_unchanged(&["frobnicate"], "", 2);
}

#[test]
fn an_invalid_batch_exits_2_even_when_a_precondition_fails_too() {
    let repo = Repo::new();
    let next = repo.commit_id("next");
    for batch in [
        format!("refs:\n  - update: HEAD\n    to: {next}\n  - verify: refs/heads/main\n    is: absent\n"),
        format!("refs:\n  - update: refs/heads/main\n    to: HEAD\n    from: {next}\nfiles:\n  - write: ../escape\n    content: x\n"),
        "refs:\n  - create: refs/heads/main\n    to: HEAD\n  - update: refs/heads/x\n    to: no-such-rev\n".to_string(),
        "refs:\n  - create: refs/heads/main/x\n    to: HEAD\nfiles:\n  - write: a\n    content: x\n  - delete: a\n".to_string(),
        "refs:\n  - verify: refs/heads/main\n    is: absent\n  - create: refs/heads/q\n    to: HEAD\n  - create: refs/heads/q/r\n    to: HEAD\n".to_string(),
    ] {
        let out = repo.apply_unchanged(&batch, 2);
        assert_eq!(out.json()["error"]["kind"], "invalid", "{batch}");
    }
}
