//! One test per guarantee of the README, each failing when that guarantee alone is broken:
//! the re-check of the work tree under git's locks, git's old-value check of a ref moved after
//! the check, a ref's `from`, a file's `expect`, the batch lock and exit 4 (busy), and the
//! durability barriers around the commit record (counted with strace).
//! The race windows are made deterministic with the test-only pause points of `src/crash.rs`
//! (`GIT_TEST_ATOMIC_PAUSE=<point>:<file>`).

mod common;

use common::{Outcome, Repo};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `git atomic apply` stopped at a pause point until [`Paused::resume`].
struct Paused {
    child: Child,
    go: PathBuf,
}

/// Starts `git atomic apply --json ARGS -` with `batch` and waits until it stops at `point`.
fn start_paused(repo: &Repo, point: &str, args: &[&str], batch: &str) -> Paused {
    let mut paused = spawn_paused(repo, point, args, batch);
    paused.wait_until_paused(point);
    paused
}

/// Starts `git atomic apply --json ARGS -` with `batch`, to stop at `point`.
fn spawn_paused(repo: &Repo, point: &str, args: &[&str], batch: &str) -> Paused {
    let scratch = repo.tmp.path();
    let go = scratch.join(format!("go-{point}"));
    let input = scratch.join(format!("batch-{point}.yaml"));
    std::fs::write(&input, batch).unwrap();
    let mut cmd = repo.atomic_cmd(&["apply", "--json"]);
    cmd.args(args)
        .arg("-")
        .env("GIT_TEST_ATOMIC_PAUSE", format!("{point}:{}", go.display()))
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Paused { child: cmd.spawn().expect("git-atomic starts"), go }
}

impl Paused {
    /// Whether the apply has reached its pause point.
    fn is_paused(&self) -> bool {
        Path::new(&format!("{}.paused", self.go.display())).exists()
    }

