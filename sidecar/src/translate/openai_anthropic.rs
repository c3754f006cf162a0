//! An OpenAI-shaped call served by an Anthropic Messages upstream: the request forward,
//! the response and the stream back.

use serde_json::{json, value::RawValue, Map, Value};

use super::{data_url, error_message, openai, text_of, Context, Usage};
use crate::{error::Error, sse};

mod stream;
pub use stream::Stream;

/// The default `max_tokens` when an OpenAI caller sets none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The tool that carries a `json_schema` response format.
pub const JSON_TOOL: &str = "json_response";

/// Translates an OpenAI chat completion request into an Anthropic Messages request.
pub fn request(body: &Value, ctx: &mut Context) -> Result<Value, Error> {
    let mut out = Map::new();
    let (mut system, messages) = messages(body)?;
    response_format(body, &mut out, &mut system, ctx);
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    settings(body, &mut out);
    if !ctx.json_tool {
        tools(body, &mut out);
    }
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(Error::invalid(
            "n",
            "n > 1 is not supported by this model's provider",
        ));
    }
    if !thinking(&mut out, body) {
        // Carried thinking goes back only to a call that thinks.
        unthink(&mut out);
    }
    Ok(Value::Object(out))
}

/// A turn's content blocks (none when it is not a list).
fn blocks_of(m: Option<&Value>) -> &[Value] {
    m.and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

/// Takes carried thinking blocks out of the assistant turns.
fn unthink(out: &mut Map<String, Value>) {
    super::thinking::retain_blocks(out.get_mut("messages"), |b| {
        !matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking"))
    });
}

/// The turns, merged where a role repeats, and the system texts found among them.
fn messages(body: &Value) -> Result<(Vec<String>, Vec<Value>), Error> {
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let empty = Vec::new();
    let input = body
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for (i, m) in input.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.push(text_of(content)),
            "user" => push(&mut messages, "user", user_blocks(content, i)?),
            "assistant" => {
                // Signed thinking carried from an earlier Anthropic answer goes first.
                let carried = m.get("thinking_blocks").and_then(Value::as_array);
                let mut blocks = carried.map_or_else(Vec::new, |b| super::thinking::signed(b));
                let text = text_of(content);
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let f = call.get("function").unwrap_or(&Value::Null);
                    let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
                    let input: Value = if args.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(args).map_err(|_| {
                            Error::invalid(
                                &format!("messages[{i}].tool_calls"),
                                "tool call arguments must be a JSON object",
                            )
                        })?
                    };
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.get("id").cloned().unwrap_or(Value::Null),
                        "name": f.get("name").cloned().unwrap_or(Value::Null),
                        "input": input,
                    }));
                }
                if !blocks.is_empty() {
                    push(&mut messages, "assistant", blocks);
                }
            }
            "tool" => {
                let result = json!({
                    "type": "tool_result",
                    "tool_use_id": m.get("tool_call_id").cloned().unwrap_or(Value::Null),
                    "content": text_of(content),
                });
                push(&mut messages, "user", vec![result]);
            }
            other => {
                return Err(Error::invalid(
                    &format!("messages[{i}].role"),
                    format!("unsupported role {other:?}"),
                ))
            }
        }
    }
    Ok((system, messages))
}

/// `response_format`: JSON mode as an instruction, a JSON schema as a forced tool.
fn response_format(
    body: &Value,
    out: &mut Map<String, Value>,
    system: &mut Vec<String>,
    ctx: &mut Context,
) {
    if let Some(format) = body.get("response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                system.push("Respond with a single valid JSON object and nothing else.".into())
            }
            Some("json_schema") => {
                let schema = format
                    .pointer("/json_schema/schema")
                    .cloned()
                    .unwrap_or(json!({"type": "object"}));
                out.insert(
                    "tools".into(),
                    json!([{
                        "name": JSON_TOOL,
                        "description": "Respond with the answer, shaped by this schema.",
                        "input_schema": schema,
                    }]),
                );
                out.insert(
                    "tool_choice".into(),
                    json!({"type": "tool", "name": JSON_TOOL}),
                );
                ctx.json_tool = true;
            }
            _ => {}
        }
    }
}

