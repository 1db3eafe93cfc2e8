//! The reference-transaction hook: recovery by plain git commands, isolation while a batch is
//! interrupted, chaining of an existing hook, core.hooksPath, worktrees and bare repositories.

mod common;

use common::Repo;
use std::path::Path;

const BATCH: &str = "refs:\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: dir/new.txt\n    content: \"new\\n\"\n";

fn install(repo: &Repo) {
    repo.atomic(&["hook", "install"]).expect(0);
}

fn pending_batches(git_common_dir: &Path) -> usize {
    std::fs::read_dir(git_common_dir.join("atomic/batches")).map(|d| d.count()).unwrap_or(0)
}

/// The hook recovers from a detached process once the git command has exited: wait for it.
fn pending_after_hook(git_common_dir: &Path) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pending_batches(git_common_dir) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    pending_batches(git_common_dir)
}

#[test]
fn a_plain_update_ref_finishes_a_batch_interrupted_after_its_commit_point() {
    let repo = Repo::new();
    install(&repo);
    repo.crash_apply("committed", BATCH);
    assert_eq!(pending_batches(&repo.dir.join(".git")), 1);
    repo.git(&["update-ref", "refs/heads/unrelated", "HEAD"]);
    assert_eq!(pending_after_hook(&repo.dir.join(".git")), 0, "the hook should have recovered the batch");
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(repo.rev("HEAD")));
    assert_eq!(repo.read("dir/new.txt"), "new\n");
}

#[test]
fn a_plain_commit_rolls_back_a_batch_interrupted_before_its_commit_point() {
    let repo = Repo::new();
    install(&repo);
    let before = repo.snapshot();
    repo.crash_apply("prepared", BATCH);
    repo.write("other.txt", "x");
    repo.git(&["add", "other.txt"]);
    repo.git(&["commit", "-q", "-m", "unrelated"]);
    assert_eq!(pending_after_hook(&repo.dir.join(".git")), 0);
    assert_eq!(repo.ref_value("refs/heads/topic"), None);
    assert!(!repo.exists("dir/new.txt"));
    assert!(!repo.exists("dir"), "the batch's directories must not survive a roll-back");
    assert!(before.len() < repo.snapshot().len(), "the commit itself went through");
}

