use super::*;
use crate::translate::StreamTranslator;

fn chunk(data: Value) -> sse::Event {
    sse::Event {
        name: None,
        data: data.to_string(),
        raw: Default::default(),
    }
}

#[test]
fn tool_call_indices_that_skip_or_interleave_gather_per_index() {
    let mut s = Stream::new(Context::default());
    let mut out = Vec::new();
    let calls = [
        json!({"index": 3, "id": "c3", "function": {"name": "b", "arguments": "{\"y\""}}),
        json!({"index": 1, "id": "c1", "function": {"name": "a", "arguments": "{\"x\":"}}),
        json!({"index": 3, "function": {"arguments": ":2}"}}),
        json!({"index": 1, "function": {"arguments": "1}"}}),
    ];
    for c in calls {
        s.event(
            &chunk(json!({"choices": [{"index": 0, "delta": {"tool_calls": [c]}}]})),
            &mut out,
        );
    }
    s.event(
        &chunk(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})),
        &mut out,
    );
    assert!(s.finish(&mut out));
    let mut parser = sse::Parser::default();
    parser.push(&out);
    let last: Value =
        serde_json::from_str(&parser.next_event().expect("an event").data).expect("json");
    let parts = &last["candidates"][0]["content"]["parts"];
    assert_eq!(
        parts,
        &json!([
            {"functionCall": {"id": "c1", "name": "a", "args": {"x": 1}}},
            {"functionCall": {"id": "c3", "name": "b", "args": {"y": 2}}},
        ])
    );
}
