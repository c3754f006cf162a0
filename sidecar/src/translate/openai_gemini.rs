//! An OpenAI-shaped call served by a Gemini upstream: `generateContent`, the SSE stream of
//! `streamGenerateContent`, and `embedContent` / `batchEmbedContents`.

use serde_json::{json, value::RawValue, Map, Value};

use super::{
    data_url, error_message, gemini::Candidate, gemini_schema, openai, text_of, Context, Usage,
};
use crate::{error::Error, sse};

mod stream;
pub use stream::Stream;

/// Translates an OpenAI chat completion request into a Gemini `generateContent` request.
pub fn request(body: &Value) -> Result<Value, Error> {
    let (system, contents) = turns(body)?;
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let config = generation_config(body)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    tools(body, &mut out);
    Ok(Value::Object(out))
}

/// The turns as Gemini contents (calls and their responses matched by name), and the
/// system instruction's parts.
fn turns(body: &Value) -> Result<(Vec<Value>, Vec<Value>), Error> {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    let mut call_names: Vec<(String, String)> = Vec::new();
    let empty = Vec::new();
    for (i, m) in body
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let content = m.get("content").unwrap_or(&Value::Null);
        match m.get("role").and_then(Value::as_str).unwrap_or_default() {
            "system" | "developer" => system.push(json!({"text": text_of(content)})),
            "user" => push(&mut contents, "user", user_parts(content, i)?),
            "assistant" => {
                let parts = model_parts(m, content, i, &mut call_names)?;
                if !parts.is_empty() {
                    push(&mut contents, "model", parts);
                }
            }
            "tool" => push(
                &mut contents,
                "user",
                vec![function_response(m, content, i, &call_names)?],
            ),
            other => {
                return Err(Error::invalid(
                    &format!("messages[{i}].role"),
                    format!("unsupported role {other:?}"),
                ))
            }
        }
    }
    Ok((system, contents))
}

/// An assistant message as model parts: its text, then its tool calls as function calls
/// (their ids remembered with their names, which Gemini matches responses by).
fn model_parts(
    m: &Value,
    content: &Value,
    i: usize,
    call_names: &mut Vec<(String, String)>,
) -> Result<Vec<Value>, Error> {
    let mut parts = Vec::new();
    let text = text_of(content);
    if !text.is_empty() {
        parts.push(json!({"text": text}));
    }
    for call in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let args: Value = serde_json::from_str(args).map_err(|_| {
            Error::invalid(
                &format!("messages[{i}].tool_calls"),
                "tool call arguments must be a JSON object",
            )
        })?;
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        call_names.push((id.to_string(), name.to_string()));
        parts.push(json!({"functionCall": {"name": name, "args": args}}));
    }
    Ok(parts)
}

/// A tool message as a function response, named after the call it answers.
fn function_response(
    m: &Value,
    content: &Value,
    i: usize,
    call_names: &[(String, String)],
) -> Result<Value, Error> {
    let id = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = call_names
        .iter()
        .find(|(i, _)| i == id)
        .map(|(_, n)| n.clone())
        .ok_or_else(|| {
            Error::invalid(
                &format!("messages[{i}].tool_call_id"),
                format!("no earlier tool call has id {id:?}"),
            )
        })?;
    let text = text_of(content);
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"result": text}),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

/// `generationConfig`: sampling, limits, stop sequences, JSON output and thinking.
fn generation_config(body: &Value) -> Result<Map<String, Value>, Error> {
    let mut config = Map::new();
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"));
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ] {
        if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
            config.insert(to.into(), v.clone());
        }
    }
    if let Some(max) = max.filter(|v| !v.is_null()) {
        config.insert("maxOutputTokens".into(), max.clone());
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            config.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    match body
        .pointer("/response_format/type")
        .and_then(Value::as_str)
    {
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) = body.pointer("/response_format/json_schema/schema") {
                config.insert("responseSchema".into(), gemini_schema::sanitize(schema));
            }
        }
        _ => {}
    }
    if let Some(budget) = body
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .and_then(super::thinking_budget)
    {
        // Thought summaries too, so the reasoning reaches the caller as it does from OpenAI.
        let thinking = if budget > 0 {
            json!({"thinkingBudget": budget, "includeThoughts": true})
        } else {
            json!({"thinkingBudget": budget})
        };
        config.insert("thinkingConfig".into(), thinking);
    }
    Ok(config)
}