#[test]
fn a_plain_git_command_on_a_ref_of_an_interrupted_batch_is_refused_with_the_batch_named() {
    let repo = Repo::new();
    install(&repo);
    repo.crash_apply("committed", BATCH);
    let out = repo.git_cmd(&["update-ref", "refs/heads/topic", "HEAD"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("interrupted git-atomic batch") && stderr.contains("git atomic recover"),
        "{stderr}"
    );
    repo.atomic(&["recover"]).expect(0);
    repo.git(&["update-ref", "-d", "refs/heads/topic"]);
}

#[test]
fn an_existing_hook_keeps_running_with_the_same_input_and_its_refusal_counts() {
    let repo = Repo::new();
    let log = repo.tmp.path().join("hook.log");
    let script = format!(
        "#!/bin/sh\nbad=\nwhile read -r old new ref; do\n  echo \"$1 $ref\" >> '{}'\n  [ \"$1\" = prepared ] && [ \"$ref\" = refs/heads/forbidden ] && bad=1\ndone\n[ -n \"$bad\" ] && exit 1\nexit 0\n",
        log.display()
    );
    repo.write_reference_transaction_hook(&script);
    install(&repo);
    repo.git(&["update-ref", "refs/heads/allowed", "HEAD"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("prepared refs/heads/allowed") && text.contains("committed refs/heads/allowed"),
        "{text}"
    );
    let out = repo.git_cmd(&["update-ref", "refs/heads/forbidden", "HEAD"]).output().unwrap();
    assert!(!out.status.success(), "the chained hook's refusal must be respected");
    // With a batch pending, the binary runs the chained hook itself.
    repo.crash_apply("committed", BATCH);
    repo.git(&["update-ref", "refs/heads/allowed2", "HEAD"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("prepared refs/heads/allowed2"), "{text}");
    assert_eq!(pending_after_hook(&repo.dir.join(".git")), 0);
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(repo.rev("HEAD")));
}

#[test]
fn install_twice_is_a_no_op_and_uninstall_restores_the_previous_hook_exactly() {
    let repo = Repo::new();
    repo.write_reference_transaction_hook("#!/bin/sh\n# mine\nexit 0\n");
    let before = repo.snapshot();
    install(&repo);
    let once = repo.snapshot();
    install(&repo);
    assert_eq!(repo.snapshot(), once);
    let status = repo.atomic(&["status", "--json"]);
    assert_eq!(status.expect(0).json()["hook_installed"], true);
    repo.atomic(&["hook", "uninstall"]).expect(0);
    assert_eq!(repo.snapshot(), before);
    repo.atomic(&["hook", "uninstall"]).expect(2);
}

#[test]
fn core_hooks_path_relative_and_absolute_is_honoured() {
    for relative in [true, false] {
        let repo = Repo::new();
        let path = if relative {
            "myhooks".to_string()
        } else {
            repo.tmp.path().join("abs-hooks").display().to_string()
        };
        repo.git(&["config", "core.hooksPath", &path]);
        install(&repo);
        let dir = if relative { repo.dir.join("myhooks") } else { std::path::PathBuf::from(&path) };
        assert!(dir.join("reference-transaction").exists(), "hook not in {}", dir.display());
        repo.crash_apply("committed", BATCH);
        repo.git(&["update-ref", "refs/heads/unrelated", "HEAD"]);
        assert_eq!(pending_after_hook(&repo.dir.join(".git")), 0);
    }
}

#[test]
fn a_batch_interrupted_in_a_linked_worktree_is_finished_from_the_main_one_into_its_worktree() {
    let repo = Repo::new();
    install(&repo);
    let linked = repo.tmp.path().join("linked");
    repo.git(&["worktree", "add", "-q", "-b", "side", linked.to_str().unwrap()]);
    let mut cmd = repo.atomic_cmd(&["apply", "-"]);
    cmd.current_dir(&linked).env("GIT_TEST_ATOMIC_CRASH", "committed");
    let batch = "refs:\n  - update: HEAD\n    to: HEAD~0\n  - create: refs/heads/from-linked\n    to: HEAD\nfiles:\n  - write: only-in-linked.txt\n    content: x\n";
    let out = common::run_with_stdin(&mut cmd, batch.as_bytes());
    assert!(!out.status.success());
    assert_eq!(pending_batches(&repo.dir.join(".git")), 1, "state lives in the common dir");
    repo.git(&["update-ref", "refs/heads/unrelated", "HEAD"]);
    assert_eq!(pending_after_hook(&repo.dir.join(".git")), 0);
    assert!(linked.join("only-in-linked.txt").exists());
    assert!(!repo.exists("only-in-linked.txt"));
    assert!(repo.ref_value("refs/heads/from-linked").is_some());
}

#[test]
fn a_bare_repository_takes_refs_only_and_its_hook_recovers() {
    let repo = Repo::init(&["--bare"]);
    install(&repo);
    repo.crash_apply("committed", "refs:\n  - create: refs/heads/topic\n    to: main\n");
    repo.git(&["update-ref", "refs/heads/unrelated", "main"]);
    assert_eq!(pending_after_hook(&repo.dir), 0);
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(repo.rev("main")));
    repo.apply("files:\n  - write: a\n    content: x\n").expect(2);
}

/// Review finding: deleting a ref when packed-refs exists runs a nested packed-refs transaction
/// whose `committed`/`aborted` hook comes while git still holds the outer locks. Recovering
/// there took git's locks and lost the batch's update (or, with an infinite lock timeout, hung).
#[test]
fn a_branch_delete_with_packed_refs_is_refused_and_the_batch_still_lands() {
    let repo = Repo::new();
    let a = repo.rev("HEAD");
    repo.git(&["branch", "other"]);
    repo.git(&["pack-refs", "--all"]);
    repo.git(&["branch", "topic"]);
    install(&repo);
    let b = repo.commit_id("b");
    repo.crash_apply(
        "committed",
        &format!("refs:\n  - update: refs/heads/topic\n    to: {b}\n    from: {a}\n"),
    );
    let out = repo.git_cmd(&["-c", "core.filesRefLockTimeout=-1", "branch", "-D", "topic"]).output().unwrap();
    assert!(!out.status.success(), "the delete must be refused: {out:?}");
    assert_eq!(pending_after_hook(&repo.dir.join(".git")), 0);
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(b));
}

/// Review finding: a batch that moved the main worktree's HEAD refused commits in every
/// linked worktree, whose HEAD is another ref.
#[test]
fn a_batch_on_one_worktrees_head_does_not_block_another_worktrees_head() {
    let repo = Repo::new();
    install(&repo);
    let linked = repo.tmp.path().join("linked");
    repo.git(&["worktree", "add", "-q", "-b", "side", linked.to_str().unwrap()]);
    repo.crash_apply("committed", "refs:\n  - update: HEAD\n    to: HEAD\n");
    repo.git_in(&linked, &["commit", "-q", "--allow-empty", "-m", "in the linked worktree"]);
    assert_eq!(pending_after_hook(&repo.dir.join(".git")), 0);
}

/// git's update-ref starts before the batch is validated; a batch that is then refused or invalid
/// must not reach git at all: end of input would commit an empty transaction and run the hooks.
#[test]
fn a_refused_or_invalid_batch_runs_no_reference_transaction_hook() {
    let repo = Repo::new();
    repo.write_reference_transaction_hook("#!/bin/sh\necho \"$1\" >> .git/hook-ran\n");
    repo.git(&["update-ref", "refs/heads/taken", "HEAD"]);
    std::fs::remove_file(repo.path(".git/hook-ran")).unwrap();
    // Refused by a ref precondition, refused by a work-tree precondition (checked after
    // validation), and invalid.
    repo.apply_unchanged("refs:\n  - create: refs/heads/taken\n    to: HEAD\n", 1);
    repo.apply_unchanged(
        "refs:\n  - create: refs/heads/new\n    to: HEAD\nfiles:\n  - write: README\n    content: x\n    expect: absent\n",
        1,
    );
    repo.apply_unchanged("refs:\n  - create: refs/heads/new\n    to: no-such-revision\n", 2);
    assert!(!repo.exists(".git/hook-ran"), "a hook ran for a batch that changed nothing");
    repo.apply("refs:\n  - create: refs/heads/new\n    to: HEAD\n").expect(0);
    assert_eq!(repo.read(".git/hook-ran"), "prepared\ncommitted\n", "one transaction, with the batch in it");
}
