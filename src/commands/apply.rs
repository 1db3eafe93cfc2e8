//! `git atomic apply`: the pipeline parse → lock → validate → check → plan → journal →
//! prepare refs (while the contents are staged) → recheck → commit record → commit refs (while
//! the files move) → sync → finish.
//! Before the commit record any failure rolls back (nothing outside `atomic/` changed); after it,
//! the batch can only go forward, and a failure leaves it to recovery (exit 3).

use crate::check::{self, Checked};
use crate::cli::ApplyArgs;
use crate::commands::{recover_interrupted, wait_duration};
use crate::crash;
use crate::durable::{Barrier, Writeback};
use crate::error::{Error, Kind, Result};
use crate::files::{Mover, Outcome};
use crate::git::UpdateRefProcess;
use crate::journal::{self, Journaled};
use crate::json::{self, ApplyResult, FileLine, RefLine};
use crate::lock;
use crate::parse;
use crate::progress::Progress;
use crate::recover::{self, Action, UPDATE_REF_PID_FILE};
use crate::refs::{self, CommittedRefs, CommittingRefs, OutcomeUnknown, PreparedRefs, Preparing};
use crate::refstore::RefValue;
use crate::repo::Repo;
use crate::stage::{self, ContentsStaged, Planned};
use crate::trace;
use crate::validate::{self, Batch, Identity};
use std::io::Read;
use std::path::Path;

/// Runs `apply` and returns the exit status.
pub fn run(args: &ApplyArgs) -> i32 {
    let mut result = ApplyResult::default();
    match apply(args, &mut result) {
        Ok(()) => {
            if args.json {
                json::print(&result);
            } else if !args.quiet {
                let id = result.id.as_deref().unwrap_or("");
                let verb = if args.dry_run { "would apply" } else { "applied" };
                println!("{verb} batch {id}: {} ref(s), {} file(s)", result.ref_count, result.files.len());
            }
            0
        }
        Err(e) => {
            result.status = match e.kind {
                Kind::Refused => "refused",
                Kind::Invalid => "invalid",
                Kind::Busy => "busy",
                Kind::Interrupted => "interrupted",
                Kind::Fatal => "fatal",
            };
            result.error = Some((&e).into());
            if args.json {
                json::print(&result);
            }
            e.print();
            e.kind.exit_code()
        }
    }
}

fn apply(args: &ApplyArgs, out: &mut ApplyResult) -> Result<()> {
    trace::stage("start");
    let repo = Repo::discover()?;
    trace::stage("discover");
    let (bytes, origin) = read_batch(args.file.as_deref())?;
    let file = parse::parse(&bytes, &origin)?;
    drop(bytes);
    trace::stage("parse");
    let identity = Identity::new(&file, args.message.clone());
    let update_ref = start_update_ref(&repo, &file, &identity, args.dry_run)?;
    // Recovery first: validation reads refs, and must read them as they are after recovery.
    let lock = lock::acquire(&repo.state_dir(), wait_duration(args.wait, &repo))?;
    recover_interrupted(&repo, &lock, args.quiet)?;
    trace::stage("lock+recover");
    let batch = validate::validate(file, &repo, identity)?;
    trace::stage("validate");
    out.id = Some(batch.id.clone());
    out.ref_count = batch.refs.len();
    if args.json {
        out.refs = ref_lines(&batch);
    }
    let checked = check::check(batch, repo.work_tree.as_deref(), repo.gix.object_hash())?;
    trace::stage("check");
    crash::pause("checked");
    let planned = stage::plan(checked, &repo.state_dir(), &repo.gix)?;
    trace::stage("plan");
    if args.dry_run {
        dry_run_refs(&repo, update_ref, &planned.checked)?;
        out.files = file_lines(&planned.checked);
        out.status = "would-apply";
        return Ok(());
    }
    let mut barrier = Barrier::new(repo.settings.fsync);
    let journaled = journal_batch(&repo, planned, &mut barrier)?;
    let writeback = Writeback::for_refs(repo.settings.fsync, journaled.record.refs.len(), &repo.common_dir);
    let (prepared, staged) = prepare_and_stage(&repo, update_ref, &journaled, &mut barrier)?;
    trace::stage("prepare-refs");
    crash::point("prepared");
    crash::pause("prepared");
    let committing = commit_point(&repo, &journaled, prepared, staged)?;
    trace::stage("commit-record");
    // git commits the refs while the files move; its answer is read once they have.
    let moved = move_files(&repo, &journaled, &mut barrier, args.quiet);
    let exiting_git = settle_refs(&repo, &journaled, committing)?;
    drop(writeback);
    trace::stage("commit-refs");
    finish(&repo, &journaled, moved, &mut barrier).map_err(|e| after_commit_point(e, &journaled))?;
    drop(exiting_git);
    trace::stage("finish");
    out.files = file_lines(&journaled.planned.checked);
    out.status = "applied";
    drop(lock);
    Ok(())
}

