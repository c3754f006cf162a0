//! What every request reads: the config in force (swapped whole on reload), backend health,
//! the upstream client and the metrics.

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwapOption;
use switchyard_crds::{proxy::Model, ProxyConfig};

use crate::{
    health::{BackendHealth, Health},
    metrics::Metrics,
    upstream::Upstream,
};

/// A compiled config with its lookups built once.
pub struct Runtime {
    /// Unique per installed config (caches keyed on a config use it).
    pub id: u64,
    /// The snapshot.
    pub config: ProxyConfig,
    served: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    /// The health of each model's backends, in the order of `config.models[i].backends`.
    health: Vec<Vec<Arc<BackendHealth>>>,
}

impl Runtime {
    /// Indexes a snapshot: served names the policy allows, every model by name, and each
    /// backend's health (shared with earlier configs through `health`).
    pub fn new(config: ProxyConfig, health: &Health) -> Self {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut served = HashMap::new();
        let mut by_name = HashMap::new();
        let backend_health = config
            .models
            .iter()
            .map(|m| {
                m.backends
                    .iter()
                    .map(|b| health.of(&b.provider, &b.model))
                    .collect()
            })
            .collect();
        for (i, m) in config.models.iter().enumerate() {
            by_name.insert(m.name.clone(), i);
            let allowed = config
                .policy
                .models
                .as_ref()
                .is_none_or(|allow| allow.contains(&m.name));
            if allowed {
                for n in m.served_names() {
                    served.insert(n.to_string(), i);
                }
            }
        }
        Self {
            id,
            config,
            served,
            by_name,
            health: backend_health,
        }
    }

    /// The health of each backend of `model`.
    pub fn backend_health(&self, model: &Model) -> &[Arc<BackendHealth>] {
        self.by_name
            .get(&model.name)
            .map_or(&[], |&i| &self.health[i])
    }

    /// The model a caller may call by this name.
    pub fn served(&self, name: &str) -> Option<&Model> {
        self.served.get(name).map(|&i| &self.config.models[i])
    }

    /// A model by its AIModel name (for fallbacks).
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.by_name.get(name).map(|&i| &self.config.models[i])
    }

    /// Every served name, sorted.
    pub fn served_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.served.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// The sidecar's shared state.
pub struct Shared {
    /// The config in force; `None` until the first good load.
    pub runtime: ArcSwapOption<Runtime>,
    /// Backend health, kept across reloads.
    pub health: Health,
    /// The upstream client.
    pub upstream: Upstream,
    /// The metrics.
    pub metrics: Metrics,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Rate limits and budgets.
    pub governor: Arc<crate::governor::Governor>,
    /// Responses the sidecar produced (`previous_response_id`, `GET /v1/responses/{id}`).
    pub responses: crate::store::Store,
    /// Upstream silence after which a translated stream carries a keep-alive.
    pub keepalive: std::time::Duration,
    /// Where each session was last served (session affinity).
    pub sessions: crate::affinity::Sessions,
    /// The exact-match response cache.
    pub cache: crate::cache::Cache,
    /// OpenTelemetry traces (off unless an OTLP endpoint is set).
    pub tracing: crate::telemetry::Tracing,
}

impl Shared {
    /// Empty state with a body limit, the governor (standalone or managed) and the
    /// keep-alive interval of translated streams.
    pub fn new(
        max_body_bytes: usize,
        governor: Arc<crate::governor::Governor>,
        keepalive: std::time::Duration,
    ) -> Arc<Self> {
        let metrics = Metrics::default();
        let tracing = crate::telemetry::Tracing::from_env(
            metrics.trace_exports.clone(),
            metrics.trace_spans_dropped.clone(),
        );
        Arc::new(Self {
            runtime: ArcSwapOption::empty(),
            health: Health::default(),
            upstream: Upstream::default(),
            metrics,
            max_body_bytes,
            governor,
            responses: crate::store::Store::default(),
            keepalive,
            sessions: crate::affinity::Sessions::default(),
            cache: crate::cache::Cache::default(),
            tracing,
        })
    }
}
