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

/// The median and 99th percentile of `samples` (sorted in place; zero when there are none).
#[allow(
    dead_code,
    reason = "not every harness that includes this module measures latency"
)]
pub fn p50_p99(samples: &mut [std::time::Duration]) -> (std::time::Duration, std::time::Duration) {
    samples.sort();
    let at = |q: f64| {
        samples
            .get(((samples.len().saturating_sub(1)) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    (at(0.5), at(0.99))
}
