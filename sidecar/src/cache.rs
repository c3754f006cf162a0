//! The exact-match response cache (the policy's `cache`): per pod, in memory. The key is the
//! caller's dialect, the served model and the request body without its stream flags, hashed
//! to 128 bits (the request is not kept: a flood of distinct bodies holds at most
//! `maxEntries` answers, each a compact copy); only successful answers are stored, in the
//! caller's dialect: a whole answer (replayed as a stream when an identical call streams), or
//! a stream that completed, as the caller received it (up to [`MAX_STREAM_BYTES`]; it answers
//! identical streamed calls, byte for byte). A hit spends nothing: no upstream call, no
//! usage, no budget, no rate limit.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, Value};

use crate::{
    body::CallBody,
    bounded::Bounded,
    dialect::{Dialect, Operation},
    prehashed::BuildPrehashed,
    sse,
    translate::{self, Context},
};

/// What a lookup found, for the `x-switchyard-cache` header and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from the cache.
    Hit,
    /// Not in the cache: asked upstream (and stored if it succeeds).
    Miss,
    /// The caller said `Cache-Control: no-cache` or `no-store`.
    Bypass,
}

impl Outcome {
    /// The header value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Bypass => "bypass",
        }
    }
}

/// A cache key: 128 bits of BLAKE3 over the dialect, the served model and the body without
/// its stream flags.
pub type Key = u128;

/// The longest stream stored (its events as the caller received them); a longer one is
/// relayed and not kept.
pub const MAX_STREAM_BYTES: usize = 1 << 20;

/// Where a call's answer is looked up and stored: its key, and whether the stream it asks
/// for ends with a usage chunk (OpenAI's `stream_options.include_usage`, which the key leaves
/// out: a stored stream answers only calls that want the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The key.
    pub key: Key,
    /// Whether the caller's stream ends with a usage chunk.
    pub usage_chunk: bool,
}

/// An answer held in the cache, in the caller's dialect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A whole answer: served as it is, or replayed as a stream.
    Whole(Bytes),
    /// A stream that completed, its events as the caller received them.
    Stream {
        /// The events.
        events: Bytes,
        /// Whether they end with a usage chunk.
        usage_chunk: bool,
    },
}

impl Stored {
    /// Whether this answers a call at `place` that streams (or not).
    pub fn answers(&self, place: Place, stream: bool) -> bool {
        match self {
            Stored::Whole(_) => true,
            Stored::Stream { usage_chunk, .. } => stream && *usage_chunk == place.usage_chunk,
        }
    }
}

/// Whether the caller asks to bypass the cache.
pub fn bypassed(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| {
            matches!(
                d.trim().to_ascii_lowercase().as_str(),
                "no-cache" | "no-store"
            )
        })
}

/// The key of a call: the bytes the caller sent but its stream flags, which the inbound pass
/// located, hashed in one pass (no second parse; a 100 KB agent turn costs tens of
/// microseconds). A body the gateway edited is keyed on its tree. Bytes are compared as sent:
/// the same call re-serialized with other spacing or member order is another key.
pub fn key(dialect: Dialect, model: &str, body: &CallBody) -> Key {
    let mut h = blake3::Hasher::new();
    for part in [dialect.as_str(), model] {
        // Length first: the parts cannot run into each other or into the body.
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    match body.without_stream_flags() {
        Some(pieces) => pieces.for_each(|p| {
            h.update(p);
        }),
        None => {
            let members: Option<std::collections::BTreeMap<&String, &Value>> =
                body.value().as_object().map(|o| {
                    o.iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "stream" | "stream_options"))
                        .collect()
                });
            h.update(&serde_json::to_vec(&members).unwrap_or_default());
        }
    }
    let mut out = [0; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(out)
}

/// The cache: answers in the caller's dialect, by key.
#[derive(Debug, Default)]
pub struct Cache {
    /// Keyed by digests: hashed as they are (`Prehashed`), not through SipHash again.
    answers: Bounded<Key, Stored, BuildPrehashed>,
}

impl Cache {
    /// The answer stored under `key`, if younger than `ttl`.
    pub fn get(&self, key: Key, ttl: Duration) -> Option<Stored> {
        self.answers.get(&key, ttl)
    }

