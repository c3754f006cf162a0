//! Azure OpenAI: `api-key`, `{endpoint}/openai/deployments/{deployment}/...?api-version=`.

use http::HeaderMap;
use switchyard_crds::{proxy::Provider, OpenAiApi};

use super::{secret_header, Adapter};
use crate::dialect::Operation;

/// The Azure OpenAI adapter.
pub struct Azure;

impl Adapter for Azure {
    fn url(
        &self,
        p: &Provider,
        op: Operation,
        model: &str,
        _stream: bool,
        _single: bool,
    ) -> String {
        let version = p.azure_api_version.as_deref().unwrap_or_default();
        let path = match op {
            // The Responses API names the deployment in the body's `model`.
            Operation::Chat if p.api == OpenAiApi::Responses => {
                return format!("{}/openai/responses?api-version={version}", p.base_url)
            }
            Operation::Chat => "chat/completions",
            Operation::Embeddings => "embeddings",
        };
        format!(
            "{}/openai/deployments/{model}/{path}?api-version={version}",
            p.base_url
        )
    }

    fn authorize(&self, p: &Provider, headers: &mut HeaderMap) {
        if let Some(v) = p.api_key.as_ref().and_then(|k| secret_header(k.expose())) {
            headers.insert("api-key", v);
        }
    }
}
