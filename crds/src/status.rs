//! The status every Switchyard kind carries: `observedGeneration` and conditions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a Switchyard object, written by the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` is always present once reconciled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// AIModel only: calls, tokens and cost today and this month (UTC), as the sidecars
    /// reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// An AIModel's usage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// The UTC day `today` counts (`2026-11-30`).
    pub date: String,
    /// Since midnight UTC.
    pub today: UsageTotals,
    /// Since the 1st of the month, UTC.
    pub month: UsageTotals,
}

/// Counts of one period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    /// Calls.
    pub requests: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Input (prompt) tokens, cached ones included.
    pub input_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens read from a provider's cache.
    pub cached_input_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// US dollars, as a decimal string.
    pub cost: String,
}

/// One standard Kubernetes condition (`metav1.Condition`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's name, such as `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason, such as `SecretNotFound`.
    pub reason: String,
    /// A human-readable explanation naming the object and field at fault.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Why an object is not ready; each is a `reason` of the `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// A referenced Secret does not exist.
    SecretNotFound,
    /// A referenced Secret exists but lacks the key.
    SecretKeyMissing,
    /// A credential names an environment variable that is not set.
    EnvNotSet,
    /// A model names an AIProvider that does not exist or is not ready.
    ProviderNotFound,
    /// A model's fallback names an AIModel that does not exist.
    ModelNotFound,
    /// The spec passes the schema but cannot be served as written.
    InvalidSpec,
    /// Another object already claims what this one claims.
    Conflicted,
}

impl Reason {
    /// The condition reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SecretNotFound => "SecretNotFound",
            Reason::SecretKeyMissing => "SecretKeyMissing",
            Reason::EnvNotSet => "EnvNotSet",
            Reason::ProviderNotFound => "ProviderNotFound",
            Reason::ModelNotFound => "ModelNotFound",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::Conflicted => "Conflicted",
        }
    }
}
