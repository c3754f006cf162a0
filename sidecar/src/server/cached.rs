//! The exact cache at the front: the lookup, the `x-switchyard-cache` header, and an answer
//! served from it (a stream replayed in the caller's dialect).

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use super::{decorate, record, Front};
use crate::{
    cache::{self, Outcome as CacheOutcome},
    dialect::{Dialect, Operation},
    inbound::Parsed,
    respond::{self, Body},
    router::Report,
    translate::{Context, Usage},
    Shared,
};

/// A call's cache lookup: what it found, under which key, and the stored answer of a hit.
pub(super) struct Lookup {
    /// Hit, miss or bypass, and the key (none when bypassed).
    pub(super) state: (CacheOutcome, Option<cache::Key>),
    /// A hit's stored answer.
    pub(super) hit: Option<bytes::Bytes>,
}

/// The cache lookup of a call, when the pod's policy caches: bypassed on the caller's
/// `Cache-Control: no-cache`/`no-store`, else a hit or a miss under its key. Counted.
pub(super) fn cache_lookup(
    shared: &Shared,
    rt: &crate::state::Runtime,
    headers: &HeaderMap,
    dialect: Dialect,
    op: Operation,
    parsed: &Parsed,
) -> Option<Lookup> {
    let c = rt.config.policy.cache.as_ref()?;
    let (state, hit) = if op != Operation::Chat || cache::bypassed(headers) {
        ((CacheOutcome::Bypass, None), None)
    } else {
        let served = rt
            .served(&parsed.model)
            .map_or(parsed.model.as_str(), |m| m.name.as_str());
        let key = cache::key(dialect, served, &parsed.body);
        match shared.cache.get(key, c.ttl.0) {
            Some(body) => ((CacheOutcome::Hit, Some(key)), Some(body)),
            None => ((CacheOutcome::Miss, Some(key)), None),
        }
    };
    let labels = crate::metrics::CacheLabels {
        gen_ai_request_model: parsed.model.clone(),
        result: state.0.as_str(),
    };
    shared.metrics.cache.get_or_create(&labels).inc();
    Some(Lookup { state, hit })
}

/// Adds `x-switchyard-cache` when the policy caches.
pub(super) fn mark(resp: &mut Response<Body>, cache: Option<(CacheOutcome, Option<cache::Key>)>) {
    // Checked once, at compile time: a `&str` name is parsed again at every insert.
    const X_SWITCHYARD_CACHE: http::HeaderName =
        http::HeaderName::from_static("x-switchyard-cache");
    if let Some((outcome, _)) = cache {
        resp.headers_mut().insert(
            X_SWITCHYARD_CACHE,
            HeaderValue::from_static(outcome.as_str()),
        );
    }
}

impl Front {
    /// Answers from the cache: the stored whole answer, or its replay as a stream.
    pub(super) fn cached(
        &self,
        body: bytes::Bytes,
        stream: bool,
        ctx: Context,
        model: &str,
    ) -> Option<Response<Body>> {
        let mut resp = if stream {
            let events = cache::replay(self.dialect, &body, ctx)?;
            let mut resp = Response::new(respond::full(events));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        } else {
            respond::json_response(StatusCode::OK, body)
        };
        decorate(
            &mut resp,
            &Report::default(),
            &self.request_id,
            &HeaderMap::new(),
        );
        mark(&mut resp, Some((CacheOutcome::Hit, None)));
        let report = Report::default();
        let call = self.named(model);
        record(
            &self.shared,
            call,
            &report,
            StatusCode::OK,
            (Usage::default(), 0.0),
            None,
        );
        Some(resp)
    }
}
