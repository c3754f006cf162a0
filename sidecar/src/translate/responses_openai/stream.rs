//! Chat-completion chunks in, Responses events out: `response.created` and
//! `response.in_progress` at the first chunk, an output item per run of reasoning (its
//! summary) and of text and per tool call (keyed by the chunk's tool-call `index`), and
//! exactly one closing event.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::{json, Value};

use super::{call_item, message_item, reasoning_item};
use crate::{
    sse,
    translate::{
        openai::{CallDelta, Chunk, ChunkSink},
        responses::{closing_event, object, status_of, Events, ResponsesCall, Status},
        Context, StreamTranslator, Usage,
    },
};

/// The message or reasoning item being streamed.
struct OpenText {
    index: usize,
    id: String,
    text: String,
}

/// A tool call being streamed.
struct OpenCall {
    index: usize,
    id: String,
    call_id: Value,
    name: String,
    arguments: String,
}

/// The stream translator.
pub struct Stream {
    call: Arc<ResponsesCall>,
    created: u64,
    model: Value,
    events: Events,
    started: bool,
    /// Output items by output index; `Null` while one is still open.
    output: Vec<Value>,
    text: Option<OpenText>,
    reasoning: Option<OpenText>,
    /// Anthropic's signed thinking blocks of the open reasoning item, and where in its text
    /// the block being streamed began.
    signed: (Vec<Value>, usize),
    calls: BTreeMap<u64, OpenCall>,
    finish: Option<String>,
    usage: Usage,
    error: Option<String>,
    completed: Option<Value>,
}

