//! The revision of a policy directory: the name under which its policies are active and
//! audited.
//!
//! Inside a git work tree the revision is `git:<full commit sha>`, with `+dirty` when
//! `git status` reports changes under the directory, so an auditor can find the exact
//! policies in the policy repo. Anywhere else (or whenever git cannot answer) it is the
//! bundle's content hash, `sha256:<hex>`. Never fails: git trouble only means a less
//! informative revision.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Longest a git command may take; a hung git (a stale lock on a network file system) must
/// not hang every later reload, which waits for this one.
const GIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Variables that would point git at another repository than the directory's own; a
/// gateway started from a git hook inherits them.
const GIT_REDIRECTS: [&str; 5] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
];

/// What is known about the version of a policy directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// `git:<sha>`, `git:<sha>+dirty` or the content hash.
    pub id: String,
    /// The absolute git directory when the policy directory is inside a work tree (also
    /// when it has no commit yet), so that a watcher can notice commits and checkouts.
    pub git_dir: Option<PathBuf>,
}

/// Why a git command gave no answer; only ever logged.
#[derive(Debug, thiserror::Error)]
enum GitError {
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    #[error("git exited with {0}")]
    Status(std::process::ExitStatus),
    #[error("git did not answer within {GIT_TIMEOUT:?}")]
    Timeout,
    #[error("git output is not UTF-8")]
    Utf8,
}

/// The revision of `dir`, whose bundle has content hash `content_hash`.
pub fn describe(dir: &Path, content_hash: &str) -> Revision {
    let fallback = |git_dir: Option<PathBuf>| Revision {
        id: content_hash.to_string(),
        git_dir,
    };
    let located = match git(
        dir,
        &["rev-parse", "--is-inside-work-tree", "--absolute-git-dir"],
    ) {
        Ok(out) => out,
        Err(error) => {
            // The common case outside a repository; not worth more than a debug line.
            tracing::debug!(dir = %dir.display(), %error, "policy directory is not in a git work tree");
            return fallback(None);
        }
    };
    let mut lines = located.lines();
    if lines.next() != Some("true") {
        return fallback(None);
    }
    let git_dir = lines.next().map(PathBuf::from);
    let head = match git(dir, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]) {
        Ok(out) => out.trim().to_string(),
        Err(error) => {
            tracing::debug!(dir = %dir.display(), %error, "git work tree has no commit yet");
            return fallback(git_dir);
        }
    };
    if head.is_empty() || !head.bytes().all(|b| b.is_ascii_hexdigit()) {
        return fallback(git_dir);
    }
    // `-C dir` makes the pathspec `.` mean exactly the policy directory.
    match git(dir, &["status", "--porcelain", "--", "."]) {
        Ok(changes) if changes.trim().is_empty() => Revision {
            id: format!("git:{head}"),
            git_dir,
        },
        Ok(_) => Revision {
            id: format!("git:{head}+dirty"),
            git_dir,
        },
        Err(error) => {
            // Without status the commit alone could claim clean policies that are not.
            tracing::warn!(dir = %dir.display(), %error, "git status failed; using the content hash as revision");
            fallback(git_dir)
        }
    }
}

/// Runs `git -C dir args...` and returns its standard output.
fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Status must not rewrite `.git/index`: that is the user's file, and the write
        // would wake the watcher that called us.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0");
    for variable in GIT_REDIRECTS {
        command.env_remove(variable);
    }
    let mut child = command.spawn().map_err(GitError::Spawn)?;
    let Some(mut stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(GitError::Spawn(std::io::Error::other("no stdout pipe")));
    };
    // Reading on another thread lets this one give up after the timeout even when git
    // never closes its output.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let result = stdout.read_to_end(&mut bytes).map(|_| bytes);
        let _ = tx.send(result);
    });
    let output = match rx.recv_timeout(GIT_TIMEOUT) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GitError::Spawn(e));
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(GitError::Timeout);
        }
    };
    let status = child.wait().map_err(GitError::Spawn)?;
    if !status.success() {
        return Err(GitError::Status(status));
    }
    String::from_utf8(output).map_err(|_| GitError::Utf8)
}

#[cfg(test)]
pub(crate) mod tests;
