//! Stage 2: [`BatchFile`] → [`Batch`]. Checks every rule of SPEC §2 against the repository and
//! resolves every revision to an object id, once, before anything changes. Nothing is written.
//! Ref preconditions are checked here for a clear message, and again by git under its locks.

use crate::error::{Error, Kind, Result};
use crate::git::Git;
use crate::limits;
use crate::parse::{BatchFile, Content, FileEntry, FileExpect, RefEntry, RefExpect};
use crate::paths;
use crate::record::{Mode, RefChange, RefVerb};
use crate::refstore::{RefStore, RefValue};
use crate::repo::Repo;
use base64::Engine;
use gix::ObjectId;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// The first git that has the `symref-*` verbs of `update-ref --stdin`.
const SYMREF_VERBS_SINCE: (u32, u32) = (2, 46);

/// A batch that passed every check: ids resolved, names and paths safe. Only this type is staged.
#[derive(Debug)]
pub struct Batch {
    pub id: String,
    pub message: String,
    pub refs: Vec<RefChange>,
    pub files: Vec<FileChange>,
    /// Work-tree files as the batch's reader saw them (`--lsp`), for the check.
    pub seen: crate::check::Seen,
}

/// What a file precondition asks for, with the blob id parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Absent,
    Present,
    Blob(ObjectId),
}

/// The new content of a written file, validated but not yet read.
#[derive(Debug, Clone)]
pub enum NewContent {
    Bytes(Vec<u8>),
    Blob(ObjectId),
    Source(PathBuf),
}

/// What a file entry does.
#[derive(Debug, Clone)]
pub enum FileAction {
    Write { content: NewContent, mode: Option<Mode> },
    Delete,
    Rename { to: String },
}

/// One validated file entry.
#[derive(Debug, Clone)]
pub struct FileChange {
    pub entry: usize,
    pub path: String,
    pub action: FileAction,
    pub expect: Option<Expect>,
}

impl FileChange {
    /// `files[3] src/a.rs`, the way errors name this entry.
    pub fn label(&self) -> String {
        format!("files[{}] {}", self.entry, self.path)
    }
}

/// A batch's id and reflog message: known before validation, so that git can start early.
pub struct BatchLabel {
    pub id: String,
    pub message: String,
}

impl BatchLabel {
    /// A new id, and the message: `-m`, else the batch's own, else one naming the batch.
    pub fn new(file: &BatchFile, message_override: Option<String>) -> Self {
        let id = new_batch_id();
        let message =
            message_override.or(file.message.clone()).unwrap_or_else(|| format!("git atomic apply {id}"));
        BatchLabel { id, message }
    }
}

/// What the caller allows beyond SPEC §10's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--allow-source-outside`: a `source:` may name any regular file the caller can read.
    pub allow_source_outside: bool,
}

/// Validates `file` against `repo`; the batch takes the given id and message.
pub fn validate(file: BatchFile, repo: &Repo, label: BatchLabel) -> Result<Batch> {
    let (batch, refusals) = validate_with(file, repo, label, Options::default())?;
    match refusals.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(batch),
    }
}

/// Validates `file` against `repo`. An invalid batch is an error; the ref preconditions that
/// failed (refusals, exit 1) are all returned beside the batch, for `--dry-run` to list them.
pub fn validate_with(
    file: BatchFile,
    repo: &Repo,
    label: BatchLabel,
    options: Options,
) -> Result<(Batch, Vec<Error>)> {
    let BatchLabel { id, message } = label;
    let mut resolver = Resolver::new(repo);
    let mut refused = Refusals::default();
    let refs = validate_refs(&file.refs, repo, &mut resolver, &mut refused)?;
    if !file.files.is_empty() {
        repo.require_work_tree()?;
    }
    let files = validate_files(&file.files, repo, &mut resolver, options)?;
    Ok((Batch { id, message, refs, files, seen: file.seen }, refused.0))
}

