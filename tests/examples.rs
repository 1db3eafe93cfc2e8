//! Issue 20: every batch under `examples/batches/` does the job its header says, on a real
//! repository laid out as the header assumes, with its placeholders filled the way the header
//! tells a user to fill them; then the refs and files are checked.

mod common;
#[path = "common/schema.rs"]
mod schema;

use common::Repo;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/batches").join(name)
}

fn read_example(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap()
}

/// `git status --porcelain`: empty when work tree, index and HEAD agree.
fn status(repo: &Repo) -> String {
    repo.git(&["status", "--porcelain"])
}

/// The layout the rename examples assume: a crate whose `cli` module uses the module `parser`.
fn crate_with_parser() -> Repo {
    let repo = Repo::new();
    repo.write("src/lib.rs", "pub mod cli;\npub mod parser;\n");
    repo.write(
        "src/parser.rs",
        "pub fn parse(line: &str) -> Vec<&str> {\n    line.split(',').collect()\n}\n",
    );
    repo.write(
        "src/cli.rs",
        "use crate::parser::parse;\n\npub fn run(line: &str) -> usize {\n    parse(line).len()\n}\n",
    );
    repo.git(&["add", "src"]);
    repo.git(&["commit", "-q", "-m", "parser"]);
    repo
}

/// The crate after the rename, as both rename examples leave it.
fn assert_renamed(repo: &Repo, parser_file: &str) {
    assert!(!repo.exists("src/parser.rs"));
    assert_eq!(repo.read("src/reader.rs"), parser_file);
    assert_eq!(repo.read("src/lib.rs"), "pub mod cli;\npub mod reader;\n");
    assert_eq!(
        repo.read("src/cli.rs"),
        "use crate::reader::parse;\n\npub fn run(line: &str) -> usize {\n    parse(line).len()\n}\n"
    );
}

#[test]
fn rename_module_renames_across_files_and_moves_the_branch() {
    let repo = crate_with_parser();
    let parser_file = repo.read("src/parser.rs");
    let tip = repo.rev("HEAD");
    repo.git(&["branch", "topic/parser"]);
    let path = example("rename-module.yaml");
    let file = path.to_str().unwrap();
    let before = repo.snapshot();
    repo.atomic(&["apply", "--dry-run", file]).expect(0);
    assert_eq!(repo.snapshot(), before, "a dry run changes nothing");
    repo.atomic(&["apply", file]).expect(0);
    assert_renamed(&repo, &parser_file);
    assert_eq!(repo.ref_value("refs/heads/topic/reader").as_deref(), Some(tip.as_str()));
    assert_eq!(repo.ref_value("refs/heads/topic/parser"), None);
    assert_eq!(repo.reflog("refs/heads/topic/reader")[0], "Rename module parser to reader");
    // Applied again, `topic/parser` no longer names anything: invalid (2), nothing changes.
    let after = repo.snapshot();
    repo.atomic(&["apply", file]).expect(2);
    assert_eq!(repo.snapshot(), after);
}

