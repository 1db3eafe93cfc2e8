//! The branches of src/files.rs that only a crash, a late edit or another file system reaches
//! (issue 21's mutation testing found each untested): a put or removal that recovery finds half
//! done, a file changed after the recheck, a directory emptied between two `rmdir`s, and history's
//! pre-images kept across file systems.

mod common;

use common::Repo;
use std::path::Path;

/// A repository whose batches keep no history (`atomic.history=false`): plain renames and
/// unlinks, no pre-images.
fn without_history() -> Repo {
    let repo = Repo::new();
    repo.git(&["config", "atomic.history", "false"]);
    repo
}

/// Runs `apply --json` with `command` run by the shell at the crash point `at` (see src/crash.rs).
fn apply_running_at(repo: &Repo, at: &str, command: &str, batch: &str) -> common::Outcome {
    let mut cmd = repo.atomic_cmd(&["apply", "--json", "-"]);
    cmd.env("GIT_TEST_ATOMIC_RUN_AT", at).env("GIT_TEST_ATOMIC_RUN", command);
    common::run_with_stdin(&mut cmd, batch.as_bytes()).into()
}

/// Without history a put is a plain rename; a crash after the first of two leaves the second
/// staged. Recovery renames only that one: the first path already holds the new content and its
/// staged file is gone.
#[test]
fn puts_without_history_half_done_by_a_crash_are_finished_with_the_new_content() {
    let repo = without_history();
    repo.write("a.txt", "old a\n");
    repo.write("b.txt", "old b\n");
    repo.crash_apply(
        "file-moved:1",
        "files:\n  - write: a.txt\n    content: new a\n  - write: b.txt\n    content: new b\n",
    );
    assert_eq!(repo.read("a.txt"), "new a", "the crash came after the first move");
    assert_eq!(repo.read("b.txt"), "old b\n", "and before the second");
    repo.atomic(&["recover"]).expect(0);
    assert_eq!(repo.read("a.txt"), "new a");
    assert_eq!(repo.read("b.txt"), "new b");
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

/// Without history a removal is an unlink; recovery finishes one the crash left undone and
/// accepts one already done.
#[test]
fn removals_without_history_half_done_by_a_crash_are_finished() {
    let repo = without_history();
    repo.write("a.txt", "a\n");
    repo.write("b.txt", "b\n");
    repo.crash_apply("file-moved:1", "files:\n  - delete: a.txt\n  - delete: b.txt\n");
    assert!(!repo.exists("a.txt"), "the crash came after the first removal");
    assert!(repo.exists("b.txt"), "and before the second");
    repo.atomic(&["recover"]).expect(0);
    assert!(!repo.exists("a.txt"));
    assert!(!repo.exists("b.txt"));
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

/// A file the batch removes, changed by someone after the crash, is a conflict: recovery
/// never unlinks content the journal does not know.
#[test]
fn a_removal_without_history_of_a_file_changed_after_the_crash_is_a_conflict() {
    let repo = without_history();
    repo.write("a.txt", "a\n");
    repo.crash_apply("committed", "files:\n  - delete: a.txt\n");
    repo.write("a.txt", "someone else\n");
    let out = repo.atomic(&["recover", "--json"]);
    out.expect(3);
    assert!(out.json()["recovered"][0]["conflicts"][0].as_str().unwrap().contains("a.txt"), "{out:?}");
    assert_eq!(repo.read("a.txt"), "someone else\n");
}

/// The state a death between the `rmdir` of `d/e` and that of `d` leaves (file and `d/e` gone,
/// `d` empty): recovery still removes `d`, which the batch emptied.
#[test]
fn a_directory_emptied_by_a_batch_is_removed_by_recovery_after_its_subdirectory() {
    let repo = Repo::new();
    repo.write("d/e/f", "f\n");
    repo.crash_apply("committed", "files:\n  - delete: d/e/f\n");
    std::fs::remove_file(repo.path("d/e/f")).unwrap();
    std::fs::remove_dir(repo.path("d/e")).unwrap();
    repo.atomic(&["recover"]).expect(0);
    assert!(!repo.exists("d"), "an empty directory the batch emptied is left behind");
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

/// A directory put in place of a file after the commit point (no recheck follows) cannot be
/// unlinked: apply stops, the batch waits, and recovery reports the conflict. Never exit 0
/// with the "deleted" path still there.
#[test]
fn a_directory_put_where_a_removed_file_was_fails_the_removal() {
    let repo = without_history();
    repo.write("a.txt", "a\n");
    let out = apply_running_at(&repo, "committed", "rm a.txt && mkdir a.txt", "files:\n  - delete: a.txt\n");
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("cannot remove 'a.txt'"), "{out:?}");
    assert!(repo.path("a.txt").is_dir());
    assert_eq!(repo.pending_batches().len(), 1, "the batch waits for recovery");
    repo.atomic(&["recover"]).expect(3);
    assert!(repo.path("a.txt").is_dir());
}

/// With history a put exchanges the new file with the old one; an old file removed after the
/// recheck leaves nothing to exchange, and the new file is renamed into place (the log reports
/// that nothing was found to keep).
#[test]
fn an_old_file_removed_after_the_recheck_is_replaced_by_the_new_one() {
    let repo = Repo::new();
    repo.write("a.txt", "old\n");
    let out =
        apply_running_at(&repo, "committed", "rm a.txt", "files:\n  - write: a.txt\n    content: new\n");
    out.expect(0);
    assert_eq!(repo.read("a.txt"), "new");
    let kept = out.json()["kept"].clone();
    assert_eq!(kept[0]["path"], "a.txt", "{kept}");
    assert_eq!(kept[0]["found"], serde_json::Value::Null, "{kept}");
}

/// A linked worktree on another file system (tmpfs) than the common dir holding the batch
/// directory: history keeps each old file by copying it across (an executable, a symlink, a
/// removed file), and `undo` brings every one of them back as it was.
#[test]
fn old_files_kept_across_file_systems_are_restored_by_undo() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    let test = "old_files_kept_across_file_systems_are_restored_by_undo";
    let repo = Repo::new();
    let Ok(scratch) = tempfile::tempdir_in("/dev/shm") else {
        common::skip(test, "no /dev/shm");
        return;
    };
    if std::fs::metadata(&scratch).unwrap().dev() == std::fs::metadata(&repo.dir).unwrap().dev() {
        common::skip(test, "/dev/shm is on the same file system as the repository");
        return;
    }
    let linked = scratch.path().join("linked");
    repo.git(&["worktree", "add", "-q", linked.to_str().unwrap(), "-b", "side"]);
    std::fs::write(linked.join("run"), "#!/bin/sh\necho old\n").unwrap();
    std::fs::set_permissions(linked.join("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    symlink("README", linked.join("ln")).unwrap();
    std::fs::write(linked.join("gone"), "gone\n").unwrap();
    let batch = "files:\n  - write: run\n    content: \"#!/bin/sh\\necho new\\n\"\n    mode: \"100755\"\n  - write: ln\n    content: other\n    mode: \"120000\"\n  - delete: gone\n";
    repo.apply_in(&linked, &["apply", "-"], batch).expect(0);
    assert_eq!(std::fs::read_to_string(linked.join("run")).unwrap(), "#!/bin/sh\necho new\n");
    assert_eq!(std::fs::read_link(linked.join("ln")).unwrap(), Path::new("other"));
    assert!(!linked.join("gone").exists());

    repo.apply_in(&linked, &["undo"], "").expect(0);
    assert_eq!(std::fs::read_to_string(linked.join("run")).unwrap(), "#!/bin/sh\necho old\n");
    assert!(std::fs::metadata(linked.join("run")).unwrap().permissions().mode() & 0o111 != 0);
    assert_eq!(std::fs::read_link(linked.join("ln")).unwrap(), Path::new("README"));
    assert_eq!(std::fs::read_to_string(linked.join("gone")).unwrap(), "gone\n");
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

/// A directory removed by someone else while recovery moves files into it, after the first
/// one: recovery's cached handle then names a deleted directory, and a rename into it fails
/// with ENOENT. That is the conflict of a directory removed during the moves (exit 3, the
/// rest of the batch finished), not a fatal error (exit 128); `tests/race.rs`'s
/// `recovery_with_a_parent_renamed_away` met it when the attacker's directory replaced the
/// one recovery had just created.
#[test]
fn a_directory_removed_while_recovery_moves_files_into_it_is_a_conflict() {
    for history in ["true", "false"] {
        let repo = Repo::new();
        repo.git(&["config", "atomic.history", history]);
        repo.write("d/old", "old\n");
        let batch = "files:\n  - write: d/a\n    content: a\n  - write: d/b\n    content: b\n  - write: d/old\n    content: new\n  - write: c\n    content: c\n";
        repo.crash_apply("committed", batch);
        let mut cmd = repo.atomic_cmd(&["recover"]);
        cmd.env("GIT_TEST_ATOMIC_RUN_AT", "recover-file").env("GIT_TEST_ATOMIC_RUN", "rm -rf d");
        let out: common::Outcome = common::run_with_stdin(&mut cmd, b"").into();
        out.expect(3);
        assert!(out.stdout.contains("'d' was removed while the files were being moved"), "{out:?}");
        assert_eq!(repo.read("c"), "c", "history={history}: the rest of the batch is finished");
        assert!(!repo.exists("d"));
    }
}

/// The same during apply, with history: the put of a file that existed is an exchange, and with
/// its directory removed after the first move it finds neither the old file nor a directory to
/// rename into. Apply stops at that conflict (exit 3), naming the removed directory.
#[test]
fn a_directory_removed_while_apply_exchanges_files_in_it_is_a_conflict() {
    let repo = Repo::new();
    repo.write("d/old", "old\n");
    let batch = "files:\n  - write: d/a\n    content: a\n  - write: d/old\n    content: new\n";
    let out = apply_running_at(&repo, "file-moved", "rm -rf d", batch);
    out.expect(3);
    assert!(out.stderr.contains("'d' was removed while the files were being moved"), "{out:?}");
    assert_eq!(repo.pending_batches().len(), 1, "the batch waits for recovery");
}

/// A linked worktree on another file system (tmpfs) than the common dir, or `None` (the test
/// skipped) where there is none: every put there is a copy across file systems.
fn linked_on_another_file_system(repo: &Repo, test: &str) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(scratch) = tempfile::tempdir_in("/dev/shm") else {
        common::skip(test, "no /dev/shm");
        return None;
    };
    if std::fs::metadata(&scratch).unwrap().dev() == std::fs::metadata(&repo.dir).unwrap().dev() {
        common::skip(test, "/dev/shm is on the same file system as the repository");
        return None;
    }
    let linked = scratch.path().join("linked");
    repo.git(&["worktree", "add", "-q", linked.to_str().unwrap(), "-b", "side"]);
    Some((scratch, linked))
}

/// The same across file systems: the put's copy (and, with history, the copy of the old file)
/// into a directory removed after the first move finds nothing to create in. That is the
/// conflict too (exit 3), not a fatal error (exit 128).
#[test]
fn a_directory_removed_while_apply_copies_files_across_file_systems_is_a_conflict() {
    let test = "a_directory_removed_while_apply_copies_files_across_file_systems_is_a_conflict";
    for history in ["true", "false"] {
        let repo = Repo::new();
        repo.git(&["config", "atomic.history", history]);
        let Some((_scratch, linked)) = linked_on_another_file_system(&repo, test) else { return };
        std::fs::create_dir(linked.join("d")).unwrap();
        std::fs::write(linked.join("d/old"), "old\n").unwrap();
        let batch = "files:\n  - write: d/a\n    content: a\n  - write: d/old\n    content: new\n";
        let mut cmd = repo.atomic_cmd(&["apply", "-"]);
        cmd.current_dir(&linked)
            .env("GIT_TEST_ATOMIC_RUN_AT", "file-moved")
            .env("GIT_TEST_ATOMIC_RUN", "rm -rf d");
        let out: common::Outcome = common::run_with_stdin(&mut cmd, batch.as_bytes()).into();
        out.expect(3);
        assert!(
            out.stderr.contains("'d' was removed while the files were being moved"),
            "history={history}: {out:?}"
        );
        assert_eq!(repo.pending_batches().len(), 1, "history={history}: the batch waits for recovery");
    }
}

/// A top-level path's directory is the work tree itself: a linked worktree removed while apply
/// moves files into it is named as such, not as `''`.
#[test]
fn a_work_tree_removed_while_apply_moves_files_into_it_is_named() {
    let repo = Repo::new();
    let scratch = tempfile::tempdir().unwrap();
    let linked = scratch.path().join("linked");
    repo.git(&["worktree", "add", "-q", linked.to_str().unwrap(), "-b", "side"]);
    let batch = "files:\n  - write: a\n    content: a\n  - write: b\n    content: b\n";
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    let rm = format!("rm -rf '{}'", linked.display());
    cmd.current_dir(&linked).env("GIT_TEST_ATOMIC_RUN_AT", "file-moved").env("GIT_TEST_ATOMIC_RUN", &rm);
    let out: common::Outcome = common::run_with_stdin(&mut cmd, batch.as_bytes()).into();
    out.expect(3);
    assert!(out.stderr.contains("the work tree '"), "{out:?}");
    assert!(out.stderr.contains("/linked' was removed while the files were being moved"), "{out:?}");
    assert_eq!(repo.pending_batches().len(), 1, "the batch waits for recovery");
}

/// The same during recovery, which has no "committed but could not finish" to fall back on: a
/// copy into the removed directory is the conflict (exit 3), not a fatal error (exit 128).
#[test]
fn a_directory_removed_while_recovery_copies_files_across_file_systems_is_a_conflict() {
    use std::os::unix::process::ExitStatusExt;
    let test = "a_directory_removed_while_recovery_copies_files_across_file_systems_is_a_conflict";
    let repo = Repo::new();
    let Some((_scratch, linked)) = linked_on_another_file_system(&repo, test) else { return };
    let batch = "files:\n  - write: d/a\n    content: a\n  - write: d/b\n    content: b\n  - write: c\n    content: c\n";
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    cmd.current_dir(&linked).env("GIT_TEST_ATOMIC_CRASH", "committed");
    assert_eq!(common::run_with_stdin(&mut cmd, batch.as_bytes()).status.signal(), Some(9));
    let mut cmd = repo.atomic_cmd(&["recover"]);
    cmd.current_dir(&linked)
        .env("GIT_TEST_ATOMIC_RUN_AT", "recover-file")
        .env("GIT_TEST_ATOMIC_RUN", "rm -rf d");
    let out: common::Outcome = common::run_with_stdin(&mut cmd, b"").into();
    out.expect(3);
    assert!(out.stdout.contains("'d' was removed while the files were being moved"), "{out:?}");
    assert_eq!(std::fs::read_to_string(linked.join("c")).unwrap(), "c", "the rest of the batch is finished");
}

/// Across file systems, an old file removed after the recheck leaves nothing to copy into the
/// log: the new file is copied into place, as the exchange renames it on one file system.
#[test]
fn an_old_file_removed_after_the_recheck_is_replaced_across_file_systems() {
    let test = "an_old_file_removed_after_the_recheck_is_replaced_across_file_systems";
    let repo = Repo::new();
    let Some((_scratch, linked)) = linked_on_another_file_system(&repo, test) else { return };
    std::fs::write(linked.join("a.txt"), "old\n").unwrap();
    let mut cmd = repo.atomic_cmd(&["apply", "--json", "-"]);
    cmd.current_dir(&linked)
        .env("GIT_TEST_ATOMIC_RUN_AT", "committed")
        .env("GIT_TEST_ATOMIC_RUN", "rm a.txt");
    let out: common::Outcome =
        common::run_with_stdin(&mut cmd, b"files:\n  - write: a.txt\n    content: new\n").into();
    out.expect(0);
    assert_eq!(std::fs::read_to_string(linked.join("a.txt")).unwrap(), "new");
    assert_eq!(out.json()["kept"][0]["found"], serde_json::Value::Null, "{out:?}");
}
