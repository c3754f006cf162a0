//! Anthropic's signed thinking carried through the hub, so a tool loop served by Anthropic
//! keeps its reasoning on: Anthropic wants the last assistant turn's thinking blocks back,
//! signature and all, and refuses thinking mid-loop without them.
//!
//! In the hub (OpenAI chat) an assistant message carries them as `thinking_blocks` (the name
//! LiteLLM gives them), beside `reasoning_content`; a streamed chunk carries each block's
//! signature as it comes, paired with the `reasoning_content` streamed since the last. A
//! Responses caller gets them sealed in its `reasoning` item's `encrypted_content` and hands
//! them back with it. An OpenAI upstream never sees them.

use base64::Engine;
use serde_json::Value;

/// What marks an `encrypted_content` sealed here (OpenAI's own is opaque and never starts so).
const SEALED: &str = "switchyard.thinking.v1:";

/// The blocks of an Anthropic `content` a later turn must send back: signed `thinking` and
/// `redacted_thinking`, as [`Block::signed`](super::anthropic::Block::signed) judges a block
/// (one rule for blocks read from text and from a tree).
pub fn signed(content: &[Value]) -> Vec<Value> {
    use serde::Deserialize;
    content
        .iter()
        .filter_map(|b| super::anthropic::Block::deserialize(b).ok()?.signed())
        .collect()
}

/// The blocks sealed for a Responses `reasoning` item's `encrypted_content`.
pub fn seal(blocks: &[Value]) -> String {
    let json = Value::from(blocks.to_vec()).to_string();
    format!(
        "{SEALED}{}",
        base64::engine::general_purpose::STANDARD.encode(json)
    )
}

/// The blocks in an `encrypted_content` sealed here; `None` for anything else.
pub fn open(encrypted: &str) -> Option<Vec<Value>> {
    let b64 = encrypted.strip_prefix(SEALED)?;
    let json = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let blocks: Vec<Value> = serde_json::from_slice(&json).ok()?;
    Some(signed(&blocks))
}

/// Whether a body holds anything sealed here (a byte search: no tree is built for it).
pub fn sealed_in(raw: &[u8]) -> bool {
    memchr::memmem::find(raw, SEALED.as_bytes()).is_some()
}

/// Takes the reasoning items sealed here out of a Responses request's `input`, for a
/// Responses upstream (OpenAI would refuse them as undecryptable).
pub fn drop_sealed(body: &mut Value) {
    if let Some(input) = body.get_mut("input").and_then(Value::as_array_mut) {
        input.retain(|item| {
            item.get("type").and_then(Value::as_str) != Some("reasoning")
                || !item
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.starts_with(SEALED))
        });
    }
}

/// Whether an Anthropic body may hold a thinking block with an empty signature, which the
/// sidecar writes for reasoning that no Anthropic key signed (a byte search, either spacing).
pub fn unsigned_in(raw: &[u8]) -> bool {
    [&b"\"signature\":\"\""[..], &b"\"signature\": \"\""[..]]
        .iter()
        .any(|needle| memchr::memmem::find(raw, needle).is_some())
}

/// Takes the thinking blocks no Anthropic key signed out of an Anthropic request's assistant
/// turns, for an Anthropic upstream (which refuses them): a session that an OpenAI or Gemini
/// backend served before failing over keeps its history, less that reasoning.
pub fn drop_unsigned(body: &mut Value) {
    retain_blocks(body.get_mut("messages"), |b| {
        b.get("type").and_then(Value::as_str) != Some("thinking")
            || b.get("signature")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
    });
}

/// Keeps, in every turn of an Anthropic `messages` list, only the content blocks `keep`
/// accepts.
pub fn retain_blocks(messages: Option<&mut Value>, keep: impl Fn(&Value) -> bool) {
    for m in messages.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(content) = m.get_mut("content").and_then(Value::as_array_mut) {
            content.retain(&keep);
        }
    }
}

/// Takes `thinking_blocks` off a hub request's messages, for an upstream that would refuse
/// the unknown field.
pub fn strip(hub: &mut Value) {
    let Some(messages) = hub.get_mut("messages").and_then(Value::as_array_mut) else {
        return;
    };
    for m in messages {
        if let Some(m) = m.as_object_mut() {
            m.remove("thinking_blocks");
        }
    }
}

#[cfg(test)]
mod tests;
