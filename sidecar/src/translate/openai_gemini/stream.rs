//! Gemini stream responses in, OpenAI chunks out: per-candidate text and thoughts, function calls numbered as they come, usage from the last `usageMetadata`.

use super::*;
use crate::translate::{self, gemini::Response};

/// Gemini stream responses in, OpenAI chunks out.
#[derive(Debug)]
pub struct Stream {
    ctx: Context,
    id: String,
    model: String,
    started: bool,
    calls: usize,
    finish: Option<&'static str>,
    usage: Usage,
    done: bool,
    error: Option<String>,
}

impl Stream {
    /// A translator for one response.
    pub fn new(ctx: Context) -> Self {
        let model = ctx.model.clone();
        Self {
            ctx,
            id: "chatcmpl-gemini".into(),
            model,
            started: false,
            calls: 0,
            finish: None,
            usage: Usage::default(),
            done: false,
            error: None,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        translate::openai::chunk(out, &self.id, self.ctx.created, &self.model, delta, finish);
    }
}

impl translate::StreamTranslator for Stream {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        let Ok(body) = serde_json::from_str::<Response<'_>>(&ev.data) else {
            return;
        };
        if let Some(err) = &body.error {
            self.error = Some(error_message(err));
            return;
        }
        if !self.started {
            self.started = true;
            if let Some(id) = body.response_id.0.as_deref() {
                self.id = format!("chatcmpl-{id}");
            }
            if let Some(m) = body.model_version.0.as_deref() {
                self.model = m.to_string();
            }
            self.chunk(out, json!({"role": "assistant", "content": ""}), None);
        }
        if let Some(u) = body.usage_metadata.as_ref().filter(|u| u.is_object()) {
            self.usage = translate::gemini::usage(u);
        }
        let Some(candidate) = body.candidates.as_ref().and_then(|c| c.first()) else {
            let feedback = body.prompt_feedback.as_ref();
            if feedback.and_then(|f| f.get("blockReason")).is_some() {
                self.finish = Some("content_filter");
                self.chunk(out, json!({}), Some("content_filter"));
            }
            return;
        };
        let (text, thoughts, calls) = parts(candidate, self.calls);
        self.calls += calls.len();
        let (id, created) = (&self.id, self.ctx.created);
        if !thoughts.is_empty() {
            translate::openai::text_chunk(
                out,
                id,
                created,
                &self.model,
                "reasoning_content",
                &thoughts,
            );
        }
        if !text.is_empty() {
            translate::openai::text_chunk(out, id, created, &self.model, "content", &text);
        }
        if !calls.is_empty() {
            self.chunk(out, json!({"tool_calls": calls}), None);
        }
        if let Some(reason) = candidate.finish_reason.0.as_deref() {
            let finish = finish_reason(reason, self.calls > 0);
            self.finish = Some(finish);
            self.chunk(out, json!({}), Some(finish));
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        if self.finish.is_some() && !self.done {
            let usage = self.ctx.include_usage.then_some(self.usage);
            translate::openai::end(out, &self.id, self.ctx.created, &self.model, usage);
            self.done = true;
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
