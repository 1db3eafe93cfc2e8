//! Stage 3 (under our lock): looks at the work tree, checks every file precondition, and turns
//! the file entries into primitive operations (put a file, remove a file) with the state each
//! path is in now. The work tree is only read; [`Checked::recheck`] proves it did not move later.

use crate::error::{Error, Result};
use crate::parse::Mode;
use crate::paths::{self, Found};
use crate::validate::{Batch, Expect, FileAction, FileChange, NewContent};
use gix::ObjectId;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// Where a put's new content comes from.
#[derive(Debug, Clone)]
pub enum PutSource {
    Content(NewContent),
    /// A rename's source path in the work tree, whose content must still be `blob`.
    WorkTree {
        path: String,
        blob: ObjectId,
    },
}

/// Put new content at a path (creating parent directories).
#[derive(Debug, Clone)]
pub struct Put {
    pub path: String,
    pub old: FileState,
    pub mode: Mode,
    pub source: PutSource,
    /// The line of `files_report` whose `new` blob staging fills in.
    pub report: Option<usize>,
}

/// Remove the file at a path (and the directories that leaves empty).
#[derive(Debug, Clone)]
pub struct Remove {
    pub path: String,
    pub old: FileState,
}

/// One line of the `files` report of `--json`.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: String,
    pub action: &'static str,
    pub to: Option<String>,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

/// A batch whose file preconditions held when checked, with its file changes as primitives.
#[derive(Debug)]
pub struct Checked {
    pub batch: Batch,
    pub work_tree: Option<PathBuf>,
    pub puts: Vec<Put>,
    pub removes: Vec<Remove>,
    pub files_report: Vec<FileReport>,
    /// What `lstat` said of every touched path, to notice a change before the commit point.
    snapshots: Vec<(String, Option<StatKey>)>,
}

/// The parts of `lstat` that change whenever a file's content, mode or identity does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatKey {
    dev: u64,
    ino: u64,
    mode: u32,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stat_key(path: &Path) -> Result<Option<StatKey>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(StatKey {
            dev: m.dev(),
            ino: m.ino(),
            mode: m.mode(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })),
        // A parent that is a file (ENOTDIR) means nothing is there; `inspect` refuses it.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            Ok(None)
        }
        Err(e) => Err(Error::fatal(format!("cannot inspect '{}': {e}", path.display()))),
    }
}

/// Checks the work tree against the batch's file entries; the first failed precondition refuses.
pub fn check(batch: Batch, work_tree: Option<&Path>, hash: gix::hash::Kind) -> Result<Checked> {
    let (checked, refusals) = check_all(batch, work_tree, hash)?;
    match refusals.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(checked),
    }
}

/// Like [`check`], but goes on past a failed precondition and returns every one (refusals, in
/// entry order), so that `--dry-run` can list them all. Any other error ends the check.
pub fn check_all(
    batch: Batch,
    work_tree: Option<&Path>,
    hash: gix::hash::Kind,
) -> Result<(Checked, Vec<Error>)> {
    let mut checked = Checked {
        batch,
        work_tree: work_tree.map(Path::to_path_buf),
        puts: Vec::new(),
        removes: Vec::new(),
        files_report: Vec::new(),
        snapshots: Vec::new(),
    };
    let Some(work_tree) = work_tree else {
        return Ok((checked, Vec::new()));
    };
    let files = std::mem::take(&mut checked.batch.files);
    let mut refusals = Vec::new();
    for change in &files {
        match checked.add(change, work_tree, hash).map_err(|e| e.at(change.label())) {
            Err(e) if e.kind == crate::error::Kind::Refused => refusals.push(e),
            other => other?,
        }
    }
    checked.batch.files = files;
    Ok((checked, refusals))
}

