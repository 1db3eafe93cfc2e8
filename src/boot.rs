//! Which boot of the machine this is, and when it began: a lock file made before this boot is
//! stale whoever made it (every process of an earlier boot is dead), and one made since cannot
//! be the lock of a `git update-ref` that ran in an earlier boot (leftovers.rs). The tests cannot
//! reboot: `GIT_TEST_ATOMIC_BOOT=<file>` (git's `GIT_TEST_*` convention, as in crash.rs) names a
//! file holding `<boot id> <unix time of its start, in seconds>` that stands in for both while
//! it exists; the power-cut tests write it at each cut.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The boot as this process sees it: its id and when it began.
struct Boot {
    id: String,
    began: Option<SystemTime>,
}

static BOOT: OnceLock<Boot> = OnceLock::new();

fn boot() -> &'static Boot {
    BOOT.get_or_init(|| simulated().unwrap_or_else(real))
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`, a random UUID per boot), read once per
/// process; empty when the kernel does not say.
pub fn id() -> &'static str {
    &boot().id
}

/// When this boot began, by the clock that file times use (the time now less the time since
/// boot, suspend included); nothing when the kernel does not say.
pub fn began() -> Option<SystemTime> {
    boot().began
}

fn real() -> Boot {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    Boot { id: id.trim().to_string(), began: since_boot().and_then(|up| SystemTime::now().checked_sub(up)) }
}

/// `CLOCK_BOOTTIME`: the time since boot, the time suspended included.
fn since_boot() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// The boot the tests simulate, while `GIT_TEST_ATOMIC_BOOT` names a file that exists.
fn simulated() -> Option<Boot> {
    let text = std::fs::read_to_string(std::env::var_os("GIT_TEST_ATOMIC_BOOT")?).ok()?;
    let (id, began) = text.trim().split_once(' ')?;
    let began = Duration::try_from_secs_f64(began.parse().ok()?).ok()?;
    Some(Boot { id: id.to_string(), began: SystemTime::UNIX_EPOCH.checked_add(began) })
}
