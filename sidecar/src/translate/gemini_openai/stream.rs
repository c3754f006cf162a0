//! OpenAI chunks in, Gemini stream responses out.

use std::collections::BTreeMap;

use super::*;
use crate::translate::openai::{CallDelta, Chunk, ChunkSink};

/// A tool call gathered from its pieces.
#[derive(Debug, Default)]
struct Gathered {
    id: Option<String>,
    name: String,
    arguments: String,
}

impl Gathered {
    /// As a Gemini `functionCall` part.
    fn part(&self) -> Value {
        function_call_part(json!(self.id), json!(self.name), &self.arguments)
    }
}

/// OpenAI chunks in, Gemini stream responses out. Text goes out as it arrives; tool calls
/// are gathered and sent whole (Gemini streams them whole) with the finish reason and usage.
#[derive(Debug)]
pub struct Stream {
    id: String,
    model: String,
    /// Tool calls by their OpenAI `index`, gathered until the end (indices may skip or
    /// interleave; the wire keys every delta by index).
    calls: BTreeMap<u64, Gathered>,
    finish: Option<String>,
    usage: Usage,
    done: bool,
    error: Option<String>,
}

impl Stream {
    /// A translator for one response.
    pub fn new(ctx: Context) -> Self {
        let model = ctx.model;
        Self {
            id: "switchyard".into(),
            model,
            calls: BTreeMap::new(),
            finish: None,
            usage: Usage::default(),
            done: false,
            error: None,
        }
    }

    fn emit(&self, out: &mut Vec<u8>, parts: Vec<Value>, last: bool) {
        let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        let mut ev = json!({"candidates": [], "modelVersion": self.model, "responseId": self.id});
        if last {
            candidate["finishReason"] =
                json!(finish_reason(self.finish.as_deref().unwrap_or("stop")));
            ev["usageMetadata"] = crate::translate::gemini::usage_metadata(self.usage);
        }
        ev["candidates"] = json!([candidate]);
        sse::write(out, None, &ev.to_string());
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        let parts = if self.calls.is_empty() {
            vec![json!({"text": ""})]
        } else {
            self.calls.values().map(Gathered::part).collect()
        };
        self.emit(out, parts, true);
        self.done = true;
    }
}

impl ChunkSink for Stream {
    fn error(&mut self, message: String) {
        self.error = Some(message);
    }

    fn chunk(&mut self, chunk: &Chunk<'_>, _out: &mut Vec<u8>) {
        if let Some(id) = chunk.id.0.as_deref() {
            self.id = id.trim_start_matches("chatcmpl-").to_string();
        }
        if let Some(m) = chunk.model.0.as_deref() {
            self.model = m.to_string();
        }
    }

    fn usage(&mut self, usage: Usage) {
        self.usage = usage;
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        self.emit(out, vec![json!({"text": text, "thought": true})], false);
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.emit(out, vec![json!({"text": text})], false);
    }

    fn call(&mut self, tc: &CallDelta<'_>, _out: &mut Vec<u8>) {
        let call = self.calls.entry(tc.index.unwrap_or(0)).or_default();
        if let Some(id) = tc.id.0.as_deref() {
            call.id = Some(id.to_string());
        }
        if let Some(f) = &tc.function {
            if let Some(name) = f.name.0.as_deref() {
                call.name = name.to_string();
            }
            call.arguments
                .push_str(f.arguments.0.as_deref().unwrap_or_default());
        }
    }

    fn finish_reason(&mut self, reason: &str) {
        self.finish = Some(reason.to_string());
    }
}

impl crate::translate::StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        if ev.data.trim() == "[DONE]" {
            self.end(out);
            return;
        }
        crate::translate::openai::read_chunk(&ev.data, self, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.done && self.finish.is_some() && self.error.is_none() {
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
