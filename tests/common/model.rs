//! Crash-test kit, part 1: what an observer sees of a repository (every ref, HEAD, every
//! work-tree entry with type, permissions, content and symlink target), what a crash may leave
//! behind, the all-or-nothing verdict, and a seeded RNG so that every random test reproduces.
#![allow(dead_code)]

use crate::common::Repo;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// One work-tree entry. Permissions are the full `st_mode & 0o7777`, so a lost chmod shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(Vec<u8>),
    Other(String),
}

impl Node {
    /// The git mode of a file or symlink.
    pub fn git_mode(&self) -> Option<&'static str> {
        match self {
            Node::File(perm, _) if perm & 0o111 != 0 => Some("100755"),
            Node::File(..) => Some("100644"),
            Node::Link(_) => Some("120000"),
            _ => None,
        }
    }

    /// The bytes git would hash: a file's content or a symlink's target.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Node::File(_, b) | Node::Link(b) => Some(b),
            _ => None,
        }
    }
}

/// What a user can observe of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// `ref: <target>`, an object id when detached, or `absent`.
    pub head: String,
    /// Every ref `git for-each-ref` lists: `<objectname>` or `<objectname> -> <symref>`.
    /// Anything git warned about while listing (a broken ref) is kept under `!warning`.
    pub refs: BTreeMap<String, String>,
    /// Every path under the work tree except `.git`.
    pub tree: BTreeMap<String, Node>,
}

impl State {
    /// The ref an update of `name` changes (HEAD follows its symref).
    pub fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        if name == "HEAD"
            && let Some(target) = self.head.strip_prefix("ref: ")
        {
            return target;
        }
        name
    }

    /// The object id a ref holds (HEAD included), if any.
    pub fn ref_id(&self, name: &str) -> Option<String> {
        let target = self.resolve(name);
        if target == "HEAD" {
            return (self.head != "absent").then(|| self.head.clone());
        }
        self.refs.get(target).map(|v| v.split(' ').next().unwrap().to_string())
    }
}

/// Observes refs through git and the work tree through the file system.
pub fn observe(repo: &Repo) -> State {
    State { head: observe_head(repo), refs: observe_refs(repo), tree: observe_tree(&repo.dir) }
}

fn observe_head(repo: &Repo) -> String {
    let out = repo.git_cmd(&["symbolic-ref", "-q", "HEAD"]).output().expect("git runs");
    if out.status.success() {
        return format!("ref: {}", String::from_utf8_lossy(&out.stdout).trim());
    }
    repo.ref_value("HEAD").unwrap_or_else(|| "absent".into())
}

fn observe_refs(repo: &Repo) -> BTreeMap<String, String> {
    let out = repo
        .git_cmd(&["for-each-ref", "--format=%(refname) %(objectname) %(symref)"])
        .output()
        .expect("git runs");
    let mut refs = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.splitn(3, ' ');
        let (name, id, symref) =
            (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let value = if symref.is_empty() { id.to_string() } else { format!("{id} -> {symref}") };
        refs.insert(name.to_string(), value);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        refs.insert("!warning".into(), format!("{}: {}", out.status, stderr.trim()));
    }
    refs
}

/// Every entry below `root`, `.git` excluded.
pub fn observe_tree(root: &Path) -> BTreeMap<String, Node> {
    let mut tree = BTreeMap::new();
    walk(root, "", &mut tree);
    tree
}

fn walk(dir: &Path, prefix: &str, tree: &mut BTreeMap<String, Node>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.map(|e| e.unwrap()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if prefix.is_empty() && name == ".git" {
            continue;
        }
        let rel = format!("{prefix}{name}");
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let perm = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        let node = if kind.is_symlink() {
            Node::Link(std::fs::read_link(&path).unwrap().as_os_str().as_bytes().to_vec())
        } else if kind.is_dir() {
            walk(&path, &format!("{rel}/"), tree);
            Node::Dir(perm)
        } else if kind.is_file() {
            Node::File(perm, std::fs::read(&path).unwrap())
        } else {
            Node::Other(format!("{kind:?}"))
        };
        tree.insert(rel, node);
    }
}

