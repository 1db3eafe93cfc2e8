//! Progress of long batches on stderr, the way git shows it: only when stderr is a terminal,
//! never with `--quiet`, redrawn in place at most ten times a second, never on stdout.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Below this many steps a stage finishes before a line would be worth drawing.
const MIN_STEPS: usize = 1000;
const REDRAW: Duration = Duration::from_millis(100);

/// One stage's counter.
pub struct Progress {
    label: &'static str,
    total: usize,
    done: usize,
    enabled: bool,
    last: Option<Instant>,
}

impl Progress {
    /// A counter for `total` steps; silent unless stderr is a terminal and `quiet` is off.
    pub fn new(label: &'static str, total: usize, quiet: bool) -> Self {
        let enabled = !quiet && total >= MIN_STEPS && std::io::stderr().is_terminal();
        Progress { label, total, done: 0, enabled, last: None }
    }

    /// Counts one step and redraws when it is time.
    pub fn tick(&mut self) {
        self.done += 1;
        if !self.enabled || self.last.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.last = Some(Instant::now());
        self.draw("\r");
    }

    fn draw(&self, end: &str) {
        let percent = self.done * 100 / self.total.max(1);
        let _ = write!(std::io::stderr(), "{}: {percent:3}% ({}/{}){end}", self.label, self.done, self.total);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.enabled && self.last.is_some() {
            self.draw(", done.\n");
        }
    }
}
