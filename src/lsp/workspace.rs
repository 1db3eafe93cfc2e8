//! The work tree as the changes of one workspace edit see it: each path read from disk once
//! (never through a symlink), then changed in memory in the order given, so that later changes
//! see earlier ones. At the end, what differs from disk becomes the batch's file entries, each
//! expecting what was read.

use super::input::{Change, Op};
use super::position::Encoding;
use super::text;
use super::uri::Roots;
use crate::check::Seen;
use crate::error::{Error, Result};
use crate::parse::{Content, FileEntry, FileExpect};
use crate::paths::{self, Found};
use crate::record::Mode;
use base64::Engine;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::rc::Rc;
use std::time::SystemTime;

/// A file's content and mode; `origin` is the path it was read from, when a rename moved it.
#[derive(Debug, Clone)]
struct File {
    bytes: Rc<Vec<u8>>,
    mode: Mode,
    origin: Option<String>,
}

/// What is at a path.
#[derive(Debug, Clone)]
enum Node {
    Absent,
    File(File),
    /// A directory on disk: its files are reached through [`Workspace::files_under`].
    Directory,
}

/// The work tree, changed in memory.
pub struct Workspace<'a> {
    work_tree: &'a Path,
    hash: gix::hash::Kind,
    roots: Roots,
    encoding: Encoding,
    /// What each path held on disk when first read.
    disk: HashMap<String, Node>,
    /// What each path holds now, after the changes so far.
    now: BTreeMap<String, Node>,
    /// The change that last touched each path, for `failedChange`.
    touched_by: HashMap<String, usize>,
    /// How errors name each change (`documentChanges[2]`).
    labels: Vec<String>,
    /// Directories already found to be real directories (no symlink on the way).
    directories: HashSet<String>,
    /// The `lstat` of each file read from disk, and when it was read.
    stats: HashMap<String, (std::fs::Metadata, SystemTime)>,
}

/// Batch entries, each with the change it comes from.
pub type Entries = Vec<(FileEntry, usize)>;

impl<'a> Workspace<'a> {
    /// An unchanged work tree.
    pub fn new(work_tree: &'a Path, hash: gix::hash::Kind, encoding: Encoding) -> Self {
        Workspace {
            work_tree,
            hash,
            roots: Roots::of(work_tree),
            encoding,
            disk: HashMap::new(),
            now: BTreeMap::new(),
            touched_by: HashMap::new(),
            labels: Vec::new(),
            directories: HashSet::new(),
            stats: HashMap::new(),
        }
    }

    /// Applies every change in order; an error names the change.
    pub fn apply_all(&mut self, changes: &[Change]) -> Result<()> {
        self.labels = changes.iter().map(|c| c.at.clone()).collect();
        for (index, change) in changes.iter().enumerate() {
            self.apply(index, &change.op).map_err(|e| e.at(change.at.clone()))?;
        }
        Ok(())
    }

    fn apply(&mut self, index: usize, op: &Op) -> Result<()> {
        match op {
            Op::Edit { uri, edits, .. } => {
                let path = self.roots.path_of(uri)?;
                self.edit(index, &path, edits)
            }
            Op::Create { uri, overwrite, ignore_if_exists } => {
                let path = self.roots.path_of(uri)?;
                self.create(index, &path, *overwrite, *ignore_if_exists)
            }
            Op::Rename { old, new, overwrite, ignore_if_exists } => {
                let (old, new) = (self.roots.path_of(old)?, self.roots.path_of(new)?);
                self.rename(index, &old, &new, *overwrite, *ignore_if_exists)
            }
            Op::Delete { uri, recursive, ignore_if_not_exists } => {
                let path = self.roots.path_of(uri)?;
                self.delete(index, &path, *recursive, *ignore_if_not_exists)
            }
        }
    }

