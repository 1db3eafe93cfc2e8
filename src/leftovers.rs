//! What a batch's own `git update-ref` may leave behind when it or git-atomic dies, and its
//! removal before recovery goes on (docs/journal.md, "Which lock files are the batch's own"):
//! the process itself, still exiting; its lock files (and `packed-refs.new`, reftable locks),
//! removed only when provably the batch's; and, after a power cut, loose ref files it renamed
//! into place whose data never reached the disk.

use crate::error::{IoContext, Result};
use crate::record::{Record, RefChange, RefVerb};
use crate::refstore::RefValue;
use crate::repo::Repo;
use crate::state::BatchDir;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// After a power cut, a ref file that git renamed into place can be empty or cut short: the
/// rename reached the disk and the data did not (git syncs no ref; a new file gets no help from
/// the file system's rename heuristics). Such a file that our own update-ref made (the rule for
/// locks: made since it started, holding a prefix of the new value, or only zero bytes, which
/// is what a file whose size reached the disk before its data reads as) was meant to hold
/// the new value. It is removed, so that the ref reads as before again (its packed value, or
/// absent), and roll-forward sets it from there. Returns the refs so repaired.
pub fn remove_torn_refs(target: &Repo, record: &Record, batch: &BatchDir) -> Result<Vec<String>> {
    let floor = lock_floor(batch);
    if target.settings.reftable {
        return Ok(Vec::new()); // one rename of tables.list commits a reftable: nothing to tear
    }
    let dirs = target.ref_dirs();
    let mut repaired = Vec::new();
    for r in record.refs.iter().filter(|r| r.via_git && r.verb != RefVerb::Verify) {
        let Some(want) = file_content(&r.new) else {
            continue;
        };
        let path = dirs.base_for(&r.target).join(&r.target);
        let (Ok(meta), Ok(content)) = (std::fs::symlink_metadata(&path), std::fs::read(&path)) else {
            continue;
        };
        let torn = content != want.as_bytes() && cut_short_from(&content, want.as_bytes());
        if meta.is_file() && torn && is_recent(&meta, floor) {
            std::fs::remove_file(&path).io_context(|| format!("cannot remove '{}'", path.display()))?;
            repaired.push(r.target.clone());
        }
    }
    Ok(repaired)
}

/// What git writes into a loose ref (or its lock) for a value; nothing for a deletion.
fn file_content(value: &RefValue) -> Option<String> {
    match value {
        RefValue::Id(id) => Some(format!("{id}\n")),
        RefValue::Symbolic(t) => Some(format!("ref: {t}\n")),
        RefValue::Absent => None,
    }
}

/// Removes lock files that the batch's own (dead) update-ref left. When git said `prepare: ok`,
/// the locks it held then were noted (see [`note_own_locks`]): exactly those files are ours, by
/// inode and mtime, and any other is someone else's, whatever it holds. Without that note (git
/// killed while preparing, a journal of an older git-atomic, a power cut that lost the note), a
/// lock *may* be ours when it is on one of the batch's refs (HEAD too when the batch updates or
/// verifies HEAD's branch, or `packed-refs`), was made since our update-ref started (see
/// [`lock_floor`]), and holds what git's write of the batch's new value may leave (see
/// [`cut_short_from`]: nothing, a prefix, all of it, zeros after a power cut); [`Judge`] then
/// decides by the boot and, failing that, by waiting (see [`settle`]). Any other lock on those
/// refs is reported, never deleted. A `packed-refs.new` that a dead git left while it held
/// `packed-refs.lock` goes with that lock: git creates it exclusively, so a stale one would fail
/// every later rewrite of `packed-refs`, our own roll-forward included. Reftable stacks get the
/// same treatment for `tables.list.lock`.
pub fn remove_own_locks(
    target: &Repo,
    record: &Record,
    batch: &BatchDir,
    committed: bool,
) -> Result<Vec<String>> {
    let judge = Judge::new(batch);
    let mut found = Vec::new();
    for (lock, new_content) in candidates(target, record.refs.iter().filter(|r| r.via_git)) {
        let Some(seen) = Seen::of(&lock) else { continue };
        let owner = judge.loose(&lock, &seen, new_content.as_deref());
        found.push(Found { path: lock, seen, owner, reported: true });
    }
    if target.settings.reftable {
        for lock in reftable_locks(target) {
            let Some(seen) = Seen::of(&lock) else { continue };
            let owner = judge.reftable(&seen);
            let reported = lock.ends_with("tables.list.lock");
            found.push(Found { path: lock, seen, owner, reported });
        }
    }
    settle(&mut found, Duration::from_secs(target.settings.lock_timeout), &batch.id());
    let mut conflicts = Vec::new();
    for f in found {
        // Checked again just before: a lock that changed since it was judged is someone's.
        if f.owner == Owner::Ours && Seen::of(&f.path).as_ref() == Some(&f.seen) {
            std::fs::remove_file(&f.path).io_context(|| format!("cannot remove '{}'", f.path.display()))?;
        } else if committed && f.reported {
            conflicts.push(format!("lock file '{}' is held by someone else", f.path.display()));
        }
    }
    let packed_lock = target.common_dir.join("packed-refs.lock");
    let deletes = record.refs.iter().any(|r| r.via_git && r.verb == RefVerb::Delete);
    if deletes && !packed_lock.exists() {
        remove_if_recent(&target.common_dir.join("packed-refs.new"), judge.floor)?;
    }
    Ok(conflicts)
}

