//! A chat-completions call (and, through it, Anthropic and Gemini calls) served by an
//! upstream called with the Responses API (`api: responses`): current GPT models refuse tools
//! together with reasoning on chat completions. The request forward, the response and the
//! stream back.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{
    error_message, openai,
    responses::{self, usage as responses_usage},
    text_of, Context, Usage,
};
use crate::{error::Error, sse};

/// Translates a chat completion request into a Responses request.
pub fn request(body: &Value) -> Result<Value, Error> {
    let mut out = Map::new();
    out.insert("input".into(), Value::Array(input(body)?));
    // The sidecar keeps no state upstream: every turn carries its history.
    out.insert("store".into(), Value::Bool(false));
    settings(body, &mut out);
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools.iter().filter_map(tool).collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = body.get("tool_choice") {
        let mapped = match choice.pointer("/function/name") {
            Some(name) => json!({"type": "function", "name": name}),
            None => choice.clone(),
        };
        out.insert("tool_choice".into(), mapped);
    }
    Ok(Value::Object(out))
}

/// The chat messages as input items.
fn input(body: &Value) -> Result<Vec<Value>, Error> {
    let mut input = Vec::new();
    let empty = Vec::new();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        match role {
            "system" | "developer" => input.push(json!({"type": "message", "role": role, "content": text_of(&m["content"])})),
            "user" => input.push(json!({"type": "message", "role": "user", "content": user_parts(&m["content"], i)?})),
            "assistant" => {
                let text = text_of(&m["content"]);
                if !text.is_empty() {
                    input.push(json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]}));
                }
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    input.push(json!({
                        "type": "function_call", "call_id": c["id"],
                        "name": c.pointer("/function/name").cloned().unwrap_or_default(),
                        "arguments": c.pointer("/function/arguments").cloned().unwrap_or(json!("{}")),
                    }));
                }
            }
            "tool" => input.push(json!({"type": "function_call_output", "call_id": m["tool_call_id"], "output": text_of(&m["content"])})),
            other => {
                return Err(Error::invalid(&format!("messages[{i}].role"), format!("unsupported role {other:?}")))
            }
        }
    }
    Ok(input)
}

/// Sampling, limits, reasoning effort and the response format, in the Responses API's names.
fn settings(body: &Value, out: &mut Map<String, Value>) {
    let copied = [
        "temperature",
        "top_p",
        "user",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
        "service_tier",
    ];
    for key in copied {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"));
    if let Some(max) = max.filter(|v| v.is_u64()) {
        out.insert("max_output_tokens".into(), max.clone());
    }
    if let Some(effort) = body.get("reasoning_effort").filter(|v| v.is_string()) {
        out.insert("reasoning".into(), json!({"effort": effort}));
    }
    match body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
    {
        Some("json_schema") => {
            let schema = body.pointer("/response_format/json_schema").cloned();
            let mut format = schema.unwrap_or(json!({}));
            format["type"] = json!("json_schema");
            out.insert("text".into(), json!({"format": format}));
        }
        Some("json_object") => {
            out.insert("text".into(), json!({"format": {"type": "json_object"}}));
        }
        _ => {}
    }
}

/// A chat function tool as a Responses function tool.
fn tool(t: &Value) -> Option<Value> {
    let f = t.get("function")?;
    let params = f
        .get("parameters")
        .cloned()
        .unwrap_or(json!({"type": "object", "properties": {}}));
    let mut tool = json!({"type": "function", "name": f.get("name")?, "parameters": params});
    for key in ["description", "strict"] {
        if let Some(v) = f.get(key).filter(|v| !v.is_null()) {
            tool[key] = v.clone();
        }
    }
    Some(tool)
}

fn user_parts(content: &Value, i: usize) -> Result<Value, Error> {
    let Value::Array(parts) = content else {
        return Ok(json!(text_of(content)));
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        out.push(match part["type"].as_str() {
            Some("text") => json!({"type": "input_text", "text": part["text"]}),
            Some("image_url") => {
                let mut image = json!({"type": "input_image", "image_url": part.pointer("/image_url/url").cloned().unwrap_or_default()});
                image["detail"] = part.pointer("/image_url/detail").cloned().unwrap_or(json!("auto"));
                image
            }
            Some("file") => json!({"type": "input_file", "filename": part.pointer("/file/filename"), "file_data": part.pointer("/file/file_data")}),
            other => {
                return Err(Error::invalid(
                    &format!("messages[{i}].content"),
                    format!("content part type {:?} is not supported by this model's provider", other.unwrap_or("?")),
                ))
            }
        });
    }
    Ok(Value::Array(out))
}

/// The chat `finish_reason` for a finished Responses object.
fn finish_reason(obj: &Value, called: bool) -> &'static str {
    match obj
        .pointer("/incomplete_details/reason")
        .and_then(Value::as_str)
    {
        Some("max_output_tokens") => "length",
        Some("content_filter") => "content_filter",
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// A Responses output item's tool call in chat's shape (a freeform tool's input wrapped as
/// `{"input": ...}`).
fn chat_call(item: &Value) -> Option<Value> {
    let arguments = match item["type"].as_str()? {
        "function_call" => item["arguments"].as_str().unwrap_or("{}").to_string(),
        "custom_tool_call" => json!({"input": item["input"]}).to_string(),
        _ => return None,
    };
    Some(
        json!({"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": arguments}}),
    )
}

/// Translates a Responses response object into a chat completion.
pub fn response(body: &Value, ctx: &Context) -> (Value, Usage) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in body["output"].as_array().into_iter().flatten() {
        if item["type"] == "message" {
            for part in item["content"].as_array().into_iter().flatten() {
                if let Some(t) = part["text"].as_str().or_else(|| part["refusal"].as_str()) {
                    text.push_str(t);
                }
            }
        } else if let Some(call) = chat_call(item) {
            calls.push(call);
        }
    }
    let usage = responses_usage(&body["usage"]);
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }, "refusal": null});
    let finish = finish_reason(body, !calls.is_empty());
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let id = body["id"]
        .as_str()
        .unwrap_or("resp")
        .trim_start_matches("resp_");
    let out = json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": body.get("created_at").and_then(Value::as_u64).unwrap_or(ctx.created),
        "model": body.get("model").cloned().unwrap_or_else(|| json!(ctx.model)),
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": openai::usage_object(usage),
    });
    (out, usage)
}

