//! The data plane's HTTP front: find the endpoint, read the call, hand it to the router,
//! answer in the caller's dialect.

use std::{ops::ControlFlow, sync::Arc, time::Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use serde_json::{json, Value};

mod cached;
mod outcome;

use self::{cached::mark, outcome::Outcome};
use crate::{
    dialect::{Dialect, Operation},
    endpoint::Endpoint,
    error::Error,
    governor,
    inbound::{parse, read_body, request_id, GeminiCall, Parsed},
    metrics::{
        handles::{BackendKind, CallKind, CallMeters},
        OpLabels, RequestLabels,
    },
    respond::{self, Body},
    responses_api,
    router::{self, Call, Report},
    translate::{now_secs, Context, Usage},
    Shared,
};

/// Serves one request.
pub async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let request_id = request_id(req.headers());
    let endpoint = Endpoint::parse(req.method(), req.uri().path());
    let op = endpoint.operation();
    let (dialect, gemini) = match endpoint {
        Endpoint::Models => return models(&shared, req.headers(), &request_id),
        Endpoint::CountTokens {
            dialect,
            path_model,
        } => {
            return crate::count_tokens::serve(
                &shared,
                req,
                dialect,
                path_model,
                &request_id,
                started,
            )
            .await
        }
        Endpoint::StoredResponse { id, action } => {
            return responses_api::stored(&shared, &id, action, &request_id)
        }
        Endpoint::Refused(dialect, err) => {
            let call = Named {
                op,
                dialect,
                model: "unknown",
                request_id: &request_id,
                started,
            };
            return finish_error(&shared, call, err, &Report::default());
        }
        Endpoint::Call {
            dialect, gemini, ..
        } => (dialect, gemini),
    };
    let front = Front {
        shared,
        dialect,
        op,
        request_id,
        started,
    };
    match admit(&front.shared, req, dialect, op, gemini).await {
        Ok(admitted) => front.serve(admitted).await,
        Err(err) => front.refuse(err, &Report::default(), "unknown"),
    }
}

/// One call's fixed facts, from the endpoint to the answer.
pub(super) struct Front {
    pub(super) shared: Arc<Shared>,
    pub(super) dialect: Dialect,
    pub(super) op: Operation,
    pub(super) request_id: String,
    pub(super) started: Instant,
}

impl Front {
    pub(super) fn refuse(&self, err: Error, report: &Report, model: &str) -> Response<Body> {
        finish_error(&self.shared, self.named(model), err, report)
    }

    /// The call as metrics and logs name it, under `model`.
    pub(super) fn named<'a>(&'a self, model: &'a str) -> Named<'a> {
        Named {
            op: self.op,
            dialect: self.dialect,
            model,
            request_id: &self.request_id,
            started: self.started,
        }
    }