/// Reads the batch from a file or stdin; `origin` names it in parse errors.
fn read_batch(file: Option<&Path>) -> Result<(Vec<u8>, String)> {
    match file {
        Some(path) if path != Path::new("-") => {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::invalid(format!("cannot read '{}': {e}", path.display())))?;
            Ok((bytes, path.display().to_string()))
        }
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Error::invalid(format!("cannot read stdin: {e}")))?;
            Ok((bytes, "<stdin>".into()))
        }
    }
}

/// Writes the journal (creating the batch directory); on failure nothing is left behind.
fn journal_batch(repo: &Repo, planned: Planned, barrier: &mut Barrier) -> Result<Journaled> {
    let state_dir = repo.state_dir();
    let dir = planned.batch_dir.clone();
    let journaled = journal::write(planned, &repo.git_dir, barrier).inspect_err(|_| {
        let _ = recover::remove_batch_dir(&dir, &state_dir, false);
    })?;
    crash::point("journaled");
    trace::stage("journal");
    Ok(journaled)
}

/// Sends git the ref changes and `prepare`, writes the new contents while git takes its locks
/// (two processes, two cores), then reads git's answer. If either fails, git's transaction is
/// aborted and the batch rolled back: nothing outside `atomic/` changed.
fn prepare_and_stage(
    repo: &Repo,
    update_ref: Option<UpdateRefProcess>,
    journaled: &Journaled,
    barrier: &mut Barrier,
) -> Result<(Option<PreparedRefs>, ContentsStaged)> {
    let refs = &journaled.record.refs;
    let pid_file = journaled.planned.batch_dir.join(UPDATE_REF_PID_FILE);
    let preparing = start_prepare(repo, update_ref, refs, Some(&pid_file))
        .inspect_err(|e| roll_back(repo, journaled, e))?;
    let staged = stage::write_contents(&journaled.planned, &repo.gix, barrier);
    trace::stage("stage");
    if staged.is_ok() {
        crash::point("staged");
    }
    let prepared = preparing.map(|p| p.wait().map_err(|e| name_the_entry(e, refs))).transpose();
    let failure = match (prepared, staged) {
        (Ok(prepared), Ok(staged)) => return Ok((prepared, staged)),
        (Err(e), _) => e,
        (Ok(prepared), Err(e)) => {
            if let Some(prepared) = prepared {
                let _ = prepared.abort();
            }
            e
        }
    };
    roll_back(repo, journaled, &failure);
    Err(failure)
}

/// The reflog message of a dry run's (aborted) transaction.
const DRY_RUN_MESSAGE: &str = "git atomic apply --dry-run";

/// Starts git's update-ref now when the batch names refs, so that its start-up overlaps locking,
/// recovery, validation, staging and journaling; it takes no lock before `prepare`.
fn start_update_ref(
    repo: &Repo,
    file: &parse::BatchFile,
    identity: &Identity,
    dry_run: bool,
) -> Result<Option<UpdateRefProcess>> {
    if file.refs.is_empty() {
        return Ok(None);
    }
    let message = if dry_run { DRY_RUN_MESSAGE } else { &identity.message };
    refs::spawn(&repo.git, message, &identity.id).map(Some)
}

