//! The `atomic.*` keys of git config (SPEC §4), read through gix plus the `git -c` overrides
//! that gix does not see (`GIT_CONFIG_PARAMETERS`, `GIT_CONFIG_COUNT`).

use crate::error::{Error, Result};

/// What the user configured for this repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `atomic.fsync`: make every step durable; `false` keeps atomicity against process death only.
    pub fsync: bool,
    /// `atomic.lockTimeout`: seconds to wait for another batch, the default of `--wait`.
    pub lock_timeout: u64,
    /// `atomic.logLimit`: completed batches kept for `log` and `undo`.
    pub log_limit: u64,
    /// `atomic.history`: keep a log entry and the pre-images of every batch (for `log`, `undo`).
    pub history: bool,
    /// `extensions.refStorage`: gix misreads reftable, so reads go through git there.
    pub reftable: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { fsync: true, lock_timeout: 10, log_limit: 1000, history: true, reftable: false }
    }
}

impl Settings {
    /// Reads the settings from the repository's config files, then the command-line overrides.
    pub fn load(repo: &gix::Repository) -> Result<Self> {
        let snapshot = repo.config_snapshot();
        let mut settings = Settings::default();
        for key in [
            "atomic.fsync",
            "atomic.lockTimeout",
            "atomic.logLimit",
            "atomic.history",
            "extensions.refStorage",
        ] {
            if let Some(value) = snapshot.string(key) {
                settings.set(key, &value.to_string())?;
            }
        }
        for (key, value) in command_line_overrides() {
            settings.set(&key, &value)?;
        }
        Ok(settings)
    }

    /// Applies one key; unknown keys are ignored, bad values are errors as in git.
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = || Error::fatal(format!("bad config value '{value}' for '{key}'"));
        match key.to_ascii_lowercase().as_str() {
            "atomic.fsync" => self.fsync = parse_bool(value).ok_or_else(bad)?,
            "atomic.locktimeout" => self.lock_timeout = value.trim().parse().map_err(|_| bad())?,
            "atomic.loglimit" => self.log_limit = value.trim().parse().map_err(|_| bad())?,
            "atomic.history" => self.history = parse_bool(value).ok_or_else(bad)?,
            "extensions.refstorage" => self.reftable = value.trim().eq_ignore_ascii_case("reftable"),
            _ => {}
        }
        Ok(())
    }
}

/// git's boolean spellings; a key given without `=` (`git -c atomic.fsync`) means true.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The `-c key=value` pairs git hands to subcommands through the environment, in order.
fn command_line_overrides() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    if let Ok(count) = std::env::var("GIT_CONFIG_COUNT") {
        for i in 0..count.trim().parse::<usize>().unwrap_or(0) {
            if let (Ok(k), Ok(v)) =
                (std::env::var(format!("GIT_CONFIG_KEY_{i}")), std::env::var(format!("GIT_CONFIG_VALUE_{i}")))
            {
                pairs.push((k, v));
            }
        }
    }
    if let Ok(params) = std::env::var("GIT_CONFIG_PARAMETERS") {
        pairs.extend(parse_config_parameters(&params));
    }
    pairs
}

/// Parses git's `'key'='value' 'key2=value2'` quoting (both the new and the pre-2.31 forms).
pub fn parse_config_parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let Some((key, after)) = take_quoted(rest) else {
            break;
        };
        rest = after;
        if let Some(after_eq) = rest.strip_prefix('=') {
            let Some((value, after)) = take_quoted(after_eq) else {
                break;
            };
            pairs.push((key, value));
            rest = after;
        } else {
            match key.split_once('=') {
                Some((k, v)) => pairs.push((k.to_string(), v.to_string())),
                None => pairs.push((key, String::new())),
            }
        }
        rest = rest.trim_start();
    }
    pairs
}

/// Takes one shell single-quoted word (with `'\''` escapes) from the front of `text`.
fn take_quoted(text: &str) -> Option<(String, &str)> {
    let mut rest = text.strip_prefix('\'')?;
    let mut word = String::new();
    loop {
        let end = rest.find('\'')?;
        word.push_str(&rest[..end]);
        rest = &rest[end + 1..];
        match rest.strip_prefix("\\'") {
            Some(after) if after.starts_with('\'') => {
                word.push('\'');
                rest = &after[1..];
            }
            _ => return Some((word, rest)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_of_git_config_parameters() {
        let pairs = parse_config_parameters("'atomic.fsync'='false' 'core.x=1' 'a.b'='it'\\''s'");
        assert_eq!(
            pairs,
            vec![
                ("atomic.fsync".into(), "false".into()),
                ("core.x".into(), "1".into()),
                ("a.b".into(), "it's".into())
            ]
        );
    }

    #[test]
    fn unknown_keys_are_ignored_and_bad_values_refused() {
        let mut s = Settings::default();
        s.set("atomic.unknown", "x").unwrap();
        assert_eq!(s, Settings::default());
        assert!(s.set("atomic.fsync", "maybe").is_err());
        s.set("ATOMIC.FSYNC", "off").unwrap();
        assert!(!s.fsync);
    }
}
