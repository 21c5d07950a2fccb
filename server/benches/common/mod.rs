//! What the hand-written benchmark harnesses share.

/// Whether `cargo bench [FILTER]` selected the harness `name`: `cargo bench` passes
/// `--bench` and any filter; a filter that is not part of the name skips the harness.
pub fn selected(name: &str) -> bool {
    !std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !name.contains(a.as_str()))
}

/// A number from the environment variable `var`, or `default`.
pub fn env_number<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
