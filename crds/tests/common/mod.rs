//! What the crds test files share.

use std::{collections::BTreeMap, path::Path};

use switchyard_crds::{compile, manifest, Inputs, ProxyConfig};

/// Loads `yaml` (namespace `default`, no load errors allowed) and compiles it for a pod with
/// `labels`, the sidecar's environment holding `env`.
pub fn compile_yaml(yaml: &str, labels: &[(&str, &str)], env: &[(&str, &str)]) -> ProxyConfig {
    let mut m = manifest::Manifests::default();
    let mut errors = Vec::new();
    manifest::parse(yaml, Path::new("test.yaml"), "default", &mut m, &mut errors);
    assert!(errors.is_empty(), "unexpected load errors: {errors:?}");
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = |k: &str| env.get(k).cloned();
    compile(&Inputs {
        namespace: "default",
        providers: &m.providers,
        models: &m.models,
        policies: &m.policies,
        secrets: &m.secrets,
        pod_labels: &labels,
        env: Some(&lookup),
        budgets: &m.budgets,
        namespace_pods: &[&labels],
    })
}
