//! Routing one call: walk the candidates, try each within the policy's deadlines, fail over
//! on retryable failures, and commit a stream only once its first event has arrived.

use std::{collections::HashSet, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use switchyard_crds::proxy::Policy;
use tokio::time::{timeout_at, Instant};

use crate::{
    affinity::Placement,
    body::CallBody,
    dialect::{Dialect, Operation},
    error::Error,
    failure::{classify, exhausted, stream_error, Failure},
    health::Admission,
    metrics::{AttemptLabels, BackendLabels, ModelLabels},
    plan::{self, Candidate},
    provider, relay, sse,
    state::Runtime,
    translate::{self, Context, Usage},
    upstream, Shared,
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
    let mut report = Report::default();
    let Some(model) = rt.served(model_name) else {
        return (Err(Error::ModelNotFound(model_name.to_string())), report);
    };
    let policy = &rt.config.policy;
    let deadline = Instant::now() + policy.total_timeout.0;
    let mut candidates = plan::candidates(rt, model);
    if let Some(key) = &call.session {
        if let Some(p) = shared.sessions.placement(&model.name, key) {
            plan::prefer(&mut candidates, &p.provider, &p.model, Instant::now());
        }
    }
    let mut lines: Vec<String> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    let mut skipped_until: Option<Instant> = None;
    let mut circuit_skips = 0;
    let mut bad_providers: HashSet<&str> = HashSet::new();
    let mut tried: HashSet<usize> = HashSet::new();
    let mut unusable: HashSet<usize> = HashSet::new();
    let mut retries_of_same = 0u32;
    let mut cursor = 0;
    let mut idle_passes = 0;
    while report.attempts < policy.attempts && !candidates.is_empty() && idle_passes < 2 {
        let i = cursor % candidates.len();
        cursor += 1;
        if i == candidates.len() - 1 {
            idle_passes += 1;
        }
        let c = &candidates[i];
        let b = c.backend;
        if unusable.contains(&i) || bad_providers.contains(b.provider.as_str()) {
            continue;
        }
        let Some(provider) = rt.config.providers.get(&b.provider) else {
            continue;
        };
        if call
            .pin
            .as_ref()
            .is_some_and(|p| !p.allows(&b.provider, provider))
        {
            continue;
        }
        if !provider::adapter(provider.type_).serves(call.op) {
            let why = format!(
                "{}/{}: does not serve {}",
                b.provider,
                b.model,
                call.op.as_str()
            );
            lines.push(why.clone());
            let op = call.op.as_str();
            let message = format!("model `{model_name}` cannot serve {op}: {why}");
            failures.push(Failure::Unsupported(Error::invalid("model", message)));
            unusable.insert(i);
            continue;
        }
        let now = Instant::now();
        match c.health.admit(now, policy.cooldown.0) {
            Admission::Allowed | Admission::Probe => {}
            Admission::RateLimited(until) => {
                skipped_until = Some(skipped_until.map_or(until, |s| s.min(until)));
                continue;
            }
            Admission::CircuitOpen(_) => {
                circuit_skips += 1;
                let line = format!("{}/{}: circuit open", b.provider, b.model);
                if !lines.contains(&line) {
                    lines.push(line);
                }
                continue;
            }
        }
        // The provider's account limit, shared by the namespace: when it is spent, skip its
        // backends like one that answered 429, without spending an upstream request.
        let account = match shared
            .governor
            .take_provider(rt, &b.provider, call.estimate)
            .await
        {
            Ok(t) => t,
            Err(wait) => {
                let until = Instant::now() + wait;
                skipped_until = Some(skipped_until.map_or(until, |s| s.min(until)));
                let line = format!(
                    "{}/{}: account limit of AIProvider {} reached",
                    b.provider, b.model, b.provider
                );
                if !lines.contains(&line) {
                    lines.push(line);
                }
                unusable.insert(i);
                continue;
            }
        };
        idle_passes = 0;
        if !tried.insert(i) {
            let wait = backoff(policy, retries_of_same);
            retries_of_same += 1;
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        report.attempts += 1;
        report.provider = b.provider.clone();
        report.model = b.model.clone();
        if report.attempts > 1 {
            shared
                .metrics
                .failovers
                .get_or_create(&ModelLabels {
                    gen_ai_request_model: model_name.to_string(),
                })
                .inc();
        }
        let started = Instant::now();
        let guard = c.health.start();
        let mut trace_headers = HeaderMap::new();
        let span = shared.tracing.attempt(
            call.trace,
            call.headers,
            &mut trace_headers,
            &b.provider,
            &b.model,
        );
        let result = attempt(shared, call, c, provider, policy, deadline, trace_headers).await;
        match &result {
            Ok(_) => span.end(200, None),
            Err(f) => {
                let (outcome, status) = f.outcome();
                span.end(status, Some(outcome));
            }
        }
        let used = match &result {
            Ok(Answer::Whole { usage, .. }) => usage.reported(),
            Ok(Answer::Stream { .. }) => None,
            Err(_) => Some(0),
        };
        account.settle(used, None, true);
        let failure = match result {
            Ok(answer) => {
                c.health.success(started.elapsed());
                count_attempt(shared, c, "ok", 200);
                if let Some(key) = &call.session {
                    let placement = Placement {
                        provider: b.provider.clone(),
                        model: b.model.clone(),
                    };
                    shared.sessions.place(&model.name, key, placement);
                }
                return (Ok(answer.with_guard(guard)), report);
            }
            Err(f) => f,
        };
        drop(guard);
        let (outcome, status) = failure.outcome();
        tracing::warn!(provider = %b.provider, model = %b.model, attempt = report.attempts, outcome, status, "upstream attempt failed");
        if let Failure::Unsupported(_) = failure {
            report.attempts -= 1;
            unusable.insert(i);
        }
        if failure.counts_against_backend()
            && c.health.failure(
                Instant::now(),
                policy.consecutive_failures,
                policy.cooldown.0,
            )
        {
            tracing::warn!(provider = %b.provider, model = %b.model, "circuit opened");
        }
        count_attempt(shared, c, outcome, status);
        if let Failure::RateLimited { until, .. } = &failure {
            let until = until.unwrap_or_else(|| Instant::now() + DEFAULT_RATE_LIMIT_SKIP);
            c.health.rate_limited(until);
            skipped_until = Some(skipped_until.map_or(until, |s| s.min(until)));
        }
        lines.push(format!(
            "{}/{}: {}",
            b.provider,
            b.model,
            failure.describe()
        ));
        match failure {
            Failure::Rejected(e) => return (Err(e), report),
            Failure::Auth(_) => {
                bad_providers.insert(&b.provider);
            }
            _ => {}
        }
        let retryable = failure
            .class()
            .is_some_and(|class| policy.retry_on.contains(&class));
        let stop = !retryable && !matches!(failure, Failure::Auth(_) | Failure::Unsupported(_));
        failures.push(failure);
        if stop || Instant::now() >= deadline {
            break;
        }
    }
    (
        Err(exhausted(failures, lines, skipped_until, circuit_skips)),
        report,
    )
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

/// Upstream headers forwarded to the caller: rate-limit state and the provider's request id.
fn forwarded(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (k, v) in headers {
        let name = k.as_str();
        if name.starts_with("x-ratelimit-")
            || name.starts_with("anthropic-ratelimit-")
            || name == "request-id"
            || name == "openai-processing-ms"
        {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

/// The upstream body: a same-format call's own bytes with the model spliced in (no tree is
/// built, cloned or serialized), else the translation, with its tree.
fn upstream_body(
    call: &Call<'_>,
    to: Dialect,
    model: &str,
    mock: bool,
    ctx: &mut Context,
) -> Result<(Bytes, Option<Value>), Failure> {
    if call.dialect == to && !mock {
        let ask_usage = to == Dialect::OpenAi && call.stream && call.op == Operation::Chat;
        let model = (to != Dialect::Gemini).then_some(model);
        if let Some(bytes) = call.body.spliced(model, ask_usage) {
            return Ok((bytes, None));
        }
    }
    let body = translate::request(
        call.dialect,
        to,
        call.op,
        call.body.value(),
        model,
        call.stream,
        ctx,
    )
    .map_err(Failure::Unsupported)?;
    let bytes = serde_json::to_vec(&body).map_err(|e| Failure::Invalid(e.to_string()))?;
    Ok((Bytes::from(bytes), Some(body)))
}

async fn attempt(
    shared: &Shared,
    call: &Call<'_>,
    c: &Candidate<'_>,
    provider: &switchyard_crds::proxy::Provider,
    policy: &Policy,
    deadline: Instant,
    trace_headers: HeaderMap,
) -> Result<Answer, Failure> {
    let b = c.backend;
    let to = Dialect::of(provider);
    let mut ctx = call.ctx.clone();
    let mock = provider.type_ == switchyard_crds::ProviderType::Mock;
    let (bytes, tree) = upstream_body(call, to, &b.model, mock, &mut ctx)?;
    let single = tree
        .as_ref()
        .map_or(ctx.gemini_single, |t| t.get("requests").is_none());
    let first_byte = deadline.min(Instant::now() + policy.first_byte_timeout.0);
    let sent = Instant::now();
    let reply = if let (true, Some(body)) = (mock, &tree) {
        let settings = provider.mock.clone().unwrap_or_default();
        timeout_at(
            first_byte,
            provider::mock::reply(&settings, call.op, body, &b.model),
        )
        .await
        .map_err(|_| Failure::Timeout)?
    } else {
        let req = provider::build(
            provider,
            call.op,
            &b.model,
            call.stream,
            bytes,
            single,
            call.dialect,
            call.headers,
            call.request_id,
        )
        .map_err(|e| Failure::Connect(format!("bad upstream request: {e}")))?;
        let mut req = req;
        req.headers_mut().extend(trace_headers);
        match timeout_at(
            first_byte,
            shared.upstream.send(req, provider.connect_timeout.0),
        )
        .await
        {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(upstream::SendError::Connect(why))) => return Err(Failure::Connect(why)),
            Ok(Err(upstream::SendError::Io(why))) => return Err(Failure::Invalid(why)),
            Ok(Ok(reply)) => reply,
        }
    };
    let upstream::Reply {
        status,
        headers,
        mut body,
    } = reply;
    if !status.is_success() {
        return Err(classify(
            status,
            &headers,
            &mut body,
            first_byte
                .max(Instant::now() + Duration::from_secs(5))
                .min(deadline),
            call.dialect == to,
        )
        .await);
    }
    if !call.stream {
        let first = match timeout_at(first_byte, body.next()).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Some(Err(e))) => return Err(Failure::Invalid(e)),
            Ok(first) => first.and_then(Result::ok).unwrap_or_default(),
        };
        let rest = timeout_at(deadline, upstream::read_all(&mut body, RESPONSE_LIMIT))
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(Failure::Invalid)?;
        let whole = if first.is_empty() {
            rest
        } else if rest.is_empty() {
            first
        } else {
            Bytes::from([first, rest].concat())
        };
        let (out, usage) = translate::response(call.dialect, to, call.op, &whole, &ctx)
            .map_err(|e| Failure::Invalid(e.0))?;
        return Ok(Answer::Whole {
            status,
            headers: forwarded(&headers),
            body: out,
            usage,
            cost: usage.cost(b.pricing.as_ref()),
        });
    }
    let mut parser = sse::Parser::default();
    let first = loop {
        if let Some(ev) = parser.next_event() {
            break ev;
        }
        if parser.oversized() {
            return Err(Failure::Invalid(relay::oversized_message()));
        }
        match timeout_at(first_byte, body.next()).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(None) => {
                return Err(Failure::Invalid(
                    "stream ended before its first event".into(),
                ))
            }
            Ok(Some(Err(e))) => return Err(Failure::Invalid(e)),
            Ok(Some(Ok(chunk))) => parser.push(&chunk),
        }
    };
    if let Some(f) = stream_error(to, &first) {
        return Err(f);
    }
    shared
        .metrics
        .time_to_first_token
        .get_or_create(&BackendLabels {
            gen_ai_provider_name: b.provider.clone(),
            gen_ai_response_model: b.model.clone(),
        })
        .observe(sent.elapsed().as_secs_f64());
    let translator = translate::stream(call.dialect, to, ctx);
    let mut relay = relay::Relay::new(
        call.dialect,
        body,
        parser,
        first,
        translator,
        deadline,
        b.pricing.clone(),
    );
    if call.dialect != to {
        relay = relay.with_keepalive(shared.keepalive);
    }
    Ok(Answer::Stream {
        headers: forwarded(&headers),
        body: relay,
    })
}