/// A batch id: time-ordered, unique per process and instant.
fn new_batch_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}{:08x}-{:x}", now.as_secs(), now.subsec_nanos(), std::process::id())
}

/// The ref preconditions that failed, in entry order. They are reported only once the whole batch
/// is known to be valid, so that an invalid batch exits 2 whatever state the repository is in, and
/// a refusal (1) always means the same batch could apply once the repository changes.
#[derive(Debug, Default)]
struct Refusals(Vec<Error>);

impl Refusals {
    /// Keeps a refusal for later and passes every other error on.
    fn keep(&mut self, result: Result<()>) -> Result<()> {
        match result {
            Err(e) if e.kind == Kind::Refused => {
                self.0.push(e);
                Ok(())
            }
            other => other,
        }
    }
}

fn validate_refs(
    entries: &[RefEntry],
    repo: &Repo,
    resolver: &mut Resolver,
    refused: &mut Refusals,
) -> Result<Vec<RefChange>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let store = RefStore::for_batch(&repo.gix, &repo.git, repo.settings.reftable, entries.len())?;
    for (i, entry) in entries.iter().enumerate() {
        check_ref_name(entry.name()).map_err(|e| e.at(format!("refs[{i}]")))?;
    }
    if let Some(i) = entries.iter().position(|e| matches!(e, RefEntry::Symref { .. })) {
        require_symref_support(&repo.git).map_err(|e| e.at(format!("refs[{i}] {}", entries[i].name())))?;
    }
    resolver.resolve_all(entries.iter().filter_map(|e| match e {
        RefEntry::Update { to, .. } | RefEntry::Create { to, .. } => Some(to.as_str()),
        _ => None,
    }))?;
    let hash = repo.gix.object_hash();
    let mut changes = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let label = || format!("refs[{i}] {}", entry.name());
        let change = ref_change(i, entry, &store, resolver).map_err(|e| e.at(label()))?;
        refused.keep(check_from(precondition(entry).as_ref(), &change.old, hash).map_err(
            |e| match e.kind {
                Kind::Refused => e.at(label()).hint(ref_precondition_hint(&change.name)),
                _ => e.at(label()),
            },
        ))?;
        changes.push(change);
    }
    verify_absent_without_lock(&mut changes);
    check_ref_uniqueness(&changes)?;
    refused.keep(check_ref_collisions(&changes, &store))?;
    Ok(changes)
}

/// A ref name is `HEAD` or under `refs/`, and well-formed as `git check-ref-format` wants it.
fn check_ref_name(name: &str) -> Result<()> {
    limits::check_name_length(name)?;
    let shown = name.escape_debug();
    if name != "HEAD" && !name.starts_with("refs/") {
        return Err(Error::invalid(format!("'{shown}' is not a ref name"))
            .hint("ref names are HEAD or start with refs/"));
    }
    gix::refs::FullName::try_from(name)
        .map_err(|_| Error::invalid(format!("'{shown}' is not a valid ref name")))?;
    Ok(())
}

fn require_symref_support(git: &Git) -> Result<()> {
    let version = git.version()?;
    if version < SYMREF_VERBS_SINCE {
        return Err(Error::invalid(format!(
            "'symref' entries need git {}.{} or newer; '{}' is {}.{}",
            SYMREF_VERBS_SINCE.0,
            SYMREF_VERBS_SINCE.1,
            git.exe().display(),
            version.0,
            version.1
        ))
        .hint("upgrade git, or run 'git symbolic-ref' separately"));
    }
    Ok(())
}

