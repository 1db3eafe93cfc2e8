//! Issue 17: `git atomic log`, `undo` and `redo` (SPEC §7), on real repositories.
//!
//! - round trips over random batches: apply, undo (refs and work tree byte-identical to before),
//!   redo (the after-state again);
//! - walking back three batches and forward again; a new batch ends the redo chain;
//! - refusal after a hand edit or a moved ref, naming it, with nothing changed;
//! - everything comes back: untracked deletes, modes, symlinks, renames, symrefs, directories;
//! - pre-images survive `git gc --prune=now`; pruning at `atomic.logLimit` and `log --prune`;
//! - recoveries are logged (rolled back with why, rolled forward);
//! - a kill at every crash point of apply and of undo leaves the log and the repository agreeing;
//! - bare repositories, reftable, linked worktrees, `atomic.fsync=false`.

#[path = "common/batches.rs"]
mod batches;
mod common;
#[path = "common/model.rs"]
mod model;
#[path = "common/procs.rs"]
mod procs;

use batches::{Generator, Limits};
use common::Repo;
use git_atomic::crash::POINTS;
use model::{State, observe};
use procs::{copy_repo, recover, run_atomic};
use serde_json::Value;

fn log(repo: &Repo) -> Vec<Value> {
    let out = repo.atomic(&["log", "--json"]);
    out.expect(0);
    serde_json::from_str::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn same(want: &State, got: &State, what: &str) {
    assert!(want == got, "{what}:\n{}", model::diff(want, got));
}

#[test]
fn random_batches_undo_to_the_byte_and_redo_to_the_after_state() {
    let fx = batches::fixture();
    let seed = model::seed("history_round_trips");
    eprintln!("seed {seed}");
    let limits = Limits { max_refs: 4, max_files: 6, symref: common::git_at_least((2, 46)) };
    let mut generator = Generator::new(seed, fx.commits.clone(), limits);
    for trial in 0..model::trials(12) {
        let repo = copy_repo(&fx.repo);
        let before = observe(&repo);
        let batch = generator.batch(&before);
        let applied = run_atomic(&repo, &["apply", "-"], batch.to_json().as_bytes(), None);
        assert_eq!(applied.code(), Some(0), "trial {trial}: {}\n{}", applied.stderr, batch.to_json());
        let after = observe(&repo);
        if after == before {
            continue;
        }
        let undo = repo.atomic(&["undo"]);
        assert_eq!(undo.code, 0, "trial {trial}: undo: {}\nbatch: {}", undo.stderr, batch.to_json());
        same(&before, &observe(&repo), &format!("trial {trial}: after undo of {}", batch.to_json()));
        repo.atomic(&["redo"]).expect(0);
        same(&after, &observe(&repo), &format!("trial {trial}: after redo of {}", batch.to_json()));
    }
}

#[test]
fn undo_walks_back_three_batches_and_redo_walks_forward() {
    let repo = Repo::new();
    let mut states = vec![observe(&repo)];
    for i in 0..3 {
        repo.apply(&format!("message: b{i}\nfiles:\n  - write: f{i}.txt\n    content: \"{i}\\n\"\n  - write: shared.txt\n    content: \"v{i}\\n\"\n")).expect(0);
        states.push(observe(&repo));
    }
    for i in (0..3).rev() {
        repo.atomic(&["undo"]).expect(0);
        same(&states[i], &observe(&repo), &format!("undo to {i}"));
    }
    let none = repo.atomic(&["undo"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("nothing to undo"), "{}", none.stderr);
    for (i, state) in states.iter().enumerate().skip(1) {
        repo.atomic(&["redo"]).expect(0);
        same(state, &observe(&repo), &format!("redo to {i}"));
    }
    let none = repo.atomic(&["redo"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("nothing to redo"), "{}", none.stderr);
    // An undo, then a new batch: the redo chain ends.
    repo.atomic(&["undo"]).expect(0);
    repo.apply("files:\n  - write: other.txt\n    content: x\n").expect(0);
    assert_eq!(repo.atomic(&["redo"]).code, 1);
    let entries = log(&repo);
    assert_eq!(entries[0]["outcome"], "applied");
    let undone: Vec<&Value> = entries.iter().filter(|e| !e["undone-by"].is_null()).collect();
    assert!(!undone.is_empty(), "undo links are shown");
}

#[test]
fn undo_is_refused_naming_the_first_change_and_changes_nothing() {
    let repo = Repo::new();
    repo.write("a.txt", "a\n");
    repo.apply(
        "refs:\n  - create: refs/heads/t\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: \"b\\n\"\n",
    )
    .expect(0);
    repo.write("a.txt", "edited by hand\n");
    let snapshot = repo.snapshot();
    let out = repo.atomic(&["undo"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("'a.txt'"), "{}", out.stderr);
    assert_eq!(repo.snapshot(), snapshot);
    repo.write("a.txt", "b\n");
    let c = repo.commit_id("moved");
    repo.git(&["update-ref", "refs/heads/t", &c]);
    let out = repo.atomic(&["undo"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("refs/heads/t"), "{}", out.stderr);
    assert_eq!(repo.read("a.txt"), "b\n");
}

#[test]
fn undo_restores_untracked_deletes_modes_symlinks_renames_symrefs_and_directories() {
    let repo = Repo::new();
    let main = repo.git(&["symbolic-ref", "HEAD"]).trim().to_string();
    repo.write("untracked.txt", "precious\n");
    repo.write("tool.sh", "#!/bin/sh\n");
    std::os::unix::fs::symlink("untracked.txt", repo.path("link")).unwrap();
    repo.write("from/r.txt", "moved\n");
    repo.git(&["branch", "side"]);
    let before = observe(&repo);
    let symref = if common::git_at_least((2, 46)) {
        "  - symref: HEAD\n    to: refs/heads/side\n  - create: refs/heads/made\n    to: HEAD\n"
    } else {
        "  - create: refs/heads/made\n    to: HEAD\n"
    };
    let batch = format!(
        "refs:\n{symref}files:\n  - delete: untracked.txt\n  - write: tool.sh\n    content: \"#!/bin/sh\\necho\\n\"\n    mode: \"100755\"\n  - write: link\n    content: tool.sh\n    mode: \"120000\"\n  - rename: from/r.txt\n    to: new/deep/r.txt\n  - write: made/x.txt\n    content: x\n"
    );
    repo.apply(&batch).expect(0);
    assert!(!repo.exists("untracked.txt") && repo.exists("made/x.txt"));
    repo.atomic(&["undo"]).expect(0);
    same(&before, &observe(&repo), "after undo");
    assert!(!repo.exists("made") && !repo.exists("new"), "directories the batch made are gone");
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]).trim(), main);
    assert_eq!(std::fs::read_link(repo.path("link")).unwrap().to_str(), Some("untracked.txt"));
}

#[test]
fn pre_images_survive_gc_prune_now() {
    let repo = Repo::new();
    repo.write("u.txt", "never in git\n");
    repo.apply("files:\n  - delete: u.txt\n").expect(0);
    repo.git(&["gc", "--prune=now", "--quiet"]);
    repo.git(&["reflog", "expire", "--expire=now", "--all"]);
    repo.git(&["gc", "--prune=now", "--quiet"]);
    repo.atomic(&["undo"]).expect(0);
    assert_eq!(repo.read("u.txt"), "never in git\n");
}

#[test]
fn the_log_keeps_log_limit_entries_and_prunes_on_demand() {
    let repo = Repo::new();
    repo.git(&["config", "atomic.logLimit", "3"]);
    for i in 0..5 {
        repo.apply(&format!("files:\n  - write: f.txt\n    content: \"{i}\\n\"\n")).expect(0);
    }
    let entries = log(&repo);
    assert_eq!(entries.len(), 3);
    let dirs = std::fs::read_dir(repo.path(".git/atomic/log")).unwrap().count();
    assert_eq!(dirs, 3, "pre-images go with their entry");
    repo.git(&["config", "atomic.logLimit", "1"]);
    repo.atomic(&["log", "--prune"]).expect(0);
    assert_eq!(log(&repo).len(), 1);
    let one = repo.atomic(&["log", "-n", "1", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&one.stdout).unwrap().as_array().unwrap().len(), 1);
}

#[test]
fn a_batch_that_changes_nothing_is_not_logged_and_a_refusal_neither() {
    let repo = Repo::new();
    repo.apply("refs:\n  - verify: refs/heads/nope\n    is: absent\n").expect(0);
    repo.apply_unchanged("files:\n  - delete: x\n    expect: present\n", 1);
    assert!(log(&repo).is_empty());
}

#[test]
fn recoveries_are_logged_with_their_outcome_and_why() {
    let repo = Repo::new();
    repo.crash_apply("prepared", "refs:\n  - create: refs/heads/r\n    to: HEAD\n");
    repo.atomic(&["recover"]).expect(0);
    let entries = log(&repo);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["outcome"], "rolled-back");
    assert!(entries[0]["why"].as_str().unwrap().contains("commit point"), "{:?}", entries[0]);
    repo.crash_apply(
        "committed",
        "refs:\n  - create: refs/heads/f\n    to: HEAD\nfiles:\n  - write: w.txt\n    content: w\n",
    );
    repo.atomic(&["recover"]).expect(0);
    let entries = log(&repo);
    assert_eq!(entries[0]["outcome"], "rolled-forward");
    let full = repo.atomic(&["log", entries[0]["id"].as_str().unwrap()]);
    full.expect(0);
    assert!(full.stdout.contains("w.txt") && full.stdout.contains("refs/heads/f"), "{}", full.stdout);
    // Undo of a batch recovery finished works like any other.
    repo.atomic(&["undo"]).expect(0);
    assert!(!repo.exists("w.txt"));
    assert_eq!(repo.ref_value("refs/heads/f"), None);
}

/// A batch applied with `atomic.history=false` is not logged when recovery finishes it either:
/// the journal's record says so, whatever the setting is at recovery.
#[test]
fn a_batch_applied_without_history_is_not_logged_by_its_recovery() {
    let repo = Repo::new();
    repo.git(&["config", "atomic.history", "false"]);
    let batch = "refs:\n  - create: refs/heads/f\n    to: HEAD\nfiles:\n  - write: w.txt\n    content: w\n";
    repo.crash_apply("committed", batch);
    repo.git(&["config", "atomic.history", "true"]);
    repo.atomic(&["recover"]).expect(0);
    assert_eq!(repo.read("w.txt"), "w");
    assert!(log(&repo).is_empty(), "{:?}", log(&repo));
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

/// Whether the log agrees with what the repository shows: the batch took effect exactly when the
/// log has an entry for it that took effect.
fn agreement(repo: &Repo, before: &State, after: &State, count_before: usize) -> Result<(), String> {
    let now = observe(repo);
    let effective =
        log(repo).iter().filter(|e| e["outcome"] == "applied" || e["outcome"] == "rolled-forward").count();
    match (now == *before, now == *after) {
        (true, _) if effective == count_before => Ok(()),
        (_, true) if effective == count_before + 1 => Ok(()),
        (b, a) => Err(format!("before {b}, after {a}, {effective} effective entries (had {count_before})")),
    }
}

const BATCH: &str = "refs:\n  - update: refs/heads/main\n    to: HEAD~1\n  - create: refs/heads/n\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: new\n  - delete: b.txt\n  - rename: c.txt\n    to: d/c.txt\n  - write: e.txt\n    content: e\n";

fn crash_fixture() -> Repo {
    let repo = Repo::new();
    repo.git(&["commit", "-q", "--allow-empty", "-m", "second"]);
    repo.write("a.txt", "old\n");
    repo.write("b.txt", "b\n");
    repo.write("c.txt", "c\n");
    repo
}

#[test]
fn a_kill_at_every_crash_point_of_apply_and_of_undo_leaves_log_and_repository_agreeing() {
    let fx = crash_fixture();
    let before = observe(&fx);
    let clean = copy_repo(&fx);
    clean.apply(BATCH).expect(0);
    let after = observe(&clean);
    let apply_points: Vec<&str> = POINTS.iter().copied().filter(|p| !p.starts_with("recover-")).collect();
    let mut failures = Vec::new();
    for point in &apply_points {
        let repo = copy_repo(&fx);
        let ended = run_atomic(&repo, &["apply", "-"], BATCH.as_bytes(), Some(point));
        let rec = recover(&repo, None);
        let result = match (ended.killed(), rec.code()) {
            (true, Some(0)) => agreement(&repo, &before, &after, 0),
            _ => Err(format!("not killed or recovery failed: {} {}", ended.stderr, rec.stderr)),
        };
        if let Err(e) = result {
            failures.push(format!("apply killed at {point}: {e}"));
        }
    }
    // The undo's own crash points, and recovery's, on an applied batch.
    let mut undo_points: Vec<String> = apply_points.iter().map(|p| p.to_string()).collect();
    undo_points.extend(["recover-refs", "recover-synced"].map(|p| format!("committed+{p}")));
    for point in &undo_points {
        let repo = copy_repo(&clean);
        let (at, recovery_at) = match point.split_once('+') {
            Some((a, r)) => (a, Some(r)),
            None => (point.as_str(), None),
        };
        let ended = run_atomic(&repo, &["undo"], b"", Some(at));
        if let Some(r) = recovery_at {
            let _ = recover(&repo, Some(r));
        }
        let rec = recover(&repo, None);
        let result = match (ended.killed(), rec.code()) {
            (true, Some(0)) => agreement(&repo, &after, &before, 1),
            _ => Err(format!("not killed or recovery failed: {} {}", ended.stderr, rec.stderr)),
        };
        if let Err(e) = result {
            failures.push(format!("undo killed at {point}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn undo_works_in_bare_repositories_on_reftable_across_worktrees_and_without_fsync() {
    // Bare: refs only.
    let bare = Repo::init(&["--bare"]);
    let tip = bare.ref_value("refs/heads/main").expect("the bare fixture has main");
    bare.apply(&format!("refs:\n  - create: refs/tags/v9\n    to: {tip}\n")).expect(0);
    assert_eq!(bare.ref_value("refs/tags/v9").as_deref(), Some(tip.as_str()));
    bare.atomic(&["undo"]).expect(0);
    assert_eq!(bare.ref_value("refs/tags/v9"), None);
    // Reftable, with fsync off.
    if common::git_at_least((2, 45)) {
        let rt = Repo::init(&["--ref-format=reftable"]);
        rt.git(&["config", "atomic.fsync", "false"]);
        let before = observe(&rt);
        rt.apply("refs:\n  - create: refs/heads/x\n    to: HEAD\nfiles:\n  - write: r.txt\n    content: r\n")
            .expect(0);
        rt.atomic(&["undo"]).expect(0);
        same(&before, &observe(&rt), "reftable undo");
    }
    // A linked worktree: the entry records it, and undo by id from the main one works there.
    let repo = Repo::new();
    let wt = repo.dir.parent().unwrap().join("wt");
    repo.git(&["worktree", "add", "-q", "-b", "wtb", wt.to_str().unwrap()]);
    let out = repo.apply_in(&wt, &["apply", "--json", "-"], "files:\n  - write: in-wt.txt\n    content: w\n");
    out.expect(0);
    let id = out.json()["id"].as_str().unwrap().to_string();
    assert!(wt.join("in-wt.txt").exists());
    let entries = log(&repo);
    assert_eq!(entries[0]["work_tree"].as_str(), wt.canonicalize().unwrap().to_str());
    assert_eq!(repo.atomic(&["undo"]).code, 1, "nothing to undo in the main work tree");
    repo.atomic(&["undo", &id]).expect(0);
    assert!(!wt.join("in-wt.txt").exists());
}

#[test]
fn an_edit_after_the_recheck_is_kept_in_the_log_and_reported() {
    let repo = Repo::new();
    repo.write("a.txt", "old\n");
    repo.write("b.txt", "b\n");
    let mut cmd = repo.atomic_cmd(&["apply", "--json", "-"]);
    cmd.env("GIT_TEST_ATOMIC_RUN_AT", "committed")
        .env("GIT_TEST_ATOMIC_RUN", "printf 'saved late\\n' > a.txt; printf 'late b\\n' > b.txt");
    let out: common::Outcome =
        common::run_with_stdin(&mut cmd, b"files:\n  - write: a.txt\n    content: new\n  - delete: b.txt\n")
            .into();
    out.expect(0);
    assert_eq!(repo.read("a.txt"), "new");
    let kept = out.json()["kept"].as_array().unwrap().clone();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0]["path"], "a.txt");
    assert_eq!(kept[0]["found"].as_str(), Some(batches::blob_id(b"saved late\n").as_str()));
    let saved = std::fs::read_to_string(kept[0]["saved"].as_str().unwrap()).unwrap();
    assert_eq!(saved, "saved late\n");
    assert_eq!(log(&repo)[0]["kept"].as_array().unwrap().len(), 2);
    // Undo brings back what the files held when they were moved: the late edits.
    repo.atomic(&["undo"]).expect(0);
    assert_eq!(repo.read("a.txt"), "saved late\n");
    assert_eq!(repo.read("b.txt"), "late b\n");
}

#[test]
fn an_abandoned_batch_is_in_the_log_with_why_and_cannot_be_undone() {
    let repo = Repo::new();
    repo.write("a.txt", "old\n");
    repo.crash_apply("committed", "files:\n  - write: a.txt\n    content: new\n");
    repo.write("a.txt", "someone else\n");
    assert_eq!(repo.atomic(&["recover"]).code, 3);
    let id = repo.pending_batches().pop().expect("the batch waits for a person");
    repo.atomic(&["recover", "--abandon", &id]).expect(0);
    let entries = log(&repo);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["outcome"], "abandoned");
    assert!(entries[0]["why"].as_str().unwrap().contains("a.txt"), "{:?}", entries[0]);
    assert_eq!(repo.atomic(&["undo", &id]).code, 1);
    assert_eq!(repo.read("a.txt"), "someone else\n");
}
