//! The body of a committed stream: upstream chunks in, the caller's events out, one poll at
//! a time with nothing buffered beyond the event being parsed. Dropping it (the caller went
//! away) drops the upstream body, which cancels the upstream request.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame};
use std::future::Future;
use switchyard_crds::proxy::Pricing;
use tokio::time::{Instant, Sleep};

use crate::{
    dialect::Dialect,
    health::InflightGuard,
    respond, sse,
    translate::{StreamTranslator, Usage},
    upstream::BodyChunks,
};

/// How a stream ended, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The upstream finished properly.
    Complete,
    /// The upstream failed or was cut after the first byte; an error event was sent.
    Interrupted,
    /// The caller went away.
    Cancelled,
}

/// What a stream amounted to when it ended.
pub struct Ended<'a> {
    pub how: End,
    /// What the upstream reported.
    pub usage: Usage,
    /// `usage` at the backend's prices.
    pub cost: f64,
    /// Upstream events relayed: each carried at least one output token, so a cut stream whose
    /// usage never came is settled at no fewer.
    pub events: u64,
    /// The whole response when the caller's format has one (Responses).
    pub completed: Option<&'a serde_json::Value>,
    /// Every byte the caller was sent but keep-alives, when the relay recorded them
    /// ([`Relay::recording`]) and the stream completed within the recording's bound.
    pub recorded: Option<Vec<u8>>,
    pricing: Option<&'a Pricing>,
}

impl Ended<'_> {
    /// Dollars for `usage` at the backend's prices.
    pub fn cost_of(&self, usage: Usage) -> f64 {
        usage.cost(self.pricing)
    }
}