/// Whose a lock file on one of the batch's refs is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Left by the batch's dead update-ref: removed.
    Ours,
    /// Another process's, live or dead: left alone (a conflict for a committed batch).
    Theirs,
    /// Either: only waiting tells (see [`settle`]).
    Unsure,
}

/// A lock file found, as it was when judged.
struct Found {
    path: PathBuf,
    seen: Seen,
    owner: Owner,
    /// Whether someone else's is a conflict for a committed batch (a reftable table's lock is not).
    reported: bool,
}

/// A lock file as seen once: which file (inode, mtime) and its size. A git that takes the path
/// again, writes its value or releases the lock changes one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    id: LockId,
    len: u64,
    made: Option<SystemTime>,
}

impl Seen {
    fn of(path: &Path) -> Option<Seen> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(Seen { id: LockId::of(&meta), len: meta.len(), made: meta.modified().ok() })
    }
}

/// Where the batch's latest update-ref ran, by the boot id in its pid file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RanIn {
    ThisBoot,
    EarlierBoot,
    /// A pid file without a (whole) boot id: an older git-atomic, or cut short by a power cut.
    UnknownBoot,
    /// No pid file: no update-ref was told to take a lock for the batch, in this boot at least
    /// (the file is written before; a power cut may have lost it).
    Nowhere,
}

/// What recovery knows of the batch's latest update-ref, to judge lock files by (see
/// docs/journal.md, "Which lock files are the batch's own").
struct Judge {
    floor: Option<SystemTime>,
    noted: Option<Vec<LockId>>,
    ran_in: RanIn,
    began: Option<SystemTime>,
    /// The batch's latest update-ref ended by itself (its trace says so): it released every
    /// lock it took, so none left on the batch's refs is its.
    exited: bool,
}

impl Judge {
    fn new(batch: &BatchDir) -> Judge {
        let pid_file = std::fs::read_to_string(batch.update_ref_pid()).ok();
        let ran_in = match pid_file.as_deref().map(update_ref_boot) {
            None => RanIn::Nowhere,
            Some(Some(boot)) if boot == crate::boot::id() => RanIn::ThisBoot,
            Some(Some(_)) => RanIn::EarlierBoot,
            Some(None) => RanIn::UnknownBoot,
        };
        let exited = pid_file.as_deref().is_some_and(|pid_file| update_ref_exited(batch, pid_file));
        Judge {
            floor: lock_floor(batch),
            noted: noted_locks(batch),
            ran_in,
            began: crate::boot::began(),
            exited,
        }
    }

    /// A lock of a loose ref, HEAD's reflog or `packed-refs`, where git would write `new_content`:
    /// with a whole note, ours exactly when noted.
    fn loose(&self, lock: &Path, seen: &Seen, new_content: Option<&str>) -> Owner {
        if let Some(ids) = &self.noted {
            return if ids.contains(&seen.id) { Owner::Ours } else { Owner::Theirs };
        }
        // git writes a lock's id and its newline in two writes: a kill between them leaves
        // a prefix of the new value, which is as much ours as the whole of it.
        let content = std::fs::read(lock).unwrap_or_default();
        let like_ours = cut_short_from(&content, new_content.unwrap_or("").as_bytes());
        self.unnoted(seen, like_ours && made_since(seen, self.floor))
    }

