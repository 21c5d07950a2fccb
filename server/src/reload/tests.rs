use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RemoveKind};
use notify::{Event, EventKind};
use sluice_engine::{DecisionInput, Effect};

use super::watcher::{Relevance, WatchedPaths};
use super::*;
use crate::config::ReloadConfig;
use crate::revision::tests::{commit_all, git_ok, init_repo};

const POLICY_A: &str =
    "package sluice.t\n\ndeny contains \"from-a\" if input.action == \"llm.chat\"\n";
const POLICY_B: &str =
    "package sluice.t\n\ndeny contains \"from-b\" if input.action == \"llm.chat\"\n";
const POLICY_C: &str =
    "package sluice.t\n\ndeny contains \"from-c\" if input.action == \"llm.chat\"\n";
/// A parse error on line 3.
const BROKEN: &str = "package sluice.t\n\ndeny contains \"x\" if input.action == == \"llm.chat\"\n";

const INPUT: &str = r#"{"version":"1","id":"d1","time":"2026-01-01T00:00:00Z","surface":"prompt","action":"llm.chat","principal":{"key_id":"k1","team":"payments"},"resource":{"kind":"model","id":"gpt-4o"}}"#;

/// Generous: CI machines are slow and busy. Only the failure case ever waits this long.
const WAIT: Duration = Duration::from_secs(20);

fn input() -> DecisionInput {
    serde_json::from_str(INPUT).unwrap()
}

/// Watcher settings that make tests quick and prove the watcher, not the poll, did it.
fn watch_only() -> ReloadConfig {
    ReloadConfig {
        debounce_ms: 20,
        poll_interval_ms: 0,
    }
}

/// A manifest with a generous Rego time limit: the engine's limit is wall-clock time, and
/// on a loaded two-core machine a descheduled evaluation would fail closed with a timeout.
const MANIFEST: &str = r#"{"sluice":{"rego_timeout_ms":60000}}"#;

fn write_manifest(dir: &Path) {
    std::fs::write(dir.join(".manifest"), MANIFEST).unwrap();
}

fn write_policy(dir: &Path, text: &str) {
    std::fs::write(dir.join("a.rego"), text).unwrap();
}

/// A policy directory `policies/` inside a fresh temporary directory.
fn policy_dir(text: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    write_manifest(&dir);
    write_policy(&dir, text);
    (root, dir)
}

/// The deny messages of a decision against the current snapshot.
fn denies(store: &PolicyStore) -> Vec<String> {
    let decision = store.current().evaluate(&input());
    decision
        .reasons
        .iter()
        .filter(|r| r.effect == Effect::Deny)
        .map(|r| r.message.clone())
        .collect()
}

