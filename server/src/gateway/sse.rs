//! Server-sent events: splitting an upstream byte stream into whole events, whatever the
//! chunk boundaries, so each event can be inspected before it is passed on.

/// Largest event accepted from an upstream; a stream that never ends an event would
/// otherwise grow the buffer without bound.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// One event: its raw bytes (passed on unchanged) and its `data` lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event as received, terminator included.
    pub raw: Vec<u8>,
    /// The `data:` field (several lines joined with `\n`); empty for comments.
    pub data: String,
}

/// Accumulates bytes and yields complete events.
#[derive(Debug, Default)]
pub struct Splitter {
    buffer: Vec<u8>,
}

/// The upstream sent an event larger than [`MAX_EVENT_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTooLarge;

fn event_end(buffer: &[u8]) -> Option<usize> {
    // An event ends at a blank line: "\n\n", "\r\n\r\n" (or mixed "\n\r\n").
    let mut i = 0;
    while i < buffer.len() {
        if buffer.get(i) == Some(&b'\n') {
            match buffer.get(i + 1) {
                Some(b'\n') => return Some(i + 2),
                Some(b'\r') if buffer.get(i + 2) == Some(&b'\n') => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn parse(raw: Vec<u8>) -> Event {
    let text = String::from_utf8_lossy(&raw);
    let data: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|value| value.strip_prefix(' ').unwrap_or(value))
        .collect();
    let data = data.join("\n");
    Event { raw, data }
}

impl Splitter {
    /// Adds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, EventTooLarge> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = event_end(&self.buffer) {
            let rest = self.buffer.split_off(end);
            let raw = std::mem::replace(&mut self.buffer, rest);
            events.push(parse(raw));
        }
        if self.buffer.len() > MAX_EVENT_BYTES {
            return Err(EventTooLarge);
        }
        Ok(events)
    }

    /// What is left when the stream ends: an event without its blank line, if any.
    pub fn finish(&mut self) -> Option<Event> {
        let raw = std::mem::take(&mut self.buffer);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(parse(raw))
    }
}

/// An event with `data` as its payload.
pub fn data_event(data: &str) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

/// Event `raw` with its data replaced by `data`, its other fields (`id`, `event`, `retry`)
/// kept, so a client's place in a resumable stream (`Last-Event-ID`) stays right. Without
/// `data` only the fields remain: an event that moves the client's place on and delivers
/// nothing (none at all when `raw` had no other field).
pub fn with_data(raw: &[u8], data: Option<&str>) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(raw.len());
    for line in text.lines() {
        if line.is_empty() || line.starts_with("data:") || line == "data" || line.starts_with(':') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(data) = data {
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let stream =
            b"data: {\"a\":1}\n\n: keep-alive\n\ndata: line1\ndata: line2\r\n\r\ndata: [DONE]\n\n";
        for size in 1..stream.len() {
            let mut splitter = Splitter::default();
            let mut events = Vec::new();
            for chunk in stream.chunks(size) {
                events.extend(splitter.push(chunk).unwrap());
            }
            assert!(splitter.finish().is_none());
            let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["{\"a\":1}", "", "line1\nline2", "[DONE]"], "{size}");
            let raw: Vec<u8> = events.iter().flat_map(|e| e.raw.clone()).collect();
            assert_eq!(raw, stream, "bytes pass through unchanged");
        }
    }

    #[test]
    fn replaced_data_keeps_the_events_place_in_the_stream() {
        let raw = b"id: 7\r\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n";
        let replaced = with_data(raw, Some("{\"b\":2}"));
        assert_eq!(replaced, b"id: 7\nevent: message\ndata: {\"b\":2}\n\n");
        let mut splitter = Splitter::default();
        assert_eq!(splitter.push(&replaced).unwrap()[0].data, "{\"b\":2}");
        assert_eq!(with_data(raw, None), b"id: 7\nevent: message\n\n");
        assert_eq!(with_data(b"data: x\n\n", None), b"");
        assert_eq!(
            with_data(b"data: x\n\n", Some("a\nb")),
            b"data: a\ndata: b\n\n"
        );
    }

    #[test]
    fn an_unterminated_tail_and_an_endless_event_are_reported() {
        let mut splitter = Splitter::default();
        assert!(splitter.push(b"data: partial").unwrap().is_empty());
        assert_eq!(splitter.finish().unwrap().data, "partial");
        let mut splitter = Splitter::default();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(splitter.push(&big), Err(EventTooLarge));
    }
}