    fn edit(&mut self, index: usize, path: &str, edits: &[text::TextEdit]) -> Result<()> {
        let file = match self.load(path)? {
            Node::File(file) if file.mode != Mode::Symlink => file,
            Node::File(_) => return Err(Error::invalid(format!("'{path}' is a symbolic link"))),
            Node::Directory => return Err(Error::invalid(format!("'{path}' is a directory"))),
            Node::Absent => {
                return Err(Error::invalid(format!("cannot edit '{path}': no such file"))
                    .hint("an edited file must exist or be created earlier in the same edit"));
            }
        };
        let bytes = text::apply(&file.bytes, edits, self.encoding)?;
        self.set(index, path, Node::File(File { bytes: Rc::new(bytes), ..file }));
        Ok(())
    }

    fn create(&mut self, index: usize, path: &str, overwrite: bool, ignore: bool) -> Result<()> {
        let exists = self.exists(path)?;
        if exists && !overwrite {
            return self.already_exists(path, ignore);
        }
        if exists && self.is_directory(path)? {
            return Err(Error::refused(format!("cannot create '{path}': it is a directory")));
        }
        let empty = File { bytes: Rc::new(Vec::new()), mode: Mode::Regular, origin: None };
        self.set(index, path, Node::File(empty));
        Ok(())
    }

    fn already_exists(&self, path: &str, ignore: bool) -> Result<()> {
        if ignore {
            return Ok(());
        }
        Err(Error::refused(format!("'{path}' already exists"))
            .hint("the operation sets neither 'overwrite' nor 'ignoreIfExists'"))
    }

    fn rename(&mut self, index: usize, old: &str, new: &str, overwrite: bool, ignore: bool) -> Result<()> {
        if !self.exists(old)? {
            return Err(Error::refused(format!("cannot rename '{old}': no such file")));
        }
        if old == new {
            return Ok(());
        }
        if new.starts_with(&format!("{old}/")) {
            return Err(Error::invalid(format!("cannot move '{old}' into itself")));
        }
        if self.exists(new)? {
            if !overwrite {
                return self.already_exists(new, ignore);
            }
            if self.is_directory(new)? {
                return Err(Error::refused(format!("cannot rename onto '{new}': it is a directory")));
            }
        }
        if self.is_directory(old)? {
            for path in self.files_under(old)? {
                let target = format!("{new}{}", &path[old.len()..]);
                self.move_file(index, &path, &target)?;
            }
            return Ok(());
        }
        self.move_file(index, old, new)
    }

    fn move_file(&mut self, index: usize, from: &str, to: &str) -> Result<()> {
        let Node::File(file) = self.load(from)? else { return Ok(()) };
        if self.is_directory(to)? {
            return Err(Error::refused(format!("cannot rename onto '{to}': it is a directory")));
        }
        let origin = file.origin.clone().or_else(|| Some(from.to_string()));
        self.set(index, from, Node::Absent);
        self.set(index, to, Node::File(File { origin, ..file }));
        Ok(())
    }

    fn delete(&mut self, index: usize, path: &str, recursive: bool, ignore: bool) -> Result<()> {
        if !self.exists(path)? {
            if ignore {
                return Ok(());
            }
            return Err(Error::refused(format!("cannot delete '{path}': no such file"))
                .hint("the operation does not set 'ignoreIfNotExists'"));
        }
        if !self.is_directory(path)? {
            self.set(index, path, Node::Absent);
            return Ok(());
        }
        let files = self.files_under(path)?;
        if !recursive && !files.is_empty() {
            return Err(Error::refused(format!("cannot delete the directory '{path}' without 'recursive'")));
        }
        for file in files {
            self.set(index, &file, Node::Absent);
        }
        Ok(())
    }

    fn set(&mut self, index: usize, path: &str, node: Node) {
        self.now.insert(path.to_string(), node);
        self.touched_by.insert(path.to_string(), index);
    }

    /// What is at `path` now, read from disk the first time.
    fn load(&mut self, path: &str) -> Result<Node> {
        if let Some(node) = self.now.get(path) {
            return Ok(node.clone());
        }
        if let Some((parent, _)) = path.rsplit_once('/')
            && !self.directories.contains(parent)
        {
            match paths::inspect(self.work_tree, parent, self.hash)? {
                Found::Directory => self.directories.insert(parent.to_string()),
                Found::Absent => return self.loaded(path, Node::Absent),
                _ => return Err(Error::refused(format!("'{parent}' is not a directory"))),
            };
        }
        let (node, stat) = read_leaf(self.work_tree, path)?;
        if let Some(stat) = stat {
            self.stats.insert(path.to_string(), stat);
        }
        self.loaded(path, node)
    }

