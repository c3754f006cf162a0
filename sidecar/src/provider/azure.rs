//! Azure OpenAI: `api-key`, `{endpoint}/openai/deployments/{deployment}/...?api-version=`.

use http::HeaderMap;
use switchyard_crds::proxy::Provider;

use super::{secret_header, Adapter};
use crate::dialect::{Dialect, Operation};

/// The Azure OpenAI adapter.
pub struct Azure;

impl Adapter for Azure {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAi
    }

    fn url(
        &self,
        p: &Provider,
        op: Operation,
        model: &str,
        _stream: bool,
        _single: bool,
    ) -> String {
        let path = match op {
            Operation::Chat => "chat/completions",
            Operation::Embeddings => "embeddings",
        };
        let version = p.azure_api_version.as_deref().unwrap_or_default();
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
