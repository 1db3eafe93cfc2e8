//! Crash-test kit, part 2: batches as data, a model of what a batch does to a [`State`]
//! (so every test knows the exact after-state without trusting the product), the fixture
//! repository, a few hand-made batch shapes, and a random batch generator that only makes
//! batches that must apply.
//!
//! Names are chosen so that nothing ever collides as file and directory: ref leaves start with
//! `b`, `n` or `t` and ref directories with `g`; work-tree files start with `f` (or are README)
//! and directories with `d` or `e`.
#![allow(dead_code)]

use crate::common::Repo;
use crate::model::{Node, Rng, State};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// A file mode a batch may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Regular,
    Exec,
    Link,
}

impl Mode {
    fn git(self) -> &'static str {
        match self {
            Mode::Regular => "100644",
            Mode::Exec => "100755",
            Mode::Link => "120000",
        }
    }

    fn of(node: &Node) -> Mode {
        match node.git_mode() {
            Some("100755") => Mode::Exec,
            Some("120000") => Mode::Link,
            _ => Mode::Regular,
        }
    }
}

/// A file precondition.
#[derive(Debug, Clone)]
pub enum Expect {
    Absent,
    Present,
    Blob(String),
}

#[derive(Debug, Clone)]
pub enum RefOp {
    Update { name: String, to: String, from: Option<String> },
    Create { name: String, to: String },
    Delete { name: String, from: Option<String> },
    Verify { name: String, is: String },
    Symref { name: String, to: String },
}

#[derive(Debug, Clone)]
pub enum FileOp {
    Write { path: String, content: Vec<u8>, base64: bool, mode: Option<Mode>, expect: Option<Expect> },
    Delete { path: String, expect: Option<Expect> },
    Rename { path: String, to: String, expect: Option<Expect> },
}

/// A batch as the tests build it.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub message: Option<String>,
    pub refs: Vec<RefOp>,
    pub files: Vec<FileOp>,
}

/// The blob id git gives these bytes.
pub fn blob_id(bytes: &[u8]) -> String {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, bytes).unwrap().to_string()
}

fn expect_json(expect: &Option<Expect>, entry: &mut serde_json::Map<String, Value>) {
    let value = match expect {
        None => return,
        Some(Expect::Absent) => "absent".to_string(),
        Some(Expect::Present) => "present".to_string(),
        Some(Expect::Blob(id)) => id.clone(),
    };
    entry.insert("expect".into(), json!(value));
}

impl Batch {
    /// The batch file (JSON, which `git atomic apply` accepts).
    pub fn to_json(&self) -> String {
        let refs: Vec<Value> = self.refs.iter().map(ref_json).collect();
        let files: Vec<Value> = self.files.iter().map(file_json).collect();
        let mut top = serde_json::Map::new();
        if let Some(m) = &self.message {
            top.insert("message".into(), json!(m));
        }
        if !refs.is_empty() {
            top.insert("refs".into(), Value::Array(refs));
        }
        if !files.is_empty() {
            top.insert("files".into(), Value::Array(files));
        }
        Value::Object(top).to_string()
    }

    /// How many file moves (puts and effective removals) the batch makes from `state`: the
    /// number of `file-moved` / `recover-file` crash points it passes.
    pub fn moves(&self, state: &State) -> usize {
        self.files
            .iter()
            .map(|f| match f {
                FileOp::Write { .. } => 1,
                FileOp::Delete { path, .. } => usize::from(state.tree.contains_key(path)),
                FileOp::Rename { .. } => 2,
            })
            .sum()
    }

