//! Hot reload of the policy directory: the live snapshot, how it is replaced, and what an
//! operator can see about it.
//!
//! The compiled [`Policies`] live in an [`ArcSwap`]. A request takes one `Arc` with
//! [`PolicyStore::current`] and decides against it from start to end, however many reloads
//! happen meanwhile. A reload reads and compiles the whole directory on a blocking thread,
//! off the request path, and swaps only when everything compiled and validated: a broken
//! change never becomes active, it is recorded in the [`ReloadStatus`] and the last good
//! snapshot stays. Reloads are serialised, so an older build can never land over a newer one.
//!
//! [`watcher`] decides *when* to reload (file events, debounced, plus a periodic re-scan).

mod watcher;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;
use sluice_engine::{Bundle, BundleError, Diagnostic, Policies};

use crate::revision;

pub use watcher::{WatchHandle, spawn_watcher};

/// Reads of a directory whose files keep changing under a git checkout before giving up on
/// a git revision.
const MAX_SETTLE_ATTEMPTS: usize = 5;

/// Most diagnostics logged for one failed reload; the status keeps them all.
const MAX_LOGGED_DIAGNOSTICS: usize = 20;

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A file event in the policy directory (or a commit or checkout in its repository).
    Watch,
    /// The periodic re-scan found different content.
    Poll,
    /// An operator asked (`POST /admin/reload`); always re-reads and reports.
    Manual,
}

/// What an operator can see about the active bundle and the reloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadStatus {
    /// The policy directory, absolute.
    pub policy_dir: String,
    /// Revision of the active bundle (see [`crate::revision`]).
    pub revision: String,
    /// Content hash of the active bundle; tells two dirty states of one commit apart.
    pub content_hash: String,
    /// When the active bundle became active, RFC 3339.
    pub loaded_at: String,
    /// When a reload last read the directory, RFC 3339.
    pub last_attempt_at: String,
    /// Reloads since start (the initial load is not counted).
    pub reloads: ReloadCounters,
    /// The latest failed reload. Kept after a later success so that an operator can still
    /// see what went wrong; `reloads.consecutive_failures == 0` says it is resolved.
    pub last_error: Option<ReloadFailure>,
    /// Which Rego evaluator serves the active bundle: `vm`, `interpreter` or `none`.
    pub rego_evaluator: String,
    /// Why the interpreter serves a bundle that selects the VM: the VM cannot compile it,
    /// or disagreed with the interpreter on a checked decision.
    pub rego_vm_unavailable: Option<String>,
}

/// Reload counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReloadCounters {
    /// Reloads that activated a new bundle.
    pub successes: u64,
    /// Reloads that failed; the previous bundle stayed active.
    pub failures: u64,
    /// Failures since the last reload that found the directory good (0 when healthy).
    pub consecutive_failures: u64,
}

/// A failed reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadFailure {
    /// When, RFC 3339.
    pub at: String,
    /// What asked for the reload.
    pub trigger: Trigger,
    /// The revision that failed, when the directory could be read at all.
    pub revision: Option<String>,
    /// Every diagnostic, one `file:line:column: message` per line.
    pub message: String,
    /// The diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

/// The result of one reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// A new bundle is active.
    Loaded {
        /// Its revision.
        revision: String,
        /// The revision it replaced.
        previous_revision: String,
    },
    /// The directory holds the active bundle, or nothing changed since the last attempt.
    Unchanged {
        /// The active revision.
        revision: String,
    },
    /// The directory could not be loaded; the active bundle stays.
    Failed {
        /// The revision still active.
        active_revision: String,
        /// What went wrong.
        error: ReloadFailure,
    },
}

/// The initial load failed: the gateway cannot start without a valid bundle.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the policy bundle in `{}`", dir.display())]
pub struct OpenError {
    /// The policy directory.
    pub dir: PathBuf,
    /// Every problem found.
    #[source]
    pub error: BundleError,
}

/// What a reload compares against to avoid needless work: the content and the revision of
/// a readable directory, or the error of an unreadable one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Bundle {
        content_hash: String,
        revision: String,
    },
    Unreadable(String),
}

impl Fingerprint {
    fn content_hash(&self) -> Option<&str> {
        match self {
            Fingerprint::Bundle { content_hash, .. } => Some(content_hash),
            Fingerprint::Unreadable(_) => None,
        }
    }
}

