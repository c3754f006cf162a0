//! The status every Switchyard object of a namespace should have, computed from the objects
//! alone (no I/O): `Ready` with the reason `compile()` gives, `Conflicted` for a policy that
//! loses a pod to an older one, and `lastTransitionTime` kept while the status holds.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::ResourceExt;
use switchyard_crds::{
    compile, proxy::Problem, AIBudget, AIModel, AIProvider, AIRoutingPolicy, Condition, Inputs,
    Status,
};

/// One namespace's objects, as the informers hold them.
pub struct Namespace<'a> {
    /// The namespace.
    pub name: &'a str,
    /// AIProviders.
    pub providers: &'a [AIProvider],
    /// AIModels.
    pub models: &'a [AIModel],
    /// AIRoutingPolicies.
    pub policies: &'a [AIRoutingPolicy],
    /// Secrets.
    pub secrets: &'a [Secret],
    /// Pods (for policy selection).
    pub pods: &'a [Pod],
    /// AIBudgets.
    pub budgets: &'a [AIBudget],
    /// Every pod's labels (who shares a limit).
    pub pod_labels: Vec<&'a BTreeMap<String, String>>,
}

/// The three kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// AIProvider.
    Provider,
    /// AIModel.
    Model,
    /// AIRoutingPolicy.
    Policy,
}

impl Kind {
    /// The kind's name, as in `Problem::kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Provider => "AIProvider",
            Kind::Model => "AIModel",
            Kind::Policy => "AIRoutingPolicy",
        }
    }
}

/// What an object's `Ready` condition should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether it is ready.
    pub ready: bool,
    /// The reason (`Ready` when it is).
    pub reason: String,
    /// The explanation, naming the field at fault.
    pub message: String,
}

/// Verdicts by kind and object name.
pub type ByObject = BTreeMap<(Kind, String), Verdict>;

/// The verdict for every object of the namespace, by kind and name.
pub fn verdicts(ns: &Namespace<'_>) -> ByObject {
    let no_labels = BTreeMap::new();
    let base = compile(&inputs(ns, &no_labels));
    let mut problems: BTreeMap<(Kind, String), Vec<String>> = BTreeMap::new();
    let mut reasons: BTreeMap<(Kind, String), String> = BTreeMap::new();
    let mut note = |p: &Problem, prefix: &str| {
        let kind = match p.kind.as_str() {
            "AIProvider" => Kind::Provider,
            "AIModel" => Kind::Model,
            _ => Kind::Policy,
        };
        let key = (kind, p.name.clone());
        reasons
            .entry(key.clone())
            .or_insert_with(|| p.reason.as_str().to_string());
        problems
            .entry(key)
            .or_default()
            .push(format!("{prefix}{}: {}", p.field, p.message));
    };
    for p in base
        .problems
        .iter()
        .filter(|p| p.reason != switchyard_crds::Reason::Conflicted || p.kind != "AIRoutingPolicy")
    {
        note(p, "");
    }
    // Pods with the same labels get the same policy: compile once per distinct label set.
    let mut by_labels: BTreeMap<&BTreeMap<String, String>, Vec<String>> = BTreeMap::new();
    for pod in ns.pods {
        by_labels
            .entry(pod.labels())
            .or_default()
            .push(pod.name_any());
    }
    for (labels, pods) in by_labels {
        let per_pod = compile(&inputs(ns, labels));
        let who = match pods.as_slice() {
            [one] => format!("pod {one}: "),
            [first, rest @ ..] => format!("pod {first} (and {} more): ", rest.len()),
            [] => String::new(),
        };
        let conflicts = per_pod.problems.iter().filter(|p| {
            p.kind == "AIRoutingPolicy" && p.reason == switchyard_crds::Reason::Conflicted
        });
        for p in conflicts {
            note(p, &who);
        }
    }
    let mut out = BTreeMap::new();
    let names = ns
        .providers
        .iter()
        .map(|o| (Kind::Provider, o.name_any()))
        .chain(ns.models.iter().map(|o| (Kind::Model, o.name_any())))
        .chain(ns.policies.iter().map(|o| (Kind::Policy, o.name_any())));
    for key in names {
        let verdict = match problems.get(&key) {
            None => Verdict {
                ready: true,
                reason: "Ready".into(),
                message: ready_message(key.0).into(),
            },
            Some(lines) => Verdict {
                ready: false,
                reason: reasons
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| "InvalidSpec".into()),
                message: lines.join("; "),
            },
        };
        out.insert(key, verdict);
    }
    out
}

fn ready_message(kind: Kind) -> &'static str {
    match kind {
        Kind::Provider => "credentials resolved",
        Kind::Model => "every backend and fallback resolved",
        Kind::Policy => "valid and not in conflict",
    }
}