    /// The model: the state after the batch applies to `before` (umask as given).
    pub fn apply_to(&self, before: &State, umask: u32) -> State {
        let mut s = before.clone();
        for op in &self.refs {
            apply_ref(&mut s, op);
        }
        let file_perm = |mode: Mode| if mode == Mode::Exec { 0o777 & !umask } else { 0o666 & !umask };
        let make = |mode: Mode, bytes: Vec<u8>| match mode {
            Mode::Link => Node::Link(bytes),
            m => Node::File(file_perm(m), bytes),
        };
        // Puts first, in entry order, then removals (the product's order; the end result of
        // removing emptied directories does not depend on it).
        for op in &self.files {
            match op {
                FileOp::Write { path, content, mode, .. } => {
                    let mode =
                        mode.unwrap_or_else(|| before.tree.get(path).map(Mode::of).unwrap_or(Mode::Regular));
                    put(&mut s, path, make(mode, content.clone()), umask);
                }
                FileOp::Rename { path, to, .. } => {
                    let node = &before.tree[path];
                    put(&mut s, to, make(Mode::of(node), node.bytes().unwrap().to_vec()), umask);
                }
                FileOp::Delete { .. } => {}
            }
        }
        for op in &self.files {
            match op {
                FileOp::Delete { path, .. } | FileOp::Rename { path, .. } => remove(&mut s, path),
                FileOp::Write { .. } => {}
            }
        }
        s
    }
}

fn ref_json(op: &RefOp) -> Value {
    match op {
        RefOp::Update { name, to, from } => {
            let mut v = json!({"update": name, "to": to});
            if let Some(f) = from {
                v["from"] = json!(f);
            }
            v
        }
        RefOp::Create { name, to } => json!({"create": name, "to": to}),
        RefOp::Delete { name, from } => {
            let mut v = json!({"delete": name});
            if let Some(f) = from {
                v["from"] = json!(f);
            }
            v
        }
        RefOp::Verify { name, is } => json!({"verify": name, "is": is}),
        RefOp::Symref { name, to } => json!({"symref": name, "to": to}),
    }
}

fn file_json(op: &FileOp) -> Value {
    let mut entry = serde_json::Map::new();
    match op {
        FileOp::Write { path, content, base64, mode, expect } => {
            entry.insert("write".into(), json!(path));
            match (base64, std::str::from_utf8(content)) {
                (false, Ok(text)) => entry.insert("content".into(), json!(text)),
                _ => entry.insert(
                    "base64".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(content)),
                ),
            };
            if let Some(m) = mode {
                entry.insert("mode".into(), json!(m.git()));
            }
            expect_json(expect, &mut entry);
        }
        FileOp::Delete { path, expect } => {
            entry.insert("delete".into(), json!(path));
            expect_json(expect, &mut entry);
        }
        FileOp::Rename { path, to, expect } => {
            entry.insert("rename".into(), json!(path));
            entry.insert("to".into(), json!(to));
            expect_json(expect, &mut entry);
        }
    }
    Value::Object(entry)
}

fn apply_ref(s: &mut State, op: &RefOp) {
    match op {
        RefOp::Update { name, to, .. } | RefOp::Create { name, to } => {
            let target = s.resolve(name).to_string();
            if target == "HEAD" {
                s.head = to.clone();
            } else {
                s.refs.insert(target, to.clone());
            }
        }
        RefOp::Delete { name, .. } => {
            let target = s.resolve(name).to_string();
            s.refs.remove(&target);
        }
        RefOp::Verify { .. } => {}
        RefOp::Symref { name, to } => {
            assert_eq!(name, "HEAD", "the model knows only HEAD as a symbolic ref");
            s.head = format!("ref: {to}");
        }
    }
}

fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

fn put(s: &mut State, path: &str, node: Node, umask: u32) {
    for dir in parents(path) {
        s.tree.entry(dir.to_string()).or_insert(Node::Dir(0o777 & !umask));
    }
    s.tree.insert(path.to_string(), node);
}

fn remove(s: &mut State, path: &str) {
    if s.tree.remove(path).is_none() {
        return;
    }
    let dirs: Vec<&str> = parents(path).collect();
    for dir in dirs.iter().rev() {
        let prefix = format!("{dir}/");
        if s.tree.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix)) {
            break;
        }
        s.tree.remove(*dir);
    }
}

/// The repository every test starts from, and the commits batches point refs at.
pub struct Fixture {
    pub repo: Repo,
    pub commits: Vec<String>,
}

