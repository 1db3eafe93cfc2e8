//! `git atomic apply` on repositories as git makes them: packed refs, linked worktrees, bare,
//! reftable, subdirectories, `GIT_DIR`/`GIT_WORK_TREE`, `git -c`, and concurrent batches (issue 3).

mod common;

use common::{Outcome, Repo, bin_dir, git_binary, run_with_stdin};
use std::path::Path;
use std::process::Command;

#[test]
fn packed_refs_are_updated_and_deleted() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/p1", &head]);
    repo.git(&["update-ref", "refs/heads/p2", &head]);
    repo.git(&["update-ref", "refs/tags/t1", &head]);
    repo.git(&["pack-refs", "--all"]);
    assert!(!repo.path(".git/refs/heads/p1").exists(), "p1 is packed");
    repo.apply_unchanged(&format!("refs:\n  - delete: refs/heads/p1\n    from: {next}\n"), 1);
    repo.apply_unchanged("refs:\n  - create: refs/heads/p1/x\n    to: HEAD\n", 1);
    repo.apply(&format!(
        "refs:\n  - delete: refs/heads/p1\n    from: {head}\n  - update: refs/heads/p2\n    to: {next}\n    from: {head}\n  - verify: refs/tags/t1\n    is: {head}\n"
    ))
    .expect(0);
    assert_eq!(repo.ref_value("refs/heads/p1"), None);
    assert_eq!(repo.ref_value("refs/heads/p2"), Some(next));
    let packed = std::fs::read_to_string(repo.path(".git/packed-refs")).unwrap();
    assert!(!packed.contains("refs/heads/p1"), "{packed}");
    // A stale packed-refs lock blocks the delete of a packed ref: refused, nothing changed.
    std::fs::write(repo.path(".git/packed-refs.lock"), "").unwrap();
    repo.apply_unchanged("refs:\n  - delete: refs/tags/t1\n", 1);
}

#[test]
fn a_linked_worktree_gets_its_own_files_and_head_and_the_common_journal() {
    let repo = Repo::new();
    let wt = repo.tmp.path().join("wt");
    repo.git(&["worktree", "add", "-q", "-b", "wt", wt.to_str().unwrap()]);
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    let out = repo.apply_in(
        &wt,
        &["apply", "--json", "-"],
        &format!(
            "refs:\n  - update: HEAD\n    to: {next}\nfiles:\n  - write: only-in-wt/f.txt\n    content: w\n  - delete: README\n"
        ),
    );
    out.expect(0);
    assert_eq!(out.json()["refs"][0]["ref"], "refs/heads/wt");
    assert_eq!(repo.rev("refs/heads/wt"), next);
    assert_eq!(repo.rev("refs/heads/main"), head, "the main worktree's branch stays");
    assert_eq!(std::fs::read_to_string(wt.join("only-in-wt/f.txt")).unwrap(), "w");
    assert!(!wt.join("README").exists());
    assert!(!repo.exists("only-in-wt"));
    assert!(repo.exists("README"));
    assert!(wt.join(".git").is_file(), "the worktree's .git file stays");
    assert!(repo.path(".git/atomic").is_dir(), "state lives in the common dir");
    assert!(!repo.path(".git/worktrees/wt/atomic").exists());
    assert!(!wt.join("atomic").exists());

    // A refusal in the linked worktree leaves both worktrees byte-identical.
    let before_main = repo.snapshot();
    let before_wt = common::snapshot_tree(&wt);
    let out = repo.apply_in(
        &wt,
        &["apply", "--json", "-"],
        &format!("refs:\n  - update: HEAD\n    to: {head}\n    from: {head}\nfiles:\n  - write: x\n    content: x\n"),
    );
    out.expect(1);
    assert_eq!(repo.snapshot(), before_main);
    assert_eq!(common::snapshot_tree(&wt), before_wt);
}

