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
use crate::files::{self, Policy};
use crate::git::UpdateRefProcess;
use crate::history;
use crate::journal;
use crate::json::{self, ApplyResult, FileLine, RefLine};
use crate::leftovers;
use crate::lock;
use crate::lsp;
use crate::parse;
use crate::record::{LogInfo, RefChange};
use crate::recover::{self, Action};
use crate::refs::{self, CommittedRefs, CommittingRefs, OutcomeUnknown, PreparedRefs, Preparing};
use crate::refstore::RefValue;
use crate::repo::{Guess, Repo};
use crate::stage::{self, ContentsStaged, Journaled, Planned};
use crate::state::StateDir;
use crate::trace;
use crate::validate::{self, Batch, BatchLabel};
use std::io::Read;
use std::path::Path;

/// Runs `apply` and returns the exit status.
pub fn run(args: &ApplyArgs) -> i32 {
    if args.emit_batch {
        return emit_batch(args);
    }
    let mut result = ApplyResult::default();
    let mut lsp_changes = Vec::new();
    let outcome = apply(args, &mut result, &mut lsp_changes);
    if args.lsp {
        lsp_result(&mut result, outcome.as_ref().err(), &lsp_changes);
    }
    match outcome {
        Ok(()) => {
            if args.json {
                json::print(&result);
            } else if !args.batch.quiet {
                let id = result.id.as_deref().unwrap_or("");
                let verb = if args.dry_run { "would apply" } else { "applied" };
                println!("{verb} batch {id}: {} ref(s), {} file(s)", result.ref_count, result.files.len());
            }
            0
        }
        Err(e) => {
            result.status = e.kind.json_status();
            result.error = Some((&e).into());
            let more = std::mem::take(&mut result.more_errors);
            if !more.is_empty() || (args.dry_run && e.kind == Kind::Refused) {
                result.errors = std::iter::once(&e).chain(&more).map(Into::into).collect();
            }
            if args.json {
                json::print(&result);
            }
            let code = e.report();
            more.iter().for_each(Error::print);
            code
        }
    }
}

fn apply(args: &ApplyArgs, out: &mut ApplyResult, lsp_changes: &mut Vec<usize>) -> Result<()> {
    trace::stage("start");
    let early = if args.lsp { None } else { read_early(args) };
    let repo = Repo::discover()?;
    trace::stage("discover");
    if let Some(Early { file, started }) = early {
        let file = file?; // after discovery, so that "not a git repository" still comes first
        let started = started.filter(|(guess, ..)| repo.is_at(guess)).map(|(_, label, git)| (label, git));
        return apply_parsed(&repo, args, file, LogInfo::default(), out, started);
    }
    let (bytes, origin) = read_batch(args.file.as_deref())?;
    let file = if args.lsp {
        let converted = lsp_batch(&repo, &bytes, args)?;
        crash::pause("converted");
        *lsp_changes = converted.changes;
        if converted.file.files.is_empty() {
            out.status = if args.dry_run { "would-apply" } else { "applied" };
            return Ok(()); // an edit that changes nothing
        }
        converted.file
    } else {
        parse::parse(&bytes, &origin)?
    };
    drop(bytes);
    trace::stage("parse");
    apply_file(&repo, args, file, LogInfo::default(), out)
}

/// A batch file read and parsed before the repository is opened, and the update-ref started
/// for it meanwhile in the repository guessed from the current directory ([`Repo::guess`]).
struct Early {
    file: Result<parse::BatchFile>,
    started: Option<(Guess, BatchLabel, UpdateRefProcess)>,
}

/// Reads and parses a batch named by a regular file (stdin, a pipe or a terminal is read only
/// once in a repository, as before) before the repository is opened, and starts git's
/// update-ref for it when the repository can be guessed: git's start-up (about 1 ms) then
/// overlaps opening the repository, which it otherwise waited for. A wrong guess costs only
/// git's start: git takes no lock before `prepare`, and a process dropped unused is killed and
/// its trace removed.
fn read_early(args: &ApplyArgs) -> Option<Early> {
    let regular = |p: &&Path| *p != Path::new("-") && std::fs::metadata(p).is_ok_and(|m| m.is_file());
    let path = args.file.as_deref().filter(regular)?;
    let file = read_batch(Some(path)).and_then(|(bytes, origin)| parse::parse(&bytes, &origin));
    trace::stage("parse");
    let plain = |f: &&parse::BatchFile| f.repositories.is_empty() && !f.refs.is_empty() && !args.dry_run;
    let started = file.as_ref().ok().filter(plain).and_then(|f| start_guessed(f, args));
    Some(Early { file, started })
}

