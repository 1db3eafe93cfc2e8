//! `recover` and `status` from the user's side: a roll-forward that meets someone else's change
//! stops with exit 3, `status` explains it, and `recover --abandon` is the documented way out.

mod common;

use common::Repo;

#[test]
fn a_conflicting_roll_forward_exits_3_is_explained_by_status_and_can_be_abandoned() {
    let repo = Repo::new();
    let batch = "refs:\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: \"batch\\n\"\n  - write: b.txt\n    content: \"batch\\n\"\n";
    repo.crash_apply("committed", batch);
    repo.write("a.txt", "someone else\n");

    let out = repo.atomic(&["recover", "--json"]);
    out.expect(3);
    let json = out.json();
    assert_eq!(json["recovered"][0]["action"], "conflict");
    assert!(json["recovered"][0]["conflicts"][0].as_str().unwrap().contains("a.txt"), "{json}");
    assert_eq!(repo.read("a.txt"), "someone else\n", "a conflicting file is never overwritten");
    assert_eq!(repo.read("b.txt"), "batch\n", "the rest of a committed batch is finished");
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(repo.rev("HEAD")));

    let status = repo.atomic(&["status", "--json"]);
    let status = status.expect(0).json();
    assert_eq!(status["batches"][0]["state"], "conflict");
    assert_eq!(status["batches"][0]["committed"], true);
    let id = status["batches"][0]["id"].as_str().unwrap().to_string();

    repo.apply("refs:\n  - create: refs/heads/other\n    to: HEAD\n").expect(3);
    let out = repo.atomic(&["recover", "--abandon", &id]);
    out.expect(0);
    assert!(out.stderr.contains("abandoned"), "{out:?}");
    let kept = repo.dir.join(".git/atomic/abandoned").join(&id);
    assert!(kept.join("journal").is_file(), "the journal is kept where the message says");
    assert_eq!(std::fs::read_to_string(kept.join("0")).unwrap(), "batch\n", "the staged content is kept");
    assert_eq!(repo.read("a.txt"), "someone else\n");
    repo.atomic(&["status"]).expect(0);
    repo.apply("refs:\n  - create: refs/heads/other\n    to: HEAD\n").expect(0);
}

#[test]
fn abandoning_an_unknown_batch_is_invalid() {
    let repo = Repo::new();
    for id in ["nope", "../x", ""] {
        repo.atomic(&["recover", "--abandon", id]).expect(2);
    }
}

#[test]
fn recover_with_nothing_to_do_exits_0_and_says_so_in_json() {
    let repo = Repo::new();
    let out = repo.atomic(&["recover", "--json"]);
    assert_eq!(out.expect(0).json()["recovered"], serde_json::json!([]));
}

/// Review finding: validation read refs before recovery, so a batch built on an interrupted one
/// saw stale values (a delete of a ref the recovery had just created was a no-op).
#[test]
fn a_batch_is_validated_against_the_refs_as_recovery_leaves_them() {
    let repo = Repo::new();
    repo.crash_apply("committed", "refs:\n  - create: refs/heads/r\n    to: HEAD\n");
    let out = repo.apply("refs:\n  - delete: refs/heads/r\n");
    out.expect(0);
    assert_eq!(out.json()["refs"][0]["old"], repo.rev("HEAD"));
    assert_eq!(repo.ref_value("refs/heads/r"), None);
}

/// A batch interrupted under the first journal format (staged files in `stage/`, header
/// `git-atomic journal 1`) is still finished by this version.
#[test]
fn a_batch_journaled_in_format_1_is_finished() {
    let repo = Repo::new();
    let batch = "refs:\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: \"one\\n\"\n  - write: d/b.txt\n    content: \"two\\n\"\n";
    repo.crash_apply("committed", batch);
    let batches = repo.dir.join(".git/atomic/batches");
    let dir = std::fs::read_dir(&batches).unwrap().next().unwrap().unwrap().path();
    std::fs::create_dir(dir.join("stage")).unwrap();
    for n in ["0", "1"] {
        std::fs::rename(dir.join(n), dir.join("stage").join(n)).unwrap();
    }
    let journal = std::fs::read_to_string(dir.join("journal")).unwrap();
    let mut lines: Vec<&str> = journal.lines().collect();
    assert_eq!(lines[0], "git-atomic journal 3", "this test rewrites the current format");
    lines[0] = "git-atomic journal 1";
    std::fs::write(dir.join("journal"), lines.join("\n") + "\n").unwrap();

    repo.atomic(&["recover"]).expect(0);
    assert_eq!(repo.read("a.txt"), "one\n");
    assert_eq!(repo.read("d/b.txt"), "two\n");
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(repo.rev("HEAD")));
    assert!(repo.pending_batches().is_empty());
}

/// The one batch directory an interrupted apply left (`journaled`: before the commit point).
fn crashed_batch_dir(repo: &Repo) -> std::path::PathBuf {
    let batch =
        "refs:\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: a\n";
    repo.crash_apply("journaled", batch);
    let dirs = repo.pending_batches();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    repo.path(".git/atomic/batches").join(&dirs[0])
}

