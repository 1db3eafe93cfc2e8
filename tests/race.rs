//! Issue 16's race test: while `git atomic apply` or `git atomic recover` moves a batch's files
//! into `d/`, another process renames `d/` aside, puts something else in its place for a few
//! milliseconds (a symlink to a directory outside the work tree, a file, or nothing) and puts
//! `d/` back, again and again at random instants. Whatever the instant, nothing may ever be
//! written outside the work tree, and the batch ends all-or-nothing: applied (exit 0), refused
//! with nothing changed (exit 1), or interrupted after its commit point (exit 3), after which a
//! recovery without the attacker finishes it into the real `d/`.
//!
//! Environment: `RACE_ROUNDS=N` rounds per case (default 6), `RACE_SEED=S` replays a run (each
//! test prints its seed), `RACE_FILES=N` files per batch (default 600).

mod common;

use common::Repo;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the attacker puts where `d/` was while the real `d/` is aside.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Swap {
    /// A symlink to a directory outside the work tree.
    Symlink,
    /// A regular file.
    File,
    /// Nothing: the directory is renamed away and back.
    Away,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small xorshift generator: the rounds are replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("RACE_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        });
        eprintln!("{test}: RACE_SEED={seed}");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One round's repository: `d/` holds a file the batch leaves alone; `outside` is a sibling of
/// the work tree that must stay empty.
struct Scene {
    repo: Repo,
    outside: PathBuf,
    files: usize,
}

impl Scene {
    fn new(files: usize) -> Scene {
        let repo = Repo::new();
        repo.git(&["config", "atomic.fsync", "false"]);
        repo.write("d/kept", "kept\n");
        let outside = repo.tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        Scene { repo, outside, files }
    }

    /// A batch creating a branch and `files` new files under `d/`.
    fn batch(&self) -> String {
        let mut batch = String::from("refs:\n  - update: refs/heads/race\n    to: HEAD\nfiles:\n");
        for i in 0..self.files {
            batch.push_str(&format!("  - write: d/f{i}\n    content: \"{i}\\n\"\n"));
        }
        batch
    }

    /// What was written outside the work tree (must stay empty).
    fn outside_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// How many of the batch's files `d/` holds with their new content, and whether the branch
    /// exists.
    fn applied(&self) -> (usize, bool) {
        let d = self.repo.path("d");
        let present = (0..self.files)
            .filter(|i| std::fs::read_to_string(d.join(format!("f{i}"))).is_ok_and(|s| s == format!("{i}\n")))
            .count();
        (present, self.repo.ref_value("refs/heads/race").is_some())
    }

    /// Runs `git atomic ARGS` with `input` on stdin while an attacker swaps `d/`; returns the exit
    /// code (-1 for a signal), stderr, and whether the attacker put the real `d/` back every time.
    fn race(&self, args: &[&str], input: &str, swap: Swap, rng: &mut Rng) -> (i32, String, bool) {
        let input_path = self.repo.tmp.path().join("batch.yaml");
        std::fs::write(&input_path, input).unwrap();
        let mut cmd: Command = self.repo.atomic_cmd(args);
        cmd.stdin(std::fs::File::open(&input_path).unwrap()).stdout(Stdio::null()).stderr(Stdio::piped());
        let stop = Arc::new(AtomicBool::new(false));
        let attacker = {
            let (d, outside, stop) = (self.repo.path("d"), self.outside.clone(), stop.clone());
            let seed = rng.below(u64::MAX);
            std::thread::spawn(move || attack(&d, &outside, swap, &stop, Rng(seed | 1)))
        };
        let out = cmd.spawn().expect("git-atomic starts").wait_with_output().unwrap();
        stop.store(true, Ordering::SeqCst);
        let restored = attacker.join().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned(), restored)
    }
}

/// Swaps `d` at random instants until `stop`; returns whether the real `d` was put back each time
/// (it cannot be when git-atomic made a new `d` while the real one was away).
fn attack(d: &Path, outside: &Path, swap: Swap, stop: &AtomicBool, mut rng: Rng) -> bool {
    let aside = d.with_file_name("d.aside");
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_micros(rng.below(15_000)));
        if std::fs::rename(d, &aside).is_err() {
            continue;
        }
        let _ = match swap {
            Swap::Symlink => std::os::unix::fs::symlink(outside, d),
            Swap::File => std::fs::write(d, "not a directory\n"),
            Swap::Away => Ok(()),
        };
        std::thread::sleep(Duration::from_micros(1000 + rng.below(20_000)));
        match std::fs::symlink_metadata(d) {
            Ok(m) if m.file_type().is_symlink() || m.is_file() => std::fs::remove_file(d).unwrap(),
            _ => {}
        }
        if std::fs::rename(&aside, d).is_err() {
            return false;
        }
    }
    true
}

