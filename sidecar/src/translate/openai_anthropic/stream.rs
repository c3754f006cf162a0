//! Anthropic stream events in, OpenAI chunks out, with the tool calls' OpenAI indices kept per content block.

use super::*;
use crate::translate::{self, anthropic::Event};

/// Anthropic stream events in, OpenAI chunks out.
#[derive(Debug, Default)]
pub struct Stream {
    ctx: Context,
    id: String,
    model: String,
    usage: Usage,
    /// Anthropic content-block index to OpenAI tool-call index.
    tool_index: Vec<(u64, usize)>,
    finish: Option<&'static str>,
    done: bool,
    error: Option<String>,
}

impl Stream {
    /// A translator for one response.
    pub fn new(ctx: Context) -> Self {
        Self {
            model: ctx.model.clone(),
            ctx,
            ..Self::default()
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        translate::openai::chunk(out, &self.id, self.ctx.created, &self.model, delta, finish);
    }

    /// A chunk with one text field, written straight out.
    fn text_chunk(&self, out: &mut Vec<u8>, field: &str, text: &str) {
        let (id, created) = (&self.id, self.ctx.created);
        translate::openai::text_chunk(out, id, created, &self.model, field, text);
    }

    /// `message_start`: the id, model and input usage, and the assistant's first chunk.
    fn start(&mut self, msg: &Value, out: &mut Vec<u8>) {
        self.id = format!(
            "chatcmpl-{}",
            msg.get("id").and_then(Value::as_str).unwrap_or("msg")
        );
        if let Some(m) = msg.get("model").and_then(Value::as_str) {
            self.model = m.to_string();
        }
        self.usage = translate::anthropic::usage(&msg["usage"]);
        self.chunk(out, json!({"role": "assistant", "content": ""}), None);
    }

    /// `content_block_delta`: text, thinking, or a tool call's arguments (its OpenAI index
    /// found from the block's).
    fn delta(&mut self, data: &Event<'_>, out: &mut Vec<u8>) {
        let delta = &data.delta;
        match delta.kind.0.as_deref().unwrap_or_default() {
            "text_delta" => match delta.text.0.as_deref() {
                Some(t) => self.text_chunk(out, "content", t),
                None => self.chunk(out, json!({"content": null}), None),
            },
            "thinking_delta" => match delta.thinking.0.as_deref() {
                Some(t) => self.text_chunk(out, "reasoning_content", t),
                None => self.chunk(out, json!({"reasoning_content": null}), None),
            },
            // The block's signature, for the reasoning streamed since the last one.
            "signature_delta" => {
                let block =
                    json!([{"type": "thinking", "signature": delta.signature.0.as_deref()}]);
                self.chunk(out, json!({"thinking_blocks": block}), None)
            }
            "input_json_delta" if self.ctx.json_tool => self.chunk(
                out,
                json!({"content": delta.partial_json.0.as_deref()}),
                None,
            ),
            "input_json_delta" => {
                let block = data.index.unwrap_or(0);
                let index = self
                    .tool_index
                    .iter()
                    .find(|(b, _)| *b == block)
                    .map_or(0, |(_, i)| *i);
                let args = delta.partial_json.0.as_deref();
                let call = json!([{"index": index, "function": {"arguments": args}}]);
                self.chunk(out, json!({"tool_calls": call}), None);
            }
            _ => {}
        }
    }

    /// `message_delta`: the final usage and the stop reason.
    fn message_delta(&mut self, data: &Event<'_>, out: &mut Vec<u8>) {
        let u = translate::anthropic::usage(data.usage.as_ref().unwrap_or(&Value::Null));
        self.usage.output = u.output.max(self.usage.output);
        if u.input > 0 {
            self.usage.input = u.input;
            self.usage.cached = u.cached;
        }
        if let Some(stop) = data.delta.stop_reason.0.as_deref() {
            let finish = if self.ctx.json_tool && stop == "tool_use" {
                "stop"
            } else {
                finish_reason(stop)
            };
            self.finish = Some(finish);
            self.chunk(out, json!({}), Some(finish));
        }
    }
}

impl translate::StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        let Ok(data) = serde_json::from_str::<Event<'_>>(&ev.data) else {
            return;
        };
        let kind = data
            .kind
            .0
            .as_deref()
            .or(ev.name.as_deref())
            .unwrap_or_default();
        match kind {
            "message_start" => self.start(data.message.as_ref().unwrap_or(&Value::Null), out),
            "content_block_start" => {
                let block = data.content_block.as_ref().unwrap_or(&Value::Null);
                if block["type"] == "redacted_thinking" {
                    let block = json!([{"type": "redacted_thinking", "data": block["data"]}]);
                    self.chunk(out, json!({"thinking_blocks": block}), None);
                }
                if block["type"] == "tool_use" && !self.ctx.json_tool {
                    let index = self.tool_index.len();
                    self.tool_index.push((data.index.unwrap_or(0), index));
                    let call = json!([{"index": index, "id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": ""}}]);
                    self.chunk(out, json!({"tool_calls": call}), None);
                }
            }
            "content_block_delta" => self.delta(&data, out),
            "message_delta" => self.message_delta(&data, out),
            "message_stop" => {
                if self.finish.is_none() {
                    self.chunk(out, json!({}), Some("stop"));
                }
                let usage = self.ctx.include_usage.then_some(self.usage);
                translate::openai::end(out, &self.id, self.ctx.created, &self.model, usage);
                self.done = true;
            }
            "error" => {
                self.error = Some(error_message(data.error.as_ref().unwrap_or(&Value::Null)));
            }
            _ => {}
        }
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> bool {
        self.done
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}
