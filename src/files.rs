//! Stage 7: moves the staged files into the work tree and removes deleted ones, after the
//! commit point, for apply and recovery alike ([`move_all`]). Every operation accepts "already
//! done", because roll-forward repeats them after a crash: a put is done when the staged file is
//! gone and the path holds the new content, a removal when the path is absent.

use crate::crash;
use crate::durable::Barrier;
use crate::error::{Error, IoContext, Kind, Result};
use crate::paths::{self, Found};
use crate::progress::Progress;
use crate::record::{FileState, JournalBlob, JournalPut, JournalRemove, Record};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a file operation found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The path holds neither the old nor the new state: someone else changed it.
    Conflict(String),
}

/// How [`move_all`] goes: apply moving a batch's files for the first time, or recovery repeating
/// the moves of a batch whose process died.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Compare each path with the journal before touching it, and take a difference as a
    /// conflict. Recovery does: anyone may have changed the work tree since the crash. Apply
    /// need not: it rechecked every path with git's locks held, just before the commit point.
    pub verify: bool,
    /// Stop at the first conflict, as an error (apply), rather than move everything else and
    /// return every conflict (recovery, which leaves the batch for a person).
    pub stop_at_conflict: bool,
    /// Show a progress line on a terminal (not under `--quiet`).
    pub progress: bool,
    /// The crash point passed after each file, for the crash tests.
    pub crash_point: &'static str,
}

impl Policy {
    /// Apply's moves, right after the commit point.
    pub fn apply(quiet: bool) -> Self {
        Policy { verify: false, stop_at_conflict: true, progress: !quiet, crash_point: "file-moved" }
    }

    /// Recovery's roll-forward, after a crash at any point of apply's moves (or of its own).
    pub fn recovery(quiet: bool) -> Self {
        Policy { verify: true, stop_at_conflict: false, progress: !quiet, crash_point: "recover-file" }
    }
}

/// Moves every file of a committed batch into place and returns the conflicts (always none when
/// `policy.stop_at_conflict`: the first one is then the error). Puts run before removals, so that
/// a directory the batch both empties and refills is never removed in between. The barrier gets
/// every directory whose entries changed; it is flushed by the caller, together with the refs.
pub fn move_all(
    record: &Record,
    batch_dir: &Path,
    hash: gix::hash::Kind,
    policy: Policy,
    barrier: &mut Barrier,
) -> Result<Vec<String>> {
    let Some(work_tree) = &record.work_tree else {
        return Ok(Vec::new());
    };
    let mut mover = Mover::new(work_tree, batch_dir, hash, policy.verify);
    let total = record.puts.len() + record.removes.len();
    let mut progress = Progress::new("Moving files", total, !policy.progress);
    let mut conflicts = Vec::new();
    let puts = record.puts.iter().map(Step::Put);
    for step in puts.chain(record.removes.iter().map(Step::Remove)) {
        let outcome = match step {
            Step::Put(put) => mover.put(put, barrier)?,
            Step::Remove(remove) => mover.remove(remove, barrier)?,
        };
        if let Outcome::Conflict(why) = outcome {
            if policy.stop_at_conflict {
                return Err(Error::new(Kind::Interrupted, why));
            }
            conflicts.push(why);
        }
        crash::point(policy.crash_point);
        progress.tick();
    }
    if policy.verify {
        // Recovery finishes moves that a dead process began: a put it finds done (staged file
        // gone, new content in place) or a removal it finds done adds nothing to this barrier, yet
        // that process's renames and unlinks may not be durable (its barrier 3 never ran). Their
        // directories are not known any more, so the work tree's whole file system is synced.
        barrier.add_file_system_of(work_tree);
    }
    Ok(conflicts)
}

/// One file operation of a batch, in the order [`move_all`] runs them.
enum Step<'r> {
    Put(&'r JournalPut),
    Remove(&'r JournalRemove),
}

/// Moves files in one work tree, checking each directory on the way once.
pub struct Mover<'a> {
    pub work_tree: &'a Path,
    pub batch_dir: PathBuf,
    pub hash: gix::hash::Kind,
    /// Recovery compares every path with the journal; a fresh apply already rechecked them.
    pub verify: bool,
    checked_dirs: HashSet<PathBuf>,
}

impl<'a> Mover<'a> {
    /// A mover for the batch whose staged files are in `batch_dir`.
    pub fn new(work_tree: &'a Path, batch_dir: &Path, hash: gix::hash::Kind, verify: bool) -> Self {
        Mover { work_tree, batch_dir: batch_dir.to_path_buf(), hash, verify, checked_dirs: HashSet::new() }
    }

