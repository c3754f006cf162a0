use opentelemetry::{trace::TraceState, Context};
use opentelemetry_http::HeaderInjector;

use super::*;

/// What the OpenTelemetry W3C propagator writes for `span`, less an empty `tracestate` (which
/// the W3C spec says not to send).
fn by_propagator(span: &SpanContext) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let cx = Context::new().with_remote_span_context(span.clone());
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
    if headers.get(TRACESTATE).is_some_and(|v| v.is_empty()) {
        headers.remove(TRACESTATE);
    }
    headers
}

#[test]
fn injected_headers_are_what_the_w3c_propagator_writes() {
    let state = TraceState::from_key_value([("vendor", "a1"), ("other", "b2")]).expect("valid");
    for (flags, state) in [
        (TraceFlags::SAMPLED, TraceState::default()),
        (TraceFlags::default(), state),
    ] {
        let span = SpanContext::new(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c),
            SpanId::from(0x00f067aa0ba902b7),
            flags,
            true,
            state,
        );
        let mut ours = HeaderMap::new();
        Propagation::of(&span).onto(&mut ours);
        assert_eq!(ours, by_propagator(&span));
    }
    let mut ours = HeaderMap::new();
    let small = SpanContext::new(
        TraceId::from(1),
        SpanId::from(2),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    Propagation::of(&small).onto(&mut ours);
    assert_eq!(
        ours[TRACEPARENT],
        "00-00000000000000000000000000000001-0000000000000002-01"
    );
}
