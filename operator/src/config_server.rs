//! The config server over HTTPS. A sidecar presents its projected token; the operator
//! verifies it (a TokenReview, remembered for a minute) and finds the pod. `GET /v1/stream`
//! streams that pod's compiled ProxyConfig as newline-delimited JSON: a `snapshot` line now
//! and on every change that alters it, a `heartbeat` line every 15 s in between.
//! `POST /v1/leases` exchanges slices of shared limits and usage reports with the leader's
//! [`Ledger`] (other replicas answer 503, and the sidecar uses its offline share). A pod only
//! ever sees its own namespace.

use std::{
    collections::HashMap,
    convert::Infallible,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
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
    ledger::{self, Ledger},
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
    /// The shared counters (served by the leader).
    pub ledger: Arc<Ledger>,
    /// Whether this replica leads.
    pub leading: watch::Receiver<bool>,
    /// Tokens reviewed lately: a digest of the token, who it named, and when.
    pub identities: Arc<Mutex<HashMap<u64, (PodIdentity, Instant)>>>,
}

/// How long a reviewed token is trusted without asking the API server again.
const REVIEWED_FOR: Duration = Duration::from_secs(60);

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
    let leases = match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/v1/stream") => false,
        (&http::Method::POST, "/v1/leases") => true,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "the config server serves GET /v1/stream and POST /v1/leases",
            )
        }
    };
    let who = match identify(&server, req.headers()).await {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    if leases {
        return lease(&server, &who, req.into_body()).await;
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

/// Answers `POST /v1/leases` for the leader.
async fn lease(server: &Server, who: &PodIdentity, body: hyper::body::Incoming) -> Response<Body> {
    if !*server.leading.borrow() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not the leader: leases come from the replica holding the Lease",
        );
    }
    let Ok(bytes) = http_body_util::Limited::new(body, 1 << 20).collect().await else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let Ok(msg) = serde_json::from_slice::<ledger::Exchange>(&bytes.to_bytes()) else {
        return error(StatusCode::BAD_REQUEST, "not a lease exchange");
    };
    let Some(pod) = server.world.pod(&who.namespace, &who.name) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized: the token's pod does not exist",
        );
    };
    let reply = server
        .ledger
        .exchange(&server.world, &pod, &msg, crate::budgets::unix_now());
    let mut resp = Response::new(
        Full::new(Bytes::from(serde_json::to_vec(&reply).unwrap_or_default())).boxed(),
    );
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("a valid header value"),
    );
    resp
}

/// The pod a request's bearer token is bound to, or the refusal to send.
async fn identify(
    server: &Server,
    headers: &http::HeaderMap,
) -> Result<PodIdentity, Response<Body>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let digest = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        token.hash(&mut h);
        h.finish()
    };
    let remembered = server
        .identities
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&digest)
        .filter(|(_, at)| at.elapsed() < REVIEWED_FOR)
        .map(|(who, _)| who.clone());
    let reviewed = match remembered {
        Some(who) => Ok(who),
        None => auth::authenticate(&server.client, &token).await,
    };
    let who = match reviewed {
        Ok(who) => who,
        Err(e) => {
            server.metrics.auth_failures.inc();
            tracing::info!("config stream refused: {e}");
            let status = if matches!(e, auth::AuthError::Review(_)) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            return Err(error(status, "unauthorized: present a projected ServiceAccount token with audience switchyard, bound to this pod"));
        }
    };
    let known = server
        .world
        .pod(&who.namespace, &who.name)
        .is_some_and(|p| p.uid().as_deref() == Some(&who.uid));
    if !known {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized: the token's pod does not exist",
        ));
    }
    let mut remembered = server.identities.lock().unwrap_or_else(|e| e.into_inner());
    remembered.retain(|_, (_, at)| at.elapsed() < REVIEWED_FOR);
    remembered.insert(digest, (who.clone(), Instant::now()));
    Ok(who)
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
