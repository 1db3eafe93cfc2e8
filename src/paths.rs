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
    check_spelling(path, None)
}

/// [`check_syntax`] for a path that will hold a file of `mode`: a symlinked `.gitmodules` is
/// refused too, as git's `verify_path` refuses it.
pub fn check_syntax_for(path: &str, mode: Option<Mode>) -> Result<()> {
    check_spelling(path, mode)
}

fn check_spelling(path: &str, mode: Option<Mode>) -> Result<()> {
    if path.is_empty() {
        return Err(Error::invalid("empty path"));
    }
    if path.contains('\0') {
        return Err(Error::invalid("path contains a NUL byte"));
    }
    crate::limits::check_name_length(path)?;
    // Shown with hidden code points (U+200C) and control characters escaped; built only for an
    // error, as it costs more than the checks (about 1.5 K instructions a path).
    let shown = Shown(path);
    if path.starts_with('/') {
        return Err(
            Error::invalid(format!("'{shown}' is absolute")).hint("paths are relative to the work-tree root")
        );
    }
    // git's verify_path with core.protectNTFS (on by default everywhere): a backslash is a
    // directory separator on Windows, so `a\.git\x` would write into .git there.
    if path.contains('\\') {
        return Err(Error::invalid(format!("'{shown}' contains a backslash"))
            .hint("paths are '/'-separated; git refuses a backslash where Windows reads a separator"));
    }
    let components: Vec<&str> = path.split('/').collect();
    for (i, component) in components.iter().enumerate() {
        match *component {
            "" => return Err(Error::invalid(format!("'{shown}' has an empty component"))),
            "." | ".." => {
                return Err(Error::invalid(format!("'{shown}' has a '{component}' component")));
            }
            c if is_dot_git(c) => {
                return Err(Error::invalid(format!("'{shown}' is inside .git"))
                    .hint("a batch never writes into .git"));
            }
            c if mode == Some(Mode::Symlink) && i + 1 == components.len() && is_dot_gitmodules(c) => {
                return Err(Error::invalid(format!("'{shown}' would be a symlinked .gitmodules"))
                    .hint("git refuses a .gitmodules that is a symbolic link (verify_path)"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A path as an error shows it: hidden code points and control characters escaped.
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0.escape_debug(), f)
    }
}

/// `.git` in every spelling git's `verify_path` refuses on some platform: `.git` in any case
/// (`verify_dotfile`), NTFS's `is_ntfs_dotgit` (trailing dots and spaces, an alternate data stream
/// such as `.git::$INDEX_ALLOCATION`, the 8.3 short name `git~1`), and HFS+'s `is_hfs_dotgit`
/// (code points HFS+ ignores, such as U+200C, anywhere in `.git`).
fn is_dot_git(component: &str) -> bool {
    // Every spelling starts with '.' or 'g' once ignorable code points (all non-ASCII) are gone.
    let ascii = component.is_ascii();
    if ascii && !component.starts_with(['.', 'g', 'G']) {
        return false;
    }
    is_ntfs_dot_generic(component, "git", "git~1") || (!ascii && is_hfs_dot_generic(component, "git"))
}

/// `.gitmodules` as git's `is_ntfs_dotgitmodules` and `is_hfs_dotgitmodules` read it.
fn is_dot_gitmodules(component: &str) -> bool {
    let ascii = component.is_ascii();
    if ascii && !component.starts_with(['.', 'g', 'G']) {
        return false;
    }
    is_ntfs_dot_generic(component, "gitmodules", "gi7eba")
        || (!ascii && is_hfs_dot_generic(component, "gitmodules"))
}

/// Whether the last component of `path` may name `.gitmodules` (in any spelling git refuses for
/// a symlink): only then does the mode the path will have matter.
pub fn may_be_gitmodules(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(is_dot_gitmodules)
}

/// git's `is_ntfs_dot_generic` (path.c): `.NAME`, its 6-character short name `NAME~1`..`~4`, or the
/// fall-back short name `PREFIX~N`, each followed only by dots and spaces (which NTFS drops) up to
/// the end or a `:` (an alternate data stream). For `.git` the short name is `git~1` exactly.
fn is_ntfs_dot_generic(component: &str, name: &str, short_prefix: &str) -> bool {
    let bytes = component.as_bytes();
    let lower = component.to_ascii_lowercase();
    let only_dots_and_spaces_from = |i: usize| {
        let rest = &bytes[i.min(bytes.len())..];
        let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        rest[..end].iter().all(|&b| b == b'.' || b == b' ')
    };
    if lower.starts_with('.') && lower[1..].starts_with(name) {
        return only_dots_and_spaces_from(1 + name.len());
    }
    if name == "git" {
        // is_ntfs_dotgit: only `git~1` is .git's short name.
        return lower.starts_with(short_prefix) && only_dots_and_spaces_from(short_prefix.len());
    }
    // A regular short name: the first six characters, then ~1 to ~4.
    if lower.len() >= 8
        && lower.starts_with(&name[..6])
        && bytes[6] == b'~'
        && (b'1'..=b'4').contains(&bytes[7])
    {
        return only_dots_and_spaces_from(8);
    }
    is_ntfs_fallback_short_name(bytes, short_prefix) && only_dots_and_spaces_from(8)
}

/// The fall-back 8.3 name: up to six characters of `prefix`, `~`, a digit 1-9, then digits, 8 in all.
fn is_ntfs_fallback_short_name(bytes: &[u8], prefix: &str) -> bool {
    if bytes.len() < 8 {
        return false;
    }
    let prefix = prefix.as_bytes();
    let mut saw_tilde = false;
    let mut i = 0;
    while i < 8 {
        let c = bytes[i];
        if saw_tilde {
            if !c.is_ascii_digit() {
                return false;
            }
        } else if c == b'~' {
            i += 1;
            if !bytes.get(i).is_some_and(|b| (b'1'..=b'9').contains(b)) {
                return false;
            }
            saw_tilde = true;
        } else if i >= 6 || c & 0x80 != 0 || c.to_ascii_lowercase() != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Code points HFS+ ignores in names (git's `next_hfs_char` in utf8.c).
const HFS_IGNORED: [char; 16] = [
    '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
    '\u{202e}', '\u{206a}', '\u{206b}', '\u{206c}', '\u{206d}', '\u{206e}', '\u{206f}', '\u{feff}',
];

/// git's `is_hfs_dot_generic` (utf8.c): `.NAME` once the ignored code points are dropped, in any
/// ASCII case (HFS+ keeps trailing dots, so nothing else is trimmed).
fn is_hfs_dot_generic(component: &str, name: &str) -> bool {
    let folded: String =
        component.chars().filter(|c| !HFS_IGNORED.contains(c)).map(|c| c.to_ascii_lowercase()).collect();
    folded.strip_prefix('.') == Some(name)
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

/// `path` with `.` and `..` components resolved by name, as a shell's `cd -L` would: the result
/// is only used to walk down again without following any symlink.
pub fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Reads the regular file at `relative` under `root` through directory handles opened without
/// following a symlink (`openat` with `O_NOFOLLOW`), so that no link, swapped in at any moment,
/// can make it read a file elsewhere. More than `limit` bytes is refused.
pub fn read_regular_file(root: &Path, relative: &str, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let root_bytes = std::os::unix::ffi::OsStrExt::as_bytes(root.as_os_str());
    let mut dir = open_nofollow(None, root_bytes, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| not_reachable(&root.display().to_string(), e))?;
    let components: Vec<&str> = relative.split('/').collect();
    let (leaf, parents) = components.split_last().expect("split yields one item at least");
    let mut walked = String::new();
    for component in parents {
        walked.push_str(component);
        dir = open_nofollow(Some(&dir), component.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|e| not_reachable(&walked, e))?;
        walked.push('/');
    }
    // O_NONBLOCK: a fifo put there must not make the open wait for a writer.
    let file = open_nofollow(Some(&dir), leaf.as_bytes(), libc::O_RDONLY | libc::O_NONBLOCK)
        .map(std::fs::File::from)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::invalid(format!("'{relative}' is a symbolic link")),
            _ => not_reachable(relative, e),
        })?;
    let meta = file.metadata().map_err(|e| not_reachable(relative, e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "is a directory" } else { "is not a regular file" };
        return Err(Error::invalid(format!("'{relative}' {what}")));
    }
    crate::limits::check_content_size(meta.len())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| not_reachable(relative, e))?;
    crate::limits::check_content_size(bytes.len() as u64)?;
    Ok(bytes)
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC)`; no `dir` means the current directory.
fn open_nofollow(
    dir: Option<&std::os::fd::OwnedFd>,
    name: &[u8],
    flags: i32,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let name =
        std::ffi::CString::new(name).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: a NUL-terminated name and a directory fd that outlives the call (or AT_FDCWD).
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Why `what` could not be opened; a symlink met without following it is ELOOP or ENOTDIR.
fn not_reachable(what: &str, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ELOOP | libc::ENOTDIR) => {
            Error::invalid(format!("'{what}' is a symbolic link or not a directory"))
        }
        _ => Error::invalid(format!("'{what}': {}", crate::error::io_words(&e))),
    }
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
            "a/.git::$INDEX_ALLOCATION/x",
            ".git:stream",
            ".git . ./x",
            "a\\b",
            "x/.g\u{200c}it/config",
            "\u{feff}.GIT/config",
            ".git\u{200d}/x",
            "git~1. /x",
        ] {
            assert!(check_syntax(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["a", "a/b.txt", ".gitignore", "x/.github/y", "..a", "a..b", "git~2/x", ".gitx", "git~1x"]
        {
            assert!(check_syntax(good).is_ok(), "{good:?} should pass");
        }
    }

    #[test]
    fn refuses_a_symlinked_gitmodules_in_any_spelling() {
        for bad in
            [".gitmodules", "a/.GITMODULES", "a/.gitmodules. ", "gitmod~1", "GI7EBA~9", ".git\u{200c}modules"]
        {
            assert!(check_syntax_for(bad, Some(Mode::Symlink)).is_err(), "{bad:?} should be refused");
            assert!(check_syntax_for(bad, Some(Mode::Regular)).is_ok(), "{bad:?} is fine as a file");
        }
        assert!(check_syntax_for("gitmod~5", Some(Mode::Symlink)).is_ok());
    }

    #[test]
    fn parents_are_outermost_first() {
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(parents("a").count(), 0);
    }
}
