//! Switchyard's operator: reconciles AIProvider, AIModel and AIRoutingPolicy status (the
//! Lease holder only) and streams each pod's compiled config to its sidecar (every replica).

#![cfg_attr(not(test), deny(clippy::too_many_lines))]

pub mod auth;
pub mod backoff;
pub mod budgets;
pub mod certs;
pub mod config_server;
pub mod controller;
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

/// What every task of a replica shares.
struct Shared {
    client: Client,
    world: world::World,
    metrics: Arc<metrics::Metrics>,
    leading: watch::Receiver<bool>,
    /// Whether this replica's leadership began by creating the Lease.
    founded: Arc<std::sync::atomic::AtomicBool>,
    identity: String,
    stop: watch::Receiver<bool>,
}

/// The three ports, bound before anything is served.
struct Listeners {
    config: TcpListener,
    admin: TcpListener,
    webhook: TcpListener,
}

impl Listeners {
    async fn bind(settings: &Settings) -> Result<Self, StartError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        Ok(Self {
            config: bind(settings.config_listen).await?,
            admin: bind(settings.admin_listen).await?,
            webhook: bind(settings.webhook_listen).await?,
        })
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
    let listeners = Listeners::bind(&settings).await?;
    let metrics = Arc::new(metrics::Metrics::default());
    let (election, lease_task) = leader::spawn(
        client.clone(),
        settings.namespace.clone(),
        identity.clone(),
        settings.advertised_url(),
        stop_rx.clone(),
    );
    let mut lead_watch = election.leading.clone();
    let lead_metric = metrics.clone();
    tokio::spawn(async move {
        while lead_watch.changed().await.is_ok() {
            lead_metric.leader.set(i64::from(*lead_watch.borrow()));
        }
    });
    let inject_settings = Arc::new(injection(&settings, &client, &tls).await);
    let forward = config_server::Forward::new(
        election.leader_url,
        tls.bundle.clone(),
        format!("{}.{}.svc", settings::SERVICE, settings.namespace),
    );
    let shared = Shared {
        world: world::World::start(&client, &stop_rx),
        client,
        metrics,
        leading: election.leading,
        founded: election.founded,
        identity,
        stop: stop_rx,
    };
    tracing::info!(identity = %shared.identity, config = %settings.config_listen, admin = %settings.admin_listen, "switchyard operator running");
    let tasks = spawn(shared, listeners, &tls, inject_settings, forward);
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = lease_task.await;
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

/// Starts the writers (which act while this replica leads) and the three servers.
fn spawn(
    sh: Shared,
    listeners: Listeners,
    tls: &certs::Tls,
    inject_settings: Arc<inject::Settings>,
    forward: config_server::Forward,
) -> Vec<tokio::task::JoinHandle<()>> {
    let webhook = webhook::Webhook {
        client: sh.client.clone(),
        settings: inject_settings.clone(),
        ca: tls.bundle.clone(),
    };
    let ledger = Arc::new(ledger::Ledger::new(sh.metrics.clone(), sh.founded.clone()));
    let runtime = controller::Runtime {
        world: sh.world.clone(),
        metrics: sh.metrics.clone(),
        leader: sh.leading.clone(),
        stop: sh.stop.clone(),
    };
    let server = config_server::Server {
        client: sh.client.clone(),
        world: sh.world.clone(),
        metrics: sh.metrics.clone(),
        ledger: ledger.clone(),
        leading: sh.leading.clone(),
        forward: Arc::new(forward),
        identities: Arc::default(),
    };
    // One Event recorder for every writer of this replica.
    let recorder = reconcile::recorder(&sh.client, sh.identity.clone());
    let mut tasks = reconcile::spawn(&sh.client, &runtime, &recorder);
    tasks.extend([
        runtime.spawn(
            uninjected::Uninjected::new(&sh.world, inject_settings, sh.metrics.clone(), &recorder),
            sh.world.pods.clone(),
        ),
        tokio::spawn(budgets::follow_lead(
            ledger.clone(),
            sh.leading.clone(),
            sh.stop.clone(),
        )),
        tokio::spawn(budgets::keep_books(
            sh.client.clone(),
            ledger.clone(),
            runtime.clone(),
        )),
        runtime.spawn(
            budgets::Spend::new(&sh.client, &runtime, &ledger, &recorder),
            sh.world.budgets.clone(),
        ),
        tokio::spawn(config_server::serve(
            server,
            listeners.config,
            tls.server.clone(),
            sh.stop.clone(),
        )),
        tokio::spawn(webhook::serve(
            webhook,
            listeners.webhook,
            tls.server.clone(),
            sh.stop.clone(),
        )),
        tokio::spawn(metrics::serve(
            listeners.admin,
            sh.metrics,
            sh.world,
            sh.stop,
        )),
    ]);
    tasks
}
