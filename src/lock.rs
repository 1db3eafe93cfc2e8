//! The batch lock: one exclusive `flock` on `<common dir>/atomic/lock` serialises every
//! `git atomic` command that writes, across worktrees. A journal whose lock nobody holds
//! belongs to a dead process: that is what makes a batch "interrupted" (SPEC §3).
//! The kernel drops the lock when its holder dies, so a crash never leaves it stale.

use crate::error::{Error, IoContext, Kind, Result};
use crate::state::StateDir;
use fd_lock::RwLock;
use std::fs::{File, OpenOptions};
use std::time::{Duration, Instant};

/// Proof that this process holds the batch lock; dropping it closes the file, which releases it.
#[must_use = "the batch lock is released as soon as this guard is dropped"]
pub struct BatchLock {
    _file: RwLock<File>,
}

fn open_lock_file(state_dir: &StateDir) -> Result<RwLock<File>> {
    let root = state_dir.root();
    std::fs::create_dir_all(root).io_context(|| format!("cannot create '{}'", root.display()))?;
    let path = state_dir.lock_file();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .io_context(|| format!("cannot open '{}'", path.display()))?;
    Ok(RwLock::new(file))
}

/// Tries once; on success the flock stays held until the returned file is closed.
fn try_take(lock: &mut RwLock<File>) -> bool {
    match lock.try_write() {
        Ok(guard) => {
            // Forgetting the guard keeps the flock: it is released when the descriptor closes.
            std::mem::forget(guard);
            true
        }
        Err(_) => false,
    }
}

/// Takes the lock, waiting up to `wait`; exit 4 (busy) when another batch keeps it longer.
pub fn acquire(state_dir: &StateDir, wait: Duration) -> Result<BatchLock> {
    let mut lock = open_lock_file(state_dir)?;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    // Polling with back-off instead of a blocking flock keeps the wait bounded without signals.
    while !try_take(&mut lock) {
        if Instant::now() >= deadline {
            return Err(Error::new(
                Kind::Busy,
                format!("another git atomic command held the lock for {}s", wait.as_secs_f32()),
            )
            .hint("wait for it to finish, or pass a longer --wait"));
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    Ok(BatchLock { _file: lock })
}

/// Takes the lock only if it is free right now (the hook must never wait on it).
pub fn try_acquire(state_dir: &StateDir) -> Result<Option<BatchLock>> {
    let mut lock = open_lock_file(state_dir)?;
    Ok(try_take(&mut lock).then_some(BatchLock { _file: lock }))
}

/// Whether a live process holds the lock right now (without keeping it).
pub fn is_held(state_dir: &StateDir) -> Result<bool> {
    if !state_dir.lock_file().exists() {
        return Ok(false);
    }
    Ok(try_acquire(state_dir)?.is_none())
}
