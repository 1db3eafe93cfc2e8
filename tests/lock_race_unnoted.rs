//! Recovery racing plain git when no note says which locks are the batch's (docs/journal.md,
//! "Which lock files are the batch's own"): apply and its update-ref killed before git said
//! `prepare: ok`, a power cut that lost the note (a simulated reboot: `GIT_TEST_ATOMIC_BOOT`),
//! and reftable. A plain `git update-ref --stdin` holds a lock on one of the batch's refs, made
//! after the batch's update-ref started, empty or holding the batch's own new value: recovery
//! leaves it alone and the plain git commits; the locks of the batch's dead git still go.

mod common;
#[path = "common/procs.rs"]
mod procs;

use common::Repo;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// A plain `git update-ref --stdin` transaction, held open after `prepare: ok`.
struct Plain {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Plain {
    /// Starts the transaction of `lines` and waits until git holds its locks.
    fn hold(repo: &Repo, lines: &str) -> Plain {
        let mut cmd = repo.git_cmd(&["update-ref", "-m", "plain", "--stdin"]);
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let mut plain = Plain { child, stdin, stdout: BufReader::new(stdout) };
        plain.say("start");
        plain.stdin.write_all(lines.as_bytes()).unwrap();
        plain.say("prepare");
        plain
    }

    fn say(&mut self, verb: &str) {
        writeln!(self.stdin, "{verb}").unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        if answer.trim() != format!("{verb}: ok") {
            let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
            panic!("plain git: {verb}: {answer:?}: {:?}", out.wait_with_output().unwrap());
        }
    }

    /// Commits: git renames its locks into place, which fails if someone took them.
    fn commit(mut self) {
        self.say("commit");
        drop(self.stdin);
        assert!(self.child.wait().unwrap().success());
    }

