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

/// Every crash point of two-phase commit (twophase.rs, xa.rs), in the order `prepare`,
/// `commit`, `abort` and a cross-repository `apply` pass them. No test walks this list as the
/// crash tests walk [`POINTS`]: some are passed only by a refused commit or across repositories.
pub const TWO_PHASE_POINTS: &[&str] = &[
    "xa-journaled",
    "xa-staged",
    "xa-prepared",
    "xa-locked",
    // Only by a commit refused once git holds its locks, as it tells git to release them.
    "xa-releasing",
    "xa-committed",
    "xa-files-moved",
    "xa-synced",
    "xa-abort-recorded",
    // A cross-repository apply: after each part's prepare, after the decision, after each commit.
    "xa-part-prepared",
    "xa-decided",
    "xa-part-committed",
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

#[cfg(test)]
mod tests {
    use super::{POINTS, TWO_PHASE_POINTS};

    /// The names written out in the crash-point calls of the `.rs` files under `dir`.
    fn named_points(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                named_points(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for call in text.split("crash::point(\"").skip(1) {
                    out.push(call.split('"').next().unwrap().to_string());
                }
            }
        }
    }

    #[test]
    fn every_crash_point_is_listed() {
        let mut named = Vec::new();
        named_points(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut named);
        assert!(named.iter().any(|p| p == "xa-releasing"), "{named:?}");
        for point in &named {
            let listed = POINTS.contains(&point.as_str()) || TWO_PHASE_POINTS.contains(&point.as_str());
            assert!(listed, "crash point {point} is in neither POINTS nor TWO_PHASE_POINTS");
        }
    }
}
