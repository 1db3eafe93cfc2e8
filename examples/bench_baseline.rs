//! The hand-written alternative git-atomic is measured against (issue 7), and the generator of
//! the benchmark's inputs. Not crash-safe across refs and files; just the speed to match.
//!
//! ```text
//! bench_baseline gen --refs N --files M --dirs D --commit ID --out DIR
//!     writes DIR/batch.yaml (for git-atomic), DIR/plan (for `run`) and DIR/plan.refs
//!     (update-ref's input alone): the same changes
//! bench_baseline run PLAN [--no-fsync]
//!     per file: temp file in the target directory, write, fsync, rename; then one fsync per
//!     directory; then one `git update-ref --stdin` with every ref
//! ```

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => generate(&args[1..]),
        Some("run") => {
            let plan = args.get(1).context("usage: bench_baseline run PLAN [--no-fsync]")?;
            run(Path::new(plan), args.iter().any(|a| a == "--no-fsync"))
        }
        _ => bail!("usage: bench_baseline gen|run …"),
    }
}

fn flag(args: &[String], name: &str) -> Result<String> {
    let i = args.iter().position(|a| a == name).with_context(|| format!("missing {name}"))?;
    args.get(i + 1).cloned().with_context(|| format!("{name} needs a value"))
}

/// One content line of 1 KiB (1023 bytes and a newline) per file, different per file.
fn content(i: usize) -> String {
    let mut line = format!("file {i} ");
    while line.len() < 1023 {
        line.push('x');
    }
    line
}

fn generate(args: &[String]) -> Result<()> {
    let refs: usize = flag(args, "--refs")?.parse()?;
    let files: usize = flag(args, "--files")?.parse()?;
    let dirs: usize = flag(args, "--dirs")?.parse::<usize>()?.max(1);
    let commit = flag(args, "--commit")?;
    let out = PathBuf::from(flag(args, "--out")?);
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let create = |name: &str| -> Result<std::io::BufWriter<File>> {
        Ok(std::io::BufWriter::new(
            File::create(out.join(name)).with_context(|| format!("cannot create {name}"))?,
        ))
    };
    let (mut yaml, mut plan, mut ref_plan) = (create("batch.yaml")?, create("plan")?, create("plan.refs")?);
    writeln!(yaml, "message: bench")?;
    if refs > 0 {
        writeln!(yaml, "refs:")?;
    }
    for i in 0..refs {
        let name = format!("refs/heads/d{}/r{i}", i % dirs);
        writeln!(yaml, "  - update: {name}\n    to: {commit}")?;
        writeln!(plan, "R update {name} {commit}")?;
        writeln!(ref_plan, "update {name} {commit}")?;
    }
    if files > 0 {
        writeln!(yaml, "files:")?;
    }
    for i in 0..files {
        let path = format!("d{}/f{i}.txt", i % dirs);
        let text = content(i);
        writeln!(yaml, "  - write: {path}\n    content: \"{text}\\n\"")?;
        writeln!(plan, "F {path}\n{text}")?;
    }
    Ok(())
}

fn run(plan: &Path, no_fsync: bool) -> Result<()> {
    let input = BufReader::new(File::open(plan).with_context(|| format!("cannot open {}", plan.display()))?);
    let mut lines = input.lines();
    let mut ref_lines = String::new();
    let mut dirs = BTreeSet::new();
    while let Some(line) = lines.next() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("R ") {
            ref_lines.push_str(rest);
            ref_lines.push('\n');
        } else if let Some(path) = line.strip_prefix("F ") {
            let text = lines.next().context("a file line without content")??;
            let target = PathBuf::from(path);
            let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
            fs::create_dir_all(&dir)?;
            let name = target.file_name().context("a file path without a name")?.to_string_lossy();
            let temp = dir.join(format!(".{name}.tmp"));
            let mut f = File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            if !no_fsync {
                f.sync_all()?;
            }
            fs::rename(&temp, &target)?;
            dirs.insert(dir);
        }
    }
    if !no_fsync {
        for dir in &dirs {
            File::open(dir)?.sync_all()?;
        }
    }
    if !ref_lines.is_empty() {
        let mut git = Command::new("git").args(["update-ref", "--stdin"]).stdin(Stdio::piped()).spawn()?;
        git.stdin.take().context("no stdin")?.write_all(ref_lines.as_bytes())?;
        if !git.wait()?.success() {
            bail!("git update-ref failed");
        }
    }
    Ok(())
}
