//! Two-phase commit in one repository (SPEC §9): the pipelines of `prepare`, `commit` and
//! `abort`, and the recovery of prepared batches. The prepared state on disk is prepared.rs.
//!
//! - `prepare`: apply's steps up to staging (journal, barrier 1, contents, barrier 2), with the
//!   ref preconditions checked by reading (git's locks are taken at commit), then the `xa`
//!   record and the move to `atomic/prepared/`. A crash before that move leaves an interrupted
//!   batch, rolled back by recovery; after it, a prepared batch that nothing but `commit` or
//!   `abort` decides.
//! - `commit`: git's `update-ref` prepares every ref with the journaled old value under its
//!   locks (a ref moved meanwhile refuses the commit, exit 1, and the batch stays prepared); a
//!   file another program changed is saved ([`prepared::save_displaced`]) and the journal
//!   rewritten with what is there now; then the commit record (the commit point), the outcome,
//!   and apply's last steps (refs committed while the files move, barrier 3, the directory
//!   published into the history log, or removed without history).
//! - `abort`: the outcome, then the directory removed.
//! - recovery: a prepared batch with its commit record rolls forward; one whose outcome says
//!   aborted is removed; any other is kept, only the lock files of a dead commit attempt removed.

use crate::check;
use crate::crash;
use crate::durable::Barrier;
use crate::error::{Error, Kind, Result};
use crate::files::{self, Policy};
use crate::history;
use crate::journal::{self, Journal};
use crate::leftovers;
use crate::lock::BatchLock;
use crate::paths::{self, Found};
use crate::prepared::{self, Outcome};
use crate::record::{JournalBlob, LogInfo, Record};
use crate::recover::{self, Action, Recovered};
use crate::refs::{self, PreparedRefs};
use crate::repo::Repo;
use crate::stage;
use crate::state::BatchDir;
use crate::validate::{self, BatchLabel};

/// Prepares a parsed batch as XID `xid`; returns its record. The caller holds the lock and
/// has recovered interrupted batches. `coordinator` is the common dir of the repository that
/// decides, for a participant of a cross-repository batch.
pub fn prepare(
    repo: &Repo,
    file: crate::parse::BatchFile,
    label: BatchLabel,
    xid: &str,
    coordinator: Option<std::path::PathBuf>,
) -> Result<Record> {
    let state_dir = repo.state_dir();
    refuse_used_xid(repo, xid)?;
    let renames = file.renames();
    let batch = validate::validate(file, repo, label)?;
    let checked = check::check(batch, repo.work_tree.as_deref(), repo.gix.object_hash())?;
    prepared::refuse_reserved(&state_dir, &checked)?;
    let planned = stage::plan(checked, &state_dir, &repo.gix)?;
    let dir = planned.batch_dir.clone();
    let mut barrier = Barrier::new(repo.settings.fsync);
    // Journaled as apply journals: a committed batch keeps its pre-images and is logged (§7).
    let log = LogInfo { keep: repo.settings.history, renames, ..LogInfo::default() };
    // The xa record rides on barrier 1, with the journal (one file system sync for a new
    // repository's first batch): barrier 2 then syncs only the staged contents, as apply's does.
    let written =
        dir.create(&mut barrier).and_then(|()| prepared::write_xa(&dir, xid, coordinator, &mut barrier));
    let journaled = written.and_then(|()| stage::journal(planned, &repo.git_dir, log, &mut barrier));
    let staged = journaled.and_then(|journaled| {
        crash::point("xa-journaled");
        let _staged = stage::write_contents(&journaled.planned, &repo.gix, &mut barrier)?;
        crash::point("xa-staged");
        Ok(journaled)
    });
    let journaled = staged.inspect_err(|_| {
        let _ = dir.remove(repo.settings.fsync);
    })?;
    prepared::mark_prepared(&state_dir, &journaled.planned.batch_dir, repo.settings.fsync)?;
    crash::point("xa-prepared");
    Ok(journaled.record)
}

