//! Stage 5: the journal, `<common dir>/atomic/batches/<id>/journal`, and its commit record.
//! Layout (docs/journal.md):
//!
//! ```text
//! git-atomic journal 1\n
//! <one line of JSON: the Record>\n
//! crc32 <8 hex digits of the JSON line's bytes>\n
//! commit <id> <8 hex digits of crc32("commit <id>")>\n     <- appended at the commit point
//! ```
//!
//! A journal whose checksum does not match was torn by a crash while being written: it never
//! reached its barrier, so the batch never passed prepare and it is rolled back. The batch is
//! committed exactly when the commit line is present and intact.

use crate::check::FileState;
use crate::durable::Barrier;
use crate::error::{Error, IoContext, Result};
use crate::parse::Mode;
use crate::refstore::RefValue;
use crate::stage::{self, Planned};
use crate::validate::RefChange;
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const HEADER: &str = "git-atomic journal 2\n";
/// Version 1 kept staged files in a `stage/` subdirectory of the batch; still read, for a batch
/// interrupted under an earlier git-atomic.
const HEADER_V1: &str = "git-atomic journal 1\n";
pub const JOURNAL_FILE: &str = "journal";

/// Everything recovery needs to roll the batch back or forward, without the batch file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub message: String,
    /// The worktree's git dir: per-worktree refs (`HEAD`) are read and written through it.
    pub git_dir: PathBuf,
    pub work_tree: Option<PathBuf>,
    pub refs: Vec<JournalRef>,
    pub puts: Vec<JournalPut>,
    pub removes: Vec<JournalRemove>,
}

/// A ref change as journaled: the validated change itself, moved (not copied) into the record,
/// so that a 100,000-ref batch is held once. Values are written `absent`, a hex id, or `ref:<name>`.
pub type JournalRef = RefChange;

/// A file put as journaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalPut {
    pub path: String,
    pub staged: String,
    pub old: Option<JournalBlob>,
    pub new: JournalBlob,
}

/// A file removal as journaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalRemove {
    pub path: String,
    pub old: JournalBlob,
}

/// A blob id and a git mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalBlob {
    #[serde(with = "hex_id")]
    pub blob: ObjectId,
    pub mode: Mode,
}

impl JournalBlob {
    /// The journal form of a file state (`None` for absent).
    pub fn of(state: FileState) -> Option<Self> {
        match state {
            FileState::Absent => None,
            FileState::Present { blob, mode } => Some(JournalBlob { blob, mode }),
        }
    }

    /// The file state a journal entry records.
    pub fn state(this: Option<Self>) -> FileState {
        match this {
            None => FileState::Absent,
            Some(b) => FileState::Present { blob: b.blob, mode: b.mode },
        }
    }
}

/// Object ids in the journal are hex strings, readable with `cat`.
mod hex_id {
    use gix::ObjectId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        let text = String::deserialize(d)?;
        ObjectId::from_hex(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Ref values in the journal are strings, readable with `cat`: `absent`, a hex id, `ref:<name>`.
impl Serialize for RefValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            RefValue::Absent => s.serialize_str("absent"),
            RefValue::Id(id) => s.collect_str(id),
            RefValue::Symbolic(target) => s.collect_str(&format_args!("ref:{target}")),
        }
    }
}

impl<'de> Deserialize<'de> for RefValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "absent" {
            return Ok(RefValue::Absent);
        }
        if let Some(target) = text.strip_prefix("ref:") {
            return Ok(RefValue::Symbolic(target.to_string()));
        }
        ObjectId::from_hex(text.as_bytes())
            .map(RefValue::Id)
            .map_err(|_| serde::de::Error::custom(format!("bad ref value '{text}'")))
    }
}

/// A planned batch whose journal is durable: recovery can now undo or finish it.
#[must_use = "a journaled batch must be prepared or rolled back"]
pub struct Journaled {
    pub planned: Planned,
    pub record: Record,
    pub path: PathBuf,
}

