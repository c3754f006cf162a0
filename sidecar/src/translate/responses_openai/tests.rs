//! The Responses <-> chat translation and its stream state machine.

use serde_json::{json, Value};

use super::*;
use crate::{sse, translate::StreamTranslator};

fn ctx() -> Context {
    Context {
        model: "chat".into(),
        created: 1_731_000_000,
        responses: Some(Arc::new(ResponsesCall {
            id: "resp_0123".into(),
            custom_tools: vec!["apply_patch".into()],
            ..ResponsesCall::default()
        })),
        ..Context::default()
    }
}

fn events(t: &mut Stream, chunks: &[Value], finish: bool) -> Vec<Value> {
    let mut out = Vec::new();
    for c in chunks {
        let ev = sse::Event {
            data: c.to_string(),
            ..sse::Event::default()
        };
        t.event(&ev, &mut out);
    }
    if finish {
        assert!(t.finish(&mut out));
    }
    let mut p = sse::Parser::default();
    p.push(&out);
    std::iter::from_fn(|| p.next_event())
        .map(|e| serde_json::from_str(&e.data).unwrap_or_default())
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "c", "model": "gpt", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

#[test]
fn items_of_every_kind_become_chat_messages_with_calls_grouped_per_turn() {
    let body = json!({
        "model": "chat", "instructions": "be brief",
        "input": [
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "done"}]},
        ],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}, {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}}, {"type": "web_search"}],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": true}},
        "max_output_tokens": 50, "reasoning": {"effort": "low"},
    });
    let mut c = Context::default();
    let out = request(&body, &mut c).unwrap_or_default();
    let m = &out["messages"];
    assert_eq!(m[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        m[2]["content"][1]["image_url"],
        json!({"url": "data:image/png;base64,AA", "detail": "low"})
    );
    assert_eq!(m[3]["tool_calls"].as_array().map(Vec::len), Some(2), "{m}");
    assert_eq!(
        m[3]["tool_calls"][1]["function"]["arguments"],
        json!({"input": "*** Begin Patch"}).to_string()
    );
    assert_eq!(
        m[5],
        json!({"role": "tool", "tool_call_id": "c2", "content": "done"})
    );
    assert_eq!(
        out["tools"].as_array().map(Vec::len),
        Some(2),
        "hosted tools are left out"
    );
    assert!(out["tools"][1]["function"]["description"]
        .as_str()
        .unwrap_or_default()
        .contains("start: x"));
    assert_eq!(out["tool_choice"]["function"]["name"], "apply_patch");
    assert_eq!(out["response_format"]["json_schema"]["strict"], true);
    assert_eq!(out["max_completion_tokens"], 50);
    assert_eq!(out["reasoning_effort"], "low");
    assert!(c.responses.is_some_and(|r| r.is_custom("apply_patch")));
}

#[test]
fn bad_items_get_errors_naming_the_item() {
    let cases = [
        (json!([{"type": "nonsense"}]), "input[0].type"),
        (
            json!([{"type": "function_call_output", "call_id": "nope", "output": "x"}]),
            "input[0]",
        ),
        (
            json!([{"type": "function_call", "name": "f"}]),
            "input[0].call_id",
        ),
        (json!([{"role": "tool", "content": "x"}]), "input[0].role"),
    ];
    for (input, param) in cases {
        let err = request(
            &json!({"model": "m", "input": input}),
            &mut Context::default(),
        )
        .err()
        .map(|e| e.param().unwrap_or_default().to_string());
        assert_eq!(err.as_deref(), Some(param), "{input}");
    }
}

#[test]
fn a_chat_completion_becomes_a_response_with_custom_calls_unwrapped() {
    let chat = json!({"id": "c", "model": "gpt", "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "hi", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "apply_patch", "arguments": "{\"input\":\"patch\"}"}},
        {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
    ]}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}});
    let (r, usage) = response(&chat, &ctx());
    assert_eq!(r["id"], "resp_0123");
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(r["output"][0]["content"][0]["text"], "hi");
    assert_eq!(r["output"][1]["type"], "custom_tool_call");
    assert_eq!(r["output"][1]["input"], "patch");
    assert_eq!(r["output"][2]["type"], "function_call");
    assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 4);
    assert_eq!(usage.output, 5);
}

#[test]
fn a_stream_opens_closes_and_numbers_every_item_with_interleaved_calls() {
    let mut t = Stream::new(ctx());
    let got = events(
        &mut t,
        &[
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Let me"}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "apply_patch", "arguments": "{\"inp"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":1}"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "ut\":\"p\"}"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}),
        ],
        true,
    );
    let k = kinds(&got);
    assert_eq!(k[..2], ["response.created", "response.in_progress"]);
    assert_eq!(k.last(), Some(&"response.completed"));
    for (n, e) in got.iter().enumerate() {
        assert_eq!(e["sequence_number"], n, "{e}");
    }
    let done = got.last().cloned().unwrap_or_default();
    let output = &done["response"]["output"];
    assert_eq!(output[0]["content"][0]["text"], "Let me");
    assert_eq!(output[1]["arguments"], "{\"x\":1}");
    assert_eq!(output[2]["input"], "p");
    assert_eq!(done["response"]["usage"]["total_tokens"], 7);
    assert!(k.contains(&"response.custom_tool_call_input.done"));
    assert_eq!(
        t.completed().map(|r| r["status"].clone()),
        Some(json!("completed"))
    );
}

#[test]
fn a_stream_cut_short_or_failing_closes_with_response_failed() {
    let mut t = Stream::new(ctx());
    let got = events(
        &mut t,
        &[chunk(json!({"content": "par"}), Value::Null)],
        false,
    );
    assert_eq!(kinds(&got).last(), Some(&"response.output_text.delta"));
    let mut out = Vec::new();
    assert!(!t.finish(&mut out), "no finish_reason: incomplete");
    assert!(t.fail("cut", &mut out));
    let text = String::from_utf8(out).unwrap_or_default();
    assert!(text.starts_with("event: response.failed\n"), "{text}");
    assert!(t.completed().is_none());
    let mut t = Stream::new(ctx());
    events(
        &mut t,
        &[json!({"error": {"message": "overloaded"}})],
        false,
    );
    assert_eq!(t.error(), Some("overloaded"));
}
