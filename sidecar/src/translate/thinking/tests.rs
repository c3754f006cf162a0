use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::{
    dialect::{Dialect, Operation},
    translate::{self, responses::ResponsesCall, Context},
};

#[test]
fn sealed_blocks_open_as_they_were_and_nothing_else_opens() {
    let content = [
        json!({"type": "thinking", "thinking": "weigh it", "signature": "EqQBCkYI"}),
        json!({"type": "thinking", "thinking": "unsigned", "signature": ""}),
        json!({"type": "redacted_thinking", "data": "EmwKAhgB"}),
        json!({"type": "text", "text": "42"}),
    ];
    let blocks = signed(&content);
    assert_eq!(blocks, [content[0].clone(), content[2].clone()]);
    assert_eq!(open(&seal(&blocks)), Some(blocks));
    assert_eq!(open("gAAAAABo-opaque-openai"), None);
    assert_eq!(open("switchyard.thinking.v1:!!"), None);
}

/// An Anthropic answer that thought, signed, then called a tool.
fn anthropic_answer() -> Value {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "tool_use",
        "content": [
            {"type": "thinking", "thinking": "I should list the files.", "signature": "EqQBCkYIBRgCKkB"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
            {"type": "tool_use", "id": "toolu_1", "name": "shell", "input": {"cmd": "ls"}},
        ],
        "usage": {"input_tokens": 10, "output_tokens": 20}})
}

fn responses_ctx(body: &Value) -> Context {
    Context {
        model: "chat".into(),
        responses: Some(std::sync::Arc::new(ResponsesCall::of(body))),
        ..Context::default()
    }
}

fn to_anthropic(from: Dialect, body: &Value, ctx: &mut Context) -> Value {
    translate::request(
        from,
        Dialect::Anthropic,
        Operation::Chat,
        body,
        "claude",
        false,
        ctx,
    )
    .expect("translated")
}

#[test]
fn a_responses_tool_loop_on_anthropic_keeps_thinking_with_its_signed_blocks() {
    let first = json!({"model": "chat", "input": "list the files", "reasoning": {"effort": "medium"},
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}]});
    let mut ctx = responses_ctx(&first);
    let up = to_anthropic(Dialect::Responses, &first, &mut ctx);
    assert_eq!(up["thinking"]["type"], "enabled");
    let body = Bytes::from(anthropic_answer().to_string());
    let (out, _) = translate::response(
        Dialect::Responses,
        Dialect::Anthropic,
        Operation::Chat,
        &body,
        &ctx,
    )
    .expect("translated");
    let out: Value = serde_json::from_slice(&out).expect("json");
    let reasoning = &out["output"][0];
    assert_eq!(reasoning["type"], "reasoning");
    assert_eq!(reasoning["summary"][0]["text"], "I should list the files.");
    let sealed = reasoning["encrypted_content"].as_str().expect("sealed");
    let call = out["output"]
        .as_array()
        .expect("output")
        .iter()
        .find(|i| i["type"] == "function_call")
        .expect("a call")
        .clone();
    // The next turn hands the reasoning item back with the call and its output.
    let second = json!({"model": "chat", "reasoning": {"effort": "medium"},
    "tools": first["tools"],
    "input": [
        {"role": "user", "content": "list the files"},
        {"type": "reasoning", "id": reasoning["id"], "summary": reasoning["summary"], "encrypted_content": sealed},
        call,
        {"type": "function_call_output", "call_id": "toolu_1", "output": "a.txt"},
    ]});
    let mut ctx = responses_ctx(&second);
    let up = to_anthropic(Dialect::Responses, &second, &mut ctx);
    assert_eq!(
        up["thinking"]["type"], "enabled",
        "mid-loop thinking stays on: {up}"
    );
    let assistant = &up["messages"][1];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(
        assistant["content"][0],
        json!({"type": "thinking", "thinking": "I should list the files.", "signature": "EqQBCkYIBRgCKkB"})
    );
    assert_eq!(
        assistant["content"][1],
        json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy"})
    );
    assert_eq!(assistant["content"][2]["type"], "tool_use");
    // The same turn to an OpenAI upstream carries none of it.
    let mut ctx = responses_ctx(&second);
    let up = translate::request(
        Dialect::Responses,
        Dialect::OpenAi,
        Operation::Chat,
        &second,
        "gpt",
        false,
        &mut ctx,
    )
    .expect("translated");
    assert!(!up.to_string().contains("thinking_blocks"), "{up}");
    // And to a Responses upstream, which could not open it, the sealed item is left out.
    let raw = second.to_string();
    assert!(sealed_in(raw.as_bytes()));
    let mut ctx = responses_ctx(&second);
    let up = translate::request(
        Dialect::Responses,
        Dialect::Responses,
        Operation::Chat,
        &second,
        "gpt",
        false,
        &mut ctx,
    )
    .expect("translated");
    assert_eq!(up["input"].as_array().map(Vec::len), Some(3), "{up}");
    assert!(!sealed_in(up.to_string().as_bytes()));
}

