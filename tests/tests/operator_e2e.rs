//! The operator and managed sidecars against a real Kubernetes API server (`KUBECONFIG`:
//! the local control plane of `scripts/k8s/start.sh`, kind, k3d or a real cluster), with the real
//! binaries: CRD schema enforcement, status transitions and Events, propagation to sidecars,
//! namespace isolation, token checks, operator outage, persisted snapshots, leader hand-over.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::{coordination::v1::Lease, core::v1::Pod};
use kube::{
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
    Api, Client,
};
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_tests::sidecar::free_addr;

use cluster::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_drives_status_and_sidecars_through_changes_outages_and_handover() {
    let (_turn, client) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    namespaces(&client, &[SYSTEM, TEAM_A, TEAM_B]).await;

    let mut scenario = Scenario::start("kubectl explain shows the doc comments");
    // `kubectl explain` shows the doc comments of the Rust types.
    let kubectl = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .find(|k| k.exists())
        })
        .or_else(|| {
            let cache = std::env::var_os("SWITCHYARD_K8S_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/switchyard-k8s")
                });
            Some(cache.join("bin/kubectl")).filter(|k| k.exists())
        });
    match kubectl {
        Some(kubectl) => {
            eventually(
                "kubectl explain shows the doc comments",
                Duration::from_secs(30),
                || {
                    let kubectl = kubectl.clone();
                    async move {
                        let out = Command::new(&kubectl)
                            .args([
                                "explain",
                                "aimodel.spec.backends",
                                "--api-version=switchyard.dev/v1alpha1",
                            ])
                            .output()
                            .unwrap();
                        let text = String::from_utf8_lossy(&out.stdout).to_string();
                        text.contains("The upstream model id")
                            && text.contains("Lower is tried first")
                    }
                },
            )
            .await;
        }
        None => eprintln!("no kubectl on this machine: the kubectl explain check is skipped"),
    }

    scenario.next("the schema rejects bad specs");
    // The schema rejects bad specs on any server.
    for bad in [
        json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "AIProvider", "metadata": {"name": "bad-enum"}, "spec": {"type": "watsonx"}}),
        json!({"apiVersion": "switchyard.dev/v1alpha1", "kind": "AIModel", "metadata": {"name": "bad-weight"}, "spec": {"backends": [{"provider": "p", "model": "m", "weight": -1}]}}),
    ] {
        let ar = api_resource("switchyard.dev/v1alpha1", bad["kind"].as_str().unwrap());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), TEAM_A, &ar);
        let obj: DynamicObject = serde_json::from_value(bad.clone()).unwrap();
        let err = api
            .create(&PostParams::default(), &obj)
            .await
            .expect_err("the server must reject it");
        assert!(
            matches!(err, kube::Error::Api(ref e) if e.code == 422),
            "{err}"
        );
    }

    // Leftovers of an earlier run on a kept cluster (namespaces never finish deleting on a
    // server without a controller-manager, so the test cleans up what it asserts on).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), TEAM_A);
    let _ = secrets.delete("openai-key", &DeleteParams::default()).await;
    let leftover: Api<Pod> = Api::namespaced(client.clone(), "sy-e2e-inject");
    for pod in ["late", "on-host"] {
        let _ = leftover
            .delete(
                pod,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await;
    }
    for (kind, name) in [
        ("AIRoutingPolicy", "zz-late"),
        ("AIModel", "after-handover"),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            TEAM_A,
            &api_resource("switchyard.dev/v1alpha1", kind),
        );
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    apply(&client, TEAM_A_YAML).await;
    apply(&client, TEAM_B_YAML).await;
    operator_kubeconfig(&client, dir.path()).await;
    // The injector is registered before the operator starts, with no caBundle: the operator
    // fills it in.
    let webhook_addr = free_addr();
    apply(
        &client,
        &format!(
            r#"
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {{name: switchyard-sidecar-injector}}
webhooks:
  - name: inject.switchyard.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Ignore
    timeoutSeconds: 5
    clientConfig: {{url: "https://{webhook_addr}/inject"}}
    rules: [{{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [pods]}}]
"#
        ),
    )
    .await;
    let mut op1 = start_operator(dir.path(), "op-1", webhook_addr);
    eventually("operator ready", Duration::from_secs(30), || {
        http_ok(format!("{}/readyz", op1.admin))
    })
    .await;

    scenario.next("injection through the real admission chain");
    // Injection through the real admission chain: the operator set the caBundle; a pod in a
    // labelled namespace comes back with the sidecar (v1.20: the pre-1.29 layout), one
    // elsewhere comes back untouched.
    let mwc: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        Api::all(client.clone());
    eventually(
        "caBundle set by the operator",
        Duration::from_secs(10),
        || async {
            mwc.get("switchyard-sidecar-injector")
                .await
                .unwrap()
                .webhooks
                .unwrap_or_default()
                .iter()
                .all(|w| w.client_config.ca_bundle.is_some())
        },
    )
    .await;
    const INJECTED: &str = "sy-e2e-inject";
    apply(&client, &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {INJECTED}, labels: {{switchyard.dev/inject: enabled}}}}\n")).await;
    let inject_pods: Api<Pod> = Api::namespaced(client.clone(), INJECTED);
    let _ = inject_pods
        .delete(
            "web",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    eventually("old pod gone", Duration::from_secs(10), || async {
        inject_pods.get_opt("web").await.unwrap().is_none()
    })
    .await;
    let pod: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": INJECTED},
        "spec": {"containers": [{"name": "app", "image": "app:1", "env": [{"name": "ANTHROPIC_BASE_URL", "value": "http://mine"}]}]}})).unwrap();
    let created = inject_pods
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    let spec = created.spec.unwrap();
    assert_eq!(
        spec.containers[0].name, "switchyard-sidecar",
        "the sidecar is the first container before 1.29"
    );
    assert!(
        spec.containers[0]
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref())
            .is_some(),
        "a start-up hook holds the app"
    );
    let app_env = spec.containers[1].env.clone().unwrap_or_default();
    let value = |n: &str| {
        app_env
            .iter()
            .find(|e| e.name == n)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        value("OPENAI_BASE_URL").as_deref(),
        Some("http://127.0.0.1:4000/v1")
    );
    assert_eq!(
        value("ANTHROPIC_BASE_URL").as_deref(),
        Some("http://mine"),
        "an app's own setting wins"
    );
    assert!(spec
        .volumes
        .unwrap_or_default()
        .iter()
        .any(|v| v.name == "switchyard-token"));
    let plain: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain", "namespace": TEAM_B},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}})).unwrap();
    let team_b_pods: Api<Pod> = Api::namespaced(client.clone(), TEAM_B);
    let _ = team_b_pods
        .delete(
            "plain",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    eventually("old plain pod gone", Duration::from_secs(10), || async {
        team_b_pods.get_opt("plain").await.unwrap().is_none()
    })
    .await;
    let untouched = team_b_pods
        .create(&PostParams::default(), &plain)
        .await
        .unwrap();
    assert_eq!(
        untouched.spec.unwrap().containers.len(),
        1,
        "no injection outside labelled namespaces"
    );

    scenario.next("the injected sidecar runs as the mutated spec says");
    // The injected sidecar runs as the mutated spec says: its own env (the CA passed as PEM,
    // the token path), with only what a pod would get from its mounts and network adjusted
    // (the token file, the state dir, the ports, the operator's Service name), and a token
    // minted for that pod; the app reaches it through its injected OPENAI_BASE_URL.
    apply(&client, &format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {INJECTED}}}\n---\napiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {{name: mock, namespace: {INJECTED}}}\nspec: {{type: mock}}\n---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {{name: chat, namespace: {INJECTED}}}\nspec: {{backends: [{{provider: mock, model: m}}]}}\n")).await;
    let web_token = token(&client, INJECTED, "default", "web", "switchyard").await;
    let token_path = dir.path().join("web.token");
    std::fs::write(&token_path, &web_token).unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let mut cmd = Command::new(bin("switchyard-sidecar"));
    for e in spec.containers[0].env.clone().unwrap_or_default() {
        let value = match e.name.as_str() {
            "SWITCHYARD_OPERATOR_URL" => op1.url.clone(),
            "SWITCHYARD_TOKEN_FILE" => token_path.display().to_string(),
            "SWITCHYARD_STATE_DIR" => dir.path().join("web-state").display().to_string(),
            "SWITCHYARD_ADMIN_LISTEN" => admin.to_string(),
            _ => e.value.clone().unwrap_or_default(),
        };
        cmd.env(&e.name, value);
    }
    cmd.env("SWITCHYARD_LISTEN", listen.to_string());
    let _web_sidecar = Proc::spawn(&mut cmd, dir.path().join("sidecar-web.log"));
    let hook = spec.containers[0]
        .lifecycle
        .clone()
        .and_then(|l| l.post_start)
        .and_then(|h| h.exec)
        .and_then(|e| e.command)
        .unwrap();
    assert_eq!(hook[1], "wait-ready");
    let held = Command::new(bin("switchyard-sidecar"))
        .arg(&hook[1])
        .env("SWITCHYARD_ADMIN_LISTEN", admin.to_string())
        .status()
        .unwrap();
    assert!(
        held.success(),
        "the start-up hook returns once the sidecar is ready"
    );
    let base = value("OPENAI_BASE_URL")
        .unwrap()
        .replace("127.0.0.1:4000", &listen.to_string());
    eventually("the injected sidecar serves the namespace's model", Duration::from_secs(15), || {
        let url = format!("{base}/chat/completions");
        async move {
            let r = reqwest::Client::new().post(url).json(&json!({"model": "chat", "messages": [{"role": "user", "content": "injected hello"}]})).send().await;
            match r {
                Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default().contains("injected hello"),
                _ => false,
            }
        }
    })
    .await;

    scenario.next("status tells the truth and follows fixes");
    // Status tells the truth, and fixing the cause flips it without touching the object.
    wait_ready(
        &client,
        TEAM_A,
        "AIProvider",
        "openai",
        ("False", "SecretNotFound"),
    )
    .await;
    wait_ready(
        &client,
        TEAM_A,
        "AIModel",
        "gpt",
        ("False", "ProviderNotFound"),
    )
    .await;
    wait_ready(&client, TEAM_A, "AIModel", "chat", ("True", "Ready")).await;
    wait_ready(
        &client,
        TEAM_A,
        "AIRoutingPolicy",
        "chatbots",
        ("True", "Ready"),
    )
    .await;
    apply(&client, "apiVersion: v1\nkind: Secret\nmetadata: {name: openai-key, namespace: sy-e2e-a}\nstringData: {apiKey: sk-team-a}\n").await;
    wait_ready(&client, TEAM_A, "AIProvider", "openai", ("True", "Ready")).await;
    wait_ready(&client, TEAM_A, "AIModel", "gpt", ("True", "Ready")).await;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), TEAM_A);
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect();
    assert!(
        reasons.contains(&"SecretNotFound".to_string()) && reasons.contains(&"Ready".to_string()),
        "{reasons:?}"
    );

    scenario.next("a newer policy is Conflicted");
    // A newer policy selecting the same pod is Conflicted on that pod's behalf.
    apply(&client, "apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {name: zz-late, namespace: sy-e2e-a}\nspec: {podSelector: {matchLabels: {app: chatbot}}}\n").await;
    wait_ready(
        &client,
        TEAM_A,
        "AIRoutingPolicy",
        "zz-late",
        ("False", "Conflicted"),
    )
    .await;

    scenario.next("the examples come up Ready");
    // The examples a user applies come up Ready.
    const EXAMPLES: &str = "sy-e2e-examples";
    apply(
        &client,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {EXAMPLES}}}\n"),
    )
    .await;
    let mut example_objects = Vec::new();
    for f in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let mut v: Value =
                serde_yaml::from_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
            if v.is_null() {
                continue;
            }
            v["metadata"]["namespace"] = json!(EXAMPLES);
            example_objects.push((
                v["kind"].as_str().unwrap().to_string(),
                v["metadata"]["name"].as_str().unwrap().to_string(),
            ));
            apply(&client, &serde_yaml::to_string(&v).unwrap()).await;
        }
    }
    assert!(!example_objects.is_empty());
    for (kind, name) in &example_objects {
        // No pod runs in the examples' namespace: a budget there says it can cap nothing.
        let want = if kind == "AIBudget" {
            ("False", "InvalidSpec")
        } else {
            ("True", "Ready")
        };
        wait_ready(&client, EXAMPLES, kind, name, want).await;
    }
    let budget = get(&client, EXAMPLES, "AIBudget", "monthly").await.unwrap();
    let status = &budget.data["status"];
    assert_eq!(status["spent"], "0.00");
    assert!(
        status["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains("spec.podSelector: selects no pod"),
        "{status}"
    );

    scenario.next("sidecars get their pod's config over TLS");
    // Sidecars get their own pod's config over TLS with a real bound token.
    write_ca(&client, dir.path()).await;
    let chatbot_token = token(&client, TEAM_A, "app", "chatbot", "switchyard").await;
    let batch_token = token(&client, TEAM_A, "app", "batch", "switchyard").await;
    let other_token = token(&client, TEAM_B, "app", "other", "switchyard").await;
    let mut chatbot = start_sidecar(dir.path(), "chatbot", &op1.url, &chatbot_token);
    let batch = start_sidecar(dir.path(), "batch", &op1.url, &batch_token);
    let other = start_sidecar(dir.path(), "other", &op1.url, &other_token);
    eventually(
        "chatbot sidecar serves its policy's models",
        Duration::from_secs(15),
        || async { models(&chatbot).await == ["chat"] },
    )
    .await;
    eventually(
        "batch sidecar serves every model",
        Duration::from_secs(15),
        || async { models(&batch).await == ["chat", "gpt"] },
    )
    .await;
    eventually(
        "team-b sidecar serves team-b only",
        Duration::from_secs(15),
        || async { models(&other).await == ["b-only"] },
    )
    .await;
    let (status, body) = chat(&chatbot, "chat").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello through the operator"));
    let cfg = reqwest::get(format!("{}/config", chatbot.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !cfg.contains("sk-team-b-secret") && !cfg.contains("b-openai"),
        "another namespace leaked: {cfg}"
    );

    scenario.next("bad tokens get 401");
    // Bad tokens get 401 and no config.
    let wrong_audience = token(&client, TEAM_A, "app", "chatbot", "not-switchyard").await;
    assert_eq!(stream_status(&op1.url, None), 401);
    assert_eq!(
        stream_status(&op1.url, Some("forged.eyJrdWJlcm5ldGVzLmlvIjp7fX0.sig")),
        401
    );
    assert_eq!(stream_status(&op1.url, Some(&wrong_audience)), 401);
    match (
        resigned_copy(&chatbot_token, true),
        resigned_copy(&chatbot_token, false),
    ) {
        (Some(expired), Some(control)) => {
            assert_eq!(
                stream_status(&op1.url, Some(&control)),
                200,
                "the re-signing itself is sound"
            );
            assert_eq!(
                stream_status(&op1.url, Some(&expired)),
                401,
                "an expired token"
            );
        }
        _ => eprintln!(
            "not the local control plane: the expired-token check needs its signing key, skipped"
        ),
    }
    let gone = "apiVersion: v1\nkind: Pod\nmetadata: {name: gone, namespace: sy-e2e-a}\nspec: {serviceAccountName: app, containers: [{name: app, image: busybox}]}\n";
    apply(&client, gone).await;
    let gone_token = token(&client, TEAM_A, "app", "gone", "switchyard").await;
    let pods_a: Api<Pod> = Api::namespaced(client.clone(), TEAM_A);
    pods_a
        .delete(
            "gone",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
    eventually(
        "a token whose pod is gone is refused",
        Duration::from_secs(10),
        || async { stream_status(&op1.url, Some(&gone_token)) == 401 },
    )
    .await;

    scenario.next("a change reaches the affected sidecars within a second");
    // A change reaches the affected sidecars within a second; the others get nothing.
    let other_reloads = reloads(&other).await;
    let started = Instant::now();
    apply(&client, "apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {name: chatbots, namespace: sy-e2e-a}\nspec: {podSelector: {matchLabels: {app: chatbot}}, models: [chat, gpt]}\n").await;
    eventually(
        "policy change propagates",
        Duration::from_secs(1),
        || async { models(&chatbot).await == ["chat", "gpt"] },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    scenario.next("a rotated key reaches the sidecars");
    // Secret data is an input too: a rotated key reaches the sidecars that use it.
    let batch_reloads = reloads(&batch).await;
    apply(&client, "apiVersion: v1\nkind: Secret\nmetadata: {name: openai-key, namespace: sy-e2e-a}\nstringData: {apiKey: sk-team-a-rotated}\n").await;
    eventually("rotated key propagates", Duration::from_secs(2), || async {
        reloads(&batch).await > batch_reloads
    })
    .await;
    scenario.next("pod labels are an input");
    // Pod labels are an input too.
    let pods: Api<Pod> = Api::namespaced(client.clone(), TEAM_A);
    pods.patch(
        "batch",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "chatbot"}}})),
    )
    .await
    .unwrap();
    apply(&client, "apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {name: chatbots, namespace: sy-e2e-a}\nspec: {podSelector: {matchLabels: {app: chatbot}}, models: [gpt]}\n").await;
    eventually(
        "relabelled pod follows the policy",
        Duration::from_secs(2),
        || async { models(&batch).await == ["gpt"] },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reloads(&other).await,
        other_reloads,
        "an unaffected sidecar received a snapshot"
    );

    scenario.next("a deleted provider marks its model not ready");
    // Deleting a provider that a model uses marks the model not ready.
    let providers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        TEAM_A,
        &api_resource("switchyard.dev/v1alpha1", "AIProvider"),
    );
    providers
        .delete("mock", &DeleteParams::default())
        .await
        .unwrap();
    wait_ready(
        &client,
        TEAM_A,
        "AIModel",
        "chat",
        ("False", "ProviderNotFound"),
    )
    .await;
    apply(&client, "apiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: mock, namespace: sy-e2e-a}\nspec: {type: mock}\n").await;
    wait_ready(&client, TEAM_A, "AIModel", "chat", ("True", "Ready")).await;
    eventually(
        "gpt-only chatbot sidecar",
        Duration::from_secs(5),
        || async { models(&chatbot).await == ["gpt"] },
    )
    .await;

    scenario.next("operator outage");
    // Operator outage: sidecars keep serving; a restarted sidecar serves its persisted
    // snapshot at once; changes made meanwhile arrive when the operator returns.
    op1.proc.kill();
    // With the webhook down, pod creation fails open: the pod comes without the sidecar.
    let late_pods: Api<Pod> = Api::namespaced(client.clone(), "sy-e2e-inject");
    let late: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late", "namespace": "sy-e2e-inject"},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}})).unwrap();
    let late = late_pods
        .create(&PostParams::default(), &late)
        .await
        .unwrap();
    let late_uid = late.metadata.uid.clone();
    assert_eq!(
        late.spec.unwrap().containers.len(),
        1,
        "fail open: created without the sidecar"
    );
    scenario.next("hostNetwork pods are never injected");
    // An opted-in hostNetwork pod is never injected; the operator says why.
    let host: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-host", "namespace": "sy-e2e-inject"},
        "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "app:1"}]}})).unwrap();
    let host_uid = late_pods
        .create(&PostParams::default(), &host)
        .await
        .unwrap()
        .metadata
        .uid;
    assert_eq!(
        models(&chatbot).await,
        ["gpt"],
        "keeps serving without the operator"
    );
    apply(&client, "apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {name: chatbots, namespace: sy-e2e-a}\nspec: {podSelector: {matchLabels: {app: chatbot}}, models: [chat, gpt]}\n").await;
    chatbot.proc.kill();
    let restarted = Instant::now();
    let chatbot = start_sidecar(dir.path(), "chatbot", &op1.url, &chatbot_token);
    eventually(
        "restarted sidecar ready from its snapshot",
        Duration::from_secs(2),
        || http_ok(format!("{}/readyz", chatbot.admin)),
    )
    .await;
    assert!(restarted.elapsed() < Duration::from_secs(2));
    assert_eq!(models(&chatbot).await, ["gpt"], "the persisted snapshot");
    scenario.next("the operator comes back");
    // The operator comes back on the same address.
    let op1 = restart_operator(dir.path(), op1);
    eventually(
        "changes made during the outage arrive",
        Duration::from_secs(45),
        || async { models(&chatbot).await == ["chat", "gpt"] },
    )
    .await;
    // ...and the returning operator says so: a Warning Event on the pod and a metric.
    let inject_events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(client.clone(), "sy-e2e-inject");
    eventually(
        "SidecarNotInjected is recorded",
        Duration::from_secs(20),
        || async {
            inject_events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("SidecarNotInjected")
                        && e.involved_object.uid == late_uid
                })
        },
    )
    .await;
    eventually(
        "SidecarRefused is recorded for the hostNetwork pod",
        Duration::from_secs(20),
        || async {
            inject_events
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("SidecarRefused")
                        && e.involved_object.uid == host_uid
                        && e.message
                            .as_deref()
                            .is_some_and(|m| m.contains("hostNetwork"))
                })
        },
    )
    .await;
    eventually(
        "the uninjected pod is counted",
        Duration::from_secs(10),
        || async {
            reqwest::get(format!("{}/metrics", op1.admin))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
                .contains("switchyard_operator_uninjected_pods 1")
        },
    )
    .await;
    scenario.next("reconciles are counted");
    // Status writes are counted as reconciles of each kind's controller, with their time.
    let metrics = reqwest::get(format!("{}/metrics", op1.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reconciles = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("switchyard_operator_reconciles_total{controller=\"aimodel\"} ")
        })
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(reconciles > 0, "{metrics}");
    assert!(
        metrics.contains(
            "switchyard_operator_reconcile_duration_seconds_count{controller=\"airoutingpolicy\"}"
        ),
        "{metrics}"
    );

    scenario.next("leader hand-over");
    // Two replicas: both serve streams; only the Lease holder writes status; killing it
    // hands over within the lease duration.
    let op2 = start_operator(dir.path(), "op-2", free_addr());
    eventually("second replica ready", Duration::from_secs(30), || {
        http_ok(format!("{}/readyz", op2.admin))
    })
    .await;
    assert_eq!(
        stream_status(&op2.url, Some("forged")),
        401,
        "the second replica serves the stream too"
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), SYSTEM);
    let holder = |l: Lease| l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
    let leader = holder(leases.get("switchyard-operator-leader").await.unwrap());
    assert!(leader == op1.identity || leader == op2.identity, "{leader}");
    let (mut leader_op, follower) = if leader == op1.identity {
        (op1, op2)
    } else {
        (op2, op1)
    };
    let killed = Instant::now();
    let _ = Command::new("kill")
        .args(["-9", &leader_op.proc.child.id().to_string()])
        .status();
    leader_op.proc.kill();
    eventually(
        "the follower takes the lease",
        Duration::from_secs(25),
        || async {
            holder(leases.get("switchyard-operator-leader").await.unwrap()) == follower.identity
        },
    )
    .await;
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "hand-over took {:?}",
        killed.elapsed()
    );
    apply(&client, "apiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: after-handover, namespace: sy-e2e-a}\nspec: {backends: [{provider: ghost, model: x}]}\n").await;
    wait_ready(
        &client,
        TEAM_A,
        "AIModel",
        "after-handover",
        ("False", "ProviderNotFound"),
    )
    .await;
    assert!(
        follower.proc.logs().contains("leading"),
        "{}",
        follower.proc.logs()
    );
    drop((batch, other, chatbot, follower));
}

