//! Sidecar injection, as a pure decision: for a pod being created, whether it gets the
//! sidecar and, if so, the JSON patch that adds it. The admission webhook serves this.
//!
//! A pod is injected when its namespace is labelled `switchyard.dev/inject=enabled` or the pod
//! is labelled `switchyard.dev/inject: "true"`, unless it is labelled `"false"`, lives in the
//! operator's namespace or `kube-system`, or already has the sidecar. Labels, not annotations:
//! the webhook's namespace and object selectors then send the API server's calls only for
//! opted-in pods, so a fail-closed webhook can hold up nothing else. A pod that opted in but
//! would break with the sidecar (`hostNetwork`, or a container already using its ports) is
//! refused, and the operator says why in a Warning Event. On servers from 1.29
//! the sidecar is a native sidecar (an init container with `restartPolicy: Always`); on
//! older ones it is the first container, with a start-up hook that holds the app until the
//! sidecar is ready. Every app container gets `OPENAI_BASE_URL` and `ANTHROPIC_BASE_URL`
//! unless it sets them already.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// The sidecar container's name (also how a pod is recognised as injected).
pub const CONTAINER: &str = "switchyard-sidecar";
/// The namespace label that turns injection on.
pub const NAMESPACE_LABEL: &str = "switchyard.dev/inject";
/// The pod label that turns injection on (`"true"`) or off (`"false"`).
pub const POD_LABEL: &str = "switchyard.dev/inject";
/// Where the projected token is mounted.
pub const TOKEN_DIR: &str = "/var/run/secrets/switchyard.dev";
/// Where the snapshot is persisted.
pub const STATE_DIR: &str = "/var/lib/switchyard";

/// What the injected sidecar needs to know.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The sidecar image.
    pub image: String,
    /// The operator's config stream, `https://switchyard-operator.NS.svc:8443`.
    pub operator_url: String,
    /// The operator's CA certificate (PEM), passed in the environment: a ConfigMap cannot
    /// be mounted across namespaces.
    pub ca_pem: String,
    /// The operator's own namespace (never injected).
    pub operator_namespace: String,
    /// Whether the API server runs native sidecars (1.29 and later).
    pub native_sidecars: bool,
    /// The sidecar's `resources`.
    pub resources: Value,
    /// Extra environment of the sidecar (`[{name, value}]`, e.g. the `OTEL_*` variables).
    pub env: Value,
    /// The sidecar's data port on the pod's loopback.
    pub port: u16,
    /// The sidecar's admin port (probes).
    pub admin_port: u16,
}

/// The outcome for one pod.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Left alone, and why.
    Skip(&'static str),
    /// Opted in, but the sidecar would break the pod (or the node): left alone, and why.
    Refuse(String),
    /// The JSON patch (RFC 6902) operations that inject it.
    Inject(Vec<Value>),
}

/// Decides for `pod` (as the admission request carries it) in `namespace`.
pub fn decide(
    pod: &Value,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    s: &Settings,
) -> Decision {
    if let Some(why) = skipped(pod, namespace, namespace_labels, s) {
        return Decision::Skip(why);
    }
    if let Some(why) = refused(&pod["spec"], s) {
        return Decision::Refuse(why);
    }
    let spec = &pod["spec"];
    let mut ops = app_env(spec, s);
    // A projected token needs a ServiceAccount; name the one the ServiceAccount admission
    // plugin would assign, in case it has not run (or is off).
    if spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .is_none()
    {
        ops.push(json!({"op": "add", "path": "/spec/serviceAccountName", "value": "default"}));
    }
    let volumes = [
        json!({"name": "switchyard-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "switchyard", "expirationSeconds": 3600, "path": "token"}}]}}),
        json!({"name": "switchyard-state", "emptyDir": {}}),
    ];
    ops.extend(appended(spec, "/spec", "volumes", volumes.to_vec()));
    let (list, container) = if s.native_sidecars {
        let mut c = container(s);
        c["restartPolicy"] = json!("Always");
        ("initContainers", c)
    } else {
        let mut c = container(s);
        c["lifecycle"] =
            json!({"postStart": {"exec": {"command": ["/switchyard-sidecar", "wait-ready"]}}});
        ("containers", c)
    };
    if spec.get(list).is_some_and(Value::is_array) {
        ops.push(json!({"op": "add", "path": format!("/spec/{list}/0"), "value": container}));
    } else {
        ops.push(json!({"op": "add", "path": format!("/spec/{list}"), "value": [container]}));
    }
    if pod
        .pointer("/metadata/annotations")
        .is_some_and(Value::is_object)
    {
        ops.push(json!({"op": "add", "path": "/metadata/annotations/switchyard.dev~1injected", "value": "true"}));
    } else {
        ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {"switchyard.dev/injected": "true"}}));
    }
    Decision::Inject(ops)
}

