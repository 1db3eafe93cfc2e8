//! The coordinator of a cross-repository batch (SPEC §9): `apply` of a batch with
//! `repositories:` prepares its own part and every listed repository's under one XID, writes the
//! decision (the coordinator's outcome for that XID) durably, then commits every part. Presumed
//! abort: a participant whose coordinator holds no decision and is not running (its batch lock
//! is free) aborts on recovery; one whose coordinator decided commit commits.
//!
//! The coordinator holds its own batch lock from the first prepare to the last commit: that lock
//! is what participants test to tell a live coordinator from a dead one, without ever waiting
//! on it (no deadlock: only the coordinator waits, for the participants' locks).

use crate::crash;
use crate::error::{Error, Kind, Result};
use crate::json::{FileLine, RefLine, RepositoryLine};
use crate::lock::{self, BatchLock};
use crate::parse::BatchFile;
use crate::prepared::{self, Outcome};
use crate::record::Record;
use crate::refstore::RefValue;
use crate::repo::Repo;
use crate::twophase::{self, recover_interrupted};
use crate::validate::BatchLabel;
use std::time::Duration;

/// One repository of the batch: where, opened, its lock (`None` for the coordinator's, held by
/// the caller) and its part.
struct Part {
    path: String,
    repo: Repo,
    lock: Option<BatchLock>,
    file: BatchFile,
}

/// Applies a batch with `repositories:` by two-phase commit; fills `out.repositories`.
pub fn apply_across(
    coordinator: &Repo,
    mut file: BatchFile,
    label: BatchLabel,
    wait: Duration,
    quiet: bool,
    out: &mut Vec<RepositoryLine>,
) -> Result<String> {
    let xid = format!("apply-{}", label.id);
    let lock = lock::acquire(&coordinator.state_dir(), wait)?;
    recover_interrupted(coordinator, &lock, quiet)?;
    let mut parts = Vec::new();
    let top = coordinator.work_tree.clone().unwrap_or_else(|| coordinator.git_dir.clone());
    for (i, entry) in std::mem::take(&mut file.repositories).into_iter().enumerate() {
        let at = |e: Error| within(e, i, &entry.path);
        let repo = Repo::open_at(&top.join(&entry.path)).map_err(at)?;
        if repo.common_dir == coordinator.common_dir
            || parts.iter().any(|p: &Part| p.repo.common_dir == repo.common_dir)
        {
            return Err(at(Error::invalid("names a repository the batch already changes")));
        }
        let part = BatchFile {
            message: file.message.clone(),
            refs: entry.refs,
            files: entry.files,
            repositories: vec![],
            seen: Default::default(),
        };
        parts.push(Part { path: entry.path, repo, lock: None, file: part });
    }
    let own = BatchFile { repositories: vec![], ..file };
    let result = prepare_all(coordinator, &lock, own, &mut parts, &label, &xid, wait, quiet, out);
    // The parts prepared are those reported, in order.
    let everyone =
        std::iter::once((".", coordinator)).chain(parts.iter().map(|p| (p.path.as_str(), &p.repo)));
    let prepared: Vec<(&str, &Repo)> =
        everyone.filter(|(path, _)| out.iter().any(|l| l.path == *path)).collect();
    if let Err(e) = result {
        for (_, repo) in &prepared {
            let _ = twophase::abort(repo, &xid, Vec::new());
        }
        return Err(e);
    }
    // The decision: once durable, every part commits, whatever crashes.
    prepared::record_outcome(
        &coordinator.state_dir(),
        &xid,
        Outcome::Committed,
        &label.id,
        coordinator.settings.fsync,
    )?;
    crash::point("xa-decided");
    let mut failed = Vec::new();
    for (path, repo) in &prepared {
        if let Err(e) = twophase::commit(repo, &xid, Vec::new()) {
            failed.push(format!("{path}: {}", e.message));
        }
        crash::point("xa-part-committed");
    }
    drop(prepared);
    drop(parts);
    drop(lock);
    if !failed.is_empty() {
        return Err(Error::new(
            Kind::Interrupted,
            format!("batch {xid} is committed but could not finish in: {}", failed.join("; ")),
        )
        .hint("'git atomic recover' in each repository named finishes it"));
    }
    Ok(label.id)
}

/// Phase one: the coordinator's part (when it has entries), then each repository's, each under
/// its own lock (kept until the end). Stops at the first refusal.
#[allow(clippy::too_many_arguments)]
fn prepare_all(
    coordinator: &Repo,
    _lock: &BatchLock,
    own: BatchFile,
    parts: &mut [Part],
    label: &BatchLabel,
    xid: &str,
    wait: Duration,
    quiet: bool,
    out: &mut Vec<RepositoryLine>,
) -> Result<()> {
    let decider = Some(coordinator.common_dir.clone());
    if !own.refs.is_empty() || !own.files.is_empty() {
        let record = twophase::prepare(coordinator, own, sub_label(label, 0), xid, decider.clone())?;
        out.push(line(".", &record));
    }
    for (i, part) in parts.iter_mut().enumerate() {
        let at = |e: Error| within(e, i, &part.path);
        if part.file.refs.is_empty() && part.file.files.is_empty() {
            continue;
        }
        let lock = lock::acquire(&part.repo.state_dir(), wait).map_err(at)?;
        recover_interrupted(&part.repo, &lock, quiet).map_err(at)?;
        part.lock = Some(lock);
        let file = std::mem::take(&mut part.file);
        let record =
            twophase::prepare(&part.repo, file, sub_label(label, i + 1), xid, decider.clone()).map_err(at)?;
        out.push(line(&part.path, &record));
        crash::point("xa-part-prepared");
    }
    Ok(())
}

/// Names the repository an error is about, before the entry it names in that repository.
fn within(e: Error, i: usize, path: &str) -> Error {
    let entry = match &e.entry {
        Some(inner) => format!("repositories[{i}] {path}: {inner}"),
        None => format!("repositories[{i}] {path}"),
    };
    e.at(entry)
}

/// Each part's batch id: the coordinator's with the part's number; the same reflog message.
fn sub_label(label: &BatchLabel, n: usize) -> BatchLabel {
    BatchLabel { id: format!("{}-{n}", label.id), message: label.message.clone() }
}

/// What `--json` reports of one repository's part.
fn line(path: &str, record: &Record) -> RepositoryLine {
    let show = |v: &RefValue| match v {
        RefValue::Absent => None,
        RefValue::Id(id) => Some(id.to_string()),
        RefValue::Symbolic(t) => Some(format!("ref: {t}")),
    };
    let refs =
        record.refs.iter().map(|r| RefLine { name: r.target.clone(), old: show(&r.old), new: show(&r.new) });
    let puts = record.puts.iter().map(|p| FileLine {
        path: p.path.clone(),
        action: "write",
        to: None,
        old: p.old.map(|b| b.blob.to_string()),
        new: Some(p.new.blob.to_string()),
    });
    let removes = record.removes.iter().map(|r| FileLine {
        path: r.path.clone(),
        action: "delete",
        to: None,
        old: Some(r.old.blob.to_string()),
        new: None,
    });
    RepositoryLine { path: path.to_string(), refs: refs.collect(), files: puts.chain(removes).collect() }
}