    /// Waits (up to 30 s) until the apply stops at its pause point.
    fn wait_until_paused(&mut self, point: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.is_paused() {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("apply ended ({status}) before pausing at {point}: {err}");
            }
            assert!(Instant::now() < deadline, "apply never paused at {point}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Lets the paused apply go on and waits for its end.
    fn resume(self) -> Outcome {
        std::fs::write(&self.go, b"").unwrap();
        Outcome::from(self.child.wait_with_output().unwrap())
    }
}

/// Git lock files anywhere under `.git` (`atomic/` aside).
fn git_lock_files(repo: &Repo) -> Vec<String> {
    repo.snapshot().into_keys().filter(|p| p.ends_with(".lock") && !p.ends_with("atomic/lock")).collect()
}

#[test]
fn a_file_changed_after_the_check_is_refused_by_the_recheck_under_gits_locks() {
    let repo = Repo::new();
    repo.write("f.txt", "old\n");
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    let blob = repo.blob_of("f.txt");
    let before = repo.snapshot();
    let batch = format!(
        "refs:\n  - update: refs/heads/main\n    to: {next}\n    from: {head}\nfiles:\n  - write: f.txt\n    content: ours\n    expect: {blob}\n  - write: g.txt\n    content: g\n"
    );
    let paused = start_paused(&repo, "prepared", &[], &batch);
    assert!(repo.path(".git/refs/heads/main.lock").exists(), "paused while git holds its locks");
    repo.write("f.txt", "theirs, written after the check\n");
    let out = paused.resume();
    out.expect(1);
    assert!(out.stderr.contains("'f.txt' changed"), "{out:?}");
    assert_eq!(out.json()["status"], "refused");
    assert_eq!(repo.read("f.txt"), "theirs, written after the check\n", "their change stays");
    assert_eq!(repo.rev("refs/heads/main"), head, "the ref did not move");
    assert!(!repo.exists("g.txt"));
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
    repo.write("f.txt", "old\n");
    common::assert_snapshots_equal(&before, &repo.snapshot(), &format!("{out:#?}"));
}

/// A directory swapped for a symlink after the check makes the path unreachable without
/// following a link: the recheck refuses (exit 1) and nothing is written through the link.
#[test]
fn a_directory_swapped_for_a_symlink_after_the_check_is_refused_by_the_recheck() {
    let repo = Repo::new();
    repo.write("d/f.txt", "old\n");
    let head = repo.rev("HEAD");
    let batch = "files:\n  - write: d/f.txt\n    content: ours\n  - write: g.txt\n    content: g\n";
    let paused = start_paused(&repo, "prepared", &[], batch);
    std::fs::rename(repo.path("d"), repo.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink("elsewhere", repo.path("d")).unwrap();
    let out = paused.resume();
    out.expect(1);
    assert!(out.stderr.contains("'d/f.txt' changed"), "{out:?}");
    assert_eq!(out.json()["status"], "refused");
    assert_eq!(repo.read("elsewhere/f.txt"), "old\n", "nothing written through the symlink");
    assert!(!repo.exists("g.txt"));
    assert_eq!(repo.rev("HEAD"), head);
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

#[test]
fn a_ref_moved_after_the_check_is_refused_by_gits_old_value_check() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    let theirs = repo.commit_id("theirs");
    let batch = format!(
        "refs:\n  - update: refs/heads/main\n    to: {next}\n    from: {head}\nfiles:\n  - write: g.txt\n    content: g\n"
    );
    let paused = start_paused(&repo, "checked", &[], &batch);
    repo.git(&["update-ref", "refs/heads/main", &theirs, &head]);
    let before = repo.snapshot();
    let out = paused.resume();
    out.expect(1);
    assert_eq!(out.json()["status"], "refused");
    assert_eq!(repo.rev("refs/heads/main"), theirs, "their move stays");
    assert!(!repo.exists("g.txt"));
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
    assert_eq!(git_lock_files(&repo), Vec::<String>::new());
    common::assert_snapshots_equal(&before, &repo.snapshot(), &format!("{out:#?}"));
}

#[test]
fn a_stale_ref_from_alone_refuses_the_batch() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/topic", &head]);
    // `from` is the only precondition of these batches, refs only or with a file.
    for extra in ["", "files:\n  - write: g.txt\n    content: g\n"] {
        repo.apply_unchanged(
            &format!("refs:\n  - update: refs/heads/topic\n    to: {head}\n    from: {next}\n{extra}"),
            1,
        );
        repo.apply_unchanged(&format!("refs:\n  - delete: refs/heads/topic\n    from: {next}\n{extra}"), 1);
        repo.apply_unchanged(
            &format!("refs:\n  - update: refs/heads/topic\n    to: {next}\n    from: absent\n{extra}"),
            1,
        );
        repo.apply_unchanged(
            &format!("refs:\n  - update: refs/heads/none\n    to: {next}\n    from: {head}\n{extra}"),
            1,
        );
    }
    repo.apply(&format!("refs:\n  - update: refs/heads/topic\n    to: {next}\n    from: {head}\n")).expect(0);
    assert_eq!(repo.rev("refs/heads/topic"), next);
}

#[test]
fn a_stale_file_expect_alone_refuses_the_batch() {
    let repo = Repo::new();
    repo.write("f.txt", "now\n");
    let stale = repo.write_blob(b"before\n");
    let now = repo.blob_of("f.txt");
    // `expect` is the only precondition of these batches, files only or with a ref.
    for extra in ["", "refs:\n  - create: refs/heads/n\n    to: HEAD\n"] {
        for (verb, expect) in [
            ("write: f.txt\n    content: x", stale.as_str()),
            ("delete: f.txt", stale.as_str()),
            ("rename: f.txt\n    to: h.txt", stale.as_str()),
            ("write: f.txt\n    content: x", "absent"),
            ("write: missing.txt\n    content: x", "present"),
            ("write: missing.txt\n    content: x", now.as_str()),
        ] {
            repo.apply_unchanged(&format!("{extra}files:\n  - {verb}\n    expect: {expect}\n"), 1);
        }
    }
    repo.apply(&format!("files:\n  - write: f.txt\n    content: x\n    expect: {now}\n")).expect(0);
    assert_eq!(repo.read("f.txt"), "x");
}

#[test]
fn a_second_batch_waits_for_the_batch_lock_or_exits_4_busy() {
    let repo = Repo::new();
    repo.write("f.txt", "0\n");
    let blob = repo.blob_of("f.txt");
    let batch = |n: u32| format!("files:\n  - write: f.txt\n    content: \"{n}\\n\"\n    expect: {blob}\n");
    let first = start_paused(&repo, "prepared", &[], &batch(1));

    // --wait 0: busy at once, nothing changed.
    let started = Instant::now();
    let before = repo.snapshot();
    let busy = repo.apply_args(&["apply", "--json", "--wait", "0", "-"], &batch(2));
    busy.expect(4);
    assert!(busy.stderr.starts_with("error: "), "{busy:?}");
    assert_eq!(busy.json()["status"], "busy");
    assert_eq!(busy.json()["error"]["kind"], "busy");
    assert!(started.elapsed() < Duration::from_secs(5), "--wait 0 does not wait");
    common::assert_snapshots_equal(&before, &repo.snapshot(), &format!("{busy:#?}"));

    // --wait 1: busy after about a second.
    let started = Instant::now();
    repo.apply_args(&["apply", "--json", "--wait", "1", "-"], &batch(2)).expect(4);
    assert!(started.elapsed() >= Duration::from_millis(900), "waited {:?}", started.elapsed());

    // --wait 30: waits for the first batch, then checks against what it left.
    let mut second = spawn_paused(&repo, "checked", &["--wait", "30"], &batch(2));
    std::thread::sleep(Duration::from_millis(500));
    assert!(!second.is_paused(), "the second batch got past the lock while the first held it");
    assert!(second.child.try_wait().unwrap().is_none(), "the second batch is still waiting");
    first.resume().expect(0);
    let second = second.resume();
    second.expect(1);
    assert!(second.stderr.contains("f.txt"), "{second:?}");
    assert_eq!(repo.read("f.txt"), "1\n", "the second batch's expect no longer held");
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

/// One system call of an `strace -f -y` log: who made it, its path operands (fd paths and
/// quoted strings, in order), and where it started and ended in the log (line numbers).
#[derive(Debug, Clone)]
struct Call {
    pid: u32,
    name: String,
    operands: Vec<String>,
    text: String,
    start: usize,
    end: usize,
}

impl Call {
    /// The path written, synced or created: a `write`'s or sync's fd, a rename's destination,
    /// an unlink's path (joined to its directory fd).
    fn path(&self) -> Option<PathBuf> {
        let ops = &self.operands;
        let join = |dir: &str, rel: &str| Path::new(dir).join(rel);
        match self.name.as_str() {
            "rename" => ops.get(1).map(PathBuf::from),
            "renameat" | "renameat2" => Some(join(ops.get(2)?, ops.get(3)?)),
            "unlink" => ops.first().map(PathBuf::from),
            "unlinkat" => Some(join(ops.first()?, ops.get(1)?)),
            _ => ops.first().map(PathBuf::from),
        }
    }

    /// What a rename moves: its first path (`rename`, or an `…at` call given `AT_FDCWD` and
    /// absolute paths), else its first directory joined with the name in it.
    fn source(&self) -> Option<PathBuf> {
        let ops = &self.operands;
        match (self.name.as_str(), ops.len()) {
            ("rename", _) | (_, 2) => ops.first().map(PathBuf::from),
            _ => Some(Path::new(ops.first()?).join(ops.get(1)?)),
        }
    }

    fn is_sync(&self) -> bool {
        matches!(self.name.as_str(), "fsync" | "fdatasync" | "syncfs")
    }

    /// Whether this sync makes `path` durable: a `syncfs`, or an fsync of exactly that path.
    fn covers(&self, path: &Path) -> bool {
        self.name == "syncfs" || (self.is_sync() && self.path().as_deref() == Some(path))
    }
}

/// Splits a call's arguments into path operands: `<path>` after an fd, and quoted strings (with
/// strace's escapes kept: `"commit\\n"`).
fn operands(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => s.extend(['\\'].into_iter().chain(chars.next())),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            '<' => out.push(chars.by_ref().take_while(|c| *c != '>').collect()),
            _ => {}
        }
    }
    out
}

/// The successful system calls of an `strace -f -y` log, unfinished ones joined to their end.
fn parse_strace(log: &str) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    let mut pending = std::collections::HashMap::new();
    for (i, line) in log.lines().enumerate() {
        let (pid, rest) = line.trim_start().split_once(' ').unwrap_or(("", ""));
        let (Ok(pid), rest) = (pid.parse::<u32>(), rest.trim_start()) else { continue };
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let name = resumed.split(' ').next().unwrap();
            if let Some(at) = pending.remove(&(pid, name.to_string())) {
                let call: &mut Call = &mut calls[at];
                call.end = i;
                call.text.push_str(resumed);
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else { continue };
        if name.starts_with("---") || name.starts_with("+++") {
            continue;
        }
        let call =
            Call { pid, name: name.into(), operands: operands(args), text: rest.into(), start: i, end: i };
        if rest.ends_with("<unfinished ...>") {
            pending.insert((pid, name.to_string()), calls.len());
        }
        calls.push(call);
    }
    calls.retain(|c| !c.text.contains(") = -1"));
    calls
}

/// Asserts that some sync of `by` starting after line `after` and before line `before` covers
/// `path`.
fn assert_covered(calls: &[Call], by: u32, path: &Path, after: usize, before: usize, what: &str) {
    let covered = calls.iter().any(|c| c.pid == by && c.start > after && c.start < before && c.covers(path));
    assert!(
        covered,
        "{what}: no fsync or syncfs of {} between log lines {after} and {before}",
        path.display()
    );
}

/// Applies the batch file `batch` under `strace -f -y` (writes, syncs, renames, unlinks, symlinks) and
/// returns its successful calls; the apply must succeed.
fn strace_apply(repo: &Repo, batch: &Path) -> Vec<Call> {
    let log = repo.tmp.path().join("strace.log");
    let mut cmd = Command::new("strace");
    common::seal(&mut cmd, &repo.home());
    cmd.current_dir(&repo.dir)
        .args(["-f", "-y", "-qq", "-s", "32", "-o"])
        .arg(&log)
        .args(["-e", "trace=write,pwrite64,fsync,fdatasync,syncfs,rename,renameat,renameat2,unlink,unlinkat,symlink,symlinkat"])
        .arg(env!("CARGO_BIN_EXE_git-atomic"))
        .args(["apply", "-q"])
        .arg(batch);
    let out = Outcome::from(cmd.output().expect("strace runs"));
    out.expect(0);
    parse_strace(&std::fs::read_to_string(&log).unwrap())
}

#[test]
fn the_commit_record_sits_between_durability_barriers() {
    if Command::new("strace").arg("-V").output().is_err() {
        common::skip("the_commit_record_sits_between_durability_barriers", "strace is not installed");
        return;
    }
    let repo = Repo::new();
    repo.write("old.txt", "old\n");
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/gone", &head]);
    let batch = repo.tmp.path().join("batch.yaml");
    std::fs::write(
        &batch,
        format!(
            "refs:\n  - update: refs/heads/main\n    to: {next}\n  - delete: refs/heads/gone\nfiles:\n  - write: README\n    content: new\n  - write: d/e/new.txt\n    content: n\n  - delete: old.txt\n"
        ),
    )
    .unwrap();
    let calls = strace_apply(&repo, &batch);
    assert_eq!(repo.rev("refs/heads/main"), next);
    let journal_write = |prefix: &str| {
        calls
            .iter()
            .find(|c| {
                c.name == "write"
                    && c.operands.len() > 1
                    && c.operands[0].ends_with("/journal")
                    && c.operands[1].starts_with(prefix)
            })
            .unwrap_or_else(|| panic!("no write of '{prefix}' to the journal in:\n{calls:#?}"))
    };
    let body = journal_write("git-atomic journal");
    let record = journal_write("commit ");
    let (me, journal) = (record.pid, PathBuf::from(&record.operands[0]));
    let batch_dir = journal.parent().unwrap().to_path_buf();
    let first = |pred: &dyn Fn(&Call) -> bool, what: &str| {
        calls.iter().find(|c| pred(c)).unwrap_or_else(|| panic!("no {what} in:\n{calls:#?}")).start
    };
    let prepare = first(
        &|c| c.pid == me && c.name == "write" && c.operands.get(1).is_some_and(|d| d == "prepare\\n"),
        "prepare",
    );
    let commit = first(
        &|c| c.pid == me && c.name == "write" && c.operands.get(1).is_some_and(|d| d == "commit\\n"),
        "commit",
    );
    let outside = |c: &Call| {
        c.path().is_some_and(|p| p.starts_with(&repo.dir) && !p.starts_with(repo.path(".git/atomic")))
    };
    let first_change =
        first(&|c| c.start > record.end && !c.is_sync() && c.name != "write" && outside(c), "change");
    // The journal goes when it is removed, or (with history) when its batch directory is renamed
    // into the log: either way recovery no longer sees the batch.
    let removal = first(
        &|c| {
            c.pid == me
                && ((c.name == "unlinkat" && c.path().as_deref() == Some(&journal))
                    || (c.name.starts_with("rename") && c.source().as_deref() == Some(&batch_dir)))
        },
        "journal removal or publication into the log",
    );

    // 1. The journal is durable before git takes a lock.
    assert_covered(&calls, me, &journal, body.end, prepare, "the journal before prepare");
    assert_covered(&calls, me, &batch_dir, body.end, prepare, "the batch directory before prepare");
    // 2. Every staged content is durable before the commit record.
    let staged: Vec<&Call> = calls
        .iter()
        .filter(|c| c.pid == me && c.name == "write" && c.end < record.start)
        .filter(|c| {
            c.path().is_some_and(|p| {
                p.parent() == Some(&batch_dir) && p != journal && !p.ends_with("update-ref.pid")
            })
        })
        .collect();
    assert_eq!(staged.len(), 2, "two staged contents: {staged:#?}");
    for write in staged {
        assert_covered(
            &calls,
            me,
            &write.path().unwrap(),
            write.end,
            record.start,
            "staged content before the commit record",
        );
    }
    // 3. The commit record is durable before git commits and before the first file moves.
    assert_covered(&calls, me, &journal, record.end, commit.min(first_change), "the commit record");
    // 4. Every change outside atomic/ (git's too) is durable before the journal goes.
    let changes: Vec<&Call> =
        calls.iter().filter(|c| c.start > record.end && !c.is_sync() && outside(c)).collect();
    assert!(changes.len() >= 5, "refs and files changed: {changes:#?}");
    for change in changes {
        let path = change.path().unwrap();
        let durable = if change.name == "write" { path } else { path.parent().unwrap().to_path_buf() };
        assert_covered(
            &calls,
            me,
            &durable,
            change.end,
            removal,
            &format!("{} after the commit record", change.text),
        );
    }
}

/// git writes a reftable stack's tables under names we cannot predict, so the barrier between
/// git's commit and the removal of the journal must sync their whole file system: an fsync of
/// the `reftable/` directory alone would leave the new table's content to chance at a power cut.
#[test]
fn a_reftable_commit_is_made_durable_by_a_syncfs_before_the_journal_goes() {
    let test = "a_reftable_commit_is_made_durable_by_a_syncfs_before_the_journal_goes";
    if Command::new("strace").arg("-V").output().is_err() {
        common::skip(test, "strace is not installed");
        return;
    }
    if !common::needs_git(test, (2, 45)) {
        return;
    }
    let repo = Repo::init(&["--ref-format=reftable"]);
    let next = repo.commit_id("next");
    let batch = repo.tmp.path().join("batch.yaml");
    std::fs::write(&batch, format!("refs:\n  - update: refs/heads/main\n    to: {next}\n")).unwrap();
    let calls = strace_apply(&repo, &batch);
    assert_eq!(repo.rev("refs/heads/main"), next);
    let record = calls
        .iter()
        .find(|c| c.name == "write" && c.operands.get(1).is_some_and(|d| d.starts_with("commit ")))
        .unwrap_or_else(|| panic!("no commit record in:\n{calls:#?}"));
    let journal = PathBuf::from(&record.operands[0]);
    let batch_dir = journal.parent().unwrap().to_path_buf();
    let removal = calls
        .iter()
        .find(|c| {
            c.pid == record.pid
                && ((c.name == "unlinkat" && c.path().as_deref() == Some(&journal))
                    || (c.name.starts_with("rename") && c.source().as_deref() == Some(&batch_dir)))
        })
        .unwrap_or_else(|| panic!("no journal removal in:\n{calls:#?}"));
    let synced = calls.iter().any(|c| {
        c.pid == record.pid && c.name == "syncfs" && c.start > record.end && c.start < removal.start
    });
    assert!(synced, "no syncfs between the commit record and the journal's removal:\n{calls:#?}");
}

/// A symlink cannot be opened to fsync it, so a barrier holding a staged symlink syncs its file
/// system: else the link's inode would reach the disk only by chance before the commit record.
#[test]
fn a_staged_symlink_is_made_durable_by_a_syncfs_before_the_commit_record() {
    if Command::new("strace").arg("-V").output().is_err() {
        let test = "a_staged_symlink_is_made_durable_by_a_syncfs_before_the_commit_record";
        common::skip(test, "strace is not installed");
        return;
    }
    let repo = Repo::new();
    let batch = repo.tmp.path().join("batch.yaml");
    std::fs::write(&batch, "files:\n  - write: link\n    content: README\n    mode: \"120000\"\n").unwrap();
    let calls = strace_apply(&repo, &batch);
    assert_eq!(std::fs::read_link(repo.path("link")).unwrap(), Path::new("README"));
    let record = calls
        .iter()
        .find(|c| c.name == "write" && c.operands.get(1).is_some_and(|d| d.starts_with("commit ")))
        .unwrap_or_else(|| panic!("no commit record in:\n{calls:#?}"));
    let atomic = repo.path(".git/atomic");
    let staged = calls
        .iter()
        .find(|c| {
            c.pid == record.pid
                && c.name.starts_with("symlink")
                && c.operands.iter().any(|o| o.starts_with(atomic.to_str().unwrap()))
        })
        .unwrap_or_else(|| panic!("no staged symlink in:\n{calls:#?}"));
    let synced = calls
        .iter()
        .any(|c| c.pid == record.pid && c.name == "syncfs" && c.start > staged.end && c.start < record.start);
    assert!(synced, "no syncfs between the staged symlink and the commit record:\n{calls:#?}");
}

/// A journal whose batch lock a live process holds is in flight; one whose holder died is
/// interrupted (SPEC §3): `status` tells them apart by the lock alone.
#[test]
fn status_tells_a_batch_in_flight_from_an_interrupted_one_by_the_batch_lock() {
    let repo = Repo::new();
    let batch = "refs:\n  - create: refs/heads/n\n    to: HEAD\nfiles:\n  - write: f.txt\n    content: f\n";
    let paused = start_paused(&repo, "prepared", &[], batch);
    let status = repo.atomic(&["status", "--json"]).expect(0).json();
    assert_eq!(status["batches"][0]["state"], "in-flight", "{status}");
    paused.resume().expect(0);
    assert_eq!(repo.atomic(&["status", "--json"]).expect(0).json()["batches"], serde_json::json!([]));

    repo.crash_apply("journaled", &batch.replace("refs/heads/n", "refs/heads/m"));
    let status = repo.atomic(&["status", "--json"]).expect(0).json();
    assert_eq!(status["batches"][0]["state"], "interrupted", "{status}");
}
