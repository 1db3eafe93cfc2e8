//! The repository a command works on, found exactly as git finds it (`GIT_DIR`, `GIT_WORK_TREE`,
//! linked worktrees, bare repositories), with a gix handle for the read side.

use crate::config::Settings;
use crate::error::{Error, Kind, Result};
use crate::git::{Git, find_git};
use std::path::{Path, PathBuf};

/// One repository as git sees it from the current directory.
pub struct Repo {
    pub git: Git,
    /// This worktree's git dir (`.git`, or `.git/worktrees/<name>` in a linked worktree).
    pub git_dir: PathBuf,
    /// The dir shared by all worktrees; our state lives in its `atomic/`.
    pub common_dir: PathBuf,
    /// The root of the work tree; `None` for a bare repository.
    pub work_tree: Option<PathBuf>,
    pub gix: gix::Repository,
    pub settings: Settings,
}

impl Repo {
    /// Asks git where the repository is (its rules for `GIT_DIR` and friends are subtle, and gix
    /// differs from them), then opens it with gix.
    pub fn discover() -> Result<Self> {
        let exe = find_git()?;
        let out = std::process::Command::new(&exe)
            .args([
                "rev-parse",
                "--path-format=absolute",
                "--git-dir",
                "--git-common-dir",
            ])
            .args([
                "--is-bare-repository",
                "--is-inside-work-tree",
                "--show-cdup",
            ])
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| Error::fatal(format!("cannot run '{}': {e}", exe.display())))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg = msg.trim().trim_start_matches("fatal: ");
            return Err(Error::new(Kind::Fatal, msg.to_string()));
        }
        let text =
            String::from_utf8(out.stdout).map_err(|_| Error::fatal("non-UTF-8 repository path"))?;
        let lines: Vec<&str> = text.lines().collect();
        let [git_dir, common_dir, bare, inside, rest @ ..] = lines.as_slice() else {
            return Err(Error::fatal("cannot read the output of `git rev-parse`"));
        };
        let work_tree = if *bare == "true" {
            None
        } else if *inside == "true" {
            let cdup = rest.first().copied().unwrap_or("");
            Some(
                std::env::current_dir()
                    .map_err(|e| Error::fatal(e.to_string()))?
                    .join(cdup),
            )
        } else {
            show_toplevel(&exe)
        };
        let work_tree = work_tree.map(|p| p.canonicalize().unwrap_or(p));
        Self::open(
            exe,
            PathBuf::from(git_dir),
            PathBuf::from(common_dir),
            work_tree,
        )
    }

    /// Opens a repository whose directories are already known (recovery of another worktree's batch).
    pub fn open(
        exe: PathBuf,
        git_dir: PathBuf,
        common_dir: PathBuf,
        work_tree: Option<PathBuf>,
    ) -> Result<Self> {
        let gix = gix::open(&git_dir).map_err(|e| {
            Error::fatal(format!(
                "cannot open repository '{}': {e}",
                git_dir.display()
            ))
        })?;
        let settings = Settings::load(&gix)?;
        let git = Git::new(exe, git_dir.clone(), work_tree.clone());
        Ok(Repo {
            git,
            git_dir,
            common_dir,
            work_tree,
            gix,
            settings,
        })
    }

    /// Where every batch's journal and staged files live (SPEC §5).
    pub fn state_dir(&self) -> PathBuf {
        self.common_dir.join("atomic")
    }

    /// The work tree, or the error a bare repository gets for a batch with files.
    pub fn require_work_tree(&self) -> Result<&Path> {
        self.work_tree.as_deref().ok_or_else(|| {
            Error::invalid("a bare repository takes only refs")
                .hint("remove the files section of the batch")
        })
    }
}

/// The work tree git uses when the current directory is outside it (`GIT_WORK_TREE` elsewhere).
fn show_toplevel(exe: &Path) -> Option<PathBuf> {
    let out = std::process::Command::new(exe)
        .args(["rev-parse", "--show-toplevel"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim();
    (out.status.success() && !line.is_empty()).then(|| PathBuf::from(line))
}
