//! Switchyard's operator: reconciles AIProvider, AIModel and AIRoutingPolicy status (the
//! Lease holder only) and streams each pod's compiled config to its sidecar (every replica).

pub mod auth;
pub mod backoff;
pub mod budgets;
pub mod certs;
pub mod config_server;
pub mod error;
pub mod https;
pub mod inject;
pub mod leader;
pub mod ledger;
pub mod metrics;
pub mod reconcile;
pub mod secrets;
pub mod settings;
pub mod status;
pub mod uninjected;
pub mod webhook;
pub mod world;

use std::{future::Future, net::SocketAddr, sync::Arc};

use kube::Client;
use tokio::{net::TcpListener, sync::watch};

pub use settings::Settings;

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No Kubernetes access.
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    /// The PKI could not be set up.
    #[error(transparent)]
    Certs(#[from] certs::CertError),
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

/// This replica's name in the leader election: `--identity`, else the host name.
fn identity(settings: &Settings) -> String {
    settings.identity.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME")
            .unwrap_or_else(|_| format!("switchyard-operator-{:08x}", fastrand::u32(..)))
    })
}

/// Where the serving certificates come from: mounted files, or the operator's own CA.
fn cert_mode(settings: &Settings) -> certs::Mode {
    match &settings.tls_dir {
        Some(dir) => certs::Mode::Files(dir.clone()),
        None => certs::Mode::Own {
            ca: settings.ca_validity.into(),
            serving: settings.cert_validity.into(),
        },
    }
}

/// What the injector puts into pods.
async fn injection(settings: &Settings, client: &Client, tls: &certs::Tls) -> inject::Settings {
    inject::Settings {
        image: settings.sidecar_image.clone(),
        operator_url: settings.sidecar_operator_url.clone().unwrap_or_else(|| {
            format!(
                "https://{}.{}.svc:{}",
                settings::SERVICE,
                settings.namespace,
                settings.config_listen.port()
            )
        }),
        ca_pem: tls.bundle.borrow().clone(),
        operator_namespace: settings.namespace.clone(),
        native_sidecars: webhook::native_sidecars(client).await,
        resources: settings.sidecar_resources.clone(),
        env: settings.sidecar_env.clone(),
        port: settings.sidecar_port,
        admin_port: settings.sidecar_admin_port,
    }
}

/// Runs until `shutdown` resolves.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let client = Client::try_default().await?;
    let identity = identity(&settings);
    let (stop_tx, stop_rx) = watch::channel(false);
    let tls = certs::start(
        &client,
        &settings.namespace,
        &settings.tls_san,
        cert_mode(&settings),
        &settings.webhook_configuration,
        stop_rx.clone(),
    )
    .await?;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let config_listener = bind(settings.config_listen).await?;
    let admin_listener = bind(settings.admin_listen).await?;
    let webhook_listener = bind(settings.webhook_listen).await?;
    let world = world::World::start(&client, &stop_rx);
    let metrics = Arc::new(metrics::Metrics::default());
    let (election, lease_task) = leader::spawn(
        client.clone(),
        settings.namespace.clone(),
        identity.clone(),
        settings.advertised_url(),
        stop_rx.clone(),
    );
    let leading = election.leading.clone();
    let mut lead_watch = leading.clone();
    let lead_metric = metrics.clone();
    tokio::spawn(async move {
        while lead_watch.changed().await.is_ok() {
            lead_metric.leader.set(i64::from(*lead_watch.borrow()));
        }
    });
    let inject_settings = injection(&settings, &client, &tls).await;
    let inject_settings = Arc::new(inject_settings);
    let webhook = webhook::Webhook {
        client: client.clone(),
        settings: inject_settings.clone(),
        ca: tls.bundle.clone(),
    };
    let ledger = Arc::new(ledger::Ledger::new(metrics.clone()));
    let server = config_server::Server {
        client: client.clone(),
        world: world.clone(),
        metrics: metrics.clone(),
        ledger: ledger.clone(),
        leading: leading.clone(),
        forward: Arc::new(config_server::Forward::new(
            election.leader_url,
            tls.bundle.clone(),
            format!("{}.{}.svc", settings::SERVICE, settings.namespace),
        )),
        identities: Arc::default(),
    };
    let tasks = vec![
        tokio::spawn(uninjected::run(
            client.clone(),
            world.clone(),
            inject_settings,
            metrics.clone(),
            leading.clone(),
            identity.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(budgets::run(
            client.clone(),
            world.clone(),
            ledger,
            metrics.clone(),
            leading.clone(),
            identity.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(reconcile::run(
            client.clone(),
            world.clone(),
            metrics.clone(),
            leading,
            identity.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(config_server::serve(
            server,
            config_listener,
            tls.server.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(webhook::serve(
            webhook,
            webhook_listener,
            tls.server.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(metrics::serve(admin_listener, metrics, world, stop_rx)),
    ];
    tracing::info!(identity = %identity, config = %settings.config_listen, admin = %settings.admin_listen, "switchyard operator running");
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = lease_task.await;
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