/// Starts the update-ref of a batch in the guessed repository (see [`start_update_ref`]).
fn start_guessed(file: &parse::BatchFile, args: &ApplyArgs) -> Option<(Guess, BatchLabel, UpdateRefProcess)> {
    let guess = Repo::guess()?;
    let label = BatchLabel::new(file, args.batch.message.clone());
    let state = StateDir::of(&guess.git_dir);
    std::fs::create_dir_all(state.root()).ok()?; // as taking the batch lock would
    let trace = state.batch(&label.id).update_ref_trace();
    let git = refs::spawn(&guess.git(), &label.message, &label.id, Some(&trace)).ok()?;
    trace::stage("start-git");
    Some((guess, label, git))
}

/// Applies a parsed batch: the whole pipeline after parsing, for `apply` and for `undo`/`redo`
/// (whose `links` name the batch they undo or redo).
pub fn apply_file(
    repo: &Repo,
    args: &ApplyArgs,
    file: parse::BatchFile,
    links: LogInfo,
    out: &mut ApplyResult,
) -> Result<()> {
    apply_parsed(repo, args, file, links, out, None)
}

/// [`apply_file`], with the batch's label and update-ref when they were started early.
fn apply_parsed(
    repo: &Repo,
    args: &ApplyArgs,
    file: parse::BatchFile,
    links: LogInfo,
    out: &mut ApplyResult,
    started: Option<(BatchLabel, UpdateRefProcess)>,
) -> Result<()> {
    let log = LogInfo { keep: repo.settings.history, renames: file.renames(), ..links };
    let (label, early_git) = match started {
        Some((label, git)) => (label, Some(git)),
        None => (BatchLabel::new(&file, args.batch.message.clone()), None),
    };
    if !file.repositories.is_empty() {
        return apply_across(args, repo, file, label, out);
    }
    // Recovery first: validation reads refs, and must read them as they are after recovery.
    let lock = lock::acquire(&repo.state_dir(), wait_duration(args.batch.wait, repo))?;
    let update_ref = match early_git {
        Some(git) => Some(git),
        None => start_update_ref(repo, &file, &label, args.dry_run)?,
    };
    recover_interrupted(repo, &lock, args.batch.quiet)?;
    trace::stage("lock+recover");
    let options = validate::Options { allow_source_outside: args.allow_source_outside };
    let (batch, ref_refusals) = validate::validate_with(file, repo, label, options)?;
    trace::stage("validate");
    out.id = Some(batch.id.clone());
    out.ref_count = batch.refs.len();
    if args.json {
        out.refs = ref_lines(&batch);
    }
    let checked = check_preconditions(batch, ref_refusals, repo, args.dry_run, out)?;
    crate::prepared::refuse_reserved(&repo.state_dir(), &checked)?;
    trace::stage("check");
    crash::pause("checked");
    let planned = stage::plan(checked, &repo.state_dir(), &repo.gix)?;
    trace::stage("plan");
    if args.dry_run {
        dry_run_refs(repo, update_ref, &planned.checked)?;
        out.files = file_lines(&planned.checked);
        out.status = "would-apply";
        return Ok(());
    }
    let mut barrier = Barrier::new(repo.settings.fsync);
    let journaled = journal_batch(repo, planned, log, &mut barrier)?;
    let writeback = Writeback::for_refs(repo.settings.fsync, journaled.record.refs.len(), &repo.common_dir);
    let (prepared, staged) = prepare_and_stage(repo, update_ref, &journaled, &mut barrier)?;
    trace::stage("prepare-refs");
    crash::point("prepared");
    crash::pause("prepared");
    let committing = commit_point(repo, &journaled, prepared, staged)?;
    trace::stage("commit-record");
    // git commits the refs while the files move; its answer is read once they have.
    let moved = move_files(repo, &journaled, &mut barrier, args.batch.quiet);
    let exiting_git = settle_refs(repo, &journaled, committing, args.batch.quiet)?;
    drop(writeback);
    trace::stage("commit-refs");
    let kept =
        finish(repo, &journaled, moved, &mut barrier).map_err(|e| after_commit_point(e, &journaled))?;
    drop(exiting_git);
    trace::stage("finish");
    report_kept(&kept, args.batch.quiet || args.json);
    out.kept = kept;
    out.files = file_lines(&journaled.planned.checked);
    out.status = "applied";
    drop(lock);
    Ok(())
}

/// Checks the file preconditions. A refusal ends the batch at the first failed precondition;
/// a dry run goes on and reports every one (refs first, then files), the others in `out`.
fn check_preconditions(
    batch: Batch,
    ref_refusals: Vec<Error>,
    repo: &Repo,
    dry_run: bool,
    out: &mut ApplyResult,
) -> Result<Checked> {
    let mut refusals = ref_refusals;
    if !dry_run && !refusals.is_empty() {
        return Err(refusals.swap_remove(0));
    }
    let (checked, file_refusals) =
        check::check_all(batch, repo.work_tree.as_deref(), repo.gix.object_hash())?;
    refusals.extend(file_refusals);
    let mut refusals = refusals.into_iter();
    match refusals.next() {
        Some(first) => {
            out.more_errors = refusals.collect();
            Err(first)
        }
        None => Ok(checked),
    }
}

