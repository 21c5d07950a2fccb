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

/// CPU time (user and system) of the process or thread whose `stat` file is `stat`
/// (`/proc/PID/stat` or `/proc/PID/task/TID/stat`), in seconds at clock-tick resolution;
/// zero when it cannot be read.
#[allow(
    dead_code,
    reason = "not every harness that includes this module measures CPU time"
)]
pub fn cpu_seconds(stat: &std::path::Path) -> f64 {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15, in USER_HZ (100 on Linux) ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of the threads of process `pid` named `name` (their `comm`).
fn thread_cpu_seconds(pid: u32, name: &str) -> f64 {
    let tasks = std::path::PathBuf::from(format!("/proc/{pid}/task"));
    std::fs::read_dir(&tasks)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|task| cpu_seconds(&task.path().join("stat")))
        .sum()
}

/// The CPU time a `sluice` process has spent so far: all of it, and its audit writer
/// thread's.
#[allow(
    dead_code,
    reason = "not every harness that includes this module measures CPU time"
)]
#[derive(Debug, Clone, Copy)]
pub struct GatewayCpu {
    pid: u32,
    process: f64,
    writer: f64,
}

#[allow(
    dead_code,
    reason = "not every harness that includes this module measures CPU time"
)]
impl GatewayCpu {
    /// The CPU time process `pid` has spent so far.
    pub fn now(pid: u32) -> GatewayCpu {
        GatewayCpu {
            pid,
            process: cpu_seconds(
                &std::path::Path::new("/proc")
                    .join(pid.to_string())
                    .join("stat"),
            ),
            writer: thread_cpu_seconds(pid, "sluice-audit"),
        }
    }

    /// Microseconds of CPU per call spent since `self` over `calls` calls: all of it, and
    /// the audit writer's share.
    pub fn per_call_since(self, calls: f64) -> (f64, f64) {
        let now = GatewayCpu::now(self.pid);
        (
            (now.process - self.process) * 1e6 / calls,
            (now.writer - self.writer) * 1e6 / calls,
        )
    }
}

/// Starts `sluice serve --config CONFIG` (the binary of this build) and waits for it to
/// listen; the process and its base URL. Its log is drained so it never blocks on a pipe.
#[allow(
    dead_code,
    reason = "not every harness that includes this module runs the gateway"
)]
#[expect(
    clippy::expect_used,
    reason = "a benchmark harness stops loudly on a broken setup"
)]
pub fn spawn_sluice(config: &std::path::Path) -> Sluice {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sluice starts");
    let stderr = child.stderr.take().expect("sluice's stderr is piped");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("sluice listens before it exits")
            .expect("sluice's log reads");
        if let Some(rest) = line.strip_prefix("sluice listening on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Sluice { child, base }
}

/// A running `sluice serve`, killed when dropped.
#[allow(
    dead_code,
    reason = "not every harness that includes this module runs the gateway"
)]
pub struct Sluice {
    pub child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