    /// A lock of a reftable stack: git locks the stack again after its commit, for
    /// auto-compaction (`tables.list.lock` and `<table>.ref.lock`, new files made after the note),
    /// so a kill there leaves locks the note cannot name: they are judged as if unnoted.
    fn reftable(&self, seen: &Seen) -> Owner {
        if self.noted.as_ref().is_some_and(|ids| ids.contains(&seen.id)) {
            return Owner::Ours;
        }
        self.unnoted(seen, made_since(seen, self.floor))
    }

    /// A lock that no note names, `like_ours` when it is what our update-ref may have left. Made
    /// before this boot, it is stale whoever made it; made since, it cannot be that of an
    /// update-ref of an earlier boot, nor of one never started; otherwise only time tells.
    fn unnoted(&self, seen: &Seen, like_ours: bool) -> Owner {
        if !like_ours {
            return Owner::Theirs;
        }
        if let (Some(made), Some(began)) = (seen.made, self.began)
            && made < began
        {
            return Owner::Ours;
        }
        if self.exited {
            return Owner::Theirs;
        }
        match self.ran_in {
            RanIn::ThisBoot | RanIn::UnknownBoot => Owner::Unsure,
            RanIn::EarlierBoot | RanIn::Nowhere => Owner::Theirs,
        }
    }
}

/// Whether the update-ref named by the pid file ended by itself, by its trace2 events (see
/// [`BatchDir::update_ref_trace`]). git removes its lock files at exit and on a catchable signal
/// (SIGPIPE when apply died before reading `prepare: ok`), with handlers registered at its first
/// lock, after trace2's: so they run first, and an `atexit` or `signal` event comes after the
/// locks are gone, whether git committed, aborted (at the end of its input) or died of an
/// error. A git killed by SIGKILL, or by a power cut, writes neither. The first event is the
/// update-ref's own (children such as hooks append theirs later, under their own session ids),
/// and its session id ends in its pid.
fn update_ref_exited(batch: &BatchDir, pid_file: &str) -> bool {
    let Some(pid) = update_ref_pid(pid_file) else { return false };
    let Ok(trace) = std::fs::read_to_string(batch.update_ref_trace()) else { return false };
    let event = |line: &str| -> Option<(String, String)> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        Some((value.get("event")?.as_str()?.to_string(), value.get("sid")?.as_str()?.to_string()))
    };
    let mut lines = trace.lines();
    let Some((_, sid)) = lines.next().and_then(event) else { return false };
    let own = sid.rsplit('/').next().is_some_and(|last| last.ends_with(&format!("-P{pid:08x}")));
    own && lines.filter_map(event).any(|(name, of)| (name == "atexit" || name == "signal") && of == sid)
}

/// The pid on the pid file's first line (`<pid> <boot id>`, or `<pid>` alone from an older
/// git-atomic; a note of the locks may follow, see [`note_own_locks`]).
fn update_ref_pid(pid_file: &str) -> Option<u32> {
    pid_file.split_whitespace().next()?.parse().ok()
}

/// The boot id on the pid file's first line (`<pid> <boot id>`), if whole.
fn update_ref_boot(pid_file: &str) -> Option<&str> {
    let first = pid_file.split('\n').next()?;
    let (_pid, boot) = first.split_once(' ')?;
    let uuid = boot.len() == 36 && boot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    uuid.then_some(boot)
}