fn ref_change(entry: usize, raw: &RefEntry, store: &RefStore, resolver: &Resolver) -> Result<RefChange> {
    let name = raw.name().to_string();
    let (target, old) = match raw {
        RefEntry::Symref { .. } => (name.clone(), store.read(&name)?),
        _ => store.resolve(&name)?,
    };
    let mut change = RefChange {
        entry,
        verb: RefVerb::Update,
        name,
        target,
        old: old.clone(),
        new: old.clone(),
        via_git: true,
    };
    match raw {
        RefEntry::Update { to, .. } => {
            change.new = RefValue::Id(resolver.commit_for(&change.target, to)?);
        }
        RefEntry::Create { to, .. } => {
            change.verb = RefVerb::Create;
            change.new = RefValue::Id(resolver.commit_for(&change.target, to)?);
        }
        RefEntry::Delete { from, .. } => {
            change.verb = RefVerb::Delete;
            if from == &Some(RefExpect::Absent) {
                return Err(Error::invalid("'delete' with 'from: absent' can never apply"));
            }
            change.new = RefValue::Absent;
            change.via_git = old != RefValue::Absent;
        }
        RefEntry::Verify { is, .. } => {
            change.verb = RefVerb::Verify;
            change.via_git = !(is == &RefExpect::Absent && store.collision(&change.target)?.is_some());
        }
        RefEntry::Symref { to, .. } => {
            change.verb = RefVerb::Symref;
            check_ref_name(to)?;
            change.new = RefValue::Symbolic(to.clone());
        }
    }
    Ok(change)
}

/// How to see a ref's value now and what to do about a failed precondition.
fn ref_precondition_hint(name: &str) -> String {
    format!(
        "see its value with 'git rev-parse --verify --quiet {name}'; if the change still holds, \
         update 'from:'/'is:' and apply the batch again"
    )
}

/// SPEC §2: `verify R is: absent` holds whenever R does not exist, even where git could not lock
/// R because another entry of the batch makes a ref that is R's parent or child directory
/// (`verify refs/tags/t/u` beside `update refs/tags/t`). git would refuse to lock it, so such a
/// verify is checked here, without a lock, and never sent to git.
fn verify_absent_without_lock(changes: &mut [RefChange]) {
    let made: Vec<String> =
        changes.iter().filter(|c| c.new != RefValue::Absent).map(|c| c.target.clone()).collect();
    let collides = |a: &str, b: &str| {
        a.len() != b.len()
            && (a.strip_prefix(b).is_some_and(|r| r.starts_with('/'))
                || b.strip_prefix(a).is_some_and(|r| r.starts_with('/')))
    };
    for c in changes.iter_mut() {
        if c.verb == RefVerb::Verify
            && c.old == RefValue::Absent
            && made.iter().any(|m| collides(m, &c.target))
        {
            c.via_git = false;
        }
    }
}

/// The precondition an entry puts on the current value of its ref (`create` means `absent`).
fn precondition(raw: &RefEntry) -> Option<RefExpect> {
    match raw {
        RefEntry::Update { from, .. } | RefEntry::Delete { from, .. } => from.clone(),
        RefEntry::Create { .. } => Some(RefExpect::Absent),
        RefEntry::Verify { is, .. } => Some(is.clone()),
        RefEntry::Symref { .. } => None,
    }
}

/// Compares a `from:`/`is:` precondition with the value read now (git checks again under its lock).
/// The id must have the repository's hash length: a SHA-1 id in a SHA-256 repository is a typo.
fn check_from(expect: Option<&RefExpect>, old: &RefValue, hash: gix::hash::Kind) -> Result<()> {
    let Some(expect) = expect else { return Ok(()) };
    let holds = match expect {
        RefExpect::Absent => old == &RefValue::Absent,
        RefExpect::Id(hex) => {
            let id = ObjectId::from_hex(hex.as_bytes())
                .ok()
                .filter(|_| hex.len() == hash.len_in_hex())
                .ok_or_else(|| {
                    Error::invalid(format!("'{hex}' is not a full object id"))
                        .hint("preconditions take the full hex id, or 'absent'")
                })?;
            old.id() == Some(id)
        }
    };
    if holds {
        return Ok(());
    }
    let now = match old {
        RefValue::Absent => "does not exist".to_string(),
        RefValue::Id(id) => format!("is at {id}"),
        RefValue::Symbolic(t) => format!("points at {t}"),
    };
    let wanted = match expect {
        RefExpect::Absent => "absent".to_string(),
        RefExpect::Id(hex) => hex.clone(),
    };
    Err(Error::refused(format!("ref {now}, but the batch expects {wanted}")))
}

