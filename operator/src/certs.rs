//! The TLS of the operator's two HTTPS servers (config stream, webhook).
//!
//! By default the operator runs its own small PKI. The CA lives in Secret `switchyard-ca`,
//! shared by every replica; what sidecars and the API server must trust is published as the
//! CA bundle: ConfigMap `switchyard-ca` (`ca.crt`) and the injector's `caBundle`. Each
//! replica issues itself a short-lived serving certificate covering the Service names,
//! `localhost`, `127.0.0.1` and `--tls-san`, renews it when two thirds of its life have
//! passed and swaps it under the running servers. The CA rolls over without breaking anyone
//! who trusts the bundle: with a third of its life left a successor is created and published
//! beside it (`next.crt`, `next.key`); with a sixth left the successor starts signing and the
//! old CA stays published (`previous.crt`) until it expires.
//!
//! With `--tls-dir` the certificates come from elsewhere (cert-manager writes `tls.crt`,
//! `tls.key` and `ca.crt` into a mounted Secret): the operator re-reads them when they
//! change, publishes `ca.crt` in the ConfigMap and leaves `caBundle` to cert-manager's CA
//! injector.

use std::{
    path::PathBuf,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client,
};
use rcgen::SanType;
use rustls::{
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::settings::SERVICE;
use pki::Authorities;

/// The Secret holding the CA, and the ConfigMap publishing the CA bundle.
pub const CA_NAME: &str = "switchyard-ca";

/// Why the certificates could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Key or certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The API server refused.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The stored CA is unusable.
    #[error("Secret {CA_NAME} holds no usable CA: {0}")]
    Stored(String),
    /// The mounted certificate is unusable.
    #[error("{0}")]
    Files(String),
    /// rustls refused the certificate.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum Mode {
    /// The operator's own CA, with these lifetimes.
    Own {
        /// A CA's lifetime.
        ca: Duration,
        /// A serving certificate's lifetime.
        serving: Duration,
    },
    /// `tls.crt`, `tls.key` and `ca.crt` in this directory, kept current by someone else.
    Files(PathBuf),
}

/// What the servers need.
pub struct Tls {
    /// The serving configuration; its certificate is swapped on renewal.
    pub server: Arc<rustls::ServerConfig>,
    /// The CA bundle (PEM, one or more certificates), as it changes.
    pub bundle: watch::Receiver<String>,
}

/// Hands every TLS handshake the current serving certificate.
#[derive(Debug, Default)]
struct Resolver(RwLock<Option<Arc<CertifiedKey>>>);

impl Resolver {
    fn set(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(key));
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Sets up the serving certificate and keeps it, the CA bundle, ConfigMap `switchyard-ca`
/// and (own CA only) the `caBundle` of MutatingWebhookConfiguration `webhook` current until
/// `stop` fires.
pub async fn start(
    client: &Client,
    namespace: &str,
    extra_sans: &[String],
    mode: Mode,
    webhook: &str,
    mut stop: watch::Receiver<bool>,
) -> Result<Tls, CertError> {
    let resolver = Arc::new(Resolver::default());
    let (mut source, every) = match mode {
        Mode::Own { ca, serving } => (
            Source::Own(Box::new(Own {
                secrets: Api::namespaced(client.clone(), namespace),
                ca_life: ca,
                serving_life: serving,
                names: serving_names(namespace, extra_sans),
                serving: None,
            })),
            (serving / 10)
                .min(ca / 30)
                .clamp(Duration::from_millis(100), Duration::from_secs(10)),
        ),
        Mode::Files(dir) => (Source::Files { dir, seen: None }, Duration::from_secs(2)),
    };
    let bundle = source.refresh(&resolver).await?;
    let publisher = Publisher {
        config_maps: Api::namespaced(client.clone(), namespace),
        client: client.clone(),
        webhook: matches!(source, Source::Own(_)).then(|| webhook.to_string()),
    };
    publisher.publish(&bundle).await;
    let (tx, rx) = watch::channel(bundle);
    let cert_resolver: Arc<dyn ResolvesServerCert> = resolver.clone();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_cert_resolver(cert_resolver);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            match source.refresh(&resolver).await {
                Ok(bundle) => {
                    // Checked every time: someone (a GitOps sync, say) may have reset them.
                    publisher.publish(&bundle).await;
                    tx.send_if_modified(|b| {
                        let changed = *b != bundle;
                        *b = bundle;
                        changed
                    });
                }
                Err(e) => tracing::warn!("certificates not refreshed: {e}"),
            }
        }
    });
    Ok(Tls {
        server: Arc::new(server),
        bundle: rx,
    })
}

/// The names a serving certificate covers.
fn serving_names(namespace: &str, extra: &[String]) -> Vec<SanType> {
    let mut names: Vec<String> = vec![
        SERVICE.to_string(),
        format!("{SERVICE}.{namespace}"),
        format!("{SERVICE}.{namespace}.svc"),
        format!("{SERVICE}.{namespace}.svc.cluster.local"),
        "localhost".into(),
    ];
    let mut ips = vec![std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)];
    for s in extra {
        match s.parse::<std::net::IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => names.push(s.clone()),
        }
    }
    names
        .into_iter()
        .filter_map(|n| n.try_into().ok().map(SanType::DnsName))
        .chain(ips.into_iter().map(SanType::IpAddress))
        .collect()
}

