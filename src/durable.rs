//! Durability barriers. A barrier collects the files and directories a step wrote and, when
//! flushed, makes all of them durable before the next step may depend on them: one `fsync` each
//! for a handful, or one `syncfs` of the file system when there are many (one flush of the
//! device cache instead of thousands; NOTES-git.md measured 20,000 refs at 0.13–0.34 s by
//! `syncfs` against 21 s by per-file fsync). Under `atomic.fsync=false` a barrier does nothing:
//! atomicity against process death never depended on it, durability against power loss does.

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Above this many paths a barrier syncs the whole file system instead of each path. Measured on
/// a 1-ref + 1-file batch (5 and 8 paths in its two barriers): one `syncfs` each made the whole
/// apply 9 % faster than per-path fsyncs (median 6 ms vs 7 ms); with 4 or fewer paths, fsyncs
/// avoid waiting on other processes' dirty data.
const SYNCFS_THRESHOLD: usize = 4;

/// Paths to make durable together.
#[derive(Debug, Default)]
pub struct Barrier {
    enabled: bool,
    whole_fs: bool,
    paths: BTreeSet<PathBuf>,
}

impl Barrier {
    /// A barrier; `enabled` is `atomic.fsync`.
    pub fn new(enabled: bool) -> Self {
        Barrier { enabled, whole_fs: false, paths: BTreeSet::new() }
    }

    /// Adds a path whose written files we cannot name (a reftable stack): the flush syncs its
    /// whole file system.
    pub fn add_file_system_of(&mut self, path: impl Into<PathBuf>) {
        if self.enabled {
            self.whole_fs = true;
            self.paths.insert(path.into());
        }
    }

    /// Adds a file or directory whose content or entries must become durable.
    pub fn add(&mut self, path: impl Into<PathBuf>) {
        if self.enabled {
            self.paths.insert(path.into());
        }
    }

    /// Makes every added path durable; afterwards the barrier is empty and can be reused.
    pub fn flush(&mut self) -> Result<()> {
        if self.paths.is_empty() {
            return Ok(());
        }
        let paths = std::mem::take(&mut self.paths);
        // A symlink cannot be opened without following it, so its inode is made durable by
        // syncing the whole file system rather than through whatever it points at.
        let has_symlink = || paths.iter().any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_symlink()));
        if std::mem::take(&mut self.whole_fs) || paths.len() > SYNCFS_THRESHOLD || has_symlink() {
            return syncfs_covering(&paths);
        }
        // Deepest first, a file before its directory: on a journaling file system the file's
        // fsync commits the directory entries made with it, and the directory's fsync then finds
        // nothing left to commit (one journal commit instead of one per path).
        for path in paths.iter().rev() {
            fsync_path(path)?;
        }
        Ok(())
    }
}

/// Opens a path for syncing without following a symlink and without blocking on a fifo.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
}

/// `fsync` of one file or directory; a path that vanished, or a symlink, is not opened.
pub fn fsync_path(path: &Path) -> Result<()> {
    match open_no_follow(path) {
        Ok(f) => f.sync_all().map_err(|e| sync_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(()),
        Err(e) => Err(sync_error(path, e)),
    }
}

/// One `syncfs` per file system the paths live on, through the nearest real directory.
fn syncfs_covering(paths: &BTreeSet<PathBuf>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut devices = BTreeSet::new();
    for path in paths {
        let dir = path.ancestors().find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()));
        let Some(dir) = dir else { continue };
        let dev = std::fs::symlink_metadata(dir).map_err(|e| sync_error(dir, e))?.dev();
        if devices.insert(dev) {
            syncfs(dir)?;
        }
    }
    Ok(())
}

/// Flushes the whole file system holding `path` (Linux `syncfs(2)`).
pub fn syncfs(path: &Path) -> Result<()> {
    let file = open_no_follow(path).map_err(|e| sync_error(path, e))?;
    // SAFETY: the descriptor is valid for the duration of the call; syncfs only reads it.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc == 0 { Ok(()) } else { Err(sync_error(path, std::io::Error::last_os_error())) }
}

fn sync_error(path: &Path, e: std::io::Error) -> Error {
    Error::fatal(format!("cannot make '{}' durable: {e}", path.display()))
}

/// Writes a file system's dirty data back while git works through a large batch, so that the
/// barrier after it finds little left to write: for 100,000 refs, git's prepare and commit take
/// about 9.5 s on one core and leave 800 MB (a block per ref file and reflog) that a final
/// `syncfs` took 1.8–2.3 s to write; flushed meanwhile, the final one takes 30–50 ms. Only an
/// optimisation: what is durable is still decided by the barrier, which runs after it stops.
pub struct Writeback {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// From this many refs on, git's work is long enough to write its files back while it goes on.
const WRITEBACK_MIN_REFS: usize = 1000;

/// How often the writeback thread syncs (100 ms, 300 ms and 1 s measured alike).
const WRITEBACK_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl Writeback {
    /// Started for a batch of `refs` refs when barriers are on (`atomic.fsync`) and git's work
    /// is long enough ([`WRITEBACK_MIN_REFS`]); apply and recovery alike.
    pub fn for_refs(enabled: bool, refs: usize, dir: &Path) -> Option<Writeback> {
        (enabled && refs >= WRITEBACK_MIN_REFS).then(|| Writeback::start(dir))
    }

    /// Starts syncing the file system holding `dir` every [`WRITEBACK_EVERY`], until dropped.
    fn start(dir: &Path) -> Writeback {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(WRITEBACK_EVERY)
                {
                    let _ = syncfs(&dir);
                }
            })
            .ok();
        Writeback { stop: Some(stop), thread }
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
