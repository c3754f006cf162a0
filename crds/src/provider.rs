//! `AIProvider`: one upstream account (OpenAI, Azure OpenAI, Anthropic, Gemini, Bedrock, mock).

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{status::Status, Duration};

/// One upstream LLM account that models route to.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "AIProvider",
    namespaced,
    doc = "An AIProvider is one upstream LLM account (OpenAI, Azure OpenAI, Anthropic, Gemini, Bedrock, or the local mock) that AIModels route to.",
    shortname = "aip",
    category = "switchyard",
    status = "Status",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Base URL","type":"string","jsonPath":".spec.baseUrl","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'azure-openai' || (has(self.baseUrl) && has(self.azure))").message("azure-openai needs baseUrl (the resource endpoint) and azure.apiVersion"))]
#[x_kube(validation = Rule::new("self.type != 'bedrock' || has(self.bedrock)").message("bedrock needs bedrock.region"))]
#[x_kube(validation = Rule::new("self.type == 'mock' || has(self.credentials)").message("every type but mock needs credentials"))]
#[x_kube(validation = Rule::new("self.type == 'mock' || !has(self.mock)").message("mock settings are only for type mock"))]
#[x_kube(validation = Rule::new("!has(self.api) || self.type == 'openai' || self.type == 'azure-openai'").message("api is only for openai and azure-openai"))]
pub struct AIProviderSpec {
    /// The provider's API: `openai` (and any OpenAI-compatible server), `azure-openai`,
    /// `anthropic`, `gemini`, `bedrock` or `mock` (answers locally, for demos and drills).
    #[serde(rename = "type")]
    pub type_: ProviderType,
    /// Where the API lives, in the convention of the provider's own SDK. Defaults:
    /// openai `https://api.openai.com/v1`, anthropic `https://api.anthropic.com`, gemini
    /// `https://generativelanguage.googleapis.com`; azure-openai has no default (use the
    /// resource endpoint `https://NAME.openai.azure.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = "^https?://[^\\s]+$"))]
    pub base_url: Option<String>,
    /// Where the API key comes from: a Secret in this namespace, or an environment
    /// variable of the sidecar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Azure OpenAI settings (type `azure-openai` only). A backend's `model` is the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSettings>,
    /// AWS Bedrock settings (type `bedrock` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSettings>,
    /// Extra static headers sent with every upstream request (for example `OpenAI-Organization`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Connection timeouts toward this provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<ProviderTimeouts>,
    /// Behaviour of a `mock` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockSettings>,
    /// The account's own quota, shared by every sidecar of the namespace that calls this
    /// provider. When it is spent, the provider's backends are skipped (the call fails over
    /// without spending an upstream request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ProviderLimits>,
    /// Which OpenAI API the sidecar calls upstream (`openai` and `azure-openai` only):
    /// `chat-completions` (the default) or `responses`. Calls in other dialects are
    /// translated to it; `/v1/responses` callers pass through untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<OpenAiApi>,
}

/// The OpenAI API a provider is called with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OpenAiApi {
    /// `POST /chat/completions`.
    #[default]
    ChatCompletions,
    /// `POST /responses`.
    Responses,
}

/// A provider account's quota per wall-clock minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderLimits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u64>,
    /// Tokens (input + output) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u64>,
}

/// The API family a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderType {
    /// OpenAI's API, or any server compatible with it (vLLM, Ollama, Groq, ...).
    Openai,
    /// Azure OpenAI deployments.
    AzureOpenai,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
    /// AWS Bedrock Converse (not built yet: rejected by the compiler).
    Bedrock,
    /// A local, deterministic provider for demos, load tests and fault drills.
    Mock,
}

impl ProviderType {
    /// The name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Openai => "openai",
            ProviderType::AzureOpenai => "azure-openai",
            ProviderType::Anthropic => "anthropic",
            ProviderType::Gemini => "gemini",
            ProviderType::Bedrock => "bedrock",
            ProviderType::Mock => "mock",
        }
    }

    /// The base URL used when `baseUrl` is absent.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderType::Openai => Some("https://api.openai.com/v1"),
            ProviderType::Anthropic => Some("https://api.anthropic.com"),
            ProviderType::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderType::AzureOpenai | ProviderType::Bedrock | ProviderType::Mock => None,
        }
    }
}

/// Where a provider's key comes from; exactly one of `secretRef` and `env`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretRef) != has(self.env)").message("set exactly one of secretRef and env"))]
pub struct Credentials {
    /// A key of a Secret in the provider's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// The name of an environment variable of the sidecar holding the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("pattern" = "^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub env: Option<String>,
}

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key inside the Secret's data.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// Azure OpenAI settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureSettings {
    /// The `api-version` query parameter, for example `2024-10-21`.
    #[schemars(length(min = 1))]
    pub api_version: String,
}

/// AWS Bedrock settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BedrockSettings {
    /// The AWS region, for example `us-east-1`.
    #[schemars(length(min = 1))]
    pub region: String,
}

/// Timeouts toward one provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderTimeouts {
    /// How long to wait for a TCP (and TLS) connection. Default `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<Duration>,
}

/// How a `mock` provider behaves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MockSettings {
    /// How long each answer takes. Default `0ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Duration>,
    /// The fraction of calls, from 0 to 1, that fail with `failureStatus`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub failure_rate: Option<f64>,
    /// The HTTP status of a failed call. Default 503 (retryable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 400, max = 599))]
    pub failure_status: Option<u16>,
    /// The fixed answer; when absent the mock echoes the last user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}
