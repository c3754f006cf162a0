//! The OpenAI chat-completions format's own knowledge, which every pair through the hub
//! shares: its `usage` object read and written, and its stream chunks written.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{count, Null, Usage};
use crate::{skim::Text, sse};

/// An OpenAI `usage` object, the fields the gateway reads.
#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageWire {
    #[serde(deserialize_with = "count")]
    prompt_tokens: u64,
    #[serde(deserialize_with = "count")]
    completion_tokens: u64,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PromptDetails {
    #[serde(deserialize_with = "count")]
    cached_tokens: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompletionDetails {
    #[serde(deserialize_with = "count")]
    reasoning_tokens: u64,
}

/// A `chat.completion.chunk` as a stream translation reads it, or a whole chat completion
/// (its choices' `message` read like a delta): strings borrowed from the text where they have
/// no escapes, nothing else kept.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Chunk<'a> {
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub model: Text<'a>,
    #[serde(borrow)]
    pub choices: Option<Vec<Choice<'a>>>,
    pub usage: Option<Value>,
    pub error: Option<Value>,
}

impl<'a> Choice<'a> {
    /// What the choice says: a whole completion's message, else the chunk's delta.
    pub fn said(&self) -> &Delta<'a> {
        self.message.as_ref().unwrap_or(&self.delta)
    }
}

impl<'a> Chunk<'a> {
    /// The usage it reports (the last chunk, when asked for).
    pub fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().filter(|u| u.is_object()).map(usage)
    }

    /// Its first choice (the only one a stream translation serves).
    pub fn choice(&self) -> Option<&Choice<'a>> {
        self.choices.as_ref()?.first()
    }
}

/// What a stream translation does with the pieces of an OpenAI chunk, given in the order a
/// chunk carries them: the chunk itself, its usage, then its first choice's reasoning,
/// carried thinking, text, refusal, tool-call pieces and finish reason.
pub trait ChunkSink {
    /// The upstream sent an error event.
    fn error(&mut self, message: String);
    /// A chunk came (its id and model), before its pieces.
    fn chunk(&mut self, chunk: &Chunk<'_>, out: &mut Vec<u8>);
    fn usage(&mut self, usage: Usage);
    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>);
    /// Anthropic's signed thinking carried through the hub (most callers have no room).
    fn signed(&mut self, _block: &Value, _out: &mut Vec<u8>) {}
    fn text(&mut self, text: &str, out: &mut Vec<u8>);
    /// A refusal (most callers have no room).
    fn refusal(&mut self, _text: &str, _out: &mut Vec<u8>) {}
    fn call(&mut self, call: &CallDelta<'_>, out: &mut Vec<u8>);
    fn finish_reason(&mut self, reason: &str);
}

/// Reads one chunk event (not `[DONE]`) into `sink`; an event that is not a chunk is skipped.
pub fn read_chunk(data: &str, sink: &mut impl ChunkSink, out: &mut Vec<u8>) {
    let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(data) else {
        return;
    };
    if let Some(err) = &chunk.error {
        sink.error(super::error_message(err));
        return;
    }
    sink.chunk(&chunk, out);
    if let Some(u) = chunk.usage() {
        sink.usage(u);
    }
    let Some(choice) = chunk.choice() else {
        return;
    };
    let delta = &choice.delta;
    if let Some(t) = delta.reasoning_content.filled() {
        sink.reasoning(t, out);
    }
    for block in delta.thinking_blocks.iter().flatten() {
        sink.signed(block, out);
    }
    if let Some(t) = delta.content.filled() {
        sink.text(t, out);
    }
    if let Some(t) = delta.refusal.filled() {
        sink.refusal(t, out);
    }
    for call in delta.tool_calls.iter().flatten() {
        sink.call(call, out);
    }
    if let Some(reason) = choice.finish_reason.0.as_deref() {
        sink.finish_reason(reason);
    }
}

/// A chunk's choice.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Choice<'a> {
    pub index: Option<u64>,
    #[serde(borrow)]
    pub delta: Delta<'a>,
    /// A whole completion's message (read as a delta that adds all of it).
    #[serde(borrow)]
    pub message: Option<Delta<'a>>,
    #[serde(borrow)]
    pub finish_reason: Text<'a>,
}