/// Builds the fixture in a new temp dir: a chain of commits, loose and packed branches and
/// tags (nested too), HEAD on `main`, and a work tree with nested directories, an executable,
/// a symlink and a binary file.
pub fn fixture() -> Fixture {
    fixture_with(&[])
}

/// The fixture, with extra `git init` arguments (`--ref-format=reftable`).
pub fn fixture_with(init: &[&str]) -> Fixture {
    let repo = Repo::init(init);
    populate(&repo);
    let commits = commits_of(&repo);
    Fixture { repo, commits }
}

/// Fills a freshly initialised repository (one commit on `main`) with the fixture's content.
pub fn populate(repo: &Repo) {
    let mut parent = repo.rev("HEAD");
    let tree = repo.rev("HEAD^{tree}");
    for i in 0..6 {
        parent = repo.git(&["commit-tree", &tree, "-p", &parent, "-m", &format!("c{i}")]).trim().to_string();
        repo.git(&["update-ref", &format!("refs/heads/b{i}"), &parent]);
    }
    repo.git(&["update-ref", "refs/tags/t0", &parent]);
    repo.git(&["update-ref", "refs/heads/g0/n0", &parent]);
    repo.git(&["pack-refs", "--all"]);
    // Loose on top of packed: b1 is in both, b6 only loose.
    repo.git(&["update-ref", "refs/heads/b1", "HEAD"]);
    repo.git(&["update-ref", "refs/heads/b6", "HEAD"]);
    repo.git(&["update-ref", "refs/tags/g1/t1", "HEAD"]);
    let w = |p: &str, c: &[u8]| {
        let full = repo.dir.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    };
    w("f0.txt", b"zero\n");
    w("f1.sh", b"#!/bin/sh\necho one\n");
    set_exec(&repo.dir.join("f1.sh"));
    std::os::unix::fs::symlink("f0.txt", repo.dir.join("f2")).unwrap();
    w("d0/f3.txt", b"three\n");
    w("d0/e0/f4.bin", &[0, 1, 2, 255, 254, b'\n', 0]);
    w("d1/e1/f5.txt", b"five\n");
    w("d2/f6.txt", b"");
}

fn set_exec(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(path).unwrap().permissions();
    perm.set_mode(perm.mode() | 0o111);
    std::fs::set_permissions(path, perm).unwrap();
}

/// The commits `main` and the `b*` branches point at.
pub fn commits_of(repo: &Repo) -> Vec<String> {
    let out = repo.git(&["rev-list", "--all"]);
    out.lines().map(str::to_string).collect()
}

