//! `compile()` and the manifest loader, from the YAML a user writes to the snapshot.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::compile_yaml;
use switchyard_crds::{manifest, proxy::LoadBalancing, Duration, Reason};

fn load_errors(yaml: &str) -> Vec<String> {
    let mut m = manifest::Manifests::default();
    let mut errors = Vec::new();
    manifest::parse(yaml, Path::new("bad.yaml"), "default", &mut m, &mut errors);
    errors.iter().map(ToString::to_string).collect()
}

const PROVIDERS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: openai-key}
stringData: {apiKey: sk-test-123}
---
apiVersion: v1
kind: Secret
metadata: {name: anthropic-key}
data: {apiKey: c2stYW50LTQ1Ng==}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: openai}
spec:
  type: openai
  credentials: {secretRef: {name: openai-key, key: apiKey}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: anthropic}
spec:
  type: anthropic
  credentials: {secretRef: {name: anthropic-key, key: apiKey}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: mock}
spec: {type: mock}
"#;

#[test]
fn secrets_resolve_from_string_data_and_base64_data_and_defaults_fill_in() {
    let yaml = format!(
        "{PROVIDERS}---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {{name: chat}}\nspec:\n  aliases: [gpt-4o]\n  backends:\n  - {{provider: openai, model: gpt-4o}}\n  - {{provider: anthropic, model: claude, priority: 1}}\n"
    );
    let config = compile_yaml(&yaml, &[], &[]);
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    assert_eq!(
        config.providers["openai"]
            .api_key
            .as_ref()
            .map(|k| k.expose()),
        Some("sk-test-123")
    );
    assert_eq!(
        config.providers["anthropic"]
            .api_key
            .as_ref()
            .map(|k| k.expose()),
        Some("sk-ant-456")
    );
    assert_eq!(
        config.providers["openai"].base_url,
        "https://api.openai.com/v1"
    );
    assert_eq!(
        config.providers["anthropic"].base_url,
        "https://api.anthropic.com"
    );
    assert!(config.model("gpt-4o").is_some());
    assert_eq!(config.policy.attempts, 3);
    assert_eq!(config.policy.load_balancing, LoadBalancing::Priority);
    assert_eq!(config.policy.first_byte_timeout, Duration::from_secs(60));
    assert_eq!(config.policy.total_timeout, Duration::from_secs(600));
    let shown = serde_json::to_string(&config.redacted()).expect("serializes");
    assert!(!shown.contains("sk-test-123") && !shown.contains("sk-ant-456"));
    assert!(!format!("{config:?}").contains("sk-test-123"));
}

#[test]
fn unresolvable_objects_are_left_out_and_reported_by_object_and_field() {
    let yaml = r#"
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: nokey}
spec: {type: openai, credentials: {secretRef: {name: missing, key: apiKey}}}
---
apiVersion: v1
kind: Secret
metadata: {name: wrongkey}
stringData: {other: x}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: badkey}
spec: {type: anthropic, credentials: {secretRef: {name: wrongkey, key: apiKey}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: fromenv}
spec: {type: gemini, credentials: {env: NOT_SET_ANYWHERE}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: aws}
spec: {type: bedrock, bedrock: {region: us-east-1}, credentials: {env: AWS}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: mock}
spec: {type: mock}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: dangling}
spec:
  backends: [{provider: ghost, model: x}]
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: half}
spec:
  backends: [{provider: nokey, model: x}, {provider: mock, model: m}]
  fallbacks: [nowhere]
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: twin}
spec:
  aliases: [half]
  backends: [{provider: mock, model: m}]
