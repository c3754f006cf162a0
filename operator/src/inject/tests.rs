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
        let Decision::Refuse(why) = decide(&busy, "team-a", &labelled(), &settings(true)) else {
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
