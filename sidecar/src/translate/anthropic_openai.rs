//! An Anthropic-shaped call served by an OpenAI-format upstream (OpenAI, Azure, mock, and
//! Gemini through OpenAI): the request forward, the response and the stream back.

use serde_json::{json, Map, Value};

use super::{anthropic, openai, Context, Usage};
use crate::{error::Error, sse};

mod stream;
pub use stream::Stream;

/// Translates an Anthropic Messages request into an OpenAI chat completion request.
pub fn request(body: &Value) -> Result<Value, Error> {
    let mut messages = Vec::new();
    match body.get("system") {
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let text: Vec<&str> = blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            messages.push(json!({"role": "system", "content": text.join("\n\n")}));
        }
        _ => {}
    }
    let empty = Vec::new();
    let input = body
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (i, m) in input.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let blocks = match m.get("content") {
            Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        match role {
            "user" => user(&mut messages, &blocks, i)?,
            "assistant" => assistant(&mut messages, &blocks),
            // Claude Code sends mid-conversation system messages: kept in place (a Gemini
            // upstream folds them, in order, into its systemInstruction).
            "system" => {
                let text: Vec<&str> = blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect();
                messages.push(json!({"role": "system", "content": text.join("\n")}));
            }
            other => {
                return Err(Error::invalid(
                    &format!("messages.{i}.role"),
                    format!("unsupported role {other:?}"),
                ))
            }
        }
    }
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    settings(body, &mut out);
    tools(body, &mut out);
    Ok(Value::Object(out))
}

/// `max_tokens`, sampling, stop sequences, the end user and structured output.
fn settings(body: &Value, out: &mut Map<String, Value>) {
    if let Some(max) = body.get("max_tokens") {
        out.insert("max_tokens".into(), max.clone());
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = body
        .get("stop_sequences")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
    {
        out.insert("stop".into(), Value::Array(stop.clone()));
    }
    if let Some(user) = body.pointer("/metadata/user_id") {
        out.insert("user".into(), user.clone());
    }
    if let Some(effort) = reasoning_effort(body) {
        out.insert("reasoning_effort".into(), Value::from(effort));
    }
    // Structured output: `output_config.format` (and the beta's `output_format`).
    let format = body
        .pointer("/output_config/format")
        .or_else(|| body.get("output_format"));
    if let Some(f) = format.filter(|f| f["type"] == "json_schema") {
        let schema = json!({"name": "output", "schema": f["schema"]});
        out.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": schema}),
        );
    }
}

/// The OpenAI `reasoning_effort` for a request's `output_config.effort` (`max` is `high`), or
/// else its extended thinking budget's nearest tier; none when thinking is off or adaptive
/// (the upstream's default then applies).
fn reasoning_effort(body: &Value) -> Option<&'static str> {
    match body
        .pointer("/output_config/effort")
        .and_then(Value::as_str)
    {
        Some("low") => return Some("low"),
        Some("medium") => return Some("medium"),
        Some("high" | "max") => return Some("high"),
        _ => {}
    }
    thinking_effort(body.get("thinking")?)
}

/// The OpenAI `reasoning_effort` for Anthropic's `thinking` setting: enabled, its budget's
/// nearest tier.
pub(crate) fn thinking_effort(thinking: &Value) -> Option<&'static str> {
    if thinking.get("type").and_then(Value::as_str) != Some("enabled") {
        return None;
    }
    let budget = thinking.get("budget_tokens").and_then(Value::as_u64)?;
    Some(super::effort_for_budget(budget))
}

/// Tools with an input schema as functions, and the tool choice.
fn tools(body: &Value, out: &mut Map<String, Value>) {
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter(|t| t.get("input_schema").is_some())
            .map(|t| {
                let mut f = json!({"name": t["name"], "parameters": t["input_schema"]});
                if let Some(d) = t.get("description") {
                    f["description"] = d.clone();
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
            if let Some(choice) = body.get("tool_choice") {
                let mapped = match choice.get("type").and_then(Value::as_str) {
                    Some("any") => json!("required"),
                    Some("none") => json!("none"),
                    Some("tool") => {
                        json!({"type": "function", "function": {"name": choice["name"]}})
                    }
                    _ => json!("auto"),
                };
                out.insert("tool_choice".into(), mapped);
                if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
                    out.insert("parallel_tool_calls".into(), Value::Bool(false));
                }
            }
        }
    }
}

