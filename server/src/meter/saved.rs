//! Spend saved across restarts: the ledger's counters in a JSON file next to the audit
//! database, written atomically (a temporary file renamed over the old one) every second
//! while it changes and when the gateway stops, and read back at start. A crash loses at
//! most the last interval's changes; open reservations are saved as spent.

use std::path::Path;

use anyhow::Context as _;

use super::Saved;

/// The saved counters in `path`; none when the file does not exist yet.
pub fn load(path: &Path) -> anyhow::Result<Vec<Saved>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read budget state `{}`", path.display()));
        }
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "budget state `{}` is not valid; move it away to start from zero",
            path.display()
        )
    })
}

/// Writes the counters to `path` atomically.
pub fn save(path: &Path, saved: &[Saved]) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    let text = serde_json::to_string_pretty(saved)?;
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write budget state `{}`", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot replace budget state `{}`", path.display()))
}