/// `max_tokens` (Anthropic requires one), sampling, stop sequences and the end user.
fn settings(body: &Value, out: &mut Map<String, Value>) {
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max));
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
    ] {
        if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(user) = body.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
}

/// Function tools and the tool choice.
fn tools(body: &Value, out: &mut Map<String, Value>) {
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut tool = json!({
                    "name": f.get("name").cloned().unwrap_or(Value::Null),
                    "input_schema": f.get("parameters").cloned().unwrap_or(json!({"type": "object", "properties": {}})),
                });
                if let Some(d) = f.get("description") {
                    tool["description"] = d.clone();
                }
                tool
            })
            .collect();
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
            let mut choice = match body.get("tool_choice") {
                Some(Value::String(s)) if s == "required" => json!({"type": "any"}),
                Some(Value::String(s)) if s == "none" => json!({"type": "none"}),
                Some(Value::Object(o)) => {
                    let name = o.get("function").and_then(|f| f.get("name")).cloned();
                    json!({"type": "tool", "name": name.unwrap_or(Value::Null)})
                }
                _ => json!({"type": "auto"}),
            };
            if body.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
                choice["disable_parallel_tool_use"] = Value::Bool(true);
            }
            out.insert("tool_choice".into(), choice);
        }
    }
}

/// `reasoning_effort` as Anthropic's extended thinking: a token budget below `max_tokens`
/// (raised to make room), without the sampling settings thinking refuses. Left off where
/// Anthropic would refuse it: a forced tool choice, and in the middle of a tool loop unless
/// the assistant turn before carries its signed thinking blocks back (see
/// [`super::thinking`]). Whether thinking is on.
fn thinking(out: &mut Map<String, Value>, body: &Value) -> bool {
    let Some(budget) = body
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .and_then(super::thinking_budget)
        .filter(|b| *b > 0)
    else {
        return false;
    };
    let forced = out
        .get("tool_choice")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "any" || t == "tool");
    let turns = out
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mid_loop = blocks_of(turns.last())
        .iter()
        .any(|b| b["type"] == "tool_result");
    let signed = blocks_of(turns.iter().rev().find(|m| m["role"] == "assistant"))
        .first()
        .is_some_and(|b| matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking")));
    if forced || (mid_loop && !signed) {
        return false;
    }
    let budget = u64::from(budget);
    let max = out
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    if max <= budget {
        out.insert("max_tokens".into(), json!(budget + max));
    }
    out.remove("temperature");
    out.remove("top_k");
    if out
        .get("top_p")
        .and_then(Value::as_f64)
        .is_some_and(|p| p < 0.95)
    {
        out.remove("top_p");
    }
    out.insert(
        "thinking".into(),
        json!({"type": "enabled", "budget_tokens": budget}),
    );
    true
}