"#;
    let config = compile_yaml(yaml, &[], &[("AWS", "x")]);
    let found: Vec<(String, String, Reason)> = config
        .problems
        .iter()
        .map(|p| (format!("{} {}", p.kind, p.name), p.field.clone(), p.reason))
        .collect();
    let expect = [
        (
            "AIProvider nokey",
            "spec.credentials.secretRef",
            Reason::SecretNotFound,
        ),
        (
            "AIProvider badkey",
            "spec.credentials.secretRef.key",
            Reason::SecretKeyMissing,
        ),
        (
            "AIProvider fromenv",
            "spec.credentials.env",
            Reason::EnvNotSet,
        ),
        ("AIProvider aws", "spec.type", Reason::InvalidSpec),
        (
            "AIModel dangling",
            "spec.backends[0].provider",
            Reason::ProviderNotFound,
        ),
        (
            "AIModel half",
            "spec.backends[0].provider",
            Reason::ProviderNotFound,
        ),
        ("AIModel twin", "spec.aliases[0]", Reason::Conflicted),
        ("AIModel half", "spec.fallbacks[0]", Reason::ModelNotFound),
    ];
    for (obj, field, reason) in expect {
        assert!(
            found
                .iter()
                .any(|(o, f, r)| o == obj && f == field && *r == reason),
            "missing problem {obj} {field} {reason:?} in {found:?}"
        );
    }
    assert_eq!(config.providers.keys().collect::<Vec<_>>(), vec!["mock"]);
    let names: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["half"]);
    assert!(config.models[0].fallbacks.is_empty());
}

#[test]
fn the_oldest_matching_policy_wins_and_the_others_are_conflicted() {
    let yaml = r#"
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: b-web}
spec:
  podSelector: {matchLabels: {app: chatbot}}
  loadBalancing: weighted
  retry: {attempts: 5}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: a-all}
spec: {loadBalancing: least-latency}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: c-other}
spec:
  podSelector: {matchExpressions: [{key: app, operator: In, values: [batch]}]}
"#;
    let config = compile_yaml(yaml, &[("app", "chatbot")], &[]);
    assert_eq!(config.policy.name.as_deref(), Some("a-all"));
    assert_eq!(config.policy.load_balancing, LoadBalancing::LeastLatency);
    let conflicted: Vec<&str> = config
        .problems
        .iter()
        .filter(|p| p.reason == Reason::Conflicted)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(conflicted, vec!["b-web"]);
    let unlabelled = compile_yaml(yaml, &[], &[]);
    assert_eq!(unlabelled.policy.name.as_deref(), Some("a-all"));
}

#[test]
fn cache_and_affinity_reach_the_snapshot_with_their_defaults() {
    let yaml = r#"
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: cached}
spec:
  cache: {ttl: 10m}
  affinity: none
"#;
    let config = compile_yaml(yaml, &[], &[]);
    assert!(config.problems.is_empty(), "{:?}", config.problems);
    let cache = config.policy.cache.clone().unwrap();
    assert_eq!(cache.ttl, switchyard_crds::Duration::from_secs(600));
    assert_eq!(cache.max_entries, 10_000);
    assert_eq!(config.policy.affinity, switchyard_crds::Affinity::None);
    let default = compile_yaml("", &[], &[]);
    assert_eq!(default.policy.affinity, switchyard_crds::Affinity::Session);
    assert!(default.policy.cache.is_none());
}

#[test]
fn rate_limits_provider_limits_and_budgets_reach_the_snapshot() {
    let yaml = r#"
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: limited}
spec:
  rateLimit: {requestsPerMinute: 10, tokensPerMinute: 5000, scope: policy, maxQueueWait: 2s}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: acct}
spec: {type: mock, limits: {requestsPerMinute: 100}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIBudget
metadata: {name: team}
spec: {limit: "20.50", period: month}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIBudget
metadata: {name: other-app}
spec: {limit: "1", period: day, podSelector: {matchLabels: {app: other}}}
"#;
    let config = compile_yaml(yaml, &[("app", "bot")], &[]);
    let rl = config.policy.rate_limit.expect("a rate limit");
    assert_eq!(rl.limits.requests_per_minute, Some(10));
    assert_eq!(rl.limits.tokens_per_minute, Some(5000));
    assert_eq!(rl.scope, switchyard_crds::RateLimitScope::Policy);
    assert_eq!(rl.max_queue_wait.to_string(), "2s");
    assert_eq!(rl.pods, 1, "standalone: this pod alone");
    assert_eq!(
        config.providers["acct"]
            .limits
            .as_ref()
            .and_then(|l| l.requests_per_minute),
        Some(100)
    );
    let budgets: Vec<(&str, String)> = config
        .budgets
        .iter()
        .map(|b| (b.name.as_str(), b.limit.to_string()))
        .collect();
    assert_eq!(
        budgets,
        [("team", "20.50".to_string())],
        "only budgets selecting the pod apply"
    );
}

