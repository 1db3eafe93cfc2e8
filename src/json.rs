//! The `--json` wire shapes of every command (SPEC §3). Editors parse these: fields are only
//! ever added.

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
    /// `--lsp`: LSP's `ApplyWorkspaceEditResult.applied`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    /// `--lsp`: why the edit was not applied.
    #[serde(rename = "failureReason", skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// `--lsp`: the index of the change that failed (into `documentChanges`, or `changes` in order).
    #[serde(rename = "failedChange", skip_serializing_if = "Option::is_none")]
    pub failed_change: Option<usize>,
    /// A cross-repository batch (SPEC §9): each repository's refs and files (`.`: this one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepositoryLine>,
    /// Old files that an edit changed after the recheck: their content is kept in the log.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<crate::history::Kept>,
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

/// One repository's part of a cross-repository batch, by its path in the batch.
#[derive(Debug, Serialize)]
pub struct RepositoryLine {
    pub path: String,
    pub refs: Vec<RefLine>,
    pub files: Vec<FileLine>,
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

/// The result of `recover`: what happened to each batch, and the error that ends the command.
#[derive(Debug, Serialize, Default)]
pub struct RecoverResult {
    pub recovered: Vec<RecoveredLine>,
    pub error: Option<ErrorLine>,
}

/// One batch that `recover` handled.
#[derive(Debug, Serialize)]
pub struct RecoveredLine {
    pub id: String,
    /// `rolled-back`, `rolled-forward`, `conflict` or `abandoned`.
    pub action: &'static str,
    pub conflicts: Vec<String>,
}

/// The result of `status`.
#[derive(Debug, Serialize)]
pub struct StatusResult {
    pub batches: Vec<BatchLine>,
    /// Whether the reference-transaction hook is installed (`None` when it cannot be told).
    pub hook_installed: Option<bool>,
    /// Batches prepared for two-phase commit, waiting for `commit` or `abort` (XA's recover).
    pub prepared: Vec<PreparedLine>,
}

/// One prepared batch as `status` sees it (SPEC §9).
#[derive(Debug, Serialize)]
pub struct PreparedLine {
    pub xid: String,
    pub id: String,
    /// When it was prepared, in seconds since the Unix epoch.
    pub since: u64,
    pub refs: Vec<String>,
    pub files: Vec<String>,
}

/// One batch directory as `status` sees it.
#[derive(Debug, Serialize)]
pub struct BatchLine {
    pub id: String,
    /// `in-flight` (its owner is alive), `interrupted` (will be recovered), `conflict` (exit 3).
    pub state: &'static str,
    /// Whether the commit record was written: recovery rolls forward when true.
    pub committed: bool,
    pub message: Option<String>,
    pub refs: Vec<String>,
    pub files: Vec<String>,
    pub conflicts: Vec<String>,
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
