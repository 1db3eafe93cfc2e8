//! Stage 7: moves the staged files into the work tree and removes deleted ones, after the
//! commit point, for apply and recovery alike ([`move_all`]). Every operation accepts "already
//! done", because roll-forward repeats them after a crash: a put is done when the staged file is
//! gone and the path holds the new content, a removal when the path is absent. A batch that keeps
//! history (`Record::log.keep`) moves each old file into its batch directory instead of losing
//! it: a put exchanges the staged file with the old one (`renameat2(RENAME_EXCHANGE)`, so the
//! path is never empty), a removal renames the file to `r<m>`; a put is then also done when the
//! path holds the new content and the staged name holds the old file.

use crate::crash;
use crate::dirs::{self, Dir, Dirs};
use crate::durable::Barrier;
use crate::error::{Error, Kind, Result};
use crate::paths::{self, Found};
use crate::progress::Progress;
use crate::record::{FileState, JournalBlob, JournalPut, JournalRemove, Record};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

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
    mover.keep = record.log.keep;
    let total = record.puts.len() + record.removes.len();
    let mut progress = Progress::new("Moving files", total, !policy.progress);
    let mut conflicts = Vec::new();
    let puts = record.puts.iter().map(Step::Put);
    for step in puts.chain(record.removes.iter().enumerate().map(|(m, r)| Step::Remove(m, r))) {
        let outcome = match step {
            Step::Put(put) => mover.put(put, barrier)?,
            Step::Remove(m, remove) => mover.remove_as(remove, m, barrier)?,
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
    Remove(usize, &'r JournalRemove),
}

/// Moves files in one work tree through directory handles ([`crate::dirs`]), opening each
/// directory on the way once.
pub struct Mover<'a> {
    pub work_tree: &'a Path,
    pub batch_dir: PathBuf,
    pub hash: gix::hash::Kind,
    /// Recovery compares every path with the journal; a fresh apply already rechecked them.
    pub verify: bool,
    /// Keep each old file in the batch directory (history) rather than unlink or replace it.
    pub keep: bool,
    dirs: Dirs,
    /// A handle on `batch_dir`, opened at the first put.
    staged_dir: Option<Rc<OwnedFd>>,
}

impl<'a> Mover<'a> {
    /// A mover for the batch whose staged files are in `batch_dir`.
    pub fn new(work_tree: &'a Path, batch_dir: &Path, hash: gix::hash::Kind, verify: bool) -> Self {
        let dirs = Dirs::new(work_tree);
        Mover {
            work_tree,
            batch_dir: batch_dir.to_path_buf(),
            hash,
            verify,
            keep: false,
            dirs,
            staged_dir: None,
        }
    }

    /// Puts a staged file into place (rename; a copy when the stage is on another file system).
    pub fn put(&mut self, put: &JournalPut, barrier: &mut Barrier) -> Result<Outcome> {
        if let Some(conflict) = self.check_parents(&put.path, None)? {
            return Ok(conflict);
        }
        let target = paths::on_disk(self.work_tree, &put.path);
        let staged_dir = self.staged_dir()?;
        let new = JournalBlob::state(Some(put.new));
        let staged_present = dirs::stat_at(&staged_dir, &put.staged)
            .map_err(|e| Error::fatal(format!("cannot inspect the staged '{}': {e}", put.path)))?
            .is_some();
        if !staged_present {
            return self.staged_gone(put, &target);
        }
        if self.verify {
            let now = self.state_of(&target)?;
            if now != Some(JournalBlob::state(put.old)) && now != Some(new) {
                return Ok(Outcome::Conflict(format!("'{}' was changed by someone else", put.path)));
            }
            // Exchanged before a crash: the staged name holds the old file now.
            if self.keep && put.old.is_some() && now == Some(new) {
                return Ok(Outcome::Done);
            }
        }
        if let Some(conflict) = self.check_parents(&put.path, Some(barrier))? {
            return Ok(conflict);
        }
        let dir = match self.dir_of(&put.path)? {
            Dir::Open(dir) => dir,
            Dir::Missing => return Ok(self.gone(dirs::split(&put.path).0)),
            Dir::NotADirectory(dir) => return Ok(not_a_directory(&dir)),
        };
        if self.keep && put.old.is_some() {
            return self.exchange(put, &staged_dir, &dir, &target, barrier);
        }
        if let Some(outcome) = self.move_staged(put, &staged_dir, &dir, &target, barrier)? {
            return Ok(outcome);
        }
        barrier.add(parent_of(&target));
        Ok(Outcome::Done)
    }

    /// Moves the staged file over the path (rename; a copy when the stage is on another file
    /// system). `Some`: it found nothing to move, judged by [`Mover::found_nothing`].
    fn move_staged(
        &self,
        put: &JournalPut,
        staged_dir: &OwnedFd,
        dir: &OwnedFd,
        target: &Path,
        barrier: &mut Barrier,
    ) -> Result<Option<Outcome>> {
        let name = dirs::split(&put.path).1;
        let cannot = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("cannot move '{}' into place: {e}", put.path))
        };
        let moved = match dirs::rename_at(staged_dir, &put.staged, dir, name) {
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                copy_across(staged_dir, &put.staged, dir, name, target, barrier)
            }
            moved => moved.map_err(cannot),
        };
        match moved {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.found_nothing(put, staged_dir, target).map(Some)
            }
            Err(e) => Err(Error::fatal(e.to_string())),
        }
    }

    /// Puts the staged file in place of the old one and the old one in the staged file's place,
    /// in one `renameat2(RENAME_EXCHANGE)`. The old file gone already (apply does not look
    /// again after its recheck) is a plain move; the work tree on another file system, or a file
    /// system that refuses the flag (NFS, FUSE), gets the old file hard-linked (or copied) to
    /// `p<n>` in the batch directory, then the staged file moved over it (renamed, or copied
    /// across): done when the staged name is gone.
    fn exchange(
        &mut self,
        put: &JournalPut,
        staged_dir: &OwnedFd,
        dir: &OwnedFd,
        target: &Path,
        barrier: &mut Barrier,
    ) -> Result<Outcome> {
        let name = dirs::split(&put.path).1;
        let failed = |e: std::io::Error| Error::fatal(format!("cannot move '{}' into place: {e}", put.path));
        let found_nothing = match dirs::exchange_at(staged_dir, &put.staged, dir, name) {
            Ok(()) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.move_staged(put, staged_dir, dir, target, barrier)?
            }
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) || dirs::flag_refused(&e) => {
                let keep = crate::state::BatchDir::copied_pre_image(&put.staged);
                match link_leaf(dir, name, staged_dir, &keep) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // gone: a plain move
                    kept => kept.map_err(failed)?,
                }
                self.move_staged(put, staged_dir, dir, target, barrier)?
            }
            Err(e) => return Err(failed(e)),
        };
        if let Some(outcome) = found_nothing {
            return Ok(outcome);
        }
        barrier.add(parent_of(target));
        barrier.add(self.batch_dir.clone());
        Ok(Outcome::Done)
    }

    /// Removes a file, keeping it as `r<m>` in the batch directory when the batch keeps history
    /// (`m`: its index among the removals); see [`Mover::remove`].
    pub fn remove_as(&mut self, remove: &JournalRemove, m: usize, barrier: &mut Barrier) -> Result<Outcome> {
        if !self.keep {
            return self.remove(remove, barrier);
        }
        if let Some(conflict) = self.check_parents(&remove.path, None)? {
            return Ok(conflict);
        }
        if self.verify {
            let now = self.state_of(&paths::on_disk(self.work_tree, &remove.path))?;
            if now != Some(FileState::Absent) && now != Some(JournalBlob::state(Some(remove.old))) {
                return Ok(Outcome::Conflict(format!("'{}' was changed by someone else", remove.path)));
            }
        }
        if let Dir::Open(dir) = self.dir_of(&remove.path)? {
            let staged_dir = self.staged_dir()?;
            let name = dirs::split(&remove.path).1;
            let keep = crate::state::BatchDir::removed_pre_image(m);
            let kept = match dirs::rename_at(&dir, name, &staged_dir, &keep) {
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy_leaf(&dir, name, &staged_dir, &keep),
                other => other,
            };
            match kept {
                Ok(()) => barrier.add(self.batch_dir.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // A conflict or a directory in its place: the unlink below reports it.
                Err(_) => {}
            }
        }
        self.remove(remove, barrier)
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
        match self.dir_of(&remove.path)? {
            Dir::Open(dir) => match dirs::unlink_at(&dir, dirs::split(&remove.path).1) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::fatal(format!("cannot remove '{}': {e}", remove.path)));
                }
            },
            Dir::Missing => {} // gone with its parent
            Dir::NotADirectory(dir) => return Ok(not_a_directory(&dir)),
        }
        barrier.add(parent_of(&target));
        let parents: Vec<&str> = paths::parents(&remove.path).collect();
        for dir in parents.iter().rev() {
            let (up, name) = dirs::split(dir);
            let removed = match self.dirs.open(up) {
                Ok(Dir::Open(up)) => dirs::remove_dir_at(&up, name),
                Ok(Dir::Missing) => Err(std::io::ErrorKind::NotFound.into()),
                Ok(Dir::NotADirectory(_)) | Err(_) => break,
            };
            match removed {
                Ok(()) => {}
                // Removed before a crash: its parent may still be waiting for its turn.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => break,
            }
            self.dirs.forget(dir);
            barrier.add(parent_of(&self.work_tree.join(dir)));
        }
        Ok(Outcome::Done)
    }

    /// A put whose staged file is gone: done when the path holds the new content (moved before a
    /// crash, or by another process), else a conflict.
    fn staged_gone(&self, put: &JournalPut, target: &Path) -> Result<Outcome> {
        Ok(match self.state_of(target)? == Some(JournalBlob::state(Some(put.new))) {
            true => Outcome::Done,
            false => Outcome::Conflict(format!(
                "'{}': the staged content is gone and the file does not hold it",
                put.path
            )),
        })
    }

    /// A rename or copy of a staged file (seen a moment before) into place that found nothing
    /// (`ENOENT`): either the staged file vanished since (see [`Mover::staged_gone`]), or the
    /// directory of `put.path` was removed since its handle was opened (a cached handle then
    /// names a deleted directory), the conflict of [`Mover::gone`].
    fn found_nothing(&self, put: &JournalPut, staged_dir: &OwnedFd, target: &Path) -> Result<Outcome> {
        let staged = dirs::stat_at(staged_dir, &put.staged)
            .map_err(|e| Error::fatal(format!("cannot inspect the staged '{}': {e}", put.path)))?;
        match staged {
            Some(_) => Ok(self.gone(dirs::split(&put.path).0)),
            None => self.staged_gone(put, target),
        }
    }

    /// A directory of the batch's paths (`""` the work tree itself) removed by someone else
    /// while the files were being moved.
    fn gone(&self, dir: &str) -> Outcome {
        let what = match dir {
            "" => format!("the work tree '{}'", self.work_tree.display()),
            dir => format!("'{dir}'"),
        };
        Outcome::Conflict(format!("{what} was removed while the files were being moved"))
    }

    /// The file state at `target`; `None` for a directory or special file, which no journal
    /// records, and for a path whose parent is no longer a directory.
    fn state_of(&self, target: &Path) -> Result<Option<FileState>> {
        let path = target
            .strip_prefix(self.work_tree)
            .ok()
            .and_then(Path::to_str)
            .expect("a target is a batch path joined to the work tree");
        Ok(match self.dirs.inspect(path, self.hash)? {
            Ok(Found::Absent) => Some(FileState::Absent),
            Ok(Found::File { blob, mode }) => Some(FileState::Present { blob, mode }),
            Ok(Found::Directory | Found::Special) | Err(_) => None,
        })
    }

    /// Walks the parents of `path` from the work-tree root, each opened without following a link
    /// (and each opened once per batch, see [`Dirs`]). One that became a symlink or a file since
    /// the batch was checked is a conflict, and nothing is read, written or removed through it
    /// (it could lead outside the work tree). Missing ones are created when `create` holds the
    /// barrier for its entry; without it the walk stops there.
    fn check_parents(&mut self, path: &str, create: Option<&mut Barrier>) -> Result<Option<Outcome>> {
        let parent = dirs::split(path).0;
        let work_tree = self.work_tree;
        let found = match create {
            None => self.dirs.open(parent),
            Some(barrier) => {
                self.dirs.create(parent, &mut |made| barrier.add(parent_of(&work_tree.join(made))))
            }
        };
        match found.map_err(|e| Error::fatal(format!("cannot open directory '{parent}': {e}")))? {
            Dir::NotADirectory(dir) => Ok(Some(not_a_directory(&dir))),
            Dir::Open(_) | Dir::Missing => Ok(None),
        }
    }

    /// The handle on the directory holding `path` (already walked by `check_parents`).
    fn dir_of(&self, path: &str) -> Result<Dir> {
        let parent = dirs::split(path).0;
        self.dirs.open(parent).map_err(|e| Error::fatal(format!("cannot open directory '{parent}': {e}")))
    }

    fn staged_dir(&mut self) -> Result<Rc<OwnedFd>> {
        if let Some(dir) = &self.staged_dir {
            return Ok(dir.clone());
        }
        let dir = Rc::new(
            dirs::open_dir(&self.batch_dir)
                .map_err(|e| Error::fatal(format!("cannot open '{}': {e}", self.batch_dir.display())))?,
        );
        self.staged_dir = Some(dir.clone());
        Ok(dir)
    }
}

