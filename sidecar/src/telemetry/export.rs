//! The span queue and the task that sends it: bounded, never waited on by a call, emptied in
//! batches as OTLP/HTTP protobuf: an `ExportTraceServiceRequest` as `opentelemetry-proto`
//! defines it, written with prost's wire encoding. Each span is written once, into its own
//! buffer as it is recorded ([`SpanBuf`]), and copied once into its batch: building the
//! generated message structs cost a dozen allocations a span, and keeping attributes as values
//! to encode later four more, the largest share of what tracing cost a call. The tests decode
//! every batch with those definitions.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};
use opentelemetry::trace::{SpanContext, SpanId};
use prometheus_client::metrics::{counter::Counter, family::Family};
use prost::encoding::{encoded_len_varint, WireType};
use tokio::sync::Notify;

use super::settings::{Sampler, Settings};
use crate::metrics::OutcomeLabels;

/// A span's protobuf `Span` fields, written as the span goes (its name and attributes) and
/// when it ends (ids, times, status): one buffer a span, and no text kept besides.
#[derive(Debug, Default)]
pub struct SpanBuf(Vec<u8>);

/// Which side of a call a span is.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// The call as the sidecar served it.
    Server,
    /// An upstream attempt.
    Client,
}

/// What a span's end adds to it.
pub struct Ends<'a> {
    pub context: &'a SpanContext,
    /// The parent's id (invalid for a root) and whether it is the caller's.
    pub parent: (SpanId, bool),
    pub kind: Kind,
    pub start: u64,
    pub end: u64,
    /// The status message of a failed span.
    pub error: Option<&'a str>,
}

impl SpanBuf {
    /// A span named `first second` (`chat gpt-4o`, `attempt openai`).
    pub fn new(first: &str, second: &str) -> SpanBuf {
        // A call's span, its attributes and ids, is about 400 bytes.
        let mut out = Vec::with_capacity(512);
        header(field::NAME, first.len() + 1 + second.len(), &mut out);
        out.extend_from_slice(first.as_bytes());
        out.push(b' ');
        out.extend_from_slice(second.as_bytes());
        SpanBuf(out)
    }

    /// A string attribute.
    pub fn str(&mut self, key: &str, value: &str) {
        str_attribute(field::ATTRIBUTES, key, value, &mut self.0);
    }

    /// An integer attribute (int64, written as its two's complement, as protobuf does).
    pub fn int(&mut self, key: &str, value: i64) {
        let any = 1 + encoded_len_varint(value as u64);
        key_value(field::ATTRIBUTES, key, any, &mut self.0);
        varint_field(field::INT_VALUE, value as u64, &mut self.0);
    }

    /// The whole `Span` message body (protobuf fields may come in any order).
    pub fn finish(mut self, e: &Ends<'_>) -> Vec<u8> {
        let out = &mut self.0;
        bytes_field(field::TRACE_ID, &e.context.trace_id().to_bytes(), out);
        bytes_field(field::SPAN_ID, &e.context.span_id().to_bytes(), out);
        let state = e.context.trace_state().header();
        if !state.is_empty() {
            bytes_field(field::TRACE_STATE, state.as_bytes(), out);
        }
        if e.parent.0 != SpanId::INVALID {
            bytes_field(field::PARENT_SPAN_ID, &e.parent.0.to_bytes(), out);
        }
        let kind = match e.kind {
            Kind::Server => KIND_SERVER,
            Kind::Client => KIND_CLIENT,
        };
        varint_field(field::KIND, kind, out);
        fixed64_field(field::START, e.start, out);
        fixed64_field(field::END, e.end, out);
        if let Some(message) = e.error {
            let len = delimited_len(field::STATUS_MESSAGE, message.len())
                + 1
                + encoded_len_varint(STATUS_ERROR);
            header(field::STATUS, len, out);
            bytes_field(field::STATUS_MESSAGE, message.as_bytes(), out);
            varint_field(field::STATUS_CODE, STATUS_ERROR, out);
        }
        // W3C flags in the low byte; bit 8: whether the parent is known to be remote or not,
        // bit 9: that it is (as the OTLP `SpanFlags` say).
        let remote = if e.parent.1 { 0x300 } else { 0x100 };
        let flags = u32::from(e.context.trace_flags().to_u8()) | remote;
        key(field::FLAGS, WireType::ThirtyTwoBit, out);
        out.extend_from_slice(&flags.to_le_bytes());
        self.0
    }
}

