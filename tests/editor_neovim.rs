//! The Neovim module of examples/editors/ (SPEC §8's editor integration), driven headless:
//! `workspace/applyEdit` and rename results go through `git atomic apply --lsp --json`, buffers
//! are reloaded, refusals reach the server as applied/failureReason/failedChange, and an unsaved
//! buffer falls back to Neovim's own apply with a message. examples/editors/nvim/test.lua holds
//! the checks; this runs it in a scratch repository with the built git-atomic on PATH.

mod common;

use common::{Repo, bin_dir, seal};
use std::path::Path;
use std::process::Command;

#[test]
fn neovim_routes_workspace_edits_through_git_atomic() {
    if Command::new("nvim").arg("--version").output().is_err() {
        // .ci/run installs Debian's neovim; only a developer's machine may lack it.
        assert!(std::env::var_os("CI").is_none(), "nvim is missing in CI");
        eprintln!("skipped: nvim is not installed (apt-get install neovim)");
        return;
    }
    let repo = Repo::new();
    repo.write("a.txt", "alpha x = 1\n");
    repo.write("b.txt", "zeta\n");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/editors/nvim/test.lua");
    let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
    let mut nvim = Command::new("nvim");
    seal(&mut nvim, &repo.home());
    let out = nvim
        .args(["--headless", "--clean", "-c"])
        .arg(format!("luafile {}", script.display()))
        .current_dir(&repo.dir)
        .env("PATH", path)
        .output()
        .expect("nvim runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("every check holds"), "{out:?}");
    assert_eq!(repo.read("a.txt"), "alpha y😀 = 1\n");
    assert_eq!(repo.read("c.txt"), "Eta\n");
}
