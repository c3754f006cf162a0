use super::*;
use crate::translate::StreamTranslator;

fn chunk(delta: Value, finish: Option<&str>) -> sse::Event {
    let data = json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    sse::Event {
        name: None,
        data: data.to_string(),
        raw: Default::default(),
    }
}

fn call(index: u64, id: Option<&str>, name: Option<&str>, args: &str) -> Value {
    let mut f = json!({"arguments": args});
    if let Some(name) = name {
        f["name"] = json!(name);
    }
    let mut c = json!({"index": index, "type": "function", "function": f});
    if let Some(id) = id {
        c["id"] = json!(id);
    }
    json!({"tool_calls": [c]})
}

/// Runs chunks through and rebuilds the blocks as a strict Anthropic client would,
/// failing on a delta to a block that is not open or a block opened twice.
fn blocks(chunks: Vec<sse::Event>) -> Vec<Value> {
    let mut s = Stream::new(Context::default());
    let mut out = Vec::new();
    for c in &chunks {
        s.event(c, &mut out);
    }
    s.finish(&mut out);
    let mut parser = sse::Parser::default();
    parser.push(&out);
    let mut blocks: Vec<Value> = Vec::new();
    let mut open: Option<usize> = None;
    while let Some(ev) = parser.next_event() {
        let ev: Value = serde_json::from_str(&ev.data).unwrap_or_default();
        let index = ev["index"].as_u64().map(|i| i as usize);
        match ev["type"].as_str() {
            Some("content_block_start") => {
                assert_eq!(open, None, "a block opened while another is open");
                assert_eq!(index, Some(blocks.len()), "blocks are numbered in order");
                let mut b = ev["content_block"].clone();
                b["partial"] = json!("");
                blocks.push(b);
                open = index;
            }
            Some("content_block_delta") => {
                assert_eq!(index, open, "a delta to a block that is not open");
                let b = &mut blocks[open.unwrap_or_default()];
                let piece = ev["delta"]["partial_json"]
                    .as_str()
                    .or(ev["delta"]["text"].as_str());
                b["partial"] = json!(format!(
                    "{}{}",
                    b["partial"].as_str().unwrap_or(""),
                    piece.unwrap_or("")
                ));
            }
            Some("content_block_stop") => {
                assert_eq!(index, open);
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!(open, None, "every block is closed");
    blocks
}

#[test]
fn a_system_message_inside_messages_stays_in_place() {
    let body = json!({"model": "m", "max_tokens": 5, "system": "top", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "system", "content": [{"type": "text", "text": "mid-conversation"}]},
        {"role": "user", "content": "again"},
    ]});
    let out = request(&body).expect("translated");
    let roles: Vec<&str> = out["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["system", "user", "system", "user"]);
    assert_eq!(out["messages"][2]["content"], "mid-conversation");
}

#[test]
fn interleaved_tool_call_deltas_reach_their_own_blocks() {
    let got = blocks(vec![
        chunk(call(0, Some("call_a"), Some("read"), "{\"pa"), None),
        chunk(call(1, Some("call_b"), Some("grep"), "{\"q\""), None),
        chunk(call(0, None, None, "th\":1}"), None),
        chunk(call(1, None, None, ":2}"), None),
        chunk(json!({}), Some("tool_calls")),
    ]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["id"], "call_a");
    assert_eq!(got[0]["name"], "read");
    assert_eq!(got[0]["partial"], "{\"path\":1}");
    assert_eq!(got[1]["id"], "call_b");
    assert_eq!(got[1]["name"], "grep");
    assert_eq!(got[1]["partial"], "{\"q\":2}");
}

#[test]
fn sequential_parallel_calls_and_index_gaps_each_get_one_named_block() {
    let got = blocks(vec![
        chunk(json!({"content": "let me look"}), None),
        chunk(call(0, Some("call_a"), Some("read"), ""), None),
        chunk(call(0, None, None, "{}"), None),
        chunk(call(5, Some("call_b"), Some("ls"), "{\"d\":"), None),
        chunk(call(5, None, None, "1}"), None),
        chunk(json!({}), Some("tool_calls")),
    ]);
    let names: Vec<&Value> = got.iter().map(|b| &b["name"]).collect();
    assert_eq!(names, [&Value::Null, &json!("read"), &json!("ls")]);
    assert_eq!(got[0]["partial"], "let me look");
    assert_eq!(got[2]["partial"], "{\"d\":1}");
}
