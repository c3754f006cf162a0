//! The data plane's HTTP front: parse the call, hand it to the router, answer in the caller's
//! dialect. `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`,
//! `POST /v1/messages`.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};

use crate::{
    dialect::{Dialect, Operation},
    error::Error,
    metrics::{OpLabels, RequestLabels, TokenLabels},
    relay::End,
    respond::{self, Body},
    router::{self, Answer, Call, Report},
    translate::{now_secs, Context, Usage},
    Shared,
};

/// Serves one request.
pub async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let request_id = request_id(req.headers());
    if req.method() == Method::GET && matches!(req.uri().path(), "/v1/models" | "/models") {
        return models(&shared, req.headers(), &request_id);
    }
    if req.method() == Method::POST && req.uri().path() == "/v1/messages/count_tokens" {
        return count_tokens(&shared, req, &request_id, started).await;
    }
    let admitted = match admit(&shared, req).await {
        Ok(a) => a,
        Err((dialect, err)) => {
            let report = Report::default();
            return finish_error(
                &shared,
                dialect,
                err,
                &report,
                &request_id,
                "unknown",
                started,
            );
        }
    };
    let Admitted {
        dialect,
        op,
        parts,
        parsed,
        rt,
        gemini_single,
    } = admitted;
    let model_label = if rt.served(&parsed.model).is_some() {
        parsed.model.as_str()
    } else {
        "unknown"
    };
    let ctx = Context {
        model: parsed.model.clone(),
        created: now_secs(),
        include_usage: parsed.value.pointer("/stream_options/include_usage")
            == Some(&Value::Bool(true)),
        json_tool: false,
        base64: parsed.value.get("encoding_format").and_then(Value::as_str) == Some("base64"),
        gemini_single,
    };
    let call = Call {
        dialect,
        op,
        body: &parsed.value,
        stream: parsed.stream,
        ctx,
        headers: &parts.headers,
        request_id: &request_id,
    };
    let (result, report) = router::route(&shared, &rt, &call, &parsed.model).await;
    let model_label = model_label.to_string();
    match result {
        Err(err) => finish_error(
            &shared,
            dialect,
            err,
            &report,
            &request_id,
            &model_label,
            started,
        ),
        Ok(Answer::Whole {
            status,
            headers,
            body,
            usage,
            cost,
        }) => {
            let mut resp = respond::json_response(status, body);
            decorate(&mut resp, &report, &request_id, &headers);
            record(
                &shared,
                op,
                dialect,
                &model_label,
                &report,
                status,
                usage,
                cost,
                started,
                None,
            );
            tracing::debug!(model = %model_label, provider = %report.provider, upstream_model = %report.model, attempts = report.attempts, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, request_id = %request_id, "served");
            resp
        }
        Ok(Answer::Stream { headers, mut body }) => {
            let shared2 = shared.clone();
            let report2 = report.clone();
            let label = model_label.clone();
            let rid = request_id.clone();
            body.on_end(Box::new(move |end, usage, cost| {
                let error = match end {
                    End::Complete => None,
                    End::Interrupted => Some("stream_interrupted"),
                    End::Cancelled => Some("cancelled"),
                };
                record(&shared2, op, dialect, &label, &report2, StatusCode::OK, usage, cost, started, error);
                tracing::debug!(model = %label, provider = %report2.provider, upstream_model = %report2.model, attempts = report2.attempts, status = 200, stream = ?end, ms = started.elapsed().as_millis() as u64, request_id = %rid, "served");
            }));
            let mut resp = Response::new(body.boxed_unsync());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            decorate(&mut resp, &report, &request_id, &headers);
            resp
        }
    }
}

/// A call that passed every check before routing.
struct Admitted {
    dialect: Dialect,
    op: Operation,
    parts: http::request::Parts,
    parsed: Parsed,
    rt: Arc<crate::state::Runtime>,
    gemini_single: bool,
}