/// Two entries on one ref (also through a symbolic ref, as `HEAD` and its branch) are invalid.
fn check_ref_uniqueness(changes: &[RefChange]) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for c in changes {
        for key in claimed_names(c) {
            if let Some(first) = seen.get(key).filter(|&&first| first != c.entry) {
                return Err(Error::invalid(format!(
                    "refs[{}] and refs[{}] both change '{key}'",
                    first, c.entry
                ))
                .hint("a batch names each ref once, and HEAD counts as the branch it points at"));
            }
            seen.insert(key, c.entry);
        }
    }
    Ok(())
}

/// The names an entry changes for the uniqueness rule. A `symref` entry on `HEAD` also claims the
/// branch HEAD points at now: git refuses a transaction that repoints HEAD and touches that branch
/// ("multiple updates for 'HEAD' (including one via its referent …)"), and only at prepare.
fn claimed_names(c: &RefChange) -> Vec<&str> {
    let mut names = vec![c.name.as_str(), c.target.as_str()];
    if c.verb == RefVerb::Symref
        && c.name == "HEAD"
        && let RefValue::Symbolic(current) = &c.old
    {
        names.push(current);
    }
    names
}

/// File/directory collisions: within the batch they are invalid, against existing refs refused.
fn check_ref_collisions(changes: &[RefChange], store: &RefStore) -> Result<()> {
    // Only refs that exist after the batch can collide: a deleted ref or an absent-verify cannot.
    let names: BTreeMap<&str, usize> =
        changes.iter().filter(|c| c.new != RefValue::Absent).map(|c| (c.target.as_str(), c.entry)).collect();
    for (name, entry) in &names {
        let below = format!("{name}/");
        if let Some((other, other_entry)) =
            names.range(below.as_str()..).next().filter(|(k, _)| k.starts_with(&below))
        {
            return Err(Error::invalid(format!(
                "refs[{entry}] '{name}' and refs[{other_entry}] '{other}' cannot both exist (one is a directory of the other)"
            )));
        }
    }
    for c in changes.iter().filter(|c| c.old == RefValue::Absent && c.new != RefValue::Absent) {
        if let Some(existing) = store.collision(&c.target)? {
            return Err(Error::refused(format!("cannot create '{}': ref '{existing}' exists", c.target))
                .at(format!("refs[{}] {}", c.entry, c.name)));
        }
    }
    Ok(())
}

fn validate_files(
    entries: &[FileEntry],
    repo: &Repo,
    resolver: &mut Resolver,
    options: Options,
) -> Result<Vec<FileChange>> {
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let label = format!("files[{i}] {}", entry.path().escape_debug());
        let mut paths = vec![entry.path()];
        if let FileEntry::Rename { to, .. } = entry {
            paths.push(to);
        }
        for path in paths {
            paths::check_syntax(path).map_err(|e| e.at(label.clone()))?;
            if paths::may_be_gitmodules(path) {
                let mode = written_mode(entry, path, repo.work_tree.as_deref());
                paths::check_syntax_for(path, mode).map_err(|e| e.at(label.clone()))?;
            }
            if let Some(first) = claimed.insert(path.to_string(), i) {
                return Err(Error::invalid(format!("files[{first}] and files[{i}] both name '{path}'")));
            }
        }
    }
    check_path_nesting(&claimed)?;
    resolver.resolve_all(entries.iter().filter_map(|e| match e {
        FileEntry::Write { content: Content::Blob(rev), .. } => Some(rev.as_str()),
        _ => None,
    }))?;
    let mut changes = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let change = file_change(i, entry, repo, resolver, options)
            .map_err(|e| e.at(format!("files[{i}] {}", entry.path())))?;
        changes.push(change);
    }
    Ok(changes)
}

