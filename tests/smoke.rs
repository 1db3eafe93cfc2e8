mod common;

use common::Repo;

#[test]
fn a_batch_of_refs_and_files_applies_and_reports_json() {
    let repo = Repo::new();
    let head = repo.rev("HEAD");
    let out = repo.apply(&format!(
        "refs:\n  - create: refs/heads/topic\n    to: {head}\nfiles:\n  - write: src/a.txt\n    content: \"hi\\n\"\n"
    ));
    out.expect(0);
    assert_eq!(repo.ref_value("refs/heads/topic").as_deref(), Some(head.as_str()));
    assert_eq!(repo.read("src/a.txt"), "hi\n");
    let json = out.json();
    assert_eq!(json["status"], "applied");
    assert_eq!(json["files"][0]["new"], repo.blob_of("src/a.txt"));
}

#[test]
fn a_refused_batch_leaves_the_repository_byte_identical() {
    let repo = Repo::new();
    let before = repo.snapshot();
    let out = repo.apply(
        "refs:\n  - create: refs/heads/main\n    to: HEAD\nfiles:\n  - write: new.txt\n    content: x\n",
    );
    out.expect(1);
    assert_eq!(out.json()["status"], "refused");
    assert_eq!(repo.snapshot(), before);
}
