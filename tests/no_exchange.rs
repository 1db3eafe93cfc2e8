//! A repository on a file system that refuses `renameat2(RENAME_EXCHANGE)` (a FUSE mount made
//! with `bindfs`, as NFS and many FUSE file systems do): a batch that keeps history replaces
//! existing files, keeping each old one as its pre-image another way (src/files.rs,
//! `Mover::exchange`); a crash at any point of the moves, of apply or of recovery, ends
//! all-or-nothing after `recover`; `undo` brings back the old contents, modes and symlinks.

mod common;

use common::{Repo, snapshot_tree};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A `bindfs` mount of a temp directory, unmounted when dropped.
struct Mount {
    tmp: tempfile::TempDir,
}

impl Mount {
    /// Mounts, or says why it cannot (no `bindfs`, no FUSE).
    fn new() -> Result<Mount, String> {
        let tmp = tempfile::tempdir().unwrap();
        let (back, mnt) = (tmp.path().join("back"), tmp.path().join("mnt"));
        std::fs::create_dir_all(&back).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let out = Command::new("bindfs").arg(&back).arg(&mnt).output();
        match out {
            Ok(out) if out.status.success() => Ok(Mount { tmp }),
            Ok(out) => Err(format!("bindfs failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
            Err(e) => Err(format!("no bindfs: {e}")),
        }
    }

    fn path(&self) -> PathBuf {
        self.tmp.path().join("mnt")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount").arg("-u").arg(self.path()).status();
    }
}

/// The error `renameat2(RENAME_EXCHANGE)` gives in `dir`, if any.
fn exchange_error(dir: &Path) -> Option<std::io::Error> {
    let (a, b) = (dir.join(".probe-a"), dir.join(".probe-b"));
    std::fs::write(&a, "a").unwrap();
    std::fs::write(&b, "b").unwrap();
    let c = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let (ca, cb) = (c(&a), c(&b));
    // SAFETY: NUL-terminated paths, no descriptors.
    let rc = unsafe {
        libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE)
    };
    let e = (rc != 0).then(std::io::Error::last_os_error);
    let _ = std::fs::remove_file(a);
    let _ = std::fs::remove_file(b);
    e
}

/// A mount whose file system refuses the flag, or None when the test is skipped (an error
/// under CI: see `common::skip`).
fn refusing_mount(test: &str) -> Option<Mount> {
    let mount = match Mount::new() {
        Ok(mount) => mount,
        Err(why) => {
            common::skip(test, &why);
            return None;
        }
    };
    match exchange_error(&mount.path()) {
        Some(e) if e.raw_os_error() == Some(libc::EINVAL) => Some(mount),
        other => {
            common::skip(test, &format!("bindfs did not refuse RENAME_EXCHANGE with EINVAL: {other:?}"));
            None
        }
    }
}

/// A repository (work tree and git dir) on the mount, copied from `template`: an executable
/// file, a symlink and a plain file, committed.
fn repo_on(mount: &Mount, template: &Repo, name: &str) -> Repo {
    let dir = mount.path().join(name);
    let out = Command::new("cp").arg("-a").arg(&template.dir).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    Repo { tmp: tempfile::tempdir().unwrap(), dir }
}

fn template() -> Repo {
    let repo = Repo::new();
    repo.write("run.sh", "#!/bin/sh\necho old\n");
    std::fs::set_permissions(repo.path("run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    std::os::unix::fs::symlink("README", repo.path("link")).unwrap();
    repo.write("d/plain.txt", "plain\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "files"]);
    repo
}

/// Replaces each of the three: the executable by a plain file, the symlink by a file, the
/// plain file by a symlink.
const BATCH: &str = "files:
  - write: run.sh
    content: \"new\\n\"
    mode: \"100644\"
  - write: link
    content: \"was a link\\n\"
    mode: \"100644\"
  - write: d/plain.txt
    content: \"../README\"
    mode: \"120000\"
";

/// The work tree (not `.git`): path to type, mode and content.
fn work_tree(repo: &Repo) -> BTreeMap<String, String> {
    snapshot_tree(&repo.dir).into_iter().filter(|(k, _)| !k.starts_with(".git")).collect()
}

fn undo(repo: &Repo) {
    let out = repo.atomic(&["undo"]);
    assert_eq!(out.code, 0, "undo: {out:?}");
}

#[test]
fn puts_over_existing_files_keep_pre_images_that_undo_brings_back() {
    let Some(mount) = refusing_mount("puts_over_existing_files_keep_pre_images_that_undo_brings_back") else {
        return;
    };
    let repo = repo_on(&mount, &template(), "plain");
    let before = work_tree(&repo);
    let out = repo.apply(BATCH);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(repo.read("run.sh"), "new\n");
    assert!(!repo.is_executable("run.sh"));
    assert!(!repo.path("link").symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(repo.path("d/plain.txt")).unwrap(), Path::new("../README"));
    assert!(repo.pending_batches().is_empty());
    undo(&repo);
    assert_eq!(work_tree(&repo), before, "undo brings back contents, modes and symlinks");
    assert!(repo.is_executable("run.sh"));
    assert_eq!(std::fs::read_link(repo.path("link")).unwrap(), Path::new("README"));
}

/// Runs git-atomic with a crash point; whether it died there.
fn crashed(repo: &Repo, args: &[&str], point: &str, input: &str) -> bool {
    let mut cmd = repo.atomic_cmd(args);
    cmd.env("GIT_TEST_ATOMIC_CRASH", point);
    let out = common::run_with_stdin(&mut cmd, input.as_bytes());
    match out.status.signal() {
        Some(9) => true,
        _ => {
            assert!(out.status.success(), "{args:?} at {point}: {out:?}");
            false
        }
    }
}

/// After recovery the work tree is all before or all after; after, `undo` brings back before.
fn all_or_nothing(
    repo: &Repo,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    case: &str,
) {
    let out = repo.atomic(&["recover"]);
    assert_eq!(out.code, 0, "{case}: recover: {out:?}");
    assert!(repo.pending_batches().is_empty(), "{case}");
    let now = work_tree(repo);
    if &now == after {
        undo(repo);
        assert_eq!(&work_tree(repo), before, "{case}: undo after the roll-forward");
    } else {
        assert_eq!(&now, before, "{case}: neither before nor after");
    }
}

#[test]
fn a_crash_at_any_point_of_the_moves_then_recover_is_all_or_nothing() {
    let Some(mount) = refusing_mount("a_crash_at_any_point_of_the_moves_then_recover_is_all_or_nothing")
    else {
        return;
    };
    let template = template();
    let clean = repo_on(&mount, &template, "clean");
    let before = work_tree(&clean);
    assert_eq!(clean.apply(BATCH).code, 0);
    let after = work_tree(&clean);
    let apply_points = git_atomic::crash::POINTS.iter().filter(|p| !p.starts_with("recover-"));
    let mut points: Vec<String> =
        apply_points.filter(|p| **p != "file-moved").map(|p| p.to_string()).collect();
    points.extend((1..=3).map(|n| format!("file-moved:{n}")));
    let mut died = 0;
    for (i, point) in points.iter().enumerate() {
        let repo = repo_on(&mount, &template, &format!("apply-{i}"));
        died += usize::from(crashed(&repo, &["apply", "-"], point, BATCH));
        all_or_nothing(&repo, &before, &after, &format!("apply crash at {point}"));
    }
    assert!(died >= 4, "the moves' crash points were reached ({died} of {})", points.len());
    // Recovery crashing too, at each of its moves, after apply died at the first one.
    for n in 1..=3 {
        let repo = repo_on(&mount, &template, &format!("recover-{n}"));
        assert!(crashed(&repo, &["apply", "-"], "committed", BATCH));
        assert!(crashed(&repo, &["recover"], &format!("recover-file:{n}"), ""), "recover-file:{n}");
        all_or_nothing(&repo, &before, &after, &format!("recovery crash at recover-file:{n}"));
    }
}
