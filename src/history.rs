//! The history log (SPEC §7): `atomic/log/<id>/` is a finished batch's own directory, renamed
//! there from `atomic/batches/<id>/` as the last step of finishing it. It keeps the journal (the
//! record: refs and files with old and new values), the old file of every put and removal (the
//! pre-images, moved there by files.rs instead of being unlinked or replaced), and `outcome`
//! (how it ended, when, and any edit that landed after the recheck). The rename is what makes an
//! entry visible, and it also takes the batch out of `batches/`: a crash before it leaves a batch
//! that recovery finishes (and then logs), a crash after it a logged batch with nothing to do.
//! Batches given up with `recover --abandon` are listed from `atomic/abandoned/`.

use crate::durable::{self, Barrier};
use crate::error::{Error, IoContext, Result};
use crate::journal::{self, Journal};
use crate::paths;
use crate::record::{FileState, JournalBlob, Mode, Record};
use crate::state::{BatchDir, StateDir};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How a logged batch ended, as `log` spells it.
pub const APPLIED: &str = "applied";
pub const ROLLED_FORWARD: &str = "rolled-forward";
pub const ROLLED_BACK: &str = "rolled-back";
pub const ABANDONED: &str = "abandoned";

/// The `outcome` file of a log entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutcomeFile {
    pub outcome: String,
    /// ISO 8601, UTC: when the batch finished.
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Old files that were not what the batch checked: an edit landed after the recheck.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Kept>,
}

/// An old file moved into the log that differs from the state the batch checked: its content
/// is kept (never lost) and reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kept {
    pub path: String,
    /// The blob the batch expected to replace or remove.
    pub expected: String,
    /// What was moved: a blob id, or null when the file had gone.
    pub found: Option<String>,
    /// Where its content is now (absolute).
    pub saved: Option<PathBuf>,
}

/// Whether a batch is logged: it keeps history and changed something (a batch of verifies, or of
/// no-ops, is not; refusals never reach here).
pub fn logs(record: &Record) -> bool {
    record.log.keep
        && (!record.puts.is_empty()
            || !record.removes.is_empty()
            || record.refs.iter().any(|r| r.old != r.new))
}

/// Where a put's or removal's old file is kept in an entry's directory, if anywhere. `p<n>` comes
/// first: it is made before the new file goes in (files.rs), and a crash after that but before
/// the staged name is removed (a copy across file systems) leaves the staged name holding the
/// new content.
pub fn pre_image_of_put(dir: &Path, staged: &str) -> Option<String> {
    let copied = BatchDir::copied_pre_image(staged);
    [copied, staged.to_string()].into_iter().find(|n| dir.join(n).symlink_metadata().is_ok())
}

/// Where removal `m`'s old file is kept, if anywhere.
pub fn pre_image_of_remove(dir: &Path, m: usize) -> Option<String> {
    let name = BatchDir::removed_pre_image(m);
    dir.join(&name).symlink_metadata().is_ok().then_some(name)
}

/// What `lstat` said of each touched path at the check (inode, size, mtime): an old file moved
/// into the log with the same identity is the one the batch checked, without reading it.
pub type Identities = HashMap<String, (u64, i64, (i64, i64))>;

/// Compares every pre-image of a finished batch (in `dir`, its batch directory) with the old
/// state the journal records; a pre-image whose identity is in `seen` (apply) is trusted, any
/// other is hashed (recovery). A differing one is reported where it will be once the entry is
/// published (`entry`).
pub fn check_pre_images(
    record: &Record,
    dir: &Path,
    entry: &Path,
    hash: gix::hash::Kind,
    seen: &Identities,
) -> Vec<Kept> {
    let mut kept = Vec::new();
    let mut check = |path: &str, name: Option<String>, expected: JournalBlob| {
        let found = name.as_ref().map(|n| dir.join(n));
        let same = found.as_ref().is_some_and(|f| {
            identity(f).is_some_and(|id| seen.get(path) == Some(&id)) || state_of(f, hash) == Some(expected)
        });
        if !same {
            let blob = found.as_ref().and_then(|f| state_of(f, hash)).map(|s| s.blob);
            kept.push(Kept {
                path: path.to_string(),
                expected: expected.blob.to_string(),
                found: blob.map(|b| b.to_string()),
                saved: name.map(|n| entry.join(n)),
            });
        }
    };
    for put in &record.puts {
        if let Some(old) = put.old {
            check(&put.path, pre_image_of_put(dir, &put.staged), old);
        }
    }
    for (m, remove) in record.removes.iter().enumerate() {
        check(&remove.path, pre_image_of_remove(dir, m), remove.old);
    }
    kept
}