#[test]
fn without_its_signed_blocks_a_tool_loop_turn_on_anthropic_does_not_think_and_unthinking_calls_carry_none(
) {
    let loop_turn = |blocks: Option<Value>, effort: Option<&str>| {
        let mut assistant = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "shell", "arguments": "{}"}}]});
        if let Some(b) = blocks {
            assistant["thinking_blocks"] = b;
        }
        let mut body = json!({"model": "chat", "messages": [{"role": "user", "content": "go"}, assistant, {"role": "tool", "tool_call_id": "t1", "content": "ok"}]});
        if let Some(e) = effort {
            body["reasoning_effort"] = json!(e);
        }
        to_anthropic(Dialect::OpenAi, &body, &mut Context::default())
    };
    let signed = json!([{"type": "thinking", "thinking": "hm", "signature": "sig"}]);
    assert_eq!(loop_turn(None, Some("high"))["thinking"], Value::Null);
    let on = loop_turn(Some(signed.clone()), Some("high"));
    assert_eq!(on["thinking"]["type"], "enabled");
    assert_eq!(on["messages"][1]["content"][0]["signature"], "sig");
    let off = loop_turn(Some(signed), None);
    assert_eq!(off["thinking"], Value::Null);
    assert_eq!(
        off["messages"][1]["content"][0]["type"], "tool_use",
        "{off}"
    );
}

#[test]
fn a_streamed_anthropic_answer_seals_its_signed_blocks_in_the_reasoning_item() {
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 5}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "weigh "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "it"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "42"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let body = json!({"model": "chat", "input": "q", "stream": true});
    let mut s = translate::stream(Dialect::Responses, Dialect::Anthropic, responses_ctx(&body));
    let mut out = Vec::new();
    for (name, data) in events {
        let ev = crate::sse::Event {
            name: Some(name.into()),
            data: data.to_string(),
            raw: Default::default(),
        };
        s.event(&ev, &mut out);
    }
    s.finish(&mut out);
    let mut parser = crate::sse::Parser::default();
    parser.push(&out);
    let done: Vec<Value> = std::iter::from_fn(|| parser.next_event())
        .map(|e| serde_json::from_str::<Value>(&e.data).expect("json"))
        .filter(|e| e["type"] == "response.output_item.done" && e["item"]["type"] == "reasoning")
        .collect();
    assert_eq!(done.len(), 1);
    let sealed = done[0]["item"]["encrypted_content"]
        .as_str()
        .expect("sealed");
    assert_eq!(
        open(sealed),
        Some(vec![
            json!({"type": "thinking", "thinking": "weigh it", "signature": "SIG"})
        ])
    );
}

#[test]
fn unsigned_thinking_from_another_backend_is_left_out_for_anthropic() {
    let body = json!({"model": "chat", "max_tokens": 100, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "from an OpenAI backend", "signature": ""},
            {"type": "thinking", "thinking": "signed", "signature": "SIG"},
            {"type": "text", "text": "done"},
        ]},
        {"role": "user", "content": "again"},
    ]});
    assert!(unsigned_in(body.to_string().as_bytes()));
    assert!(!unsigned_in(br#"{"signature":"SIG"}"#));
    let up = translate::request(
        Dialect::Anthropic,
        Dialect::Anthropic,
        Operation::Chat,
        &body,
        "claude",
        false,
        &mut Context::default(),
    )
    .expect("translated");
    let content = up["messages"][1]["content"].as_array().expect("blocks");
    assert_eq!(content.len(), 2, "{up}");
    assert_eq!(content[0]["signature"], "SIG");
    assert_eq!(up["model"], "claude");
}
