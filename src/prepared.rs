//! The prepared state of two-phase commit (SPEC §9), on disk: a prepared batch is a batch
//! directory moved from `atomic/batches/` to `atomic/prepared/` (so recovery never decides it),
//! with an `xa` record naming its XID; how it ended is kept in `atomic/outcomes/xid-<xid>`, so
//! that `commit` and `abort` are idempotent. git's own `update-ref prepare` dies with its
//! process, so a prepared batch holds no git lock: it reserves its refs and paths itself, and
//! this module is what other batches and the hook read to honour the reservation.

use crate::check::Checked;
use crate::durable::Barrier;
use crate::error::{Error, IoContext, Result};
use crate::journal::{self, Journal};
use crate::lock;
use crate::record::{Record, RefChange};
use crate::repo::Repo;
use crate::state::{BatchDir, StateDir};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The `xa` file of a prepared batch: what XA calls the prepared record, beside the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Xa {
    pub xid: String,
    /// Seconds since the Unix epoch when the batch was prepared.
    pub since: u64,
    /// For a batch prepared by a cross-repository `apply`: the coordinator's common dir, whose
    /// outcome for the same XID is the decision (none, with no live coordinator: abort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<PathBuf>,
}

/// How a two-phase batch ended, as `atomic/outcomes/xid-<xid>` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    Aborted,
}

impl Outcome {
    /// The word the outcome file and the messages use.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Committed => "committed",
            Outcome::Aborted => "aborted",
        }
    }
}

/// Checks an XID: 1–128 bytes of `[A-Za-z0-9._:-]` (exit 2 otherwise).
pub fn validate_xid(xid: &str) -> Result<()> {
    let ok = (1..=128).contains(&xid.len())
        && xid.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        return Ok(());
    }
    Err(Error::invalid(format!("invalid XID '{xid}'"))
        .hint("an XID is 1 to 128 characters of [A-Za-z0-9._:-]"))
}

