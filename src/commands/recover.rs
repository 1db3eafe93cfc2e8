//! `git atomic recover`: finish or roll back every interrupted batch now.

use crate::cli::RecoverArgs;
use crate::commands::wait_duration;
use crate::error::{Error, Kind, Result};
use crate::json;
use crate::lock;
use crate::recover::{Action, recover_all};
use crate::repo::Repo;
use serde::Serialize;

#[derive(Serialize)]
struct RecoverResult {
    recovered: Vec<RecoveredLine>,
    error: Option<json::ErrorLine>,
}

#[derive(Serialize)]
struct RecoveredLine {
    id: String,
    /// `rolled-back`, `rolled-forward` or `conflict`.
    action: &'static str,
    conflicts: Vec<String>,
}

/// Runs `recover` and returns the exit status: 0 when no interrupted batch is left.
pub fn run(args: &RecoverArgs) -> i32 {
    let mut result = RecoverResult { recovered: Vec::new(), error: None };
    let outcome = recover(args, &mut result);
    if let Err(e) = &outcome {
        result.error = Some(e.into());
    }
    if args.json {
        json::print(&result);
    } else {
        for line in &result.recovered {
            println!("{} {}", line.action, line.id);
            for conflict in &line.conflicts {
                println!("  {conflict}");
            }
        }
    }
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            e.print();
            e.kind.exit_code()
        }
    }
}

fn recover(args: &RecoverArgs, out: &mut RecoverResult) -> Result<()> {
    let repo = Repo::discover()?;
    let lock = lock::acquire(&repo.state_dir(), wait_duration(args.wait, &repo))?;
    let mut stuck = Vec::new();
    for recovered in recover_all(&repo, &lock)? {
        let (action, conflicts) = match recovered.action {
            Action::RolledBack => ("rolled-back", Vec::new()),
            Action::RolledForward => ("rolled-forward", Vec::new()),
            Action::Conflict(c) => {
                stuck.push(recovered.id.clone());
                ("conflict", c)
            }
        };
        out.recovered.push(RecoveredLine { id: recovered.id, action, conflicts });
    }
    if stuck.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Kind::Interrupted,
        format!("could not finish batch {}: someone else changed what it touches", stuck.join(", ")),
    )
    .hint("run 'git atomic status' to see what diverged"))
}
