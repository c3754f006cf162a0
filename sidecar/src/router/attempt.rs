//! One upstream attempt: the body (spliced or translated), the request, and the answer read
//! whole or committed as a stream once its first event is in.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode};
use serde_json::Value;
use switchyard_crds::proxy::Policy;
use tokio::time::{timeout_at, Instant};

use super::{Answer, Call, RESPONSE_LIMIT};
use crate::{
    dialect::{Dialect, Operation},
    failure::{classify, stream_error, Failure},
    metrics::handles::BackendKind,
    payload::Payload,
    plan::Candidate,
    provider, relay, sse,
    telemetry::Propagation,
    translate::{self, Context},
    upstream, Shared,
};

/// One attempt under its own trace span (its `traceparent` goes upstream).
pub(super) async fn traced_attempt(
    shared: &Shared,
    call: &Call<'_>,
    c: &Candidate<'_>,
    provider: &switchyard_crds::proxy::Provider,
    policy: &Policy,
    deadline: Instant,
) -> Result<Answer, Failure> {
    let b = c.backend;
    let (span, propagation) =
        shared
            .tracing
            .attempt(call.trace, call.headers, &b.provider, &b.model);
    let result = attempt(shared, call, c, provider, policy, deadline, propagation).await;
    match &result {
        Ok(_) => span.end(200, None),
        Err(f) => {
            let (outcome, status) = f.outcome();
            span.end(status, Some(outcome));
        }
    }
    result
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
    ctx: &mut Context,
) -> Result<(Payload, Option<Value>), Failure> {
    // Thinking written here for another upstream goes no further than the tree translation,
    // which leaves it out: sealed for Anthropic, not for a Responses upstream; unsigned (from
    // an OpenAI or Gemini backend), not for Anthropic.
    let foreign = call.dialect == to
        && call.body.wire().is_some_and(|raw| match to {
            Dialect::Responses => translate::thinking::sealed_in(raw),
            Dialect::Anthropic => translate::thinking::unsigned_in(raw),
            _ => false,
        });
    if call.dialect == to && !foreign {
        let ask_usage = to == Dialect::OpenAi && call.stream && call.op == Operation::Chat;
        let model = (to != Dialect::Gemini).then_some(model);
        if let Some(body) = call.body.spliced(model, ask_usage) {
            return Ok((body, None));
        }
    }
    // The roads agents take most are written from the wire, without a tree.
    if let Some((raw, marks)) = call
        .body
        .wire_scanned()
        .filter(|_| call.op == Operation::Chat)
    {
        let road = translate::wire::request(call.dialect, to, raw, marks, model, call.stream);
        if let Some(bytes) = road {
            return Ok((Payload::whole(bytes), None));
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
    Ok((Payload::whole(bytes), Some(body)))
}

/// One attempt's fixed facts: the call, the backend and its format, the translation
/// context, and the deadlines.
struct Leg<'a> {
    call: &'a Call<'a>,
    backend: &'a switchyard_crds::proxy::Backend,
    to: Dialect,
    ctx: Context,
    first_byte: Instant,
    deadline: Instant,
}

async fn attempt(
    shared: &Shared,
    call: &Call<'_>,
    c: &Candidate<'_>,
    provider: &switchyard_crds::proxy::Provider,
    policy: &Policy,
    deadline: Instant,
    propagation: Propagation,
) -> Result<Answer, Failure> {
    let to = Dialect::of(provider);
    let mut ctx = call.ctx.clone();
    let (bytes, tree) = upstream_body(call, to, &c.backend.model, &mut ctx)?;
    let single = tree
        .as_ref()
        .map_or(ctx.gemini_single, |t| t.get("requests").is_none());
    let leg = Leg {
        call,
        backend: c.backend,
        to,
        ctx,
        first_byte: deadline.min(Instant::now() + policy.first_byte_timeout.0),
        deadline,
    };
    let sent = Instant::now();
    let reply = send(shared, &leg, provider, bytes, single, propagation).await?;
    let upstream::Reply {
        status,
        headers,
        mut body,
    } = reply;
    if !status.is_success() {
        let until = leg
            .first_byte
            .max(Instant::now() + Duration::from_secs(5))
            .min(deadline);
        return Err(classify(status, &headers, &mut body, until, call.dialect == to).await);
    }
    if !call.stream {
        return whole(leg, status, &headers, body).await;
    }
    commit_stream(shared, leg, &headers, body, sent).await
}

/// Sends the upstream request within the first-byte deadline.
async fn send(
    shared: &Shared,
    leg: &Leg<'_>,
    provider: &switchyard_crds::proxy::Provider,
    bytes: Payload,
    single: bool,
    propagation: Propagation,
) -> Result<upstream::Reply, Failure> {
    let call = leg.call;
    if provider.type_ == switchyard_crds::ProviderType::Mock {
        // The mock is an upstream that answers in-process, from the same OpenAI-format bytes.
        let bytes = bytes.contiguous();
        let reply = provider::mock::serve(provider, call.op, &leg.backend.model, &bytes);
        return timeout_at(leg.first_byte, reply)
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(Failure::Invalid);
    }
    let ask = provider::Ask {
        op: call.op,
        model: &leg.backend.model,
        stream: call.stream,
        single,
    };
    let caller = provider::Caller {
        dialect: call.dialect,
        headers: call.headers,
        request_id: call.request_id,
    };
    let mut req = provider::build(provider, ask, bytes, caller)
        .map_err(|e| Failure::Connect(format!("bad upstream request: {e}")))?;
    propagation.onto(req.headers_mut());
    let sending = shared.upstream.send(req, provider.connect_timeout.0);
    match timeout_at(leg.first_byte, sending).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(upstream::SendError::Connect(why))) => Err(Failure::Connect(why)),
        Ok(Err(upstream::SendError::Io(why))) => Err(Failure::Invalid(why)),
        Ok(Ok(reply)) => Ok(reply),
    }
}

