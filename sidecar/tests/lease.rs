//! The lease exchange's connections: an open TLS connection to the operator is reused from
//! one exchange to the next, and given up after a replica that cannot grant (503) or a
//! failure, so the next try may reach another replica.

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
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use switchyard_sidecar::{governor::lease, managed::Source};
use tokio::net::TcpListener;

/// An operator stand-in on 127.0.0.1 over TLS: counts the connections it accepts and
/// answers each exchange with the status `status` holds (an empty grant on 200).
struct Operator {
    url: String,
    ca: String,
    connections: Arc<AtomicUsize>,
    status: Arc<AtomicUsize>,
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
    let (count, answer) = (connections.clone(), status.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |_req| {
                    let status =
                        StatusCode::from_u16(answer.load(Ordering::SeqCst) as u16).unwrap();
                    let body = if status == StatusCode::OK {
                        serde_json::to_vec(&lease::Reply::default()).unwrap()
                    } else {
                        b"no leader".to_vec()
                    };
                    async move {
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
    }
}

#[tokio::test]
async fn exchanges_reuse_one_connection_until_a_replica_cannot_grant() {
    let op = operator().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "pod-token").unwrap();
    let client = lease::Client::new(Source {
        url: op.url.clone(),
        token_file: token,
        ca_file: None,
        ca_pem: Some(op.ca.clone()),
        state_dir: None,
    });
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
