//! Gemini: `x-goog-api-key`, `{baseUrl}/v1beta/models/{model}:generateContent` and friends.

use http::HeaderMap;
use switchyard_crds::proxy::Provider;

use super::{secret_header, Adapter};
use crate::dialect::Operation;

/// The Gemini adapter.
pub struct Gemini;

impl Adapter for Gemini {
    fn url(&self, p: &Provider, op: Operation, model: &str, stream: bool, single: bool) -> String {
        let method = match (op, stream, single) {
            (Operation::Chat, false, _) => "generateContent",
            (Operation::Chat, true, _) => "streamGenerateContent?alt=sse",
            (Operation::Embeddings, _, true) => "embedContent",
            (Operation::Embeddings, _, false) => "batchEmbedContents",
        };
        format!("{}/v1beta/models/{model}:{method}", p.base_url)
    }

    fn authorize(&self, p: &Provider, headers: &mut HeaderMap) {
        if let Some(v) = p.api_key.as_ref().and_then(|k| secret_header(k.expose())) {
            headers.insert("x-goog-api-key", v);
        }
    }
}
