//! A fast OpenAI-compatible upstream for benchmarks: canned answers, no JSON parsing (an
//! Anthropic Messages answer at `/v1/messages`).
//! A body with `"stream":true` gets a short SSE stream; one naming the model `hold` gets a
//! stream that sends a chunk a second for a minute (to hold many streams open).
//!
//! `bench-upstream ADDR`

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::{body::Frame, service::service_fn, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1731000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}"#;

const MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"The quick brown fox jumps over the lazy dog."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#;

fn chunk(content: &str, finish: &str) -> String {
    format!("data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1731000000,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n")
}

type Body = BoxBody<Bytes, Infallible>;

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    let anthropic = req.uri().path().ends_with("/v1/messages");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let streaming = text.contains("\"stream\":true");
    let hold = text.contains("\"model\":\"hold\"");
    let resp = if hold {
        let events = futures_util::stream::unfold(0u32, |i| async move {
            if i >= 60 {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from(chunk("tick ", "null")))),
                i + 1,
            ))
        });
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(StreamBody::new(events).boxed())
    } else if streaming {
        let mut sse = String::new();
        for w in ["The ", "quick ", "brown ", "fox ", "jumps."] {
            sse.push_str(&chunk(w, "null"));
        }
        sse.push_str(&chunk("", "\"stop\""));
        sse.push_str("data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1731000000,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17}}\n\ndata: [DONE]\n\n");
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Full::new(Bytes::from(sse)).boxed())
    } else {
        let answer = if anthropic { MESSAGE } else { ANSWER };
        Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(answer.as_bytes())).boxed())
    };
    Ok(resp.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed())))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
