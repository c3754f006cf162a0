//! The command line; every flag is also read from an environment variable.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use clap::Parser;

/// The default data-plane address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
/// The default admin address.
pub const DEFAULT_ADMIN_LISTEN: &str = "0.0.0.0:4001";
/// The default request body limit (64 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Switchyard's sidecar: an OpenAI- and Anthropic-compatible gateway on localhost.
#[derive(Clone, Debug, Parser)]
#[command(name = "switchyard-sidecar", version, about)]
pub struct Settings {
    /// Standalone mode: a manifest file or directory (AIProvider, AIModel, AIRoutingPolicy,
    /// Secret), hot-reloaded on change.
    #[arg(long, env = "SWITCHYARD_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Managed mode: the operator's config-stream URL.
    #[arg(
        long,
        env = "SWITCHYARD_OPERATOR_URL",
        value_name = "URL",
        conflicts_with = "config"
    )]
    pub operator_url: Option<String>,
    /// The data-plane address.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The admin address (/healthz, /readyz, /metrics, /config).
    #[arg(long, env = "SWITCHYARD_ADMIN_LISTEN", default_value = DEFAULT_ADMIN_LISTEN, value_name = "ADDR")]
    pub admin_listen: SocketAddr,
    /// Managed mode: the projected ServiceAccount token.
    #[arg(
        long,
        env = "SWITCHYARD_TOKEN_FILE",
        default_value = "/var/run/secrets/switchyard.dev/token",
        value_name = "PATH"
    )]
    pub token_file: PathBuf,
    /// Managed mode: the operator's CA certificate.
    #[arg(long, env = "SWITCHYARD_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Managed mode: the operator's CA certificate itself (PEM), instead of a file; the
    /// injector passes it this way, as a ConfigMap cannot be mounted across namespaces.
    #[arg(
        long,
        env = "SWITCHYARD_CA_PEM",
        value_name = "PEM",
        hide_env_values = true
    )]
    pub ca_pem: Option<String>,
    /// Managed mode: where the last good snapshot is persisted.
    #[arg(long, env = "SWITCHYARD_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Standalone mode: the namespace served (documents without one are in `default`).
    #[arg(long, env = "SWITCHYARD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Standalone mode: this pod's labels, matched against policies (`app=chatbot,tier=web`).
    #[arg(long, env = "SWITCHYARD_POD_LABELS", default_value = "", value_parser = parse_labels)]
    pub pod_labels: BTreeMap<String, String>,
    /// The largest request body accepted, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds of upstream silence after which a translated stream carries a keep-alive
    /// (an Anthropic `ping` event, an SSE comment in the other dialects).
    #[arg(long, env = "SWITCHYARD_KEEPALIVE_SECS", default_value_t = DEFAULT_KEEPALIVE_SECS)]
    pub keepalive_secs: u64,
    /// Threads serving requests. One (the default) runs every task on a single thread: a
    /// sidecar serves one pod, and a handoff between threads costs more than it buys at a
    /// pod's load. More spread the load over that many cores; `0` means one per core.
    #[arg(long, env = "SWITCHYARD_WORKERS", default_value_t = 1)]
    pub workers: usize,
}

/// The default keep-alive interval of translated streams (clients abort on long silence).
pub const DEFAULT_KEEPALIVE_SECS: u64 = 15;

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("label {pair:?} is not key=value"))?;
            if k.trim().is_empty() {
                return Err(format!("label {pair:?} has an empty key"));
            }
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_labels_parse_from_comma_separated_pairs() {
        let labels = parse_labels("app=chatbot, tier=web").expect("valid labels");
        assert_eq!(labels.get("app").map(String::as_str), Some("chatbot"));
        assert_eq!(labels.get("tier").map(String::as_str), Some("web"));
        assert!(parse_labels("").expect("empty is fine").is_empty());
        assert!(parse_labels("app").is_err());
    }
}
