//! OpenTelemetry traces, on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only variant)
//! is set: one span per call named after the GenAI conventions (`chat gpt-4o`), with the
//! `gen_ai.*` attributes, a child span per upstream attempt (provider, model, status,
//! failover reason), the pod and namespace as resource attributes, and the caller's W3C
//! `traceparent` continued to the upstream. Never a prompt, a completion or a key.
//!
//! The request path only records: a span writes its name and attributes straight into one
//! buffer as OTLP protobuf fields as it goes, and its ids and times when it ends, then hands
//! the bytes to a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2,048) that drops and
//! counts spans when full instead of waiting. A task on the runtime sends them in batches
//! (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, every `OTEL_BSP_SCHEDULE_DELAY`) as OTLP/HTTP protobuf
//! `ExportTraceServiceRequest`s (the tests decode them with the OpenTelemetry project's
//! `opentelemetry-proto` definitions). The caller's `traceparent` is read by the
//! OpenTelemetry W3C propagator, and written as it writes it (a test holds the two equal). The
//! SDK's span objects, which cost the request path several times more, are not used. The
//! standard `OTEL_*` variables apply (see [`settings`]). Without an endpoint nothing is
//! recorded and the caller's `traceparent` is forwarded as it came.

mod export;
mod settings;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    propagation::TextMapPropagator,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId},
};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prometheus_client::metrics::{counter::Counter, family::Family};

use crate::metrics::OutcomeLabels;
use export::{Ends, Exporter, Kind, SpanBuf};

/// The tracer, when tracing is on.
#[derive(Debug, Default)]
pub struct Tracing {
    exporter: Option<Arc<Exporter>>,
}

/// A span being recorded (or, when not sampled, only propagated).
#[derive(Debug)]
struct Open {
    exporter: Arc<Exporter>,
    context: SpanContext,
    /// The parent's span id (invalid for a root), and whether it came from the caller.
    parent: (SpanId, bool),
    start: u64,
    /// Its name and attributes so far (nothing when it is not sampled).
    buf: SpanBuf,
}

/// The span of one call (absent when tracing is off).
#[derive(Debug, Default)]
pub struct CallSpan {
    span: Option<Open>,
}

/// An upstream attempt's span.
#[derive(Debug, Default)]
pub struct AttemptSpan {
    span: Option<Open>,
}

// Names checked once, at compile time: a `&str` name is parsed again on every use.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The trace context an upstream request carries: an attempt's `traceparent` and the trace's
/// `tracestate`, or without tracing the caller's own, forwarded as they came.
#[derive(Debug, Default)]
pub struct Propagation {
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
}

impl Propagation {
    /// A span's W3C `traceparent` (version 00) and, when it has one, its `tracestate`: what
    /// the W3C propagator writes, without building a propagation context per call.
    fn of(span: &SpanContext) -> Self {
        // 00-{trace id}-{span id}-{flags}, lower-case hex.
        let mut value = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex(&span.trace_id().to_bytes(), &mut value[3..35]);
        hex(&span.span_id().to_bytes(), &mut value[36..52]);
        hex(&[span.trace_flags().to_u8()], &mut value[53..55]);
        let state = span.trace_state().header();
        Propagation {
            traceparent: HeaderValue::from_bytes(&value).ok(),
            tracestate: (!state.is_empty())
                .then(|| HeaderValue::try_from(state).ok())
                .flatten(),
        }
    }

    /// Puts it on an upstream request's headers.
    pub fn onto(self, headers: &mut HeaderMap) {
        if let Some(v) = self.traceparent {
            headers.insert(TRACEPARENT, v);
        }
        if let Some(v) = self.tracestate {
            headers.insert(TRACESTATE, v);
        }
    }
}

/// Writes `bytes` as lower-case hex into `out` (twice their length).
fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn new_span_id() -> SpanId {
    SpanId::from(fastrand::u64(1..))
}

impl Tracing {
    /// A tracer from the `OTEL_*` environment, exporting on this tokio runtime; off when no
    /// endpoint is set or the settings are unusable (logged). `exports` counts batches sent
    /// by outcome, `dropped` the spans a full queue turned away.
    pub fn from_env(exports: Family<OutcomeLabels, Counter>, dropped: Counter) -> Tracing {
        let settings = match settings::Settings::from_env() {
            Ok(Some(s)) => s,
            Ok(None) => return Tracing::default(),
            Err(e) => {
                tracing::warn!("traces are off: {e}");
                return Tracing::default();
            }
        };
        tracing::info!(endpoint = %settings.endpoint, "exporting OpenTelemetry traces over OTLP/HTTP");
        Tracing {
            exporter: Some(Exporter::start(settings, exports, dropped)),
        }
    }

