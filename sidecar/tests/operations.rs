//! Bad input, config loading and hot reload, the admin port, and privacy, through the real
//! binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const CANARY: &str = "PROMPT-CANARY-7f3a";

fn base(up: &Upstreams) -> String {
    let mut yaml = up.providers();
    yaml.push_str(&model(
        "chat",
        &[("openai", "gpt-4o", 0)],
        "  aliases: [gpt-4o]",
    ));
    yaml.push_str(&model("slow", &[("anthropic", "claude", 0)], ""));
    yaml
}

async fn raw(sc: &Sidecar, method: &str, path: &str, body: &'static str) -> Answer {
    let resp = client()
        .request(method.parse().unwrap(), sc.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Answer {
        status,
        headers,
        text: resp.text().await.unwrap(),
    }
}

fn assert_openai_error(a: &Answer, status: u16, param: Option<&str>) {
    assert_eq!(a.status, status, "{}", a.text);
    let v = a.json();
    let e = &v["error"];
    assert!(e["message"].is_string() && e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{v}");
    }
    assert!(!a.header("x-request-id").is_empty());
}

fn assert_anthropic_error(a: &Answer, status: u16, kind: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    let v = a.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_errors_in_the_callers_dialect() {
    let up = Upstreams::start().await;
    let sc = Sidecar::start(
        binary(),
        &base(&up),
        &[
            ("GEMINI_TEST_KEY", KEY),
            ("SWITCHYARD_MAX_BODY_BYTES", "2000"),
        ],
    );
    assert_openai_error(
        &raw(
            &sc,
            "POST",
            "/v1/chat/completions",
            "{\"model\": \"chat\", \"messages\": [",
        )
        .await,
        400,
        None,
    );
    assert_anthropic_error(
        &raw(&sc, "POST", "/v1/messages", "{not json").await,
        400,
        "invalid_request_error",
    );
    assert_openai_error(
        &raw(&sc, "POST", "/v1/chat/completions", "[1,2]").await,
        400,
        None,
    );
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (json!({"model": 42, "messages": []}), "model"),
        (json!({"model": "chat", "messages": "hello"}), "messages"),
        (
            json!({"model": "chat", "messages": [{"content": "no role"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "chat", "messages": [], "temperature": "hot"}),
            "temperature",
        ),
        (
            json!({"model": "chat", "messages": [], "max_tokens": -1}),
            "max_tokens",
        ),
        (
            json!({"model": "chat", "messages": [], "stream": "yes"}),
            "stream",
        ),
    ];
    for (body, param) in cases {
        assert_openai_error(
            &post(&sc, "/v1/chat/completions", &body).await,
            400,
            Some(param),
        );
    }
    let a = post(
        &sc,
        "/v1/messages",
        &json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_anthropic_error(&a, 400, "invalid_request_error");
    assert!(a.text.contains("max_tokens"));
    assert_openai_error(
        &post(&sc, "/v1/embeddings", &json!({"model": "chat"})).await,
        400,
        Some("input"),
    );
    let a = post(
        &sc,
        "/v1/chat/completions",
        &json!({"model": "gpt-5-unknown", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_openai_error(&a, 404, Some("model"));
    assert_eq!(a.json()["error"]["code"], "model_not_found");
    let (path, body) = chat("anthropic", "claude-unknown", "x", false);
    assert_anthropic_error(&post(&sc, &path, &body).await, 404, "not_found_error");
    let big = json!({"model": "chat", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    assert_openai_error(&post(&sc, "/v1/chat/completions", &big).await, 413, None);
    let big = json!({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    assert_anthropic_error(
        &post(&sc, "/v1/messages", &big).await,
        413,
        "request_too_large",
    );
    assert_openai_error(&raw(&sc, "POST", "/v1/completions", "{}").await, 404, None);
    assert_openai_error(
        &raw(&sc, "GET", "/v1/chat/completions", "").await,
        405,
        None,
    );
    assert_anthropic_error(
        &raw(&sc, "POST", "/v1/messages/batches", "{}").await,
        404,
        "not_found_error",
    );
    assert_eq!(
        up.openai.received().len(),
        0,
        "no bad request reached a provider"
    );
    let (path, body) = chat("openai", "chat", "still fine", false);
    assert_eq!(post(&sc, &path, &body).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_garbage_is_a_502_in_the_callers_dialect() {
    let up = Upstreams::start().await;
    let sc = start(&base(&up));
    let garbage = Reply {
        body: Body::Raw("application/json", "<html>oops</html>".into()),
        ..Reply::json(200, json!({}))
    };
    up.openai.script(vec![garbage; 3]);
    let (path, body) = chat("openai", "chat", "x", false);
    let a = post(&sc, &path, &body).await;
    assert_openai_error(&a, 502, None);
    assert_eq!(a.json()["error"]["type"], "upstream_error");
    let truncated = Reply {
        body: Body::Raw("application/json", "{\"truncated".into()),
        ..Reply::json(200, json!({}))
    };
    up.anthropic.script(vec![truncated; 3]);
    let (path, body) = chat("anthropic", "slow", "x", false);
    assert_anthropic_error(&post(&sc, &path, &body).await, 502, "api_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_answers_and_keys_never_reach_logs_metrics_or_errors() {
    let up = Upstreams::start().await;
    let sc = start(&base(&up));
    for dialect in ["openai", "anthropic"] {
        for stream in [false, true] {
            let (path, body) = chat(dialect, "chat", CANARY, stream);
            let a = post(&sc, &path, &body).await;
            assert_eq!(a.status, 200);
        }
        let (path, body) = chat(dialect, "no-such-model", CANARY, false);
        assert!(!post(&sc, &path, &body).await.text.contains(CANARY));
    }
    up.openai.script([Reply::json(400, json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": null}}))]);
    let (path, body) = chat("openai", "chat", CANARY, false);
    post(&sc, &path, &body).await;
    let (_, metrics) = sc.admin_get("/metrics").unwrap();
    let (_, config) = sc.admin_get("/config").unwrap();
    let logs = sc.logs();
    for (what, text) in [("logs", &logs), ("metrics", &metrics), ("config", &config)] {
        assert!(!text.contains(CANARY), "a prompt reached the {what}");
        assert!(!text.contains(KEY), "a key reached the {what}");
    }
    assert!(config.contains("<redacted>"), "{config}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_port_reports_health_readiness_metrics_and_config() {
    let up = Upstreams::start().await;
    let mut yaml = base(&up).replace("backends: [{provider: openai, model: gpt-4o, priority: 0}]", "backends: [{provider: openai, model: gpt-4o, priority: 0, pricing: {inputPerMillionTokens: 1000000, outputPerMillionTokens: 2000000}}]");
    yaml.push_str(&model(
        "failing",
        &[("mock-down", "m", 0), ("openai", "gpt-4o", 1)],
        "",
    ));
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: mock-down}\nspec: {type: mock, mock: {failureRate: 1}}\n");
    let sc = start(&yaml);
    assert_eq!(sc.admin_get("/healthz").unwrap().0, 200);
    assert_eq!(sc.admin_get("/readyz").unwrap().0, 200);
    let body = json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "one two three"}]});
    assert_eq!(post(&sc, "/v1/chat/completions", &body).await.status, 200);
    let (path, body) = chat("anthropic", "failing", "one two", false);
    assert_eq!(post(&sc, &path, &body).await.status, 200);
    let bad = json!({"model": "no-such-model", "input": "x"});
    assert_eq!(post(&sc, "/v1/embeddings", &bad).await.status, 404);
    let (_, m) = sc.admin_get("/metrics").unwrap();
    for needle in [
        "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"embeddings\",gen_ai_request_model=\"unknown\",gen_ai_provider_name=\"\",gen_ai_response_model=\"\",error_type=\"model_not_found\"} 1",
        "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=\"chat\",gen_ai_request_model=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\",error_type=\"\"} 1",
        "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"chat\",gen_ai_request_model=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\",gen_ai_token_type=\"output\"} 3",
        "gen_ai_server_time_to_first_token_seconds_count{gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\"} 1",
        "switchyard_requests_total{gen_ai_request_model=\"chat\",api=\"openai\",status_code=\"200\"} 1",
        "switchyard_upstream_attempts_total{gen_ai_provider_name=\"mock-down\",gen_ai_response_model=\"m\",outcome=\"server_error\",status_code=\"503\"} 1",
        "switchyard_failovers_total{gen_ai_request_model=\"failing\"} 1",
        "switchyard_tokens_total{gen_ai_operation_name=\"chat\",gen_ai_request_model=\"chat\",gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\",gen_ai_token_type=\"input\"} 3",
        "switchyard_cost_usd_total{gen_ai_provider_name=\"openai\",gen_ai_response_model=\"gpt-4o\"} 9",
        "switchyard_config_reloads_total{outcome=\"ok\"} 1",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
    let (status, config) = sc.admin_get("/config").unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(v["providers"]["openai"]["apiKey"], "<redacted>");
    assert_eq!(v["policy"]["attempts"], 3);
    assert_eq!(v["policy"]["firstByteTimeout"], "1m");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_is_served_within_a_second_and_a_broken_one_is_rejected() {
    let up = Upstreams::start().await;
    let sc = start(&base(&up));
    let (path, body) = chat("openai", "new-model", "x", false);
    assert_eq!(post(&sc, &path, &body).await.status, 404);
    // A slow stream in flight across the reload must finish.
    up.anthropic
        .script([Reply::default_after(Duration::from_millis(800))]);
    let sc_url = sc.url("/v1/messages");
    let inflight = tokio::spawn(async move {
        let (_, body) = chat("anthropic", "slow", "survives the reload", true);
        client()
            .post(sc_url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut edited = base(&up);
    edited.push_str(&model("new-model", &[("mock", "m", 0)], ""));
    let changed = Instant::now();
    sc.write_config(&edited);
    loop {
        if post(&sc, &path, &body).await.status == 200 {
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "the edit was not served within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let streamed = inflight.await.unwrap();
    assert!(
        streamed.contains("survives") && streamed.contains("message_stop"),
        "{streamed}"
    );
    sc.write_config(&format!("{edited}---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {{name: broken}}\nspec: {{backends: [{{provider: openai, model: x, weight: lots}}]}}\n"));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !sc.logs().contains("config change rejected") {
        assert!(
            Instant::now() < deadline,
            "no rejection logged:\n{}",
            sc.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = sc.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("config change rejected"))
        .unwrap();
    assert!(
        line.contains("switchyard.yaml:"),
        "the log names file and line: {line}"
    );
    assert_eq!(
        post(&sc, &path, &body).await.status,
        200,
        "the last good config keeps serving"
    );
    let (_, m) = sc.admin_get("/metrics").unwrap();
    assert!(
        m.contains("switchyard_config_reloads_total{outcome=\"rejected\"} 1"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unresolvable_objects_are_left_out_and_reported_while_the_rest_serves() {
    let up = Upstreams::start().await;
    let mut yaml = base(&up);
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: nokey}\nspec: {type: openai, credentials: {secretRef: {name: missing-secret, key: apiKey}}}\n");
    yaml.push_str(&model("needs-secret", &[("nokey", "gpt-4o", 0)], ""));
    yaml.push_str(&model("dangling", &[("ghost", "x", 0)], ""));
    yaml.push_str(&model("twin", &[("mock", "x", 0)], "  aliases: [gpt-4o]"));
    let sc = start(&yaml);
    for name in ["needs-secret", "dangling"] {
        let (path, body) = chat("openai", name, "x", false);
        assert_eq!(post(&sc, &path, &body).await.status, 404, "{name}");
    }
    let (path, body) = chat("openai", "gpt-4o", "x", false);
    let a = post(&sc, &path, &body).await;
    assert_eq!(
        a.header("x-switchyard-provider"),
        "openai",
        "the first model keeps its alias"
    );
    let logs = sc.logs();
    for needle in [
        "name=nokey field=spec.credentials.secretRef reason=SecretNotFound",
        "name=dangling field=spec.backends[0].provider reason=ProviderNotFound",
        "name=twin field=spec.aliases[0] reason=Conflicted",
    ] {
        assert!(logs.contains(needle), "missing {needle:?} in\n{logs}");
    }
    let (_, config) = sc.admin_get("/config").unwrap();
    assert!(config.contains("SecretNotFound"), "{config}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_that_breaks_the_schema_stops_startup_with_file_and_line() {
    let yaml = "apiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: x}\nspec: {type: watsonx}\n";
    let logs = Sidecar::try_start(binary(), yaml, &[])
        .err()
        .expect("must not start");
    assert!(
        logs.contains("switchyard.yaml:4") && logs.contains("unknown variant"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_of_manifests_is_one_config_and_sigterm_drains() {
    let up = Upstreams::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("providers.yaml"), up.providers()).unwrap();
    std::fs::write(
        dir.path().join("models.yml"),
        model("chat", &[("gemini", "gemini-2.5-flash", 0)], ""),
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not a manifest").unwrap();
    let addr = switchyard_tests::sidecar::free_addr();
    let admin = switchyard_tests::sidecar::free_addr();
    let mut child = std::process::Command::new(binary())
        .env("SWITCHYARD_CONFIG", dir.path())
        .env("SWITCHYARD_LISTEN", addr.to_string())
        .env("SWITCHYARD_ADMIN_LISTEN", admin.to_string())
        .env("GEMINI_TEST_KEY", KEY)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}/v1/chat/completions");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (_, body) = chat("openai", "chat", "from a directory", false);
    let answer = loop {
        if let Ok(r) = client().post(&url).json(&body).send().await {
            break r.json::<Value>().await.unwrap();
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "from a directory"
    );
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_token_counting_is_exact_on_anthropic_and_estimated_elsewhere() {
    let up = Upstreams::start().await;
    let sc = start(&base(&up));
    let body = json!({"model": "chat", "system": "be brief", "messages": [{"role": "user", "content": "count these tokens please"}]});
    let a = post(&sc, "/v1/messages/count_tokens", &body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.header("x-switchyard-estimated"), "true");
    let n = a.json()["input_tokens"].as_u64().unwrap();
    assert!((10..100).contains(&n), "{n}");
    assert!(
        up.openai.received().is_empty(),
        "no provider call is spent on an estimate"
    );
    // Served by Anthropic: Anthropic counts, with the upstream model and the caller's betas.
    let mut exact = body.clone();
    exact["model"] = json!("slow");
    let a = post_with(
        &sc,
        "/v1/messages/count_tokens",
        &exact,
        &[("anthropic-beta", "token-counting-2024-11-01")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json(), json!({"input_tokens": 6}));
    assert_eq!(a.header("x-switchyard-estimated"), "");
    let sent = up.anthropic.received().pop().unwrap();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert_eq!(sent.body["model"], "claude");
    assert_eq!(sent.headers["anthropic-beta"], "token-counting-2024-11-01");
    let a = post(
        &sc,
        "/v1/messages/count_tokens",
        &json!({"model": "nope", "messages": []}),
    )
    .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["error"]["type"], "not_found_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn gemini_token_counting_is_exact_on_gemini_and_estimated_elsewhere_in_both_shapes() {
    let up = Upstreams::start().await;
    let sc = start(&base(&up));
    let contents = json!([{"role": "user", "parts": [{"text": "count these tokens please"}]}]);
    for body in [
        json!({"contents": contents}),
        json!({"generateContentRequest": {"model": "models/chat", "contents": contents}}),
    ] {
        let a = post(&sc, "/v1beta/models/chat:countTokens", &body).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let n = a.json()["totalTokens"].as_u64().unwrap();
        assert!((5..100).contains(&n), "{n}");
        assert_eq!(a.header("x-switchyard-estimated"), "true");
    }
    assert!(up.gemini.received().is_empty() && up.openai.received().is_empty());
    let mut yaml = base(&up);
    yaml.push_str(&model("gem", &[("gemini", "gemini-2.5-flash", 0)], ""));
    let sc = start(&yaml);
    for body in [
        json!({"contents": contents}),
        json!({"generateContentRequest": {"model": "models/gem", "contents": contents}}),
    ] {
        let a = post(&sc, "/v1beta/models/gem:countTokens", &body).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json()["totalTokens"], 4, "Gemini's own count");
        let sent = up.gemini.received().pop().unwrap();
        assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:countTokens");
    }
    let a = post(
        &sc,
        "/v1beta/models/nope:countTokens",
        &json!({"contents": contents}),
    )
    .await;
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["error"]["status"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_ready_returns_once_the_sidecar_is_ready() {
    let up = Upstreams::start().await;
    let sc = start(&base(&up));
    let status = std::process::Command::new(binary())
        .arg("wait-ready")
        .env("SWITCHYARD_ADMIN_LISTEN", sc.admin.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