/// A batch directory without a journal (killed between making the directory and creating the
/// journal) never passed its barrier: recovery rolls it back like a torn journal.
#[test]
fn a_batch_without_a_journal_is_rolled_back() {
    let repo = Repo::new();
    let dir = crashed_batch_dir(&repo);
    std::fs::remove_file(dir.join("journal")).unwrap();
    let out = repo.atomic(&["recover", "--json"]);
    assert_eq!(out.expect(0).json()["recovered"][0]["action"], "rolled-back", "{out:?}");
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
    assert_eq!(repo.ref_value("refs/heads/topic"), None);
    assert!(!repo.exists("a.txt"));
}

/// A journal that exists but cannot be read is not taken for a torn one: it may hold a commit
/// record, so recovery stops with the error (128) and keeps the batch for another try.
#[test]
fn a_journal_that_cannot_be_read_stops_recovery_and_keeps_the_batch() {
    let repo = Repo::new();
    let dir = crashed_batch_dir(&repo);
    std::fs::remove_file(dir.join("journal")).unwrap();
    std::fs::create_dir(dir.join("journal")).unwrap();
    let out = repo.atomic(&["recover"]);
    out.expect(128);
    assert!(out.stderr.contains("cannot read"), "{out:?}");
    assert!(dir.join("journal").is_dir(), "the batch is kept");
}

/// A `verify` was checked by git before the commit point; a ref it verified that moves after the
/// crash is no conflict for the roll-forward, which finishes the batch's other changes.
#[test]
fn a_verified_ref_moved_after_the_commit_point_does_not_stop_the_roll_forward() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.git(&["update-ref", "refs/heads/checked", &head]);
    let batch = format!(
        "refs:\n  - verify: refs/heads/checked\n    is: {head}\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: a\n"
    );
    repo.crash_apply("committed", &batch);
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/checked", &next]);
    let out = repo.atomic(&["recover", "--json"]);
    assert_eq!(out.expect(0).json()["recovered"][0]["action"], "rolled-forward", "{out:?}");
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(head));
    assert_eq!(repo.read("a.txt"), "a");
    assert_eq!(repo.ref_value("refs/heads/checked"), Some(next), "a verify never moves its ref");
}

/// A ref of the batch that someone else moved after the crash is a conflict (exit 3) named in the
/// report, and keeps their value: recovery does not leave it to git's old-value check.
#[test]
fn a_ref_moved_by_someone_else_after_the_commit_point_is_a_conflict() {
    let repo = Repo::new();
    let batch =
        "refs:\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: a\n";
    repo.crash_apply("committed", batch);
    let theirs = repo.commit_id("theirs");
    repo.git(&["update-ref", "refs/heads/topic", &theirs]);
    let out = repo.atomic(&["recover", "--json"]);
    let json = out.expect(3).json();
    assert_eq!(json["recovered"][0]["action"], "conflict", "{json}");
    let conflicts = json["recovered"][0]["conflicts"].to_string();
    assert!(conflicts.contains("ref 'refs/heads/topic' was moved by someone else"), "{json}");
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(theirs), "their move stays");
    assert_eq!(repo.read("a.txt"), "a", "the rest of a committed batch is finished");
}

/// A loose ref that a power cut left empty after git renamed it into place is repaired: recovery
/// removes it, and sets the ref from what it then reads as (here absent: the ref was never
/// packed), not from the old value the journal recorded.
#[test]
fn a_ref_left_empty_by_a_power_cut_is_rolled_forward_from_what_it_reads_as() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/t", &head]);
    repo.crash_apply(
        "committed",
        &format!("refs:\n  - update: refs/heads/t\n    to: {next}\n    from: {head}\n"),
    );
    std::fs::write(repo.path(".git/refs/heads/t"), "").unwrap();
    let out = repo.atomic(&["recover", "--json"]);
    assert_eq!(out.expect(0).json()["recovered"][0]["action"], "rolled-forward", "{out:?}");
    assert_eq!(repo.ref_value("refs/heads/t"), Some(next));
}

/// A recovery whose update-ref is killed while it holds its locks leaves them to the next
/// recovery, which knows them for its own (no note says otherwise), removes them and finishes.
#[test]
fn locks_of_a_recovery_whose_git_was_killed_are_removed_by_the_next_one() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    repo.crash_apply("committed", "refs:\n  - create: refs/heads/topic\n    to: HEAD\n");
    let hook =
        repo.write_reference_transaction_hook("#!/bin/sh\ntest \"$1\" = prepared && kill -9 $PPID\nexit 0\n");
    let out = repo.atomic(&["recover"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(repo.path(".git/refs/heads/topic.lock").exists(), "git died holding its lock");
    std::fs::remove_file(hook).unwrap();
    let out = repo.atomic(&["recover", "--json"]);
    assert_eq!(out.expect(0).json()["recovered"][0]["action"], "rolled-forward", "{out:?}");
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(head));
    assert!(!repo.path(".git/refs/heads/topic.lock").exists());
}