/// Checks one round's outcome; returns a description of what is wrong, if anything.
fn judge(scene: &Scene, code: i32, stderr: &str, restored: bool, recovering: bool) -> Option<String> {
    let outside = scene.outside_entries();
    if !outside.is_empty() {
        return Some(format!("{} entries written outside the work tree (exit {code})", outside.len()));
    }
    let allowed: &[i32] = if recovering { &[0, 3] } else { &[0, 1, 3] };
    if !allowed.contains(&code) {
        return Some(format!("exit {code}: {}", stderr.trim()));
    }
    if !restored {
        return None; // the attacker lost its own directory; only the escape is judged
    }
    let code = match code {
        3 => {
            let again = scene.repo.atomic(&["recover"]);
            if again.code != 0 {
                return Some(format!("recovery without the attacker ended {}: {}", again.code, again.stderr));
            }
            0
        }
        code => code,
    };
    let (present, branch) = scene.applied();
    let all = present == scene.files && branch;
    let none = present == 0 && !branch;
    let kept = scene.repo.read("d/kept") == "kept\n";
    match code {
        0 if all && kept => None,
        1 if none && kept && scene.repo.pending_batches().is_empty() => None,
        _ => Some(format!(
            "exit {code} left {present}/{} files, branch {branch}: {}",
            scene.files,
            stderr.trim()
        )),
    }
}