/// Function declarations and the tool config.
fn tools(body: &Value, out: &mut Map<String, Value>) {
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let decls: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut d = json!({"name": f["name"]});
                if let Some(desc) = f.get("description") {
                    d["description"] = desc.clone();
                }
                if let Some(p) = f.get("parameters") {
                    d["parameters"] = gemini_schema::sanitize(p);
                }
                d
            })
            .collect();
        if !decls.is_empty() {
            out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
            let config = match body.get("tool_choice") {
                Some(Value::String(s)) if s == "required" => json!({"mode": "ANY"}),
                Some(Value::String(s)) if s == "none" => json!({"mode": "NONE"}),
                Some(Value::Object(o)) => {
                    json!({"mode": "ANY", "allowedFunctionNames": [o.get("function").and_then(|f| f.get("name")).cloned().unwrap_or_default()]})
                }
                _ => json!({"mode": "AUTO"}),
            };
            out.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
        }
    }
}

fn user_parts(content: &Value, i: usize) -> Result<Vec<Value>, Error> {
    let Value::Array(parts) = content else {
        return Ok(vec![json!({"text": text_of(content)})]);
    };
    parts
        .iter()
        .map(|part| match part.get("type").and_then(Value::as_str) {
            Some("text") => Ok(json!({"text": part["text"]})),
            Some("image_url") => {
                let url = part
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Ok(match data_url(url) {
                    Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
                    None => json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}),
                })
            }
            Some("file") => {
                let data = part
                    .pointer("/file/file_data")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                data_url(data)
                    .map(|(mime, data)| json!({"inlineData": {"mimeType": mime, "data": data}}))
                    .ok_or_else(|| {
                        Error::invalid(
                            &format!("messages[{i}].content"),
                            "file parts need file_data as a data URL",
                        )
                    })
            }
            other => Err(Error::invalid(
                &format!("messages[{i}].content"),
                format!(
                    "content part type {:?} is not supported by this model's provider",
                    other.unwrap_or("?")
                ),
            )),
        })
        .collect()
}

fn guess_mime(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    let path = lower.split(['?', '#']).next().unwrap_or_default();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        _ => "image/jpeg",
    }
}

fn push(contents: &mut Vec<Value>, role: &str, parts: Vec<Value>) {
    if let Some(last) = contents.last_mut() {
        if last["role"] == role {
            if let Some(p) = last["parts"].as_array_mut() {
                p.extend(parts);
                return;
            }
        }
    }
    contents.push(json!({"role": role, "parts": parts}));
}

/// The OpenAI `finish_reason` for a Gemini `finishReason`.
pub fn finish_reason(reason: &str, has_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if has_calls => "tool_calls",
        _ => "stop",
    }
}

/// A candidate's text, thought summaries and function calls (numbered from `first_call`).
fn parts<'a>(
    candidate: &Candidate<'a>,
    first_call: usize,
) -> (String, String, Vec<openai::ToolCall<'a>>) {
    let mut text = String::new();
    let mut thoughts = String::new();
    let mut calls = Vec::new();
    for part in candidate.parts() {
        let t = part.text.0.as_deref();
        if part.thought == Some(Value::Bool(true)) {
            thoughts.push_str(t.unwrap_or_default());
            continue;
        }
        if let Some(t) = t {
            text.push_str(t);
        }
        if let Some(call) = &part.function_call {
            let index = first_call + calls.len();
            let id = call.id.0.clone();
            calls.push(openai::ToolCall {
                index: Some(index),
                ..openai::ToolCall::function(
                    id.unwrap_or_else(|| format!("call_{index}").into()),
                    call.name.0.clone().unwrap_or_default(),
                    call.args.map_or("{}", RawValue::get).into(),
                )
            });
        }
    }
    (text, thoughts, calls)
}