    /// Puts a staged file into place (rename; a copy when the stage is on another file system).
    pub fn put(&mut self, put: &JournalPut, barrier: &mut Barrier) -> Result<Outcome> {
        if let Some(conflict) = self.check_parents(&put.path, None)? {
            return Ok(conflict);
        }
        let target = paths::on_disk(self.work_tree, &put.path);
        let staged = self.batch_dir.join(&put.staged);
        let new = JournalBlob::state(Some(put.new));
        let staged_present = std::fs::symlink_metadata(&staged).is_ok();
        if !staged_present {
            return Ok(match self.state_of(&target)? == Some(new) {
                true => Outcome::Done,
                false => Outcome::Conflict(format!(
                    "'{}': the staged content is gone and the file does not hold it",
                    put.path
                )),
            });
        }
        if self.verify {
            let now = self.state_of(&target)?;
            if now != Some(JournalBlob::state(put.old)) && now != Some(new) {
                return Ok(Outcome::Conflict(format!("'{}' was changed by someone else", put.path)));
            }
        }
        if let Some(conflict) = self.check_parents(&put.path, Some(barrier))? {
            return Ok(conflict);
        }
        if let Err(e) = std::fs::rename(&staged, &target) {
            if e.raw_os_error() != Some(libc::EXDEV) {
                return Err(Error::fatal(format!("cannot move '{}' into place: {e}", put.path)));
            }
            copy_across(&staged, &target, barrier)?;
        }
        barrier.add(parent_of(&target));
        Ok(Outcome::Done)
    }

    /// Removes a file and then each parent directory this leaves empty, up to the work-tree root.
    /// A file already gone still gets its parents removed: a crash between the unlink and the
    /// rmdirs must not leave behind an empty directory that the batch removes.
    pub fn remove(&mut self, remove: &JournalRemove, barrier: &mut Barrier) -> Result<Outcome> {
        if let Some(conflict) = self.check_parents(&remove.path, None)? {
            return Ok(conflict);
        }
        let target = paths::on_disk(self.work_tree, &remove.path);
        if self.verify {
            let now = self.state_of(&target)?;
            if now != Some(FileState::Absent) && now != Some(JournalBlob::state(Some(remove.old))) {
                return Ok(Outcome::Conflict(format!("'{}' was changed by someone else", remove.path)));
            }
        }
        match std::fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::fatal(format!("cannot remove '{}': {e}", remove.path)));
            }
        }
        barrier.add(parent_of(&target));
        let parents: Vec<&str> = paths::parents(&remove.path).collect();
        for dir in parents.iter().rev() {
            let full = self.work_tree.join(dir);
            match std::fs::remove_dir(&full) {
                Ok(()) => {}
                // Removed before a crash: its parent may still be waiting for its turn.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => break,
            }
            self.checked_dirs.remove(&full);
            barrier.add(parent_of(&full));
        }
        Ok(Outcome::Done)
    }

    /// The file state at `target`; `None` for a directory or special file, which no journal records.
    fn state_of(&self, target: &Path) -> Result<Option<FileState>> {
        Ok(match paths::inspect_leaf(target, self.hash)? {
            Found::Absent => Some(FileState::Absent),
            Found::File { blob, mode } => Some(FileState::Present { blob, mode }),
            Found::Directory | Found::Special => None,
        })
    }

    /// Walks the parents of `path` from the top. Each must be a real directory: one that became
    /// a symlink or a file since the batch was checked is a conflict, and nothing is read, written
    /// or removed through it (it could lead outside the work tree). A missing one is created when
    /// `create` holds the barrier for its entry; without it the walk stops there. Directories
    /// found real are remembered in `checked_dirs`, so each is looked at once per batch.
    fn check_parents(&mut self, path: &str, mut create: Option<&mut Barrier>) -> Result<Option<Outcome>> {
        for dir in paths::parents(path) {
            let full = self.work_tree.join(dir);
            if self.checked_dirs.contains(&full) {
                continue;
            }
            match (std::fs::symlink_metadata(&full), create.as_deref_mut()) {
                (Ok(m), _) if m.is_dir() => {}
                (Ok(_), _) => {
                    return Ok(Some(Outcome::Conflict(format!("'{dir}' is no longer a directory"))));
                }
                (Err(_), None) => return Ok(None),
                (Err(e), Some(barrier)) if e.kind() == std::io::ErrorKind::NotFound => {
                    match std::fs::create_dir(&full) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => {
                            return Err(Error::fatal(format!("cannot create directory '{dir}': {e}")));
                        }
                    }
                    barrier.add(parent_of(&full));
                }
                (Err(e), Some(_)) => return Err(Error::fatal(format!("cannot inspect '{dir}': {e}"))),
            }
            self.checked_dirs.insert(full);
        }
        Ok(None)
    }
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Copies a staged file to a hidden temp beside the target, syncs it, and renames it into place.
fn copy_across(staged: &Path, target: &Path, barrier: &mut Barrier) -> Result<()> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = parent_of(target).join(format!(".{name}.git-atomic-tmp"));
    let _ = std::fs::remove_file(&temp);
    let meta = std::fs::symlink_metadata(staged).io_context(|| staged.display().to_string())?;
    if meta.file_type().is_symlink() {
        let link = std::fs::read_link(staged).io_context(|| staged.display().to_string())?;
        std::os::unix::fs::symlink(link, &temp).io_context(|| temp.display().to_string())?;
    } else {
        std::fs::copy(staged, &temp).io_context(|| format!("cannot copy to '{}'", temp.display()))?;
        crate::durable::fsync_path(&temp)?;
    }
    std::fs::rename(&temp, target).io_context(|| format!("cannot move '{}' into place", target.display()))?;
    let _ = std::fs::remove_file(staged);
    barrier.add(parent_of(target));
    Ok(())
}
