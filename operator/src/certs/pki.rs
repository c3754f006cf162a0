//! The operator's own PKI, pure: CAs made and rolled over, serving certificates issued,
//! bundles and Secrets written and read. No API calls and no clock of its own (every step
//! takes `now`), so every roll-over step is tested without waiting.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::ObjectMeta, ByteString,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::{pki_types::PrivateKeyDer, sign::CertifiedKey};
use time::OffsetDateTime;

use super::{CertError, CA_NAME};
use crate::settings::SERVICE;

/// A CA: its certificate and key, PEM.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Authority {
    pub(super) cert: String,
    pub(super) key: String,
}

/// How far back certificates are dated, for clocks a little behind ours.
pub(super) const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// When a certificate starts and stops being valid.
pub(super) fn validity(pem: &str) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
    let bad = |e: String| CertError::Stored(format!("unreadable certificate: {e}"));
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| bad(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| bad(e.to_string()))?;
    let at = |t: x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|e| bad(e.to_string()))
    };
    Ok((
        at(cert.validity().not_before)?,
        at(cert.validity().not_after)?,
    ))
}

impl Authority {
    /// A new self-signed CA valid from `now` for `life`.
    pub(super) fn create(now: OffsetDateTime, life: Duration) -> Result<Authority, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        // Names differ between generations, so that a bundle never holds two CAs that look
        // alike to a verifier.
        dn.push(
            DnType::CommonName,
            format!("switchyard-operator-ca-{}", now.unix_timestamp()),
        );
        dn.push(DnType::OrganizationName, "switchyard.dev");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + life;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// A serving certificate for `names`, valid for `life` but never beyond this CA; and
    /// when to renew it (two thirds of the way).
    pub(super) fn issue(
        &self,
        names: &[SanType],
        now: OffsetDateTime,
        life: Duration,
    ) -> Result<(CertifiedKey, OffsetDateTime), CertError> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert, KeyPair::from_pem(&self.key)?)?;
        let mut params = CertificateParams::default();
        params.subject_alt_names = names.to_vec();
        params.distinguished_name.push(DnType::CommonName, SERVICE);
        params.not_before = now - CLOCK_SKEW;
        params.not_after = (now + life).min(validity(&self.cert)?.1);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        let certified = CertifiedKey::from_der(
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| CertError::Stored(e.into()))?,
            &rustls::crypto::ring::default_provider(),
        )?;
        Ok((certified, now + (params.not_after - now) * 2 / 3))
    }
}

/// The CAs kept in Secret `switchyard-ca`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Authorities {
    /// Signs serving certificates (`tls.crt`, `tls.key`).
    pub(super) current: Authority,
    /// Published, not signing yet (`next.crt`, `next.key`).
    pub(super) next: Option<Authority>,
    /// Retired, published until it expires (`previous.crt`).
    pub(super) previous: Option<String>,
}

impl Authorities {
    pub(super) fn new(now: OffsetDateTime, life: Duration) -> Result<Authorities, CertError> {
        Ok(Authorities {
            current: Authority::create(now, life)?,
            next: None,
            previous: None,
        })
    }

    /// One step of the roll-over due at `now`, if any, and what it was.
    pub(super) fn roll(
        &mut self,
        now: OffsetDateTime,
        life: Duration,
    ) -> Result<Option<&'static str>, CertError> {
        if let Some(previous) = &self.previous {
            if validity(previous)?.1 <= now {
                self.previous = None;
                return Ok(Some("expired CA removed from the bundle"));
            }
        }
        let (from, until) = validity(&self.current.cert)?;
        let (left, life_of_current) = (until - now, until - (from + CLOCK_SKEW));
        if self.next.is_none() && left < life_of_current / 3 {
            self.next = Some(Authority::create(now, life)?);
            return Ok(Some("successor CA published"));
        }
        if self.next.is_some() && left < life_of_current / 6 {
            if let Some(next) = self.next.take() {
                let old = std::mem::replace(&mut self.current, next);
                self.previous = Some(old.cert);
                return Ok(Some(
                    "successor CA now signs; the old one stays published until it expires",
                ));
            }
        }
        Ok(None)
    }

    /// Every certificate still to be trusted, oldest first (so that replicas agree on the
    /// text whatever their roles).
    pub(super) fn bundle(&self, now: OffsetDateTime) -> Result<String, CertError> {
        let mut certs = Vec::new();
        for pem in std::iter::once(&self.current.cert)
            .chain(self.next.as_ref().map(|n| &n.cert))
            .chain(self.previous.as_ref())
        {
            let (from, until) = validity(pem)?;
            if until > now {
                certs.push((from, pem.trim_end()));
            }
        }
        certs.sort();
        Ok(certs.iter().map(|(_, pem)| format!("{pem}\n")).collect())
    }

    pub(super) fn from_secret(s: &Secret) -> Result<Authorities, CertError> {
        let data = s.data.clone().unwrap_or_default();
        let get = |k: &str| {
            data.get(k)
                .map(|b| {
                    String::from_utf8(b.0.clone())
                        .map_err(|_| CertError::Stored(format!("{k} is not PEM text")))
                })
                .transpose()
        };
        let current = Authority {
            cert: get("tls.crt")?.ok_or_else(|| CertError::Stored("missing tls.crt".into()))?,
            key: get("tls.key")?.ok_or_else(|| CertError::Stored("missing tls.key".into()))?,
        };
        let next = match (get("next.crt")?, get("next.key")?) {
            (Some(cert), Some(key)) => Some(Authority { cert, key }),
            _ => None,
        };
        Ok(Authorities {
            current,
            next,
            previous: get("previous.crt")?,
        })
    }

    pub(super) fn to_secret(&self, resource_version: Option<String>) -> Secret {
        let mut data = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
        };
        put("tls.crt", &self.current.cert);
        put("tls.key", &self.current.key);
        if let Some(next) = &self.next {
            put("next.crt", &next.cert);
            put("next.key", &next.key);
        }
        if let Some(previous) = &self.previous {
            put("previous.crt", previous);
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(CA_NAME.into()),
                resource_version,
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(data),
            ..Secret::default()
        }
    }
}
