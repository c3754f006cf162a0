//! The sidecar's side of the lease exchange with the operator (`POST /v1/leases` on the config
//! server, authenticated with the pod's projected token like the config stream): ask for
//! slices of shared limits, tell what this pod holds of each budget, and report settled spend
//! with ids (the operator counts each id once). Reports the operator has not acknowledged are
//! kept in the state directory, so they arrive after a restart too.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full};
pub use switchyard_crds::lease::{Exchange, Grant, Reply, Report, UsageBatch, Want};

use crate::managed;

/// The file unsent reports are kept in, under `--state-dir`.
pub const REPORTS_FILE: &str = "usage-reports.json";
/// How many replicas an exchange tries before it gives up on finding the leader.
const NON_LEADER_TRIES: usize = 3;
/// How long one exchange may take before the offline share is used.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long the pool trusts the CA it read before reading the file again to notice a
/// rotation (a failed exchange drops the pool, so the next one reads it at once).
const CA_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// Talks to the operator.
#[derive(Clone, Debug)]
pub struct Client {
    source: managed::Source,
    /// The connection pool exchanges go through, and the CA it was built to trust: kept
    /// while the CA stays the same, so an exchange reuses an open TLS connection.
    pool: Arc<Mutex<Option<Pool>>>,
}

/// An HTTPS client, the CA bundle it trusts, and when that was last read.
#[derive(Debug)]
struct Pool {
    ca: Option<Vec<u8>>,
    read: std::time::Instant,
    client: managed::OperatorClient<Full<Bytes>>,
}

impl Client {
    /// A client for the operator the config stream comes from.
    pub fn new(source: managed::Source) -> Self {
        Self {
            source,
            pool: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pool>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pooled client, or a new one when there is none or the CA changed (rotated). The
    /// CA file is read again at most every [`CA_FRESH`]: a call may bring an exchange.
    fn client(&self) -> Result<managed::OperatorClient<Full<Bytes>>, String> {
        if let Some(p) = self.lock().as_ref() {
            if p.read.elapsed() < CA_FRESH {
                return Ok(p.client.clone());
            }
        }
        let ca = managed::ca_pem(&self.source)?;
        let read = std::time::Instant::now();
        let mut pool = self.lock();
        if let Some(p) = pool.as_mut().filter(|p| p.ca == ca) {
            p.read = read;
            return Ok(p.client.clone());
        }
        let client = managed::client_trusting(ca.as_deref())?;
        *pool = Some(Pool {
            ca,
            read,
            client: client.clone(),
        });
        Ok(client)
    }

    /// Drops the pool: the next exchange opens a new connection (which the operator's
    /// Service may send to another replica).
    fn reconnect(&self) {
        self.lock().take();
    }

    fn reports_file(&self) -> Option<PathBuf> {
        self.source.state_dir.as_ref().map(|d| d.join(REPORTS_FILE))
    }

    /// Reports an earlier run could not send.
    pub fn unsent(&self) -> Vec<Report> {
        self.reports_file()
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Keeps `reports` for a later run (or removes the file when there are none).
    pub fn keep_unsent(&self, reports: &[Report]) {
        let Some(file) = self.reports_file() else {
            return;
        };
        let result = if reports.is_empty() {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec(reports).unwrap_or_default())
                .and_then(|()| std::fs::rename(&tmp, &file))
        };
        if let Err(e) = result {
            tracing::warn!(file = %file.display(), "usage reports not persisted: {e}");
        }
    }

    /// One exchange with the operator.
    pub async fn exchange(
        &self,
        want: &[Want],
        holdings: &[Want],
        reports: &[Report],
    ) -> Result<Reply, String> {
        self.exchange_all(want, holdings, reports, &[]).await
    }

    /// One exchange with the operator, usage batches included.
    pub async fn exchange_all(
        &self,
        want: &[Want],
        holdings: &[Want],
        reports: &[Report],
        usage: &[UsageBatch],
    ) -> Result<Reply, String> {
        let token = std::fs::read_to_string(&self.source.token_file)
            .map_err(|e| format!("token {}: {e}", self.source.token_file.display()))?;
        let body = Exchange {
            want: want.to_vec(),
            holdings: holdings.to_vec(),
            reports: reports.to_vec(),
            usage: usage.to_vec(),
        };
        let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?);
        let url = format!("{}/v1/leases", self.source.url.trim_end_matches('/'));
        // Only the leader grants; another replica forwards to it, and answers 503 when it
        // cannot. A try after a 503 or a failure is a new connection, which the operator's
        // Service may send to another replica; otherwise the open connection is reused.
        let mut last = String::new();
        for _ in 0..NON_LEADER_TRIES {
            let req = Request::post(&url)
                .header(header::AUTHORIZATION, format!("Bearer {}", token.trim()))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| e.to_string())?;
            let client = self.client()?;
            let answer = async {
                let resp = client.request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok::<_, String>((status, bytes))
            };
            let (status, bytes) = match tokio::time::timeout(TIMEOUT, answer).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => {
                    self.reconnect();
                    return Err(e);
                }
                Err(_) => {
                    self.reconnect();
                    return Err("the operator did not answer in time".to_string());
                }
            };
            if status == StatusCode::OK {
                return serde_json::from_slice(&bytes).map_err(|e| e.to_string());
            }
            self.reconnect();
            last = format!(
                "operator answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            );
            if status != StatusCode::SERVICE_UNAVAILABLE {
                break;
            }
        }
        Err(last)
    }
}