#[test]
fn per_worktree_refs_live_in_their_worktree() {
    let repo = Repo::new();
    let wt = repo.tmp.path().join("wt");
    repo.git(&["worktree", "add", "-q", "--detach", wt.to_str().unwrap()]);
    let head = repo.rev("HEAD");
    repo.apply_in(&wt, &["apply", "--json", "-"], "refs:\n  - create: refs/worktree/mark\n    to: HEAD\n")
        .expect(0);
    let in_wt = repo.git_in(&wt, &["rev-parse", "refs/worktree/mark"]);
    assert_eq!(in_wt.trim(), head);
    assert_eq!(repo.ref_value("refs/worktree/mark"), None, "not in the main worktree");

    // A refused batch removes the directories git made for per-worktree and shared refs alike.
    std::fs::write(repo.path(".git/refs/heads/zz.lock"), "").unwrap();
    let before_main = repo.snapshot();
    let before_wt = common::snapshot_tree(&wt);
    repo.apply_in(
        &wt,
        &["apply", "--json", "-"],
        "refs:\n  - create: refs/worktree/a/b/c\n    to: HEAD\n  - create: refs/heads/n/m\n    to: HEAD\n  - update: refs/heads/zz\n    to: HEAD\n",
    )
    .expect(1);
    assert_eq!(repo.snapshot(), before_main);
    assert_eq!(common::snapshot_tree(&wt), before_wt);
}

#[test]
fn a_bare_repository_takes_refs() {
    let repo = Repo::init(&["--bare"]);
    let head = repo.rev("refs/heads/main");
    let out = repo.apply(&format!(
        "message: bare\nrefs:\n  - create: refs/heads/b\n    to: main\n  - verify: refs/heads/main\n    is: {head}\n"
    ));
    out.expect(0);
    assert_eq!(repo.ref_value("refs/heads/b"), Some(head.clone()));
    assert!(repo.path("atomic").is_dir(), "state lives in the bare repository");
    repo.apply_unchanged("refs:\n  - create: refs/heads/b\n    to: main\n", 1);
    repo.apply_unchanged("refs:\n  - delete: refs/heads/b\n    from: absent\n", 2);
    repo.apply(&format!("refs:\n  - delete: refs/heads/b\n    from: {head}\n")).expect(0);
    assert_eq!(repo.ref_value("refs/heads/b"), None);
}

#[test]
fn a_reftable_repository_works_like_a_files_one() {
    if !common::needs_git("a_reftable_repository_works_like_a_files_one", (2, 45)) {
        return;
    }
    let repo = Repo::init(&["--ref-format=reftable"]);
    let head = repo.rev("HEAD");
    let next = repo.commit_id("next");
    repo.git(&["update-ref", "refs/heads/a/b", &head]);
    let out = repo.apply(&format!(
        "message: on reftable\nrefs:\n  - update: HEAD\n    to: {next}\n    from: {head}\n  - create: refs/heads/topic\n    to: {head}\n  - delete: refs/heads/a/b\n    from: {head}\n  - verify: refs/tags/none\n    is: absent\nfiles:\n  - write: f.txt\n    content: f\n"
    ));
    out.expect(0);
    assert_eq!(repo.rev("refs/heads/main"), next);
    assert_eq!(repo.ref_value("refs/heads/topic"), Some(head.clone()));
    assert_eq!(repo.ref_value("refs/heads/a/b"), None);
    assert_eq!(repo.reflog("refs/heads/topic")[0], "on reftable");
    assert_eq!(repo.read("f.txt"), "f");
    assert!(!repo.path(".git/refs/heads/topic").exists());

    repo.apply_unchanged(
        &format!("refs:\n  - update: refs/heads/main\n    to: {head}\n    from: {head}\n"),
        1,
    );
    repo.apply_unchanged("refs:\n  - create: refs/heads/topic\n    to: HEAD\n", 1);
    repo.apply_unchanged("refs:\n  - create: refs/heads/main/x\n    to: HEAD\n", 1);
    repo.apply_unchanged(
        &format!(
            "refs:\n  - create: refs/heads/n/m\n    to: HEAD\n  - verify: refs/heads/topic\n    is: {next}\n"
        ),
        1,
    );
    repo.apply_unchanged("refs:\n  - verify: refs/heads/main/x\n    is: absent\n", 0);
    // A stack locked by another process: git refuses, nothing changes.
    std::fs::write(repo.path(".git/reftable/tables.list.lock"), "").unwrap();
    repo.apply_unchanged(
        "refs:\n  - create: refs/heads/locked\n    to: HEAD\nfiles:\n  - write: l\n    content: l\n",
        1,
    );
    std::fs::remove_file(repo.path(".git/reftable/tables.list.lock")).unwrap();
    repo.apply_unchanged(
        &format!("refs:\n  - update: HEAD\n    to: {head}\n  - delete: refs/heads/main\n"),
        2,
    );
}