/// A CA and a serving certificate for 127.0.0.1, as cert-manager would write them.
fn cert_manager_files(dir: &std::path::Path, generation: &str) -> String {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("test-ca-{generation}"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    // Written the way the kubelet updates a Secret volume: all at once.
    let staging = dir.with_extension("new");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(staging.join("tls.key"), key.serialize_pem()).unwrap();
    std::fs::write(staging.join("ca.crt"), ca_cert.pem()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&staging, dir).unwrap();
    ca_cert.pem()
}

/// Registers a fail-closed injector on a loopback URL for namespaces labelled `sy-test=key`.
async fn fail_closed_injector(client: &Client, name: &str, key: &str, addr: SocketAddr, ca: &str) {
    let mut hook = json!({"name": "inject.switchyard.dev", "admissionReviewVersions": ["v1"],
        "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 5,
        "namespaceSelector": {"matchLabels": {"sy-test": key}},
        "clientConfig": {"url": format!("https://{addr}/inject")},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]});
    if !ca.is_empty() {
        hook["clientConfig"]["caBundle"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            ca
        ));
    }
    let mwc = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [hook]});
    apply(client, &mwc.to_string()).await;
}

/// Creates a pod through the admission chain; whether it came back with the sidecar.
async fn admitted(pods: &Api<Pod>, name: &str) -> Result<bool, String> {
    let pod: Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"switchyard.dev/inject": "true"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}}))
    .unwrap();
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .map_err(|e| e.to_string())?;
    let _ = pods
        .delete(
            name,
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    Ok(created.spec.unwrap().containers[0].name == "switchyard-sidecar")
}

