//! The lease exchange between a sidecar and the operator's leader (`POST /v1/leases` on the
//! config server): slices of shared limits asked for and granted, what a pod holds of each
//! budget, settled spend, and usage for status and metrics. Like [`crate::ProxyConfig`], it is
//! the contract between the two binaries, so it lives here.

use serde::{Deserialize, Serialize};

/// An amount of one counter in one window: asked for, or held.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Want {
    /// `policy/NAME/requests`, `provider/NAME/tokens`, `budget/NAME`, ...
    pub counter: String,
    /// The window's start (unix seconds): a minute, or a budget period.
    pub window: i64,
    /// Requests, tokens or micro-dollars.
    pub amount: u64,
}

/// Settled spend of one call against a shared budget, counted once by its id.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Report {
    /// Unique per call.
    pub id: String,
    /// `budget/NAME`.
    pub counter: String,
    /// The period the spend belongs to.
    pub window: i64,
    /// Micro-dollars.
    pub amount: u64,
}

/// One model's and provider's usage from one pod since its last report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// The AIModel.
    pub model: String,
    /// The AIProvider that answered (empty when none did).
    pub provider: String,
    /// Calls.
    pub requests: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Input tokens (cached included).
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Input tokens read from a provider's cache.
    pub cached_input_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Micro-dollars.
    pub cost: u64,
}

impl Usage {
    /// Adds another record's counts to this one.
    pub fn add(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost += other.cost;
    }
}

/// Usage records sealed under one id, so the operator counts them once.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UsageBatch {
    /// Unique.
    pub id: String,
    /// The records.
    pub items: Vec<Usage>,
}

/// What the sidecar sends.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exchange {
    /// Slices asked for.
    #[serde(default)]
    pub want: Vec<Want>,
    /// What this pod holds of each shared budget (leased and unspent, plus in flight).
    #[serde(default)]
    pub holdings: Vec<Want>,
    /// Settled spend.
    #[serde(default)]
    pub reports: Vec<Report>,
    /// Calls, tokens and cost by model and provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<UsageBatch>,
}

/// One slice granted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// The counter.
    pub counter: String,
    /// The window it is valid in.
    pub window: i64,
    /// Granted now (possibly 0).
    pub amount: u64,
    /// Left in the window after this grant.
    pub remaining: u64,
}

/// What the operator answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    /// One per want.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Report and usage batch ids counted (now or before).
    #[serde(default)]
    pub accepted: Vec<String>,
}
