//! The `reference-transaction` hook (SPEC §6): isolation from plain git while a batch is
//! interrupted, and recovery by the next ref-changing git command. The shell script in
//! `hooks/` filters out the common case (nothing pending) with builtins only; this is what runs
//! when a journal exists. It never waits for the batch lock (no deadlock), never fails the
//! user's command after `committed`/`aborted`, and our own update-ref runs are marked with
//! [`OWN_TRANSACTION_ENV`] so that recovery's own transactions do not recurse.

use crate::error::{Error, IoContext, Result};
use crate::git::OWN_TRANSACTION_ENV;
use crate::journal::{self, Journal};
use crate::lock;
use crate::recover::{Action, recover_all};
use crate::repo::Repo;
use std::collections::BTreeSet;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The line that identifies our hook script (and so tells install and status it is ours).
pub const MARKER: &str = "# git-atomic reference-transaction hook";
/// Suffix of a hook that was installed before ours and now runs chained behind it.
pub const CHAINED_SUFFIX: &str = ".git-atomic-chained";
/// The hook script, with the installing binary's path filled in as its fallback.
pub const TEMPLATE: &str = include_str!("../hooks/reference-transaction");

/// Runs the hook for `state` (stdin: git's `<old> <new> <ref>` lines) and returns its status.
pub fn reference_transaction(state: &str) -> i32 {
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    if std::env::var_os(OWN_TRANSACTION_ENV).is_none() {
        let status = match state {
            "prepared" => refuse_if_touching(&input),
            "committed" | "aborted" => {
                if has_work_for_recovery() {
                    recover_once_git_exits();
                }
                0
            }
            _ => 0, // states this version does not know (git 2.54's "preparing") pass
        };
        if status != 0 {
            return status;
        }
    }
    run_chained(state, &input)
}

/// In `prepared`: a transaction that touches a ref of an interrupted batch is refused.
fn refuse_if_touching(input: &[u8]) -> i32 {
    let touched: BTreeSet<String> = String::from_utf8_lossy(input)
        .lines()
        .filter_map(|l| l.split(' ').nth(2))
        .map(str::to_string)
        .collect();
    match prepared_batch_touching(&touched) {
        Ok(Some((xid, name))) => {
            eprintln!(
                "error: ref '{name}' is reserved by prepared git-atomic batch {xid}; 'git atomic commit --xid {xid}' or 'abort --xid {xid}' first"
            );
            return 1;
        }
        Ok(None) => {}
        Err(e) => eprintln!("warning: git atomic hook: {e}"),
    }
    match interrupted_batch_touching(&touched) {
        Ok(Some((id, name))) => {
            eprintln!(
                "error: ref '{name}' belongs to interrupted git-atomic batch {id}; run 'git atomic recover' first"
            );
            1
        }
        Ok(None) => 0,
        Err(e) => {
            // Refusing on our own failure would break every git command: report and let it pass.
            eprintln!("warning: git atomic hook: {e}");
            0
        }
    }
}

/// A prepared batch holds no git lock and no batch lock: its reservation is read without either.
fn prepared_batch_touching(touched: &BTreeSet<String>) -> Result<Option<(String, String)>> {
    let repo = Repo::discover()?;
    crate::prepared::touching(&repo.state_dir(), &repo.git_dir, touched)
}

/// Whether a batch is interrupted, or a prepared one has something to finish: a prepared batch
/// alone starts no recovery after every git command.
fn has_work_for_recovery() -> bool {
    let Ok(repo) = Repo::discover() else { return true };
    let state_dir = repo.state_dir();
    !state_dir.batch_dirs().is_ok_and(|dirs| dirs.is_empty()) || crate::twophase::needs_recovery(&state_dir)
}

fn interrupted_batch_touching(touched: &BTreeSet<String>) -> Result<Option<(String, String)>> {
    let repo = Repo::discover()?;
    let state_dir = repo.state_dir();
    // A live owner holds the lock: its batch is in flight, not interrupted, and git's own ref
    // locks already keep this transaction off its refs.
    let Some(_lock) = lock::try_acquire(&state_dir)? else {
        return Ok(None);
    };
    for batch in state_dir.batch_dirs()? {
        if let Journal::Intact { record, .. } = journal::read(&batch.journal())? {
            // `HEAD` and other per-worktree refs of a batch are those of the worktree it ran in.
            if let Some(name) = record.ref_touched(&repo.git_dir, touched) {
                return Ok(Some((record.id.clone(), name.clone())));
            }
        }
    }
    Ok(None)
}

