//! The repository a command works on, found exactly as git finds it (`GIT_DIR`, `GIT_WORK_TREE`,
//! linked worktrees, bare repositories), with a gix handle for the read side.

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::git::{self, Git, find_git};
use crate::refstore::RefDirs;
use crate::state::StateDir;
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
    /// Finds the repository from the current directory the way git does. Without `GIT_*`
    /// overrides gix's discovery matches git's and costs no process; with them, git itself is
    /// asked, because gix's rules for `GIT_DIR` and friends differ from git's (NOTES-git.md).
    pub fn discover() -> Result<Self> {
        let exe = find_git()?;
        if OVERRIDES.iter().all(|v| std::env::var_os(v).is_none()) {
            // Where gix finds nothing (inside a `.git` dir, say), git's own answer decides.
            let Ok(gix) = gix::discover(".") else { return Self::discover_with_git(exe) };
            let git_dir = absolute(gix.git_dir());
            let common_dir = absolute(gix.common_dir());
            let work_tree = gix.workdir().map(absolute);
            return Self::with_gix(exe, gix, git_dir, common_dir, work_tree);
        }
        Self::discover_with_git(exe)
    }

    /// Where the repository is when the current directory is the top of its work tree and no
    /// `GIT_*` variable moves it: a guess that opens nothing (a few `stat`s), so that `apply` can
    /// start git before [`Repo::discover`]; [`Repo::is_at`] then confirms it or not.
    pub fn guess() -> Option<Guess> {
        if OVERRIDES.iter().any(|v| std::env::var_os(v).is_some()) {
            return None;
        }
        let dot_git = Path::new(".git");
        if !dot_git.join("HEAD").is_file() || dot_git.join("commondir").exists() {
            return None; // no repository here, a `.git` file, or a linked worktree's git dir
        }
        let exe = find_git().ok()?;
        Some(Guess { exe, git_dir: absolute(dot_git), work_tree: absolute(Path::new(".")) })
    }

    /// Whether this is the repository `guess` names, spelled as [`Git`] pins it for git.
    pub fn is_at(&self, guess: &Guess) -> bool {
        self.git.exe() == guess.exe
            && self.git_dir == guess.git_dir
            && self.common_dir == guess.git_dir
            && self.work_tree.as_deref() == Some(guess.work_tree.as_path())
    }

    /// Opens the repository whose work tree (or bare directory) is exactly `dir`: a participant
    /// of a cross-repository batch, never a repository that merely contains `dir`.
    pub fn open_at(dir: &Path) -> Result<Self> {
        let exe = find_git()?;
        let not_a_repo = || Error::invalid(format!("'{}' is not the top of a git repository", dir.display()));
        let gix = gix::discover(dir).map_err(|_| not_a_repo())?;
        let git_dir = absolute(gix.git_dir());
        let common_dir = absolute(gix.common_dir());
        let work_tree = gix.workdir().map(absolute);
        let top = work_tree.clone().unwrap_or_else(|| git_dir.clone());
        let same = |a: &Path, b: &Path| {
            a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b)
        };
        if !same(&top, dir) {
            return Err(not_a_repo());
        }
        Self::with_gix(exe, gix, git_dir, common_dir, work_tree)
    }

    fn discover_with_git(exe: PathBuf) -> Result<Self> {
        let found = git::rev_parse_repository(&exe)?;
        let work_tree = found.work_tree.map(|p| absolute(&p));
        Self::open(exe, absolute(&found.git_dir), absolute(&found.common_dir), work_tree)
    }

    /// Opens a repository whose directories are already known (recovery of another worktree's batch).
    pub fn open(
        exe: PathBuf,
        git_dir: PathBuf,
        common_dir: PathBuf,
        work_tree: Option<PathBuf>,
    ) -> Result<Self> {
        let gix = gix::open(&git_dir)
            .map_err(|e| Error::fatal(format!("cannot open repository '{}': {e}", git_dir.display())))?;
        Self::with_gix(exe, gix, git_dir, common_dir, work_tree)
    }

    fn with_gix(
        exe: PathBuf,
        gix: gix::Repository,
        git_dir: PathBuf,
        common_dir: PathBuf,
        work_tree: Option<PathBuf>,
    ) -> Result<Self> {
        let settings = Settings::load(&gix)?;
        let git = Git::new(exe, git_dir.clone(), work_tree.clone());
        Ok(Repo { git, git_dir, common_dir, work_tree, gix, settings })
    }

    /// Where this worktree's loose refs live (per-worktree refs apart from shared ones).
    pub fn ref_dirs(&self) -> RefDirs {
        RefDirs { git_dir: self.git_dir.clone(), common_dir: self.common_dir.clone() }
    }

    /// Where every batch's journal and staged files live (SPEC §5).
    pub fn state_dir(&self) -> StateDir {
        StateDir::of(&self.common_dir)
    }

    /// The work tree, or the error a bare repository gets for a batch with files.
    pub fn require_work_tree(&self) -> Result<&Path> {
        self.work_tree.as_deref().ok_or_else(|| {
            Error::invalid("a bare repository takes only refs").hint("remove the files section of the batch")
        })
    }
}

/// A repository found without opening it ([`Repo::guess`]): the git to run and where.
pub struct Guess {
    pub exe: PathBuf,
    /// Its git dir, which is also its common dir.
    pub git_dir: PathBuf,
    pub work_tree: PathBuf,
}

impl Guess {
    /// git pinned to the guessed repository, as [`Repo::git`] would be.
    pub fn git(&self) -> Git {
        Git::new(self.exe.clone(), self.git_dir.clone(), Some(self.work_tree.clone()))
    }
}

/// Environment variables that change where git looks for the repository.
const OVERRIDES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/// One spelling per directory (symlinks resolved), so that journals written from different
/// worktrees and recovery agree on which worktree a batch belongs to.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
