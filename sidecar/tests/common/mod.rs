//! Shared setup for the sidecar's end-to-end tests: the four fake providers, manifests
//! pointing at them, the real binary, and readers for both dialects' answers.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::{json, Value};
pub use switchyard_tests::fake::{Api, Body, Fake, Reply, KEY};
pub use switchyard_tests::sidecar::Sidecar;

/// The four fakes.
pub struct Upstreams {
    pub openai: Fake,
    pub azure: Fake,
    pub anthropic: Fake,
    pub gemini: Fake,
}

impl Upstreams {
    pub async fn start() -> Self {
        Self {
            openai: Fake::start(Api::OpenAi).await,
            azure: Fake::start(Api::Azure).await,
            anthropic: Fake::start(Api::Anthropic).await,
            gemini: Fake::start(Api::Gemini).await,
        }
    }

    /// A Secret and one AIProvider per fake (named openai, azure, anthropic, gemini) plus a
    /// `mock` provider.
    pub fn providers(&self) -> String {
        format!(
            r#"
apiVersion: v1
kind: Secret
metadata: {{name: keys}}
stringData: {{key: {KEY}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: openai}}
spec: {{type: openai, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: openai-responses}}
spec: {{type: openai, api: responses, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: azure}}
spec: {{type: azure-openai, baseUrl: "{}", azure: {{apiVersion: "2024-10-21"}}, credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: anthropic}}
spec: {{type: anthropic, baseUrl: "{}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: gemini}}
spec: {{type: gemini, baseUrl: "{}", credentials: {{env: GEMINI_TEST_KEY}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: mock}}
spec: {{type: mock}}
"#,
            self.openai.base_url(),
            self.openai.base_url(),
            self.azure.base_url(),
            self.anthropic.base_url(),
            self.gemini.base_url()
        )
    }

    pub fn fake(&self, provider: &str) -> Option<&Fake> {
        match provider {
            "openai" | "openai-responses" => Some(&self.openai),
            "azure" => Some(&self.azure),
            "anthropic" => Some(&self.anthropic),
            "gemini" => Some(&self.gemini),
            _ => None,
        }
    }
}

/// An AIModel document: backends as (provider, upstream model, priority).
pub fn model(name: &str, backends: &[(&str, &str, u32)], extra: &str) -> String {
    let list: Vec<String> = backends
        .iter()
        .map(|(p, m, prio)| format!("{{provider: {p}, model: {m}, priority: {prio}}}"))
        .collect();
    format!("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {{name: {name}}}\nspec:\n  backends: [{}]\n{extra}\n", list.join(", "))
}

/// An AIRoutingPolicy document with the given spec (YAML flow mapping body).
pub fn policy(spec: &str) -> String {
    format!("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {{name: test}}\nspec: {{{spec}}}\n")
}

pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_switchyard-sidecar"))
}

pub fn start(yaml: &str) -> Sidecar {
    Sidecar::start(binary(), yaml, &[("GEMINI_TEST_KEY", KEY)])
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The answer of a call: status, headers, body text.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The SSE events as (event name, data JSON or string).
    pub fn events(&self) -> Vec<(Option<String>, Value)> {
        let text = self.text.replace("\r\n", "\n");
        text.split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let mut name = None;
                let mut data = String::new();
                for line in e.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = Some(n.to_string());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                (
                    name,
                    serde_json::from_str(&data).unwrap_or(Value::String(data)),
                )
            })
            .collect()
    }

    /// The assistant text of an answer in either dialect, streamed or not.
    pub fn assistant_text(&self) -> String {
        if self.header("content-type").starts_with("text/event-stream") {
            return self
                .events()
                .iter()
                .filter_map(|(_, d)| {
                    d.pointer("/choices/0/delta/content")
                        .or_else(|| d.pointer("/delta/text"))
                        .or_else(|| {
                            (d["type"] == "response.output_text.delta").then(|| &d["delta"])
                        })
                        .or_else(|| d.pointer("/candidates/0/content/parts/0/text"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
        }
        let v = self.json();
        if let Some(t) = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
        {
            return t.to_string();
        }
        if v["object"] == "response" {
            return v["output"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|i| i["content"].as_array().into_iter().flatten())
                .filter_map(|p| p["text"].as_str())
                .collect();
        }
        if let Some(parts) = v
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
        {
            return parts.iter().filter_map(|p| p["text"].as_str()).collect();
        }
        v["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["text"].as_str())
            .collect()
    }
}

pub async fn post(sidecar: &Sidecar, path: &str, body: &Value) -> Answer {
    post_with(sidecar, path, body, &[]).await
}

pub async fn post_with(
    sidecar: &Sidecar,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = client()
        .post(sidecar.url(path))
        .header("authorization", "Bearer caller-placeholder")
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        text,
    }
}

/// A chat call in the caller's dialect: OpenAI chat completions or Anthropic messages.
pub fn chat(dialect: &str, model: &str, user: &str, stream: bool) -> (String, Value) {
    match dialect {
        "gemini" => {
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (
                format!("/v1beta/models/{model}:{method}"),
                json!({"systemInstruction": {"parts": [{"text": "be brief"}]}, "contents": [{"role": "user", "parts": [{"text": user}]}]}),
            )
        }
        "responses" => (
            "/v1/responses".into(),
            json!({"model": model, "stream": stream, "instructions": "be brief", "input": user}),
        ),
        "anthropic" => (
            "/v1/messages".into(),
            json!({"model": model, "max_tokens": 256, "stream": stream, "system": "be brief", "messages": [{"role": "user", "content": user}]}),
        ),
        _ => (
            "/v1/chat/completions".into(),
            json!({"model": model, "stream": stream, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": user}]}),
        ),
    }
}

/// An OpenAI chat-completion chunk event carrying `text`.
pub fn text_chunk(text: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}]})
    )
}

/// A 200 SSE answer of these events, each after its delay, then the connection cut.
pub fn cut_after(events: Vec<(std::time::Duration, String)>) -> Reply {
    Reply {
        body: Body::Sse { events, drop: true },
        ..Reply::json(200, json!({}))
    }
}
