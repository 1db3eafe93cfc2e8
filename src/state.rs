//! The `<common dir>/atomic/` tree: every path git-atomic keeps is named here and nowhere else,
//! mirroring the tree `docs/journal.md` draws (the hook script in `hooks/` looks for
//! `atomic/batches/*` on its own, to stay a few shell builtins):
//!
//! ```text
//! atomic/
//!   lock                  the batch lock (lock.rs)
//!   batches/<id>/         one running or interrupted batch
//!     journal             its record and commit record (journal.rs)
//!     <n>                 the new content of put n (stage/<n> in format 1)
//!     update-ref.pid      its git update-ref's pid, then its locks once prepared, for recovery
//!     conflict            why recovery could not finish it
//!     <n> / p<n>, r<m>    after the moves: the old file of put n, of removal m (pre-images)
//!     outcome             the history entry's outcome, written just before the move into log/
//!   log/<id>/             a finished batch's history entry: the batch directory, renamed
//!   abandoned/<id>/       a batch given up with `recover --abandon`
//!   prepared/<id>/        a batch prepared for two-phase commit (prepared.rs): as a batch
//!                         directory, plus `xa` (its XID and since when)
//!   outcomes/xid-<xid>    how a two-phase batch ended: `committed <id>` or `aborted <id>`
//!   displaced/<id>/<path> a file another program wrote while batch <id> was prepared, saved
//!                         by its commit before overwriting it
//! ```

use crate::durable::{self, Barrier};
use crate::error::{Error, IoContext, Result};
use std::path::{Path, PathBuf};

/// Where format 1 of the journal kept the staged files, inside the batch directory.
pub const V1_STAGE_DIR: &str = "stage";

/// `<common dir>/atomic/`, shared by every worktree of a repository.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory of the repository whose common dir is `common_dir`.
    pub fn of(common_dir: &Path) -> Self {
        StateDir { root: common_dir.join("atomic") }
    }

    /// `atomic/` itself, created by whoever takes the lock first.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `atomic/lock`, the file the batch lock `flock`s.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// `atomic/batches/`, which holds one directory per running or interrupted batch.
    pub fn batches(&self) -> PathBuf {
        self.root.join("batches")
    }

    /// `atomic/log/`: one directory per history entry (history.rs), named by batch id.
    pub fn log(&self) -> PathBuf {
        self.root.join("log")
    }

    /// `atomic/abandoned/`: batches given up with `recover --abandon` (listed by `log` too).
    pub fn abandoned(&self) -> PathBuf {
        self.root.join("abandoned")
    }

    /// The history entry of batch `id` (which may not exist).
    pub fn log_entry(&self, id: &str) -> BatchDir {
        BatchDir { path: self.log().join(id) }
    }

    /// The directory of batch `id` (which may not exist).
    pub fn batch(&self, id: &str) -> BatchDir {
        BatchDir { path: self.batches().join(id) }
    }

    /// Every batch directory, oldest first (batch ids sort by time).
    pub fn batch_dirs(&self) -> Result<Vec<BatchDir>> {
        subdirs(&self.batches())
    }

    /// `atomic/prepared/`, which holds one directory per prepared (two-phase) batch.
    pub fn prepared(&self) -> PathBuf {
        self.root.join("prepared")
    }

    /// The prepared directory of batch `id` (which may not exist).
    pub fn prepared_batch(&self, id: &str) -> BatchDir {
        BatchDir { path: self.prepared().join(id) }
    }

    /// Every prepared batch directory, oldest first.
    pub fn prepared_dirs(&self) -> Result<Vec<BatchDir>> {
        subdirs(&self.prepared())
    }

    /// `atomic/outcomes/`: how each two-phase batch ended, by XID.
    pub fn outcomes(&self) -> PathBuf {
        self.root.join("outcomes")
    }

    /// The outcome file of XID `xid` (`xid-` keeps `.` and `..` from naming a directory).
    pub fn outcome(&self, xid: &str) -> PathBuf {
        self.outcomes().join(format!("xid-{xid}"))
    }

    /// `atomic/displaced/<id>/`: the files commit of prepared batch `id` saved before
    /// overwriting them (kept after the batch is gone).
    pub fn displaced(&self, id: &str) -> PathBuf {
        self.root.join("displaced").join(id)
    }

    /// Moves batch `id` to `atomic/abandoned/<id>`, where nothing recovers it again; returns
    /// where it went. Refs and work tree are not touched.
    pub fn abandon(&self, id: &str, fsync: bool) -> Result<PathBuf> {
        let from = self.batch(id);
        if id.is_empty() || id.contains('/') || id.starts_with('.') || !from.path.is_dir() {
            return Err(
                Error::invalid(format!("no interrupted batch '{id}'")).hint("'git atomic status' lists them")
            );
        }
        let dir = self.root.join("abandoned");
        std::fs::create_dir_all(&dir).io_context(|| format!("cannot create '{}'", dir.display()))?;
        let to = dir.join(id);
        std::fs::rename(&from.path, &to).io_context(|| format!("cannot move '{}'", from.path.display()))?;
        let _ = std::fs::remove_file(from.update_ref_trace());
        if fsync {
            durable::fsync_path(&dir)?;
            durable::fsync_path(&self.batches())?;
        }
        Ok(to)
    }
}

