//! Outbound adapters: one module per provider type behind one trait. An adapter knows its
//! wire format, its URLs and how its key travels; translation lives in `translate`.

pub mod anthropic;
pub mod azure;
pub mod gemini;
pub mod mock;
pub mod openai;

use http::{header, HeaderMap, HeaderName, HeaderValue, Request};
use switchyard_crds::{proxy::Provider, ProviderType};

use crate::{
    dialect::{Dialect, Operation},
    payload::Payload,
};

/// What differs between provider types when building a request.
pub trait Adapter: Sync {
    /// The full URL for an operation on a model; `single` is false for a Gemini batch embed.
    fn url(&self, p: &Provider, op: Operation, model: &str, stream: bool, single: bool) -> String;
    /// Puts the key where the provider documents it.
    fn authorize(&self, p: &Provider, headers: &mut HeaderMap);
    /// Whether the provider serves the operation.
    fn serves(&self, op: Operation) -> bool {
        let _ = op;
        true
    }
}

/// The adapter of a provider type.
pub fn adapter(t: ProviderType) -> &'static dyn Adapter {
    match t {
        ProviderType::Openai | ProviderType::Bedrock => &openai::OpenAi,
        ProviderType::AzureOpenai => &azure::Azure,
        ProviderType::Anthropic => &anthropic::Anthropic,
        ProviderType::Gemini => &gemini::Gemini,
        ProviderType::Mock => &mock::Mock,
    }
}

/// Whether a caller's header is the API's own, forwarded on same-format calls: every
/// `anthropic-*` header (an open list: `anthropic-version`, `anthropic-beta` and whatever
/// Anthropic adds next) and OpenAI's `openai-beta`.
fn api_header(name: &str) -> bool {
    name.starts_with("anthropic-") || name == "openai-beta"
}

/// What is asked of the upstream: the operation on which model, streamed or not, and for
/// embeddings whether one input goes alone.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    /// The operation.
    pub op: Operation,
    /// The upstream model.
    pub model: &'a str,
    /// Whether the answer streams.
    pub stream: bool,
    /// One embeddings input (Gemini's single-input endpoint).
    pub single: bool,
}

/// Who asked: the caller's format, its headers and the call's id.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    /// The caller's format.
    pub dialect: Dialect,
    /// The caller's headers.
    pub headers: &'a HeaderMap,
    /// The call's `x-request-id`.
    pub request_id: &'a str,
}

/// Builds the upstream request: URL, key, the provider's extra headers, and the API's own
/// headers from the caller when caller and provider speak the same format. The caller's
/// `Authorization` and `x-api-key` are never forwarded.
pub fn build(
    p: &Provider,
    ask: Ask<'_>,
    body: Payload,
    caller: Caller<'_>,
) -> Result<Request<Payload>, http::Error> {
    let Ask {
        op,
        model,
        stream,
        single,
    } = ask;
    let a = adapter(p.type_);
    let mut req = Request::post(a.url(p, op, model, stream, single));
    let headers = req.headers_mut().expect("a fresh builder has headers");
    // Room for what an upstream request carries (the API's, the caller's forwarded, the
    // trace's) at once: growing the map on the way rehashes every header in it.
    headers.reserve(16);
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static(if stream {
            "text/event-stream"
        } else {
            "application/json"
        }),
    );
    if let Ok(v) = HeaderValue::from_str(caller.request_id) {
        headers.insert(crate::inbound::X_REQUEST_ID, v);
    }
    upstream_headers(p, caller.dialect, caller.headers, headers);
    req.body(body)
}

/// The headers every request to `p` carries: a JSON body, the API's own headers from a
/// same-format caller, the provider's static headers, and its key where it documents it.
pub fn upstream_headers(
    p: &Provider,
    caller: Dialect,
    inbound: &HeaderMap,
    headers: &mut HeaderMap,
) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if caller == Dialect::of(p) {
        for (name, v) in inbound.iter().filter(|(n, _)| api_header(n.as_str())) {
            headers.append(name.clone(), v.clone());
        }
    }
    for (k, v) in &p.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            headers.insert(k, v);
        }
    }
    adapter(p.type_).authorize(p, headers);
}

/// A header value holding a secret, marked sensitive so it is never printed.
pub fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}