/// `--lsp`: the batch an editor's workspace edit comes to, read against the work tree now.
/// Every file it edits expects the blob that was read, so a change made meanwhile refuses it.
fn lsp_batch(repo: &Repo, bytes: &[u8], args: &ApplyArgs) -> Result<lsp::Converted> {
    let work_tree = repo.require_work_tree()?;
    let encoding = args.position_encoding.as_deref().and_then(lsp::Encoding::from_name).unwrap_or_default();
    lsp::convert(bytes, work_tree, repo.gix.object_hash(), encoding)
}

/// `--lsp --emit-batch`: prints the batch (JSON) instead of applying it.
fn emit_batch(args: &ApplyArgs) -> i32 {
    let converted = Repo::discover().and_then(|repo| {
        let (bytes, _) = read_batch(args.file.as_deref())?;
        lsp_batch(&repo, &bytes, args)
    });
    match converted {
        Ok(mut converted) => {
            if let Some(message) = &args.batch.message {
                converted.file.message = Some(message.clone());
            }
            json::print(&lsp::batch_json(&converted.file));
            0
        }
        Err(e) => e.report(),
    }
}

/// LSP's `ApplyWorkspaceEditResult` fields of the `--json` result.
fn lsp_result(out: &mut ApplyResult, error: Option<&Error>, changes: &[usize]) {
    out.applied = Some(error.is_none());
    if let Some(e) = error {
        out.failure_reason = Some(e.to_string());
        out.failed_change = lsp::failed_change(e, Some(changes));
    }
}

/// A batch with `repositories:`: two-phase commit across them (xa.rs).
fn apply_across(
    args: &ApplyArgs,
    repo: &Repo,
    file: parse::BatchFile,
    label: BatchLabel,
    out: &mut ApplyResult,
) -> Result<()> {
    if args.dry_run {
        return Err(Error::invalid("--dry-run does not take a batch with 'repositories:'"));
    }
    out.id = Some(label.id.clone());
    let wait = wait_duration(args.batch.wait, repo);
    crate::xa::apply_across(repo, file, label, wait, args.batch.quiet, &mut out.repositories)?;
    out.ref_count = out.repositories.iter().map(|r| r.refs.len()).sum();
    out.status = "applied";
    Ok(())
}

/// Reads the batch from a file or stdin (at most the size limit); `origin` names it in errors.
pub fn read_batch(file: Option<&Path>) -> Result<(Vec<u8>, String)> {
    let limit = parse::limits::MAX_BATCH_BYTES;
    let (bytes, origin) = match file {
        Some(path) if path != Path::new("-") => {
            let cannot = |e: std::io::Error| {
                Error::invalid(format!("cannot read '{}': {}", path.display(), crate::error::io_words(&e)))
            };
            let mut bytes = Vec::new();
            let file = std::fs::File::open(path).map_err(cannot)?;
            parse::limits::check_batch_size(file.metadata().map_err(cannot)?.len())?;
            file.take(limit + 1).read_to_end(&mut bytes).map_err(cannot)?;
            (bytes, path.display().to_string())
        }
        _ => {
            use std::io::IsTerminal;
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                eprintln!("git atomic: reading the batch from standard input (end it with Ctrl-D)");
            }
            let mut bytes = Vec::new();
            stdin
                .lock()
                .take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::invalid(format!("cannot read stdin: {}", crate::error::io_words(&e))))?;
            (bytes, "<stdin>".to_string())
        }
    };
    parse::limits::check_batch_size(bytes.len() as u64)?;
    Ok((bytes, origin))
}

