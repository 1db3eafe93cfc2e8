//! The whole command line, in one place: `-h`, `--help` and the shell completions come from
//! here. The man page (`man/git-atomic.1`) is written by hand; tests/packaging.rs checks that it
//! names every subcommand and option this file defines, and no other.

use clap::{Args, CommandFactory, Parser, Subcommand};
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
    /// The transaction id to commit or abort it by: 1-128 of [A-Za-z0-9._:-].
    #[arg(long, value_name = "XID")]
    pub xid: String,
    /// The batch file; '-' or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Prepare even without the reference-transaction hook installed.
    ///
    /// Plain git can then move a reserved ref, and commit is refused.
    #[arg(long)]
    pub no_hook_check: bool,
    #[command(flatten)]
    pub batch: BatchOptions,
}

/// `--wait`, `-m` and `--quiet`: the options of the commands that run a batch (apply, prepare),
/// defined once so that their help cannot drift apart. In this order: `-h` and the completions
/// list options as they are declared.
#[derive(Debug, Args)]
pub struct BatchOptions {
    #[arg(long, value_name = "SECS", help = WAIT_HELP)]
    pub wait: Option<f64>,
    /// Reflog message for every changed ref (instead of 'message').
    #[arg(short = 'm', long = "message", value_name = "MSG")]
    pub message: Option<String>,
    #[arg(short, long, help = QUIET_HELP)]
    pub quiet: bool,
}

/// `--wait` and `--quiet`: the options of the commands that take the batch lock to finish or
/// invert a batch (commit, abort, undo, redo); their help is [`BatchOptions`]'s, written once in
/// [`WAIT_HELP`] and [`QUIET_HELP`] (and a unit test below keeps the two the same).
#[derive(Debug, Args)]
pub struct LockOptions {
    #[arg(long, value_name = "SECS", help = WAIT_HELP)]
    pub wait: Option<f64>,
    #[arg(short, long, help = QUIET_HELP)]
    pub quiet: bool,
}

/// The help of `--wait` in [`BatchOptions`] and [`LockOptions`] (`recover`'s waits for a running
/// batch to finish, and says so). No final period, as for [`JSON_HELP`].
const WAIT_HELP: &str = "Seconds to wait for another batch (default: atomic.lockTimeout)";

/// The help of `--quiet` in [`BatchOptions`] and [`LockOptions`].
const QUIET_HELP: &str = "Print nothing on success";

/// The help of `--json` in apply, undo, redo, recover and status, which all print one result
/// object, written once so that it cannot drift (`log`'s prints an array, and says so). A
/// constant, not a flattened struct, so that the commands read `args.json` itself. No final
/// period: clap drops a doc comment's, and shows a `help` as written.
const JSON_HELP: &str = "Print the result as one JSON object on stdout";

/// Options of `git atomic commit` and `git atomic abort`.
#[derive(Debug, Args)]
pub struct XidArgs {
    /// The XID the batch was prepared under.
    #[arg(long, value_name = "XID")]
    pub xid: String,
    #[command(flatten)]
    pub lock: LockOptions,
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
    #[arg(long, help = JSON_HELP)]
    pub json: bool,
    #[command(flatten)]
    pub lock: LockOptions,
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
    /// Install the hook here, chaining a reference-transaction hook already there.
    ///
    /// Into the hooks directory git uses (core.hooksPath honoured).
    Install(HookInstallArgs),
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

/// Options of `git atomic hook install`.
#[derive(Debug, Args)]
pub struct HookInstallArgs {
    /// Install into git's init.templateDir (or DIR), for new clones and inits.
    ///
    /// A DIR becomes init.templateDir when that is unset; core.hooksPath is never set.
    #[arg(long, value_name = "DIR", num_args = 0..=1, require_equals = true)]
    pub template: Option<Option<PathBuf>>,
}

/// Options of `git atomic apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The batch file; '-' or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Validate and check every precondition, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, help = JSON_HELP)]
    pub json: bool,
    #[command(flatten)]
    pub batch: BatchOptions,
    /// Let 'source:' copy a regular file from outside the work tree.
    ///
    /// For an editor's temporary file; without it a source must be a file of the work tree,
    /// outside .git.
    #[arg(long)]
    pub allow_source_outside: bool,
    /// Read an LSP WorkspaceEdit (JSON) instead of a batch.
    ///
    /// ApplyWorkspaceEditParams, as an editor sends it, is read too.
    #[arg(long)]
    pub lsp: bool,
    /// With --lsp: 'character' counts utf-8, utf-16 (default) or utf-32.
    #[arg(long, value_name = "ENC", requires = "lsp", value_parser = ["utf-8", "utf-16", "utf-32"])]
    #[arg(hide_possible_values = true)]
    pub position_encoding: Option<String>,
    /// With --lsp: print the equivalent batch (JSON), apply nothing.
    #[arg(long, requires = "lsp")]
    pub emit_batch: bool,
}

