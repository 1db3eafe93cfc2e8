//! Stages 4 and 5: names and hashes every new file content ([`plan`]), journals the plan
//! ([`journal()`]), then, once that journal is durable and git is taking its ref locks, writes the
//! contents beside it (`atomic/batches/<id>/<n>`) with their final modes ([`write_contents`]).
//! Nothing in the work tree or in git changes here.

use crate::check::{Checked, Put, PutSource};
use crate::dirs::{Dirs, Leaf};
use crate::durable::Barrier;
use crate::error::{Error, IoContext, Result};
use crate::journal;
use crate::paths;
use crate::record::{FileState, JournalBlob, JournalPut, LogInfo, Mode, Record};
use crate::state::{BatchDir, StateDir};
use crate::validate::NewContent;
use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// A checked batch whose new contents are named and hashed, and not written yet.
#[derive(Debug)]
#[must_use = "a planned batch must be journaled"]
pub struct Planned {
    pub checked: Checked,
    pub batch_dir: BatchDir,
    /// Each put of `checked`, in order, as the journal records it: a staged name and a blob id.
    pub puts: Vec<JournalPut>,
}

/// A planned batch whose journal is durable: recovery can now undo or finish it.
#[must_use = "a journaled batch must be prepared or rolled back"]
pub struct Journaled {
    pub planned: Planned,
    pub record: Record,
}

/// Proof that every new content is written and durable: the commit record may then be written.
#[derive(Debug)]
#[must_use = "staged contents must be committed or rolled back"]
pub struct ContentsStaged(());

/// Names and hashes the new contents of `checked` (reading, writing nothing); the blob ids fill in
/// the report, so that a dry run reports what an apply would write.
pub fn plan(checked: Checked, state_dir: &StateDir, repo: &gix::Repository) -> Result<Planned> {
    let batch_dir = state_dir.batch(&checked.batch.id);
    let mut puts = Vec::with_capacity(checked.puts.len());
    let dirs = checked.work_tree.as_deref().map(Dirs::new);
    for (n, put) in checked.puts.iter().enumerate() {
        let blob = planned_blob(put, dirs.as_ref(), repo)?;
        puts.push(JournalPut {
            path: put.path.clone(),
            staged: n.to_string(),
            old: JournalBlob::of(put.old),
            new: JournalBlob { blob, mode: put.mode },
        });
    }
    let mut checked = checked;
    for (i, staged) in puts.iter().enumerate() {
        if let Some(line) = checked.puts[i].report {
            checked.files_report[line].new = Some(staged.new.blob);
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

/// Stage 5: creates the batch directory and writes the journal of `planned` (see
/// [`journal::write`]): from here on recovery can undo or finish the batch. The ref changes move
/// from the batch into the record.
pub fn journal(
    mut planned: Planned,
    git_dir: &Path,
    log: LogInfo,
    barrier: &mut Barrier,
) -> Result<Journaled> {
    planned.batch_dir.create(barrier)?;
    let record = record_of(&mut planned, git_dir, log);
    journal::write(&record, &planned.batch_dir.journal(), barrier)?;
    Ok(Journaled { planned, record })
}

/// The record of a planned batch; the ref changes move from the batch into it.
fn record_of(planned: &mut Planned, git_dir: &Path, log: LogInfo) -> Record {
    let refs = std::mem::take(&mut planned.checked.batch.refs);
    let checked = &planned.checked;
    Record {
        id: checked.batch.id.clone(),
        message: checked.batch.message.clone(),
        git_dir: git_dir.to_path_buf(),
        work_tree: checked.work_tree.clone(),
        refs,
        puts: planned.puts.clone(),
        removes: checked.removes.clone(),
        log: Box::new(log),
    }
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
        if reread && paths::blob_id(repo.object_hash(), &bytes)? != staged.new.blob {
            return Err(Error::refused(format!(
                "the content for '{}' changed while the batch was being applied",
                put.path
            )));
        }
        let file = planned.batch_dir.staged(&staged.staged);
        let permissions = permissions_for(put, dirs.as_ref(), default_permissions);
        write_staged(&file, &bytes, put.mode, permissions, mask)?;
        barrier.add(&file);
    }
    barrier.add(planned.batch_dir.path());
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
