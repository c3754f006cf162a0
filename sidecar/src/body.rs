//! A call's body as the gateway holds it: the bytes as received, the few facts routing reads
//! from them (found in one validating pass that builds no tree), and the JSON tree, built
//! only when a translation or an edit needs it. A same-format call is forwarded as its own
//! bytes with the model spliced in: a 100 KB agent turn is never parsed into a tree, cloned
//! or serialized again.

use std::{ops::Range, sync::OnceLock};

use bytes::{Bytes, BytesMut};
use serde_json::Value;

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

/// A call's body.
#[derive(Debug)]
pub struct CallBody {
    raw: Bytes,
    /// Where the top-level `model` value lies in `raw`, quotes included.
    model_span: Option<Range<usize>>,
    facts: Facts,
    tree: OnceLock<Value>,
    /// The tree once changed: `raw` no longer says what the call is.
    edited: Option<Value>,
}

impl CallBody {
    /// A checked body: its bytes, where its model is, and its facts.
    pub fn new(raw: Bytes, model_span: Option<Range<usize>>, facts: Facts) -> Self {
        Self {
            raw,
            model_span,
            facts,
            tree: OnceLock::new(),
            edited: None,
        }
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
    /// usage chunk asked for): spliced into the received bytes. `None` when the bytes cannot
    /// be reused (edited, or `stream_options` already set without `include_usage`).
    pub fn spliced(&self, model: Option<&str>, ask_usage: bool) -> Option<Bytes> {
        let usage = ask_usage && !self.facts.include_usage;
        if self.edited.is_some() || (usage && self.facts.stream_options) {
            return None;
        }
        if model.is_none() && !usage {
            // Nothing to change (a Gemini body names its model in the path).
            return Some(self.raw.clone());
        }
        let open = self.raw.iter().position(|b| *b == b'{')? + 1;
        let mut out = BytesMut::with_capacity(self.raw.len() + 64);
        out.extend_from_slice(&self.raw[..open]);
        if usage {
            out.extend_from_slice(br#""stream_options":{"include_usage":true},"#);
        }
        match model {
            Some(model) => {
                let span = self.model_span.clone()?;
                out.extend_from_slice(&self.raw[open..span.start]);
                out.extend_from_slice(serde_json::to_string(model).ok()?.as_bytes());
                out.extend_from_slice(&self.raw[span.end..]);
            }
            None => out.extend_from_slice(&self.raw[open..]),
        }
        Some(out.freeze())
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
        CallBody::new(
            Bytes::from(raw.to_string()),
            Some(at..at + 3),
            Facts::default(),
        )
    }

    #[test]
    fn the_model_is_spliced_and_the_rest_kept_byte_for_byte() {
        let b = body(r#"{ "model": "m", "x": [1.10, "\u00e9"] }"#);
        let out = b.spliced(Some("gpt-\"4o\""), false).unwrap_or_default();
        assert_eq!(
            &out[..],
            br#"{ "model": "gpt-\"4o\"", "x": [1.10, "\u00e9"] }"#
        );
        let out = b.spliced(Some("up"), true).unwrap_or_default();
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
