//! An Anthropic-shaped call served by an OpenAI-format upstream (OpenAI, Azure, mock, and
//! Gemini through OpenAI): the request forward, the response and the stream back.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{error_message, Context, Usage};
use crate::{error::Error, sse};

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

/// Usage from an OpenAI `usage` object.
pub fn usage(u: &Value) -> Usage {
    let n = |p: &str| u.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input: n("/prompt_tokens"),
        output: n("/completion_tokens"),
        cached: n("/prompt_tokens_details/cached_tokens"),
        cache_creation: 0,
        reasoning: n("/completion_tokens_details/reasoning_tokens"),
    }
}

/// Translates an OpenAI chat completion into an Anthropic Messages response.
pub fn response(body: &Value, ctx: &Context) -> (Value, Usage) {
    let choice = body.pointer("/choices/0").unwrap_or(&Value::Null);
    let msg = &choice["message"];
    let mut content = Vec::new();
    if let Some(text) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in msg["tool_calls"].as_array().into_iter().flatten() {
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        content.push(json!({
            "type": "tool_use", "id": call["id"], "name": call.pointer("/function/name").cloned().unwrap_or_default(),
            "input": serde_json::from_str::<Value>(args).unwrap_or(json!({})),
        }));
    }
    let usage = usage(&body["usage"]);
    let id = body["id"].as_str().unwrap_or("chatcmpl");
    let out = json!({
        "id": format!("msg_{}", id.trim_start_matches("chatcmpl-")),
        "type": "message",
        "role": "assistant",
        "model": body.get("model").cloned().unwrap_or_else(|| Value::String(ctx.model.clone())),
        "content": content,
        "stop_reason": stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
        "stop_sequence": null,
        "usage": usage.to_anthropic(),
    });
    (out, usage)
}

/// A tool call seen in the stream but not yet sent: the Anthropic wire streams one block at a
/// time, so calls other than the live one wait here, keyed by their OpenAI `index`.
#[derive(Debug, Default)]
struct PendingCall {
    id: Value,
    name: Value,
    arguments: String,
}

/// OpenAI chunks in, Anthropic events out.
///
/// Text streams live. The first tool call streams live too; other calls (later parallel
/// calls, or calls interleaved with it) are gathered per index and sent whole, each its own
/// block, when the live one ends, so every delta reaches the block of its own index and the
/// blocks stay sequential as Anthropic sends them.
#[derive(Debug)]
pub struct Stream {
    ctx: Context,
    started: bool,
    /// The open text block.
    text: Option<usize>,
    /// The live tool call: its OpenAI index and its block.
    live: Option<(u64, usize)>,
    pending: BTreeMap<u64, PendingCall>,
    next_block: usize,
    finish: Option<String>,
    usage: Usage,
    done: bool,
    error: Option<String>,
}

impl Stream {
    /// A translator for one response.
    pub fn new(ctx: Context) -> Self {
        Self {
            ctx,
            started: false,
            text: None,
            live: None,
            pending: BTreeMap::new(),
            next_block: 0,
            finish: None,
            usage: Usage::default(),
            done: false,
            error: None,
        }
    }

    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = chunk["id"].as_str().unwrap_or("chatcmpl");
        let model = chunk
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(&self.ctx.model);
        let start = json!({"type": "message_start", "message": {
            "id": format!("msg_{}", id.trim_start_matches("chatcmpl-")), "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }});
        sse::write(out, Some("message_start"), &start.to_string());
    }

    fn stop_block(out: &mut Vec<u8>, index: usize) {
        let ev = json!({"type": "content_block_stop", "index": index});
        sse::write(out, Some("content_block_stop"), &ev.to_string());
    }

    fn open_block(&mut self, block: Value, out: &mut Vec<u8>) -> usize {
        let index = self.next_block;
        self.next_block += 1;
        let ev = json!({"type": "content_block_start", "index": index, "content_block": block});
        sse::write(out, Some("content_block_start"), &ev.to_string());
        index
    }

    fn json_delta(out: &mut Vec<u8>, index: usize, partial: &str) {
        let ev = json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": partial}});
        sse::write(out, Some("content_block_delta"), &ev.to_string());
    }

    fn close_text(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.text.take() {
            Self::stop_block(out, index);
        }
    }

    /// Ends the live call and sends every gathered one, in index order.
    fn close_tools(&mut self, out: &mut Vec<u8>) {
        if let Some((_, block)) = self.live.take() {
            Self::stop_block(out, block);
        }
        for (_, call) in std::mem::take(&mut self.pending) {
            let block = json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
            let index = self.open_block(block, out);
            if !call.arguments.is_empty() {
                Self::json_delta(out, index, &call.arguments);
            }
            Self::stop_block(out, index);
        }
    }

    fn text_delta(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.text {
            Some(index) => index,
            None => {
                self.close_tools(out);
                self.open_block(json!({"type": "text", "text": ""}), out)
            }
        };
        self.text = Some(index);
        let ev = json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}});
        sse::write(out, Some("content_block_delta"), &ev.to_string());
    }

    fn tool_delta(&mut self, call: &Value, out: &mut Vec<u8>) {
        let index = call["index"].as_u64().unwrap_or(0);
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.live {
            Some((live, block)) if live == index => {
                if !args.is_empty() {
                    Self::json_delta(out, block, args);
                }
            }
            None if self.pending.is_empty() => {
                self.close_text(out);
                let name = call.pointer("/function/name").cloned().unwrap_or_default();
                let block =
                    json!({"type": "tool_use", "id": call["id"], "name": name, "input": {}});
                let block = self.open_block(block, out);
                self.live = Some((index, block));
                if !args.is_empty() {
                    Self::json_delta(out, block, args);
                }
            }
            _ => {
                let pending = self.pending.entry(index).or_default();
                if let Some(id) = call.get("id").filter(|v| v.is_string()) {
                    pending.id = id.clone();
                }
                if let Some(name) = call.pointer("/function/name").filter(|v| v.is_string()) {
                    pending.name = name.clone();
                }
                pending.arguments.push_str(args);
            }
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.close_text(out);
        self.close_tools(out);
        let stop = stop_reason(self.finish.as_deref().unwrap_or("stop"));
        let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": self.usage.to_anthropic()});
        sse::write(out, Some("message_delta"), &delta.to_string());
        sse::write(
            out,
            Some("message_stop"),
            &json!({"type": "message_stop"}).to_string(),
        );
        self.done = true;
    }
}

impl super::StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        if ev.data.trim() == "[DONE]" {
            if self.started {
                self.end(out);
            }
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        if let Some(err) = chunk.get("error") {
            self.error = Some(error_message(err));
            return;
        }
        self.start(&chunk, out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = usage(u);
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text_delta(text, out);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.tool_delta(call, out);
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            self.finish = Some(finish.to_string());
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.done && self.started && self.finish.is_some() && self.error.is_none() {
            // Some OpenAI-compatible servers close without [DONE]; a finish reason suffices.
            self.end(out);
        }
        self.done
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

#[cfg(test)]
mod tests;
