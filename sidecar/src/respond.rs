//! The one place that turns an [`Error`] into an error body in the caller's dialect, and
//! that builds the sidecar's HTTP responses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use serde_json::{json, Value};

use crate::{dialect::Dialect, error::Error};

/// The body type of every response the sidecar sends.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON response with the given status.
/// How many headers a response has room for from the start.
pub const HEADERS: usize = 24;

pub fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    // Room for what a response gathers (upstream headers, `x-switchyard-*`, `x-ratelimit-*`)
    // without growing the map on the way.
    *resp.headers_mut() = HeaderMap::with_capacity(HEADERS);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The error response for `err`, in `dialect`, with `Retry-After` on a 429.
pub fn error_response(dialect: Dialect, err: &Error, request_id: &str) -> Response<Body> {
    if let Error::Upstream(a) = err {
        let mut resp = Response::new(full(a.body.clone()));
        *resp.status_mut() = a.status;
        *resp.headers_mut() = a.headers.clone();
        return resp;
    }
    let status = err.status_code();
    let body = error_body(dialect, err, request_id);
    let mut resp = json_response(status, body.to_string());
    if let Some(after) = err.retry_after() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, retry_after_header(after));
    }
    resp
}

/// A `Retry-After` value: whole seconds, rounded up, at least one.
pub fn retry_after_header(after: std::time::Duration) -> HeaderValue {
    HeaderValue::from(after.as_secs_f64().ceil().max(1.0) as u64)
}

fn error_body(dialect: Dialect, err: &Error, request_id: &str) -> Value {
    let kind = err_type(dialect, err);
    let message = err.to_string();
    match dialect {
        Dialect::Anthropic => json!({
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }),
        Dialect::OpenAi | Dialect::Responses => json!({"error": {
            "message": message,
            "type": kind,
            "param": err.param(),
            "code": err.code(),
        }}),
        Dialect::Gemini => gemini_error(err.status_code(), &message),
    }
}

/// Gemini's error body (`google.rpc.Status`).
fn gemini_error(status: StatusCode, message: &str) -> Value {
    let name = match status.as_u16() {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 | 405 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    json!({"error": {"code": status.as_u16(), "message": message, "status": name}})
}

fn err_type(dialect: Dialect, err: &Error) -> &str {
    let status = err.status_code();
    match (dialect, err) {
        (_, Error::Exhausted(e)) if e.kind == "upstream_authentication_error" => e.kind,
        (Dialect::Anthropic, _) => anthropic_type(status),
        (_, Error::Exhausted(e)) => e.kind,
        (_, Error::NotReady) => "service_unavailable",
        (_, Error::Throttled { .. }) => "rate_limit_error",
        (_, Error::BudgetExceeded { .. }) => "insufficient_quota",
        _ => "invalid_request_error",
    }
}

/// Anthropic's error type for a status.
pub fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 405 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

/// A stream's closing error event, in `dialect`, for a failure after the first byte.
pub fn error_event(dialect: Dialect, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match dialect {
        Dialect::Anthropic => {
            let data = json!({"type": "error", "error": {"type": "api_error", "message": message}});
            crate::sse::write(&mut out, Some("error"), &data.to_string());
        }
        Dialect::Gemini => {
            let data = gemini_error(StatusCode::BAD_GATEWAY, message);
            crate::sse::write(&mut out, None, &data.to_string());
        }
        Dialect::OpenAi => {
            let data = json!({"error": {
                "message": message, "type": "upstream_error", "param": null, "code": "stream_interrupted",
            }});
            crate::sse::write(&mut out, None, &data.to_string());
        }
        // Responses streams close with `response.failed`, which only the stream's translator
        // can write (it knows the response id and sequence); this is the stateless fallback.
        Dialect::Responses => {
            let data = json!({
                "type": "error", "code": "stream_interrupted", "message": message, "param": null,
            });
            crate::sse::write(&mut out, Some("error"), &data.to_string());
        }
    }
    out
}