    /// Admits an accepted call against limits and budgets, routes it, and answers.
    async fn serve(self, admitted: Admitted) -> Response<Body> {
        let Admitted {
            parts,
            mut parsed,
            rt,
            gemini_single,
            body_len,
        } = admitted;
        let (op, dialect) = (self.op, self.dialect);
        let prepared = match dialect {
            Dialect::Responses => {
                match responses_api::prepare(&self.shared, &rt, &mut parsed.body, &parsed.model) {
                    Ok(p) => Some(p),
                    Err(err) => return self.refuse(err, &Report::default(), "unknown"),
                }
            }
            _ => None,
        };
        // The AIModel the name serves (its canonical name), if any.
        let served = rt.served(&parsed.model).map(|m| m.name.clone());
        let model_label = match served {
            Some(_) => parsed.model.clone(),
            None => "unknown".to_string(),
        };
        let ctx = context(&parsed, gemini_single, prepared.as_ref());
        let cache = match self.look_up(&rt, &parts.headers, &parsed, &ctx, &model_label) {
            ControlFlow::Break(hit) => return hit,
            ControlFlow::Continue(state) => state,
        };
        let (demand, ticket) = match self.limits(&rt, &parsed, body_len).await {
            Ok(admitted) => admitted,
            Err(err) => {
                let mut resp = self.refuse(err, &Report::default(), &model_label);
                mark(&mut resp, cache);
                return resp;
            }
        };
        let span = self
            .shared
            .tracing
            .call(&parts.headers, op.as_str(), &parsed.model);
        let call = Call {
            dialect,
            op,
            body: &parsed.body,
            stream: parsed.stream,
            ctx,
            headers: &parts.headers,
            request_id: &self.request_id,
            estimate: demand.as_ref().map_or(0, |d| d.tokens),
            pin: prepared.as_ref().and_then(|p| p.pin.clone()),
            session: (rt.config.policy.affinity == switchyard_crds::Affinity::Session)
                .then(|| crate::affinity::session_key(&parts.headers, parsed.body.facts()))
                .flatten(),
            trace: &span,
        };
        let (result, report) = router::route(&self.shared, &rt, &call, &parsed.model).await;
        let outcome = Outcome {
            front: self,
            rt,
            report,
            ticket,
            input_estimate: governor::input_estimate(body_len),
            served,
            model_label,
            prepared,
            cache,
            span,
        };
        outcome.answer(result)
    }
}

impl Front {
    /// Admits a call against the rate limits and budgets that govern it: its demand and the
    /// ticket to settle, or why not.
    async fn limits(
        &self,
        rt: &crate::state::Runtime,
        parsed: &Parsed,
        body_len: usize,
    ) -> Result<(Option<governor::Demand>, Option<governor::Ticket>), Error> {
        if !governor::governs(rt) {
            return Ok((None, None));
        }
        let embeddings = self.op == Operation::Embeddings;
        let max_output = parsed.body.facts().max_output;
        let demand = governor::demand(rt, &parsed.model, max_output, body_len, embeddings);
        let ticket = self.shared.governor.admit(rt, &demand).await?;
        Ok((Some(demand), Some(ticket)))
    }
}

/// What a response translation needs to know about its request.
fn context(
    parsed: &Parsed,
    gemini_single: bool,
    prepared: Option<&responses_api::Prepared>,
) -> Context {
    let facts = parsed.body.facts();
    Context {
        model: parsed.model.clone(),
        created: now_secs(),
        include_usage: facts.include_usage,
        json_tool: false,
        base64: facts.base64,
        gemini_single,
        responses: prepared.map(|p| p.call.clone()),
    }
}

/// A call that passed every check before routing.
struct Admitted {
    body_len: usize,
    parts: http::request::Parts,
    parsed: Parsed,
    rt: Arc<crate::state::Runtime>,
    gemini_single: bool,
}

/// Reads and checks the body and takes the config in force.
async fn admit<B>(
    shared: &Shared,
    req: Request<B>,
    dialect: Dialect,
    op: Operation,
    gemini: Option<GeminiCall>,
) -> Result<Admitted, Error>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, shared.max_body_bytes).await?;
    let parsed = parse(dialect, op, body.clone(), gemini.as_ref())?;
    let rt = shared.runtime.load_full().ok_or(Error::NotReady)?;
    let gemini_single = gemini.as_ref().is_none_or(|g| g.single);
    Ok(Admitted {
        body_len: body.len(),
        parts,
        parsed,
        rt,
        gemini_single,
    })
}

fn models(shared: &Shared, headers: &HeaderMap, request_id: &str) -> Response<Body> {
    let anthropic = headers.contains_key("anthropic-version");
    let dialect = if anthropic {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    };
    let Some(rt) = shared.runtime.load_full() else {
        return respond::error_response(dialect, &Error::NotReady, request_id);
    };
    let names = rt.served_names();
    let body = if anthropic {
        let data: Vec<Value> = names.iter().map(|n| json!({"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"})).collect();
        json!({"data": data, "has_more": false, "first_id": names.first(), "last_id": names.last()})
    } else {
        let data: Vec<Value> = names
            .iter()
            .map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "switchyard"}))
            .collect();
        json!({"object": "list", "data": data})
    };
    let mut resp = respond::json_response(StatusCode::OK, body.to_string());
    decorate(&mut resp, &Report::default(), request_id, &HeaderMap::new());
    resp
}