    /// Stores a copy of an answer, dropping the oldest past `max_entries` and the expired.
    /// A copy: the answer may be a slice of the connection's read buffer, which a stored
    /// slice would keep whole (kilobytes per entry) and make the connection allocate anew.
    /// How many answers are held then.
    pub fn put(&self, key: Key, body: &[u8], max_entries: usize, ttl: Duration) -> usize {
        let whole = Stored::Whole(Bytes::copy_from_slice(body));
        self.answers.put(key, whole, max_entries, ttl)
    }

    /// Stores a completed stream's events for identical streamed calls at `place`; how many
    /// answers are held then.
    pub fn put_stream(
        &self,
        place: Place,
        events: Vec<u8>,
        max_entries: usize,
        ttl: Duration,
    ) -> usize {
        let stream = Stored::Stream {
            events: Bytes::from(events),
            usage_chunk: place.usage_chunk,
        };
        self.answers.put(place.key, stream, max_entries, ttl)
    }

    /// How many answers are held.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }
}

/// A stored whole answer replayed as a stream in the caller's dialect: the answer is read as
/// the hub's chat completion, cut into chunks, and those run through the caller's stream
/// translator, so the replay has every event a live stream of that dialect has.
pub fn replay(dialect: Dialect, body: &Bytes, ctx: Context) -> Option<Vec<u8>> {
    let hub = match dialect {
        Dialect::OpenAi => serde_json::from_slice::<Value>(body).ok()?,
        _ => {
            let (hub, _) =
                translate::response(Dialect::OpenAi, dialect, Operation::Chat, body, &ctx).ok()?;
            serde_json::from_slice(&hub).ok()?
        }
    };
    let ctx = Context {
        include_usage: ctx.include_usage || dialect != Dialect::OpenAi,
        ..ctx
    };
    let mut t = translate::stream(dialect, Dialect::OpenAi, ctx);
    let mut parser = sse::Parser::default();
    parser.push(&hub_chunks(&hub));
    let mut out = Vec::new();
    while let Some(ev) = parser.next_event() {
        t.event(&ev, &mut out);
    }
    t.finish(&mut out).then_some(out)
}