/// Writes the journal (creating the batch directory); on failure nothing is left behind.
fn journal_batch(repo: &Repo, planned: Planned, log: LogInfo, barrier: &mut Barrier) -> Result<Journaled> {
    let dir = planned.batch_dir.clone();
    let journaled = stage::journal(planned, &repo.git_dir, log, barrier).inspect_err(|_| {
        let _ = dir.remove(false);
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
    let pid_file = journaled.planned.batch_dir.update_ref_pid();
    let preparing = start_prepare(repo, update_ref, refs, Some(&pid_file))
        .inspect_err(|e| roll_back(repo, journaled, e))?;
    let staged = stage::write_contents(&journaled.planned, &repo.gix, barrier);
    trace::stage("stage");
    if staged.is_ok() {
        crash::point("staged");
    }
    let prepared = preparing.map(|p| p.wait().map_err(|e| name_the_entry(e, refs))).transpose();
    let failure = match (prepared, staged) {
        (Ok(None), Ok(staged)) => return Ok((None, staged)),
        // git holds every lock of the batch now: which lock files are ours, for recovery.
        (Ok(Some(prepared)), Ok(staged)) => match note_own_locks(repo, journaled) {
            Ok(()) => return Ok((Some(prepared), staged)),
            Err(e) => {
                let _ = prepared.abort();
                e
            }
        },
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

/// Notes which lock files are the batch's, once git holds them all (`prepare: ok`).
fn note_own_locks(repo: &Repo, journaled: &Journaled) -> Result<()> {
    let refs = journaled.record.refs.iter().filter(|r| r.via_git);
    leftovers::note_own_locks(repo, refs, &journaled.planned.batch_dir)
}

/// The reflog message of a dry run's (aborted) transaction.
const DRY_RUN_MESSAGE: &str = "git atomic apply --dry-run";

/// Starts git's update-ref now when the batch names refs, so that its start-up overlaps
/// recovery, validation, staging and journaling; it takes no lock before `prepare`.
fn start_update_ref(
    repo: &Repo,
    file: &parse::BatchFile,
    label: &BatchLabel,
    dry_run: bool,
) -> Result<Option<UpdateRefProcess>> {
    if file.refs.is_empty() {
        return Ok(None);
    }
    if dry_run {
        return refs::spawn(&repo.git, DRY_RUN_MESSAGE, &label.id, None).map(Some);
    }
    // `atomic/` exists: the batch lock is taken (see `BatchDir::update_ref_trace`).
    let trace = repo.state_dir().batch(&label.id).update_ref_trace();
    refs::spawn(&repo.git, &label.message, &label.id, Some(&trace)).map(Some)
}

/// Sends git every ref change and `prepare` (`None` when the batch changes no ref through git);
/// `pid_file` is where git's pid goes for recovery, or nothing for a dry run.
fn start_prepare(
    repo: &Repo,
    update_ref: Option<UpdateRefProcess>,
    refs: &[RefChange],
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
fn name_the_entry(e: Error, refs: &[RefChange]) -> Error {
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
        let path = journaled.planned.batch_dir.journal();
        journal::append_commit_record(&path, &journaled.record.id, repo.settings.fsync)
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
    quiet: bool,
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
            let recovered = recover::recover_one(repo, &journaled.planned.batch_dir, quiet)?;
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
    let dir = journaled.planned.batch_dir.path();
    let hash = repo.gix.object_hash();
    files::move_all(&journaled.record, dir, hash, Policy::apply(quiet), barrier)?;
    crash::point("files-moved");
    trace::stage("move-files");
    Ok(())
}

/// Once refs and files are in place: one barrier for both (with the history entry's `outcome`),
/// then the batch directory becomes a log entry (history.rs), or is removed without history.
/// Returns the old files that were not what the batch checked (kept in the log).
fn finish(
    repo: &Repo,
    journaled: &Journaled,
    moved: Result<()>,
    barrier: &mut Barrier,
) -> Result<Vec<history::Kept>> {
    let dir = &journaled.planned.batch_dir;
    if !dir.journal().exists() {
        return Ok(Vec::new()); // finished by the roll-forward of a failed commit, the moves included
    }
    moved?;
    let record = &journaled.record;
    let mut kept = Vec::new();
    let logged = history::logs(record);
    if logged {
        let seen = journaled.planned.checked.identities();
        let entry = repo.state_dir().log_entry(&record.id);
        kept = history::check_pre_images(record, dir.path(), entry.path(), repo.gix.object_hash(), &seen);
        history::write_outcome(dir, history::APPLIED, None, kept.clone(), barrier)?;
    }
    make_refs_durable(repo, journaled, barrier);
    barrier.flush()?;
    crash::point("synced");
    if !logged {
        dir.remove(repo.settings.fsync)?;
        crash::point("logged");
        return Ok(kept);
    }
    history::publish(&repo.state_dir(), dir, repo.settings.fsync)?;
    crash::point("logged");
    history::prune(&repo.state_dir(), repo.settings.log_limit)?;
    Ok(kept)
}

/// Warns of each old file that an edit changed after the recheck: its content is in the log.
fn report_kept(kept: &[history::Kept], quiet: bool) {
    if quiet {
        return;
    }
    for k in kept {
        let saved = k
            .saved
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "nowhere: it had gone".into());
        eprintln!(
            "warning: '{}' changed after the batch checked it; what it held is kept in the log ({saved})",
            k.path
        );
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
    // Not committed: recovery rolls back, and has no file to move.
    if error.hints.iter().any(|h| h == refs::KILLED_HINT) && recover::recover_one(repo, dir, true).is_ok() {
        return;
    }
    let _ = dir.remove(repo.settings.fsync);
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
