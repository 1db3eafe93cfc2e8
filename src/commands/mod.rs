//! One file per subcommand; what they share sits here.

pub mod apply;
pub mod hook;
pub mod log;
pub mod recover;
pub mod status;
pub mod twophase;
pub mod undo;

pub use crate::twophase::recover_interrupted;

use crate::repo::Repo;
use std::time::Duration;

/// `--wait`, else `atomic.lockTimeout`.
pub fn wait_duration(wait: Option<f64>, repo: &Repo) -> Duration {
    match wait {
        Some(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        _ => Duration::from_secs(repo.settings.lock_timeout),
    }
}
