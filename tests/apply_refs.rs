//! `git atomic apply` on refs: every entry kind, symbolic refs, revisions, reflog messages, and
//! every ref refusal leaving the repository byte-identical (issue 3).

mod common;

use common::{Repo, git_at_least};

fn id_of(out: &common::Outcome) -> String {
    out.json()["id"].as_str().expect("an id").to_string()
}

#[test]
fn update_with_and_without_from_moves_the_ref() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    let out = repo.apply(&format!("refs:\n  - update: refs/heads/main\n    to: {next}\n    from: {head}\n"));
    out.expect(0);
    assert_eq!(repo.rev("refs/heads/main"), next);
    let json = out.json();
    assert_eq!(json["status"], "applied");
    assert_eq!(json["refs"][0]["ref"], "refs/heads/main");
    assert_eq!(json["refs"][0]["old"], head.as_str());
    assert_eq!(json["refs"][0]["new"], next.as_str());

    repo.apply(&format!("refs:\n  - update: refs/heads/main\n    to: {head}\n")).expect(0);
    assert_eq!(repo.rev("refs/heads/main"), head);
}

#[test]
fn update_without_from_creates_a_missing_ref() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.apply("refs:\n  - update: refs/heads/fresh\n    to: HEAD\n").expect(0);
    assert_eq!(repo.ref_value("refs/heads/fresh"), Some(head));
}

#[test]
fn update_with_from_absent_creates_and_refuses_an_existing_ref() {
    let repo = Repo::new();
    repo.apply("refs:\n  - update: refs/heads/t\n    to: HEAD\n    from: absent\n").expect(0);
    assert!(repo.ref_value("refs/heads/t").is_some());
    repo.apply_unchanged("refs:\n  - update: refs/heads/t\n    to: HEAD\n    from: absent\n", 1);
}

#[test]
fn create_makes_a_new_ref_and_refuses_an_existing_one() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let out = repo.apply("refs:\n  - create: refs/heads/topic\n    to: main\n");
    out.expect(0);
    assert_eq!(out.json()["refs"][0]["old"], serde_json::Value::Null);
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(head));

    let next = repo.commit_id("next");
    let out = repo.apply_unchanged(&format!("refs:\n  - create: refs/heads/topic\n    to: {next}\n"), 1);
    let json = out.json();
    assert_eq!(json["status"], "refused");
    assert_eq!(json["error"]["kind"], "precondition");
    assert!(json["error"]["entry"].as_str().unwrap().starts_with("refs[0]"), "{json}");
}

#[test]
fn delete_with_and_without_from_removes_the_refs() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["update-ref", "refs/heads/a", &head]);
    repo.git(&["update-ref", "refs/heads/b", &head]);
    let out =
        repo.apply(&format!("refs:\n  - delete: refs/heads/a\n    from: {head}\n  - delete: refs/heads/b\n"));
    out.expect(0);
    assert_eq!(repo.ref_value("refs/heads/a"), None);
    assert_eq!(repo.ref_value("refs/heads/b"), None);
    let json = out.json();
    assert_eq!(json["refs"][0]["old"], head.as_str());
    assert_eq!(json["refs"][0]["new"], serde_json::Value::Null);
    assert_eq!(repo.git(&["for-each-ref", "--format=%(refname)"]).trim(), "refs/heads/main");
}

#[test]
fn delete_of_a_missing_ref_is_a_no_op_without_from() {
    let repo = Repo::new();
    repo.apply_unchanged("refs:\n  - delete: refs/heads/nope\n", 0);
}

#[test]
fn delete_of_a_missing_ref_with_from_is_refused() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.apply_unchanged(&format!("refs:\n  - delete: refs/heads/nope\n    from: {head}\n"), 1);
}

#[test]
fn delete_with_from_absent_is_invalid() {
    let repo = Repo::new();
    let out = repo.apply_unchanged("refs:\n  - delete: refs/heads/main\n    from: absent\n", 2);
    assert_eq!(out.json()["status"], "invalid");
    assert!(repo.ref_value("refs/heads/main").is_some());
}

#[test]
fn verify_id_and_absent_hold_and_change_nothing_themselves() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["update-ref", "refs/heads/side", &head]);
    repo.apply_unchanged(
        &format!(
            "refs:\n  - verify: refs/heads/side\n    is: {head}\n  - verify: refs/tags/v9\n    is: absent\n"
        ),
        0,
    );
    repo.apply(&format!(
        "refs:\n  - verify: refs/heads/main\n    is: {head}\n  - create: refs/heads/other\n    to: main\n"
    ))
    .expect(0);
    assert_eq!(repo.ref_value("refs/heads/other"), Some(head));
}

