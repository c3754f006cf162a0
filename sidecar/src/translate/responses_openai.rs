//! A Responses-API call (`/v1/responses`) served by a chat-completions upstream (and, through
//! it, Anthropic and Gemini): the request forward, the response and the stream back.
//!
//! Freeform `custom` tools (Codex's `apply_patch`) travel as functions with one string
//! argument `input` and come back as `custom_tool_call` items. OpenAI-hosted tools and
//! encrypted reasoning only exist on Responses backends and are left out here.

use std::{borrow::Cow, collections::HashSet, sync::Arc};

use serde_json::{json, Map, Value};

use super::{openai::usage as chat_usage, responses::ResponsesCall, Context};
use crate::error::Error;

mod stream;

pub use stream::Stream;

/// One input item, read for what translation needs.
enum Item<'a> {
    /// A message: role and content (a string or parts).
    Message { role: &'a str, content: &'a Value },
    /// A tool call the model made earlier (`function_call` or `custom_tool_call`).
    Call {
        call_id: &'a str,
        name: &'a str,
        arguments: Cow<'a, str>,
    },
    /// A tool's result (`function_call_output` or `custom_tool_call_output`).
    Output { call_id: &'a str, output: &'a Value },
    /// A reasoning item holding Anthropic thinking sealed here, for the next assistant turn.
    Thinking(Vec<Value>),
    /// Something only a Responses backend can use (reasoning, hosted tool calls).
    Skipped,
}

/// Item types a Responses backend understands and a chat upstream has no room for.
const RESPONSES_ONLY_ITEMS: &[&str] = &[
    "reasoning",
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "tool_search_call",
    "tool_search_output",
    "item_reference",
];

fn read_item<'a>(item: &'a Value, at: &str) -> Result<Item<'a>, Error> {
    let text = |k: &str| item.get(k).and_then(Value::as_str);
    let need = |k: &str| {
        text(k).ok_or_else(|| {
            Error::invalid(
                &format!("{at}.{k}"),
                format!("Missing required parameter: '{at}.{k}'."),
            )
        })
    };
    let kind = match text("type") {
        Some(t) => t,
        None if item.get("role").is_some() => "message",
        None => {
            return Err(Error::invalid(
                &format!("{at}.type"),
                "Missing required parameter: 'type'.",
            ))
        }
    };
    Ok(match kind {
        "message" => Item::Message {
            role: need("role")?,
            content: item.get("content").unwrap_or(&Value::Null),
        },
        "function_call" => Item::Call {
            call_id: need("call_id")?,
            name: need("name")?,
            arguments: Cow::Borrowed(text("arguments").unwrap_or("{}")),
        },
        "custom_tool_call" => Item::Call {
            call_id: need("call_id")?,
            name: need("name")?,
            arguments: Cow::Owned(json!({"input": text("input").unwrap_or_default()}).to_string()),
        },
        "function_call_output" | "custom_tool_call_output" => Item::Output {
            call_id: need("call_id")?,
            output: item.get("output").unwrap_or(&Value::Null),
        },
        "reasoning" => match text("encrypted_content").and_then(super::thinking::open) {
            Some(blocks) => Item::Thinking(blocks),
            None => {
                tracing::debug!("reasoning item left out for a chat-completions upstream");
                Item::Skipped
            }
        },
        t if RESPONSES_ONLY_ITEMS.contains(&t) => {
            tracing::debug!(item = t, "input item left out for a chat-completions upstream");
            Item::Skipped
        }
        other => {
            return Err(Error::invalid(
                &format!("{at}.type"),
                format!("Invalid value: '{other}'. Supported values are: 'message', 'function_call', 'function_call_output', 'custom_tool_call', 'custom_tool_call_output' and 'reasoning'."),
            ))
        }
    })
}

/// Translates a Responses request into a chat completion request.
pub fn request(body: &Value, ctx: &mut Context) -> Result<Value, Error> {
    ctx.responses
        .get_or_insert_with(|| Arc::new(ResponsesCall::of(body)));
    let mut messages = Vec::new();
    if let Some(text) = body
        .get("instructions")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        messages.push(json!({"role": "system", "content": text}));
    }
    let own: Cow<'_, [Value]> = match body.get("input") {
        Some(Value::String(s)) => Cow::Owned(vec![json!({"role": "user", "content": s})]),
        Some(Value::Array(items)) => Cow::Borrowed(items),
        None | Some(Value::Null) => Cow::Owned(Vec::new()),
        Some(_) => {
            return Err(Error::invalid(
                "input",
                "input must be a string or an array of items",
            ))
        }
    };
    let mut calls: HashSet<&str> = HashSet::new();
    // Carried thinking waits for the assistant turn it belongs to.
    let mut thinking: Vec<Value> = Vec::new();
    for (n, item) in own.iter().enumerate() {
        let at = format!("input[{n}]");
        let before = messages.len();
        match read_item(item, &at)? {
            Item::Thinking(blocks) => thinking.extend(blocks),
            Item::Message { role, content } => message(&mut messages, role, content, &at)?,
            Item::Call {
                call_id,
                name,
                arguments,
            } => {
                calls.insert(call_id);
                tool_call(&mut messages, call_id, name, &arguments);
            }
            Item::Output { call_id, output } => {
                if !calls.contains(call_id) {
                    return Err(Error::invalid(
                        &at,
                        format!(
                            "No tool call found for function call output with call_id {call_id}."
                        ),
                    ));
                }
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output_text(output)}));
            }
            Item::Skipped => {}
        }
        let grew = messages.len() > before;
        if let Some(last) = messages.last_mut().filter(|m| m["role"] == "assistant") {
            if grew && !thinking.is_empty() {
                last["thinking_blocks"] = Value::Array(std::mem::take(&mut thinking));
            }
        }
    }
    if messages.iter().all(|m| m["role"] == "system") {
        return Err(Error::invalid(
            "input",
            "Missing required parameter: 'input'.",
        ));
    }
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    settings(body, &mut out);
    Ok(Value::Object(out))
}

