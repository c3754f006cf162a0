//! The Gemini `generateContent` format's own knowledge: its `usageMetadata` read and written,
//! and its request fields read under either of the names proto3 JSON gives them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{value::RawValue, Map, Value};

use super::{count, Usage};
use crate::skim::Text;

/// A `GenerateContentResponse` (whole, or one of a stream's) as a translation reads it: text
/// borrowed from the body, function calls and the once-a-response fields as trees.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Response<'a> {
    #[serde(borrow)]
    pub candidates: Option<Vec<Candidate<'a>>>,
    pub usage_metadata: Option<Value>,
    pub prompt_feedback: Option<Value>,
    #[serde(borrow)]
    pub response_id: Text<'a>,
    #[serde(borrow)]
    pub model_version: Text<'a>,
    pub error: Option<Value>,
}

/// One candidate answer.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Candidate<'a> {
    #[serde(borrow)]
    pub content: Option<CandidateContent<'a>>,
    #[serde(borrow)]
    pub finish_reason: Text<'a>,
}

/// A candidate's content.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CandidateContent<'a> {
    #[serde(borrow)]
    pub parts: Option<Vec<Part<'a>>>,
}

/// A part: text (a thought summary when `thought` is true) or a function call.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Part<'a> {
    #[serde(borrow)]
    pub text: Text<'a>,
    pub thought: Option<Value>,
    #[serde(borrow)]
    pub function_call: Option<FunctionCall<'a>>,
}

/// A function call: its arguments as the JSON text Gemini sent, every digit kept.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct FunctionCall<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub args: Option<&'a RawValue>,
}

impl<'a> Candidate<'a> {
    /// Its parts (none when it has no content).
    pub fn parts(&self) -> &[Part<'a>] {
        self.content
            .as_ref()
            .and_then(|c| c.parts.as_deref())
            .unwrap_or_default()
    }
}

/// A Gemini `usageMetadata`, the fields the gateway reads.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct UsageWire {
    #[serde(deserialize_with = "count")]
    prompt_token_count: u64,
    #[serde(deserialize_with = "count")]
    candidates_token_count: u64,
    #[serde(deserialize_with = "count")]
    cached_content_token_count: u64,
    #[serde(deserialize_with = "count")]
    thoughts_token_count: u64,
}

/// Usage from a Gemini `usageMetadata`: thoughts are output (and reasoning), as OpenAI counts
/// reasoning tokens.
pub fn usage<'de>(u: impl serde::Deserializer<'de>) -> Usage {
    let u = UsageWire::deserialize(u).unwrap_or_default();
    Usage {
        input: u.prompt_token_count,
        output: u.candidates_token_count + u.thoughts_token_count,
        cached: u.cached_content_token_count,
        cache_creation: 0,
        reasoning: u.thoughts_token_count,
    }
}

/// As a Gemini `usageMetadata` (candidates exclude thoughts).
pub fn usage_metadata(u: Usage) -> Value {
    serde_json::to_value(UsageMetadata::from(u)).unwrap_or_default()
}

/// A `usageMetadata` as the gateway writes one: cached and thought counts only when there
/// are some, as Gemini writes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cached_content_token_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    thoughts_token_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<Usage> for UsageMetadata {
    fn from(u: Usage) -> Self {
        UsageMetadata {
            prompt_token_count: u.input,
            candidates_token_count: u.output.saturating_sub(u.reasoning),
            total_token_count: u.input + u.output,
            cached_content_token_count: u.cached,
            thoughts_token_count: u.reasoning,
        }
    }
}

/// A whole `GenerateContentResponse` as the gateway writes one from another format's, typed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply<'a> {
    pub candidates: Vec<ReplyCandidate<'a>>,
    pub usage_metadata: UsageMetadata,
    pub model_version: &'a str,
    pub response_id: &'a str,
}

/// One candidate of a [`Reply`].
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyCandidate<'a> {
    pub content: ReplyContent<'a>,
    pub finish_reason: &'static str,
    pub index: Option<u64>,
}

/// A candidate's content, the model's turn.
#[derive(Serialize)]
pub struct ReplyContent<'a> {
    pub role: &'static str,
    pub parts: Vec<ReplyPart<'a>>,
}

/// A part of a [`Reply`]: text (a thought summary when `thought`) or a function call.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ReplyPart<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        thought: bool,
    },
    Call {
        #[serde(rename = "functionCall")]
        function_call: ReplyCall<'a>,
    },
}

/// A function call, its args the JSON text of the call's arguments.
#[derive(Serialize)]
pub struct ReplyCall<'a> {
    pub id: Option<&'a str>,
    pub name: &'a str,
    pub args: Box<RawValue>,
}

/// How a request's value is read when field names are made lowerCamelCase.
#[derive(Clone, Copy)]
enum Walk {
    /// A message: its keys are field names.
    Message,
    /// A map whose keys are the caller's (a schema's `properties`); its values are schemas.
    Properties,
    /// Free-form JSON (function arguments and results, JSON schemas, labels): left alone.
    Opaque,
}