/// Runs `rounds` rounds of one case and asserts that none went wrong.
fn rounds(name: &str, swap: Swap, recovering: bool) {
    let mut rng = Rng::new(name);
    let rounds = env_number("RACE_ROUNDS", 6);
    let files = env_number("RACE_FILES", 600) as usize;
    let mut failures = Vec::new();
    let mut codes = std::collections::BTreeMap::<i32, usize>::new();
    let mut displaced = 0;
    for round in 0..rounds {
        let scene = Scene::new(files);
        let batch = scene.batch();
        let before = scene.repo.snapshot();
        let (code, stderr, restored) = if recovering {
            let moved = rng.below(files as u64 / 4);
            let point = if moved == 0 { "committed".to_string() } else { format!("file-moved:{moved}") };
            scene.repo.crash_apply(&point, &batch);
            scene.race(&["recover"], "", swap, &mut rng)
        } else {
            scene.race(&["apply", "-"], &batch, swap, &mut rng)
        };
        *codes.entry(code).or_default() += 1;
        displaced += usize::from(!restored);
        let why = judge(&scene, code, &stderr, restored, recovering).or_else(|| {
            let changed = code == 1 && restored && scene.repo.snapshot() != before;
            changed.then(|| "refused, but the repository changed".to_string())
        });
        if let Some(why) = why {
            failures.push(format!("round {round}: {why}"));
        }
    }
    eprintln!(
        "{name}: {rounds} rounds, exit codes {codes:?}, {displaced} with d/ displaced, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} of {rounds} rounds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn apply_with_a_parent_swapped_for_a_symlink() {
    rounds("apply/symlink", Swap::Symlink, false);
}

#[test]
fn apply_with_a_parent_swapped_for_a_file() {
    rounds("apply/file", Swap::File, false);
}

#[test]
fn apply_with_a_parent_renamed_away() {
    rounds("apply/away", Swap::Away, false);
}

#[test]
fn recovery_with_a_parent_swapped_for_a_symlink() {
    rounds("recover/symlink", Swap::Symlink, true);
}

#[test]
fn recovery_with_a_parent_swapped_for_a_file() {
    rounds("recover/file", Swap::File, true);
}

#[test]
fn recovery_with_a_parent_renamed_away() {
    rounds("recover/away", Swap::Away, true);
}

/// The cross-device fallback goes through the handles too: a linked worktree on another file
/// system (tmpfs) than the common dir holding the staged files gets copies, with their modes.
#[test]
fn a_work_tree_on_another_file_system_gets_copies() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let shm = Path::new("/dev/shm");
    let repo = Repo::new();
    let Ok(scratch) = tempfile::tempdir_in(shm) else {
        common::skip("a_work_tree_on_another_file_system_gets_copies", "no /dev/shm");
        return;
    };
    if std::fs::metadata(&scratch).unwrap().dev() == std::fs::metadata(&repo.dir).unwrap().dev() {
        common::skip(
            "a_work_tree_on_another_file_system_gets_copies",
            "/dev/shm is on the same file system as the repository",
        );
        return;
    }
    let linked = scratch.path().join("linked");
    repo.git(&["worktree", "add", "-q", linked.to_str().unwrap(), "-b", "side"]);
    std::fs::create_dir(linked.join("d")).unwrap();
    std::fs::write(linked.join("d/old"), "old\n").unwrap();
    let batch = "files:\n  - write: d/e/new\n    content: \"new\\n\"\n  - write: run\n    content: \"#!/bin/sh\\n\"\n    mode: \"100755\"\n  - write: d/ln\n    content: ../README\n    mode: \"120000\"\n  - delete: d/old\n";
    repo.apply_in(&linked, &["apply", "-"], batch).expect(0);
    assert_eq!(std::fs::read_to_string(linked.join("d/e/new")).unwrap(), "new\n");
    assert!(std::fs::metadata(linked.join("run")).unwrap().permissions().mode() & 0o111 != 0);
    assert_eq!(std::fs::read_link(linked.join("d/ln")).unwrap(), Path::new("../README"));
    assert!(!linked.join("d/old").exists());
    let temps: Vec<_> = std::fs::read_dir(linked.join("d"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".git-atomic-tmp"))
        .collect();
    assert!(temps.is_empty(), "no temp copy left behind");
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

/// The recheck just before the commit point walks the work tree afresh without following a
/// link: a parent swapped for a symlink while git prepared the refs (here by the user's own
/// reference-transaction hook) refuses the batch with nothing changed, instead of failing after
/// the commit point.
#[test]
fn a_parent_swapped_before_the_commit_point_refuses_the_batch() {
    let scene = Scene::new(3);
    scene.repo.write_reference_transaction_hook(
        "#!/bin/sh\ntest \"$1\" = prepared && test -d d && mv d d.aside && ln -s ../outside d\nexit 0\n",
    );
    let out = scene.repo.apply(&scene.batch());
    out.expect(1);
    assert!(out.stderr.contains("changed while the batch was being applied"), "{out:?}");
    assert_eq!(scene.outside_entries(), Vec::<String>::new());
    assert!(std::fs::symlink_metadata(scene.repo.path("d")).unwrap().file_type().is_symlink());
    let aside: Vec<_> =
        std::fs::read_dir(scene.repo.path("d.aside")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(aside, ["kept"]);
    assert_eq!(scene.applied(), (0, false));
    assert_eq!(scene.repo.pending_batches(), Vec::<String>::new());
}

/// Directory handles need no read permission, as paths do not: a write into and a delete from a
/// `wx` directory work (as root this passes regardless; as a user it failed with `O_RDONLY`
/// handles).
#[test]
fn a_directory_without_read_permission_is_written_through_its_handle() {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::new();
    repo.write("d/kept", "kept\n");
    std::fs::set_permissions(repo.path("d"), std::fs::Permissions::from_mode(0o333)).unwrap();
    let out = repo.apply("files:\n  - write: d/f0\n    content: x\n  - delete: d/kept\n");
    std::fs::set_permissions(repo.path("d"), std::fs::Permissions::from_mode(0o755)).unwrap();
    out.expect(0);
    assert_eq!(repo.read("d/f0"), "x");
    assert!(!repo.exists("d/kept"));
}