    fn loaded(&mut self, path: &str, node: Node) -> Result<Node> {
        self.disk.insert(path.to_string(), node.clone());
        self.now.insert(path.to_string(), node.clone());
        Ok(node)
    }

    fn exists(&mut self, path: &str) -> Result<bool> {
        Ok(!matches!(self.load(path)?, Node::Absent) || self.has_files_under(path))
    }

    fn is_directory(&mut self, path: &str) -> Result<bool> {
        Ok(matches!(self.load(path)?, Node::Directory) || self.has_files_under(path))
    }

    /// Whether files were created or moved under `path` by earlier changes.
    fn has_files_under(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.now
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .any(|(_, n)| matches!(n, Node::File(_)))
    }

    /// Every file below the directory `path` now: those on disk, and those changes put there.
    fn files_under(&mut self, path: &str) -> Result<Vec<String>> {
        let mut found = Vec::new();
        if matches!(self.disk.get(path), Some(Node::Directory)) {
            walk(self.work_tree, path, &mut found)?;
        }
        let prefix = format!("{path}/");
        found.extend(
            self.now
                .range(prefix.clone()..)
                .take_while(|(p, _)| p.starts_with(&prefix))
                .map(|(p, _)| p.clone()),
        );
        found.sort();
        found.dedup();
        let mut files = Vec::new();
        for file in found {
            paths::check_syntax(&file)?;
            if matches!(self.load(&file)?, Node::File(_)) {
                files.push(file);
            }
        }
        Ok(files)
    }

    /// The batch entries that take the work tree from what was read to what is now, and what
    /// was read of the files they expect.
    pub fn into_entries(self) -> Result<(Entries, Seen)> {
        let mut entries = Vec::new();
        let mut moved: HashMap<&str, &str> = HashMap::new();
        for (path, node) in &self.now {
            if let Node::File(File { origin: Some(origin), .. }) = node
                && self.is_plain_move(origin, path, node)
            {
                moved.insert(origin.as_str(), path.as_str());
            }
        }
        for (path, node) in &self.now {
            let disk = self.disk.get(path).unwrap_or(&Node::Absent);
            let by = self.touched_by.get(path).copied().unwrap_or(0);
            if let Some(to) = moved.get(path.as_str()) {
                let expect = Some(FileExpect::Blob(self.blob(disk)?));
                let by = by.max(self.touched_by.get(*to).copied().unwrap_or(0));
                entries.push((FileEntry::Rename { path: path.clone(), to: to.to_string(), expect }, by));
                continue;
            }
            if moved.values().any(|to| to == path) {
                continue;
            }
            if let Some(entry) = self
                .entry(path, disk, node)
                .map_err(|e| e.at(self.labels.get(by).cloned().unwrap_or_default()))?
            {
                entries.push((entry, by));
            }
        }
        let seen = self.seen(&entries);
        Ok((entries, seen))
    }

    /// The `lstat` and blob of each file an entry expects as read, so that the check does not
    /// read it again while it is unchanged.
    fn seen(&self, entries: &Entries) -> Seen {
        let mut seen = Seen::default();
        for (entry, _) in entries {
            let expect = match entry {
                FileEntry::Write { expect, .. }
                | FileEntry::Delete { expect, .. }
                | FileEntry::Rename { expect, .. } => expect,
            };
            let path = entry.path();
            if let (Some(FileExpect::Blob(hex)), Some(Node::File(file)), Some((meta, read_at))) =
                (expect, self.disk.get(path), self.stats.get(path))
                && let Ok(blob) = gix::ObjectId::from_hex(hex.as_bytes())
            {
                seen.note(path, meta, *read_at, blob, file.mode);
            }
        }
        seen
    }