#[test]
fn a_sha256_repository_takes_sha256_ids() {
    let repo = Repo::init(&["--object-format=sha256"]);
    let head = repo.rev("HEAD");
    assert_eq!(head.len(), 64);
    let readme = repo.blob_of("README");
    let out = repo.apply(&format!(
        "refs:\n  - create: refs/heads/t\n    to: HEAD\n  - verify: refs/heads/main\n    is: {head}\nfiles:\n  - write: README\n    content: x\n    expect: {readme}\n  - write: copy\n    blob: HEAD:README\n"
    ));
    out.expect(0);
    assert_eq!(repo.ref_value("refs/heads/t"), Some(head.clone()));
    assert_eq!(repo.read("copy"), "hello\n");
    assert_eq!(out.json()["files"][0]["new"], repo.blob_of("README"));
    // A SHA-1-sized id is not an id here.
    repo.apply_unchanged(&format!("refs:\n  - verify: refs/heads/main\n    is: {}\n", &head[..40]), 2);
}

#[test]
fn from_a_subdirectory_paths_are_from_the_root_and_sources_from_the_cwd() {
    let repo = Repo::new();
    repo.write("sub/dir/input.txt", "input bytes\n");
    repo.write("sub/dir/local.txt", "l");
    let cwd = repo.path("sub/dir");
    let out = repo.apply_in(
        &cwd,
        &["apply", "--json", "-"],
        "files:\n  - write: top.txt\n    source: input.txt\n  - write: sub/dir/copy.txt\n    source: ../dir/input.txt\n  - delete: sub/dir/local.txt\n",
    );
    out.expect(0);
    assert_eq!(repo.read("top.txt"), "input bytes\n");
    assert_eq!(repo.read("sub/dir/copy.txt"), "input bytes\n");
    assert!(!repo.exists("sub/dir/local.txt"));
    assert!(!repo.exists("sub/dir/top.txt"));
    let out = repo.apply_in(&cwd, &["apply", "--json", "-"], "files:\n  - write: x\n    source: top.txt\n");
    out.expect(2);
}