    fn abort(mut self) {
        self.say("abort");
        drop(self.stdin);
        assert!(self.child.wait().unwrap().success());
    }
}

fn lock_of(repo: &Repo, name: &str) -> PathBuf {
    repo.path(&format!(".git/{name}.lock"))
}

/// Every lock file under the git dir.
fn lock_files(repo: &Repo) -> Vec<String> {
    let out = Command::new("find").arg(repo.path(".git")).args(["-name", "*.lock"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Writes the boot that `GIT_TEST_ATOMIC_BOOT` points the commands at: its id, and its start.
fn boot(file: &Path, id: &str, began: SystemTime) {
    let secs = began.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    std::fs::write(file, format!("{id} {secs:.6}\n")).unwrap();
}

const BOOT_A: &str = "0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a";
const BOOT_B: &str = "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b";

/// A repository with branches `a` and `b` at main, where a git waits up to 20 s for a ref lock.
fn two_branches() -> (Repo, String) {
    let repo = Repo::new();
    let old = repo.rev("main");
    repo.git(&["branch", "a"]);
    repo.git(&["branch", "b"]);
    repo.git(&["config", "core.filesRefLockTimeout", "20000"]);
    (repo, old)
}

/// Kills apply and its update-ref (one process group) while that git holds `a`'s lock and waits
/// for `b`'s, which a first plain git holds; that git then gives `b` up. The batch's git has
/// not said `prepare: ok`: no note. Returns when every process of the group is gone.
fn kill_apply_while_git_locks(repo: &Repo, new: &str, boot_file: Option<&Path>) {
    let old = repo.rev("main");
    let first = Plain::hold(repo, &format!("update refs/heads/b {} {old}\n", repo.commit_id("first")));
    let batch = format!(
        "refs:\n  - update: refs/heads/a\n    to: {new}\n  - update: refs/heads/b\n    to: {new}\nfiles:\n  - write: a.txt\n    content: batch\n"
    );
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    if let Some(file) = boot_file {
        cmd.env("GIT_TEST_ATOMIC_BOOT", file);
    }
    let mut apply = cmd
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    apply.stdin.take().unwrap().write_all(batch.as_bytes()).unwrap();
    wait_for("the batch's git to lock a", || lock_of(repo, "refs/heads/a").exists());
    std::thread::sleep(Duration::from_millis(50)); // git now retries b's lock
    // SAFETY: killpg(2) has no memory-safety preconditions; the group is apply's own.
    unsafe { libc::killpg(apply.id() as libc::pid_t, libc::SIGKILL) };
    apply.wait().unwrap();
    procs::wait_for_orphans(repo);
    assert_eq!(repo.pending_batches().len(), 1);
    first.abort();
}

/// Same boot, no note: the batch's git is dead, `a.lock` (its own) and `b.lock` (a plain git's,
/// made since, empty or holding the batch's value for b) look alike. Recovery waits; the plain
/// git's lock goes when it commits, so it is someone else's; `a.lock` stays as it was, so it is
/// the dead git's, and goes.
#[test]
fn without_a_note_recovery_waits_out_a_plain_gits_lock_and_removes_its_own() {
    for plain_verb in ["update", "verify"] {
        let (repo, old) = two_branches();
        repo.git(&["config", "atomic.lockTimeout", "5"]);
        let new = repo.commit_id("batch");
        kill_apply_while_git_locks(&repo, &new, None);
        let ours = std::fs::read_to_string(lock_of(&repo, "refs/heads/a")).unwrap();
        assert!(ours.is_empty() || ours == format!("{new}\n"), "{ours:?}");
        let line = match plain_verb {
            "update" => format!("update refs/heads/b {new} {old}\n"),
            _ => format!("verify refs/heads/b {old}\n"),
        };
        let plain = Plain::hold(&repo, &line);
        let held = std::fs::read_to_string(lock_of(&repo, "refs/heads/b")).unwrap();
        let want = if plain_verb == "update" { format!("{new}\n") } else { String::new() };
        assert_eq!(held, want, "the plain git's lock looks like the batch's");
        let recover =
            repo.atomic_cmd(&["recover"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(std::fs::read_to_string(lock_of(&repo, "refs/heads/b")).ok(), Some(want), "{plain_verb}");
        plain.commit();
        let out = recover.wait_with_output().unwrap();
        let case = format!("{plain_verb}: {out:?}");
        assert!(out.status.success(), "{case}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("waiting up to 5s"), "{case}");
        assert_eq!(lock_files(&repo), Vec::<String>::new(), "{case}");
        assert_eq!(repo.rev("a"), old, "rolled back: {case}");
        assert_eq!(&repo.rev("b"), if plain_verb == "update" { &new } else { &old }, "{case}");
        assert!(!repo.exists("a.txt"), "{case}");
        assert!(repo.pending_batches().is_empty(), "{case}");
        repo.apply("refs:\n  - update: refs/heads/a\n    to: main\n").expect(0);
    }
}

/// A power cut after the batch's git took `a.lock` (the note, if any, lost), simulated: the
/// boot that recovery sees began after that lock and before the plain git's. Recovery removes
/// the lock of the earlier boot at once, leaves the plain git's, made in this boot, at once
/// (no waiting), and the plain git commits.
#[test]
fn after_a_reboot_locks_of_the_earlier_boot_go_and_those_of_this_boot_stay() {
    for plain_verb in ["update", "verify"] {
        let (repo, old) = two_branches();
        repo.git(&["config", "atomic.lockTimeout", "60"]);
        let boot_file = repo.tmp.path().join("boot");
        boot(&boot_file, BOOT_A, SystemTime::now() - Duration::from_secs(100));
        let new = repo.commit_id("batch");
        kill_apply_while_git_locks(&repo, &new, Some(&boot_file));
        let pid_file =
            std::fs::read_dir(repo.path(".git/atomic/batches")).unwrap().next().unwrap().unwrap().path();
        let pid_line = std::fs::read_to_string(pid_file.join("update-ref.pid")).unwrap();
        assert!(pid_line.ends_with(&format!(" {BOOT_A}")), "pid, boot id, no note: {pid_line:?}");
        boot(&boot_file, BOOT_B, SystemTime::now());
        std::thread::sleep(Duration::from_millis(20));
        let line = match plain_verb {
            "update" => format!("update refs/heads/b {new} {old}\n"),
            _ => format!("verify refs/heads/b {old}\n"),
        };
        let plain = Plain::hold(&repo, &line);
        let started = Instant::now();
        let out = repo.atomic_cmd(&["recover"]).env("GIT_TEST_ATOMIC_BOOT", &boot_file).output().unwrap();
        let case = format!("{plain_verb}: {out:?}");
        assert!(out.status.success(), "{case}");
        assert!(started.elapsed() < Duration::from_secs(10), "no waiting: {case}");
        assert!(!lock_of(&repo, "refs/heads/a").exists(), "the earlier boot's lock goes: {case}");
        assert!(lock_of(&repo, "refs/heads/b").exists(), "the plain git's lock stays: {case}");
        plain.commit();
        assert_eq!(lock_files(&repo), Vec::<String>::new(), "{case}");
        assert_eq!(repo.rev("a"), old, "{case}");
        assert_eq!(&repo.rev("b"), if plain_verb == "update" { &new } else { &old }, "{case}");
        assert!(repo.pending_batches().is_empty(), "{case}");
    }
}

/// apply killed alone before it read `prepare: ok` (no note), or just after it noted the locks
/// (its git then aborts on end of input and releases everything): a plain git's lock on the
/// batch's ref, taken after that, holding the batch's value (with reftable, the stack's
/// `tables.list.lock`, which the note cannot decide: auto-compaction's locks come after it) is
/// left alone, and the plain git commits.
#[test]
fn apply_killed_before_the_note_leaves_a_plain_gits_later_lock_alone() {
    for (format, point) in [("files", "staged"), ("reftable", "staged"), ("reftable", "prepared")] {
        if format == "reftable" && !common::git_at_least((2, 45)) {
            continue;
        }
        let format = format!("{format} {point}");
        let repo =
            if format.starts_with("files") { Repo::new() } else { Repo::init(&["--ref-format=reftable"]) };
        repo.git(&["config", "atomic.lockTimeout", "5"]);
        let old = repo.rev("main");
        repo.git(&["branch", "c"]);
        let new = repo.commit_id("batch");
        repo.crash_apply(point, &format!("refs:\n  - update: refs/heads/c\n    to: {new}\n"));
        procs::wait_for_orphans(&repo);
        let lock = match format.starts_with("files") {
            true => lock_of(&repo, "refs/heads/c"),
            false => repo.path(".git/reftable/tables.list.lock"),
        };
        assert!(!lock.exists(), "{format}: the batch's git released its lock");
        let plain = Plain::hold(&repo, &format!("update refs/heads/c {new} {old}\n"));
        assert!(lock.exists(), "{format}");
        let recover =
            repo.atomic_cmd(&["recover"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        assert!(lock.exists(), "{format}: the plain git's lock stays while it is held");
        plain.commit();
        let out = recover.wait_with_output().unwrap();
        assert!(out.status.success(), "{format}: {out:?}");
        assert_eq!(repo.rev("c"), new, "{format}: the plain git's update");
        assert_eq!(repo.reflog("c")[0], "plain", "{format}");
        assert_eq!(lock_files(&repo), Vec::<String>::new(), "{format}");
        assert!(repo.pending_batches().is_empty(), "{format}");
    }
}

/// apply killed after its journal and before it started its update-ref's transaction: no pid
/// file, so no git of the batch took a lock in this boot. A plain git's lock holding the batch's
/// value, made since the journal, is left alone at once, without waiting.
#[test]
fn without_a_pid_file_no_lock_of_this_boot_is_the_batchs() {
    let repo = Repo::new();
    repo.git(&["config", "atomic.lockTimeout", "60"]);
    let old = repo.rev("main");
    repo.git(&["branch", "c"]);
    let new = repo.commit_id("batch");
    repo.crash_apply("journaled", &format!("refs:\n  - update: refs/heads/c\n    to: {new}\n"));
    let plain = Plain::hold(&repo, &format!("update refs/heads/c {new} {old}\n"));
    let started = Instant::now();
    let out = repo.atomic(&["recover"]);
    assert!(started.elapsed() < Duration::from_secs(10), "no waiting: {out:?}");
    assert!(lock_of(&repo, "refs/heads/c").exists(), "the plain git's lock stays: {out:?}");
    out.expect(0);
    plain.commit();
    assert_eq!(repo.rev("c"), new);
    assert_eq!(lock_files(&repo), Vec::<String>::new());
    assert!(repo.pending_batches().is_empty());
}

/// apply killed alone, its update-ref then ending by itself (end of input, or SIGPIPE on
/// `prepare: ok`): git's trace (`atomic/update-ref-<id>.trace`) says it ended and so released
/// every lock it took. A plain git's lock on the batch's ref, taken after that, empty (`verify`)
/// or holding the batch's own value, is someone else's at once: recovery does not wait for it,
/// even with a long `atomic.lockTimeout`, and leaves it to the plain git, which commits.
#[test]
fn a_git_that_ended_by_itself_left_no_lock_so_recovery_does_not_wait() {
    for (format, point, verb) in [
        ("files", "staged", "update"),
        ("files", "staged", "verify"),
        ("files", "prepared", "update"),
        ("reftable", "staged", "update"),
    ] {
        if format == "reftable" && !common::git_at_least((2, 45)) {
            continue;
        }
        let case = format!("{format} {point} {verb}");
        let repo = if format == "files" { Repo::new() } else { Repo::init(&["--ref-format=reftable"]) };
        repo.git(&["config", "atomic.lockTimeout", "60"]);
        let old = repo.rev("main");
        repo.git(&["branch", "c"]);
        let new = repo.commit_id("batch");
        repo.crash_apply(point, &format!("refs:\n  - update: refs/heads/c\n    to: {new}\n"));
        procs::wait_for_orphans(&repo);
        let traces = |repo: &Repo| -> Vec<String> {
            let names = std::fs::read_dir(repo.path(".git/atomic")).unwrap();
            let names = names.map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
            names.filter(|n| n.ends_with(".trace")).collect()
        };
        assert_eq!(traces(&repo).len(), 1, "{case}: the batch's git left its trace");
        let line = match verb {
            "update" => format!("update refs/heads/c {new} {old}\n"),
            _ => format!("verify refs/heads/c {old}\n"),
        };
        let plain = Plain::hold(&repo, &line);
        let lock = match format {
            "files" => lock_of(&repo, "refs/heads/c"),
            _ => repo.path(".git/reftable/tables.list.lock"),
        };
        assert!(lock.exists(), "{case}");
        let started = Instant::now();
        let out = repo.atomic(&["recover"]);
        assert!(started.elapsed() < Duration::from_secs(10), "{case}: no waiting: {out:?}");
        assert!(!out.stderr.contains("waiting up to"), "{case}: {out:?}");
        out.expect(0);
        assert!(lock.exists(), "{case}: the plain git's lock stays");
        plain.commit();
        let want = if verb == "update" { &new } else { &old };
        assert_eq!(&repo.rev("c"), want, "{case}: the plain git's transaction");
        assert_eq!(lock_files(&repo), Vec::<String>::new(), "{case}");
        assert!(repo.pending_batches().is_empty(), "{case}");
        assert_eq!(traces(&repo), Vec::<String>::new(), "{case}: the trace goes with the batch");
    }
}
