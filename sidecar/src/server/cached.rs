//! The exact cache at the front: the lookup, the `x-switchyard-cache` header, and an answer
//! served from it (a stored stream as it was, a whole answer replayed as a stream in the
//! caller's dialect when one is asked for).

use std::ops::ControlFlow;

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use super::{decorate, record, Front};
use crate::{
    cache::{self, Outcome as CacheOutcome, Place, Stored},
    dialect::{Dialect, Operation},
    inbound::Parsed,
    respond::{self, Body},
    router::Report,
    translate::{Context, Usage},
    Shared,
};

/// A call's cache lookup: what it found, where, and the stored answer of a hit.
struct Lookup {
    /// Hit, miss or bypass, and the place (none when bypassed).
    state: (CacheOutcome, Option<Place>),
    /// A hit's stored answer.
    hit: Option<Stored>,
}

/// The cache lookup of a call, when the pod's policy caches: bypassed on the caller's
/// `Cache-Control: no-cache`/`no-store`, else a hit or a miss under its key (a stored stream
/// is a hit only for a streamed call whose stream ends the same way: `usage_chunk`). Counted.
fn cache_lookup(
    shared: &Shared,
    rt: &crate::state::Runtime,
    headers: &HeaderMap,
    (dialect, op): (Dialect, Operation),
    parsed: &Parsed,
    usage_chunk: bool,
) -> Option<Lookup> {
    let c = rt.config.policy.cache.as_ref()?;
    let model = rt.served(&parsed.model);
    let (state, hit) = if op != Operation::Chat || cache::bypassed(headers) {
        ((CacheOutcome::Bypass, None), None)
    } else {
        let served = model.map_or(parsed.model.as_str(), |m| m.name.as_str());
        let place = Place {
            key: cache::key(dialect, served, &parsed.body),
            usage_chunk,
        };
        match shared.cache.get(place.key, c.ttl.0) {
            Some(stored) if stored.answers(place, parsed.stream) => {
                ((CacheOutcome::Hit, Some(place)), Some(stored))
            }
            _ => ((CacheOutcome::Miss, Some(place)), None),
        }
    };
    // Labelled as the call asked, as every call metric is: an unserved model is `unknown`.
    let kind = crate::metrics::handles::LookupKind {
        model: model.map_or("unknown", |_| parsed.model.as_str()),
        result: state.0.as_str(),
    };
    shared.metrics.handles.lookup(&shared.metrics, kind).inc();
    Some(Lookup { state, hit })
}

/// Where a missed chat call's answer goes, and the bounds of the policy that caches.
#[derive(Clone, Copy)]
pub(super) struct Filling {
    place: Place,
    max_entries: usize,
    ttl: std::time::Duration,
}

/// What a call's answer owes the cache: a filling when the lookup missed a chat call.
pub(super) fn filling(
    cache: Option<(CacheOutcome, Option<Place>)>,
    rt: &crate::state::Runtime,
    op: Operation,
) -> Option<Filling> {
    match (cache, &rt.config.policy.cache) {
        (Some((CacheOutcome::Miss, Some(place))), Some(c)) if op == Operation::Chat => {
            Some(Filling {
                place,
                max_entries: c.max_entries as usize,
                ttl: c.ttl.0,
            })
        }
        _ => None,
    }
}

impl Filling {
    /// Stores a whole answer.
    pub(super) fn whole(self, shared: &Shared, body: &[u8]) {
        let held = shared
            .cache
            .put(self.place.key, body, self.max_entries, self.ttl);
        shared.metrics.cache_entries.set(held as i64);
    }

    /// Stores a completed stream's events.
    pub(super) fn stream(self, shared: &Shared, events: Vec<u8>) {
        let held = shared
            .cache
            .put_stream(self.place, events, self.max_entries, self.ttl);
        shared.metrics.cache_entries.set(held as i64);
    }
}

/// Adds `x-switchyard-cache` when the policy caches.
pub(super) fn mark(resp: &mut Response<Body>, cache: Option<(CacheOutcome, Option<Place>)>) {
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
    /// Looks the call up when the pod's policy caches: the answer of a hit, else the lookup's
    /// state (to mark the answer with, and to store it under).
    pub(super) fn look_up(
        &self,
        rt: &crate::state::Runtime,
        headers: &HeaderMap,
        parsed: &Parsed,
        ctx: &Context,
        model: &str,
    ) -> ControlFlow<Response<Body>, Option<(CacheOutcome, Option<Place>)>> {
        let usage_chunk = self.dialect == Dialect::OpenAi && ctx.include_usage;
        let what = (self.dialect, self.op);
        let lookup = cache_lookup(&self.shared, rt, headers, what, parsed, usage_chunk);
        if let Some(stored) = lookup.as_ref().and_then(|l| l.hit.clone()) {
            if let Some(resp) = self.cached(stored, parsed.stream, ctx.clone(), model) {
                return ControlFlow::Break(resp);
            }
        }
        ControlFlow::Continue(lookup.map(|l| l.state))
    }

    /// Answers from the cache: the stored whole answer, its replay as a stream, or the stored
    /// stream.
    pub(super) fn cached(
        &self,
        stored: Stored,
        stream: bool,
        ctx: Context,
        model: &str,
    ) -> Option<Response<Body>> {
        let mut resp = if stream {
            let events = match stored {
                Stored::Whole(body) => bytes::Bytes::from(cache::replay(self.dialect, &body, ctx)?),
                Stored::Stream { events, .. } => events,
            };
            let mut resp = Response::new(respond::full(events));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        } else {
            let Stored::Whole(body) = stored else {
                return None;
            };
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
