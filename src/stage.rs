//! Stage 4: names and hashes every new file content ([`plan`]), then, once the journal holding
//! those names and ids is durable and git is taking its ref locks, writes the contents beside the
//! journal (`<common dir>/atomic/batches/<id>/<n>`) with their final modes ([`write_contents`]).
//! Nothing in the work tree or in git changes here.

use crate::check::{Checked, FileState, Put, PutSource};
use crate::dirs::{Dirs, Leaf};
use crate::durable::Barrier;
use crate::error::{Error, IoContext, Result};
use crate::parse::Mode;
use crate::paths;
use crate::validate::NewContent;
use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A put whose new content has a name in the batch directory and a blob id.
#[derive(Debug, Clone)]
pub struct StagedPut {
    pub path: String,
    pub old: FileState,
    pub new: FileState,
    /// File name inside the batch directory.
    pub staged: String,
}

/// A checked batch whose new contents are named and hashed, and not written yet.
#[derive(Debug)]
#[must_use = "a planned batch must be journaled"]
pub struct Planned {
    pub checked: Checked,
    pub batch_dir: PathBuf,
    pub puts: Vec<StagedPut>,
}

/// Proof that every new content is written and durable: the commit record may then be written.
#[derive(Debug)]
#[must_use = "staged contents must be committed or rolled back"]
pub struct ContentsStaged(());

/// The directory of one batch: its journal and its staged files.
pub fn batch_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("batches").join(id)
}

/// Names and hashes the new contents of `checked` (reading, writing nothing); the blob ids fill in
/// the report, so that a dry run reports what an apply would write.
pub fn plan(checked: Checked, state_dir: &Path, repo: &gix::Repository) -> Result<Planned> {
    let batch_dir = batch_dir(state_dir, &checked.batch.id);
    let mut puts = Vec::with_capacity(checked.puts.len());
    let dirs = checked.work_tree.as_deref().map(Dirs::new);
    for (n, put) in checked.puts.iter().enumerate() {
        let blob = planned_blob(put, dirs.as_ref(), repo)?;
        puts.push(StagedPut {
            path: put.path.clone(),
            old: put.old,
            new: FileState::Present { blob, mode: put.mode },
            staged: n.to_string(),
        });
    }
    let mut checked = checked;
    for (i, staged) in puts.iter().enumerate() {
        if let Some(line) = checked.puts[i].report {
            checked.files_report[line].new = staged.new.blob();
        }
    }
    Ok(Planned { checked, batch_dir, puts })
}

/// The blob id a put will write. A blob or a rename's source has its id already (a symlink's is
/// read all the same, to check its target); inline content and source files are hashed.
fn planned_blob(put: &Put, dirs: Option<&Dirs>, repo: &gix::Repository) -> Result<gix::ObjectId> {
    match &put.source {
        PutSource::Content(NewContent::Blob(id)) if put.mode != Mode::Symlink => Ok(*id),
        PutSource::WorkTree { blob, .. } if put.mode != Mode::Symlink => Ok(*blob),
        _ => paths::blob_id(repo.object_hash(), &content_of(put, dirs, repo)?),
    }
}

/// Creates the batch directory for its journal, adding to the barrier every directory entry
/// that is new (on the repository's first batch, `atomic/` and `batches/` too).
pub fn create_batch_dir(batch_dir: &Path, barrier: &mut Barrier) -> Result<()> {
    let batches = batch_dir.parent().expect("a batch directory is under batches/");
    let state_dir = batches.parent().expect("batches/ is under the state directory");
    if !batches.is_dir() {
        barrier.add(state_dir);
        if let Some(common_dir) = state_dir.parent() {
            barrier.add(common_dir);
        }
    }
    std::fs::create_dir_all(batch_dir).io_context(|| format!("cannot create '{}'", batch_dir.display()))?;
    barrier.add(batches);
    barrier.add(batch_dir);
    Ok(())
}

/// Writes every planned content into the batch directory and makes them durable (one barrier).
/// A content that no longer hashes to its planned id (a source file or blob that changed, a
/// renamed file edited meanwhile) is refused, and nothing is committed.
pub fn write_contents(
    planned: &Planned,
    repo: &gix::Repository,
    barrier: &mut Barrier,
) -> Result<ContentsStaged> {
    let checked = &planned.checked;
    let mask = umask();
    let default_permissions = |executable: bool| (if executable { 0o777 } else { 0o666 }) & !mask;
    let dirs = checked.work_tree.as_deref().map(Dirs::new);
    for (put, staged) in checked.puts.iter().zip(&planned.puts) {
        let bytes = content_of(put, dirs.as_ref(), repo)?;
        // Inline content is the very bytes hashed; a rename's source is checked as it is read.
        let reread = matches!(put.source, PutSource::Content(NewContent::Blob(_) | NewContent::Source(_)));
        if reread && Some(paths::blob_id(repo.object_hash(), &bytes)?) != staged.new.blob() {
            return Err(Error::refused(format!(
                "the content for '{}' changed while the batch was being applied",
                put.path
            )));
        }
        let file = planned.batch_dir.join(&staged.staged);
        let permissions = permissions_for(put, dirs.as_ref(), default_permissions);
        write_staged(&file, &bytes, put.mode, permissions, mask)?;
        barrier.add(&file);
    }
    barrier.add(&planned.batch_dir);
    crate::crash::fail("staging")?;
    barrier.flush()?;
    Ok(ContentsStaged(()))
}

