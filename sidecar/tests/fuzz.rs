//! Property tests over every parser and translator an upstream or a caller can reach: bodies,
//! SSE streams and manifests, arbitrary and mutated from real shapes. Nothing may panic, and
//! what is refused is refused with an error (a caller error in the caller's dialect). The
//! case count is bounded so the suite stays fast; `PROPTEST_CASES` raises it.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard_sidecar::{
    dialect::{Dialect, Operation},
    inbound, sse,
    translate::{self, Context},
};

const DIALECTS: [Dialect; 4] = [
    Dialect::OpenAi,
    Dialect::Anthropic,
    Dialect::Gemini,
    Dialect::Responses,
];

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z_ ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the translators read, and others.
fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("model".to_string()),
        Just("messages".into()),
        Just("role".into()),
        Just("content".into()),
        Just("type".into()),
        Just("text".into()),
        Just("tools".into()),
        Just("tool_calls".into()),
        Just("function".into()),
        Just("arguments".into()),
        Just("name".into()),
        Just("input".into()),
        Just("system".into()),
        Just("contents".into()),
        Just("parts".into()),
        Just("functionCall".into()),
        Just("functionResponse".into()),
        Just("max_tokens".into()),
        Just("stream".into()),
        Just("response_format".into()),
        Just("json_schema".into()),
        Just("schema".into()),
        Just("properties".into()),
        Just("generationConfig".into()),
        Just("responseSchema".into()),
        Just("choices".into()),
        Just("delta".into()),
        Just("index".into()),
        Just("usage".into()),
        Just("candidates".into()),
        Just("error".into()),
        Just("tool_use_id".into()),
        Just("image_url".into()),
        Just("source".into()),
        Just("data".into()),
        Just("inlineData".into()),
        Just("call_id".into()),
        Just("output".into()),
        Just("instructions".into()),
        Just("previous_response_id".into()),
        Just("response".into()),
        Just("item".into()),
        Just("output_index".into()),
        "[a-z]{1,8}",
    ]
}

/// A plausible call of `dialect` with some fields replaced by arbitrary JSON.
fn mutated_call(dialect: Dialect) -> impl Strategy<Value = Value> {
    let base = match dialect {
        Dialect::OpenAi => {
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]})
        }
        Dialect::Anthropic => {
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
        }
        Dialect::Gemini => json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        Dialect::Responses => {
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}], "tools": [{"type": "custom", "name": "f"}]})
        }
    };
    (field_name(), json_value(), field_name(), json_value()).prop_map(move |(k1, v1, k2, v2)| {
        let mut b = base.clone();
        if let Some(map) = b.as_object_mut() {
            map.insert(k1, v1);
        }
        let list = ["messages", "input", "contents"]
            .into_iter()
            .find(|k| b.get(*k).is_some_and(Value::is_array))
            .unwrap_or("contents");
        if let Some(first) = b
            .get_mut(list)
            .and_then(|m| m.get_mut(0))
            .and_then(Value::as_object_mut)
        {
            first.insert(k2, v2);
        }
        b
    })
}

