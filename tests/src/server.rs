//! A running `sluice serve` for end-to-end tests: started on a loopback port, its log
//! collected, stopped by SIGTERM (or killed when a test fails first).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on anything unexpected"
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Generous: the machine may be busy compiling. Only failures wait this long.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running `sluice serve`; killed on drop if a test failed before stopping it.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub base: String,
    pub revision: String,
    log: Arc<Mutex<String>>,
    /// The process's working directory, so that relative defaults (the audit database)
    /// land in a directory of its own.
    _cwd: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `sluice serve ARGS --listen 127.0.0.1:0` and waits for its startup line.
    pub fn start(args: &[&std::ffi::OsStr]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables for the process.
    pub fn start_with_env(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Server {
        let (child, lines, log, cwd) = spawn_in(args, env);
        let started = Instant::now();
        loop {
            let remaining = WAIT.saturating_sub(started.elapsed());
            let line = lines.recv_timeout(remaining).unwrap_or_else(|_| {
                panic!(
                    "no startup line within {WAIT:?}; output:\n{}",
                    log.lock().unwrap()
                )
            });
            if let Some(rest) = line.strip_prefix("sluice listening on ") {
                let (base, revision) = rest.split_once(" revision=").unwrap();
                return Server {
                    child,
                    base: base.to_string(),
                    revision: revision.to_string(),
                    log,
                    _cwd: cwd,
                };
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_exit(&mut self.child).unwrap_or_else(|| {
            panic!(
                "no exit within {WAIT:?} of SIGTERM; output:\n{}",
                self.log()
            )
        })
    }
}

/// The spawned process, its stderr lines, its whole log, and its working directory.
pub type Spawned = (
    Child,
    mpsc::Receiver<String>,
    Arc<Mutex<String>>,
    tempfile::TempDir,
);

/// Spawns the binary in a fresh working directory with extra environment variables,
/// stderr collected line by line.
pub fn spawn_in(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Spawned {
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(crate::sluice_bin())
        .args(args)
        .current_dir(cwd.path())
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&log);
    // Drains stderr for the whole life of the process, so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut log) = sink.lock() {
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(line);
        }
    });
    (child, rx, log, cwd)
}

/// Runs `sluice serve` on `policy_dir` expecting it to exit by itself; returns its status
/// and whole log.
pub fn serve_until_exit(policy_dir: &std::ffi::OsStr) -> (ExitStatus, String) {
    run_until_exit(&[
        "serve".as_ref(),
        "--policy-dir".as_ref(),
        policy_dir,
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ])
}

/// Runs `sluice ARGS` expecting it to exit by itself; returns its status and whole log.
pub fn run_until_exit(args: &[&std::ffi::OsStr]) -> (ExitStatus, String) {
    run_until_exit_with_env(args, &[])
}

/// `run_until_exit` with extra environment variables.
pub fn run_until_exit_with_env(
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (ExitStatus, String) {
    let (mut child, lines, log, _cwd) = spawn_in(args, env);
    let status = wait_exit(&mut child).expect("sluice should exit");
    // The reader thread ends at end of output: after it, the log is complete.
    lines.iter().for_each(drop);
    let log = log.lock().unwrap().clone();
    (status, log)
}

pub fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn client() -> reqwest::blocking::Client {
    // Loopback only: never route through a proxy from the environment.
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The first server `start` keeps on a free loopback port, of `tries` ports. A port found
/// free can be taken by a server another test starts at the same moment: `start` says
/// (`None`) when the server it started on the port is not its own.
pub fn on_a_free_port<T>(tries: usize, mut start: impl FnMut(u16) -> Option<T>) -> Option<T> {
    (0..tries).find_map(|_| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free loopback port");
        start(port)
    })
}

/// A loopback server that answers every request with `response` (raw HTTP bytes) and
/// hangs up. Its port.
pub fn canned_server(response: Vec<u8>) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(&response);
        }
    });
    port
}

/// A server whose answer is the start of an SSE stream, cut mid-event: a stream that
/// breaks. Its port.
pub fn breaking_server() -> u16 {
    canned_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n1a\r\nevent: message\r\ndata: {\"js\r\n".to_vec(),
    )
}

/// A server that answers every request with `307` to `location`. Its port.
pub fn redirecting_server(location: String) -> u16 {
    canned_server(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_bytes(),
    )
}

/// A loopback listener that counts the connections made to it (and answers none). Its
/// port and the count.
pub fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}