/// Finds the endpoint, reads and checks the body, and takes the config in force; any
/// failure comes with the dialect to answer in.
async fn admit<B>(shared: &Shared, req: Request<B>) -> Result<Admitted, (Dialect, Error)>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = req.uri().path().to_string();
    let gemini = gemini_call(&path);
    let endpoint = match (req.method(), path.trim_end_matches('/')) {
        (&Method::POST, _) if gemini.is_some() => Ok((
            Dialect::Gemini,
            gemini.as_ref().map_or(Operation::Chat, |g| g.op),
        )),
        (m, _) if gemini.is_some() => Err((
            Dialect::Gemini,
            Error::MethodNotAllowed(m.to_string(), path.clone()),
        )),
        (_, p) if p.starts_with("/v1beta/") => {
            Err((Dialect::Gemini, Error::UnknownEndpoint(path.clone())))
        }
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => {
            Ok((Dialect::OpenAi, Operation::Chat))
        }
        (&Method::POST, "/v1/embeddings" | "/embeddings") => {
            Ok((Dialect::OpenAi, Operation::Embeddings))
        }
        (&Method::POST, "/v1/messages") => Ok((Dialect::Anthropic, Operation::Chat)),
        (m, "/v1/chat/completions" | "/v1/embeddings" | "/v1/models") => Err((
            Dialect::OpenAi,
            Error::MethodNotAllowed(m.to_string(), path.clone()),
        )),
        (m, "/v1/messages") => Err((
            Dialect::Anthropic,
            Error::MethodNotAllowed(m.to_string(), path.clone()),
        )),
        (_, p) if p.starts_with("/v1/messages") => {
            Err((Dialect::Anthropic, Error::UnknownEndpoint(path.clone())))
        }
        _ => Err((Dialect::OpenAi, Error::UnknownEndpoint(path.clone()))),
    };
    let (dialect, op) = endpoint?;
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, shared.max_body_bytes)
        .await
        .map_err(|e| (dialect, e))?;
    let parsed = parse(dialect, op, &body, gemini.as_ref()).map_err(|e| (dialect, e))?;
    let rt = shared
        .runtime
        .load_full()
        .ok_or((dialect, Error::NotReady))?;
    let gemini_single = gemini.as_ref().is_none_or(|g| g.single);
    Ok(Admitted {
        dialect,
        op,
        parts,
        parsed,
        rt,
        gemini_single,
    })
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                let (a, b) = (fastrand::u64(..), fastrand::u64(..));
                format!(
                    "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xfff,
                    (b >> 48) & 0x3fff | 0x8000,
                    b & 0xffff_ffff_ffff
                )
            },
            str::to_string,
        )
}

async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Error>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Error::BodyTooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::BodyTooLarge(limit)),
        Err(e) => Err(Error::BodyRead(e.to_string())),
    }
}

struct Parsed {
    value: Value,
    model: String,
    stream: bool,
}

/// Checks the shape of a call: JSON object, a model, and the types of the fields the
/// gateway reads; the rest is the upstream's to judge.
/// A Gemini-format call, read from its path: `/v1beta/models/{model}:{method}`.
struct GeminiCall {
    model: String,
    op: Operation,
    stream: bool,
    single: bool,
}

fn gemini_call(path: &str) -> Option<GeminiCall> {
    let (model, method) = path.strip_prefix("/v1beta/models/")?.rsplit_once(':')?;
    let (op, stream, single) = match method {
        "generateContent" => (Operation::Chat, false, true),
        "streamGenerateContent" => (Operation::Chat, true, true),
        "embedContent" => (Operation::Embeddings, false, true),
        "batchEmbedContents" => (Operation::Embeddings, false, false),
        _ => return None,
    };
    let model = model.to_string();
    (!model.is_empty()).then_some(GeminiCall {
        model,
        op,
        stream,
        single,
    })
}

/// Checks a Gemini-format call: the model and streaming come from the path.
fn parse_gemini(call: &GeminiCall, value: Value) -> Result<Parsed, Error> {
    let fine = match call.op {
        Operation::Chat => value.get("contents").is_some_and(Value::is_array),
        Operation::Embeddings if call.single => value.get("content").is_some_and(Value::is_object),
        Operation::Embeddings => value.get("requests").is_some_and(Value::is_array),
    };
    if !fine {
        let field = match call.op {
            Operation::Chat => "contents",
            Operation::Embeddings if call.single => "content",
            Operation::Embeddings => "requests",
        };
        return Err(Error::invalid(
            field,
            format!("{field} is required and must be of the documented type"),
        ));
    }
    Ok(Parsed {
        value,
        model: call.model.clone(),
        stream: call.stream,
    })
}