/// What a choice adds to the message.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Delta<'a> {
    #[serde(borrow)]
    pub content: Text<'a>,
    /// Reasoning aloud, as servers that reason aloud (and the Gemini translation) name it.
    #[serde(borrow)]
    pub reasoning_content: Text<'a>,
    #[serde(borrow)]
    pub refusal: Text<'a>,
    #[serde(borrow)]
    pub tool_calls: Option<Vec<CallDelta<'a>>>,
    /// Anthropic's signed thinking carried through the hub (see `translate::thinking`).
    pub thinking_blocks: Option<Vec<Value>>,
}

/// A piece of a tool call, keyed by its `index`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CallDelta<'a> {
    pub index: Option<u64>,
    #[serde(borrow)]
    pub id: Text<'a>,
    #[serde(borrow)]
    pub function: Option<FunctionDelta<'a>>,
}

/// A tool call's name (in its first piece) and a piece of its arguments.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct FunctionDelta<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
    #[serde(borrow)]
    pub arguments: Text<'a>,
}

/// A tool call's arguments (JSON text in a string) as the JSON they hold, every digit kept;
/// `{}` when they are absent or hold none.
pub fn arguments_json(arguments: Option<&str>) -> Box<serde_json::value::RawValue> {
    use serde_json::value::RawValue;
    let fallback = || RawValue::from_string("{}".into());
    arguments
        .map_or_else(fallback, |a| RawValue::from_string(a.into()))
        .or_else(|_| fallback())
        .unwrap_or_default()
}

/// Usage from an OpenAI `usage` object (anything unreadable counts as zero).
pub fn usage<'de>(u: impl serde::Deserializer<'de>) -> Usage {
    let u = UsageWire::deserialize(u).unwrap_or_default();
    Usage {
        input: u.prompt_tokens,
        output: u.completion_tokens,
        cached: u.prompt_tokens_details.map_or(0, |d| d.cached_tokens),
        cache_creation: 0,
        reasoning: u
            .completion_tokens_details
            .map_or(0, |d| d.reasoning_tokens),
    }
}

/// As an OpenAI `usage` object.
pub fn usage_object(u: Usage) -> Value {
    serde_json::to_value(UsageOut::from(u)).unwrap_or_default()
}

/// A whole chat completion as the gateway writes one from another format's answer, typed:
/// written straight to an OpenAI caller, or made the hub's tree for the others.
#[derive(Serialize)]
pub struct Completion<'a> {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: Cow<'a, str>,
    pub choices: Vec<CompletionChoice<'a>>,
    pub usage: UsageOut,
}

impl<'a> Completion<'a> {
    /// A `chat.completion` with the id `chatcmpl-{id}`.
    pub fn new(
        id: &str,
        created: u64,
        model: Cow<'a, str>,
        choices: Vec<CompletionChoice<'a>>,
        usage: Usage,
    ) -> Self {
        Completion {
            id: format!("chatcmpl-{id}"),
            object: "chat.completion",
            created,
            model,
            choices,
            usage: usage.into(),
        }
    }
}

/// One choice of a [`Completion`].
#[derive(Serialize)]
pub struct CompletionChoice<'a> {
    pub index: usize,
    pub message: Message<'a>,
    pub logprobs: Option<Null>,
    pub finish_reason: &'static str,
}

/// An assistant message: its text (`null` when it only calls tools), its tool calls, and
/// the reasoning it carries, as the chat-completions servers that reason aloud name it.
#[derive(Serialize)]
pub struct Message<'a> {
    pub role: &'static str,
    pub content: Option<String>,
    pub refusal: Option<Null>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reasoning_content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thinking_blocks: Vec<Value>,
}

impl<'a> Message<'a> {
    /// An assistant message of `text`, `calls` and `reasoning`: its content `null` when it
    /// calls tools and says nothing.
    pub fn assistant(text: String, calls: Vec<ToolCall<'a>>, reasoning: String) -> Self {
        Message {
            role: "assistant",
            content: (!text.is_empty() || calls.is_empty()).then_some(text),
            refusal: None,
            tool_calls: calls,
            reasoning_content: reasoning,
            thinking_blocks: Vec::new(),
        }
    }
}

impl<'a> CompletionChoice<'a> {
    /// The choice at `index`, its message and why it finished.
    pub fn new(index: usize, message: Message<'a>, finish_reason: &'static str) -> Self {
        CompletionChoice {
            index,
            message,
            logprobs: None,
            finish_reason,
        }
    }
}

