//! git-atomic as a git citizen: install.sh (idempotent, uninstall leaves nothing), completions
//! through the real shells and git's own bash completion, a man page that names exactly what
//! the CLI defines and renders without warnings, `-h` everywhere, and a hook that follows the
//! binary and reaches new repositories through init.templateDir.

mod common;

use clap::CommandFactory;
use common::{Repo, seal, skip};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_git-atomic");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs install.sh with the already-built binary (no cargo build) and `args`.
fn install_sh(home: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("bash");
    seal(&mut cmd, home);
    cmd.arg(Path::new(ROOT).join("install.sh")).args(args).env("GIT_ATOMIC_INSTALL_BINARY", BIN);
    cmd.output().expect("install.sh runs")
}

/// A prefix with git-atomic installed by install.sh, and the temp dir holding it and a HOME.
fn installed() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    std::fs::create_dir(&prefix).unwrap();
    let out = install_sh(&tmp.path().join("home"), &["--prefix", prefix.to_str().unwrap()]);
    assert!(out.status.success(), "install.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    (tmp, prefix)
}

/// Every file and directory under `root`, with file contents.
fn tree(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                stack.push(path);
                entries.push((rel, None));
            } else {
                entries.push((rel, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    entries.sort();
    entries
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn install_twice_gives_the_same_tree_and_uninstall_leaves_the_prefix_empty() {
    let (tmp, prefix) = installed();
    let first = tree(&prefix);
    for file in [
        "bin/git-atomic",
        "share/man/man1/git-atomic.1",
        "share/bash-completion/completions/git-atomic",
        "share/zsh/site-functions/_git-atomic",
        "share/fish/vendor_completions.d/git-atomic.fish",
        "share/git-atomic/hooks/reference-transaction",
    ] {
        assert!(
            first.iter().any(|(rel, content)| rel == file && content.is_some()),
            "{file} missing: {first:?}"
        );
    }
    let home = tmp.path().join("home");
    let again = install_sh(&home, &["--prefix", prefix.to_str().unwrap()]);
    assert!(again.status.success());
    assert_eq!(tree(&prefix), first, "a second install must give the same tree");

    let out = install_sh(&home, &["--prefix", prefix.to_str().unwrap(), "--uninstall"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tree(&prefix), vec![], "uninstall must leave the prefix empty");
}

#[test]
fn uninstall_keeps_what_install_did_not_put_there() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::write(prefix.join("bin/other"), "mine").unwrap();
    let home = tmp.path().join("home");
    assert!(install_sh(&home, &["--prefix", prefix.to_str().unwrap()]).status.success());
    assert!(install_sh(&home, &["--prefix", prefix.to_str().unwrap(), "--uninstall"]).status.success());
    assert_eq!(tree(&prefix), vec![("bin".into(), None), ("bin/other".into(), Some(b"mine".to_vec()))]);
}

#[test]
fn install_sh_says_clearly_when_git_or_cargo_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let script = Path::new(ROOT).join("install.sh");
    // No git on PATH at all.
    let out = Command::new("/bin/bash")
        .arg(&script)
        .args(["--prefix", tmp.path().to_str().unwrap()])
        .env("PATH", tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("git not found"), "{out:?}");
    // git, but no cargo, and no binary to install instead of building one.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // What install.sh runs before it looks for cargo.
    for tool in ["git", "dirname"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
        std::os::unix::fs::symlink(String::from_utf8_lossy(&found.stdout).trim(), bin.join(tool)).unwrap();
    }
    let out = Command::new("/bin/bash")
        .arg(&script)
        .args(["--prefix", tmp.path().join("p").to_str().unwrap()])
        .env("PATH", &bin)
        .env_remove("GIT_ATOMIC_INSTALL_BINARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo not found"), "{out:?}");
    assert!(!tmp.path().join("p").exists(), "nothing may be installed without a binary");
}

#[test]
fn git_help_atomic_shows_the_installed_page() {
    if !have("man") {
        return skip("git_help_atomic_shows_the_installed_page", "no man (apt-get install man-db)");
    }
    let (tmp, prefix) = installed();
    let mut cmd = Command::new(common::git_binary());
    seal(&mut cmd, &tmp.path().join("home"));
    let path = format!("{}:{}", prefix.join("bin").display(), std::env::var("PATH").unwrap());
    let out = cmd
        .args(["help", "atomic"])
        .env("PATH", path)
        .env_remove("MANPATH")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("GIT-ATOMIC(1)") && text.contains("EXAMPLES"), "{out:?}");
}