/// The (inode, size, mtime) of a file, without following a symlink.
pub fn identity(path: &Path) -> Option<(u64, i64, (i64, i64))> {
    use std::os::unix::fs::MetadataExt;
    let m = path.symlink_metadata().ok()?;
    Some((m.ino(), m.size() as i64, (m.mtime(), m.mtime_nsec())))
}

/// The blob and mode a kept file holds, as git would record it.
pub fn state_of(path: &Path, hash: gix::hash::Kind) -> Option<JournalBlob> {
    match paths::inspect_leaf(path, hash).ok()? {
        paths::Found::File { blob, mode } => Some(JournalBlob { blob, mode }),
        _ => None,
    }
}

/// Writes `outcome` into a finished batch's directory (added to `barrier`, which the caller
/// flushes before [`publish`]).
pub fn write_outcome(
    batch: &BatchDir,
    outcome: &str,
    why: Option<String>,
    kept: Vec<Kept>,
    barrier: &mut Barrier,
) -> Result<()> {
    let file = OutcomeFile { outcome: outcome.to_string(), time: now_iso8601(), why, kept };
    let path = batch.outcome();
    let text =
        serde_json::to_vec(&file).map_err(|e| Error::fatal(format!("cannot encode the outcome: {e}")))?;
    std::fs::write(&path, text).io_context(|| format!("cannot write '{}'", path.display()))?;
    barrier.add(&path);
    barrier.add(batch.path());
    Ok(())
}

/// Makes a finished batch a log entry: renames `batches/<id>` to `log/<id>` (the step that makes
/// the entry visible and takes the batch out of recovery's way), then makes that durable.
pub fn publish(state: &StateDir, batch: &BatchDir, fsync: bool) -> Result<()> {
    let _ = std::fs::remove_file(batch.update_ref_pid());
    let _ = std::fs::remove_file(batch.update_ref_trace());
    let log = state.log();
    if !log.is_dir() {
        std::fs::create_dir_all(&log).io_context(|| format!("cannot create '{}'", log.display()))?;
        if fsync {
            durable::fsync_path(state.root())?;
        }
    }
    let to = state.log_entry(&batch.id());
    if to.path().exists() {
        let _ = std::fs::remove_dir_all(to.path()); // a stale copy of the same id: never expected
    }
    std::fs::rename(batch.path(), to.path())
        .io_context(|| format!("cannot move '{}' into the log", batch.path().display()))?;
    if fsync {
        durable::fsync_path(&log)?;
        // `batches/`, or `prepared/` for a committed two-phase batch.
        let from = batch.path().parent().map_or_else(|| state.batches(), Path::to_path_buf);
        durable::fsync_path(&from)?;
    }
    Ok(())
}

/// Removes the staged files of a batch rolled back (numbers; `stage/` of format 1): they hold
/// new contents that never reached the work tree.
pub fn remove_staged(batch: &BatchDir) {
    let _ = std::fs::remove_dir_all(batch.path().join(crate::state::V1_STAGE_DIR));
    if let Ok(entries) = std::fs::read_dir(batch.path()) {
        for e in entries.flatten() {
            let name = e.file_name();
            if name.to_str().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Keeps `atomic.logLimit` entries, removing the oldest (with their pre-images). One listing of
/// the log serves both steps; it is sorted only when entries go.
pub fn prune(state: &StateDir, limit: u64) -> Result<usize> {
    let (mut ids, mut hidden) = listing(&state.log())?;
    let excess = ids.len().saturating_sub(limit as usize);
    if excess > 0 {
        ids.sort();
    }
    for id in &ids[..excess] {
        // Renamed out of sight first: a crash while removing never leaves a torn entry listed.
        let name = format!(".pruned-{id}");
        std::fs::rename(state.log().join(id), state.log().join(&name))
            .io_context(|| format!("cannot prune '{id}'"))?;
        hidden.push(name);
    }
    for name in hidden {
        let _ = std::fs::remove_dir_all(state.log().join(name));
    }
    Ok(excess)
}

/// The names of the directories in `dir`, oldest first (batch ids sort by time).
fn entry_ids(dir: &Path) -> Result<Vec<String>> {
    let (mut ids, _) = listing(dir)?;
    ids.sort();
    Ok(ids)
}

/// The directories in `dir`, unsorted: entries, and those a prune hid (`.pruned-<id>`).
fn listing(dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::fatal(format!("cannot read '{}': {e}", dir.display()))),
    };
    let (mut ids, mut hidden) = (Vec::new(), Vec::new());
    let names = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok());
    for name in names {
        if name.starts_with(".pruned-") {
            hidden.push(name);
        } else if !name.starts_with('.') {
            ids.push(name);
        }
    }
    Ok((ids, hidden))
}

