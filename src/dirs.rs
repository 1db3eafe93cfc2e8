//! Directory handles in the work tree. A batch's paths are checked once, but the work tree is
//! shared: another process can swap a checked directory for a symlink or a file at any instant,
//! and a write by full path would then follow the swap out of the work tree. So every step after
//! the check starts from a handle on the work-tree root, goes down one component at a time with
//! `openat(O_NOFOLLOW | O_DIRECTORY)`, and inspects, creates, renames and unlinks with the `*at`
//! calls relative to a directory handle. A swap then either stops the walk (`ELOOP`, `ENOTDIR`,
//! `ENOENT`) or has no effect, as a handle keeps naming the real directory. The handles are
//! cached per batch: each directory is opened once, not once per file.

use crate::error::{Error, Result};
use crate::paths::{self, Found};
use crate::record::Mode;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Beyond this many cached handles the cache starts over (a directory is then opened again from
/// the root), well below the usual limit of 1024 open files.
const MAX_OPEN: usize = 256;

/// What a walk down to a directory found.
pub enum Dir {
    /// A handle on the real directory.
    Open(Rc<OwnedFd>),
    /// It, or one of its parents, does not exist.
    Missing,
    /// This component on the way is a symlink, a file or anything else but a directory.
    NotADirectory(String),
}

/// What is at a name in a directory, read without following a symlink.
#[derive(Debug, PartialEq, Eq)]
pub enum Leaf {
    Absent,
    Directory,
    /// A fifo, socket or device: never opened.
    Special,
    /// A symlink and its target.
    Symlink(Vec<u8>),
    File {
        bytes: Vec<u8>,
        executable: bool,
    },
}

/// The directory handles of one work tree, opened without following a symlink below its root.
pub struct Dirs {
    root_path: PathBuf,
    root: RefCell<Option<Rc<OwnedFd>>>,
    open: RefCell<HashMap<String, Rc<OwnedFd>>>,
}

impl Dirs {
    /// Handles below `work_tree`; nothing is opened until a walk needs it.
    pub fn new(work_tree: &Path) -> Dirs {
        Dirs { root_path: work_tree.to_path_buf(), root: RefCell::new(None), open: RefCell::default() }
    }

    /// The directory `dir` ('/'-separated; "" is the root), walked down from the root.
    pub fn open(&self, dir: &str) -> io::Result<Dir> {
        self.walk(dir, None)
    }

    /// Like [`Dirs::open`], creating each missing directory; `made` is told each one created.
    pub fn create(&self, dir: &str, made: &mut dyn FnMut(&str)) -> io::Result<Dir> {
        self.walk(dir, Some(made))
    }

    /// Forgets the handles on `dir` and below it, once it is removed.
    pub fn forget(&self, dir: &str) {
        let below = format!("{dir}/");
        self.open.borrow_mut().retain(|k, _| k != dir && !k.starts_with(&below));
    }

    /// `lstat` of a work-tree path; `None` when it or a parent is missing, `ENOTDIR` when a parent
    /// is not a real directory.
    pub fn lstat(&self, path: &str) -> io::Result<Option<libc::stat>> {
        let (parent, name) = split(path);
        match self.open(parent)? {
            Dir::Open(dir) => stat_at(&dir, name),
            Dir::Missing => Ok(None),
            Dir::NotADirectory(_) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }

    /// What is at a work-tree path, read like [`read_at`]; `ENOTDIR` when a parent is not a
    /// real directory.
    pub fn read(&self, path: &str) -> io::Result<Leaf> {
        let (parent, name) = split(path);
        match self.open(parent)? {
            Dir::Open(dir) => read_at(&dir, name),
            Dir::Missing => Ok(Leaf::Absent),
            Dir::NotADirectory(_) => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
        }
    }

    /// What the work tree holds at `path`, as git would record it; `Err(dir)` when `dir`, on the
    /// way to it, is not a real directory.
    pub fn inspect(&self, path: &str, hash: gix::hash::Kind) -> Result<std::result::Result<Found, String>> {
        let (parent, name) = split(path);
        let opened =
            self.open(parent).map_err(|e| Error::fatal(format!("cannot inspect '{parent}': {e}")))?;
        let leaf = match opened {
            Dir::Open(dir) => {
                read_at(&dir, name).map_err(|e| Error::fatal(format!("cannot inspect '{path}': {e}")))?
            }
            Dir::Missing => Leaf::Absent,
            Dir::NotADirectory(dir) => return Ok(Err(dir)),
        };
        let (bytes, mode) = match leaf {
            Leaf::Absent => return Ok(Ok(Found::Absent)),
            Leaf::Directory => return Ok(Ok(Found::Directory)),
            Leaf::Special => return Ok(Ok(Found::Special)),
            Leaf::Symlink(target) => (target, Mode::Symlink),
            Leaf::File { bytes, executable: true } => (bytes, Mode::Executable),
            Leaf::File { bytes, executable: false } => (bytes, Mode::Regular),
        };
        Ok(Ok(Found::File { blob: paths::blob_id(hash, &bytes)?, mode }))
    }

    /// The root is the user's own directory and may be reached through a symlink (as `/tmp` is
    /// on some systems); only what is below it is walked without following one.
    fn root(&self) -> io::Result<Rc<OwnedFd>> {
        if let Some(root) = self.root.borrow().as_ref() {
            return Ok(root.clone());
        }
        let root = Rc::new(open_dir(&self.root_path)?);
        *self.root.borrow_mut() = Some(root.clone());
        Ok(root)
    }

    fn walk(&self, dir: &str, mut made: Option<&mut dyn FnMut(&str)>) -> io::Result<Dir> {
        if let Some(handle) = self.open.borrow().get(dir) {
            return Ok(Dir::Open(handle.clone()));
        }
        let mut at = self.root()?;
        if dir.is_empty() {
            return Ok(Dir::Open(at));
        }
        let mut start = 0;
        for end in dir.match_indices('/').map(|(i, _)| i).chain([dir.len()]) {
            let (prefix, name) = (&dir[..end], &dir[start..end]);
            start = end + 1;
            if let Some(handle) = self.open.borrow().get(prefix) {
                at = handle.clone();
                continue;
            }
            let mut opened = open_dir_at(&at, name);
            if let (Err(e), Some(made)) = (&opened, made.as_deref_mut())
                && e.raw_os_error() == Some(libc::ENOENT)
            {
                if make_dir_at(&at, name)? {
                    made(prefix);
                }
                opened = open_dir_at(&at, name);
            }
            at = match opened {
                Ok(handle) => self.remember(prefix, handle),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Dir::Missing),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    return Ok(Dir::NotADirectory(prefix.to_string()));
                }
                Err(e) => return Err(e),
            };
        }
        Ok(Dir::Open(at))
    }

    fn remember(&self, dir: &str, handle: OwnedFd) -> Rc<OwnedFd> {
        let handle = Rc::new(handle);
        let mut open = self.open.borrow_mut();
        if open.len() >= MAX_OPEN {
            open.clear();
        }
        open.insert(dir.to_string(), handle.clone());
        handle
    }
}