/// Runs `script` in bash with the installed prefix on PATH and in XDG_DATA_DIRS, as a user who
/// followed install.sh's notes would have it.
fn bash_with_completion(tmp: &Path, prefix: &Path, script: &str) -> Output {
    let mut cmd = Command::new("bash");
    seal(&mut cmd, &tmp.join("home"));
    let path = format!("{}:{}", prefix.join("bin").display(), std::env::var("PATH").unwrap());
    cmd.args(["--norc", "--noprofile", "-c", script])
        .env("PATH", path)
        .env("XDG_DATA_DIRS", format!("{}:/usr/share", prefix.join("share").display()))
        .output()
        .unwrap()
}

/// What bash completes for `line` through bash-completion and git's completion script.
const COMPLETE: &str = r#"
source /usr/share/bash-completion/bash_completion
comp() {
    COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
    read -ra COMP_WORDS <<<"$1"; [[ $1 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _completion_loader "${COMP_WORDS[0]}"
    $(complete -p "${COMP_WORDS[0]}" | sed 's/.*-F \([^ ]*\) .*/\1/') "${COMP_WORDS[0]}" \
        "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "$1 => ${COMPREPLY[*]}"
}
"#;

#[test]
fn bash_completes_git_atomic_through_gits_own_completion() {
    let test = "bash_completes_git_atomic_through_gits_own_completion";
    for file in ["/usr/share/bash-completion/bash_completion", "/usr/share/bash-completion/completions/git"] {
        if !Path::new(file).exists() {
            return skip(test, &format!("no {file} (apt-get install bash-completion git)"));
        }
    }
    let (tmp, prefix) = installed();
    let script = format!(
        "{COMPLETE}\ncomp 'git atomic ap'\ncomp 'git atomic apply --dr'\ncomp 'git atomic hook '\ncomp 'git-atomic rec'\ncomp 'git atomic apply --position-encoding utf-1'\ncomp 'git atomic '\n"
    );
    let out = bash_with_completion(tmp.path(), &prefix, &script);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "git atomic ap => apply ",
            "git atomic apply --dr => --dry-run ",
            // Not the hidden `reference-transaction` and `recover-after`: the hook's, not people's.
            "git atomic hook  => -h  --help  install  uninstall ",
            "git-atomic rec => recover",
            "git atomic apply --position-encoding utf-1 => utf-16 ",
            // Not the hidden `completions` either (install.sh's).
            "git atomic  => -h  -V  --help  --version  apply  recover  status  hook  prepare  commit  abort  log  undo  redo ",
        ],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zsh_and_fish_load_the_completions() {
    let test = "zsh_and_fish_load_the_completions";
    if !have("zsh") || !have("fish") {
        return skip(test, "no zsh or fish (apt-get install zsh fish)");
    }
    let (tmp, prefix) = installed();
    let home = tmp.path().join("home");
    let mut zsh = Command::new("zsh");
    seal(&mut zsh, &home);
    let site = prefix.join("share/zsh/site-functions");
    let script = format!(
        "fpath=({} $fpath); autoload -U compinit; compinit -u -D; print -r -- $_comps[git-atomic]; autoload -Uz +X _git-atomic",
        site.display()
    );
    let out = zsh.args(["-f", "-c", &script]).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "_git-atomic");

    let fish_file = prefix.join("share/fish/vendor_completions.d/git-atomic.fish");
    let out = Command::new("fish").arg("-n").arg(&fish_file).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let mut fish = Command::new("fish");
    seal(&mut fish, &home);
    let path = format!("{}:{}", prefix.join("bin").display(), std::env::var("PATH").unwrap());
    let out = fish
        .args(["-c", "complete -C 'git-atomic ap'; complete -C 'git-atomic apply --dr'; complete -C 'git-atomic hook '"])
        .env("PATH", path)
        .env("XDG_DATA_DIRS", format!("{}:/usr/share", prefix.join("share").display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("apply\t")), "{out:?}");
    assert!(text.lines().any(|l| l.starts_with("--dry-run\t")), "{out:?}");
    assert!(text.lines().any(|l| l.starts_with("install\t")), "{out:?}");
    for hidden in ["reference-transaction", "recover-after"] {
        assert!(!text.lines().any(|l| l.starts_with(hidden)), "fish offers the hidden {hidden}: {out:?}");
        let zsh = std::fs::read_to_string(site.join("_git-atomic")).unwrap();
        assert!(!zsh.contains(&format!("'{hidden}:")), "zsh offers the hidden {hidden}");
    }
}

/// `text` as the man page spells it in roff (`-` is `\-`).
fn roff(text: &str) -> String {
    text.replace('-', "\\-")
}

/// The text of the man page section `name`, up to the next `.SH`.
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page.find(&format!(".SH {name}\n")).unwrap_or_else(|| panic!("no section {name}"));
    let rest = &page[start + 4..];
    &rest[..rest.find("\n.SH ").unwrap_or(rest.len())]
}

