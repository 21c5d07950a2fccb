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
        Redis::spawn_on(port).expect("the redis-server started answers on its port, not another")
    }

    /// A Redis on a free port. A port found free can be taken by a server another test
    /// starts at the same moment; each server is named (its `dbfilename`, as nothing is
    /// saved) and a port is kept only when its own server answers there.
    pub fn start() -> Redis {
        crate::server::on_a_free_port(20, Redis::spawn_on)
            .expect("a loopback port that keeps this test's own redis-server")
    }

    /// Starts a named redis-server on `port` and waits until it answers; `None` (the
    /// server stopped) when the one answering there is another.
    fn spawn_on(port: u16) -> Option<Redis> {
        static STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "sluice-test-{}-{}.rdb",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dbfilename", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let mut redis = Redis { child, port };
        // Until a server answers on the port: ours, or another test's (which may also be
        // stopping, resetting the connection). Ours gone and none answering: not ours.
        let started = Instant::now();
        loop {
            if let Ok(answer) = Redis::try_command_on(port, &["CONFIG", "GET", "dbfilename"]) {
                return answer.contains(&name).then_some(redis);
            }
            if started.elapsed() > Duration::from_secs(10) {
                assert!(
                    matches!(redis.child.try_wait(), Ok(Some(_))),
                    "redis-server did not start"
                );
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs one command (RESP over a fresh connection) and returns Redis's raw answer.
    pub fn command(&self, args: &[&str]) -> String {
        Redis::command_on(self.port, args)
    }

    /// [`command`](Self::command) on the Redis at a loopback `port` (from another thread).
    pub fn command_on(port: u16, args: &[&str]) -> String {
        Redis::try_command_on(port, args).expect("Redis answers")
    }

    /// [`command_on`](Self::command_on), or the I/O error that stopped it.
    fn try_command_on(port: u16, args: &[&str]) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut answer = [0u8; 512];
        let n = stream.read(&mut answer)?;
        Ok(String::from_utf8_lossy(answer.get(..n).unwrap_or_default()).into_owned())
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
