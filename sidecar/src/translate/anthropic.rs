//! The Anthropic Messages format's own knowledge: its `usage` object read and written.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{count, Usage};
use crate::skim::Text;

/// A Messages stream event as a stream translation reads it: the token-bearing fields
/// borrowed from the event, the once-a-stream ones (`message`, `content_block`, `usage`,
/// `error`) as trees.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Event<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    pub index: Option<u64>,
    #[serde(borrow)]
    pub delta: EventDelta<'a>,
    pub message: Option<Value>,
    pub content_block: Option<Value>,
    pub usage: Option<Value>,
    pub error: Option<Value>,
}

/// A `content_block_delta`'s delta (text, thinking, signature or a piece of tool input) or a
/// `message_delta`'s (the stop reason).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EventDelta<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub text: Text<'a>,
    #[serde(borrow)]
    pub thinking: Text<'a>,
    #[serde(borrow)]
    pub signature: Text<'a>,
    #[serde(borrow)]
    pub partial_json: Text<'a>,
    #[serde(borrow)]
    pub stop_reason: Text<'a>,
}

/// An Anthropic `usage` object, the fields the gateway reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageWire {
    #[serde(deserialize_with = "count")]
    input_tokens: u64,
    #[serde(deserialize_with = "count")]
    output_tokens: u64,
    #[serde(deserialize_with = "count")]
    cache_read_input_tokens: u64,
    #[serde(deserialize_with = "count")]
    cache_creation_input_tokens: u64,
}

/// Usage from an Anthropic `usage` object: its `input_tokens` exclude cache reads and writes,
/// which OpenAI's meaning includes.
pub fn usage<'de>(u: impl serde::Deserializer<'de>) -> Usage {
    let u = UsageWire::deserialize(u).unwrap_or_default();
    Usage {
        input: u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
        output: u.output_tokens,
        cached: u.cache_read_input_tokens,
        cache_creation: u.cache_creation_input_tokens,
        reasoning: 0,
    }
}

/// As an Anthropic `usage` object (input excludes cache reads and writes).
pub fn usage_object(u: Usage) -> Value {
    json!({
        "input_tokens": u.input.saturating_sub(u.cached + u.cache_creation),
        "output_tokens": u.output,
        "cache_read_input_tokens": u.cached,
        "cache_creation_input_tokens": u.cache_creation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_cache_reads_and_writes_as_input_and_reads_back_what_it_writes() {
        let wire = json!({"input_tokens": 3, "output_tokens": 9, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "service_tier": "standard"});
        let u = usage(&wire);
        assert_eq!(
            (u.input, u.cached, u.cache_creation, u.output),
            (123, 100, 20, 9)
        );
        assert_eq!(usage(usage_object(u)), u);
        assert_eq!(usage(json!({"output_tokens": 5})).output, 5);
    }
}