/// A chat completion as the chunks a live stream of it would carry.
fn hub_chunks(hub: &Value) -> Vec<u8> {
    let (id, created, model) = (&hub["id"], &hub["created"], &hub["model"]);
    let choice = &hub["choices"][0];
    let msg = &choice["message"];
    let mut out = Vec::new();
    let mut chunk = |delta: Value, finish: Value, usage: Option<&Value>| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if let Some(u) = usage {
            c["choices"] = json!([]);
            c["usage"] = u.clone();
        }
        sse::write(&mut out, None, &c.to_string());
    };
    chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
        None,
    );
    if let Some(text) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        chunk(json!({"content": text}), Value::Null, None);
    }
    for (i, call) in msg["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut call = call.clone();
        call["index"] = json!(i);
        chunk(json!({"tool_calls": [call]}), Value::Null, None);
    }
    chunk(json!({}), choice["finish_reason"].clone(), None);
    chunk(Value::Null, Value::Null, Some(&hub["usage"]));
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(dialect: Dialect, model: &str, raw: &[u8]) -> Key {
        let parsed =
            crate::inbound::parse(dialect, Operation::Chat, Bytes::from(raw.to_vec()), None);
        parsed
            .map(|p| key(dialect, model, &p.body))
            .unwrap_or_default()
    }

    #[test]
    fn keys_read_the_body_as_sent_but_its_stream_flags() {
        let k = |b: &[u8]| key_of(Dialect::OpenAi, "chat", b);
        let plain = br#"{"model": "m", "messages": [{"role": "user", "content": "a \"b\""}]}"#;
        let streamed = br#"{"stream": true, "model": "m", "messages": [{"role": "user", "content": "a \"b\""}], "stream_options": {"include_usage": true}}"#;
        let other = br#"{"model": "m", "messages": [{"role": "user", "content": "a \"c\""}]}"#;
        assert_eq!(k(plain), k(streamed));
        assert_ne!(k(plain), k(other));
        assert_ne!(k(plain), 0);
    }

    #[test]
    fn keys_tell_the_model_and_the_dialect_apart() {
        let raw =
            br#"{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}"#;
        let k = key_of(Dialect::Anthropic, "chat", raw);
        assert_ne!(k, key_of(Dialect::Anthropic, "other", raw));
        assert_ne!(k, key_of(Dialect::OpenAi, "chat", raw));
        // The model and the dialect cannot run into each other.
        assert_ne!(
            key_of(Dialect::OpenAi, "ab", raw),
            key_of(Dialect::OpenAi, "a", raw)
        );
    }

    #[test]
    fn an_edited_body_is_keyed_on_its_tree_without_stream_flags() {
        let raw =
            br#"{"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}"#;
        let parsed = crate::inbound::parse(
            Dialect::OpenAi,
            Operation::Chat,
            Bytes::from(raw.to_vec()),
            None,
        );
        let Ok(mut parsed) = parsed else {
            panic!("a good body was refused")
        };
        let before = key(Dialect::OpenAi, "chat", &parsed.body);
        parsed.body.value_mut()["stream"] = Value::Bool(false);
        let edited = key(Dialect::OpenAi, "chat", &parsed.body);
        parsed.body.value_mut()["messages"][0]["content"] = Value::from("y");
        assert_ne!(edited, key(Dialect::OpenAi, "chat", &parsed.body));
        assert_ne!(before, 0);
    }

    #[test]
    fn entries_expire_and_the_oldest_go_past_capacity() {
        let c = Cache::default();
        let ttl = Duration::from_secs(60);
        for n in 0..5u64 {
            c.put(n.into(), n.to_string().as_bytes(), 3, ttl);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(0, ttl).is_none());
        assert_eq!(c.get(4, ttl), Some(Stored::Whole(Bytes::from("4"))));
        assert!(c.get(4, Duration::ZERO).is_none());
    }

    #[test]
    fn an_answer_is_stored_as_a_copy_not_as_a_view_of_the_buffer_it_came_in() {
        // An upstream answer is a slice of the connection's read buffer: stored as it is,
        // each entry would hold the whole buffer.
        let buffer = Bytes::from(vec![b'x'; 64 * 1024]);
        let answer = buffer.slice(100..400);
        let c = Cache::default();
        let ttl = Duration::from_secs(60);
        c.put(1, &answer, 10, ttl);
        let Some(Stored::Whole(stored)) = c.get(1, ttl) else {
            panic!("the answer was not stored whole")
        };
        assert_eq!(stored, answer);
        let inside = buffer.as_ptr_range();
        assert!(!inside.contains(&stored.as_ptr()));
    }

    #[test]
    fn a_stored_stream_answers_only_streamed_calls_that_want_the_same_ending() {
        let c = Cache::default();
        let ttl = Duration::from_secs(60);
        let place = |usage_chunk| Place {
            key: 7,
            usage_chunk,
        };
        c.put_stream(place(true), b"data: x\n\n".to_vec(), 10, ttl);
        let Some(stored) = c.get(7, ttl) else {
            panic!("the stream was not stored")
        };
        assert!(stored.answers(place(true), true));
        assert!(!stored.answers(place(false), true), "another ending");
        assert!(!stored.answers(place(true), false), "not a whole answer");
        // A whole answer then stored under the key answers both.
        c.put(7, b"{}", 10, ttl);
        let whole = c.get(7, ttl);
        assert!(
            whole.is_some_and(|w| w.answers(place(false), true) && w.answers(place(false), false))
        );
    }

    #[test]
    fn no_cache_and_no_store_bypass() {
        let mut h = HeaderMap::new();
        assert!(!bypassed(&h));
        h.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("max-age=0, No-Store"),
        );
        assert!(bypassed(&h));
    }

    #[test]
    fn a_whole_answer_replays_as_a_complete_stream_in_each_dialect() {
        let hub = json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "cached words"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
        for dialect in [
            Dialect::OpenAi,
            Dialect::Anthropic,
            Dialect::Gemini,
            Dialect::Responses,
        ] {
            let ctx = Context {
                model: "chat".into(),
                ..Context::default()
            };
            let whole = match dialect {
                Dialect::OpenAi => Bytes::from(hub.to_string()),
                _ => translate::response(
                    dialect,
                    Dialect::OpenAi,
                    Operation::Chat,
                    &Bytes::from(hub.to_string()),
                    &ctx,
                )
                .map(|(b, _)| b)
                .unwrap_or_default(),
            };
            let out = replay(dialect, &whole, ctx).unwrap_or_default();
            let text = String::from_utf8(out).unwrap_or_default();
            assert!(text.contains("cached words"), "{dialect:?}: {text}");
        }
    }
}
