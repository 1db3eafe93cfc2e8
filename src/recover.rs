//! Recovery: finishes or undoes interrupted batches, reusing the stages of apply. A batch is
//! interrupted when its journal exists and nobody holds the batch lock (we hold it here).
//!
//! - Torn journal, or no commit record: roll back. Nothing outside `atomic/` changed yet, except
//!   for lock files (and `packed-refs.new`) of git's `update-ref` if it was killed with us; those
//!   are removed when they are provably ours (leftovers.rs). The batch directory is deleted.
//! - Commit record present: roll forward. Each ref is at its new value (done), at its old value
//!   (updated now, with the old value as precondition) or elsewhere (conflict); each file likewise,
//!   moved while git takes the ref locks (files.rs, [`Policy::recovery`]). A ref file that a
//!   power cut left empty or zeroed is ours to set (leftovers.rs). Then one durability barrier,
//!   then the batch directory is deleted.
//! - Torn journal that still holds its intact commit record (damaged after the commit point):
//!   neither direction is safe; the batch is left for a person (exit 3).
//!
//! With history (`Record::log.keep`), a batch rolled back or forward ends as a log entry saying
//! so (history.rs): recovery is never silent.
//!
//! Every step accepts "already done", so recovery can itself be killed and run again.

use crate::crash;
use crate::durable::{Barrier, Writeback};
use crate::error::{Error, IoContext, Kind, Result};
use crate::files::{self, Policy};
use crate::history;
use crate::journal::{self, Journal};
use crate::leftovers;
use crate::lock::BatchLock;
use crate::record::{Record, RefChange, RefVerb};
use crate::refs;
use crate::refstore::RefStore;
use crate::repo::Repo;
use crate::state::BatchDir;
use crate::trace;
use std::path::{Path, PathBuf};

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

/// Recovers every interrupted batch; the caller holds the batch lock, so none is live.
/// `quiet` silences the progress of moving files.
pub fn recover_all(repo: &Repo, _lock: &BatchLock, quiet: bool) -> Result<Vec<Recovered>> {
    let mut done = Vec::new();
    for batch in repo.state_dir().batch_dirs()? {
        done.push(recover_one(repo, &batch, quiet)?);
    }
    Ok(done)
}

/// Recovers one batch: rolls it back, forward, or keeps it for a person.
pub fn recover_one(repo: &Repo, batch: &BatchDir, quiet: bool) -> Result<Recovered> {
    let id = batch.id();
    leftovers::wait_for_orphan_update_ref(batch);
    let journal_path = batch.journal();
    match journal::read(&journal_path)? {
        Journal::Torn if journal::has_commit_record(&journal_path, &id) => needs_attention(batch, id),
        Journal::Torn => {
            // The journal never reached its barrier, so update-ref was never started.
            let why = "interrupted while its journal was being written; nothing was changed";
            log_roll_back(repo, batch, repo.settings.history, why)?;
            Ok(Recovered { id, action: Action::RolledBack })
        }
        Journal::Intact { record, committed: false } => {
            // A worktree removed since: its per-worktree refs went with it; shared ones are ours.
            let current = || open_worktree(repo, &repo.git_dir, repo.work_tree.as_ref());
            let target = open_target(repo, &record).or_else(|_| current())?;
            leftovers::remove_own_locks(&target, &record, batch, false)?;
            let why = "interrupted before its commit point; nothing was changed";
            log_roll_back(repo, batch, record.log.keep, why)?;
            Ok(Recovered { id, action: Action::RolledBack })
        }
        Journal::Intact { record, committed: true } => roll_forward(repo, batch, &record, quiet),
    }
}

/// A committed batch whose journal is damaged: what to finish is unreadable, and undoing it
/// could break what the commit point promised. The batch stays, with a `conflict` file saying
/// why, and recovery reports it (exit 3).
fn needs_attention(batch: &BatchDir, id: String) -> Result<Recovered> {
    let why = format!(
        "the journal '{}' is damaged, but its commit record is intact: the batch was committed and \
         may be partly applied; check its refs and files, then remove '{}'",
        batch.journal().display(),
        batch.path().display()
    );
    keep_for_attention(batch, id, vec![why])
}

/// Leaves the batch where it is, with a `conflict` file giving the reasons (for `status`), and
/// reports it as needing attention (exit 3).
fn keep_for_attention(batch: &BatchDir, id: String, reasons: Vec<String>) -> Result<Recovered> {
    let text: String = reasons.iter().map(|c| format!("{c}\n")).collect();
    std::fs::write(batch.conflict(), text)
        .io_context(|| format!("cannot write to '{}'", batch.path().display()))?;
    Ok(Recovered { id, action: Action::Conflict(reasons) })
}

/// The repository (worktree) the batch was applied in: its per-worktree refs and its files.
pub fn open_target(repo: &Repo, record: &Record) -> Result<Repo> {
    open_worktree(repo, &record.git_dir, record.work_tree.as_ref())
}

/// Opens one worktree of `repo`'s repository by its git dir and work tree.
fn open_worktree(repo: &Repo, git_dir: &Path, work_tree: Option<&PathBuf>) -> Result<Repo> {
    let exe = repo.git.exe().to_path_buf();
    Repo::open(exe, git_dir.to_path_buf(), repo.common_dir.clone(), work_tree.cloned())
}

