//! A recovery killed with its git while git holds its locks (crash point `recover-locked`,
//! between noting them and git's commit): the next recovery removes exactly the locks the
//! killed one noted as its own, never a lock someone else took meanwhile on one of the batch's
//! refs that the killed recovery's git did not lock (docs/journal.md, "Which lock files are the
//! batch's own").

mod common;

use common::{Repo, run_with_stdin};
use std::os::unix::process::CommandExt;
use std::os::unix::process::ExitStatusExt;

/// Recovers, running `during` (a shell command) while the files move, that is after recovery's
/// git was started and before its locks are noted; then dies with that git at `recover-locked`.
fn recover_killed_holding_locks(repo: &Repo, during: &str) {
    let mut cmd = repo.atomic_cmd(&["recover"]);
    cmd.env("GIT_TEST_ATOMIC_RUN_AT", "recover-file").env("GIT_TEST_ATOMIC_RUN", during);
    cmd.env("GIT_TEST_ATOMIC_CRASH", "recover-locked")
        .env("GIT_TEST_ATOMIC_CRASH_GROUP", "1")
        .process_group(0);
    let out = run_with_stdin(&mut cmd, b"");
    assert_eq!(out.status.signal(), Some(9), "recover should have died at recover-locked: {out:?}");
}

/// The next recovery leaves the other's lock alone (a conflict), and the one after its removal
/// finishes the batch.
fn finish_around(repo: &Repo, theirs: &str) {
    let lock = repo.path(theirs);
    let out = repo.atomic(&["recover"]);
    assert_eq!(out.code, 3, "someone else's lock is a conflict: {out:?}");
    assert!(lock.exists(), "the next recovery removed someone else's lock '{theirs}' as its own");
    std::fs::remove_file(&lock).unwrap();
    let out = repo.atomic(&["recover", "--json"]);
    assert_eq!(out.expect(0).json()["recovered"][0]["action"], "rolled-forward", "{out:?}");
    assert!(repo.pending_batches().is_empty());
}

/// Sets a ref, waiting while the batch's killed git may still hold its lock.
fn set_ref(repo: &Repo, name: &str, value: &str) {
    for _ in 0..500 {
        if repo.git_cmd(&["update-ref", name, value]).status().unwrap().success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("cannot set {name}");
}

/// A ref already at its new value is not locked by recovery's git: a lock someone takes on it
/// during the recovery is not noted as the recovery's, so the next one leaves it.
#[test]
fn a_lock_taken_during_recovery_on_a_ref_already_done_is_not_noted_as_its_own() {
    let repo = Repo::new();
    repo.git(&["config", "atomic.lockTimeout", "1"]);
    let head = repo.rev("HEAD");
    let batch = "refs:\n  - create: refs/heads/a\n    to: HEAD\n  - create: refs/heads/b\n    to: HEAD\n\
                 files:\n  - write: f.txt\n    content: \"batch\\n\"\n";
    repo.crash_apply("committed", batch);
    set_ref(&repo, "refs/heads/a", &head);
    recover_killed_holding_locks(&repo, &format!("printf '%s\\n' {head} >.git/refs/heads/a.lock"));
    assert!(repo.path(".git/refs/heads/b.lock").exists(), "recovery's git died holding its lock");
    finish_around(&repo, ".git/refs/heads/a.lock");
    assert_eq!(repo.ref_value("refs/heads/a"), Some(head.clone()));
    assert_eq!(repo.ref_value("refs/heads/b"), Some(head));
    assert_eq!(repo.read("f.txt"), "batch\n");
}

/// A change made through HEAD is noted by its branch's lock: once HEAD points elsewhere, git
/// does not lock HEAD for the batch, and a lock someone takes on HEAD during the recovery (a
/// checkout) is not noted as the recovery's.
#[test]
fn a_lock_on_head_taken_during_recovery_of_a_change_through_head_is_not_noted_as_its_own() {
    let repo = Repo::new();
    repo.git(&["config", "atomic.lockTimeout", "1"]);
    let new = repo.commit_id("batch");
    let batch = format!(
        "refs:\n  - update: HEAD\n    to: {new}\nfiles:\n  - write: f.txt\n    content: \"batch\\n\"\n"
    );
    repo.crash_apply("committed", &batch);
    repo.git(&["symbolic-ref", "HEAD", "refs/heads/other"]);
    recover_killed_holding_locks(&repo, "printf 'ref: refs/heads/third\\n' >.git/HEAD.lock");
    assert!(repo.path(".git/refs/heads/main.lock").exists(), "recovery's git died holding its lock");
    finish_around(&repo, ".git/HEAD.lock");
    assert_eq!(repo.rev("refs/heads/main"), new);
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]).trim(), "refs/heads/other");
}
