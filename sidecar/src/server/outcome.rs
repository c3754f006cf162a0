//! What routing left to account for, and the answer: usage and cost counted, the limits'
//! ticket settled, the Responses call stored, the cache filled, the trace span ended.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use switchyard_crds::Money;

use super::{
    cached::{filling, mark},
    decorate, record, Front, Named,
};
use crate::{
    cache::{self, Outcome as CacheOutcome, Place},
    dialect::Operation,
    error::Error,
    governor,
    relay::End,
    respond::{self, Body},
    responses_api,
    router::{Answer, Report},
    telemetry::CallOutcome,
    translate::Usage,
};

/// What routing left to account for: the ticket to settle, the model to count usage under,
/// the Responses call to store.
pub(super) struct Outcome {
    pub(super) front: Front,
    pub(super) rt: Arc<crate::state::Runtime>,
    pub(super) report: Report,
    pub(super) ticket: Option<governor::Ticket>,
    /// The call's input tokens estimated from its body, for a stream cut before its usage.
    pub(super) input_estimate: u64,
    pub(super) served: Option<String>,
    pub(super) model_label: String,
    pub(super) prepared: Option<responses_api::Prepared>,
    /// The cache lookup, when the policy caches.
    pub(super) cache: Option<(CacheOutcome, Option<Place>)>,
    /// The call's trace span.
    pub(super) span: crate::telemetry::CallSpan,
}

/// A finished call's bookkeeping, the same whichever way it answered: the trace span, the
/// limits' ticket, usage for the operator, the metrics and the log line.
struct Tally {
    shared: Arc<crate::Shared>,
    op: Operation,
    dialect: crate::dialect::Dialect,
    started: std::time::Instant,
    request_id: String,
    report: Report,
    ticket: Option<governor::Ticket>,
    input_estimate: u64,
    served: Option<String>,
    model_label: String,
    span: crate::telemetry::CallSpan,
}

/// What an answer needs besides its tally.
struct Rest {
    front: Front,
    rt: Arc<crate::state::Runtime>,
    report: Report,
    prepared: Option<responses_api::Prepared>,
    cache: Option<(CacheOutcome, Option<Place>)>,
}

impl Tally {
    /// Closes the call: `settle` is what the ticket is settled at, tokens and dollars (none:
    /// the reservation stands), `sent` says whether an upstream was asked, `error` labels a
    /// stream that did not complete.
    fn close(
        self,
        status: StatusCode,
        usage: Usage,
        cost: f64,
        settle: (Option<u64>, Option<Money>),
        sent: bool,
        error: Option<&str>,
    ) {
        let r = &self.report;
        self.span.end(&CallOutcome {
            provider: &r.provider,
            model: &r.model,
            attempts: r.attempts,
            status: status.as_u16(),
            input_tokens: usage.input,
            output_tokens: usage.output,
            error,
        });
        if let Some(t) = self.ticket {
            t.settle(settle.0, settle.1, sent);
        }
        if let Some(model) = &self.served {
            let failed = error.is_some();
            self.shared
                .governor
                .account(model, &r.provider, usage, cost, failed);
        }
        let model = &self.model_label;
        let call = Named {
            op: self.op,
            dialect: self.dialect,
            model,
            request_id: &self.request_id,
            started: self.started,
        };
        record(&self.shared, call, r, status, (usage, cost), error);
        tracing::debug!(model = %model, provider = %r.provider, upstream_model = %r.model, attempts = r.attempts, status = status.as_u16(), error = ?error, ms = self.started.elapsed().as_millis() as u64, request_id = %self.request_id, "served");
    }
}

impl Outcome {
    /// Its tally, and the rest.
    fn split(self) -> (Tally, Rest) {
        let tally = Tally {
            shared: self.front.shared.clone(),
            op: self.front.op,
            dialect: self.front.dialect,
            started: self.front.started,
            request_id: self.front.request_id.clone(),
            report: self.report.clone(),
            ticket: self.ticket,
            input_estimate: self.input_estimate,
            served: self.served,
            model_label: self.model_label,
            span: self.span,
        };
        let rest = Rest {
            front: self.front,
            rt: self.rt,
            report: self.report,
            prepared: self.prepared,
            cache: self.cache,
        };
        (tally, rest)
    }

