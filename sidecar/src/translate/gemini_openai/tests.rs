#![allow(clippy::unwrap_used)]

use serde::Deserialize;

use super::*;
use crate::translate::StreamTranslator;

fn chunk(data: Value) -> sse::Event {
    sse::Event {
        name: None,
        data: data.to_string(),
        raw: Default::default(),
    }
}

#[test]
fn tool_call_indices_that_skip_or_interleave_gather_per_index() {
    let mut s = Stream::new(Context::default());
    let mut out = Vec::new();
    let calls = [
        json!({"index": 3, "id": "c3", "function": {"name": "b", "arguments": "{\"y\""}}),
        json!({"index": 1, "id": "c1", "function": {"name": "a", "arguments": "{\"x\":"}}),
        json!({"index": 3, "function": {"arguments": ":2}"}}),
        json!({"index": 1, "function": {"arguments": "1}"}}),
    ];
    for c in calls {
        s.event(
            &chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [c]}}]})),
            &mut out,
        );
    }
    s.event(
        &chunk(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})),
        &mut out,
    );
    assert!(s.finish(&mut out));
    let mut parser = sse::Parser::default();
    parser.push(&out);
    let last: Value =
        serde_json::from_str(&parser.next_event().expect("an event").data).expect("json");
    let parts = &last["candidates"][0]["content"]["parts"];
    assert_eq!(
        parts,
        &json!([
            {"functionCall": {"id": "c1", "name": "a", "args": {"x": 1}}},
            {"functionCall": {"id": "c3", "name": "b", "args": {"y": 2}}},
        ])
    );
}

#[test]
fn a_thinking_config_asks_for_the_nearest_reasoning_effort() {
    let effort = |thinking: Value| {
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": thinking}});
        request(&body).expect("translated")["reasoning_effort"].clone()
    };
    assert_eq!(
        effort(json!({"thinkingBudget": 24576, "includeThoughts": true})),
        "high"
    );
    assert_eq!(effort(json!({"thinkingBudget": 2048})), "low");
    assert_eq!(effort(json!({"thinkingLevel": "HIGH"})), "high");
    assert_eq!(effort(json!({"thinkingBudget": 0})), Value::Null);
    assert_eq!(effort(json!({"thinkingBudget": -1})), Value::Null);
}

#[test]
fn reasoning_aloud_comes_back_as_a_thought_part_before_the_text() {
    let body = json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "reasoning_content": "weigh it", "content": "42"}}]});
    let ctx = Context::default();
    let answer = openai::Chunk::deserialize(&body).unwrap();
    let out = serde_json::to_value(response(&answer, &ctx).0).unwrap();
    assert_eq!(
        out["candidates"][0]["content"]["parts"],
        json!([{"text": "weigh it", "thought": true}, {"text": "42"}])
    );
    let mut s = Stream::new(Context::default());
    let mut out = Vec::new();
    for delta in [
        json!({"reasoning_content": "weigh it"}),
        json!({"content": "42"}),
    ] {
        s.event(
            &chunk(json!({"choices": [{"index": 0, "delta": delta}]})),
            &mut out,
        );
    }
    let mut parser = sse::Parser::default();
    parser.push(&out);
    let parts: Vec<Value> = std::iter::from_fn(|| parser.next_event())
        .map(|e| serde_json::from_str::<Value>(&e.data).expect("json"))
        .map(|e| e["candidates"][0]["content"]["parts"][0].clone())
        .collect();
    assert_eq!(
        parts,
        [
            json!({"text": "weigh it", "thought": true}),
            json!({"text": "42"})
        ]
    );
}

#[test]
fn a_whole_answer_is_written_typed_its_calls_args_kept_as_sent() {
    let raw = br#"{"id":"chatcmpl-3","model":"gpt-x","choices":[
        {"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[
          {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"lat\": 48.856613999999997}"}},
          {"id":"call_2","type":"function","function":{"name":"g","arguments":"oops"}}]}},
        {"index":1,"finish_reason":"length","message":{"role":"assistant","content":"cut"}}],
        "usage":{"prompt_tokens":7,"completion_tokens":5,"completion_tokens_details":{"reasoning_tokens":2}}}"#;
    let ctx = Context::default();
    let answer: openai::Chunk<'_> = serde_json::from_slice(raw).unwrap();
    let (reply, usage) = response(&answer, &ctx);
    let text = serde_json::to_string(&reply).unwrap();
    assert!(
        text.contains(r#""args":{"lat": 48.856613999999997}"#),
        "{text}"
    );
    let out: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        out["candidates"][0]["content"]["parts"][1],
        json!({"functionCall": {"id": "call_2", "name": "g", "args": {}}})
    );
    assert_eq!(out["candidates"][0]["finishReason"], "STOP");
    assert_eq!(out["candidates"][1]["finishReason"], "MAX_TOKENS");
    assert_eq!(out["candidates"][1]["index"], 1);
    assert_eq!(
        (out["responseId"].as_str(), out["modelVersion"].as_str()),
        (Some("3"), Some("gpt-x"))
    );
    assert_eq!(
        out["usageMetadata"],
        json!({"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 12, "thoughtsTokenCount": 2})
    );
    assert_eq!(usage.output, 5);
}
