//! Reading refs without changing them: gix for the files backend (no process to start), git
//! itself for reftable, which gix misreads (NOTES-git.md); and where loose refs live
//! ([`RefDirs`]). Writes never happen here.

use crate::error::{Error, Result};
use crate::git::Git;
use gix::ObjectId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a ref holds, one level deep (a symbolic ref is not followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefValue {
    Absent,
    Id(ObjectId),
    /// A symbolic ref and the full name it points at.
    Symbolic(String),
}

impl RefValue {
    /// The object id, if the ref points at one directly.
    pub fn id(&self) -> Option<ObjectId> {
        match self {
            RefValue::Id(id) => Some(*id),
            _ => None,
        }
    }
}

/// How many symbolic refs we follow before calling it a loop, as git does.
const MAX_SYMREF_DEPTH: usize = 5;

/// Above this many refs named by a batch, listing every ref once beats looking each one up.
const LIST_ABOVE: usize = 256;

/// A read-only view of the repository's refs.
pub struct RefStore<'r> {
    repo: &'r gix::Repository,
    reftable: bool,
    /// Every shared ref, listed once: always for reftable (through git), and through gix when a
    /// batch names many refs. Per-worktree refs of the files backend are always looked up.
    listed: Option<BTreeMap<String, RefValue>>,
}

/// Refs that live in each worktree's own git dir rather than the common dir.
pub fn is_per_worktree(name: &str) -> bool {
    !name.starts_with("refs/")
        || ["refs/worktree/", "refs/bisect/", "refs/rewritten/"].iter().any(|p| name.starts_with(p))
}

/// Where loose refs live: per-worktree refs in the worktree's git dir, the rest in the common dir.
pub struct RefDirs {
    pub git_dir: PathBuf,
    pub common_dir: PathBuf,
}

impl RefDirs {
    /// The directory a loose ref named `name` is stored under.
    pub fn base_for(&self, name: &str) -> &Path {
        if is_per_worktree(name) { &self.git_dir } else { &self.common_dir }
    }

    /// The directories under `refs/` (and `logs/refs/`) that do not exist yet for these refs,
    /// deepest first: git creates them for its lock files and leaves them behind when it refuses.
    pub fn missing_parents<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<PathBuf> {
        // Many refs share few directories: each directory is looked at once. Inserted one by one,
        // as `collect` would first gather all 300,000 prefixes of 100,000 refs into one vector.
        let mut parents = std::collections::BTreeSet::new();
        for name in names {
            for (i, _) in name.match_indices('/') {
                parents.insert((self.base_for(name), &name[..i]));
            }
        }
        let mut missing = std::collections::BTreeSet::new();
        for (base, parent) in parents {
            for dir in [base.join(parent), base.join("logs").join(parent)] {
                if !dir.exists() {
                    missing.insert(dir);
                }
            }
        }
        let mut list: Vec<PathBuf> = missing.into_iter().collect();
        list.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        list
    }
}

impl<'r> RefStore<'r> {
    /// A reader for a batch that names `refs` refs.
    pub fn for_batch(repo: &'r gix::Repository, git: &Git, reftable: bool, refs: usize) -> Result<Self> {
        let listed = match (reftable, refs > LIST_ABOVE) {
            (true, _) => Some(list_with_git(git)?),
            (false, true) => Some(list_with_gix(repo)?),
            (false, false) => None,
        };
        Ok(RefStore { repo, reftable, listed })
    }

    /// The value of exactly `name` (no DWIM, no following of symbolic refs).
    pub fn read(&self, name: &str) -> Result<RefValue> {
        match &self.listed {
            Some(map) if self.reftable || !is_per_worktree(name) => {
                Ok(map.get(name).cloned().unwrap_or(RefValue::Absent))
            }
            _ => read_with_gix(self.repo, name),
        }
    }

    /// Follows symbolic refs from `name` to the ref an update would change, and that ref's value.
    pub fn resolve(&self, name: &str) -> Result<(String, RefValue)> {
        let mut current = name.to_string();
        for _ in 0..MAX_SYMREF_DEPTH {
            match self.read(&current)? {
                RefValue::Symbolic(target) => current = target,
                value => return Ok((current, value)),
            }
        }
        Err(Error::invalid(format!("symbolic ref '{name}' nests too deeply (a loop?)")))
    }

