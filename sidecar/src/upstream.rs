//! The one HTTP client toward providers. It knows no vendor: it sends a prepared request
//! and hands back the status, headers and a body stream.

use std::{collections::HashMap, pin::Pin, sync::Mutex, time::Duration};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, BodyStream};
use hyper_rustls::HttpsConnector;

use crate::payload::Payload;
use hyper_util::{
    client::legacy::{connect::HttpConnector, Client},
    rt::TokioExecutor,
};

/// An upstream body, chunk by chunk.
pub type BodyChunks = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// An upstream's answer, before its body is read.
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: BodyChunks,
}

/// Why no answer came.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made.
    Connect(String),
    /// The connection failed after it was made.
    Io(String),
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Payload>;

/// A pool of connections per connect timeout, shared across config reloads.
#[derive(Default)]
pub struct Upstream {
    clients: Mutex<HashMap<Duration, HttpsClient>>,
}

impl Upstream {
    fn client(&self, connect_timeout: Duration) -> HttpsClient {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(connect_timeout)
            .or_insert_with(|| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(connect_timeout));
                http.set_nodelay(true);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_webpki_roots()
                    .https_or_http()
                    .enable_http1()
                    .enable_http2()
                    .wrap_connector(http);
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build(https)
            })
            .clone()
    }

    /// Sends `req`; the caller bounds it with its own deadline.
    pub async fn send(
        &self,
        req: Request<Payload>,
        connect_timeout: Duration,
    ) -> Result<Reply, SendError> {
        let resp = self
            .client(connect_timeout)
            .request(req)
            .await
            .map_err(|e| {
                if e.is_connect() {
                    SendError::Connect(describe(&e))
                } else {
                    SendError::Io(describe(&e))
                }
            })?;
        let (parts, body) = resp.into_parts();
        let body =
            BodyStream::new(body.map_err(|e| e.to_string())).filter_map(|frame| async move {
                match frame {
                    Ok(frame) => frame.into_data().ok().map(Ok),
                    Err(e) => Some(Err(e)),
                }
            });
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: Box::pin(body),
        })
    }
}

fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Reads a whole body, up to `limit` bytes.
pub async fn read_all(body: &mut BodyChunks, limit: usize) -> Result<Bytes, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk?);
        if buf.len() > limit {
            return Err(format!("upstream body is larger than {limit} bytes"));
        }
    }
    Ok(Bytes::from(buf))
}
