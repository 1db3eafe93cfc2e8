//! `git atomic status`: what is in flight, interrupted or stuck, without changing anything.

use crate::cli::StatusArgs;
use crate::error::Result;
use crate::journal::{self, Journal};
use crate::json::{self, BatchLine, PreparedLine, StatusResult};
use crate::lock;
use crate::repo::Repo;

/// Runs `status` and returns the exit status.
pub fn run(args: &StatusArgs) -> i32 {
    match status() {
        Ok(result) => {
            if args.json {
                json::print(&result);
            } else if result.batches.is_empty() {
                println!("no batch in flight or interrupted");
                print_hook_line(result.hook_installed);
                print_prepared(&result.prepared);
            } else {
                print_prepared(&result.prepared);
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
        Err(e) => e.report(),
    }
}

fn status() -> Result<StatusResult> {
    let repo = Repo::discover()?;
    let state_dir = repo.state_dir();
    let live = lock::is_held(&state_dir)?;
    let mut batches = Vec::new();
    for batch in state_dir.batch_dirs()? {
        let id = batch.id();
        let conflicts: Vec<String> = std::fs::read_to_string(batch.conflict())
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
        if let Journal::Intact { record, committed } = journal::read(&batch.journal())? {
            line.committed = committed;
            line.refs = record.ref_targets();
            line.files = record.paths();
            line.message = Some(record.message);
        }
        batches.push(line);
    }
    let hook_installed = crate::hook::hooks_dir(&repo).ok().map(|dir| crate::hook::is_installed(&dir));
    let prepared = prepared_lines(&state_dir)?;
    Ok(StatusResult { batches, hook_installed, prepared })
}

/// The prepared batches, with the refs and paths each reserves.
fn prepared_lines(state_dir: &crate::state::StateDir) -> Result<Vec<PreparedLine>> {
    let mut lines = Vec::new();
    for (dir, xa, record) in crate::prepared::all(state_dir)? {
        let mut line =
            PreparedLine { xid: xa.xid, id: dir.id(), since: xa.since, refs: vec![], files: vec![] };
        if let Some(record) = record {
            line.refs = record.ref_targets();
            line.files = record.paths();
        }
        lines.push(line);
    }
    Ok(lines)
}

fn print_prepared(prepared: &[PreparedLine]) {
    for p in prepared {
        println!("prepared {} ({}): {} ref(s), {} file(s)", p.xid, p.id, p.refs.len(), p.files.len());
    }
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
