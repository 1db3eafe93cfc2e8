//! Recovery: finishes or undoes interrupted batches, reusing the stages of apply. A batch is
//! interrupted when its journal exists and nobody holds the batch lock (we hold it here).
//!
//! - Torn journal, or no commit record: roll back. Nothing outside `atomic/` changed yet, except
//!   for lock files of git's `update-ref` if it was killed with us; those are removed when they
//!   are provably ours. The batch directory is deleted.
//! - Commit record present: roll forward. Each ref is at its new value (done), at its old value
//!   (updated now, with the old value as precondition) or elsewhere (conflict); each file likewise.
//!   Then one durability barrier, then the batch directory is deleted.
//!
//! Every step accepts "already done", so recovery can itself be killed and run again.

use crate::crash;
use crate::durable::Barrier;
use crate::error::{Error, IoContext, Kind, Result};
use crate::files::{Mover, Outcome as FileOutcome};
use crate::journal::{self, JournalRef, Read, Record, decode_ref};
use crate::lock::BatchLock;
use crate::refs::{self, RefDirs};
use crate::refstore::{RefStore, RefValue};
use crate::repo::Repo;
use crate::validate::RefVerb;
use std::path::{Path, PathBuf};

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
        Read::Torn => {
            // The journal never reached its barrier, so update-ref was never started.
            remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync)?;
            Ok(Recovered { id, action: Action::RolledBack })
        }
        Read::Intact { record, committed: false } => {
            let target = open_target(repo, &record)?;
            remove_own_locks(&target, &record, &journal_path, false)?;
            remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync)?;
            Ok(Recovered { id, action: Action::RolledBack })
        }
        Read::Intact { record, committed: true } => roll_forward(repo, dir, &record),
    }
}

/// The repository (worktree) the batch was applied in: its per-worktree refs and its files.
fn open_target(repo: &Repo, record: &Record) -> Result<Repo> {
    if record.git_dir == repo.git_dir && record.work_tree == repo.work_tree {
        return Repo::open(
            repo.git.exe().to_path_buf(),
            repo.git_dir.clone(),
            repo.common_dir.clone(),
            repo.work_tree.clone(),
        );
    }
    Repo::open(
        repo.git.exe().to_path_buf(),
        record.git_dir.clone(),
        repo.common_dir.clone(),
        record.work_tree.clone(),
    )
}

fn roll_forward(repo: &Repo, dir: &Path, record: &Record) -> Result<Recovered> {
    let target = open_target(repo, record)?;
    let journal_path = dir.join(journal::JOURNAL_FILE);
    let mut conflicts = remove_own_locks(&target, record, &journal_path, true)?;
    let mut barrier = Barrier::new(repo.settings.fsync);
    conflicts.extend(roll_refs_forward(&target, record, &mut barrier)?);
    crash::point("recover-refs");
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
    barrier.add_file_system_of(&repo.common_dir);
    barrier.flush()?;
    crash::point("recover-synced");
    if !conflicts.is_empty() {
        let text: String = conflicts.iter().map(|c| format!("{c}\n")).collect();
        std::fs::write(dir.join(CONFLICT_FILE), text)
            .io_context(|| format!("cannot write to '{}'", dir.display()))?;
        return Ok(Recovered { id: record.id.clone(), action: Action::Conflict(conflicts) });
    }
    remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync)?;
    Ok(Recovered { id: record.id.clone(), action: Action::RolledForward })
}

/// Brings every changed ref to its new value, in one update-ref transaction whose old values
/// are what the journal says the refs held before: a ref someone else moved is a conflict.
fn roll_refs_forward(target: &Repo, record: &Record, barrier: &mut Barrier) -> Result<Vec<String>> {
    let store = RefStore::new(&target.gix, &target.git, target.settings.reftable)?;
    let zero = "0".repeat(target.gix.object_hash().len_in_hex());
    let mut lines = String::new();
    let mut changed = Vec::new();
    let mut conflicts = Vec::new();
    for r in record.refs.iter().filter(|r| r.via_git && r.verb != RefVerb::Verify) {
        let (old, new) = (decode_ref(&r.old)?, decode_ref(&r.new)?);
        let now = store.read(&r.target)?;
        if now == new {
            continue;
        }
        if now != old {
            conflicts.push(format!("ref '{}' was moved by someone else", r.target));
            continue;
        }
        // By the target's own name: HEAD may point elsewhere by now, the journaled ref may not.
        let direct = JournalRef { name: r.target.clone(), ..r.clone() };
        if r.verb != RefVerb::Symref {
            lines.push_str("option no-deref\n");
        }
        lines.push_str(&refs::command_lines(&direct, &zero)?);
        changed.push(r.target.as_str());
    }
    if !lines.is_empty() {
        let dirs = RefDirs { git_dir: target.git_dir.clone(), common_dir: target.common_dir.clone() };
        let pid_file = dirs_pid_file(record, target);
        let prepared =
            refs::prepare(&target.git, &dirs, &record.message, &record.id, &lines, &changed, Some(&pid_file))
                .map_err(|e| {
                    Error::new(
                        Kind::Interrupted,
                        format!("batch {}: cannot finish its refs: {}", record.id, e.message),
                    )
                })?;
        prepared.commit().map_err(|e| {
            Error::new(
                Kind::Interrupted,
                format!("batch {}: git update-ref failed: {}", record.id, e.0.trim()),
            )
        })?;
        barrier.add_file_system_of(&target.common_dir);
    }
    Ok(conflicts)
}

/// Removes lock files that the batch's own (dead) update-ref left: a lock is ours when it is
/// on one of the batch's refs (or `packed-refs`), was made after the journal, and holds nothing
/// or exactly the batch's new value. Any other lock on those refs is reported, never deleted.
fn remove_own_locks(target: &Repo, record: &Record, journal: &Path, committed: bool) -> Result<Vec<String>> {
    let journal_time = std::fs::metadata(journal).and_then(|m| m.modified()).ok();
    let dirs = RefDirs { git_dir: target.git_dir.clone(), common_dir: target.common_dir.clone() };
    let mut candidates: Vec<(PathBuf, Option<String>)> = Vec::new();
    for r in record.refs.iter().filter(|r| r.via_git) {
        let content = match decode_ref(&r.new)? {
            RefValue::Id(id) => Some(format!("{id}\n")),
            RefValue::Symbolic(t) => Some(format!("ref: {t}\n")),
            RefValue::Absent => None,
        };
        for name in [&r.name, &r.target] {
            candidates.push((dirs.base_for(name).join(format!("{name}.lock")), content.clone()));
        }
    }
    if record.refs.iter().any(|r| r.via_git && r.verb == RefVerb::Delete) {
        candidates.push((target.common_dir.join("packed-refs.lock"), None));
    }
    candidates.sort();
    candidates.dedup_by(|a, b| a.0 == b.0);
    let mut conflicts = Vec::new();
    for (lock, new_content) in candidates {
        let Ok(meta) = std::fs::symlink_metadata(&lock) else {
            continue;
        };
        let content = std::fs::read_to_string(&lock).unwrap_or_default();
        let recent = match (journal_time, meta.modified()) {
            (Some(j), Ok(l)) => l >= j,
            _ => false,
        };
        let matches = content.is_empty() || Some(&content) == new_content.as_ref();
        if recent && matches {
            std::fs::remove_file(&lock).io_context(|| format!("cannot remove '{}'", lock.display()))?;
        } else if committed {
            conflicts.push(format!("lock file '{}' is held by someone else", lock.display()));
        }
    }
    Ok(conflicts)
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
    for _ in 0..500 {
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