#[test]
fn a_cwd_reached_through_a_symlink_writes_into_the_real_work_tree() {
    let repo = Repo::new();
    repo.write("sub/keep", "k");
    let link = repo.tmp.path().join("link");
    std::os::unix::fs::symlink(&repo.dir, &link).unwrap();
    for cwd in [link.clone(), link.join("sub")] {
        repo.apply_in(
            &cwd,
            &["apply", "--json", "-"],
            "files:\n  - write: via-link/f.txt\n    content: f\n  - delete: sub/gone\n",
        )
        .expect(0);
        assert_eq!(repo.read("via-link/f.txt"), "f");
        repo.apply_in(&cwd, &["apply", "-"], "files:\n  - delete: via-link/f.txt\n").expect(0);
        assert!(!repo.exists("via-link"));
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
}

/// Runs git-atomic with the repository named by `GIT_DIR`/`GIT_WORK_TREE`, from `cwd`.
fn apply_with_env(repo: &Repo, cwd: &Path, env: &[(&str, &Path)], batch: &str) -> Outcome {
    let mut cmd = repo.atomic_cmd(&["apply", "--json", "-"]);
    cmd.current_dir(cwd);
    for (key, value) in env {
        cmd.env(key, value);
    }
    Outcome::from(run_with_stdin(&mut cmd, batch.as_bytes()))
}

#[test]
fn git_dir_and_git_work_tree_are_honoured() {
    let repo = Repo::new();
    let elsewhere = repo.tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let git_dir = repo.path(".git");
    let out = apply_with_env(
        &repo,
        &elsewhere,
        &[("GIT_DIR", &git_dir), ("GIT_WORK_TREE", &repo.dir)],
        "refs:\n  - create: refs/heads/env\n    to: HEAD\nfiles:\n  - write: d/env.txt\n    content: e\n",
    );
    out.expect(0);
    assert!(repo.ref_value("refs/heads/env").is_some());
    assert_eq!(repo.read("d/env.txt"), "e");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // A work tree apart from its git dir, holding one file: deleting it keeps the root.
    let tree = repo.tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("only")).unwrap();
    std::fs::write(tree.join("only/file"), "x").unwrap();
    let out = apply_with_env(
        &repo,
        &tree,
        &[("GIT_DIR", &git_dir), ("GIT_WORK_TREE", &tree)],
        "files:\n  - delete: only/file\n    expect: present\n",
    );
    out.expect(0);
    assert!(tree.is_dir(), "the work-tree root is never removed");
    assert_eq!(std::fs::read_dir(&tree).unwrap().count(), 0);
    assert!(repo.exists("README"), "the repository's own work tree is untouched");

    // Relative values, from a subdirectory: paths still start at the work-tree root.
    std::fs::create_dir(repo.path("sub")).unwrap();
    let out = apply_with_env(
        &repo,
        &repo.path("sub"),
        &[("GIT_DIR", Path::new("../.git")), ("GIT_WORK_TREE", Path::new(".."))],
        "files:\n  - write: rel.txt\n    content: r\n",
    );
    out.expect(0);
    assert_eq!(repo.read("rel.txt"), "r");
    assert!(!repo.exists("sub/rel.txt"));

    // GIT_DIR alone: the cwd is the work tree, as in git.
    let out = apply_with_env(
        &repo,
        &tree,
        &[("GIT_DIR", &git_dir)],
        "files:\n  - write: here.txt\n    content: h\n",
    );
    out.expect(0);
    assert!(tree.join("here.txt").exists());
    assert!(!repo.exists("here.txt"));
}

/// `git [-c …] atomic apply` through the real git, which finds `git-atomic` on `PATH`. With
/// `trace`, runs under `strace -f` and also returns how many sync calls every process made.
fn git_atomic(repo: &Repo, pre: &[&str], batch: &str, trace: bool) -> (Outcome, Option<usize>) {
    let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
    let log = repo.tmp.path().join("strace.log");
    let mut cmd = if trace {
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-e", "trace=fsync,fdatasync,syncfs,sync,sync_file_range", "-o"])
            .arg(&log)
            .arg(git_binary());
        cmd
    } else {
        Command::new(git_binary())
    };
    common::seal(&mut cmd, &repo.home());
    cmd.current_dir(&repo.dir).env("PATH", path).args(pre).args(["atomic", "apply", "--json", "-"]);
    let out = Outcome::from(run_with_stdin(&mut cmd, batch.as_bytes()));
    let syncs = trace.then(|| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().filter(|l| l.contains("sync")).count()
    });
    (out, syncs)
}

fn have_strace() -> bool {
    Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success())
}

#[test]
fn git_dash_c_atomic_fsync_false_reaches_the_command() {
    let repo = Repo::new();
    let trace = have_strace();
    if !trace {
        common::skip(
            "git_dash_c_atomic_fsync_false_reaches_the_command (sync counts)",
            "strace is not installed",
        );
    }
    let batch =
        "refs:\n  - update: refs/heads/nofsync\n    to: HEAD\nfiles:\n  - write: n.txt\n    content: n\n";
    let (out, syncs) = git_atomic(&repo, &["-c", "atomic.fsync=false"], batch, trace);
    out.expect(0);
    assert_eq!(out.json()["status"], "applied");
    assert!(repo.ref_value("refs/heads/nofsync").is_some());
    assert_eq!(repo.read("n.txt"), "n");
    if let Some(syncs) = syncs {
        assert_eq!(syncs, 0, "atomic.fsync=false syncs nothing");
        let (out, syncs) = git_atomic(&repo, &[], &batch.replace("content: n", "content: m"), true);
        out.expect(0);
        assert!(syncs.unwrap() > 0, "the default atomic.fsync=true syncs");
    }
    // A bad value is refused by the command itself: the `-c` reached it.
    let before = repo.snapshot();
    let (out, _) = git_atomic(
        &repo,
        &["-c", "atomic.fsync=maybe"],
        "files:\n  - write: m2.txt\n    content: m\n",
        false,
    );
    out.expect(128);
    assert!(out.stderr.contains("atomic.fsync"), "{out:?}");
    assert_eq!(repo.snapshot(), before);
}