/// Polls the status until `done` holds; fails with the last status after [`WAIT`].
async fn wait_for(
    store: &PolicyStore,
    what: &str,
    done: impl Fn(&ReloadStatus) -> bool,
) -> ReloadStatus {
    let started = tokio::time::Instant::now();
    loop {
        let status = store.status();
        if done(&status) {
            return status;
        }
        assert!(
            started.elapsed() < WAIT,
            "timed out waiting for {what}; status: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn open_refuses_a_broken_bundle_with_positions() {
    let (_root, dir) = policy_dir(BROKEN);
    let error = PolicyStore::open(&dir).unwrap_err();
    let first = error.error.diagnostics.first().unwrap();
    assert_eq!(first.file, "a.rego");
    assert_eq!(first.line, 3, "{first}");
    assert!(
        error.to_string().contains("cannot load the policy bundle"),
        "{error}"
    );
}

#[test]
fn open_names_the_bundle_by_content_outside_git() {
    let (_root, dir) = policy_dir(POLICY_A);
    let store = PolicyStore::open(&dir).unwrap();
    let status = store.status();
    assert!(status.revision.starts_with("sha256:"), "{status:?}");
    assert_eq!(status.revision, status.content_hash);
    assert_eq!(store.current().revision(), status.revision);
    assert_eq!(status.reloads, ReloadCounters::default());
    assert_eq!(status.last_error, None);
    assert_eq!(denies(&store), ["from-a"]);
}

#[tokio::test]
async fn manual_reloads_swap_report_and_keep_the_last_good_bundle() {
    let (_root, dir) = policy_dir(POLICY_A);
    let store = PolicyStore::open(&dir).unwrap();
    let revision_a = store.status().revision;

    assert_eq!(
        store.reload(Trigger::Manual).await,
        ReloadOutcome::Unchanged {
            revision: revision_a.clone()
        }
    );

    write_policy(&dir, POLICY_B);
    let ReloadOutcome::Loaded {
        revision: revision_b,
        previous_revision,
    } = store.reload(Trigger::Manual).await
    else {
        panic!("expected a load: {:?}", store.status());
    };
    assert_eq!(previous_revision, revision_a);
    assert_ne!(revision_b, revision_a);
    assert_eq!(store.current().revision(), revision_b);
    assert_eq!(denies(&store), ["from-b"]);
    assert_eq!(store.status().reloads.successes, 1);

    // A broken change is reported with its position and never becomes active.
    write_policy(&dir, BROKEN);
    let ReloadOutcome::Failed {
        active_revision,
        error,
    } = store.reload(Trigger::Manual).await
    else {
        panic!("expected a failure: {:?}", store.status());
    };
    assert_eq!(active_revision, revision_b);
    let diagnostic = error.diagnostics.first().unwrap();
    assert_eq!((diagnostic.file.as_str(), diagnostic.line), ("a.rego", 3));
    assert!(error.message.starts_with("a.rego:3:"), "{}", error.message);
    assert_eq!(error.trigger, Trigger::Manual);
    assert!(error.revision.is_some());
    assert_eq!(store.current().revision(), revision_b);
    assert_eq!(denies(&store), ["from-b"]);
    let status = store.status();
    assert_eq!(status.revision, revision_b);
    assert_eq!(status.reloads.failures, 1);
    assert_eq!(status.reloads.consecutive_failures, 1);
    assert_eq!(status.last_error.as_ref(), Some(&error));

    // Events and polls over the same broken content do not count it again; an operator
    // asking does get it again.
    assert!(matches!(
        store.reload(Trigger::Watch).await,
        ReloadOutcome::Unchanged { .. }
    ));
    assert!(matches!(
        store.reload(Trigger::Poll).await,
        ReloadOutcome::Unchanged { .. }
    ));
    assert_eq!(store.status().reloads.failures, 1);
    assert!(matches!(
        store.reload(Trigger::Manual).await,
        ReloadOutcome::Failed { .. }
    ));
    assert_eq!(store.status().reloads.consecutive_failures, 2);

    // Restoring the active content resolves the failure without a swap.
    write_policy(&dir, POLICY_B);
    assert!(matches!(
        store.reload(Trigger::Watch).await,
        ReloadOutcome::Unchanged { .. }
    ));
    let status = store.status();
    assert_eq!(status.reloads.consecutive_failures, 0);
    assert_eq!(status.reloads.successes, 1);
    assert!(status.last_error.is_some(), "the last error stays visible");
}

#[tokio::test]
async fn an_unreadable_directory_is_a_failure_counted_once() {
    let (root, dir) = policy_dir(POLICY_A);
    let store = PolicyStore::open(&dir).unwrap();
    std::fs::rename(&dir, root.path().join("elsewhere")).unwrap();
    let ReloadOutcome::Failed { error, .. } = store.reload(Trigger::Watch).await else {
        panic!("expected a failure");
    };
    assert_eq!(error.revision, None);
    assert!(!error.diagnostics.is_empty());
    assert!(matches!(
        store.reload(Trigger::Poll).await,
        ReloadOutcome::Unchanged { .. }
    ));
    assert_eq!(store.status().reloads.failures, 1);
    assert_eq!(denies(&store), ["from-a"]);
}

#[tokio::test]
async fn the_poll_reloads_changed_content() {
    let (_root, dir) = policy_dir(POLICY_A);
    let store = PolicyStore::open(&dir).unwrap();
    assert!(matches!(
        store.reload(Trigger::Poll).await,
        ReloadOutcome::Unchanged { .. }
    ));
    write_policy(&dir, POLICY_B);
    assert!(matches!(
        store.reload(Trigger::Poll).await,
        ReloadOutcome::Loaded { .. }
    ));
    assert!(matches!(
        store.reload(Trigger::Poll).await,
        ReloadOutcome::Unchanged { .. }
    ));
    assert_eq!(denies(&store), ["from-b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_edits_and_keeps_the_last_good_bundle() {
    let (_root, dir) = policy_dir(POLICY_A);
    let store = Arc::new(PolicyStore::open(&dir).unwrap());
    let watcher = spawn_watcher(Arc::clone(&store), watch_only());
    let revision_a = store.status().revision;

    write_policy(&dir, POLICY_B);
    let status = wait_for(&store, "the edit to load", |s| s.revision != revision_a).await;
    assert_eq!(denies(&store), ["from-b"]);
    let revision_b = status.revision;

    write_policy(&dir, BROKEN);
    // Waiting for the broken line itself: `std::fs::write` truncates first, and a reload
    // may fail on the empty file before the broken content is complete.
    let status = wait_for(&store, "the broken edit to fail", |s| {
        s.last_error
            .as_ref()
            .is_some_and(|e| e.diagnostics.iter().any(|d| d.line == 3))
    })
    .await;
    assert_eq!(status.revision, revision_b);
    assert_eq!(store.current().revision(), revision_b);
    let error = status.last_error.unwrap();
    assert_eq!(error.trigger, Trigger::Watch);
    assert!(
        error
            .diagnostics
            .iter()
            .any(|d| d.file == "a.rego" && d.line == 3),
        "{error:?}"
    );
    assert_eq!(denies(&store), ["from-b"]);

    // A new file in a new subdirectory is watched too.
    write_policy(&dir, POLICY_B);
    std::fs::create_dir(dir.join("more")).unwrap();
    std::fs::write(
        dir.join("more/c.rego"),
        "package sluice.more\n\ndeny contains \"more\" if input.action == \"llm.chat\"\n",
    )
    .unwrap();
    wait_for(&store, "the new file to load", |s| {
        s.revision != revision_b && s.reloads.consecutive_failures == 0
    })
    .await;
    assert_eq!(denies(&store).len(), 2, "{:?}", denies(&store));

    watcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_follows_a_directory_replaced_by_rename() {
    let (root, dir) = policy_dir(POLICY_A);
    let store = Arc::new(PolicyStore::open(&dir).unwrap());
    let watcher = spawn_watcher(Arc::clone(&store), watch_only());
    let revision_a = store.status().revision;

    // Deployment style: build the next version beside it, then swap names.
    let next = root.path().join("policies.next");
    std::fs::create_dir(&next).unwrap();
    write_manifest(&next);
    write_policy(&next, POLICY_B);
    std::fs::rename(&dir, root.path().join("policies.prev")).unwrap();
    std::fs::rename(&next, &dir).unwrap();
    let status = wait_for(&store, "the swapped directory to load", |s| {
        s.revision != revision_a && s.reloads.consecutive_failures == 0
    })
    .await;
    assert_eq!(denies(&store), ["from-b"]);

    // The watch now follows the new directory: an edit inside it is seen.
    write_policy(&dir, POLICY_C);
    wait_for(&store, "an edit in the new directory", |s| {
        s.revision != status.revision && s.reloads.consecutive_failures == 0
    })
    .await;
    assert_eq!(denies(&store), ["from-c"]);
    watcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_follows_a_directory_removed_and_recreated() {
    let (_root, dir) = policy_dir(POLICY_A);
    let store = Arc::new(PolicyStore::open(&dir).unwrap());
    let watcher = spawn_watcher(Arc::clone(&store), watch_only());
    let revision_a = store.status().revision;

    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    write_manifest(&dir);
    write_policy(&dir, POLICY_B);
    // A reload may catch the directory half-written (the manifest, no policy yet), which
    // is a valid bundle too; what matters is that the complete one is active in the end.
    let status = wait_for(&store, "the recreated directory to load", |s| {
        s.revision != revision_a
            && s.reloads.consecutive_failures == 0
            && denies(&store) == ["from-b"]
    })
    .await;

    write_policy(&dir, POLICY_C);
    wait_for(&store, "an edit in the recreated directory", |s| {
        s.revision != status.revision
    })
    .await;
    assert_eq!(denies(&store), ["from-c"]);
    watcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_reloads_on_checkout_and_commit() {
    let repo = tempfile::tempdir().unwrap();
    init_repo(repo.path());
    let dir = repo.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    write_manifest(&dir);
    write_policy(&dir, POLICY_B);
    git_ok(repo.path(), &["checkout", "--quiet", "-b", "other"]);
    let other = commit_all(repo.path(), "policies b");
    git_ok(repo.path(), &["checkout", "--quiet", "-b", "main"]);
    write_policy(&dir, POLICY_A);
    let main = commit_all(repo.path(), "policies a");

    let store = Arc::new(PolicyStore::open(&dir).unwrap());
    assert_eq!(store.status().revision, format!("git:{main}"));
    let watcher = spawn_watcher(Arc::clone(&store), watch_only());

    git_ok(repo.path(), &["checkout", "--quiet", "other"]);
    wait_for(&store, "the checkout to load", |s| {
        s.revision == format!("git:{other}")
    })
    .await;
    assert_eq!(denies(&store), ["from-b"]);

    write_policy(&dir, POLICY_C);
    wait_for(&store, "the dirty edit to load", |s| {
        s.revision == format!("git:{other}+dirty")
    })
    .await;
    assert_eq!(denies(&store), ["from-c"]);

    // A commit changes no policy file, only `HEAD`: the git directory watch sees it.
    let third = commit_all(repo.path(), "policies c");
    let status = wait_for(&store, "the commit to be noticed", |s| {
        s.revision == format!("git:{third}")
    })
    .await;
    // Not `failures == 0`: a reload may catch a file half-written by the checkout or by
    // `std::fs::write` (truncate, then write) and fail; only the end state must be good.
    assert_eq!(status.reloads.consecutive_failures, 0, "{status:#?}");
    assert_eq!(denies(&store), ["from-c"]);
    watcher.stop().await;
}

/// Readers evaluate in a loop while the bundle is rewritten and reloaded between two valid
/// versions: every decision must come from exactly one snapshot (its revision matches its
/// reasons) and no evaluation may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_during_reloads_each_see_one_snapshot() {
    const READERS: usize = 3;
    const RELOADS: usize = 24;
    const MAX_EVALUATIONS_PER_READER: usize = 200_000;

    let (_root, dir) = policy_dir(POLICY_A);
    let store = Arc::new(PolicyStore::open(&dir).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let input = input();
                let mut seen: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
                let mut evaluations = 0usize;
                while !done.load(Ordering::Relaxed) && evaluations < MAX_EVALUATIONS_PER_READER {
                    let snapshot = store.current();
                    let decision = snapshot.evaluate(&input);
                    assert_eq!(decision.revision, snapshot.revision());
                    assert!(!decision.allow, "{decision:?}");
                    assert!(
                        decision.reasons.iter().all(|r| r.effect != Effect::Error),
                        "{decision:?}"
                    );
                    let messages = decision
                        .reasons
                        .iter()
                        .filter(|r| r.effect == Effect::Deny)
                        .map(|r| r.message.clone())
                        .collect();
                    seen.entry(decision.revision).or_default().insert(messages);
                    evaluations += 1;
                }
                (seen, evaluations)
            })
        })
        .collect();

    let mut active = BTreeMap::new();
    active.insert(store.status().revision, vec!["from-a".to_string()]);
    for round in 1..=RELOADS {
        let (text, message) = if round % 2 == 1 {
            (POLICY_B, "from-b")
        } else {
            (POLICY_A, "from-a")
        };
        write_policy(&dir, text);
        let outcome = store.reload(Trigger::Manual).await;
        let ReloadOutcome::Loaded { revision, .. } = outcome else {
            panic!("round {round}: {outcome:?}");
        };
        active.insert(revision, vec![message.to_string()]);
        // Give the readers time to decide against this snapshot.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    done.store(true, Ordering::Relaxed);

    assert_eq!(active.len(), 2, "two contents alternate: two revisions");
    assert_eq!(store.status().reloads.successes, RELOADS as u64);
    let mut total = 0;
    for reader in readers {
        let (seen, evaluations) = reader.join().expect("a reader panicked");
        total += evaluations;
        for (revision, message_sets) in seen {
            let expected = active
                .get(&revision)
                .unwrap_or_else(|| panic!("revision {revision} was never active"));
            assert_eq!(
                message_sets.into_iter().collect::<Vec<_>>(),
                vec![expected.clone()],
                "revision {revision} decided with another snapshot's policies"
            );
        }
    }
    assert!(total > 0);
}

fn event(kind: EventKind, paths: &[&str]) -> notify::Result<Event> {
    let mut event = Event::new(kind);
    for path in paths {
        event = event.add_path(PathBuf::from(path));
    }
    Ok(event)
}

#[test]
fn watcher_events_are_judged_by_path_and_kind() {
    let paths = WatchedPaths {
        dir: PathBuf::from("/srv/repo/policies"),
        git_dir: Some(PathBuf::from("/srv/repo/.git")),
    };
    let modify = EventKind::Modify(ModifyKind::Data(DataChange::Any));
    let reload = Relevance {
        reload: true,
        rearm: false,
    };
    let rearm = Relevance {
        reload: true,
        rearm: true,
    };
    let ignore = Relevance::default();
    let judge = |kind, paths_: &[&str]| paths.relevance(&event(kind, paths_));

    assert_eq!(judge(modify, &["/srv/repo/policies/a.rego"]), reload);
    assert_eq!(judge(modify, &["/srv/repo/policies/sub/data.json"]), reload);
    assert_eq!(
        judge(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/srv/repo/policies/a.rego"]
        ),
        reload
    );
    // Our own reads of the bundle must not trigger reloads.
    assert_eq!(
        judge(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &["/srv/repo/policies/a.rego"]
        ),
        ignore
    );
    assert_eq!(
        judge(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            &["/srv/repo/policies/a.rego"]
        ),
        ignore
    );
    // The directory itself, seen from the parent: reload and re-arm.
    assert_eq!(
        judge(
            EventKind::Remove(RemoveKind::Folder),
            &["/srv/repo/policies"]
        ),
        rearm
    );
    assert_eq!(
        judge(
            EventKind::Create(CreateKind::Folder),
            &["/srv/repo/policies"]
        ),
        rearm
    );
    // Siblings seen through the parent watch do not count.
    assert_eq!(judge(modify, &["/srv/repo/README.md"]), ignore);
    // The external git directory counts only where HEAD moves.
    assert_eq!(judge(modify, &["/srv/repo/.git/HEAD"]), reload);
    assert_eq!(judge(modify, &["/srv/repo/.git/logs/HEAD"]), reload);
    assert_eq!(judge(modify, &["/srv/repo/.git/index"]), ignore);
    assert_eq!(judge(modify, &["/srv/repo/.git/HEAD.lock"]), ignore);
    assert_eq!(judge(modify, &["/srv/repo/.git/objects/ab/cdef"]), ignore);
    // An error or a rescan request re-reads everything.
    assert_eq!(
        paths.relevance(&Err(notify::Error::generic("queue overflow"))),
        rearm
    );
}

#[test]
fn git_internals_inside_the_policy_directory_count_only_when_head_moves() {
    let paths = WatchedPaths {
        dir: PathBuf::from("/srv/policies"),
        git_dir: None,
    };
    let modify = EventKind::Modify(ModifyKind::Any);
    let judge = |path: &str| paths.relevance(&event(modify, &[path])).reload;
    assert!(judge("/srv/policies/.git/HEAD"));
    assert!(judge("/srv/policies/.git/logs/HEAD"));
    assert!(judge("/srv/policies/.git/refs/heads/main"));
    assert!(judge("/srv/policies/.git/packed-refs"));
    assert!(!judge("/srv/policies/.git/refs/heads/main.lock"));
    assert!(!judge("/srv/policies/.git/index"));
    assert!(!judge("/srv/policies/.git/ORIG_HEAD"));
    assert!(!judge("/srv/policies/.git/objects/12/3456"));
    // Hidden files outside `.git` count: a Kubernetes config map swaps `..data`.
    assert!(judge("/srv/policies/..data"));
}

#[tokio::test]
async fn a_directory_without_policies_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let error = PolicyStore::open(root.path()).unwrap_err();
    assert!(
        error.error.to_string().contains("no policy file"),
        "{error:?}"
    );

    let (_root, dir) = policy_dir(POLICY_A);
    let store = PolicyStore::open(&dir).unwrap();
    std::fs::remove_file(dir.join("a.rego")).unwrap();
    let ReloadOutcome::Failed { error, .. } = store.reload(Trigger::Watch).await else {
        panic!("an emptied directory must not become active");
    };
    assert!(error.message.contains("no policy file"), "{error:?}");
    assert_eq!(denies(&store), ["from-a"]);
}
