//! Issue 4's proof: after a crash anywhere, followed by recovery, a repository shows every change
//! of a batch or none of them (refs, HEAD, files, modes, symlinks, directories), and nothing is
//! left behind (journals, git lock files, temp files).
//!
//! - `every_apply_crash_point_*` / `every_recovery_crash_point_*`: the named crash points
//!   (`GIT_TEST_ATOMIC_CRASH`) times several batch shapes.
//! - `random_kills_of_the_process_group*`: random batches (files and reftable ref backends),
//!   SIGKILL of git-atomic and its git children at random instants, sometimes of the recovery too.
//! - `every_system_call_*`: strace kills each process at its K-th call of each file-system call.
//! - `torn_and_corrupt_journals_*`: every truncation and flipped byte of real journals.
//! - `power_cuts_on_a_loop_mounted_ext4_*`: FS_IOC_SHUTDOWN without log flush, then remount
//!   (needs root and loop devices; skipped with a message otherwise).
//!
//! Environment: `CRASH_LONG=1` full sweeps (every shape, every journal offset); `CRASH_TRIALS=N`
//! random trials or power cuts; `CRASH_SEED=S` replays a random test (each prints its seed);
//! `CRASH_KEEP=DIR` keeps failing repositories of the sweep and the power cuts;
//! `CRASH_SYSCALLS=a,b` limits the sweep. Run with `-- --nocapture` to see the figures.

#[path = "common/batches.rs"]
mod batches;
mod common;
#[path = "common/model.rs"]
mod model;
#[path = "common/power.rs"]
mod power;
#[path = "common/procs.rs"]
mod procs;

use batches::{Batch, FileOp, Fixture, Generator, Limits, RefOp};
use common::Repo;
use git_atomic::crash::POINTS;
use model::{Seen, State, judge, leftovers, observe};
use power::{Mounted, sh};
use procs::{Ended, recover, run_atomic};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Checks the invariant: no leftovers, exactly the before- or the after-state, and a history log
/// that agrees (issue 17).
fn check(repo: &Repo, before: &State, after: &State) -> Result<Seen, String> {
    let left = leftovers(&repo.dir);
    if !left.is_empty() {
        return Err(format!("left behind:\n  {}", left.join("\n  ")));
    }
    let seen = judge(&observe(repo), before, after)?;
    log_agrees(repo, seen, before != after)?;
    Ok(seen)
}

/// The log entries of `repo` whose batch took effect.
fn effective_entries(repo: &Repo) -> usize {
    let entries = std::fs::read_dir(repo.dir.join(".git/atomic/log")).into_iter().flatten().flatten();
    let outcomes = entries.filter_map(|e| std::fs::read_to_string(e.path().join("outcome")).ok());
    outcomes.filter(|o| o.contains("\"applied\"") || o.contains("\"rolled-forward\"")).count()
}

/// Starts counting `repo`'s log afresh (its directory was replaced by a copy).
fn log_baseline(repo: &Repo) {
    EFFECTIVE.lock().unwrap().insert(repo.dir.clone(), effective_entries(repo));
}

/// How many log entries that took effect each repository had at its last check (a repository
/// copied from a fixture starts with none).
static EFFECTIVE: std::sync::Mutex<BTreeMap<std::path::PathBuf, usize>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The log agrees with the repository: a batch that shows (and changed something) added exactly
/// one entry that took effect (applied or rolled forward), one that does not show added none.
fn log_agrees(repo: &Repo, seen: Seen, changes: bool) -> Result<(), String> {
    let now = effective_entries(repo);
    let mut map = EFFECTIVE.lock().unwrap();
    let was = map.insert(repo.dir.clone(), now).unwrap_or(0);
    let want = was + usize::from(changes && seen == Seen::After);
    match now == want || !changes {
        true => Ok(()),
        false => Err(format!("the log has {now} entries that took effect, {want} expected ({seen:?})")),
    }
}

/// Runs `recover` to completion (exit 0 required), then checks the invariant.
fn recover_and_check(repo: &Repo, before: &State, after: &State) -> Result<Seen, String> {
    let rec = recover(repo, None);
    if rec.code() != Some(0) {
        return Err(format!("recover ended with {}: {}", rec.status, rec.stderr.trim()));
    }
    check(repo, before, after)
}

/// `atomic.lockTimeout=1`: a kill of git while it takes its locks, before it said `prepare: ok`,
/// leaves locks that recovery watches for that long before it takes them for the dead git's
/// (src/leftovers.rs, `settle`); 10 s each would make the kill tests minutes longer.
fn quick_lock_waits(repo: &Repo) {
    repo.git(&["config", "atomic.lockTimeout", "1"]);
}

/// Whether a crash at this point comes at or after the commit point.
fn after_commit_point(point: &str) -> bool {
    let base = point.split(':').next().unwrap();
    let index = |p: &str| POINTS.iter().position(|q| *q == p).unwrap_or_else(|| panic!("unknown point {p}"));
    index(base) >= index("committed")
}

/// The apply crash points as `GIT_TEST_ATOMIC_CRASH` values: every point, and `file-moved`
/// at the first, a middle and the last move.
fn apply_points(moves: usize) -> Vec<String> {
    let mut out = Vec::new();
    for point in POINTS.iter().filter(|p| !p.starts_with("recover-")) {
        if *point == "file-moved" {
            let mut ns = vec![1, moves.div_ceil(2).max(1), moves.max(1)];
            ns.dedup();
            out.extend(ns.into_iter().map(|n| format!("{point}:{n}")));
        } else {
            out.push(point.to_string());
        }
    }
    out
}

