//! Reading an inbound call: the request id, the body (within the limit), the Gemini call a
//! path names, and the checks every call passes before routing.

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use crate::{
    dialect::{Dialect, Operation},
    error::Error,
};

/// The caller's `x-request-id` when it is sane, else a new UUID-shaped one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                let (a, b) = (fastrand::u64(..), fastrand::u64(..));
                format!(
                    "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xfff,
                    (b >> 48) & 0x3fff | 0x8000,
                    b & 0xffff_ffff_ffff
                )
            },
            str::to_string,
        )
}

/// Reads a request body, refusing more than `limit` bytes.
pub async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::BodyTooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::BodyTooLarge(limit)),
        Err(e) => Err(Error::BodyRead(e.to_string())),
    }
}

/// A checked call.
pub struct Parsed {
    /// The JSON body.
    pub value: Value,
    /// The model asked for.
    pub model: String,
    /// Whether a stream is asked for.
    pub stream: bool,
}

/// A Gemini-format call, read from its path: `/v1beta/models/{model}:{method}`.
pub struct GeminiCall {
    /// The model, from the path.
    pub model: String,
    /// The operation, from the method.
    pub op: Operation,
    /// Whether it is `streamGenerateContent`.
    pub stream: bool,
    /// Whether it is a single (not batch) embedding.
    pub single: bool,
}

/// The model and method of a Gemini path, `/v1beta/models/{model}:{method}`.
pub fn gemini_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/v1beta/models/")?.rsplit_once(':')
}

/// The Gemini call a path names, if it names one.
pub fn gemini_call(path: &str) -> Option<GeminiCall> {
    let (model, method) = gemini_path(path)?;
    let (op, stream, single) = match method {
        "generateContent" => (Operation::Chat, false, true),
        "streamGenerateContent" => (Operation::Chat, true, true),
        "embedContent" => (Operation::Embeddings, false, true),
        "batchEmbedContents" => (Operation::Embeddings, false, false),
        _ => return None,
    };
    let model = model.to_string();
    (!model.is_empty()).then_some(GeminiCall {
        model,
        op,
        stream,
        single,
    })
}

/// Checks a Gemini-format call: the model and streaming come from the path.
fn parse_gemini(call: &GeminiCall, value: Value) -> Result<Parsed, Error> {
    let fine = match call.op {
        Operation::Chat => value.get("contents").is_some_and(Value::is_array),
        Operation::Embeddings if call.single => value.get("content").is_some_and(Value::is_object),
        Operation::Embeddings => value.get("requests").is_some_and(Value::is_array),
    };
    if !fine {
        let field = match call.op {
            Operation::Chat => "contents",
            Operation::Embeddings if call.single => "content",
            Operation::Embeddings => "requests",
        };
        return Err(Error::invalid(
            field,
            format!("{field} is required and must be of the documented type"),
        ));
    }
    Ok(Parsed {
        value,
        model: call.model.clone(),
        stream: call.stream,
    })
}

/// Checks a Responses call's own fields: `input` (a string or items), the numbers.
fn parse_responses(map: &serde_json::Map<String, Value>, value: &Value) -> Result<(), Error> {
    match map.get("input") {
        Some(Value::String(_)) | Some(Value::Array(_)) => {}
        None | Some(Value::Null) if value.get("previous_response_id").is_some() => {}
        None | Some(Value::Null) => {
            return Err(Error::invalid(
                "input",
                "Missing required parameter: 'input'.",
            ))
        }
        Some(_) => {
            return Err(Error::invalid(
                "input",
                "input must be a string or an array of input items",
            ))
        }
    }
    if let Some(Value::Array(items)) = map.get("input") {
        if let Some(i) = items.iter().position(|i| !i.is_object()) {
            return Err(Error::invalid(
                &format!("input[{i}]"),
                "each input item must be an object",
            ));
        }
    }
    for key in ["temperature", "top_p"] {
        if map.get(key).is_some_and(|v| !v.is_null() && !v.is_number()) {
            return Err(Error::invalid(key, format!("{key} must be a number")));
        }
    }
    if map
        .get("max_output_tokens")
        .is_some_and(|v| !v.is_null() && !v.is_u64())
    {
        return Err(Error::invalid(
            "max_output_tokens",
            "max_output_tokens must be a non-negative integer",
        ));
    }
    if map
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null() && !v.is_string())
    {
        return Err(Error::invalid(
            "previous_response_id",
            "previous_response_id must be a string",
        ));
    }
    Ok(())
}

/// Checks the shape of a call: JSON object, a model, and the types of the fields the
/// gateway reads; the rest is the upstream's to judge.
pub fn parse(
    dialect: Dialect,
    op: Operation,
    body: &[u8],
    gemini: Option<&GeminiCall>,
) -> Result<Parsed, Error> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::MalformedJson(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(Error::InvalidRequest {
            message: "request body must be a JSON object".into(),
            param: None,
        });
    };
    if let Some(call) = gemini {
        return parse_gemini(call, value);
    }
    let model = match map.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None => {
            return Err(Error::invalid(
                "model",
                "you must provide a model parameter",
            ))
        }
        Some(_) => return Err(Error::invalid("model", "model must be a string")),
    };
    let stream = match map.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::invalid("stream", "stream must be a boolean")),
    };
    if op == Operation::Embeddings {
        match map.get("input") {
            Some(Value::String(_)) | Some(Value::Array(_)) => {}
            None => {
                return Err(Error::invalid(
                    "input",
                    "you must provide an input parameter",
                ))
            }
            Some(_) => {
                return Err(Error::invalid(
                    "input",
                    "input must be a string or an array",
                ))
            }
        }
        return Ok(Parsed {
            value,
            model,
            stream: false,
        });
    }
    if dialect == Dialect::Responses {
        return parse_responses(map, &value).map(|()| Parsed {
            value,
            model,
            stream,
        });
    }
    let Some(Value::Array(messages)) = map.get("messages") else {
        return Err(Error::invalid(
            "messages",
            "messages must be an array of message objects",
        ));
    };
    for (i, m) in messages.iter().enumerate() {
        if !m.get("role").is_some_and(Value::is_string) {
            return Err(Error::invalid(
                &format!("messages[{i}].role"),
                "each message needs a string role",
            ));
        }
    }
    for key in [
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
    ] {
        if map.get(key).is_some_and(|v| !v.is_null() && !v.is_number()) {
            return Err(Error::invalid(key, format!("{key} must be a number")));
        }
    }
    for key in ["max_tokens", "max_completion_tokens", "n", "top_k"] {
        if map.get(key).is_some_and(|v| !v.is_null() && !v.is_u64()) {
            return Err(Error::invalid(
                key,
                format!("{key} must be a non-negative integer"),
            ));
        }
    }
    if dialect == Dialect::Anthropic && !map.get("max_tokens").is_some_and(Value::is_u64) {
        return Err(Error::invalid("max_tokens", "max_tokens: Field required"));
    }
    Ok(Parsed {
        value,
        model,
        stream,
    })
}
