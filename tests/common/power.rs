//! The power-cut harness of the crash tests: a small ext4 image on a loop device, cut with
//! `FS_IOC_SHUTDOWN` (no log flush) and mounted again, so that what survives is what was durable.
//! Needs root and loop devices; [`Mounted::new`] says why not elsewhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A loop-mounted ext4 image, unmounted (lazily, if need be) when dropped.
pub struct Mounted {
    image: PathBuf,
    /// Where the image is mounted.
    pub dir: PathBuf,
}

impl Mounted {
    /// Makes and mounts an ext4 image of `mib` MiB; the reason why not where that cannot work.
    pub fn new(scratch: &Path, mib: u64) -> Result<Mounted, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".into());
        }
        if !Path::new("/dev/loop-control").exists() {
            return Err("no /dev/loop-control".into());
        }
        let image = scratch.join("ext4.img");
        let dir = scratch.join("mnt");
        std::fs::create_dir(&dir).unwrap();
        std::fs::File::create(&image).unwrap().set_len(mib << 20).unwrap();
        sh(&["mkfs.ext4", "-q", "-F", image.to_str().unwrap()])?;
        let m = Mounted { image, dir };
        m.mount()?;
        Ok(m)
    }

    fn mount(&self) -> Result<(), String> {
        sh(&["mount", "-o", "loop", self.image.to_str().unwrap(), self.dir.to_str().unwrap()])
    }

    fn umount(&self) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..50 {
            match sh(&["umount", self.dir.to_str().unwrap()]) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(last)
    }

    /// Cuts the power: FS_IOC_SHUTDOWN with FS_GOING_FLAGS_NOLOGFLUSH (what `xfs_io -x -c
    /// shutdown` does): nothing more reaches the disk, not even the file system's own journal.
    pub fn cut_power(&self) {
        use std::os::unix::io::AsRawFd;
        const FS_IOC_SHUTDOWN: u64 = 0x8004_587d; // _IOR('X', 125, __u32)
        const NOLOGFLUSH: u32 = 2;
        let dir = std::fs::File::open(&self.dir).unwrap();
        let flags = NOLOGFLUSH;
        // SAFETY: the ioctl reads one u32 from a valid pointer; the descriptor is open.
        let rc = unsafe { libc::ioctl(dir.as_raw_fd(), FS_IOC_SHUTDOWN as _, &flags as *const u32) };
        assert_eq!(rc, 0, "FS_IOC_SHUTDOWN: {}", std::io::Error::last_os_error());
    }

    /// Unmounts and mounts again: what survives is what was durable at the cut.
    pub fn remount(&self) {
        self.umount().unwrap_or_else(|e| panic!("umount after the cut: {e}"));
        self.mount().unwrap_or_else(|e| panic!("mount after the cut: {e}"));
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.umount().is_err() {
            let _ = sh(&["umount", "-l", self.dir.to_str().unwrap()]);
        }
    }
}

/// Runs a command; its stderr is the error.
pub fn sh(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim())),
    }
}