/// Called once when a stream ends.
pub type OnEnd = Box<dyn FnOnce(Ended<'_>) + Send>;

/// A streaming response body.
pub struct Relay {
    dialect: Dialect,
    upstream: BodyChunks,
    parser: sse::Parser,
    translator: Box<dyn StreamTranslator>,
    pending: Option<Bytes>,
    deadline: Pin<Box<Sleep>>,
    pricing: Option<Pricing>,
    /// Upstream events parsed so far.
    events: u64,
    finished: bool,
    on_end: Option<OnEnd>,
    /// For translated streams: the keep-alive's timer.
    keepalive: Option<Keepalive>,
    /// What the caller was sent so far, and the most it may grow to (the cache's copy).
    recording: Option<(Vec<u8>, usize)>,
    _guard: Option<InflightGuard>,
}

/// A translated stream's keep-alive: due `every` after the last bytes went out. Sending
/// only notes the time; the timer is moved when it fires, not on every frame.
struct Keepalive {
    every: std::time::Duration,
    last_sent: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Relay {
    /// A relay whose first upstream event has already been read.
    pub fn new(
        dialect: Dialect,
        upstream: BodyChunks,
        parser: sse::Parser,
        first: sse::Event,
        mut translator: Box<dyn StreamTranslator>,
        deadline: Instant,
        pricing: Option<Pricing>,
    ) -> Self {
        let mut out = Vec::new();
        translator.event(&first, &mut out);
        let mut relay = Self {
            dialect,
            upstream,
            parser,
            translator,
            pending: None,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            pricing,
            events: 1,
            finished: false,
            on_end: None,
            keepalive: None,
            recording: None,
            _guard: None,
        };
        relay.drain(&mut out);
        relay.pending = (!out.is_empty()).then(|| Bytes::from(out));
        relay
    }

    /// Keeps the backend counted in flight while the stream lasts.
    pub fn with_guard(mut self, guard: InflightGuard) -> Self {
        self._guard = Some(guard);
        self
    }

    /// Records what the caller is sent, up to `limit` bytes (past it, the recording is
    /// dropped), for [`Ended::recorded`].
    pub fn recording(mut self, limit: usize) -> Self {
        let sent = self.pending.as_deref().unwrap_or_default();
        self.recording = (sent.len() <= limit).then(|| (sent.to_vec(), limit));
        self
    }

    /// Adds bytes the caller is sent to the recording.
    fn record(&mut self, out: &[u8]) {
        if let Some((recorded, limit)) = &mut self.recording {
            if recorded.len() + out.len() > *limit {
                self.recording = None;
            } else {
                recorded.extend_from_slice(out);
            }
        }
    }

    /// Sends a keep-alive after every `every` of upstream silence (translated streams: the
    /// upstream's own pings do not reach the caller).
    pub fn with_keepalive(mut self, every: std::time::Duration) -> Self {
        self.keepalive = Some(Keepalive {
            every,
            last_sent: Instant::now(),
            timer: Box::pin(tokio::time::sleep(every)),
        });
        self
    }

    /// Polls the keep-alive timer: the keep-alive's bytes when one is due.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Option<&'static [u8]> {
        let k = self.keepalive.as_mut()?;
        loop {
            if k.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            let now = Instant::now();
            let due = k.last_sent + k.every;
            if due <= now {
                k.last_sent = now;
                k.timer.as_mut().reset(now + k.every);
                let _ = k.timer.as_mut().poll(cx);
                break;
            }
            // Something went out since the timer was set: wait out the rest.
            k.timer.as_mut().reset(due);
        }
        Some(match self.dialect {
            Dialect::Anthropic => b"event: ping\ndata: {\"type\": \"ping\"}\n\n",
            _ => b": keep-alive\n\n",
        })
    }

    /// Notes that bytes went out (the keep-alive is due `every` after the last).
    fn sent(&mut self) {
        if let Some(k) = self.keepalive.as_mut() {
            k.last_sent = Instant::now();
        }
    }

    /// Sets what runs when the stream ends.
    pub fn on_end(&mut self, f: OnEnd) {
        self.on_end = Some(f);
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        while let Some(ev) = self.parser.next_event() {
            self.events += 1;
            self.translator.event(&ev, out);
            if let Some(message) = self.translator.error() {
                if !self.translator.error_forwarded() {
                    let message = format!("upstream error after the stream began: {message}");
                    if !self.translator.fail(&message, out) {
                        out.extend_from_slice(&respond::error_event(self.dialect, &message));
                    }
                }
                self.end(End::Interrupted);
                return;
            }
        }
        if self.parser.oversized() {
            self.fail(out, &oversized_message());
        }
    }

    fn end(&mut self, how: End) {
        self.finished = true;
        if let Some(f) = self.on_end.take() {
            let usage = self.translator.usage();
            f(Ended {
                how,
                usage,
                cost: usage.cost(self.pricing.as_ref()),
                events: self.events,
                completed: self.translator.completed(),
                recorded: self
                    .recording
                    .take()
                    .filter(|_| how == End::Complete)
                    .map(|(recorded, _)| recorded),
                pricing: self.pricing.as_ref(),
            });
        }
    }

    fn fail(&mut self, out: &mut Vec<u8>, message: &str) {
        if !self.translator.fail(message, out) {
            out.extend_from_slice(&respond::error_event(self.dialect, message));
        }
        self.end(End::Interrupted);
    }
}

/// The error for an upstream event past [`sse::MAX_EVENT_BYTES`].
pub fn oversized_message() -> String {
    format!(
        "the upstream sent a stream event over {} MiB; the stream was abandoned",
        sse::MAX_EVENT_BYTES >> 20
    )
}

impl Body for Relay {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(bytes) = this.pending.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        if this.finished {
            return Poll::Ready(None);
        }
        let mut out = Vec::new();
        loop {
            if this.deadline.as_mut().poll(cx).is_ready() {
                this.fail(
                    &mut out,
                    "the request's total timeout passed while streaming",
                );
                break;
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.parser.push(&chunk);
                    this.drain(&mut out);
                    if this.finished || !out.is_empty() {
                        break;
                    }
                }
                Poll::Ready(Some(Err(_))) => {
                    this.fail(&mut out, "the upstream connection failed mid-stream");
                    break;
                }
                Poll::Ready(None) => {
                    let complete = this.translator.finish(&mut out);
                    if complete && !this.parser.has_partial() {
                        this.record(&out);
                        this.end(End::Complete);
                    } else {
                        this.fail(&mut out, "the upstream stream ended before it was complete");
                    }
                    break;
                }
            }
        }
        if out.is_empty() {
            if this.finished {
                return Poll::Ready(None);
            }
            return match this.poll_keepalive(cx) {
                Some(ping) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(ping))))),
                None => Poll::Pending,
            };
        }
        this.sent();
        this.record(&out);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.pending.is_none()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if !self.finished {
            self.end(End::Cancelled);
        }
    }
}
