//! `git atomic status`: what is in flight, interrupted or stuck, without changing anything.

use crate::cli::StatusArgs;
use crate::error::Result;
use crate::journal::{self, Read};
use crate::json;
use crate::lock;
use crate::recover::{CONFLICT_FILE, batch_dirs};
use crate::repo::Repo;
use serde::Serialize;

#[derive(Serialize)]
struct StatusResult {
    batches: Vec<BatchLine>,
    /// Whether the reference-transaction hook is installed (`None` when it cannot be told).
    hook_installed: Option<bool>,
}

#[derive(Serialize)]
struct BatchLine {
    id: String,
    /// `in-flight` (its owner is alive), `interrupted` (will be recovered), `conflict` (exit 3).
    state: &'static str,
    /// Whether the commit record was written: recovery rolls forward when true.
    committed: bool,
    message: Option<String>,
    refs: Vec<String>,
    files: Vec<String>,
    conflicts: Vec<String>,
}

/// Runs `status` and returns the exit status.
pub fn run(args: &StatusArgs) -> i32 {
    match status() {
        Ok(result) => {
            if args.json {
                json::print(&result);
            } else if result.batches.is_empty() {
                println!("no batch in flight or interrupted");
                print_hook_line(result.hook_installed);
            } else {
                print_hook_line(result.hook_installed);
                for b in &result.batches {
                    let phase = if b.committed { "committed" } else { "not committed" };
                    println!(
                        "{} {} ({phase}): {} ref(s), {} file(s)",
                        b.state,
                        b.id,
                        b.refs.len(),
                        b.files.len()
                    );
                    for c in &b.conflicts {
                        println!("  {c}");
                    }
                }
            }
            0
        }
        Err(e) => {
            e.print();
            e.kind.exit_code()
        }
    }
}

fn status() -> Result<StatusResult> {
    let repo = Repo::discover()?;
    let state_dir = repo.state_dir();
    let live = lock::is_held(&state_dir)?;
    let mut batches = Vec::new();
    for dir in batch_dirs(&state_dir)? {
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let conflicts: Vec<String> = std::fs::read_to_string(dir.join(CONFLICT_FILE))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default();
        let state = if !conflicts.is_empty() {
            "conflict"
        } else if live {
            "in-flight"
        } else {
            "interrupted"
        };
        let mut line =
            BatchLine { id, state, committed: false, message: None, refs: vec![], files: vec![], conflicts };
        if let Read::Intact { record, committed } = journal::read(&dir.join(journal::JOURNAL_FILE))? {
            line.committed = committed;
            line.message = Some(record.message);
            line.refs = record.refs.iter().map(|r| r.target.clone()).collect();
            line.files = record
                .puts
                .iter()
                .map(|p| p.path.clone())
                .chain(record.removes.iter().map(|r| r.path.clone()))
                .collect();
        }
        batches.push(line);
    }
    let hook_installed = crate::hook::hooks_dir(&repo).ok().map(|dir| crate::hook::is_installed(&dir));
    Ok(StatusResult { batches, hook_installed })
}

fn print_hook_line(installed: Option<bool>) {
    match installed {
        Some(true) => println!("reference-transaction hook: installed"),
        Some(false) => {
            println!("reference-transaction hook: not installed (git atomic hook install)")
        }
        None => {}
    }
}
