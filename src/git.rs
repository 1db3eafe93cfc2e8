//! Every `git` child process lives here: finding the binary the way git finds itself, running a
//! command with its stderr captured, and the long-lived `git update-ref --stdin` peer.

use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// Environment variable that marks our own `update-ref`, so that our hook leaves it alone.
pub const OWN_TRANSACTION_ENV: &str = "GIT_ATOMIC_OWN_TRANSACTION";

/// How a failure text starts when git died by a signal (and so left its lock files behind).
pub const KILLED_PREFIX: &str = "git update-ref was killed by signal ";

/// The `git` executable and the repository every command runs against.
#[derive(Debug, Clone)]
pub struct Git {
    exe: PathBuf,
    git_dir: PathBuf,
    work_tree: Option<PathBuf>,
}

/// Finds the `git` that runs us (`$GIT_EXEC_PATH/git`), else the first on `PATH`, so that
/// `git atomic` talks to the same git version the user invoked. Searched once a process (`apply`
/// asks twice: for the git it starts early, and when it opens the repository).
pub fn find_git() -> Result<PathBuf> {
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(exe) = FOUND.get() {
        return Ok(exe.clone());
    }
    let exe = search_git()?;
    Ok(FOUND.get_or_init(|| exe).clone())
}

fn search_git() -> Result<PathBuf> {
    if let Some(exec_path) = std::env::var_os("GIT_EXEC_PATH") {
        let candidate = Path::new(&exec_path).join("git");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    which::which("git").map_err(|e| Error::fatal(format!("cannot find git on PATH: {e}")))
}

/// Where `git rev-parse` finds the repository from the current directory (absolute paths, as
/// git spells them).
pub struct Located {
    pub git_dir: PathBuf,
    pub common_dir: PathBuf,
    /// `None` for a bare repository.
    pub work_tree: Option<PathBuf>,
}

/// Asks git where the repository is, for the cases (`GIT_DIR` and friends) where gix's rules
/// differ from git's; git's own refusal ("not a git repository") is the error.
pub fn rev_parse_repository(exe: &Path) -> Result<Located> {
    let out = Command::new(exe)
        .args(["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"])
        .args(["--is-bare-repository", "--is-inside-work-tree", "--show-cdup"])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| spawn_error(exe, e))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::fatal(msg.trim().trim_start_matches("fatal: ").to_string()));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| Error::fatal("non-UTF-8 repository path"))?;
    let lines: Vec<&str> = text.lines().collect();
    let [git_dir, common_dir, bare, inside, rest @ ..] = lines.as_slice() else {
        return Err(Error::fatal("cannot read the output of `git rev-parse`"));
    };
    let work_tree = if *bare == "true" {
        None
    } else if *inside == "true" {
        let cdup = rest.first().copied().unwrap_or("");
        Some(std::env::current_dir().map_err(|e| Error::fatal(e.to_string()))?.join(cdup))
    } else {
        show_toplevel(exe)
    };
    Ok(Located { git_dir: PathBuf::from(git_dir), common_dir: PathBuf::from(common_dir), work_tree })
}

/// The work tree git uses when the current directory is outside it (`GIT_WORK_TREE` elsewhere).
fn show_toplevel(exe: &Path) -> Option<PathBuf> {
    let out = Command::new(exe).args(["rev-parse", "--show-toplevel"]).stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim();
    (out.status.success() && !line.is_empty()).then(|| PathBuf::from(line))
}

impl Git {
    /// A handle that runs `exe` with `GIT_DIR` (and `GIT_WORK_TREE`) pinned to one repository.
    pub fn new(exe: PathBuf, git_dir: PathBuf, work_tree: Option<PathBuf>) -> Self {
        Git { exe, git_dir, work_tree }
    }

