//! Concurrency (issue 16): several `git atomic apply` processes and plain `git update-ref` and
//! `git commit` processes on the same refs and file at once. Every batch moves
//! `refs/heads/shared` (compare-and-swap with `from:`) and writes `counter.txt` naming the new
//! commit (with `expect:`), and half of them also move `main`, where plain `git commit` runs too.
//! Afterwards: no update reported as done is lost, every batch is all-or-nothing (the file names
//! the newest batch commit on the shared chain, and no refused batch left a trace), and every
//! refusal is exit 1 or 4.

mod common;

use common::{Repo, run_with_stdin};
use std::collections::HashSet;
use std::sync::Mutex;

const ATOMIC_WORKERS: usize = 4;
const BATCHES_EACH: usize = 8;
const ATTEMPTS_EACH: usize = 30;
/// The pause of plain git between two commands, so that batches (slower: several processes
/// each) get their turn too.
const PLAIN_PAUSE: std::time::Duration = std::time::Duration::from_millis(15);
const UPDATE_REF_WORKERS: usize = 2;
const UPDATES_EACH: usize = 25;
const COMMITS: usize = 20;

/// What the processes reported.
#[derive(Default)]
struct Log {
    /// Commits an applied batch put on `shared` and `main`.
    applied_shared: Vec<String>,
    applied_main: Vec<String>,
    /// Commits of batches that were refused (1 or 4).
    refused: Vec<String>,
    /// Commits `git update-ref` put on `shared`.
    plain_shared: Vec<String>,
    /// Messages of `git commit`s that succeeded on `main`.
    plain_commits: Vec<String>,
    refused_batches: usize,
    /// Every process run.
    operations: usize,
}

