//! Fake provider servers on loopback. Each checks the path and auth header it receives the
//! way the real API does, records every request, and answers from a per-test script, or
//! (with an empty script) with a realistic answer derived from the request: an echo of the
//! last user message, tool calls when tools are offered, vectors for embeddings.

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub mod responses;

use std::{
    collections::VecDeque,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::{body::Frame, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

/// The key every fake accepts.
pub const KEY: &str = "sk-fake-provider-key-0123456789";

/// Which API a fake speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI (`Authorization: Bearer`, `/v1/chat/completions`, `/v1/embeddings`).
    OpenAi,
    /// Azure OpenAI (`api-key`, `/openai/deployments/{d}/...?api-version=`).
    Azure,
    /// Anthropic (`x-api-key`, `anthropic-version`, `/v1/messages`).
    Anthropic,
    /// Gemini (`x-goog-api-key`, `/v1beta/models/{m}:generateContent`...).
    Gemini,
}

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The path.
    pub path: String,
    /// The query string.
    pub query: Option<String>,
    /// The headers.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
    /// When it arrived (unix seconds).
    pub at: u64,
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Wait before sending status and headers.
    pub delay: Duration,
    /// The status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

/// A scripted body.
#[derive(Clone, Debug)]
pub enum Body {
    /// JSON.
    Json(Value),
    /// Raw bytes with a content type.
    Raw(&'static str, Bytes),
    /// SSE events sent one by one, each after its delay; then, if `drop`, the connection
    /// is cut instead of ending cleanly.
    Sse {
        events: Vec<(Duration, String)>,
        drop: bool,
    },
    /// The realistic answer for the request, as with an empty script.
    Default,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            delay: Duration::ZERO,
            status,
            headers: Vec::new(),
            body: Body::Json(body),
        }
    }

    /// The realistic answer, after `delay`.
    pub fn default_after(delay: Duration) -> Self {
        Self {
            delay,
            status: 200,
            headers: Vec::new(),
            body: Body::Default,
        }
    }

    /// An SSE answer from pre-framed events.
    pub fn sse(events: Vec<String>) -> Self {
        let events = events.into_iter().map(|e| (Duration::ZERO, e)).collect();
        Self {
            delay: Duration::ZERO,
            status: 200,
            headers: Vec::new(),
            body: Body::Sse {
                events,
                drop: false,
            },
        }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    /// Waits before answering.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// The state behind one fake.
#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    received: Vec<Received>,
    cancelled: usize,
    /// Responses this fake produced with `store` (OpenAI keeps them for
    /// `previous_response_id`): id and the conversation as input items.
    stored: Vec<(String, Vec<Value>)>,
}

/// A running fake provider.
#[derive(Clone)]
pub struct Fake {
    /// The API it speaks.
    pub api: Api,
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Fake {
    /// Starts a fake on a free loopback port.
    pub async fn start(api: Api) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(api, listener)
    }

    /// Serves a fake on a bound listener.
    pub fn serve(api: Api, listener: TcpListener) -> Fake {
        let addr = listener.local_addr().unwrap();
        let fake = Fake {
            api,
            addr,
            state: Arc::default(),
        };
        let f = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let f = f.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let f = f.clone();
                        async move { Ok::<_, Infallible>(f.handle(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        fake
    }

    /// The base URL to put in an AIProvider, in the provider SDK's convention.
    pub fn base_url(&self) -> String {
        match self.api {
            Api::OpenAi => format!("http://{}/v1", self.addr),
            Api::Azure | Api::Anthropic | Api::Gemini => format!("http://{}", self.addr),
        }
    }

    /// Queues answers, used in order; once used up, realistic answers follow.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The conversation stored under a response id.
    pub fn stored(&self, id: &str) -> Option<Vec<Value>> {
        let s = self.state.lock().unwrap();
        s.stored
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, c)| c.clone())
    }

    /// Stores a conversation under a response id.
    pub fn store(&self, id: String, conversation: Vec<Value>) {
        self.state.lock().unwrap().stored.push((id, conversation));
    }

    /// How many streamed answers were cut short because the client went away.
    pub fn cancelled(&self) -> usize {
        self.state.lock().unwrap().cancelled
    }

    async fn handle(
        &self,
        req: Request<hyper::body::Incoming>,
    ) -> Response<BoxBody<Bytes, std::io::Error>> {
        let (parts, body) = req.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().map(str::to_string);
        if let Err(resp) = self.check(&parts.method, &path, query.as_deref(), &parts.headers) {
            return resp;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
            return self.error(
                400,
                "invalid_request_error",
                "could not parse the JSON body of your request",
            );
        };
        let received = Received {
            path: path.clone(),
            query,
            headers: parts.headers.clone(),
            body: body.clone(),
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let reply = {
            let mut s = self.state.lock().unwrap();
            s.received.push(received.clone());
            s.script.pop_front()
        };
        let reply = reply.unwrap_or(Reply::default_after(Duration::ZERO));
        tokio::time::sleep(reply.delay).await;
        let mut resp = match reply.body {
            Body::Json(v) => json(reply.status, &v),
            Body::Raw(ct, b) => raw(reply.status, ct, b),
            Body::Sse { events, drop } => self.sse(events, drop),
            Body::Default => self.realistic(&received),
        };
        for (k, v) in reply.headers {
            resp.headers_mut()
                .insert(http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        resp
    }

    /// Checks path and key the way the provider does.
    fn check(
        &self,
        method: &http::Method,
        path: &str,
        query: Option<&str>,
        h: &HeaderMap,
    ) -> Result<(), Response<BoxBody<Bytes, std::io::Error>>> {
        let header = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let path_ok = match self.api {
            Api::OpenAi => {
                path == "/v1/chat/completions"
                    || path == "/v1/embeddings"
                    || path == "/v1/responses"
            }
            Api::Azure => {
                ((path.starts_with("/openai/deployments/")
                    && (path.ends_with("/chat/completions") || path.ends_with("/embeddings")))
                    || path == "/openai/responses")
                    && query.is_some_and(|q| q.starts_with("api-version="))
            }
            Api::Anthropic => path == "/v1/messages" || path == "/v1/messages/count_tokens",
            Api::Gemini => {
                path.starts_with("/v1beta/models/")
                    && [
                        ":generateContent",
                        ":streamGenerateContent",
                        ":embedContent",
                        ":batchEmbedContents",
                        ":countTokens",
                    ]
                    .iter()
                    .any(|m| path.ends_with(m))
                    && (!path.ends_with(":streamGenerateContent") || query == Some("alt=sse"))
            }
        };
        if method != http::Method::POST || !path_ok {
            return Err(self.error(
                404,
                "not_found_error",
                &format!("no route for {method} {path}"),
            ));
        }
        let key_ok = match self.api {
            Api::OpenAi => header("authorization") == format!("Bearer {KEY}"),
            Api::Azure => header("api-key") == KEY && !h.contains_key("authorization"),
            Api::Anthropic => header("x-api-key") == KEY && !header("anthropic-version").is_empty(),
            Api::Gemini => {
                header("x-goog-api-key") == KEY && !query.unwrap_or_default().contains("key=")
            }
        };
        if !key_ok {
            return Err(self.error(401, "authentication_error", "invalid api key"));
        }
        Ok(())
    }

    /// An error body in the provider's own format.
    pub fn error(
        &self,
        status: u16,
        kind: &str,
        message: &str,
    ) -> Response<BoxBody<Bytes, std::io::Error>> {
        json(status, &self.error_body(status, kind, message))
    }

    /// The provider's error body.
    pub fn error_body(&self, status: u16, kind: &str, message: &str) -> Value {
        match self.api {
            Api::OpenAi | Api::Azure => openai::error(kind, message),
            Api::Anthropic => anthropic::error(kind, message),
            Api::Gemini => gemini::error(status, message),
        }
    }

    fn realistic(&self, r: &Received) -> Response<BoxBody<Bytes, std::io::Error>> {
        match self.api {
            Api::OpenAi | Api::Azure if r.path.ends_with("/responses") => {
                responses::answer(self, r)
            }
            Api::OpenAi | Api::Azure => openai::answer(self, r),
            Api::Anthropic if r.path.ends_with("/count_tokens") => {
                // Anthropic's count: the words of every message and the system prompt.
                let b = &r.body;
                let n: u64 = b["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| words(&text(&m["content"])))
                    .sum::<u64>()
                    + words(&text(&b["system"]));
                json(200, &serde_json::json!({"input_tokens": n}))
            }
            Api::Anthropic => anthropic::answer(self, r),
            Api::Gemini if r.path.ends_with(":countTokens") => {
                let b = r.body.get("generateContentRequest").unwrap_or(&r.body);
                let n: u64 = b["contents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| words(&text(&c["parts"])))
                    .sum();
                json(
                    200,
                    &serde_json::json!({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}),
                )
            }
            Api::Gemini => gemini::answer(self, r),
        }
    }

    /// A streamed answer, event by event; the fake notes when the client hangs up early.
    pub fn sse(
        &self,
        events: Vec<(Duration, String)>,
        drop: bool,
    ) -> Response<BoxBody<Bytes, std::io::Error>> {
        let total = events.len();
        let stream = futures_util::stream::iter(events)
            .then(|(delay, event)| async move {
                tokio::time::sleep(delay).await;
                Ok::<_, std::io::Error>(Frame::data(Bytes::from(event)))
            })
            .chain(
                futures_util::stream::iter(drop.then_some(())).then(|()| async {
                    // Let the events before the cut leave the socket first.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(std::io::Error::other("connection cut"))
                }),
            );
        let tracker = CancelTracker {
            state: self.state.clone(),
            done: total == 0,
        };
        let stream = TrackedStream {
            inner: Box::pin(stream),
            tracker,
        };
        let mut resp = Response::new(BoxBody::new(StreamBody::new(stream)));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            "text/event-stream".parse().unwrap(),
        );
        resp.headers_mut()
            .insert(http::header::CACHE_CONTROL, "no-cache".parse().unwrap());
        resp
    }
}

struct CancelTracker {
    state: Arc<Mutex<State>>,
    done: bool,
}

impl Drop for CancelTracker {
    fn drop(&mut self) {
        if !self.done {
            self.state.lock().unwrap().cancelled += 1;
        }
    }
}

type FrameStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync>,
>;

struct TrackedStream {
    inner: FrameStream,
    tracker: CancelTracker,
}

impl futures_util::Stream for TrackedStream {
    type Item = Result<Frame<Bytes>, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let poll = self.inner.as_mut().poll_next(cx);
        if let std::task::Poll::Ready(None) | std::task::Poll::Ready(Some(Err(_))) = poll {
            self.tracker.done = true;
        }
        poll
    }
}

/// A JSON response.
pub fn json(status: u16, v: &Value) -> Response<BoxBody<Bytes, std::io::Error>> {
    raw(status, "application/json", Bytes::from(v.to_string()))
}

/// A response with a body and content type.
pub fn raw(
    status: u16,
    content_type: &str,
    body: Bytes,
) -> Response<BoxBody<Bytes, std::io::Error>> {
    let mut resp = Response::new(Full::new(body).map_err(|e: Infallible| match e {}).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
    resp
}

/// The text of the last user turn, whatever the format (`content` string or parts).
pub fn last_user_text(messages: &[Value], user_role: &str) -> String {
    messages
        .iter()
        .rev()
        .filter(|m| m["role"] == user_role)
        .find_map(|m| {
            let text = text(m.get("content").or_else(|| m.get("parts"))?);
            (!text.is_empty()).then_some(text)
        })
        .unwrap_or_default()
}

/// Text of a content value: a string, or the `text` of its parts.
pub fn text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// The tool a fake calls: when the prompt names a command ("by running `...`"), the first
/// tool that takes one (a `cmd` or `command` property); otherwise the first tool.
pub fn pick_tool<'a>(
    tools: &'a [Value],
    schema: impl Fn(&Value) -> &Value,
    prompt: &str,
) -> &'a Value {
    let takes_command = |t: &&Value| {
        let props = &schema(t)["properties"];
        props.get("cmd").is_some() || props.get("command").is_some()
    };
    let wanted = prompt.contains("by running `");
    wanted
        .then(|| tools.iter().find(takes_command))
        .flatten()
        .or_else(|| tools.first())
        .unwrap_or(&Value::Null)
}

/// Words as tokens, like the mock provider counts them.
pub fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Splits an answer into chunks of a few words, whitespace kept.
pub fn chunks(answer: &str) -> Vec<String> {
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    words.chunks(2).map(|c| c.concat()).collect()
}

/// A structured answer: a value the JSON schema accepts (the prompt wherever a string goes,
/// so tests can trace it), `{"answer": prompt}` when there is no schema. Type names are read
/// in either case, as Gemini writes them upper-case.
pub fn instance_of(schema: Option<&Value>, prompt: &str) -> Value {
    let Some(schema) = schema.filter(|s| s.is_object()) else {
        return serde_json::json!({ "answer": prompt });
    };
    if let Some(first) = ["anyOf", "oneOf", "allOf"]
        .iter()
        .find_map(|k| schema[*k].as_array().and_then(|a| a.first()))
    {
        return instance_of(Some(first), prompt);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|a| a.first()) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.to_ascii_lowercase(),
        // `["string", "null"]`: the first type named.
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "string".into(),
    };
    match kind.as_str() {
        "object" => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), instance_of(Some(v), prompt)))
                .collect(),
        ),
        "array" => Value::Array(vec![instance_of(schema.get("items"), prompt)]),
        "integer" | "number" => Value::from(1),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String(prompt.to_string()),
    }
}