    /// Starts a call's span, continuing the caller's `traceparent`.
    pub fn call(&self, headers: &HeaderMap, operation: &'static str, model: &str) -> CallSpan {
        let Some(exporter) = &self.exporter else {
            return CallSpan::default();
        };
        // Most callers send none: then there is nothing to read.
        let caller = if headers.contains_key(TRACEPARENT) {
            let caller = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
            caller.span().span_context().clone()
        } else {
            SpanContext::empty_context()
        };
        let parent = caller.is_valid().then_some(&caller);
        let trace_id = parent.map_or_else(|| TraceId::from(fastrand::u128(1..)), |p| p.trace_id());
        let sampled = exporter.sampler().sampled(parent, trace_id);
        let context = SpanContext::new(
            trace_id,
            new_span_id(),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            caller.trace_state().clone(),
        );
        let mut buf = SpanBuf::default();
        if sampled {
            buf = SpanBuf::new(operation, model);
            buf.str("gen_ai.operation.name", operation);
            buf.str("gen_ai.request.model", model);
        }
        CallSpan {
            span: Some(Open {
                exporter: exporter.clone(),
                context,
                parent: (caller.span_id(), parent.is_some()),
                start: now_nanos(),
                buf,
            }),
        }
    }

    /// Starts an upstream attempt's span under a call's, with the `traceparent` the upstream
    /// request carries. Without tracing, the caller's own `traceparent` is forwarded.
    pub fn attempt(
        &self,
        call: &CallSpan,
        inbound: &HeaderMap,
        provider: &str,
        model: &str,
    ) -> (AttemptSpan, Propagation) {
        let Some(call) = &call.span else {
            let forwarded = Propagation {
                traceparent: inbound.get(TRACEPARENT).cloned(),
                tracestate: inbound.get(TRACESTATE).cloned(),
            };
            return (AttemptSpan::default(), forwarded);
        };
        let parent = &call.context;
        let context = SpanContext::new(
            parent.trace_id(),
            new_span_id(),
            parent.trace_flags(),
            false,
            parent.trace_state().clone(),
        );
        let propagation = Propagation::of(&context);
        let mut buf = SpanBuf::default();
        if context.is_sampled() {
            buf = SpanBuf::new("attempt", provider);
            buf.str("gen_ai.provider.name", provider);
            buf.str("gen_ai.response.model", model);
        }
        let span = AttemptSpan {
            span: Some(Open {
                exporter: call.exporter.clone(),
                context,
                parent: (parent.span_id(), false),
                start: now_nanos(),
                buf,
            }),
        };
        (span, propagation)
    }

    /// Sends what is queued (at shutdown), for at most the export timeout.
    pub async fn shutdown(&self) {
        if let Some(exporter) = &self.exporter {
            let _ = tokio::time::timeout(exporter.timeout(), exporter.flush()).await;
        }
    }
}

impl Open {
    /// Hands the finished span to the exporter (when sampled).
    fn finish(self, kind: Kind, error: Option<&str>) {
        if !self.context.is_sampled() {
            return;
        }
        let span = self.buf.finish(&Ends {
            context: &self.context,
            parent: self.parent,
            kind,
            start: self.start,
            end: now_nanos(),
            error,
        });
        self.exporter.push(&span);
    }
}

impl AttemptSpan {
    /// Ends it with the upstream's status (0: none came) and, on failure, why.
    pub fn end(self, status: u16, failure: Option<&str>) {
        let Some(mut span) = self.span else {
            return;
        };
        if span.context.is_sampled() {
            if status > 0 {
                span.buf.int("http.response.status_code", i64::from(status));
            }
            if let Some(why) = failure {
                span.buf.str("error.type", why);
                span.buf.str("switchyard.failover.reason", why);
            }
        }
        span.finish(Kind::Client, failure);
    }
}

impl CallSpan {
    /// Ends the call's span with where it went and what it used.
    pub fn end(self, outcome: &CallOutcome<'_>) {
        let Some(mut span) = self.span else {
            return;
        };
        if span.context.is_sampled() {
            let b = &mut span.buf;
            b.str("gen_ai.provider.name", outcome.provider);
            b.str("gen_ai.response.model", outcome.model);
            b.int("gen_ai.usage.input_tokens", outcome.input_tokens as i64);
            b.int("gen_ai.usage.output_tokens", outcome.output_tokens as i64);
            b.int("http.response.status_code", i64::from(outcome.status));
            b.int("switchyard.attempts", i64::from(outcome.attempts));
            if let Some(error) = outcome.error {
                b.str("error.type", error);
            }
        }
        span.finish(Kind::Server, outcome.error);
    }
}

/// How a call ended, for its span.
#[derive(Debug, Default)]
pub struct CallOutcome<'a> {
    /// The AIProvider of the last attempt.
    pub provider: &'a str,
    /// The upstream model of the last attempt.
    pub model: &'a str,
    /// Upstream attempts.
    pub attempts: u32,
    /// The status the caller got.
    pub status: u16,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// The error's label, if it failed.
    pub error: Option<&'a str>,
}

#[cfg(test)]
mod tests;
