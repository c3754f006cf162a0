//! Translation between wire formats, organised by format pair. Every function here is
//! plain (no I/O, no async): bytes and JSON in, bytes and JSON out.
//!
//! OpenAI chat is the hub: an Anthropic caller served by Gemini goes Anthropic -> OpenAI ->
//! Gemini on the way up and back the same way down, so each format is written once each way
//! (`X_openai`: an X caller served through the hub; `openai_Y`: the hub served by Y).
//! What belongs to one format whichever pair uses it (its usage object read and written,
//! OpenAI's stream chunks) lives in that format's module: [`openai`], [`anthropic`],
//! [`gemini`], [`responses`].

pub mod anthropic;
pub mod anthropic_openai;
pub mod embeddings;
pub mod gemini;
pub mod gemini_openai;
pub mod gemini_schema;
pub mod openai;
pub mod openai_anthropic;
pub mod openai_gemini;
pub mod openai_responses;
pub mod responses;
pub mod responses_openai;
mod stream;
pub mod thinking;
pub mod wire;

pub use stream::stream;

use std::{borrow::Cow, sync::Arc};

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::{
    dialect::{Dialect, Operation},
    error::Error,
    sse,
};

/// A field an answer the gateway writes always holds as `null` (`Option<Null>`).
#[derive(serde::Serialize)]
pub enum Null {}

/// Token counts, normalised to OpenAI's meaning (`input` includes cached tokens).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, cached and cache-written included.
    pub input: u64,
    /// Completion tokens, reasoning included.
    pub output: u64,
    /// Prompt tokens read from a cache.
    pub cached: u64,
    /// Prompt tokens written to a cache (Anthropic).
    pub cache_creation: u64,
    /// Reasoning tokens (part of `output`).
    pub reasoning: u64,
}

impl Usage {
    /// Input plus output tokens, if upstream reported any.
    pub fn reported(self) -> Option<u64> {
        let n = self.input + self.output;
        (n > 0).then_some(n)
    }

    /// Dollars for this usage at `pricing` (none: free).
    pub fn cost(self, pricing: Option<&switchyard_crds::Pricing>) -> f64 {
        pricing.map_or(0.0, |p| {
            (self.input as f64 * p.input_per_million_tokens
                + self.output as f64 * p.output_per_million_tokens)
                / 1_000_000.0
        })
    }
}

/// A token count as a wire format sends it: anything but a non-negative integer counts as 0.
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    use serde::Deserialize;
    Ok(Value::deserialize(d)?.as_u64().unwrap_or(0))
}

/// What a response translation needs to know about its request.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The model name the caller sent (used when the upstream names none).
    pub model: String,
    /// Unix seconds for `created`.
    pub created: u64,
    /// Whether the caller asked for a usage chunk at the end of an OpenAI stream.
    pub include_usage: bool,
    /// Whether a `json_schema` response format was carried as a forced Anthropic tool.
    pub json_tool: bool,
    /// Whether embeddings were asked for as base64.
    pub base64: bool,
    /// Whether a Gemini caller used `embedContent` (one vector) rather than a batch.
    pub gemini_single: bool,
    /// A Responses-API call's id, echoed fields and freeform tools.
    pub responses: Option<Arc<responses::ResponsesCall>>,
}

/// Turns an upstream's SSE events into the caller's, one event at a time.
pub trait StreamTranslator: Send {
    /// Translates one upstream event, appending the caller's bytes to `out`.
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>);
    /// The upstream ended; appends any closing events and tells whether the stream was complete.
    fn finish(&mut self, out: &mut Vec<u8>) -> bool;
    /// Token usage seen so far.
    fn usage(&self) -> Usage;
    /// The message of an error event the upstream sent, if any.
    fn error(&self) -> Option<&str>;
    /// Whether that error event already reached the caller as it came (same-format streams
    /// forward it untouched, so the relay must not send a second one).
    fn error_forwarded(&self) -> bool {
        false
    }
    /// Appends the stream's own closing error event, for formats whose failure event carries
    /// stream state (Responses' `response.failed`); false leaves it to the caller's dialect's
    /// plain error event.
    fn fail(&mut self, message: &str, out: &mut Vec<u8>) -> bool {
        let _ = (message, out);
        false
    }
    /// The whole response a finished stream amounts to (Responses callers, for the store).
    fn completed(&self) -> Option<&Value> {
        None
    }
}

/// The `message` of an upstream error object, whatever its format.
pub fn error_message(err: &Value) -> String {
    err["message"]
        .as_str()
        .unwrap_or("upstream error")
        .to_string()
}