pub(crate) fn decorate(
    resp: &mut Response<Body>,
    report: &Report,
    request_id: &str,
    upstream: &HeaderMap,
) {
    const PROVIDER: HeaderName = HeaderName::from_static("x-switchyard-provider");
    const MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
    const ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
    let h = resp.headers_mut();
    h.reserve(upstream.len() + 4);
    for (k, v) in upstream {
        h.append(k.clone(), v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&report.provider) {
        h.insert(PROVIDER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&report.model) {
        h.insert(MODEL, v);
    }
    h.insert(ATTEMPTS, HeaderValue::from(report.attempts));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(crate::inbound::X_REQUEST_ID, v);
    }
}

/// What metrics and logs name a call by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Named<'a> {
    pub(crate) op: Operation,
    pub(crate) dialect: Dialect,
    /// The model label (`unknown` before one is known, or for names not served).
    pub(crate) model: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) started: Instant,
}

pub(crate) fn finish_error(
    shared: &Shared,
    call: Named<'_>,
    err: Error,
    report: &Report,
) -> Response<Body> {
    let Named {
        op,
        dialect,
        model,
        request_id,
        started,
    } = call;
    let status = err.status_code();
    let level_warn = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    if level_warn {
        tracing::warn!(model, provider = %report.provider, attempts = report.attempts, status = status.as_u16(), error = err.metric_label(), request_id, "request failed: {err}");
    } else {
        tracing::info!(
            model,
            status = status.as_u16(),
            error = err.metric_label(),
            request_id,
            "request rejected"
        );
    }
    let mut resp = respond::error_response(dialect, &err, request_id);
    decorate(&mut resp, report, request_id, &HeaderMap::new());
    let labels = RequestLabels {
        gen_ai_request_model: model.to_string(),
        api: dialect.as_str(),
        status_code: status.as_u16(),
    };
    shared.metrics.requests.get_or_create(&labels).inc();
    let labels = OpLabels {
        gen_ai_operation_name: op.as_str(),
        gen_ai_request_model: model.to_string(),
        gen_ai_provider_name: report.provider.clone(),
        gen_ai_response_model: report.model.clone(),
        error_type: err.metric_label().to_string(),
    };
    shared
        .metrics
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    resp
}

pub(super) fn record(
    shared: &Shared,
    call: Named<'_>,
    report: &Report,
    status: StatusCode,
    (usage, cost): (Usage, f64),
    error: Option<&str>,
) {
    let Named {
        op,
        dialect,
        model,
        started,
        ..
    } = call;
    let m = &shared.metrics;
    let kind = CallKind {
        op: op.as_str(),
        api: dialect.as_str(),
        model,
        provider: &report.provider,
        upstream: &report.model,
    };
    // A successful call's are found once per kind; the rest are looked up.
    let ok = status == StatusCode::OK && error.is_none();
    let meters = if ok {
        m.handles.call(m, kind)
    } else {
        Arc::new(CallMeters::new(
            m,
            kind,
            status.as_u16(),
            error.unwrap_or_default(),
        ))
    };
    meters.requests.inc();
    meters.duration.observe(started.elapsed().as_secs_f64());
    meters.usage.0.observe(usage.input as f64);
    if let Some(output) = &meters.usage.1 {
        output.observe(usage.output as f64);
    }
    let counts = [usage.input, usage.output, usage.cached, usage.reasoning];
    for (i, n) in counts.into_iter().enumerate().filter(|(_, n)| *n > 0) {
        meters.count(i, n);
    }
    if cost > 0.0 {
        let backend = BackendKind {
            provider: &report.provider,
            upstream: &report.model,
        };
        m.handles.backend(m, backend).cost(m).inc_by(cost);
    }
}
