//! `AIModel`: a name applications send, and the backends it can go to.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::Status;

/// A model name that applications send, and the provider models that serve it.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "AIModel",
    namespaced,
    doc = "An AIModel is a model name applications send, and the provider models (backends) that serve it.",
    shortname = "aim",
    category = "switchyard",
    status = "Status",
    printcolumn = r#"{"name":"Requests Today","type":"integer","jsonPath":".status.usage.today.requests"}"#,
    printcolumn = r#"{"name":"Cost Today","type":"string","jsonPath":".status.usage.today.cost"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AIModelSpec {
    /// More names this model is served under, besides `metadata.name` (for example the
    /// `gpt-4o` an application already sends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, a == b))").message("aliases must be unique"))]
    pub aliases: Vec<String>,
    /// Where calls go: provider models, tried by `priority` then `weight`.
    #[schemars(length(min = 1))]
    pub backends: Vec<Backend>,
    /// Other AIModels (by name, same namespace) tried in order when every backend failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
}

/// One provider model that can serve an AIModel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The AIProvider's name, in the same namespace.
    #[schemars(length(min = 1))]
    pub provider: String,
    /// The upstream model id (for Azure OpenAI: the deployment name).
    #[schemars(length(min = 1))]
    pub model: String,
    /// Lower is tried first. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub priority: u32,
    /// The share of traffic among backends of equal priority. Default 1; 0 takes traffic
    /// only as a failover target.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 0))]
    pub weight: u32,
    /// Prices used to count cost, in US dollars per million tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

fn default_weight() -> u32 {
    1
}

/// Prices per million tokens, in US dollars.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// Dollars per million input (prompt) tokens.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub input_per_million_tokens: f64,
    /// Dollars per million output (completion) tokens.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub output_per_million_tokens: f64,
}
