//! The OpenAI Responses wire format's own knowledge, shared by both directions: what a call
//! carries through translation ([`ResponsesCall`]), ids, usage, the response object, and
//! its events.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{count, Usage};
use crate::sse;

/// What a Responses call carries through translation: the response id the sidecar answers
/// with, the request fields a response object echoes, and the freeform (`custom`) tools that
/// travel as one-argument functions.
#[derive(Clone, Debug, Default)]
pub struct ResponsesCall {
    /// `resp_` and 32 hex digits; item ids are derived from it.
    pub id: String,
    /// The request fields a response object repeats (`instructions`, `tools`, ...).
    pub echo: Map<String, Value>,
    /// Names of `custom` tools, carried as functions with one `input` string.
    pub custom_tools: Vec<String>,
}

/// A default for an echoed field.
type Default = fn() -> Value;

/// Request fields a response object repeats, with OpenAI's defaults when absent.
const ECHOED: [(&str, Default); 13] = [
    ("instructions", || Value::Null),
    ("max_output_tokens", || Value::Null),
    ("metadata", || json!({})),
    ("parallel_tool_calls", || Value::Bool(true)),
    ("previous_response_id", || Value::Null),
    ("reasoning", || json!({"effort": null, "summary": null})),
    ("store", || Value::Bool(true)),
    ("temperature", || json!(1.0)),
    ("text", || json!({"format": {"type": "text"}})),
    ("tool_choice", || json!("auto")),
    ("tools", || json!([])),
    ("top_p", || json!(1.0)),
    ("user", || Value::Null),
];

impl ResponsesCall {
    /// Reads what translation needs from a Responses request body.
    pub fn of(body: &Value) -> ResponsesCall {
        let mut echo = Map::new();
        for (key, default) in ECHOED {
            let v = body.get(key).filter(|v| !v.is_null()).cloned();
            echo.insert(key.into(), v.unwrap_or_else(default));
        }
        echo.insert("truncation".into(), json!("disabled"));
        let custom_tools = body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "custom")
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        ResponsesCall {
            id: new_id(),
            echo,
            custom_tools,
        }
    }

    /// Whether `name` is a freeform tool.
    pub fn is_custom(&self, name: &str) -> bool {
        self.custom_tools.iter().any(|t| t == name)
    }

    /// The id of the `n`th output item, with the item kind's prefix (`msg`, `fc`, `ctc`).
    pub fn item_id(&self, prefix: &str, n: usize) -> String {
        let tail = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{tail}{n:04x}")
    }
}

/// A fresh response id.
pub fn new_id() -> String {
    format!("resp_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Usage from a Responses `usage` object.
pub fn usage<'de>(u: impl serde::Deserializer<'de>) -> Usage {
    let u = UsageWire::deserialize(u).unwrap_or_default();
    Usage {
        input: u.input_tokens,
        output: u.output_tokens,
        cached: u.input_tokens_details.map_or(0, |d| d.cached_tokens),
        cache_creation: 0,
        reasoning: u.output_tokens_details.map_or(0, |d| d.reasoning_tokens),
    }
}

/// A Responses `usage` object, the fields the gateway reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageWire {
    #[serde(deserialize_with = "count")]
    input_tokens: u64,
    #[serde(deserialize_with = "count")]
    output_tokens: u64,
    input_tokens_details: Option<InputDetails>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InputDetails {
    #[serde(deserialize_with = "count")]
    cached_tokens: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OutputDetails {
    #[serde(deserialize_with = "count")]
    reasoning_tokens: u64,
}

/// A Responses `usage` object.
pub fn usage_object(u: Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "input_tokens_details": {"cached_tokens": u.cached},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.input + u.output,
    })
}

/// How a response ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Still streaming.
    InProgress,
    /// Finished.
    Completed,
    /// Stopped early, with the reason (`max_output_tokens`, `content_filter`).
    Incomplete(&'static str),
    /// Failed, with the error message.
    Failed(String),
}

/// A whole response object.
pub fn object(
    call: &ResponsesCall,
    created: u64,
    model: &Value,
    status: &Status,
    output: Vec<Value>,
    usage: Option<Usage>,
) -> Value {
    let (name, incomplete, error) = match status {
        Status::InProgress => ("in_progress", Value::Null, Value::Null),
        Status::Completed => ("completed", Value::Null, Value::Null),
        Status::Incomplete(reason) => ("incomplete", json!({"reason": reason}), Value::Null),
        Status::Failed(message) => (
            "failed",
            Value::Null,
            json!({"code": "server_error", "message": message}),
        ),
    };
    let mut obj = Map::new();
    obj.insert("id".into(), json!(call.id));
    obj.insert("object".into(), json!("response"));
    obj.insert("created_at".into(), json!(created));
    obj.insert("status".into(), json!(name));
    obj.insert("error".into(), error);
    obj.insert("incomplete_details".into(), incomplete);
    obj.insert("model".into(), model.clone());
    obj.insert("output".into(), Value::Array(output));
    for (k, v) in &call.echo {
        obj.insert(k.clone(), v.clone());
    }
    obj.insert("usage".into(), usage.map_or(Value::Null, usage_object));
    Value::Object(obj)
}

