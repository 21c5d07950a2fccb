//! When to reload: file events from `notify`, debounced, and a periodic re-scan.
//!
//! What is watched, and why:
//! - the policy directory, recursively: edits, new and removed files;
//! - its parent, non-recursively: replacing the directory itself (`rm -rf` and recreate,
//!   renaming another directory into place, a symlink swap) happens there, and a recursive
//!   watch follows the old inode, not the name;
//! - the repository's git directory (`HEAD`, `packed-refs`, `logs/HEAD`) when it lies outside
//!   the policy directory: a commit changes the revision without touching a policy file.
//!
//! After every batch the recursive watch is re-armed if the directory is a different one
//! (or was touched from its parent); events inside `.git/` count only when they move `HEAD`.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::{PolicyStore, Trigger};
use crate::config::ReloadConfig;

/// Events buffered between notify's thread and the reload task. When full, later events are
/// dropped: a reload is already pending and rebuilds everything anyway.
const EVENT_QUEUE: usize = 1024;

/// Longest a reload waits behind a stream of events that never goes quiet.
const MAX_DEFER: Duration = Duration::from_secs(1);

/// A running watcher; stop it with [`WatchHandle::stop`] (dropping it stops it too).
#[derive(Debug)]
pub struct WatchHandle {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl WatchHandle {
    /// Stops watching, after a reload in progress finishes.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts watching the store's directory; needs a tokio runtime. When the platform watcher
/// cannot start (inotify limits), the periodic re-scan alone keeps the bundle current.
pub fn spawn_watcher(store: Arc<PolicyStore>, config: ReloadConfig) -> WatchHandle {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(store, config, stopped));
    WatchHandle { stop, task }
}

/// Events received since the last reload.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first: Instant,
    last: Instant,
    rearm: bool,
}

impl Pending {
    fn deadline(&self, debounce: Duration) -> Instant {
        (self.last + debounce).min(self.first + debounce.max(MAX_DEFER))
    }
}

async fn run(store: Arc<PolicyStore>, config: ReloadConfig, mut stop: oneshot::Receiver<()>) {
    let (tx, mut rx) = mpsc::channel::<notify::Result<Event>>(EVENT_QUEUE);
    let mut watches = match notify::recommended_watcher(move |event| {
        let _ = tx.try_send(event);
    }) {
        Ok(watcher) => Some(Watches::new(watcher, store.dir().to_path_buf())),
        Err(error) => {
            tracing::error!(%error, poll_interval_ms = config.poll_interval_ms, "cannot watch the policy directory; relying on the periodic re-scan");
            None
        }
    };
    if let Some(watches) = watches.as_mut() {
        watches.rearm(store.git_dir(), true);
        // A change made between the initial load and the arming has no event.
        store.reload(Trigger::Watch).await;
    }
    let mut poll = config.poll_interval().map(|period| {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        interval
    });
    let debounce = config.debounce();
    let mut pending: Option<Pending> = None;
    loop {
        let deadline = pending.map(|p| p.deadline(debounce));
        tokio::select! {
            _ = &mut stop => break,
            event = rx.recv(), if watches.is_some() => {
                let Some(event) = event else {
                    // Only the watcher holds the sender; without it the re-scan carries on.
                    watches = None;
                    continue;
                };
                let Some(watches) = watches.as_ref() else { continue };
                let relevance = watches.relevance(&event);
                if relevance.reload {
                    let now = Instant::now();
                    let mut next = pending.unwrap_or(Pending { first: now, last: now, rearm: false });
                    next.last = now;
                    next.rearm |= relevance.rearm;
                    pending = Some(next);
                }
            }
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let force = pending.is_some_and(|p| p.rearm);
                pending = None;
                // Re-arm before reading, so that a change after the read has an event.
                if let Some(watches) = watches.as_mut() {
                    watches.rearm(store.git_dir(), force);
                }
                store.reload(Trigger::Watch).await;
                if let Some(watches) = watches.as_mut() {
                    // The reload may have found a repository (or a new one).
                    watches.rearm(store.git_dir(), false);
                }
            }
            () = tick(poll.as_mut()), if poll.is_some() => {
                if let Some(watches) = watches.as_mut() {
                    watches.rearm(store.git_dir(), false);
                }
                store.reload(Trigger::Poll).await;
            }
        }
    }
    tracing::debug!(policy_dir = %store.dir().display(), "policy watcher stopped");
}

