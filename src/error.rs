//! One error type for every command, so that the exit status, the `error:`/`hint:` lines, and
//! the `--json` error kind and status are decided in one place (SPEC §3).

use std::fmt;

/// What went wrong, in the terms of SPEC §3's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A precondition failed or something changed under us; nothing was changed (exit 1).
    Refused,
    /// The batch or the command line is invalid; nothing was changed (exit 2).
    Invalid,
    /// An interrupted batch needs attention that recovery could not give it (exit 3).
    Interrupted,
    /// Another batch held the lock past `--wait` (exit 4).
    Busy,
    /// Not a git repository, or git (or the file system) failed us (exit 128).
    Fatal,
}

impl Kind {
    /// The process exit status SPEC §3 assigns to this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Refused => 1,
            Kind::Invalid => 2,
            Kind::Interrupted => 3,
            Kind::Busy => 4,
            Kind::Fatal => 128,
        }
    }

    /// The `error.kind` string of the `--json` result; editors switch on it.
    pub fn json_name(self) -> &'static str {
        match self {
            Kind::Refused => "precondition",
            Kind::Invalid => "invalid",
            Kind::Interrupted => "interrupted",
            Kind::Busy => "busy",
            Kind::Fatal => "fatal",
        }
    }

    /// The `status` string of a failed `apply --json` (`refused` where `error.kind` says
    /// `precondition`: SPEC §3 names the status after the outcome, the kind after the cause).
    pub fn json_status(self) -> &'static str {
        match self {
            Kind::Refused => "refused",
            Kind::Invalid => "invalid",
            Kind::Interrupted => "interrupted",
            Kind::Busy => "busy",
            Kind::Fatal => "fatal",
        }
    }
}

/// A user-facing failure: a kind, the entry it concerns, a message and hints.
#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    /// The batch entry the error is about, as `refs[2]` or `files[0] src/a.rs`.
    pub entry: Option<String>,
    pub message: String,
    pub hints: Vec<String>,
}

/// Results of every fallible step that can end a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error of `kind`; the message is lower case, without a final period, as in git.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, entry: None, message: message.into(), hints: Vec::new() }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, message)
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(Kind::Fatal, message)
    }

    /// Names the batch entry the error is about.
    pub fn at(mut self, entry: impl Into<String>) -> Self {
        self.entry = Some(entry.into());
        self
    }

    /// Adds a `hint:` line that tells the user what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Writes the error the way git does: `error: <entry>: <message>` then `hint:` lines.
    pub fn print(&self) {
        eprintln!("error: {self}");
        for hint in &self.hints {
            eprintln!("hint: {hint}");
        }
    }

    /// Prints the error and returns the exit status that ends the command with it.
    pub fn report(&self) -> i32 {
        self.print();
        self.kind.exit_code()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            Some(entry) => write!(f, "{entry}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

/// An I/O error in words, as git prints `strerror` ("is a directory"), without Rust's
/// " (os error 21)" suffix.
pub fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    let words = match text.rfind(" (os error ") {
        Some(at) if e.raw_os_error().is_some() => &text[..at],
        _ => text.as_str(),
    };
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// I/O failures that end a command are git-style fatal errors naming what failed.
pub trait IoContext<T> {
    /// Turns an I/O error into a fatal [`Error`] saying what we were doing.
    fn io_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::fatal(format!("{}: {e}", what())))
    }
}
