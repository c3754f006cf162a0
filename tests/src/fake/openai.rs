//! OpenAI's Chat Completions and Embeddings APIs (also Azure OpenAI's), from the API
//! reference: `chat.completion` objects, `chat.completion.chunk` SSE ending in `data: [DONE]`,
//! the usage chunk with empty `choices` when `stream_options.include_usage` is set.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::combinators::BoxBody;
use serde_json::{json, Value};

use super::{chunks, json, last_user_text, text, words, Fake, Received};

/// OpenAI's error body.
pub fn error(kind: &str, message: &str) -> Value {
    let code = match kind {
        "authentication_error" => json!("invalid_api_key"),
        "not_found_error" => json!("unknown_url"),
        _ => Value::Null,
    };
    let kind = if kind == "authentication_error" || kind == "not_found_error" {
        "invalid_request_error"
    } else {
        kind
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// Arguments that fit a tool's JSON schema (its required properties, or all when it names
/// none): strings get `values[i]`, numbers 1, booleans true. A command property (`cmd`,
/// `command`) gets the prompt's first back-quoted text, so an agent can be asked to run
/// something: "create it with `printf hi > hello.txt`".
pub fn args_for(schema: &Value, i: usize, prompt: &str) -> Value {
    let values = ["Paris", "Tokyo", "Lima"];
    let quoted = prompt
        .rsplit_once("by running `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(cmd, _)| cmd);
    let required: Option<Vec<&str>> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect());
    let mut args = serde_json::Map::new();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        if required
            .as_ref()
            .is_some_and(|r| !r.contains(&name.as_str()))
        {
            continue;
        }
        let v = match (prop["type"].as_str(), quoted) {
            (Some("number") | Some("integer"), _) => json!(1),
            (Some("boolean"), _) => json!(true),
            (Some("string"), Some(cmd)) if name == "cmd" || name == "command" => json!(cmd),
            (Some("array"), Some(cmd)) if name == "command" => json!(["bash", "-lc", cmd]),
            _ => json!(values[i % values.len()]),
        };
        args.insert(name.clone(), v);
    }
    Value::Object(args)
}

/// The realistic answer: embeddings, tool calls when tools are offered (two when the
/// prompt says "parallel"), or an echo of the last user message.
pub fn answer(fake: &Fake, r: &Received) -> Response<BoxBody<Bytes, std::io::Error>> {
    let b = &r.body;
    let model = if fake.api == super::Api::Azure {
        r.path.split('/').nth(3).unwrap_or("deployment").to_string()
    } else {
        b["model"].as_str().unwrap_or("gpt").to_string()
    };
    if r.path.ends_with("/embeddings") {
        return embeddings(b, &model);
    }
    let messages = b["messages"].as_array().cloned().unwrap_or_default();
    let prompt: u64 = messages.iter().map(|m| words(&text(&m["content"]))).sum();
    let last_is_tool = messages.last().is_some_and(|m| m["role"] == "tool");
    let tools = b["tools"].as_array().cloned().unwrap_or_default();
    let mut content = if last_is_tool {
        format!(
            "the tool said {}",
            text(&messages.last().unwrap()["content"])
        )
    } else {
        last_user_text(&messages, "user")
    };
    if b.pointer("/response_format/type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("json"))
    {
        let schema = b.pointer("/response_format/json_schema/schema");
        content = super::instance_of(schema, &content).to_string();
    }
    let mut finish = "stop";
    if let Some(stop) = b["stop"].as_str().map(|s| vec![s.to_string()]).or_else(|| {
        b["stop"].as_array().map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
    }) {
        if let Some(pos) = stop.iter().filter_map(|s| content.find(s.as_str())).min() {
            content.truncate(pos);
        }
    }
    let max = b["max_completion_tokens"]
        .as_u64()
        .or(b["max_tokens"].as_u64());
    if let Some(max) = max {
        if words(&content) > max {
            content = content
                .split_whitespace()
                .take(max as usize)
                .collect::<Vec<_>>()
                .join(" ");
            finish = "length";
        }
    }
    let calls: Vec<Value> = if !tools.is_empty() && !last_is_tool && b["tool_choice"] != "none" {
        let n = if last_user_text(&messages, "user").contains("parallel") {
            2
        } else {
            1
        };
        let prompt = last_user_text(&messages, "user");
        let tool = super::pick_tool(&tools, |t| &t["function"]["parameters"], &prompt);
        (0..n)
            .map(|i| {
                let f = &tool["function"];
                json!({"id": format!("call_fake{i}"), "type": "function", "function": {"name": f["name"], "arguments": args_for(&f["parameters"], i, &prompt).to_string()}})
            })
            .collect()
    } else {
        Vec::new()
    };
    if !calls.is_empty() {
        finish = "tool_calls";
        content.clear();
    }
    let completion = words(&content) + calls.len() as u64 * 5;
    let usage = json!({
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    });
    let created = 1_700_000_000;
    if b["stream"] == true {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            )
        };
        let mut events = vec![chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            Value::Null,
        )];
        for piece in chunks(&content) {
            events.push(chunk(json!({"content": piece}), Value::Null));
        }
        for (i, c) in calls.iter().enumerate() {
            events.push(chunk(json!({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": ""}}]}), Value::Null));
            let args = c["function"]["arguments"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mid = args.len() / 2;
            for part in [&args[..mid], &args[mid..]] {
                events.push(chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
        }
        events.push(chunk(json!({}), json!(finish)));
        if b.pointer("/stream_options/include_usage") == Some(&json!(true)) {
            events.push(format!("data: {}\n\n", json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": "fp_fake", "choices": [], "usage": usage})));
        }
        events.push("data: [DONE]\n\n".into());
        return fake.sse(
            events
                .into_iter()
                .map(|e| (Duration::from_millis(1), e))
                .collect(),
            false,
        );
    }
    let mut message = json!({"role": "assistant", "content": if calls.is_empty() { json!(content) } else { Value::Null }, "refusal": null, "annotations": []});
    if !calls.is_empty() {
        message["tool_calls"] = json!(calls);
    }
    json(
        200,
        &json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage, "service_tier": "default", "system_fingerprint": "fp_fake",
        }),
    )
}

fn embeddings(b: &Value, model: &str) -> Response<BoxBody<Bytes, std::io::Error>> {
    let inputs: Vec<String> = match &b["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let dims = b["dimensions"].as_u64().unwrap_or(8) as usize;
    let base64 = b["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v: Vec<f32> = (0..dims)
                .map(|d| ((t.len() + d) % 7) as f32 / 7.0)
                .collect();
            let embedding = if base64 {
                json!(b64(&v
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect::<Vec<u8>>()))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|t| words(t)).sum();
    json(
        200,
        &json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// Standard base64 (the fakes avoid depending on the code under test).
pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
