//! Failover and resilience through the real binary: every failure kind, Retry-After,
//! circuit breaking, stream failover before the first byte and error events after it.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn two_backends(up: &Upstreams, first: &str, second: &str, policy_spec: &str) -> String {
    let mut yaml = up.providers();
    let m = |p: &str| match p {
        "openai" => "gpt-4o",
        "azure" => "dep",
        "anthropic" => "claude",
        "gemini" => "gemini-2.5-flash",
        _ => "mock-1",
    };
    yaml.push_str(&model(
        "chat",
        &[(first, m(first), 0), (second, m(second), 1)],
        "",
    ));
    yaml.push_str(&policy(policy_spec));
    yaml
}

async fn ask(sc: &Sidecar, dialect: &str, stream: bool) -> Answer {
    let (path, body) = chat(dialect, "chat", "fail me over", stream);
    post(sc, &path, &body).await
}

#[tokio::test(flavor = "multi_thread")]
async fn retryable_failures_move_the_call_to_the_next_backend() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(
        &up,
        "anthropic",
        "openai",
        "circuitBreaker: {consecutiveFailures: 50}",
    ));
    let overloaded = || {
        Reply::json(
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        )
    };
    let cases: Vec<(&str, Reply)> = vec![
        ("500", Reply::json(500, json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}))),
        ("503", Reply::json(503, json!({"type": "error", "error": {"type": "api_error", "message": "down"}}))),
        ("529 overloaded", overloaded()),
        ("429 rate limited", Reply::json(429, json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})).header("retry-after", "0")),
        ("invalid JSON", Reply { body: Body::Raw("application/json", "{not json".into()), ..Reply::json(200, json!({})) }),
    ];
    for (what, reply) in cases {
        for dialect in ["openai", "anthropic"] {
            up.anthropic.script([reply.clone()]);
            let a = ask(&sc, dialect, false).await;
            assert_eq!(a.status, 200, "{what} ({dialect}): {}", a.text);
            assert_eq!(a.header("x-switchyard-provider"), "openai", "{what}");
            assert_eq!(a.header("x-switchyard-attempts"), "2", "{what}");
        }
    }
    for dialect in ["openai", "anthropic"] {
        up.anthropic.script([overloaded()]);
        let a = ask(&sc, dialect, true).await;
        assert_eq!(a.status, 200, "stream after 529 ({dialect}): {}", a.text);
        assert_eq!(a.header("x-switchyard-provider"), "openai");
        assert_eq!(a.assistant_text(), "fail me over");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_fails_over() {
    let up = Upstreams::start().await;
    let closed = switchyard_tests::sidecar::free_addr();
    let yaml = two_backends(&up, "openai", "gemini", "")
        .replace(&up.openai.base_url(), &format!("http://{closed}/v1"));
    let sc = start(&yaml);
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("x-switchyard-provider"), "gemini");
    assert_eq!(a.header("x-switchyard-attempts"), "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_first_byte_fails_over_and_a_stalled_stream_too() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(
        &up,
        "openai",
        "anthropic",
        "timeouts: {firstByte: 300ms, total: 20s}",
    ));
    up.openai
        .script([Reply::default_after(Duration::from_secs(3))]);
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("x-switchyard-provider"), "anthropic");
    // Headers arrive at once, the first event never does: still before the first byte.
    let stalled = Reply {
        body: Body::Sse {
            events: vec![(Duration::from_secs(3), "data: {}\n\n".into())],
            drop: false,
        },
        ..Reply::json(200, json!({}))
    };
    up.openai.script([stalled]);
    let started = Instant::now();
    let a = ask(&sc, "openai", true).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("x-switchyard-provider"), "anthropic");
    assert_eq!(a.assistant_text(), "fail me over");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_in_time_is_a_504_and_the_total_timeout_bounds_all_attempts() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(
        &up,
        "openai",
        "gemini",
        "timeouts: {firstByte: 5s, total: 400ms}",
    ));
    up.openai
        .script([Reply::default_after(Duration::from_secs(3))]);
    let started = Instant::now();
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.status, 504, "{}", a.text);
    assert_eq!(a.json()["error"]["type"], "timeout_error");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    up.openai
        .script([Reply::default_after(Duration::from_secs(3))]);
    let a = ask(&sc, "anthropic", false).await;
    assert_eq!(a.status, 504);
    assert_eq!(a.json()["error"]["type"], "timeout_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callers_mistakes_come_back_at_once_translated() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(&up, "gemini", "openai", ""));
    for status in [400, 404, 422] {
        for dialect in ["openai", "anthropic"] {
            up.gemini.script([Reply::json(status, json!({"error": {"code": status, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}))]);
            let before = up.openai.received().len();
            let a = ask(&sc, dialect, false).await;
            assert_eq!(a.status, status, "{dialect}: {}", a.text);
            assert_eq!(a.header("x-switchyard-attempts"), "1");
            assert_eq!(
                up.openai.received().len(),
                before,
                "no failover on the caller's mistake"
            );
            let v = a.json();
            if dialect == "anthropic" {
                assert_eq!(v["type"], "error");
                let want = if status == 404 {
                    "not_found_error"
                } else {
                    "invalid_request_error"
                };
                assert_eq!(v["error"]["type"], want);
                assert_eq!(v["error"]["message"], "Invalid JSON payload received.");
            } else {
                assert_eq!(v["error"]["type"], "invalid_request_error");
                assert_eq!(v["error"]["message"], "Invalid JSON payload received.");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_platform_key_is_a_502_and_skips_that_providers_other_backends() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers().replace(
        &format!("stringData: {{key: {KEY}}}"),
        "stringData: {key: sk-wrong-key-do-not-log}",
    );
    yaml.push_str(&model(
        "chat",
        &[
            ("openai", "gpt-4o", 0),
            ("openai", "gpt-4o-mini", 1),
            ("mock", "mock-1", 2),
        ],
        "",
    ));
    yaml.push_str(&model(
        "only-openai",
        &[("openai", "gpt-4o", 0), ("openai", "gpt-4o-mini", 1)],
        "",
    ));
    let sc = start(&yaml);
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("x-switchyard-provider"), "mock");
    assert_eq!(
        a.header("x-switchyard-attempts"),
        "2",
        "the second openai backend is not tried"
    );
    for dialect in ["openai", "anthropic"] {
        let (path, body) = chat(dialect, "only-openai", "hi", false);
        let a = post(&sc, &path, &body).await;
        assert_eq!(a.status, 502, "{}", a.text);
        let v = a.json();
        let kind = &v["error"]["type"];
        assert_eq!(kind, "upstream_authentication_error");
        assert!(!a.text.contains("sk-wrong-key"), "{}", a.text);
    }
    assert!(
        !sc.logs().contains("sk-wrong-key-do-not-log"),
        "a key reached the logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_honoured_and_a_429_with_retry_after_comes_back_when_all_are_limited() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(&up, "openai", "anthropic", ""));
    let limited = |secs: &str| {
        Reply::json(429, json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})).header("retry-after", secs)
    };
    up.openai.script([limited("30")]);
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.header("x-switchyard-provider"), "anthropic");
    let calls = up.openai.received().len();
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.header("x-switchyard-provider"), "anthropic");
    assert_eq!(
        up.openai.received().len(),
        calls,
        "a rate-limited backend is skipped until its Retry-After"
    );
    up.anthropic.script([Reply::json(
        429,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}),
    )
    .header("retry-after", "7")]);
    for dialect in ["openai", "anthropic"] {
        let a = ask(&sc, dialect, false).await;
        assert_eq!(a.status, 429, "{}", a.text);
        let after: u64 = a.header("retry-after").parse().unwrap();
        assert!((5..=7).contains(&after), "retry-after {after}");
        let v = a.json();
        assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_circuit_opens_after_n_failures_and_half_opens_after_the_cooldown() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(
        &up,
        "openai",
        "mock",
        "circuitBreaker: {consecutiveFailures: 2, cooldown: 1s}",
    ));
    let down = || {
        Reply::json(
            503,
            json!({"error": {"message": "down", "type": "server_error", "param": null, "code": null}}),
        )
    };
    up.openai.script([down(), down()]);
    for _ in 0..2 {
        assert_eq!(
            ask(&sc, "openai", false)
                .await
                .header("x-switchyard-provider"),
            "mock"
        );
    }
    let calls = up.openai.received().len();
    for _ in 0..3 {
        let a = ask(&sc, "openai", false).await;
        assert_eq!(a.header("x-switchyard-provider"), "mock");
        assert_eq!(
            a.header("x-switchyard-attempts"),
            "1",
            "an open circuit is skipped, not tried"
        );
    }
    assert_eq!(up.openai.received().len(), calls);
    let (_, metrics) = sc.admin_get("/metrics").unwrap();
    assert!(metrics.contains("switchyard_circuit_open{gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\"} 1"), "{metrics}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = ask(&sc, "openai", false).await;
    assert_eq!(
        a.header("x-switchyard-provider"),
        "openai",
        "the half-open trial goes through and closes the circuit"
    );
    assert_eq!(
        ask(&sc, "openai", false)
            .await
            .header("x-switchyard-provider"),
        "openai"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_backend_is_retried_with_backoff_up_to_the_attempts() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    yaml.push_str(&model("chat", &[("openai", "gpt-4o", 0)], ""));
    yaml.push_str(&policy(
        "retry: {attempts: 3, backoff: {initial: 50ms, max: 200ms}}, circuitBreaker: {consecutiveFailures: 50}",
    ));
    let sc = start(&yaml);
    let down = || Reply::json(500, down_body());
    up.openai.script([down(), down()]);
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("x-switchyard-attempts"), "3");
    // Failover spent: a caller in the upstream's own format gets its last answer verbatim,
    // another gets the sidecar's summary in its dialect.
    up.openai.script([down(), down(), down()]);
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.status, 500, "{}", a.text);
    assert_eq!(a.json(), down_body(), "verbatim");
    up.openai.script([down(), down(), down()]);
    let a = ask(&sc, "anthropic", false).await;
    assert_eq!(a.status, 502, "{}", a.text);
    let message = a.json()["error"]["message"].as_str().unwrap().to_string();
    assert_eq!(
        message.matches("openai/gpt-4o: 500").count(),
        3,
        "{message}"
    );
}

