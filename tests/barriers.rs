//! The durability barrier after the moves, seen from outside: it syncs the directories whose
//! entries the batch changed, and a path it cannot sync is an error. `durable::fsync_path` skips a
//! path that vanished or became a symlink; any other failure to open it (ENOTDIR, EACCES, EIO,
//! EMFILE…) fails the batch, which is never reported durable (exit 0) when it is not. Issue 21's
//! mutation testing found both untested.

mod common;

use common::Repo;
use std::process::Command;

/// A files-only batch without history (no refs, so no `syncfs` of git's file system): the
/// barrier holds just the directories of a put and of a removal, and fsyncs each of them
/// after the rename or unlink and before apply ends.
#[test]
fn the_directories_of_moved_and_removed_files_are_fsynced() {
    let test = "the_directories_of_moved_and_removed_files_are_fsynced";
    if Command::new("strace").arg("-V").output().is_err() {
        common::skip(test, "strace is not installed");
        return;
    }
    let repo = Repo::new();
    repo.git(&["config", "atomic.history", "false"]);
    repo.write("d/kept", "kept\n");
    repo.write("e/kept", "kept\n");
    repo.write("e/gone", "gone\n");
    let log = repo.tmp.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "-y",
        "-e",
        "trace=fsync,fdatasync,syncfs,renameat2,renameat,rename,unlinkat,unlink",
    ])
    .arg("-o")
    .arg(&log)
    .arg(env!("CARGO_BIN_EXE_git-atomic"));
    common::seal(&mut cmd, &repo.home());
    cmd.current_dir(&repo.dir).args(["apply", "-"]);
    let out: common::Outcome =
        common::run_with_stdin(&mut cmd, b"files:\n  - write: d/new\n    content: n\n  - delete: e/gone\n")
            .into();
    out.expect(0);
    assert!(!repo.exists("e/gone"));
    let log = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let find = |what: &dyn Fn(&str) -> bool, name: &str| {
        lines.iter().position(|l| what(l)).unwrap_or_else(|| panic!("no {name} in:\n{log}"))
    };
    let put = find(&|l| l.contains("rename") && l.contains("\"new\""), "rename into d/new");
    let removal = find(&|l| l.contains("unlinkat") && l.contains("\"gone\""), "unlink of e/gone");
    for (dir, after) in [("d", put), ("e", removal)] {
        let fd = format!("<{}>)", repo.path(dir).display());
        let synced =
            lines[after..].iter().any(|l| l.contains("syncfs(") || (l.contains("fsync(") && l.contains(&fd)));
        assert!(synced, "no fsync of '{dir}' after its change:\n{log}");
    }
}

/// A directory the batch moved a file into, whose parent someone swaps for a file after the
/// moves and before the barrier: the fsync of `d/e` cannot open it (ENOTDIR), and apply ends
/// as committed but unfinished (exit 3) instead of exit 0; recovery then finds the conflict.
#[test]
fn a_moved_file_whose_directory_cannot_be_opened_for_its_fsync_is_not_reported_durable() {
    let repo = Repo::new();
    repo.git(&["config", "atomic.history", "false"]);
    repo.write("d/e/kept", "kept\n");
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    // The one path of the last barrier is `d/e` (no refs, no history, no new directory): it
    // is fsynced by path rather than by a `syncfs`.
    cmd.env("GIT_TEST_ATOMIC_RUN_AT", "files-moved")
        .env("GIT_TEST_ATOMIC_RUN", "mv d d.aside && printf x > d");
    let out: common::Outcome =
        common::run_with_stdin(&mut cmd, b"files:\n  - write: d/e/f\n    content: f\n").into();
    out.expect(3);
    assert!(out.stderr.contains("/d/e' durable: Not a directory"), "{out:?}");
    assert_eq!(std::fs::read_to_string(repo.path("d.aside/e/f")).unwrap(), "f", "moved before the swap");
    assert_eq!(repo.pending_batches().len(), 1, "the batch is not finished");
    repo.atomic(&["recover"]).expect(3);
    assert_eq!(repo.read("d"), "x");
}