/// Options of `git atomic recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[arg(long, help = JSON_HELP)]
    pub json: bool,
    /// Seconds to wait for a running batch to finish.
    #[arg(long, value_name = "SECS")]
    pub wait: Option<f64>,
    /// Give up on batch ID (after exit 3), keeping its refs and files as they are.
    ///
    /// Its journal and staged contents move to .git/atomic/abandoned/ID.
    #[arg(long, value_name = "ID")]
    pub abandon: Option<String>,
}

/// Options of `git atomic status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, help = JSON_HELP)]
    pub json: bool,
}

/// The name `completions` is caught before the command line is parsed (see `main.rs`): a hidden
/// command that install.sh runs, outside the user's command tree.
pub const COMPLETIONS: &str = "completions";

/// Prints the completion script for `shell` (bash, zsh, fish, elvish, powershell), generated
/// from the definition above so that it cannot drift from it; returns the exit status.
pub fn print_completions(shell: Option<&str>) -> i32 {
    let Some(shell) = shell.and_then(|s| s.parse::<clap_complete::Shell>().ok()) else {
        eprintln!("usage: git atomic completions (bash | zsh | fish | elvish | powershell)");
        return crate::error::Kind::Invalid.exit_code();
    };
    let script = match shell {
        clap_complete::Shell::Bash => bash_completions(),
        _ => generate(shell, "git-atomic"),
    };
    use std::io::Write as _;
    match std::io::stdout().write_all(script.as_bytes()) {
        Ok(()) => 0,
        Err(e) => crate::error::Error::fatal(format!("cannot write the completions: {e}")).report(),
    }
}

/// The generator's script for `shell`, for a command named `bin_name`.
fn generate(shell: clap_complete::Shell, bin_name: &'static str) -> String {
    let mut cli = visible(&Cli::command()).name(bin_name).bin_name(bin_name);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cli, bin_name, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `cmd` as people use it, for the completions: without its hidden subcommands and options (the
/// hook's own, `recover-after`, …), at every level, which clap_complete's generators offer like
/// any other. clap cannot remove a subcommand, so the command is built anew from what the
/// generators read of it: names, descriptions, options, subcommands and the settings they go by.
fn visible(cmd: &clap::Command) -> clap::Command {
    // The new command's strings must be 'static: this runs once, in a process that then exits.
    let leak = |text: &str| -> &'static str { Box::leak(text.to_string().into_boxed_str()) };
    let mut shown = clap::Command::new(leak(cmd.get_name()))
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).map(visible))
        .disable_help_subcommand(cmd.is_disable_help_subcommand_set())
        .subcommand_required(cmd.is_subcommand_required_set())
        .arg_required_else_help(cmd.is_arg_required_else_help_set());
    if let Some(about) = cmd.get_about() {
        shown = shown.about(about.clone());
    }
    if let Some(about) = cmd.get_long_about() {
        shown = shown.long_about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        shown = shown.version(leak(version));
    }
    shown
}

/// The bash script: clap_complete's, generated for the name `git_atomic` (its bash generator
/// mangles a name with a '-' in two different ways, and then completes no option) and renamed
/// `_git_atomic_clap` for the command `git-atomic`, then [`BASH_GIT_GLUE`].
fn bash_completions() -> String {
    let script = generate(clap_complete::Shell::Bash, "git_atomic")
        .replace("_git_atomic() {", "_git_atomic_clap() {")
        .replace("-F _git_atomic ", "-F _git_atomic_clap ")
        .replace("-o default git_atomic\n", "-o default git-atomic\n");
    script + BASH_GIT_GLUE
}

