//! Rate limits, provider account limits and budgets through the real binary in standalone
//! mode (where every limit is this pod's alone): 429s in each dialect naming the limit,
//! `Retry-After` and `x-ratelimit-*`, failover past a spent provider without an upstream
//! request, and budgets that reserve before and settle after.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_rate_limit_refuses_the_call_over_it_in_every_dialect() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    yaml.push_str(&model("chat", &[("mock", "m", 0)], ""));
    yaml.push_str(&policy("rateLimit: {requestsPerMinute: 3}"));
    let sc = start(&yaml);
    // Three calls fit (unless the minute turns meanwhile, which only adds room).
    let mut last_ok = None;
    for _ in 0..3 {
        let (path, body) = chat("openai", "chat", "hello", false);
        let a = post(&sc, &path, &body).await;
        assert_eq!(a.status, 200, "{}", a.text);
        last_ok = Some(a);
    }
    let ok = last_ok.unwrap();
    assert_eq!(ok.header("x-ratelimit-limit-requests"), "3");
    let remaining: u64 = ok.header("x-ratelimit-remaining-requests").parse().unwrap();
    assert!(remaining <= 2, "{remaining}");
    assert!(ok.header("x-ratelimit-reset-requests").ends_with('s'));
    let refused = |a: &Answer| {
        assert_eq!(a.status, 429, "{}", a.text);
        let after: u64 = a.header("retry-after").parse().expect("whole seconds");
        assert!((1..=60).contains(&after), "{after}");
    };
    let (path, body) = chat("openai", "chat", "hello", false);
    let a = post(&sc, &path, &body).await;
    if a.status == 200 {
        return; // the minute turned over between calls: nothing more to see this run
    }
    refused(&a);
    let e = &a.json()["error"];
    assert_eq!(e["type"], "rate_limit_error");
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("AIRoutingPolicy test: 3 requests per minute"),
        "{e}"
    );
    let (path, body) = chat("anthropic", "chat", "hello", false);
    let a = post(&sc, &path, &body).await;
    refused(&a);
    assert_eq!(a.json()["error"]["type"], "rate_limit_error");
    let a = post(
        &sc,
        "/v1beta/models/chat:generateContent",
        &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
    )
    .await;
    refused(&a);
    assert_eq!(a.json()["error"]["status"], "RESOURCE_EXHAUSTED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_provider_account_is_skipped_without_an_upstream_request() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers().replace(
        "metadata: {name: openai}\nspec: {type: openai,",
        "metadata: {name: openai}\nspec: {limits: {requestsPerMinute: 2}, type: openai,",
    );
    yaml.push_str(&model(
        "chat",
        &[("openai", "gpt-4o", 0), ("anthropic", "claude", 1)],
        "",
    ));
    let sc = start(&yaml);
    let minute = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 60
    };
    let before = minute();
    let mut providers = Vec::new();
    for _ in 0..4 {
        let (path, body) = chat("openai", "chat", "hello", false);
        let a = post(&sc, &path, &body).await;
        assert_eq!(a.status, 200, "{}", a.text);
        providers.push(a.header("x-switchyard-provider").to_string());
    }
    if minute() != before {
        return; // the window turned over mid-test: the split below is not defined
    }
    assert_eq!(providers, ["openai", "openai", "anthropic", "anthropic"]);
    assert_eq!(
        up.openai.received().len(),
        2,
        "no upstream request once the account is spent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_admits_calls_while_it_can_reserve_their_maximum_cost_then_answers_429() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    // One cent a token; the mock counts words as tokens.
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: chat}\nspec: {backends: [{provider: mock, model: m, pricing: {inputPerMillionTokens: 10000, outputPerMillionTokens: 10000}}]}\n");
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIBudget\nmetadata: {name: tiny}\nspec: {limit: \"1.00\", period: month}\n");
    let sc = start(&yaml);
    let body = json!({"model": "chat", "max_tokens": 10, "messages": [{"role": "user", "content": "one two"}]});
    let mut admitted = 0;
    let mut refusal: Option<Value> = None;
    for _ in 0..40 {
        let a = post(&sc, "/v1/chat/completions", &body).await;
        if a.status == 200 {
            admitted += 1;
            continue;
        }
        assert_eq!(a.status, 429, "{}", a.text);
        let after: u64 = a.header("retry-after").parse().unwrap();
        assert!(
            after > 0 && after <= 31 * 86_400,
            "seconds until the month's end: {after}"
        );
        refusal = Some(a.json());
        break;
    }
    let e = refusal.expect("the budget runs out")["error"].clone();
    assert_eq!(e["type"], "insufficient_quota");
    assert_eq!(e["code"], "budget_exceeded");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("AIBudget tiny") && message.contains("resets at 20"),
        "{message}"
    );
    // Each call costs 4 cents (2 tokens in, 2 out) and reserves 10 output tokens plus its
    // body's size at one cent each: admitted only while that much is left of $1.
    let reserve = (body.to_string().len() as u64).div_ceil(4) + 10;
    let expected = (100 - reserve) / 4 + 1;
    assert_eq!(
        admitted, expected,
        "spent {admitted} x 4 cents; each reserves {reserve} cents"
    );
    // The settled spend never passes the limit.
    assert!(admitted * 4 <= 100);
    // Another dialect gets Anthropic's shape.
    let (path, body) = chat("anthropic", "chat", "one two", false);
    let a = post(&sc, &path, &body).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.json()["error"]["type"], "rate_limit_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_cut_before_its_usage_is_settled_at_the_input_estimate_and_the_tokens_streamed() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    // One cent a token.
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: chat}\nspec: {backends: [{provider: openai, model: gpt-4o, pricing: {inputPerMillionTokens: 10000, outputPerMillionTokens: 10000}}]}\n");
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIBudget\nmetadata: {name: tiny}\nspec: {limit: \"1.00\", period: month}\n");
    let sc = start(&yaml);
    // Two content events, then the connection is cut: no usage ever comes.
    let cut = || {
        cut_after(vec![
            (std::time::Duration::ZERO, text_chunk("partial ")),
            (std::time::Duration::ZERO, text_chunk("answer")),
        ])
    };
    up.openai.script((0..10).map(|_| cut()));
    let body = json!({"model": "chat", "max_tokens": 40, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut admitted = 0;
    for _ in 0..10 {
        let a = post(&sc, "/v1/chat/completions", &body).await;
        if a.status == 429 {
            break;
        }
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(a.text.contains("partial"), "{}", a.text);
        admitted += 1;
    }
    // Each call reserves its input estimate plus 40 output tokens; cut after two events, it
    // is settled at the input estimate plus two, and the rest of the reservation comes back.
    let input = (body.to_string().len() as u64).div_ceil(4);
    let (reserve, settled) = (input + 40, input + 2);
    let expected = (100 - reserve) / settled + 1;
    assert_ne!(
        expected,
        (100 - reserve) / reserve + 1,
        "the test tells the two apart"
    );
    assert_eq!(
        admitted, expected,
        "each call reserves {reserve} cents and settles at {settled}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_the_caller_abandons_is_settled_at_what_it_streamed_and_a_failed_attempt_costs_nothing(
) {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    // One cent a token; the first backend fails every call, the second answers slowly.
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: chat}\nspec: {backends: [{provider: anthropic, model: claude, priority: 0, pricing: {inputPerMillionTokens: 10000, outputPerMillionTokens: 10000}}, {provider: openai, model: gpt-4o, priority: 1, pricing: {inputPerMillionTokens: 10000, outputPerMillionTokens: 10000}}]}\n");
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIBudget\nmetadata: {name: small}\nspec: {limit: \"3.00\", period: month}\n");
    let sc = start(&yaml);
    let failing = || {
        Reply::json(
            500,
            json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}),
        )
    };
    up.anthropic.script((0..20).map(|_| failing()));
    // One event at once, the next only after the caller has gone.
    let slow = || {
        cut_after(vec![
            (std::time::Duration::ZERO, text_chunk("partial ")),
            (std::time::Duration::from_secs(30), text_chunk("never read")),
        ])
    };
    up.openai.script((0..20).map(|_| slow()));
    let body = json!({"model": "chat", "max_tokens": 40, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let client = reqwest::Client::new();
    let mut admitted: u64 = 0;
    for _ in 0..20 {
        let mut r = client
            .post(sc.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 200);
        let first = r.chunk().await.unwrap().unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&first).contains("partial"),
            "{first:?}"
        );
        // The caller goes away mid-stream.
        drop(r);
        admitted += 1;
        let settled = up.openai.cancelled();
        for _ in 0..100 {
            if up.openai.cancelled() > settled {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert_eq!(
        up.openai.cancelled() as u64,
        admitted,
        "each abandoned stream is cancelled upstream"
    );
    assert!(
        !up.anthropic.received().is_empty(),
        "the calls failed over from the first backend"
    );
    // Each call reserves its input estimate plus 40 output tokens at the dearer backend;
    // the failed attempt settles nothing; the abandoned stream is settled at the input
    // estimate plus the one event it relayed, and the rest comes back.
    let input = (body.to_string().len() as u64).div_ceil(4);
    let (reserve, settled) = (input + 40, input + 1);
    let expected = (300 - reserve) / settled + 1;
    assert_ne!(expected, (300 - reserve) / reserve + 1);
    assert_eq!(
        admitted, expected,
        "each call reserves {reserve} cents and settles at {settled}"
    );
    // Metrics count the abandoned streams as the budget settled them.
    let (_, metrics) = sc.admin_get("/metrics").unwrap();
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_cost_usd_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let want = (admitted * settled) as f64 / 100.0;
    assert!(
        (counted - want).abs() < 1e-6,
        "{counted} vs {want}\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_the_caller_abandons_is_counted_at_what_it_streamed_without_any_limit() {
    let up = Upstreams::start().await;
    let mut yaml = up.providers();
    // One cent a token, and nothing that governs the call.
    yaml.push_str("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: chat}\nspec: {backends: [{provider: openai, model: gpt-4o, pricing: {inputPerMillionTokens: 10000, outputPerMillionTokens: 10000}}]}\n");
    let sc = start(&yaml);
    up.openai.script([cut_after(vec![
        (std::time::Duration::ZERO, text_chunk("partial ")),
        (std::time::Duration::from_secs(30), text_chunk("never read")),
    ])]);
    let body =
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut r = reqwest::Client::new()
        .post(sc.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().unwrap_or_default();
    assert!(String::from_utf8_lossy(&first).contains("partial"));
    drop(r);
    for _ in 0..100 {
        if up.openai.cancelled() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        up.openai.cancelled(),
        1,
        "the abandoned stream is cancelled"
    );
    // Counted at the input estimate and the one event relayed, as a budget would settle it.
    let input = (body.to_string().len() as u64).div_ceil(4);
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = sc.admin_get("/metrics").unwrap().1;
        if metrics.contains("switchyard_cost_usd_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let sum = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let want = (input + 1) as f64 / 100.0;
    let counted = sum("switchyard_cost_usd_total{");
    assert!(
        (counted - want).abs() < 1e-6,
        "{counted} vs {want}\n{metrics}"
    );
    let input_counted = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_tokens_total{") && l.contains("token_type=\"input\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>();
    assert_eq!(input_counted, input as f64, "{metrics}");
    assert!(
        metrics.contains("error_type=\"cancelled\""),
        "the call is labelled cancelled\n{metrics}"
    );
}
