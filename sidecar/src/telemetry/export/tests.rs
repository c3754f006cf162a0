use opentelemetry::trace::{TraceFlags, TraceId, TraceState};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::any_value,
    trace::v1::{span::SpanKind, status::StatusCode},
};
use prost::Message;

use super::*;

fn record() -> Vec<u8> {
    let context = SpanContext::new(
        TraceId::from(1u128),
        SpanId::from(2u64),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    SpanBuf::new("attempt", "p").finish(&Ends {
        context: &context,
        parent: (SpanId::INVALID, false),
        kind: Kind::Client,
        start: 1,
        end: 2,
        error: None,
    })
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_instead_of_waiting_and_an_export_empties_it() {
    let settings = Settings {
        // Nothing listens there: the export fails, and is counted.
        endpoint: "http://127.0.0.1:9/v1/traces".parse().unwrap(),
        headers: http::HeaderMap::new(),
        timeout: std::time::Duration::from_secs(2),
        delay: std::time::Duration::from_secs(3600),
        max_queue: 2,
        max_batch: 2,
        sampler: Sampler::AlwaysOn,
        resource: Vec::new(),
    };
    let (exports, dropped) = (Family::default(), Counter::default());
    let exporter = Exporter::start(settings, exports.clone(), dropped.clone());
    for _ in 0..3 {
        exporter.push(&record());
    }
    assert_eq!(dropped.get(), 1, "the third span found the queue full");
    exporter.flush().await;
    let failed = exports
        .get_or_create(&OutcomeLabels { outcome: "failed" })
        .get();
    assert!(failed >= 1, "the batch was sent (and failed)");
    exporter.push(&record());
    assert_eq!(dropped.get(), 1, "the queue was emptied");
}

#[test]
fn a_batch_decodes_as_the_opentelemetry_definitions_read_it() {
    let context = SpanContext::new(
        TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
        SpanId::from(0x1111),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let mut server = SpanBuf::new("chat", "gpt-4o");
    server.str("gen_ai.operation.name", "chat");
    server.str("gen_ai.request.model", "gpt-4o");
    server.int("gen_ai.usage.input_tokens", 9);
    let server = server.finish(&Ends {
        context: &context,
        parent: (SpanId::from(0x00f067aa0ba902b7), true),
        kind: Kind::Server,
        start: 10,
        end: 20,
        error: Some("server_error"),
    });
    let head = Head::new(&[("service.name".into(), "switchyard-sidecar".into())]);
    let mut root = SpanBuf::new("attempt", "");
    root.str("empty", "");
    root.int("n", -3);
    let root = root.finish(&Ends {
        context: &context,
        parent: (SpanId::INVALID, false),
        kind: Kind::Client,
        start: 10,
        end: 20,
        error: None,
    });
    let mut spans = Vec::new();
    for span in [&server, &root] {
        bytes_field(field::SPANS, span, &mut spans);
    }
    let bytes = encode(&head, &spans);
    let req = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
    let rs = &req.resource_spans[0];
    let resource = rs.resource.as_ref().unwrap();
    assert_eq!(resource.attributes[0].key, "service.name");
    let scope = rs.scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(scope.name, "switchyard-sidecar");
    let span = &rs.scope_spans[0].spans[0];
    assert_eq!(
        span.trace_id,
        0x4bf92f3577b34da6a3ce929d0e0e4736u128.to_be_bytes()
    );
    assert_eq!(span.span_id, 0x1111u64.to_be_bytes());
    assert_eq!(
        (span.start_time_unix_nano, span.end_time_unix_nano),
        (10, 20)
    );
    assert_eq!(span.name, "chat gpt-4o");
    assert_eq!(span.parent_span_id, 0x00f067aa0ba902b7u64.to_be_bytes());
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(span.flags, 0x301);
    assert_eq!(span.attributes[2].key, "gen_ai.usage.input_tokens");
    assert_eq!(
        span.attributes[2].value.as_ref().unwrap().value,
        Some(any_value::Value::IntValue(9))
    );
    let status = span.status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "server_error");
    let root = &rs.scope_spans[0].spans[1];
    assert_eq!(root.name, "attempt ");
    assert_eq!(root.kind, SpanKind::Client as i32);
    assert!(root.parent_span_id.is_empty() && root.status.is_none());
    assert_eq!(root.flags, 0x101);
    let values: Vec<_> = root
        .attributes
        .iter()
        .map(|a| a.value.as_ref().unwrap().value.clone())
        .collect();
    assert_eq!(
        values,
        [
            Some(any_value::Value::StringValue(String::new())),
            Some(any_value::Value::IntValue(-3))
        ]
    );
}

proptest::proptest! {
    #[test]
    fn a_varint_is_written_as_prost_writes_it(value in proptest::prelude::any::<u64>(), tag in 1u32..40) {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        varint(value, &mut ours);
        key(tag, WireType::Varint, &mut ours);
        prost::encoding::encode_varint(value, &mut theirs);
        prost::encoding::encode_key(tag, WireType::Varint, &mut theirs);
        proptest::prop_assert_eq!(ours, theirs);
    }
}