fn down_body() -> Value {
    json!({"error": {"message": "oops", "type": "server_error", "param": null, "code": null}})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_failed_error_names_what_each_backend_answered_and_fallback_models_are_tried() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    yaml.push_str(&model(
        "chat",
        &[("openai", "gpt-4o", 0), ("anthropic", "claude", 1)],
        "  fallbacks: [cheap]",
    ));
    yaml.push_str(&model("cheap", &[("gemini", "gemini-2.5-flash", 0)], ""));
    yaml.push_str(&policy("retry: {attempts: 3}"));
    let sc = start(&yaml);
    up.openai.script([Reply::json(
        503,
        json!({"error": {"message": "x", "type": "server_error", "param": null, "code": null}}),
    )]);
    up.anthropic.script([Reply::json(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )]);
    let a = ask(&sc, "openai", false).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("x-switchyard-provider"), "gemini");
    assert_eq!(a.header("x-switchyard-attempts"), "3");
    up.openai.script([Reply::json(
        503,
        json!({"error": {"message": "x", "type": "server_error", "param": null, "code": null}}),
    )]);
    up.anthropic.script([Reply::json(
        500,
        json!({"type": "error", "error": {"type": "api_error", "message": "y"}}),
    )]);
    up.gemini.script([Reply::json(
        500,
        json!({"error": {"code": 500, "message": "z", "status": "INTERNAL"}}),
    )]);
    let a = ask(&sc, "anthropic", false).await;
    assert_eq!(a.status, 502, "{}", a.text);
    let v = a.json();
    assert_eq!(v["type"], "error");
    let message = v["error"]["message"].as_str().unwrap();
    for part in [
        "openai/gpt-4o: 503",
        "anthropic/claude: 500 api_error",
        "gemini/gemini-2.5-flash: 500 INTERNAL",
    ] {
        assert!(message.contains(part), "{message}");
    }
    assert!(!message.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_first_byte_an_upstream_failure_ends_the_stream_with_an_error_event() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(&up, "openai", "anthropic", ""));
    let cut = || {
        cut_after(vec![
            (Duration::ZERO, text_chunk("partial ")),
            (Duration::from_millis(50), text_chunk("answer")),
        ])
    };
    up.openai.script([cut()]);
    let a = ask(&sc, "openai", true).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("x-switchyard-provider"),
        "openai",
        "no failover once bytes reached the caller"
    );
    let events = a.events();
    assert_eq!(a.assistant_text(), "partial answer");
    let last = &events.last().unwrap().1;
    assert_eq!(last["error"]["code"], "stream_interrupted", "{}", a.text);
    up.openai.script([cut()]);
    let a = ask(&sc, "anthropic", true).await;
    let (name, data) = a.events().last().cloned().unwrap();
    assert_eq!(name.as_deref(), Some("error"), "{}", a.text);
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    // A stream cut in the middle of an event, with no connection error: still an error event.
    let half = Reply::sse(vec![
        text_chunk("half "),
        "data: {\"id\":\"c\",\"obj".into(),
    ]);
    up.openai.script([half]);
    let a = ask(&sc, "openai", true).await;
    assert_eq!(
        a.events().last().unwrap().1["error"]["code"],
        "stream_interrupted",
        "{}",
        a.text
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_same_format_stream_passes_an_upstream_error_event_on_once() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(&up, "anthropic", "openai", ""));
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}});
    let error =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    up.anthropic.script([Reply::sse(vec![
        format!("event: message_start\ndata: {start}\n\n"),
        format!("event: error\ndata: {error}\n\n"),
    ])]);
    let a = ask(&sc, "anthropic", true).await;
    let errors: Vec<_> = a
        .events()
        .into_iter()
        .filter(|(name, _)| name.as_deref() == Some("error"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", a.text);
    assert_eq!(errors[0].1, error, "the upstream's own event, untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_upstream_event_ends_the_stream_with_an_error_instead_of_growing() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(&up, "openai", "anthropic", ""));
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "hi "}, "logprobs": null, "finish_reason": null}]});
    // 17 MiB of one event that never ends, after a good first event.
    let endless = format!("data: {}", "x".repeat(17 << 20));
    up.openai.script([Reply {
        body: Body::Sse {
            events: vec![
                (Duration::ZERO, format!("data: {chunk}\n\n")),
                (Duration::ZERO, endless.clone()),
            ],
            drop: false,
        },
        ..Reply::json(200, json!({}))
    }]);
    let a = ask(&sc, "openai", true).await;
    let last = a.events().last().unwrap().1.clone();
    assert_eq!(
        last["error"]["code"],
        "stream_interrupted",
        "{}",
        &a.text[..200.min(a.text.len())]
    );
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("over 16 MiB"));
    // Before the first event, the same is an invalid answer and fails over.
    up.openai.script([Reply::sse(vec![endless])]);
    let a = ask(&sc, "openai", true).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-switchyard-provider"), "anthropic");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_hangs_up_mid_stream_cancels_the_upstream_request() {
    let up = Upstreams::start().await;
    let sc = start(&two_backends(&up, "anthropic", "openai", ""));
    let events: Vec<(Duration, String)> = (0..50)
        .map(|i| (Duration::from_millis(100), format!("event: content_block_delta\ndata: {}\n\n", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": format!("w{i} ")}}))))
        .collect();
    let mut all = vec![(
        Duration::ZERO,
        format!(
            "event: message_start\ndata: {}\n\n",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 1}}})
        ),
    )];
    all.extend(events);
    up.anthropic.script([Reply {
        body: Body::Sse {
            events: all,
            drop: false,
        },
        ..Reply::json(200, json!({}))
    }]);
    let (path, body) = chat("anthropic", "chat", "long", true);
    let resp = client()
        .post(sc.url(&path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    use futures_util::StreamExt;
    let first = stream.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(3);
    while up.anthropic.cancelled() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        up.anthropic.cancelled(),
        1,
        "the upstream stream should be dropped with the client"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_upstream_under_a_translated_stream_sends_keepalives_and_changes_nothing_else() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    yaml.push_str(&model("chat", &[("openai", "gpt-4o", 0)], ""));
    let sc = Sidecar::start(
        binary(),
        &yaml,
        &[("GEMINI_TEST_KEY", KEY), ("SWITCHYARD_KEEPALIVE_SECS", "1")],
    );
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let slow = || Reply {
        body: Body::Sse {
            events: vec![
                (
                    Duration::ZERO,
                    chunk(
                        json!({"role": "assistant", "content": "slow "}),
                        Value::Null,
                    ),
                ),
                (
                    Duration::from_millis(2600),
                    chunk(json!({"content": "answer"}), Value::Null),
                ),
                (Duration::ZERO, chunk(json!({}), json!("stop"))),
                (Duration::ZERO, "data: [DONE]\n\n".into()),
            ],
            drop: false,
        },
        ..Reply::default_after(Duration::ZERO)
    };
    up.openai.script([slow()]);
    let a = ask(&sc, "anthropic", true).await;
    assert_eq!(a.assistant_text(), "slow answer");
    let pings = a
        .events()
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("ping"))
        .count();
    assert!(pings >= 2, "{}", a.text);
    up.openai.script([slow()]);
    let a = ask(&sc, "responses", true).await;
    assert_eq!(a.assistant_text(), "slow answer");
    assert!(
        a.text.matches(": keep-alive\n\n").count() >= 2,
        "{}",
        a.text
    );
    // A same-format stream is the upstream's own: nothing added.
    up.openai.script([slow()]);
    let a = ask(&sc, "openai", true).await;
    assert_eq!(a.assistant_text(), "slow answer");
    assert!(!a.text.contains("keep-alive"), "{}", a.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_sticks_to_its_backend_while_it_is_healthy_and_moves_when_it_fails() {
    let (up, sc) = sessions_over_two_backends("").await;
    let first = in_session(&sc, "chat", "s1")
        .await
        .header("x-switchyard-provider")
        .to_string();
    for _ in 0..12 {
        let a = in_session(&sc, "chat", "s1").await;
        assert_eq!(
            a.header("x-switchyard-provider"),
            first,
            "the session stays"
        );
    }
    // Its backend fails: the call moves, and the session follows it there.
    let other = the_other(&first);
    up.fake(&first)
        .unwrap()
        .script([Reply::json(503, down_body())]);
    let a = in_session(&sc, "chat", "s1").await;
    assert_eq!(a.header("x-switchyard-provider"), other);
    for _ in 0..6 {
        assert_eq!(
            in_session(&sc, "chat", "s1")
                .await
                .header("x-switchyard-provider"),
            other
        );
    }
    // Without a session, calls spread over both backends.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..30 {
        let (path, body) = chat("openai", "chat", "hello", false);
        seen.insert(
            post(&sc, &path, &body)
                .await
                .header("x-switchyard-provider")
                .to_string(),
        );
    }
    assert_eq!(seen.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn affinity_none_places_every_call_afresh() {
    let (_up, sc) = sessions_over_two_backends("affinity: none").await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..30 {
        let a = in_session(&sc, "chat", "s1").await;
        seen.insert(a.header("x-switchyard-provider").to_string());
    }
    assert_eq!(seen.len(), 2);
}

/// Two equal backends for `chat` (OpenAI and Anthropic), each also alone behind a model of
/// its own (`solo-openai`, `solo-anthropic`: the same backend, so the same health), under
/// `policy`; and a caller asking `chat` for a session.
async fn sessions_over_two_backends(policy_spec: &str) -> (Upstreams, Sidecar) {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    yaml.push_str(&model(
        "chat",
        &[("openai", "gpt-4o", 0), ("anthropic", "claude", 0)],
        "",
    ));
    yaml.push_str(&model("solo-openai", &[("openai", "gpt-4o", 0)], ""));
    yaml.push_str(&model("solo-anthropic", &[("anthropic", "claude", 0)], ""));
    yaml.push_str(&policy(policy_spec));
    let sc = start(&yaml);
    (up, sc)
}

/// The backend of `chat` that is not `provider`.
fn the_other(provider: &str) -> &'static str {
    if provider == "openai" {
        "anthropic"
    } else {
        "openai"
    }
}

async fn in_session(sc: &Sidecar, model: &str, session: &str) -> Answer {
    let (path, body) = chat("openai", model, "hello", false);
    post_with(sc, &path, &body, &[("x-session-id", session)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_moves_off_its_backend_once_that_backends_circuit_opens() {
    let (up, sc) = sessions_over_two_backends(
        "circuitBreaker: {consecutiveFailures: 2, cooldown: 60s}, retry: {attempts: 1}",
    )
    .await;
    let first = in_session(&sc, "chat", "s1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first = first.header("x-switchyard-provider").to_string();
    let other = the_other(&first);
    // Other callers break the session's backend (through the model that has only it) until
    // its circuit opens; the session itself has not failed there.
    let down = || Reply::json(503, down_body());
    up.fake(&first).unwrap().script([down(), down()]);
    for _ in 0..2 {
        let (path, body) = chat("openai", &format!("solo-{first}"), "hello", false);
        assert_eq!(post(&sc, &path, &body).await.status, 503);
    }
    let tried = up.fake(&first).unwrap().received().len();
    let a = in_session(&sc, "chat", "s1").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.header("x-switchyard-provider"),
        other,
        "the session moved"
    );
    assert_eq!(
        up.fake(&first).unwrap().received().len(),
        tried,
        "an open circuit is not tried, not even for the session it served"
    );
    for _ in 0..4 {
        let a = in_session(&sc, "chat", "s1").await;
        assert_eq!(a.header("x-switchyard-provider"), other, "and stays moved");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_call_is_never_moved_where_the_policy_does_not_retry() {
    // Server errors are not retried under this policy: a failed call of the session is
    // answered with its backend's error, not moved, and the session stays where it was.
    let (up, sc) = sessions_over_two_backends(
        "retry: {attempts: 3, retryOn: [rate-limited]}, circuitBreaker: {consecutiveFailures: 50}",
    )
    .await;
    let first = in_session(&sc, "chat", "s1")
        .await
        .header("x-switchyard-provider")
        .to_string();
    let other = the_other(&first);
    let before = up.fake(other).unwrap().received().len();
    up.fake(&first)
        .unwrap()
        .script([Reply::json(503, down_body())]);
    let failed = in_session(&sc, "chat", "s1").await;
    assert_eq!(failed.status, 503, "{}", failed.text);
    // A caller's own error is never moved either.
    let mut bad = chat("openai", "chat", "hello", false);
    bad.1["temperature"] = json!("hot");
    let refused = post_with(&sc, &bad.0, &bad.1, &[("x-session-id", "s1")]).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        up.fake(other).unwrap().received().len(),
        before,
        "nothing of the session went to the other backend"
    );
    for _ in 0..4 {
        let a = in_session(&sc, "chat", "s1").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.header("x-switchyard-provider"),
            first,
            "the session stayed"
        );
    }
}
