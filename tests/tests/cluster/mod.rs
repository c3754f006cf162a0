//! What the cluster scenarios share: the real binaries started on free ports, the cluster in
//! `KUBECONFIG` with the CRDs installed (one scenario at a time), and small helpers to apply
//! YAML, mint pod-bound tokens and wait for conditions.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Pod;
use kube::{
    api::{DynamicObject, Patch, PatchParams},
    core::{ApiResource, GroupVersionKind},
    Api, Client, ResourceExt,
};
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_tests::sidecar::free_addr;

pub const SYSTEM: &str = "sy-e2e-system";
pub const TEAM_A: &str = "sy-e2e-a";
pub const TEAM_B: &str = "sy-e2e-b";

pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("SWITCHYARD_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"))
                });
            target.join("debug")
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(file).spawn().unwrap();
        Proc { child, log }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        // A failed run shows what each process said last: CI keeps nothing else.
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(30).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Whether an admin port answers `GET /healthz` with 200 (a plain blocking request, so it
/// can be asked from anywhere).
pub fn healthz_ok(admin: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(1)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// Spawns a server on two fresh loopback ports (listen, admin) and waits until its admin
/// port answers, which it does only once every port is bound. A port `free_addr` picked can
/// be taken by another process before the server binds it; such a clash is retried on new
/// ports rather than failing the run later in a confusing way.
pub fn spawn_on_free_ports(
    log: PathBuf,
    mut command: impl FnMut(SocketAddr, SocketAddr) -> Command,
) -> (Proc, SocketAddr, SocketAddr) {
    for _ in 0..5 {
        let (listen, admin) = (free_addr(), free_addr());
        let mut proc = Proc::spawn(&mut command(listen, admin), log.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        while proc.child.try_wait().unwrap().is_none() {
            if healthz_ok(admin) {
                return (proc, listen, admin);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not come up:\n{}",
                log.display(),
                proc.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let logs = proc.logs();
        assert!(logs.contains("in use"), "{} exited:\n{logs}", log.display());
    }
    panic!("{}: no free ports after five tries", log.display());
}

pub fn api_resource(api_version: &str, kind: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match kind {
        "AIProvider" => "aiproviders",
        "AIModel" => "aimodels",
        "AIRoutingPolicy" => "airoutingpolicies",
        "AIBudget" => "aibudgets",
        "ServiceAccount" => "serviceaccounts",
        "CustomResourceDefinition" => "customresourcedefinitions",
        other => return ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, other)),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Server-side applies every document of a YAML text.
pub async fn apply(client: &Client, yaml: &str) {
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v: Value =
            serde_yaml::from_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
        if v.is_null() {
            continue;
        }
        let ar = api_resource(
            v["apiVersion"].as_str().unwrap(),
            v["kind"].as_str().unwrap(),
        );
        let name = v["metadata"]["name"].as_str().unwrap().to_string();
        let api: Api<DynamicObject> = match v["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.patch(&name, &PatchParams::apply("e2e").force(), &Patch::Apply(&v))
            .await
            .unwrap_or_else(|e| panic!("apply {name}: {e}"));
    }
}

pub async fn get(client: &Client, ns: &str, kind: &str, name: &str) -> Option<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &api_resource("switchyard.dev/v1alpha1", kind),
    );
    api.get_opt(name).await.unwrap()
}

pub fn ready(o: &DynamicObject) -> (String, String) {
    let c = o
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    )
}

pub async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_ready(client: &Client, ns: &str, kind: &str, name: &str, want: (&str, &str)) {
    eventually(
        &format!("{kind} {ns}/{name} Ready={} reason={}", want.0, want.1),
        Duration::from_secs(20),
        || async {
            get(client, ns, kind, name).await.is_some_and(|o| {
                let (s, r) = ready(&o);
                s == want.0
                    && r == want.1
                    && o.data
                        .pointer("/status/observedGeneration")
                        .and_then(Value::as_i64)
                        == o.metadata.generation
            })
        },
    )
    .await;
}

/// A token for `pod` from the TokenRequest API.
pub async fn token(client: &Client, ns: &str, sa: &str, pod: &str, audience: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let uid = pods.get(pod).await.unwrap().uid().unwrap();
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [audience], "expirationSeconds": 3600, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": uid}}});
    let req = http::Request::post(format!(
        "/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(&body).unwrap())
    .unwrap();
    let resp: Value = client.request(req).await.unwrap();
    resp["status"]["token"].as_str().unwrap().to_string()
}

pub struct Operator {
    pub proc: Proc,
    pub url: String,
    pub admin: String,
    pub identity: String,
}

/// A kubeconfig for the operator's own ServiceAccount, so the operators in this test hold
/// exactly the permissions of `deploy/operator-rbac.yaml`, with Secret access narrowed as
/// the chart's `rbac.secretNamespaces` does: no cluster-wide Secret read, a Role in each
/// namespace whose providers name Secrets (the operator watches those Secrets one by one).
pub async fn operator_kubeconfig(client: &Client, dir: &std::path::Path) -> PathBuf {
    let rbac = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/operator-rbac.yaml"
    ))
    .unwrap();
    let cluster_wide =
        "  - apiGroups: [\"\"]\n    resources: [secrets]\n    verbs: [get, list, watch]\n";
    assert!(
        rbac.contains(cluster_wide),
        "the declared RBAC changed shape"
    );
    let mut rbac = rbac
        .replace(cluster_wide, "")
        .replace("switchyard-system", SYSTEM);
    for ns in [
        TEAM_A,
        TEAM_B,
        "sy-e2e-examples",
        "sy-e2e-gov",
        "sy-e2e-gov-ha",
    ] {
        rbac.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: switchyard-operator-secrets, namespace: {ns}}}\nrules: [{{apiGroups: [\"\"], resources: [secrets], verbs: [get, list, watch]}}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: switchyard-operator-secrets, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: switchyard-operator-secrets}}\nsubjects: [{{kind: ServiceAccount, name: switchyard-operator, namespace: {SYSTEM}}}]\n"));
    }
    apply(client, &rbac).await;
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 7200}});
    let req = http::Request::post(format!(
        "/api/v1/namespaces/{SYSTEM}/serviceaccounts/switchyard-operator/token"
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(&body).unwrap())
    .unwrap();
    let resp: Value = client.request(req).await.unwrap();
    let token = resp["status"]["token"].as_str().unwrap();
    let admin: Value = serde_yaml::from_str(
        &std::fs::read_to_string(std::env::var("KUBECONFIG").unwrap()).unwrap(),
    )
    .unwrap();
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "c", "user": "operator"}}],
    });
    let path = dir.join("operator.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

pub fn start_operator(dir: &std::path::Path, identity: &str, webhook: SocketAddr) -> Operator {
    let (proc, config, admin) = spawn_on_free_ports(
        dir.join(format!("operator-{identity}.log")),
        |config, admin| {
            let mut cmd = Command::new(bin("switchyard-operator"));
            cmd.args([
                "--namespace",
                SYSTEM,
                "--config-listen",
                &config.to_string(),
                "--admin-listen",
                &admin.to_string(),
                "--webhook-listen",
                &webhook.to_string(),
                "--identity",
                identity,
            ])
            .env("KUBECONFIG", dir.join("operator.kubeconfig"))
            .env("RUST_LOG", "info,kube=warn");
            cmd
        },
    );
    Operator {
        proc,
        url: format!("https://{config}"),
        admin: format!("http://{admin}"),
        identity: identity.into(),
    }
}

/// Starts a killed operator again on the same config and admin addresses (its sidecars keep
/// the URL they were given), as the same identity.
pub fn restart_operator(dir: &std::path::Path, old: Operator) -> Operator {
    let addr = old.url.trim_start_matches("https://").to_string();
    let admin = old.admin.trim_start_matches("http://").to_string();
    let proc = Proc::spawn(
        Command::new(bin("switchyard-operator"))
            .args([
                "--namespace",
                SYSTEM,
                "--config-listen",
                &addr,
                "--admin-listen",
                &admin,
                "--webhook-listen",
                &free_addr().to_string(),
                "--identity",
                &old.identity,
            ])
            .env("KUBECONFIG", dir.join("operator.kubeconfig"))
            .env("RUST_LOG", "info,kube=warn"),
        dir.join(format!("operator-{}-again.log", old.identity)),
    );
    Operator { proc, ..old }
}

/// Writes the operator's CA bundle (ConfigMap `switchyard-ca`) to `dir/ca.crt`, where
/// [`start_sidecar`] reads it.
pub async fn write_ca(client: &Client, dir: &std::path::Path) {
    let ca: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), SYSTEM);
    let ca_pem = ca.get("switchyard-ca").await.unwrap().data.unwrap()["ca.crt"].clone();
    std::fs::write(dir.join("ca.crt"), ca_pem).unwrap();
}