    /// The git binary, for commands that must run before a repository is known.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// A `git` command pinned to our repository; batch content never reaches a shell.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.exe);
        cmd.env("GIT_DIR", &self.git_dir).env_remove("GIT_COMMON_DIR");
        match &self.work_tree {
            Some(dir) => cmd.env("GIT_WORK_TREE", dir),
            None => cmd.env_remove("GIT_WORK_TREE"),
        };
        cmd.args(args);
        cmd
    }

    /// Runs a git command to completion, feeding `input`, and returns its stdout; a failure
    /// carries git's own stderr.
    pub fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>> {
        let out = self.output(args, input)?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(Error::fatal(format!(
                "git {} failed: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Runs a git command and returns its whole output, whatever the exit status.
    pub fn output(&self, args: &[&str], input: Option<&[u8]>) -> Result<std::process::Output> {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(&self.exe, e))?;
        let writer = match (input, child.stdin.take()) {
            (Some(bytes), Some(mut stdin)) => {
                let bytes = bytes.to_vec();
                Some(std::thread::spawn(move || {
                    let _ = stdin.write_all(&bytes);
                }))
            }
            _ => None,
        };
        let out = child.wait_with_output().map_err(|e| Error::fatal(format!("git: {e}")))?;
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        Ok(out)
    }

    /// `git version` as (major, minor), to refuse features an older git lacks before anything changes.
    pub fn version(&self) -> Result<(u32, u32)> {
        let out = self.run(&["version"], None)?;
        parse_version(&String::from_utf8_lossy(&out))
            .ok_or_else(|| Error::fatal("cannot read the output of `git version`"))
    }
}

fn spawn_error(exe: &Path, e: std::io::Error) -> Error {
    Error::fatal(format!("cannot run '{}': {e}", exe.display()))
}

/// Reads "git version 2.47.3" (and vendor suffixes) as (2, 47).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.trim().strip_prefix("git version ")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Where git's stderr goes: a memory file (nothing to drain, it never blocks git), else a pipe
/// read by a thread.
enum Stderr {
    File(std::fs::File),
    Drained(Option<JoinHandle<String>>),
}

impl Stderr {
    /// All git wrote; call once git has exited.
    fn text(&mut self) -> String {
        use std::io::{Read, Seek};
        match self {
            Stderr::File(file) => {
                let mut text = String::new();
                let _ = file.rewind().and_then(|_| file.read_to_string(&mut text));
                text
            }
            Stderr::Drained(thread) => thread.take().and_then(|h| h.join().ok()).unwrap_or_default(),
        }
    }
}

/// An anonymous file in memory (`memfd_create`): it costs no thread, no pipe and no inode.
fn memory_file() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: a constant NUL-terminated name; on success the new descriptor is ours alone.
    let fd = unsafe { libc::memfd_create(c"git-update-ref-stderr".as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { std::fs::File::from_raw_fd(fd) })
}

/// A running `git update-ref --stdin` with a started transaction: git's own locking and
/// compare-and-swap, driven through its `start`/`prepare`/`commit`/`abort` protocol.
pub struct UpdateRefProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Stderr,
    /// Whether any command was sent; until then git holds nothing and has nothing to finish.
    used: bool,
    /// Where git's trace2 events go, for recovery; nothing to keep when git was never used.
    trace: Option<PathBuf>,
}

impl UpdateRefProcess {
    /// Spawns `update-ref --stdin` with the reflog message, marked as ours for the hook.
    pub fn spawn(git: &Git, message: &str, batch_id: &str, trace: Option<&Path>) -> Result<Self> {
        // Every value we send is a full object id, yet git looks each one up as a ref name too,
        // only to warn if a ref is named like it: 6 failed stats per value, 12 per ref with an
        // old value (perf: 35 against 11 per created ref). Turning the warning off skips that.
        let mut cmd =
            git.command(["-c", "core.warnAmbiguousRefs=false", "update-ref", "--stdin", "-m", message]);
        let memfd = memory_file();
        let stderr_to = match &memfd {
            Some(file) => file.try_clone().map(Stdio::from).unwrap_or_else(|_| Stdio::piped()),
            None => Stdio::piped(),
        };
        cmd.env(OWN_TRANSACTION_ENV, batch_id).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr_to);
        if let Some(trace) = trace {
            // git's trace2 events: its `atexit` event comes after git removed its lock files
            // (git registers that clean-up later, so it runs first), which tells recovery that
            // no lock left on the batch's refs is this git's (leftovers.rs).
            cmd.env("GIT_TRACE2_EVENT", trace).env_remove("GIT_TRACE2_EVENT_BRIEF");
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(&git.exe, e))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout was piped"));
        let stderr = match (child.stderr.take(), memfd) {
            // Drained on a thread so that a chatty git can never block on a full stderr pipe.
            (Some(mut pipe), _) => Stderr::Drained(Some(std::thread::spawn(move || {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
                text
            }))),
            (None, Some(file)) => Stderr::File(file),
            (None, None) => unreachable!("stderr is a pipe or a memory file"),
        };
        let trace = trace.map(Path::to_path_buf);
        Ok(UpdateRefProcess { child, stdin, stdout, stderr, used: false, trace })
    }

    /// git's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends command lines without waiting for an answer (updates are answered only at `prepare`),
    /// buffered into large writes.
    pub fn send(&mut self, mut lines: impl Iterator<Item = String>) -> Result<(), String> {
        self.used = true;
        let stdin = self.stdin.as_mut().ok_or_else(|| "update-ref input already closed".to_string())?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, stdin);
        let sent = lines.try_for_each(|line| out.write_all(line.as_bytes())).and_then(|_| out.flush());
        drop(out);
        sent.map_err(|_| self.failure_text())
    }

    /// Sends one protocol verb and waits for git's `<verb>: ok`; on failure returns git's stderr.
    pub fn call(&mut self, verb: &str) -> Result<(), String> {
        self.send_verb(verb)?;
        self.reply(verb)
    }

    /// Sends one protocol verb without waiting: git works on it while we go on.
    pub fn send_verb(&mut self, verb: &str) -> Result<(), String> {
        self.used = true;
        let stdin = self.stdin.as_mut().ok_or_else(|| "update-ref input already closed".to_string())?;
        let sent = stdin.write_all(format!("{verb}\n").as_bytes()).and_then(|_| stdin.flush());
        sent.map_err(|_| self.failure_text())
    }

    /// Waits for git's `<verb>: ok` to a verb sent; on failure returns git's stderr.
    pub fn reply(&mut self, verb: &str) -> Result<(), String> {
        let mut reply = String::new();
        match self.stdout.read_line(&mut reply) {
            Ok(n) if n > 0 && reply.trim_end() == format!("{verb}: ok") => Ok(()),
            _ => Err(self.failure_text()),
        }
    }

    /// Closes git's input: after `commit: ok` it has nothing left to do but exit, which it then
    /// does while we go on; [`Drop`] reaps it.
    pub fn close_input(&mut self) {
        drop(self.stdin.take());
    }

    /// Ends the process after a failed exchange and returns what git said on stderr.
    fn failure_text(&mut self) -> String {
        use std::os::unix::process::ExitStatusExt;
        drop(self.stdin.take());
        let signal = self.child.wait().ok().and_then(|s| s.signal());
        let text = self.stderr.text();
        match signal {
            // Killed, git could not release its locks: the caller must know, not parse stderr.
            Some(signal) => format!("{KILLED_PREFIX}{signal}\n{text}"),
            None if text.trim().is_empty() => "git update-ref exited without an answer".into(),
            None => text,
        }
    }
}

impl Drop for UpdateRefProcess {
    fn drop(&mut self) {
        if !self.used {
            // Started early and not needed (the batch was refused): git holds nothing yet, and end
            // of input would make it commit an empty transaction and run the hooks for it.
            let _ = self.child.kill();
        }
        // End of input makes git abort a started or prepared transaction and release its locks.
        drop(self.stdin.take());
        let _ = self.child.wait();
        if let (false, Some(trace)) = (self.used, &self.trace) {
            let _ = std::fs::remove_file(trace);
        }
    }
}
