//! The `mock` provider: answers locally and deterministically, in OpenAI's format, after
//! `latency`; echoes the last user message (or says `response`), streams it in a few chunks,
//! counts words as tokens, and fails a `failureRate` fraction of calls with `failureStatus`.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use switchyard_crds::proxy::{MockSettings, Provider};

use super::Adapter;
use crate::{
    dialect::Operation,
    translate::{embeddings_list, now_secs, openai, text_of, Usage},
    upstream::Reply,
};

/// The mock adapter (its URL is never dialled).
pub struct Mock;

impl Adapter for Mock {
    fn url(
        &self,
        _p: &Provider,
        op: Operation,
        _model: &str,
        _stream: bool,
        _single: bool,
    ) -> String {
        format!(
            "http://mock.invalid/v1/{}",
            if op == Operation::Chat {
                "chat/completions"
            } else {
                "embeddings"
            }
        )
    }

    fn authorize(&self, _p: &Provider, _headers: &mut HeaderMap) {}
}

/// The dimension of mock embeddings when the request names none.
const EMBEDDING_DIMENSIONS: usize = 16;

/// Answers an OpenAI-format request as the provider's mock settings say; an error when the
/// bytes are not JSON (never from the gateway's own translations).
pub async fn serve(p: &Provider, op: Operation, model: &str, body: &[u8]) -> Result<Reply, String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let settings = p.mock.clone().unwrap_or_default();
    Ok(reply(&settings, op, &body, model).await)
}

/// Answers an OpenAI-format request body the way the settings say.
async fn reply(settings: &MockSettings, op: Operation, body: &Value, model: &str) -> Reply {
    if let Some(latency) = settings.latency {
        tokio::time::sleep(latency.into()).await;
    }
    let rate = settings.failure_rate.unwrap_or(0.0);
    if rate > 0.0 && fastrand::f64() < rate {
        let status = StatusCode::from_u16(settings.failure_status.unwrap_or(503))
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let body = json!({"error": {"message": "mock provider failure (failureRate)", "type": "server_error", "param": null, "code": null}});
        return whole(status, "application/json", body.to_string().into());
    }
    if op == Operation::Embeddings {
        return embeddings(body, model);
    }
    chat(settings, body, model)
}

/// An embeddings list: one vector per input, derived from its text.
fn embeddings(body: &Value, model: &str) -> Reply {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect(),
        Some(other) => vec![other
            .as_str()
            .map_or_else(|| other.to_string(), str::to_string)],
        None => Vec::new(),
    };
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(EMBEDDING_DIMENSIONS, |d| d.clamp(1, 4096) as usize);
    let vectors: Vec<Vec<f64>> = inputs.iter().map(|t| embed(t, dims)).collect();
    let tokens = inputs.iter().map(|t| words(t)).sum();
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let usage = Usage {
        input: tokens,
        ..Usage::default()
    };
    let list = embeddings_list(&vectors, model, base64, usage);
    whole(StatusCode::OK, "application/json", list.to_string().into())
}

/// A chat completion, whole or streamed: the configured response, else the last user
/// message echoed, with words counted as tokens.
fn chat(settings: &MockSettings, body: &Value, model: &str) -> Reply {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let prompt_tokens: u64 = messages
        .iter()
        .map(|m| words(&text_of(&m["content"])))
        .sum();
    let answer = settings.response.clone().unwrap_or_else(|| {
        messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| text_of(&m["content"]))
            .unwrap_or_default()
    });
    let usage = Usage {
        input: prompt_tokens,
        output: words(&answer),
        ..Usage::default()
    };
    let id = format!("chatcmpl-mock{:016x}", fastrand::u64(..));
    let created = now_secs();
    if body.get("stream") == Some(&Value::Bool(true)) {
        let include_usage =
            body.pointer("/stream_options/include_usage") == Some(&Value::Bool(true));
        let mut out = Vec::new();
        let assistant = json!({"role": "assistant", "content": ""});
        openai::chunk(&mut out, &id, created, model, assistant, None);
        for piece in pieces(&answer) {
            openai::chunk(
                &mut out,
                &id,
                created,
                model,
                json!({"content": piece}),
                None,
            );
        }
        openai::chunk(&mut out, &id, created, model, json!({}), Some("stop"));
        openai::end(
            &mut out,
            &id,
            created,
            model,
            include_usage.then_some(usage),
        );
        return whole(StatusCode::OK, "text/event-stream", out.into());
    }
    let completion = json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": openai::usage_object(usage),
    });
    whole(
        StatusCode::OK,
        "application/json",
        completion.to_string().into(),
    )
}

fn whole(status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    Reply {
        status,
        headers,
        body: Box::pin(futures_util::stream::iter([Ok(body)])),
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Splits an answer into up to four pieces at word boundaries, whitespace kept.
fn pieces(answer: &str) -> Vec<String> {
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    let size = words.len().div_ceil(4).max(1);
    words.chunks(size).map(|c| c.concat()).collect()
}

/// A deterministic unit vector derived from the text.
fn embed(text: &str, dims: usize) -> Vec<f64> {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let raw: Vec<f64> = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2_000_001) as f64 / 1_000_000.0 - 1.0
        })
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::EPSILON);
    raw.iter().map(|x| x / norm).collect()
}
