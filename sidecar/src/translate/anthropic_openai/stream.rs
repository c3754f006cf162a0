//! OpenAI chunks in, Anthropic events out: one content block at a time, thinking first, tool
//! calls kept per OpenAI index.

use std::{collections::BTreeMap, io::Write};

use super::*;
use crate::translate::{
    self,
    openai::{CallDelta, Chunk, ChunkSink},
};

/// A tool call seen in the stream but not yet sent: the Anthropic wire streams one block at a
/// time, so calls other than the live one wait here, keyed by their OpenAI `index`.
#[derive(Debug, Default)]
struct PendingCall {
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

/// OpenAI chunks in, Anthropic events out.
///
/// Text streams live. The first tool call streams live too; other calls (later parallel
/// calls, or calls interleaved with it) are gathered per index and sent whole, each its own
/// block, when the live one ends, so every delta reaches the block of its own index and the
/// blocks stay sequential as Anthropic sends them.
#[derive(Debug)]
pub struct Stream {
    ctx: Context,
    started: bool,
    /// The open thinking block.
    thinking: Option<usize>,
    /// The open text block.
    text: Option<usize>,
    /// The live tool call: its OpenAI index and its block.
    live: Option<(u64, usize)>,
    pending: BTreeMap<u64, PendingCall>,
    next_block: usize,
    finish: Option<String>,
    usage: Usage,
    done: bool,
    error: Option<String>,
}

impl Stream {
    /// A translator for one response.
    pub fn new(ctx: Context) -> Self {
        Self {
            ctx,
            started: false,
            thinking: None,
            text: None,
            live: None,
            pending: BTreeMap::new(),
            next_block: 0,
            finish: None,
            usage: Usage::default(),
            done: false,
            error: None,
        }
    }

    fn start(&mut self, chunk: &Chunk<'_>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = chunk.id.0.as_deref().unwrap_or("chatcmpl");
        let model = chunk.model.0.as_deref().unwrap_or(&self.ctx.model);
        let start = json!({"type": "message_start", "message": {
            "id": format!("msg_{}", id.trim_start_matches("chatcmpl-")), "type": "message", "role": "assistant",
            "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }});
        sse::write(out, Some("message_start"), &start.to_string());
    }

    fn stop_block(out: &mut Vec<u8>, index: usize) {
        let ev = json!({"type": "content_block_stop", "index": index});
        sse::write(out, Some("content_block_stop"), &ev.to_string());
    }

    fn open_block(&mut self, block: Value, out: &mut Vec<u8>) -> usize {
        let index = self.next_block;
        self.next_block += 1;
        let ev = json!({"type": "content_block_start", "index": index, "content_block": block});
        sse::write(out, Some("content_block_start"), &ev.to_string());
        index
    }

    fn json_delta(out: &mut Vec<u8>, index: usize, partial: &str) {
        Self::delta(out, index, "input_json_delta", "partial_json", partial);
    }

    /// A `content_block_delta` event, written straight out (the events of every token: no
    /// tree, no string but the output).
    fn delta(out: &mut Vec<u8>, index: usize, kind: &str, field: &str, text: &str) {
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        let _ = write!(out, "{index}");
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":");
        // A JSON string has no raw line break: the event is one `data:` line.
        if serde_json::to_writer(&mut *out, text).is_err() {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(b"}}\n\n");
    }

    fn close_thinking(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.thinking.take() {
            Self::stop_block(out, index);
        }
    }

    /// Reasoning aloud, as a thinking block (unsigned: no Anthropic key signed it).
    fn thinking_delta(&mut self, thinking: &str, out: &mut Vec<u8>) {
        let index = match self.thinking {
            Some(index) => index,
            None => {
                self.close_text(out);
                self.close_tools(out);
                let block = json!({"type": "thinking", "thinking": "", "signature": ""});
                self.open_block(block, out)
            }
        };
        self.thinking = Some(index);
        Self::delta(out, index, "thinking_delta", "thinking", thinking);
    }

    fn close_text(&mut self, out: &mut Vec<u8>) {
        if let Some(index) = self.text.take() {
            Self::stop_block(out, index);
        }
    }

    /// Ends the live call and sends every gathered one, in index order.
    fn close_tools(&mut self, out: &mut Vec<u8>) {
        if let Some((_, block)) = self.live.take() {
            Self::stop_block(out, block);
        }
        for (_, call) in std::mem::take(&mut self.pending) {
            let block = json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
            let index = self.open_block(block, out);
            if !call.arguments.is_empty() {
                Self::json_delta(out, index, &call.arguments);
            }
            Self::stop_block(out, index);
        }
    }

    fn text_delta(&mut self, text: &str, out: &mut Vec<u8>) {
        let index = match self.text {
            Some(index) => index,
            None => {
                self.close_thinking(out);
                self.close_tools(out);
                self.open_block(json!({"type": "text", "text": ""}), out)
            }
        };
        self.text = Some(index);
        Self::delta(out, index, "text_delta", "text", text);
    }

    fn tool_delta(&mut self, call: &CallDelta<'_>, out: &mut Vec<u8>) {
        let index = call.index.unwrap_or(0);
        let function = call.function.as_ref();
        let args = function
            .and_then(|f| f.arguments.0.as_deref())
            .unwrap_or_default();
        let name = function.and_then(|f| f.name.0.as_deref());
        match self.live {
            Some((live, block)) if live == index => {
                if !args.is_empty() {
                    Self::json_delta(out, block, args);
                }
            }
            None if self.pending.is_empty() => {
                self.close_thinking(out);
                self.close_text(out);
                let id = call.id.0.as_deref();
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let block = self.open_block(block, out);
                self.live = Some((index, block));
                if !args.is_empty() {
                    Self::json_delta(out, block, args);
                }
            }
            _ => {
                let pending = self.pending.entry(index).or_default();
                if let Some(id) = call.id.0.as_deref() {
                    pending.id = Some(id.to_string());
                }
                if let Some(name) = name {
                    pending.name = Some(name.to_string());
                }
                pending.arguments.push_str(args);
            }
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.close_thinking(out);
        self.close_text(out);
        self.close_tools(out);
        let stop = stop_reason(self.finish.as_deref().unwrap_or("stop"));
        let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": crate::translate::anthropic::usage_object(self.usage)});
        sse::write(out, Some("message_delta"), &delta.to_string());
        sse::write(
            out,
            Some("message_stop"),
            &json!({"type": "message_stop"}).to_string(),
        );
        self.done = true;
    }
}

impl ChunkSink for Stream {
    fn error(&mut self, message: String) {
        self.error = Some(message);
    }

    fn chunk(&mut self, chunk: &Chunk<'_>, out: &mut Vec<u8>) {
        self.start(chunk, out);
    }

    fn usage(&mut self, usage: Usage) {
        self.usage = usage;
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        self.thinking_delta(text, out);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.text_delta(text, out);
    }

    fn call(&mut self, call: &CallDelta<'_>, out: &mut Vec<u8>) {
        self.tool_delta(call, out);
    }

    fn finish_reason(&mut self, reason: &str) {
        self.finish = Some(reason.to_string());
    }
}

impl crate::translate::StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        if ev.data.trim() == "[DONE]" {
            if self.started {
                self.end(out);
            }
            return;
        }
        translate::openai::read_chunk(&ev.data, self, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.done && self.started && self.finish.is_some() && self.error.is_none() {
            // Some OpenAI-compatible servers close without [DONE]; a finish reason suffices.
            self.end(out);
        }
        self.done
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}
