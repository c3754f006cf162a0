//! A Gemini-shaped call (`generateContent`, `streamGenerateContent`, `embedContent`,
//! `batchEmbedContents`) served by an OpenAI-format upstream: the request forward, the
//! response and the stream back. Anthropic upstreams are reached through OpenAI.

use serde_json::{json, Map, Value};

use super::{gemini, gemini_schema, openai, Context, Usage};
use crate::{error::Error, sse};

mod stream;
pub use stream::Stream;

/// Translates a Gemini `generateContent` request into an OpenAI chat completion request.
pub fn request(body: &Value) -> Result<Value, Error> {
    let body = &*super::gemini::camel_fields(body);
    let messages = turns(body)?;
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    settings(body, &mut out);
    tools(body, &mut out);
    Ok(Value::Object(out))
}

/// Gemini pairs calls and responses by name (and optional id); OpenAI needs ids: the calls
/// made so far and not yet answered, with the ids they were given.
#[derive(Default)]
struct Calls {
    pending: Vec<(String, String)>,
    next_id: usize,
}

impl Calls {
    /// A call's id (its own, or the next `call_N`), remembered until it is answered.
    fn open(&mut self, name: &str, id: Option<&str>) -> String {
        let id = id.map_or_else(|| format!("call_{}", self.next_id), str::to_string);
        self.next_id += 1;
        self.pending.push((name.to_string(), id.clone()));
        id
    }

    /// The id of the earliest open call named `name`.
    fn answer(&mut self, name: &str) -> Option<String> {
        let at = self.pending.iter().position(|(n, _)| n == name)?;
        Some(self.pending.remove(at).1)
    }
}

/// The system instruction and the turns as chat messages (calls given ids, responses
/// matched to them).
fn turns(body: &Value) -> Result<Vec<Value>, Error> {
    let mut messages = Vec::new();
    if let Some(system) = body.get("systemInstruction") {
        messages.push(json!({"role": "system", "content": parts_text(system)}));
    }
    let mut calls = Calls::default();
    let empty = Vec::new();
    for (i, content) in body
        .get("contents")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let role = content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("user");
        let parts = content
            .get("parts")
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        if role == "model" {
            messages.push(model_turn(parts, &mut calls));
        } else {
            user_turn(parts, i, &mut calls, &mut messages)?;
        }
    }
    Ok(messages)
}

/// A model turn: its text (thoughts left out) and its function calls, given ids.
fn model_turn(parts: &[Value], calls: &mut Calls) -> Value {
    let mut text = String::new();
    let mut out_calls = Vec::new();
    for p in parts {
        if p.get("thought") == Some(&Value::Bool(true)) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(call) = p.get("functionCall") {
            let name = call
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let id = calls.open(&name, call.get("id").and_then(Value::as_str));
            let args = call.get("args").cloned().unwrap_or(json!({}));
            out_calls.push(json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}));
        }
    }
    let mut msg = json!({"role": "assistant", "content": if text.is_empty() && !out_calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !out_calls.is_empty() {
        msg["tool_calls"] = Value::Array(out_calls);
    }
    msg
}

/// A user turn: function responses as `tool` messages, in place, then the rest as one user
/// message.
fn user_turn(
    parts: &[Value],
    i: usize,
    calls: &mut Calls,
    messages: &mut Vec<Value>,
) -> Result<(), Error> {
    let mut user_parts = Vec::new();
    for p in parts {
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            user_parts.push(json!({"type": "text", "text": t}));
        } else if let Some(d) = p.get("inlineData") {
            let url = format!(
                "data:{};base64,{}",
                d["mimeType"].as_str().unwrap_or("image/png"),
                d["data"].as_str().unwrap_or_default()
            );
            user_parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
        } else if let Some(f) = p.get("fileData") {
            user_parts.push(json!({"type": "image_url", "image_url": {"url": f["fileUri"]}}));
        } else if let Some(r) = p.get("functionResponse") {
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            let id = match r.get("id").and_then(Value::as_str) {
                Some(id) => id.to_string(),
                None => calls.answer(name).ok_or_else(|| {
                    Error::invalid(
                        &format!("contents[{i}].parts"),
                        format!("functionResponse {name:?} answers no earlier functionCall"),
                    )
                })?,
            };
            let response = r.get("response").cloned().unwrap_or(json!({}));
            let content = match response.get("result").or_else(|| response.get("output")) {
                Some(Value::String(s)) if response.as_object().is_some_and(|o| o.len() == 1) => {
                    s.clone()
                }
                _ => response.to_string(),
            };
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
        } else {
            return Err(Error::invalid(
                &format!("contents[{i}].parts"),
                "this part type is not supported by this model's provider",
            ));
        }
    }
    if !user_parts.is_empty() {
        let content = match user_parts.as_slice() {
            [only] if only["type"] == "text" => only["text"].clone(),
            _ => Value::Array(user_parts),
        };
        messages.push(json!({"role": "user", "content": content}));
    }
    Ok(())
}

