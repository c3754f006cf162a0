#![allow(clippy::unwrap_used)]

use serde::Deserialize;

use super::*;
use crate::translate::StreamTranslator;

fn chunk(delta: Value, finish: Option<&str>) -> sse::Event {
    let data = json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    sse::Event {
        name: None,
        data: data.to_string(),
        raw: Default::default(),
    }
}

fn call(index: u64, id: Option<&str>, name: Option<&str>, args: &str) -> Value {
    let mut f = json!({"arguments": args});
    if let Some(name) = name {
        f["name"] = json!(name);
    }
    let mut c = json!({"index": index, "type": "function", "function": f});
    if let Some(id) = id {
        c["id"] = json!(id);
    }
    json!({"tool_calls": [c]})
}

/// Runs chunks through and rebuilds the blocks as a strict Anthropic client would,
/// failing on a delta to a block that is not open or a block opened twice.
fn blocks(chunks: Vec<sse::Event>) -> Vec<Value> {
    let mut s = Stream::new(Context::default());
    let mut out = Vec::new();
    for c in &chunks {
        s.event(c, &mut out);
    }
    s.finish(&mut out);
    let mut parser = sse::Parser::default();
    parser.push(&out);
    let mut blocks: Vec<Value> = Vec::new();
    let mut open: Option<usize> = None;
    while let Some(ev) = parser.next_event() {
        let ev: Value = serde_json::from_str(&ev.data).unwrap_or_default();
        let index = ev["index"].as_u64().map(|i| i as usize);
        match ev["type"].as_str() {
            Some("content_block_start") => {
                assert_eq!(open, None, "a block opened while another is open");
                assert_eq!(index, Some(blocks.len()), "blocks are numbered in order");
                let mut b = ev["content_block"].clone();
                b["partial"] = json!("");
                blocks.push(b);
                open = index;
            }
            Some("content_block_delta") => {
                assert_eq!(index, open, "a delta to a block that is not open");
                let b = &mut blocks[open.unwrap_or_default()];
                let piece = ev["delta"]["partial_json"]
                    .as_str()
                    .or(ev["delta"]["text"].as_str())
                    .or(ev["delta"]["thinking"].as_str());
                b["partial"] = json!(format!(
                    "{}{}",
                    b["partial"].as_str().unwrap_or(""),
                    piece.unwrap_or("")
                ));
            }
            Some("content_block_stop") => {
                assert_eq!(index, open);
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!(open, None, "every block is closed");
    blocks
}

#[test]
fn a_system_message_inside_messages_stays_in_place() {
    let body = json!({"model": "m", "max_tokens": 5, "system": "top", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "mid-conversation"}]},
        {"role": "user", "content": "again"},
    ]});
    let out = request(&body).expect("translated");
    let roles: Vec<&str> = out["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["system", "user", "system", "user"]);
    assert_eq!(out["messages"][2]["content"], "mid-conversation");
}

#[test]
fn interleaved_tool_call_deltas_reach_their_own_blocks() {
    let got = blocks(vec![
        chunk(call(0, Some("call_a"), Some("read"), "{\"pa"), None),
        chunk(call(1, Some("call_b"), Some("grep"), "{\"q\""), None),
        chunk(call(0, None, None, "th\":1}"), None),
        chunk(call(1, None, None, ":2}"), None),
        chunk(json!({}), Some("tool_calls")),
    ]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["id"], "call_a");
    assert_eq!(got[0]["name"], "read");
    assert_eq!(got[0]["partial"], "{\"path\":1}");
    assert_eq!(got[1]["id"], "call_b");
    assert_eq!(got[1]["name"], "grep");
    assert_eq!(got[1]["partial"], "{\"q\":2}");
}

#[test]
fn sequential_parallel_calls_and_index_gaps_each_get_one_named_block() {
    let got = blocks(vec![
        chunk(json!({"content": "let me look"}), None),
        chunk(call(0, Some("call_a"), Some("read"), ""), None),
        chunk(call(0, None, None, "{}"), None),
        chunk(call(5, Some("call_b"), Some("ls"), "{\"d\":"), None),
        chunk(call(5, None, None, "1}"), None),
        chunk(json!({}), Some("tool_calls")),
    ]);
    let names: Vec<&Value> = got.iter().map(|b| &b["name"]).collect();
    assert_eq!(names, [&Value::Null, &json!("read"), &json!("ls")]);
    assert_eq!(got[0]["partial"], "let me look");
    assert_eq!(got[2]["partial"], "{\"d\":1}");
}

