//! Streams between formats: the translator for a pair (an upstream's events into hub chunks,
//! hub chunks into the caller's), the same-format passthrough that only reads usage, and the
//! chain of two translators.

use serde::{de::IgnoredAny, Deserialize};
use serde_json::{json, value::RawValue, Value};

use super::{
    anthropic_openai, error_message, gemini_openai, openai_anthropic, openai_gemini,
    openai_responses, responses_openai, Context, StreamTranslator, Usage,
};
use crate::{dialect::Dialect, sse};

/// The stream translator for a caller in `from`'s format and an upstream in `to`'s: the
/// upstream's events into hub chunks, then hub chunks into the caller's events.
pub fn stream(from: Dialect, to: Dialect, ctx: Context) -> Box<dyn StreamTranslator> {
    if from == to {
        return Box::new(Passthrough {
            dialect: to,
            hide_usage: !ctx.include_usage,
            usage: Usage::default(),
            done: false,
            error: None,
            events: 0,
            response: None,
        });
    }
    // A chained first half always produces the hub's usage chunk for the second to read.
    let hub_ctx = || Context {
        include_usage: true,
        ..ctx.clone()
    };
    let caller: Option<Box<dyn StreamTranslator>> = match from {
        Dialect::OpenAi => None,
        Dialect::Anthropic => Some(Box::new(anthropic_openai::Stream::new(ctx.clone()))),
        Dialect::Gemini => Some(Box::new(gemini_openai::Stream::new(ctx.clone()))),
        Dialect::Responses => Some(Box::new(responses_openai::Stream::new(ctx.clone()))),
    };
    let upstream_ctx = if caller.is_some() { hub_ctx() } else { ctx };
    let upstream: Option<Box<dyn StreamTranslator>> = match to {
        Dialect::OpenAi => None,
        Dialect::Anthropic => Some(Box::new(openai_anthropic::Stream::new(upstream_ctx))),
        Dialect::Gemini => Some(Box::new(openai_gemini::Stream::new(upstream_ctx))),
        Dialect::Responses => Some(Box::new(openai_responses::Stream::new(upstream_ctx))),
    };
    match (upstream, caller) {
        (Some(first), Some(second)) => Box::new(Chain {
            first,
            second,
            buf: Vec::new(),
            parser: sse::Parser::default(),
        }),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => Box::new(Passthrough {
            dialect: to,
            hide_usage: false,
            usage: Usage::default(),
            done: false,
            error: None,
            events: 0,
            response: None,
        }),
    }
}

/// What a same-format OpenAI stream's chunk is read for: its usage (as sent), its error, and
/// whether it has choices. The text is skipped, not copied.
#[derive(Deserialize)]
struct OpenAiWatch<'a> {
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
}

/// What a same-format Gemini stream's event is read for.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiWatch<'a> {
    #[serde(borrow, default)]
    usage_metadata: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    candidates: Option<Vec<Finish>>,
}

/// A candidate: whether it has a `finishReason`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Finish {
    #[serde(default)]
    finish_reason: Seen,
}

/// Whether a field was there, whatever it held.
#[derive(Default)]
struct Seen(bool);

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Seen(true))
    }
}

/// Same-format streaming: events forwarded byte for byte, usage read on the way. The usage
/// chunk the sidecar asked an OpenAI upstream for is dropped when the caller did not ask.
struct Passthrough {
    dialect: Dialect,
    hide_usage: bool,
    usage: Usage,
    done: bool,
    error: Option<String>,
    /// Events forwarded (a Responses stream's next `sequence_number`).
    events: u64,
    /// A Responses stream's `response` as first announced, for a closing `response.failed`.
    response: Option<Value>,
}

impl StreamTranslator for Passthrough {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        match self.dialect {
            Dialect::OpenAi => {
                if ev.data.trim() == "[DONE]" {
                    self.done = true;
                } else if ev.data.contains("\"usage\"") || ev.data.contains("\"error\"") {
                    // Every chunk of a stream that asked for usage has `"usage": null`.
                    if let Ok(chunk) = serde_json::from_str::<OpenAiWatch<'_>>(&ev.data) {
                        if let Some(err) = &chunk.error {
                            self.error = Some(error_message(err));
                        }
                        if let Some(u) = chunk.usage.filter(|u| u.get().starts_with('{')) {
                            self.usage = super::openai::usage(u);
                            let empty = chunk.choices.is_none_or(|c| c.is_empty());
                            if self.hide_usage && empty {
                                return;
                            }
                        }
                    }
                }
            }
            Dialect::Anthropic => match ev.name.as_deref() {
                Some("message_start") | Some("message_delta") => {
                    if let Ok(data) = serde_json::from_str::<Value>(&ev.data) {
                        let u = data.pointer("/message/usage").or_else(|| data.get("usage"));
                        let u = super::anthropic::usage(u.unwrap_or(&Value::Null));
                        if u.input > 0 {
                            self.usage.input = u.input;
                            self.usage.cached = u.cached;
                            self.usage.cache_creation = u.cache_creation;
                        }
                        self.usage.output = self.usage.output.max(u.output);
                    }
                }
                Some("message_stop") => self.done = true,
                Some("error") => {
                    let data: Value = serde_json::from_str(&ev.data).unwrap_or_default();
                    self.error = Some(error_message(&data["error"]));
                }
                _ => {}
            },
            Dialect::Gemini => {
                if let Ok(data) = serde_json::from_str::<GeminiWatch<'_>>(&ev.data) {
                    if let Some(err) = &data.error {
                        self.error = Some(error_message(err));
                    }
                    if let Some(u) = data.usage_metadata.filter(|u| u.get().starts_with('{')) {
                        self.usage = super::gemini::usage(u);
                    }
                    if data
                        .candidates
                        .unwrap_or_default()
                        .first()
                        .is_some_and(|c| c.finish_reason.0)
                    {
                        self.done = true;
                    }
                }
            }
            Dialect::Responses => self.responses_event(ev),
        }
        self.events += 1;
        out.extend_from_slice(&ev.raw);
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> bool {
        self.done
    }

    fn completed(&self) -> Option<&Value> {
        let whole = self.dialect == Dialect::Responses && self.done && self.error.is_none();
        self.response.as_ref().filter(|_| whole)
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) -> bool {
        let Some(mut response) = self
            .response
            .take()
            .filter(|_| self.dialect == Dialect::Responses)
        else {
            return false;
        };
        response["status"] = json!("failed");
        response["error"] = json!({"code": "server_error", "message": message});
        let data = json!({"type": "response.failed", "sequence_number": self.events, "response": response});
        sse::write(out, Some("response.failed"), &data.to_string());
        true
    }

    fn usage(&self) -> Usage {
        self.usage
    }

    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn error_forwarded(&self) -> bool {
        true
    }
}