/// Decides the locks that only time tells apart: left by the batch's update-ref, dead, or held
/// by a live git, which holds a lock only while it works (taking, writing or releasing it changes
/// the file: [`Seen`]). One that stays as it was until it is `patience` old (by its mtime), or
/// was watched that long, is taken for the dead git's; one that changes is someone else's.
fn settle(found: &mut [Found], patience: Duration, batch: &str) {
    let started = Instant::now();
    let mut told = false;
    loop {
        let mut waiting = None;
        for f in found.iter_mut().filter(|f| f.owner == Owner::Unsure) {
            let old = |made: SystemTime| made.elapsed().is_ok_and(|age| age >= patience);
            f.owner = match Seen::of(&f.path) {
                Some(now) if now != f.seen => Owner::Theirs,
                None => Owner::Theirs,
                Some(_) if f.seen.made.is_some_and(old) || started.elapsed() >= patience => Owner::Ours,
                Some(_) => {
                    waiting = Some(f.path.clone());
                    Owner::Unsure
                }
            };
        }
        let Some(lock) = waiting else { return };
        if !told {
            eprintln!(
                "git atomic: waiting up to {}s for '{}': batch {batch}'s dead git left it, or a live git holds it",
                patience.as_secs(),
                lock.display()
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lock files git may take for `refs` (the changes it was sent), each with what git writes
/// into it (nothing for HEAD's reflog lock and `packed-refs.lock`).
fn candidates<'a>(
    target: &Repo,
    refs: impl Iterator<Item = &'a RefChange> + Clone,
) -> Vec<(PathBuf, Option<String>)> {
    let dirs = target.ref_dirs();
    let mut candidates: Vec<(PathBuf, Option<String>)> = Vec::new();
    for r in refs.clone() {
        let content = file_content(&r.new);
        for name in [&r.name, &r.target] {
            candidates.push((dirs.base_for(name).join(format!("{name}.lock")), content.clone()));
        }
    }
    if locks_head(target, refs.clone()) {
        // git locks HEAD as well, to log the change in HEAD's reflog; the lock stays empty.
        candidates.push((target.git_dir.join("HEAD.lock"), None));
    }
    if refs.clone().any(|r| r.verb == RefVerb::Delete) {
        candidates.push((target.common_dir.join("packed-refs.lock"), None));
    }
    // Stable sort and dedup keep the first candidate of a path: a symref entry's own content.
    candidates.sort_by(|a, b| a.0.cmp(&b.0));
    candidates.dedup_by(|a, b| a.0 == b.0);
    candidates
}

/// Notes which lock files are the batch's, once its update-ref has said `prepare: ok` for
/// `refs`: git holds every lock of theirs then, so no other process can hold those paths, and a
/// lock there made since the floor, no longer than what git writes, is ours. Each is noted by
/// device, inode and mtime ([`LockId`]), so that recovery removes exactly these files and takes
/// any other lock, made after git released ours, for someone else's. The note is appended to
/// `update-ref.pid` (no new file: a new inode is the dearest part of a small apply), whose mtime,
/// the floor, is kept; it is not synced (see docs/journal.md).
pub fn note_own_locks<'a>(
    target: &Repo,
    refs: impl Iterator<Item = &'a RefChange> + Clone,
    batch: &BatchDir,
) -> Result<()> {
    use std::fmt::Write as _;
    let floor = lock_floor(batch);
    let mut note = String::from("\n");
    let mut count = 0;
    let mut locks: Vec<(PathBuf, usize)> =
        candidates(target, refs).into_iter().map(|(p, c)| (p, c.map_or(0, |c| c.len()))).collect();
    if target.settings.reftable {
        locks.extend(reftable_locks(target).into_iter().map(|p| (p, usize::MAX)));
    }
    for (lock, longest) in locks {
        let Ok(meta) = std::fs::symlink_metadata(&lock) else { continue };
        if is_recent(&meta, floor) && meta.len() <= longest as u64 {
            let id = LockId::of(&meta);
            let _ = writeln!(note, "lock {} {} {} {}", id.dev, id.ino, id.mtime, id.mtime_nsec);
            count += 1;
        }
    }
    let _ = writeln!(note, "end {count}");
    append_note(batch, &note)
}

/// Notes that the batch's latest update-ref holds no lock: it refused to prepare and released
/// whatever it had taken. A later recovery then takes every lock on the batch's refs for
/// someone else's, as after [`note_own_locks`].
pub fn note_no_locks(batch: &BatchDir) -> Result<()> {
    append_note(batch, "\nend 0\n")
}

/// Appends a note to `update-ref.pid`, keeping its mtime (the floor).
fn append_note(batch: &BatchDir, note: &str) -> Result<()> {
    let pid_file = batch.update_ref_pid();
    let cannot =
        |e: std::io::Error| crate::error::Error::fatal(format!("cannot write '{}': {e}", pid_file.display()));
    let mut file = std::fs::OpenOptions::new().append(true).open(&pid_file).map_err(cannot)?;
    let made = file.metadata().and_then(|m| m.modified()).map_err(cannot)?;
    std::io::Write::write_all(&mut file, note.as_bytes()).map_err(cannot)?;
    file.set_modified(made).map_err(cannot)
}

/// A lock file as git made it: its inode (device and number) and its mtime to the nanosecond.
/// A lock that git removed and another process made again is another inode; should the number be
/// reused, its mtime is later (file times share the kernel's clock; see docs/journal.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LockId {
    dev: u64,
    ino: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl LockId {
    fn of(meta: &std::fs::Metadata) -> LockId {
        use std::os::unix::fs::MetadataExt;
        LockId { dev: meta.dev(), ino: meta.ino(), mtime: meta.mtime(), mtime_nsec: meta.mtime_nsec() }
    }

    fn parse(line: &str) -> Option<LockId> {
        let mut f = line.strip_prefix("lock ")?.split(' ');
        let mut next = || f.next()?.parse::<i128>().ok();
        let (dev, ino, mtime, mtime_nsec) = (next()?, next()?, next()?, next()?);
        Some(LockId {
            dev: dev.try_into().ok()?,
            ino: ino.try_into().ok()?,
            mtime: mtime.try_into().ok()?,
            mtime_nsec: mtime_nsec.try_into().ok()?,
        })
    }
}

/// The locks noted by [`note_own_locks`], or nothing when there is no whole note: git never
/// said `prepare: ok`, an older git-atomic wrote the file, or a power cut cut it short (a note
/// counts its lines at its end, so a prefix or zeros never read as a shorter one).
fn noted_locks(batch: &BatchDir) -> Option<Vec<LockId>> {
    let text = std::fs::read_to_string(batch.update_ref_pid()).ok()?;
    let (_pid, note) = text.split_once('\n')?;
    let mut lines: Vec<&str> = note.strip_suffix('\n')?.split('\n').collect();
    let count: usize = lines.pop()?.strip_prefix("end ")?.parse().ok()?;
    let ids = lines.into_iter().map(LockId::parse).collect::<Option<Vec<_>>>()?;
    (ids.len() == count).then_some(ids)
}

/// The lock files in the reftable stacks a batch's update-ref may have locked: the shared one
/// and the worktree's own (HEAD and other per-worktree refs). A stale `tables.list.lock` fails
/// every later ref update (NOTES-git.md); a stale `<table>.ref.lock`, left by a kill during
/// auto-compaction, stops that table from ever being compacted. They hold table names, not
/// values: only their age says they are ours.
fn reftable_locks(target: &Repo) -> Vec<PathBuf> {
    let mut stacks = vec![target.common_dir.join("reftable"), target.git_dir.join("reftable")];
    stacks.dedup();
    let mut locks = Vec::new();
    for stack in stacks {
        let Ok(entries) = std::fs::read_dir(&stack) else { continue };
        locks.extend(
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "lock")),
        );
    }
    locks
}