/// Translates a whole Gemini `GenerateContentResponse` into an OpenAI chat completion, read
/// typed from its text.
pub fn response<'a>(
    raw: &'a [u8],
    ctx: &Context,
) -> Result<(openai::Completion<'a>, Usage), serde_json::Error> {
    super::an_object(raw)?;
    let body: super::gemini::Response<'a> = serde_json::from_slice(raw)?;
    let usage = body
        .usage_metadata
        .as_ref()
        .map_or_else(Usage::default, super::gemini::usage);
    let mut choices = Vec::new();
    for (i, candidate) in body.candidates.iter().flatten().enumerate() {
        let (text, thoughts, mut calls) = parts(candidate, 0);
        for c in &mut calls {
            c.index = None;
        }
        let finish = finish_reason(
            candidate.finish_reason.0.as_deref().unwrap_or("STOP"),
            !calls.is_empty(),
        );
        let message = openai::Message::assistant(text, calls, thoughts);
        choices.push(openai::CompletionChoice::new(i, message, finish));
    }
    if choices.is_empty() {
        // The prompt itself was blocked (promptFeedback.blockReason).
        let message = openai::Message::assistant(String::new(), Vec::new(), String::new());
        choices.push(openai::CompletionChoice::new(0, message, "content_filter"));
    }
    let completion = openai::Completion::new(
        body.response_id.filled().unwrap_or("gemini"),
        ctx.created,
        body.model_version
            .0
            .unwrap_or_else(|| ctx.model.clone().into()),
        choices,
        usage,
    );
    Ok((completion, usage))
}

/// The inputs of an OpenAI embeddings request, as strings.
pub fn embedding_inputs(body: &Value) -> Result<Vec<String>, Error> {
    match body.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) && !items.is_empty() => {
            Ok(items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect())
        }
        Some(Value::Array(_)) => Err(Error::invalid(
            "input",
            "this model's provider takes text inputs only, not token arrays",
        )),
        _ => Err(Error::invalid(
            "input",
            "input must be a string or an array of strings",
        )),
    }
}

/// Translates an OpenAI embeddings request into a Gemini `batchEmbedContents` request.
pub fn embeddings_request(body: &Value, model: &str) -> Result<Value, Error> {
    let dims = body.get("dimensions").cloned();
    let requests: Vec<Value> = embedding_inputs(body)?
        .into_iter()
        .map(|text| {
            let mut r =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}});
            if let Some(d) = &dims {
                r["outputDimensionality"] = d.clone();
            }
            r
        })
        .collect();
    match <[Value; 1]>::try_from(requests) {
        Ok([mut one]) => {
            if let Some(o) = one.as_object_mut() {
                o.remove("model");
            }
            Ok(one)
        }
        Err(many) => Ok(json!({"requests": many})),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_whole_answer_is_read_typed_with_thoughts_calls_usage_and_a_blocked_prompt() {
        let ctx = Context {
            model: "via".into(),
            created: 1,
            ..Context::default()
        };
        let raw = br#"{"candidates":[{"content":{"role":"model","parts":[
              {"text":"Weighing it.","thought":true},
              {"functionCall":{"name":"get_weather","args":{"city":"Paris","lat":48.856613999999997}}}]},
            "finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":3,"thoughtsTokenCount":2,"totalTokenCount":9},
            "modelVersion":"gemini-2.5-flash","responseId":"r1"}"#;
        let (completion, usage) = response(raw, &ctx).unwrap();
        let hub = serde_json::to_value(completion).unwrap();
        let message = &hub["choices"][0]["message"];
        assert_eq!(message["content"], Value::Null);
        assert_eq!(message["reasoning_content"], "Weighing it.");
        // The arguments are the args' text as sent: numbers keep every digit.
        assert_eq!(
            message["tool_calls"],
            json!([{"id": "call_0", "type": "function", "function": {"name": "get_weather",
                "arguments": r#"{"city":"Paris","lat":48.856613999999997}"#}}])
        );
        assert_eq!(hub["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            (hub["id"].as_str(), hub["model"].as_str()),
            (Some("chatcmpl-r1"), Some("gemini-2.5-flash"))
        );
        assert_eq!((usage.input, usage.output, usage.reasoning), (4, 5, 2));

        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":4}}"#;
        let hub = serde_json::to_value(response(blocked, &ctx).unwrap().0).unwrap();
        assert_eq!(hub["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(hub["model"], "via");
        assert!(response(b"[]", &ctx).is_err(), "not an answer");
    }
}
