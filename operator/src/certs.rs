//! The operator's own PKI: a CA kept in Secret `switchyard-ca` (shared by every replica),
//! published as ConfigMap `switchyard-ca` (`ca.crt`) for sidecars, and a serving certificate
//! per replica covering the Service names, `localhost`, `127.0.0.1` and `--tls-san`.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Secret},
    ByteString,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::json;

use crate::settings::SERVICE;

/// The Secret holding the CA, and the ConfigMap publishing its certificate.
pub const CA_NAME: &str = "switchyard-ca";

/// Why the PKI could not be set up.
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
    /// rustls refused the certificate.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// What the servers need.
pub struct Tls {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The serving configuration.
    pub server: Arc<rustls::ServerConfig>,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "switchyard-operator-ca");
    dn.push(DnType::OrganizationName, "switchyard.dev");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    Ok(params)
}

/// Loads or creates the CA, publishes it, and issues this replica's serving certificate.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    extra_sans: &[String],
) -> Result<Tls, CertError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let (ca_pem, ca_key_pem) = match secrets.get_opt(CA_NAME).await? {
        Some(s) => stored(&s)?,
        None => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(CA_NAME.into()),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/tls".into()),
                data: Some(BTreeMap::from([
                    (
                        "tls.crt".to_string(),
                        ByteString(cert_pem.clone().into_bytes()),
                    ),
                    (
                        "tls.key".to_string(),
                        ByteString(key_pem.clone().into_bytes()),
                    ),
                ])),
                ..Default::default()
            };
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => (cert_pem, key_pem),
                // Another replica won the race: use its CA.
                Err(kube::Error::Api(e)) if e.code == 409 => stored(&secrets.get(CA_NAME).await?)?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CA_NAME}, "data": {"ca.crt": ca_pem}});
    config_maps
        .patch(
            CA_NAME,
            &PatchParams::apply(crate::reconcile::MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut names = vec![
        SERVICE.to_string(),
        format!("{SERVICE}.{namespace}"),
        format!("{SERVICE}.{namespace}.svc"),
        format!("{SERVICE}.{namespace}.svc.cluster.local"),
        "localhost".into(),
    ];
    names.extend(
        extra_sans
            .iter()
            .filter(|s| s.parse::<std::net::IpAddr>().is_err())
            .cloned(),
    );
    let mut params = CertificateParams::new(names)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    for ip in extra_sans
        .iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
    {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.distinguished_name.push(DnType::CommonName, SERVICE);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| CertError::Stored(e.to_string()))?,
        )?;
    Ok(Tls {
        ca_pem,
        server: Arc::new(server),
    })
}

fn stored(s: &Secret) -> Result<(String, String), CertError> {
    let get = |k: &str| {
        s.data
            .as_ref()
            .and_then(|d| d.get(k))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .ok_or_else(|| CertError::Stored(format!("missing {k}")))
    };
    Ok((get("tls.crt")?, get("tls.key")?))
}
