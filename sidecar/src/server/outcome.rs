//! What routing left to account for, and the answer: usage and cost counted, the limits'
//! ticket settled, the Responses call stored, the cache filled, the trace span ended.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use switchyard_crds::Money;

use super::{cached::mark, decorate, record, Front};
use crate::{
    cache::{self, Outcome as CacheOutcome},
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
    pub(super) served: Option<String>,
    pub(super) model_label: String,
    pub(super) prepared: Option<responses_api::Prepared>,
    /// The cache lookup, when the policy caches.
    pub(super) cache: Option<(CacheOutcome, Option<cache::Key>)>,
    /// The call's trace span.
    pub(super) span: crate::telemetry::CallSpan,
}

impl Outcome {
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
        let Outcome {
            front,
            rt,
            report,
            ticket,
            served,
            model_label,
            prepared,
            cache,
            span,
        } = self;
        let shared = &front.shared;
        span.end(&CallOutcome {
            provider: &report.provider,
            model: &report.model,
            attempts: report.attempts,
            status: status.as_u16(),
            input_tokens: usage.input,
            output_tokens: usage.output,
            error: None,
        });
        if let Some(t) = ticket {
            t.settle(
                usage.reported(),
                Some(Money::from_dollars_ceil(cost)),
                report.attempts > 0,
            );
        }
        if let Some(model) = &served {
            shared
                .governor
                .account(model, &report.provider, usage, cost, false);
        }
        if let Some(p) = prepared.as_ref().filter(|p| p.store) {
            if let Ok(response) = serde_json::from_slice::<Value>(&body) {
                responses_api::remember(shared, &rt, p, &response, &report.provider);
            }
        }
        if let (Some((CacheOutcome::Miss, Some(key))), Some(c)) = (cache, &rt.config.policy.cache) {
            if status == StatusCode::OK && front.op == Operation::Chat {
                shared
                    .cache
                    .put(key, body.clone(), c.max_entries as usize, c.ttl.0);
                shared.metrics.cache_entries.set(shared.cache.len() as i64);
            }
        }
        let mut resp = respond::json_response(status, body);
        decorate(&mut resp, &report, &front.request_id, headers);
        shared.governor.headers(&rt, resp.headers_mut());
        mark(&mut resp, cache);
        record(
            shared,
            front.op,
            front.dialect,
            &model_label,
            &report,
            status,
            usage,
            cost,
            front.started,
            None,
        );
        tracing::debug!(model = %model_label, provider = %report.provider, upstream_model = %report.model, attempts = report.attempts, status = status.as_u16(), ms = front.started.elapsed().as_millis() as u64, request_id = %front.request_id, "served");
        resp
    }

    pub(super) fn stream(
        self,
        headers: &HeaderMap,
        mut body: crate::relay::Relay,
    ) -> Response<Body> {
        let Outcome {
            front,
            rt,
            report,
            ticket,
            served,
            model_label,
            prepared,
            cache,
            span,
        } = self;
        let (shared, report2, rt2) = (front.shared.clone(), report.clone(), rt.clone());
        let (op, dialect, started, rid) = (
            front.op,
            front.dialect,
            front.started,
            front.request_id.clone(),
        );
        body.on_end(Box::new(move |end, usage, cost, completed| {
            if let Some(t) = ticket {
                // Unknown usage (a stream cut before it was reported): the reservation stands.
                let known = usage.reported();
                t.settle(known, known.map(|_| Money::from_dollars_ceil(cost)), true);
            }
            if let Some(model) = &served {
                shared.governor.account(model, &report2.provider, usage, cost, end != End::Complete);
            }
            if let (Some(p), Some(response)) = (&prepared, completed) {
                responses_api::remember(&shared, &rt2, p, response, &report2.provider);
            }
            let error = match end {
                End::Complete => None,
                End::Interrupted => Some("stream_interrupted"),
                End::Cancelled => Some("cancelled"),
            };
            span.end(&CallOutcome {
                provider: &report2.provider,
                model: &report2.model,
                attempts: report2.attempts,
                status: 200,
                input_tokens: usage.input,
                output_tokens: usage.output,
                error,
            });
            record(&shared, op, dialect, &model_label, &report2, StatusCode::OK, usage, cost, started, error);
            tracing::debug!(model = %model_label, provider = %report2.provider, upstream_model = %report2.model, attempts = report2.attempts, status = 200, stream = ?end, ms = started.elapsed().as_millis() as u64, request_id = %rid, "served");
        }));
        let mut resp = Response::new(body.boxed_unsync());
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
