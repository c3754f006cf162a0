use serde_json::{json, Value};

use super::*;
use crate::translate::{openai_anthropic, Context};

/// What the tree-based translation answers, model and streaming set as `request` sets them.
fn by_tree(body: &Value, stream: bool) -> Option<Value> {
    let mut out = openai_anthropic::request(body, &mut Context::default()).ok()?;
    out["model"] = json!("up");
    if stream {
        out["stream"] = json!(true);
    }
    Some(out)
}

fn same(body: &Value) -> bool {
    super::super::harness::same(written, by_tree, body)
}

#[test]
fn answers_what_the_tree_answers_for_every_golden_scenario_and_the_agentic_payload() {
    super::super::harness::scenarios(
        written,
        by_tree,
        "openai",
        include_str!("../../../../../bench/payloads/agentic-openai.json"),
        3,
    );
}

#[test]
fn answers_what_the_tree_answers_for_odd_shapes() {
    for body in [
        json!({"messages": [{"role": "system", "content": "a \"b\"\n"}, {"role": "developer", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]}, {"role": "user", "content": "hi"}, {"role": "user", "content": "again"}], "max_tokens": 5, "temperature": null, "top_p": 0.5, "top_k": 3}),
        json!({"messages": [{"role": "user", "content": null}, {"role": "user", "content": []}, {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}, {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}}]}]}),
        json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "let me look", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"z\": 1, \"a\": [1, 2.5]}"}}, {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r1"}, {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "r2"}]}, {"role": "user", "content": "and?"}]}),
        json!({"messages": [{"role": "assistant", "content": null}, {"role": "assistant", "content": "", "tool_calls": []}, {"role": "assistant", "content": [{"type": "text", "text": "t"}], "tool_calls": "x"}], "max_completion_tokens": 9, "max_tokens": 3}),
        json!({"messages": [], "stop": "END", "user": "u1", "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}, {"type": "function", "function": {"name": "g"}}, {"type": "web"}], "tool_choice": "required", "parallel_tool_calls": false}),
        json!({"messages": [], "stop": ["a", "b"], "user": 5, "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "f"}}}),
        json!({"messages": [], "stop": [], "tools": [{"function": {"name": "f"}}], "tool_choice": "none"}),
        json!({"messages": [], "tools": [], "tool_choice": "required"}),
        json!({"messages": [], "tools": [{"function": {"name": "f"}}], "tool_choice": {"type": "allowed_tools"}}),
        json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": null}, {"id": "d", "function": [1]}, {"id": "e", "function": "f"}, {"id": "g"}]}]}),
        json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": " \n {\"s\": \"\u{e9} \\ud83d\\ude00 \\\" \\\\ \\/\", \"n\": [1e3, -0.5]}\t "}}, {"id": "d", "function": {"name": "g", "arguments": " \r\n"}}, {"id": "e", "function": {"name": "h", "arguments": "42"}}, {"id": "k", "function": {"name": "i", "arguments": {"a": 1}}}]}]}),
    ] {
        assert!(same(&body), "taken: {body}");
    }
}

#[test]
fn escaped_urls_and_words_answer_as_the_tree_reads_them() {
    for body in [
        r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image\/png;base64,QUJD"}}]}]}"#,
        r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64\u002cQUJD"}}]}]}"#,
        r#"{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application\/pdf;base64,JVBE"}}]}]}"#,
        r#"{"messages":[],"tools":[{"function":{"name":"f"}}],"tool_choice":"requ\u0069red"}"#,
    ] {
        super::super::harness::same_bytes(written, by_tree, body.as_bytes());
    }
}

#[test]
fn leaves_to_the_tree_what_it_does_not_write() {
    for body in [
        json!({"messages": [{"role": "function", "content": "x"}]}),
        json!({"messages": [{"content": "x"}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]}),
        json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "not json"}}]}]}),
        json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{} {}"}}]}]}),
        json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{\"s\": \"\\ud800\"}"}}]}]}),
        json!({"messages": [], "response_format": {"type": "json_object"}}),
        json!({"messages": [], "reasoning_effort": "low"}),
        json!({"messages": [], "n": 2}),
        json!({"messages": [], "tools": [{"function": null}]}),
        json!({"messages": [], "tools": [{"function": "f"}]}),
    ] {
        assert!(
            request(&serde_json::to_vec(&body).unwrap(), "m", false).is_none(),
            "{body}"
        );
    }
}
