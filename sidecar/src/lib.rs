//! Switchyard's sidecar: the data plane an application pod talks to on `127.0.0.1:4000`.
//!
//! `server` parses calls, `router` walks the candidates `plan` orders, `provider` builds each
//! vendor's request, `upstream` sends it, `translate` converts between wire formats and
//! `relay` streams answers back; `respond` is the one place errors get their dialect.

#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod admin;
pub mod affinity;
pub mod body;
pub mod bounded;
pub mod cache;
pub mod count_tokens;
pub mod dialect;
pub mod endpoint;
pub mod error;
pub mod failure;
pub mod governor;
pub mod health;
pub mod hints;
pub mod inbound;
pub mod managed;
pub mod metrics;
pub mod payload;
pub mod plan;
pub mod prehashed;
pub mod provider;
pub mod relay;
pub mod reload;
pub mod respond;
pub mod responses_api;
pub mod router;
mod scan;
pub mod server;
pub mod settings;
pub mod skim;
pub mod sse;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod upstream;

use std::{convert::Infallible, future::Future, net::SocketAddr, time::Duration};

use hyper::{server::conn::http1, service::service_fn};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::{net::TcpListener, sync::watch};

pub use settings::Settings;
pub use state::Shared;

/// How long in-flight requests get to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the sidecar could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Neither mode was chosen.
    #[error(
        "no configuration source: pass --config PATH (standalone) or --operator-url URL (managed)"
    )]
    NoSource,
    /// The first config did not load.
    #[error("config could not be loaded: {0}")]
    Config(#[from] switchyard_crds::manifest::LoadErrors),
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Loads the config, serves until `shutdown` resolves, then drains.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let managed_source = match (&settings.config, &settings.operator_url) {
        (None, Some(url)) => Some(managed::Source {
            url: url.clone(),
            token_file: settings.token_file.clone(),
            ca_file: settings.ca_file.clone(),
            ca_pem: settings.ca_pem.clone(),
            state_dir: settings.state_dir.clone(),
        }),
        _ => None,
    };
    let governor =
        governor::Governor::new(managed_source.clone().map(governor::lease::Client::new));
    let shared = Shared::new(
        settings.max_body_bytes,
        governor.clone(),
        Duration::from_secs(settings.keepalive_secs.max(1)),
    );
    let follower = match (&settings.config, managed_source) {
        (Some(path), _) => {
            let source = reload::Source {
                path: path.clone(),
                namespace: settings.namespace.clone(),
                pod_labels: settings.pod_labels.clone(),
            };
            reload::install(&shared, reload::load(&source)?);
            tokio::spawn(reload::watch(source, shared.clone(), stop_rx.clone()))
        }
        (None, Some(source)) => {
            managed::restore(&source, &shared);
            tokio::spawn(governor::flush_every(shared.clone(), stop_rx.clone()));
            tokio::spawn(managed::run(source, shared.clone(), stop_rx.clone()))
        }
        (None, None) => return Err(StartError::NoSource),
    };
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let data = bind(settings.listen).await?;
    let admin = bind(settings.admin_listen).await?;
    tracing::info!(listen = %settings.listen, admin = %settings.admin_listen, "switchyard sidecar listening");
    let s = shared.clone();
    let data_task = tokio::spawn(serve(data, stop_rx.clone(), move |req| {
        server::handle(s.clone(), req)
    }));
    let s = shared.clone();
    let admin_task = tokio::spawn(serve(admin, stop_rx, move |req| {
        admin::handle(s.clone(), req)
    }));
    shutdown.await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    for task in [data_task, admin_task] {
        let _ = task.await;
    }
    let _ = follower.await;
    // Spans still queued go out before the process ends.
    shared.tracing.shutdown().await;
    Ok(())
}

/// Accepts connections until told to stop, then waits (up to [`DRAIN_TIMEOUT`]) for the
/// open ones to finish.
async fn serve<F, Fut>(listener: TcpListener, mut stop: watch::Receiver<bool>, handler: F)
where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = hyper::Response<respond::Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: every client of a pod's loopback speaks it (HTTP/2 comes with TLS, which
    // the loopback does not carry), and a connection that could turn into HTTP/2 costs
    // several kilobytes more for as long as it is open.
    let builder = http1::Builder::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = service_fn(move |req| {
            let fut = handler(req);
            async move { Ok::<_, Infallible>(fut.await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
}
