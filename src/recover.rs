//! Recovery: finishes or undoes interrupted batches, reusing the stages of apply. A batch is
//! interrupted when its journal exists and nobody holds the batch lock (we hold it here).
//!
//! - Torn journal, or no commit record: roll back. Nothing outside `atomic/` changed yet, except
//!   for lock files (and `packed-refs.new`) of git's `update-ref` if it was killed with us; those
//!   are removed when they are provably ours. The batch directory is deleted.
//! - Commit record present: roll forward. Each ref is at its new value (done), at its old value
//!   (updated now, with the old value as precondition) or elsewhere (conflict); each file likewise,
//!   moved while git takes the ref locks. A ref file that a power cut left empty or zeroed is ours
//!   to set. Then one durability barrier, then the batch directory is deleted.
//! - Torn journal that still holds its intact commit record (damaged after the commit point):
//!   neither direction is safe; the batch is left for a person (exit 3).
//!
//! Every step accepts "already done", so recovery can itself be killed and run again.

use crate::crash;
use crate::durable::{Barrier, Writeback};
use crate::error::{Error, IoContext, Kind, Result};
use crate::files::{Mover, Outcome as FileOutcome};
use crate::journal::{self, JournalRef, Read, Record};
use crate::lock::BatchLock;
use crate::refs;
use crate::refstore::{RefStore, RefValue};
use crate::repo::Repo;
use crate::trace;
use crate::validate::RefVerb;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// File naming the pid of the batch's `update-ref`, so recovery can wait for an orphan.
pub const UPDATE_REF_PID_FILE: &str = "update-ref.pid";
/// File left beside a journal whose roll-forward hit a conflict, explaining it for `status`.
pub const CONFLICT_FILE: &str = "conflict";

/// What recovery did with one batch.
#[derive(Debug)]
pub struct Recovered {
    pub id: String,
    pub action: Action,
}

/// The end state of one recovered batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    RolledBack,
    RolledForward,
    /// Roll-forward could not finish: these refs and files diverged (exit 3).
    Conflict(Vec<String>),
}

/// The batch directories under `state_dir`, oldest first.
pub fn batch_dirs(state_dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = state_dir.join("batches");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::fatal(format!("cannot read '{}': {e}", dir.display())));
        }
    };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    Ok(dirs)
}

/// Recovers every interrupted batch; the caller holds the batch lock, so none is live.
pub fn recover_all(repo: &Repo, _lock: &BatchLock) -> Result<Vec<Recovered>> {
    let mut done = Vec::new();
    for dir in batch_dirs(&repo.state_dir())? {
        done.push(recover_one(repo, &dir)?);
    }
    Ok(done)
}

/// Recovers one batch directory.
pub fn recover_one(repo: &Repo, dir: &Path) -> Result<Recovered> {
    let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    wait_for_orphan_update_ref(dir, &id);
    let journal_path = dir.join(journal::JOURNAL_FILE);
    match journal::read(&journal_path)? {
        Read::Torn if journal::has_commit_record(&journal_path, &id) => {
            needs_attention(dir, id, &journal_path)
        }
        Read::Torn => {
            // The journal never reached its barrier, so update-ref was never started.
            remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync)?;
            Ok(Recovered { id, action: Action::RolledBack })
        }
        Read::Intact { record, committed: false } => {
            // A worktree removed since: its per-worktree refs went with it; shared ones are ours.
            let current = || open_worktree(repo, &repo.git_dir, repo.work_tree.as_ref());
            let target = open_target(repo, &record).or_else(|_| current())?;
            remove_own_locks(&target, &record, &journal_path, false)?;
            remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync)?;
            Ok(Recovered { id, action: Action::RolledBack })
        }
        Read::Intact { record, committed: true } => roll_forward(repo, dir, &record),
    }
}

/// A committed batch whose journal is damaged: what to finish is unreadable, and undoing it
/// could break what the commit point promised. The batch stays, with a `conflict` file saying
/// why, and recovery reports it (exit 3).
fn needs_attention(dir: &Path, id: String, journal_path: &Path) -> Result<Recovered> {
    let why = format!(
        "the journal '{}' is damaged, but its commit record is intact: the batch was committed and \
         may be partly applied; check its refs and files, then remove '{}'",
        journal_path.display(),
        dir.display()
    );
    keep_for_attention(dir, id, vec![why])
}