/// How the value under a field (named in lowerCamelCase) is read.
fn under(field: &str) -> Walk {
    match field {
        "properties" => Walk::Properties,
        "args"
        | "response"
        | "parametersJsonSchema"
        | "responseJsonSchema"
        | "labels"
        | "example"
        | "default" => Walk::Opaque,
        _ => Walk::Message,
    }
}

/// `parameters_json_schema` as `parametersJsonSchema`.
fn camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        match c {
            '_' if !out.is_empty() => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether a field anywhere in the request is named as in the .proto (snake_case).
fn has_snake(v: &Value, walk: Walk) -> bool {
    match (walk, v) {
        (Walk::Opaque, _) => false,
        (_, Value::Array(items)) => items.iter().any(|i| has_snake(i, walk)),
        (Walk::Properties, Value::Object(map)) => map.values().any(|v| has_snake(v, Walk::Message)),
        (Walk::Message, Value::Object(map)) => map
            .iter()
            .any(|(k, v)| k.contains('_') || has_snake(v, under(k))),
        _ => false,
    }
}

/// Names every field of `v` in lowerCamelCase.
fn camel_case(v: &mut Value, walk: Walk) {
    match (walk, v) {
        (Walk::Opaque, _) => {}
        (_, Value::Array(items)) => items.iter_mut().for_each(|i| camel_case(i, walk)),
        (Walk::Properties, Value::Object(map)) => {
            map.values_mut().for_each(|v| camel_case(v, Walk::Message))
        }
        (Walk::Message, Value::Object(map)) => {
            if map.keys().any(|k| k.contains('_')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (if k.contains('_') { camel(&k) } else { k }, v))
                    .collect::<Map<String, Value>>();
            }
            for (k, v) in map.iter_mut() {
                camel_case(v, under(k));
            }
        }
        _ => {}
    }
}

/// A request with every field under its lowerCamelCase name. Proto3 JSON, which the Gemini
/// API reads, accepts a field's .proto name too (`parameters_json_schema`), and Google's
/// Python SDK sends some fields so; the translation reads one name. Borrowed when no field
/// needs it; free-form values (function arguments and results, JSON schemas) and the
/// property names of a schema are left as they are.
pub fn camel_fields(body: &Value) -> Cow<'_, Value> {
    if !has_snake(body, Walk::Message) {
        return Cow::Borrowed(body);
    }
    let mut owned = body.clone();
    camel_case(&mut owned, Walk::Message);
    Cow::Owned(owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn thoughts_are_output_and_reasoning_and_usage_reads_back_what_it_writes() {
        let wire = json!({"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 6, "cachedContentTokenCount": 2, "totalTokenCount": 20});
        let u = usage(&wire);
        assert_eq!((u.input, u.output, u.reasoning, u.cached), (10, 10, 6, 2));
        let back = usage_metadata(u);
        assert_eq!(back["candidatesTokenCount"], 4);
        assert_eq!(back["totalTokenCount"], 20);
        assert_eq!(usage(&back), u);
    }

    #[test]
    fn fields_named_as_in_the_proto_are_read_as_their_camel_case_names() {
        let body = json!({
            "contents": [{"role": "user", "parts": [
                {"text": "hi"},
                {"function_call": {"name": "f", "args": {"file_path": "a", "old_text": "b"}}},
                {"function_response": {"name": "f", "response": {"exit_code": 0}}}]}],
            "system_instruction": {"parts": [{"text": "be brief"}]},
            "tools": [{"function_declarations": [
                {"name": "f", "parameters_json_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}},
                {"name": "g", "parameters": {"type": "OBJECT", "properties": {"max_count": {"type": "INTEGER", "max_items": 3}},
                    "property_ordering": ["max_count"]}}]}],
            "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
            "generation_config": {"max_output_tokens": 10, "response_mime_type": "application/json",
                "thinking_config": {"thinking_budget": 0}},
        });
        let out = camel_fields(&body);
        assert!(matches!(out, Cow::Owned(_)));
        let want = json!({
            "contents": [{"role": "user", "parts": [
                {"text": "hi"},
                {"functionCall": {"name": "f", "args": {"file_path": "a", "old_text": "b"}}},
                {"functionResponse": {"name": "f", "response": {"exit_code": 0}}}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "tools": [{"functionDeclarations": [
                {"name": "f", "parametersJsonSchema": {"type": "object", "properties": {"file_path": {"type": "string"}}}},
                {"name": "g", "parameters": {"type": "OBJECT", "properties": {"max_count": {"type": "INTEGER", "maxItems": 3}},
                    "propertyOrdering": ["max_count"]}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
            "generationConfig": {"maxOutputTokens": 10, "responseMimeType": "application/json",
                "thinkingConfig": {"thinkingBudget": 0}},
        });
        assert_eq!(*out, want);
        // A request already in camelCase (with snake_case names only where they are the
        // caller's) is read as it is, without a copy.
        assert!(matches!(camel_fields(&want), Cow::Borrowed(_)));
    }
}
