//! `ProxyConfig`: the self-contained snapshot a sidecar runs on, built by [`crate::compile`].

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use crate::Duration;
pub use crate::{
    budget::Period,
    model::Pricing,
    money::Money,
    policy::{Affinity, LoadBalancing, RateLimitScope, RetryOn},
    provider::{MockSettings, OpenAiApi, ProviderType},
    status::Reason,
};

/// The version of the snapshot format; a sidecar refuses snapshots of another version.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one sidecar needs: providers with resolved credentials, models, one policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    /// The snapshot format, [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The namespace the snapshot was compiled for.
    pub namespace: String,
    /// Usable providers by name.
    pub providers: BTreeMap<String, Provider>,
    /// Servable models, in name order.
    pub models: Vec<Model>,
    /// The policy in force, with every default filled in.
    pub policy: Policy,
    /// The AIBudgets that apply to this pod (each for the models it covers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
    /// What was left out, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// A per-minute limit on requests and tokens (wall-clock minutes, UTC).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Tokens (input + output) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
}

/// The policy's rate limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// The limits.
    #[serde(flatten)]
    pub limits: Limits,
    /// Each pod alone, or every selected pod together (leases from the operator).
    pub scope: RateLimitScope,
    /// How long a call over the limit may wait for room.
    pub max_queue_wait: Duration,
    /// How many pods share a `policy`-scoped limit (the offline share is remaining / pods).
    pub pods: u32,
}

/// An AIBudget that applies to this pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// The AIBudget's name.
    pub name: String,
    /// Dollars per period.
    pub limit: Money,
    /// Day, week or month (UTC).
    pub period: Period,
    /// The AIModels whose calls count; absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// How many pods share it (the offline share is remaining / pods).
    pub pods: u32,
    /// What the operator last knew to be spent and reserved this period (standalone: zero).
    #[serde(default)]
    pub used: Money,
    /// The period `used` belongs to (its start, unix seconds; 0 when unknown).
    #[serde(default)]
    pub period_start: i64,
}

impl Budget {
    /// Whether calls to this AIModel count against the budget.
    pub fn covers(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.iter().any(|n| n == model))
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Money::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a dollar amount: {text:?}")))
    }
}

/// A provider ready to call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// The API family.
    #[serde(rename = "type")]
    pub type_: ProviderType,
    /// The base URL without a trailing slash (empty for `mock`).
    pub base_url: String,
    /// The resolved key, if the type needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretString>,
    /// The sidecar environment variable holding the key, when the sidecar resolves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Extra static headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Azure's `api-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_api_version: Option<String>,
    /// The connect timeout.
    pub connect_timeout: Duration,
    /// Mock behaviour (type `mock` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockSettings>,
    /// The account's quota, shared by every sidecar of the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// How many pods of the namespace share `limits` (the offline share).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pods: u32,
    /// The OpenAI API called upstream (openai and azure-openai).
    #[serde(default, skip_serializing_if = "is_chat_completions")]
    pub api: OpenAiApi,
}

fn is_chat_completions(api: &OpenAiApi) -> bool {
    *api == OpenAiApi::ChatCompletions
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A servable model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// The AIModel's name.
    pub name: String,
    /// Further served names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Backends whose provider resolved.
    pub backends: Vec<Backend>,
    /// AIModels tried in order after every backend failed (only ones that exist).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
}

impl Model {
    /// Every name the model is served under.
    pub fn served_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// One resolved backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The provider's name (a key of [`ProxyConfig::providers`]).
    pub provider: String,
    /// The upstream model id.
    pub model: String,
    /// Lower is tried first.
    pub priority: u32,
    /// Share among equal priority.
    pub weight: u32,
    /// Prices, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

/// The policy in force, defaults filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// The AIRoutingPolicy's name, or none when the defaults apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The allow-list of AIModel names; `None` allows all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// The backend-picking strategy.
    pub load_balancing: LoadBalancing,
    /// Total tries across backends.
    pub attempts: u32,
    /// First backoff before retrying the same backend.
    pub backoff_initial: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Failure classes that are retried.
    pub retry_on: Vec<RetryOn>,
    /// Per-attempt deadline for the first body event.
    pub first_byte_timeout: Duration,
    /// Whole-request deadline.
    pub total_timeout: Duration,
    /// Failures in a row that open a backend's circuit.
    pub consecutive_failures: u32,
    /// How long a circuit stays open.
    pub cooldown: Duration,
    /// Request and token limits, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Whether a session's calls stick to one backend.
    #[serde(default, skip_serializing_if = "is_session")]
    pub affinity: Affinity,
    /// The exact-match response cache, if on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cache>,
}

/// The exact-match response cache of a pod.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    /// How long an answer is served from the cache.
    pub ttl: Duration,
    /// The most answers kept.
    pub max_entries: u32,
}

impl Cache {
    /// `ttl` when the policy names none.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
    /// `maxEntries` when the policy names none.
    pub const DEFAULT_MAX_ENTRIES: u32 = 10_000;
}

fn is_session(a: &Affinity) -> bool {
    *a == Affinity::Session
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            name: None,
            models: None,
            load_balancing: LoadBalancing::Priority,
            attempts: 3,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            retry_on: vec![
                RetryOn::RateLimited,
                RetryOn::ServerError,
                RetryOn::Timeout,
                RetryOn::ConnectFailure,
            ],
            first_byte_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(600),
            consecutive_failures: 5,
            cooldown: Duration::from_secs(30),
            rate_limit: None,
            affinity: Affinity::Session,
            cache: None,
        }
    }
}

/// Something the compiler left out, by object and field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `AIProvider`, `AIModel` or `AIRoutingPolicy`.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The field at fault, like `spec.credentials.secretRef`.
    pub field: String,
    /// The condition reason.
    pub reason: Reason,
    /// What is wrong, never including a secret value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}: {}",
            self.kind, self.name, self.field, self.message
        )
    }
}

/// A credential: serialized as is (the snapshot must carry it), never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

/// What `/config` shows in place of a credential.
pub const REDACTED: &str = "<redacted>";

impl SecretString {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl ProxyConfig {
    /// A copy fit to show: every credential replaced by [`REDACTED`], and the values of
    /// extra headers too (they may carry tokens).
    pub fn redacted(&self) -> ProxyConfig {
        let mut copy = self.clone();
        for provider in copy.providers.values_mut() {
            if provider.api_key.is_some() {
                provider.api_key = Some(SecretString::new(REDACTED));
            }
            for value in provider.headers.values_mut() {
                *value = REDACTED.to_string();
            }
        }
        copy
    }

    /// The model served under `name`, if the policy allows it.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models
            .iter()
            .find(|m| m.served_names().any(|n| n == name))
    }
}
