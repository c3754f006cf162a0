//! The informers: one reflector per kind the operator reads, and a broadcast of what
//! changed. Everything the operator computes reads these caches, never the API server.
//! Only what it reads is kept: pods are trimmed to the fields the operator looks at, and
//! Secrets are watched one by one, only those an AIProvider references ([`Secrets`]).

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Container, Namespace as KubeNamespace, Pod, PodSpec};
use kube::{
    runtime::{reflector, reflector::ObjectRef, watcher, WatchStreamExt},
    Api, Client, Resource, ResourceExt,
};
use serde::de::DeserializeOwned;
use switchyard_crds::{AIBudget, AIModel, AIProvider, AIRoutingPolicy};
use tokio::sync::broadcast;

use crate::{secrets::Secrets, status::Namespace};

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
    /// AIBudgets.
    pub budgets: reflector::Store<AIBudget>,
    /// The Secrets AIProviders reference.
    pub secrets: Secrets,
    /// Pods, trimmed to what the operator reads (see [`trim_pod`]).
    pub pods: reflector::Store<Pod>,
    /// Namespaces (their labels turn injection on).
    namespaces_cache: reflector::Store<KubeNamespace>,
    changes: broadcast::Sender<Change>,
    synced: Arc<AtomicUsize>,
}

/// The number of reflectors.
const CACHES: usize = 6;

/// One namespace's objects, owned.
#[derive(Default)]
pub struct Objects {
    /// The namespace.
    pub name: String,
    providers: Vec<AIProvider>,
    models: Vec<AIModel>,
    policies: Vec<AIRoutingPolicy>,
    budgets: Vec<AIBudget>,
    secrets: Vec<k8s_openapi::api::core::v1::Secret>,
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
            budgets: &self.budgets,
            pod_labels: self.pods.iter().map(|p| p.labels()).collect(),
        }
    }

    /// The AIBudgets.
    pub fn budgets(&self) -> &[AIBudget] {
        &self.budgets
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
    /// Starts the watchers; they (and the Secret watches) end when `stop` fires.
    pub fn start(client: &Client, stop: &tokio::sync::watch::Receiver<bool>) -> World {
        let (changes, _) = broadcast::channel(4096);
        let synced = Arc::new(AtomicUsize::new(0));
        let c = |_: ()| Feed {
            changes: changes.clone(),
            synced: synced.clone(),
            stop: stop.clone(),
        };
        let world = World {
            providers: watch(Api::all(client.clone()), c(()), in_namespace, keep_all),
            models: watch(Api::all(client.clone()), c(()), in_namespace, keep_all),
            policies: watch(Api::all(client.clone()), c(()), in_namespace, keep_all),
            budgets: watch(Api::all(client.clone()), c(()), in_namespace, keep_all),
            secrets: Secrets::new(client.clone(), changes.clone()),
            pods: watch(Api::all(client.clone()), c(()), pod_change, trim_pod),
            namespaces_cache: watch(
                Api::all(client.clone()),
                c(()),
                |n: &KubeNamespace| Change::Namespace(n.name_any()),
                keep_all,
            ),
            changes,
            synced,
        };
        // The referenced Secrets follow the providers.
        let (follower, mut rx, mut stop) = (world.clone(), world.subscribe(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = rx.recv() => if matches!(r, Err(broadcast::error::RecvError::Closed)) { break },
                    _ = stop.changed() => break,
                }
                follower.secrets.follow(&follower.providers);
            }
            follower.secrets.stop();
        });
        world
    }

    /// Whether every cache has listed once (the Secret watches included).
    pub fn is_synced(&self) -> bool {
        if self.synced.load(Ordering::Relaxed) < CACHES {
            return false;
        }
        self.secrets.follow(&self.providers);
        self.secrets.is_synced()
    }

    /// Subscribes to changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// A namespace's objects: what a pod's snapshot is compiled from, and its status.
    pub fn namespace(&self, ns: &str) -> Objects {
        Objects {
            name: ns.to_string(),
            providers: of_namespace(&self.providers, ns),
            models: of_namespace(&self.models, ns),
            policies: of_namespace(&self.policies, ns),
            budgets: of_namespace(&self.budgets, ns),
            secrets: self.secrets.of_namespace(ns),
            pods: of_namespace(&self.pods, ns),
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
            .chain(self.budgets.state().iter().filter_map(|o| o.namespace()))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Keeps an object whole.
fn keep_all<K>(_: &mut K) {}

/// Keeps of a pod only what the operator reads: its identity, labels and owners (policy
/// selection, token checks, workload attribution) and, of its spec, the containers' names and
/// ports and `hostNetwork` (injection checks). Everything else (env, volumes, status,
/// managed fields, annotations) is dropped before the cache.
pub fn trim_pod(pod: &mut Pod) {
    let meta = &mut pod.metadata;
    meta.annotations = None;
    meta.managed_fields = None;
    pod.status = None;
    let slim = |c: &Container| Container {
        name: c.name.clone(),
        ports: c.ports.clone(),
        ..Container::default()
    };
    pod.spec = pod.spec.take().map(|spec| PodSpec {
        containers: spec.containers.iter().map(slim).collect(),
        init_containers: spec.init_containers.map(|cs| cs.iter().map(slim).collect()),
        host_network: spec.host_network,
        ..PodSpec::default()
    });
}

/// Where a watcher reports, and when it stops.
struct Feed {
    changes: broadcast::Sender<Change>,
    synced: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Receiver<bool>,
}

fn watch<K>(
    api: Api<K>,
    feed: Feed,
    to_change: fn(&K) -> Change,
    trim: fn(&mut K),
) -> reflector::Store<K>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(trim)
        .reflect(writer);
    let Feed {
        changes,
        synced,
        mut stop,
    } = feed;
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut first_sync = true;
        loop {
            let event = tokio::select! {
                e = stream.next() => match e { Some(e) => e, None => break },
                _ = stop.changed() => break,
            };
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