/// In `committed`/`aborted`: recovery must not run inside this hook. git may still hold locks
/// (a delete of a packed ref runs a nested packed-refs transaction whose `committed` comes while
/// the outer transaction holds its ref locks): recovering there would take or delete those locks,
/// or wait on them forever. So a detached `git atomic hook recover-after <git's pid>` waits for
/// the git command to exit, then recovers; the user's command is never slowed or failed by it.
fn recover_once_git_exits() {
    use std::os::unix::process::CommandExt;
    let git_pid = std::os::unix::process::parent_id();
    let Ok(exe) = std::env::current_exe() else { return };
    let spawned = Command::new(exe)
        .args(["hook", "recover-after", &git_pid.to_string()])
        // No inherited pipe: whoever reads git's output must see it end when git does.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = spawned {
        eprintln!("warning: git atomic hook could not start recovery: {e}");
    }
}

/// Waits for process `pid` (the git command that ran the hook) to exit, then recovers every
/// interrupted batch. Nobody sees its output or status: what it could not do, the next
/// `git atomic` command reports.
pub fn recover_after(pid: u32) -> i32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while is_running(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let result = (|| -> Result<()> {
        let repo = Repo::discover()?;
        let wait = std::time::Duration::from_secs(repo.settings.lock_timeout);
        let lock = lock::acquire(&repo.state_dir(), wait)?;
        let prepared = crate::twophase::recover_prepared(&repo, &lock, true)?;
        for recovered in recover_all(&repo, &lock, true)?.into_iter().chain(prepared) {
            if let Action::Conflict(why) = recovered.action {
                eprintln!("warning: git-atomic batch {} needs attention: {}", recovered.id, why.join("; "));
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("warning: git atomic could not recover after the hook: {e}");
    }
    0
}

/// Whether `pid` still runs (a zombie, exited but not yet reaped, holds no lock any more).
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state follows the command name, which is in parentheses and may contain anything.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Runs the hook that was installed before ours, with the same arguments and input.
fn run_chained(state: &str, input: &[u8]) -> i32 {
    let Some(hook) = std::env::var_os("GIT_ATOMIC_HOOK") else {
        return 0;
    };
    let chained = PathBuf::from(format!("{}{CHAINED_SUFFIX}", Path::new(&hook).display()));
    if !chained.is_file() {
        return 0;
    }
    let child = Command::new(&chained).arg(state).stdin(Stdio::piped()).spawn();
    let Ok(mut child) = child else {
        eprintln!("error: cannot run '{}'", chained.display());
        return 1;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // Like git, ignore a hook that exits without reading its input.
        let _ = stdin.write_all(input);
    }
    child.wait().ok().and_then(|s| s.code()).unwrap_or(1)
}

/// The hooks directory git uses for this repository (`core.hooksPath` honoured).
pub fn hooks_dir(repo: &Repo) -> Result<PathBuf> {
    let out = repo.git.run(&["rev-parse", "--path-format=absolute", "--git-path", "hooks"], None)?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim()))
}

/// Whether our hook is installed in `hooks_dir`.
pub fn is_installed(hooks_dir: &Path) -> bool {
    std::fs::read_to_string(hooks_dir.join("reference-transaction")).is_ok_and(|t| t.contains(MARKER))
}

/// Installs our hook into this repository, chaining (never replacing) a hook already there.
pub fn install(repo: &Repo) -> Result<String> {
    install_into(&hooks_dir(repo)?)
}

/// Installs our hook into git's template directory (`init.templateDir`, or `dir`, which becomes
/// `init.templateDir` when that is unset), so that every `git init` and `git clone` gets it.
/// `core.hooksPath` is never set: it would take over the hooks of every repository.
pub fn install_template(dir: Option<&Path>) -> Result<String> {
    let git = crate::git::find_git()?;
    let configured = template_dir_setting(&git)?;
    let template = match (dir, &configured) {
        (None, Some(configured)) => configured.clone(),
        (None, None) => {
            return Err(Error::invalid("init.templateDir is not set, so there is no template to install into")
                .hint("pass a directory, which becomes init.templateDir: git atomic hook install --template=\"$HOME/.git-template\"")
                .hint("or set it yourself: 'git config --global init.templateDir <dir>'"));
        }
        (Some(dir), _) => {
            std::path::absolute(dir).io_context(|| format!("cannot resolve '{}'", dir.display()))?
        }
    };
    if let (Some(configured), Some(_)) = (&configured, dir)
        && configured != &template
    {
        return Err(Error::invalid(format!(
            "init.templateDir is '{}', not '{}': git would not use the hook there",
            configured.display(),
            template.display()
        ))
        .hint("run 'git atomic hook install --template' to install into init.templateDir"));
    }
    let mut note = install_into(&template.join("hooks"))?;
    if configured.is_none() {
        set_template_dir(&git, &template)?;
        note.push_str(&format!(
            "\nset init.templateDir to '{}' in your global git config",
            template.display()
        ));
    }
    note.push_str("\nnew repositories (git init, git clone) get the hook; for existing ones run 'git atomic hook install' in each");
    Ok(note)
}

/// `init.templateDir` as git reads it for a new repository: global and system config, `~`
/// expanded; a repository's own config plays no part, so it runs outside any repository.
fn template_dir_setting(git: &Path) -> Result<Option<PathBuf>> {
    let out = Command::new(git)
        .args(["config", "--path", "--get", "init.templateDir"])
        .current_dir("/")
        .env_remove("GIT_DIR")
        .stderr(Stdio::inherit())
        .output()
        .io_context(|| format!("cannot run '{}'", git.display()))?;
    let value = String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string();
    Ok((out.status.success() && !value.is_empty()).then(|| PathBuf::from(value)))
}

/// Sets `init.templateDir` in the user's global config (never `core.hooksPath`).
fn set_template_dir(git: &Path, dir: &Path) -> Result<()> {
    let status = Command::new(git)
        .args(["config", "--global", "init.templateDir"])
        .arg(dir)
        .current_dir("/")
        .env_remove("GIT_DIR")
        .status()
        .io_context(|| format!("cannot run '{}'", git.display()))?;
    if !status.success() {
        return Err(Error::fatal("cannot set init.templateDir in the global git config"));
    }
    Ok(())
}

/// Installs our hook into the hooks directory `dir`, chaining a hook already there.
fn install_into(dir: &Path) -> Result<String> {
    let hook = dir.join("reference-transaction");
    let script = script_for_this_binary()?;
    if is_installed(dir) {
        write_hook(&hook, &script)?;
        return Ok(format!("hook already installed in '{}'", dir.display()));
    }
    std::fs::create_dir_all(dir).io_context(|| format!("cannot create '{}'", dir.display()))?;
    let chained = dir.join(format!("reference-transaction{CHAINED_SUFFIX}"));
    let mut note = format!("installed the reference-transaction hook in '{}'", dir.display());
    if std::fs::symlink_metadata(&hook).is_ok() {
        if std::fs::symlink_metadata(&chained).is_ok() {
            return Err(Error::fatal(format!("'{}' exists already", chained.display()))
                .hint("move it away; git atomic keeps the previous hook under that name"));
        }
        std::fs::rename(&hook, &chained).io_context(|| format!("cannot move '{}'", hook.display()))?;
        note.push_str(", chaining the hook that was there");
    }
    write_hook(&hook, &script)?;
    Ok(note)
}

/// Removes our hook and puts back the one it chained, exactly as it was.
pub fn uninstall(repo: &Repo) -> Result<String> {
    let dir = hooks_dir(repo)?;
    if !is_installed(&dir) {
        return Err(Error::invalid(format!("no git-atomic hook is installed in '{}'", dir.display())));
    }
    let hook = dir.join("reference-transaction");
    let chained = dir.join(format!("reference-transaction{CHAINED_SUFFIX}"));
    if std::fs::symlink_metadata(&chained).is_ok() {
        std::fs::rename(&chained, &hook).io_context(|| format!("cannot restore '{}'", hook.display()))?;
        return Ok(format!("removed the hook from '{}' and restored the previous one", dir.display()));
    }
    std::fs::remove_file(&hook).io_context(|| format!("cannot remove '{}'", hook.display()))?;
    Ok(format!("removed the hook from '{}'", dir.display()))
}

/// The script with this binary's absolute path, the fallback when no `git-atomic` is on the
/// PATH git gives its hooks (its exec-path first), so the hook also works without PATH.
fn script_for_this_binary() -> Result<String> {
    let exe = std::env::current_exe().io_context(|| "cannot find the git-atomic binary".into())?;
    let exe = exe.to_string_lossy();
    if exe.contains('\'') {
        return Err(Error::fatal(format!("cannot install a hook for a binary path with a quote: {exe}")));
    }
    Ok(TEMPLATE.replacen("GIT_ATOMIC='git-atomic'", &format!("GIT_ATOMIC='{exe}'"), 1))
}

/// Writes the hook through a temp file and a rename, executable.
fn write_hook(hook: &Path, script: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let temp = hook.with_extension("git-atomic-tmp");
    std::fs::write(&temp, script).io_context(|| format!("cannot write '{}'", temp.display()))?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))
        .io_context(|| format!("cannot chmod '{}'", temp.display()))?;
    std::fs::rename(&temp, hook).io_context(|| format!("cannot install '{}'", hook.display()))
}
