//! Routing one call: walk the candidates, try each within the policy's deadlines, fail over
//! on retryable failures, and commit a stream only once its first event has arrived.

mod attempt;
mod walk;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use switchyard_crds::proxy::Policy;
use tokio::time::Instant;

use self::{
    attempt::traced_attempt,
    walk::{After, Walk},
};
use crate::{
    affinity::Placement,
    body::CallBody,
    dialect::{Dialect, Operation},
    error::Error,
    metrics::{handles::BackendKind, AttemptLabels, BackendLabels},
    plan::{self, Candidate},
    relay,
    state::Runtime,
    translate::{Context, Usage},
    Shared,
};

/// The most of an upstream answer that is read (non-streaming).
const RESPONSE_LIMIT: usize = 256 * 1024 * 1024;
/// How long a backend that answered 429 without a hint is skipped.
const DEFAULT_RATE_LIMIT_SKIP: Duration = Duration::from_secs(1);

/// One parsed inbound call.
pub struct Call<'a> {
    /// The caller's format.
    pub dialect: Dialect,
    /// What is asked.
    pub op: Operation,
    /// The request body.
    pub body: &'a CallBody,
    /// Whether the caller wants a stream.
    pub stream: bool,
    /// What response translation needs.
    pub ctx: Context,
    /// The caller's headers (only the API's own are forwarded).
    pub headers: &'a HeaderMap,
    /// The request id.
    pub request_id: &'a str,
    /// Its token estimate (input plus maximum output), for provider account limits.
    pub estimate: u64,
    /// The backends it is held to, if any.
    pub pin: Option<Pin>,
    /// Its session key, when it carries one and the policy keeps sessions on a backend.
    pub session: Option<String>,
    /// Its trace span (inert when tracing is off).
    pub trace: &'a crate::telemetry::CallSpan,
}

/// Backends a call is held to: a Responses conversation lives with the backend that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Only this AIProvider's backends.
    Provider(String),
    /// Only backends called with the Responses API.
    ResponsesApi,
}

impl Pin {
    fn allows(&self, name: &str, provider: &switchyard_crds::proxy::Provider) -> bool {
        match self {
            Pin::Provider(p) => p == name,
            Pin::ResponsesApi => Dialect::of(provider) == Dialect::Responses,
        }
    }
}

/// Where a call went.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Upstream attempts made.
    pub attempts: u32,
    /// The AIProvider of the last attempt.
    pub provider: String,
    /// The upstream model of the last attempt.
    pub model: String,
}

/// A successful answer.
pub enum Answer {
    /// A whole body and its usage.
    Whole {
        /// The upstream status (2xx).
        status: StatusCode,
        /// Upstream headers worth forwarding.
        headers: HeaderMap,
        /// The caller's body.
        body: Bytes,
        /// Tokens used.
        usage: Usage,
        /// Dollars spent.
        cost: f64,
    },
    /// A committed stream.
    Stream {
        /// Upstream headers worth forwarding.
        headers: HeaderMap,
        /// The body, already holding the first translated events.
        body: relay::Relay,
    },
}

