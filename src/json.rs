//! The `--json` wire shapes (SPEC §3). Editors parse these: fields are only ever added.

use serde::Serialize;

/// The result of `apply`, on success and on failure alike.
#[derive(Debug, Serialize, Default)]
pub struct ApplyResult {
    pub id: Option<String>,
    /// `applied`, `would-apply`, `refused`, `invalid`, `busy`, `interrupted` or `fatal`.
    pub status: &'static str,
    pub refs: Vec<RefLine>,
    pub files: Vec<FileLine>,
    pub error: Option<ErrorLine>,
    /// Every failed precondition of a refused `--dry-run` (`error` is the first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorLine>,
    /// The failed preconditions after the first, printed after it.
    #[serde(skip)]
    pub more_errors: Vec<crate::error::Error>,
    /// The batch's ref count for the one-line summary; `refs` is only filled for `--json`, as
    /// 100,000 ref lines held through the whole apply would be its largest allocation.
    #[serde(skip)]
    pub ref_count: usize,
}

/// One ref of the result: the ref that changes (after following symbolic refs).
#[derive(Debug, Serialize)]
pub struct RefLine {
    #[serde(rename = "ref")]
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One file entry of the result; `old`/`new` are blob ids.
#[derive(Debug, Serialize)]
pub struct FileLine {
    pub path: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The error of a failed command.
#[derive(Debug, Serialize)]
pub struct ErrorLine {
    pub kind: &'static str,
    pub message: String,
    pub entry: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

impl From<&crate::error::Error> for ErrorLine {
    fn from(e: &crate::error::Error) -> Self {
        ErrorLine {
            kind: e.kind.json_name(),
            message: e.message.clone(),
            entry: e.entry.clone(),
            hints: e.hints.clone(),
        }
    }
}

/// Prints one JSON object on its own line on stdout.
pub fn print<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode JSON: {e}"),
    }
}
