//! Stage 4: writes every new file content into the batch's staging directory
//! (`<common dir>/atomic/batches/<id>/<n>`), with its final mode, and computes its blob id.
//! Nothing in the work tree or in git changes; the barrier that makes the staged files durable
//! is flushed by the journal stage together with the journal itself.

use crate::check::{Checked, FileState, Put, PutSource};
use crate::durable::Barrier;
use crate::error::{Error, IoContext, Result};
use crate::parse::Mode;
use crate::paths;
use crate::validate::NewContent;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A put whose new content sits staged, ready to be renamed into place.
#[derive(Debug, Clone)]
pub struct StagedPut {
    pub path: String,
    pub old: FileState,
    pub new: FileState,
    /// File name inside the staging directory.
    pub staged: String,
}

/// A checked batch whose new contents are all staged.
#[derive(Debug)]
#[must_use = "a staged batch must be journaled or its batch directory removed"]
pub struct Staged {
    pub checked: Checked,
    pub batch_dir: PathBuf,
    pub puts: Vec<StagedPut>,
}

/// The directory of one batch: its journal and its staged files.
pub fn batch_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("batches").join(id)
}

/// Stages the new contents of `checked` under `state_dir`.
pub fn stage(
    checked: Checked,
    state_dir: &Path,
    repo: &gix::Repository,
    barrier: &mut Barrier,
) -> Result<Staged> {
    let batch_dir = batch_dir(state_dir, &checked.batch.id);
    if !state_dir.join("batches").is_dir() {
        // The repository's first batch: the entries of `atomic/` and `batches/` are new too.
        barrier.add(state_dir);
        if let Some(common_dir) = state_dir.parent() {
            barrier.add(common_dir);
        }
    }
    std::fs::create_dir_all(&batch_dir).io_context(|| format!("cannot create '{}'", batch_dir.display()))?;
    barrier.add(state_dir.join("batches"));
    barrier.add(&batch_dir);
    let mask = umask();
    let default_permissions = |executable: bool| (if executable { 0o777 } else { 0o666 }) & !mask;
    let mut puts = Vec::with_capacity(checked.puts.len());
    for (n, put) in checked.puts.iter().enumerate() {
        let staged = n.to_string();
        let bytes = content_of(put, checked.work_tree.as_deref(), repo)?;
        let blob = paths::blob_id(repo.object_hash(), &bytes)?;
        let file = batch_dir.join(&staged);
        let permissions = permissions_for(put, checked.work_tree.as_deref(), default_permissions);
        write_staged(&file, &bytes, put.mode, permissions, mask)?;
        barrier.add(&file);
        puts.push(StagedPut {
            path: put.path.clone(),
            old: put.old,
            new: FileState::Present { blob, mode: put.mode },
            staged,
        });
    }
    let mut checked = checked;
    for (i, staged) in puts.iter().enumerate() {
        if let Some(line) = checked.puts[i].report {
            checked.files_report[line].new = staged.new.blob();
        }
    }
    Ok(Staged { checked, batch_dir, puts })
}

/// Fills in the new blob ids of a batch that will not be staged (`--dry-run`), reading each
/// content exactly as staging would, so that a dry run reports what an apply would write.
pub fn preview(checked: &mut Checked, repo: &gix::Repository) -> Result<()> {
    for i in 0..checked.puts.len() {
        let put = &checked.puts[i];
        let bytes = content_of(put, checked.work_tree.as_deref(), repo)?;
        let blob = paths::blob_id(repo.object_hash(), &bytes)?;
        if let Some(line) = put.report {
            checked.files_report[line].new = Some(blob);
        }
    }
    Ok(())
}

/// The bytes a put writes (a symlink's target, for mode 120000).
fn content_of(put: &Put, work_tree: Option<&Path>, repo: &gix::Repository) -> Result<Vec<u8>> {
    let bytes = match &put.source {
        PutSource::Content(NewContent::Bytes(bytes)) => bytes.clone(),
        PutSource::Content(NewContent::Blob(id)) => {
            repo.find_blob(*id).map_err(|e| Error::fatal(format!("cannot read blob {id}: {e}")))?.data.clone()
        }
        PutSource::Content(NewContent::Source(path)) => std::fs::read(path)
            .map_err(|e| Error::invalid(format!("cannot read source '{}': {e}", path.display())))?,
        PutSource::WorkTree { path, blob } => {
            let work_tree = work_tree.expect("renames exist only with a work tree");
            let full = paths::on_disk(work_tree, path);
            let bytes = match std::fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_symlink() => std::os::unix::ffi::OsStrExt::as_bytes(
                    std::fs::read_link(&full).io_context(|| full.display().to_string())?.as_os_str(),
                )
                .to_vec(),
                _ => std::fs::read(&full).io_context(|| format!("cannot read '{}'", full.display()))?,
            };
            if paths::blob_id(repo.object_hash(), &bytes)? != *blob {
                return Err(Error::refused(format!("'{path}' changed while the batch was being applied")));
            }
            bytes
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
fn permissions_for(put: &Put, work_tree: Option<&Path>, default: impl Fn(bool) -> u32) -> u32 {
    let executable = put.mode == Mode::Executable;
    let existing = match (put.old, work_tree) {
        (FileState::Present { mode: Mode::Regular | Mode::Executable, .. }, Some(work_tree)) => {
            std::fs::symlink_metadata(paths::on_disk(work_tree, &put.path)).ok().filter(|m| m.is_file())
        }
        _ => None,
    };
    let Some(meta) = existing else { return default(executable) };
    let old = meta.permissions().mode() & 0o7777;
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