/// The mode `path` will have once `entry` is applied, when it may be a symlink: what a write
/// says, else what is on disk now (a write keeps the mode, a rename moves it). Only a symlink
/// matters, for git's rule against a symlinked `.gitmodules`.
fn written_mode(entry: &FileEntry, path: &str, work_tree: Option<&std::path::Path>) -> Option<Mode> {
    let on_disk = |p: &str| {
        let work_tree = work_tree?;
        let meta = std::fs::symlink_metadata(paths::on_disk(work_tree, p)).ok()?;
        meta.file_type().is_symlink().then_some(Mode::Symlink)
    };
    match entry {
        FileEntry::Write { mode: Some(mode), .. } => Some(*mode),
        FileEntry::Write { mode: None, .. } => on_disk(path),
        FileEntry::Rename { path: from, to, .. } if to == path => on_disk(from),
        _ => None,
    }
}

/// A path that is a parent directory of another entry's path is invalid.
fn check_path_nesting(claimed: &BTreeMap<String, usize>) -> Result<()> {
    for (path, entry) in claimed {
        let below = format!("{path}/");
        if let Some((other, other_entry)) =
            claimed.range(below.clone()..).next().filter(|(k, _)| k.starts_with(&below))
        {
            return Err(Error::invalid(format!(
                "files[{entry}] '{path}' is a parent directory of files[{other_entry}] '{other}'"
            )));
        }
    }
    Ok(())
}

fn file_change(
    entry: usize,
    raw: &FileEntry,
    repo: &Repo,
    resolver: &Resolver,
    options: Options,
) -> Result<FileChange> {
    let (action, expect) = match raw {
        FileEntry::Write { content, mode, expect, .. } => {
            let content = new_content(content, *mode, resolver, repo, options)?;
            (FileAction::Write { content, mode: *mode }, expect)
        }
        FileEntry::Delete { expect, .. } => (FileAction::Delete, expect),
        FileEntry::Rename { to, expect, .. } => (FileAction::Rename { to: to.clone() }, expect),
    };
    let expect = expect.as_ref().map(|e| file_expect(e, repo.gix.object_hash())).transpose()?;
    Ok(FileChange { entry, path: raw.path().to_string(), action, expect })
}

fn file_expect(raw: &FileExpect, hash: gix::hash::Kind) -> Result<Expect> {
    Ok(match raw {
        FileExpect::Absent => Expect::Absent,
        FileExpect::Present => Expect::Present,
        FileExpect::Blob(hex) => {
            if hex.len() != hash.len_in_hex() {
                return Err(Error::invalid(format!("'{hex}' is not a full blob id"))
                    .hint("use what 'git hash-object FILE' prints, 'absent' or 'present'"));
            }
            Expect::Blob(
                ObjectId::from_hex(hex.as_bytes())
                    .map_err(|_| Error::invalid(format!("'{hex}' is not a blob id")))?,
            )
        }
    })
}