/// The bytes a put writes (a symlink's target, for mode 120000). A rename's source is read
/// through directory handles ([`Dirs`]), never through a symlinked parent.
fn content_of<'a>(put: &'a Put, dirs: Option<&Dirs>, repo: &gix::Repository) -> Result<Cow<'a, [u8]>> {
    let bytes = match &put.source {
        PutSource::Content(NewContent::Bytes(bytes)) => Cow::Borrowed(bytes.as_slice()),
        PutSource::Content(NewContent::Blob(id)) => Cow::Owned(
            repo.find_blob(*id)
                .map_err(|e| Error::fatal(format!("cannot read blob {id}: {e}")))?
                .data
                .clone(),
        ),
        PutSource::Content(NewContent::Source(path)) => Cow::Owned(
            std::fs::read(path)
                .map_err(|e| Error::invalid(format!("cannot read source '{}': {e}", path.display())))?,
        ),
        PutSource::WorkTree { path, blob } => {
            let dirs = dirs.expect("renames exist only with a work tree");
            let changed = || Error::refused(format!("'{path}' changed while the batch was being applied"));
            let bytes = match dirs.read(path) {
                Ok(Leaf::Symlink(bytes) | Leaf::File { bytes, .. }) => bytes,
                Ok(_) => return Err(changed()),
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Err(changed()),
                Err(e) => return Err(Error::fatal(format!("cannot read '{path}': {e}"))),
            };
            if paths::blob_id(repo.object_hash(), &bytes)? != *blob {
                return Err(changed());
            }
            Cow::Owned(bytes)
        }
    };
    if put.mode == Mode::Symlink && (bytes.is_empty() || bytes.contains(&0)) {
        return Err(Error::invalid(format!(
            "'{}': a symlink's target must be non-empty and without NUL",
            put.path
        )));
    }
    Ok(bytes)
}

/// Writes one staged file or symlink with its final permissions: given at creation when the
/// umask (`mask`) keeps them whole, as it does for every new file; otherwise (a replaced file
/// keeping bits the umask would strip) the file is private until a `chmod` once it is written.
fn write_staged(file: &Path, bytes: &[u8], mode: Mode, permissions: u32, mask: u32) -> Result<()> {
    if mode == Mode::Symlink {
        let target = std::ffi::OsStr::from_bytes(bytes);
        return std::os::unix::fs::symlink(target, file)
            .io_context(|| format!("cannot stage '{}'", file.display()));
    }
    let at_creation = permissions & mask == 0;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if at_creation { permissions } else { 0o600 })
        .open(file)
        .io_context(|| format!("cannot stage '{}'", file.display()))?;
    f.write_all(bytes).io_context(|| format!("cannot write '{}'", file.display()))?;
    if at_creation {
        return Ok(());
    }
    f.set_permissions(std::fs::Permissions::from_mode(permissions))
        .io_context(|| format!("cannot chmod '{}'", file.display()))
}

/// The permission bits a written file gets: a replaced file keeps its own (a 0600 secret stays
/// 0600), adding or dropping only the execute bits its git mode asks for; a new file gets what
/// git's checkout would give it under the umask.
fn permissions_for(put: &Put, dirs: Option<&Dirs>, default: impl Fn(bool) -> u32) -> u32 {
    let executable = put.mode == Mode::Executable;
    let existing = match (put.old, dirs) {
        (FileState::Present { mode: Mode::Regular | Mode::Executable, .. }, Some(dirs)) => {
            dirs.lstat(&put.path).ok().flatten().filter(|m| m.st_mode & libc::S_IFMT == libc::S_IFREG)
        }
        _ => None,
    };
    let Some(meta) = existing else { return default(executable) };
    let old = meta.st_mode & 0o7777;
    match executable {
        true if old & 0o111 != 0 => old,
        true => old | ((old & 0o444) >> 2),
        false => old & !0o111,
    }
}

/// The process umask (read by setting it and putting it back; nothing else runs meanwhile).
fn umask() -> u32 {
    // SAFETY: umask(2) only swaps an integer in the process; it cannot fail.
    let mask = unsafe { libc::umask(0o022) };
    // SAFETY: as above, restoring the value just read.
    unsafe { libc::umask(mask) };
    mask as u32
}