/// Builds the record of a planned batch; the ref changes move from the batch into the record.
pub fn record_of(planned: &mut Planned, git_dir: &Path) -> Record {
    let refs = std::mem::take(&mut planned.checked.batch.refs);
    let checked = &planned.checked;
    Record {
        id: checked.batch.id.clone(),
        message: checked.batch.message.clone(),
        git_dir: git_dir.to_path_buf(),
        work_tree: checked.work_tree.clone(),
        refs,
        puts: planned
            .puts
            .iter()
            .map(|p| JournalPut {
                path: p.path.clone(),
                staged: p.staged.clone(),
                old: JournalBlob::of(p.old),
                new: JournalBlob::of(p.new).expect("a put always has new content"),
            })
            .collect(),
        removes: checked
            .removes
            .iter()
            .map(|r| JournalRemove {
                path: r.path.clone(),
                old: JournalBlob::of(r.old).expect("only present files are removed"),
            })
            .collect(),
    }
}

/// Creates the batch directory, writes the journal and flushes the barrier: afterwards the
/// journal survives power loss (under `atomic.fsync`), and only then may git take ref locks for
/// us, so that recovery can always tell their lock files as the batch's own.
pub fn write(mut planned: Planned, git_dir: &Path, barrier: &mut Barrier) -> Result<Journaled> {
    stage::create_batch_dir(&planned.batch_dir, barrier)?;
    let record = record_of(&mut planned, git_dir);
    let path = planned.batch_dir.join(JOURNAL_FILE);
    let failed = |e: &dyn std::fmt::Display| Error::fatal(format!("cannot write '{}': {e}", path.display()));
    let file = std::fs::File::create(&path).io_context(|| format!("cannot create '{}'", path.display()))?;
    // Streamed through the checksum: a 100,000-entry record never exists as one string.
    let mut out = Checksummed { inner: std::io::BufWriter::new(file), crc: crc32fast::Hasher::new() };
    out.inner.write_all(HEADER.as_bytes()).map_err(|e| failed(&e))?;
    serde_json::to_writer(&mut out, &record).map_err(|e| failed(&e))?;
    let crc = out.crc.finalize();
    let mut file = out.inner;
    write!(file, "\ncrc32 {crc:08x}\n").and_then(|_| file.flush()).map_err(|e| failed(&e))?;
    drop(file);
    barrier.add(&path);
    barrier.flush()?;
    Ok(Journaled { planned, record, path })
}

/// A writer that feeds everything it passes on into a CRC-32.
struct Checksummed<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The commit record's exact bytes for a batch id.
fn commit_line(id: &str) -> String {
    let body = format!("commit {id}");
    format!("{body} {:08x}\n", crc32fast::hash(body.as_bytes()))
}

/// Appends the commit record and makes it durable: the commit point. Before this returns the
/// batch rolls back after a crash; once it has, the batch rolls forward.
pub fn append_commit_record(path: &Path, id: &str, fsync: bool) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .io_context(|| format!("cannot open '{}'", path.display()))?;
    file.write_all(commit_line(id).as_bytes()).io_context(|| format!("cannot write '{}'", path.display()))?;
    if fsync {
        file.sync_data().io_context(|| format!("cannot make '{}' durable", path.display()))?;
    }
    Ok(())
}

/// What a journal on disk says.
#[derive(Debug)]
pub enum Read {
    /// Torn, corrupt or empty: the batch never passed its barrier.
    Torn,
    /// Intact; `committed` tells whether the commit record is there.
    Intact { record: Record, committed: bool },
}

/// Reads and checks a journal file; never panics on garbage.
pub fn read(path: &Path) -> Result<Read> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::Torn),
        Err(e) => {
            return Err(Error::fatal(format!("cannot read '{}': {e}", path.display())));
        }
    };
    Ok(parse_journal(&bytes))
}

/// Whether the journal holds the intact commit record of batch `id`, whatever else it holds.
/// [`read`] calls a journal with a damaged record torn, which is right for a crash while it was
/// written (before the commit point); but a damaged journal that also holds its commit record
/// was damaged after the commit point (a disk error, an edit), when refs and files may already
/// have moved: it can be neither rolled back nor finished.
pub fn has_commit_record(path: &Path, id: &str) -> bool {
    let line = commit_line(id);
    std::fs::read(path)
        .is_ok_and(|bytes| bytes.split_inclusive(|&b| b == b'\n').any(|l| l == line.as_bytes()))
}