/// Leaves the batch where it is, with a `conflict` file giving the reasons (for `status`), and
/// reports it as needing attention (exit 3).
fn keep_for_attention(dir: &Path, id: String, reasons: Vec<String>) -> Result<Recovered> {
    let text: String = reasons.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(dir.join(CONFLICT_FILE), text)
        .io_context(|| format!("cannot write to '{}'", dir.display()))?;
    Ok(Recovered { id, action: Action::Conflict(reasons) })
}

/// The repository (worktree) the batch was applied in: its per-worktree refs and its files.
fn open_target(repo: &Repo, record: &Record) -> Result<Repo> {
    open_worktree(repo, &record.git_dir, record.work_tree.as_ref())
}

/// Opens one worktree of `repo`'s repository by its git dir and work tree.
fn open_worktree(repo: &Repo, git_dir: &Path, work_tree: Option<&PathBuf>) -> Result<Repo> {
    let exe = repo.git.exe().to_path_buf();
    Repo::open(exe, git_dir.to_path_buf(), repo.common_dir.clone(), work_tree.cloned())
}

fn roll_forward(repo: &Repo, dir: &Path, record: &Record) -> Result<Recovered> {
    let target = match open_target(repo, record) {
        Ok(target) => target,
        Err(e) => {
            let why = format!("the worktree the batch was applied in cannot be opened: {}", e.message);
            return keep_for_attention(dir, record.id.clone(), vec![why]);
        }
    };
    let journal_path = dir.join(journal::JOURNAL_FILE);
    let mut conflicts = remove_own_locks(&target, record, &journal_path, true)?;
    let repaired = remove_torn_refs(&target, record, lock_floor(&journal_path))?;
    trace::stage("recover-locks");
    let mut barrier = Barrier::new(repo.settings.fsync);
    let writeback = Writeback::for_refs(repo.settings.fsync, record.refs.len(), &target.common_dir);
    let (ref_conflicts, preparing) = start_refs_forward(&target, record, &repaired)?;
    conflicts.extend(ref_conflicts);
    // The files go forward while git takes its locks: past the commit point, refs and files
    // are each finished on their own, in either order.
    if let Some(work_tree) = &record.work_tree {
        let mut mover = Mover::new(work_tree, dir, target.gix.object_hash(), true);
        for put in &record.puts {
            if let FileOutcome::Conflict(why) = mover.put(put, &mut barrier)? {
                conflicts.push(why);
            }
            crash::point("recover-file");
        }
        for remove in &record.removes {
            if let FileOutcome::Conflict(why) = mover.remove(remove, &mut barrier)? {
                conflicts.push(why);
            }
            crash::point("recover-file");
        }
        barrier.add_file_system_of(work_tree);
    }
    trace::stage("recover-files");
    finish_refs_forward(&target, record, preparing, &mut barrier)?;
    drop(writeback);
    trace::stage("recover-refs");
    crash::point("recover-refs");
    barrier.add_file_system_of(&repo.common_dir);
    barrier.flush()?;
    trace::stage("recover-sync");
    crash::point("recover-synced");
    if !conflicts.is_empty() {
        return keep_for_attention(dir, record.id.clone(), conflicts);
    }
    remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync)?;
    Ok(Recovered { id: record.id.clone(), action: Action::RolledForward })
}

/// After a power cut, a ref file that git renamed into place can be empty or cut short: the
/// rename reached the disk and the data did not (git syncs no ref; a new file gets no help from
/// the file system's rename heuristics). Such a file that our own update-ref made (the rule for
/// locks: made since it started, holding a prefix of the new value, or only zero bytes, which
/// is what a file whose size reached the disk before its data reads as) was meant to hold
/// the new value. It is removed, so that the ref reads as before again (its packed value, or
/// absent), and roll-forward sets it from there. Returns the refs so repaired.
fn remove_torn_refs(target: &Repo, record: &Record, floor: Option<SystemTime>) -> Result<Vec<String>> {
    if target.settings.reftable {
        return Ok(Vec::new()); // one rename of tables.list commits a reftable: nothing to tear
    }
    let dirs = target.ref_dirs();
    let mut repaired = Vec::new();
    for r in record.refs.iter().filter(|r| r.via_git && r.verb != RefVerb::Verify) {
        let Some(want) = file_content(&r.new) else {
            continue;
        };
        let path = dirs.base_for(&r.target).join(&r.target);
        let (Ok(meta), Ok(content)) = (std::fs::symlink_metadata(&path), std::fs::read(&path)) else {
            continue;
        };
        let torn = content != want.as_bytes() && cut_short_from(&content, want.as_bytes());
        if meta.is_file() && torn && is_recent(&meta, floor) {
            std::fs::remove_file(&path).io_context(|| format!("cannot remove '{}'", path.display()))?;
            repaired.push(r.target.clone());
        }
    }
    Ok(repaired)
}

