//! Test harness: real `git`, real repositories in temp dirs, the built `git-atomic` binary.
//! Every command runs sealed off from the user's config (GIT_CONFIG_GLOBAL=/dev/null, private
//! HOME, fixed dates). `TEST_GIT` picks the git binary (default: `git` on PATH), so the suite can
//! run against Debian's git 2.39 as well as the newer one.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The git binary under test.
pub fn git_binary() -> String {
    std::env::var("TEST_GIT").unwrap_or_else(|_| "git".to_string())
}

/// `(major, minor)` of the git under test.
pub fn git_version() -> (u32, u32) {
    let out =
        Command::new(git_binary()).env_remove("GIT_EXEC_PATH").arg("version").output().expect("git runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.trim().trim_start_matches("git version ");
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap())
}

/// The exec path of the git under test, handed to git-atomic as git would.
fn exec_path() -> String {
    let out =
        Command::new(git_binary()).env_remove("GIT_EXEC_PATH").arg("--exec-path").output().expect("git runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Applies the sealed environment to a command: every `GIT_*` variable of the caller's
/// environment (`GIT_DIR`, `GIT_DEFAULT_REF_FORMAT`, `GIT_DEFAULT_HASH`, `GIT_INDEX_FILE`, the
/// crash points, …) is removed; the tests set the ones they mean after this.
pub fn seal(cmd: &mut Command, home: &Path) {
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("GIT_")) {
            cmd.env_remove(key);
        }
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", home)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_EXEC_PATH", exec_path())
        // The hook runs the `git-atomic` on PATH first: the one under test, never an installed one.
        .env("PATH", format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default()))
        // The boot that git-atomic sees, once a test simulates a reboot (`Repo::reboot`).
        .env("GIT_TEST_ATOMIC_BOOT", home.join("boot"));
}

/// A scratch repository that lives as long as the value.
pub struct Repo {
    pub tmp: tempfile::TempDir,
    /// The work tree (or the bare repository's directory).
    pub dir: PathBuf,
}

impl Repo {
    /// `git init` plus one commit with `README` on branch `main`.
    pub fn new() -> Repo {
        Self::init(&[])
    }