/// `generationConfig`: sampling, limits, stop sequences and the response format.
fn settings(body: &Value, out: &mut Map<String, Value>) {
    let config = body.get("generationConfig").cloned().unwrap_or_default();
    for (from, to) in [
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("topK", "top_k"),
        ("maxOutputTokens", "max_tokens"),
        ("candidateCount", "n"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
    ] {
        if let Some(v) = config.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(stop) = config
        .get("stopSequences")
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty())
    {
        out.insert("stop".into(), Value::Array(stop.clone()));
    }
    if let Some(effort) = config.get("thinkingConfig").and_then(reasoning_effort) {
        out.insert("reasoning_effort".into(), Value::from(effort));
    }
    let schema = config
        .get("responseJsonSchema")
        .or_else(|| config.get("responseSchema"));
    let json_mime =
        config.get("responseMimeType").and_then(Value::as_str) == Some("application/json");
    match schema {
        Some(schema) => {
            let schema = gemini_schema::to_json_schema(schema);
            out.insert("response_format".into(), json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}));
        }
        None if json_mime => {
            out.insert("response_format".into(), json!({"type": "json_object"}));
        }
        None => {}
    }
}

/// The OpenAI `reasoning_effort` for a `thinkingConfig`: its `thinkingLevel`, or its
/// `thinkingBudget`'s nearest tier; none for a budget of 0 (off) or -1 (the model decides).
fn reasoning_effort(thinking: &Value) -> Option<&'static str> {
    match thinking.get("thinkingLevel").and_then(Value::as_str) {
        Some(level) if level.eq_ignore_ascii_case("low") => return Some("low"),
        Some(level) if level.eq_ignore_ascii_case("medium") => return Some("medium"),
        Some(level) if level.eq_ignore_ascii_case("high") => return Some("high"),
        _ => {}
    }
    let budget = thinking.get("thinkingBudget").and_then(Value::as_u64)?;
    (budget > 0).then(|| super::effort_for_budget(budget))
}

/// Function declarations as tools, and the tool config as the tool choice.
fn tools(body: &Value, out: &mut Map<String, Value>) {
    let decls: Vec<Value> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .map(|d| {
            let params = d
                .get("parametersJsonSchema")
                .or_else(|| d.get("parameters"))
                .cloned()
                .unwrap_or(json!({"type": "object", "properties": {}}));
            let mut f =
                json!({"name": d["name"], "parameters": gemini_schema::to_json_schema(&params)});
            if let Some(desc) = d.get("description") {
                f["description"] = desc.clone();
            }
            json!({"type": "function", "function": f})
        })
        .collect();
    if !decls.is_empty() {
        out.insert("tools".into(), Value::Array(decls));
        if let Some(cfg) = body.pointer("/toolConfig/functionCallingConfig") {
            let names = cfg.get("allowedFunctionNames").and_then(Value::as_array);
            let choice = match (
                cfg.get("mode").and_then(Value::as_str),
                names.map(Vec::as_slice),
            ) {
                (Some("NONE"), _) => json!("none"),
                (Some("ANY"), Some([one])) => {
                    json!({"type": "function", "function": {"name": one}})
                }
                (Some("ANY"), _) => json!("required"),
                _ => json!("auto"),
            };
            out.insert("tool_choice".into(), choice);
        }
    }
}

