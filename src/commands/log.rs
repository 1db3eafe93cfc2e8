//! `git atomic log [ID] [-n N] [--json] [--prune]`: the history log (SPEC §7), newest first.

use crate::cli::LogArgs;
use crate::error::{Error, Result};
use crate::history::{self, Entry, Kept};
use crate::record::{JournalBlob, Record};
use crate::refstore::RefValue;
use crate::repo::Repo;
use serde::Serialize;
use std::collections::HashMap;

/// Runs `log` and returns the exit status.
pub fn run(args: &LogArgs) -> i32 {
    match log(args) {
        Ok(()) => 0,
        Err(e) => e.report(),
    }
}

fn log(args: &LogArgs) -> Result<()> {
    let repo = Repo::discover()?;
    let state = repo.state_dir();
    if args.prune {
        let removed = history::prune(&state, repo.settings.log_limit)?;
        eprintln!("pruned {removed} log entr{}", if removed == 1 { "y" } else { "ies" });
    }
    let entries = history::list(&state)?;
    let links = Links::of(&entries);
    let chosen: Vec<&Entry> = match &args.id {
        Some(id) => {
            let one = entries.iter().find(|e| &e.id == id);
            vec![one.ok_or_else(|| Error::refused(format!("no batch '{id}' in the log")))?]
        }
        None => entries.iter().take(args.max_count.unwrap_or(usize::MAX)).collect(),
    };
    let lines: Vec<EntryLine> = chosen.iter().map(|e| EntryLine::of(e, &links)).collect();
    if args.json {
        crate::json::print(&lines);
    } else if args.id.is_some() {
        lines.iter().for_each(print_full);
    } else {
        lines.iter().for_each(print_short);
    }
    Ok(())
}

/// `undone-by` for each entry: the newest batch that undid it and took effect.
pub struct Links(HashMap<String, String>);

impl Links {
    /// Links of every entry (`entries` newest first).
    pub fn of(entries: &[Entry]) -> Self {
        let mut undone_by = HashMap::new();
        for e in entries.iter().rev().filter(|e| e.took_effect()) {
            if let Some(target) = e.undoes() {
                undone_by.insert(target.to_string(), e.id.clone());
            }
        }
        Links(undone_by)
    }

    /// The batch that undid `id`, if any.
    pub fn undone_by(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }
}

/// One entry of `log --json` (SPEC §7).
#[derive(Debug, Serialize)]
struct EntryLine {
    id: String,
    time: String,
    message: Option<String>,
    outcome: String,
    why: Option<String>,
    work_tree: Option<String>,
    undoes: Option<String>,
    #[serde(rename = "undone-by")]
    undone_by: Option<String>,
    redoes: Option<String>,
    refs: Vec<RefEntryLine>,
    files: Vec<FileEntryLine>,
    kept: Vec<Kept>,
}

#[derive(Debug, Serialize)]
struct RefEntryLine {
    #[serde(rename = "ref")]
    name: String,
    old: Option<String>,
    new: Option<String>,
}

#[derive(Debug, Serialize)]
struct FileEntryLine {
    path: String,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    old: Option<BlobLine>,
    new: Option<BlobLine>,
}

#[derive(Debug, Serialize)]
struct BlobLine {
    blob: String,
    mode: &'static str,
}

impl EntryLine {
    fn of(e: &Entry, links: &Links) -> Self {
        let r = e.record.as_ref();
        // An undo that is itself a redo says so: `undoes` names the undo it reverses.
        EntryLine {
            id: e.id.clone(),
            time: e.outcome.time.clone(),
            message: r.map(|r| r.message.clone()),
            outcome: e.outcome.outcome.clone(),
            why: e.outcome.why.clone(),
            work_tree: e.place().map(|p| p.display().to_string()),
            undoes: e.undoes().map(str::to_string),
            undone_by: links.undone_by(&e.id).map(str::to_string),
            redoes: e.redoes().map(str::to_string),
            refs: r.map(ref_lines).unwrap_or_default(),
            files: r.map(file_lines).unwrap_or_default(),
            kept: e.outcome.kept.clone(),
        }
    }
}

