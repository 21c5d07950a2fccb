use std::path::Path;
use std::process::Command;

use super::*;

const HASH: &str = "sha256:0123";

/// Runs git in `dir` with a fixed identity, failing the test on error.
pub(crate) fn git_ok(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Sluice Test",
            "-c",
            "user.email=test@sluice.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git must be installed to run these tests");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A fresh repository with identity configured locally, as the brief of these tests asks.
pub(crate) fn init_repo(dir: &Path) {
    git_ok(dir, &["init", "--quiet"]);
    git_ok(dir, &["config", "user.name", "Sluice Test"]);
    git_ok(dir, &["config", "user.email", "test@sluice.invalid"]);
    git_ok(dir, &["config", "commit.gpgsign", "false"]);
}

pub(crate) fn commit_all(dir: &Path, message: &str) -> String {
    git_ok(dir, &["add", "-A"]);
    git_ok(dir, &["commit", "--quiet", "-m", message]);
    git_ok(dir, &["rev-parse", "HEAD"])
}

#[test]
fn outside_a_work_tree_the_content_hash_is_the_revision() {
    let dir = tempfile::tempdir().unwrap();
    let revision = describe(dir.path(), HASH);
    assert_eq!(
        revision,
        Revision {
            id: HASH.to_string(),
            git_dir: None
        }
    );
}

#[test]
fn a_missing_directory_falls_back_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let revision = describe(&dir.path().join("nope"), HASH);
    assert_eq!(revision.id, HASH);
}

#[test]
fn a_repository_without_commits_falls_back_but_knows_its_git_dir() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let revision = describe(repo.path(), HASH);
    assert_eq!(revision.id, HASH);
    let git_dir = revision.git_dir.unwrap();
    assert!(git_dir.ends_with(".git"), "{}", git_dir.display());
}

#[test]
fn a_clean_checkout_is_named_by_its_commit_and_changes_make_it_dirty() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let policies = repo.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("a.rego"), "package sluice.a\n").unwrap();
    std::fs::write(repo.path().join("README"), "hello\n").unwrap();
    let head = commit_all(repo.path(), "first");
    assert_eq!(head.len(), 40);

    assert_eq!(describe(&policies, HASH).id, format!("git:{head}"));
    assert_eq!(describe(repo.path(), HASH).id, format!("git:{head}"));

    // A change outside the policy directory does not make its policies dirty.
    std::fs::write(repo.path().join("README"), "changed\n").unwrap();
    assert_eq!(describe(&policies, HASH).id, format!("git:{head}"));

    // A modified tracked file and an untracked file both do.
    std::fs::write(policies.join("a.rego"), "package sluice.a\n# edit\n").unwrap();
    assert_eq!(describe(&policies, HASH).id, format!("git:{head}+dirty"));
    git_ok(
        repo.path(),
        &["checkout", "--quiet", "--", "policies/a.rego"],
    );
    assert_eq!(describe(&policies, HASH).id, format!("git:{head}"));
    std::fs::write(policies.join("b.rego"), "package sluice.b\n").unwrap();
    assert_eq!(describe(&policies, HASH).id, format!("git:{head}+dirty"));

    // Committing names the new commit.
    let second = commit_all(repo.path(), "second");
    assert_ne!(head, second);
    assert_eq!(describe(&policies, HASH).id, format!("git:{second}"));
}

#[test]
fn describing_does_not_touch_the_index() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    std::fs::write(repo.path().join("a.rego"), "package sluice.a\n").unwrap();
    commit_all(repo.path(), "first");
    let index = repo.path().join(".git/index");
    let before = std::fs::metadata(&index).unwrap().modified().unwrap();
    // Make the stat data stale so that a status allowed to refresh would rewrite it.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(repo.path().join("a.rego"), "package sluice.a\n").unwrap();
    let _ = describe(repo.path(), HASH);
    let after = std::fs::metadata(&index).unwrap().modified().unwrap();
    assert_eq!(before, after);
}