/// The sampling, limits, tools and format of a request, in chat's names.
fn settings(body: &Value, out: &mut Map<String, Value>) {
    for key in [
        "temperature",
        "top_p",
        "user",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
    ] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(max) = body.get("max_output_tokens").filter(|v| v.is_u64()) {
        out.insert("max_completion_tokens".into(), max.clone());
    }
    if let Some(effort) = body.pointer("/reasoning/effort").filter(|v| v.is_string()) {
        out.insert("reasoning_effort".into(), effort.clone());
    }
    match body.pointer("/text/format/type").and_then(Value::as_str) {
        Some("json_schema") => {
            let f = &body["text"]["format"];
            let mut schema = json!({"name": f.get("name").cloned().unwrap_or(json!("response")), "schema": f["schema"]});
            for key in ["strict", "description"] {
                if let Some(v) = f.get(key) {
                    schema[key] = v.clone();
                }
            }
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": schema}),
            );
        }
        Some("json_object") => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        _ => {}
    }
    let tools: Vec<Value> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(tool)
        .collect();
    if tools.is_empty() {
        return;
    }
    out.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = body.get("tool_choice") {
        out.insert("tool_choice".into(), tool_choice(choice));
    }
}

/// A Responses tool as a chat function; hosted tools have no chat form.
fn tool(t: &Value) -> Option<Value> {
    let mut f = Map::new();
    f.insert("name".into(), t.get("name")?.clone());
    match t["type"].as_str()? {
        "function" => {
            let params = t.get("parameters").filter(|p| p.is_object());
            f.insert(
                "parameters".into(),
                params
                    .cloned()
                    .unwrap_or(json!({"type": "object", "properties": {}})),
            );
            for key in ["description", "strict"] {
                if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                    f.insert(key.into(), v.clone());
                }
            }
        }
        "custom" => {
            let mut about = t["description"].as_str().unwrap_or_default().to_string();
            if let Some(grammar) = t.pointer("/format/definition").and_then(Value::as_str) {
                let syntax = t
                    .pointer("/format/syntax")
                    .and_then(Value::as_str)
                    .unwrap_or("lark");
                about.push_str(&format!(
                    "\n\nThe input must match this {syntax} grammar:\n{grammar}"
                ));
            }
            f.insert("description".into(), json!(about.trim()));
            f.insert("parameters".into(), json!({
                "type": "object",
                "properties": {"input": {"type": "string", "description": "The tool's freeform input."}},
                "required": ["input"],
                "additionalProperties": false,
            }));
        }
        other => {
            tracing::debug!(
                tool = other,
                "hosted tool left out for a chat-completions upstream"
            );
            return None;
        }
    }
    Some(json!({"type": "function", "function": f}))
}

fn tool_choice(choice: &Value) -> Value {
    if let Some(mode) = choice.as_str() {
        return json!(mode);
    }
    match choice["type"].as_str() {
        Some("function" | "custom") => {
            json!({"type": "function", "function": {"name": choice["name"]}})
        }
        Some("allowed_tools") => json!(choice["mode"].as_str().unwrap_or("auto")),
        _ => json!("auto"),
    }
}

