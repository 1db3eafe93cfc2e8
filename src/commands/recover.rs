//! `git atomic recover`: finish or roll back every interrupted batch now.

use crate::cli::RecoverArgs;
use crate::commands::wait_duration;
use crate::error::{Error, IoContext, Kind, Result};
use crate::json;
use crate::lock;
use crate::recover::{Action, recover_all};
use crate::repo::Repo;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Serialize)]
struct RecoverResult {
    recovered: Vec<RecoveredLine>,
    error: Option<json::ErrorLine>,
}

#[derive(Serialize)]
struct RecoveredLine {
    id: String,
    /// `rolled-back`, `rolled-forward`, `conflict` or `abandoned`.
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
    if let Some(id) = &args.abandon {
        let kept = abandon(&repo, id)?;
        eprintln!(
            "git atomic: abandoned batch {id}; its journal and staged contents are in '{}'",
            kept.display()
        );
        out.recovered.push(RecoveredLine { id: id.clone(), action: "abandoned", conflicts: Vec::new() });
    }
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
        format!("could not finish batch {}: it diverged or its journal is damaged", stuck.join(", ")),
    )
    .hint("run 'git atomic status' to see what diverged")
    .hint("after checking by hand, 'git atomic recover --abandon ID' keeps what is on disk"))
}

/// Drops batch `id` without touching refs or work tree: its directory (journal, staged contents,
/// the conflict report) moves to `atomic/abandoned/<id>`, where nothing recovers it again.
fn abandon(repo: &Repo, id: &str) -> Result<PathBuf> {
    let state_dir = repo.state_dir();
    let from = crate::stage::batch_dir(&state_dir, id);
    if id.is_empty() || id.contains('/') || id.starts_with('.') || !from.is_dir() {
        return Err(
            Error::invalid(format!("no interrupted batch '{id}'")).hint("'git atomic status' lists them")
        );
    }
    let dir = state_dir.join("abandoned");
    std::fs::create_dir_all(&dir).io_context(|| format!("cannot create '{}'", dir.display()))?;
    let to = dir.join(id);
    std::fs::rename(&from, &to).io_context(|| format!("cannot move '{}'", from.display()))?;
    if repo.settings.fsync {
        crate::durable::fsync_path(&dir)?;
        crate::durable::fsync_path(&state_dir.join("batches"))?;
    }
    Ok(to)
}