/// `atomic.fsync=false` syncs nothing for a large batch either: the write-back thread that
/// flushes git's files while it works through 1,000 refs or more belongs to the barriers, and
/// starts only with them.
#[test]
fn atomic_fsync_false_syncs_nothing_for_a_thousand_refs() {
    if !have_strace() {
        common::skip("atomic_fsync_false_syncs_nothing_for_a_thousand_refs", "strace is not installed");
        return;
    }
    let repo = Repo::new();
    let refs: String =
        (0..1000).map(|i| format!("  - create: refs/heads/many/{i}\n    to: HEAD\n")).collect();
    let (out, syncs) = git_atomic(&repo, &["-c", "atomic.fsync=false"], &format!("refs:\n{refs}"), true);
    out.expect(0);
    assert!(repo.ref_value("refs/heads/many/999").is_some());
    assert_eq!(syncs, Some(0), "atomic.fsync=false syncs nothing, whatever the batch's size");
}

#[test]
fn git_config_parameters_set_as_git_does_are_honoured() {
    let repo = Repo::new();
    let mut cmd = repo.atomic_cmd(&["apply", "--json", "-"]);
    cmd.env("GIT_CONFIG_PARAMETERS", "'atomic.fsync'='false'");
    let out = Outcome::from(run_with_stdin(&mut cmd, b"files:\n  - write: p.txt\n    content: p\n"));
    out.expect(0);
    assert_eq!(repo.read("p.txt"), "p");
}

/// One worker: read the ref and the file, then move both with preconditions; retry when
/// another worker got there first. Returns how many batches it applied.
fn worker(repo: &Repo, rounds: usize, worker_id: usize) -> usize {
    let mut applied = 0;
    let mut attempts = 0;
    while applied < rounds {
        attempts += 1;
        assert!(attempts < 200, "worker {worker_id} starves");
        let old = repo.rev("refs/heads/counter");
        let blob = repo.blob_of("counter.txt");
        let count: usize = repo.read("counter.txt").trim().parse().unwrap();
        let tree = repo.rev("HEAD^{tree}");
        let new = repo
            .git(&["commit-tree", &tree, "-p", &old, "-m", &format!("w{worker_id} {count}")])
            .trim()
            .to_string();
        let out = repo.apply_args(
            &["apply", "--json", "--wait", "30", "-m", "counter", "-"],
            &format!(
                "refs:\n  - update: refs/heads/counter\n    to: {new}\n    from: {old}\nfiles:\n  - write: counter.txt\n    content: \"{}\\n\"\n    expect: {blob}\n",
                count + 1
            ),
        );
        match out.code {
            0 => applied += 1,
            1 | 4 => continue,
            _ => panic!("worker {worker_id}: {out:?}"),
        }
    }
    eprintln!("worker {worker_id}: {applied} applied in {attempts} attempts");
    applied
}

#[test]
fn concurrent_read_modify_write_batches_lose_no_update() {
    const WORKERS: usize = 4;
    const ROUNDS: usize = 8;
    let repo = Repo::new();
    repo.write("counter.txt", "0\n");
    let head = repo.rev("HEAD");
    repo.git(&["update-ref", "-m", "start", "refs/heads/counter", &head]);
    let applied: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let repo = &repo;
                s.spawn(move || worker(repo, ROUNDS, w))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(applied, WORKERS * ROUNDS);
    assert_eq!(repo.read("counter.txt"), format!("{applied}\n"));
    let reflog = repo.reflog("refs/heads/counter");
    assert_eq!(reflog.iter().filter(|m| *m == "counter").count(), applied);
    assert_eq!(reflog.len(), applied + 1);
    // Every batch built on the one before: the ref's history is one chain of `applied` commits.
    let chain = repo.git(&["rev-list", "--count", &format!("{head}..refs/heads/counter")]);
    assert_eq!(chain.trim(), applied.to_string());
    assert_eq!(repo.pending_batches(), Vec::<String>::new(), "no batch left behind");
}