/// A managed sidecar for each pod (service account `app`) of `ns`, on `operator_url`.
pub async fn pod_sidecars(
    client: &Client,
    dir: &std::path::Path,
    ns: &str,
    operator_url: &str,
    pods: impl IntoIterator<Item = String>,
) -> Vec<Sidecar> {
    write_ca(client, dir).await;
    let mut sidecars = Vec::new();
    for pod in pods {
        let t = token(client, ns, "app", &pod, "switchyard").await;
        sidecars.push(start_sidecar(dir, &pod, operator_url, &t));
    }
    sidecars
}

pub struct Sidecar {
    pub proc: Proc,
    pub url: String,
    pub admin: String,
}

pub fn start_sidecar(
    dir: &std::path::Path,
    name: &str,
    operator_url: &str,
    token: &str,
) -> Sidecar {
    let token_file = dir.join(format!("{name}.token"));
    std::fs::write(&token_file, token).unwrap();
    let (proc, listen, admin) =
        spawn_on_free_ports(dir.join(format!("sidecar-{name}.log")), |listen, admin| {
            let mut cmd = Command::new(bin("switchyard-sidecar"));
            // Both ways of passing the CA: a file, and the PEM in the environment (as injected).
            if name == "chatbot" {
                cmd.env("SWITCHYARD_CA_FILE", dir.join("ca.crt"));
            } else {
                cmd.env(
                    "SWITCHYARD_CA_PEM",
                    std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
                );
            }
            cmd.env("SWITCHYARD_OPERATOR_URL", operator_url)
                .env("SWITCHYARD_TOKEN_FILE", &token_file)
                .env("SWITCHYARD_STATE_DIR", dir.join(format!("{name}-state")))
                .env("SWITCHYARD_LISTEN", listen.to_string())
                .env("SWITCHYARD_ADMIN_LISTEN", admin.to_string());
            cmd
        });
    Sidecar {
        proc,
        url: format!("http://{listen}"),
        admin: format!("http://{admin}"),
    }
}

