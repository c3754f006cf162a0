//! The informers: one reflector per kind the operator reads, and a broadcast of which
//! namespace changed. Everything the operator computes reads these caches, never the API.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{
    runtime::{reflector, watcher, WatchStreamExt},
    Api, Client, Resource, ResourceExt,
};
use serde::de::DeserializeOwned;
use switchyard_crds::{AIModel, AIProvider, AIRoutingPolicy};
use tokio::sync::broadcast;

use crate::status::Namespace;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Something in this namespace.
    Namespace(String),
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
    changes: broadcast::Sender<Change>,
    synced: Arc<AtomicUsize>,
}

/// The number of caches.
const CACHES: usize = 5;

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

impl World {
    /// Starts the five watchers; they run until the process ends.
    pub fn start(client: &Client) -> World {
        let (changes, _) = broadcast::channel(1024);
        let synced = Arc::new(AtomicUsize::new(0));
        World {
            providers: watch(Api::all(client.clone()), changes.clone(), synced.clone()),
            models: watch(Api::all(client.clone()), changes.clone(), synced.clone()),
            policies: watch(Api::all(client.clone()), changes.clone(), synced.clone()),
            secrets: watch(Api::all(client.clone()), changes.clone(), synced.clone()),
            pods: watch(Api::all(client.clone()), changes.clone(), synced.clone()),
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

    /// A namespace's objects, cloned out of the caches.
    pub fn namespace(&self, ns: &str) -> Objects {
        Objects {
            name: ns.to_string(),
            providers: of_namespace(&self.providers, ns),
            models: of_namespace(&self.models, ns),
            policies: of_namespace(&self.policies, ns),
            secrets: of_namespace(&self.secrets, ns),
            pods: of_namespace(&self.pods, ns),
        }
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
    changes: broadcast::Sender<Change>,
    synced: Arc<AtomicUsize>,
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
                    let _ = changes.send(Change::Namespace(o.namespace().unwrap_or_default()));
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
