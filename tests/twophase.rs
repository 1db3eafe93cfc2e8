//! Issue 19: two-phase commit in one repository (SPEC §9). `prepare` keeps a batch prepared
//! (surviving SIGKILL at each of its crash points), `commit` and `abort` finish it, idempotently;
//! a prepared batch reserves its refs and paths against other batches and, with the hook,
//! against plain git; recovery never decides it; a crash at each crash point of prepare,
//! commit and abort, and at random instants, ends all-or-nothing once recovered and finished.

mod common;
#[path = "common/model.rs"]
mod model;
#[path = "common/procs.rs"]
mod procs;

use common::Repo;
use model::{Seen, State, judge, leftovers, observe};
use procs::{recover, run_atomic, spawn_group};
use std::time::Duration;

/// A batch that moves a branch, creates one, writes a file, replaces one and deletes one.
const BATCH: &str = "message: two-phase\nrefs:\n  - update: refs/heads/main\n    to: HEAD~1\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: dir/new.txt\n    content: \"new\\n\"\n  - write: README\n    content: \"changed\\n\"\n  - delete: old.txt\n";

/// A repository with two commits on `main` (the batch moves it back one) and `old.txt`, with
/// the hook installed.
fn repo() -> Repo {
    let repo = Repo::new();
    repo.write("old.txt", "old\n");
    repo.git(&["add", "old.txt"]);
    repo.git(&["commit", "-q", "-m", "second"]);
    repo.atomic(&["hook", "install"]).expect(0);
    repo
}

fn prepare(repo: &Repo, xid: &str, batch: &str) -> common::Outcome {
    repo.apply_args(&["prepare", "--xid", xid, "-"], batch)
}

/// The state a plain `apply` of `batch` leads to, in a fresh repository made the same way.
fn applied_state(batch: &str) -> State {
    let other = repo();
    other.apply(batch).expect(0);
    observe(&other)
}