    /// An existing ref that would collide with `name` as file and directory, if any.
    pub fn collision(&self, name: &str) -> Result<Option<String>> {
        let mut prefix = String::new();
        for component in name.split('/').take(name.split('/').count().saturating_sub(1)) {
            prefix.push_str(component);
            if prefix != "refs" && self.read(&prefix)? != RefValue::Absent {
                return Ok(Some(prefix));
            }
            prefix.push('/');
        }
        let below = format!("{name}/");
        if let Some(map) = &self.listed {
            let first = map.range(below.clone()..).next().map(|(k, _)| k.clone());
            return Ok(first.filter(|k| k.starts_with(&below)));
        }
        let platform = self.repo.references().map_err(|e| Error::fatal(format!("cannot list refs: {e}")))?;
        // gix refuses a prefix that Windows could not store (`con`, `a|b`) though git takes such
        // names here: then everything under refs/ is listed, and the first ref below the name kept.
        let iter = match platform.prefixed(below.as_str()) {
            Ok(iter) => iter,
            Err(_) => platform
                .prefixed("refs/")
                .map_err(|e| Error::fatal(format!("cannot list refs under '{below}': {e}")))?,
        };
        Ok(iter
            .filter_map(|r| r.ok())
            .map(|r| r.name().as_bstr().to_string())
            .find(|n| n.starts_with(&below)))
    }
}

/// One ref through gix's lookup, which tries more than the exact name: keep only an exact hit.
fn read_with_gix(repo: &gix::Repository, name: &str) -> Result<RefValue> {
    let found =
        repo.try_find_reference(name).map_err(|e| Error::fatal(format!("cannot read ref '{name}': {e}")))?;
    let Some(r) = found.filter(|r| r.name().as_bstr() == name) else { return Ok(RefValue::Absent) };
    Ok(value_of(r.target()))
}

fn value_of(target: gix::refs::TargetRef<'_>) -> RefValue {
    match target {
        gix::refs::TargetRef::Object(id) => RefValue::Id(id.to_owned()),
        gix::refs::TargetRef::Symbolic(target) => RefValue::Symbolic(target.as_bstr().to_string()),
    }
}

/// Lists every ref once through gix (loose and packed, merged as git merges them).
fn list_with_gix(repo: &gix::Repository) -> Result<BTreeMap<String, RefValue>> {
    let failed = |e: &dyn std::fmt::Display| Error::fatal(format!("cannot list refs: {e}"));
    let platform = repo.references().map_err(|e| failed(&e))?;
    let mut map = BTreeMap::new();
    for r in platform.all().map_err(|e| failed(&e))? {
        let r = r.map_err(|e| failed(&e))?;
        map.insert(r.name().as_bstr().to_string(), value_of(r.target()));
    }
    Ok(map)
}

/// Lists every ref with git, for backends gix cannot read.
fn list_with_git(git: &Git) -> Result<BTreeMap<String, RefValue>> {
    let out = git.run(&["for-each-ref", "--format=%(refname) %(objectname) %(symref)"], None)?;
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out).lines() {
        let mut parts = line.split(' ');
        let (Some(name), Some(id), symref) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let value = match symref.filter(|s| !s.is_empty()) {
            Some(target) => RefValue::Symbolic(target.to_string()),
            None => RefValue::Id(parse_id(id)?),
        };
        map.insert(name.to_string(), value);
    }
    let head = git.output(&["symbolic-ref", "-q", "HEAD"], None)?;
    if head.status.success() {
        map.insert(
            "HEAD".into(),
            RefValue::Symbolic(String::from_utf8_lossy(&head.stdout).trim().to_string()),
        );
    } else {
        let id = git.output(&["rev-parse", "-q", "--verify", "HEAD"], None)?;
        if id.status.success() {
            map.insert("HEAD".into(), RefValue::Id(parse_id(String::from_utf8_lossy(&id.stdout).trim())?));
        }
    }
    Ok(map)
}

/// Parses a full hex object id as git prints it.
pub fn parse_id(hex: &str) -> Result<ObjectId> {
    ObjectId::from_hex(hex.as_bytes())
        .map_err(|_| Error::fatal(format!("git printed an invalid object id '{hex}'")))
}
