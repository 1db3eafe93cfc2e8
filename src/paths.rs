//! Work-tree paths from an untrusted batch: what makes one safe, and what is on disk at one.
//! A safe path is relative, '/'-separated, has no empty, `.` or `..` component, no `.git`
//! component in any spelling git treats as `.git`, and never passes through a symlink.

use crate::error::{Error, IoContext, Result};
use crate::record::Mode;
use gix::ObjectId;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Checks the spelling of a batch path; the disk is not consulted.
pub fn check_syntax(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::invalid("empty path"));
    }
    if path.contains('\0') {
        return Err(Error::invalid("path contains a NUL byte"));
    }
    if path.starts_with('/') {
        return Err(
            Error::invalid(format!("'{path}' is absolute")).hint("paths are relative to the work-tree root")
        );
    }
    for component in path.split('/') {
        match component {
            "" => return Err(Error::invalid(format!("'{path}' has an empty component"))),
            "." | ".." => {
                return Err(Error::invalid(format!("'{path}' has a '{component}' component")));
            }
            c if is_dot_git(c) => {
                return Err(
                    Error::invalid(format!("'{path}' is inside .git")).hint("a batch never writes into .git")
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// `.git` as git and the file systems it protects against read it (`.GIT`, `.git.`, `git~1`).
fn is_dot_git(component: &str) -> bool {
    let lower = component.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches([' ', '.']);
    trimmed == ".git" || trimmed == "git~1"
}

/// The parent directories of a '/'-separated path, outermost first (`a`, `a/b` for `a/b/c`).
pub fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// What the work tree holds at a path, as far as a batch cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Absent,
    File {
        blob: ObjectId,
        mode: Mode,
    },
    Directory,
    /// A fifo, socket or device: never touched.
    Special,
}

/// Looks at what is at `path` in the work tree without following a symlink anywhere along it.
/// A parent that is not a real directory is an error (refused): we never write through it.
pub fn inspect(work_tree: &Path, path: &str, hash: gix::hash::Kind) -> Result<Found> {
    for parent in parents(path) {
        match std::fs::symlink_metadata(work_tree.join(parent)) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::refused(format!("'{parent}' is a symbolic link"))
                    .hint("a batch never writes through a symlink"));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::refused(format!("'{parent}' is not a directory")));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Absent),
            Err(e) => return Err(Error::fatal(format!("cannot inspect '{parent}': {e}"))),
        }
    }
    inspect_leaf(&work_tree.join(path), hash)
}

/// Looks at one file (no parents checked): its blob id and mode as git would record them.
pub fn inspect_leaf(full: &Path, hash: gix::hash::Kind) -> Result<Found> {
    let meta = match std::fs::symlink_metadata(full) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Absent),
        Err(e) => {
            return Err(Error::fatal(format!("cannot inspect '{}': {e}", full.display())));
        }
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        return Ok(Found::Directory);
    }
    let (bytes, mode) = if kind.is_symlink() {
        let target =
            std::fs::read_link(full).io_context(|| format!("cannot read link '{}'", full.display()))?;
        (std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec(), Mode::Symlink)
    } else if kind.is_file() {
        let bytes = std::fs::read(full).io_context(|| format!("cannot read '{}'", full.display()))?;
        let mode = if meta.permissions().mode() & 0o111 != 0 { Mode::Executable } else { Mode::Regular };
        (bytes, mode)
    } else {
        return Ok(Found::Special);
    };
    Ok(Found::File { blob: blob_id(hash, &bytes)?, mode })
}

/// The blob id git gives these bytes (`git hash-object --no-filters`).
pub fn blob_id(hash: gix::hash::Kind, bytes: &[u8]) -> Result<ObjectId> {
    gix::objs::compute_hash(hash, gix::objs::Kind::Blob, bytes)
        .map_err(|e| Error::fatal(format!("cannot hash: {e}")))
}

/// The path on disk of a batch path.
pub fn on_disk(work_tree: &Path, path: &str) -> PathBuf {
    work_tree.join(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_escapes_and_git_dirs() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            ".git/config",
            "x/.GIT/y",
            ".git./x",
            "GIT~1/x",
            "a\0b",
        ] {
            assert!(check_syntax(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["a", "a/b.txt", ".gitignore", "x/.github/y", "..a", "a..b"] {
            assert!(check_syntax(good).is_ok(), "{good:?} should pass");
        }
    }

    #[test]
    fn parents_are_outermost_first() {
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(parents("a").count(), 0);
    }
}
