//! The one compiler from a namespace's objects (plus a pod's labels) to a [`ProxyConfig`].
//!
//! Objects that break the schema, or that are valid but cannot be resolved (a missing Secret,
//! a dangling provider), are left out and reported as [`Problem`]s; the rest is served.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
};
use kube::ResourceExt;

mod providers;
use providers::compile_providers;

use crate::{
    proxy::{self, Policy, Problem, ProxyConfig, SecretString, SCHEMA_VERSION},
    status::Reason,
    validate, AIBudget, AIModel, AIProvider, AIRoutingPolicy, Duration, Money, ProviderType,
};

/// The connect timeout when a provider sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Looks up an environment variable of the sidecar.
pub type EnvLookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Everything [`compile`] reads: one namespace's objects, and the pod it compiles for.
pub struct Inputs<'a> {
    /// The namespace the objects live in.
    pub namespace: &'a str,
    /// AIProviders of the namespace.
    pub providers: &'a [AIProvider],
    /// AIModels of the namespace.
    pub models: &'a [AIModel],
    /// AIRoutingPolicies of the namespace.
    pub policies: &'a [AIRoutingPolicy],
    /// Secrets of the namespace (only referenced ones are read).
    pub secrets: &'a [Secret],
    /// The pod's labels, matched against each policy's `podSelector`.
    pub pod_labels: &'a BTreeMap<String, String>,
    /// Looks up a sidecar environment variable for `credentials.env`; `None` (the
    /// operator) leaves the lookup to the sidecar, through `Provider::api_key_env`.
    pub env: Option<&'a EnvLookup<'a>>,
    /// AIBudgets of the namespace.
    pub budgets: &'a [AIBudget],
    /// The labels of every pod of the namespace (to count who shares a limit); standalone,
    /// just this pod's.
    pub namespace_pods: &'a [&'a BTreeMap<String, String>],
}

/// Compiles one pod's snapshot; every problem is in `problems`, none stops the rest.
pub fn compile(inputs: &Inputs<'_>) -> ProxyConfig {
    let mut problems = Vec::new();
    let providers = compile_providers(inputs, &mut problems);
    let models = compile_models(inputs, &providers, &mut problems);
    let policy = select_policy(inputs, &mut problems);
    let budgets = compile_budgets(inputs, &mut problems);
    ProxyConfig {
        schema_version: SCHEMA_VERSION,
        namespace: inputs.namespace.to_string(),
        providers,
        models,
        policy,
        budgets,
        problems,
    }
}