/// A function call of an assistant message.
#[derive(Serialize)]
pub struct ToolCall<'a> {
    /// Its place among the message's calls, in a stream's chunks (none in a whole answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub id: Cow<'a, str>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCall<'a>,
}

impl<'a> ToolCall<'a> {
    /// A function call of a whole answer (no `index`).
    pub fn function(id: Cow<'a, str>, name: Cow<'a, str>, arguments: Cow<'a, str>) -> Self {
        ToolCall {
            index: None,
            id,
            kind: "function",
            function: FunctionCall { name, arguments },
        }
    }
}

/// A function call's name and its arguments, JSON text in a string.
#[derive(Serialize)]
pub struct FunctionCall<'a> {
    pub name: Cow<'a, str>,
    pub arguments: Cow<'a, str>,
}

/// A `usage` object as the gateway writes one.
#[derive(Serialize)]
pub struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    completion_tokens_details: ReasoningTokens,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

impl From<Usage> for UsageOut {
    fn from(u: Usage) -> Self {
        UsageOut {
            prompt_tokens: u.input,
            completion_tokens: u.output,
            total_tokens: u.input + u.output,
            prompt_tokens_details: CachedTokens {
                cached_tokens: u.cached,
            },
            completion_tokens_details: ReasoningTokens {
                reasoning_tokens: u.reasoning,
            },
        }
    }
}

/// Appends one `chat.completion.chunk` event with a single choice.
pub fn chunk(
    out: &mut Vec<u8>,
    id: &str,
    created: u64,
    model: &str,
    delta: Value,
    finish: Option<&str>,
) {
    let chunk = json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    sse::write(out, None, &chunk.to_string());
}

/// Appends a chunk whose delta is one text field (`content`, `reasoning_content`), written
/// straight out: the chunk of every token, with no tree.
pub fn text_chunk(out: &mut Vec<u8>, id: &str, created: u64, model: &str, field: &str, text: &str) {
    use std::io::Write;
    out.extend_from_slice(b"data: {\"id\":");
    let _ = serde_json::to_writer(&mut *out, id);
    let _ = write!(
        out,
        ",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":"
    );
    let _ = serde_json::to_writer(&mut *out, model);
    out.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":{\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":");
    let _ = serde_json::to_writer(&mut *out, text);
    out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
}

/// Appends the closing usage chunk (no choices), as sent when `stream_options.include_usage`
/// is set.
pub fn usage_chunk(out: &mut Vec<u8>, id: &str, created: u64, model: &str, usage: Usage) {
    let chunk = json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [], "usage": usage_object(usage),
    });
    sse::write(out, None, &chunk.to_string());
}

/// The end of a stream: the usage chunk when the caller asked for it, then `[DONE]`.
pub fn end(out: &mut Vec<u8>, id: &str, created: u64, model: &str, usage: Option<Usage>) {
    if let Some(usage) = usage {
        usage_chunk(out, id, created, model, usage);
    }
    sse::write(out, None, "[DONE]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_back_what_it_writes_and_counts_the_unreadable_as_zero() {
        let u = Usage {
            input: 12,
            output: 7,
            cached: 4,
            cache_creation: 0,
            reasoning: 2,
        };
        assert_eq!(usage(usage_object(u)), u);
        let odd = json!({"prompt_tokens": -1, "completion_tokens": "3", "prompt_tokens_details": null, "completion_tokens_details": {"reasoning_tokens": 1.5}, "extra": {}});
        assert_eq!(usage(&odd), Usage::default());
        assert_eq!(usage(&Value::Null), Usage::default());
    }

    #[test]
    fn a_text_chunk_is_the_chunk_a_tree_would_write() {
        for text in ["plain", "say \"hi\"\n\u{e9}\\ \u{1}"] {
            let (mut ours, mut tree) = (Vec::new(), Vec::new());
            text_chunk(&mut ours, "chatcmpl-\"1", 7, "m", "content", text);
            chunk(
                &mut tree,
                "chatcmpl-\"1",
                7,
                "m",
                json!({"content": text}),
                None,
            );
            let parse = |b: &[u8]| {
                let mut p = sse::Parser::default();
                p.push(b);
                let ev = p.next_event().expect("one event");
                assert!(p.next_event().is_none());
                serde_json::from_str::<Value>(&ev.data).expect("json")
            };
            assert_eq!(parse(&ours), parse(&tree));
        }
    }
}