fn git_out(repo: &Repo, args: &[&str]) -> Option<String> {
    let out = repo.git_cmd(args).output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn commit_on(repo: &Repo, parent: &str, message: &str) -> String {
    let tree = repo.rev(&format!("{parent}^{{tree}}"));
    repo.git(&["commit-tree", &tree, "-p", parent, "-m", message]).trim().to_string()
}

/// Tries batches until `BATCHES_EACH` applied, or `ATTEMPTS_EACH` were made.
fn atomic_worker(repo: &Repo, w: usize, log: &Mutex<Log>) {
    let mut applied = 0;
    for k in 0..ATTEMPTS_EACH {
        if applied == BATCHES_EACH {
            break;
        }
        let (Some(shared), Some(main)) = (
            git_out(repo, &["rev-parse", "refs/heads/shared"]),
            git_out(repo, &["rev-parse", "refs/heads/main"]),
        ) else {
            panic!("refs readable")
        };
        let counter = std::fs::read(repo.path("counter.txt")).unwrap();
        let expect = repo.git_stdin(&["hash-object", "--stdin"], &counter).trim().to_string();
        let new_shared = commit_on(repo, &shared, &format!("atomic w{w} k{k}"));
        let mut batch = format!(
            "refs:\n  - update: refs/heads/shared\n    to: {new_shared}\n    from: {shared}\nfiles:\n  - write: counter.txt\n    content: \"{new_shared}\\n\"\n    expect: {expect}\n"
        );
        let new_main = (k % 2 == 0).then(|| commit_on(repo, &main, &format!("atomic-main w{w} k{k}")));
        if let Some(new_main) = &new_main {
            batch.push_str(&format!("  - write: w{w}.txt\n    content: \"{k}\\n\"\n"));
            batch = batch.replacen(
                "files:",
                &format!("  - update: refs/heads/main\n    to: {new_main}\n    from: {main}\nfiles:"),
                1,
            );
        }
        let mut cmd = repo.atomic_cmd(&["apply", "--wait", "30", "-"]);
        let out = run_with_stdin(&mut cmd, batch.as_bytes());
        let code = out.status.code();
        let mut log = log.lock().unwrap();
        log.operations += 1;
        match code {
            Some(0) => {
                applied += 1;
                log.applied_shared.push(new_shared);
                log.applied_main.extend(new_main);
            }
            Some(1 | 4) => {
                log.refused_batches += 1;
                log.refused.push(new_shared);
                log.refused.extend(new_main);
            }
            _ => panic!("batch exited {code:?}: {}\n{batch}", String::from_utf8_lossy(&out.stderr)),
        }
    }
}

fn update_ref_worker(repo: &Repo, w: usize, log: &Mutex<Log>) {
    for k in 0..UPDATES_EACH {
        let Some(old) = git_out(repo, &["rev-parse", "refs/heads/shared"]) else { panic!("shared exists") };
        let new = commit_on(repo, &old, &format!("plain w{w} k{k}"));
        let ok =
            repo.git_cmd(&["update-ref", "refs/heads/shared", &new, &old]).output().unwrap().status.success();
        let mut log = log.lock().unwrap();
        log.operations += 1;
        if ok {
            log.plain_shared.push(new);
        }
        drop(log);
        std::thread::sleep(PLAIN_PAUSE);
    }
}

fn commit_worker(repo: &Repo, log: &Mutex<Log>) {
    for k in 0..COMMITS {
        let message = format!("plain-commit {k}");
        let ok = repo
            .git_cmd(&["commit", "-q", "--allow-empty", "-m", &message])
            .output()
            .unwrap()
            .status
            .success();
        let mut log = log.lock().unwrap();
        log.operations += 1;
        if ok {
            log.plain_commits.push(message);
        }
        drop(log);
        std::thread::sleep(PLAIN_PAUSE);
    }
}

fn first_parent_chain(repo: &Repo, rev: &str, format: &str) -> Vec<String> {
    repo.git(&["log", "--first-parent", &format!("--format={format}"), rev])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn atomic_batches_and_plain_git_race_without_lost_updates_or_half_batches() {
    let repo = Repo::new();
    repo.write("counter.txt", "init\n");
    repo.git(&["update-ref", "refs/heads/shared", "HEAD"]);
    let log = Mutex::new(Log::default());
    std::thread::scope(|s| {
        for w in 0..ATOMIC_WORKERS {
            let (repo, log) = (&repo, &log);
            s.spawn(move || atomic_worker(repo, w, log));
        }
        for w in 0..UPDATE_REF_WORKERS {
            let (repo, log) = (&repo, &log);
            s.spawn(move || update_ref_worker(repo, w, log));
        }
        s.spawn(|| commit_worker(&repo, &log));
    });
    let log = log.into_inner().unwrap();
    let shared_chain: HashSet<String> =
        first_parent_chain(&repo, "refs/heads/shared", "%H").into_iter().collect();
    let main_chain: HashSet<String> =
        first_parent_chain(&repo, "refs/heads/main", "%H").into_iter().collect();
    let main_messages: HashSet<String> =
        first_parent_chain(&repo, "refs/heads/main", "%s").into_iter().collect();
    for id in log.applied_shared.iter().chain(&log.plain_shared) {
        assert!(shared_chain.contains(id), "lost update on shared: {id}");
    }
    for id in &log.applied_main {
        assert!(main_chain.contains(id), "lost update on main: {id}");
    }
    for message in &log.plain_commits {
        assert!(main_messages.contains(message), "lost git commit: {message}");
    }
    for id in &log.refused {
        assert!(!shared_chain.contains(id) && !main_chain.contains(id), "a refused batch left {id}");
    }
    // The file names the newest batch commit on the shared chain: both halves of every batch.
    let newest_batch = first_parent_chain(&repo, "refs/heads/shared", "%H %s")
        .into_iter()
        .find(|line| line.contains(" atomic "))
        .map(|line| line.split(' ').next().unwrap().to_string());
    let expected = newest_batch.map_or("init\n".to_string(), |id| format!("{id}\n"));
    assert_eq!(repo.read("counter.txt"), expected);
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
    repo.atomic(&["recover"]).expect(0);
    assert!(!log.applied_shared.is_empty(), "some batch applied");
    eprintln!(
        "concurrency: {} operations; batches {} applied, {} refused; update-ref {} of {}; commit {} of {}",
        log.operations,
        log.applied_shared.len(),
        log.refused_batches,
        log.plain_shared.len(),
        UPDATE_REF_WORKERS * UPDATES_EACH,
        log.plain_commits.len(),
        COMMITS
    );
}
