//! OpenTelemetry traces, on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only variant)
//! is set: one span per call named after the GenAI conventions (`chat gpt-4o`), with the
//! `gen_ai.*` attributes, a child span per upstream attempt (provider, model, status,
//! failover reason), the pod and namespace as resource attributes, and the caller's W3C
//! `traceparent` continued to the upstream. Never a prompt, a completion or a key.
//!
//! Export is OTLP/HTTP protobuf through the OpenTelemetry SDK's batch processor: spans wait
//! in a bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2,048) and are dropped, not waited
//! for, when it is full; the request path only hands a finished span over. The standard
//! `OTEL_*` variables (service name, resource attributes, headers, timeout, sampler) apply.
//! Without an endpoint no tracer exists and the request path does nothing; the caller's
//! `traceparent` is then forwarded as it came.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use opentelemetry::{
    propagation::TextMapPropagator,
    trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _},
    Context, KeyValue,
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider, Span},
    Resource,
};
use prometheus_client::metrics::{counter::Counter, family::Family};

use crate::metrics::OutcomeLabels;

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer, when tracing is on.
#[derive(Debug, Default)]
pub struct Tracing {
    inner: Option<(SdkTracerProvider, SdkTracer)>,
}

/// The span of one call (absent when tracing is off).
#[derive(Debug, Default)]
pub struct CallSpan {
    span: Option<(Span, Context)>,
}

/// Whether the environment asks for traces.
fn wanted() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

impl Tracing {
    /// A tracer from the `OTEL_*` environment, exporting on this tokio runtime; off when no
    /// endpoint is set or the exporter cannot be built (logged).
    pub fn from_env(exports: Family<OutcomeLabels, Counter>) -> Tracing {
        if !wanted() {
            return Tracing::default();
        }
        let client = TokioHttp {
            handle: tokio::runtime::Handle::current(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            exports,
        };
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("traces are off: the OTLP exporter could not be built: {e}");
                return Tracing::default();
            }
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource())
            .build();
        let tracer = provider.tracer("switchyard-sidecar");
        tracing::info!("exporting OpenTelemetry traces over OTLP/HTTP");
        Tracing {
            inner: Some((provider, tracer)),
        }
    }

    /// Starts a call's span, continuing the caller's `traceparent`.
    pub fn call(&self, headers: &HeaderMap, operation: &str, model: &str) -> CallSpan {
        let Some((_, tracer)) = &self.inner else {
            return CallSpan::default();
        };
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let span = tracer
            .span_builder(format!("{operation} {model}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", operation.to_string()),
                KeyValue::new("gen_ai.request.model", model.to_string()),
            ])
            .start_with_context(tracer, &parent);
        let cx = parent.with_remote_span_context(span.span_context().clone());
        CallSpan {
            span: Some((span, cx)),
        }
    }

    /// Flushes what is queued (at shutdown).
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.inner {
            let _ = provider.shutdown();
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
        let (Some((_, tracer)), Some((_, cx))) = (&self.inner, &call.span) else {
            for name in ["traceparent", "tracestate"] {
                if let Some(v) = inbound.get(name) {
                    upstream.insert(name, v.clone());
                }
            }
            return AttemptSpan::default();
        };
        let span = tracer
            .span_builder(format!("attempt {provider}"))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("gen_ai.provider.name", provider.to_string()),
                KeyValue::new("gen_ai.response.model", model.to_string()),
            ])
            .start_with_context(tracer, cx);
        let child = cx.with_remote_span_context(span.span_context().clone());
        TraceContextPropagator::new().inject_context(&child, &mut HeaderInjector(upstream));
        AttemptSpan { span: Some(span) }
    }
}

/// An upstream attempt's span.
#[derive(Debug, Default)]
pub struct AttemptSpan {
    span: Option<Span>,
}

impl AttemptSpan {
    /// Ends it with the upstream's status (0: none came) and, on failure, why.
    pub fn end(mut self, status: u16, failure: Option<&str>) {
        let Some(span) = self.span.as_mut() else {
            return;
        };
        if status > 0 {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(why) = failure {
            span.set_attribute(KeyValue::new("error.type", why.to_string()));
            span.set_attribute(KeyValue::new("switchyard.failover.reason", why.to_string()));
            span.set_status(Status::error(why.to_string()));
        }
        span.end();
    }
}

impl CallSpan {
    /// Ends the call's span with where it went and what it used.
    pub fn end(mut self, outcome: &CallOutcome<'_>) {
        let Some((span, _)) = self.span.as_mut() else {
            return;
        };
        let attrs = [
            KeyValue::new("gen_ai.provider.name", outcome.provider.to_string()),
            KeyValue::new("gen_ai.response.model", outcome.model.to_string()),
            KeyValue::new("gen_ai.usage.input_tokens", outcome.input_tokens as i64),
            KeyValue::new("gen_ai.usage.output_tokens", outcome.output_tokens as i64),
            KeyValue::new("http.response.status_code", i64::from(outcome.status)),
            KeyValue::new("switchyard.attempts", i64::from(outcome.attempts)),
        ];
        span.set_attributes(attrs);
        if let Some(error) = outcome.error {
            span.set_attribute(KeyValue::new("error.type", error.to_string()));
            span.set_status(Status::error(error.to_string()));
        }
        span.end();
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

/// The service, the pod and its namespace (from the Downward API variables the injector
/// sets, or `SWITCHYARD_NAMESPACE` and the hostname), plus `OTEL_RESOURCE_ATTRIBUTES`.
fn resource() -> Resource {
    let mut attrs = Vec::new();
    let namespace =
        std::env::var("POD_NAMESPACE").or_else(|_| std::env::var("SWITCHYARD_NAMESPACE"));
    if let Ok(ns) = namespace {
        attrs.push(KeyValue::new("k8s.namespace.name", ns));
    }
    let pod = std::env::var("POD_NAME").or_else(|_| std::env::var("HOSTNAME"));
    if let Ok(pod) = pod {
        attrs.push(KeyValue::new("k8s.pod.name", pod));
    }
    let builder = Resource::builder().with_attributes(attrs);
    match std::env::var("OTEL_SERVICE_NAME") {
        Ok(_) => builder.build(),
        Err(_) => builder.with_service_name("switchyard-sidecar").build(),
    }
}

/// The exporter's HTTP client: the batch processor exports from its own thread, so each
/// request runs on the sidecar's tokio runtime and is awaited from there.
#[derive(Debug)]
struct TokioHttp {
    handle: tokio::runtime::Handle,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    exports: Family<OutcomeLabels, Counter>,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for TokioHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.handle.spawn(async move {
            let resp = tokio::time::timeout(EXPORT_TIMEOUT, client.request(request.map(Full::new)))
                .await??;
            let (parts, body) = resp.into_parts();
            let body = tokio::time::timeout(EXPORT_TIMEOUT, body.collect())
                .await??
                .to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        });
        let result = sent
            .await
            .map_err(|e| Box::new(e) as HttpError)
            .and_then(|r| r);
        let outcome = match &result {
            Ok(r) if r.status().is_success() => "ok",
            _ => "failed",
        };
        self.exports.get_or_create(&OutcomeLabels { outcome }).inc();
        result
    }
}