async fn ca_config_map(client: &Client, ns: &str) -> String {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ns);
    api.get_opt("switchyard-ca")
        .await
        .unwrap()
        .and_then(|c| c.data)
        .and_then(|mut d| d.remove("ca.crt"))
        .unwrap_or_default()
}

/// An operator for namespace `sy-rot-KEY-system` keeping webhook configuration
/// `sy-rot-KEY` (admin kubeconfig), with `extra` flags; returns once it is ready.
async fn start_webhook_operator(
    dir: &std::path::Path,
    key: &str,
    webhook: SocketAddr,
    extra: &[&str],
) -> Proc {
    let (proc, _, admin) =
        spawn_on_free_ports(dir.join(format!("operator-{key}.log")), |config, admin| {
            let mut cmd = Command::new(bin("switchyard-operator"));
            cmd.args([
                "--namespace",
                &format!("sy-rot-{key}-system"),
                "--config-listen",
                &config.to_string(),
                "--admin-listen",
                &admin.to_string(),
                "--webhook-listen",
                &webhook.to_string(),
                "--webhook-configuration",
                &format!("sy-rot-{key}"),
                "--identity",
                key,
            ])
            .args(extra)
            .env("RUST_LOG", "info,kube=warn");
            cmd
        });
    eventually("operator ready", Duration::from_secs(30), || {
        http_ok(format!("http://{admin}/readyz"))
    })
    .await;
    proc
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_rotate_with_no_failed_admission() {
    let (_turn, client) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    const OWN: &str = "sy-rot-own";
    const FILES: &str = "sy-rot-files";
    for (ns, key) in [(OWN, "own"), (FILES, "files")] {
        apply(&client, &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{sy-test: {key}}}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {ns}}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}-system}}\n")).await;
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(client.clone(), &format!("{ns}-system"));
        let _ = secrets
            .delete("switchyard-ca", &DeleteParams::default())
            .await;
    }

    // The operator's own PKI, on lifetimes short enough to watch: a serving certificate
    // lives 6 s (renewed after 4), a CA 30 s (its successor is published at 20 s and signs
    // from 25 s; the old one leaves the bundle at 30 s). Pods are created all the while
    // through a fail-closed webhook: not one may fail.
    let webhook = free_addr();
    fail_closed_injector(&client, "sy-rot-own", "own", webhook, "").await;
    let mut own = start_webhook_operator(
        dir.path(),
        "own",
        webhook,
        &["--ca-validity", "30s", "--cert-validity", "6s"],
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), OWN);
    let mut bundles = std::collections::BTreeSet::new();
    let started = Instant::now();
    let mut created = 0;
    while started.elapsed() < Duration::from_secs(45) {
        let name = format!("p-{created}");
        match admitted(&pods, &name).await {
            Ok(true) => created += 1,
            Ok(false) => panic!("{name} was admitted without the sidecar"),
            Err(e) => panic!(
                "{name} failed admission after {:?}: {e}\n{}",
                started.elapsed(),
                own.logs()
            ),
        }
        bundles.insert(ca_config_map(&client, "sy-rot-own-system").await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = own.logs();
    let count = |what: &str| logs.matches(what).count();
    assert!(count("serving certificate issued") >= 8, "{logs}");
    assert!(count("successor CA now signs") >= 1, "{logs}");
    assert!(
        bundles.len() >= 3,
        "the published bundle follows the roll-over: {bundles:?}"
    );
    assert!(created > 50, "only {created} pods were created");
    own.kill();

    // Certificates someone else keeps (cert-manager): served from the mounted files,
    // re-read when they change; the caBundle is theirs to set, never the operator's.
    let tls = dir.path().join("tls");
    let ca1 = cert_manager_files(&tls, "1");
    let webhook = free_addr();
    fail_closed_injector(&client, "sy-rot-files", "files", webhook, &ca1).await;
    let _files_op = start_webhook_operator(
        dir.path(),
        "files",
        webhook,
        &["--tls-dir", &tls.display().to_string()],
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), FILES);
    assert_eq!(admitted(&pods, "f-1").await, Ok(true));
    assert_eq!(ca_config_map(&client, "sy-rot-files-system").await, ca1);
    // A renewal by a new CA: trust both while the files change, then only the new one.
    let ca2 = cert_manager_files(&tls.with_extension("next"), "2");
    fail_closed_injector(
        &client,
        "sy-rot-files",
        "files",
        webhook,
        &format!("{ca1}{ca2}"),
    )
    .await;
    std::fs::remove_dir_all(&tls).unwrap();
    std::fs::rename(tls.with_extension("next"), &tls).unwrap();
    eventually(
        "the new certificate is served",
        Duration::from_secs(10),
        || async { ca_config_map(&client, "sy-rot-files-system").await == ca2 },
    )
    .await;
    fail_closed_injector(&client, "sy-rot-files", "files", webhook, &ca2).await;
    eventually(
        "admission with only the new CA trusted",
        Duration::from_secs(10),
        || {
            let pods = pods.clone();
            async move { admitted(&pods, "f-2").await == Ok(true) }
        },
    )
    .await;
    let mwc: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        Api::all(client.clone());
    let bundle = mwc.get("sy-rot-files").await.unwrap().webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    assert_eq!(bundle.0, ca2.as_bytes(), "the caBundle is left alone");
    for name in ["sy-rot-own", "sy-rot-files"] {
        let _ = mwc.delete(name, &DeleteParams::default()).await;
    }
}
