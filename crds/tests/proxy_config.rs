//! The `ProxyConfig` wire contract between operator and sidecar, pinned: a snapshot using
//! every kind and field, compiled and serialized as the config stream sends it, compared with
//! `tests/golden/proxy_config.json`. A change to a field's name, shape or default shows here
//! as a diff to review (an older sidecar reads the snapshot a newer operator sends).
//! `UPDATE_GOLDEN=1 cargo test -p switchyard-crds --test proxy_config` rewrites it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::compile_yaml;
use switchyard_crds::ProxyConfig;

const EVERYTHING: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: keys}
stringData: {openai: sk-golden-openai, anthropic: sk-golden-anthropic}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: openai}
spec:
  type: openai
  credentials: {secretRef: {name: keys, key: openai}}
  headers: {OpenAI-Organization: org-1}
  timeouts: {connect: 2s}
  limits: {requestsPerMinute: 600, tokensPerMinute: 100000}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: azure}
spec:
  type: azure-openai
  baseUrl: https://example.openai.azure.com/
  azure: {apiVersion: 2024-10-21}
  api: responses
  credentials: {env: AZURE_KEY}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: anthropic}
spec:
  type: anthropic
  credentials: {secretRef: {name: keys, key: anthropic}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: gemini}
spec:
  type: gemini
  credentials: {env: GEMINI_KEY}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: mock}
spec: {type: mock, mock: {response: "hello", latency: 5ms, failureRate: 0.1, failureStatus: 503}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: chat}
spec:
  aliases: [gpt-4o]
  fallbacks: [cheap]
  backends:
  - {provider: openai, model: gpt-4o, priority: 0, weight: 3, pricing: {inputPerMillionTokens: 2.5, outputPerMillionTokens: 10}}
  - {provider: azure, model: gpt-4o-deployment, priority: 0, weight: 1}
  - {provider: anthropic, model: claude-sonnet-4-5, priority: 1}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: cheap}
spec:
  backends:
  - {provider: gemini, model: gemini-2.5-flash}
  - {provider: mock, model: m, priority: 1}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: everything}
spec:
  podSelector: {matchLabels: {app: web}}
  models: [chat, cheap]
  loadBalancing: weighted
  retry: {attempts: 3, backoff: {initial: 100ms, max: 2s}, retryOn: [rate-limited, server-error, timeout]}
  timeouts: {firstByte: 20s, total: 60s}
  circuitBreaker: {consecutiveFailures: 4, cooldown: 15s}
  rateLimit: {requestsPerMinute: 100, tokensPerMinute: 50000, scope: policy, maxQueueWait: 1s}
  cache: {ttl: 5m, maxEntries: 500}
  affinity: session
---
apiVersion: switchyard.dev/v1alpha1
kind: AIBudget
metadata: {name: team}
spec: {limit: "250.00", period: month, models: [chat]}
"#;

fn compiled() -> ProxyConfig {
    let env = [
        ("AZURE_KEY", "value-of-AZURE_KEY"),
        ("GEMINI_KEY", "value-of-GEMINI_KEY"),
    ];
    compile_yaml(EVERYTHING, &[("app", "web")], &env)
}

#[test]
fn the_snapshot_a_sidecar_receives_is_pinned_field_by_field() {
    let config = compiled();
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    let text = serde_json::to_string_pretty(&config).unwrap() + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/proxy_config.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text, pinned,
        "the ProxyConfig wire format changed: review, then UPDATE_GOLDEN=1"
    );
    // And what is pinned reads back as the same snapshot.
    let back: ProxyConfig = serde_json::from_str(&pinned).unwrap();
    assert_eq!(back, config);
}