/// git's files backend appends a bogus `<old> 0000…` entry to `logs/HEAD` for a `verify` of the
/// checked-out branch (git 2.39 and 2.47 alike), which shifts every `HEAD@{n}`; a verify must not
/// change anything. Run with `--ignored` to check a fix.
#[test]
#[ignore = "known bug: verify of the checked-out branch appends a null entry to logs/HEAD"]
fn verify_of_the_checked_out_branch_leaves_the_head_reflog_alone() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.apply_unchanged(&format!("refs:\n  - verify: refs/heads/main\n    is: {head}\n"), 0);
    repo.apply_unchanged(&format!("refs:\n  - verify: HEAD\n    is: {head}\n"), 0);
}

#[test]
fn a_failing_verify_refuses_the_whole_batch() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    for verify in [
        format!("verify: refs/heads/main\n    is: {next}"),
        "verify: refs/heads/main\n    is: absent".to_string(),
        format!("verify: refs/heads/nope\n    is: {head}"),
    ] {
        let out = repo.apply_unchanged(
            &format!(
                "refs:\n  - create: refs/heads/other\n    to: {next}\n  - {verify}\nfiles:\n  - write: new.txt\n    content: x\n"
            ),
            1,
        );
        assert_eq!(out.json()["error"]["entry"].as_str().unwrap().split(' ').next(), Some("refs[1]"));
    }
}

#[test]
fn verify_absent_holds_for_a_name_that_collides_with_an_existing_ref() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["update-ref", "refs/heads/a/b", &head]);
    // refs/heads/main exists, so refs/heads/main/x cannot be locked; and refs/heads/a is a
    // directory: both are absent, so the verifies hold.
    repo.apply_unchanged(
        "refs:\n  - verify: refs/heads/main/x\n    is: absent\n  - verify: refs/heads/a\n    is: absent\n",
        0,
    );
    repo.apply(
        "refs:\n  - verify: refs/heads/main/x\n    is: absent\n  - verify: refs/heads/a\n    is: absent\n  - create: refs/heads/c\n    to: HEAD\n",
    )
    .expect(0);
    assert_eq!(repo.ref_value("refs/heads/c"), Some(head));
}

#[test]
fn update_of_head_moves_the_checked_out_branch() {
    let repo = Repo::new();
    let next = repo.commit_id("next");
    let out = repo.apply(&format!("refs:\n  - update: HEAD\n    to: {next}\n"));
    out.expect(0);
    assert_eq!(out.json()["refs"][0]["ref"], "refs/heads/main");
    assert_eq!(repo.rev("refs/heads/main"), next);
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]).trim(), "refs/heads/main");
}

#[test]
fn head_and_its_branch_in_one_batch_are_invalid() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    let out = repo.apply_unchanged(
        &format!("refs:\n  - update: HEAD\n    to: {next}\n  - verify: refs/heads/main\n    is: {head}\n"),
        2,
    );
    assert!(out.stderr.contains("refs/heads/main"), "{out:?}");
    repo.apply_unchanged(
        &format!("refs:\n  - update: refs/heads/main\n    to: {next}\n  - delete: HEAD\n"),
        2,
    );
}

#[test]
fn two_entries_on_one_ref_are_invalid() {
    let repo = Repo::new();
    repo.apply_unchanged(
        "refs:\n  - create: refs/heads/x\n    to: HEAD\n  - update: refs/heads/x\n    to: HEAD\n",
        2,
    );
}

#[test]
fn revisions_resolve_before_the_batch_changes_anything() {
    let repo = Repo::new();
    let first = repo.rev("HEAD");
    repo.write("second.txt", "2\n");
    repo.git(&["add", "second.txt"]);
    repo.git(&["commit", "-q", "-m", "second"]);
    let second = repo.rev("HEAD");
    let third = repo.commit_id("third");
    repo.apply(&format!(
        "refs:\n  - update: refs/heads/main\n    to: {third}\n  - create: refs/heads/topic\n    to: main\n  - create: refs/heads/back\n    to: HEAD~1\n  - create: refs/tags/here\n    to: HEAD\n"
    ))
    .expect(0);
    assert_eq!(repo.rev("refs/heads/main"), third);
    assert_eq!(repo.rev("refs/heads/topic"), second, "topic gets the old main");
    assert_eq!(repo.rev("refs/heads/back"), first);
    assert_eq!(repo.rev("refs/tags/here"), second);
}