/// Finishes a committed batch: its refs through one update-ref transaction, its files moved
/// meanwhile, then one barrier for both and the batch directory removed.
fn roll_forward(repo: &Repo, batch: &BatchDir, record: &Record, quiet: bool) -> Result<Recovered> {
    let target = match open_target(repo, record) {
        Ok(target) => target,
        Err(e) => {
            let why = format!("the worktree the batch was applied in cannot be opened: {}", e.message);
            return keep_for_attention(batch, record.id.clone(), vec![why]);
        }
    };
    let mut conflicts = leftovers::remove_own_locks(&target, record, batch, true)?;
    let repaired = leftovers::remove_torn_refs(&target, record, batch)?;
    trace::stage("recover-locks");
    let mut barrier = Barrier::new(repo.settings.fsync);
    let writeback = Writeback::for_refs(repo.settings.fsync, record.refs.len(), &target.common_dir);
    let (ref_conflicts, preparing) = start_refs_forward(&target, record, batch, &repaired)?;
    conflicts.extend(ref_conflicts);
    // The files go forward while git takes its locks: past the commit point, refs and files
    // are each finished on their own, in either order.
    let hash = target.gix.object_hash();
    conflicts.extend(files::move_all(record, batch.path(), hash, Policy::recovery(quiet), &mut barrier)?);
    trace::stage("recover-files");
    finish_refs_forward(&target, record, batch, preparing, &mut barrier)?;
    drop(writeback);
    trace::stage("recover-refs");
    crash::point("recover-refs");
    let logged = history::logs(record) && conflicts.is_empty();
    if logged {
        let entry = repo.state_dir().log_entry(&record.id);
        let kept = history::check_pre_images(record, batch.path(), entry.path(), hash, &Default::default());
        history::write_outcome(batch, history::ROLLED_FORWARD, None, kept, &mut barrier)?;
    }
    barrier.add_file_system_of(&repo.common_dir);
    barrier.flush()?;
    trace::stage("recover-sync");
    crash::point("recover-synced");
    if !conflicts.is_empty() {
        return keep_for_attention(batch, record.id.clone(), conflicts);
    }
    match logged {
        true => history::publish(&repo.state_dir(), batch, repo.settings.fsync)?,
        false => batch.remove(repo.settings.fsync)?,
    }
    Ok(Recovered { id: record.id.clone(), action: Action::RolledForward })
}

/// Ends a rolled-back batch: with history, its staged contents go and the rest becomes a log
/// entry saying why (a recovery is never silent); without, the directory is removed.
fn log_roll_back(repo: &Repo, batch: &BatchDir, keep: bool, why: &str) -> Result<()> {
    if !keep {
        return batch.remove(repo.settings.fsync);
    }
    history::remove_staged(batch);
    let mut barrier = Barrier::new(repo.settings.fsync);
    history::write_outcome(batch, history::ROLLED_BACK, Some(why.to_string()), Vec::new(), &mut barrier)?;
    barrier.flush()?;
    history::publish(&repo.state_dir(), batch, repo.settings.fsync)
}

/// Recovery's git taking its locks, and the refs it locks.
type LockingRefs = (refs::Preparing, Vec<String>);

/// Starts bringing every changed ref to its new value, in one update-ref transaction whose old
/// values are what the journal says the refs held before: a ref someone else moved is a
/// conflict. A `repaired` ref (see [`leftovers::remove_torn_refs`]) goes from whatever it reads as now.
/// Returns the conflicts and git taking its locks, with the refs it locks (nothing when every
/// ref is done already).
fn start_refs_forward(
    target: &Repo,
    record: &Record,
    batch: &BatchDir,
    repaired: &[String],
) -> Result<(Vec<String>, Option<LockingRefs>)> {
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
        let direct = RefChange { name: r.target.clone(), old, ..r.clone() };
        let no_deref = if r.verb == RefVerb::Symref { "" } else { "option no-deref\n" };
        lines.push(format!("{no_deref}{}", refs::command_lines(&direct, &zero)));
        changed.push(r.target.as_str());
    }
    if lines.is_empty() {
        return Ok((conflicts, None));
    }
    let dirs = target.ref_dirs();
    let pid_file = batch.update_ref_pid();
    let process = refs::spawn_for(&target.git, &record.message, &record.id, batch)?;
    let locked: Vec<String> = changed.iter().map(|t| t.to_string()).collect();
    let preparing =
        refs::start_prepare(process, &dirs, lines.into_iter(), changed.into_iter(), Some(&pid_file))
            .map_err(|e| cannot_finish_refs(record, &e.message))?;
    Ok((conflicts, Some((preparing, locked))))
}

/// Waits for git's locks (noting them, as apply does) and commits the refs; the barrier then
/// covers their file system.
fn finish_refs_forward(
    target: &Repo,
    record: &Record,
    batch: &BatchDir,
    preparing: Option<LockingRefs>,
    barrier: &mut Barrier,
) -> Result<()> {
    let Some((preparing, locked)) = preparing else {
        return Ok(());
    };
    let prepared = preparing.wait().map_err(|e| {
        if !e.hints.iter().any(|h| h == refs::KILLED_HINT) {
            let _ = leftovers::note_no_locks(batch); // git refused, and released its locks
        }
        cannot_finish_refs(record, &e.message)
    })?;
    // Only the refs this git locks: a lock on a ref already done may be someone else's.
    let ours = record.refs.iter().filter(|r| r.via_git && locked.contains(&r.target));
    let direct = ours.map(|r| RefChange { name: r.target.clone(), ..r.clone() }).collect::<Vec<_>>();
    if let Err(e) = leftovers::note_own_locks(target, direct.iter(), batch) {
        let _ = prepared.abort();
        return Err(cannot_finish_refs(record, &e.message));
    }
    crash::point("recover-locked");
    prepared.commit().map_err(|e| {
        Error::new(Kind::Interrupted, format!("batch {}: git update-ref failed: {}", record.id, e.0.trim()))
    })?;
    barrier.add_file_system_of(&target.common_dir);
    Ok(())
}

fn cannot_finish_refs(record: &Record, why: &str) -> Error {
    Error::new(Kind::Interrupted, format!("batch {}: cannot finish its refs: {why}", record.id))
}