/// An XID names one batch, ever: a prepared or finished one cannot be prepared again.
fn refuse_used_xid(repo: &Repo, xid: &str) -> Result<()> {
    let state_dir = repo.state_dir();
    if prepared::find(&state_dir, xid)?.is_some() {
        return Err(Error::refused(format!("XID {xid} is already prepared")));
    }
    if let Some((outcome, id)) = prepared::outcome(&state_dir, xid) {
        return Err(Error::refused(format!("XID {xid} was already used: batch {id} was {}", outcome.word())));
    }
    Ok(())
}

/// What `commit` or `abort` did.
pub enum Finished {
    /// It happened now.
    Now(String),
    /// It had happened already (the command is idempotent).
    Already(String),
}

/// A batch that recovery read and left prepared (undecided, its journal intact and without a
/// commit record): `commit` and `abort` go on with it as read, under the same lock.
pub struct StillPrepared {
    /// Its directory under `atomic/prepared/`, which `commit` finishes or `abort` removes.
    pub dir: BatchDir,
    /// Its `xa` record: the XID that `commit` and `abort` look it up by.
    pub xa: prepared::Xa,
    /// Its journal's record, so that `commit` need not read the journal again.
    pub record: Record,
}

/// Commits prepared batch `xid`; exit 1 when it was aborted, unknown, or a ref moved. `known`:
/// the batches recovery just left prepared (see [`recover_before_deciding`]), or none.
pub fn commit(repo: &Repo, xid: &str, known: Vec<StillPrepared>) -> Result<Finished> {
    let state_dir = repo.state_dir();
    let Some((dir, record)) = find_prepared(repo, xid, known)? else {
        return finished_before(repo, xid, Outcome::Committed);
    };
    // The worktree it was prepared in: usually this one, already open.
    let opened;
    let target = if record.git_dir == repo.git_dir && record.work_tree == repo.work_tree {
        repo
    } else {
        opened = recover::open_target(repo, &record)?;
        &opened
    };
    // git takes its locks while the work tree is compared with the journal.
    let preparing = start_locking_refs(target, &record, &dir)?;
    let displaced = displace_changed_files(target, record.clone(), &dir, xid);
    let prepared_refs = wait_for_locks(target, &record, &dir, xid, preparing, displaced.is_ok())?;
    crash::point("xa-locked");
    let before = displaced.and_then(|record| {
        journal::append_commit_record(&dir.journal(), &record.id, repo.settings.fsync)?;
        Ok(record)
    });
    let record = match before {
        Ok(record) => record,
        Err(e) => {
            if let Some(prepared) = prepared_refs {
                release(prepared, &dir);
            }
            return Err(e);
        }
    };
    crash::point("xa-committed");
    // The outcome is made durable by barrier 3, before the directory goes; until then, the
    // commit record is what recovery goes by (and it writes the outcome again).
    let mut barrier = Barrier::new(repo.settings.fsync);
    prepared::write_outcome(&state_dir, xid, Outcome::Committed, &record.id, &mut barrier)
        .map_err(|e| after_commit_point(e, xid))?;
    finish_commit(repo, target, &record, &dir, prepared_refs, barrier)
        .map_err(|e| after_commit_point(e, xid))?;
    Ok(Finished::Now(record.id))
}

/// The prepared batch `xid` with its journal's record: as recovery read it when it is in
/// `known`, else read now (`None`: no batch is prepared under `xid`).
fn find_prepared(repo: &Repo, xid: &str, known: Vec<StillPrepared>) -> Result<Option<(BatchDir, Record)>> {
    if let Some(batch) = known_as(known, xid) {
        return Ok(Some((batch.dir, batch.record)));
    }
    let Some((dir, _)) = prepared::find(&repo.state_dir(), xid)? else { return Ok(None) };
    match journal::read(&dir.journal())? {
        Journal::Intact { record, committed: false } => Ok(Some((dir, record))),
        _ => Err(Error::new(Kind::Interrupted, format!("prepared batch {xid} cannot be read"))
            .hint("run 'git atomic status' for details")),
    }
}

/// The batch of `known` prepared under `xid`, if recovery read it.
fn known_as(known: Vec<StillPrepared>, xid: &str) -> Option<StillPrepared> {
    known.into_iter().find(|b| b.xa.xid == xid)
}

