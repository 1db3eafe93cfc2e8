//! Stage 3 (under our lock): looks at the work tree, checks every file precondition, and turns
//! the file entries into primitive operations (put a file, remove a file) with the state each
//! path is in now. The work tree is only read; [`Checked::recheck`] proves it did not move later.

use crate::dirs::Dirs;
use crate::error::{Error, Result};
use crate::paths::Found;
use crate::record::{FileState, JournalBlob, JournalRemove, Mode};
use crate::validate::{Batch, Expect, FileAction, FileChange, NewContent};
use gix::ObjectId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    /// Files to remove (and the directories that leaves empty), as the journal records them.
    pub removes: Vec<JournalRemove>,
    pub files_report: Vec<FileReport>,
    /// What `lstat` said of every touched path, to notice a change before the commit point.
    snapshots: Vec<(String, Option<StatKey>)>,
    /// Files the batch's reader saw, taken as seen while their `lstat` is unchanged.
    seen: Seen,
}

/// What a reader of the batch (the `--lsp` conversion) saw of work-tree files: each one's
/// `lstat` and blob, so that [`check`] does not read a file again while its `lstat` is unchanged
/// (as git's index trusts its cached stat data). [`Checked::recheck`] still proves, under git's
/// locks, that nothing changed since.
#[derive(Debug, Clone, Default)]
pub struct Seen(HashMap<String, (StatKey, Found)>);

/// How much older than the read a file's ctime must be for its `lstat` to vouch for its content.
/// A change after the read gives a later ctime, unless it falls in the same tick of the file
/// system's clock (the kernel's coarse clock: at most 10 ms; git calls such entries "racily
/// clean"): a file changed that recently, or on a file system with whole-second times, is read
/// again.
const SEEN_MIN_AGE: Duration = Duration::from_millis(50);

impl Seen {
    /// Notes that the regular file at `path`, with `lstat` `meta` taken no earlier than
    /// `read_at`, held `blob` in `mode` when read; a file changed too recently is not noted.
    pub fn note(
        &mut self,
        path: &str,
        meta: &std::fs::Metadata,
        read_at: SystemTime,
        blob: ObjectId,
        mode: Mode,
    ) {
        use std::os::unix::fs::MetadataExt;
        let key = StatKey {
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        };
        let Ok(since_epoch) = read_at.duration_since(SystemTime::UNIX_EPOCH) else { return };
        let Some(limit) = since_epoch.checked_sub(SEEN_MIN_AGE) else { return };
        let before_limit =
            (key.ctime.0, key.ctime.1) < (limit.as_secs() as i64, i64::from(limit.subsec_nanos()));
        let old_enough = key.ctime.1 != 0 && before_limit;
        if meta.is_file() && mode != Mode::Symlink && old_enough {
            self.0.insert(path.to_string(), (key, Found::File { blob, mode }));
        }
    }