/// Responses events in, chat chunks out.
pub struct Stream {
    ctx: Context,
    id: String,
    model: String,
    started: bool,
    /// Chat tool-call index by Responses output index.
    calls: BTreeMap<u64, usize>,
    usage: Usage,
    error: Option<String>,
    done: bool,
}

impl Stream {
    /// A translator for a call.
    pub fn new(ctx: Context) -> Self {
        Self {
            id: "chatcmpl-resp".into(),
            model: ctx.model.clone(),
            ctx,
            started: false,
            calls: BTreeMap::new(),
            usage: Usage::default(),
            error: None,
            done: false,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        openai::chunk(out, &self.id, self.ctx.created, &self.model, delta, finish);
    }

    fn close(&mut self, obj: &Value, out: &mut Vec<u8>) {
        self.usage = responses_usage(&obj["usage"]);
        let finish = finish_reason(obj, !self.calls.is_empty());
        self.chunk(out, json!({}), Some(finish));
        let usage = self.ctx.include_usage.then_some(self.usage);
        openai::end(out, &self.id, self.ctx.created, &self.model, usage);
        self.done = true;
    }
}

impl super::StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        let kind = data["type"]
            .as_str()
            .or(ev.name.as_deref())
            .unwrap_or_default();
        match kind {
            "response.created" => {
                let r = &data["response"];
                if let Some(id) = r["id"].as_str() {
                    self.id = format!("chatcmpl-{}", id.trim_start_matches("resp_"));
                }
                if let Some(m) = r["model"].as_str() {
                    self.model = m.to_string();
                }
                self.started = true;
                self.chunk(out, json!({"role": "assistant", "content": ""}), None);
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                self.chunk(out, json!({"content": data["delta"]}), None);
            }
            "response.output_item.added" => {
                let item = &data["item"];
                if matches!(
                    item["type"].as_str(),
                    Some("function_call" | "custom_tool_call")
                ) {
                    let n = self.calls.len();
                    self.calls
                        .insert(data["output_index"].as_u64().unwrap_or(0), n);
                    let call = json!({"index": n, "id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": ""}});
                    self.chunk(out, json!({"tool_calls": [call]}), None);
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(n) = self.calls.get(&data["output_index"].as_u64().unwrap_or(0)) {
                    let call = json!({"index": n, "function": {"arguments": data["delta"]}});
                    self.chunk(out, json!({"tool_calls": [call]}), None);
                }
            }
            "response.custom_tool_call_input.done" => {
                if let Some(n) = self.calls.get(&data["output_index"].as_u64().unwrap_or(0)) {
                    let args = json!({"input": data["input"]}).to_string();
                    let call = json!({"index": n, "function": {"arguments": args}});
                    self.chunk(out, json!({"tool_calls": [call]}), None);
                }
            }
            "response.completed" | "response.incomplete" => self.close(&data["response"], out),
            "response.failed" => {
                let err = data.pointer("/response/error").cloned().unwrap_or_default();
                self.error = Some(error_message(&err));
            }
            "error" => self.error = Some(error_message(&data)),
            _ => {}
        }
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> bool {
        self.done
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// Reads what a passthrough Responses stream event says about usage, completion and errors.
pub fn passthrough_event(data: &Value) -> (Option<Usage>, bool, Option<String>) {
    match data["type"].as_str() {
        Some("response.completed" | "response.incomplete") => (
            Some(responses::usage(&data["response"]["usage"])),
            true,
            None,
        ),
        Some("response.failed") => {
            let err = data.pointer("/response/error").cloned().unwrap_or_default();
            (None, true, Some(error_message(&err)))
        }
        Some("error") => (None, false, Some(error_message(data))),
        _ => (None, false, None),
    }
}
