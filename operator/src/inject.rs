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
    if namespace == s.operator_namespace || namespace == "kube-system" {
        return Decision::Skip("system namespace");
    }
    let label = pod
        .pointer("/metadata/labels")
        .and_then(|a| a.get(POD_LABEL))
        .and_then(Value::as_str);
    if label == Some("false") {
        return Decision::Skip("opted out");
    }
    let enabled = label == Some("true")
        || namespace_labels.get(NAMESPACE_LABEL).map(String::as_str) == Some("enabled");
    if !enabled {
        return Decision::Skip("not selected");
    }
    let spec = &pod["spec"];
    let all_containers = || {
        ["containers", "initContainers"]
            .into_iter()
            .filter_map(|k| spec.get(k).and_then(Value::as_array))
            .flatten()
    };
    if all_containers().any(|c| c["name"] == CONTAINER) {
        return Decision::Skip("already injected");
    }
    if spec["hostNetwork"] == Value::Bool(true) {
        return Decision::Refuse(format!(
            "hostNetwork pods share the node's network: the sidecar's ports {} and {} would clash with other pods on the node and expose its admin port there",
            s.port, s.admin_port
        ));
    }
    let taken = all_containers()
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
        });
    if let Some((c, p)) = taken {
        return Decision::Refuse(format!(
            "container {} already uses port {}, which the sidecar needs",
            c["name"].as_str().unwrap_or("?"),
            p["containerPort"]
        ));
    }
    let mut ops = Vec::new();
    // App env first, while container indices are still the pod's own.
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
        let wanted = [
            ("OPENAI_BASE_URL", format!("http://127.0.0.1:{}/v1", s.port)),
            ("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", s.port)),
        ];
        let missing: Vec<Value> = wanted
            .iter()
            .filter(|(k, _)| !present.contains(k))
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        if missing.is_empty() {
            continue;
        }
        if c.get("env").is_some_and(Value::is_array) {
            ops.extend(missing.into_iter().map(
                |e| json!({"op": "add", "path": format!("/spec/containers/{i}/env/-"), "value": e}),
            ));
        } else {
            ops.push(
                json!({"op": "add", "path": format!("/spec/containers/{i}/env"), "value": missing}),
            );
        }
    }
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
    if spec.get("volumes").is_some_and(Value::is_array) {
        ops.extend(
            volumes
                .into_iter()
                .map(|v| json!({"op": "add", "path": "/spec/volumes/-", "value": v})),
        );
    } else {
        ops.push(json!({"op": "add", "path": "/spec/volumes", "value": volumes}));
    }
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
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn settings(native: bool) -> Settings {
        Settings {
            image: "switchyard/sidecar:test".into(),
            operator_url: "https://switchyard-operator.switchyard-system.svc:8443".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----".into(),
            operator_namespace: "switchyard-system".into(),
            native_sidecars: native,
            resources: json!({"requests": {"cpu": "10m", "memory": "16Mi"}}),
            env: json!([{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://collector:4318"}]),
            port: 4000,
            admin_port: 4001,
        }
    }

    fn labelled() -> BTreeMap<String, String> {
        BTreeMap::from([(NAMESPACE_LABEL.to_string(), "enabled".to_string())])
    }

    fn apply(pod: &Value, ops: &[Value]) -> Value {
        let mut out = pod.clone();
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops.to_vec())).unwrap();
        json_patch::patch(&mut out, &patch).unwrap();
        out
    }

    fn env(c: &Value, name: &str) -> Option<String> {
        c["env"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str().map(str::to_string))
    }

    fn app_pod() -> Value {
        json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}})
    }

    fn injected(pod: &Value, ns: &str, labels: &BTreeMap<String, String>, native: bool) -> Value {
        match decide(pod, ns, labels, &settings(native)) {
            Decision::Inject(ops) => apply(pod, &ops),
            Decision::Skip(why) => panic!("not injected: {why}"),
            Decision::Refuse(why) => panic!("refused: {why}"),
        }
    }

    #[test]
    fn a_labelled_namespace_gets_a_native_sidecar_with_token_state_and_probes() {
        let pod = injected(&app_pod(), "team-a", &labelled(), true);
        let side = &pod["spec"]["initContainers"][0];
        assert_eq!(side["name"], CONTAINER);
        assert_eq!(side["restartPolicy"], "Always");
        assert_eq!(side["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(side["livenessProbe"]["httpGet"]["port"], 4001);
        assert_eq!(side["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            env(side, "OTEL_EXPORTER_OTLP_ENDPOINT").as_deref(),
            Some("http://collector:4318"),
            "the chart's sidecar.env reaches every sidecar"
        );
        let pod_name = side["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "POD_NAME")
            .unwrap();
        assert_eq!(
            pod_name["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        assert_eq!(
            env(side, "SWITCHYARD_TOKEN_FILE").as_deref(),
            Some("/var/run/secrets/switchyard.dev/token")
        );
        assert_eq!(
            pod["spec"]["serviceAccountName"], "default",
            "a projected token needs a ServiceAccount"
        );
        let mut port_names = side["ports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str());
        assert!(
            port_names.all(|n| n.len() <= 15),
            "Kubernetes caps port names at 15 characters"
        );
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        let token = volumes
            .iter()
            .find(|v| v["name"] == "switchyard-token")
            .unwrap();
        assert_eq!(
            token["projected"]["sources"][0]["serviceAccountToken"]["audience"],
            "switchyard"
        );
        assert!(volumes
            .iter()
            .any(|v| v["name"] == "switchyard-state" && v["emptyDir"].is_object()));
        let app = &pod["spec"]["containers"][0];
        assert_eq!(
            env(app, "OPENAI_BASE_URL").as_deref(),
            Some("http://127.0.0.1:4000/v1")
        );
        assert_eq!(
            env(app, "ANTHROPIC_BASE_URL").as_deref(),
            Some("http://127.0.0.1:4000")
        );
        assert_eq!(
            pod["metadata"]["annotations"]["switchyard.dev/injected"],
            "true"
        );
    }

    #[test]
    fn before_1_29_the_sidecar_is_the_first_container_and_holds_the_app_until_ready() {
        let pod = injected(&app_pod(), "team-a", &labelled(), false);
        let containers = pod["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers[0]["name"], CONTAINER);
        assert_eq!(
            containers[0]["lifecycle"]["postStart"]["exec"]["command"][1],
            "wait-ready"
        );
        assert!(containers[0].get("restartPolicy").is_none());
        assert_eq!(containers[1]["name"], "app");
        assert_eq!(
            env(&containers[1], "OPENAI_BASE_URL").as_deref(),
            Some("http://127.0.0.1:4000/v1"),
            "env lands on the app, not the sidecar"
        );
        assert!(pod["spec"].get("initContainers").is_none());
    }

    #[test]
    fn injecting_twice_changes_nothing() {
        for native in [true, false] {
            let once = injected(&app_pod(), "team-a", &labelled(), native);
            assert_eq!(
                decide(&once, "team-a", &labelled(), &settings(native)),
                Decision::Skip("already injected")
            );
        }
    }

    #[test]
    fn opt_out_opt_in_and_system_namespaces_are_honoured() {
        let mut out = app_pod();
        out["metadata"]["labels"] = json!({POD_LABEL: "false"});
        assert_eq!(
            decide(&out, "team-a", &labelled(), &settings(true)),
            Decision::Skip("opted out")
        );
        assert_eq!(
            decide(&app_pod(), "team-b", &BTreeMap::new(), &settings(true)),
            Decision::Skip("not selected")
        );
        let mut annotated = app_pod();
        annotated["metadata"]["annotations"] = json!({POD_LABEL: "true"});
        assert_eq!(
            decide(&annotated, "team-b", &BTreeMap::new(), &settings(true)),
            Decision::Skip("not selected"),
            "an annotation no longer opts in: the webhook's selectors would not see it"
        );
        let mut opted_in = app_pod();
        opted_in["metadata"]["labels"] = json!({POD_LABEL: "true"});
        opted_in["metadata"]["annotations"] = json!({"other": "x"});
        let pod = injected(&opted_in, "team-b", &BTreeMap::new(), true);
        assert_eq!(
            pod["metadata"]["annotations"]["other"], "x",
            "existing annotations are kept"
        );
        for ns in ["switchyard-system", "kube-system"] {
            assert_eq!(
                decide(&opted_in, ns, &labelled(), &settings(true)),
                Decision::Skip("system namespace")
            );
        }
    }

    #[test]
    fn host_network_pods_and_pods_using_the_sidecars_ports_are_refused_with_the_reason() {
        let mut host = app_pod();
        host["spec"]["hostNetwork"] = json!(true);
        let Decision::Refuse(why) = decide(&host, "team-a", &labelled(), &settings(true)) else {
            panic!("a hostNetwork pod is refused");
        };
        assert!(why.contains("hostNetwork"), "{why}");
        for port in [4000, 4001] {
            let mut busy = app_pod();
            busy["spec"]["containers"][0]["ports"] =
                json!([{"containerPort": 8080}, {"containerPort": port}]);
            let Decision::Refuse(why) = decide(&busy, "team-a", &labelled(), &settings(true))
            else {
                panic!("a pod already on {port} is refused");
            };
            assert!(
                why.contains(&format!("container app already uses port {port}")),
                "{why}"
            );
        }
        let mut fine = app_pod();
        fine["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
        assert!(matches!(
            decide(&fine, "team-a", &labelled(), &settings(true)),
            Decision::Inject(_)
        ));
    }

    #[test]
    fn existing_env_init_containers_and_several_app_containers_are_kept() {
        let pod = json!({"metadata": {"name": "multi"}, "spec": {
        "initContainers": [{"name": "migrate", "image": "m:1"}],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "OPENAI_BASE_URL", "value": "http://my-own:8080/v1"}]},
            {"name": "worker", "image": "w:1"},
        ]}});
        let out = injected(&pod, "team-a", &labelled(), true);
        let inits = out["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(
            inits[0]["name"], CONTAINER,
            "the sidecar starts before other init containers"
        );
        assert_eq!(inits[1]["name"], "migrate");
        let app = &out["spec"]["containers"][0];
        assert_eq!(
            env(app, "OPENAI_BASE_URL").as_deref(),
            Some("http://my-own:8080/v1"),
            "an app's own setting wins"
        );
        assert_eq!(
            env(app, "ANTHROPIC_BASE_URL").as_deref(),
            Some("http://127.0.0.1:4000")
        );
        assert_eq!(
            env(&out["spec"]["containers"][1], "OPENAI_BASE_URL").as_deref(),
            Some("http://127.0.0.1:4000/v1")
        );
        let volumes: Vec<&str> = out["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert_eq!(volumes, ["data", "switchyard-token", "switchyard-state"]);
    }
}
