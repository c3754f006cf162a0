//! The exact-match response cache (the policy's `cache`): per pod, in memory. The key is the
//! caller's dialect, the served model and the request body without its stream flags, hashed
//! to 128 bits (the body itself is not kept, so a flood of distinct bodies costs nothing);
//! only whole successful answers are stored, in the caller's dialect, and a stream asked for
//! is replayed as a stream in that dialect. A hit spends nothing: no upstream call, no
//! usage, no budget, no rate limit.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    time::Duration,
};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{json, value::RawValue, Value};

use crate::{
    bounded::Bounded,
    dialect::{Dialect, Operation},
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

/// A cache key: 128 bits of the dialect, model and body without stream flags.
pub type Key = (u64, u64);

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

/// The key of a call: its top-level members but the stream flags, in name order, each as the
/// bytes the caller sent, hashed by two differently salted hashers. No tree is built: a
/// 100 KB agent turn is read once, without copying its strings. (Members are compared as
/// sent: the same body re-serialized with other whitespace inside a member is another key.)
pub fn key(dialect: Dialect, model: &str, raw: &[u8]) -> Key {
    let mut hashers = [0x5157_4954_4348u64, 0x7961_7264].map(|salt| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        dialect.as_str().hash(&mut h);
        model.hash(&mut h);
        h
    });
    let mut write = |bytes: &[u8]| {
        for h in hashers.iter_mut() {
            // Length first: no two sequences of members hash the same bytes.
            h.write_usize(bytes.len());
            h.write(bytes);
        }
    };
    type Members<'a> = std::collections::BTreeMap<std::borrow::Cow<'a, str>, &'a RawValue>;
    match serde_json::from_slice::<Members<'_>>(raw) {
        Ok(members) => {
            for (k, v) in members
                .iter()
                .filter(|(k, _)| !matches!(k.as_ref(), "stream" | "stream_options"))
            {
                write(k.as_bytes());
                write(v.get().as_bytes());
            }
        }
        // Not an object (refused before a lookup): the bytes as they are.
        Err(_) => write(raw),
    }
    let [a, b] = hashers;
    (a.finish(), b.finish())
}

/// The cache: whole answers in the caller's dialect, by key.
#[derive(Debug, Default)]
pub struct Cache {
    answers: Bounded<Key, Bytes>,
}

impl Cache {
    /// The answer stored under `key`, if younger than `ttl`.
    pub fn get(&self, key: Key, ttl: Duration) -> Option<Bytes> {
        self.answers.get(&key, ttl)
    }

    /// Stores an answer, dropping the oldest past `max_entries` and the expired.
    pub fn put(&self, key: Key, body: Bytes, max_entries: usize, ttl: Duration) {
        self.answers.put(key, body, max_entries, ttl);
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

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap_or_default()
    }

    #[test]
    fn keys_read_members_as_sent_and_tell_bodies_apart() {
        let raw = br#"{"stream": true, "model": "m", "messages": [{"role": "user", "content": "a \"b\""}]}"#;
        let same = br#"{"model":"m","messages":[{"role": "user", "content": "a \"b\""}]}"#;
        let other = br#"{"model":"m","messages":[{"role": "user", "content": "a \"c\""}]}"#;
        let k = |b: &[u8]| key(Dialect::OpenAi, "chat", b);
        assert_eq!(k(raw), k(same));
        assert_ne!(k(raw), k(other));
        // Members cannot run into each other.
        assert_ne!(k(br#"{"a": "bc", "d": 1}"#), k(br#"{"a": "b", "cd": 1}"#));
    }

    #[test]
    fn keys_ignore_stream_flags_and_key_order_but_not_the_model_or_dialect() {
        let a = json!({"model": "m", "messages": [1], "stream": true, "stream_options": {"include_usage": true}});
        let b = json!({"messages": [1], "model": "m"});
        assert_eq!(
            key(Dialect::OpenAi, "chat", &bytes(&a)),
            key(Dialect::OpenAi, "chat", &bytes(&b))
        );
        assert_ne!(
            key(Dialect::OpenAi, "chat", &bytes(&a)),
            key(Dialect::OpenAi, "other", &bytes(&a))
        );
        assert_ne!(
            key(Dialect::OpenAi, "chat", &bytes(&a)),
            key(Dialect::Anthropic, "chat", &bytes(&a))
        );
    }

    #[test]
    fn entries_expire_and_the_oldest_go_past_capacity() {
        let c = Cache::default();
        let ttl = Duration::from_secs(60);
        for n in 0..5u64 {
            c.put((n, n), Bytes::from(n.to_string()), 3, ttl);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get((0, 0), ttl).is_none());
        assert_eq!(c.get((4, 4), ttl), Some(Bytes::from("4")));
        assert!(c.get((4, 4), Duration::ZERO).is_none());
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