#[test]
fn an_annotated_tag_for_a_branch_is_invalid_with_a_commit_hint() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["tag", "-a", "v1", "-m", "v1"]);
    let tag = repo.rev("refs/tags/v1");
    for to in ["v1", tag.as_str(), "HEAD^{tree}"] {
        let out = repo.apply_unchanged(&format!("refs:\n  - create: refs/heads/x\n    to: \"{to}\"\n"), 2);
        assert!(out.stderr.contains("^{commit}"), "{out:?}");
    }
    repo.apply_unchanged(&format!("refs:\n  - update: HEAD\n    to: {tag}\n"), 2);
    repo.apply(
        "refs:\n  - create: refs/heads/x\n    to: v1^{commit}\n  - create: refs/tags/copy\n    to: v1\n",
    )
    .expect(0);
    assert_eq!(repo.rev("refs/heads/x"), head);
    assert_eq!(repo.rev("refs/tags/copy"), tag, "a tag ref keeps the tag object: no peeling");
}

#[test]
fn the_reflog_message_is_message_then_dash_m_then_the_default() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.apply(&format!("message: \"Rename config key\"\nrefs:\n  - create: refs/heads/a\n    to: HEAD\n  - update: HEAD\n    to: {next}\n"))
        .expect(0);
    assert_eq!(repo.reflog("refs/heads/a")[0], "Rename config key");
    assert_eq!(repo.reflog("refs/heads/main")[0], "Rename config key");

    repo.apply_args(
        &["apply", "--json", "-m", "from the command line", "-"],
        "message: ignored\nrefs:\n  - delete: refs/heads/a\n  - create: refs/heads/b\n    to: HEAD\n",
    )
    .expect(0);
    assert_eq!(repo.reflog("refs/heads/b")[0], "from the command line");

    let out = repo.apply(&format!("refs:\n  - update: refs/heads/b\n    to: {head}\n    from: {next}\n"));
    out.expect(0);
    assert_eq!(repo.reflog("refs/heads/b")[0], format!("git atomic apply {}", id_of(&out)));
}

#[test]
fn symref_points_a_symbolic_ref_or_is_refused_clearly_on_old_git() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["update-ref", "refs/heads/topic", &head]);
    let batch = "refs:\n  - symref: HEAD\n    to: refs/heads/topic\n  - symref: refs/heads/alias\n    to: refs/heads/main\n";
    if !git_at_least((2, 46)) {
        let out = repo.apply_unchanged(batch, 2);
        assert!(out.stderr.starts_with("error: "), "{out:?}");
        assert!(out.stderr.contains("2.46"), "{out:?}");
        return;
    }
    repo.apply(batch).expect(0);
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]).trim(), "refs/heads/topic");
    assert_eq!(repo.git(&["symbolic-ref", "refs/heads/alias"]).trim(), "refs/heads/main");
    assert_eq!(repo.rev("refs/heads/main"), head, "the branches are untouched");
    assert_eq!(repo.rev("refs/heads/topic"), head);
}

#[test]
fn repointing_head_and_changing_its_current_branch_is_invalid() {
    // symref entries are refused as a whole on older git (tested above)
    if !common::needs_git("repointing_head_and_changing_its_current_branch_is_invalid", (2, 46)) {
        return;
    }
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/topic", &head]);
    for other in [
        format!("update: refs/heads/main\n    to: {next}"),
        format!("verify: refs/heads/main\n    is: {head}"),
    ] {
        repo.apply_unchanged(&format!("refs:\n  - symref: HEAD\n    to: refs/heads/topic\n  - {other}\n"), 2);
    }
    // The branch HEAD will point at may change in the same batch, as in git.
    repo.apply(&format!(
        "refs:\n  - symref: HEAD\n    to: refs/heads/topic\n  - update: refs/heads/topic\n    to: {next}\n"
    ))
    .expect(0);
    assert_eq!(repo.rev("HEAD"), next);
    assert_eq!(repo.rev("refs/heads/main"), head);
}

#[test]
fn a_from_mismatch_refuses_refs_and_files_alike() {
    let repo = Repo::new();
    let next = repo.commit_id("next");
    let out = repo.apply_unchanged(
        &format!(
            "refs:\n  - create: refs/heads/new\n    to: HEAD\n  - update: refs/heads/main\n    to: HEAD\n    from: {next}\nfiles:\n  - write: a.txt\n    content: a\n  - delete: README\n"
        ),
        1,
    );
    assert!(out.stderr.starts_with("error: refs[1]"), "{out:?}");
}