/// A plausible whole answer of `dialect` (text, a tool call, usage) with a field of it, at
/// the top, in its first choice or candidate, or in its first tool call, replaced by
/// arbitrary JSON.
fn mutated_answer(dialect: Dialect) -> impl Strategy<Value = Value> {
    let (base, paths): (Value, [&str; 3]) = match dialect {
        Dialect::OpenAi => (
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "hi", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]}}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
            [
                "",
                "/choices/0/message",
                "/choices/0/message/tool_calls/0/function",
            ],
        ),
        Dialect::Anthropic => (
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}], "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 2}}),
            ["", "/content/0", "/content/1"],
        ),
        Dialect::Gemini => (
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}, {"functionCall": {"name": "f", "args": {"a": 1}}}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}, "modelVersion": "m", "responseId": "r"}),
            [
                "",
                "/candidates/0",
                "/candidates/0/content/parts/1/functionCall",
            ],
        ),
        Dialect::Responses => (
            json!({"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "completed", "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}, {"type": "custom_tool_call", "call_id": "d", "name": "g", "input": "x"}], "usage": {"input_tokens": 3, "output_tokens": 2}}),
            ["", "/output/0", "/output/1"],
        ),
    };
    (0..3usize, field_name(), json_value()).prop_map(move |(at, k, v)| {
        let mut b = base.clone();
        if let Some(map) = b.pointer_mut(paths[at]).and_then(Value::as_object_mut) {
            map.insert(k, v);
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn caller_bodies_are_parsed_or_refused_without_panicking(body in prop::collection::vec(any::<u8>(), 0..256), json in json_value()) {
        for dialect in DIALECTS {
            for op in [Operation::Chat, Operation::Embeddings] {
                let _ = inbound::parse(dialect, op, Bytes::from(body.clone()), None);
                let _ = inbound::parse(dialect, op, Bytes::from(json.to_string()), None);
            }
        }
    }

    #[test]
    fn every_request_translation_answers_or_refuses(from in 0..4usize, to in 0..4usize, call in (0..4usize).prop_flat_map(|d| mutated_call(DIALECTS[d]))) {
        let mut ctx = Context::default();
        for stream in [false, true] {
            if let Err(e) = translate::request(DIALECTS[from], DIALECTS[to], Operation::Chat, &call, "m", stream, &mut ctx) {
                prop_assert!(e.status_code().is_client_error(), "a refusal is the caller's error: {e}");
            }
        }
    }

    #[test]
    fn every_response_translation_answers_or_refuses(from in 0..4usize, to in 0..4usize, body in json_value(), raw in prop::collection::vec(any::<u8>(), 0..128)) {
        let ctx = Context::default();
        for op in [Operation::Chat, Operation::Embeddings] {
            let _ = translate::response(DIALECTS[from], DIALECTS[to], op, &Bytes::from(body.to_string()), &ctx);
            let _ = translate::response(DIALECTS[from], DIALECTS[to], op, &Bytes::from(raw.clone()), &ctx);
        }
    }

    #[test]
    fn every_whole_answer_is_translated_to_json_or_refused((from, to, answer) in (0..4usize, 0..4usize).prop_flat_map(|(f, t)| (Just(f), Just(t), mutated_answer(DIALECTS[t])))) {
        let ctx = Context::default();
        let body = Bytes::from(answer.to_string());
        if let Ok((out, _)) = translate::response(DIALECTS[from], DIALECTS[to], Operation::Chat, &body, &ctx) {
            let written: Result<Value, _> = serde_json::from_slice(&out);
            prop_assert!(written.as_ref().is_ok_and(Value::is_object), "not a JSON object: {}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn every_stream_translator_takes_any_event_sequence(from in 0..4usize, to in 0..4usize, events in prop::collection::vec((prop::option::of("[a-z_]{1,20}"), json_value()), 0..12)) {
        let mut t = translate::stream(DIALECTS[from], DIALECTS[to], Context::default());
        let mut out = Vec::new();
        for (name, data) in &events {
            let ev = sse::Event { name: name.clone(), data: data.to_string(), raw: Bytes::new() };
            t.event(&ev, &mut out);
        }
        if !t.finish(&mut out) {
            let _ = t.fail("cut", &mut out);
        }
        let _ = t.usage();
        // What the translator wrote is well-framed SSE.
        let mut p = sse::Parser::default();
        p.push(&out);
        while p.next_event().is_some() {}
        prop_assert!(!p.has_partial());
    }

    #[test]
    fn the_sse_parser_takes_any_bytes_in_any_chunks(bytes in prop::collection::vec(any::<u8>(), 0..512), cuts in prop::collection::vec(0..512usize, 0..8)) {
        let mut p = sse::Parser::with_limit(256);
        let mut at = 0;
        let mut cuts = cuts;
        cuts.sort_unstable();
        for cut in cuts.into_iter().chain([bytes.len()]) {
            let cut = cut.min(bytes.len()).max(at);
            p.push(&bytes[at..cut]);
            at = cut;
            while p.next_event().is_some() {}
            if p.oversized() {
                break;
            }
        }
    }

    #[test]
    fn manifests_load_or_report_without_panicking(text in "[ -~\n]{0,300}", json in json_value()) {
        let mut m = switchyard_crds::manifest::Manifests::default();
        let mut errors = Vec::new();
        switchyard_crds::manifest::parse(&text, std::path::Path::new("f.yaml"), "default", &mut m, &mut errors);
        let doc = format!("apiVersion: switchyard.dev/v1alpha1\nkind: AIBudget\nmetadata: {{name: b}}\nspec: {json}\n");
        switchyard_crds::manifest::parse(&doc, std::path::Path::new("f.yaml"), "default", &mut m, &mut errors);
    }
}