/// Aborts prepared batch `xid`; exit 1 when it was committed or is unknown. `known`: as for
/// [`commit`].
pub fn abort(repo: &Repo, xid: &str, known: Vec<StillPrepared>) -> Result<Finished> {
    let state_dir = repo.state_dir();
    let found = match known_as(known, xid) {
        Some(batch) => Some(batch.dir),
        None => prepared::find(&state_dir, xid)?.map(|(dir, _)| dir),
    };
    let Some(dir) = found else {
        return finished_before(repo, xid, Outcome::Aborted);
    };
    let id = dir.id();
    prepared::record_outcome(&state_dir, xid, Outcome::Aborted, &id, repo.settings.fsync)?;
    crash::point("xa-abort-recorded");
    forget(repo, &dir)?;
    Ok(Finished::Now(id))
}

/// The answer for an XID that is not prepared: done already (0), the other outcome (1), unknown (1).
fn finished_before(repo: &Repo, xid: &str, asked: Outcome) -> Result<Finished> {
    match prepared::outcome(&repo.state_dir(), xid) {
        Some((outcome, id)) if outcome == asked => Ok(Finished::Already(id)),
        Some((outcome, id)) => Err(Error::refused(format!(
            "batch {xid} ({id}) was {}, it cannot be {}",
            outcome.word(),
            asked.word()
        ))),
        None => Err(Error::refused(format!("no prepared batch {xid}"))
            .hint("'git atomic status' lists the prepared batches")),
    }
}

/// Starts git taking its locks on every ref, with the value journaled at prepare as the old
/// value (`None` when no ref goes through git).
fn start_locking_refs(target: &Repo, record: &Record, dir: &BatchDir) -> Result<Option<refs::Preparing>> {
    if !record.refs.iter().any(|r| r.via_git) {
        return Ok(None);
    }
    let zero = "0".repeat(target.gix.object_hash().len_in_hex());
    let process = refs::spawn_for(&target.git, &record.message, &record.id, dir)?;
    let lines = record.refs.iter().map(|r| refs::command_lines(r, &zero));
    let locked = record.refs.iter().filter(|r| r.via_git).flat_map(|r| [r.name.as_str(), r.target.as_str()]);
    let pid_file = dir.update_ref_pid();
    refs::start_prepare(process, &target.ref_dirs(), lines, locked, Some(&pid_file)).map(Some)
}

/// Reads git's answer: every lock held, and noted as the batch's (as apply notes them), so
/// that recovery after a kill removes exactly those at once. A ref moved since prepare (by a
/// git that bypassed the hook) refuses the commit; nothing changed and the batch stays
/// prepared. When `go_on` is false (the work tree could not be compared), the locks are
/// released at once and nothing is returned: the caller reports why, and a note that could not
/// be written either does not hide that refusal.
fn wait_for_locks(
    target: &Repo,
    record: &Record,
    dir: &BatchDir,
    xid: &str,
    preparing: Option<refs::Preparing>,
    go_on: bool,
) -> Result<Option<PreparedRefs>> {
    let Some(preparing) = preparing else { return Ok(None) };
    match preparing.wait() {
        Ok(prepared) => {
            // Before any step that a kill could interrupt while git holds them.
            let own = record.refs.iter().filter(|r| r.via_git);
            let noted =
                crash::fail("xa-noting-locks").and_then(|()| leftovers::note_own_locks(target, own, dir));
            if go_on && noted.is_ok() {
                return Ok(Some(prepared));
            }
            release(prepared, dir);
            match noted {
                Err(e) if go_on => Err(e.hint(stays_prepared(xid))),
                _ => Ok(None),
            }
        }
        Err(e) => {
            if e.hints.iter().any(|h| h == refs::KILLED_HINT) {
                leftovers::remove_own_locks(target, record, dir, false)?;
            }
            let _ = std::fs::remove_file(dir.update_ref_pid());
            Err(Error::refused(format!("cannot commit batch {xid}: {}", e.message)).hint(stays_prepared(xid)))
        }
    }
}

