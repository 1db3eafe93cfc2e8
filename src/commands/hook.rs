//! `git atomic hook install [--template[=DIR]]|uninstall|reference-transaction`.

use crate::cli::{HookAction, HookArgs};
use crate::hook;
use crate::repo::Repo;

/// Runs a hook subcommand and returns the exit status.
pub fn run(args: &HookArgs) -> i32 {
    let result = match &args.action {
        HookAction::ReferenceTransaction { state } => return hook::reference_transaction(state),
        HookAction::RecoverAfter { pid } => return hook::recover_after(*pid),
        HookAction::Install(args) => match &args.template {
            Some(dir) => hook::install_template(dir.as_deref()),
            None => Repo::discover().and_then(|repo| hook::install(&repo)),
        },
        HookAction::Uninstall => Repo::discover().and_then(|repo| hook::uninstall(&repo)),
    };
    match result {
        Ok(note) => {
            println!("{note}");
            0
        }
        Err(e) => e.report(),
    }
}
