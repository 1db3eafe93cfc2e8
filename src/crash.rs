//! Named crash points for the crash tests. `GIT_TEST_ATOMIC_CRASH=<point>` (git's own
//! `GIT_TEST_*` convention) makes the process SIGKILL itself when it reaches `<point>`;
//! `<point>:<n>` waits for the n-th time; with `GIT_TEST_ATOMIC_CRASH_GROUP` set, the whole
//! process group dies. Unset, a crash point costs one cached lookup.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every crash point, in the order apply and recovery pass them (the tests walk this list).
pub const POINTS: &[&str] = &[
    "journaled",
    "staged",
    "prepared",
    "committed",
    "file-moved",
    "files-moved",
    "refs-committed",
    "synced",
    "logged",
    "recover-file",
    // Recovery's git holds its locks, noted as ours, and is not yet told to commit: reached
    // only when some ref is not yet at its new value.
    "recover-locked",
    "recover-refs",
    "recover-synced",
];

/// The crash points of two-phase commit (twophase.rs, prepared.rs), in the order `prepare`,
/// `commit` and `abort` pass them.
pub const TWO_PHASE_POINTS: &[&str] = &[
    "xa-journaled",
    "xa-staged",
    "xa-prepared",
    "xa-locked",
    "xa-committed",
    "xa-files-moved",
    "xa-synced",
    "xa-abort-recorded",
];

static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
static HITS: AtomicUsize = AtomicUsize::new(0);

static RUN_AT: OnceLock<Option<(String, String)>> = OnceLock::new();

/// Runs `GIT_TEST_ATOMIC_RUN` (a shell command) when `GIT_TEST_ATOMIC_RUN_AT=<name>`: how the
/// tests make another program edit a file at an exact step (an edit after the recheck).
fn run_at(name: &str) {
    let run = RUN_AT.get_or_init(|| {
        Some((std::env::var("GIT_TEST_ATOMIC_RUN_AT").ok()?, std::env::var("GIT_TEST_ATOMIC_RUN").ok()?))
    });
    if let Some((point, command)) = run
        && point == name
    {
        let _ = std::process::Command::new("/bin/sh").arg("-c").arg(command).status();
    }
}

/// Dies here, without any cleanup, if the test environment asks for it.
pub fn point(name: &str) {
    run_at(name);
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var("GIT_TEST_ATOMIC_CRASH").ok()?;
        match spec.split_once(':') {
            Some((point, n)) => Some((point.to_string(), n.parse().unwrap_or(1))),
            None => Some((spec, 1)),
        }
    });
    if let Some((point, nth)) = target
        && point == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        // `GIT_TEST_ATOMIC_CRASH_GROUP` kills the whole process group (the test makes one):
        // git's update-ref then dies too, holding its locks, as after a SIGKILL of a service.
        let group = std::env::var_os("GIT_TEST_ATOMIC_CRASH_GROUP").is_some();
        let pid = if group { 0 } else { std::process::id() as libc::pid_t };
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Fails here with an injected error if `GIT_TEST_ATOMIC_FAIL=<name>` asks for it: how the tests
/// reach a step that fails (rather than dies) while git is taking its locks.
pub fn fail(name: &str) -> crate::error::Result<()> {
    match std::env::var("GIT_TEST_ATOMIC_FAIL") {
        Ok(point) if point == name => Err(crate::error::Error::fatal(format!("injected failure at {name}"))),
        _ => Ok(()),
    }
}

/// Stops here while the tests act, if `GIT_TEST_ATOMIC_PAUSE=<point>:<file>` asks for it: creates
/// `<file>.paused`, then waits (up to a minute) until `<file>` exists. How the tests make a race
/// window (between the check and the re-check under git's locks) deterministic.
pub fn pause(name: &str) {
    let Ok(spec) = std::env::var("GIT_TEST_ATOMIC_PAUSE") else { return };
    let Some((_, file)) = spec.split_once(':').filter(|(point, _)| *point == name) else { return };
    let _ = std::fs::write(format!("{file}.paused"), b"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::path::Path::new(file).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