/// A string `KeyValue` field numbered `tag`.
fn str_attribute(tag: u32, key: &str, value: &str, out: &mut Vec<u8>) {
    let any = delimited_len(field::STRING_VALUE, value.len());
    key_value(tag, key, any, out);
    bytes_field(field::STRING_VALUE, value.as_bytes(), out);
}

/// A `KeyValue` field up to its `AnyValue` of `any` bytes, which the caller writes.
fn key_value(tag: u32, key: &str, any: usize, out: &mut Vec<u8>) {
    let kv = delimited_len(field::KEY, key.len()) + delimited_len(field::VALUE, any);
    header(tag, kv, out);
    bytes_field(field::KEY, key.as_bytes(), out);
    header(field::VALUE, any, out);
}

/// Finished spans, each already a `spans` field, in batches of at most the batch size.
#[derive(Debug, Default)]
struct Queue {
    /// Full batches first, the one being filled last; each with its span count.
    batches: Vec<(Vec<u8>, usize)>,
    spans: usize,
}

#[derive(Debug)]
pub struct Exporter {
    queue: Mutex<Queue>,
    /// Rung when a batch is full.
    full: Arc<Notify>,
    settings: Settings,
    /// The encoded `Resource` and `InstrumentationScope`, the same in every batch.
    head: Head,
    client: Client<HttpConnector, Full<Bytes>>,
    exports: Family<OutcomeLabels, Counter>,
    dropped: Counter,
}

impl Exporter {
    /// The exporter, sending from a task on this runtime.
    pub fn start(
        settings: Settings,
        exports: Family<OutcomeLabels, Counter>,
        dropped: Counter,
    ) -> Arc<Exporter> {
        let head = Head::new(&settings.resource);
        let exporter = Arc::new(Exporter {
            queue: Mutex::default(),
            full: Arc::new(Notify::new()),
            settings,
            head,
            client: Client::builder(TokioExecutor::new()).build_http(),
            exports,
            dropped,
        });
        // The task holds the exporter only while it sends: it ends once the tracer is gone.
        let weak = Arc::downgrade(&exporter);
        let (delay, full) = (exporter.settings.delay, exporter.full.clone());
        tokio::spawn(async move {
            loop {
                let all = tokio::select! {
                    _ = tokio::time::sleep(delay) => true,
                    _ = full.notified() => false,
                };
                let Some(exporter) = weak.upgrade() else {
                    return;
                };
                exporter.send_queued(all).await;
            }
        });
        exporter
    }

    /// Which calls are recorded.
    pub fn sampler(&self) -> &Sampler {
        &self.settings.sampler
    }

    /// How long one export may take.
    pub fn timeout(&self) -> std::time::Duration {
        self.settings.timeout
    }

    /// Queues a finished span (a `Span` message body), or drops and counts it when the queue
    /// is full.
    pub fn push(&self, span: &[u8]) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if queue.spans >= self.settings.max_queue {
            drop(queue);
            self.dropped.inc();
            return;
        }
        queue.spans += 1;
        let max_batch = self.settings.max_batch;
        let batch = match queue.batches.last_mut() {
            Some(b) if b.1 < max_batch => b,
            _ => {
                queue.batches.push((Vec::with_capacity(max_batch * 512), 0));
                let last = queue.batches.len() - 1;
                &mut queue.batches[last]
            }
        };
        bytes_field(field::SPANS, span, &mut batch.0);
        batch.1 += 1;
        let full = batch.1 == max_batch;
        drop(queue);
        if full {
            self.full.notify_one();
        }
    }

    /// Sends everything queued, a batch at a time.
    pub async fn flush(&self) {
        self.send_queued(true).await;
    }

    /// Sends what is queued in batches, once a batch is full or, if `all`, whatever there is.
    async fn send_queued(&self, all: bool) {
        let taken = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let full = queue
                .batches
                .iter()
                .take_while(|b| b.1 == self.settings.max_batch)
                .count();
            let n = if all { queue.batches.len() } else { full };
            let taken: Vec<(Vec<u8>, usize)> = queue.batches.drain(..n).collect();
            queue.spans -= taken.iter().map(|b| b.1).sum::<usize>();
            taken
        };
        for (spans, _) in taken {
            let outcome = match self.send(&spans).await {
                Ok(()) => "ok",
                Err(e) => {
                    tracing::debug!("trace export failed: {e}");
                    "failed"
                }
            };
            self.exports.get_or_create(&OutcomeLabels { outcome }).inc();
        }
    }

    async fn send(&self, spans: &[u8]) -> Result<(), String> {
        let body = encode(&self.head, spans);
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.settings.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        req.headers_mut().extend(self.settings.headers.clone());
        let sent = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the collector answered {status}"))
            }
        };
        tokio::time::timeout(self.settings.timeout, sent)
            .await
            .map_err(|_| "timed out".to_string())?
    }
}

