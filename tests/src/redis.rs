//! A real `redis-server` (`.ci/run` installs it) on a free loopback port, for the state
//! replicas share: budgets and sessions.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` that keeps nothing on disk, stopped when dropped.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl Redis {
    /// A Redis on `port` (to bring one back where the last one was).
    pub fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    /// A Redis on a free port.
    pub fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free loopback port");
        Redis::start_on(port)
    }

    /// Runs one command (RESP over a fresh connection) and returns Redis's raw answer.
    pub fn command(&self, args: &[&str]) -> String {
        Redis::command_on(self.port, args)
    }

    /// [`command`](Self::command) on the Redis at a loopback `port` (from another thread).
    pub fn command_on(port: u16, args: &[&str]) -> String {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("Redis answers");
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).expect("command sent");
        let mut answer = [0u8; 512];
        let n = stream.read(&mut answer).expect("an answer");
        String::from_utf8_lossy(answer.get(..n).unwrap_or_default()).into_owned()
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
