//! The operator's metrics and admin port (`/healthz`, `/readyz`, `/metrics`).

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
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
use tokio::{net::TcpListener, sync::watch};

use crate::world::World;

/// Counters and gauges.
pub struct Metrics {
    registry: Registry,
    /// Open config streams.
    pub streams: Gauge,
    /// Snapshots sent.
    pub snapshots: Counter,
    /// Refused stream requests.
    pub auth_failures: Counter,
    /// 1 while this replica leads.
    pub leader: Gauge,
    /// Pods that should have the sidecar but do not (fail-open injection).
    pub uninjected: Gauge,
    /// Each budget's settled spend this period.
    pub budget_spent: Family<BudgetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Each budget's limit.
    pub budget_limit: Family<BudgetLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Dollars spent, by workload, model and provider.
    pub cost: Family<SpendLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Tokens, by workload, model, provider and type.
    pub tokens: Family<TokenLabels, Counter>,
    /// Reconciles run, by controller.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// Reconciles failed, by controller and error.
    pub reconcile_failures: Family<FailureLabels, Counter>,
    /// How long reconciles took, by controller.
    pub reconcile_duration: Family<ControllerLabels, Histogram, fn() -> Histogram>,
}

/// One of the operator's writers: `status` (conditions of providers, models, policies),
/// `budget` (AIBudget status), `usage` (AIModel `status.usage`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// The writer.
    pub controller: &'static str,
}

/// A failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// The writer.
    pub controller: &'static str,
    /// [`crate::error::Error::metric_label`].
    pub error: &'static str,
}

fn duration_buckets() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Spend, attributed to a workload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpendLabels {
    /// The namespace.
    pub namespace: String,
    /// The pod's top owner (`Deployment/web`, `CronJob/nightly`, or `Pod/x`).
    pub workload: String,
    /// The AIModel.
    pub model: String,
    /// The AIProvider.
    pub provider: String,
}

/// Tokens, attributed to a workload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// The namespace.
    pub namespace: String,
    /// The pod's top owner.
    pub workload: String,
    /// The AIModel.
    pub model: String,
    /// The AIProvider.
    pub provider: String,
    /// `input`, `output`, `cached_input` or `reasoning`.
    pub token_type: &'static str,
}

/// A budget, by namespace and name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    /// The namespace.
    pub namespace: String,
    /// The AIBudget.
    pub budget: String,
}

impl Metrics {
    /// Counts a usage record of a workload.
    pub fn spend(&self, namespace: &str, workload: &str, u: &crate::ledger::Usage) {
        let labels = SpendLabels {
            namespace: namespace.to_string(),
            workload: workload.to_string(),
            model: u.model.clone(),
            provider: u.provider.clone(),
        };
        if u.cost > 0 {
            self.cost
                .get_or_create(&labels)
                .inc_by(switchyard_crds::Money(u.cost).dollars());
        }
        for (token_type, n) in [
            ("input", u.input_tokens),
            ("output", u.output_tokens),
            ("cached_input", u.cached_input_tokens),
            ("reasoning", u.reasoning_tokens),
        ] {
            if n > 0 {
                let t = TokenLabels {
                    namespace: labels.namespace.clone(),
                    workload: labels.workload.clone(),
                    model: labels.model.clone(),
                    provider: labels.provider.clone(),
                    token_type,
                };
                self.tokens.get_or_create(&t).inc_by(n);
            }
        }
    }

    /// Runs one reconcile of `controller`, counting it, its time and its failure.
    pub async fn reconcile<T>(
        &self,
        controller: &'static str,
        work: impl std::future::Future<Output = Result<T, crate::error::Error>>,
    ) -> Result<T, crate::error::Error> {
        let labels = ControllerLabels { controller };
        let started = std::time::Instant::now();
        let result = work.await;
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let failure = FailureLabels {
                controller,
                error: e.metric_label(),
            };
            self.reconcile_failures.get_or_create(&failure).inc();
        }
        result
    }

    /// Sets a budget's gauges.
    pub fn budget(&self, namespace: &str, budget: &str, spent: f64, limit: f64) {
        let labels = BudgetLabels {
            namespace: namespace.to_string(),
            budget: budget.to_string(),
        };
        self.budget_spent.get_or_create(&labels).set(spent);
        self.budget_limit.get_or_create(&labels).set(limit);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            streams: Gauge::default(),
            snapshots: Counter::default(),
            auth_failures: Counter::default(),
            leader: Gauge::default(),
            uninjected: Gauge::default(),
            budget_spent: Family::default(),
            budget_limit: Family::default(),
            cost: Family::default(),
            tokens: Family::default(),
            reconciles: Family::default(),
            reconcile_failures: Family::default(),
            reconcile_duration: Family::new_with_constructor(duration_buckets),
        };
        registry.register(
            "switchyard_cost_usd",
            "US dollars spent, by namespace, workload, model and provider",
            m.cost.clone(),
        );
        registry.register(
            "switchyard_tokens",
            "Tokens used, by namespace, workload, model, provider and type",
            m.tokens.clone(),
        );
        registry.register(
            "switchyard_budget_spent_usd",
            "US dollars an AIBudget has settled this period",
            m.budget_spent.clone(),
        );
        registry.register(
            "switchyard_budget_limit_usd",
            "An AIBudget's limit per period, in US dollars",
            m.budget_limit.clone(),
        );
        registry.register(
            "switchyard_operator_config_streams",
            "Open config streams",
            m.streams.clone(),
        );
        registry.register(
            "switchyard_operator_snapshots",
            "Snapshots sent to sidecars",
            m.snapshots.clone(),
        );
        registry.register(
            "switchyard_operator_auth_failures",
            "Refused config stream requests",
            m.auth_failures.clone(),
        );
        registry.register(
            "switchyard_operator_uninjected_pods",
            "Pods created without the sidecar they should have",
            m.uninjected.clone(),
        );
        registry.register(
            "switchyard_operator_leader",
            "1 while this replica writes status",
            m.leader.clone(),
        );
        registry.register(
            "switchyard_operator_reconciles",
            "Reconciles run, by controller",
            m.reconciles.clone(),
        );
        registry.register(
            "switchyard_operator_reconcile_failures",
            "Reconciles that failed (tried again after a backoff), by controller and error",
            m.reconcile_failures.clone(),
        );
        registry.register(
            "switchyard_operator_reconcile_duration_seconds",
            "How long reconciles took, by controller",
            m.reconcile_duration.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// Serves the admin port until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    world: World,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = crate::backoff::for_accept();
    loop {
        let stream = tokio::select! {
            s = crate::backoff::accept(&listener, &mut backoff) => s,
            _ = stop.changed() => return,
        };
        let (metrics, world) = (metrics.clone(), world.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let (metrics, world) = (metrics.clone(), world.clone());
                async move {
                    let (status, body) = match req.uri().path() {
                        "/healthz" => (StatusCode::OK, "ok\n".to_string()),
                        "/readyz" if world.is_synced() => (StatusCode::OK, "ready\n".to_string()),
                        "/readyz" => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "caches not synced\n".to_string(),
                        ),
                        "/metrics" => {
                            let mut out = String::new();
                            let _ = encode(&mut out, &metrics.registry);
                            (StatusCode::OK, out)
                        }
                        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
                    };
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
