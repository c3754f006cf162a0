//! Anthropic's Messages API, from the API reference: `message` objects with content blocks,
//! the SSE sequence `message_start`, `content_block_start`, `ping`, `content_block_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`, and `{"type":"error",...}` bodies.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::combinators::BoxBody;
use serde_json::{json, Value};

use super::{chunks, json, openai::args_for, text, words, Fake, Received};

/// Anthropic's error body.
pub fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})
}

/// One SSE event in Anthropic's framing.
pub fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The last user turn's text and tool result (`system` messages between turns, as Claude
/// Code sends them, are instructions, not the turn).
fn user_text(messages: &[Value]) -> (String, Option<String>) {
    let Some(last) = messages.iter().rev().find(|m| m["role"] == "user") else {
        return (String::new(), None);
    };
    let blocks = match &last["content"] {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    };
    let tool_result = blocks
        .iter()
        .find(|b| b["type"] == "tool_result")
        .map(|b| text(&b["content"]));
    let texts: Vec<String> = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str().map(str::to_string))
        .collect();
    (texts.join(""), tool_result)
}

/// The realistic answer: tool_use blocks when tools are offered, else an echo.
pub fn answer(fake: &Fake, r: &Received) -> Response<BoxBody<Bytes, std::io::Error>> {
    let b = &r.body;
    if !b["max_tokens"].is_u64() {
        return fake.error(400, "invalid_request_error", "max_tokens: Field required");
    }
    let model = b["model"].as_str().unwrap_or("claude").to_string();
    let messages = b["messages"].as_array().cloned().unwrap_or_default();
    let prompt: u64 = messages
        .iter()
        .map(|m| words(&text(&m["content"])))
        .sum::<u64>()
        + words(&text(&b["system"]));
    let (mut content, tool_result) = user_text(&messages);
    if let Some(result) = &tool_result {
        content = format!("the tool said {result}");
    }
    let tools = b["tools"].as_array().cloned().unwrap_or_default();
    let forced = b.pointer("/tool_choice/type").and_then(Value::as_str) == Some("tool");
    let mut stop_reason = "end_turn";
    let mut stop_sequence = Value::Null;
    for s in b["stop_sequences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(pos) = content.find(s) {
            content.truncate(pos);
            stop_reason = "stop_sequence";
            stop_sequence = json!(s);
        }
    }
    let max = b["max_tokens"].as_u64().unwrap_or(u64::MAX);
    if words(&content) > max {
        content = content
            .split_whitespace()
            .take(max as usize)
            .collect::<Vec<_>>()
            .join(" ");
        stop_reason = "max_tokens";
    }
    let uses: Vec<Value> = if !tools.is_empty()
        && (tool_result.is_none() || forced)
        && b.pointer("/tool_choice/type") != Some(&json!("none"))
    {
        let parallel = content.contains("parallel")
            && b.pointer("/tool_choice/disable_parallel_tool_use") != Some(&json!(true));
        let n = if parallel { 2 } else { 1 };
        let tool = if forced {
            tools
                .iter()
                .find(|t| t["name"] == b["tool_choice"]["name"])
                .unwrap_or(&tools[0])
        } else {
            super::pick_tool(&tools, |t| &t["input_schema"], &content)
        };
        let input = |i| {
            if forced {
                json!({"answer": content})
            } else {
                args_for(&tool["input_schema"], i, &content)
            }
        };
        (0..n).map(|i| json!({"type": "tool_use", "id": format!("toolu_fake{i}"), "name": tool["name"], "input": input(i)})).collect()
    } else {
        Vec::new()
    };
    if !uses.is_empty() {
        stop_reason = "tool_use";
        stop_sequence = Value::Null;
    }
    let output = if uses.is_empty() {
        words(&content)
    } else {
        5 * uses.len() as u64
    };
    let usage = json!({"input_tokens": prompt, "output_tokens": output, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard"});
    let blocks: Vec<Value> = if uses.is_empty() {
        vec![json!({"type": "text", "text": content})]
    } else {
        uses.clone()
    };
    if b["stream"] == true {
        let start = json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": prompt, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard"}}});
        let mut events = vec![event("message_start", &start)];
        for (i, block) in blocks.iter().enumerate() {
            if block["type"] == "text" {
                events.push(event("content_block_start", &json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})));
                if i == 0 {
                    events.push(event("ping", &json!({"type": "ping"})));
                }
                for piece in chunks(block["text"].as_str().unwrap_or_default()) {
                    events.push(event("content_block_delta", &json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": piece}})));
                }
            } else {
                events.push(event("content_block_start", &json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})));
                let args = block["input"].to_string();
                let mid = args.len() / 2;
                for part in ["", &args[..mid], &args[mid..]] {
                    events.push(event("content_block_delta", &json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": part}})));
                }
            }
            events.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": i}),
            ));
        }
        events.push(event("message_delta", &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": {"output_tokens": output}})));
        events.push(event("message_stop", &json!({"type": "message_stop"})));
        let mut resp = fake.sse(
            events
                .into_iter()
                .map(|e| (Duration::from_millis(1), e))
                .collect(),
            false,
        );
        resp.headers_mut()
            .insert("request-id", "req_fake".parse().unwrap());
        return resp;
    }
    let mut resp = json(
        200,
        &json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": blocks,
            "stop_reason": stop_reason, "stop_sequence": stop_sequence, "usage": usage,
        }),
    );
    resp.headers_mut()
        .insert("request-id", "req_fake".parse().unwrap());
    resp
}