/// The prepared batch directories (`.git/atomic/prepared/*`).
fn prepared_dirs(repo: &Repo) -> Vec<String> {
    match std::fs::read_dir(repo.path(".git/atomic/prepared")) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

fn prepared_xids(repo: &Repo) -> Vec<String> {
    let status = repo.atomic(&["status", "--json"]);
    status.expect(0);
    status.json()["prepared"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["xid"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn prepare_then_commit_equals_apply_byte_for_byte() {
    let repo = repo();
    let before = repo.snapshot();
    prepare(&repo, "tx-1", BATCH).expect(0);
    assert_eq!(repo.snapshot(), before, "prepare changes nothing outside .git/atomic");
    assert_eq!(prepared_xids(&repo), ["tx-1"]);
    repo.atomic(&["commit", "--xid", "tx-1"]).expect(0);
    assert_eq!(observe(&repo), applied_state(BATCH));
    assert_eq!(repo.reflog("refs/heads/topic")[0], "two-phase");
    assert!(prepared_dirs(&repo).is_empty());
    assert!(leftovers(&repo.dir).is_empty(), "{:?}", leftovers(&repo.dir));
}

#[test]
fn prepare_then_abort_changes_nothing() {
    let repo = repo();
    let before = repo.snapshot();
    prepare(&repo, "tx-1", BATCH).expect(0);
    repo.atomic(&["abort", "--xid", "tx-1"]).expect(0);
    assert_eq!(repo.snapshot(), before);
    assert!(prepared_dirs(&repo).is_empty());
    assert!(prepared_xids(&repo).is_empty());
}

#[test]
fn commit_and_abort_are_idempotent_and_the_other_verb_exits_1() {
    let repo = repo();
    prepare(&repo, "a", BATCH).expect(0);
    repo.atomic(&["commit", "--xid", "a"]).expect(0);
    let again = repo.atomic(&["commit", "--xid", "a"]);
    again.expect(0);
    assert!(again.stdout.contains("already committed"), "{again:?}");
    let other = repo.atomic(&["abort", "--xid", "a"]);
    other.expect(1);
    assert!(other.stderr.contains("was committed"), "{other:?}");

    let batch = "files:\n  - write: b.txt\n    content: b\n";
    prepare(&repo, "b", batch).expect(0);
    repo.atomic(&["abort", "--xid", "b"]).expect(0);
    repo.atomic(&["abort", "--xid", "b"]).expect(0);
    let other = repo.atomic(&["commit", "--xid", "b"]);
    other.expect(1);
    assert!(other.stderr.contains("was aborted"), "{other:?}");
    assert!(!repo.exists("b.txt"));

    repo.atomic(&["commit", "--xid", "never"]).expect(1);
    repo.atomic(&["abort", "--xid", "never"]).expect(1);
    // An XID names one batch, ever.
    prepare(&repo, "a", batch).expect(1);
}

#[test]
fn bad_xids_and_a_missing_hook_are_invalid() {
    let repo = repo();
    for bad in ["", "has space", "a/b", &"x".repeat(129)] {
        prepare(&repo, bad, BATCH).expect(2);
    }
    prepare(&repo, &"x".repeat(128), "files:\n  - write: c\n    content: c\n").expect(0);
    prepare(&repo, "..", "files:\n  - write: d\n    content: d\n").expect(0);
    repo.atomic(&["commit", "--xid", ".."]).expect(0);
    assert_eq!(repo.read("d"), "d");

    let bare = Repo::new();
    let before = bare.snapshot();
    let out = bare.apply_args(&["prepare", "--xid", "t", "-"], BATCH);
    out.expect(2);
    assert!(out.stderr.contains("hook"), "{out:?}");
    assert_eq!(bare.snapshot(), before);
    bare.apply_args(
        &["prepare", "--no-hook-check", "--xid", "t", "-"],
        "files:\n  - write: e\n    content: e\n",
    )
    .expect(0);
}

#[test]
fn a_prepared_batch_reserves_its_refs_and_paths_against_other_batches() {
    let repo = repo();
    prepare(&repo, "held", BATCH).expect(0);
    let verify = format!("refs:\n  - verify: refs/heads/main\n    is: {}\n", repo.rev("main"));
    for batch in [
        "refs:\n  - update: refs/heads/topic\n    to: HEAD\n",
        &verify,
        "files:\n  - write: README\n    content: x\n",
        "files:\n  - write: dir\n    content: x\n",
        "files:\n  - delete: old.txt\n",
    ] {
        let out = repo.apply_unchanged(batch, 1);
        assert!(out.json()["error"]["message"].as_str().unwrap().contains("held"), "{out:?}");
        prepare(&repo, "other", batch).expect(1);
    }
    // Anything else goes ahead: a prepared batch blocks nothing else.
    repo.apply(
        "refs:\n  - create: refs/heads/free\n    to: HEAD\nfiles:\n  - write: free.txt\n    content: f\n",
    )
    .expect(0);
    repo.git(&["branch", "another"]);
    repo.atomic(&["recover"]).expect(0);
    assert_eq!(prepared_xids(&repo), ["held"], "recovery never decides a prepared batch");
    repo.atomic(&["commit", "--xid", "held"]).expect(0);
}

#[test]
fn the_hook_refuses_plain_git_on_a_reserved_ref() {
    let repo = repo();
    prepare(&repo, "held", BATCH).expect(0);
    let out = repo.git_cmd(&["branch", "-f", "topic", "HEAD~1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("held"), "{out:?}");
    let out = repo.git_cmd(&["update-ref", "refs/heads/main", "HEAD~1"]).output().unwrap();
    assert!(!out.status.success());
    repo.git(&["branch", "unrelated"]);
    repo.atomic(&["commit", "--xid", "held"]).expect(0);
    repo.git(&["branch", "-f", "topic", "main"]);
}

#[test]
fn a_ref_moved_behind_the_hooks_back_refuses_commit_and_the_batch_stays_prepared() {
    let repo = repo();
    prepare(&repo, "held", BATCH).expect(0);
    repo.atomic(&["hook", "uninstall"]).expect(0);
    repo.git(&["update-ref", "refs/heads/topic", "HEAD~1"]);
    let before = repo.snapshot();
    let out = repo.atomic(&["commit", "--xid", "held"]);
    out.expect(1);
    assert!(out.stderr.contains("stays prepared"), "{out:?}");
    assert_eq!(repo.snapshot(), before);
    assert!(leftovers(&repo.dir).is_empty(), "{:?}", leftovers(&repo.dir));
    assert_eq!(prepared_xids(&repo), ["held"]);
    repo.atomic(&["abort", "--xid", "held"]).expect(0);
    assert_eq!(repo.snapshot(), before);
}

#[test]
fn locks_of_a_git_killed_as_commit_released_them_are_cleared_before_the_next_command() {
    let repo = repo();
    // Commit notes git's locks (as apply does): recovery need not wait this long to judge them.
    repo.git(&["config", "atomic.lockTimeout", "60"]);
    prepare(&repo, "held", BATCH).expect(0);
    // A directory where the batch writes a file: commit refuses once git holds its locks, and
    // tells git to release them; just then, git's update-ref is killed (as by the OOM killer).
    std::fs::create_dir_all(repo.path("dir/new.txt")).unwrap();
    let main = repo.rev("refs/heads/main");
    let kill = "kill -9 $(head -n1 .git/atomic/prepared/*/update-ref.pid | cut -d' ' -f1)";
    let mut cmd = repo.atomic_cmd(&["commit", "--xid", "held"]);
    cmd.env("GIT_TEST_ATOMIC_RUN_AT", "xa-releasing").env("GIT_TEST_ATOMIC_RUN", kill);
    let out = common::Outcome::from(common::run_with_stdin(&mut cmd, b""));
    out.expect(1);
    assert!(out.stderr.contains("is no longer a file") && out.stderr.contains("stays prepared"), "{out:?}");
    assert_eq!((repo.rev("refs/heads/main"), repo.ref_value("refs/heads/topic")), (main, None));
    assert_eq!(repo.read("README"), "hello\n");
    assert!(repo.path(".git/refs/heads/topic.lock").exists(), "the killed git left its locks");
    assert_eq!(prepared_xids(&repo), ["held"]);
    // The next command's recovery tells those locks for the batch's own (by the pid file that
    // commit kept, and the note in it) and removes them at once: the commit then goes through.
    std::fs::remove_dir_all(repo.path("dir")).unwrap();
    let started = std::time::Instant::now();
    repo.atomic(&["commit", "--xid", "held"]).expect(0);
    assert!(started.elapsed() < Duration::from_secs(10), "commit waited {:?}", started.elapsed());
    assert_eq!(observe(&repo), applied_state(BATCH));
    assert!(leftovers(&repo.dir).is_empty(), "{:?}", leftovers(&repo.dir));
}

/// Runs `git atomic commit --xid XID` in its own process group, which dies at `point`, git's
/// update-ref with it (as a service's whole cgroup is killed): git leaves its lock files.
fn commit_killed_with_its_git(repo: &Repo, xid: &str, point: &str) {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut cmd = repo.atomic_cmd(&["commit", "--xid", xid]);
    cmd.env("GIT_TEST_ATOMIC_CRASH", point).env("GIT_TEST_ATOMIC_CRASH_GROUP", "1");
    cmd.process_group(0).stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("git-atomic starts");
    let status = child.wait().unwrap();
    procs::wait_group_gone(child.id() as i32);
    assert_eq!(status.signal(), Some(procs::SIGKILL), "commit should have died at {point}");
}

#[test]
fn locks_of_a_commit_killed_with_its_git_are_the_batch_s_own_without_waiting() {
    let repo = repo();
    // Recovery would wait this long for a lock it cannot tell for the batch's own.
    repo.git(&["config", "atomic.lockTimeout", "60"]);
    let before = observe(&repo);
    prepare(&repo, "held", BATCH).expect(0);
    // git has said `prepare: ok` and holds every lock; commit and git die before the commit point.
    commit_killed_with_its_git(&repo, "held", "xa-locked");
    assert!(repo.path(".git/refs/heads/topic.lock").exists(), "the killed git left its locks");
    // The note that commit wrote of git's locks lets recovery remove them at once.
    let rec = recover(&repo, None);
    assert_eq!(rec.code(), Some(0), "{}", rec.stderr);
    assert!(rec.elapsed < Duration::from_secs(10), "recovery waited {:?}: {}", rec.elapsed, rec.stderr);
    assert!(!rec.stderr.contains("waiting up to"), "{}", rec.stderr);
    assert!(leftovers(&repo.dir).is_empty(), "{:?}", leftovers(&repo.dir));
    assert_eq!(judge(&observe(&repo), &before, &applied_state(BATCH)), Ok(Seen::Before));
    assert_eq!(prepared_xids(&repo), ["held"]);
    // Killed again, and this time commit's own recovery clears them: it then ends as apply would.
    commit_killed_with_its_git(&repo, "held", "xa-locked");
    let started = std::time::Instant::now();
    repo.atomic(&["commit", "--xid", "held"]).expect(0);
    assert!(started.elapsed() < Duration::from_secs(10), "commit waited {:?}", started.elapsed());
    assert_eq!(observe(&repo), applied_state(BATCH));
    assert!(leftovers(&repo.dir).is_empty(), "{:?}", leftovers(&repo.dir));
}

#[test]
fn a_file_changed_while_prepared_is_saved_before_commit_overwrites_it() {
    let repo = repo();
    prepare(&repo, "held", BATCH).expect(0);
    repo.write("README", "someone else's\n");
    repo.write("old.txt", "edited\n");
    let out = repo.atomic(&["commit", "--xid", "held"]);
    out.expect(0);
    assert!(out.stderr.contains("'README' was changed"), "{out:?}");
    assert_eq!(repo.read("README"), "changed\n");
    assert!(!repo.exists("old.txt"));
    let saved: Vec<_> = out.stderr.lines().filter_map(|l| l.split("saved in '").nth(1)).collect();
    assert_eq!(saved.len(), 2, "{out:?}");
    let contents: Vec<String> =
        saved.iter().map(|p| std::fs::read_to_string(p.trim_end_matches('\'')).unwrap()).collect();
    assert!(contents.contains(&"someone else's\n".to_string()) && contents.contains(&"edited\n".to_string()));
}

/// Runs `args` with a crash point; it must die there.
fn crash(repo: &Repo, args: &[&str], input: &str, point: &str) {
    let ended = run_atomic(repo, args, input.as_bytes(), Some(point));
    assert!(ended.killed(), "{args:?} should have died at {point}: {}", ended.stderr);
}

/// Recovers, then checks no leftovers and exactly `want`.
fn recover_then(repo: &Repo, before: &State, after: &State, want: Seen) {
    let rec = recover(repo, None);
    assert_eq!(rec.code(), Some(0), "{}", rec.stderr);
    assert!(leftovers(&repo.dir).is_empty(), "{:?}", leftovers(&repo.dir));
    assert_eq!(judge(&observe(repo), before, after), Ok(want));
}

#[test]
fn a_crash_at_each_point_of_prepare_leaves_all_or_nothing() {
    let after = applied_state(BATCH);
    for point in ["xa-journaled", "xa-staged", "xa-prepared"] {
        let repo = repo();
        let before = observe(&repo);
        crash(&repo, &["prepare", "--xid", "x", "-"], BATCH, point);
        recover_then(&repo, &before, &after, Seen::Before);
        if point == "xa-prepared" {
            assert_eq!(prepared_xids(&repo), ["x"], "{point}");
            repo.atomic(&["commit", "--xid", "x"]).expect(0);
            assert_eq!(observe(&repo), after, "{point}");
        } else {
            assert!(prepared_dirs(&repo).is_empty(), "{point}");
            repo.atomic(&["commit", "--xid", "x"]).expect(1);
            prepare(&repo, "x", BATCH).expect(0);
        }
    }
}

#[test]
fn a_crash_at_each_point_of_commit_and_abort_leaves_all_or_nothing() {
    let after = applied_state(BATCH);
    let commit_points =
        ["xa-locked", "xa-committed", "file-moved", "file-moved:2", "xa-files-moved", "xa-synced"];
    for point in commit_points {
        let repo = repo();
        let before = observe(&repo);
        prepare(&repo, "x", BATCH).expect(0);
        crash(&repo, &["commit", "--xid", "x"], "", point);
        let want = if point == "xa-locked" { Seen::Before } else { Seen::After };
        recover_then(&repo, &before, &after, want);
        // Either way commit now ends committed, and says so the second time.
        repo.atomic(&["commit", "--xid", "x"]).expect(0);
        assert_eq!(observe(&repo), after, "{point}");
        repo.atomic(&["abort", "--xid", "x"]).expect(1);
        assert!(prepared_dirs(&repo).is_empty(), "{point}");
    }
    let repo = repo();
    let before = observe(&repo);
    prepare(&repo, "x", BATCH).expect(0);
    crash(&repo, &["abort", "--xid", "x"], "", "xa-abort-recorded");
    recover_then(&repo, &before, &after, Seen::Before);
    assert!(prepared_dirs(&repo).is_empty());
    repo.atomic(&["abort", "--xid", "x"]).expect(0);
}

#[test]
fn kills_at_random_instants_of_prepare_and_commit_leave_all_or_nothing() {
    let after = applied_state(BATCH);
    let trials: u64 = std::env::var("CRASH_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(16);
    let (mut killed, mut finished) = (0, 0);
    for trial in 0..trials {
        let repo = repo();
        let before = observe(&repo);
        let delay = Duration::from_micros(1_000 + (trial * 7919) % 40_000);
        let in_commit = trial % 2 == 1;
        if in_commit {
            prepare(&repo, "r", BATCH).expect(0);
        }
        let args: &[&str] =
            if in_commit { &["commit", "--xid", "r"] } else { &["prepare", "--xid", "r", "-"] };
        let input = if in_commit { "" } else { BATCH };
        let ended = spawn_group(&repo, args, input.as_bytes()).kill_after(delay);
        if ended.killed() {
            killed += 1
        } else {
            finished += 1
        }
        let rec = recover(&repo, None);
        assert_eq!(rec.code(), Some(0), "{}", rec.stderr);
        assert!(leftovers(&repo.dir).is_empty(), "trial {trial}: {:?}", leftovers(&repo.dir));
        let now = judge(&observe(&repo), &before, &after).unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        let still_prepared = prepared_dirs(&repo).len() == 1;
        // Nothing visible yet means prepared (or, for a killed prepare, nothing at all).
        assert!(now == Seen::After || still_prepared || !in_commit, "trial {trial}: commit lost its batch");
        assert!(now == Seen::Before || !still_prepared, "trial {trial}: committed yet still prepared");
        if still_prepared || now == Seen::After {
            repo.atomic(&["commit", "--xid", "r"]).expect(0);
            assert_eq!(observe(&repo), after, "trial {trial}");
        }
    }
    eprintln!("random kills: {killed} killed, {finished} finished before the kill");
}

/// The history log's entries, newest first.
fn log_entries(repo: &Repo) -> Vec<serde_json::Value> {
    let out = repo.atomic(&["log", "--json"]);
    out.expect(0);
    serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

#[test]
fn a_committed_batch_is_logged_and_undone_to_the_byte_and_an_aborted_one_is_not_logged() {
    let repo = repo();
    let before = observe(&repo);
    prepare(&repo, "a", BATCH).expect(0);
    repo.atomic(&["abort", "--xid", "a"]).expect(0);
    assert!(log_entries(&repo).is_empty(), "an aborted batch changed nothing");
    prepare(&repo, "c", BATCH).expect(0);
    repo.atomic(&["commit", "--xid", "c"]).expect(0);
    let entries = log_entries(&repo);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["outcome"], "applied");
    assert!(prepared_dirs(&repo).is_empty());
    repo.atomic(&["undo"]).expect(0);
    assert!(observe(&repo) == before, "{}", model::diff(&before, &observe(&repo)));
}

#[test]
fn a_commit_finished_by_recovery_is_logged_and_undone_to_the_byte() {
    let repo = repo();
    let before = observe(&repo);
    prepare(&repo, "x", BATCH).expect(0);
    crash(&repo, &["commit", "--xid", "x"], "", "xa-committed");
    recover_then(&repo, &before, &applied_state(BATCH), Seen::After);
    let entries = log_entries(&repo);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["outcome"], "rolled-forward");
    repo.atomic(&["undo"]).expect(0);
    assert!(observe(&repo) == before, "{}", model::diff(&before, &observe(&repo)));
}

/// A commit refused because the work tree cannot be compared with the journal (a directory
/// where the batch writes a file) reports that refusal, exit 1, even when noting git's locks
/// failed too (`GIT_TEST_ATOMIC_FAIL`: a full disk, say); git releases its locks.
#[test]
fn a_refused_commit_reports_its_refusal_even_when_noting_git_s_locks_fails() {
    let repo = repo();
    prepare(&repo, "held", BATCH).expect(0);
    std::fs::create_dir_all(repo.path("dir/new.txt")).unwrap();
    let before = repo.snapshot();
    let mut cmd = repo.atomic_cmd(&["commit", "--xid", "held"]);
    cmd.env("GIT_TEST_ATOMIC_FAIL", "xa-noting-locks");
    let out = common::Outcome::from(common::run_with_stdin(&mut cmd, b""));
    out.expect(1);
    assert!(out.stderr.contains("is no longer a file") && out.stderr.contains("stays prepared"), "{out:?}");
    assert!(!out.stderr.contains("injected failure"), "{out:?}");
    assert_eq!(repo.snapshot(), before);
    assert!(!repo.path(".git/refs/heads/topic.lock").exists(), "git released its locks");
    assert_eq!(prepared_xids(&repo), ["held"]);
    std::fs::remove_dir_all(repo.path("dir")).unwrap();
    repo.atomic(&["commit", "--xid", "held"]).expect(0);
    assert_eq!(observe(&repo), applied_state(BATCH));
    assert!(leftovers(&repo.dir).is_empty(), "{:?}", leftovers(&repo.dir));
}