#[test]
fn extended_thinking_asks_for_the_nearest_reasoning_effort() {
    let effort = |extra: Value| {
        let mut body = json!({"model": "m", "max_tokens": 40000, "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        request(&body).expect("translated")["reasoning_effort"].clone()
    };
    let enabled = |n: u64| json!({"thinking": {"type": "enabled", "budget_tokens": n}});
    assert_eq!(effort(enabled(1_024)), "low");
    assert_eq!(effort(enabled(10_000)), "medium");
    assert_eq!(effort(enabled(32_000)), "high");
    assert_eq!(
        effort(json!({"thinking": {"type": "disabled"}})),
        Value::Null
    );
    assert_eq!(
        effort(json!({"thinking": {"type": "adaptive"}})),
        Value::Null
    );
    assert_eq!(effort(json!({"output_config": {"effort": "max"}})), "high");
    assert_eq!(
        effort(
            json!({"output_config": {"effort": "low"}, "thinking": {"type": "enabled", "budget_tokens": 32000}})
        ),
        "low"
    );
}

#[test]
fn reasoning_aloud_comes_back_as_a_thinking_block_before_the_text() {
    let body = json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "reasoning_content": "weigh it", "content": "42"}}]});
    let ctx = Context::default();
    let answer = openai::Chunk::deserialize(&body).unwrap();
    let out = serde_json::to_value(response(&answer, &ctx).0).unwrap();
    assert_eq!(
        out["content"],
        json!([{"type": "thinking", "thinking": "weigh it", "signature": ""}, {"type": "text", "text": "42"}])
    );
    let got = blocks(vec![
        chunk(json!({"reasoning_content": "weigh "}), None),
        chunk(json!({"reasoning_content": "it"}), None),
        chunk(json!({"content": "42"}), None),
        chunk(call(0, Some("call_a"), Some("read"), "{}"), None),
        chunk(json!({}), Some("tool_calls")),
    ]);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0]["type"], "thinking");
    assert_eq!(got[0]["signature"], "");
    assert_eq!(got[0]["partial"], "weigh it");
    assert_eq!(got[1]["type"], "text");
    assert_eq!(got[1]["partial"], "42");
    assert_eq!(got[2]["name"], "read");
}

#[test]
fn odd_chunks_are_read_as_a_tree_would_read_them() {
    let raw = |data: &str| sse::Event {
        name: None,
        data: data.to_string(),
        raw: Default::default(),
    };
    let mut s = Stream::new(Context::default());
    let mut out = Vec::new();
    for data in [
        r#"{"id":"chatcmpl-1","model":"m","choices":null,"error":null}"#,
        r#"{"choices":[{"index":0,"delta":{"content":["not","text"],"tool_calls":null},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"say \"hi\"\n\u00e9"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":7,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
        "[DONE]",
    ] {
        s.event(&raw(data), &mut out);
    }
    assert!(s.finish(&mut out));
    assert_eq!(s.usage().input, 3);
    let mut parser = sse::Parser::default();
    parser.push(&out);
    let events: Vec<Value> = std::iter::from_fn(|| parser.next_event())
        .map(|e| serde_json::from_str(&e.data).expect("every event is JSON"))
        .collect();
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "content_block_delta")
        .map(|e| &e["delta"])
        .collect();
    assert_eq!(
        deltas,
        [
            &json!({"type": "text_delta", "text": "say \"hi\"\n\u{e9}"}),
            &json!({"type": "input_json_delta", "partial_json": "{\"a\":1}"}),
        ]
    );
    let tool = events
        .iter()
        .find(|e| e["content_block"]["type"] == "tool_use")
        .expect("a tool block");
    assert_eq!(tool["content_block"]["id"], Value::Null);
    assert_eq!(tool["content_block"]["name"], "f");
    assert_eq!(events.last().expect("events")["type"], "message_stop");
}

#[test]
fn a_whole_answer_is_read_typed_its_tool_arguments_kept_as_sent() {
    let raw = br#"{"id":"chatcmpl-7","object":"chat.completion","created":1,"model":"gpt-x",
        "choices":[{"index":0,"finish_reason":"tool_calls","logprobs":null,"delta":{},"message":{"role":"assistant",
        "content":null,"refusal":null,"tool_calls":[
          {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"lat\": 48.856613999999997}"}},
          {"id":"call_2","type":"function","function":{"name":"g","arguments":"not json"}},
          {"id":"call_3","type":"function","function":{"name":"h","arguments":""}}]}}],
        "usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":5}}}"#;
    let ctx = Context::default();
    let answer: openai::Chunk<'_> = serde_json::from_slice(raw).unwrap();
    let (reply, usage) = response(&answer, &ctx);
    let text = serde_json::to_string(&reply).unwrap();
    assert!(
        text.contains(r#""input":{"lat": 48.856613999999997}"#),
        "{text}"
    );
    let out: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(out["id"], "msg_7");
    assert_eq!(out["model"], "gpt-x");
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["content"][1]["input"], json!({}));
    assert_eq!(out["content"][2]["input"], json!({}));
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 4, "output_tokens": 4, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 0})
    );
    assert_eq!((usage.input, usage.cached, usage.output), (9, 5, 4));
}