/// The hand-made shapes of the crash-point test.
pub fn shapes(f: &Fixture, state: &State, symref_ok: bool) -> Vec<(&'static str, Batch)> {
    let c = &f.commits;
    let id = |name: &str| state.ref_id(name).unwrap();
    let text = |s: &str| s.as_bytes().to_vec();
    let write = |path: &str, content: Vec<u8>, mode: Option<Mode>| FileOp::Write {
        path: path.into(),
        content,
        base64: false,
        mode,
        expect: None,
    };
    let refs_only = Batch {
        message: Some("refs only".into()),
        refs: vec![
            RefOp::Create { name: "refs/heads/b10".into(), to: c[0].clone() },
            RefOp::Update { name: "refs/heads/b1".into(), to: c[2].clone(), from: Some(id("refs/heads/b1")) },
            RefOp::Delete { name: "refs/heads/b6".into(), from: Some(id("refs/heads/b6")) },
            RefOp::Create { name: "refs/heads/g5/n1".into(), to: c[1].clone() },
            RefOp::Verify { name: "refs/heads/b3".into(), is: id("refs/heads/b3") },
            RefOp::Verify { name: "refs/heads/b11".into(), is: "absent".into() },
            RefOp::Create { name: "refs/tags/t5".into(), to: c[3].clone() },
            RefOp::Update { name: "refs/tags/g1/t1".into(), to: c[4].clone(), from: None },
        ],
        files: vec![],
    };
    let files_only = Batch {
        message: None,
        refs: vec![],
        files: vec![
            write("d5/e5/f10.txt", text("ten\n"), None),
            FileOp::Write {
                path: "f0.txt".into(),
                content: text("zero, again\n"),
                base64: false,
                mode: None,
                expect: Some(Expect::Blob(blob_id(b"zero\n"))),
            },
            FileOp::Delete { path: "d1/e1/f5.txt".into(), expect: Some(Expect::Present) },
            FileOp::Rename { path: "f1.sh".into(), to: "d6/f11.sh".into(), expect: None },
            write("f12", text("d0/f3.txt"), Some(Mode::Link)),
            write("d0/f3.txt", text("three\n"), Some(Mode::Exec)),
            FileOp::Write {
                path: "d0/e0/f4.bin".into(),
                content: vec![9, 0, 9, 0],
                base64: true,
                mode: None,
                expect: Some(Expect::Present),
            },
            write("f2", text("d2/f6.txt"), None),
            FileOp::Delete { path: "d9/f99".into(), expect: None },
        ],
    };
    let mut mixed = Batch { message: Some("mixed".into()), ..Default::default() };
    mixed.refs = vec![
        RefOp::Update { name: "refs/heads/b2".into(), to: c[5].clone(), from: Some(id("refs/heads/b2")) },
        RefOp::Delete { name: "refs/heads/b4".into(), from: None },
        RefOp::Create { name: "refs/heads/g7/n7".into(), to: c[0].clone() },
    ];
    mixed.files = vec![
        write("d7/e7/f70.txt", text("seventy\n"), Some(Mode::Exec)),
        FileOp::Rename { path: "d0/f3.txt".into(), to: "d8/e8/f80.txt".into(), expect: None },
        FileOp::Delete { path: "d2/f6.txt".into(), expect: Some(Expect::Blob(blob_id(b""))) },
        write("f13", text("../outside"), Some(Mode::Link)),
    ];
    let mut head = Batch { message: Some("head".into()), ..Default::default() };
    head.refs = vec![
        RefOp::Update { name: "HEAD".into(), to: c[3].clone(), from: Some(id("HEAD")) },
        RefOp::Create { name: "refs/heads/b12".into(), to: c[2].clone() },
    ];
    head.files = vec![write("f14.txt", text("head moved\n"), None)];
    let packed = Batch {
        message: Some("packed deletes".into()),
        refs: vec![
            RefOp::Delete { name: "refs/heads/b5".into(), from: Some(id("refs/heads/b5")) },
            RefOp::Delete { name: "refs/heads/b1".into(), from: None },
            RefOp::Delete { name: "refs/heads/g0/n0".into(), from: None },
            RefOp::Delete { name: "refs/heads/b99".into(), from: None },
        ],
        files: vec![FileOp::Delete { path: "d0/e0/f4.bin".into(), expect: None }],
    };
    let mut out = vec![
        ("refs-only", refs_only),
        ("files-only", files_only),
        ("mixed", mixed),
        ("head-update", head),
        ("packed-delete", packed),
    ];
    if symref_ok {
        let mut symref = Batch { message: Some("symref".into()), ..Default::default() };
        symref.refs = vec![
            RefOp::Symref { name: "HEAD".into(), to: "refs/heads/b3".into() },
            RefOp::Update { name: "refs/heads/b2".into(), to: c[1].clone(), from: None },
        ];
        symref.files = vec![write("d3/f30.txt", text("thirty\n"), None)];
        out.push(("head-symref", symref));
    }
    out
}

/// Limits and switches of the random generator.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_refs: usize,
    pub max_files: usize,
    pub symref: bool,
}

/// Makes random batches that must apply to the state they are made for.
pub struct Generator {
    pub rng: Rng,
    pub commits: Vec<String>,
    pub limits: Limits,
    counter: u64,
}

const LINK_TARGETS: &[&str] =
    &["f0.txt", "../outside", "/etc/passwd", "d0", "dangling/x", "d0/e0/f4.bin", " sp ace"];

impl Generator {
    pub fn new(seed: u64, commits: Vec<String>, limits: Limits) -> Self {
        Generator { rng: Rng::new(seed), commits, limits, counter: 1000 }
    }

