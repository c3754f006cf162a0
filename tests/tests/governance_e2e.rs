//! Limits and budgets across many managed sidecars (real binaries, a real API server, one
//! operator holding the counters): a `scope: policy` rate limit and a provider's account
//! limit never let the upstream see more than the limit in any wall-clock minute, one busy
//! pod can use the whole limit, and an AIBudget's settled spend never passes its limit and
//! shows in its status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use std::{collections::BTreeMap, time::Duration};

use serde_json::{json, Value};
use switchyard_tests::{
    fake::{Api as FakeApi, Body, Fake, Reply, KEY},
    sidecar::free_addr,
};

use cluster::*;

const NS: &str = "sy-e2e-gov";
const PODS: usize = 10;

fn unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits for the start of a minute, so a phase fits in one window.
async fn next_minute() -> u64 {
    let now = unix();
    tokio::time::sleep(Duration::from_secs(60 - now % 60) + Duration::from_millis(200)).await;
    unix() / 60
}

async fn ask(s: &Sidecar, model: &str) -> (u16, Value) {
    ask_as(s, model, false).await
}

/// A call, streamed or not: the status and the answer (a stream's answer is its usage, from
/// the usage chunk, as `{"usage": ...}`).
async fn ask_as(s: &Sidecar, model: &str, stream: bool) -> (u16, Value) {
    let mut body = json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "count my words please"}]});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    if !stream || status != 200 {
        return (status, serde_json::from_str(&text).unwrap_or_default());
    }
    let usage = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .rfind(|c| c["usage"].is_object())
        .map(|c| c["usage"].clone())
        .unwrap_or_default();
    (status, json!({"usage": usage}))
}

/// A streamed call abandoned after its first chunk: the status, and whether a chunk came.
async fn abandon(s: &Sidecar, model: &str) -> (u16, bool) {
    let body = json!({"model": model, "max_tokens": 16, "stream": true, "messages": [{"role": "user", "content": "count my words please"}]});
    let mut r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let chunk = status == 200 && r.chunk().await.ok().flatten().is_some();
    (status, chunk)
}

/// How many of `n` calls one sidecar gets admitted in a minute window it starts at the
/// window's beginning; `None` when the calls outlasted the window (a slow machine).
async fn admitted_in_a_window(s: &Sidecar, model: &str, n: usize) -> Option<usize> {
    let window = next_minute().await;
    let mut ok = 0;
    for _ in 0..n {
        if ask(s, model).await.0 == 200 {
            ok += 1;
        }
    }
    (unix() / 60 == window).then_some(ok)
}

/// The ServiceAccount the test pods run as and the Secret holding the fakes' key.
fn app_and_keys(ns: &str) -> String {
    format!("apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: app, namespace: {ns}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: keys, namespace: {ns}}}\nstringData: {{key: {KEY}}}\n---\n")
}

/// `n` pods named `prefix-0`... with `app: prefix`, running as `app`.
fn pods_yaml(ns: &str, prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {prefix}-{i}, namespace: {ns}, labels: {{app: {prefix}}}}}\nspec: {{serviceAccountName: app, containers: [{{name: app, image: busybox}}]}}\n"))
        .collect()
}

