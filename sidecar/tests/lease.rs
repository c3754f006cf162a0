//! The lease exchange: an open TLS connection to the operator is reused from one exchange to
//! the next, and given up after a replica that cannot grant (503) or a failure, so the next
//! try may reach another replica; calls that wait for leases together spend exactly what
//! was granted.

#![allow(clippy::unwrap_used)]

use std::{
    convert::Infallible,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use switchyard_sidecar::{
    governor::{lease, Demand, Governor},
    health::Health,
    managed::Source,
    reload,
    state::Runtime,
};
use tokio::net::TcpListener;

/// An operator stand-in on 127.0.0.1 over TLS: counts the connections it accepts and
/// answers each exchange with the status `status` holds; on 200 it grants what is wanted
/// from one window of [`WINDOW`] units shared by every counter, as long as it lasts.
struct Operator {
    url: String,
    ca: String,
    connections: Arc<AtomicUsize>,
    status: Arc<AtomicUsize>,
    granted: Arc<AtomicUsize>,
}

/// What the stand-in grants in all.
const WINDOW: usize = 20;

fn grants(body: &[u8], granted: &AtomicUsize) -> lease::Reply {
    let ask: lease::Exchange = serde_json::from_slice(body).unwrap_or_default();
    let mut reply = lease::Reply::default();
    for w in ask.want {
        let grant = |before: usize| (w.amount as usize).min(WINDOW - before);
        let before = granted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |g| Some(g + grant(g)))
            .unwrap_or(WINDOW);
        let amount = grant(before);
        reply.grants.push(lease::Grant {
            counter: w.counter,
            window: w.window,
            amount: amount as u64,
            remaining: (WINDOW - before - amount) as u64,
        });
    }
    reply
}

async fn operator() -> Operator {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let status = Arc::new(AtomicUsize::new(200));
    let granted = Arc::new(AtomicUsize::new(0));
    let (count, answer, given) = (connections.clone(), status.clone(), granted.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let (acceptor, answer, given) = (acceptor.clone(), answer.clone(), given.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (answer, given) = (answer.clone(), given.clone());
                    async move {
                        let ask = req.into_body().collect().await.unwrap().to_bytes();
                        let status =
                            StatusCode::from_u16(answer.load(Ordering::SeqCst) as u16).unwrap();
                        let body = if status == StatusCode::OK {
                            serde_json::to_vec(&grants(&ask, &given)).unwrap()
                        } else {
                            b"no leader".to_vec()
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Operator {
        url,
        ca: ca_cert.pem(),
        connections,
        status,
        granted,
    }
}

fn client(op: &Operator, dir: &std::path::Path) -> lease::Client {
    let token = dir.join("token");
    std::fs::write(&token, "pod-token").unwrap();
    lease::Client::new(Source {
        url: op.url.clone(),
        token_file: token,
        ca_file: None,
        ca_pem: Some(op.ca.clone()),
        state_dir: None,
    })
}

#[tokio::test]
async fn exchanges_reuse_one_connection_until_a_replica_cannot_grant() {
    let op = operator().await;
    let dir = tempfile::tempdir().unwrap();
    let client = client(&op, dir.path());
    for _ in 0..3 {
        client.exchange(&[], &[], &[]).await.unwrap();
    }
    assert_eq!(
        op.connections.load(Ordering::SeqCst),
        1,
        "one connection, reused"
    );

    // A replica that cannot reach the leader: each of the next tries is a new connection.
    op.status.store(503, Ordering::SeqCst);
    let err = client.exchange(&[], &[], &[]).await.unwrap_err();
    assert!(err.contains("503"), "{err}");
    assert_eq!(
        op.connections.load(Ordering::SeqCst),
        3,
        "two tries after the first 503"
    );

    op.status.store(200, Ordering::SeqCst);
    client.exchange(&[], &[], &[]).await.unwrap();
    client.exchange(&[], &[], &[]).await.unwrap();
    assert_eq!(
        op.connections.load(Ordering::SeqCst),
        4,
        "a fresh connection, then reused"
    );
}

/// A pod's `scope: policy` limit of 20 a minute, leased call by call (too small a limit to
/// lease ahead), as the only pod it covers (its offline share would be all that remains):
/// the manifest a user writes, compiled as the sidecar compiles it.
fn shared_limit(dir: &std::path::Path) -> Runtime {
    let path = dir.join("policy.yaml");
    let manifest = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {{name: p}}\n\
         spec: {{rateLimit: {{requestsPerMinute: {WINDOW}, scope: policy}}}}\n"
    );
    std::fs::write(&path, manifest).unwrap();
    let source = reload::Source {
        path,
        namespace: "default".into(),
        pod_labels: Default::default(),
    };
    Runtime::new(reload::load(&source).unwrap(), &Health::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_waiting_for_leases_together_spend_exactly_what_was_granted() {
    let op = operator().await;
    let dir = tempfile::tempdir().unwrap();
    let governor = Governor::new(Some(client(&op, dir.path())));
    let rt = Arc::new(shared_limit(dir.path()));
    // Fifty calls at once, each needing its own lease: a grant one call asked for must not be
    // spent by another waiting for its turn, leaving the asker to ask again until it gave up
    // and took the offline share (the whole remainder, here) on top of the leases.
    let calls = (0..50).map(|_| {
        let (governor, rt) = (governor.clone(), rt.clone());
        tokio::spawn(async move { governor.admit(&rt, &Demand::default()).await })
    });
    let mut admitted = 0;
    // Held to the end: a ticket dropped gives its request back for another call to take.
    let mut tickets = Vec::new();
    for call in calls {
        if let Ok(ticket) = call.await.unwrap() {
            admitted += 1;
            tickets.push(ticket);
        }
    }
    assert_eq!(
        op.granted.load(Ordering::SeqCst),
        WINDOW,
        "the window granted whole"
    );
    assert_eq!(
        admitted, WINDOW,
        "every call admitted held a granted request, no more"
    );
}