impl Passthrough {
    /// Reads a Responses event: only the few that carry the response or an error are parsed.
    fn responses_event(&mut self, ev: &sse::Event) {
        let name = ev.name.as_deref().unwrap_or_default();
        let wanted = matches!(
            name,
            "response.created"
                | "response.completed"
                | "response.incomplete"
                | "response.failed"
                | "error"
        );
        if !wanted {
            return;
        }
        let Ok(data) = serde_json::from_str::<Value>(&ev.data) else {
            return;
        };
        if name != "error" {
            self.response = data.get("response").cloned();
        }
        let (usage, done, error) = openai_responses::passthrough_event(&data);
        if let Some(u) = usage {
            self.usage = u;
        }
        self.done |= done;
        if error.is_some() {
            self.error = error;
        }
    }
}

/// Two translators in a row (an upstream's events to hub chunks, hub chunks to the caller's).
struct Chain {
    first: Box<dyn StreamTranslator>,
    second: Box<dyn StreamTranslator>,
    buf: Vec<u8>,
    parser: sse::Parser,
}

impl Chain {
    fn drain(&mut self, out: &mut Vec<u8>) {
        self.parser.push(&self.buf);
        self.buf.clear();
        while let Some(ev) = self.parser.next_event() {
            self.second.event(&ev, out);
        }
    }
}

impl StreamTranslator for Chain {
    fn event(&mut self, ev: &sse::Event, out: &mut Vec<u8>) {
        self.first.event(ev, &mut self.buf);
        self.drain(out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        self.first.finish(&mut self.buf);
        self.drain(out);
        self.second.finish(out)
    }

    fn usage(&self) -> Usage {
        self.first.usage()
    }

    fn error(&self) -> Option<&str> {
        self.first.error().or(self.second.error())
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) -> bool {
        self.second.fail(message, out)
    }

    fn completed(&self) -> Option<&Value> {
        self.second.completed()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Runs a same-format stream's events through; what reached the caller and the translator.
    fn relay(
        dialect: Dialect,
        include_usage: bool,
        events: &[&str],
    ) -> (String, Box<dyn StreamTranslator>) {
        let ctx = Context {
            include_usage,
            ..Context::default()
        };
        let mut s = stream(dialect, dialect, ctx);
        let mut parser = sse::Parser::default();
        parser.push(events.concat().as_bytes());
        let mut out = Vec::new();
        while let Some(ev) = parser.next_event() {
            s.event(&ev, &mut out);
        }
        (String::from_utf8(out).unwrap(), s)
    }

    #[test]
    fn an_openai_stream_is_read_for_usage_and_its_usage_chunk_kept_only_when_asked_for() {
        let events = [
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi \\\"there\\\"\"}}],\"usage\":null}\n\n",
            "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":2}}}\n\n",
            "data: [DONE]\n\n",
        ];
        let (out, s) = relay(Dialect::OpenAi, false, &events);
        assert_eq!(
            out,
            [events[0], events[2]].concat(),
            "the usage chunk hidden"
        );
        assert_eq!(
            (s.usage().input, s.usage().output, s.usage().cached),
            (7, 3, 2)
        );
        let mut s = s;
        assert!(s.finish(&mut Vec::new()));
        let (out, _) = relay(Dialect::OpenAi, true, &events);
        assert_eq!(out, events.concat(), "forwarded byte for byte");
        let (out, s) = relay(
            Dialect::OpenAi,
            true,
            &["data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"],
        );
        assert!(out.contains("overloaded"));
        assert_eq!(s.error(), Some("overloaded"));
    }

    #[test]
    fn a_gemini_stream_is_read_for_usage_its_end_and_its_error() {
        let events = [
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}],\"role\":\"model\"}}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":1}}\n\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":4}}\n\n",
        ];
        let (out, mut s) = relay(Dialect::Gemini, false, &events[..1]);
        assert_eq!(out, events[0]);
        assert!(!s.finish(&mut Vec::new()), "no finishReason yet");
        let (out, mut s) = relay(Dialect::Gemini, false, &events);
        assert_eq!(out, events.concat());
        assert!(s.finish(&mut Vec::new()));
        assert_eq!(
            (s.usage().input, s.usage().output, s.usage().reasoning),
            (5, 6, 4)
        );
        let (_, s) = relay(
            Dialect::Gemini,
            false,
            &["data: {\"candidates\":null,\"error\":{\"code\":500,\"message\":\"boom\",\"status\":\"INTERNAL\"}}\n\n"],
        );
        assert_eq!(s.error(), Some("boom"));
    }
}
