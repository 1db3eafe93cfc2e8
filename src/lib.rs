//! git-atomic: a batch of ref changes and work-tree file changes, applied all-or-nothing and
//! recovered after a crash at any instant. The modules follow the data: parse → validate →
//! check → stage (plan, journal, write contents) → refs → files, with `recover` reusing refs and
//! files from the journal; `commands/` drives them. Below the pipeline, and importing none of
//! it: the repository (repo, git, config, refstore), the work tree's paths (paths), durability
//! (durable), the `.git/atomic/` tree (state, lock), and the journal (record, journal).

pub mod boot;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod crash;
pub mod dirs;
pub mod durable;
pub mod error;
pub mod files;
pub mod git;
pub mod history;
pub mod hook;
pub mod journal;
pub mod json;
pub mod leftovers;
pub mod limits;
pub mod lock;
pub mod lsp;
pub mod parse;
pub mod paths;
pub mod prepared;
pub mod progress;
pub mod record;
pub mod recover;
pub mod refs;
pub mod refstore;
pub mod repo;
pub mod stage;
pub mod state;
pub mod trace;
pub mod twophase;
pub mod validate;
pub mod xa;
pub mod yaml;

use clap::Parser;

/// Parses the command line, runs one command and returns its exit status.
pub fn run() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // A bad command line is invalid (exit 2); `-h` and `--version` succeed.
            let code = if e.use_stderr() { error::Kind::Invalid.exit_code() } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match &cli.command {
        cli::Command::Apply(args) => commands::apply::run(args),
        cli::Command::Recover(args) => commands::recover::run(args),
        cli::Command::Status(args) => commands::status::run(args),
        cli::Command::Hook(args) => commands::hook::run(args),
        cli::Command::Prepare(args) => commands::twophase::prepare(args),
        cli::Command::Commit(args) => commands::twophase::commit(args),
        cli::Command::Abort(args) => commands::twophase::abort(args),
        cli::Command::Log(args) => commands::log::run(args),
        cli::Command::Undo(args) => commands::undo::run(args, false),
        cli::Command::Redo(args) => commands::undo::run(args, true),
    }
}
