//! AWS event-stream framing (`application/vnd.amazon.eventstream`), the binary stream
//! Bedrock's `ConverseStream` answers with.
//!
//! A frame is a 12-byte prelude (total length, headers length, both big-endian `u32`, then
//! the CRC32 of those 8 bytes), the headers, the payload, and the CRC32 of everything
//! before it: 16 bytes of overhead. A header is a name (`u8` length, UTF-8), a type byte
//! and a value whose layout the type gives. Bedrock sends string headers only
//! (`:message-type`, `:event-type`, `:content-type`, `:exception-type`), but every type is
//! read so an unexpected one cannot break a stream.
//!
//! The [`Decoder`] takes bytes as they arrive, whatever the chunk boundaries, checks both
//! checksums and refuses a declared length above [`MAX_FRAME_BYTES`] as soon as the prelude
//! is in, before buffering any of it.

/// Largest frame accepted: Bedrock's events are a few kilobytes; a length beyond this is
/// corruption or abuse and would otherwise make the decoder wait for (and buffer) it.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Total length, headers length, prelude CRC.
const PRELUDE_BYTES: usize = 12;
/// The prelude and the trailing message CRC.
const OVERHEAD_BYTES: usize = 16;

/// A header's value, by its wire type (0 to 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6: bytes with a `u16` length.
    Bytes(Vec<u8>),
    /// Type 7: UTF-8 with a `u16` length.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The headers, in wire order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload (JSON, for Bedrock).
    pub payload: Vec<u8>,
}

impl Frame {
    /// The value of the string header `name`, if the frame has one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, value)| match value {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&str> {
        self.header(":message-type")
    }

    /// `:event-type` of an event (`contentBlockDelta`, `messageStop`...).
    pub fn event_type(&self) -> Option<&str> {
        self.header(":event-type")
    }

    /// `:exception-type` of an exception (`throttlingException`...).
    pub fn exception_type(&self) -> Option<&str> {
        self.header(":exception-type")
    }
}

/// Why a stream cannot be decoded. Framing has no way to resynchronise, so every error
/// ends the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame declares more than [`MAX_FRAME_BYTES`].
    #[error("an event stream frame declares {0} bytes, more than the {MAX_FRAME_BYTES} allowed")]
    TooLarge(usize),
    /// A frame declares fewer bytes than its own overhead.
    #[error("an event stream frame declares {0} bytes, fewer than the 16 every frame has")]
    TooShort(usize),
    /// The headers do not fit in the frame.
    #[error("an event stream frame's headers ({headers} bytes) do not fit in its {total} bytes")]
    HeadersTooLong {
        /// The headers length declared.
        headers: usize,
        /// The total length declared.
        total: usize,
    },
    /// The prelude's checksum does not match.
    #[error("an event stream frame's prelude checksum is {found:#010x}, expected {computed:#010x}")]
    PreludeChecksum {
        /// The checksum in the frame.
        found: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// The frame's checksum does not match.
    #[error("an event stream frame's checksum is {found:#010x}, expected {computed:#010x}")]
    MessageChecksum {
        /// The checksum in the frame.
        found: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// A header cannot be read.
    #[error("an event stream frame has a malformed header: {0}")]
    Header(String),
    /// The stream ended inside a frame.
    #[error("the event stream ended inside a frame ({0} bytes left over)")]
    Truncated(usize),
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(word))
}

/// Reads headers from their bytes, front to back.
struct HeaderReader<'a> {
    rest: &'a [u8],
}

impl<'a> HeaderReader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FrameError> {
        let Some((taken, rest)) = self.rest.split_at_checked(n) else {
            return Err(FrameError::Header(format!("the {what} is cut short")));
        };
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, what)?;
        bytes
            .try_into()
            .map_err(|_| FrameError::Header(format!("the {what} is cut short")))
    }

    fn header(&mut self) -> Result<(String, HeaderValue), FrameError> {
        let [name_len] = self.array::<1>("header name length")?;
        if name_len == 0 {
            return Err(FrameError::Header("a header name is empty".to_string()));
        }
        let name = std::str::from_utf8(self.take(usize::from(name_len), "header name")?)
            .map_err(|_| FrameError::Header("a header name is not UTF-8".to_string()))?
            .to_string();
        let [kind] = self.array::<1>("header type")?;
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(self.array("byte header")?)),
            3 => HeaderValue::Short(i16::from_be_bytes(self.array("short header")?)),
            4 => HeaderValue::Int(i32::from_be_bytes(self.array("integer header")?)),
            5 => HeaderValue::Long(i64::from_be_bytes(self.array("long header")?)),
            6 | 7 => {
                let len = u16::from_be_bytes(self.array("header value length")?);
                let bytes = self.take(usize::from(len), "header value")?;
                if kind == 6 {
                    HeaderValue::Bytes(bytes.to_vec())
                } else {
                    let text = std::str::from_utf8(bytes).map_err(|_| {
                        FrameError::Header(format!("the value of `{name}` is not UTF-8"))
                    })?;
                    HeaderValue::String(text.to_string())
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(self.array("timestamp header")?)),
            9 => HeaderValue::Uuid(self.array("uuid header")?),
            other => {
                return Err(FrameError::Header(format!(
                    "`{name}` has the unknown type {other}"
                )));
            }
        };
        Ok((name, value))
    }
}