/// One log entry as read back.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub dir: PathBuf,
    pub outcome: OutcomeFile,
    /// `None` when the journal was torn (a batch rolled back before its journal was whole).
    pub record: Option<Record>,
}

impl Entry {
    /// Whether the batch's changes are in the repository (applied or finished by recovery).
    pub fn took_effect(&self) -> bool {
        self.outcome.outcome == APPLIED || self.outcome.outcome == ROLLED_FORWARD
    }

    /// The batch this one undoes, if it is an undo (or a redo: a redo undoes an undo).
    pub fn undoes(&self) -> Option<&str> {
        self.record.as_ref().and_then(|r| r.log.undoes.as_deref())
    }

    /// The batch this one re-applies, if it is a redo.
    pub fn redoes(&self) -> Option<&str> {
        self.record.as_ref().and_then(|r| r.log.redoes.as_deref())
    }

    /// The work tree (or, bare, the git dir) the batch was applied in.
    pub fn place(&self) -> Option<&Path> {
        let r = self.record.as_ref()?;
        Some(r.work_tree.as_deref().unwrap_or(&r.git_dir))
    }
}

/// Every log entry and abandoned batch, newest first.
pub fn list(state: &StateDir) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for id in entry_ids(&state.log())? {
        entries.push(read_entry(&state.log().join(&id), id, None));
    }
    for id in entry_ids(&state.abandoned())? {
        let dir = state.abandoned().join(&id);
        let time = dir.metadata().ok().and_then(|m| m.modified().ok()).map(iso8601).unwrap_or_default();
        let outcome = OutcomeFile {
            outcome: ABANDONED.into(),
            time,
            why: std::fs::read_to_string(dir.join("conflict")).ok().map(|w| w.trim_end().replace('\n', "; ")),
            kept: Vec::new(),
        };
        entries.push(read_entry(&dir, id, Some(outcome)));
    }
    entries.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(entries)
}

/// Reads one entry's directory; an unreadable `outcome` reads as rolled back, with why.
fn read_entry(dir: &Path, id: String, outcome: Option<OutcomeFile>) -> Entry {
    let record = match journal::read(&dir.join("journal")) {
        Ok(Journal::Intact { record, .. }) => Some(record),
        _ => None,
    };
    let outcome = outcome.unwrap_or_else(|| {
        std::fs::read(dir.join("outcome")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_else(
            || OutcomeFile {
                outcome: ROLLED_BACK.into(),
                time: String::new(),
                why: Some("the log entry's outcome is unreadable".into()),
                kept: Vec::new(),
            },
        )
    });
    Entry { id, dir: dir.to_path_buf(), outcome, record }
}

/// The file state a log entry records for a put's new or old value.
pub fn state(blob: Option<JournalBlob>) -> FileState {
    JournalBlob::state(blob)
}

/// The mode's git spelling.
pub fn mode_text(mode: Mode) -> &'static str {
    match mode {
        Mode::Regular => "100644",
        Mode::Executable => "100755",
        Mode::Symlink => "120000",
    }
}

/// Now, as ISO 8601 in UTC.
pub fn now_iso8601() -> String {
    iso8601(std::time::SystemTime::now())
}

/// A time as ISO 8601 in UTC (`2026-12-01T23:40:00Z`).
pub fn iso8601(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_pre_image_wins_over_a_staged_file_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("3"), "new").unwrap();
        assert_eq!(pre_image_of_put(dir.path(), "3").as_deref(), Some("3"));
        std::fs::write(dir.path().join("p3"), "old").unwrap();
        assert_eq!(pre_image_of_put(dir.path(), "3").as_deref(), Some("p3"));
        assert_eq!(pre_image_of_put(dir.path(), "4"), None);
    }

    #[test]
    fn iso8601_matches_known_dates() {
        let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        assert_eq!(iso8601(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(at(1_700_000_000)), "2023-11-14T22:13:20Z");
    }
}
