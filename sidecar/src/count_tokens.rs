//! Token counting: Anthropic's `POST /v1/messages/count_tokens` (answers
//! `{"input_tokens": N}`) and Gemini's `POST /v1beta/models/{model}:countTokens` (the prompt as
//! `contents` or inside `generateContentRequest`; answers `{"totalTokens": N}`). When the
//! model's first backend speaks the caller's format the count is the provider's own, exact;
//! otherwise (or when that call fails) it is estimated locally, about four characters a token
//! over the prompt, system text and tools, marked `x-switchyard-estimated: true`.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::{
    dialect::{Dialect, Operation},
    error::Error,
    inbound::read_body,
    payload::Payload,
    plan, provider,
    respond::{self, Body},
    router::Report,
    server::{decorate, finish_error, Named},
    state::Runtime,
    upstream, Shared,
};

/// How long the provider's own count may take before the estimate answers instead.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The most of a count answer that is read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// Serves a token count.
pub async fn serve<B>(
    shared: &Shared,
    req: Request<B>,
    dialect: Dialect,
    path_model: Option<String>,
    request_id: &str,
    started: Instant,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = req.into_parts();
    let counted = async {
        let body = read_body(&parts.headers, body, shared.max_body_bytes).await?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| Error::MalformedJson(e.to_string()))?;
        let model = match &path_model {
            Some(m) => m.clone(),
            None => value
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        let rt = shared.runtime.load_full().ok_or(Error::NotReady)?;
        if rt.served(&model).is_none() {
            return Err(Error::ModelNotFound(model));
        }
        if let Some(exact) = exact(shared, &rt, dialect, &model, &value, &parts.headers).await {
            return Ok(exact);
        }
        Ok(estimate(dialect, &value))
    };
    match counted.await {
        Ok((body, report, estimated)) => {
            let mut resp = respond::json_response(StatusCode::OK, body);
            decorate(&mut resp, &report, request_id, &HeaderMap::new());
            if estimated {
                resp.headers_mut()
                    .insert("x-switchyard-estimated", HeaderValue::from_static("true"));
            }
            resp
        }
        Err(err) => {
            let call = Named {
                op: Operation::Chat,
                dialect,
                model: "unknown",
                request_id,
                started,
            };
            finish_error(shared, call, err, &Report::default())
        }
    }
}

/// The local estimate, in the caller's answer shape.
fn estimate(dialect: Dialect, value: &Value) -> (Bytes, Report, bool) {
    let value = value.get("generateContentRequest").unwrap_or(value);
    let chars: usize = [
        "system",
        "messages",
        "tools",
        "contents",
        "systemInstruction",
    ]
    .iter()
    .filter_map(|k| value.get(*k))
    .map(|v| v.to_string().len())
    .sum();
    let tokens = chars.div_ceil(4);
    let body = match dialect {
        Dialect::Gemini => json!({"totalTokens": tokens}),
        _ => json!({"input_tokens": tokens}),
    };
    (Bytes::from(body.to_string()), Report::default(), true)
}

/// The provider's own count, when the model's first backend speaks the caller's format.
async fn exact(
    shared: &Shared,
    rt: &Runtime,
    dialect: Dialect,
    model: &str,
    value: &Value,
    inbound: &HeaderMap,
) -> Option<(Bytes, Report, bool)> {
    let served = rt.served(model)?;
    let first = plan::candidates(rt, served).into_iter().next()?;
    let b = first.backend;
    let p = rt.config.providers.get(&b.provider)?;
    if Dialect::of(p) != dialect {
        return None;
    }
    let (url, body) = match dialect {
        Dialect::Anthropic => {
            let mut body = value.clone();
            body["model"] = json!(b.model);
            (format!("{}/v1/messages/count_tokens", p.base_url), body)
        }
        Dialect::Gemini => {
            let mut body = value.clone();
            if let Some(inner) = body.get_mut("generateContentRequest") {
                inner["model"] = json!(format!("models/{}", b.model));
            }
            (
                format!("{}/v1beta/models/{}:countTokens", p.base_url, b.model),
                body,
            )
        }
        _ => return None,
    };
    let mut req = Request::post(url);
    provider::upstream_headers(p, dialect, inbound, req.headers_mut()?);
    let req = req.body(Payload::whole(body.to_string())).ok()?;
    let send = shared.upstream.send(req, p.connect_timeout.0);
    let mut reply = tokio::time::timeout(COUNT_TIMEOUT, send).await.ok()?.ok()?;
    if !reply.status.is_success() {
        tracing::debug!(provider = %b.provider, status = reply.status.as_u16(), "exact token count failed; estimating");
        return None;
    }
    let read = upstream::read_all(&mut reply.body, ANSWER_LIMIT);
    let answer = tokio::time::timeout(COUNT_TIMEOUT, read).await.ok()?.ok()?;
    serde_json::from_slice::<Value>(&answer).ok()?;
    let report = Report {
        attempts: 1,
        provider: b.provider.clone(),
        model: b.model.clone(),
    };
    Some((answer, report, false))
}