fn parse_journal(bytes: &[u8]) -> Read {
    let (rest, version) =
        match (bytes.strip_prefix(HEADER.as_bytes()), bytes.strip_prefix(HEADER_V1.as_bytes())) {
            (Some(rest), _) => (rest, 2),
            (None, Some(rest)) => (rest, 1),
            (None, None) => return Read::Torn,
        };
    let mut lines = rest.split_inclusive(|&b| b == b'\n');
    let (Some(body), Some(check)) = (lines.next(), lines.next()) else {
        return Read::Torn;
    };
    let Some(body) = body.strip_suffix(b"\n") else {
        return Read::Torn;
    };
    if check != format!("crc32 {:08x}\n", crc32fast::hash(body)).as_bytes() {
        return Read::Torn;
    }
    let Ok(mut record) = serde_json::from_slice::<Record>(body) else {
        return Read::Torn;
    };
    // A staged name is a number the batch chose; anything else would name a path elsewhere.
    if !record.puts.iter().all(|p| !p.staged.is_empty() && p.staged.bytes().all(|b| b.is_ascii_digit())) {
        return Read::Torn;
    }
    if version == 1 {
        record.puts.iter_mut().for_each(|p| p.staged = format!("stage/{}", p.staged));
    }
    let committed = lines.next() == Some(commit_line(&record.id).as_bytes());
    Read::Intact { record, committed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            id: "abc".into(),
            message: "m".into(),
            git_dir: "/r/.git".into(),
            work_tree: Some("/r".into()),
            refs: vec![],
            puts: vec![],
            removes: vec![],
        }
    }

    fn sample() -> Vec<u8> {
        let record = record();
        let body = serde_json::to_string(&record).unwrap();
        format!("{HEADER}{body}\ncrc32 {:08x}\n", crc32fast::hash(body.as_bytes())).into_bytes()
    }

    fn with_puts(header: &str, staged: &str) -> Vec<u8> {
        let blob = JournalBlob { blob: ObjectId::empty_blob(gix::hash::Kind::Sha1), mode: Mode::Regular };
        let put = JournalPut { path: "a".into(), staged: staged.into(), old: None, new: blob };
        let record = Record { puts: vec![put], ..record() };
        let body = serde_json::to_string(&record).unwrap();
        format!("{header}{body}\ncrc32 {:08x}\n", crc32fast::hash(body.as_bytes())).into_bytes()
    }

    #[test]
    fn a_format_1_journal_names_its_staged_files_under_stage() {
        let Read::Intact { record, .. } = parse_journal(&with_puts(HEADER_V1, "7")) else { panic!("torn") };
        assert_eq!(record.puts[0].staged, "stage/7");
        let Read::Intact { record, .. } = parse_journal(&with_puts(HEADER, "7")) else { panic!("torn") };
        assert_eq!(record.puts[0].staged, "7");
    }

    #[test]
    fn a_staged_name_that_is_not_a_number_is_never_trusted() {
        for bad in ["", "../../x", "/etc/passwd", "0/..", "stage/0"] {
            assert!(matches!(parse_journal(&with_puts(HEADER, bad)), Read::Torn), "{bad:?}");
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_reads_as_torn_or_uncommitted() {
        let mut full = sample();
        full.extend_from_slice(commit_line("abc").as_bytes());
        assert!(matches!(parse_journal(&full), Read::Intact { committed: true, .. }));
        let uncommitted_len = sample().len();
        for cut in 0..full.len() {
            let read = parse_journal(&full[..cut]);
            match read {
                Read::Intact { committed, .. } => {
                    assert!(cut >= uncommitted_len && !committed, "cut at {cut}")
                }
                Read::Torn => assert!(cut < uncommitted_len, "cut at {cut}"),
            }
        }
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x20;
            assert!(!matches!(parse_journal(&bad), Read::Intact { committed: true, .. }), "flip at {i}");
        }
    }
}
