//! Stage 6: the ref changes, through one `git update-ref --stdin` (git's locks, git's
//! compare-and-swap, git's reflogs, git's hooks). Mirrors git's own transaction states: a
//! [`PreparedRefs`] holds every lock with every old value checked and can only be committed or
//! aborted. If this process dies, git reads end of input and aborts, releasing the locks.

use crate::error::{Error, Result};
use crate::git::{Git, UpdateRefProcess};
use crate::record::{RefChange, RefVerb};
use crate::refstore::{RefDirs, RefValue};
use crate::state::BatchDir;
use std::path::{Path, PathBuf};

/// A ref transaction with every lock held and every old value checked by git.
#[must_use = "a prepared ref transaction holds git's ref locks until committed or aborted"]
pub struct PreparedRefs {
    process: UpdateRefProcess,
    created_dirs: Vec<PathBuf>,
}

/// A committed transaction whose git may still be exiting (it said `commit: ok`: every ref is in
/// place). It is reaped when dropped, so that its exit overlaps the file moves.
pub struct CommittedRefs {
    _exiting: UpdateRefProcess,
}

/// Why a commit did not report success: then nobody knows whether git renamed its locks.
#[derive(Debug)]
pub struct OutcomeUnknown(pub String);

/// The `update-ref --stdin` lines of one journaled change (nothing for a no-op).
pub fn command_lines(change: &RefChange, zero: &str) -> String {
    if !change.via_git {
        return String::new();
    }
    let name = &change.name;
    let id_or_zero = |v: &RefValue| v.id().map(|id| id.to_string()).unwrap_or_else(|| zero.to_string());
    match change.verb {
        RefVerb::Update | RefVerb::Create => {
            format!("update {name} {} {}\n", id_or_zero(&change.new), id_or_zero(&change.old))
        }
        RefVerb::Delete => format!("delete {name} {}\n", id_or_zero(&change.old)),
        RefVerb::Verify => format!("verify {name} {}\n", id_or_zero(&change.old)),
        RefVerb::Symref => {
            // Validation makes a symref's new value symbolic; a journal saying otherwise gets an
            // empty target, which git refuses, so nothing is written from it.
            let target = match &change.new {
                RefValue::Symbolic(target) => target.as_str(),
                _ => "",
            };
            let old = match &change.old {
                RefValue::Symbolic(t) => format!("ref {t}"),
                other => format!("oid {}", id_or_zero(other)),
            };
            format!("option no-deref\nsymref-update {name} {target} {old}\n")
        }
    }
}

/// Starts `git update-ref --stdin` for a batch, before the batch is ready: git's start-up then
/// overlaps validation and journaling. It takes no lock until [`start_prepare`] sends `prepare`,
/// and it exits without changing anything if dropped unused. Its trace2 events go to `trace`
/// (see [`BatchDir::update_ref_trace`]), a file that must not hold an earlier git's.
pub fn spawn(git: &Git, message: &str, id: &str, trace: Option<&Path>) -> Result<UpdateRefProcess> {
    UpdateRefProcess::spawn(git, message, id, trace)
}

/// [`spawn`] for a batch whose directory exists (recovery, two-phase commit): an earlier git's
/// trace goes first, so that its end is never read as this git's.
pub fn spawn_for(git: &Git, message: &str, id: &str, batch: &BatchDir) -> Result<UpdateRefProcess> {
    let trace = batch.update_ref_trace();
    match std::fs::remove_file(&trace) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::fatal(format!("cannot remove '{}': {e}", trace.display())));
        }
        _ => {}
    }
    UpdateRefProcess::spawn(git, message, id, Some(&trace))
}

/// Starts a transaction, queues every change and sends `prepare`, without waiting: git takes
/// its locks while the caller goes on, and [`Preparing::wait`] reads its answer (on success every
/// lock is held; on refusal nothing changed, and the empty directories git made for its locks
/// are removed). `pid_file`, when given, receives git's pid and the boot's id, so that recovery
/// can wait for an orphaned git and knows whether it ran in this boot. The lines are streamed
/// to git as they are made: a 100,000-ref batch never exists as one string.
pub fn start_prepare<'a>(
    mut process: UpdateRefProcess,
    dirs: &RefDirs,
    lines: impl Iterator<Item = String>,
    changed: impl Iterator<Item = &'a str>,
    pid_file: Option<&Path>,
) -> Result<Preparing> {
    let created_dirs = dirs.missing_parents(changed);
    if let Some(pid_file) = pid_file {
        // With the boot's id: after a reboot, no lock made since can be this git's (leftovers.rs).
        std::fs::write(pid_file, format!("{} {}", process.id(), crate::boot::id()))
            .map_err(|e| Error::fatal(format!("cannot write '{}': {e}", pid_file.display())))?;
    }
    // Without waiting for `start: ok`: git, often still starting up, finds the whole transaction
    // when it is ready, and [`Preparing::wait`] reads both answers.
    let start = std::iter::once("start\n".to_string());
    let sent = process.send(start.chain(lines)).and_then(|_| process.send_verb("prepare"));
    let preparing = Preparing { process, created_dirs };
    match sent {
        Ok(()) => Ok(preparing),
        Err(stderr) => Err(preparing.failed(&stderr)),
    }
}

