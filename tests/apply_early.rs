//! `git atomic apply FILE` starts git's update-ref before it opens the repository, in the one the
//! current directory guesses (src/repo.rs, `Repo::guess`): the batch must come out the same
//! whether the guess holds or not, and errors keep their order.

mod common;

use common::{Outcome, Repo, run_with_stdin};
use std::path::Path;

/// `git atomic apply --json FILE` run in `cwd`, the batch written to a file beside the repository.
fn apply_file_in(repo: &Repo, cwd: &Path, batch: &str) -> Outcome {
    let file = repo.tmp.path().join("batch.yaml");
    std::fs::write(&file, batch).unwrap();
    let mut cmd = repo.atomic_cmd(&["apply", "--json", file.to_str().unwrap()]);
    cmd.current_dir(cwd);
    Outcome::from(run_with_stdin(&mut cmd, b""))
}

/// The files git-atomic keeps in `atomic/` beside `lock`, `batches/` and `log/` (a trace left
/// behind would show here).
fn strays(git_dir: &Path) -> Vec<String> {
    let names = std::fs::read_dir(git_dir.join("atomic")).unwrap();
    let names = names.map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
    names.filter(|n| !["lock", "batches", "log"].contains(&n.as_str())).collect()
}

#[test]
fn a_batch_file_applied_from_the_top_of_the_work_tree_is_labelled_as_its_batch() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let batch = format!(
        "refs:\n  - create: refs/heads/early\n    to: {head}\nfiles:\n  - write: a.txt\n    content: \"a\\n\"\n"
    );
    let out = apply_file_in(&repo, &repo.dir, &batch);
    out.expect(0);
    let id = out.json()["id"].as_str().unwrap().to_string();
    assert_eq!(repo.ref_value("refs/heads/early"), Some(head));
    assert_eq!(repo.read("a.txt"), "a\n");
    // git's reflog message and the log entry name the batch git-atomic reports.
    assert_eq!(repo.reflog("refs/heads/early"), vec![format!("git atomic apply {id}")]);
    assert!(repo.path(&format!(".git/atomic/log/{id}/journal")).is_file(), "{out:?}");
    assert_eq!(strays(&repo.path(".git")), Vec::<String>::new());
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

#[test]
fn a_wrong_guess_is_dropped_and_the_batch_applies_where_git_says() {
    // `./.git` is the git dir, but `core.worktree` puts the work tree elsewhere: the guess (the
    // current directory) is wrong, and the early git, pinned to it, must not be the one used.
    let repo = Repo::new();
    let other = repo.tmp.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    repo.git(&["config", "core.worktree", other.to_str().unwrap()]);
    // The work tree git is pinned to, as the user's hook sees it: the early git's would be ours.
    let seen = repo.tmp.path().join("seen");
    repo.write_reference_transaction_hook(&format!(
        "#!/bin/sh\necho \"$1 $GIT_WORK_TREE\" >> '{}'\n",
        seen.display()
    ));
    let head = repo.rev("HEAD");
    let batch = format!(
        "message: moved\nrefs:\n  - create: refs/heads/w\n    to: {head}\nfiles:\n  - write: w.txt\n    content: w\n"
    );
    let out = apply_file_in(&repo, &repo.dir, &batch);
    out.expect(0);
    assert_eq!(std::fs::read_to_string(other.join("w.txt")).unwrap(), "w");
    assert!(!repo.dir.join("w.txt").exists(), "written in the guessed work tree: {out:?}");
    assert_eq!(repo.ref_value("refs/heads/w"), Some(head));
    assert_eq!(repo.reflog("refs/heads/w"), vec!["moved".to_string()]);
    let other = other.canonicalize().unwrap();
    let seen = std::fs::read_to_string(&seen).unwrap();
    let states: Vec<&str> = seen.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(states, ["prepared", "committed"], "{seen}");
    assert!(seen.lines().all(|l| l.ends_with(&format!(" {}", other.display()))), "{seen}");
    assert_eq!(strays(&repo.path(".git")), Vec::<String>::new(), "the dropped git's trace is gone");
    assert_eq!(repo.pending_batches(), Vec::<String>::new());
}

#[test]
fn outside_a_repository_that_is_the_error_even_when_the_batch_file_is_bad() {
    let repo = Repo::new();
    let outside = repo.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("bad.yaml"), "refs: [").unwrap();
    for file in ["no-such-batch.yaml", "bad.yaml"] {
        let mut cmd = repo.atomic_cmd(&["apply", file]);
        cmd.current_dir(&outside).env("GIT_CEILING_DIRECTORIES", repo.tmp.path());
        let out = Outcome::from(run_with_stdin(&mut cmd, b""));
        out.expect(128);
        assert!(out.stderr.contains("not a git repository"), "{file}: {out:?}");
    }
    // In a repository, the same missing file is the batch's error (invalid, exit 2).
    let mut cmd = repo.atomic_cmd(&["apply", "no-such-batch.yaml"]);
    cmd.current_dir(&repo.dir);
    let out = Outcome::from(run_with_stdin(&mut cmd, b""));
    out.expect(2);
    assert!(out.stderr.contains("cannot read 'no-such-batch.yaml'"), "{out:?}");
}