fn not_a_directory(dir: &str) -> Outcome {
    Outcome::Conflict(format!("'{dir}' is no longer a directory"))
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Copies a staged file to a hidden temp beside the target (`name` in the handle `into`), syncs
/// it, and renames it into place; `target` is its path, for messages and the barrier. An error
/// keeps its kind (`NotFound`: the staged file or the directory is gone, see
/// [`Mover::found_nothing`]) and says what failed.
fn copy_across(
    staged_dir: &OwnedFd,
    staged: &str,
    into: &OwnedFd,
    name: &str,
    target: &Path,
    barrier: &mut Barrier,
) -> std::io::Result<()> {
    let temp = format!(".{name}.git-atomic-tmp");
    let cannot = |what: &str, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot {what} '{}': {e}", target.display()))
    };
    let _ = dirs::unlink_at(into, &temp);
    let stat = dirs::stat_at(staged_dir, staged).map_err(|e| cannot("copy to", e))?;
    if stat.is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFLNK) {
        let link = dirs::read_link_at(staged_dir, staged).map_err(|e| cannot("copy to", e))?;
        dirs::symlink_at(&link, into, &temp).map_err(|e| cannot("copy to", e))?;
    } else {
        let mut from = dirs::open_file_at(staged_dir, staged).map_err(|e| cannot("copy to", e))?;
        let permissions = from.metadata().map_err(|e| cannot("copy to", e))?.permissions();
        let mut to = dirs::create_file_at(into, &temp, 0o600).map_err(|e| cannot("copy to", e))?;
        std::io::copy(&mut from, &mut to).map_err(|e| cannot("copy to", e))?;
        to.set_permissions(permissions).map_err(|e| cannot("copy to", e))?;
        to.sync_all().map_err(|e| cannot("sync a copy of", e))?;
    }
    dirs::rename_at(into, &temp, into, name).map_err(|e| cannot("move into place", e))?;
    let _ = dirs::unlink_at(staged_dir, staged);
    barrier.add(parent_of(target));
    Ok(())
}