    /// What was seen at `path`, when its `lstat` is still `now`.
    fn unchanged(&self, path: &str, now: Option<&StatKey>) -> Option<Found> {
        let (key, found) = self.0.get(path)?;
        (Some(key) == now).then(|| found.clone())
    }
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

/// `lstat` of a work-tree path through directory handles ([`Dirs`]): a parent that is not a real
/// directory is `ENOTDIR`, never followed.
fn stat_key(dirs: &Dirs, path: &str) -> std::io::Result<Option<StatKey>> {
    Ok(dirs.lstat(path)?.map(|m| StatKey {
        dev: m.st_dev,
        ino: m.st_ino,
        mode: m.st_mode,
        size: m.st_size as u64,
        mtime: (m.st_mtime, m.st_mtime_nsec),
        ctime: (m.st_ctime, m.st_ctime_nsec),
    }))
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
    mut batch: Batch,
    work_tree: Option<&Path>,
    hash: gix::hash::Kind,
) -> Result<(Checked, Vec<Error>)> {
    let seen = std::mem::take(&mut batch.seen);
    let mut checked = Checked {
        batch,
        work_tree: work_tree.map(Path::to_path_buf),
        puts: Vec::new(),
        removes: Vec::new(),
        files_report: Vec::new(),
        snapshots: Vec::new(),
        seen,
    };
    let Some(work_tree) = work_tree else {
        return Ok((checked, Vec::new()));
    };
    let files = std::mem::take(&mut checked.batch.files);
    let dirs = Dirs::new(work_tree);
    let mut refusals = Vec::new();
    for change in &files {
        match checked.add(change, &dirs, hash).map_err(|e| e.at(change.label())) {
            Err(e) if e.kind == crate::error::Kind::Refused => refusals.push(e),
            other => other?,
        }
    }
    checked.batch.files = files;
    Ok((checked, refusals))
}

impl Checked {
    fn add(&mut self, change: &FileChange, dirs: &Dirs, hash: gix::hash::Kind) -> Result<()> {
        let found = self.observe(dirs, &change.path, hash)?;
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
                if let Some(old) = JournalBlob::of(old) {
                    self.removes.push(JournalRemove { path: change.path.clone(), old });
                }
                self.report(&change.path, "delete", None, old.blob(), None);
            }
            FileAction::Rename { to } => {
                let FileState::Present { blob, mode } = old else {
                    return Err(Error::refused("cannot rename: the file does not exist"));
                };
                let target = self.observe(dirs, to, hash)?;
                if target != Found::Absent {
                    return Err(Error::refused(format!("cannot rename: '{to}' already exists")));
                }
                let source = PutSource::WorkTree { path: change.path.clone(), blob };
                self.puts.push(Put { path: to.clone(), old: FileState::Absent, mode, source, report: None });
                self.removes
                    .push(JournalRemove { path: change.path.clone(), old: JournalBlob { blob, mode } });
                self.report(&change.path, "rename", Some(to.clone()), Some(blob), Some(blob));
            }
        }
        Ok(())
    }

    /// What is at `path`, and its `lstat` for [`Checked::recheck`]. A parent that is not a real
    /// directory is refused: nothing is read or written through it.
    fn observe(&mut self, dirs: &Dirs, path: &str, hash: gix::hash::Kind) -> Result<Found> {
        let before = match stat_key(dirs, path) {
            Ok(key) => key,
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => None, // refused just below
            Err(e) => return Err(Error::fatal(format!("cannot inspect '{path}': {e}"))),
        };
        let found = match self.seen.unchanged(path, before.as_ref()) {
            Some(found) => found,
            None => dirs.inspect(path, hash)?.map_err(|parent| not_a_directory(dirs, &parent))?,
        };
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

    /// The inode, size and mtime of every touched path at the check, for history.rs to know a
    /// moved old file as the one checked without reading it again.
    pub fn identities(&self) -> crate::history::Identities {
        let key = |k: &StatKey| (k.ino, k.size as i64, k.mtime);
        self.snapshots.iter().filter_map(|(p, k)| k.as_ref().map(|k| (p.clone(), key(k)))).collect()
    }

    /// Proves that no touched path changed since [`check`] (called with git's ref locks held,
    /// just before the commit point); a change refuses the batch.
    pub fn recheck(&self) -> Result<()> {
        let Some(work_tree) = &self.work_tree else {
            return Ok(());
        };
        // Fresh handles: a directory swapped since the check must be seen, not its old handle.
        let dirs = Dirs::new(work_tree);
        for (path, before) in &self.snapshots {
            let now = match stat_key(&dirs, path) {
                Ok(now) => Some(now),
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => None,
                Err(e) => return Err(Error::fatal(format!("cannot inspect '{path}': {e}"))),
            };
            if now.as_ref() != Some(before) {
                return Err(Error::refused(format!("'{path}' changed while the batch was being applied"))
                    .hint("nothing was changed; run the batch again"));
            }
        }
        Ok(())
    }
}

/// The refusal for a path through `parent`, which is a symlink or a file.
fn not_a_directory(dirs: &Dirs, parent: &str) -> Error {
    match dirs.lstat(parent) {
        Ok(Some(m)) if m.st_mode & libc::S_IFMT == libc::S_IFLNK => {
            Error::refused(format!("'{parent}' is a symbolic link"))
                .hint("a batch never writes through a symlink")
        }
        _ => Error::refused(format!("'{parent}' is not a directory")),
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
