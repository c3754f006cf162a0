//! Reading an inbound call: the request id, the body (within the limit), the Gemini call a
//! path names, and the checks every call passes before routing.

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};

use crate::{
    body::{CallBody, Facts, Spans},
    dialect::{Dialect, Operation},
    error::Error,
};
use peek::{count, string, text, Member, Messages, Peek, Refusal};

mod peek;

/// `x-request-id`, read from callers and written to upstreams and answers (a name written
/// as a `&str` is parsed again at every use).
pub const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The caller's `x-request-id` when it is sane, else a new UUID-shaped one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(fresh_id, str::to_string)
}

/// A random version-4 UUID, written digit by digit (`format!` took a microsecond).
fn fresh_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let high = (fastrand::u64(..) & !0xf000) | 0x4000;
    let low = (fastrand::u64(..) & !(0xc000 << 48)) | (0x8000 << 48);
    let mut id = String::with_capacity(36);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            id.push('-');
        }
        let word = if i < 16 { high } else { low };
        let digit = (word >> (60 - 4 * (i % 16))) & 0xf;
        id.push(char::from(HEX[digit as usize]));
    }
    id
}

/// Bodies larger than this (or of no declared length) are gathered in a task of their own.
const GATHER_APART: usize = 16 * 1024;

/// Reads a request body, refusing more than `limit` bytes.
///
/// On a pool of threads, a large body is gathered in a task of its own. Read from the
/// connection's task, every chunk taken wakes that same task (hyper's body channel tells its
/// sender there is room), and tokio's pool reschedules a task that woke itself as a yield,
/// waking another worker to take it over: for a 100 KB agent turn, a handoff between cores
/// for each of its chunks. A small body comes in one chunk, and a task of its own would cost
/// more than the one wakeup. On one thread (the default) a wakeup is a push onto its queue,
/// and every body is read in place.
pub async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::BodyTooLarge(limit));
    }
    let gathering = Limited::new(body, limit).collect();
    let one_thread = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    let gathered = if one_thread || declared.is_some_and(|n| n <= GATHER_APART) {
        gathering.await
    } else {
        tokio::spawn(gathering)
            .await
            .map_err(|e| Error::BodyRead(e.to_string()))?
    };
    match gathered {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::BodyTooLarge(limit)),
        Err(e) => Err(Error::BodyRead(e.to_string())),
    }
}

/// A checked call.
pub struct Parsed {
    /// The body.
    pub body: CallBody,
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

/// The model and method of a Gemini path, `/v1beta/models/{model}:{method}` or the stable
/// API's `/v1/models/{model}:{method}` (where Google's current SDKs call by default).
pub fn gemini_path(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?
        .rsplit_once(':')
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

/// Checks the shape of a call: a JSON object, a model, and the types of the fields the
/// gateway reads; the rest is the upstream's to judge. The body is validated in one pass and
/// no tree is built (translation builds one when it needs it).
pub fn parse(
    dialect: Dialect,
    op: Operation,
    raw: Bytes,
    gemini: Option<&GeminiCall>,
) -> Result<Parsed, Error> {
    let (peek, marks) = Peek::read(&raw).map_err(|refusal| match refusal {
        Refusal::Invalid => malformed(&raw),
        Refusal::NotObject => Error::InvalidRequest {
            message: "request body must be a JSON object".into(),
            param: None,
        },
        Refusal::Twice(field) => Error::invalid(&field, format!("duplicate field `{field}`")),
    })?;
    let facts = facts(&peek);
    let span = |value: Option<&str>| {
        value.map(|v| {
            let start = v.as_ptr() as usize - raw.as_ptr() as usize;
            start..start + v.len()
        })
    };
    let spans = Spans {
        model: span(peek.model),
        stream_flags: [span(peek.stream), span(peek.stream_options)],
    };
    let (model, stream) = match gemini {
        Some(call) => {
            check_gemini(call, &peek)?;
            (call.model.clone(), call.stream)
        }
        None => check(dialect, op, &peek)?,
    };
    Ok(Parsed {
        body: CallBody::new(raw.clone(), spans, facts).scanned(marks),
        model,
        stream,
    })
}

/// A body the scan refused, in serde_json's words (where it stopped and why).
fn malformed(raw: &[u8]) -> Error {
    match serde_json::from_slice::<serde::de::IgnoredAny>(raw) {
        Err(e) => Error::MalformedJson(e.to_string()),
        Ok(_) => Error::MalformedJson("request body is not valid JSON".into()),
    }
}

fn facts(peek: &Peek<'_>) -> Facts {
    let max_output = [
        peek.max_completion_tokens,
        peek.max_tokens,
        peek.max_output_tokens,
    ]
    .into_iter()
    .find_map(count)
    .or_else(|| count(Member::of(peek.generation_config).max_output_tokens()));
    Facts {
        include_usage: text(Member::of(peek.stream_options).include_usage()) == Some("true"),
        stream_options: peek.stream_options.is_some(),
        base64: string(peek.encoding_format).as_deref() == Some("base64"),
        max_output,
        prompt_cache_key: string(peek.prompt_cache_key),
    }
}

/// Checks a Gemini-format call: the model and streaming come from the path.
fn check_gemini(call: &GeminiCall, peek: &Peek<'_>) -> Result<(), Error> {
    let (field, fine) = match call.op {
        Operation::Chat => ("contents", peek.contents == Some(b'[')),
        Operation::Embeddings if call.single => ("content", peek.content == Some(b'{')),
        Operation::Embeddings => ("requests", peek.requests == Some(b'[')),
    };
    if fine {
        return Ok(());
    }
    Err(Error::invalid(
        field,
        format!("{field} is required and must be of the documented type"),
    ))
}

/// Checks the model, streaming and the fields of the dialect and operation.
fn check(dialect: Dialect, op: Operation, peek: &Peek<'_>) -> Result<(String, bool), Error> {
    let model = match (text(peek.model), string(peek.model)) {
        (_, Some(m)) if !m.is_empty() => m,
        (None, _) | (_, Some(_)) => {
            return Err(Error::invalid(
                "model",
                "you must provide a model parameter",
            ))
        }
        (Some(_), None) => return Err(Error::invalid("model", "model must be a string")),
    };
    let stream = match text(peek.stream) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Error::invalid("stream", "stream must be a boolean")),
    };
    if op == Operation::Embeddings {
        return match peek.input {
            Some(b'"' | b'[') => Ok((model, false)),
            None => Err(Error::invalid(
                "input",
                "you must provide an input parameter",
            )),
            Some(_) => Err(Error::invalid(
                "input",
                "input must be a string or an array",
            )),
        };
    }
    if dialect == Dialect::Responses {
        check_responses(peek)?;
        return Ok((model, stream));
    }
    check_messages(peek)?;
    check_numbers(peek)?;
    if dialect == Dialect::Anthropic && count(peek.max_tokens).is_none() {
        return Err(Error::invalid("max_tokens", "max_tokens: Field required"));
    }
    Ok((model, stream))
}

