//! SPEC §10's limits on an untrusted batch. Each is refused with exit 2 and a message naming it;
//! the man page's LIMITS section and the README list them.

use crate::error::{Error, Result};

/// The batch file itself (YAML or JSON).
pub const MAX_BATCH_BYTES: u64 = 256 << 20;
/// Entries of `refs:` and `files:` together.
pub const MAX_ENTRIES: usize = 1_000_000;
/// One file's new content (`content`, decoded `base64`, `blob`, `source`).
pub const MAX_CONTENT_BYTES: u64 = 128 << 20;
/// Nesting of YAML/JSON collections (a batch needs 3).
pub const MAX_DEPTH: usize = 32;
/// One mapping key.
pub const MAX_KEY_BYTES: usize = 256;
/// One path or ref name (Linux's PATH_MAX).
pub const MAX_NAME_BYTES: usize = 4096;
/// YAML values held at once outside the streamed entries (an entry has about ten): a batch
/// file of `[1,1,1,…]` would otherwise take 16 times its size in memory.
pub const MAX_HELD_VALUES: usize = 100_000;
/// Values of a whole JSON batch, which is read at once (a ref entry has four).
pub const MAX_JSON_VALUES: usize = 8 * MAX_ENTRIES;

/// Refuses a batch file larger than [`MAX_BATCH_BYTES`].
pub fn check_batch_size(bytes: u64) -> Result<()> {
    if bytes > MAX_BATCH_BYTES {
        return Err(Error::invalid(format!(
            "the batch is larger than the limit of {}",
            mib(MAX_BATCH_BYTES)
        ))
        .hint("split it into several batches"));
    }
    Ok(())
}

/// Refuses one content larger than [`MAX_CONTENT_BYTES`].
pub fn check_content_size(bytes: u64) -> Result<()> {
    if bytes > MAX_CONTENT_BYTES {
        return Err(Error::invalid(format!(
            "the content is {bytes} bytes, more than the limit of {} for one file",
            mib(MAX_CONTENT_BYTES)
        )));
    }
    Ok(())
}

/// Refuses a path or ref name longer than [`MAX_NAME_BYTES`].
pub fn check_name_length(name: &str) -> Result<()> {
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "a name of {} bytes is longer than the limit of {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}