/// A transaction told to prepare whose answer is not read yet: git takes its locks meanwhile.
/// Dropping it makes git abort (end of input) and waits for it.
#[must_use = "a preparing ref transaction must be waited for"]
pub struct Preparing {
    process: UpdateRefProcess,
    created_dirs: Vec<PathBuf>,
}

impl Preparing {
    /// Waits for git's `start: ok` and `prepare: ok`: then every lock is held and every old
    /// value checked.
    pub fn wait(mut self) -> Result<PreparedRefs> {
        match self.process.reply("start").and_then(|_| self.process.reply("prepare")) {
            Ok(()) => Ok(PreparedRefs { process: self.process, created_dirs: self.created_dirs }),
            Err(stderr) => Err(self.failed(&stderr)),
        }
    }

    /// What a failed exchange means: git killed (its locks stay, for recovery to remove) or
    /// git's refusal (nothing changed; the directories made for its locks are removed).
    fn failed(self, stderr: &str) -> Error {
        if stderr.starts_with(crate::git::KILLED_PREFIX) {
            let line = stderr.lines().next().unwrap_or_default().to_string();
            return Error::new(crate::error::Kind::Fatal, line).hint(KILLED_HINT);
        }
        drop(self.process);
        remove_empty(&self.created_dirs);
        refusal(stderr)
    }
}

/// A transaction told to commit whose answer is not read yet: git renames its lock files and
/// writes its reflogs while the work-tree files move. Dropping it waits for git to end.
#[must_use = "a committing ref transaction must be waited for to know whether it committed"]
pub struct CommittingRefs {
    process: UpdateRefProcess,
}

impl PreparedRefs {
    /// Commits: git renames its lock files into place. Call only after the commit record is durable.
    pub fn commit(self) -> std::result::Result<CommittedRefs, OutcomeUnknown> {
        self.start_commit()?.wait()
    }

    /// Tells git to commit and returns at once. Call only after the commit record is durable.
    pub fn start_commit(mut self) -> std::result::Result<CommittingRefs, OutcomeUnknown> {
        self.process.send_verb("commit").map_err(OutcomeUnknown)?;
        Ok(CommittingRefs { process: self.process })
    }

    /// Aborts: git releases every lock and changes nothing.
    pub fn abort(mut self) -> Result<()> {
        let result = self.process.call("abort");
        drop(self.process);
        remove_empty(&self.created_dirs);
        result.map_err(|e| Error::fatal(format!("git update-ref could not abort: {}", e.trim())))
    }
}

impl CommittingRefs {
    /// Waits for git's `commit: ok`: then every ref is in place, and git is left to exit.
    pub fn wait(mut self) -> std::result::Result<CommittedRefs, OutcomeUnknown> {
        self.process.reply("commit").map_err(OutcomeUnknown)?;
        self.process.close_input();
        Ok(CommittedRefs { _exiting: self.process })
    }
}

/// The hint of an update-ref that died holding locks; apply recognises it to recover instead.
pub const KILLED_HINT: &str = "git died holding its ref locks; they are cleaned up by recovery";

/// Turns git's complaint into our refusal (exit 1) or, when git itself broke, a fatal error.
fn refusal(stderr: &str) -> Error {
    // git's own `error:`/`fatal:` lines say what failed; the advice paragraphs after them are
    // for git's interactive users and would only bury the reason.
    let reasons: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("fatal: ").or_else(|| l.strip_prefix("error: ")))
        .map(|l| l.trim_start_matches("prepare: ").trim_end_matches('.'))
        .collect();
    let message = match reasons.is_empty() {
        true => stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no output").to_string(),
        false => reasons.join("; "),
    };
    let refused = [
        "cannot lock ref",
        "already exists",
        "File exists",
        "aborted by hook",
        "expected",
        "unable to resolve",
    ]
    .iter()
    .any(|needle| stderr.contains(needle));
    if refused {
        let hint = match stderr.contains("File exists") {
            true => "another git command holds the lock, or one crashed and left it; nothing was changed",
            false => "a ref changed under us; nothing was changed",
        };
        Error::refused(format!("git refused the ref changes: {message}")).hint(hint)
    } else {
        Error::fatal(format!("git update-ref failed: {message}"))
    }
}

/// Removes directories that are (still) empty, deepest first.
fn remove_empty(dirs: &[PathBuf]) {
    for dir in dirs {
        let _ = std::fs::remove_dir(dir);
    }
}