enum Source {
    Own(Box<Own>),
    Files {
        dir: PathBuf,
        seen: Option<[Vec<u8>; 3]>,
    },
}

impl Source {
    /// Brings the serving certificate up to date; returns the CA bundle.
    async fn refresh(&mut self, resolver: &Resolver) -> Result<String, CertError> {
        match self {
            Source::Own(own) => own.refresh(resolver).await,
            Source::Files { dir, seen } => {
                let read = |name: &str| {
                    let path = dir.join(name);
                    std::fs::read(&path)
                        .map_err(|e| CertError::Files(format!("{}: {e}", path.display())))
                };
                let files = [read("tls.crt")?, read("tls.key")?, read("ca.crt")?];
                if seen.as_ref() != Some(&files) {
                    let chain = CertificateDer::pem_slice_iter(&files[0])
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| CertError::Files(format!("tls.crt: {e}")))?;
                    if chain.is_empty() {
                        return Err(CertError::Files("tls.crt holds no certificate".into()));
                    }
                    let key = PrivateKeyDer::from_pem_slice(&files[1])
                        .map_err(|e| CertError::Files(format!("tls.key: {e}")))?;
                    resolver.set(CertifiedKey::from_der(
                        chain,
                        key,
                        &rustls::crypto::ring::default_provider(),
                    )?);
                    tracing::info!(dir = %dir.display(), "serving certificate loaded");
                    *seen = Some(files.clone());
                }
                String::from_utf8(files[2].clone())
                    .map_err(|_| CertError::Files("ca.crt is not PEM text".into()))
            }
        }
    }
}

/// The operator's own PKI, as one replica sees it.
struct Own {
    secrets: Api<Secret>,
    ca_life: Duration,
    serving_life: Duration,
    names: Vec<SanType>,
    /// The CA certificate that issued the current serving certificate, and when to renew it.
    serving: Option<(String, OffsetDateTime)>,
}

impl Own {
    async fn refresh(&mut self, resolver: &Resolver) -> Result<String, CertError> {
        let now = OffsetDateTime::now_utc();
        let mut attempts = 0;
        let cas = loop {
            let (mut cas, version) = match self.secrets.get_opt(CA_NAME).await? {
                Some(s) => (Authorities::from_secret(&s)?, s.metadata.resource_version),
                None => (Authorities::new(now, self.ca_life)?, None),
            };
            let mut steps = Vec::new();
            while let Some(step) = cas.roll(now, self.ca_life)? {
                steps.push(step);
            }
            if steps.is_empty() && version.is_some() {
                break cas;
            }
            if version.is_none() {
                steps.push("CA created");
            }
            let secret = cas.to_secret(version.clone());
            let written = match version {
                None => self.secrets.create(&PostParams::default(), &secret).await,
                Some(_) => {
                    self.secrets
                        .replace(CA_NAME, &PostParams::default(), &secret)
                        .await
                }
            };
            match written {
                Ok(_) => {
                    for step in steps {
                        tracing::info!("{step}");
                    }
                    break cas;
                }
                // Another replica wrote first: start over from what it wrote.
                Err(kube::Error::Api(e)) if e.code == 409 && attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        let due = self
            .serving
            .as_ref()
            .is_none_or(|(issuer, renew_at)| *issuer != cas.current.cert || now >= *renew_at);
        if due {
            let (key, renew_at) = cas.current.issue(&self.names, now, self.serving_life)?;
            resolver.set(key);
            tracing::info!(
                renewal_in_seconds = (renew_at - now).whole_seconds(),
                "serving certificate issued"
            );
            self.serving = Some((cas.current.cert.clone(), renew_at));
        }
        cas.bundle(now)
    }
}

/// Writes the CA bundle where sidecars and the API server read it.
struct Publisher {
    config_maps: Api<ConfigMap>,
    client: Client,
    /// The MutatingWebhookConfiguration whose `caBundle` this operator owns, if it does.
    webhook: Option<String>,
}

impl Publisher {
    async fn publish(&self, bundle: &str) {
        let current = self.config_maps.get_opt(CA_NAME).await;
        let stale = match &current {
            Ok(Some(cm)) => {
                cm.data
                    .as_ref()
                    .and_then(|d| d.get("ca.crt"))
                    .map(String::as_str)
                    != Some(bundle)
            }
            Ok(None) => true,
            Err(e) => {
                tracing::warn!("ConfigMap {CA_NAME} unreadable: {e}");
                true
            }
        };
        if stale {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CA_NAME}, "data": {"ca.crt": bundle}});
            match self
                .config_maps
                .patch(
                    CA_NAME,
                    &PatchParams::apply(crate::reconcile::MANAGER).force(),
                    &Patch::Apply(&cm),
                )
                .await
            {
                Ok(_) => tracing::info!("ConfigMap {CA_NAME} holds the current CA bundle"),
                Err(e) => tracing::warn!("ConfigMap {CA_NAME} not written: {e}"),
            }
        }
        if let Some(name) = &self.webhook {
            crate::webhook::patch_ca_bundle(&self.client, name, bundle).await;
        }
    }
}

mod pki;
#[cfg(test)]
mod tests;
