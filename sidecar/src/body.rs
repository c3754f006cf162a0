//! A call's body as the gateway holds it: the bytes as received, the few facts routing reads
//! from them (found in one validating pass that builds no tree, whose marks stay for a
//! second reader), and the JSON tree, built only when a translation or an edit needs it. A
//! same-format call is forwarded as its own bytes with the model spliced in: a 100 KB agent
//! turn is never parsed into a tree, cloned or serialized again.

use std::{ops::Range, sync::OnceLock};

use bytes::Bytes;
use serde_json::Value;

use crate::{payload::Payload, scan::Marks};

/// What routing, limits and accounting read from a body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `stream_options.include_usage` is true.
    pub include_usage: bool,
    /// `stream_options` is present (a splice cannot add `include_usage` beside it).
    pub stream_options: bool,
    /// `encoding_format` is `base64` (embeddings).
    pub base64: bool,
    /// The most output tokens asked for, in whichever field the dialect names it.
    pub max_output: Option<u64>,
    /// `prompt_cache_key` (a session key).
    pub prompt_cache_key: Option<String>,
}

/// Where the top-level values the gateway rewrites or leaves out lie in a body's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    /// `model`'s value, quotes included.
    pub model: Option<Range<usize>>,
    /// The values of `stream` and `stream_options`, which the cache key leaves out.
    pub stream_flags: [Option<Range<usize>>; 2],
}

/// A call's body.
#[derive(Debug)]
pub struct CallBody {
    raw: Bytes,
    spans: Spans,
    facts: Facts,
    tree: OnceLock<Value>,
    /// The tree once changed: `raw` no longer says what the call is.
    edited: Option<Value>,
    /// Where the inbound scan found `raw`'s strings, for a reader that walks it again.
    marks: Option<Marks>,
}

impl CallBody {
    /// A checked body: its bytes, where its members are, and its facts.
    pub fn new(raw: Bytes, spans: Spans, facts: Facts) -> Self {
        Self {
            raw,
            spans,
            facts,
            tree: OnceLock::new(),
            edited: None,
            marks: None,
        }
    }

    /// The body with the marks its scan left.
    pub(crate) fn scanned(self, marks: Marks) -> Self {
        Self {
            marks: Some(marks),
            ..self
        }
    }

    /// The bytes as received and the marks of their scan, while the bytes still say what
    /// the call is.
    pub(crate) fn wire_scanned(&self) -> Option<(&[u8], Option<&Marks>)> {
        self.wire().map(|raw| (raw, self.marks.as_ref()))
    }

    /// The facts routing reads.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The bytes as received, while they still say what the call is (no edit since).
    pub fn wire(&self) -> Option<&[u8]> {
        self.edited.is_none().then_some(&self.raw[..])
    }

    /// The size of the body as received.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The JSON tree (built on first use; the bytes were validated when the call was read).
    pub fn value(&self) -> &Value {
        match &self.edited {
            Some(v) => v,
            None => self.tree.get_or_init(|| parse(&self.raw)),
        }
    }

    /// The JSON tree, to edit: from then on the bytes are stale and the tree is forwarded.
    pub fn value_mut(&mut self) -> &mut Value {
        let (tree, raw) = (&mut self.tree, &self.raw);
        self.edited
            .get_or_insert_with(|| tree.take().unwrap_or_else(|| parse(raw)))
    }