/// Why a pod is left alone: a system namespace, opted out, not opted in, or injected already.
fn skipped(
    pod: &Value,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    s: &Settings,
) -> Option<&'static str> {
    if namespace == s.operator_namespace || namespace == "kube-system" {
        return Some("system namespace");
    }
    let label = pod
        .pointer("/metadata/labels")
        .and_then(|a| a.get(POD_LABEL))
        .and_then(Value::as_str);
    if label == Some("false") {
        return Some("opted out");
    }
    let enabled = label == Some("true")
        || namespace_labels.get(NAMESPACE_LABEL).map(String::as_str) == Some("enabled");
    if !enabled {
        return Some("not selected");
    }
    all_containers(&pod["spec"])
        .any(|c| c["name"] == CONTAINER)
        .then_some("already injected")
}

/// The app containers and the init containers of a pod spec.
fn all_containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers"]
        .into_iter()
        .filter_map(|k| spec.get(k).and_then(Value::as_array))
        .flatten()
}

/// Why an opted-in pod cannot take the sidecar: it shares the node's network, or one of its
/// containers already uses the sidecar's ports.
fn refused(spec: &Value, s: &Settings) -> Option<String> {
    if spec["hostNetwork"] == Value::Bool(true) {
        return Some(format!(
            "hostNetwork pods share the node's network: the sidecar's ports {} and {} would clash with other pods on the node and expose its admin port there",
            s.port, s.admin_port
        ));
    }
    let (c, p) = all_containers(spec)
        .flat_map(|c| {
            c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |p| (c, p))
        })
        .find(|(_, p)| {
            p["containerPort"]
                .as_u64()
                .is_some_and(|n| n == u64::from(s.port) || n == u64::from(s.admin_port))
        })?;
    Some(format!(
        "container {} already uses port {}, which the sidecar needs",
        c["name"].as_str().unwrap_or("?"),
        p["containerPort"]
    ))
}

/// The operations that give every app container the base URLs it does not set itself (made
/// first, while container indices are still the pod's own).
fn app_env(spec: &Value, s: &Settings) -> Vec<Value> {
    let wanted = [
        ("OPENAI_BASE_URL", format!("http://127.0.0.1:{}/v1", s.port)),
        ("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", s.port)),
    ];
    let mut ops = Vec::new();
    for (i, c) in spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let present: Vec<&str> = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str())
            .collect();
        let missing: Vec<Value> = wanted
            .iter()
            .filter(|(k, _)| !present.contains(k))
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        if !missing.is_empty() {
            ops.extend(appended(
                c,
                &format!("/spec/containers/{i}"),
                "env",
                missing,
            ));
        }
    }
    ops
}

/// The operations that add `items` to the list `field` of `parent` (at `path`): one per
/// item when the list exists, else one that creates it.
fn appended(parent: &Value, path: &str, field: &str, items: Vec<Value>) -> Vec<Value> {
    if parent.get(field).is_some_and(Value::is_array) {
        items
            .into_iter()
            .map(|v| json!({"op": "add", "path": format!("{path}/{field}/-"), "value": v}))
            .collect()
    } else {
        vec![json!({"op": "add", "path": format!("{path}/{field}"), "value": items})]
    }
}

fn container(s: &Settings) -> Value {
    let mut env = vec![
        json!({"name": "SWITCHYARD_OPERATOR_URL", "value": s.operator_url}),
        json!({"name": "SWITCHYARD_TOKEN_FILE", "value": format!("{TOKEN_DIR}/token")}),
        json!({"name": "SWITCHYARD_CA_PEM", "value": s.ca_pem}),
        json!({"name": "SWITCHYARD_STATE_DIR", "value": STATE_DIR}),
        json!({"name": "SWITCHYARD_LISTEN", "value": format!("127.0.0.1:{}", s.port)}),
        json!({"name": "SWITCHYARD_ADMIN_LISTEN", "value": format!("0.0.0.0:{}", s.admin_port)}),
        // The pod and its namespace, for the traces' resource attributes.
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        json!({"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
    ];
    env.extend(s.env.as_array().into_iter().flatten().cloned());
    json!({
        "name": CONTAINER,
        "image": s.image,
        "env": env,
        "ports": [{"name": "sy-admin", "containerPort": s.admin_port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": s.admin_port}, "periodSeconds": 2, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": s.admin_port}, "periodSeconds": 10, "failureThreshold": 3},
        "resources": s.resources,
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 65532, "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "switchyard-token", "mountPath": TOKEN_DIR, "readOnly": true},
            {"name": "switchyard-state", "mountPath": STATE_DIR},
        ],
    })
}

#[cfg(test)]
mod tests;