/// The parent directory of a '/'-separated path ("" for the root) and its last component.
pub fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) }
}

/// Opens a trusted directory (the work-tree root, the batch directory) by path.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY).open(path)?;
    Ok(OwnedFd::from(file))
}

fn open_at(dir: &OwnedFd, name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    // SAFETY: a valid descriptor and a NUL-terminated name; on success we own the new descriptor.
    let fd = check(unsafe {
        libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW, mode)
    })?;
    // SAFETY: `fd` was just returned by openat and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How a directory is opened for the `*at` calls: on Linux `O_PATH`, which needs no read
/// permission (a `wx` directory works as it does by path) and reads nothing.
#[cfg(target_os = "linux")]
const DIR_ACCESS: libc::c_int = libc::O_PATH;
#[cfg(not(target_os = "linux"))]
const DIR_ACCESS: libc::c_int = libc::O_RDONLY;

/// Opens a subdirectory; a symlink fails with `ELOOP` or `ENOTDIR`, anything else but a
/// directory with `ENOTDIR`.
fn open_dir_at(dir: &OwnedFd, name: &str) -> io::Result<OwnedFd> {
    open_at(dir, name, DIR_ACCESS | libc::O_DIRECTORY, 0)
}

/// `mkdirat`; false when something already has the name (the open after it judges what).
fn make_dir_at(dir: &OwnedFd, name: &str) -> io::Result<bool> {
    let c = c_name(name)?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    match check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o777) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `fstatat(AT_SYMLINK_NOFOLLOW)`; `None` when nothing has the name.
