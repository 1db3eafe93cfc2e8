//! Crash-test kit, part 3: running git-atomic so that it dies: at a named crash point, by a
//! SIGKILL of its whole process group (git children included), or by strace at the K-th call
//! of a system call. Plus copies of repositories, and waiting until a killed group is gone.
#![allow(dead_code)]

use crate::common::{self, Repo};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const SIGKILL: i32 = 9;

/// How a git-atomic run ended.
#[derive(Debug)]
pub struct Ended {
    pub status: ExitStatus,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ended {
    pub fn killed(&self) -> bool {
        self.status.signal() == Some(SIGKILL)
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `git atomic ARGS` (stdin: `input`) with `GIT_TEST_ATOMIC_CRASH=point` when given.
pub fn run_atomic(repo: &Repo, args: &[&str], input: &[u8], crash: Option<&str>) -> Ended {
    let mut cmd = repo.atomic_cmd(args);
    if let Some(point) = crash {
        cmd.env("GIT_TEST_ATOMIC_CRASH", point);
    }
    let start = Instant::now();
    let out = common::run_with_stdin(&mut cmd, input);
    Ended {
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// `git atomic recover`, optionally with a crash point.
pub fn recover(repo: &Repo, crash: Option<&str>) -> Ended {
    run_atomic(repo, &["recover"], b"", crash)
}

/// A git-atomic process leading its own process group, so that one `killpg` takes its git
/// children down with it, as a power cut or the OOM killer of a container would.
pub struct Group {
    child: Child,
    start: Instant,
    err_path: std::path::PathBuf,
}

/// Starts `git atomic ARGS` in a new process group, with `input` in a file as its stdin.
pub fn spawn_group(repo: &Repo, args: &[&str], input: &[u8]) -> Group {
    let scratch = repo.tmp.path();
    let in_path = scratch.join("group.in");
    let err_path = scratch.join("group.err");
    std::fs::write(&in_path, input).unwrap();
    let mut cmd = repo.atomic_cmd(args);
    cmd.process_group(0)
        .stdin(std::fs::File::open(&in_path).unwrap())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let child = cmd.spawn().expect("git-atomic starts");
    Group { child, start: Instant::now(), err_path }
}

impl Group {
    /// Sleeps until `delay` after the start, then SIGKILLs the whole group and waits until no
    /// member is left running (a killed process may first finish the system call it is in).
    pub fn kill_after(mut self, delay: Duration) -> Ended {
        let spent = self.start.elapsed();
        if delay > spent {
            std::thread::sleep(delay - spent);
        }
        let pgid = self.child.id() as i32;
        // SAFETY: killpg has no memory-safety preconditions; the group is ours.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
        let status = self.child.wait().unwrap();
        let elapsed = self.start.elapsed();
        wait_group_gone(pgid);
        let stderr = std::fs::read_to_string(&self.err_path).unwrap_or_default();
        Ended { status, stderr, elapsed }
    }

    /// Waits for the process to end by itself.
    pub fn wait(mut self) -> Ended {
        let status = self.child.wait().unwrap();
        let elapsed = self.start.elapsed();
        wait_group_gone(self.child.id() as i32);
        let stderr = std::fs::read_to_string(&self.err_path).unwrap_or_default();
        Ended { status, stderr, elapsed }
    }
}

/// Whether a live (not zombie) process has this process group.
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid pgrp ...; comm may hold spaces, so parse after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" && fields[0] != "X" {
            return true;
        }
    }
    false
}

/// Waits (up to 10 s) until every member of a killed group is gone.
pub fn wait_group_gone(pgid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while group_alive(pgid) {
        assert!(Instant::now() < deadline, "process group {pgid} did not die");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits (up to 10 s) until a process is gone or a zombie.
pub fn wait_pid_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return };
        let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("X");
        if state == "Z" || state == "X" {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not end");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// After a self-kill, git's `update-ref` may live on for a moment (it aborts on end of input):
/// waits for every batch's orphan, so that a copy of the repository holds no live lock.
pub fn wait_for_orphans(repo: &Repo) {
    let Ok(dirs) = std::fs::read_dir(repo.dir.join(".git/atomic/batches")) else { return };
    for dir in dirs.flatten() {
        if let Some(pid) = std::fs::read_to_string(dir.path().join("update-ref.pid"))
            .ok()
            // The first word: the boot's id and a note of git's locks follow (src/leftovers.rs).
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
        {
            wait_pid_gone(pid);
        }
    }
}

/// `cp -a from to` (to must not exist).
pub fn cp_a(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().expect("cp runs");
    assert!(st.success(), "cp -a {} {} failed", from.display(), to.display());
}

/// `rm -rf`, tolerant of absence.
pub fn rm_rf(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", path.display()),
    }
}

/// A copy of a repository in a new temp dir.
pub fn copy_repo(from: &Repo) -> Repo {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("repo");
    cp_a(&from.dir, &dir);
    Repo { tmp, dir }
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

/// What one run under `strace -f -e inject=SYSCALL:signal=SIGKILL:when=K` did.
#[derive(Debug)]
pub struct Traced {
    /// Some traced process reached its K-th call and was killed there.
    pub injected: bool,
    pub status: ExitStatus,
    pub log: String,
}

/// Runs `git atomic ARGS` under strace, killing every traced process (git children included)
/// at its own K-th call of `syscall` (strace counts per process).
pub fn run_straced(repo: &Repo, args: &[&str], syscall: &str, k: u32) -> Traced {
    let log_path = repo.tmp.path().join("strace.log");
    let mut cmd = Command::new("strace");
    common::seal(&mut cmd, &repo.home());
    cmd.current_dir(&repo.dir)
        .arg("-f")
        .arg("-o")
        .arg(&log_path)
        .arg("-e")
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(format!("inject={syscall}:signal=SIGKILL:when={k}"))
        .arg(env!("CARGO_BIN_EXE_git-atomic"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = cmd.status().expect("strace runs");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    Traced { injected: log.contains("killed by SIGKILL"), status, log }
}
