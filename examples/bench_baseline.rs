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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => generate(&args[1..]),
        Some("run") => run(Path::new(&args[1]), args.iter().any(|a| a == "--no-fsync")),
        _ => {
            eprintln!("usage: bench_baseline gen|run …");
            std::process::exit(2);
        }
    }
}

fn flag(args: &[String], name: &str) -> String {
    let i = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("missing {name}"));
    args[i + 1].clone()
}

/// One content line of 1 KiB (1023 bytes and a newline) per file, different per file.
fn content(i: usize) -> String {
    let mut line = format!("file {i} ");
    while line.len() < 1023 {
        line.push('x');
    }
    line
}

fn generate(args: &[String]) {
    let refs: usize = flag(args, "--refs").parse().unwrap();
    let files: usize = flag(args, "--files").parse().unwrap();
    let dirs: usize = flag(args, "--dirs").parse().unwrap();
    let commit = flag(args, "--commit");
    let out = PathBuf::from(flag(args, "--out"));
    fs::create_dir_all(&out).unwrap();
    let mut yaml = std::io::BufWriter::new(File::create(out.join("batch.yaml")).unwrap());
    let mut plan = std::io::BufWriter::new(File::create(out.join("plan")).unwrap());
    let mut ref_plan = std::io::BufWriter::new(File::create(out.join("plan.refs")).unwrap());
    writeln!(yaml, "message: bench").unwrap();
    if refs > 0 {
        writeln!(yaml, "refs:").unwrap();
    }
    for i in 0..refs {
        let name = format!("refs/heads/d{}/r{i}", i % dirs.max(1));
        writeln!(yaml, "  - update: {name}\n    to: {commit}").unwrap();
        writeln!(plan, "R update {name} {commit}").unwrap();
        writeln!(ref_plan, "update {name} {commit}").unwrap();
    }
    if files > 0 {
        writeln!(yaml, "files:").unwrap();
    }
    for i in 0..files {
        let path = format!("d{}/f{i}.txt", i % dirs.max(1));
        let text = content(i);
        writeln!(yaml, "  - write: {path}\n    content: \"{text}\\n\"").unwrap();
        writeln!(plan, "F {path}\n{text}").unwrap();
    }
}

fn run(plan: &Path, no_fsync: bool) {
    let input = BufReader::new(File::open(plan).unwrap());
    let mut lines = input.lines();
    let mut ref_lines = String::new();
    let mut dirs = BTreeSet::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.strip_prefix("R ") {
            ref_lines.push_str(rest);
            ref_lines.push('\n');
        } else if let Some(path) = line.strip_prefix("F ") {
            let text = lines.next().unwrap().unwrap();
            let target = PathBuf::from(path);
            let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
            fs::create_dir_all(&dir).unwrap();
            let temp = dir.join(format!(".{}.tmp", target.file_name().unwrap().to_string_lossy()));
            let mut f = File::create(&temp).unwrap();
            f.write_all(text.as_bytes()).unwrap();
            f.write_all(b"\n").unwrap();
            if !no_fsync {
                f.sync_all().unwrap();
            }
            fs::rename(&temp, &target).unwrap();
            dirs.insert(dir);
        }
    }
    if !no_fsync {
        for dir in &dirs {
            File::open(dir).unwrap().sync_all().unwrap();
        }
    }
    if !ref_lines.is_empty() {
        let mut git =
            Command::new("git").args(["update-ref", "--stdin"]).stdin(Stdio::piped()).spawn().unwrap();
        git.stdin.take().unwrap().write_all(ref_lines.as_bytes()).unwrap();
        assert!(git.wait().unwrap().success(), "git update-ref failed");
    }
}