    /// The body forwarded unchanged but for the model (and, for a streamed OpenAI call, the
    /// usage chunk asked for): slices of the received bytes around the new model, never a
    /// copy of them. `None` when the bytes cannot be reused (edited, or `stream_options`
    /// already set without `include_usage`).
    pub fn spliced(&self, model: Option<&str>, ask_usage: bool) -> Option<Payload> {
        let usage = ask_usage && !self.facts.include_usage;
        if self.edited.is_some() || (usage && self.facts.stream_options) {
            return None;
        }
        if model.is_none() && !usage {
            // Nothing to change (a Gemini body names its model in the path).
            return Some(Payload::whole(self.raw.clone()));
        }
        let open = self.raw.iter().position(|b| *b == b'{')? + 1;
        let added = if usage {
            Bytes::from_static(br#""stream_options":{"include_usage":true},"#)
        } else {
            Bytes::new()
        };
        let Some(model) = model else {
            return Some(Payload::of([
                self.raw.slice(..open),
                added,
                self.raw.slice(open..),
            ]));
        };
        let span = self.spans.model.clone()?;
        Some(Payload::of([
            self.raw.slice(..open),
            added,
            self.raw.slice(open..span.start),
            Bytes::from(serde_json::to_vec(model).ok()?),
            self.raw.slice(span.end..),
        ]))
    }

    /// The received bytes without the stream flags, as the pieces between them: what the
    /// cache keys on, so a streamed and a whole call for the same answer are one entry. A
    /// flag leaves with its name and one comma; one whose name was written with escapes
    /// stays (its call is keyed apart). `None` once edited: the bytes no longer say the call.
    pub fn without_stream_flags(&self) -> Option<impl Iterator<Item = &[u8]>> {
        let raw = self.wire()?;
        let mut cut: Vec<Range<usize>> = self
            .spans
            .stream_flags
            .iter()
            .flatten()
            .filter_map(|value| member(raw, value.clone()))
            .collect();
        cut.sort_by_key(|r| r.start);
        // Flags side by side leave as one run.
        let mut runs: Vec<Range<usize>> = Vec::with_capacity(cut.len());
        for r in cut {
            match runs.last_mut() {
                Some(last) if raw[last.end..r.start.max(last.end)].trim_ascii().is_empty() => {
                    last.end = last.end.max(r.end);
                }
                _ => runs.push(r),
            }
        }
        let mut at = 0;
        let mut kept: Vec<Range<usize>> = Vec::with_capacity(runs.len() + 1);
        for mut r in runs {
            // A run that opens the object takes the comma after it (there is none before).
            if raw[..r.start].trim_ascii_end().ends_with(b"{") {
                let rest = &raw[r.end..];
                let after = rest.trim_ascii_start();
                if let Some(next) = after.strip_prefix(b",") {
                    r.end = raw.len() - next.trim_ascii_start().len();
                }
            }
            kept.push(at..r.start);
            at = r.end;
        }
        kept.push(at..raw.len());
        Some(kept.into_iter().map(move |r| &raw[r]))
    }
}

/// The top-level member whose value lies at `value` (its name `"stream"` or
/// `"stream_options"` written plainly), from the comma before it, or from its name when it
/// comes first.
fn member(raw: &[u8], value: Range<usize>) -> Option<Range<usize>> {
    let before = |i: usize| raw[..i].trim_ascii_end();
    let named = before(value.start).strip_suffix(b":")?.trim_ascii_end();
    let name = [&b"\"stream\""[..], b"\"stream_options\""]
        .into_iter()
        .find(|n| named.ends_with(n))?;
    let start = named.len() - name.len();
    let ahead = before(start);
    match ahead.last()? {
        b',' => Some(ahead.len() - 1..value.end),
        b'{' => Some(start..value.end),
        _ => None,
    }
}

fn parse(raw: &[u8]) -> Value {
    serde_json::from_slice(raw).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(raw: &str) -> CallBody {
        let at = raw.find("\"m\"").unwrap_or(0);
        let value = |name: &str| {
            let at = raw.find(&format!("\"{name}\""))? + name.len() + 2;
            let start = at + raw[at..].find(|c: char| c != ':' && c != ' ')?;
            let mut values = serde_json::Deserializer::from_str(&raw[start..]).into_iter::<Value>();
            values.next()?.ok()?;
            Some(start..start + values.byte_offset())
        };
        let spans = Spans {
            model: Some(at..at + 3),
            stream_flags: [value("stream"), value("stream_options")],
        };
        CallBody::new(Bytes::from(raw.to_string()), spans, Facts::default())
    }

    fn without_flags(raw: &str) -> String {
        let b = body(raw);
        let pieces = b
            .without_stream_flags()
            .map(|p| p.collect::<Vec<_>>().concat());
        String::from_utf8(pieces.unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn stream_flags_leave_with_their_names_and_one_comma_wherever_they_stand() {
        let plain = r#"{"model": "m", "n": 1}"#;
        for raw in [
            r#"{"stream": true, "model": "m", "n": 1}"#,
            r#"{"model": "m", "stream":true, "n": 1}"#,
            r#"{"model": "m", "n": 1, "stream" : false}"#,
            r#"{"stream_options": 7,"model": "m", "stream": true, "n": 1}"#,
            r#"{"model": "m", "n": 1,"stream": true , "stream_options":7}"#,
            r#"{"stream": true , "stream_options": {"include_usage": true}, "model": "m", "n": 1}"#,
        ] {
            assert_eq!(without_flags(raw), plain, "{raw}");
        }
        // Spelled with an escape: kept, so the call is keyed apart rather than wrongly.
        let escaped = r#"{"model": "m", "n": 1, "s\u0074ream": true}"#;
        let at = escaped.len() - 5;
        let spans = Spans {
            stream_flags: [Some(at..at + 4), None],
            ..Spans::default()
        };
        let b = CallBody::new(Bytes::from(escaped), spans, Facts::default());
        let kept = b
            .without_stream_flags()
            .map(|p| p.collect::<Vec<_>>().concat());
        assert_eq!(kept.unwrap_or_default(), escaped.as_bytes());
        // A member that only ends in the name is not a flag.
        assert_eq!(without_flags(plain), plain);
        assert_eq!(without_flags(r#"{"stream": true}"#), "{}");
    }

    #[test]
    fn the_model_is_spliced_and_the_rest_kept_byte_for_byte() {
        let b = body(r#"{ "model": "m", "x": [1.10, "\u00e9"] }"#);
        let out = b
            .spliced(Some("gpt-\"4o\""), false)
            .map(|p| p.contiguous())
            .unwrap_or_default();
        assert_eq!(
            &out[..],
            br#"{ "model": "gpt-\"4o\"", "x": [1.10, "\u00e9"] }"#
        );
        let out = b
            .spliced(Some("up"), true)
            .map(|p| p.contiguous())
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["model"], "up");
    }

    #[test]
    fn an_edited_body_is_forwarded_from_its_tree() {
        let mut b = body(r#"{"model": "m"}"#);
        b.value_mut()["model"] = Value::from("other");
        assert!(b.spliced(Some("x"), false).is_none());
        assert_eq!(b.value()["model"], "other");
    }
}
