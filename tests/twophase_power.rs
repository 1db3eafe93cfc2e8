//! Issue 19, power cuts: a prepared batch survives a cut of its file system right after
//! `prepare` exits 0; a cut at a random instant of `commit` ends, after recovery, committed or
//! still prepared; a cut of the coordinator's file system at a random instant of a
//! cross-repository apply ends, after recovery in both repositories, all-or-nothing. Runs on a
//! loop-mounted ext4 cut with FS_IOC_SHUTDOWN (no log flush), as tests/crash.rs does; needs root
//! and loop devices: elsewhere it is a recorded skip (common::skip), and under CI a failure.

mod common;
#[path = "common/model.rs"]
mod model;
#[path = "common/power.rs"]
mod power;
#[path = "common/procs.rs"]
mod procs;

use common::Repo;
use model::observe;
use power::{Mounted, sh};
use std::path::Path;
use std::time::Duration;

/// A repository with one commit at `dir` (on the image), made durable.
fn repo_at(dir: &Path) -> Repo {
    let repo = Repo { tmp: tempfile::tempdir().unwrap(), dir: dir.to_path_buf() };
    repo.git_in(dir.parent().unwrap(), &["init", "-q", "-b", "main", dir.to_str().unwrap()]);
    repo.write("README", "hello\n");
    repo.git(&["add", "README"]);
    repo.git(&["commit", "-q", "-m", "initial"]);
    sh(&["sync", "-f", dir.to_str().unwrap()]).unwrap();
    repo
}

const BATCH: &str = "refs:\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: a.txt\n    content: a\n  - write: README\n    content: changed\n";

fn mounted() -> Option<(tempfile::TempDir, Mounted)> {
    let scratch = tempfile::tempdir().unwrap();
    match Mounted::new(scratch.path(), 128) {
        Ok(m) => Some((scratch, m)),
        Err(why) => {
            common::skip("twophase power cuts", &why);
            None
        }
    }
}

#[test]
fn power_cuts_keep_a_prepared_batch_and_leave_commit_all_or_nothing() {
    let Some((_scratch, mnt)) = mounted() else { return };
    let cuts = 10u64;
    let (mut committed, mut prepared) = (0, 0);
    for cut in 0..cuts {
        let repo = repo_at(&mnt.dir.join(format!("r{cut}")));
        let before = observe(&repo);
        repo.apply_args(&["prepare", "--no-hook-check", "--xid", "p", "-"], BATCH).expect(0);
        mnt.cut_power();
        mnt.remount();
        repo.reboot();
        let status = repo.atomic(&["status", "--json"]);
        assert_eq!(status.json()["prepared"][0]["xid"], "p", "cut {cut}: the prepared batch was lost");
        let group = procs::spawn_group(&repo, &["commit", "--xid", "p"], b"");
        std::thread::sleep(Duration::from_micros((cut * 3_301) % 30_000));
        mnt.cut_power();
        group.kill_after(Duration::ZERO);
        mnt.remount();
        repo.reboot();
        repo.atomic(&["recover"]).expect(0);
        let now = observe(&repo);
        if now == before {
            prepared += 1;
            repo.atomic(&["commit", "--xid", "p"]).expect(0);
        } else {
            committed += 1;
            repo.atomic(&["commit", "--xid", "p"]).expect(0);
        }
        assert_eq!(repo.read("README"), "changed", "cut {cut}");
        assert!(repo.ref_value("refs/heads/topic").is_some(), "cut {cut}");
        assert!(model::leftovers(&repo.dir).is_empty(), "cut {cut}: {:?}", model::leftovers(&repo.dir));
    }
    eprintln!("power cuts of commit: {committed} found committed, {prepared} still prepared; violations 0");
}

#[test]
fn power_cuts_of_the_coordinator_leave_a_cross_repository_batch_all_or_nothing() {
    let Some((_scratch, mnt)) = mounted() else { return };
    let cuts = 10u64;
    let (mut all, mut none) = (0, 0);
    for cut in 0..cuts {
        let top = repo_at(&mnt.dir.join(format!("c{cut}")));
        let sibling = Repo::new();
        let batch = format!(
            "{BATCH}repositories:\n  - path: {}\n    refs:\n      - create: refs/heads/topic\n        to: HEAD\n    files:\n      - write: s.txt\n        content: s\n",
            sibling.dir.display()
        );
        let (top_before, sib_before) = (observe(&top), observe(&sibling));
        let group = procs::spawn_group(&top, &["apply", "-"], batch.as_bytes());
        std::thread::sleep(Duration::from_micros(5_000 + (cut * 37_411) % 200_000));
        mnt.cut_power();
        group.kill_after(Duration::ZERO);
        mnt.remount();
        top.reboot();
        sibling.reboot();
        let order: [&Repo; 2] = if cut % 2 == 0 { [&sibling, &top] } else { [&top, &sibling] };
        for repo in order {
            repo.atomic(&["recover"]).expect(0);
        }
        let (top_changed, sib_changed) = (observe(&top) != top_before, observe(&sibling) != sib_before);
        assert_eq!(top_changed, sib_changed, "cut {cut}: coordinator {top_changed}, sibling {sib_changed}");
        if top_changed { all += 1 } else { none += 1 }
    }
    eprintln!(
        "power cuts of a cross-repository apply: {all} committed everywhere, {none} nowhere; violations 0"
    );
}