impl Checked {
    fn add(&mut self, change: &FileChange, work_tree: &Path, hash: gix::hash::Kind) -> Result<()> {
        let found = self.observe(work_tree, &change.path, hash)?;
        check_expect(change.expect.as_ref(), &found).map_err(|e| {
            e.hint(format!(
                "see its blob id with 'git hash-object --no-filters {}'; if the change still holds, \
                 update 'expect:' and apply the batch again",
                change.path
            ))
        })?;
        let old = file_state(&found, &change.path)?;
        match &change.action {
            FileAction::Write { content, mode } => {
                let mode = mode.unwrap_or(match old {
                    FileState::Present { mode, .. } => mode,
                    FileState::Absent => Mode::Regular,
                });
                let report = Some(self.files_report.len());
                self.report(&change.path, "write", None, old.blob(), None);
                self.puts.push(Put {
                    path: change.path.clone(),
                    old,
                    mode,
                    source: PutSource::Content(content.clone()),
                    report,
                });
            }
            FileAction::Delete => {
                if old != FileState::Absent {
                    self.removes.push(Remove { path: change.path.clone(), old });
                }
                self.report(&change.path, "delete", None, old.blob(), None);
            }
            FileAction::Rename { to } => {
                let FileState::Present { blob, mode } = old else {
                    return Err(Error::refused("cannot rename: the file does not exist"));
                };
                let target = self.observe(work_tree, to, hash)?;
                if target != Found::Absent {
                    return Err(Error::refused(format!("cannot rename: '{to}' already exists")));
                }
                let source = PutSource::WorkTree { path: change.path.clone(), blob };
                self.puts.push(Put { path: to.clone(), old: FileState::Absent, mode, source, report: None });
                self.removes.push(Remove { path: change.path.clone(), old });
                self.report(&change.path, "rename", Some(to.clone()), Some(blob), Some(blob));
            }
        }
        Ok(())
    }

    fn observe(&mut self, work_tree: &Path, path: &str, hash: gix::hash::Kind) -> Result<Found> {
        let full = paths::on_disk(work_tree, path);
        let before = stat_key(&full)?;
        let found = paths::inspect(work_tree, path, hash)?;
        self.snapshots.push((path.to_string(), before));
        Ok(found)
    }

    fn report(
        &mut self,
        path: &str,
        action: &'static str,
        to: Option<String>,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
    ) {
        self.files_report.push(FileReport { path: path.to_string(), action, to, old, new });
    }

    /// Proves that no touched path changed since [`check`] (called with git's ref locks held,
    /// just before the commit point); a change refuses the batch.
    pub fn recheck(&self) -> Result<()> {
        let Some(work_tree) = &self.work_tree else {
            return Ok(());
        };
        for (path, before) in &self.snapshots {
            if &stat_key(&paths::on_disk(work_tree, path))? != before {
                return Err(Error::refused(format!("'{path}' changed while the batch was being applied"))
                    .hint("nothing was changed; run the batch again"));
            }
        }
        Ok(())
    }
}

fn file_state(found: &Found, path: &str) -> Result<FileState> {
    match found {
        Found::Absent => Ok(FileState::Absent),
        Found::File { blob, mode } => Ok(FileState::Present { blob: *blob, mode: *mode }),
        Found::Directory => Err(Error::refused(format!("'{path}' is a directory"))),
        Found::Special => Err(Error::refused(format!("'{path}' is not a regular file or symlink"))),
    }
}

fn check_expect(expect: Option<&Expect>, found: &Found) -> Result<()> {
    let Some(expect) = expect else { return Ok(()) };
    let holds = match (expect, found) {
        (Expect::Absent, Found::Absent) => true,
        (Expect::Present, Found::File { .. }) => true,
        (Expect::Blob(want), Found::File { blob, .. }) => want == blob,
        _ => false,
    };
    if holds {
        return Ok(());
    }
    let now = match found {
        Found::Absent => "does not exist".to_string(),
        Found::File { blob, .. } => format!("has blob {blob}"),
        Found::Directory => "is a directory".to_string(),
        Found::Special => "is a special file".to_string(),
    };
    let wanted = match expect {
        Expect::Absent => "absent".to_string(),
        Expect::Present => "present".to_string(),
        Expect::Blob(b) => b.to_string(),
    };
    Err(Error::refused(format!("file {now}, but the batch expects {wanted}")))
}