/// The recovery crash points: every point, `recover-file` at the first and the last move.
fn recovery_points(moves: usize) -> Vec<String> {
    let mut out = Vec::new();
    for point in POINTS.iter().filter(|p| p.starts_with("recover-")) {
        if *point == "recover-file" {
            let mut ns = vec![1, moves.max(1)];
            ns.dedup();
            out.extend(ns.into_iter().map(|n| format!("{point}:{n}")));
        } else {
            out.push(point.to_string());
        }
    }
    out
}

/// Whether a run with this crash point reaches it (`file-moved:n` needs n moves).
fn passes(point: &str, moves: usize) -> bool {
    match point.split_once(':') {
        Some((base, n)) if base == "file-moved" || base == "recover-file" => {
            n.parse::<usize>().unwrap() <= moves
        }
        _ => true,
    }
}

/// Whether a recovery after an apply crash at `apply_point` reaches `rec_point`, or None when
/// nobody can tell: `recover-locked` needs a ref left to change, which only a crash before git
/// was told to commit (`committed`) leaves for sure; after `file-moved` git may have committed.
fn recovery_reaches(rec_point: &str, moves: usize, apply_point: &str, batch: &Batch) -> Option<bool> {
    if rec_point != "recover-locked" {
        return Some(passes(rec_point, moves));
    }
    let changes_refs = batch.refs.iter().any(|r| !matches!(r, RefOp::Verify { .. }));
    match apply_point {
        "committed" => Some(changes_refs),
        p if p.starts_with("file-moved") => None,
        _ => Some(false),
    }
}

/// Applies with a crash point; Ok(true) when it died there by SIGKILL as it should.
fn crash_apply(repo: &Repo, batch: &Batch, point: &str, should_pass: bool) -> Result<bool, String> {
    let ended = run_atomic(repo, &["apply", "-"], batch.to_json().as_bytes(), Some(point));
    died_as_expected(&ended, should_pass, "apply", point)
}

fn died_as_expected(ended: &Ended, should_pass: bool, what: &str, point: &str) -> Result<bool, String> {
    match (ended.killed(), should_pass) {
        (true, true) => Ok(true),
        (false, false) if ended.code() == Some(0) => Ok(false),
        _ => Err(format!(
            "{what} with crash point {point}: expected {}, got {}: {}",
            if should_pass { "SIGKILL" } else { "exit 0" },
            ended.status,
            ended.stderr.trim()
        )),
    }
}

fn shapes(fx: &Fixture, before: &State) -> Vec<(&'static str, Batch)> {
    batches::shapes(fx, before, common::git_at_least((2, 46)))
}

/// A clean apply must give exactly the model's after-state: it validates the model (and the
/// product) before any crash result is judged against it.
fn clean_apply_matches_model(fx: &Fixture, shape: &str, batch: &Batch, after: &State) -> Result<(), String> {
    let repo = procs::copy_repo(&fx.repo);
    let ended = run_atomic(&repo, &["apply", "-"], batch.to_json().as_bytes(), None);
    if ended.code() != Some(0) {
        return Err(format!("{shape}: clean apply ended with {}: {}", ended.status, ended.stderr));
    }
    let now = observe(&repo);
    if &now != after || !leftovers(&repo.dir).is_empty() {
        return Err(format!(
            "{shape}: the clean apply differs from the model:\n{}\n{:?}",
            model::diff(after, &now),
            leftovers(&repo.dir)
        ));
    }
    Ok(())
}

#[test]
fn every_apply_crash_point_times_every_shape_is_all_or_nothing() {
    let fx = batches::fixture();
    let before = observe(&fx.repo);
    every_apply_crash_point("apply crash points", &fx, shapes(&fx, &before));
}

/// The README: with `atomic.fsync=false` a batch is still all-or-nothing against process death
/// (only power loss may lose it).
#[test]
fn every_apply_crash_point_with_atomic_fsync_false_is_all_or_nothing() {
    let fx = batches::fixture();
    fx.repo.git(&["config", "atomic.fsync", "false"]);
    let before = observe(&fx.repo);
    every_apply_crash_point("apply crash points, atomic.fsync=false", &fx, shapes(&fx, &before));
}

