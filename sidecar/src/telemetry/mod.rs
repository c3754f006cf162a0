//! OpenTelemetry traces, on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only variant)
//! is set: one span per call named after the GenAI conventions (`chat gpt-4o`), with the
//! `gen_ai.*` attributes, a child span per upstream attempt (provider, model, status,
//! failover reason), the pod and namespace as resource attributes, and the caller's W3C
//! `traceparent` continued to the upstream. Never a prompt, a completion or a key.
//!
//! The request path only records: ids, two clock readings and a few attributes per span,
//! handed to a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2,048) that drops and counts
//! spans when full instead of waiting. A task on the runtime sends them in batches
//! (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, every `OTEL_BSP_SCHEDULE_DELAY`) as OTLP/HTTP protobuf,
//! built with the OpenTelemetry project's own message definitions (`opentelemetry-proto`);
//! `traceparent` is read and written by its W3C propagator. The SDK's span objects, which cost
//! the request path several times more, are not used. The standard `OTEL_*` variables apply
//! (see [`settings`]). Without an endpoint nothing is recorded and the caller's
//! `traceparent` is forwarded as it came.

mod export;
mod settings;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use http::HeaderMap;
use opentelemetry::{
    propagation::TextMapPropagator,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId},
    Context,
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prometheus_client::metrics::{counter::Counter, family::Family};

use crate::metrics::OutcomeLabels;
use export::{Exporter, Kind, Record, Value};

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
    attributes: Vec<(&'static str, Value)>,
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
    pub fn call(&self, headers: &HeaderMap, operation: &str, model: &str) -> CallSpan {
        let Some(exporter) = &self.exporter else {
            return CallSpan::default();
        };
        let caller = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let caller = caller.span().span_context().clone();
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
        let mut attributes = Vec::new();
        if sampled {
            // Room for what `end` adds.
            attributes.reserve_exact(9);
            attributes.push(("gen_ai.operation.name", Value::Str(operation.to_string())));
            attributes.push(("gen_ai.request.model", Value::Str(model.to_string())));
        }
        CallSpan {
            span: Some(Open {
                exporter: exporter.clone(),
                context,
                parent: (caller.span_id(), parent.is_some()),
                start: now_nanos(),
                attributes,
            }),
        }
    }

    /// Starts an upstream attempt's span under a call's, and puts its `traceparent` on the
    /// upstream request. Without tracing, the caller's own `traceparent` is forwarded.
    pub fn attempt(
        &self,
        call: &CallSpan,
        inbound: &HeaderMap,
        upstream: &mut HeaderMap,
        provider: &str,
        model: &str,
    ) -> AttemptSpan {
        let Some(call) = &call.span else {
            for name in ["traceparent", "tracestate"] {
                if let Some(v) = inbound.get(name) {
                    upstream.insert(name, v.clone());
                }
            }
            return AttemptSpan::default();
        };
        let parent = &call.context;
        let context = SpanContext::new(
            parent.trace_id(),
            new_span_id(),
            parent.trace_flags(),
            false,
            parent.trace_state().clone(),
        );
        let own = Context::new().with_remote_span_context(context.clone());
        TraceContextPropagator::new().inject_context(&own, &mut HeaderInjector(upstream));
        let mut attributes = Vec::new();
        if context.is_sampled() {
            attributes.reserve_exact(5);
            attributes.push(("gen_ai.provider.name", Value::Str(provider.to_string())));
            attributes.push(("gen_ai.response.model", Value::Str(model.to_string())));
        }
        AttemptSpan {
            span: Some(Open {
                exporter: call.exporter.clone(),
                context,
                parent: (parent.span_id(), false),
                start: now_nanos(),
                attributes,
            }),
        }
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
    fn finish(self, kind: Kind, error: Option<String>) {
        if !self.context.is_sampled() {
            return;
        }
        let Open {
            exporter,
            context,
            parent,
            start,
            attributes,
        } = self;
        exporter.push(Record {
            context,
            parent,
            kind,
            start,
            end: now_nanos(),
            attributes,
            error,
        });
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
                span.attributes
                    .push(("http.response.status_code", Value::Int(i64::from(status))));
            }
            if let Some(why) = failure {
                span.attributes.push(("error.type", Value::Str(why.into())));
                span.attributes
                    .push(("switchyard.failover.reason", Value::Str(why.into())));
            }
        }
        span.finish(Kind::Client, failure.map(str::to_string));
    }
}

impl CallSpan {
    /// Ends the call's span with where it went and what it used.
    pub fn end(self, outcome: &CallOutcome<'_>) {
        let Some(mut span) = self.span else {
            return;
        };
        if span.context.is_sampled() {
            span.attributes.extend([
                ("gen_ai.provider.name", Value::Str(outcome.provider.into())),
                ("gen_ai.response.model", Value::Str(outcome.model.into())),
                (
                    "gen_ai.usage.input_tokens",
                    Value::Int(outcome.input_tokens as i64),
                ),
                (
                    "gen_ai.usage.output_tokens",
                    Value::Int(outcome.output_tokens as i64),
                ),
                (
                    "http.response.status_code",
                    Value::Int(i64::from(outcome.status)),
                ),
                (
                    "switchyard.attempts",
                    Value::Int(i64::from(outcome.attempts)),
                ),
            ]);
            if let Some(error) = outcome.error {
                span.attributes
                    .push(("error.type", Value::Str(error.into())));
            }
        }
        span.finish(Kind::Server, outcome.error.map(str::to_string));
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
