use serde_json::{json, Value};

use super::*;
use crate::translate::anthropic_openai;

/// What the tree-based translation answers, model and streaming set as `request` sets them.
fn by_tree(body: &Value, stream: bool) -> Option<Value> {
    let mut out = anthropic_openai::request(body).ok()?;
    out["model"] = json!("up");
    if stream {
        out["stream"] = json!(true);
        out["stream_options"]["include_usage"] = json!(true);
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
        "anthropic",
        include_str!("../../../../../bench/payloads/agentic-anthropic.json"),
        2,
    );
}

#[test]
fn answers_what_the_tree_answers_for_odd_shapes() {
    for body in [
        json!({"messages": [{"role": "user", "content": "a \"quoted\" \\ \u{e9}\n"}], "max_tokens": null, "temperature": null, "top_p": 0.5}),
        json!({"system": [{"type": "text", "text": "one"}, {"type": "text", "text": "two\n"}, {"type": "x"}], "messages": []}),
        json!({"system": 7, "messages": [{"role": "system", "content": [{"type": "text", "text": "mid"}, {"text": 3}]}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "only"}]}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "is_error": true}, {"type": "tool_result", "tool_use_id": "t2", "content": "plain"}, {"type": "tool_result", "tool_use_id": "t3"}, {"type": "text", "text": "after"}]}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}}, {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, {"type": "document", "source": {"type": "base64", "data": "JVBE"}}, {"type": "text", "text": "see"}]}]}),
        json!({"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "a"}, {"type": "tool_use", "id": "c1", "name": "f", "input": {"z": 1, "a": [1, 2.5, "x"]}}, {"type": "tool_use", "id": "c2", "name": "g"}]}]}),
        json!({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]}, {"role": "assistant", "content": 5}, {"role": "user", "content": []}]}),
        json!({"messages": [], "stop_sequences": [], "metadata": {"user_id": "u"}, "tools": [{"name": "f", "input_schema": {"type": "object"}, "description": "d"}, {"name": "server", "type": "web_search"}], "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true}}),
        json!({"messages": [], "stop_sequences": ["x", "y"], "metadata": 3, "tools": [{"name": "f", "input_schema": null}], "tool_choice": "auto"}),
        json!({"messages": [], "tools": [{"name": "server"}], "tool_choice": {"type": "any"}}),
        json!({"messages": [], "thinking": {"type": "enabled", "budget_tokens": 10000}}),
        json!({"messages": [], "thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048}),
        json!({"messages": [], "thinking": {"type": "adaptive"}}),
        json!({"messages": [], "thinking": {"type": "disabled"}}),
        json!({"messages": [], "thinking": {"type": "enabled", "budget_tokens": 32000}}),
        json!({"messages": [], "tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "none"}}),
    ] {
        assert!(same(&body), "taken: {body}");
    }
}

#[test]
fn escaped_words_answer_as_the_tree_reads_them() {
    let body = r#"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base\u0036\u0034","media_type":"image/png","data":"QUJD"}},{"type":"image","source":{"type":"url","url":"https:\/\/x\/y.png"}}]}]}"#;
    super::super::harness::same_bytes(written, by_tree, body.as_bytes());
}

#[test]
fn leaves_to_the_tree_what_it_does_not_write() {
    for body in [
        json!({"messages": [{"role": "tool", "content": "x"}]}),
        json!({"messages": [{"role": "user", "content": [{"type": "server_tool_use"}]}]}),
        json!({"messages": [], "output_config": {"format": {"type": "json_schema", "schema": {}}}}),
        json!({"messages": "nope"}),
        json!({"model": "m"}),
    ] {
        assert!(
            request(&serde_json::to_vec(&body).unwrap(), "m", false).is_none(),
            "{body}"
        );
    }
    assert!(request(b"{\"messages\":[],\"messages\":[]}", "m", false).is_none());
}

#[test]
fn a_tool_calls_arguments_are_its_input_as_sent() {
    // Keys in the caller's order, numbers as written, escapes kept: no tree re-prints them.
    let body = br#"{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f","input":{"z":1.10,"a":[1e2,"\u00e9"]}}]}]}"#;
    let out: Value = serde_json::from_slice(&request(body, "m", false).unwrap()).unwrap();
    assert_eq!(
        out["messages"][0]["tool_calls"][0]["function"]["arguments"],
        r#"{"z":1.10,"a":[1e2,"\u00e9"]}"#
    );
}