/// git's own bash completion completes `git atomic …` by calling `_git_atomic` (after loading
/// this file through `_completion_loader git-atomic`), with its words in `words`, `cword` and
/// `__git_cmd_idx`: this hands them to the generated function as if `git-atomic` had been
/// typed, and adds the space that git's `-o nospace` completion leaves to each function.
const BASH_GIT_GLUE: &str = r#"
# `git atomic <TAB>` through git's bash completion.
_git_atomic() {
    local idx=${__git_cmd_idx:-1}
    local COMP_WORDS=(git-atomic "${words[@]:idx+1}")
    local COMP_CWORD=$((cword - idx))
    _git_atomic_clap git-atomic "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    local i
    for i in "${!COMPREPLY[@]}"; do
        [[ -d ${COMPREPLY[i]} ]] || COMPREPLY[i]+=" "
    done
}
"#;

#[cfg(test)]
mod tests {
    use super::{BatchOptions, Cli, LockOptions, visible};
    use clap::{Args as _, CommandFactory as _};

    /// What `-h` and the completions show of option `id` of an options struct.
    fn shown(cmd: &clap::Command, id: &str) -> String {
        let arg = cmd.get_arguments().find(|a| a.get_id() == id).expect("the option exists");
        let help = arg.get_help().map(ToString::to_string);
        format!("{:?} {:?} {:?} {help:?}", arg.get_short(), arg.get_long(), arg.get_value_names())
    }

    #[test]
    fn lock_options_read_as_batch_options_word_for_word() {
        let batch = BatchOptions::augment_args(clap::Command::new("batch"));
        let lock = LockOptions::augment_args(clap::Command::new("lock"));
        for id in ["wait", "quiet"] {
            assert_eq!(shown(&lock, id), shown(&batch, id), "--{id} drifted");
        }
        assert!(shown(&batch, "wait").contains("Seconds to wait"), "{}", shown(&batch, "wait"));
    }

    #[test]
    fn every_json_result_option_reads_the_same() {
        let cli = Cli::command();
        let json = |name: &str| shown(cli.find_subcommand(name).expect("the subcommand exists"), "json");
        for name in ["apply", "undo", "redo", "recover", "status"] {
            assert_eq!(json(name), json("apply"), "{name}'s --json drifted");
        }
        assert!(json("status").contains("one JSON object"), "{}", json("status"));
        assert_ne!(json("log"), json("apply"), "log prints an array");
    }

    /// Every subcommand path of `cmd`, with its long options, hidden ones left out when `all` is false.
    fn tree(cmd: &clap::Command, path: &str, all: bool, out: &mut Vec<String>) {
        let longs = cmd.get_arguments().filter(|a| all || !a.is_hide_set()).filter_map(|a| a.get_long());
        out.push(format!("{path}: {}", longs.collect::<Vec<_>>().join(" ")));
        for sub in cmd.get_subcommands().filter(|s| all || !s.is_hide_set()) {
            tree(sub, &format!("{path} {}", sub.get_name()), all, out);
        }
    }

    #[test]
    fn the_completions_tree_is_the_visible_one() {
        let (mut shown, mut wanted) = (Vec::new(), Vec::new());
        tree(&visible(&Cli::command()), "", true, &mut shown);
        tree(&Cli::command(), "", false, &mut wanted);
        assert_eq!(shown, wanted);
        assert!(wanted.iter().any(|p| p.starts_with(" hook install:")), "{wanted:?}");
        let mut all = Vec::new();
        tree(&Cli::command(), "", true, &mut all);
        assert!(all.iter().any(|p| p.starts_with(" hook recover-after:")), "{all:?}");
    }

    #[test]
    fn hidden_options_and_subcommands_are_left_out_at_every_level() {
        let arg = |name: &'static str, hide: bool| clap::Arg::new(name).long(name).hide(hide);
        let cmd =
            clap::Command::new("top").about("a tool").version("1.0").arg(arg("shown", false)).subcommand(
                clap::Command::new("sub")
                    .arg(arg("kept", false))
                    .arg(arg("secret", true))
                    .subcommand(clap::Command::new("inner").hide(true))
                    .subcommand(clap::Command::new("open")),
            );
        let mut out = Vec::new();
        tree(&visible(&cmd), "", true, &mut out);
        assert_eq!(out, [": shown", " sub: kept", " sub open: "]);
        let shown = visible(&cmd);
        assert_eq!(
            (shown.get_about().map(ToString::to_string), shown.get_version()),
            (Some("a tool".into()), Some("1.0"))
        );
    }
}
