//! Server-sent events: an incremental parser that tolerates any chunking and line ending,
//! and the writer for the events the sidecar emits.

use bytes::{Bytes, BytesMut};

/// One parsed event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub name: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The event's bytes as received, blank line included (for untouched passthrough).
    pub raw: Bytes,
}

/// The most bytes one event may take before the stream is given up as broken (an endless
/// event would otherwise grow memory without bound). Generous: a whole streamed image fits.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// Splits a byte stream into events; feed it chunks as they arrive.
#[derive(Debug)]
pub struct Parser {
    buf: BytesMut,
    scanned: usize,
    limit: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }
}

impl Parser {
    /// A parser whose unfinished event may hold at most `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            limit,
        }
    }

    /// Whether the unfinished event has outgrown the limit. Ask after taking every complete
    /// event with [`Parser::next_event`]; the stream must then be abandoned.
    pub fn oversized(&self) -> bool {
        self.buf.len() > self.limit
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Whether bytes of an unfinished event are buffered.
    pub fn has_partial(&self) -> bool {
        self.buf.iter().any(|b| !b.is_ascii_whitespace())
    }

    /// The next complete event, if one is buffered. Events with neither data nor a name
    /// (comments, keep-alives) are skipped.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let end = self.event_end()?;
            let raw = self.buf.split_to(end).freeze();
            self.scanned = 0;
            if let Some(event) = parse_event(&raw) {
                return Some(event);
            }
        }
    }

    /// Finds the end of the first event: the byte after its blank line. `scanned` always
    /// sits at the start of a line, so a resumed scan never loses a line boundary.
    fn event_end(&mut self) -> Option<usize> {
        let buf = &self.buf[..];
        let mut start = self.scanned;
        loop {
            let Some(offset) = buf[start..].iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.scanned = start;
                return None;
            };
            let end = start + offset;
            let next = match (buf[end], buf.get(end + 1)) {
                (b'\r', None) => {
                    // Either a lone CR or the first half of CRLF: wait for the next byte.
                    self.scanned = start;
                    return None;
                }
                (b'\r', Some(b'\n')) => end + 2,
                _ => end + 1,
            };
            if end == start {
                return Some(next);
            }
            start = next;
        }
    }
}

fn parse_event(raw: &[u8]) -> Option<Event> {
    let text = String::from_utf8_lossy(raw);
    let mut name = None;
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => name = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    if name.is_none() && data.is_none() {
        return None;
    }
    Some(Event {
        name,
        data: data.unwrap_or_default(),
        raw: Bytes::copy_from_slice(raw),
    })
}

/// Appends one event in standard framing: `event: NAME\n` (when named), `data: DATA\n\n`.
pub fn write(out: &mut Vec<u8>, name: Option<&str>, data: &str) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut Parser) -> Vec<(Option<String>, String)> {
        std::iter::from_fn(|| parser.next_event())
            .map(|e| (e.name, e.data))
            .collect()
    }

    #[test]
    fn events_split_at_any_byte_and_any_line_ending_parse_the_same() {
        let inputs = [
            "event: a\ndata: {\"x\":1}\n\n: keepalive\n\ndata: two\ndata: lines\n\n",
            "event: a\r\ndata: {\"x\":1}\r\n\r\n: keepalive\r\n\r\ndata: two\r\ndata: lines\r\n\r\n",
        ];
        let want = vec![
            (Some("a".to_string()), "{\"x\":1}".to_string()),
            (None, "two\nlines".to_string()),
        ];
        for input in inputs {
            for split in 0..input.len() {
                let mut p = Parser::default();
                p.push(&input.as_bytes()[..split]);
                let mut got = all(&mut p);
                p.push(&input.as_bytes()[split..]);
                got.extend(all(&mut p));
                assert_eq!(got, want, "input {input:?} split at {split}");
            }
        }
    }

    #[test]
    fn an_event_past_the_limit_is_reported_and_smaller_ones_are_not() {
        let mut p = Parser::with_limit(64);
        p.push(b"data: small\n\n");
        assert_eq!(all(&mut p).len(), 1);
        assert!(!p.oversized());
        for _ in 0..10 {
            p.push(b"data: endless endless endless");
            assert!(p.next_event().is_none());
        }
        assert!(p.oversized());
    }

    #[test]
    fn an_unfinished_event_is_reported_as_partial() {
        let mut p = Parser::default();
        p.push(b"data: {\"cut\":");
        assert!(p.next_event().is_none());
        assert!(p.has_partial());
    }
}