/// What release.yaml's header has the user run before the batch, with the real git: the
/// release commit and its annotated tag object, made with plumbing. Returns the placeholders.
fn prepare_release(repo: &Repo) -> Vec<(&'static str, String)> {
    let blob = repo.write_blob(b"1.3.0\n");
    let index = repo.path(".git/release.index");
    let with_index = |args: &[&str]| {
        let out = repo.git_cmd(args).env("GIT_INDEX_FILE", &index).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    with_index(&["read-tree", "HEAD"]);
    with_index(&["update-index", "--cacheinfo", &format!("100644,{blob},VERSION")]);
    let tree = with_index(&["write-tree"]);
    let main_before = repo.rev("refs/heads/main");
    let commit =
        repo.git(&["commit-tree", &tree, "-p", &main_before, "-m", "Release 1.3.0"]).trim().to_string();
    let ident = repo.git(&["var", "GIT_COMMITTER_IDENT"]);
    let tag_text =
        format!("object {commit}\ntype commit\ntag v1.3.0\ntagger {}\n\nRelease 1.3.0\n", ident.trim());
    let tag = repo.git_stdin(&["mktag"], tag_text.as_bytes()).trim().to_string();
    vec![("MAIN_BEFORE", main_before), ("RELEASE_COMMIT", commit), ("RELEASE_TAG", tag)]
}

fn filled(name: &str, values: &[(&'static str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_str())).collect();
    schema::fill(&read_example(name), &pairs)
}

#[test]
fn release_bumps_the_version_moves_main_and_tags_the_release() {
    let repo = Repo::new();
    repo.write("VERSION", "1.2.0\n");
    repo.git(&["add", "VERSION"]);
    repo.git(&["commit", "-q", "-m", "1.2.0"]);
    let values = prepare_release(&repo);
    let batch = filled("release.yaml", &values);
    repo.apply(&batch).expect(0);
    let commit = &values[1].1;
    assert_eq!(&repo.rev("refs/heads/main"), commit);
    assert_eq!(repo.git(&["cat-file", "-t", "refs/tags/v1.3.0"]).trim(), "tag");
    assert_eq!(&repo.rev("v1.3.0^{commit}"), commit);
    assert_eq!(repo.git(&["describe"]).trim(), "v1.3.0");
    assert_eq!(repo.read("VERSION"), "1.3.0\n");
    // The work tree is the release commit's: once the index is reset to it, nothing differs.
    repo.git(&["reset", "-q"]);
    assert_eq!(status(&repo), "");
}

#[test]
fn release_is_refused_whole_when_main_moved_meanwhile() {
    let repo = Repo::new();
    repo.write("VERSION", "1.2.0\n");
    repo.git(&["add", "VERSION"]);
    repo.git(&["commit", "-q", "-m", "1.2.0"]);
    let values = prepare_release(&repo);
    let moved = repo.commit_id("someone else's commit");
    repo.git(&["update-ref", "refs/heads/main", &moved]);
    repo.apply_unchanged(&filled("release.yaml", &values), 1);
    assert_eq!(repo.ref_value("refs/tags/v1.3.0"), None);
    assert_eq!(repo.read("VERSION"), "1.2.0\n");
}

/// A stack main <- part-1 <- part-2 <- part-3, main moved on, and the stack rebased onto it
/// without moving a branch (what `git replay` does): the placeholders of restack.yaml.
fn rebased_stack(repo: &Repo) -> Vec<(&'static str, String)> {
    for i in 1..=3 {
        repo.write(&format!("part{i}.txt"), &format!("{i}\n"));
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", &format!("part {i}")]);
        repo.git(&["branch", &format!("part-{i}")]);
    }
    let base = repo.rev("HEAD~3");
    repo.git(&["reset", "-q", "--hard", &base]);
    repo.write("main.txt", "main moved on\n");
    repo.git(&["add", "main.txt"]);
    repo.git(&["commit", "-q", "-m", "main moves on"]);
    let main = repo.rev("main");
    let mut values = vec![("MAIN", main.clone())];
    let mut parent = main;
    let names = [("PART1_OLD", "PART1_NEW"), ("PART2_OLD", "PART2_NEW"), ("PART3_OLD", "PART3_NEW")];
    for (i, (old_name, new_name)) in names.into_iter().enumerate() {
        let old = repo.rev(&format!("part-{}", i + 1));
        let tree = repo.rev(&format!("{old}^{{tree}}"));
        let new = repo.git(&["commit-tree", &tree, "-p", &parent, "-m", &format!("part {}", i + 1)]);
        parent = new.trim().to_string();
        values.push((old_name, old));
        values.push((new_name, parent.clone()));
    }
    values
}

fn value<'a>(values: &'a [(&'static str, String)], name: &str) -> &'a str {
    &values.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn restack_moves_every_branch_of_the_stack_at_once() {
    let repo = Repo::new();
    let values = rebased_stack(&repo);
    let batch = filled("restack.yaml", &values);
    repo.apply(&batch).expect(0);
    for i in 1..=3 {
        let branch = format!("refs/heads/part-{i}");
        assert_eq!(repo.rev(&branch), value(&values, &format!("PART{i}_NEW")));
        assert_eq!(repo.reflog(&branch)[0], "Restack part-1..part-3 onto main");
    }
    assert_eq!(repo.rev("part-1~1"), value(&values, "MAIN"));
    // Applied again, every `from:` fails: refused (1), no branch moves.
    let out = repo.apply_unchanged(&batch, 1);
    assert_eq!(out.json()["error"]["entry"], "refs[1] refs/heads/part-1", "{out:#?}");
}

#[test]
fn restack_moves_no_branch_when_one_moved_since_the_rebase() {
    let repo = Repo::new();
    let values = rebased_stack(&repo);
    let moved = repo.git(&["commit-tree", "HEAD^{tree}", "-p", "part-2", "-m", "late fix"]);
    repo.git(&["update-ref", "refs/heads/part-2", moved.trim()]);
    let out = repo.apply_unchanged(&filled("restack.yaml", &values), 1);
    assert_eq!(out.json()["error"]["entry"], "refs[2] refs/heads/part-2", "{out:#?}");
    assert_eq!(repo.rev("part-1"), value(&values, "PART1_OLD"));
    assert_eq!(repo.rev("part-3"), value(&values, "PART3_OLD"));
}

/// lsp-rename.json with its `/ROOT` pointed at the repository, as the `sed` of its header does.
fn lsp_rename_for(repo: &Repo) -> String {
    read_example("lsp-rename.json").replace("file:///ROOT/", &format!("file://{}/", repo.dir.display()))
}

#[test]
fn lsp_rename_applies_an_editors_rename_as_one_batch() {
    let repo = crate_with_parser();
    let parser_file = repo.read("src/parser.rs");
    let edit = lsp_rename_for(&repo);
    let out = repo.apply_args(&["apply", "--lsp", "--json", "-"], &edit);
    out.expect(0);
    assert_eq!(out.json()["applied"], true, "{out:#?}");
    assert_renamed(&repo, &parser_file);
    let log = repo.atomic(&["log", "--json", "-n", "1"]);
    assert_eq!(log.expect(0).json()[0]["message"], "Rename module parser to reader");
}

#[test]
fn lsp_rename_changes_nothing_when_the_new_file_exists() {
    let repo = crate_with_parser();
    // The RenameFile has no `overwrite`: an existing target refuses the whole edit, text edits too.
    repo.write("src/reader.rs", "// someone else's\n");
    let out = repo.apply_args_unchanged(&["apply", "--lsp", "--json", "-"], &lsp_rename_for(&repo), 1);
    assert_eq!(out.json()["applied"], false);
    assert_eq!(out.json()["failedChange"], 2, "{out:#?}");
    assert_eq!(repo.read("src/lib.rs"), "pub mod cli;\npub mod parser;\n");
}

/// A superproject with a submodule `sub` on a detached HEAD (as `git submodule update` leaves
/// it), whose upstream has a new commit on main that `sub` fetched: the state before
/// submodule-bump.yaml's header steps.
struct Super {
    top: Repo,
    upstream: Repo,
}

impl Super {
    fn new() -> Super {
        let upstream = Repo::new();
        let top = Repo::new();
        let url = upstream.dir.to_str().unwrap().to_string();
        top.git(&["-c", "protocol.file.allow=always", "submodule", "add", "-q", &url, "sub"]);
        top.git(&["commit", "-q", "-m", "add sub"]);
        upstream.write("lib.txt", "new upstream\n");
        upstream.git(&["add", "lib.txt"]);
        upstream.git(&["commit", "-q", "-m", "upstream moves on"]);
        let sub = top.path("sub");
        top.git_in(&sub, &["checkout", "-q", "--detach"]);
        top.git_in(&sub, &["fetch", "-q", "origin"]);
        Super { top, upstream }
    }

    fn sub_rev(&self, rev: &str) -> String {
        self.top.git_in(&self.top.path("sub"), &["rev-parse", rev]).trim().to_string()
    }

    /// The header's plumbing: the superproject commit whose gitlink is the fetched commit.
    fn placeholders(&self) -> Vec<(&'static str, String)> {
        let sub_commit = self.sub_rev("refs/remotes/origin/main");
        let index = self.top.path(".git/bump.index");
        let with_index = |args: &[&str]| {
            let out = self.top.git_cmd(args).env("GIT_INDEX_FILE", &index).output().unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        with_index(&["read-tree", "HEAD"]);
        with_index(&["update-index", "--cacheinfo", &format!("160000,{sub_commit},sub")]);
        let tree = with_index(&["write-tree"]);
        let before = self.top.rev("refs/heads/main");
        let commit =
            self.top.git(&["commit-tree", &tree, "-p", &before, "-m", "Bump sub"]).trim().to_string();
        vec![("SUB_COMMIT", sub_commit), ("SUPER_BEFORE", before), ("SUPER_COMMIT", commit)]
    }
}

#[test]
fn submodule_bump_moves_the_superproject_and_the_submodule_together() {
    let w = Super::new();
    let values = w.placeholders();
    let sub_commit = value(&values, "SUB_COMMIT").to_string();
    assert_eq!(sub_commit, w.upstream.rev("main"));
    let out = w.top.apply(&filled("submodule-bump.yaml", &values));
    out.expect(0);
    assert_eq!(w.top.rev("refs/heads/main"), value(&values, "SUPER_COMMIT"));
    assert_eq!(w.top.rev("main:sub"), sub_commit);
    assert_eq!(w.sub_rev("refs/heads/main"), sub_commit);
    // As the header says: reset the index, update the submodule, and everything agrees.
    w.top.git(&["reset", "-q"]);
    w.top.git(&["submodule", "update", "-q"]);
    assert_eq!(w.sub_rev("HEAD"), sub_commit);
    assert_eq!(status(&w.top), "");
}

#[test]
fn submodule_bump_moves_neither_when_the_superproject_moved() {
    let w = Super::new();
    let values = w.placeholders();
    let sub_main = w.sub_rev("refs/heads/main");
    let moved = w.top.commit_id("someone else's commit");
    w.top.git(&["update-ref", "refs/heads/main", &moved]);
    w.top.apply(&filled("submodule-bump.yaml", &values)).expect(1);
    assert_eq!(w.top.rev("refs/heads/main"), moved);
    assert_eq!(w.sub_rev("refs/heads/main"), sub_main);
}