    fn fresh(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn commit(&mut self) -> String {
        self.rng.pick(&self.commits).clone()
    }

    /// A batch with at least one entry that changes something.
    pub fn batch(&mut self, state: &State) -> Batch {
        loop {
            let mut batch = Batch::default();
            if self.rng.chance(30) {
                batch.message = Some(format!("random batch {}", self.fresh()));
            }
            let (no_refs, no_files) = match self.rng.below(10) {
                0 => (true, false),
                1 => (false, true),
                _ => (false, false),
            };
            if !no_refs {
                let n = self.rng.range(1, self.limits.max_refs as u64) as usize;
                batch.refs = self.refs(state, n);
            }
            if !no_files {
                let n = self.rng.range(1, self.limits.max_files as u64) as usize;
                batch.files = self.files(state, n);
            }
            if batch.apply_to(state, 0o022) != *state {
                return batch;
            }
        }
    }

    fn ref_name(&mut self) -> String {
        let k = self.fresh();
        match self.rng.below(5) {
            0 => format!("refs/tags/t{k}"),
            1 => format!("refs/heads/g{}/n{k}", self.rng.below(4)),
            2 => format!("refs/tags/g{}/g{}/t{k}", self.rng.below(3), self.rng.below(3)),
            _ => format!("refs/heads/b{k}"),
        }
    }

    fn refs(&mut self, state: &State, n: usize) -> Vec<RefOp> {
        let head_target = state.resolve("HEAD").to_string();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut ops = Vec::new();
        if self.rng.chance(20) {
            used.insert("HEAD".into());
            used.insert(head_target.clone());
            let branches: Vec<&String> =
                state.refs.keys().filter(|k| k.starts_with("refs/heads/") && **k != head_target).collect();
            if self.limits.symref && self.rng.chance(40) && !branches.is_empty() {
                let to = (*self.rng.pick(&branches)).clone();
                used.insert(to.clone());
                ops.push(RefOp::Symref { name: "HEAD".into(), to });
            } else if state.ref_id("HEAD").is_some() {
                let from = self.rng.chance(50).then(|| state.ref_id("HEAD").unwrap());
                ops.push(RefOp::Update { name: "HEAD".into(), to: self.commit(), from });
            }
        }
        let existing: Vec<String> = state.refs.keys().filter(|k| !k.starts_with('!')).cloned().collect();
        // Deletes gain weight as the repository grows, so that long runs stay around a size.
        let crowded = existing.len() > 3 * self.limits.max_refs;
        while ops.len() < n {
            let pick_existing = !existing.is_empty() && self.rng.chance(if crowded { 80 } else { 60 });
            let name = if pick_existing { self.rng.pick(&existing).clone() } else { self.ref_name() };
            if used.contains(&name) || name == head_target && self.rng.chance(90) {
                if used.len() > existing.len() {
                    break;
                }
                continue;
            }
            used.insert(name.clone());
            let current = state.refs.get(&name).map(|v| v.split(' ').next().unwrap().to_string());
            let op = match (current, self.rng.below(10)) {
                (None, 0) => RefOp::Verify { name, is: "absent".into() },
                (None, 1) => RefOp::Delete { name, from: None },
                (None, 2..=4) => RefOp::Update { name, to: self.commit(), from: Some("absent".into()) },
                (None, _) => RefOp::Create { name, to: self.commit() },
                (Some(id), 0) => RefOp::Verify { name, is: id },
                (Some(_), 1..=3) if name == head_target => continue,
                (Some(id), 1..=3) => RefOp::Delete { name, from: self.rng.chance(50).then_some(id) },
                (Some(id), 4..=6) if crowded && name != head_target => {
                    RefOp::Delete { name, from: self.rng.chance(50).then_some(id) }
                }
                (Some(id), _) => {
                    let from = self.rng.chance(50).then_some(id);
                    RefOp::Update { name, to: self.commit(), from }
                }
            };
            ops.push(op);
        }
        ops
    }

    fn fresh_path(&mut self, state: &State) -> String {
        loop {
            let k = self.fresh();
            let ext = *self.rng.pick(&["", ".txt", ".sh", ".bin"]);
            let path = match self.rng.below(4) {
                0 => format!("f{k}{ext}"),
                1 => format!("d{}/f{k}{ext}", self.rng.below(4)),
                _ => format!("d{}/e{}/f{k}{ext}", self.rng.below(4), self.rng.below(3)),
            };
            if !state.tree.contains_key(&path) {
                return path;
            }
        }
    }

    fn content(&mut self) -> (Vec<u8>, bool) {
        match self.rng.below(6) {
            0 => (Vec::new(), false),
            1 => {
                let len = self.rng.range(1, 5000) as usize;
                (self.rng.bytes(len), true)
            }
            2 => (
                format!("line {}\n", self.fresh()).repeat(self.rng.range(1, 50) as usize).into_bytes(),
                false,
            ),
            _ => (format!("content {}\n", self.fresh()).into_bytes(), self.rng.chance(20)),
        }
    }

    fn link_target(&mut self) -> Vec<u8> {
        let t = *self.rng.pick(LINK_TARGETS);
        format!("{t}{}", if self.rng.chance(50) { String::new() } else { self.fresh().to_string() })
            .into_bytes()
    }

    /// Content for `mode`: a symlink's target must be non-empty and without NUL.
    fn content_for(&mut self, mode: Mode) -> (Vec<u8>, bool) {
        if mode == Mode::Link {
            return (self.link_target(), self.rng.chance(20));
        }
        self.content()
    }

    fn expect_for(&mut self, node: &Node) -> Option<Expect> {
        match self.rng.below(3) {
            0 => None,
            1 => Some(Expect::Present),
            _ => Some(Expect::Blob(blob_id(node.bytes().unwrap()))),
        }
    }

    fn files(&mut self, state: &State, n: usize) -> Vec<FileOp> {
        let existing: Vec<(String, Node)> = state
            .tree
            .iter()
            .filter(|(_, node)| node.bytes().is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut ops = Vec::new();
        let mut attempts = 0;
        let crowded = existing.len() > 3 * self.limits.max_files;
        while ops.len() < n && attempts < n * 4 {
            attempts += 1;
            let on_existing = !existing.is_empty() && self.rng.chance(if crowded { 80 } else { 55 });
            if !on_existing {
                let path = self.fresh_path(state);
                used.insert(path.clone());
                if self.rng.chance(5) {
                    ops.push(FileOp::Delete { path, expect: None });
                    continue;
                }
                let mode =
                    *self.rng.pick(&[None, None, Some(Mode::Regular), Some(Mode::Exec), Some(Mode::Link)]);
                let (content, base64) = self.content_for(mode.unwrap_or(Mode::Regular));
                let expect = self.rng.chance(30).then_some(Expect::Absent);
                ops.push(FileOp::Write { path, content, base64, mode, expect });
                continue;
            }
            let (path, node) = self.rng.pick(&existing).clone();
            if !used.insert(path.clone()) {
                continue;
            }
            let expect = self.expect_for(&node);
            match self.rng.below(10) {
                0..=2 => ops.push(FileOp::Delete { path, expect }),
                6..=7 if crowded => ops.push(FileOp::Delete { path, expect }),
                3..=4 => {
                    let to = self.fresh_path(state);
                    used.insert(to.clone());
                    ops.push(FileOp::Rename { path, to, expect });
                }
                5 => {
                    // A chmod: same bytes, the other file mode.
                    let mode = match Mode::of(&node) {
                        Mode::Regular => Mode::Exec,
                        Mode::Exec => Mode::Regular,
                        Mode::Link => continue,
                    };
                    let content = node.bytes().unwrap().to_vec();
                    ops.push(FileOp::Write { path, content, base64: false, mode: Some(mode), expect });
                }
                _ => {
                    let mode = if self.rng.chance(60) {
                        None
                    } else {
                        Some(*self.rng.pick(&[Mode::Regular, Mode::Exec, Mode::Link]))
                    };
                    let (content, base64) = self.content_for(mode.unwrap_or(Mode::of(&node)));
                    ops.push(FileOp::Write { path, content, base64, mode, expect });
                }
            }
        }
        ops
    }
}