pub fn stat_at(dir: &OwnedFd, name: &str) -> io::Result<Option<libc::stat>> {
    let c = c_name(name)?;
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid descriptor, a NUL-terminated name and room for one stat.
    let rc =
        unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), stat.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    match check(rc) {
        // SAFETY: fstatat filled the stat in.
        Ok(_) => Ok(Some(unsafe { stat.assume_init() })),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The target of the symlink at `name`.
pub fn read_link_at(dir: &OwnedFd, name: &str) -> io::Result<Vec<u8>> {
    let c = c_name(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: a valid descriptor, a NUL-terminated name and a buffer of the length given.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Opens the regular file at `name` for reading; a symlink is not followed, a fifo not waited on.
pub fn open_file_at(dir: &OwnedFd, name: &str) -> io::Result<File> {
    Ok(File::from(open_at(dir, name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?))
}

/// Creates a new file at `name` for writing (never through a symlink, never an existing file).
pub fn create_file_at(dir: &OwnedFd, name: &str, mode: u32) -> io::Result<File> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
    Ok(File::from(open_at(dir, name, flags, mode as libc::mode_t)?))
}

/// What is at `name`: a symlink's target, a regular file's bytes and execute bit.
pub fn read_at(dir: &OwnedFd, name: &str) -> io::Result<Leaf> {
    let Some(stat) = stat_at(dir, name)? else { return Ok(Leaf::Absent) };
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFDIR => Ok(Leaf::Directory),
        libc::S_IFLNK => Ok(Leaf::Symlink(read_link_at(dir, name)?)),
        libc::S_IFREG => {
            let mut file = open_file_at(dir, name)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Ok(Leaf::Special); // swapped since the stat: never read a fifo or device
            }
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            file.read_to_end(&mut bytes)?;
            let executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
            Ok(Leaf::File { bytes, executable })
        }
        _ => Ok(Leaf::Special),
    }
}

/// `renameat` from one directory handle to another.
pub fn rename_at(from_dir: &OwnedFd, from: &str, to_dir: &OwnedFd, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: valid descriptors and NUL-terminated names.
    check(unsafe { libc::renameat(from_dir.as_raw_fd(), from.as_ptr(), to_dir.as_raw_fd(), to.as_ptr()) })?;
    Ok(())
}

/// `renameat2(RENAME_EXCHANGE)`: swaps two names atomically (both must exist). Elsewhere than
/// Linux it fails with `EXDEV`, so that the caller copies instead.
pub fn exchange_at(a_dir: &OwnedFd, a: &str, b_dir: &OwnedFd, b: &str) -> io::Result<()> {
    let (a, b) = (c_name(a)?, c_name(b)?);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: valid descriptors and NUL-terminated names.
        check(unsafe {
            libc::renameat2(
                a_dir.as_raw_fd(),
                a.as_ptr(),
                b_dir.as_raw_fd(),
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        })?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a_dir, a, b_dir, b);
        Err(io::Error::from_raw_os_error(libc::EXDEV))
    }
}