async fn tick(interval: Option<&mut Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether an event asks for a reload, and whether the directory itself may have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Relevance {
    pub(crate) reload: bool,
    pub(crate) rearm: bool,
}

/// The notify watcher and what it currently watches.
struct Watches {
    watcher: RecommendedWatcher,
    paths: WatchedPaths,
    /// Identity of the directory the recursive watch was armed on; `None` when not armed.
    armed: Option<Identity>,
    parent_armed: bool,
}

/// The paths events are judged against; separate from the watcher so it can be tested.
#[derive(Debug, Clone)]
pub(crate) struct WatchedPaths {
    pub(crate) dir: PathBuf,
    /// The repository's git directory, only when it lies outside `dir`.
    pub(crate) git_dir: Option<PathBuf>,
}

impl Watches {
    fn new(watcher: RecommendedWatcher, dir: PathBuf) -> Watches {
        Watches {
            watcher,
            paths: WatchedPaths { dir, git_dir: None },
            armed: None,
            parent_armed: false,
        }
    }

    fn relevance(&self, event: &notify::Result<Event>) -> Relevance {
        self.paths.relevance(event)
    }

    /// Makes the watches match the directory and repository as they are now.
    fn rearm(&mut self, git_dir: Option<PathBuf>, force: bool) {
        let dir = self.paths.dir.clone();
        if !self.parent_armed
            && let Some(parent) = dir.parent()
        {
            match self.watcher.watch(parent, RecursiveMode::NonRecursive) {
                Ok(()) => self.parent_armed = true,
                Err(error) => {
                    tracing::warn!(parent = %parent.display(), %error, "cannot watch the parent of the policy directory; replacing the directory is noticed by the re-scan only");
                }
            }
        }
        let identity = Identity::of(&dir);
        if force || !Identity::COMPARABLE || identity.is_none() || identity != self.armed {
            // The old watch may be gone already (notify drops it when the directory moves).
            let _ = self.watcher.unwatch(&dir);
            self.armed = None;
            if identity.is_some() {
                match self.watcher.watch(&dir, RecursiveMode::Recursive) {
                    Ok(()) => {
                        tracing::debug!(policy_dir = %dir.display(), "watching the policy directory");
                        self.armed = identity;
                    }
                    Err(error) => {
                        tracing::warn!(policy_dir = %dir.display(), %error, "cannot watch the policy directory");
                    }
                }
            }
        }
        // A git directory inside `dir` is covered by the recursive watch.
        let external = git_dir.filter(|g| !g.starts_with(&dir));
        if external != self.paths.git_dir {
            if let Some(old) = self.paths.git_dir.take() {
                let _ = self.watcher.unwatch(&old);
                let _ = self.watcher.unwatch(&old.join("logs"));
            }
            if let Some(new) = &external {
                // `HEAD` and `packed-refs` change in the git directory itself, `logs/HEAD`
                // on every commit of the current branch; neither needs a recursive watch.
                if let Err(error) = self.watcher.watch(new, RecursiveMode::NonRecursive) {
                    tracing::warn!(git_dir = %new.display(), %error, "cannot watch the git directory; commits are noticed by the next file change");
                }
                // Missing before the first commit; the next re-arm after it tries again.
                let _ = self
                    .watcher
                    .watch(&new.join("logs"), RecursiveMode::NonRecursive);
            }
            self.paths.git_dir = external;
        }
    }
}

impl WatchedPaths {
    /// Judges one event (or watcher error).
    pub(crate) fn relevance(&self, event: &notify::Result<Event>) -> Relevance {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                // Lost events or a failed watch: re-read everything to be safe.
                tracing::warn!(%error, "policy watcher error");
                return Relevance {
                    reload: true,
                    rearm: true,
                };
            }
        };
        if event.need_rescan() {
            return Relevance {
                reload: true,
                rearm: true,
            };
        }
        match event.kind {
            // Reading the bundle opens and closes every file: those events must not loop.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return Relevance::default(),
            // `touch` and permission changes do not change content; the re-scan notices a
            // file that became unreadable.
            EventKind::Modify(ModifyKind::Metadata(_)) => return Relevance::default(),
            _ => {}
        }
        if event.paths.is_empty() {
            return Relevance {
                reload: true,
                rearm: false,
            };
        }
        let mut relevance = Relevance::default();
        for path in &event.paths {
            if path == &self.dir {
                relevance.reload = true;
                relevance.rearm = true;
            } else if let Ok(inside) = path.strip_prefix(&self.dir) {
                relevance.reload |= inside_counts(inside);
            } else if let Some(git_dir) = &self.git_dir
                && let Ok(inside) = path.strip_prefix(git_dir)
            {
                relevance.reload |= moves_head(inside);
            }
            // Anything else is a sibling of the directory, seen through the parent watch.
        }
        relevance
    }
}

/// Whether a change at `inside` (relative to the policy directory) counts: everything
/// outside `.git/`, and inside it only what moves `HEAD`.
fn inside_counts(inside: &Path) -> bool {
    let mut components = inside.components();
    while let Some(component) = components.next() {
        if component == Component::Normal(".git".as_ref()) {
            return moves_head(components.as_path());
        }
    }
    true
}

/// Whether a change at `inside` (relative to a git directory) moves `HEAD`: a checkout
/// rewrites `HEAD`, a commit appends to `logs/HEAD` and rewrites the branch ref.
fn moves_head(inside: &Path) -> bool {
    let parts: Vec<&str> = inside
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect();
    if parts.last().is_some_and(|last| last.ends_with(".lock")) {
        return false;
    }
    matches!(
        parts.as_slice(),
        ["HEAD"] | ["packed-refs"] | ["logs", "HEAD"] | ["refs", "heads", ..]
    )
}

/// Which directory a path names right now; tells a replaced directory from the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    device: u64,
    inode: u64,
}

impl Identity {
    /// Whether identities tell directories apart; without inode numbers every batch
    /// re-arms, which is always correct, only slower.
    const COMPARABLE: bool = cfg!(unix);

    /// `None` when `path` is not a directory now.
    #[cfg(unix)]
    fn of(path: &Path) -> Option<Identity> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        meta.is_dir().then(|| Identity {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    #[cfg(not(unix))]
    fn of(path: &Path) -> Option<Identity> {
        std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_dir())
            .map(|_| Identity {
                device: 0,
                inode: 0,
            })
    }
}