#[test]
fn bad_limits_and_budgets_are_rejected_naming_the_field() {
    let cases = [
        ("kind: AIRoutingPolicy\nmetadata: {name: p}\nspec: {rateLimit: {requestsPerMinute: 0}}", "spec.rateLimit.requestsPerMinute"),
        ("kind: AIRoutingPolicy\nmetadata: {name: p}\nspec: {rateLimit: {requestsPerMinute: -5}}", "bad.yaml"),
        ("kind: AIRoutingPolicy\nmetadata: {name: p}\nspec: {rateLimit: {requestsPerMinute: lots}}", "bad.yaml"),
        ("kind: AIRoutingPolicy\nmetadata: {name: p}\nspec: {rateLimit: {scope: cluster, requestsPerMinute: 1}}", "unknown variant"),
        ("kind: AIProvider\nmetadata: {name: p}\nspec: {type: mock, limits: {tokensPerMinute: 0}}", "spec.limits.tokensPerMinute"),
        ("kind: AIBudget\nmetadata: {name: b}\nspec: {limit: \"-3\", period: day}", "spec.limit"),
        ("kind: AIBudget\nmetadata: {name: b}\nspec: {limit: \"ten\", period: day}", "spec.limit"),
        ("kind: AIBudget\nmetadata: {name: b}\nspec: {limit: \"10\", period: fortnight}", "unknown variant"),
    ];
    for (doc, expected) in cases {
        let yaml = format!("apiVersion: switchyard.dev/v1alpha1\n{doc}\n");
        let errors = load_errors(&yaml);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{yaml:?}: expected an error containing {expected:?}, got {errors:?}"
        );
    }
}

#[test]
fn schema_breaking_documents_are_rejected_with_file_and_line() {
    let cases = [
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: x}\nspec: {type: watson}\n", "bad.yaml:4"),
        ("a: [\n", "bad.yaml:"),
        ("---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: m}\nspec: {backends: []}\n", "spec.backends"),
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: m}\nspec: {backends: [{provider: p, model: x, weight: -1}]}\n", "bad.yaml:4"),
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {name: p}\nspec: {timeouts: {total: 10 minutes}}\n", "invalid duration"),
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {name: p}\nspec: {loadBalancing: random}\n", "unknown variant"),
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: m}\nspec: {type: mock, mock: {failureRate: 2}}\n", "spec.mock.failureRate"),
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: o}\nspec: {type: openai}\n", "spec.credentials"),
        ("apiVersion: switchyard.dev/v1beta9\nkind: AIProvider\nmetadata: {name: o}\n", "unsupported apiVersion"),
        // A misspelt field is an error, not a silently missing limit.
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {name: p}\nspec:\n  rateLimits: {requestsPerMinute: 5}\n", "bad.yaml:5: unknown field \"spec.rateLimits\""),
        ("apiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {name: m}\nspec:\n  backends:\n  - {provider: p, model: x, pricing: {inputPerMillion: 1}}\n", "bad.yaml:6: unknown field \"spec.backends[0].pricing.inputPerMillion\""),
    ];
    for (yaml, expected) in cases {
        let errors = load_errors(yaml);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{yaml:?}: expected an error containing {expected:?}, got {errors:?}"
        );
    }
}

#[test]
fn documents_of_other_namespaces_and_kinds_are_skipped() {
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {name: m, namespace: team-b}\nspec: {type: mock}\n";
    let config = compile_yaml(yaml, &[], &[]);
    assert!(config.providers.is_empty());
}