/// The text of an OpenAI `content` (a string, or text parts).
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Splits a `data:MIME;base64,DATA` URL.
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, data))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds the upstream request body for a call in `from`'s format going to `to`.
pub fn request(
    from: Dialect,
    to: Dialect,
    op: Operation,
    body: &Value,
    model: &str,
    stream: bool,
    ctx: &mut Context,
) -> Result<Value, Error> {
    if op == Operation::Embeddings {
        // An `api: responses` provider still serves embeddings at `/embeddings`.
        return match (from, to) {
            (_, Dialect::Anthropic) => Err(Error::invalid(
                "model",
                "this model's provider does not serve embeddings",
            )),
            (Dialect::Gemini, Dialect::Gemini) => Ok(body.clone()),
            (Dialect::Gemini, Dialect::OpenAi | Dialect::Responses) => {
                Ok(with_model(gemini_openai::embeddings_request(body)?, model))
            }
            (_, Dialect::OpenAi | Dialect::Responses) => Ok(with_model(body.clone(), model)),
            (_, Dialect::Gemini) => openai_gemini::embeddings_request(body, model),
        };
    }
    let mut out = if from == to {
        let mut out = body.clone();
        match to {
            Dialect::Responses => thinking::drop_sealed(&mut out),
            Dialect::Anthropic => thinking::drop_unsigned(&mut out),
            _ => {}
        }
        out
    } else {
        let hub = to_hub(from, body, ctx)?;
        from_hub(to, hub, ctx)?
    };
    match to {
        Dialect::OpenAi => {
            out = with_model(out, model);
            if stream {
                out["stream"] = Value::Bool(true);
                out["stream_options"]["include_usage"] = Value::Bool(true);
            }
        }
        Dialect::Anthropic | Dialect::Responses => {
            out = with_model(out, model);
            if stream {
                out["stream"] = Value::Bool(true);
            }
        }
        Dialect::Gemini => {}
    }
    Ok(out)
}

/// A request in the hub's format (OpenAI chat).
fn to_hub<'a>(from: Dialect, body: &'a Value, ctx: &mut Context) -> Result<Cow<'a, Value>, Error> {
    Ok(match from {
        Dialect::OpenAi => Cow::Borrowed(body),
        Dialect::Anthropic => Cow::Owned(anthropic_openai::request(body)?),
        Dialect::Gemini => Cow::Owned(gemini_openai::request(body)?),
        Dialect::Responses => Cow::Owned(responses_openai::request(body, ctx)?),
    })
}

/// A hub request in an upstream's format.
fn from_hub(to: Dialect, hub: Cow<'_, Value>, ctx: &mut Context) -> Result<Value, Error> {
    match to {
        // The hub is the caller's own body only for an OpenAI caller, which never comes here.
        Dialect::OpenAi => {
            let mut hub = hub.into_owned();
            thinking::strip(&mut hub);
            Ok(hub)
        }
        Dialect::Anthropic => openai_anthropic::request(&hub, ctx),
        Dialect::Gemini => openai_gemini::request(&hub),
        Dialect::Responses => openai_responses::request(&hub),
    }
}

/// The thinking budget (tokens) for an OpenAI `reasoning_effort`: Gemini's `thinkingBudget`,
/// Anthropic's `budget_tokens`; none for a value OpenAI does not define.
pub(crate) fn thinking_budget(effort: &str) -> Option<u32> {
    match effort {
        "none" | "minimal" => Some(0),
        "low" => Some(1_024),
        "medium" => Some(8_192),
        "high" => Some(24_576),
        _ => None,
    }
}

/// The OpenAI `reasoning_effort` nearest a thinking budget of `tokens` (Anthropic's
/// `budget_tokens`, Gemini's `thinkingBudget`): the tier of [`thinking_budget`] it is closest to.
pub(crate) fn effort_for_budget(tokens: u64) -> &'static str {
    match tokens {
        0..4_096 => "low",
        4_096..16_384 => "medium",
        _ => "high",
    }
}

fn with_model(mut body: Value, model: &str) -> Value {
    if let Value::Object(map) = &mut body {
        map.insert("model".into(), Value::String(model.to_string()));
    }
    body
}

/// The one field a passthrough answer is read for, as its JSON text.
#[derive(serde::Deserialize)]
struct UsageOnly<'a> {
    #[serde(borrow, default)]
    usage: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default, rename = "usageMetadata")]
    usage_metadata: Option<&'a serde_json::value::RawValue>,
}

/// Refuses a body that is not a JSON object before it is read into a struct (which would
/// also read an array, field by field).
fn an_object(raw: &[u8]) -> Result<(), serde_json::Error> {
    if raw.trim_ascii_start().first() == Some(&b'{') {
        Ok(())
    } else {
        Err(serde::de::Error::custom("the answer is not a JSON object"))
    }
}

/// Why an upstream's successful answer could not be used.
#[derive(Debug)]
pub struct InvalidResponse(pub String);