/// The `status` of a finished response for a chat `finish_reason`.
pub fn status_of(finish: &str) -> Status {
    match finish {
        "length" => Status::Incomplete("max_output_tokens"),
        "content_filter" => Status::Incomplete("content_filter"),
        _ => Status::Completed,
    }
}

/// Writes Responses events, numbering them.
#[derive(Debug, Default)]
pub struct Events {
    next: u64,
}

impl Events {
    /// Appends one event: `data` gets its `type` and `sequence_number`.
    pub fn write(&mut self, out: &mut Vec<u8>, kind: &str, data: Value) {
        let mut event = match data {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        event.insert("type".into(), json!(kind));
        event.insert("sequence_number".into(), json!(self.next));
        self.next += 1;
        sse::write(out, Some(kind), &Value::Object(event).to_string());
    }
}

/// The closing event for a response's status: `response.completed`, `.incomplete` or
/// `.failed`.
pub fn closing_event(status: &Status) -> &'static str {
    match status {
        Status::Completed | Status::InProgress => "response.completed",
        Status::Incomplete(_) => "response.incomplete",
        Status::Failed(_) => "response.failed",
    }
}

/// An output item as an input item of a later turn (the store keeps conversations so).
pub fn as_input(item: &Value) -> Value {
    let mut item = item.clone();
    if let Value::Object(m) = &mut item {
        if m.get("type") == Some(&json!("message")) {
            m.remove("status");
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{Dialect, Operation};

    #[test]
    fn a_response_object_echoes_the_request_with_openai_defaults() {
        let call = ResponsesCall::of(&json!({
            "model": "m", "instructions": "be brief", "tools": [{"type": "custom", "name": "apply_patch"}],
        }));
        assert!(call.is_custom("apply_patch"));
        let obj = object(
            &call,
            7,
            &json!("m"),
            &Status::Incomplete("max_output_tokens"),
            vec![],
            None,
        );
        assert_eq!(obj["instructions"], "be brief");
        assert_eq!(obj["parallel_tool_calls"], true);
        assert_eq!(obj["status"], "incomplete");
        assert_eq!(obj["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(obj["text"]["format"]["type"], "text");
        assert!(call.item_id("msg", 1).starts_with("msg_"));
    }

    #[test]
    fn events_are_numbered_in_order() {
        let mut ev = Events::default();
        let mut out = Vec::new();
        ev.write(&mut out, "response.created", json!({"response": {}}));
        ev.write(&mut out, "response.in_progress", json!({"response": {}}));
        let mut p = sse::Parser::default();
        p.push(&out);
        let first = p.next_event().unwrap_or_default();
        assert_eq!(first.name.as_deref(), Some("response.created"));
        let data: Value = serde_json::from_str(&first.data).unwrap_or_default();
        assert_eq!(
            (data["type"].as_str(), data["sequence_number"].as_u64()),
            (Some("response.created"), Some(0))
        );
        let second: Value =
            serde_json::from_str(&p.next_event().unwrap_or_default().data).unwrap_or_default();
        assert_eq!(second["sequence_number"], 1);
    }

    #[test]
    fn a_passthrough_answer_is_read_for_its_usage_alone_in_every_format() {
        let ctx = super::super::Context::default();
        for (dialect, body, expected) in [
            (
                Dialect::Responses,
                r#"{"id":"resp_1","output":[],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":17}}"#,
                (10, 7, 4, 2),
            ),
            (
                Dialect::OpenAi,
                r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
                (10, 7, 4, 2),
            ),
            (
                Dialect::Anthropic,
                r#"{"content":[],"usage":{"input_tokens":6,"output_tokens":7,"cache_read_input_tokens":4}}"#,
                (10, 7, 4, 0),
            ),
            (
                Dialect::Gemini,
                r#"{"candidates":[],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":2,"cachedContentTokenCount":4}}"#,
                (10, 7, 4, 2),
            ),
            (
                Dialect::OpenAi,
                r#"{"choices":[],"usage":null}"#,
                (0, 0, 0, 0),
            ),
            (Dialect::Responses, r#"{"output":[]}"#, (0, 0, 0, 0)),
        ] {
            let bytes = bytes::Bytes::from_static(body.as_bytes());
            let (out, u) = super::super::response(dialect, dialect, Operation::Chat, &bytes, &ctx)
                .unwrap_or_else(|e| panic!("{body}: {e:?}"));
            assert_eq!(out, bytes, "passed through untouched");
            assert_eq!(
                (u.input, u.output, u.cached, u.reasoning),
                expected,
                "{body}"
            );
        }
    }
}
