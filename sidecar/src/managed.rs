//! Managed mode: the config comes from the operator's stream (`GET /v1/stream`, one JSON
//! object per line: `snapshot` or `heartbeat`) over TLS, authenticated with the pod's
//! projected ServiceAccount token. Every snapshot is persisted, so a restarted sidecar serves
//! at once while the operator is away; a lost stream is retried with backoff and jitter.

use std::{path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, Request, StatusCode};
use http_body_util::{BodyStream, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde::Deserialize;
use switchyard_crds::{proxy::SCHEMA_VERSION, ProxyConfig};
use tokio::sync::watch;

use crate::{reload, Shared};

/// A stream with no line for this long is considered dead.
const SILENCE: Duration = Duration::from_secs(45);
/// The first and the longest wait between reconnects.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));
/// The file the last good snapshot is kept in, under `--state-dir`.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// Where managed config comes from.
#[derive(Clone, Debug)]
pub struct Source {
    /// The operator's base URL (`https://switchyard-operator.switchyard-system.svc:8443`).
    pub url: String,
    /// The projected token (re-read on every connect: it rotates).
    pub token_file: PathBuf,
    /// The operator's CA certificate (PEM file); the public roots when absent.
    pub ca_file: Option<PathBuf>,
    /// The operator's CA certificate itself (PEM), preferred over `ca_file`.
    pub ca_pem: Option<String>,
    /// Where the last good snapshot is persisted.
    pub state_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    config: Option<ProxyConfig>,
}

/// The snapshot persisted by an earlier run, if any.
pub fn persisted(source: &Source) -> Option<ProxyConfig> {
    let path = source.state_dir.as_ref()?.join(SNAPSHOT_FILE);
    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<ProxyConfig>(&text) {
        Ok(c) if c.schema_version == SCHEMA_VERSION => Some(c),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), "persisted snapshot ignored: {e}");
            None
        }
    }
}

fn persist(source: &Source, config: &ProxyConfig) {
    let Some(dir) = &source.state_dir else { return };
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        std::io::Write::write_all(&mut f, &serde_json::to_vec(config).unwrap_or_default())?;
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))
    };
    if let Err(e) = write() {
        tracing::warn!(dir = %dir.display(), "snapshot not persisted: {e}");
    }
}

/// Resolves `apiKeyEnv` credentials from this process's environment; providers whose
/// variable is unset are left out (and their backends with them), and reported.
pub fn resolve_env_keys(config: &mut ProxyConfig) {
    let mut missing = Vec::new();
    for (name, p) in &mut config.providers {
        if let (None, Some(var)) = (&p.api_key, &p.api_key_env) {
            match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
                Some(v) => p.api_key = Some(switchyard_crds::proxy::SecretString::new(v.trim())),
                None => missing.push((name.clone(), var.clone())),
            }
        }
    }
    for (name, var) in missing {
        tracing::warn!(provider = %name, "left out: environment variable {var} is not set in the sidecar");
        config.providers.remove(&name);
    }
    for m in &mut config.models {
        m.backends
            .retain(|b| config.providers.contains_key(&b.provider));
    }
    config.models.retain(|m| !m.backends.is_empty());
}

/// Follows the operator's stream until `stop` fires.
pub async fn run(source: Source, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    loop {
        let outcome = tokio::select! {
            r = follow(&source, &shared) => r,
            _ = stop.changed() => return,
        };
        match outcome {
            Ok(()) => failures = 0,
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(operator = %source.url, "config stream lost: {e}");
            }
        }
        let base = BACKOFF
            .0
            .saturating_mul(2u32.saturating_pow(failures.min(8)))
            .min(BACKOFF.1);
        let wait = base.mul_f64(0.5 + fastrand::f64() / 2.0);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The operator's CA as configured (`None`: the system's roots), read afresh so a rotated CA
/// is picked up.
pub fn ca_pem(source: &Source) -> Result<Option<Vec<u8>>, String> {
    match (&source.ca_pem, &source.ca_file) {
        (Some(pem), _) => Ok(Some(pem.clone().into_bytes())),
        (None, Some(path)) => std::fs::read(path)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}

/// An HTTPS client to the operator.
pub type OperatorClient<B> =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, B>;

/// An HTTPS client that trusts the operator's CA.
pub fn client<B>(source: &Source) -> Result<OperatorClient<B>, String>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    client_trusting(ca_pem(source)?.as_deref())
}

/// An HTTPS client that trusts the CA certificates in `pem` (the system's roots if none).
pub fn client_trusting<B>(pem: Option<&[u8]>) -> Result<OperatorClient<B>, String>
where
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let builder = match pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|e| format!("CA certificate: {e}"))?)
                    .map_err(|e| e.to_string())?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
        None => builder.with_webpki_roots(),
    };
    let https = builder.https_only().enable_http1().build();
    // An idle connection is dropped before the operator's server would close it (hyper closes
    // an HTTP/1 connection idle for 30 s), so an exchange never meets one closing under it.
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(20))
        .build(https))
}

/// One connection: read snapshots until the stream ends or goes silent.
async fn follow(source: &Source, shared: &Shared) -> Result<(), String> {
    let token = std::fs::read_to_string(&source.token_file)
        .map_err(|e| format!("token {}: {e}", source.token_file.display()))?;
    let url = format!("{}/v1/stream", source.url.trim_end_matches('/'));
    let req = Request::get(&url)
        .header(header::AUTHORIZATION, format!("Bearer {}", token.trim()))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(SILENCE, client::<Empty<Bytes>>(source)?.request(req))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    if resp.status() != StatusCode::OK {
        return Err(format!("operator answered {}", resp.status()));
    }
    tracing::info!(operator = %source.url, "config stream connected");
    let mut body = BodyStream::new(resp.into_body());
    let mut buf = Vec::new();
    loop {
        let frame = tokio::time::timeout(SILENCE, body.next())
            .await
            .map_err(|_| "stream went silent".to_string())?;
        let Some(frame) = frame else { return Ok(()) };
        let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            apply(source, shared, &line);
        }
    }
}

fn apply(source: &Source, shared: &Shared, line: &[u8]) {
    let message: Message = match serde_json::from_slice(line) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("unreadable line from the operator: {e}");
            return;
        }
    };
    if message.kind != "snapshot" {
        return;
    }
    let Some(mut config) = message.config else {
        return;
    };
    if config.schema_version != SCHEMA_VERSION {
        tracing::error!(
            got = config.schema_version,
            want = SCHEMA_VERSION,
            "snapshot of another format rejected; the current config keeps serving"
        );
        return;
    }
    persist(source, &config);
    resolve_env_keys(&mut config);
    reload::install(shared, config);
}

/// Loads the persisted snapshot, if any, so the sidecar is ready before the operator answers.
pub fn restore(source: &Source, shared: &Shared) -> bool {
    let Some(mut config) = persisted(source) else {
        return false;
    };
    resolve_env_keys(&mut config);
    reload::install(shared, config);
    tracing::info!("serving the persisted snapshot until the operator answers");
    true
}