fn parts_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        _ => content
            .get("parts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
    }
}

/// The Gemini `finishReason` for an OpenAI `finish_reason`.
pub fn finish_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "MAX_TOKENS",
        "content_filter" => "SAFETY",
        _ => "STOP",
    }
}

/// A Gemini `functionCall` part; arguments that are not JSON become `{}`.
fn function_call_part(id: Value, name: Value, arguments: &str) -> Value {
    let args = serde_json::from_str::<Value>(arguments).unwrap_or(json!({}));
    json!({"functionCall": {"id": id, "name": name, "args": args}})
}

/// Translates an OpenAI chat completion, read typed, into a Gemini `GenerateContentResponse`.
pub fn response<'a>(body: &'a openai::Chunk<'a>, ctx: &'a Context) -> (gemini::Reply<'a>, Usage) {
    let usage = body.usage().unwrap_or_default();
    let candidates = body
        .choices
        .iter()
        .flatten()
        .map(|choice| {
            let msg = choice.said();
            let mut parts = Vec::new();
            // Reasoning aloud is a thought summary, as Gemini marks one.
            if let Some(text) = msg.reasoning_content.filled() {
                parts.push(gemini::ReplyPart::Text {
                    text,
                    thought: true,
                });
            }
            if let Some(text) = msg.content.filled() {
                parts.push(gemini::ReplyPart::Text {
                    text,
                    thought: false,
                });
            }
            for call in msg.tool_calls.iter().flatten() {
                let function = call.function.as_ref();
                let args = function.and_then(|f| f.arguments.0.as_deref());
                parts.push(gemini::ReplyPart::Call {
                    function_call: gemini::ReplyCall {
                        id: call.id.0.as_deref(),
                        name: function
                            .and_then(|f| f.name.0.as_deref())
                            .unwrap_or_default(),
                        args: openai::arguments_json(args),
                    },
                });
            }
            let finish = choice.finish_reason.0.as_deref().unwrap_or("stop");
            gemini::ReplyCandidate {
                content: gemini::ReplyContent {
                    role: "model",
                    parts,
                },
                finish_reason: finish_reason(finish),
                index: choice.index,
            }
        })
        .collect();
    let id = body.id.0.as_deref().unwrap_or("switchyard");
    let reply = gemini::Reply {
        candidates,
        usage_metadata: usage.into(),
        model_version: body.model.0.as_deref().unwrap_or(&ctx.model),
        response_id: id.trim_start_matches("chatcmpl-"),
    };
    (reply, usage)
}

/// Translates `embedContent` / `batchEmbedContents` into an OpenAI embeddings request.
pub fn embeddings_request(body: &Value) -> Result<Value, Error> {
    let body = &*super::gemini::camel_fields(body);
    let requests: Vec<&Value> = match body.get("requests").and_then(Value::as_array) {
        Some(r) => r.iter().collect(),
        None => vec![body],
    };
    let texts: Vec<String> = requests.iter().map(|r| parts_text(&r["content"])).collect();
    if texts.is_empty() {
        return Err(Error::invalid(
            "requests",
            "at least one content to embed is required",
        ));
    }
    let mut out = json!({"input": texts, "encoding_format": "float"});
    if let Some(d) = requests.first().and_then(|r| r.get("outputDimensionality")) {
        out["dimensions"] = d.clone();
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