/// Sends git every ref change and `prepare` (`None` when the batch changes no ref through git);
/// `pid_file` is where git's pid goes for recovery, or nothing for a dry run.
fn start_prepare(
    repo: &Repo,
    update_ref: Option<UpdateRefProcess>,
    refs: &[journal::JournalRef],
    pid_file: Option<&Path>,
) -> Result<Option<Preparing>> {
    let Some(process) = update_ref.filter(|_| refs.iter().any(|r| r.via_git)) else {
        return Ok(None);
    };
    let zero = "0".repeat(repo.gix.object_hash().len_in_hex());
    let lines = refs.iter().map(|r| refs::command_lines(r, &zero));
    let locked = refs.iter().filter(|r| r.via_git).flat_map(|r| [r.name.as_str(), r.target.as_str()]);
    refs::start_prepare(process, &repo.ref_dirs(), lines, locked, pid_file)
        .map(Some)
        .map_err(|e| name_the_entry(e, refs))
}

/// Points a refusal from git (`cannot lock ref 'refs/heads/x': …`) at the batch entry it is about.
fn name_the_entry(e: Error, refs: &[journal::JournalRef]) -> Error {
    if e.entry.is_some() {
        return e;
    }
    let hit = refs.iter().find(|r| {
        e.message.contains(&format!("'{}'", r.target)) || e.message.contains(&format!("'{}'", r.name))
    });
    match hit {
        Some(r) => {
            let entry = format!("refs[{}] {}", r.entry, r.name);
            e.at(entry)
        }
        None => e,
    }
}

/// Rechecks the work tree, writes the commit record, and tells git to commit (`None` when the
/// batch changes no ref through git). From here on the batch can only go forward.
fn commit_point(
    repo: &Repo,
    journaled: &Journaled,
    prepared: Option<PreparedRefs>,
    _staged: ContentsStaged,
) -> Result<Option<Committing>> {
    let before = journaled.planned.checked.recheck().and_then(|_| {
        journal::append_commit_record(&journaled.path, &journaled.record.id, repo.settings.fsync)
    });
    if let Err(e) = before {
        if let Some(prepared) = prepared {
            let _ = prepared.abort();
        }
        roll_back(repo, journaled, &e);
        return Err(e);
    }
    crash::point("committed");
    Ok(prepared.map(PreparedRefs::start_commit))
}

/// git told to commit, or why it could not be told.
type Committing = std::result::Result<CommittingRefs, OutcomeUnknown>;

/// Reads git's answer to `commit`. What it returns is git still exiting, to be dropped last.
/// When git does not say `commit: ok`, nobody knows whether it renamed its locks: only
/// roll-forward can tell, and it finishes the batch.
fn settle_refs(
    repo: &Repo,
    journaled: &Journaled,
    committing: Option<Committing>,
) -> Result<Option<CommittedRefs>> {
    let Some(committing) = committing else {
        crash::point("refs-committed");
        return Ok(None);
    };
    match committing.and_then(CommittingRefs::wait) {
        Ok(committed) => {
            crash::point("refs-committed");
            Ok(Some(committed))
        }
        Err(unknown) => {
            let recovered = recover::recover_one(repo, &journaled.planned.batch_dir)?;
            if recovered.action != Action::RolledForward {
                return Err(Error::new(
                    Kind::Interrupted,
                    format!("git update-ref failed at commit: {}", unknown.0.trim()),
                )
                .hint("run 'git atomic status' to see what was applied"));
            }
            crash::point("refs-committed");
            Ok(None)
        }
    }
}