/// Crashes each batch at every apply crash point (from a copy of the fixture), recovers, and
/// requires the before-state before the commit point and the after-state from it on.
fn every_apply_crash_point(label: &str, fx: &Fixture, shapes: Vec<(&'static str, Batch)>) {
    crash_points_of(label, fx, shapes, &|_| true)
}

/// [`every_apply_crash_point`] for the points `pick` keeps.
fn crash_points_of(
    label: &str,
    fx: &Fixture,
    shapes: Vec<(&'static str, Batch)>,
    pick: &dyn Fn(&str) -> bool,
) {
    let before = observe(&fx.repo);
    let umask = model::umask();
    let mut failures = Vec::new();
    let mut cases = 0;
    let started = Instant::now();
    for (shape, batch) in shapes {
        let after = batch.apply_to(&before, umask);
        if let Err(e) = clean_apply_matches_model(fx, shape, &batch, &after) {
            failures.push(e);
            continue;
        }
        let moves = batch.moves(&before);
        for point in apply_points(moves).into_iter().filter(|p| pick(p)) {
            cases += 1;
            let repo = procs::copy_repo(&fx.repo);
            let result = crash_apply(&repo, &batch, &point, passes(&point, moves)).and_then(|_| {
                let want = if after_commit_point(&point) { Seen::After } else { Seen::Before };
                match recover_and_check(&repo, &before, &after)? {
                    seen if seen == want || before == after => Ok(()),
                    seen => Err(format!("expected the {want:?}-state, found the {seen:?}-state")),
                }
            });
            if let Err(e) = result {
                let json = batch.to_json();
                let shown = if json.len() > 2000 { format!("{}…", &json[..2000]) } else { json };
                failures.push(format!("{shape} crash at {point}: {e}\nbatch: {shown}"));
            }
        }
    }
    eprintln!(
        "{label}: {cases} cases in {:.1}s, {} violations",
        started.elapsed().as_secs_f32(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn every_recovery_crash_point_after_every_late_apply_crash_rolls_forward() {
    let fx = batches::fixture();
    let before = observe(&fx.repo);
    let umask = model::umask();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (shape, batch) in shapes(&fx, &before) {
        let after = batch.apply_to(&before, umask);
        let moves = batch.moves(&before);
        for apply_point in ["committed", "refs-committed", "file-moved:1", "synced"] {
            if !passes(apply_point, moves) {
                continue;
            }
            for rec_point in recovery_points(moves) {
                let Some(reached) = recovery_reaches(&rec_point, moves, apply_point, &batch) else {
                    continue;
                };
                cases += 1;
                let repo = procs::copy_repo(&fx.repo);
                let result = crash_apply(&repo, &batch, apply_point, true).and_then(|_| {
                    let ended = recover(&repo, Some(&rec_point));
                    died_as_expected(&ended, reached, "recover", &rec_point)?;
                    match recover_and_check(&repo, &before, &after)? {
                        Seen::After => Ok(()),
                        Seen::Before => Err("rolled back a committed batch".to_string()),
                    }
                });
                if let Err(e) = result {
                    failures.push(format!(
                        "{shape}: apply crash at {apply_point}, recover crash at {rec_point}: {e}"
                    ));
                }
            }
        }
    }
    eprintln!("recovery crash points: {cases} cases, {} violations", failures.len());
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Counts of where random kills landed.
#[derive(Debug, Default)]
struct Tally {
    finished: usize,
    killed_before: usize,
    killed_after: usize,
    recovery_killed: usize,
}

/// How long a run takes, per batch entry (plus a fixed cost of four entries), steered so that
/// about one run in five finishes before its kill: every finished run shortens the estimate a
/// little, every killed one lengthens it a little. Kill delays drawn uniformly up to the
/// estimate then land in every phase, start-up included, whatever the batch size, the
/// repository's growth and the machine.
struct Pace {
    per_entry: Duration,
}

impl Pace {
    fn new() -> Self {
        Pace { per_entry: Duration::from_micros(500) }
    }

    fn learn(&mut self, finished: bool) {
        self.per_entry = match finished {
            true => self.per_entry * 97 / 100,
            false => self.per_entry * 10075 / 10000,
        };
    }

    /// A delay uniform in 0..=estimate.
    fn delay(&self, rng: &mut model::Rng, entries: usize) -> Duration {
        let max = (self.per_entry * (4 + entries as u32)).as_micros() as u64;
        Duration::from_micros(rng.below(max + 1))
    }
}

fn pending_batches(repo: &Repo) -> usize {
    std::fs::read_dir(repo.dir.join(".git/atomic/batches")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn random_kills_of_the_process_group() {
    random_kills("random_kills_of_the_process_group", &[], model::trials(100));
}

#[test]
fn random_kills_of_the_process_group_with_atomic_fsync_false() {
    random_kills(
        "random_kills_of_the_process_group_with_atomic_fsync_false",
        &["fsync=false"],
        model::trials(30),
    );
}

#[test]
fn random_kills_of_the_process_group_with_reftable() {
    if !common::needs_git("random_kills_of_the_process_group_with_reftable", (2, 45)) {
        return;
    }
    random_kills(
        "random_kills_of_the_process_group_with_reftable",
        &["--ref-format=reftable"],
        model::trials(30),
    );
}

/// Random batches, killed with their git children at random instants, sometimes the recovery
/// too; after recovery the repository must be exactly before or after each batch. `options`:
/// `git init` arguments, and `fsync=false` for `atomic.fsync=false`.
fn random_kills(test: &str, options: &[&str], trials: usize) {
    let seed = model::seed(test);
    let init: Vec<&str> = options.iter().copied().filter(|o| o.starts_with("--")).collect();
    let fx = batches::fixture_with(&init);
    let repo = &fx.repo;
    quick_lock_waits(repo);
    if options.contains(&"fsync=false") {
        repo.git(&["config", "atomic.fsync", "false"]);
    }
    let limits = Limits { max_refs: 50, max_files: 50, symref: common::git_at_least((2, 46)) };
    let mut generator = Generator::new(seed, fx.commits.clone(), limits);
    let mut rng = model::Rng::new(seed ^ 0x5eed);
    let umask = model::umask();
    let mut state = observe(repo);
    let mut tally = Tally::default();
    let (mut apply_pace, mut recover_pace) = (Pace::new(), Pace::new());
    let started = Instant::now();
    for trial in 0..trials {
        if trial % 10 == 5 {
            repo.git(&["pack-refs", "--all"]);
        }
        let batch = generator.batch(&state);
        let entries = batch.refs.len() + batch.files.len();
        let after = batch.apply_to(&state, umask);
        let context = || format!("seed {seed}, trial {trial}\nbatch: {}", batch.to_json());
        let group = procs::spawn_group(repo, &["apply", "-"], batch.to_json().as_bytes());
        let ended = match trial {
            0 => group.wait(),
            _ => group.kill_after(apply_pace.delay(&mut rng, entries)),
        };
        if !ended.killed() {
            assert_eq!(ended.code(), Some(0), "apply failed on its own: {}\n{}", ended.stderr, context());
        }
        apply_pace.learn(!ended.killed());
        if pending_batches(repo) > 0 && rng.chance(40) {
            let rec = procs::spawn_group(repo, &["recover"], b"");
            let rec = rec.kill_after(recover_pace.delay(&mut rng, entries));
            tally.recovery_killed += usize::from(rec.killed());
            recover_pace.learn(!rec.killed());
        }
        let rec = recover(repo, None);
        let seen = match rec.code() {
            Some(0) => check(repo, &state, &after),
            _ => Err(format!("recover ended with {}: {}", rec.status, rec.stderr.trim())),
        };
        let seen = seen.unwrap_or_else(|e| panic!("{e}\n{}", context()));
        match (ended.killed(), seen) {
            (false, Seen::After) => tally.finished += 1,
            (false, Seen::Before) => panic!("apply exited 0 but the batch is not there\n{}", context()),
            (true, Seen::Before) => tally.killed_before += 1,
            (true, Seen::After) => tally.killed_after += 1,
        }
        state = observe(repo);
    }
    eprintln!(
        "{test}: {trials} trials in {:.1}s; apply finished before the kill {}, killed before the commit \
         point {}, killed after it {}; recoveries killed too {}; violations 0 (pace per entry: apply {:?}, recover {:?})",
        started.elapsed().as_secs_f32(),
        tally.finished,
        tally.killed_before,
        tally.killed_after,
        tally.recovery_killed,
        apply_pace.per_entry,
        recover_pace.per_entry
    );
    assert!(tally.killed_before + tally.killed_after > 0, "no kill landed: {tally:?}");
}

/// With `CRASH_KEEP=DIR`, keeps a copy of a failing repository for a post-mortem.
fn keep_for_debugging(repo: &Repo, label: &str) {
    if let Some(keep) = std::env::var_os("CRASH_KEEP") {
        let to = Path::new(&keep).join(label.replace([' ', '/', ':'], "-"));
        procs::rm_rf(&to);
        std::fs::create_dir_all(Path::new(&keep)).unwrap();
        procs::cp_a(&repo.dir, &to);
        let log = repo.tmp.path().join("strace.log");
        let _ = std::fs::copy(log, to.with_extension("strace.log"));
        eprintln!("kept {}", to.display());
    }
}

/// The file-system calls git-atomic (and the git it runs) makes, as `strace -f -c` lists them.
const SYSCALLS: &[&str] = &[
    "openat",
    "write",
    "rename",
    "unlink",
    "unlinkat",
    "mkdir",
    "rmdir",
    "symlink",
    "fsync",
    "fdatasync",
    "syncfs",
];

/// Sweeps K upward for each system call until a run completes without a kill; after each kill,
/// recovery must bring the repository to the before- or after-state (`want`: which, if known).
#[allow(clippy::too_many_arguments)]
fn sweep(
    label: &str,
    pristine: &Path,
    work: &Repo,
    args: &[&str],
    before: &State,
    after: &State,
    want_on_kill: Option<Seen>,
    max_k: u32,
    failures: &mut Vec<String>,
) -> (usize, usize, usize) {
    let (mut runs, mut seen_before, mut seen_after) = (0, 0, 0);
    let only = std::env::var("CRASH_SYSCALLS").ok();
    let syscalls: Vec<&str> = match &only {
        Some(list) => list.split(',').collect(),
        None => SYSCALLS.to_vec(),
    };
    for syscall in syscalls {
        for k in 1..=max_k {
            procs::rm_rf(&work.dir);
            procs::cp_a(pristine, &work.dir);
            log_baseline(work);
            let traced = procs::run_straced(work, args, syscall, k);
            runs += 1;
            let result = if traced.injected {
                recover_and_check(work, before, after)
            } else if traced.status.success() {
                check(work, before, after).and_then(|seen| match seen {
                    Seen::After => Ok(seen),
                    Seen::Before => Err("completed, but the batch is not there".to_string()),
                })
            } else {
                Err(format!("failed without a kill: {}", traced.status))
            };
            let result = result.and_then(|seen| match want_on_kill {
                Some(want) if traced.injected && want != seen => Err(format!("expected the {want:?}-state")),
                _ => Ok(seen),
            });
            match result {
                Ok(Seen::Before) => seen_before += 1,
                Ok(Seen::After) => seen_after += 1,
                Err(e) => {
                    keep_for_debugging(work, &format!("{label}-{syscall}-{k}"));
                    failures.push(format!("{label}: kill at {syscall} #{k}: {e}"))
                }
            }
            if !traced.injected {
                break;
            }
            if k == max_k {
                eprintln!(
                    "{label}: the sweep of {syscall} stopped at K = {max_k} (CRASH_LONG=1 goes further)"
                );
            }
        }
    }
    (runs, seen_before, seen_after)
}

#[test]
fn every_system_call_of_apply_and_recover_is_a_safe_place_to_die() {
    if !procs::have("strace") {
        common::skip(
            "every_system_call_of_apply_and_recover_is_a_safe_place_to_die",
            "strace is not installed",
        );
        return;
    }
    let long = model::long_mode();
    let max_k = if long { 5000 } else { 400 };
    let fx = batches::fixture();
    quick_lock_waits(&fx.repo);
    let before = observe(&fx.repo);
    let scratch = tempfile::tempdir().unwrap();
    let work = Repo { tmp: tempfile::tempdir().unwrap(), dir: scratch.path().join("repo") };
    let pristine = scratch.path().join("pristine");
    procs::cp_a(&fx.repo.dir, &pristine);
    let started = Instant::now();
    let mut failures = Vec::new();
    let (mut apply, mut recovery) = ((0, 0, 0), (0, 0, 0));
    // CI: one representative batch (refs, a packed delete, new nested dirs, a rename, an emptied
    // directory, a symlink, a mode); long mode: every shape.
    for (shape, batch) in shapes(&fx, &before) {
        if !long && shape != "mixed" {
            continue;
        }
        let after = batch.apply_to(&before, model::umask());
        let batch_file = scratch.path().join(format!("{shape}.json"));
        std::fs::write(&batch_file, batch.to_json()).unwrap();
        let apply_args = ["apply", batch_file.to_str().unwrap()];
        let label = format!("{shape}: apply");
        let a = sweep(&label, &pristine, &work, &apply_args, &before, &after, None, max_k, &mut failures);
        apply = (apply.0 + a.0, apply.1 + a.1, apply.2 + a.2);
        // recover: after apply died just after the commit point (long mode: also after it moved
        // one file), swept.
        let late: &[&str] = if long { &["committed", "file-moved:1"] } else { &["committed"] };
        for point in late.iter().filter(|p| passes(p, batch.moves(&before))) {
            procs::rm_rf(&work.dir);
            procs::cp_a(&pristine, &work.dir);
            let ended = run_atomic(&work, &apply_args, b"", Some(point));
            assert!(ended.killed(), "apply should die at {point}: {ended:?}");
            procs::wait_for_orphans(&work);
            let crashed = scratch.path().join(format!("crashed-{shape}-{}", point.replace(':', "-")));
            procs::cp_a(&work.dir, &crashed);
            let label = format!("{shape}: recover after {point}");
            let want = Some(Seen::After);
            let r = sweep(&label, &crashed, &work, &["recover"], &before, &after, want, max_k, &mut failures);
            recovery = (recovery.0 + r.0, recovery.1 + r.1, recovery.2 + r.2);
        }
    }
    eprintln!(
        "system-call sweep ({:?}) in {:.1}s: apply {} runs (before-state {}, after-state {}); \
         recover {} runs (after-state {}); violations {}",
        SYSCALLS,
        started.elapsed().as_secs_f32(),
        apply.0,
        apply.1,
        apply.2,
        recovery.0,
        recovery.2,
        failures.len()
    );
    assert!(failures.is_empty(), "{} failures:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The offsets a journal test damages: all of them in long mode or for small journals;
/// otherwise all in the header, around every line break and in the tail, and a stride elsewhere.
fn damage_offsets(journal: &[u8], long: bool) -> Vec<usize> {
    if long || journal.len() <= 600 {
        return (0..journal.len()).collect();
    }
    let breaks: Vec<usize> =
        journal.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i).collect();
    (0..journal.len())
        .filter(|&i| {
            i < 40 || i + 120 > journal.len() || breaks.iter().any(|&b| b.abs_diff(i) <= 3) || i % 37 == 0
        })
        .collect()
}

/// One damaged journal, put back into the crashed batch directory; recovery must not panic.
struct Torn<'a> {
    repo: &'a Repo,
    batch_dir: &'a Path,
    pristine: &'a Path,
    before: &'a State,
    after: &'a State,
    commit_line: Option<&'a [u8]>,
    original: &'a [u8],
}

impl Torn<'_> {
    /// Recovers with `journal` in place; returns the error for a violation.
    fn case(&self, journal: &[u8]) -> Result<(), String> {
        procs::rm_rf(self.batch_dir);
        procs::cp_a(self.pristine, self.batch_dir);
        std::fs::write(self.batch_dir.join("journal"), journal).unwrap();
        let rec = recover(self.repo, None);
        let intact_commit =
            self.commit_line.is_some_and(|line| journal.split_inclusive(|b| *b == b'\n').any(|l| l == line));
        let (code, want) = match (journal == self.original, intact_commit) {
            (true, true) => (0, Seen::After),
            // The commit record says "committed", but what to finish is unreadable: it needs a
            // person (exit 3), and nothing may have been rolled back or forward.
            (false, true) => (3, Seen::Before),
            (_, false) => (0, Seen::Before),
        };
        if rec.code() != Some(code) {
            return Err(format!(
                "recover ended with {} (want exit {code}): {}",
                rec.status,
                rec.stderr.trim()
            ));
        }
        if code == 3 {
            if !self.batch_dir.exists() {
                return Err("exit 3, but the batch directory is gone".into());
            }
            procs::rm_rf(self.batch_dir);
        }
        match check(self.repo, self.before, self.after)? {
            seen if seen == want => Ok(()),
            seen => Err(format!("expected the {want:?}-state, found the {seen:?}-state")),
        }
    }
}

#[test]
fn torn_and_corrupt_journals_never_panic_and_stay_all_or_nothing() {
    let long = model::long_mode();
    let fx = batches::fixture();
    let before = observe(&fx.repo);
    let (_, batch) = shapes(&fx, &before).into_iter().find(|(name, _)| *name == "mixed").unwrap();
    let after = batch.apply_to(&before, model::umask());
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut cases = 0;
    for point in ["journaled", "committed"] {
        let repo = procs::copy_repo(&fx.repo);
        let ended = run_atomic(&repo, &["apply", "-"], batch.to_json().as_bytes(), Some(point));
        assert!(ended.killed(), "apply should die at {point}: {ended:?}");
        procs::wait_for_orphans(&repo);
        let batch_dir =
            std::fs::read_dir(repo.dir.join(".git/atomic/batches")).unwrap().next().unwrap().unwrap().path();
        let id = batch_dir.file_name().unwrap().to_str().unwrap().to_string();
        let pristine = repo.tmp.path().join("pristine-batch");
        procs::cp_a(&batch_dir, &pristine);
        let original = std::fs::read(batch_dir.join("journal")).unwrap();
        let commit_line = original
            .split_inclusive(|b| *b == b'\n')
            .find(|l| l.starts_with(format!("commit {id} ").as_bytes()))
            .map(<[u8]>::to_vec);
        assert_eq!(
            commit_line.is_some(),
            point == "committed",
            "journal at {point}: {:?}",
            String::from_utf8_lossy(&original)
        );
        let torn = Torn {
            repo: &repo,
            batch_dir: &batch_dir,
            pristine: &pristine,
            before: &before,
            after: &after,
            commit_line: commit_line.as_deref(),
            original: &original,
        };
        let offsets = damage_offsets(&original, long);
        for &cut in offsets.iter().chain([original.len()].iter().filter(|_| point == "journaled")) {
            cases += 1;
            if let Err(e) = torn.case(&original[..cut]) {
                failures.push(format!("{point} journal cut to {cut} of {} bytes: {e}", original.len()));
            }
        }
        for &at in &offsets {
            cases += 1;
            let mut bad = original.clone();
            bad[at] ^= [0x01, 0x20, 0x80, 0xff][at % 4];
            if let Err(e) = torn.case(&bad) {
                failures.push(format!("{point} journal with byte {at} flipped: {e}"));
            }
        }
        // Last, as it rolls the batch forward: the intact journal.
        if point == "committed" {
            cases += 1;
            if let Err(e) = torn.case(&original) {
                failures.push(format!("intact committed journal: {e}"));
            }
        }
    }
    eprintln!(
        "torn journals: {cases} cases in {:.1}s, {} violations",
        started.elapsed().as_secs_f32(),
        failures.len()
    );
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// `git init` plus the fixture, in a directory of our choosing (the mounted image).
fn fixture_at(dir: &Path) -> Fixture {
    let repo = Repo { tmp: tempfile::tempdir().unwrap(), dir: dir.to_path_buf() };
    repo.git_in(dir.parent().unwrap(), &["init", "-q", "-b", "main", dir.to_str().unwrap()]);
    repo.write("README", "hello\n");
    repo.git(&["add", "README"]);
    repo.git(&["commit", "-q", "-m", "initial"]);
    batches::populate(&repo);
    let commits = batches::commits_of(&repo);
    Fixture { repo, commits }
}

#[test]
fn power_cuts_on_a_loop_mounted_ext4_keep_applied_batches_and_all_or_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let mounted = match Mounted::new(scratch.path(), 64) {
        Ok(m) => m,
        Err(why) => {
            common::skip(
                "power_cuts_on_a_loop_mounted_ext4_*",
                &format!("needs root, loop devices and mkfs.ext4 ({why})"),
            );
            return;
        }
    };
    let seed = model::seed("power_cuts");
    let cuts = if model::long_mode() { model::trials(200) } else { 20 };
    let fx = fixture_at(&mounted.dir.join("repo"));
    let repo = &fx.repo;
    sh(&["sync", "-f", repo.dir.to_str().unwrap()]).unwrap();
    let limits = Limits { max_refs: 20, max_files: 20, symref: common::git_at_least((2, 46)) };
    let mut generator = Generator::new(seed, fx.commits.clone(), limits);
    let mut rng = model::Rng::new(seed ^ 0xc07);
    let umask = model::umask();
    let mut state = observe(repo);
    let (mut pace, mut recover_pace) = (Pace::new(), Pace::new());
    let mut recoveries_cut = 0;
    let (mut durable, mut cut_before, mut cut_after) = (0, 0, 0);
    let started = Instant::now();
    for cut in 0..cuts {
        let batch = generator.batch(&state);
        let after = batch.apply_to(&state, umask);
        let context = || format!("seed {seed}, cut {cut}\nbatch: {}", batch.to_json());
        let group = procs::spawn_group(repo, &["apply", "-"], batch.to_json().as_bytes());
        let ended = if cut % 3 == 0 {
            let ended = group.wait();
            mounted.cut_power();
            ended
        } else {
            std::thread::sleep(pace.delay(&mut rng, batch.refs.len() + batch.files.len()));
            mounted.cut_power();
            group.kill_after(Duration::ZERO)
        };
        let applied = ended.code() == Some(0);
        if cut % 3 != 0 {
            pace.learn(applied);
        }
        mounted.remount();
        repo.reboot();
        if pending_batches(repo) > 0 && rng.chance(50) {
            // The power fails again, this time during the recovery.
            let group = procs::spawn_group(repo, &["recover"], b"");
            std::thread::sleep(recover_pace.delay(&mut rng, batch.refs.len() + batch.files.len()));
            mounted.cut_power();
            let rec = group.kill_after(Duration::ZERO);
            recover_pace.learn(rec.code() == Some(0));
            recoveries_cut += 1;
            mounted.remount();
            repo.reboot();
            if rec.code() == Some(0) && pending_batches(repo) > 0 {
                panic!("recover exited 0, but the power cut brought its batch back\n{}", context());
            }
        }
        let seen = recover_and_check(repo, &state, &after).unwrap_or_else(|e| {
            keep_for_debugging(repo, &format!("power-cut-{cut}"));
            panic!("{e}\n{}", context())
        });
        match (applied, seen) {
            (true, Seen::After) => durable += 1,
            (true, Seen::Before) => {
                panic!("apply exited 0, but the batch was lost by the power cut\n{}", context())
            }
            (false, Seen::Before) => cut_before += 1,
            (false, Seen::After) => cut_after += 1,
        }
        state = observe(repo);
    }
    eprintln!(
        "power cuts: {cuts} in {:.1}s; after apply exited 0 (batch kept) {durable}, during apply: \
         before the commit point {cut_before}, after it {cut_after}; recoveries cut too \
         {recoveries_cut}; violations 0",
        started.elapsed().as_secs_f32()
    );
}

/// git's update-ref dying while it holds its locks (here: SIGKILLed by a reference-transaction
/// hook in state `prepared`, as the OOM killer could) must not leave its lock files behind:
/// they would refuse every later change of those refs ("File exists"). A `verify` of the branch
/// HEAD points at makes git lock HEAD too, as any change of that branch does.
#[test]
fn an_update_ref_killed_while_it_holds_its_locks_leaves_none_behind() {
    let fx = batches::fixture();
    let before = observe(&fx.repo);
    let (_, refs_only) = shapes(&fx, &before).into_iter().find(|(name, _)| *name == "refs-only").unwrap();
    let mut verify_head = refs_only.clone();
    verify_head
        .refs
        .push(RefOp::Verify { name: before.resolve("HEAD").to_string(), is: fx.repo.rev("HEAD") });
    for batch in [refs_only, verify_head] {
        let state = observe(&fx.repo);
        let after = batch.apply_to(&state, model::umask());
        let hook = fx
            .repo
            .write_reference_transaction_hook("#!/bin/sh\ntest \"$1\" = prepared && kill -9 $PPID\nexit 0\n");
        let ended = run_atomic(&fx.repo, &["apply", "-"], batch.to_json().as_bytes(), None);
        assert_ne!(ended.code(), Some(0), "update-ref was killed, apply cannot have succeeded: {ended:?}");
        std::fs::remove_file(&hook).unwrap();
        let seen =
            recover_and_check(&fx.repo, &state, &after).unwrap_or_else(|e| panic!("{e}\n{}", ended.stderr));
        assert_eq!(seen, Seen::Before);
    }
}

/// The fixture plus `n` more branches (packed, under `refs/heads/g9/`) and `n` more files
/// (under `d9/`): room for batches past the listed-refs (256 refs) and write-back (1,000 refs)
/// thresholds.
fn large_fixture(n: usize) -> Fixture {
    let fx = batches::fixture();
    quick_lock_waits(&fx.repo);
    let lines: String =
        (0..n).map(|i| format!("create refs/heads/g9/b{i} {}\n", fx.commits[i % 3])).collect();
    fx.repo.git_stdin(&["update-ref", "--stdin"], lines.as_bytes());
    fx.repo.git(&["pack-refs", "--all"]);
    for i in 0..n {
        fx.repo.write(&format!("d9/f{i}.txt"), &format!("file {i}\n"));
    }
    fx
}

/// A batch of 1,200 ref changes (updates, deletes, creates) and 1,200 file changes (new files
/// in new directories, overwrites with `expect`, deletes) on [`large_fixture`].
fn large_batch(fx: &Fixture, before: &State) -> Batch {
    let c = &fx.commits;
    let mut batch = Batch { message: Some("large".into()), ..Batch::default() };
    for i in 0..600 {
        let name = format!("refs/heads/g9/b{i}");
        let from = before.ref_id(&name);
        batch.refs.push(match i % 3 {
            0 => RefOp::Delete { name, from },
            _ => RefOp::Update { name, to: c[(i + 1) % 3].clone(), from },
        });
        batch.refs.push(RefOp::Create { name: format!("refs/heads/g8/g{}/n{i}", i % 7), to: c[3].clone() });
    }
    for i in 0..600 {
        let path = format!("d9/f{i}.txt");
        let blob = batches::blob_id(format!("file {i}\n").as_bytes());
        batch.files.push(match i % 2 {
            0 => FileOp::Write {
                path,
                content: format!("new {i}\n").into_bytes(),
                base64: false,
                mode: None,
                expect: Some(batches::Expect::Blob(blob)),
            },
            _ => FileOp::Delete { path, expect: Some(batches::Expect::Blob(blob)) },
        });
        let path = format!("d8/e{}/f{i}.txt", i % 11);
        let content = format!("added {i}\n").into_bytes();
        batch.files.push(FileOp::Write { path, content, base64: false, mode: None, expect: None });
    }
    batch
}

/// A batch of 1,200 refs and 1,200 files runs for seconds on a loaded CI machine: CI crashes it
/// at the points that matter for its size (git holding 1,200 locks, the write-back thread
/// running, half the files moved, the last barrier); `CRASH_LONG=1` at every point.
const LARGE_POINTS: &[&str] = &["prepared", "committed", "file-moved:600", "refs-committed", "synced"];

/// Batches of 1,200 refs and 1,200 files, crashed at the apply crash points, through the
/// listed-refs path, the syncfs barriers and the write-back thread.
#[test]
fn apply_crash_points_of_a_large_batch_are_all_or_nothing() {
    let fx = large_fixture(1200);
    let before = observe(&fx.repo);
    let batch = large_batch(&fx, &before);
    assert!(batch.refs.len() >= 1000 && batch.files.len() >= 1000 && batch.moves(&before) == 1200);
    let long = model::long_mode();
    let pick = |p: &str| long || LARGE_POINTS.contains(&p);
    crash_points_of("large batch crash points", &fx, vec![("large", batch)], &pick);
}

/// A large batch whose recovery crashes too (CI: while moving the first file and while git
/// commits; `CRASH_LONG=1`: at every recovery crash point).
#[test]
fn recovery_crash_points_of_a_large_batch_roll_forward() {
    let fx = large_fixture(1200);
    let before = observe(&fx.repo);
    let batch = large_batch(&fx, &before);
    let after = batch.apply_to(&before, model::umask());
    let moves = batch.moves(&before);
    let long = model::long_mode();
    for rec_point in
        recovery_points(moves).into_iter().filter(|p| long || p == "recover-file:1" || p == "recover-refs")
    {
        let repo = procs::copy_repo(&fx.repo);
        crash_apply(&repo, &batch, "committed", true).unwrap();
        let ended = recover(&repo, Some(&rec_point));
        let reached = recovery_reaches(&rec_point, moves, "committed", &batch).unwrap();
        died_as_expected(&ended, reached, "recover", &rec_point).unwrap();
        let seen = recover_and_check(&repo, &before, &after).unwrap_or_else(|e| panic!("{rec_point}: {e}"));
        assert_eq!(seen, Seen::After, "recovery crashed at {rec_point}");
    }
}

/// A large batch killed with its git children at spread instants of its run (write-back
/// thread, git's commit and the moves in flight), with `atomic.fsync` on and off.
#[test]
fn kills_of_a_large_batch_are_all_or_nothing() {
    let fx = large_fixture(1200);
    let before = observe(&fx.repo);
    let batch = large_batch(&fx, &before);
    let after = batch.apply_to(&before, model::umask());
    let json = batch.to_json();
    let mut seen_states = Vec::new();
    for fsync in ["true", "false"] {
        fx.repo.git(&["config", "atomic.fsync", fsync]);
        // The kill instants are eighths of a clean run's time: the quicker of two, as the first
        // run in a fresh copy can take several times as long (cold caches), and kills timed by it
        // then all land after the batch ended.
        let full = (0..2)
            .map(|_| {
                let clean = procs::copy_repo(&fx.repo);
                let full = procs::spawn_group(&clean, &["apply", "-"], json.as_bytes()).wait();
                assert_eq!(full.code(), Some(0), "{}", full.stderr);
                assert_eq!(check(&clean, &before, &after), Ok(Seen::After));
                full.elapsed
            })
            .min()
            .unwrap();
        let eighths: &[u32] = match (model::long_mode(), fsync) {
            (true, _) => &[1, 2, 3, 4, 5, 6, 7],
            // The commit point comes late (after staging 1,200 contents): most kills land late.
            (false, "true") => &[3, 5, 6, 7],
            (false, _) => &[4, 6, 7],
        };
        for &eighth in eighths {
            let repo = procs::copy_repo(&fx.repo);
            let ended =
                procs::spawn_group(&repo, &["apply", "-"], json.as_bytes()).kill_after(full * eighth / 8);
            let seen = recover_and_check(&repo, &before, &after)
                .unwrap_or_else(|e| panic!("atomic.fsync={fsync}, killed at {eighth}/8: {e}"));
            if ended.code() == Some(0) {
                assert_eq!(seen, Seen::After, "exit 0 but the batch is not there");
            }
            seen_states.push((fsync, eighth, ended.killed(), seen));
        }
    }
    eprintln!("large batch kills (atomic.fsync, eighth of a clean run, killed, state): {seen_states:?}");
    assert!(seen_states.iter().any(|s| s.2), "no kill landed");
}
