//! The command line; every flag is also read from an environment variable.

use std::{net::SocketAddr, path::PathBuf};

use switchyard_crds::duration::Duration;

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
    /// Serve the certificate in this directory (`tls.crt`, `tls.key`, `ca.crt`, as
    /// cert-manager writes them), re-read when it changes, instead of the operator's own CA;
    /// the webhook's `caBundle` is then left to cert-manager's CA injector.
    #[arg(long, env = "SWITCHYARD_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// The lifetime of the operator's own CA (it rolls over with a sixth of it left).
    #[arg(long, env = "SWITCHYARD_CA_VALIDITY", default_value = "87600h")]
    pub ca_validity: Duration,
    /// The lifetime of a serving certificate (renewed two thirds of the way).
    #[arg(long, env = "SWITCHYARD_CERT_VALIDITY", default_value = "2160h")]
    pub cert_validity: Duration,
    /// The MutatingWebhookConfiguration whose `caBundle` the operator keeps current.
    #[arg(
        long,
        env = "SWITCHYARD_WEBHOOK_CONFIGURATION",
        default_value = "switchyard-sidecar-injector"
    )]
    pub webhook_configuration: String,
    /// The sidecar image the webhook injects.
    #[arg(long, env = "SWITCHYARD_SIDECAR_IMAGE", default_value = concat!("ghcr.io/switchyard-dev/switchyard-sidecar:", env!("CARGO_PKG_VERSION")))]
    pub sidecar_image: String,
    /// The config-stream URL injected sidecars use (default: this Service in this namespace).
    #[arg(long, env = "SWITCHYARD_SIDECAR_OPERATOR_URL")]
    pub sidecar_operator_url: Option<String>,
    /// The injected sidecar's `resources` (JSON).
    #[arg(
        long,
        env = "SWITCHYARD_SIDECAR_RESOURCES",
        default_value = r#"{"requests":{"cpu":"10m","memory":"16Mi"},"limits":{"memory":"128Mi"}}"#,
        value_parser = resources
    )]
    pub sidecar_resources: serde_json::Value,
    /// Extra environment of the injected sidecar (JSON list of `{name, value}`), such as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` to turn its traces on.
    #[arg(long, env = "SWITCHYARD_SIDECAR_ENV", default_value = "[]", value_parser = env_list)]
    pub sidecar_env: serde_json::Value,
    /// The injected sidecar's data port on the pod's loopback (what `OPENAI_BASE_URL` and
    /// `ANTHROPIC_BASE_URL` point at).
    #[arg(long, env = "SWITCHYARD_SIDECAR_PORT", default_value_t = 4000)]
    pub sidecar_port: u16,
    /// The injected sidecar's admin port (probes, metrics).
    #[arg(long, env = "SWITCHYARD_SIDECAR_ADMIN_PORT", default_value_t = 4001)]
    pub sidecar_admin_port: u16,
    /// This replica's identity for leader election (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Where other replicas reach this one's config server, to forward lease exchanges to it
    /// while it leads (default: `https://$POD_IP:<config port>`, or the config address when
    /// it names one host).
    #[arg(long, env = "SWITCHYARD_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
}

impl Settings {
    /// Where other replicas reach this one's config server, if that can be known.
    pub fn advertised_url(&self) -> Option<String> {
        if let Some(url) = &self.advertise_url {
            return Some(url.clone());
        }
        let port = self.config_listen.port();
        let ip = std::env::var("POD_IP")
            .ok()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .or_else(|| {
                let ip = self.config_listen.ip();
                (!ip.is_unspecified()).then_some(ip)
            })?;
        Some(format!("https://{}", std::net::SocketAddr::new(ip, port)))
    }
}

/// The name of the operator's Service (its certificate covers it).
pub const SERVICE: &str = "switchyard-operator";
/// The audience sidecar tokens must carry.
pub const AUDIENCE: &str = "switchyard";

/// Reads `--sidecar-env`: a JSON list of `{"name": ..., "value": ...}`.
fn env_list(s: &str) -> Result<serde_json::Value, String> {
    let v: serde_json::Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
    let fine = v.as_array().is_some_and(|items| {
        items
            .iter()
            .all(|e| e["name"].is_string() && e["value"].is_string())
    });
    if fine {
        Ok(v)
    } else {
        Err("expected a JSON list like [{\"name\":\"OTEL_EXPORTER_OTLP_ENDPOINT\",\"value\":\"http://collector:4318\"}]".into())
    }
}

/// Reads `--sidecar-resources`: a JSON object such as a container's `resources`.
fn resources(s: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("expected a JSON object like {\"requests\":{\"cpu\":\"10m\"}}".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}
