//! OpenAI chunks in, Gemini stream responses out.

use std::collections::BTreeMap;

use super::*;

/// OpenAI chunks in, Gemini stream responses out. Text goes out as it arrives; tool calls
/// are gathered and sent whole (Gemini streams them whole) with the finish reason and usage.
#[derive(Debug)]
pub struct Stream {
    id: String,
    model: String,
    /// Tool calls by their OpenAI `index`, gathered until the end (indices may skip or
    /// interleave; the wire keys every delta by index).
    calls: BTreeMap<u64, Value>,
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
            self.calls.values().map(call_part).collect()
        };
        self.emit(out, parts, true);
        self.done = true;
    }
}

impl crate::translate::StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        if ev.data.trim() == "[DONE]" {
            self.end(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        if let Some(err) = chunk.get("error") {
            self.error = Some(error_message(err));
            return;
        }
        if let Some(id) = chunk["id"].as_str() {
            self.id = id.trim_start_matches("chatcmpl-").to_string();
        }
        if let Some(m) = chunk["model"].as_str() {
            self.model = m.to_string();
        }
        if chunk["usage"].is_object() {
            self.usage = crate::translate::openai::usage(&chunk["usage"]);
        }
        let Some(choice) = chunk.pointer("/choices/0") else {
            return;
        };
        if let Some(t) = choice
            .pointer("/delta/reasoning_content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.emit(out, vec![json!({"text": t, "thought": true})], false);
        }
        if let Some(t) = choice
            .pointer("/delta/content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.emit(out, vec![json!({"text": t})], false);
        }
        for tc in choice
            .pointer("/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap_or(0);
            let call = self.calls.entry(i).or_insert_with(
                || json!({"id": Value::Null, "function": {"name": "", "arguments": ""}}),
            );
            if let Some(id) = tc.get("id").filter(|id| id.is_string()) {
                call["id"] = id.clone();
            }
            if let Some(name) = tc.pointer("/function/name").filter(|n| n.is_string()) {
                call["function"]["name"] = name.clone();
            }
            if let Some(args) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                let joined = format!(
                    "{}{args}",
                    call["function"]["arguments"].as_str().unwrap_or_default()
                );
                call["function"]["arguments"] = json!(joined);
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            self.finish = Some(f.to_string());
        }
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
