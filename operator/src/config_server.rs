//! The config server: `GET /v1/stream` over HTTPS. A sidecar presents its projected token;
//! the operator verifies it, finds the pod, and streams that pod's compiled ProxyConfig as
//! newline-delimited JSON: a `snapshot` line now and on every change that alters it, a
//! `heartbeat` line every 15 s in between. A pod only ever sees its own namespace.

use std::{
    convert::Infallible,
    hash::{Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::{
    net::TcpListener,
    sync::{broadcast, mpsc, watch},
};

use crate::{
    auth::{self, PodIdentity},
    metrics::Metrics,
    status,
    world::{Change, World},
};

/// How often an idle stream carries a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

type Body = BoxBody<Bytes, Infallible>;

/// What the config server needs.
#[derive(Clone)]
pub struct Server {
    /// The API client (TokenReview).
    pub client: Client,
    /// The caches.
    pub world: World,
    /// The metrics.
    pub metrics: Arc<Metrics>,
}

/// Serves until `stop` fires.
pub async fn serve(
    server: Server,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    stop: watch::Receiver<bool>,
) {
    crate::https::serve(listener, tls, stop, move |req| handle(server.clone(), req)).await;
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp =
        Response::new(Full::new(Bytes::from(json!({"error": message}).to_string())).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("a valid header value"),
    );
    resp
}

async fn handle(server: Server, req: Request<hyper::body::Incoming>) -> Response<Body> {
    if req.method() != http::Method::GET || req.uri().path() != "/v1/stream" {
        return error(StatusCode::NOT_FOUND, "the config stream is GET /v1/stream");
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let who = match auth::authenticate(&server.client, &token).await {
        Ok(who) => who,
        Err(e) => {
            server.metrics.auth_failures.inc();
            tracing::info!("config stream refused: {e}");
            let status = if matches!(e, auth::AuthError::Review(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            return error(status, "unauthorized: present a projected ServiceAccount token with audience switchyard, bound to this pod");
        }
    };
    let known = server
        .world
        .pod(&who.namespace, &who.name)
        .is_some_and(|p| p.uid().as_deref() == Some(&who.uid));
    if !known {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized: the token's pod does not exist",
        );
    }
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::spawn(stream_pod(server.clone(), who, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut resp = Response::new(StreamBody::new(body).boxed());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-ndjson"
            .parse()
            .expect("a valid header value"),
    );
    resp
}

/// Sends the pod's snapshot whenever it changes, heartbeats in between, until the
/// sidecar goes away or the pod is deleted.
async fn stream_pod(server: Server, who: PodIdentity, tx: mpsc::Sender<Bytes>) {
    let mut changes = server.world.subscribe();
    let mut last: Option<u64> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    server.metrics.streams.inc();
    let _open = StreamGuard(server.metrics.clone());
    loop {
        let Some(pod) = server.world.pod(&who.namespace, &who.name) else {
            return;
        };
        let objects = server.world.namespace(&who.namespace);
        let view = objects.view();
        let config = switchyard_crds::compile(&status::inputs(&view, pod.labels()));
        let body = serde_json::to_string(&config).unwrap_or_default();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut h);
        let digest = h.finish();
        if last != Some(digest) {
            let line = format!(
                "{{\"type\":\"snapshot\",\"version\":\"{digest:016x}\",\"config\":{body}}}\n"
            );
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
            server.metrics.snapshots.inc();
            last = Some(digest);
        }
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(Change::Namespace(ns)) if ns != who.namespace => continue,
                    Ok(Change::Pod { namespace, name }) if namespace != who.namespace || name != who.name => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = heartbeat.tick() => {
                    if tx.send(Bytes::from_static(b"{\"type\":\"heartbeat\"}\n")).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    }
}

/// Decrements the open-stream gauge when a stream ends.
struct StreamGuard(Arc<Metrics>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.dec();
    }
}
