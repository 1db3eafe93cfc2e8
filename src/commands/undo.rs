//! `git atomic undo [ID]` and `git atomic redo` (SPEC §7): the inverse of a logged batch, built
//! from its record and pre-images and applied through the whole pipeline of `apply` as a new
//! batch (journaled, crash-safe, logged, itself undoable). A redo is the undo of an undo.

use crate::cli::{ApplyArgs, BatchOptions, UndoArgs};
use crate::commands::apply;
use crate::commands::log::Links;
use crate::dirs::{self, Dirs, Leaf};
use crate::error::{Error, Result};
use crate::history::{self, Entry};
use crate::json::{self, ApplyResult};
use crate::parse::{BatchFile, Content, FileEntry, FileExpect, RefEntry, RefExpect};
use crate::paths::Found;
use crate::record::{FileState, JournalBlob, LogInfo, Record, RefVerb};
use crate::refstore::{RefStore, RefValue};
use crate::repo::Repo;
use base64::Engine;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Runs `undo` (or `redo`) and returns the exit status.
pub fn run(args: &UndoArgs, redo: bool) -> i32 {
    let mut result = ApplyResult::default();
    match undo(args, redo, &mut result) {
        Ok(undone) => {
            if args.json {
                json::print(&result);
            } else if !args.lock.quiet {
                let id = result.id.as_deref().unwrap_or("");
                let (verb, dry) = if redo { ("redid", "would redo") } else { ("undid", "would undo") };
                match args.dry_run {
                    true => println!("{dry} batch {undone}"),
                    false => println!("{verb} batch {undone} with batch {id}"),
                }
            }
            0
        }
        Err(e) => {
            result.status = e.kind.json_status();
            result.error = Some((&e).into());
            if args.json {
                json::print(&result);
            }
            e.report()
        }
    }
}

/// Picks the batch, checks its after-state, applies its inverse; returns the batch undone.
fn undo(args: &UndoArgs, redo: bool, out: &mut ApplyResult) -> Result<String> {
    let repo = Repo::discover()?;
    if redo && args.id.is_some() {
        return Err(Error::invalid("redo takes no batch id").hint("'git atomic undo ID' undoes one batch"));
    }
    let entries = history::list(&repo.state_dir())?;
    let links = Links::of(&entries);
    let here = worktree_of(&repo.git_dir, &repo.common_dir);
    let (target, links) = match (redo, &args.id) {
        (true, _) => pick_redo(&entries, &links, &here, &repo.common_dir)?,
        (false, Some(id)) => pick_by_id(&entries, &links, id)?,
        (false, None) => pick_undo(&entries, &links, &here, &repo.common_dir)?,
    };
    let record = target
        .record
        .as_ref()
        .ok_or_else(|| Error::refused(format!("batch {} has no readable record", target.id)))?;
    let elsewhere = target.record.as_ref().is_some_and(|r| worktree_of(&r.git_dir, &repo.common_dir) != here);
    let repo = match target.place() {
        Some(place) if elsewhere => {
            std::env::set_current_dir(place).map_err(|e| {
                Error::refused(format!(
                    "cannot enter '{}', where batch {} was applied: {e}",
                    place.display(),
                    target.id
                ))
            })?;
            Repo::discover()?
        }
        _ => repo,
    };
    check_after_state(&repo, record).map_err(|e| {
        Error::refused(format!("cannot undo batch {}: {}", target.id, e.message))
            .hint("nothing was changed; the batch's changes no longer hold as it left them")
    })?;
    let file = inverse(record, &target.dir)?;
    let what = if redo { "redo" } else { "undo" };
    let shown = links.redoes.clone().unwrap_or_else(|| target.id.clone());
    let original = entries.iter().find(|e| e.id == shown).and_then(|e| e.record.as_ref()).unwrap_or(record);
    let message = format!("{what} {shown}: {}", original.message);
    let apply_args = ApplyArgs {
        file: None,
        dry_run: args.dry_run,
        json: args.json,
        batch: BatchOptions { wait: args.lock.wait, message: Some(message), quiet: args.lock.quiet },
        allow_source_outside: false,
        lsp: false,
        position_encoding: None,
        emit_batch: false,
    };
    apply::apply_file(&repo, &apply_args, file, links, out)?;
    Ok(shown)
}