/// The hint of a commit that changed nothing.
fn stays_prepared(xid: &str) -> String {
    format!("the batch stays prepared: 'git atomic abort --xid {xid}' to drop it")
}

/// Tells git to abort, releasing its locks: the batch stays prepared. Its pid file goes only
/// once git said it aborted. A git that did not (killed while it held the locks) may have left
/// its lock files, which only that file (the pid, the boot, the note of the locks) lets
/// recovery tell from another process's (leftovers.rs); recovery, which runs before the next
/// command of any batch, removes them and then the file.
fn release(prepared: PreparedRefs, dir: &BatchDir) {
    crash::point("xa-releasing");
    if prepared.abort().is_ok() {
        let _ = std::fs::remove_file(dir.update_ref_pid());
    }
}

/// Saves every touched file that differs from what the journal says it was at prepare, and
/// rewrites the journal (before the commit point) with what is there now, so that roll-forward
/// expects it. Returns the record as rewritten.
fn displace_changed_files(target: &Repo, mut record: Record, dir: &BatchDir, xid: &str) -> Result<Record> {
    let Some(work_tree) = record.work_tree.clone() else { return Ok(record) };
    let hash = target.gix.object_hash();
    let state_dir = target.state_dir();
    let mut barrier = Barrier::new(target.settings.fsync);
    let mut changed = false;
    for put in &mut record.puts {
        let now = state_now(&work_tree, &put.path, hash, xid)?;
        if now != put.old {
            note_displaced(&state_dir, dir, &work_tree, &put.path, now.is_some(), &mut barrier, xid)?;
            put.old = now;
            changed = true;
        }
    }
    let mut removes = Vec::with_capacity(record.removes.len());
    for remove in std::mem::take(&mut record.removes) {
        match state_now(&work_tree, &remove.path, hash, xid)? {
            Some(now) if now == remove.old => removes.push(remove),
            Some(now) => {
                note_displaced(&state_dir, dir, &work_tree, &remove.path, true, &mut barrier, xid)?;
                removes.push(crate::record::JournalRemove { old: now, ..remove });
                changed = true;
            }
            None => changed = true, // gone already: nothing to remove
        }
    }
    record.removes = removes;
    if changed {
        barrier.flush()?;
        let temp = dir.rewritten_journal();
        journal::write(&record, &temp, &mut barrier)?;
        std::fs::rename(&temp, dir.journal())
            .map_err(|e| Error::fatal(format!("cannot rewrite the journal: {e}")))?;
        barrier.add(dir.path());
        barrier.flush()?;
    }
    Ok(record)
}

/// What a path holds now, as the journal spells it (`None`: absent); a directory or special
/// file where the batch writes a file refuses the commit.
fn state_now(
    work_tree: &std::path::Path,
    path: &str,
    hash: gix::hash::Kind,
    xid: &str,
) -> Result<Option<JournalBlob>> {
    match paths::inspect(work_tree, path, hash)? {
        Found::Absent => Ok(None),
        Found::File { blob, mode } => Ok(Some(JournalBlob { blob, mode })),
        Found::Directory | Found::Special => {
            Err(Error::refused(format!("cannot commit batch {xid}: '{path}' is no longer a file"))
                .hint(stays_prepared(xid)))
        }
    }
}

/// Saves a changed file (when present) and says so on stderr.
fn note_displaced(
    state_dir: &crate::state::StateDir,
    dir: &BatchDir,
    work_tree: &std::path::Path,
    path: &str,
    present: bool,
    barrier: &mut Barrier,
    xid: &str,
) -> Result<()> {
    if !present {
        eprintln!("warning: '{path}' was removed while batch {xid} was prepared");
        return Ok(());
    }
    let saved = prepared::save_displaced(state_dir, &dir.id(), work_tree, path, barrier)?;
    eprintln!(
        "warning: '{path}' was changed while batch {xid} was prepared; its content is saved in '{}'",
        saved.display()
    );
    Ok(())
}