fn check_messages(peek: &Peek<'_>) -> Result<(), Error> {
    match peek.messages {
        Messages::Fine => Ok(()),
        Messages::NoRole(i) => Err(Error::invalid(
            &format!("messages[{i}].role"),
            "each message needs a string role",
        )),
        Messages::Absent | Messages::NotObjects => Err(Error::invalid(
            "messages",
            "messages must be an array of message objects",
        )),
    }
}

fn check_numbers(peek: &Peek<'_>) -> Result<(), Error> {
    numbers(&[
        ("temperature", peek.temperature),
        ("top_p", peek.top_p),
        ("presence_penalty", peek.presence_penalty),
        ("frequency_penalty", peek.frequency_penalty),
    ])?;
    counts(&[
        ("max_tokens", peek.max_tokens),
        ("max_completion_tokens", peek.max_completion_tokens),
        ("n", peek.n),
        ("top_k", peek.top_k),
    ])
}

/// Each of these fields, when present and not null, is a number.
fn numbers(fields: &[(&str, Option<&str>)]) -> Result<(), Error> {
    for (key, raw) in fields {
        if text(*raw).is_some_and(|t| !t.starts_with(|c: char| c == '-' || c.is_ascii_digit())) {
            return Err(Error::invalid(key, format!("{key} must be a number")));
        }
    }
    Ok(())
}

/// Each of these fields, when present and not null, is a non-negative integer.
fn counts(fields: &[(&str, Option<&str>)]) -> Result<(), Error> {
    for (key, raw) in fields {
        if text(*raw).is_some() && count(*raw).is_none() {
            let message = format!("{key} must be a non-negative integer");
            return Err(Error::invalid(key, message));
        }
    }
    Ok(())
}

/// Checks a Responses call's own fields: `input` (a string or items), the numbers.
fn check_responses(peek: &Peek<'_>) -> Result<(), Error> {
    match peek.input {
        Some(b'"') => {}
        Some(b'[') => {
            if let Some(i) = peek.input_stray {
                return Err(Error::invalid(
                    &format!("input[{i}]"),
                    "each input item must be an object",
                ));
            }
        }
        None if peek.previous_response_id.is_some() => {}
        None => {
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
    numbers(&[("temperature", peek.temperature), ("top_p", peek.top_p)])?;
    counts(&[("max_output_tokens", peek.max_output_tokens)])?;
    if text(peek.previous_response_id).is_some_and(|t| !t.starts_with('"')) {
        return Err(Error::invalid(
            "previous_response_id",
            "previous_response_id must be a string",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
