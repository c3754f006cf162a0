//! A chat-completions call (and, through it, Anthropic and Gemini calls) served by an
//! upstream called with the Responses API (`api: responses`): current GPT models refuse tools
//! together with reasoning on chat completions. The request forward, the response and the
//! stream back.

use std::{borrow::Cow, collections::BTreeMap};

use serde::Deserialize;
use serde_json::{json, value::RawValue, Map, Value};

use super::{
    error_message, openai,
    responses::{self, usage as responses_usage},
    text_of, Context, Usage,
};
use crate::{error::Error, skim::Text, sse};

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
    let stopped = obj.pointer("/incomplete_details/reason");
    finish(stopped.and_then(Value::as_str), called)
}

/// The chat `finish_reason` for why an answer stopped short, if it did.
fn finish(stopped: Option<&str>, called: bool) -> &'static str {
    match stopped {
        Some("max_output_tokens") => "length",
        Some("content_filter") => "content_filter",
        _ if called => "tool_calls",
        _ => "stop",
    }
}

/// A whole Responses object, the fields a translation reads: texts borrowed from the body
/// where they hold no escape, a freeform tool's input as the JSON text sent.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Answer<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    created_at: Option<Value>,
    #[serde(borrow)]
    model: Text<'a>,
    #[serde(borrow)]
    output: Option<Vec<Item<'a>>>,
    #[serde(borrow)]
    incomplete_details: Option<Incomplete<'a>>,
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
}

/// An output item: a message, a function call or a freeform tool call (others are skipped).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Item<'a> {
    #[serde(borrow, rename = "type")]
    kind: Text<'a>,
    #[serde(borrow)]
    content: Option<Vec<Part<'a>>>,
    #[serde(borrow)]
    call_id: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    arguments: Text<'a>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
}

/// A message's part: output text or a refusal.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Part<'a> {
    #[serde(borrow)]
    text: Text<'a>,
    #[serde(borrow)]
    refusal: Text<'a>,
}

/// Why an answer stopped short.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Incomplete<'a> {
    #[serde(borrow)]
    reason: Text<'a>,
}

/// A Responses output item's tool call in chat's shape (a freeform tool's input wrapped as
/// `{"input": ...}`).
fn chat_call<'a>(item: Item<'a>) -> Option<openai::ToolCall<'a>> {
    let arguments = match item.kind.0.as_deref()? {
        "function_call" => item.arguments.0.unwrap_or(Cow::Borrowed("{}")),
        "custom_tool_call" => {
            let input = item.input.map_or("null", RawValue::get);
            Cow::Owned(format!("{{\"input\":{input}}}"))
        }
        _ => return None,
    };
    Some(openai::ToolCall::function(
        item.call_id.0.unwrap_or_default(),
        item.name.0.unwrap_or_default(),
        arguments,
    ))
}

/// Translates a Responses response object into a chat completion, read typed from its text.
pub fn response<'a>(
    raw: &'a [u8],
    ctx: &Context,
) -> Result<(openai::Completion<'a>, Usage), serde_json::Error> {
    super::an_object(raw)?;
    let body: Answer<'a> = serde_json::from_slice(raw)?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in body.output.into_iter().flatten() {
        if item.kind.0.as_deref() == Some("message") {
            for part in item.content.iter().flatten() {
                if let Some(t) = part.text.0.as_deref().or(part.refusal.0.as_deref()) {
                    text.push_str(t);
                }
            }
        } else if let Some(call) = chat_call(item) {
            calls.push(call);
        }
    }
    let usage = body.usage.map_or_else(Usage::default, responses_usage);
    let stopped = body
        .incomplete_details
        .as_ref()
        .and_then(|d| d.reason.filled());
    let finish = finish(stopped, !calls.is_empty());
    let id = body
        .id
        .filled()
        .unwrap_or("resp")
        .trim_start_matches("resp_");
    let created = body.created_at.as_ref().and_then(Value::as_u64);
    let message = openai::Message::assistant(text, calls, String::new());
    let completion = openai::Completion::new(
        id,
        created.unwrap_or(ctx.created),
        body.model.0.unwrap_or_else(|| ctx.model.clone().into()),
        vec![openai::CompletionChoice::new(0, message, finish)],
        usage,
    );
    Ok((completion, usage))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_whole_answer_is_read_typed_with_text_calls_a_freeform_input_and_usage() {
        let raw = br#"{"id":"resp_9","object":"response","created_at":1700,"model":"gpt-5",
            "status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},
            "output":[
              {"type":"reasoning","id":"rs_1","summary":[]},
              {"type":"message","role":"assistant","content":[
                {"type":"output_text","text":"Patching \"it\"","annotations":[]},
                {"type":"refusal","refusal":" now"}]},
              {"type":"function_call","call_id":"call_1","name":"f","arguments":"{\"lat\": 48.856613999999997}"},
              {"type":"custom_tool_call","call_id":"call_2","name":"apply_patch","input":"*** Begin Patch"}],
            "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},
              "output_tokens":6,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":16}}"#;
        let ctx = Context::default();
        let (completion, usage) = response(raw, &ctx).unwrap();
        let out = serde_json::to_value(completion).unwrap();
        assert_eq!(out["id"], "chatcmpl-9");
        assert_eq!(
            (out["created"].as_u64(), out["model"].as_str()),
            (Some(1700), Some("gpt-5"))
        );
        let choice = &out["choices"][0];
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(choice["message"]["content"], "Patching \"it\" now");
        assert_eq!(
            choice["message"]["tool_calls"],
            json!([
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": r#"{"lat": 48.856613999999997}"#}},
                {"id": "call_2", "type": "function", "function": {"name": "apply_patch", "arguments": r#"{"input":"*** Begin Patch"}"#}},
            ])
        );
        assert_eq!(
            (usage.input, usage.cached, usage.output, usage.reasoning),
            (10, 4, 6, 2)
        );
        assert!(response(b"[]", &ctx).is_err(), "not an answer");
        let (empty, _) = response(br#"{"output":null}"#, &ctx).unwrap();
        assert_eq!(
            serde_json::to_value(empty).unwrap()["choices"][0]["finish_reason"],
            "stop"
        );
    }
}
