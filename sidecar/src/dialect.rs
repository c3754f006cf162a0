//! The wire formats the sidecar speaks, and the operations it serves.

use switchyard_crds::{proxy::Provider, OpenAiApi, ProviderType};

/// An API's wire format: what a caller sends, or what a provider expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI chat completions and embeddings (also Azure OpenAI and the mock).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
}

impl Dialect {
    /// The format a provider is called in.
    pub fn of(provider: &Provider) -> Dialect {
        match provider.type_ {
            ProviderType::Anthropic => Dialect::Anthropic,
            ProviderType::Gemini => Dialect::Gemini,
            ProviderType::Openai | ProviderType::AzureOpenai
                if provider.api == OpenAiApi::Responses =>
            {
                Dialect::Responses
            }
            ProviderType::Openai
            | ProviderType::AzureOpenai
            | ProviderType::Mock
            | ProviderType::Bedrock => Dialect::OpenAi,
        }
    }

    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
            Dialect::Gemini => "gemini",
            Dialect::Responses => "responses",
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A chat completion (OpenAI) or message (Anthropic).
    Chat,
    /// Embeddings.
    Embeddings,
}

impl Operation {
    /// The OpenTelemetry GenAI operation name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}