fn new_content(
    content: &Content,
    mode: Option<Mode>,
    resolver: &Resolver,
    repo: &Repo,
    options: Options,
) -> Result<NewContent> {
    let content = match content {
        Content::Text(text) => NewContent::Bytes(text.clone().into_bytes()),
        Content::Base64(text) => {
            let compact: String = text.split_ascii_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| Error::invalid(format!("'base64' is not valid base64: {e}")))?;
            limits::check_content_size(bytes.len() as u64)?;
            NewContent::Bytes(bytes)
        }
        Content::Blob(rev) => {
            let (id, kind) = resolver.get(rev)?;
            if kind != gix::objs::Kind::Blob {
                return Err(Error::invalid(format!("'{rev}' is a {kind}, not a blob")));
            }
            if let Ok(Some(header)) = repo.gix.try_find_header(id) {
                limits::check_content_size(header.size())?;
            }
            NewContent::Blob(id)
        }
        Content::Source(path) if options.allow_source_outside => source_anywhere(path)?,
        Content::Source(path) => {
            let bytes = source_in_work_tree(path, repo, resolver.sources_read.get())?;
            resolver.sources_read.set(resolver.sources_read.get() + bytes.len() as u64);
            NewContent::Bytes(bytes)
        }
    };
    if mode == Some(Mode::Symlink)
        && let NewContent::Bytes(target) = &content
        && (target.is_empty() || target.contains(&0))
    {
        return Err(Error::invalid("a symlink's target must be non-empty and without NUL"));
    }
    Ok(content)
}

/// `--allow-source-outside`: any regular file the caller can read, copied when staged.
fn source_anywhere(path: &str) -> Result<NewContent> {
    let path = PathBuf::from(path);
    let cannot = |e: std::io::Error| {
        Error::invalid(format!("cannot read source '{}': {}", path.display(), crate::error::io_words(&e)))
    };
    let meta = std::fs::metadata(&path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(Error::invalid(format!("source '{}' is not a regular file", path.display())));
    }
    limits::check_content_size(meta.len())?;
    std::fs::File::open(&path).map_err(cannot)?;
    Ok(NewContent::Source(path))
}

/// SPEC §10: a `source:` (relative to the current directory) must be a regular file inside the
/// work tree and outside `.git`, reached without following a symlink. It is read now, through
/// directory handles, so that nothing swapped in later can make it another file.
/// `read_before` bytes of sources are held already: all of them together may not pass the batch
/// size limit, as they stay in memory until staged.
fn source_in_work_tree(path: &str, repo: &Repo, read_before: u64) -> Result<Vec<u8>> {
    let work_tree = repo.require_work_tree()?;
    let outside = || {
        Error::invalid(format!("source '{path}' is outside the work tree"))
            .hint("a batch copies only files of its work tree; pass --allow-source-outside to trust it")
    };
    let cwd = std::env::current_dir()
        .map_err(|e| Error::fatal(format!("cannot find the current directory: {e}")))?;
    let root = std::fs::canonicalize(work_tree)
        .map_err(|e| Error::fatal(format!("cannot resolve '{}': {e}", work_tree.display())))?;
    let absolute = paths::lexically_normal(&cwd.join(path));
    let in_git_dir = [&repo.git_dir, &repo.common_dir]
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|d| absolute.starts_with(d));
    if in_git_dir {
        return Err(Error::invalid(format!("source '{path}' is inside the git directory"))
            .hint("a batch never copies from .git"));
    }
    let inside = absolute.strip_prefix(&root).map_err(|_| outside())?;
    let relative = inside.to_str().ok_or_else(outside)?;
    if relative.is_empty() {
        return Err(Error::invalid(format!("source '{path}' is not a regular file")));
    }
    paths::check_syntax(relative).map_err(|e| {
        Error::invalid(format!("source '{path}': {}", e.message)).hint("a batch never copies from .git")
    })?;
    let budget = limits::MAX_BATCH_BYTES.saturating_sub(read_before);
    let bytes = paths::read_regular_file(&root, relative, limits::MAX_CONTENT_BYTES).map_err(|e| {
        let message = match e.message.strip_prefix(&format!("'{relative}'")) {
            Some(rest) => format!("source '{path}'{rest}"),
            None => format!("source '{path}': {}", e.message),
        };
        Error { message, ..e }
    })?;
    if bytes.len() as u64 > budget {
        return Err(Error::invalid(format!(
            "sources of the work tree are read when the batch is validated; together they pass the limit of {} MiB",
            limits::MAX_BATCH_BYTES >> 20
        ))
        .hint("split the batch"));
    }
    Ok(bytes)
}

