//! A small Redis client: RESP2 commands over TCP, for the few commands the shared ledger
//! runs (`EVAL` of its scripts). Connections are pooled; one that fails is dropped,
//! and the next command opens a fresh one, so a restarted Redis is picked up again.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long connecting or one command may take before Redis counts as unavailable.
const TIMEOUT: Duration = Duration::from_millis(500);

/// Connections kept idle at most.
const MAX_IDLE: usize = 32;

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// An integer.
    Integer(i64),
    /// A bulk string; `None` for a null bulk string.
    Bulk(Option<Vec<u8>>),
    /// An array; `None` for a null array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as text (simple, bulk or integer).
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Integer(n) => Some(n.to_string()),
            Reply::Bulk(Some(bytes)) => String::from_utf8(bytes.clone()).ok(),
            Reply::Bulk(None) | Reply::Array(_) => None,
        }
    }

    /// The items of an array reply.
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RedisError {
    /// No connection, a broken one, or a timeout.
    #[error("Redis at {0} is unavailable: {1}")]
    Unavailable(String, String),
    /// Redis answered with an error.
    #[error("Redis answered with an error: {0}")]
    Server(String),
    /// The answer is not RESP, or not what the script returns.
    #[error("Redis answered something unexpected: {0}")]
    Protocol(String),
}

/// A pool of connections to one Redis.
#[derive(Debug)]
pub struct Client {
    address: String,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
}

impl Client {
    /// A client for `redis://host:port` (or `host:port`).
    pub fn new(url: &str) -> Result<Client, String> {
        let address = url
            .strip_prefix("redis://")
            .unwrap_or(url)
            .trim_end_matches('/');
        if address.is_empty() || !address.contains(':') || address.contains('@') {
            return Err(format!(
                "`{url}` is not a Redis address of the form redis://host:port"
            ));
        }
        Ok(Client {
            address: address.to_string(),
            idle: Mutex::new(Vec::new()),
        })
    }

    fn unavailable(&self, why: impl std::fmt::Display) -> RedisError {
        RedisError::Unavailable(self.address.clone(), why.to_string())
    }

    /// Runs one command.
    pub async fn command(&self, args: &[&[u8]]) -> Result<Reply, RedisError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => {
                let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(&self.address))
                    .await
                    .map_err(|_| self.unavailable("connecting timed out"))?
                    .map_err(|e| self.unavailable(e))?;
                let _ = stream.set_nodelay(true);
                BufReader::new(stream)
            }
        };
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        let exchange = async {
            connection.get_mut().write_all(&request).await?;
            read_reply(&mut connection).await
        };
        // A connection that failed or timed out mid-command is dropped, never reused.
        let reply = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| self.unavailable("no answer in time"))?
            .map_err(|e| match e {
                ReadError::Io(e) => self.unavailable(e),
                ReadError::Protocol(why) => RedisError::Protocol(why),
            })?;
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
        reply.map_err(RedisError::Server)
    }

    /// Runs a Lua script (`EVAL`: Redis caches the compiled script by its digest, and the
    /// text is small next to a loopback round trip).
    pub async fn script(
        &self,
        script: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<Reply, RedisError> {
        let numkeys = keys.len().to_string();
        let mut call: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), numkeys.as_bytes()];
        call.extend(keys.iter().map(|k| k.as_bytes()));
        call.extend(args.iter().map(|a| a.as_bytes()));
        self.command(&call).await
    }
}

enum ReadError {
    Io(std::io::Error),
    Protocol(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one reply; a RESP error reply is `Ok(Err(message))`.
async fn read_reply(reader: &mut BufReader<TcpStream>) -> Result<Result<Reply, String>, ReadError> {
    // Arrays nest: an explicit stack instead of recursion in an async fn.
    let mut stack: Vec<(usize, Vec<Reply>)> = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| ReadError::Protocol(format!("bad length in `{line}`")))
        };
        let mut value = match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => return Ok(Err(rest.to_string())),
            ":" => Reply::Integer(number()?),
            "$" => {
                let length = number()?;
                if length < 0 {
                    Reply::Bulk(None)
                } else {
                    let length = usize::try_from(length)
                        .map_err(|_| ReadError::Protocol("bulk length".into()))?;
                    let mut bytes = vec![0; length + 2];
                    reader.read_exact(&mut bytes).await?;
                    bytes.truncate(length);
                    Reply::Bulk(Some(bytes))
                }
            }
            "*" => {
                let length = number()?;
                if length <= 0 {
                    Reply::Array((length == 0).then(Vec::new))
                } else {
                    let length = usize::try_from(length)
                        .map_err(|_| ReadError::Protocol("array length".into()))?;
                    stack.push((length, Vec::with_capacity(length)));
                    continue;
                }
            }
            _ => return Err(ReadError::Protocol(format!("unknown reply `{line}`"))),
        };
        // Completes the arrays this value finishes.
        loop {
            match stack.last_mut() {
                None => return Ok(Ok(value)),
                Some((length, items)) => {
                    items.push(value);
                    if items.len() < *length {
                        break;
                    }
                }
            }
            let Some((_, items)) = stack.pop() else {
                return Err(ReadError::Protocol("array nesting".into()));
            };
            value = Reply::Array(Some(items));
        }
    }
}