/// After the commit point: refs committed while the files move, one barrier, then the directory
/// becomes a log entry (history.rs) like an applied batch's, or is removed without history.
/// If git does not confirm its commit, roll-forward finishes the batch.
fn finish_commit(
    repo: &Repo,
    target: &Repo,
    record: &Record,
    dir: &BatchDir,
    prepared_refs: Option<PreparedRefs>,
    mut barrier: Barrier,
) -> Result<()> {
    let committing = prepared_refs.map(PreparedRefs::start_commit);
    let hash = target.gix.object_hash();
    let moved = files::move_all(record, dir.path(), hash, Policy::apply(true), &mut barrier);
    crash::point("xa-files-moved");
    let settled = committing.map(|c| c.and_then(refs::CommittingRefs::wait));
    if moved.is_err() || matches!(settled, Some(Err(_))) {
        let recovered = recover::recover_one(repo, dir, true)?;
        return match recovered.action {
            Action::RolledForward => Ok(()),
            _ => Err(Error::new(Kind::Interrupted, format!("batch {} could not finish", record.id))),
        };
    }
    let logged = history::logs(record);
    if logged {
        let entry = repo.state_dir().log_entry(&record.id);
        let kept = history::check_pre_images(record, dir.path(), entry.path(), hash, &Default::default());
        history::write_outcome(dir, history::APPLIED, None, kept, &mut barrier)?;
    }
    if settled.is_some() {
        barrier.add_file_system_of(&target.common_dir);
        barrier.add_file_system_of(&target.git_dir);
    }
    barrier.flush()?;
    crash::point("xa-synced");
    if !logged {
        return dir.remove(repo.settings.fsync);
    }
    history::publish(&repo.state_dir(), dir, repo.settings.fsync)?;
    history::prune(&repo.state_dir(), repo.settings.log_limit).map(|_| ())
}

fn after_commit_point(e: Error, xid: &str) -> Error {
    Error::new(Kind::Interrupted, format!("batch {xid} is committed but could not finish: {}", e.message))
        .hint("run 'git atomic recover' to finish it")
}

/// Removes a prepared batch that will never commit: the lock files of a dead commit attempt,
/// then its directory.
fn forget(repo: &Repo, dir: &BatchDir) -> Result<()> {
    if dir.update_ref_pid().exists()
        && let Journal::Intact { record, .. } = journal::read(&dir.journal())?
    {
        clear_dead_attempt(repo, &record, dir)?;
    }
    dir.remove(repo.settings.fsync)
}

/// Recovers prepared batches (the caller holds the lock): finishes a committed one, removes an
/// aborted one, and never decides one that is only prepared (only the lock files of a commit
/// attempt that died are removed).
pub fn recover_prepared(repo: &Repo, lock: &BatchLock, quiet: bool) -> Result<Vec<Recovered>> {
    recover_prepared_keeping(repo, lock, quiet).map(|(done, _)| done)
}