/// Turns revisions into object ids: full hex ids directly, anything else in one
/// `git cat-file --batch-check` (git's own revision syntax, exactly).
struct Resolver<'r> {
    repo: &'r Repo,
    resolved: HashMap<String, (ObjectId, gix::objs::Kind)>,
    /// Bytes of work-tree sources read (and held) so far.
    sources_read: std::cell::Cell<u64>,
}

impl<'r> Resolver<'r> {
    fn new(repo: &'r Repo) -> Self {
        Resolver { repo, resolved: HashMap::new(), sources_read: std::cell::Cell::new(0) }
    }

    /// Resolves every revision in one go, so that a batch of 100,000 refs costs one git process.
    fn resolve_all<'a>(&mut self, revs: impl Iterator<Item = &'a str>) -> Result<()> {
        let hex_len = self.repo.gix.object_hash().len_in_hex();
        let mut by_git = Vec::new();
        for rev in revs {
            if self.resolved.contains_key(rev) {
                continue;
            }
            if rev.chars().any(|c| c.is_control()) || rev.is_empty() {
                return Err(Error::invalid(format!("'{}' is not a revision", rev.escape_debug())));
            }
            match ObjectId::from_hex(rev.as_bytes()).ok().filter(|_| rev.len() == hex_len) {
                Some(id) => {
                    let header = self
                        .repo
                        .gix
                        .try_find_header(id)
                        .map_err(|e| Error::fatal(format!("cannot read object {id}: {e}")))?;
                    let Some(header) = header else {
                        return Err(Error::invalid(format!("object {id} does not exist in this repository")));
                    };
                    self.resolved.insert(rev.to_string(), (id, header.kind()));
                }
                None => by_git.push(rev.to_string()),
            }
        }
        if by_git.is_empty() {
            return Ok(());
        }
        by_git.sort();
        by_git.dedup();
        let input: String = by_git.iter().map(|r| format!("{r}\n")).collect();
        let out = self
            .repo
            .git
            .output(&["cat-file", "--batch-check=%(objectname) %(objecttype)"], Some(input.as_bytes()))?;
        if !out.status.success() {
            // git ran and refused one of the batch's revisions (`:./` outside a work tree, say):
            // the batch is what is wrong, not git.
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(Error::invalid(format!("a revision cannot be resolved: {}", why.trim()))
                .hint("'git rev-parse --verify REV' shows how git reads each 'to:'"));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != by_git.len() {
            return Err(Error::fatal("git cat-file answered a different number of lines than asked"));
        }
        for (rev, line) in by_git.iter().zip(lines) {
            let mut parts = line.split(' ');
            let (Some(id), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let (Ok(id), Ok(kind)) =
                (ObjectId::from_hex(id.as_bytes()), gix::objs::Kind::from_bytes(kind.as_bytes()))
            {
                self.resolved.insert(rev.clone(), (id, kind));
            }
        }
        Ok(())
    }

    fn get(&self, rev: &str) -> Result<(ObjectId, gix::objs::Kind)> {
        self.resolved.get(rev).copied().ok_or_else(|| {
            Error::invalid(format!("'{rev}' does not name an object"))
                .hint("give a full object id or a revision git resolves")
        })
    }

    /// The id a ref is set to; under `refs/heads/` it must be a commit, with no peeling behind the user's back.
    fn commit_for(&self, target: &str, rev: &str) -> Result<ObjectId> {
        let (id, kind) = self.get(rev)?;
        if (target == "HEAD" || target.starts_with("refs/heads/")) && kind != gix::objs::Kind::Commit {
            return Err(Error::invalid(format!("'{rev}' is a {kind}, but a branch must point at a commit"))
                .hint(format!("write '{rev}^{{commit}}' to use the commit it points at")));
        }
        Ok(id)
    }
}