/// After the commit point: every file into place (while git commits the refs).
fn move_files(repo: &Repo, journaled: &Journaled, barrier: &mut Barrier, quiet: bool) -> Result<()> {
    let record = &journaled.record;
    if let Some(work_tree) = &record.work_tree {
        let dir = &journaled.planned.batch_dir;
        let mut mover = Mover::new(work_tree, dir, repo.gix.object_hash(), false);
        let mut progress = Progress::new("Moving files", record.puts.len() + record.removes.len(), quiet);
        for put in &record.puts {
            expect_done(mover.put(put, barrier)?)?;
            crash::point("file-moved");
            progress.tick();
        }
        for remove in &record.removes {
            expect_done(mover.remove(remove, barrier)?)?;
            crash::point("file-moved");
            progress.tick();
        }
    }
    crash::point("files-moved");
    trace::stage("move-files");
    Ok(())
}

/// Once refs and files are in place: one barrier for both, and the journal cleared.
fn finish(repo: &Repo, journaled: &Journaled, moved: Result<()>, barrier: &mut Barrier) -> Result<()> {
    let dir = &journaled.planned.batch_dir;
    if !dir.join(journal::JOURNAL_FILE).exists() {
        return Ok(()); // finished by the roll-forward of a failed commit, the moves included
    }
    moved?;
    make_refs_durable(repo, journaled, barrier);
    barrier.flush()?;
    crash::point("synced");
    recover::remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync)
}

fn expect_done(outcome: Outcome) -> Result<()> {
    match outcome {
        Outcome::Done => Ok(()),
        Outcome::Conflict(why) => Err(Error::new(Kind::Interrupted, why)),
    }
}

/// Adds what git wrote for the refs to the barrier (git syncs no ref by itself). Even one ref
/// means seven paths (ref file, reflog, their directories, packed-refs, git dirs), past the
/// barrier's syncfs threshold, and a reftable stack's new files have names we do not know: so
/// the file systems of the git dirs are synced whole.
fn make_refs_durable(repo: &Repo, journaled: &Journaled, barrier: &mut Barrier) {
    if journaled.record.refs.iter().any(|r| r.via_git) {
        barrier.add_file_system_of(&repo.common_dir);
        barrier.add_file_system_of(&repo.git_dir);
    }
}

/// A failure after the commit point: the batch is committed but unfinished; recovery finishes it.
fn after_commit_point(e: Error, journaled: &Journaled) -> Error {
    Error::new(
        Kind::Interrupted,
        format!("batch {} is committed but could not finish: {}", journaled.record.id, e.message),
    )
    .hint("run 'git atomic recover' to finish it")
}

/// Before the commit point: removes the staged files and the journal; nothing else changed.
/// When git died holding its locks, recovery removes the batch's own lock files too.
fn roll_back(repo: &Repo, journaled: &Journaled, error: &Error) {
    let dir = &journaled.planned.batch_dir;
    if error.hints.iter().any(|h| h == refs::KILLED_HINT) && recover::recover_one(repo, dir).is_ok() {
        return;
    }
    let _ = recover::remove_batch_dir(dir, &repo.state_dir(), repo.settings.fsync);
}

/// `--dry-run`: git checks every ref precondition under its locks, then aborts.
fn dry_run_refs(repo: &Repo, update_ref: Option<UpdateRefProcess>, checked: &Checked) -> Result<()> {
    let refs = &checked.batch.refs;
    match start_prepare(repo, update_ref, refs, None)? {
        Some(preparing) => preparing.wait().map_err(|e| name_the_entry(e, refs))?.abort(),
        None => Ok(()),
    }
}

fn show(value: &RefValue) -> Option<String> {
    match value {
        RefValue::Absent => None,
        RefValue::Id(id) => Some(id.to_string()),
        RefValue::Symbolic(target) => Some(format!("ref: {target}")),
    }
}

fn ref_lines(batch: &Batch) -> Vec<RefLine> {
    batch
        .refs
        .iter()
        .map(|r| RefLine { name: r.target.clone(), old: show(&r.old), new: show(&r.new) })
        .collect()
}

fn file_lines(checked: &Checked) -> Vec<FileLine> {
    checked
        .files_report
        .iter()
        .map(|f| FileLine {
            path: f.path.clone(),
            action: f.action,
            to: f.to.clone(),
            old: f.old.map(|id| id.to_string()),
            new: f.new.map(|id| id.to_string()),
        })
        .collect()
}
