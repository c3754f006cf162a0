//! Golden translation fixtures: every scenario of `golden/scenarios.json`, in every inbound
//! dialect (chat, Anthropic, Gemini, Responses), against every upstream format, streamed and whole, through the translation
//! functions; the results are compared as JSON values with `golden/expected/*.json`.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the expectations (review the diff).

#![allow(clippy::unwrap_used)]

use std::{path::Path, sync::Arc};

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Map, Value};
use switchyard_sidecar::{
    dialect::{Dialect, Operation},
    failure, respond, sse,
    translate::{self, responses::ResponsesCall, Context, Usage},
};

const DIALECTS: [(&str, Dialect); 4] = [
    ("openai", Dialect::OpenAi),
    ("anthropic", Dialect::Anthropic),
    ("gemini", Dialect::Gemini),
    ("responses", Dialect::Responses),
];

fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

/// A long stream, generated in each format: 60 text deltas.
fn long_stream(out: &str) -> Value {
    let words: Vec<String> = (0..60).map(|i| format!("word{i} ")).collect();
    let events: Vec<String> = match out {
        "openai" => {
            let chunk = |delta: Value, finish: Value| format!("data: {}\n\n", json!({"id": "chatcmpl-L", "object": "chat.completion.chunk", "created": 1731000000, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}));
            let mut e = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
            e.extend(words.iter().map(|w| chunk(json!({"content": w}), Value::Null)));
            e.push(chunk(json!({}), json!("stop")));
            e.push(format!("data: {}\n\n", json!({"id": "chatcmpl-L", "object": "chat.completion.chunk", "created": 1731000000, "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 60, "total_tokens": 65}})));
            e.push("data: [DONE]\n\n".into());
            e
        }
        "anthropic" => {
            let ev = |n: &str, d: Value| format!("event: {n}\ndata: {d}\n\n");
            let mut e = vec![ev("message_start", json!({"type": "message_start", "message": {"id": "msg_L", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 1}}})),
                ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}))];
            e.extend(words.iter().map(|w| ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}))));
            e.push(ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})));
            e.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 60}})));
            e.push(ev("message_stop", json!({"type": "message_stop"})));
            e
        }
        "responses" => {
            let ev = |n: &str, seq: usize, mut d: Value| {
                d["type"] = json!(n);
                d["sequence_number"] = json!(seq);
                format!("event: {n}\ndata: {d}\n\n")
            };
            let item = json!({"type": "message", "id": "msg_L", "status": "in_progress", "role": "assistant", "content": []});
            let mut e = vec![
                ev("response.created", 0, json!({"response": {"id": "resp_L", "object": "response", "status": "in_progress", "model": "gpt-5", "output": []}})),
                ev("response.output_item.added", 1, json!({"output_index": 0, "item": item})),
            ];
            e.extend(words.iter().enumerate().map(|(i, w)| ev("response.output_text.delta", i + 2, json!({"item_id": "msg_L", "output_index": 0, "content_index": 0, "delta": w}))));
            let done = json!({"id": "resp_L", "object": "response", "status": "completed", "model": "gpt-5", "output": [{"type": "message", "id": "msg_L", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": words.concat(), "annotations": []}]}], "usage": {"input_tokens": 5, "output_tokens": 60, "total_tokens": 65}});
            e.push(ev("response.completed", 62, json!({"response": done})));
            e
        }
        _ => words
            .chunks(10)
            .enumerate()
            .map(|(i, ws)| {
                let mut c = json!({"content": {"parts": [{"text": ws.concat()}], "role": "model"}, "index": 0});
                if i == 5 {
                    c["finishReason"] = json!("STOP");
                }
                format!("data: {}\r\n\r\n", json!({"candidates": [c], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": (i + 1) * 10, "totalTokenCount": 5 + (i + 1) * 10}, "modelVersion": "gemini-2.5-flash", "responseId": "long1"}))
            })
            .collect(),
    };
    let whole = match out {
        "openai" => {
            json!({"id": "chatcmpl-L", "object": "chat.completion", "created": 1731000000, "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat()}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 60, "total_tokens": 65}})
        }
        "anthropic" => {
            json!({"id": "msg_L", "type": "message", "role": "assistant", "model": "claude", "content": [{"type": "text", "text": words.concat()}], "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 60}})
        }
        "responses" => {
            json!({"id": "resp_L", "object": "response", "status": "completed", "model": "gpt-5", "output": [{"type": "message", "id": "msg_L", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": words.concat(), "annotations": []}]}], "usage": {"input_tokens": 5, "output_tokens": 60, "total_tokens": 65}})
        }
        _ => {
            json!({"candidates": [{"content": {"parts": [{"text": words.concat()}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 60, "totalTokenCount": 65}, "modelVersion": "gemini-2.5-flash", "responseId": "long1"})
        }
    };
    json!({"response": whole, "stream": events})
}

fn usage_json(u: Usage) -> Value {
    json!({"input": u.input, "output": u.output, "cached": u.cached, "cache_creation": u.cache_creation, "reasoning": u.reasoning})
}

fn events_of(bytes: &[u8]) -> Vec<Value> {
    let mut p = sse::Parser::default();
    p.push(bytes);
    std::iter::from_fn(|| p.next_event())
        .map(|e| {
            json!([
                e.name,
                serde_json::from_str::<Value>(&e.data).unwrap_or(Value::String(e.data))
            ])
        })
        .collect()
}

fn run(scenario: &Value, upstream: &Value) -> Value {
    let mut out = Map::new();
    // A scenario leaves out the callers that cannot say it (Gemini has no system turn
    // mid-conversation).
    let callers = DIALECTS
        .into_iter()
        .filter(|(name, _)| scenario.get(name).is_some());
    for (in_name, from) in callers {
        for (out_name, to) in DIALECTS {
            let reply = if scenario["upstream"] == "long" {
                long_stream(out_name)
            } else {
                upstream[scenario["upstream"].as_str().unwrap()][out_name].clone()
            };
            for stream in [false, true] {
                let key = format!(
                    "{in_name}->{out_name} {}",
                    if stream { "stream" } else { "whole" }
                );
                let mut body = scenario[in_name].clone();
                // A Gemini caller says "stream" and the model in the URL path, not the body.
                if stream && from != Dialect::Gemini {
                    body["stream"] = json!(true);
                }
                let mut ctx = Context {
                    model: body["model"].as_str().unwrap_or("chat").to_string(),
                    gemini_single: true,
                    created: 1731000000,
                    include_usage: body.pointer("/stream_options/include_usage")
                        == Some(&json!(true)),
                    responses: (from == Dialect::Responses).then(|| {
                        Arc::new(ResponsesCall {
                            id: "resp_golden".into(),
                            ..ResponsesCall::of(&body)
                        })
                    }),
                    ..Context::default()
                };
                let mut result = Map::new();
                match translate::request(
                    from,
                    to,
                    Operation::Chat,
                    &body,
                    "upstream-model",
                    stream,
                    &mut ctx,
                ) {
                    Ok(req) => result.insert("upstream_request".into(), req),
                    Err(e) => result.insert("request_error".into(), json!(e.to_string())),
                };
                if let Some(status) = reply.get("status").and_then(Value::as_u64) {
                    let raw = reply["response"].to_string();
                    let (kind, message) = translate::upstream_error(raw.as_bytes());
                    let err = failure::rejection(
                        StatusCode::from_u16(status as u16).unwrap(),
                        kind,
                        message,
                    );
                    let resp = respond::error_response(from, &err, "req_test");
                    result.insert("status".into(), json!(resp.status().as_u16()));
                    let body = futures_util::executor_block(resp);
                    result.insert("response".into(), serde_json::from_slice(&body).unwrap());
                } else if stream {
                    let mut t = translate::stream(from, to, ctx);
                    let mut parser = sse::Parser::default();
                    let mut bytes = Vec::new();
                    for chunk in reply["stream"].as_array().unwrap() {
                        parser.push(chunk.as_str().unwrap().as_bytes());
                        while let Some(ev) = parser.next_event() {
                            t.event(&ev, &mut bytes);
                        }
                    }
                    let complete = t.finish(&mut bytes);
                    result.insert("complete".into(), json!(complete));
                    result.insert("events".into(), json!(events_of(&bytes)));
                    result.insert("usage".into(), usage_json(t.usage()));
                } else {
                    let raw = Bytes::from(reply["response"].to_string());
                    let (bytes, usage) =
                        translate::response(from, to, Operation::Chat, &raw, &ctx).unwrap();
                    result.insert("response".into(), serde_json::from_slice(&bytes).unwrap());
                    result.insert("usage".into(), usage_json(usage));
                }
                out.insert(key, Value::Object(result));
            }
        }
    }
    Value::Object(out)
}

mod futures_util {
    use http_body_util::BodyExt;

    /// Reads a whole response body (the error bodies are never streamed).
    pub fn executor_block(resp: http::Response<switchyard_sidecar::respond::Body>) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec()
        })
    }
}

#[test]
fn every_scenario_translates_as_the_golden_files_say_for_every_dialect_pair() {
    let upstream = load("upstream.json");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for scenario in load("scenarios.json").as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        let got = run(scenario, &upstream);
        let path = dir().join("expected").join(format!("{name}.json"));
        if update {
            std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
            continue;
        }
        let want: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        for (key, value) in got.as_object().unwrap() {
            if want.get(key) != Some(value) {
                stale.push(format!(
                    "{name} [{key}]:\n  want {}\n  got  {}",
                    want.get(key).unwrap_or(&Value::Null),
                    value
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{} golden mismatches:\n{}",
        stale.len(),
        stale.join("\n")
    );
}

/// Properties every golden result must have, checked independently of the recorded files.
#[test]
fn golden_results_keep_the_invariants_of_each_dialect() {
    let upstream = load("upstream.json");
    for scenario in load("scenarios.json").as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        for (key, r) in run(scenario, &upstream).as_object().unwrap() {
            let what = format!("{name} [{key}]");
            if r.get("status").is_some() {
                assert_eq!(r["status"], 400, "{what}");
                continue;
            }
            if let Some(events) = r["events"].as_array() {
                assert_eq!(r["complete"], true, "{what}");
                if key.starts_with("anthropic") {
                    let names: Vec<&str> = events
                        .iter()
                        .filter_map(|e| e[0].as_str())
                        .filter(|n| *n != "ping")
                        .collect();
                    assert_eq!(names.first(), Some(&"message_start"), "{what}");
                    assert_eq!(names.last(), Some(&"message_stop"), "{what}");
                    assert!(
                        events.iter().all(|e| e[0].is_string()),
                        "{what}: every Anthropic event is named"
                    );
                } else if key.starts_with("responses") {
                    let types: Vec<&str> = events
                        .iter()
                        .filter_map(|e| e[1]["type"].as_str())
                        .collect();
                    assert_eq!(types.first(), Some(&"response.created"), "{what}");
                    let closing = [
                        "response.completed",
                        "response.incomplete",
                        "response.failed",
                    ];
                    assert!(closing.contains(types.last().unwrap()), "{what}: {types:?}");
                    for (n, e) in events.iter().enumerate() {
                        if key.ends_with("stream") && !key.contains("->responses") {
                            assert_eq!(e[1]["sequence_number"], n, "{what}");
                        }
                        assert_eq!(e[0], e[1]["type"], "{what}: named events");
                    }
                } else if key.starts_with("gemini") {
                    let last = &events.last().unwrap()[1];
                    assert!(
                        last.pointer("/candidates/0/finishReason").is_some(),
                        "{what}: {last}"
                    );
                    assert!(last["usageMetadata"].is_object(), "{what}: {last}");
                } else {
                    assert_eq!(events.last().unwrap()[1], "[DONE]", "{what}");
                }
            }
            if name == "long_stream" && key.ends_with("stream") {
                let text: String = r["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|e| {
                        e[1].pointer("/choices/0/delta/content")
                            .or_else(|| e[1].pointer("/delta/text"))
                            .or_else(|| {
                                (e[1]["type"] == "response.output_text.delta")
                                    .then(|| &e[1]["delta"])
                            })
                            .or_else(|| e[1].pointer("/candidates/0/content/parts/0/text"))
                            .and_then(Value::as_str)
                    })
                    .collect();
                assert_eq!(
                    text,
                    (0..60).map(|i| format!("word{i} ")).collect::<String>(),
                    "{what}: nothing lost"
                );
            }
            if name == "usage_with_cached_tokens" {
                assert_eq!(r["usage"]["cached"], 1920, "{what}");
            }
        }
    }
}

/// The tools a translated body declares, in whichever format it is written.
fn tools_declared(body: &Value) -> usize {
    let tools = body["tools"].as_array().map_or(&[][..], Vec::as_slice);
    tools
        .iter()
        .map(|t| t["functionDeclarations"].as_array().map_or(1, Vec::len))
        .sum()
}

/// The ~100 KB coding-agent turn of `bench/payloads/` (24 tool schemas, a long tool-call
/// history), from each of its two callers to every other format: the upstream bodies
/// `golden/expected/agentic_100kb.json` pins. The wire roads that serve Anthropic <-> OpenAI
/// in production write the same bytes as this translation (their tests hold the two equal
/// on this payload).
#[test]
fn a_100_kb_agent_turn_translates_as_the_golden_file_says() {
    let payloads = [
        (
            "openai",
            Dialect::OpenAi,
            include_str!("../../bench/payloads/agentic-openai.json"),
        ),
        (
            "anthropic",
            Dialect::Anthropic,
            include_str!("../../bench/payloads/agentic-anthropic.json"),
        ),
    ];
    let mut got = Map::new();
    for (in_name, from, text) in payloads {
        assert!(
            text.len() > 90_000,
            "{in_name}: the payload is the 100 KB one"
        );
        let body: Value = serde_json::from_str(text).unwrap();
        for (out_name, to) in DIALECTS.into_iter().filter(|(_, to)| *to != from) {
            let mut ctx = Context::default();
            let req = translate::request(
                from,
                to,
                Operation::Chat,
                &body,
                "upstream-model",
                false,
                &mut ctx,
            )
            .unwrap();
            assert_eq!(tools_declared(&req), 24, "{in_name}->{out_name}");
            got.insert(format!("{in_name}->{out_name}"), req);
        }
    }
    let path = dir().join("expected").join("agentic_100kb.json");
    let got = Value::Object(got);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
        return;
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (key, value) in got.as_object().unwrap() {
        assert!(
            want.get(key) == Some(value),
            "agentic_100kb [{key}] differs from the golden file (UPDATE_GOLDEN=1 rewrites it; review the diff)"
        );
    }
}