fn show(value: &RefValue) -> Option<String> {
    match value {
        RefValue::Absent => None,
        RefValue::Id(id) => Some(id.to_string()),
        RefValue::Symbolic(target) => Some(format!("ref: {target}")),
    }
}

fn ref_lines(r: &Record) -> Vec<RefEntryLine> {
    let changed = r.refs.iter().filter(|c| c.old != c.new);
    changed.map(|c| RefEntryLine { name: c.target.clone(), old: show(&c.old), new: show(&c.new) }).collect()
}

fn blob(b: Option<JournalBlob>) -> Option<BlobLine> {
    b.map(|b| BlobLine { blob: b.blob.to_string(), mode: history::mode_text(b.mode) })
}

/// The files of a record as the batch wrote them: a put and a removal that were one rename are
/// shown as that rename.
fn file_lines(r: &Record) -> Vec<FileEntryLine> {
    let renamed_to: HashMap<&str, &str> =
        r.log.renames.iter().map(|(f, t)| (t.as_str(), f.as_str())).collect();
    let renamed_from: HashMap<&str, &str> =
        r.log.renames.iter().map(|(f, t)| (f.as_str(), t.as_str())).collect();
    let mut lines = Vec::new();
    for p in r.puts.iter().filter(|p| !renamed_to.contains_key(p.path.as_str())) {
        lines.push(FileEntryLine {
            path: p.path.clone(),
            action: "write",
            to: None,
            old: blob(p.old),
            new: blob(Some(p.new)),
        });
    }
    for d in &r.removes {
        match renamed_from.get(d.path.as_str()) {
            Some(to) => {
                let new = r.puts.iter().find(|p| p.path == *to).map(|p| p.new);
                lines.push(FileEntryLine {
                    path: d.path.clone(),
                    action: "rename",
                    to: Some(to.to_string()),
                    old: blob(Some(d.old)),
                    new: blob(new),
                });
            }
            None => lines.push(FileEntryLine {
                path: d.path.clone(),
                action: "delete",
                to: None,
                old: blob(Some(d.old)),
                new: None,
            }),
        }
    }
    lines
}

fn print_short(e: &EntryLine) {
    let mut links = String::new();
    if let Some(u) = &e.undoes {
        links += &format!(" (undoes {u})");
    }
    if let Some(r) = &e.redoes {
        links = format!(" (redoes {r})");
    }
    if let Some(u) = &e.undone_by {
        links += &format!(" (undone by {u})");
    }
    println!(
        "{} {} {:<14} {} ref(s), {} file(s){links}  {}",
        e.id,
        e.time,
        e.outcome,
        e.refs.len(),
        e.files.len(),
        e.message.as_deref().unwrap_or("")
    );
    if let Some(why) = &e.why {
        println!("    why: {why}");
    }
}

fn print_full(e: &EntryLine) {
    let none = || "-".to_string();
    println!("batch {}", e.id);
    println!("time:      {}", e.time);
    println!("outcome:   {}", e.outcome);
    for (key, value) in [
        ("why", &e.why),
        ("message", &e.message),
        ("work tree", &e.work_tree),
        ("undoes", &e.undoes),
        ("undone by", &e.undone_by),
        ("redoes", &e.redoes),
    ] {
        if let Some(v) = value {
            println!("{:<10} {v}", format!("{key}:"));
        }
    }
    for r in &e.refs {
        println!(
            "  ref  {} {} -> {}",
            r.name,
            r.old.clone().unwrap_or_else(none),
            r.new.clone().unwrap_or_else(none)
        );
    }
    let state =
        |b: &Option<BlobLine>| b.as_ref().map(|b| format!("{} {}", b.mode, b.blob)).unwrap_or_else(none);
    for f in &e.files {
        let to = f.to.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default();
        println!("  {:<6} {}{to}  {} -> {}", f.action, f.path, state(&f.old), state(&f.new));
    }
    for k in &e.kept {
        let saved = k.saved.as_ref().map(|p| p.display().to_string()).unwrap_or_else(none);
        println!(
            "  kept  {}: changed after the check (expected {}), content saved at {saved}",
            k.path, k.expected
        );
    }
}
