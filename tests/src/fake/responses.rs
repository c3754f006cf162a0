//! OpenAI's Responses API (`POST /v1/responses`; Azure `POST /openai/responses?api-version=`),
//! from the API reference: `response` objects with `output` items (`message` with
//! `output_text` parts, `function_call`, `custom_tool_call`), `usage` with
//! `input_tokens_details`/`output_tokens_details`, `status: incomplete` with
//! `incomplete_details.reason`, and the named, numbered SSE events from `response.created`
//! to `response.completed`. `store` (default true) keeps a response for
//! `previous_response_id`; an unknown one is 400 `previous_response_not_found`.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::combinators::BoxBody;
use serde_json::{json, Value};

use super::{chunks, json, openai::args_for, words, Fake, Received};

fn input_items(b: &Value) -> Vec<Value> {
    match &b["input"] {
        Value::String(s) => vec![json!({"type": "message", "role": "user", "content": s})],
        Value::Array(a) => a.clone(),
        _ => Vec::new(),
    }
}

/// The output items and status for a request.
fn output(b: &Value, conversation: &[Value]) -> (Vec<Value>, Option<&'static str>) {
    let prompt = super::last_user_text(conversation, "user");
    let last = conversation.last().cloned().unwrap_or_default();
    let after_tool = matches!(
        last["type"].as_str(),
        Some("function_call_output" | "custom_tool_call_output")
    );
    let tools = b["tools"].as_array().cloned().unwrap_or_default();
    let usable: Vec<&Value> = tools
        .iter()
        .filter(|t| matches!(t["type"].as_str(), Some("function" | "custom")))
        .collect();
    if !usable.is_empty() && !after_tool && b["tool_choice"] != "none" {
        let n = if prompt.contains("parallel") { 2 } else { 1 };
        let usable: Vec<Value> = usable.into_iter().cloned().collect();
        let t = super::pick_tool(&usable, |t| &t["parameters"], &prompt);
        let calls = (0..n)
            .map(|i| {
                if t["type"] == "custom" {
                    json!({"type": "custom_tool_call", "id": format!("ctc_fake{i}"), "call_id": format!("call_fake{i}"), "name": t["name"], "input": "*** Begin Patch\n*** End Patch", "status": "completed"})
                } else {
                    json!({"type": "function_call", "id": format!("fc_fake{i}"), "call_id": format!("call_fake{i}"), "name": t["name"], "arguments": args_for(&t["parameters"], i, &prompt).to_string(), "status": "completed"})
                }
            })
            .collect();
        return (calls, None);
    }
    let mut text = if after_tool {
        format!("the tool said {}", super::text(&last["output"]))
    } else {
        prompt
    };
    if b.pointer("/text/format/type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("json"))
    {
        text = super::instance_of(b.pointer("/text/format/schema"), &text).to_string();
    }
    let mut incomplete = None;
    if let Some(max) = b["max_output_tokens"].as_u64() {
        if words(&text) > max {
            text = text
                .split_whitespace()
                .take(max as usize)
                .collect::<Vec<_>>()
                .join(" ");
            incomplete = Some("max_output_tokens");
        }
    }
    let msg = json!({"type": "message", "id": "msg_fake", "status": if incomplete.is_some() { "incomplete" } else { "completed" }, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]});
    (vec![msg], incomplete)
}