/// Whether `renameat2` failed because the file system (or kernel) does not support its flag:
/// `EINVAL` from most (FUSE, NFS, older ext2 and minix), `EOPNOTSUPP` from some, `ENOSYS` from
/// kernels without the call.
pub fn flag_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENOSYS))
}

/// `linkat` without following a symlink: a second name for the file or symlink `from`.
pub fn link_at(from_dir: &OwnedFd, from: &str, to_dir: &OwnedFd, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: valid descriptors and NUL-terminated names.
    check(unsafe { libc::linkat(from_dir.as_raw_fd(), from.as_ptr(), to_dir.as_raw_fd(), to.as_ptr(), 0) })?;
    Ok(())
}

/// `unlinkat` of a file or symlink.
pub fn unlink_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) })?;
    Ok(())
}

/// `unlinkat(AT_REMOVEDIR)` of an empty directory.
pub fn remove_dir_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
    let c = c_name(name)?;
    // SAFETY: a valid descriptor and a NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })?;
    Ok(())
}

/// `symlinkat`: a symlink at `name` pointing at `target`.
pub fn symlink_at(target: &[u8], dir: &OwnedFd, name: &str) -> io::Result<()> {
    let target = CString::new(target).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let c = c_name(name)?;
    // SAFETY: a valid descriptor and NUL-terminated strings.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), c.as_ptr()) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_or_file_parent_stops_the_walk_and_nothing_is_created_through_it() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, outside) = (tmp.path().join("root"), tmp.path().join("outside"));
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("ln")).unwrap();
        std::fs::write(root.join("file"), "x").unwrap();
        let dirs = Dirs::new(&root);
        assert!(matches!(dirs.open("a/b").unwrap(), Dir::Open(_)));
        assert!(matches!(dirs.open("a/c/d").unwrap(), Dir::Missing));
        let mut made = Vec::new();
        assert!(matches!(dirs.create("a/c/d", &mut |d| made.push(d.to_string())).unwrap(), Dir::Open(_)));
        assert_eq!(made, ["a/c", "a/c/d"]);
        for bad in ["ln", "ln/x", "file/x"] {
            let found = dirs.create(bad, &mut |_| {}).unwrap();
            assert!(matches!(found, Dir::NotADirectory(d) if d == bad.split('/').next().unwrap()), "{bad}");
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(dirs.read("ln/x").unwrap_err().raw_os_error(), Some(libc::ENOTDIR));
        assert_eq!(
            dirs.read("ln").unwrap(),
            Leaf::Symlink(std::os::unix::ffi::OsStrExt::as_bytes(outside.as_os_str()).to_vec())
        );
    }

    #[test]
    fn a_cached_handle_keeps_naming_the_real_directory_after_a_swap() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        let dirs = Dirs::new(&root);
        let Dir::Open(d) = dirs.open("d").unwrap() else { panic!("d is a directory") };
        std::fs::rename(root.join("d"), root.join("aside")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("d")).unwrap();
        create_file_at(&d, "f", 0o644).unwrap();
        assert!(root.join("aside/f").is_file());
        dirs.forget("d");
        assert!(matches!(dirs.open("d").unwrap(), Dir::NotADirectory(_)));
    }

    #[test]
    fn the_cache_stays_bounded_and_every_directory_stays_reachable() {
        let tmp = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..MAX_OPEN + 50).map(|i| format!("a{i}/b")).collect();
        for name in &names {
            std::fs::create_dir_all(tmp.path().join(name)).unwrap();
        }
        let dirs = Dirs::new(tmp.path());
        for _ in 0..2 {
            for name in &names {
                let Dir::Open(handle) = dirs.open(name).unwrap() else { panic!("{name} is a directory") };
                create_file_at(&handle, "f", 0o644)
                    .map(drop)
                    .or_else(|e| match e.kind() {
                        io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })
                    .unwrap();
                assert!(dirs.open.borrow().len() <= MAX_OPEN);
            }
        }
        assert!(names.iter().all(|name| tmp.path().join(name).join("f").is_file()));
    }
}