    /// The caller's response for what routing returned.
    pub(super) fn answer(self, result: Result<Answer, Error>) -> Response<Body> {
        match result {
            Err(err) => self.failed(err),
            Ok(Answer::Whole {
                status,
                headers,
                body,
                usage,
                cost,
            }) => self.whole(status, &headers, body, usage, cost),
            Ok(Answer::Stream { headers, body }) => self.stream(&headers, body),
        }
    }

    pub(super) fn failed(self, err: Error) -> Response<Body> {
        let sent = self.report.attempts > 0;
        if let Some(t) = self.ticket {
            t.settle(Some(0), Some(Money::ZERO), sent);
        }
        if let Some(model) = &self.served {
            let governor = &self.front.shared.governor;
            governor.account(model, &self.report.provider, Usage::default(), 0.0, true);
        }
        self.span.end(&CallOutcome {
            provider: &self.report.provider,
            model: &self.report.model,
            attempts: self.report.attempts,
            status: err.status_code().as_u16(),
            error: Some(err.metric_label()),
            ..CallOutcome::default()
        });
        let mut resp = self.front.refuse(err, &self.report, &self.model_label);
        mark(&mut resp, self.cache);
        resp
    }

    pub(super) fn whole(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        usage: Usage,
        cost: f64,
    ) -> Response<Body> {
        let sent = self.report.attempts > 0;
        let settle = (usage.reported(), Some(Money::from_dollars_ceil(cost)));
        let (tally, rest) = self.split();
        let Rest {
            front,
            rt,
            report,
            prepared,
            cache,
        } = rest;
        // Settled before the response: its x-ratelimit-* headers count the refund.
        tally.close(status, usage, cost, settle, sent, None);
        let shared = &front.shared;
        if let Some(p) = prepared.as_ref().filter(|p| p.store) {
            if let Ok(response) = serde_json::from_slice::<Value>(&body) {
                responses_api::remember(shared, &rt, p, &response, &report.provider);
            }
        }
        if let Some(f) = filling(cache, &rt, front.op).filter(|_| status == StatusCode::OK) {
            f.whole(shared, &body);
        }
        let mut resp = respond::json_response(status, body);
        decorate(&mut resp, &report, &front.request_id, headers);
        shared.governor.headers(&rt, resp.headers_mut());
        mark(&mut resp, cache);
        resp
    }

    pub(super) fn stream(
        self,
        headers: &HeaderMap,
        mut body: crate::relay::Relay,
    ) -> Response<Body> {
        let (tally, rest) = self.split();
        let Rest {
            front,
            rt,
            report,
            prepared,
            cache,
        } = rest;
        let (shared, provider, rt2) = (front.shared.clone(), report.provider.clone(), rt.clone());
        // A stream missed in the cache is recorded as it goes out, and stored if it completes.
        let store = filling(cache, &rt, front.op);
        if store.is_some() {
            body = body.recording(cache::MAX_STREAM_BYTES);
        }
        body.on_end(Box::new(move |mut ended| {
            if let (Some(p), Some(response)) = (&prepared, ended.completed) {
                responses_api::remember(&shared, &rt2, p, response, &provider);
            }
            if let (Some(f), Some(events)) = (store, ended.recorded.take()) {
                f.stream(&shared, events);
            }
            let (usage, cost) = (ended.usage, ended.cost);
            match ended.how {
                // Usage never reported on a whole stream: the reservation stands.
                End::Complete => {
                    let settle = (
                        usage.reported(),
                        usage.reported().map(|_| Money::from_dollars_ceil(cost)),
                    );
                    tally.close(StatusCode::OK, usage, cost, settle, true, None);
                }
                // Cut short: counted (in metrics, usage and budgets alike) at what upstream
                // reported, and no less than the input estimate and the events relayed.
                how => {
                    let used = governor::cut_usage(usage, tally.input_estimate, ended.events);
                    let cost = ended.cost_of(used);
                    let settle = (used.reported(), Some(Money::from_dollars_ceil(cost)));
                    let error = if how == End::Cancelled {
                        "cancelled"
                    } else {
                        "stream_interrupted"
                    };
                    tally.close(StatusCode::OK, used, cost, settle, true, Some(error));
                }
            }
        }));
        let mut resp = Response::new(body.boxed_unsync());
        *resp.headers_mut() = HeaderMap::with_capacity(respond::HEADERS);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        decorate(&mut resp, &report, &front.request_id, headers);
        front.shared.governor.headers(&rt, resp.headers_mut());
        mark(&mut resp, cache);
        resp
    }
}
