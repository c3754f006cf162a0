//! The command line; every flag is also read from an environment variable.

use std::net::SocketAddr;

use clap::Parser;

/// Switchyard's operator.
#[derive(Clone, Debug, Parser)]
#[command(name = "switchyard-operator", version, about)]
pub struct Settings {
    /// The operator's own namespace (its CA, Lease and Service live there).
    #[arg(
        long,
        env = "SWITCHYARD_NAMESPACE",
        default_value = "switchyard-system"
    )]
    pub namespace: String,
    /// The config server (HTTPS) address.
    #[arg(long, env = "SWITCHYARD_CONFIG_LISTEN", default_value = "0.0.0.0:8443")]
    pub config_listen: SocketAddr,
    /// The injection webhook (HTTPS) address.
    #[arg(
        long,
        env = "SWITCHYARD_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:9443"
    )]
    pub webhook_listen: SocketAddr,
    /// The admin address (/healthz, /readyz, /metrics).
    #[arg(long, env = "SWITCHYARD_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: SocketAddr,
    /// Extra names for the serving certificate (comma-separated); its Service names,
    /// `localhost` and `127.0.0.1` are always covered.
    #[arg(long, env = "SWITCHYARD_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// The sidecar image the webhook injects.
    #[arg(long, env = "SWITCHYARD_SIDECAR_IMAGE", default_value = concat!("ghcr.io/switchyard-dev/switchyard-sidecar:", env!("CARGO_PKG_VERSION")))]
    pub sidecar_image: String,
    /// The config-stream URL injected sidecars use (default: this Service in this namespace).
    #[arg(long, env = "SWITCHYARD_SIDECAR_OPERATOR_URL")]
    pub sidecar_operator_url: Option<String>,
    /// This replica's identity for leader election (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

/// The name of the operator's Service (its certificate covers it).
pub const SERVICE: &str = "switchyard-operator";
/// The audience sidecar tokens must carry.
pub const AUDIENCE: &str = "switchyard";