/// Which worktree of the repository a git dir is: its path below the common dir (`""` for the
/// main one, `worktrees/<name>` for a linked one), so that a repository moved or copied as a
/// whole still knows its entries as its own.
fn worktree_of(git_dir: &Path, common_dir: &Path) -> PathBuf {
    let name = |p: &Path| p.file_name().map(PathBuf::from).unwrap_or_default();
    match git_dir.strip_prefix(common_dir) {
        Ok(rest) => rest.to_path_buf(),
        // A journal written from another path to the same repository: its worktree's name.
        Err(_) if git_dir.parent().and_then(Path::file_name) == Some("worktrees".as_ref()) => {
            Path::new("worktrees").join(name(git_dir))
        }
        Err(_) => PathBuf::new(),
    }
}

/// Whether an entry is in this worktree and took effect.
fn usable(e: &Entry, here: &Path, common_dir: &Path) -> bool {
    e.took_effect() && e.record.as_ref().is_some_and(|r| worktree_of(&r.git_dir, common_dir) == here)
}

/// `undo` without ID: the newest batch here not undone, undos excluded (a redo counts as a batch).
fn pick_undo<'e>(
    entries: &'e [Entry],
    links: &Links,
    here: &Path,
    common: &Path,
) -> Result<(&'e Entry, LogInfo)> {
    let is_plain_undo = |e: &Entry| e.undoes().is_some() && e.redoes().is_none();
    let found = entries
        .iter()
        .filter(|e| usable(e, here, common))
        .find(|e| !is_plain_undo(e) && links.undone_by(&e.id).is_none())
        .ok_or_else(|| Error::refused("nothing to undo"))?;
    Ok((found, LogInfo { undoes: Some(found.id.clone()), ..LogInfo::default() }))
}

/// `undo ID`: that batch, if it took effect and is not undone yet.
fn pick_by_id<'e>(entries: &'e [Entry], links: &Links, id: &str) -> Result<(&'e Entry, LogInfo)> {
    let found = entries
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| Error::refused(format!("no batch '{id}' in the log")))?;
    if !found.took_effect() {
        return Err(Error::refused(format!("batch {id} changed nothing ({})", found.outcome.outcome)));
    }
    if let Some(by) = links.undone_by(id) {
        return Err(Error::refused(format!("batch {id} is already undone by {by}")));
    }
    Ok((found, LogInfo { undoes: Some(found.id.clone()), ..LogInfo::default() }))
}

/// `redo`: walking back from the newest entry here over redos and undone undos, the first undo
/// not undone is re-applied (by undoing it); a plain batch on the way ends the redo chain.
fn pick_redo<'e>(
    entries: &'e [Entry],
    links: &Links,
    here: &Path,
    common: &Path,
) -> Result<(&'e Entry, LogInfo)> {
    for e in entries.iter().filter(|e| usable(e, here, common)) {
        let Some(undone) = e.undoes() else { break };
        if e.redoes().is_some() || links.undone_by(&e.id).is_some() {
            continue;
        }
        let original = entries.iter().find(|o| o.id == undone).and_then(|o| o.redoes()).unwrap_or(undone);
        let info =
            LogInfo { undoes: Some(e.id.clone()), redoes: Some(original.to_string()), ..LogInfo::default() };
        return Ok((e, info));
    }
    Err(Error::refused("nothing to redo"))
}

/// Refs and files as the batch left them? The first that differs is the error.
fn check_after_state(repo: &Repo, record: &Record) -> Result<()> {
    let changed: Vec<_> =
        record.refs.iter().filter(|c| c.verb != RefVerb::Verify && c.old != c.new).collect();
    if !changed.is_empty() {
        let store = RefStore::for_batch(&repo.gix, &repo.git, repo.settings.reftable, changed.len())?;
        for c in changed {
            let now = store.read(&c.target)?;
            if now != c.new {
                return Err(Error::refused(format!("ref '{}' changed since", c.target)));
            }
        }
    }
    let Some(work_tree) = repo.work_tree.as_deref() else { return Ok(()) };
    let dirs = Dirs::new(work_tree);
    let hash = repo.gix.object_hash();
    let wanted = record.puts.iter().map(|p| (&p.path, JournalBlob::state(Some(p.new))));
    let put_paths: HashSet<&str> = record.puts.iter().map(|p| p.path.as_str()).collect();
    let removed = record.removes.iter().filter(|r| !put_paths.contains(r.path.as_str()));
    for (path, want) in wanted.chain(removed.map(|r| (&r.path, FileState::Absent))) {
        let now = match dirs.inspect(path, hash)? {
            Ok(Found::Absent) => FileState::Absent,
            Ok(Found::File { blob, mode }) => FileState::Present { blob, mode },
            _ => return Err(Error::refused(format!("'{path}' is no longer a file"))),
        };
        if now != want {
            return Err(Error::refused(format!("'{path}' changed since")));
        }
    }
    Ok(())
}

