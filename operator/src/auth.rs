//! Who is calling: a sidecar's projected ServiceAccount token, verified by the API server
//! (TokenReview, audience `switchyard`), names its pod; the pod must exist in the cache
//! with the same UID.

use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::{api::PostParams, Api, Client};
use serde_json::Value;

use crate::settings::AUDIENCE;

/// A caller the API server vouched for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodIdentity {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's UID.
    pub uid: String,
}

/// Why a caller is refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No bearer token.
    #[error("missing bearer token")]
    Missing,
    /// The API server did not authenticate the token for our audience.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// The token is valid but bound to no pod.
    #[error("token is not bound to a pod")]
    NotPodBound,
    /// TokenReview itself failed.
    #[error("token review failed: {0}")]
    Review(#[from] kube::Error),
}

/// Verifies `token` with a TokenReview and reads the pod it is bound to.
pub async fn authenticate(client: &Client, token: &str) -> Result<PodIdentity, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: Some(vec![AUDIENCE.to_string()]),
        },
        ..TokenReview::default()
    };
    let api: Api<TokenReview> = Api::all(client.clone());
    let result = api.create(&PostParams::default(), &review).await?;
    let status = result.status.unwrap_or_default();
    if status.authenticated != Some(true) {
        return Err(AuthError::Rejected(
            status.error.unwrap_or_else(|| "not authenticated".into()),
        ));
    }
    if !status
        .audiences
        .unwrap_or_default()
        .iter()
        .any(|a| a == AUDIENCE)
    {
        return Err(AuthError::Rejected(format!("audience {AUDIENCE} missing")));
    }
    let username = status.user.and_then(|u| u.username).unwrap_or_default();
    let sa_namespace = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split(':').next())
        .ok_or(AuthError::NotPodBound)?;
    // The API server verified the token; its claims name the pod it is bound to.
    let claims = claims(token).ok_or(AuthError::NotPodBound)?;
    let k8s = &claims["kubernetes.io"];
    let namespace = k8s["namespace"].as_str().ok_or(AuthError::NotPodBound)?;
    let pod = &k8s["pod"];
    let (Some(name), Some(uid)) = (pod["name"].as_str(), pod["uid"].as_str()) else {
        return Err(AuthError::NotPodBound);
    };
    if namespace != sa_namespace {
        return Err(AuthError::Rejected("token namespace mismatch".into()));
    }
    Ok(PodIdentity {
        namespace: namespace.into(),
        name: name.into(),
        uid: uid.into(),
    })
}

/// The (already verified) JWT's claims.
fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_claims_are_read_from_a_bound_token() {
        let payload = serde_json::json!({"aud": ["switchyard"], "kubernetes.io": {"namespace": "team-a", "pod": {"name": "web-1", "uid": "u-1"}, "serviceaccount": {"name": "default", "uid": "s-1"}}});
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = format!(
            "{}.{}.sig",
            b64(b"{\"alg\":\"RS256\"}"),
            b64(payload.to_string().as_bytes())
        );
        let c = claims(&token).expect("claims");
        assert_eq!(c["kubernetes.io"]["pod"]["name"], "web-1");
        assert!(claims("not-a-jwt").is_none());
    }
}
