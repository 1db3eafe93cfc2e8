//! The whole command line, in one place: `-h` and `--help` come from here. The man page
//! (`man/git-atomic.1`) is written by hand and must be kept in step with it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Apply a batch of ref and work-tree changes all-or-nothing, surviving a crash at any instant.
#[derive(Debug, Parser)]
#[command(name = "git atomic", bin_name = "git atomic", version, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of SPEC §3.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply a batch (YAML or JSON) from FILE, or from stdin when FILE is '-' or omitted.
    Apply(ApplyArgs),
    /// Finish or roll back every interrupted batch now.
    Recover(RecoverArgs),
    /// Show in-flight and interrupted batches, and whether the hook is installed.
    Status(StatusArgs),
    /// Install or remove the reference-transaction hook.
    Hook(HookArgs),
    /// Two-phase commit: journal and stage a batch, and keep it prepared under XID.
    Prepare(PrepareArgs),
    /// Two-phase commit: commit the batch prepared under XID.
    Commit(XidArgs),
    /// Two-phase commit: drop the batch prepared under XID.
    Abort(XidArgs),
    /// Batches that changed something, and every recovery, newest first; with ID, that one.
    Log(LogArgs),
    /// Apply the inverse of a completed batch (default: the newest not undone) as a new batch.
    Undo(UndoArgs),
    /// Re-apply the batch most recently undone.
    Redo(UndoArgs),
}

/// Options of `git atomic prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The transaction id the coordinator commits or aborts it by: 1-128 of [A-Za-z0-9._:-].
    #[arg(long, value_name = "XID")]
    pub xid: String,
    /// The batch file; '-' or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Prepare even when the reference-transaction hook is not installed (plain git can then
    /// move a reserved ref, and commit is refused).
    #[arg(long)]
    pub no_hook_check: bool,
    /// Seconds to wait for another batch to finish (default: atomic.lockTimeout, 10).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
    /// Reflog message for every changed ref (overrides the batch's 'message').
    #[arg(short = 'm', long = "message", value_name = "MSG")]
    pub message: Option<String>,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Options of `git atomic commit` and `git atomic abort`.
#[derive(Debug, Args)]
pub struct XidArgs {
    /// The XID the batch was prepared under.
    #[arg(long, value_name = "XID")]
    pub xid: String,
    /// Seconds to wait for another batch to finish (default: atomic.lockTimeout, 10).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Options of `git atomic log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Show this batch in full.
    pub id: Option<String>,
    /// Show at most N entries.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max_count: Option<usize>,
    /// Print a JSON array of entries on stdout.
    #[arg(long)]
    pub json: bool,
    /// Remove the oldest entries beyond atomic.logLimit now.
    #[arg(long)]
    pub prune: bool,
}

/// Options of `git atomic undo` and `redo`.
#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The batch to undo (undo only; default: the newest not undone in this work tree).
    pub id: Option<String>,
    /// Check that the batch can be undone, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for another batch to finish (default: atomic.lockTimeout, 10).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `git atomic hook …`.
#[derive(Debug, Args)]
pub struct HookArgs {
    #[command(subcommand)]
    pub action: HookAction,
}

/// What to do with the hook.
#[derive(Debug, Subcommand)]
pub enum HookAction {
    /// Install the hook into this repository's hooks directory (core.hooksPath honoured),
    /// chaining any reference-transaction hook already there.
    Install,
    /// Remove the hook and restore the one it chained.
    Uninstall,
    /// What the installed hook runs; not for people.
    #[command(name = "reference-transaction", hide = true)]
    ReferenceTransaction {
        /// The transaction state git passes (prepared, committed, aborted, …).
        state: String,
    },
    /// What the hook starts after a transaction: recover once git (PID) has exited.
    #[command(name = "recover-after", hide = true)]
    RecoverAfter {
        /// The git process that ran the hook.
        pid: u32,
    },
}

/// Options of `git atomic apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The batch file; '-' or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Validate and check every precondition, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for another batch to finish (default: atomic.lockTimeout, 10).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
    /// Reflog message for every changed ref (overrides the batch's 'message').
    #[arg(short = 'm', long = "message", value_name = "MSG")]
    pub message: Option<String>,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Let 'source:' copy a regular file from outside the work tree (an editor's temporary
    /// file); without it a source must be a file of the work tree, outside .git.
    #[arg(long)]
    pub allow_source_outside: bool,
    /// Read an LSP WorkspaceEdit or ApplyWorkspaceEditParams (JSON) instead of a batch.
    #[arg(long)]
    pub lsp: bool,
    /// With --lsp: the unit of positions' 'character' (utf-8, utf-16 or utf-32; default utf-16).
    #[arg(long, value_name = "ENC", requires = "lsp", value_parser = ["utf-8", "utf-16", "utf-32"])]
    pub position_encoding: Option<String>,
    /// With --lsp: print the equivalent batch (JSON) instead of applying it.
    #[arg(long, requires = "lsp")]
    pub emit_batch: bool,
}

/// Options of `git atomic recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for a running batch to finish.
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
    /// Give up on batch ID (after exit 3): keep refs and files as they are, move its journal and
    /// staged contents to .git/atomic/abandoned/ID.
    #[arg(long, value_name = "ID")]
    pub abandon: Option<String>,
}

/// Options of `git atomic status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}
