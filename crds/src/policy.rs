//! `AIRoutingPolicy`: how the selected pods' traffic behaves.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{status::Status, Duration};

/// Routing, retry, timeout and circuit-breaking behaviour for the pods it selects.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "switchyard.dev",
    version = "v1alpha1",
    kind = "AIRoutingPolicy",
    namespaced,
    doc = "An AIRoutingPolicy sets load balancing, retries, timeouts and circuit breaking for the pods it selects.",
    shortname = "airp",
    category = "switchyard",
    status = "Status",
    printcolumn = r#"{"name":"Load balancing","type":"string","jsonPath":".spec.loadBalancing"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AIRoutingPolicySpec {
    /// The pods this policy applies to; empty selects every pod in the namespace. When several
    /// policies select a pod, the oldest wins (then name order) and the others are `Conflicted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// The AIModels the pods may call; absent allows every AIModel of the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// How a backend is picked. Default `priority`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancing: Option<LoadBalancing>,
    /// Retries and failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Per-request deadlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    /// Per-backend circuit breaking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Request and token limits: for each selected pod alone (`scope: pod`, the default) or
    /// for all of them together (`scope: policy`, exact whatever the number of pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Exact-match response cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cache>,
    /// `session` (the default): a call carrying a session key goes to the backend that
    /// served the session's last call while it is healthy, so provider prompt caches keep
    /// hitting; `none`: every call is placed afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// Whether calls of one session stick to one backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Affinity {
    /// A session stays on the backend that served it while that backend is healthy.
    #[default]
    Session,
    /// No stickiness.
    None,
}

/// How a backend is picked among an AIModel's backends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadBalancing {
    /// Lowest `priority` group first, weighted random inside it, next group on failure.
    #[default]
    Priority,
    /// One pool by weight; the rest as failover.
    Weighted,
    /// The backend with the lowest recent latency first.
    LeastLatency,
    /// The backend with the lowest price first.
    LowestCost,
    /// The backend with the fewest requests in flight first.
    LeastRequests,
}

impl LoadBalancing {
    /// The name used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalancing::Priority => "priority",
            LoadBalancing::Weighted => "weighted",
            LoadBalancing::LeastLatency => "least-latency",
            LoadBalancing::LowestCost => "lowest-cost",
            LoadBalancing::LeastRequests => "least-requests",
        }
    }
}

/// Retries across backends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Total tries across all backends, the first included. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20))]
    pub attempts: Option<u32>,
    /// The wait before retrying the same backend, doubling each time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Which failures are retried. Default all four.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<RetryOn>>,
}

/// Exponential backoff bounds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.initial) || !has(self.max) || duration(self.initial) <= duration(self.max)").message("initial must not exceed max"))]
pub struct Backoff {
    /// The first wait. Default `100ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Duration>,
    /// The longest wait. Default `2s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Duration>,
}

/// A class of failure that may be retried on another backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx (and Anthropic's 529), or an invalid upstream answer.
    ServerError,
    /// No first byte, or no complete answer, in time.
    Timeout,
    /// The connection could not be made.
    ConnectFailure,
}

/// Per-request deadlines.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// The longest wait for an upstream's first body event, per attempt. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte: Option<Duration>,
    /// The longest a whole request may take, all attempts included. Default `600s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Duration>,
}

/// A per-backend circuit breaker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    /// Failures in a row that open the circuit. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub consecutive_failures: Option<u32>,
    /// How long an open circuit stays open before one trial call. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<Duration>,
}

/// Request and token limits per wall-clock minute (UTC, from :00 seconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u64>,
    /// Tokens (input + output) per minute. A call reserves its input estimate plus its
    /// maximum output tokens before it is sent, and settles at what upstream reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_minute: Option<u64>,
    /// `pod` (default): each selected pod has the whole limit to itself. `policy`: one limit
    /// shared by every pod the policy selects, kept by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RateLimitScope>,
    /// How long a call over the limit may wait for room before it is refused with 429.
    /// Default `0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queue_wait: Option<Duration>,
}

/// Whom a rate limit holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitScope {
    /// Each selected pod alone.
    #[default]
    Pod,
    /// All the pods the policy selects, together.
    Policy,
}

/// Exact-match response cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    /// How long an entry lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// The most entries kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_entries: Option<u32>,
}