    /// A file that only moved: same bytes and mode, to a path that was absent, from one now absent.
    fn is_plain_move(&self, origin: &str, path: &str, node: &Node) -> bool {
        let (Some(Node::File(read)), Node::File(now)) = (self.disk.get(origin), node) else { return false };
        matches!(self.disk.get(path), None | Some(Node::Absent))
            && matches!(self.now.get(origin), Some(Node::Absent))
            && read.mode == now.mode
            && read.bytes == now.bytes
    }

    fn entry(&self, path: &str, disk: &Node, now: &Node) -> Result<Option<FileEntry>> {
        let path = path.to_string();
        match (disk, now) {
            (Node::Absent, Node::Absent) | (Node::Directory, _) | (_, Node::Directory) => Ok(None),
            (Node::File(read), Node::File(file)) if read.bytes == file.bytes && read.mode == file.mode => {
                Ok(None)
            }
            (Node::File(_), Node::Absent) => {
                Ok(Some(FileEntry::Delete { path, expect: Some(FileExpect::Blob(self.blob(disk)?)) }))
            }
            (_, Node::File(file)) => {
                let (expect, kept) = match disk {
                    Node::File(read) => (FileExpect::Blob(self.blob(disk)?), read.mode),
                    _ => (FileExpect::Absent, Mode::Regular),
                };
                let mode = (file.mode != kept).then_some(file.mode);
                Ok(Some(FileEntry::Write { path, content: content(&file.bytes), mode, expect: Some(expect) }))
            }
        }
    }

    fn blob(&self, node: &Node) -> Result<String> {
        match node {
            Node::File(file) => Ok(paths::blob_id(self.hash, &file.bytes)?.to_string()),
            _ => Ok("absent".into()),
        }
    }
}

/// Inline text when the bytes are UTF-8, else base64.
fn content(bytes: &[u8]) -> Content {
    match std::str::from_utf8(bytes) {
        Ok(text) => Content::Text(text.to_string()),
        Err(_) => Content::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

/// What the disk holds at `path` (whose parents are real directories), never following a symlink;
/// for a file also its `lstat`, taken before the read, and the time it was taken.
fn read_leaf(work_tree: &Path, path: &str) -> Result<(Node, Option<(std::fs::Metadata, SystemTime)>)> {
    let full = paths::on_disk(work_tree, path);
    let read_at = SystemTime::now();
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Node::Absent, None)),
        Err(e) => return Err(Error::fatal(format!("cannot inspect '{path}': {e}"))),
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        return Ok((Node::Directory, None));
    }
    let (bytes, mode) = if kind.is_symlink() {
        let target =
            std::fs::read_link(&full).map_err(|e| Error::fatal(format!("cannot read link '{path}': {e}")))?;
        (std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec(), Mode::Symlink)
    } else if kind.is_file() {
        let mode = if meta.permissions().mode() & 0o111 != 0 { Mode::Executable } else { Mode::Regular };
        (read_no_follow(&full).map_err(|e| Error::refused(format!("cannot read '{path}': {e}")))?, mode)
    } else {
        return Err(Error::refused(format!("'{path}' is not a regular file")));
    };
    Ok((Node::File(File { bytes: Rc::new(bytes), mode, origin: None }), Some((meta, read_at))))
}

/// Reads a file, refusing a symlink put there since it was looked at.
fn read_no_follow(full: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(full)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Every file and symlink below the directory `path` on disk, without following symlinks.
fn walk(work_tree: &Path, path: &str, out: &mut Vec<String>) -> Result<()> {
    let full = paths::on_disk(work_tree, path);
    let entries = std::fs::read_dir(&full).map_err(|e| Error::fatal(format!("cannot list '{path}': {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::fatal(format!("cannot list '{path}': {e}")))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(Error::invalid(format!("'{path}' holds a file whose name is not UTF-8")));
        };
        let child = format!("{path}/{name}");
        let kind = entry.file_type().map_err(|e| Error::fatal(format!("cannot inspect '{child}': {e}")))?;
        if kind.is_dir() {
            walk(work_tree, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}
