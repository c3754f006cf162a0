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
/// Why the Messages API refuses extended thinking with this request, if it does: the budget
/// (at least 1,024, below `max_tokens`), sampling changes, a forced tool, and a tool loop
/// whose last assistant turn does not start with its thinking block.
fn thinking_refusal(b: &Value, messages: &[Value]) -> Option<String> {
    let budget = b
        .pointer("/thinking/budget_tokens")
        .and_then(Value::as_u64)?;
    let max = b["max_tokens"].as_u64().unwrap_or(0);
    if budget < 1024 {
        return Some(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".into(),
        );
    }
    if budget >= max {
        return Some("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size".into());
    }
    if b.get("temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| t != 1.0)
    {
        return Some("`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility".into());
    }
    if b.get("top_k").is_some() {
        return Some("`top_k` must be unset when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility".into());
    }
    if matches!(
        b.pointer("/tool_choice/type").and_then(Value::as_str),
        Some("any" | "tool")
    ) {
        return Some("Thinking may not be enabled when tool_choice forces tool use.".into());
    }
    let in_loop = messages.last().is_some_and(|m| {
        m["content"]
            .as_array()
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"))
    });
    let at = messages
        .iter()
        .rposition(|m| m["role"] == "assistant")
        .unwrap_or(0);
    let first = messages
        .get(at)
        .and_then(|m| m["content"].as_array()?.first().cloned());
    if in_loop
        && !first
            .as_ref()
            .is_some_and(|f| f["type"] == "thinking" || f["type"] == "redacted_thinking")
    {
        let found = first.map_or("text".to_string(), |f| {
            f["type"].as_str().unwrap_or("text").to_string()
        });
        return Some(format!("messages.{}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking", at));
    }
    None
}

pub fn answer(fake: &Fake, r: &Received) -> Response<BoxBody<Bytes, std::io::Error>> {
    let b = &r.body;
    if !b["max_tokens"].is_u64() {
        return fake.error(400, "invalid_request_error", "max_tokens: Field required");
    }
    let model = b["model"].as_str().unwrap_or("claude").to_string();
    let messages = b["messages"].as_array().cloned().unwrap_or_default();
    let thinking = b.pointer("/thinking/type").and_then(Value::as_str) == Some("enabled");
    if thinking {
        if let Some(refusal) = thinking_refusal(b, &messages) {
            return fake.error(400, "invalid_request_error", &refusal);
        }
    }
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
    // Structured output (`output_config.format`, and the older `output_format`): the text
    // is JSON the schema accepts.
    let format = b
        .pointer("/output_config/format")
        .or_else(|| b.get("output_format"));
    if format.and_then(|f| f["type"].as_str()) == Some("json_schema") {
        content = super::instance_of(format.and_then(|f| f.get("schema")), &content).to_string();
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
                super::instance_of(tool.get("input_schema"), &content)
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
    let mut blocks: Vec<Value> = if uses.is_empty() {
        vec![json!({"type": "text", "text": content})]
    } else {
        uses.clone()
    };
    if thinking {
        let thought = format!("The user wants: {content}");
        blocks.insert(0, json!({"type": "thinking", "thinking": thought, "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}));
    }
    if b["stream"] == true {
        let start = json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": prompt, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard"}}});
        let mut events = vec![event("message_start", &start)];
        for (i, block) in blocks.iter().enumerate() {
            if block["type"] == "thinking" {
                events.push(event("content_block_start", &json!({"type": "content_block_start", "index": i, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
                for piece in chunks(block["thinking"].as_str().unwrap_or_default()) {
                    events.push(event("content_block_delta", &json!({"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": piece}})));
                }
                events.push(event("content_block_delta", &json!({"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": block["signature"]}})));
            } else if block["type"] == "text" {
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