/// Protobuf field numbers of the OTLP trace messages (`opentelemetry/proto/trace/v1`).
mod field {
    pub const REQUEST_RESOURCE_SPANS: u32 = 1;
    pub const RESOURCE: u32 = 1;
    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    pub const SCOPE_SPANS: u32 = 2;
    pub const SCOPE: u32 = 1;
    pub const SCOPE_NAME: u32 = 1;
    pub const SCOPE_VERSION: u32 = 2;
    pub const SPANS: u32 = 2;
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const TRACE_STATE: u32 = 3;
    pub const PARENT_SPAN_ID: u32 = 4;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START: u32 = 7;
    pub const END: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const STATUS: u32 = 15;
    pub const FLAGS: u32 = 16;
    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;
    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
    pub const STRING_VALUE: u32 = 1;
    pub const INT_VALUE: u32 = 3;
}

/// `SpanKind` and `StatusCode` values.
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const STATUS_ERROR: u64 = 2;

/// Appends `value` as a protobuf varint. prost's writes through `BufMut`, a capacity check
/// and a slice copy a byte; a span's fields are mostly one-byte keys and lengths.
fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a field's key: its number and wire type.
fn key(tag: u32, wire: WireType, out: &mut Vec<u8>) {
    varint(u64::from(tag << 3 | wire as u32), out);
}

/// A length-delimited field's key and length.
fn header(tag: u32, len: usize, out: &mut Vec<u8>) {
    key(tag, WireType::LengthDelimited, out);
    varint(len as u64, out);
}

/// The size of a length-delimited field of `len` bytes (tags below 16 take one byte).
fn delimited_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

fn bytes_field(tag: u32, value: &[u8], out: &mut Vec<u8>) {
    header(tag, value.len(), out);
    out.extend_from_slice(value);
}

fn varint_field(tag: u32, value: u64, out: &mut Vec<u8>) {
    key(tag, WireType::Varint, out);
    varint(value, out);
}

fn fixed64_field(tag: u32, value: u64, out: &mut Vec<u8>) {
    key(tag, WireType::SixtyFourBit, out);
    out.extend_from_slice(&value.to_le_bytes());
}

/// The encoded resource and scope fields of every batch.
#[derive(Debug)]
struct Head {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Head {
    fn new(resource: &[(String, String)]) -> Head {
        let mut attrs = Vec::new();
        for (k, v) in resource {
            str_attribute(field::RESOURCE_ATTRIBUTES, k, v, &mut attrs);
        }
        let mut scope_body = Vec::new();
        bytes_field(field::SCOPE_NAME, b"switchyard-sidecar", &mut scope_body);
        bytes_field(
            field::SCOPE_VERSION,
            env!("CARGO_PKG_VERSION").as_bytes(),
            &mut scope_body,
        );
        let (mut resource, mut scope) = (Vec::new(), Vec::new());
        bytes_field(field::RESOURCE, &attrs, &mut resource);
        bytes_field(field::SCOPE, &scope_body, &mut scope);
        Head { resource, scope }
    }
}

/// A batch as one `ExportTraceServiceRequest`: one resource, one scope, the spans (already
/// `spans` fields).
fn encode(head: &Head, spans: &[u8]) -> Vec<u8> {
    let scope_spans = head.scope.len() + spans.len();
    let resource_spans = head.resource.len() + delimited_len(field::SCOPE_SPANS, scope_spans);
    let mut out = Vec::with_capacity(delimited_len(field::REQUEST_RESOURCE_SPANS, resource_spans));
    header(field::REQUEST_RESOURCE_SPANS, resource_spans, &mut out);
    out.extend_from_slice(&head.resource);
    header(field::SCOPE_SPANS, scope_spans, &mut out);
    out.extend_from_slice(&head.scope);
    out.extend_from_slice(spans);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