/// Routes a call to the model served under `model_name`.
pub async fn route(
    shared: &Shared,
    rt: &Runtime,
    call: &Call<'_>,
    model_name: &str,
) -> (Result<Answer, Error>, Report) {
    let Some(model) = rt.served(model_name) else {
        let err = Error::ModelNotFound(model_name.to_string());
        return (Err(err), Report::default());
    };
    let policy = &rt.config.policy;
    let deadline = Instant::now() + policy.total_timeout.0;
    let mut candidates = plan::candidates(rt, model);
    if let Some(p) = call
        .session
        .as_ref()
        .and_then(|k| shared.sessions.placement(&model.name, k))
    {
        plan::prefer(&mut candidates, &p.provider, &p.model, Instant::now());
    }
    let mut walk = Walk::default();
    let (mut cursor, mut idle_passes) = (0, 0);
    while walk.report.attempts < policy.attempts && !candidates.is_empty() && idle_passes < 2 {
        let i = cursor % candidates.len();
        cursor += 1;
        if i == candidates.len() - 1 {
            idle_passes += 1;
        }
        let c = &candidates[i];
        let Some(provider) = walk.usable(i, c, rt, call, model_name) else {
            continue;
        };
        // The provider's account limit, shared by the namespace: when it is spent, skip its
        // backends like one that answered 429, without spending an upstream request.
        let account = match shared
            .governor
            .take_provider(rt, &c.backend.provider, call.estimate)
            .await
        {
            Ok(t) => t,
            Err(wait) => {
                walk.account_spent(i, c, wait);
                continue;
            }
        };
        idle_passes = 0;
        if !walk.pace(i, policy, deadline).await {
            break;
        }
        walk.begin(shared, c, model_name);
        let started = Instant::now();
        let guard = c.health.start();
        let result = traced_attempt(shared, call, c, provider, policy, deadline).await;
        // A stream's usage is not known yet: its share of the account's tokens stands.
        account.settle(
            result.as_ref().map_or(Some(0), Answer::reported),
            None,
            true,
        );
        match result {
            Ok(answer) => {
                succeeded(shared, call, c, &model.name, started.elapsed());
                return (Ok(answer.with_guard(guard)), walk.report);
            }
            Err(failure) => {
                drop(guard);
                match walk.failed(i, c, failure, shared, policy) {
                    After::Next if Instant::now() < deadline => {}
                    After::Next | After::Stop => break,
                    After::Answer(e) => return (Err(e), walk.report),
                }
            }
        }
    }
    walk.give_up()
}

/// Counts a successful attempt: the backend's health, the metrics, the session's placement.
fn succeeded(shared: &Shared, call: &Call<'_>, c: &Candidate<'_>, model: &str, took: Duration) {
    c.health.success(took);
    let m = &shared.metrics;
    let backend = BackendKind {
        provider: &c.backend.provider,
        upstream: &c.backend.model,
    };
    let meters = m.handles.backend(m, backend);
    meters.ok.inc();
    meters
        .circuit_open
        .set(i64::from(c.health.is_open(Instant::now())));
    if let Some(key) = &call.session {
        let placement = Placement {
            provider: c.backend.provider.clone(),
            model: c.backend.model.clone(),
        };
        shared.sessions.place(model, key, placement);
    }
}

fn count_attempt(shared: &Shared, c: &Candidate<'_>, outcome: &'static str, status: u16) {
    let labels = AttemptLabels {
        gen_ai_provider_name: c.backend.provider.clone(),
        gen_ai_response_model: c.backend.model.clone(),
        outcome,
        status_code: status,
    };
    shared.metrics.attempts.get_or_create(&labels).inc();
    let open = c.health.is_open(Instant::now());
    let backend = BackendLabels {
        gen_ai_provider_name: c.backend.provider.clone(),
        gen_ai_response_model: c.backend.model.clone(),
    };
    shared
        .metrics
        .circuit_open
        .get_or_create(&backend)
        .set(i64::from(open));
}

fn backoff(policy: &Policy, n: u32) -> Duration {
    let initial = policy.backoff_initial.0;
    let grown = initial.saturating_mul(2u32.saturating_pow(n.min(16)));
    let capped = grown.min(policy.backoff_max.0);
    // Full jitter on the upper half keeps retries from marching in step.
    capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
}

impl Answer {
    /// Tokens a whole answer reported (a stream's are not known yet).
    fn reported(&self) -> Option<u64> {
        match self {
            Answer::Whole { usage, .. } => usage.reported(),
            Answer::Stream { .. } => None,
        }
    }

    fn with_guard(self, guard: crate::health::InflightGuard) -> Self {
        match self {
            Answer::Stream { headers, body } => Answer::Stream {
                headers,
                body: body.with_guard(guard),
            },
            whole => whole,
        }
    }
}
