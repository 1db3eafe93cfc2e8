//! One file per subcommand; what they share sits here.

pub mod apply;
pub mod hook;
pub mod log;
pub mod recover;
pub mod status;
pub mod twophase;
pub mod undo;

use crate::error::{Error, Kind, Result};
use crate::lock::BatchLock;
use crate::recover::{Action, recover_all};
use crate::repo::Repo;
use std::time::Duration;

/// `--wait`, else `atomic.lockTimeout`.
pub fn wait_duration(wait: Option<f64>, repo: &Repo) -> Duration {
    match wait {
        Some(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        _ => Duration::from_secs(repo.settings.lock_timeout),
    }
}

/// Recovers interrupted batches before a command does its own work (SPEC §1.4); a batch that
/// cannot be recovered stops the command with exit 3.
pub fn recover_interrupted(repo: &Repo, lock: &BatchLock, quiet: bool) -> Result<()> {
    let prepared = crate::twophase::recover_prepared(repo, lock, quiet)?;
    for recovered in recover_all(repo, lock, quiet)?.into_iter().chain(prepared) {
        match recovered.action {
            Action::RolledBack if !quiet => {
                eprintln!("git atomic: rolled back interrupted batch {}", recovered.id)
            }
            Action::RolledForward if !quiet => {
                eprintln!("git atomic: finished interrupted batch {}", recovered.id)
            }
            Action::Conflict(why) => {
                return Err(Error::new(
                    Kind::Interrupted,
                    format!("interrupted batch {} cannot be finished: {}", recovered.id, why.join("; ")),
                )
                .hint("run 'git atomic status' for details"));
            }
            _ => {}
        }
    }
    Ok(())
}