fn parse(
    dialect: Dialect,
    op: Operation,
    body: &[u8],
    gemini: Option<&GeminiCall>,
) -> Result<Parsed, Error> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::MalformedJson(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(Error::InvalidRequest {
            message: "request body must be a JSON object".into(),
            param: None,
        });
    };
    if let Some(call) = gemini {
        return parse_gemini(call, value);
    }
    let model = match map.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) | None => {
            return Err(Error::invalid(
                "model",
                "you must provide a model parameter",
            ))
        }
        Some(_) => return Err(Error::invalid("model", "model must be a string")),
    };
    let stream = match map.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::invalid("stream", "stream must be a boolean")),
    };
    if op == Operation::Embeddings {
        match map.get("input") {
            Some(Value::String(_)) | Some(Value::Array(_)) => {}
            None => {
                return Err(Error::invalid(
                    "input",
                    "you must provide an input parameter",
                ))
            }
            Some(_) => {
                return Err(Error::invalid(
                    "input",
                    "input must be a string or an array",
                ))
            }
        }
        return Ok(Parsed {
            value,
            model,
            stream: false,
        });
    }
    let Some(Value::Array(messages)) = map.get("messages") else {
        return Err(Error::invalid(
            "messages",
            "messages must be an array of message objects",
        ));
    };
    for (i, m) in messages.iter().enumerate() {
        if !m.get("role").is_some_and(Value::is_string) {
            return Err(Error::invalid(
                &format!("messages[{i}].role"),
                "each message needs a string role",
            ));
        }
    }
    for key in [
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
    ] {
        if map.get(key).is_some_and(|v| !v.is_null() && !v.is_number()) {
            return Err(Error::invalid(key, format!("{key} must be a number")));
        }
    }
    for key in ["max_tokens", "max_completion_tokens", "n", "top_k"] {
        if map.get(key).is_some_and(|v| !v.is_null() && !v.is_u64()) {
            return Err(Error::invalid(
                key,
                format!("{key} must be a non-negative integer"),
            ));
        }
    }
    if dialect == Dialect::Anthropic && !map.get("max_tokens").is_some_and(Value::is_u64) {
        return Err(Error::invalid("max_tokens", "max_tokens: Field required"));
    }
    Ok(Parsed {
        value,
        model,
        stream,
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

/// Anthropic's `POST /v1/messages/count_tokens`, answered locally with an estimate (about
/// four characters a token over system, messages and tools), whatever the backend: agentic
/// clients use it to budget their context, and no provider call is spent on it.
async fn count_tokens<B>(
    shared: &Shared,
    req: Request<B>,
    request_id: &str,
    started: Instant,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let dialect = Dialect::Anthropic;
    let (parts, body) = req.into_parts();
    let counted = async {
        let body = read_body(&parts.headers, body, shared.max_body_bytes).await?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|e| Error::MalformedJson(e.to_string()))?;
        let model = value
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let rt = shared.runtime.load_full().ok_or(Error::NotReady)?;
        if rt.served(model).is_none() {
            return Err(Error::ModelNotFound(model.to_string()));
        }
        let chars: usize = ["system", "messages", "tools"]
            .iter()
            .filter_map(|k| value.get(*k))
            .map(|v| v.to_string().len())
            .sum();
        Ok(chars.div_ceil(4))
    };
    match counted.await {
        Ok(tokens) => {
            let mut resp =
                respond::json_response(StatusCode::OK, json!({"input_tokens": tokens}).to_string());
            decorate(&mut resp, &Report::default(), request_id, &HeaderMap::new());
            resp
        }
        Err(err) => finish_error(
            shared,
            dialect,
            err,
            &Report::default(),
            request_id,
            "unknown",
            started,
        ),
    }
}

fn decorate(resp: &mut Response<Body>, report: &Report, request_id: &str, upstream: &HeaderMap) {
    let h = resp.headers_mut();
    for (k, v) in upstream {
        h.append(k.clone(), v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&report.provider) {
        h.insert("x-switchyard-provider", v);
    }
    if let Ok(v) = HeaderValue::from_str(&report.model) {
        h.insert("x-switchyard-model", v);
    }
    h.insert("x-switchyard-attempts", HeaderValue::from(report.attempts));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
}

fn finish_error(
    shared: &Shared,
    dialect: Dialect,
    err: Error,
    report: &Report,
    request_id: &str,
    model: &str,
    started: Instant,
) -> Response<Body> {
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
    let op = Operation::Chat;
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

#[allow(clippy::too_many_arguments)]
fn record(
    shared: &Shared,
    op: Operation,
    dialect: Dialect,
    model: &str,
    report: &Report,
    status: StatusCode,
    usage: Usage,
    cost: f64,
    started: Instant,
    error: Option<&str>,
) {
    let m = &shared.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            gen_ai_request_model: model.to_string(),
            api: dialect.as_str(),
            status_code: status.as_u16(),
        })
        .inc();
    let labels = OpLabels {
        gen_ai_operation_name: op.as_str(),
        gen_ai_request_model: model.to_string(),
        gen_ai_provider_name: report.provider.clone(),
        gen_ai_response_model: report.model.clone(),
        error_type: error.unwrap_or_default().to_string(),
    };
    m.duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let token = |t: &'static str| TokenLabels {
        gen_ai_operation_name: op.as_str(),
        gen_ai_request_model: model.to_string(),
        gen_ai_provider_name: report.provider.clone(),
        gen_ai_token_type: t,
    };
    m.token_usage
        .get_or_create(&token("input"))
        .observe(usage.input as f64);
    if op == Operation::Chat {
        m.token_usage
            .get_or_create(&token("output"))
            .observe(usage.output as f64);
    }
    for (t, n) in [
        ("input", usage.input),
        ("output", usage.output),
        ("cached_input", usage.cached),
        ("reasoning", usage.reasoning),
    ] {
        if n > 0 {
            m.tokens.get_or_create(&token(t)).inc_by(n);
        }
    }
    if cost > 0.0 {
        let labels = crate::metrics::BackendLabels {
            gen_ai_provider_name: report.provider.clone(),
            gen_ai_response_model: report.model.clone(),
        };
        m.cost.get_or_create(&labels).inc_by(cost);
    }
}
