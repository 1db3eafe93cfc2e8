//! `git atomic recover`: finish or roll back every interrupted batch now.

use crate::cli::RecoverArgs;
use crate::commands::wait_duration;
use crate::error::{Error, Kind, Result};
use crate::json::{self, RecoverResult, RecoveredLine};
use crate::lock;
use crate::recover::{Action, recover_all};
use crate::repo::Repo;

/// Runs `recover` and returns the exit status: 0 when no interrupted batch is left.
pub fn run(args: &RecoverArgs) -> i32 {
    let mut result = RecoverResult::default();
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
        Err(e) => e.report(),
    }
}

fn recover(args: &RecoverArgs, out: &mut RecoverResult) -> Result<()> {
    let repo = Repo::discover()?;
    let lock = lock::acquire(&repo.state_dir(), wait_duration(args.wait, &repo))?;
    if let Some(id) = &args.abandon {
        let kept = repo.state_dir().abandon(id, repo.settings.fsync)?;
        eprintln!(
            "git atomic: abandoned batch {id}; its journal and staged contents are in '{}'",
            kept.display()
        );
        out.recovered.push(RecoveredLine { id: id.clone(), action: "abandoned", conflicts: Vec::new() });
    }
    let mut stuck = Vec::new();
    let prepared = crate::twophase::recover_prepared(&repo, &lock, false)?;
    for recovered in recover_all(&repo, &lock, false)?.into_iter().chain(prepared) {
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
        format!("could not finish batch {}: it diverged or its journal is damaged", stuck.join(", ")),
    )
    .hint("run 'git atomic status' to see what diverged")
    .hint("after checking by hand, 'git atomic recover --abandon ID' keeps what is on disk"))
}
