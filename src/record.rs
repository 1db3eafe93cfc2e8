//! The journal's on-disk types: [`Record`] and everything in it, with their serde shapes. The
//! record is the JSON line of `atomic/batches/<id>/journal` (framing: journal.rs), so a change to
//! any type here is a change to the disk format: bump the header's version in journal.rs and keep
//! reading the old one, for batches interrupted under an earlier git-atomic.

use crate::refstore::RefValue;
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Everything recovery needs to roll the batch back or forward, without the batch file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub message: String,
    /// The worktree's git dir: per-worktree refs (`HEAD`) are read and written through it.
    pub git_dir: PathBuf,
    pub work_tree: Option<PathBuf>,
    pub refs: Vec<RefChange>,
    pub puts: Vec<JournalPut>,
    pub removes: Vec<JournalRemove>,
    /// What the history log needs (format 3); a format 1 or 2 journal reads as keeping nothing.
    #[serde(default)]
    pub log: Box<LogInfo>,
}

impl Record {
    /// The first of `touched` that is one of the batch's refs (by the name written or the ref it
    /// resolves to), for the hook to refuse; per-worktree refs (`HEAD`) count only when `git_dir`
    /// is the worktree the batch ran in.
    pub fn ref_touched<'a>(&'a self, git_dir: &Path, touched: &BTreeSet<String>) -> Option<&'a String> {
        let same_worktree = self.git_dir == git_dir;
        self.refs
            .iter()
            .flat_map(|r| [&r.name, &r.target])
            .filter(|n| same_worktree || !crate::refstore::is_per_worktree(n))
            .find(|n| touched.contains(*n))
    }

    /// The refs the batch changes (after following symbolic refs), for `status`.
    pub fn ref_targets(&self) -> Vec<String> {
        self.refs.iter().map(|r| r.target.clone()).collect()
    }

    /// The paths the batch writes or removes, for `status`.
    pub fn paths(&self) -> Vec<String> {
        self.puts.iter().map(|p| p.path.clone()).chain(self.removes.iter().map(|r| r.path.clone())).collect()
    }
}

/// What `git atomic log` and `undo` need beyond recovery: whether the batch keeps pre-images
/// (`atomic.history`), which put+removal pairs were renames, and its undo/redo links.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogInfo {
    /// Keep each old file (moved into the batch directory, not unlinked) and log the batch.
    pub keep: bool,
    /// `(from, to)` of each rename, for the log to show it as one entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renames: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redoes: Option<String>,
}

/// The verb of a ref entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefVerb {
    Update,
    Create,
    Delete,
    Verify,
    Symref,
}

/// One ref entry, resolved: what the ref it changes holds now and will hold after the batch.
/// Validation makes it and the journal records it as it is, moved (not copied) into the record,
/// so that a 100,000-ref batch is held once. Values are written `absent`, a hex id, or `ref:<name>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefChange {
    pub entry: usize,
    pub verb: RefVerb,
    /// The name as written (`HEAD`), which is what update-ref is given.
    pub name: String,
    /// The ref that actually changes once symbolic refs are followed (`refs/heads/main`).
    pub target: String,
    pub old: RefValue,
    pub new: RefValue,
    /// False when update-ref has nothing to do (deleting a missing ref, an absent-verify that
    /// collides with an existing ref and so cannot be locked).
    pub via_git: bool,
}

/// A file put: new content staged in the batch directory, moved to `path` after the commit point.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalPut {
    pub path: String,
    /// The staged file's name in the batch directory: a number (`stage/<n>` in format 1).
    pub staged: String,
    /// `None` when the path was absent.
    pub old: Option<JournalBlob>,
    pub new: JournalBlob,
}

/// A file removal: only a present file is removed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalRemove {
    pub path: String,
    pub old: JournalBlob,
}

/// A blob id and a git mode: a present file's content as git would record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalBlob {
    #[serde(with = "hex_id")]
    pub blob: ObjectId,
    pub mode: Mode,
}

impl JournalBlob {
    /// The journal form of a file state (`None` for absent).
    pub fn of(state: FileState) -> Option<Self> {
        match state {
            FileState::Absent => None,
            FileState::Present { blob, mode } => Some(JournalBlob { blob, mode }),
        }
    }

    /// The file state a journal entry records.
    pub fn state(this: Option<Self>) -> FileState {
        match this {
            None => FileState::Absent,
            Some(b) => FileState::Present { blob: b.blob, mode: b.mode },
        }
    }
}

/// A file's state as the journal records it: absent, or a blob with a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    Absent,
    Present { blob: ObjectId, mode: Mode },
}

impl FileState {
    /// The blob id, for reports.
    pub fn blob(&self) -> Option<ObjectId> {
        match self {
            FileState::Absent => None,
            FileState::Present { blob, .. } => Some(*blob),
        }
    }
}

/// A git file mode a batch may write; the journal spells it as git does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    #[serde(rename = "100644")]
    Regular,
    #[serde(rename = "100755")]
    Executable,
    #[serde(rename = "120000")]
    Symlink,
}

impl Mode {
    /// Reads git's spelling back; anything else is not a mode a batch may write.
    pub fn from_git(text: &str) -> Option<Self> {
        match text {
            "100644" => Some(Mode::Regular),
            "100755" => Some(Mode::Executable),
            "120000" => Some(Mode::Symlink),
            _ => None,
        }
    }
}

/// Object ids in the journal are hex strings, readable with `cat`.
mod hex_id {
    use gix::ObjectId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        let text = String::deserialize(d)?;
        ObjectId::from_hex(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Ref values in the journal are strings, readable with `cat`: `absent`, a hex id, `ref:<name>`.
impl Serialize for RefValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            RefValue::Absent => s.serialize_str("absent"),
            RefValue::Id(id) => s.collect_str(id),
            RefValue::Symbolic(target) => s.collect_str(&format_args!("ref:{target}")),
        }
    }
}

impl<'de> Deserialize<'de> for RefValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "absent" {
            return Ok(RefValue::Absent);
        }
        if let Some(target) = text.strip_prefix("ref:") {
            return Ok(RefValue::Symbolic(target.to_string()));
        }
        ObjectId::from_hex(text.as_bytes())
            .map(RefValue::Id)
            .map_err(|_| serde::de::Error::custom(format!("bad ref value '{text}'")))
    }
}