/// Every command of the tree with the path of names to it, hidden ones included.
fn commands(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, clap::Command)>) {
    out.push((path.clone(), cmd.clone()));
    for sub in cmd.get_subcommands() {
        let mut p = path.clone();
        p.push(sub.get_name().to_string());
        commands(sub, p, out);
    }
}

#[test]
fn the_man_page_names_every_subcommand_and_option_and_nothing_else() {
    let page = std::fs::read_to_string(Path::new(ROOT).join("man/git-atomic.1")).unwrap();
    let mut all = Vec::new();
    commands(&git_atomic::cli::Cli::command(), vec![], &mut all);
    let mut longs = vec!["help".to_string(), "version".to_string()];
    for (path, cmd) in &all {
        if cmd.is_hide_set() {
            continue;
        }
        if let Some(name) = path.last() {
            assert!(page.contains(&format!("\\fB{}", roff(name))), "the man page lacks subcommand {path:?}");
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                longs.push(long.to_string());
                assert!(page.contains(&roff(&format!("--{long}"))), "the man page lacks {path:?} --{long}");
            }
            if let Some(short) = arg.get_short() {
                assert!(
                    page.contains(&format!("\\fB\\-{short}\\fR")),
                    "the man page lacks {path:?} -{short}"
                );
            }
        }
    }
    // What the page lists as git-atomic's own: the synopsis and the command descriptions.
    for name in ["SYNOPSIS", "COMMANDS"] {
        let text = section(&page, name);
        for option in text.split("\\-\\-").skip(1) {
            let word: String = option
                .replace("\\-", "-")
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            assert!(longs.contains(&word), "the man page's {name} names --{word}, which the CLI lacks");
        }
    }
    let synopsis = section(&page, "SYNOPSIS");
    for line in synopsis.lines().filter(|l| l.starts_with("\\fBgit atomic ")) {
        let word: String = line["\\fBgit atomic ".len()..].replace("\\-", "-");
        let word: String = word.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
        let known = word.starts_with('-') || all.iter().any(|(p, _)| p.first() == Some(&word));
        assert!(known, "the synopsis names 'git atomic {word}', which the CLI lacks");
    }
}

#[test]
fn the_man_page_renders_without_warnings() {
    if !have("man") {
        return skip("the_man_page_renders_without_warnings", "no man (apt-get install man-db)");
    }
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(Path::new(ROOT).join("man/git-atomic.1"))
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("MANROFFSEQ", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "man warns:\n{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    for heading in ["EXAMPLES", "LIMITS", "JSON OUTPUT", "ENVIRONMENT", "GIT_ATOMIC_TRACE_PERF"] {
        assert!(text.contains(heading), "the rendered page lacks {heading}");
    }
}

#[test]
fn every_subcommand_has_h_with_one_line_per_option() {
    let mut all = Vec::new();
    commands(&git_atomic::cli::Cli::command(), vec![], &mut all);
    for (path, cmd) in all.iter().filter(|(_, c)| !c.is_hide_set()) {
        let out = Command::new(BIN).args(path).arg("-h").env("COLUMNS", "100").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{path:?} -h: {out:?}");
        let options = &text[text.find("Options:\n").expect("an Options list")..];
        let lines: Vec<&str> = options.lines().skip(1).take_while(|l| !l.is_empty()).collect();
        for line in &lines {
            assert!(
                line.starts_with("  -") || line.starts_with("      --"),
                "{path:?} -h wraps an option:\n{text}"
            );
        }
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(lines.iter().any(|l| l.contains(&format!("--{long}"))), "{path:?} -h lacks --{long}");
            }
        }
    }
}

