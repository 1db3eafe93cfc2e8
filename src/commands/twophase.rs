//! `git atomic prepare`, `commit` and `abort` (SPEC §9): the command lines around twophase.rs.

use crate::cli::{PrepareArgs, XidArgs};
use crate::commands::apply::read_batch;
use crate::commands::{recover_interrupted, wait_duration};
use crate::error::{Error, Result};
use crate::lock;
use crate::parse;
use crate::prepared;
use crate::repo::Repo;
use crate::twophase::{self, Finished, StillPrepared};
use crate::validate::BatchLabel;

/// Runs `prepare` and returns the exit status: 0 prepared, 1 refused, 2 invalid.
pub fn prepare(args: &PrepareArgs) -> i32 {
    match run_prepare(args) {
        Ok(id) => {
            if !args.batch.quiet {
                println!("prepared batch {id} as {}", args.xid);
            }
            0
        }
        Err(e) => e.report(),
    }
}

fn run_prepare(args: &PrepareArgs) -> Result<String> {
    prepared::validate_xid(&args.xid)?;
    let repo = Repo::discover()?;
    if !args.no_hook_check {
        require_hook(&repo)?;
    }
    let (bytes, origin) = read_batch(args.file.as_deref())?;
    let file = parse::parse(&bytes, &origin)?;
    let label = BatchLabel::new(&file, args.batch.message.clone());
    let lock = lock::acquire(&repo.state_dir(), wait_duration(args.batch.wait, &repo))?;
    recover_interrupted(&repo, &lock, args.batch.quiet)?;
    if !file.repositories.is_empty() {
        return Err(Error::invalid(
            "'repositories:' is for 'git atomic apply', which coordinates them itself",
        ));
    }
    twophase::prepare(&repo, file, label, &args.xid, None).map(|record| record.id)
}

/// Without the hook, plain git could move a reserved ref: `prepare` refuses (2).
fn require_hook(repo: &Repo) -> Result<()> {
    let dir = crate::hook::hooks_dir(repo)?;
    if crate::hook::is_installed(&dir) {
        return Ok(());
    }
    Err(Error::invalid(
        "the reference-transaction hook is not installed: plain git could move a prepared batch's refs",
    )
    .hint("run 'git atomic hook install', or pass --no-hook-check"))
}

/// Runs `commit` and returns the exit status.
pub fn commit(args: &XidArgs) -> i32 {
    finish(args, "committed", twophase::commit)
}

/// Runs `abort` and returns the exit status.
pub fn abort(args: &XidArgs) -> i32 {
    finish(args, "aborted", twophase::abort)
}

/// Runs `action` on the batch prepared under the XID, after recovery, which reads every prepared
/// batch and hands on those it left prepared.
fn finish(
    args: &XidArgs,
    verb: &str,
    action: fn(&Repo, &str, Vec<StillPrepared>) -> Result<Finished>,
) -> i32 {
    let result = (|| {
        prepared::validate_xid(&args.xid)?;
        let repo = Repo::discover()?;
        let lock = lock::acquire(&repo.state_dir(), wait_duration(args.lock.wait, &repo))?;
        let still_prepared = twophase::recover_before_deciding(&repo, &lock, args.lock.quiet)?;
        action(&repo, &args.xid, still_prepared)
    })();
    match result {
        Ok(finished) => {
            if !args.lock.quiet {
                match finished {
                    Finished::Now(id) => println!("{verb} batch {id} ({})", args.xid),
                    Finished::Already(id) => println!("batch {id} ({}) was already {verb}", args.xid),
                }
            }
            0
        }
        Err(e) => e.report(),
    }
}