#[test]
fn creating_a_ref_that_collides_with_an_existing_one_is_refused() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["update-ref", "refs/heads/ma/b", &head]);
    for name in ["refs/heads/main/x", "refs/heads/ma", "refs/heads/main/x/y"] {
        let out = repo.apply_unchanged(
            &format!("refs:\n  - create: refs/heads/ok\n    to: HEAD\n  - update: {name}\n    to: HEAD\n"),
            1,
        );
        assert!(out.stderr.contains("refs[1]"), "{out:?}");
    }
}

#[test]
fn colliding_names_within_one_batch_are_invalid() {
    let repo = Repo::new();
    repo.apply_unchanged(
        "refs:\n  - create: refs/heads/a\n    to: HEAD\n  - create: refs/heads/a/b\n    to: HEAD\n",
        2,
    );
}

#[test]
fn a_ref_locked_by_another_process_is_refused() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/x", &head]);
    std::fs::write(repo.path(".git/refs/heads/x.lock"), "").unwrap();
    std::fs::write(repo.path(".git/refs/heads/y.lock"), "").unwrap();
    for name in ["refs/heads/x", "refs/heads/y"] {
        let out = repo.apply_unchanged(
            &format!("refs:\n  - update: {name}\n    to: {next}\nfiles:\n  - write: f.txt\n    content: f\n"),
            1,
        );
        assert_eq!(out.json()["error"]["kind"], "precondition");
    }
    assert!(repo.path(".git/refs/heads/x.lock").exists(), "a foreign lock is never removed");
}

#[test]
fn a_refusal_leaves_no_directory_git_made_for_its_locks() {
    let repo = Repo::new();
    let next = repo.commit_id("next");
    repo.apply_unchanged(
        &format!("refs:\n  - create: refs/heads/new/deep/x\n    to: HEAD\n  - verify: refs/heads/main\n    is: {next}\n"),
        1,
    );
    // Here git itself takes the lock of the new ref (creating its directories) and then fails
    // on the locked one.
    std::fs::write(repo.path(".git/refs/heads/zz.lock"), "").unwrap();
    for order in [
        "  - create: refs/heads/new/deep/x\n    to: HEAD\n  - update: refs/heads/zz\n    to: HEAD\n",
        "  - update: refs/heads/zz\n    to: HEAD\n  - create: refs/heads/new/deep/x\n    to: HEAD\n",
        "  - create: refs/tags/n1/n2/n3\n    to: HEAD\n  - update: refs/heads/zz\n    to: HEAD\n  - create: refs/notes/q/r\n    to: HEAD\n",
    ] {
        repo.apply_unchanged(&format!("refs:\n{order}"), 1);
    }
    assert!(!repo.path(".git/refs/heads/new").exists());
}

#[test]
fn ref_names_outside_refs_or_malformed_are_invalid() {
    let repo = Repo::new();
    for name in [
        "hooks/pre-commit",
        "logs/refs/heads/main",
        "config",
        "main",
        "FETCH_HEAD",
        "refs/heads/a..b",
        "refs/heads/x.lock",
        "refs/heads/.hidden",
        "refs/heads/a b",
        "refs/heads/a~1",
        "refs/heads/a:b",
        "refs/heads/a@{1}",
        "refs/heads//a",
        "refs/heads/a/",
    ] {
        let out = repo.apply_unchanged(&format!("refs:\n  - update: \"{name}\"\n    to: HEAD\n"), 2);
        assert!(out.stderr.starts_with("error: refs[0]"), "{name}: {out:?}");
    }
    assert!(!repo.path(".git/hooks/pre-commit").exists());
}

#[test]
fn unknown_objects_and_bad_ids_are_invalid() {
    let repo = Repo::new();
    let missing = "0123456789abcdef0123456789abcdef01234567";
    for entry in [
        format!("update: refs/heads/main\n    to: {missing}"),
        "update: refs/heads/main\n    to: no-such-branch".to_string(),
        "create: refs/heads/x\n    to: HEAD~5".to_string(),
        "update: refs/heads/main\n    to: HEAD\n    from: abc123".to_string(),
        "verify: refs/heads/main\n    is: zzz".to_string(),
        format!("verify: refs/heads/main\n    is: {missing}{}", "0".repeat(24)),
    ] {
        let out = repo.apply_unchanged(&format!("refs:\n  - {entry}\n"), 2);
        assert_eq!(out.json()["error"]["kind"], "invalid", "{entry}");
    }
}

