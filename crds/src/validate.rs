//! The rules of the CRD schema (OpenAPI and CEL), checked in Rust too: the standalone loader
//! rejects a manifest that breaks them, and the operator reports them as `InvalidSpec` for
//! servers too old to enforce CEL.

use std::collections::BTreeSet;

use crate::{AIModelSpec, AIProviderSpec, AIRoutingPolicySpec, ProviderType};

/// One broken rule, by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, like `spec.backends[0].weight`.
    pub field: String,
    /// What the rule requires.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks an AIProvider spec against the schema's rules.
pub fn provider(spec: &AIProviderSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(l) = &spec.limits {
        if l.requests_per_minute == Some(0) {
            errors.push(err("spec.limits.requestsPerMinute", "must be at least 1"));
        }
        if l.tokens_per_minute == Some(0) {
            errors.push(err("spec.limits.tokensPerMinute", "must be at least 1"));
        }
    }
    if spec.api.is_some() && !matches!(spec.type_, ProviderType::Openai | ProviderType::AzureOpenai)
    {
        errors.push(err("spec.api", "api is only for openai and azure-openai"));
    }
    if let Some(url) = &spec.base_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains(' ') {
            errors.push(err("spec.baseUrl", "must be an http:// or https:// URL"));
        }
    }
    credentials(spec, &mut errors);
    if spec.type_ == ProviderType::AzureOpenai {
        if spec.base_url.is_none() {
            errors.push(err(
                "spec.baseUrl",
                "azure-openai needs the resource endpoint",
            ));
        }
        if spec.azure.as_ref().is_none_or(|a| a.api_version.is_empty()) {
            errors.push(err(
                "spec.azure.apiVersion",
                "azure-openai needs an api version",
            ));
        }
    }
    if spec.type_ == ProviderType::Bedrock && spec.bedrock.is_none() {
        errors.push(err("spec.bedrock", "bedrock needs bedrock.region"));
    }
    if let Some(mock) = &spec.mock {
        if spec.type_ != ProviderType::Mock {
            errors.push(err("spec.mock", "mock settings are only for type mock"));
        }
        if mock.failure_rate.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            errors.push(err("spec.mock.failureRate", "must be between 0 and 1"));
        }
        if mock
            .failure_status
            .is_some_and(|s| !(400..=599).contains(&s))
        {
            errors.push(err(
                "spec.mock.failureStatus",
                "must be between 400 and 599",
            ));
        }
    }
    errors
}

/// The credentials a provider of its type needs, well formed.
fn credentials(spec: &AIProviderSpec, errors: &mut Vec<FieldError>) {
    let c = match (&spec.type_, &spec.credentials) {
        (ProviderType::Mock, _) => return,
        (_, None) => {
            errors.push(err(
                "spec.credentials",
                "every type but mock needs credentials",
            ));
            return;
        }
        (_, Some(c)) => c,
    };
    if c.secret_ref.is_some() == c.env.is_some() {
        errors.push(err(
            "spec.credentials",
            "set exactly one of secretRef and env",
        ));
    }
    if let Some(r) = &c.secret_ref {
        if r.name.is_empty() || r.key.is_empty() {
            errors.push(err(
                "spec.credentials.secretRef",
                "name and key must not be empty",
            ));
        }
    }
    if let Some(env) = &c.env {
        let valid = env
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            errors.push(err(
                "spec.credentials.env",
                "must be an environment variable name",
            ));
        }
    }
}

/// Checks an AIModel spec against the schema's rules.
pub fn model(spec: &AIModelSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if spec.backends.is_empty() {
        errors.push(err("spec.backends", "at least one backend is required"));
    }
    for (i, b) in spec.backends.iter().enumerate() {
        if b.provider.is_empty() {
            errors.push(err(
                format!("spec.backends[{i}].provider"),
                "must not be empty",
            ));
        }
        if b.model.is_empty() {
            errors.push(err(
                format!("spec.backends[{i}].model"),
                "must not be empty",
            ));
        }
        if let Some(p) = &b.pricing {
            if p.input_per_million_tokens < 0.0 || p.output_per_million_tokens < 0.0 {
                errors.push(err(
                    format!("spec.backends[{i}].pricing"),
                    "prices must not be negative",
                ));
            }
        }
    }
    let mut seen = BTreeSet::new();
    for (i, alias) in spec.aliases.iter().enumerate() {
        if alias.is_empty() {
            errors.push(err(format!("spec.aliases[{i}]"), "must not be empty"));
        } else if !seen.insert(alias) {
            errors.push(err(format!("spec.aliases[{i}]"), "aliases must be unique"));
        }
    }
    errors
}

/// Checks an AIRoutingPolicy spec against the schema's rules.
pub fn policy(spec: &AIRoutingPolicySpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(retry) = &spec.retry {
        if retry.attempts.is_some_and(|a| !(1..=20).contains(&a)) {
            errors.push(err("spec.retry.attempts", "must be between 1 and 20"));
        }
        if let Some(b) = &retry.backoff {
            if let (Some(initial), Some(max)) = (b.initial, b.max) {
                if initial > max {
                    errors.push(err("spec.retry.backoff", "initial must not exceed max"));
                }
            }
        }
    }
    if let Some(cb) = &spec.circuit_breaker {
        if cb.consecutive_failures == Some(0) {
            errors.push(err(
                "spec.circuitBreaker.consecutiveFailures",
                "must be at least 1",
            ));
        }
    }
    if let Some(rl) = &spec.rate_limit {
        if rl.requests_per_minute == Some(0) {
            errors.push(err(
                "spec.rateLimit.requestsPerMinute",
                "must be at least 1",
            ));
        }
        if rl.tokens_per_minute == Some(0) {
            errors.push(err("spec.rateLimit.tokensPerMinute", "must be at least 1"));
        }
        if rl.requests_per_minute.is_none() && rl.tokens_per_minute.is_none() {
            errors.push(err(
                "spec.rateLimit",
                "set requestsPerMinute, tokensPerMinute or both",
            ));
        }
    }
    errors
}

/// Checks an AIBudget spec against the schema's rules.
pub fn budget(spec: &crate::AIBudgetSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if crate::Money::parse(&spec.limit).is_none() {
        errors.push(err(
            "spec.limit",
            "must be a dollar amount: digits with at most six decimals, such as \"2000.00\"",
        ));
    }
    errors
}