/// What git writes into a loose ref (or its lock) for a value; nothing for a deletion.
fn file_content(value: &RefValue) -> Option<String> {
    match value {
        RefValue::Id(id) => Some(format!("{id}\n")),
        RefValue::Symbolic(t) => Some(format!("ref: {t}\n")),
        RefValue::Absent => None,
    }
}

/// Starts bringing every changed ref to its new value, in one update-ref transaction whose old
/// values are what the journal says the refs held before: a ref someone else moved is a
/// conflict. A `repaired` ref (see [`remove_torn_refs`]) goes from whatever it reads as now.
/// Returns the conflicts and git taking its locks (nothing when every ref is done already).
fn start_refs_forward(
    target: &Repo,
    record: &Record,
    repaired: &[String],
) -> Result<(Vec<String>, Option<refs::Preparing>)> {
    let store = RefStore::for_batch(&target.gix, &target.git, target.settings.reftable, record.refs.len())?;
    let zero = "0".repeat(target.gix.object_hash().len_in_hex());
    let mut lines = Vec::new();
    let mut changed = Vec::new();
    let mut conflicts = Vec::new();
    for r in record.refs.iter().filter(|r| r.via_git && r.verb != RefVerb::Verify) {
        let now = store.read(&r.target)?;
        if now == r.new {
            continue;
        }
        let was_torn = repaired.contains(&r.target);
        if now != r.old && !was_torn {
            conflicts.push(format!("ref '{}' was moved by someone else", r.target));
            continue;
        }
        // By the target's own name: HEAD may point elsewhere by now, the journaled ref may not.
        let old = if was_torn { now } else { r.old.clone() };
        let direct = JournalRef { name: r.target.clone(), old, ..r.clone() };
        let no_deref = if r.verb == RefVerb::Symref { "" } else { "option no-deref\n" };
        lines.push(format!("{no_deref}{}", refs::command_lines(&direct, &zero)));
        changed.push(r.target.as_str());
    }
    if lines.is_empty() {
        return Ok((conflicts, None));
    }
    let dirs = target.ref_dirs();
    let pid_file = dirs_pid_file(record, target);
    let process = refs::spawn(&target.git, &record.message, &record.id)?;
    let preparing =
        refs::start_prepare(process, &dirs, lines.into_iter(), changed.into_iter(), Some(&pid_file))
            .map_err(|e| cannot_finish_refs(record, &e.message))?;
    Ok((conflicts, Some(preparing)))
}

/// Waits for git's locks and commits the refs; the barrier then covers their file system.
fn finish_refs_forward(
    target: &Repo,
    record: &Record,
    preparing: Option<refs::Preparing>,
    barrier: &mut Barrier,
) -> Result<()> {
    let Some(preparing) = preparing else {
        return Ok(());
    };
    let prepared = preparing.wait().map_err(|e| cannot_finish_refs(record, &e.message))?;
    prepared.commit().map_err(|e| {
        Error::new(Kind::Interrupted, format!("batch {}: git update-ref failed: {}", record.id, e.0.trim()))
    })?;
    barrier.add_file_system_of(&target.common_dir);
    Ok(())
}

fn cannot_finish_refs(record: &Record, why: &str) -> Error {
    Error::new(Kind::Interrupted, format!("batch {}: cannot finish its refs: {why}", record.id))
}