/// State next to the live snapshot, changed only under the reload lock.
#[derive(Debug)]
struct State {
    status: ReloadStatus,
    active: Fingerprint,
    last_attempt: Fingerprint,
    git_dir: Option<PathBuf>,
}

/// The live policies of a policy directory and their reload state.
pub struct PolicyStore {
    dir: PathBuf,
    live: ArcSwap<Policies>,
    state: Mutex<State>,
    /// Serialises reloads: held across the whole read-compile-swap.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("dir", &self.dir)
            .field("revision", &self.live.load().revision())
            .finish_non_exhaustive()
    }
}

/// What the blocking half of a reload produced.
enum Built {
    /// Nothing is new since the last attempt.
    Skipped,
    /// The directory holds exactly the active bundle.
    Unchanged { git_dir: Option<PathBuf> },
    /// A new valid bundle.
    Compiled {
        policies: Arc<Policies>,
        fingerprint: Fingerprint,
        git_dir: Option<PathBuf>,
    },
    /// A broken or unreadable bundle.
    Failed {
        fingerprint: Fingerprint,
        revision: Option<String>,
        error: BundleError,
        git_dir: Option<PathBuf>,
    },
}

impl PolicyStore {
    /// Loads and compiles `dir`; blocking. Fails when the bundle is not valid, since there
    /// is no previous bundle to keep.
    pub fn open(dir: &Path) -> Result<PolicyStore, OpenError> {
        // Absolute but not canonical: a symlinked directory stays the symlink, so swapping
        // the link (as Kubernetes does for mounted config maps) is a change of `dir`.
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let fail = |error| OpenError {
            dir: dir.clone(),
            error,
        };
        let bundle = Bundle::load(&dir).map_err(fail)?;
        let (bundle, revision) = name(&dir, bundle).map_err(fail)?;
        let policies = compile(&bundle, &revision.id).map_err(fail)?;
        let now = now_rfc3339();
        let fingerprint = Fingerprint::Bundle {
            content_hash: bundle.content_hash.clone(),
            revision: revision.id.clone(),
        };
        tracing::info!(
            policy_dir = %dir.display(),
            revision = %revision.id,
            rego_files = bundle.rego.len(),
            cedar_files = bundle.cedar.len(),
            rego_evaluator = rego_evaluator(&policies),
            "policy bundle loaded"
        );
        Ok(PolicyStore {
            live: ArcSwap::from_pointee(policies),
            state: Mutex::new(State {
                status: ReloadStatus {
                    policy_dir: dir.display().to_string(),
                    revision: revision.id,
                    content_hash: bundle.content_hash,
                    loaded_at: now.clone(),
                    last_attempt_at: now,
                    reloads: ReloadCounters::default(),
                    last_error: None,
                    rego_evaluator: String::new(),
                    rego_vm_unavailable: None,
                },
                active: fingerprint.clone(),
                last_attempt: fingerprint,
                git_dir: revision.git_dir,
            }),
            reloading: tokio::sync::Mutex::new(()),
            dir,
        })
    }

    /// The snapshot to decide against. Hold it for the whole request.
    pub fn current(&self) -> Arc<Policies> {
        self.live.load_full()
    }

    /// The policy directory, absolute.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A copy of the reload status.
    pub fn status(&self) -> ReloadStatus {
        let mut status = self.state().status.clone();
        let policies = self.current();
        status.rego_evaluator = evaluator_name(&policies).to_string();
        status.rego_vm_unavailable = policies.rego().and_then(|rego| {
            rego.vm_divergence()
                .or(rego.vm_unavailable())
                .map(str::to_string)
        });
        status
    }

    /// The git directory of the policy directory's repository, as of the last reload.
    pub fn git_dir(&self) -> Option<PathBuf> {
        self.state().git_dir.clone()
    }