#[test]
fn update_of_a_detached_head_moves_head_only() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["checkout", "-q", "--detach"]);
    let out = repo.apply(&format!("refs:\n  - update: HEAD\n    to: {next}\n    from: {head}\n"));
    out.expect(0);
    assert_eq!(out.json()["refs"][0]["ref"], "HEAD");
    assert_eq!(repo.rev("HEAD"), next);
    assert_eq!(repo.rev("refs/heads/main"), head);
    assert_eq!(repo.reflog("HEAD")[0], format!("git atomic apply {}", id_of(&out)));
}

#[test]
fn update_of_head_on_an_unborn_branch_creates_the_branch() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["checkout", "-q", "--orphan", "fresh"]);
    repo.apply_unchanged(&format!("refs:\n  - update: HEAD\n    to: {head}\n    from: {head}\n"), 1);
    repo.apply(&format!("refs:\n  - update: HEAD\n    to: {head}\n    from: absent\n")).expect(0);
    assert_eq!(repo.ref_value("refs/heads/fresh"), Some(head));
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]).trim(), "refs/heads/fresh");
}

/// Above 256 refs the refs are listed once instead of looked up one by one: the same rules hold.
#[test]
fn a_batch_of_many_refs_reads_refs_the_same_way_as_a_small_one() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["pack-refs", "--all"]);
    repo.git(&["update-ref", "refs/heads/loose", &head]);
    let mut batch = String::from("refs:\n");
    for i in 0..300 {
        batch.push_str(&format!("  - create: refs/heads/many/r{i}\n    to: {head}\n"));
    }
    let colliding = format!("{batch}  - create: refs/heads/main/x\n    to: {head}\n");
    let before = repo.snapshot();
    repo.apply(&colliding).expect(1);
    assert_eq!(repo.snapshot(), before, "a refused large batch must change nothing");
    let extra = format!(
        "  - verify: refs/heads/main/sub\n    is: absent\n  - verify: refs/heads/main\n    is: {head}\n  - delete: refs/heads/loose\n    from: {head}\n"
    );
    repo.apply(&format!("{batch}{extra}")).expect(0);
    assert_eq!(repo.ref_value("refs/heads/many/r299").as_deref(), Some(head.as_str()));
    assert_eq!(repo.ref_value("refs/heads/loose"), None);
}

/// Contents are written while git takes its ref locks: a failure there must still abort git's
/// prepared transaction and leave nothing behind, no lock file and no batch directory.
#[test]
fn a_failure_while_contents_are_staged_releases_gits_locks_and_changes_nothing() {
    let repo = Repo::new();
    repo.git(&["update-ref", "refs/heads/kept", "HEAD"]);
    repo.write("f.txt", "old\n");
    let head = repo.git(&["rev-parse", "HEAD"]);
    let head = head.trim();
    let batch = format!(
        "refs:\n  - delete: refs/heads/kept\n    from: {head}\n  - update: refs/heads/new/x\n    to: HEAD\nfiles:\n  - write: f.txt\n    content: \"new\\n\"\n  - write: d/g.txt\n    content: g\n"
    );
    let batch = batch.as_str();
    let before = repo.snapshot();
    let mut cmd = repo.atomic_cmd(&["apply", "--json", "-"]);
    cmd.env("GIT_TEST_ATOMIC_FAIL", "staging");
    let out = common::Outcome::from(common::run_with_stdin(&mut cmd, batch.as_bytes()));
    out.expect(128);
    assert!(out.stderr.contains("injected failure at staging"), "{out:?}");
    common::assert_snapshots_equal(&before, &repo.snapshot(), &format!("{out:#?}"));
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
    // And the same batch then applies: git's locks are gone.
    repo.apply(batch).expect(0);
    assert_eq!(repo.read("f.txt"), "new\n");
}

/// Found by fuzzing under git 2.39: a revision git itself refuses to read (here a relative path
/// from outside the work tree) is an invalid batch (2), not a failure of git (128).
#[test]
fn a_revision_git_refuses_to_read_is_invalid_not_fatal() {
    let repo = Repo::new();
    let outside = tempfile::tempdir().unwrap();
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    cmd.current_dir(outside.path()).env("GIT_DIR", repo.path(".git")).env("GIT_WORK_TREE", &repo.dir);
    let before = repo.snapshot();
    let batch = "refs:\n  - update: refs/heads/main\n    to: \":./\"\n";
    let out = common::Outcome::from(common::run_with_stdin(&mut cmd, batch.as_bytes()));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.starts_with("error: "), "{out:?}");
    assert_eq!(repo.snapshot(), before);
}