/// Whether git locks HEAD for the batch: it does for any update of the branch HEAD points at,
/// a `verify` included (git logs every such update in HEAD's reflog as well).
fn locks_head<'a>(target: &Repo, mut refs: impl Iterator<Item = &'a RefChange>) -> bool {
    let head = std::fs::read_to_string(target.git_dir.join("HEAD")).unwrap_or_default();
    let Some(branch) = head.strip_prefix("ref: ").map(str::trim_end) else {
        return false;
    };
    refs.any(|r| r.target == branch)
}

/// Removes a file of git's that is as recent as our update-ref (see [`lock_floor`]); whether it
/// did. For `packed-refs.new`: with no `packed-refs.lock` left, no live git is writing it.
fn remove_if_recent(path: &Path, floor: Option<SystemTime>) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if is_recent(&meta, floor) => {
            std::fs::remove_file(path).io_context(|| format!("cannot remove '{}'", path.display()))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The time from which a lock on the batch's refs can be ours: when the batch's latest
/// update-ref was started, which the mtime of its pid file tells (it is written before git is
/// told to take any lock, by apply and by every recovery alike; a recovery removes the locks of
/// an earlier update-ref before it starts its own). Without a pid file no update-ref ever ran
/// for the batch, or a power cut lost the file (it is not synced): the journal's creation time
/// then serves, durable since barrier 1. Its mtime cannot serve: appending the commit record
/// moves it past the locks update-ref took at prepare, which would make every lock left by a
/// kill after the commit point look foreign and block roll-forward.
fn lock_floor(batch: &BatchDir) -> Option<SystemTime> {
    if let Ok(time) = std::fs::metadata(batch.update_ref_pid()).and_then(|m| m.modified()) {
        return Some(time);
    }
    let meta = std::fs::metadata(batch.journal()).ok()?;
    meta.created().or_else(|_| meta.modified()).ok()
}

/// Whether a file holds what writing `want` may leave when cut short: a prefix of it, followed by
/// zeros up to at most its length (all of it, part of it, or only zeros). The zeros come from
/// power cuts: ext4 can keep a new file's size without its data (an unwritten extent reads as
/// zeros), which the power-cut test saw for lock files once the staged contents' barrier ran
/// while git was taking its locks. Another value differs in a byte that is not zero.
fn cut_short_from(content: &[u8], want: &[u8]) -> bool {
    let written = content.iter().position(|&b| b == 0).unwrap_or(content.len());
    content.len() <= want.len()
        && want.starts_with(&content[..written])
        && content[written..].iter().all(|&b| b == 0)
}

/// Whether a lock file was made at or after `floor`, as [`is_recent`].
fn made_since(seen: &Seen, floor: Option<SystemTime>) -> bool {
    matches!((floor, seen.made), (Some(floor), Some(made)) if made >= floor)
}

/// Whether a file was made at or after `floor` (file times share the kernel's clock).
fn is_recent(meta: &std::fs::Metadata, floor: Option<SystemTime>) -> bool {
    match (floor, meta.modified()) {
        (Some(floor), Ok(made)) => made >= floor,
        _ => false,
    }
}

/// Waits (briefly) for an `update-ref` of this batch that outlived its parent to finish aborting
/// or committing, so that recovery never races git over the same lock files.
pub fn wait_for_orphan_update_ref(batch: &BatchDir) {
    let Some(pid) = std::fs::read_to_string(batch.update_ref_pid()).ok().and_then(|f| update_ref_pid(&f))
    else {
        return;
    };
    let environ = PathBuf::from(format!("/proc/{pid}/environ"));
    let marker = format!("{}={}", crate::git::OWN_TRANSACTION_ENV, batch.id());
    // A 100,000-ref commit takes git over 10 s here; two minutes covers far larger ones.
    for _ in 0..12_000 {
        let Ok(env) = std::fs::read(&environ) else {
            return;
        };
        if !env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::{cut_short_from, update_ref_boot};

    #[test]
    fn the_boot_id_counts_only_when_whole() {
        let boot = "6f1c2a9e-63c1-4f55-9a0e-2b7d1c1e8f00";
        assert_eq!(update_ref_boot(&format!("4242 {boot}")), Some(boot));
        assert_eq!(update_ref_boot(&format!("4242 {boot}\nlock 1 2 3 4\nend 1\n")), Some(boot));
        assert_eq!(update_ref_boot("4242"), None, "an older git-atomic's pid file");
        assert_eq!(update_ref_boot("4242 6f1c2a9e-63c1"), None, "cut short");
        assert_eq!(update_ref_boot(&"\0".repeat(41)), None, "zeros after a power cut");
        assert_eq!(update_ref_boot(&format!("4242 {}", "\0".repeat(36))), None);
    }

    #[test]
    fn a_write_cut_short_leaves_a_prefix_or_zeros_never_other_bytes() {
        let want = b"690d7c21f749b5ccd58440180f8a3b969723a3dc\n";
        assert!(cut_short_from(b"", want));
        assert!(cut_short_from(&want[..40], want));
        assert!(cut_short_from(want, want));
        assert!(cut_short_from(&[0u8; 41], want), "size on disk, data not: zeros");
        assert!(cut_short_from(&[0u8; 12], want));
        assert!(!cut_short_from(&[0u8; 42], want), "longer than anything we wrote");
        assert!(!cut_short_from(b"fcc11e5bc3cca716d332ede9078dd354a539e3e2\n", want), "another value");
        assert!(
            cut_short_from(b"690d7c21f749b5ccd58440180f8a3b969723a3dc\0", want),
            "the newline's size, not its data"
        );
        assert!(!cut_short_from(b"690e\0\0", want), "another value, then zeros");
        assert!(!cut_short_from(&[0, 0, b'6', b'9'], want), "zeros, then bytes");
        assert!(cut_short_from(b"", b""), "a lock git leaves empty");
        assert!(!cut_short_from(b"x", b""));
    }
}
