//! Standalone mode: load manifests from a file or directory, compile them, and watch for
//! changes. A change that fails to load is logged with file and line, and the config in
//! force keeps serving.

use std::{
    collections::BTreeMap,
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use switchyard_crds::{compile, manifest, Inputs, ProxyConfig};
use tokio::sync::watch;

use crate::{metrics::OutcomeLabels, state::Runtime, Shared};

/// How often the config path is checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Where standalone config comes from.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file or directory.
    pub path: PathBuf,
    /// The namespace served.
    pub namespace: String,
    /// This pod's labels.
    pub pod_labels: BTreeMap<String, String>,
}

/// Loads and compiles the manifests; problems with single objects are logged, not fatal.
pub fn load(source: &Source) -> Result<ProxyConfig, manifest::LoadErrors> {
    let m = manifest::load(&source.path, &source.namespace)?;
    let env = |name: &str| std::env::var(name).ok();
    let config = compile(&Inputs {
        namespace: &source.namespace,
        providers: &m.providers,
        models: &m.models,
        policies: &m.policies,
        secrets: &m.secrets,
        pod_labels: &source.pod_labels,
        env: Some(&env),
        budgets: &m.budgets,
        namespace_pods: &[&source.pod_labels],
    });
    for p in &config.problems {
        tracing::warn!(kind = %p.kind, name = %p.name, field = %p.field, reason = %p.reason.as_str(), "left out of the config: {}", p.message);
    }
    for s in &m.skipped {
        tracing::debug!(document = %s, "skipped a document of another kind or namespace");
    }
    Ok(config)
}

/// A cheap digest of every file's name and bytes.
fn fingerprint(path: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match manifest::files(path) {
        Ok(files) => {
            for f in files {
                f.hash(&mut h);
                std::fs::read(&f).unwrap_or_default().hash(&mut h);
            }
        }
        Err(e) => e.to_string().hash(&mut h),
    }
    h.finish()
}

/// Swaps in a freshly compiled config.
pub fn install(shared: &Shared, config: ProxyConfig) {
    let models = config.models.len();
    let providers = config.providers.len();
    shared
        .runtime
        .store(Some(Arc::new(Runtime::new(config, &shared.health))));
    shared
        .metrics
        .reloads
        .get_or_create(&OutcomeLabels { outcome: "ok" })
        .inc();
    tracing::info!(models, providers, "config in force");
}

/// Watches the source until shutdown, installing every good change.
pub async fn watch(source: Source, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut last = fingerprint(&source.path);
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let path = source.path.clone();
        let now = tokio::task::spawn_blocking(move || fingerprint(&path))
            .await
            .unwrap_or(last);
        if now == last {
            continue;
        }
        last = now;
        let src = source.clone();
        match tokio::task::spawn_blocking(move || load(&src)).await {
            Ok(Ok(config)) => install(&shared, config),
            Ok(Err(errors)) => {
                shared
                    .metrics
                    .reloads
                    .get_or_create(&OutcomeLabels {
                        outcome: "rejected",
                    })
                    .inc();
                for e in &errors.0 {
                    tracing::error!(
                        "config change rejected, the previous config keeps serving: {e}"
                    );
                }
            }
            Err(e) => tracing::error!("config reload task failed: {e}"),
        }
    }
}