fn user(messages: &mut Vec<Value>, blocks: &[Value], i: usize) -> Result<(), Error> {
    let mut parts = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(json!({"type": "text", "text": block["text"]})),
            Some("image") => {
                let src = &block["source"];
                let url = match src["type"].as_str() {
                    Some("base64") => format!(
                        "data:{};base64,{}",
                        src["media_type"].as_str().unwrap_or("image/png"),
                        src["data"].as_str().unwrap_or_default()
                    ),
                    _ => src["url"].as_str().unwrap_or_default().to_string(),
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            Some("document") if block.pointer("/source/type") == Some(&json!("base64")) => {
                let src = &block["source"];
                let data = format!(
                    "data:{};base64,{}",
                    src["media_type"].as_str().unwrap_or("application/pdf"),
                    src["data"].as_str().unwrap_or_default()
                );
                parts.push(json!({"type": "file", "file": {"filename": "document.pdf", "file_data": data}}));
            }
            Some("tool_result") => {
                let content = match &block["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => String::new(),
                };
                let content = if block.get("is_error") == Some(&Value::Bool(true)) {
                    format!("Error: {content}")
                } else {
                    content
                };
                messages.push(json!({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}));
            }
            other => {
                return Err(Error::invalid(
                    &format!("messages.{i}.content"),
                    format!(
                        "content block type {:?} is not supported by this model's provider",
                        other.unwrap_or("?")
                    ),
                ))
            }
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = match parts.as_slice() {
        [only] if only["type"] == "text" => only["text"].clone(),
        _ => Value::Array(parts),
    };
    messages.push(json!({"role": "user", "content": content}));
    Ok(())
}

fn assistant(messages: &mut Vec<Value>, blocks: &[Value]) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    messages.push(msg);
}

/// The Anthropic `stop_reason` for an OpenAI `finish_reason`.
pub fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Translates an OpenAI chat completion, read typed, into an Anthropic Messages response.
pub fn response<'a>(
    body: &'a openai::Chunk<'a>,
    ctx: &'a Context,
) -> (anthropic::Reply<'a>, Usage) {
    let choice = body.choice();
    let msg = choice.map(openai::Choice::said);
    let mut content = Vec::new();
    // Reasoning aloud (`reasoning_content`, as servers that reason aloud and the Gemini
    // translation name it) is a thinking block, unsigned: no Anthropic key signed it.
    if let Some(thinking) = msg.and_then(|m| m.reasoning_content.filled()) {
        content.push(anthropic::ReplyBlock::Thinking {
            thinking,
            signature: "",
        });
    }
    if let Some(text) = msg.and_then(|m| m.content.filled()) {
        content.push(anthropic::ReplyBlock::Text { text });
    }
    for call in msg
        .and_then(|m| m.tool_calls.as_deref())
        .unwrap_or_default()
    {
        let function = call.function.as_ref();
        let args = function.and_then(|f| f.arguments.0.as_deref());
        content.push(anthropic::ReplyBlock::ToolUse {
            id: call.id.0.as_deref().unwrap_or_default(),
            name: function
                .and_then(|f| f.name.0.as_deref())
                .unwrap_or_default(),
            input: openai::arguments_json(args),
        });
    }
    let usage = body.usage().unwrap_or_default();
    let id = body.id.0.as_deref().unwrap_or("chatcmpl");
    let finish = choice.and_then(|c| c.finish_reason.0.as_deref());
    let reply = anthropic::Reply {
        id: format!("msg_{}", id.trim_start_matches("chatcmpl-")),
        kind: "message",
        role: "assistant",
        model: body.model.0.as_deref().unwrap_or(&ctx.model),
        content,
        stop_reason: stop_reason(finish.unwrap_or("stop")),
        stop_sequence: None,
        usage: usage.into(),
    };
    (reply, usage)
}

#[cfg(test)]
mod tests;
