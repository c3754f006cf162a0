//! Prometheus metrics, named after the OpenTelemetry GenAI semantic conventions where one
//! exists (`gen_ai_client_*`), `switchyard_*` otherwise. No label ever carries a prompt or key.

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};
use std::sync::atomic::AtomicU64;

pub mod handles;

/// Labels of an operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// `chat` or `embeddings`.
    pub gen_ai_operation_name: &'static str,
    /// The model name the caller sent (`unknown` when not served).
    pub gen_ai_request_model: String,
    /// The AIProvider that answered (empty when none did).
    pub gen_ai_provider_name: String,
    /// The upstream model id called.
    pub gen_ai_response_model: String,
    /// Empty on success, else the error class.
    pub error_type: String,
}

/// Labels of token counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// `chat` or `embeddings`.
    pub gen_ai_operation_name: &'static str,
    /// The model name the caller sent.
    pub gen_ai_request_model: String,
    /// The AIProvider that answered.
    pub gen_ai_provider_name: String,
    /// The upstream model that answered (with the provider: the backend, so prompt-cache
    /// hits can be read per backend).
    pub gen_ai_response_model: String,
    /// `input` or `output` (also `cached_input`, `reasoning` on the counter).
    pub gen_ai_token_type: &'static str,
}

/// Labels of per-request counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The model name the caller sent.
    pub gen_ai_request_model: String,
    /// The caller's API (`openai` or `anthropic`).
    pub api: &'static str,
    /// The HTTP status returned.
    pub status_code: u16,
}

/// Labels of an upstream attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The AIProvider.
    pub gen_ai_provider_name: String,
    /// The upstream model id.
    pub gen_ai_response_model: String,
    /// `ok`, `rate_limited`, `server_error`, `timeout`, `connect_failure`, `invalid_response`,
    /// `auth_failed` or `rejected`.
    pub outcome: &'static str,
    /// The upstream's HTTP status (0 when none came).
    pub status_code: u16,
}

/// Labels naming one backend.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// The AIProvider.
    pub gen_ai_provider_name: String,
    /// The upstream model id.
    pub gen_ai_response_model: String,
}

/// Labels with a model only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The model name the caller sent.
    pub gen_ai_request_model: String,
}

/// Labels with an outcome only.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `ok`, `rejected` or `failed`.
    pub outcome: &'static str,
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric the sidecar exports.
pub struct Metrics {
    registry: Registry,
    /// Whole-request duration.
    pub duration: HistFamily<OpLabels>,
    /// Tokens per request.
    pub token_usage: HistFamily<TokenLabels>,
    /// Time to the first streamed token.
    pub time_to_first_token: HistFamily<BackendLabels>,
    /// Requests by status.
    pub requests: Family<RequestLabels, Counter>,
    /// Upstream attempts by outcome.
    pub attempts: Family<AttemptLabels, Counter>,
    /// Requests that moved to another backend at least once.
    pub failovers: Family<ModelLabels, Counter>,
    /// Tokens counted, by type.
    pub tokens: Family<TokenLabels, Counter>,
    /// Cost in US dollars, from `pricing`.
    pub cost: Family<BackendLabels, Counter<f64, AtomicU64>>,
    /// 1 while a backend's circuit is open.
    pub circuit_open: Family<BackendLabels, Gauge>,
    /// Config loads by outcome.
    pub reloads: Family<OutcomeLabels, Counter>,
    /// Cache lookups by result (`hit`, `miss`, `bypass`).
    pub cache: Family<CacheLabels, Counter>,
    /// Answers the cache holds.
    pub cache_entries: Gauge,
    /// OTLP trace exports by outcome (`ok`, `failed`).
    pub trace_exports: Family<OutcomeLabels, Counter>,
    /// Spans dropped because the export queue was full (the collector away or slow).
    pub trace_spans_dropped: Counter,
    /// The metrics of each kind of successful call and of each backend, found once.
    pub handles: handles::Handles,
}

/// Labels of cache lookups.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// The model name the caller sent.
    pub gen_ai_request_model: String,
    /// `hit`, `miss` or `bypass`.
    pub result: &'static str,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

fn tokens() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            duration: Family::new_with_constructor(seconds),
            token_usage: Family::new_with_constructor(tokens),
            time_to_first_token: Family::new_with_constructor(seconds),
            requests: Family::default(),
            attempts: Family::default(),
            failovers: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            circuit_open: Family::default(),
            reloads: Family::default(),
            cache: Family::default(),
            cache_entries: Gauge::default(),
            trace_exports: Family::default(),
            trace_spans_dropped: Counter::default(),
            handles: handles::Handles::default(),
            registry: Registry::default(),
        };
        m.register_gen_ai(&mut registry);
        m.register_switchyard(&mut registry);
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// The OpenTelemetry GenAI semantic-convention instruments.
    fn register_gen_ai(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration",
            m.duration.clone(),
        );
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens used per GenAI operation",
            m.token_usage.clone(),
        );
        registry.register(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first streamed chunk",
            m.time_to_first_token.clone(),
        );
    }

    /// Switchyard's own counters and gauges.
    fn register_switchyard(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "switchyard_requests",
            "Requests served, by status",
            m.requests.clone(),
        );
        registry.register(
            "switchyard_upstream_attempts",
            "Upstream attempts, by outcome",
            m.attempts.clone(),
        );
        registry.register(
            "switchyard_failovers",
            "Requests that moved to another backend",
            m.failovers.clone(),
        );
        registry.register(
            "switchyard_tokens",
            "Tokens counted, by type",
            m.tokens.clone(),
        );
        registry.register(
            "switchyard_cost_usd",
            "Cost in US dollars from AIModel pricing",
            m.cost.clone(),
        );
        registry.register(
            "switchyard_circuit_open",
            "1 while a backend's circuit is open",
            m.circuit_open.clone(),
        );
        registry.register(
            "switchyard_config_reloads",
            "Config loads, by outcome",
            m.reloads.clone(),
        );
        registry.register(
            "switchyard_cache_lookups",
            "Exact-cache lookups, by result (a hit spends no upstream call, tokens or budget)",
            m.cache.clone(),
        );
        registry.register(
            "switchyard_cache_entries",
            "Answers the exact cache holds",
            m.cache_entries.clone(),
        );
        registry.register(
            "switchyard_trace_exports",
            "OTLP trace batches sent, by outcome (spans are dropped, not waited for, when the collector is away)",
            m.trace_exports.clone(),
        );
        registry.register(
            "switchyard_trace_spans_dropped",
            "Spans dropped because the export queue was full (never waited for)",
            m.trace_spans_dropped.clone(),
        );
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