impl Stream {
    /// A translator for a call.
    pub fn new(ctx: Context) -> Self {
        Self {
            call: ctx.responses.clone().unwrap_or_default(),
            created: ctx.created,
            model: json!(ctx.model),
            events: Events::default(),
            started: false,
            output: Vec::new(),
            text: None,
            reasoning: None,
            signed: (Vec::new(), 0),
            calls: BTreeMap::new(),
            finish: None,
            usage: Usage::default(),
            error: None,
            completed: None,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        let obj = object(
            &self.call,
            self.created,
            &self.model,
            &Status::InProgress,
            vec![],
            None,
        );
        self.events
            .write(out, "response.created", json!({"response": obj}));
        self.events
            .write(out, "response.in_progress", json!({"response": obj}));
    }

    /// Opens an output item: reserves its output index, names it (`prefix`) and announces
    /// it as `item` makes it from its id.
    fn add_item(
        &mut self,
        prefix: &str,
        item: impl FnOnce(&str) -> Value,
        out: &mut Vec<u8>,
    ) -> (usize, String) {
        let index = self.output.len();
        self.output.push(Value::Null);
        let id = self.call.item_id(prefix, index);
        let ev = json!({"output_index": index, "item": item(&id)});
        self.events.write(out, "response.output_item.added", ev);
        (index, id)
    }

    /// Announces an output item finished and keeps it for the response object.
    fn done_item(&mut self, index: usize, item: Value, out: &mut Vec<u8>) {
        let ev = json!({"output_index": index, "item": item});
        self.events.write(out, "response.output_item.done", ev);
        self.output[index] = item;
    }

    fn reasoning(&mut self, delta: &str, out: &mut Vec<u8>) {
        let open = match &mut self.reasoning {
            Some(r) => r,
            None => {
                self.close_text(out);
                let (index, id) = self.add_item(
                    "rs",
                    |id| json!({"id": id, "type": "reasoning", "summary": []}),
                    out,
                );
                let part = json!({"type": "summary_text", "text": ""});
                self.events.write(
                    out,
                    "response.reasoning_summary_part.added",
                    json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                );
                self.reasoning.insert(OpenText {
                    index,
                    id,
                    text: String::new(),
                })
            }
        };
        open.text.push_str(delta);
        let ev = json!({"item_id": open.id, "output_index": open.index, "summary_index": 0, "delta": delta});
        self.events
            .write(out, "response.reasoning_summary_text.delta", ev);
    }

    /// A thinking block's signature (for the reasoning streamed since the last) or a redacted
    /// block, kept for the reasoning item's `encrypted_content`.
    fn signed_block(&mut self, block: &Value, out: &mut Vec<u8>) {
        if self.reasoning.is_none() {
            self.reasoning("", out);
        }
        let text = self.reasoning.as_ref().map_or("", |r| r.text.as_str());
        let (signed, from) = &mut self.signed;
        let block = if block["type"] == "thinking" {
            let thinking = text.get(*from..).unwrap_or_default();
            json!({"type": "thinking", "thinking": thinking, "signature": block["signature"]})
        } else {
            block.clone()
        };
        signed.extend(crate::translate::thinking::signed(&[block]));
        *from = text.len();
    }

    fn close_reasoning(&mut self, out: &mut Vec<u8>) {
        let Some(r) = self.reasoning.take() else {
            return;
        };
        let at = json!({"item_id": r.id, "output_index": r.index, "summary_index": 0});
        let mut done = at.clone();
        done["text"] = json!(r.text);
        self.events
            .write(out, "response.reasoning_summary_text.done", done);
        let mut part = at;
        part["part"] = json!({"type": "summary_text", "text": r.text});
        self.events
            .write(out, "response.reasoning_summary_part.done", part);
        let (signed, _) = std::mem::take(&mut self.signed);
        self.done_item(r.index, reasoning_item(r.id, &r.text, &signed), out);
    }

    fn text(&mut self, delta: &str, out: &mut Vec<u8>) {
        self.close_reasoning(out);
        let open = match &mut self.text {
            Some(t) => t,
            None => {
                let (index, id) = self.add_item(
                    "msg",
                    |id| json!({"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}),
                    out,
                );
                let part =
                    json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
                self.events.write(
                    out,
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                );
                self.text.insert(OpenText {
                    index,
                    id,
                    text: String::new(),
                })
            }
        };
        open.text.push_str(delta);
        let (id, index) = (open.id.clone(), open.index);
        self.events.write(out, "response.output_text.delta", json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}));
    }

    fn close_text(&mut self, out: &mut Vec<u8>) {
        let Some(t) = self.text.take() else { return };
        let at = json!({"item_id": t.id, "output_index": t.index, "content_index": 0});
        let mut done = at.clone();
        done["text"] = json!(t.text);
        done["logprobs"] = json!([]);
        self.events.write(out, "response.output_text.done", done);
        let mut part = at;
        part["part"] =
            json!({"type": "output_text", "text": t.text, "annotations": [], "logprobs": []});
        self.events.write(out, "response.content_part.done", part);
        self.done_item(t.index, message_item(t.id, &t.text, None), out);
    }

    fn tool_delta(&mut self, delta: &CallDelta<'_>, out: &mut Vec<u8>) {
        let key = delta.index.unwrap_or(0);
        let f = delta.function.as_ref();
        if !self.calls.contains_key(&key) {
            self.close_reasoning(out);
            self.close_text(out);
            let name = f
                .and_then(|f| f.name.0.as_deref())
                .unwrap_or_default()
                .to_string();
            let custom = self.call.is_custom(&name);
            let call_id = json!(delta.id.0.as_deref());
            let (index, id) = self.add_item(
                if custom { "ctc" } else { "fc" },
                |id| if custom {
                    json!({"id": id, "type": "custom_tool_call", "status": "in_progress", "call_id": call_id, "name": name, "input": ""})
                } else {
                    json!({"id": id, "type": "function_call", "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""})
                },
                out,
            );
            self.calls.insert(
                key,
                OpenCall {
                    index,
                    id,
                    call_id,
                    name,
                    arguments: String::new(),
                },
            );
        }
        let Some(open) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(piece) = f.and_then(|f| f.arguments.filled()) else {
            return;
        };
        open.arguments.push_str(piece);
        // A freeform tool's input is wrapped in JSON on the chat side: it is sent whole at
        // the end, unwrapped.
        if !self.call.is_custom(&open.name) {
            let ev = json!({"item_id": open.id, "output_index": open.index, "delta": piece});
            self.events
                .write(out, "response.function_call_arguments.delta", ev);
        }
    }

    fn close_calls(&mut self, out: &mut Vec<u8>) {
        for (_, c) in std::mem::take(&mut self.calls) {
            let item = call_item(&self.call, c.index, &c.call_id, &c.name, &c.arguments);
            let at = json!({"item_id": c.id, "output_index": c.index});
            if item["type"] == "custom_tool_call" {
                let mut delta = at.clone();
                delta["delta"] = item["input"].clone();
                self.events
                    .write(out, "response.custom_tool_call_input.delta", delta);
                let mut done = at;
                done["input"] = item["input"].clone();
                self.events
                    .write(out, "response.custom_tool_call_input.done", done);
            } else {
                let mut done = at;
                done["name"] = json!(c.name);
                done["arguments"] = json!(c.arguments);
                self.events
                    .write(out, "response.function_call_arguments.done", done);
            }
            self.done_item(c.index, item, out);
        }
    }

    fn close(&mut self, status: Status, out: &mut Vec<u8>) {
        let output: Vec<Value> = self
            .output
            .iter()
            .filter(|i| !i.is_null())
            .cloned()
            .collect();
        let usage = (status != Status::InProgress).then_some(self.usage);
        let obj = object(
            &self.call,
            self.created,
            &self.model,
            &status,
            output,
            usage,
        );
        self.events
            .write(out, closing_event(&status), json!({"response": obj}));
        if !matches!(status, Status::Failed(_)) {
            self.completed = Some(obj);
        }
    }
}

impl ChunkSink for Stream {
    fn error(&mut self, message: String) {
        self.error = Some(message);
    }

    fn chunk(&mut self, chunk: &Chunk<'_>, out: &mut Vec<u8>) {
        if !self.started {
            if let Some(m) = chunk.model.0.as_deref() {
                self.model = json!(m);
            }
            self.start(out);
        }
    }

    fn usage(&mut self, usage: Usage) {
        self.usage = usage;
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        Stream::reasoning(self, text, out);
    }

    fn signed(&mut self, block: &Value, out: &mut Vec<u8>) {
        self.signed_block(block, out);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        Stream::text(self, text, out);
    }

    fn refusal(&mut self, text: &str, out: &mut Vec<u8>) {
        Stream::text(self, text, out);
    }

    fn call(&mut self, call: &CallDelta<'_>, out: &mut Vec<u8>) {
        self.tool_delta(call, out);
    }

    fn finish_reason(&mut self, reason: &str) {
        self.finish = Some(reason.to_string());
    }
}

impl StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        if ev.data.trim() == "[DONE]" || self.completed.is_some() {
            return;
        }
        crate::translate::openai::read_chunk(&ev.data, self, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        if self.completed.is_some() {
            return true;
        }
        let Some(finish) = self.finish.clone().filter(|_| self.started) else {
            return false;
        };
        self.close_reasoning(out);
        self.close_text(out);
        self.close_calls(out);
        self.close(status_of(&finish), out);
        true
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) -> bool {
        if !self.started {
            self.start(out);
        }
        self.close(Status::Failed(message.to_string()), out);
        true
    }

    fn completed(&self) -> Option<&Value> {
        self.completed.as_ref()
    }
}
