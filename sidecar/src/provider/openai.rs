//! OpenAI and every OpenAI-compatible server: `Authorization: Bearer`,
//! `{baseUrl}/chat/completions` (or `/responses` with `api: responses`).

use http::{header, HeaderMap};
use switchyard_crds::{proxy::Provider, OpenAiApi};

use super::{secret_header, Adapter};
use crate::dialect::Operation;

/// The OpenAI adapter.
pub struct OpenAi;

impl Adapter for OpenAi {
    fn url(
        &self,
        p: &Provider,
        op: Operation,
        _model: &str,
        _stream: bool,
        _single: bool,
    ) -> String {
        match op {
            Operation::Chat if p.api == OpenAiApi::Responses => format!("{}/responses", p.base_url),
            Operation::Chat => format!("{}/chat/completions", p.base_url),
            Operation::Embeddings => format!("{}/embeddings", p.base_url),
        }
    }

    fn authorize(&self, p: &Provider, headers: &mut HeaderMap) {
        if let Some(v) = p
            .api_key
            .as_ref()
            .and_then(|k| secret_header(&format!("Bearer {}", k.expose())))
        {
            headers.insert(header::AUTHORIZATION, v);
        }
    }
}