/// Removes lock files that the batch's own (dead) update-ref left: a lock is ours when it is
/// on one of the batch's refs (HEAD too when the batch updates or verifies HEAD's branch, or
/// `packed-refs`), was made since our update-ref started (see [`lock_floor`]), and holds what
/// git's write of the batch's new value may leave (see [`cut_short_from`]: nothing, a prefix,
/// all of it, zeros after a power cut). Any other lock on those refs is reported,
/// never deleted. A `packed-refs.new` that a dead git left while it held `packed-refs.lock` goes
/// with that lock: git creates it exclusively, so a stale one would fail every later rewrite of
/// `packed-refs`, our own roll-forward included. Reftable stacks get the same treatment for
/// `tables.list.lock`.
fn remove_own_locks(target: &Repo, record: &Record, journal: &Path, committed: bool) -> Result<Vec<String>> {
    let floor = lock_floor(journal);
    let dirs = target.ref_dirs();
    let mut candidates: Vec<(PathBuf, Option<String>)> = Vec::new();
    for r in record.refs.iter().filter(|r| r.via_git) {
        let content = file_content(&r.new);
        for name in [&r.name, &r.target] {
            candidates.push((dirs.base_for(name).join(format!("{name}.lock")), content.clone()));
        }
    }
    if locks_head(target, record) {
        // git locks HEAD as well, to log the change in HEAD's reflog; the lock stays empty.
        candidates.push((target.git_dir.join("HEAD.lock"), None));
    }
    let packed_lock = target.common_dir.join("packed-refs.lock");
    let deletes = record.refs.iter().any(|r| r.via_git && r.verb == RefVerb::Delete);
    if deletes {
        candidates.push((packed_lock.clone(), None));
    }
    // Stable sort and dedup keep the first candidate of a path: a symref entry's own content.
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    candidates.dedup_by(|a, b| a.0 == b.0);
    let mut conflicts = Vec::new();
    for (lock, new_content) in candidates {
        let Ok(meta) = std::fs::symlink_metadata(&lock) else {
            continue;
        };
        let content = std::fs::read(&lock).unwrap_or_default();
        // git writes a lock's id and its newline in two writes: a kill between them leaves a
        // prefix of the new value, which is as much ours as the whole of it.
        let matches = cut_short_from(&content, new_content.as_deref().unwrap_or("").as_bytes());
        if is_recent(&meta, floor) && matches {
            std::fs::remove_file(&lock).io_context(|| format!("cannot remove '{}'", lock.display()))?;
        } else if committed {
            conflicts.push(format!("lock file '{}' is held by someone else", lock.display()));
        }
    }
    if deletes && !packed_lock.exists() {
        remove_if_recent(&target.common_dir.join("packed-refs.new"), floor)?;
    }
    if target.settings.reftable {
        for lock in reftable_locks(target) {
            if !remove_if_recent(&lock, floor)? && committed && lock.ends_with("tables.list.lock") {
                conflicts.push(format!("lock file '{}' is held by someone else", lock.display()));
            }
        }
    }
    Ok(conflicts)
}

/// The lock files in the reftable stacks a batch's update-ref may have locked: the shared one
/// and the worktree's own (HEAD and other per-worktree refs). A stale `tables.list.lock` fails
/// every later ref update (NOTES-git.md); a stale `<table>.ref.lock`, left by a kill during
/// auto-compaction, stops that table from ever being compacted. They hold table names, not
/// values: only their age says they are ours.
fn reftable_locks(target: &Repo) -> Vec<PathBuf> {
    let mut stacks = vec![target.common_dir.join("reftable"), target.git_dir.join("reftable")];
    stacks.dedup();
    let mut locks = Vec::new();
    for stack in stacks {
        let Ok(entries) = std::fs::read_dir(&stack) else { continue };
        locks.extend(
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "lock")),
        );
    }
    locks
}

/// Whether git locks HEAD for the batch: it does for any update of the branch HEAD points at,
/// a `verify` included (git logs every such update in HEAD's reflog as well).
fn locks_head(target: &Repo, record: &Record) -> bool {
    let head = std::fs::read_to_string(target.git_dir.join("HEAD")).unwrap_or_default();
    let Some(branch) = head.strip_prefix("ref: ").map(str::trim_end) else {
        return false;
    };
    record.refs.iter().any(|r| r.via_git && r.target == branch)
}

