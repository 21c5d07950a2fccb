//! The default policy repo, embedded at build time, and `sluice policy init`.

use std::io;
use std::path::Path;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/default_policies.rs"));
}

pub use embedded::FILES;

/// Writes the default policy repo into `dir` (created if missing). Refuses to overwrite any
/// existing file unless `force`; nothing is written when a file would be overwritten.
pub fn write_to(dir: &Path, force: bool) -> io::Result<usize> {
    if !force {
        let existing: Vec<&str> = FILES
            .iter()
            .filter(|(path, _)| dir.join(path).exists())
            .map(|(path, _)| *path)
            .collect();
        if !existing.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} file(s) already exist in `{}` (first: `{}`); pass --force to overwrite",
                    existing.len(),
                    dir.display(),
                    existing.first().copied().unwrap_or_default()
                ),
            ));
        }
    }
    for (path, text) in FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, text)?;
    }
    Ok(FILES.len())
}
