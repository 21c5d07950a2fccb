//! State kept across restarts in small JSON files (budget spend, tools first seen), written
//! atomically — a temporary file renamed over the old one — so a crash mid-write leaves the
//! previous state, never half of one.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The state in `path` (`what` names it in errors); the default when the file does not
/// exist yet. A file that cannot be read or parsed is an error, never silently empty
/// state.
pub fn load<T: DeserializeOwned + Default>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {what} `{}`", path.display()));
        }
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{what} `{}` is not valid; move it away to start from zero",
            path.display()
        )
    })
}

/// Writes `state` to `path` atomically.
pub fn save<T: Serialize + ?Sized>(path: &Path, state: &T, what: &str) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let text = serde_json::to_string_pretty(state)?;
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {what} `{}`", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot replace {what} `{}`", path.display()))
}
