//! The shipped Grafana dashboard against a real Prometheus (Debian's `prometheus`): the
//! operator and two managed sidecars on the real API server serve a short mixed load
//! (streams, failovers, an open circuit, throttled calls, a budget, priced usage), Prometheus
//! scrapes them, and every query of every panel in `charts/switchyard/dashboards/
//! switchyard.json` is evaluated through Prometheus's HTTP API and must return data. A metric
//! renamed in the code, or a label the dashboard groups by, fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use std::{path::Path, process::Command, time::Duration};

use cluster::*;
use serde_json::{json, Value};
use switchyard_tests::sidecar::free_addr;

const NS: &str = "sy-e2e-dash";

fn prometheus() -> Option<std::path::PathBuf> {
    let path =
        std::env::var_os("PROMETHEUS").map_or_else(|| "/usr/bin/prometheus".into(), Into::into);
    let found = Path::new(&path).exists().then_some(path);
    if found.is_none() {
        // CI installs it; a developer without it gets a clear skip rather than a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is required in CI (apt-get install prometheus)"
        );
        eprintln!("skipping: prometheus is not installed (apt-get install prometheus)");
    }
    found
}

/// Calls every sidecar in turn, streamed and not, until the returned sender is dropped:
/// rates need samples that keep moving while the queries are asked.
fn keep_loading(urls: Vec<String>) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for i in 0.. {
            if stopped.try_recv() != Err(tokio::sync::oneshot::error::TryRecvError::Empty) {
                break;
            }
            for url in &urls {
                let body = json!({"model": "chat", "stream": i % 2 == 0, "stream_options": {"include_usage": true},
                    "messages": [{"role": "user", "content": "dashboards need data"}]});
                if let Ok(r) = client
                    .post(format!("{url}/v1/chat/completions"))
                    .json(&body)
                    .send()
                    .await
                {
                    let _ = r.text().await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    stop
}

fn targets(addrs: &[String]) -> String {
    let list: Vec<String> = addrs
        .iter()
        .map(|a| format!("'{}'", a.trim_start_matches("http://")))
        .collect();
    format!("global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: switchyard\n    static_configs: [{{targets: [{}]}}]\n", list.join(", "))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_panel_returns_data_from_a_real_prometheus() {
    let Some(prom_bin) = prometheus() else { return };
    let (_turn, client) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    namespaces(&client, &[SYSTEM, NS]).await;
    operator_kubeconfig(&client, dir.path()).await;
    let op = start_operator(dir.path(), "dash", free_addr());
    eventually("operator ready", Duration::from_secs(30), || {
        http_ok(format!("{}/readyz", op.admin))
    })
    .await;
    let mut yaml = format!(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {{name: app, namespace: {NS}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: flaky, namespace: {NS}}}
spec: {{type: mock, mock: {{failureRate: 1.0, failureStatus: 503}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: steady, namespace: {NS}}}
spec: {{type: mock, mock: {{latency: 5ms}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: chat, namespace: {NS}}}
spec: {{backends: [{{provider: flaky, model: m1, priority: 0}}, {{provider: steady, model: m2, priority: 1, pricing: {{inputPerMillionTokens: 1000, outputPerMillionTokens: 2000}}}}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {{name: limited, namespace: {NS}}}
spec: {{podSelector: {{matchLabels: {{app: throttled}}}}, rateLimit: {{requestsPerMinute: 5}}, circuitBreaker: {{consecutiveFailures: 3, cooldown: 10m}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIBudget
metadata: {{name: team, namespace: {NS}}}
spec: {{limit: "50.00", period: month}}
"#
    );
    for i in 0..2 {
        // dash-0 runs free; dash-1's policy throttles it.
        let app = ["dash", "throttled"][i];
        yaml.push_str(&format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: dash-{i}, namespace: {NS}, labels: {{app: {app}}}}}\nspec: {{serviceAccountName: app, containers: [{{name: app, image: busybox}}]}}\n"));
    }
    apply(&client, &yaml).await;
    wait_ready(&client, NS, "AIModel", "chat", ("True", "Ready")).await;
    let pods = (0..2).map(|i| format!("dash-{i}"));
    let sidecars = pod_sidecars(&client, dir.path(), NS, &op.url, pods).await;
    serving(&sidecars, &["chat"]).await;

    let mut addrs: Vec<String> = sidecars.iter().map(|s| s.admin.clone()).collect();
    addrs.push(op.admin.clone());
    std::fs::write(dir.path().join("prometheus.yml"), targets(&addrs)).unwrap();
    let web = free_addr();
    let mut prom = Proc::spawn(
        Command::new(prom_bin).args([
            &format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ),
            &format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            &format!("--web.listen-address={web}"),
        ]),
        dir.path().join("prometheus.log"),
    );
    let api = format!("http://{web}/api/v1");
    eventually("prometheus ready", Duration::from_secs(30), || {
        http_ok(format!("http://{web}/-/ready"))
    })
    .await;
    let _loading = keep_loading(sidecars.iter().map(|s| s.url.clone()).collect());

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../charts/switchyard/dashboards/switchyard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let exprs: Vec<(String, String)> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap().to_string();
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (title.clone(), t["expr"].as_str().unwrap().to_string()))
        })
        .collect();
    assert!(exprs.len() >= 15, "{} queries", exprs.len());
    let http = reqwest::Client::new();
    for (title, expr) in &exprs {
        let what = format!("panel {title:?}: {expr}");
        eventually(&what, Duration::from_secs(60), || async {
            let r: Value = http
                .get(format!("{api}/query"))
                .query(&[("query", expr.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap_or_default();
            assert_eq!(r["status"], "success", "{what}: {r}");
            r["data"]["result"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|s| s["value"][1].as_str().is_some_and(|v| v != "NaN"))
            })
        })
        .await;
    }
    prom.kill();
}