    /// `git init` with extra arguments (`--bare`, `--ref-format=reftable`), then one commit.
    pub fn init(args: &[&str]) -> Repo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("repo");
        let repo = Repo { tmp, dir: dir.clone() };
        let mut init = vec!["init", "-q", "-b", "main"];
        init.extend_from_slice(args);
        init.push(dir.to_str().unwrap());
        repo.git_in(repo.tmp.path(), &init);
        let bare = args.contains(&"--bare");
        if bare {
            let tree = repo.git_stdin(&["mktree"], b"");
            let commit = repo.git(&["commit-tree", tree.trim(), "-m", "initial"]);
            repo.git(&["update-ref", "refs/heads/main", commit.trim()]);
        } else {
            repo.write("README", "hello\n");
            repo.git(&["add", "README"]);
            repo.git(&["commit", "-q", "-m", "initial"]);
        }
        repo
    }

    pub fn home(&self) -> PathBuf {
        let home = self.tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        home
    }

    /// Simulates a reboot for the git-atomic commands run from now on (src/boot.rs): a new boot
    /// id, and a boot that began now. The power-cut tests call it after each cut: every process
    /// of the earlier "boot" is dead by then, as after a real one.
    pub fn reboot(&self) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let id = format!("{:08x}-0000-4000-8000-{:012x}", now.as_secs() as u32, now.subsec_nanos());
        std::fs::write(self.home().join("boot"), format!("{id} {:.6}\n", now.as_secs_f64())).unwrap();
    }

    /// A git command in the repository, sealed.
    pub fn git_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(git_binary());
        seal(&mut cmd, &self.home());
        cmd.current_dir(&self.dir).args(args);
        cmd
    }

    /// Runs git and returns stdout; panics with git's stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.dir, args)
    }

    pub fn git_in(&self, cwd: &Path, args: &[&str]) -> String {
        let mut cmd = Command::new(git_binary());
        seal(&mut cmd, &self.home());
        let out = cmd.current_dir(cwd).args(args).output().expect("git runs");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn git_stdin(&self, args: &[&str], input: &[u8]) -> String {
        let mut cmd = self.git_cmd(args);
        let out = run_with_stdin(&mut cmd, input);
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// `git rev-parse REV`.
    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev]).trim().to_string()
    }

    /// The ref's value, or None when it does not exist.
    pub fn ref_value(&self, name: &str) -> Option<String> {
        let out = self.git_cmd(&["rev-parse", "-q", "--verify", name]).output().unwrap();
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Makes a new commit on top of HEAD without touching the work tree; returns its id.
    pub fn commit_id(&self, message: &str) -> String {
        let tree = self.rev("HEAD^{tree}");
        let parent = self.rev("HEAD");
        self.git(&["commit-tree", &tree, "-p", &parent, "-m", message]).trim().to_string()
    }

    /// Writes a work-tree file, creating directories.
    pub fn write(&self, path: &str, content: &str) {
        let full = self.dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path)).unwrap()
    }

    pub fn exists(&self, path: &str) -> bool {
        std::fs::symlink_metadata(self.dir.join(path)).is_ok()
    }

    /// `git hash-object` of a work-tree file.
    pub fn blob_of(&self, path: &str) -> String {
        self.git(&["hash-object", "--no-filters", path]).trim().to_string()
    }

    /// A `git atomic` command in `cwd` (default: the repository).
    pub fn atomic_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_git-atomic"));
        seal(&mut cmd, &self.home());
        cmd.current_dir(&self.dir).args(args);
        cmd
    }

    /// Runs `git atomic apply --json -` with `batch` on stdin.
    pub fn apply(&self, batch: &str) -> Outcome {
        self.apply_args(&["apply", "--json", "-"], batch)
    }

    pub fn apply_args(&self, args: &[&str], batch: &str) -> Outcome {
        let mut cmd = self.atomic_cmd(args);
        Outcome::from(run_with_stdin(&mut cmd, batch.as_bytes()))
    }

    /// Runs a git-atomic command without input.
    pub fn atomic(&self, args: &[&str]) -> Outcome {
        let mut cmd = self.atomic_cmd(args);
        Outcome::from(run_with_stdin(&mut cmd, b""))
    }

    /// Runs `git atomic ARGS` in `cwd` with `batch` on stdin.
    pub fn apply_in(&self, cwd: &Path, args: &[&str], batch: &str) -> Outcome {
        let mut cmd = self.atomic_cmd(args);
        cmd.current_dir(cwd);
        Outcome::from(run_with_stdin(&mut cmd, batch.as_bytes()))
    }

    /// Applies `batch` (`--json`), asserts the exit code and that the repository is
    /// byte-identical afterwards (`.git/atomic` aside); returns the outcome.
    pub fn apply_unchanged(&self, batch: &str, code: i32) -> Outcome {
        self.apply_args_unchanged(&["apply", "--json", "-"], batch, code)
    }

    /// Like [`Repo::apply_unchanged`] with explicit arguments.
    pub fn apply_args_unchanged(&self, args: &[&str], batch: &str, code: i32) -> Outcome {
        let before = self.snapshot();
        let out = self.apply_args(args, batch);
        out.expect(code);
        assert_snapshots_equal(&before, &self.snapshot(), &format!("{out:#?}"));
        assert_eq!(self.pending_batches(), Vec::<String>::new(), "no batch left behind: {out:#?}");
        out
    }

    /// The batch directories under the state dir (`.git/atomic/batches`): none once a command is done.
    pub fn pending_batches(&self) -> Vec<String> {
        let common = if self.dir.join(".git").exists() { self.dir.join(".git") } else { self.dir.clone() };
        match std::fs::read_dir(common.join("atomic").join("batches")) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The reflog messages of a ref, newest first.
    pub fn reflog(&self, name: &str) -> Vec<String> {
        self.git(&["reflog", "show", "--format=%gs", name]).lines().map(str::to_string).collect()
    }

    /// The full path of a work-tree path.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Whether a work-tree file has an executable bit.
    pub fn is_executable(&self, rel: &str) -> bool {
        let meta = std::fs::symlink_metadata(self.path(rel)).unwrap();
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }

    /// Writes an executable `.git/hooks/reference-transaction` (the user's own, not ours).
    pub fn write_reference_transaction_hook(&self, script: &str) -> PathBuf {
        let hook = self.path(".git/hooks/reference-transaction");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(&hook, script).unwrap();
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        hook
    }

    /// `git hash-object -w` of some bytes: the id of a blob now in the repository.
    pub fn write_blob(&self, bytes: &[u8]) -> String {
        self.git_stdin(&["hash-object", "-w", "--stdin"], bytes).trim().to_string()
    }

    /// Runs `apply` with the named crash point; the process must die there by SIGKILL.
    pub fn crash_apply(&self, point: &str, batch: &str) {
        use std::os::unix::process::ExitStatusExt;
        let mut cmd = self.atomic_cmd(&["apply", "-"]);
        cmd.env("GIT_TEST_ATOMIC_CRASH", point);
        let out = run_with_stdin(&mut cmd, batch.as_bytes());
        assert_eq!(out.status.signal(), Some(9), "apply should have been killed at {point}: {out:?}");
    }

    /// Every file, directory and symlink under the repository (`.git` included, `.git/atomic`
    /// excluded), with type, mode and content, names and bytes escaped losslessly (non-UTF-8
    /// included): two equal snapshots mean byte-identical trees.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        snapshot_tree(&self.dir)
    }
}