/// [`recover_prepared`], returning also the batches it left prepared, as it read them.
fn recover_prepared_keeping(
    repo: &Repo,
    _lock: &BatchLock,
    quiet: bool,
) -> Result<(Vec<Recovered>, Vec<StillPrepared>)> {
    let state_dir = repo.state_dir();
    let (mut done, mut kept) = (Vec::new(), Vec::new());
    for dir in state_dir.prepared_dirs()? {
        // `xa` is durable before a batch enters prepared/, and the journal leaves only when the
        // batch is finished: without either, a removal was cut short. It is finished now.
        let Some(xa) = prepared::read_xa(&dir).filter(|_| dir.journal().exists()) else {
            dir.remove(repo.settings.fsync)?;
            continue;
        };
        match journal::read(&dir.journal())? {
            Journal::Intact { record, committed: true } => {
                prepared::record_outcome(
                    &state_dir,
                    &xa.xid,
                    Outcome::Committed,
                    &record.id,
                    repo.settings.fsync,
                )?;
                done.push(recover::recover_one(repo, &dir, quiet)?);
            }
            Journal::Intact { record, committed: false } => {
                // First the lock files of a commit attempt that died (a coordinator killed while
                // committing): a commit now would find them and fail on its own locks.
                clear_dead_attempt(repo, &record, &dir)?;
                let decided = match prepared::outcome(&state_dir, &xa.xid) {
                    Some((outcome, _)) => Some(outcome),
                    None => prepared::decision(repo, &xa),
                };
                if decided == Some(Outcome::Aborted) {
                    prepared::record_outcome(
                        &state_dir,
                        &xa.xid,
                        Outcome::Aborted,
                        &record.id,
                        repo.settings.fsync,
                    )?;
                    forget(repo, &dir)?;
                    done.push(Recovered { id: record.id, action: Action::RolledBack });
                } else if decided == Some(Outcome::Committed) {
                    let action = match commit(repo, &xa.xid, Vec::new()) {
                        Ok(_) => Action::RolledForward,
                        Err(e) => {
                            Action::Conflict(vec![format!("the decision was to commit, but {}", e.message)])
                        }
                    };
                    done.push(Recovered { id: record.id, action });
                } else {
                    kept.push(StillPrepared { dir, xa, record });
                }
            }
            // Damaged after the commit point: kept for a person (exit 3).
            Journal::Torn if journal::has_commit_record(&dir.journal(), &dir.id()) => {
                done.push(recover::recover_one(repo, &dir, quiet)?);
            }
            Journal::Torn => {} // damaged while prepared: `status` shows it; nobody decides it
        }
    }
    Ok((done, kept))
}

/// Removes the lock files that a dead commit attempt's update-ref left (the caller holds the
/// batch lock, so no live commit of this batch is running), once that update-ref is gone.
fn clear_dead_attempt(repo: &Repo, record: &Record, dir: &BatchDir) -> Result<()> {
    if dir.update_ref_pid().exists() {
        leftovers::wait_for_orphan_update_ref(dir);
        let target = recover::open_target(repo, record)?;
        leftovers::remove_own_locks(&target, record, dir, false)?;
        let _ = std::fs::remove_file(dir.update_ref_pid());
    }
    Ok(())
}

/// Whether a prepared batch has something for recovery to do (for the hook: a prepared batch
/// alone needs no recovery run after every git command).
pub fn needs_recovery(state_dir: &crate::state::StateDir) -> bool {
    let Ok(dirs) = state_dir.prepared_dirs() else { return false };
    dirs.iter().any(|dir| {
        dir.update_ref_pid().exists()
            || prepared::read_xa(dir).is_some_and(|xa| prepared::coordinator_gone(&xa))
            || journal::has_commit_record(&dir.journal(), &dir.id())
            || prepared::read_xa(dir).is_some_and(|xa| prepared::outcome(state_dir, &xa.xid).is_some())
    })
}

/// Recovers interrupted batches before a command does its own work (SPEC §1.4); a batch that
/// cannot be recovered stops the command with exit 3.
pub fn recover_interrupted(repo: &Repo, lock: &BatchLock, quiet: bool) -> Result<()> {
    recover_before_deciding(repo, lock, quiet).map(|_| ())
}

/// [`recover_interrupted`] before `commit` or `abort` decides a prepared batch: returns the
/// batches left prepared as recovery read them, so that their `xa` records and journals are
/// read once.
pub fn recover_before_deciding(repo: &Repo, lock: &BatchLock, quiet: bool) -> Result<Vec<StillPrepared>> {
    let (prepared, kept) = recover_prepared_keeping(repo, lock, quiet)?;
    for recovered in crate::recover::recover_all(repo, lock, quiet)?.into_iter().chain(prepared) {
        match recovered.action {
            crate::recover::Action::RolledBack if !quiet => {
                eprintln!("git atomic: rolled back interrupted batch {}", recovered.id)
            }
            crate::recover::Action::RolledForward if !quiet => {
                eprintln!("git atomic: finished interrupted batch {}", recovered.id)
            }
            crate::recover::Action::Conflict(why) => {
                return Err(Error::new(
                    Kind::Interrupted,
                    format!("interrupted batch {} cannot be finished: {}", recovered.id, why.join("; ")),
                )
                .hint("run 'git atomic status' for details"));
            }
            _ => {}
        }
    }
    Ok(kept)
}