/// Keeps the file or symlink `name` of `from` as `to_name` in `to` by a hard link (the same
/// file, not followed), or a copy where the file system makes none or `to` is on another one
/// (EXDEV): a put's pre-image where `RENAME_EXCHANGE` is refused or cannot reach. A `to_name`
/// left by an earlier attempt is replaced.
fn link_leaf(from: &OwnedFd, name: &str, to: &OwnedFd, to_name: &str) -> std::io::Result<()> {
    let _ = dirs::unlink_at(to, to_name);
    match dirs::link_at(from, name, to, to_name) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => copy_leaf(from, name, to, to_name),
        linked => linked,
    }
}

/// Copies the file or symlink `name` of `from` to `to_name` in `to` (made private, then given the
/// source's permissions) and syncs it: a pre-image kept across file systems.
fn copy_leaf(from: &OwnedFd, name: &str, to: &OwnedFd, to_name: &str) -> std::io::Result<()> {
    let _ = dirs::unlink_at(to, to_name);
    let stat = dirs::stat_at(from, name)?.ok_or(std::io::ErrorKind::NotFound)?;
    if stat.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return dirs::symlink_at(&dirs::read_link_at(from, name)?, to, to_name);
    }
    let mut source = dirs::open_file_at(from, name)?;
    let mut copy = dirs::create_file_at(to, to_name, 0o600)?;
    std::io::copy(&mut source, &mut copy)?;
    copy.set_permissions(source.metadata()?.permissions())?;
    copy.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rename into place that found nothing after the staged file vanished (no pause point
    /// reaches that instant): done when the path holds the new content, else the conflict of a
    /// staged file gone, never the directory's.
    #[test]
    fn a_staged_file_vanished_before_the_rename_is_judged_by_the_path() {
        let root = tempfile::tempdir().unwrap();
        let (work_tree, batch_dir) = (root.path().join("w"), root.path().join("b"));
        std::fs::create_dir_all(work_tree.join("d")).unwrap();
        std::fs::create_dir(&batch_dir).unwrap();
        std::fs::write(work_tree.join("d/f"), "new\n").unwrap();
        let mut mover = Mover::new(&work_tree, &batch_dir, gix::hash::Kind::Sha1, false);
        let target = work_tree.join("d/f");
        let held = mover.state_of(&target).unwrap().and_then(JournalBlob::of).unwrap();
        let put = JournalPut { path: "d/f".into(), staged: "0".into(), old: None, new: held };
        let staged_dir = mover.staged_dir().unwrap();
        assert_eq!(mover.found_nothing(&put, &staged_dir, &target).unwrap(), Outcome::Done);
        std::fs::write(&target, "someone else\n").unwrap();
        let Outcome::Conflict(why) = mover.found_nothing(&put, &staged_dir, &target).unwrap() else {
            panic!("a path without the new content is a conflict");
        };
        assert!(why.contains("the staged content is gone"), "{why}");
        std::fs::write(batch_dir.join("0"), "new\n").unwrap();
        let gone = mover.found_nothing(&put, &staged_dir, &target).unwrap();
        assert_eq!(gone, Outcome::Conflict("'d' was removed while the files were being moved".into()));
    }
}
