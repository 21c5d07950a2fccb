//! Spend saved across restarts: the ledger's counters in a JSON file next to the audit
//! database, written atomically every second while it changes and when the gateway stops,
//! and read back at start. A crash loses at most the last interval's changes; open
//! reservations are saved as spent.

use std::path::Path;

use super::Saved;

/// The saved counters in `path`; none when the file does not exist yet.
pub fn load(path: &Path) -> anyhow::Result<Vec<Saved>> {
    crate::state_file::load(path, "budget state")
}

/// Writes the counters to `path` atomically.
pub fn save(path: &Path, saved: &[Saved]) -> anyhow::Result<()> {
    crate::state_file::save(path, saved, "budget state")
}
