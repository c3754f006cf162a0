//! Gemini's `generateContent`, `streamGenerateContent?alt=sse` (each event a whole
//! `GenerateContentResponse`, framed `data: ...\r\n\r\n`), `embedContent` and
//! `batchEmbedContents`, from the API reference.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::combinators::BoxBody;
use serde_json::{json, Value};

use super::{chunks, json, openai::args_for, words, Fake, Received};

/// Gemini's error body (`google.rpc.Status`).
pub fn error(status: u16, message: &str) -> Value {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({"error": {"code": status, "message": message, "status": name}})
}

fn parts_text(content: &Value) -> String {
    content["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("")
}

/// The realistic answer: function calls when tools are declared, else an echo.
pub fn answer(fake: &Fake, r: &Received) -> Response<BoxBody<Bytes, std::io::Error>> {
    let b = &r.body;
    let model = r
        .path
        .trim_start_matches("/v1beta/models/")
        .split(':')
        .next()
        .unwrap_or("gemini")
        .to_string();
    if r.path.ends_with(":embedContent") {
        return json(
            200,
            &json!({"embedding": {"values": vector(&parts_text(&b["content"]), b["outputDimensionality"].as_u64())}}),
        );
    }
    if r.path.ends_with(":batchEmbedContents") {
        let all: Vec<Value> = b["requests"].as_array().into_iter().flatten().map(|q| json!({"values": vector(&parts_text(&q["content"]), q["outputDimensionality"].as_u64())})).collect();
        return json(200, &json!({"embeddings": all}));
    }
    let contents = b["contents"].as_array().cloned().unwrap_or_default();
    let prompt: u64 = contents.iter().map(|c| words(&parts_text(c))).sum::<u64>()
        + words(&parts_text(&b["systemInstruction"]));
    let last = contents.last().cloned().unwrap_or_default();
    let function_response = last["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|p| p.get("functionResponse"))
        .cloned();
    let mut text = match &function_response {
        Some(fr) => format!(
            "the tool said {}",
            fr["response"]["result"]
                .as_str()
                .map_or_else(|| fr["response"].to_string(), str::to_string)
        ),
        None => parts_text(&last),
    };
    if b.pointer("/generationConfig/responseMimeType") == Some(&json!("application/json")) {
        let schema = b
            .pointer("/generationConfig/responseJsonSchema")
            .or_else(|| b.pointer("/generationConfig/responseSchema"));
        text = super::instance_of(schema, &text).to_string();
    }
    let mut finish = "STOP";
    for s in b
        .pointer("/generationConfig/stopSequences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if let Some(pos) = text.find(s) {
            text.truncate(pos);
        }
    }
    if let Some(max) = b
        .pointer("/generationConfig/maxOutputTokens")
        .and_then(Value::as_u64)
    {
        if words(&text) > max {
            text = text
                .split_whitespace()
                .take(max as usize)
                .collect::<Vec<_>>()
                .join(" ");
            finish = "MAX_TOKENS";
        }
    }
    let decls = b
        .pointer("/tools/0/functionDeclarations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mode = b
        .pointer("/toolConfig/functionCallingConfig/mode")
        .and_then(Value::as_str)
        .unwrap_or("AUTO");
    let calls: Vec<Value> = if !decls.is_empty() && function_response.is_none() && mode != "NONE" {
        let n = if text.contains("parallel") { 2 } else { 1 };
        // Declarations carry `parameters` (OpenAPI subset) or `parametersJsonSchema`, which
        // proto3 JSON also reads under its .proto name (Google's Python SDK sends it so).
        let schema = |d: &Value| -> Value {
            d.get("parametersJsonSchema")
                .or_else(|| d.get("parameters_json_schema"))
                .or_else(|| d.get("parameters"))
                .cloned()
                .unwrap_or_default()
        };
        let decl = decls
            .iter()
            .find(|d| {
                text.contains("by running `") && schema(d)["properties"].get("command").is_some()
            })
            .unwrap_or(&decls[0]);
        (0..n).map(|i| json!({"functionCall": {"name": decl["name"], "args": args_for(&schema(decl), i, &text)}})).collect()
    } else {
        Vec::new()
    };
    let candidates_tokens = if calls.is_empty() {
        words(&text)
    } else {
        5 * calls.len() as u64
    };
    let mut usage = json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates_tokens, "totalTokenCount": prompt + candidates_tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]});
    // With `includeThoughts`, a thought summary part comes first and its tokens are counted
    // in `thoughtsTokenCount` (outside `candidatesTokenCount`).
    let thought = (b.pointer("/generationConfig/thinkingConfig/includeThoughts")
        == Some(&json!(true)))
    .then(|| format!("**Considering the request** The user asks: {text}"));
    if let Some(t) = &thought {
        let n = words(t);
        usage["thoughtsTokenCount"] = json!(n);
        usage["totalTokenCount"] = json!(prompt + candidates_tokens + n);
    }
    let thought_part = thought.map(|t| json!({"text": t, "thought": true}));
    let response = |parts: Value, finish: Option<&str>, usage: Option<&Value>| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        let mut r = json!({"candidates": [candidate], "modelVersion": model, "responseId": "fakeResponseId"});
        if let Some(u) = usage {
            r["usageMetadata"] = u.clone();
        }
        r
    };
    if r.path.ends_with(":streamGenerateContent") {
        let mut events = Vec::new();
        if let Some(p) = &thought_part {
            events.push(response(json!([p]), None, None));
        }
        if calls.is_empty() {
            let pieces = chunks(&text);
            let n = pieces.len();
            for (i, piece) in pieces.into_iter().enumerate() {
                let last = i + 1 == n;
                events.push(response(
                    json!([{"text": piece}]),
                    last.then_some(finish),
                    last.then_some(&usage),
                ));
            }
            if n == 0 {
                events.push(response(json!([{"text": ""}]), Some(finish), Some(&usage)));
            }
        } else {
            events.push(response(json!(calls), Some("STOP"), Some(&usage)));
        }
        let events = events
            .into_iter()
            .map(|e| (Duration::from_millis(1), format!("data: {e}\r\n\r\n")))
            .collect();
        return fake.sse(events, false);
    }
    let mut parts = if calls.is_empty() {
        vec![json!({"text": text})]
    } else {
        calls
    };
    if let Some(p) = thought_part {
        parts.insert(0, p);
    }
    json(200, &response(json!(parts), Some(finish), Some(&usage)))
}

fn vector(text: &str, dims: Option<u64>) -> Vec<f64> {
    (0..dims.unwrap_or(8))
        .map(|d| ((text.len() as u64 + d) % 5) as f64 / 5.0)
        .collect()
}