/// What a crash or recovery left that it must not: journals still pending, git lock files,
/// git's `packed-refs.new`, our hidden temp files in the work tree.
pub fn leftovers(work_tree: &Path) -> Vec<String> {
    let git_dir = work_tree.join(".git");
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(git_dir.join("atomic/batches")) {
        found.extend(entries.map(|e| format!("pending batch {}", e.unwrap().path().display())));
    }
    let mut stack = vec![git_dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap()) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                if name != "objects" {
                    stack.push(path);
                }
            } else if name.ends_with(".lock") || name == "packed-refs.new" {
                found.push(format!("stale {}", path.display()));
            }
        }
    }
    for path in observe_tree(work_tree).keys() {
        if path.contains("git-atomic-tmp") {
            found.push(format!("temp file {path}"));
        }
    }
    found
}

/// Which of the two allowed states a repository is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Before,
    After,
}

/// The all-or-nothing verdict: `now` must be exactly `before` or exactly `after`.
pub fn judge(now: &State, before: &State, after: &State) -> Result<Seen, String> {
    if now == after {
        return Ok(Seen::After);
    }
    if now == before {
        return Ok(Seen::Before);
    }
    Err(format!(
        "a mix of before and after:\n--- differences from the before-state:\n{}\n--- differences from the after-state:\n{}",
        diff(before, now),
        diff(after, now)
    ))
}

/// The differences between two states, one line each, for failure messages.
pub fn diff(want: &State, got: &State) -> String {
    let mut lines = Vec::new();
    if want.head != got.head {
        lines.push(format!("  HEAD: want {} got {}", want.head, got.head));
    }
    diff_maps(&want.refs, &got.refs, &mut lines, |v| v.clone());
    diff_maps(&want.tree, &got.tree, &mut lines, describe);
    if lines.is_empty() { "  (none)".into() } else { lines.join("\n") }
}

fn diff_maps<V: PartialEq>(
    want: &BTreeMap<String, V>,
    got: &BTreeMap<String, V>,
    lines: &mut Vec<String>,
    show: impl Fn(&V) -> String,
) {
    for (k, v) in want {
        match got.get(k) {
            None => lines.push(format!("  missing {k}: {}", show(v))),
            Some(g) if g != v => lines.push(format!("  changed {k}: want {} got {}", show(v), show(g))),
            _ => {}
        }
    }
    for (k, v) in got {
        if !want.contains_key(k) {
            lines.push(format!("  extra {k}: {}", show(v)));
        }
    }
}

fn describe(node: &Node) -> String {
    match node {
        Node::Dir(p) => format!("dir {p:o}"),
        Node::File(p, b) => format!("file {p:o} {:?}", String::from_utf8_lossy(&b[..b.len().min(40)])),
        Node::Link(t) => format!("link -> {}", String::from_utf8_lossy(t)),
        Node::Other(k) => format!("special {k}"),
    }
}

/// The process umask (from /proc, without changing it): new files get `0o666 & !umask`.
pub fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap_or(0o022)
}

/// A xorshift64* generator: small, seeded, reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with the given percentage.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// The seed of a random test: `CRASH_SEED` when set (to replay a failure), else the clock.
/// Printed, so that a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("{test}: seed {seed} (replay with CRASH_SEED={seed})");
    seed
}

/// `CRASH_TRIALS` (long mode) or the CI default.
pub fn trials(ci_default: usize) -> usize {
    std::env::var("CRASH_TRIALS").ok().and_then(|s| s.parse().ok()).unwrap_or(ci_default)
}

/// Whether the long mode was asked for (`CRASH_LONG=1`, or any `CRASH_TRIALS`).
pub fn long_mode() -> bool {
    std::env::var_os("CRASH_LONG").is_some() || std::env::var_os("CRASH_TRIALS").is_some()
}