fn parse_headers(bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut reader = HeaderReader { rest: bytes };
    let mut headers = Vec::new();
    while !reader.rest.is_empty() {
        headers.push(reader.header()?);
    }
    Ok(headers)
}

/// The lengths of the frame at the start of `buffer`, checked, once its prelude is in.
fn prelude(buffer: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let (Some(total), Some(headers), Some(found)) =
        (be_u32(buffer, 0), be_u32(buffer, 4), be_u32(buffer, 8))
    else {
        return Ok(None);
    };
    let computed = crc32fast::hash(buffer.get(..8).unwrap_or_default());
    if found != computed {
        return Err(FrameError::PreludeChecksum { found, computed });
    }
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let headers = usize::try_from(headers).unwrap_or(usize::MAX);
    if total > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(total));
    }
    if total < OVERHEAD_BYTES {
        return Err(FrameError::TooShort(total));
    }
    if headers > total - OVERHEAD_BYTES {
        return Err(FrameError::HeadersTooLong { headers, total });
    }
    Ok(Some((total, headers)))
}

/// Decodes a frame whose `total` bytes are all in `bytes`.
fn decode_frame(bytes: &[u8], headers_len: usize) -> Result<Frame, FrameError> {
    let body_end = bytes.len().saturating_sub(4);
    let (Some(body), Some(found)) = (bytes.get(..body_end), be_u32(bytes, body_end)) else {
        return Err(FrameError::Truncated(bytes.len()));
    };
    let computed = crc32fast::hash(body);
    if found != computed {
        return Err(FrameError::MessageChecksum { found, computed });
    }
    let headers_end = PRELUDE_BYTES + headers_len;
    let (Some(headers), Some(payload)) = (
        body.get(PRELUDE_BYTES..headers_end),
        body.get(headers_end..),
    ) else {
        return Err(FrameError::Truncated(bytes.len()));
    };
    Ok(Frame {
        headers: parse_headers(headers)?,
        payload: payload.to_vec(),
    })
}

/// Turns a byte stream into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// The error that ended the stream, returned again by every later call.
    failed: Option<FrameError>,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds a chunk and returns the frames it completed. After an error the stream is
    /// unusable: this and every later call return it (frames completed by the same chunk
    /// before the bad one are not returned).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Frame>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.buffer.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut start = 0;
        let result = loop {
            let rest = self.buffer.get(start..).unwrap_or_default();
            let (total, headers) = match prelude(rest) {
                Ok(Some(lengths)) => lengths,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            let Some(bytes) = rest.get(..total) else {
                break Ok(());
            };
            match decode_frame(bytes, headers) {
                Ok(frame) => frames.push(frame),
                Err(error) => break Err(error),
            }
            start += total;
        };
        self.buffer.drain(..start.min(self.buffer.len()));
        match result {
            Ok(()) => Ok(frames),
            Err(error) => {
                self.buffer = Vec::new();
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Checks the end of the stream: an error if it stopped inside a frame (or failed
    /// earlier).
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated(self.buffer.len()))
        }
    }

    /// Bytes received that do not yet make a whole frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn clipped(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Encodes one frame with string (type 7) headers, as Bedrock sends them: for tests and
/// for Sluice's own stand-in upstream. A name longer than 255 bytes or a value longer
/// than 65,535 is cut to fit (on a character boundary), since the wire cannot say more;
/// the caller keeps payloads under [`MAX_FRAME_BYTES`] (the decoder refuses larger frames).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        let name = clipped(name, usize::from(u8::MAX));
        let value = clipped(value, usize::from(u16::MAX));
        header_bytes.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        header_bytes.extend_from_slice(name.as_bytes());
        header_bytes.push(7);
        header_bytes
            .extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        header_bytes.extend_from_slice(value.as_bytes());
    }
    let total = OVERHEAD_BYTES + header_bytes.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(header_bytes.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests;
