//! `git atomic apply` on work-tree files: every entry kind, content source, mode and precondition,
//! every file refusal leaving the repository byte-identical, and unsafe paths (issue 3).

mod common;

use common::Repo;
use std::os::unix::fs::PermissionsExt;

fn chmod(repo: &Repo, path: &str, mode: u32) {
    std::fs::set_permissions(repo.path(path), std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn write_with_content_creates_new_nested_directories() {
    let repo = Repo::new();
    let out = repo.apply("files:\n  - write: a/b/c/new.txt\n    content: \"x\\ny\\n\"\n");
    out.expect(0);
    assert_eq!(repo.read("a/b/c/new.txt"), "x\ny\n");
    assert!(!repo.is_executable("a/b/c/new.txt"), "a new file is 100644");
    let json = out.json();
    assert_eq!(json["files"][0]["path"], "a/b/c/new.txt");
    assert_eq!(json["files"][0]["action"], "write");
    assert_eq!(json["files"][0]["old"], serde_json::Value::Null);
    assert_eq!(json["files"][0]["new"], repo.blob_of("a/b/c/new.txt"));
}

#[test]
fn write_replaces_content_and_reports_old_and_new_blobs() {
    let repo = Repo::new();
    let old = repo.blob_of("README");
    let out = repo.apply("files:\n  - write: README\n    content: |\n      replaced\n      text\n");
    out.expect(0);
    assert_eq!(repo.read("README"), "replaced\ntext\n");
    let json = out.json();
    assert_eq!(json["files"][0]["old"], old.as_str());
    assert_eq!(json["files"][0]["new"], repo.blob_of("README"));
}

#[test]
fn write_with_base64_writes_raw_bytes() {
    let repo = Repo::new();
    // 00 ff 0a 80 41 → "AP8KgEE="
    repo.apply("files:\n  - write: bin.dat\n    base64: AP8KgEE=\n").expect(0);
    assert_eq!(std::fs::read(repo.path("bin.dat")).unwrap(), vec![0x00, 0xff, 0x0a, 0x80, 0x41]);
}

#[test]
fn write_with_a_blob_id_or_a_blob_revision() {
    let repo = Repo::new();
    let bytes = b"from a blob\n\x01\x02";
    let blob = repo.write_blob(bytes);
    repo.apply(&format!(
        "files:\n  - write: by-id.bin\n    blob: {blob}\n  - write: copy/of/readme\n    blob: HEAD:README\n"
    ))
    .expect(0);
    assert_eq!(std::fs::read(repo.path("by-id.bin")).unwrap(), bytes);
    assert_eq!(repo.read("copy/of/readme"), "hello\n");
}

#[test]
fn a_blob_that_is_not_a_blob_or_does_not_exist_is_invalid() {
    let repo = Repo::new();
    for blob in ["HEAD", "HEAD^{tree}", "HEAD:nope", "0123456789abcdef0123456789abcdef01234567"] {
        repo.apply_unchanged(&format!("files:\n  - write: x\n    blob: \"{blob}\"\n"), 2);
    }
}

#[test]
fn write_with_a_source_file_copies_it() {
    let repo = Repo::new();
    let src = repo.tmp.path().join("outside-input.bin");
    std::fs::write(&src, b"copied \x00 bytes").unwrap();
    let batch = format!("files:\n  - write: copied.bin\n    source: {}\n", src.display());
    repo.apply_unchanged(&batch, 2);
    repo.apply_args(&["apply", "--allow-source-outside", "-"], &batch).expect(0);
    assert_eq!(std::fs::read(repo.path("copied.bin")).unwrap(), b"copied \x00 bytes");
    repo.apply_unchanged("files:\n  - write: x\n    source: no-such-file\n", 2);
    repo.apply_unchanged("files:\n  - write: x\n    source: .git\n", 2);
}

#[test]
fn mode_100755_makes_an_executable_and_100644_a_plain_file() {
    let repo = Repo::new();
    repo.apply("files:\n  - write: run.sh\n    content: \"#!/bin/sh\\n\"\n    mode: \"100755\"\n  - write: plain\n    content: p\n    mode: 100644\n")
        .expect(0);
    assert!(repo.is_executable("run.sh"));
    assert!(!repo.is_executable("plain"));
    repo.apply("files:\n  - write: run.sh\n    content: not any more\n    mode: 100644\n").expect(0);
    assert!(!repo.is_executable("run.sh"));
    assert_eq!(repo.read("run.sh"), "not any more");
}

#[test]
fn mode_120000_writes_a_symlink_whose_target_is_the_content() {
    let repo = Repo::new();
    repo.apply("files:\n  - write: link\n    content: README\n    mode: \"120000\"\n  - write: d/dangling\n    content: ../nowhere/at/all\n    mode: \"120000\"\n")
        .expect(0);
    let meta = std::fs::symlink_metadata(repo.path("link")).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(std::fs::read_link(repo.path("link")).unwrap().to_str(), Some("README"));
    assert_eq!(repo.read("link"), "hello\n");
    assert_eq!(std::fs::read_link(repo.path("d/dangling")).unwrap().to_str(), Some("../nowhere/at/all"));
    repo.apply_unchanged("files:\n  - write: l2\n    content: \"\"\n    mode: \"120000\"\n", 2);
}

#[test]
fn a_replaced_file_keeps_its_mode_when_mode_is_omitted() {
    let repo = Repo::new();
    repo.write("tool", "v1\n");
    chmod(&repo, "tool", 0o755);
    repo.apply("files:\n  - write: tool\n    content: \"v2\\n\"\n").expect(0);
    assert_eq!(repo.read("tool"), "v2\n");
    assert!(repo.is_executable("tool"), "the executable bit survives");
    std::os::unix::fs::symlink("README", repo.path("ln")).unwrap();
    repo.apply("files:\n  - write: ln\n    content: tool\n").expect(0);
    assert_eq!(std::fs::read_link(repo.path("ln")).unwrap().to_str(), Some("tool"));
}

#[test]
fn unsupported_modes_are_invalid() {
    let repo = Repo::new();
    for mode in ["100664", "040000", "160000", "755"] {
        repo.apply_unchanged(&format!("files:\n  - write: x\n    content: x\n    mode: \"{mode}\"\n"), 2);
    }
}

#[test]
fn expect_blob_absent_and_present_hold() {
    let repo = Repo::new();
    repo.write("gone.txt", "bye\n");
    let readme = repo.blob_of("README");
    // The blob id is what `git hash-object --no-filters` prints: raw bytes, no CRLF filter.
    repo.git(&["config", "core.autocrlf", "true"]);
    repo.write("crlf.txt", "a\r\nb\r\n");
    let crlf = repo.blob_of("crlf.txt");
    repo.apply(&format!(
        "files:\n  - write: README\n    content: new\n    expect: {readme}\n  - write: fresh\n    content: f\n    expect: absent\n  - delete: gone.txt\n    expect: present\n  - write: crlf.txt\n    content: lf\n    expect: {crlf}\n"
    ))
    .expect(0);
    assert_eq!(repo.read("README"), "new");
    assert_eq!(repo.read("fresh"), "f");
    assert!(!repo.exists("gone.txt"));
    assert_eq!(repo.read("crlf.txt"), "lf");
}

#[test]
fn an_expect_mismatch_is_refused() {
    let repo = Repo::new();
    let other = repo.write_blob(b"other\n");
    for entry in [
        format!("write: README\n    content: x\n    expect: {other}"),
        "write: README\n    content: x\n    expect: absent".to_string(),
        "write: nope\n    content: x\n    expect: present".to_string(),
        format!("write: nope\n    content: x\n    expect: {other}"),
        "delete: nope\n    expect: present".to_string(),
        format!("delete: README\n    expect: {other}"),
        format!("rename: README\n    to: R2\n    expect: {other}"),
    ] {
        let out = repo.apply_unchanged(
            &format!("refs:\n  - create: refs/heads/t\n    to: HEAD\nfiles:\n  - write: first.txt\n    content: \"1\"\n  - {entry}\n"),
            1,
        );
        let json = out.json();
        assert_eq!(json["error"]["kind"], "precondition", "{entry}");
        assert!(json["error"]["entry"].as_str().unwrap().starts_with("files[1] "), "{json}");
    }
}

#[test]
fn a_malformed_expect_is_invalid() {
    let repo = Repo::new();
    repo.apply_unchanged("files:\n  - write: README\n    content: x\n    expect: abc\n", 2);
}

#[test]
fn delete_removes_the_directories_it_empties_and_no_more() {
    let repo = Repo::new();
    repo.write("a/b/c/deep.txt", "d");
    repo.write("a/keep.txt", "k");
    let out = repo.apply("files:\n  - delete: a/b/c/deep.txt\n");
    out.expect(0);
    assert!(!repo.exists("a/b"), "emptied directories are removed");
    assert!(repo.exists("a/keep.txt"));
    assert_eq!(out.json()["files"][0]["action"], "delete");
    repo.apply("files:\n  - delete: a/keep.txt\n  - delete: README\n").expect(0);
    assert!(!repo.exists("a"));
    assert!(repo.dir.is_dir(), "the work-tree root stays");
    assert!(repo.path(".git/HEAD").exists());
}

#[test]
fn delete_of_a_missing_file_is_a_no_op() {
    let repo = Repo::new();
    repo.apply_unchanged("files:\n  - delete: nope/nothing.txt\n", 0);
}

#[test]
fn delete_of_a_symlink_removes_the_link_not_its_target() {
    let repo = Repo::new();
    std::os::unix::fs::symlink("README", repo.path("ln")).unwrap();
    repo.apply("files:\n  - delete: ln\n    expect: present\n").expect(0);
    assert!(!repo.exists("ln"));
    assert_eq!(repo.read("README"), "hello\n");
}

#[test]
fn rename_moves_content_and_mode_into_new_directories() {
    let repo = Repo::new();
    repo.write("bin/tool", "#!/bin/sh\n");
    chmod(&repo, "bin/tool", 0o755);
    std::os::unix::fs::symlink("../README", repo.path("bin/ln")).unwrap();
    let blob = repo.blob_of("bin/tool");
    let out = repo.apply(&format!(
        "files:\n  - rename: bin/tool\n    to: tools/x/tool2\n    expect: {blob}\n  - rename: bin/ln\n    to: tools/x/ln\n"
    ));
    out.expect(0);
    assert!(!repo.exists("bin"), "the emptied source directory is removed");
    assert_eq!(repo.read("tools/x/tool2"), "#!/bin/sh\n");
    assert!(repo.is_executable("tools/x/tool2"));
    assert_eq!(std::fs::read_link(repo.path("tools/x/ln")).unwrap().to_str(), Some("../README"));
    let json = out.json();
    assert_eq!(json["files"][0]["action"], "rename");
    assert_eq!(json["files"][0]["to"], "tools/x/tool2");
    assert_eq!(json["files"][0]["old"], blob.as_str());
    assert_eq!(json["files"][0]["new"], blob.as_str());
}

#[test]
fn rename_onto_an_existing_path_or_from_a_missing_one_is_refused() {
    let repo = Repo::new();
    repo.write("a.txt", "a");
    repo.write("dir/inner", "i");
    for (from, to) in [("a.txt", "README"), ("a.txt", "dir"), ("missing", "b.txt")] {
        repo.apply_unchanged(
            &format!("files:\n  - write: first\n    content: x\n  - rename: {from}\n    to: {to}\n"),
            1,
        );
    }
}

#[test]
fn write_onto_a_directory_is_refused() {
    let repo = Repo::new();
    repo.write("dir/inner", "i");
    let out = repo.apply_unchanged("files:\n  - write: dir\n    content: x\n", 1);
    assert!(out.stderr.contains("files[0] dir"), "{out:?}");
    repo.apply_unchanged("files:\n  - delete: dir\n", 1);
    // A parent that is a file cannot become a directory.
    repo.apply_unchanged("files:\n  - write: README/x\n    content: x\n", 1);
}

#[test]
fn one_failing_entry_refuses_every_ref_and_file_change() {
    let repo = Repo::new();
    repo.write("old.txt", "o");
    repo.write("tool", "t");
    chmod(&repo, "tool", 0o755);
    repo.apply_unchanged(
        "refs:\n  - create: refs/heads/new/branch\n    to: HEAD\n  - delete: refs/heads/main\nfiles:\n  - write: n/e/w.txt\n    content: n\n  - delete: old.txt\n  - rename: tool\n    to: t2/tool\n  - write: README\n    content: x\n    mode: \"100755\"\n  - write: last\n    content: l\n    expect: present\n",
        1,
    );
}

#[test]
fn unsafe_paths_are_invalid() {
    let repo = Repo::new();
    for path in [
        "../escape",
        "a/../../escape",
        "/tmp/absolute",
        ".git/config",
        ".GIT/config",
        "sub/.Git/hooks/pre-commit",
        ".git",
        "a//b",
        "a/",
        "./a",
        "a/./b",
    ] {
        let out = repo.apply_unchanged(&format!("files:\n  - write: \"{path}\"\n    content: x\n"), 2);
        assert!(out.stderr.starts_with("error: files[0]"), "{path}: {out:?}");
        repo.apply_unchanged(&format!("files:\n  - delete: \"{path}\"\n"), 2);
        repo.apply_unchanged(&format!("files:\n  - rename: README\n    to: \"{path}\"\n"), 2);
    }
    repo.apply_unchanged("files:\n  - write: \"\"\n    content: x\n", 2);
}

#[test]
fn a_path_through_a_symlink_is_refused() {
    let repo = Repo::new();
    let outside = repo.tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "v").unwrap();
    std::fs::create_dir(repo.path("sub")).unwrap();
    std::fs::write(repo.path("sub/victim"), "s").unwrap();
    std::os::unix::fs::symlink(&outside, repo.path("out")).unwrap();
    std::os::unix::fs::symlink("sub", repo.path("in")).unwrap();
    for link in ["out", "in"] {
        for entry in [
            format!("write: {link}/new\n    content: x"),
            format!("write: {link}/victim\n    content: x"),
            format!("delete: {link}/victim"),
            format!("rename: README\n    to: {link}/moved"),
            format!("rename: {link}/victim\n    to: moved"),
            format!("write: {link}/a/b\n    content: x"),
        ] {
            // The spelling is fine; what is on disk refuses it (1), like a precondition, and
            // the error says why.
            let out = repo.apply_unchanged(&format!("files:\n  - {entry}\n"), 1);
            assert!(out.stderr.contains(&format!("'{link}' is a symbolic link")), "{out:?}");
        }
    }
    assert_eq!(std::fs::read_to_string(outside.join("victim")).unwrap(), "v");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
}

/// A path through a regular file is refused as "not a directory" (a symbolic link has its own
/// message and hint, above): the error names what is on disk.
#[test]
fn a_path_through_a_regular_file_is_refused_as_not_a_directory() {
    let repo = Repo::new();
    repo.write("other.txt", "o\n");
    let entries =
        ["write: README/new\n    content: x", "delete: README/x", "rename: other.txt\n    to: README/x"];
    for entry in entries {
        let out = repo.apply_unchanged(&format!("files:\n  - {entry}\n"), 1);
        assert!(out.stderr.contains("'README' is not a directory"), "{out:?}");
        assert!(!out.stderr.contains("symbolic link"), "{out:?}");
    }
}

#[test]
fn writing_onto_a_symlink_replaces_the_link_not_its_target() {
    let repo = Repo::new();
    let outside = repo.tmp.path().join("outside.txt");
    std::fs::write(&outside, "keep me").unwrap();
    std::os::unix::fs::symlink(&outside, repo.path("ln")).unwrap();
    repo.apply("files:\n  - write: ln\n    content: mine\n    mode: \"100644\"\n").expect(0);
    assert!(!std::fs::symlink_metadata(repo.path("ln")).unwrap().file_type().is_symlink());
    assert_eq!(repo.read("ln"), "mine");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me");
}

#[test]
fn two_entries_on_one_path_or_a_parent_of_another_are_invalid() {
    let repo = Repo::new();
    for files in [
        "  - write: a\n    content: one\n  - delete: a\n",
        "  - write: b\n    content: one\n  - rename: README\n    to: b\n",
        "  - rename: README\n    to: c\n  - delete: README\n",
        "  - write: d\n    content: one\n  - write: d/e\n    content: two\n",
        "  - write: x/y/z\n    content: one\n  - delete: x/y\n",
        "  - rename: README\n    to: x\n  - write: x/in\n    content: two\n",
    ] {
        let out = repo.apply_unchanged(&format!("files:\n{files}"), 2);
        assert!(out.stderr.contains("both name") || out.stderr.contains("parent directory"), "{out:?}");
    }
}

#[test]
fn files_in_a_bare_repository_are_invalid() {
    let repo = Repo::init(&["--bare"]);
    let out = repo.apply_unchanged(
        "refs:\n  - create: refs/heads/x\n    to: main\nfiles:\n  - write: a\n    content: x\n",
        2,
    );
    assert!(out.stderr.contains("bare"), "{out:?}");
}

/// Review finding: a replaced 0600 file came back 0644 (world-readable).
#[test]
fn a_replaced_file_keeps_its_permission_bits_and_only_gains_or_loses_execute() {
    use std::os::unix::fs::PermissionsExt;
    let repo = Repo::new();
    repo.write("secret", "old\n");
    repo.write("tool", "old\n");
    let set = |p: &str, m: u32| {
        std::fs::set_permissions(repo.dir.join(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    let mode = |p: &str| std::fs::metadata(repo.dir.join(p)).unwrap().permissions().mode() & 0o7777;
    repo.write("shared", "old\n");
    set("secret", 0o600);
    set("tool", 0o640);
    // Bits a umask of 022 would strip at creation: kept all the same.
    set("shared", 0o666);
    repo.apply(
        "files:\n  - write: secret\n    content: new\n  - write: tool\n    content: new\n    mode: \"100755\"\n  - write: shared\n    content: new\n",
    )
    .expect(0);
    assert_eq!(mode("secret"), 0o600);
    assert_eq!(mode("tool"), 0o750);
    assert_eq!(mode("shared"), 0o666);
}

/// Review finding: syncing a staged symlink followed it (a fifo as target blocked apply).
#[test]
fn a_symlink_to_a_fifo_is_written_without_opening_the_fifo() {
    let repo = Repo::new();
    let fifo = repo.tmp.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let batch = format!("files:\n  - write: link\n    mode: \"120000\"\n    content: {}\n", fifo.display());
    repo.apply(&batch).expect(0);
    assert_eq!(std::fs::read_link(repo.dir.join("link")).unwrap(), fifo);
}

/// A path the file system cannot even look up is a fatal error (128), not a refusal, even when an
/// earlier entry was refused: the check collects refusals and goes on, but stops at anything else
/// (`--dry-run` too, which lists every refusal).
#[test]
fn a_name_too_long_to_look_up_is_fatal_even_after_a_refused_entry() {
    let repo = Repo::new();
    let long = "n".repeat(300);
    let batch = format!(
        "files:\n  - write: x.txt\n    content: x\n    expect: present\n  - write: {long}\n    content: y\n"
    );
    for args in [&["apply", "--json", "-"][..], &["apply", "--dry-run", "-"]] {
        let out = repo.apply_args_unchanged(args, &batch, 128);
        assert!(out.stderr.contains("File name too long"), "{out:?}");
    }
}