#[test]
fn git_atomic_alone_prints_the_command_list_and_exits_2_like_a_usage_error() {
    // git's commands that need a subcommand (`git worktree`) print their usage on stderr and
    // exit with the usage status; git-atomic's usage status is 2 (SPEC §3).
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    for name in ["apply", "recover", "status", "hook", "prepare", "commit", "abort", "log", "undo", "redo"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&format!("{name} "))),
            "{name} missing:\n{text}"
        );
    }
    assert!(!text.contains("completions"), "the hidden completions command is not for people");
}

const BATCH: &str = "refs:\n  - create: refs/heads/topic\n    to: HEAD\nfiles:\n  - write: dir/new.txt\n    content: \"new\\n\"\n";

/// PATH without any directory holding a `git-atomic`.
fn path_without_git_atomic() -> String {
    let path = std::env::var("PATH").unwrap();
    path.split(':').filter(|d| !Path::new(d).join("git-atomic").exists()).collect::<Vec<_>>().join(":")
}

#[test]
fn the_hook_follows_the_binary_when_it_moves_on_path() {
    let repo = Repo::new();
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (tmp.path().join("old"), tmp.path().join("new"));
    std::fs::create_dir(&old).unwrap();
    std::fs::create_dir(&new).unwrap();
    std::fs::copy(BIN, old.join("git-atomic")).unwrap();
    let mut install = Command::new(old.join("git-atomic"));
    seal(&mut install, &repo.home());
    let out = install.current_dir(&repo.dir).args(["hook", "install"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");

    repo.crash_apply("committed", BATCH);
    std::fs::rename(old.join("git-atomic"), new.join("git-atomic")).unwrap();
    let mut git = repo.git_cmd(&["update-ref", "refs/heads/unrelated", "HEAD"]);
    let out = git.env("PATH", format!("{}:{}", new.display(), path_without_git_atomic())).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let batches = repo.dir.join(".git/atomic/batches");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let pending = || std::fs::read_dir(&batches).map(|d| d.count()).unwrap_or(0);
    while pending() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pending(), 0, "the hook should have run the moved binary and recovered the batch");
    assert_eq!(repo.read("dir/new.txt"), "new\n");
}

/// `git-atomic ARGS` in `cwd` with its own global config file.
fn atomic_with_global_config(home: &Path, config: &Path, cwd: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    seal(&mut cmd, home);
    cmd.current_dir(cwd).args(args).env("GIT_CONFIG_GLOBAL", config).output().unwrap()
}

#[test]
fn hook_install_template_reaches_new_inits_and_clones_and_never_sets_core_hooks_path() {
    let repo = Repo::new();
    let tmp = tempfile::tempdir().unwrap();
    let (home, config, template) =
        (tmp.path().join("home"), tmp.path().join("gitconfig"), tmp.path().join("tpl"));
    std::fs::create_dir(&home).unwrap();
    std::fs::write(&config, "").unwrap();

    let out = atomic_with_global_config(&home, &config, tmp.path(), &["hook", "install", "--template"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: "), "{out:?}");

    let arg = format!("--template={}", template.display());
    let out = atomic_with_global_config(&home, &config, tmp.path(), &["hook", "install", &arg]);
    assert!(out.status.success(), "{out:?}");
    let git_config = |args: &[&str]| {
        let mut cmd = Command::new(common::git_binary());
        seal(&mut cmd, &home);
        cmd.args(args).env("GIT_CONFIG_GLOBAL", &config).current_dir(tmp.path()).output().unwrap()
    };
    let set = git_config(&["config", "--global", "init.templateDir"]);
    assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), template.to_str().unwrap());
    assert!(!git_config(&["config", "--global", "core.hooksPath"]).status.success());
    // Without a directory now: init.templateDir is set, so it installs there again.
    let out = atomic_with_global_config(&home, &config, tmp.path(), &["hook", "install", "--template"]);
    assert!(out.status.success(), "{out:?}");

    let fresh = tmp.path().join("fresh");
    assert!(git_config(&["init", "-q", fresh.to_str().unwrap()]).status.success());
    let clone = tmp.path().join("clone");
    assert!(
        git_config(&["clone", "-q", repo.dir.to_str().unwrap(), clone.to_str().unwrap()]).status.success()
    );
    for dir in [fresh, clone] {
        let hook = std::fs::read_to_string(dir.join(".git/hooks/reference-transaction")).unwrap();
        assert!(hook.contains(git_atomic::hook::MARKER), "{} lacks the hook", dir.display());
        let out = atomic_with_global_config(&home, &config, &dir, &["status", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["hook_installed"], true, "{status}");
    }
}
