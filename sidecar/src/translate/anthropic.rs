//! The Anthropic Messages format's own knowledge: its `usage` object read and written.

use serde::{Deserialize, Serialize};
use serde_json::{json, value::RawValue, Value};

use super::{count, Null, Usage};
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

/// A whole Messages response, the fields a translation reads (text borrowed from the body,
/// a tool's input and the usage as their JSON text); the rest is not read.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Message<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub model: Text<'a>,
    #[serde(borrow)]
    pub content: Vec<Block<'a>>,
    #[serde(borrow)]
    pub stop_reason: Text<'a>,
    #[serde(borrow)]
    pub usage: Option<&'a RawValue>,
}

/// A content block: `text`, `thinking` (with its signature), `redacted_thinking` or
/// `tool_use`; other types are read as a kind alone.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Block<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub text: Text<'a>,
    #[serde(borrow)]
    pub thinking: Text<'a>,
    #[serde(borrow)]
    pub signature: Text<'a>,
    #[serde(borrow)]
    pub data: Text<'a>,
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub input: Option<&'a RawValue>,
}

impl Block<'_> {
    /// The block as carried thinking (`thinking_blocks`), if it is signed thinking or
    /// redacted thinking: what Anthropic accepts back on a later turn.
    pub fn signed(&self) -> Option<Value> {
        match self.kind.filled()? {
            "thinking" => Some(json!({
                "type": "thinking",
                "thinking": self.thinking.0.as_deref().unwrap_or_default(),
                "signature": self.signature.filled()?,
            })),
            "redacted_thinking" => Some(json!({
                "type": "redacted_thinking",
                "data": self.data.0.as_deref()?,
            })),
            _ => None,
        }
    }
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
    serde_json::to_value(UsageOut::from(u)).unwrap_or_default()
}

/// A `usage` object as the gateway writes one.
#[derive(Serialize)]
pub struct UsageOut {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
}

impl From<Usage> for UsageOut {
    fn from(u: Usage) -> Self {
        UsageOut {
            input_tokens: u.input.saturating_sub(u.cached + u.cache_creation),
            output_tokens: u.output,
            cache_read_input_tokens: u.cached,
            cache_creation_input_tokens: u.cache_creation,
        }
    }
}

/// A whole Messages answer as the gateway writes one from another format's, typed.
#[derive(Serialize)]
pub struct Reply<'a> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<ReplyBlock<'a>>,
    pub stop_reason: &'static str,
    pub stop_sequence: Option<Null>,
    pub usage: UsageOut,
}

/// A content block of a [`Reply`].
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyBlock<'a> {
    /// Reasoning, unsigned: no Anthropic key signed it.
    Thinking {
        thinking: &'a str,
        signature: &'static str,
    },
    Text {
        text: &'a str,
    },
    /// A tool call, its input the JSON text of the call's arguments.
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Box<RawValue>,
    },
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