/// Removes a file of git's that is as recent as our update-ref (see [`lock_floor`]); whether it
/// did. For `packed-refs.new`: with no `packed-refs.lock` left, no live git is writing it.
fn remove_if_recent(path: &Path, floor: Option<SystemTime>) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if is_recent(&meta, floor) => {
            std::fs::remove_file(path).io_context(|| format!("cannot remove '{}'", path.display()))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The time from which a lock on the batch's refs can be ours: when the batch's latest
/// update-ref was started, which the mtime of its pid file tells (it is written before git is
/// told to take any lock, by apply and by every recovery alike; a recovery removes the locks of
/// an earlier update-ref before it starts its own). Without a pid file no update-ref ever ran
/// for the batch, or a power cut lost the file (it is not synced): the journal's creation time
/// then serves, durable since barrier 1. Its mtime cannot serve: appending the commit record
/// moves it past the locks update-ref took at prepare, which would make every lock left by a
/// kill after the commit point look foreign and block roll-forward.
fn lock_floor(journal: &Path) -> Option<SystemTime> {
    let pid_file = journal.with_file_name(UPDATE_REF_PID_FILE);
    if let Ok(time) = std::fs::metadata(pid_file).and_then(|m| m.modified()) {
        return Some(time);
    }
    let meta = std::fs::metadata(journal).ok()?;
    meta.created().or_else(|_| meta.modified()).ok()
}

/// Whether a file holds what writing `want` may leave when cut short: a prefix of it, followed by
/// zeros up to at most its length (all of it, part of it, or only zeros). The zeros come from
/// power cuts: ext4 can keep a new file's size without its data (an unwritten extent reads as
/// zeros), which the power-cut test saw for lock files once the staged contents' barrier ran
/// while git was taking its locks. Another value differs in a byte that is not zero.
fn cut_short_from(content: &[u8], want: &[u8]) -> bool {
    let written = content.iter().position(|&b| b == 0).unwrap_or(content.len());
    content.len() <= want.len()
        && want.starts_with(&content[..written])
        && content[written..].iter().all(|&b| b == 0)
}

/// Whether a file was made at or after `floor` (file times share the kernel's clock).
fn is_recent(meta: &std::fs::Metadata, floor: Option<SystemTime>) -> bool {
    match (floor, meta.modified()) {
        (Some(floor), Ok(made)) => made >= floor,
        _ => false,
    }
}

/// Waits (briefly) for an `update-ref` of this batch that outlived its parent to finish aborting
/// or committing, so that recovery never races git over the same lock files.
fn wait_for_orphan_update_ref(dir: &Path, id: &str) {
    let Ok(pid) = std::fs::read_to_string(dir.join(UPDATE_REF_PID_FILE)) else {
        return;
    };
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return;
    };
    let environ = PathBuf::from(format!("/proc/{pid}/environ"));
    let marker = format!("{}={id}", crate::git::OWN_TRANSACTION_ENV);
    // A 100,000-ref commit takes git over 10 s here; two minutes covers far larger ones.
    for _ in 0..12_000 {
        let Ok(env) = std::fs::read(&environ) else {
            return;
        };
        if !env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Deletes a finished batch's directory and makes the deletion durable, so that a power loss
/// cannot bring back a journal whose batch the user has since built on.
pub fn remove_batch_dir(dir: &Path, state_dir: &Path, fsync: bool) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::fatal(format!("cannot remove '{}': {e}", dir.display())));
        }
    }
    if fsync {
        crate::durable::fsync_path(&state_dir.join("batches"))?;
    }
    Ok(())
}

/// Where the pid of the batch's update-ref is kept.
fn dirs_pid_file(record: &Record, repo: &Repo) -> PathBuf {
    crate::stage::batch_dir(&repo.state_dir(), &record.id).join(UPDATE_REF_PID_FILE)
}

#[cfg(test)]
mod tests {
    use super::cut_short_from;

    #[test]
    fn a_write_cut_short_leaves_a_prefix_or_zeros_never_other_bytes() {
        let want = b"690d7c21f749b5ccd58440180f8a3b969723a3dc\n";
        assert!(cut_short_from(b"", want));
        assert!(cut_short_from(&want[..40], want));
        assert!(cut_short_from(want, want));
        assert!(cut_short_from(&[0u8; 41], want), "size on disk, data not: zeros");
        assert!(cut_short_from(&[0u8; 12], want));
        assert!(!cut_short_from(&[0u8; 42], want), "longer than anything we wrote");
        assert!(!cut_short_from(b"fcc11e5bc3cca716d332ede9078dd354a539e3e2\n", want), "another value");
        assert!(
            cut_short_from(b"690d7c21f749b5ccd58440180f8a3b969723a3dc\0", want),
            "the newline's size, not its data"
        );
        assert!(!cut_short_from(b"690e\0\0", want), "another value, then zeros");
        assert!(!cut_short_from(&[0, 0, b'6', b'9'], want), "zeros, then bytes");
        assert!(cut_short_from(b"", b""), "a lock git leaves empty");
        assert!(!cut_short_from(b"x", b""));
    }
}
