//! Stage timings on stderr when `GIT_ATOMIC_TRACE_PERF` is set (like git's
//! `GIT_TRACE_PERFORMANCE`), so that a slow batch can be attributed to a stage.

use std::sync::Mutex;
use std::time::Instant;

static LAST: Mutex<Option<(Instant, Instant)>> = Mutex::new(None);

/// The process's peak resident set so far (`VmHWM`), as the kernel reports it.
fn peak_memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?");
    line.trim_start_matches("VmHWM:").trim().to_string()
}

/// Prints how long the stage that just ended took, and the total so far.
pub fn stage(name: &str) {
    if std::env::var_os("GIT_ATOMIC_TRACE_PERF").is_none() {
        return;
    }
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let (start, prev) = last.unwrap_or((now, now));
    eprintln!(
        "trace: {name:<16} {:>9.3} ms  (total {:>9.3} ms, peak {})",
        (now - prev).as_secs_f64() * 1e3,
        (now - start).as_secs_f64() * 1e3,
        peak_memory()
    );
    *last = Some((start, now));
}
