//! The informers: one reflector per kind the operator reads, and a broadcast of what
//! changed. Everything the operator computes reads these caches, never the API server.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace as KubeNamespace, Pod, Secret};
use kube::{
    runtime::{reflector, reflector::ObjectRef, watcher, WatchStreamExt},
    Api, Client, Resource, ResourceExt,
};
use serde::de::DeserializeOwned;
use switchyard_crds::{AIModel, AIProvider, AIRoutingPolicy};
use tokio::sync::broadcast;

use crate::status::Namespace;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A config object (AIProvider, AIModel, AIRoutingPolicy, Secret) in this namespace.
    Namespace(String),
    /// A pod (its labels pick its policy): only its own sidecar's config can change.
    Pod {
        /// The pod's namespace.
        namespace: String,
        /// The pod's name.
        name: String,
    },
    /// Possibly anything (a cache was (re)listed).
    All,
}

/// The caches.
#[derive(Clone)]
pub struct World {
    /// AIProviders.
    pub providers: reflector::Store<AIProvider>,
    /// AIModels.
    pub models: reflector::Store<AIModel>,
    /// AIRoutingPolicies.
    pub policies: reflector::Store<AIRoutingPolicy>,
    /// Secrets.
    pub secrets: reflector::Store<Secret>,
    /// Pods.
    pub pods: reflector::Store<Pod>,
    /// Namespaces (their labels turn injection on).
    namespaces_cache: reflector::Store<KubeNamespace>,
    changes: broadcast::Sender<Change>,
    synced: Arc<AtomicUsize>,
}

/// The number of caches.
const CACHES: usize = 6;

/// One namespace's objects, owned.
#[derive(Default)]
pub struct Objects {
    /// The namespace.
    pub name: String,
    providers: Vec<AIProvider>,
    models: Vec<AIModel>,
    policies: Vec<AIRoutingPolicy>,
    secrets: Vec<Secret>,
    pods: Vec<Pod>,
}

impl Objects {
    /// As the status computation's input.
    pub fn view(&self) -> Namespace<'_> {
        Namespace {
            name: &self.name,
            providers: &self.providers,
            models: &self.models,
            policies: &self.policies,
            secrets: &self.secrets,
            pods: &self.pods,
        }
    }

    /// The AIProviders.
    pub fn providers(&self) -> &[AIProvider] {
        &self.providers
    }

    /// The AIModels.
    pub fn models(&self) -> &[AIModel] {
        &self.models
    }

    /// The AIRoutingPolicies.
    pub fn policies(&self) -> &[AIRoutingPolicy] {
        &self.policies
    }
}

fn of_namespace<K>(store: &reflector::Store<K>, ns: &str) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(ns))
        .map(|o| (**o).clone())
        .collect()
}

fn in_namespace<K: Resource>(o: &K) -> Change {
    Change::Namespace(o.namespace().unwrap_or_default())
}

fn pod_change(p: &Pod) -> Change {
    Change::Pod {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
    }
}

impl World {
    /// Starts the five watchers; they run until the process ends.
    pub fn start(client: &Client) -> World {
        let (changes, _) = broadcast::channel(4096);
        let synced = Arc::new(AtomicUsize::new(0));
        let c = |_: ()| (changes.clone(), synced.clone());
        World {
            providers: watch(Api::all(client.clone()), c(()), in_namespace),
            models: watch(Api::all(client.clone()), c(()), in_namespace),
            policies: watch(Api::all(client.clone()), c(()), in_namespace),
            secrets: watch(Api::all(client.clone()), c(()), in_namespace),
            pods: watch(Api::all(client.clone()), c(()), pod_change),
            namespaces_cache: watch(Api::all(client.clone()), c(()), |n: &KubeNamespace| {
                Change::Namespace(n.name_any())
            }),
            changes,
            synced,
        }
    }

    /// Whether every cache has listed once.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed) >= CACHES
    }

    /// Subscribes to changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// A namespace's config objects (no pods): what a pod's snapshot is compiled from.
    pub fn config_objects(&self, ns: &str) -> Objects {
        Objects {
            name: ns.to_string(),
            providers: of_namespace(&self.providers, ns),
            models: of_namespace(&self.models, ns),
            policies: of_namespace(&self.policies, ns),
            secrets: of_namespace(&self.secrets, ns),
            pods: Vec::new(),
        }
    }

    /// A namespace's objects, pods included (for status: policy conflicts).
    pub fn namespace(&self, ns: &str) -> Objects {
        Objects {
            pods: of_namespace(&self.pods, ns),
            ..self.config_objects(ns)
        }
    }

    /// One pod, looked up without scanning the cache.
    pub fn pod(&self, ns: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods.get(&ObjectRef::new(name).within(ns))
    }

    /// A namespace's labels, looked up without scanning the cache (none if unknown).
    pub fn namespace_labels(&self, ns: &str) -> std::collections::BTreeMap<String, String> {
        self.namespaces_cache
            .get(&ObjectRef::new(ns))
            .map(|n| n.labels().clone())
            .unwrap_or_default()
    }

    /// Every namespace that holds a Switchyard object.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .providers
            .state()
            .iter()
            .filter_map(|o| o.namespace())
            .chain(self.models.state().iter().filter_map(|o| o.namespace()))
            .chain(self.policies.state().iter().filter_map(|o| o.namespace()))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

fn watch<K>(
    api: Api<K>,
    (changes, synced): (broadcast::Sender<Change>, Arc<AtomicUsize>),
    to_change: fn(&K) -> Change,
) -> reflector::Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut first_sync = true;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                    let _ = changes.send(to_change(&o));
                }
                Ok(watcher::Event::InitDone) => {
                    if first_sync {
                        first_sync = false;
                        synced.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = changes.send(Change::All);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("watch error: {e}"),
            }
        }
    });
    store
}