/// How many of the namespace's pods a selector selects (at least one: this pod).
fn pods_selected(inputs: &Inputs<'_>, selector: Option<&LabelSelector>) -> u32 {
    let n = inputs
        .namespace_pods
        .iter()
        .filter(|labels| selects(selector, labels))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

fn compile_budgets(inputs: &Inputs<'_>, problems: &mut Vec<Problem>) -> Vec<proxy::Budget> {
    let mut out = Vec::new();
    for b in inputs.budgets {
        let name = b.name_any();
        let Some(limit) = Money::parse(&b.spec.limit) else {
            problems.push(problem(
                "AIBudget",
                &name,
                "spec.limit",
                Reason::InvalidSpec,
                format!(
                    "{:?} is not a dollar amount (digits, at most six decimals)",
                    b.spec.limit
                ),
            ));
            continue;
        };
        if !selects(b.spec.pod_selector.as_ref(), inputs.pod_labels) {
            continue;
        }
        let status = b.status.as_ref();
        out.push(proxy::Budget {
            name,
            limit,
            period: b.spec.period,
            models: b.spec.models.clone(),
            pods: pods_selected(inputs, b.spec.pod_selector.as_ref()),
            used: status
                .map(|s| {
                    let m = |v: &Option<String>| {
                        v.as_deref().and_then(Money::parse).unwrap_or_default()
                    };
                    m(&s.spent).saturating_add(m(&s.reserved))
                })
                .unwrap_or_default(),
            period_start: status
                .and_then(|s| s.period_start.as_deref())
                .and_then(crate::budget::parse_rfc3339)
                .unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn problem(
    kind: &str,
    name: &str,
    field: impl Into<String>,
    reason: Reason,
    message: String,
) -> Problem {
    Problem {
        kind: kind.to_string(),
        name: name.to_string(),
        field: field.into(),
        reason,
        message,
    }
}

fn compile_models(
    inputs: &Inputs<'_>,
    providers: &BTreeMap<String, proxy::Provider>,
    problems: &mut Vec<Problem>,
) -> Vec<proxy::Model> {
    let declared: BTreeSet<String> = inputs.providers.iter().map(|p| p.name_any()).collect();
    let mut sorted: Vec<&AIModel> = inputs.models.iter().collect();
    sorted.sort_by_key(|m| (m.creation_timestamp(), m.name_any()));
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for m in sorted {
        let name = m.name_any();
        let invalid = validate::model(&m.spec);
        if !invalid.is_empty() {
            for e in invalid {
                problems.push(problem(
                    "AIModel",
                    &name,
                    e.field,
                    Reason::InvalidSpec,
                    e.message,
                ));
            }
            continue;
        }
        if let Err(clashes) = unclaimed(m, &claimed) {
            problems.extend(clashes);
            continue;
        }
        let backends = backends(inputs, m, providers, &declared, problems);
        if backends.is_empty() {
            continue;
        }
        for n in std::iter::once(&name).chain(&m.spec.aliases) {
            claimed.insert(n.clone(), name.clone());
        }
        out.push(proxy::Model {
            name,
            aliases: m.spec.aliases.clone(),
            backends,
            fallbacks: m.spec.fallbacks.clone(),
        });
    }
    drop_missing_fallbacks(inputs.namespace, &mut out, problems);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Problems for each of a model's served names (its own, its aliases) that an earlier model
/// already serves.
fn unclaimed(m: &AIModel, claimed: &BTreeMap<String, String>) -> Result<(), Vec<Problem>> {
    let name = m.name_any();
    let served = std::iter::once(("metadata.name".to_string(), &name)).chain(
        m.spec
            .aliases
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("spec.aliases[{i}]"), a)),
    );
    let clashes: Vec<Problem> = served
        .filter_map(|(field, n)| {
            let owner = claimed.get(n)?;
            let msg = format!("served name {n:?} is already served by AIModel {owner}");
            Some(problem("AIModel", &name, field, Reason::Conflicted, msg))
        })
        .collect();
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(clashes)
    }
}

/// A model's backends whose provider compiled; a problem for each other one.
fn backends(
    inputs: &Inputs<'_>,
    m: &AIModel,
    providers: &BTreeMap<String, proxy::Provider>,
    declared: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Vec<proxy::Backend> {
    let mut backends = Vec::new();
    for (i, b) in m.spec.backends.iter().enumerate() {
        if providers.contains_key(&b.provider) {
            backends.push(proxy::Backend {
                provider: b.provider.clone(),
                model: b.model.clone(),
                priority: b.priority,
                weight: b.weight,
                pricing: b.pricing.clone(),
            });
            continue;
        }
        let why = if declared.contains(&b.provider) {
            "is not ready"
        } else {
            "does not exist"
        };
        problems.push(problem(
            "AIModel",
            &m.name_any(),
            format!("spec.backends[{i}].provider"),
            Reason::ProviderNotFound,
            format!(
                "AIProvider {:?} {why} in namespace {}",
                b.provider, inputs.namespace
            ),
        ));
    }
    backends
}

/// Drops the fallbacks that name no servable model (or the model itself), each a problem.
fn drop_missing_fallbacks(namespace: &str, out: &mut [proxy::Model], problems: &mut Vec<Problem>) {
    let names: BTreeSet<String> = out.iter().map(|m| m.name.clone()).collect();
    for m in out {
        let mut kept = Vec::new();
        for (i, f) in m.fallbacks.iter().enumerate() {
            if names.contains(f) && f != &m.name {
                kept.push(f.clone());
            } else {
                problems.push(problem(
                    "AIModel",
                    &m.name,
                    format!("spec.fallbacks[{i}]"),
                    Reason::ModelNotFound,
                    format!("fallback AIModel {f:?} is not servable in namespace {namespace}"),
                ));
            }
        }
        m.fallbacks = kept;
    }
}

fn select_policy(inputs: &Inputs<'_>, problems: &mut Vec<Problem>) -> Policy {
    let mut valid = Vec::new();
    for p in inputs.policies {
        let name = p.name_any();
        let errors = validate::policy(&p.spec);
        if errors.is_empty() {
            valid.push(p);
        }
        for e in errors {
            problems.push(problem(
                "AIRoutingPolicy",
                &name,
                e.field,
                Reason::InvalidSpec,
                e.message,
            ));
        }
    }
    let mut matching: Vec<&AIRoutingPolicy> = valid
        .into_iter()
        .filter(|p| selects(p.spec.pod_selector.as_ref(), inputs.pod_labels))
        .collect();
    matching.sort_by_key(|p| (p.creation_timestamp(), p.name_any()));
    let Some((winner, losers)) = matching.split_first() else {
        return Policy::default();
    };
    let winner_name = winner.name_any();
    for loser in losers {
        problems.push(problem(
            "AIRoutingPolicy",
            &loser.name_any(),
            "spec.podSelector",
            Reason::Conflicted,
            format!("the pod is also selected by the older AIRoutingPolicy {winner_name}, which applies"),
        ));
    }
    policy_of(inputs, winner)
}

fn policy_of(inputs: &Inputs<'_>, p: &AIRoutingPolicy) -> Policy {
    let defaults = Policy::default();
    let spec = &p.spec;
    let retry = spec.retry.clone().unwrap_or_default();
    let backoff = retry.backoff.clone().unwrap_or_default();
    let timeouts = spec.timeouts.clone().unwrap_or_default();
    let cb = spec.circuit_breaker.clone().unwrap_or_default();
    Policy {
        name: Some(p.name_any()),
        models: spec.models.clone(),
        load_balancing: spec.load_balancing.unwrap_or_default(),
        attempts: retry.attempts.unwrap_or(defaults.attempts),
        backoff_initial: backoff.initial.unwrap_or(defaults.backoff_initial),
        backoff_max: backoff.max.unwrap_or(defaults.backoff_max),
        retry_on: retry.retry_on.unwrap_or(defaults.retry_on),
        first_byte_timeout: timeouts.first_byte.unwrap_or(defaults.first_byte_timeout),
        total_timeout: timeouts.total.unwrap_or(defaults.total_timeout),
        consecutive_failures: cb
            .consecutive_failures
            .unwrap_or(defaults.consecutive_failures),
        cooldown: cb.cooldown.unwrap_or(defaults.cooldown),
        rate_limit: spec.rate_limit.as_ref().map(|rl| proxy::RateLimit {
            limits: proxy::Limits {
                requests_per_minute: rl.requests_per_minute,
                tokens_per_minute: rl.tokens_per_minute,
            },
            scope: rl.scope.unwrap_or_default(),
            max_queue_wait: rl.max_queue_wait.unwrap_or(crate::Duration::from_millis(0)),
            pods: pods_selected(inputs, spec.pod_selector.as_ref()),
        }),
        affinity: spec.affinity.unwrap_or_default(),
        cache: spec.cache.as_ref().map(|c| proxy::Cache {
            ttl: c.ttl.unwrap_or(proxy::Cache::DEFAULT_TTL),
            max_entries: c.max_entries.unwrap_or(proxy::Cache::DEFAULT_MAX_ENTRIES),
        }),
    }
}

/// Whether a label selector selects these labels; an absent or empty selector selects all.
pub fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(s) = selector else { return true };
    let labels_match = s
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_match
        && s.match_expressions
            .iter()
            .flatten()
            .all(|e| requirement_holds(e, labels))
}

fn requirement_holds(r: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&r.key);
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}