/// The subdirectories of `dir` as batch directories, sorted (batch ids sort by time).
fn subdirs(dir: &Path) -> Result<Vec<BatchDir>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::fatal(format!("cannot read '{}': {e}", dir.display())));
        }
    };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    Ok(dirs.into_iter().map(|path| BatchDir { path }).collect())
}

/// `atomic/batches/<id>/`: one batch's journal, staged contents and notes for recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDir {
    path: PathBuf,
}

impl BatchDir {
    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The batch id: the directory's name.
    pub fn id(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// `journal`: the record and, once committed, the commit record.
    pub fn journal(&self) -> PathBuf {
        self.path.join("journal")
    }

    /// A staged content, by the name the journal gives it (`<n>`, or `stage/<n>` in format 1).
    pub fn staged(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `update-ref.pid`: the pid of the batch's latest `git update-ref` and the boot's id,
    /// written just before it is told to take any lock; its mtime is the floor of the lock files
    /// recovery may remove, its boot id tells whether that git ran in this boot.
    /// Once git says `prepare: ok`, a note of the lock files it holds is appended (leftovers.rs).
    pub fn update_ref_pid(&self) -> PathBuf {
        self.path.join("update-ref.pid")
    }

    /// `atomic/update-ref-<id>.trace`: git's trace2 events of the batch's latest update-ref, whose
    /// `atexit` says that git ended by itself and so released every lock it took (see
    /// leftovers.rs). Beside `batches/`, not in it: git opens it as it starts, and apply starts
    /// its update-ref before the batch directory exists.
    pub fn update_ref_trace(&self) -> PathBuf {
        let root = self.path.parent().and_then(Path::parent).unwrap_or(Path::new("."));
        root.join(format!("update-ref-{}.trace", self.id()))
    }

    /// `xa`: the prepared record of a two-phase batch (its XID and when it was prepared).
    pub fn xa(&self) -> PathBuf {
        self.path.join("xa")
    }

    /// `journal.new`: a prepared batch's journal being rewritten by commit, renamed over
    /// `journal` once whole (before the commit point).
    pub fn rewritten_journal(&self) -> PathBuf {
        self.path.join("journal.new")
    }

    /// `conflict`: why recovery could not finish the batch, one reason a line (for `status`).
    pub fn conflict(&self) -> PathBuf {
        self.path.join("conflict")
    }

    /// `outcome`: the history entry's outcome (history.rs), written as the batch finishes.
    pub fn outcome(&self) -> PathBuf {
        self.path.join("outcome")
    }

    /// The name (in this directory) of put `n`'s old file when it had to be copied here (the
    /// work tree on another file system); otherwise the old file is exchanged with the staged one
    /// and keeps the staged name.
    pub fn copied_pre_image(n: &str) -> String {
        format!("p{n}")
    }

    /// The name (in this directory) of removal `m`'s old file.
    pub fn removed_pre_image(m: usize) -> String {
        format!("r{m}")
    }

    /// Creates the directory, adding to the barrier every directory entry that is new (on the
    /// repository's first batch, `atomic/` and `batches/` too).
    pub fn create(&self, barrier: &mut Barrier) -> Result<()> {
        let batches = self.path.parent().expect("a batch directory is under batches/");
        let state_dir = batches.parent().expect("batches/ is under the state directory");
        if !batches.is_dir() {
            barrier.add(state_dir);
            if let Some(common_dir) = state_dir.parent() {
                barrier.add(common_dir);
            }
        }
        std::fs::create_dir_all(&self.path)
            .io_context(|| format!("cannot create '{}'", self.path.display()))?;
        barrier.add(batches);
        barrier.add(&self.path);
        Ok(())
    }

    /// Deletes a finished batch's directory and makes the deletion durable, so that a power loss
    /// cannot bring back a journal whose batch the user has since built on.
    pub fn remove(&self, fsync: bool) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::fatal(format!("cannot remove '{}': {e}", self.path.display())));
            }
        }
        let _ = std::fs::remove_file(self.update_ref_trace());
        match (fsync, self.path.parent()) {
            (true, Some(batches)) => durable::fsync_path(batches),
            _ => Ok(()),
        }
    }
}
