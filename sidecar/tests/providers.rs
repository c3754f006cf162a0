//! Every inbound dialect against every provider type, streamed and not, through the real
//! binary: answers, headers, paths and keys as each provider documents them.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

const BACKENDS: &[(&str, &str)] = &[
    ("openai", "gpt-4o-2024-08-06"),
    ("azure", "my-gpt4o-deployment"),
    ("anthropic", "claude-sonnet-4-5"),
    ("gemini", "gemini-2.5-flash"),
    ("mock", "mock-1"),
];

fn matrix_yaml(up: &Upstreams) -> String {
    let mut yaml = up.providers();
    for (p, m) in BACKENDS {
        yaml.push_str(&model(&format!("via-{p}"), &[(p, m, 0)], ""));
    }
    yaml
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dialect_reaches_every_provider_type_streamed_and_not() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    for (provider, upstream_model) in BACKENDS {
        for dialect in ["openai", "anthropic", "gemini"] {
            for stream in [false, true] {
                let what = format!("{dialect} -> {provider} stream={stream}");
                let before = up.fake(provider).map_or(0, |f| f.received().len());
                let (path, body) = chat(
                    dialect,
                    &format!("via-{provider}"),
                    "hello from switchyard",
                    stream,
                );
                let a = post(&sc, &path, &body).await;
                assert_eq!(a.status, 200, "{what}: {}", a.text);
                assert_eq!(
                    a.assistant_text(),
                    "hello from switchyard",
                    "{what}: {}",
                    a.text
                );
                assert_eq!(a.header("x-switchyard-provider"), *provider, "{what}");
                assert_eq!(a.header("x-switchyard-model"), *upstream_model, "{what}");
                assert_eq!(a.header("x-switchyard-attempts"), "1", "{what}");
                assert!(!a.header("x-request-id").is_empty(), "{what}");
                let expected_type = if stream {
                    "text/event-stream"
                } else {
                    "application/json"
                };
                assert!(
                    a.header("content-type").starts_with(expected_type),
                    "{what}"
                );
                if let Some(fake) = up.fake(provider) {
                    let got = fake.received();
                    assert_eq!(got.len(), before + 1, "{what}: one upstream call");
                    let r = got.last().unwrap();
                    assert!(
                        r.headers
                            .get("authorization")
                            .is_none_or(|v| v != "Bearer caller-placeholder"),
                        "{what}: caller's key forwarded"
                    );
                    match *provider {
                        "openai" => assert_eq!(r.body["model"], *upstream_model, "{what}"),
                        "azure" => assert_eq!(
                            r.path,
                            format!("/openai/deployments/{upstream_model}/chat/completions"),
                            "{what}"
                        ),
                        "anthropic" => assert_eq!(r.body["model"], *upstream_model, "{what}"),
                        "gemini" => {
                            let method = if stream {
                                "streamGenerateContent"
                            } else {
                                "generateContent"
                            };
                            assert_eq!(
                                r.path,
                                format!("/v1beta/models/{upstream_model}:{method}"),
                                "{what}"
                            );
                        }
                        _ => {}
                    }
                }
                if dialect == "anthropic" && stream {
                    let names: Vec<String> = a
                        .events()
                        .iter()
                        .filter_map(|(n, _)| n.clone())
                        .filter(|n| n != "ping")
                        .collect();
                    assert_eq!(
                        names.first().map(String::as_str),
                        Some("message_start"),
                        "{what}"
                    );
                    assert_eq!(
                        names.last().map(String::as_str),
                        Some("message_stop"),
                        "{what}"
                    );
                }
                if dialect == "openai" && stream {
                    let events = a.events();
                    assert_eq!(
                        events.last().map(|(_, d)| d.clone()),
                        Some(Value::String("[DONE]".into())),
                        "{what}"
                    );
                    assert!(
                        events
                            .iter()
                            .all(|(_, d)| d.get("usage").is_none_or(Value::is_null)),
                        "{what}: usage chunk shown though not asked"
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_is_reported_in_each_dialect_and_the_usage_chunk_only_when_asked() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    for (provider, _) in BACKENDS {
        let body = json!({"model": format!("via-{provider}"), "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "one two three four"}]});
        let a = post(&sc, "/v1/chat/completions", &body).await;
        let usage = a
            .events()
            .iter()
            .find_map(|(_, d)| d.get("usage").filter(|u| u.is_object()).cloned())
            .unwrap_or_else(|| panic!("{provider}: no usage chunk in {}", a.text));
        assert_eq!(usage["completion_tokens"], 4, "{provider}: {usage}");
        assert!(
            usage["prompt_tokens"].as_u64().unwrap() >= 4,
            "{provider}: {usage}"
        );
        let (path, body) = chat(
            "anthropic",
            &format!("via-{provider}"),
            "one two three four",
            false,
        );
        let a = post(&sc, &path, &body).await;
        assert_eq!(
            a.json()["usage"]["output_tokens"],
            4,
            "{provider}: {}",
            a.text
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_keys_travel_as_each_provider_documents() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    for provider in ["openai", "azure", "anthropic", "gemini"] {
        let (path, body) = chat("openai", &format!("via-{provider}"), "hi", false);
        assert_eq!(post(&sc, &path, &body).await.status, 200);
        let r = up.fake(provider).unwrap().received().pop().unwrap();
        let h = |k: &str| {
            r.headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        match provider {
            "openai" => assert_eq!(h("authorization"), format!("Bearer {KEY}")),
            "azure" => {
                assert_eq!(h("api-key"), KEY);
                assert_eq!(r.query.as_deref(), Some("api-version=2024-10-21"));
            }
            "anthropic" => {
                assert_eq!(h("x-api-key"), KEY);
                assert_eq!(h("anthropic-version"), "2023-06-01");
            }
            _ => {
                assert_eq!(h("x-goog-api-key"), KEY);
                assert!(r.query.is_none());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn same_format_calls_pass_the_apis_own_headers_and_body_through() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    let body = json!({"model": "via-anthropic", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "u1"}, "some_future_field": {"kept": true}});
    let a = post_with(
        &sc,
        "/v1/messages",
        &body,
        &[
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "prompt-caching-2024-07-31"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
            ("anthropic-dangerous-direct-browser-access", "true"),
            ("x-api-key", "caller-key"),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let r = up.anthropic.received().pop().unwrap();
    let betas: Vec<&str> = r
        .headers
        .get_all("anthropic-beta")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        betas,
        [
            "prompt-caching-2024-07-31",
            "interleaved-thinking-2025-05-14"
        ],
        "an open list"
    );
    assert_eq!(
        r.headers["anthropic-dangerous-direct-browser-access"],
        "true"
    );
    assert_eq!(
        r.headers["x-api-key"], KEY,
        "the caller's x-api-key must not be forwarded"
    );
    let mut expected = body.clone();
    expected["model"] = json!("claude-sonnet-4-5");
    assert_eq!(r.body, expected);
    let body = json!({"model": "via-openai", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"50256": -100}, "seed": 7});
    let a = post_with(
        &sc,
        "/v1/chat/completions",
        &body,
        &[("openai-beta", "assistants=v2")],
    )
    .await;
    assert_eq!(a.status, 200);
    let r = up.openai.received().pop().unwrap();
    assert_eq!(r.headers["openai-beta"], "assistants=v2");
    let mut expected = body.clone();
    expected["model"] = json!("gpt-4o-2024-08-06");
    assert_eq!(r.body, expected);
    assert_eq!(
        a.json()["system_fingerprint"],
        "fp_fake",
        "passthrough keeps the upstream body"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_with_parallel_calls_and_results_round_trip_through_every_provider() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    let tool = json!({"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}});
    for (provider, _) in BACKENDS.iter().filter(|(p, _)| *p != "mock") {
        for stream in [false, true] {
            let what = format!("openai -> {provider} stream={stream}");
            let first = json!({"model": format!("via-{provider}"), "stream": stream, "tools": [tool],
                "messages": [{"role": "user", "content": "weather in two cities, in parallel"}]});
            let a = post(&sc, "/v1/chat/completions", &first).await;
            assert_eq!(a.status, 200, "{what}: {}", a.text);
            let calls = openai_tool_calls(&a);
            assert_eq!(calls.len(), 2, "{what}: {}", a.text);
            for c in &calls {
                assert_eq!(c["function"]["name"], "get_weather", "{what}");
                let args: Value =
                    serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
                assert!(args["city"].is_string(), "{what}: {args}");
            }
            let mut messages = first["messages"].as_array().unwrap().clone();
            messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
            for c in &calls {
                messages.push(json!({"role": "tool", "tool_call_id": c["id"], "content": "sunny"}));
            }
            let second = json!({"model": format!("via-{provider}"), "stream": stream, "tools": [tool], "messages": messages});
            let a = post(&sc, "/v1/chat/completions", &second).await;
            assert_eq!(a.status, 200, "{what}: {}", a.text);
            assert!(a.assistant_text().contains("sunny"), "{what}: {}", a.text);
        }
    }
    for (provider, _) in BACKENDS.iter().filter(|(p, _)| *p != "mock") {
        let tool = json!({"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}});
        let first = json!({"model": format!("via-{provider}"), "max_tokens": 100, "tools": [tool],
            "messages": [{"role": "user", "content": "weather, in parallel"}]});
        let a = post(&sc, "/v1/messages", &first).await;
        assert_eq!(a.status, 200, "anthropic -> {provider}: {}", a.text);
        let v = a.json();
        assert_eq!(v["stop_reason"], "tool_use", "anthropic -> {provider}: {v}");
        let uses: Vec<Value> = v["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .cloned()
            .collect();
        assert_eq!(uses.len(), 2, "anthropic -> {provider}: {v}");
        assert!(uses[0]["input"]["city"].is_string());
        let results: Vec<Value> = uses
            .iter()
            .map(|u| json!({"type": "tool_result", "tool_use_id": u["id"], "content": "rainy"}))
            .collect();
        let second = json!({"model": format!("via-{provider}"), "max_tokens": 100, "tools": [tool], "messages": [
            first["messages"][0], {"role": "assistant", "content": uses}, {"role": "user", "content": results}]});
        let a = post(&sc, "/v1/messages", &second).await;
        assert_eq!(a.status, 200, "anthropic -> {provider}: {}", a.text);
        assert!(
            a.assistant_text().contains("rainy"),
            "anthropic -> {provider}: {}",
            a.text
        );
    }
}

fn openai_tool_calls(a: &Answer) -> Vec<Value> {
    if !a.header("content-type").starts_with("text/event-stream") {
        return a.json()["choices"][0]["message"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
    }
    let mut calls: Vec<Value> = Vec::new();
    for (_, d) in a.events() {
        for tc in d
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.push(json!({"id": tc["id"], "type": "function", "function": {"name": tc["function"]["name"], "arguments": ""}}));
            }
            let args = tc
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let joined = format!(
                "{}{args}",
                calls[i]["function"]["arguments"].as_str().unwrap()
            );
            calls[i]["function"]["arguments"] = json!(joined);
        }
    }
    calls
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_are_served_by_openai_azure_gemini_and_mock_as_floats_or_base64() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    for provider in ["openai", "azure", "gemini", "mock"] {
        for input in [json!("one text"), json!(["first text", "second text"])] {
            for format in ["float", "base64"] {
                let body = json!({"model": format!("via-{provider}"), "input": input, "encoding_format": format});
                let a = post(&sc, "/v1/embeddings", &body).await;
                assert_eq!(a.status, 200, "{provider}: {}", a.text);
                let v = a.json();
                let n = if input.is_array() { 2 } else { 1 };
                assert_eq!(v["object"], "list");
                assert_eq!(v["data"].as_array().unwrap().len(), n, "{provider}: {v}");
                let e = &v["data"][0]["embedding"];
                if format == "base64" {
                    assert!(e.as_str().is_some_and(|s| !s.is_empty()), "{provider}: {v}");
                } else {
                    assert!(
                        e.as_array()
                            .is_some_and(|a| !a.is_empty() && a[0].is_number()),
                        "{provider}: {v}"
                    );
                }
            }
        }
    }
    let r = up.gemini.received();
    assert!(r.iter().any(|r| r.path.ends_with(":embedContent")));
    assert!(r.iter().any(|r| r.path.ends_with(":batchEmbedContents")));
    let a = post(
        &sc,
        "/v1/embeddings",
        &json!({"model": "via-anthropic", "input": "x"}),
    )
    .await;
    assert_eq!(a.status, 400, "anthropic serves no embeddings: {}", a.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn embedding_numbers_pass_between_gemini_and_openai_digit_for_digit() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    let digits = "[-0.12448059022426604,0.30000000000000004,1e-7]";
    let gemini = format!("{{\"embeddings\":[{{\"values\":{digits}}}]}}");
    up.gemini.script([Reply {
        body: Body::Raw("application/json", gemini.into()),
        ..Reply::json(200, json!({}))
    }]);
    let body = json!({"model": "via-gemini", "input": ["x"]});
    let a = post(&sc, "/v1/embeddings", &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains(digits), "{}", a.text);
    let openai = format!("{{\"object\":\"list\",\"data\":[{{\"object\":\"embedding\",\"index\":0,\"embedding\":{digits}}}],\"model\":\"gpt-4o\",\"usage\":{{\"prompt_tokens\":1,\"total_tokens\":1}}}}");
    up.openai.script([Reply {
        body: Body::Raw("application/json", openai.into()),
        ..Reply::json(200, json!({}))
    }]);
    let body = json!({"content": {"parts": [{"text": "x"}]}});
    let a = post(&sc, "/v1beta/models/via-openai:embedContent", &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains(digits), "{}", a.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_anthropic_system_message_inside_messages_reaches_openai_and_gemini() {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    let body = |model: &str| {
        json!({"model": model, "max_tokens": 20, "system": "be brief", "messages": [
            {"role": "user", "content": "hello"},
            {"role": "system", "content": "the user is on a phone"},
            {"role": "user", "content": "again"},
        ]})
    };
    let a = post(&sc, "/v1/messages", &body("via-openai")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let sent = up.openai.received().last().unwrap().body.clone();
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "system", "user"]);
    let a = post(&sc, "/v1/messages", &body("via-gemini")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let sent = up.gemini.received().last().unwrap().body.clone();
    let system = sent["systemInstruction"].to_string();
    assert!(
        system.contains("be brief") && system.contains("the user is on a phone"),
        "{system}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn models_are_listed_in_the_callers_format() {
    let up = Upstreams::start().await;
    let mut yaml = matrix_yaml(&up);
    yaml.push_str(&policy("models: [via-openai, via-mock]"));
    let sc = start(&yaml);
    let v: Value = client()
        .get(sc.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["via-mock", "via-openai"],
        "only what the policy allows"
    );
    assert_eq!(v["object"], "list");
    let v: Value = client()
        .get(sc.url("/v1/models"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    let (path, body) = chat("openai", "via-gemini", "hi", false);
    assert_eq!(
        post(&sc, &path, &body).await.status,
        404,
        "a model the policy does not allow is not found"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_same_format_upstream_error_comes_back_verbatim_and_a_translated_one_in_the_callers_dialect(
) {
    let up = Upstreams::start().await;
    let sc = start(&matrix_yaml(&up));
    let body = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 210000 tokens > 200000 maximum"}, "request_id": "req_011"});
    let reject = || {
        Reply::json(400, body.clone())
            .header("x-should-retry", "false")
            .header("request-id", "req_011")
    };
    up.anthropic.script([reject()]);
    let (path, call) = chat("anthropic", "via-anthropic", "hi", false);
    let a = post(&sc, &path, &call).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json(), body, "verbatim");
    assert_eq!(a.header("x-should-retry"), "false");
    assert_eq!(a.header("request-id"), "req_011");
    up.anthropic.script([reject()]);
    let (path, call) = chat("openai", "via-anthropic", "hi", false);
    let a = post(&sc, &path, &call).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json()["error"]["message"],
        "prompt is too long: 210000 tokens > 200000 maximum"
    );
    assert_eq!(a.json()["error"]["type"], "invalid_request_error");
    // A 429 whose retry-after is fractional comes back in whole seconds, rounded up.
    let limited = Reply::json(
        429,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
    )
    .header("retry-after", "1.2")
    .header("anthropic-ratelimit-requests-remaining", "0");
    up.anthropic.script([limited]);
    let (path, call) = chat("anthropic", "via-anthropic", "hi", false);
    let a = post(&sc, &path, &call).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), "2");
    assert_eq!(a.header("anthropic-ratelimit-requests-remaining"), "0");
    assert_eq!(a.json()["error"]["message"], "slow down");
}
