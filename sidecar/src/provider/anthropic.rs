//! Anthropic Messages: `x-api-key` + `anthropic-version`, `{baseUrl}/v1/messages`.

use http::{HeaderMap, HeaderValue};
use switchyard_crds::proxy::Provider;

use super::{secret_header, Adapter};
use crate::dialect::Operation;

/// The API version sent when the caller did not send one.
pub const VERSION: &str = "2023-06-01";

/// The Anthropic adapter.
pub struct Anthropic;

impl Adapter for Anthropic {
    fn url(
        &self,
        p: &Provider,
        _op: Operation,
        _model: &str,
        _stream: bool,
        _single: bool,
    ) -> String {
        format!("{}/v1/messages", p.base_url)
    }

    fn authorize(&self, p: &Provider, headers: &mut HeaderMap) {
        if let Some(v) = p.api_key.as_ref().and_then(|k| secret_header(k.expose())) {
            headers.insert("x-api-key", v);
        }
        if !headers.contains_key("anthropic-version") {
            headers.insert("anthropic-version", HeaderValue::from_static(VERSION));
        }
    }

    fn serves(&self, op: Operation) -> bool {
        op == Operation::Chat
    }
}
