//! The journal file, `atomic/batches/<id>/journal`: its framing, its commit record, and reading
//! it back. Layout (docs/journal.md; the record's types are in record.rs):
//!
//! ```text
//! git-atomic journal 3\n
//! <one line of JSON: the Record>\n
//! crc32 <8 hex digits of the JSON line's bytes>\n
//! commit <id> <8 hex digits of crc32("commit <id>")>\n     <- appended at the commit point
//! ```
//!
//! A journal whose checksum does not match was torn by a crash while being written: it never
//! reached its barrier, so the batch never passed prepare and it is rolled back. The batch is
//! committed exactly when the commit line is present and intact. Formats 1 and 2 (`git-atomic
//! journal 1`/`2`) are still read.

use crate::durable::Barrier;
use crate::error::{Error, IoContext, Result};
use crate::record::Record;
use crate::state;
use std::io::Write;
use std::path::Path;

/// The header of the format this version writes: 3, since the record holds what the history log
/// needs (`Record::log`).
const HEADER: &str = "git-atomic journal 3\n";
/// Format 2: staged files beside the journal, no history; still read.
const HEADER_V2: &str = "git-atomic journal 2\n";
/// Format 1 kept staged files in a `stage/` subdirectory of the batch; still read, for a batch
/// interrupted under an earlier git-atomic.
const HEADER_V1: &str = "git-atomic journal 1\n";

/// Writes the journal of a batch whose directory exists, and flushes the barrier: afterwards the
/// journal survives power loss (under `atomic.fsync`), and only then may git take ref locks for
/// the batch, so that recovery can always tell their lock files as the batch's own.
pub fn write(record: &Record, path: &Path, barrier: &mut Barrier) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| Error::fatal(format!("cannot write '{}': {e}", path.display()));
    let file = std::fs::File::create(path).io_context(|| format!("cannot create '{}'", path.display()))?;
    // Streamed through the checksum: a 100,000-entry record never exists as one string.
    let mut out = Checksummed { inner: std::io::BufWriter::new(file), crc: crc32fast::Hasher::new() };
    out.inner.write_all(HEADER.as_bytes()).map_err(|e| failed(&e))?;
    serde_json::to_writer(&mut out, record).map_err(|e| failed(&e))?;
    let crc = out.crc.finalize();
    let mut file = out.inner;
    write!(file, "\ncrc32 {crc:08x}\n").and_then(|_| file.flush()).map_err(|e| failed(&e))?;
    drop(file);
    barrier.add(path);
    barrier.flush()
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
pub enum Journal {
    /// Torn, corrupt or empty: the batch never passed its barrier.
    Torn,
    /// Intact; `committed` tells whether the commit record is there.
    Intact { record: Record, committed: bool },
}

/// Reads and checks a journal file; never panics on garbage.
pub fn read(path: &Path) -> Result<Journal> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Journal::Torn),
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

fn parse_journal(bytes: &[u8]) -> Journal {
    let headers = [(HEADER, 3), (HEADER_V2, 2), (HEADER_V1, 1)];
    let Some((rest, version)) =
        headers.iter().find_map(|(h, v)| bytes.strip_prefix(h.as_bytes()).map(|rest| (rest, *v)))
    else {
        return Journal::Torn;
    };
    let mut lines = rest.split_inclusive(|&b| b == b'\n');
    let (Some(body), Some(check)) = (lines.next(), lines.next()) else {
        return Journal::Torn;
    };
    let Some(body) = body.strip_suffix(b"\n") else {
        return Journal::Torn;
    };
    if check != format!("crc32 {:08x}\n", crc32fast::hash(body)).as_bytes() {
        return Journal::Torn;
    }
    let Ok(mut record) = serde_json::from_slice::<Record>(body) else {
        return Journal::Torn;
    };
    // A staged name is a number the batch chose; anything else would name a path elsewhere.
    if !record.puts.iter().all(|p| !p.staged.is_empty() && p.staged.bytes().all(|b| b.is_ascii_digit())) {
        return Journal::Torn;
    }
    if version == 1 {
        record.puts.iter_mut().for_each(|p| p.staged = format!("{}/{}", state::V1_STAGE_DIR, p.staged));
    }
    let committed = lines.next() == Some(commit_line(&record.id).as_bytes());
    Journal::Intact { record, committed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{JournalBlob, JournalPut, Mode};
    use gix::ObjectId;

    fn record() -> Record {
        Record {
            id: "abc".into(),
            message: "m".into(),
            git_dir: "/r/.git".into(),
            work_tree: Some("/r".into()),
            refs: vec![],
            puts: vec![],
            removes: vec![],
            log: Default::default(),
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
        let Journal::Intact { record, .. } = parse_journal(&with_puts(HEADER_V1, "7")) else {
            panic!("torn")
        };
        assert_eq!(record.puts[0].staged, "stage/7");
        let Journal::Intact { record, .. } = parse_journal(&with_puts(HEADER, "7")) else { panic!("torn") };
        assert_eq!(record.puts[0].staged, "7");
    }

    #[test]
    fn a_format_2_journal_reads_as_a_batch_that_keeps_no_history() {
        let mut v2 = with_puts(HEADER_V2, "3");
        let text = String::from_utf8(v2.clone()).unwrap();
        assert!(text.contains(",\"log\":"), "the current record has the log field");
        // A format 2 record has no `log`: strip it and recompute the checksum.
        let body = text.lines().nth(1).unwrap();
        let start = body.find(",\"log\":").unwrap();
        let stripped = format!("{}}}", &body[..start]);
        v2 = format!("{HEADER_V2}{stripped}\ncrc32 {:08x}\n", crc32fast::hash(stripped.as_bytes()))
            .into_bytes();
        let Journal::Intact { record, .. } = parse_journal(&v2) else { panic!("torn") };
        assert!(!record.log.keep && record.log.undoes.is_none());
        assert_eq!(record.puts[0].staged, "3");
    }

    #[test]
    fn a_staged_name_that_is_not_a_number_is_never_trusted() {
        for bad in ["", "../../x", "/etc/passwd", "0/..", "stage/0"] {
            assert!(matches!(parse_journal(&with_puts(HEADER, bad)), Journal::Torn), "{bad:?}");
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_reads_as_torn_or_uncommitted() {
        let mut full = sample();
        full.extend_from_slice(commit_line("abc").as_bytes());
        assert!(matches!(parse_journal(&full), Journal::Intact { committed: true, .. }));
        let uncommitted_len = sample().len();
        for cut in 0..full.len() {
            let read = parse_journal(&full[..cut]);
            match read {
                Journal::Intact { committed, .. } => {
                    assert!(cut >= uncommitted_len && !committed, "cut at {cut}")
                }
                Journal::Torn => assert!(cut < uncommitted_len, "cut at {cut}"),
            }
        }
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x20;
            assert!(!matches!(parse_journal(&bad), Journal::Intact { committed: true, .. }), "flip at {i}");
        }
    }
}