/// Snapshot of a whole directory tree, skipping `atomic/` state directories.
pub fn snapshot_tree(root: &Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    walk(root, root, &mut map);
    map
}

fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let rel = lossless(path.strip_prefix(root).unwrap().as_os_str().as_bytes());
        if rel == ".git/atomic"
            || rel.ends_with("/.git/atomic")
            || (rel == "atomic" && root.join("HEAD").exists())
        {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            map.insert(rel, format!("link -> {}", lossless(target.as_os_str().as_bytes())));
        } else if meta.is_dir() {
            map.insert(rel.clone(), format!("dir {mode:o}"));
            walk(root, &path, map);
        } else {
            let content = std::fs::read(&path).unwrap();
            map.insert(rel, format!("file {mode:o} {}", lossless(&content)));
        }
    }
}

/// Bytes as text without loss: printable ASCII as is, everything else escaped (`\xff`, `\n`).
fn lossless(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Asserts two snapshots are equal, listing only the paths that differ.
pub fn assert_snapshots_equal(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    context: &str,
) {
    if before == after {
        return;
    }
    let mut diff = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => diff.push(format!("- {path}: {was}")),
            Some(now) if now != was => diff.push(format!("~ {path}: {was} => {now}")),
            _ => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            diff.push(format!("+ {path}: {now}"));
        }
    }
    panic!("the repository changed:\n{}\n{context}", diff.join("\n"));
}

/// The directory holding the built `git-atomic`, to put on `PATH` for `git atomic`.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_git-atomic")).parent().unwrap().to_path_buf()
}

/// Whether the git under test is at least `version`.
pub fn git_at_least(version: (u32, u32)) -> bool {
    git_version() >= version
}

/// Whether this is a CI run (`CI=true`), where no test may skip its real check.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Records that `test` cannot run its real check here (`why`: what is missing). Under CI that is
/// a failure; elsewhere the skip is printed and appended to the file `ATOMIC_TEST_SKIPS` names
/// (`.ci/run` sets it and prints a summary), else to `target/test-skips.log`: never a silent pass.
pub fn skip(test: &str, why: &str) {
    assert!(!under_ci(), "{test} cannot run its check under CI: {why}");
    record_skip("skipped", test, why);
}

/// Whether the git under test is at least `version`; if not, `test` is skipped (see [`skip`]).
/// Under CI, a run with an older git may leave the test out only when `.ci/run` says that a
/// newer git already ran it (`ATOMIC_TEST_NEWER_GIT_RAN=1`): it is recorded as covered there.
pub fn needs_git(test: &str, version: (u32, u32)) -> bool {
    if git_at_least(version) {
        return true;
    }
    let why = format!("needs git >= {}.{}", version.0, version.1);
    if std::env::var("ATOMIC_TEST_NEWER_GIT_RAN").is_ok_and(|v| v == "1") {
        record_skip("covered-by-newer-git", test, &why);
    } else {
        skip(test, &why);
    }
    false
}

fn record_skip(kind: &str, test: &str, why: &str) {
    let (major, minor) = git_version();
    let line = format!("{kind}\t{test}\tgit {major}.{minor} ({})\t{why}\n", git_binary());
    eprintln!("SKIPPED {}", line.trim_end());
    let path = std::env::var_os("ATOMIC_TEST_SKIPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-skips.log"));
    use std::io::Write;
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
    // One write of one short line to an O_APPEND file: lines of parallel tests do not interleave.
    file.and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot record the skip in {}: {e}", path.display()));
}

pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("command starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// What a git-atomic run did.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Self {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Outcome {
    /// The `--json` object printed on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code, showing everything on failure.
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}
