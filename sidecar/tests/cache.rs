//! The exact-match cache through the real binary: hits and misses in every dialect, a stream
//! replayed from a whole answer, a completed stream replayed byte for byte (a cut one not
//! kept), bypass headers, TTL, eviction, no cross-model hits, and a hit costing no upstream
//! call and no tokens.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn yaml(up: &Upstreams, cache: &str) -> String {
    let mut yaml = up.providers();
    yaml.push_str(&model("chat", &[("anthropic", "claude", 0)], ""));
    yaml.push_str(&model("other", &[("anthropic", "claude", 0)], ""));
    yaml.push_str(&policy(&format!("cache: {cache}")));
    yaml
}

fn metric(sc: &Sidecar, needle: &str) -> f64 {
    let (_, m) = sc.admin_get("/metrics").unwrap();
    m.lines()
        .filter(|l| l.starts_with(needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_calls_are_answered_from_the_cache_in_every_dialect_and_streams_replay() {
    let up = Upstreams::start().await;
    let sc = start(&yaml(&up, "{ttl: 10m, maxEntries: 100}"));
    for dialect in ["openai", "anthropic", "gemini", "responses"] {
        let prompt = format!("cache me in {dialect}");
        let (path, body) = chat(dialect, "chat", &prompt, false);
        let before = up.anthropic.received().len();
        let first = post(&sc, &path, &body).await;
        assert_eq!(first.status, 200, "{dialect}: {}", first.text);
        assert_eq!(first.header("x-switchyard-cache"), "miss", "{dialect}");
        let tokens = metric(&sc, "switchyard_tokens_total");
        let again = post(&sc, &path, &body).await;
        assert_eq!(again.header("x-switchyard-cache"), "hit", "{dialect}");
        assert_eq!(again.text, first.text, "{dialect}: the same answer");
        let (spath, sbody) = chat(dialect, "chat", &prompt, true);
        let streamed = post(&sc, &spath, &sbody).await;
        assert_eq!(streamed.header("x-switchyard-cache"), "hit", "{dialect}");
        assert!(
            streamed
                .header("content-type")
                .starts_with("text/event-stream"),
            "{dialect}"
        );
        assert_eq!(
            streamed.assistant_text(),
            first.assistant_text(),
            "{dialect}: replay"
        );
        assert_eq!(
            up.anthropic.received().len(),
            before + 1,
            "{dialect}: one upstream call"
        );
        assert_eq!(
            metric(&sc, "switchyard_tokens_total"),
            tokens,
            "{dialect}: a hit counts no tokens"
        );
    }
    assert!(
        metric(
            &sc,
            "switchyard_cache_lookups_total{gen_ai_request_model=\"chat\",result=\"hit\"}"
        ) >= 8.0
    );
    // The same body for another model is another entry.
    let (path, body) = chat("openai", "other", "cache me in openai", false);
    assert_eq!(
        post(&sc, &path, &body).await.header("x-switchyard-cache"),
        "miss"
    );
    // The caller can bypass it.
    let (path, body) = chat("openai", "chat", "cache me in openai", false);
    for value in ["no-cache", "no-store"] {
        let a = post_with(&sc, &path, &body, &[("cache-control", value)]).await;
        assert_eq!(a.header("x-switchyard-cache"), "bypass");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_expire_after_the_ttl_and_the_oldest_go_past_max_entries() {
    let up = Upstreams::start().await;
    let sc = start(&yaml(&up, "{ttl: 1s, maxEntries: 3}"));
    let ask = |n: usize| {
        let sc = &sc;
        async move {
            let (path, body) = chat("openai", "chat", &format!("question {n}"), false);
            post(sc, &path, &body)
                .await
                .header("x-switchyard-cache")
                .to_string()
        }
    };
    assert_eq!(ask(0).await, "miss");
    assert_eq!(ask(0).await, "hit");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ask(0).await, "miss", "expired");
    // A flood of distinct bodies: never more than maxEntries held; the oldest went first.
    for n in 1..=40 {
        assert_eq!(ask(n).await, "miss");
    }
    assert!(metric(&sc, "switchyard_cache_entries") <= 3.0);
    assert_eq!(ask(40).await, "hit");
    assert_eq!(ask(1).await, "miss", "evicted");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cache_policy_nothing_is_cached_or_marked() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    yaml.push_str(&model("chat", &[("anthropic", "claude", 0)], ""));
    let sc = start(&yaml);
    let (path, body) = chat("openai", "chat", "hello", false);
    for _ in 0..2 {
        assert_eq!(
            post(&sc, &path, &body).await.header("x-switchyard-cache"),
            ""
        );
    }
    assert_eq!(up.anthropic.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_stream_is_stored_as_sent_and_replayed_byte_for_byte() {
    let up = Upstreams::start().await;
    let sc = start(&yaml(&up, "{ttl: 10m, maxEntries: 100}"));
    for dialect in ["openai", "anthropic", "gemini", "responses"] {
        let prompt = format!("stream me in {dialect}");
        let (path, body) = chat(dialect, "chat", &prompt, true);
        let before = up.anthropic.received().len();
        let first = post(&sc, &path, &body).await;
        assert_eq!(first.status, 200, "{dialect}: {}", first.text);
        assert_eq!(first.header("x-switchyard-cache"), "miss", "{dialect}");
        let tokens = metric(&sc, "switchyard_tokens_total");
        let again = post(&sc, &path, &body).await;
        assert_eq!(again.header("x-switchyard-cache"), "hit", "{dialect}");
        assert!(
            again
                .header("content-type")
                .starts_with("text/event-stream"),
            "{dialect}"
        );
        assert_eq!(
            again.text, first.text,
            "{dialect}: the stream as it was sent"
        );
        assert_eq!(
            up.anthropic.received().len(),
            before + 1,
            "{dialect}: one upstream call"
        );
        assert_eq!(
            metric(&sc, "switchyard_tokens_total"),
            tokens,
            "{dialect}: a hit counts no tokens"
        );
        // A stream does not answer the same call asked whole: that one is asked, and its
        // answer then serves both.
        let (path, body) = chat(dialect, "chat", &prompt, false);
        let whole = post(&sc, &path, &body).await;
        assert_eq!(whole.header("x-switchyard-cache"), "miss", "{dialect}");
        assert_eq!(whole.assistant_text(), first.assistant_text(), "{dialect}");
        assert_eq!(
            post(&sc, &path, &body).await.header("x-switchyard-cache"),
            "hit",
            "{dialect}"
        );
    }
    // An OpenAI stream that ends with a usage chunk answers only callers that asked for one.
    let (path, mut body) = chat("openai", "chat", "with usage", true);
    body["stream_options"] = json!({"include_usage": true});
    let first = post(&sc, &path, &body).await;
    assert_eq!(first.header("x-switchyard-cache"), "miss");
    let again = post(&sc, &path, &body).await;
    assert_eq!(again.header("x-switchyard-cache"), "hit");
    assert_eq!(again.text, first.text);
    body.as_object_mut().unwrap().remove("stream_options");
    let without = post(&sc, &path, &body).await;
    assert_eq!(without.header("x-switchyard-cache"), "miss");
    assert!(!without.text.contains("\"usage\""), "{}", without.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_cut_short_is_not_stored() {
    let up = Upstreams::start().await;
    let sc = start(&yaml(&up, "{ttl: 10m, maxEntries: 100}"));
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    up.anthropic.script([cut_after(vec![
        (
            Duration::ZERO,
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_cut", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}}),
            ),
        ),
        (
            Duration::ZERO,
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
        ),
        (
            Duration::ZERO,
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "half"}}),
            ),
        ),
    ])]);
    let (path, body) = chat("anthropic", "chat", "cut me", true);
    let cut = post(&sc, &path, &body).await;
    assert_eq!(cut.header("x-switchyard-cache"), "miss");
    assert!(cut.text.contains("event: error"), "{}", cut.text);
    let next = post(&sc, &path, &body).await;
    assert_eq!(
        next.header("x-switchyard-cache"),
        "miss",
        "the cut stream was not kept"
    );
    assert!(next.text.contains("message_stop"), "{}", next.text);
    assert_eq!(
        post(&sc, &path, &body).await.header("x-switchyard-cache"),
        "hit"
    );
}