/// Appends a message item as a chat message.
fn message(messages: &mut Vec<Value>, role: &str, content: &Value, at: &str) -> Result<(), Error> {
    let role = match role {
        "user" | "assistant" | "system" | "developer" => role,
        other => {
            return Err(Error::invalid(
                &format!("{at}.role"),
                format!("Invalid value: '{other}'. Supported values are: 'assistant', 'system', 'developer', and 'user'."),
            ))
        }
    };
    let parts = match content {
        Value::String(s) => {
            messages.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Value::Array(parts) => parts,
        _ => {
            return Err(Error::invalid(
                &format!("{at}.content"),
                "content must be a string or an array of parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        out.push(content_part(part, &format!("{at}.content[{j}]"))?);
    }
    let content = if role == "user" {
        Value::Array(out)
    } else {
        // Chat's other roles take text only.
        json!(out
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""))
    };
    messages.push(json!({"role": role, "content": content}));
    Ok(())
}

fn content_part(part: &Value, at: &str) -> Result<Value, Error> {
    Ok(match part["type"].as_str() {
        Some("input_text" | "output_text" | "text") => {
            json!({"type": "text", "text": part["text"]})
        }
        Some("refusal") => json!({"type": "text", "text": part["refusal"]}),
        Some("input_image") => {
            let Some(url) = part["image_url"].as_str() else {
                return Err(Error::invalid(at, "an input_image needs an image_url (a URL or a data: URL); file_id is not supported by this model's provider"));
            };
            let mut image = json!({"url": url});
            if let Some(d) = part.get("detail").filter(|d| d.is_string()) {
                image["detail"] = d.clone();
            }
            json!({"type": "image_url", "image_url": image})
        }
        Some("input_file") if part["file_data"].is_string() => json!({"type": "file", "file": {
            "filename": part.get("filename").cloned().unwrap_or(json!("file")),
            "file_data": part["file_data"],
        }}),
        other => {
            return Err(Error::invalid(
                &format!("{at}.type"),
                format!(
                    "content part type {:?} is not supported by this model's provider",
                    other.unwrap_or("?")
                ),
            ))
        }
    })
}

/// Appends a tool call to the assistant turn it belongs to (consecutive calls share one).
fn tool_call(messages: &mut Vec<Value>, call_id: &str, name: &str, arguments: &str) {
    let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
    if let Some(last) = messages.last_mut().filter(|m| m["role"] == "assistant") {
        if let Some(calls) = last.get_mut("tool_calls").and_then(Value::as_array_mut) {
            calls.push(call);
        } else {
            last["tool_calls"] = json!([call]);
        }
        return;
    }
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
}

/// A tool output (a string, or content parts) as chat's tool message text.
fn output_text(output: &Value) -> String {
    match output {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The output item for a chat tool call: a `function_call`, or a `custom_tool_call` for a
/// freeform tool (its `input` unwrapped).
pub fn call_item(
    call: &ResponsesCall,
    n: usize,
    call_id: &Value,
    name: &str,
    arguments: &str,
) -> Value {
    if call.is_custom(name) {
        let input = serde_json::from_str::<Value>(arguments)
            .ok()
            .and_then(|v| v.get("input").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| arguments.to_string());
        return json!({"type": "custom_tool_call", "id": call.item_id("ctc", n), "call_id": call_id, "name": name, "input": input, "status": "completed"});
    }
    json!({"type": "function_call", "id": call.item_id("fc", n), "call_id": call_id, "name": name, "arguments": arguments, "status": "completed"})
}

/// A finished assistant message item.
pub fn message_item(id: String, text: &str, refusal: Option<&str>) -> Value {
    let mut content = Vec::new();
    if !text.is_empty() || refusal.is_none() {
        content
            .push(json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []}));
    }
    if let Some(r) = refusal {
        content.push(json!({"type": "refusal", "refusal": r}));
    }
    json!({"type": "message", "id": id, "status": "completed", "role": "assistant", "content": content})
}

/// A finished reasoning item: the upstream's reasoning, as its summary, and Anthropic's signed
/// thinking blocks sealed in `encrypted_content` (see [`super::thinking`]).
pub fn reasoning_item(id: String, text: &str, signed: &[Value]) -> Value {
    let mut item =
        json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}]});
    if !signed.is_empty() {
        item["encrypted_content"] = Value::String(super::thinking::seal(signed));
    }
    item
}

/// Translates a chat completion into a Responses response object.
pub fn response(body: &Value, ctx: &Context) -> (Value, super::Usage) {
    let call = ctx.responses.clone().unwrap_or_default();
    let choice = body.pointer("/choices/0").unwrap_or(&Value::Null);
    let msg = &choice["message"];
    let mut output = Vec::new();
    let reasoning = msg["reasoning_content"].as_str().unwrap_or_default();
    let signed = msg["thinking_blocks"]
        .as_array()
        .map_or_else(Vec::new, |b| super::thinking::signed(b));
    if !reasoning.is_empty() || !signed.is_empty() {
        output.push(reasoning_item(call.item_id("rs", 0), reasoning, &signed));
    }
    let text = msg["content"].as_str().unwrap_or_default();
    let refusal = msg["refusal"].as_str();
    if !text.is_empty() || refusal.is_some() {
        output.push(message_item(
            call.item_id("msg", output.len()),
            text,
            refusal,
        ));
    }
    for c in msg["tool_calls"].as_array().into_iter().flatten() {
        let name = c
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let args = c
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        output.push(call_item(&call, output.len(), &c["id"], name, args));
    }
    let usage = chat_usage(&body["usage"]);
    let status = super::responses::status_of(choice["finish_reason"].as_str().unwrap_or("stop"));
    let model = body
        .get("model")
        .cloned()
        .unwrap_or_else(|| json!(ctx.model));
    let obj = super::responses::object(&call, ctx.created, &model, &status, output, Some(usage));
    (obj, usage)
}

#[cfg(test)]
mod tests;