    /// Re-reads the directory and activates it if it is new and valid. Waits for a reload
    /// already running, then does its own.
    pub async fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let _serial = self.reloading.lock().await;
        let (active, last_attempt) = {
            let state = self.state();
            (state.active.clone(), state.last_attempt.clone())
        };
        let dir = self.dir.clone();
        let started = Instant::now();
        let built =
            tokio::task::spawn_blocking(move || build(&dir, trigger, &active, &last_attempt))
                .await
                .unwrap_or_else(|e| Built::Failed {
                    fingerprint: Fingerprint::Unreadable(e.to_string()),
                    revision: None,
                    error: BundleError::one(Diagnostic::file(
                        "<sluice>",
                        format!("reload task failed: {e}"),
                    )),
                    git_dir: None,
                });
        self.record(trigger, built, started.elapsed())
    }

    /// Applies the result of a build to the snapshot and the status.
    fn record(&self, trigger: Trigger, built: Built, elapsed: Duration) -> ReloadOutcome {
        let mut state = self.state();
        let active_revision = state.status.revision.clone();
        match built {
            Built::Skipped => ReloadOutcome::Unchanged {
                revision: active_revision,
            },
            Built::Unchanged { git_dir } => {
                // The directory is back to (or still at) the active bundle: nothing to swap,
                // and whatever failed before no longer stands.
                state.last_attempt = state.active.clone();
                state.git_dir = git_dir;
                state.status.last_attempt_at = now_rfc3339();
                state.status.reloads.consecutive_failures = 0;
                ReloadOutcome::Unchanged {
                    revision: active_revision,
                }
            }
            Built::Compiled {
                policies,
                fingerprint,
                git_dir,
            } => {
                let revision = policies.revision().to_string();
                let evaluator = rego_evaluator(&policies);
                self.live.store(policies);
                let now = now_rfc3339();
                if let Fingerprint::Bundle { content_hash, .. } = &fingerprint {
                    state.status.content_hash.clone_from(content_hash);
                }
                state.status.revision.clone_from(&revision);
                state.status.loaded_at.clone_from(&now);
                state.status.last_attempt_at = now;
                state.status.reloads.successes = state.status.reloads.successes.saturating_add(1);
                state.status.reloads.consecutive_failures = 0;
                state.active = fingerprint.clone();
                state.last_attempt = fingerprint;
                state.git_dir = git_dir;
                tracing::info!(
                    ?trigger,
                    %revision,
                    previous_revision = %active_revision,
                    elapsed_ms = elapsed.as_millis(),
                    rego_evaluator = evaluator,
                    "policy bundle reloaded"
                );
                ReloadOutcome::Loaded {
                    revision,
                    previous_revision: active_revision,
                }
            }
            Built::Failed {
                fingerprint,
                revision,
                error,
                git_dir,
            } => {
                let now = now_rfc3339();
                let failure = ReloadFailure {
                    at: now.clone(),
                    trigger,
                    revision,
                    message: error.to_string(),
                    diagnostics: error.diagnostics,
                };
                log_failure(&failure, &active_revision, elapsed);
                let reloads = &mut state.status.reloads;
                reloads.failures = reloads.failures.saturating_add(1);
                reloads.consecutive_failures = reloads.consecutive_failures.saturating_add(1);
                state.status.last_attempt_at = now;
                state.status.last_error = Some(failure.clone());
                state.last_attempt = fingerprint;
                if git_dir.is_some() {
                    state.git_dir = git_dir;
                }
                ReloadOutcome::Failed {
                    active_revision,
                    error: failure,
                }
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is a set of plain values, each written whole: a panic elsewhere cannot
        // leave it half-updated, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The blocking half of a reload: read, name, compare, compile.
fn build(dir: &Path, trigger: Trigger, active: &Fingerprint, last_attempt: &Fingerprint) -> Built {
    let bundle = match Bundle::load(dir) {
        Ok(bundle) => bundle,
        Err(error) => {
            let fingerprint = Fingerprint::Unreadable(error.to_string());
            // Events keep coming while a directory is being replaced; the same error is
            // recorded once, but an operator asking gets it reported again.
            if trigger != Trigger::Manual && fingerprint == *last_attempt {
                return Built::Skipped;
            }
            return Built::Failed {
                fingerprint,
                revision: None,
                error,
                git_dir: None,
            };
        }
    };
    // The poll is a cheap safety net: it only looks at content, never runs git.
    if trigger == Trigger::Poll && last_attempt.content_hash() == Some(bundle.content_hash.as_str())
    {
        return Built::Skipped;
    }
    let (bundle, revision) = match name(dir, bundle) {
        Ok(named) => named,
        Err(error) => {
            return Built::Failed {
                fingerprint: Fingerprint::Unreadable(error.to_string()),
                revision: None,
                error,
                git_dir: None,
            };
        }
    };
    let fingerprint = Fingerprint::Bundle {
        content_hash: bundle.content_hash.clone(),
        revision: revision.id.clone(),
    };
    if fingerprint == *active {
        return Built::Unchanged {
            git_dir: revision.git_dir,
        };
    }
    if trigger != Trigger::Manual && fingerprint == *last_attempt {
        return Built::Skipped;
    }
    match compile(&bundle, &revision.id) {
        Ok(policies) => Built::Compiled {
            policies: Arc::new(policies),
            fingerprint,
            git_dir: revision.git_dir,
        },
        Err(error) => Built::Failed {
            fingerprint,
            revision: Some(revision.id),
            error,
            git_dir: revision.git_dir,
        },
    }
}

/// Compiles a bundle that has at least one policy. A directory without any is refused: it
/// is a directory caught mid-replacement or the wrong directory, and activating it would
/// silently drop every rule.
fn compile(bundle: &Bundle, revision: &str) -> Result<Policies, BundleError> {
    if bundle.is_empty() {
        return Err(BundleError::one(Diagnostic::file(
            ".",
            "the policy directory has no policy file (`*.rego` or `*.cedar`)",
        )));
    }
    Policies::compile(bundle, revision.to_string())
}

/// The revision of the bundle that was read.
///
/// Git is asked after the files were read, so a checkout running meanwhile could pair the
/// old files with the new commit. The bundle is read again until the content held still
/// around the question; if it never does, the content hash is the one name that is true.
fn name(dir: &Path, mut bundle: Bundle) -> Result<(Bundle, revision::Revision), BundleError> {
    for _ in 0..MAX_SETTLE_ATTEMPTS {
        let revision = revision::describe(dir, &bundle.content_hash);
        if revision.git_dir.is_none() || revision.id == bundle.content_hash {
            // Named by its content: true by construction.
            return Ok((bundle, revision));
        }
        let again = Bundle::load(dir)?;
        if again.content_hash == bundle.content_hash {
            return Ok((bundle, revision));
        }
        bundle = again;
    }
    let revision = revision::Revision {
        id: bundle.content_hash.clone(),
        git_dir: revision::describe(dir, &bundle.content_hash).git_dir,
    };
    tracing::warn!(policy_dir = %dir.display(), revision = %revision.id, "policy files kept changing while being read; naming the bundle by its content");
    Ok((bundle, revision))
}

fn log_failure(failure: &ReloadFailure, active_revision: &str, elapsed: Duration) {
    tracing::warn!(
        trigger = ?failure.trigger,
        attempted_revision = failure.revision.as_deref().unwrap_or("unknown"),
        %active_revision,
        diagnostics = failure.diagnostics.len(),
        elapsed_ms = elapsed.as_millis(),
        "policy reload failed; the active bundle stays"
    );
    for diagnostic in failure.diagnostics.iter().take(MAX_LOGGED_DIAGNOSTICS) {
        tracing::warn!(
            file = %diagnostic.file,
            line = diagnostic.line,
            column = diagnostic.column,
            problem = %diagnostic.message,
            "policy diagnostic"
        );
    }
}

/// The current time, RFC 3339 in UTC with millisecond precision.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_millisecond(now.millisecond()).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| {
            // Unreachable for any date this process can see; the unix time is still useful.
            let millis = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            format!("unix-ms:{millis}")
        })
}

/// Which Rego evaluator serves a snapshot.
fn evaluator_name(policies: &Policies) -> &'static str {
    match policies.rego() {
        Some(rego) if rego.serves_with_vm() => "vm",
        Some(_) => "interpreter",
        None => "none",
    }
}

/// Which Rego evaluator serves a snapshot just loaded, for the log (with a warning when the
/// bundle selects the VM and does not compile to it).
fn rego_evaluator(policies: &Policies) -> &'static str {
    let name = evaluator_name(policies);
    if let Some(rego) = policies.rego()
        && name == "interpreter"
        && policies.settings().rego_evaluator == sluice_engine::bundle::RegoEvaluator::Vm
    {
        tracing::warn!(
            reason = rego.vm_unavailable().unwrap_or_default(),
            "the bundle selects the Rego VM but does not compile to it; the interpreter serves"
        );
    }
    name
}

#[cfg(test)]
mod tests;
