//! The config server over HTTPS. A sidecar presents its projected token; the operator
//! verifies it (a TokenReview, remembered for a minute) and finds the pod. `GET /v1/stream`
//! streams that pod's compiled ProxyConfig as newline-delimited JSON: a `snapshot` line now
//! and on every change that alters it, a `heartbeat` line every 15 s in between.
//! `POST /v1/leases` exchanges slices of shared limits and usage reports with the leader's
//! [`Ledger`]; another replica forwards the exchange to the leader (at the URL the leader
//! published in its Lease), and answers 503 when no leader is known or reachable (the
//! sidecar then uses its offline share). A pod only ever sees its own namespace.

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
    /// How to reach the leader when this replica does not lead.
    pub forward: Arc<Forward>,
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
        let (parts, body) = req.into_parts();
        return lease(&server, &who, &parts.headers, body).await;
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

/// Marks an exchange one replica forwarded to another (which never forwards it again).
const FORWARDED: &str = "x-switchyard-forwarded";
/// How long a forwarded exchange may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// The client toward the leader: HTTPS, the certificate checked as the Service's name.
type LeaderClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// What a replica needs to forward lease exchanges to the leader.
pub struct Forward {
    /// The leader's config-server URL, from its Lease.
    leader_url: watch::Receiver<Option<String>>,
    /// The CA bundle every replica's serving certificate chains to.
    ca: watch::Receiver<String>,
    /// A name every replica's serving certificate covers (the Service's).
    server_name: String,
    /// The client, with the bundle it trusts: kept (and its connection to the leader with
    /// it) until the bundle changes.
    client: Mutex<Option<(String, LeaderClient)>>,
}

impl Forward {
    /// Forwarding to the leader named in `leader_url`, trusting `ca` for `server_name`.
    pub fn new(
        leader_url: watch::Receiver<Option<String>>,
        ca: watch::Receiver<String>,
        server_name: String,
    ) -> Self {
        Self {
            leader_url,
            ca,
            server_name,
            client: Mutex::default(),
        }
    }

    /// The client for the current CA bundle.
    fn client(&self) -> Result<LeaderClient, String> {
        use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};

        let ca = self.ca.borrow().clone();
        let mut kept = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, client)) = kept.as_ref().filter(|(b, _)| *b == ca) {
            return Ok(client.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca.as_bytes()).flatten() {
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from(self.server_name.clone()).map_err(|e| e.to_string())?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        *kept = Some((ca, client.clone()));
        Ok(client)
    }

    /// Sends an exchange on to the leader with the sidecar's own token (the leader checks it
    /// again), and returns the leader's answer.
    async fn send(&self, token: &http::HeaderValue, body: Bytes) -> Result<Response<Body>, String> {
        let url = self
            .leader_url
            .borrow()
            .clone()
            .ok_or("no leader is known")?;
        let req = Request::post(format!("{url}/v1/leases"))
            .header(header::AUTHORIZATION, token)
            .header(header::CONTENT_TYPE, "application/json")
            .header(FORWARDED, "1")
            .body(Full::new(body))
            .map_err(|e| format!("leader URL {url}: {e}"))?;
        let client = self.client()?;
        let exchange = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let (parts, body) = resp.into_parts();
            let bytes = http_body_util::Limited::new(body, 1 << 20)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok(Response::from_parts(parts, Full::new(bytes).boxed()))
        };
        tokio::time::timeout(FORWARD_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{url} did not answer in time"))?
    }
}

/// Answers `POST /v1/leases`: the leader exchanges, another replica forwards to it.
async fn lease(
    server: &Server,
    who: &PodIdentity,
    headers: &http::HeaderMap,
    body: hyper::body::Incoming,
) -> Response<Body> {
    let Ok(bytes) = http_body_util::Limited::new(body, 1 << 20).collect().await else {
        return error(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let bytes = bytes.to_bytes();
    if !*server.leading.borrow() {
        let token = headers.get(header::AUTHORIZATION);
        if let (Some(token), false) = (token, headers.contains_key(FORWARDED)) {
            match server.forward.send(token, bytes).await {
                Ok(resp) => return resp,
                Err(e) => tracing::info!("lease exchange not forwarded to the leader: {e}"),
            }
        }
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not the leader: leases come from the replica holding the Lease",
        );
    }
    if !server.ledger.is_leading() {
        // Leading just began and the ledger is not yet started afresh: counting now could be
        // cleared a moment later. The sidecar tries again.
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "leadership is starting: try again",
        );
    }
    let Ok(msg) = serde_json::from_slice::<ledger::Exchange>(&bytes) else {
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
