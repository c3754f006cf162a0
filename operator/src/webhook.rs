//! The sidecar-injection admission webhook (HTTPS, `POST /inject`, AdmissionReview v1):
//! answers with the JSON patch of [`crate::inject::decide`]. [`crate::certs`] keeps the
//! `caBundle` of its MutatingWebhookConfiguration current.

use std::{collections::BTreeMap, sync::Arc};

use base64::Engine;
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use k8s_openapi::api::{
    admissionregistration::v1::MutatingWebhookConfiguration, core::v1::Namespace,
};
use kube::{
    api::{Patch, PatchParams},
    Api, Client, ResourceExt,
};
use serde_json::{json, Value};
use tokio::{net::TcpListener, sync::watch};

use crate::inject::{self, Decision};

/// What the webhook needs.
#[derive(Clone)]
pub struct Webhook {
    /// The API client (namespace labels).
    pub client: Client,
    /// What injected sidecars get (but the CA).
    pub settings: Arc<inject::Settings>,
    /// The CA bundle injected sidecars trust, as it rolls over.
    pub ca: watch::Receiver<String>,
}

/// Whether the API server runs native sidecars (1.29 and later).
pub async fn native_sidecars(client: &Client) -> bool {
    match client.apiserver_version().await {
        Ok(v) => {
            let minor: u32 = v.minor.trim_end_matches('+').parse().unwrap_or(0);
            v.major == "1" && minor >= 29 || v.major.parse::<u32>().unwrap_or(1) > 1
        }
        Err(e) => {
            tracing::warn!("server version unknown ({e}); injecting the pre-1.29 layout");
            false
        }
    }
}

/// Writes the CA bundle into the `caBundle` of MutatingWebhookConfiguration `name`, if it
/// exists and holds something else.
pub async fn patch_ca_bundle(client: &Client, name: &str, ca_pem: &str) {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let current = match api.get_opt(name).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::debug!("MutatingWebhookConfiguration {name} not found: nothing to patch");
            return;
        }
        Err(e) => {
            tracing::warn!("MutatingWebhookConfiguration {name} unreadable: {e}");
            return;
        }
    };
    let webhooks = current.webhooks.unwrap_or_default();
    if webhooks.iter().all(|w| {
        w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) == Some(ca_pem.as_bytes())
    }) {
        return;
    }
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let webhooks: Vec<Value> = webhooks
        .iter()
        .map(|w| json!({"name": w.name, "admissionReviewVersions": w.admission_review_versions, "sideEffects": w.side_effects, "clientConfig": {"caBundle": bundle}}))
        .collect();
    let patch = json!({"webhooks": webhooks});
    match api
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => tracing::info!("caBundle of {name} set"),
        Err(e) => tracing::warn!("caBundle of {name} not set: {e}"),
    }
}

/// Serves until `stop` fires.
pub async fn serve(
    webhook: Webhook,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    stop: watch::Receiver<bool>,
) {
    crate::https::serve(listener, tls, stop, move |req| handle(webhook.clone(), req)).await;
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("a valid header value"),
    );
    resp
}

async fn handle(webhook: Webhook, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let Ok(body) = Limited::new(req.into_body(), 8 * 1024 * 1024)
        .collect()
        .await
    else {
        return answer(StatusCode::BAD_REQUEST, json!({"error": "unreadable body"}));
    };
    let Ok(review) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "not an AdmissionReview"}),
        );
    };
    let request = &review["request"];
    let uid = request["uid"].clone();
    let namespace = request["namespace"].as_str().unwrap_or_default();
    let mut response = json!({"uid": uid, "allowed": true});
    if request.pointer("/kind/kind").and_then(Value::as_str) == Some("Pod")
        && request["operation"] == "CREATE"
    {
        let labels: BTreeMap<String, String> = match Api::<Namespace>::all(webhook.client.clone())
            .get_opt(namespace)
            .await
        {
            Ok(Some(ns)) => ns.labels().clone(),
            _ => BTreeMap::new(),
        };
        let mut settings = webhook.settings.clone();
        let ca = webhook.ca.borrow().clone();
        if settings.ca_pem != ca {
            Arc::make_mut(&mut settings).ca_pem = ca;
        }
        match inject::decide(&request["object"], namespace, &labels, &settings) {
            Decision::Inject(ops) => {
                let patch =
                    base64::engine::general_purpose::STANDARD.encode(Value::Array(ops).to_string());
                response["patchType"] = json!("JSONPatch");
                response["patch"] = json!(patch);
                tracing::info!(namespace, "sidecar injected");
            }
            Decision::Skip(why) => tracing::debug!(namespace, why, "not injected"),
            Decision::Refuse(why) => tracing::warn!(namespace, %why, "opted in but not injected"),
        }
    }
    answer(
        StatusCode::OK,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}
