//! Issue 19, across repositories: `apply` of a batch with `repositories:` commits the
//! coordinator (a superproject), its submodule and a sibling repository all together or not at
//! all, including after a SIGKILL at each crash point of the coordinator, followed by recovery in
//! every order of the repositories (presumed abort before the decision, commit after it).

mod common;
#[path = "common/model.rs"]
mod model;
#[path = "common/procs.rs"]
mod procs;

use common::Repo;
use model::{State, leftovers, observe};
use procs::run_atomic;
use std::path::Path;

/// A superproject with a real submodule `sub`, and a sibling repository.
struct World {
    top: Repo,
    sibling: Repo,
    /// The submodule's upstream (not part of any batch).
    _upstream: Repo,
}

impl World {
    fn new() -> World {
        let upstream = Repo::new();
        let top = Repo::new();
        let url = upstream.dir.to_str().unwrap().to_string();
        top.git(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", &url, "sub"]);
        top.git(&["commit", "-q", "-m", "add sub"]);
        let sibling = Repo::new();
        for repo in [&top, &sibling] {
            repo.atomic(&["hook", "install"]).expect(0);
        }
        World { top, sibling, _upstream: upstream }
    }

    fn sub(&self) -> Repo {
        // A view of the submodule's work tree; its temp dir is a throwaway.
        Repo { tmp: tempfile::tempdir().unwrap(), dir: self.top.dir.join("sub") }
    }

    fn sibling_path(&self) -> String {
        relative(&self.top.dir, &self.sibling.dir)
    }

    /// Observes every repository: (superproject, submodule, sibling).
    fn observe(&self) -> (State, State, State) {
        (observe(&self.top), observe(&self.sub()), observe(&self.sibling))
    }

    /// A batch: the submodule's branch moves to a new commit, the superproject's branch to a
    /// commit whose gitlink is that commit, and the sibling gets a file and a branch.
    fn batch(&self) -> String {
        let sub = self.sub();
        let tree = sub.rev("HEAD^{tree}");
        let sub_commit = sub.git(&["commit-tree", &tree, "-p", "HEAD", "-m", "sub next"]).trim().to_string();
        let index = self.top.tmp.path().join("index.tmp");
        let with_index = |args: &[&str]| {
            let out = self.top.git_cmd(args).env("GIT_INDEX_FILE", &index).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        with_index(&["read-tree", "HEAD"]);
        with_index(&["update-index", "--cacheinfo", &format!("160000,{sub_commit},sub")]);
        let top_tree = with_index(&["write-tree"]);
        let top_commit =
            self.top.git(&["commit-tree", &top_tree, "-p", "HEAD", "-m", "bump sub"]).trim().to_string();
        format!(
            "message: across\nrefs:\n  - update: refs/heads/main\n    to: {top_commit}\nfiles:\n  - write: notes.txt\n    content: top\nrepositories:\n  - path: sub\n    refs:\n      - update: refs/heads/main\n        to: {sub_commit}\n  - path: {}\n    refs:\n      - create: refs/heads/release\n        to: HEAD\n    files:\n      - write: sib.txt\n        content: sib\n",
            self.sibling_path()
        )
    }

    /// Every repository's directory, in the order given.
    fn dirs(&self) -> [std::path::PathBuf; 3] {
        [self.top.dir.clone(), self.top.dir.join("sub"), self.sibling.dir.clone()]
    }
}

fn relative(from: &Path, to: &Path) -> String {
    let depth = from.components().count();
    let common = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    let ups = "../".repeat(depth - common);
    let rest: Vec<String> =
        to.components().skip(common).map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    format!("{ups}{}", rest.join("/"))
}

fn no_leftovers(w: &World) {
    for dir in w.dirs() {
        let git_dir =
            if dir.join(".git").is_dir() { dir.join(".git") } else { w.top.dir.join(".git/modules/sub") };
        let prepared = git_dir.join("atomic/prepared");
        let left: Vec<_> =
            std::fs::read_dir(&prepared).map(|e| e.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "prepared batches left in {}: {left:?}", dir.display());
    }
    assert!(leftovers(&w.top.dir).is_empty(), "{:?}", leftovers(&w.top.dir));
    assert!(leftovers(&w.sibling.dir).is_empty(), "{:?}", leftovers(&w.sibling.dir));
}

#[test]
fn a_batch_across_a_superproject_its_submodule_and_a_sibling_commits_everywhere() {
    let w = World::new();
    let batch = w.batch();
    let out = w.top.apply(&batch);
    out.expect(0);
    let json = out.json();
    let repos = json["repositories"].as_array().unwrap();
    assert_eq!(repos.len(), 3, "{json}");
    assert_eq!(repos[2]["files"][0]["path"], "sib.txt");
    assert_eq!(w.top.read("notes.txt"), "top");
    assert_eq!(w.sibling.read("sib.txt"), "sib");
    assert!(w.sibling.ref_value("refs/heads/release").is_some());
    // The superproject's gitlink names the submodule's new branch tip.
    let gitlink = w.top.git(&["rev-parse", "main:sub"]);
    assert_eq!(gitlink.trim(), w.sub().rev("main"));
    assert_eq!(w.top.reflog("refs/heads/main")[0], "across");
    no_leftovers(&w);
}

#[test]
fn a_refusal_in_any_repository_changes_nothing_anywhere() {
    let w = World::new();
    w.sibling.git(&["branch", "release"]);
    let before = w.observe();
    let out = w.top.apply(&w.batch());
    out.expect(1);
    assert!(out.json()["error"]["entry"].as_str().unwrap().starts_with("repositories[1]"), "{out:?}");
    assert_eq!(w.observe(), before);
    no_leftovers(&w);
}

/// Recovers each repository in `order` (indices into `dirs`).
fn recover_in(w: &World, order: &[usize]) {
    let dirs = w.dirs();
    for &i in order {
        let mut cmd = w.top.atomic_cmd(&["recover"]);
        cmd.current_dir(&dirs[i]);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "recover in {}: {out:?}", dirs[i].display());
    }
}

#[test]
fn a_crash_of_the_coordinator_ends_all_or_nothing_in_every_recovery_order() {
    let orders: [&[usize]; 4] = [&[0, 1, 2], &[2, 1, 0], &[1, 0, 2], &[2, 0, 1]];
    let points = [
        ("xa-prepared", false),
        ("xa-part-prepared", false),
        ("xa-part-prepared:2", false),
        ("xa-decided", true),
        ("xa-part-committed", true),
        ("xa-committed:2", true),
        ("xa-part-committed:2", true),
    ];
    let mut runs = 0;
    for (point, committed) in points {
        for order in orders {
            let w = World::new();
            let batch = w.batch();
            let before = w.observe();
            let ended = run_atomic(&w.top, &["apply", "-"], batch.as_bytes(), Some(point));
            assert!(ended.killed(), "{point}: {}", ended.stderr);
            recover_in(&w, order);
            let now = w.observe();
            if committed {
                assert_ne!(now.0, before.0, "{point} {order:?}: superproject");
                assert_ne!(now.1, before.1, "{point} {order:?}: submodule");
                assert_ne!(now.2, before.2, "{point} {order:?}: sibling");
                assert_eq!(w.sibling.read("sib.txt"), "sib");
                assert_eq!(w.top.git(&["rev-parse", "main:sub"]).trim(), w.sub().rev("main"));
            } else {
                assert_eq!(now, before, "{point} {order:?}");
            }
            no_leftovers(&w);
            runs += 1;
        }
    }
    eprintln!("cross-repository crashes: {runs} runs, all-or-nothing in each");
}

#[test]
fn a_participant_of_a_dead_coordinator_is_decided_by_its_next_git_command() {
    let w = World::new();
    let batch = w.batch();
    let ended = run_atomic(&w.top, &["apply", "-"], batch.as_bytes(), Some("xa-decided"));
    assert!(ended.killed());
    // A plain git command in the sibling runs the hook, which finds the decision and commits.
    w.sibling.git(&["branch", "unrelated"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while w.sibling.ref_value("refs/heads/release").is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(w.sibling.read("sib.txt"), "sib");
}

#[test]
fn kills_at_random_instants_of_a_cross_repository_apply_end_all_or_nothing() {
    let trials: u64 = std::env::var("CRASH_TRIALS").ok().and_then(|t| t.parse().ok()).unwrap_or(8);
    let orders: [&[usize]; 3] = [&[0, 1, 2], &[2, 1, 0], &[1, 2, 0]];
    let (mut all, mut none) = (0, 0);
    for trial in 0..trials {
        let w = World::new();
        let batch = w.batch();
        let before = w.observe();
        let delay = std::time::Duration::from_micros(5_000 + (trial * 37_919) % 150_000);
        procs::spawn_group(&w.top, &["apply", "-"], batch.as_bytes()).kill_after(delay);
        recover_in(&w, orders[trial as usize % orders.len()]);
        let now = w.observe();
        let changed = [now.0 != before.0, now.1 != before.1, now.2 != before.2];
        assert!(changed.iter().all(|c| *c) || changed.iter().all(|c| !*c), "trial {trial}: {changed:?}");
        if changed[0] {
            assert_eq!(w.sibling.read("sib.txt"), "sib", "trial {trial}");
            all += 1;
        } else {
            none += 1;
        }
        no_leftovers(&w);
    }
    eprintln!("random kills of a cross-repository apply: {all} ended committed, {none} ended as before");
}