/// Reads a whole answer (its first bytes within the first-byte deadline) and translates it.
async fn whole(
    leg: Leg<'_>,
    status: StatusCode,
    headers: &HeaderMap,
    mut body: upstream::BodyChunks,
) -> Result<Answer, Failure> {
    let first = match timeout_at(leg.first_byte, body.next()).await {
        Err(_) => return Err(Failure::Timeout),
        Ok(Some(Err(e))) => return Err(Failure::Invalid(e)),
        Ok(first) => first.and_then(Result::ok).unwrap_or_default(),
    };
    let rest = timeout_at(leg.deadline, upstream::read_all(&mut body, RESPONSE_LIMIT))
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
    let call = leg.call;
    let (out, usage) = translate::response(call.dialect, leg.to, call.op, &whole, &leg.ctx)
        .map_err(|e| Failure::Invalid(e.0))?;
    Ok(Answer::Whole {
        status,
        headers: forwarded(headers),
        body: out,
        usage,
        cost: usage.cost(leg.backend.pricing.as_ref()),
    })
}

/// Waits for a stream's first event (within the first-byte deadline) and commits to it.
async fn commit_stream(
    shared: &Shared,
    leg: Leg<'_>,
    headers: &HeaderMap,
    mut body: upstream::BodyChunks,
    sent: Instant,
) -> Result<Answer, Failure> {
    let mut parser = sse::Parser::default();
    let first = loop {
        if let Some(ev) = parser.next_event() {
            break ev;
        }
        if parser.oversized() {
            return Err(Failure::Invalid(relay::oversized_message()));
        }
        match timeout_at(leg.first_byte, body.next()).await {
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
    if let Some(f) = stream_error(leg.to, &first) {
        return Err(f);
    }
    let b = leg.backend;
    let m = &shared.metrics;
    let backend = BackendKind {
        provider: &b.provider,
        upstream: &b.model,
    };
    let ttft = sent.elapsed().as_secs_f64();
    m.handles
        .backend(m, backend)
        .time_to_first_token(m)
        .observe(ttft);
    let dialect = leg.call.dialect;
    let translator = translate::stream(dialect, leg.to, leg.ctx);
    let pricing = b.pricing.clone();
    let mut relay = relay::Relay::new(
        dialect,
        body,
        parser,
        first,
        translator,
        leg.deadline,
        pricing,
    );
    if dialect != leg.to {
        relay = relay.with_keepalive(shared.keepalive);
    }
    Ok(Answer::Stream {
        headers: forwarded(headers),
        body: relay,
    })
}