/// The inputs of `compile()` for this namespace and a pod's labels; environment-variable
/// credentials are left for the sidecar to resolve.
pub fn inputs<'a>(ns: &'a Namespace<'a>, labels: &'a BTreeMap<String, String>) -> Inputs<'a> {
    Inputs {
        namespace: ns.name,
        providers: ns.providers,
        models: ns.models,
        policies: ns.policies,
        secrets: ns.secrets,
        pod_labels: labels,
        env: None,
        budgets: ns.budgets,
        namespace_pods: &ns.pod_labels,
    }
}

/// The status to write for a verdict, keeping `lastTransitionTime` while nothing changed.
pub fn status(
    verdict: &Verdict,
    generation: Option<i64>,
    current: Option<&Status>,
    now: &str,
) -> Status {
    let status = if verdict.ready { "True" } else { "False" };
    let previous = current.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    let since = match previous {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => None,
    };
    Status {
        observed_generation: generation,
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: verdict.reason.clone(),
            message: verdict.message.clone(),
            last_transition_time: Some(since.unwrap_or_else(|| now.to_string())),
            observed_generation: generation,
        }],
        usage: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use switchyard_crds::manifest;

    fn load(yaml: &str) -> manifest::Manifests {
        let mut m = manifest::Manifests::default();
        let mut errors = Vec::new();
        manifest::parse(
            yaml,
            std::path::Path::new("t.yaml"),
            "team-a",
            &mut m,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        m
    }

    fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": "team-a",
            "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()}})).unwrap()
    }

    const YAML: &str = r#"
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: openai, namespace: team-a}
spec: {type: openai, credentials: {secretRef: {name: key, key: apiKey}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {name: fromenv, namespace: team-a}
spec: {type: openai, credentials: {env: OPENAI_API_KEY}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: chat, namespace: team-a}
spec: {backends: [{provider: openai, model: gpt-4o}]}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {name: envchat, namespace: team-a}
spec: {backends: [{provider: fromenv, model: gpt-4o}]}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: a-all, namespace: team-a}
spec: {}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIRoutingPolicy
metadata: {name: b-bots, namespace: team-a}
spec: {podSelector: {matchLabels: {app: bot}}}
"#;

    fn verdicts_for(yaml: &str, pods: &[Pod]) -> BTreeMap<(Kind, String), Verdict> {
        let m = load(yaml);
        verdicts(&Namespace {
            name: "team-a",
            providers: &m.providers,
            models: &m.models,
            policies: &m.policies,
            secrets: &m.secrets,
            pods,
            budgets: &m.budgets,
            pod_labels: pods.iter().map(|p| p.labels()).collect(),
        })
    }

    #[test]
    fn a_missing_secret_makes_the_provider_and_its_models_not_ready_until_it_exists() {
        let v = verdicts_for(YAML, &[]);
        let p = &v[&(Kind::Provider, "openai".into())];
        assert!(!p.ready);
        assert_eq!(p.reason, "SecretNotFound");
        assert!(
            p.message.contains("spec.credentials.secretRef"),
            "{}",
            p.message
        );
        assert_eq!(v[&(Kind::Model, "chat".into())].reason, "ProviderNotFound");
        assert!(
            v[&(Kind::Provider, "fromenv".into())].ready,
            "env credentials are the sidecar's to resolve"
        );
        assert!(v[&(Kind::Model, "envchat".into())].ready);
        let fixed = format!("{YAML}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: key, namespace: team-a}}\nstringData: {{apiKey: sk-1}}\n");
        let v = verdicts_for(&fixed, &[]);
        assert!(v[&(Kind::Provider, "openai".into())].ready);
        assert!(v[&(Kind::Model, "chat".into())].ready);
    }

    #[test]
    fn a_policy_that_loses_a_pod_to_an_older_one_is_conflicted_on_its_behalf() {
        let v = verdicts_for(YAML, &[pod("web-1", &[("app", "web")])]);
        assert!(
            v[&(Kind::Policy, "b-bots".into())].ready,
            "no pod selected by both"
        );
        let v = verdicts_for(YAML, &[pod("bot-1", &[("app", "bot")])]);
        let b = &v[&(Kind::Policy, "b-bots".into())];
        assert_eq!(b.reason, "Conflicted");
        assert!(b.message.starts_with("pod bot-1: "), "{}", b.message);
        assert!(v[&(Kind::Policy, "a-all".into())].ready);
    }

    #[test]
    fn last_transition_time_moves_only_when_the_status_flips() {
        let ok = Verdict {
            ready: true,
            reason: "Ready".into(),
            message: "m".into(),
        };
        let first = status(&ok, Some(1), None, "t1");
        let again = status(&ok, Some(2), Some(&first), "t2");
        assert_eq!(
            again.conditions[0].last_transition_time.as_deref(),
            Some("t1")
        );
        assert_eq!(again.observed_generation, Some(2));
        let bad = Verdict {
            ready: false,
            reason: "InvalidSpec".into(),
            message: "x".into(),
        };
        let flipped = status(&bad, Some(2), Some(&again), "t3");
        assert_eq!(
            flipped.conditions[0].last_transition_time.as_deref(),
            Some("t3")
        );
    }
}