/// Reads the `xa` record of a prepared batch directory (`None` when missing or unreadable).
pub fn read_xa(dir: &BatchDir) -> Option<Xa> {
    let bytes = std::fs::read(dir.xa()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The prepared batch with XID `xid`, if there is one.
pub fn find(state_dir: &StateDir, xid: &str) -> Result<Option<(BatchDir, Xa)>> {
    for dir in state_dir.prepared_dirs()? {
        if let Some(xa) = read_xa(&dir).filter(|xa| xa.xid == xid) {
            return Ok(Some((dir, xa)));
        }
    }
    Ok(None)
}

/// Every prepared batch with its `xa` record and its journal's record (when intact).
pub fn all(state_dir: &StateDir) -> Result<Vec<(BatchDir, Xa, Option<Record>)>> {
    let mut found = Vec::new();
    for dir in state_dir.prepared_dirs()? {
        let Some(xa) = read_xa(&dir) else { continue };
        let record = match journal::read(&dir.journal())? {
            Journal::Intact { record, .. } => Some(record),
            Journal::Torn => None,
        };
        found.push((dir, xa, record));
    }
    Ok(found)
}

/// How XID `xid` ended, if it did.
pub fn outcome(state_dir: &StateDir, xid: &str) -> Option<(Outcome, String)> {
    let text = std::fs::read_to_string(state_dir.outcome(xid)).ok()?;
    let (word, id) = text.trim_end().split_once(' ')?;
    let outcome = match word {
        "committed" => Outcome::Committed,
        "aborted" => Outcome::Aborted,
        _ => return None,
    };
    Some((outcome, id.to_string()))
}

/// Records durably how XID `xid` ended.
pub fn record_outcome(
    state_dir: &StateDir,
    xid: &str,
    outcome: Outcome,
    id: &str,
    fsync: bool,
) -> Result<()> {
    let mut barrier = Barrier::new(fsync);
    write_outcome(state_dir, xid, outcome, id, &mut barrier)?;
    barrier.flush()
}

/// Writes how XID `xid` ended (a temp file renamed into place, so never half written) and adds
/// it to `barrier`, which the caller flushes before anything depends on it (the barrier syncs
/// the file before its directory; an outcome torn by a power cut before that reads as none).
pub fn write_outcome(
    state_dir: &StateDir,
    xid: &str,
    outcome: Outcome,
    id: &str,
    barrier: &mut Barrier,
) -> Result<()> {
    let dir = state_dir.outcomes();
    if !dir.is_dir() {
        std::fs::create_dir_all(&dir).io_context(|| format!("cannot create '{}'", dir.display()))?;
        barrier.add(state_dir.root());
    }
    let temp = dir.join(format!(".tmp-{xid}"));
    let path = state_dir.outcome(xid);
    std::fs::write(&temp, format!("{} {id}\n", outcome.word()))
        .io_context(|| format!("cannot write '{}'", temp.display()))?;
    std::fs::rename(&temp, &path).io_context(|| format!("cannot write '{}'", path.display()))?;
    barrier.add(&path);
    barrier.add(&dir);
    Ok(())
}

/// Writes the `xa` record into a batch directory that is not prepared yet; the barrier that
/// makes the journal durable (barrier 1) makes it durable too.
pub fn write_xa(
    batch: &BatchDir,
    xid: &str,
    coordinator: Option<PathBuf>,
    barrier: &mut Barrier,
) -> Result<()> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let xa =
        serde_json::to_vec(&Xa { xid: xid.to_string(), since, coordinator }).expect("an xa record encodes");
    std::fs::write(batch.xa(), xa).io_context(|| format!("cannot write '{}'", batch.xa().display()))?;
    barrier.add(batch.xa());
    Ok(())
}

/// The end of `prepare`: moves the journaled and staged batch directory, with its durable `xa`
/// record, to `atomic/prepared/` (the rename is prepare's commit point: a crash before it leaves
/// an interrupted batch that recovery rolls back), and makes the move durable.
pub fn mark_prepared(state_dir: &StateDir, batch: &BatchDir, fsync: bool) -> Result<BatchDir> {
    let prepared_root = state_dir.prepared();
    let mut barrier = Barrier::new(fsync);
    if !prepared_root.is_dir() {
        std::fs::create_dir_all(&prepared_root)
            .io_context(|| format!("cannot create '{}'", prepared_root.display()))?;
        barrier.add(state_dir.root());
    }
    let to = state_dir.prepared_batch(&batch.id());
    std::fs::rename(batch.path(), to.path())
        .io_context(|| format!("cannot move '{}'", batch.path().display()))?;
    barrier.add(&prepared_root);
    barrier.add(state_dir.batches());
    barrier.flush()?;
    Ok(to)
}

/// Refuses (1, naming the XID) a batch that touches a ref or a path a prepared batch reserves:
/// the same ref, the same path, or a path that is a parent directory of the other.
pub fn refuse_reserved(state_dir: &StateDir, checked: &Checked) -> Result<()> {
    let prepared = all(state_dir)?;
    if prepared.is_empty() {
        return Ok(());
    }
    let paths: Vec<&str> = checked
        .puts
        .iter()
        .map(|p| p.path.as_str())
        .chain(checked.removes.iter().map(|r| r.path.as_str()))
        .collect();
    for (_, xa, record) in &prepared {
        let Some(record) = record else { continue };
        let held = reserved_refs(record);
        if let Some(r) =
            checked.batch.refs.iter().find(|r| held.contains(&r.target) || held.contains(&r.name))
        {
            return Err(
                reserved(&xa.xid, &format!("ref '{}'", r.target)).at(format!("refs[{}] {}", r.entry, r.name))
            );
        }
        let theirs = record.puts.iter().map(|p| &p.path).chain(record.removes.iter().map(|r| &r.path));
        for their in theirs {
            if let Some(mine) = paths.iter().find(|p| overlaps(p, their)) {
                return Err(reserved(&xa.xid, &format!("path '{mine}'")));
            }
        }
    }
    Ok(())
}

/// The refs a prepared record reserves: every name as written and as resolved.
fn reserved_refs(record: &Record) -> BTreeSet<String> {
    record.refs.iter().flat_map(|r: &RefChange| [r.name.clone(), r.target.clone()]).collect()
}

/// Whether two work-tree paths are the same or one holds the other.
fn overlaps(a: &str, b: &str) -> bool {
    let inside =
        |outer: &str, inner: &str| inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'));
    a == b || inside(a, b) || inside(b, a)
}

fn reserved(xid: &str, what: &str) -> Error {
    Error::refused(format!("{what} is reserved by prepared batch {xid}"))
        .hint(format!("finish it first: 'git atomic commit --xid {xid}' or 'git atomic abort --xid {xid}'"))
}

/// The first ref in `touched` that a prepared batch reserves, with that batch's XID: for the
/// hook, which refuses plain git's change to it. Per-worktree refs (`HEAD`) count only in the
/// worktree the batch was prepared in.
pub fn touching(
    state_dir: &StateDir,
    git_dir: &Path,
    touched: &BTreeSet<String>,
) -> Result<Option<(String, String)>> {
    for (_, xa, record) in all(state_dir)? {
        let Some(record) = record else { continue };
        if let Some(name) = record.ref_touched(git_dir, touched) {
            return Ok(Some((xa.xid, name.clone())));
        }
    }
    Ok(None)
}

/// Saves what is at `path` in the work tree now (a file another program wrote while batch `id`
/// was prepared) under `atomic/displaced/<id>/`, before commit overwrites or removes it, and
/// returns where it went. The one place a displaced file is kept: the history log can take it
/// over. A symlink is saved as a symlink.
pub fn save_displaced(
    state_dir: &StateDir,
    id: &str,
    work_tree: &Path,
    path: &str,
    barrier: &mut Barrier,
) -> Result<PathBuf> {
    let from = crate::paths::on_disk(work_tree, path);
    let to = state_dir.displaced(id).join(path);
    let parent = to.parent().expect("a displaced path has a parent");
    std::fs::create_dir_all(parent).io_context(|| format!("cannot create '{}'", parent.display()))?;
    let _ = std::fs::remove_file(&to); // a commit interrupted before its commit point saved it already
    let meta = std::fs::symlink_metadata(&from).io_context(|| format!("cannot read '{}'", from.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&from).io_context(|| format!("cannot read '{}'", from.display()))?;
        std::os::unix::fs::symlink(target, &to).io_context(|| format!("cannot save '{}'", to.display()))?;
    } else {
        std::fs::copy(&from, &to)
            .io_context(|| format!("cannot save '{}' to '{}'", from.display(), to.display()))?;
    }
    barrier.add(&to);
    for dir in to.ancestors().skip(1).take_while(|d| d.starts_with(state_dir.root())) {
        barrier.add(dir);
    }
    Ok(to)
}

/// The decision for a participant's prepared batch, when it can be known now: the coordinator's
/// outcome for the XID, or abort when there is none and the coordinator is not running (presumed
/// abort). `None`: not coordinated, or the coordinator is running (or unreachable): wait.
pub fn decision(repo: &Repo, xa: &Xa) -> Option<Outcome> {
    let coordinator = xa.coordinator.as_ref()?;
    if coordinator == &repo.common_dir {
        // Our own lock is held by the caller: no coordinator of ours is running.
        return Some(outcome(&repo.state_dir(), &xa.xid).map_or(Outcome::Aborted, |(o, _)| o));
    }
    if !coordinator.is_dir() {
        return None; // unreachable (unmounted, moved): deciding could break atomicity
    }
    let state_dir = StateDir::of(coordinator);
    let _held = lock::try_acquire(&state_dir).ok()??;
    Some(outcome(&state_dir, &xa.xid).map_or(Outcome::Aborted, |(o, _)| o))
}

/// Whether a participant's coordinator is gone (not running): then recovery can decide.
pub fn coordinator_gone(xa: &Xa) -> bool {
    let Some(coordinator) = &xa.coordinator else { return false };
    coordinator.is_dir() && lock::is_held(&StateDir::of(coordinator)).is_ok_and(|held| !held)
}