/// Translates a whole upstream response from `to`'s format into the caller's (`from`).
pub fn response(
    from: Dialect,
    to: Dialect,
    op: Operation,
    body: &Bytes,
    ctx: &Context,
) -> Result<(Bytes, Usage), InvalidResponse> {
    let invalid =
        |e: serde_json::Error| InvalidResponse(format!("upstream sent invalid JSON: {e}"));
    if from == to {
        // Passthrough: the body goes out untouched; only the usage is read (and the whole
        // body validated as a JSON object on the way).
        let only: UsageOnly<'_> = serde_json::from_slice(body).map_err(invalid)?;
        let field = match to {
            Dialect::Gemini => only.usage_metadata,
            _ => only.usage,
        };
        let usage = field.map_or_else(Usage::default, |raw| match to {
            Dialect::Anthropic => anthropic::usage(raw),
            Dialect::OpenAi => openai::usage(raw),
            Dialect::Responses => responses::usage(raw),
            Dialect::Gemini => gemini::usage(raw),
        });
        return Ok((body.clone(), usage));
    }
    let object = || {
        let value: Value = serde_json::from_slice(body).map_err(invalid)?;
        if !value.is_object() {
            return Err(InvalidResponse(
                "upstream sent JSON that is not an object".into(),
            ));
        }
        Ok(value)
    };
    if op == Operation::Embeddings {
        return embeddings_response(from, to, body, &object()?, ctx);
    }
    // Read typed from the text: no tree of the upstream's answer, and none at all for the
    // callers whose answer is written from a typed read (OpenAI, Anthropic, Gemini).
    let read: HubReader = match to {
        Dialect::OpenAi if from == Dialect::Responses => {
            let value = object()?;
            let usage = openai::usage(&value["usage"]);
            return Ok((written(&responses_openai::response(&value, ctx).0), usage));
        }
        Dialect::OpenAi => {
            an_object(body).map_err(invalid)?;
            let answer: openai::Chunk<'_> = serde_json::from_slice(body).map_err(invalid)?;
            return Ok(typed_reply(from, &answer, ctx));
        }
        Dialect::Anthropic => openai_anthropic::response,
        Dialect::Gemini => openai_gemini::response,
        Dialect::Responses => openai_responses::response,
    };
    let (completion, usage) = read(body, ctx).map_err(invalid)?;
    let out = match from {
        Dialect::OpenAi => written(&completion),
        Dialect::Responses => {
            let hub = serde_json::to_value(completion).map_err(invalid)?;
            written(&responses_openai::response(&hub, ctx).0)
        }
        // The completion read back as an answer is read: typed, its strings borrowed.
        Dialect::Anthropic | Dialect::Gemini => {
            let hub = serde_json::to_vec(&completion).map_err(invalid)?;
            let answer: openai::Chunk<'_> = serde_json::from_slice(&hub).map_err(invalid)?;
            typed_reply(from, &answer, ctx).0
        }
    };
    Ok((out, usage))
}

/// Reads a whole answer of another format into the hub, a typed chat completion.
type HubReader =
    for<'a> fn(&'a [u8], &Context) -> Result<(openai::Completion<'a>, Usage), serde_json::Error>;

/// A chat completion, read typed, as an Anthropic caller's answer, or a Gemini caller's.
fn typed_reply(from: Dialect, answer: &openai::Chunk<'_>, ctx: &Context) -> (Bytes, Usage) {
    if from == Dialect::Gemini {
        let (reply, usage) = gemini_openai::response(answer, ctx);
        return (written(&reply), usage);
    }
    let (reply, usage) = anthropic_openai::response(answer, ctx);
    (written(&reply), usage)
}

/// An answer's JSON, written straight into bytes (`to_string` goes through `fmt`, a few
/// times slower).
fn written(answer: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(answer).unwrap_or_default())
}

fn embeddings_response(
    from: Dialect,
    to: Dialect,
    raw: &Bytes,
    value: &Value,
    ctx: &Context,
) -> Result<(Bytes, Usage), InvalidResponse> {
    let usage = Usage {
        input: value
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        ..Usage::default()
    };
    let none = || InvalidResponse("upstream embeddings response has no vectors".into());
    match (from, to) {
        (Dialect::Gemini, Dialect::Gemini)
        | (Dialect::OpenAi, Dialect::OpenAi | Dialect::Responses) => Ok((raw.clone(), usage)),
        (Dialect::Gemini, _) => Ok((
            embeddings::openai_to_gemini(raw, ctx.gemini_single).ok_or_else(none)?,
            usage,
        )),
        (_, Dialect::Gemini) => Ok((
            embeddings::gemini_to_openai(raw, &ctx.model, ctx.base64, usage).ok_or_else(none)?,
            usage,
        )),
        _ => Err(none()),
    }
}

/// An OpenAI embeddings list, floats or base64 (little-endian f32) as the caller asked.
pub fn embeddings_list(vectors: &[Vec<f64>], model: &str, base64: bool, usage: Usage) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": usage.input, "total_tokens": usage.input}})
}

/// The error type and message an upstream put in its error body, whatever its format.
pub fn upstream_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let err = v.get("error").unwrap_or(&v);
    let text = |k: &str| err.get(k).and_then(Value::as_str).map(str::to_string);
    let kind = text("type")
        .or_else(|| text("status"))
        .or_else(|| text("code"));
    let message =
        text("message").or_else(|| v.get("message").and_then(Value::as_str).map(str::to_string));
    (kind, message)
}