/// The realistic answer to a Responses request.
pub fn answer(fake: &Fake, r: &Received) -> Response<BoxBody<Bytes, std::io::Error>> {
    let b = &r.body;
    let mut conversation = Vec::new();
    if let Some(prev) = b["previous_response_id"].as_str() {
        match fake.stored(prev) {
            Some(c) => conversation = c,
            None => {
                return json(
                    400,
                    &json!({"error": {"message": format!("Previous response with id '{prev}' not found."), "type": "invalid_request_error", "param": "previous_response_id", "code": "previous_response_not_found"}}),
                )
            }
        }
    }
    conversation.extend(input_items(b));
    let n = fake.received().len();
    let id = format!("resp_fake{n:04}");
    let (output, incomplete) = output(b, &conversation);
    let input_tokens: u64 = conversation
        .iter()
        .map(|i| words(&super::text(&i["content"])))
        .sum();
    let output_tokens: u64 = output
        .iter()
        .map(|o| words(&super::text(&o["content"])) + if o["type"] == "message" { 0 } else { 5 })
        .sum();
    let usage = json!({"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": input_tokens + output_tokens});
    if b["store"] != false {
        let mut kept = conversation.clone();
        kept.extend(output.iter().cloned());
        fake.store(id.clone(), kept);
    }
    let status = if incomplete.is_some() {
        "incomplete"
    } else {
        "completed"
    };
    let mut response = json!({
        "id": id, "object": "response", "created_at": 1_700_000_000, "status": status, "error": null,
        "incomplete_details": incomplete.map(|r| json!({"reason": r})), "instructions": b["instructions"],
        "max_output_tokens": b["max_output_tokens"], "model": b["model"], "output": output,
        "parallel_tool_calls": b.get("parallel_tool_calls").cloned().unwrap_or(json!(true)),
        "previous_response_id": b["previous_response_id"], "reasoning": {"effort": null, "summary": null},
        "store": b.get("store").cloned().unwrap_or(json!(true)), "temperature": 1.0,
        "text": b.get("text").cloned().unwrap_or(json!({"format": {"type": "text"}})),
        "tool_choice": b.get("tool_choice").cloned().unwrap_or(json!("auto")), "tools": b.get("tools").cloned().unwrap_or(json!([])),
        "top_p": 1.0, "truncation": "disabled", "usage": usage, "user": null, "metadata": {},
    });
    if b["stream"] != true {
        return json(200, &response);
    }
    let events = stream_events(&mut response);
    fake.sse(
        events
            .into_iter()
            .map(|e| (Duration::from_millis(1), e))
            .collect(),
        false,
    )
}

/// The events of a streamed response, numbered from 0.
fn stream_events(response: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut seq = 0u64;
    let mut ev = |kind: &str, mut data: Value| {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(seq);
        seq += 1;
        out.push(format!("event: {kind}\ndata: {data}\n\n"));
    };
    let items = response["output"].as_array().cloned().unwrap_or_default();
    let status = response["status"].clone();
    let mut start = response.clone();
    start["status"] = json!("in_progress");
    start["output"] = json!([]);
    start["usage"] = Value::Null;
    ev("response.created", json!({"response": start}));
    ev("response.in_progress", json!({"response": start}));
    for (i, item) in items.iter().enumerate() {
        let id = &item["id"];
        let mut opening = item.clone();
        opening["status"] = json!("in_progress");
        match item["type"].as_str() {
            Some("message") => {
                opening["content"] = json!([]);
                ev(
                    "response.output_item.added",
                    json!({"output_index": i, "item": opening}),
                );
                let text = item["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let part =
                    json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
                ev(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": i, "content_index": 0, "part": part}),
                );
                for piece in chunks(&text) {
                    ev(
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "delta": piece, "logprobs": []}),
                    );
                }
                ev(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": i, "content_index": 0, "text": text, "logprobs": []}),
                );
                ev(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": i, "content_index": 0, "part": item["content"][0]}),
                );
            }
            Some("function_call") => {
                opening["arguments"] = json!("");
                ev(
                    "response.output_item.added",
                    json!({"output_index": i, "item": opening}),
                );
                let args = item["arguments"].as_str().unwrap_or_default();
                let mid = args.len() / 2;
                for piece in [&args[..mid], &args[mid..]] {
                    ev(
                        "response.function_call_arguments.delta",
                        json!({"item_id": id, "output_index": i, "delta": piece}),
                    );
                }
                ev(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": i, "name": item["name"], "arguments": args}),
                );
            }
            _ => {
                opening["input"] = json!("");
                ev(
                    "response.output_item.added",
                    json!({"output_index": i, "item": opening}),
                );
                ev(
                    "response.custom_tool_call_input.delta",
                    json!({"item_id": id, "output_index": i, "delta": item["input"]}),
                );
                ev(
                    "response.custom_tool_call_input.done",
                    json!({"item_id": id, "output_index": i, "input": item["input"]}),
                );
            }
        }
        ev(
            "response.output_item.done",
            json!({"output_index": i, "item": item}),
        );
    }
    let closing = if status == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    ev(closing, json!({"response": response}));
    out
}