/// Makes sure these namespaces exist.
pub async fn namespaces(client: &Client, names: &[&str]) {
    for ns in names {
        apply(
            client,
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"),
        )
        .await;
    }
}

/// Waits until every sidecar serves exactly these models (its config came).
pub async fn serving(sidecars: &[Sidecar], names: &[&str]) {
    for s in sidecars {
        eventually(
            "sidecar serves its config",
            Duration::from_secs(20),
            || async { models(s).await == names },
        )
        .await;
    }
}

pub async fn http_ok(url: String) -> bool {
    reqwest::get(url)
        .await
        .is_ok_and(|r| r.status().is_success())
}

pub async fn models(s: &Sidecar) -> Vec<String> {
    let Ok(r) = reqwest::get(format!("{}/v1/models", s.url)).await else {
        return Vec::new();
    };
    let v: Value = r.json().await.unwrap_or_default();
    let mut ids: Vec<String> = v["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

pub async fn chat(s: &Sidecar, model: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hello through the operator"}]}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn reloads(s: &Sidecar) -> u64 {
    let text = reqwest::get(format!("{}/metrics", s.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("switchyard_config_reloads_total{outcome=\"ok\"}"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0)
}

/// The same token with its validity moved into the past, re-signed with the local control
/// plane's ServiceAccount key (`$SWITCHYARD_K8S_STATE/pki/sa.key`; other clusters keep
/// their key to themselves).
pub fn resigned_copy(token: &str, expired: bool) -> Option<String> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let key = PathBuf::from(std::env::var_os("SWITCHYARD_K8S_STATE")?).join("pki/sa.key");
    if !key.exists() {
        return None;
    }
    let mut parts = token.split('.');
    let (header, payload) = (parts.next()?, parts.next()?);
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    claims["iat"] = json!(now - 7200);
    claims["nbf"] = json!(now - 7200);
    claims["exp"] = json!(if expired { now - 3600 } else { now + 3600 });
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    std::io::Write::write_all(openssl.stdin.as_mut()?, signing_input.as_bytes()).ok()?;
    let signature = openssl.wait_with_output().ok()?.stdout;
    Some(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

pub fn stream_status(url: &str, token: Option<&str>) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("{url}/v1/stream"),
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    String::from_utf8(cmd.output().unwrap().stdout)
        .unwrap()
        .parse()
        .unwrap_or(0)
}

pub const TEAM_A_YAML: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: sy-e2e-a}
---
apiVersion: v1
kind: Pod
metadata: {name: chatbot, namespace: sy-e2e-a, labels: {app: chatbot}}
spec: {serviceAccountName: app, containers: [{name: app, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: batch, namespace: sy-e2e-a, labels: {app: batch}}
spec: {serviceAccountName: app, containers: [{name: app, image: busybox}]}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: mock, namespace: sy-e2e-a}
spec: {type: mock}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: openai, namespace: sy-e2e-a}
spec: {type: openai, credentials: {secretRef: {name: openai-key, key: apiKey}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: chat, namespace: sy-e2e-a}
spec: {backends: [{provider: mock, model: mock-1}]}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: gpt, namespace: sy-e2e-a}
spec: {backends: [{provider: openai, model: gpt-4o}]}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: chatbots, namespace: sy-e2e-a}
spec: {podSelector: {matchLabels: {app: chatbot}}, models: [chat]}
"#;

pub const TEAM_B_YAML: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: sy-e2e-b}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: sy-e2e-b, labels: {app: other}}
spec: {serviceAccountName: app, containers: [{name: app, image: busybox}]}
---
apiVersion: v1
kind: Secret
metadata: {name: b-key, namespace: sy-e2e-b}
stringData: {apiKey: sk-team-b-secret}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: b-openai, namespace: sy-e2e-b}
spec: {type: openai, credentials: {secretRef: {name: b-key, key: apiKey}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: b-only, namespace: sy-e2e-b}
spec: {backends: [{provider: b-openai, model: gpt-4o}]}
"#;

/// Applies the generated CRDs and waits until they are served.
pub async fn install_crds(client: &Client) {
    let crds =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/manifests")).unwrap();
    for f in crds {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            apply(client, &std::fs::read_to_string(path).unwrap()).await;
        }
    }
    // The CRDs must be served before anything of theirs is applied.
    eventually("CRDs served", Duration::from_secs(30), || async {
        let api: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &api_resource("switchyard.dev/v1alpha1", "AIModel"),
        );
        api.list(&Default::default()).await.is_ok()
    })
    .await;
}

/// The cluster in KUBECONFIG with the CRDs installed, and this scenario's turn on it.
pub async fn cluster() -> (tokio::sync::MutexGuard<'static, ()>, Client) {
    let turn = SERIAL.lock().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG must point at a cluster: see README (scripts/test starts a local one)"
    );
    let client = Client::try_default().await.expect("a reachable cluster");
    install_crds(&client).await;
    (turn, client)
}

/// The scenarios share one API server; they take turns.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The scenario a long end-to-end test is in, so that a failure names what broke: a panic
/// while it is held prints `scenario failed: <name>` (and each scenario is logged as it
/// starts).
pub struct Scenario(&'static str);

impl Scenario {
    /// The first scenario.
    pub fn start(name: &'static str) -> Scenario {
        eprintln!("scenario: {name}");
        Scenario(name)
    }

    /// Moves on to the next scenario.
    pub fn next(&mut self, name: &'static str) {
        *self = Scenario::start(name);
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("scenario failed: {}", self.0);
        }
    }
}
