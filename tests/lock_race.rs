//! Recovery racing plain git on the batch's refs: a lock that a plain git takes on one of an
//! interrupted batch's refs (after the batch's own update-ref released its locks) is never
//! removed, however new it is and whatever it holds; the locks of the batch's own git, killed
//! with apply while it held them, always are (docs/journal.md, "Which lock files are the
//! batch's own").

mod common;

use common::{Outcome, Repo, run_with_stdin};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A batch updating `main` (HEAD's branch, so git locks HEAD too) to a new commit and writing a file.
fn batch(new: &str) -> String {
    format!(
        "refs:\n  - update: refs/heads/main\n    to: {new}\nfiles:\n  - write: a.txt\n    content: \"batch\\n\"\n"
    )
}

fn lock_of(repo: &Repo, name: &str) -> PathBuf {
    repo.path(&format!(".git/{name}.lock"))
}

/// Takes a lock the way git does (`O_CREAT|O_EXCL`, then the value), waiting while the batch's
/// own update-ref, which read end of input when apply died, still holds it.
fn take_lock_as_git_would(lock: &Path, content: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::OpenOptions::new().write(true).create_new(true).open(lock) {
            Ok(mut file) => return file.write_all(content.as_bytes()).unwrap(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("cannot take '{}': {e}", lock.display()),
        }
    }
}

/// Waits until the batch's own update-ref has released its locks (it aborts on end of input).
fn wait_until_released(repo: &Repo) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock_of(repo, "refs/heads/main").exists() || lock_of(repo, "HEAD").exists() {
        assert!(Instant::now() < deadline, "the batch's update-ref never released its locks");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_lock_taken_after_the_batch_released_its_own_is_never_removed() {
    for point in ["prepared", "committed"] {
        for as_written in [false, true] {
            let repo = Repo::new();
            let old = repo.rev("main");
            let new = repo.commit_id("batch");
            repo.crash_apply(point, &batch(&new));
            wait_until_released(&repo);
            // Made after the lock floor, empty or holding the batch's own new value: the old rule
            // took such a lock for the batch's.
            let content = if as_written { format!("{new}\n") } else { String::new() };
            let lock = lock_of(&repo, "refs/heads/main");
            take_lock_as_git_would(&lock, &content);
            let out = repo.atomic(&["recover"]);
            let case = format!("{point}, lock holding {content:?}: {out:#?}");
            assert_eq!(std::fs::read_to_string(&lock).ok(), Some(content.clone()), "lock removed: {case}");
            if point == "prepared" {
                out.expect(0);
                assert_eq!(repo.rev("main"), old, "{case}");
                assert!(!repo.exists("a.txt"), "{case}");
            } else {
                out.expect(3);
                assert_eq!(repo.pending_batches().len(), 1, "kept for later: {case}");
                // The other git gives up, and takes the lock again after recovery's git refused.
                std::fs::remove_file(&lock).unwrap();
                take_lock_as_git_would(&lock, &content);
                repo.atomic(&["recover"]).expect(3);
                assert_eq!(std::fs::read_to_string(&lock).ok(), Some(content.clone()), "again: {case}");
                std::fs::remove_file(&lock).unwrap();
                repo.atomic(&["recover"]).expect(0);
                assert_eq!(repo.rev("main"), new, "{case}");
                assert_eq!(repo.read("a.txt"), "batch\n", "{case}");
            }
            assert!(repo.pending_batches().is_empty(), "{case}");
        }
    }
}

#[test]
fn locks_of_a_git_killed_with_apply_are_removed() {
    for point in ["staged", "prepared", "committed"] {
        let repo = Repo::new();
        let old = repo.rev("main");
        let new = repo.commit_id("batch");
        let mut cmd = repo.atomic_cmd(&["apply", "-"]);
        cmd.env("GIT_TEST_ATOMIC_CRASH", point).env("GIT_TEST_ATOMIC_CRASH_GROUP", "1").process_group(0);
        let died = run_with_stdin(&mut cmd, batch(&new).as_bytes());
        assert!(!died.status.success(), "{point}: {died:?}");
        if point != "staged" {
            assert!(lock_of(&repo, "refs/heads/main").exists(), "{point}: git died holding its lock");
        }
        repo.atomic(&["recover"]).expect(0);
        let want = if point == "committed" { &new } else { &old };
        assert_eq!(&repo.rev("main"), want, "{point}");
        for name in ["refs/heads/main", "HEAD"] {
            assert!(!lock_of(&repo, name).exists(), "{point}: {name}.lock left behind");
        }
        repo.apply(&format!("refs:\n  - update: refs/heads/main\n    to: {old}\n")).expect(0);
    }
}

/// A reference-transaction hook of the user's that, for the plain git the test starts (not for
/// git-atomic's own), says it holds its locks and waits until told to go on.
fn install_holding_hook(repo: &Repo) -> (PathBuf, PathBuf) {
    let (held, go) = (repo.tmp.path().join("held"), repo.tmp.path().join("go"));
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = prepared ] && [ -n \"$HOLD\" ]; then\n  : > '{}'\n  while [ ! -e '{}' ]; do sleep 0.01; done\nfi\nexit 0\n",
        held.display(),
        go.display()
    );
    repo.write_reference_transaction_hook(&script);
    (held, go)
}

#[test]
fn recovery_while_a_plain_git_holds_the_batchs_ref_leaves_it_alone() {
    for point in ["prepared", "committed"] {
        let repo = Repo::new();
        let old = repo.rev("main");
        let new = repo.commit_id("batch");
        let (held, go) = install_holding_hook(&repo);
        repo.crash_apply(point, &batch(&new));
        wait_until_released(&repo);
        // A plain git moving main to the batch's own new value: its lock holds exactly that.
        let mut plain = repo.git_cmd(&["update-ref", "-m", "plain", "refs/heads/main", &new, &old]);
        let plain = plain.env("HOLD", "1").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !held.exists() {
            assert!(Instant::now() < deadline, "the plain git never took its locks");
            std::thread::sleep(Duration::from_millis(5));
        }
        let recovered = repo.atomic(&["recover"]);
        std::fs::write(&go, "").unwrap();
        let plain = plain.wait_with_output().unwrap();
        let case = format!("{point}: {recovered:#?}\nplain git: {plain:?}");
        assert!(plain.status.success(), "the plain git lost its lock: {case}");
        assert_eq!(repo.reflog("main")[0], "plain", "{case}");
        assert_eq!(recovered.code, if point == "prepared" { 0 } else { 3 }, "{case}");
        repo.atomic(&["recover"]).expect(0);
        assert_eq!(repo.rev("main"), new, "{case}");
        assert_eq!(repo.exists("a.txt"), point == "committed", "{case}");
        assert!(repo.pending_batches().is_empty(), "{case}");
    }
}

/// Every lock file under the git dir.
fn lock_files(repo: &Repo) -> Vec<String> {
    let out = Command::new("find").arg(repo.path(".git")).args(["-name", "*.lock"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// A bounded random race: after apply dies, a plain `git update-ref` of the batch's ref runs at
/// once with recovery. The plain git either does its update or is refused because the lock is
/// taken; it never loses its lock to recovery (git then fails to rename it into place, or
/// renames someone else's).
#[test]
fn recovery_racing_plain_update_ref_never_takes_its_lock() {
    let rounds = 40;
    let repo = Repo::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut updated, mut refused) = (0, 0);
    for round in 0..rounds {
        let new = repo.commit_id(&format!("batch {round}"));
        let point = if next() % 2 == 0 { "prepared" } else { "committed" };
        std::fs::remove_file(repo.path("a.txt")).ok();
        repo.crash_apply(point, &batch(&new));
        let value = if next() % 2 == 0 { new.clone() } else { repo.commit_id(&format!("plain {round}")) };
        let mut plain = repo.git_cmd(&["update-ref", "-m", "plain", "refs/heads/main", &value]);
        let plain = plain.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(next() % 3000));
        let recovered: Outcome = repo.atomic(&["recover"]);
        let plain = plain.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&plain.stderr);
        let case = format!("round {round} ({point}): {recovered:#?}\nplain git: {stderr}");
        if plain.status.success() {
            updated += 1;
        } else {
            assert!(stderr.contains("File exists") || stderr.contains("cannot lock ref"), "{case}");
            refused += 1;
        }
        assert!([0, 3].contains(&recovered.code), "{case}");
        // Once the plain git is done, recovery finishes the batch, or finds main moved by the
        // plain git (a committed batch then conflicts, and is abandoned here).
        if let Some(id) = repo.pending_batches().first() {
            let again = repo.atomic(&["recover"]);
            if again.code == 3 {
                assert!(again.stdout.contains("moved by someone else"), "{case}\nagain: {again:#?}");
                repo.atomic(&["recover", "--abandon", id]).expect(0);
            } else {
                again.expect(0);
            }
        }
        assert!(repo.pending_batches().is_empty(), "{case}");
        assert_eq!(lock_files(&repo), Vec::<String>::new(), "{case}");
    }
    eprintln!("{rounds} rounds: the plain git updated main {updated} times, was refused {refused} times");
}