/// Upstream requests per wall-clock minute, from the fakes' receipt times.
fn per_minute(times: &[u64]) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for t in times {
        *out.entry(t / 60).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_limits_and_budgets_hold_exactly_across_ten_sidecars() {
    let (_turn, client) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    namespaces(&client, &[SYSTEM, NS]).await;
    // A budget's spend lives in its status: a rerun starts from a new one.
    let budgets: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client.clone(),
        NS,
        &api_resource("switchyard.dev/v1alpha1", "AIBudget"),
    );
    for name in ["team", "later"] {
        let _ = budgets.delete(name, &Default::default()).await;
    }
    eventually(
        "an earlier run's budget is gone",
        Duration::from_secs(20),
        || async {
            budgets.get_opt("team").await.unwrap().is_none()
                && budgets.get_opt("later").await.unwrap().is_none()
        },
    )
    .await;
    operator_kubeconfig(&client, dir.path()).await;
    // A new install: no Lease, so no leader before this one (an earlier test's is gone).
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), SYSTEM);
    let _ = leases
        .delete("switchyard-operator-leader", &Default::default())
        .await;
    let op = start_operator(dir.path(), "gov", free_addr());
    eventually("operator ready", Duration::from_secs(30), || {
        http_ok(format!("{}/readyz", op.admin))
    })
    .await;
    let openai = Fake::start(FakeApi::OpenAi).await;
    let backup = Fake::start(FakeApi::OpenAi).await;
    // Budgeted calls fail over from `flaky` (every answer a 500) and are abandoned
    // mid-stream on `slow` (one chunk, then nothing for a minute).
    let flaky = Fake::start(FakeApi::OpenAi).await;
    flaky.script((0..200).map(|_| {
        Reply::json(
            500,
            json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}}),
        )
    }));
    let slow = Fake::start(FakeApi::OpenAi).await;
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}]})
        )
    };
    slow.script((0..PODS).map(|_| Reply {
        body: Body::Sse {
            events: vec![
                (Duration::ZERO, chunk("partial")),
                (Duration::from_secs(60), chunk("never read")),
            ],
            drop: true,
        },
        ..Reply::json(200, json!({}))
    }));
    let mut yaml = app_and_keys(NS);
    yaml += &format!(
        r#"
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: primary, namespace: {NS}}}
spec: {{type: openai, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}, limits: {{requestsPerMinute: 12}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: backup, namespace: {NS}}}
spec: {{type: openai, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: flaky, namespace: {NS}}}
spec: {{type: openai, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: slow, namespace: {NS}}}
spec: {{type: openai, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: chat, namespace: {NS}}}
spec: {{backends: [{{provider: primary, model: gpt-4o, priority: 0}}, {{provider: backup, model: gpt-4o, priority: 1}}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: paid, namespace: {NS}}}
spec: {{backends: [{{provider: flaky, model: gpt-4o-mini, priority: 0, pricing: {{inputPerMillionTokens: 100000, outputPerMillionTokens: 100000}}}}, {{provider: backup, model: gpt-4o-mini, priority: 1, pricing: {{inputPerMillionTokens: 100000, outputPerMillionTokens: 100000}}}}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: paid-slow, namespace: {NS}}}
spec: {{backends: [{{provider: slow, model: gpt-4o-mini, pricing: {{inputPerMillionTokens: 100000, outputPerMillionTokens: 100000}}}}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {{name: shared, namespace: {NS}}}
spec: {{rateLimit: {{requestsPerMinute: 20, scope: policy}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIBudget
metadata: {{name: team, namespace: {NS}}}
spec: {{limit: "12.00", period: month, models: [paid, paid-slow]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: paid-later, namespace: {NS}}}
spec: {{backends: [{{provider: backup, model: gpt-4o-mini, pricing: {{inputPerMillionTokens: 100000, outputPerMillionTokens: 100000}}}}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIBudget
metadata: {{name: later, namespace: {NS}}}
spec: {{limit: "100.00", period: month, models: [paid-later]}}
"#,
        openai.base_url(),
        backup.base_url(),
        flaky.base_url(),
        slow.base_url()
    );
    yaml.push_str(&pods_yaml(NS, "bot", PODS));
    apply(&client, &yaml).await;
    for (kind, name) in [
        ("AIProvider", "primary"),
        ("AIModel", "chat"),
        ("AIRoutingPolicy", "shared"),
    ] {
        wait_ready(&client, NS, kind, name, ("True", "Ready")).await;
    }
    let pods = (0..PODS).map(|i| format!("bot-{i}"));
    let sidecars = pod_sidecars(&client, dir.path(), NS, &op.url, pods).await;
    serving(&sidecars, &["chat", "paid", "paid-later", "paid-slow"]).await;

    let mut scenario = Scenario::start("a new install's first leader grants at once");
    // The first leader there ever was: nobody granted this minute before it, so it does not
    // keep the window closed the way a leader that took over must (calls would get 429
    // until the next minute).
    let (status, answer) = ask(&sidecars[0], "chat").await;
    assert_eq!(
        status, 200,
        "mid-window, the first leader's grants: {answer}"
    );

    scenario.next("one busy pod uses the whole shared limit");
    // One busy pod alone may use the whole shared limit: no static split by pod count.
    if let Some(ok) = admitted_in_a_window(&sidecars[0], "chat", 22).await {
        assert_eq!(ok, 20, "one pod got the whole policy limit, and no more");
    }

    scenario.next("ten pods at once stay within the policy and account limits");
    // Ten pods at once: the upstreams together see at most the policy's 20 a minute, the
    // primary account at most its 12; the rest fails over without touching it.
    let window = next_minute().await;
    let calls = sidecars
        .iter()
        .flat_map(|s| (0..6).map(move |_| ask(s, "chat")));
    let answers = futures_util::future::join_all(calls).await;
    let admitted = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        admitted + refused.len(),
        PODS * 6,
        "every call admitted or refused with 429"
    );
    assert!(
        refused
            .iter()
            .all(|v| v["error"]["code"] == "rate_limit_exceeded"),
        "{refused:?}"
    );
    let stamps = |f: &Fake| -> Vec<u64> { f.received().iter().map(|r| r.at).collect() };
    let (primary, both): (Vec<u64>, Vec<u64>) =
        (stamps(&openai), [stamps(&openai), stamps(&backup)].concat());
    for (minute, n) in per_minute(&both) {
        assert!(
            n <= 20,
            "minute {minute}: the upstreams saw {n} calls under a shared limit of 20"
        );
    }
    for (minute, n) in per_minute(&primary) {
        assert!(
            n <= 12,
            "minute {minute}: the primary account saw {n} calls over its 12"
        );
    }
    if unix() / 60 == window {
        assert_eq!(admitted, 20, "the whole limit was used, across pods");
        assert_eq!(
            per_minute(&primary).get(&window).copied(),
            Some(12),
            "the account limit was used whole"
        );
    }

    scenario.next("a budget holds through streams, failovers and abandoned calls");
    // A budget: every pod spends at once, streamed and not, failing over from a backend that
    // answers 500 and abandoning streams midway; what is settled never passes the limit.
    let usage_of = |o: Option<kube::api::DynamicObject>| -> (u64, f64) {
        let today = o
            .map(|o| o.data["status"]["usage"]["today"].clone())
            .unwrap_or_default();
        (
            today["requests"].as_u64().unwrap_or(0),
            today["cost"]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0.0),
        )
    };
    let before = [
        usage_of(get(&client, NS, "AIModel", "paid").await),
        usage_of(get(&client, NS, "AIModel", "paid-slow").await),
    ];
    next_minute().await;
    let calls = sidecars
        .iter()
        .flat_map(|s| (0..2).map(move |i| ask_as(s, "paid", i == 1)));
    // The streams start a moment after the calls: started together, ten streams could
    // reserve the whole budget before any call asked, and no call would be served (the
    // budget holds either way; the scenario wants both kinds admitted and some refused).
    let abandoned = sidecars.iter().map(|s| async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        abandon(s, "paid-slow").await
    });
    let (answers, abandoned) = futures_util::future::join(
        futures_util::future::join_all(calls),
        futures_util::future::join_all(abandoned),
    )
    .await;
    let cost = |v: &Value| {
        let u = &v["usage"];
        (u["prompt_tokens"].as_u64().unwrap_or(0) + u["completion_tokens"].as_u64().unwrap_or(0))
            as f64
            * 0.1
    };
    let known: f64 = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| cost(v))
        .sum();
    let over_budget = answers
        .iter()
        .filter(|(_, v)| v["error"]["code"] == "budget_exceeded")
        .count();
    let cut = abandoned.iter().filter(|(s, _)| *s == 200).count();
    assert!(
        abandoned.iter().all(|(s, chunk)| *s == 429 || *chunk),
        "{abandoned:?}"
    );
    assert!(
        known > 0.0 && over_budget > 0,
        "some calls were served, the rest refused: {answers:?}"
    );
    assert!(
        !flaky.received().is_empty(),
        "calls failed over from the failing backend"
    );
    eventually(
        "every abandoned stream is cancelled upstream",
        Duration::from_secs(20),
        || async { slow.cancelled() == cut },
    )
    .await;
    // The status catches up and holds: the settled spend (what completed, plus each
    // abandoned stream's input estimate and streamed tokens) is within the limit.
    let status_spent = || async {
        let b = get(&client, NS, "AIBudget", "team").await.unwrap();
        let status = &b.data["status"];
        let period = status["periodStart"]
            .as_str()
            .is_some_and(|p| p.ends_with("T00:00:00Z"));
        let spent = status["spent"].as_str().and_then(|s| s.parse::<f64>().ok());
        spent.filter(|_| period)
    };
    let usage_cost = || async {
        let mut total = (0, 0.0);
        for (model, (requests, cost)) in ["paid", "paid-slow"].into_iter().zip(before) {
            let (r, c) = usage_of(get(&client, NS, "AIModel", model).await);
            total = (total.0 + r - requests, total.1 + c - cost);
        }
        total
    };
    let served = answers.iter().filter(|(s, _)| *s == 200).count() + cut;
    // Usage reaches the AIModels' status (today and this month) and agrees with the budget.
    let seen = std::sync::Mutex::new(String::new());
    eventually(
        "the budget's status and the models' usage show every settled call",
        Duration::from_secs(30),
        || async {
            let (requests, cost) = usage_cost().await;
            let spent = status_spent().await.unwrap_or(-1.0);
            // What was seen, each time it changes (shown when the wait times out).
            let now = format!("usage: {requests} requests, {cost} dollars; budget spent {spent}; served {served} (cut {cut}), completed calls' cost {known}");
            if *seen.lock().unwrap() != now {
                eprintln!("{now}");
                *seen.lock().unwrap() = now;
            }
            requests == served as u64 && (cost - spent).abs() < 1e-6 && spent >= known - 1e-6
        },
    )
    .await;
    let spent = status_spent().await.unwrap();
    assert!(
        spent <= 12.0 + 1e-9,
        "settled {spent} against a 12.00 budget"
    );
    assert!(
        spent > known + 1e-9 || cut == 0,
        "the abandoned streams are settled too: {spent} vs {known} completed"
    );
    let metrics = reqwest::get(format!("{}/metrics", op.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchyard_cost_usd_total{namespace=\"sy-e2e-gov\",workload=\"Pod/bot-"),
        "spend by workload:\n{metrics}"
    );
    assert!(
        metrics
            .contains("switchyard_budget_limit_usd{namespace=\"sy-e2e-gov\",budget=\"team\"} 12"),
        "{metrics}"
    );
    let table = std::process::Command::new("kubectl")
        .args(["get", "aib,aim", "-n", NS])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if !table.is_empty() {
        assert!(
            table.contains("LIMIT") && table.contains("SPENT") && table.contains("EXHAUSTED"),
            "{table}"
        );
        assert!(
            table.contains("REQUESTS TODAY") && table.contains("COST TODAY"),
            "{table}"
        );
    }

    scenario.next("the operator goes away and comes back");
    // The operator goes away: sidecars keep serving within their share of what was last
    // known to remain (here nothing was leased yet: 100.00 / 10 pods each), and the spend
    // they settle meanwhile is reported when it is back, counted once.
    let mut op = op;
    op.proc.kill();
    let calls = sidecars.iter().map(|s| ask(s, "paid-later"));
    let answers = futures_util::future::join_all(calls).await;
    let offline: f64 = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| cost(v))
        .sum();
    assert!(
        answers.iter().filter(|(s, _)| *s == 200).count() >= PODS / 2,
        "traffic keeps flowing: {answers:?}"
    );
    assert!(offline <= 100.0);
    let restarted = restart_operator(dir.path(), op);
    eventually("operator back", Duration::from_secs(30), || {
        http_ok(format!("{}/readyz", restarted.admin))
    })
    .await;
    eventually(
        "reports from the outage arrive, once",
        Duration::from_secs(45),
        || async {
            let b = get(&client, NS, "AIBudget", "later").await.unwrap();
            let written = b.data["status"]["spent"]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(-1.0);
            (written - offline).abs() < 1e-6
        },
    )
    .await;
    // The first budget's spend survived the restart (it lives in status).
    let written = status_spent().await.unwrap();
    assert!((written - spent).abs() < 1e-6, "{written} vs {spent}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let b = get(&client, NS, "AIBudget", "later").await.unwrap();
    let written: f64 = b.data["status"]["spent"].as_str().unwrap().parse().unwrap();
    assert!(
        (written - offline).abs() < 1e-6,
        "still counted once: {written} vs {offline}"
    );
}

/// Whether an operator's `/metrics` says it leads.
async fn leads(op: &Operator) -> bool {
    match reqwest::get(format!("{}/metrics", op.admin)).await {
        Ok(r) => r
            .text()
            .await
            .is_ok_and(|m| m.lines().any(|l| l == "switchyard_operator_leader 1")),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_dies_mid_window_and_no_limit_is_passed() {
    const NS: &str = "sy-e2e-gov-ha";
    const PODS: usize = 4;
    let (_turn, client) = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    namespaces(&client, &[SYSTEM, NS]).await;
    operator_kubeconfig(&client, dir.path()).await;
    // Two replicas: A leads (once an earlier holder's lease has run out), B follows.
    let a = start_operator(dir.path(), "ha-a", free_addr());
    eventually("A leads", Duration::from_secs(40), || leads(&a)).await;
    let b = start_operator(dir.path(), "ha-b", free_addr());
    eventually("B ready", Duration::from_secs(30), || {
        http_ok(format!("{}/readyz", b.admin))
    })
    .await;
    assert!(!leads(&b).await, "one leader");
    let upstream = Fake::start(FakeApi::OpenAi).await;
    let mut yaml = app_and_keys(NS);
    yaml += &format!(
        r#"
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: primary, namespace: {NS}}}
spec: {{type: openai, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: chat, namespace: {NS}}}
spec: {{backends: [{{provider: primary, model: gpt-4o}}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {{name: shared, namespace: {NS}}}
spec: {{rateLimit: {{requestsPerMinute: 20, scope: policy}}}}
"#,
        upstream.base_url()
    );
    yaml.push_str(&pods_yaml(NS, "ha", PODS));
    apply(&client, &yaml).await;
    wait_ready(&client, NS, "AIRoutingPolicy", "shared", ("True", "Ready")).await;
    // Every sidecar talks to B, which does not lead.
    let pods = (0..PODS).map(|i| format!("ha-{i}"));
    let sidecars = pod_sidecars(&client, dir.path(), NS, &b.url, pods).await;
    serving(&sidecars, &["chat"]).await;

    // B forwards lease exchanges to A: one busy pod gets the whole limit (its offline share
    // would be a quarter of it).
    if let Some(ok) = admitted_in_a_window(&sidecars[0], "chat", 22).await {
        assert_eq!(ok, 20, "the leader's leases, through the follower");
    }

    // Mid-window the leader dies. Traffic keeps flowing within each pod's share of what was
    // left, B takes over (granting nothing more in a window A may have granted), and the
    // upstream never sees more than the limit in any minute.
    let window = next_minute().await;
    let first = sidecars
        .iter()
        .flat_map(|s| [ask(s, "chat"), ask(s, "chat")]);
    let before = futures_util::future::join_all(first).await;
    assert!(before.iter().all(|(s, _)| *s == 200), "{before:?}");
    // A flush (every 2 s) tells each pod what is left.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut a = a;
    a.proc.kill();
    let mut after = 0;
    while unix() / 60 == window && unix() % 60 < 55 {
        let round = futures_util::future::join_all(sidecars.iter().map(|s| ask(s, "chat"))).await;
        for (status, body) in &round {
            match status {
                200 => after += 1,
                429 => assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}"),
                s => panic!("{s}: {body}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(after > 0, "traffic kept flowing without a leader");
    eventually("B leads", Duration::from_secs(40), || leads(&b)).await;

    // The next window is B's: one pod gets the whole limit again.
    if let Some(ok) = admitted_in_a_window(&sidecars[1], "chat", 22).await {
        assert_eq!(ok, 20, "the new leader's leases");
    }
    let times: Vec<u64> = upstream.received().iter().map(|r| r.at).collect();
    for (minute, n) in per_minute(&times) {
        assert!(
            n <= 20,
            "minute {minute}: the upstream saw {n} calls under a shared limit of 20"
        );
    }
}