fn user_blocks(content: &Value, i: usize) -> Result<Vec<Value>, Error> {
    let Value::Array(parts) = content else {
        return Ok(vec![json!({"type": "text", "text": text_of(content)})]);
    };
    let mut blocks = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => blocks.push(
                json!({"type": "text", "text": part.get("text").cloned().unwrap_or_default()}),
            ),
            Some("image_url") => {
                let url = part
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let source = match data_url(url) {
                    Some((media_type, data)) => {
                        json!({"type": "base64", "media_type": media_type, "data": data})
                    }
                    None => json!({"type": "url", "url": url}),
                };
                blocks.push(json!({"type": "image", "source": source}));
            }
            Some("file") => {
                let data = part
                    .pointer("/file/file_data")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let Some((media_type, data)) = data_url(data) else {
                    return Err(Error::invalid(
                        &format!("messages[{i}].content"),
                        "file parts need file_data as a data URL",
                    ));
                };
                blocks.push(json!({"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}));
            }
            other => {
                return Err(Error::invalid(
                    &format!("messages[{i}].content"),
                    format!(
                        "content part type {:?} is not supported by this model's provider",
                        other.unwrap_or("?")
                    ),
                ))
            }
        }
    }
    Ok(blocks)
}

/// Appends blocks as a message, merging into the previous one when the role repeats
/// (Anthropic requires alternating roles).
fn push(messages: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if let Some(last) = messages.last_mut() {
        if last["role"] == role {
            if let Some(content) = last["content"].as_array_mut() {
                content.extend(blocks);
                return;
            }
        }
    }
    messages.push(json!({"role": role, "content": blocks}));
}

/// The OpenAI `finish_reason` for an Anthropic `stop_reason`.
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Translates an Anthropic Messages response into an OpenAI chat completion, read typed from
/// its JSON text (texts borrowed from it where they hold no escape).
pub fn response<'a>(
    raw: &'a [u8],
    ctx: &Context,
) -> Result<(openai::Completion<'a>, Usage), serde_json::Error> {
    super::an_object(raw)?;
    let body: super::anthropic::Message<'a> = serde_json::from_slice(raw)?;
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    let mut signed = Vec::new();
    for block in body.content {
        signed.extend(block.signed());
        let input = block.input.map_or("{}", RawValue::get);
        match block.kind.0.as_deref() {
            Some("text") => text.push_str(block.text.0.as_deref().unwrap_or_default()),
            Some("thinking") => thinking.push_str(block.thinking.0.as_deref().unwrap_or_default()),
            Some("tool_use") if ctx.json_tool => text.push_str(input),
            Some("tool_use") => calls.push(openai::ToolCall::function(
                block.id.0.unwrap_or_default(),
                block.name.0.unwrap_or_default(),
                input.into(),
            )),
            _ => {}
        }
    }
    let stop = body.stop_reason.filled().unwrap_or("end_turn");
    let finish = if ctx.json_tool && stop == "tool_use" {
        "stop"
    } else {
        finish_reason(stop)
    };
    let usage = body
        .usage
        .map_or_else(Usage::default, super::anthropic::usage);
    let mut message = openai::Message::assistant(text, calls, thinking);
    message.thinking_blocks = signed;
    let completion = openai::Completion::new(
        body.id.filled().unwrap_or("msg"),
        ctx.created,
        body.model.0.unwrap_or_else(|| ctx.model.clone().into()),
        vec![openai::CompletionChoice::new(0, message, finish)],
        usage,
    );
    Ok((completion, usage))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_whole_answer_is_read_typed_with_thinking_tools_and_usage_as_sent() {
        let raw = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[
              {"type":"thinking","thinking":"Look it up.","signature":"sig=="},
              {"type":"redacted_thinking","data":"sealed"},
              {"type":"text","text":"Let me check "},
              {"type":"server_tool_use","id":"srv_1","name":"web_search","input":{}},
              {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris","lat":48.856613999999997}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":5,"cache_read_input_tokens":100,"output_tokens":7}}"#;
        let ctx = Context {
            model: "via".into(),
            created: 1,
            ..Context::default()
        };
        let (completion, usage) = response(raw, &ctx).unwrap();
        let hub = serde_json::to_value(completion).unwrap();
        let message = &hub["choices"][0]["message"];
        assert_eq!(message["content"], "Let me check ");
        assert_eq!(message["reasoning_content"], "Look it up.");
        assert_eq!(
            message["thinking_blocks"],
            json!([{"type": "thinking", "thinking": "Look it up.", "signature": "sig=="},
                   {"type": "redacted_thinking", "data": "sealed"}])
        );
        // The arguments are the input's text as sent: numbers keep every digit.
        assert_eq!(
            message["tool_calls"],
            json!([{"id": "toolu_1", "type": "function", "function": {"name": "get_weather",
                "arguments": r#"{"city":"Paris","lat":48.856613999999997}"#}}])
        );
        assert_eq!(hub["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            (hub["id"].as_str(), hub["model"].as_str()),
            (Some("chatcmpl-msg_1"), Some("claude-sonnet-4-5"))
        );
        assert_eq!((usage.input, usage.cached, usage.output), (105, 100, 7));
        assert!(response(b"[1]", &ctx).is_err(), "not a message");
    }
}