/// The inverse batch: refs back to their old values (preconditions: their new ones), files back
/// to their pre-images (preconditions: the blobs the batch wrote), renames reversed.
fn inverse(record: &Record, dir: &Path) -> Result<BatchFile> {
    let mut file = BatchFile::default();
    for c in record.refs.iter().filter(|c| c.verb != RefVerb::Verify && c.old != c.new) {
        file.refs.push(inverse_ref(c)?);
    }
    if record.work_tree.is_none() {
        return Ok(file);
    }
    let handle =
        dirs::open_dir(dir).map_err(|e| Error::fatal(format!("cannot open '{}': {e}", dir.display())))?;
    let renamed_to: HashSet<&str> = record.log.renames.iter().map(|(_, t)| t.as_str()).collect();
    let renamed_from: HashSet<&str> = record.log.renames.iter().map(|(f, _)| f.as_str()).collect();
    for (from, to) in &record.log.renames {
        let new = record.puts.iter().find(|p| &p.path == to).map(|p| p.new.blob.to_string());
        file.files.push(FileEntry::Rename {
            path: to.clone(),
            to: from.clone(),
            expect: new.map(FileExpect::Blob),
        });
    }
    for p in record.puts.iter().filter(|p| !renamed_to.contains(p.path.as_str())) {
        let expect = Some(FileExpect::Blob(p.new.blob.to_string()));
        let pre = p.old.and(history::pre_image_of_put(dir, &p.staged));
        file.files.push(match (p.old, pre) {
            (Some(old), Some(name)) => FileEntry::Write {
                path: p.path.clone(),
                content: content_of(&handle, &name, dir)?,
                mode: Some(old.mode),
                expect,
            },
            _ => FileEntry::Delete { path: p.path.clone(), expect },
        });
    }
    for (m, r) in record.removes.iter().enumerate().filter(|(_, r)| !renamed_from.contains(r.path.as_str())) {
        let Some(name) = history::pre_image_of_remove(dir, m) else { continue };
        file.files.push(FileEntry::Write {
            path: r.path.clone(),
            content: content_of(&handle, &name, dir)?,
            mode: Some(r.old.mode),
            expect: Some(FileExpect::Absent),
        });
    }
    Ok(file)
}

fn inverse_ref(c: &crate::record::RefChange) -> Result<RefEntry> {
    let cannot = |why: &str| Error::refused(format!("cannot undo the change of '{}': {why}", c.target));
    if c.verb == RefVerb::Symref {
        return match &c.old {
            RefValue::Symbolic(to) => Ok(RefEntry::Symref { name: c.name.clone(), to: to.clone() }),
            _ => Err(cannot("it was not a symbolic ref before")),
        };
    }
    let name = c.target.clone();
    match (&c.old, &c.new) {
        (RefValue::Absent, RefValue::Id(new)) => {
            Ok(RefEntry::Delete { name, from: Some(RefExpect::Id(new.to_string())) })
        }
        (RefValue::Id(old), RefValue::Absent) => Ok(RefEntry::Create { name, to: old.to_string() }),
        (RefValue::Id(old), RefValue::Id(new)) => {
            Ok(RefEntry::Update { name, to: old.to_string(), from: Some(RefExpect::Id(new.to_string())) })
        }
        _ => Err(cannot("a symbolic ref was changed through it")),
    }
}

/// A pre-image as batch content: text when it is UTF-8, base64 otherwise (a symlink: its target).
fn content_of(handle: &std::os::fd::OwnedFd, name: &str, dir: &Path) -> Result<Content> {
    let bytes = match dirs::read_at(handle, name) {
        Ok(Leaf::File { bytes, .. } | Leaf::Symlink(bytes)) => bytes,
        Ok(_) => return Err(Error::fatal(format!("'{}' is not a kept file", dir.join(name).display()))),
        Err(e) => return Err(Error::fatal(format!("cannot read '{}': {e}", dir.join(name).display()))),
    };
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Content::Text(text),
        Err(e) => Content::Base64(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
    })
}
